"""The stage handlers: each takes one message and returns the messages it emits.

They run unchanged on the in-process bus and under Kafka consumers. Every handler is
idempotent: objects are stored write-once (identical content is a no-op), catalogue rows are
inserted if absent, and a handler that finds its work done re-emits what it would have emitted,
so at-least-once delivery neither loses nor duplicates anything.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from catalog.figures import LATE_UPLOAD_S
from catalog.models import Recording, Segment
from catalog.repository import Catalog, Event, now
from catalog.stats import upload_delay_s
from ingest.store import ObjectStore
from integrity.continuity import tolerance_s
from transcode.commands import ProxySettings
from transcode.ffmpeg import Tools
from transcode.frames import segment_hashes
from transcode.probe import NotVideoError, ProbeResult, probe
from transcode.segmenter import segment_file
from workers.messages import (
    Message,
    OriginalStored,
    RecordingCatalogued,
    RecordingSegmented,
    SegmentHashed,
    SegmentStored,
)
from workers.metrics import Metrics
from workers.segment_writer import SegmentWriter, segment_stored

logger = logging.getLogger(__name__)

Progress = Callable[[str, str, float], None]
"""(recording_id, stage, fraction done 0..1)"""

SYSTEM_ACTOR = "vigil"


def no_progress(_recording: str, _stage: str, _fraction: float) -> None:
    return None


class StageError(Exception):
    """A stage could not finish its work on a message."""


class SegmentStage:
    """OriginalStored → probe, segment (copy or transcode), hash, chain, store, catalogue."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        work_dir: Path,
        segment_s: float,
        phash_fps: float,
        gap_tolerance_frames: float,
        proxy: ProxySettings = ProxySettings(),
        progress: Progress = no_progress,
        metrics: Metrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.metrics = metrics if metrics is not None else Metrics()
        self.work_dir = work_dir
        self.segment_s = segment_s
        self.phash_fps = phash_fps
        self.gap_tolerance_frames = gap_tolerance_frames
        self.proxy = proxy
        self.progress = progress
        self.writer = SegmentWriter(
            catalog=catalog,
            store=store,
            phash_fps=phash_fps,
            gap_tolerance_frames=gap_tolerance_frames,
        )

    def __call__(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, OriginalStored)
        recording = self.catalog.recording(message.recording_id)
        if recording.segment_count is not None:
            return self._announce(recording, self.catalog.segments(recording.id))
        if recording.status == "unreadable":
            return []
        with self.store.local_path("originals", recording.original_key) as source:
            try:
                probed = probe(self.tools.runner, self.tools.ffmpeg, source)
            except NotVideoError as exc:
                self._unreadable(recording, str(exc))
                return []
            self._record_probe(recording, probed)
            video = probed.video
            assert video is not None
            work = self.work_dir / recording.id
            total = max(video.end_s - video.start_s, 1e-3)
            started = time.monotonic()
            try:
                outcome = segment_file(
                    self.tools.runner,
                    self.tools.ffmpeg,
                    source,
                    work,
                    probed=probed,
                    segment_s=self.segment_s,
                    proxy=self.proxy,
                    timeout_s=self.tools.timeout_s,
                    hole_tolerance_s=tolerance_s(
                        video.frame_duration_s, video.hold_s, self.gap_tolerance_frames
                    ),
                    on_progress=lambda t: self.progress(recording.id, "segment", min(t / total, 1)),
                )
                kind = outcome.plan.kind
                self.metrics.speed(
                    "segment" if kind == "copy" else "transcode", total, time.monotonic() - started
                )
                segments: list[Segment] = []
                origin = outcome.segments[0].start_s
                for produced in outcome.segments:
                    previous = segments[-1].chain if segments else recording.anchor
                    segments.append(
                        self.writer.add(
                            recording, produced, origin=origin, previous=previous, kind=kind
                        )
                    )
                    self.progress(recording.id, "store", len(segments) / len(outcome.segments))
                damage = "; ".join(
                    d for d in (recording.damage, probed.describe_damage(), outcome.damage) if d
                )
                self.writer.finish(recording, segments, kind, damage, work)
                self.metrics.processed("segment", total, recording.size)
                self.metrics.segments.labels(kind).inc(len(segments))
            finally:
                shutil.rmtree(work, ignore_errors=True)
        recording = self.catalog.recording(recording.id)
        return self._announce(recording, segments)

    def _unreadable(self, recording: Recording, reason: str) -> None:
        damage = recording.damage or f"unreadable: {reason}"
        self.catalog.update_recording(recording.id, status="unreadable", damage=damage)
        self.catalog.add_event(Event("flag.unreadable", SYSTEM_ACTOR, recording.id, reason=damage))

    def _record_probe(self, recording: Recording, probed: ProbeResult) -> None:
        video = probed.video
        assert video is not None
        self.catalog.update_recording(
            recording.id,
            status="segmenting",
            container=probed.container,
            video_codec=video.stream.codec,
            audio_codec=probed.audio.stream.codec if probed.audio else None,
            width=video.stream.width,
            height=video.stream.height,
            fps=round(video.fps, 3),
            frame_hold_s=video.hold_s,
        )

    @staticmethod
    def _announce(recording: Recording, segments: Sequence[Segment]) -> list[Message]:
        out: list[Message] = [segment_stored(s) for s in segments if s.phash is None]
        out.append(RecordingSegmented(recording_id=recording.id, count=len(segments)))
        return out


