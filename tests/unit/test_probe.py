"""Unit tests for transcode.probe: framecrc parsing, track timing, damage, the ffmpeg banner."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from vigil_verify.continuity import tolerance_s

from transcode.ffmpeg import ProcessRunner
from transcode.probe import (
    NOPTS,
    NotVideoError,
    ProbeResult,
    StreamInfo,
    Track,
    _parse_header,
    parse_framecrc,
    probe,
    sniff,
)
from transcode.tracks import AudioTrack

# What `ffmpeg -copyts -i x.mp4 -map 0:v? -map 0:a? -c copy -f framecrc -` prints for an
# H.264 (25 fps, tb 1/12800) + AAC (44.1 kHz) MP4 with B-frames: dts runs ahead of pts.
H264_AAC = """\
#extradata 0:       47, 0x675e0fbc
#extradata 1:        5, 0x03460155
#software: Lavf59.27.100
#tb 0: 1/12800
#media_type 0: video
#codec_id 0: h264
#dimensions 0: 1280x720
#sar 0: 1/1
#tb 1: 1/44100
#media_type 1: audio
#codec_id 1: aac
#sample_rate 1: 44100
#channel_layout_name 1: stereo
0,      -1024,          0,      512,    22391, 0xa0fe3d9f
1,      -1024,      -1024,     1024,      258, 0x2c5b786a, F=0x5, S=1,       10
0,       -512,       1024,      512,     2284, 0xce40911f, F=0x0
1,          0,          0,     1024,      258, 0x8057765e
0,          0,        512,      512,      193, 0x48935ac3, F=0x0
1,       1024,       1024,     1024,      146, 0x08ad4e88
0,        512,       2048,      512,     2293, 0xaea398f2, F=0x0
0,       1024,       1536,      512,      219, 0x2aae05d5, F=0x0
1,       2048,       2048,     1024,      186, 0x06dc60a4
0,       1536,       2560,      512,    21000, 0x7ffa715b
0,       2048,       3072,      512,     1900, 0x7c706c52, F=0x0
"""


def h264_aac() -> tuple[tuple[StreamInfo, ...], dict[int, Track]]:
    return parse_framecrc(H264_AAC)


def make_track(
    pts: list[int],
    *,
    duration: int | list[int] = 512,
    key: list[bool] | None = None,
    tb: Fraction = Fraction(1, 12800),
    codec: str = "h264",
    media_type: str = "video",
) -> Track:
    n = len(pts)
    durations = [duration] * n if isinstance(duration, int) else duration
    return Track(
        stream=StreamInfo(index=0, media_type=media_type, codec=codec, time_base=tb),
        pts=np.array(pts, dtype=np.int64),
        duration=np.array(durations, dtype=np.int64),
        size=np.full(n, 1000, dtype=np.int64),
        key=np.array(key if key is not None else [True] * n, dtype=np.bool_),
    )


# -- parse_framecrc ---------------------------------------------------------------------------


def test_parse_framecrc_reads_stream_headers() -> None:
    streams, _ = h264_aac()
    assert streams == (
        StreamInfo(0, "video", "h264", Fraction(1, 12800), width=1280, height=720),
        StreamInfo(1, "audio", "aac", Fraction(1, 44100), sample_rate=44100, channels="stereo"),
    )


def test_parse_framecrc_splits_packets_by_stream_in_file_order() -> None:
    _, tracks = h264_aac()
    video, audio = tracks[0], tracks[1]
    assert video.pts.tolist() == [0, 1024, 512, 2048, 1536, 2560, 3072]
    assert video.duration.tolist() == [512] * 7
    assert video.size.tolist() == [22391, 2284, 193, 2293, 219, 21000, 1900]
    assert audio.pts.tolist() == [-1024, 0, 1024, 2048]
    assert audio.size.tolist() == [258, 258, 146, 186]


def test_parse_framecrc_key_flag_from_f_field() -> None:
    _, tracks = h264_aac()
    # No F= means the flags are exactly AV_PKT_FLAG_KEY; F=0x0 is a non-key packet;
    # F=0x5 (key | discard) is still a keyframe.
    assert tracks[0].key.tolist() == [True, False, False, False, False, True, False]
    assert tracks[1].key.tolist() == [True, True, True, True]


def test_parse_framecrc_missing_pts_falls_back_to_dts() -> None:
    text = (
        "#tb 0: 1/90000\n#media_type 0: video\n#codec_id 0: mpeg2video\n"
        "#dimensions 0: 720x576\n"
        "0,     126000,     126000,     3600,    40000, 0x11111111\n"
        "0,     129600, -9223372036854775808,     3600,     9000, 0x22222222, F=0x0\n"
        "0,     133200,     133200,     3600,     9100, 0x33333333, F=0x0\n"
    )
    _, tracks = parse_framecrc(text)
    assert tracks[0].pts.tolist() == [126000, 129600, 133200]
    assert NOPTS not in tracks[0].pts.tolist()


def test_parse_framecrc_drops_packet_without_any_timestamp() -> None:
    text = (
        "#tb 0: 1/90000\n#media_type 0: video\n#codec_id 0: h264\n"
        "0,          0,          0,     3600,     4000, 0x11111111\n"
        "0, -9223372036854775808, -9223372036854775808,     3600,   900, 0x22222222, F=0x0\n"
        "0,       3600,       3600,     3600,      910, 0x33333333, F=0x0\n"
    )
    _, tracks = parse_framecrc(text)
    assert tracks[0].pts.tolist() == [0, 3600]
    assert tracks[0].size.tolist() == [4000, 910]


def test_parse_framecrc_ignores_unknown_comments_and_short_lines() -> None:
    text = (
        "#software: Lavf59.27.100\n"
        "#tb 0: 1/1000\n#media_type 0: video\n#codec_id 0: h264\n"
        "\n"
        "garbage line\n"
        "0, 1, 2\n"
        "0,          0,          0,       40,     4000, 0x11111111\n"
    )
    streams, tracks = parse_framecrc(text)
    assert [s.index for s in streams] == [0]
    assert tracks[0].pts.tolist() == [0]


def test_parse_framecrc_skips_empty_repeat_packets() -> None:
    # AVI marks "repeat the last frame" with a zero-size packet: no picture of its own.
    text = (
        "#tb 0: 1/25\n#media_type 0: video\n#codec_id 0: mpeg4\n#dimensions 0: 640x480\n"
        "0,          0,          0,        1,    12000, 0x11111111\n"
        "0,          1,          1,        1,        0, 0x00000001, F=0x0\n"
        "0,          2,          2,        1,     3000, 0x22222222, F=0x0\n"
    )
    _, tracks = parse_framecrc(text)
    assert tracks[0].pts.tolist() == [0, 2]
    assert tracks[0].size.tolist() == [12000, 3000]


def test_parse_framecrc_stream_with_no_packets_has_empty_track() -> None:
    streams, tracks = parse_framecrc("#tb 0: 1/1000\n#media_type 0: video\n#codec_id 0: hevc\n")
    assert streams[0].codec == "hevc"
    assert tracks[0].count == 0
    assert tracks[0].start_s == 0.0
    assert tracks[0].end_s == 0.0
    assert tracks[0].jumps(tolerance_s=0.0) == []
    assert tracks[0].hold_s == 0.0


def test_parse_framecrc_empty_text_has_no_streams() -> None:
    assert parse_framecrc("") == ((), {})


# -- Track ------------------------------------------------------------------------------------


def test_track_start_end_and_fps_from_parsed_video() -> None:
    _, tracks = h264_aac()
    video = tracks[0]
    assert video.count == 7
    assert video.start_s == 0.0
    assert video.end_s == pytest.approx((3072 + 512) / 12800)
    assert video.frame_duration_s == pytest.approx(0.04)
    assert video.fps == pytest.approx(25.0)


def test_track_audio_start_can_be_negative() -> None:
    _, tracks = h264_aac()
    assert tracks[1].start_s == pytest.approx(-1024 / 44100)
    assert tracks[1].end_s == pytest.approx(3072 / 44100)


def test_track_keyframe_times_are_sorted_seconds() -> None:
    pts = [5120, 0, 512, 2560, 1024]
    track = make_track(pts, key=[True, True, False, True, False])
    assert track.keyframe_times().tolist() == pytest.approx([0.0, 0.2, 0.4])


def test_track_fps_from_pts_steps_when_durations_are_zero() -> None:
    track = make_track([0, 3003, 6006, 9009], duration=0, tb=Fraction(1, 90000))
    assert track.fps == pytest.approx(30000 / 1001)


def test_track_fps_zero_for_single_packet_without_duration() -> None:
    assert make_track([0], duration=0).fps == 0.0


def test_track_without_holes_has_no_jumps() -> None:
    track = make_track([i * 512 for i in range(50)])
    assert track.jumps(tolerance_s=0.04) == []


def test_track_jumps_finds_five_second_pts_jump() -> None:
    # 25 fps, frames 0..24 (0-1 s), then frames resume at 6 s: a 5 s hole.
    pts = [i * 512 for i in range(25)] + [6 * 12800 + i * 512 for i in range(25)]
    jumps = make_track(pts).jumps(tolerance_s=0.06)
    assert len(jumps) == 1
    before, after = jumps[0]
    assert before == pytest.approx(1.0)
    assert after == pytest.approx(6.0)


def test_track_jumps_found_in_presentation_order_when_packets_are_in_decode_order() -> None:
    # The hole (0.4 s -> 3.0 s) is between packets that are not adjacent in the file.
    pts = [0, 1536, 512, 1024, 3584, 2048, 2560, 3072, 4608, 38400, 4096, 39424, 38912]
    jumps = make_track(pts).jumps(tolerance_s=0.06)
    assert jumps == [pytest.approx((5120 / 12800, 3.0))]


def test_track_jumps_ignore_reordered_b_frames() -> None:
    # Decode order differs from presentation order; sorted pts are contiguous.
    pts = [0, 1536, 512, 1024, 3584, 2048, 2560, 3072]
    assert make_track(pts).jumps(tolerance_s=0.001) == []


def test_track_jumps_only_longer_than_tolerance() -> None:
    # One dropped frame: a 0.04 s gap between 0.12 s and 0.16 s.
    pts = [0, 512, 1024, 2048, 2560]
    track = make_track(pts)
    assert track.jumps(tolerance_s=0.06) == []
    assert track.jumps(tolerance_s=0.04) == []  # equal to the tolerance is not a hole
    assert track.jumps(tolerance_s=0.02) == [pytest.approx((1536 / 12800, 2048 / 12800))]


def test_track_hold_is_one_frame_for_constant_rate() -> None:
    track = make_track([i * 512 for i in range(100)])
    assert track.hold_s == pytest.approx(0.04)


def test_track_hold_follows_a_variable_rate_camera_in_the_dark() -> None:
    # Nominal 25 fps, but the camera mostly holds each picture for 0.2 s.
    pts, t = [], 0
    for i in range(100):
        pts.append(t)
        t += 512 if i % 4 == 0 else 2560
    track = make_track(pts)
    assert track.frame_duration_s == pytest.approx(0.04)
    assert track.hold_s == pytest.approx(0.2)
    tolerance = tolerance_s(track.frame_duration_s, track.hold_s, 1.0)
    assert track.jumps(tolerance) == []


def test_track_hold_of_single_packet_is_its_duration() -> None:
    assert make_track([0]).hold_s == pytest.approx(0.04)


def test_track_holes_are_found_with_the_tolerance_the_pipeline_uses() -> None:
    # 30 fps, 300 frames, with four 5 s timestamp jumps (e.g. four cuts in a 10 s clip):
    # the holes must not widen the tolerance that is meant to find them.
    pts, t = [], 0
    for i in range(300):
        pts.append(t)
        t += 1 + (150 if i in (60, 120, 180, 240) else 0)
    track = make_track(pts, duration=1, tb=Fraction(1, 30))
    tolerance = tolerance_s(track.frame_duration_s, track.hold_s, 1.0)  # as SegmentStage does
    jumps = track.jumps(tolerance)
    assert len(jumps) == 4
    assert [round(b - a, 6) for a, b in jumps] == [5.0] * 4


def test_track_hole_in_a_short_clip_is_found_with_pipeline_tolerance() -> None:
    # 2 s at 25 fps with a single 2 s hole in the middle.
    pts = [i * 512 for i in range(25)] + [3 * 12800 + i * 512 for i in range(25)]
    track = make_track(pts)
    assert track.jumps(tolerance_s(track.frame_duration_s, track.hold_s, 1.0)) == [
        pytest.approx((1.0, 3.0))
    ]


# -- ProbeResult ------------------------------------------------------------------------------


def result(
    video: Track | None,
    *,
    audio: Track | None = None,
    declared: float | None = None,
    complaints: tuple[str, ...] = (),
    exit_code: int = 0,
) -> ProbeResult:
    streams = tuple(t.stream for t in (video, audio) if t is not None)
    return ProbeResult(
        "mov,mp4,m4a,3gp,3g2,mj2", declared, streams, video, audio, complaints, exit_code
    )


TEN_SECONDS = make_track([i * 512 for i in range(250)])  # 0..10 s at 25 fps


@pytest.mark.parametrize(
    ("declared", "truncated"),
    [
        (None, False),
        (10.0, False),
        (10.1, False),  # within two frames and 2 %
        (9.0, False),  # more packets than declared is not truncation
        (12.0, True),
        (60.0, True),
    ],
)
def test_probe_result_truncated_compares_packets_with_declared_duration(
    declared: float | None, truncated: bool
) -> None:
    assert result(TEN_SECONDS, declared=declared).truncated is truncated


def test_probe_result_without_video_is_not_truncated_nor_playable() -> None:
    r = result(None, declared=10.0)
    assert r.truncated is False
    assert r.playable is False


@pytest.mark.parametrize(
    ("video_codec", "audio_codec", "playable"),
    [
        ("h264", "aac", True),
        ("h264", None, True),
        ("h264", "mp3", False),
        ("h264", "pcm_s16le", False),
        ("hevc", "aac", False),
        ("mpeg4", None, False),
    ],
)
def test_probe_result_playable_needs_h264_and_aac_or_no_audio(
    video_codec: str, audio_codec: str | None, playable: bool
) -> None:
    video = make_track([0, 512], codec=video_codec)
    audio = (
        make_track([0, 1024], codec=audio_codec, media_type="audio")
        if audio_codec is not None
        else None
    )
    assert result(video, audio=audio).playable is playable


@pytest.mark.parametrize(
    ("declared", "complaints", "exit_code", "damaged", "description"),
    [
        (10.0, (), 0, False, ""),
        (
            20.0,
            (),
            0,
            True,
            "truncated: packets cover 10.00 s of the 20.00 s the container declares",
        ),
        (10.0, ("moov atom not found",), 0, True, "moov atom not found"),
        (10.0, (), 1, True, "ffmpeg exited with code 1 while reading"),
        (10.0, ("a error", "b corrupt"), 183, True, "a error; b corrupt"),
        (
            20.0,
            ("Packet corrupt",),
            1,
            True,
            "truncated: packets cover 10.00 s of the 20.00 s the container declares;"
            " Packet corrupt",
        ),
        (
            10.0,
            tuple(f"error {i}" for i in range(8)),
            0,
            True,
            "; ".join(f"error {i}" for i in range(5)),
        ),
    ],
)
def test_probe_result_describe_damage(
    declared: float,
    complaints: tuple[str, ...],
    exit_code: int,
    damaged: bool,
    description: str,
) -> None:
    r = result(TEN_SECONDS, declared=declared, complaints=complaints, exit_code=exit_code)
    assert r.damaged is damaged
    assert r.describe_damage() == description


# -- _parse_header ----------------------------------------------------------------------------

MP4_BANNER = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/data/staging/upload-k2j3h4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf59.27.100
  Duration: 00:32:05.48, start: 0.000000, bitrate: 4133 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), \
1280x720 [SAR 1:1 DAR 16:9], 4000 kb/s, 30 fps, 30 tbr, 15360 tbn (default)
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s
Output #0, framecrc, to 'pipe:':
  Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), 1280x720, q=2-31, 30 fps
Stream mapping:
  Stream #0:0 -> #0:0 (copy)
"""


