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
Needs the standard library and ``cryptography`` only; the server's TSA client
(``integrity.tsa``) uses ``parse_token`` and ``check_timestamp`` from here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from vigil_verify import der
from vigil_verify.der import DerError, Tlv
from vigil_verify.errors import VerifyError

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

# Object identifiers.
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
ID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
SHA1 = "1.3.14.3.2.26"
SHA224 = "2.16.840.1.101.3.4.2.4"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
SHA512 = "2.16.840.1.101.3.4.2.3"

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    SHA1: hashes.SHA1,
    SHA224: hashes.SHA224,
    SHA256: hashes.SHA256,
    SHA384: hashes.SHA384,
    SHA512: hashes.SHA512,
}


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


# -- the token's structure --------------------------------------------------------------------


@dataclass(frozen=True)
class MessageImprint:
    hash_algorithm: str  # OID
    hashed_message: bytes


@dataclass(frozen=True)
class TstInfo:
    version: int
    policy: str  # OID
    imprint: MessageImprint
    serial: int
    gen_time: datetime  # UTC-aware
    accuracy: timedelta | None
    ordering: bool
    nonce: int | None


@dataclass(frozen=True)
class IssuerSerial:
    """A certificate named by its issuer (DER Name) and serial number."""

    issuer: bytes
    serial: int

    def __str__(self) -> str:
        return f"issuerAndSerialNumber (serial {self.serial:#x})"


@dataclass(frozen=True)
class SubjectKeyId:
    key_id: bytes

    def __str__(self) -> str:
        return f"subjectKeyIdentifier {self.key_id.hex()}"


@dataclass(frozen=True)
class Attribute:
    oid: str
    values: tuple[Tlv, ...]


@dataclass(frozen=True)
class SignerInfo:
    sid: IssuerSerial | SubjectKeyId
    digest_algorithm: str  # OID
    signed_attrs: bytes | None  # DER SET OF Attribute (tag 0x31): what the signature covers
    attributes: tuple[Attribute, ...]
    signature_algorithm: str  # OID
    signature: bytes

    def attribute(self, oid: str) -> Tlv | None:
        """The single value of signed attribute ``oid`` (None if absent); DerError if it occurs
        more than once or has other than one value."""
        found = [a for a in self.attributes if a.oid == oid]
        if not found:
            return None
        if len(found) > 1 or len(found[0].values) != 1:
            raise DerError(f"signed attribute {oid} must occur once with one value")
        return found[0].values[0]


@dataclass(frozen=True)
class TimestampToken:
    tst_info_der: bytes  # the eContent: what messageDigest hashes
    tst_info: TstInfo
    certificates: tuple[bytes, ...]  # DER X.509 certificates carried in SignedData
    signer: SignerInfo


class _Fields:
    """Walks the elements of a SEQUENCE in order, with OPTIONAL ones taken by tag."""

    def __init__(self, tlv: Tlv, what: str) -> None:
        self._items = tlv.expect(der.SEQUENCE, what).children()
        self._pos = 0
        self._what = what

    def take(self, tag: int, what: str) -> Tlv:
        if self._pos >= len(self._items):
            raise DerError(f"{self._what}: {what} missing")
        item = self._items[self._pos].expect(tag, f"{self._what} {what}")
        self._pos += 1
        return item

    def optional(self, tag: int) -> Tlv | None:
        if self._pos < len(self._items) and self._items[self._pos].tag == tag:
            self._pos += 1
            return self._items[self._pos - 1]
        return None

    def done(self) -> None:
        if self._pos != len(self._items):
            extra = self._items[self._pos]
            raise DerError(
                f"{self._what}: unexpected {der.tag_name(extra.tag)} at offset {extra.start}"
            )


def _single(items: tuple[Tlv, ...], what: str) -> Tlv:
    if len(items) != 1:
        raise DerError(f"{what}: expected one element, found {len(items)}")
    return items[0]


def _algorithm(tlv: Tlv, what: str) -> str:
    """The OID of an AlgorithmIdentifier (parameters ignored)."""
    items = tlv.expect(der.SEQUENCE, what).children()
    if not 1 <= len(items) <= 2:
        raise DerError(f"{what}: AlgorithmIdentifier with {len(items)} elements")
    return der.as_oid(items[0], f"{what} algorithm")


