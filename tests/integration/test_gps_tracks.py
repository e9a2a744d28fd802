"""Issue 17, "where a track carries GPS in a known form, extract it onto the timeline": a
dash-camera MP4 with NMEA sentences in a mov_text subtitle track, and a GoPro-style MOV with
a GPMF ``gpmd`` data track, go through the whole custody path. Each track's fixes become a
derived object (JSON) whose SHA-256 the signed ``segment`` event carries; the case timeline
(CLI and API) says what was read; ``vigil verify`` checks the object against the log, and
finds it when someone rewrites it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.tracks import TrackGps, parse_gps_points
from integrity.logfacts import prove
from integrity.timeline import case_timeline
from interfaces.api.routes.cases import _timeline_out
from interfaces.cli.render import render_timeline
from tests.gpmf import gps5_payload, padded
from tests.helpers import ingest_and_process, object_path
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg

START = datetime(2026, 12, 6, 10, 15, 0, tzinfo=UTC)


def _nmea(body: str) -> str:
    value = 0
    for char in body.encode():
        value ^= char
    return f"${body}*{value:02X}"


def _at(second: int) -> str:
    return f"00:00:{second:02d},000 --> 00:00:{second:02d},900"


@pytest.fixture
def dash_cam(ffmpeg: str, tmp_path: Path) -> Path:
    """8 s of H.264 + AAC in MP4 with one RMC sentence a second in a mov_text track; the
    fourth second has no fix (status V), as when a receiver loses the sky."""
    cues = []
    for s in range(8):
        status = "V" if s == 3 else "A"
        minutes = 7.0 + s * 0.01
        rmc = f"GPRMC,1015{s:02d}.00,{status},48{minutes:07.4f},N,01131.0000,E,010.0,084.4,061226,,"
        cues.append(f"{s + 1}\n{_at(s)}\n{_nmea(rmc)}\n")
    srt = tmp_path / "nmea.srt"
    srt.write_text("\n".join(cues))
    out = tmp_path / "DASH_20261206_101500.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=8",
         "-f", "lavfi", "-i", "sine=frequency=440:d=8", "-i", str(srt),
         "-map", "0:v", "-map", "1:a", "-map", "2:s",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30",
         "-c:a", "aac", "-c:s", "mov_text", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


PER_SECOND = 18  # GPS5 samples a payload, as a HERO camera writes them
SECONDS = 6


@pytest.fixture
def gopro(ffmpeg: str, tmp_path: Path) -> Path:
    """8 s of H.264 + AAC in MOV with a ``gpmd`` track: six one-second GPMF payloads, each of
    18 GPS5 samples (and a filler payload: ffmpeg's mov muxer leaves a data track's last
    packet out)."""
    payloads = [
        gps5_payload(
            START + timedelta(seconds=s),
            [(37.8 + (s * PER_SECOND + i) * 1e-5, -122.4) for i in range(PER_SECOND)],
        )
        for s in range(SECONDS)
    ]
    size = max(len(p) for p in payloads) + 8
    data = tmp_path / "gpmf.bin"
    data.write_bytes(b"".join(padded(p, size) for p in [*payloads, payloads[0]]))
    out = tmp_path / "GX010042.MOV"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=8",
         "-f", "lavfi", "-i", "sine=frequency=440:d=8",
         "-f", "data", "-raw_packet_size", str(size), "-i", str(data),
         "-map", "0:v", "-map", "1:a", "-map", "2",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30",
         "-c:a", "aac", "-c:d", "copy", "-codec:d", "bin_data", "-tag:d", "gpmd",
         "-bsf:d", "setts=ts=N/TB", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


def _signed_gps(app: Vigil, rec_id: str) -> tuple[TrackGps, ...]:
    app.ledger.checkpoint()
    proved = prove(app.ledger, app.ledger.public_key, [rec_id]).of(rec_id)
    assert proved.problems == [] and proved.unsigned == []
    return proved.gps


def test_nmea_in_a_subtitle_track_is_read_signed_and_on_the_timeline(
    app_factory: Callable[..., Vigil], dash_cam: Path
) -> None:
    app = app_factory()
    rec_id = ingest_and_process(app, dash_cam)
    assert app.catalog.recording(rec_id).status == "complete"
    (gps,) = _signed_gps(app, rec_id)
    assert (gps.index, gps.form, gps.fixes, gps.skipped) == (2, "nmea", 7, 1)
    assert (gps.first, gps.last) == (START, START + timedelta(seconds=7))
    points = parse_gps_points(object_path(app, "derived", gps.key).read_bytes())
    assert [p.media_s for p in points] == [0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0]  # not second 3
    assert points[4].lat == pytest.approx(48 + 7.05 / 60)
    assert points[4].lon == pytest.approx(11 + 31 / 60)

    app.cases.link("CASE-GPS", rec_id, from_s=None, to_s=None, reason="stop", actor="test")
    timeline = case_timeline(app.catalog, "CASE-GPS", tolerance_frames=1, device_tolerance_s=2)
    line = (
        "GPS from stream 2 (NMEA sentences in a subtitle track): 7 fixes,"
        " 2026-12-06 10:15:00 to 10:15:07 UTC"
    )
    assert f"  {line}" in render_timeline(timeline).splitlines()
    (out,) = _timeline_out(timeline).recordings
    assert [(g.form, g.fixes, g.sha256) for g in out.gps] == [("nmea", 7, gps.sha256)]
    assert app.verifier.verify_recording(rec_id, actor="test").ok


def test_gopro_gpmf_in_a_data_track_is_read_and_a_rewritten_gps_object_is_found(
    app_factory: Callable[..., Vigil], gopro: Path
) -> None:
    app = app_factory()
    rec_id = ingest_and_process(app, gopro)
    assert app.catalog.recording(rec_id).status == "complete"
    (gps,) = _signed_gps(app, rec_id)
    assert (gps.form, gps.fixes, gps.skipped) == ("gpmf", SECONDS * PER_SECOND, 0)
    assert gps.first == START
    path = object_path(app, "derived", gps.key)
    points = parse_gps_points(path.read_bytes())
    assert points[PER_SECOND].t == START + timedelta(seconds=1)
    assert points[-1].lat == pytest.approx(37.8 + (SECONDS * PER_SECOND - 1) * 1e-5)
    assert app.verifier.verify_recording(rec_id, actor="test").ok

    # an insider moves the officer a street away: the object no longer has its signed hash
    moved = json.loads(path.read_bytes())
    moved[0]["lat"] += 0.001
    path.chmod(0o644)
    path.write_text(json.dumps(moved))
    result = app.verifier.verify_recording(rec_id, actor="auditor")
    assert not result.ok
    assert any(p.startswith(f"GPS of stream {gps.index}: bytes") for p in result.problems), (
        result.problems
    )


def test_a_caption_track_holds_no_gps_and_says_nothing_of_it(
    app_factory: Callable[..., Vigil], ffmpeg: str, tmp_path: Path
) -> None:
    srt = tmp_path / "captions.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:02,000\nunit 7 on scene\n\n")
    out = tmp_path / "captions.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3", "-i", str(srt),
         "-map", "0:v", "-map", "1:s", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:s", "mov_text", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    app = app_factory()
    rec_id = ingest_and_process(app, out)
    assert _signed_gps(app, rec_id) == ()
    app.cases.link("CASE-CAP", rec_id, from_s=None, to_s=None, reason="stop", actor="test")
    text = render_timeline(
        case_timeline(app.catalog, "CASE-CAP", tolerance_frames=1, device_tolerance_s=2)
    )
    assert "GPS" not in text
