"""Real C2SP tlog-witnesses nobody here wrote, on loopback, for the ledger's witness tests.

Both are built from source through the Go module proxy with ``go install``, once per pinned
version, into ``.cache/witness/bin`` (git-ignored; a ``<binary>.version`` stamp beside each):

- torchwood's **litewitness** (``filippo.io/torchwood/cmd/litewitness@v0.8.0``; later versions
  need Go 1.27) and its ``witnessctl``. It has no config file: its state and the logs it
  witnesses live in a SQLite file (``witnessctl add-log`` / ``add-key``), and it signs through
  an ssh-agent: a dedicated ``ssh-agent -D -a SOCK`` holds the witness's Ed25519 key (an
  OpenSSH key file, ``ssh-add``ed), chosen with ``-key SHA256:<fingerprint>``. It listens on
  ``-listen 127.0.0.1:PORT`` only (its default is ``localhost:7380``); no bastion is given.
- transparency-dev's **omniwitness** (``github.com/transparency-dev/witness/cmd/omniwitness``,
  pinned below). Its key is a signed-note private key file (``--private_key_path``); Vigil's
  log is added with ``--additional_logs`` (YAML: Origin, PublicKey, URL), read at start; it
  also loads its embedded list of public logs, but with no ``--public_witness_config_url``,
  ``--rest_distro_url`` or ``--bastion_addr`` it makes no outbound connection. It listens on
  ``--listen 127.0.0.1:PORT``; its metrics listener is off (``--metrics_listen=``).

Both answer ``POST /add-checkpoint``, with two departures from the spec each: for a log it
does not know litewitness answers 403 and omniwitness 500 (not 404), and for another root at
the size they hold both answer 422 (not 409).

The ``witness_binaries`` fixture (session) builds what is missing, and skips only when ``go`` is
absent and nothing is cached. ``start_witness`` (function scope) starts fresh witnesses and
stops them after the test::

    w = start_witness("litewitness", logs=[(origin, log_vkey)])
    w.witness          # integrity.witness.Witness: URL and key
    w.known_size(origin)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from vigil_verify.checkpoint import note_key_hash
from vigil_verify.cosignature import WitnessKey

from integrity.witness import Witness
from interfaces.devservices.base import (
    HOST,
    ManagedProcess,
    ServiceError,
    file_lock,
    free_port,
    port_open,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "witness"
BIN = CACHE / "bin"
TORCHWOOD = "filippo.io/torchwood"
TORCHWOOD_VERSION = "v0.8.0"
OMNIWITNESS = "github.com/transparency-dev/witness"
OMNIWITNESS_VERSION = "v0.0.0-20260720115447-2e1c6971d19e"  # main on 2026-07-20; builds on 1.26
INSTALL_TIMEOUT_S = 1200.0
KINDS = ("litewitness", "omniwitness")


# -- building -----------------------------------------------------------------------------------


def go_install(module: str, version: str, commands: Sequence[str], bin_dir: Path = BIN) -> None:
    """``go install <module>/cmd/<command>@<version>`` for each command not yet built at that
    version into ``bin_dir``; ServiceError with Go's output if it fails."""
    wanted = f"{module}@{version}\n"

    def built(command: str) -> bool:
        stamp = bin_dir / f"{command}.version"
        return (bin_dir / command).is_file() and stamp.exists() and stamp.read_text() == wanted

    if all(built(c) for c in commands):
        return
    go = shutil.which("go")
    if go is None:
        raise ServiceError("`go` is not on PATH")
    with file_lock(bin_dir / ".install.lock"):
        missing = [c for c in commands if not built(c)]
        if not missing:
            return
        env = {**os.environ, "GOBIN": str(bin_dir), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        targets = [f"{module}/cmd/{c}@{version}" for c in missing]
        try:
            done = subprocess.run(
                # niced: a build in the background must not slow the tests that run meanwhile
                ["nice", "-n", "10", go, "install", *targets],
                capture_output=True,
                text=True,
                env=env,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"go install {' '.join(targets)} took over {INSTALL_TIMEOUT_S} s"
            ) from None
        if done.returncode != 0:
            out = (done.stdout + done.stderr)[-4000:]
            raise ServiceError(f"go install {' '.join(targets)} failed:\n{out}")
        for command in missing:
            (bin_dir / f"{command}.version").write_text(wanted)


@dataclass(frozen=True)
class WitnessBinaries:
    litewitness: Path
    witnessctl: Path
    omniwitness: Path


def build_witnesses(bin_dir: Path = BIN) -> WitnessBinaries:
    """The three binaries, built if missing (several minutes the first time, on two cores)."""
    go_install(TORCHWOOD, TORCHWOOD_VERSION, ("litewitness", "witnessctl"), bin_dir)
    go_install(OMNIWITNESS, OMNIWITNESS_VERSION, ("omniwitness",), bin_dir)
    return WitnessBinaries(bin_dir / "litewitness", bin_dir / "witnessctl", bin_dir / "omniwitness")


_PREBUILT: Future[WitnessBinaries] | None = None


def prebuild_witnesses() -> None:
    """Start building the witnesses in a background thread (once per process): a first build
    takes minutes on two cores, and this lets it run while other tests do, so that the witness
    tests find the binaries ready. ``witness_binaries`` waits for it."""
    global _PREBUILT
    if _PREBUILT is not None or shutil.which("go") is None:
        return
    future: Future[WitnessBinaries] = Future()

    def run() -> None:
        try:
            future.set_result(build_witnesses())
        except BaseException as exc:  # handed to the fixture, which reports it
            future.set_exception(exc)

    _PREBUILT = future
    threading.Thread(target=run, name="witness-prebuild", daemon=True).start()


# -- keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessIdentity:
    """A witness's name and Ed25519 key, in each of the forms the witnesses read."""

    name: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key(self) -> WitnessKey:
        return WitnessKey(self.name, self.public_raw)

    def openssh_private(self) -> bytes:
        return self.private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())

    def ssh_fingerprint(self) -> str:
        """``SHA256:<unpadded base64>`` of the SSH public key blob, as ``ssh-keygen -l``."""
        line = self.private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        blob = base64.b64decode(line.split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    def note_private_key(self) -> str:
        """``PRIVATE+KEY+name+keyhash+base64(0x01 ‖ seed)``, as Go's ``note.GenerateKey``."""
        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        blob = base64.b64encode(b"\x01" + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{note_key_hash(self.name, self.public_raw).hex()}+{blob}"


def _write_secret(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    return path


def _run(cmd: Sequence[str | Path], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            [str(c) for c in cmd],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{Path(cmd[0]).name} timed out") from None
    if done.returncode != 0:
        raise ServiceError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {done.stderr}")
    return done.stdout


# -- the witnesses --------------------------------------------------------------------------------


class RunningWitness(Protocol):
    kind: str
    identity: WitnessIdentity
    log: Path

    @property
    def url(self) -> str: ...
    @property
    def witness(self) -> Witness: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def known_size(self, origin: str) -> int | None: ...


def _vkey_in_log(log: Path, pattern: str) -> str | None:
    match = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
    return match.group(1) if match else None


class Litewitness:
    """litewitness with its own ssh-agent, database and loopback port under ``work``."""

    kind = "litewitness"

    def __init__(self, work: Path, binaries: WitnessBinaries, identity: WitnessIdentity) -> None:
        self.work = work
        self.binaries = binaries
        self.identity = identity
        self.db = work / "litewitness.db"
        self.log = work / "litewitness.log"
        self.port = free_port()
        # An AF_UNIX path is at most ~107 bytes: the agent's socket goes in a short folder.
        self._sock_dir = Path(tempfile.mkdtemp(prefix="vw-", dir="/tmp"))
        self.socket = self._sock_dir / "agent.sock"
        self._agent: ManagedProcess | None = None
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def witness(self) -> Witness:
        return Witness(self.url, self.identity.key)

    def add_log(self, origin: str, vkey: str) -> None:
        """Witness the log ``origin`` signed by ``vkey`` (works while litewitness runs)."""
        self.work.mkdir(parents=True, exist_ok=True)
        ctl = self.binaries.witnessctl
        _run([ctl, "add-log", "-db", self.db, "-origin", origin])
        _run([ctl, "add-key", "-db", self.db, "-origin", origin, "-key", vkey])

    def known_size(self, origin: str) -> int | None:
        """The size litewitness last cosigned for ``origin`` (``witnessctl list-logs``)."""
        for line in _run([self.binaries.witnessctl, "list-logs", "-db", self.db]).splitlines():
            entry = json.loads(line)
            if entry.get("origin") == origin:
                return int(entry["size"])
        return None

    def start(self) -> None:
        ssh_agent, ssh_add = shutil.which("ssh-agent"), shutil.which("ssh-add")
        if ssh_agent is None or ssh_add is None:
            raise ServiceError("litewitness signs through ssh-agent: install openssh-client")
        self.work.mkdir(parents=True, exist_ok=True)
        key_file = _write_secret(self.work / "witness-key", self.identity.openssh_private())
        self._agent = ManagedProcess(
            "ssh-agent", [ssh_agent, "-D", "-a", str(self.socket)], self.work / "ssh-agent.log"
        )
        self._agent.start()
        wait_until(self.socket.exists, 10, "ssh-agent", self._agent.log)
        _run([ssh_add, "-q", key_file], env={"SSH_AUTH_SOCK": str(self.socket)})
        cmd = [
            str(self.binaries.litewitness),
            "-db", str(self.db),
            "-name", self.identity.name,
            "-key", self.identity.ssh_fingerprint(),
            "-ssh-agent", str(self.socket),
            "-listen", f"{HOST}:{self.port}",
        ]  # fmt: skip
        self._process = ManagedProcess("litewitness", cmd, self.log)
        self._process.start()
        process = self._process
        wait_until(
            lambda: port_open(self.port), 30, "litewitness", self.log, lambda: process.running
        )
        said = _vkey_in_log(self.log, r"verifier key.*vkey=(\S+)")
        if said != self.identity.key.vkey:
            raise ServiceError(f"litewitness says its vkey is {said}, not {self.identity.key}")

    def stop(self) -> None:
        for process in (self._process, self._agent):
            if process is not None:
                process.stop(grace_s=10)
        shutil.rmtree(self._sock_dir, ignore_errors=True)


class Omniwitness:
    """omniwitness with its key file, database, extra-logs YAML and loopback port."""

    kind = "omniwitness"

    def __init__(
        self,
        work: Path,
        binaries: WitnessBinaries,
        identity: WitnessIdentity,
        logs: Sequence[tuple[str, str]],
    ) -> None:
        self.work = work
        self.binaries = binaries
        self.identity = identity
        self.logs = list(logs)
        self.db = work / "omniwitness.db"
        self.log = work / "omniwitness.log"
        self.port = free_port()
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def witness(self) -> Witness:
        return Witness(self.url, self.identity.key)

    def _logs_yaml(self) -> str:
        entries = "".join(
            f"  - Origin: {json.dumps(origin)}\n"
            f"    PublicKey: {json.dumps(vkey)}\n"
            f"    URL: {json.dumps(f'https://{origin}/')}\n"
            for origin, vkey in self.logs
        )
        return "Logs:\n" + entries

    def known_size(self, origin: str) -> int | None:
        """omniwitness has no query tool for its state: None (unknown)."""
        return None

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        key_file = _write_secret(
            self.work / "witness.key", self.identity.note_private_key().encode()
        )
        logs = self.work / "logs.yaml"
        logs.write_text(self._logs_yaml())
        cmd = [
            str(self.binaries.omniwitness),
            "--listen", f"{HOST}:{self.port}",
            "--metrics_listen=",
            "--db_file", str(self.db),
            "--private_key_path", str(key_file),
            "--additional_logs", str(logs),
            "--logtostderr",
        ]  # fmt: skip
        self._process = ManagedProcess("omniwitness", cmd, self.log)
        self._process.start()
        process = self._process
        wait_until(
            lambda: port_open(self.port), 30, "omniwitness", self.log, lambda: process.running
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace_s=10)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def witness_binaries() -> WitnessBinaries:
    """litewitness, witnessctl and omniwitness, built once (skips only without Go)."""
    if shutil.which("go") is None:
        try:
            return build_witnesses()  # cached binaries need no Go
        except ServiceError:
            pytest.skip("Go is not installed: the witnesses are built with `go install`")
    if _PREBUILT is not None:
        try:
            return _PREBUILT.result(timeout=INSTALL_TIMEOUT_S * 2)
        except ServiceError:
            pass  # built again below, which raises with Go's output
    return build_witnesses()


StartWitness = Callable[..., RunningWitness]


@pytest.fixture
def start_witness(
    witness_binaries: WitnessBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartWitness]:
    """``start_witness(kind, logs=[(origin, vkey)], name=...)``: a fresh, running witness
    ("litewitness" or "omniwitness") that witnesses those logs; stopped after the test."""
    started: list[RunningWitness] = []

    def start(
        kind: str, logs: Sequence[tuple[str, str]] = (), name: str | None = None
    ) -> RunningWitness:
        identity = WitnessIdentity(name or f"{kind}.vigil.test/w{len(started) + 1}")
        work = tmp_path_factory.mktemp(kind)
        witness: RunningWitness
        if kind == "litewitness":
            lite = Litewitness(work, witness_binaries, identity)
            for origin, vkey in logs:
                lite.add_log(origin, vkey)
            witness = lite
        elif kind == "omniwitness":
            witness = Omniwitness(work, witness_binaries, identity, logs)
        else:
            raise ValueError(f"no witness kind {kind!r}: {KINDS}")
        started.append(witness)
        witness.start()
        return witness

    yield start
    for witness in reversed(started):
        with contextlib.suppress(Exception):
            witness.stop()
