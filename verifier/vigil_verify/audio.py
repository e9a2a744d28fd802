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

import functools
import itertools
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
LEVEL_STEP = 4
"""Band levels are kept for every ``LEVEL_STEP``-th frame (~46 ms)."""
LEVEL_BANDS = BANDS + 1
_LEVEL_REF = FRAME**2 * 3 / 32  # a full-scale sine's Hann-windowed band energy: 0 dB
LEVEL_MIN_DB = -100.0  # level byte 0; each step 0.5 dB

_MAGIC = b"VGAF"
_VERSION = 2
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
    levels: NDArray[np.uint8]  # (ceil(n / LEVEL_STEP), LEVEL_BANDS): band levels, 0.5 dB steps

    def __post_init__(self) -> None:
        times = np.array(self.times, dtype=np.float64, copy=True).reshape(-1)
        bits = np.array(self.bits, dtype=np.uint32, copy=True).reshape(-1)
        loud = np.array(self.loudness, dtype=np.float32, copy=True).reshape(-1)
        tonal = np.array(self.tonality, dtype=np.float32, copy=True).reshape(-1)
        levels = np.array(self.levels, dtype=np.uint8, copy=True).reshape(-1, LEVEL_BANDS)
        n = times.shape[0]
        if levels.shape[0] != -(-n // LEVEL_STEP):
            raise ValueError("levels must have one row per LEVEL_STEP frames")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be finite and > 0, got {self.rate}")
        if bits.shape != (n,) or loud.shape != (n,) or tonal.shape != (n,):
            raise ValueError("times, bits, loudness and tonality must have the same length")
        if n and not all(np.all(np.isfinite(a)) for a in (times, loud, tonal)):
            raise ValueError("times, loudness and tonality must be finite")
        if n > 1 and not np.all(np.diff(times) > 0):
            raise ValueError("times must be strictly increasing")
        for array in (times, bits, loud, tonal, levels):
            array.flags.writeable = False
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "loudness", loud)
        object.__setattr__(self, "tonality", tonal)
        object.__setattr__(self, "levels", levels)

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
                self.levels.tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AudioFingerprint:
        if len(data) < _HEADER.size:
            raise ValueError("audio fingerprint blob too short")
        magic, version, _, n, rate = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise ValueError(f"not a version-{_VERSION} audio fingerprint blob")
        rows = -(-n // LEVEL_STEP)
        if n > 1 << 32 or len(data) != _HEADER.size + n * 20 + rows * LEVEL_BANDS:
            raise ValueError("audio fingerprint blob has the wrong length")
        at = _HEADER.size
        times = np.frombuffer(data, "<f8", n, at)
        bits = np.frombuffer(data, "<u4", n, at + 8 * n)
        loud = np.frombuffer(data, "<f4", n, at + 12 * n)
        tonal = np.frombuffer(data, "<f4", n, at + 16 * n)
        levels = np.frombuffer(data, np.uint8, rows * LEVEL_BANDS, at + 20 * n)
        return cls(times, rate, bits, loud, tonal, levels.reshape(rows, LEVEL_BANDS))


def _band_edges() -> NDArray[np.int64]:
    hz = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 2)
    return np.round(hz * FRAME / RATE).astype(np.int64)


_BATCH = 2048
"""Frames transformed at a time: memory stays ~50 MB however long the sound."""


def _frame_energies(
    signal: NDArray[np.float64], count: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per frame: its RMS and its energy in each band. Frames of digital silence (every
    sample 0: a muted microphone, or the hole a clock jump leaves, which ``aresample`` fills)
    are not transformed; their values are 0, as a transform would give. The rest go in batches
    of ``_BATCH``: an hour's hole once took 5 GB and a minute here."""
    nonzero = np.concatenate([[0], np.cumsum(signal != 0.0)])
    starts = HOP * np.arange(count)
    heard = np.flatnonzero(nonzero[starts + FRAME] > nonzero[starts])
    rms = np.zeros(count)
    energy = np.zeros((count, BANDS + 1))
    window = np.hanning(FRAME)
    edges = _band_edges()
    for lo in range(0, heard.size, _BATCH):
        k = heard[lo : lo + _BATCH]
        frames = signal[(HOP * k)[:, None] + np.arange(FRAME)[None, :]]
        rms[k] = np.sqrt(np.mean(frames**2, axis=1))
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        cumulative = np.concatenate([np.zeros((k.size, 1)), np.cumsum(power, axis=1)], axis=1)
        energy[k] = cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]
    return rms, energy


