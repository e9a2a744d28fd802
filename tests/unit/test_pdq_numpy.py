"""Unit tests for vigil_verify.pdq: the pure-numpy PDQ against ``pdqhash`` (Meta's C++).

The reference is ``integrity.phash.hash_frame`` (what the server stores) and, for the DCT
coefficients themselves, ``pdqhash.compute_float``. The numpy version repeats the C++'s float32
arithmetic operation for operation, so agreement is asserted to be exact: every quality value,
every hash bit and every DCT coefficient. Exactness matters wherever DCT coefficients are
rounding noise: flat and near-black frames, and symmetric patterns (gradients, checkerboards)
whose ideal DCT is mostly zeros. There a BLAS matmul (another summation order) gave hashes up to
124 bits from pdqhash's (63% of the synthetic frames here, and one fade-to-black Megamind frame
at 93 bits), while real footage with texture agreed either way.

Measured on x86-64 with the pdqhash 0.2.8 wheel (SSE mulps/addss, no FMA): 0 differing bits and
identical quality on all 2,265 frames here (vtest 795, tree 296, Megamind 113; generated
testsrc2 300 and mandelbrot 300; synthetic 461). A pdqhash built with FMA contraction (e.g. on
another architecture) would round differently; the noise-dominated frames above are the ones at
risk.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import numpy as np
import pdqhash
import pytest
from numpy.typing import NDArray
from vigil_verify.frames import FRAME_SIDE, HASH_BYTES, MIN_QUALITY, FrameHashes
from vigil_verify.pdq import _LUMA, _dct64_to_16, _jarosz_window_size, pdq_hashes

from integrity.phash import hash_frame
from tests.conftest import opencv_sample

Frames = NDArray[np.uint8]
SIDE = FRAME_SIDE


# -- reference and comparison ------------------------------------------------------------------


def reference(frames: Frames) -> tuple[Frames, Frames]:
    """pdqhash, one frame at a time, as the server does."""
    rows = [hash_frame(frame) for frame in frames]
    hashes = np.array([packed for packed, _ in rows], dtype=np.uint8).reshape(-1, HASH_BYTES)
    quality = np.array([q for _, q in rows], dtype=np.uint8)
    return hashes, quality


def reference_dct(frame: Frames) -> NDArray[np.float32]:
    """The C++'s 16x16 float DCT block (row-major); compute_float returns it reversed."""
    rgb = np.ascontiguousarray(np.broadcast_to(frame[:, :, None], (SIDE, SIDE, 3)))
    values, _quality = pdqhash.compute_float(rgb)
    block: NDArray[np.float32] = np.asarray(values, dtype=np.float32)[::-1].reshape(16, 16)
    return block


def assert_matches_pdqhash(frames: Frames) -> None:
    n = frames.shape[0]
    hashes, quality = pdq_hashes(frames)
    assert hashes.shape == (n, HASH_BYTES) and hashes.dtype == np.uint8
    assert quality.shape == (n,) and quality.dtype == np.uint8
    ref_hashes, ref_quality = reference(frames)
    np.testing.assert_array_equal(quality, ref_quality)
    distance = np.unpackbits(hashes ^ ref_hashes, axis=1).sum(axis=1)
    differ = np.flatnonzero(distance)
    assert differ.size == 0, (
        f"{differ.size}/{n} hashes differ from pdqhash, max {int(distance.max())} bits; "
        f"frames {differ[:10].tolist()}, quality {ref_quality[differ[:10]].tolist()}"
    )


# -- synthetic frames ----------------------------------------------------------------------------


