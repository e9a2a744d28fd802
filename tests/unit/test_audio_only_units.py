"""Audio-only recordings, piece by piece: the ffmpeg command lines, the segment container and
playback decision, the cadence rule on audio packet times, what is catalogued from the probe,
and (with the real ffmpeg) the probe, the sniff and the audio-only review proxy."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from vigil_verify.continuity import cadence
from vigil_verify.errors import ErrorKind

from catalog.repository import Catalog
from ingest.custody import record_probe
from transcode.commands import (
    ProxyJob,
    SegmentJob,
    first_packet_command,
    probe_video_many_command,
    proxy_command,
    segment_command,
)
from transcode.ffmpeg import ProcessRunner
from transcode.probe import (
    NO_MEDIA,
    NoMediaError,
    NotVideoError,
    ProbeError,
    ProbeResult,
    StreamInfo,
    Track,
    probe,
    sniff,
)
from transcode.proxy_settings import ProxySettings
from transcode.segmenter import container_for, make_proxy, playable, proxy_audio

FF = "/usr/bin/ffmpeg"
SOURCE = Path("/data/in/interview.m4a")


def maps(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-map"]


def value_after(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


# -- command lines ----------------------------------------------------------------------------


def test_an_audio_only_source_is_cut_on_its_audio_alone() -> None:
    job = SegmentJob(SOURCE, Path("/w"), 10.0, "mpegts", audio=True, cuts=(469, 938), video=False)
    cmd = segment_command(FF, job)
    assert maps(cmd) == ["0:a"]  # every audio track; no video asked for (there is none)
    assert value_after(cmd, "-c") == "copy"
    assert value_after(cmd, "-segment_frames") == "469,938"  # audio packets, all key packets
    assert job.media == "audio"
    video = segment_command(FF, SegmentJob(SOURCE, Path("/w"), 10.0, "mpegts", audio=True))
    assert maps(video) == ["0:v:0", "0:a?"]  # the video, and every audio track


def test_the_audio_only_proxy_is_aac_without_any_video_encoder() -> None:
    job = ProxyJob(SOURCE, Path("/w"), 10.0, "aac", video=False)
    cmd = proxy_command(FF, job)
    assert maps(cmd) == ["0:a:0"]
    assert "-vn" in cmd
    assert "libx264" not in cmd and "-force_key_frames" not in cmd
    assert value_after(cmd, "-c:a") == "aac"
    assert value_after(cmd, "-segment_format") == "mpegts"
    with pytest.raises(ValueError, match="audio-only proxy"):
        proxy_command(FF, ProxyJob(SOURCE, Path("/w"), 10.0, "none", video=False))
    assert "libx264" in proxy_command(FF, ProxyJob(SOURCE, Path("/w"), 10.0, "aac"))


def test_first_packet_and_many_probes_read_the_audio_of_audio_only_files() -> None:
    cmd = first_packet_command(FF, SOURCE, "audio")
    assert maps(cmd) == ["0:a"]
    assert value_after(cmd, "-frames:a:0") == "1"
    many = probe_video_many_command(FF, [Path("/a.ts"), Path("/b.ts")], "audio")
    assert maps(many) == ["0:a:0", "1:a:0", "0:a?", "1:a?"]
    assert maps(probe_video_many_command(FF, [Path("/a.ts")])) == ["0:v:0", "0:a?"]


# -- container and playback -------------------------------------------------------------------


def track(media: str, codec: str, *, step: int = 1024, rate: int = 48000, n: int = 100) -> Track:
    info = StreamInfo(0, media, codec, Fraction(1, rate), sample_rate=rate)
    pts = np.arange(n, dtype=np.int64) * step
    return Track(
        info, pts, np.full(n, step, dtype=np.int64), np.full(n, 200, dtype=np.int64),
        np.ones(n, dtype=np.bool_),
    )  # fmt: skip


def audio_only(codec: str) -> ProbeResult:
    return ProbeResult("mov,mp4,m4a", 2.1, (), video=None, audio=track("audio", codec))


@pytest.mark.parametrize(
    ("codec", "container", "plays"),
    [
        ("aac", "mpegts", True),
        ("mp3", "mpegts", True),
        ("ac3", "mpegts", False),  # MPEG-TS carries it, a browser does not play it
        ("opus", "matroska", False),
        ("pcm_s16le", "matroska", False),
        ("flac", "matroska", False),
    ],
)
def test_audio_only_container_and_playback(codec: str, container: str, plays: bool) -> None:
    probed = audio_only(codec)
    assert probed.audio_only
    assert probed.primary is probed.audio
    assert container_for(probed) == container
    assert playable(probed) is plays
    assert probed.playable is (codec in ("aac", "mp3"))


def test_video_playback_rule_is_unchanged() -> None:
    h264 = track("video", "h264", step=3000, rate=90000)
    with_mp3 = ProbeResult(None, None, (), video=h264, audio=track("audio", "mp3"))
    with_aac = ProbeResult(None, None, (), video=h264, audio=track("audio", "aac"))
    assert not playable(with_mp3)  # H.264 + MP3 still gets a proxy
    assert playable(with_aac)
    assert with_aac.primary is h264 and not with_aac.audio_only


def test_an_audio_only_proxy_gets_aac_unless_the_source_plays() -> None:
    assert proxy_audio("opus") == "aac"
    assert proxy_audio("pcm_s16le") == "aac"
    assert proxy_audio("aac") == "copy"


def test_truncation_is_judged_on_the_audio_of_an_audio_only_recording() -> None:
    short = ProbeResult(None, 10.0, (), video=None, audio=track("audio", "aac", n=100))
    assert short.truncated  # 100 packets of 1024/48000 s: 2.1 s of the 10 s declared
    assert "truncated: packets cover 2.13 s of the 10.00 s" in short.describe_damage()
    assert not audio_only("aac").truncated


def test_a_result_with_neither_stream_has_no_primary_track() -> None:
    with pytest.raises(NoMediaError):
        _ = ProbeResult(None, None, (), video=None, audio=None).primary


# -- the cadence rule on audio packet times ---------------------------------------------------


@pytest.mark.parametrize(
    ("step_s", "jitter_s"),
    [
        (1024 / 48000, 0.0),  # AAC 48 kHz
        (1152 / 44100, 0.0),  # MP3 44.1 kHz
        (0.020, 0.001),  # Opus in Matroska: 20 ms packets on a 1 ms clock
        (2048 / 16000, 0.0),  # PCM from WAV: 4 KiB packets of 16 kHz mono
    ],
)
def test_steady_audio_packets_have_no_gap_and_a_dropout_is_one(
    step_s: float, jitter_s: float
) -> None:
    rng = np.random.default_rng(3)
    times = np.arange(1000) * step_s + rng.choice([-jitter_s, 0.0, jitter_s], 1000)
    times.sort()
    assert cadence(times, 1.0).holes() == []
    lost = np.delete(times, np.arange(500, 540))  # 40 packets missing
    holes = cadence(lost, 1.0).holes()
    assert len(holes) == 1
    start, end = holes[0]
    assert start == pytest.approx(times[499] + step_s, abs=2 * jitter_s + 1e-9)
    assert end == pytest.approx(times[540])


def test_a_single_lost_packet_is_within_the_tolerance_as_for_a_frame() -> None:
    times = np.delete(np.arange(200) * (1024 / 48000), 100)
    assert cadence(times, 1.0).holes() == []  # one missing interval: the usual tolerance


# -- what is catalogued -----------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def update_recording(self, recording_id: str, **values: Any) -> None:
        self.values = {"id": recording_id, **values}


def test_record_probe_of_an_audio_only_recording() -> None:
    recorder = _Recorder()
    record_probe(cast(Catalog, recorder), "rec-1", audio_only("aac"), status="segmenting")
    assert recorder.values == {
        "id": "rec-1",
        "video_codec": None,
        "audio_codec": "aac",
        "width": None,
        "height": None,
        "fps": None,
        "frame_hold_s": pytest.approx(1024 / 48000),
        "audio_tracks": 1,
        "status": "segmenting",
    }


# -- with the real ffmpeg ---------------------------------------------------------------------


def _ffmpeg(ffmpeg: str, *args: str) -> None:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.ffmpeg
def test_probe_and_sniff_an_audio_only_file(ffmpeg: str, tmp_path: Path) -> None:
    m4a = tmp_path / "interview.m4a"
    _ffmpeg(ffmpeg, "-f", "lavfi", "-i", "sine=d=3:sample_rate=48000", "-c:a", "aac", str(m4a))
    runner = ProcessRunner(default_timeout_s=30)
    found = probe(runner, ffmpeg, m4a, timeout_s=30)
    assert found.video is None and found.audio is not None
    assert found.audio.stream.codec == "aac"
    assert found.audio.end_s - found.audio.start_s == pytest.approx(3.0, abs=0.05)
    assert not found.damaged, found.describe_damage()
    assert sniff(runner, ffmpeg, m4a, timeout_s=30) is None
    # Keyframes need pictures: the live path's probe with keyframes still refuses it.
    with pytest.raises(NotVideoError, match="no readable video stream"):
        probe(runner, ffmpeg, m4a, timeout_s=30, keyframes_to=tmp_path / "k.raw")


@pytest.mark.ffmpeg
def test_a_container_with_neither_stream_says_so(ffmpeg: str, tmp_path: Path) -> None:
    srt = tmp_path / "notes.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    captions = tmp_path / "captions.mp4"
    _ffmpeg(ffmpeg, "-i", str(srt), "-c:s", "mov_text", str(captions))
    runner = ProcessRunner(default_timeout_s=30)
    assert sniff(runner, ffmpeg, captions, timeout_s=30) == NO_MEDIA
    with pytest.raises(NoMediaError, match=f"^captions.mp4: {NO_MEDIA}") as info:
        probe(runner, ffmpeg, captions, timeout_s=30)
    assert isinstance(info.value, NotVideoError) and isinstance(info.value, ProbeError)
    assert info.value.kind is ErrorKind.INVALID
    assert str(tmp_path) not in str(info.value)


@pytest.mark.ffmpeg
@pytest.mark.parametrize("video", [False, None])  # told, or found out
def test_make_proxy_of_an_audio_only_source_is_aac_audio_only(
    ffmpeg: str, tmp_path: Path, video: bool | None
) -> None:
    wav = tmp_path / "recorder.wav"
    _ffmpeg(
        ffmpeg, "-f", "lavfi", "-i", "sine=d=5:sample_rate=16000", "-c:a", "pcm_s16le", str(wav)
    )
    runner = ProcessRunner(default_timeout_s=60)
    made = make_proxy(
        runner, ffmpeg, wav, tmp_path / "proxy", audio="aac", segment_s=2.0,
        proxy=ProxySettings(), timeout_s=60, video=video,
    )  # fmt: skip
    assert len(made) >= 2
    assert made[0].start_s == pytest.approx(0.0, abs=0.05)
    assert made[-1].end_s == pytest.approx(5.0, abs=0.1)
    for item in made:
        found = probe(runner, ffmpeg, item.path, timeout_s=30)
        assert found.video is None
        assert [s.media_type for s in found.streams] == ["audio"]
        assert found.audio is not None and found.audio.stream.codec == "aac"
