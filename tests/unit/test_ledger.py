"""The custody ledger: signed notes, sequencing, checkpoints, proofs and the audit."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from vigil_verify.checkpoint import (
    CheckpointError,
    checkpoint_body,
    load_public_key,
    note_key_hash,
    parse_checkpoint,
    verify_checkpoint,
)
from vigil_verify.merkle import leaf_hash, verify_consistency, verify_inclusion

from catalog.db import make_engine
from catalog.repository import Catalog, Event, now
from integrity.errors import SigningKeyError
from integrity.keys import SigningKey, create_signing_key, load_signing_key
from integrity.ledger import Ledger, canonical_event
from store.local import LocalFolderStore
from tests.helpers import START
from workers.app import make_signing_key
from workers.settings import Settings

# golang.org/x/mod/sumdb/note, note_test.go (TestSign / TestNewVerifier): the reference example of
# a C2SP signed note. Ed25519 is deterministic, so signing the same text with the same key must
# reproduce the published note byte for byte.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def test_signed_note_matches_the_go_reference_byte_for_byte() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])  # the key material may contain '+'
    public = base64.b64decode(GO_VKEY.split("+", 2)[2])
    assert seed[0] == public[0] == 1  # algorithm byte: Ed25519
    key = SigningKey("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:]))
    assert note_key_hash("PeterNeumann", public[1:]).hex() == "c74f20a3"
    assert key.sign(GO_TEXT) == f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIG}\n"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey("vigil.test/custody", Ed25519PrivateKey.generate())


def test_checkpoint_round_trip_and_tampering(key: SigningKey) -> None:
    root = bytes(range(32))
    note = key.sign(checkpoint_body(key.name, 42, root, START))
    parsed = parse_checkpoint(note)
    assert (parsed.origin, parsed.size, parsed.root, parsed.signed_at) == (
        key.name,
        42,
        root,
        START,
    )
    public = load_public_key(key.public_pem)
    assert verify_checkpoint(parsed, public)
    assert parsed.text == note
    assert not verify_checkpoint(parse_checkpoint(note.replace("\n42\n", "\n41\n")), public)
    stranger = Ed25519PrivateKey.generate().public_key()
    assert not verify_checkpoint(parsed, stranger)
    for bad, problem in (
        ("no blank line", "no blank line"),
        (note.replace("\n42\n", "\n042\n"), "not a decimal"),
        (note.split("\n\n")[0] + "\n\n", "not signed"),
        (note.replace(base64.b64encode(root).decode(), "AAAA"), "3 bytes"),
    ):
        with pytest.raises(CheckpointError, match=problem):
            parse_checkpoint(bad)
    with pytest.raises(CheckpointError, match="origin"):
        checkpoint_body("two words", 1, root, START)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}"))
    catalog.migrate()
    return catalog


@pytest.fixture
def ledger(catalog: Catalog, key: SigningKey, tmp_path: Path) -> Ledger:
    return Ledger(
        catalog=catalog,
        store=LocalFolderStore(tmp_path / "objects"),
        key=key,
        work_dir=tmp_path / "work",
    )


def add_events(catalog: Catalog, n: int, prefix: str = "e") -> None:
    for i in range(n):
        catalog.add_event(Event("view", "tester", case_id=f"CASE-{i % 3}", reason=f"{prefix}{i}"))


def test_sequence_is_idempotent_and_contiguous(catalog: Catalog, ledger: Ledger) -> None:
    add_events(catalog, 5)
    assert ledger.sequence() == 5
    assert ledger.sequence() == 5  # nothing new: nothing re-sequenced
    add_events(catalog, 3, "f")
    assert ledger.sequence() == 8
    events = catalog.events()
    positions = [ledger.position_of(e.id) for e in events]
    assert positions == list(range(8))
    tree = ledger.tree()
    assert [tree.leaf(p) for p in positions] == [leaf_hash(canonical_event(e)) for e in events]


def test_concurrent_sequencers_give_each_event_one_position(
    catalog: Catalog, key: SigningKey, tmp_path: Path
) -> None:
    """Two processes' sequencers (separate engines) race while events keep arriving."""
    url = str(catalog.engine.url)
    others = [Catalog(make_engine(url)) for _ in range(2)]
    sequencers = [
        Ledger(catalog=c, store=LocalFolderStore(tmp_path / "o"), key=key, work_dir=tmp_path)
        for c in others
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(ledger: Ledger) -> None:
        try:
            while not stop.is_set():
                ledger.sequence()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in sequencers]
    for thread in threads:
        thread.start()
    add_events(catalog, 60)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors
    final = sequencers[0].sequence()
    assert final == 60
    with sqlite3.connect(catalog.engine.url.database or "") as db:
        rows = db.execute(
            "SELECT position, event_id FROM ledger_leaves ORDER BY position"
        ).fetchall()
    assert [p for p, _ in rows] == list(range(60))
    assert len({e for _, e in rows}) == 60


