"""Content Credentials (C2PA) on exported clips: the manifest each clip carries, signed with the
agency's X.509 key (``VIGIL_C2PA_SIGN_CERT``, ``VIGIL_C2PA_SIGN_KEY``).

A clip's manifest says what was done and what it came from, in terms every C2PA tool reads:

- ``c2pa.actions``: ``c2pa.opened`` (the original recording), ``c2pa.trimmed`` (to the window,
  times in its parameters) and, when the start fell between keyframes, ``c2pa.transcoded``;
- an ingredient, ``parentOf``: the original, named by its SHA-256 as the signed log records it
  (and, when the original carried a manifest of its own, that manifest with it);
- ``org.vigil.evidence`` (an entity-specific label, reverse domain name as the C2PA
  specification asks of assertions it does not define): the recording, the window, the SHA-256
  of each segment the clip covers and the signed tree head (size, root hash) that proves them,
  so that ``vigil-verify`` can hold the manifest against the log.

The manifest is signed by c2pa-python (c2pa-rs), which embeds it in the MP4 and binds it to the
file's bytes; the certificate must meet the C2PA certificate profile (docs/c2pa.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import BaseModel, ConfigDict
from vigil_verify.errors import ErrorKind

from integrity.credentials import CredentialsError, find_manifest_store

EVIDENCE_LABEL = "org.vigil.evidence"
GENERATOR = "Vigil"
GENERATOR_VERSION = "0.1.0"
_BMFF_TYPES = {".mov": "video/quicktime", ".m4a": "audio/mp4", ".m4v": "video/mp4"}
_MEDIA_TYPES = {
    **_BMFF_TYPES,
    ".ts": "video/mp2t",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}


class ClipSigningError(CredentialsError):
    """The agency's C2PA signing certificate or key cannot be used; the message says why."""

    kind = ErrorKind.INVALID


class SegmentHash(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    index: int
    sha256: str


class CheckpointRef(BaseModel):
    """The signed tree head that proves the segments: its size and root hash (hex)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    origin: str
    size: int
    root: str


class EvidenceAssertion(BaseModel):
    """The ``org.vigil.evidence`` assertion of a clip."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    recording: str
    case: str
    from_s: float
    to_s: float
    method: str  # "copy" or "h264"
    original_sha256: str | None
    segments: tuple[SegmentHash, ...]
    checkpoint: CheckpointRef | None


@dataclass(frozen=True)
class ClipSource:
    """What a clip's manifest says it came from."""

    recording_id: str
    original_name: str
    original_sha256: str | None
    original_path: Path | None  # the original, when the package holds it (its manifest is
    # then carried along in the ingredient, if it has one)


def _trimmed(evidence: EvidenceAssertion) -> str:
    how = ", packets copied as recorded" if evidence.method == "copy" else ""
    return f"cut to {evidence.from_s:.3f}-{evidence.to_s:.3f} s of the recording{how}"


def _actions(evidence: EvidenceAssertion) -> list[dict[str, object]]:
    window = {"from_s": evidence.from_s, "to_s": evidence.to_s}
    actions: list[dict[str, object]] = [
        {
            "action": "c2pa.opened",
            "parameters": {
                "description": "the original recording",
                "ingredientIds": [_instance_id(evidence.recording)],
            },
        },
        {
            "action": "c2pa.trimmed",
            "parameters": {
                "description": _trimmed(evidence),
                **window,
            },
        },
    ]
    if evidence.method != "copy":
        actions.append(
            {
                "action": "c2pa.transcoded",
                "parameters": {
                    "description": "re-encoded whole (H.264): the window starts between keyframes",
                    **window,
                },
            }
        )
    return actions


def _instance_id(recording_id: str) -> str:
    return f"vigil:recording:{recording_id}"


def ingredient_definition(source: ClipSource) -> dict[str, object]:
    """The original as the clip's ``parentOf`` ingredient, named by its signed SHA-256."""
    ingredient: dict[str, object] = {
        "title": source.original_name,
        "format": _MEDIA_TYPES.get(Path(source.original_name).suffix.lower(), "video/mp4"),
        "relationship": "parentOf",
        "instance_id": _instance_id(source.recording_id),
    }
    if source.original_sha256:  # c2pa keeps an ingredient's description (not a document_id)
        ingredient["description"] = (
            f"the original recording {source.recording_id}, SHA-256 {source.original_sha256}"
            " as the signed custody log records it"
        )
    return ingredient


def manifest_definition(
    title: str, source: ClipSource, evidence: EvidenceAssertion, *, with_ingredient: bool = True
) -> dict[str, object]:
    """The manifest definition c2pa's ``Builder`` signs for a clip (a pure function);
    ``with_ingredient`` False when the ingredient is added from the original's own file."""
    return {
        "claim_generator_info": [{"name": GENERATOR, "version": GENERATOR_VERSION}],
        "title": title,
        "format": "video/mp4",
        "ingredients": [ingredient_definition(source)] if with_ingredient else [],
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": _actions(evidence)}},
            {"label": EVIDENCE_LABEL, "kind": "Json", "data": evidence.model_dump(mode="json")},
        ],
    }


