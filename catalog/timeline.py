"""A case's footage as a timeline: recordings, segments, gaps and each segment's integrity state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from catalog.models import Recording, Segment
from catalog.repository import Catalog
from integrity.continuity import (
    Discontinuity,
    Span,
    WallDiscontinuity,
    WallSpan,
    check_spans,
    check_wall_spans,
    tolerance_s,
)


@dataclass(frozen=True)
class SegmentView:
    index: int
    start_s: float
    end_s: float
    wall_start: datetime | None  # device clock
    wall_start_server: datetime | None  # device clock corrected by the offset seen at handover
    sha256: str
    phash_digest: str | None
    phash_frames: int | None
    integrity: str  # "pending", "hashed", "verified", or what verification found


@dataclass(frozen=True)
class RecordingView:
    recording: Recording
    window: tuple[float | None, float | None]
    segments: tuple[SegmentView, ...]
    gaps: tuple[Discontinuity, ...]

    @property
    def continuous(self) -> bool:
        return not self.gaps


@dataclass(frozen=True)
class CaseTimeline:
    case_id: str
    recordings: tuple[RecordingView, ...]
    device_gaps: tuple[WallDiscontinuity, ...]

    @property
    def continuous(self) -> bool:
        return all(r.continuous for r in self.recordings) and not self.device_gaps


def integrity_state(segment: Segment) -> str:
    if segment.verify_status:
        return segment.verify_status
    return "hashed" if segment.phash is not None else "pending"


def wall_clock(recording: Recording, at_s: float, *, corrected: bool) -> datetime | None:
    """When ``at_s`` into the recording happened, by the device's clock or, with
    ``corrected``, by the server's (device clock plus the offset measured at handover)."""
    if recording.device_start is None:
        return None
    if corrected and recording.clock_offset_s is None:
        return None
    offset = recording.clock_offset_s if corrected and recording.clock_offset_s else 0.0
    return recording.device_start + timedelta(seconds=at_s + offset)


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


def _in_window(segment: Segment, window: tuple[float | None, float | None]) -> bool:
    lo, hi = window
    return (lo is None or segment.end_s > lo) and (hi is None or segment.start_s < hi)


def case_timeline(
    catalog: Catalog, case_id: str, *, tolerance_frames: float, device_tolerance_s: float
) -> CaseTimeline:
    views: list[RecordingView] = []
    recordings: list[Recording] = []
    for link in catalog.case_links(case_id):
        rec = catalog.recording(link.recording_id)
        window = (link.from_s, link.to_s)
        segments = [s for s in catalog.segments(rec.id) if _in_window(s, window)]
        gaps = recording_gaps(rec, segments, tolerance_frames)
        views.append(
            RecordingView(
                recording=rec,
                window=window,
                segments=tuple(
                    SegmentView(
                        index=s.index,
                        start_s=s.start_s,
                        end_s=s.end_s,
                        wall_start=wall_clock(rec, s.start_s, corrected=False),
                        wall_start_server=wall_clock(rec, s.start_s, corrected=True),
                        sha256=s.sha256,
                        phash_digest=s.phash_digest,
                        phash_frames=s.phash_frames,
                        integrity=integrity_state(s),
                    )
                    for s in segments
                ),
                gaps=tuple(gaps),
            )
        )
        recordings.append(rec)
    views.sort(key=lambda v: v.recording.device_start or v.recording.received_at)
    return CaseTimeline(case_id, tuple(views), tuple(device_gaps(recordings, device_tolerance_s)))