def test_checkpoint_is_signed_stored_and_proves_events(
    catalog: Catalog, ledger: Ledger, tmp_path: Path
) -> None:
    add_events(catalog, 7)
    first = ledger.checkpoint()
    assert first.size == 7
    assert ledger.checkpoint().id == first.id  # nothing new: the same head
    stored = ledger.read_checkpoint(first.object_key)
    assert stored.note == first.note
    assert (tmp_path / "objects" / "derived" / first.object_key).exists()
    head = parse_checkpoint(first.note)
    assert verify_checkpoint(head, ledger.key.private.public_key())
    for event in catalog.events():
        position, proof = ledger.inclusion_proof(event.id, head.size)
        assert verify_inclusion(
            leaf_hash(canonical_event(event)), position, head.size, proof, head.root
        )
    add_events(catalog, 6, "g")
    second = parse_checkpoint(ledger.checkpoint().note)
    proof = ledger.consistency_proof(head.size, second.size)
    assert verify_consistency(head.size, second.size, proof, head.root, second.root)
    assert ledger.audit([first.object_key]).ok


def test_canonical_event_is_stable_sorted_json(catalog: Catalog) -> None:
    catalog.add_event(Event("case.link", "ü-officer", "rec-1", "CASE-1", "reason ✓"))
    (event,) = catalog.events()
    data = canonical_event(event)
    assert data == canonical_event(catalog.events()[0])
    document = json.loads(data)
    assert list(document) == sorted(document)
    assert document["actor"] == "ü-officer" and document["action"] == "case.link"
    assert b" " not in data.replace(b"reason \xe2\x9c\x93", b"")


def test_audit_finds_an_event_changed_after_sequencing(catalog: Catalog, ledger: Ledger) -> None:
    add_events(catalog, 4)
    ledger.checkpoint()
    with sqlite3.connect(catalog.engine.url.database or "") as db:
        db.execute("DROP TRIGGER custody_events_no_UPDATE")
        db.execute("UPDATE custody_events SET reason = 'nothing to see' WHERE id = 2")
    audit = ledger.audit()
    assert [p.kind for p in audit.problems] == ["event-changed"]
    assert "event #2" in audit.problems[0].detail


def test_custody_tables_refuse_update_and_delete(catalog: Catalog, ledger: Ledger) -> None:
    add_events(catalog, 2)
    ledger.checkpoint()
    with sqlite3.connect(catalog.engine.url.database or "") as db:
        for sql in (
            "UPDATE ledger_leaves SET position = 9 WHERE position = 0",
            "DELETE FROM ledger_leaves",
            "UPDATE tree_heads SET size = 1",
            "DELETE FROM tree_heads",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)


def test_development_key_is_generated_once_and_announced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key, notice = make_signing_key(settings)
    assert notice is not None and "DEVELOPMENT" in notice and str(tmp_path) in notice
    assert stat.S_IMODE(settings.dev_ledger_key.stat().st_mode) == 0o600
    again, second = make_signing_key(settings)
    assert second is None and again.fingerprint == key.fingerprint


def test_production_requires_a_configured_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VIGIL_LEDGER_KEY_FILE"):
        Settings(data_dir=tmp_path, environment="production")
    path = tmp_path / "ledger.pem"
    created = create_signing_key(path, "x")
    settings = Settings(data_dir=tmp_path, environment="production", ledger_key_file=path)
    key, notice = make_signing_key(settings)
    assert notice is None and key.fingerprint == created.fingerprint
    with pytest.raises(FileExistsError):
        create_signing_key(path, "x")  # never overwrites a key


def test_unusable_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_signing_key(tmp_path / "absent.pem", "x")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM"):
        load_signing_key(garbage, "x")


def test_processes_starting_together_share_one_development_key(tmp_path: Path) -> None:
    """Several workers start at once on a fresh data dir: one makes the key, the others read
    it (whole: it appears atomically), and all sign with the same key."""
    settings = Settings(data_dir=tmp_path)
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        try:
            barrier.wait(10)
            key, _notice = make_signing_key(settings)
            results.append(key.fingerprint)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ledger-dev-ed25519.pem"]  # no leftovers


def test_custody_pages_at_once_share_one_fresh_head(catalog: Catalog, ledger: Ledger) -> None:
    add_events(catalog, 3)
    first = ledger.checkpoint()
    assert ledger.fresh_head(5.0).size == first.size  # fresh enough: nothing signed
    add_events(catalog, 2, prefix="later")
    ledger.clock = lambda: now() + timedelta(seconds=10)  # the head is now 10 s old
    heads: list[int] = []
    threads = [
        threading.Thread(target=lambda: heads.append(ledger.fresh_head(5.0).size)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert heads == [5] * 8
    assert len(ledger.heads()) == 2  # one new head for the eight, not eight
