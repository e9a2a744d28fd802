"""Per-frame perceptual hashes of video files: 64x64 gray frames on a fixed-rate time grid,
streamed from ffmpeg into PDQ.

A recording's grid is multiples of 1/rate from its first frame. A stored segment is decoded on
the original's own timestamps and sampled from the first grid point inside it; an outside copy
is decoded from its start on the same grid. Both therefore sample the same moments.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from integrity.phash import FRAME_SIDE, FrameHashes, hash_frames, read_gray_frames
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


def grid_start(timeline_s: float, rate: float) -> float:
    """The first grid point (a multiple of 1/rate) at or after ``timeline_s``."""
    return math.ceil(timeline_s * rate - 1e-6) / rate


def segment_hashes(
    tools: Tools, path: Path, *, rate: float, origin_s: float, start_s: float
) -> FrameHashes:
    """Hashes of a stored segment that starts ``start_s`` into a recording whose first frame
    has the source timestamp ``origin_s``."""
    start = grid_start(start_s, rate)
    frames = decode_gray_frames(tools, path, rate=rate, start_time=origin_s + start, copyts=True)
    return hash_frames(frames, start=start, rate=rate)


def copy_hashes(tools: Tools, path: Path, *, rate: float) -> FrameHashes:
    """Hashes of a whole file on its own timeline from 0 (an outside copy)."""
    frames = decode_gray_frames(tools, path, rate=rate, start_time=0.0, copyts=False)
    return hash_frames(frames, start=0.0, rate=rate)
