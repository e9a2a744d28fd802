"""A minimal ASN.1 DER reader and writer, enough for RFC 3161 time-stamp requests, responses and
tokens (RFC 5652 CMS SignedData), with no dependency beyond the standard library.

Reading is lazy and zero-copy: ``parse`` returns a ``Tlv`` (identifier octet and the offsets of
its header and contents inside the buffer it was read from); ``Tlv.children()`` reads one level of
a constructed value, with offsets still in that same buffer, so a caller can find where in a token
any field lies. Only DER is accepted: definite lengths in their shortest form, single-octet tags
(tag numbers up to 30), minimal INTEGERs, BOOLEANs of 0x00/0xFF, GeneralizedTime ending in Z.
Anything else raises ``DerError`` naming the problem and its offset; nothing recurses, so deep or
hostile nesting costs no stack.

The writer is a handful of functions returning the DER bytes of one value each (``sequence``,
``integer``, ``oid``, ...), composed by nesting calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vigil_verify.errors import VerifyError

__all__ = [
    "BIT_STRING",
    "BOOLEAN",
    "GENERALIZED_TIME",
    "INTEGER",
    "NULL",
    "OCTET_STRING",
    "OID",
    "SEQUENCE",
    "SET",
    "UTF8_STRING",
    "DerError",
    "Tlv",
    "as_bit_string",
    "as_boolean",
    "as_generalized_time",
    "as_integer",
    "as_null",
    "as_octets",
    "as_oid",
    "as_utf8",
    "bit_set",
    "bit_string",
    "boolean",
    "context_tag",
    "encode",
    "encode_length",
    "explicit",
    "generalized_time",
    "integer",
    "named_bits",
    "null",
    "octet_string",
    "oid",
    "parse",
    "parse_at",
    "sequence",
    "set_of",
    "tag_name",
    "utf8_string",
]

# Universal tags (identifier octets, constructed bit included where DER requires it).
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8_STRING = 0x0C
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31

_CONSTRUCTED = 0x20
_CONTEXT = 0x80
_HIGH_TAG = 0x1F
_MAX_LENGTH_OCTETS = 4  # contents up to 4 GiB: far beyond any token
_GENERALIZED_TIME = re.compile(rb"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d*[1-9]))?Z")


class DerError(VerifyError, ValueError):
    """Bytes that are not the DER encoding expected; the message names the problem and offset."""


def context_tag(number: int, *, constructed: bool = True) -> int:
    """The identifier octet of context-specific tag [number] (0..30)."""
    if not 0 <= number < _HIGH_TAG:
        raise ValueError(f"context tag number {number} outside 0..30")
    return _CONTEXT | (_CONSTRUCTED if constructed else 0) | number


def tag_name(tag: int) -> str:
    """A readable name for an identifier octet, for error messages."""
    names = {
        BOOLEAN: "BOOLEAN",
        INTEGER: "INTEGER",
        BIT_STRING: "BIT STRING",
        OCTET_STRING: "OCTET STRING",
        NULL: "NULL",
        OID: "OBJECT IDENTIFIER",
        UTF8_STRING: "UTF8String",
        GENERALIZED_TIME: "GeneralizedTime",
        SEQUENCE: "SEQUENCE",
        SET: "SET",
    }
    if tag in names:
        return names[tag]
    if tag & 0xC0 == _CONTEXT:
        return f"[{tag & 0x1F}]"
    return f"tag 0x{tag:02x}"


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tlv:
    """One DER element inside ``data``: identifier octet ``tag``, header at ``start``, contents
    ``data[content_start:end]``."""

    tag: int
    start: int
    content_start: int
    end: int
    data: bytes = field(repr=False, compare=False)

    @property
    def value(self) -> bytes:
        """The contents octets."""
        return self.data[self.content_start : self.end]

    @property
    def encoded(self) -> bytes:
        """The whole element: identifier, length and contents octets."""
        return self.data[self.start : self.end]

    @property
    def constructed(self) -> bool:
        return bool(self.tag & _CONSTRUCTED)

    def expect(self, tag: int, what: str) -> Tlv:
        """This element, if its tag is ``tag``; else DerError naming ``what`` was expected."""
        if self.tag != tag:
            raise DerError(
                f"{what}: expected {tag_name(tag)}, found {tag_name(self.tag)} at offset "
                f"{self.start}"
            )
        return self

    def children(self) -> tuple[Tlv, ...]:
        """The elements of a constructed value, in order (offsets in the same buffer)."""
        if not self.constructed:
            raise DerError(f"{tag_name(self.tag)} at offset {self.start} is not constructed")
        return _read_run(self.data, self.content_start, self.end)

    def inner(self) -> tuple[Tlv, ...]:
        """The elements encoded inside a primitive value (an OCTET STRING wrapping DER)."""
        return _read_run(self.data, self.content_start, self.end)


def parse(data: bytes) -> Tlv:
    """The one DER element ``data`` holds; DerError if it is malformed or anything follows it."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DerError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    tlv = parse_at(data, 0, len(data))
    if tlv.end != len(data):
        raise DerError(f"{len(data) - tlv.end} bytes after the element ending at {tlv.end}")
    return tlv


