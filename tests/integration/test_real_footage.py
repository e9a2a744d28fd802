"""Real camera footage from Debian's opencv-doc, in codecs a browser cannot play:
vtest.avi (MS-MPEG4 v3, a fixed camera over a walkway, 79.5 s at 10 fps, a keyframe every
25 s), tree.avi (Cinepak), Megamind.avi (MPEG-4 Part 2 with AC-3 audio, B-frames in AVI).

The custody path stream-copies each into Matroska evidence segments (every packet as recorded)
and hashes their keyframes; the transcode path then makes an H.264/AAC review proxy, hashed and
linked to the original by a ``proxy.stored`` custody event; the original is kept byte-exact."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest
from vigil_verify.continuity import tolerance_s

from catalog.gaps import recording_gaps
from integrity.match import match_copy
from tests.conftest import opencv_sample
from tests.helpers import ingest_and_process, object_path, segment_path
from tests.tamper import overlay_command, reencode_command, run
from transcode.probe import probe
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg


def assert_continuous(app: Vigil, rec_id: str, duration: float) -> None:
    rec = app.catalog.recording(rec_id)
    segments = app.catalog.segments(rec_id)
    frame = 1 / (rec.fps or 30)
    hold = rec.frame_hold_s or frame
    assert rec.status == "complete"
    assert segments[-1].end_s - segments[0].start_s == pytest.approx(duration, abs=2 * hold)
    for prev, nxt in itertools.pairwise(segments):
        assert abs(nxt.start_s - prev.end_s) <= tolerance_s(frame, hold, tolerance_frames=1)
    assert recording_gaps(rec, segments, tolerance_frames=1.0) == []


def assert_proxy(app: Vigil, rec_id: str, duration: float, *, audio: str | None) -> None:
    """The proxy plays in a browser, covers the recording, and every file is hashed and
    linked to the original in the custody log."""
    rec = app.catalog.recording(rec_id)
    assert rec.playback == "proxy"
    assert rec.proxy_playlist_key is not None
    files = app.catalog.proxy_segments(rec_id)
    assert files
    # It covers the recording: from its first frame to its last (whose display time, for a
    # variable-rate source, ffmpeg counts as up to the held frame's duration).
    assert files[0].start_s == pytest.approx(0.0, abs=0.1)
    assert duration - 0.5 <= files[-1].end_s <= duration + 1.5
    (event,) = [e for e in app.catalog.events(recording_ids=[rec_id]) if e.action == "proxy.stored"]
    detail = json.loads(event.detail or "{}")
    assert detail["source_sha256"] == rec.sha256
    assert [f["sha256"] for f in detail["files"]] == [f.sha256 for f in files]
    for f in files:
        data = object_path(app, "derived", f.key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256
    playlist = object_path(app, "derived", rec.proxy_playlist_key).read_text()
    assert [line for line in playlist.splitlines() if line.endswith(".ts")] == [
        f.key.rpartition("/")[2] for f in files
    ]
    probed = probe(app.tools.runner, app.tools.ffmpeg, object_path(app, "derived", files[0].key))
    assert probed.playable
    assert probed.video is not None
    assert probed.video.stream.codec == "h264"
    assert (probed.audio.stream.codec if probed.audio else None) == audio


def test_vtest_fixed_camera_is_copied_segmented_proxied_and_verified(app: Vigil) -> None:
    source = opencv_sample("vtest.avi")
    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    assert rec.video_codec == "msmpeg4v3"
    assert object_path(app, "originals", rec.original_key).read_bytes() == source.read_bytes()
    segments = app.catalog.segments(rec_id)
    # Stream copy cuts on keyframes: one every 25 s, so 4 segments of 79.5 s.
    assert [round(s.start_s, 1) for s in segments] == [0.0, 25.0, 50.0, 75.0]
    assert all(s.kind == "copy" and s.key.endswith(".mkv") for s in segments)
    assert_continuous(app, rec_id, 79.5)
    first = probe(app.tools.runner, app.tools.ffmpeg, segment_path(app, segments[0]))
    assert first.video is not None
    assert first.video.stream.codec == "msmpeg4v3"  # the evidence packets, untouched
    # Each segment's keyframe is hashed on the custody path, at its time on the timeline.
    keyframes = [json.loads(s.keyframes or "[]") for s in segments]
    assert [[k["t"] for k in ks] for ks in keyframes] == [[0.0], [25.0], [50.0], [75.0]]
    assert_proxy(app, rec_id, 79.5, audio=None)
    assert app.verifier.verify_recording(rec_id, actor="test", full=True).ok


def test_tree_cinepak_is_copied_proxied_and_continuous(app: Vigil) -> None:
    rec_id = ingest_and_process(app, opencv_sample("tree.avi"))
    rec = app.catalog.recording(rec_id)
    assert rec.video_codec == "cinepak"
    # A variable-rate source: frames held up to ~0.4 s are normal, not gaps.
    assert rec.frame_hold_s is not None
    assert rec.frame_hold_s > 0.3
    assert_continuous(app, rec_id, 29.6)
    segments = app.catalog.segments(rec_id)
    # Every source picture is in the evidence (68 non-empty packets of 444; the rest repeat).
    assert sum(s.frame_count for s in segments) == 68
    assert_proxy(app, rec_id, 29.6, audio=None)


def test_tree_reencoded_with_ffmpegs_defaults_is_the_same_and_an_overlay_is_found(
    app: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    """tree.avi holds each Cinepak picture 0.33-0.73 s; ffmpeg's defaults re-encode it to a
    constant rate and move some picture changes one frame early or late. That is timing, not
    content: no false "edited" (issue 17), while an overlay in a held picture still is."""
    source = opencv_sample("tree.avi")
    rec_id = ingest_and_process(app, source)
    copies = {
        "copy.mp4": ["-c:v", "libx264", "-crf", "23"],
        "copy30.mp4": ["-c:v", "libx264", "-r", "30"],
        "copy25.mkv": ["-c:v", "libx264", "-crf", "35", "-r", "25"],
        "copy.avi": ["-c:v", "mpeg4", "-q:v", "4"],
    }
    for name, args in copies.items():
        run([ffmpeg, "-v", "error", "-y", "-i", str(source), *args, str(tmp_path / name)])
        report = match_copy(app.catalog, app.tools, rec_id, tmp_path / name, actor="test")
        assert [v.status for v in report.segments] == ["same"] * 3, name
        assert report.clean, name
    edited = tmp_path / "edited.mp4"
    run(overlay_command(ffmpeg, source, edited, start_s=24.0, duration_s=1.5, area=0.08))
    report = match_copy(app.catalog, app.tools, rec_id, edited, actor="test")
    assert [v.status for v in report.segments] == ["same", "same", "edited"]
    (where,) = report.segments[2].edited_ranges
    assert where[0] == pytest.approx(24.0, abs=0.5) and where[1] == pytest.approx(25.5, abs=0.5)


def test_megamind_mpeg4_with_ac3_is_copied_and_gets_an_h264_aac_proxy(app: Vigil) -> None:
    rec_id = ingest_and_process(app, opencv_sample("Megamind.avi"))
    rec = app.catalog.recording(rec_id)
    assert (rec.video_codec, rec.audio_codec) == ("mpeg4", "ac3")
    segment = app.catalog.segments(rec_id)[0]
    probed = probe(app.tools.runner, app.tools.ffmpeg, segment_path(app, segment))
    assert probed.video is not None
    assert probed.audio is not None
    assert (probed.video.stream.codec, probed.audio.stream.codec) == ("mpeg4", "ac3")
    assert rec.status == "complete"
    assert_proxy(app, rec_id, rec.duration_s or 0.0, audio="aac")


@pytest.mark.parametrize(
    ("crf", "scale"), [(23, 1.0), (35, 1.0), (23, 0.5)], ids=["crf23", "crf35", "half-res"]
)
def test_reencoded_copies_of_real_footage_match(
    app: Vigil, ffmpeg: str, tmp_path: Path, crf: int, scale: float
) -> None:
    source = opencv_sample("vtest.avi")
    rec_id = ingest_and_process(app, source)
    copy = tmp_path / "copy.mp4"
    run(reencode_command(ffmpeg, source, copy, crf=crf, scale=scale))
    report = match_copy(app.catalog, app.tools, rec_id, copy, actor="test")
    assert [v.status for v in report.segments] == ["same"] * 4
    assert report.clean


def test_an_overlay_in_real_footage_flags_only_its_segment(
    app: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    source = opencv_sample("vtest.avi")
    rec_id = ingest_and_process(app, source)
    edited = tmp_path / "edited.mp4"
    run(overlay_command(ffmpeg, source, edited, start_s=43.0, duration_s=2.0, area=0.08))
    report = match_copy(app.catalog, app.tools, rec_id, edited, actor="test")
    flagged = [v.index for v in report.segments if v.status != "same"]
    assert flagged == [1]  # 25-50 s
    (where,) = report.segments[1].edited_ranges
    assert where[0] == pytest.approx(43.0, abs=0.5)
