"""RFC 3161 timestamps from a real TSA (``openssl ts -reply`` on loopback, tests/services/tsa.py):
``integrity.tsa.request_timestamp`` gets one, ``vigil_verify.timestamp.check_timestamp`` checks it,
``openssl ts -verify`` agrees, and every tampering is reported as what it is."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from vigil_verify import der
from vigil_verify.der import Tlv
from vigil_verify.timestamp import Failure, TimestampCheck, check_timestamp, parse_token

from integrity.tsa import (
    Timestamp,
    TimestampError,
    parse_response,
    request_timestamp,
    timestamp_from_response,
    timestamp_request,
)
from tests.services.tsa import TsaService

pytestmark = pytest.mark.services

TREE_HEAD = b"vigil.example/custody\n42\nq1Ww3N0N0Yq2q9B2hE0u5o5v3O4s8mJfZ1o2x3c4v5b=\n"
DIGEST = hashlib.sha256(TREE_HEAD).digest()
OTHER_DIGEST = hashlib.sha256(TREE_HEAD + b"x").digest()
SIGNERS = {"RSA": "url", "ECDSA": "ec_url"}
SIGNING_TIME = "1.2.840.113549.1.9.5"
UTC_TIME = 0x17


@dataclass(frozen=True)
class Parts:
    """Where a token's fields lie (offsets in the token)."""

    tst_info: Tlv
    nonce: Tlv
    signed_attrs: Tlv
    signature: Tlv
    certificates: tuple[Tlv, ...]


def _parts(token: bytes) -> Parts:
    _, content = der.parse(token).children()
    (signed_data,) = content.children()
    items = signed_data.children()
    (_, e_content) = items[2].children()
    (octets,) = e_content.children()
    (tst_info,) = octets.inner()
    nonce = next(f for f in tst_info.children()[5:] if f.tag == der.INTEGER)
    (signer_info,) = items[-1].children()
    fields = signer_info.children()
    signed_attrs = next(f for f in fields if f.tag == der.context_tag(0))
    signature = next(f for f in reversed(fields) if f.tag == der.OCTET_STRING)
    certificates = items[3].children() if items[3].tag == der.context_tag(0) else ()
    return Parts(tst_info, nonce, signed_attrs, signature, certificates)


def _flip(token: bytes, offset: int, mask: int = 0x01) -> bytes:
    changed = bytearray(token)
    changed[offset] ^= mask
    return bytes(changed)


