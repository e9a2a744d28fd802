"""Issue 18: a live recording writes each packet once. Its original is its segments as
received, one after the other; each ``segment.stored`` event signs the segment's bytes in it
(``source``). Without copies (``VIGIL_SEGMENT_COPIES=derive``) the copies stored while the
camera recorded go once the recording is complete, and every reader gets the segment back from
those bytes, checked against its signed SHA-256. A change to the original is named at its
segment by those ranges, with or without copies.

The "camera" is an MPEG-TS file pulled as a live source (ffmpeg reads it at once: one session,
4 s segments of a 24 s H.264/AAC stream). A camera that reconnects (a retimed second session)
is in ``test_live_reconnect.py``, recorded in this form too.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from vigil_verify.report import verify_package
from vigil_verify.verdicts import Verdict

from catalog.models import Segment
from ingest.live import LiveSource
from ingest.service import RecordingMetadata
from integrity.compact import Compactor
from integrity.export import export_case
from integrity.segment_files import SegmentNotReproduced, plan_from_rows
from store.base import sha256_file
from tests.helpers import copy_data, object_path, stored_bytes
from transcode.probe import probe
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg]

CAMERA = SampleSpec(duration_s=24.0, width=640, height=360, fps=25, container="ts", seed=18)


def _record(folder: Path, camera: Path, copies: str) -> tuple[Vigil, str]:
    app = build_app(Settings(data_dir=folder, segment_copies=copies))
    metadata = RecordingMetadata(
        device_id="CAM-DOCK", officer_id=None, category="fixed-site", original_name="live.ts"
    )
    result = app.live_recorder(segment_s=4.0).record(LiveSource(str(camera)), metadata, actor="t")
    app.run_pipeline()
    return app, result.recording_id


@pytest.fixture(scope="module")
def camera(make_clip: Callable[[SampleSpec], Path]) -> Path:
    return make_clip(CAMERA)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, camera: Path) -> Path:
    """A data folder with the live recording made without copies (each test opens a copy)."""
    folder = tmp_path_factory.mktemp("live-once") / "vigil"
    app, _rec = _record(folder, camera, "derive")
    app.stop()
    return folder


@pytest.fixture
def live(recorded: Path, tmp_path: Path) -> Iterator[tuple[Vigil, str]]:
    app = build_app(
        Settings(data_dir=copy_data(recorded, tmp_path / "vigil"), segment_copies="derive")
    )
    (rec,) = app.catalog.recordings()
    yield app, rec.id
    app.stop()


def _writable_original(app: Vigil, rec: str) -> Path:
    path = object_path(app, "originals", app.catalog.recording(rec).original_key)
    path.chmod(0o644)
    return path


def _sources(rows: list[Segment]) -> list[tuple[int, int]]:
    found = []
    for row in rows:
        source = row.source_bytes
        assert source is not None, f"segment {row.index} signs no bytes in the original"
        found.append((source.offset, source.size))
    return found


def test_a_live_recording_stores_each_packet_once(live: tuple[Vigil, str]) -> None:
    app, rec_id = live
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete"
    rows = app.catalog.segments(rec_id)
    assert len(rows) >= 6  # ~4 s each, cut on keyframes
    assert not any(s.kept for s in rows)
    original = object_path(app, "originals", rec.original_key)
    # The original is the segments as received, one after the other: every byte in exactly one
    # segment's signed range, nothing in two...
    ranges = _sources(rows)
    assert ranges[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(ranges))
    assert ranges[-1][0] + ranges[-1][1] == original.stat().st_size == rec.size
    # ...and nothing else is stored but the playlist: each packet once.
    stored = stored_bytes(app)
    assert stored["originals"] == rec.size
    assert stored["derived"] < 2_000, stored
    assert stored["derived"] / rec.size < 0.001
    probed = probe(app.tools.runner, app.tools.ffmpeg, original, timeout_s=60)
    assert probed.video is not None
    assert probed.video.count == sum(s.frame_count for s in rows) == 24 * 25
    # The log says so: each segment.stored signs its range; one segment.uncopied event.
    events = app.catalog.events(recording_ids=[rec_id])
    signed = [json.loads(e.detail or "{}") for e in events if e.action == "segment.stored"]
    assert [(d["source"]["offset"], d["source"]["size"]) for d in signed] == ranges
    assert all(d["source"]["shift_s"] == 0.0 for d in signed)
    # and the ffmpeg that received and cut them (what a file made again is explained by)
    (segmented,) = [json.loads(e.detail or "{}") for e in events if e.action == "segment"]
    printed = subprocess.run(
        [app.tools.ffmpeg, "-version"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert segmented["cutter"] == f"ffmpeg {printed[2]}"
    (uncopied,) = [e for e in events if e.action == "segment.uncopied"]
    listed = json.loads(uncopied.detail or "{}")["segments"]
    assert [s["index"] for s in listed] == list(range(len(rows)))


def test_every_segment_is_read_back_from_the_original_as_signed(live: tuple[Vigil, str]) -> None:
    app, rec_id = live
    rec = app.catalog.recording(rec_id)
    rows = app.catalog.segments(rec_id)
    plan = plan_from_rows(rec, rows)
    assert plan is not None and plan.sources is not None
    for row in rows:
        with app.segment_files.path(plan, row.index) as path:
            assert sha256_file(path) == (row.sha256, row.size)
    verification = app.verifier.verify_recording(rec_id, actor="t", full=True)
    assert verification.ok, verification.problems
    assert all(c.kind == Verdict.INTACT for c in verification.segments)
    assert all("the picture matches" in c.detail for c in verification.segments)


@pytest.mark.parametrize(("segment", "at"), [(1, 0.5), (4, 0.1)])
def test_a_byte_flipped_in_a_live_original_is_named_at_its_segment(
    live: tuple[Vigil, str], segment: int, at: float
) -> None:
    app, rec_id = live
    rows = app.catalog.segments(rec_id)
    offset, size = _sources(rows)[segment]
    path = _writable_original(app, rec_id)
    data = bytearray(path.read_bytes())
    data[offset + int(size * at)] ^= 0x10
    path.write_bytes(bytes(data))
    verification = app.verifier.verify_recording(rec_id, actor="t")
    assert not verification.ok
    assert verification.original.kind == Verdict.BYTES_ALTERED
    assert f"segment(s) {segment} (changed)" in verification.original.detail
    assert verification.original.ranges == ((rows[segment].start_s, rows[segment].end_s),)
    kinds = {c.index: c.kind for c in verification.segments}
    assert kinds == {i: Verdict.BYTES_ALTERED if i == segment else Verdict.INTACT for i in kinds}


def test_a_truncated_live_original_is_truncated_from_the_segment_it_cuts(
    live: tuple[Vigil, str],
) -> None:
    app, rec_id = live
    rows = app.catalog.segments(rec_id)
    offset, size = _sources(rows)[3]
    path = _writable_original(app, rec_id)
    with path.open("r+b") as fh:
        fh.truncate(offset + size // 2)
    verification = app.verifier.verify_recording(rec_id, actor="t")
    assert verification.original.kind == Verdict.TRUNCATED
    assert verification.original.ranges == ((rows[3].start_s, rows[-1].end_s),)
    kinds = [c.kind for c in verification.segments]
    assert kinds == [Verdict.INTACT] * 3 + [Verdict.TRUNCATED] * (len(rows) - 3)
    # what is left is still served; what is gone is refused, never passed off as signed
    plan = plan_from_rows(app.catalog.recording(rec_id), rows)
    assert plan is not None
    app.segment_files.cache_dir = app.segment_files.cache_dir.with_name("after-truncation")
    with app.segment_files.path(plan, 2) as path:
        assert sha256_file(path)[0] == rows[2].sha256
    with pytest.raises(SegmentNotReproduced, match="segment 3"), app.segment_files.path(plan, 3):
        pass


def test_a_row_claiming_other_bytes_of_the_original_is_catalogue_altered(
    live: tuple[Vigil, str],
) -> None:
    app, rec_id = live
    with app.catalog.session() as session:
        row = session.get(Segment, app.catalog.segments(rec_id)[2].id)
        assert row is not None and row.source is not None
        moved = json.loads(row.source)
        moved["offset"] += 188
        row.source = json.dumps(moved)
    verification = app.verifier.verify_recording(rec_id, actor="t")
    assert [(f.segment, f.field) for f in verification.catalogue] == [(2, "bytes in the original")]


def test_with_copies_kept_a_live_original_is_judged_by_its_bytes_and_compacts(
    tmp_path: Path, camera: Path
) -> None:
    app, rec_id = _record(tmp_path / "vigil", camera, "keep")
    try:
        rec = app.catalog.recording(rec_id)
        rows = app.catalog.segments(rec_id)
        assert all(s.kept for s in rows)
        assert stored_bytes(app)["derived"] > rec.size  # every packet twice, as before
        # a flip in the original is named at its segment, though every copy is intact
        path = _writable_original(app, rec_id)
        kept = shutil.copyfile(path, tmp_path / "kept.ts")
        offset, size = _sources(rows)[2]
        data = bytearray(path.read_bytes())
        data[offset + size // 3] ^= 0x01
        path.write_bytes(bytes(data))
        verification = app.verifier.verify_recording(rec_id, actor="t")
        assert "segment(s) 2 (changed)" in verification.original.detail
        assert all(c.kind == Verdict.INTACT for c in verification.segments)
        shutil.copyfile(kept, path)
        # `vigil storage compact` moves it to the form without copies
        compactor = Compactor(
            catalog=app.catalog, store=app.store, ledger=app.ledger, segment_files=app.segment_files
        )
        (item,) = compactor.run(apply=True, actor="t", recording_ids=[rec_id]).items
        assert item.state == "compacted", item.detail
        assert stored_bytes(app)["derived"] < 2_000
        assert app.verifier.verify_recording(rec_id, actor="t", full=True).ok
    finally:
        app.stop()


def test_an_export_of_a_live_recording_verifies_offline_and_names_a_changed_segment(
    live: tuple[Vigil, str], tmp_path: Path, ffmpeg: str
) -> None:
    """``vigil-verify`` judges a live original by the same signed byte ranges, offline."""
    app, rec_id = live
    app.cases.link("CASE-LIVE", rec_id, from_s=None, to_s=None, reason="incident", actor="sam")
    package = export_case(
        app.catalog, app.store, app.ledger, "CASE-LIVE", tmp_path / "export", actor="sam",
        reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    report = verify_package(package, ffmpeg=ffmpeg)
    assert report.clean, [str(f) for f in report.findings if not f.clean]
    offset, size = _sources(app.catalog.segments(rec_id))[2]
    (original,) = (package / rec_id).glob("original*")
    data = bytearray(original.read_bytes())
    data[offset + size // 2] ^= 0x20
    original.write_bytes(bytes(data))
    (found,) = verify_package(package, ffmpeg=None).originals
    assert found.kind == Verdict.BYTES_ALTERED
    assert "segment(s) 2 (changed)" in found.detail
