"""The storing side of a live recording: while the receiving thread (``ingest.live.receiver``)
runs the ffmpeg sessions, the calling thread stores each segment they close, on the
recording's one timeline, and records the custody events of the camera's comings and goings.

A session's first segment fixes its place on the timeline (``LiveRun._place``: the least
``arrival - pts`` of its packets against session 1's), and its segments are remuxed with their
timestamps shifted by that much before they are probed, hashed, stored, chained, catalogued and
announced.

The original is the segments as received, one after the other (each session's in order; a
concatenation of MPEG-TS streams is an MPEG-TS stream): each segment file is appended to it as
it is taken, before anything else reads it, and its ``segment.stored`` event signs where its
bytes are in it (``source``: offset, size, SHA-256, and the shift of a retimed session). So
ffmpeg writes each packet once, a change to the original is named down to its segment, and a
segment whose copy is not kept is those bytes again (``integrity.segment_files``). When a
session's ffmpeg has exited, the disconnect is recorded; when the recording ends, the original
is stored and the recording finished.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from vigil_verify.continuity import tolerance_s
from vigil_verify.packets import SourceBytes

from catalog.models import Recording, Segment
from catalog.repository import SYSTEM_ACTOR, Catalog, Event, now
from ingest.custody import CustodyListener, SegmentWriter, record_probe
from ingest.live.details import (
    DisconnectedDetail,
    LiveEndedDetail,
    OriginalDetail,
    ReconnectedDetail,
)
from ingest.live.policy import LivePolicy, LiveResult, LiveSource, StopReason
from ingest.live.receiver import Attempt, Receiver
from integrity.keyframes import Keyframes, probe_with_keyframes
from store.base import ObjectStore, sha256_file
from transcode.commands import LIVE_SEGMENT_GLOB, retime_command
from transcode.ffmpeg import FfmpegFailed, Tools, ffmpeg_version
from transcode.probe import NotVideoError, ProbeResult
from transcode.segmenter import SegmentFile

logger = logging.getLogger(__name__)

_STORE_POLL_S = 0.1  # how often the storing thread looks for closed segments (a file read)


class Recorder(Protocol):
    """What a live run uses of its ``LiveRecorder``."""

    catalog: Catalog
    store: ObjectStore
    tools: Tools
    writer: SegmentWriter
    listener: CustodyListener  # the runtime announces each segment (and drains) here
    segment_s: float
    keep_copies: bool  # False: a segment's copy goes once the original holds its bytes


@dataclass
class _Session:
    """An attempt that received footage, as the storing thread sees it."""

    number: int  # 1-based, among sessions
    attempt: Attempt
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


class LiveRun:
    """One live recording: a receiving thread runs the ffmpeg sessions one after another
    (``Receiver.receive``), the calling thread stores what they produce (``_drain``)."""

    def __init__(
        self,
        recorder: Recorder,
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
        self.policy = policy
        self.work = work
        self.keep_device_start = keep_device_start
        self.original = work / "original.ts"
        self.original_size = 0  # bytes appended to it so far
        self.started = time.monotonic()
        self.started_wall = now()
        self.receiver = Receiver(
            recording_id=recording.id, source=source, policy=policy, tools=recorder.tools,
            segment_s=recorder.segment_s, stop=stop, work=work, started=self.started,
        )  # fmt: skip
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

    def run(self) -> LiveResult:
        receiver = threading.Thread(
            target=self.receiver.receive, name=f"live-{self.recording_id}", daemon=True
        )
        receiver.start()
        try:
            while receiver.is_alive():
                receiver.join(timeout=_STORE_POLL_S)
                self._drain()
            self._drain()
        except BaseException:
            self.receiver.abort.set()
            receiver.join(timeout=self.policy.io_timeout_s + 30)
            raise
        reason, detail = self.receiver.ended or ("failed", "the receiver ended without a reason")
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
        while (attempt := self.receiver.attempt(self.cursor)) is not None:
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

    def _session_of(self, attempt: Attempt, packets: int) -> _Session | None:
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
        for path in _closed(session.attempt.directory)[session.done :]:
            if session.shift_s is None and session.attempt.clock()[0] is None and not ended:
                return  # its packets' arrival lines are still on their way
            source = self._append(path)  # the original: every segment as received, in order
            try:
                if source.size == 0:
                    raise NotVideoError(f"{path.name} is empty")
                path, probed, keyframes = self._on_timeline(session, path)
            except (NotVideoError, FfmpegFailed) as exc:
                # Nothing to catalogue: an empty file (a connection that ended before its
                # first frame) or an unreadable one; what arrived is in the original anyway.
                logger.warning("%s: session %d: %s not stored: %s", self.recording_id,
                               session.number, path.name, exc)  # fmt: skip
                if source.size:
                    self.unreadable.append(f"session {session.number} {path.name}")
                session.done += 1
                continue
            video = probed.video
            assert video is not None
            if session.number > 1 and not session.announced:
                assert self.origin_s is not None
                self._announce_reconnect(session, timeline_start=video.start_s - self.origin_s)
            assert session.shift_s is not None
            self._store(session, path, probed, keyframes, replace(source, shift_s=session.shift_s))
            session.done += 1

    def _on_timeline(
        self, session: _Session, path: Path
    ) -> tuple[Path, ProbeResult, Keyframes | None]:
        """The segment on the recording's timeline (retimed for a later session), probed, with
        its keyframes hashed: one ffmpeg run probes it and hashes its keyframes (the custody
        path's perceptual hashes), on the timestamps it is stored with."""
        tools = self.r.tools
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
        return path, probed, keyframes

    def _append(self, path: Path) -> SourceBytes:
        """Append a segment file as received to the original; where it is in it."""
        offset = self.original_size
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as src, self.original.open("ab") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
                size += len(block)
        self.original_size += size
        return SourceBytes(offset=offset, size=size, sha256=digest.hexdigest())

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
        self,
        session: _Session,
        path: Path,
        probed: ProbeResult,
        keyframes: Keyframes | None,
        source: SourceBytes,
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
        # Without copies (``derive``), the copy is stored without retention: the original
        # holds these bytes once it is stored, and the copy is deleted then (``compact``).
        # Session 1's file is the very bytes appended to the original, hashed then.
        hashed = (source.sha256, source.size) if source.shift_s == 0.0 else None
        stored = r.writer.put(recording, produced, retain=r.keep_copies, hashed=hashed)
        row = r.writer.add(
            recording, produced, origin=self.origin_s, previous=chain, kind="copy",
            keyframes=hashes, stored=stored, source=source,
        )  # fmt: skip
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

    def _close(self, attempt: Attempt, session: _Session | None) -> None:
        """``attempt``'s ffmpeg has exited and its segments are stored: append what else it
        received to the original (a segment it never closed), and record the disconnect."""
        listed = {p.name for p in _closed(attempt.directory)}
        for left in sorted(attempt.directory.glob(LIVE_SEGMENT_GLOB)):
            if left.name not in listed and left.stat().st_size:
                logger.warning("%s: %s was never closed: in the original, not catalogued",
                               self.recording_id, left.name)  # fmt: skip
                self._append(left)
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
        r.writer.finish(
            recording, self.segments, "copy", damage, self.work, cutter=ffmpeg_version(r.tools)
        )
        r.listener.recording_segmented(recording.id, len(self.segments))
