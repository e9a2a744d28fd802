"""The ledger key apart from the data: a process given only the public key appends custody
events and checks signed heads, but cannot sign; the one holding the key signs for all."""

from __future__ import annotations

from pathlib import Path

import pytest
from vigil_verify.checkpoint import parse_checkpoint, verify_checkpoint

from catalog.repository import Event
from integrity.errors import LedgerError
from integrity.keys import create_signing_key
from integrity.logfacts import prove
from workers.app import build_app
from workers.settings import Settings


def test_a_process_with_the_public_key_only_appends_and_checks(tmp_path: Path) -> None:
    key = create_signing_key(tmp_path / "keys" / "ledger.pem", "vigil.test/custody")
    public = tmp_path / "keys" / "ledger.pub.pem"
    public.write_bytes(key.public_pem)
    data = tmp_path / "data"
    worker = build_app(Settings(data_dir=data, ledger_public_key_file=public))
    service = build_app(Settings(data_dir=data, ledger_key_file=tmp_path / "keys" / "ledger.pem"))
    try:
        assert not worker.ledger.can_sign and service.ledger.can_sign
        assert not (data / "ledger-dev-ed25519.pem").exists()  # no key generated beside the data
        worker.catalog.add_event(Event("view", "alice", "rec-0000000000000001", reason="look"))
        with pytest.raises(LedgerError, match="ledger service"):
            worker.ledger.checkpoint()  # nothing signed yet, and it cannot sign
        head = service.ledger.checkpoint()
        assert head.size == 1
        assert worker.ledger.checkpoint().id == head.id  # the latest head, signed by the service
        facts = prove(worker.ledger, worker.ledger.public_key, ["rec-0000000000000001"])
        assert facts.head is not None and facts.head.checkpoint.size == 1
        assert facts.of("rec-0000000000000001").unsigned == []
        assert facts.of("rec-0000000000000001").problems == []
    finally:
        worker.stop()
        service.stop()


def test_a_rotation_hands_over_with_a_head_both_keys_sign(tmp_path: Path) -> None:
    name = "vigil.local/custody"  # the default VIGIL_LEDGER_NAME
    old = create_signing_key(tmp_path / "old.pem", name)
    new = create_signing_key(tmp_path / "new.pem", name)
    data = tmp_path / "data"
    before = build_app(Settings(data_dir=data, ledger_key_file=tmp_path / "old.pem"))
    before.catalog.add_event(Event("view", "alice", "rec-0000000000000001", reason="look"))
    first = before.ledger.checkpoint()
    before.stop()
    after = build_app(Settings(data_dir=data, ledger_key_file=tmp_path / "new.pem"))
    try:
        handover = after.ledger.hand_over(old)
        note = parse_checkpoint(handover.note)
        assert verify_checkpoint(note, old.private.public_key())  # who trusts the old key ...
        assert verify_checkpoint(note, new.private.public_key())  # ... can pin the new one
        assert handover.size == first.size and handover.id != first.id
        after.catalog.add_event(Event("view", "bob", "rec-0000000000000001", reason="look"))
        later = parse_checkpoint(after.ledger.checkpoint().note)
        assert verify_checkpoint(later, new.private.public_key())
        assert not verify_checkpoint(later, old.private.public_key())  # the old key is retired
    finally:
        after.stop()
