"""Continuity: gaps in a recording's pictures, gaps and overlaps between adjacent segments,
and between recordings of a device.

Pure functions over timestamps, so the rules are tested as tables. The rule for pictures
(``cadence``) is written down in docs/continuity.md. An audio-only recording is judged by the
same rule on its audio packets' times (each packet one "picture"): their cadence is as steady
as a constant-rate camera's, so only packets that are missing make a gap.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray

CADENCE_WINDOW = 8
"""Intervals on each side of an interval between two pictures that set its local cadence."""
CADENCE_QUANTILE = 0.75
"""The local cadence is this quantile of those neighbouring intervals: the camera's usual
hold around that moment, long holds included, without letting one outlier decide."""
MIN_GAP_S = 1e-3
"""No shorter absence of pictures is a gap, whatever the cadence (timestamp rounding)."""
_CHUNK = 1 << 16


def tolerance_s(frame_s: float, hold_s: float, tolerance_frames: float) -> float:
    """How far apart two catalogued spans may be (the end of one, the start of the next) in
    footage that is still continuous: the slack of the checks on rows (``check_spans``),
    for ends that were measured less exactly than the custody path now measures them (a
    live segment, a row catalogued before; see docs/continuity.md).

    ``tolerance_frames`` frames, or for a variable-rate source whose longest normal interval
    between pictures is ``hold_s``, up to twice that interval between two pictures.
    """
    return max(tolerance_frames * frame_s, 2 * hold_s - frame_s, MIN_GAP_S)


ROUNDING_S = 1.001e-3
"""Timestamp error tolerated at the gap threshold: Matroska's default 1 ms time base makes
an interval up to 1 ms long or short (30 fps in ms: 33, 34, 33...); a 90 kHz tick is 11 µs,
and float arithmetic on either adds less than a microsecond."""


def local_cadence(
    intervals: NDArray[np.float64], window: int = CADENCE_WINDOW
) -> NDArray[np.float64]:
    """For each interval between consecutive pictures, the usual interval around it:
    ``CADENCE_QUANTILE`` of the positive intervals among the ``window`` on each side (the
    interval itself left out). Where there are none, the median positive interval of all;
    where there is none at all, the interval itself (nothing to judge it against)."""
    out = _windowed(intervals, window, np.r_[0:window, window + 1 : 2 * window + 1])
    missing = np.isnan(out)
    if missing.any():
        positive = intervals[intervals > 0]
        out[missing] = np.median(positive) if positive.size else np.nan
        out = np.where(np.isnan(out), intervals, out)
    return out


def _windowed(
    intervals: NDArray[np.float64], window: int, columns: NDArray[np.intp]
) -> NDArray[np.float64]:
    """``CADENCE_QUANTILE`` of the positive intervals at ``columns`` of the ``2 * window + 1``
    centred on each interval (NaN where there are none), a chunk of rows at a time."""
    n = intervals.size
    out = np.empty(n, dtype=np.float64)
    positive = np.where(intervals > 0, intervals, np.nan)
    padded = np.concatenate([np.full(window, np.nan), positive, np.full(window, np.nan)])
    for at in range(0, n, _CHUNK):
        rows = min(_CHUNK, n - at)
        view = np.lib.stride_tricks.sliding_window_view(
            padded[at : at + rows + 2 * window], 2 * window + 1
        )
        out[at : at + rows] = _row_quantile(view[:, columns], CADENCE_QUANTILE)
    return out


def _row_quantile(rows: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """``q`` quantile of each row's finite values (linear interpolation); NaN for none."""
    ordered = np.sort(rows, axis=1)  # NaN sorts last
    count = np.isfinite(ordered).sum(axis=1)
    pos = q * np.maximum(count - 1, 0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    a = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
    value = a + (b - a) * (pos - lo)
    return np.where(count > 0, value, np.nan)


@dataclass(frozen=True)
class Cadence:
    """The pictures of a recording in presentation order, judged against their own cadence.

    ``times[i + 1] - times[i]`` is ``intervals[i]``; ``expected[i]`` is the local cadence
    around it (``local_cadence``), ``held[i]`` how long the picture at ``times[i]`` is held by
    the cadence before it (at most ``expected[i]``); ``gap[i]``: no picture was recorded for
    longer than the cadence allows, from ``times[i] + held[i]`` to ``times[i + 1]``.
    """

    times: NDArray[np.float64]
    intervals: NDArray[np.float64]
    expected: NDArray[np.float64]
    held: NDArray[np.float64]
    gap: NDArray[np.bool_]

    def holes(self) -> list[tuple[float, float]]:
        """(start, end) of every gap, in seconds, in time order."""
        return [self.hole(int(i)) for i in np.flatnonzero(self.gap)]

    def hole(self, i: int) -> tuple[float, float]:
        return (float(self.times[i] + self.held[i]), float(self.times[i + 1]))

    @property
    def longest_hold_s(self) -> float:
        """The longest interval between pictures that is not a gap (0 with none)."""
        normal = self.intervals[~self.gap]
        return float(normal.max()) if normal.size else 0.0

    @property
    def closing_hold_s(self) -> float:
        """How long the last picture is held: the cadence of the last intervals that are not
        gaps (0 with none)."""
        normal = self.intervals[~self.gap][-CADENCE_WINDOW:]
        normal = normal[normal > 0]
        return float(np.quantile(normal, CADENCE_QUANTILE)) if normal.size else 0.0

    def footage(self) -> NDArray[np.float64]:
        """Recorded time at each picture: the time since the first, less the gaps (the
        picture before a gap counts for its usual hold)."""
        steps = np.where(self.gap, self.held, self.intervals)
        return np.concatenate([[0.0], np.cumsum(steps)])


def cadence(times: NDArray[np.float64], tolerance_frames: float) -> Cadence:
    """Judge pictures at ``times`` (seconds, sorted) against their own cadence.

    An interval is a gap when the time without a picture beyond the local cadence c
    (``interval - c``) is more than ``tolerance_frames`` cadences, and more than
    ``MIN_GAP_S``. A camera that slows down in the dark changes its cadence with it, so its
    longer holds are no gap; a hole is judged against the pictures around it, at any rate.
    The gap starts when the picture before it has been held for the cadence before it.
    """
    intervals = np.diff(times)
    expected = local_cadence(intervals)
    before = _windowed(intervals, CADENCE_WINDOW, np.r_[0:CADENCE_WINDOW])
    held = np.minimum(np.where(np.isnan(before), expected, before), expected)
    missing = intervals - expected
    # Exactly ``tolerance_frames`` frames missing is no gap, whatever the rounding of the
    # timestamps makes of it (one dropped frame at 1.4 s on a 90 kHz clock was; an AVI's drop
    # frame at 0.033 s in its Matroska segment, on a 1 ms clock, was).
    beyond = missing - tolerance_frames * expected
    gap = (beyond > ROUNDING_S) & (missing > MIN_GAP_S)
    return Cadence(times, intervals, expected, held, gap)


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
