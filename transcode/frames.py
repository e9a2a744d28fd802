"""Decoded frames for perceptual hashing: 64x64 gray at a fixed rate, streamed from ffmpeg."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from integrity.phash import FRAME_SIDE, read_gray_frames
from transcode.commands import gray_frames_command
from transcode.ffmpeg import ProcessRunner


def decode_gray_frames(
    runner: ProcessRunner,
    ffmpeg: str,
    source: Path,
    *,
    rate: float,
    copyts: bool,
    timeout_s: float,
) -> Iterator[NDArray[np.uint8]]:
    """Yield frames as ffmpeg decodes them; memory stays at one frame whatever the length."""
    cmd = gray_frames_command(ffmpeg, source, rate=rate, side=FRAME_SIDE, copyts=copyts)
    with runner.stream(cmd, timeout_s=timeout_s) as (out, _pump):
        yield from read_gray_frames(out, FRAME_SIDE)  # type: ignore[arg-type]


def grid_start(first_pts_s: float, rate: float) -> float:
    """Where ffmpeg's fps filter puts its first frame for a stream starting at ``first_pts_s``."""
    return float(np.round(first_pts_s * rate)) / rate