def fingerprint(pcm: NDArray[np.int16], start: float = 0.0) -> AudioFingerprint:
    """Fingerprint mono ``RATE`` Hz PCM whose first sample is at timeline ``start`` s."""
    signal = np.asarray(pcm, dtype=np.float64).reshape(-1) / 32768.0
    count = 0 if signal.size < FRAME else (signal.size - FRAME) // HOP + 1
    rate = RATE / HOP
    if count < 2:
        none = np.zeros(0, dtype=np.float32)
        no_levels = np.zeros((0, LEVEL_BANDS), dtype=np.uint8)
        return AudioFingerprint(
            none.astype(np.float64), rate, none.astype(np.uint32), none, none, no_levels
        )
    rms, energy = _frame_energies(signal, count)
    loud = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), SILENCE_DB)
    peak = energy.max(axis=1) / np.maximum(energy.mean(axis=1), 1e-20)
    tonal = 10.0 * np.log10(np.maximum(peak, 1.0))
    diff = energy[:, :-1] - energy[:, 1:]
    delta = np.diff(diff, axis=0) > 0  # (count - 1, 32)
    weights = (np.uint64(1) << np.arange(BANDS, dtype=np.uint64)).astype(np.uint64)
    bits = (delta.astype(np.uint64) * weights).sum(axis=1).astype(np.uint32)
    times = start + (np.arange(1, count) * HOP + FRAME / 2) / RATE
    level_db = 10.0 * np.log10(np.maximum(energy[1::LEVEL_STEP], 1e-30) / _LEVEL_REF)
    levels = np.clip(np.round((level_db - LEVEL_MIN_DB) * 2), 0, 255).astype(np.uint8)
    return AudioFingerprint(times, rate, bits, loud[1:].astype(np.float32), tonal[1:], levels)


BER_THRESHOLD = 0.45
"""Smoothed bit-error rate above which audio is edited (docs/audio.md)."""
LOUDNESS_THRESHOLD_DB = 6.0
"""Smoothed loudness difference above which audio is edited (docs/audio.md)."""
TONALITY_THRESHOLD_DB = 3.0
"""Smoothed tonality difference above which audio is edited (docs/audio.md)."""
LEVEL_THRESHOLD_DB = 6.0
"""Band level difference (a ``LEVEL_WINDOW_S`` mean, each frame's clipped to ``LEVEL_CLIP_DB``)
above which audio is edited (docs/audio.md)."""
LEVEL_WINDOW_S = 1.0
LEVEL_CLIP_DB = 12.0
LEVEL_RANGE_DB = 20.0
LEVEL_FLOOR_DB = -75.0
GAIN_MAX_DB = 10.0
"""A copy's overall gain up to this is taken out before loudness and levels are compared."""
QUIET_DB = -50.0
BAND_QUIET_DB = -50.0
"""Band level (dB against a full-scale sine) under which a frame's loudest band holds nothing
its bits could keep."""
STILL_DB = 0.5
STILL_RANGE_DB = 40.0
"""Bands this far under a frame's loudest are left out of whether it moved (a coder's noise)."""
"""A band level change (one level step) at or under which a band did not move."""
WINDOW_S = 0.5
MAX_OFFSET_S = 2.0
"""How far from where the pictures sit the sound is looked for (s): a cut of up to this much
sound is placed where it was made."""
DESYNC_S = 0.2
SWITCH_COST = 6.0
"""What a change of alignment costs, in frames' bit-error rate (docs/audio.md): about 0.3 s
of sound that matches clearly better elsewhere."""
UNPAIRED = 0.5
NEAR_HINT = 0.02
MIN_JUMP_S = 0.1
MIN_STRETCH_S = 2.5
"""An alignment held for less than this is no alignment of the sound (``_credible``)."""
"""A change of alignment this large or larger is sound cut out or put in; smaller ones are
jitter of the coders."""


@dataclass(frozen=True)
class AudioVerdict:
    """``kind`` is same / edited / truncated (the same, ending early) / missing / extra;
    ``ranges`` are edited (or lost) stretches on the original's timeline; ``offset`` is the
    copy's audio shift (s) against the original, where most of its sound sits."""

    kind: str
    offset: float = 0.0
    distance: float = 0.0
    ranges: tuple[tuple[float, float], ...] = ()


