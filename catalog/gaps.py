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


def _label(segment: Segment) -> str:
    return f"segment {segment.index}"


def _holes(segments: Sequence[Segment]) -> list[Discontinuity]:
    """The gaps the custody path found in the pictures (``transcode.timing``). Each is kept
    with the segment of the picture before it; one that starts at or after that segment's
    end lies between it and the next segment."""
    found: list[Discontinuity] = []
    for at, s in enumerate(segments):
        after = segments[at + 1] if at + 1 < len(segments) else s
        for start, end in holes_of(s):
            before = after if start >= s.end_s - 1e-6 else s
            found.append(Discontinuity("gap", _label(s), _label(before), start, end - start))
    return found


def _covered(boundary: Discontinuity, holes: Sequence[Discontinuity], slack: float) -> bool:
    """Is a gap between two segments' spans one the custody path found and kept as a hole
    (the same stretch, to ``slack``)? A missing segment is a longer stretch: not covered."""
    lo, hi = boundary.start, boundary.start + boundary.seconds
    return any(abs(h.start - lo) <= slack and abs(h.start + h.seconds - hi) <= slack for h in holes)


def recording_tolerance_s(recording: Recording, tolerance_frames: float) -> float:
    """The gap tolerance of ``recording`` (``vigil_verify.continuity.tolerance_s``) on its usual
    interval between pictures (an audio-only recording's: between its audio packets, its
    ``frame_hold_s``; 0.04 s when unknown)."""
    frame = 1.0 / recording.fps if recording.fps else (recording.frame_hold_s or 0.04)
    return tolerance_s(frame, recording.frame_hold_s or frame, tolerance_frames)


def recording_gaps(
    recording: Recording, segments: Sequence[Segment], tolerance_frames: float
) -> list[Discontinuity]:
    """Gaps/overlaps between adjacent segments, and the gaps in the pictures the custody path
    kept with each segment, in time order (docs/continuity.md).

    The holes are the rule itself: judged against the recording's own cadence when it was
    cut. The spans are checked too, with the slack of ``tolerance_s``, so that a missing
    segment, a live segment or a row catalogued before the holes were kept at boundaries
    still shows; a gap found both ways is listed once.
    """
    tolerance = recording_tolerance_s(recording, tolerance_frames)
    holes = _holes(segments)
    spans = [Span(_label(s), s.start_s, s.end_s) for s in segments]
    found = [
        d
        for d in check_spans(spans, tolerance)
        if d.kind == "overlap" or not _covered(d, holes, tolerance)
    ]
    return sorted([*found, *holes], key=lambda d: d.start)


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
