"""Supervision statistics over the catalogue (DOMAIN.md: "Statistics"), and the expected-
versus-recorded reconciliation of dispatches.

Every function takes the ``Catalog`` and returns frozen dataclasses; ``to_csv`` and
``to_table`` render any list of them.

Time. A recording's place on the wall clock is its ``device_start`` corrected by the clock
offset measured at handover (``clock_offset_s``, as ``catalog.timeline.wall_clock`` does);
without an offset, the device clock as it is; without a device start, ``received_at`` minus the
duration (which makes its upload delay zero, so such recordings are not counted in delays).
``FootageSpan.clock`` says which ("server", "device", "received"). A recording whose duration
is not known yet (not probed, or a live stream still running) has no span: reports list it as
unmeasured instead of guessing.

Periods. ``hours_recorded`` reports local days (agencies report in local time): ``since`` to
``until`` inclusive, in ``tz``. The other reports take a half-open ``[since, until)`` of aware
datetimes over ``received_at`` (footage that arrived in the period); ``local_period`` turns
local dates into one. The retention report and the reconciliation take their own times.

Footage whose retention ended by the catalogue's rules is status ``deleted``: the hours and the
upload delays still count it (it was recorded, and uploaded then), the share, gap and
retention reports do not (there is no footage left to categorise, link or keep).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Literal, TypeVar

from sqlalchemy import Table, and_, or_, select, update

from catalog.db import insert_ignore
from catalog.models import CaseLink, Device, IncidentRecord, Officer, Recording, Segment
from catalog.repository import Catalog
from catalog.repository import now as utc_now
from catalog.timeline import holes_of, recording_gaps
from ingest.s3store import RetentionPolicy

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Row = TypeVar("Row", bound=DataclassInstance)

DELETED = "deleted"  # as catalog.retention.DELETED (not imported: retention imports the store)
LATE = timedelta(hours=24)  # provincial practice: uploaded within 24 h (DOMAIN.md)
DEFAULT_MIN_COVERAGE = 0.95
# How far a recording's end may lie after its received_at: a live stream is received as it
# starts. Bounds the SQL pre-filter only; the exact test is done on the computed span.
_RECEIVED_MARGIN = timedelta(days=2)
_CHUNK = 500  # ids per IN (...) list
_ID_LENGTH = 64  # officers.id, officers.unit, devices.id, incidents.incident_id

Clock = Literal["server", "device", "received"]
Grouping = Literal["device", "officer", "unit"]
Coverage = Literal["recorded", "partial", "missing"]


class StatsError(ValueError):
    """Root of the errors raised here."""


class CsvError(StatsError):
    """A CSV the reports read is malformed; the message names the line (and field)."""

    def __init__(self, line: int, message: str, field: str | None = None) -> None:
        where = f"line {line}" if field is None else f"line {line}, field {field!r}"
        super().__init__(f"{where}: {message}")
        self.line = line
        self.field = field


def _require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StatsError(f"{what}: naive datetime {value.isoformat()}; give a zone-aware one")
    return value.astimezone(UTC)


def _period(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    lo, hi = _require_aware(since, "since"), _require_aware(until, "until")
    if hi <= lo:
        raise StatsError(f"the period ends ({hi.isoformat()}) before it starts ({lo.isoformat()})")
    return lo, hi


def _table(model: type[object]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- the wall clock ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FootageSpan:
    """Where a recording lies on the wall clock (UTC)."""

    start: datetime
    end: datetime
    clock: Clock


def footage_span(recording: Recording) -> FootageSpan | None:
    """The recording on the wall clock; None while its duration is unknown."""
    if recording.duration_s is None:
        return None
    length = timedelta(seconds=max(recording.duration_s, 0.0))
    clock: Clock
    if recording.device_start is not None:
        start = recording.device_start
        if recording.clock_offset_s is not None:
            start += timedelta(seconds=recording.clock_offset_s)
            clock = "server"
        else:
            clock = "device"
    else:
        start = recording.received_at - length
        clock = "received"
    start = start.astimezone(UTC)
    return FootageSpan(start, start + length, clock)


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant (UTC) local ``day`` begins in ``tz``. Where a zone skips midnight, the
    instant of the skip (zoneinfo resolves the missing time with the earlier offset)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def local_period(since: date, until: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """Local days ``since`` to ``until`` inclusive, as a half-open UTC ``[start, end)``."""
    if until < since:
        raise StatsError(f"the period ends ({until}) before it starts ({since})")
    return _local_midnight(since, tz), _local_midnight(until + timedelta(days=1), tz)


def split_by_day(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[date, float]]:
    """Seconds of ``[start, end)`` on each local day of ``tz`` (a 23 h or 25 h day is what it
    is: the arithmetic is done in UTC)."""
    out: list[tuple[date, float]] = []
    cur, end = start.astimezone(UTC), end.astimezone(UTC)
    while cur < end:
        day = cur.astimezone(tz).date()
        nxt = _local_midnight(day + timedelta(days=1), tz)
        if nxt <= cur:  # pragma: no cover - a zone whose day does not advance
            raise StatsError(f"time zone {tz} does not advance past {cur.isoformat()}")
        stop = min(end, nxt)
        out.append((day, (stop - cur).total_seconds()))
        cur = stop
    return out


# -- 1. hours recorded ------------------------------------------------------------------------


@dataclass(frozen=True)
class HoursRow:
    by: Grouping
    key: str | None  # the device, officer or unit; None: no officer, or an officer with no unit
    day: date  # local day in the report's time zone
    recordings: int  # recordings with footage on that day (one crossing midnight counts twice)
    seconds: float = field(metadata={"digits": 1})
    hours: float = field(metadata={"digits": 3})


@dataclass(frozen=True)
class HoursReport:
    by: Grouping
    since: date
    until: date  # inclusive
    tz: str
    rows: tuple[HoursRow, ...]  # days with footage only, by key (None last) then day
    unmeasured: tuple[str, ...]  # received in the period, duration not known yet


def hours_recorded(
    catalog: Catalog,
    *,
    by: Grouping,
    since: date,
    until: date,
    tz: tzinfo,
) -> HoursReport:
    """Footage per device, officer or unit per local day; a recording crossing midnight is
    split between the days."""
    if by not in ("device", "officer", "unit"):
        raise StatsError(f"hours are grouped by device, officer or unit, not {by!r}")
    lo, hi = local_period(since, until, tz)
    stmt = (
        select(Recording, Officer.unit)
        .outerjoin(Officer, Officer.id == Recording.officer_id)
        .where(Recording.received_at >= lo - _RECEIVED_MARGIN)
    )
    totals: dict[tuple[str | None, date], float] = defaultdict(float)
    counts: dict[tuple[str | None, date], int] = defaultdict(int)
    unmeasured: list[str] = []
    with catalog.session() as session:
        found = [(rec, unit) for rec, unit in session.execute(stmt)]
    for rec, unit in found:
        span = footage_span(rec)
        if span is None:
            if lo <= rec.received_at < hi:
                unmeasured.append(rec.id)
            continue
        start, end = max(span.start, lo), min(span.end, hi)
        if end <= start:
            continue
        key = rec.device_id if by == "device" else rec.officer_id if by == "officer" else unit
        for day, seconds in split_by_day(start, end, tz):
            totals[key, day] += seconds
            counts[key, day] += 1
    rows = tuple(
        HoursRow(by, key, day, counts[key, day], seconds, seconds / 3600)
        for (key, day), seconds in sorted(
            totals.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1])
        )
    )
    return HoursReport(by, since, until, str(tz), rows, tuple(sorted(unmeasured)))


# -- 2. upload delays -------------------------------------------------------------------------


@dataclass(frozen=True)
class DelayBucket:
    label: str
    lower_h: float  # delay >= lower (the first bucket: any)
    upper_h: float | None  # delay < upper; the 8-24 h bucket includes 24 h exactly; None: open
    recordings: int
    share: float | None = field(metadata={"digits": 4})


@dataclass(frozen=True)
class LateUpload:
    recording_id: str
    device_id: str
    officer_id: str | None
    recording_end: datetime
    received_at: datetime
    delay_s: float = field(metadata={"digits": 1})
    delay_h: float = field(metadata={"digits": 2})
    clock: Clock  # "device": no clock offset known, the delay is by the device's clock


@dataclass(frozen=True)
class DelaySummary:
    since: datetime
    until: datetime
    recordings: int  # with a measured delay
    unmeasured: int  # received in the period with no device start or no duration
    p50_s: float | None = field(metadata={"digits": 1})  # nearest-rank percentiles
    p90_s: float | None = field(metadata={"digits": 1})
    p99_s: float | None = field(metadata={"digits": 1})
    max_s: float | None = field(metadata={"digits": 1})
    late: int  # more than 24 h
    late_share: float | None = field(metadata={"digits": 4})


@dataclass(frozen=True)
class UploadDelays:
    summary: DelaySummary
    buckets: tuple[DelayBucket, ...]
    late: tuple[LateUpload, ...]  # longest delay first


_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("<1 h", 0.0, 1.0),
    ("1-8 h", 1.0, 8.0),
    ("8-24 h", 8.0, 24.0),
    (">24 h", 24.0, None),
)


def _bucket(delay_s: float) -> int:
    hours = delay_s / 3600
    if hours < 1:
        return 0
    if hours < 8:
        return 1
    return 2 if delay_s <= LATE.total_seconds() else 3


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (a value that occurred): the ceil(p/100 · n)-th smallest."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def upload_delay_s(recording: Recording) -> float | None:
    """Seconds from the recording's end to its receipt (at least 0); None when its end is not
    known from the device (no duration yet, or no device start time)."""
    span = footage_span(recording)
    if span is None or span.clock == "received":
        return None
    return max(0.0, (recording.received_at - span.end).total_seconds())


def upload_delays(catalog: Catalog, *, since: datetime, until: datetime) -> UploadDelays:
    """Delay from the end of each recording received in ``[since, until)`` to its receipt.

    A negative delay (a live stream is received as it is recorded; a device clock running
    ahead with no offset known) counts as zero.
    """
    lo, hi = _period(since, until)
    stmt = (
        select(Recording)
        .where(Recording.received_at >= lo, Recording.received_at < hi)
        .order_by(Recording.received_at, Recording.id)
    )
    with catalog.session() as session:
        recordings = list(session.scalars(stmt))
    delays: list[float] = []
    counts = [0] * len(_BUCKETS)
    late: list[LateUpload] = []
    unmeasured = 0
    for rec in recordings:
        span = footage_span(rec)
        if span is None or span.clock == "received":
            unmeasured += 1
            continue
        delay = max(0.0, (rec.received_at - span.end).total_seconds())
        delays.append(delay)
        bucket = _bucket(delay)
        counts[bucket] += 1
        if bucket == len(_BUCKETS) - 1:
            late.append(
                LateUpload(
                    rec.id, rec.device_id, rec.officer_id, span.end, rec.received_at,
                    delay, delay / 3600, span.clock,
                )
            )  # fmt: skip
    delays.sort()
    n = len(delays)
    summary = DelaySummary(
        since=lo,
        until=hi,
        recordings=n,
        unmeasured=unmeasured,
        p50_s=percentile(delays, 50),
        p90_s=percentile(delays, 90),
        p99_s=percentile(delays, 99),
        max_s=delays[-1] if delays else None,
        late=len(late),
        late_share=len(late) / n if n else None,
    )
    buckets = tuple(
        DelayBucket(label, lower, upper, count, count / n if n else None)
        for (label, lower, upper), count in zip(_BUCKETS, counts, strict=True)
    )
    late.sort(key=lambda u: (-u.delay_s, u.recording_id))
    return UploadDelays(summary, buckets, tuple(late))


# -- 3. uncategorised and unlinked footage ----------------------------------------------------


@dataclass(frozen=True)
class FootageShare:
    since: datetime | None
    until: datetime | None
    recordings: int
    hours: float = field(metadata={"digits": 3})
    unmeasured: int  # counted, with no hours: duration not known yet
    uncategorised: int
    uncategorised_hours: float = field(metadata={"digits": 3})
    uncategorised_share: float | None = field(metadata={"digits": 4})  # by count
    uncategorised_hours_share: float | None = field(metadata={"digits": 4})
    unlinked: int  # no active case link
    unlinked_hours: float = field(metadata={"digits": 3})
    unlinked_share: float | None = field(metadata={"digits": 4})
    unlinked_hours_share: float | None = field(metadata={"digits": 4})
    neither: int  # uncategorised and unlinked: the footage most at risk of being overlooked
    neither_hours: float = field(metadata={"digits": 3})


def _active_links(catalog: Catalog) -> set[str]:
    stmt = select(CaseLink.recording_id).where(CaseLink.unlinked_at.is_(None)).distinct()
    with catalog.session() as session:
        return set(session.scalars(stmt))


def footage_share(
    catalog: Catalog, *, since: datetime | None = None, until: datetime | None = None
) -> FootageShare:
    """How much footage (received in the period; all of it without one) has no category, and
    how much is linked to no case, by count and by hours. Deleted footage is not counted."""
    stmt = select(Recording).where(Recording.status != DELETED)
    lo = _require_aware(since, "since") if since is not None else None
    hi = _require_aware(until, "until") if until is not None else None
    if lo is not None:
        stmt = stmt.where(Recording.received_at >= lo)
    if hi is not None:
        stmt = stmt.where(Recording.received_at < hi)
    with catalog.session() as session:
        recordings = list(session.scalars(stmt))
    linked = _active_links(catalog)
    total = uncat = unlinked = neither = unmeasured = 0
    hours = uncat_h = unlinked_h = neither_h = 0.0
    for rec in recordings:
        h = (rec.duration_s or 0.0) / 3600
        total += 1
        hours += h
        unmeasured += rec.duration_s is None
        is_uncat, is_unlinked = rec.category is None, rec.id not in linked
        if is_uncat:
            uncat += 1
            uncat_h += h
        if is_unlinked:
            unlinked += 1
            unlinked_h += h
        if is_uncat and is_unlinked:
            neither += 1
            neither_h += h

    def share(part: float, whole: float) -> float | None:
        return part / whole if whole else None

    return FootageShare(
        since=lo, until=hi, recordings=total, hours=hours, unmeasured=unmeasured,
        uncategorised=uncat, uncategorised_hours=uncat_h,
        uncategorised_share=share(uncat, total), uncategorised_hours_share=share(uncat_h, hours),
        unlinked=unlinked, unlinked_hours=unlinked_h,
        unlinked_share=share(unlinked, total), unlinked_hours_share=share(unlinked_h, hours),
        neither=neither, neither_hours=neither_h,
    )  # fmt: skip


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


# -- CSV input --------------------------------------------------------------------------------


def _read_csv(text: str, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row by column name) of each non-blank data row; the header must name every one
    of ``columns`` (others are ignored). Line numbers are the file's (a quoted value that
    spans lines: its last line)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header: list[str] | None = None
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CsvError(reader.line_num, f"not valid CSV ({exc})") from None
        cells = [c.strip() for c in raw]
        if not any(cells):
            continue
        line = reader.line_num
        if header is None:
            header = [c.lower() for c in cells]
            missing = [c for c in columns if c not in header]
            dupes = sorted({c for c in header if c and header.count(c) > 1})
            expected = ",".join(columns)
            if missing:
                raise CsvError(
                    line, f"the header lacks {', '.join(missing)} (expected {expected}),"
                    f" found {','.join(header)}"
                )  # fmt: skip
            if dupes:
                raise CsvError(line, f"the header names {', '.join(dupes)} twice")
            continue
        if len(cells) != len(header):
            raise CsvError(line, f"{len(cells)} fields, the header has {len(header)}")
        yield line, dict(zip(header, cells, strict=True))
    if header is None:
        raise CsvError(1, f"empty: expected a header {','.join(columns)}")


def _ident(line: int, row: Mapping[str, str], name: str, *, required: bool = True) -> str:
    value = row[name]
    if required and not value:
        raise CsvError(line, "empty", name)
    if len(value) > _ID_LENGTH:
        raise CsvError(line, f"longer than {_ID_LENGTH} characters", name)
    return value


def _time(line: int, row: Mapping[str, str], name: str) -> datetime:
    value = row[name]
    if not value:
        raise CsvError(line, "empty", name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CsvError(line, f"{value!r} is not an ISO 8601 date and time", name) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise CsvError(
            line, f"{value!r} has no UTC offset (write e.g. 2026-11-27T09:30:00+08:00)", name
        )
    return parsed.astimezone(UTC)


# -- roster -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterRow:
    officer_id: str
    unit: str | None  # None: the officer belongs to no unit


@dataclass(frozen=True)
class DeviceStatus:
    device_id: str
    in_service: bool


@dataclass(frozen=True)
class RosterImport:
    officers_added: int
    officers_updated: int  # unit changed
    officers_unchanged: int
    devices_updated: int
    unknown_devices: tuple[str, ...]  # not catalogued: nothing to set (no footage ever came)


def parse_roster_csv(text: str) -> list[RosterRow]:
    """``officer_id,unit`` (other columns ignored; an empty unit: none). An officer listed
    twice with different units is an error."""
    rows: list[RosterRow] = []
    seen: dict[str, tuple[int, str | None]] = {}
    for line, row in _read_csv(text, ("officer_id", "unit")):
        officer = _ident(line, row, "officer_id")
        unit = _ident(line, row, "unit", required=False) or None
        if officer in seen:
            first, first_unit = seen[officer]
            if first_unit != unit:
                raise CsvError(
                    line,
                    f"officer {officer!r} has unit {unit!r} here and {first_unit!r} on line"
                    f" {first}",
                    "unit",
                )
            continue
        seen[officer] = (line, unit)
        rows.append(RosterRow(officer, unit))
    return rows


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


def parse_devices_csv(text: str) -> list[DeviceStatus]:
    """``device_id,in_service`` (true/false, yes/no or 1/0; other columns ignored)."""
    rows: list[DeviceStatus] = []
    seen: dict[str, tuple[int, bool]] = {}
    for line, row in _read_csv(text, ("device_id", "in_service")):
        device = _ident(line, row, "device_id")
        flag = row["in_service"].lower()
        if flag not in _TRUE | _FALSE:
            raise CsvError(line, f"{row['in_service']!r} is not true or false", "in_service")
        in_service = flag in _TRUE
        if device in seen:
            if seen[device][1] != in_service:
                raise CsvError(
                    line, f"device {device!r} contradicts line {seen[device][0]}", "in_service"
                )
            continue
        seen[device] = (line, in_service)
        rows.append(DeviceStatus(device, in_service))
    return rows


def import_roster(
    catalog: Catalog, rows: Iterable[RosterRow], *, devices: Iterable[DeviceStatus] = ()
) -> RosterImport:
    """Upsert each officer's unit (officers not listed keep theirs), and set whether each
    listed device is in service. One transaction."""
    added = updated = unchanged = devices_updated = 0
    unknown: list[str] = []
    officers = _table(Officer)
    with catalog.session() as session:
        for r in rows:
            if insert_ignore(session, officers, {"id": r.officer_id, "unit": r.unit}):
                added += 1
                continue
            result = session.execute(
                update(Officer)
                .where(Officer.id == r.officer_id, Officer.unit.is_distinct_from(r.unit))
                .values(unit=r.unit)
            )
            if getattr(result, "rowcount", 0):
                updated += 1
            else:
                unchanged += 1
        for d in devices:
            if session.get(Device, d.device_id) is None:
                unknown.append(d.device_id)
                continue
            result = session.execute(
                update(Device)
                .where(Device.id == d.device_id, Device.in_service != d.in_service)
                .values(in_service=d.in_service)
            )
            devices_updated += bool(getattr(result, "rowcount", 0))
    return RosterImport(added, updated, unchanged, devices_updated, tuple(unknown))


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


# -- 7. rendering -----------------------------------------------------------------------------

DEFAULT_DIGITS = 3


def _cell(value: object, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, tuple | list):
        return ";".join(_cell(v, digits) for v in value)
    return str(value)


def _columns(row_type: type[DataclassInstance]) -> list[tuple[str, int]]:
    return [
        (f.name, int(f.metadata.get("digits", DEFAULT_DIGITS)))
        for f in fields(row_type)
        if f.metadata.get("csv", True)
    ]


def _grid(
    rows: Iterable[Row], row_type: type[Row] | None
) -> tuple[list[str], list[list[str]], list[bool]] | None:
    """Header, cells, and which columns are numbers (right-aligned in a table)."""
    items = list(rows)
    kind: type[DataclassInstance] | None = type(items[0]) if items else row_type
    if kind is None:
        return None
    columns = _columns(kind)
    raw = [[getattr(r, name) for name, _ in columns] for r in items]
    body = [[_cell(v, digits) for v, (_, digits) in zip(r, columns, strict=True)] for r in raw]
    numeric = [
        bool(raw)
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in col)
        for col in (zip(*raw, strict=True) if raw else [() for _ in columns])
    ]
    return [name for name, _ in columns], body, numeric


def to_csv(rows: Iterable[Row], row_type: type[Row] | None = None) -> str:
    """A header and one line per row (fields in declaration order; times ISO 8601; floats
    rounded per field, seconds to 0.1, hours to 0.001, shares to 0.0001; a tuple joined by
    ';'; None empty). With no rows, the header of ``row_type``, or nothing without one."""
    grid = _grid(rows, row_type)
    if grid is None:
        return ""
    header, body, _ = grid
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


def to_table(rows: Iterable[Row], row_type: type[Row] | None = None) -> str:
    """The same cells as ``to_csv``, as aligned plain text (numbers right-aligned)."""
    grid = _grid(rows, row_type)
    if grid is None:
        return "(nothing)\n"
    header, body, numeric = grid
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]

    def line(cells: Sequence[str], right: Sequence[bool]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    lines = [line(header, numeric), line(["-" * w for w in widths], [False] * len(widths))]
    lines += [line(row, numeric) for row in body]
    if not body:
        lines.append("(nothing)")
    return "\n".join(lines) + "\n"
