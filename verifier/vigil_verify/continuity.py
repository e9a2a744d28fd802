"""Continuity: gaps and overlaps between adjacent segments, and between recordings of a device.

Pure functions over timestamps, so the rules are tested as tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


def tolerance_s(frame_s: float, hold_s: float, tolerance_frames: float) -> float:
    """How much time may pass between the end of one frame and the next frame, in footage
    that is still continuous.

    ``tolerance_frames`` frames, or for a variable-rate source whose typical interval between
    pictures is ``hold_s``, up to twice that interval between two pictures.
    """
    return max(tolerance_frames * frame_s, 2 * hold_s - frame_s, 1e-3)


@dataclass(frozen=True)
class Span:
    """A stretch of footage on one timeline (seconds)."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Discontinuity:
    kind: Literal["gap", "overlap"]
    after: str  # label of the span before it
    before: str  # label of the span after it
    start: float  # where it begins on the timeline
    seconds: float  # its length (positive)


def check_spans(spans: Sequence[Span], tolerance_s: float) -> list[Discontinuity]:
    """Gaps and overlaps larger than ``tolerance_s`` between consecutive spans."""
    found: list[Discontinuity] = []
    for prev, nxt in itertools.pairwise(spans):
        delta = nxt.start - prev.end
        if delta > tolerance_s:
            found.append(Discontinuity("gap", prev.label, nxt.label, prev.end, delta))
        elif delta < -tolerance_s:
            found.append(Discontinuity("overlap", prev.label, nxt.label, nxt.start, -delta))
    return found


@dataclass(frozen=True)
class WallSpan:
    """A recording on the wall clock."""

    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class WallDiscontinuity:
    kind: Literal["gap", "overlap"]
    after: str
    before: str
    start: datetime
    seconds: float


def check_wall_spans(spans: Sequence[WallSpan], tolerance_s: float) -> list[WallDiscontinuity]:
    """Between consecutive recordings of one device (in any order): the same rule as
    ``check_spans``, on seconds from the earliest start."""
    if not spans:
        return []
    ordered = sorted(spans, key=lambda s: s.start)
    zero = ordered[0].start

    def seconds(at: datetime) -> float:
        return (at - zero).total_seconds()

    found = check_spans(
        [Span(s.label, seconds(s.start), seconds(s.end)) for s in ordered], tolerance_s
    )
    return [
        WallDiscontinuity(d.kind, d.after, d.before, zero + timedelta(seconds=d.start), d.seconds)
        for d in found
    ]
