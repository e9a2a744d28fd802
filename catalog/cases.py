"""Linking footage to cases, with the legal hold that keeps linked footage from deletion.

Order of work, safe at any crash: on link, the hold is set before the link row is written (a
hold without a link only over-protects); on unlink, the link row goes first and the hold is
lifted only when no other active link remains.
"""

from __future__ import annotations

from pydantic import BaseModel

from catalog.copies import stored_segments
from catalog.ids import require_case_id, require_reason, require_window
from catalog.models import CaseLink, Recording
from catalog.recovered import recovered_detail
from catalog.repository import Catalog, Event
from store.base import Bucket, ObjectStore


class LinkDetail(BaseModel):
    """The linked window of the recording, seconds on its timeline (None: from start / to end)."""

    from_s: float | None
    to_s: float | None


class CaseService:
    def __init__(self, *, catalog: Catalog, store: ObjectStore) -> None:
        self.catalog = catalog
        self.store = store

    def _objects(self, recording: Recording) -> list[tuple[Bucket, str]]:
        objects: list[tuple[Bucket, str]] = [("originals", recording.original_key)]
        objects += [
            ("derived", s.key) for s in stored_segments(self.catalog, self.store, recording.id)
        ]
        if recording.playlist_key:
            objects.append(("derived", recording.playlist_key))
        recovered = recovered_detail(self.catalog, recording.id)
        if recovered is not None:  # held with the original it was recovered from
            objects.append(("derived", recovered.key))
        return objects

    def _hold(self, recording: Recording, on: bool, actor: str, case_id: str) -> None:
        objects = self._objects(recording)
        for bucket, key in objects:
            self.store.set_legal_hold(bucket, key, on)
        self.catalog.add_event(
            Event(
                "legal_hold.set" if on else "legal_hold.lifted",
                actor,
                recording.id,
                case_id,
                reason=f"{len(objects)} object(s)",
            )
        )

    def link(
        self,
        case_id: str,
        recording_id: str,
        *,
        from_s: float | None,
        to_s: float | None,
        reason: str,
        actor: str,
    ) -> CaseLink:
        case_id, reason = require_case_id(case_id), require_reason(reason)
        recording = self.catalog.recording(recording_id)
        from_s, to_s = require_window(from_s, to_s, recording.duration_s)
        self._hold(recording, True, actor, case_id)
        return self.catalog.link(
            case_id,
            recording.id,
            from_s=from_s,
            to_s=to_s,
            reason=reason,
            actor=actor,
            detail=LinkDetail(from_s=from_s, to_s=to_s),
        )

    def unlink(self, case_id: str, recording_id: str, *, reason: str, actor: str) -> int:
        case_id, reason = require_case_id(case_id), require_reason(reason)
        recording = self.catalog.recording(recording_id)
        count = self.catalog.unlink(case_id, recording.id, reason=reason, actor=actor)
        if count and not self.catalog.active_links(recording.id):
            self._hold(recording, False, actor, case_id)
        return count
