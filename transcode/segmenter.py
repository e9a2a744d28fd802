"""Cut a recording into evidence segments by stream copy, and make review proxies.

The segmenter knows nothing of the catalogue or the store: it reads a local file and returns
the files it made with their timing. The stages in ``workers.stages`` store, hash and
catalogue them.

Segments are always stream copies (every packet as recorded, no decode): MPEG-TS when it can
carry the codecs, Matroska otherwise. Where they start is planned on the recording's own
footage time (``transcode.timing.plan_cuts``) and given to ffmpeg as packet numbers, so a
source that starts late or whose timestamps jump or wrap keeps its segment length. Their
timing comes from the original's probe, split at those packets once ``segments.csv`` shows
ffmpeg cut there, so the segments need not be read again; only when that cannot be matched
(a damaged source, Matroska) is each segment probed. Either way, spans and gaps are judged
by the recording's own cadence (``transcode.timing.segment_timings``; docs/continuity.md).
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
from vigil_verify.packets import PacketRange, Stream

from transcode.commands import (
    AudioPlan,
    Media,
    ProxyJob,
    SegmentContainer,
    SegmentJob,
    proxy_command,
    segment_command,
    segment_frames,
)
from transcode.errors import TranscodeError
from transcode.ffmpeg import FfmpegFailed, ProcessRunner
from transcode.packets import packet_streams, read_packets, segment_ranges
from transcode.probe import (
    NOPTS,
    PLAYABLE_AUDIO,
    ProbeResult,
    Track,
    first_pts,
    has_video,
    probe,
    probe_many,
    probe_video_many,
)
from transcode.proxy_settings import ProxySettings
from transcode.timing import SegmentTiming, plan_cuts, segment_timings, unwrap

logger = logging.getLogger(__name__)

_SEGMENT_NAME = re.compile(r"^seg-(\d{5})\.(ts|mkv)$")
_PROXY_NAME = re.compile(r"^proxy-(\d{5})\.ts$")

# What MPEG-TS carries (ffmpeg's muxer); anything else is segmented into Matroska.
TS_VIDEO = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video"})
TS_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3"})


class SegmentingError(TranscodeError):
    """No segment could be produced from the source."""


def container_for(probed: ProbeResult) -> SegmentContainer:
    """MPEG-TS when it carries every stream copied: the video and every audio track (an
    audio-only recording's audio tracks alone), else Matroska."""
    audio_ok = {t.codec for t in probed.audio_tracks} <= TS_AUDIO
    if probed.video is None:
        return "mpegts" if probed.audio is not None and audio_ok else "matroska"
    return "mpegts" if probed.video.stream.codec in TS_VIDEO and audio_ok else "matroska"


def playable(probed: ProbeResult) -> bool:
    """Do the stream-copied segments play in a browser (HLS: H.264 + AAC in MPEG-TS; an
    audio-only recording's AAC or MP3)? A Matroska segment never does."""
    return probed.playable and container_for(probed) == "mpegts"


def proxy_audio(audio_codec: str | None) -> AudioPlan:
    """The proxy's audio: none without any, the source's when a browser plays it, else AAC."""
    if audio_codec is None:
        return "none"
    return "copy" if audio_codec in PLAYABLE_AUDIO else "aac"


@dataclass(frozen=True)
class SegmentFile:
    index: int
    path: Path
    start_s: float  # its first picture, on the segments' timestamps (seconds)
    end_s: float  # the next segment's first picture, or its last picture's usual hold
    frames: int
    holes: tuple[tuple[float, float], ...]  # gaps after its pictures (transcode.timing)


@dataclass(frozen=True)
class SegmentOutcome:
    container: SegmentContainer
    segments: tuple[SegmentFile, ...]
    damage: str | None  # what ffmpeg complained about while cutting, if anything
    measured: str  # "split" (from the original's probe) or "probed" (each segment read)
    shift_s: float  # the segments' timestamps minus the source's (0 unless the muxer moved them)
    # each segment's packet ranges in the source (``transcode.packets``; None: not asked for,
    # or not known exactly)
    packets: tuple[tuple[PacketRange, ...], ...] | None = None
    # the packets of the stream cut on where segments 1... start, as ffmpeg was told them
    # (None: ffmpeg chose, the list being too long for one argument)
    cuts: tuple[int, ...] | None = None


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


def split_at(track: Track, cuts: Sequence[int], shift_s: float) -> list[Track]:
    """``track`` (packets in file order) split before each of the positions ``cuts``, moved
    by ``shift_s`` onto the segments' timestamps."""
    tb = float(track.stream.time_base)
    shifted = track.pts + round(shift_s / tb)
    bounds = [0, *cuts, track.count]
    return [
        Track(
            stream=track.stream,
            pts=shifted[a:b],
            duration=track.duration[a:b],
            size=track.size[a:b],
            key=track.key[a:b],
            number=track.numbers[a:b],
        )
        for a, b in itertools.pairwise(bounds)
    ]


def _cut_slack_s(track: Track) -> float:
    return max(track.frame_duration_s / 2, 1e-3)


def cuts_listed(
    track: Track, cuts: Sequence[int], starts_s: Sequence[float], shift_s: float
) -> bool:
    """Did ffmpeg start segment k > 0 at the planned keyframe ``cuts[k - 1]``? Its listed
    start must be that packet's time on the segments' timestamps, within half a frame."""
    if len(starts_s) != len(cuts) + 1:
        return False
    tb = float(track.stream.time_base)
    slack = _cut_slack_s(track)
    return all(
        abs(float(track.pts[c]) * tb + shift_s - start) <= slack
        for c, start in zip(cuts, starts_s[1:], strict=True)
    )


def split_track(track: Track, starts_s: Sequence[float], shift_s: float) -> list[Track] | None:
    """Split a video track (packets in file order) where ffmpeg started each segment, when
    it chose the cuts itself (``-segment_time``).

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
    tolerance = _cut_slack_s(track)
    cuts = [0]
    for start in starts_s[1:]:
        if not key_times.size:
            return None
        nearest = int(np.argmin(np.abs(key_times - start)))
        if abs(key_times[nearest] - start) > tolerance or keys[nearest] <= cuts[-1]:
            return None
        cuts.append(int(keys[nearest]))
    return split_at(track, cuts[1:], shift_s)


PROBE_BATCH = 64


def _measure(
    runner: ProcessRunner,
    ffmpeg: str,
    files: Sequence[Path],
    timeout_s: float,
    media: Media = "video",
) -> list[Track | None]:
    """Each segment's video packets (an audio-only recording's: audio), by one ffmpeg run per
    batch of segments; a batch that fails is measured file by file, so a damaged segment is
    ``None`` and the rest are kept."""
    measured: list[Track | None] = []
    for at in range(0, len(files), PROBE_BATCH):
        batch = files[at : at + PROBE_BATCH]
        try:
            if media == "video":  # (by this name: bench/pipeline.py times it)
                measured.extend(probe_video_many(runner, ffmpeg, batch, timeout_s=timeout_s))
            else:
                measured.extend(probe_many(runner, ffmpeg, batch, timeout_s, media))
            continue
        except TranscodeError:
            logger.warning(
                "probing segments %d-%d together failed; one by one", at, at + len(batch)
            )
        for path in batch:
            try:
                found = probe(runner, ffmpeg, path, timeout_s=timeout_s)
                measured.append(found.video if media == "video" else found.audio)
            except TranscodeError:
                measured.append(None)
    return measured


@dataclass(frozen=True)
class _Cut:
    """What ffmpeg was asked for and what it made."""

    job: SegmentJob
    cuts: list[int]  # planned positions in the source track (ignored when ffmpeg chose)
    files: list[Path]
    listed: list[tuple[str, float, float]]
    damage: str | None


def _split(
    runner: ProcessRunner, ffmpeg: str, video: Track, cut: _Cut, timeout_s: float
) -> tuple[list[Track], float] | None:
    """The segments' tracks from the original's probe, split where ffmpeg cut, and the shift
    of their timestamps; None when that cannot be matched (then each segment is probed).
    ``video`` is the track cut on: an audio-only recording's audio."""
    if (
        cut.damage is not None
        or cut.job.container != "mpegts"
        or [n for n, _, _ in cut.listed] != [p.name for p in cut.files]
    ):
        return None
    first = first_pts(runner, ffmpeg, cut.files[0], timeout_s, cut.job.media)
    if first is None:
        return None
    shift = first - float(video.pts[0] * video.stream.time_base)
    starts = [start for _, start, _ in cut.listed]
    if cut.job.cuts is not None:
        if not cuts_listed(video, cut.cuts, starts, shift):
            return None
        return split_at(video, cut.cuts, shift), shift
    tracks = split_track(video, starts, shift)
    return (tracks, shift) if tracks is not None else None