def _foreign_ca() -> bytes:
    """A self-signed CA certificate that issued nothing in the TSA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Vigil Test TSA Root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM)


def _failed(check: TimestampCheck, failure: Failure) -> str:
    assert not check.ok, check
    assert check.failure is failure, check.problem
    assert check.problem is not None and check.problem.startswith(f"{failure}: ")
    assert check.gen_time is None and check.signer is None
    return check.problem


@pytest.fixture(scope="module", params=sorted(SIGNERS))
def stamped(request: pytest.FixtureRequest, tsa: TsaService) -> tuple[str, Timestamp]:
    kind: str = request.param
    url: str = getattr(tsa, SIGNERS[kind])
    return kind, request_timestamp(url, DIGEST, timeout_s=30)


# -- a real timestamp ---------------------------------------------------------------------------


def test_timestamp_checks(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    kind, stamp = stamped
    check = check_timestamp(stamp.token, DIGEST, [tsa.ca_cert_pem])
    assert check.ok, check.problem
    assert check.problem is None and check.failure is None
    assert check.signer == f"CN=Vigil Test TSA ({kind}),O=Vigil tests"
    assert check.gen_time == stamp.gen_time
    assert check.gen_time is not None and check.gen_time.tzinfo is not None
    assert abs(datetime.now(UTC) - check.gen_time) < timedelta(seconds=10)

    tst_info = parse_token(stamp.token).tst_info
    assert tst_info.serial == stamp.tsa_serial > 0
    assert tst_info.policy == "1.2.3.4.1"
    assert tst_info.imprint.hashed_message == DIGEST


def test_trust_anchor_forms(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    """PEM or DER, the signer certificate itself, or a list where the issuer is not first."""
    kind, stamp = stamped
    ca_der = x509.load_pem_x509_certificate(tsa.ca_cert_pem).public_bytes(Encoding.DER)
    signer_pem = tsa.tsa_cert_pem if kind == "RSA" else tsa.ec_cert_pem
    for trusted in ([ca_der], [signer_pem], [_foreign_ca(), tsa.ca_cert_pem], [], ()):
        assert check_timestamp(stamp.token, DIGEST, trusted).ok


def test_openssl_verifies_the_same_token(
    stamped: tuple[str, Timestamp], tsa: TsaService, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None  # the tsa fixture skips otherwise
    _, stamp = stamped
    token = tmp_path / "token.der"
    token.write_bytes(stamp.token)

    def verify(digest: bytes) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl, "ts", "-verify", "-digest", digest.hex(), "-token_in", "-in", str(token),
             "-CAfile", str(tsa.ca_cert)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    good = verify(DIGEST)
    assert "Verification: OK" in good.stdout, good.stdout + good.stderr
    bad = verify(OTHER_DIGEST)
    assert "Verification: OK" not in bad.stdout and "FAILED" in bad.stdout + bad.stderr


# -- tampering ----------------------------------------------------------------------------------


def test_other_digest(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    _, stamp = stamped
    problem = _failed(
        check_timestamp(stamp.token, OTHER_DIGEST, [tsa.ca_cert_pem]), Failure.IMPRINT_MISMATCH
    )
    assert f"token stamps {DIGEST.hex()}, expected {OTHER_DIGEST.hex()}" in problem


def test_flipped_byte_in_tst_info(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    _, stamp = stamped
    nonce = _parts(stamp.token).nonce
    tampered = _flip(stamp.token, nonce.end - 1)
    assert parse_token(tampered).tst_info.nonce != parse_token(stamp.token).tst_info.nonce
    _failed(check_timestamp(tampered, DIGEST, [tsa.ca_cert_pem]), Failure.MESSAGE_DIGEST_MISMATCH)


def test_flipped_byte_in_signature(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    _, stamp = stamped
    signature = _parts(stamp.token).signature
    middle = (signature.content_start + signature.end) // 2
    _failed(check_timestamp(_flip(stamp.token, middle), DIGEST), Failure.SIGNATURE_INVALID)


def test_flipped_byte_in_signed_attributes(stamped: tuple[str, Timestamp]) -> None:
    """The signingTime attribute (UTCTime digits) is signed but checked by nothing else."""
    _, stamp = stamped
    (signing_time,) = next(
        a.values for a in parse_token(stamp.token).signer.attributes if a.oid == SIGNING_TIME
    )
    assert signing_time.tag == UTC_TIME
    tampered = _flip(stamp.token, signing_time.content_start + 1)  # a digit, still a digit
    _failed(check_timestamp(tampered, DIGEST), Failure.SIGNATURE_INVALID)


def test_untrusted_issuer(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    """Neither a stranger with the same name as the CA nor the other TSA's certificate (issued
    by the same CA) is the signer's issuer."""
    kind, stamp = stamped
    other_signer = tsa.ec_cert_pem if kind == "RSA" else tsa.tsa_cert_pem
    problem = _failed(
        check_timestamp(stamp.token, DIGEST, [_foreign_ca(), other_signer]),
        Failure.UNTRUSTED_SIGNER,
    )
    assert f"CN=Vigil Test TSA ({kind})" in problem and "2 trusted certificates" in problem


@pytest.mark.parametrize("junk", [b"", b"garbage", bytes(range(256)), b"0\x80\x00\x00"])
def test_garbage(junk: bytes, tsa: TsaService) -> None:
    _failed(check_timestamp(junk, DIGEST, [tsa.ca_cert_pem]), Failure.NOT_A_TOKEN)


def test_a_response_is_not_a_token(tsa: TsaService) -> None:
    response = tsa.reply(timestamp_request(DIGEST, 7))
    problem = _failed(check_timestamp(response, DIGEST), Failure.NOT_A_TOKEN)
    assert "ContentInfo" in problem


