"""Real camera footage from Debian's opencv-doc, in codecs a browser cannot play:
vtest.avi (MS-MPEG4 v3, a fixed camera over a walkway, 79.5 s at 10 fps), tree.avi (Cinepak),
Megamind.avi (MPEG-4 Part 2 with AC-3 audio). Each is transcoded to H.264/AAC segments while
the original is kept byte-exact."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from catalog.timeline import recording_gaps
from integrity.continuity import tolerance_s
from integrity.match import match_copy
from tests.conftest import opencv_sample
from tests.helpers import ingest_and_process, object_path
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


def test_vtest_fixed_camera_is_transcoded_segmented_and_verified(app: Vigil) -> None:
    source = opencv_sample("vtest.avi")
    rec_id = ingest_and_process(app, source)
    rec = app.catalog.recording(rec_id)
    assert rec.video_codec == "msmpeg4v3"
    assert rec.playback == "transcode"
    assert object_path(app, "originals", rec.original_key).read_bytes() == source.read_bytes()
    segments = app.catalog.segments(rec_id)
    assert len(segments) == 8  # 79.5 s in 10 s segments
    assert_continuous(app, rec_id, 79.5)
    first = probe(app.tools.runner, app.tools.ffmpeg, object_path(app, "derived", segments[0].key))
    assert first.video is not None
    assert first.video.stream.codec == "h264"
    assert app.verifier.verify_recording(rec_id, actor="test", full=True).ok


def test_tree_cinepak_is_transcoded_and_continuous(app: Vigil) -> None:
    rec_id = ingest_and_process(app, opencv_sample("tree.avi"))
    rec = app.catalog.recording(rec_id)
    assert rec.video_codec == "cinepak"
    assert rec.playback == "transcode"
    # A variable-rate source: frames held up to ~0.4 s are normal, not gaps.
    assert rec.frame_hold_s is not None
    assert rec.frame_hold_s > 0.3
    assert_continuous(app, rec_id, 29.6)
    segments = app.catalog.segments(rec_id)
    # One review frame per source picture (68 non-empty packets of 444; the rest repeat).
    assert sum(s.frame_count for s in segments) == 68


def test_megamind_mpeg4_with_ac3_gets_h264_and_aac(app: Vigil) -> None:
    rec_id = ingest_and_process(app, opencv_sample("Megamind.avi"))
    rec = app.catalog.recording(rec_id)
    assert (rec.video_codec, rec.audio_codec) == ("mpeg4", "ac3")
    segment = app.catalog.segments(rec_id)[0]
    probed = probe(app.tools.runner, app.tools.ffmpeg, object_path(app, "derived", segment.key))
    assert probed.video is not None
    assert probed.audio is not None
    assert (probed.video.stream.codec, probed.audio.stream.codec) == ("h264", "aac")
    assert probed.playable


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
    assert [v.status for v in report.segments] == ["same"] * 8
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
    assert flagged == [4]
    (where,) = report.segments[4].edited_ranges
    assert where[0] == pytest.approx(43.0, abs=0.5)
