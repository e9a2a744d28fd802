"""Unit tests for transcode.commands: the ffmpeg command lines, checked as lists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from vigil_verify.packets import Stream

from transcode.commands import (
    ProxyJob,
    SegmentContainer,
    SegmentJob,
    first_packet_command,
    gray_frames_command,
    keyframes_command,
    live_command,
    probe_command,
    probe_video_many_command,
    proxy_command,
    segment_command,
    sniff_command,
)
from transcode.proxy_settings import ProxySettings

FF = "/opt/ffmpeg/bin/ffmpeg"
SOURCE = Path("/evidence/in put/rec 01.mp4")
OUT = Path("/work/seg out")


def job(container: str = "mpegts", audio: bool = True, segment_s: float = 10.0) -> SegmentJob:
    return SegmentJob(SOURCE, OUT, segment_s, container, audio)  # type: ignore[arg-type]


def proxy_job(audio: str = "aac", segment_s: float = 10.0, **kw: object) -> ProxyJob:
    return ProxyJob(SOURCE, OUT, segment_s, audio, **kw)  # type: ignore[arg-type]


def value_after(cmd: list[str], flag: str) -> str:
    """The argument that follows ``flag`` (which must occur exactly once)."""
    assert cmd.count(flag) == 1, f"{flag} occurs {cmd.count(flag)} times in {cmd}"
    return cmd[cmd.index(flag) + 1]


def maps(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-map"]


# -- segment_command: the custody path's stream copy ------------------------------------------


def test_segment_command_starts_with_executable_and_quiet_progress_options() -> None:
    cmd = segment_command(FF, job())
    assert cmd[0] == FF
    assert cmd[1:4] == ["-hide_banner", "-nostdin", "-nostats"]
    assert value_after(cmd, "-progress") == "pipe:2"


def test_segment_command_keeps_source_timestamps() -> None:
    cmd = segment_command(FF, job())
    # -copyts is an input-side option: it must come before -i.
    assert cmd.index("-copyts") < cmd.index("-i")
    assert value_after(cmd, "-i") == str(SOURCE)
    assert value_after(cmd, "-muxdelay") == "0"
    assert value_after(cmd, "-muxpreload") == "0"
    assert value_after(cmd, "-reset_timestamps") == "0"


@pytest.mark.parametrize("container", ["mpegts", "matroska"])
def test_segment_command_copies_every_stream_and_never_encodes(container: str) -> None:
    cmd = segment_command(FF, job(container))
    assert value_after(cmd, "-c") == "copy"
    for flag in (
        "-c:v", "-c:a", "-force_key_frames", "-preset", "-crf", "-vf", "-pix_fmt", "-b:a",
    ):  # fmt: skip
        assert flag not in cmd
    assert "libx264" not in cmd


def test_segment_command_writes_mpegts_segments_and_csv_list() -> None:
    cmd = segment_command(FF, job())
    assert value_after(cmd, "-f") == "segment"
    assert value_after(cmd, "-segment_format") == "mpegts"
    assert value_after(cmd, "-segment_list") == str(OUT / "segments.csv")
    assert value_after(cmd, "-segment_list_type") == "csv"
    assert cmd[-2:] == ["-y", str(OUT / "seg-%05d.ts")]
    assert "-fflags" not in cmd


def test_segment_command_matroska_for_codecs_mpegts_cannot_carry() -> None:
    cmd = segment_command(FF, job("matroska"))
    assert value_after(cmd, "-segment_format") == "matroska"
    assert cmd[-2:] == ["-y", str(OUT / "seg-%05d.mkv")]
    # AVI packets without PTS (B-frames) get generated ones; Matroska cannot store none.
    inputs = cmd[: cmd.index("-i")]
    assert value_after(inputs, "-fflags") == "+genpts"
    assert "-muxdelay" not in cmd  # an MPEG-TS option
    # written bit-exact (no random UIDs): the same cut of the original makes the same bytes
    output_flags = cmd.index("-fflags", cmd.index("-i"))
    assert cmd[output_flags + 1] == "+bitexact" and output_flags < cmd.index("-segment_list")


def test_segment_job_paths_live_in_out_dir() -> None:
    j = job()
    assert j.pattern == OUT / "seg-%05d.ts"
    assert j.segment_list == OUT / "segments.csv"


@pytest.mark.parametrize(
    ("audio", "expected_maps"), [(True, ["0:v:0", "0:a?"]), (False, ["0:v:0"])]
)
def test_segment_command_maps_audio_only_when_there_is_some(
    audio: bool, expected_maps: list[str]
) -> None:
    # Every audio track, not only the first: each is evidence, each byte-copied.
    assert maps(segment_command(FF, job(audio=audio))) == expected_maps


@pytest.mark.parametrize("container", ["mpegts", "matroska"])
def test_segment_command_keeps_every_audio_track_of_an_audio_only_source(
    container: SegmentContainer,
) -> None:
    j = SegmentJob(SOURCE, OUT, 10.0, container, audio=True, cuts=(469,), video=False)
    cmd = segment_command(FF, j)
    assert maps(cmd) == ["0:a"]  # not optional: the audio is all there is
    assert value_after(cmd, "-c") == "copy"
    assert value_after(cmd, "-segment_frames") == "469"  # counted on the first track


# -- proxy_command: the transcode path --------------------------------------------------------


def test_proxy_command_uses_proxy_settings() -> None:
    proxy = ProxySettings(preset="slow", crf=19, audio_bitrate="128k", threads=2)
    cmd = proxy_command(FF, proxy_job(audio="aac", proxy=proxy))
    assert value_after(cmd, "-c:v") == "libx264"
    assert value_after(cmd, "-preset") == "slow"
    assert value_after(cmd, "-crf") == "19"
    assert value_after(cmd, "-pix_fmt") == "yuv420p"
    assert value_after(cmd, "-profile:v") == "high"
    assert value_after(cmd, "-threads") == "2"
    # One output frame per source frame: none invented or dropped for variable-rate sources.
    assert value_after(cmd, "-fps_mode") == "passthrough"
    assert value_after(cmd, "-b:a") == "128k"
    assert cmd.index("-copyts") < cmd.index("-i")
    assert value_after(cmd, "-segment_format") == "mpegts"
    assert value_after(cmd, "-segment_list") == str(OUT / "proxy.csv")
    assert cmd[-2:] == ["-y", str(OUT / "proxy-%05d.ts")]


def test_the_proxy_bitrate_is_capped_by_the_picture_area() -> None:
    """Issue 18: a noisy source must not make a proxy of 9 Mb/s; the cap scales with the
    picture (4000k at 720p), has a floor, and is absent when the size is not known."""
    capped = proxy_command(FF, proxy_job(size=(1280, 720)))
    assert value_after(capped, "-maxrate") == "4000k"
    assert value_after(capped, "-bufsize") == "8000k"
    assert value_after(proxy_command(FF, proxy_job(size=(3840, 2160))), "-maxrate") == "36000k"
    assert value_after(proxy_command(FF, proxy_job(size=(320, 240))), "-maxrate") == "1000k"
    assert "-maxrate" not in proxy_command(FF, proxy_job())
    assert capped.index("-maxrate") < capped.index(str(OUT / "proxy-%05d.ts"))


def test_the_proxy_bitrate_is_capped_by_the_sources_own() -> None:
    """Issue 18: at most 0.3 of the source's bitrate (a re-encode shows nothing its source
    did not have), not below 250k, never above the picture's cap."""

    def cap(kbps: float) -> str:
        return value_after(
            proxy_command(FF, proxy_job(size=(1280, 720), source_kbps=kbps)), "-maxrate"
        )

    assert cap(4800) == "1440k"
    assert cap(300) == "250k"
    assert cap(20000) == "4000k"


