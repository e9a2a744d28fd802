"""A case's footage as a timeline: recordings, segments, gaps and each segment's integrity state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from vigil_verify.continuity import Discontinuity, WallDiscontinuity

from catalog.clock import wall_clock
from catalog.gaps import device_gaps, recording_gaps
from catalog.models import CustodyEvent, Recording, Segment
from catalog.recovered import RECOVERED, RecoveredDetail, recovered_in
from catalog.repository import Catalog
from catalog.tracks import KeptTrack, TrackGps, TracksListed, describe_tracks
from integrity.credentials import CaptureCredentials
from integrity.verify import VerifyDetail


@dataclass(frozen=True)
class SegmentView:
    index: int
    start_s: float
    end_s: float
    wall_start: datetime | None  # device clock
    wall_start_server: datetime | None  # device clock corrected by the offset seen at handover
    sha256: str
    phash_digest: str | None
    phash_frames: int | None
    integrity: str  # "pending", "hashed", "verified", or what verification found


@dataclass(frozen=True)
class RecordingView:
    recording: Recording
    window: tuple[float | None, float | None]
    segments: tuple[SegmentView, ...]
    gaps: tuple[Discontinuity, ...]
    credentials: CaptureCredentials | None = None  # the C2PA manifest signed at capture
    # its subtitle, data and timecode tracks, where each is kept (None: not listed)
    tracks: tuple[KeptTrack, ...] | None = None
    # the GPS read out of those tracks, from the same signed event
    gps: tuple[TrackGps, ...] = ()
    # its footage recovered from an unfinalised original (``original.recovered``), if it was
    recovered: RecoveredDetail | None = None

    @property
    def continuous(self) -> bool:
        return not self.gaps

    @property
    def provenance(self) -> str:
        """ "signed at capture by <signer>: valid / invalid / untrusted", or that it was not."""
        if self.credentials is None:
            return "no C2PA manifest"
        return self.credentials.describe()

    @property
    def recovery(self) -> str | None:
        """ "recovered: video only, audio not recovered (...)", or None: not recovered."""
        return self.recovered.describe() if self.recovered is not None else None

    @property
    def tracks_kept(self) -> str:
        """ "subtitle mov_text (stream 2): kept in the original only, not in the segments"."""
        return describe_tracks(self.tracks)


@dataclass(frozen=True)
class CaseTimeline:
    case_id: str
    recordings: tuple[RecordingView, ...]
    device_gaps: tuple[WallDiscontinuity, ...]

    @property
    def continuous(self) -> bool:
        return all(r.continuous for r in self.recordings) and not self.device_gaps


FACT_ACTIONS = frozenset({"verify", "original.c2pa", "segment", RECOVERED})
"""The actions a recording's timeline reads its facts from (``case_timeline``)."""


def verified_states(catalog: Catalog, recording_id: str) -> dict[int, str]:
    """Each segment's outcome in the recording's latest verification, read from that
    verification's custody event (a row's ``verify_status`` is an index anyone with database
    access could rewrite; the event is in the signed log)."""
    return verified_in(catalog.events(recording_ids=[recording_id], actions={"verify"}))


def verified_in(events: Sequence[CustodyEvent]) -> dict[int, str]:
    """``verified_states`` from the recording's custody events, already read."""
    latest = None
    for event in events:
        if event.action == "verify" and event.detail:
            latest = event
    if latest is None or latest.detail is None:
        return {}
    try:
        return VerifyDetail.model_validate_json(latest.detail).segments
    except ValidationError:
        return {}


def capture_credentials(catalog: Catalog, recording_id: str) -> CaptureCredentials | None:
    """The finding on the C2PA manifest the original carried, from the recording's
    ``original.c2pa`` custody event (written with its ``ingest`` event, in the signed log;
    there is no row to rewrite). None: the original carried no manifest."""
    return credentials_in(catalog.events(recording_ids=[recording_id], actions={"original.c2pa"}))


def credentials_in(events: Sequence[CustodyEvent]) -> CaptureCredentials | None:
    """``capture_credentials`` from the recording's custody events, already read."""
    for event in events:
        if event.action == "original.c2pa":
            return CaptureCredentials.parse(event.detail)
    return None


def listed_tracks(catalog: Catalog, recording_id: str) -> TracksListed:
    """The recording's subtitle, data and timecode tracks, where each is kept, and the GPS read
    out of them, from its ``segment`` custody event (in the signed log; the catalogue column is
    a copy anyone with database access could rewrite). Tracks None: not listed (segmented
    before they were, or not yet), or listed wrongly (``integrity.logfacts`` reports that as a
    problem of the log)."""
    return tracks_in(catalog.events(recording_ids=[recording_id], actions={"segment"}))


def tracks_in(events: Sequence[CustodyEvent]) -> TracksListed:
    """``listed_tracks`` from the recording's custody events, already read."""
    for event in events:
        if event.action == "segment" and event.detail:
            try:
                return TracksListed.model_validate_json(event.detail)
            except ValidationError:
                return TracksListed()
    return TracksListed()


def integrity_state(segment: Segment, verified: dict[int, str]) -> str:
    """ "verified" or what the latest verification found; before any: "hashed" or "pending"."""
    if segment.index in verified:
        return verified[segment.index]
    return "hashed" if segment.phash is not None else "pending"


def _in_window(segment: Segment, window: tuple[float | None, float | None]) -> bool:
    lo, hi = window
    return (lo is None or segment.end_s > lo) and (hi is None or segment.start_s < hi)


def case_timeline(
    catalog: Catalog, case_id: str, *, tolerance_frames: float, device_tolerance_s: float
) -> CaseTimeline:
    views: list[RecordingView] = []
    recordings: list[Recording] = []
    for link in catalog.case_links(case_id):
        rec = catalog.recording(link.recording_id)
        window = (link.from_s, link.to_s)
        segments = [s for s in catalog.segments(rec.id) if _in_window(s, window)]
        gaps = recording_gaps(rec, segments, tolerance_frames)
        # Read once, only the actions the facts below come from (not every view of it).
        events = catalog.events(recording_ids=[rec.id], actions=FACT_ACTIONS)
        verified = verified_in(events)
        listed = tracks_in(events)
        views.append(
            RecordingView(
                recording=rec,
                window=window,
                segments=tuple(
                    SegmentView(
                        index=s.index,
                        start_s=s.start_s,
                        end_s=s.end_s,
                        wall_start=wall_clock(rec, s.start_s, corrected=False),
                        wall_start_server=wall_clock(rec, s.start_s, corrected=True),
                        sha256=s.sha256,
                        phash_digest=s.phash_digest,
                        phash_frames=s.phash_frames,
                        integrity=integrity_state(s, verified),
                    )
                    for s in segments
                ),
                gaps=tuple(gaps),
                credentials=credentials_in(events),
                tracks=listed.tracks,
                gps=listed.gps,
                recovered=recovered_in(events),
            )
        )
        recordings.append(rec)
    views.sort(key=lambda v: v.recording.device_start or v.recording.received_at)
    return CaseTimeline(case_id, tuple(views), tuple(device_gaps(recordings, device_tolerance_s)))
