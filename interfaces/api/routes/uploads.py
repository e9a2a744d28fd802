"""Resumable uploads from devices: start, send chunks (each checked against its hash and
appended only at the confirmed offset), resume after a dropped connection, finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import ValidationError

from catalog.access import Caller
from ingest.service import RecordingMetadata
from ingest.uploads import MAX_CHUNK, UploadState
from interfaces.api.deps import API, CallerDep, Services, ServicesDep, UploaderDep, _deny, _require
from interfaces.api.errors import redact_paths
from interfaces.api.schemas import (
    _HEX64,
    ERRORS,
    ErrorBody,
    HexId,
    UploadFinish,
    UploadStart,
    UploadStatus,
)

router = APIRouter()


@router.post(
    f"{API}/uploads",
    response_model=UploadStatus,
    status_code=201,
    responses=ERRORS,
    tags=["uploads"],
)
async def start_upload(
    body: UploadStart, caller: UploaderDep, services: ServicesDep
) -> UploadStatus:
    """Start a resumable upload; the device's clock reading is compared with the server's."""
    return await services.uploads_lane.run(lambda: _start(body, caller, services))


def _start(body: UploadStart, caller: Caller, services: Services) -> UploadStatus:
    _require(services, caller, "upload", "POST uploads")
    if caller.role == "device" and body.device_id != caller.device_id:
        reason = f"device credential {caller.device_id} cannot upload for {body.device_id}"
        _deny(services, caller.id, reason, "POST uploads")
        raise HTTPException(403, reason)
    officer = _officer_named(services, caller, body.officer_id)
    try:
        metadata = RecordingMetadata(
            device_id=body.device_id,
            officer_id=officer,
            device_start=body.device_start,
            device_clock_at_handover=body.device_clock,
            category=body.category,
            gps_track=tuple(body.gps_track),
            original_name=Path(body.original_name).name or "recording",
        )
    except ValidationError as exc:
        raise HTTPException(422, f"metadata: {exc.errors()[0]['msg']}") from exc
    state = services.uploads.start(caller.id, metadata, body.size)
    return _upload_status(state, services)


def _officer_named(services: Services, caller: Caller, named: str | None) -> str | None:
    """The officer an upload is recorded for. An officer uploads as themselves. A device bound
    to an officer names that officer or none (then it is theirs); naming another is refused
    (422). An unbound device's officer is recorded as named, but gives that officer no
    playback (``AccessService.playback_officer``)."""
    if caller.role == "officer" or caller.officer_id is None:
        return caller.officer_id if caller.role == "officer" else named
    if named is not None and named != caller.officer_id:
        reason = (
            f"device credential {caller.id} is bound to officer {caller.officer_id} and cannot"
            f" name officer {named}"
        )
        _deny(services, caller.id, reason, "POST uploads")
        raise HTTPException(422, reason)
    return caller.officer_id


@router.get(
    f"{API}/uploads/{{upload_id}}",
    response_model=UploadStatus,
    responses=ERRORS,
    tags=["uploads"],
)
def upload_status(
    upload_id: HexId,
    caller: CallerDep,
    services: ServicesDep,
) -> UploadStatus:
    """How many bytes are confirmed: after a dropped connection, resume from ``offset``."""
    return _upload_status(services.uploads.state(upload_id, caller.id), services)


@router.put(
    f"{API}/uploads/{{upload_id}}",
    response_model=UploadStatus,
    responses={**ERRORS, 413: {"model": ErrorBody}},
    tags=["uploads"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_chunk(
    upload_id: HexId,
    request: Request,
    caller: UploaderDep,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, description="Byte the chunk starts at.")],
    x_chunk_sha256: Annotated[str, Header(pattern=_HEX64, description="SHA-256 of the chunk.")],
) -> UploadStatus:
    """Send one chunk. It is appended only if its hash matches and it starts exactly at the
    confirmed offset (409 says where to resume)."""
    parts: list[bytes] = []
    received = 0
    async for part in request.stream():
        parts.append(part)
        received += len(part)
        if received > MAX_CHUNK:
            raise HTTPException(413, f"chunks are at most {MAX_CHUNK} bytes")

    def put() -> UploadState:  # the body joined in one copy, off the event loop
        return services.uploads.put_chunk(
            upload_id, caller.id, offset=offset, data=b"".join(parts), sha256=x_chunk_sha256
        )

    state = await services.uploads_lane.run(put)
    return _upload_status(state, services)


@router.post(
    f"{API}/uploads/{{upload_id}}/finish",
    response_model=UploadStatus,
    responses=ERRORS,
    tags=["uploads"],
)
async def finish_upload(
    upload_id: HexId,
    body: UploadFinish,
    caller: UploaderDep,
    services: ServicesDep,
) -> UploadStatus:
    """Check the whole file's SHA-256, then store and catalogue it; ``may_delete`` tells the
    device it may now delete its copy."""
    state, _result = await services.uploads_lane.run(
        lambda: services.uploads.finish(upload_id, caller.id, sha256=body.sha256, actor=caller.id)
    )
    if services.background is not None:
        services.background.kick()  # segmenting and hashing go on after the answer
    return _upload_status(state, services)


_STATUSES: dict[str, Literal["open", "complete", "failed", "expired"]] = {
    "complete": "complete",
    "failed": "failed",
    "expired": "expired",
}


def _upload_status(state: UploadState, services: Services) -> UploadStatus:
    status = _STATUSES.get(state.status, "open")
    return UploadStatus(
        upload_id=state.id,
        size=state.size,
        offset=state.offset,
        chunks=state.chunks,
        status=status,
        recording_id=state.recording_id,
        sha256=state.sha256,
        may_delete=state.may_delete,
        error=redact_paths(state.error, services.vigil.settings.data_dir) if state.error else None,
    )
