"""The stage worker's own decisions, with a fake publisher (the broker itself is exercised in
tests/integration/test_distributed.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from workers.kafka_bus import (
    KafkaPublisher,
    RetryPolicy,
    StageWorker,
    dead_letter_topic,
    has_leaders,
)
from workers.messages import Message, OriginalStored, SegmentHashed, encode

GOOD = OriginalStored(
    recording_id="rec-1", original_key="rec-1/original.mp4", sha256="a" * 64, size=1
)


@dataclass
class Record:
    value: bytes
    topic: str = "p.original.stored"
    partition: int = 1
    offset: int = 7
    key: bytes | None = b"rec-1"


class FakePublisher(KafkaPublisher):
    def __init__(self, fail_first: int = 0) -> None:
        super().__init__("unused:9092", prefix="p", client_id="test")
        self.sent: list[tuple[str, bytes, dict[str, bytes]]] = []
        self.fail_first = fail_first

    def publish_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise KafkaTimeoutError("broker unreachable")
        self.sent.append((topic, value, dict(headers)))


def worker(
    handler: object, publisher: FakePublisher, stop: threading.Event | None = None
) -> StageWorker:
    return StageWorker(
        stage="segment",
        inputs=["original.stored"],
        handler=handler,  # type: ignore[arg-type]
        publisher=publisher,
        bootstrap="unused:9092",
        stop=stop or threading.Event(),
        retry=RetryPolicy(attempts=3, first_backoff_s=0.001, max_backoff_s=0.002),
    )


def test_topics_and_group_carry_the_prefix() -> None:
    w = worker(lambda m: [], FakePublisher())
    assert w.topics == ["p.original.stored"]
    assert w.group_id == "p.segment"
    assert dead_letter_topic("p") == "p.dead-letter"


def test_emitted_messages_are_published_before_the_record_counts_as_done() -> None:
    publisher = FakePublisher()
    emitted = SegmentHashed(recording_id="rec-1", index=0)
    outcome = worker(lambda m: [emitted], publisher)._process(Record(encode(GOOD)))
    assert outcome.status == "done"
    assert [(t, v) for t, v, _ in publisher.sent] == [("p.segment.hashed", encode(emitted))]


def test_an_invalid_record_is_dead_lettered_at_once_with_its_origin() -> None:
    calls: list[Message] = []
    publisher = FakePublisher()
    outcome = worker(lambda m: calls.append(m) or [], publisher)._process(Record(b"{nope"))
    assert outcome.status == "dead-lettered"
    assert calls == []
    ((topic, value, headers),) = publisher.sent
    assert topic == "p.dead-letter"
    assert value == b"{nope"
    assert headers["vigil.source.topic"] == b"p.original.stored"
    assert headers["vigil.source.partition"] == b"1"
    assert headers["vigil.source.offset"] == b"7"
    assert b"not a valid Vigil message" in headers["vigil.error"]


def test_a_failing_handler_is_retried_then_dead_lettered() -> None:
    attempts: list[int] = []

    def handler(message: Message) -> list[Message]:
        attempts.append(1)
        raise ValueError("cannot segment this")

    publisher = FakePublisher()
    outcome = worker(handler, publisher)._process(Record(encode(GOOD)))
    assert len(attempts) == 3
    assert outcome.status == "dead-lettered"
    assert outcome.error == "ValueError: cannot segment this"
    assert publisher.sent[0][2]["vigil.error"] == b"ValueError: cannot segment this"


def test_broker_errors_are_waited_out_not_dead_lettered() -> None:
    publisher = FakePublisher(fail_first=5)  # more failures than handler attempts
    emitted = SegmentHashed(recording_id="rec-1", index=0)
    outcome = worker(lambda m: [emitted], publisher)._process(Record(encode(GOOD)))
    assert outcome.status == "done"
    assert [t for t, _, _ in publisher.sent] == ["p.segment.hashed"]


def test_stopping_during_retries_abandons_the_record_uncommitted() -> None:
    stop = threading.Event()

    def handler(message: Message) -> list[Message]:
        stop.set()  # SIGTERM arrives while the handler is failing
        raise OSError("store unreachable")

    publisher = FakePublisher()
    outcome = worker(handler, publisher, stop)._process(Record(encode(GOOD)))
    assert outcome.status == "abandoned"
    assert publisher.sent == []


@pytest.mark.parametrize(("attempt", "delay"), [(0, 0.5), (1, 1.0), (3, 4.0), (10, 10.0)])
def test_backoff_doubles_up_to_its_cap(attempt: int, delay: float) -> None:
    assert RetryPolicy().delay(attempt) == delay


def _partition(index: int, leader: int, error: int = 0) -> dict[str, object]:
    """A partition as kafka-python 3's describe_topics gives it (read off a real broker)."""
    return {"error_code": error, "partition_index": index, "leader_id": leader,
            "leader_epoch": 0, "replica_nodes": [1], "isr_nodes": [1]}  # fmt: skip


