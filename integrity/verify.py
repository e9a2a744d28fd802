"""``vigil verify``: recompute every hash of a recording from the stored bytes and say what differs.

Checks, in order: the original's SHA-256; each segment's presence and SHA-256 (and, where the
bytes changed or ``full`` is asked, its per-frame perceptual hashes, which tell a re-encode of
the same content from an edit and locate the edit in time); the hash chain over the catalogued
segment hashes; the playlist; continuity. The outcome is a custody event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel
from vigil_verify.chain import ChainEntry, first_break
from vigil_verify.compare import SegmentVerdict, Thresholds, compare_segment

from catalog.models import Recording, Segment
from catalog.repository import Catalog, Event, now
from integrity.frames import segment_hashes
from integrity.phash import FrameHashes
from store.base import ObjectStore, sha256_file
from store.errors import ObjectMissing
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools

SegmentState = Literal["intact", "altered", "re-encoded", "missing", "unverifiable"]


@dataclass(frozen=True)
class SegmentCheck:
    index: int
    state: SegmentState
    detail: str = ""
    perceptual: SegmentVerdict | None = None


@dataclass(frozen=True)
class RecordingVerification:
    recording_id: str
    original: Literal["intact", "altered", "missing"]
    segments: tuple[SegmentCheck, ...]
    chain_break: int | None  # first segment position whose catalogued link is wrong
    playlist: Literal["intact", "altered", "missing", "none"]
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


class VerifyDetail(BaseModel):
    ok: bool
    problems: list[str]


class Verifier:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        thresholds: Thresholds = Thresholds(),
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """``on_failure``: told of every verification that finds a problem (e.g. metrics)."""
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.thresholds = thresholds
        self.on_failure = on_failure

    def verify_recording(
        self, recording_id: str, *, actor: str, full: bool = False
    ) -> RecordingVerification:
        rec = self.catalog.recording(recording_id)
        segments = self.catalog.segments(rec.id)
        problems: list[str] = []
        original = self._check_object("originals", rec.original_key, rec.sha256)
        if original != "intact":
            problems.append(f"original {rec.original_key}: {original}")
        checks = [self._check_segment(rec, s, full) for s in segments]
        for check in checks:
            if check.state != "intact":
                problems.append(f"segment {check.index}: {check.state}{check.detail}")
        if rec.segment_count is not None and len(segments) != rec.segment_count:
            problems.append(
                f"catalogue lists {len(segments)} segments, the recording says {rec.segment_count}"
            )
        chain_break = self._check_chain(rec, segments)
        if chain_break is not None:
            problems.append(
                f"hash chain breaks at segment {segments[chain_break].index}: the catalogued"
                " hashes or times were changed after segmenting"
            )
        playlist: Literal["intact", "altered", "missing", "none"] = "none"
        if rec.playlist_key and rec.playlist_sha256:
            playlist = self._check_object("derived", rec.playlist_key, rec.playlist_sha256)
            if playlist != "intact":
                problems.append(f"playlist {rec.playlist_key}: {playlist}")
        result = RecordingVerification(
            rec.id, original, tuple(checks), chain_break, playlist, tuple(problems)
        )
        if not result.ok and self.on_failure is not None:
            self.on_failure()
        at = now()
        self.catalog.set_verification(
            rec.id, {c.index: "verified" if c.state == "intact" else c.state for c in checks}, at
        )
        self.catalog.add_event(
            Event(
                "verify",
                actor,
                rec.id,
                detail=VerifyDetail(ok=result.ok, problems=list(problems)),
            )
        )
        return result

    def _check_object(
        self, bucket: Literal["originals", "derived"], key: str, expected: str
    ) -> Literal["intact", "altered", "missing"]:
        try:
            with self.store.local_path(bucket, key) as path:
                actual, _ = sha256_file(path)
        except ObjectMissing:
            return "missing"
        return "intact" if actual == expected else "altered"

    def _check_segment(self, rec: Recording, segment: Segment, full: bool) -> SegmentCheck:
        state = self._check_object("derived", segment.key, segment.sha256)
        if state == "missing":
            return SegmentCheck(segment.index, "missing", f" ({segment.key} is not in the store)")
        if state == "intact" and not full:
            return SegmentCheck(segment.index, "intact")
        if segment.phash is None:
            if state == "intact":
                return SegmentCheck(segment.index, "intact")
            return SegmentCheck(segment.index, "altered", ": sha256 differs (no perceptual hash)")
        stored = FrameHashes.from_bytes(segment.phash)
        try:
            fresh = self._rehash(rec, segment)
        except TranscodeError as exc:
            return SegmentCheck(segment.index, "altered", f": sha256 differs, undecodable ({exc})")
        verdict = compare_segment(stored, fresh, self.thresholds, index=segment.index)
        if state == "intact":
            if verdict.status == "same":
                return SegmentCheck(segment.index, "intact", perceptual=verdict)
            return SegmentCheck(
                segment.index,
                "unverifiable",
                ": bytes intact but the perceptual hash no longer matches (decoder change?)",
                verdict,
            )
        if verdict.status == "same":
            return SegmentCheck(
                segment.index,
                "re-encoded",
                f": sha256 differs, content the same (mean {verdict.mean_bits:.1f} bits)",
                verdict,
            )
        where = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in verdict.edited_ranges)
        return SegmentCheck(
            segment.index,
            "altered",
            f": sha256 differs and the picture changed at {where or 'unknown'}",
            verdict,
        )

    def _rehash(self, rec: Recording, segment: Segment) -> FrameHashes:
        with self.store.local_path("derived", segment.key) as path:
            return segment_hashes(
                self.tools,
                path,
                rate=rec.phash_fps or 10.0,
                origin_s=rec.origin_s or 0.0,
                start_s=segment.start_s,
            )

    @staticmethod
    def _check_chain(rec: Recording, segments: Sequence[Segment]) -> int | None:
        if not segments:
            return None
        entries = [ChainEntry(s.index, s.start_s, s.end_s, s.sha256) for s in segments]
        broken = first_break(rec.anchor, entries, [s.chain for s in segments])
        if broken is None and rec.chain_head and rec.chain_head != segments[-1].chain:
            return len(segments) - 1
        return broken
