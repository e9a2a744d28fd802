"""Which segment copies a recording has in the store (issue 18): every segment signed with a
kept copy, and a copy ``vigil storage compact`` could not delete yet (under legal hold or
retention). What legal holds and the retention sweep act on; a segment with no copy is held and
deleted as its original is."""

from __future__ import annotations

from catalog.models import Segment
from catalog.repository import Catalog
from store.base import ObjectStore


def stored_segments(catalog: Catalog, store: ObjectStore, recording_id: str) -> list[Segment]:
    return [
        s
        for s in catalog.segments(recording_id)
        if s.kept or store.stat("derived", s.key) is not None
    ]