def test_parse_header_reads_container_and_duration() -> None:
    container, duration = _parse_header(MP4_BANNER)
    assert container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert duration == pytest.approx(32 * 60 + 5.48)


def test_parse_header_hours_count() -> None:
    banner = (
        "Input #0, mpegts, from 'rec.ts':\n"
        "  Duration: 01:02:03.50, start: 1.400000, bitrate: 5000 kb/s\n"
    )
    assert _parse_header(banner) == ("mpegts", pytest.approx(3723.5))


def test_parse_header_unknown_duration_is_none() -> None:
    banner = "Input #0, matroska,webm, from 'live.mkv':\n  Duration: N/A, start: 0.000000\n"
    assert _parse_header(banner) == ("matroska,webm", None)


def test_parse_header_without_input_line() -> None:
    assert _parse_header("upload-x: Invalid data found when processing input\n") == (None, None)


# -- real ffmpeg ------------------------------------------------------------------------------


@pytest.fixture
def testsrc_mp4(ffmpeg: str, tmp_path: Path) -> Path:
    out = tmp_path / "testsrc.mp4"
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=30)
    return out


@pytest.mark.ffmpeg
def test_probe_real_testsrc_mp4(ffmpeg: str, testsrc_mp4: Path) -> None:
    runner = ProcessRunner(default_timeout_s=30)
    r = probe(runner, ffmpeg, testsrc_mp4, timeout_s=30)
    assert r.container is not None and "mp4" in r.container
    assert r.declared_duration_s == pytest.approx(2.0, abs=0.05)
    assert r.video is not None and r.audio is not None
    assert r.video.stream.codec == "h264"
    assert (r.video.stream.width, r.video.stream.height) == (160, 120)
    assert r.audio.stream.codec == "aac"
    assert r.video.count == 50
    assert r.video.fps == pytest.approx(25.0)
    assert r.video.start_s == pytest.approx(0.0)
    assert r.video.end_s == pytest.approx(2.0)
    assert r.video.keyframe_times().tolist() == pytest.approx([0.0, 1.0])
    assert r.video.hold_s == pytest.approx(0.04)
    assert r.video.jumps(tolerance_s=0.04) == []
    assert r.playable
    assert not r.damaged, r.describe_damage()
    assert r.audio_tracks == (AudioTrack("aac", "mono", None),)  # ffmpeg's sine: mono, "und"
    assert sniff(runner, ffmpeg, testsrc_mp4, timeout_s=30) is None
    assert runner.live_count == 0


