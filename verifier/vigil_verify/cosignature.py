"""Witness cosignatures on checkpoints: C2SP tlog-cosignature, ``cosignature/v1`` with Ed25519.

A witness (https://c2sp.org/tlog-witness) that has checked a checkpoint consistent with every
earlier one it saw of the same log adds a signed-note signature line of its own
(https://c2sp.org/tlog-cosignature)::

    — <witness name> base64(key ID (4) ‖ timestamp (8, big-endian) ‖ Ed25519 signature (64))

key ID = SHA-256(<name> ‖ 0x0A ‖ 0x04 ‖ 32-byte public key)[:4] (0x04: cosignature/v1), and the
signature covers ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the whole checkpoint body
(every line up to and including the newline before the blank line; extension lines such as
Vigil's ``time`` line included). The timestamp is POSIX seconds, at most 2^63 - 1.

A witness's key is written as a signed-note verifier key ("vkey"):
``<name>+<key ID, 8 hex digits>+base64(0x04 ‖ public key)``. Vigil takes the keys it trusts from
configuration and ignores every signature line whose name and key ID match none of them, as
the specification requires. ``check_quorum`` tells, witness by witness, whether a checkpoint
carries a cosignature that verifies, and whether enough of them do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil_verify.checkpoint import parse_checkpoint
from vigil_verify.errors import VerifyError

__all__ = [
    "COSIGNATURE_V1",
    "Cosignature",
    "CosignatureError",
    "CosignatureStatus",
    "QuorumResult",
    "WitnessKey",
    "WitnessVerdict",
    "add_cosignatures",
    "check_cosignature",
    "check_quorum",
    "cosigned_message",
    "parse_cosignature",
    "parse_vkey",
    "verify_cosignature",
    "witness_key_id",
]

COSIGNATURE_V1 = 0x04  # signed-note signature type of an Ed25519 cosignature/v1 key
TIMESTAMP_MAX = 2**63 - 1
_HEADER = "cosignature/v1\n"
_SIG_PREFIX = "\u2014 "  # em dash and space
_KEY_ID_SIZE = 4
_TIMESTAMP_SIZE = 8
_SIGNATURE_SIZE = 64
_PUBLIC_SIZE = 32
_BLOB_SIZE = _KEY_ID_SIZE + _TIMESTAMP_SIZE + _SIGNATURE_SIZE


class CosignatureError(VerifyError, ValueError):
    """A witness key, a cosignature line or a quorum that is malformed; the message says how."""


def _valid_name(name: str) -> bool:
    """A signed-note key name: non-empty, no whitespace, no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def witness_key_id(name: str, public: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosignature/v1 key."""
    material = name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_V1]) + public
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


@dataclass(frozen=True)
class WitnessKey:
    """A witness's name and raw Ed25519 public key, as a verifier trusts them."""

    name: str
    public: bytes  # 32 bytes

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise CosignatureError(f"witness name {self.name!r}: non-empty, no spaces, no '+'")
        if len(self.public) != _PUBLIC_SIZE:
            raise CosignatureError(f"an Ed25519 public key is 32 bytes, got {len(self.public)}")

    @property
    def key_id(self) -> bytes:
        return witness_key_id(self.name, self.public)

    @property
    def vkey(self) -> str:
        """The signed-note verifier key: ``name+keyid+base64(0x04 ‖ key)``."""
        blob = base64.b64encode(bytes([COSIGNATURE_V1]) + self.public).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    def __str__(self) -> str:
        return self.vkey


def parse_vkey(vkey: str) -> WitnessKey:
    """A witness key from its vkey; raises CosignatureError naming what is wrong.

    Only cosignature/v1 keys (type 0x04) are witness keys: a log's own Ed25519 key (type 0x01)
    is refused, as is a key ID that does not match the name and key.
    """
    text = vkey.strip()
    name, sep1, rest = text.partition("+")
    key_id_hex, sep2, blob = rest.partition("+")
    if not (sep1 and sep2) or not _valid_name(name):
        raise CosignatureError(f"{text[:60]!r} is not a vkey (name+keyid+base64 key)")
    if len(key_id_hex) != 2 * _KEY_ID_SIZE:
        raise CosignatureError(f"the key ID of {name!r} must be 8 hex digits")
    try:
        key_id = bytes.fromhex(key_id_hex)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CosignatureError(f"the vkey of {name!r} is not hex key ID and base64 key") from exc
    if not raw or raw[0] != COSIGNATURE_V1:
        kind = f"0x{raw[0]:02x}" if raw else "nothing"
        raise CosignatureError(
            f"the vkey of {name!r} has type {kind}; a witness's cosignature/v1 key has type 0x04"
            " (0x01 is a log's own Ed25519 key)"
        )
    key = WitnessKey(name, raw[1:])
    if key.key_id != key_id:
        raise CosignatureError(f"the key ID {key_id_hex} of {name!r} does not match its key")
    return key


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signature covers: header, time line, the checkpoint body."""
    if not 0 <= timestamp <= TIMESTAMP_MAX:
        raise CosignatureError(f"timestamp {timestamp} is outside 0 .. 2^63-1")
    if not body.endswith("\n"):
        raise CosignatureError("a checkpoint body ends with a newline")
    return f"{_HEADER}time {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One cosignature line, decoded (not yet verified)."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    @property
    def line(self) -> str:
        blob = self.key_id + self.timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)


def parse_cosignature(line: str) -> Cosignature:
    """Decode ``— <name> <base64>``; raises CosignatureError if it cannot be a cosignature/v1."""
    text = line.rstrip("\n")
    if "\n" in text or not text.startswith(_SIG_PREFIX):
        raise CosignatureError(f"{text[:40]!r} is not one signature line starting with '— '")
    name, _, blob = text[len(_SIG_PREFIX) :].rpartition(" ")
    if not _valid_name(name):
        raise CosignatureError(f"signature line {text[:40]!r} has no valid key name")
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error as exc:
        raise CosignatureError(f"the signature of {name!r} is not base64") from exc
    if len(raw) != _BLOB_SIZE:
        raise CosignatureError(
            f"the signature of {name!r} is {len(raw)} bytes; a cosignature/v1 is {_BLOB_SIZE}"
        )
    timestamp = int.from_bytes(raw[4:12], "big")
    if timestamp > TIMESTAMP_MAX:
        raise CosignatureError(f"the cosignature of {name!r} has a timestamp beyond 2^63-1")
    return Cosignature(name, raw[:4], timestamp, raw[12:])


class CosignatureStatus(StrEnum):
    VERIFIED = "verified"  # a cosignature by this witness verifies over this checkpoint
    MISSING = "missing"  # no line with this witness's name and key ID
    INVALID = "invalid"  # a line claims to be this witness's but does not verify
    FUTURE = "future"  # it verifies, but is dated after the latest time allowed


@dataclass(frozen=True)
class WitnessVerdict:
    """What one trusted witness's cosignature on one checkpoint showed."""

    witness: str
    vkey: str
    status: CosignatureStatus
    timestamp: int | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status is CosignatureStatus.VERIFIED


def _verify(body: str, cosignature: Cosignature, key: WitnessKey) -> bool:
    try:
        message = cosigned_message(body, cosignature.timestamp)
        Ed25519PublicKey.from_public_bytes(key.public).verify(cosignature.signature, message)
    except (InvalidSignature, CosignatureError):
        return False
    return True


def check_cosignature(
    body: str, line: str | Cosignature, key: WitnessKey, *, latest: int | None = None
) -> WitnessVerdict:
    """Verify one cosignature line by ``key`` over checkpoint ``body``; never raises.

    ``latest``: POSIX seconds; a cosignature dated after it is refused (status FUTURE).
    """
    try:
        cosig = line if isinstance(line, Cosignature) else parse_cosignature(line)
    except CosignatureError as exc:
        return WitnessVerdict(key.name, key.vkey, CosignatureStatus.INVALID, None, str(exc))
    if cosig.name != key.name or cosig.key_id != key.key_id:
        return WitnessVerdict(
            key.name,
            key.vkey,
            CosignatureStatus.MISSING,
            None,
            f"the line is by {cosig.name!r} key {cosig.key_id.hex()}, not by this witness",
        )
    return _verdict(body, [cosig], key, latest)


def verify_cosignature(body: str, line: str | Cosignature, key: WitnessKey) -> bool:
    """True if ``line`` is a cosignature/v1 by ``key`` that verifies over ``body``."""
    return check_cosignature(body, line, key).ok


def _verdict(
    body: str, candidates: Sequence[Cosignature], key: WitnessKey, latest: int | None
) -> WitnessVerdict:
    """The verdict on the lines that carry this witness's name and key ID."""
    if not candidates:
        return WitnessVerdict(
            key.name, key.vkey, CosignatureStatus.MISSING, None, "no cosignature by this witness"
        )
    good = [c for c in candidates if _verify(body, c, key)]
    if not good:
        return WitnessVerdict(
            key.name,
            key.vkey,
            CosignatureStatus.INVALID,
            None,
            "a cosignature in this witness's name does not verify over this checkpoint"
            " (forged, altered, or made over another checkpoint)",
        )
    best = max(good, key=lambda c: c.timestamp)
    stamp = best.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if latest is not None and best.timestamp > latest:
        return WitnessVerdict(
            key.name,
            key.vkey,
            CosignatureStatus.FUTURE,
            best.timestamp,
            f"cosigned at {stamp}, after the latest time allowed",
        )
    return WitnessVerdict(
        key.name, key.vkey, CosignatureStatus.VERIFIED, best.timestamp, f"cosigned at {stamp}"
    )


class QuorumResult(NamedTuple):
    """``(ok, verdicts)``: whether at least the quorum of distinct trusted witnesses cosigned,
    and one verdict per trusted witness, in the order the keys were given."""

    ok: bool
    verdicts: tuple[WitnessVerdict, ...]

    @property
    def verified(self) -> int:
        return sum(1 for v in self.verdicts if v.ok)


def _unique(keys: Iterable[WitnessKey]) -> list[WitnessKey]:
    seen: dict[tuple[str, bytes], WitnessKey] = {}
    for key in keys:
        seen.setdefault((key.name, key.public), key)
    return list(seen.values())


def check_quorum(
    note: str,
    witness_keys: Iterable[WitnessKey | str],
    quorum: int | None = None,
    *,
    latest: int | None = None,
) -> QuorumResult:
    """Check a checkpoint note's cosignatures against the trusted witnesses' keys (objects or
    vkeys). ``quorum``: how many distinct witnesses must have cosigned (default: all of them).

    Lines from keys not in the list are ignored; a witness counts once however many lines it
    has. Raises CheckpointError for a note that is not a checkpoint, CosignatureError for a bad
    key or a quorum outside 1 .. number of keys; a bad cosignature is a verdict, never a raise.
    The log's own signature is not checked here (``vigil_verify.checkpoint.verify_checkpoint``).
    """
    keys = _unique(k if isinstance(k, WitnessKey) else parse_vkey(k) for k in witness_keys)
    needed = len(keys) if quorum is None else quorum
    if not keys or not 1 <= needed <= len(keys):
        raise CosignatureError(
            f"a quorum of {needed} out of {len(keys)} witness keys cannot be met or is empty"
        )
    checkpoint = parse_checkpoint(note)
    decoded: list[Cosignature] = []
    for sig in checkpoint.signatures:
        blob = sig.key_hash + sig.signature
        if len(blob) != _BLOB_SIZE:
            continue  # not a cosignature/v1 (the log's own signature, or another kind)
        timestamp = int.from_bytes(blob[4:12], "big")
        if timestamp <= TIMESTAMP_MAX:
            decoded.append(Cosignature(sig.name, sig.key_hash, timestamp, blob[12:]))
    verdicts = tuple(
        _verdict(
            checkpoint.body,
            [c for c in decoded if c.name == key.name and c.key_id == key.key_id],
            key,
            latest,
        )
        for key in keys
    )
    return QuorumResult(sum(1 for v in verdicts if v.ok) >= needed, verdicts)


def add_cosignatures(note: str, lines: Iterable[str]) -> str:
    """``note`` with each cosignature line appended that it does not already carry."""
    checkpoint = parse_checkpoint(note)
    text = note if note.endswith("\n") else note + "\n"
    present = {(s.name, s.key_hash + s.signature) for s in checkpoint.signatures}
    for line in lines:
        cosig = parse_cosignature(line)
        blob = cosig.key_id + cosig.timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + cosig.signature
        if (cosig.name, blob) not in present:
            present.add((cosig.name, blob))
            text += cosig.line
    return text
