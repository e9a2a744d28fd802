"""Per-frame perceptual hashes of video files: the frames ``transcode.frames`` decodes on the
recording's time grid, hashed with PDQ (``integrity.phash``)."""

from __future__ import annotations

from pathlib import Path

from vigil_verify.sampling import FrameTimes, repair_times, timed_hashes

from integrity.phash import FrameHashes, PdqBatches, hash_frames
from transcode.ffmpeg import Tools
from transcode.frames import HeardTrack, decode_gray_frames, decode_timed_frames, grid_start


def timed_frame_hashes(
    tools: Tools,
    path: Path,
    *,
    origin_s: float | None,
    rotation: int = 0,
    heard: HeardTrack | None = None,
) -> FrameHashes:
    """Every frame of ``path`` hashed at its own time: on the recording's timeline (``origin_s``
    is the source timestamp of the recording's first frame) or, with None, on the file's own
    timeline from its first frame at 0 (an outside copy). Pictures are hashed upright: a
    stored segment turned by its ``rotation`` (its recording's display matrix, which the
    segment lost), anything else by ffmpeg's autorotation (``rotation`` 0). ``heard``: the
    first audio track is decoded into it by the same process."""
    times = FrameTimes()
    batches = PdqBatches()
    for frame in decode_timed_frames(tools, path, times, rotation=rotation, heard=heard):
        batches.add(frame)
    hashes, quality = batches.result()
    return timed_hashes(repair_times(times.raw), hashes, quality, origin=origin_s)


def segment_hashes(
    tools: Tools,
    path: Path,
    *,
    rate: float | None,
    origin_s: float,
    start_s: float,
    rotation: int = 0,
) -> FrameHashes:
    """Hashes of a stored segment that starts ``start_s`` into a recording whose first frame
    has the source timestamp ``origin_s``: every frame (``rate`` None), turned upright by
    ``rotation`` (signed in its ``segment.hashed`` event), or on the fixed grid of a recording
    hashed at ``rate`` before every-frame sampling (and before orientation was recorded)."""
    if rate is None:
        return timed_frame_hashes(tools, path, origin_s=origin_s, rotation=rotation)
    start = grid_start(start_s, rate)
    frames = decode_gray_frames(tools, path, rate=rate, start_time=origin_s + start, copyts=True)
    return hash_frames(frames, start=start, rate=rate)


def copy_hashes(tools: Tools, path: Path, *, rate: float | None) -> FrameHashes:
    """Hashes of a whole file on its own timeline, its first frame at 0 (an outside copy)."""
    if rate is None:
        return timed_frame_hashes(tools, path, origin_s=None)
    frames = decode_gray_frames(tools, path, rate=rate, start_time=0.0, copyts=False)
    return hash_frames(frames, start=0.0, rate=rate)
