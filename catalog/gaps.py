"""Gaps in the catalogued footage: between a recording's segments, holes inside them, and
between consecutive recordings of a device. The rules are ``vigil_verify.continuity``'s, shared
with the stand-alone verifier; here they are applied to catalogue rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

from vigil_verify.continuity import (
    Discontinuity,
    Span,
    WallDiscontinuity,
    WallSpan,
    check_spans,
    check_wall_spans,
    tolerance_s,
)

from catalog.models import Recording, Segment


def holes_of(segment: Segment) -> list[tuple[float, float]]:
    if not segment.holes:
        return []
    return [(float(a), float(b)) for a, b in json.loads(segment.holes)]


def recording_gaps(
    recording: Recording, segments: Sequence[Segment], tolerance_frames: float
) -> list[Discontinuity]:
    """Gaps/overlaps between adjacent segments, and holes inside segments, in time order."""
    frame = 1.0 / recording.fps if recording.fps else 0.04
    tolerance = tolerance_s(frame, recording.frame_hold_s or frame, tolerance_frames)
    spans = [Span(f"segment {s.index}", s.start_s, s.end_s) for s in segments]
    found = check_spans(spans, tolerance)
    for s in segments:
        for start, end in holes_of(s):
            label = f"segment {s.index}"
            found.append(Discontinuity("gap", label, label, start, end - start))
    return sorted(found, key=lambda d: d.start)


def wall_span(recording: Recording) -> WallSpan | None:
    if recording.device_start is None or recording.duration_s is None:
        return None
    return WallSpan(
        recording.id,
        recording.device_start,
        recording.device_start + timedelta(seconds=recording.duration_s),
    )


def device_gaps(recordings: Sequence[Recording], tolerance_s: float) -> list[WallDiscontinuity]:
    """Between consecutive recordings of each device (by device clock)."""
    found: list[WallDiscontinuity] = []
    by_device: dict[str, list[WallSpan]] = {}
    unique = {rec.id: rec for rec in recordings}.values()  # a recording may be linked twice
    for rec in unique:
        span = wall_span(rec)
        if span is not None:
            by_device.setdefault(rec.device_id, []).append(span)
    for spans in by_device.values():
        found.extend(check_wall_spans(spans, tolerance_s))
    return found
