"""Segment timing from the recording's own cadence: where to cut, and each segment's span and
holes (the rule is ``vigil_verify.continuity.cadence``; docs/continuity.md).

Pure functions over probed tracks, so they are tested on arrays; ``transcode.segmenter`` runs
ffmpeg with the cuts planned here and times what it made with ``segment_timings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from vigil_verify.continuity import cadence

from transcode.probe import Track

_EPS_S = 1e-6  # timestamp arithmetic in float seconds
MPEG_TS_TB = Fraction(1, 90_000)
WRAP_TICKS = 2**33  # MPEG-TS timestamps are 33 bits of 90 kHz: they wrap after ~26.5 h


def plan_cuts(track: Track, segment_s: float, tolerance_frames: float) -> list[int]:
    """Positions (in ``track``'s file order) of the keyframes where segments 1, 2... start.

    Segments are measured in recorded time (``Cadence.footage``: gaps count as one usual
    interval), not in timestamps: a segment starts at the first keyframe at or after each
    multiple of ``segment_s`` of footage since the run began, as ffmpeg's ``segment_time``
    does from timestamp 0 on a source without jumps. A run begins at the first packet and
    again at the first keyframe after a timestamp jump: more than ``segment_s`` with no
    picture between two consecutive keyframes, or a step back in time (a device clock set
    back). So a recording that starts late, or whose timestamps jump or wrap, keeps its
    segment length on both sides, and a jump lands between two segments where it can.
    """
    if track.count < 2 or segment_s <= 0:
        return []
    footage = np.empty(track.count, dtype=np.float64)
    footage[track.order] = track.timing(tolerance_frames).footage()
    seconds = track.pts.astype(np.float64) * float(track.stream.time_base)
    cuts: list[int] = []
    origin, done, previous = float(footage[0]), 0, 0
    for at in np.flatnonzero(track.key):
        k = int(at)
        if k == 0:
            continue
        recorded = float(footage[k] - footage[previous])
        elapsed = float(seconds[k] - seconds[previous])
        if recorded < -_EPS_S or elapsed - recorded > segment_s:
            cuts.append(k)
            origin, done = float(footage[k]), 0
        elif footage[k] - origin >= segment_s * (done + 1) - _EPS_S:
            cuts.append(k)
            done += 1
        previous = k
    return cuts


@dataclass(frozen=True)
class SegmentTiming:
    """One segment on its own timestamps (seconds)."""

    start_s: float  # its first picture
    end_s: float  # the next segment's first picture, or its last picture's usual hold
    frames: int
    holes: tuple[tuple[float, float], ...]  # gaps after its pictures (one may end past end_s)


def segment_timings(tracks: Sequence[Track], tolerance_frames: float) -> list[SegmentTiming]:
    """Time consecutive segments' video tracks (each on the segments' timestamps) together.

    The pictures of all of them are judged as one recording (``vigil_verify.continuity``),
    so a boundary is judged by the cadence around it like any other interval. A segment
    ends where the next picture starts when no gap lies between them; before a gap, and at
    the end, its last picture is held for its usual time (the local cadence, or its packet
    duration if longer). Each gap belongs to the segment of the picture before it: a gap at
    a boundary lies between that segment's end and the next one's start.
    """
    if not tracks or not all(t.count for t in tracks):
        raise ValueError("every segment needs at least one picture")
    times = np.concatenate([t.pts.astype(np.float64) * float(t.stream.time_base) for t in tracks])
    held = np.concatenate(
        [np.maximum(t.duration, 0).astype(np.float64) * float(t.stream.time_base) for t in tracks]
    )
    owner = np.concatenate([np.full(t.count, i) for i, t in enumerate(tracks)])
    order = np.argsort(times, kind="stable")
    judged = cadence(times[order], tolerance_frames)
    owner, held = owner[order], held[order]
    last_at = len(order) - 1
    holes: list[list[tuple[float, float]]] = [[] for _ in tracks]
    for i in np.flatnonzero(judged.gap):
        holes[int(owner[i])].append(judged.hole(int(i)))
    by_owner = np.split(np.argsort(owner, kind="stable"), np.cumsum([t.count for t in tracks])[:-1])
    found: list[SegmentTiming] = []
    for index, mine in enumerate(by_owner):
        first, last = int(mine[0]), int(mine[-1])
        if last == last_at:
            end = float(judged.times[last]) + max(judged.closing_hold_s, float(held[last]))
        elif judged.gap[last]:
            end = judged.hole(last)[0]
        else:
            end = float(judged.times[last + 1])
        found.append(
            SegmentTiming(float(judged.times[first]), end, int(mine.size), tuple(holes[index]))
        )
    return found


def unwrap(tracks: Sequence[Track]) -> list[Track]:
    """Consecutive MPEG-TS segments read one by one, put back on one clock.

    ffmpeg unwraps the 33-bit clock within one file, but a segment cut after the wrap, read
    alone, starts again near 0 (or, cut across it, below 0): each such track is moved by the
    multiple of 2^33 ticks that brings it nearest to the end of the one before.
    """
    found: list[Track] = []
    for track in tracks:
        if found and track.count and track.stream.time_base == MPEG_TS_TB:
            previous = found[-1]
            behind = int(previous.pts.max()) - int(track.pts.min()) if previous.count else 0
            wraps = round(behind / WRAP_TICKS)
            if wraps:
                track = replace(track, pts=track.pts + wraps * WRAP_TICKS)
        found.append(track)
    return found
