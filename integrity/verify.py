"""``vigil verify``: recompute every hash of a recording and compare it with what the signed log
proves (``integrity.logfacts``), never with a catalogue row.

Checks, in order: the original's SHA-256 and size; each signed segment's presence at its signed
key and its SHA-256 (and, where the bytes changed or ``full`` is asked, its per-frame perceptual
hashes, which tell a re-encode of the same content from an edit and locate the edit in time,
used only when the blob's SHA-256 is the signed one); the hash chain over the signed segments;
the playlist. Then the catalogue rows are compared with the same signed facts
(``integrity.rows``): a row that disagrees is *catalogue altered*, its own verdict, distinct
from *footage altered*. The outcome, per segment, is a custody event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel
from vigil_verify.chain import ChainEntry, first_break
from vigil_verify.compare import SegmentVerdict, Thresholds, compare_segment
from vigil_verify.ledger import SignedSegment

from catalog.models import Recording, Segment
from catalog.repository import Catalog, Event, now
from integrity.frames import segment_hashes
from integrity.ledger import Ledger
from integrity.logfacts import ProvedRecording, prove
from integrity.phash import FrameHashes
from integrity.rows import RowFinding, recording_row_findings
from store.base import ObjectStore, sha256_file
from store.errors import ObjectMissing
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools

SegmentState = Literal["intact", "altered", "re-encoded", "missing", "unverifiable"]
ObjectState = Literal["intact", "altered", "missing"]


@dataclass(frozen=True)
class SegmentCheck:
    index: int
    state: SegmentState
    detail: str = ""
    perceptual: SegmentVerdict | None = None


@dataclass(frozen=True)
class RecordingVerification:
    recording_id: str
    original: Literal["intact", "altered", "missing", "unproved"]
    segments: tuple[SegmentCheck, ...]
    chain_break: int | None  # first signed segment position whose link does not follow
    playlist: Literal["intact", "altered", "missing", "none"]
    problems: tuple[str, ...] = field(default=())
    catalogue: tuple[RowFinding, ...] = field(default=())  # rows that disagree with the log

    @property
    def ok(self) -> bool:
        return not self.problems


class VerifyDetail(BaseModel):
    """The custody event of a verification: its outcome per segment, as the timeline shows it."""

    ok: bool
    problems: list[str]
    segments: dict[int, str] = {}
    catalogue_altered: list[str] = []


class Verifier:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        tools: Tools,
        ledger: Ledger,
        thresholds: Thresholds = Thresholds(),
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """``on_failure``: told of every verification that finds a problem (e.g. metrics)."""
        self.catalog = catalog
        self.store = store
        self.tools = tools
        self.ledger = ledger
        self.thresholds = thresholds
        self.on_failure = on_failure

    def verify_recording(
        self, recording_id: str, *, actor: str, full: bool = False
    ) -> RecordingVerification:
        rec = self.catalog.recording(recording_id)  # the index: where to look, nothing more
        if self.ledger.can_sign:
            self.ledger.checkpoint()  # what happened until now is in a signed head
        facts = prove(self.ledger, self.ledger.public_key, [rec.id])
        log = facts.of(rec.id)
        problems = [*facts.problems, *log.problems]
        if log.unsigned and not self.ledger.can_sign:
            problems.append(
                f"not yet signed: {len(log.unsigned)} custody event(s) of {rec.id} are in no"
                " signed tree head yet; verified against what is signed"
            )
        original = self._check_original(rec, log, problems)
        segments = self.catalog.segments(rec.id)
        checks = self._check_segments(rec, segments, log, full)
        problems.extend(
            f"segment {c.index}: {c.state}{c.detail}" for c in checks if c.state != "intact"
        )
        chain_break = _chain_break(log)
        if chain_break is not None:
            problems.append(f"log: the signed hash chain breaks at segment {chain_break}")
        playlist = self._check_playlist(rec, log, problems)
        rows = recording_row_findings(rec, segments, log)
        problems.extend(str(f) for f in rows)
        result = RecordingVerification(
            rec.id, original, tuple(checks), chain_break, playlist, tuple(problems), tuple(rows)
        )
        self._record(result, actor)
        return result

    def _record(self, result: RecordingVerification, actor: str) -> None:
        if not result.ok and self.on_failure is not None:
            self.on_failure()
        states = {c.index: "verified" if c.state == "intact" else c.state for c in result.segments}
        altered = {f.segment for f in result.catalogue if f.segment is not None}
        states.update({i: "catalogue altered" for i in altered if states.get(i) == "verified"})
        self.catalog.set_verification(result.recording_id, states, now())
        detail = VerifyDetail(
            ok=result.ok,
            problems=list(result.problems),
            segments=states,
            catalogue_altered=[str(f) for f in result.catalogue],
        )
        self.catalog.add_event(Event("verify", actor, result.recording_id, detail=detail))

    def _object(
        self, bucket: Literal["originals", "derived"], key: str, expected: str
    ) -> tuple[ObjectState, int]:
        try:
            with self.store.local_path(bucket, key) as path:
                actual, size = sha256_file(path)
        except ObjectMissing:
            return "missing", 0
        return ("intact" if actual == expected else "altered"), size

    def _check_original(
        self, rec: Recording, log: ProvedRecording, problems: list[str]
    ) -> Literal["intact", "altered", "missing", "unproved"]:
        signed = log.facts
        if signed.original_sha256 is None:
            problems.append(
                f"original: no signed event gives its hash; {rec.id} cannot be verified"
                " from the log"
            )
            return "unproved"
        key = log.original_key or rec.original_key
        state, size = self._object("originals", key, signed.original_sha256)
        if state == "altered":
            problems.append(
                f"footage altered: original {key}: sha256 differs from the signed log"
                f" ({size} bytes, {signed.original_size} signed)"
            )
        elif state == "missing":
            problems.append(f"footage missing: original {key} is not in the store")
        return state

    def _check_segments(
        self, rec: Recording, rows: list[Segment], log: ProvedRecording, full: bool
    ) -> list[SegmentCheck]:
        by_index = {s.index: s for s in rows}
        checks = [
            self._check_segment(rec, signed, by_index.get(index), full)
            for index, signed in sorted(log.facts.segments.items())
        ]
        count = log.facts.segment_count
        if count is not None:
            checks.extend(
                SegmentCheck(i, "missing", ": signed in the recording's count, no segment event")
                for i in range(count)
                if i not in log.facts.segments
            )
        return sorted(checks, key=lambda c: c.index)

    def _check_segment(
        self, rec: Recording, signed: SignedSegment, row: Segment | None, full: bool
    ) -> SegmentCheck:
        state, _size = self._object("derived", signed.key, signed.sha256)
        if state == "missing":
            return SegmentCheck(signed.index, "missing", f" ({signed.key} is not in the store)")
        if state == "intact" and not full:
            return SegmentCheck(signed.index, "intact")
        reference = _signed_blob(signed, row)
        if reference is None:
            if state == "intact":
                return SegmentCheck(signed.index, "intact")
            return SegmentCheck(
                signed.index, "altered", ": footage altered, sha256 differs from the signed log"
            )
        try:
            fresh = self._rehash(rec, signed)
        except TranscodeError as exc:
            return SegmentCheck(
                signed.index, "altered", f": footage altered, sha256 differs, undecodable ({exc})"
            )
        verdict = compare_segment(reference, fresh, self.thresholds, index=signed.index)
        return _perceptual_check(signed.index, state, verdict)

    def _rehash(self, rec: Recording, signed: SignedSegment) -> FrameHashes:
        with self.store.local_path("derived", signed.key) as path:
            return segment_hashes(
                self.tools,
                path,
                rate=signed.phash_rate or rec.phash_fps or 10.0,
                origin_s=signed.origin_s,
                start_s=signed.start_s,
            )

    def _check_playlist(
        self, rec: Recording, log: ProvedRecording, problems: list[str]
    ) -> Literal["intact", "altered", "missing", "none"]:
        if log.playlist_sha256 is None:
            return "none"
        key = f"{rec.id}/index.m3u8"
        state, _ = self._object("derived", key, log.playlist_sha256)
        if state != "intact":
            problems.append(f"playlist {key}: {state}")
        return state


def _signed_blob(signed: SignedSegment, row: Segment | None) -> FrameHashes | None:
    """The per-frame hashes to compare against, only if the blob is the one the log signed."""
    if row is None or row.phash is None or signed.phash_sha256 is None:
        return None
    if hashlib.sha256(row.phash).hexdigest() != signed.phash_sha256:
        return None
    return FrameHashes.from_bytes(row.phash)


def _perceptual_check(index: int, state: ObjectState, verdict: SegmentVerdict) -> SegmentCheck:
    if state == "intact":
        if verdict.status == "same":
            return SegmentCheck(index, "intact", perceptual=verdict)
        return SegmentCheck(
            index,
            "unverifiable",
            ": bytes intact but the perceptual hash no longer matches (decoder change?)",
            verdict,
        )
    if verdict.status == "same":
        return SegmentCheck(
            index,
            "re-encoded",
            f": sha256 differs, content the same (mean {verdict.mean_bits:.1f} bits)",
            verdict,
        )
    where = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in verdict.edited_ranges)
    return SegmentCheck(
        index,
        "altered",
        f": footage altered, sha256 differs and the picture changed at {where or 'unknown'}",
        verdict,
    )


def _chain_break(log: ProvedRecording) -> int | None:
    """The first signed segment whose chain link does not follow from the signed anchor and
    the signed segments before it (None: the chain holds, or nothing is signed)."""
    signed = [log.facts.segments[i] for i in sorted(log.facts.segments)]
    if not signed or log.facts.anchor is None:
        return None
    entries = [ChainEntry(s.index, s.start_s, s.end_s, s.sha256) for s in signed]
    broken = first_break(log.facts.anchor, entries, [s.chain for s in signed])
    return None if broken is None else signed[broken].index
