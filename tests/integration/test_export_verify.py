"""Issue 4: an exported package is checked offline by ``vigil-verify``; every tamper case is
reported with the right kind at the right segment, and an untouched package verifies clean.

One real recording (the standard 32 s 720p clip: segments 0-10, 10-20, 20-30, 30-32 s) is
ingested, processed, linked and exported once; each test tampers with its own copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vigil_verify.cli import main as verify_main
from vigil_verify.report import PackageReport, verify_package
from vigil_verify.verdicts import Finding

from integrity.export import export_case
from tests import tamper
from tests.helpers import copy_data, ingest_and_process
from tests.services.tsa import TsaService
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow, pytest.mark.copies_kept]

CASE = "CASE-4"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Exported:
    app: Vigil
    package: Path
    recording: str
    segments: dict[int, Path]  # index -> the segment file in the package


def _export(app: Vigil, folder: Path, tsa_certs: bytes | None = None) -> Path:
    return export_case(
        app.catalog,
        app.store,
        app.ledger,
        CASE,
        folder,
        actor="reviewer",
        reason="disclosure to the defence",
        tolerance_frames=1.0,
        device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(),
        segment_files=app.segment_files,
        tsa_certs=tsa_certs,
    )


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, standard_recorded: tuple[Path, str]
) -> Iterator[Exported]:
    base = tmp_path_factory.mktemp("export-verify")
    root, rec = standard_recorded
    app = build_app(Settings(data_dir=copy_data(root, base / "vigil")))
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident 4711", actor="officer")
    package = _export(app, base / "export")
    segments = {
        int(p.name.split("-")[1]): p for p in sorted((package / rec / "segments").glob("*.ts"))
    }
    yield Exported(app, package, rec, segments)
    app.stop()


@pytest.fixture
def copy(exported: Exported, tmp_path: Path) -> Exported:
    """A private copy of the package to tamper with."""
    target = tmp_path / "package"
    shutil.copytree(exported.package, target)
    segments = {i: target / p.relative_to(exported.package) for i, p in exported.segments.items()}
    return Exported(exported.app, target, exported.recording, segments)


def check(package: Path, ffmpeg: str, **kwargs: object) -> PackageReport:
    return verify_package(package, ffmpeg=ffmpeg, **kwargs)  # type: ignore[arg-type]


def kinds(report: PackageReport) -> dict[int | None, str]:
    return {f.index: f.kind for f in report.segments}


def only(report: PackageReport, index: int | None) -> Finding:
    found = [f for f in report.segments if f.index == index]
    assert len(found) == 1, report.segments
    return found[0]


def test_untouched_package_verifies_clean(
    exported: Exported, ffmpeg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = check(exported.package, ffmpeg)
    assert report.clean, report.log_problems + report.manifest_problems
    assert kinds(report) == {0: "intact", 1: "intact", 2: "intact", 3: "intact"}
    assert [o.kind for o in report.originals] == ["intact"]
    head = report.ledger.head
    assert head is not None
    assert report.ledger.events_proved == report.ledger.events_total > 4 * 2
    assert report.ledger.key_fingerprint == exported.app.ledger.key.fingerprint
    # The package proves its own export event (recorded, with its reason, before copying).
    events = [
        json.loads(json.loads(line)["event"])
        for line in (exported.package / "ledger" / "events.jsonl").read_text().splitlines()
    ]
    assert any(
        e["action"] == "export" and e["reason"] == "disclosure to the defence" for e in events
    )
    assert verify_main([str(exported.package), "--ffmpeg", ffmpeg]) == 0
    assert "RESULT: CLEAN (4 intact)" in capsys.readouterr().out


def test_byte_flip_is_bytes_altered_in_that_segment(copy: Exported, ffmpeg: str) -> None:
    tamper.flip_byte(copy.segments[1], copy.segments[1].stat().st_size // 2)
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "bytes altered", 2: "intact", 3: "intact"}
    assert "in place" in only(report, 1).detail
    assert not report.clean


def test_deleted_segment_is_missing(copy: Exported, ffmpeg: str) -> None:
    copy.segments[2].unlink()
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "intact", 2: "missing", 3: "intact"}


def test_swapped_segments_are_reordered(copy: Exported, ffmpeg: str) -> None:
    one, two = copy.segments[1], copy.segments[2]
    held = one.read_bytes()
    one.write_bytes(two.read_bytes())
    two.write_bytes(held)
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "reordered", 2: "reordered", 3: "intact"}
    assert "segment 2" in only(report, 1).detail
    assert "segment 1" in only(report, 2).detail


def test_segment_from_another_recording_is_foreign(
    copy: Exported, ffmpeg: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.ts"
    tamper.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                "testsrc2=size=1280x720:rate=30:duration=4", "-c:v", "libx264", "-preset",
                "veryfast", str(other)])  # fmt: skip
    inserted = copy.segments[1].with_name("seg-00001-000000000000.ts")
    shutil.copyfile(other, inserted)
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "intact", 2: "intact", 3: "intact", None: "foreign"}
    assert only(report, None).file.endswith("seg-00001-000000000000.ts")
    assert "not in the chain" in only(report, None).detail


def test_reencoded_segment_is_same_content(copy: Exported, ffmpeg: str, tmp_path: Path) -> None:
    out = tmp_path / "reencoded.ts"
    tamper.run(tamper.reencode_command(ffmpeg, copy.segments[1], out, crf=28))
    shutil.move(out, copy.segments[1])
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "re-encoded", 2: "intact", 3: "intact"}
    assert only(report, 1).audio == "same"  # its sound heard against the signed .vgat


def _mute(ffmpeg: str, src: Path, out: Path, *, start_s: float, seconds: float) -> None:
    """The pictures copied, the sound re-encoded with ``seconds`` muted from ``start_s`` of the
    file's own time (as a muted warning would be)."""
    tamper.run([
        ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(src), "-map", "0",
        "-c:v", "copy", "-c:a", "aac", "-b:a", "128k",
        "-af", f"volume=enable='between(t,{start_s},{start_s + seconds})':volume=0",
        str(out),
    ])  # fmt: skip


