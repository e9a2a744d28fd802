"""Test helpers that make altered copies of a clip.

The ffmpeg command builders are pure (they return the argument list, first element the ffmpeg
executable); :func:`run` executes one.  Byte-level helpers damage files directly.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Final

from tests.helpers import made_once

_GLOBAL: Final[tuple[str, ...]] = ("-hide_banner", "-nostdin", "-y", "-loglevel", "warning")
_X264: Final[tuple[str, ...]] = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
_AAC: Final[tuple[str, ...]] = ("-c:a", "aac", "-b:a", "128k")
_HIGH_QUALITY_CRF: Final = 18


def _check_crf(crf: int) -> None:
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in [0, 51], got {crf}")


def _check_window(start_s: float, duration_s: float) -> None:
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"start must be >= 0, got {start_s}")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration must be > 0, got {duration_s}")


def _num(value: float) -> str:
    """Plain decimal text for a number inside a filter expression (no exponent)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _inputs(ffmpeg: str, src: Path) -> list[str]:
    # First video stream, plus the first audio stream when there is one.
    return [ffmpeg, *_GLOBAL, "-i", str(src), "-map", "0:v:0", "-map", "0:a:0?"]


def reencode_command(
    ffmpeg: str, src: Path, out: Path, *, crf: int, scale: float = 1.0
) -> list[str]:
    """libx264 CRF re-encode of ``src``, optionally resized by ``scale`` (0.5 = half size).

    Audio is kept (re-encoded to AAC so any output container accepts it); frame timestamps are
    passed through unchanged.
    """
    _check_crf(crf)
    if not (math.isfinite(scale) and 0 < scale <= 4):
        raise ValueError(f"scale must be in (0, 4], got {scale}")
    cmd = _inputs(ffmpeg, src)
    if scale != 1.0:
        factor = _num(scale)
        cmd += [
            "-vf",
            f"scale=w=trunc(iw*{factor}/2)*2:h=trunc(ih*{factor}/2)*2:flags=bicubic",
        ]
    cmd += [*_X264, "-crf", str(crf), *_AAC, "-fps_mode", "passthrough", str(out)]
    return cmd


def overlay_command(
    ffmpeg: str,
    src: Path,
    out: Path,
    *,
    start_s: float,
    duration_s: float,
    area: float = 0.08,
) -> list[str]:
    """Hide part of the picture: a filled black box covering ``area`` of the frame (centred),
    shown from ``start_s`` for ``duration_s``; re-encoded at high quality (CRF 18)."""
    _check_window(start_s, duration_s)
    if not (math.isfinite(area) and 0 < area <= 1):
        raise ValueError(f"area must be in (0, 1], got {area}")
    side = _num(math.sqrt(area))  # box side as a fraction of the frame side: side^2 == area
    end_s = start_s + duration_s
    box = (
        f"drawbox=x=(iw-iw*{side})/2:y=(ih-ih*{side})/2:w=iw*{side}:h=ih*{side}"
        f":color=black@1:t=fill:enable='between(t,{_num(start_s)},{_num(end_s)})'"
    )
    return [
        *_inputs(ffmpeg, src),
        "-vf", box,
        *_X264, "-crf", str(_HIGH_QUALITY_CRF), *_AAC,
        "-fps_mode", "passthrough",
        str(out),
    ]  # fmt: skip


def cut_command(
    ffmpeg: str,
    src: Path,
    out: Path,
    *,
    at_s: float,
    duration_s: float = 1.0,
    keep_cadence: bool = False,
) -> list[str]:
    """Remove ``[at_s, at_s + duration_s)`` from video and audio and re-timestamp the rest
    continuously (so the splice is not visible as a timestamp jump); re-encoded at CRF 18.

    By default frames are renumbered at the stream's frame rate (``N/FRAME_RATE``), which
    also makes a variable-rate source constant-rate; with ``keep_cadence`` the frames after
    the cut only move earlier by ``duration_s``, keeping their own spacing.
    """
    _check_window(at_s, duration_s)
    end = _num(at_s + duration_s)
    keep = f"lt(t,{_num(at_s)})+gte(t,{end})"
    video, audio = "setpts=N/FRAME_RATE/TB", "asetpts=N/SR/TB"
    if keep_cadence:
        shift = f"gte(T,{end})*{_num(duration_s)}"
        video, audio = f"setpts='PTS-{shift}/TB'", f"asetpts='PTS-{shift}/TB'"
    return [
        *_inputs(ffmpeg, src),
        "-vf", f"select='{keep}',{video}",
        "-af", f"aselect='{keep}',{audio}",
        *_X264, "-crf", str(_HIGH_QUALITY_CRF), *_AAC,
        str(out),
    ]  # fmt: skip