class PerceptualStage:
    """SegmentStored → per-frame PDQ hashes of the segment on a fixed-rate time grid."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        progress: Progress = no_progress,
        metrics: Metrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.progress = progress
        self.metrics = metrics if metrics is not None else Metrics()

    def __call__(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, SegmentStored)
        recording = self.catalog.recording(message.recording_id)
        done = next(
            (s for s in self.catalog.segments(recording.id) if s.index == message.index), None
        )
        if done is None:
            raise StageError(f"{recording.id} segment {message.index} is not catalogued")
        if done.phash is None:
            started = time.monotonic()
            with self.store.local_path("derived", message.key) as path:
                hashes = segment_hashes(
                    self.tools,
                    path,
                    rate=recording.phash_fps or 10.0,
                    origin_s=recording.origin_s or 0.0,
                    start_s=message.start_s,
                )
            blob = hashes.to_bytes()
            detail = SegmentHashedDetail(
                index=message.index,
                segment_sha256=done.sha256,
                phash_sha256=hashlib.sha256(blob).hexdigest(),
                frames=len(hashes),
                rate=hashes.rate,
            )
            self.catalog.set_segment_phash(
                recording.id,
                message.index,
                blob,
                hashes.digest(),
                len(hashes),
                Event("segment.hashed", SYSTEM_ACTOR, recording.id, detail=detail),
            )
            self.metrics.processed("phash", message.end_s - message.start_s, done.size)
            self.metrics.speed(
                "decode", message.end_s - message.start_s, time.monotonic() - started
            )
            if recording.segment_count:
                self.progress(recording.id, "phash", (message.index + 1) / recording.segment_count)
        return [SegmentHashed(recording_id=recording.id, index=message.index)]


class SegmentHashedDetail(BaseModel):
    """The custody event of a segment's per-frame perceptual hashes (the ``.pdq`` blob)."""

    index: int
    segment_sha256: str
    phash_sha256: str
    frames: int
    rate: float


class CatalogueDetail(BaseModel):
    segments: int
    chain_head: str
    gaps: int


class FinaliseStage:
    """RecordingSegmented / SegmentHashed → the recording is complete once every hash is in."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        gap_counter: Callable[[str], int],
        metrics: Metrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.gap_counter = gap_counter
        self.metrics = metrics if metrics is not None else Metrics()

    def __call__(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, RecordingSegmented | SegmentHashed)
        recording = self.catalog.recording(message.recording_id)
        if recording.segment_count is None:
            return []
        segments = self.catalog.segments(recording.id)
        if len(segments) < recording.segment_count or any(s.phash is None for s in segments):
            return []
        detail = CatalogueDetail(
            segments=len(segments),
            chain_head=recording.chain_head or "",
            gaps=self.gap_counter(recording.id),
        )
        if self.catalog.mark_complete(
            recording.id, Event("catalogue", SYSTEM_ACTOR, recording.id, detail=detail)
        ):
            self.metrics.completed("complete", recording.received_at, now(), detail.gaps)
            delay = upload_delay_s(recording)
            if delay is not None and delay > LATE_UPLOAD_S:
                self.metrics.late_uploads.inc()
            return [RecordingCatalogued(recording_id=recording.id)]
        return []
