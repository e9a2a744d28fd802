"""Per-frame perceptual hashes of video files: the frames ``transcode.frames`` decodes on the
recording's time grid, hashed with PDQ (``integrity.phash``)."""

from __future__ import annotations

from pathlib import Path

from integrity.phash import FrameHashes, hash_frames
from transcode.ffmpeg import Tools
from transcode.frames import decode_gray_frames, grid_start


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
