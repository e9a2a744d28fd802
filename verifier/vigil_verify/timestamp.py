"""RFC 3161 time-stamp tokens: reading one, and checking it stamps a given SHA-256 digest.

A token is a CMS ContentInfo (RFC 5652) holding SignedData whose encapsulated content is a DER
TSTInfo (RFC 3161 §2.4.2): the stamped message imprint, the TSA's time (genTime), serial number
and the request's nonce. ``check_timestamp`` verifies, in this order, and reports the first
failure (``TimestampCheck.failure`` and a ``problem`` naming it):

1. the bytes are a well-formed token with exactly one signer (``Failure.NOT_A_TOKEN``);
2. the imprint is SHA-256 of the caller's digest (``IMPRINT_ALGORITHM``, ``IMPRINT_MISMATCH``);
3. the signed attributes name id-ct-TSTInfo and their messageDigest is the hash of the TSTInfo
   bytes (``CONTENT_TYPE_MISMATCH``, ``MESSAGE_DIGEST_MISMATCH``);
4. the signer certificate (from the token, or among the trusted ones) signed the DER of the
   signed attributes, RSA PKCS#1 v1.5, ECDSA or Ed25519 (``SIGNER_NOT_FOUND``,
   ``UNSUPPORTED_ALGORITHM``, ``SIGNATURE_INVALID``);
5. the ESS signingCertificate(V2) attribute names that certificate (``SIGNING_CERT_MISMATCH``),
   which is a time-stamping certificate (critical extendedKeyUsage timeStamping only,
   ``NOT_A_TSA_CERT``) valid at genTime (``CERT_NOT_VALID``);
6. with ``trusted_certs``, the signer certificate is one of them or was issued directly by one
   (``UNTRUSTED_SIGNER``, ``BAD_TRUSTED_CERT``). Chains through intermediates are not built.

Nothing here raises on malformed input: ``check_timestamp`` returns ok=False with the problem.
``cryptography`` reads much of a certificate only when asked (its names, extensions, key,
validity), and a malformed one fails then with whatever error its parser raises (a ``TypeError``
for a name attribute of the wrong ASN.1 type): every such access goes through ``_read``, which
turns any failure into a rejection naming the field, and whatever still escapes a check is
reported as ``NOT_A_TOKEN``.
Reading a token (``parse_token``, the token's structure) is ``vigil_verify.timestamp_token``,
re-exported here. Needs the standard library and ``cryptography`` only; the server's TSA client
(``integrity.tsa``) uses ``parse_token`` and ``check_timestamp`` from here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from vigil_verify import der
from vigil_verify.der import DerError
from vigil_verify.errors import VerifyError
from vigil_verify.timestamp_token import (
    ID_CONTENT_TYPE,
    ID_CT_TST_INFO,
    ID_MESSAGE_DIGEST,
    ID_SIGNED_DATA,
    SHA1,
    SHA224,
    SHA256,
    SHA384,
    SHA512,
    Attribute,
    IssuerSerial,
    MessageImprint,
    SignerInfo,
    SubjectKeyId,
    TimestampToken,
    TstInfo,
    ess_cert_hash,
    issuer_serial,
    parse_token,
    parse_tst_info,
)
from vigil_verify.untrusted import describe

__all__ = [
    "ID_CT_TST_INFO",
    "ID_SIGNED_DATA",
    "SHA256",
    "Attribute",
    "Failure",
    "IssuerSerial",
    "MessageImprint",
    "SignerInfo",
    "SubjectKeyId",
    "TimestampCheck",
    "TimestampToken",
    "TstInfo",
    "check_timestamp",
    "parse_token",
    "parse_tst_info",
]

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    SHA1: hashes.SHA1,
    SHA224: hashes.SHA224,
    SHA256: hashes.SHA256,
    SHA384: hashes.SHA384,
    SHA512: hashes.SHA512,
}


T = TypeVar("T")


class _Key(enum.Enum):
    RSA = "RSA"
    ECDSA = "ECDSA"
    ED25519 = "Ed25519"


# signatureAlgorithm → (key type, hash OID; None: the SignerInfo's digestAlgorithm).
_SIGNATURE_ALGORITHMS: dict[str, tuple[_Key, str | None]] = {
    "1.2.840.113549.1.1.1": (_Key.RSA, None),  # rsaEncryption
    "1.2.840.113549.1.1.5": (_Key.RSA, SHA1),
    "1.2.840.113549.1.1.14": (_Key.RSA, SHA224),
    "1.2.840.113549.1.1.11": (_Key.RSA, SHA256),
    "1.2.840.113549.1.1.12": (_Key.RSA, SHA384),
    "1.2.840.113549.1.1.13": (_Key.RSA, SHA512),
    "1.2.840.10045.2.1": (_Key.ECDSA, None),  # id-ecPublicKey
    "1.2.840.10045.4.1": (_Key.ECDSA, SHA1),
    "1.2.840.10045.4.3.1": (_Key.ECDSA, SHA224),
    "1.2.840.10045.4.3.2": (_Key.ECDSA, SHA256),
    "1.2.840.10045.4.3.3": (_Key.ECDSA, SHA384),
    "1.2.840.10045.4.3.4": (_Key.ECDSA, SHA512),
    "1.3.101.112": (_Key.ED25519, None),
}


# -- checking -----------------------------------------------------------------------------------


class Failure(enum.StrEnum):
    """What a failed check found; the start of ``TimestampCheck.problem``."""

    BAD_DIGEST = "digest is not a SHA-256 digest"
    NOT_A_TOKEN = "not a timestamp token"
    IMPRINT_ALGORITHM = "imprint is not SHA-256"
    IMPRINT_MISMATCH = "imprint mismatch"
    CONTENT_TYPE_MISMATCH = "contentType attribute mismatch"
    MESSAGE_DIGEST_MISMATCH = "messageDigest attribute mismatch"
    SIGNER_NOT_FOUND = "signer certificate not found"
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    SIGNATURE_INVALID = "signature invalid"
    SIGNING_CERT_MISMATCH = "signingCertificate attribute mismatch"
    NOT_A_TSA_CERT = "signer certificate is not a time-stamping certificate"
    CERT_NOT_VALID = "signer certificate not valid at genTime"
    BAD_TRUSTED_CERT = "trusted certificate unreadable"
    UNTRUSTED_SIGNER = "signer not issued by a trusted certificate"


@dataclass(frozen=True)
class TimestampCheck:
    ok: bool
    problem: str | None  # "<failure>: <detail>" when not ok
    gen_time: datetime | None  # the TSA's time, when ok
    signer: str | None  # the signer certificate's subject (RFC 4514), when ok
    failure: Failure | None = None


class _Rejected(VerifyError):
    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure


def check_timestamp(
    token: bytes, digest: bytes, trusted_certs: Sequence[bytes] = ()
) -> TimestampCheck:
    """Whether ``token`` is a valid RFC 3161 token over SHA-256 ``digest``, signed by a
    time-stamping certificate, and (given ``trusted_certs``, PEM or DER) one that is, or was
    issued directly by, a trusted certificate. Never raises on malformed input."""
    try:
        trusted = _load_trusted(trusted_certs)
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise _Rejected(Failure.BAD_DIGEST, f"expected 32 bytes, got {_describe(digest)}")
        try:
            parsed = parse_token(token)
        except DerError as err:
            raise _Rejected(Failure.NOT_A_TOKEN, str(err)) from None
        _check_imprint(parsed.tst_info.imprint, digest)
        _check_content_attributes(parsed)
        cert = _signer_certificate(parsed, trusted)
        _check_signature(parsed.signer, cert)
        _check_signing_certificate(parsed.signer, cert)
        _check_tsa_certificate(cert, parsed.tst_info.gen_time)
        if trusted:
            _check_trusted(cert, trusted)
        signer = _subject(cert)
    except _Rejected as rejected:
        return TimestampCheck(False, str(rejected), None, None, rejected.failure)
    except Exception as exc:  # hostile input: whatever a parser raises is a rejection
        problem = f"{Failure.NOT_A_TOKEN}: {describe(exc)}"
        return TimestampCheck(False, problem, None, None, Failure.NOT_A_TOKEN)
    return TimestampCheck(True, None, parsed.tst_info.gen_time, signer)


def _read(what: str, failure: Failure, read: Callable[[], T]) -> T:
    """``read()``, a lazily parsed part of a certificate; any failure rejects the token as
    ``failure``, naming ``what``."""
    try:
        return read()
    except _Rejected:
        raise
    except Exception as err:  # cryptography parses on access, and may raise anything
        raise _Rejected(failure, f"{what} is unreadable: {describe(err)}") from None


def _subject(cert: x509.Certificate) -> str:
    """The subject (RFC 4514), which cryptography reads only when asked."""
    return _read("its subject", Failure.NOT_A_TSA_CERT, lambda: cert.subject.rfc4514_string())


def _name(cert: x509.Certificate, issuer: bool = False) -> str:
    """The subject (or issuer) for a message; the serial number where it is unreadable."""
    try:
        return (cert.issuer if issuer else cert.subject).rfc4514_string()
    except Exception:  # a message must never fail: fall back to what was read eagerly
        try:
            return f"<unreadable name, serial {cert.serial_number}>"
        except Exception:
            return "<unreadable certificate>"


def _describe(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__


def _load_trusted(blobs: Sequence[bytes]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for index, blob in enumerate(blobs):
        try:
            if b"-----BEGIN" in blob:
                certs.extend(x509.load_pem_x509_certificates(blob))
            else:
                certs.append(x509.load_der_x509_certificate(blob))
        except (ValueError, TypeError, x509.InvalidVersion) as err:
            raise _Rejected(Failure.BAD_TRUSTED_CERT, f"trusted_certs[{index}]: {err}") from None
    return certs


def _check_imprint(imprint: MessageImprint, digest: bytes) -> None:
    if imprint.hash_algorithm != SHA256:
        raise _Rejected(Failure.IMPRINT_ALGORITHM, f"token's imprint uses {imprint.hash_algorithm}")
    if imprint.hashed_message != digest:
        raise _Rejected(
            Failure.IMPRINT_MISMATCH,
            f"token stamps {imprint.hashed_message.hex()}, expected {digest.hex()}",
        )


def _hash(algorithm: str, data: bytes) -> bytes:
    factory = _HASHES.get(algorithm)
    if factory is None:
        raise _Rejected(Failure.UNSUPPORTED_ALGORITHM, f"digest algorithm {algorithm}")
    hasher = hashes.Hash(factory())
    hasher.update(data)
    return hasher.finalize()


def _check_content_attributes(token: TimestampToken) -> None:
    signer = token.signer
    if signer.signed_attrs is None:
        raise _Rejected(Failure.NOT_A_TOKEN, "SignerInfo has no signed attributes")
    try:
        content_type = signer.attribute(ID_CONTENT_TYPE)
        message_digest = signer.attribute(ID_MESSAGE_DIGEST)
        if content_type is None or message_digest is None:
            raise DerError("signed attributes lack contentType or messageDigest")
        content_oid = der.as_oid(content_type, "contentType attribute")
        stated = der.as_octets(message_digest, "messageDigest attribute")
    except DerError as err:
        raise _Rejected(Failure.NOT_A_TOKEN, str(err)) from None
    if content_oid != ID_CT_TST_INFO:
        raise _Rejected(Failure.CONTENT_TYPE_MISMATCH, f"{content_oid}, not id-ct-TSTInfo")
    actual = _hash(signer.digest_algorithm, token.tst_info_der)
    if stated != actual:
        raise _Rejected(
            Failure.MESSAGE_DIGEST_MISMATCH,
            f"signed {stated.hex()}, TSTInfo hashes to {actual.hex()}",
        )


def _names(sid: IssuerSerial | SubjectKeyId, cert: x509.Certificate) -> bool:
    """Whether ``sid`` names ``cert``; False when the part it names by cannot be read."""
    try:
        if isinstance(sid, SubjectKeyId):
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            return ski.value.digest == sid.key_id
        return issuer_serial(cert.public_bytes(Encoding.DER)) == sid
    except Exception:  # x509.ExtensionNotFound, or a part cryptography cannot parse
        return False


def _signer_certificate(
    token: TimestampToken, trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    candidates: list[x509.Certificate] = []
    for index, blob in enumerate(token.certificates):
        candidates.append(
            _read(
                f"certificates[{index}]",
                Failure.NOT_A_TOKEN,
                partial(x509.load_der_x509_certificate, blob),
            )
        )
    for cert in (*candidates, *trusted):
        if _names(token.signer.sid, cert):
            return _readable(cert)
    raise _Rejected(
        Failure.SIGNER_NOT_FOUND,
        f"no certificate in the token or trusted_certs matches the SignerInfo's {token.signer.sid}",
    )


def _readable(cert: x509.Certificate) -> x509.Certificate:
    """``cert``, once every part the checks read has been parsed: a signer certificate that
    ``cryptography`` cannot read in full makes the token malformed (``NOT_A_TOKEN``)."""
    parts: dict[str, Callable[[], object]] = {
        "subject": lambda: cert.subject.rfc4514_string(),
        "issuer": lambda: cert.issuer.rfc4514_string(),
        "extensions": lambda: list(cert.extensions),
        "validity": lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc),
        "serial number": lambda: cert.serial_number,
    }
    for part, read in parts.items():
        _read(f"the signer certificate's {part}", Failure.NOT_A_TOKEN, read)
    return cert


def _check_signature(signer: SignerInfo, cert: x509.Certificate) -> None:
    if signer.signed_attrs is None:  # _check_content_attributes requires them
        raise _Rejected(Failure.NOT_A_TOKEN, "SignerInfo has no signed attributes")
    entry = _SIGNATURE_ALGORITHMS.get(signer.signature_algorithm)
    if entry is None:
        raise _Rejected(
            Failure.UNSUPPORTED_ALGORITHM, f"signature algorithm {signer.signature_algorithm}"
        )
    kind, hash_oid = entry
    digest_algorithm = hash_oid or signer.digest_algorithm
    factory = _HASHES.get(digest_algorithm)
    if factory is None:
        raise _Rejected(Failure.UNSUPPORTED_ALGORITHM, f"digest algorithm {digest_algorithm}")
    key = _read("the signer's public key", Failure.UNSUPPORTED_ALGORITHM, lambda: cert.public_key())
    data = signer.signed_attrs
    try:
        if kind is _Key.RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(signer.signature, data, padding.PKCS1v15(), factory())
        elif kind is _Key.ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer.signature, data, ec.ECDSA(factory()))
        elif kind is _Key.ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signer.signature, data)
        else:
            raise _Rejected(
                Failure.SIGNATURE_INVALID,
                f"{kind.value} signature algorithm, but the signer key is {type(key).__name__}",
            )
    except (InvalidSignature, ValueError, TypeError) as err:
        raise _Rejected(
            Failure.SIGNATURE_INVALID,
            f"the signed attributes do not verify under {_name(cert)}'s key"
            + (f" ({err})" if str(err) else ""),
        ) from None


def _check_signing_certificate(signer: SignerInfo, cert: x509.Certificate) -> None:
    """RFC 3161 §2.4.1 / RFC 5816: ESS signingCertificate(V2) binds the signer certificate."""
    cert_der = _read(
        "the signer certificate", Failure.NOT_A_TOKEN, lambda: cert.public_bytes(Encoding.DER)
    )
    try:
        named = ess_cert_hash(signer)
    except DerError as err:
        raise _Rejected(Failure.NOT_A_TOKEN, str(err)) from None
    if named is None:
        raise _Rejected(
            Failure.SIGNING_CERT_MISMATCH, "neither signingCertificate nor V2 is present"
        )
    algorithm, stated = named
    if _hash(algorithm, cert_der) != stated:
        raise _Rejected(
            Failure.SIGNING_CERT_MISMATCH,
            f"it names a certificate hashing to {stated.hex()}, not the signer {_name(cert)}",
        )


def _check_tsa_certificate(cert: x509.Certificate, gen_time: datetime) -> None:
    """RFC 3161 §2.3: extendedKeyUsage critical, with id-kp-timeStamping as its only purpose."""
    subject = _name(cert)
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise _Rejected(Failure.NOT_A_TSA_CERT, f"{subject} has no extendedKeyUsage") from None
    except Exception as err:  # duplicate or unparsable extensions
        raise _Rejected(Failure.NOT_A_TSA_CERT, f"{subject}: {describe(err)}") from None
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING] or not eku.critical:
        raise _Rejected(
            Failure.NOT_A_TSA_CERT,
            f"{subject}'s extendedKeyUsage must be critical and timeStamping only",
        )
    begins, ends = _read(
        f"{subject}'s validity",
        Failure.CERT_NOT_VALID,
        lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc),
    )
    if not begins <= gen_time <= ends:
        raise _Rejected(
            Failure.CERT_NOT_VALID,
            f"{subject} is valid {begins.isoformat()} to {ends.isoformat()},"
            f" genTime is {gen_time.isoformat()}",
        )


def _check_trusted(cert: x509.Certificate, trusted: Sequence[x509.Certificate]) -> None:
    for anchor in trusted:
        if anchor == cert:
            return
        try:
            cert.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return
    raise _Rejected(
        Failure.UNTRUSTED_SIGNER,
        f"{_name(cert)} (issuer {_name(cert, issuer=True)}) is not among "
        f"the {len(trusted)} trusted certificates nor issued by one",
    )
