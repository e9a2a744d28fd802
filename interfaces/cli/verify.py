"""``vigil verify`` and ``vigil match``: is the footage, or an outside copy, what was stored?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from catalog.ids import require_recording_id
from integrity.match import match_copy
from integrity.verify import RecordingVerification
from interfaces.cli.context import running_app
from interfaces.cli.errors import CHECK_FAILED
from interfaces.cli.inputs import actor_option, checked, target_argument
from interfaces.cli.render import render_match, render_verification
from store.base import sha256_file


@click.command()
@target_argument()
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
        sys.exit(CHECK_FAILED)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--recording",
    callback=checked(require_recording_id),
    help="The catalogued recording FILE claims to be.",
)
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
        sys.exit(CHECK_FAILED)


COMMANDS: tuple[click.Command, ...] = (verify, match)
