"""``LiveRecorder``: records a live source as one recording, from the ``ingest.live`` custody
event that starts its hash chain to the original stored when it ends."""

from __future__ import annotations

import hashlib
import shutil
import threading
import uuid
from dataclasses import replace
from pathlib import Path

from catalog.models import Recording
from catalog.repository import Catalog, Event, now
from ingest.custody import CustodyListener, SegmentWriter
from ingest.live.details import LiveDetail
from ingest.live.policy import LivePolicy, LiveResult, LiveSource
from ingest.live.storing import LiveRun
from ingest.service import RecordingMetadata
from store.base import ObjectStore
from transcode.ffmpeg import Tools, redact


class LiveRecorder:
    """Records live sources (``record``), each as one recording whose segments are stored,
    catalogued and announced while it is still recording."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        writer: SegmentWriter,
        listener: CustodyListener,
        work_dir: Path,
        segment_s: float,
        keep_copies: bool = True,
    ) -> None:
        """``keep_copies`` False (``VIGIL_SEGMENT_COPIES=derive``): each segment's copy is
        stored without retention while the camera records, and goes once the original holds
        its bytes (``integrity.compact``, when the recording is complete)."""
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.writer = writer
        self.listener = listener  # the runtime announces each segment (and drains) here
        self.work_dir = work_dir
        self.segment_s = segment_s
        self.keep_copies = keep_copies

    def record(
        self,
        source: str | LiveSource,
        metadata: RecordingMetadata,
        *,
        actor: str,
        policy: LivePolicy | None = None,
        stop: threading.Event | None = None,
        max_s: float | None = None,
    ) -> LiveResult:
        """Record ``source`` (a URL is pulled) until ``policy`` or ``stop`` ends it; return
        when the original is stored and the listener told the recording is segmented.

        Without ``policy`` one session is recorded, as before reconnects existed
        (``LivePolicy(max_outage_s=0)``); ``max_s``, if given, overrides ``policy.max_s``.
        """
        live = source if isinstance(source, LiveSource) else LiveSource(source)
        if policy is None:
            policy = LivePolicy(max_outage_s=0.0)
        if max_s is not None:
            policy = replace(policy, max_s=max_s)
        recording = self._begin(live, metadata, actor)
        work = self.work_dir / recording.id
        work.mkdir(parents=True, exist_ok=True)
        run = LiveRun(
            self, recording, live, policy, stop or threading.Event(), work,
            keep_device_start=metadata.device_start is not None,
        )  # fmt: skip
        result = run.run()
        shutil.rmtree(work, ignore_errors=True)
        return result

    def _begin(self, source: LiveSource, metadata: RecordingMetadata, actor: str) -> Recording:
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
        verb = "listening for a push on" if source.mode == "push" else "live stream from"
        created, _ = self.catalog.add_recording(
            row,
            Event(
                "ingest.live",
                actor,
                recording_id,
                reason=f"{verb} {redact(source.url)}",
                detail=LiveDetail(anchor=anchor, source=redact(source.url), mode=source.mode),
            ),
        )
        return created
