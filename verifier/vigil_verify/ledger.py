"""The log half of a package check: the signed tree head, every event's inclusion proof, every
earlier head's consistency proof, and the facts the proved events establish (read by
``vigil_verify.facts``).

Only events whose inclusion proof verifies become *signed facts*; everything the footage check
trusts (an original's hash, each segment's hash, time, chain link and perceptual hashes, the
case's linked windows) comes from them, never from the manifest, which is only cross-checked.

Every file is read through ``vigil_verify.untrusted`` and every parse of what it holds is
guarded: what cannot be read as its format requires (a file missing or not JSON, a line of the
wrong shape, a value of the wrong type, a proved event whose detail makes no sense) is listed in
``LedgerCheck.malformed`` and the check goes on with the rest; nothing a package holds makes it
raise. Problems that are findings about well-formed input (a signature or proof that fails) are
``LedgerCheck.problems``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil_verify.checkpoint import (
    Checkpoint,
    CheckpointError,
    key_fingerprint,
    load_public_key,
    parse_checkpoint,
    verify_checkpoint,
)
from vigil_verify.cosignature import (
    CosignatureError,
    WitnessKey,
    add_cosignatures,
    check_quorum,
)
from vigil_verify.facts import (
    LedgerCheck,
    SignedEvent,
    SignedRecording,
    SignedSegment,
    _str,
    apply_event,
    parse_entry,
)
from vigil_verify.merkle import leaf_hash, verify_consistency, verify_inclusion
from vigil_verify.names import is_id, shown
from vigil_verify.timestamp import Failure, check_timestamp
from vigil_verify.untrusted import (
    SMALL_DOCUMENT_BYTES,
    Malformed,
    guarded,
    parse_json,
    read_document,
)

__all__ = [
    "LedgerCheck",
    "SignedEvent",
    "SignedRecording",
    "SignedSegment",
    "check_ledger",
]

UNREADABLE_TOKEN = (Failure.NOT_A_TOKEN, Failure.BAD_TRUSTED_CERT)
"""Timestamp failures that mean the token (or the package's TSA certificates) cannot be read."""


def _public_key(path: Path, what: str) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path``; ``Malformed`` naming ``what`` otherwise."""
    pem = read_document(path, what, SMALL_DOCUMENT_BYTES)
    return guarded(f"{what} is not an Ed25519 public key", load_public_key, pem)


def _load_key(package: Path, pinned: Path | None, check: LedgerCheck) -> Ed25519PublicKey | None:
    packaged_path = package / "ledger" / "public-key.pem"
    packaged = None
    if packaged_path.exists() or packaged_path.is_symlink():
        try:
            packaged = _public_key(packaged_path, "ledger/public-key.pem")
        except Malformed as exc:
            check.malformed.append(f"log: the package's public key is unusable: {exc}")
    key = packaged
    if pinned is not None:
        check.key_source = f"pinned ({pinned})"
        try:
            key = _public_key(pinned, f"--key {pinned}")
        except Malformed as exc:
            check.malformed.append(f"log: the pinned key is unusable: {exc}")
            return None
        if packaged is not None and key_fingerprint(packaged) != key_fingerprint(key):
            check.problems.append(
                "log: the package's public key is not the pinned key: its checkpoints were signed"
                " by someone else"
            )
    if key is None:
        check.problems.append("log: no public key (ledger/public-key.pem is missing; use --key)")
        return None
    check.key_fingerprint = key_fingerprint(key)
    return key


@dataclass(frozen=True)
class WitnessPolicy:
    """The witnesses an auditor trusts (``--witness``) and how many must have cosigned."""

    keys: tuple[WitnessKey, ...]
    quorum: int | None = None  # None: all of them


def _load_cosignatures(path: Path) -> list[str]:
    """The witnesses' cosignature lines ``ledger/checkpoint.json`` carries (none if absent)."""
    what = "ledger/checkpoint.json"
    document = parse_json(read_document(path, what, SMALL_DOCUMENT_BYTES), what)
    lines = document.get("cosignatures") if isinstance(document, dict) else None
    return [line for line in lines if isinstance(line, str)] if isinstance(lines, list) else []


def _check_witnesses(
    folder: Path, note: str, head: Checkpoint, witnesses: WitnessPolicy, check: LedgerCheck
) -> None:
    """The head must carry cosignatures of at least the quorum of the trusted witnesses."""
    try:
        lines = _load_cosignatures(folder / "checkpoint.json")
        result = check_quorum(add_cosignatures(note, lines), witnesses.keys, witnesses.quorum)
    except (Malformed, CheckpointError, CosignatureError) as exc:
        check.malformed.append(f"log: the witnesses' cosignatures are unusable: {exc}")
        return
    check.witnesses = [f"{v.witness}: {v.status}" for v in result.verdicts]
    if not result.ok:
        needed = witnesses.quorum or len(witnesses.keys)
        why = "; ".join(f"{v.witness}: {v.status}" for v in result.verdicts if not v.ok)
        check.problems.append(
            f"log: the tree head (size {head.size}) is cosigned by {result.verified} of the"
            f" {needed} witnesses required ({why}): no quorum of witnesses saw this log"
        )


def _load_checkpoint_object(path: Path) -> tuple[str, bytes | None]:
    """The signed note and the timestamp token (if any) of ``ledger/checkpoint.json``."""
    what = "ledger/checkpoint.json"
    document = parse_json(read_document(path, what, SMALL_DOCUMENT_BYTES), what)
    if not isinstance(document, dict):
        raise Malformed(f"{what}: not a JSON object")
    note, token = document.get("note"), document.get("timestamp_token")
    if not isinstance(note, str):
        raise Malformed(f"{what}: its note is {shown(note)}, not text")
    if token is not None and not isinstance(token, str):
        raise Malformed(f"{what}: its timestamp_token is {shown(token)}, not base64 text")
    if token is None:
        return note, None
    decoded = guarded(
        f"{what}: its timestamp_token is not base64", lambda: base64.b64decode(token, validate=True)
    )
    return note, decoded


def _head(folder: Path, check: LedgerCheck) -> tuple[str, bytes | None, Checkpoint] | None:
    """The package's signed tree head: its note, timestamp token and parsed checkpoint."""
    try:
        note, token = _load_checkpoint_object(folder / "checkpoint.json")
        head = guarded("ledger/checkpoint.json", parse_checkpoint, note)
    except Malformed as exc:
        check.malformed.append(f"log: no usable signed tree head ({exc})")
        return None
    return note, token, head


def _check_timestamp(folder: Path, note: str, token: bytes, check: LedgerCheck) -> None:
    certs_path = folder / "tsa-certs.pem"
    trusted: list[bytes] = []
    if certs_path.exists() or certs_path.is_symlink():
        try:
            trusted.append(read_document(certs_path, "ledger/tsa-certs.pem", SMALL_DOCUMENT_BYTES))
        except Malformed as exc:
            check.malformed.append(f"log: the TSA certificates are unusable: {exc}")
    stamp = check_timestamp(token, hashlib.sha256(note.encode()).digest(), trusted)
    if stamp.ok:
        check.timestamp = f"RFC 3161 timestamp OK: {stamp.gen_time} by {stamp.signer}"
        return
    check.timestamp = f"RFC 3161 timestamp FAILS: {stamp.problem}"
    found = f"log: the tree head's trusted timestamp fails: {stamp.problem}"
    (check.malformed if stamp.failure in UNREADABLE_TOKEN else check.problems).append(found)


def check_ledger(
    package: Path,
    case: str | None,
    *,
    pinned_key: Path | None = None,
    trusted_checkpoint: Path | None = None,
    witnesses: WitnessPolicy | None = None,
) -> LedgerCheck:
    check = LedgerCheck(case=case)
    key = _load_key(package, pinned_key, check)
    folder = package / "ledger"
    loaded = _head(folder, check)
    if loaded is None:
        return check
    note, token, head = loaded
    check.head = head
    if key is not None and verify_checkpoint(head, key):
        check.heads[head.size] = head.root
    elif key is not None:
        check.problems.append(
            f"log: the tree head's signature fails (size {head.size}): it was not signed by the"
            f" ledger key {check.key_fingerprint or ''}"
        )
    if witnesses is not None and witnesses.keys:
        _check_witnesses(folder, note, head, witnesses, check)
    if token is not None:
        _check_timestamp(folder, note, token, check)
    _check_events(folder / "events.jsonl", head, check)
    _check_history(folder / "history.json", head, key, check)
    if trusted_checkpoint is not None:
        _check_trusted(trusted_checkpoint, folder / "history.json", head, key, check)
    return check


def _named(text: str) -> str:
    """An action or name from the package: as it is when it fits the ID grammar, else its
    repr, cut short."""
    return text if is_id(text) else shown(text)


def _check_events(path: Path, head: Checkpoint, check: LedgerCheck) -> None:
    try:
        data = read_document(path, "ledger/events.jsonl")
        lines = guarded("ledger/events.jsonl is not UTF-8", lambda: data.decode()).splitlines()
    except Malformed as exc:
        check.malformed.append(f"log: no events ({exc})")
        return
    proved: list[SignedEvent] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        check.events_total += 1
        try:
            position, raw, proof, event = guarded("", parse_entry, line)
        except Malformed as exc:
            check.malformed.append(f"log: events.jsonl line {number} is malformed ({exc})")
            continue
        if not verify_inclusion(leaf_hash(raw), position, head.size, proof, head.root):
            check.problems.append(
                f"log: event #{event.id} ({_named(event.action)}"
                f"{' ' + event.recording if event.recording else ''}) fails its inclusion proof:"
                " the entry was altered or is not in the signed log"
            )
            continue
        proved.append(event)
    check.events_proved = len(proved)
    for event in sorted(proved, key=lambda e: e.position):
        try:
            guarded("", apply_event, check, event)
        except Malformed as exc:
            check.malformed.append(
                f"log: event #{event.id} ({_named(event.action)}) is malformed ({exc})"
            )


def _history(path: Path) -> list[object]:
    entries = parse_json(read_document(path, "ledger/history.json"), "ledger/history.json")
    if not isinstance(entries, list):
        raise Malformed("ledger/history.json: not a JSON list")
    return entries


def _earlier(entry: object) -> tuple[Checkpoint, list[bytes]]:
    """An earlier head of history.json and the proof that the package's head extends it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("checkpoint"), dict):
        raise ValueError("not an object with a checkpoint")
    earlier = parse_checkpoint(_str(entry["checkpoint"].get("note")))
    proof = entry.get("consistency")
    if not isinstance(proof, list):
        raise ValueError(f"consistency {shown(proof)} is not a list")
    return earlier, [bytes.fromhex(_str(p)) for p in proof]


def _check_history(
    path: Path, head: Checkpoint, key: Ed25519PublicKey | None, check: LedgerCheck
) -> None:
    if not (path.exists() or path.is_symlink()):
        return
    try:
        entries = _history(path)
    except Malformed as exc:
        check.malformed.append(f"log: history.json is malformed ({exc})")
        return
    for entry in entries:
        try:
            earlier, proof = guarded("", _earlier, entry)
        except Malformed as exc:
            check.malformed.append(f"log: a history entry is malformed ({exc})")
            continue
        check.history_checked += 1
        when = earlier.signed_at.isoformat() if earlier.signed_at else "?"
        if key is not None and not verify_checkpoint(earlier, key):
            check.problems.append(
                f"log: the earlier head of size {earlier.size} (signed {when}) has a bad signature"
            )
            continue
        if verify_consistency(earlier.size, head.size, proof, earlier.root, head.root):
            if key is not None:  # signed by the key, and the package's head extends it
                check.heads[earlier.size] = earlier.root
        else:
            check.problems.append(
                f"log rewritten: the head of size {earlier.size} signed {when} is not consistent"
                f" with the package's head of size {head.size} (entries were removed or changed)"
            )


def _saved_head(trusted: Path) -> Checkpoint:
    """The head an auditor saved: a checkpoint note, or a checkpoint.json holding one."""
    what = f"--trusted-checkpoint {trusted}"
    data = read_document(trusted, what, SMALL_DOCUMENT_BYTES)
    text = guarded(f"{what} is not UTF-8", lambda: data.decode())
    if text.lstrip().startswith("{"):
        document = parse_json(text, what)
        if not isinstance(document, dict):
            raise Malformed(f"{what}: not a JSON object")
        text = _str(document.get("note"))
    return parse_checkpoint(text)


def _proof_from(history: Path, size: int) -> list[bytes] | None:
    """The consistency proof history.json gives from the head of ``size``, if any."""
    proof: list[bytes] | None = None
    for entry in _history(history):
        earlier, found = _earlier(entry)
        if earlier.size == size:
            proof = found
    return proof


def _check_trusted(
    trusted: Path,
    history: Path,
    head: Checkpoint,
    key: Ed25519PublicKey | None,
    check: LedgerCheck,
) -> None:
    try:
        saved = guarded(f"--trusted-checkpoint {trusted}", _saved_head, trusted)
    except Malformed as exc:
        check.malformed.append(f"log: --trusted-checkpoint {trusted} is unreadable ({exc})")
        return
    if key is not None and not verify_checkpoint(saved, key):
        check.problems.append(f"log: --trusted-checkpoint {trusted} is not signed by the key")
        return
    if saved.size == head.size:
        if saved.root != head.root:
            check.problems.append(
                f"log rewritten: your saved head of size {saved.size} has another root"
            )
        return
    try:
        proof = guarded("ledger/history.json", _proof_from, history, saved.size)
    except Malformed:
        proof = None  # history.json's own problems are reported by _check_history
    if proof is None:
        check.problems.append(
            f"log: the package has no consistency proof from your saved head of size {saved.size}"
        )
    elif not verify_consistency(saved.size, head.size, proof, saved.root, head.root):
        check.problems.append(
            f"log rewritten: your saved head of size {saved.size} is not consistent with the"
            f" package's head of size {head.size}"
        )
