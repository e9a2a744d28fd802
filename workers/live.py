"""Live streams: segments stored, catalogued and announced while the stream is still recording.

``LiveRecorder`` runs one ffmpeg on the stream (any input ffmpeg reads: an RTSP/HTTP URL, a
``tcp://…?listen`` push, a growing file) that writes segments and the stream as received. Each
segment, once closed, is hashed, stored, chained and catalogued, and a ``segment.stored``
message goes out at once, so the perceptual workers run while the camera is still recording.
When the stream ends the received stream is stored as the original, and ``recording.segmented``
lets the recording be finalised.

The chain cannot start from the original's hash (it is complete only at the end), so a live
recording's chain starts from an anchor fixed when recording begins; the original's hash is
recorded when it ends.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from catalog.models import Recording, Segment
from catalog.repository import Catalog, Event, now
from ingest.service import RecordingMetadata
from ingest.store import ObjectStore, sha256_file
from integrity.continuity import tolerance_s
from transcode.commands import live_command
from transcode.ffmpeg import FfmpegFailed, Tools, redact
from transcode.probe import probe
from transcode.segmenter import SegmentFile
from workers.messages import Message, RecordingSegmented
from workers.segment_writer import SYSTEM_ACTOR, SegmentWriter, segment_stored

logger = logging.getLogger(__name__)


class LiveDetail(BaseModel):
    """A live recording began: its hash chain starts from ``anchor``."""

    anchor: str
    source: str


class OriginalDetail(BaseModel):
    """A live recording ended: the whole stream as received is stored with this hash."""

    sha256: str
    size: int
    original_key: str


@dataclass(frozen=True)
class LiveResult:
    recording_id: str
    segments: int
    sha256: str
    stopped_by: str  # "end of stream" or what ffmpeg said


class LiveRecorder:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        writer: SegmentWriter,
        publish: Callable[[Message], None],
        work_dir: Path,
        segment_s: float,
        after_publish: Callable[[], object] = lambda: None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.writer = writer
        self.publish = publish
        self.work_dir = work_dir
        self.segment_s = segment_s
        self.after_publish = after_publish  # the in-process bus drains here

    def record(
        self, source: str, metadata: RecordingMetadata, *, actor: str, max_s: float
    ) -> LiveResult:
        recording = self._begin(source, metadata, actor)
        work = self.work_dir / recording.id
        work.mkdir(parents=True, exist_ok=True)
        original = work / "original.ts"
        cmd = live_command(
            self.tools.ffmpeg, source, work, segment_s=self.segment_s, original=original
        )
        stopped_by = "end of stream"
        outcome: list[str] = []

        def run() -> None:
            try:
                self.tools.runner.run(cmd, timeout_s=max_s)
            except FfmpegFailed as exc:
                outcome.append(str(exc))
            except Exception as exc:  # a timeout or a stop ends the recording, not the footage
                outcome.append(f"{type(exc).__name__}: {exc}")

        recorder = threading.Thread(target=run, name=f"live-{recording.id}", daemon=True)
        recorder.start()
        segments: list[Segment] = []
        while recorder.is_alive():
            recorder.join(timeout=0.5)
            segments += self._take_closed(recording, work, len(segments), segments)
        segments += self._take_closed(recording, work, len(segments), segments)
        if outcome:
            stopped_by = outcome[0]
        self._end(recording, original, segments, work, stopped_by)
        shutil.rmtree(work, ignore_errors=True)
        final = self.catalog.recording(recording.id)
        return LiveResult(recording.id, len(segments), final.sha256, stopped_by)

    def _begin(self, source: str, metadata: RecordingMetadata, actor: str) -> Recording:
        recording_id = f"rec-{uuid.uuid4().hex[:16]}"
        received = now()
        anchor = hashlib.sha256(
            f"vigil-live:{recording_id}:{metadata.device_id}:{received.isoformat()}".encode()
        ).hexdigest()
        row = Recording(
            id=recording_id,
            sha256=f"live-{uuid.uuid4().hex}",  # replaced by the original's hash at the end
            size=0,
            original_key=f"{recording_id}/original.ts",
            original_name=metadata.original_name,
            device_id=metadata.device_id,
            officer_id=metadata.officer_id,
            category=metadata.category,
            device_start=metadata.device_start or received,
            received_at=received,
            status="recording",
            chain_anchor=anchor,
        )
        created, _ = self.catalog.add_recording(
            row,
            Event(
                "ingest.live",
                actor,
                recording_id,
                reason=f"live stream from {redact(source)}",
                detail=LiveDetail(anchor=anchor, source=redact(source)),
            ),
        )
        return created

    def _take_closed(
        self, recording: Recording, work: Path, done: int, stored: list[Segment]
    ) -> list[Segment]:
        """Store, catalogue and announce every segment ffmpeg has closed since ``done``."""
        listing = work / "segments.csv"
        if not listing.exists():
            return []
        with listing.open(newline="") as fh:
            closed = [row[0] for row in csv.reader(fh) if row]
        added: list[Segment] = []
        recording = self.catalog.recording(recording.id)  # origin and codec as catalogued
        for name in closed[done:]:
            path = work / name
            probed = probe(self.tools.runner, self.tools.ffmpeg, path, timeout_s=60)
            video = probed.video
            assert video is not None
            index = done + len(added)
            if index == 0:
                self.catalog.update_recording(
                    recording.id,
                    video_codec=video.stream.codec,
                    audio_codec=probed.audio.stream.codec if probed.audio else None,
                    width=video.stream.width,
                    height=video.stream.height,
                    fps=round(video.fps, 3),
                    frame_hold_s=video.hold_s,
                    container="mpegts",
                )
                recording = self.catalog.recording(recording.id)
            chain = (stored + added)[-1].chain if (stored or added) else recording.chain_anchor
            assert chain is not None
            origin = recording.origin_s if recording.origin_s is not None else video.start_s
            produced = SegmentFile(
                index, path, video.start_s, video.end_s, video.count,
                tuple(video.jumps(tolerance_s(
                    video.frame_duration_s, video.hold_s, self.writer.gap_tolerance_frames
                ))),
            )  # fmt: skip
            row = self.writer.add(recording, produced, origin=origin, previous=chain, kind="copy")
            recording = self.catalog.recording(recording.id)
            added.append(row)
            self.publish(segment_stored(row))
            self.after_publish()
            logger.info("%s: live segment %d stored", recording.id, index)
        return added

    def _end(
        self,
        recording: Recording,
        original: Path,
        segments: list[Segment],
        work: Path,
        stopped_by: str,
    ) -> None:
        if not original.exists() or not segments:
            self.catalog.update_recording(
                recording.id, status="unreadable", damage=f"no footage received ({stopped_by})"
            )
            return
        sha, size = sha256_file(original)
        self.store.put_file("originals", recording.original_key, original, sha,
                            category=recording.category)  # fmt: skip
        self.catalog.update_recording(recording.id, sha256=sha, size=size)
        self.catalog.add_event(
            Event(
                "original.stored",
                SYSTEM_ACTOR,
                recording.id,
                detail=OriginalDetail(sha256=sha, size=size, original_key=recording.original_key),
            )
        )
        damage = "" if stopped_by == "end of stream" else f"recording stopped: {stopped_by}"
        self.writer.finish(recording, segments, "copy", damage, work)
        self.publish(RecordingSegmented(recording_id=recording.id, count=len(segments)))
        self.after_publish()
