"""Compare a copy with the original frame by frame, by time: what is the same, what changed,
what is gone, what was added, each placed on the timeline.

Frames are paired by time (original time + offset), never by searching for the most similar
content: static scenes look alike across time. The offset may change inside a segment (a cut,
a run of dropped frames, an insertion); ``vigil_verify.align`` finds the path of offsets.
Then, on that path:

- **edited**: a window of ``window_s`` whose mean distance exceeds the recording's threshold,
  or frames with no counterpart at all, placed where the content differs;
- **cut** / **inserted**: a change of offset (original content removed, copy content added),
  placed at the change;
- **dropped frames**: the copy holds one frame across two or more of the original's, where
  its own cadence has a hole (timing: the times say which frames are gone);
- **frozen**: the copy shows one picture for ``window_s`` or longer while the original's
  picture moves by more than the threshold;
- **truncated**: the copy ends (or starts) inside the segment.

The threshold is the recording's own (``threshold_bits``): how far its pictures move in
``window_s``, within a floor and a ceiling (docs/forensic-precision.md has the rule and the
distances it was set on).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from vigil_verify.align import Path, best_path, candidate_offsets, costs
from vigil_verify.audio_tracks import SegmentAudio
from vigil_verify.frames import MIN_QUALITY, FrameHashes, hamming

SegmentStatus = Literal["same", "edited", "missing"]
EditKind = Literal["edited", "cut", "inserted", "dropped", "frozen", "truncated"]


@dataclass(frozen=True)
class Thresholds:
    """Decision parameters (bench/tamper_suite.py measures them on real footage)."""

    edited_bits: float = 16.0  # ceiling of the per-recording threshold (window-mean bits)
    floor_bits: float = 12.0  # floor of the per-recording threshold
    motion_factor: float = 1.0  # threshold = factor x median motion over window_s, clamped
    window_s: float = 0.5
    max_offset_s: float = 3.0
    min_coverage: float = 0.5  # share of original frames found in the copy, else "missing"
    min_extra_s: float = 1.0  # shortest unmatched copy stretch reported as inserted
    jitter_frames: int = 1  # copy frames within ± this many frames may stand in
    penalty_windows: float = 1.5  # cost of an offset change, in threshold x window frames


@dataclass(frozen=True)
class SegmentReference:
    """A stored segment: its place on the recording timeline and its hashes."""

    index: int
    start: float  # timeline seconds (origin 0 = recording start)
    end: float
    frames: FrameHashes


@dataclass(frozen=True)
class Edit:
    """One change, on the original's timeline (for ``inserted``: where, and ``length_s``)."""

    kind: EditKind
    start: float
    end: float
    length_s: float = 0.0


@dataclass(frozen=True)
class SegmentVerdict:
    """Outcome for one segment. Distances are NaN when the segment is missing."""

    index: int
    status: SegmentStatus
    offset_s: float  # alignment offset at the segment's start (copy time = original + offset)
    max_window_bits: float = 0.0  # worst window mean distance on the path
    mean_bits: float = 0.0  # mean distance of frames found
    edited_ranges: tuple[tuple[float, float], ...] = ()  # original timeline seconds
    edits: tuple[Edit, ...] = ()
    threshold_bits: float = math.nan


@dataclass(frozen=True)
class ExtraRange:
    """A stretch of the copy that matches no original footage (copy seconds)."""

    start: float
    end: float


@dataclass(frozen=True)
class MatchReport:
    """Per-segment verdicts and unmatched stretches of the copy."""

    segments: tuple[SegmentVerdict, ...]
    extra: tuple[ExtraRange, ...]
    audio: tuple[SegmentAudio, ...] = ()  # each segment's sound, where either side has any

    @property
    def clean(self) -> bool:
        """True when every segment is "same", in pictures and sound, and the copy has nothing
        extra."""
        pictures = not self.extra and all(s.status == "same" for s in self.segments)
        return pictures and all(a.same for a in self.audio)


