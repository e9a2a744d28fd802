"""Storing and cataloguing segments as they are made: for a whole file (``ingest.segmenting``)
and for a live stream, one segment at a time while it is still being recorded (``ingest.live``).

Each segment: SHA-256, the object stored write-once, then the row that points at it, with its
link in the recording's hash chain. When the recording ends: the HLS playlist, the recording's
totals, and a custody event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple, Protocol

from pydantic import BaseModel
from vigil_verify.chain import ChainEntry, link
from vigil_verify.packets import PacketRange, SourceBytes, ranges_digest

from catalog.clock import wall_clock
from catalog.gaps import recording_tolerance_s
from catalog.models import Recording, Segment
from catalog.repository import SYSTEM_ACTOR, Catalog, Event
from catalog.tracks import KeptTrack, TrackGps, tracks_json
from ingest.errors import IngestError
from integrity.keyframes import KeyframeHash
from store.base import ObjectStore, sha256_file
from transcode.hls import PlaylistEntry, playlist
from transcode.probe import ProbeResult
from transcode.segmenter import SegmentFile


class CustodyListener(Protocol):
    """Told of custody progress as it happens (a live stream's segments as they close). The
    runtime (``workers``) implements it by putting messages on the bus: ingest itself
    publishes nothing."""

    def segment_catalogued(self, row: Segment) -> None: ...

    def recording_segmented(self, recording_id: str, count: int) -> None: ...


class SegmentConflict(IngestError):
    """A position is already catalogued with other content (a non-deterministic re-run)."""


class SegmentDetail(BaseModel):
    count: int
    playback: str
    chain_head: str
    playlist_sha256: str
    damage: str | None
    # the subtitle, data and timecode tracks and where each is kept (None: not listed, as for
    # a live stream, whose input is not probed for them)
    tracks: tuple[KeptTrack, ...] | None = None
    # the GPS read out of those tracks, each a derived object (``ingest.gpstracks``)
    gps: tuple[TrackGps, ...] = ()
    # the ffmpeg that cut (or, live, received) the segments: a file made again by another
    # ffmpeg that is not the signed bytes is explained by it (None: logged before)
    cutter: str | None = None


class SegmentStoredDetail(BaseModel):
    """The custody event of one segment: both what it is and its place in the chain
    (``vigil_verify`` reads these fields from the signed log)."""

    index: int
    key: str
    sha256: str
    size: int
    kind: str
    start_s: float  # on the recording's timeline (0 = its first frame)
    end_s: float
    origin_s: float  # the source timestamp of the timeline's zero
    frames: int
    previous: str
    chain: str
    keyframes: list[KeyframeHash] = []  # PDQ of each keyframe in it, on the custody path
    # its packets in the original, per stream (``vigil_verify.packets``, issue 18): what
    # names a change to the original down to its segment, and survives a remux
    packets: list[PacketRange] = []
    # False: no copy is stored; ``sha256`` is of the file custody cut, which the same cut of
    # the original makes again (``integrity.segment_files``, issue 18)
    kept: bool = True
    # a live segment's bytes in the original (issue 18): the original is the segments as
    # received, one after the other, so this range names a change to it down to its segment
    source: SourceBytes | None = None


def record_probe(catalog: Catalog, recording_id: str, probed: ProbeResult, **also: object) -> None:
    """Catalogue what the probe found about a recording's streams (and ``also``).

    An audio-only recording has no video codec, size or frame rate; its ``frame_hold_s`` is
    the longest normal interval between its audio packets, what its gaps are judged by.
    ``audio_tracks``: how many audio tracks its segments carry, every one byte-copied (none
    when no audio track has a packet: then none is cut); ``audio_codec`` is the first's.
    ``rotation`` (video only): the clockwise turn that makes its pictures upright."""
    video = probed.video
    catalog.update_recording(
        recording_id,
        video_codec=video.stream.codec if video else None,
        audio_codec=probed.audio.stream.codec if probed.audio else None,
        audio_tracks=len(probed.audio_tracks) if probed.audio is not None else 0,
        width=video.stream.width if video else None,
        height=video.stream.height if video else None,
        fps=round(video.fps, 3) if video else None,
        frame_hold_s=probed.primary.hold_s,
        # the turn to upright (issue 17): what stored segments are decoded with
        **({"rotation": probed.rotation} if video else {}),
        **also,
    )


def kept_tracks(probed: ProbeResult) -> tuple[KeptTrack, ...]:
    """The probed subtitle, data and timecode tracks, each kept in the original only: the
    segments are MPEG-TS with only the video and audio mapped (``transcode.commands``)."""
    return tuple(
        KeptTrack(index=t.index, codec=t.codec, kind=t.kind, kept="original")
        for t in probed.extra_tracks
    )


def playlist_key(recording_id: str) -> str:
    return f"{recording_id}/index.m3u8"


class Listed(Protocol):
    """A file an HLS playlist lists: a segment, or a file of the review proxy (read only)."""

    @property
    def key(self) -> str: ...

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...


def store_playlist(
    store: ObjectStore,
    recording: Recording,
    files: Sequence[Listed],
    *,
    path: Path,
    key: str,
    gap_tolerance_frames: float,
    retain: bool = True,
) -> str:
    """Write the HLS playlist of ``files`` to ``path`` (with the recording's wall clock, and a
    discontinuity at each gap), store it as ``key`` (``retain`` False: without retention, a
    cache's); return its SHA-256."""
    tolerance = recording_tolerance_s(recording, gap_tolerance_frames)
    text = playlist(
        [PlaylistEntry(f.key.rpartition("/")[2], f.start_s, f.end_s) for f in files],
        wall_start=wall_clock(recording, 0.0, corrected=recording.clock_offset_s is not None),
        gap_tolerance_s=tolerance,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sha, _size = sha256_file(path)
    store.put_file("derived", key, path, sha, category=recording.category, retain=retain)
    return sha


class PlannedEntry(NamedTuple):
    """A segment as its row will list it (``Listed``), before the row is written."""

    key: str
    start_s: float
    end_s: float


class StoredFile(NamedTuple):
    key: str
    sha256: str
    size: int
    kept: bool = True


class SegmentWriter:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        phash_fps: float,
        gap_tolerance_frames: float,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.phash_fps = phash_fps
        self.gap_tolerance_frames = gap_tolerance_frames

    def put(
        self,
        recording: Recording,
        produced: SegmentFile,
        *,
        keep: bool = True,
        retain: bool = True,
        hashed: tuple[str, int] | None = None,
    ) -> StoredFile:
        """Hash the segment file and store it write-once (no catalogue row yet); with
        ``keep`` False, only hash it: its key is where a copy would be; with ``retain`` False,
        store it without retention (a live segment's copy until the original holds it);
        ``hashed``: its SHA-256 and size, when the caller has just hashed it."""
        sha, size = hashed if hashed is not None else sha256_file(produced.path)
        key = f"{recording.id}/seg-{produced.index:05d}-{sha[:12]}{produced.path.suffix}"
        if keep:
            self.store.put_file(
                "derived", key, produced.path, sha, category=recording.category, retain=retain
            )
        return StoredFile(key, sha, size, keep)

    def add(
        self,
        recording: Recording,
        produced: SegmentFile,
        *,
        origin: float,
        previous: str,
        kind: str,
        keyframes: Sequence[KeyframeHash] = (),
        stored: StoredFile | None = None,
        packets: Sequence[PacketRange] = (),
        source: SourceBytes | None = None,
    ) -> Segment:
        """Store and catalogue one segment; ``origin`` is the source time of the timeline's
        zero, ``previous`` the chain link before it. Idempotent.

        ``keyframes`` are the segment's keyframe hashes, made by the caller (from the whole
        original in one decode, or with a live segment's probe). ``stored`` is what ``put``
        returned when the caller stored the file ahead (while the keyframes still decode).
        ``packets``: its packet ranges in the original (none for a live stream's segment);
        ``source``: a live segment's bytes in the original.
        """
        if produced.index == 0:
            self.catalog.update_recording(recording.id, origin_s=origin, phash_fps=self.phash_fps)
        # The object first, then the row that points at it.
        key, sha, size, kept = stored if stored is not None else self.put(recording, produced)
        digest = ranges_digest(packets) if packets else None
        entry = ChainEntry(
            produced.index, produced.start_s - origin, produced.end_s - origin, sha, digest
        )
        holes = [[a - origin, b - origin] for a, b in produced.holes]
        chain = link(previous, entry)
        detail = SegmentStoredDetail(
            index=produced.index,
            key=key,
            sha256=sha,
            size=size,
            kind=kind,
            start_s=entry.start_s,
            end_s=entry.end_s,
            origin_s=origin,
            frames=produced.frames,
            previous=previous,
            chain=chain,
            keyframes=list(keyframes),
            packets=list(packets),
            kept=kept,
            source=source,
        )
        row = self.catalog.add_segment(
            Segment(
                recording_id=recording.id,
                index=produced.index,
                key=key,
                sha256=sha,
                size=size,
                kind=kind,
                start_s=entry.start_s,
                end_s=entry.end_s,
                frame_count=produced.frames,
                holes=json.dumps(holes) if holes else None,
                chain=chain,
                keyframes=json.dumps([k.model_dump() for k in detail.keyframes]),
                packets=json.dumps([asdict(r) for r in packets]) if packets else None,
                kept=kept,
                source=json.dumps(asdict(source)) if source is not None else None,
            ),
            Event("segment.stored", SYSTEM_ACTOR, recording.id, detail=detail),
        )
        if row.sha256 != sha:
            raise SegmentConflict(
                f"{recording.id} segment {produced.index}: catalogued from an earlier run"
                f" with sha256 {row.sha256[:16]}…, this run made {sha[:16]}…"
            )
        return row

    def playlist(self, recording: Recording, files: Sequence[Listed], work: Path) -> str:
        """Store the HLS playlist of ``files`` (the recording's segments, as their rows list
        them); its SHA-256. ``recording``: as catalogued with its probe (its frame cadence
        sets the gap tolerance)."""
        return store_playlist(
            self.store, recording, files, path=work / "index.m3u8",
            key=playlist_key(recording.id), gap_tolerance_frames=self.gap_tolerance_frames,
        )  # fmt: skip

    def finish(
        self,
        recording: Recording,
        segments: Sequence[Segment],
        kind: str,
        damage: str,
        work: Path,
        playback: str | None = None,
        tracks: Sequence[KeptTrack] | None = None,
        gps: Sequence[TrackGps] = (),
        cutter: str | None = None,
        playlist_sha256: str | None = None,
    ) -> None:
        """The playlist, the recording's totals (status ``segmented``) and the custody event,
        in one transaction; ``tracks``: its other tracks and where each is kept (None: not
        listed); ``gps``: the GPS objects read out of them (already stored); ``cutter``: the
        ffmpeg that made the segment files (``transcode.ffmpeg.ffmpeg_version``);
        ``playlist_sha256``: the playlist of ``segments`` is stored already (``playlist``)."""
        recording = self.catalog.recording(recording.id)
        key = playlist_key(recording.id)
        sha = playlist_sha256 or self.playlist(recording, segments, work)
        chain_head = segments[-1].chain
        detail = SegmentDetail(
            count=len(segments),
            playback=playback or kind,
            chain_head=chain_head,
            playlist_sha256=sha,
            damage=damage or None,
            tracks=None if tracks is None else tuple(tracks),
            gps=tuple(gps),
            cutter=cutter,
        )
        self.catalog.update_recording_with(
            recording.id,
            Event("segment", SYSTEM_ACTOR, recording.id, detail=detail),
            status="segmented",
            segment_count=len(segments),
            chain_head=chain_head,
            playlist_key=key,
            playlist_sha256=sha,
            duration_s=segments[-1].end_s - segments[0].start_s,
            playback=playback or kind,
            phash_fps=self.phash_fps,
            damage=damage or None,
            extra_tracks=None if detail.tracks is None else tracks_json(detail.tracks),
        )
        if damage:
            self.catalog.add_event(Event("flag.damaged", SYSTEM_ACTOR, recording.id, damage))
