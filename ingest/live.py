"""Live streams: segments stored, catalogued and announced while the stream is still recording,
and one recording kept across the camera's disconnects, with each outage a recorded gap.

Sources (``LiveSource``):

- **pull**: any URL ffmpeg reads (``rtsp://``, ``http(s)://``, ``tcp://``, a pull from an RTMP
  server, a file). When the stream is lost the recorder pulls again at once, then every
  ``LivePolicy.retry_s``, until the camera is back or ``LivePolicy.max_outage_s`` has passed.
- **push**: Vigil listens on ``rtmp://HOST:PORT/APP/KEY`` (ffmpeg ``-listen 1``); the camera
  connects and publishes. When it disconnects the listening ffmpeg exits, and the recorder
  listens again at once.

One **session** is one ffmpeg run that received footage. Each writes ~``segment_s`` MPEG-TS
segments, the stream as received, and one line per video packet on stdout (``framecrc``,
flushed per packet), which the receiving thread stamps with the server's monotonic clock as
it reads it. Each segment, once closed, is hashed, stored, chained and catalogued, and a
``segment.stored`` message goes out at once, so the perceptual workers run while the camera is
still recording. Segment indices and the hash chain run on across sessions.

**The recording's timeline across sessions.** A new session's timestamps start over (a new
RTMP publisher starts at 0), so its place on the timeline comes from the server clock. For
every video packet the receiver knows its arrival time ``S`` and its ``pts``. A frame cannot
arrive before it was captured, and a live source sends in real time, so ``S - pts`` is the
session's clock offset plus that packet's latency (encoder, network, ffmpeg), and its minimum
``D`` over the session's first segment is the tightest bound the stream gives: reached by the
packets that came quickest, never lowered by a burst (the first seconds, which ffmpeg holds
while it probes the stream, a relay's GOP cache, a stall): those only arrive late. A frame at
``pts`` of session k is put at ``pts + D_k`` on the server clock, so on the recording's
timeline (zero = the first frame of session 1) at ``pts + (D_k - D_1) - origin_s``; session
k's segments are remuxed with their timestamps moved by ``D_k - D_1`` (``retime_command``:
packets untouched), so every segment of the recording is on one timeline with one
``origin_s``, as the perceptual hashing, verification and export expect. The outage is then
the gap between the last segment of one session and the first of the next, where the case
timeline shows it. Its error is the difference between the two sessions' least latencies (the
same camera over the same path: milliseconds) plus the camera's clock-rate drift over a
session (50 ppm is 0.18 s an hour). Measured on loopback: gaps within 0.01 s of the gap in an
encoder's own clock (an encoder kept running behind a link that was cut and restored), and
sessions of restarted publishers within 0.005 s of where the publishers' own progress reports
put them. Rejected alternatives: the server time when a session connected or its first
segment file appeared (ffmpeg first probes the stream, seconds during which nothing is
written: about 3 s for a 15 fps RTMP publisher), and ``-use_wallclock_as_timestamps`` (it
would replace the evidence's own timestamps with arrival times, network jitter included).
The device clock is unknown for a live stream: unless the caller gives ``device_start``, it
is set to the server time of the timeline's zero.

The receiver also watches for a session that receives nothing for ``io_timeout_s`` (a camera
that lost power or network leaves its connection open; ffmpeg's own ``-rw_timeout`` noticed
it only after about twice its value) and ends it as a disconnect. ffmpeg's RTMP listener does
not check APP/KEY (a publish to another key is only logged), and between a disconnect and the
next listen (about 0.1-0.2 s) a publisher is refused and must retry.

Every disconnect and reconnect is a custody event (``live.disconnected``,
``live.reconnected``), and so is the end of the recording (``live.ended``, with why). The
original is the stream as received: each session's MPEG-TS appended in order to one
``original.ts`` (a concatenation of MPEG-TS streams is an MPEG-TS stream; ffmpeg reads every
packet of it, its timestamps starting over at each session). It is stored when the recording
ends, with its hash.

The chain cannot start from the original's hash (it is complete only at the end), so a live
recording's chain starts from an anchor fixed when recording begins; the original's hash is
recorded when it ends.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import select
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel
from vigil_verify.continuity import tolerance_s

from catalog.models import Recording, Segment
from catalog.repository import SYSTEM_ACTOR, Catalog, Event, now
from ingest.custody import CustodyListener, SegmentWriter, record_probe
from ingest.errors import IngestError
from ingest.service import RecordingMetadata
from integrity.keyframes import Keyframes, probe_with_keyframes
from store.base import ObjectStore, sha256_file
from transcode.commands import live_listen_command, live_pull_command, retime_command
from transcode.ffmpeg import FfmpegFailed, FfmpegTimeout, RunnerStopped, Tools, redact
from transcode.probe import NotVideoError, ProbeResult
from transcode.segmenter import SegmentFile

logger = logging.getLogger(__name__)

SourceMode = Literal["pull", "push"]
StopReason = Literal["end of stream", "stopped", "time limit", "camera lost", "failed"]
"""Why a live recording ended: its one session ended (``max_outage_s=0``); the caller's stop
event; ``LivePolicy.max_s``; no camera for ``max_outage_s``; an error (the footage received so
far is still stored)."""

_POLL_S = 0.25  # how often the receiver looks at the stop event and the deadlines
_STORE_POLL_S = 0.1  # how often the storing thread looks for closed segments (a file read)
_NOPTS = -(2**63)


@dataclass(frozen=True)
class LiveSource:
    """Where a live stream comes from: ``pull`` reads ``url``; ``push`` listens on it
    (``rtmp://HOST:PORT/APP/KEY``) for the camera to publish."""

    url: str
    mode: SourceMode = "pull"

    def __post_init__(self) -> None:
        if self.mode == "push" and not self.url.lower().startswith("rtmp://"):
            raise ValueError(f"a push is received on rtmp://HOST:PORT/APP/KEY, not {self.url!r}")


@dataclass(frozen=True)
class LivePolicy:
    """How long to record and how to ride out the camera's disconnects.

    ``max_outage_s`` is how long the camera may be away (counted from the last packet
    received, or from the start before the first) before the recording ends; 0 means no
    reconnect: the first session's end ends the recording (a listener still waits up to
    ``max_s`` for its one publisher). ``retry_s``: a pull that finds no stream is tried again
    this often. ``io_timeout_s``: a session that receives nothing for this long is lost (given
    to ffmpeg as its I/O timeout, and watched by the recorder too, so that a camera that went
    silent without closing its connection is noticed); a session still connecting when the
    outage budget runs out gets this long too (ffmpeg probes up to 5 s of a new stream before
    it writes anything).
    """

    max_s: float = 24 * 3600.0
    max_outage_s: float = 300.0
    retry_s: float = 2.0
    io_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_s <= 0 or self.max_outage_s < 0 or self.retry_s <= 0:
            raise ValueError("max_s and retry_s must be positive, max_outage_s not negative")
        if self.io_timeout_s <= 0:
            raise ValueError("io_timeout_s must be positive")

    @property
    def reconnect(self) -> bool:
        return self.max_outage_s > 0


class LiveDetail(BaseModel):
    """A live recording began: its hash chain starts from ``anchor``."""

    anchor: str
    source: str
    mode: SourceMode = "pull"


class OriginalDetail(BaseModel):
    """A live recording ended: the whole stream as received is stored with this hash."""

    sha256: str
    size: int
    original_key: str


class DisconnectedDetail(BaseModel):
    """The camera's session ``session`` ended (the connection closed, failed or went silent).

    ``last_frame_at`` is the end of its last frame by the server clock, and ``timeline_end_s``
    the same on the recording's timeline (both None if the session left no segment);
    ``detected_at`` is when the recorder saw the session end (after ``io_timeout_s`` of
    silence when the connection did not close)."""

    session: int
    segments: int
    last_frame_at: datetime | None
    timeline_end_s: float | None
    last_packet_at: datetime | None
    detected_at: datetime
    cause: str


class ReconnectedDetail(BaseModel):
    """The camera is back: session ``session`` begins.

    ``first_frame_at``/``timeline_start_s``: its first frame by the server clock and on the
    recording's timeline. ``outage_s``: from the end of the previous session's last frame to
    this first frame, i.e. the gap the timeline shows. ``silence_s``: between the last packet
    read before and the first packet read after (it includes ffmpeg's probing of the new
    stream). ``attempts``: ffmpeg sessions started to get it back (pulls, or listens).
    ``shift_s``: added to this session's own timestamps to put it on the timeline."""

    session: int
    first_frame_at: datetime | None
    timeline_start_s: float | None
    outage_s: float | None
    silence_s: float | None
    attempts: int
    shift_s: float | None


class LiveEndedDetail(BaseModel):
    """The live recording ended, and why."""

    reason: StopReason
    detail: str
    sessions: int
    segments: int
    outages_s: list[float]


@dataclass(frozen=True)
class LiveResult:
    recording_id: str
    segments: int
    sha256: str
    stopped_by: str  # "end of stream", or why the recording ended (``reason`` and detail)
    reason: StopReason = "end of stream"
    sessions: int = 1
    outages_s: tuple[float, ...] = ()  # the gaps between sessions on the timeline


class _Halt(IngestError):
    """Ends the current ffmpeg session from inside the runner's block (which then SIGTERMs
    ffmpeg, and ffmpeg closes its outputs properly). With a ``reason`` the recording ends
    too; without, only this session (the source went silent)."""

    def __init__(self, reason: StopReason | None, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Attempt:
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


@dataclass
class _Session:
    """An attempt that received footage, as the storing thread sees it."""

    number: int  # 1-based, among sessions
    attempt: _Attempt
    attempts: int  # ffmpeg runs it took, counted from the end of the session before
    done: int = 0  # rows of its segments.csv stored
    shift_s: float | None = None  # fixed when its first segment is stored
    segments: list[Segment] = field(default_factory=list)
    announced: bool = False


def _closed(directory: Path) -> list[Path]:
    """The segments an ffmpeg session has closed, in order (its ``segments.csv``)."""
    listing = directory / "segments.csv"
    if not listing.exists():
        return []
    with listing.open(newline="") as fh:
        return [directory / row[0] for row in csv.reader(fh) if row]


_COMPLAINTS = ("error", "refused", "timed out", "reset", "closed", "end of file", "not found")


def _cause(returncode: int | None, stderr_tail: str) -> str:
    """What ended an ffmpeg session, from its exit code and the end of its stderr."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    complaint = next((x for x in reversed(lines) if any(w in x.lower() for w in _COMPLAINTS)), "")
    if returncode == 0:
        return f"end of stream ({complaint})" if complaint else "end of stream"
    return f"ffmpeg exited with code {returncode}: {complaint or (lines[-1] if lines else '')}"


class LiveRecorder:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        writer: SegmentWriter,
        listener: CustodyListener,
        work_dir: Path,
        segment_s: float,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.writer = writer
        self.listener = listener  # the runtime announces each segment (and drains) here
        self.work_dir = work_dir
        self.segment_s = segment_s

    def record(
        self,
        source: str | LiveSource,
        metadata: RecordingMetadata,
        *,
        actor: str,
        policy: LivePolicy | None = None,
        stop: threading.Event | None = None,
        max_s: float | None = None,
    ) -> LiveResult:
        """Record ``source`` (a URL is pulled) until ``policy`` or ``stop`` ends it; return
        when the original is stored and the listener told the recording is segmented.

        Without ``policy`` one session is recorded, as before reconnects existed
        (``LivePolicy(max_outage_s=0)``); ``max_s``, if given, overrides ``policy.max_s``.
        """
        live = source if isinstance(source, LiveSource) else LiveSource(source)
        if policy is None:
            policy = LivePolicy(max_outage_s=0.0)
        if max_s is not None:
            policy = replace(policy, max_s=max_s)
        recording = self._begin(live, metadata, actor)
        work = self.work_dir / recording.id
        work.mkdir(parents=True, exist_ok=True)
        run = _LiveRun(
            self, recording, live, policy, stop or threading.Event(), work,
            keep_device_start=metadata.device_start is not None,
        )  # fmt: skip
        result = run.run()
        shutil.rmtree(work, ignore_errors=True)
        return result

    def _begin(self, source: LiveSource, metadata: RecordingMetadata, actor: str) -> Recording:
        recording_id = f"rec-{uuid.uuid4().hex[:16]}"
        received = now()
        anchor = hashlib.sha256(
            f"vigil-live:{recording_id}:{metadata.device_id}:{received.isoformat()}".encode()
        ).hexdigest()
        row = Recording(
            id=recording_id,
            sha256=f"live-{uuid.uuid4().hex}",  # replaced by the original's hash at the end
            size=0,
            original_key=f"{recording_id}/original.ts",
            original_name=metadata.original_name,
            device_id=metadata.device_id,
            officer_id=metadata.officer_id,
            category=metadata.category,
            device_start=metadata.device_start or received,
            received_at=received,
            status="recording",
            chain_anchor=anchor,
        )
        verb = "listening for a push on" if source.mode == "push" else "live stream from"
        created, _ = self.catalog.add_recording(
            row,
            Event(
                "ingest.live",
                actor,
                recording_id,
                reason=f"{verb} {redact(source.url)}",
                detail=LiveDetail(anchor=anchor, source=redact(source.url), mode=source.mode),
            ),
        )
        return created


class _LiveRun:
    """One live recording: a receiving thread runs the ffmpeg sessions one after another
    (``_receive``), the calling thread stores what they produce (``_drain``)."""

    def __init__(
        self,
        recorder: LiveRecorder,
        recording: Recording,
        source: LiveSource,
        policy: LivePolicy,
        stop: threading.Event,
        work: Path,
        *,
        keep_device_start: bool,
    ) -> None:
        self.r = recorder
        self.recording_id = recording.id
        self.source = source
        self.policy = policy
        self.stop = stop
        self.abort = threading.Event()  # the storing side failed: end the sessions
        self.work = work
        self.keep_device_start = keep_device_start
        self.original = work / "original.ts"
        self.started = time.monotonic()
        self.started_wall = now()
        self.deadline = self.started + policy.max_s
        self.lock = threading.Lock()
        self.attempts: list[_Attempt] = []
        self.ended: tuple[StopReason, str] | None = None
        # The storing side's state.
        self.cursor = 0  # attempts[:cursor] are fully stored
        self.attempts_since = 0  # ffmpeg runs since the last session (for the next one)
        self.sessions: list[_Session] = []
        self.segments: list[Segment] = []
        self.origin_s: float | None = None  # source pts of the timeline's zero
        self.offset_1: float | None = None  # D_1: session 1's arrival - pts (segment timestamps)
        self.zero: float | None = None  # monotonic server time of the timeline's zero
        self.outages: list[float] = []
        self.unreadable: list[str] = []  # segment files with bytes but no readable video

    # -- the calling thread ---------------------------------------------------------------

    def run(self) -> LiveResult:
        receiver = threading.Thread(
            target=self._receive, name=f"live-{self.recording_id}", daemon=True
        )
        receiver.start()
        try:
            while receiver.is_alive():
                receiver.join(timeout=_STORE_POLL_S)
                self._drain()
            self._drain()
        except BaseException:
            self.abort.set()
            receiver.join(timeout=self.policy.io_timeout_s + 30)
            raise
        reason, detail = self.ended or ("failed", "the receiver ended without a reason")
        stopped_by = reason if detail == reason or not detail else f"{reason}: {detail}"
        self._end(reason, stopped_by)
        final = self.r.catalog.recording(self.recording_id)
        return LiveResult(
            self.recording_id,
            len(self.segments),
            final.sha256,
            stopped_by,
            reason,
            len(self.sessions),
            tuple(self.outages),
        )

    def _wall(self, monotonic_s: float) -> datetime:
        return self.started_wall + timedelta(seconds=monotonic_s - self.started)

    def _drain(self) -> None:
        """Store every segment closed since the last call; close the sessions that ended."""
        while True:
            with self.lock:
                if self.cursor >= len(self.attempts):
                    return
                attempt = self.attempts[self.cursor]
            with attempt.lock:
                ended = attempt.ended_at is not None  # read first: then its files are final
                packets = attempt.packets
            session = self._session_of(attempt, packets)
            if session is not None:
                self._take_closed(session, ended=ended)
            if not ended:
                return
            self._close(attempt, session)
            self.cursor += 1

    def _session_of(self, attempt: _Attempt, packets: int) -> _Session | None:
        if self.sessions and self.sessions[-1].attempt is attempt:
            return self.sessions[-1]
        if packets == 0 and not any(f.stat().st_size for f in _closed(attempt.directory)):
            return None  # not connected, or nothing but empty files
        session = _Session(len(self.sessions) + 1, attempt, self.attempts_since + 1)
        self.sessions.append(session)
        self.attempts_since = 0
        return session

    def _take_closed(self, session: _Session, *, ended: bool) -> None:
        """Store, catalogue and announce every segment of ``session`` ffmpeg has closed."""
        tools = self.r.tools
        for path in _closed(session.attempt.directory)[session.done :]:
            if session.shift_s is None and session.attempt.clock()[0] is None and not ended:
                return  # its packets' arrival lines are still on their way
            size = path.stat().st_size
            try:
                if size == 0:
                    raise NotVideoError(f"{path.name} is empty")
                # One ffmpeg run probes the segment and hashes its keyframes (the custody
                # path's perceptual hashes), on the timestamps it is stored with.
                probed: ProbeResult | None = None
                keyframes: Keyframes | None = None
                if session.shift_s is None:
                    probed, keyframes = probe_with_keyframes(tools, path)
                    session.shift_s = self._place(session, probed)
                if session.shift_s != 0.0:
                    retimed = path.with_name(f"retimed-{path.name}")
                    tools.runner.run(
                        retime_command(tools.ffmpeg, path, retimed, shift_s=session.shift_s),
                        timeout_s=tools.timeout_s,
                    )
                    path, probed = retimed, None
                if probed is None:
                    probed, keyframes = probe_with_keyframes(tools, path)
            except (NotVideoError, FfmpegFailed) as exc:
                # Nothing to catalogue: an empty file (a connection that ended before its
                # first frame) or an unreadable one; what arrived is in the original anyway.
                logger.warning("%s: session %d: %s not stored: %s", self.recording_id,
                               session.number, path.name, exc)  # fmt: skip
                if size:
                    self.unreadable.append(f"session {session.number} {path.name}")
                session.done += 1
                continue
            video = probed.video
            assert video is not None
            if session.number > 1 and not session.announced:
                assert self.origin_s is not None
                self._announce_reconnect(session, timeline_start=video.start_s - self.origin_s)
            self._store(session, path, probed, keyframes)
            session.done += 1

    def _place(self, session: _Session, probed: ProbeResult) -> float:
        """Fix where ``session`` goes on the timeline from its first segment (``probed``) and
        the arrival times of its packets: the shift for its timestamps."""
        video = probed.video
        assert video is not None
        first_pts, min_offset = session.attempt.clock()
        if first_pts is None or not math.isfinite(min_offset):
            # No arrival was read (ffmpeg killed before its first line): the session's start.
            logger.warning("%s: session %d placed by its start time", self.recording_id,
                           session.number)  # fmt: skip
            offset = session.attempt.started - video.start_s
        else:
            # The arrivals output and the segments may differ by a constant (the TS muxer
            # shifts negative timestamps): compare the same packet, the first video one.
            delta = float(video.pts[0] * video.stream.time_base) - first_pts
            offset = min_offset - delta
        if self.offset_1 is None:  # session 1 defines the timeline
            self.offset_1 = offset
            self.zero = offset + video.start_s
            self._first_segment(probed)
            return 0.0
        return offset - self.offset_1

    def _first_segment(self, probed: ProbeResult) -> None:
        assert self.zero is not None
        # Without a device clock, the recording starts at its first frame by the server's.
        also = {} if self.keep_device_start else {"device_start": self._wall(self.zero)}
        record_probe(self.r.catalog, self.recording_id, probed, container="mpegts", **also)

    def _store(
        self, session: _Session, path: Path, probed: ProbeResult, keyframes: Keyframes | None
    ) -> None:
        r = self.r
        video = probed.video
        assert video is not None
        if self.origin_s is None:
            self.origin_s = video.start_s
        recording = r.catalog.recording(self.recording_id)
        chain = self.segments[-1].chain if self.segments else recording.chain_anchor
        assert chain is not None
        index = len(self.segments)
        produced = SegmentFile(
            index, path, video.start_s, video.end_s, video.count,
            tuple(video.jumps(tolerance_s(
                video.frame_duration_s, video.hold_s, r.writer.gap_tolerance_frames
            ))),
        )  # fmt: skip
        hashes = keyframes.between(-math.inf, math.inf, origin_s=self.origin_s) if keyframes else []
        row = r.writer.add(
            recording, produced, origin=self.origin_s, previous=chain, kind="copy", keyframes=hashes
        )
        self.segments.append(row)
        session.segments.append(row)
        r.listener.segment_catalogued(row)
        logger.info("%s: live segment %d stored", self.recording_id, index)

    def _announce_reconnect(self, session: _Session, *, timeline_start: float | None) -> None:
        session.announced = True
        previous = self.sessions[-2]
        before = previous.segments[-1].end_s if previous.segments else None
        outage: float | None = None
        if timeline_start is not None and before is not None:
            outage = timeline_start - before
            self.outages.append(round(outage, 6))
        last = previous.attempt.last_arrival
        first = session.attempt.first_arrival
        silence = round(first - last, 6) if first is not None and last is not None else None
        detail = ReconnectedDetail(
            session=session.number,
            first_frame_at=(
                self._wall(self.zero + timeline_start)
                if self.zero is not None and timeline_start is not None
                else None
            ),
            timeline_start_s=timeline_start,
            outage_s=outage,
            silence_s=silence,
            attempts=session.attempts,
            shift_s=session.shift_s,
        )
        logger.warning(
            "%s: camera back (session %d) after %s", self.recording_id, session.number,
            f"{outage:.2f} s" if outage is not None else "an outage",
        )  # fmt: skip
        self.r.catalog.add_event(
            Event("live.reconnected", SYSTEM_ACTOR, self.recording_id, detail=detail)
        )

    def _close(self, attempt: _Attempt, session: _Session | None) -> None:
        """``attempt``'s ffmpeg has exited and its segments are stored: append what it
        received to the original, and record the disconnect."""
        part = attempt.directory / "original.ts"
        if part.exists() and part.stat().st_size > 0:
            with part.open("rb") as src, self.original.open("ab") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        shutil.rmtree(attempt.directory, ignore_errors=True)
        if session is None:
            self.attempts_since += 1
            return
        if session.number > 1 and not session.announced:
            self._announce_reconnect(session, timeline_start=None)
        if attempt.halt is not None:
            return  # the recording was ended, the camera did not leave
        assert attempt.ended_at is not None
        last = session.segments[-1].end_s if session.segments else None
        detail = DisconnectedDetail(
            session=session.number,
            segments=len(session.segments),
            last_frame_at=(
                self._wall(self.zero + last) if self.zero is not None and last is not None else None
            ),
            timeline_end_s=last,
            last_packet_at=(
                self._wall(attempt.last_arrival) if attempt.last_arrival is not None else None
            ),
            detected_at=self._wall(attempt.ended_at),
            cause=attempt.cause,
        )
        logger.warning("%s: camera gone (session %d): %s", self.recording_id, session.number,
                       attempt.cause)  # fmt: skip
        self.r.catalog.add_event(
            Event("live.disconnected", SYSTEM_ACTOR, self.recording_id, detail=detail)
        )

    def _end(self, reason: StopReason, stopped_by: str) -> None:
        r = self.r
        recording = r.catalog.recording(self.recording_id)
        r.catalog.add_event(
            Event(
                "live.ended",
                SYSTEM_ACTOR,
                recording.id,
                reason=stopped_by,
                detail=LiveEndedDetail(
                    reason=reason,
                    detail=stopped_by,
                    sessions=len(self.sessions),
                    segments=len(self.segments),
                    outages_s=self.outages,
                ),
            )
        )
        if not self.original.exists() or not self.segments:
            r.catalog.update_recording(
                recording.id, status="unreadable", damage=f"no footage received ({stopped_by})"
            )
            return
        sha, size = sha256_file(self.original)
        r.store.put_file("originals", recording.original_key, self.original, sha,
                         category=recording.category)  # fmt: skip
        r.catalog.update_recording(recording.id, sha256=sha, size=size)
        r.catalog.add_event(
            Event(
                "original.stored",
                SYSTEM_ACTOR,
                recording.id,
                detail=OriginalDetail(sha256=sha, size=size, original_key=recording.original_key),
            )
        )
        damage = f"recording stopped: {stopped_by}" if reason == "failed" else ""
        if self.unreadable:
            damage = "; ".join(
                [*([damage] if damage else []),
                 f"not catalogued, unreadable (in the original): {', '.join(self.unreadable)}"]
            )  # fmt: skip
        r.writer.finish(recording, self.segments, "copy", damage, self.work)
        r.listener.recording_segmented(recording.id, len(self.segments))

    # -- the receiving thread -------------------------------------------------------------

    def _receive(self) -> None:
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
            attempt = _Attempt(len(self.attempts) + 1, self.work / f"a{len(self.attempts) + 1:04d}",
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
        self, at: float, attempt: _Attempt | None, last_seen: float
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

    def _command(self, attempt: _Attempt, last_seen: float) -> list[str]:
        r, policy, out = self.r, self.policy, attempt.directory
        original = out / "original.ts"
        if self.source.mode == "pull":
            return live_pull_command(
                r.tools.ffmpeg, self.source.url, out, segment_s=r.segment_s, original=original,
                io_timeout_s=policy.io_timeout_s,
            )  # fmt: skip
        at = time.monotonic()
        budget = last_seen + policy.max_outage_s if policy.reconnect else self.deadline
        return live_listen_command(
            r.tools.ffmpeg, self.source.url, out, segment_s=r.segment_s, original=original,
            io_timeout_s=policy.io_timeout_s, wait_s=max(1.0, min(budget, self.deadline) - at),
        )  # fmt: skip

    def _run_attempt(self, attempt: _Attempt, last_seen: float) -> None:
        cmd = self._command(attempt, last_seen)
        status: list[int] = []
        tails: list[Callable[[], str]] = []
        limit = self.deadline - time.monotonic() + self.policy.io_timeout_s + 30
        cause = ""
        try:
            with self.r.tools.runner.stream(
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

    def _read_arrivals(self, attempt: _Attempt, out: IO[bytes], last_seen: float) -> None:
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
