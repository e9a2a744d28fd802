"""Which pictures are hashed, and at what time: every decoded frame at its own timestamp.

Vigil hashes every frame the decoder outputs (``-fps_mode passthrough``), each at the
presentation time ffmpeg's ``showinfo`` filter reports for it, scaled to 64x64 gray by area
averaging. The server and the stand-alone verifier build the same ffmpeg arguments here, so
they decode the same pictures at the same times.

Why every frame and not a fixed-rate grid: a grid picks the frame nearest each grid point, so
two files of the same pictures whose first timestamps differ by less than a grid step (an AVI
whose video starts one frame after its audio, its Matroska remux) sample different pictures
and look edited; and a 10 fps grid cannot see two or three frames dropped from 30 fps footage.
With every frame, timing is evidence too: the times say which frames are gone.

Timestamps are repaired where a container got them wrong (stream-copied MPEG-4 with packed
B-frames repeats one time and skips another): a frame whose time is not strictly between its
neighbours' gets one interpolated by position. Frames stay in the order they were decoded,
which is presentation order.

The signed ``segment.hashed`` event says ``"sampling": "frames"`` for hashes made this way;
older events (no ``sampling``) were sampled on a fixed grid at their signed ``rate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vigil_verify.audio_tracks import audio_output_args
from vigil_verify.frames import FRAME_SIDE, FrameHashes
from vigil_verify.showinfo import frame_records

SAMPLING_FRAMES = "frames"
"""Value of ``sampling`` in a signed ``segment.hashed`` event for every-frame hashes."""

DEFAULT_RATE = 30.0
"""Nominal rate assumed when fewer than two frames say what the cadence is."""


def display_rotation(matrix_rotation: float | None) -> int:
    """Clockwise degrees (0, 90, 180 or 270) that turn the stored pixels upright, from the
    ``rotation`` ffprobe prints for a "Display Matrix" side data (counter-clockwise, so a
    phone's portrait ``rotate=90`` tag shows as -90). ``None`` (no matrix) and angles that
    are not a quarter turn within a degree give 0: such files are hashed as stored."""
    if matrix_rotation is None or not np.isfinite(matrix_rotation):
        return 0
    theta = (-float(matrix_rotation)) % 360.0
    for quarter in (0, 90, 180, 270, 360):
        if abs(theta - quarter) < 1.0:
            return quarter % 360
    return 0


def upright_filter(rotation: int) -> str:
    """The ffmpeg filter that turns pixels stored ``rotation`` degrees off upright (as
    :func:`display_rotation` says) the way ffmpeg's own autorotation does; "" for 0."""
    filters = {0: "", 90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}
    if rotation not in filters:
        raise ValueError(f"rotation must be 0, 90, 180 or 270, not {rotation!r}")
    return filters[rotation]


def frame_decode_args(
    ffmpeg: str,
    source: Path,
    *,
    side: int = FRAME_SIDE,
    rotation: int = 0,
    audio_to: str | None = None,
) -> list[str]:
    """ffmpeg arguments: the first video stream of ``source``, every decoded frame, area-scaled
    to ``side``x``side`` gray, raw on stdout; one ``showinfo`` line per frame on stderr.

    ``-copyts`` keeps the file's own timestamps (a stored segment carries the recording's);
    the caller makes them relative. ``-loglevel info`` is what lets ``showinfo`` speak. The
    audio is read too, into a null output: ffmpeg 5.1 with ``-copyts`` moves a video stream
    that starts after its audio to 0 when the audio is not read (docs/continuity.md).

    Orientation: pictures are hashed as displayed. With ``rotation`` 0 (the default) ffmpeg
    autorotates by whatever display matrix the file carries, which is right for an outside
    copy. A stored segment has lost its recording's matrix, so its caller passes the
    catalogued ``rotation``: autorotation is then switched off and that turn applied instead.

    ``audio_to``: a file that gets the first audio track decoded for its fingerprint
    (``vigil_verify.audio_tracks.audio_output_args``) instead of the null output, so one
    process reads a segment once for both; the file must have an audio track, else ffmpeg
    fails.
    """
    turn = upright_filter(rotation)
    graph = f"scale={side}:{side}:flags=area,format=gray,showinfo"
    if turn:
        graph = f"{turn},{graph}"
    before_input = ["-noautorotate"] if turn else []
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-copyts",
        *before_input,
        "-i", str(source), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", graph,
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:",
        *(
            audio_output_args(0, audio_to)
            if audio_to is not None
            else ["-map", "0:a:0?", "-c", "copy", "-f", "null", "-"]
        ),
    ]  # fmt: skip


