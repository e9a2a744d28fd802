"""Kafka transport for the stage handlers: the same handlers as the in-process bus.

- One topic per message type, keyed by recording ID, so one recording's messages stay in
  order on one partition. Messages carry object keys and hashes, never video bytes.
- Topics are ``<prefix>.<message type>`` (prefix ``vigil`` by default) plus
  ``<prefix>.dead-letter``.
- One consumer group per stage (``<prefix>.<stage>``): more workers, more partitions in use.
- At-least-once: a record's offset is committed only after its handler's side effects are
  durable (object stored, row written) and the messages it emits are acknowledged by the
  broker (acks=all). A crash before the commit means redelivery; handlers are idempotent.
- Failures: a handler error is retried with bounded backoff, then the record goes to the
  dead-letter topic with the error and its topic, partition and offset, and the worker moves
  on. A record that is not a valid message goes there at once. Kafka's own errors (broker
  unreachable) are not the record's fault: they are retried until the broker is back.
- Shutdown: the stop event lets the message in hand finish; a message abandoned during its
  retries is not committed, so another worker takes it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import ValidationError

from workers.bus import Handler
from workers.messages import (
    DEFAULT_PREFIX,
    MESSAGE_TYPES,
    Message,
    decode,
    encode,
    topic_for,
    topic_of,
)

logger = logging.getLogger(__name__)

RECONNECT_BACKOFF_MAX_MS = 1000
"""The longest wait between attempts to reach a broker that went away: a broker back after a
restart is found within a second, as by Kafka's own Java clients (their default); kafka-python's
default is 30 s, and a worker could sit idle that long after the broker was back."""

DEAD_LETTER = "dead-letter"


def dead_letter_topic(prefix: str = DEFAULT_PREFIX) -> str:
    return topic_for(DEAD_LETTER, prefix)


def ensure_topics(
    bootstrap: str, partitions: int, prefix: str = DEFAULT_PREFIX, timeout_s: float = 60
) -> None:
    """Create every topic Vigil uses (idempotent); auto-creation is not relied on."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigil-admin")
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in (topic_for(t, prefix) for t in (*MESSAGE_TYPES, DEAD_LETTER))
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
            _wait_led(admin, [t.name for t in wanted], deadline)
    finally:
        admin.close()


def has_leaders(described: object) -> bool:
    """Whether a topic as ``KafkaAdminClient.describe_topics`` describes it (kafka-python 3:
    ``partitions`` of ``{partition_index, leader_id, error_code...}``) has partitions, each with
    a leader."""
    if not isinstance(described, dict) or described.get("error_code", 0):
        return False
    partitions = described.get("partitions") or []
    return bool(partitions) and all(
        not p.get("error_code", 0) and p.get("leader_id", -1) >= 0 for p in partitions
    )


def _wait_led(admin: KafkaAdminClient, names: list[str], deadline: float) -> None:
    """Until every new topic has a leader for each partition: a consumer that subscribes to a
    topic the broker does not list yet is assigned nothing, and only sees the topic at its next
    metadata refresh."""
    while True:
        try:
            described = admin.describe_topics(names)
        except KafkaError:
            described = []
        if len(described) == len(names) and all(has_leaders(d) for d in described):
            return
        if time.monotonic() > deadline:
            logger.warning("topics %s: not every partition has a leader yet", ", ".join(names))
            return
        time.sleep(0.2)


class KafkaPublisher:
    """Publishes messages and waits until the broker has them (acks=all)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        client_id: str,
        send_timeout_s: float = 120,
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.client_id = client_id
        self.send_timeout_s = send_timeout_s
        self._producer: KafkaProducer | None = None  # created on first use: no I/O here
        self._lock = threading.Lock()
        self._warming = False
        self.warmed = threading.Event()  # set once ``warm`` has connected

    def _client(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                    retry_backoff_ms=250,
                    reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                    delivery_timeout_ms=int(self.send_timeout_s * 1000),
                    max_block_ms=int(self.send_timeout_s * 1000),
                )
            return self._producer

    def warm(self, message_types: Sequence[str]) -> None:
        """Connect and learn the partitions of these messages' topics in the background,
        once: a cold producer spends 0.1–0.2 s on both before its first message goes out
        (an ingest calls this as it starts, and its announcement at the end does not wait).
        A failure is left to the first ``publish``, which reports it."""
        with self._lock:
            if self._warming:
                return
            self._warming = True
        topics = [topic_for(t, self.prefix) for t in message_types]
        threading.Thread(target=self._warm, args=(topics,), name="kafka-warm", daemon=True).start()

    def _warm(self, topics: Sequence[str]) -> None:
        try:
            producer = self._client()
            for topic in topics:
                producer.partitions_for(topic)
            self.warmed.set()
        except Exception as exc:  # best effort, on its own thread: the first publish reports
            logger.info("Kafka not reached ahead of the first message: %s", exc)
            with self._lock:
                self._warming = False  # the next ingest tries again

    def publish(self, message: Message) -> None:
        self.publish_raw(
            topic_of(message, self.prefix), encode(message), message.recording_id.encode()
        )

    def publish_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        future = self._client().send(topic, value=value, key=key, headers=list(headers) or None)
        future.get(timeout=self.send_timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=10)
                self._producer = None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_backoff_s: float = 0.5
    max_backoff_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return float(min(self.first_backoff_s * 2**attempt, self.max_backoff_s))


@dataclass(frozen=True)
class Outcome:
    stage: str
    topic: str
    partition: int
    offset: int
    status: Literal["done", "dead-lettered", "abandoned"]
    seconds: float
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def log_outcome(outcome: Outcome) -> None:
    if outcome.status == "done":
        logger.info("%s %s done in %.2f s", outcome.stage, outcome.where, outcome.seconds)
    else:
        logger.warning("%s %s %s: %s", outcome.stage, outcome.where, outcome.status, outcome.error)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reports which partitions this worker holds after each rebalance."""

    def __init__(self, stage: str, report: Callable[[list[str]], None] | None) -> None:
        self.stage = stage
        self.report = report

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        names = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        logger.info("%s: assigned %s", self.stage, ", ".join(names) or "nothing")
        if self.report is not None:
            self.report(names)


