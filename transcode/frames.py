"""Decoding video into 64x64 gray frames, streamed from ffmpeg: every frame at its own time
(``decode_timed_frames``, what Vigil hashes now), or on a fixed-rate grid (recordings hashed
before every-frame sampling, described below).

A recording's grid is multiples of 1/rate from its first frame. A stored segment is decoded on
the original's own timestamps and sampled from the first grid point inside it; an outside copy
is decoded from its start on the same grid. Both therefore sample the same moments. Hashing
the frames is ``integrity.frames``'s work: this module decodes and hashes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from vigil_verify.audio_tracks import AudioLog
from vigil_verify.frames import FRAME_SIDE, read_gray_frames
from vigil_verify.sampling import FrameTimes, frame_decode_args

from transcode.commands import gray_frames_command
from transcode.ffmpeg import Tools


def decode_gray_frames(
    tools: Tools, source: Path, *, rate: float, start_time: float, copyts: bool
) -> Iterator[NDArray[np.uint8]]:
    """Yield frames as ffmpeg decodes them; memory stays at one frame whatever the length."""
    cmd = gray_frames_command(
        tools.ffmpeg, source, rate=rate, start_time=start_time, copyts=copyts, side=FRAME_SIDE
    )
    with tools.runner.stream(cmd, timeout_s=tools.timeout_s) as (out, _pump):
        yield from read_gray_frames(out, FRAME_SIDE)


@dataclass
class HeardTrack:
    """The first audio track, decoded by the picture decode as its second output: the PCM
    goes to ``pcm`` (a file: no second pipe to keep drained) and ``log`` reads its lines."""

    pcm: Path
    log: AudioLog = field(default_factory=AudioLog)

    def pcm_bytes(self) -> bytes:
        return self.pcm.read_bytes() if self.pcm.exists() else b""


def decode_timed_frames(
    tools: Tools,
    source: Path,
    times: FrameTimes,
    *,
    rotation: int = 0,
    heard: HeardTrack | None = None,
) -> Iterator[NDArray[np.uint8]]:
    """Yield every decoded frame of the first video stream as ffmpeg outputs it (64x64 gray);
    ``times`` has one presentation time per frame once the iterator is exhausted
    (``vigil_verify.sampling``: the same decode as the stand-alone verifier's). ``rotation``:
    a stored segment's signed turn to upright; 0 lets ffmpeg autorotate (an outside copy).
    With ``heard``, the same process decodes the first audio track into it (the file must
    have one)."""
    cmd = frame_decode_args(
        tools.ffmpeg,
        source,
        side=FRAME_SIDE,
        rotation=rotation,
        audio_to=None if heard is None else str(heard.pcm),
    )
    on_line = times.line if heard is None else _both(times, heard.log)
    with tools.runner.stream(cmd, timeout_s=tools.timeout_s, on_line=on_line) as (out, _):
        yield from read_gray_frames(out, FRAME_SIDE)


def _both(times: FrameTimes, log: AudioLog) -> Callable[[str], None]:
    """One stderr reader for both outputs. Each reader keeps only its own filter's frame
    records, found anywhere in a line (``vigil_verify.showinfo``: ffmpeg 7 and later can put
    one filter's record in the middle of the other's line)."""

    def line(text: str) -> None:
        log.line(text)
        times.line(text)

    return line


def grid_start(timeline_s: float, rate: float) -> float:
    """The first grid point (a multiple of 1/rate) at or after ``timeline_s``."""
    return math.ceil(timeline_s * rate - 1e-6) / rate
