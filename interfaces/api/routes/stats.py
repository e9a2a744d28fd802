"""Supervision statistics over HTTP (the same reports as ``vigil stats``), for supervisors and
auditors. Every report read is a custody event (``view``), and so is every denial
(``access.denied``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, HTTPException, Query

from catalog.access import Caller, decide
from catalog.repository import Event, now
from catalog.stats.base import CsvError, local_period
from catalog.stats.footage import gaps_per_recording, retention_ending
from catalog.stats.incidents import (
    import_incidents,
    parse_incidents_csv,
    reconcile,
    stored_incidents,
    summarise,
)
from catalog.stats.reports import footage_share, hours_recorded, upload_delays
from interfaces.api.deps import API, CallerDep, VigilDep
from interfaces.api.schemas import ERRORS, Report
from workers.app import Vigil, retention_policy

FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2199, 12, 31)  # a period outside is a mistake
MAX_CSV_BYTES = 10_000_000  # of an incidents CSV (the body cap of POST reconcile)
Day = Annotated[
    date | None,
    Query(description=f"YYYY-MM-DD, {FIRST_DAY} to {LAST_DAY}; default a week to today."),
]
Zone = Annotated[str | None, Query(max_length=64, description="e.g. Asia/Shanghai")]

router = APIRouter(prefix=f"{API}/stats", tags=["stats"], responses=ERRORS)


def _rows(items: Any) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]


def _allowed(caller: Caller, vigil: Vigil, what: str) -> None:
    decision = decide(caller, "stats.read")
    if not decision.allowed:
        vigil.catalog.add_event(
            Event("access.denied", caller.id, reason=f"GET stats/{what}: {decision.reason}")
        )
        raise HTTPException(403, decision.reason)
    vigil.catalog.add_event(Event("view", caller.id, reason=f"statistics: {what}"))


def _period(
    vigil: Vigil, since: date | None, until: date | None, tz: str | None
) -> tuple[date, date, ZoneInfo]:
    try:
        zone = ZoneInfo(tz or vigil.settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HTTPException(422, f"unknown time zone {tz!r}") from exc
    for day in (since, until):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise HTTPException(422, f"{day} is outside {FIRST_DAY} to {LAST_DAY}")
    last = until or datetime.now(zone).date()
    first = since or max(FIRST_DAY, last - timedelta(days=6))
    if first > last:
        raise HTTPException(422, f"since {first} is after until {last}")
    return first, last, zone


@router.get("/hours", response_model=Report)
def hours(
    caller: CallerDep, vigil: VigilDep, since: Day = None, until: Day = None,
    tz: Zone = None,
    by: Annotated[Literal["device", "officer", "unit"], Query()] = "device",
) -> Report:  # fmt: skip
    """Hours recorded per device, officer or unit, per local day."""
    _allowed(caller, vigil, "hours")
    first, last, zone = _period(vigil, since, until, tz)
    report = hours_recorded(vigil.catalog, by=by, since=first, until=last, tz=zone)
    return Report(
        report="hours", since=first, until=last, time_zone=str(zone),
        rows=_rows(report.rows), summary={"unmeasured": report.unmeasured},
    )  # fmt: skip


@router.get("/delays", response_model=Report)
def delays(
    caller: CallerDep, vigil: VigilDep, since: Day = None, until: Day = None,
    tz: Zone = None,
) -> Report:  # fmt: skip
    """Upload delay distribution; rows are the uploads later than 24 h."""
    _allowed(caller, vigil, "delays")
    first, last, zone = _period(vigil, since, until, tz)
    lo, hi = local_period(first, last, zone)
    result = upload_delays(vigil.catalog, since=lo, until=hi)
    summary = asdict(result.summary) | {"buckets": _rows(result.buckets)}
    return Report(
        report="delays", since=first, until=last, time_zone=str(zone),
        rows=_rows(result.late), summary=summary,
    )  # fmt: skip


@router.get("/share", response_model=Report)
def share(
    caller: CallerDep, vigil: VigilDep, since: Day = None, until: Day = None,
    tz: Zone = None,
) -> Report:  # fmt: skip
    """Footage not yet categorised, and not linked to any case."""
    _allowed(caller, vigil, "share")
    first, last, zone = _period(vigil, since, until, tz)
    lo, hi = local_period(first, last, zone)
    result = footage_share(vigil.catalog, since=lo, until=hi)
    return Report(report="share", since=first, until=last, time_zone=str(zone),
                  rows=[asdict(result)])  # fmt: skip


@router.get("/gaps", response_model=Report)
def gaps(
    caller: CallerDep, vigil: VigilDep, since: Day = None, until: Day = None,
    tz: Zone = None, only_gaps: bool = False,
) -> Report:  # fmt: skip
    """Gaps and overlaps per recording."""
    _allowed(caller, vigil, "gaps")
    first, last, zone = _period(vigil, since, until, tz)
    lo, hi = local_period(first, last, zone)
    rows = gaps_per_recording(
        vigil.catalog, since=lo, until=hi,
        tolerance_frames=vigil.settings.continuity_tolerance_frames, only_with_gaps=only_gaps,
    )  # fmt: skip
    return Report(report="gaps", since=first, until=last, time_zone=str(zone),
                  rows=_rows(rows))  # fmt: skip


@router.get("/retention", response_model=Report)
def retention(
    caller: CallerDep, vigil: VigilDep,
    within_days: Annotated[float, Query(ge=0, le=36500)] = 30.0,
) -> Report:  # fmt: skip
    """Footage whose retention ends within N days and that no case holds."""
    _allowed(caller, vigil, "retention")
    rows = retention_ending(
        vigil.catalog, retention_policy(vigil.settings), now=now(), within_days=within_days
    )
    return Report(report="retention", since=None, until=None,
                  time_zone=vigil.settings.timezone, rows=_rows(rows))  # fmt: skip


@router.post("/reconcile", response_model=Report)
def reconcile_incidents(
    caller: CallerDep, vigil: VigilDep,
    incidents_csv: Annotated[str | None, Body(media_type="text/csv", max_length=MAX_CSV_BYTES)]
    = None,
    since: Day = None, until: Day = None, tz: Zone = None,
    min_coverage: Annotated[float, Query(ge=0, le=1)] = 0.95,
) -> Report:  # fmt: skip
    """Expected versus recorded. With a CSV body (incident_id,officer_id,start,end) the
    incidents are imported first; without one, the stored incidents of the period."""
    _allowed(caller, vigil, "reconcile")
    first, last, zone = _period(vigil, since, until, tz)
    if incidents_csv:
        try:
            incidents = parse_incidents_csv(incidents_csv)
        except CsvError as exc:
            raise HTTPException(422, str(exc)) from exc
        import_incidents(vigil.catalog, incidents)
    else:
        lo, hi = local_period(first, last, zone)
        incidents = stored_incidents(vigil.catalog, since=lo, until=hi)
    results = reconcile(vigil.catalog, incidents, min_coverage=min_coverage)
    return Report(
        report="reconcile", since=first, until=last, time_zone=str(zone),
        rows=_rows(results), summary=asdict(summarise(results)),
    )  # fmt: skip