def threshold_bits(frames: FrameHashes, thresholds: Thresholds) -> float:
    """The recording's own edit threshold: ``motion_factor`` x the median distance between
    its frames ``window_s`` apart (how far its pictures move in a window), within
    [``floor_bits``, ``edited_bits``]. Footage that barely moves gets a low threshold, so a
    cut or freeze in a slow scene shows; busy footage keeps the ceiling."""
    if len(frames) < 2:
        return thresholds.edited_bits
    later = np.searchsorted(frames.times, frames.times + thresholds.window_s, side="left")
    ok = later < len(frames)
    if not ok.any():
        return thresholds.edited_bits
    a, b = np.flatnonzero(ok), later[ok]
    good = (frames.quality[a] >= MIN_QUALITY) & (frames.quality[b] >= MIN_QUALITY)
    if not good.any():
        return thresholds.edited_bits
    motion = float(np.median(hamming(frames.hashes[a[good]], frames.hashes[b[good]])))
    return float(
        np.clip(thresholds.motion_factor * motion, thresholds.floor_bits, thresholds.edited_bits)
    )


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


@dataclass(frozen=True)
class _Frames:
    """The original segment's frames with their display durations."""

    hashes: FrameHashes
    until: NDArray[np.float64]  # time each frame is shown until

    @classmethod
    def of(cls, frames: FrameHashes) -> _Frames:
        t = frames.times
        until = np.append(t[1:], t[-1] + 1.0 / frames.rate) if len(t) else t
        return cls(frames, until)

    def span(self, a: int, b: int) -> tuple[float, float]:
        return float(self.hashes.times[a]), float(self.until[b])


def _held_distance(
    f: _Frames, path: Path, copy: FrameHashes, jitter_frames: int
) -> NDArray[np.float64]:
    """Per original frame, the largest distance to it of the copy frames shown while it is
    (strictly inside its display time): a frame held long, as in a variable-rate recording,
    must be what the copy shows all that time. NaN where the copy has no frame inside. A
    change up to ``jitter_frames`` copy frames early or late is timing, not content (a
    constant-rate re-encode rounds a variable-rate source's times to its grid)."""
    out = np.full(len(f.hashes), np.nan)
    if len(copy) == 0:
        return out
    tol = 0.5 / max(f.hashes.rate, copy.rate)
    step = 1.0 / copy.rate if copy.rate > 0 else 0.0
    late, early = max(jitter_frames - 1, 0) * step, jitter_frames * step  # start: the path's
    for i in np.flatnonzero(path.present):
        lo = f.hashes.times[i] + path.offset[i] + late + tol
        hi = f.until[i] + path.offset[i] - early - tol
        a, b = np.searchsorted(copy.times, [lo, hi])
        if b > a:
            bits = hamming(copy.hashes[a:b], np.broadcast_to(f.hashes.hashes[i], (b - a, 32)))
            out[i] = float(bits.max())
    return out


def _window_edits(
    f: _Frames, path: Path, limit: float, th: Thresholds, held: NDArray[np.float64]
) -> tuple[list[Edit], float, NDArray[np.bool_]]:
    """Frames with no counterpart, and windows whose mean distance exceeds ``limit`` (the
    edits, the worst window mean, and which frames are hot)."""
    cap = 2 * limit
    value = np.where(path.present, np.minimum(np.fmax(path.distance, held), cap), cap)
    n = value.size
    hot = ~path.present
    worst = 0.0
    if n:
        # windows of window_s of time, each frame weighted by how long it is shown, so a
        # picture held for half a second weighs what fifteen frames at 30 fps do
        t = f.hashes.times
        weight = np.clip(f.until - t, 1e-6, th.window_s)
        cw = np.concatenate(([0.0], np.cumsum(weight)))
        cwd = np.concatenate(([0.0], np.cumsum(weight * value)))
        ends = np.searchsorted(t, t + th.window_s - 1e-9, side="left")
        ends = np.maximum(ends, np.minimum(np.arange(n) + 2, n))  # at least two frames
        means = (cwd[ends] - cwd[:-1]) / (cw[ends] - cw[:-1])
        worst = float(means.max())
        for w in np.flatnonzero(means > limit):
            hot[w : ends[w]] |= value[w : ends[w]] > limit
    edits = []
    for a, b in _runs(hot):
        lo, hi = f.span(a, b)
        if b - a + 1 < 2 and hi - lo < th.window_s:
            continue
        kind: EditKind = "edited"
        if not path.present[a : b + 1].any() and (b == n - 1 or a == 0):
            kind = "truncated"
        edits.append(Edit(kind, lo, hi))
    return edits, worst, hot


