"""Decoding a video's keyframes: 64x64 gray pictures and their presentation times.

Only keyframes are decoded (``-skip_frame nokey``), at hundreds of times realtime, scaled by
ffmpeg to 64x64 gray. Each keyframe's own presentation time comes from ffmpeg's ``showinfo``
log. Hashing them is ``integrity.keyframes``'s work: this module decodes and hashes nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from vigil_verify.frames import FRAME_SIDE, read_gray_frames

from transcode.commands import keyframes_command
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools
from transcode.probe import ProbeResult, probe

_PTS_TIME = re.compile(r"Parsed_showinfo.*\bpts_time:\s*(?P<t>-?[0-9.]+(?:e-?\d+)?)")


class KeyframeError(TranscodeError):
    """The keyframes could not be decoded or their times did not add up."""


class KeyframeTimes:
    """Collects each keyframe's ``pts_time`` from ffmpeg's ``showinfo`` lines (pump thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: list[float] = []

    def __call__(self, line: str) -> None:
        found = _PTS_TIME.search(line)
        if found:
            with self.lock:
                self.times.append(float(found["t"]))


def decode_keyframes(
    tools: Tools, source: Path, times: KeyframeTimes
) -> Iterator[NDArray[np.uint8]]:
    """Yield ``source``'s keyframes at 64x64 gray as they decode; ``times`` collects their
    presentation times (complete once the iterator is exhausted)."""
    cmd = keyframes_command(tools.ffmpeg, source, side=FRAME_SIDE)
    with tools.runner.stream(cmd, timeout_s=tools.timeout_s, on_line=times) as (out, _pump):
        yield from read_gray_frames(out, FRAME_SIDE)


def probe_with_keyframes(
    tools: Tools, source: Path
) -> tuple[ProbeResult, NDArray[np.uint8] | None, list[float]]:
    """Probe ``source`` and decode its keyframes in one ffmpeg run (a live segment as it
    closes): the probe, the keyframes as an (n, 64, 64) array (None if none were written
    whole) and their presentation times."""
    times = KeyframeTimes()
    frames_file = source.with_name(f".{source.name}.keyframes")
    try:
        probed = probe(
            tools.runner, tools.ffmpeg, source, timeout_s=tools.timeout_s,
            keyframes_to=frames_file, on_line=times,
        )  # fmt: skip
        raw = np.fromfile(frames_file, dtype=np.uint8) if frames_file.exists() else None
        if raw is None or raw.size % (FRAME_SIDE * FRAME_SIDE):
            return probed, None, times.times
        return probed, raw.reshape(-1, FRAME_SIDE, FRAME_SIDE), times.times
    finally:
        frames_file.unlink(missing_ok=True)
