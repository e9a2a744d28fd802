"""Reports 4-5: gaps per recording, and footage near the end of its retention."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from catalog.clock import footage_span
from catalog.gaps import recording_gaps
from catalog.models import Recording, Segment
from catalog.repository import Catalog
from catalog.retention import DELETED
from catalog.stats.base import _chunks, _period, _require_aware
from catalog.stats.reports import _active_links
from store.retention import RetentionPolicy

if TYPE_CHECKING:
    pass


# -- 4. gaps per recording --------------------------------------------------------------------


@dataclass(frozen=True)
class GapRow:
    recording_id: str
    kind: Literal["gap", "overlap"]
    after: str  # "segment N" (a hole inside a segment: the same segment both sides)
    before: str
    start_s: float = field(metadata={"digits": 3})  # on the recording's timeline
    seconds: float = field(metadata={"digits": 3})
    wall_start: datetime | None  # on the wall clock, as FootageSpan


@dataclass(frozen=True)
class RecordingGaps:
    recording_id: str
    device_id: str
    officer_id: str | None
    start: datetime | None  # wall clock
    segments: int
    gaps: int
    gap_s: float = field(metadata={"digits": 3})
    overlaps: int
    overlap_s: float = field(metadata={"digits": 3})
    detail: tuple[GapRow, ...] = field(metadata={"csv": False})  # to_csv(all the details)

    @property
    def continuous(self) -> bool:
        return not self.detail


def _segments_of(catalog: Catalog, recording_ids: Sequence[str]) -> dict[str, list[Segment]]:
    out: dict[str, list[Segment]] = defaultdict(list)
    with catalog.session() as session:
        for chunk in _chunks(recording_ids):
            stmt = (
                select(Segment)
                .where(Segment.recording_id.in_(chunk))
                .order_by(Segment.recording_id, Segment.index)
            )
            for seg in session.scalars(stmt):
                out[seg.recording_id].append(seg)
    return out


def gaps_per_recording(
    catalog: Catalog,
    *,
    since: datetime,
    until: datetime,
    tolerance_frames: float,
    only_with_gaps: bool = False,
) -> list[RecordingGaps]:
    """Gaps and overlaps between adjacent segments, and holes inside segments (the case
    timeline's rule, ``catalog.timeline.recording_gaps``), of every segmented recording
    received in ``[since, until)``; ordered by receipt."""
    lo, hi = _period(since, until)
    stmt = (
        select(Recording)
        .where(
            Recording.received_at >= lo,
            Recording.received_at < hi,
            Recording.status != DELETED,
        )
        .order_by(Recording.received_at, Recording.id)
    )
    with catalog.session() as session:
        recordings = list(session.scalars(stmt))
    segments = _segments_of(catalog, [r.id for r in recordings])
    out: list[RecordingGaps] = []
    for rec in recordings:
        segs = segments.get(rec.id, [])
        if not segs:
            continue
        span = footage_span(rec)
        found = recording_gaps(rec, segs, tolerance_frames)
        detail = tuple(
            GapRow(
                rec.id, d.kind, d.after, d.before, d.start, d.seconds,
                span.start + timedelta(seconds=d.start) if span is not None else None,
            )
            for d in found
        )  # fmt: skip
        if only_with_gaps and not detail:
            continue
        gaps = [d for d in detail if d.kind == "gap"]
        overlaps = [d for d in detail if d.kind == "overlap"]
        out.append(
            RecordingGaps(
                recording_id=rec.id,
                device_id=rec.device_id,
                officer_id=rec.officer_id,
                start=span.start if span is not None else None,
                segments=len(segs),
                gaps=len(gaps),
                gap_s=sum(d.seconds for d in gaps),
                overlaps=len(overlaps),
                overlap_s=sum(d.seconds for d in overlaps),
                detail=detail,
            )
        )
    return out


# -- 5. footage near its retention end --------------------------------------------------------


@dataclass(frozen=True)
class RetentionEnding:
    recording_id: str
    device_id: str
    officer_id: str | None
    category: str | None  # None: uncategorised (the sweep keeps it unless configured not to)
    received_at: datetime
    retain_until: datetime
    days_left: float = field(metadata={"digits": 2})  # <= 0: due at the next sweep


def retention_ending(
    catalog: Catalog, policy: RetentionPolicy, *, now: datetime, within_days: float
) -> list[RetentionEnding]:
    """Recordings whose retention (``received_at`` + the policy's days for their category, as
    ``RetentionService.retain_until``) ends by ``now`` + ``within_days``, not held by an active
    case link and not deleted; soonest first. Already ended, not yet swept: days_left <= 0."""
    at = _require_aware(now, "now")
    horizon = at + timedelta(days=within_days)
    shortest = min([policy.default_days, *policy.by_category.values()])
    stmt = (
        select(Recording)
        .where(
            Recording.status != DELETED,
            Recording.received_at <= horizon - timedelta(days=shortest),
        )
        .order_by(Recording.received_at, Recording.id)
    )
    with catalog.session() as session:
        recordings = list(session.scalars(stmt))
    linked = _active_links(catalog)
    out: list[RetentionEnding] = []
    for rec in recordings:
        if rec.id in linked:
            continue
        until = rec.received_at + timedelta(days=policy.days_for(rec.category))
        if until <= horizon:
            days_left = (until - at).total_seconds() / 86400
            out.append(
                RetentionEnding(
                    rec.id, rec.device_id, rec.officer_id, rec.category, rec.received_at,
                    until, days_left,
                )
            )  # fmt: skip
    out.sort(key=lambda r: (r.retain_until, r.recording_id))
    return out
