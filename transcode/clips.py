"""A clip of a recording's window, cut from its evidence segments into an MP4.

The segments are never changed: ffmpeg reads them and writes a new file. How it is cut is
decided by a pure function (``clip_method``) and every command line is built by one
(``clip_command``), so that tests check the lists; ``cut_clip`` runs them through the
project's ``ProcessRunner`` with its timeout.

- **copy**: the window starts on a keyframe (every segment starts on one, and the catalogue
  keeps each keyframe's time), so the packets are copied as recorded, from that keyframe to
  the end of the window. Nothing is decoded.
- **h264**: the window starts between keyframes; a copy would start on a picture that cannot be
  decoded on its own, or earlier than the window. The whole clip is re-encoded with x264 (the
  simplest honest choice: every frame of the window, from its first, and no frame before it).

Times: the segments carry the original's own timestamps (cut with ``-copyts``), so a moment
``t`` of the recording's timeline is at ``origin + t`` in them (``seek_s``); the clip's own
timeline starts at 0 at the window's start (``clip_command`` says how each way gets there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from transcode.commands import BASE
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools

ClipMethod = Literal["copy", "h264"]

KEYFRAME_TOLERANCE_S = 0.001
"""How near a keyframe a window's start must be for the clip to start on it (1 ms: well under
a frame at any rate a camera records, and above the microsecond rounding of stored times)."""

TRIM_EARLY_S = 0.0005
"""A re-encode keeps frames from this far before the window's start: the window's first frame
is kept whatever the microsecond rounding of stored times, and the frame before it (a frame
earlier) is not."""

_START = re.compile(r"Duration: .*?, start: (?P<start>-?[0-9]+(?:\.[0-9]+)?)")


class ClipError(TranscodeError):
    """A clip could not be cut (no segments, an empty window); the message says why."""


@dataclass(frozen=True)
class ClipJob:
    """Cut ``sources`` (a recording's consecutive segments, in order) to ``dest``.

    ``seek_s`` and ``length_s`` are on the segments' own timestamps (the original's); the clip
    starts at ``seek_s``. ``matroska``: the segments are Matroska (concat demuxer, from
    ``concat_list``), else MPEG-TS (read back to back with the concat protocol)."""

    sources: tuple[Path, ...]
    dest: Path
    seek_s: float
    length_s: float
    method: ClipMethod
    matroska: bool = False
    concat_list: Path | None = None
    preset: str = "veryfast"
    crf: int = 18


def starts_on_keyframe(start_s: float, keyframes: Sequence[float]) -> bool:
    """Is ``start_s`` (recording timeline) a keyframe's time, within ``KEYFRAME_TOLERANCE_S``?"""
    return any(abs(start_s - k) <= KEYFRAME_TOLERANCE_S for k in keyframes)


def clip_method(start_s: float, keyframes: Sequence[float]) -> ClipMethod:
    """Stream copy when the window starts on a keyframe, else a whole re-encode."""
    return "copy" if starts_on_keyframe(start_s, keyframes) else "h264"


def concat_list_text(sources: Sequence[Path]) -> str:
    """The concat demuxer's list of ``sources`` (each path quoted as the demuxer wants)."""
    lines = ["ffconcat version 1.0"]
    for source in sources:
        escaped = str(source.resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    return "\n".join(lines) + "\n"


def _input(job: ClipJob) -> list[str]:
    if job.matroska:
        if job.concat_list is None:
            raise ClipError("Matroska segments are read from a concat list; none was given")
        return ["-f", "concat", "-safe", "0", "-i", str(job.concat_list)]
    return ["-i", "concat:" + "|".join(str(s) for s in job.sources)]


def start_command(ffmpeg: str, job: ClipJob) -> list[str]:
    """Open the segments as the clip reads them and stop: ffmpeg prints the input's start time
    (the earliest timestamp of any stream) and exits (no output named)."""
    return [ffmpeg, *BASE, *_input(job)]


def parse_start(stderr: str) -> float:
    """The input's ``start:`` (seconds) from ffmpeg's description of it."""
    found = _START.search(stderr)
    if found is None:
        raise ClipError("ffmpeg did not say where the segments start")
    return float(found["start"])


def _microseconds(seconds: float) -> int:
    return round(seconds * 1e6)


def clip_command(ffmpeg: str, job: ClipJob, input_start: float) -> list[str]:
    """The ffmpeg command that cuts ``job``: the first video stream and every audio track,
    from ``seek_s`` for ``length_s``, into an MP4 whose timeline starts at 0.

    Copy: the packets as recorded, from the keyframe at ``seek_s``. ffmpeg's input ``-ss`` is
    counted from the input's start time (``input_start``, the earliest timestamp of any stream,
    from ``start_command``); it lands on that keyframe (the seek goes to the last keyframe at
    or before it), which then starts the clip at time 0. Nothing is decoded.

    h264: the segments are decoded on their own timestamps (``-copyts``) from their first
    keyframe and output ``-ss`` keeps the frames from ``seek_s`` on (frame-exact, whatever the
    seek in MPEG-TS lands on); x264 (``preset``, ``crf``), one output frame per source frame
    (``-fps_mode passthrough``), audio to AAC (MP4 cannot carry every codec a segment may hold).

    Metadata of the segments is not carried over (``-map_metadata -1``): what the clip is, is
    said by its C2PA manifest."""
    if not job.sources:
        raise ClipError("a clip needs at least one segment")
    if job.length_s <= 0:
        raise ClipError(f"the window is empty ({job.length_s:g} s)")
    maps = ["-map", "0:v:0", "-map", "0:a?", "-map_metadata", "-1"]
    length = ["-t", f"{job.length_s:.6f}"]
    if job.method == "copy":
        offset = (_microseconds(job.seek_s) - _microseconds(input_start)) / 1e6
        return [
            ffmpeg, *BASE, "-ss", f"{offset:.6f}", *_input(job), *length, *maps,
            "-c", "copy", "-f", "mp4", "-y", str(job.dest),
        ]  # fmt: skip
    return [
        ffmpeg, *BASE, "-copyts", *_input(job), "-ss", f"{job.seek_s - TRIM_EARLY_S:.6f}",
        *length, *maps,
        "-c:v", "libx264", "-preset", job.preset, "-crf", str(job.crf),
        "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-c:a", "aac", "-b:a", "128k",
        "-f", "mp4", "-y", str(job.dest),
    ]  # fmt: skip


def cut_clip(tools: Tools, job: ClipJob) -> float:
    """Run ``clip_command`` for ``job`` (writing the concat list first if it needs one); the
    seconds it took."""
    if job.matroska and job.concat_list is not None:
        job.concat_list.write_text(concat_list_text(job.sources), encoding="utf-8")
    try:
        started = 0.0
        if job.method == "copy":
            probe = tools.runner.run(
                start_command(tools.ffmpeg, job), timeout_s=tools.timeout_s, check=False
            )
            started = parse_start(probe.stderr_head + "\n" + probe.stderr_tail)
        cmd = clip_command(tools.ffmpeg, job, started)
        result = tools.runner.run(cmd, timeout_s=tools.timeout_s)
    finally:
        if job.concat_list is not None:
            job.concat_list.unlink(missing_ok=True)
    if not job.dest.is_file() or job.dest.stat().st_size == 0:
        raise ClipError(f"ffmpeg wrote no clip to {job.dest.name}")
    return result.elapsed_s
