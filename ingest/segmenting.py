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
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from catalog.models import Recording, Segment
from catalog.recovered import source_object
from catalog.repository import SYSTEM_ACTOR, Catalog, Event
from catalog.tracks import TrackGps
from ingest.custody import (
    PlannedEntry,
    SegmentWriter,
    StoredFile,
    kept_tracks,
    record_probe,
)
from ingest.gpstracks import read_gps
from integrity.keyframes import Keyframes, keyframe_hashes
from store.base import ObjectStore
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools, ffmpeg_version
from transcode.probe import NotVideoError, ProbeResult, probe
from transcode.segmenter import SegmentOutcome, playable, segment_file

# Segment files hashed and stored at once: an object store takes several puts in about the time
# of one (``bench/distributed.py``), and a folder store's fsyncs overlap
STORING = 3

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
class Cut:
    """A recording's segment files cut, hashed and stored (with the GPS its original
    carries), nothing catalogued yet."""

    probed: ProbeResult
    outcome: SegmentOutcome
    stored: list[StoredFile]
    keyframes: Keyframes | None
    damage: list[str | None]
    gps: tuple[TrackGps, ...]
    cutter: str
    footage_s: float
    work: Path  # where the files were cut (removed once catalogued)


@dataclass(frozen=True)
class StagedCut:
    """``CustodyPath.cut_staged``'s result: what ``record_staged`` catalogues."""

    cut: Cut
    started: float  # time.monotonic() when the cut began


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
            work = self.work_dir / recording.id
            try:
                # the packets are signed of the original only (not of a recovered stream)
                cut = self._cut(recording, source, probed, work, keyframes, bucket == "originals")
                segments = self._record(recording, cut)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        recording = self.catalog.recording(recording.id)
        return Segmented(recording, segments, cut.footage_s, time.monotonic() - started)

    def cut_staged(self, recording: Recording, staged: Path) -> StagedCut | None:
        """Cut, hash and store the segments of an original that is still being stored, from
        its staged bytes (``ingest.service``): objects only, nothing catalogued, since the
        recording's row does not exist yet. None: ffmpeg cannot read it (the segment stage
        then judges it from the store). ``record_staged`` catalogues the result."""
        started = time.monotonic()
        # a folder of its own: two ingests of the same file may cut at the same time
        self.work_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{recording.id}.staged-", dir=self.work_dir))
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="keyframes") as pool:
                keyframes = pool.submit(keyframe_hashes, self.tools, staged)
                try:
                    probed = probe(self.tools.runner, self.tools.ffmpeg, staged)
                except NotVideoError:
                    keyframes.cancel()
                    return None
                if probed.video is None:
                    keyframes.cancel()
                cut = self._cut(recording, staged, probed, work, keyframes, True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return StagedCut(cut, started)

    def record_staged(self, recording_id: str, staged: StagedCut) -> Segmented:
        """Catalogue what ``cut_staged`` stored, once the original and its row are on record
        (objects before rows). Idempotent, as ``segment``."""
        try:
            recording = self.catalog.recording(recording_id)
            if recording.segment_count is not None:
                return Segmented(recording, self.catalog.segments(recording.id))
            cut = staged.cut
            record_probe(
                self.catalog, recording.id, cut.probed, status="segmenting",
                container=cut.probed.container,
            )  # fmt: skip
            segments = self._record(recording, cut)
        finally:
            shutil.rmtree(staged.cut.work, ignore_errors=True)
        recording = self.catalog.recording(recording.id)
        elapsed = time.monotonic() - staged.started
        return Segmented(recording, segments, cut.footage_s, elapsed)

    def _cut(
        self,
        recording: Recording,
        source: Path,
        probed: ProbeResult,
        work: Path,
        keyframes: Future[Keyframes],
        packets: bool,
    ) -> Cut:
        """Cut, hash and store the segment files, and the GPS the original carries: the
        objects, nothing catalogued (``_record`` follows)."""
        track = probed.primary  # the video, or an audio-only recording's audio
        total = max(track.end_s - track.start_s, 1e-3)
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
        with ThreadPoolExecutor(STORING, thread_name_prefix="store") as puts:
            stored = list(
                puts.map(lambda p: self.writer.put(recording, p, keep=keep), outcome.segments)
            )
        found = self._keyframes(probed, keyframes, damage)
        gps = read_gps(self.tools, self.store, recording, source, probed, work)
        cutter = ffmpeg_version(self.tools)
        return Cut(probed, outcome, stored, found, damage, gps, cutter, total, work)

    def _record(self, recording: Recording, cut: Cut) -> list[Segment]:
        """Catalogue the segments ``_cut`` stored, chained, and finish the recording. A first
        run stores the playlist while the rows go in (the rows will list the segments just as
        cut); a run after a crash lists the rows it finds."""
        probed, outcome, found = cut.probed, cut.outcome, cut.keyframes
        ranges = outcome.packets
        segments: list[Segment] = []
        origin = outcome.segments[0].start_s
        planned = [
            PlannedEntry(kept.key, p.start_s - origin, p.end_s - origin)
            for p, kept in zip(outcome.segments, cut.stored, strict=True)
        ]
        # as catalogued with its probe: the playlist's gap tolerance is by its frame cadence
        recording = self.catalog.recording(recording.id)
        first = not self.catalog.segments(recording.id)
        # Keyframe k belongs to the segment whose span holds it (half a frame of slack for
        # the timestamp rounding between the source's and the segments' time bases).
        slack = probed.primary.frame_duration_s / 2
        starts = [p.start_s - outcome.shift_s - slack for p in outcome.segments]
        ends = [*starts[1:], math.inf]
        with ThreadPoolExecutor(1, thread_name_prefix="playlist") as pool:
            listed = (
                pool.submit(self.writer.playlist, recording, planned, cut.work) if first else None
            )
            for k, (produced, kept, lo, hi) in enumerate(
                zip(outcome.segments, cut.stored, starts, ends, strict=True)
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
            playlist = listed.result() if listed is not None else None
        if planned != [(s.key, s.start_s, s.end_s) for s in segments]:
            playlist = None  # rows another run catalogued: the playlist lists them (``finish``)
        self.writer.finish(
            recording,
            segments,
            "copy",
            "; ".join(d for d in cut.damage if d),
            cut.work,
            playback="copy" if playable(probed) else "proxy",
            tracks=kept_tracks(probed),
            gps=cut.gps,
            cutter=cut.cutter,
            playlist_sha256=playlist,
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
