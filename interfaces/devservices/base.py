"""Starting, waiting for and stopping a service process on loopback, and finding one again
by its PID from another process (``vigil services down`` stops what ``up`` started)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from vigil_verify.errors import ErrorKind

from interfaces.errors import InterfaceError

HOST = "127.0.0.1"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path``, so that parallel processes (test sessions, a
    ``vigil services up`` beside them) fetch or build a shared cache once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ServiceError(InterfaceError):
    """A service could not be set up, started or stopped."""

    kind = ErrorKind.UNAVAILABLE


def cache_root() -> Path:
    """The user's cache folder for Vigil: ``$XDG_CACHE_HOME/vigil``, else ``~/.cache/vigil``
    (Kafka's jars, and the default folder of ``vigil services``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vigil"


_HANDED_OUT: set[int] = set()
_LOWEST = 10_000
_CLAIMS: list[int] = []  # the open claims file, kept for this process's life (see _claim)


def _claims_fd() -> int | None:
    """The claims file every Vigil process on this machine shares, opened once (None if it
    cannot be: then ports are only kept apart within this process)."""
    if _CLAIMS:
        return _CLAIMS[0]
    path = Path(tempfile.gettempdir()) / "vigil-ports.claims"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return None
    with contextlib.suppress(OSError):  # another user's file stays theirs
        os.fchmod(fd, 0o666)
    _CLAIMS.append(fd)
    return fd


def _claim(port: int) -> bool:
    """Claim ``port`` for this process's life against every other Vigil process on the machine:
    a POSIX lock on byte ``port`` of one shared file, which the kernel drops when the process
    ends, however it ends. A service stopped and started again on the same port (the store
    down for 20 s in a test) would otherwise find that another test worker's free_port handed
    its port to something else meanwhile: seen as ``weed mini`` refusing to start again,
    "port 22104 for Filer ... is not available". True when claimed, or when no claims file can
    be opened."""
    fd = _claims_fd()
    if fd is None:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
    except OSError:
        return False
    return True


def _takeable(port: int) -> bool:
    """Does ``port`` bind on loopback right now, and is it now claimed by this process?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return _claim(port)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, below the kernel's range of
    ephemeral ports, not handed out before by this process, and claimed against every other
    Vigil process on the machine (``_claim``) until this one ends.

    A port the kernel picks (bind to 0) is from the ephemeral range, the one every outgoing
    connection takes its local port from: between picking it and the service binding it, a
    client's connection can take it (seen: ``weed mini``'s S3 listener, "address already in
    use", while Kafka and PostgreSQL clients of the other test workers were busy). Below that
    range no outgoing connection ever lands."""
    low = _ephemeral_low()
    pick = random.SystemRandom()
    for _ in range(500):
        port = pick.randrange(_LOWEST, low)
        if port not in _HANDED_OUT and _takeable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # every try was taken
        sock.bind((HOST, 0))
        found: int = sock.getsockname()[1]
        return found


def _ephemeral_low() -> int:
    """The lowest ephemeral port (Linux's setting; 32768 elsewhere or if unreadable)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return low if low > _LOWEST + 1000 else 32768


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_tail(log: Path | None, lines: int = 30) -> str:
    """The last lines of a log file, newline-prefixed, for error messages ("" if none)."""
    if log is None or not log.exists():
        return ""
    return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, log: Path | None,
               alive: Callable[[], bool] | None = None) -> None:  # fmt: skip
    """Poll ``check`` until it returns True; give up at the deadline, or at once when ``alive``
    (say, ``lambda: process.running``) turns False."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        if alive is not None and not alive():
            raise ServiceError(f"{what} exited before it was ready{log_tail(log)}")
        time.sleep(0.2)
    raise ServiceError(f"{what} not ready after {timeout_s:.0f} s{log_tail(log)}")


class ManagedProcess:
    """One long-running process with its output in a log file; stop = TERM, wait, KILL."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, user: str | None = None) -> None:  # fmt: skip
        self.name = name
        self.cmd = list(cmd)
        self.log = log
        self.env = env
        self.cwd = cwd
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.cmd if self.user is None else ["runuser", "-u", self.user, "--", *self.cmd]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The started process's PID (the leader of its own process group)."""
        return None if self.proc is None else self.proc.pid

    def stop(self, grace_s: float = 20.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# -- processes by PID (another process's children, or nobody's) --------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from its third field (the state) on; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (/proc/PID/stat field 22): with
    the PID, it names one process, not a later one that was given the same PID."""
    fields = _stat_fields(pid)
    try:
        return None if fields is None else int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """The process exists, is not a zombie, and (given ``started``) is the one that started
    then."""
    fields = _stat_fields(pid)
    if fields is None or not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or start_ticks(pid) == started


def child_pids(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found