def test_a_small_picture_gets_the_preset_that_keeps_more_of_it() -> None:
    """At most half of 720p30's pixels a second: superfast (above 3x realtime per core there);
    larger, or the rate unknown: ultrafast."""

    def preset(size: tuple[int, int], fps: float | None) -> str:
        return value_after(proxy_command(FF, proxy_job(size=size, fps=fps)), "-preset")

    assert preset((720, 528), 29.97) == "superfast"  # Megamind.avi
    assert preset((1280, 720), 15.0) == "superfast"
    assert preset((1280, 720), 30.0) == "ultrafast"
    assert preset((720, 528), None) == "ultrafast"
    never = ProxySettings(small_preset=None)
    assert (
        value_after(proxy_command(FF, proxy_job(size=(320, 240), fps=10.0, proxy=never)), "-preset")
        == "ultrafast"
    )


@pytest.mark.parametrize(
    ("segment_s", "expected"),
    [(10.0, "10"), (2.5, "2.5"), (6, "6"), (0.75, "0.75")],
)
def test_proxy_command_forces_keyframes_at_each_segment_boundary(
    segment_s: float, expected: str
) -> None:
    cmd = proxy_command(FF, proxy_job(segment_s=segment_s))
    assert value_after(cmd, "-force_key_frames") == f"expr:gte(t,n_forced*{expected})"
    assert value_after(cmd, "-segment_time") == expected


