"""Prometheus metrics: what each Vigil process counts, and how it serves them.

Every process that runs for long (stage workers, the ledger signer, the monitor, the API) serves
its own ``/metrics`` on ``VIGIL_METRICS_PORT``; several processes on one host each take their
own port (``vigil worker phash --metrics-port 9102``) and Prometheus scrapes them all, summing
with ``sum by (stage)``. The metric objects live in a ``Metrics`` made in ``main`` and passed to
the code that counts (never module globals), each on its own registry.

Two kinds of figures:

- **process metrics** (``Metrics``): counters and histograms of the work a process did;
- **catalogue metrics** (``CatalogCollector``, served by ``vigil monitor``): read from the
  catalogue at scrape time, so that short-lived processes (a CLI ingest) and restarts lose
  nothing: uploads per device, storage, device silence, late uploads, verification failures.
  The monitor also reads consumer lag per partition and the dead-letter queue's depth from Kafka.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from catalog.clock import LATE_UPLOAD_S
from catalog.figures import CatalogFigures
from store.base import Bucket, ObjectStore, StoredObject

logger = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
END_TO_END_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
SPEED_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
STORE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The process metrics of one Vigil process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._add_stage_metrics(self.registry)
        self._add_backend_metrics(self.registry)
        self._add_intake_metrics(self.registry)

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

    def message(self, stage: str, outcome: str, seconds: float) -> None:
        self.messages.labels(stage, outcome).inc()
        self.stage_seconds.labels(stage).observe(seconds)
        if outcome == "dead-lettered":
            self.dead_letters.labels(stage).inc()

    def failed_attempt(self, stage: str, kind: str) -> None:
        self.errors.labels(stage, kind).inc()
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


# -- the catalogue, read at scrape time --------------------------------------------------------


class CatalogCollector(Collector):
    """Gauges computed from the catalogue on every scrape."""

    def __init__(self, read: Callable[[], CatalogFigures]) -> None:
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return []  # dynamic: the families are made on collect

    def collect(self) -> Iterator[Metric]:
        try:
            f = self.read()
        except Exception:
            logger.exception("catalogue metrics: the catalogue could not be read")
            up = GaugeMetricFamily("vigil_catalog_up", "1 if the catalogue could be read.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("vigil_catalog_up", "1 if the catalogue could be read.")
        up.add_metric([], 1)
        yield up
        by_status = GaugeMetricFamily(
            "vigil_catalog_recordings", "Recordings in the catalogue, by status.", labels=["status"]
        )
        for status, n in sorted(f.recordings_by_status.items()):
            by_status.add_metric([status], n)
        yield by_status
        uploads = CounterMetricFamily(
            "vigil_catalog_uploads",
            "Recordings ever received, by device (catalogue rows are kept, so it only grows).",
            labels=["device"],
        )
        for device, n in sorted(f.uploads_by_device.items()):
            uploads.add_metric([device], n)
        yield uploads
        last = GaugeMetricFamily(
            "vigil_device_last_upload_timestamp_seconds",
            "When each device's latest recording was received (Unix time).",
            labels=["device", "in_service"],
        )
        for device, (at, in_service) in sorted(f.last_upload_by_device.items()):
            last.add_metric([device, "true" if in_service else "false"], at.timestamp())
        yield last
        stored = GaugeMetricFamily(
            "vigil_catalog_stored_bytes", "Bytes of footage catalogued, by bucket.",
            labels=["bucket"],
        )  # fmt: skip
        for bucket, n in sorted(f.stored_bytes.items()):
            stored.add_metric([bucket], n)
        yield stored
        for name, doc, value in (
            ("vigil_catalog_footage_seconds", "Seconds of footage catalogued.", f.footage_seconds),
            ("vigil_catalog_uncategorised_recordings", "Recordings without a category.",
             f.uncategorised),
            ("vigil_catalog_unlinked_recordings", "Recordings not linked to any case.",
             f.unlinked),
            ("vigil_catalog_verification_failures",
             "Segments whose last verification found a problem.", f.verification_failures),
            ("vigil_catalog_late_uploads", "Recordings received more than 24 h after they ended.",
             f.late_uploads),
            ("vigil_catalog_late_uploads_recent",
             "Of those, received in the last 24 h.", f.late_uploads_recent),
            ("vigil_catalog_retention_ending_soon",
             "Recordings whose retention ends within 7 days.", f.retention_ending_7d),
            ("vigil_ledger_pending_events", "Custody events not yet in the ledger.",
             f.ledger_pending),
        ):  # fmt: skip
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], float(value))
            yield gauge


# -- Kafka: lag per partition and the dead-letter queue ------------------------------------------


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    lag: int


@dataclass(frozen=True)
class KafkaFigures:
    lags: list[PartitionLag]
    dead_letter_messages: int


class KafkaCollector(Collector):
    def __init__(self, read: Callable[[], KafkaFigures]) -> None:
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vigil_kafka_up", "1 if the brokers answered.")
        try:
            figures = self.read()
        except Exception as exc:
            logger.warning("kafka metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        lag = GaugeMetricFamily(
            "vigil_kafka_consumer_lag",
            "Messages not yet consumed, per consumer group and partition.",
            labels=["group", "topic", "partition"],
        )
        for item in figures.lags:
            lag.add_metric([item.group, item.topic, str(item.partition)], item.lag)
        yield lag
        dlq = GaugeMetricFamily(
            "vigil_dead_letter_queue_messages", "Messages in the dead-letter topic."
        )
        dlq.add_metric([], figures.dead_letter_messages)
        yield dlq


def kafka_figures(
    bootstrap: str, groups: Mapping[str, Sequence[str]], dead_letter_topic: str
) -> KafkaFigures:
    """Lag of each Vigil consumer group on each partition of its input topics, and how many
    messages the dead-letter topic holds (its end offsets; nothing consumes it)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin: Any = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigil-monitor")
    consumer: Any = KafkaConsumer(bootstrap_servers=bootstrap, client_id="vigil-monitor")
    try:
        lags: list[PartitionLag] = []
        for group, topics in groups.items():
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                continue
            ends = consumer.end_offsets(partitions)
            committed = admin.list_group_offsets({group: partitions}).get(group, {})
            for tp in partitions:
                done = committed.get(tp)
                position = done.offset if done is not None and done.offset >= 0 else 0
                lags.append(
                    PartitionLag(group, tp.topic, tp.partition, max(0, ends[tp] - position))
                )
        dlq_parts = [
            TopicPartition(dead_letter_topic, p)
            for p in sorted(consumer.partitions_for_topic(dead_letter_topic) or ())
        ]
        dead = 0
        if dlq_parts:  # what the topic holds now: retention moves the beginning on
            ends, starts = consumer.end_offsets(dlq_parts), consumer.beginning_offsets(dlq_parts)
            dead = sum(ends[tp] - starts[tp] for tp in dlq_parts)
        return KafkaFigures(lags, int(dead))
    finally:
        consumer.close()
        admin.close()


# -- the object store, timed -----------------------------------------------------------------


class InstrumentedStore:
    """An ``ObjectStore`` that times every request and counts failures (by exception type)."""

    def __init__(self, store: ObjectStore, metrics: Metrics, backend: str) -> None:
        self.store = store
        self.metrics = metrics
        self.backend = backend

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        error: str | None = None
        try:
            return call()
        except Exception as exc:
            error = type(exc).__name__
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
        self, bucket: Bucket, key: str, path: Path, sha256: str, *, category: str | None = None
    ) -> StoredObject:
        return self._call(
            "put", lambda: self.store.put_file(bucket, key, path, sha256, category=category)
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