def _algorithm(cert: x509.Certificate) -> c2pa.C2paSigningAlg:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        name = by_curve.get(key.curve.name)
        if name is None:
            raise ClipSigningError(f"C2PA signing certificate: curve {key.curve.name} unsupported")
        return getattr(c2pa.C2paSigningAlg, name)
    if isinstance(key, rsa.RSAPublicKey):
        return c2pa.C2paSigningAlg.PS256
    if isinstance(key, ed25519.Ed25519PublicKey):
        return c2pa.C2paSigningAlg.ED25519
    raise ClipSigningError("C2PA signing certificate: its key type is not one C2PA signs with")


class ClipSigner:
    """The agency's C2PA signing identity: a certificate chain (PEM, the signer first) and its
    private key (PEM), read and checked when made."""

    def __init__(self, chain_pem: bytes, key_pem: bytes, *, ta_url: str | None = None) -> None:
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError as exc:
            raise ClipSigningError(f"C2PA signing certificate: not PEM X.509 ({exc})") from exc
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ClipSigningError(f"C2PA signing key: not an unencrypted PEM key ({exc})") from exc
        if not chain:
            raise ClipSigningError("C2PA signing certificate: the file holds no certificate")
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ClipSigningError("C2PA signing key does not match the signing certificate")
        self.algorithm = _algorithm(chain[0])
        self.subject = chain[0].subject.rfc4514_string()
        self._chain_pem = chain_pem
        self._key_pem = key_pem
        self._ta_url = ta_url

    @classmethod
    def load(cls, cert: Path, key: Path) -> ClipSigner:
        """Read the certificate chain and key files; a ``ClipSigningError`` says what is wrong."""
        try:
            return cls(cert.read_bytes(), key.read_bytes())
        except OSError as exc:
            raise ClipSigningError(
                f"C2PA signing files {cert}, {key}: {exc.strerror or exc}"
            ) from exc

    def sign(
        self, unsigned: Path, dest: Path, source: ClipSource, evidence: EvidenceAssertion
    ) -> str:
        """Write ``unsigned`` (an MP4) with its signed manifest to ``dest``; the SHA-256 of the
        manifest store embedded in it."""
        info = c2pa.C2paSignerInfo(
            alg=self.algorithm,
            sign_cert=self._chain_pem,
            private_key=self._key_pem,
            ta_url=self._ta_url,
        )
        original = source.original_path
        carried = original is not None and find_manifest_store(original) is not None
        definition = json.dumps(
            manifest_definition(dest.name, source, evidence, with_ingredient=not carried)
        )
        try:
            with (
                c2pa.Signer.from_info(info) as signer,
                c2pa.Builder(definition) as builder,
                unsigned.open("rb") as src,
                dest.open("w+b") as out,
            ):
                if carried and original is not None:
                    with original.open("rb") as fh:  # its manifest comes with it
                        kind = _BMFF_TYPES.get(original.suffix.lower(), "video/mp4")
                        builder.add_ingredient(json.dumps(ingredient_definition(source)), kind, fh)
                builder.sign(signer, "video/mp4", src, out)
        except c2pa.C2paError as exc:
            raise ClipSigningError(f"C2PA signing of {dest.name} failed: {exc}") from exc
        store = find_manifest_store(dest)
        if store is None:
            raise ClipSigningError(f"C2PA signing of {dest.name} embedded no manifest store")
        return hashlib.sha256(store).hexdigest()
