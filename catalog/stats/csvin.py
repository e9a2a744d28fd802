"""Reading the CSV files the reports take in (roster, devices, incidents): one error per
malformed line, naming it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from catalog.stats.base import _ID_LENGTH, CsvError

if TYPE_CHECKING:
    pass


# -- CSV input --------------------------------------------------------------------------------


def _read_csv(text: str, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row by column name) of each non-blank data row; the header must name every one
    of ``columns`` (others are ignored). Line numbers are the file's (a quoted value that
    spans lines: its last line)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header: list[str] | None = None
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CsvError(reader.line_num, f"not valid CSV ({exc})") from None
        cells = [c.strip() for c in raw]
        if not any(cells):
            continue
        line = reader.line_num
        if header is None:
            header = [c.lower() for c in cells]
            missing = [c for c in columns if c not in header]
            dupes = sorted({c for c in header if c and header.count(c) > 1})
            expected = ",".join(columns)
            if missing:
                raise CsvError(
                    line, f"the header lacks {', '.join(missing)} (expected {expected}),"
                    f" found {','.join(header)}"
                )  # fmt: skip
            if dupes:
                raise CsvError(line, f"the header names {', '.join(dupes)} twice")
            continue
        if len(cells) != len(header):
            raise CsvError(line, f"{len(cells)} fields, the header has {len(header)}")
        yield line, dict(zip(header, cells, strict=True))
    if header is None:
        raise CsvError(1, f"empty: expected a header {','.join(columns)}")


def _ident(line: int, row: Mapping[str, str], name: str, *, required: bool = True) -> str:
    value = row[name]
    if required and not value:
        raise CsvError(line, "empty", name)
    if len(value) > _ID_LENGTH:
        raise CsvError(line, f"longer than {_ID_LENGTH} characters", name)
    return value


def _time(line: int, row: Mapping[str, str], name: str) -> datetime:
    value = row[name]
    if not value:
        raise CsvError(line, "empty", name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CsvError(line, f"{value!r} is not an ISO 8601 date and time", name) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise CsvError(
            line, f"{value!r} has no UTC offset (write e.g. 2026-11-27T09:30:00+08:00)", name
        )
    return parsed.astimezone(UTC)
