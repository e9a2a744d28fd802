"""Errors to exit codes, in one place.

Every error Vigil raises derives from ``vigil_verify.errors.VigilError`` and carries a ``kind``;
the command prints ``error: <message>`` on stderr and exits with the code ``EXIT_CODES`` gives
that kind. pydantic's ``ValidationError`` (input that does not fit a model) is an input error.
click's own errors (a bad option, a missing argument) keep click's codes. A check that ran and
found a problem (``verify``, ``match``, ``ledger check``, ``retention sweep``) is no error: it
exits ``CHECK_FAILED``.
"""

from __future__ import annotations

import sys

import click
from pydantic import ValidationError
from vigil_verify.errors import ErrorKind, VigilError

EXIT_CODES: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 2,
    ErrorKind.NOT_FOUND: 2,
    ErrorKind.CONFLICT: 2,
    ErrorKind.FORBIDDEN: 2,
    ErrorKind.UNAVAILABLE: 2,
    ErrorKind.FAILED: 2,
}
"""Exit code per kind of error. All 2 today, as every expected error has always exited: scripts
test for it."""

CHECK_FAILED = 1
"""A check ran and found footage, a copy or the ledger not as it should be."""

ABORTED = 130
"""Ctrl+C at a prompt (click's ``Abort``)."""

EXPECTED_ERRORS = (VigilError, ValidationError)
"""What ``run`` reports as ``error: <message>``; anything else is a bug and keeps its traceback."""


def exit_code(exc: VigilError | ValidationError) -> int:
    """The exit code of an expected error: its kind's, or an input error's for pydantic's."""
    kind = exc.kind if isinstance(exc, VigilError) else ErrorKind.INVALID
    return EXIT_CODES[kind]


def run(command: click.Command) -> None:
    """Run ``command`` on the process's arguments; end the process with the code of its error."""
    try:
        command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(ABORTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EXPECTED_ERRORS as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exit_code(exc))
