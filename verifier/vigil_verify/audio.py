"""Per-frame audio fingerprints with timeline timestamps (numpy only: the stand-alone
verifier computes them too, from PCM decoded by a stock ffmpeg; no Chromaprint).

A Haitsma-Kalker style sub-fingerprint: mono PCM at ``RATE`` Hz, frames of ``FRAME``
samples (~0.37 s) every ``HOP`` samples (~11.6 ms), Hann window, energy in ``BANDS + 1``
log-spaced bands between 300 and 2000 Hz; bit m of frame n is set when
``(E[n,m] - E[n,m+1]) - (E[n-1,m] - E[n-1,m+1]) > 0``. Beside the 32 bits, each frame
keeps its loudness (RMS, dBFS), so silence (muting) is seen where the bits are unstable.

How a file is decoded for it, and a segment's tracks compared: ``vigil_verify.audio_tracks``.
The thresholds were measured on real and synthetic clips (docs/audio.md).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

RATE = 5512
FRAME = 2048
HOP = 64
BANDS = 32
LOW_HZ = 300.0
HIGH_HZ = 2000.0
SILENCE_DB = -60.0
"""Loudness floor: quieter frames are clamped to this."""

_MAGIC = b"VGAF"
_VERSION = 1
_HEADER = struct.Struct("<4sHHQd")  # magic, version, reserved, n, rate (frames per second)


@dataclass(frozen=True, eq=False)
class AudioFingerprint:
    """32-bit sub-fingerprints and loudness per frame; ``times`` are timeline seconds of
    each frame's centre, strictly increasing; ``rate`` is frames per second."""

    times: NDArray[np.float64]
    rate: float
    bits: NDArray[np.uint32]
    loudness: NDArray[np.float32]
    tonality: NDArray[
        np.float32
    ]  # shape (n,): peak-to-mean band energy, dB: a mixed-in tone raises it

    def __post_init__(self) -> None:
        times = np.array(self.times, dtype=np.float64, copy=True).reshape(-1)
        bits = np.array(self.bits, dtype=np.uint32, copy=True).reshape(-1)
        loud = np.array(self.loudness, dtype=np.float32, copy=True).reshape(-1)
        tonal = np.array(self.tonality, dtype=np.float32, copy=True).reshape(-1)
        n = times.shape[0]
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be finite and > 0, got {self.rate}")
        if bits.shape != (n,) or loud.shape != (n,) or tonal.shape != (n,):
            raise ValueError("times, bits, loudness and tonality must have the same length")
        if n and not all(np.all(np.isfinite(a)) for a in (times, loud, tonal)):
            raise ValueError("times, loudness and tonality must be finite")
        if n > 1 and not np.all(np.diff(times) > 0):
            raise ValueError("times must be strictly increasing")
        for array in (times, bits, loud, tonal):
            array.flags.writeable = False
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "loudness", loud)
        object.__setattr__(self, "tonality", tonal)

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def to_bytes(self) -> bytes:
        n = len(self)
        return b"".join(
            (
                _HEADER.pack(_MAGIC, _VERSION, 0, n, self.rate),
                self.times.astype("<f8").tobytes(),
                self.bits.astype("<u4").tobytes(),
                self.loudness.astype("<f4").tobytes(),
                self.tonality.astype("<f4").tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AudioFingerprint:
        if len(data) < _HEADER.size:
            raise ValueError("audio fingerprint blob too short")
        magic, version, _, n, rate = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise ValueError(f"not a version-{_VERSION} audio fingerprint blob")
        if len(data) != _HEADER.size + n * 20:
            raise ValueError("audio fingerprint blob has the wrong length")
        at = _HEADER.size
        times = np.frombuffer(data, "<f8", n, at)
        bits = np.frombuffer(data, "<u4", n, at + 8 * n)
        loud = np.frombuffer(data, "<f4", n, at + 12 * n)
        tonal = np.frombuffer(data, "<f4", n, at + 16 * n)
        return cls(times=times, rate=rate, bits=bits, loudness=loud, tonality=tonal)


def _band_edges() -> NDArray[np.int64]:
    hz = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 2)
    return np.round(hz * FRAME / RATE).astype(np.int64)


def fingerprint(pcm: NDArray[np.int16], start: float = 0.0) -> AudioFingerprint:
    """Fingerprint mono ``RATE`` Hz PCM whose first sample is at timeline ``start`` s."""
    signal = np.asarray(pcm, dtype=np.float64).reshape(-1) / 32768.0
    count = 0 if signal.size < FRAME else (signal.size - FRAME) // HOP + 1
    rate = RATE / HOP
    if count < 2:
        none = np.zeros(0, dtype=np.float32)
        return AudioFingerprint(none.astype(np.float64), rate, none.astype(np.uint32), none, none)
    index = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    frames = signal[index]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), SILENCE_DB)
    power = np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=1)) ** 2
    edges = _band_edges()
    cumulative = np.concatenate([np.zeros((count, 1)), np.cumsum(power, axis=1)], axis=1)
    energy = cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]
    peak = energy.max(axis=1) / np.maximum(energy.mean(axis=1), 1e-20)
    tonal = 10.0 * np.log10(np.maximum(peak, 1.0))
    diff = energy[:, :-1] - energy[:, 1:]
    delta = np.diff(diff, axis=0) > 0  # (count - 1, 32)
    weights = (np.uint64(1) << np.arange(BANDS, dtype=np.uint64)).astype(np.uint64)
    bits = (delta.astype(np.uint64) * weights).sum(axis=1).astype(np.uint32)
    times = start + (np.arange(1, count) * HOP + FRAME / 2) / RATE
    return AudioFingerprint(times, rate, bits, loud[1:].astype(np.float32), tonal[1:])


