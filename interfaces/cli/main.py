"""The ``vigil`` command. Settings and the app are created here, in ``main``, never at import."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from interfaces.cli import (
    access,
    cases,
    demo,
    export,
    ingest,
    ledger,
    recover,
    retention,
    runtime,
    services,
    stats,
    storage,
    verify,
)
from interfaces.cli.context import CliState
from interfaces.cli.errors import run
from workers.settings import Settings


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
    ctx.obj = CliState(settings=Settings(**overrides), quiet=quiet)  # type: ignore[arg-type]


COMMAND_GROUPS = (
    ingest, recover, cases, verify, export, stats, access, retention, ledger, runtime, demo,
    services, storage,
)  # fmt: skip
"""One module per command group; each lists the commands it adds to ``cli`` in ``COMMANDS``."""

for _module in COMMAND_GROUPS:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    run(cli)
