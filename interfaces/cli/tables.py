"""Any list of report rows (frozen dataclasses) as CSV or as an aligned text table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Row = TypeVar("Row", bound=DataclassInstance)

DEFAULT_DIGITS = 3


def _cell(value: object, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, tuple | list):
        return ";".join(_cell(v, digits) for v in value)
    return str(value)


def _columns(row_type: type[DataclassInstance]) -> list[tuple[str, int]]:
    return [
        (f.name, int(f.metadata.get("digits", DEFAULT_DIGITS)))
        for f in fields(row_type)
        if f.metadata.get("csv", True)
    ]


def _grid(
    rows: Iterable[Row], row_type: type[Row] | None
) -> tuple[list[str], list[list[str]], list[bool]] | None:
    """Header, cells, and which columns are numbers (right-aligned in a table)."""
    items = list(rows)
    kind: type[DataclassInstance] | None = type(items[0]) if items else row_type
    if kind is None:
        return None
    columns = _columns(kind)
    raw = [[getattr(r, name) for name, _ in columns] for r in items]
    body = [[_cell(v, digits) for v, (_, digits) in zip(r, columns, strict=True)] for r in raw]
    numeric = [
        bool(raw)
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in col)
        for col in (zip(*raw, strict=True) if raw else [() for _ in columns])
    ]
    return [name for name, _ in columns], body, numeric


def to_csv(rows: Iterable[Row], row_type: type[Row] | None = None) -> str:
    """A header and one line per row (fields in declaration order; times ISO 8601; floats
    rounded per field, seconds to 0.1, hours to 0.001, shares to 0.0001; a tuple joined by
    ';'; None empty). With no rows, the header of ``row_type``, or nothing without one."""
    grid = _grid(rows, row_type)
    if grid is None:
        return ""
    header, body, _ = grid
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


def to_table(rows: Iterable[Row], row_type: type[Row] | None = None) -> str:
    """The same cells as ``to_csv``, as aligned plain text (numbers right-aligned)."""
    grid = _grid(rows, row_type)
    if grid is None:
        return "(nothing)\n"
    header, body, numeric = grid
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]

    def line(cells: Sequence[str], right: Sequence[bool]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    lines = [line(header, numeric), line(["-" * w for w in widths], [False] * len(widths))]
    lines += [line(row, numeric) for row in body]
    if not body:
        lines.append("(nothing)")
    return "\n".join(lines) + "\n"
