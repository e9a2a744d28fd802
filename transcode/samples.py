"""Synthetic body-camera-like sample clips.

Used by the demo command (when the user gives no clip) and by tests and benchmarks.

The scene is a slowly zooming Mandelbrot fractal (so that the picture keeps changing: different
10 s stretches look different to a perceptual hash), seen through a panning, bobbing crop window
(an officer walking), desaturated, with a slight brightness flicker, temporal sensor noise and an
optional burnt-in device/timestamp overlay.  Audio is pink noise plus speech-band "syllable"
bursts, band-limited like a body-camera microphone.

Optionally the recording has a *hole*: frames (and audio) for ``hole_s`` seconds starting at
``hole_at_s`` are missing while the timestamps carry on, so packet timestamps jump forward by
``hole_s`` (as when a real camera loses a few seconds to a storage hiccup).  The scene keeps
evolving during the hole, so the content jumps as well.

``sample_command`` is pure (it only builds the ffmpeg argument list); ``make_sample`` runs it.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

Codec = Literal["h264", "mpeg4", "mjpeg", "hevc"]
Container = Literal["mp4", "avi", "mkv", "ts"]

DEFAULT_FONT_CANDIDATES: Final[tuple[Path, ...]] = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
    Path("/usr/share/fonts/liberation/LiberationSans-Regular.ttf"),
    Path("/System/Library/Fonts/Supplemental/Arial.ttf"),
    Path("C:/Windows/Fonts/arial.ttf"),
)

# Points on the boundary of the Mandelbrot set that stay detailed while zooming in.
_ZOOM_TARGETS: Final[tuple[tuple[float, float], ...]] = (
    (-0.743643887037158704752191506114774, 0.131825904205311970493132056385139),
    (0.001643721971153, -0.822467633298876),
    (-0.235125, 0.827215),
    (-0.16, 1.0405),
    (-1.25066, 0.02012),
)
_START_SCALE: Final = 1.2
_ZOOM_PER_S: Final = math.log(100.0) / 40.0  # the view narrows 100x over 40 s (~3.2x per 10 s)
# Zooming deeper than ~100x needs ever more iterations; a long clip is made of several zooms
# ("walks") of this length towards different targets, joined by a cut (turning a corner).
_WALK_S: Final = 40.0
_MAXITER: Final = 300
_CANVAS_FACTOR: Final = 1.25  # the crop window pans over a canvas this much larger than the frame
_EPOCH_BASE: Final = 1_715_695_407  # 2024-05-14 14:03:27 UTC, burnt-in clock start for seed 0

_BITRATE_RE: Final = re.compile(r"^[0-9]+(\.[0-9]+)?[kKM]?$")

_CONTAINER_FORMAT: Final[dict[Container, str]] = {
    "mp4": "mp4",
    "avi": "avi",
    "mkv": "matroska",
    "ts": "mpegts",
}
_UNSUPPORTED: Final[frozenset[tuple[Codec, Container]]] = frozenset({("mjpeg", "ts")})


@dataclass(frozen=True)
class SampleSpec:
    """Parameters of a synthetic body-camera-like clip.

    ``duration_s`` is the amount of recorded footage.  With a hole the timeline spans
    ``duration_s + hole_s`` seconds, of which ``hole_s`` (from ``hole_at_s``) hold no frames.
    """

    duration_s: float = 40.0
    width: int = 1280
    height: int = 720
    fps: int = 30
    gop_s: float = 1.0  # keyframe interval, like real body cams
    video_bitrate: str = "4M"  # ~ body-cam 720p
    codec: Codec = "h264"  # non-h264 codecs produce footage that needs transcoding
    container: Container = "mp4"
    audio: bool = True  # AAC mono 48 kHz (mp4/mkv/ts), PCM s16le mono 48 kHz in avi
    faststart: bool = True  # moov at the front (mp4 only)
    hole_at_s: float | None = None  # timestamps jump forward by hole_s at this point
    hole_s: float = 5.0
    seed: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        for name, value in (("width", self.width), ("height", self.height)):
            if value < 16 or value % 2:
                raise ValueError(f"{name} must be an even number >= 16, got {value}")
        if not 1 <= self.fps <= 240:
            raise ValueError(f"fps must be in [1, 240], got {self.fps}")
        if not (math.isfinite(self.gop_s) and self.gop_s > 0):
            raise ValueError(f"gop_s must be > 0, got {self.gop_s}")
        if not _BITRATE_RE.match(self.video_bitrate):
            raise ValueError(
                f"video_bitrate must look like '4M' or '800k', got {self.video_bitrate!r}"
            )
        if self.hole_at_s is not None:
            if not (math.isfinite(self.hole_at_s) and 0 < self.hole_at_s < self.duration_s):
                raise ValueError(
                    f"hole_at_s must be inside (0, duration_s={self.duration_s}),"
                    f" got {self.hole_at_s}"
                )
            if not (math.isfinite(self.hole_s) and self.hole_s > 0):
                raise ValueError(f"hole_s must be > 0, got {self.hole_s}")
        if (self.codec, self.container) in _UNSUPPORTED:
            raise ValueError(f"codec {self.codec} cannot be stored in container {self.container}")

    @property
    def gop_frames(self) -> int:
        """Keyframe interval in frames."""
        return max(1, round(self.fps * self.gop_s))

    @property
    def span_s(self) -> float:
        """Length of the timeline: the footage plus the hole, if any."""
        return self.duration_s + (self.hole_s if self.hole_at_s is not None else 0.0)

    @property
    def suffix(self) -> str:
        """File-name suffix matching the container, e.g. ``.mp4``."""
        return "." + self.container


# --------------------------------------------------------------------------- escaping helpers


def _escape_value(value: str) -> str:
    """Escape a filter option value (second level: ``key=value:key=value``)."""
    return re.sub(r"([\\':])", r"\\\1", value)


def _escape_graph(args: str) -> str:
    """Escape filter arguments for the filtergraph description (first level)."""
    return re.sub(r"([\\'\[\],;])", r"\\\1", args)


def _filter(name: str, *options: tuple[str, str | int | float]) -> str:
    """One filter of a filtergraph, ``name=k=v:k=v`` with every value properly escaped."""
    if not options:
        return name
    args = ":".join(f"{key}={_escape_value(_fmt(value))}" for key, value in options)
    return f"{name}={_escape_graph(args)}"


def _fmt(value: str | int | float) -> str:
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    return str(value)


def _drawtext_literal(text: str) -> str:
    """Protect literal text from drawtext's own ``%{...}`` expansion."""
    return text.replace("\\", "\\\\").replace("%", "\\%")