class FrameTimes:
    """Collects the frame times of one decode from ffmpeg's stderr lines, in order: seconds,
    or None for a frame without a timestamp. Only ``showinfo``'s picture records count: other
    lines, and ``ashowinfo``'s sound records of the same process, are left out wherever in a
    line they landed (``vigil_verify.showinfo``)."""

    def __init__(self) -> None:
        self.raw: list[float | None] = []

    def line(self, text: str) -> None:
        self.raw.extend(r.seconds for r in frame_records(text) if r.kind == "video")


def repair_times(
    raw: Sequence[float | None], fallback_rate: float = DEFAULT_RATE
) -> NDArray[np.float64]:
    """Strictly increasing times, one per frame, keeping every time that is consistent.

    A frame is suspect when it has no time, or its time is not strictly above the previous
    frame's and strictly below the next one's. Suspect frames get a time interpolated by
    position between the nearest trusted frames (extrapolated at the ends with the median
    trusted interval); if none is trusted, frames are spaced at ``fallback_rate``.
    """
    n = len(raw)
    values = np.array([np.nan if v is None else v for v in raw], dtype=np.float64)
    if n == 0:
        return values
    known = np.isfinite(values)
    good = known.copy()
    prev_ok = np.ones(n, dtype=np.bool_)
    next_ok = np.ones(n, dtype=np.bool_)
    both = known[1:] & known[:-1]
    rising = np.zeros(n - 1, dtype=np.bool_)
    rising[both] = values[1:][both] > values[:-1][both]
    prev_ok[1:] = rising | ~known[:-1]
    next_ok[:-1] = rising | ~known[1:]
    good &= prev_ok & next_ok
    index = np.arange(n, dtype=np.float64)
    if not good.any():
        return index / fallback_rate
    anchors = np.flatnonzero(good)
    step = (
        float(np.median(np.diff(values[anchors]) / np.diff(anchors))) if anchors.size > 1 else 0.0
    )
    if not step > 0:
        step = 1.0 / fallback_rate
    times = np.interp(index, anchors.astype(np.float64), values[anchors])
    first, last = int(anchors[0]), int(anchors[-1])
    times[:first] = values[first] - (first - index[:first]) * step
    times[last + 1 :] = values[last] + (index[last + 1 :] - last) * step
    for i in range(1, n):  # anchors out of order among themselves: nudge, never reorder
        if times[i] <= times[i - 1]:
            times[i] = times[i - 1] + 1e-6
    return times


def nominal_rate(times: NDArray[np.float64], fallback: float = DEFAULT_RATE) -> float:
    """Frames per second of the usual cadence: one over the median frame interval."""
    if times.size < 2:
        return fallback
    step = float(np.median(np.diff(times)))
    return 1.0 / step if step > 0 else fallback


def timed_hashes(
    times: NDArray[np.float64],
    hashes: NDArray[np.uint8],
    quality: NDArray[np.uint8],
    *,
    origin: float | None,
    fallback_rate: float = DEFAULT_RATE,
) -> FrameHashes:
    """Per-frame hashes on a timeline: ``times - origin``, or from the first frame at 0 when
    ``origin`` is None (a file on its own timeline). Frames beyond the shorter of the two
    lists (an interrupted decode) are dropped."""
    n = min(len(times), len(hashes))
    if n == 0:
        return FrameHashes.empty(fallback_rate)
    t = times[:n] - (times[0] if origin is None else origin)
    return FrameHashes(t, nominal_rate(t, fallback_rate), hashes[:n], quality[:n])
