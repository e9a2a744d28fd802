"""One recording: short-lived signed links to play it, and recomputing its hashes."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from catalog.access import Caller
from catalog.repository import now
from interfaces.api.background import _in_thread
from interfaces.api.deps import (
    API,
    CallerDep,
    Services,
    ServicesDep,
    _recording_scope,
    recording_for,
)
from interfaces.api.links import _media_url
from interfaces.api.schemas import _ID, ERRORS, CasePath, PlaybackOut, VerifyOut

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
    """Short-lived signed URLs for playback (original with byte ranges, HLS segments)."""
    rec = recording_for(services, recording_id)
    _recording_scope(services, caller, rec, "recording.play", "GET playback", case)
    link = functools.partial(_media_url, services.secret, rec.id, caller.id, case or "")
    original, expires = link("original")
    playlist = link("index.m3u8")[0] if rec.playlist_key else None
    proxy = link("proxy.m3u8")[0] if rec.proxy_playlist_key else None
    return PlaybackOut(
        recording_id=rec.id,
        original=original,
        playlist=playlist,
        proxy=proxy,
        expires_at=datetime.fromtimestamp(expires, now().tzinfo),
    )


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
    rec = recording_for(services, recording_id)
    _recording_scope(services, caller, rec, "case.verify", "POST verify")
    return await _verify(services, caller, rec.id)


async def _verify(services: Services, caller: Caller, recording_id: str) -> VerifyOut:
    result = await _in_thread(
        services.vigil.verifier.verify_recording, recording_id, actor=caller.id
    )
    return VerifyOut(
        recording_id=result.recording_id,
        ok=result.ok,
        original=result.original,
        problems=list(result.problems),
        segments={str(c.index): c.state for c in result.segments},
    )
