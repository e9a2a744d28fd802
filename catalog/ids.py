"""What the catalogue accepts from people and devices, checked by one grammar everywhere: the CLI
and the API call these on every ID, reason, window, file name and time they are given, before
anything is read or written.

- **IDs** (case, recording, device, officer, principal): ``vigil_verify.names``, 1 to 64 ASCII
  characters, a letter or digit first, then letters, digits and ``. _ : -``. Never empty, never
  ``.`` or ``..``, no ``/``, no space, no control character: safe in a path, a log line and a
  URL. A recording may be named by its ID or a prefix of it or of its SHA-256 (the catalogue
  looks it up); the same grammar applies.
- **Reasons**: required, at least ``REASON_MIN_LENGTH`` characters once stripped, at most
  ``REASON_MAX_LENGTH``, no control characters (a reason is one line of the custody log).
- **Windows** (seconds into a recording): finite, non-negative, ``from < to``, and inside the
  recording when its duration is known.
- **File names** from devices: one name (no ``/`` or ``\\``, not ``.`` or ``..``), at most 255
  characters, no NUL or other control characters.
- **Labels** (display names, token labels): short text without control characters.
- **Moments and periods**: aware times in a plausible range; report periods of whole days in a
  range the calendar arithmetic cannot overflow.

Each check returns the value (a reason or label stripped, a window as floats) or raises
``InvalidInput`` (kind INVALID): its ``field`` says which input, its message names the problem
and shows the bad value safely (``vigil_verify.names.shown``: its repr, cut short).
"""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime, timedelta

from vigil_verify.errors import ErrorKind
from vigil_verify.names import ID_MAX_LENGTH, is_id, shown

from catalog.errors import CatalogError

__all__ = [
    "ID_MAX_LENGTH",
    "LABEL_MAX_LENGTH",
    "MAX_PERIOD_DAYS",
    "NAME_MAX_LENGTH",
    "REASON_MAX_LENGTH",
    "REASON_MIN_LENGTH",
    "InvalidInput",
    "require_case_id",
    "require_device_id",
    "require_file_name",
    "require_id",
    "require_label",
    "require_moment",
    "require_officer_id",
    "require_period",
    "require_principal_id",
    "require_reason",
    "require_recording_id",
    "require_window",
]

REASON_MIN_LENGTH = 3
REASON_MAX_LENGTH = 1000
NAME_MAX_LENGTH = 255
LABEL_MAX_LENGTH = 200
WINDOW_END_SLACK_S = 0.001
"""A window may end this much past the recording's measured duration (rounding in m:ss)."""

EARLIEST_MOMENT = date(1900, 1, 1)
LATEST_MOMENT = date(2999, 12, 31)
"""A device's clock may be wildly off (that is evidence), but not outside these years."""

EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2999, 12, 31)
MAX_PERIOD_DAYS = 3660
"""A report covers whole days within these bounds, at most about ten years at once."""

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class InvalidInput(CatalogError):
    """An ID, reason, window, name or time that breaks the grammar; ``field`` names which."""

    kind = ErrorKind.INVALID

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- IDs -------------------------------------------------------------------------------------


def require_id(value: object, what: str = "ID") -> str:
    """``value`` if it is an ID by the grammar, else ``InvalidInput`` naming ``what``."""
    if is_id(value):
        return value
    if not isinstance(value, str):
        problem = f"must be text, got {type(value).__name__}"
    elif not value:
        problem = "is empty"
    elif len(value) > ID_MAX_LENGTH:
        problem = f"is longer than {ID_MAX_LENGTH} characters"
    elif not value[0].isascii() or not value[0].isalnum():
        problem = "must start with a letter or digit"
    else:
        problem = "may hold only letters, digits and . _ : -"
    raise InvalidInput(
        what,
        f"{what} {shown(value)} {problem} (an ID is 1-{ID_MAX_LENGTH} ASCII letters, digits and"
        " . _ : -, starting with a letter or digit)",
    )


def require_case_id(value: object) -> str:
    return require_id(value, "case ID")


def require_recording_id(value: object) -> str:
    """A recording's ID, or a prefix of it or of its original's SHA-256."""
    return require_id(value, "recording ID")


def require_device_id(value: object) -> str:
    return require_id(value, "device ID")


def require_officer_id(value: object) -> str:
    return require_id(value, "officer ID")


def require_principal_id(value: object) -> str:
    """A principal (person or device account) or the actor a custody event is attributed to."""
    return require_id(value, "principal ID")


# -- text --------------------------------------------------------------------------------------


