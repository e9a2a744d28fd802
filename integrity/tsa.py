"""RFC 3161 trusted timestamps from a Time-Stamp Authority, for signed tree heads of the custody
ledger.

A tree head's digest goes to the TSA as a DER TimeStampReq (HTTP POST, ``Content-Type:
application/timestamp-query``, RFC 3161 §3.4); the TSA answers a TimeStampResp
(``application/timestamp-reply``) holding, when granted, a TimeStampToken: a CMS SignedData over
a TSTInfo that binds the digest to the TSA's time. ``request_timestamp`` keeps the token only if
the status is granted (or grantedWithMods), the token stamps our digest and echoes our nonce, and
its signature verifies (``vigil_verify.timestamp.check_timestamp``, the same check an auditor
runs offline, with the trust anchors left to them).

DER reading and writing is ``vigil_verify.der``: the stand-alone verifier owns it, the server
depends on it, never the reverse.
"""

from __future__ import annotations

import enum
import http.client
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime

from vigil_verify import der
from vigil_verify.der import DerError, Tlv
from vigil_verify.timestamp import SHA256, check_timestamp, parse_token

from integrity.errors import ProofError

__all__ = [
    "MAX_RESPONSE_BYTES",
    "QUERY_CONTENT_TYPE",
    "REPLY_CONTENT_TYPE",
    "PkiStatus",
    "Timestamp",
    "TimestampError",
    "TimestampResponse",
    "parse_response",
    "request_timestamp",
    "timestamp_from_response",
    "timestamp_request",
]

QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
_REPLY_CONTENT_TYPES = (REPLY_CONTENT_TYPE, "application/timestamp-response")  # the latter: pre-RFC
MAX_RESPONSE_BYTES = 1 << 20
_NONCE_BITS = 64

# PKIFailureInfo named bits (RFC 3161 §2.4.2).
_FAILURE_INFO = {
    0: "badAlg",
    2: "badRequest",
    5: "badDataFormat",
    14: "timeNotAvailable",
    15: "unacceptedPolicy",
    16: "unacceptedExtension",
    17: "addInfoNotAvailable",
    25: "systemFailure",
}


class TimestampError(ProofError):
    """No usable timestamp: the TSA was unreachable, refused, or answered something unusable.
    The message names the TSA URL (where known) and the problem."""


class PkiStatus(enum.IntEnum):
    GRANTED = 0
    GRANTED_WITH_MODS = 1
    REJECTION = 2
    WAITING = 3
    REVOCATION_WARNING = 4
    REVOCATION_NOTIFICATION = 5


@dataclass(frozen=True)
class Timestamp:
    token: bytes  # DER TimeStampToken (a CMS ContentInfo)
    gen_time: datetime  # the TSA's time, UTC-aware
    tsa_serial: int  # the TSTInfo serialNumber, unique per TSA


@dataclass(frozen=True)
class TimestampResponse:
    """A TimeStampResp (RFC 3161 §2.4.2): PKIStatusInfo and, when granted, the token."""

    status: int
    status_text: tuple[str, ...]
    failure_info: tuple[str, ...]  # names of the PKIFailureInfo bits set ("badAlg", ...)
    token: bytes | None

    @property
    def granted(self) -> bool:
        return self.status in (PkiStatus.GRANTED, PkiStatus.GRANTED_WITH_MODS)

    def describe(self) -> str:
        """The status, failure info and status text, for messages."""
        try:
            name = PkiStatus(self.status).name.lower()
        except ValueError:
            name = "unknown"
        parts = [f"status {self.status} ({name})"]
        if self.failure_info:
            parts.append("failure info " + ", ".join(self.failure_info))
        if self.status_text:
            parts.append("text " + "; ".join(repr(t) for t in self.status_text))
        return ", ".join(parts)


def timestamp_request(digest: bytes, nonce: int) -> bytes:
    """DER TimeStampReq (RFC 3161 §2.4.1): version 1, messageImprint SHA-256 (parameters NULL,
    as OpenSSL writes them) over ``digest``, ``nonce``, certReq TRUE; no policy, no extensions."""
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ValueError(f"a SHA-256 digest is 32 bytes, got {len(digest)}")
    if nonce < 0:
        raise ValueError(f"nonce {nonce} is negative")
    return der.sequence(
        der.integer(1),
        der.sequence(der.sequence(der.oid(SHA256), der.null()), der.octet_string(digest)),
        der.integer(nonce),
        der.boolean(True),
    )