def _jump_edits(f: _Frames, path: Path, hot: NDArray[np.bool_], window_s: float) -> list[Edit]:
    """Changes of offset between frames found: content cut from, or inserted into, the copy.

    The change is placed where the pictures stop matching: at the start of the run of
    differing frames just before it, if there is one; else the cut content is taken to end
    where the new offset begins (a static stretch cannot say more).
    """
    step = 1.0 / f.hashes.rate
    times = f.hashes.times
    found = np.flatnonzero(path.present)
    edits = []
    for p, q in itertools.pairwise(found):
        delta = float(path.offset[q] - path.offset[p])
        if abs(delta) < min(1.5 * step, 0.8 * window_s):  # two frames, or most of a window
            continue
        a = int(q)
        while a > 0 and hot[a - 1]:
            a -= 1
        disturbed = a < q
        if delta < 0:
            lo = float(times[a]) if disturbed else max(float(times[0]), float(times[q]) + delta)
            edits.append(Edit("cut", lo, lo - delta, -delta))
        else:
            at = float(times[a])
            edits.append(Edit("inserted", at, at, delta))
    return edits


def _timing_edits(
    f: _Frames, path: Path, copy: FrameHashes, limit: float, th: Thresholds
) -> list[Edit]:
    """Dropped frames (the copy's cadence has a hole where the original has frames) and
    freezes (the copy's picture stands still while the original's moves)."""
    edits: list[Edit] = []
    j = path.copy_index
    present = path.present
    if len(copy) < 2 or not present.any():
        return edits
    usual = float(np.median(np.diff(copy.times)))
    step = 1.0 / f.hashes.rate
    gap_after = np.append(np.diff(copy.times), usual)
    held = present[1:] & present[:-1] & (j[1:] == j[:-1])
    for a, b in _runs(held):
        first, last = a + 1, b + 1  # original frames shown the copy frame of frame a
        shown = j[a]
        if last - first + 1 >= 2 and gap_after[shown] - usual >= 1.5 * step:
            edits.append(Edit("dropped", *f.span(first, last)))
    still = present[1:] & present[:-1] & (j[1:] >= 0) & (j[:-1] >= 0)
    safe = np.where(j >= 0, j, 0)
    change = hamming(copy.hashes[safe[1:]], copy.hashes[safe[:-1]])
    still &= change <= 2
    for a, b in _runs(still):
        lo, hi = f.span(a, b + 1)
        if hi - lo < th.window_s:
            continue
        moved = int(hamming(f.hashes.hashes[a : a + 1], f.hashes.hashes[b + 1 : b + 2])[0])
        drift = int(hamming(copy.hashes[j[a] : j[a] + 1], copy.hashes[j[b + 1] : j[b + 1] + 1])[0])
        if moved > limit and drift <= 2:
            edits.append(Edit("frozen", lo, hi))
    return edits


def _truncation(f: _Frames, path: Path, copy: FrameHashes, edits: list[Edit]) -> list[Edit]:
    """Edits running into the segment's end after the copy has ended (or out of its start
    before the copy begins) are the copy's truncation, from where the copy stops."""
    if not path.present.any() or len(copy) == 0:
        return edits
    step = 1.0 / f.hashes.rate
    found = np.flatnonzero(path.present)
    stops = copy.end - float(path.offset[found[-1]])  # the copy's end, in original time
    begins = copy.start - float(path.offset[found[0]])
    last, first = float(f.until[-1]), float(f.hashes.times[0])
    out = []
    for e in edits:
        if e.kind == "edited" and e.end >= last - 1e-6 and stops < last - step:
            out.append(Edit("truncated", max(e.start, stops), e.end))
        elif e.kind == "edited" and e.start <= first + 1e-6 and begins > first + step:
            out.append(Edit("truncated", e.start, min(e.end, begins)))
        else:
            out.append(e)
    return out