def test_muted_sound_with_the_pictures_untouched_is_an_audio_edit(
    copy: Exported, ffmpeg: str, tmp_path: Path
) -> None:
    out = tmp_path / "muted.ts"
    _mute(ffmpeg, copy.segments[2], out, start_s=4.0, seconds=2.0)  # recording time 24-26 s
    shutil.move(out, copy.segments[2])
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "intact", 2: "edited", 3: "intact"}
    found = only(report, 2)
    assert found.audio == "edited", found
    assert len(found.audio_ranges) == 1, found
    ((start, end),) = found.audio_ranges
    assert start == pytest.approx(24.0, abs=0.5) and end == pytest.approx(26.0, abs=0.5), found


def test_without_its_signed_fingerprints_the_sound_is_said_not_compared(
    copy: Exported, ffmpeg: str, tmp_path: Path
) -> None:
    out = tmp_path / "muted.ts"
    _mute(ffmpeg, copy.segments[2], out, start_s=4.0, seconds=2.0)
    shutil.move(out, copy.segments[2])
    for stripped in copy.segments[2].parent.glob("*.vgat"):
        stripped.unlink()
    found = only(check(copy.package, ffmpeg), 2)
    assert found.kind != "intact" and found.audio is None
    assert "sound not compared" in found.detail


def test_overlay_is_an_edit_located_in_time(copy: Exported, ffmpeg: str, tmp_path: Path) -> None:
    out = tmp_path / "overlay.ts"
    # 2 s black box from 4 s into segment 2 (recording time 24-26 s).
    tamper.run(
        tamper.overlay_command(ffmpeg, copy.segments[2], out, start_s=4.0, duration_s=2.0, area=0.3)
    )
    shutil.move(out, copy.segments[2])
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "intact", 2: "edited", 3: "intact"}
    found = only(report, 2)
    ((start, end),) = found.ranges  # recording seconds, in the detail line too
    assert 23.0 <= start <= 24.5 and 25.5 <= end <= 27.0, found
    assert f"{start:.1f}-{end:.1f} s" in found.detail


