"""The one way Vigil runs ffmpeg: a timeout on every call, a bounded stderr tail, kill on stop.

Command lines are built elsewhere by pure functions (see ``transcode.commands``); this module
only runs them. A ``ProcessRunner`` is created once per process and passed to whoever needs it,
so that ``stop()`` can end every ffmpeg still running when the worker shuts down.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vigil_verify.errors import ErrorKind

from transcode.errors import TranscodeError

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40
STDERR_HEAD_LINES = 60
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@")

ProgressCallback = Callable[[float], None]
"""Called with the output time reached, in seconds."""


class FfmpegNotFound(TranscodeError):
    """No ffmpeg binary could be found."""

    kind = ErrorKind.UNAVAILABLE


class FfmpegFailed(TranscodeError):
    """ffmpeg exited with an error; carries the exit code and the end of its stderr."""

    def __init__(self, cmd: Sequence[str], returncode: int, stderr_tail: str) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        last = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no output"
        super().__init__(f"ffmpeg exited with code {returncode}: {last}")


class FfmpegTimeout(TranscodeError):
    """ffmpeg ran past its timeout and was killed."""

    def __init__(self, cmd: Sequence[str], timeout_s: float) -> None:
        self.cmd = list(cmd)
        self.timeout_s = timeout_s
        super().__init__(f"ffmpeg ran longer than {timeout_s:.0f} s and was killed")


class RunnerStopped(TranscodeError):
    """The runner was stopped; the process was killed."""


def redact(text: str) -> str:
    """Strip ``user:password@`` from any URL in ``text`` (stream URLs carry credentials)."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def find_ffmpeg(explicit: str | None = None) -> str:
    """The ffmpeg to use: the configured path, else the system's, else imageio-ffmpeg's."""
    if explicit:
        if shutil.which(explicit) is None and not os.access(explicit, os.X_OK):
            raise FfmpegNotFound(f"configured ffmpeg {explicit!r} is not an executable")
        return explicit
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        exe: str = imageio_ffmpeg.get_ffmpeg_exe()
        return exe
    except Exception as exc:  # imageio-ffmpeg raises RuntimeError when it ships no binary
        raise FfmpegNotFound(
            "no ffmpeg on PATH and imageio-ffmpeg has no binary for this platform"
        ) from exc


def _share_priority(pid: int) -> None:
    """Give a child started from a lowered-priority thread (``workers.behind``) that priority
    across the whole machine, not only within its own session.

    Each ffmpeg runs in a session of its own (so that it can be killed with its children);
    with Linux's scheduler autogroups every session is a group scheduled as one, and a
    thread's nice value only ranks it inside its group. The group's own nice
    (``/proc/PID/autogroup``) is what ranks it against the others, so it is set to the
    calling thread's nice. Nothing happens for a thread at normal priority or elsewhere.
    """
    try:
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):
        return
    if nice <= 0:
        return
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")


@dataclass(frozen=True)
class RunResult:
    stdout: bytes
    stderr_head: str
    stderr_tail: str
    elapsed_s: float
    returncode: int


