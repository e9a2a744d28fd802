"""``vigil stats`` (supervision reports as tables or CSV) and ``vigil roster`` (the officers'
units and devices' service state those reports group by)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from vigil_verify.names import shown

from catalog.ids import InvalidInput, require_period
from catalog.repository import now
from catalog.stats.base import Grouping, local_period
from catalog.stats.footage import (
    RecordingGaps,
    RetentionEnding,
    gaps_per_recording,
    retention_ending,
)
from catalog.stats.incidents import (
    ReconcileSummary,
    Reconciliation,
    import_incidents,
    parse_incidents_csv,
    reconcile,
    stored_incidents,
    summarise,
)
from catalog.stats.reports import (
    DelayBucket,
    DelaySummary,
    FootageShare,
    HoursRow,
    LateUpload,
    footage_share,
    hours_recorded,
    upload_delays,
)
from catalog.stats.roster import import_roster, parse_devices_csv, parse_roster_csv
from interfaces.cli.context import running_app, settings_of
from interfaces.cli.inputs import finite, parse_day, read_text
from interfaces.cli.tables import to_csv, to_table
from workers.app import retention_policy
from workers.settings import Settings


def _period_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option(
        "--tz",
        default=None,
        help="Time zone of the days (default VIGIL_TIMEZONE, e.g. Asia/Shanghai).",
    )(fn)
    fn = click.option("--until", "until_", help="Last day, inclusive (default today).")(fn)
    fn = click.option("--since", help="First day (default 7 days before --until).")(fn)
    return click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")(fn)


@dataclass(frozen=True)
class Period:
    since: date
    until: date
    tz: ZoneInfo

    @property
    def utc(self) -> tuple[datetime, datetime]:
        return local_period(self.since, self.until, self.tz)


def _period(settings: Settings, since: str | None, until: str | None, tz: str | None) -> Period:
    """The report's days: checked dates (``catalog.ids.require_period``) in a known zone."""
    name = tz or settings.timezone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("--tz", f"unknown time zone {shown(name)}") from None
    last = parse_day(until, "--until") if until else datetime.now(zone).date()
    first = parse_day(since, "--since") if since else last - min(timedelta(days=6), last - date.min)
    first, last = require_period(first, last)
    return Period(first, last, zone)


def _emit(rows: Sequence[Any], row_type: type[Any], as_csv: bool) -> None:
    click.echo(to_csv(rows, row_type) if as_csv else to_table(rows, row_type), nl=not as_csv)


@click.group()
def stats() -> None:
    """Supervision statistics (table, or CSV with --csv)."""


@stats.command("hours")
@click.option("--by", type=click.Choice(["device", "officer", "unit"]), default="device")
@_period_options
@click.pass_context
def stats_hours(
    ctx: click.Context, by: Grouping, since: str | None, until_: str | None, tz: str | None,
    as_csv: bool,
) -> None:  # fmt: skip
    """Hours recorded per device, officer or unit, per day."""
    period = _period(settings_of(ctx), since, until_, tz)
    with running_app(ctx) as app:
        report = hours_recorded(
            app.catalog, by=by, since=period.since, until=period.until, tz=period.tz
        )
    _emit(report.rows, HoursRow, as_csv)
    if report.unmeasured and not as_csv:
        click.echo(f"({report.unmeasured} recording(s) not yet measured)")


@stats.command("delays")
@_period_options
@click.pass_context
def stats_delays(
    ctx: click.Context, since: str | None, until_: str | None, tz: str | None, as_csv: bool
) -> None:
    """Upload delay: percentiles, distribution, and every upload later than 24 h."""
    period = _period(settings_of(ctx), since, until_, tz)
    with running_app(ctx) as app:
        result = upload_delays(app.catalog, since=period.utc[0], until=period.utc[1])
    if as_csv:
        click.echo(to_csv(result.late, LateUpload), nl=False)
        return
    _emit([result.summary], DelaySummary, False)
    _emit(result.buckets, DelayBucket, False)
    click.echo(f"late uploads (> 24 h): {len(result.late)}")
    if result.late:
        _emit(result.late, LateUpload, False)