@pytest.mark.parametrize(
    ("audio", "expected_maps", "audio_args"),
    [
        ("copy", ["0:v:0", "0:a:0?"], ["-c:a", "copy"]),
        ("aac", ["0:v:0", "0:a:0?"], ["-c:a", "aac", "-b:a", "96k", "-ac", "2"]),
        ("none", ["0:v:0"], []),
    ],
)
def test_proxy_command_audio_plan(
    audio: str, expected_maps: list[str], audio_args: list[str]
) -> None:
    cmd = proxy_command(FF, proxy_job(audio=audio))
    assert maps(cmd) == expected_maps
    if audio_args:
        start = cmd.index("-c:a")
        assert cmd[start : start + len(audio_args)] == audio_args
    else:
        assert "-c:a" not in cmd
        assert "-b:a" not in cmd


def test_proxy_command_output_options_follow_the_input() -> None:
    cmd = proxy_command(FF, proxy_job())
    i = cmd.index("-i")
    for flag in ("-map", "-c:v", "-c:a", "-force_key_frames", "-f", "-segment_list"):
        assert cmd.index(flag) > i, flag


# -- keyframes_command: keyframe-only decode for the custody path's perceptual hashes --------


def test_keyframes_command_decodes_only_keyframes_at_64x64_gray_with_their_times() -> None:
    cmd = keyframes_command(FF, SOURCE)
    assert cmd[0] == FF
    # -skip_frame is a decoder (input) option: before -i, or it does nothing.
    assert value_after(cmd, "-skip_frame") == "nokey"
    assert cmd.index("-skip_frame") < cmd.index("-i") > cmd.index("-copyts")
    # One decoding thread (a decoder option too): frame threads only slow a keyframe-only decode
    assert value_after(cmd, "-threads") == "1"
    assert cmd.index("-threads") < cmd.index("-i")
    # Without passthrough, the skipped frames come out as duplicates at the full frame count.
    assert value_after(cmd, "-fps_mode") == "passthrough"
    assert value_after(cmd, "-vf") == "scale=64:64:flags=area,format=gray,showinfo"
    assert maps(cmd) == ["0:v:0"]
    assert cmd[-5:] == ["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]


def test_first_packet_command_reads_one_video_packet_on_file_timestamps() -> None:
    cmd = first_packet_command(FF, SOURCE)
    assert cmd.index("-copyts") < cmd.index("-i")
    assert value_after(cmd, "-frames:v") == "1"
    assert value_after(cmd, "-c") == "copy"
    assert value_after(cmd, "-f") == "framecrc"
    # Every audio track too, as the segmenter wrote them: dropping one moves the video of a
    # first MPEG-TS segment (ffmpeg's start-time correction; see commands.UNSHIFTED).
    assert maps(cmd) == ["0:v:0", "0:a?"]


def test_first_packet_command_of_audio_only_reads_every_track_and_stops_on_the_first() -> None:
    cmd = first_packet_command(FF, SOURCE, "audio")
    assert maps(cmd) == ["0:a"]  # output stream 0: the first audio track
    # Only the first track's first packet ends the run: were every track limited to one
    # packet, a second track's packet coming first would end it before the first's.
    assert value_after(cmd, "-frames:a:0") == "1"
    assert "-frames:a" not in cmd and "-frames:v" not in cmd


# -- probe / sniff ----------------------------------------------------------------------------


def test_probe_command_copies_all_video_and_audio_to_framecrc_on_stdout() -> None:
    cmd = probe_command(FF, SOURCE)
    assert cmd == [
        FF, "-hide_banner", "-nostdin", "-nostats", "-copyts", "-i", str(SOURCE),
        "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "framecrc", "-",
    ]  # fmt: skip


def test_probe_command_with_keyframes_decodes_them_as_keyframes_command_does() -> None:
    cmd = probe_command(FF, SOURCE, keyframes_to=Path("/tmp/k.raw"))
    before_input = cmd[: cmd.index("-i")]
    assert value_after(before_input, "-skip_frame") == "nokey"
    assert value_after(before_input, "-threads") == "1"
    keyframes = keyframes_command(FF, SOURCE)
    listed = cmd.index("framecrc") + 2  # the packet listing's destination, "-"
    assert cmd[listed:] == [*keyframes[keyframes.index("-map") : -1], "-y", "/tmp/k.raw"]


def test_probe_command_does_not_ask_for_progress() -> None:
    # framecrc goes to stdout and the banner to stderr; -progress would mix into the banner.
    assert "-progress" not in probe_command(FF, SOURCE)


def test_sniff_command_reads_one_video_and_one_audio_packet() -> None:
    cmd = sniff_command(FF, SOURCE)
    assert cmd[0] == FF
    assert value_after(cmd, "-i") == str(SOURCE)
    assert maps(cmd) == ["0:v:0?", "0:a:0?"]  # an audio-only recording is readable too
    assert value_after(cmd, "-c") == "copy"
    assert value_after(cmd, "-frames:v") == "1"
    assert value_after(cmd, "-frames:a") == "1"
    assert value_after(cmd, "-f") == "framecrc"
    assert cmd[-1] == "-"
    assert "-copyts" not in cmd


# -- gray_frames_command ----------------------------------------------------------------------


def filter_graph(cmd: list[str]) -> str:
    return value_after(cmd, "-filter_complex")


def test_gray_frames_command_fps_filter_carries_rate_and_start_time() -> None:
    cmd = gray_frames_command(FF, SOURCE, rate=10, start_time=1.5, copyts=True)
    graph = filter_graph(cmd)
    assert "fps=fps=10:start_time=1.500000" in graph


def test_gray_frames_command_fps_rate_keeps_fractions() -> None:
    cmd = gray_frames_command(FF, SOURCE, rate=12.5, start_time=0.0, copyts=False)
    assert "fps=fps=12.5:start_time=0.000000" in filter_graph(cmd)


def test_gray_frames_command_filters_run_fps_then_area_scale_then_gray() -> None:
    graph = filter_graph(gray_frames_command(FF, SOURCE, rate=10, start_time=0, copyts=False))
    fps_at = graph.index("fps=")
    scale_at = graph.index("scale=64:64:flags=area")
    gray_at = graph.index("format=gray")
    assert fps_at < scale_at < gray_at
    assert graph.startswith("[0:v]")


def test_gray_frames_command_side_sets_the_scale() -> None:
    graph = filter_graph(
        gray_frames_command(FF, SOURCE, rate=5, start_time=0, copyts=False, side=32)
    )
    assert "scale=32:32:flags=area" in graph
    assert "64" not in graph


def test_gray_frames_command_writes_raw_gray_to_pipe_without_audio_or_subtitles() -> None:
    cmd = gray_frames_command(FF, SOURCE, rate=10, start_time=0, copyts=False)
    assert cmd[0] == FF
    assert cmd[1:4] == ["-hide_banner", "-nostdin", "-nostats"]
    assert value_after(cmd, "-i") == str(SOURCE)
    assert value_after(cmd, "-f") == "rawvideo"
    assert value_after(cmd, "-pix_fmt") == "gray"
    assert "-an" in cmd
    assert "-sn" in cmd
    assert cmd[-1] == "pipe:"
    assert len(maps(cmd)) == 1


def test_gray_frames_command_copyts_only_when_asked() -> None:
    with_ts = gray_frames_command(FF, SOURCE, rate=10, start_time=3.0, copyts=True)
    without = gray_frames_command(FF, SOURCE, rate=10, start_time=3.0, copyts=False)
    assert with_ts.count("-copyts") == 1
    assert with_ts.index("-copyts") < with_ts.index("-i")
    assert "-copyts" not in without
    assert [a for a in with_ts if a != "-copyts"] == without


def test_probe_video_many_command_maps_each_input_video_in_order() -> None:
    sources = [Path(f"/w/seg-{i:05d}.ts") for i in range(3)]
    cmd = probe_video_many_command(FF, sources)
    assert cmd[0] == FF
    assert "-copyts" in cmd
    inputs = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-i"]
    assert inputs == [str(p) for p in sources]
    maps = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-map"]
    # Output stream i is the video of input i; every audio track after them, only read
    # (UNSHIFTED).
    assert maps == ["0:v:0", "1:v:0", "2:v:0", "0:a?", "1:a?", "2:a?"]
    assert cmd[-5:] == ["-c", "copy", "-f", "framecrc", "-"]


def test_probe_video_many_command_of_audio_only_files_puts_each_first_track_first() -> None:
    cmd = probe_video_many_command(FF, [Path("/a.ts"), Path("/b.ts")], "audio")
    # Output stream i: the first audio track of input i; then all the tracks of each again
    # (a first track read twice costs little; one left unread could move the others).
    assert maps(cmd) == ["0:a:0", "1:a:0", "0:a?", "1:a?"]


def test_live_command_writes_each_packet_once_into_its_segments() -> None:
    out = Path("/w/live")
    cmd = live_command(FF, "rtsp://cam/stream", out, segment_s=10)
    assert cmd[0] == FF
    assert cmd[cmd.index("-i") + 1] == "rtsp://cam/stream"
    assert cmd.index("-copyts") < cmd.index("-i")
    assert cmd.count("-c") == 1
    assert cmd.count("copy") == 1  # a stream copy: nothing re-encoded
    segment_at = cmd.index("segment")
    assert cmd[segment_at - 1] == "-f"
    assert cmd[cmd.index("-segment_list") + 1] == "/w/live/segments.csv"
    # One output: the segments are the stream as received (no second copy of the stream)
    assert cmd[-2:] == ["-y", "/w/live/seg-%05d.ts"]


# -- live sessions: pull, RTMP listener, retime (workers.live) ---------------------------------


def outputs(cmd: list[str]) -> list[str]:
    """The output targets, in order: the argument after each ``-y``, then stdout."""
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-y"] + cmd[-1:]


def test_live_pull_command_pulls_rtsp_over_tcp_with_a_socket_timeout() -> None:
    from transcode.commands import live_pull_command

    out = Path("/w/a0001")
    cmd = live_pull_command(FF, "rtsp://cam/stream", out, segment_s=10, io_timeout_s=5)
    assert cmd[0] == FF
    before_input = cmd[: cmd.index("-i")]
    assert value_after(before_input, "-rtsp_transport") == "tcp"
    assert value_after(before_input, "-timeout") == "5000000"  # µs: RTSP's own socket timeout
    assert "-rw_timeout" not in cmd  # the generic one does not reach RTSP's sockets
    assert "-copyts" in before_input
    assert "-reconnect" not in cmd  # a loss is a recorded gap, never papered over by ffmpeg
    assert outputs(cmd) == ["/w/a0001/seg-%05d.ts", "pipe:1"]


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5/cam.ts", "https://cam/live.ts", "tcp://10.0.0.5:9000", "rtmp://srv/app/k"],
)
def test_live_pull_command_uses_rw_timeout_for_other_protocols(url: str) -> None:
    from transcode.commands import live_pull_command

    out = Path("/w/a0002")
    cmd = live_pull_command(FF, url, out, segment_s=4, io_timeout_s=2.5)
    assert cmd[cmd.index("-i") + 1] == url
    assert value_after(cmd, "-rw_timeout") == "2500000"
    # Never -timeout: for rtmp:// it would turn the pull into a listener.
    assert "-timeout" not in cmd
    assert "-listen" not in cmd