class _StderrPump(threading.Thread):
    """Drains stderr into a bounded tail; parses ``-progress`` lines into a callback."""

    def __init__(
        self,
        stream: IO[bytes],
        on_progress: ProgressCallback | None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._on_progress = on_progress
        self._on_line = on_line
        self.head: list[str] = []
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    def run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("out_time_us="):
                value = line.partition("=")[2]
                if self._on_progress is not None and value.lstrip("-").isdigit():
                    self._on_progress(int(value) / 1e6)
                continue
            if "=" in line and " " not in line:
                continue  # the other -progress key=value lines
            if self._on_line is not None:
                self._on_line(line)
            if len(self.head) < STDERR_HEAD_LINES:
                self.head.append(line)
            self.tail.append(line)

    def text(self) -> str:
        """The last lines, credentials redacted (when read: a filter's per-frame log is
        thousands of lines, almost none of them ever read)."""
        return redact("\n".join(self.tail))

    def head_text(self) -> str:
        return redact("\n".join(self.head))


@dataclass(frozen=True)
class FinishedRun:
    """What a finished run reports to ``ProcessRunner(on_finished=...)`` (e.g. for metrics)."""

    cmd: Sequence[str]
    returncode: int
    wall_s: float


class ProcessRunner:
    """Runs ffmpeg processes with timeouts, and kills all of them on ``stop()``."""

    def __init__(
        self,
        default_timeout_s: float = 3600.0,
        grace_s: float = 3.0,
        on_finished: Callable[[FinishedRun], None] | None = None,
    ) -> None:
        self.default_timeout_s = default_timeout_s
        self.grace_s = grace_s
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._stopping = threading.Event()

    def run(
        self,
        cmd: Sequence[str],
        *,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
        capture_stdout: bool = False,
        check: bool = True,
        on_line: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run to completion; return stdout (if captured) and the stderr head and tail.

        With ``check=False`` a non-zero exit is returned in ``returncode`` instead of raised
        (a damaged file still yields what ffmpeg could read); timeouts and stops still raise.
        """
        chunks: list[bytes] = []
        started = time.monotonic()
        status: list[int] = []
        with self.stream(
            cmd,
            timeout_s=timeout_s,
            on_progress=on_progress,
            check=check,
            status=status,
            on_line=on_line,
        ) as (out, pump):
            for chunk in iter(lambda: out.read(1 << 16), b""):
                if capture_stdout:
                    chunks.append(chunk)
        return RunResult(
            b"".join(chunks), pump.head_text(), pump.text(), time.monotonic() - started, status[0]
        )

    @contextlib.contextmanager
    def stream(
        self,
        cmd: Sequence[str],
        *,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
        check: bool = True,
        status: list[int] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> Iterator[tuple[IO[bytes], _StderrPump]]:
        """Start ``cmd``; yield its stdout to read. On exit, wait, check the exit code.

        The process runs in its own session with stdin closed. A timer kills it at the
        deadline; leaving the block early kills it too. ``on_line`` gets every stderr line
        that is not ``-progress`` output (e.g. a filter's per-frame log), from the pump thread;
        all of them have been delivered when the block exits.
        """
        limit = self.default_timeout_s if timeout_s is None else timeout_s
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("ffmpeg: %s", redact(" ".join(cmd)))
        if self._stopping.is_set():
            raise RunnerStopped("runner is stopping; no new processes")
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        _share_priority(proc.pid)
        with self._lock:
            self._live.add(proc)
        if self._stopping.is_set():  # stop() ran while it started: it may not have seen it
            self._kill(proc)
        assert proc.stdout is not None
        assert proc.stderr is not None
        timed_out = threading.Event()

        def on_deadline() -> None:
            timed_out.set()
            self._kill(proc)

        timer = threading.Timer(limit, on_deadline)
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        pump = _StderrPump(proc.stderr, on_progress, on_line)
        pump.start()
        completed = False
        try:
            yield proc.stdout, pump
            completed = True
        finally:
            if not completed:
                self._kill(proc)
            # Done reading: a process still writing to stdout gets a broken pipe and ends at
            # once, instead of blocking on a full pipe until its timeout.
            proc.stdout.close()
            returncode = proc.wait()
            timer.cancel()
            pump.join(timeout=5)
            proc.stderr.close()
            with self._lock:
                self._live.discard(proc)
            if status is not None:
                status.append(returncode)
            if self.on_finished is not None:
                with contextlib.suppress(Exception):  # reporting never fails the run
                    self.on_finished(FinishedRun(cmd, returncode, time.monotonic() - started))
        if timed_out.is_set():
            raise FfmpegTimeout(cmd, limit)
        if self._stopping.is_set() and returncode != 0:
            raise RunnerStopped("ffmpeg was killed because the runner is stopping")
        if check and returncode != 0:
            raise FfmpegFailed(cmd, returncode, pump.text())

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """Terminate the process group, wait ``grace_s``, then kill it."""
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill every process still running; refuse new ones."""
        self._stopping.set()
        with self._lock:
            live = list(self._live)
        for proc in live:
            self._kill(proc)

    @property
    def live_count(self) -> int:
        with self._lock:
            return len(self._live)


@dataclass(frozen=True)
class Tools:
    """What every media stage needs to run ffmpeg: the runner, the binary, the time limit."""

    runner: ProcessRunner
    ffmpeg: str
    timeout_s: float


def version_command(ffmpeg: str) -> list[str]:
    """Ask ``ffmpeg`` its version (the first line of stdout: ``ffmpeg version N ...``)."""
    return [ffmpeg, "-hide_banner", "-version"]


_VERSIONS: dict[str, str] = {}
_VERSIONS_LOCK = threading.Lock()


def ffmpeg_version(tools: Tools) -> str:
    """``ffmpeg N`` of the binary ``tools`` runs (asked once per binary and process): what made
    a recording's segment files, signed with them, so that a file cut again by another ffmpeg
    that does not match is explained by the log."""
    with _VERSIONS_LOCK:
        known = _VERSIONS.get(tools.ffmpeg)
    if known is not None:
        return known
    out = tools.runner.run(
        version_command(tools.ffmpeg), timeout_s=min(tools.timeout_s, 30.0), capture_stdout=True
    ).stdout.decode("utf-8", "replace")
    words = (out.splitlines() or [""])[0].split()
    found = f"ffmpeg {words[2]}" if words[:2] == ["ffmpeg", "version"] and len(words) > 2 else ""
    found = found or "ffmpeg (version not stated)"
    with _VERSIONS_LOCK:
        _VERSIONS[tools.ffmpeg] = found
    return found