def _verdict(
    original: FrameHashes,
    copy: FrameHashes,
    center: float,
    th: Thresholds,
    index: int,
    limit: float,
) -> tuple[SegmentVerdict, Path]:
    f = _Frames.of(original)
    offsets, entry = candidate_offsets(center, 1.0 / original.rate, th.max_offset_s)
    table = costs(original, copy, offsets, th.jitter_frames)
    width = max(2, round(th.window_s * original.rate))
    path = best_path(
        table,
        entry=entry,
        absent_cost=limit,
        cap=2 * limit,
        penalty=th.penalty_windows * limit * width,
    )
    # missing: the copy has nothing at these times (other pictures there are an edit)
    shown = float((table.copy_index[entry] >= 0).mean()) if len(original) else 0.0
    start_offset = float(path.offset[path.present][0]) if path.present.any() else center
    if len(original) == 0 or shown < th.min_coverage:
        verdict = SegmentVerdict(index, "missing", start_offset, math.nan, math.nan, (), (), limit)
        return verdict, path
    held = _held_distance(f, path, copy, th.jitter_frames)
    window, worst, hot = _window_edits(f, path, limit, th, held)
    timing = _jump_edits(f, path, hot, th.window_s) + _timing_edits(f, path, copy, limit, th)
    edits = _truncation(f, path, copy, window + timing)
    edits.sort(key=lambda e: (e.start, e.end))
    ranges = _merge([(e.start, e.end) for e in edits], 1e-9)
    mean = float(np.nanmean(path.distance)) if path.present.any() else math.nan
    status: SegmentStatus = "edited" if edits else "same"
    verdict = SegmentVerdict(index, status, start_offset, worst, mean, ranges, tuple(edits), limit)
    return verdict, path


def compare_segment(
    original: FrameHashes,
    candidate: FrameHashes,
    thresholds: Thresholds = Thresholds(),
    *,
    index: int = 0,
    limit: float | None = None,
) -> SegmentVerdict:
    """Compare a segment with a candidate on the same timeline (offset searched ±max)."""
    bits = threshold_bits(original, thresholds) if limit is None else limit
    return _verdict(original, candidate, 0.0, thresholds, index, bits)[0]


def _covered(f: _Frames, path: Path, copy: FrameHashes) -> NDArray[np.bool_]:
    """Copy frames that stand for original frames: shown where a found frame is, or in place
    of an absent stretch that the copy replaced by as much footage (not more: that is added)."""
    covered = np.zeros(len(copy), dtype=np.bool_)

    def cover(lo: float, hi: float) -> None:
        a, b = np.searchsorted(copy.times, [lo - 1e-6, hi - 1e-6])
        covered[a:b] = True

    for i in np.flatnonzero(path.present):
        cover(f.hashes.times[i] + path.offset[i], f.until[i] + path.offset[i])
    step = 1.0 / f.hashes.rate
    for a, b in _runs(~path.present):
        if a == 0 or b == len(path.present) - 1:
            continue
        lo = f.hashes.times[a] + path.offset[a - 1]
        hi = f.until[b] + path.offset[b + 1]
        if hi - lo <= f.until[b] - f.hashes.times[a] + step:
            cover(lo, hi)
    return covered


def _is_original(copy: FrameHashes, a: int, b: int, every: FrameHashes, limit: float) -> bool:
    """Whether copy frames a..b are the recording's own footage (moved, not added)."""
    return _seen_in(every.hashes, copy.hashes[a : b + 1], limit)


def _seen_in(pool: NDArray[np.uint8], probes: NDArray[np.uint8], limit: float) -> bool:
    """Whether ``probes`` (up to 25 of them, evenly picked) are, by their median, within
    ``limit`` bits of some hash in ``pool``."""
    pick = np.linspace(0, len(probes) - 1, num=min(len(probes), 25)).round().astype(np.int64)
    bits = [int(hamming(pool, np.broadcast_to(probes[k], pool.shape)).min()) for k in pick]
    return float(np.median(bits)) <= limit


def _all_frames(original: Sequence[SegmentReference], rate: float) -> FrameHashes:
    """Every segment's frames on one timeline (segments hashed apart keep their own rate)."""
    parts = [s.frames for s in original if len(s.frames)]
    if not parts:
        return FrameHashes.empty(rate)
    times = np.concatenate([p.times for p in parts])
    keep = np.concatenate(([True], np.diff(times) > 0))
    return FrameHashes(
        times[keep],
        parts[0].rate,
        np.concatenate([p.hashes for p in parts])[keep],
        np.concatenate([p.quality for p in parts])[keep],
    )


