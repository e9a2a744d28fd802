"""Issue 18: with ``VIGIL_SEGMENT_COPIES=derive`` no segment copy is stored where the original
makes it again byte for byte: custody signs each segment (its file's SHA-256 as cut, its packets
in the original, ``kept: false``) and stores only the original. Whoever reads a segment
(perceptual stage, playback, export, ``vigil verify --full``) gets it cut again from the
original and checked against the signed SHA-256; ``vigil verify`` judges it by the original's
packets.

One H.264/AAC MP4 (segments 0-10, 10-20, 20-30 s) on the embedded defaults, ingested once;
tests that change the store put it back. And an AVI whose segments are Matroska.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from vigil_verify.report import render, verify_package
from vigil_verify.verdicts import Verdict

from catalog.figures import catalog_figures
from integrity.export import export_case
from integrity.logfacts import prove
from integrity.segment_files import (
    SegmentFiles,
    SegmentNotReproduced,
    plan_from_log,
    plan_from_rows,
)
from interfaces.api.app import create_api
from tests import tamper
from tests.helpers import ingest_and_process, object_path, stored_bytes
from tests.integration.test_api import SECRET, serve_api
from transcode.ffmpeg import ffmpeg_version
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg]

MP4 = SampleSpec(duration_s=30.0, width=640, height=360, video_bitrate="1M", seed=31)
AVI = SampleSpec(duration_s=12.0, width=320, height=240, codec="mpeg4", container="avi", seed=32)
CASE = "CASE-18"


def _app(folder: Path) -> Vigil:
    return build_app(Settings(data_dir=folder, segment_copies="derive"))


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Iterator[tuple[Vigil, str]]:
    app = _app(tmp_path_factory.mktemp("uncopied") / "vigil")
    rec = ingest_and_process(app, make_clip(MP4))
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident 18", actor="sam")
    yield app, rec
    app.stop()


@pytest.fixture
def original(recorded: tuple[Vigil, str], tmp_path: Path) -> Iterator[Path]:
    """The stored original, writable for one test and put back after it."""
    app, rec = recorded
    stored = object_path(app, "originals", app.catalog.recording(rec).original_key)
    kept = shutil.copyfile(stored, tmp_path / "kept.mp4")
    stored.chmod(0o644)
    yield stored
    shutil.copyfile(kept, stored)
    stored.chmod(0o444)


def _signed(app: Vigil, rec: str) -> list[dict[str, object]]:
    events = [e for e in app.catalog.events(recording_ids=[rec]) if e.action == "segment.stored"]
    return [json.loads(e.detail or "{}") for e in sorted(events, key=lambda e: e.id)]


def test_only_the_original_is_stored_and_every_segment_is_signed_not_kept(
    recorded: tuple[Vigil, str],
) -> None:
    app, rec = recorded
    recording = app.catalog.recording(rec)
    assert recording.status == "complete" and recording.segment_count == 3
    signed = _signed(app, rec)
    assert [d["kept"] for d in signed] == [False, False, False]
    rows = app.catalog.segments(rec)
    assert [s.kept for s in rows] == [False, False, False]
    for row in rows:
        assert app.store.stat("derived", row.key) is None
        assert row.phash is not None and row.phash_frames  # hashed from the cut again
    stored = stored_bytes(app)
    assert stored["derived"] < 0.02 * stored["originals"], stored  # the playlist, the ledger
    figures = catalog_figures(app.catalog, datetime.now(UTC), lambda _category: 183)
    assert figures.stored_bytes["derived"] == 0  # no segment copy counted


def test_an_untouched_recording_verifies_and_full_verify_decodes_the_cut_again(
    recorded: tuple[Vigil, str],
) -> None:
    app, rec = recorded
    result = app.verifier.verify_recording(rec, actor="auditor", full=True)
    assert result.ok, result.problems
    assert [s.kind for s in result.segments] == [Verdict.INTACT] * 3
    assert all("the picture matches" in s.detail for s in result.segments)


def test_a_byte_flipped_in_the_original_is_named_at_its_segment_only(
    recorded: tuple[Vigil, str], original: Path, ffmpeg: str
) -> None:
    app, rec = recorded
    pos, size = tamper.packet_at(ffmpeg, original, "v:0", 14.0)  # a picture of segment 1
    tamper.flip_byte(original, pos + size // 2)
    result = app.verifier.verify_recording(rec, actor="auditor")
    assert result.original.kind == Verdict.BYTES_ALTERED
    kinds = [s.kind for s in result.segments]
    assert kinds == [Verdict.INTACT, Verdict.BYTES_ALTERED, Verdict.INTACT], result.problems
    assert "differ from the signed ones" in result.segments[1].detail


def test_a_truncated_original_leaves_its_later_segments_truncated(
    recorded: tuple[Vigil, str], original: Path
) -> None:
    app, rec = recorded
    data = original.read_bytes()
    original.write_bytes(data[: len(data) // 2])
    result = app.verifier.verify_recording(rec, actor="auditor")
    assert result.original.kind == Verdict.TRUNCATED, result.original.detail
    kinds = [s.kind for s in result.segments]
    assert kinds == [Verdict.INTACT, Verdict.TRUNCATED, Verdict.TRUNCATED], result.problems


def test_a_segment_is_played_cut_again_from_the_original_with_byte_ranges(
    recorded: tuple[Vigil, str],
) -> None:
    app, rec = recorded
    app.access.add_principal("alice", "reviewer", display_name="alice", actor="setup")
    app.access.assign(CASE, "alice", actor="sam")
    token = app.access.issue_token("alice", label="test", actor="setup").token
    rows = app.catalog.segments(rec)
    for url in serve_api(create_api(app, secret=SECRET)):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as alice:
            links = alice.get(f"/api/v1/recordings/{rec}/playback").json()
        with httpx.Client(base_url=url, timeout=120) as anyone:
            playlist = anyone.get(links["playlist"]).text
            segment_links = [line for line in playlist.splitlines() if "/segments/" in line]
            assert len(segment_links) == 3
            for link, row in zip(segment_links, rows, strict=True):
                got = anyone.get(link)
                assert got.status_code == 200
                assert hashlib.sha256(got.content).hexdigest() == row.sha256
            part = anyone.get(segment_links[1], headers={"Range": "bytes=188-1315"})
            assert part.status_code == 206 and len(part.content) == 1128
            assert part.headers["content-range"] == f"bytes 188-1315/{rows[1].size}"


def test_an_export_carries_the_segments_cut_again_and_verifies_offline(
    recorded: tuple[Vigil, str], tmp_path: Path, ffmpeg: str
) -> None:
    app, rec = recorded
    package = export_case(
        app.catalog, app.store, app.ledger, CASE, tmp_path / "export", actor="reviewer",
        reason="disclosure to the defence", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    files = sorted((package / rec / "segments").glob("seg-*.ts"))
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == [
        s.sha256 for s in app.catalog.segments(rec)
    ]
    report = verify_package(package, ffmpeg=ffmpeg)
    assert report.clean, [str(f) for f in report.findings if not f.clean]


def test_a_remuxed_original_still_cuts_the_signed_segments(
    recorded: tuple[Vigil, str], original: Path, tmp_path: Path, ffmpeg: str
) -> None:
    """The segments are made of the original's packets and nothing of its container: a remux
    of the original (another moov, other metadata) cuts into the very files signed."""
    app, rec = recorded
    remuxed = tmp_path / "remux.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(original), "-c", "copy", "-map", "0",
         "-movflags", "+faststart", "-metadata", "comment=remuxed", str(remuxed)],
        check=True, timeout=60,
    )  # fmt: skip
    assert remuxed.read_bytes() != original.read_bytes()
    shutil.copyfile(remuxed, original)
    files = SegmentFiles(store=app.store, tools=app.tools, cache_dir=tmp_path / "cache")
    plan = plan_from_rows(app.catalog.recording(rec), app.catalog.segments(rec))
    assert plan is not None
    for row in app.catalog.segments(rec):
        with files.path(plan, row.index) as path:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
    result = app.verifier.verify_recording(rec, actor="auditor")
    assert result.original.kind == Verdict.BYTES_ALTERED  # the archive must hold what was signed
    assert [s.kind for s in result.segments] == [Verdict.INTACT] * 3


def test_a_segment_whose_packets_changed_is_never_served_and_the_others_are(
    recorded: tuple[Vigil, str], original: Path, tmp_path: Path, ffmpeg: str
) -> None:
    app, rec = recorded
    pos, size = tamper.packet_at(ffmpeg, original, "v:0", 14.0)  # a picture of segment 1
    tamper.flip_byte(original, pos + size // 2)
    files = SegmentFiles(store=app.store, tools=app.tools, cache_dir=tmp_path / "cache")
    plan = plan_from_rows(app.catalog.recording(rec), app.catalog.segments(rec))
    assert plan is not None
    with pytest.raises(SegmentNotReproduced, match="segment 1: cut again"), files.path(plan, 1):
        pass
    for index in (0, 2):
        with files.path(plan, index) as path:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == plan.files[index].sha256
    # The refusal names the ffmpeg that cut it, as the log signs it (the rows do not say).
    here = ffmpeg_version(app.tools)
    app.ledger.checkpoint()
    log = prove(app.ledger, app.ledger.public_key, [rec]).of(rec)
    assert log.facts.cutter == here
    signed = plan_from_log(app.catalog.recording(rec), plan.original_key, log.facts.segments, here)
    assert signed is not None
    with pytest.raises(SegmentNotReproduced) as same, files.path(signed, 1):
        pass
    assert f"{here}, the ffmpeg that cut it (signed), cuts it otherwise now" in str(same.value)
    assert "the original's packets there are not the signed ones" in str(same.value)
    other = replace(signed, cutter="ffmpeg 9.9-other")
    with pytest.raises(SegmentNotReproduced) as moved, files.path(other, 1):
        pass
    assert f"cut by ffmpeg 9.9-other (signed) and now by {here}" in str(moved.value)


def test_a_row_that_says_a_copy_is_kept_is_catalogue_altered(
    recorded: tuple[Vigil, str],
) -> None:
    app, rec = recorded
    rows = app.catalog.segments(rec)
    with app.catalog.session() as session:
        row = session.get(type(rows[2]), rows[2].id)
        assert row is not None
        row.kept = True
    try:
        result = app.verifier.verify_recording(rec, actor="auditor")
        assert any(f.field == "copy kept" and f.segment == 2 for f in result.catalogue)
    finally:
        with app.catalog.session() as session:
            row = session.get(type(rows[2]), rows[2].id)
            assert row is not None
            row.kept = False


def test_matroska_segments_are_cut_again_byte_for_byte(
    tmp_path: Path, make_clip: Callable[[SampleSpec], Path]
) -> None:
    app = _app(tmp_path / "vigil")
    try:
        rec = ingest_and_process(app, make_clip(AVI))
        rows = app.catalog.segments(rec)
        assert rows and all(not s.kept and s.key.endswith(".mkv") for s in rows)
        result = app.verifier.verify_recording(rec, actor="auditor", full=True)
        assert result.ok, result.problems
        assert all("the picture matches" in s.detail for s in result.segments)
    finally:
        app.stop()


def _other_ffmpeg(here: str) -> str:
    """imageio-ffmpeg's build (9.x here), when it is another ffmpeg than ``here``."""
    import imageio_ffmpeg

    exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    if exe == here:
        pytest.skip("no second ffmpeg to cut with")
    return exe


