"""A recording a dead battery cut short (issue 17): an MP4 cut at 37% of its bytes, its moov
never written. Stored as damaged evidence at ingest, byte-exact; ``vigil recover`` takes the
codec setup from an earlier recording of the same device, recovers at least 95% of the frames
that were in the cut part, stores the stream as a derived object linked to the untouched
original by a signed custody event, segments and hashes it; ``vigil verify`` is clean, the
timeline says "recovered", and ``vigil-verify`` checks the link in an export package."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vigil_verify.report import verify_package
from vigil_verify.verdicts import Verdict

from catalog.recovered import RECOVERED, RecoveredDetail
from integrity.export import export_case
from integrity.timeline import case_timeline
from tests.helpers import VIGIL, ingest_and_process, object_path
from transcode.recover import RecoveryImpossible
from workers.app import Vigil, build_app
from workers.recovery import recover
from workers.settings import Settings

pytestmark = pytest.mark.ffmpeg

CUT_AT = 0.37
CASE = "CASE-2026-0417"
# A body camera's settings: the same for every recording it makes.
DEVICE = [
    *("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "2"),
    *("-c:a", "aac", "-b:a", "96k", "-ar", "48000"),
]


def _record(ffmpeg: str, out: Path, source: str, seconds: int) -> Path:
    """A recording of the device: 640x360 at 30 fps with sound, moov at the end (as a camera
    writes it: the index last, so a power cut loses it)."""
    subprocess.run(
        [
            ffmpeg, "-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"{source}=size=640x360:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            *DEVICE, str(out),
        ],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    return out


def _frames_before(path: Path, cut: int) -> int:
    """Video samples of the intact file whose bytes all lie before ``cut``: what a recovery
    can get back at most (by the intact file's own sample table)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is needed to read the intact file's sample table")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,size",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    packets = json.loads(out)["packets"]
    return sum(1 for p in packets if int(p["pos"]) + int(p["size"]) <= cut)


def _packets(ffmpeg: str, path: Path) -> int:
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f",
         "framecrc", "-"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if line and not line.startswith("#"))


def _pictures(ffmpeg: str, path: Path) -> list[tuple[int, str]]:
    """Each decoded picture's time stamp and MD5, in the order the decoder gives them."""
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
         "-f", "framemd5", "-"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    rows = [line.split(",") for line in out.splitlines() if line and not line.startswith("#")]
    return [(int(r[2]), r[5].strip()) for r in rows]


@dataclass(frozen=True)
class Recovered:
    app: Vigil
    rec_id: str
    reference_id: str
    cut: Path
    intact: Path
    expected_frames: int
    frames: int  # as the custody event says
    packets: int  # in the stored recovered stream
    stream: Path  # the stored recovered stream


@pytest.fixture(scope="module")
def recovered(ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recovered]:
    base = tmp_path_factory.mktemp("recovery")
    reference = _record(ffmpeg, base / "BC0042_0001.mp4", "testsrc", 8)
    intact = _record(ffmpeg, base / "intact.mp4", "testsrc2", 20)
    data = intact.read_bytes()
    cut_at = int(len(data) * CUT_AT)
    cut = base / "BC0042_0002.mp4"
    cut.write_bytes(data[:cut_at])
    app = build_app(Settings(data_dir=base / "vigil"))
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    reference_id = ingest_and_process(app, reference, start=start)
    rec_id = ingest_and_process(app, cut, start=start.replace(hour=10))
    rec = app.catalog.recording(rec_id)
    assert (rec.status, rec.segment_count) == ("unreadable", None)
    assert rec.damage is not None and "upload-" not in rec.damage
    done = recover(app, rec_id, like=None, actor="test", name=cut.name)
    app.run_pipeline()
    stored = object_path(app, "derived", done.detail.key)
    yield Recovered(
        app, rec_id, reference_id, cut, intact, _frames_before(intact, cut_at),
        done.detail.frames, _packets(ffmpeg, stored), stored,
    )  # fmt: skip
    app.stop()


def test_at_least_95_percent_of_the_frames_in_the_cut_part_are_recovered(
    recovered: Recovered,
) -> None:
    ratio = recovered.frames / recovered.expected_frames
    print(f"recovered {recovered.frames} of {recovered.expected_frames} frames ({ratio:.1%})")
    assert ratio >= 0.95
    assert recovered.frames <= recovered.expected_frames  # nothing made up
    assert recovered.packets == recovered.frames


def test_the_recovered_pictures_are_the_originals_in_order(
    recovered: Recovered, ffmpeg: str
) -> None:
    """Decoded, the recovered stream shows the intact recording's pictures, in their order and
    with rising time stamps (the last few, whose B-frames were cut off, aside)."""
    ours = _pictures(ffmpeg, recovered.stream)
    theirs = _pictures(ffmpeg, recovered.intact)
    assert len(ours) == recovered.frames
    assert [h for _, h in ours[:-3]] == [h for _, h in theirs[: len(ours) - 3]]
    times = [t for t, _ in ours]
    assert times == sorted(set(times))


