"""Unit tests for the subtitle, data and timecode tracks a recording lists (issue 17): the typed
list and its JSON (catalog.tracks), the line the timeline shows, the ``segment`` event that
signs them, the catalogue write that goes with it, and migration 0009."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError
from sqlalchemy import inspect, text

from catalog.db import MIGRATIONS, make_engine
from catalog.repository import SYSTEM_ACTOR, Catalog, Event
from catalog.tracks import KeptTrack, TracksListed, describe_tracks, parse_tracks, tracks_json
from ingest.custody import SegmentDetail, kept_tracks
from integrity.timeline import CaseTimeline, RecordingView, listed_tracks
from interfaces.cli.render import render_timeline
from tests.helpers import recording, sha_of
from transcode.probe import ProbeResult, StreamInfo
from transcode.tracks import ExtraTrack

SUBTITLE = KeptTrack(index=2, codec="mov_text", kind="subtitle", kept="original")
TIMECODE = KeptTrack(index=3, codec="tmcd", kind="timecode", kept="original")
IN_ORIGINAL = "kept in the original only, not in the segments"


def _segment_detail(tracks: tuple[KeptTrack, ...] | None) -> SegmentDetail:
    return SegmentDetail(
        count=3,
        playback="copy",
        chain_head=sha_of("head"),
        playlist_sha256=sha_of("playlist"),
        damage=None,
        tracks=tracks,
    )


# -- the list, its JSON and its line -----------------------------------------------------------


def test_the_line_names_each_track_and_where_it_is_kept() -> None:
    assert describe_tracks((SUBTITLE, TIMECODE)) == (
        f"subtitle mov_text (stream 2), timecode tmcd (stream 3): {IN_ORIGINAL}"
    )
    assert describe_tracks(()) == "none besides video and audio"
    assert describe_tracks(None).startswith("not listed")


def test_the_line_groups_tracks_by_where_they_are_kept() -> None:
    carried = KeptTrack(index=4, codec="bin_data", kind="data", kept="segments")
    assert describe_tracks((SUBTITLE, carried)) == (
        f"subtitle mov_text (stream 2): {IN_ORIGINAL}; "
        "data bin_data (stream 4): kept in the segments and the original"
    )


def test_the_catalogue_column_round_trips() -> None:
    text_ = tracks_json((SUBTITLE, TIMECODE))
    assert '"kept":"original"' in text_
    assert parse_tracks(text_) == (SUBTITLE, TIMECODE)
    assert parse_tracks(tracks_json(())) == ()
    assert parse_tracks(None) is None


@pytest.mark.parametrize(
    "bad",
    [
        '[{"index": 2, "codec": "mov_text", "kind": "caption", "kept": "original"}]',
        '[{"index": -1, "codec": "mov_text", "kind": "subtitle", "kept": "original"}]',
        '[{"index": 2, "codec": "mov_text", "kind": "subtitle", "kept": "nowhere"}]',
        '[{"index": 2, "codec": "mov_text", "kind": "subtitle"}]',
        '{"index": 2}',
    ],
)
def test_a_malformed_column_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        parse_tracks(bad)


# -- from the probe to the signed event ---------------------------------------------------------


def test_every_probed_extra_track_is_kept_in_the_original_only() -> None:
    probed = ProbeResult(
        "mov,mp4,m4a,3gp,3g2,mj2",
        2.0,
        (StreamInfo(0, "video", "h264", Fraction(1, 90000)),),
        None,
        None,
        extra_tracks=(ExtraTrack(2, "mov_text", "subtitle"), ExtraTrack(3, "tmcd", "timecode")),
    )
    assert kept_tracks(probed) == (SUBTITLE, TIMECODE)
    assert kept_tracks(ProbeResult(None, None, (), None, None)) == ()


def test_the_segment_event_carries_the_tracks_and_they_read_back() -> None:
    signed = _segment_detail((SUBTITLE, TIMECODE)).model_dump_json()
    assert TracksListed.model_validate_json(signed).tracks == (SUBTITLE, TIMECODE)
    assert TracksListed.model_validate_json(_segment_detail(()).model_dump_json()).tracks == ()
    before = '{"count": 3, "playback": "copy", "chain_head": "x", "damage": null}'
    assert TracksListed.model_validate_json(before).tracks is None  # written before issue 17


# -- the catalogue ------------------------------------------------------------------------------


def _catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}"))
    catalog.migrate()
    return catalog


def test_the_row_and_the_event_are_written_together_and_the_timeline_reads_the_event(
    tmp_path: Path,
) -> None:
    catalog = _catalog(tmp_path)
    rec = recording()
    catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    assert listed_tracks(catalog, rec.id).tracks is None  # not segmented yet
    detail = _segment_detail((SUBTITLE, TIMECODE))
    catalog.update_recording_with(
        rec.id,
        Event("segment", SYSTEM_ACTOR, rec.id, detail=detail),
        status="segmented",
        extra_tracks=tracks_json((SUBTITLE, TIMECODE)),
    )
    row = catalog.recording(rec.id)
    assert row.status == "segmented"
    assert parse_tracks(row.extra_tracks) == (SUBTITLE, TIMECODE)
    # The timeline reads the signed event, not the row (which anyone with the database can edit)
    catalog.update_recording(rec.id, extra_tracks=tracks_json(()))
    assert listed_tracks(catalog, rec.id).tracks == (SUBTITLE, TIMECODE)


class _Unwritable(BaseModel):
    thing: Any


def test_an_event_that_is_refused_leaves_the_row_unchanged(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    rec = recording()
    catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    with pytest.raises(PydanticSerializationError):
        catalog.update_recording_with(
            rec.id, Event("segment", SYSTEM_ACTOR, rec.id, detail=_Unwritable(thing=object())),
            status="segmented",
        )  # fmt: skip
    assert catalog.recording(rec.id).status == "stored"
    assert listed_tracks(catalog, rec.id).tracks is None


def test_the_case_timeline_shows_the_tracks_beside_the_provenance() -> None:
    rec = recording()
    view = RecordingView(rec, (None, None), (), (), tracks=(SUBTITLE, TIMECODE))
    shown = render_timeline(CaseTimeline("CASE-17", (view,), ())).splitlines()
    at = next(i for i, line in enumerate(shown) if line.startswith("  provenance "))
    assert shown[at + 1] == (
        f"  tracks subtitle mov_text (stream 2), timecode tmcd (stream 3): {IN_ORIGINAL}"
    )
    old = RecordingView(rec, (None, None), (), ())
    assert "  tracks not listed" in render_timeline(CaseTimeline("CASE-17", (old,), ()))


# -- migration 0009 -----------------------------------------------------------------------------


def test_0009_adds_a_nullable_column_and_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def run(step: str, target: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.upgrade if step == "up" else command.downgrade)(cfg, target)

    def columns() -> set[str]:
        with engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("recordings")}

    run("up", "0008")
    assert "extra_tracks" not in columns()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO devices (id, kind, first_seen) VALUES ('BC-7', 'cam', :t)"),
                     {"t": "2026-01-01 00:00:00.000000"})  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO recordings (id, sha256, size, original_key, original_name,"
                " device_id, received_at, status) VALUES ('rec-1', :sha, 1, 'k', 'n', 'BC-7',"
                " '2026-01-01 00:00:00.000000', 'stored')"
            ),
            {"sha": sha_of("old")},
        )
    run("up", "0009")
    assert "extra_tracks" in columns()
    assert Catalog(engine).recording("rec-1").extra_tracks is None  # segmented before 0009
    run("down", "0008")
    assert "extra_tracks" not in columns()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recordings")).scalar() == 1
