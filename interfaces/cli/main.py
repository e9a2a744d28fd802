"""The ``vigil`` command. Settings and the app are created here, in ``main``, never at import."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from catalog.access import ROLES, Role
from catalog.errors import CatalogError
from catalog.figures import catalog_figures
from catalog.repository import Event, now
from catalog.retention import RetentionError
from catalog.stats.base import Grouping, StatsError, local_period
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
from ingest.errors import IngestError
from ingest.live import LivePolicy, LiveSource
from ingest.service import GpsFix, RecordingMetadata
from integrity.export import ExportError, export_case
from integrity.ledger import LedgerError, canonical_event, create_signing_key
from integrity.match import MatchError, match_copy
from integrity.timeline import CaseTimeline, case_timeline
from integrity.verify import RecordingVerification
from interfaces.cli.render import render_match, render_timeline, render_verification
from interfaces.cli.tables import to_csv, to_table
from store.base import sha256_file
from store.errors import StoreError
from transcode.errors import TranscodeError
from transcode.ffmpeg import redact
from transcode.samples import SampleSpec, find_font, sample_command
from workers.app import STAGE_INPUTS, Vigil, build_app, retention_policy
from workers.behind import BehindDrain
from workers.errors import StageError
from workers.kafka_bus import Outcome, RetryPolicy, StageWorker, dead_letter_topic
from workers.messages import topic_for
from workers.metrics import (
    CatalogCollector,
    KafkaCollector,
    MetricsServer,
    kafka_figures,
    serve,
)
from workers.settings import DEV_SECRET, Settings

EXPECTED_ERRORS = (
    IngestError, CatalogError, StoreError, TranscodeError, MatchError, ExportError, StageError,
    ValidationError, LedgerError, RetentionError, StatsError,
)  # fmt: skip


class ProgressPrinter:
    """Progress of long work on stderr, at most a few lines a second."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._last: dict[tuple[str, str], float] = {}

    def __call__(self, recording: str, stage: str, fraction: float) -> None:
        if self.quiet:
            return
        key = (recording, stage)
        moment = time.monotonic()
        if fraction < 1 and moment - self._last.get(key, 0.0) < 0.5:
            return
        self._last[key] = moment
        click.echo(f"  {recording} {stage:<8} {fraction * 100:5.1f}%", err=True)


@contextmanager
def running_app(ctx: click.Context) -> Iterator[Vigil]:
    settings: Settings = ctx.obj["settings"]
    app = build_app(settings, progress=ProgressPrinter(ctx.obj["quiet"]))
    for notice in app.notices:
        click.echo(f"notice: {notice}", err=True)
    try:
        yield app
        # Every command's custody events go into the ledger under a signed tree head.
        app.ledger.checkpoint()
    finally:
        app.stop()


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no time zone; add e.g. +08:00 or Z")
    return parsed


def parse_offset(value: str | None) -> float | None:
    """Seconds into a recording: ``95``, ``95.5``, ``1:35`` or ``0:01:35``."""
    if value is None:
        return None
    parts = value.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a time offset like 95 or 1:35") from exc
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def default_actor() -> str:
    return os.environ.get("VIGIL_ACTOR") or os.environ.get("USER") or "cli"


actor_option = click.option("--actor", default=default_actor, help="Who is doing this.")


metrics_port_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics on this port (overrides VIGIL_METRICS_PORT; several processes on one"
    " host each need their own).",
)


