"""Issue 17, "every track accounted for": a body-camera MOV with a mov_text subtitle and a
QuickTime timecode goes through the whole custody path. Its segments (MPEG-TS, video and audio
only) cannot carry either, so the signed ``segment`` event lists both as kept in the original;
the catalogue row has the same list, and the case timeline (CLI and API) says so."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog.tracks import KeptTrack, parse_tracks
from integrity.logfacts import prove
from integrity.timeline import case_timeline
from interfaces.api.routes.cases import _timeline_out
from interfaces.cli.render import render_timeline
from tests.helpers import ingest_and_process, object_path
from transcode.samples import SampleSpec
from transcode.tracks import extra_tracks
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg

IN_ORIGINAL = "kept in the original only, not in the segments"


def _header(ffmpeg: str, path: Path) -> str:
    return subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    ).stderr  # fmt: skip


@pytest.fixture
def body_cam(ffmpeg: str, tmp_path: Path) -> Path:
    """6 s of H.264 + AAC in MOV, with a mov_text subtitle (stream 2) and a tmcd timecode."""
    srt = tmp_path / "captions.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:02,000\nunit 7 on scene\n\n")
    out = tmp_path / "BC-0042_20261127_093000.mov"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=440:d=6", "-i", str(srt),
         "-map", "0:v", "-map", "1:a", "-map", "2:s",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30",
         "-c:a", "aac", "-c:s", "mov_text", "-timecode", "01:00:00:00", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


def _listed(ffmpeg: str, path: Path) -> tuple[KeptTrack, ...]:
    """What ffmpeg says the file carries beyond video and audio, as kept in the original."""
    return tuple(
        KeptTrack(index=t.index, codec=t.codec, kind=t.kind, kept="original")
        for t in extra_tracks(_header(ffmpeg, path))
    )


def test_the_signed_segment_event_lists_each_track_and_where_it_is_kept(
    app_factory: Callable[..., Vigil], body_cam: Path, ffmpeg: str
) -> None:
    app = app_factory()
    rec_id = ingest_and_process(app, body_cam)
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete"
    stored = object_path(app, "originals", rec.original_key)
    expected = _listed(ffmpeg, stored)
    assert [(t.kind, t.codec) for t in expected] == [("subtitle", "mov_text"), ("timecode", "tmcd")]
    # the segments carry none of them: that is why they are kept in the original
    for segment in app.catalog.segments(rec_id):
        assert extra_tracks(_header(ffmpeg, object_path(app, "derived", segment.key))) == ()

    events = app.catalog.events(recording_ids=[rec_id])
    (summary,) = [json.loads(e.detail or "{}") for e in events if e.action == "segment"]
    assert [KeptTrack.model_validate(t) for t in summary["tracks"]] == list(expected)
    assert parse_tracks(rec.extra_tracks) == expected  # the row says what the event says

    app.ledger.checkpoint()
    proved = prove(app.ledger, app.ledger.public_key, [rec_id]).of(rec_id)
    assert proved.problems == [] and proved.unsigned == []
    assert proved.events_proved == proved.events
    assert proved.tracks == expected  # read from the signed log


def test_the_case_timeline_says_where_the_tracks_are_kept(
    app_factory: Callable[..., Vigil], body_cam: Path
) -> None:
    app = app_factory()
    rec_id = ingest_and_process(app, body_cam)
    app.cases.link("CASE-17", rec_id, from_s=None, to_s=None, reason="traffic stop", actor="test")
    timeline = case_timeline(app.catalog, "CASE-17", tolerance_frames=1, device_tolerance_s=2)
    (view,) = timeline.recordings
    line = f"subtitle mov_text (stream 2), timecode tmcd (stream 3): {IN_ORIGINAL}"
    assert view.tracks_kept == line
    assert f"  tracks {line}" in render_timeline(timeline).splitlines()
    (out,) = _timeline_out(timeline).recordings
    assert out.tracks == line
    assert [(t.index, t.kind, t.kept) for t in out.extra_tracks or []] == [
        (2, "subtitle", "original"),
        (3, "timecode", "original"),
    ]


def test_a_recording_with_only_video_and_audio_says_so(
    app_factory: Callable[..., Vigil], make_clip: Callable[[SampleSpec], Path]
) -> None:
    app = app_factory()
    clip = make_clip(SampleSpec(duration_s=3.0, width=320, height=240, seed=17))
    rec_id = ingest_and_process(app, clip)
    assert parse_tracks(app.catalog.recording(rec_id).extra_tracks) == ()
    app.cases.link("CASE-17B", rec_id, from_s=None, to_s=None, reason="stop", actor="test")
    timeline = case_timeline(app.catalog, "CASE-17B", tolerance_frames=1, device_tolerance_s=2)
    assert timeline.recordings[0].tracks_kept == "none besides video and audio"