def _imprint(tlv: Tlv) -> MessageImprint:
    fields = _Fields(tlv, "messageImprint")
    algorithm = _algorithm(fields.take(der.SEQUENCE, "hashAlgorithm"), "messageImprint")
    hashed = der.as_octets(fields.take(der.OCTET_STRING, "hashedMessage"))
    fields.done()
    return MessageImprint(algorithm, hashed)


def _accuracy(tlv: Tlv) -> timedelta:
    """Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] IMPLICIT INTEGER OPTIONAL,
    micros [1] IMPLICIT INTEGER OPTIONAL }."""
    fields = _Fields(tlv, "accuracy")

    def part(tag: int, what: str) -> int:
        item = fields.optional(tag)
        return der.as_integer(item, f"accuracy {what}", tag=tag) if item else 0

    seconds = part(der.INTEGER, "seconds")
    millis = part(der.context_tag(0, constructed=False), "millis")
    micros = part(der.context_tag(1, constructed=False), "micros")
    fields.done()
    return timedelta(seconds=seconds, milliseconds=millis, microseconds=micros)


def parse_tst_info(tlv: Tlv) -> TstInfo:
    """RFC 3161 §2.4.2 TSTInfo; DerError naming what is malformed."""
    fields = _Fields(tlv, "TSTInfo")
    version = der.as_integer(fields.take(der.INTEGER, "version"))
    if version != 1:
        raise DerError(f"TSTInfo version {version}, expected 1")
    policy = der.as_oid(fields.take(der.OID, "policy"))
    imprint = _imprint(fields.take(der.SEQUENCE, "messageImprint"))
    serial = der.as_integer(fields.take(der.INTEGER, "serialNumber"))
    gen_time = der.as_generalized_time(fields.take(der.GENERALIZED_TIME, "genTime"))
    accuracy_tlv = fields.optional(der.SEQUENCE)
    ordering_tlv = fields.optional(der.BOOLEAN)
    nonce_tlv = fields.optional(der.INTEGER)
    fields.optional(der.context_tag(0))  # tsa GeneralName
    fields.optional(der.context_tag(1))  # extensions
    fields.done()
    return TstInfo(
        version=version,
        policy=policy,
        imprint=imprint,
        serial=serial,
        gen_time=gen_time,
        accuracy=_accuracy(accuracy_tlv) if accuracy_tlv else None,
        ordering=der.as_boolean(ordering_tlv) if ordering_tlv else False,
        nonce=der.as_integer(nonce_tlv, "nonce") if nonce_tlv else None,
    )


def _sid(tlv: Tlv) -> IssuerSerial | SubjectKeyId:
    if tlv.tag == der.context_tag(0, constructed=False):
        return SubjectKeyId(tlv.value)
    fields = _Fields(tlv, "SignerInfo sid")
    issuer = fields.take(der.SEQUENCE, "issuer")
    serial = der.as_integer(fields.take(der.INTEGER, "serialNumber"))
    fields.done()
    return IssuerSerial(issuer.encoded, serial)


def _attributes(tlv: Tlv) -> tuple[Attribute, ...]:
    attributes: list[Attribute] = []
    for item in tlv.children():
        fields = _Fields(item, "signed attribute")
        oid = der.as_oid(fields.take(der.OID, "attrType"))
        values = fields.take(der.SET, "attrValues").children()
        fields.done()
        attributes.append(Attribute(oid, values))
    return tuple(attributes)


def _signer_info(tlv: Tlv) -> SignerInfo:
    fields = _Fields(tlv, "SignerInfo")
    der.as_integer(fields.take(der.INTEGER, "version"))
    sid_tlv = fields.optional(der.SEQUENCE) or fields.take(
        der.context_tag(0, constructed=False), "sid"
    )
    digest_algorithm = _algorithm(fields.take(der.SEQUENCE, "digestAlgorithm"), "SignerInfo")
    attrs_tlv = fields.optional(der.context_tag(0))
    signature_algorithm = _algorithm(
        fields.take(der.SEQUENCE, "signatureAlgorithm"), "SignerInfo signature"
    )
    signature = der.as_octets(fields.take(der.OCTET_STRING, "signature"))
    fields.optional(der.context_tag(1))  # unsignedAttrs
    fields.done()
    return SignerInfo(
        sid=_sid(sid_tlv),
        digest_algorithm=digest_algorithm,
        # RFC 5652 §5.4: the signature covers the EXPLICIT SET OF tag, not the [0] IMPLICIT one.
        signed_attrs=bytes([der.SET]) + attrs_tlv.encoded[1:] if attrs_tlv else None,
        attributes=_attributes(attrs_tlv) if attrs_tlv else (),
        signature_algorithm=signature_algorithm,
        signature=signature,
    )