def _probed(
    runner: ProcessRunner,
    ffmpeg: str,
    video: Track,
    files: Sequence[Path],
    timeout_s: float,
    media: Media = "video",
) -> tuple[list[Track | None], float]:
    """Each segment's track read from the segment (one clock across a 33-bit wrap), and the
    shift of their timestamps. ``video`` is the source's track cut on (``media``)."""
    measured = _measure(runner, ffmpeg, files, timeout_s, media)
    readable = list(itertools.takewhile(lambda t: t is not None, measured))
    tracks: list[Track | None] = [*unwrap([t for t in readable if t is not None])]
    tracks += measured[len(readable) :]
    shift = 0.0
    source_keys = video.keyframe_times()
    first_keys = tracks[0].keyframe_times() if tracks and tracks[0] is not None else None
    if first_keys is not None and first_keys.size and source_keys.size:
        shift = float(first_keys[0] - source_keys[0])
    return tracks, shift


def _run_cut(
    runner: ProcessRunner,
    ffmpeg: str,
    job: SegmentJob,
    cuts: list[int],
    timeout_s: float,
    on_progress: Callable[[float], None] | None,
) -> _Cut:
    out_dir = job.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if _SEGMENT_NAME.match(stale.name) or stale.name in ("segments.csv", "packets.framehash"):
            stale.unlink()  # a previous attempt's partial output; nothing of it was published
    damage: str | None = None
    try:
        runner.run(segment_command(ffmpeg, job), timeout_s=timeout_s, on_progress=on_progress)
    except FfmpegFailed as exc:
        damage = f"segmenting stopped early: {exc}"
        logger.warning("%s: %s", job.source.name, damage)
    files = sorted(p for p in out_dir.iterdir() if _SEGMENT_NAME.match(p.name))
    return _Cut(job, cuts, files, read_segment_list(job.segment_list), damage)