@pytest.mark.ffmpeg
def test_probe_text_file_raises_not_video(ffmpeg: str, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    runner = ProcessRunner(default_timeout_s=30)
    # Neither video nor audio: NoMediaError, still a NotVideoError; the file named, not its folder.
    with pytest.raises(NotVideoError, match=r"notes\.mp4: holds neither video nor audio") as info:
        probe(runner, ffmpeg, text, timeout_s=30)
    assert str(tmp_path) not in str(info.value)
    reason = sniff(runner, ffmpeg, text, timeout_s=30)
    assert reason is not None and "Invalid data" in reason


# -- every audio track ------------------------------------------------------------------------

TWO_AUDIO = H264_AAC.replace(
    "#channel_layout_name 1: stereo\n",
    "#channel_layout_name 1: stereo\n#tb 2: 1/48000\n#media_type 2: audio\n"
    "#codec_id 2: pcm_s16le\n#sample_rate 2: 48000\n#channel_layout_name 2: mono\n",
)


def test_probe_result_lists_every_audio_track_with_its_language() -> None:
    streams, tracks = parse_framecrc(TWO_AUDIO)
    probed = ProbeResult(
        "mov,mp4,m4a,3gp,3g2,mj2", 1.0, streams, tracks[0], tracks[1], languages=("eng",)
    )
    assert probed.audio_tracks == (
        AudioTrack("aac", "stereo", "eng"),
        AudioTrack("pcm_s16le", "mono", None),  # no language said: none
    )
    assert probed.audio is tracks[1]  # the first track, as before


def test_probe_result_without_audio_has_no_audio_track() -> None:
    assert result(TEN_SECONDS).audio_tracks == ()


def test_probe_result_made_without_its_streams_still_has_its_audio_track() -> None:
    audio = make_track([0, 1024], codec="mp3", media_type="audio")
    probed = ProbeResult(None, None, (), None, audio)
    assert probed.audio_tracks == (AudioTrack("mp3"),)
