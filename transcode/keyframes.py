"""Perceptual hashes of a video's keyframes: the custody path's picture fingerprint.

Only keyframes are decoded (``-skip_frame nokey``), at hundreds of times realtime, scaled by
ffmpeg to 64x64 gray and hashed with PDQ in numpy batches. Each hash gets the keyframe's own
presentation time from ffmpeg's ``showinfo`` log. This is what lets a segment be matched by
picture seconds after it arrives; the dense per-frame index (``transcode.frames``) follows
later, decode-bound, to locate edits between keyframes (../shared/HASHING.md: keyframe hashes
are blind to an edit shorter than a GOP that falls between two keyframes).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from integrity.phash import FRAME_SIDE, PdqBatches, read_gray_frames
from transcode.commands import keyframes_command
from transcode.ffmpeg import Tools, TranscodeError
from transcode.probe import ProbeResult, probe

logger = logging.getLogger(__name__)

_PTS_TIME = re.compile(r"Parsed_showinfo.*\bpts_time:\s*(?P<t>-?[0-9.]+(?:e-?\d+)?)")


class KeyframeError(TranscodeError):
    """The keyframes could not be decoded or their times did not add up."""


class KeyframeHash(BaseModel):
    """One keyframe's PDQ hash, in a segment's custody event and catalogue row."""

    model_config = ConfigDict(frozen=True)

    t: float  # on the recording's timeline (0 = its first frame)
    pdq: str  # 64 hex digits
    quality: int


@dataclass(frozen=True)
class Keyframes:
    """Keyframe hashes of one file, on the file's own timestamps (seconds), in time order."""

    times: NDArray[np.float64]
    hashes: NDArray[np.uint8]  # (n, 32)
    quality: NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.times.size)

    def between(self, start_s: float, end_s: float, *, origin_s: float) -> list[KeyframeHash]:
        """The keyframes at ``start_s`` <= t < ``end_s`` (file timestamps), with times moved
        onto the recording's timeline (minus ``origin_s``)."""
        picked = np.flatnonzero((self.times >= start_s - 1e-6) & (self.times < end_s - 1e-6))
        return [
            KeyframeHash(
                t=round(float(self.times[i]) - origin_s, 6),
                pdq=bytes(self.hashes[i]).hex(),
                quality=int(self.quality[i]),
            )
            for i in picked
        ]


class _Times:
    """Collects each keyframe's ``pts_time`` from ffmpeg's ``showinfo`` lines (pump thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: list[float] = []

    def __call__(self, line: str) -> None:
        found = _PTS_TIME.search(line)
        if found:
            with self.lock:
                self.times.append(float(found["t"]))


def _sorted(
    source: Path, times: list[float], hashes: NDArray[np.uint8], quality: NDArray[np.uint8]
) -> Keyframes:
    if len(hashes) != len(times):
        raise KeyframeError(
            f"{source.name}: {len(hashes)} keyframes decoded but {len(times)} timestamps logged"
        )
    at = np.asarray(times, dtype=np.float64)
    order = np.argsort(at, kind="stable")
    return Keyframes(at[order], hashes[order], quality[order])


def probe_with_keyframes(tools: Tools, source: Path) -> tuple[ProbeResult, Keyframes | None]:
    """Probe ``source`` and hash its keyframes in one ffmpeg run (a live segment as it closes).
    The keyframes are None, and logged, if they could not be decoded: the probe still counts."""
    times = _Times()
    frames_file = source.with_name(f".{source.name}.keyframes")
    try:
        probed = probe(
            tools.runner, tools.ffmpeg, source, timeout_s=tools.timeout_s,
            keyframes_to=frames_file, on_line=times,
        )  # fmt: skip
        try:
            raw = np.fromfile(frames_file, dtype=np.uint8) if frames_file.exists() else None
            if raw is None or raw.size % (FRAME_SIDE * FRAME_SIDE):
                raise KeyframeError(f"{source.name}: no whole keyframes written")
            batches = PdqBatches()
            for frame in raw.reshape(-1, FRAME_SIDE, FRAME_SIDE):
                batches.add(frame)
            return probed, _sorted(source, times.times, *batches.result())
        except KeyframeError as exc:
            logger.warning("%s", exc)
            return probed, None
    finally:
        frames_file.unlink(missing_ok=True)


def keyframe_hashes(tools: Tools, source: Path) -> Keyframes:
    """Decode ``source``'s keyframes at 64x64 and hash them; memory stays at one batch."""
    on_line = _Times()
    batches = PdqBatches()
    cmd = keyframes_command(tools.ffmpeg, source, side=FRAME_SIDE)
    with tools.runner.stream(cmd, timeout_s=tools.timeout_s, on_line=on_line) as (out, _pump):
        for frame in read_gray_frames(out, FRAME_SIDE):
            batches.add(frame)
    return _sorted(source, on_line.times, *batches.result())