def segment_file(
    runner: ProcessRunner,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    *,
    probed: ProbeResult,
    segment_s: float,
    timeout_s: float,
    tolerance_frames: float,
    on_progress: Callable[[float], None] | None = None,
    hash_packets: bool = False,
) -> SegmentOutcome:
    """Segment ``source`` into ``out_dir`` by stream copy and time every segment produced.

    With ``hash_packets``, each segment's packet ranges in ``source`` are read in the same
    run (``transcode.packets``), when they can be said exactly.

    Cuts are planned on the recording's own footage time (``transcode.timing.plan_cuts``);
    segments are timed, and gaps found, by the recording's own cadence with
    ``tolerance_frames`` (``transcode.timing.segment_timings``). A damaged source still
    yields whatever ffmpeg could cut; its complaint is returned, not raised, as long as at
    least one segment came out.

    An audio-only recording is cut, timed and judged the same way on its audio packets
    (each a key packet), its audio alone in each segment.
    """
    video = probed.primary  # the track cut on: the video, or an audio-only recording's audio
    cuts = plan_cuts(video, segment_s, tolerance_frames)
    numbered = tuple(int(n) for n in video.numbers[cuts])
    listable = segment_frames(numbered) is not None
    if not listable:
        logger.warning("%s: %d cuts are too many to list; ffmpeg cuts", source.name, len(cuts))
    job = SegmentJob(
        source, out_dir, segment_s, container_for(probed), audio=probed.audio is not None,
        cuts=numbered if listable else None, video=probed.video is not None,
        packets=packet_streams(probed) if hash_packets else (),
    )  # fmt: skip
    cut = _run_cut(runner, ffmpeg, job, cuts, timeout_s, on_progress)
    damage = cut.damage
    split = _split(runner, ffmpeg, video, cut, timeout_s)
    measured = "split" if split is not None else "probed"
    tracks, shift = (
        split
        if split is not None
        else _probed(runner, ffmpeg, video, cut.files, timeout_s, job.media)
    )
    readable: list[Track] = []
    for path, track in zip(cut.files, tracks, strict=False):
        if track is None or not track.count:
            damage = f"{path.name} unreadable after cutting"
            break
        readable.append(track)
    if not readable:
        raise SegmentingError(f"{source.name}: ffmpeg produced no segment ({damage})")
    timings = segment_timings(readable, tolerance_frames)
    segments = tuple(
        SegmentFile(i, path, t.start_s, t.end_s, t.frames, t.holes)
        for i, (path, t) in enumerate(zip(cut.files, timings, strict=False))
    )
    whole = damage is None and len(readable) == len(cut.files)
    starts = packet_starts(video, readable, timings, shift, split is not None) if whole else None
    packets = None
    if job.packets and starts is not None and video.count:
        listed = read_packets(job.packets_list)
        counted = int(video.numbers[-1]) + 1  # every packet ffmpeg reads of the track cut on
        found = segment_ranges(listed, job.packets, starts, len(segments), counted)
        packets = tuple(found) if found is not None else None
    return SegmentOutcome(
        cut.job.container, segments, damage, measured, shift, packets, cuts=job.cuts
    )