def parse_token(token: bytes) -> TimestampToken:
    """An RFC 3161 TimeStampToken (DER ContentInfo of SignedData of TSTInfo), read but not
    checked; DerError naming what is malformed."""
    content_info = _Fields(der.parse(token), "ContentInfo")
    content_type = der.as_oid(content_info.take(der.OID, "contentType"))
    if content_type != ID_SIGNED_DATA:
        raise DerError(f"ContentInfo holds {content_type}, not SignedData ({ID_SIGNED_DATA})")
    signed_data_tlv = _single(
        content_info.take(der.context_tag(0), "content").children(), "ContentInfo content"
    )
    content_info.done()

    signed_data = _Fields(signed_data_tlv, "SignedData")
    der.as_integer(signed_data.take(der.INTEGER, "version"))
    signed_data.take(der.SET, "digestAlgorithms")
    encap = _Fields(signed_data.take(der.SEQUENCE, "encapContentInfo"), "encapContentInfo")
    certificates = signed_data.optional(der.context_tag(0))
    signed_data.optional(der.context_tag(1))  # crls
    signer_infos = signed_data.take(der.SET, "signerInfos").children()
    signed_data.done()

    e_content_type = der.as_oid(encap.take(der.OID, "eContentType"))
    if e_content_type != ID_CT_TST_INFO:
        raise DerError(f"eContentType is {e_content_type}, not id-ct-TSTInfo ({ID_CT_TST_INFO})")
    e_content = _single(encap.take(der.context_tag(0), "eContent").children(), "eContent")
    e_content.expect(der.OCTET_STRING, "eContent")
    encap.done()
    tst_info = parse_tst_info(_single(e_content.inner(), "eContent TSTInfo"))

    if len(signer_infos) != 1:
        raise DerError(f"{len(signer_infos)} signerInfos: a time-stamp token has exactly one")
    return TimestampToken(
        tst_info_der=e_content.value,
        tst_info=tst_info,
        certificates=tuple(
            c.encoded for c in (certificates.children() if certificates else ()) if c.tag == 0x30
        ),
        signer=_signer_info(signer_infos[0]),
    )


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
    return TimestampCheck(True, None, parsed.tst_info.gen_time, signer)


def _subject(cert: x509.Certificate) -> str:
    """The subject (RFC 4514), which cryptography reads only when asked."""
    try:
        return cert.subject.rfc4514_string()
    except ValueError as err:
        raise _Rejected(Failure.NOT_A_TSA_CERT, f"its subject is unreadable: {err}") from None


def _name(cert: x509.Certificate, issuer: bool = False) -> str:
    """The subject (or issuer) for a message; the serial number where it is unreadable."""
    try:
        return (cert.issuer if issuer else cert.subject).rfc4514_string()
    except ValueError:
        return f"<unreadable name, serial {cert.serial_number}>"


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


def _issuer_serial(cert_der: bytes) -> IssuerSerial:
    """The issuer Name (exact DER) and serial of a DER certificate."""
    tbs = der.parse(cert_der).expect(der.SEQUENCE, "Certificate").children()[0]
    items = tbs.expect(der.SEQUENCE, "tbsCertificate").children()
    if items and items[0].tag == der.context_tag(0):
        items = items[1:]  # version
    if len(items) < 3:
        raise DerError("tbsCertificate too short")
    return IssuerSerial(
        items[2].expect(der.SEQUENCE, "issuer").encoded, der.as_integer(items[0], "serial")
    )


