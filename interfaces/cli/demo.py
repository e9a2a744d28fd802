"""``vigil demo``: the main job end to end on one clip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from catalog.ids import require_case_id, require_device_id, require_file_name, require_officer_id
from ingest.service import RecordingMetadata
from interfaces.cli.cases import timeline_of
from interfaces.cli.context import running_app
from interfaces.cli.inputs import actor_option, checked, finite
from interfaces.cli.render import render_timeline, render_verification
from transcode.samples import SampleSpec, find_font, sample_command


@click.command()
@click.argument(
    "clip", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--case", "case_id", default="DEMO-0001", show_default=True, callback=checked(require_case_id)
)
@click.option("--device", default="BC-0042", show_default=True, callback=checked(require_device_id))
@click.option(
    "--officer", default="031245", show_default=True, callback=checked(require_officer_id)
)
@click.option(
    "--seconds",
    default=40.0,
    show_default=True,
    callback=finite("--seconds", above=True, maximum=3600.0),
    help="Length of a generated clip.",
)
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
            original_name=require_file_name(clip.name),
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
        click.echo(render_timeline(timeline_of(app, case_id)))


COMMANDS: tuple[click.Command, ...] = (demo,)
