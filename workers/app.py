"""The one place that wires Vigil together: settings in, collaborators built and passed on.

``build_app`` makes the store, catalogue, publisher and runner from settings and hands them to
the services and the stage handlers. On the in-process bus every stage is subscribed here and
``run_pipeline`` drives them; under Kafka each stage runs in its own worker process
(``vigil worker STAGE``) on the same handler. ``Vigil.stop`` undoes it all in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from catalog.access import AccessService
from catalog.cases import CaseService
from catalog.db import make_engine
from catalog.exports import ExportService
from catalog.figures import known_devices
from catalog.models import Segment
from catalog.repository import Catalog
from catalog.retention import RetentionService
from ingest.custody import SegmentWriter
from ingest.live import LiveRecorder
from ingest.segmenting import CustodyPath, Progress, no_progress
from ingest.service import IngestResult, IngestService, RecordingMetadata
from ingest.uploads import UploadLimits, UploadService
from integrity.credentials import CredentialsReader, TrustList
from integrity.keys import (
    SigningKey,
    VerifyingKey,
    create_signing_key,
    load_signing_key,
    load_verifying_key,
)
from integrity.ledger import Ledger, Timestamper, worm_checkpoint_keys
from integrity.segment_files import SegmentFiles
from integrity.tsa import request_timestamp
from integrity.verify import Verifier
from integrity.witness_ledger import LedgerWitnesses
from store.base import ObjectStore
from store.local import LocalFolderStore
from store.retention import RetentionPolicy
from store.s3 import S3ObjectStore
from transcode.ffmpeg import ProcessRunner, Tools, find_ffmpeg
from workers.bus import Handler, InProcessBus
from workers.kafka_bus import KafkaPublisher, ensure_topics
from workers.messages import Message, OriginalStored, RecordingSegmented, topic_for
from workers.metrics import InstrumentedStore, Metrics, command_kind
from workers.settings import Settings
from workers.stages import (
    segment_stored,
)
from workers.wiring import (
    make_custody,
    make_export_builder,
    make_segment_files,
    make_stages,
)

logger = logging.getLogger(__name__)


def _nothing() -> None:
    return None


def original_stored(result: IngestResult) -> OriginalStored:
    return OriginalStored(
        recording_id=result.recording_id, original_key=result.original_key,
        sha256=result.sha256, size=result.size,
    )  # fmt: skip


class AnnouncingIngest:
    """``IngestService`` as the runtime uses it: whatever it takes in that still needs
    processing is announced on the bus (ingest itself returns results and publishes nothing)."""

    def __init__(
        self,
        service: IngestService,
        publish: Callable[[Message], None],
        prepare: Callable[[], None] = lambda: None,
    ) -> None:
        """``prepare``: called as an ingest starts, so that its announcement need not wait
        for the bus to connect (``Messaging.prepare``)."""
        self.service = service
        self.publish = publish
        self.prepare = prepare

    def _announced(self, result: IngestResult) -> IngestResult:
        if result.announce:
            self.publish(original_stored(result))
        return result

    def ingest_file(
        self,
        path: Path,
        metadata: RecordingMetadata,
        *,
        actor: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> IngestResult:
        self.prepare()
        return self._announced(
            self.service.ingest_file(path, metadata, actor=actor, on_bytes=on_bytes)
        )

    def ingest_staged(
        self,
        staged: Path,
        *,
        sha256: str,
        size: int,
        metadata: RecordingMetadata,
        actor: str,
        received_at: datetime,
        handover_at: datetime | None = None,
    ) -> IngestResult:
        self.prepare()
        return self._announced(
            self.service.ingest_staged(
                staged,
                sha256=sha256,
                size=size,
                metadata=metadata,
                actor=actor,
                received_at=received_at,
                handover_at=handover_at,
            )
        )


@dataclass
class BusListener:
    """A live recording's custody progress, put on the bus as it happens; ``after`` runs after
    each announcement (``vigil live`` pokes the work behind the custody path there)."""

    publish: Callable[[Message], None]
    after: Callable[[], object] = _nothing

    def segment_catalogued(self, row: Segment) -> None:
        self.publish(segment_stored(row))
        self.after()

    def recording_segmented(self, recording_id: str, count: int) -> None:
        self.publish(RecordingSegmented(recording_id=recording_id, count=count))
        self.after()


STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "segment": ("original.stored",),
    "phash": ("segment.stored",),
    "transcode": ("recording.segmented",),
    "finalise": ("recording.segmented", "segment.hashed", "proxy.stored"),
}
"""The message types each stage consumes. Three paths, each its own stage (its own consumer
group under Kafka) so that each scales apart: ``segment`` is the custody path (store, stream
copy, SHA-256, keyframe hashes, catalogue: seconds), ``phash`` the dense perceptual index
(decode-bound), ``transcode`` the review proxy (only for sources a browser cannot play)."""


@dataclass
class Vigil:
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    runner: ProcessRunner
    tools: Tools
    publish: Callable[[Message], None]
    stages: dict[str, Handler]
    ingest: AnnouncingIngest
    verifier: Verifier
    cases: CaseService
    ledger: Ledger
    retention: RetentionService
    metrics: Metrics
    access: AccessService
    uploads: UploadService
    exports: ExportService
    segment_files: SegmentFiles
    notices: list[str] = field(default_factory=list)
    bus: InProcessBus | None = None
    publisher: KafkaPublisher | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    _drain_lock: threading.Lock = field(default_factory=threading.Lock)

    def run_pipeline(self) -> int:
        """In-process: deliver every pending message through the stages; return how many.
        Under Kafka the stage workers do this; nothing to run here. One drain at a time (the
        API's background thread and a caller may both ask): a second caller waits, then finds
        the work done."""
        if self.bus is None:
            return 0
        with self._drain_lock:
            return self.bus.drain()

    def resume_unfinished(self) -> int:
        """Re-announce every recording whose processing did not finish (after a crash or a
        restart: the in-process bus does not outlive its process); the stages are idempotent."""
        pending = [
            r
            for r in self.catalog.recordings()
            if r.status not in ("complete", "unreadable", "deleted", "recording")
        ]
        for rec in pending:
            self.publish(
                OriginalStored(
                    recording_id=rec.id, original_key=rec.original_key, sha256=rec.sha256,
                    size=rec.size,
                )
            )  # fmt: skip
        return len(pending)

    def live_recorder(
        self, *, segment_s: float | None = None, after_publish: Callable[[], object] = _nothing
    ) -> LiveRecorder:
        """A recorder of live streams wired to this app; ``after_publish`` runs after each
        segment is announced (``vigil live`` pokes the work behind the custody path there)."""
        return LiveRecorder(
            catalog=self.catalog,
            store=self.store,
            tools=self.tools,
            writer=SegmentWriter(
                catalog=self.catalog,
                store=self.store,
                phash_fps=self.settings.phash_fps,
                gap_tolerance_frames=self.settings.continuity_tolerance_frames,
            ),
            listener=BusListener(self.publish, after_publish),
            work_dir=self.settings.work_dir,
            segment_s=self.settings.segment_seconds if segment_s is None else segment_s,
            keep_copies=self.settings.segment_copies == "keep",
        )

    def worm_checkpoints(self) -> list[str]:
        """Keys of the signed tree heads in the WORM store (they outlive the catalogue's)."""
        return worm_checkpoint_keys(self.store)

    def stop(self) -> None:
        self.runner.stop()
        for close in reversed(self._closers):
            close()
        self.catalog.engine.dispose()


def make_timestamper(settings: Settings) -> Timestamper | None:
    """RFC 3161 timestamps of tree heads from the configured TSA, if any."""
    url = settings.ledger_tsa_url
    if url is None:
        return None

    def timestamp(digest: bytes) -> bytes:
        return request_timestamp(url, digest, timeout_s=settings.ledger_tsa_timeout_s).token

    return timestamp


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        default_days=settings.retention_days,
        by_category=dict(settings.retention_days_by_category),
    )


def make_store(settings: Settings) -> ObjectStore:
    if settings.store == "s3":
        store = S3ObjectStore.connect(
            settings.s3_endpoint,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            originals_bucket=settings.s3_originals_bucket,
            derived_bucket=settings.s3_derived_bucket,
            retention=retention_policy(settings),
            outage_budget_s=settings.s3_outage_budget_s,
        )
        store.ensure_buckets()
        return store
    return LocalFolderStore(settings.store_root)


def make_signing_key(settings: Settings) -> tuple[SigningKey | VerifyingKey, str | None]:
    """The ledger's key, and a notice when a development key had to be generated. A process
    given only the public key (``VIGIL_LEDGER_PUBLIC_KEY_FILE``) appends events and checks
    heads; only the one holding ``VIGIL_LEDGER_KEY_FILE`` signs."""
    if settings.ledger_key_file is not None:
        return load_signing_key(settings.ledger_key_file, settings.ledger_name), None
    if settings.ledger_public_key_file is not None:
        return load_verifying_key(settings.ledger_public_key_file, settings.ledger_name), None
    path = settings.dev_ledger_key
    if path.exists():
        return load_signing_key(path, settings.ledger_name), None
    try:
        key = create_signing_key(path, settings.ledger_name)
    except FileExistsError:  # another process starting at the same moment made it
        return load_signing_key(path, settings.ledger_name), None
    notice = (
        f"generated a DEVELOPMENT ledger signing key at {path} (fingerprint"
        f" {key.fingerprint[:16]}…); production refuses to start without VIGIL_LEDGER_KEY_FILE"
    )
    logger.warning("%s", notice)
    return key, notice


@dataclass(frozen=True)
class Messaging:
    """How a process publishes: the in-process bus (``bus``) or Kafka (``publisher``), and what
    to close when the app stops."""

    publish: Callable[[Message], None]
    bus: InProcessBus | None = None
    publisher: KafkaPublisher | None = None
    closers: tuple[Callable[[], None], ...] = ()
    # connects ahead of an ingest's announcement, in the background (Kafka's producer)
    prepare: Callable[[], None] = lambda: None


def make_messaging(settings: Settings) -> Messaging:
    """Kafka (its topics made if missing) or the in-process bus, as ``settings.bus`` says."""
    if settings.bus == "kafka":
        ensure_topics(
            settings.kafka_bootstrap, settings.kafka_partitions, settings.kafka_topic_prefix
        )
        publisher = KafkaPublisher(
            settings.kafka_bootstrap,
            prefix=settings.kafka_topic_prefix,
            client_id="vigil",
            send_timeout_s=settings.kafka_send_timeout_s,
        )
        return Messaging(
            publisher.publish,
            publisher=publisher,
            closers=(publisher.close,),
            prepare=partial(publisher.warm, ["original.stored"]),  # what an ingest announces
        )
    bus = InProcessBus()
    return Messaging(bus.publish, bus=bus)


def make_tools(settings: Settings, metrics: Metrics) -> Tools:
    """ffmpeg and the runner of its processes, each run counted in ``metrics``."""
    runner = ProcessRunner(
        default_timeout_s=settings.ffmpeg_timeout_s,
        on_finished=lambda run: metrics.ffmpeg_run(command_kind(run.cmd), run.returncode == 0),
    )
    return Tools(runner, find_ffmpeg(settings.ffmpeg), settings.ffmpeg_timeout_s)


def make_uploads(settings: Settings, catalog: Catalog, ingest: AnnouncingIngest) -> UploadService:
    """Resumable uploads, with their limits: open uploads per device, expiry, free space."""
    limits = UploadLimits(
        max_open_per_device=settings.upload_max_open_per_device,
        expire_s=settings.upload_expire_s,
        free_margin_bytes=settings.upload_free_margin_bytes,
    )
    return UploadService(catalog=catalog, ingest=ingest, folder=settings.uploads_dir, limits=limits)


def make_ingest(
    settings: Settings,
    *,
    catalog: Catalog,
    store: ObjectStore,
    tools: Tools,
    metrics: Metrics,
    custody: CustodyPath,
) -> IngestService:
    """Ingest; with the S3 store (and ``custody_at_ingest``), a file ingested whole is cut from
    its staged bytes while its original is uploaded (``IngestService``, ``custody``)."""
    cut_at_ingest = settings.store == "s3" and settings.custody_at_ingest
    return IngestService(
        catalog=catalog,
        store=store,
        runner=tools.runner,
        ffmpeg=tools.ffmpeg,
        staging_dir=settings.staging_dir,
        probe_timeout_s=settings.probe_timeout_s,
        clock_drift_flag_s=settings.clock_drift_flag_s,
        on_received=lambda device, size: metrics.received(device, size, None),
        credentials=make_credentials_reader(settings),
        on_credentials=lambda found: metrics.c2pa_manifest(found.state),
        custody=custody if cut_at_ingest else None,
        on_segmented=metrics.segmented,
    )


def make_credentials_reader(settings: Settings) -> CredentialsReader:
    """Reads devices' C2PA manifests at ingest, judged against ``VIGIL_C2PA_TRUST_ANCHORS``
    (read and checked now: a bad file stops the start, with the reason)."""
    anchors = settings.c2pa_trust_anchors
    return CredentialsReader(TrustList.load(anchors) if anchors is not None else None)


def build_app(
    settings: Settings, progress: Progress = no_progress, metrics: Metrics | None = None
) -> Vigil:
    """Everything one process needs, built from ``settings`` in order: the catalogue (migrated),
    the store, the ledger, ffmpeg, the bus, the services and the stages."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = metrics if metrics is not None else Metrics()
    catalog = Catalog(make_engine(settings.resolved_catalog_url))
    catalog.migrate()
    metrics.devices_known(known_devices(catalog))  # their counters exist at 0 from the start
    metrics.witnesses_known(w.name for w in settings.witness_config.witnesses)
    store = InstrumentedStore(make_store(settings), metrics, settings.store)
    key, notice = make_signing_key(settings)
    ledger = Ledger(
        catalog=catalog,
        store=store,
        key=key,
        work_dir=settings.work_dir,
        timestamper=make_timestamper(settings),
        witnesses=LedgerWitnesses(
            config=settings.witness_config, store=store, work_dir=settings.work_dir
        ),
    )
    tools = make_tools(settings, metrics)
    messaging = make_messaging(settings)
    custody = make_custody(settings, catalog=catalog, store=store, tools=tools, progress=progress)
    service = make_ingest(
        settings, catalog=catalog, store=store, tools=tools, metrics=metrics, custody=custody
    )
    ingest = AnnouncingIngest(service, messaging.publish, messaging.prepare)
    segment_files = make_segment_files(settings, store, tools)
    stages = make_stages(
        settings, custody=custody, catalog=catalog, store=store, tools=tools,
        segment_files=segment_files, progress=progress, metrics=metrics, ledger=ledger,
    )  # fmt: skip
    if messaging.bus is not None:
        for stage, inputs in STAGE_INPUTS.items():
            for message_type in inputs:
                messaging.bus.subscribe(topic_for(message_type), stages[stage])
    build_export = make_export_builder(
        settings, catalog=catalog, store=store, ledger=ledger, tools=tools, files=segment_files
    )
    return Vigil(
        settings=settings,
        access=AccessService(catalog),
        uploads=make_uploads(settings, catalog, ingest),
        exports=ExportService(catalog=catalog, folder=settings.exports_dir, build=build_export),
        catalog=catalog,
        store=store,
        runner=tools.runner,
        tools=tools,
        publish=messaging.publish,
        stages=stages,
        ingest=ingest,
        verifier=Verifier(
            catalog=catalog,
            store=store,
            tools=tools,
            ledger=ledger,
            segment_files=segment_files,
            on_failure=metrics.verification_failures.inc,
        ),
        segment_files=segment_files,
        cases=CaseService(catalog=catalog, store=store),
        ledger=ledger,
        metrics=metrics,
        retention=RetentionService(catalog=catalog, store=store, policy=retention_policy(settings)),
        notices=[notice] if notice else [],
        bus=messaging.bus,
        publisher=messaging.publisher,
        _closers=list(messaging.closers),
    )
