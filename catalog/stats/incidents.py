"""Report 6: expected versus recorded. Dispatched incidents, imported from CSV, reconciled
against the footage that covers them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update

from catalog.clock import FootageSpan, footage_span
from catalog.db import insert_ignore
from catalog.gaps import holes_of
from catalog.models import IncidentRecord, Recording, Segment
from catalog.repository import Catalog
from catalog.repository import now as utc_now
from catalog.stats.base import (
    _RECEIVED_MARGIN,
    DEFAULT_MIN_COVERAGE,
    Coverage,
    CsvError,
    StatsError,
    _chunks,
    _require_aware,
    _table,
)
from catalog.stats.csvin import _ident, _read_csv, _time
from catalog.stats.footage import _segments_of

if TYPE_CHECKING:
    pass


# -- 6. expected versus recorded --------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """A dispatch or incident an officer attended: footage is expected for [start, end)."""

    incident_id: str
    officer_id: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = _require_aware(self.start, f"incident {self.incident_id} start")
        end = _require_aware(self.end, f"incident {self.incident_id} end")
        if end <= start:
            raise StatsError(f"incident {self.incident_id} ends before it starts")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True)
class Reconciliation:
    incident_id: str
    officer_id: str
    start: datetime
    end: datetime
    expected_s: float = field(metadata={"digits": 1})
    covered_s: float = field(metadata={"digits": 1})  # footage of the officer within it
    coverage: float = field(metadata={"digits": 4})
    status: Coverage  # recorded: coverage >= min_coverage; missing: no footage at all
    recordings: tuple[str, ...]  # the officer's recordings overlapping it


@dataclass(frozen=True)
class ReconcileSummary:
    incidents: int
    recorded: int
    partial: int
    missing: int
    missing_share: float | None = field(metadata={"digits": 4})
    covered_share: float | None = field(metadata={"digits": 4})  # by time, over all incidents


@dataclass(frozen=True)
class IncidentImport:
    added: int
    updated: int  # officer or times changed
    unchanged: int


def parse_incidents_csv(text: str) -> list[Incident]:
    """``incident_id,officer_id,start,end``; times ISO 8601 with a UTC offset; end after
    start; an incident ID at most once. Errors name the line and the field."""
    out: list[Incident] = []
    seen: dict[str, int] = {}
    for line, row in _read_csv(text, ("incident_id", "officer_id", "start", "end")):
        incident = _ident(line, row, "incident_id")
        if incident in seen:
            raise CsvError(
                line, f"incident {incident!r} is listed on line {seen[incident]} too", "incident_id"
            )
        seen[incident] = line
        officer = _ident(line, row, "officer_id")
        start, end = _time(line, row, "start"), _time(line, row, "end")
        if end <= start:
            raise CsvError(line, f"{row['end']!r} is not after start {row['start']!r}", "end")
        out.append(Incident(incident, officer, start, end))
    return out


def import_incidents(
    catalog: Catalog, incidents: Iterable[Incident], *, at: datetime | None = None
) -> IncidentImport:
    """Store incidents (upsert by incident_id; ``imported_at`` is set when a row is written),
    so that they can be reconciled later (``stored_incidents``). One transaction."""
    when = _require_aware(at, "at") if at is not None else utc_now()
    added = updated = unchanged = 0
    table = _table(IncidentRecord)
    with catalog.session() as session:
        for i in incidents:
            values: dict[str, object] = {
                "incident_id": i.incident_id,
                "officer_id": i.officer_id,
                "start": i.start,
                "end": i.end,
                "imported_at": when,
            }
            if insert_ignore(session, table, values):
                added += 1
                continue
            result = session.execute(
                update(IncidentRecord)
                .where(
                    IncidentRecord.incident_id == i.incident_id,
                    or_(
                        IncidentRecord.officer_id != i.officer_id,
                        IncidentRecord.start != i.start,
                        IncidentRecord.end != i.end,
                    ),
                )
                .values(officer_id=i.officer_id, start=i.start, end=i.end, imported_at=when)
            )
            if getattr(result, "rowcount", 0):
                updated += 1
            else:
                unchanged += 1
    return IncidentImport(added, updated, unchanged)


def stored_incidents(
    catalog: Catalog,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    officer_id: str | None = None,
) -> list[Incident]:
    """Stored incidents overlapping ``[since, until)`` (either end open when None)."""
    stmt = select(IncidentRecord).order_by(IncidentRecord.start, IncidentRecord.incident_id)
    if since is not None:
        stmt = stmt.where(IncidentRecord.end > _require_aware(since, "since"))
    if until is not None:
        stmt = stmt.where(IncidentRecord.start < _require_aware(until, "until"))
    if officer_id is not None:
        stmt = stmt.where(IncidentRecord.officer_id == officer_id)
    with catalog.session() as session:
        return [
            Incident(r.incident_id, r.officer_id, r.start, r.end) for r in session.scalars(stmt)
        ]


Interval = tuple[datetime, datetime]


def _footage_intervals(
    rec: Recording, span: FootageSpan, segs: Sequence[Segment]
) -> list[Interval]:
    """Where the recording has pictures on the wall clock: its segments less their holes once
    it is segmented (a gap between segments is no footage), else its whole span."""
    if not segs or rec.segment_count is None or len(segs) < rec.segment_count:
        return [(span.start, span.end)]
    pieces: list[tuple[float, float]] = []
    for seg in segs:
        cur = seg.start_s
        for a, b in sorted(holes_of(seg)):
            if a > cur:
                pieces.append((cur, a))
            cur = max(cur, b)
        if seg.end_s > cur:
            pieces.append((cur, seg.end_s))
    return [
        (span.start + timedelta(seconds=a), span.start + timedelta(seconds=b)) for a, b in pieces
    ]


def _measure(intervals: Iterable[Interval]) -> float:
    """Seconds covered by the union of the intervals."""
    total = 0.0
    cur_start: datetime | None = None
    cur_end: datetime | None = None
    for a, b in sorted(intervals):
        if cur_end is None or cur_start is None or a > cur_end:
            if cur_end is not None and cur_start is not None:
                total += (cur_end - cur_start).total_seconds()
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None and cur_start is not None:
        total += (cur_end - cur_start).total_seconds()
    return total


def reconcile(
    catalog: Catalog,
    incidents: Iterable[Incident],
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> list[Reconciliation]:
    """For each incident, the officer's footage within it: ``recorded`` when it covers at
    least ``min_coverage`` of the time, ``partial`` when less, ``missing`` when none at all.
    Only recordings that name the officer count (footage of a device with no officer named
    is not attributed to anyone). In the incidents' order."""
    if not 0 < min_coverage <= 1:
        raise StatsError(f"min_coverage is a share in (0, 1], not {min_coverage}")
    wanted = list(incidents)
    if not wanted:
        return []
    officers = sorted({i.officer_id for i in wanted})
    earliest = min(i.start for i in wanted)
    by_officer: dict[str, list[tuple[Recording, FootageSpan]]] = defaultdict(list)
    with catalog.session() as session:
        for chunk in _chunks(officers):
            stmt = select(Recording).where(
                and_(
                    Recording.officer_id.in_(chunk),
                    Recording.received_at >= earliest - _RECEIVED_MARGIN,
                )
            )
            for rec in session.scalars(stmt):
                span = footage_span(rec)
                if span is not None and rec.officer_id is not None:
                    by_officer[rec.officer_id].append((rec, span))
    matches: list[list[tuple[Recording, FootageSpan]]] = [
        sorted(
            (
                (rec, span)
                for rec, span in by_officer.get(i.officer_id, [])
                if span.start < i.end and span.end > i.start
            ),
            key=lambda m: (m[1].start, m[0].id),
        )
        for i in wanted
    ]
    segments = _segments_of(catalog, sorted({rec.id for found in matches for rec, _ in found}))
    out: list[Reconciliation] = []
    for incident, found in zip(wanted, matches, strict=True):
        clipped = [
            (max(a, incident.start), min(b, incident.end))
            for rec, span in found
            for a, b in _footage_intervals(rec, span, segments.get(rec.id, []))
            if a < incident.end and b > incident.start
        ]
        expected = (incident.end - incident.start).total_seconds()
        covered = _measure(clipped)
        share = covered / expected
        status: Coverage = (
            "missing" if covered <= 0 else "recorded" if share >= min_coverage else "partial"
        )
        out.append(
            Reconciliation(
                incident.incident_id, incident.officer_id, incident.start, incident.end,
                expected, covered, share, status, tuple(rec.id for rec, _ in found),
            )
        )  # fmt: skip
    return out


def summarise(results: Sequence[Reconciliation]) -> ReconcileSummary:
    n = len(results)
    expected = sum(r.expected_s for r in results)
    missing = sum(r.status == "missing" for r in results)
    return ReconcileSummary(
        incidents=n,
        recorded=sum(r.status == "recorded" for r in results),
        partial=sum(r.status == "partial" for r in results),
        missing=missing,
        missing_share=missing / n if n else None,
        covered_share=sum(r.covered_s for r in results) / expected if expected else None,
    )
