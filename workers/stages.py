"""The stage handlers: each takes one message and returns the messages it emits.

They run unchanged on the in-process bus and under Kafka consumers. Every handler is
idempotent: objects are stored write-once (identical content is a no-op), catalogue rows are
inserted if absent, and a handler that finds its work done re-emits what it would have emitted,
so at-least-once delivery neither loses nor duplicates anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel
from vigil_verify.audio_tracks import AudioTracks, AudioUndecodable
from vigil_verify.sampling import DEFAULT_RATE, SAMPLING_FRAMES

from catalog.clock import LATE_UPLOAD_S, upload_delay_s
from catalog.models import ProxySegment, Recording, Segment
from catalog.recovered import source_object
from catalog.repository import SYSTEM_ACTOR, Catalog, Event, now
from ingest.custody import store_playlist
from ingest.recovery import RecoveryService
from ingest.segmenting import CustodyPath, Progress, Segmented, no_progress
from integrity.audio import segment_audio, segment_media
from integrity.frames import segment_hashes
from integrity.phash import FrameHashes
from integrity.segment_files import SegmentFiles, plan_from_rows
from store.base import ObjectStore, sha256_file
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools
from transcode.proxy_settings import ProxySettings
from transcode.segmenter import make_proxy, proxy_audio
from workers.errors import StageError
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

logger = logging.getLogger(__name__)


class SegmentStage:
    """The custody path (``ingest.segmenting``) as a stage: OriginalStored → the segments on
    record, announced to the dense index, and the recording to the stages that follow."""

    def __init__(
        self, *, custody: CustodyPath, metrics: Metrics | None = None, recover: bool = False
    ) -> None:
        """``recover``: an unreadable MP4/MOV is recovered at once where it can be."""
        self.custody = custody
        self.metrics = metrics if metrics is not None else Metrics()
        self.recovery = RecoveryService(
            catalog=custody.catalog, store=custody.store, tools=custody.tools,
            work_dir=custody.work_dir, custody=custody,
        )  # fmt: skip
        self.recover = recover

    def __call__(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, OriginalStored)
        done = self.custody.segment(message.recording_id)
        if done is None and self.recover:
            done = self._recovered(message.recording_id)
        if done is None:
            return []
        self.metrics.segmented(done)
        return self.announce(done.recording, done.segments)

    def _recovered(self, recording_id: str) -> Segmented | None:
        """An unreadable recording recovered with an earlier one of its device (None: not)."""
        rec = self.custody.catalog.recording(recording_id)
        try:
            done = self.recovery.recover(
                rec.id, like=None, actor=SYSTEM_ACTOR, name=rec.original_name
            )
        except TranscodeError as exc:  # impossible, or ffmpeg failed: it stays unreadable
            logger.warning("%s: not recovered at ingest: %s", rec.id, exc)
            return None
        return done.segmented

    @staticmethod
    def announce(recording: Recording, segments: Sequence[Segment]) -> list[Message]:
        out: list[Message] = [segment_stored(s) for s in segments if s.phash is None]
        out.append(RecordingSegmented(recording_id=recording.id, count=len(segments)))
        return out


class PerceptualStage:
    """SegmentStored → per-frame PDQ hashes of the segment: every frame at its own time,
    upright (the recording's catalogued ``rotation``, signed in ``segment.hashed``)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        segment_files: SegmentFiles,
        progress: Progress = no_progress,
        metrics: Metrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.segment_files = segment_files
        self.progress = progress
        self.metrics = metrics if metrics is not None else Metrics()

    def __call__(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, SegmentStored)
        recording = self.catalog.recording(message.recording_id)
        rows = self.catalog.segments(recording.id)
        done = next((s for s in rows if s.index == message.index), None)
        if done is None:
            raise StageError(f"{recording.id} segment {message.index} is not catalogued")
        if done.phash is None:
            started = time.monotonic()
            origin = recording.origin_s or 0.0
            # every-frame hashes of a turned recording are of upright pictures; a grid (older
            # recordings) is decoded as it always was
            rotation = (recording.rotation or 0) if not recording.phash_fps else 0
            with self._file(recording, rows, done) as path:
                hashes, audio = self._hash(recording, path, origin, message.start_s, rotation)
            blob = hashes.to_bytes()
            audio_blob = audio.to_bytes() if audio is not None else None
            detail = SegmentHashedDetail(
                index=message.index,
                segment_sha256=done.sha256,
                phash_sha256=hashlib.sha256(blob).hexdigest(),
                frames=len(hashes),
                rate=hashes.rate,
                sampling=None if recording.phash_fps else SAMPLING_FRAMES,
                audio_sha256=hashlib.sha256(audio_blob).hexdigest() if audio_blob else None,
                audio_tracks=len(audio) if audio is not None else None,
                rotation=rotation or None,
            )
            self.catalog.set_segment_phash(
                recording.id,
                message.index,
                blob,
                hashes.digest(),
                len(hashes),
                Event("segment.hashed", SYSTEM_ACTOR, recording.id, detail=detail),
                audio=audio_blob,
            )
            self.metrics.processed("phash", message.end_s - message.start_s, done.size)
            self.metrics.speed(
                "decode", message.end_s - message.start_s, time.monotonic() - started
            )
            if recording.segment_count:
                self.progress(recording.id, "phash", (message.index + 1) / recording.segment_count)
        return [SegmentHashed(recording_id=recording.id, index=message.index)]

    def _file(
        self, recording: Recording, rows: Sequence[Segment], done: Segment
    ) -> contextlib.AbstractContextManager[Path]:
        """The segment's stored copy, or, when none is kept, the segment cut again from the
        original (``integrity.segment_files``)."""
        if done.kept:
            return self.store.local_path("derived", done.key)
        plan = plan_from_rows(recording, rows)
        if plan is None:
            raise StageError(f"{recording.id} segment {done.index}: no copy, no packet ranges")
        return self.segment_files.path(plan, done.index)

    def _hash(
        self, recording: Recording, path: Path, origin: float, start_s: float, rotation: int
    ) -> tuple[FrameHashes, AudioTracks | None]:
        """The segment's per-frame hashes and audio fingerprints; one decode for both where
        the recording has pictures and sound and is hashed frame by frame."""
        has_video = _has_video(recording)
        if has_video and not recording.phash_fps and recording.audio_tracks:
            heard = segment_media(self.tools, path, origin_s=origin, rotation=rotation)
            if heard.unheard is not None:
                logger.warning("%s: audio not fingerprinted: %s", recording.id, heard.unheard)
            return heard.hashes, heard.audio
        if has_video is False:
            hashes = FrameHashes.empty(DEFAULT_RATE)  # an audio-only recording
        else:
            hashes = segment_hashes(
                self.tools,
                path,
                rate=recording.phash_fps or None,
                origin_s=origin,
                start_s=start_s,
                rotation=rotation,
            )
        return hashes, self._audio(recording, path, origin)

    def _audio(self, recording: Recording, path: Path, origin: float) -> AudioTracks | None:
        """The segment's audio fingerprints; None when its audio does not decode (the log
        says so; its pictures are still hashed and signed)."""
        try:
            return segment_audio(self.tools, path, origin_s=origin)
        except AudioUndecodable as exc:
            logger.warning("%s: audio not fingerprinted: %s", recording.id, exc)
            return None


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
        cache: bool = False,
    ) -> None:
        """``cache``: the proxy is stored without retention, to expire when unused
        (``catalog.proxy_cache``) and be made again when wanted."""
        self.catalog = catalog
        self.cache = cache
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
            bucket, key = source_object(self.catalog, recording)  # a recovered stream, if any
            with self.store.local_path(bucket, key) as source:
                source_kbps = _kbps(source, recording)
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
                    video=_has_video(recording),
                    size=_size(recording),
                    fps=recording.fps,
                    source_kbps=source_kbps,
                )
            origin = recording.origin_s or 0.0
            rows: list[ProxySegment] = []
            for item in made:
                sha, size = sha256_file(item.path)
                key = f"{recording.id}/proxy/proxy-{item.index:05d}-{sha[:12]}.ts"
                self.store.put_file(
                    "derived", key, item.path, sha, category=recording.category,
                    retain=not self.cache,
                )  # fmt: skip
                rows.append(
                    ProxySegment(
                        recording_id=recording.id, index=item.index, key=key, sha256=sha,
                        size=size, start_s=item.start_s - origin, end_s=item.end_s - origin,
                    )
                )  # fmt: skip
            playlist_key = f"{recording.id}/proxy/index.m3u8"
            playlist_sha = store_playlist(
                self.store, recording, rows, path=work / "proxy.m3u8", key=playlist_key,
                gap_tolerance_frames=self.gap_tolerance_frames, retain=not self.cache,
            )  # fmt: skip
            detail = ProxyDetail(
                source_sha256=recording.sha256,
                playlist_sha256=playlist_sha,
                files=[ProxyFileDetail.model_validate(r, from_attributes=True) for r in rows],
                settings=self.proxy.label(_size(recording), recording.fps, source_kbps),
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


def _size(recording: Recording) -> tuple[int, int] | None:
    if recording.width and recording.height:
        return recording.width, recording.height
    return None


def _kbps(source: Path, recording: Recording) -> float | None:
    """The source file's mean bitrate, kb/s (None: its duration is not known)."""
    if not recording.duration_s or recording.duration_s <= 0:
        return None
    return source.stat().st_size * 8 / 1000 / recording.duration_s


class SegmentHashedDetail(BaseModel):
    """The custody event of a segment's per-frame perceptual hashes (the ``.pdq`` blob)."""

    index: int
    segment_sha256: str
    phash_sha256: str
    frames: int
    rate: float  # the fixed grid's rate; with every-frame sampling, the usual frame rate
    sampling: str | None = None  # "frames": every decoded frame at its own time
    # the ``vigil_verify.audio_tracks`` blob's SHA-256 and its number of tracks (0: no audio);
    # None: not fingerprinted (hashed before audio was, or the audio does not decode)
    audio_sha256: str | None = None
    audio_tracks: int | None = None
    # clockwise degrees the segment's pictures were turned to be hashed upright (its
    # recording's display matrix, which a stream-copied segment loses); None: 0, not turned
    rotation: int | None = None


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
        on_complete: Callable[[str], object] | None = None,
    ) -> None:
        """``on_complete``: told of each recording made complete (a live recording's copies
        go then, ``workers.wiring``); its failure is logged, the recording stays complete."""
        self.catalog = catalog
        self.gap_counter = gap_counter
        self.metrics = metrics if metrics is not None else Metrics()
        self.on_complete = on_complete

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
            if self.on_complete is not None:
                try:
                    self.on_complete(recording.id)
                except Exception:  # `vigil storage compact` does it later
                    logger.exception("%s: complete; its copies were not compacted", recording.id)
            return [RecordingCatalogued(recording_id=recording.id)]
        return []


def segment_stored(row: Segment) -> SegmentStored:
    """The message that announces a catalogued segment to the perceptual stage."""
    return SegmentStored(
        recording_id=row.recording_id,
        index=row.index,
        key=row.key,
        sha256=row.sha256,
        start_s=row.start_s,
        end_s=row.end_s,
    )


def _has_video(recording: Recording) -> bool | None:
    """Whether the original has pictures, as the custody stage's probe catalogued it (None:
    the catalogue does not say; ``make_proxy`` looks)."""
    if recording.video_codec is not None:
        return True
    return False if recording.audio_codec is not None else None
