"""``vigil verify`` and ``vigil match``: is the footage, or an outside copy, what was stored?"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from vigil_verify.match_report import match_json

from catalog.ids import require_recording_id
from integrity.match import match_copy
from integrity.verify import RecordingVerification
from interfaces.cli.context import running_app
from interfaces.cli.errors import CHECK_FAILED
from interfaces.cli.inputs import actor_option, checked, target_argument
from interfaces.cli.render import render_match, render_verification, verification_json
from store.base import sha256_file


@click.command()
@target_argument()
@click.option("--full", is_flag=True, help="Also re-decode every segment's perceptual hash.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Machine-readable report, in the schema of vigil-verify --json.",
)
@actor_option
@click.pass_context
def verify(ctx: click.Context, target: str, full: bool, as_json: bool, actor: str) -> None:
    """Recompute every hash of a RECORDING or of all footage of a CASE; name what differs."""
    results: list[RecordingVerification] = []
    with running_app(ctx) as app:
        case_ids = {c.id for c in app.catalog.cases()}
        case = target if target in case_ids else None
        if case is not None:
            ids = list(dict.fromkeys(link.recording_id for link in app.catalog.case_links(case)))
        else:
            ids = [app.catalog.recording(target).id]
        for rec_id in ids:
            results.append(app.verifier.verify_recording(rec_id, actor=actor, full=full))
        fingerprint = app.ledger.verifying.fingerprint
    status = 0 if all(r.ok for r in results) else CHECK_FAILED
    if as_json:
        report = verification_json(
            results, case=case, key_fingerprint=fingerprint, exit_status=status
        )
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render_verification(results))
    if status:
        sys.exit(status)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--recording",
    callback=checked(require_recording_id),
    help="The catalogued recording FILE claims to be.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@actor_option
@click.pass_context
def match(ctx: click.Context, file: Path, recording: str | None, as_json: bool, actor: str) -> None:
    """Compare an outside copy with the recording it claims to be, segment by segment."""
    with running_app(ctx) as app:
        rec_id = recording
        if rec_id is None:
            sha, _ = sha256_file(file)
            known = app.catalog.recording_by_sha(sha)
            if known is not None:
                if as_json:
                    body = {
                        "recording": known.id, "file": file.name, "clean": True,
                        "verdict": "byte-identical to the original", "threshold_bits": None,
                        "segments": [], "inserted": [], "exit_status": 0,
                    }  # fmt: skip
                    click.echo(json.dumps(body, indent=2))
                else:
                    click.echo(f"{file.name} is byte-identical to the original of {known.id}")
                return
            complete = [r for r in app.catalog.recordings() if r.status == "complete"]
            if len(complete) != 1:
                raise click.UsageError("name the recording with --recording ID")
            rec_id = complete[0].id
        report = match_copy(app.catalog, app.tools, rec_id, file, actor=actor, ledger=app.ledger)
    status = 0 if report.clean else CHECK_FAILED
    if as_json:
        body = {**match_json(rec_id, file.name, report), "exit_status": status}
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(render_match(rec_id, file.name, report))
    if status:
        sys.exit(status)


COMMANDS: tuple[click.Command, ...] = (verify, match)