def _unprintable(text: str) -> str | None:
    """The first control character, lone surrogate or bidirectional control in ``text``."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            return char
    return None


def _text(value: object, what: str, *, min_length: int, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(what, f"{what} must be text, got {type(value).__name__}")
    stripped = value.strip()
    if len(stripped) < min_length:
        need = "is required" if not stripped else f"is too short: {shown(value)}"
        raise InvalidInput(
            what, f"{what} {need} (at least {min_length} characters, not counting spaces)"
        )
    if len(stripped) > max_length:
        raise InvalidInput(what, f"{what} {shown(value)} is longer than {max_length} characters")
    bad = _unprintable(stripped)
    if bad is not None:
        raise InvalidInput(
            what, f"{what} {shown(value)} holds the control character {bad!r}; use plain text"
        )
    return stripped


def require_reason(value: object) -> str:
    """Why something is done: required everywhere, at least 3 characters once stripped, one
    line. Returns it stripped."""
    return _text(value, "reason", min_length=REASON_MIN_LENGTH, max_length=REASON_MAX_LENGTH)


def require_label(value: object, what: str = "label") -> str:
    """A display name or a token's label: 1 to 200 characters of one line. Returns it
    stripped."""
    return _text(value, what, min_length=1, max_length=LABEL_MAX_LENGTH)


def require_file_name(value: object) -> str:
    """A file's name as a device gives it (``original_name``): one name, no folders, no NUL or
    other control character, at most 255 characters. Returned unchanged."""
    what = "file name"
    if not isinstance(value, str):
        raise InvalidInput(what, f"{what} must be text, got {type(value).__name__}")
    if not value.strip() or value in (".", ".."):
        raise InvalidInput(what, f"{what} {shown(value)} is not a file name")
    if len(value) > NAME_MAX_LENGTH:
        raise InvalidInput(what, f"{what} {shown(value)} is longer than {NAME_MAX_LENGTH}")
    bad = _unprintable(value)
    if bad is not None:
        raise InvalidInput(what, f"{what} {shown(value)} holds the control character {bad!r}")
    if "/" in value or "\\" in value:
        raise InvalidInput(what, f"{what} {shown(value)} names a folder: give the name alone")
    return value


# -- windows -----------------------------------------------------------------------------------


def _offset(value: object, end: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("window", f"window {end} {shown(value)} is not a number of seconds")
    if not math.isfinite(value):
        raise InvalidInput("window", f"window {end} {value!r} is not a finite number of seconds")
    if value < 0:
        raise InvalidInput(
            "window", f"window {end} {value:g} s is before the start of the recording"
        )
    return float(value)


def require_window(
    from_s: object, to_s: object, duration_s: float | None = None
) -> tuple[float | None, float | None]:
    """A window of a recording, seconds on its timeline (None: from its start / to its end):
    finite, non-negative, ending after it starts, and inside the recording when its duration
    ``duration_s`` is known."""
    lo, hi = _offset(from_s, "start"), _offset(to_s, "end")
    if hi is not None and hi <= (lo or 0.0):
        raise InvalidInput(
            "window", f"the window must end after it starts ({lo or 0:g} s to {hi:g} s)"
        )
    if duration_s is None or not math.isfinite(duration_s):
        return lo, hi
    if lo is not None and lo >= duration_s:
        raise InvalidInput(
            "window",
            f"the window starts at {lo:g} s, at or past the end of the recording"
            f" ({duration_s:g} s)",
        )
    if hi is not None and hi > duration_s + WINDOW_END_SLACK_S:
        raise InvalidInput(
            "window",
            f"the window ends at {hi:g} s, past the end of the recording ({duration_s:g} s);"
            " leave the end out to mean the end",
        )
    return lo, hi


# -- times -------------------------------------------------------------------------------------


def require_moment(value: datetime, what: str = "time") -> datetime:
    """A point in time: with its time zone, in the years 1900 to 2999."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(what, f"{what} {value.isoformat()} has no time zone; add +08:00 or Z")
    if not EARLIEST_MOMENT <= value.date() <= LATEST_MOMENT:
        raise InvalidInput(
            what,
            f"{what} {value.isoformat()} is outside {EARLIEST_MOMENT.year}-{LATEST_MOMENT.year}",
        )
    return value


def require_period(since: date, until: date) -> tuple[date, date]:
    """A report's days, ``since`` to ``until`` inclusive: in order, within 1970-2999, at most
    ``MAX_PERIOD_DAYS`` days."""
    for name, day in (("since", since), ("until", until)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise InvalidInput(
                "period",
                f"{name} {day.isoformat()} is outside {EARLIEST_DAY.isoformat()} to"
                f" {LATEST_DAY.isoformat()}",
            )
    if since > until:
        raise InvalidInput(
            "period", f"the period ends ({until.isoformat()}) before it starts ({since})"
        )
    if until - since >= timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidInput(
            "period", f"the period {since} to {until} is longer than {MAX_PERIOD_DAYS} days"
        )
    return since, until