def test_live_listen_command_waits_for_one_rtmp_publisher() -> None:
    from transcode.commands import live_listen_command

    out = Path("/w/a0003")
    url = "rtmp://0.0.0.0:1935/live/CAM-EAST-GATE"
    cmd = live_listen_command(FF, url, out, segment_s=10, io_timeout_s=10, wait_s=299.2)
    before_input = cmd[: cmd.index("-i")]
    assert cmd[cmd.index("-i") + 1] == url
    assert value_after(before_input, "-listen") == "1"
    assert value_after(before_input, "-timeout") == "300"  # whole seconds, rounded up
    assert value_after(before_input, "-rw_timeout") == "10000000"
    assert "-copyts" in before_input
    assert outputs(cmd) == ["/w/a0003/seg-%05d.ts", "pipe:1"]
    forever = live_listen_command(FF, url, out, segment_s=10, io_timeout_s=10, wait_s=None)
    assert "-timeout" not in forever


def test_live_listen_command_only_listens_for_rtmp() -> None:
    from transcode.commands import live_listen_command

    with pytest.raises(ValueError, match="rtmp://"):
        live_listen_command(
            FF, "http://0.0.0.0:8080/", Path("/w"), segment_s=10,
            io_timeout_s=10, wait_s=None,
        )  # fmt: skip


