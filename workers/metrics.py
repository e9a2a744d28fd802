"""Prometheus metrics: what each Vigil process counts, and how it serves them.

Every process that runs for long (stage workers, the ledger signer, the monitor, the API) serves
its own ``/metrics`` on ``VIGIL_METRICS_PORT``; several processes on one host each take their
own port (``vigil worker phash --metrics-port 9102``) and Prometheus scrapes them all, summing
with ``sum by (stage)``. The metric objects live in a ``Metrics`` made in ``main`` and passed to
the code that counts (never module globals), each on its own registry, with the process's own
``process_*`` and ``python_*`` figures. Every labelled counter exists at 0 for the label values
known at the start (stages, outcomes, error kinds, ffmpeg kinds, store operations; devices and
witnesses once told), so that ``increase()`` sees its first event.

Two kinds of figures:

- **process metrics** (``Metrics``): counters and histograms of the work a process did;
- **catalogue metrics** (``CatalogCollector``, in ``workers/monitor.py`` with the figures it
  serves; ``vigil monitor`` serves them): read from the catalogue at scrape time, so that
  short-lived processes (a CLI ingest) and restarts lose nothing: uploads per device, storage,
  device silence, late uploads, verification failures, footage waiting to be put on record.
  The monitor also reads consumer lag per partition and the dead-letter queue's depth from Kafka.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from vigil_verify.errors import ErrorKind, VigilError

from catalog.clock import LATE_UPLOAD_S
from ingest.segmenting import Segmented
from integrity.credentials import STATES as C2PA_STATES
from store.base import Bucket, ObjectStore, StoredObject

logger = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
END_TO_END_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
SPEED_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
STORE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Label values known at the start (tests/unit/test_metrics.py checks them against the code).
STAGES = ("segment", "phash", "transcode", "finalise")  # workers/app.py's STAGE_INPUTS
FOOTAGE_STAGES = ("segment", "phash", "transcode")
OUTCOMES = ("done", "dead-lettered", "abandoned")
UNEXPECTED = "unexpected"  # an error that is not a VigilError: a bug, or a library's own
ERROR_KINDS = (*(k.value for k in ErrorKind), UNEXPECTED)
COMMAND_KINDS = ("probe", "decode", "segment", "transcode", "other")
STORE_OPERATIONS = ("put", "stat", "get", "get_range", "list", "legal_hold", "retention", "delete")
WITNESS_FAILURES = ("inconsistent", *(k.value for k in ErrorKind))


class Metrics:
    """The process metrics of one Vigil process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._add_stage_metrics(self.registry)
        self._add_backend_metrics(self.registry)
        self._add_intake_metrics(self.registry)
        process_collectors(self.registry)
        _at_zero(self.messages, STAGES, OUTCOMES)
        _at_zero(self.errors, STAGES, ERROR_KINDS)
        for per_stage in (self.retries, self.dead_letters):
            _at_zero(per_stage, STAGES)
        for per_footage_stage in (self.footage_seconds, self.bytes):
            _at_zero(per_footage_stage, FOOTAGE_STAGES)
        _at_zero(self.ffmpeg_runs, COMMAND_KINDS, ("ok", "failed"))
        _at_zero(self.segments, ("copy", "transcode"))
        _at_zero(self.recordings, ("complete",))
        _at_zero(self.c2pa_manifests, C2PA_STATES)

    def devices_known(self, devices: Iterable[str]) -> None:
        """The per-device counters at 0 for ``devices`` (the catalogue's, at the start)."""
        known = list(devices)
        _at_zero(self.uploads, known)
        _at_zero(self.upload_bytes, known)

    def witnesses_known(self, witnesses: Iterable[str]) -> None:
        """The witness failure counters at 0 for ``witnesses`` (the configured ones' names)."""
        _at_zero(self.witness_failures, list(witnesses), WITNESS_FAILURES)

    def _add_stage_metrics(self, r: CollectorRegistry) -> None:
        """What the stages did: footage, messages and their time, what they made, failures."""
        self.footage_seconds = Counter(
            "vigil_stage_footage_seconds", "Seconds of footage a stage processed.", ["stage"],
            registry=r,
        )  # fmt: skip
        self.bytes = Counter(
            "vigil_stage_bytes", "Bytes of footage a stage processed.", ["stage"], registry=r
        )
        self.messages = Counter(
            "vigil_stage_messages",
            "Messages a stage finished, by outcome (done, dead-lettered, abandoned).",
            ["stage", "outcome"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "vigil_stage_duration_seconds", "Time a stage took per message.", ["stage"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.end_to_end = Histogram(
            "vigil_end_to_end_seconds",
            "From the server receiving a recording to it being catalogued complete.",
            buckets=END_TO_END_BUCKETS,
            registry=r,
        )
        self.segments = Counter(
            "vigil_segments", "Segments stored, by kind (copy or transcode).", ["kind"], registry=r
        )
        self.recordings = Counter(
            "vigil_recordings", "Recordings finished, by status.", ["status"], registry=r
        )
        self.gaps = Counter("vigil_gaps", "Gaps found in recordings as they complete.", registry=r)
        self.verification_failures = Counter(
            "vigil_verification_failures", "Verification runs that found a problem.", registry=r
        )
        self.errors = Counter(
            "vigil_errors", "Failed attempts at a message, by stage and error kind.",
            ["stage", "kind"], registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "vigil_retries", "Messages retried after a failed attempt.", ["stage"], registry=r
        )
        self.dead_letters = Counter(
            "vigil_dead_letters", "Messages sent to the dead-letter topic.", ["stage"], registry=r
        )

    def _add_backend_metrics(self, r: CollectorRegistry) -> None:
        """The object store's requests and the ffmpeg runs."""
        self.store_seconds = Histogram(
            "vigil_store_request_duration_seconds", "Object store requests.",
            ["backend", "operation"], buckets=STORE_BUCKETS, registry=r,
        )  # fmt: skip
        self.store_errors = Counter(
            "vigil_store_errors", "Object store requests that failed.",
            ["backend", "operation", "kind"], registry=r,
        )  # fmt: skip
        self.ffmpeg_speed = Histogram(
            "vigil_ffmpeg_speed_ratio",
            "ffmpeg runs' speed: media seconds per wall second (x realtime).",
            ["kind"],
            buckets=SPEED_BUCKETS,
            registry=r,
        )
        self.ffmpeg_runs = Counter(
            "vigil_ffmpeg_runs", "ffmpeg runs, by kind and outcome.", ["kind", "outcome"],
            registry=r,
        )  # fmt: skip

    def _add_intake_metrics(self, r: CollectorRegistry) -> None:
        """Recordings received, and the custody ledger's signed heads."""
        self.uploads = Counter(
            "vigil_uploads", "Recordings received, by device.", ["device"], registry=r
        )
        self.upload_bytes = Counter(
            "vigil_upload_bytes", "Bytes received, by device.", ["device"], registry=r
        )
        self.c2pa_manifests = Counter(
            "vigil_c2pa_manifests",
            "Originals received with a C2PA manifest signed at capture, by how it was judged"
            " (valid, invalid: the bytes or the signature do not check out, untrusted: a signer"
            " outside the trust list).",
            ["state"],
            registry=r,
        )
        self.late_uploads = Counter(
            "vigil_late_uploads", "Recordings received more than 24 h after they ended.",
            registry=r,
        )  # fmt: skip
        self.ledger_size = Gauge(
            "vigil_ledger_size", "Events in the custody ledger at the last signed head.", registry=r
        )
        self.ledger_heads = Counter(
            "vigil_ledger_heads", "Tree heads this process signed.", registry=r
        )
        self.ledger_witnessed_size = Gauge(
            "vigil_ledger_witnessed_size",
            "Events in the custody ledger at the last head cosigned by a quorum of witnesses.",
            registry=r,
        )
        self.witness_failures = Counter(
            "vigil_ledger_witness_failures",
            "Checkpoints a witness did not cosign, by witness and why (inconsistent: it refused"
            " the log's history; unavailable: down or timed out; ...).",
            ["witness", "kind"],
            registry=r,
        )

    # -- what the code calls ------------------------------------------------------------------

    def processed(self, stage: str, footage_s: float, nbytes: int) -> None:
        if footage_s > 0:
            self.footage_seconds.labels(stage).inc(footage_s)
        if nbytes > 0:
            self.bytes.labels(stage).inc(nbytes)

    def segmented(self, done: Segmented) -> None:
        """A recording put on record (counted where its segments were cut: by the segment
        stage, or at ingest; not again where it was found done)."""
        if done.footage_s:
            self.speed("segment", done.footage_s, done.elapsed_s)
            self.processed("segment", done.footage_s, done.recording.size)
            self.segments.labels("copy").inc(len(done.segments))

    def message(self, stage: str, outcome: str, seconds: float) -> None:
        self.messages.labels(stage, outcome).inc()
        self.stage_seconds.labels(stage).observe(seconds)
        if outcome == "dead-lettered":
            self.dead_letters.labels(stage).inc()

    def failed_attempt(self, stage: str, error: BaseException | str) -> None:
        self.errors.labels(stage, error_kind(error)).inc()
        self.retries.labels(stage).inc()

    def completed(self, status: str, received_at: datetime, now: datetime, gaps: int) -> None:
        self.recordings.labels(status).inc()
        self.end_to_end.observe(max(0.0, (now - received_at).total_seconds()))
        if gaps:
            self.gaps.inc(gaps)

    def received(self, device: str, nbytes: int, delay_s: float | None) -> None:
        self.uploads.labels(device).inc()
        self.upload_bytes.labels(device).inc(nbytes)
        if delay_s is not None and delay_s > LATE_UPLOAD_S:
            self.late_uploads.inc()

    def c2pa_manifest(self, state: str) -> None:
        self.c2pa_manifests.labels(state).inc()

    def ffmpeg_run(self, kind: str, ok: bool) -> None:
        self.ffmpeg_runs.labels(kind, "ok" if ok else "failed").inc()

    def speed(self, kind: str, media_s: float, wall_s: float) -> None:
        """x realtime of a piece of ffmpeg work, measured by the caller, who knows how much
        media it covered (ffmpeg's own -progress time is not that for the segment muxer)."""
        if media_s > 0 and wall_s > 0:
            self.ffmpeg_speed.labels(kind).observe(media_s / wall_s)

    def store_call(self, backend: str, operation: str, seconds: float, error: str | None) -> None:
        self.store_seconds.labels(backend, operation).observe(seconds)
        if error is not None:
            self.store_errors.labels(backend, operation, error).inc()

    def names(self) -> set[str]:
        """Every sample name this registry can expose (for checks of dashboards and rules)."""
        return sample_names(self.registry)


def _at_zero(counter: Counter, *values: Iterable[str]) -> None:
    """Make the counter's series for every combination of ``values``, at 0 until counted."""
    for labels in itertools.product(*values):
        counter.labels(*labels)


def process_collectors(registry: CollectorRegistry) -> None:
    """The process's memory, CPU and file descriptors (``process_*``), the Python version and
    garbage collections (``python_*``): the default registry's, on this one."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def error_kind(error: BaseException | str) -> str:
    """A failure's ``kind`` label: its ``ErrorKind``, or ``unexpected`` if it is no VigilError.
    Given a class name (what the Kafka worker reports), that of the Vigil error so named (any
    raised one is imported by then; no two have the same name)."""
    if isinstance(error, BaseException):
        return str(error.kind) if isinstance(error, VigilError) else UNEXPECTED
    if error in ERROR_KINDS:
        return error
    classes: list[type[VigilError]] = [VigilError]
    while classes:
        cls = classes.pop()
        if cls.__name__ == error:
            return str(cls.kind)
        classes.extend(cls.__subclasses__())
    return UNEXPECTED


def sample_names(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_count", "_sum"))
    return names


@dataclass
class MetricsServer:
    port: int
    _close: Callable[[], None]

    def stop(self) -> None:
        self._close()


def serve(registry: CollectorRegistry, port: int, bind: str) -> MetricsServer:
    """Serve ``/metrics`` in a daemon thread; port 0 picks a free one (see ``.port``)."""
    server, thread = start_http_server(port, addr=bind, registry=registry)
    actual = int(server.server_address[1])

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    logger.info("metrics on http://%s:%d/metrics", bind, actual)
    return MetricsServer(actual, close)


# -- command kinds, for ffmpeg's speed -----------------------------------------------------------


def command_kind(cmd: Sequence[str]) -> str:
    """What an ffmpeg run does, from its arguments (a pure function; labels stay few)."""
    args = list(cmd)
    if "framecrc" in args:
        return "probe"
    if "rawvideo" in args:
        return "decode"
    if "segment" in args:
        return "transcode" if "libx264" in args else "segment"
    if "libx264" in args:
        return "transcode"
    return "other"


# -- the object store, timed -----------------------------------------------------------------


class InstrumentedStore:
    """An ``ObjectStore`` that times every request and counts failures (by exception type)."""

    def __init__(self, store: ObjectStore, metrics: Metrics, backend: str) -> None:
        self.store = store
        self.metrics = metrics
        self.backend = backend
        _at_zero(metrics.store_errors, (backend,), STORE_OPERATIONS, ERROR_KINDS)

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        error: str | None = None
        try:
            return call()
        except Exception as exc:
            error = error_kind(exc)
            raise
        finally:
            self.metrics.store_call(self.backend, operation, time.monotonic() - started, error)

    @contextlib.contextmanager
    def _opened(self, operation: str, cm: contextlib.AbstractContextManager[U]) -> Iterator[U]:
        value = self._call(operation, cm.__enter__)
        try:
            yield value
        except BaseException as exc:
            if not cm.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            cm.__exit__(None, None, None)

    def put_file(
        self,
        bucket: Bucket,
        key: str,
        path: Path,
        sha256: str,
        *,
        category: str | None = None,
        verified: bool = False,
        retain: bool = True,
    ) -> StoredObject:
        return self._call(
            "put",
            lambda: self.store.put_file(
                bucket, key, path, sha256, category=category, verified=verified, retain=retain
            ),
        )

    def stat(self, bucket: Bucket, key: str) -> StoredObject | None:
        return self._call("stat", lambda: self.store.stat(bucket, key))

    def local_path(self, bucket: Bucket, key: str) -> contextlib.AbstractContextManager[Path]:
        return self._opened("get", self.store.local_path(bucket, key))

    def open(self, bucket: Bucket, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._opened("get", self.store.open(bucket, key))

    def open_range(
        self, bucket: Bucket, key: str, start: int, length: int
    ) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._opened("get_range", self.store.open_range(bucket, key, start, length))

    def list_keys(self, bucket: Bucket, prefix: str) -> list[str]:
        return self._call("list", lambda: self.store.list_keys(bucket, prefix))

    def set_legal_hold(self, bucket: Bucket, key: str, on: bool) -> None:
        self._call("legal_hold", lambda: self.store.set_legal_hold(bucket, key, on))

    def legal_hold(self, bucket: Bucket, key: str) -> bool:
        return self._call("legal_hold", lambda: self.store.legal_hold(bucket, key))

    def retention(self, bucket: Bucket, key: str) -> datetime | None:
        return self._call("retention", lambda: self.store.retention(bucket, key))

    def extend_retention(self, bucket: Bucket, key: str, until: datetime) -> datetime:
        return self._call("retention", lambda: self.store.extend_retention(bucket, key, until))

    def delete_expired(self, bucket: Bucket, key: str, now: datetime) -> None:
        self._call("delete", lambda: self.store.delete_expired(bucket, key, now))
