"""The custody ledger's keys: the Ed25519 signing key that only the ledger service holds, and
its public half (``VerifyingKey``) that every process checks signed heads with."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from vigil_verify.checkpoint import (
    CheckpointError,
    key_fingerprint,
    load_public_key,
    note_key_hash,
)

from integrity.errors import SigningKeyError

# -- signing key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyingKey:
    """The ledger's public key and name: what every process needs to check signed heads."""

    name: str
    public: Ed25519PublicKey

    @property
    def public_pem(self) -> bytes:
        return self.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public)


def load_verifying_key(path: Path, name: str) -> VerifyingKey:
    """The ledger's public key from a PEM file (``vigil ledger keygen`` writes ``*.pub.pem``)."""
    try:
        key = load_public_key(path.read_bytes())
    except (OSError, CheckpointError) as exc:
        raise SigningKeyError(f"cannot read the ledger public key {path}: {exc}") from exc
    return VerifyingKey(name, key)


@dataclass(frozen=True)
class SigningKey:
    """The ledger's Ed25519 key and the name (checkpoint origin) it signs under."""

    name: str
    private: Ed25519PrivateKey

    @property
    def verifying(self) -> VerifyingKey:
        return VerifyingKey(self.name, self.private.public_key())

    @property
    def public_pem(self) -> bytes:
        return self.verifying.public_pem

    @property
    def fingerprint(self) -> str:
        return self.verifying.fingerprint

    def signature_line(self, body: str) -> str:
        """One C2SP signed-note signature line over ``body``."""
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        signature = self.private.sign(body.encode("utf-8"))
        blob = base64.b64encode(note_key_hash(self.name, raw) + signature).decode("ascii")
        return f"\u2014 {self.name} {blob}\n"

    def sign(self, body: str, *, also: Sequence[SigningKey] = ()) -> str:
        """The signed note: body, blank line, its signature line, then one per key in ``also``
        (a key rotation's handover checkpoint carries the old key's signature too)."""
        lines = [self.signature_line(body), *(key.signature_line(body) for key in also)]
        return f"{body}\n{''.join(lines)}"


def load_signing_key(path: Path, name: str) -> SigningKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise SigningKeyError(f"cannot read the ledger signing key {path}: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}; the ledger signs with Ed25519")
    return SigningKey(name, key)


def create_signing_key(path: Path, name: str) -> SigningKey:
    """Generate a key into ``path`` (mode 0600), never overwriting one that exists.

    The file appears whole or not at all (written aside, then hard-linked into place), so a
    process that loses the race to create it (``FileExistsError``) can read the winner's.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name_tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    tmp = Path(name_tmp)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # atomic; FileExistsError if another process made one first
    finally:
        tmp.unlink(missing_ok=True)
    return SigningKey(name, key)
