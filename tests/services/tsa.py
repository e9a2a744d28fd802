"""A real RFC 3161 Time-Stamp Authority on loopback: OpenSSL's ``openssl ts -reply`` behind a
stdlib HTTP server, for the trusted-timestamp tests.

The ``tsa`` fixture (session scope) makes, with the ``openssl`` CLI, a root CA and two TSA signing
certificates it issues (RSA 2048 and ECDSA P-256, each with a critical extendedKeyUsage of
timeStamping only), writes an OpenSSL config with one ``[tsa]`` section per signer, and serves
RFC 3161 over HTTP (POST ``application/timestamp-query``, reply ``application/timestamp-reply``):

    <url>               RSA signer, SHA-256 signer digest, ESS signingCertificateV2 (SHA-256),
                        the CA certificate included in the token besides the signer's
    <ec_url>            ECDSA signer, SHA-384 signer digest, ESS signingCertificate (SHA-1)
    <rejecting_url>     RSA signer accepting only SHA-512 imprints: a SHA-256 request is refused
                        (PKIStatus rejection, failure info badAlg)

Each request is written to a temporary file and answered by ``openssl ts -reply -config CONF
-section S -queryfile REQ -out RESP`` (one at a time: the serial file is shared). The fixture
skips the test when ``openssl`` is not on PATH. Load it with ``pytest_plugins =
["tests.services.tsa"]`` (the root conftest does). Outside pytest:

    server = TsaServer(make_tsa_files(Path("/tmp/tsa")))
    server.start()                      # server.base_url + "/", "/ec", "/sha512-only"
    server.stop()
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from interfaces.devservices.base import HOST, ServiceError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
OPENSSL_TIMEOUT_S = 30.0
MAX_QUERY_BYTES = 64 * 1024
DEFAULT_POLICY = "1.2.3.4.1"
OTHER_POLICY = "1.2.3.4.5"

# URL path → [tsa] section of the config.
SECTIONS = {"/": "tsa_rsa", "/ec": "tsa_ec", "/sha512-only": "tsa_sha512_only"}

_CONFIG = """\
# Written by tests/services/tsa.py: a throw-away CA and RFC 3161 TSA for the tests.
dir = {dir}

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = unused (-subj names each certificate)

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[tsa_cert]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[tsa]
default_tsa = tsa_rsa

[tsa_rsa]
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = {policy}
other_policies = {other_policy}
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256

[tsa_ec]
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa-ec.pem
signer_key = $dir/tsa-ec.key
signer_digest = sha384
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha1

[tsa_sha512_only]
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = {policy}
digests = sha512
ess_cert_id_alg = sha256
"""


@dataclass(frozen=True)
class TsaFiles:
    """The CA, the two TSA signers and the config, under ``directory``."""

    directory: Path
    config: Path
    ca_cert: Path
    ca_key: Path
    tsa_cert: Path
    tsa_key: Path
    ec_cert: Path
    ec_key: Path


@dataclass(frozen=True)
class TsaService:
    """What the ``tsa`` fixture yields: the running TSA's URLs, certificates and files."""

    url: str
    ec_url: str
    rejecting_url: str
    ca_cert_pem: bytes
    tsa_cert_pem: bytes
    ec_cert_pem: bytes
    files: TsaFiles
    server: TsaServer = field(repr=False)

    def reply(self, query: bytes, section: str = "tsa_rsa") -> bytes:
        """OpenSSL's DER TimeStampResp to DER TimeStampReq ``query``, without HTTP."""
        return self.server.reply(query, section)

    @property
    def ca_cert(self) -> Path:
        return self.files.ca_cert

    @property
    def config(self) -> Path:
        return self.files.config


