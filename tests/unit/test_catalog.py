"""Unit tests for the catalogue (catalog.repository, catalog.db, catalog.models) and the case
timeline (catalog.timeline), on a temporary SQLite file."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import delete, inspect, text, update
from sqlalchemy.exc import DBAPIError, StatementError

from catalog.db import head_revision, make_engine
from catalog.errors import NotFound
from catalog.gaps import device_gaps, recording_gaps
from catalog.models import CustodyEvent, Recording, Segment
from catalog.repository import Catalog, Event, recording_id_for
from integrity.timeline import case_timeline, integrity_state
from tests.helpers import START, recording, sha_of

HEAD = head_revision()


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One freshly migrated SQLite file; each test works on its own copy (migrating is slow)."""
    path = tmp_path_factory.mktemp("template") / "catalog.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    Catalog(engine).migrate()
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def catalog(migrated_template: Path, tmp_path: Path) -> Catalog:
    path = tmp_path / "db" / "catalog.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(migrated_template, path)
    cat = Catalog(make_engine(f"sqlite:///{path}"))
    cat.migrate()  # already at head: a no-op
    return cat


def ingest_event(rec: Recording) -> Event:
    return Event("ingest", "tester", rec.id)


def segment(rec: Recording, index: int, start: float, end: float, **kw: object) -> Segment:
    return Segment(
        recording_id=rec.id,
        index=index,
        key=f"{rec.id}/seg-{index:05d}.ts",
        sha256=sha_of(f"{rec.id} {index}"),
        size=100,
        kind="copy",
        start_s=start,
        end_s=end,
        frame_count=round((end - start) * 25),
        chain=sha_of(f"chain {index}"),
        **kw,
    )


# -- migrations -------------------------------------------------------------------------------


def test_migrate_creates_the_tables_and_is_harmless_twice(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    catalog.migrate()
    names = set(inspect(catalog.engine).get_table_names())
    assert {
        "devices", "officers", "recordings", "segments", "cases", "case_links",
        "custody_events", "alembic_version",
    } <= names  # fmt: skip
    assert catalog.recording(rec.id).sha256 == rec.sha256
    assert len(catalog.events()) == 1


def test_migrate_from_scratch_twice_in_a_new_folder(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "c.sqlite3"
    fresh = Catalog(make_engine(f"sqlite:///{target}"))
    fresh.migrate()
    fresh.migrate()
    assert target.exists()
    rec = recording()
    assert fresh.add_recording(rec, ingest_event(rec))[1] is True
    with fresh.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]


# -- recordings -------------------------------------------------------------------------------


def test_add_recording_twice_keeps_one_row_and_one_event(catalog: Catalog) -> None:
    first, created = catalog.add_recording(recording(), ingest_event(recording()))
    again = recording()
    again.original_name = "renamed.mp4"  # a second upload of the same bytes
    second, created_again = catalog.add_recording(again, ingest_event(again))
    assert (created, created_again) == (True, False)
    assert first.id == second.id
    assert second.original_name == "a.mp4"  # the first row stands
    assert len(catalog.recordings()) == 1
    events = catalog.events()
    assert [(e.action, e.actor, e.recording_id) for e in events] == [("ingest", "tester", first.id)]


def test_add_recording_registers_device_and_officer_once(catalog: Catalog) -> None:
    for name in ("a", "b"):
        rec = recording(name)
        catalog.add_recording(rec, ingest_event(rec))
    with catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT id, kind FROM devices")).all() == [
            ("BC-0042", "body-camera")
        ]
        assert conn.execute(text("SELECT id FROM officers")).all() == [("031245",)]


def test_add_recording_without_officer(catalog: Catalog) -> None:
    rec = recording(officer=None)
    row, created = catalog.add_recording(rec, ingest_event(rec))
    assert created and row.officer_id is None


def test_recording_datetimes_come_back_utc_aware(catalog: Catalog) -> None:
    plus8 = timezone(timedelta(hours=8))
    rec = recording(start=datetime(2026, 11, 28, 1, 30, tzinfo=plus8))
    catalog.add_recording(rec, ingest_event(rec))
    row = catalog.recording(rec.id)
    assert row.device_start == datetime(2026, 11, 27, 17, 30, tzinfo=UTC)
    assert row.device_start is not None and row.device_start.tzinfo is UTC
    assert catalog.events()[0].at.tzinfo is UTC


