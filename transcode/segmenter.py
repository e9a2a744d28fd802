"""Cut a recording into evidence segments by stream copy, and make review proxies.

The segmenter knows nothing of the catalogue or the store: it reads a local file and returns
the files it made with their timing. The stages in ``workers.stages`` store, hash and
catalogue them.

Segments are always stream copies (every packet as recorded, no decode): MPEG-TS when it can
carry the codecs, Matroska otherwise. Their timing comes from the original's probe, split where
ffmpeg cut (each cut is on a key packet listed in ``segments.csv``), so the segments need not
be read again; only when that cannot be matched (a damaged source, packets without
timestamps) is each segment probed.
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcode.commands import (
    AudioPlan,
    ProxyJob,
    ProxySettings,
    SegmentContainer,
    SegmentJob,
    proxy_command,
    segment_command,
)
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegFailed, ProcessRunner
from transcode.probe import (
    NOPTS,
    PLAYABLE_AUDIO,
    PLAYABLE_VIDEO,
    ProbeResult,
    Track,
    first_video_pts,
    probe,
    probe_video_many,
)

logger = logging.getLogger(__name__)

_SEGMENT_NAME = re.compile(r"^seg-(\d{5})\.(ts|mkv)$")
_PROXY_NAME = re.compile(r"^proxy-(\d{5})\.ts$")

# What MPEG-TS carries (ffmpeg's muxer); anything else is segmented into Matroska.
TS_VIDEO = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video"})
TS_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3"})


class SegmentingError(TranscodeError):
    """No segment could be produced from the source."""


def container_for(probed: ProbeResult) -> SegmentContainer:
    assert probed.video is not None
    audio_ok = probed.audio is None or probed.audio.stream.codec in TS_AUDIO
    return "mpegts" if probed.video.stream.codec in TS_VIDEO and audio_ok else "matroska"


def playable(probed: ProbeResult) -> bool:
    """Do the stream-copied segments play in a browser (HLS: H.264 + AAC in MPEG-TS)?"""
    assert probed.video is not None
    audio_ok = probed.audio is None or probed.audio.stream.codec in PLAYABLE_AUDIO
    return probed.video.stream.codec in PLAYABLE_VIDEO and audio_ok


def proxy_audio(audio_codec: str | None) -> AudioPlan:
    """The proxy's audio: none without any, the source's when a browser plays it, else AAC."""
    if audio_codec is None:
        return "none"
    return "copy" if audio_codec in PLAYABLE_AUDIO else "aac"


@dataclass(frozen=True)
class SegmentFile:
    index: int
    path: Path
    start_s: float  # source timestamps (seconds), measured from the segment's own packets
    end_s: float
    frames: int
    holes: tuple[tuple[float, float], ...]  # jumps in the timestamps inside the segment


@dataclass(frozen=True)
class SegmentOutcome:
    container: SegmentContainer
    segments: tuple[SegmentFile, ...]
    damage: str | None  # what ffmpeg complained about while cutting, if anything
    measured: str  # "split" (from the original's probe) or "probed" (each segment read)
    shift_s: float  # the segments' timestamps minus the source's (0 unless the muxer moved them)


@dataclass(frozen=True)
class ProxyFile:
    index: int
    path: Path
    start_s: float  # source timestamps (seconds), as ffmpeg listed the segment
    end_s: float


def read_segment_list(path: Path) -> list[tuple[str, float, float]]:
    """ffmpeg's ``-segment_list_type csv``: file name, start and end time, one per segment."""
    if not path.exists():
        return []
    rows: list[tuple[str, float, float]] = []
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 3:
                rows.append((row[0], float(row[1]), float(row[2])))
    return rows


def split_track(track: Track, starts_s: Sequence[float], shift_s: float) -> list[Track] | None:
    """Split a video track (packets in file order) where ffmpeg started each segment.

    A stream-copy segmenter starts segment k > 0 at the key packet it listed at ``starts_s[k]``
    and keeps file order, so segment k is the packets from that key packet to the next cut.
    ``shift_s`` is how far the segments' timestamps sit from the source's (the muxer moves a
    stream whose first DTS is negative, e.g. H.264 with B-frames in MP4, to start at 0); the
    tracks returned are on the segments' timestamps. Returns None when a cut cannot be matched
    to a key packet within half a frame: the caller then probes the segments themselves.
    """
    if not track.count or not starts_s or bool((track.pts == NOPTS).any()):
        return None
    tb = float(track.stream.time_base)
    keys = np.flatnonzero(track.key)
    key_times = track.pts[keys].astype(np.float64) * tb + shift_s
    tolerance = max(track.frame_duration_s / 2, 1e-3)
    cuts = [0]
    for start in starts_s[1:]:
        if not key_times.size:
            return None
        nearest = int(np.argmin(np.abs(key_times - start)))
        if abs(key_times[nearest] - start) > tolerance or keys[nearest] <= cuts[-1]:
            return None
        cuts.append(int(keys[nearest]))
    cuts.append(track.count)
    shifted = track.pts + round(shift_s / tb)
    return [
        Track(
            stream=track.stream,
            pts=shifted[a:b],
            duration=track.duration[a:b],
            size=track.size[a:b],
            key=track.key[a:b],
        )
        for a, b in itertools.pairwise(cuts)
    ]


