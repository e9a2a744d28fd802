"""What a command is given, checked before it does anything: IDs, reasons, windows, times, dates,
numbers and the files it reads.

The rules are ``catalog.ids`` (the API applies the same ones). Arguments and options are checked
by click callbacks while the command line is parsed, so a refused value stops the command before
the app is opened; what needs the catalogue (a window against the recording's duration) is
checked before anything is written. Every refusal is ``catalog.ids.InvalidInput``: ``run``
prints it as one ``error: …`` line and exits 2 (``interfaces.cli.errors``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from vigil_verify.names import shown

from catalog.ids import (
    InvalidInput,
    require_case_id,
    require_device_id,
    require_id,
    require_label,
    require_moment,
    require_officer_id,
    require_principal_id,
    require_reason,
    require_recording_id,
)

__all__ = [
    "actor_option",
    "case_argument",
    "checked",
    "default_actor",
    "device_option",
    "finite",
    "ids_option",
    "label_option",
    "officer_option",
    "parse_day",
    "parse_offset",
    "parse_time",
    "principal_argument",
    "read_text",
    "reason_option",
    "recording_argument",
    "target_argument",
]

T = TypeVar("T")
Callback = Callable[[click.Context, click.Parameter, Any], Any]
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def checked(check: Callable[[object], T]) -> Callback:
    """A click callback passing a given value through ``check`` (an absent one stays None)."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: object) -> T | None:
        return None if value is None else check(value)

    return callback


def finite(
    name: str, *, minimum: float = 0.0, maximum: float = math.inf, above: bool = False
) -> Callback:
    """A click callback for a float option: finite, at least ``minimum`` (more than it, with
    ``above``) and at most ``maximum``. click's own FloatRange lets nan through."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
        if value is None:
            return None
        low = value > minimum if above else value >= minimum
        if not (math.isfinite(value) and low and value <= maximum):
            bound = "more than" if above else "at least"
            top = f" and at most {maximum:g}" if math.isfinite(maximum) else ""
            raise InvalidInput(
                name, f"{name} {value!r} must be a finite number, {bound} {minimum:g}{top}"
            )
        return value

    return callback


def ids_option(*decls: str, check: Callable[[object], str], **kwargs: Any) -> Decorator:
    """A click option holding an ID checked by ``check``."""
    return click.option(*decls, callback=checked(check), **kwargs)


def case_argument(name: str = "case_id") -> Decorator:
    return click.argument(name, callback=checked(require_case_id))


def recording_argument(name: str = "recording") -> Decorator:
    return click.argument(name, callback=checked(require_recording_id))


def principal_argument(name: str = "principal") -> Decorator:
    return click.argument(name, callback=checked(require_principal_id))


def target_argument(name: str = "target") -> Decorator:
    """A case or a recording: the same ID grammar."""
    return click.argument(name, callback=checked(lambda v: require_id(v, "case or recording ID")))


def device_option(*, required: bool = False, help: str = "Device ID, e.g. BC-0042.") -> Decorator:
    return ids_option("--device", check=require_device_id, required=required, help=help)


def officer_option(help: str = "Officer ID.") -> Decorator:
    return ids_option("--officer", check=require_officer_id, help=help)


def reason_option(help: str | None = None) -> Decorator:
    """``--reason``: required, at least 3 characters, one line."""
    return click.option("--reason", required=True, callback=checked(require_reason), help=help)


def label_option(*decls: str, what: str, **kwargs: Any) -> Decorator:
    return click.option(*decls, callback=checked(lambda v: require_label(v, what)), **kwargs)


def default_actor() -> str:
    return os.environ.get("VIGIL_ACTOR") or os.environ.get("USER") or "cli"


def _actor(value: object) -> str:
    try:
        return require_principal_id(value)
    except InvalidInput as exc:
        raise InvalidInput(
            "--actor", f"{exc} (the actor is --actor, else $VIGIL_ACTOR, else $USER)"
        ) from None


actor_option = click.option(
    "--actor", default=default_actor, callback=checked(_actor), help="Who is doing this."
)


# -- times, offsets, dates ---------------------------------------------------------------------


def parse_time(value: str | None, name: str = "time") -> datetime | None:
    """An ISO 8601 time with its zone (``2026-11-27T09:30:00+08:00``), in a plausible range."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            name, f"{name} {shown(value)} is not a time like 2026-11-27T09:30:00+08:00"
        ) from None
    return require_moment(parsed, name)


def parse_offset(value: str | None, name: str = "offset") -> float | None:
    """Seconds into a recording: ``95``, ``95.5``, ``1:35`` or ``0:01:35``. Minutes and seconds
    after the first part are below 60. Whether the offset fits a window is ``require_window``'s
    to say (it refuses negative and non-finite ones by name)."""
    if value is None:
        return None
    problem = f"{name} {shown(value)} is not a time offset like 95, 95.5 or 1:35"
    try:
        first, *rest = (float(p) for p in value.split(":"))
    except ValueError:
        raise InvalidInput(name, problem) from None
    if any(not 0 <= part < 60 for part in rest):
        raise InvalidInput(name, problem)
    seconds = first
    for part in rest:
        seconds = seconds * 60 + part
    return seconds


def parse_day(value: str, name: str) -> date:
    """A day as ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, f"{name} {shown(value)} is not a day like 2026-11-27") from None


def read_text(path: Path, name: str) -> str:
    """A UTF-8 text file the command was given."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(name, f"{name} {path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InvalidInput(name, f"{name} {path}: cannot be read ({exc.strerror})") from None
