"""``vigil export``: a case's footage out of the system, with a manifest to check it offline."""

from __future__ import annotations

from pathlib import Path

import click

from integrity.export import export_case
from interfaces.cli.context import actor_option, running_app


@click.command()
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


COMMANDS: tuple[click.Command, ...] = (export,)
