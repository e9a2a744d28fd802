"""Content Credentials (C2PA) an original carries from the device that recorded it.

A body camera that signs at capture embeds a C2PA manifest store in its MP4: a JUMBF box inside
a top-level ``uuid`` box (``C2PA_BOX``), whose claim binds the file's bytes (a BMFF hash) and is
signed with the device's X.509 certificate. At ingest Vigil reads it with ``c2pa-python`` (the
reference implementation, c2pa-rs) and judges it against the agency's trust list
(``VIGIL_C2PA_TRUST_ANCHORS``):

- **valid**: the claim signature, the bindings to the bytes and the certificate chain up to a
  configured trust anchor all check out;
- **untrusted**: the manifest is intact but its signer chains to no configured anchor (or no
  trust list is configured);
- **invalid**: it does not check out (the bytes it binds changed, a bad signature, a malformed or
  unreadable manifest store).

Whatever it finds, it never refuses footage: the caller records the finding and ingests on.

What it costs: the manifest store is found by walking the file's top-level ISO BMFF box headers
(a few seeks and reads of 16 bytes each, whatever the file's size); a file with none, or that is
no ISO BMFF (MPEG-TS, Matroska, AVI), costs that walk and nothing more and records nothing.
Only a file that carries a store is given to c2pa, which then hashes what the claim binds.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import c2pa
from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vigil_verify.errors import ErrorKind

from integrity.errors import ProofError

logger = logging.getLogger(__name__)

State = Literal["valid", "invalid", "untrusted"]
STATES: tuple[State, ...] = ("valid", "invalid", "untrusted")

C2PA_BOX = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
"""The extended type of the ``uuid`` box that holds a C2PA manifest store in ISO BMFF."""

MAX_BOXES = 10_000  # top-level boxes looked at before giving up (a real file has a handful)
MAX_STORE_BYTES = 64 << 20  # a manifest store larger than this is not read (malformed or hostile)


class CredentialsError(ProofError):
    """The C2PA configuration (the trust list) cannot be used; the message says why."""

    kind = ErrorKind.INVALID


_C2PA_STATE: dict[str, State] = {"Trusted": "valid", "Valid": "untrusted", "Invalid": "invalid"}


class CaptureCredentials(BaseModel):
    """The finding on an original's C2PA manifest: the detail of its ``original.c2pa`` custody
    event, so that the signed log proves what the manifest said and how it was judged."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    state: State
    signer: str | None  # the signing certificate's subject (RFC 4514), as the manifest gives it
    issuer: str | None  # its issuer
    claim_generator: str | None  # the software (device firmware) that wrote the claim
    manifest_sha256: str  # SHA-256 of the manifest store's bytes (the JUMBF in the C2PA box)
    manifest_size: int
    trust_list_sha256: str | None  # SHA-256 of the trust-anchor PEM file judged against
    failures: tuple[str, ...] = ()  # C2PA status codes that failed, or why it could not be read

    def describe(self) -> str:
        """ "signed at capture by CN=BC-0042, ...: valid" """
        who = f" by {self.signer}" if self.signer else ""
        why = f" ({', '.join(self.failures)})" if self.failures and self.state != "valid" else ""
        return f"signed at capture{who}: {self.state}{why}"

    @classmethod
    def parse(cls, detail: str | None) -> CaptureCredentials | None:
        """The finding recorded in an event's detail (None: none, or not one)."""
        if not detail:
            return None
        try:
            return cls.model_validate_json(detail)
        except ValidationError:
            return None


def _box_headers(fh: BinaryIO, size: int) -> tuple[int, int, bytes, bytes] | None:
    """The box at the file's position: (its start, its header's length, its size, its type and,
    for a ``uuid`` box, its extended type); None at the end or where no box can be."""
    start = fh.tell()
    head = fh.read(8)
    if len(head) < 8:
        return None
    length, kind = struct.unpack(">I4s", head)
    header = 8
    if length == 1:
        large = fh.read(8)
        if len(large) < 8:
            return None
        (length,) = struct.unpack(">Q", large)
        header = 16
    elif length == 0:
        length = size - start
    if length < header or start + length > size:
        return None
    extended = fh.read(16) if kind == b"uuid" else b""
    fh.seek(start + length)
    return header, length, kind, extended


