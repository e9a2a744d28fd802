"""The whole path on embedded defaults, with the real ffmpeg: ingest → segments → hashes →
catalogue → case review. Each test asserts what the catalogue and the store really hold."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from catalog.gaps import recording_gaps
from ingest.errors import NotVideo
from integrity.timeline import case_timeline
from tests.helpers import copy_data, ingest_and_process, metadata, object_path
from tests.tamper import flip_byte, truncate_file
from transcode.samples import SampleSpec
from workers.app import Vigil

pytestmark = [pytest.mark.ffmpeg, pytest.mark.copies_kept]


@pytest.fixture
def standard(
    app_factory: Callable[..., Vigil], standard_recorded: tuple[Path, str], tmp_path: Path
) -> tuple[Vigil, str]:
    """The standard clip through the whole path (once for the run: ``standard_recorded``); each
    test gets its own copy of the data folder, so what one test changes no other sees."""
    root, rec_id = standard_recorded
    copy_data(root, tmp_path / "vigil")  # where app_factory's app lives
    return app_factory(), rec_id


def count_rows(app: Vigil, table: str) -> int:
    with app.catalog.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def stored_files(app: Vigil) -> list[Path]:
    return sorted(p for p in app.settings.store_root.rglob("*") if p.is_file())


def test_segments_cover_the_recording_without_gap_or_overlap(
    standard: tuple[Vigil, str], standard_clip: Path
) -> None:
    app, rec_id = standard
    rec = app.catalog.recording(rec_id)
    segments = app.catalog.segments(rec_id)
    frame = 1 / 30
    assert rec.status == "complete"
    assert rec.playback == "copy"  # H.264/AAC: stream copy, no transcode
    assert len(segments) == 4
    assert segments[0].start_s == pytest.approx(0.0, abs=1e-6)
    assert segments[-1].end_s == pytest.approx(32.0, abs=frame)
    for prev, nxt in itertools.pairwise(segments):
        assert abs(nxt.start_s - prev.end_s) <= frame
        assert 9.0 <= prev.end_s - prev.start_s <= 11.0  # ~10 s, cut on 1 s keyframes
    assert sum(s.frame_count for s in segments) == 32 * 30
    assert recording_gaps(rec, segments, 1.0) == []
    for s in segments:
        assert len(s.sha256) == 64
        assert s.phash_frames == s.frame_count  # every decoded frame is hashed
    # The original is stored byte-exact under its hash.
    original = object_path(app, "originals", rec.original_key)
    assert original.read_bytes() == standard_clip.read_bytes()


def test_reingest_is_idempotent(app: Vigil, standard_clip: Path) -> None:
    first = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    app.run_pipeline()
    before = {t: count_rows(app, t) for t in ("recordings", "segments", "custody_events")}
    files_before = stored_files(app)
    second = app.ingest.ingest_file(standard_clip, metadata("again.mp4"), actor="test")
    app.run_pipeline()
    assert second.recording_id == first.recording_id
    assert first.created
    assert not second.created
    assert {t: count_rows(app, t) for t in before} == before
    assert stored_files(app) == files_before


def test_a_flipped_byte_in_a_segment_fails_verify_naming_it(standard: tuple[Vigil, str]) -> None:
    app, rec_id = standard
    assert app.verifier.verify_recording(rec_id, actor="test").ok
    target = app.catalog.segments(rec_id)[2]
    path = object_path(app, "derived", target.key)
    path.chmod(0o644)
    flip_byte(path, path.stat().st_size // 2)
    result = app.verifier.verify_recording(rec_id, actor="test")
    assert not result.ok
    states = {c.index: c.kind for c in result.segments}
    assert states[2] == "bytes altered"  # in place: the same size as signed, never "re-encoded"
    assert all(state == "intact" for index, state in states.items() if index != 2)
    assert any(p.startswith("segment 2:") for p in result.problems)
    assert result.original.kind == "intact"
    assert result.chain_break is None  # the catalogue itself is untouched
    assert app.catalog.segments(rec_id)[2].verify_status == "bytes altered"


def test_tampering_with_the_catalogue_is_named_against_the_log(standard: tuple[Vigil, str]) -> None:
    app, rec_id = standard
    with app.catalog.engine.begin() as conn:
        conn.execute(
            text(
                'UPDATE segments SET start_s = start_s + 1 WHERE recording_id = :r AND "index" = 1'
            ),
            {"r": rec_id},
        )
    result = app.verifier.verify_recording(rec_id, actor="test")
    # The signed chain holds; the row that says otherwise is named as the catalogue's.
    assert result.chain_break is None
    assert [(f.segment, f.field) for f in result.catalogue] == [(1, "start")]
    assert not result.ok


def test_a_non_video_file_is_refused_and_nothing_is_written(app: Vigil, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_bytes(b"This is a text file pretending to be a recording.\n" * 1000)
    with pytest.raises(NotVideo, match="not a video or audio recording"):
        app.ingest.ingest_file(bogus, metadata(bogus.name), actor="test")
    assert app.run_pipeline() == 0
    assert stored_files(app) == []
    assert count_rows(app, "recordings") == 0
    assert count_rows(app, "custody_events") == 0
    assert list(app.settings.staging_dir.iterdir()) == []


def test_a_truncated_file_is_stored_and_flagged(
    app: Vigil, standard_clip: Path, tmp_path: Path
) -> None:
    cut = truncate_file(standard_clip, tmp_path / "cut.mp4", 0.6)
    rec_id = ingest_and_process(app, cut)
    rec = app.catalog.recording(rec_id)
    assert object_path(app, "originals", rec.original_key).read_bytes() == cut.read_bytes()
    assert rec.damage is not None
    assert "truncated" in rec.damage
    segments = app.catalog.segments(rec_id)
    assert 1 <= len(segments) <= 3  # what could be segmented is catalogued
    assert segments[-1].end_s < 25
    actions = [e.action for e in app.catalog.events(recording_ids=[rec_id])]
    assert "flag.damaged" in actions


def test_a_file_cut_before_its_index_is_kept_as_unreadable_evidence(
    app: Vigil, make_clip: Callable[[SampleSpec], Path], tmp_path: Path
) -> None:
    # A camera that lost power mid-recording leaves an MP4 whose index (moov) was never written.
    spec = SampleSpec(duration_s=12, width=320, height=240, faststart=False, seed=5)
    cut = truncate_file(make_clip(spec), tmp_path / "no-moov.mp4", 0.5)
    rec_id = ingest_and_process(app, cut)
    rec = app.catalog.recording(rec_id)
    assert rec.status == "unreadable"
    assert rec.damage is not None
    assert object_path(app, "originals", rec.original_key).read_bytes() == cut.read_bytes()
    assert app.catalog.segments(rec_id) == []


def test_a_five_second_hole_is_a_gap_at_the_right_time(
    app: Vigil, make_clip: Callable[[SampleSpec], Path]
) -> None:
    spec = SampleSpec(duration_s=30, width=320, height=240, hole_at_s=12.0, hole_s=5.0, seed=7)
    rec_id = ingest_and_process(app, make_clip(spec))
    app.catalog.link("CASE-HOLE", rec_id, from_s=None, to_s=None, reason="test", actor="test")
    timeline = case_timeline(app.catalog, "CASE-HOLE", tolerance_frames=1, device_tolerance_s=2)
    (view,) = timeline.recordings
    assert not view.continuous
    (gap,) = view.gaps
    assert gap.kind == "gap"
    assert gap.start == pytest.approx(12.0, abs=0.1)
    assert gap.seconds == pytest.approx(5.0, abs=0.1)
    assert not timeline.continuous


def test_the_playlist_lists_every_segment_in_order(standard: tuple[Vigil, str]) -> None:
    app, rec_id = standard
    rec = app.catalog.recording(rec_id)
    assert rec.playlist_key is not None
    playlist = object_path(app, "derived", rec.playlist_key).read_text()
    names = [line for line in playlist.splitlines() if line.endswith(".ts")]
    assert names == [s.key.rpartition("/")[2] for s in app.catalog.segments(rec_id)]
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-11-27T09:30:00.000+00:00" in playlist


def test_consecutive_recordings_of_a_device_show_the_gap_between_them(
    app: Vigil, make_clip: Callable[[SampleSpec], Path]
) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    first = make_clip(SampleSpec(duration_s=12, width=320, height=240, seed=11))
    second = make_clip(SampleSpec(duration_s=12, width=320, height=240, seed=12))
    a = ingest_and_process(app, first, start=start)
    b = ingest_and_process(app, second, start=start + timedelta(seconds=42))
    for rec in (a, b):
        app.catalog.link("CASE-2", rec, from_s=None, to_s=None, reason="t", actor="t")
    timeline = case_timeline(app.catalog, "CASE-2", tolerance_frames=1, device_tolerance_s=2)
    (gap,) = timeline.device_gaps
    assert gap.seconds == pytest.approx(30.0, abs=0.1)
    assert (gap.after, gap.before) == (a, b)


def test_stored_objects_are_read_only_on_disk(standard: tuple[Vigil, str]) -> None:
    app, rec_id = standard
    rec = app.catalog.recording(rec_id)
    paths = [object_path(app, "originals", rec.original_key)]
    paths += [object_path(app, "derived", s.key) for s in app.catalog.segments(rec.id)]
    for path in paths:
        assert path.stat().st_mode & 0o222 == 0, path
