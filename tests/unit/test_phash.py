"""Unit tests for integrity.phash (synthetic frames, no ffmpeg)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from integrity.phash import (
    FRAME_SIDE,
    HASH_BYTES,
    MIN_QUALITY,
    FrameHashes,
    hamming,
    hash_frame,
    hash_frames,
    read_gray_frames,
)


def texture(seed: int, side: int = FRAME_SIDE) -> NDArray[np.uint8]:
    """Smoothed random texture, like a downscaled natural image."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft2(rng.standard_normal((side, side)))
    ky = np.fft.fftfreq(side)[:, None]
    kx = np.fft.rfftfreq(side)[None, :]
    spectrum /= (np.hypot(kx, ky) + 0.02) ** 1.2
    img = np.fft.irfft2(spectrum, (side, side))
    img = 128 + 45 * (img - img.mean()) / img.std()
    out: NDArray[np.uint8] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def random_hashes(n: int, seed: int = 0) -> FrameHashes:
    rng = np.random.default_rng(seed)
    return FrameHashes.on_grid(
        2.5,
        10.0,
        rng.integers(0, 256, (n, HASH_BYTES), dtype=np.uint8),
        rng.integers(0, 101, n, dtype=np.uint8),
    )


def test_hash_frame_shape_quality_and_identity() -> None:
    frame = texture(1)
    packed, quality = hash_frame(frame)
    assert packed.dtype == np.uint8 and packed.shape == (HASH_BYTES,)
    assert quality >= MIN_QUALITY
    again, _ = hash_frame(frame.copy())
    assert int(hamming(packed, again)) == 0
    other, _ = hash_frame(texture(2))
    assert int(hamming(packed, other)) > 64  # unrelated images: ~128 bits apart


def test_hash_frame_flat_frame_is_low_quality() -> None:
    _, quality = hash_frame(np.full((FRAME_SIDE, FRAME_SIDE), 17, np.uint8))
    assert quality < MIN_QUALITY


def test_hash_frame_small_noise_is_near() -> None:
    frame = texture(3)
    noisy = np.clip(frame + np.random.default_rng(0).normal(0, 3, frame.shape), 0, 255)
    a, _ = hash_frame(frame)
    b, _ = hash_frame(noisy.astype(np.uint8))
    assert int(hamming(a, b)) < 16


@pytest.mark.parametrize("bad", [np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.float32)])
def test_hash_frame_rejects_non_gray(bad: NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        hash_frame(bad)


def test_hamming_matches_naive_popcount() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (50, HASH_BYTES), dtype=np.uint8)
    b = rng.integers(0, 256, (50, HASH_BYTES), dtype=np.uint8)
    naive = [
        sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(ra, rb, strict=True))
        for ra, rb in zip(a, b, strict=True)
    ]
    result = hamming(a, b)
    assert result.dtype == np.int64 and result.shape == (50,)
    assert result.tolist() == naive
    assert hamming(a, a).tolist() == [0] * 50
    assert hamming(a[:1], ~a[:1]).tolist() == [256]


def test_hash_frames_builds_grid() -> None:
    frames = [texture(s) for s in range(5)]
    fh = hash_frames(frames, start=3.0, rate=4.0)
    assert len(fh) == 5
    np.testing.assert_allclose(fh.times, [3.0, 3.25, 3.5, 3.75, 4.0])
    assert fh.start == 3.0 and fh.end == pytest.approx(4.25)
    for i, frame in enumerate(frames):
        packed, quality = hash_frame(frame)
        assert np.array_equal(fh.hashes[i], packed) and fh.quality[i] == quality
    assert len(hash_frames([], start=0.0, rate=10.0)) == 0


def test_round_trip_bytes() -> None:
    fh = random_hashes(37)
    data = fh.to_bytes()
    assert data[:4] == b"VGPH"
    assert len(data) == 24 + 37 * (8 + HASH_BYTES + 1)
    back = FrameHashes.from_bytes(data)
    assert back == fh
    assert back.rate == 10.0 and back.start == 2.5
    empty = FrameHashes.empty(5.0)
    assert FrameHashes.from_bytes(empty.to_bytes()) == empty


def test_irregular_times_survive_round_trip() -> None:
    fh = FrameHashes(
        np.array([0.0, 0.1, 0.233, 0.9]),
        10.0,
        np.zeros((4, HASH_BYTES), np.uint8),
        np.full(4, 80, np.uint8),
    )
    assert np.array_equal(FrameHashes.from_bytes(fh.to_bytes()).times, fh.times)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:10], "truncated header"),
        (lambda d: b"XXXX" + d[4:], "bad magic"),
        (lambda d: d[:4] + struct.pack("<H", 9) + d[6:], "unsupported version"),
        (lambda d: d[:-1], "length"),
        (lambda d: d + b"\0", "length"),
        (lambda d: d[:16] + struct.pack("<d", -1.0) + d[24:], "rate"),
        (lambda d: d[:24] + struct.pack("<d", 99.0) + d[32:], "increasing"),
        (lambda d: d[:-1] + b"\xff", "quality"),
    ],
)
def test_from_bytes_rejects_bad_data(mutate: Callable[[bytes], bytes], message: str) -> None:
    data = random_hashes(4).to_bytes()
    with pytest.raises(ValueError, match=message):
        FrameHashes.from_bytes(mutate(data))