def test_dropped_frame_run_is_an_edit(copy: Exported, ffmpeg: str, tmp_path: Path) -> None:
    out = tmp_path / "cut.ts"
    tamper.run(tamper.cut_command(ffmpeg, copy.segments[1], out, at_s=4.0, duration_s=2.0))
    shutil.move(out, copy.segments[1])
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "intact", 1: "edited", 2: "intact", 3: "intact"}


def test_truncated_segment(copy: Exported, ffmpeg: str, tmp_path: Path) -> None:
    tamper.truncate_file(copy.segments[0], tmp_path / "half.ts", 0.5)
    shutil.move(tmp_path / "half.ts", copy.segments[0])
    report = check(copy.package, ffmpeg)
    assert kinds(report) == {0: "truncated", 1: "intact", 2: "intact", 3: "intact"}


def test_altered_manifest_entry_is_caught(copy: Exported, ffmpeg: str) -> None:
    manifest_path = copy.package / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["recordings"][0]["segments"][2]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    report = check(copy.package, ffmpeg)
    assert any(
        "segment 2 sha256 differs from the signed log" in p for p in report.manifest_problems
    )
    assert not report.clean


def test_altered_event_fails_its_inclusion_proof(copy: Exported, ffmpeg: str) -> None:
    path = copy.package / "ledger" / "events.jsonl"
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        entry = json.loads(line)
        event = json.loads(entry["event"])
        if event["action"] == "segment.stored" and event["detail"]["index"] == 3:
            event["detail"]["sha256"] = "f" * 64  # "this segment was always something else"
            entry["event"] = json.dumps(event, sort_keys=True, separators=(",", ":"))
            lines[n] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    report = check(copy.package, ffmpeg)
    assert any(
        "segment.stored" in p and "fails its inclusion proof" in p for p in report.log_problems
    )
    assert not report.clean


def test_forged_tree_head_fails_its_signature(copy: Exported, ffmpeg: str) -> None:
    path = copy.package / "ledger" / "checkpoint.json"
    document = json.loads(path.read_text())
    origin, size, rest = document["note"].split("\n", 2)
    document["note"] = f"{origin}\n{int(size) - 1}\n{rest}"
    path.write_text(json.dumps(document))
    report = check(copy.package, ffmpeg)
    assert any("tree head's signature fails" in p for p in report.log_problems)


def test_pinned_key_must_match(copy: Exported, ffmpeg: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    stranger = tmp_path / "other.pem"
    stranger.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    report = check(copy.package, ffmpeg, pinned_key=stranger)
    assert any("not the pinned key" in p for p in report.log_problems)
    assert any("signature fails" in p for p in report.log_problems)


def test_removed_event_and_rebuilt_tree_fail_consistency(
    app_factory: Callable[..., Vigil],
    make_clip: Callable[[SampleSpec], Path],
    ffmpeg: str,
    tmp_path: Path,
) -> None:
    """A rogue administrator deletes a custody event, renumbers the log and re-signs with the
    server's own key: the earlier signed head (kept in the WORM store) is not consistent."""
    app = app_factory()
    clip = make_clip(SampleSpec(duration_s=6.0, width=640, height=360, seed=11))
    rec = ingest_and_process(app, clip)
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="for review", actor="officer")
    first = app.ledger.checkpoint()
    saved = tmp_path / "saved-head.txt"
    saved.write_text(first.note)
    assert _export(app, tmp_path / "before") is not None

    # The rewrite: drop the append-only triggers, remove the case.link event and its leaf,
    # renumber every later leaf, forget the earlier heads in the catalogue, and sign a fresh head
    # with the server's key. The WORM store's copies of the earlier heads cannot be removed.
    db = sqlite3.connect(app.settings.data_dir / "catalog.sqlite3")
    for trigger in (
        "custody_events_no_DELETE",
        "ledger_leaves_no_DELETE",
        "ledger_leaves_no_UPDATE",
        "tree_heads_no_DELETE",
    ):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DELETE FROM tree_heads")  # the catalogue's own record of the earlier heads
    victim = db.execute(
        "SELECT id FROM custody_events WHERE action = 'case.link' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    position = db.execute(
        "SELECT position FROM ledger_leaves WHERE event_id = ?", (victim,)
    ).fetchone()[0]
    db.execute("DELETE FROM ledger_leaves WHERE event_id = ?", (victim,))
    db.execute("DELETE FROM custody_events WHERE id = ?", (victim,))
    db.execute("UPDATE ledger_leaves SET position = -position - 1 WHERE position > ?", (position,))
    db.execute("UPDATE ledger_leaves SET position = -position - 2 WHERE position < 0")
    db.commit()
    db.close()

    rewritten = build_app(app.settings)  # a fresh process: loads the rewritten log
    try:
        rewritten.ledger.checkpoint(force=True)
        audit = rewritten.ledger.audit(rewritten.worm_checkpoints())
        assert any(p.kind == "head-mismatch" for p in audit.problems), audit
        package = _export(rewritten, tmp_path / "after")
    finally:
        rewritten.stop()
    report = check(package, ffmpeg)
    assert any(p.startswith("log rewritten") for p in report.log_problems), report.log_problems
    # An auditor who kept the earlier head finds the same, from the package alone.
    report = check(package, ffmpeg, trusted_checkpoint=saved)
    assert any("your saved head" in p for p in report.log_problems), report.log_problems


