"""``vigil ingest`` and ``vigil recordings``: footage in, and what the catalogue holds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from pydantic import ValidationError

from catalog.ids import InvalidInput, require_file_name
from ingest.service import GpsFix, RecordingMetadata
from interfaces.cli.context import running_app
from interfaces.cli.inputs import (
    actor_option,
    device_option,
    finite,
    officer_option,
    parse_time,
    read_text,
)
from workers.app import Vigil


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@device_option(required=True)
@officer_option()
@click.option("--start", "device_start", help="Device time at recording start (ISO 8601).")
@click.option("--device-clock", help="The device's clock reading at handover (ISO 8601).")
@click.option("--category", help="Footage category.")
@click.option("--gps", type=click.Path(exists=True, path_type=Path), help="GPS track (JSON).")
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=None,
    callback=finite("--wait"),
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
    metadata = RecordingMetadata(
        device_id=device,
        officer_id=officer,
        device_start=parse_time(device_start, "--start"),
        device_clock_at_handover=parse_time(device_clock, "--device-clock"),
        category=category,
        gps_track=gps_track(gps) if gps is not None else (),
        original_name=require_file_name(file.name),
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
    if rec.status == "unreadable" and file.suffix.lower() in (".mp4", ".mov", ".m4v"):
        click.echo(f"  its footage may be recovered: vigil recover {rec.id} [--like REC]")


def gps_track(path: Path) -> tuple[GpsFix, ...]:
    """The fixes of a GPS track file: a JSON list of fixes."""
    try:
        fixes = json.loads(read_text(path, "--gps"))
    except ValueError as exc:
        raise InvalidInput("--gps", f"--gps {path}: not JSON ({exc})") from None
    if not isinstance(fixes, list):
        raise InvalidInput("--gps", f"--gps {path}: expected a JSON list of fixes")
    try:
        return tuple(GpsFix.model_validate(fix) for fix in fixes)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise InvalidInput("--gps", f"--gps {path}: {where}: {problem['msg']}") from None


def wait_until_done(app: Vigil, recording_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.catalog.recording(recording_id).status in ("complete", "unreadable"):
            return
        time.sleep(0.5)
    raise click.ClickException(f"{recording_id} not finished after {timeout_s:g} s")


@click.command()
@device_option(help="Only this device.")
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


COMMANDS: tuple[click.Command, ...] = (ingest, recordings)
