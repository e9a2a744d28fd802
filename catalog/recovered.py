"""A recording recovered from an unfinalised original (issue 17): the ``original.recovered``
custody event that links the recovered stream, a derived object, to the untouched original.

The event is the record (it is in the signed log); there is no catalogue column to rewrite.
What the custody path segments, and what the timeline says, are read from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from catalog.models import CustodyEvent, Recording
from catalog.repository import Catalog
from store.base import Bucket

RECOVERED = "original.recovered"
"""The custody action of a recovery."""


class RecoveredDetail(BaseModel):
    """What was recovered from which original, with what, and what was not."""

    original_sha256: str  # the untouched original (stored byte-exact, never modified)
    original_size: int
    key: str  # the recovered stream, a write-once derived object
    sha256: str
    size: int
    reference_recording: str  # whose codec setup was used
    reference_sha256: str  # that recording's original
    method: str
    codec: str
    width: int
    height: int
    frame_rate: str  # "timescale/delta", the reference's
    frames: int  # pictures recovered
    mdat_bytes: int  # of the original's mdat, as far as the file goes
    video_bytes: int  # of it, in the units recovered
    not_recovered: list[str]  # what the original held that the recovered stream has not

    def describe(self) -> str:
        """ "recovered: video only, audio not recovered (...)": the timeline's words."""
        audio_lost = any(n.startswith("soun") for n in self.not_recovered)
        what = "video only, audio not recovered" if audio_lost else "video"
        num, _, den = self.frame_rate.partition("/")
        fps = float(num) / float(den or 1)
        return (
            f"recovered: {what} ({self.frames} frames of {self.codec} {self.width}x{self.height}"
            f" at {fps:.4g} fps, codec setup of {self.reference_recording})"
        )


def recovered_detail(catalog: Catalog, recording_id: str) -> RecoveredDetail | None:
    """The recording's recovery, from its ``original.recovered`` custody event (None: it was
    not recovered, or the event does not read as one)."""
    return recovered_in(catalog.events(recording_ids=[recording_id], actions={RECOVERED}))


def recovered_in(events: Sequence[CustodyEvent]) -> RecoveredDetail | None:
    """``recovered_detail`` from the recording's custody events, already read."""
    for event in events:
        if event.action == RECOVERED and event.detail:
            try:
                return RecoveredDetail.model_validate_json(event.detail)
            except ValidationError:
                return None
    return None


def source_object(catalog: Catalog, recording: Recording) -> tuple[Bucket, str]:
    """Where the footage to segment is: the recovered stream of a recovered recording, else
    its original."""
    found = recovered_detail(catalog, recording.id)
    if found is not None:
        return "derived", found.key
    return "originals", recording.original_key