def _even(value: float) -> int:
    return max(2, round(value / 2.0) * 2)


# --------------------------------------------------------------------------- graph builders


def _video_chain(spec: SampleSpec, font: Path | None) -> str:
    rng = random.Random(spec.seed)
    canvas_w = _even(spec.width * _CANVAS_FACTOR)
    canvas_h = _even(spec.height * _CANVAS_FACTOR)
    # Render the fractal at reduced resolution (it is the costly part) and scale it up.
    render_w = min(canvas_w, max(canvas_w // 3, 480))
    render_h = _even(render_w * canvas_h / canvas_w)
    render_w = _even(render_w)
    pan_period = 19.0 + 8.0 * rng.random()
    tilt_period = 13.0 + 6.0 * rng.random()
    pan_phase = round(2 * math.pi * rng.random(), 4)
    tilt_phase = round(2 * math.pi * rng.random(), 4)
    step_hz = round(1.6 + 0.4 * rng.random(), 3)  # walking cadence: vertical bob
    flicker_hz = round(0.5 + 0.5 * rng.random(), 3)

    source = _fractal_source(spec, render_w, render_h)
    chain = [
        _filter("scale", ("w", canvas_w), ("h", canvas_h), ("flags", "bicubic")),
        _filter(
            "crop",
            ("w", spec.width),
            ("h", spec.height),
            ("x", f"(iw-ow)/2*(1+0.85*sin(2*PI*t/{pan_period:.3f}+{pan_phase}))"),
            (
                "y",
                f"(ih-oh)/2*(1+0.5*sin(2*PI*t/{tilt_period:.3f}+{tilt_phase})"
                f"+0.3*abs(sin(PI*{step_hz}*t)))",
            ),
        ),
        _filter("hue", ("s", 0.4)),
        _filter("format", ("pix_fmts", "yuv420p")),
        _filter(
            "eq",
            (
                "brightness",
                f"0.03*sin(2*PI*{flicker_hz}*t)+0.015*sin(2*PI*3.7*t+{tilt_phase})",
            ),
            ("eval", "frame"),
        ),
        _filter("noise", ("alls", 6), ("allf", "t+u"), ("all_seed", spec.seed)),
    ]
    if spec.hole_at_s is not None:
        chain.append(_filter("select", ("expr", _keep_outside_hole(spec))))
    if font is not None:
        chain.extend(_overlay_filters(spec, font))
    return source + ",".join(chain)


def _fractal_source(spec: SampleSpec, width: int, height: int) -> str:
    """Graph prefix producing the zooming fractal; the caller appends ``,filter,...``."""
    walk_frames = max(1, round(_WALK_S * spec.fps))
    total_frames = max(1, math.ceil(spec.span_s * spec.fps))
    walks = math.ceil(total_frames / walk_frames)
    parts: list[str] = []
    for index in range(walks):
        frames = min(walk_frames, total_frames - index * walk_frames)
        target_x, target_y = _ZOOM_TARGETS[(spec.seed + index) % len(_ZOOM_TARGETS)]
        end_scale = _START_SCALE * math.exp(-_ZOOM_PER_S * frames / spec.fps)
        parts.append(
            _filter(
                "mandelbrot",
                ("size", f"{width}x{height}"),
                ("rate", spec.fps),
                ("maxiter", _MAXITER),
                ("start_x", target_x),
                ("start_y", target_y),
                ("start_scale", _START_SCALE),
                ("end_scale", float(f"{end_scale:.6g}")),
                ("end_pts", frames),  # in frames
            )
        )
    if walks == 1:
        return parts[0] + ","
    trimmed = [
        f"{part},{_filter('trim', ('end_frame', walk_frames))}[walk{index}]"
        for index, part in enumerate(parts)
    ]
    labels = "".join(f"[walk{index}]" for index in range(walks))
    concat = _filter("concat", ("n", walks), ("v", 1), ("a", 0))
    return ";".join(trimmed) + f";{labels}{concat},"


def _keep_outside_hole(spec: SampleSpec) -> str:
    assert spec.hole_at_s is not None
    start = spec.hole_at_s
    end = spec.hole_at_s + spec.hole_s
    return f"lt(t,{start!r})+gte(t,{end!r})"


def _overlay_filters(spec: SampleSpec, font: Path) -> list[str]:
    size = max(10, spec.height // 28)
    margin = max(4, spec.height // 60)
    epoch = _EPOCH_BASE + 86_400 * (spec.seed % 365) + 3_600 * (spec.seed % 7)
    # drawtext expansion: arguments of %{...} are separated by ':', so escape the format's ':'.
    clock = "%{pts:gmtime:" + str(epoch) + ":%Y-%m-%d %H\\:%M\\:%S}"
    device = _drawtext_literal(f"VIGIL BC-{spec.seed % 100000:05d}  {spec.fps}FPS  REC")
    common: tuple[tuple[str, str | int | float], ...] = (
        ("fontfile", str(font)),
        ("fontsize", size),
        ("fontcolor", "white"),
        ("box", 1),
        ("boxcolor", "black@0.45"),
        ("boxborderw", max(2, size // 5)),
    )
    return [
        _filter("drawtext", *common, ("text", clock), ("x", margin), ("y", margin)),
        _filter("drawtext", *common, ("text", device), ("x", margin), ("y", f"h-th-{margin}")),
    ]


def _audio_chain(spec: SampleSpec) -> str:
    rng = random.Random(spec.seed * 7919 + 17)
    phase = round(2 * math.pi * rng.random(), 4)
    pitch = round(140.0 + 80.0 * rng.random(), 2)
    syllable_hz = round(2.6 + 1.2 * rng.random(), 3)
    speech = (
        f"0.18*(sin(2*PI*{pitch}*t)+0.5*sin(2*PI*{2 * pitch}*t)+0.3*sin(2*PI*{3 * pitch}*t))"
        f"*pow(max(0,sin(2*PI*{syllable_hz}*t)),2)"
        f"*gt(sin(2*PI*0.13*t+{phase}),-0.2)"
        f"+0.03*sin(2*PI*1000*t)*gt(sin(2*PI*0.05*t+{phase}),0.97)"  # occasional radio beep
    )
    noise = _filter(
        "anoisesrc",
        ("sample_rate", 48000),
        ("color", "pink"),
        ("amplitude", 0.04),
        ("seed", spec.seed),
    )
    tones = _filter(
        "aevalsrc", ("exprs", speech), ("sample_rate", 48000), ("channel_layout", "mono")
    )
    post = [
        _filter("amix", ("inputs", 2), ("normalize", 0)),
        _filter("highpass", ("f", 120)),
        _filter("lowpass", ("f", 3800)),
    ]
    if spec.hole_at_s is not None:
        if spec.container == "avi":
            # AVI audio carries no timestamps: a gap would be closed up and put the sound out of
            # sync, so (as real AVI recorders do) the hole is filled with silence instead.
            post.append(
                _filter("volume", ("volume", 0), ("enable", f"not({_keep_outside_hole(spec)})"))
            )
        else:
            post.append(_filter("aselect", ("expr", _keep_outside_hole(spec))))
    post.append(
        _filter(
            "aformat", ("sample_fmts", "fltp"), ("sample_rates", 48000), ("channel_layouts", "mono")
        )
    )
    return f"{noise}[an];{tones}[at];[an][at]{','.join(post)}"


def _video_codec_args(spec: SampleSpec) -> list[str]:
    gop = str(spec.gop_frames)
    rate = spec.video_bitrate
    if spec.codec == "h264":
        return [
            "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high",
            "-pix_fmt", "yuv420p",
            "-b:v", rate, "-maxrate", rate, "-bufsize", _double_rate(rate),
            "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        ]  # fmt: skip
    if spec.codec == "hevc":
        args = [
            "-c:v", "libx265", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-b:v", rate, "-maxrate", rate, "-bufsize", _double_rate(rate),
            "-g", gop, "-keyint_min", gop,
            "-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error",
        ]  # fmt: skip
        if spec.container == "mp4":
            args += ["-tag:v", "hvc1"]
        return args
    if spec.codec == "mpeg4":
        return [
            "-c:v", "mpeg4", "-pix_fmt", "yuv420p",
            "-b:v", rate, "-maxrate", rate, "-bufsize", _double_rate(rate),
            "-g", gop, "-bf", "0",
        ]  # fmt: skip
    # mjpeg: intra-only, every frame is a keyframe.
    return ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-b:v", rate, "-g", "1"]


def _double_rate(rate: str) -> str:
    match = re.match(r"^([0-9.]+)(.*)$", rate)
    assert match is not None
    number = float(match.group(1)) * 2
    return f"{_fmt(number)}{match.group(2)}"


def _audio_codec_args(spec: SampleSpec) -> list[str]:
    if spec.container == "avi":
        return ["-c:a", "pcm_s16le", "-ar", "48000", "-ac", "1"]
    return ["-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "1"]


def sample_command(
    ffmpeg: str, spec: SampleSpec, out: Path, *, font: Path | None = None
) -> list[str]:
    """Build the ffmpeg command line that renders ``spec`` into ``out`` (pure).

    ``font`` is a TrueType font for the burnt-in timestamp/device overlay; ``None`` skips it.
    """
    graph = f"{_video_chain(spec, font)}[v]"
    if spec.audio:
        graph += f";{_audio_chain(spec)}[a]"
    epoch = _EPOCH_BASE + 86_400 * (spec.seed % 365) + 3_600 * (spec.seed % 7)
    creation = _iso_utc(epoch)
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "warning",
        "-filter_complex", graph,
        "-map", "[v]",
    ]  # fmt: skip
    if spec.audio:
        cmd += ["-map", "[a]"]
    cmd += _video_codec_args(spec)
    if spec.audio:
        cmd += _audio_codec_args(spec)
    # Keep frame timestamps exactly as produced (a hole must stay a hole, no duplicated frames).
    cmd += ["-fps_mode", "passthrough"]
    cmd += ["-t", _fmt(round(spec.span_s, 6))]
    cmd += ["-metadata", f"creation_time={creation}"]
    if spec.container == "mp4" and spec.faststart:
        cmd += ["-movflags", "+faststart"]
    cmd += ["-f", _CONTAINER_FORMAT[spec.container], str(out)]
    return cmd


def _iso_utc(epoch: int) -> str:
    days, rem = divmod(epoch, 86_400)
    hours, rem = divmod(rem, 3_600)
    minutes, seconds = divmod(rem, 60)
    # civil-from-days (Howard Hinnant), avoids any dependence on the local time zone.
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y += 1 if m <= 2 else 0
    return f"{y:04d}-{m:02d}-{d:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.000000Z"


def find_font(candidates: tuple[Path, ...] = DEFAULT_FONT_CANDIDATES) -> Path | None:
    """First existing font among ``candidates`` (for the burnt-in overlay), or ``None``."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def _stderr_tail(stderr: bytes | str | None, lines: int = 15) -> str:
    if stderr is None:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return "\n".join(text.strip().splitlines()[-lines:])


def make_sample(
    ffmpeg: str,
    spec: SampleSpec,
    out: Path,
    timeout_s: float = 300,
    *,
    font: Path | None = None,
    overlay: bool = True,
) -> Path:
    """Render ``spec`` into ``out`` and return ``out``.

    The overlay uses ``font`` or, when ``None``, the first font found by :func:`find_font`; it
    is skipped when ``overlay`` is false or no font is available.  The file is written under a
    temporary name and renamed, so ``out`` never holds a partial clip.  Raises ``RuntimeError``
    (with the tail of ffmpeg's stderr) when ffmpeg fails or times out.
    """
    if overlay and font is None:
        font = find_font()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    cmd = sample_command(ffmpeg, spec, partial, font=font if overlay else None)
    try:
        subprocess.run(
            cmd, timeout=timeout_s, check=True, stdin=subprocess.DEVNULL, capture_output=True
        )
    except subprocess.CalledProcessError as exc:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"ffmpeg failed (exit {exc.returncode}) making {out}:\n{_stderr_tail(exc.stderr)}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"ffmpeg timed out after {timeout_s} s making {out}:\n{_stderr_tail(exc.stderr)}"
        ) from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"cannot run ffmpeg {ffmpeg!r}: {exc}") from exc
    partial.replace(out)
    return out
