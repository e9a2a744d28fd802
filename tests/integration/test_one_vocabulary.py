"""Issue 15, one vocabulary: the same tampering gets the same word from the server's ``vigil
verify`` (the real store) and from ``vigil-verify`` (an export package), and both ``--json``
reports share one schema (``vigil_verify.verdicts``).

One recording (the standard 32 s clip: segments 0-10, 10-20, 20-30, 30-32 s) is ingested,
processed, linked and exported once; each test tampers with the stored segment and with the
package's copy of it the same way, and puts the stored bytes back afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vigil_verify.report import PackageReport, verify_package
from vigil_verify.verdicts import REPORT_KEYS, Finding, Verdict

from integrity.export import export_case
from tests import tamper
from tests.helpers import VIGIL, copy_data, object_path
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow, pytest.mark.copies_kept]

CASE = "CASE-15"


@dataclass(frozen=True)
class World:
    app: Vigil
    data: Path
    recording: str
    package: Path  # exported before any tampering


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, standard_recorded: tuple[Path, str]
) -> Iterator[World]:
    base = tmp_path_factory.mktemp("one-vocabulary")
    root, rec = standard_recorded
    app = build_app(Settings(data_dir=copy_data(root, base / "vigil")))
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident 15", actor="officer")
    package = export_case(
        app.catalog, app.store, app.ledger, CASE, base / "export", actor="reviewer",
        reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    yield World(app, base / "vigil", rec, package)
    app.stop()


def stored_segment(world: World, index: int) -> Path:
    key = world.app.catalog.segments(world.recording)[index].key
    path = object_path(world.app, "derived", key)
    path.chmod(0o644)
    return path


def packaged_segment(package: Path, recording: str, index: int) -> Path:
    (path,) = (package / recording / "segments").glob(f"seg-{index:05d}-*.ts")
    return path


@pytest.fixture
def tampered(
    world: World, tmp_path: Path
) -> Iterator[Callable[[int, Callable[[Path], None]], Path]]:
    """``tamper(index, how)``: apply ``how`` to stored segment ``index`` and to the same segment
    in a copy of the package; the copy's path. The stored bytes are put back afterwards."""
    kept: list[tuple[Path, bytes]] = []
    package = tmp_path / "package"
    shutil.copytree(world.package, package)

    def tamper_both(index: int, how: Callable[[Path], None]) -> Path:
        stored = stored_segment(world, index)
        kept.append((stored, stored.read_bytes()))
        how(stored)
        how(packaged_segment(package, world.recording, index))
        return package

    yield tamper_both
    for path, data in kept:
        path.write_bytes(data)


def vigil(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_DATA_DIR": str(world.data), "VIGIL_ACTOR": "auditor"}
    return subprocess.run(
        [*VIGIL, "-q", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def server_kinds(world: World) -> dict[int | None, str]:
    result = world.app.verifier.verify_recording(world.recording, actor="auditor")
    return {f.index: f.kind for f in result.segments}


def package_kinds(package: Path, ffmpeg: str) -> tuple[dict[int | None, str], PackageReport]:
    report = verify_package(package, ffmpeg=ffmpeg)
    return {f.index: f.kind for f in report.segments}, report


def test_a_byte_flipped_in_place_is_bytes_altered_on_both_sides(
    world: World, tampered: Callable[[int, Callable[[Path], None]], Path], ffmpeg: str
) -> None:
    package = tampered(1, lambda p: tamper.flip_byte(p, p.stat().st_size // 2))
    expected = {0: "intact", 1: "bytes altered", 2: "intact", 3: "intact"}
    assert server_kinds(world) == expected
    offline, report = package_kinds(package, ffmpeg)
    assert offline == expected
    assert not report.clean
    # The command line says the same, in words and in --json.
    text = vigil(world, "verify", world.recording)
    assert text.returncode == 1
    assert "segment 1: bytes altered: sha256 differs at the signed size" in text.stdout
    done = vigil(world, "verify", world.recording, "--json")
    assert done.returncode == 1, done.stderr
    segments = [Finding.from_json(s) for s in json.loads(done.stdout)["segments"]]
    assert {f.index: f.kind for f in segments} == expected
    assert segments[1].kind is Verdict.BYTES_ALTERED and segments[1].file is not None


def test_a_re_encoded_segment_is_re_encoded_on_both_sides(
    world: World,
    tampered: Callable[[int, Callable[[Path], None]], Path],
    ffmpeg: str,
    tmp_path: Path,
) -> None:
    def reencode(path: Path) -> None:
        out = tmp_path / "reencoded.ts"
        tamper.run(tamper.reencode_command(ffmpeg, path, out, crf=28))
        assert out.stat().st_size != path.stat().st_size
        shutil.move(out, path)

    package = tampered(2, reencode)
    expected = {0: "intact", 1: "intact", 2: "re-encoded", 3: "intact"}
    assert server_kinds(world) == expected
    offline, _ = package_kinds(package, ffmpeg)
    assert offline == expected


def test_a_muted_warning_is_an_audio_edit_on_both_sides(
    world: World,
    tampered: Callable[[int, Callable[[Path], None]], Path],
    ffmpeg: str,
    tmp_path: Path,
) -> None:
    def mute(path: Path) -> None:  # the pictures copied, 1.5 s of sound muted 3 s in
        out = tmp_path / f"muted{path.suffix}"
        tamper.run([
            ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0",
            "-c:v", "copy", "-c:a", "aac", "-af", "volume=enable='between(t,3,4.5)':volume=0",
            str(out),
        ])  # fmt: skip
        shutil.move(out, path)

    package = tampered(1, mute)
    expected = {0: "intact", 1: "edited", 2: "intact", 3: "intact"}
    server = world.app.verifier.verify_recording(world.recording, actor="auditor").segments
    offline = verify_package(package, ffmpeg=ffmpeg).segments
    begins = next(s.start_s for s in world.app.catalog.segments(world.recording) if s.index == 1)
    for found in (server, offline):
        assert {f.index: f.kind for f in found} == expected
        (edited,) = [f for f in found if f.index == 1]
        assert edited.audio == "edited" and "audio" in edited.detail, edited
        ((start, end),) = edited.audio_ranges
        assert start - begins == pytest.approx(3.0, abs=0.5), edited
        assert end - begins == pytest.approx(4.5, abs=0.5), edited


def test_vigil_verify_json_has_the_schema_of_vigil_verify_json(world: World, ffmpeg: str) -> None:
    server = vigil(world, "verify", CASE, "--json")
    assert server.returncode == 0, server.stdout + server.stderr
    ours = json.loads(server.stdout)
    offline = subprocess.run(
        [str(Path(VIGIL[0]).with_name("vigil-verify")), str(world.package), "--json",
         "--ffmpeg", ffmpeg],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    theirs = json.loads(offline.stdout)
    assert list(ours) == list(theirs) == [*REPORT_KEYS, "exit_status"]
    assert list(ours["ledger"]) == list(theirs["ledger"])
    assert ours["ledger"]["key_fingerprint"] == theirs["ledger"]["key_fingerprint"]
    assert (ours["package"], ours["case"], ours["clean"], ours["exit_status"]) == (
        None, CASE, True, 0,
    )  # fmt: skip
    for report in (ours, theirs):
        segments = [Finding.from_json(s) for s in report["segments"]]
        assert [(f.index, f.kind) for f in segments] == [(i, Verdict.INTACT) for i in range(4)]
        (original,) = [Finding.from_json(o) for o in report["originals"]]
        assert (original.recording, original.kind) == (world.recording, Verdict.INTACT)