def test_a_matroska_segment_cut_by_another_ffmpeg_is_judged_by_its_packets_and_times(
    tmp_path: Path, make_clip: Callable[[SampleSpec], Path], ffmpeg: str
) -> None:
    """Cut with Debian's ffmpeg at ingest, cut again with 9.x: other Matroska bytes, the same
    packets at the same times. It is served, exported, and intact offline; a segment file
    with those packets at other times is not."""
    app = _app(tmp_path / "vigil")
    try:
        rec = ingest_and_process(app, make_clip(AVI))
        app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident 18", actor="sam")
        rows = app.catalog.segments(rec)
        other = replace(app.tools, ffmpeg=_other_ffmpeg(app.tools.ffmpeg))
        files = SegmentFiles(store=app.store, tools=other, cache_dir=tmp_path / "cache")
        plan = plan_from_rows(app.catalog.recording(rec), rows)
        assert plan is not None
        for row in rows:
            with files.path(plan, row.index) as path:
                assert hashlib.sha256(path.read_bytes()).hexdigest() != row.sha256
        assert set(files.recut(plan)) == {r.index for r in rows}
        package = export_case(
            app.catalog, app.store, app.ledger, CASE, tmp_path / "export", actor="reviewer",
            reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
            worm_checkpoints=app.worm_checkpoints(), segment_files=files,
        )  # fmt: skip
        report = verify_package(package, ffmpeg=ffmpeg)
        assert report.clean, render(report)
        assert all("cut again from the original" in s.detail for s in report.segments)
        # the same packets half a second later: not the signed segment
        first = package / rec / "segments" / Path(rows[0].key).name
        shifted = tmp_path / first.name
        subprocess.run(
            [ffmpeg, "-v", "error", "-i", str(first), "-map", "0", "-c", "copy",
             "-output_ts_offset", "0.5", "-fflags", "+bitexact", str(shifted)],
            check=True, timeout=60,
        )  # fmt: skip
        shutil.copyfile(shifted, first)
        again = verify_package(package, ffmpeg=ffmpeg)
        assert again.segments[0].kind != Verdict.INTACT
        assert [s.kind for s in again.segments[1:]] == [Verdict.INTACT] * (len(rows) - 1)
    finally:
        app.stop()
