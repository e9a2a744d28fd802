"""RFC 3161 time-stamp tokens read (not checked): a token is a CMS ContentInfo (RFC 5652)
holding SignedData whose encapsulated content is a DER TSTInfo (RFC 3161 §2.4.2): the stamped
message imprint, the TSA's time (genTime), serial number and the request's nonce.

``parse_token`` reads a token into ``TimestampToken`` (its TSTInfo, certificates and one
``SignerInfo``); ``ess_cert_hash`` reads the ESS signingCertificate(V2) attribute that names the
signer's certificate, and ``issuer_serial`` how a certificate is named by issuer and serial.
Each raises ``DerError`` naming what is malformed. ``vigil_verify.timestamp`` checks tokens.
Needs the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vigil_verify import der
from vigil_verify.der import DerError, Tlv

__all__ = [
    "ID_CONTENT_TYPE",
    "ID_CT_TST_INFO",
    "ID_MESSAGE_DIGEST",
    "ID_SIGNED_DATA",
    "ID_SIGNING_CERTIFICATE",
    "ID_SIGNING_CERTIFICATE_V2",
    "SHA1",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
    "Attribute",
    "IssuerSerial",
    "MessageImprint",
    "SignerInfo",
    "SubjectKeyId",
    "TimestampToken",
    "TstInfo",
    "ess_cert_hash",
    "issuer_serial",
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

MAX_ACCURACY_S = 86_400


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
    # RFC 3161 §2.4.2: millis and micros are 1..999; seconds is any INTEGER, but no clock is
    # accurate to worse than a day, and timedelta cannot hold what DER can encode.
    if not (0 <= seconds <= MAX_ACCURACY_S and 0 <= millis <= 999 and 0 <= micros <= 999):
        raise DerError(f"accuracy {seconds} s {millis} ms {micros} µs is out of range")
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
    checked; DerError naming what is malformed, and never any other error."""
    try:
        return _parse_token(token)
    except DerError:
        raise
    except Exception as err:  # hostile input: a failure the reader did not foresee
        raise DerError(f"unreadable token: {type(err).__name__}: {err}") from None


def _parse_token(token: bytes) -> TimestampToken:
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


def ess_cert_hash(signer: SignerInfo) -> tuple[str, bytes] | None:
    """RFC 3161 §2.4.1 / RFC 5816: the hash algorithm (OID) and certHash of the first
    certificate the ESS signingCertificateV2 attribute names (or, without it, the
    signingCertificate attribute: SHA-1); None if neither is present."""
    v2 = signer.attribute(ID_SIGNING_CERTIFICATE_V2)
    v1 = signer.attribute(ID_SIGNING_CERTIFICATE)
    if v2 is not None:
        first = _Fields(v2, "SigningCertificateV2").take(der.SEQUENCE, "certs").children()
        fields = _Fields(_first(first, "SigningCertificateV2 certs"), "ESSCertIDv2")
        algorithm_tlv = fields.optional(der.SEQUENCE)
        algorithm = _algorithm(algorithm_tlv, "ESSCertIDv2") if algorithm_tlv else SHA256
        return algorithm, der.as_octets(fields.take(der.OCTET_STRING, "certHash"))
    if v1 is not None:
        first = _Fields(v1, "SigningCertificate").take(der.SEQUENCE, "certs").children()
        fields = _Fields(_first(first, "SigningCertificate certs"), "ESSCertID")
        return SHA1, der.as_octets(fields.take(der.OCTET_STRING, "certHash"))
    return None


def _first(items: tuple[Tlv, ...], what: str) -> Tlv:
    if not items:
        raise DerError(f"{what} is empty")
    return items[0]


def issuer_serial(cert_der: bytes) -> IssuerSerial:
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
