"""Locate edits in time by comparing per-frame hashes at aligned timestamps.

Frames are paired by timestamp (original time + offset), never by searching for
the most similar content: static scenes look alike across time. A small offset
search (±``max_offset_s`` around a running offset) absorbs cuts and insertions,
so that a removed second flags only the segment holding it.

A segment is judged by a rolling window mean of aligned distances, not by its
overall mean, so a short edit inside a long segment is not diluted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from vigil_verify.frames import HASH_BITS, MIN_QUALITY, FrameHashes, hamming

SegmentStatus = Literal["same", "edited", "missing"]

_TIE_BITS = 0.25
"""Offsets scoring within this of the best count as tied; the one nearest the
running offset wins (keeps static scenes from drifting)."""


@dataclass(frozen=True)
class Thresholds:
    """Decision parameters; defaults calibrated by bench/calibrate_phash.py."""

    edited_bits: float = 16.0  # window-mean bits above which a window is an edit
    window_s: float = 1.0
    max_offset_s: float = 3.0
    min_coverage: float = 0.5  # share of original frames with a counterpart, else "missing"
    min_extra_s: float = 1.0  # shortest unmatched copy stretch reported as extra
    jitter_frames: int = 1  # copy frames within ± this many grid steps may stand in


@dataclass(frozen=True)
class SegmentReference:
    """A stored segment: its place on the recording timeline and its hashes."""

    index: int
    start: float  # timeline seconds (origin 0 = recording start)
    end: float
    frames: FrameHashes


@dataclass(frozen=True)
class SegmentVerdict:
    """Outcome for one segment. Distances are NaN when the segment is missing."""

    index: int
    status: SegmentStatus
    offset_s: float  # best alignment offset (copy time = original time + offset)
    max_window_bits: float  # worst window mean distance
    mean_bits: float  # mean aligned distance
    edited_ranges: tuple[tuple[float, float], ...]  # original timeline seconds


@dataclass(frozen=True)
class ExtraRange:
    """A stretch of the copy that matches no original segment (copy seconds)."""

    start: float
    end: float


@dataclass(frozen=True)
class MatchReport:
    """Per-segment verdicts and unmatched stretches of the copy."""

    segments: tuple[SegmentVerdict, ...]
    extra: tuple[ExtraRange, ...]

    @property
    def clean(self) -> bool:
        """True when every segment is "same" and the copy has nothing extra."""
        return not self.extra and all(s.status == "same" for s in self.segments)


@dataclass(frozen=True)
class _Alignment:
    """Original frames paired with copy frames at one offset."""

    offset: float
    matched: NDArray[np.bool_]  # original frame has a copy frame at time + offset
    valid: NDArray[np.bool_]  # matched and not both sides below MIN_QUALITY
    exact: NDArray[np.int64]  # Hamming bits to the nearest copy frame (0 where not matched)
    distance: NDArray[np.int64]  # least bits within the jitter reach (0 where not matched)

    @property
    def coverage(self) -> float:
        return float(self.matched.mean()) if self.matched.size else 0.0

    @property
    def score(self) -> float:
        """Mean of the lower half of exact distances: robust to an edited minority.

        Unmatched frames count as unrelated (128 bits), so an offset cannot win by
        pushing frames off the copy's ends. Exact (not jittered) distances, so
        neighbouring offsets do not tie.
        """
        unmatched = np.full(int(np.count_nonzero(~self.matched)), HASH_BITS / 2)
        d = np.sort(np.concatenate((self.exact[self.valid].astype(np.float64), unmatched)))
        if d.size == 0:
            return 0.0
        return float(d[: (d.size + 1) // 2].mean())


def _align(
    original: FrameHashes, copy: FrameHashes, offset: float, jitter_frames: int
) -> _Alignment:
    """Pair each original frame with the copy frame nearest ``time + offset``.

    The distance is the least over copy frames within ``jitter_frames`` grid steps
    of that time: sampling-phase jitter on low-frame-rate or fast footage would
    otherwise raise isolated frames, while an edit lasting longer is unaffected.
    """
    n = len(original)
    matched = np.zeros(n, dtype=np.bool_)
    distance = np.zeros(n, dtype=np.int64)
    if n == 0 or len(copy) == 0:
        return _Alignment(offset, matched, matched.copy(), distance, distance.copy())
    target = original.times + offset
    pos = np.searchsorted(copy.times, target)
    right = np.minimum(pos, len(copy) - 1)
    left = np.maximum(pos - 1, 0)
    nearest = np.where(
        np.abs(copy.times[left] - target) <= np.abs(copy.times[right] - target), left, right
    )
    tol = 0.5 / original.rate + 1e-6
    matched = np.abs(copy.times[nearest] - target) <= tol
    idx = nearest[matched]
    exact = distance.copy()
    exact[matched] = best = hamming(original.hashes[matched], copy.hashes[idx])
    reach = tol + jitter_frames / original.rate
    for step in range(-jitter_frames, jitter_frames + 1):
        other = np.clip(idx + step, 0, len(copy) - 1)
        near = np.abs(copy.times[other] - target[matched]) <= reach
        bits = hamming(original.hashes[matched], copy.hashes[other])
        best = np.where(near, np.minimum(best, bits), best)
    distance[matched] = best
    both_low = np.zeros(n, dtype=np.bool_)
    both_low[matched] = (original.quality[matched] < MIN_QUALITY) & (
        copy.quality[idx] < MIN_QUALITY
    )
    return _Alignment(offset, matched, matched & ~both_low, exact, distance)


def _best_alignment(
    original: FrameHashes, copy: FrameHashes, center: float, thresholds: Thresholds
) -> _Alignment:
    """Offset within ±max_offset_s of ``center`` minimising the robust score."""
    steps = round(thresholds.max_offset_s * original.rate)
    # ordered by distance from center, so the first of tied offsets is the nearest
    candidates = [
        _align(original, copy, center + k / original.rate, thresholds.jitter_frames)
        for k in sorted(range(-steps, steps + 1), key=abs)
    ]
    scores = [a.score for a in candidates]
    best = min(scores)
    return next(a for a, s in zip(candidates, scores, strict=True) if s <= best + _TIE_BITS)


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of True runs."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _merge(ranges: list[tuple[float, float]], gap: float) -> tuple[tuple[float, float], ...]:
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted(ranges):
        if merged and lo - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _judge(
    original: FrameHashes,
    alignment: _Alignment,
    entry: _Alignment,
    thresholds: Thresholds,
    index: int,
) -> SegmentVerdict:
    """Window rule on ``alignment``; ``entry`` (the offset carried in) narrows ranges.

    A frame that matches at the entry offset is present in the copy, so a cut or
    insertion is reported where content is actually absent, not over the part of
    the segment before it.
    """
    times, frame_s = original.times, 1.0 / original.rate
    valid_idx = np.flatnonzero(alignment.valid)
    d = alignment.distance[valid_idx].astype(np.float64)
    hot = np.zeros(len(original), dtype=np.bool_)
    max_window = 0.0
    if d.size:
        width = min(d.size, max(1, round(thresholds.window_s * original.rate)))
        sums = np.cumsum(np.concatenate(([0.0], d)))
        means = (sums[width:] - sums[:-width]) / width
        max_window = float(means.max())
        for w in np.flatnonzero(means > thresholds.edited_bits):
            members = valid_idx[w : w + width]
            hot[members] = alignment.distance[members] > thresholds.edited_bits
    unmatched = ~alignment.matched
    if entry.offset != alignment.offset:
        present = entry.matched & (entry.distance <= thresholds.edited_bits)
        if np.any(hot & ~present):
            hot &= ~present
        unmatched &= ~present
    ranges = [(float(times[a]), float(times[b]) + frame_s) for a, b in _runs(hot)]
    for a, b in _runs(unmatched):
        if (times[b] + frame_s - times[a]) >= thresholds.window_s - 1e-9:
            ranges.append((float(times[a]), float(times[b]) + frame_s))
    edited = _merge(ranges, thresholds.window_s)
    return SegmentVerdict(
        index=index,
        status="edited" if edited else "same",
        offset_s=alignment.offset,
        max_window_bits=max_window,
        mean_bits=float(d.mean()) if d.size else 0.0,
        edited_ranges=edited,
    )


def _verdict(
    original: FrameHashes,
    copy: FrameHashes,
    center: float,
    thresholds: Thresholds,
    index: int,
) -> SegmentVerdict:
    alignment = _best_alignment(original, copy, center, thresholds)
    if alignment.coverage < thresholds.min_coverage:
        return SegmentVerdict(index, "missing", alignment.offset, math.nan, math.nan, ())
    entry = _align(original, copy, center, thresholds.jitter_frames)
    return _judge(original, alignment, entry, thresholds, index)


def compare_segment(
    original: FrameHashes,
    candidate: FrameHashes,
    thresholds: Thresholds = Thresholds(),
    *,
    index: int = 0,
) -> SegmentVerdict:
    """Compare a segment with a candidate on the same timeline (offset searched ±max)."""
    return _verdict(original, candidate, 0.0, thresholds, index)


def match_recording(
    original: Sequence[SegmentReference],
    copy: FrameHashes,
    thresholds: Thresholds = Thresholds(),
) -> MatchReport:
    """Match a whole outside copy (own timeline from ~0) against a recording's segments.

    Each segment's offset is searched around the previous found one, so a cut or
    insertion shifts later segments once. Copy stretches >= min_extra_s that no
    found segment covers are reported as extra.
    """
    running = 0.0
    verdicts: list[SegmentVerdict] = []
    covered = np.zeros(len(copy), dtype=np.bool_)
    for segment in original:
        verdict = _verdict(segment.frames, copy, running, thresholds, segment.index)
        verdicts.append(verdict)
        if verdict.status == "missing":
            continue
        running = verdict.offset_s
        covered |= (copy.times >= segment.start + running - 1e-9) & (
            copy.times < segment.end + running - 1e-9
        )
    extra: list[ExtraRange] = []
    for a, b in _runs(~covered):
        lo, hi = float(copy.times[a]), float(copy.times[b]) + 1.0 / copy.rate
        if hi - lo >= thresholds.min_extra_s - 1e-9:
            extra.append(ExtraRange(lo, hi))
    return MatchReport(tuple(verdicts), tuple(extra))