def derive_segments(
    runner: ProcessRunner,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    *,
    container: SegmentContainer,
    cuts: tuple[int, ...],
    audio: bool,
    video: bool,
    timeout_s: float,
    packets: tuple[Stream, ...] = (),
) -> list[Path]:
    """Cut ``source`` again into the segments custody cut from it: the same command, told the
    same packets to cut at (a segment's signed first packet of the stream cut on), so the
    same ffmpeg writes the same bytes (issue 18: a segment whose copy is not kept). The
    caller checks each file against its signed SHA-256. ``packets``: the streams custody's
    run listed (none before issue 18): a second output, changing a B-frame source's times."""
    if segment_frames(cuts) is None:
        raise SegmentingError(f"{source.name}: {len(cuts)} cuts are too many to list")
    job = SegmentJob(source, out_dir, 0.0, container, audio=audio, cuts=cuts, video=video,
                     packets=packets, packets_discarded=True)  # fmt: skip
    made = _run_cut(runner, ffmpeg, job, list(cuts), timeout_s, None)
    if made.damage is not None:
        raise SegmentingError(f"{source.name}: {made.damage}")
    return made.files


def packet_starts(
    source: Track,
    tracks: Sequence[Track],
    timings: Sequence[SegmentTiming],
    shift_s: float,
    from_source: bool,
) -> tuple[int, ...] | None:
    """Where segments 1, 2... start among the packets ffmpeg reads of the ``source`` track
    cut on. Split from the source's probe, each track keeps the source's packet numbers;
    read from the segment files, each segment's first picture is matched to the source's
    key packet at its time (None when one is not found within half a frame)."""
    if not from_source:
        again = split_track(source, [t.start_s for t in timings], shift_s)
        if again is None or len(again) != len(tracks):
            return None
        tracks = again
    return tuple(int(t.numbers[0]) for t in tracks[1:])


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
    video: bool | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    source_kbps: float | None = None,
) -> tuple[ProxyFile, ...]:
    """Transcode ``source`` into browser-playable HLS segments (H.264/AAC) in ``out_dir``.

    The proxy is for viewing only: it is never evidence, and the stage that stores it links
    each file to the original's SHA-256. A failed transcode raises: a partial proxy would
    show a reviewer less than was recorded.

    ``video``: whether ``source`` has video (the catalogue knows: its ``video_codec``); None
    looks. ``size``: its picture, what the proxy's bitrate cap scales by
    (``ProxySettings.maxrate_kbps``; None: no cap); ``fps`` and ``source_kbps``: its frame rate
    and mean bitrate (``ProxyJob``). An audio-only source gets an audio-only
    proxy, its audio as AAC (``audio`` "none" is taken as "aac" then: the audio is all there
    is to play).
    """
    if video is None:
        video = has_video(runner, ffmpeg, source, timeout_s=min(timeout_s, 60))
    if not video and audio == "none":
        audio = "aac"
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if _PROXY_NAME.match(stale.name) or stale.name == "proxy.csv":
            stale.unlink()
    job = ProxyJob(
        source, out_dir, segment_s, audio, proxy, video=video, size=size, fps=fps,
        source_kbps=source_kbps,
    )  # fmt: skip
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
