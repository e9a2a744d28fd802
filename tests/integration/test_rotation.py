"""Issue 17: a phone recording with a display matrix matches itself, end to end.

Stream-copied segments lose the original's display matrix, so their pictures are stored turned.
Every hash is of upright pictures: a stored segment is turned by its recording's catalogued
``rotation`` (signed in ``segment.hashed``, so ``vigil-verify`` turns it alike), a copy by
ffmpeg's autorotation. The review proxy of a turned recording is made upright.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vigil_verify.frames import hamming
from vigil_verify.report import verify_package
from vigil_verify.sampling import display_rotation

from integrity.export import export_case
from integrity.frames import copy_hashes
from integrity.match import match_copy, references
from tests import tamper
from tests.helpers import ingest_and_process
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

CASE = "CASE-17"


@dataclass(frozen=True)
class Phone:
    app: Vigil
    rec_id: str
    source: Path
    tag: int  # the MOV "rotate" tag written: the clockwise turn a player applies
    base: Path


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def phone_clip(ffmpeg: str, folder: Path, tag: int) -> Path:
    """testsrc2 320x240 H.264 + AAC in MOV, remuxed with a display matrix from ``rotate``."""
    plain = folder / "plain.mov"
    _run([
        ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7",
        "-f", "lavfi", "-i", "sine=frequency=440:d=7", "-c:v", "libx264", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(plain),
    ])  # fmt: skip
    phone = folder / f"phone-{tag}.mov"
    _run([
        ffmpeg, "-v", "error", "-i", str(plain), "-map", "0", "-c", "copy",
        "-metadata:s:v:0", f"rotate={tag}", "-y", str(phone),
    ])  # fmt: skip
    return phone


def dimensions(ffmpeg: str, path: Path) -> tuple[int, int]:
    """Width and height of the stored pictures of ``path``'s first video stream."""
    probe = shutil.which("ffprobe") or str(Path(ffmpeg).with_name("ffprobe"))
    done = subprocess.run(
        [probe, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    width, height = done.stdout.strip().splitlines()[0].split(",")[:2]
    return int(width), int(height)


@pytest.fixture(scope="module", params=[90, 180, 270, 0])
def phone(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ffmpeg: str
) -> Iterator[Phone]:
    tag = int(request.param)
    base = tmp_path_factory.mktemp(f"rotation-{tag}")
    source = phone_clip(ffmpeg, base, tag)
    app = build_app(Settings(data_dir=base / "vigil", segment_seconds=3.0))
    try:
        rec_id = ingest_and_process(app, source)
        yield Phone(app, rec_id, source, tag, base)
    finally:
        app.stop()


def _upright(path: Path) -> int:
    """The clockwise turn to upright that ffprobe's display matrix says (ffmpeg 5.1's MOV
    muxer turns a ``rotate=90`` tag into a matrix that shows as +90, i.e. 270 clockwise)."""
    probe = shutil.which("ffprobe") or "ffprobe"
    done = subprocess.run(
        [probe, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream_side_data=rotation", "-of", "compact=p=0:nk=1", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = [line for line in done.stdout.split() if line.strip()]
    return display_rotation(float(said[0]) if said else None)


def test_catalogue_and_signed_log_say_the_rotation(phone: Phone) -> None:
    rec = phone.app.catalog.recording(phone.rec_id)
    assert rec.rotation == _upright(phone.source)
    assert (rec.rotation == 0) == (phone.tag == 0)
    events = phone.app.catalog.events(recording_ids=[phone.rec_id])
    hashed = [json.loads(e.detail or "{}") for e in events if e.action == "segment.hashed"]
    assert hashed
    for detail in hashed:
        assert (detail.get("rotation") or 0) == _upright(phone.source)


def test_the_same_file_matches_itself(phone: Phone) -> None:
    report = match_copy(
        phone.app.catalog, phone.app.tools, phone.rec_id, phone.source, actor="test",
        ledger=phone.app.ledger,
    )  # fmt: skip
    assert len(report.segments) >= 2
    assert {v.status for v in report.segments} == {"same"}, report.segments
    assert report.clean


def test_a_benign_reencode_matches(phone: Phone, ffmpeg: str) -> None:
    copy = phone.base / "reencoded.mp4"
    _run([
        ffmpeg, "-v", "error", "-i", str(phone.source), "-c:v", "libx264", "-crf", "23",
        "-c:a", "aac", "-y", str(copy),
    ])  # fmt: skip
    report = match_copy(phone.app.catalog, phone.app.tools, phone.rec_id, copy, actor="test")
    assert {v.status for v in report.segments} == {"same"}, report.segments


def test_hashes_are_of_upright_pictures(phone: Phone) -> None:
    """The stored segments' signed hashes agree frame by frame with the original decoded
    with ffmpeg's autorotation."""
    refs = references(phone.app.catalog, phone.rec_id)
    original = copy_hashes(phone.app.tools, phone.source, rate=None)
    first = refs[0].frames
    n = min(len(first), 10)
    distances = hamming(first.hashes[:n], original.hashes[:n])
    assert int(distances.max()) <= 16, distances


def test_verification_and_export_are_clean(phone: Phone, ffmpeg: str) -> None:
    app = phone.app
    assert app.verifier.verify_recording(phone.rec_id, actor="test").ok
    app.cases.link(CASE, phone.rec_id, from_s=None, to_s=None, reason="rotation", actor="officer")
    package = export_case(
        app.catalog, app.store, app.ledger, CASE, phone.base / "export", actor="reviewer",
        reason="issue 17", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    report = verify_package(package, ffmpeg=ffmpeg)
    assert report.clean, report.log_problems + report.manifest_problems
    assert {f.kind for f in report.segments} == {"intact"}
    # A re-encoded stored segment (pixels still turned, no matrix) is decoded by vigil-verify
    # turned by the signed rotation: the same pictures, not an edit.
    segment = sorted((package / phone.rec_id / "segments").glob("*.ts"))[0]
    out = phone.base / "reencoded-segment.ts"
    tamper.run(tamper.reencode_command(ffmpeg, segment, out, crf=28))
    shutil.move(out, segment)
    kinds = {f.index: f.kind for f in verify_package(package, ffmpeg=ffmpeg).segments}
    assert kinds[0] == "re-encoded", kinds


def test_the_review_proxy_is_upright(phone: Phone, ffmpeg: str) -> None:
    app = phone.app
    rec = app.catalog.recording(phone.rec_id)
    if phone.tag == 0:
        assert rec.playback == "copy"  # stored upright: its segments play as they are
        return
    assert rec.playback == "proxy"
    proxy = app.catalog.proxy_segments(rec.id)
    assert proxy
    with app.store.local_path("derived", proxy[0].key) as path:
        size = dimensions(ffmpeg, path)
        left = _upright(path)
        hashed = copy_hashes(app.tools, path, rate=None)
    # upright: a 320x240 source turned a quarter is a 240x320 proxy, with no matrix left
    assert size == ((240, 320) if rec.rotation in (90, 270) else (320, 240))
    assert left == 0
    original = copy_hashes(app.tools, phone.source, rate=None)
    assert int(hamming(hashed.hashes[:5], original.hashes[:5]).max()) <= 24
