"""Per-frame PDQ hashes of video frames, each with its timeline timestamp (numpy only: the
stand-alone verifier reads them too; computing them is ``integrity.phash``).

Frames come from ffmpeg already area-scaled to 64x64 grayscale
(``-vf fps=RATE,scale=64:64:flags=area,format=gray -f rawvideo``); PDQ on such
frames costs ~0.05-0.1 ms, negligible next to decoding (see bench/).

``FrameHashes`` stores an explicit ``times`` array rather than only a start and
a rate: parts hashed separately (e.g. one per stored segment) start on their own
grids, and concatenating them must keep each frame's true time. ``rate`` is kept
as metadata: the nominal sampling rate, used as the alignment step.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
from numpy.typing import NDArray

FRAME_SIDE = 64
HASH_BYTES = 32
HASH_BITS = HASH_BYTES * 8
MIN_QUALITY = 50
"""PDQ quality below this marks a frame as featureless (Meta discards <= 49)."""

_MAGIC = b"VGPH"
_VERSION = 1
_HEADER = struct.Struct("<4sHHQd")  # magic, version, reserved, n, rate
_RATE_RTOL = 1e-9


def _frozen(array: NDArray[np.generic]) -> None:
    array.flags.writeable = False


@dataclass(frozen=True, eq=False)
class FrameHashes:
    """Per-frame perceptual hashes of a stretch of video, each with its time.

    ``times`` are timeline seconds, strictly increasing. ``rate`` is the nominal
    frames per second the frames were sampled at (metadata and alignment step).
    Arrays are copied and made read-only on construction.
    """

    times: NDArray[np.float64]  # shape (n,)
    rate: float
    hashes: NDArray[np.uint8]  # shape (n, 32): packed 256-bit PDQ hashes (np.packbits order)
    quality: NDArray[np.uint8]  # shape (n,): PDQ quality 0..100

    def __post_init__(self) -> None:
        times = np.array(self.times, dtype=np.float64, copy=True).reshape(-1)
        hashes = np.array(self.hashes, dtype=np.uint8, copy=True)
        quality = np.array(self.quality, dtype=np.uint8, copy=True).reshape(-1)
        n = times.shape[0]
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be finite and > 0, got {self.rate}")
        if hashes.shape != (n, HASH_BYTES):
            raise ValueError(f"hashes must have shape ({n}, {HASH_BYTES}), got {hashes.shape}")
        if quality.shape != (n,):
            raise ValueError(f"quality must have shape ({n},), got {quality.shape}")
        if n and not np.all(np.isfinite(times)):
            raise ValueError("times must be finite")
        if n > 1 and not np.all(np.diff(times) > 0):
            raise ValueError("times must be strictly increasing")
        if n and int(quality.max()) > 100:
            raise ValueError("quality must be within 0..100")
        for array in (times, hashes, quality):
            _frozen(array)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "hashes", hashes)
        object.__setattr__(self, "quality", quality)

    @classmethod
    def on_grid(
        cls,
        start: float,
        rate: float,
        hashes: NDArray[np.uint8],
        quality: NDArray[np.uint8],
    ) -> FrameHashes:
        """Frames on a regular grid: frame k is at ``start + k / rate``."""
        n = int(np.shape(hashes)[0])
        return cls(start + np.arange(n, dtype=np.float64) / rate, rate, hashes, quality)

    @classmethod
    def empty(cls, rate: float) -> FrameHashes:
        """No frames."""
        return cls(
            np.zeros(0, np.float64),
            rate,
            np.zeros((0, HASH_BYTES), np.uint8),
            np.zeros(0, np.uint8),
        )

    @property
    def start(self) -> float:
        """Time of the first frame (0.0 when empty)."""
        return float(self.times[0]) if len(self) else 0.0

    @property
    def end(self) -> float:
        """Time just past the last frame: last time + 1/rate (``start`` when empty)."""
        return float(self.times[-1]) + 1.0 / self.rate if len(self) else self.start

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameHashes):
            return NotImplemented
        return (
            self.rate == other.rate
            and np.array_equal(self.times, other.times)
            and np.array_equal(self.hashes, other.hashes)
            and np.array_equal(self.quality, other.quality)
        )

    def to_bytes(self) -> bytes:
        """Versioned little-endian binary: header, times (f64), hashes, quality."""
        header = _HEADER.pack(_MAGIC, _VERSION, 0, len(self), self.rate)
        return b"".join(
            (
                header,
                self.times.astype("<f8").tobytes(),
                self.hashes.tobytes(),
                self.quality.tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FrameHashes:
        """Parse ``to_bytes`` output; raises ValueError naming the problem."""
        if len(data) < _HEADER.size:
            raise ValueError(f"frame hashes: truncated header ({len(data)} bytes)")
        magic, version, _reserved, n, rate = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError(f"frame hashes: bad magic {magic!r}")
        if version != _VERSION:
            raise ValueError(f"frame hashes: unsupported version {version}")
        expected = _HEADER.size + n * (8 + HASH_BYTES + 1)
        if len(data) != expected:
            raise ValueError(
                f"frame hashes: length {len(data)} bytes, expected {expected} for {n} frames"
            )
        offset = _HEADER.size
        times = np.frombuffer(data, dtype="<f8", count=n, offset=offset)
        offset += 8 * n
        hashes = np.frombuffer(data, dtype=np.uint8, count=n * HASH_BYTES, offset=offset)
        offset += n * HASH_BYTES
        quality = np.frombuffer(data, dtype=np.uint8, count=n, offset=offset)
        try:
            return cls(times, rate, hashes.reshape(n, HASH_BYTES), quality)
        except ValueError as exc:
            raise ValueError(f"frame hashes: {exc}") from exc

    def digest(self) -> str:
        """64-hex summary: bitwise majority over frames with quality >= MIN_QUALITY.

        Uses all frames if none reaches MIN_QUALITY; all-zero when empty.
        Ties go to 0. For display only; never compare recordings with it.
        """
        good = self.quality >= MIN_QUALITY
        rows = self.hashes[good] if np.any(good) else self.hashes
        if rows.shape[0] == 0:
            return "0" * (2 * HASH_BYTES)
        ones = np.unpackbits(rows, axis=1).sum(axis=0, dtype=np.int64)
        majority = (2 * ones > rows.shape[0]).astype(np.uint8)
        return np.packbits(majority).tobytes().hex()

    def slice_time(self, t0: float, t1: float) -> FrameHashes:
        """Frames with ``t0 <= time < t1``."""
        lo, hi = np.searchsorted(self.times, [t0, t1], side="left")
        return FrameHashes(self.times[lo:hi], self.rate, self.hashes[lo:hi], self.quality[lo:hi])

    @classmethod
    def concat(cls, parts: Sequence[FrameHashes]) -> FrameHashes:
        """Join parts of equal rate whose times follow one another (keeps each time).

        Raises ValueError if no parts, rates differ or times overlap/go backwards.
        """
        if not parts:
            raise ValueError("concat: no parts")
        rate = parts[0].rate
        for part in parts[1:]:
            if not math.isclose(part.rate, rate, rel_tol=_RATE_RTOL):
                raise ValueError(f"concat: rate {part.rate} differs from {rate}")
        try:
            return cls(
                np.concatenate([p.times for p in parts]),
                rate,
                np.concatenate([p.hashes for p in parts]),
                np.concatenate([p.quality for p in parts]),
            )
        except ValueError as exc:
            raise ValueError(f"concat: {exc}") from exc


def hamming(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Row-wise Hamming distance of packed hashes: (n, 32) x (n, 32) -> (n,)."""
    xor = np.bitwise_xor(a, b)
    counts: NDArray[np.int64] = np.bitwise_count(xor).sum(axis=-1, dtype=np.int64)
    return counts


def read_gray_frames(stream: IO[bytes], side: int = FRAME_SIDE) -> Iterator[NDArray[np.uint8]]:
    """Yield ``side`` x ``side`` uint8 frames from a raw gray pipe until EOF.

    Short reads are accumulated; a trailing partial frame is dropped.
    """
    size = side * side
    while True:
        buf = bytearray(size)
        view = memoryview(buf)
        filled = 0
        while filled < size:
            chunk = stream.read(size - filled)
            if not chunk:
                return
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        yield np.frombuffer(buf, dtype=np.uint8).reshape(side, side)
