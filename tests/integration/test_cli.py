"""The ``vigil`` command as a user runs it: ingest, link, show, verify, match, export, events."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from catalog.db import make_engine
from catalog.repository import Catalog, Event
from integrity.export import Manifest
from tests.helpers import START, VIGIL, copy_data, recording
from tests.tamper import flip_byte, reencode_command, run

pytestmark = [pytest.mark.ffmpeg, pytest.mark.copies_kept]
Vigil = Callable[..., subprocess.CompletedProcess[str]]


def command(data: Path) -> Vigil:
    """``vigil`` on the data folder ``data``."""
    env = {**os.environ, "VIGIL_DATA_DIR": str(data), "VIGIL_ACTOR": "investigator-7"}

    def call(*args: str, ffmpeg: str | None = None) -> subprocess.CompletedProcess[str]:
        run_env = {**env, "VIGIL_FFMPEG": ffmpeg} if ffmpeg else env
        return subprocess.run(
            [*VIGIL, "-q", *args],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return call


@pytest.fixture
def vigil(tmp_path: Path) -> Vigil:
    return command(tmp_path / "data")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ingest(vigil: Vigil, clip: Path) -> str:
    done = vigil(
        "ingest", str(clip), "--device", "BC-0042", "--officer", "031245",
        "--start", "2026-11-27T09:30:00+08:00", "--device-clock", "2026-11-27T18:00:05+08:00",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("ingested: rec-")
    return first.split()[1]


@pytest.fixture(scope="module")
def cli_recorded(tmp_path_factory: pytest.TempPathFactory, standard_clip: Path) -> tuple[Path, str]:
    """The standard clip ingested by the command (``ingest``), once for the module."""
    data = tmp_path_factory.mktemp("cli") / "data"
    return data, ingest(command(data), standard_clip)


@pytest.fixture
def ingested(cli_recorded: tuple[Path, str], tmp_path: Path) -> str:
    """The recording of ``cli_recorded``, in this test's own copy of its data folder (where
    ``vigil`` works)."""
    data, rec = cli_recorded
    copy_data(data, tmp_path / "data")
    return rec


def test_review_flow_ingest_link_show_verify_export(
    vigil: Vigil, ingested: str, standard_clip: Path, tmp_path: Path
) -> None:
    rec = ingested
    linked = vigil("case", "link", "CASE-17", rec[:12], "--reason", "traffic stop")
    assert linked.returncode == 0, linked.stderr

    shown = vigil("case", "show", "CASE-17")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"recording {rec}" in out
    assert "continuous: 4 segments" in out
    assert "case footage: continuous" in out
    assert out.count(" verified") + out.count(" hashed") == 4  # one line per segment
    assert "device start 2026-11-27T01:30:00+00:00" in out

    verified = vigil("verify", "CASE-17")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout

    export_dir = tmp_path / "export"
    exported = vigil("export", "CASE-17", str(export_dir), "--reason", "disclosure")
    assert exported.returncode == 0, exported.stderr
    root = export_dir / "CASE-17"
    manifest = Manifest.model_validate_json((root / "manifest.json").read_text())
    assert manifest.case_id == "CASE-17"
    assert manifest.exported_by == "investigator-7"
    assert manifest.continuous
    (entry,) = manifest.recordings
    assert sha256(root / entry.original.path) == entry.original.sha256 == sha256(standard_clip)
    assert len(entry.segments) == 4
    for seg in entry.segments:
        assert sha256(root / seg.file) == seg.sha256
        assert seg.phash_file is not None
        assert (root / seg.phash_file).stat().st_size > 0

    events = vigil("events", "--case", "CASE-17")
    actions = [line.split()[3] for line in events.stdout.splitlines()]
    assert actions == ["legal_hold.set", "case.link", "view", "export", "export.written"]
    rec_events = vigil("events", "--recording", rec)
    rec_actions = [line.split()[3] for line in rec_events.stdout.splitlines()]
    assert rec_actions[:2] == ["ingest", "flag.clock_drift"]
    assert rec_actions.count("segment.stored") == rec_actions.count("segment.hashed") == 4
    assert rec_actions[-4:] == ["catalogue", "legal_hold.set", "case.link", "verify"]

    # The package checks out offline, with the stand-alone verifier's own command.
    verifier = Path(sys.executable).with_name("vigil-verify")
    offline = subprocess.run(
        [str(verifier), str(root)], capture_output=True, text=True, timeout=300, check=False
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "RESULT: CLEAN (4 intact)" in offline.stdout
    # The device clock read 18:00:05+08:00 at handover, hours off the server's: flagged.
    assert "device clock is" in rec_events.stdout


def test_verify_exits_1_and_names_the_segment_whose_bytes_were_altered(
    vigil: Vigil, ingested: str, tmp_path: Path
) -> None:
    rec = ingested
    segment = next((tmp_path / "data" / "objects" / "derived" / rec).glob("seg-00001-*.ts"))
    segment.chmod(0o644)
    flip_byte(segment, 5000)
    result = vigil("verify", rec)
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "segment 1: bytes altered: " in result.stdout
    assert "segment 0:" not in result.stdout


def test_match_reports_a_reencoded_copy_as_same(
    vigil: Vigil, ingested: str, standard_clip: Path, ffmpeg: str, tmp_path: Path
) -> None:
    rec = ingested
    copy = tmp_path / "court-copy.mp4"
    run(reencode_command(ffmpeg, standard_clip, copy, crf=28))
    result = vigil("match", str(copy), "--recording", rec)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = [line.split(":")[1].split()[0] for line in result.stdout.splitlines()[1:5]]
    assert verdicts == ["intact"] * 4  # the same pictures, segment by segment
    assert "verdict: same content" in result.stdout
    identical = vigil("match", str(standard_clip))
    assert "byte-identical to the original of " + rec in identical.stdout


def test_bad_input_gets_a_clear_error(vigil: Vigil, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n" * 100)
    result = vigil("ingest", str(notes), "--device", "BC-0042")
    assert result.returncode == 2
    assert "notes.txt: not a video or audio recording" in result.stderr
    assert "nothing was stored" in result.stderr
    naive = vigil("ingest", str(notes), "--device", "BC-0042", "--start", "2026-11-27T09:30:00")
    assert naive.returncode == 2
    assert "time zone" in naive.stderr
    missing = vigil("case", "show", "NO-SUCH-CASE")
    assert missing.returncode == 2
    assert "no case 'NO-SUCH-CASE'" in missing.stderr


def test_works_with_the_pip_installed_ffmpeg(vigil: Vigil, standard_clip: Path) -> None:
    """A machine without a system ffmpeg uses the binary the imageio-ffmpeg wheel ships."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    assert "imageio_ffmpeg" in exe
    done = vigil("ingest", str(standard_clip), "--device", "BC-0042", ffmpeg=exe)
    assert done.returncode == 0, done.stderr
    assert "status complete, 4 segments, playback copy" in done.stdout
    rec = done.stdout.split()[1]
    verified = vigil("verify", rec, "--full", ffmpeg=exe)
    assert verified.returncode == 0, verified.stdout
    listed = vigil("recordings")
    assert json.dumps(rec).strip('"') in listed.stdout