def parse_at(data: bytes, offset: int, limit: int | None = None) -> Tlv:
    """The DER element starting at ``offset``, which must end by ``limit`` (default: the end)."""
    end_limit = len(data) if limit is None else limit
    if offset >= end_limit:
        raise DerError(f"truncated: no element at offset {offset}")
    tag = data[offset]
    if tag & _HIGH_TAG == _HIGH_TAG:
        raise DerError(f"high tag number form at offset {offset} is not supported")
    pos = offset + 1
    if pos >= end_limit:
        raise DerError(f"truncated: no length octet at offset {pos}")
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError(f"indefinite length at offset {pos - 1} (BER, not DER)")
    else:
        count = first & 0x7F
        if count > _MAX_LENGTH_OCTETS:
            raise DerError(f"length of {count} octets at offset {pos - 1} is too large")
        if pos + count > end_limit:
            raise DerError(f"truncated: length octets at offset {pos} run past {end_limit}")
        octets = data[pos : pos + count]
        pos += count
        length = int.from_bytes(octets, "big")
        if octets[0] == 0 or length < 0x80:
            raise DerError(f"length at offset {offset + 1} is not in its shortest form")
    if pos + length > end_limit:
        raise DerError(
            f"truncated: {tag_name(tag)} at offset {offset} claims {length} content bytes, "
            f"{end_limit - pos} remain"
        )
    if not tag & _CONSTRUCTED and tag in (SEQUENCE & ~_CONSTRUCTED, SET & ~_CONSTRUCTED):
        raise DerError(f"SEQUENCE/SET at offset {offset} is not marked constructed")
    return Tlv(tag, offset, pos, pos + length, data)


def _read_run(data: bytes, start: int, end: int) -> tuple[Tlv, ...]:
    items: list[Tlv] = []
    pos = start
    while pos < end:
        tlv = parse_at(data, pos, end)
        items.append(tlv)
        pos = tlv.end
    return tuple(items)