def test_live_sessions_add_a_per_packet_arrivals_output_on_stdout() -> None:
    from transcode.commands import LIVE_ARRIVALS, live_command, live_listen_command

    out = Path("/w/a0004")
    base = live_command(FF, "rtmp://x/a/b", out, segment_s=10)
    cmd = live_listen_command(
        FF, "rtmp://x/a/b", out, segment_s=10,
        io_timeout_s=5, wait_s=None,
    )  # fmt: skip
    assert cmd[-len(LIVE_ARRIVALS) :] == LIVE_ARRIVALS
    # The segments are exactly those of a one-session recording.
    assert cmd[cmd.index("-i") + 2 : -len(LIVE_ARRIVALS)] == base[base.index("-i") + 2 :]
    assert maps(LIVE_ARRIVALS) == ["0:v:0"]  # video packets only: one line per frame
    assert value_after(LIVE_ARRIVALS, "-c") == "copy"
    assert value_after(LIVE_ARRIVALS, "-f") == "framecrc"
    assert value_after(LIVE_ARRIVALS, "-flush_packets") == "1"  # each line as it happens


def test_retime_command_moves_timestamps_without_touching_packets() -> None:
    from transcode.commands import retime_command

    src, dst = Path("/w/seg-00003.ts"), Path("/w/retimed-seg-00003.ts")
    cmd = retime_command(FF, src, dst, shift_s=37.1234567)
    assert cmd[0] == FF
    assert cmd.index("-copyts") < cmd.index("-itsoffset") < cmd.index("-i")
    assert value_after(cmd, "-itsoffset") == "37.123457"
    assert value_after(cmd, "-i") == str(src)
    assert value_after(cmd, "-c") == "copy"
    assert maps(cmd) == ["0:v", "0:a?"]
    assert value_after(cmd, "-muxdelay") == "0"
    assert cmd[-2:] == ["-y", str(dst)]
    assert value_after(retime_command(FF, src, dst, shift_s=-0.5), "-itsoffset") == "-0.500000"