class StageWorker:
    """Consumes a stage's topics in its consumer group and runs its handler on each record."""

    def __init__(
        self,
        *,
        stage: str,
        inputs: Sequence[str],
        handler: Handler,
        publisher: KafkaPublisher,
        bootstrap: str,
        stop: threading.Event,
        retry: RetryPolicy = RetryPolicy(),
        group_id: str | None = None,
        client_id: str | None = None,
        on_outcome: Callable[[Outcome], None] = log_outcome,
        on_failure: Callable[[str], None] | None = None,
        on_assigned: Callable[[list[str]], None] | None = None,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.stage = stage
        self.topics = [topic_for(t, publisher.prefix) for t in inputs]
        self.handler = handler
        self.publisher = publisher
        self.bootstrap = bootstrap
        self.stop = stop
        self.retry = retry
        self.group_id = group_id or topic_for(stage, publisher.prefix)
        self.client_id = client_id or f"vigil-{stage}"
        self.on_outcome = on_outcome
        self.on_failure = on_failure  # told the error kind of each failed attempt
        self.on_assigned = on_assigned
        self.session_timeout_ms = session_timeout_ms

    def _consumer(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
            # A handler may run for minutes (a long recording's segmenting): do not leave the
            # group for that. A dead worker is noticed by its missing heartbeats instead.
            max_poll_interval_ms=30 * 60 * 1000,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 4, 500),
            # a topic created after the subscription (another process's ensure_topics) is seen,
            # and partitions assigned, within seconds, not at the default 5-minute refresh
            metadata_max_age_ms=10_000,
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
        )
        consumer.subscribe(self.topics, listener=_Assignments(self.stage, self.on_assigned))
        return consumer

    def run(self) -> None:
        consumer = self._consumer()
        try:
            while not self.stop.is_set():
                try:
                    batch = consumer.poll(timeout_ms=500, max_records=1)
                except KafkaError:
                    logger.warning("%s: poll failed; broker unreachable? retrying", self.stage)
                    self.stop.wait(1.0)
                    continue
                for partition, records in batch.items():
                    for record in records:
                        outcome = self._process(record)
                        self.on_outcome(outcome)
                        if outcome.status == "abandoned":
                            return  # not committed: the group hands it to another worker
                        self._commit(consumer, partition, record.offset + 1)
        finally:
            with contextlib.suppress(Exception):
                consumer.close(autocommit=False)

    def _commit(self, consumer: KafkaConsumer, partition: TopicPartition, offset: int) -> None:
        """Commit after the work is durable. If it cannot be committed (rebalance, broker
        down), the record comes again and the idempotent handler does nothing twice."""
        for attempt in range(30):
            try:
                consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
                return
            except KafkaError as exc:
                logger.warning(
                    "%s: commit of %s@%d failed (%s)", self.stage, partition, offset, exc
                )
                if "CommitFailed" in type(exc).__name__ or self.stop.wait(
                    self.retry.delay(attempt)
                ):
                    return

    def _process(self, record: Any) -> Outcome:
        started = time.monotonic()

        def outcome(status: Literal["done", "dead-lettered", "abandoned"], error: str | None = None
                    ) -> Outcome:  # fmt: skip
            return Outcome(
                self.stage, record.topic, record.partition, record.offset, status,
                time.monotonic() - started, error,
            )  # fmt: skip

        try:
            message = decode(record.value)
        except (ValidationError, ValueError, TypeError) as exc:
            reason = f"not a valid Vigil message: {exc}"
            return outcome(*self._dead_letter(record, reason))
        attempt = 0
        failures = 0
        while True:
            try:
                for emitted in self.handler(message):
                    self.publisher.publish(emitted)
                return outcome("done")
            except KafkaError as exc:  # the broker, not the record: wait for it, however long
                logger.warning(
                    "%s: Kafka unavailable while handling (%s); waiting", self.stage, exc
                )
            except Exception as exc:
                failures += 1
                if self.on_failure is not None:
                    self.on_failure(type(exc).__name__)
                logger.warning(
                    "%s %s[%d]@%d attempt %d failed",
                    self.stage, record.topic, record.partition, record.offset, failures,
                    exc_info=True,
                )  # fmt: skip
                if failures >= self.retry.attempts:
                    reason = f"{type(exc).__name__}: {exc}"
                    return outcome(*self._dead_letter(record, reason))
            if self.stop.wait(self.retry.delay(attempt)):
                return outcome("abandoned", "stopping")
            attempt += 1

    def _dead_letter(
        self, record: Any, reason: str
    ) -> tuple[Literal["dead-lettered", "abandoned"], str]:
        headers = [
            ("vigil.error", reason.encode()[:4000]),
            ("vigil.stage", self.stage.encode()),
            ("vigil.source.topic", str(record.topic).encode()),
            ("vigil.source.partition", str(record.partition).encode()),
            ("vigil.source.offset", str(record.offset).encode()),
            ("vigil.failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        attempt = 0
        while True:
            try:
                self.publisher.publish_raw(
                    dead_letter_topic(self.publisher.prefix), record.value, record.key, headers
                )
                return "dead-lettered", reason
            except KafkaError as exc:
                logger.warning("%s: dead-lettering failed (%s); retrying", self.stage, exc)
            if self.stop.wait(self.retry.delay(attempt)):
                return "abandoned", reason
            attempt += 1
