"""The real test services themselves (tests/services): a Kafka broker that keeps messages and
committed offsets across a restart, and PostgreSQL running Vigil's catalogue migrations, with
its append-only custody trigger and the insert-if-absent segment upsert under a race."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from vigil_verify.merkle import leaf_hash, verify_inclusion

from catalog.db import head_revision, make_engine
from catalog.models import CustodyEvent, LedgerLeaf, Recording, Segment, TreeHeadRecord
from catalog.repository import Catalog, Event
from integrity.keys import SigningKey
from integrity.ledger import Ledger, canonical_event
from interfaces.devservices.kafka import KafkaService, create_topics
from store.local import LocalFolderStore
from tests.helpers import START, recording, sha_of

if TYPE_CHECKING:
    from tests.services.fixtures import KafkaBroker


HEAD = head_revision()


pytestmark = pytest.mark.services


# -- Kafka --------------------------------------------------------------------------------------


def _producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5, linger_ms=0)


def _send(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = _producer(bootstrap)
    try:
        for value in values:
            producer.send(topic, value).get(timeout=30)
    finally:
        producer.close()


def _consumer(bootstrap: str, topic: str, group: str, **config: object) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **config,
    )


def _poll(consumer: Any, count: int, timeout_s: float = 30) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500, max_records=count - len(got))
        for records in batches.values():
            got.extend(record.value for record in records)
    return got


def test_kafka_produces_and_consumes(
    kafka_service: KafkaBroker, kafka_topics_prefix: str, kafka_group_id: str
) -> None:
    topic = kafka_topics_prefix + "hello"
    create_topics(kafka_service.bootstrap, [topic])
    _send(kafka_service.bootstrap, topic, b"evidence-1", b"evidence-2")
    consumer = _consumer(kafka_service.bootstrap, topic, kafka_group_id)
    try:
        assert _poll(consumer, 2) == [b"evidence-1", b"evidence-2"]
    finally:
        consumer.close()


def test_a_publisher_warmed_as_an_ingest_starts_connects_once_and_publishes(
    kafka_service: KafkaBroker, kafka_topics_prefix: str, kafka_group_id: str
) -> None:
    from workers.kafka_bus import KafkaPublisher

    prefix = kafka_topics_prefix.rstrip("-")
    topic = f"{prefix}.original.stored"
    create_topics(kafka_service.bootstrap, [topic])
    publisher = KafkaPublisher(kafka_service.bootstrap, prefix=prefix, client_id="warm-test")
    try:
        for _ in range(3):  # each ingest asks; one connection is made
            publisher.warm(["original.stored"])
        assert publisher.warmed.wait(30)
        assert sum(t.name == "kafka-warm" for t in threading.enumerate()) <= 1
        publisher.publish_raw(topic, b"announced", b"rec-1")
    finally:
        publisher.close()
    consumer = _consumer(kafka_service.bootstrap, topic, kafka_group_id)
    try:
        assert _poll(consumer, 1) == [b"announced"]
    finally:
        consumer.close()


def test_kafka_keeps_messages_and_committed_offsets_across_restart(
    kafka_service: KafkaBroker, kafka_topics_prefix: str, kafka_group_id: str
) -> None:
    from kafka import TopicPartition

    if not isinstance(kafka_service, KafkaService):
        pytest.skip("external broker: not ours to restart")
    bootstrap = kafka_service.bootstrap
    topic = kafka_topics_prefix + "durable"
    create_topics(bootstrap, [topic])
    _send(bootstrap, topic, b"before-1", b"before-2")

    consumer = _consumer(bootstrap, topic, kafka_group_id, max_poll_records=1)
    try:
        assert _poll(consumer, 1) == [b"before-1"]
        consumer.commit()  # the group's offset is now 1
    finally:
        consumer.close()

    kafka_service.restart(down_s=1)
    assert kafka_service.bootstrap == bootstrap  # same port

    _send(bootstrap, topic, b"after-1")
    consumer = _consumer(bootstrap, topic, kafka_group_id)
    try:
        assert consumer.committed(TopicPartition(topic, 0)) == 1
        assert _poll(consumer, 2) == [b"before-2", b"after-1"]  # resumes at the commit
    finally:
        consumer.close()

    fresh = _consumer(bootstrap, topic, kafka_group_id + "-fresh")
    try:
        assert _poll(fresh, 3) == [b"before-1", b"before-2", b"after-1"]
    finally:
        fresh.close()


# -- PostgreSQL ---------------------------------------------------------------------------------


def _segment(rec: Recording, index: int, variant: str = "") -> Segment:
    return Segment(
        recording_id=rec.id,
        index=index,
        key=f"{rec.id}/seg-{index:05d}.ts",
        sha256=sha_of(f"{rec.id} {index} {variant}"),
        size=100,
        kind="copy",
        start_s=index * 10.0,
        end_s=(index + 1) * 10.0,
        frame_count=250,
        chain=sha_of(f"chain {index}"),
    )


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    engine = make_engine(database_url)
    cat = Catalog(engine)
    cat.migrate()
    yield cat
    engine.dispose()


def test_postgres_migrates_and_catalogues(catalog: Catalog) -> None:
    assert catalog.engine.dialect.name == "postgresql"
    rec = recording()
    _, created = catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    assert created is True
    catalog.migrate()  # already at head: a no-op
    assert catalog.recording(rec.id).received_at == START + timedelta(hours=2)
    assert [(e.action, e.recording_id) for e in catalog.events()] == [("ingest", rec.id)]
    with catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]


def test_postgres_add_recording_twice_keeps_one_row_and_one_event(catalog: Catalog) -> None:
    rec = recording()
    stored, _ = catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    again, created_again = catalog.add_recording(recording(), Event("ingest", "tester", rec.id))
    assert (created_again, again.id) == (False, stored.id)
    assert len(catalog.recordings()) == 1
    assert len(catalog.events()) == 1


def test_postgres_refuses_to_change_custody_events(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    for statement in (
        update(CustodyEvent).values(actor="mallory"),
        delete(CustodyEvent),
    ):
        with pytest.raises(DBAPIError, match="append-only"), catalog.session() as session:
            session.execute(statement)
    assert [e.actor for e in catalog.events()] == ["tester"]


def test_postgres_segment_upsert_under_a_race(catalog: Catalog) -> None:
    rec = recording()
    catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    threads, barrier = 8, threading.Barrier(8)
    results: list[Segment] = []
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(catalog.add_segment(_segment(rec, 0, variant=f"writer {n}")))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=racer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    assert len(results) == threads
    assert len({(s.id, s.sha256) for s in results}) == 1  # every writer got the winner's row
    with catalog.session() as session:
        count = session.scalar(
            select(func.count()).select_from(Segment).where(Segment.recording_id == rec.id)
        )
    assert count == 1


def test_postgres_ledger_sequencers_race_while_events_arrive(
    catalog: Catalog, database_url: str, tmp_path: Path
) -> None:
    """Three sequencers (own engines, as three processes) and two writers at once: every event
    gets exactly one position, positions are contiguous, and the signed head proves them all."""
    key = SigningKey("vigil.test/custody", Ed25519PrivateKey.generate())
    sequencers = [
        Ledger(
            catalog=Catalog(make_engine(database_url)),
            store=LocalFolderStore(tmp_path / "objects"),
            key=key,
            work_dir=tmp_path / "work",
        )
        for _ in range(3)
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def sequence(ledger: Ledger) -> None:
        try:
            while not stop.is_set():
                ledger.sequence()
        except BaseException as exc:
            errors.append(exc)

    def write(n: int) -> None:
        try:
            for i in range(50):
                catalog.add_event(Event("view", f"writer-{n}", case_id="CASE-1", reason=str(i)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sequence, args=(s,)) for s in sequencers]
    threads += [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads[3:]:
        thread.join(60)
    stop.set()
    for thread in threads[:3]:
        thread.join(60)
    assert errors == []
    head = sequencers[0].checkpoint()
    assert head.size == 100
    with catalog.session() as session:
        rows = session.execute(
            select(LedgerLeaf.position, LedgerLeaf.event_id).order_by(LedgerLeaf.position)
        ).all()
    assert [p for p, _ in rows] == list(range(100))
    assert len({e for _, e in rows}) == 100
    placed = {e: p for p, e in rows}  # a custody page's events with their positions
    page = catalog.event_page(case_id="CASE-1", after=0, limit=100, placed_below=60)
    assert [r.id for r, _ in page] == sorted(placed)
    assert all(p == (placed[r.id] if placed[r.id] < 60 else None) for r, p in page)
    root = bytes.fromhex(head.root)
    for event in catalog.events():
        position, proof = sequencers[1].inclusion_proof(event.id, head.size)
        assert verify_inclusion(leaf_hash(canonical_event(event)), position, 100, proof, root)
    for statement in (update(LedgerLeaf).values(position=999), delete(TreeHeadRecord)):
        with pytest.raises(DBAPIError, match="append-only"), catalog.session() as session:
            session.execute(statement)
    for ledger in sequencers:
        ledger.catalog.engine.dispose()