def texture(seed: int) -> Frames:
    """Smoothed random texture, like a downscaled natural image."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft2(rng.standard_normal((SIDE, SIDE)))
    ky = np.fft.fftfreq(SIDE)[:, None]
    kx = np.fft.rfftfreq(SIDE)[None, :]
    spectrum /= (np.hypot(kx, ky) + 0.02) ** 1.2
    img = np.fft.irfft2(spectrum, (SIDE, SIDE))
    img = 128 + 45 * (img - img.mean()) / img.std()
    out: Frames = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def gradients() -> list[Frames]:
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    fields = [x, y, x + y, x - y, np.hypot(x - 31.5, y - 31.5), np.sin(x / 5) * np.cos(y / 7)]
    out = []
    for field in fields:
        unit = (field - field.min()) / (field.max() - field.min())
        for lo, hi in ((0, 255), (100, 140), (3, 4), (255, 0)):
            out.append(np.rint(lo + (hi - lo) * unit).astype(np.uint8))
    return out


def checkerboards() -> list[Frames]:
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    out = []
    for cell in (1, 2, 3, 4, 8, 16, 32):
        parity = ((y // cell + x // cell) % 2).astype(bool)
        for dark, light in ((0, 255), (120, 136), (7, 8)):
            out.append(np.where(parity, light, dark).astype(np.uint8))
    return out


def synthetic_frames() -> Frames:
    rng = np.random.default_rng(20240611)
    noise = rng.integers(0, 256, (64, SIDE, SIDE), dtype=np.uint8)
    faint = rng.integers(100, 103, (16, SIDE, SIDE), dtype=np.uint8)
    # Near-black frames with a few 1s (a fade to black): DCT coefficients are rounding noise.
    dark = (rng.random((32, SIDE, SIDE)) < np.linspace(0.0005, 0.05, 32)[:, None, None]).astype(
        np.uint8
    )
    flat = np.repeat(np.arange(256, dtype=np.uint8), SIDE * SIDE).reshape(256, SIDE, SIDE)
    parts: Sequence[Frames] = [
        noise,
        faint,
        dark,
        flat,
        np.stack([texture(seed) for seed in range(48)]),
        np.stack(gradients()),
        np.stack(checkerboards()),
    ]
    return np.concatenate(parts)


# -- tests: no ffmpeg ----------------------------------------------------------------------------


def test_gray_64x64_needs_no_blur_and_luma_is_the_gray_value() -> None:
    # computeJaroszFilterWindowSize(64, 64): a window of 1, i.e. no blur (and 64 -> 64
    # decimation is the identity), so the 64x64 luma goes straight to the DCT.
    assert _jarosz_window_size(SIDE, SIDE) == 1
    # pdqhash-python's float64 luma of R = G = B = v, cast to float32, is exactly v.
    np.testing.assert_array_equal(_LUMA, np.arange(256, dtype=np.float32))


def test_synthetic_frames_match_pdqhash() -> None:
    frames = synthetic_frames()
    assert frames.shape[0] > 256  # several batches
    assert_matches_pdqhash(frames)
    _, quality = pdq_hashes(frames)
    assert quality.min() == 0 and quality.max() == 100  # both ends of the scale covered


def test_dct_coefficients_are_bit_identical_to_the_cpp() -> None:
    frames = synthetic_frames()[::7]
    dct = _dct64_to_16(_LUMA[frames])
    expected = np.stack([reference_dct(frame) for frame in frames])
    np.testing.assert_array_equal(dct, expected)


def test_strided_and_read_only_input() -> None:
    frames = np.stack([texture(seed) for seed in range(100, 106)])
    flipped = frames[:, ::-1, ::2].repeat(2, axis=2)  # non-contiguous view of a new array
    flipped.flags.writeable = False
    assert_matches_pdqhash(flipped)


def test_output_fits_frame_hashes() -> None:
    hashes, quality = pdq_hashes(np.stack([texture(seed) for seed in range(3)]))
    fh = FrameHashes.on_grid(0.0, 10.0, hashes, quality)
    assert len(fh) == 3 and bool(np.all(fh.quality >= MIN_QUALITY))


def test_no_frames() -> None:
    hashes, quality = pdq_hashes(np.zeros((0, SIDE, SIDE), np.uint8))
    assert hashes.shape == (0, HASH_BYTES) and hashes.dtype == np.uint8
    assert quality.shape == (0,) and quality.dtype == np.uint8


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((2, SIDE, SIDE), np.float32),
        np.zeros((2, SIDE, SIDE), np.int16),
        np.zeros((2, SIDE, SIDE), np.uint16),
        np.zeros((2, SIDE, SIDE), np.bool_),
    ],
    ids=["float32", "int16", "uint16", "bool"],
)
def test_wrong_dtype_raises(frames: NDArray[np.generic]) -> None:
    with pytest.raises(ValueError, match=rf"frames must be uint8, got dtype {frames.dtype}"):
        pdq_hashes(frames)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape",
    [(SIDE, SIDE), (2, SIDE, 32), (2, 32, SIDE), (2, SIDE, SIDE, 3), (0, 32, 32), (SIDE,)],
)
def test_wrong_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"frames must have shape \(n, 64, 64\), got"):
        pdq_hashes(np.zeros(shape, np.uint8))


# -- tests: real footage decoded by ffmpeg --------------------------------------------------------


def decode_gray(ffmpeg: str, *source: str) -> Frames:
    """Frames as the server samples them: 10 fps, area-scaled to 64x64 gray."""
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *source,
        "-vf", f"fps=10,scale={SIDE}:{SIDE}:flags=area,format=gray", "-f", "rawvideo", "-",
    ]  # fmt: skip
    raw = subprocess.run(cmd, check=True, capture_output=True, timeout=120).stdout
    assert len(raw) % (SIDE * SIDE) == 0
    return np.frombuffer(raw, np.uint8).reshape(-1, SIDE, SIDE)


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name", ["vtest.avi", "tree.avi", "Megamind.avi"])
def test_opencv_sample_footage_matches_pdqhash(ffmpeg: str, name: str) -> None:
    frames = decode_gray(ffmpeg, "-i", str(opencv_sample(name)))
    assert frames.shape[0] >= 100
    assert_matches_pdqhash(frames)


@pytest.mark.ffmpeg
@pytest.mark.parametrize(
    "source",
    ["testsrc2=size=320x240:rate=25", "mandelbrot=size=320x240:rate=25"],
    ids=["testsrc2", "mandelbrot"],
)
def test_generated_footage_matches_pdqhash(ffmpeg: str, source: str) -> None:
    frames = decode_gray(ffmpeg, "-f", "lavfi", "-i", source, "-t", "30")
    assert frames.shape[0] == 300
    assert_matches_pdqhash(frames)