def match_recording(
    original: Sequence[SegmentReference],
    copy: FrameHashes,
    thresholds: Thresholds = Thresholds(),
) -> MatchReport:
    """Match a whole outside copy (own timeline from 0) against a recording's segments.

    Each segment's path starts at the offset the last segment found ended on. A segment not
    found the same there is looked for again right after where that segment ended in the copy:
    a copy re-encoded without the file's own timestamps has the recording's gaps (a camera's
    clock jump, a lost connection) closed up, and a copy with a segment cut out has the next
    one there, so its footage after the gap or cut sits earlier. A segment whose frames are
    mostly not found is not where the next one starts from; one of those whose place in the
    copy the other segments' footage fills was cut out: "missing". Copy stretches of at least
    ``min_extra_s`` that no found frame covers, and that are not the recording's own footage
    elsewhere, are reported as inserted.
    """
    every = _all_frames(original, copy.rate)
    limit = threshold_bits(every, thresholds)
    running = 0.0
    resume: float | None = None  # copy time just after the last frame found
    verdicts: list[SegmentVerdict] = []
    lost: dict[int, tuple[SegmentReference, float, float]] = {}  # mostly not found: where
    covered = np.zeros(len(copy), dtype=np.bool_)
    for segment in original:
        verdict, path = _verdict(segment.frames, copy, running, thresholds, segment.index, limit)
        if verdict.status != "same" and resume is not None and len(segment.frames):
            closed = resume - float(segment.frames.times[0])
            if abs(closed - running) > thresholds.max_offset_s:
                again = _verdict(segment.frames, copy, closed, thresholds, segment.index, limit)
                if _better(again[0], verdict):
                    verdict, path = again
        verdicts.append(verdict)
        if len(path.present) and path.present.mean() < thresholds.min_coverage:
            lost[len(verdicts) - 1] = (segment, segment.start + running, segment.end + running)
            continue  # not found: the next segment is looked for where this one was to be
        if path.present.any():
            last = int(np.flatnonzero(path.present)[-1])
            running = float(path.offset[last])
            resume = float(segment.frames.times[last]) + running + 1.0 / segment.frames.rate
            covered |= _covered(_Frames.of(segment.frames), path, copy)
    for k, (segment, lo, hi) in lost.items():
        if (
            verdicts[k].status == "edited"
            and _filled(copy, covered, lo, hi)
            and not _elsewhere(segment.frames, copy, ~covered, limit)
        ):
            v = verdicts[k]
            verdicts[k] = SegmentVerdict(
                v.index, "missing", v.offset_s, math.nan, math.nan, (), (), limit
            )
    extra: list[ExtraRange] = []
    for a, b in _runs(~covered):
        lo, hi = float(copy.times[a]), float(copy.times[b]) + 1.0 / copy.rate
        if hi - lo >= thresholds.min_extra_s - 1e-9 and not _is_original(copy, a, b, every, limit):
            extra.append(ExtraRange(lo, hi))
    return MatchReport(tuple(verdicts), tuple(extra))


_RANK: dict[SegmentStatus, int] = {"same": 0, "edited": 1, "missing": 2}


def _better(candidate: SegmentVerdict, current: SegmentVerdict) -> bool:
    """Whether ``candidate`` is the better reading of a segment: a better status, or as
    edited with fewer edited seconds."""
    if _RANK[candidate.status] != _RANK[current.status]:
        return _RANK[candidate.status] < _RANK[current.status]
    if candidate.status != "edited":
        return False
    edited = sum(b - a for a, b in candidate.edited_ranges)
    return edited < sum(b - a for a, b in current.edited_ranges) - 1e-9


def _elsewhere(
    frames: FrameHashes, copy: FrameHashes, free: NDArray[np.bool_], limit: float
) -> bool:
    """Whether a segment's pictures are in the copy's frames that no segment was found in
    (moved there, as in a reordered copy: not gone)."""
    if not free.any() or not len(frames):
        return False
    return _seen_in(copy.hashes[free], frames.hashes, limit)


def _filled(copy: FrameHashes, covered: NDArray[np.bool_], lo: float, hi: float) -> bool:
    """Whether the copy's frames in [lo, hi) stand, for the most part, for other segments'
    footage (so what was there in the recording is gone from the copy, not replaced)."""
    a, b = np.searchsorted(copy.times, [lo - 1e-6, hi - 1e-6])
    return bool(b > a and covered[a:b].mean() >= 0.5)
