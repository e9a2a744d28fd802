"""``vigil recover``: the footage of a recording a dead battery left unfinalised (issue 17)."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.ids import require_file_name
from catalog.models import Recording
from ingest.service import RecordingMetadata
from interfaces.cli.context import running_app
from interfaces.cli.inputs import actor_option, device_option
from store.base import sha256_file
from transcode.recover import RecoveryImpossible
from workers.app import Vigil
from workers.recovery import recover as recover_recording


@click.command()
@click.argument("file")
@click.option(
    "--like",
    "like",
    help="A recording by the same device and settings to take the codec setup from"
    " (default: the device's nearest earlier recording on record).",
)
@device_option(help="The device that made FILE, if FILE is not catalogued yet (default: --like's).")
@actor_option
@click.pass_context
def recover(
    ctx: click.Context, file: str, like: str | None, device: str | None, actor: str
) -> None:
    """Recover the video of FILE, an MP4 or MOV whose index (moov) was never written.

    FILE is a recording ID or a file (ingested first, as damaged evidence, when it is not
    catalogued). The original stays stored as it is; the recovered stream is stored apart,
    linked to it by a custody event, and segmented and hashed as the recording's footage."""
    with running_app(ctx) as app:
        rec = _recording(app, file, like, device, actor)
        done = recover_recording(app, rec.id, like=like, actor=actor, name=file)
        app.run_pipeline()
        rec = app.catalog.recording(rec.id)
    detail = done.detail
    again = "" if done.created else " (before: nothing done now)"
    click.echo(f"{rec.id} ({file}) {detail.describe()}{again}")
    click.echo(f"  original  sha256 {detail.original_sha256} ({detail.original_size} bytes), kept")
    click.echo(f"  recovered sha256 {detail.sha256} ({detail.size} bytes) {detail.key}")
    click.echo(f"  reference {detail.reference_recording} sha256 {detail.reference_sha256}")
    for lost in detail.not_recovered:
        click.echo(f"  not recovered: {lost}")
    click.echo(f"  status {rec.status}, {rec.segment_count or 0} segments, playback {rec.playback}")


def _recording(
    app: Vigil, file: str, like: str | None, device: str | None, actor: str
) -> Recording:
    """The recording FILE names: a file (found by its SHA-256, else ingested now) or an ID."""
    path = Path(file)
    if not path.is_file():
        if path.exists() or "/" in file or "." in file:
            raise RecoveryImpossible(f"{file}: no such file")
        return app.catalog.recording(file)
    sha, _size = sha256_file(path)
    known = app.catalog.recording_by_sha(sha)
    if known is not None:
        return known
    if device is None and like is None:
        raise RecoveryImpossible(
            f"{file}: not catalogued yet; say which device made it (--device) or give --like"
        )
    metadata = RecordingMetadata(
        device_id=device or app.catalog.recording(like or "").device_id,
        officer_id=None,
        category=None,
        original_name=require_file_name(path.name),
    )
    result = app.ingest.ingest_file(path, metadata, actor=actor)
    app.run_pipeline()
    return app.catalog.recording(result.recording_id)


COMMANDS: tuple[click.Command, ...] = (recover,)