def _video_only(ffmpeg: str, src: Path) -> list[str]:
    return [ffmpeg, *_GLOBAL, "-i", str(src), "-map", "0:v:0", "-an"]


def _encode(crf: int = _HIGH_QUALITY_CRF) -> list[str]:
    return [*_X264, "-crf", str(crf)]


def remux_command(ffmpeg: str, src: Path, out: Path) -> list[str]:
    """Stream-copy every video and audio packet into a new container (``out``'s suffix),
    generating presentation times where the source has none (AVI)."""
    return [
        ffmpeg, *_GLOBAL, "-fflags", "+genpts", "-i", str(src),
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", str(out),
    ]  # fmt: skip


def resample_command(ffmpeg: str, src: Path, out: Path, *, fps: float) -> list[str]:
    """Re-encode the video at a constant ``fps`` (frames dropped or repeated by ffmpeg); the
    audio is kept (AAC), as a benign conversion keeps it."""
    return [*_inputs(ffmpeg, src), "-vf", f"fps={_num(fps)}", *_encode(23), *_AAC, str(out)]


def drop_frames_command(
    ffmpeg: str, src: Path, out: Path, *, first: int, frames: int, shift_s: float, retime: bool
) -> list[str]:
    """Drop ``frames`` consecutive decoded frames from frame number ``first``. With ``retime``
    the frames after move earlier by ``shift_s`` (no hole); without, every kept frame keeps
    its time, so the hole is in the timestamps."""
    if first < 0 or frames < 1:
        raise ValueError(f"bad frame range: first {first}, {frames} frames")
    chain = f"select='not(between(n,{first},{first + frames - 1}))'"
    if retime:
        shift = f"gte(N,{first})*{_num(shift_s)}"
        return [*_video_only(ffmpeg, src), "-vf", f"{chain},setpts='PTS-{shift}/TB'",
                *_encode(), str(out)]  # fmt: skip
    return [*_video_only(ffmpeg, src), "-vf", chain, "-fps_mode", "passthrough",
            *_encode(), str(out)]  # fmt: skip


def freeze_command(ffmpeg: str, src: Path, out: Path, *, first: int, last: int) -> list[str]:
    """Replace decoded frames ``first``..``last`` with frame ``first`` held (same length)."""
    if not 0 <= first <= last:
        raise ValueError(f"bad frame range {first}..{last}")
    graph = f"[0:v]split[a][b];[a][b]freezeframes=first={first}:last={last}:replace={first}"
    return [ffmpeg, *_GLOBAL, "-i", str(src), "-filter_complex", graph, "-an",
            *_encode(), str(out)]  # fmt: skip


def insert_command(
    ffmpeg: str, src: Path, out: Path, *, at_s: float, duration_s: float
) -> list[str]:
    """Insert ``duration_s`` of other footage (the clip's opening, mirrored and in negative)
    at ``at_s``; everything after moves later."""
    _check_window(at_s, duration_s)
    at, d = _num(at_s), _num(duration_s)
    graph = (
        f"[0:v]split=3[a][b][c];[a]trim=end={at},setpts=PTS-STARTPTS[p];"
        f"[b]trim=start={at},setpts=PTS-STARTPTS[q];"
        f"[c]trim=end={d},setpts=PTS-STARTPTS,hflip,negate[i];[p][i][q]concat=n=3:v=1:a=0"
    )
    return [ffmpeg, *_GLOBAL, "-i", str(src), "-filter_complex", graph, "-an",
            *_encode(), str(out)]  # fmt: skip


def tail_cut_command(ffmpeg: str, src: Path, out: Path, *, keep_s: float) -> list[str]:
    """Keep only the first ``keep_s`` seconds (re-encoded)."""
    _check_window(0.0, keep_s)
    return [*_video_only(ffmpeg, src), "-t", _num(keep_s), *_encode(), str(out)]


def truncate_file(src: Path, out: Path, fraction: float) -> Path:
    """Copy only the first ``fraction`` (0..1) of ``src``'s bytes to ``out``; return ``out``."""
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    keep = int(src.stat().st_size * fraction)
    with src.open("rb") as reader, out.open("wb") as writer:
        remaining = keep
        while remaining > 0:
            chunk = reader.read(min(remaining, 1 << 20))
            if not chunk:
                break
            writer.write(chunk)
            remaining -= len(chunk)
    return out