def test_constructor_validates_and_freezes() -> None:
    with pytest.raises(ValueError, match="shape"):
        FrameHashes(np.zeros(2), 10.0, np.zeros((3, HASH_BYTES), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="increasing"):
        FrameHashes(
            np.array([1.0, 1.0]), 10.0, np.zeros((2, HASH_BYTES), np.uint8), np.zeros(2, np.uint8)
        )
    source = np.zeros((1, HASH_BYTES), np.uint8)
    fh = FrameHashes(np.zeros(1), 10.0, source, np.zeros(1, np.uint8))
    source[0, 0] = 255  # the caller's array is copied
    assert fh.hashes[0, 0] == 0
    with pytest.raises(ValueError):
        fh.hashes[0, 0] = 1


def test_slice_time_is_half_open() -> None:
    fh = random_hashes(30)  # times 2.5 .. 5.4
    part = fh.slice_time(3.0, 4.0)
    np.testing.assert_allclose(part.times, np.arange(10) / 10 + 3.0)
    assert np.array_equal(part.hashes, fh.hashes[5:15])
    assert len(fh.slice_time(100.0, 200.0)) == 0


def test_concat_keeps_each_parts_times() -> None:
    rng = np.random.default_rng(1)

    def part(start: float, n: int) -> FrameHashes:
        return FrameHashes.on_grid(
            start,
            10.0,
            rng.integers(0, 256, (n, HASH_BYTES), dtype=np.uint8),
            np.full(n, 90, np.uint8),
        )

    a, b = part(0.0, 20), part(2.033, 10)  # second part's grid is offset by 33 ms
    joined = FrameHashes.concat([a, b])
    assert len(joined) == 30
    np.testing.assert_allclose(joined.times[20:], b.times)
    assert np.array_equal(joined.hashes[:20], a.hashes)
    with pytest.raises(ValueError, match="increasing"):
        FrameHashes.concat([a, part(1.0, 5)])
    with pytest.raises(ValueError, match="rate"):
        FrameHashes.concat([a, FrameHashes.empty(30.0)])
    with pytest.raises(ValueError, match="no parts"):
        FrameHashes.concat([])


def test_digest_is_majority_of_good_frames() -> None:
    zero = np.zeros(HASH_BYTES, np.uint8)
    first = zero.copy()
    first[0] = 0b1000_0000
    rows = np.stack([first, first, zero, ~zero])
    fh = FrameHashes.on_grid(0.0, 10.0, rows, np.array([90, 90, 90, 10], np.uint8))
    # the all-ones frame has low quality and is left out: majority is `first`
    assert fh.digest() == "80" + "00" * 31
    all_low = FrameHashes.on_grid(0.0, 10.0, rows, np.full(4, 10, np.uint8))
    # all four count: bit 0 set in 3 of 4, other bits in 1 of 4
    assert all_low.digest() == "80" + "00" * 31
    assert len(random_hashes(9).digest()) == 64
    assert FrameHashes.empty(10.0).digest() == "0" * 64


class _Trickle(io.RawIOBase):
    """A pipe that hands out at most 1000 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1000) if size >= 0 else 1000)


def test_read_gray_frames_whole_frames_only() -> None:
    frames = [texture(s) for s in range(3)]
    data = b"".join(f.tobytes() for f in frames) + b"\x01" * 100  # trailing partial frame
    for stream in (io.BytesIO(data), _Trickle(data)):
        got = list(read_gray_frames(stream))  # type: ignore[arg-type]
        assert len(got) == 3
        for g, f in zip(got, frames, strict=True):
            assert g.shape == (FRAME_SIDE, FRAME_SIDE) and np.array_equal(g, f)
    small = list(read_gray_frames(io.BytesIO(bytes(range(16)) * 2), side=4))
    assert len(small) == 2 and small[1][3, 3] == 15


def test_batched_hashing_equals_the_reference_frame_by_frame() -> None:
    """hash_frames batches 64x64 frames through the numpy PDQ; any other size goes one by one
    through pdqhash. Either way the hashes are the reference's, in order."""
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(300)]
    frames.insert(150, rng.integers(0, 256, (48, 80), dtype=np.uint8))  # another size
    frames += [np.full((64, 64), 128, np.uint8)]  # flat: quality 0
    batched = hash_frames(frames, start=2.0, rate=10.0)
    one_by_one = [hash_frame(f) for f in frames]
    assert np.array_equal(batched.hashes, np.stack([h for h, _ in one_by_one]))
    assert batched.quality.tolist() == [q for _, q in one_by_one]
    assert batched.times[0] == 2.0 and len(batched) == len(frames)
