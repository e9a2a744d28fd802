"""The one place that wires Vigil together: settings in, collaborators built and passed on.

``build_app`` makes the store, catalogue, bus and runner from settings and hands them to the
services and stages; ``Vigil.stop`` undoes it in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from catalog.db import make_engine
from catalog.repository import Catalog
from catalog.timeline import recording_gaps
from ingest.service import IngestService
from ingest.store import LocalFolderStore, ObjectStore
from integrity.verify import Verifier
from transcode.ffmpeg import ProcessRunner, Tools, find_ffmpeg
from workers.bus import InProcessBus
from workers.messages import OriginalStored
from workers.settings import Settings
from workers.stages import (
    FinaliseStage,
    PerceptualStage,
    Progress,
    SegmentStage,
    no_progress,
)

logger = logging.getLogger(__name__)


@dataclass
class Vigil:
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    bus: InProcessBus
    runner: ProcessRunner
    tools: Tools
    ingest: IngestService
    verifier: Verifier

    def run_pipeline(self) -> int:
        """Deliver every pending message through the stages; return how many."""
        return self.bus.drain()

    def stop(self) -> None:
        self.runner.stop()
        self.catalog.engine.dispose()


def build_app(settings: Settings, progress: Progress = no_progress) -> Vigil:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(make_engine(settings.resolved_catalog_url))
    catalog.migrate()
    store = LocalFolderStore(settings.store_root)
    bus = InProcessBus()
    runner = ProcessRunner(default_timeout_s=settings.ffmpeg_timeout_s)
    tools = Tools(runner, find_ffmpeg(settings.ffmpeg), settings.ffmpeg_timeout_s)

    def publish(message: OriginalStored) -> None:
        bus.publish(message)

    ingest = IngestService(
        catalog=catalog,
        store=store,
        publish=publish,
        runner=runner,
        ffmpeg=tools.ffmpeg,
        staging_dir=settings.staging_dir,
        probe_timeout_s=settings.probe_timeout_s,
        clock_drift_flag_s=settings.clock_drift_flag_s,
    )
    segment = SegmentStage(
        catalog=catalog,
        store=store,
        tools=tools,
        work_dir=settings.work_dir,
        segment_s=settings.segment_seconds,
        phash_fps=settings.phash_fps,
        gap_tolerance_frames=settings.continuity_tolerance_frames,
        progress=progress,
    )
    phash = PerceptualStage(catalog=catalog, store=store, tools=tools, progress=progress)

    def gap_count(recording_id: str) -> int:
        rec = catalog.recording(recording_id)
        return len(
            recording_gaps(rec, catalog.segments(rec.id), settings.continuity_tolerance_frames)
        )

    finalise = FinaliseStage(catalog=catalog, gap_counter=gap_count)
    bus.subscribe("vigil.original.stored", segment)
    bus.subscribe("vigil.segment.stored", phash)
    bus.subscribe("vigil.recording.segmented", finalise)
    bus.subscribe("vigil.segment.hashed", finalise)
    verifier = Verifier(catalog=catalog, store=store, tools=tools)
    return Vigil(settings, catalog, store, bus, runner, tools, ingest, verifier)
