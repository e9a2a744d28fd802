"""The stage handlers and the export builder, as ``workers.app.build_app`` wires them: which
collaborator each gets from the settings (segment files, custody, perceptual, transcode,
finalise; the package builder)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from catalog.exports import Builder
from catalog.gaps import recording_gaps
from catalog.repository import SYSTEM_ACTOR, Catalog
from ingest.segmenting import CustodyPath, Progress
from integrity.clips import ClipExporter
from integrity.compact import Compactor
from integrity.export import export_case
from integrity.ledger import Ledger, worm_checkpoint_keys
from integrity.segment_files import SegmentFiles
from store.base import ObjectStore
from transcode.ffmpeg import Tools
from workers.bus import Handler
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stages import FinaliseStage, PerceptualStage, SegmentStage, TranscodeStage

logger = logging.getLogger(__name__)


def make_segment_files(settings: Settings, store: ObjectStore, tools: Tools) -> SegmentFiles:
    """Segment files as their readers want them: stored, or cut again from the original."""
    return SegmentFiles(store=store, tools=tools, cache_dir=settings.work_dir / "segment-cache")


def make_custody(
    settings: Settings, *, catalog: Catalog, store: ObjectStore, tools: Tools, progress: Progress
) -> CustodyPath:
    """The custody path, as the segment stage and (with S3) ingest run it."""
    return CustodyPath(
        catalog=catalog,
        store=store,
        tools=tools,
        work_dir=settings.work_dir,
        segment_s=settings.segment_seconds,
        phash_fps=settings.phash_fps,
        gap_tolerance_frames=settings.continuity_tolerance_frames,
        progress=progress,
        keep_copies=settings.segment_copies == "keep",
    )


def make_stages(
    settings: Settings,
    *,
    custody: CustodyPath,
    catalog: Catalog,
    store: ObjectStore,
    tools: Tools,
    segment_files: SegmentFiles,
    progress: Progress,
    metrics: Metrics,
    ledger: Ledger,
) -> dict[str, Handler]:
    """The stage handlers, by stage name (``STAGE_INPUTS`` says what each consumes)."""

    def gap_count(recording_id: str) -> int:
        rec = catalog.recording(recording_id)
        return len(
            recording_gaps(rec, catalog.segments(rec.id), settings.continuity_tolerance_frames)
        )

    on_complete = (
        live_compactor(catalog, store, ledger, segment_files)
        if settings.segment_copies == "derive"
        else None
    )
    return {
        "segment": SegmentStage(
            custody=custody,
            metrics=metrics,
            recover=settings.recover_at_ingest,
        ),
        "phash": PerceptualStage(
            catalog=catalog,
            store=store,
            tools=tools,
            segment_files=segment_files,
            progress=progress,
            metrics=metrics,
        ),
        "transcode": TranscodeStage(
            catalog=catalog,
            store=store,
            tools=tools,
            work_dir=settings.work_dir,
            segment_s=settings.segment_seconds,
            gap_tolerance_frames=settings.continuity_tolerance_frames,
            progress=progress,
            metrics=metrics,
            cache=settings.proxy_cache_days is not None,
        ),
        "finalise": FinaliseStage(
            catalog=catalog, gap_counter=gap_count, metrics=metrics, on_complete=on_complete
        ),
    }


def live_compactor(
    catalog: Catalog, store: ObjectStore, ledger: Ledger, files: SegmentFiles
) -> Callable[[str], None]:
    """Without copies (``derive``), a live recording's copies, stored without retention
    while it recorded, go once it is complete: its original holds their bytes
    (``integrity.compact``; where this process cannot sign, a later ``vigil storage
    compact`` deletes them)."""
    compactor = Compactor(catalog=catalog, store=store, ledger=ledger, segment_files=files)

    def compact(recording_id: str) -> None:
        if any(s.kept and s.source for s in catalog.segments(recording_id)):
            (item,) = compactor.run(
                apply=True, actor=SYSTEM_ACTOR, recording_ids=[recording_id]
            ).items
            logger.info("%s: %s: %s", recording_id, item.state, item.detail)

    return compact


def make_export_builder(
    settings: Settings,
    *,
    catalog: Catalog,
    store: ObjectStore,
    ledger: Ledger,
    tools: Tools,
    files: SegmentFiles,
) -> Builder:
    """What builds a case's export package (``ExportService`` calls it once approved); with
    clips, signed with ``VIGIL_C2PA_SIGN_CERT`` and ``_KEY`` (read when it builds)."""

    def build_export(case_id: str, folder: Path, actor: str, reason: str, clips: bool) -> Path:
        certs = settings.ledger_tsa_certs
        sign = (settings.c2pa_sign_cert, settings.c2pa_sign_key)
        return export_case(
            catalog, store, ledger, case_id, folder, actor=actor, reason=reason,
            tolerance_frames=settings.continuity_tolerance_frames,
            device_tolerance_s=settings.device_gap_tolerance_s,
            worm_checkpoints=worm_checkpoint_keys(store),
            tsa_certs=certs.read_bytes() if certs else None,
            clips=ClipExporter.configured(tools, *sign) if clips else None,
            segment_files=files,
        )  # fmt: skip

    return build_export
