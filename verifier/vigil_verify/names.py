"""The one grammar of Vigil's IDs: case, recording, device, officer and principal IDs.

An ID is 1 to 64 characters: an ASCII letter or digit, then ASCII letters, digits, ``.``,
``_``, ``:`` and ``-``. So an ID is never empty, never ``.`` or ``..``, and holds no ``/`` or
``\\``, no space and no control character: it is safe as one path component, one field of a log
line and one URL segment.

It lives here, in the lowest layer, so that the server and the offline verifier read IDs by the
same rule: ``catalog.ids`` refuses input that breaks it (with a message naming the value), and
the verifier uses an ID read from a package as a folder name only when ``is_id`` holds.
Needs the standard library only.
"""

from __future__ import annotations

import re
from typing import TypeGuard

__all__ = ["ID_MAX_LENGTH", "ID_PATTERN", "is_id", "shown"]

ID_MAX_LENGTH = 64
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""Matched whole (``fullmatch``); ASCII only, whatever the locale."""

SHOWN_LENGTH = 40
"""How much of a refused value a message repeats."""


def is_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string that fits the ID grammar."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def shown(value: object, limit: int = SHOWN_LENGTH) -> str:
    """``value`` as it may appear in a message: its ``repr`` (control characters, newlines and
    lone surrogates escaped), cut to ``limit`` characters with ``…`` and the full length after."""
    if isinstance(value, str | bytes) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}… ({len(value)} {unit})"
    text = repr(value)
    return text if len(text) <= 2 * limit else f"{text[: 2 * limit]}…"
