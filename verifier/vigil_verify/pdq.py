"""PDQ hashes of 64x64 gray frames in pure numpy, bit-for-bit as the ``pdqhash`` package.

The server hashes frames with ``pdqhash`` (Python bindings of Meta's C++ PDQ) in
``integrity.phash.hash_frame``: the 64x64 uint8 gray frame, broadcast to RGB, goes to
``pdqhash.compute`` and the bits are packed with ``np.packbits``. The stand-alone verifier cannot
depend on that C++ wheel, so this module redoes the same arithmetic with numpy, vectorised over
frames, in the same float32 operations in the same order as the C++, so hashes and quality match
exactly, not just within a tolerance: where the DCT coefficients are rounding noise (flat and
near-black frames, symmetric patterns such as gradients and checkerboards) only the same
arithmetic reproduces the bits; a BLAS matmul there lands up to ~120 bits away.

Followed sources:

* ``faustomorales/pdqhash-python`` ``pdqhash/bindings.pyx`` (commit 02772de1, as shipped in the
  pdqhash 0.2.8 wheel): luma is computed in numpy, ``(R*0.299 + G*0.587 + B*0.114)`` in float64,
  then cast to float32, and handed to ``pdqHash256FromFloatLuma``; ``hash_to_vector`` lists bit
  ``k`` (``w[k >> 4] >> (k & 15)``) for k = 0..255, then reverses the list.
* ``facebook/ThreatExchange`` ``pdq/cpp/hashing/pdqhashing.cpp`` (commit 02343936, the version
  with the ``dct_matrix_64`` table that the 0.2.8 wheel's symbols show): for a 64x64 input the
  luma is copied as is (no blur); ``pdqImageDomainQualityMetric``; ``dct64To16`` (float32 sums,
  sequential in k from 0.0); ``pdqBuffer16x16ToBits`` (bit set when coefficient > median).
* ``pdq/cpp/hashing/torben.cpp`` (main branch, via code search): Torben's median of the 256
  coefficients. For n = 256 it always returns the 128th smallest value (the lower median): the
  loop ends with at most 128 values below and at most 128 above the guess, and the value
  returned is the one of rank 128.
* ``pdq/cpp/downscaling/downscaling.cpp`` (commit 6bce5cb8): ``computeJaroszFilterWindowSize(64,
  64)`` is ``(64 + 127) // 128 = 1``; a window-1 box pass and ``decimateFloat`` 64 -> 64 are the
  identity on integer-valued floats, so even the blurring path would change nothing here.
* ``pdq/cpp/common/pdqhashtypes.h`` (commit 22752239): ``setBit(k)`` sets
  ``w[k >> 4] |= 1 << (k & 15)``.

So for gray input: luma == the gray value (the float64 coefficients sum back to every integer
0..255 exactly after the float32 cast; the C++'s own float coefficients would not), and packed
bit m (``np.packbits`` order, MSB first) is coefficient ``255 - m`` of the row-major 16x16 DCT
block: the packed bytes are the hash's 16-bit words w[15]..w[0], as ``Hash256::dumpWords``
prints them.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

from vigil_verify.frames import FRAME_SIDE, HASH_BYTES

__all__ = ["pdq_hashes"]

_DCT_ROWS: Final = 16
_MEDIAN_RANK: Final = (_DCT_ROWS * _DCT_ROWS + 1) // 2 - 1  # torben: 128th smallest (index 127)
_CHUNK: Final = 256  # frames per batch: bounds the float32 work arrays (~11 MB)


def _jarosz_window_size(old_dimension: int, new_dimension: int) -> int:
    """``computeJaroszFilterWindowSize`` (downscaling.cpp): 1 for 64 -> 64, i.e. no blur."""
    return (old_dimension + 2 * new_dimension - 1) // (2 * new_dimension)


def _dct_matrix() -> NDArray[np.float32]:
    """``dct_matrix_64`` (pdqhashing.cpp): rows 1..16 of the 64-point DCT-II, float32.

    ``float scale = sqrt(2.0 / 64)``; each entry is ``scale * cos(...)`` in double, stored as
    float. ``math.cos`` is the C library's cos, as in the C++.
    """
    scale = float(np.float32(math.sqrt(2.0 / float(FRAME_SIDE))))
    step = math.pi / 2.0 / float(FRAME_SIDE)
    rows = [
        [scale * math.cos(step * (i + 1) * (2 * j + 1)) for j in range(FRAME_SIDE)]
        for i in range(_DCT_ROWS)
    ]
    return np.array(rows, dtype=np.float64).astype(np.float32)


def _luma_table() -> NDArray[np.float32]:
    """pdqhash-python's luma of an RGB pixel with R = G = B = v, for v = 0..255."""
    v = np.arange(256, dtype=np.float64)  # the wrapper's uint8 * float promotes to float64
    luma: NDArray[np.float32] = (v * 0.299 + v * 0.587 + v * 0.114).astype(np.float32)
    return luma


