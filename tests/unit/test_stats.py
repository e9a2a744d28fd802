"""Unit tests for the supervision statistics (catalog.stats) on a seeded SQLite catalogue whose
answers are known, and for migration 0004 (devices.in_service, incidents).

The seeded footage (UTC; the hours report is read in Asia/Shanghai, UTC+8):

====  ======  =======  ========  ==========================  =====  ===================  ======
rec   device  officer  category  on the wall clock            secs   received             cases
====  ======  =======  ========  ==========================  =====  ===================  ======
A     BC-1    O1       evidence  11-27 15:30:00-16:30:00 (*)  3600   11-27 17:00          C1
B     BC-2    O2       routine   11-27 02:00-02:30 (device)   1800   11-28 04:30 (late)   -
C     BC-1    O1       -         11-27 06:00-07:30, 2 s gap   5400   11-27 09:00          -
D     BC-3    O4       routine   10-30 10:00-10:15            900    10-30 12:00          -
E     BC-3    O4       routine   10-30 10:30-10:45            900    10-30 12:00          C2
F     BC-3    O4       evidence  10-30 11:00-11:30            1800   10-30 12:00          (C3)
G     BC-3    O4       routine   10-01 10:00-10:15, deleted   900    10-01 12:00          -
I     BC-2    O2       routine   not probed yet               -      11-27 20:00          -
K     BC-3    O4       routine   11-28 00:59:55-01:14:55 (*)  900    11-28 01:30          -
====  ======  =======  ========  ==========================  =====  ===================  ======

(*) device clock corrected by the offset measured at handover (A: +10 s, K: -5 s). F was
linked to C3 and unlinked. Roster: O1 Traffic, O2 Patrol; O4 has no unit.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select, text

from catalog.clock import footage_span
from catalog.db import MIGRATIONS, head_revision, make_engine
from catalog.models import Device, Officer, Recording, Segment
from catalog.repository import Catalog, Event, recording_id_for
from catalog.stats.base import CsvError, StatsError, local_period, split_by_day
from catalog.stats.footage import GapRow, gaps_per_recording, retention_ending
from catalog.stats.incidents import (
    Incident,
    Reconciliation,
    import_incidents,
    parse_incidents_csv,
    reconcile,
    stored_incidents,
    summarise,
)
from catalog.stats.reports import HoursRow, footage_share, hours_recorded, percentile, upload_delays
from catalog.stats.roster import (
    DeviceStatus,
    RosterRow,
    import_roster,
    parse_devices_csv,
    parse_roster_csv,
)
from interfaces.cli.tables import to_csv, to_table
from store.retention import RetentionPolicy
from tests.helpers import sha_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = RetentionPolicy(default_days=183, by_category={"routine": 30, "evidence": 3650})
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def utc(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def rid(name: str) -> str:
    return recording_id_for(sha_of(name))


# -- the seeded catalogue ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "catalog.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    Catalog(engine).migrate()
    engine.dispose()
    return path


@pytest.fixture
def empty(migrated_template: Path, tmp_path: Path) -> Catalog:
    path = tmp_path / "db" / "catalog.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(migrated_template, path)
    return Catalog(make_engine(f"sqlite:///{path}"))


def add(
    catalog: Catalog,
    name: str,
    *,
    device: str,
    officer: str | None,
    start: datetime | None,
    duration: float | None,
    received: datetime,
    category: str | None,
    offset: float | None = None,
    status: str = "complete",
    segments: list[tuple[float, float]] | None = None,
) -> str:
    sha = sha_of(name)
    rec_id = recording_id_for(sha)
    rec = Recording(
        id=rec_id,
        sha256=sha,
        size=1000,
        original_key=f"{rec_id}/original.mp4",
        original_name=f"{name}.mp4",
        device_id=device,
        officer_id=officer,
        category=category,
        device_start=start,
        received_at=received,
        clock_offset_s=offset,
        status=status,
        duration_s=duration,
        fps=25.0,
        segment_count=len(segments) if segments is not None else None,
    )
    catalog.add_recording(rec, Event("ingest", "tester", rec_id))
    for index, (a, b) in enumerate(segments or []):
        catalog.add_segment(
            Segment(
                recording_id=rec_id, index=index, key=f"{rec_id}/seg-{index:05d}.ts",
                sha256=sha_of(f"{rec_id} {index}"), size=100, kind="copy", start_s=a, end_s=b,
                frame_count=round((b - a) * 25), chain=sha_of(f"chain {rec_id} {index}"),
            )
        )  # fmt: skip
    return rec_id


@dataclass(frozen=True)
class Seeded:
    catalog: Catalog
    A: str
    B: str
    C: str
    D: str
    E: str
    F: str
    G: str
    I: str  # noqa: E741
    K: str


@pytest.fixture
def seeded(empty: Catalog) -> Seeded:
    cat = empty
    a = add(
        cat, "A", device="BC-1", officer="O1", start=utc(11, 27, 15, 29, 50), offset=10.0,
        duration=3600, received=utc(11, 27, 17), category="evidence",
        segments=[(0.0, 1800.0), (1800.0, 3600.0)],
    )  # fmt: skip
    b = add(
        cat, "B", device="BC-2", officer="O2", start=utc(11, 27, 2), duration=1800,
        received=utc(11, 28, 4, 30), category="routine",
    )  # fmt: skip
    c = add(
        cat, "C", device="BC-1", officer="O1", start=utc(11, 27, 6), offset=0.0, duration=5400,
        received=utc(11, 27, 9), category=None, segments=[(0.0, 10.0), (12.0, 5400.0)],
    )  # fmt: skip
    d = add(
        cat, "D", device="BC-3", officer="O4", start=utc(10, 30, 10), duration=900,
        received=utc(10, 30, 12), category="routine",
    )  # fmt: skip
    e = add(
        cat, "E", device="BC-3", officer="O4", start=utc(10, 30, 10, 30), duration=900,
        received=utc(10, 30, 12), category="routine",
    )  # fmt: skip
    f = add(
        cat, "F", device="BC-3", officer="O4", start=utc(10, 30, 11), duration=1800,
        received=utc(10, 30, 12), category="evidence",
    )  # fmt: skip
    g = add(
        cat, "G", device="BC-3", officer="O4", start=utc(10, 1, 10), duration=900,
        received=utc(10, 1, 12), category="routine", status="deleted",
    )  # fmt: skip
    i = add(
        cat, "I", device="BC-2", officer="O2", start=utc(11, 27, 19), duration=None,
        received=utc(11, 27, 20), category="routine", status="stored",
    )  # fmt: skip
    k = add(
        cat, "K", device="BC-3", officer="O4", start=utc(11, 28, 1), offset=-5.0, duration=900,
        received=utc(11, 28, 1, 30), category="routine",
    )  # fmt: skip
    cat.link("C1", a, from_s=None, to_s=None, reason="assault", actor="sgt")
    cat.link("C2", e, from_s=100.0, to_s=200.0, reason="theft", actor="sgt")
    cat.link("C3", f, from_s=None, to_s=None, reason="mistake", actor="sgt")
    cat.unlink("C3", f, reason="wrong case", actor="sgt")
    import_roster(cat, [RosterRow("O1", "Traffic"), RosterRow("O2", "Patrol")])
    return Seeded(cat, a, b, c, d, e, f, g, i, k)


# -- the wall clock ---------------------------------------------------------------------------


def test_footage_span_corrects_the_device_clock_and_falls_back_to_receipt(
    seeded: Seeded,
) -> None:
    cat = seeded.catalog
    a = footage_span(cat.recording(seeded.A))
    assert a is not None
    assert (a.start, a.end, a.clock) == (utc(11, 27, 15, 30), utc(11, 27, 16, 30), "server")
    b = footage_span(cat.recording(seeded.B))
    assert b is not None
    assert (b.start, b.clock) == (utc(11, 27, 2), "device")
    assert footage_span(cat.recording(seeded.I)) is None  # no duration yet
    no_start = cat.recording(seeded.D)
    no_start.device_start = None
    fallback = footage_span(no_start)
    assert fallback is not None
    assert (fallback.start, fallback.end, fallback.clock) == (
        utc(10, 30, 11, 45), utc(10, 30, 12), "received",
    )  # fmt: skip


def test_split_by_day_uses_local_midnight_and_real_day_lengths() -> None:
    # Shanghai: 23:30-00:30 local is 30 min on each day.
    assert split_by_day(utc(11, 27, 15, 30), utc(11, 27, 16, 30), SHANGHAI) == [
        (date(2026, 11, 27), 1800.0),
        (date(2026, 11, 28), 1800.0),
    ]
    # Berlin leaves summer time on 2026-10-25: that day has 25 hours.
    berlin = ZoneInfo("Europe/Berlin")
    assert split_by_day(utc(10, 24, 21), utc(10, 25, 23, 30), berlin) == [
        (date(2026, 10, 24), 3600.0),
        (date(2026, 10, 25), 25 * 3600.0),
        (date(2026, 10, 26), 1800.0),
    ]
    assert local_period(date(2026, 11, 27), date(2026, 11, 28), SHANGHAI) == (
        utc(11, 26, 16), utc(11, 28, 16),
    )  # fmt: skip
    with pytest.raises(StatsError, match="before it starts"):
        local_period(date(2026, 11, 28), date(2026, 11, 27), SHANGHAI)


# -- 1. hours recorded ------------------------------------------------------------------------

NOV27, NOV28 = date(2026, 11, 27), date(2026, 11, 28)


def _hours(rows: tuple[HoursRow, ...]) -> list[tuple[str | None, date, int, float]]:
    return [(r.key, r.day, r.recordings, r.seconds) for r in rows]


def test_hours_per_device_split_at_local_midnight(seeded: Seeded) -> None:
    report = hours_recorded(seeded.catalog, by="device", since=NOV27, until=NOV28, tz=SHANGHAI)
    assert _hours(report.rows) == [
        ("BC-1", NOV27, 2, 7200.0),  # C 5400 + A's first 1800 (23:30-24:00 local)
        ("BC-1", NOV28, 1, 1800.0),  # A after midnight
        ("BC-2", NOV27, 1, 1800.0),  # B
        ("BC-3", NOV28, 1, 900.0),  # K (08:59:55 local, corrected)
    ]
    assert [r.hours for r in report.rows] == [2.0, 0.5, 0.5, 0.25]
    assert report.unmeasured == (seeded.I,)
    assert report.tz == "Asia/Shanghai"
    # In UTC, A does not cross midnight.
    in_utc = hours_recorded(seeded.catalog, by="device", since=NOV27, until=NOV27, tz=UTC)
    assert _hours(in_utc.rows) == [("BC-1", NOV27, 2, 9000.0), ("BC-2", NOV27, 1, 1800.0)]


def test_hours_per_officer_and_per_unit(seeded: Seeded) -> None:
    cat = seeded.catalog
    officers = hours_recorded(cat, by="officer", since=NOV27, until=NOV28, tz=SHANGHAI)
    assert _hours(officers.rows) == [
        ("O1", NOV27, 2, 7200.0),
        ("O1", NOV28, 1, 1800.0),
        ("O2", NOV27, 1, 1800.0),
        ("O4", NOV28, 1, 900.0),
    ]
    units = hours_recorded(cat, by="unit", since=NOV27, until=NOV28, tz=SHANGHAI)
    assert _hours(units.rows) == [
        ("Patrol", NOV27, 1, 1800.0),
        ("Traffic", NOV27, 2, 7200.0),
        ("Traffic", NOV28, 1, 1800.0),
        (None, NOV28, 1, 900.0),  # O4 has no unit: last
    ]
    # One day only: A's hour after midnight is outside.
    day = hours_recorded(cat, by="unit", since=NOV27, until=NOV27, tz=SHANGHAI)
    assert _hours(day.rows) == [("Patrol", NOV27, 1, 1800.0), ("Traffic", NOV27, 2, 7200.0)]


# -- 2. upload delays -------------------------------------------------------------------------


def test_upload_delays_percentiles_buckets_and_late_uploads(seeded: Seeded) -> None:
    result = upload_delays(seeded.catalog, since=utc(11, 27, 0), until=utc(11, 29, 0))
    s = result.summary
    # Measured delays, sorted: K 905, A 1800, C 5400, B 93600; I has no duration.
    assert (s.recordings, s.unmeasured) == (4, 1)
    assert (s.p50_s, s.p90_s, s.p99_s, s.max_s) == (1800.0, 93600.0, 93600.0, 93600.0)
    assert (s.late, s.late_share) == (1, 0.25)
    assert [(b.label, b.recordings, b.share) for b in result.buckets] == [
        ("<1 h", 2, 0.5),
        ("1-8 h", 1, 0.25),
        ("8-24 h", 0, 0.0),
        (">24 h", 1, 0.25),
    ]
    (late,) = result.late
    assert late.recording_id == seeded.B
    assert (late.device_id, late.officer_id) == ("BC-2", "O2")
    assert (late.recording_end, late.received_at) == (utc(11, 27, 2, 30), utc(11, 28, 4, 30))
    assert (late.delay_s, late.delay_h, late.clock) == (93600.0, 26.0, "device")
    # The period is over receipt: B arrived on the 28th.
    first_day = upload_delays(seeded.catalog, since=utc(11, 27, 0), until=utc(11, 28, 0))
    assert first_day.summary.recordings == 2
    assert first_day.late == ()
    with pytest.raises(StatsError, match="naive"):
        upload_delays(seeded.catalog, since=datetime(2026, 11, 27), until=utc(11, 28, 0))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([float(v) for v in range(1, 101)], 90) == 90.0


# -- 3. uncategorised and unlinked ------------------------------------------------------------


def test_share_uncategorised_and_unlinked(seeded: Seeded) -> None:
    share = footage_share(seeded.catalog)
    # Not deleted: A B C D E F I K = 8, 4.25 h (I not probed: no hours). G is deleted.
    assert (share.recordings, share.hours, share.unmeasured) == (8, 4.25, 1)
    assert (share.uncategorised, share.uncategorised_hours) == (1, 1.5)  # C
    assert share.uncategorised_share == 1 / 8
    assert share.uncategorised_hours_share == 1.5 / 4.25
    # Active links: A (C1), E (C2); F was unlinked from C3.
    assert (share.unlinked, share.unlinked_hours) == (6, 3.0)  # B C D F I K
    assert share.unlinked_share == 6 / 8
    assert share.unlinked_hours_share == 3.0 / 4.25
    assert (share.neither, share.neither_hours) == (1, 1.5)
    period = footage_share(seeded.catalog, since=utc(11, 27, 0), until=utc(11, 28, 0))
    # Received on the 27th: A C I.
    assert (period.recordings, period.hours) == (3, 2.5)
    assert (period.uncategorised, period.uncategorised_hours_share) == (1, 0.6)
    assert (period.unlinked, period.unlinked_hours) == (2, 1.5)  # C I
    nothing = footage_share(seeded.catalog, since=utc(1, 1, 0), until=utc(1, 2, 0))
    assert (nothing.recordings, nothing.uncategorised_share, nothing.unlinked_hours_share) == (
        0, None, None,
    )  # fmt: skip


# -- 4. gaps ----------------------------------------------------------------------------------


def test_gaps_per_recording(seeded: Seeded) -> None:
    rows = gaps_per_recording(
        seeded.catalog, since=utc(11, 27, 0), until=utc(11, 29, 0), tolerance_frames=1.0
    )
    # Segmented recordings received in the period, by receipt: C (09:00), A (17:00).
    assert [r.recording_id for r in rows] == [seeded.C, seeded.A]
    c, a = rows
    assert (c.segments, c.gaps, c.gap_s, c.overlaps, c.overlap_s) == (2, 1, 2.0, 0, 0.0)
    assert c.detail == (
        GapRow(seeded.C, "gap", "segment 0", "segment 1", 10.0, 2.0, utc(11, 27, 6, 0, 10)),
    )
    assert (a.gaps, a.continuous, a.start) == (0, True, utc(11, 27, 15, 30))
    only = gaps_per_recording(
        seeded.catalog, since=utc(11, 27, 0), until=utc(11, 29, 0), tolerance_frames=1.0,
        only_with_gaps=True,
    )  # fmt: skip
    assert [r.recording_id for r in only] == [seeded.C]
    # 2 s is within a 60-frame tolerance (2.4 s at 25 fps).
    lenient = gaps_per_recording(
        seeded.catalog, since=utc(11, 27, 0), until=utc(11, 29, 0), tolerance_frames=60.0,
        only_with_gaps=True,
    )  # fmt: skip
    assert lenient == []


# -- 5. retention -----------------------------------------------------------------------------


def test_footage_near_retention_end_excludes_linked_and_deleted(seeded: Seeded) -> None:
    (d,) = retention_ending(seeded.catalog, POLICY, now=NOW, within_days=7)
    # D: routine (30 days) from 10-30 12:00 -> 11-29 12:00, two days after NOW. E (same
    # dates) is held by case C2; G's retention ended but it is deleted already.
    assert d.recording_id == seeded.D
    assert (d.category, d.retain_until, d.days_left) == ("routine", utc(11, 29, 12), 2.0)
    wider = retention_ending(seeded.catalog, POLICY, now=NOW, within_days=40)
    assert [r.recording_id for r in wider] == [seeded.D, seeded.I, seeded.K, seeded.B]
    assert [r.days_left for r in wider][1:] == pytest.approx(
        [30 + 8 / 24, 30 + 13.5 / 24, 30 + 16.5 / 24]
    )
    # Once the 29th has passed, D is overdue (not swept yet): negative days left.
    later = retention_ending(seeded.catalog, POLICY, now=utc(11, 30, 12), within_days=1)
    assert [(r.recording_id, r.days_left) for r in later] == [(seeded.D, -1.0)]


# -- 6. expected versus recorded --------------------------------------------------------------

INCIDENTS_CSV = """incident_id,officer_id,start,end
I1,O1,2026-11-27T14:10:00+08:00,2026-11-27T14:40:00+08:00
I2,O2,2026-11-27T02:15:00Z,2026-11-27T02:45:00Z