def test_stats_from_the_command_line(vigil: Vigil, tmp_path: Path) -> None:
    """`vigil stats` on a seeded catalogue: a late upload, a dispatch with no footage, a roster."""
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"))
    catalog.migrate()
    late = recording("late", device="BC-9", start=START - timedelta(days=2), duration=600.0)
    catalog.add_recording(late, Event("ingest", "t", late.id))
    catalog.engine.dispose()
    (tmp_path / "roster.csv").write_text("officer_id,unit\n031245,Traffic\n")
    imported = vigil("roster", "import", str(tmp_path / "roster.csv"))
    assert imported.returncode == 0, imported.stderr
    assert "officers: 0 added, 1 updated" in imported.stdout
    period = ("--since", "2026-11-20", "--until", "2026-11-30")
    delays = vigil("stats", "delays", *period, "--csv")
    assert delays.returncode == 0, delays.stderr
    header, row = delays.stdout.splitlines()
    assert header.startswith("recording_id,device_id,officer_id")
    assert row.startswith(f"{late.id},BC-9,031245") and ",49.8" in row  # 2 d + 2 h - 10 min
    hours = vigil("stats", "hours", "--by", "unit", *period, "--tz", "Asia/Shanghai")
    assert "Traffic" in hours.stdout and "600.0" in hours.stdout
    (tmp_path / "incidents.csv").write_text(
        "incident_id,officer_id,start,end\nD-1,999,2026-11-27T10:00:00+08:00,2026-11-27T10:30:00+08:00\n"
    )
    reconciled = vigil("stats", "reconcile", str(tmp_path / "incidents.csv"), "--csv")
    assert reconciled.returncode == 0, reconciled.stderr
    assert reconciled.stdout.splitlines()[1].split(",")[:2] == ["D-1", "999"]
    assert ",missing," in reconciled.stdout
    bad = vigil("stats", "hours", "--tz", "Mars/Olympus")
    assert bad.returncode != 0 and "unknown time zone" in bad.stderr