@pytest.mark.ffmpeg
def test_retime_command_shifts_every_packet_by_exactly_the_shift(
    ffmpeg: str, tmp_path: Path
) -> None:
    """Run it: the same packets, every timestamp moved by the shift (to the 90 kHz tick)."""
    import subprocess

    from transcode.commands import retime_command

    src, dst = tmp_path / "a.ts", tmp_path / "b.ts"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=160x120:rate=15", "-f", "lavfi", "-i", "sine=sample_rate=16000",
         "-t", "2", "-c:v", "libx264", "-g", "15", "-c:a", "aac", "-f", "mpegts", str(src)],
        check=True,
    )  # fmt: skip
    subprocess.run(retime_command(ffmpeg, src, dst, shift_s=12.345), check=True)

    def packets(path: Path) -> list[tuple[str, int, int, str]]:
        text = subprocess.run(
            [ffmpeg, "-hide_banner", "-copyts", "-i", str(path), "-map", "0", "-c", "copy",
             "-f", "framecrc", "-"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rows = [line.split(",") for line in text.splitlines() if not line.startswith("#")]
        return [(r[0], int(r[2]), int(r[4]), r[5].strip()) for r in rows]

    before, after = packets(src), packets(dst)
    assert len(before) == len(after) > 30
    shift = round(12.345 * 90000)
    for (stream, pts, size, crc), (stream2, pts2, size2, crc2) in zip(before, after, strict=True):
        assert (stream2, size2, crc2) == (stream, size, crc)  # the packet, untouched
        assert abs(pts2 - pts - shift) <= 1  # 1/90000 s


def test_a_cut_again_runs_custodys_command_with_its_listing_thrown_away() -> None:
    """Issue 18: the listing is part of the command (it changes the times ffmpeg gives a
    source with B-frames), so a cut again keeps it, to the null muxer, hashing nothing."""
    streams = (Stream(0, "h264"), Stream(1, "aac"))
    job = SegmentJob(SOURCE, OUT, 10.0, cuts=(300,), packets=streams)
    listed = segment_command(FF, job)
    again = segment_command(FF, replace(job, packets_discarded=True))
    assert listed[-3:] == ["sha256", "-y", str(job.packets_list)]
    assert again[-3:] == ["-f", "null", "-"] and "-hash" not in again
    cut = listed.index("framehash") - 1
    assert again[:cut] == listed[:cut]  # the same run up to the second output's format
