"""Continuity from real timing (issue 17): footage as field cameras write it, made by ffmpeg
here, ingested the way a device's upload is, and its gaps and segment lengths checked.

- a camera that drops from 30 to 10 fps in low light, with and without a real 1 s hole;
- a fragmented MP4 with B-frames (a body camera's), whose video starts 0.067 s after its audio;
- an MPEG-TS whose timestamps jump ahead by an hour, and one that wraps at 2^33 ticks of
  90 kHz a few seconds in (both starting far from timestamp 0).

The rule is in docs/continuity.md.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from catalog.clock import wall_clock
from catalog.gaps import recording_gaps
from catalog.models import Segment
from integrity.timeline import case_timeline
from tests.helpers import START, ingest_and_process
from transcode.probe import probe
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg

SEGMENT_S = 4.0
WRAP_S = 2**33 / 90_000  # the 33-bit MPEG-TS clock wraps after this many seconds (~26.5 h)


def clip_command(
    ffmpeg: str,
    out: Path,
    *,
    seconds: float,
    keep: str | None = None,
    container: list[str],
    bframes: int = 0,
) -> list[str]:
    """testsrc2 at 320x240, 30 fps, with a tone; ``keep``: a ``select`` expression of the
    frames kept, on their own timestamps (a variable frame rate, or a hole)."""
    video = ["-vf", f"select='{keep}'", "-fps_mode", "vfr"] if keep else []
    return [
        ffmpeg, "-v", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={seconds:g}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:g}",
        *video, "-c:v", "libx264", "-preset", "ultrafast", "-bf", str(bframes),
        "-force_key_frames", "expr:gte(t,n_forced)", "-c:a", "aac", *container, str(out),
    ]  # fmt: skip


def ts_at(offset_s: float) -> list[str]:
    """MPEG-TS whose first timestamp is ``offset_s`` (no mux delay added)."""
    return [
        "-f",
        "mpegts",
        "-muxdelay",
        "0",
        "-muxpreload",
        "0",
        "-output_ts_offset",
        f"{offset_s}",
    ]


def make(ffmpeg: str, cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, timeout=60)


@pytest.fixture
def app4(app_factory: Callable[..., Vigil]) -> Vigil:
    return app_factory(segment_seconds=SEGMENT_S)


def lengths(segments: list[Segment]) -> list[float]:
    return [round(s.end_s - s.start_s, 3) for s in segments]


def assert_abutting(segments: list[Segment]) -> None:
    """Each segment ends where the next starts: the boundary is an ordinary interval."""
    for prev, nxt in itertools.pairwise(segments):
        assert nxt.start_s == pytest.approx(prev.end_s, abs=1e-4)


# 30 fps for 3 s, 10 fps (every third frame) for 4 s, 30 fps for 3 s.
SLOW_MIDDLE = "lt(t,3)+gte(t,7)+not(mod(n,3))"


def test_a_camera_slowing_to_10_fps_in_the_dark_is_continuous(
    app4: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    clip = tmp_path / "vfr.mp4"
    make(ffmpeg, clip_command(ffmpeg, clip, seconds=10, keep=SLOW_MIDDLE, container=[]))
    rec_id = ingest_and_process(app4, clip)
    rec = app4.catalog.recording(rec_id)
    segments = app4.catalog.segments(rec_id)
    assert rec.status == "complete"
    assert sum(s.frame_count for s in segments) == 90 + 40 + 90
    assert recording_gaps(rec, segments, 1.0) == []
    assert rec.frame_hold_s == pytest.approx(0.1, abs=1e-3)  # the longest normal hold
    assert lengths(segments) == [4.0, 4.0, 2.0]  # footage seconds, cut on 1 s keyframes
    assert_abutting(segments)
    app4.catalog.link("CASE-VFR", rec_id, from_s=None, to_s=None, reason="t", actor="t")
    timeline = case_timeline(app4.catalog, "CASE-VFR", tolerance_frames=1, device_tolerance_s=2)
    assert timeline.continuous


def test_a_real_one_second_hole_in_variable_rate_footage_is_found_at_its_time(
    app4: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    clip = tmp_path / "vfr-hole.mp4"
    keep = f"({SLOW_MIDDLE})*(lt(t,5)+gte(t,6))"  # nothing from 5.0 s to 6.0 s, at 10 fps
    make(ffmpeg, clip_command(ffmpeg, clip, seconds=10, keep=keep, container=[]))
    rec_id = ingest_and_process(app4, clip)
    rec = app4.catalog.recording(rec_id)
    (gap,) = recording_gaps(rec, app4.catalog.segments(rec_id), 1.0)
    assert gap.kind == "gap"
    assert gap.start == pytest.approx(5.0, abs=1e-3)
    assert gap.seconds == pytest.approx(1.0, abs=1e-3)


def test_fragmented_mp4_with_video_starting_after_audio_has_no_false_gap(
    app4: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    clip = tmp_path / "body-camera.mp4"
    fragmented = ["-movflags", "frag_keyframe+empty_moov"]
    make(ffmpeg, clip_command(ffmpeg, clip, seconds=10, container=fragmented, bframes=2))
    probed = probe(app4.tools.runner, app4.tools.ffmpeg, clip)
    assert probed.video is not None
    assert probed.audio is not None
    # The case: two B-frames of delay, no edit list: video starts 2 frames after audio.
    assert probed.video.start_s - probed.audio.start_s == pytest.approx(2 / 30, abs=1e-3)
    rec_id = ingest_and_process(app4, clip)
    rec = app4.catalog.recording(rec_id)
    segments = app4.catalog.segments(rec_id)
    assert recording_gaps(rec, segments, 1.0) == []
    assert lengths(segments) == [4.0, 4.0, 2.0]
    assert_abutting(segments)
    assert segments[-1].end_s == pytest.approx(10.0, abs=1e-3)


def test_an_hour_jump_in_ts_timestamps_is_a_gap_and_segments_keep_their_length(
    app4: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    before, after = tmp_path / "before.ts", tmp_path / "after.ts"
    make(ffmpeg, clip_command(ffmpeg, before, seconds=6, container=ts_at(10)))
    make(ffmpeg, clip_command(ffmpeg, after, seconds=6, container=ts_at(10 + 6 + 3600)))
    clip = tmp_path / "jump.ts"
    clip.write_bytes(before.read_bytes() + after.read_bytes())  # one stream, clock jumps
    rec_id = ingest_and_process(app4, clip)
    rec = app4.catalog.recording(rec_id)
    segments = app4.catalog.segments(rec_id)
    assert lengths(segments) == [4.0, 2.0, 4.0, 2.0]  # not a segment per keyframe after it
    (gap,) = recording_gaps(rec, segments, 1.0)
    assert (gap.kind, gap.after, gap.before) == ("gap", "segment 1", "segment 2")
    assert gap.start == pytest.approx(6.0, abs=1e-3)
    assert gap.seconds == pytest.approx(3600.0, abs=1e-3)
    # On the device's clock: from 6 s after it started to 3606 s after.
    assert wall_clock(rec, gap.start, corrected=False) == START + timedelta(seconds=6)
    assert wall_clock(rec, segments[2].start_s, corrected=False) == START + timedelta(seconds=3606)


def test_a_33_bit_pts_wrap_is_no_gap_and_segments_keep_their_length(
    app4: Vigil, ffmpeg: str, tmp_path: Path
) -> None:
    clip = tmp_path / "wrap.ts"
    make(ffmpeg, clip_command(ffmpeg, clip, seconds=10, container=ts_at(round(WRAP_S - 3, 3))))
    rec_id = ingest_and_process(app4, clip)
    rec = app4.catalog.recording(rec_id)
    segments = app4.catalog.segments(rec_id)
    assert sum(s.frame_count for s in segments) == 300
    assert lengths(segments) == [4.0, 4.0, 2.0]
    assert recording_gaps(rec, segments, 1.0) == []
    assert_abutting(segments)