def test_naive_datetimes_are_refused(catalog: Catalog) -> None:
    rec = recording(start=datetime(2026, 11, 27, 9, 30))  # no tzinfo
    with pytest.raises(StatementError, match="naive datetime"):
        catalog.add_recording(rec, ingest_event(rec))
    assert catalog.recordings() == []
    assert catalog.events() == []


def test_recording_lookup_by_id_prefix_and_hash_prefix(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    assert catalog.recording(rec.id).id == rec.id
    assert catalog.recording(rec.id[:10]).id == rec.id
    assert catalog.recording(rec.sha256[:8]).id == rec.id
    assert catalog.recording("rec-" + rec.sha256[:6]).id == rec.id
    assert catalog.recording_by_sha(rec.sha256) is not None
    assert catalog.recording_by_sha(sha_of("unknown")) is None


def test_recording_lookup_not_found_and_ambiguous(catalog: Catalog) -> None:
    # Two originals whose hashes share their first eight hex digits.
    first, second = recording("x"), recording("y")
    for rec, tail in ((first, "1" * 56), (second, "2" * 56)):
        rec.sha256 = "abcdef01" + tail
        rec.id = recording_id_for(rec.sha256)
        rec.original_key = f"{rec.id}/original.mp4"
        catalog.add_recording(rec, ingest_event(rec))
    with pytest.raises(NotFound, match="more than one"):
        catalog.recording("rec-abcdef")
    with pytest.raises(NotFound, match="no recording"):
        catalog.recording("rec-" + "0" * 8)
    with pytest.raises(NotFound, match="at least 6 hex digits"):
        catalog.recording("rec-abc")
    with pytest.raises(NotFound, match="at least 6 hex digits"):
        catalog.recording("rec-gggggggg")
    # Enough of the ID resolves it.
    assert catalog.recording("rec-abcdef012").id == second.id


@pytest.mark.parametrize("query", ["rec-_", "%", "", "rec-%%%%%%%%", "rec-ab_def0"])
def test_recording_lookup_does_not_treat_input_as_a_pattern(catalog: Catalog, query: str) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    with pytest.raises(NotFound):
        catalog.recording(query)


def test_recordings_by_device_in_device_time_order(catalog: Catalog) -> None:
    later = recording("later", start=START + timedelta(hours=1))
    earlier = recording("earlier", start=START)
    other = recording("other", device="BC-0099")
    for rec in (later, earlier, other):
        catalog.add_recording(rec, ingest_event(rec))
    assert [r.id for r in catalog.recordings("BC-0042")] == [earlier.id, later.id]
    assert len(catalog.recordings()) == 3


def test_update_recording_changes_columns(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    catalog.update_recording(rec.id, status="segmented", segment_count=6)
    row = catalog.recording(rec.id)
    assert (row.status, row.segment_count) == ("segmented", 6)


def test_mark_complete_returns_true_once(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    done = Event("complete", "pipeline", rec.id)
    assert catalog.mark_complete(rec.id, done) is True
    assert catalog.mark_complete(rec.id, done) is False
    assert catalog.recording(rec.id).status == "complete"
    assert [e.action for e in catalog.events(recording_ids=[rec.id])] == ["ingest", "complete"]


def test_mark_complete_of_unknown_recording_is_false(catalog: Catalog) -> None:
    assert catalog.mark_complete("rec-nope", Event("complete", "pipeline", "rec-nope")) is False
    assert catalog.events() == []


# -- segments ---------------------------------------------------------------------------------


def test_add_segment_is_insert_if_absent(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    first = catalog.add_segment(segment(rec, 0, 0.0, 10.0))
    retry = segment(rec, 0, 0.0, 9.5)
    retry.sha256 = sha_of("different bytes")
    kept = catalog.add_segment(retry)
    assert kept.id == first.id
    assert kept.sha256 == first.sha256
    assert kept.end_s == 10.0
    assert len(catalog.segments(rec.id)) == 1


def test_segments_in_index_order_with_phash_and_verification(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    for i in (2, 0, 1):
        catalog.add_segment(segment(rec, i, i * 10.0, (i + 1) * 10.0))
    catalog.set_segment_phash(rec.id, 1, b"\x01\x02", "d" * 64, 100)
    at = START + timedelta(days=1)
    catalog.set_verification(rec.id, {2: "bytes altered"}, at)
    segs = catalog.segments(rec.id)
    assert [s.index for s in segs] == [0, 1, 2]
    assert (segs[1].phash, segs[1].phash_digest, segs[1].phash_frames) == (
        b"\x01\x02",
        "d" * 64,
        100,
    )
    assert (segs[2].verify_status, segs[2].verified_at) == ("bytes altered", at)
    # The timeline's state comes from the latest verification's custody event, not this row.
    states = [integrity_state(s, {2: "bytes altered"}) for s in segs]
    assert states == ["pending", "hashed", "bytes altered"]
    assert [integrity_state(s, {}) for s in segs] == ["pending", "hashed", "pending"]


def test_segment_of_unknown_recording_is_refused(catalog: Catalog) -> None:
    with pytest.raises(DBAPIError):
        catalog.add_segment(segment(recording("ghost"), 0, 0.0, 10.0))


# -- cases and custody ------------------------------------------------------------------------


class LinkDetail(BaseModel):
    ticket: str


def test_link_unlink_case_links_and_events(catalog: Catalog) -> None:
    a, b = recording("a"), recording("b")
    for rec in (a, b):
        catalog.add_recording(rec, ingest_event(rec))
    link = catalog.link(
        "CASE-7", a.id, from_s=5.0, to_s=25.0, reason="incident", actor="det-1",
        detail=LinkDetail(ticket="T-1"),
    )  # fmt: skip
    catalog.link("CASE-7", b.id, from_s=None, to_s=None, reason="witness", actor="det-1")
    assert link.id is not None and (link.from_s, link.to_s) == (5.0, 25.0)
    assert [c.id for c in catalog.cases()] == ["CASE-7"]
    assert [lk.recording_id for lk in catalog.case_links("CASE-7")] == [a.id, b.id]

    assert catalog.unlink("CASE-7", a.id, reason="wrong clip", actor="det-2") == 1
    assert catalog.unlink("CASE-7", a.id, reason="again", actor="det-2") == 0
    assert [lk.recording_id for lk in catalog.case_links("CASE-7")] == [b.id]

    case_events = catalog.events(case_id="CASE-7")
    assert [(e.action, e.recording_id, e.actor, e.reason) for e in case_events] == [
        ("case.link", a.id, "det-1", "incident"),
        ("case.link", b.id, "det-1", "witness"),
        ("case.unlink", a.id, "det-2", "wrong clip"),
    ]
    assert json.loads(case_events[0].detail or "{}") == {"ticket": "T-1"}
    assert [e.action for e in catalog.events(recording_ids=[a.id])] == [
        "ingest", "case.link", "case.unlink",
    ]  # fmt: skip
    both = catalog.events(recording_ids=[b.id], case_id="CASE-7")
    assert [e.action for e in both] == ["ingest", "case.link", "case.link", "case.unlink"]


def test_case_links_of_unknown_case_raise_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="no case"):
        catalog.case_links("CASE-404")


def test_link_of_unknown_recording_is_refused_and_leaves_no_event(catalog: Catalog) -> None:
    with pytest.raises(DBAPIError):
        catalog.link("CASE-1", "rec-ghost", from_s=None, to_s=None, reason="r", actor="a")
    assert catalog.events() == []
    assert catalog.cases() == []


@pytest.mark.parametrize(
    "statement",
    [
        update(CustodyEvent).values(actor="someone else"),
        delete(CustodyEvent),
    ],
    ids=["update", "delete"],
)
def test_custody_events_are_append_only(catalog: Catalog, statement: object) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    catalog.add_event(Event("view", "clerk", rec.id, reason="review"))
    with pytest.raises(DBAPIError, match="append-only"), catalog.session() as session:
        session.execute(statement)  # type: ignore[call-overload]
    assert [(e.action, e.actor) for e in catalog.events()] == [
        ("ingest", "tester"), ("view", "clerk"),
    ]  # fmt: skip


def test_custody_events_refuse_raw_sql_changes(catalog: Catalog) -> None:
    catalog.add_event(Event("login", "clerk"))
    for sql in ("UPDATE custody_events SET reason = 'x'", "DELETE FROM custody_events"):
        with pytest.raises(DBAPIError, match="append-only"), catalog.engine.begin() as conn:
            conn.execute(text(sql))
    assert len(catalog.events()) == 1


# -- timeline ---------------------------------------------------------------------------------


def test_recording_gaps_between_segments_and_holes_inside(catalog: Catalog) -> None:
    rec = recording()
    segs = [
        segment(rec, 0, 0.0, 10.0),
        segment(rec, 1, 10.02, 20.0),  # within one frame: continuous
        segment(rec, 2, 23.0, 30.0, holes=json.dumps([[25.0, 27.5]])),
        segment(rec, 3, 29.0, 40.0),
    ]
    found = recording_gaps(rec, segs, tolerance_frames=1.0)
    assert [(d.kind, d.after, d.start, round(d.seconds, 6)) for d in found] == [
        ("gap", "segment 1", 20.0, 3.0),
        ("gap", "segment 2", 25.0, 2.5),
        ("overlap", "segment 2", 29.0, 1.0),
    ]


def test_device_gaps_per_device_from_device_clock() -> None:
    recs = [
        recording("a", start=START, duration=60.0),
        recording("b", start=START + timedelta(seconds=61), duration=60.0),  # 1 s: fine
        recording("c", start=START + timedelta(seconds=300), duration=60.0),  # gap
        recording("x", device="BC-9", start=START, duration=600.0),  # other device
        recording("nostart", start=None),
    ]
    gaps = device_gaps(recs, tolerance_s=2.0)
    assert [(g.kind, g.after, g.before, g.seconds) for g in gaps] == [
        ("gap", recs[1].id, recs[2].id, 179.0)
    ]


def test_case_timeline_windows_segments_and_orders_by_device_time(catalog: Catalog) -> None:
    early, late = (
        recording("early", start=START),
        recording("late", start=START + timedelta(seconds=61)),
    )
    for rec in (late, early):
        catalog.add_recording(rec, ingest_event(rec))
        for i in range(6):
            catalog.add_segment(segment(rec, i, i * 10.0, (i + 1) * 10.0))
    catalog.link("CASE-1", late.id, from_s=None, to_s=None, reason="r", actor="a")
    catalog.link("CASE-1", early.id, from_s=15.0, to_s=35.0, reason="r", actor="a")
    timeline = case_timeline(catalog, "CASE-1", tolerance_frames=1.0, device_tolerance_s=2.0)
    assert [v.recording.id for v in timeline.recordings] == [early.id, late.id]
    first = timeline.recordings[0]
    assert [s.index for s in first.segments] == [1, 2, 3]
    assert first.segments[0].wall_start == START + timedelta(seconds=10)
    assert [s.integrity for s in first.segments] == ["pending"] * 3
    assert len(timeline.recordings[1].segments) == 6
    assert timeline.device_gaps == ()
    assert timeline.continuous


def test_case_timeline_two_excerpts_of_one_recording_do_not_overlap(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, ingest_event(rec))
    for i in range(6):
        catalog.add_segment(segment(rec, i, i * 10.0, (i + 1) * 10.0))
    catalog.link("CASE-2", rec.id, from_s=0.0, to_s=10.0, reason="arrival", actor="a")
    catalog.link("CASE-2", rec.id, from_s=40.0, to_s=50.0, reason="arrest", actor="a")
    timeline = case_timeline(catalog, "CASE-2", tolerance_frames=1.0, device_tolerance_s=2.0)
    assert [[s.index for s in v.segments] for v in timeline.recordings] == [[0], [4]]
    assert timeline.device_gaps == ()
    assert timeline.continuous
