"""What ``vigil monitor`` serves besides its own process metrics: the catalogue's figures and
Kafka's consumer lag and dead-letter depth, read at scrape time (they outlive any worker)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from catalog.figures import CatalogFigures

logger = logging.getLogger(__name__)


class CatalogCollector(Collector):
    """Gauges computed from the catalogue on every scrape."""

    def __init__(self, read: Callable[[], CatalogFigures]) -> None:
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return []  # dynamic: the families are made on collect

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vigil_catalog_up", "1 if the catalogue could be read.")
        try:
            f = self.read()
        except Exception:
            logger.exception("catalogue metrics: the catalogue could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for family, values in (
            (GaugeMetricFamily("vigil_catalog_recordings",
                               "Recordings in the catalogue, by status.", labels=["status"]),
             f.recordings_by_status),
            (CounterMetricFamily("vigil_catalog_uploads", "Recordings ever received, by device"
                                 " (every known device; rows are kept, so it only grows).",
                                 labels=["device"]), f.uploads_by_device),
            (GaugeMetricFamily("vigil_catalog_uploads_recent",
                               "Recordings received in the last 24 h, by device (every known one).",
                               labels=["device"]), f.uploads_recent_by_device),
            (GaugeMetricFamily("vigil_catalog_stored_bytes",
                               "Bytes of footage catalogued, by bucket.", labels=["bucket"]),
             f.stored_bytes),
        ):  # fmt: skip
            for label, n in sorted(values.items()):
                family.add_metric([label], n)
            yield family
        received = CounterMetricFamily("vigil_catalog_received", "Recordings ever received.")
        received.add_metric([], sum(f.uploads_by_device.values()))
        yield received
        last = GaugeMetricFamily(
            "vigil_device_last_upload_timestamp_seconds",
            "When each device's latest recording was received (Unix time).",
            labels=["device", "in_service"],
        )
        for device, (at, in_service) in sorted(f.last_upload_by_device.items()):
            last.add_metric([device, "true" if in_service else "false"], at.timestamp())
        yield last
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
            ("vigil_catalog_oldest_unsegmented_seconds", "How long the oldest recording not yet"
             " on record (stored, segmenting) has waited since received; 0 if none.",
             f.oldest_unsegmented_s),
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
