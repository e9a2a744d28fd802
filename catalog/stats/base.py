"""What every report shares: its errors, periods, and local days on the wall clock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

from sqlalchemy import Table

from catalog.errors import CatalogError

LATE = timedelta(hours=24)  # provincial practice: uploaded within 24 h (DOMAIN.md)
DEFAULT_MIN_COVERAGE = 0.95
# How far a recording's end may lie after its received_at: a live stream is received as it
# starts. Bounds the SQL pre-filter only; the exact test is done on the computed span.
_RECEIVED_MARGIN = timedelta(days=2)
_CHUNK = 500  # ids per IN (...) list
_ID_LENGTH = 64  # officers.id, officers.unit, devices.id, incidents.incident_id

Grouping = Literal["device", "officer", "unit"]
Coverage = Literal["recorded", "partial", "missing"]


class StatsError(CatalogError, ValueError):
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