def parse_response(response: bytes) -> TimestampResponse:
    """Read a DER TimeStampResp; TimestampError naming what is malformed."""
    try:
        items = der.parse(response).expect(der.SEQUENCE, "TimeStampResp").children()
        if not 1 <= len(items) <= 2:
            raise DerError(f"TimeStampResp has {len(items)} elements, expected 1 or 2")
        status_info = items[0].expect(der.SEQUENCE, "PKIStatusInfo").children()
        if not status_info:
            raise DerError("PKIStatusInfo is empty")
        status = der.as_integer(status_info[0], "PKIStatus")
        text: tuple[str, ...] = ()
        failure: tuple[str, ...] = ()
        for item in status_info[1:]:
            if item.tag == der.SEQUENCE and not text:
                text = tuple(_free_text(t) for t in item.children())
            elif item.tag == der.BIT_STRING and not failure:
                failure = _failure_names(item)
            else:
                raise DerError(f"unexpected {der.tag_name(item.tag)} in PKIStatusInfo")
        token = items[1].expect(der.SEQUENCE, "timeStampToken").encoded if len(items) > 1 else None
    except DerError as err:
        raise TimestampError(f"not a TimeStampResp: {err}") from None
    return TimestampResponse(status, text, failure, token)


def _free_text(tlv: Tlv) -> str:
    return tlv.value.decode("utf-8", "replace")


def _failure_names(tlv: Tlv) -> tuple[str, ...]:
    bits, _ = der.as_bit_string(tlv, "PKIFailureInfo")
    return tuple(
        _FAILURE_INFO.get(number, f"bit {number}")
        for number in range(len(bits) * 8)
        if der.bit_set(bits, number)
    )


def timestamp_from_response(response: bytes, digest: bytes, nonce: int) -> Timestamp:
    """The timestamp in a TSA's DER TimeStampResp to a request for ``digest`` with ``nonce``;
    TimestampError unless it was granted with a token that stamps ``digest``, echoes ``nonce``
    and whose signature verifies."""
    answer = parse_response(response)
    if not answer.granted:
        raise TimestampError(f"timestamp refused: {answer.describe()}")
    if answer.token is None:
        raise TimestampError(f"timestamp granted without a token ({answer.describe()})")
    check = check_timestamp(answer.token, digest)
    if not check.ok:
        raise TimestampError(f"token does not check: {check.problem}")
    tst_info = parse_token(answer.token).tst_info  # parses: check_timestamp just did
    if tst_info.nonce != nonce:
        raise TimestampError(f"token carries nonce {tst_info.nonce}, the request sent {nonce}")
    return Timestamp(answer.token, tst_info.gen_time, tst_info.serial)


def request_timestamp(url: str, digest: bytes, *, timeout_s: float) -> Timestamp:
    """A timestamp for SHA-256 ``digest`` from the RFC 3161 TSA at ``url`` (http or https),
    with a fresh random nonce; TimestampError naming ``url`` and the problem otherwise."""
    nonce = secrets.randbits(_NONCE_BITS)
    request = timestamp_request(digest, nonce)
    response = _post(url, request, timeout_s)
    try:
        return timestamp_from_response(response, digest, nonce)
    except TimestampError as err:
        raise TimestampError(f"TSA {url}: {err}") from err


def _post(url: str, body: bytes, timeout_s: float) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TimestampError(f"TSA URL {url!r} is not an http(s) URL")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": QUERY_CONTENT_TYPE, "Accept": REPLY_CONTENT_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            content_type = reply.headers.get_content_type()
            data: bytes = reply.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as err:
        err.close()
        raise TimestampError(f"TSA {url} answered HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise TimestampError(f"TSA {url} unreachable: {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets, bad HTTP
        raise TimestampError(f"TSA {url} failed: {type(err).__name__}: {err}") from err
    if content_type not in _REPLY_CONTENT_TYPES:
        raise TimestampError(f"TSA {url} answered {content_type}, not {REPLY_CONTENT_TYPE}")
    if len(data) > MAX_RESPONSE_BYTES:
        raise TimestampError(f"TSA {url} answered more than {MAX_RESPONSE_BYTES} bytes")
    return data
