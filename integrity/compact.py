"""``vigil storage compact``: a recording stored with every segment's copy moved to the form
without copies (issue 18), when the signed log allows it.

A recording is compacted when it is complete, its original is the signed one, every segment's
packets are signed, and cutting the original again at the signed packets makes every signed
segment file byte for byte (``integrity.segment_files``). Then, in order (a crash anywhere
leaves a state the next run finishes, and nothing is lost):

1. one ``segment.uncopied`` custody event listing the segments (index and SHA-256), written in
   the same transaction that marks their rows ``kept = false``; a signed tree head follows
   (where this process cannot sign, the copies wait for a run after ``vigil ledger run`` has);
2. each copy deleted, as the store allows it now.

From step 1 on, ``vigil verify`` judges those segments by the original; a copy that is still
stored is no longer read. The store decides what may be deleted: a copy under legal hold or
COMPLIANCE retention is left where it is and listed with why (the retention sweep deletes it
with its recording, and a legal hold is lifted with the case link); no byte is deleted before
its time. A recording logged before its packets were signed (before issue 18) gets them read
from its copies and the original (``integrity.copy_ranges``) and logged with the event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel
from vigil_verify.ledger import SignedSegment
from vigil_verify.packets import PacketRange

from catalog.models import Recording
from catalog.repository import Catalog, Event
from integrity.copy_ranges import Ranges, copy_ranges
from integrity.ledger import Ledger
from integrity.logfacts import ProvedRecording, prove
from integrity.segment_files import CutPlan, SegmentFiles, SegmentNotReproduced, plan_from_log
from store.base import ObjectStore, sha256_file
from store.errors import ObjectMissing, RetentionActive

State = Literal["compacted", "to compact", "kept"]


class UncopiedSegment(BaseModel):
    index: int
    sha256: str
    # its packets in the original, for a segment logged before they were signed (issue 18)
    packets: list[PacketRange] = []


class UncopiedDetail(BaseModel):
    """The ``segment.uncopied`` event: these segments need no stored copy since."""

    segments: list[UncopiedSegment]


@dataclass(frozen=True)
class CompactItem:
    recording_id: str
    state: State
    detail: str
    freed_bytes: int = 0  # deleted (or, in a dry run, that would be)
    retained: tuple[str, ...] = ()  # copies the store keeps for now, each with why


@dataclass(frozen=True)
class CompactReport:
    applied: bool
    items: tuple[CompactItem, ...]

    @property
    def freed_bytes(self) -> int:
        return sum(i.freed_bytes for i in self.items)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Compactor:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        ledger: Ledger,
        segment_files: SegmentFiles,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.ledger = ledger
        self.segment_files = segment_files
        self.now = now

    def run(
        self, *, apply: bool, actor: str, recording_ids: Sequence[str] | None = None
    ) -> CompactReport:
        """Compact ``recording_ids`` (every recording when None); with ``apply`` False, only
        say what would be done."""
        wanted = set(recording_ids) if recording_ids is not None else None
        recordings = [r for r in self.catalog.recordings() if wanted is None or r.id in wanted]
        return CompactReport(apply, tuple(self._one(r, apply, actor) for r in recordings))

    def _one(self, rec: Recording, apply: bool, actor: str) -> CompactItem:
        if rec.status != "complete":
            return CompactItem(rec.id, "kept", f"not complete (status {rec.status})")
        if self.ledger.can_sign:
            self.ledger.checkpoint()
        log = prove(self.ledger, self.ledger.public_key, [rec.id]).of(rec.id)
        signed = log.facts.segments
        if not signed:
            return CompactItem(rec.id, "kept", "no segment of it is in a signed tree head yet")
        pending = [s for _, s in sorted(signed.items()) if s.kept]
        if pending:
            ready = self._ready(rec, log)
            if isinstance(ready, str):
                return CompactItem(rec.id, "kept", ready)
            if not apply:
                present = [self._size(s.key) for s in pending]
                return CompactItem(
                    rec.id, "to compact", f"{len(pending)} segment copies are not needed",
                    sum(n for n in present if n is not None),
                )  # fmt: skip
            detail = UncopiedDetail(
                segments=[
                    UncopiedSegment(
                        index=s.index, sha256=s.sha256, packets=list(ready.get(s.index, ()))
                    )
                    for s in pending
                ]
            )
            event = Event("segment.uncopied", actor, rec.id, detail=detail)
            logged = {i: json.dumps([asdict(r) for r in ranges]) for i, ranges in ready.items()}
            self.catalog.set_segments_uncopied(rec.id, [s.index for s in pending], event, logged)
            if self.ledger.can_sign:
                self.ledger.checkpoint()
            signed = prove(self.ledger, self.ledger.public_key, [rec.id]).of(rec.id).facts.segments
            if any(s.kept for s in signed.values()):  # no copy goes before the log says so
                return CompactItem(
                    rec.id, "to compact", "logged; its copies are deleted by a run after the"
                    " event is in a signed tree head (vigil ledger run signs it)",
                )  # fmt: skip
        sizes = {s.key: self._size(s.key) for s in signed.values() if not s.kept}
        leftover = {key: size for key, size in sizes.items() if size is not None}
        if not leftover:
            return CompactItem(rec.id, "compacted", "no segment copy is stored")
        if not apply:
            return CompactItem(
                rec.id, "to compact", f"{len(leftover)} copies left from an earlier run",
                sum(leftover.values()),
            )  # fmt: skip
        return self._delete(rec.id, leftover)

    def _ready(self, rec: Recording, log: ProvedRecording) -> Ranges | str:
        """Why the recording's copies must stay; else the packet ranges to log with the event
        (none when custody signed them)."""
        signed = log.facts.segments
        key = log.original_key or rec.original_key
        if log.facts.original_sha256 is None:
            return "no signed event gives the original's hash"
        altered = self._altered_copy(signed)
        if altered is not None:
            return altered
        try:
            with self.store.local_path("originals", key) as path:
                sha, _size = sha256_file(path)
                if sha != log.facts.original_sha256:
                    return "the original is not the signed one: its segment copies are kept"
                later: Ranges | str = {}
                if not any(s.packets or s.source for s in signed.values()):  # before issue 18
                    later = copy_ranges(self.segment_files.tools, self.store, path, signed)
        except ObjectMissing:
            return "the original is not in the store"
        if isinstance(later, str):
            return later
        if later:
            signed = {i: replace(s, packets=later[i]) for i, s in signed.items()}
        plan = plan_from_log(rec, key, signed, log.facts.cutter)
        if plan is None:
            return "its packets are signed for some segments only"
        return self._unreproduced(_all_cut(plan), signed) or later

    def _altered_copy(self, signed: Mapping[int, SignedSegment]) -> str | None:
        """A copy that is missing, or whose bytes are not the signed ones, is evidence of its
        own: compaction leaves such a recording as it is (``vigil verify`` names it)."""
        for index, seg in sorted(signed.items()):
            if not seg.kept:
                continue
            try:
                with self.store.local_path("derived", seg.key) as path:
                    sha, _size = sha256_file(path)
            except ObjectMissing:
                return f"segment {index}'s copy is missing: the recording is left as it is"
            if sha != seg.sha256:
                return f"segment {index}'s copy is not the signed bytes: kept as it is"
        return None

    def _unreproduced(self, plan: CutPlan, signed: Mapping[int, SignedSegment]) -> str | None:
        """None when cutting the original again makes every signed segment file, byte for
        byte."""
        try:
            for index in sorted(signed):
                with self.segment_files.path(plan, index):
                    pass
        except SegmentNotReproduced as exc:
            return f"cutting the original again does not make its signed segments: {exc}"
        other = sorted(self.segment_files.recut(plan))
        if other:  # served so, but a signed copy is let go of only for its very bytes
            return (
                f"cutting the original again makes segment(s) {', '.join(map(str, other))} in"
                " other bytes than signed (the same packets at the same times; another ffmpeg):"
                " the copies are kept"
            )
        return None

    def _size(self, key: str) -> int | None:
        stored = self.store.stat("derived", key)
        return stored.size if stored is not None else None

    def _delete(self, rec_id: str, copies: Mapping[str, int]) -> CompactItem:
        """Delete the copies (key → size) the store lets go of now."""
        freed, retained = 0, []
        for key, size in copies.items():
            try:
                self.store.delete_expired("derived", key, self.now())
            except RetentionActive as exc:
                retained.append(f"{key}: {exc}")
                continue
            freed += size
        what = f"{len(copies) - len(retained)} segment copies deleted"
        return CompactItem(rec_id, "compacted", what, freed, tuple(retained))


def _all_cut(plan: CutPlan) -> CutPlan:
    """``plan`` with every segment to be cut again, whatever copies are stored."""
    return replace(plan, files={i: replace(f, kept=False) for i, f in plan.files.items()})