PROBE_BATCH = 64


def _measure(
    runner: ProcessRunner, ffmpeg: str, files: Sequence[Path], timeout_s: float
) -> list[Track | None]:
    """Each segment's video packets, by one ffmpeg run per batch of segments; a batch that
    fails is measured file by file, so a damaged segment is ``None`` and the rest are kept."""
    measured: list[Track | None] = []
    for at in range(0, len(files), PROBE_BATCH):
        batch = files[at : at + PROBE_BATCH]
        try:
            measured.extend(probe_video_many(runner, ffmpeg, batch, timeout_s=timeout_s))
            continue
        except TranscodeError:
            logger.warning(
                "probing segments %d-%d together failed; one by one", at, at + len(batch)
            )
        for path in batch:
            try:
                measured.append(probe(runner, ffmpeg, path, timeout_s=timeout_s).video)
            except TranscodeError:
                measured.append(None)
    return measured


def segment_file(
    runner: ProcessRunner,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    *,
    probed: ProbeResult,
    segment_s: float,
    timeout_s: float,
    hole_tolerance_s: float,
    on_progress: Callable[[float], None] | None = None,
) -> SegmentOutcome:
    """Segment ``source`` into ``out_dir`` by stream copy and time every segment produced.

    Timestamp jumps inside a segment longer than ``hole_tolerance_s`` are returned as holes.
    A damaged source still yields whatever ffmpeg could cut; its complaint is returned, not
    raised, as long as at least one segment came out.
    """
    assert probed.video is not None
    container = container_for(probed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if _SEGMENT_NAME.match(stale.name) or stale.name == "segments.csv":
            stale.unlink()  # a previous attempt's partial output; nothing of it was published
    job = SegmentJob(source, out_dir, segment_s, container, audio=probed.audio is not None)
    damage: str | None = None
    try:
        runner.run(segment_command(ffmpeg, job), timeout_s=timeout_s, on_progress=on_progress)
    except FfmpegFailed as exc:
        damage = f"segmenting stopped early: {exc}"
        logger.warning("%s: %s", source.name, damage)
    files = sorted(p for p in out_dir.iterdir() if _SEGMENT_NAME.match(p.name))
    listed = read_segment_list(job.segment_list)
    tracks: Sequence[Track | None] | None = None
    if (
        damage is None
        and container == "mpegts"
        and [n for n, _, _ in listed] == [p.name for p in files]
    ):
        first = first_video_pts(runner, ffmpeg, files[0], timeout_s=timeout_s)
        if first is not None:
            shift = first - float(probed.video.pts[0] * probed.video.stream.time_base)
            tracks = split_track(probed.video, [start for _, start, _ in listed], shift)
    measured = "split"
    if tracks is None:
        tracks = _measure(runner, ffmpeg, files, timeout_s)
        measured = "probed"
        source_keys = probed.video.keyframe_times()
        first_keys = tracks[0].keyframe_times() if tracks and tracks[0] is not None else None
        if first_keys is not None and first_keys.size and source_keys.size:
            shift = float(first_keys[0] - source_keys[0])
    segments: list[SegmentFile] = []
    for path, video in zip(files, tracks, strict=False):
        if video is None:
            damage = f"{path.name} unreadable after cutting"
            break
        segments.append(
            SegmentFile(
                index=len(segments),
                path=path,
                start_s=video.start_s,
                end_s=video.end_s,
                frames=video.count,
                holes=tuple(video.jumps(hole_tolerance_s)),
            )
        )
    if not segments:
        raise SegmentingError(f"{source.name}: ffmpeg produced no segment ({damage})")
    return SegmentOutcome(container, tuple(segments), damage, measured, shift)


class ProxyError(TranscodeError):
    """The review proxy could not be made."""


def make_proxy(
    runner: ProcessRunner,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    *,
    audio: AudioPlan,
    segment_s: float,
    proxy: ProxySettings,
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[ProxyFile, ...]:
    """Transcode ``source`` into browser-playable HLS segments (H.264/AAC) in ``out_dir``.

    The proxy is for viewing only: it is never evidence, and the stage that stores it links
    each file to the original's SHA-256. A failed transcode raises: a partial proxy would
    show a reviewer less than was recorded.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if _PROXY_NAME.match(stale.name) or stale.name == "proxy.csv":
            stale.unlink()
    job = ProxyJob(source, out_dir, segment_s, audio, proxy)
    try:
        runner.run(proxy_command(ffmpeg, job), timeout_s=timeout_s, on_progress=on_progress)
    except FfmpegFailed as exc:
        raise ProxyError(f"{source.name}: review proxy failed: {exc}") from exc
    listed = read_segment_list(job.segment_list)
    files = {p.name: p for p in out_dir.iterdir() if _PROXY_NAME.match(p.name)}
    made = [
        ProxyFile(index, files[name], start, end)
        for index, (name, start, end) in enumerate(listed)
        if name in files
    ]
    if not made or len(made) != len(files):
        raise ProxyError(
            f"{source.name}: ffmpeg listed {len(listed)} proxy segments, wrote {len(files)}"
        )
    return tuple(made)