def find_manifest_store(path: Path) -> bytes | None:
    """The C2PA manifest store (JUMBF) embedded in the ISO BMFF file ``path``, if it has one.

    Reads box headers only; None for a file that is no ISO BMFF or carries no C2PA box."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None
        fh.seek(0)
        for _ in range(MAX_BOXES):
            start = fh.tell()
            box = _box_headers(fh, size)
            if box is None:
                return None
            header, length, kind, extended = box
            if kind == b"uuid" and extended == C2PA_BOX:
                return _store_in_box(fh, start + header + 16, start + length)
    return None


def _store_in_box(fh: BinaryIO, body: int, end: int) -> bytes | None:
    """The manifest store in a C2PA box whose body (after the extended type) is at ``body``:
    a FullBox header, the purpose "manifest\\0", a 64-bit Merkle offset, then the store."""
    if end - body > MAX_STORE_BYTES + 64:
        return None
    fh.seek(body)
    data = fh.read(end - body)
    purpose_end = data.find(b"\0", 4)
    if purpose_end < 0 or data[4:purpose_end] != b"manifest":
        return None  # another purpose (a Merkle "merkle" box, an update), not the store
    return data[purpose_end + 1 + 8 :]


@dataclass(frozen=True)
class TrustList:
    """The trust anchors claim signers must chain to (PEM), and the list's own hash."""

    pem: str
    sha256: str

    @classmethod
    def load(cls, path: Path) -> TrustList:
        """Read and check the PEM file ``path``; a ``CredentialsError`` says what is wrong."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CredentialsError(f"C2PA trust anchors {path}: {exc.strerror or exc}") from exc
        try:
            anchors = x509.load_pem_x509_certificates(raw)
        except ValueError as exc:
            raise CredentialsError(
                f"C2PA trust anchors {path}: not a PEM file of X.509 certificates ({exc})"
            ) from exc
        if not anchors:
            raise CredentialsError(f"C2PA trust anchors {path}: no certificate in it")
        return cls(raw.decode("ascii", "replace"), hashlib.sha256(raw).hexdigest())


# -- what c2pa reports, as far as Vigil reads it ----------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Status(_Loose):
    code: str


class _Results(_Loose):
    failure: list[_Status] = Field(default_factory=list)


class _ValidationResults(_Loose):
    active: _Results | None = Field(None, alias="activeManifest")


class _Generator(_Loose):
    name: str
    version: str | None = None


class _SignatureInfo(_Loose):
    common_name: str | None = None
    issuer: str | None = None


class _Manifest(_Loose):
    claim_generator: str | None = None
    claim_generator_info: list[_Generator] = Field(default_factory=list)
    signature_info: _SignatureInfo | None = None


class _Store(_Loose):
    """``Reader.json()``: the manifests, the active one's label, the validation state."""

    active_manifest: str | None = None
    manifests: dict[str, _Manifest] = Field(default_factory=dict)
    validation_state: str | None = None
    validation_results: _ValidationResults | None = None


class _CertificateInfo(_Loose):
    subject: dict[str, str] = Field(default_factory=dict)
    issuer: dict[str, str] = Field(default_factory=dict)


class _CrSignature(_Loose):
    certificate: _CertificateInfo | None = Field(None, alias="certificateInfo")


class _CrManifest(_Loose):
    label: str | None = None
    signature: _CrSignature | None = None


class _CrStore(_Loose):
    """``Reader.crjson()``: the same store, with each signing certificate's subject and issuer."""

    manifests: list[_CrManifest] = Field(default_factory=list)


def _distinguished(name: dict[str, str]) -> str | None:
    """c2pa's {"C": "US", "O": ..., "CN": ...} (most significant first) as RFC 4514 writes it."""
    if not name:
        return None
    return ", ".join(f"{k}={v}" for k, v in reversed(name.items()))


def _generator(manifest: _Manifest) -> str | None:
    if manifest.claim_generator:
        return manifest.claim_generator
    for info in manifest.claim_generator_info:
        return f"{info.name}/{info.version}" if info.version else info.name
    return None


@dataclass(frozen=True)
class _Verdict:
    state: State
    signer: str | None
    issuer: str | None
    claim_generator: str | None
    failures: tuple[str, ...]


class CredentialsReader:
    """Reads the C2PA manifest an original carries and judges it against ``trust`` (None: no
    trust list configured, so that no signer can be more than *untrusted*)."""

    def __init__(self, trust: TrustList | None) -> None:
        self.trust = trust

    def read(self, path: Path) -> CaptureCredentials | None:
        """The finding on ``path``'s manifest; None when it carries none. Never raises for what
        the file holds: a manifest that cannot be read is *invalid*, with the reason."""
        store = find_manifest_store(path)
        if store is None:
            return None
        try:
            verdict = self._judge(path)
        except Exception as exc:  # c2pa's C2paError, or what it reports that is malformed
            logger.warning("%s: C2PA manifest unreadable (%s)", path.name, exc)
            reason = str(exc).replace(str(path), path.name)[:300]
            verdict = _Verdict("invalid", None, None, None, (f"unreadable: {reason}",))
        return CaptureCredentials(
            state=verdict.state,
            signer=verdict.signer,
            issuer=verdict.issuer,
            claim_generator=verdict.claim_generator,
            manifest_sha256=hashlib.sha256(store).hexdigest(),
            manifest_size=len(store),
            trust_list_sha256=self.trust.sha256 if self.trust is not None else None,
            failures=verdict.failures,
        )

    def _settings(self) -> c2pa.Settings:
        config: dict[str, object] = {"verify": {"verify_trust": True}}
        if self.trust is not None:
            config["trust"] = {"trust_anchors": self.trust.pem}
        return c2pa.Settings.from_dict(config)

    def _judge(self, path: Path) -> _Verdict:
        with (
            c2pa.Context(self._settings()) as context,
            path.open("rb") as fh,
            c2pa.Reader("video/mp4", fh, None, context) as reader,
        ):
            store = _Store.model_validate_json(reader.json())
            detailed = _CrStore.model_validate_json(reader.crjson())
        active = store.manifests.get(store.active_manifest or "")
        if active is None:
            raise CredentialsError("the manifest store has no active manifest")
        cert = next(
            (m.signature.certificate for m in detailed.manifests
             if m.label == store.active_manifest and m.signature and m.signature.certificate),
            None,
        )  # fmt: skip
        signer = _distinguished(cert.subject) if cert else None
        issuer = _distinguished(cert.issuer) if cert else None
        if signer is None and active.signature_info is not None:
            signer = active.signature_info.common_name
        results = store.validation_results.active if store.validation_results else None
        return _Verdict(
            _C2PA_STATE.get(store.validation_state or "", "invalid"),
            signer,
            issuer,
            _generator(active),
            tuple(s.code for s in results.failure) if results else (),
        )
