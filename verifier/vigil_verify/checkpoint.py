"""Signed tree heads ("checkpoints") of the custody ledger, as C2SP signed notes.

The text follows C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) inside a C2SP signed
note (https://c2sp.org/signed-note), the format of Go's ``golang.org/x/mod/sumdb/note`` and of
the Sigstore and Go checksum transparency logs, so other tools can read Vigil's checkpoints::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    time <UTC time the head was signed, RFC 3339>
    <blank line>
    — <key name> <base64(key hash (4 bytes) ‖ Ed25519 signature (64 bytes))>

The signature covers the body: every line up to and including the newline before the blank line.
The key hash is SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ raw Ed25519 public key)[:4] (0x01: Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from vigil_verify.errors import VerifyError

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "checkpoint_body",
    "key_fingerprint",
    "load_public_key",
    "note_key_hash",
    "parse_checkpoint",
    "verify_checkpoint",
]

_SIG_PREFIX = "\u2014 "  # em dash and space
_ED25519 = b"\x01"
_TIME_PREFIX = "time "


class CheckpointError(VerifyError, ValueError):
    """Text that is not a well-formed checkpoint note; the message names the problem."""


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes  # 4 bytes
    signature: bytes


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    signed_at: datetime | None
    body: str  # the signed text
    signatures: tuple[NoteSignature, ...]

    @property
    def text(self) -> str:
        lines = [
            f"{_SIG_PREFIX}{s.name} {_b64(s.key_hash + s.signature)}\n" for s in self.signatures
        ]
        return self.body + "\n" + "".join(lines)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checkpoint_body(origin: str, size: int, root: bytes, signed_at: datetime) -> str:
    """The text a tree head's signature covers."""
    if not origin or "+" in origin or any(c.isspace() for c in origin):
        # The origin is also the signed-note key name: no spaces, no '+'.
        raise CheckpointError(f"origin {origin!r} must be non-empty, without spaces or '+'")
    if len(root) != 32 or size < 0:
        raise CheckpointError("a tree head needs a 32-byte root and a size >= 0")
    return f"{origin}\n{size}\n{_b64(root)}\n{_TIME_PREFIX}{format_time(signed_at)}\n"


def note_key_hash(name: str, public_raw: bytes) -> bytes:
    """C2SP signed-note key hash of an Ed25519 key."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519 + public_raw).digest()[:4]


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw public key: what people compare to pin the key."""
    return hashlib.sha256(public_raw(key)).hexdigest()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"the ledger key must be Ed25519, got {type(key).__name__}")
    return key


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a signed checkpoint note; raises CheckpointError naming what is malformed."""
    try:
        text.encode("utf-8")  # what is signed is UTF-8: a lone surrogate cannot be
    except UnicodeEncodeError as exc:
        raise CheckpointError(f"not UTF-8 text ({exc.reason} at {exc.start})") from None
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointError("no blank line between the checkpoint and its signatures")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise CheckpointError("a checkpoint needs origin, size and root lines")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError(f"root {root_text!r} is not base64") from exc
    if len(root) != 32:
        raise CheckpointError(f"root is {len(root)} bytes, expected 32")
    signed_at = None
    for extension in lines[3:]:
        if extension.startswith(_TIME_PREFIX):
            try:
                signed_at = datetime.strptime(
                    extension[len(_TIME_PREFIX) :], "%Y-%m-%dT%H:%M:%S.%fZ"
                ).replace(tzinfo=UTC)
            except ValueError as exc:
                raise CheckpointError(f"bad time line {extension!r}") from exc
    signatures = _signatures(sigs)
    if not signatures:
        raise CheckpointError("the checkpoint is not signed")
    return Checkpoint(origin, int(size_text), root, signed_at, body, signatures)


def _signatures(text: str) -> tuple[NoteSignature, ...]:
    """The signature lines of a note (``— <name> <base64(key hash ‖ signature)>``)."""
    signatures: list[NoteSignature] = []
    for line in text.split("\n"):
        if not line:
            continue
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"signature line {line[:40]!r} does not start with '— '")
        name, _, blob = line[len(_SIG_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error as exc:
            raise CheckpointError(f"signature of {name!r} is not base64") from exc
        if len(raw) < 5:
            raise CheckpointError(f"signature of {name!r} is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return tuple(signatures)


def verify_checkpoint(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    """True if a signature by ``key`` under the checkpoint's origin verifies over its body."""
    raw = public_raw(key)
    expected = note_key_hash(checkpoint.origin, raw)
    for sig in checkpoint.signatures:
        if sig.name != checkpoint.origin or sig.key_hash != expected:
            continue
        try:
            key.verify(sig.signature, checkpoint.body.encode("utf-8"))
        except InvalidSignature:
            return False
        return True
    return False