@functools.cache
def _bit_counts() -> NDArray[np.uint8]:
    """The number of set bits of every 16-bit value."""
    values = np.arange(1 << 16, dtype=np.uint32)
    counts = np.zeros(1 << 16, dtype=np.uint8)
    for bit in range(16):
        counts += ((values >> bit) & 1).astype(np.uint8)
    return counts


def _popcount(values: NDArray[np.uint32]) -> NDArray[np.float64]:
    table = _bit_counts()
    counts: NDArray[np.float64] = table[values & 0xFFFF].astype(np.float64)
    counts += table[values >> 16]
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


def _runs(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The ``[start, end)`` frame index runs where ``flags`` is set."""
    padded = np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8))
    starts, ends = np.flatnonzero(padded == 1), np.flatnonzero(padded == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _ranges(times: NDArray[np.float64], flags: NDArray[np.bool_]) -> list[tuple[float, float]]:
    """The time ranges (first to last frame) of the runs of ``flags``."""
    return [(float(times[a]), float(times[b - 1])) for a, b in _runs(flags)]


Curves = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
"""Per paired frame, each a ``WINDOW_S`` moving mean: bit-error rate, |loudness difference| (dB),
|tonality difference| (dB), and the largest |band level difference| (dB)."""


def curves(
    orig: AudioFingerprint, copy: AudioFingerprint, i: NDArray[np.int64], j: NDArray[np.int64]
) -> Curves:
    """The ``Curves`` between paired frames ``orig[i]`` and ``copy[j]``. The copy's overall
    gain (its median loudness difference, within ``GAIN_MAX_DB``) is taken out first: a copy
    made louder or softer, or downmixed, is the same sound. Where both sides are quiet
    (``QUIET_DB``), or both say nothing the bits can hold (``_bitless``), their bits and
    tonality are a coder's noise and are not compared."""
    width = round(WINDOW_S * orig.rate)
    before = orig.loudness[i].astype(np.float64)
    after = copy.loudness[j].astype(np.float64)
    gain = _gain(before, after, width)
    quiet = (before <= QUIET_DB) & (after - gain <= QUIET_DB)
    quiet |= _bitless(orig, i, 0.0) & _bitless(copy, j, gain)
    ber = np.where(quiet, 0.0, _popcount(orig.bits[i] ^ copy.bits[j]) / BANDS)
    tonal = np.where(quiet, 0.0, np.abs(orig.tonality[i] - copy.tonality[j]))
    loud = np.abs(after - gain - before)
    return (
        _smooth(ber, width),
        _smooth(loud, width),
        _smooth(tonal.astype(np.float64), width),
        _level_curve(orig, copy, i, j, gain),
    )


def _bitless(fp: AudioFingerprint, k: NDArray[np.int64], gain: float) -> NDArray[np.bool_]:
    """Per frame ``fp[k]``: whether its bits are noise, as its band levels say. Either the
    bands hold nothing (the loudest under ``BAND_QUIET_DB`` once ``gain`` is taken out: the
    sound is all below 300 Hz or above 2 kHz, an engine's rumble, a whistle), or none of the
    bands within ``STILL_RANGE_DB`` of the loudest moved by more than ``STILL_DB`` since the
    last level row (a steady tone, a hum): each bit is the sign of a change in band energies,
    and where nothing changes a coder's noise sets it."""
    if k.size == 0:
        return np.zeros(0, dtype=bool)
    levels = fp.levels.astype(np.float64) / 2 + LEVEL_MIN_DB
    top = levels.max(axis=1)
    moved = np.abs(np.diff(levels, axis=0, prepend=levels[:1]))
    near = levels >= top[:, None] - STILL_RANGE_DB
    still = np.where(near, moved, 0.0).max(axis=1) <= STILL_DB
    if levels.shape[0] > 1:
        still[0] = still[1]  # the first row has no row before it
    rows = k // LEVEL_STEP
    return np.asarray((top[rows] - gain <= BAND_QUIET_DB) | still[rows], dtype=np.bool_)


def _gain(before: NDArray[np.float64], after: NDArray[np.float64], width: int) -> float:
    heard = before > SILENCE_DB + 20
    if int(heard.sum()) < width:
        return 0.0
    return float(np.clip(np.median(after[heard] - before[heard]), -GAIN_MAX_DB, GAIN_MAX_DB))


def _level_curve(
    orig: AudioFingerprint,
    copy: AudioFingerprint,
    i: NDArray[np.int64],
    j: NDArray[np.int64],
    gain: float,
) -> NDArray[np.float64]:
    """The largest |band level difference| per paired frame, a ``LEVEL_WINDOW_S`` mean: a
    tone mixed in under louder speech lifts its own band, not the frame's loudness. Each
    frame's difference is clipped to ``LEVEL_CLIP_DB``, so a loud edit is not smeared past its
    ends by the longer window. Bands more than
    ``LEVEL_RANGE_DB`` below the original frame's loudest are compared as that floor (what a
    perceptual coder drops there is not an edit)."""
    if i.size == 0:
        return np.zeros(0)
    before = orig.levels[i // LEVEL_STEP].astype(np.float64) / 2 + LEVEL_MIN_DB
    after = copy.levels[j // LEVEL_STEP].astype(np.float64) / 2 + LEVEL_MIN_DB - gain
    floor = np.maximum(before.max(axis=1, keepdims=True) - LEVEL_RANGE_DB, LEVEL_FLOOR_DB)
    diff = np.clip(
        np.maximum(after, floor) - np.maximum(before, floor), -LEVEL_CLIP_DB, LEVEL_CLIP_DB
    )
    width = min(round(LEVEL_WINDOW_S * orig.rate), diff.shape[0])
    summed = np.cumsum(np.vstack([np.zeros((1, diff.shape[1])), diff]), axis=0)
    lo = np.clip(np.arange(diff.shape[0]) - width // 2, 0, diff.shape[0])
    hi = np.clip(lo + width, 0, diff.shape[0])
    lo = np.clip(hi - width, 0, diff.shape[0])
    mean = (summed[hi] - summed[lo]) / width
    return np.asarray(np.abs(mean).max(axis=1), dtype=np.float64)


def _costs(
    orig: AudioFingerprint, copy: AudioFingerprint, shifts: NDArray[np.int64], base: int
) -> NDArray[np.float64]:
    """Per original frame and candidate shift: the bit-error rate of the pair (``UNPAIRED``
    where the copy has no frame there; 0 where both frames' bits are noise, ``_bitless``),
    plus a slight preference for shifts near ``base``
    (where the pictures say the copy sits), so that a periodic sound keeps that alignment."""
    i = np.arange(len(orig), dtype=np.int64)[:, None]
    j = i - shifts[None, :]
    paired = (j >= 0) & (j < len(copy))
    k = np.clip(j, 0, len(copy) - 1)
    bits = orig.bits[i] ^ copy.bits[k]
    noise = _bitless(orig, i[:, 0], 0.0)[:, None] & _bitless(copy, np.arange(len(copy)), 0.0)[k]
    ber = np.where(paired, np.where(noise, 0.0, _popcount(bits) / BANDS), UNPAIRED)
    reach = max(1, int(np.abs(shifts - base).max()))
    prior = NEAR_HINT * np.abs(shifts - base).astype(np.float64) / reach
    return np.asarray(ber + prior[None, :], dtype=np.float64)


def align(costs: NDArray[np.float64], switch: float) -> NDArray[np.int64]:
    """The cheapest path through ``costs`` (frames x shifts): one shift per frame, ``switch``
    added at each change (Viterbi); returns the column taken at each frame."""
    frames, columns = costs.shape
    back = np.empty((frames, columns), dtype=np.int64)
    back[0] = np.arange(columns)
    acc = costs[0].copy()
    stay = np.arange(columns)
    for t in range(1, frames):
        best = int(acc.argmin())
        jump = acc[best] + switch
        moved = jump < acc
        back[t] = np.where(moved, best, stay)
        acc = np.where(moved, jump, acc) + costs[t]
    path = np.empty(frames, dtype=np.int64)
    path[-1] = int(acc.argmin())
    for t in range(frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _credible(path: NDArray[np.int64], rate: float) -> NDArray[np.int64]:
    """``path`` with each stretch shorter than ``MIN_STRETCH_S`` (between changes of
    ``MIN_JUMP_S`` or more) put back on the alignment before it (the first, on the one after):
    sound that was muted or replaced can match some other stretch of a repetitive sound, and
    such a detour is no cut, it is the edit itself."""
    jump = max(1, round(MIN_JUMP_S * rate))
    cuts = np.flatnonzero(np.abs(np.diff(path)) >= jump) + 1
    bounds = [0, *cuts.tolist(), len(path)]
    runs = list(itertools.pairwise(bounds))
    long = [b - a >= MIN_STRETCH_S * rate for a, b in runs]
    if not any(long):
        a, b = max(runs, key=lambda r: r[1] - r[0])
        return np.full_like(path, int(np.median(path[a:b])))
    out = path.copy()
    held = int(path[runs[long.index(True)][0]])  # before the first long stretch: its start
    for (a, b), credible in zip(runs, long, strict=True):
        if credible:
            held = int(path[b - 1])
        else:
            out[a:b] = held
    return out


def _jumps(times: NDArray[np.float64], path: NDArray[np.int64]) -> list[tuple[float, float]]:
    """Where the alignment moves by ``MIN_JUMP_S`` or more: sound cut or put in there."""
    step = np.abs(np.diff(path))
    at = np.flatnonzero(step >= max(1, round(MIN_JUMP_S / float(np.diff(times[:2])[0]))))
    pad = WINDOW_S / 4
    return [(float(times[k]) - pad, float(times[k + 1]) + pad) for k in at]


def compare_audio(
    orig: AudioFingerprint, copy: AudioFingerprint, *, hint: float = 0.0
) -> AudioVerdict:
    """Align ``copy`` to ``orig`` and find edits: the copy's time t is paired with the
    original's t - offset, the offset searched within ``MAX_OFFSET_S`` of ``hint`` (where
    the copy's pictures sit against the original's) and allowed to change along the way
    (sound cut out or put in: ``align``), as the pictures' alignment is."""
    if not len(orig) or not len(copy):
        kind = "same" if not len(orig) and not len(copy) else ("missing" if len(orig) else "extra")
        return AudioVerdict(kind)
    base = round((copy.times[0] - orig.times[0] - hint) * orig.rate)
    reach = round(MAX_OFFSET_S * orig.rate)
    shifts = np.arange(base - reach, base + reach + 1, dtype=np.int64)
    costs = _costs(orig, copy, shifts, base)
    path = _credible(shifts[align(costs, SWITCH_COST)], orig.rate)
    i = np.arange(len(orig), dtype=np.int64)
    j = i - path
    paired = (j >= 0) & (j < len(copy))
    if not paired.any():
        return AudioVerdict("edited", ranges=((float(orig.times[0]), float(orig.times[-1])),))
    values, counts = np.unique(path[paired], return_counts=True)
    shift = int(values[counts.argmax()])  # where most of the sound sits
    ber, loud, tonal, level = curves(orig, copy, i[paired], j[paired])
    flags = (
        (ber > BER_THRESHOLD)
        | (loud > LOUDNESS_THRESHOLD_DB)
        | (tonal > TONALITY_THRESHOLD_DB)
        | (level > LEVEL_THRESHOLD_DB)
    )
    flagged = np.zeros(len(orig), dtype=bool)
    flagged[paired] = flags
    lost = _runs_longer(~paired, round(WINDOW_S * orig.rate))
    ranges = _merged(sorted(_ranges(orig.times, flagged | lost) + _jumps(orig.times, path)))
    offset = float(copy.times[0] - orig.times[0]) - shift / orig.rate
    distance = float(np.mean(costs[np.arange(len(orig)), np.searchsorted(shifts, path)]))
    kind = "edited" if ranges else "same"
    if len(ranges) == 1 and lost[-1] and not flagged.any():  # all there, up to where it ends
        kind = "truncated"
    return AudioVerdict(kind, offset, distance, tuple(ranges))


def _runs_longer(flags: NDArray[np.bool_], length: int) -> NDArray[np.bool_]:
    """``flags`` kept only in runs of more than ``length`` frames."""
    out = np.zeros_like(flags)
    for a, b in _runs(flags):
        if b - a > length:
            out[a:b] = True
    return out


def _merged(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted ``ranges`` with gaps under ``WINDOW_S`` between them joined."""
    out: list[tuple[float, float]] = []
    for a, b in ranges:
        if out and a - out[-1][1] < WINDOW_S:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def desync(audio_offset: float, video_offset: float) -> bool:
    """Audio shifted against video by ``DESYNC_S`` or more."""
    return abs(audio_offset - video_offset) >= DESYNC_S