def test_the_original_stays_byte_exact_and_the_custody_event_links_the_hashes(
    recovered: Recovered,
) -> None:
    app = recovered.app
    rec = app.catalog.recording(recovered.rec_id)
    original = object_path(app, "originals", rec.original_key).read_bytes()
    assert original == recovered.cut.read_bytes()
    events = [e for e in app.catalog.events(recording_ids=[rec.id]) if e.action == RECOVERED]
    assert len(events) == 1 and events[0].detail is not None
    detail = RecoveredDetail.model_validate_json(events[0].detail)
    assert detail.original_sha256 == hashlib.sha256(original).hexdigest() == rec.sha256
    stream = object_path(app, "derived", detail.key).read_bytes()
    assert (detail.sha256, detail.size) == (hashlib.sha256(stream).hexdigest(), len(stream))
    reference = app.catalog.recording(recovered.reference_id)
    assert (detail.reference_recording, detail.reference_sha256) == (reference.id, reference.sha256)
    assert any(n.startswith("soun mp4a") for n in detail.not_recovered)
    assert events[0].reason is not None and "audio not recovered" in events[0].reason


def test_the_recovered_stream_is_segmented_hashed_and_verifies_clean(recovered: Recovered) -> None:
    app = recovered.app
    rec = app.catalog.recording(recovered.rec_id)
    assert rec.status == "complete" and rec.segment_count
    segments = app.catalog.segments(rec.id)
    assert all(s.phash is not None for s in segments)
    assert segments[0].chain and rec.anchor == rec.sha256  # chained from the original's hash
    result = app.verifier.verify_recording(rec.id, actor="test")
    assert result.ok, result.problems


def test_the_timeline_marks_it_recovered(recovered: Recovered) -> None:
    app = recovered.app
    app.cases.link(CASE, recovered.rec_id, from_s=None, to_s=None, reason="cut short", actor="o")
    timeline = case_timeline(app.catalog, CASE, tolerance_frames=1.0, device_tolerance_s=2.0)
    view = next(v for v in timeline.recordings if v.recording.id == recovered.rec_id)
    assert view.recovery is not None
    assert view.recovery.startswith("recovered: video only, audio not recovered")