def test_the_verifier_runs_from_a_fresh_venv(
    exported: Exported, ffmpeg: str, tmp_path: Path
) -> None:
    """An auditor's machine: a new virtual environment with only vigil-verify installed (and
    what it pulls from PyPI: cryptography, numpy), nothing of Vigil's server side."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT / "verifier")],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for module in ("catalog", "ingest", "integrity", "workers", "pdqhash", "sqlalchemy"):
        absent = subprocess.run(
            [str(python), "-c", f"import {module}"], capture_output=True, cwd=tmp_path, check=False
        )
        assert absent.returncode != 0, f"{module} is importable in the auditor's venv"
    verifier = venv / "bin" / "vigil-verify"

    def run(package: Path) -> tuple[int, dict[str, object]]:
        done = subprocess.run(
            [str(verifier), str(package), "--ffmpeg", ffmpeg, "--json"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(done.stdout)

    code, report = run(exported.package)
    assert code == 0 and report["clean"] is True
    package = tmp_path / "tampered"
    shutil.copytree(exported.package, package)
    target = package / exported.segments[3].relative_to(exported.package)
    tamper.run(tamper.reencode_command(ffmpeg, target, tmp_path / "r.ts", crf=30))
    shutil.move(tmp_path / "r.ts", target)
    code, report = run(package)
    segments = report["segments"]
    assert isinstance(segments, list)
    assert code == 1
    assert {s["index"]: s["kind"] for s in segments} == {
        0: "intact", 1: "intact", 2: "intact", 3: "re-encoded",
    }  # fmt: skip


@pytest.mark.services
def test_tree_heads_carry_a_trusted_timestamp_from_a_real_tsa(
    app_factory: Callable[..., Vigil],
    make_clip: Callable[[SampleSpec], Path],
    tsa: TsaService,
    ffmpeg: str,
    tmp_path: Path,
) -> None:
    app = app_factory(ledger_tsa_url=tsa.url, ledger_tsa_certs=tsa.files.ca_cert)
    clip = make_clip(SampleSpec(duration_s=4.0, width=320, height=240, seed=12))
    rec = ingest_and_process(app, clip)
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="for review", actor="officer")
    package = _export(app, tmp_path / "export", tsa.ca_cert_pem)
    head = app.ledger.latest_head()
    assert head is not None and head.timestamp_token
    # Independently of our own parser: OpenSSL accepts the stored token for this note.
    token = tmp_path / "token.der"
    token.write_bytes(head.timestamp_token)
    digest = hashlib.sha256(head.note.encode()).hexdigest()
    checked = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", digest, "-token_in", "-in", str(token),
         "-CAfile", str(tsa.files.ca_cert)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    report = check(package, ffmpeg)
    assert report.clean, report.log_problems
    assert report.ledger.timestamp is not None and "timestamp OK" in report.ledger.timestamp
    # A timestamp token that does not belong to this head is caught.
    path = package / "ledger" / "checkpoint.json"
    document = json.loads(path.read_text())
    other = app.ledger.checkpoint(force=True)
    assert other.timestamp_token and other.note != head.note
    document["timestamp_token"] = base64.b64encode(other.timestamp_token).decode()
    path.write_text(json.dumps(document))
    report = check(package, ffmpeg)
    assert any("trusted timestamp fails" in p for p in report.log_problems), report.log_problems


def test_a_windowed_case_exports_its_window_only_and_verifies(
    app_factory: Callable[..., Vigil],
    standard_recorded: tuple[Path, str],
    ffmpeg: str,
    tmp_path: Path,
) -> None:
    """A case that links 12-18 s of a recording discloses the segments of that window, never
    the original; vigil-verify proves it from the signed case link, and still names a whole
    link whose original has gone missing (issue 14: case windows limit exports too)."""
    root, rec = standard_recorded
    copy_data(root, tmp_path / "vigil")  # where app_factory's app lives
    app = app_factory()
    app.cases.link("CASE-WIN", rec, from_s=12.0, to_s=18.0, reason="the stop", actor="officer")
    package = export_case(
        app.catalog, app.store, app.ledger, "CASE-WIN", tmp_path / "export", actor="reviewer",
        reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    assert not list((package / rec).glob("original*"))
    exported = sorted(p.name for p in (package / rec / "segments").glob("*.ts"))
    assert [name.split("-")[1] for name in exported] == ["00001"]  # 10-20 s holds 12-18 s
    report = check(package, ffmpeg)
    assert report.clean, (report.log_problems, report.manifest_problems, report.originals)
    assert [o.kind for o in report.originals] == ["not exported"]
    # The same recording linked whole to another case: its original must be there.
    app.cases.link("CASE-ALL", rec, from_s=None, to_s=None, reason="all of it", actor="officer")
    whole = export_case(
        app.catalog, app.store, app.ledger, "CASE-ALL", tmp_path / "export2", actor="reviewer",
        reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    for original in (whole / rec).glob("original*"):
        original.unlink()
    report = check(whole, ffmpeg)
    assert [o.kind for o in report.originals] == ["missing"]
    assert not report.clean


def test_a_changed_original_is_named_down_to_its_segment_by_its_signed_packets(
    copy: Exported, ffmpeg: str, tmp_path: Path
) -> None:
    """Issue 18: the original's packets per segment are signed, so a byte flipped inside a
    picture of segment 2 (20-30 s) is named there, a cut-off original from where it ends, and
    an honest remux keeps every packet (its bytes are not the signed ones: re-muxed)."""
    original = next((copy.package / copy.recording).glob("original*"))
    pristine = tamper.copy_file(original, tmp_path / "pristine.mp4")
    pos, size = tamper.packet_at(ffmpeg, original, "v:0", 24.0)
    tamper.flip_byte(original, pos + size // 2)
    found = check(copy.package, ffmpeg).originals[0]
    assert found.kind == "bytes altered", found
    assert found.ranges == ((20.0, 30.0),) or found.ranges[0][0] == pytest.approx(20.0, abs=0.1)
    assert len(found.ranges) == 1 and "segment(s) 2 (changed: stream 0)" in found.detail
    # an audio frame changed in segment 1
    tamper.copy_file(pristine, original)
    pos, size = tamper.packet_at(ffmpeg, original, "a:0", 15.0)
    tamper.flip_byte(original, pos + size // 2)
    found = check(copy.package, ffmpeg).originals[0]
    assert found.kind == "bytes altered" and "segment(s) 1 (changed: stream 1)" in found.detail
    # cut off inside segment 1: truncated from its start to the end
    tamper.truncate_file(pristine, original, 0.45)
    found = check(copy.package, ffmpeg).originals[0]
    assert found.kind == "truncated", found
    assert found.ranges[0][0] == pytest.approx(10.0, abs=0.1), found
    # remuxed through ffmpeg (to MKV, then back into the MP4 name): every packet as signed
    remux = tmp_path / "remux.mkv"
    tamper.run([ffmpeg, "-v", "error", "-y", "-i", str(pristine), "-map", "0", "-c", "copy",
                str(remux)])  # fmt: skip
    tamper.copy_file(remux, original)
    found = check(copy.package, ffmpeg).originals[0]
    assert (
        found.kind == "bytes altered"
        and not found.ranges
        and "the footage as signed" in found.detail
    )
    assert {f.kind for f in check(copy.package, ffmpeg).segments} == {"intact"}
