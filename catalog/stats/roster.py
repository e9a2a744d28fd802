"""The officer and device roster: parsed from CSV and imported into the catalogue (this one
writes: the reports group by unit and list devices in service)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import update

from catalog.db import insert_ignore
from catalog.models import Device, Officer
from catalog.repository import Catalog
from catalog.stats.base import CsvError, _table
from catalog.stats.csvin import _ident, _read_csv

if TYPE_CHECKING:
    pass


# -- roster -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterRow:
    officer_id: str
    unit: str | None  # None: the officer belongs to no unit


@dataclass(frozen=True)
class DeviceStatus:
    device_id: str
    in_service: bool


@dataclass(frozen=True)
class RosterImport:
    officers_added: int
    officers_updated: int  # unit changed
    officers_unchanged: int
    devices_updated: int
    unknown_devices: tuple[str, ...]  # not catalogued: nothing to set (no footage ever came)


def parse_roster_csv(text: str) -> list[RosterRow]:
    """``officer_id,unit`` (other columns ignored; an empty unit: none). An officer listed
    twice with different units is an error."""
    rows: list[RosterRow] = []
    seen: dict[str, tuple[int, str | None]] = {}
    for line, row in _read_csv(text, ("officer_id", "unit")):
        officer = _ident(line, row, "officer_id")
        unit = _ident(line, row, "unit", required=False) or None
        if officer in seen:
            first, first_unit = seen[officer]
            if first_unit != unit:
                raise CsvError(
                    line,
                    f"officer {officer!r} has unit {unit!r} here and {first_unit!r} on line"
                    f" {first}",
                    "unit",
                )
            continue
        seen[officer] = (line, unit)
        rows.append(RosterRow(officer, unit))
    return rows


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


def parse_devices_csv(text: str) -> list[DeviceStatus]:
    """``device_id,in_service`` (true/false, yes/no or 1/0; other columns ignored)."""
    rows: list[DeviceStatus] = []
    seen: dict[str, tuple[int, bool]] = {}
    for line, row in _read_csv(text, ("device_id", "in_service")):
        device = _ident(line, row, "device_id")
        flag = row["in_service"].lower()
        if flag not in _TRUE | _FALSE:
            raise CsvError(line, f"{row['in_service']!r} is not true or false", "in_service")
        in_service = flag in _TRUE
        if device in seen:
            if seen[device][1] != in_service:
                raise CsvError(
                    line, f"device {device!r} contradicts line {seen[device][0]}", "in_service"
                )
            continue
        seen[device] = (line, in_service)
        rows.append(DeviceStatus(device, in_service))
    return rows


def import_roster(
    catalog: Catalog, rows: Iterable[RosterRow], *, devices: Iterable[DeviceStatus] = ()
) -> RosterImport:
    """Upsert each officer's unit (officers not listed keep theirs), and set whether each
    listed device is in service. One transaction."""
    added = updated = unchanged = devices_updated = 0
    unknown: list[str] = []
    officers = _table(Officer)
    with catalog.session() as session:
        for r in rows:
            if insert_ignore(session, officers, {"id": r.officer_id, "unit": r.unit}):
                added += 1
                continue
            result = session.execute(
                update(Officer)
                .where(Officer.id == r.officer_id, Officer.unit.is_distinct_from(r.unit))
                .values(unit=r.unit)
            )
            if getattr(result, "rowcount", 0):
                updated += 1
            else:
                unchanged += 1
        for d in devices:
            if session.get(Device, d.device_id) is None:
                unknown.append(d.device_id)
                continue
            result = session.execute(
                update(Device)
                .where(Device.id == d.device_id, Device.in_service != d.in_service)
                .values(in_service=d.in_service)
            )
            devices_updated += bool(getattr(result, "rowcount", 0))
    return RosterImport(added, updated, unchanged, devices_updated, tuple(unknown))