def as_integer(tlv: Tlv, what: str = "INTEGER", *, tag: int = INTEGER) -> int:
    """The value of an INTEGER (two's complement, shortest form); ``tag`` for one carried under
    an IMPLICIT context tag."""
    value = tlv.expect(tag, what).value
    if not value:
        raise DerError(f"{what} at offset {tlv.start} is empty")
    if len(value) > 1 and (
        (value[0] == 0x00 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
    ):
        raise DerError(f"{what} at offset {tlv.start} is not in its shortest form")
    return int.from_bytes(value, "big", signed=True)


def as_boolean(tlv: Tlv, what: str = "BOOLEAN") -> bool:
    value = tlv.expect(BOOLEAN, what).value
    if value not in (b"\x00", b"\xff"):
        raise DerError(f"{what} at offset {tlv.start} is not 0x00 or 0xFF")
    return value == b"\xff"


def as_octets(tlv: Tlv, what: str = "OCTET STRING") -> bytes:
    return tlv.expect(OCTET_STRING, what).value


def as_null(tlv: Tlv, what: str = "NULL") -> None:
    if tlv.expect(NULL, what).value:
        raise DerError(f"{what} at offset {tlv.start} has contents")


def as_oid(tlv: Tlv, what: str = "OBJECT IDENTIFIER") -> str:
    """The dotted form of an OBJECT IDENTIFIER ("1.2.840.113549.1.7.2")."""
    value = tlv.expect(OID, what).value
    if not value:
        raise DerError(f"{what} at offset {tlv.start} is empty")
    arcs: list[int] = []
    current = 0
    fresh = True
    for octet in value:
        if fresh and octet == 0x80:
            raise DerError(f"{what} at offset {tlv.start} has a non-minimal arc")
        current = (current << 7) | (octet & 0x7F)
        fresh = not octet & 0x80
        if fresh:
            arcs.append(current)
            current = 0
    if not fresh:
        raise DerError(f"{what} at offset {tlv.start} ends inside an arc")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def as_bit_string(tlv: Tlv, what: str = "BIT STRING") -> tuple[bytes, int]:
    """(the bit octets, the count of unused bits in the last one)."""
    value = tlv.expect(BIT_STRING, what).value
    if not value or value[0] > 7 or (len(value) == 1 and value[0] != 0):
        raise DerError(f"{what} at offset {tlv.start} has a bad unused-bits octet")
    unused = value[0]
    if unused and value[-1] & ((1 << unused) - 1):
        raise DerError(f"{what} at offset {tlv.start} has unused bits set")
    return value[1:], unused


def bit_set(bits: bytes, number: int) -> bool:
    """Whether named bit ``number`` (0 = most significant bit of the first octet) is set."""
    index, shift = divmod(number, 8)
    return index < len(bits) and bool(bits[index] & (0x80 >> shift))


def as_utf8(tlv: Tlv, what: str = "UTF8String") -> str:
    try:
        return tlv.expect(UTF8_STRING, what).value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DerError(f"{what} at offset {tlv.start} is not UTF-8: {err}") from None


def as_generalized_time(tlv: Tlv, what: str = "GeneralizedTime") -> datetime:
    """A UTC-aware datetime (fractions of a second beyond microseconds are truncated)."""
    value = tlv.expect(GENERALIZED_TIME, what).value
    match = _GENERALIZED_TIME.fullmatch(value)
    if match is None:
        raise DerError(f"{what} at offset {tlv.start} is not YYYYMMDDHHMMSS[.f]Z: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or b""
    micros = int((fraction + b"000000")[:6])
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError as err:
        raise DerError(f"{what} at offset {tlv.start} is not a valid time: {err}") from None


# -- writing ------------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    if length < 0:
        raise ValueError(f"negative length {length}")
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode(tag: int, content: bytes) -> bytes:
    """One element: identifier octet ``tag``, DER length, ``content``."""
    if not 0 <= tag <= 0xFF or tag & _HIGH_TAG == _HIGH_TAG:
        raise ValueError(f"tag 0x{tag:x} is not a single-octet low tag")
    return bytes([tag]) + encode_length(len(content)) + content


def sequence(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))


def set_of(*items: bytes) -> bytes:
    """A SET OF, its elements in DER order (sorted by their encodings)."""
    return encode(SET, b"".join(sorted(items)))


def explicit(number: int, inner: bytes) -> bytes:
    """[number] EXPLICIT around one encoded element."""
    return encode(context_tag(number), inner)


def integer(value: int) -> bytes:
    length = (value + (value < 0)).bit_length() // 8 + 1
    return encode(INTEGER, value.to_bytes(length, "big", signed=True))


def boolean(value: bool) -> bytes:
    return encode(BOOLEAN, b"\xff" if value else b"\x00")


def null() -> bytes:
    return encode(NULL, b"")


def octet_string(value: bytes) -> bytes:
    return encode(OCTET_STRING, value)


def utf8_string(value: str) -> bytes:
    return encode(UTF8_STRING, value.encode("utf-8"))


def bit_string(bits: bytes, unused: int = 0) -> bytes:
    if not 0 <= unused <= 7 or (unused and not bits):
        raise ValueError(f"{unused} unused bits in a {len(bits)}-octet BIT STRING")
    return encode(BIT_STRING, bytes([unused]) + bits)


def named_bits(*numbers: int) -> bytes:
    """A DER BIT STRING with the named bits set (0 = most significant), trailing zeros dropped."""
    if not numbers:
        return bit_string(b"")
    size = max(numbers) // 8 + 1
    octets = bytearray(size)
    for number in numbers:
        octets[number // 8] |= 0x80 >> (number % 8)
    return bit_string(bytes(octets), 7 - max(numbers) % 8)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise ValueError(f"{dotted!r} is not an object identifier")
    body = bytearray()
    for arc in (40 * arcs[0] + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


def generalized_time(moment: datetime) -> bytes:
    """DER GeneralizedTime of an aware datetime, in UTC, fraction without trailing zeros."""
    if moment.tzinfo is None:
        raise ValueError("GeneralizedTime needs an aware datetime")
    utc = moment.astimezone(UTC)
    text = f"{utc.year:04d}{utc:%m%d%H%M%S}"
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return encode(GENERALIZED_TIME, (text + "Z").encode("ascii"))
