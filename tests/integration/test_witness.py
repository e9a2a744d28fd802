"""Vigil's signed tree heads, cosigned by real C2SP tlog-witnesses nobody here wrote
(torchwood's litewitness and transparency-dev's omniwitness, built with ``go install``; see
tests/services/witness.py), through ``integrity.witness.cosign``, with every cosignature checked
by the stand-alone ``vigil_verify.cosignature``.

A rebuilt log signed with the real key is refused by the witnesses and reported as
inconsistent; a forged cosignature fails; a witness that is down costs a timeout, not an error.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from vigil_verify.checkpoint import note_key_hash, parse_checkpoint, verify_checkpoint
from vigil_verify.cosignature import (
    CosignatureStatus,
    WitnessKey,
    add_cosignatures,
    check_cosignature,
    check_quorum,
    cosigned_message,
    parse_cosignature,
)
from vigil_verify.errors import ErrorKind

from catalog.db import make_engine
from catalog.models import TreeHeadRecord
from catalog.repository import Catalog, Event
from integrity.export import export_case
from integrity.keys import SigningKey
from integrity.ledger import Ledger
from integrity.witness import (
    CosignResult,
    Witness,
    WitnessConfig,
    WitnessInconsistent,
    cosign,
)
from integrity.witness_ledger import COSIGNATURE_PREFIX, LedgerWitnesses
from interfaces.devservices.base import HOST, free_port
from store.local import LocalFolderStore
from tests.helpers import ingest_and_process
from transcode.samples import SampleSpec
from workers.app import build_app
from workers.settings import Settings

if TYPE_CHECKING:
    from tests.services.witness import StartWitness

pytest_plugins = ["tests.services.witness"]  # start_witness, witness_binaries
pytestmark = [pytest.mark.services, pytest.mark.slow]

KINDS = ("litewitness", "omniwitness")


@dataclass
class Log:
    """A ledger on its own SQLite catalogue and folder store."""

    catalog: Catalog
    ledger: Ledger
    path: Path

    def add(self, n: int, prefix: str) -> None:
        for i in range(n):
            self.catalog.add_event(
                Event("view", "tester", case_id=f"CASE-{i % 3}", reason=f"{prefix}{i}")
            )

    def head(self) -> TreeHeadRecord:
        return self.ledger.checkpoint()

    def proof_for(self, size: int) -> Callable[[int], list[bytes]]:
        return lambda old: self.ledger.consistency_proof(old, size)

    def cosign(
        self,
        head: TreeHeadRecord,
        witnesses: list[Witness],
        known_sizes: dict[str, int] | None = None,
    ) -> CosignResult:
        proof_for = self.proof_for(head.size)
        return cosign(head.note, head.size, proof_for, witnesses, known_sizes=known_sizes)


def open_log(folder: Path, key: SigningKey) -> Log:
    catalog = Catalog(make_engine(f"sqlite:///{folder / 'catalog.sqlite3'}"))
    catalog.migrate()
    ledger = Ledger(
        catalog=catalog,
        store=LocalFolderStore(folder / "objects"),
        key=key,
        work_dir=folder / "work",
    )
    return Log(catalog, ledger, folder)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(f"vigil.test/custody-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate())


@pytest.fixture
def log(tmp_path: Path, key: SigningKey) -> Log:
    (tmp_path / "log").mkdir()
    return open_log(tmp_path / "log", key)


def vkey_of(key: SigningKey) -> str:
    """The log's signed-note verifier key, as witnesses are configured with it:
    ``origin+keyhash+base64(0x01 ‖ Ed25519 public key)``."""
    raw = key.private.public_key().public_bytes_raw()
    blob = base64.b64encode(b"\x01" + raw).decode("ascii")
    return f"{key.name}+{note_key_hash(key.name, raw).hex()}+{blob}"


def unheld_key(name: str) -> WitnessKey:
    """A witness key whose private half nobody kept (for witnesses that never answer)."""
    return WitnessKey(name, Ed25519PrivateKey.generate().public_key().public_bytes_raw())


def rebuilt_without(log: Log, tmp_path: Path, key: SigningKey, event_number: int) -> Log:
    """What an insider with the database and the key does: copy the catalogue, drop the
    append-only triggers, delete one custody event and the whole log, and re-sign."""
    folder = tmp_path / "rebuilt"
    folder.mkdir()
    with (
        contextlib.closing(sqlite3.connect(log.path / "catalog.sqlite3")) as source,
        contextlib.closing(sqlite3.connect(folder / "catalog.sqlite3")) as copy,
    ):
        source.backup(copy)  # with what is still in the write-ahead log
    with contextlib.closing(sqlite3.connect(folder / "catalog.sqlite3")) as db, db:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f'DROP TRIGGER "{trigger}"')
        db.execute("DELETE FROM ledger_leaves")
        db.execute("DELETE FROM tree_heads")
        event_id = db.execute(
            "SELECT id FROM custody_events ORDER BY id LIMIT 1 OFFSET ?", (event_number,)
        ).fetchone()[0]
        db.execute("DELETE FROM custody_events WHERE id = ?", (event_id,))
    return open_log(folder, key)


@pytest.mark.parametrize("kind", KINDS)
def test_a_vigil_checkpoint_is_cosigned_and_the_cosignature_verifies(
    kind: str, start_witness: StartWitness, log: Log, key: SigningKey
) -> None:
    w = start_witness(kind, logs=[(key.name, vkey_of(key))])
    log.add(5, "a")
    head = log.head()
    result = log.cosign(head, [w.witness])
    assert result.failures == ()
    assert result.quorum_met and [name for name, _ in result.pairs] == [w.identity.name]
    (cosig,) = result.cosignatures
    assert cosig.size == 5 and abs(cosig.timestamp - time.time()) < 120
    cosigned = result.cosigned_note
    ok, verdicts = check_quorum(cosigned, [w.identity.key.vkey], 1)
    assert ok and verdicts[0].status is CosignatureStatus.VERIFIED
    # the log's own signature still verifies on the cosigned note; the body is unchanged
    parsed = parse_checkpoint(cosigned)
    assert verify_checkpoint(parsed, key.private.public_key())
    assert parsed.body == parse_checkpoint(head.note).body and len(parsed.signatures) == 2
    if kind == "litewitness":
        assert w.known_size(key.name) == 5


@pytest.mark.parametrize("kind", KINDS)
def test_a_later_checkpoint_is_cosigned_with_a_consistency_proof(
    kind: str, start_witness: StartWitness, log: Log, key: SigningKey
) -> None:
    w = start_witness(kind, logs=[(key.name, vkey_of(key))])
    log.add(5, "a")
    first = log.head()
    assert log.cosign(first, [w.witness]).quorum_met
    log.add(6, "b")
    second = log.head()
    told = log.cosign(second, [w.witness], known_sizes={w.identity.name: first.size})
    assert told.quorum_met, told.failures
    # Not told the witness's size: the client sends ``old 0``, the witness answers 409 with
    # 11, and the client retries once with a proof from 11.
    log.add(4, "c")
    third = log.head()
    untold = log.cosign(third, [w.witness])
    assert untold.quorum_met, untold.failures
    assert check_quorum(untold.cosigned_note, [w.identity.key], 1).ok
    # each cosignature is over its own checkpoint only
    (line,) = [c.line for c in told.cosignatures]
    assert not check_quorum(add_cosignatures(third.note, [line]), [w.identity.key], 1).ok
    if kind == "litewitness":
        assert w.known_size(key.name) == 15


@pytest.mark.parametrize("kind", KINDS)
def test_a_log_rebuilt_without_an_event_is_refused_by_the_witness(
    kind: str, start_witness: StartWitness, log: Log, key: SigningKey, tmp_path: Path
) -> None:
    w = start_witness(kind, logs=[(key.name, vkey_of(key))])
    log.add(6, "a")
    honest = log.head()
    honest_lines = [c.line for c in log.cosign(honest, [w.witness]).cosignatures]
    assert honest_lines
    rebuilt = rebuilt_without(log, tmp_path, key, event_number=2)

    # Smaller than what the witness cosigned: its 409 names 6, the client stops there.
    smaller = rebuilt.head()
    assert smaller.size == 5 and verify_checkpoint(
        parse_checkpoint(smaller.note), key.private.public_key()
    )
    result = rebuilt.cosign(smaller, [w.witness])
    assert result.cosignatures == () and not result.quorum_met
    (failure,) = result.inconsistent
    assert isinstance(failure.error, WitnessInconsistent) and failure.kind is ErrorKind.CONFLICT
    assert failure.error.known_size == 6 and "lost entries or was rewritten" in str(failure)

    # Grown to the very size the witness holds, with another root: refused (both witnesses
    # answer 422 here, where the spec says 409; the client names it inconsistent either way).
    rebuilt.add(1, "forged")
    same = rebuilt.head()
    assert same.size == 6
    (failure,) = rebuilt.cosign(same, [w.witness], known_sizes={w.identity.name: 6}).failures
    assert failure.inconsistent and failure.error.status == 422, failure

    # Grown past it: the proof from 6 is made in the rebuilt tree and the witness refuses it
    # (422), told the size or not.
    rebuilt.add(2, "forged")
    grown = rebuilt.head()
    assert grown.size == 8
    for known in ({w.identity.name: 6}, None):
        result = rebuilt.cosign(grown, [w.witness], known_sizes=known)
        (failure,) = result.failures
        assert failure.inconsistent and failure.error.status == 422, failure
        assert "consistency proof from size 6 does not verify" in str(failure)
    if kind == "litewitness":
        assert w.known_size(key.name) == 6
    # The honest head's cosignature, attached to the rebuilt head, proves nothing.
    for rebuilt_head in (smaller, same, grown):
        ok, (verdict,) = check_quorum(
            add_cosignatures(rebuilt_head.note, honest_lines), [w.identity.key], 1
        )
        assert not ok and verdict.status is CosignatureStatus.INVALID

    # The witness still follows the honest log.
    log.add(3, "b")
    later = log.head()
    assert log.cosign(later, [w.witness]).quorum_met


def test_a_forged_cosignature_fails_verification(
    start_witness: StartWitness, log: Log, key: SigningKey
) -> None:
    w = start_witness("litewitness", logs=[(key.name, vkey_of(key))])
    wkey = w.identity.key
    log.add(4, "a")
    head = log.head()
    (real,) = [c.line for c in log.cosign(head, [w.witness]).cosignatures]
    body = parse_checkpoint(head.note).body
    assert check_cosignature(body, real, wkey).ok
    cosig = parse_cosignature(real)

    flipped = bytearray(cosig.signature)
    flipped[10] ^= 0x01
    later = cosig.timestamp + 1
    mallory = Ed25519PrivateKey.generate()
    forged_by_mallory = type(cosig)(
        cosig.name, cosig.key_id, cosig.timestamp, mallory.sign(cosigned_message(body, later - 1))
    )
    forgeries = {
        "signature altered": type(cosig)(cosig.name, cosig.key_id, cosig.timestamp, bytes(flipped)),
        "timestamp altered": type(cosig)(cosig.name, cosig.key_id, later, cosig.signature),
        "signed by another key under the witness's name and key ID": forged_by_mallory,
    }
    for what, forged in forgeries.items():
        verdict = check_cosignature(body, forged.line, wkey)
        assert verdict.status is CosignatureStatus.INVALID, what
        ok, (quorum_verdict,) = check_quorum(add_cosignatures(head.note, [forged.line]), [wkey], 1)
        assert not ok and quorum_verdict.status is CosignatureStatus.INVALID, what

    # the real line on another checkpoint of the same log
    log.add(1, "b")
    other = log.head()
    ok, (verdict,) = check_quorum(add_cosignatures(other.note, [real]), [wkey], 1)
    assert not ok and verdict.status is CosignatureStatus.INVALID
    # a key the verifier trusts that did not cosign: missing, not verified
    stranger = unheld_key("stranger.vigil.test/w")
    ok, verdicts = check_quorum(add_cosignatures(head.note, [real]), [wkey, stranger], 2)
    assert not ok and [v.status for v in verdicts] == [
        CosignatureStatus.VERIFIED,
        CosignatureStatus.MISSING,
    ]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        yield f"http://{HOST}:{sock.getsockname()[1]}"


def test_a_witness_that_is_down_is_reported_fast_and_never_raises(
    start_witness: StartWitness, log: Log, key: SigningKey, black_hole: str
) -> None:
    w = start_witness("litewitness", logs=[(key.name, vkey_of(key))])
    dead = Witness(f"http://{HOST}:{free_port()}", unheld_key("dead.vigil.test/w"))
    silent = Witness(black_hole, unheld_key("silent.vigil.test/w"))
    config = WitnessConfig((w.witness, dead, silent), quorum=2, timeout_s=1.0)
    log.add(3, "a")
    head = log.head()
    started = time.monotonic()
    result = cosign(head.note, head.size, log.proof_for(head.size), config)
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"took {elapsed:.1f} s"
    assert [name for name, _ in result.pairs] == [w.identity.name]
    assert not result.quorum_met  # one of the two needed
    by_name = {f.witness: f for f in result.failures}
    assert set(by_name) == {"dead.vigil.test/w", "silent.vigil.test/w"}
    assert all(f.kind is ErrorKind.UNAVAILABLE for f in result.failures)
    assert "ConnectionRefusedError" in str(by_name["dead.vigil.test/w"])
    assert "timed out" in str(by_name["silent.vigil.test/w"]).lower()
    # once quorum 1 is asked for, the same answer is enough
    assert check_quorum(result.cosigned_note, config.keys, 1).ok


def test_the_ledger_keeps_verified_cosignatures_in_the_worm_store(
    start_witness: StartWitness, log: Log, key: SigningKey, tmp_path: Path
) -> None:
    w = start_witness("litewitness", logs=[(key.name, vkey_of(key))])
    dead = Witness(f"http://{HOST}:{free_port()}", unheld_key("dead.vigil.test/w"))
    witnesses = LedgerWitnesses(
        config=WitnessConfig((w.witness, dead), quorum=1, timeout_s=1.0),
        store=log.ledger.store,
        work_dir=tmp_path / "work",
    )
    log.add(5, "a")
    first = log.head()
    result = witnesses.witness(first.note, first.size, log.proof_for(first.size))
    assert result.quorum_met and [f.witness for f in result.failures] == ["dead.vigil.test/w"]
    assert witnesses.known_sizes() == {w.identity.name: 5}
    kept = log.ledger.store.list_keys("derived", COSIGNATURE_PREFIX)
    assert len(kept) == 1 and kept[0].endswith(".json") and "/00000000000000000005-" in kept[0]
    assert witnesses.lines(first.note) == [result.cosignatures[0].line]
    assert check_quorum(witnesses.cosigned_note(first.note), [w.identity.key], 1).ok
    log.add(3, "b")
    status = witnesses.status(log.ledger.sequence())
    assert (status.tree_size, status.witnessed_size, status.behind) == (8, 5, 3)
    second = log.head()
    assert witnesses.witness(second.note, second.size, log.proof_for(second.size)).quorum_met
    assert w.known_size(key.name) == 8 and witnesses.status(8).behind == 0
    assert witnesses.lines(first.note) and witnesses.lines(second.note) != witnesses.lines(
        first.note
    )


@pytest.mark.parametrize(
    ("kind", "status", "kind_of_error"),
    [("litewitness", 403, ErrorKind.FORBIDDEN), ("omniwitness", 500, ErrorKind.UNAVAILABLE)],
)
def test_a_witness_not_configured_for_the_log_refuses_it(
    kind: str,
    status: int,
    kind_of_error: ErrorKind,
    start_witness: StartWitness,
    log: Log,
    key: SigningKey,
) -> None:
    """Where the spec says 404 for an unknown origin, litewitness answers 403 and this
    omniwitness 500 (its SQLite store's "no rows" error): neither is taken for a refusal of
    the log's history."""
    other = SigningKey(key.name + "-other", Ed25519PrivateKey.generate())
    w = start_witness(kind, logs=[(other.name, vkey_of(other))])
    log.add(2, "a")
    (failure,) = log.cosign(log.head(), [w.witness]).failures
    assert failure.error.status == status and failure.kind is kind_of_error
    assert not failure.inconsistent


def test_an_exported_package_carries_the_cosignature_and_vigil_verify_requires_it(
    start_witness: StartWitness, tmp_path: Path, make_clip: Callable[[SampleSpec], Path]
) -> None:
    """End to end: Vigil configured with a real litewitness; the export's tree head carries its
    cosignature; `vigil-verify --witness KEY --quorum 1` accepts it, and refuses a forged one
    and a head no trusted witness cosigned."""
    from vigil_verify.cli import main as verify_main

    data = tmp_path / "vigil"
    first = build_app(Settings(data_dir=data))  # makes the development ledger key
    log_key = first.ledger.key
    assert isinstance(log_key, SigningKey)
    first.stop()
    w = start_witness("litewitness", logs=[(log_key.name, vkey_of(log_key))])
    vkey = w.identity.key.vkey
    app = build_app(Settings(data_dir=data, ledger_witnesses=f"{w.url} {vkey}"))
    try:
        rec = ingest_and_process(app, make_clip(SampleSpec(duration_s=4.0, width=320, height=240)))
        app.cases.link("CASE-W", rec, from_s=None, to_s=None, reason="witnessed", actor="officer")
        package = export_case(
            app.catalog, app.store, app.ledger, "CASE-W", tmp_path / "export", actor="reviewer",
            reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
            worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
        )  # fmt: skip
    finally:
        app.stop()
    document = json.loads((package / "ledger" / "checkpoint.json").read_text())
    assert len(document["cosignatures"]) == 1
    assert verify_main([str(package), "--witness", vkey, "--quorum", "1"]) == 0
    stranger = WitnessKey("stranger.example/w", Ed25519PrivateKey.generate().public_key()
                          .public_bytes_raw())  # fmt: skip
    assert verify_main([str(package), "--witness", stranger.vkey]) == 1  # no quorum
    line = document["cosignatures"][0]
    blob = base64.b64decode(line.split()[-1])
    forged = blob[:-1] + bytes([blob[-1] ^ 1])
    document["cosignatures"] = [line.rsplit(" ", 1)[0] + " " + base64.b64encode(forged).decode()]
    (package / "ledger" / "checkpoint.json").write_text(json.dumps(document))
    assert verify_main([str(package), "--witness", vkey]) == 1  # a forged cosignature fails