def openssl(args: Sequence[str], config: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``openssl ARGS`` (with $OPENSSL_CONF = ``config``, so no system config applies);
    ServiceError with its stderr if it fails or takes over OPENSSL_TIMEOUT_S."""
    binary = shutil.which("openssl")
    if binary is None:
        raise ServiceError("openssl is not on PATH")
    env = {"PATH": "/usr/bin:/bin", "OPENSSL_CONF": str(config)} if config else None
    try:
        done = subprocess.run(
            [binary, *args], capture_output=True, env=env, timeout=OPENSSL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(
            f"openssl {' '.join(args)} timed out after {OPENSSL_TIMEOUT_S} s"
        ) from None
    if done.returncode != 0:
        raise ServiceError(
            f"openssl {' '.join(args)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return done


def make_tsa_files(directory: Path) -> TsaFiles:
    """A fresh CA, RSA and ECDSA TSA certificates it issued, a serial file and the config."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(
        _CONFIG.format(dir=directory, policy=DEFAULT_POLICY, other_policy=OTHER_POLICY)
    )
    (directory / "serial").write_text("01\n")
    files = TsaFiles(
        directory=directory,
        config=config,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        tsa_cert=directory / "tsa.pem",
        tsa_key=directory / "tsa.key",
        ec_cert=directory / "tsa-ec.pem",
        ec_key=directory / "tsa-ec.key",
    )
    cnf = ["-config", str(config)]
    openssl(
        ["req", *cnf, "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
         "-extensions", "v3_ca", "-subj", "/O=Vigil tests/CN=Vigil Test TSA Root",
         "-keyout", str(files.ca_key), "-out", str(files.ca_cert)],
        config,
    )  # fmt: skip
    signers = [
        (files.tsa_key, files.tsa_cert, ["-newkey", "rsa:2048"], "RSA", "0x1001"),
        (files.ec_key, files.ec_cert, ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
         "ECDSA", "0x1002"),
    ]  # fmt: skip
    for key, cert, newkey, kind, serial in signers:
        csr = cert.with_suffix(".csr")
        openssl(
            ["req", *cnf, "-new", *newkey, "-nodes", "-subj",
             f"/O=Vigil tests/CN=Vigil Test TSA ({kind})", "-keyout", str(key), "-out", str(csr)],
            config,
        )  # fmt: skip
        openssl(
            ["x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey",
             str(files.ca_key), "-set_serial", serial, "-days", "3650", "-sha256",
             "-extfile", str(config), "-extensions", "tsa_cert", "-out", str(cert)],
            config,
        )  # fmt: skip
    return files


class TsaServer:
    """``openssl ts -reply`` behind a ThreadingHTTPServer on a free loopback port."""

    def __init__(self, files: TsaFiles) -> None:
        self.files = files
        self.log = files.directory / "http.log"
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def reply(self, query: bytes, section: str = "tsa_rsa") -> bytes:
        """The DER TimeStampResp ``openssl ts -reply`` gives to DER TimeStampReq ``query``."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.files.directory) as work:
            request, response = Path(work) / "request.tsq", Path(work) / "response.tsr"
            request.write_bytes(query)
            openssl(
                ["ts", "-reply", "-config", str(self.files.config), "-section", section,
                 "-queryfile", str(request), "-out", str(response)],
                self.files.config,
            )  # fmt: skip
            return response.read_bytes()

    @property
    def base_url(self) -> str:
        if self._http is None:
            raise ServiceError("the TSA server is not running")
        return f"http://{HOST}:{self._http.server_address[1]}"

    def start(self) -> None:
        if self._http is not None:
            return
        server = self

        class Handler(_Handler):
            tsa = server

        self._http = ThreadingHTTPServer((HOST, 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="tsa-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._http = None
        self._thread = None


class _Handler(BaseHTTPRequestHandler):
    tsa: TsaServer

    def do_POST(self) -> None:
        section = SECTIONS.get(self.path)
        if section is None:
            self._answer(404, "text/plain", f"no TSA at {self.path}".encode())
            return
        if self.headers.get_content_type() != QUERY_TYPE:
            self._answer(415, "text/plain", f"expected {QUERY_TYPE}".encode())
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_QUERY_BYTES:
            self._answer(413, "text/plain", f"query of {length} bytes".encode())
            return
        query = self.rfile.read(length)
        try:
            answer = self.tsa.reply(query, section)
        except ServiceError as err:
            self._answer(500, "text/plain", str(err).encode())
            return
        self._answer(200, REPLY_TYPE, answer)

    def _answer(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        with self.tsa.log.open("a") as out:
            out.write(f"{self.address_string()} {format % args}\n")


@pytest.fixture(scope="session")
def tsa(services_dir: Path) -> Iterator[TsaService]:
    """A running RFC 3161 TSA for the session (see the module docstring)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: the TSA tests need the openssl CLI")
    files = make_tsa_files(services_dir / "tsa")
    server = TsaServer(files)
    server.start()
    try:
        base = server.base_url
        yield TsaService(
            url=base + "/",
            ec_url=base + "/ec",
            rejecting_url=base + "/sha512-only",
            ca_cert_pem=files.ca_cert.read_bytes(),
            tsa_cert_pem=files.tsa_cert.read_bytes(),
            ec_cert_pem=files.ec_cert.read_bytes(),
            files=files,
            server=server,
        )
    finally:
        server.stop()