@pytest.mark.parametrize(
    ("described", "ready"),
    [
        ({"error_code": 0, "name": "t", "partitions": [_partition(0, 1), _partition(1, 1)]}, True),
        ({"error_code": 3, "name": "t", "partitions": []}, False),  # unknown topic (yet)
        ({"error_code": 0, "name": "t", "partitions": []}, False),
        (
            {"error_code": 0, "name": "t", "partitions": [_partition(0, 1), _partition(1, -1)]},
            False,
        ),
        ({"error_code": 0, "name": "t", "partitions": [_partition(0, 1, error=5)]}, False),
        ("not a description", False),
    ],
)
def test_a_new_topic_is_ready_once_every_partition_has_a_leader(
    described: object, ready: bool
) -> None:
    """``ensure_topics`` returns when consumers can be assigned the topics it made."""
    assert has_leaders(described) is ready


class UnreachablePublisher(KafkaPublisher):
    """A publisher whose broker cannot be reached while it warms up (``_client`` raises)."""

    def __init__(self) -> None:
        super().__init__("unused:9092", prefix="p", client_id="test")
        self.tries = 0
        self.tried = threading.Semaphore(0)

    def _client(self) -> KafkaProducer:
        self.tries += 1
        self.tried.release()
        raise KafkaTimeoutError("Unable to bootstrap from unused:9092")


def test_a_warm_up_that_fails_is_tried_again_by_the_next_ingest() -> None:
    publisher = UnreachablePublisher()
    publisher.warm(["original.stored"])
    assert publisher.tried.acquire(timeout=10)
    deadline = time.monotonic() + 10
    while publisher._warming and time.monotonic() < deadline:  # the thread resets it
        time.sleep(0.01)
    assert not publisher.warmed.is_set()
    publisher.warm(["original.stored"])  # the next ingest
    assert publisher.tried.acquire(timeout=10)
    assert publisher.tries == 2


def test_an_ingest_warms_its_bus_before_it_starts_and_announces_after() -> None:
    from pathlib import Path
    from typing import cast

    from ingest.service import IngestResult, IngestService, RecordingMetadata
    from workers.app import AnnouncingIngest

    calls: list[str] = []

    class Service:
        def ingest_file(self, path: Path, metadata: RecordingMetadata, **_: object) -> IngestResult:
            calls.append("ingest")
            return IngestResult("rec-1", "a" * 64, 1, created=True, resumed=False, announce=True)

    ingest = AnnouncingIngest(
        cast(IngestService, Service()),
        lambda message: calls.append(f"publish {message.type}"),
        lambda: calls.append("prepare"),
    )
    meta = RecordingMetadata(device_id="BC-1", original_name="a.mp4")
    ingest.ingest_file(Path("a.mp4"), meta, actor="test")
    assert calls == ["prepare", "ingest", "publish original.stored"]
