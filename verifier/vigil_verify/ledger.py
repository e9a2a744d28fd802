"""The log half of a package check: the signed tree head, every event's inclusion proof, every
earlier head's consistency proof, and the facts the proved events establish.

Only events whose inclusion proof verifies become *signed facts*; everything the footage check
trusts (an original's hash, each segment's hash, time, chain link and perceptual hashes, the
case's linked windows) comes from them, never from the manifest, which is only cross-checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
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
from vigil_verify.merkle import leaf_hash, verify_consistency, verify_inclusion
from vigil_verify.timestamp import check_timestamp

__all__ = ["LedgerCheck", "SignedEvent", "SignedSegment", "check_ledger"]


@dataclass(frozen=True)
class SignedEvent:
    position: int
    id: int
    action: str
    recording: str | None
    case: str | None
    reason: str | None
    detail: dict[str, object]


@dataclass(frozen=True)
class SignedSegment:
    index: int
    key: str
    sha256: str
    size: int
    start_s: float
    end_s: float
    origin_s: float
    previous: str
    chain: str
    event_id: int
    phash_sha256: str | None = None
    phash_rate: float | None = None

    @property
    def file_name(self) -> str:
        return self.key.rpartition("/")[2]


@dataclass
class SignedRecording:
    id: str
    original_sha256: str | None = None
    original_size: int | None = None
    anchor: str | None = None
    segments: dict[int, SignedSegment] = field(default_factory=dict)
    segment_count: int | None = None  # from the "segment" summary event
    windows: list[tuple[float | None, float | None]] = field(default_factory=list)
    unlinked: bool = False


@dataclass
class LedgerCheck:
    key_fingerprint: str | None = None
    key_source: str = "package"
    head: Checkpoint | None = None
    timestamp: str | None = None  # what the TSA check said, when there is a token
    events_total: int = 0
    events_proved: int = 0
    history_checked: int = 0
    problems: list[str] = field(default_factory=list)
    facts: dict[str, SignedRecording] = field(default_factory=dict)
    case: str | None = None

    def recording(self, recording_id: str) -> SignedRecording:
        return self.facts.setdefault(recording_id, SignedRecording(recording_id))


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _opt_num(value: object) -> float | None:
    return None if value is None else _num(value)


def _parse_event(position: int, raw: str) -> SignedEvent:
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("an event must be a JSON object")
    detail = document.get("detail") or {}
    if not isinstance(detail, dict):
        raise ValueError("an event's detail must be a JSON object")
    recording, case, reason = (
        document.get("recording"),
        document.get("case"),
        document.get("reason"),
    )
    return SignedEvent(
        position=position,
        id=_int(document.get("id")),
        action=_str(document.get("action")),
        recording=recording if isinstance(recording, str) else None,
        case=case if isinstance(case, str) else None,
        reason=reason if isinstance(reason, str) else None,
        detail=detail,
    )


def _apply(check: LedgerCheck, event: SignedEvent) -> None:
    """What a proved event establishes about the footage."""
    d = event.detail
    if event.recording is None:
        return
    rec = check.recording(event.recording)
    if event.action == "ingest" and "sha256" in d:
        rec.original_sha256 = _str(d["sha256"])
        rec.original_size = _int(d["size"])
        rec.anchor = rec.anchor or rec.original_sha256
    elif event.action == "ingest.live":
        rec.anchor = _str(d["anchor"])
    elif event.action == "original.stored":
        rec.original_sha256 = _str(d["sha256"])
        rec.original_size = _int(d["size"])
    elif event.action == "segment.stored":
        index = _int(d["index"])
        seg = SignedSegment(
            index=index,
            key=_str(d["key"]),
            sha256=_str(d["sha256"]),
            size=_int(d["size"]),
            start_s=_num(d["start_s"]),
            end_s=_num(d["end_s"]),
            origin_s=_num(d["origin_s"]),
            previous=_str(d["previous"]),
            chain=_str(d["chain"]),
            event_id=event.id,
        )
        known = rec.segments.get(index)
        if known is not None and known.sha256 != seg.sha256:
            check.problems.append(
                f"log: {rec.id} segment {index} is signed twice with different hashes"
                f" (events #{known.event_id} and #{event.id})"
            )
        rec.segments.setdefault(index, seg)
    elif event.action == "segment.hashed":
        index = _int(d["index"])
        stored = rec.segments.get(index)
        if stored is not None and stored.sha256 == d.get("segment_sha256"):
            rec.segments[index] = SignedSegment(
                **{
                    **stored.__dict__,
                    "phash_sha256": _str(d["phash_sha256"]),
                    "phash_rate": _num(d["rate"]),
                }
            )
    elif event.action == "segment" and "count" in d:
        rec.segment_count = _int(d["count"])
    elif event.action == "case.link" and event.case == check.case:
        rec.windows.append((_opt_num(d.get("from_s")), _opt_num(d.get("to_s"))))
        rec.unlinked = False
    elif event.action == "case.unlink" and event.case == check.case:
        rec.windows.clear()
        rec.unlinked = True


def _load_key(package: Path, pinned: Path | None, check: LedgerCheck) -> Ed25519PublicKey | None:
    packaged_path = package / "ledger" / "public-key.pem"
    try:
        packaged = load_public_key(packaged_path.read_bytes()) if packaged_path.exists() else None
    except CheckpointError as exc:
        check.problems.append(f"log: the package's public key is unusable: {exc}")
        packaged = None
    key = packaged
    if pinned is not None:
        key = load_public_key(pinned.read_bytes())
        check.key_source = f"pinned ({pinned})"
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


def _load_checkpoint_object(path: Path) -> tuple[str, bytes | None]:
    document = json.loads(path.read_text(encoding="utf-8"))
    note = _str(document["note"])
    token = document.get("timestamp_token")
    return note, base64.b64decode(token) if isinstance(token, str) else None


def check_ledger(
    package: Path,
    case: str | None,
    *,
    pinned_key: Path | None = None,
    trusted_checkpoint: Path | None = None,
) -> LedgerCheck:
    check = LedgerCheck(case=case)
    key = _load_key(package, pinned_key, check)
    folder = package / "ledger"
    try:
        note, token = _load_checkpoint_object(folder / "checkpoint.json")
        head = parse_checkpoint(note)
    except (OSError, ValueError, KeyError, CheckpointError) as exc:
        check.problems.append(f"log: no usable signed tree head (ledger/checkpoint.json: {exc})")
        return check
    check.head = head
    if key is not None and not verify_checkpoint(head, key):
        check.problems.append(
            f"log: the tree head's signature fails (size {head.size}): it was not signed by the"
            f" ledger key {check.key_fingerprint or ''}"
        )
    if token is not None:
        certs_path = folder / "tsa-certs.pem"
        trusted = [certs_path.read_bytes()] if certs_path.exists() else []
        stamp = check_timestamp(token, hashlib.sha256(note.encode()).digest(), trusted)
        if stamp.ok:
            check.timestamp = f"RFC 3161 timestamp OK: {stamp.gen_time} by {stamp.signer}"
        else:
            check.timestamp = f"RFC 3161 timestamp FAILS: {stamp.problem}"
            check.problems.append(f"log: the tree head's trusted timestamp fails: {stamp.problem}")
    _check_events(folder / "events.jsonl", head, check)
    _check_history(folder / "history.json", head, key, check)
    if trusted_checkpoint is not None:
        _check_trusted(trusted_checkpoint, folder / "history.json", head, key, check)
    return check


def _check_events(path: Path, head: Checkpoint, check: LedgerCheck) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        check.problems.append(f"log: no events ({exc})")
        return
    proved: list[SignedEvent] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        check.events_total += 1
        try:
            entry = json.loads(line)
            raw = _str(entry["event"])
            position = _int(entry["position"])
            proof = [bytes.fromhex(_str(p)) for p in entry["proof"]]
            event = _parse_event(position, raw)
        except (ValueError, KeyError, TypeError) as exc:
            check.problems.append(f"log: events.jsonl line {number} is malformed ({exc})")
            continue
        if not verify_inclusion(
            leaf_hash(raw.encode("utf-8")), position, head.size, proof, head.root
        ):
            check.problems.append(
                f"log: event #{event.id} ({event.action}"
                f"{' ' + event.recording if event.recording else ''}) fails its inclusion proof:"
                " the entry was altered or is not in the signed log"
            )
            continue
        proved.append(event)
    check.events_proved = len(proved)
    for event in sorted(proved, key=lambda e: e.position):
        try:
            _apply(check, event)
        except (ValueError, KeyError) as exc:
            check.problems.append(f"log: event #{event.id} ({event.action}) is malformed ({exc})")


def _check_history(
    path: Path, head: Checkpoint, key: Ed25519PublicKey | None, check: LedgerCheck
) -> None:
    if not path.exists():
        return
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        check.problems.append(f"log: history.json is malformed ({exc})")
        return
    for entry in entries if isinstance(entries, list) else []:
        try:
            earlier = parse_checkpoint(_str(entry["checkpoint"]["note"]))
            proof = [bytes.fromhex(_str(p)) for p in entry["consistency"]]
        except (ValueError, KeyError, TypeError, CheckpointError) as exc:
            check.problems.append(f"log: a history entry is malformed ({exc})")
            continue
        check.history_checked += 1
        when = earlier.signed_at.isoformat() if earlier.signed_at else "?"
        if key is not None and not verify_checkpoint(earlier, key):
            check.problems.append(
                f"log: the earlier head of size {earlier.size} (signed {when}) has a bad signature"
            )
            continue
        if not verify_consistency(earlier.size, head.size, proof, earlier.root, head.root):
            check.problems.append(
                f"log rewritten: the head of size {earlier.size} signed {when} is not consistent"
                f" with the package's head of size {head.size} (entries were removed or changed)"
            )


def _check_trusted(
    trusted: Path,
    history: Path,
    head: Checkpoint,
    key: Ed25519PublicKey | None,
    check: LedgerCheck,
) -> None:
    text = trusted.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("{"):
            text = _str(json.loads(text)["note"])
        saved = parse_checkpoint(text)
    except (ValueError, KeyError, CheckpointError) as exc:
        check.problems.append(f"log: --trusted-checkpoint {trusted} is unreadable ({exc})")
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
    proof: list[bytes] | None = None
    try:
        for entry in json.loads(history.read_text(encoding="utf-8")):
            if parse_checkpoint(entry["checkpoint"]["note"]).size == saved.size:
                proof = [bytes.fromhex(p) for p in entry["consistency"]]
    except (OSError, ValueError, KeyError, TypeError, CheckpointError, binascii.Error):
        proof = None
    if proof is None:
        check.problems.append(
            f"log: the package has no consistency proof from your saved head of size {saved.size}"
        )
    elif not verify_consistency(saved.size, head.size, proof, saved.root, head.root):
        check.problems.append(
            f"log rewritten: your saved head of size {saved.size} is not consistent with the"
            f" package's head of size {head.size}"
        )