@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
def test_no_byte_flip_or_truncation_raises(stamped: tuple[str, Timestamp], tsa: TsaService) -> None:
    """Each single-bit flip (low and high bit of every byte) and every truncation: the check
    returns, and fails whenever the flip lies in what the signature or signer binds."""
    _, stamp = stamped
    token = stamp.token
    parts = _parts(token)
    ca_der = x509.load_pem_x509_certificate(tsa.ca_cert_pem).public_bytes(Encoding.DER)
    (signer_cert,) = (c for c in parts.certificates if c.encoded != ca_der)
    bound = [
        (parts.tst_info.start, parts.tst_info.end),
        (parts.signed_attrs.start, parts.signed_attrs.end),
        (parts.signature.content_start, parts.signature.end),
        (signer_cert.start, signer_cert.end),
    ]
    for offset in range(len(token)):
        for mask in (0x01, 0x80):
            check = check_timestamp(_flip(token, offset, mask), DIGEST, [tsa.ca_cert_pem])
            if any(start <= offset < end for start, end in bound):
                assert not check.ok, (offset, mask)
    for size in range(len(token)):
        _failed(check_timestamp(token[:size], DIGEST), Failure.NOT_A_TOKEN)


# -- tokens without certificates; the nonce; refusals ---------------------------------------------


def _request_without_cert_req(digest: bytes, nonce: int) -> bytes:
    version, imprint, nonce_tlv, _cert_req = der.parse(timestamp_request(digest, nonce)).children()
    return der.sequence(version.encoded, imprint.encoded, nonce_tlv.encoded)


def test_token_without_certificates_needs_the_signer_among_trusted(tsa: TsaService) -> None:
    response = tsa.reply(_request_without_cert_req(DIGEST, 11))
    token = parse_response(response).token
    assert token is not None and parse_token(token).certificates == ()
    _failed(check_timestamp(token, DIGEST), Failure.SIGNER_NOT_FOUND)
    _failed(check_timestamp(token, DIGEST, [tsa.ca_cert_pem]), Failure.SIGNER_NOT_FOUND)
    assert check_timestamp(token, DIGEST, [tsa.ca_cert_pem, tsa.tsa_cert_pem]).ok


def test_response_checks_nonce_and_digest(tsa: TsaService) -> None:
    response = tsa.reply(timestamp_request(DIGEST, 12345))
    stamp = timestamp_from_response(response, DIGEST, 12345)
    assert check_timestamp(stamp.token, DIGEST, [tsa.ca_cert_pem]).ok
    with pytest.raises(TimestampError, match="token carries nonce 12345, the request sent 54321"):
        timestamp_from_response(response, DIGEST, 54321)
    with pytest.raises(TimestampError, match="token does not check: imprint mismatch"):
        timestamp_from_response(response, OTHER_DIGEST, 12345)


def test_real_rejection_names_status_and_failure_info(tsa: TsaService) -> None:
    """This TSA takes SHA-512 imprints only: OpenSSL refuses ours with badAlg."""
    with pytest.raises(TimestampError) as refused:
        request_timestamp(tsa.rejecting_url, DIGEST, timeout_s=30)
    message = str(refused.value)
    assert message.startswith(f"TSA {tsa.rejecting_url}: timestamp refused: ")
    assert "status 2 (rejection)" in message and "failure info badAlg" in message
    assert "Message digest algorithm is not supported" in message


def test_http_error_names_the_url(tsa: TsaService) -> None:
    url = tsa.url + "no-such-tsa"
    with pytest.raises(TimestampError, match=f"TSA {url} answered HTTP 404"):
        request_timestamp(url, DIGEST, timeout_s=30)


def test_serials_increase(tsa: TsaService) -> None:
    first = request_timestamp(tsa.url, DIGEST, timeout_s=30)
    second = request_timestamp(tsa.url, OTHER_DIGEST, timeout_s=30)
    assert second.tsa_serial > first.tsa_serial
    assert check_timestamp(second.token, OTHER_DIGEST, [tsa.ca_cert_pem]).ok
