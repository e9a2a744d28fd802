"""Resumable uploads from devices: start, send chunks (each checked against its hash and
appended only at the confirmed offset), resume after a dropped connection, finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import ValidationError

from ingest.service import RecordingMetadata
from ingest.uploads import MAX_CHUNK, UploadState
from interfaces.api.background import _in_thread
from interfaces.api.deps import API, CallerDep, Services, ServicesDep, _deny, _require
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
def start_upload(body: UploadStart, caller: CallerDep, services: ServicesDep) -> UploadStatus:
    """Start a resumable upload; the device's clock reading is compared with the server's."""
    _require(services, caller, "upload", "POST uploads")
    if caller.role == "device" and body.device_id != caller.device_id:
        reason = f"device credential {caller.device_id} cannot upload for {body.device_id}"
        _deny(services, caller.id, reason, "POST uploads")
        raise HTTPException(403, reason)
    officer = body.officer_id
    if caller.role == "officer":
        officer = caller.officer_id
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
    caller: CallerDep,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, description="Byte the chunk starts at.")],
    x_chunk_sha256: Annotated[str, Header(pattern=_HEX64, description="SHA-256 of the chunk.")],
) -> UploadStatus:
    """Send one chunk. It is appended only if its hash matches and it starts exactly at the
    confirmed offset (409 says where to resume)."""
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > MAX_CHUNK:
            raise HTTPException(413, f"chunks are at most {MAX_CHUNK} bytes")
    state = await _in_thread(
        services.uploads.put_chunk,
        upload_id,
        caller.id,
        offset=offset,
        data=bytes(data),
        sha256=x_chunk_sha256,
    )
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
    caller: CallerDep,
    services: ServicesDep,
) -> UploadStatus:
    """Check the whole file's SHA-256, then store and catalogue it; ``may_delete`` tells the
    device it may now delete its copy."""
    state, _result = await _in_thread(
        services.uploads.finish, upload_id, caller.id, sha256=body.sha256, actor=caller.id
    )
    if services.background is not None:
        services.background.kick()  # segmenting and hashing go on after the answer
    return _upload_status(state, services)


def _upload_status(state: UploadState, services: Services) -> UploadStatus:
    status: Literal["open", "complete", "failed"] = (
        "complete"
        if state.status == "complete"
        else "failed"
        if state.status == "failed"
        else "open"
    )
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
