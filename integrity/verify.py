"""``vigil verify``: recompute every hash of a recording and compare it with what the signed log
proves (``integrity.logfacts``), never with a catalogue row.

Checks, in order: the original's SHA-256 and size; each signed segment's presence at its signed
key and its SHA-256; where the bytes are not the signed ones, whose they are (another signed
segment: *reordered* or *foreign*) and, else, what the pictures say, by the decision
``vigil-verify`` makes too (``vigil_verify.changed``): per-frame perceptual hashes, used only
when the blob's SHA-256 is the signed one, tell a re-encode from an edit and locate the edit in
time; with ``full``, intact segments are re-decoded too. Then the hash chain over the signed
segments; the playlist. Then the catalogue rows are compared with the same signed facts
(``integrity.rows``): a row that disagrees is *catalogue altered*, its own verdict, distinct
from what the footage is. Every verdict is a word of ``vigil_verify.verdicts``. The outcome, per
segment, is a custody event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from vigil_verify.audio_tracks import AudioTracks, SegmentAudio
from vigil_verify.chain import ChainEntry, first_break
from vigil_verify.changed import (
    Undecodable,
    changed_segment,
    original_finding,
    placed,
    stand_in_hearing,
)
from vigil_verify.checkpoint import Checkpoint
from vigil_verify.compare import Thresholds, compare_segment
from vigil_verify.footage import stand_in_hashes
from vigil_verify.ledger import SignedSegment
from vigil_verify.original import judge_original
from vigil_verify.packets import RangeFinding
from vigil_verify.recovered import recovered_finding
from vigil_verify.verdicts import Finding, Verdict

from catalog.models import Recording, Segment
from catalog.repository import Catalog, Event, now
from catalog.tracks import TrackGps
from integrity.audio import tools_run
from integrity.frames import segment_hashes
from integrity.ledger import Ledger
from integrity.logfacts import ProvedRecording, prove
from integrity.phash import FrameHashes
from integrity.rows import RowFinding, recording_row_findings
from integrity.segment_files import SegmentFiles, SegmentNotReproduced, plan_from_log
from integrity.uncopied import FromOriginal, uncopied_finding
from store.base import ObjectStore, sha256_file
from store.errors import ObjectMissing
from transcode.errors import TranscodeError
from transcode.ffmpeg import Tools


@dataclass(frozen=True)
class SignedLog:
    """The signed head the verdicts were read from, and how many of the recording's custody
    events it proves."""

    head: Checkpoint | None
    events: int
    events_proved: int


@dataclass(frozen=True)
class RecordingVerification:
    recording_id: str
    original: Finding
    segments: tuple[Finding, ...]
    chain_break: int | None  # first signed segment position whose link does not follow
    playlist: Finding | None  # None: the log signs no playlist
    problems: tuple[str, ...] = field(default=())
    catalogue: tuple[RowFinding, ...] = field(default=())  # rows that disagree with the log
    log_problems: tuple[str, ...] = field(default=())  # the log itself (part of ``problems``)
    log: SignedLog = SignedLog(None, 0, 0)

    @property
    def ok(self) -> bool:
        return not self.problems


class VerifyDetail(BaseModel):
    """The custody event of a verification: its outcome per segment, as the timeline shows it
    ("verified" for *intact*, else the verdict's word)."""

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
        segment_files: SegmentFiles,
        thresholds: Thresholds = Thresholds(),
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """``on_failure``: told of every verification that finds a problem (e.g. metrics);
        ``segment_files``: cuts the segments whose copies are not kept (``full``)."""
        self.catalog = catalog
        self.segment_files = segment_files
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
        log_problems = [*facts.problems, *log.problems]
        if log.unsigned and not self.ledger.can_sign:
            log_problems.append(
                f"not yet signed: {len(log.unsigned)} custody event(s) of {rec.id} are in no"
                " signed tree head yet; verified against what is signed"
            )
        chain_break = _chain_break(log)
        if chain_break is not None:
            log_problems.append(f"log: the signed hash chain breaks at segment {chain_break}")
        original, by_packets = self._check_original(rec, log)
        segments = self.catalog.segments(rec.id)
        key = log.original_key or rec.original_key
        judged = FromOriginal(
            original, by_packets, key,
            plan_from_log(rec, key, log.facts.segments, log.facts.cutter),
        )  # fmt: skip
        checks = self._check_segments(rec, segments, log, full, judged)
        playlist = self._check_playlist(rec, log)
        rows = recording_row_findings(rec, segments, log)
        recovered = self._check_recovered(log)
        footage = [
            ("original", original),
            *([("recovered stream", recovered)] if recovered is not None else []),
            *((f"segment {c.index}", c) for c in checks),
            *([("playlist", playlist)] if playlist is not None else []),
            *((f"GPS of stream {g.index}", self._check_gps(rec, g)) for g in log.gps),
        ]
        problems = [
            *log_problems,
            *(f"{what}: {f.kind}: {f.detail}" for what, f in footage if not f.clean),
            *(str(f) for f in rows),
        ]
        head = facts.head.checkpoint if facts.head is not None else None
        result = RecordingVerification(
            recording_id=rec.id,
            original=original,
            segments=tuple(checks),
            chain_break=chain_break,
            playlist=playlist,
            problems=tuple(problems),
            catalogue=tuple(rows),
            log_problems=tuple(log_problems),
            log=SignedLog(head, log.events, log.events_proved),
        )
        self._record(result, actor)
        return result

    def _record(self, result: RecordingVerification, actor: str) -> None:
        if not result.ok and self.on_failure is not None:
            self.on_failure()
        states = {
            c.index: "verified" if c.kind == Verdict.INTACT else str(c.kind)
            for c in result.segments
            if c.index is not None
        }
        altered = {f.segment for f in result.catalogue if f.segment is not None}
        states.update(
            {i: Verdict.CATALOGUE_ALTERED.value for i in altered if states.get(i) == "verified"}
        )
        self.catalog.set_verification(result.recording_id, states, now())
        detail = VerifyDetail(
            ok=result.ok,
            problems=list(result.problems),
            segments=states,
            catalogue_altered=[str(f) for f in result.catalogue],
        )
        self.catalog.add_event(Event("verify", actor, result.recording_id, detail=detail))

    def _object(self, bucket: Literal["originals", "derived"], key: str) -> tuple[str, int] | None:
        """The stored object's SHA-256 and size; None when it is not in the store."""
        try:
            with self.store.local_path(bucket, key) as path:
                return sha256_file(path)
        except ObjectMissing:
            return None

    def _check_original(
        self, rec: Recording, log: ProvedRecording
    ) -> tuple[Finding, dict[int, RangeFinding] | None]:
        """The original's finding, and, when its bytes are not the signed ones, what its
        packets say of each signed segment (None: not read)."""
        signed = log.facts
        if signed.original_sha256 is None:
            return Finding(
                kind=Verdict.UNVERIFIABLE,
                recording=rec.id,
                detail=f"no signed event gives the original's hash; {rec.id} cannot be verified"
                " from the log",
            ), None
        key = log.original_key or rec.original_key
        found = self._object("originals", key)
        if found is None:
            return Finding(
                kind=Verdict.MISSING,
                recording=rec.id,
                detail=f"{key} is not in the store",
                file=key,
            ), None
        sha, size = found
        by_bytes = original_finding(
            rec.id, sha, size, signed.original_sha256, signed.original_size, key
        )
        if by_bytes.clean or not any(s.packets or s.source for s in signed.segments.values()):
            return by_bytes, None
        try:  # where in the footage the change is, by its signed ranges (issue 18)
            with self.store.local_path("originals", key) as path:
                return judge_original(
                    tools_run(self.tools), self.tools.ffmpeg, path, signed.segments, by_bytes
                )
        except (TranscodeError, ObjectMissing) as exc:
            return replace(by_bytes, detail=f"{by_bytes.detail}; packets not read ({exc})"), None
        except OSError as exc:  # named without the server's path
            return replace(by_bytes, detail=f"{by_bytes.detail}; not read ({exc.strerror})"), None

    def _check_recovered(self, log: ProvedRecording) -> Finding | None:
        """The recovered stream against its signed link to the original (issue 17)."""
        link = log.facts.recovered
        if link is None:
            return None
        return recovered_finding(log.facts, self._object("derived", link.key), link.key)

    def _check_segments(
        self,
        rec: Recording,
        rows: list[Segment],
        log: ProvedRecording,
        full: bool,
        original: FromOriginal,
    ) -> list[Finding]:
        by_index = {s.index: s for s in rows}
        checks = [
            self._check_segment(rec, signed, by_index.get(index), log, full)
            if signed.kept
            else self._uncopied(rec, signed, by_index.get(index), full, original)
            for index, signed in sorted(log.facts.segments.items())
        ]
        count = log.facts.segment_count
        if count is not None:
            checks.extend(
                Finding(
                    kind=Verdict.MISSING,
                    recording=rec.id,
                    index=i,
                    detail="signed in the recording's count, no segment event",
                )
                for i in range(count)
                if i not in log.facts.segments
            )
        return sorted(checks, key=lambda c: c.index or 0)

    def _check_segment(
        self,
        rec: Recording,
        signed: SignedSegment,
        row: Segment | None,
        log: ProvedRecording,
        full: bool,
    ) -> Finding:
        found = self._object("derived", signed.key)
        if found is None:
            return Finding(
                kind=Verdict.MISSING,
                recording=rec.id,
                index=signed.index,
                detail=f"{signed.key} is not in the store",
                file=signed.key,
            )
        sha, size = found
        reference = _signed_blob(signed, row)
        if sha == signed.sha256:
            return self._intact(rec, signed, reference if full else None)
        moved = placed(rec.id, signed.index, self._owner(sha, log), signed.key)
        if moved is not None:
            return moved
        return changed_segment(
            rec.id,
            signed,
            size=size,
            file=signed.key,
            reference=reference,
            decode=lambda reference: self._decode_changed(signed, reference),
            thresholds=self.thresholds,
            hear=self._hearing(signed, _signed_audio(signed, row)),
        )

    def _uncopied(
        self,
        rec: Recording,
        signed: SignedSegment,
        row: Segment | None,
        full: bool,
        original: FromOriginal,
    ) -> Finding:
        """A segment whose copy is not kept: judged by the original it is cut from; with
        ``full``, cut again and its pictures re-decoded."""
        found = uncopied_finding(rec.id, signed, original)
        reference = _signed_blob(signed, row) if full else None
        if found.kind != Verdict.INTACT or reference is None or original.plan is None:
            return found
        plan = original.plan
        return self._intact(
            rec, signed, reference, lambda: self.segment_files.path(plan, signed.index), found
        )

    def _intact(
        self,
        rec: Recording,
        signed: SignedSegment,
        reference: FrameHashes | None,
        opened: Callable[[], AbstractContextManager[Path]] | None = None,
        base: Finding | None = None,
    ) -> Finding:
        """Bytes as signed; with ``reference`` (``full``), the pictures re-decoded too (of the
        file ``opened`` gives: by default the stored copy)."""
        verdict = Verdict.INTACT
        detail = base.detail if base is not None else "sha256 as signed"
        if reference is not None:
            try:
                fresh = self._decode(signed, opened)
            except Undecodable as exc:
                verdict, detail = Verdict.UNVERIFIABLE, f"bytes as signed, but now {exc}"
            else:
                compared = compare_segment(reference, fresh, self.thresholds, index=signed.index)
                if compared.status == "same":
                    detail += f"; the picture matches (mean {compared.mean_bits:.1f} bits)"
                else:
                    verdict = Verdict.UNVERIFIABLE
                    detail = (
                        "bytes as signed, but the re-decoded picture no longer matches the"
                        " signed per-frame hashes (a decoder change?)"
                    )
        return Finding(
            kind=verdict, recording=rec.id, index=signed.index, detail=detail, file=signed.key
        )

    def _owner(self, sha: str, log: ProvedRecording) -> tuple[str, int] | None:
        """The signed segment whose SHA-256 is ``sha``: this recording's (from its signed
        facts), else another's that the catalogue points at and the signed log confirms."""
        own = log.facts.id
        for index, seg in sorted(log.facts.segments.items()):
            if seg.sha256 == sha:
                return own, index
        with self.catalog.session() as session:
            rows = session.execute(
                select(Segment.recording_id).where(
                    Segment.sha256 == sha, Segment.recording_id != own
                )
            ).all()
        others = sorted({r for (r,) in rows})
        if not others:
            return None
        proved = prove(self.ledger, self.ledger.public_key, others)
        for rec_id in others:
            for index, seg in sorted(proved.of(rec_id).facts.segments.items()):
                if seg.sha256 == sha:
                    return rec_id, index
        return None

    def _decode_changed(self, signed: SignedSegment, reference: FrameHashes) -> FrameHashes:
        """A stored segment whose bytes are not the signed ones, decoded as ``vigil-verify``
        decodes it (on its own timeline: an edited or re-encoded file seldom keeps the
        original's timestamps), so that both reach the same verdict."""
        with self.store.local_path("derived", signed.key) as path:
            return stand_in_hashes(self.tools.ffmpeg, path, signed, reference)

    def _hearing(
        self, signed: SignedSegment, reference: AudioTracks | None
    ) -> Callable[[float], SegmentAudio | None] | None:
        """``changed_segment``'s ``hear`` for a stored segment whose bytes are not the signed
        ones: its sound against the signed fingerprints, heard as ``vigil-verify`` hears it."""
        if reference is None:
            return None

        def hear(offset: float) -> SegmentAudio | None:
            with self.store.local_path("derived", signed.key) as path:
                heard = stand_in_hearing(
                    tools_run(self.tools), self.tools.ffmpeg, path, signed, reference
                )
                return heard(offset) if heard is not None else None

        return hear

    def _decode(
        self,
        signed: SignedSegment,
        opened: Callable[[], AbstractContextManager[Path]] | None = None,
    ) -> FrameHashes:
        """The stored segment's per-frame hashes, on the signed footing (as at ingest)."""
        try:
            with (opened or (lambda: self.store.local_path("derived", signed.key)))() as path:
                return segment_hashes(
                    self.tools,
                    path,
                    rate=signed.grid_rate,
                    origin_s=signed.origin_s,
                    start_s=signed.start_s,
                    rotation=signed.rotation,
                )
        except TranscodeError as exc:
            raise Undecodable(f"ffmpeg cannot decode it ({exc})") from exc
        except SegmentNotReproduced as exc:
            raise Undecodable(str(exc)) from exc

    def _check_playlist(self, rec: Recording, log: ProvedRecording) -> Finding | None:
        if log.playlist_sha256 is None:
            return None
        return self._check_derived(rec, f"{rec.id}/index.m3u8", log.playlist_sha256, "playlist")

    def _check_gps(self, rec: Recording, signed: TrackGps) -> Finding:
        """A GPS object read out of a track of the original, against its signed SHA-256."""
        return self._check_derived(rec, signed.key, signed.sha256, "GPS object")

    def _check_derived(self, rec: Recording, key: str, signed_sha256: str, what: str) -> Finding:
        """A derived object that is not footage, against the SHA-256 the log signed for it."""
        found = self._object("derived", key)
        if found is None:
            kind, detail = Verdict.MISSING, f"the {what} {key} is not in the store"
        elif found[0] == signed_sha256:
            kind, detail = Verdict.INTACT, f"the {what}'s sha256 as signed"
        else:
            kind, detail = Verdict.BYTES_ALTERED, f"the {what}'s sha256 differs from the signed one"
        return Finding(kind=kind, recording=rec.id, detail=detail, file=key)


def _signed_blob(signed: SignedSegment, row: Segment | None) -> FrameHashes | None:
    """The per-frame hashes to compare against, only if the blob is the one the log signed."""
    blob = _as_signed(row.phash if row is not None else None, signed.phash_sha256)
    return FrameHashes.from_bytes(blob) if blob is not None else None


def _signed_audio(signed: SignedSegment, row: Segment | None) -> AudioTracks | None:
    """The audio fingerprints to compare against, only if the blob is the one the log signed."""
    blob = _as_signed(row.audio if row is not None else None, signed.audio_sha256)
    return AudioTracks.from_bytes(blob) if blob is not None else None


def _as_signed(blob: bytes | None, signed_sha256: str | None) -> bytes | None:
    if blob is None or signed_sha256 is None:
        return None
    return blob if hashlib.sha256(blob).hexdigest() == signed_sha256 else None


def _chain_break(log: ProvedRecording) -> int | None:
    """The first signed segment whose chain link does not follow from the signed anchor and
    the signed segments before it (None: the chain holds, or nothing is signed)."""
    signed = [log.facts.segments[i] for i in sorted(log.facts.segments)]
    if not signed or log.facts.anchor is None:
        return None
    entries = [ChainEntry(s.index, s.start_s, s.end_s, s.sha256, s.chain_digest) for s in signed]
    broken = first_break(log.facts.anchor, entries, [s.chain for s in signed])
    return None if broken is None else signed[broken].index
