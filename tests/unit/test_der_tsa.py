"""The pure pieces of RFC 3161 timestamping: the DER reader and writer (vigil_verify.der), the
TimeStampReq Vigil sends (checked against the one ``openssl ts -query`` writes), and reading a
TimeStampResp, including refusals, without a TSA."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vigil_verify import der
from vigil_verify.der import DerError
from vigil_verify.timestamp import Failure, check_timestamp

from integrity.tsa import (
    PkiStatus,
    TimestampError,
    parse_response,
    request_timestamp,
    timestamp_from_response,
    timestamp_request,
)
from interfaces.devservices.base import free_port

DIGEST = hashlib.sha256(b"tree head 42").digest()
NONCE = 0x87758BD3B871A979  # high bit set: DER needs a leading zero octet


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("openssl is not on PATH")
    return found


# -- the DER writer and reader on known encodings -----------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        (0, "020100"),
        (127, "02017f"),
        (128, "02020080"),
        (256, "02020100"),
        (-1, "0201ff"),
        (-128, "020180"),
        (-129, "0202ff7f"),
        (NONCE, "02090087758bd3b871a979"),
    ],
)
def test_integer_encodings(value: int, encoding: str) -> None:
    assert der.integer(value).hex() == encoding
    assert der.as_integer(der.parse(bytes.fromhex(encoding))) == value


@pytest.mark.parametrize(
    ("dotted", "encoding"),
    [
        ("2.16.840.1.101.3.4.2.1", "0609608648016503040201"),  # id-sha256
        ("1.2.840.113549.1.7.2", "06092a864886f70d010702"),  # id-signedData
        ("2.999.3", "0603883703"),  # X.690 §8.19.5's example: first subidentifier 1079
        ("1.3.14.3.2.26", "06052b0e03021a"),  # id-sha1
    ],
)
def test_oid_encodings(dotted: str, encoding: str) -> None:
    assert der.oid(dotted).hex() == encoding
    assert der.as_oid(der.parse(bytes.fromhex(encoding))) == dotted


@pytest.mark.parametrize(
    ("size", "header"), [(0, "0400"), (127, "047f"), (128, "048180"), (300, "0482012c")]
)
def test_length_forms(size: int, header: str) -> None:
    encoded = der.octet_string(bytes(size))
    assert encoded[: len(header) // 2].hex() == header
    tlv = der.parse(encoded)
    assert (tlv.tag, tlv.value, tlv.content_start) == (
        der.OCTET_STRING,
        bytes(size),
        len(header) // 2,
    )


def test_children_keep_offsets_in_the_outer_buffer() -> None:
    inner = der.sequence(der.integer(5), der.boolean(True))
    encoded = der.sequence(der.null(), der.explicit(0, inner), der.utf8_string("é"))
    outer = der.parse(encoded)
    null, tagged, text = outer.children()
    der.as_null(null)
    assert text.start == len(encoded) - 4 and der.as_utf8(text) == "é"
    (seq,) = tagged.children()
    five, true = seq.children()
    assert encoded[five.start : five.end] == bytes.fromhex("020105")
    assert der.as_integer(five) == 5 and der.as_boolean(true) is True
    assert tagged.tag == der.context_tag(0) == 0xA0


def test_octet_string_wrapping_der_is_read_in_place() -> None:
    wrapped = der.sequence(der.integer(1))
    encoded = der.sequence(der.octet_string(wrapped))
    (octets,) = der.parse(encoded).children()
    (inner,) = octets.inner()
    assert inner.encoded == wrapped and inner.start == 4


def test_set_of_is_sorted_by_encoding() -> None:
    assert der.set_of(der.integer(2), der.integer(1)) == bytes.fromhex("3106020101020102")


def test_named_bits() -> None:
    assert der.named_bits(0).hex() == "03020780"  # badAlg
    assert der.named_bits(2, 25).hex() == "03050620000040"
    bits, unused = der.as_bit_string(der.parse(der.named_bits(2, 25)))
    assert unused == 6 and der.bit_set(bits, 2) and der.bit_set(bits, 25)
    assert not der.bit_set(bits, 0) and not der.bit_set(bits, 40)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"20260301120000Z", datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)),
        (b"20260301120000.5Z", datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        (b"20260301120000.1234567Z", datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_generalized_time(text: bytes, expected: datetime) -> None:
    assert der.as_generalized_time(der.parse(der.encode(der.GENERALIZED_TIME, text))) == expected
    if len(text) <= 22:
        assert der.generalized_time(expected) == der.encode(der.GENERALIZED_TIME, text)


@pytest.mark.parametrize(
    "text",
    [b"20260301120000", b"20260301120000.50Z", b"202603011200Z", b"20261301120000Z", b"x" * 15],
)
def test_generalized_time_rejects_non_der(text: bytes) -> None:
    with pytest.raises(DerError, match="GeneralizedTime"):
        der.as_generalized_time(der.parse(der.encode(der.GENERALIZED_TIME, text)))


# -- the reader's errors ------------------------------------------------------------------------


def test_every_truncation_is_an_error() -> None:
    encoded = timestamp_request(DIGEST, NONCE)
    for size in range(len(encoded)):
        with pytest.raises(DerError, match="truncated"):
            der.parse(encoded[:size])


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("3080020101 0000", "indefinite length"),
        ("048105" + "00" * 5, "shortest form"),
        ("04820005" + "00" * 5, "shortest form"),
        ("0485ffffffffff", "too large"),
        ("020100 00", "1 bytes after"),
        ("1f2200", "high tag number"),
        ("100100", "not marked constructed"),
    ],
)
def test_malformed_encodings(encoding: str, message: str) -> None:
    with pytest.raises(DerError, match=message):
        der.parse(bytes.fromhex(encoding.replace(" ", "")))


@pytest.mark.parametrize(
    ("encoding", "reader", "message"),
    [
        ("02020001", der.as_integer, "shortest form"),
        ("0202ff80", der.as_integer, "shortest form"),
        ("0200", der.as_integer, "empty"),
        ("010101", der.as_boolean, "0x00 or 0xFF"),
        ("06028001", der.as_oid, "non-minimal arc"),
        ("060181", der.as_oid, "ends inside an arc"),
        ("030207ff", der.as_bit_string, "unused bits set"),
        ("0c01ff", der.as_utf8, "not UTF-8"),
        ("0500", der.as_integer, "expected INTEGER, found NULL at offset 0"),
    ],
)
def test_malformed_values(encoding: str, reader: object, message: str) -> None:
    assert callable(reader)
    with pytest.raises(DerError, match=message):
        reader(der.parse(bytes.fromhex(encoding)))


def test_primitive_has_no_children() -> None:
    with pytest.raises(DerError, match="not constructed"):
        der.parse(der.integer(3)).children()


# -- the TimeStampReq ---------------------------------------------------------------------------


def test_request_is_what_openssl_writes_plus_our_nonce(tmp_path: Path) -> None:
    """``openssl ts -query -sha256 -cert -no_nonce`` writes the same request without the nonce."""
    openssl = _openssl()
    theirs = tmp_path / "openssl.tsq"
    subprocess.run(
        [openssl, "ts", "-query", "-digest", DIGEST.hex(), "-sha256", "-cert", "-no_nonce",
         "-out", str(theirs)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    ours = timestamp_request(DIGEST, NONCE)
    version, imprint, nonce, cert_req = der.parse(ours).children()
    assert der.as_integer(nonce) == NONCE
    assert der.sequence(version.encoded, imprint.encoded, cert_req.encoded) == theirs.read_bytes()


def test_openssl_reads_our_request(tmp_path: Path) -> None:
    openssl = _openssl()
    request = tmp_path / "vigil.tsq"
    request.write_bytes(timestamp_request(DIGEST, NONCE))
    shown = subprocess.run(
        [openssl, "ts", "-query", "-in", str(request), "-text"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    assert "Version: 1" in shown
    assert "Hash Algorithm: sha256" in shown
    assert f"Nonce: 0x{NONCE:X}" in shown
    assert "Certificate required: yes" in shown
    assert "Policy OID: unspecified" in shown
    assert DIGEST[:8].hex(" ") in shown.replace("-", " ")


@pytest.mark.parametrize(
    ("digest", "nonce", "message"),
    [(DIGEST[:31], 1, "32 bytes, got 31"), (DIGEST, -1, "nonce -1 is negative")],
)
def test_request_refuses_bad_input(digest: bytes, nonce: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        timestamp_request(digest, nonce)


# -- reading a TimeStampResp --------------------------------------------------------------------


def _response(status: int, *extra: bytes, token: bytes | None = None) -> bytes:
    status_info = der.sequence(der.integer(status), *extra)
    return der.sequence(status_info, *([token] if token is not None else []))


def test_rejection_names_status_failure_info_and_text() -> None:
    rejection = _response(
        PkiStatus.REJECTION,
        der.sequence(der.utf8_string("Message digest algorithm is not supported.")),
        der.named_bits(0),
    )
    answer = parse_response(rejection)
    assert answer.status == 2 and not answer.granted and answer.token is None
    assert answer.failure_info == ("badAlg",)
    with pytest.raises(TimestampError) as refused:
        timestamp_from_response(rejection, DIGEST, NONCE)
    message = str(refused.value)
    assert "status 2 (rejection)" in message
    assert "failure info badAlg" in message
    assert "Message digest algorithm is not supported." in message


def test_several_failure_bits_and_unknown_status() -> None:
    answer = parse_response(_response(7, der.named_bits(15, 25, 30)))
    assert answer.failure_info == ("unacceptedPolicy", "systemFailure", "bit 30")
    assert "status 7 (unknown)" in answer.describe()


def test_waiting_is_not_a_timestamp() -> None:
    with pytest.raises(TimestampError, match=r"status 3 \(waiting\)"):
        timestamp_from_response(_response(PkiStatus.WAITING), DIGEST, NONCE)


def test_granted_without_token() -> None:
    with pytest.raises(TimestampError, match="granted without a token"):
        timestamp_from_response(_response(PkiStatus.GRANTED), DIGEST, NONCE)


def test_granted_with_a_token_that_is_not_one() -> None:
    bogus = der.sequence(der.oid("1.2.840.113549.1.7.1"), der.explicit(0, der.octet_string(b"x")))
    with pytest.raises(TimestampError, match="not a timestamp token: ContentInfo holds"):
        timestamp_from_response(_response(PkiStatus.GRANTED, token=bogus), DIGEST, NONCE)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"<html>busy</html>", "not a TimeStampResp"),
        (b"", "not a TimeStampResp: truncated"),
        (der.sequence(), "1 or 2"),
        (der.sequence(der.sequence()), "PKIStatusInfo is empty"),
        (der.sequence(der.sequence(der.integer(0), der.null())), "unexpected NULL"),
    ],
)
def test_malformed_responses(response: bytes, message: str) -> None:
    with pytest.raises(TimestampError, match=message):
        parse_response(response)


# -- request_timestamp's own errors (no TSA needed) --------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://tsa.example/", "tsa.example"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(TimestampError, match="is not an http"):
        request_timestamp(url, DIGEST, timeout_s=1)


def test_unreachable_tsa_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/tsa"
    with pytest.raises(TimestampError, match=f"TSA {url} unreachable"):
        request_timestamp(url, DIGEST, timeout_s=2)


# -- check_timestamp on input that is no token at all -------------------------------------------


@pytest.mark.parametrize("token", [b"", b"\x00" * 10, b"garbage", der.sequence(), der.integer(1)])
def test_garbage_is_not_a_token(token: bytes) -> None:
    check = check_timestamp(token, DIGEST)
    assert not check.ok and check.failure is Failure.NOT_A_TOKEN
    assert check.problem is not None and check.problem.startswith("not a timestamp token: ")
    assert check.gen_time is None and check.signer is None


def test_digest_must_be_sha256_sized() -> None:
    check = check_timestamp(b"", DIGEST[:20])
    assert check.failure is Failure.BAD_DIGEST and check.problem is not None
    assert "got 20 bytes" in check.problem


def test_unreadable_trusted_certificate_is_named() -> None:
    check = check_timestamp(b"", DIGEST, [b"-----BEGIN CERTIFICATE-----\nnope\n"])
    assert check.failure is Failure.BAD_TRUSTED_CERT and check.problem is not None
    assert "trusted_certs[0]" in check.problem
