"""The stage handlers: each takes one message and returns the messages it emits.

They run unchanged on the in-process bus and under Kafka consumers. Every handler is
idempotent: objects are stored write-once (identical content is a no-op), catalogue rows are
inserted if absent, and a handler that finds its work done re-emits what it would have emitted,
so at-least-once delivery neither loses nor duplicates anything.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel

from catalog.figures import LATE_UPLOAD_S
from catalog.models import ProxySegment, Recording, Segment
from catalog.repository import Catalog, Event, now
from catalog.stats import upload_delay_s
from ingest.store import ObjectStore, sha256_file
from integrity.continuity import tolerance_s
from transcode.commands import ProxySettings
from transcode.ffmpeg import Tools, TranscodeError
from transcode.frames import segment_hashes
from transcode.keyframes import Keyframes, keyframe_hashes
from transcode.probe import NotVideoError, ProbeResult, probe
from transcode.segmenter import make_proxy, playable, proxy_audio, segment_file
from workers.messages import (
    Message,
    OriginalStored,
    ProxyStored,
    RecordingCatalogued,
    RecordingSegmented,
    SegmentHashed,
    SegmentStored,
)
from workers.metrics import Metrics
from workers.segment_writer import (
    SegmentWriter,
    record_probe,
    segment_stored,
    store_playlist,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, str, float], None]
"""(recording_id, stage, fraction done 0..1)"""

SYSTEM_ACTOR = "vigil"


def no_progress(_recording: str, _stage: str, _fraction: float) -> None:
    return None


class StageError(Exception):
    """A stage could not finish its work on a message."""


class SegmentStage:
    """The custody path. OriginalStored → probe, stream-copy segment, SHA-256, keyframe PDQ,
    store, chain, catalogue with custody events.

    Nothing here decodes more than the keyframes, so a recording is on record and tamper
    evident within seconds; the dense index (``PerceptualStage``) and the review proxy
    (``TranscodeStage``) follow in their own stages and never hold this one up.
    """

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
        started = time.monotonic()
        with (
            self.store.local_path("originals", recording.original_key) as source,
            ThreadPoolExecutor(1, thread_name_prefix="keyframes") as pool,
        ):
            # The keyframes decode on the other core from the start, while this thread
            # probes, cuts, hashes and stores: all of them only read the original.
            keyframes = pool.submit(keyframe_hashes, self.tools, source)
            try:
                probed = probe(self.tools.runner, self.tools.ffmpeg, source)
            except NotVideoError as exc:
                self._unreadable(recording, str(exc))
                return []
            record_probe(
                self.catalog, recording.id, probed, status="segmenting", container=probed.container
            )
            video = probed.video
            assert video is not None
            work = self.work_dir / recording.id
            total = max(video.end_s - video.start_s, 1e-3)
            try:
                segments = self._segment(recording, source, probed, work, total, keyframes)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        self.metrics.speed("segment", total, time.monotonic() - started)
        self.metrics.processed("segment", total, recording.size)
        self.metrics.segments.labels("copy").inc(len(segments))
        recording = self.catalog.recording(recording.id)
        return self._announce(recording, segments)

    def _segment(
        self,
        recording: Recording,
        source: Path,
        probed: ProbeResult,
        work: Path,
        total: float,
        keyframes: Future[Keyframes],
    ) -> list[Segment]:
        video = probed.video
        assert video is not None
        outcome = segment_file(
            self.tools.runner,
            self.tools.ffmpeg,
            source,
            work,
            probed=probed,
            segment_s=self.segment_s,
            timeout_s=self.tools.timeout_s,
            hole_tolerance_s=tolerance_s(
                video.frame_duration_s, video.hold_s, self.gap_tolerance_frames
            ),
            on_progress=lambda t: self.progress(recording.id, "segment", min(t / total, 1)),
        )
        damage = [recording.damage, probed.describe_damage(), outcome.damage]
        # Hash and store every file while the keyframes still decode on the other core (I/O
        # and hashing here, decoding there); the rows and events follow once both are done.
        stored = [self.writer.put(recording, produced) for produced in outcome.segments]
        try:
            found = keyframes.result()
        except TranscodeError as exc:  # the custody record goes on; the gap is on record
            damage.append(f"keyframes not hashed: {exc}")
            found = None
        segments: list[Segment] = []
        origin = outcome.segments[0].start_s
        # Keyframe k belongs to the segment whose span holds it (half a frame of slack for
        # the timestamp rounding between the source's and the segments' time bases).
        slack = video.frame_duration_s / 2
        starts = [p.start_s - outcome.shift_s - slack for p in outcome.segments]
        ends = [*starts[1:], math.inf]
        for produced, kept, lo, hi in zip(outcome.segments, stored, starts, ends, strict=True):
            picked = found.between(lo, hi, origin_s=origin - outcome.shift_s) if found else []
            previous = segments[-1].chain if segments else recording.anchor
            segments.append(
                self.writer.add(
                    recording, produced, origin=origin, previous=previous, kind="copy",
                    keyframes=picked, stored=kept,
                )
            )  # fmt: skip
            self.progress(recording.id, "store", len(segments) / len(outcome.segments))
        self.writer.finish(
            recording,
            segments,
            "copy",
            "; ".join(d for d in damage if d),
            work,
            playback="copy" if playable(probed) else "proxy",
        )
        return segments

    def _unreadable(self, recording: Recording, reason: str) -> None:
        damage = recording.damage or f"unreadable: {reason}"
        self.catalog.update_recording(recording.id, status="unreadable", damage=damage)
        self.catalog.add_event(Event("flag.unreadable", SYSTEM_ACTOR, recording.id, reason=damage))

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


class ProxyFileDetail(BaseModel):
    index: int
    key: str
    sha256: str
    size: int
    start_s: float
    end_s: float


class ProxyDetail(BaseModel):
    """The custody event of a review proxy: every file, linked to the original it came from."""

    source_sha256: str
    playlist_sha256: str
    files: list[ProxyFileDetail]
    settings: str  # the x264/AAC settings it was made with


class TranscodeStage:
    """The transcode path. RecordingSegmented → the review proxy (H.264/AAC HLS), only for a
    recording whose evidence segments a browser cannot play; nothing for the rest."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        work_dir: Path,
        segment_s: float,
        gap_tolerance_frames: float,
        proxy: ProxySettings = ProxySettings(),
        progress: Progress = no_progress,
        metrics: Metrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.work_dir = work_dir
        self.segment_s = segment_s
        self.gap_tolerance_frames = gap_tolerance_frames
        self.proxy = proxy
        self.progress = progress
        self.metrics = metrics if metrics is not None else Metrics()

    def __call__(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, RecordingSegmented)
        recording = self.catalog.recording(message.recording_id)
        if recording.playback != "proxy":
            return []
        if recording.proxy_playlist_key is None:
            self._make(recording)
        count = len(self.catalog.proxy_segments(recording.id))
        return [ProxyStored(recording_id=recording.id, count=count)]

    def _make(self, recording: Recording) -> None:
        """Transcode, then hash and store each file, the playlist, and catalogue it all with
        the custody event. What to make comes from the catalogue (the custody stage probed)."""
        work = self.work_dir / f"{recording.id}-proxy"
        started = time.monotonic()
        total = max(recording.duration_s or 0.0, 1e-3)
        try:
            with self.store.local_path("originals", recording.original_key) as source:
                made = make_proxy(
                    self.tools.runner,
                    self.tools.ffmpeg,
                    source,
                    work,
                    audio=proxy_audio(recording.audio_codec),
                    segment_s=self.segment_s,
                    proxy=self.proxy,
                    timeout_s=self.tools.timeout_s,
                    on_progress=lambda t: self.progress(
                        recording.id, "transcode", min(t / total, 1)
                    ),
                )
            origin = recording.origin_s or 0.0
            rows: list[ProxySegment] = []
            for item in made:
                sha, size = sha256_file(item.path)
                key = f"{recording.id}/proxy/proxy-{item.index:05d}-{sha[:12]}.ts"
                self.store.put_file("derived", key, item.path, sha, category=recording.category)
                rows.append(
                    ProxySegment(
                        recording_id=recording.id, index=item.index, key=key, sha256=sha,
                        size=size, start_s=item.start_s - origin, end_s=item.end_s - origin,
                    )
                )  # fmt: skip
            playlist_key = f"{recording.id}/proxy/index.m3u8"
            playlist_sha = store_playlist(
                self.store, recording, rows, path=work / "proxy.m3u8", key=playlist_key,
                gap_tolerance_frames=self.gap_tolerance_frames,
            )  # fmt: skip
            detail = ProxyDetail(
                source_sha256=recording.sha256,
                playlist_sha256=playlist_sha,
                files=[ProxyFileDetail.model_validate(r, from_attributes=True) for r in rows],
                settings=proxy_label(self.proxy),
            )
            self.catalog.add_proxy(
                recording.id,
                rows,
                playlist_key=playlist_key,
                playlist_sha256=playlist_sha,
                event=Event("proxy.stored", SYSTEM_ACTOR, recording.id, detail=detail),
            )
            total_s = rows[-1].end_s - rows[0].start_s if rows else 0.0
            self.metrics.speed("transcode", total_s, time.monotonic() - started)
            self.metrics.processed("transcode", total_s, sum(r.size for r in rows))
        finally:
            shutil.rmtree(work, ignore_errors=True)


def proxy_label(proxy: ProxySettings) -> str:
    return (
        f"libx264 preset={proxy.preset} crf={proxy.crf} threads={proxy.threads};"
        f" aac {proxy.audio_bitrate}"
    )


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
    """RecordingSegmented / SegmentHashed / ProxyStored → the recording is complete once every
    segment's dense hashes are in and, where one is needed, the review proxy is stored."""

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
        assert isinstance(message, RecordingSegmented | SegmentHashed | ProxyStored)
        recording = self.catalog.recording(message.recording_id)
        if recording.segment_count is None:
            return []
        segments = self.catalog.segments(recording.id)
        if len(segments) < recording.segment_count or any(s.phash is None for s in segments):
            return []
        if recording.playback == "proxy" and recording.proxy_playlist_key is None:
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
