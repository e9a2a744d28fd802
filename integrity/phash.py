"""PDQ hashing of 64x64 gray frames: batched in numpy (``vigil_verify.pdq``, bit-exact with
Meta's reference C++), and one frame of any size via ``pdqhash``.

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
from vigil_verify.pdq import pdq_hashes

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


BATCH = 256
"""Frames hashed per numpy batch (1 MiB of 64x64 frames)."""


class PdqBatches:
    """Collects 64x64 frames and hashes them ``BATCH`` at a time (memory: one batch)."""

    def __init__(self) -> None:
        self.hashes: list[NDArray[np.uint8]] = []
        self.quality: list[NDArray[np.uint8]] = []
        self._batch: list[NDArray[np.uint8]] = []

    def add(self, frame: NDArray[np.uint8]) -> None:
        if frame.shape == (FRAME_SIDE, FRAME_SIDE) and frame.dtype == np.uint8:
            self._batch.append(frame)
            if len(self._batch) >= BATCH:
                self.flush()
            return
        self.flush()
        packed, q = hash_frame(frame)
        self.hashes.append(packed[None, :])
        self.quality.append(np.asarray([q], dtype=np.uint8))

    def flush(self) -> None:
        if self._batch:
            h, q = pdq_hashes(np.stack(self._batch))
            self.hashes.append(h)
            self.quality.append(q)
            self._batch.clear()

    def result(self) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """All hashes (n, 32) and qualities (n,) in the order the frames came."""
        self.flush()
        if not self.hashes:
            return np.zeros((0, HASH_BYTES), np.uint8), np.zeros(0, np.uint8)
        return np.concatenate(self.hashes), np.concatenate(self.quality)


def hash_frames(frames: Iterable[NDArray[np.uint8]], *, start: float, rate: float) -> FrameHashes:
    """Hash frames sampled at ``rate`` fps; frame k is at ``start + k / rate``.

    64x64 frames (what the pipeline decodes) are hashed in batches by ``vigil_verify.pdq``,
    the numpy PDQ that is bit-exact with ``pdqhash`` (tests/unit/test_pdq_numpy.py) and keeps
    the per-frame Python overhead off the decode path; other sizes go through ``hash_frame``.
    """
    batches = PdqBatches()
    for frame in frames:
        batches.add(frame)
    hashes, quality = batches.result()
    if not len(hashes):
        return FrameHashes.empty(rate)
    return FrameHashes.on_grid(start, rate, hashes, quality)
