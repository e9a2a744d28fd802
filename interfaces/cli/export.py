"""``vigil export``: a case's footage out of the system, with a manifest to check it offline."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.ids import InvalidInput
from integrity.clips import ClipExporter
from integrity.export import export_case
from interfaces.cli.context import running_app
from interfaces.cli.inputs import actor_option, case_argument, reason_option


def package_folder(folder: Path, case_id: str) -> Path:
    """Where the package of (already checked) ``case_id`` goes: ``folder/<case>``, which must be
    a new or empty folder of its own inside ``folder``, not a link leading elsewhere."""
    base = folder.resolve()
    root = base / case_id
    if root.is_symlink() or root.resolve().parent != base:
        raise InvalidInput(
            "folder", f"{root} is a link or leads outside {base}: the package would not stay in it"
        )
    if root.exists() and not root.is_dir():
        raise InvalidInput("folder", f"{root} exists and is not a folder")
    return root


@click.command()
@case_argument()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@reason_option("Why the footage leaves the system (at least 3 characters).")
@actor_option
@click.option(
    "--clip",
    is_flag=True,
    help="Also cut each linked window into an MP4 clip carrying C2PA Content Credentials"
    " signed with the agency's key (VIGIL_C2PA_SIGN_CERT, VIGIL_C2PA_SIGN_KEY).",
)
@click.pass_context
def export(
    ctx: click.Context, case_id: str, folder: Path, reason: str, actor: str, clip: bool
) -> None:
    """Export CASE_ID's footage to FOLDER/CASE_ID with a manifest of every hash."""
    package_folder(folder, case_id)
    with running_app(ctx) as app:
        sign = (app.settings.c2pa_sign_cert, app.settings.c2pa_sign_key)
        clips = ClipExporter.configured(app.tools, *sign) if clip else None
        certs = app.settings.ledger_tsa_certs
        root = export_case(
            app.catalog,
            app.store,
            app.ledger,
            case_id,
            folder.resolve(),
            actor=actor,
            reason=reason,
            tolerance_frames=app.settings.continuity_tolerance_frames,
            device_tolerance_s=app.settings.device_gap_tolerance_s,
            worm_checkpoints=app.worm_checkpoints(),
            tsa_certs=certs.read_bytes() if certs else None,
            clips=clips,
            segment_files=app.segment_files,
        )
        fingerprint = app.ledger.key.fingerprint
    click.echo(f"exported {case_id} to {root} (manifest: {root / 'manifest.json'})")
    if clip:
        made = sorted((root / "clips").glob("*.mp4")) if (root / "clips").is_dir() else []
        click.echo(f"{len(made)} clip(s) with C2PA Content Credentials in {root / 'clips'}")
    click.echo(f"check it offline with: vigil-verify {root} (ledger key {fingerprint})")


COMMANDS: tuple[click.Command, ...] = (export,)