def serve_metrics(
    registry: CollectorRegistry, settings: Settings, port: int | None, name: str
) -> MetricsServer | None:
    chosen = settings.metrics_port if port is None else port
    if not chosen:
        return None
    server = serve(registry, chosen, settings.metrics_bind)
    click.echo(f"{name}: metrics on http://{settings.metrics_bind}:{server.port}/metrics", err=True)
    return server


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Overrides VIGIL_DATA_DIR.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, quiet: bool, verbose: bool) -> None:
    """Vigil: video evidence ingestion and integrity."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    overrides = {"data_dir": data_dir} if data_dir else {}
    ctx.obj = {"settings": Settings(**overrides), "quiet": quiet}  # type: ignore[arg-type]


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", required=True, help="Device ID, e.g. BC-0042.")
@click.option("--officer", help="Officer ID.")
@click.option("--start", "device_start", help="Device time at recording start (ISO 8601).")
@click.option("--device-clock", help="The device's clock reading at handover (ISO 8601).")
@click.option("--category", help="Footage category.")
@click.option("--gps", type=click.Path(exists=True, path_type=Path), help="GPS track (JSON).")
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=None,
    help="Under Kafka: wait up to this many seconds for the workers to finish it.",
)
@actor_option
@click.pass_context
def ingest(
    ctx: click.Context,
    file: Path,
    device: str,
    officer: str | None,
    device_start: str | None,
    device_clock: str | None,
    category: str | None,
    gps: Path | None,
    wait_s: float | None,
    actor: str,
) -> None:
    """Store FILE byte-exact, then segment, hash and catalogue it."""
    track: tuple[GpsFix, ...] = ()
    if gps is not None:
        track = tuple(GpsFix.model_validate(fix) for fix in json.loads(gps.read_text()))
    metadata = RecordingMetadata(
        device_id=device,
        officer_id=officer,
        device_start=parse_time(device_start),
        device_clock_at_handover=parse_time(device_clock),
        category=category,
        gps_track=track,
        original_name=file.name,
    )
    with running_app(ctx) as app:
        result = app.ingest.ingest_file(file, metadata, actor=actor)
        app.run_pipeline()
        if app.bus is None and wait_s:
            wait_until_done(app, result.recording_id, wait_s)
        rec = app.catalog.recording(result.recording_id)
    verb = "ingested" if result.created else "already catalogued"
    if app.bus is None and rec.status not in ("complete", "unreadable"):
        verb = "queued"  # the stage workers take it from here
    click.echo(f"{verb}: {rec.id} sha256 {rec.sha256} ({rec.size} bytes)")
    click.echo(f"  status {rec.status}, {rec.segment_count or 0} segments, playback {rec.playback}")
    if rec.damage:
        click.echo(f"  FLAGGED: {rec.damage}")


@cli.command()
@click.option("--device", help="Only this device.")
@click.pass_context
def recordings(ctx: click.Context, device: str | None) -> None:
    """List catalogued recordings."""
    with running_app(ctx) as app:
        for rec in app.catalog.recordings(device):
            flag = f"  FLAGGED: {rec.damage}" if rec.damage else ""
            start = rec.device_start.isoformat() if rec.device_start else "-"
            click.echo(
                f"{rec.id}  {rec.device_id:<10} {start:<25} {rec.duration_s or 0:8.1f} s"
                f"  {rec.segment_count or 0:3d} seg  {rec.status}{flag}"
            )


@cli.group()
def case() -> None:
    """Link footage to cases and review them."""


@case.command("link")
@click.argument("case_id")
@click.argument("recording")
@click.option("--from", "from_", help="Window start, seconds into the recording (or m:ss).")
@click.option("--to", help="Window end, seconds into the recording (or m:ss).")
@click.option("--reason", required=True, help="Why this footage belongs to the case.")
@actor_option
@click.pass_context
def case_link(
    ctx: click.Context,
    case_id: str,
    recording: str,
    from_: str | None,
    to: str | None,
    reason: str,
    actor: str,
) -> None:
    """Link RECORDING (or a time window of it) to CASE_ID."""
    lo, hi = parse_offset(from_), parse_offset(to)
    if lo is not None and hi is not None and hi <= lo:
        raise click.BadParameter("--to must be after --from")
    with running_app(ctx) as app:
        rec = app.catalog.recording(recording)
        app.cases.link(case_id, rec.id, from_s=lo, to_s=hi, reason=reason, actor=actor)
    window = "whole recording" if lo is None and hi is None else f"{lo or 0:g}-{hi or 'end'} s"
    click.echo(f"linked {rec.id} ({window}) to {case_id}")


@case.command("unlink")
@click.argument("case_id")
@click.argument("recording")
@click.option("--reason", required=True)
@actor_option
@click.pass_context
def case_unlink(ctx: click.Context, case_id: str, recording: str, reason: str, actor: str) -> None:
    """Remove RECORDING from CASE_ID (the link stays in the custody log)."""
    with running_app(ctx) as app:
        rec = app.catalog.recording(recording)
        count = app.cases.unlink(case_id, rec.id, reason=reason, actor=actor)
    click.echo(f"unlinked {count} link(s) of {rec.id} from {case_id}")


def _timeline(app: Vigil, case_id: str) -> CaseTimeline:
    return case_timeline(
        app.catalog,
        case_id,
        tolerance_frames=app.settings.continuity_tolerance_frames,
        device_tolerance_s=app.settings.device_gap_tolerance_s,
    )


@case.command("show")
@click.argument("case_id")
@actor_option
@click.pass_context
def case_show(ctx: click.Context, case_id: str, actor: str) -> None:
    """The case's footage as a timeline, with gaps and each segment's integrity state."""
    with running_app(ctx) as app:
        timeline = _timeline(app, case_id)
        app.catalog.add_event(Event("view", actor, case_id=case_id, reason="case show"))
    click.echo(render_timeline(timeline))


@case.command("list")
@click.pass_context
def case_list(ctx: click.Context) -> None:
    """All cases."""
    with running_app(ctx) as app:
        for c in app.catalog.cases():
            links = app.catalog.case_links(c.id)
            click.echo(f"{c.id}  {len(links)} link(s)  created {c.created_at.isoformat()}")


@cli.command()
@click.argument("target")
@click.option("--full", is_flag=True, help="Also re-decode every segment's perceptual hash.")
@actor_option
@click.pass_context
def verify(ctx: click.Context, target: str, full: bool, actor: str) -> None:
    """Recompute every hash of a RECORDING or of all footage of a CASE; name what differs."""
    results: list[RecordingVerification] = []
    with running_app(ctx) as app:
        case_ids = {c.id for c in app.catalog.cases()}
        if target in case_ids:
            ids = list(dict.fromkeys(link.recording_id for link in app.catalog.case_links(target)))
        else:
            ids = [app.catalog.recording(target).id]
        for rec_id in ids:
            results.append(app.verifier.verify_recording(rec_id, actor=actor, full=full))
    click.echo(render_verification(results))
    if not all(r.ok for r in results):
        sys.exit(1)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--recording", help="The catalogued recording FILE claims to be.")
@actor_option
@click.pass_context
def match(ctx: click.Context, file: Path, recording: str | None, actor: str) -> None:
    """Compare an outside copy with the recording it claims to be, segment by segment."""
    with running_app(ctx) as app:
        rec_id = recording
        if rec_id is None:
            sha, _ = sha256_file(file)
            known = app.catalog.recording_by_sha(sha)
            if known is not None:
                click.echo(f"{file.name} is byte-identical to the original of {known.id}")
                return
            complete = [r for r in app.catalog.recordings() if r.status == "complete"]
            if len(complete) != 1:
                raise click.UsageError("name the recording with --recording ID")
            rec_id = complete[0].id
        report = match_copy(app.catalog, app.tools, rec_id, file, actor=actor)
    click.echo(render_match(rec_id, file.name, report))
    if not report.clean:
        sys.exit(1)


@cli.command()
@click.argument("case_id")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why the footage leaves the system.")
@actor_option
@click.pass_context
def export(ctx: click.Context, case_id: str, folder: Path, reason: str, actor: str) -> None:
    """Export CASE_ID's footage to FOLDER with a manifest of every hash."""
    with running_app(ctx) as app:
        certs = app.settings.ledger_tsa_certs
        root = export_case(
            app.catalog,
            app.store,
            app.ledger,
            case_id,
            folder,
            actor=actor,
            reason=reason,
            tolerance_frames=app.settings.continuity_tolerance_frames,
            device_tolerance_s=app.settings.device_gap_tolerance_s,
            worm_checkpoints=app.worm_checkpoints(),
            tsa_certs=certs.read_bytes() if certs else None,
        )
        fingerprint = app.ledger.key.fingerprint
    click.echo(f"exported {case_id} to {root} (manifest: {root / 'manifest.json'})")
    click.echo(f"check it offline with: vigil-verify {root} (ledger key {fingerprint})")


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
    try:
        zone = ZoneInfo(tz or settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(f"unknown time zone {tz or settings.timezone!r}") from exc
    try:
        last = date.fromisoformat(until) if until else datetime.now(zone).date()
        first = date.fromisoformat(since) if since else last - timedelta(days=6)
    except ValueError as exc:
        raise click.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
    if first > last:
        raise click.BadParameter(f"--since {first} is after --until {last}")
    return Period(first, last, zone)


def _emit(rows: Sequence[Any], row_type: type[Any], as_csv: bool) -> None:
    click.echo(to_csv(rows, row_type) if as_csv else to_table(rows, row_type), nl=not as_csv)


@cli.group()
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
    period = _period(ctx.obj["settings"], since, until_, tz)
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
    period = _period(ctx.obj["settings"], since, until_, tz)
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
    period = _period(ctx.obj["settings"], since, until_, tz)
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
    settings: Settings = ctx.obj["settings"]
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
@click.option("--within", "within_days", type=float, default=30.0, show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
@click.pass_context
def stats_retention(ctx: click.Context, within_days: float, as_csv: bool) -> None:
    """Footage whose retention ends within N days (not held by a case)."""
    settings: Settings = ctx.obj["settings"]
    with running_app(ctx) as app:
        rows = retention_ending(
            app.catalog, retention_policy(settings), now=now(), within_days=within_days
        )
    _emit(rows, RetentionEnding, as_csv)


@stats.command("reconcile")
@click.argument("incidents", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                required=False)  # fmt: skip
@click.option("--min-coverage", type=click.FloatRange(0, 1), default=0.95, show_default=True)
@_period_options
@click.pass_context
def stats_reconcile(
    ctx: click.Context, incidents: Path | None, min_coverage: float, since: str | None,
    until_: str | None, tz: str | None, as_csv: bool,
) -> None:  # fmt: skip
    """Expected versus recorded: dispatch incidents (CSV incident_id,officer_id,start,end,
    imported and kept) against the officers' footage; without INCIDENTS, the stored ones."""
    period = _period(ctx.obj["settings"], since, until_, tz)
    with running_app(ctx) as app:
        if incidents is not None:
            parsed = parse_incidents_csv(incidents.read_text(encoding="utf-8"))
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


@cli.group()
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
    rows = parse_roster_csv(officers.read_text(encoding="utf-8"))
    states = parse_devices_csv(devices.read_text(encoding="utf-8")) if devices else []
    with running_app(ctx) as app:
        result = import_roster(app.catalog, rows, devices=states)
    click.echo(
        f"officers: {result.officers_added} added, {result.officers_updated} updated,"
        f" {result.officers_unchanged} unchanged; devices updated: {result.devices_updated}"
    )
    for device in result.unknown_devices:
        click.echo(f"unknown device {device}: not in the catalogue, nothing set")


@cli.command()
@click.option("--host", default=None, help="Overrides VIGIL_API_HOST.")
@click.option("--port", type=int, default=None, help="Overrides VIGIL_API_PORT.")
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the HTTP API and the reviewer web page (OpenAPI at /docs) until SIGTERM."""
    import uvicorn

    from interfaces.api.app import create_api

    settings: Settings = ctx.obj["settings"]
    if settings.environment == "production" and settings.api_secret.get_secret_value() == (
        DEV_SECRET
    ):
        raise click.UsageError("set VIGIL_API_SECRET: the development secret is refused")
    app = build_app(settings)
    for notice in app.notices:
        click.echo(f"notice: {notice}", err=True)
    server = create_api(app, secret=settings.api_secret.get_secret_value().encode())
    metrics = serve_metrics(app.metrics.registry, settings, None, "api")
    if metrics is not None:  # also on the API port at /metrics; this one matches the workers'
        app._closers.append(metrics.stop)
    try:
        uvicorn.run(
            server,
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level="warning",
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )
    finally:
        app.stop()


@cli.group()
def access() -> None:
    """People, devices and their API tokens; case assignments."""


@access.command("add")
@click.argument("principal")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", help="Display name (default: the ID).")
@click.option("--device", help="For a device: its device ID (e.g. BC-0042).")
@click.option("--officer", help="For an officer: their officer ID.")
@actor_option
@click.pass_context
def access_add(
    ctx: click.Context, principal: str, role: Role, display_name: str | None, device: str | None,
    officer: str | None, actor: str,
) -> None:  # fmt: skip
    """Add a person or device that may call the API."""
    with running_app(ctx) as app:
        app.access.add_principal(
            principal, role, display_name=display_name or principal, actor=actor,
            device_id=device, officer_id=officer,
        )  # fmt: skip
    click.echo(f"added {role} {principal}")


@access.command("token")
@click.argument("principal")
@click.option("--label", default="api", show_default=True)
@click.option("--days", type=float, default=None, help="Valid for this many days (default: ever).")
@actor_option
@click.pass_context
def access_token(
    ctx: click.Context, principal: str, label: str, days: float | None, actor: str
) -> None:
    """Issue an API token for PRINCIPAL; it is shown once (only its hash is kept)."""
    valid = timedelta(days=days) if days else None
    with running_app(ctx) as app:
        issued = app.access.issue_token(principal, label=label, actor=actor, valid_for=valid)
    click.echo(issued.token)
    click.echo(f"token #{issued.id} for {principal}: store it now, it is not shown again", err=True)


@access.command("revoke")
@click.argument("token_id", type=int)
@actor_option
@click.pass_context
def access_revoke(ctx: click.Context, token_id: int, actor: str) -> None:
    """Revoke token TOKEN_ID (it stops working at once)."""
    with running_app(ctx) as app:
        changed = app.access.revoke_token(token_id, actor=actor)
    click.echo(f"token #{token_id} {'revoked' if changed else 'was already revoked'}")


@access.command("disable")
@click.argument("principal")
@actor_option
@click.pass_context
def access_disable(ctx: click.Context, principal: str, actor: str) -> None:
    """Disable PRINCIPAL (a lost device, a person who left): all its tokens stop working."""
    with running_app(ctx) as app:
        app.access.disable(principal, actor=actor)
    click.echo(f"{principal} disabled")


@access.command("assign")
@click.argument("case_id")
@click.argument("principal")
@actor_option
@click.pass_context
def access_assign(ctx: click.Context, case_id: str, principal: str, actor: str) -> None:
    """Assign reviewer PRINCIPAL to CASE_ID."""
    with running_app(ctx) as app:
        app.access.assign(case_id, principal, actor=actor)
    click.echo(f"{principal} assigned to {case_id}")


@cli.group()
def retention() -> None:
    """Retention periods: re-categorise footage, delete what has expired."""


@retention.command("set")
@click.argument("recording")
@click.argument("category")
@click.option("--reason", required=True, help="Why the category changes.")
@actor_option
@click.pass_context
def retention_set(
    ctx: click.Context, recording: str, category: str, reason: str, actor: str
) -> None:
    """Re-categorise RECORDING: its retention is extended to CATEGORY's (never shortened)."""
    with running_app(ctx) as app:
        change = app.retention.change(recording, category, actor=actor, reason=reason)
    if not change.recorded:
        click.echo(f"{change.recording_id} is already {category}: nothing changed")
        return
    click.echo(
        f"{change.recording_id}: {change.old_category or 'uncategorised'} -> {change.new_category},"
        f" kept until {change.retain_until.isoformat()} ({change.extended} of {change.objects}"
        " object(s) extended in the store)"
    )


@retention.command("sweep")
@click.option("--dry-run", is_flag=True, help="List what is due; delete nothing.")
@actor_option
@click.pass_context
def retention_sweep(ctx: click.Context, dry_run: bool, actor: str) -> None:
    """Delete footage past its retention that no case holds; each deletion a custody event."""
    with running_app(ctx) as app:
        report = app.retention.sweep(datetime.now(UTC), actor=actor, dry_run=dry_run)
    for item in report.items:
        error = f" ({item.error})" if item.error else ""
        click.echo(
            f"{item.recording_id} {item.outcome}: retention ended {item.retain_until.isoformat()},"
            f" {len(item.objects)} object(s){error}"
        )
    for recording_id in report.kept_uncategorised:
        click.echo(f"{recording_id} kept: past the default period but not yet categorised")
    if report.with_outcome("refused"):
        sys.exit(1)


@cli.group()
def ledger() -> None:
    """The custody ledger: signed tree heads, proofs, audit."""


@ledger.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def ledger_keygen(ctx: click.Context, path: Path) -> None:
    """Make an Ed25519 signing key for the ledger at PATH (mode 0600; never overwrites)."""
    settings: Settings = ctx.obj["settings"]
    try:
        key = create_signing_key(path, settings.ledger_name)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; a ledger key is never overwritten") from exc
    public = path.with_suffix(".pub.pem")
    public.write_bytes(key.public_pem)
    click.echo(f"signing key {path} (keep it secret), public key {public}")
    click.echo(f"fingerprint {key.fingerprint}: publish it so anyone can pin it in vigil-verify")


@ledger.command("sign")
@click.option("--force", is_flag=True, help="Sign even if the latest head covers the whole log.")
@click.pass_context
def ledger_sign(ctx: click.Context, force: bool) -> None:
    """Sequence pending custody events and sign a tree head."""
    with running_app(ctx) as app:
        head = app.ledger.checkpoint(force=force)
        stamped = "with RFC 3161 timestamp" if head.timestamp_token else "no timestamp"
        click.echo(f"tree head: size {head.size} root {head.root} ({stamped})")
        click.echo(f"stored as {head.object_key}; key {head.key_id}")


@ledger.command("check")
@click.pass_context
def ledger_check(ctx: click.Context) -> None:
    """Recompute every leaf and check every signed head (catalogue and WORM store)."""
    with running_app(ctx) as app:
        audit = app.ledger.audit(app.worm_checkpoints())
    click.echo(
        f"ledger: {audit.size} events in the log, {audit.pending} pending,"
        f" {audit.heads_checked} signed head(s) checked"
    )
    for problem in audit.problems:
        click.echo(f"  PROBLEM {problem.kind}: {problem.detail}")
    if not audit.ok:
        sys.exit(1)
    click.echo("ledger intact: every head is consistent with the log")


@ledger.command("proof")
@click.argument("event_id", type=int)
@click.pass_context
def ledger_proof(ctx: click.Context, event_id: int) -> None:
    """The inclusion proof of custody event EVENT_ID under the latest signed head (JSON)."""
    with running_app(ctx) as app:
        head = app.ledger.checkpoint()
        position, proof = app.ledger.inclusion_proof(event_id, head.size)
        event = next(e for e in app.catalog.events() if e.id == event_id)
        click.echo(
            json.dumps(
                {
                    "position": position,
                    "event": canonical_event(event).decode(),
                    "proof": [p.hex() for p in proof],
                    "checkpoint": head.note,
                },
                indent=2,
                ensure_ascii=False,
            )
        )


@ledger.command("run")
@metrics_port_option
@click.pass_context
def ledger_run(ctx: click.Context, metrics_port: int | None) -> None:
    """Sign a tree head every VIGIL_LEDGER_INTERVAL_S until SIGTERM (the ledger worker)."""
    settings: Settings = ctx.obj["settings"]
    app = build_app(settings)
    for notice in app.notices:
        click.echo(f"notice: {notice}", err=True)
    server = serve_metrics(app.metrics.registry, settings, metrics_port, "ledger")
    if server is not None:
        app._closers.append(server.stop)
    stop = threading.Event()
    on_stop_signals(stop, grace_s=settings.shutdown_grace_s, kill=app.runner.stop)
    click.echo(f"ledger: signing every {settings.ledger_interval_s:g} s", err=True)
    try:
        last = -1
        while not stop.is_set():
            try:
                head = app.ledger.checkpoint()
            except (LedgerError, StoreError, SQLAlchemyError) as exc:
                click.echo(f"ledger: could not sign a head ({exc}); retrying", err=True)
            else:
                app.metrics.ledger_size.set(head.size)
                if head.size != last:
                    app.metrics.ledger_heads.inc()
                    click.echo(f"ledger: head at size {head.size}", err=True)
                    last = head.size
            stop.wait(settings.ledger_interval_s)
    finally:
        app.stop()


@cli.command()
@metrics_port_option
@click.pass_context
def monitor(ctx: click.Context, metrics_port: int | None) -> None:
    """Serve the catalogue's figures and Kafka's lag as Prometheus metrics until SIGTERM."""
    settings: Settings = ctx.obj["settings"]
    app = build_app(settings)
    registry = CollectorRegistry()
    policy = retention_policy(settings)
    registry.register(
        CatalogCollector(lambda: catalog_figures(app.catalog, now(), policy.days_for))
    )
    if settings.bus == "kafka":
        groups = {
            topic_for(stage, settings.kafka_topic_prefix): [
                topic_for(t, settings.kafka_topic_prefix) for t in inputs
            ]
            for stage, inputs in STAGE_INPUTS.items()
        }
        dead = dead_letter_topic(settings.kafka_topic_prefix)
        registry.register(
            KafkaCollector(lambda: kafka_figures(settings.kafka_bootstrap, groups, dead))
        )
    port = settings.metrics_port if metrics_port is None else metrics_port
    if not port:
        raise click.UsageError("vigil monitor serves metrics: give --metrics-port or set it")
    server = serve(registry, port, settings.metrics_bind)
    click.echo(
        f"monitor: metrics on http://{settings.metrics_bind}:{server.port}/metrics", err=True
    )
    stop = threading.Event()
    on_stop_signals(stop, grace_s=0, kill=lambda: None)
    try:
        stop.wait()
    finally:
        server.stop()
        app.stop()


@cli.command()
@click.option("--recording", help="Only this recording's events.")
@click.option("--case", "case_id", help="Only this case's events.")
@click.pass_context
def events(ctx: click.Context, recording: str | None, case_id: str | None) -> None:
    """The custody log."""
    with running_app(ctx) as app:
        ids = [app.catalog.recording(recording).id] if recording else None
        for e in app.catalog.events(recording_ids=ids, case_id=case_id):
            target = e.recording_id or e.case_id or ""
            reason = f"  reason: {e.reason}" if e.reason else ""
            click.echo(
                f"{e.id:6d} {e.at.isoformat()} {e.actor:<10} {e.action:<16} {target}{reason}"
            )


@cli.command()
@click.pass_context
def resume(ctx: click.Context) -> None:
    """Re-drive every recording whose processing did not finish (after a crash)."""
    with running_app(ctx) as app:
        pending = app.resume_unfinished()
        app.run_pipeline()
    click.echo(f"resumed {pending} recording(s)")


@cli.command()
@click.argument(
    "clip", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--case", "case_id", default="DEMO-0001", show_default=True)
@click.option("--device", default="BC-0042", show_default=True)
@click.option("--officer", default="031245", show_default=True)
@click.option("--seconds", default=40.0, show_default=True, help="Length of a generated clip.")
@actor_option
@click.pass_context
def demo(
    ctx: click.Context,
    clip: Path | None,
    case_id: str,
    device: str,
    officer: str,
    seconds: float,
    actor: str,
) -> None:
    """The main job end to end: ingest CLIP (or a generated body-camera-like clip), link it to
    a case, verify it, and print the case timeline."""
    with running_app(ctx) as app:
        if clip is None:
            clip = app.settings.data_dir / "samples" / f"bodycam-{seconds:g}s.mp4"
            if not clip.exists():
                click.echo(f"generating a {seconds:g} s body-camera-like clip: {clip}", err=True)
                clip.parent.mkdir(parents=True, exist_ok=True)
                spec = SampleSpec(duration_s=seconds)
                app.runner.run(
                    sample_command(app.tools.ffmpeg, spec, clip, font=find_font()),
                    timeout_s=app.settings.ffmpeg_timeout_s,
                )
        started = datetime.now(UTC) - timedelta(hours=1)
        metadata = RecordingMetadata(
            device_id=device,
            officer_id=officer,
            device_start=started,
            device_clock_at_handover=datetime.now(UTC),
            category="demo",
            original_name=clip.name,
        )
        click.echo(f"ingesting {clip}", err=True)
        result = app.ingest.ingest_file(clip, metadata, actor=actor)
        app.run_pipeline()
        app.cases.link(
            case_id,
            result.recording_id,
            from_s=None,
            to_s=None,
            reason="demo: whole recording",
            actor=actor,
        )
        verification = app.verifier.verify_recording(result.recording_id, actor=actor)
        click.echo(render_verification([verification]))
        click.echo("")
        click.echo(render_timeline(_timeline(app, case_id)))


@cli.command()
@click.argument("source")
@click.option("--device", required=True, help="Camera ID, e.g. CAM-EAST-GATE.")
@click.option("--officer", help="Officer ID, if a person wears or operates it.")
@click.option("--category", help="Footage category.")
@click.option(
    "--listen",
    is_flag=True,
    help="SOURCE is rtmp://HOST:PORT/APP/KEY to listen on: the camera pushes to Vigil.",
)
@click.option("--max-seconds", default=24 * 3600.0, show_default=True, help="Longest recording.")
@click.option(
    "--max-outage",
    default=300.0,
    show_default=True,
    help="Seconds to wait for a lost camera to come back (0: end at the first loss).",
)
@click.option("--retry", default=2.0, show_default=True, help="Seconds between pull retries.")
@click.option(
    "--io-timeout", default=10.0, show_default=True, help="Silence that counts as a lost camera."
)
@actor_option
@click.pass_context
def live(
    ctx: click.Context, source: str, device: str, officer: str | None, category: str | None,
    listen: bool, max_seconds: float, max_outage: float, retry: float, io_timeout: float,
    actor: str,
) -> None:  # fmt: skip
    """Record a live stream from SOURCE: pull any URL ffmpeg reads (rtsp://, http://, tcp://…),
    or with --listen accept an RTMP push. Segments are stored and announced as they close; a
    camera that drops out and comes back continues the same recording, the outage a gap."""
    metadata = RecordingMetadata(
        device_id=device, officer_id=officer, category=category, original_name="live.ts"
    )
    try:
        live_source = LiveSource(source, "push" if listen else "pull")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    policy = LivePolicy(
        max_s=max_seconds, max_outage_s=max_outage, retry_s=retry, io_timeout_s=io_timeout
    )
    stop = threading.Event()
    with running_app(ctx) as app:
        on_stop_signals(stop, grace_s=app.settings.shutdown_grace_s, kill=app.runner.stop)
        # The custody path runs on the recorder's thread; the work that follows it drains on
        # a thread of its own at a lower priority, so it never holds up the next segment.
        behind = BehindDrain(app.run_pipeline)
        recorder = app.live_recorder(after_publish=behind.poke)
        click.echo(f"recording {redact(source)}", err=True)
        try:
            result = recorder.record(live_source, metadata, actor=actor, policy=policy, stop=stop)
        finally:
            # The dense index and finalise catch up behind; the recording completes here.
            behind.close()
    outages = ", ".join(f"{s:.1f} s" for s in result.outages_s) or "none"
    click.echo(
        f"recorded: {result.recording_id} sha256 {result.sha256} {result.segments} segments in"
        f" {result.sessions} session(s), outages {outages} ({result.reason}: {result.stopped_by})"
    )


def wait_until_done(app: Vigil, recording_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.catalog.recording(recording_id).status in ("complete", "unreadable"):
            return
        time.sleep(0.5)
    raise click.ClickException(f"{recording_id} not finished after {timeout_s:g} s")


@cli.command()
@click.argument("stage", type=click.Choice(sorted(STAGE_INPUTS)))
@click.option("--id", "worker_id", default=None, help="Name in logs (default: the PID).")
@metrics_port_option
@click.pass_context
def worker(ctx: click.Context, stage: str, worker_id: str | None, metrics_port: int | None) -> None:
    """Run one STAGE as a Kafka consumer-group worker until SIGTERM."""
    settings: Settings = ctx.obj["settings"]
    if settings.bus != "kafka":
        raise click.UsageError("stage workers consume Kafka: set VIGIL_BUS=kafka")
    name = f"{stage}-{worker_id or os.getpid()}"
    app = build_app(settings)
    server = serve_metrics(app.metrics.registry, settings, metrics_port, f"worker {name}")
    if server is not None:
        app._closers.append(server.stop)
    stop = threading.Event()
    on_stop_signals(stop, grace_s=settings.shutdown_grace_s, kill=app.runner.stop)
    assert app.publisher is not None

    def report(outcome: Outcome) -> None:
        app.metrics.message(stage, outcome.status, outcome.seconds)
        error = f" ({outcome.error})" if outcome.error else ""
        click.echo(
            f"worker {name}: {outcome.where} {outcome.status} {outcome.seconds:.2f} s{error}",
            err=True,
        )

    click.echo(f"worker {name}: consuming {', '.join(STAGE_INPUTS[stage])}", err=True)
    try:
        StageWorker(
            stage=stage,
            inputs=STAGE_INPUTS[stage],
            handler=app.stages[stage],
            publisher=app.publisher,
            bootstrap=settings.kafka_bootstrap,
            stop=stop,
            retry=RetryPolicy(attempts=settings.handler_attempts),
            client_id=f"vigil-{name}",
            on_outcome=report,
            on_failure=lambda kind: app.metrics.failed_attempt(stage, kind),
            on_assigned=lambda names: click.echo(
                f"worker {name}: assigned {', '.join(names) or 'nothing'}", err=True
            ),
        ).run()
    finally:
        app.stop()
    click.echo(f"worker {name}: stopped", err=True)


def on_stop_signals(stop: threading.Event, *, grace_s: float, kill: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: finish the message in hand, then stop. After ``grace_s`` the ffmpeg
    still running is killed and the message abandoned (uncommitted, so it is redelivered).
    A second Ctrl+C gets Python's default behaviour back."""

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            return
        stop.set()
        timer = threading.Timer(grace_s, kill)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EXPECTED_ERRORS as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