@stats.command("share")
@_period_options
@click.pass_context
def stats_share(
    ctx: click.Context, since: str | None, until_: str | None, tz: str | None, as_csv: bool
) -> None:
    """Share of footage not yet categorised, and not linked to any case."""
    period = _period(settings_of(ctx), since, until_, tz)
    with running_app(ctx) as app:
        share = footage_share(app.catalog, since=period.utc[0], until=period.utc[1])
    _emit([share], FootageShare, as_csv)


@stats.command("gaps")
@click.option("--only-gaps", is_flag=True, help="Only recordings with a gap or overlap.")
@_period_options
@click.pass_context
def stats_gaps(
    ctx: click.Context, only_gaps: bool, since: str | None, until_: str | None, tz: str | None,
    as_csv: bool,
) -> None:  # fmt: skip
    """Gaps (and overlaps) per recording."""
    settings = settings_of(ctx)
    period = _period(settings, since, until_, tz)
    with running_app(ctx) as app:
        rows = gaps_per_recording(
            app.catalog,
            since=period.utc[0],
            until=period.utc[1],
            tolerance_frames=settings.continuity_tolerance_frames,
            only_with_gaps=only_gaps,
        )
    _emit(rows, RecordingGaps, as_csv)


@stats.command("retention")
@click.option(
    "--within",
    "within_days",
    type=float,
    default=30.0,
    show_default=True,
    callback=finite("--within", maximum=36500.0),
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
@click.pass_context
def stats_retention(ctx: click.Context, within_days: float, as_csv: bool) -> None:
    """Footage whose retention ends within N days (not held by a case)."""
    settings = settings_of(ctx)
    with running_app(ctx) as app:
        rows = retention_ending(
            app.catalog, retention_policy(settings), now=now(), within_days=within_days
        )
    _emit(rows, RetentionEnding, as_csv)


@stats.command("reconcile")
@click.argument("incidents", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                required=False)  # fmt: skip
@click.option(
    "--min-coverage",
    type=float,
    default=0.95,
    show_default=True,
    callback=finite("--min-coverage", maximum=1.0),
)
@_period_options
@click.pass_context
def stats_reconcile(
    ctx: click.Context, incidents: Path | None, min_coverage: float, since: str | None,
    until_: str | None, tz: str | None, as_csv: bool,
) -> None:  # fmt: skip
    """Expected versus recorded: dispatch incidents (CSV incident_id,officer_id,start,end,
    imported and kept) against the officers' footage; without INCIDENTS, the stored ones."""
    period = _period(settings_of(ctx), since, until_, tz)
    with running_app(ctx) as app:
        if incidents is not None:
            parsed = parse_incidents_csv(read_text(incidents, "INCIDENTS"))
            imported = import_incidents(app.catalog, parsed)
            if not as_csv:
                click.echo(
                    f"imported {imported.added} new, {imported.updated} changed,"
                    f" {imported.unchanged} unchanged incident(s)"
                )
        else:
            parsed = stored_incidents(app.catalog, since=period.utc[0], until=period.utc[1])
        results = reconcile(app.catalog, parsed, min_coverage=min_coverage)
    _emit(results, Reconciliation, as_csv)
    if not as_csv:
        _emit([summarise(results)], ReconcileSummary, False)


@click.group()
def roster() -> None:
    """Officers' units and devices' service state, for statistics and alerts."""


@roster.command("import")
@click.argument("officers", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--devices",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV device_id,in_service: devices out of service raise no silence alert.",
)
@click.pass_context
def roster_import(ctx: click.Context, officers: Path, devices: Path | None) -> None:
    """Import OFFICERS (CSV officer_id,unit) and optionally devices' service state."""
    rows = parse_roster_csv(read_text(officers, "OFFICERS"))
    states = parse_devices_csv(read_text(devices, "--devices")) if devices else []
    with running_app(ctx) as app:
        result = import_roster(app.catalog, rows, devices=states)
    click.echo(
        f"officers: {result.officers_added} added, {result.officers_updated} updated,"
        f" {result.officers_unchanged} unchanged; devices updated: {result.devices_updated}"
    )
    for device in result.unknown_devices:
        click.echo(f"unknown device {device}: not in the catalogue, nothing set")


COMMANDS: tuple[click.Command, ...] = (stats, roster)