def _names(sid: IssuerSerial | SubjectKeyId, cert: x509.Certificate) -> bool:
    if isinstance(sid, SubjectKeyId):
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return False
        return ski.value.digest == sid.key_id
    return _issuer_serial(cert.public_bytes(Encoding.DER)) == sid


def _signer_certificate(
    token: TimestampToken, trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    candidates: list[x509.Certificate] = []
    for index, blob in enumerate(token.certificates):
        try:
            candidates.append(x509.load_der_x509_certificate(blob))
        except (ValueError, x509.InvalidVersion) as err:
            raise _Rejected(Failure.NOT_A_TOKEN, f"certificates[{index}]: {err}") from None
    for cert in (*candidates, *trusted):
        try:
            if _names(token.signer.sid, cert):
                return cert
        except (DerError, ValueError):
            continue
    raise _Rejected(
        Failure.SIGNER_NOT_FOUND,
        f"no certificate in the token or trusted_certs matches the SignerInfo's {token.signer.sid}",
    )


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
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise _Rejected(Failure.UNSUPPORTED_ALGORITHM, f"signer public key: {err}") from None
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
    except (InvalidSignature, ValueError) as err:
        raise _Rejected(
            Failure.SIGNATURE_INVALID,
            f"the signed attributes do not verify under {_name(cert)}'s key"
            + (f" ({err})" if str(err) else ""),
        ) from None


def _check_signing_certificate(signer: SignerInfo, cert: x509.Certificate) -> None:
    """RFC 3161 §2.4.1 / RFC 5816: ESS signingCertificate(V2) binds the signer certificate."""
    cert_der = cert.public_bytes(Encoding.DER)
    try:
        v2 = signer.attribute(ID_SIGNING_CERTIFICATE_V2)
        v1 = signer.attribute(ID_SIGNING_CERTIFICATE)
        if v2 is not None:
            first = _Fields(v2, "SigningCertificateV2").take(der.SEQUENCE, "certs").children()
            fields = _Fields(_first(first, "SigningCertificateV2 certs"), "ESSCertIDv2")
            algorithm_tlv = fields.optional(der.SEQUENCE)
            algorithm = _algorithm(algorithm_tlv, "ESSCertIDv2") if algorithm_tlv else SHA256
            stated = der.as_octets(fields.take(der.OCTET_STRING, "certHash"))
        elif v1 is not None:
            first = _Fields(v1, "SigningCertificate").take(der.SEQUENCE, "certs").children()
            fields = _Fields(_first(first, "SigningCertificate certs"), "ESSCertID")
            algorithm = SHA1
            stated = der.as_octets(fields.take(der.OCTET_STRING, "certHash"))
        else:
            raise _Rejected(
                Failure.SIGNING_CERT_MISMATCH, "neither signingCertificate nor V2 is present"
            )
    except DerError as err:
        raise _Rejected(Failure.NOT_A_TOKEN, str(err)) from None
    if _hash(algorithm, cert_der) != stated:
        raise _Rejected(
            Failure.SIGNING_CERT_MISMATCH,
            f"it names a certificate hashing to {stated.hex()}, not the signer {_name(cert)}",
        )


def _first(items: tuple[Tlv, ...], what: str) -> Tlv:
    if not items:
        raise DerError(f"{what} is empty")
    return items[0]


def _check_tsa_certificate(cert: x509.Certificate, gen_time: datetime) -> None:
    """RFC 3161 §2.3: extendedKeyUsage critical, with id-kp-timeStamping as its only purpose."""
    subject = _name(cert)
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise _Rejected(Failure.NOT_A_TSA_CERT, f"{subject} has no extendedKeyUsage") from None
    except ValueError as err:  # duplicate or unparsable extensions
        raise _Rejected(Failure.NOT_A_TSA_CERT, f"{subject}: {err}") from None
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING] or not eku.critical:
        raise _Rejected(
            Failure.NOT_A_TSA_CERT,
            f"{subject}'s extendedKeyUsage must be critical and timeStamping only",
        )
    if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
        raise _Rejected(
            Failure.CERT_NOT_VALID,
            f"{subject} is valid {cert.not_valid_before_utc.isoformat()} to "
            f"{cert.not_valid_after_utc.isoformat()}, genTime is {gen_time.isoformat()}",
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
