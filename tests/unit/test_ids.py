"""Issue 14: one grammar for IDs, reasons, windows, file names and times (``catalog.ids``), the
same for the CLI and the API, and the verifier's ``vigil_verify.names`` under it. As tables."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from vigil_verify.errors import ErrorKind, VigilError
from vigil_verify.names import is_id, shown

from catalog.errors import CatalogError
from catalog.ids import (
    InvalidInput,
    require_case_id,
    require_device_id,
    require_file_name,
    require_id,
    require_label,
    require_moment,
    require_officer_id,
    require_period,
    require_principal_id,
    require_reason,
    require_recording_id,
    require_window,
)

GOOD_IDS = [
    "CASE-2026-0117",
    "rec-3fa2b1c4",
    "BC-0042",
    "031245",
    "a",
    "7",
    "alice",
    "urn:case:17",
    "x_y.z",
    "A" * 64,
    "3d402200be6acedd3df111b9b111e7325af3bd1c88f54b4d249545480a66f7fd",  # a SHA-256
]

BAD_IDS = [
    ("", "is empty"),
    (".", "must start with a letter or digit"),
    ("..", "must start with a letter or digit"),
    ("../../etc/passwd", "must start with a letter or digit"),
    ("CASE/1", "may hold only"),
    ("CASE\\1", "may hold only"),
    ("CASE-1\n", "may hold only"),
    ("\nCASE-1", "must start with a letter or digit"),
    ("CASE 1", "may hold only"),
    ("CASE\x001", "may hold only"),
    ("-rf", "must start with a letter or digit"),
    ("_x", "must start with a letter or digit"),
    (".hidden", "must start with a letter or digit"),
    ("A" * 65, "is longer than 64"),
    ("ÇASE-1", "must start with a letter or digit"),
    ("CASE-①", "may hold only"),
    ("CASE-1\u202e", "may hold only"),
    ("x\ud800", "may hold only"),
    (None, "must be text, got NoneType"),
    (17, "must be text, got int"),
    (b"CASE-1", "must be text, got bytes"),
]

ID_CHECKS = [
    (require_case_id, "case ID"),
    (require_recording_id, "recording ID"),
    (require_device_id, "device ID"),
    (require_officer_id, "officer ID"),
    (require_principal_id, "principal ID"),
]


@pytest.mark.parametrize("value", GOOD_IDS)
@pytest.mark.parametrize(("check", "what"), ID_CHECKS)
def test_good_ids_pass_unchanged(check: object, what: str, value: str) -> None:
    assert callable(check)
    assert check(value) == value
    assert is_id(value)


@pytest.mark.parametrize(("value", "problem"), BAD_IDS)
@pytest.mark.parametrize(("check", "what"), ID_CHECKS)
def test_bad_ids_are_refused_naming_the_field_and_the_value(
    check: object, what: str, value: object, problem: str
) -> None:
    assert callable(check)
    with pytest.raises(InvalidInput) as caught:
        check(value)
    error = caught.value
    message = str(error)
    assert error.field == what
    assert message.startswith(what)
    assert problem in message
    assert isinstance(error, CatalogError) and isinstance(error, VigilError)
    assert error.kind is ErrorKind.INVALID
    # Safe to print: one line, no control character, the value shown by its repr.
    assert message.isprintable(), repr(message)
    assert not is_id(value)


def test_a_long_bad_value_is_shown_cut_short() -> None:
    with pytest.raises(InvalidInput) as caught:
        require_id("/" + "x" * 10_000, "case ID")
    message = str(caught.value)
    assert len(message) < 300
    assert "(10001 characters)" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "'abc'"),
        ("a\nb", "'a\\nb'"),
        ("\x00", "'\\x00'"),
        ("\ud800", "'\\ud800'"),
        ("x" * 50, "'" + "x" * 40 + "'… (50 characters)"),
        (b"\xff" * 41, repr(b"\xff" * 40) + "… (41 bytes)"),
        (None, "None"),
    ],
)
def test_shown(value: object, expected: str) -> None:
    assert shown(value) == expected


# -- reasons ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("traffic stop, plate ABC123", "traffic stop, plate ABC123"),
        ("abc", "abc"),
        ("  charged  ", "charged"),
        ("Überprüfung", "Überprüfung"),
        ("x" * 1000, "x" * 1000),
    ],
)
def test_good_reasons(value: str, expected: str) -> None:
    assert require_reason(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "reason is required (at least 3 characters"),
        ("   ", "reason is required"),
        ("a", "reason is too short: 'a'"),
        ("ab", "reason is too short"),
        ("  ab \t", "reason is too short"),
        ("x" * 1001, "longer than 1000"),
        ("line one\nline two", "control character '\\n'"),
        ("nul\x00here", "control character '\\x00'"),
        ("esc\x1b[31m", "control character '\\x1b'"),
        ("rtl\u202eabc", "control character '\\u202e'"),
        (None, "must be text"),
    ],
)
def test_bad_reasons(value: object, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        require_reason(value)
    assert caught.value.field == "reason"
    assert problem in str(caught.value)
    assert str(caught.value).isprintable()


def test_labels_are_one_line_of_short_text() -> None:
    assert require_label(" A. Reviewer ", "display name") == "A. Reviewer"
    for bad in ("", "x" * 201, "two\nlines"):
        with pytest.raises(InvalidInput) as caught:
            require_label(bad, "display name")
        assert caught.value.field == "display name"


# -- windows ---------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("from_s", "to_s", "duration", "expected"),
    [
        (None, None, None, (None, None)),
        (None, None, 60.0, (None, None)),
        (0, 10, 60.0, (0.0, 10.0)),
        (40.0, 195.0, None, (40.0, 195.0)),
        (40.0, None, 60.0, (40.0, None)),
        (None, 60.0, 60.0, (None, 60.0)),
        (None, 60.0005, 60.0, (None, 60.0005)),  # rounding slack of a millisecond
        (59.9, 60.0, 60.0, (59.9, 60.0)),
    ],
)
def test_good_windows(
    from_s: float | None,
    to_s: float | None,
    duration: float | None,
    expected: tuple[float | None, float | None],
) -> None:
    assert require_window(from_s, to_s, duration) == expected


@pytest.mark.parametrize(
    ("from_s", "to_s", "duration", "problem"),
    [
        (-5.0, None, None, "window start -5 s is before the start"),
        (None, -1.0, None, "window end -1 s is before the start"),
        (NAN, None, None, "window start nan is not a finite"),
        (None, NAN, 60.0, "window end nan is not a finite"),
        (INF, None, None, "window start inf is not a finite"),
        (None, INF, None, "window end inf is not a finite"),
        (0.0, -INF, None, "window end -inf is not a finite"),
        (10.0, 10.0, None, "must end after it starts (10 s to 10 s)"),
        (20.0, 10.0, None, "must end after it starts"),
        (None, 0.0, None, "must end after it starts (0 s to 0 s)"),
        (None, 61.0, 60.0, "ends at 61 s, past the end of the recording (60 s)"),
        (0.0, 3600.0, 60.0, "past the end of the recording"),
        (60.0, None, 60.0, "starts at 60 s, at or past the end of the recording (60 s)"),
        (70.0, 80.0, 60.0, "at or past the end"),
        ("5", None, None, "window start '5' is not a number"),
        (True, None, None, "window start True is not a number"),
    ],
)
def test_bad_windows(from_s: object, to_s: object, duration: float | None, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        require_window(from_s, to_s, duration)
    assert caught.value.field == "window"
    assert problem in str(caught.value)


# -- file names from devices -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["clip.mp4", "VID_0001.MP4", "Straße 1.mov", "a", "x" * 255])
def test_good_file_names(value: str) -> None:
    assert require_file_name(value) == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("clip\x00.mp4", "control character '\\x00'"),
        ("clip.mp4\x00", "control character"),
        ("clip\n.mp4", "control character '\\n'"),
        ("clip\x7f.mp4", "control character '\\x7f'"),
        ("clip\x85.mp4", "control character '\\x85'"),
        ("clip\ud800.mp4", "control character '\\ud800'"),
        ("", "is not a file name"),
        ("  ", "is not a file name"),
        (".", "is not a file name"),
        ("..", "is not a file name"),
        ("x" * 256, "longer than 255"),
        ("DCIM/clip.mp4", "names a folder"),
        ("..\\clip.mp4", "names a folder"),
        (None, "must be text"),
    ],
)
def test_bad_file_names(value: object, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        require_file_name(value)
    assert caught.value.field == "file name"
    assert problem in str(caught.value)
    assert str(caught.value).isprintable()


# -- times and periods -----------------------------------------------------------------------

EAST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 27, 9, 30, tzinfo=EAST),
        datetime(1970, 1, 1, tzinfo=UTC),  # a body camera whose clock was reset
        datetime(1900, 1, 1, 12, tzinfo=UTC),
        datetime(2999, 12, 31, tzinfo=UTC),
    ],
)
def test_good_moments(value: datetime) -> None:
    assert require_moment(value, "--start") is value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (datetime(2026, 11, 27, 9, 30), "has no time zone"),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-8))), "outside 1900-2999"),
        (datetime(1, 1, 1, tzinfo=UTC), "outside 1900-2999"),
    ],
)
def test_bad_moments(value: datetime, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        require_moment(value, "--start")
    assert caught.value.field == "--start"
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("since", "until", "problem"),
    [
        (date(2026, 11, 1), date(2026, 11, 30), None),
        (date(2026, 11, 30), date(2026, 11, 30), None),
        (date(2026, 11, 30), date(2026, 11, 1), "ends (2026-11-01) before it starts"),
        (date(2026, 11, 1), date(9999, 12, 31), "until 9999-12-31 is outside"),
        (date(1, 1, 1), date(2026, 11, 1), "since 0001-01-01 is outside"),
        (date(2000, 1, 1), date(2026, 11, 1), "longer than 3660 days"),
    ],
)
def test_periods(since: date, until: date, problem: str | None) -> None:
    if problem is None:
        assert require_period(since, until) == (since, until)
        return
    with pytest.raises(InvalidInput) as caught:
        require_period(since, until)
    assert caught.value.field == "period"
    assert problem in str(caught.value)
