"""Perceptual hashes of a video's keyframes: the custody path's picture fingerprint.

``transcode.keyframes`` decodes the keyframes at 64x64 gray with their presentation times;
here they are hashed with PDQ in numpy batches. This is what lets a segment be matched by
picture seconds after it arrives; the dense per-frame index (``integrity.frames``) follows
later, decode-bound, to locate edits between keyframes (../shared/HASHING.md: keyframe hashes
are blind to an edit shorter than a GOP that falls between two keyframes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from integrity.phash import PdqBatches
from transcode.ffmpeg import Tools
from transcode.keyframes import KeyframeError, KeyframeTimes, decode_keyframes
from transcode.keyframes import probe_with_keyframes as probe_with_keyframe_frames
from transcode.probe import ProbeResult

logger = logging.getLogger(__name__)


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
    probed, frames, times = probe_with_keyframe_frames(tools, source)
    try:
        if frames is None:
            raise KeyframeError(f"{source.name}: no whole keyframes written")
        batches = PdqBatches()
        for frame in frames:
            batches.add(frame)
        return probed, _sorted(source, times, *batches.result())
    except KeyframeError as exc:
        logger.warning("%s", exc)
        return probed, None


def keyframe_hashes(tools: Tools, source: Path) -> Keyframes:
    """Decode ``source``'s keyframes at 64x64 and hash them; memory stays at one batch."""
    times = KeyframeTimes()
    batches = PdqBatches()
    for frame in decode_keyframes(tools, source, times):
        batches.add(frame)
    return _sorted(source, times.times, *batches.result())
