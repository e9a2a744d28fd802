"""Reports 1-3: hours recorded per day, upload delays, and uncategorised or unlinked footage."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING

from sqlalchemy import select

from catalog.clock import Clock, footage_span
from catalog.models import CaseLink, Officer, Recording
from catalog.repository import Catalog
from catalog.retention import DELETED
from catalog.stats.base import (
    _RECEIVED_MARGIN,
    LATE,
    Grouping,
    StatsError,
    _period,
    _require_aware,
    local_period,
    split_by_day,
)

if TYPE_CHECKING:
    pass


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