I3,O3,2026-11-27T12:00:00+00:00,2026-11-27T12:20:00+00:00
I4,O1,2026-11-27T06:00:05+00:00,2026-11-27T06:00:15+00:00
I5,O1,2026-11-27T23:00:00+08:00,2026-11-28T00:00:00+08:00
"""


def _coverage(results: list[Reconciliation]) -> list[tuple[str, float, float, float, str]]:
    return [(r.incident_id, r.expected_s, r.covered_s, r.coverage, r.status) for r in results]


def test_parse_incidents_csv() -> None:
    incidents = parse_incidents_csv(INCIDENTS_CSV)
    assert [i.incident_id for i in incidents] == ["I1", "I2", "I3", "I4", "I5"]
    assert incidents[0] == Incident("I1", "O1", utc(11, 27, 6, 10), utc(11, 27, 6, 40))
    assert incidents[0].start.tzinfo is UTC


def test_reconcile_recorded_partial_and_missing(seeded: Seeded) -> None:
    results = reconcile(seeded.catalog, parse_incidents_csv(INCIDENTS_CSV))
    assert _coverage(results) == [
        ("I1", 1800.0, 1800.0, 1.0, "recorded"),  # inside C
        ("I2", 1800.0, 900.0, 0.5, "partial"),  # B ends half way
        ("I3", 1200.0, 0.0, 0.0, "missing"),  # O3 has no footage at all
        ("I4", 10.0, 8.0, 0.8, "partial"),  # C's 2 s gap (06:00:10-12) is not footage
        ("I5", 3600.0, 1800.0, 0.5, "partial"),  # A from 15:30 UTC once corrected (+10 s)
    ]
    assert [r.recordings for r in results] == [
        (seeded.C,), (seeded.B,), (), (seeded.C,), (seeded.A,),
    ]  # fmt: skip
    summary = summarise(results)
    assert (summary.incidents, summary.recorded, summary.partial, summary.missing) == (5, 1, 3, 1)
    assert summary.missing_share == 0.2
    assert summary.covered_share == 4508 / 8410
    lenient = reconcile(seeded.catalog, parse_incidents_csv(INCIDENTS_CSV), min_coverage=0.5)
    assert [r.status for r in lenient] == [
        "recorded",
        "recorded",
        "missing",
        "recorded",
        "recorded",
    ]
    assert reconcile(seeded.catalog, []) == []
    with pytest.raises(StatsError, match="min_coverage"):
        reconcile(seeded.catalog, [], min_coverage=0)


def test_incidents_are_stored_upserted_and_reconciled_later(seeded: Seeded) -> None:
    cat = seeded.catalog
    incidents = parse_incidents_csv(INCIDENTS_CSV)
    first = import_incidents(cat, incidents, at=utc(12, 1, 8))
    assert (first.added, first.updated, first.unchanged) == (5, 0, 0)
    again = import_incidents(cat, incidents)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)
    moved = Incident("I3", "O1", utc(11, 27, 6, 30), utc(11, 27, 6, 50))  # now inside C
    third = import_incidents(cat, [moved])
    assert (third.added, third.updated, third.unchanged) == (0, 1, 0)
    stored = stored_incidents(cat)
    assert [i.incident_id for i in stored] == ["I2", "I4", "I1", "I3", "I5"]  # by start
    assert stored[3] == moved
    assert [r.status for r in reconcile(cat, stored)] == [
        "partial", "partial", "recorded", "recorded", "partial",
    ]  # fmt: skip
    window = stored_incidents(cat, since=utc(11, 27, 6, 35), until=utc(11, 27, 15))
    assert [i.incident_id for i in window] == ["I1", "I3"]
    assert [i.incident_id for i in stored_incidents(cat, officer_id="O2")] == ["I2"]
    with cat.session() as session:
        (imported_at,) = session.execute(
            text("SELECT imported_at FROM incidents WHERE incident_id = 'I1'")
        ).one()
    assert str(imported_at).startswith("2026-12-01 08:00:00")  # unchanged rows keep theirs


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("", r"^line 1: empty: expected a header incident_id,officer_id,start,end$"),
        ("incident_id,officer_id,start\n", r"^line 1: the header lacks end"),
        (
            "incident_id,officer_id,start,end\nI1,O1,2026-11-27T09:00:00+08:00\n",
            r"^line 2: 3 fields, the header has 4$",
        ),
        (
            "incident_id,officer_id,start,end\n\n\nI1,O1,2026-11-27 09:00,2026-11-27T10:00Z\n",
            r"^line 4, field 'start': '2026-11-27 09:00' has no UTC offset",
        ),
        (
            "incident_id,officer_id,start,end\nI1,O1,2026-11-27T09:00Z,yesterday\n",
            r"^line 2, field 'end': 'yesterday' is not an ISO 8601 date and time$",
        ),
        (
            "incident_id,officer_id,start,end\nI1,O1,2026-11-27T09:00Z,2026-11-27T08:00Z\n",
            r"^line 2, field 'end': .* is not after start",
        ),
        (
            "incident_id,officer_id,start,end\nI1,,2026-11-27T09:00Z,2026-11-27T10:00Z\n",
            r"^line 2, field 'officer_id': empty$",
        ),
        (
            "incident_id,officer_id,start,end\n"
            "I1,O1,2026-11-27T09:00Z,2026-11-27T10:00Z\n"
            "I1,O2,2026-11-27T09:00Z,2026-11-27T10:00Z\n",
            r"^line 3, field 'incident_id': incident 'I1' is listed on line 2 too$",
        ),
        (
            'incident_id,officer_id,start,end\nI1,"O1,2026-11-27T09:00Z,2026-11-27T10:00Z\n',
            r"^line 2: not valid CSV",
        ),
    ],
)
def test_incident_csv_errors_name_the_line_and_field(csv_text: str, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        parse_incidents_csv(csv_text)


# -- roster -----------------------------------------------------------------------------------


def test_roster_csv_and_import(seeded: Seeded) -> None:
    cat = seeded.catalog
    rows = parse_roster_csv(
        "\ufeffOfficer_ID, Unit ,name\nO1,Motorway,Li\nO5,,Wang\nO1,Motorway,Li\n"
    )
    assert rows == [RosterRow("O1", "Motorway"), RosterRow("O5", None)]
    devices = parse_devices_csv("device_id,in_service\nBC-1,no\nBC-9,yes\n")
    assert devices == [DeviceStatus("BC-1", False), DeviceStatus("BC-9", True)]
    result = import_roster(cat, [*rows, RosterRow("O2", "Patrol")], devices=devices)
    assert (result.officers_added, result.officers_updated, result.officers_unchanged) == (1, 1, 1)
    assert (result.devices_updated, result.unknown_devices) == (1, ("BC-9",))
    with cat.session() as session:
        units = {o.id: o.unit for o in session.scalars(select(Officer))}
        in_service = {d.id: d.in_service for d in session.scalars(select(Device))}
    assert units == {"O1": "Motorway", "O2": "Patrol", "O4": None, "O5": None}
    assert in_service == {"BC-1": False, "BC-2": True, "BC-3": True}  # new devices: in service
    units_report = hours_recorded(cat, by="unit", since=NOV27, until=NOV27, tz=SHANGHAI)
    assert _hours(units_report.rows) == [
        ("Motorway", NOV27, 2, 7200.0), ("Patrol", NOV27, 1, 1800.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("officer,unit\nO1,Traffic\n", r"^line 1: the header lacks officer_id"),
        ("officer_id,unit\nO1,Traffic\n,Patrol\n", r"^line 3, field 'officer_id': empty$"),
        ("officer_id,unit\nO1,Traffic,x\n", r"^line 2: 3 fields, the header has 2$"),
        (
            "officer_id,unit\nO1,Traffic\nO2,Patrol\nO1,Patrol\n",
            r"^line 4, field 'unit': officer 'O1' has unit 'Patrol' here and 'Traffic' on line 2",
        ),
        ("officer_id,unit\n" + "O" * 65 + ",Traffic\n", r"^line 2, field 'officer_id': longer"),
        ("officer_id,unit,unit\nO1,a,b\n", r"^line 1: the header names unit twice$"),
    ],
)
def test_roster_csv_errors_name_the_line(csv_text: str, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        parse_roster_csv(csv_text)


def test_devices_csv_errors_name_the_line() -> None:
    with pytest.raises(CsvError, match=r"^line 3, field 'in_service': 'maybe' is not true"):
        parse_devices_csv("device_id,in_service\nBC-1,true\nBC-2,maybe\n")


# -- 7. rendering -----------------------------------------------------------------------------


def test_to_csv_and_to_table(seeded: Seeded) -> None:
    report = hours_recorded(seeded.catalog, by="unit", since=NOV27, until=NOV28, tz=SHANGHAI)
    assert to_csv(report.rows) == (
        "by,key,day,recordings,seconds,hours\n"
        "unit,Patrol,2026-11-27,1,1800.0,0.500\n"
        "unit,Traffic,2026-11-27,2,7200.0,2.000\n"
        "unit,Traffic,2026-11-28,1,1800.0,0.500\n"
        "unit,,2026-11-28,1,900.0,0.250\n"
    )
    assert to_csv([], HoursRow) == "by,key,day,recordings,seconds,hours\n"
    assert to_csv([]) == ""
    results = reconcile(seeded.catalog, parse_incidents_csv(INCIDENTS_CSV))
    lines = to_csv(results).splitlines()
    assert (
        lines[0]
        == "incident_id,officer_id,start,end,expected_s,covered_s,coverage,status,recordings"
    )
    assert lines[1] == (
        f"I1,O1,2026-11-27T06:10:00+00:00,2026-11-27T06:40:00+00:00,1800.0,1800.0,1.0000,recorded,{seeded.C}"
    )
    assert lines[3].endswith(",1200.0,0.0,0.0000,missing,")
    gaps = gaps_per_recording(
        seeded.catalog, since=utc(11, 27, 0), until=utc(11, 29, 0), tolerance_frames=1.0
    )
    header = to_csv(gaps).splitlines()[0]
    assert (
        header == "recording_id,device_id,officer_id,start,segments,gaps,gap_s,overlaps,overlap_s"
    )
    detail = to_csv([g for r in gaps for g in r.detail]).splitlines()
    assert detail[1] == f"{seeded.C},gap,segment 0,segment 1,10.000,2.000,2026-11-27T06:00:10+00:00"
    table = to_table(report.rows).splitlines()
    assert table[0].split() == ["by", "key", "day", "recordings", "seconds", "hours"]
    assert table[2].split() == ["unit", "Patrol", "2026-11-27", "1", "1800.0", "0.500"]
    assert table[2].endswith("0.500")
    assert to_table([], HoursRow).splitlines()[-1] == "(nothing)"


# -- migration 0004 ---------------------------------------------------------------------------


def test_the_catalogue_migrates_through_0004(empty: Catalog) -> None:
    assert head_revision() >= "0004"
    empty.migrate()  # at head already: a no-op
    insp = inspect(empty.engine)
    assert "incidents" in insp.get_table_names()
    assert {c["name"] for c in insp.get_columns("incidents")} == {
        "incident_id", "officer_id", "start", "end", "imported_at",
    }  # fmt: skip
    assert "in_service" in {c["name"] for c in insp.get_columns("devices")}
    with empty.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            head_revision()
        )


def test_0004_upgrades_a_catalogue_with_devices_in_use(tmp_path: Path) -> None:
    """Adding the column must not rebuild ``devices`` (recordings reference it): existing
    devices come out in service, and the downgrade keeps the rows too."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def run(step: str, target: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.upgrade if step == "up" else command.downgrade)(cfg, target)

    run("up", "0003")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO devices (id, kind, first_seen) VALUES ('BC-7', 'body-camera', :t)"),
            {"t": "2026-01-01 00:00:00.000000"},
        )
        conn.execute(
            text(
                "INSERT INTO recordings (id, sha256, size, original_key, original_name,"
                " device_id, received_at, status) VALUES ('rec-1', :sha, 1, 'k', 'n', 'BC-7',"
                " '2026-01-01 00:00:00.000000', 'stored')"
            ),
            {"sha": sha_of("old")},
        )
    run("up", "head")
    cat = Catalog(engine)
    with cat.session() as session:
        device = session.get(Device, "BC-7")
        assert device is not None
        assert device.in_service is True
    assert cat.recording("rec-1").device_id == "BC-7"
    run("down", "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recordings")).scalar() == 1
        assert "incidents" not in inspect(conn).get_table_names()
    run("up", "head")


def test_naive_times_and_bad_incidents_are_refused(empty: Catalog) -> None:
    with pytest.raises(StatsError, match="ends before it starts"):
        Incident("X", "O1", utc(11, 27, 2), utc(11, 27, 1))
    with pytest.raises(StatsError, match="naive"):
        Incident("X", "O1", datetime(2026, 11, 27), utc(11, 27, 1))
    with pytest.raises(StatsError, match="naive"):
        retention_ending(empty, POLICY, now=datetime(2026, 11, 27), within_days=1)
    assert retention_ending(empty, POLICY, now=NOW, within_days=1) == []
    assert hours_recorded(empty, by="device", since=NOV27, until=NOV27, tz=UTC).rows == ()
