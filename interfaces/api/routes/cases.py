"""Cases: the ones a caller may see, a case's timeline (recordings, segments, gaps and each
segment's integrity state), and verifying all of a case's footage."""

from __future__ import annotations

from fastapi import APIRouter

from catalog.access import visible_cases
from catalog.scopes import Scope
from integrity.timeline import CaseTimeline, case_timeline
from interfaces.api.deps import (
    API,
    CallerDep,
    ServicesDep,
    _require,
    _viewed,
    exact_recording,
    scope_of,
)
from interfaces.api.routes.recordings import _verify
from interfaces.api.schemas import (
    ERRORS,
    CasePath,
    CaseSummary,
    DeviceGapOut,
    GapOut,
    RecordingOut,
    SegmentOut,
    TimelineOut,
    VerifyOut,
)

router = APIRouter()


@router.get(f"{API}/cases", response_model=list[CaseSummary], responses=ERRORS, tags=["cases"])
def list_cases(caller: CallerDep, services: ServicesDep) -> list[CaseSummary]:
    """The cases the caller may see."""
    _require(services, caller, "case.list", "GET cases")
    catalog = services.vigil.catalog
    ids = visible_cases(caller, [c.id for c in catalog.cases()])
    _viewed(services, caller, "case list")
    return [CaseSummary(case_id=c, recordings=len(catalog.case_links(c))) for c in ids]


@router.get(
    f"{API}/cases/{{case_id}}", response_model=TimelineOut, responses=ERRORS, tags=["cases"]
)
def case(case_id: CasePath, caller: CallerDep, services: ServicesDep) -> TimelineOut:
    """A case's timeline: recordings, segments, gaps and each segment's integrity state."""
    _require(services, caller, "case.read", "GET case", case_id=case_id)
    settings = services.vigil.settings
    timeline = case_timeline(
        services.vigil.catalog,
        case_id,
        tolerance_frames=settings.continuity_tolerance_frames,
        device_tolerance_s=settings.device_gap_tolerance_s,
    )
    _viewed(services, caller, "case timeline", case_id=case_id)
    return _timeline_out(timeline)


@router.post(
    f"{API}/cases/{{case_id}}/verify",
    response_model=list[VerifyOut],
    responses=ERRORS,
    tags=["cases"],
)
async def verify_case(
    case_id: CasePath, caller: CallerDep, services: ServicesDep
) -> list[VerifyOut]:
    """Recompute every hash of the case's footage."""
    _require(services, caller, "case.verify", "POST verify", case_id=case_id)
    links = services.vigil.catalog.case_links(case_id)
    out = []
    for rec_id in dict.fromkeys(link.recording_id for link in links):
        rec = exact_recording(services, rec_id)
        scope = scope_of(services, caller, rec, "case.verify", case_id) or Scope(False)
        out.append(await _verify(services, caller, rec_id, scope))
    return out


def _timeline_out(timeline: CaseTimeline) -> TimelineOut:
    return TimelineOut(
        case_id=timeline.case_id,
        continuous=timeline.continuous,
        recordings=[
            RecordingOut(
                id=v.recording.id,
                device_id=v.recording.device_id,
                officer_id=v.recording.officer_id,
                category=v.recording.category,
                device_start=v.recording.device_start,
                received_at=v.recording.received_at,
                clock_offset_s=v.recording.clock_offset_s,
                duration_s=v.recording.duration_s,
                status=v.recording.status,
                sha256=v.recording.sha256,
                damage=v.recording.damage,
                audio_tracks=v.recording.audio_tracks,
                audio_codec=v.recording.audio_codec,
                provenance=v.provenance,
                tracks=v.tracks_kept,
                recovered=v.recovery,
                extra_tracks=None if v.tracks is None else list(v.tracks),
                gps=list(v.gps),
                window_from_s=v.window[0],
                window_to_s=v.window[1],
                segments=[
                    SegmentOut(
                        index=s.index,
                        start_s=s.start_s,
                        end_s=s.end_s,
                        wall_start=s.wall_start,
                        sha256=s.sha256,
                        phash_digest=s.phash_digest,
                        integrity=s.integrity,
                    )
                    for s in v.segments
                ],
                gaps=[GapOut(kind=g.kind, start_s=g.start, seconds=g.seconds) for g in v.gaps],
                continuous=v.continuous,
            )
            for v in timeline.recordings
        ],
        device_gaps=[
            DeviceGapOut(
                kind=g.kind, after=g.after, before=g.before, start=g.start, seconds=g.seconds
            )
            for g in timeline.device_gaps
        ],
    )