BER_THRESHOLD = 0.45
"""Smoothed bit-error rate above which audio is edited (docs/audio.md)."""
LOUDNESS_THRESHOLD_DB = 6.0
"""Smoothed loudness difference above which audio is edited (docs/audio.md)."""
TONALITY_THRESHOLD_DB = 1.5
"""Smoothed tonality difference above which audio is edited (docs/audio.md)."""
WINDOW_S = 0.5
MAX_OFFSET_S = 1.0
DESYNC_S = 0.2


@dataclass(frozen=True)
class AudioVerdict:
    """``kind`` is same / edited / missing / extra; ``ranges`` are edited stretches on the
    original's timeline; ``offset`` is the copy's audio shift (s) against the original."""

    kind: str
    offset: float = 0.0
    distance: float = 0.0
    ranges: tuple[tuple[float, float], ...] = ()


def _popcount(values: NDArray[np.uint32]) -> NDArray[np.float64]:
    as_bytes = values.astype("<u4").view(np.uint8).reshape(-1, 4)
    counts: NDArray[np.float64] = np.unpackbits(as_bytes, axis=1).sum(axis=1).astype(np.float64)
    return counts


def _pair(
    orig: AudioFingerprint, copy: AudioFingerprint, shift: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Indices of frames paired when copy frame j sits at original frame j + shift."""
    lo, hi = max(0, shift), min(len(orig), len(copy) + shift)
    i = np.arange(lo, max(lo, hi), dtype=np.int64)
    return i, i - shift


def _smooth(values: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    if values.size == 0:
        return values
    kernel = np.ones(min(width, values.size)) / min(width, values.size)
    return np.asarray(np.convolve(values, kernel, mode="same"), dtype=np.float64)


def _ranges(times: NDArray[np.float64], flags: NDArray[np.bool_]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    starts, ends = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
    for a, b in zip(starts, ends, strict=True):
        if out and float(times[a]) - out[-1][1] < WINDOW_S:
            out[-1] = (out[-1][0], float(times[b - 1]))
        else:
            out.append((float(times[a]), float(times[b - 1])))
    return out


def curves(
    orig: AudioFingerprint, copy: AudioFingerprint, i: NDArray[np.int64], j: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Smoothed (``WINDOW_S``) bit-error rate, |loudness difference| and |tonality
    difference| between paired frames ``orig[i]`` and ``copy[j]``."""
    width = round(WINDOW_S * orig.rate)
    ber = _smooth(_popcount(orig.bits[i] ^ copy.bits[j]) / BANDS, width)
    loud = _smooth(np.abs(orig.loudness[i] - copy.loudness[j]).astype(np.float64), width)
    tonal = _smooth(np.abs(orig.tonality[i] - copy.tonality[j]).astype(np.float64), width)
    return ber, loud, tonal


def compare_audio(
    orig: AudioFingerprint, copy: AudioFingerprint, *, hint: float = 0.0
) -> AudioVerdict:
    """Align ``copy`` to ``orig`` and find edits: the copy's time t is paired with the
    original's t - offset, the offset searched within ``MAX_OFFSET_S`` of ``hint`` (where
    the copy's pictures sit against the original's)."""
    if not len(orig) or not len(copy):
        kind = "same" if not len(orig) and not len(copy) else ("missing" if len(orig) else "extra")
        return AudioVerdict(kind)
    base = round((copy.times[0] - orig.times[0] - hint) * orig.rate)
    reach = round(MAX_OFFSET_S * orig.rate)
    best: tuple[float, int] = (math.inf, base)
    for shift in range(base - reach, base + reach + 1):
        i, j = _pair(orig, copy, shift)
        if i.size >= min(len(orig), len(copy)) // 2 and i.size:
            mean_ber = float(_popcount(orig.bits[i] ^ copy.bits[j]).mean()) / BANDS
            best = min(best, (mean_ber, shift))
    distance, shift = best
    if not math.isfinite(distance):
        return AudioVerdict("edited", ranges=((float(orig.times[0]), float(orig.times[-1])),))
    i, j = _pair(orig, copy, shift)
    ber, loud, tonal = curves(orig, copy, i, j)
    flags = (ber > BER_THRESHOLD) | (loud > LOUDNESS_THRESHOLD_DB) | (tonal > TONALITY_THRESHOLD_DB)
    offset = float(copy.times[0] - orig.times[0]) - shift / orig.rate
    ranges = _ranges(orig.times[i], flags)
    return AudioVerdict("edited" if ranges else "same", offset, distance, tuple(ranges))


def desync(audio_offset: float, video_offset: float) -> bool:
    """Audio shifted against video by ``DESYNC_S`` or more."""
    return abs(audio_offset - video_offset) >= DESYNC_S
