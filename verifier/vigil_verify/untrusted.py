"""Reading what a package holds without trusting any of it.

A package comes from whoever hands it over: every file in it may be truncated, altered, of the
wrong type, a folder, a link to a device, or crafted to make a parser fail in a way its author
never meant (a JSON document nested a million deep, a certificate name ``cryptography`` reads
only when asked). The verifier reads each file through ``read_document`` and ``parse_json``, and
runs each parse of what they return inside ``guarded``: whatever goes wrong becomes
``Malformed``, whose message names the file and what is wrong with it, and the check reports it
as a finding instead of stopping. Needs the standard library only.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from vigil_verify.errors import VerifyError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "SMALL_DOCUMENT_BYTES",
    "Malformed",
    "describe",
    "guarded",
    "parse_json",
    "read_document",
]

MAX_DOCUMENT_BYTES = 1 << 30
"""The largest manifest, event log, history or per-frame hash blob read (a case of ten 10-hour
recordings logs about 130 MB of events; a day of per-frame hashes at 10 a second is 36 MB)."""

SMALL_DOCUMENT_BYTES = 1 << 20
"""The largest key, certificate file or signed head read."""

DESCRIBED_LENGTH = 200

T = TypeVar("T")
P = ParamSpec("P")


class Malformed(VerifyError, ValueError):
    """A file, or a value in one, that cannot be read as its format requires; the message says
    which and why."""


def describe(exc: BaseException) -> str:
    """One printable line about ``exc``: its message (its type too, where that is not a
    ``ValueError`` naming the problem itself), cut short."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, ValueError) or isinstance(exc, UnicodeError):
        text = f"{type(exc).__name__}: {text}"
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= DESCRIBED_LENGTH else text[:DESCRIBED_LENGTH] + "…"


def guarded(what: str, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``parse(*args, **kwargs)``, with anything it raises (but an interrupt) turned into
    ``Malformed`` naming ``what`` (when not empty)."""
    try:
        return parse(*args, **kwargs)
    except Malformed:
        raise
    except Exception as exc:  # the input is hostile: no failure of a parser may escape
        raise Malformed(f"{what}: {describe(exc)}" if what else describe(exc)) from exc


def read_document(path: Path, what: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of regular file ``path`` (at most ``limit``); ``Malformed`` naming ``what``
    when it is missing, not a regular file (a folder, a device, a pipe), larger, or unreadable.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise Malformed(f"{what}: not a regular file")
        if info.st_size > limit:
            raise Malformed(f"{what}: {info.st_size} bytes, more than the {limit} allowed")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise Malformed(f"{what}: missing") from None
    except (OSError, ValueError) as exc:
        raise Malformed(f"{what}: unreadable ({describe(exc)})") from None
    if len(data) > limit:
        raise Malformed(f"{what}: more than the {limit} bytes allowed")
    return data


def parse_json(data: bytes | str, what: str) -> object:
    """The JSON value of ``data`` (UTF-8); ``Malformed`` naming ``what`` for anything that is
    not, however it fails (bad UTF-8, bad syntax, nesting too deep for the parser)."""
    return guarded(f"{what} is not JSON", lambda: json.loads(data))