def _gradient_table(luma: NDArray[np.float32]) -> NDArray[np.uint8]:
    """``|d|`` of ``pdqImageDomainQualityMetric`` for every neighbour pair of gray values.

    The C++ computes ``int d = ((u - v) * 100) / 255`` on float luma (float32 subtract, multiply,
    divide; the int conversion truncates toward zero) and sums ``abs(d)``. Luma is a function of
    the gray value, so the table, indexed by ``u_gray << 8 | v_gray``, holds exactly that.
    """
    u = luma[:, None]
    v = luma[None, :]
    d = np.trunc((u - v) * np.float32(100) / np.float32(255)).astype(np.int32)
    table: NDArray[np.uint8] = np.abs(d).astype(np.uint8).reshape(-1)
    return table


_DCT: Final = _dct_matrix()  # (16, 64)
_DCT_BY_K: Final = np.ascontiguousarray(_DCT.T)  # (64, 16): column k of the DCT matrix
_LUMA: Final = _luma_table()
_GRADIENT: Final = _gradient_table(_LUMA)


def _quality(frames: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``pdqImageDomainQualityMetric``: sum of ``|d|`` over the 63x64 vertical and 64x63
    horizontal neighbour pairs, ``// 90``, capped at 100."""
    n = frames.shape[0]
    wide = frames.astype(np.uint16)
    high = wide << 8
    vertical = _GRADIENT[high[:, :-1, :] | wide[:, 1:, :]].reshape(n, -1)
    horizontal = _GRADIENT[high[:, :, :-1] | wide[:, :, 1:]].reshape(n, -1)
    total = vertical.sum(axis=1, dtype=np.int64) + horizontal.sum(axis=1, dtype=np.int64)
    quality: NDArray[np.uint8] = np.minimum(total // 90, 100).astype(np.uint8)
    return quality


def _dct64_to_16(luma: NDArray[np.float32]) -> NDArray[np.float32]:
    """``dct64To16``: B = (D A) D^T with every sum accumulated in float32, k = 0..63 in order,
    starting from 0.0, one rounded product and one rounded add per term, as the C++ does (the
    wheel's machine code uses SSE ``mulps``/``addss``, no FMA), so B matches it bit for bit.

    ``luma`` is (n, 64, 64); returns (n, 16, 16). Work arrays put the frame axis inside, so each
    of the 2 x 64 numpy multiply/add steps runs over long contiguous rows.
    """
    n = luma.shape[0]
    by_row = np.ascontiguousarray(luma.transpose(1, 0, 2))  # (64 k, n, 64 j): A[k, j]
    # T[i, j] = sum_k D[i, k] * A[k, j], laid out (16 i, n, 64 j).
    t = np.zeros((_DCT_ROWS, n, FRAME_SIDE), dtype=np.float32)
    term = np.empty_like(t)
    for k in range(FRAME_SIDE):
        np.multiply(_DCT_BY_K[k][:, None, None], by_row[k][None], out=term)
        t += term
    # B[i, j] = sum_k T[i, k] * D[j, k], laid out (16 j, n, 16 i).
    t_by_k = np.ascontiguousarray(t.transpose(2, 1, 0))  # (64 k, n, 16 i)
    b = np.zeros((_DCT_ROWS, n, _DCT_ROWS), dtype=np.float32)
    term_b = np.empty_like(b)
    for k in range(FRAME_SIDE):
        np.multiply(_DCT_BY_K[k][:, None, None], t_by_k[k][None], out=term_b)
        b += term_b
    out: NDArray[np.float32] = b.transpose(1, 2, 0)  # (n, 16 i, 16 j)
    return out


def _bits(dct: NDArray[np.float32]) -> NDArray[np.uint8]:
    """``pdqBuffer16x16ToBits`` + pdqhash-python's bit order, packed with ``np.packbits``."""
    flat = dct.reshape(dct.shape[0], _DCT_ROWS * _DCT_ROWS)
    median = np.partition(flat, _MEDIAN_RANK, axis=1)[:, _MEDIAN_RANK]
    bits = flat > median[:, None]
    packed: NDArray[np.uint8] = np.packbits(bits[:, ::-1], axis=1)
    return packed


def pdq_hashes(frames: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """PDQ hashes of ``(n, 64, 64)`` uint8 gray frames: ``(hashes (n, 32) uint8, quality (n,)
    uint8 0..100)``, equal to ``integrity.phash.hash_frame`` (``pdqhash``) frame by frame.

    Raises ValueError naming the problem if ``frames`` is not a uint8 array of that shape.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got dtype {frames.dtype}")
    if frames.ndim != 3 or frames.shape[1:] != (FRAME_SIDE, FRAME_SIDE):
        raise ValueError(
            f"frames must have shape (n, {FRAME_SIDE}, {FRAME_SIDE}), got {frames.shape}"
        )
    n = frames.shape[0]
    hashes = np.empty((n, HASH_BYTES), dtype=np.uint8)
    quality = np.empty(n, dtype=np.uint8)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        chunk = frames[lo:hi]
        quality[lo:hi] = _quality(chunk)
        hashes[lo:hi] = _bits(_dct64_to_16(_LUMA[chunk]))
    return hashes, quality
