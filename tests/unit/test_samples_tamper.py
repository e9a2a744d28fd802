"""Tests of the sample-clip generator (transcode.samples) and the tamper helpers (tests.tamper).

Command builders are tested as argument lists; the tests marked ``ffmpeg`` render short, small
clips with a real ffmpeg and check the results with ffprobe.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.tamper import (
    cut_command,
    flip_byte,
    overlay_command,
    reencode_command,
    run,
    truncate_file,
)
from transcode.samples import SampleSpec, find_font, make_sample, sample_command

FF = "/opt/ff/bin/ffmpeg"
OUT = Path("/tmp/out/clip.mp4")


def _arg(cmd: list[str], flag: str) -> str:
    """Value following ``flag`` (the first occurrence)."""
    return cmd[cmd.index(flag) + 1]


def _graph(cmd: list[str]) -> str:
    return _arg(cmd, "-filter_complex")


# --------------------------------------------------------------------------- pure: samples


def test_sample_command_defaults_h264_mp4() -> None:
    cmd = sample_command(FF, SampleSpec(), OUT)
    assert cmd[0] == FF
    assert cmd[-1] == str(OUT)
    assert _arg(cmd, "-c:v") == "libx264"
    assert _arg(cmd, "-g") == "30"
    assert _arg(cmd, "-keyint_min") == "30"
    assert _arg(cmd, "-sc_threshold") == "0"
    assert _arg(cmd, "-b:v") == "4M"
    assert _arg(cmd, "-maxrate") == "4M"
    assert _arg(cmd, "-bufsize") == "8M"
    assert _arg(cmd, "-t") == "40"
    assert _arg(cmd, "-f") == "mp4"
    assert _arg(cmd, "-movflags") == "+faststart"
    assert _arg(cmd, "-c:a") == "aac"
    assert _arg(cmd, "-ar") == "48000"
    assert _arg(cmd, "-ac") == "1"
    assert _arg(cmd, "-fps_mode") == "passthrough"
    assert cmd.count("-map") == 2 and "[v]" in cmd and "[a]" in cmd
    graph = _graph(cmd)
    for needle in (
        "mandelbrot=size=",
        "rate=30",
        "crop=w=1280:h=720:x=",
        "sin(2*PI*t/",
        "noise=alls=6:allf=t+u:all_seed=1",
        "eq=brightness=",
        "eval=frame",
        "anoisesrc=",
        "aevalsrc=",
        "lowpass=",
    ):
        assert needle in graph, needle
    assert "select=" not in graph
    assert "drawtext" not in graph  # no font given


def test_sample_command_is_deterministic_and_seeded() -> None:
    spec = SampleSpec(seed=5)
    assert sample_command(FF, spec, OUT) == sample_command(FF, spec, OUT)
    assert _graph(sample_command(FF, SampleSpec(seed=6), OUT)) != _graph(
        sample_command(FF, spec, OUT)
    )


def test_sample_command_long_clip_chains_several_zooms() -> None:
    assert "concat" not in _graph(sample_command(FF, SampleSpec(duration_s=40.0), OUT))
    graph = _graph(sample_command(FF, SampleSpec(duration_s=100.0), OUT))
    assert graph.count("mandelbrot=") == 3
    assert "[walk0][walk1][walk2]concat=n=3:v=1:a=0," in graph
    assert "trim=end_frame=1200" in graph


def test_sample_command_gop_follows_fps_and_gop_s() -> None:
    cmd = sample_command(FF, SampleSpec(fps=25, gop_s=2.0), OUT)
    assert _arg(cmd, "-g") == "50"
    assert _arg(cmd, "-keyint_min") == "50"
    assert "rate=25" in _graph(cmd)


def test_sample_command_mpeg4_avi() -> None:
    out = Path("/tmp/x/clip.avi")
    cmd = sample_command(FF, SampleSpec(codec="mpeg4", container="avi"), out)
    assert _arg(cmd, "-c:v") == "mpeg4"
    assert _arg(cmd, "-g") == "30"
    assert _arg(cmd, "-c:a") == "pcm_s16le"
    assert _arg(cmd, "-f") == "avi"
    assert "-movflags" not in cmd
    assert cmd[-1] == str(out)


def test_sample_command_hevc_and_mjpeg_and_containers() -> None:
    hevc = sample_command(FF, SampleSpec(codec="hevc"), OUT)
    assert _arg(hevc, "-c:v") == "libx265"
    assert "keyint=30:min-keyint=30:scenecut=0" in _arg(hevc, "-x265-params")
    assert _arg(hevc, "-tag:v") == "hvc1"
    mjpeg = sample_command(FF, SampleSpec(codec="mjpeg", container="mkv"), OUT)
    assert _arg(mjpeg, "-c:v") == "mjpeg"
    assert _arg(mjpeg, "-f") == "matroska"
    ts = sample_command(FF, SampleSpec(container="ts"), OUT)
    assert _arg(ts, "-f") == "mpegts"
    assert "-movflags" not in sample_command(FF, SampleSpec(faststart=False), OUT)
    with pytest.raises(ValueError):
        SampleSpec(codec="mjpeg", container="ts")


def test_sample_command_without_audio() -> None:
    cmd = sample_command(FF, SampleSpec(audio=False), OUT)
    assert "-c:a" not in cmd
    assert "[a]" not in cmd
    assert "anoisesrc" not in _graph(cmd)


def test_sample_command_with_font_draws_overlay() -> None:
    font = Path("/fonts/Some Font.ttf")
    graph = _graph(sample_command(FF, SampleSpec(), OUT, font=font))
    assert graph.count("drawtext=") == 2
    assert f"fontfile={font}" in graph
    assert "gmtime" in graph
    assert "VIGIL BC-00001" in graph


def test_sample_command_hole() -> None:
    spec = SampleSpec(duration_s=12.0, hole_at_s=4.0, hole_s=5.0)
    cmd = sample_command(FF, spec, OUT)
    graph = _graph(cmd)
    assert _arg(cmd, "-t") == "17"  # footage + hole
    assert _arg(cmd, "-fps_mode") == "passthrough"
    assert "select=expr=lt(t\\,4.0)+gte(t\\,9.0)" in graph
    assert "aselect=expr=lt(t\\,4.0)+gte(t\\,9.0)" in graph
    # AVI audio has no timestamps: the hole is filled with silence instead of removed.
    avi = _graph(sample_command(FF, SampleSpec(container="avi", codec="mpeg4", hole_at_s=4.0), OUT))
    assert "aselect" not in avi
    assert "volume=volume=0:enable=" in avi


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 641},
        {"height": 8},
        {"duration_s": 0.0},
        {"fps": 0},
        {"gop_s": 0.0},
        {"video_bitrate": "fast"},
        {"hole_at_s": 40.0},
        {"hole_at_s": 0.0},
        {"hole_at_s": 3.0, "hole_s": 0.0},
    ],
)
def test_sample_spec_rejects_bad_values(kwargs: dict[str, float | int | str]) -> None:
    with pytest.raises(ValueError):
        SampleSpec(**kwargs)  # type: ignore[arg-type]


def test_make_sample_failure_raises_runtime_error(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        make_sample("/bin/false", SampleSpec(duration_s=1.0), out, timeout_s=10)
    with pytest.raises(RuntimeError, match="cannot run ffmpeg"):
        make_sample(str(tmp_path / "no-such-ffmpeg"), SampleSpec(duration_s=1.0), out)
    assert list(tmp_path.iterdir()) == []  # neither output nor partial file left behind


# --------------------------------------------------------------------------- pure: tamper


def test_reencode_command() -> None:
    src, out = Path("/in/a.mp4"), Path("/out/b.mp4")
    cmd = reencode_command(FF, src, out, crf=28, scale=0.5)
    assert cmd[0] == FF
    assert cmd[-1] == str(out)
    assert _arg(cmd, "-i") == str(src)
    assert _arg(cmd, "-c:v") == "libx264"
    assert _arg(cmd, "-crf") == "28"
    assert _arg(cmd, "-vf") == "scale=w=trunc(iw*0.5/2)*2:h=trunc(ih*0.5/2)*2:flags=bicubic"
    assert "0:a:0?" in cmd and _arg(cmd, "-c:a") == "aac"
    assert "-vf" not in reencode_command(FF, src, out, crf=23)
    with pytest.raises(ValueError):
        reencode_command(FF, src, out, crf=60)
    with pytest.raises(ValueError):
        reencode_command(FF, src, out, crf=23, scale=0.0)


def test_overlay_command() -> None:
    cmd = overlay_command(FF, Path("a.mp4"), Path("b.mp4"), start_s=2.0, duration_s=3.0)
    vf = _arg(cmd, "-vf")
    assert vf.startswith("drawbox=")
    assert "w=iw*0.282843:h=ih*0.282843" in vf  # 0.282843^2 == 0.08 of the frame
    assert "t=fill" in vf
    assert "enable='between(t,2,5)'" in vf
    assert _arg(cmd, "-crf") == "18"
    assert cmd[-1] == "b.mp4"
    with pytest.raises(ValueError):
        overlay_command(FF, Path("a"), Path("b"), start_s=1.0, duration_s=1.0, area=1.5)


def test_cut_command() -> None:
    cmd = cut_command(FF, Path("a.mp4"), Path("b.mp4"), at_s=3.0)
    assert _arg(cmd, "-vf") == "select='lt(t,3)+gte(t,4)',setpts=N/FRAME_RATE/TB"
    assert _arg(cmd, "-af") == "aselect='lt(t,3)+gte(t,4)',asetpts=N/SR/TB"
    assert _arg(cmd, "-crf") == "18"
    assert cmd[-1] == "b.mp4"
    longer = cut_command(FF, Path("a.mp4"), Path("b.mp4"), at_s=1.5, duration_s=2.25)
    assert "lt(t,1.5)+gte(t,3.75)" in _arg(longer, "-vf")
    with pytest.raises(ValueError):
        cut_command(FF, Path("a"), Path("b"), at_s=-1.0)


def test_truncate_file_and_flip_byte(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 4)
    out = truncate_file(src, tmp_path / "half.bin", 0.5)
    assert out.read_bytes() == src.read_bytes()[:512]
    assert truncate_file(src, tmp_path / "none.bin", 0.0).read_bytes() == b""
    flip_byte(out, 10)
    flip_byte(out, -1)
    data = out.read_bytes()
    assert data[10] == 10 ^ 0xFF and data[-1] == 255 ^ 0xFF
    assert data[:10] == bytes(range(10)) and len(data) == 512
    with pytest.raises(ValueError):
        flip_byte(out, 512)
    with pytest.raises(ValueError):
        truncate_file(src, tmp_path / "x.bin", 1.5)


def test_run_raises_with_stderr() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        run(["sh", "-c", "echo boom >&2; exit 3"], timeout_s=10)


# --------------------------------------------------------------------------- real ffmpeg


def _find_ffmpeg() -> str | None:
    env = os.environ.get("VIGIL_FFMPEG")
    if env:
        return env
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    ffprobe: str


@dataclass(frozen=True)
class Packet:
    pts: float
    key: bool


@pytest.fixture(scope="module")
def tools() -> Tools:
    ffmpeg = _find_ffmpeg()
    ffprobe = os.environ.get("VIGIL_FFPROBE") or shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        pytest.skip("ffmpeg/ffprobe not available")
    return Tools(ffmpeg=ffmpeg, ffprobe=ffprobe)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("samples")


def _probe_json(tools: Tools, path: Path, *args: str) -> object:
    out = subprocess.run(
        [tools.ffprobe, "-v", "error", "-of", "json", *args, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def _streams(tools: Tools, path: Path) -> list[dict[str, str]]:
    data = _probe_json(tools, path, "-show_entries", "stream=codec_type,codec_name,width,height")
    assert isinstance(data, dict)
    return [{k: str(v) for k, v in s.items()} for s in data["streams"]]


def _duration(tools: Tools, path: Path) -> float:
    data = _probe_json(tools, path, "-show_entries", "format=duration")
    assert isinstance(data, dict)
    return float(data["format"]["duration"])


def _packets(tools: Tools, path: Path, stream: str) -> list[Packet]:
    data = _probe_json(
        tools, path, "-select_streams", stream, "-show_entries", "packet=pts_time,flags"
    )
    assert isinstance(data, dict)
    packets = [
        Packet(pts=float(p["pts_time"]), key="K" in p["flags"])
        for p in data["packets"]
        if p.get("pts_time") not in (None, "N/A")
    ]
    return sorted(packets, key=lambda p: p.pts)


def _gaps(packets: list[Packet], minimum: float) -> list[tuple[float, float]]:
    """(pts before the gap, gap length) for every jump longer than ``minimum``."""
    pairs = itertools.pairwise(packets)
    return [(a.pts, b.pts - a.pts) for a, b in pairs if b.pts - a.pts > minimum]


def _phash(tools: Tools, path: Path, at_s: float) -> np.ndarray:
    raw = subprocess.run(
        [tools.ffmpeg, "-v", "error", "-ss", str(at_s), "-i", str(path), "-frames:v", "1",
         "-vf", "scale=32:32:flags=area,format=gray", "-f", "rawvideo", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    image = np.frombuffer(raw, np.uint8).reshape(32, 32).astype(np.float64)
    n = np.arange(32)
    dct = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 64)
    low = (dct @ image @ dct.T)[:8, :8].flatten()[1:]
    return np.asarray(low > np.median(low))


H264_SPEC = SampleSpec(duration_s=8.0, width=320, height=240, seed=3)
HOLE_SPEC = SampleSpec(duration_s=7.0, width=320, height=240, hole_at_s=3.0, audio=True)


@pytest.fixture(scope="module")
def h264_clip(tools: Tools, clips: Path) -> Path:
    return make_sample(tools.ffmpeg, H264_SPEC, clips / "h264.mp4", timeout_s=120)


@pytest.mark.ffmpeg
def test_real_h264_mp4_keyframes_at_gop_spacing(tools: Tools, h264_clip: Path) -> None:
    kinds = {s["codec_type"]: s for s in _streams(tools, h264_clip)}
    assert kinds["video"]["codec_name"] == "h264"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == ("320", "240")
    assert kinds["audio"]["codec_name"] == "aac"
    assert _duration(tools, h264_clip) == pytest.approx(8.0, abs=0.1)
    packets = _packets(tools, h264_clip, "v:0")
    assert len(packets) == 240
    keys = [p.pts for p in packets if p.key]
    assert len(keys) == 8
    spacing = np.diff(keys)
    assert np.allclose(spacing, H264_SPEC.gop_s, atol=0.01), spacing


@pytest.mark.ffmpeg
def test_real_scene_changes_over_time(tools: Tools, h264_clip: Path) -> None:
    early, late = _phash(tools, h264_clip, 0.5), _phash(tools, h264_clip, 7.5)
    assert int(np.count_nonzero(early != late)) >= 10  # of 63 bits


@pytest.mark.ffmpeg
def test_real_mpeg4_avi(tools: Tools, clips: Path) -> None:
    spec = SampleSpec(duration_s=3.0, width=320, height=240, codec="mpeg4", container="avi")
    path = make_sample(tools.ffmpeg, spec, clips / "mpeg4.avi", timeout_s=120)
    kinds = {s["codec_type"]: s["codec_name"] for s in _streams(tools, path)}
    assert kinds == {"video": "mpeg4", "audio": "pcm_s16le"}
    assert _duration(tools, path) == pytest.approx(3.0, abs=0.1)


@pytest.mark.ffmpeg
def test_real_hole_has_pts_jump(tools: Tools, clips: Path) -> None:
    spec = HOLE_SPEC
    assert spec.hole_at_s is not None
    path = make_sample(tools.ffmpeg, spec, clips / "hole.mp4", timeout_s=120)
    frame = 1.0 / spec.fps
    video = _packets(tools, path, "v:0")
    assert len(video) == round(spec.duration_s * spec.fps)
    gaps = _gaps(video, 0.5)
    assert len(gaps) == 1
    before, jump = gaps[0]
    assert before == pytest.approx(spec.hole_at_s - frame, abs=0.01)
    assert jump == pytest.approx(spec.hole_s + frame, abs=0.01)
    audio_gaps = _gaps(_packets(tools, path, "a:0"), 0.5)
    assert len(audio_gaps) == 1
    assert audio_gaps[0][0] == pytest.approx(spec.hole_at_s, abs=0.05)
    assert audio_gaps[0][1] == pytest.approx(spec.hole_s, abs=0.05)
    assert _duration(tools, path) == pytest.approx(spec.span_s, abs=0.1)


@pytest.mark.ffmpeg
def test_real_cut_copy_is_one_second_shorter(tools: Tools, h264_clip: Path, clips: Path) -> None:
    out = clips / "cut.mp4"
    run(cut_command(tools.ffmpeg, h264_clip, out, at_s=3.0), timeout_s=120)
    assert _duration(tools, h264_clip) - _duration(tools, out) == pytest.approx(1.0, abs=0.1)
    video = _packets(tools, out, "v:0")
    assert len(video) == 240 - 30
    assert _gaps(video, 0.1) == []  # re-timestamped continuously
    assert {s["codec_type"] for s in _streams(tools, out)} == {"video", "audio"}


@pytest.mark.ffmpeg
def test_real_overlay_copy_keeps_duration(tools: Tools, h264_clip: Path, clips: Path) -> None:
    out = clips / "overlay.mp4"
    run(overlay_command(tools.ffmpeg, h264_clip, out, start_s=2.0, duration_s=3.0), 120)
    assert _duration(tools, out) == pytest.approx(_duration(tools, h264_clip), abs=0.05)
    assert len(_packets(tools, out, "v:0")) == 240
    assert {s["codec_type"] for s in _streams(tools, out)} == {"video", "audio"}


@pytest.mark.ffmpeg
def test_real_reencode_half_resolution(tools: Tools, h264_clip: Path, clips: Path) -> None:
    out = clips / "half.mp4"
    run(reencode_command(tools.ffmpeg, h264_clip, out, crf=30, scale=0.5), timeout_s=120)
    video = next(s for s in _streams(tools, out) if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == ("160", "120")
    assert _duration(tools, out) == pytest.approx(8.0, abs=0.1)


def test_find_font_returns_existing_file_or_none(tmp_path: Path) -> None:
    assert find_font((tmp_path / "missing.ttf",)) is None
    font = tmp_path / "f.ttf"
    font.write_bytes(b"x")
    assert find_font((tmp_path / "missing.ttf", font)) == font