def flip_byte(path: Path, offset: int) -> None:
    """XOR the byte at ``offset`` (negative counts from the end) with 0xFF, in place."""
    size = path.stat().st_size
    position = offset + size if offset < 0 else offset
    if not 0 <= position < size:
        raise ValueError(f"offset {offset} outside file of {size} bytes")
    with path.open("r+b") as handle:
        handle.seek(position)
        original = handle.read(1)
        handle.seek(position)
        handle.write(bytes([original[0] ^ 0xFF]))


def copy_file(src: Path, out: Path) -> Path:
    """Plain byte copy (convenience for tests that then damage the copy)."""
    shutil.copyfile(src, out)
    return out


def run(cmd: list[str], timeout_s: float = 300) -> None:
    """Run an ffmpeg command (its output made once, then copied from the test footage's cache:
    ``tests.helpers.made_once``); raise ``RuntimeError`` with the tail of its stderr on
    failure."""
    made_once(cmd, lambda: _run(cmd, timeout_s))


def _run(cmd: list[str], timeout_s: float) -> None:
    try:
        subprocess.run(
            cmd, timeout=timeout_s, check=True, stdin=subprocess.DEVNULL, capture_output=True
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"command failed (exit {exc.returncode}): {' '.join(cmd[:3])} ...\n{_tail(exc.stderr)}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"command timed out after {timeout_s} s\n{_tail(exc.stderr)}") from exc


def _tail(stderr: bytes | str | None, lines: int = 15) -> str:
    if stderr is None:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return "\n".join(text.strip().splitlines()[-lines:])


# -- audio edits with the pictures left alone (issue 16) -------------------------------------
# Each copy keeps the source's video packets (stream copy; ``video`` can ask for a re-encode,
# e.g. VP8 for WebM) and re-encodes the first audio track (AAC 192k unless told otherwise),
# so only the sound differs from the original. Times are on the source's own timeline.

_AUDIO_EDIT_CODEC: Final[tuple[str, ...]] = ("-c:a", "aac", "-b:a", "192k")
_STEREO_48K: Final = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"


def _keep_video(ffmpeg: str, src: Path, video: tuple[str, ...]) -> list[str]:
    # +genpts: stream copy out of AVI needs presentation times.
    return [ffmpeg, *_GLOBAL, "-fflags", "+genpts", "-i", str(src), "-map", "0:v:0", *video]


def audio_transcode_command(
    ffmpeg: str,
    src: Path,
    out: Path,
    *,
    audio: tuple[str, ...],
    video: tuple[str, ...] = ("-c:v", "copy"),
) -> list[str]:
    """A benign audio conversion: the first audio track re-encoded with ``audio`` (codec,
    bitrate, ``-ar``, ``-ac``), the video stream-copied (or encoded with ``video``)."""
    return [*_keep_video(ffmpeg, src, video), "-map", "0:a:0", *audio, str(out)]


def audio_filter_command(
    ffmpeg: str,
    src: Path,
    out: Path,
    *,
    af: str,
    audio: tuple[str, ...] = _AUDIO_EDIT_CODEC,
) -> list[str]:
    """The first audio track through the filter chain ``af``; video stream-copied."""
    return [*_keep_video(ffmpeg, src, ("-c:v", "copy")), "-map", "0:a:0", "-af", af,
            *audio, str(out)]  # fmt: skip


def audio_mute_command(
    ffmpeg: str, src: Path, out: Path, *, start_s: float, duration_s: float
) -> list[str]:
    """Silence ``[start_s, start_s + duration_s]`` of the audio; video stream-copied."""
    _check_window(start_s, duration_s)
    a, b = _num(start_s), _num(start_s + duration_s)
    return audio_filter_command(ffmpeg, src, out, af=f"volume=enable='between(t,{a},{b})':volume=0")


def audio_cut_command(
    ffmpeg: str, src: Path, out: Path, *, at_s: float, duration_s: float
) -> list[str]:
    """Remove ``[at_s, at_s + duration_s)`` of the audio only: the audio after it moves
    ``duration_s`` earlier (its own cadence kept), the video is stream-copied untouched."""
    _check_window(at_s, duration_s)
    end, d = _num(at_s + duration_s), _num(duration_s)
    af = f"aselect='lt(t,{_num(at_s)})+gte(t,{end})',asetpts='PTS-gte(T,{end})*{d}/TB'"
    return audio_filter_command(ffmpeg, src, out, af=af)


def audio_delay_command(ffmpeg: str, src: Path, out: Path, *, delay_s: float) -> list[str]:
    """The whole audio track ``delay_s`` later against the (stream-copied) video: its
    timestamps moved, its samples untouched but re-encoded."""
    if not (math.isfinite(delay_s) and delay_s > 0):
        raise ValueError(f"delay must be > 0, got {delay_s}")
    return [
        ffmpeg, *_GLOBAL, "-fflags", "+genpts", "-i", str(src),
        "-itsoffset", _num(delay_s), "-fflags", "+genpts", "-i", str(src),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *_AUDIO_EDIT_CODEC, str(out),
    ]  # fmt: skip


def other_speech_source(seconds: float) -> str:
    """A lavfi source of speech-like sound unlike ``tests``' synthetic clip: another voice
    (higher, faster-gliding pitch, a 5 Hz syllable rate), stereo 48 kHz."""
    f0 = "(330+120*sin(2*PI*1.1*t))"
    return (
        f"aevalsrc='(0.3*sin(2*PI*{f0}*t)+0.15*sin(4*PI*{f0}*t)+0.05*sin(6*PI*{f0}*t))"
        f"*max(0,sin(2*PI*5*t+0.5))':s=48000:d={_num(seconds)}:c=stereo"
    )


def audio_replace_command(
    ffmpeg: str, src: Path, out: Path, *, start_s: float, duration_s: float, source: str
) -> list[str]:
    """Replace ``[start_s, start_s + duration_s]`` of the audio with ``source``: "noise"
    (pink noise at a speaking level) or "speech" (``other_speech_source``); the rest of the
    audio and the (stream-copied) video are untouched. The sound is mixed at 48 kHz stereo."""
    _check_window(start_s, duration_s)
    a, b = _num(start_s), _num(start_s + duration_s)
    length = _num(start_s + duration_s + 1)
    other = {
        "noise": f"anoisesrc=c=pink:a=0.15:r=48000:d={length}:seed=11",
        "speech": other_speech_source(start_s + duration_s + 1),
    }[source]
    graph = (
        f"{other},{_STEREO_48K},volume=enable='not(between(t,{a},{b}))':volume=0[o];"
        f"[0:a:0]{_STEREO_48K},volume=enable='between(t,{a},{b})':volume=0[m];"
        "[m][o]amix=inputs=2:duration=first:normalize=0[a]"
    )
    return [*_keep_video(ffmpeg, src, ("-c:v", "copy")), "-filter_complex", graph,
            "-map", "[a]", *_AUDIO_EDIT_CODEC, str(out)]  # fmt: skip


def audio_tone_command(
    ffmpeg: str,
    src: Path,
    out: Path,
    *,
    start_s: float,
    duration_s: float,
    level_db: float = -20.0,
    hz: float = 1000.0,
) -> list[str]:
    """Mix a ``hz`` sine at ``level_db`` dBFS into ``[start_s, start_s + duration_s]`` of the
    audio (the rest untouched); video stream-copied. Mixed at 48 kHz stereo."""
    _check_window(start_s, duration_s)
    a, b = _num(start_s), _num(start_s + duration_s)
    graph = (
        f"sine=f={_num(hz)}:r=48000:d={_num(start_s + duration_s + 1)},{_STEREO_48K},"
        f"volume={_num(level_db)}dB,volume=enable='not(between(t,{a},{b}))':volume=0[t];"
        f"[0:a:0]{_STEREO_48K}[m];[m][t]amix=inputs=2:duration=first:normalize=0[a]"
    )
    return [*_keep_video(ffmpeg, src, ("-c:v", "copy")), "-filter_complex", graph,
            "-map", "[a]", *_AUDIO_EDIT_CODEC, str(out)]  # fmt: skip


def packet_at(ffmpeg: str, path: Path, stream: str, at_s: float) -> tuple[int, int]:
    """The byte offset and size in ``path`` of the first packet of ``stream`` (an ffprobe
    stream specifier, ``v:0``) that starts at or after ``at_s`` seconds."""
    ffprobe = str(Path(ffmpeg).with_name("ffprobe"))
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", stream, "-show_entries",
         "packet=pts_time,pos,size", "-of", "compact=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        got = dict(f.split("=", 1) for f in line.strip().split("|") if "=" in f)
        pts, pos = got.get("pts_time", "N/A"), got.get("pos", "N/A")
        if pts != "N/A" and pos != "N/A" and float(pts) >= at_s:
            return int(pos), int(got["size"])
    raise ValueError(f"no packet of {stream} at or after {at_s} s in {path.name}")
