"""A private C2PA test PKI made at test time, and a "device" that signs footage with it.

A root CA signs end-entity certificates with what the C2PA certificate profile (and c2pa-rs,
which enforces it) requires of a claim signer: X.509 v3, an ECDSA P-256 key (ES256), key usage
digitalSignature (critical), an extended key usage C2PA accepts (emailProtection, which c2pa-rs's
default EKU list includes) and never anyExtendedKeyUsage, not a CA, subject and authority key
identifiers. The root goes into a PEM file: the trust list ``VIGIL_C2PA_TRUST_ANCHORS`` names.

Shared by the ingest-side tests (a body camera signing at capture) and, later, the export side
(the agency's key signing clips).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.now(UTC)


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates (and CRLs); a claim signer only signs (digitalSignature)."""
    flags = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    return x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **flags)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class SigningIdentity:
    """An end-entity certificate (with its chain up to, not including, the root) and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain_pem: bytes  # the end-entity certificate first, then any intermediates

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


@dataclass(frozen=True)
class TestCA:
    """A root CA made now; ``issue`` gives a claim signer's certificate."""

    __test__ = False  # not a pytest test class

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, name: str = "Vigil Test Root CA") -> TestCA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name, "Vigil Tests")
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    def write_trust_anchors(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path

    def issue(self, common_name: str, organisation: str = "Vigil Test Devices") -> SigningIdentity:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organisation))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return SigningIdentity(cert, key, _pem(cert))


def device_manifest(device: str, generator: str = "AcmeCam BC-3/2.1") -> dict[str, object]:
    """The manifest a body camera writes at capture: created by a camera, nothing edited."""
    return {
        "claim_generator_info": [{"name": generator.split("/")[0], "version": "2.1"}],
        "title": f"{device} capture",
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
                            "softwareAgent": {"name": generator},
                        }
                    ]
                },
            }
        ],
    }


def sign_mp4(source: Path, dest: Path, identity: SigningIdentity, device: str) -> bytes:
    """Sign ``source`` (an MP4) into ``dest`` as ``device`` would at capture; return the
    manifest store's bytes as c2pa wrote them."""
    info = c2pa.C2paSignerInfo(
        alg=c2pa.C2paSigningAlg.ES256,
        sign_cert=identity.chain_pem,
        private_key=identity.key_pem,
        ta_url=None,
    )
    with (
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(json.dumps(device_manifest(device))) as builder,
        source.open("rb") as src,
        dest.open("w+b") as out,
    ):
        return bytes(builder.sign(signer, "video/mp4", src, out))
