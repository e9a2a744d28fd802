"""One recording: short-lived signed links to play it, and recomputing its hashes.

Both follow the caller's scope of the recording (``catalog.scopes``): through a case that links
only a window, the links play the segments in the window (no original) and verification reports
the segments in the window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from catalog.access import Caller
from catalog.models import Recording
from catalog.repository import now
from catalog.scopes import Scope, visible_indexes
from interfaces.api.background import _in_thread
from interfaces.api.deps import API, CallerDep, Services, ServicesDep, reachable_recording
from interfaces.api.links import issue_link
from interfaces.api.schemas import (
    _ID,
    ERRORS,
    CasePath,
    FindingOut,
    PlaybackOut,
    VerifyOut,
    WindowOut,
)
from workers.messages import RecordingSegmented

router = APIRouter()


@router.get(
    f"{API}/recordings/{{recording_id}}/playback",
    response_model=PlaybackOut,
    responses=ERRORS,
    tags=["recordings"],
)
def playback(
    recording_id: CasePath,
    caller: CallerDep,
    services: ServicesDep,
    case: Annotated[
        str | None, Query(pattern=_ID, description="The case it is opened from.")
    ] = None,
) -> PlaybackOut:
    """Short-lived signed URLs for playback (original with byte ranges, HLS segments). The
    original only for those allowed the whole recording; through a case that links a window,
    the playlists list the files that overlap it (``window``)."""
    rec, scope = reachable_recording(
        services, caller, recording_id, "recording.play", "GET playback", case
    )
    original, expires = issue_link(services, caller, rec.id, "original", case)
    playlist = issue_link(services, caller, rec.id, "index.m3u8", case)[0]
    proxy = issue_link(services, caller, rec.id, "proxy.m3u8", case)[0]
    pending = _proxy_wanted(services, rec)
    return PlaybackOut(
        recording_id=rec.id,
        original=original if scope.whole else None,
        playlist=playlist if rec.playlist_key else None,
        proxy=proxy if rec.proxy_playlist_key else None,
        proxy_pending=pending,
        windows=[WindowOut(from_s=lo, to_s=hi) for lo, hi in scope.windows],
        expires_at=datetime.fromtimestamp(expires, now().tzinfo),
    )


def _proxy_wanted(services: Services, rec: Recording) -> bool:
    """Whether ``rec``'s review proxy is being made: one that expired from the cache
    (``catalog.proxy_cache``) is asked for again here, and made by the transcode stage."""
    if rec.playback != "proxy" or rec.proxy_playlist_key is not None:
        return False
    if rec.status == "complete":  # else the pipeline is still making the first one
        services.vigil.publish(
            RecordingSegmented(recording_id=rec.id, count=rec.segment_count or 0)
        )
        if services.background is not None:
            services.background.kick()
    return True


@router.post(
    f"{API}/recordings/{{recording_id}}/verify",
    response_model=VerifyOut,
    responses=ERRORS,
    tags=["recordings"],
)
async def verify_recording(
    recording_id: CasePath, caller: CallerDep, services: ServicesDep
) -> VerifyOut:
    """Recompute every hash of one recording."""
    rec, scope = reachable_recording(services, caller, recording_id, "case.verify", "POST verify")
    return await _verify(services, caller, rec.id, scope)


async def _verify(services: Services, caller: Caller, recording_id: str, scope: Scope) -> VerifyOut:
    """Verify the recording; report the segments ``scope`` covers."""
    result = await _in_thread(
        services.vigil.verifier.verify_recording, recording_id, actor=caller.id
    )
    spans = [(s.index, s.start_s, s.end_s) for s in services.vigil.catalog.segments(recording_id)]
    shown = visible_indexes(scope, spans)
    segments = [c for c in result.segments if c.index in shown]
    return VerifyOut(
        recording_id=result.recording_id,
        ok=result.ok,
        original=result.original.kind,
        problems=list(result.problems),
        segments={str(c.index): c.kind for c in segments},
        findings=[FindingOut.of(f) for f in (result.original, *segments)],
    )
