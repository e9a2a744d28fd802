"""The receiving side of a live recording: one thread runs the ffmpeg sessions on the source
one after another, and stamps each video packet ffmpeg reports with the server's monotonic
clock as it reads it.

Each ffmpeg run (an ``Attempt``) writes its MPEG-TS segments (every packet in one of them: the
stream as received) into its own directory, and one ``framecrc`` line per video packet on stdout
(flushed per packet). The receiver ends a run early when the recording must end (the caller's
stop, the storing side failing, ``LivePolicy.max_s``, no camera for ``max_outage_s``), or when
the source went silent for ``io_timeout_s`` without closing its connection; between runs it
pulls (or listens) again, every ``retry_s`` while nothing arrives.
"""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import IO

from ingest.errors import IngestError
from ingest.live.policy import LivePolicy, LiveSource, StopReason
from transcode.commands import live_listen_command, live_pull_command
from transcode.ffmpeg import FfmpegTimeout, RunnerStopped, Tools

logger = logging.getLogger(__name__)

_POLL_S = 0.25  # how often the receiver looks at the stop event and the deadlines
_NOPTS = -(2**63)


class _Halt(IngestError):
    """Ends the current ffmpeg session from inside the runner's block (which then SIGTERMs
    ffmpeg, and ffmpeg closes its outputs properly). With a ``reason`` the recording ends
    too; without, only this session (the source went silent)."""

    def __init__(self, reason: StopReason | None, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Attempt:
    """One ffmpeg run on the source. The receiving thread writes it, the storing thread reads
    it (under ``lock``); ``ended_at`` set means ffmpeg has exited and its files are final."""

    def __init__(self, number: int, directory: Path, started: float) -> None:
        self.number = number
        self.directory = directory
        self.started = started
        self.lock = threading.Lock()
        self.time_base: Fraction | None = None
        self.packets = 0
        self.first_pts: float | None = None  # seconds, on the arrivals output's timestamps
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.min_offset = math.inf  # min(arrival - pts) so far
        self.ended_at: float | None = None
        self.cause = ""
        self.halt: StopReason | None = None  # the recording was ended while this session ran
        self.silent = False  # ended after io_timeout_s without a packet
        self.returncode: int | None = None

    def observe(self, line: bytes, at: float) -> None:
        """One ``framecrc`` line of the arrivals output, read at monotonic time ``at``."""
        if line.startswith(b"#tb 0:"):
            num, _, den = line.partition(b":")[2].strip().partition(b"/")
            if num.isdigit() and den.isdigit() and int(den):
                with self.lock:
                    self.time_base = Fraction(int(num), int(den))
            return
        if line.startswith(b"#") or not line.strip():
            return
        parts = line.split(b",")
        if len(parts) < 6 or self.time_base is None:
            return
        try:
            dts, pts = int(parts[1]), int(parts[2])
        except ValueError:
            return
        if pts == _NOPTS:
            if dts == _NOPTS:
                return
            pts = dts
        seconds = float(pts * self.time_base)
        with self.lock:
            if self.first_pts is None:
                self.first_pts, self.first_arrival = seconds, at
            self.packets += 1
            self.last_arrival = at
            self.min_offset = min(self.min_offset, at - seconds)

    def clock(self) -> tuple[float | None, float]:
        with self.lock:
            return self.first_pts, self.min_offset


_COMPLAINTS = ("error", "refused", "timed out", "reset", "closed", "end of file", "not found")


def _cause(returncode: int | None, stderr_tail: str) -> str:
    """What ended an ffmpeg session, from its exit code and the end of its stderr."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    complaint = next((x for x in reversed(lines) if any(w in x.lower() for w in _COMPLAINTS)), "")
    if returncode == 0:
        return f"end of stream ({complaint})" if complaint else "end of stream"
    return f"ffmpeg exited with code {returncode}: {complaint or (lines[-1] if lines else '')}"


class Receiver:
    """Runs the ffmpeg sessions of one live recording (``receive``, the receiving thread's
    target) until the recording ends, appending each run to ``attempts`` (under ``lock``);
    ``ended`` is then why. Setting ``abort`` (the storing side failed) ends it."""

    def __init__(
        self,
        *,
        recording_id: str,
        source: LiveSource,
        policy: LivePolicy,
        tools: Tools,
        segment_s: float,
        stop: threading.Event,
        work: Path,
        started: float,
    ) -> None:
        self.recording_id = recording_id
        self.source = source
        self.policy = policy
        self.tools = tools
        self.segment_s = segment_s
        self.stop = stop
        self.abort = threading.Event()  # the storing side failed: end the sessions
        self.work = work
        self.started = started
        self.deadline = started + policy.max_s
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.ended: tuple[StopReason, str] | None = None

    def attempt(self, index: int) -> Attempt | None:
        """The ``index``-th ffmpeg run (0-based), if it has started."""
        with self.lock:
            return self.attempts[index] if index < len(self.attempts) else None

    def receive(self) -> None:
        try:
            self.ended = self._sessions()
        except BaseException as exc:  # the footage so far is still stored
            logger.exception("%s: live receiver failed", self.recording_id)
            self.ended = ("failed", f"{type(exc).__name__}: {exc}")

    def _sessions(self) -> tuple[StopReason, str]:
        """Run ffmpeg sessions until the recording ends; return why it ended."""
        policy = self.policy
        last_seen = self.started  # the last packet received, or the start
        while True:
            at = time.monotonic()
            if (halt := self._halted(at, None, last_seen)) is not None:
                return halt
            attempt = Attempt(len(self.attempts) + 1, self.work / f"a{len(self.attempts) + 1:04d}",
                              at)  # fmt: skip
            attempt.directory.mkdir(parents=True, exist_ok=True)
            with self.lock:
                self.attempts.append(attempt)
            self._run_attempt(attempt, last_seen)
            if attempt.last_arrival is not None:
                last_seen = attempt.last_arrival
            if attempt.halt is not None:
                return attempt.halt, attempt.cause
            if not policy.reconnect:  # one session: its end is the recording's
                if attempt.silent:
                    return "camera lost", attempt.cause
                if attempt.returncode == 0 or attempt.returncode is None:
                    return "end of stream", ""
                return "failed", attempt.cause
            again = "listening" if self.source.mode == "push" else "pulling"
            if attempt.packets == 0:  # nothing this time: try again ``retry_s`` after the last
                logger.debug("%s: %s again (%s)", self.recording_id, again, attempt.cause)
                self._sleep(attempt.started + policy.retry_s - time.monotonic())
            else:
                logger.info("%s: camera gone, %s again", self.recording_id, again)

    def _halted(
        self, at: float, attempt: Attempt | None, last_seen: float
    ) -> tuple[StopReason, str] | None:
        """Whether the recording must end now, and why."""
        if self.stop.is_set():
            return "stopped", "stop requested"
        if self.abort.is_set():
            return "failed", "storing the segments failed"
        if at >= self.deadline:
            return "time limit", f"{self.policy.max_s:g} s recorded"
        # A running session that has nothing yet may be connected and probing the stream
        # (ffmpeg reads up to 5 s of it before writing anything): it gets io_timeout_s more.
        waiting = attempt is None or attempt.packets == 0
        grace = 0.0 if attempt is None else self.policy.io_timeout_s
        away = at - last_seen
        if self.policy.reconnect and waiting and away >= self.policy.max_outage_s + grace:
            return "camera lost", f"no stream for {self.policy.max_outage_s:g} s"
        return None

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stop.is_set() or self.abort.is_set():
                return
            time.sleep(min(left, _POLL_S))

    def _command(self, attempt: Attempt, last_seen: float) -> list[str]:
        policy, out = self.policy, attempt.directory
        if self.source.mode == "pull":
            return live_pull_command(
                self.tools.ffmpeg, self.source.url, out, segment_s=self.segment_s,
                io_timeout_s=policy.io_timeout_s,
            )  # fmt: skip
        at = time.monotonic()
        budget = last_seen + policy.max_outage_s if policy.reconnect else self.deadline
        return live_listen_command(
            self.tools.ffmpeg, self.source.url, out, segment_s=self.segment_s,
            io_timeout_s=policy.io_timeout_s, wait_s=max(1.0, min(budget, self.deadline) - at),
        )  # fmt: skip

    def _run_attempt(self, attempt: Attempt, last_seen: float) -> None:
        cmd = self._command(attempt, last_seen)
        status: list[int] = []
        tails: list[Callable[[], str]] = []
        limit = self.deadline - time.monotonic() + self.policy.io_timeout_s + 30
        cause = ""
        try:
            with self.tools.runner.stream(
                cmd, timeout_s=max(limit, 1.0), check=False, status=status
            ) as (out, pump):
                tails.append(pump.text)
                self._read_arrivals(attempt, out, last_seen)
        except _Halt as halt:
            attempt.halt, cause = halt.reason, halt.detail
            attempt.silent = halt.reason is None
        except FfmpegTimeout as exc:
            attempt.halt, cause = "time limit", str(exc)
        except RunnerStopped as exc:
            attempt.halt, cause = "stopped", str(exc)
        returncode = status[0] if status else None
        if not cause:
            cause = _cause(returncode, tails[0]() if tails else "")
        with attempt.lock:
            attempt.returncode = returncode
            attempt.cause = cause
            attempt.ended_at = time.monotonic()

    def _read_arrivals(self, attempt: Attempt, out: IO[bytes], last_seen: float) -> None:
        """Read the arrivals output until ffmpeg ends it, stamping each line; raise ``_Halt``
        to end the session early."""
        fd = out.fileno()
        pending = b""
        while True:
            ready, _, _ = select.select([fd], [], [], _POLL_S)
            at = time.monotonic()
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return  # ffmpeg closed its stdout: the session is over
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    attempt.observe(line, at)
            if (halt := self._halted(at, attempt, last_seen)) is not None:
                raise _Halt(*halt)
            with attempt.lock:
                silent = attempt.last_arrival is not None and (
                    at - attempt.last_arrival > self.policy.io_timeout_s
                )
            if silent:
                raise _Halt(None, f"no data for {self.policy.io_timeout_s:g} s")
