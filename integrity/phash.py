"""PDQ hashing of 64x64 gray frames (Meta's reference C++ via ``pdqhash``).

The containers and comparison of per-frame hashes (``FrameHashes``, ``hamming``) are in
``vigil_verify.frames``, shared with the stand-alone verifier, and re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pdqhash
from numpy.typing import NDArray
from vigil_verify.frames import (
    FRAME_SIDE,
    HASH_BITS,
    HASH_BYTES,
    MIN_QUALITY,
    FrameHashes,
    hamming,
    read_gray_frames,
)

__all__ = [
    "FRAME_SIDE",
    "HASH_BITS",
    "HASH_BYTES",
    "MIN_QUALITY",
    "FrameHashes",
    "hamming",
    "hash_frame",
    "hash_frames",
    "read_gray_frames",
]


def hash_frame(frame: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], int]:
    """PDQ hash of one 2-D uint8 grayscale frame: (32 packed bytes, quality 0..100)."""
    if frame.ndim != 2 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be 2-D uint8, got {frame.dtype} {frame.shape}")
    rgb = np.ascontiguousarray(np.broadcast_to(frame[:, :, None], (*frame.shape, 3)))
    bits, quality = pdqhash.compute(rgb)
    packed: NDArray[np.uint8] = np.packbits(np.asarray(bits, dtype=np.uint8))
    return packed, int(quality)


def hash_frames(frames: Iterable[NDArray[np.uint8]], *, start: float, rate: float) -> FrameHashes:
    """Hash frames sampled at ``rate`` fps; frame k is at ``start + k / rate``."""
    hashes: list[NDArray[np.uint8]] = []
    quality: list[int] = []
    for frame in frames:
        packed, q = hash_frame(frame)
        hashes.append(packed)
        quality.append(q)
    if not hashes:
        return FrameHashes.empty(rate)
    return FrameHashes.on_grid(start, rate, np.stack(hashes), np.asarray(quality, dtype=np.uint8))
