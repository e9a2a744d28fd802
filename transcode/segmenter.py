"""Cut a recording into segments: stream copy when browser-playable, H.264/AAC otherwise.

The segmenter knows nothing of the catalogue or the store: it reads a local file and returns
the segment files it made with their measured timing. The stage in ``workers.stages`` stores,
hashes and catalogues them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from transcode.commands import AudioPlan, ProxySettings, SegmentJob, VideoPlan, segment_command
from transcode.ffmpeg import FfmpegFailed, ProcessRunner, TranscodeError
from transcode.probe import (
    PLAYABLE_AUDIO,
    PLAYABLE_VIDEO,
    ProbeResult,
    Track,
    probe,
    probe_video_many,
)

logger = logging.getLogger(__name__)

_SEGMENT_NAME = re.compile(r"^seg-(\d{5})\.ts$")


class SegmentingError(TranscodeError):
    """No segment could be produced from the source."""


@dataclass(frozen=True)
class Plan:
    video: VideoPlan
    audio: AudioPlan

    @property
    def kind(self) -> str:
        return "copy" if self.video == "copy" else "transcode"


def plan_for(probed: ProbeResult) -> Plan:
    """Copy what a browser already plays; transcode the rest (MPEG-4 Part 2, HEVC, MJPEG, ...)."""
    assert probed.video is not None
    video: VideoPlan = "copy" if probed.video.stream.codec in PLAYABLE_VIDEO else "h264"
    audio: AudioPlan
    if probed.audio is None:
        audio = "none"
    elif probed.audio.stream.codec in PLAYABLE_AUDIO:
        audio = "copy"
    else:
        audio = "aac"
    return Plan(video, audio)


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
    plan: Plan
    segments: tuple[SegmentFile, ...]
    damage: str | None  # what ffmpeg complained about while cutting, if anything


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
    proxy: ProxySettings,
    timeout_s: float,
    hole_tolerance_s: float,
    on_progress: Callable[[float], None] | None = None,
) -> SegmentOutcome:
    """Segment ``source`` into ``out_dir`` and measure every segment produced.

    Timestamp jumps inside a segment longer than ``hole_tolerance_s`` are returned as holes.
    A damaged source still yields whatever ffmpeg could cut; its complaint is returned, not
    raised, as long as at least one segment came out.
    """
    plan = plan_for(probed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("seg-*.ts"):
        stale.unlink()  # a previous attempt's partial output; nothing of it was published
    job = SegmentJob(source, out_dir, segment_s, plan.video, plan.audio, proxy)
    damage: str | None = None
    try:
        runner.run(segment_command(ffmpeg, job), timeout_s=timeout_s, on_progress=on_progress)
    except FfmpegFailed as exc:
        damage = f"segmenting stopped early: {exc}"
        logger.warning("%s: %s", source.name, damage)
    files = sorted(p for p in out_dir.iterdir() if _SEGMENT_NAME.match(p.name))
    segments: list[SegmentFile] = []
    for path, video in zip(files, _measure(runner, ffmpeg, files, timeout_s), strict=False):
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
    return SegmentOutcome(plan, tuple(segments), damage)