def test_vigil_verify_checks_the_link_of_the_recovered_stream(
    recovered: Recovered, tmp_path: Path
) -> None:
    app = recovered.app
    if not app.catalog.active_links(recovered.rec_id):
        app.cases.link(CASE, recovered.rec_id, from_s=None, to_s=None, reason="cut", actor="o")
    package = export_case(
        app.catalog, app.store, app.ledger, CASE, tmp_path / "export", actor="reviewer",
        reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    report = verify_package(package, ffmpeg=app.tools.ffmpeg)
    link = [f for f in report.segments if f.index is None and f.recording == recovered.rec_id]
    assert [f.kind for f in link] == [Verdict.INTACT], link
    assert report.clean, (report.log_problems, report.manifest_problems, report.malformed)
    manifest = json.loads((package / "manifest.json").read_text())
    entry = next(r for r in manifest["recordings"] if r["id"] == recovered.rec_id)
    assert entry["recovered"]["path"] == f"{recovered.rec_id}/recovered.mp4"
    # the recovered stream changed: the link no longer holds
    stream = package / recovered.rec_id / "recovered.mp4"
    stream.write_bytes(stream.read_bytes()[:-10] + b"0123456789")
    broken = verify_package(package, ffmpeg=app.tools.ffmpeg)
    kinds = [f.kind for f in broken.segments if f.index is None]
    assert kinds == [Verdict.BYTES_ALTERED] and not broken.clean


def test_recovery_without_a_reference_says_why_naming_the_file_as_given(
    ffmpeg: str, tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    intact = _record(ffmpeg, tmp_path / "whole.mp4", "testsrc2", 6)
    data = intact.read_bytes()
    (clips / "cut.mp4").write_bytes(data[: int(len(data) * CUT_AT)])
    env = {**os.environ, "VIGIL_DATA_DIR": str(tmp_path / "vigil")}
    done = subprocess.run(
        [*VIGIL, "-q", "recover", "clips/cut.mp4", "--device", "BC-0042"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: clips/cut.mp4: no earlier recording of device BC-0042")
    assert "--like" in lines[-1] and "Traceback" not in done.stderr
    assert str(tmp_path) not in lines[-1]
    missing = subprocess.run(
        [*VIGIL, "-q", "recover", "clips/none.mp4"], cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert missing.stderr.strip().splitlines()[-1] == "error: clips/none.mp4: no such file"
    # a reference made with other settings (another size, no B-frames, CAVLC) does not fit
    other = tmp_path / "other.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
         "testsrc=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", str(other)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    ingested = subprocess.run(
        [*VIGIL, "-q", "ingest", str(other), "--device", "BC-0042"], cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    reference = ingested.split()[1]
    wrong = subprocess.run(
        [*VIGIL, "-q", "recover", "clips/cut.mp4", "--like", reference], cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert wrong.returncode == 2, wrong.stderr
    last = wrong.stderr.strip().splitlines()[-1]
    assert last.startswith("error: clips/cut.mp4: ") and reference in last, last
    assert "Traceback" not in wrong.stderr


def test_a_matroska_cut_off_without_its_index_is_read_as_it_is(ffmpeg: str, tmp_path: Path) -> None:
    """As OBS leaves a recording when it crashes: no Cues, no duration, the last cluster cut
    off. ffmpeg reads it as it is: it is ingested whole, and recovery says there is nothing
    to recover."""
    whole = tmp_path / "obs.mkv"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=12",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
         *DEVICE, "-f", "matroska", "-live", "1", str(whole)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    data = whole.read_bytes()
    cut = tmp_path / "obs-crashed.mkv"
    cut.write_bytes(data[: int(len(data) * CUT_AT)])
    app = build_app(Settings(data_dir=tmp_path / "vigil"))
    try:
        rec_id = ingest_and_process(app, cut)
        rec = app.catalog.recording(rec_id)
        assert rec.status == "complete" and rec.segment_count
        assert rec.duration_s is not None and 2.0 < rec.duration_s < 8.0
        assert app.verifier.verify_recording(rec_id, actor="test").ok
        with pytest.raises(RecoveryImpossible, match=r"^obs-crashed\.mkv: ffmpeg reads it"):
            recover(app, rec_id, like=None, actor="test", name=cut.name)
    finally:
        app.stop()


HEVC_DEVICE = [
    *("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-pix_fmt", "yuv420p"),
    *("-x265-params", "keyint=30:min-keyint=30:log-level=error"),
    *("-c:a", "aac", "-b:a", "96k", "-ar", "48000"),
]


def test_an_hevc_recording_cut_short_is_recovered_too(ffmpeg: str, tmp_path: Path) -> None:
    def record(out: Path, source: str, seconds: int) -> Path:
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y",
             "-f", "lavfi", "-i", f"{source}=size=640x360:rate=30:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
             *HEVC_DEVICE, str(out)],
            check=True, timeout=300, capture_output=True,
        )  # fmt: skip
        return out

    reference = record(tmp_path / "ref.mp4", "testsrc", 3)
    intact = record(tmp_path / "intact.mp4", "testsrc2", 10)
    data = intact.read_bytes()
    cut_at = int(len(data) * CUT_AT)
    cut = tmp_path / "hevc-cut.mp4"
    cut.write_bytes(data[:cut_at])
    app = build_app(Settings(data_dir=tmp_path / "vigil"))
    try:
        start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
        ref_id = ingest_and_process(app, reference, start=start)
        rec_id = ingest_and_process(app, cut, start=start.replace(hour=10))
        done = recover(app, rec_id, like=ref_id, actor="test", name=cut.name)
        app.run_pipeline()
        expected = _frames_before(intact, cut_at)
        print(f"HEVC: recovered {done.detail.frames} of {expected} frames")
        assert done.detail.codec == "hevc"
        assert 0.95 * expected <= done.detail.frames <= expected
        assert app.catalog.recording(rec_id).status == "complete"
        assert app.verifier.verify_recording(rec_id, actor="test").ok
    finally:
        app.stop()


def test_with_recovery_at_ingest_the_cut_recording_is_recovered_as_it_comes_in(
    ffmpeg: str, tmp_path: Path
) -> None:
    reference = _record(ffmpeg, tmp_path / "BC0042_0001.mp4", "testsrc", 3)
    intact = _record(ffmpeg, tmp_path / "intact.mp4", "testsrc2", 8)
    data = intact.read_bytes()
    cut = tmp_path / "BC0042_0002.mp4"
    cut.write_bytes(data[: int(len(data) * CUT_AT)])
    app = build_app(Settings(data_dir=tmp_path / "vigil", recover_at_ingest=True))
    try:
        start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
        ref_id = ingest_and_process(app, reference, start=start)
        rec_id = ingest_and_process(app, cut, start=start.replace(hour=10))
        rec = app.catalog.recording(rec_id)
        assert rec.status == "complete" and rec.segment_count
        events = [e for e in app.catalog.events(recording_ids=[rec_id]) if e.action == RECOVERED]
        assert len(events) == 1 and events[0].actor == "vigil" and events[0].detail
        assert RecoveredDetail.model_validate_json(events[0].detail).reference_recording == ref_id
        assert app.verifier.verify_recording(rec_id, actor="test").ok
    finally:
        app.stop()
