"""The custody path for a stored original: probe, stream-copy segments, SHA-256 each, hash the
keyframes, store, chain and catalogue with custody events.

Nothing here decodes more than the keyframes, so a recording is on record and tamper evident
within seconds (an audio-only recording has none: its audio is cut, hashed and chained alike);
the dense index and the review proxy follow in their own stages and never hold this one up.
The runtime (``workers.stages.SegmentStage``) calls it per message and announces what it
returns.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from catalog.models import Recording, Segment
from catalog.recovered import source_object
from catalog.repository import SYSTEM_ACTOR, Catalog, Event
from ingest.custody import SegmentWriter, kept_tracks, record_probe
from ingest.gpstracks import read_gps
from integrity.keyframes import Keyframes, keyframe_hashes
from store.base import ObjectStore
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools, ffmpeg_version
from transcode.probe import NotVideoError, ProbeResult, probe
from transcode.segmenter import SegmentOutcome, playable, segment_file

Progress = Callable[[str, str, float], None]
"""(recording_id, stage, fraction done 0..1)"""


def no_progress(_recording: str, _stage: str, _fraction: float) -> None:
    return None


def derivable(outcome: SegmentOutcome) -> bool:
    """Whether every segment of ``outcome`` can be cut again from the original as it was cut:
    each one's packets signed, the cut told to ffmpeg by packet (not chosen by it), and those
    cuts the signed first packets of the stream cut on, with nothing lost to damage. Then
    no copy need be kept: ``transcode.segmenter.derive_segments`` makes the same bytes."""
    ranges, cuts = outcome.packets, outcome.cuts
    if ranges is None or cuts is None or outcome.damage is not None:
        return False
    if len(ranges) != len(outcome.segments) or not all(ranges):
        return False
    return tuple(r[0].first for r in ranges[1:]) == cuts


@dataclass(frozen=True)
class Segmented:
    """A recording on record: its segments, and what this call did for it."""

    recording: Recording
    segments: list[Segment]
    footage_s: float = 0.0  # seconds of footage cut by this call (0: done before)
    elapsed_s: float = 0.0


class CustodyPath:
    """OriginalStored → probe, stream-copy segment, SHA-256, keyframe PDQ, store, chain,
    catalogue with custody events (``segment`` returns what is on record)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        work_dir: Path,
        segment_s: float,
        phash_fps: float,
        gap_tolerance_frames: float,
        progress: Progress = no_progress,
        keep_copies: bool = True,
    ) -> None:
        """``keep_copies`` False: a segment that the same cut of the original makes again,
        byte for byte, is signed but not stored (``derivable``; issue 18)."""
        self.catalog = catalog
        self.keep_copies = keep_copies
        self.store = store
        self.tools = tools
        self.work_dir = work_dir
        self.segment_s = segment_s
        self.phash_fps = phash_fps
        self.gap_tolerance_frames = gap_tolerance_frames
        self.progress = progress
        self.writer = SegmentWriter(
            catalog=catalog,
            store=store,
            phash_fps=phash_fps,
            gap_tolerance_frames=gap_tolerance_frames,
        )

    def segment(self, recording_id: str) -> Segmented | None:
        """Put the stored original ``recording_id`` on record; None if it cannot be read
        (flagged ``unreadable`` with a custody event). Idempotent: a recording already
        segmented returns its segments."""
        recording = self.catalog.recording(recording_id)
        if recording.segment_count is not None:
            return Segmented(recording, self.catalog.segments(recording.id))
        if recording.status == "unreadable":
            return None
        started = time.monotonic()
        bucket, key = source_object(self.catalog, recording)  # a recovered stream, if any
        with (
            self.store.local_path(bucket, key) as source,
            ThreadPoolExecutor(1, thread_name_prefix="keyframes") as pool,
        ):
            # The keyframes decode on the other core from the start, while this thread
            # probes, cuts, hashes and stores: all of them only read the original.
            keyframes = pool.submit(keyframe_hashes, self.tools, source)
            try:
                probed = probe(self.tools.runner, self.tools.ffmpeg, source)
            except NotVideoError as exc:
                self._unreadable(recording, str(exc))
                return None
            if probed.video is None:
                keyframes.cancel()  # audio only: no pictures to hash (the run fails, unread)
            record_probe(
                self.catalog, recording.id, probed, status="segmenting", container=probed.container
            )
            track = probed.primary  # the video, or an audio-only recording's audio
            work = self.work_dir / recording.id
            total = max(track.end_s - track.start_s, 1e-3)
            try:
                # the packets are signed of the original only (not of a recovered stream)
                packets = bucket == "originals"
                segments = self._segment(recording, source, probed, work, total, keyframes, packets)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        recording = self.catalog.recording(recording.id)
        return Segmented(recording, segments, total, time.monotonic() - started)

    def _segment(
        self,
        recording: Recording,
        source: Path,
        probed: ProbeResult,
        work: Path,
        total: float,
        keyframes: Future[Keyframes],
        packets: bool,
    ) -> list[Segment]:
        outcome = segment_file(
            self.tools.runner,
            self.tools.ffmpeg,
            source,
            work,
            probed=probed,
            segment_s=self.segment_s,
            timeout_s=self.tools.timeout_s,
            tolerance_frames=self.gap_tolerance_frames,
            on_progress=lambda t: self.progress(recording.id, "segment", min(t / total, 1)),
            hash_packets=packets,
        )
        damage = [recording.damage, probed.describe_damage(), outcome.damage]
        # Hash and store every file while the keyframes still decode on the other core (I/O
        # and hashing here, decoding there); the rows and events follow once both are done.
        keep = self.keep_copies or not derivable(outcome)
        stored = [self.writer.put(recording, p, keep=keep) for p in outcome.segments]
        found = self._keyframes(probed, keyframes, damage)
        ranges = outcome.packets
        segments: list[Segment] = []
        origin = outcome.segments[0].start_s
        # Keyframe k belongs to the segment whose span holds it (half a frame of slack for
        # the timestamp rounding between the source's and the segments' time bases).
        slack = probed.primary.frame_duration_s / 2
        starts = [p.start_s - outcome.shift_s - slack for p in outcome.segments]
        ends = [*starts[1:], math.inf]
        for k, (produced, kept, lo, hi) in enumerate(
            zip(outcome.segments, stored, starts, ends, strict=True)
        ):
            picked = found.between(lo, hi, origin_s=origin - outcome.shift_s) if found else []
            previous = segments[-1].chain if segments else recording.anchor
            segments.append(
                self.writer.add(
                    recording, produced, origin=origin, previous=previous, kind="copy",
                    keyframes=picked, stored=kept, packets=ranges[k] if ranges else (),
                )
            )  # fmt: skip
            self.progress(recording.id, "store", len(segments) / len(outcome.segments))
        self.writer.finish(
            recording,
            segments,
            "copy",
            "; ".join(d for d in damage if d),
            work,
            playback="copy" if playable(probed) else "proxy",
            tracks=kept_tracks(probed),
            gps=read_gps(self.tools, self.store, recording, source, probed, work),
            cutter=ffmpeg_version(self.tools),
        )
        return segments

    @staticmethod
    def _keyframes(
        probed: ProbeResult, keyframes: Future[Keyframes], damage: list[str | None]
    ) -> Keyframes | None:
        """The keyframe hashes, or None: an audio-only recording has none (not damage), and
        keyframes that could not be decoded are noted in ``damage``."""
        if probed.video is None:
            return None
        try:
            return keyframes.result()
        except TranscodeError as exc:  # the custody record goes on; the gap is on record
            damage.append(f"keyframes not hashed: {exc}")
            return None

    def _unreadable(self, recording: Recording, reason: str) -> None:
        damage = recording.damage or f"unreadable: {reason}"
        self.catalog.update_recording(recording.id, status="unreadable", damage=damage)
        self.catalog.add_event(Event("flag.unreadable", SYSTEM_ACTOR, recording.id, reason=damage))
