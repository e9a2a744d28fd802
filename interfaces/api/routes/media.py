"""Media behind signed links (``interfaces.api.links``): the original and the evidence segments
with byte ranges, the review proxy, and HLS playlists whose every file is itself a signed link.
Every read is a custody event (``view``), logged against the case the link was opened from.

What a link opens is checked again on every use, as the principal is now: a case that links only
a window of a recording gives its segments and proxy files that overlap the window (the
playlists list only those), and never the original (``catalog.scopes``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Literal, Protocol

from fastapi import APIRouter, Header, HTTPException, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from catalog.models import Recording
from catalog.repository import Event
from catalog.scopes import Scope
from integrity.segment_files import plan_from_rows
from interfaces.api.deps import API, Services, ServicesDep, _deny, reachable_recording
from interfaces.api.links import LinkClaim, MediaLink, MediaLinkDep, _range, link_url
from interfaces.api.schemas import _media

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".flv": "video/x-flv",
}

DISCONTINUITY = "#EXT-X-DISCONTINUITY"
SEGMENT_TAGS = ("#EXTINF", DISCONTINUITY, "#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-BYTERANGE")
"""Tags that belong to the media file listed after them (RFC 8216, 4.3.2)."""

router = APIRouter()

Chunks = Callable[[int, int], Iterator[bytes]]
"""(start, length) → the bytes of a file, in chunks."""


@router.get(
    f"{API}/media/{{recording_id}}/original",
    responses=_media("video/mp4", "video/mp2t", partial=True),
    tags=["media"],
    response_class=Response,
)
def media_original(
    link: MediaLinkDep,
    services: ServicesDep,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """The original, byte ranges supported (the signed link stands for the bearer); only for
    those allowed the whole recording."""
    rec, scope = _opened(services, link)
    if not scope.whole:
        reason = "the original holds more than the case links"
        _deny(services, link.caller.id, reason, "GET media", link.case, rec.id)
        raise HTTPException(404, f"{rec.id}: {reason}; its segments in the window are served")
    kind = MEDIA_TYPES.get(Path(rec.original_key).suffix.lower(), "application/octet-stream")
    return _serve(services, "originals", rec.original_key, rec.size, range_, link, rec, kind)


@router.get(
    f"{API}/media/{{recording_id}}/index.m3u8",
    responses=_media("application/vnd.apple.mpegurl"),
    tags=["media"],
    response_class=Response,
)
def media_playlist(link: MediaLinkDep, services: ServicesDep) -> Response:
    """The HLS playlist, each segment the caller may see a signed link."""
    rec, scope = _opened(services, link)
    if not rec.playlist_key:
        raise HTTPException(404, f"{rec.id} has no playlist yet")
    files = services.vigil.catalog.segments(rec.id)
    return _signed_playlist(services, link, rec.playlist_key, files, scope, "segments")


@router.get(
    f"{API}/media/{{recording_id}}/segments/{{index}}",
    responses=_media("video/mp2t", "video/x-matroska", partial=True),
    tags=["media"],
    response_class=Response,
)
def media_segment(
    link: MediaLinkDep,
    index: Annotated[int, Field(ge=0, le=10**7)],
    services: ServicesDep,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """One evidence segment (MPEG-TS; Matroska for codecs MPEG-TS cannot carry): the stored
    copy, or, when none is kept, the segment cut again from the original and checked against
    its signed SHA-256 (``integrity.segment_files``)."""
    rec, scope = _opened(services, link)
    files = services.vigil.catalog.segments(rec.id)
    item = next((f for f in files if f.index == index), None)
    plan = plan_from_rows(rec, files) if item is not None and not item.kept else None
    if plan is None:
        return _serve_listed(services, link, rec, scope, files, index, range_, "segment")
    segment_files = services.vigil.segment_files
    segment_files.prepare(plan, index)  # cut now: an error is answered, not a broken stream

    def chunks(start: int, length: int) -> Iterator[bytes]:
        with segment_files.path(plan, index) as path, path.open("rb") as fh:
            fh.seek(start)
            while length > 0 and (chunk := fh.read(min(1 << 20, length))):
                length -= len(chunk)
                yield chunk

    return _serve_listed(services, link, rec, scope, files, index, range_, "segment", chunks=chunks)


@router.get(
    f"{API}/media/{{recording_id}}/proxy.m3u8",
    responses=_media("application/vnd.apple.mpegurl"),
    tags=["media"],
    response_class=Response,
)
def media_proxy_playlist(link: MediaLinkDep, services: ServicesDep) -> Response:
    """The review proxy's HLS playlist, each file the caller may see a signed link."""
    rec, scope = _opened(services, link)
    if not rec.proxy_playlist_key:
        raise HTTPException(404, f"{rec.id} has no review proxy")
    files = services.vigil.catalog.proxy_segments(rec.id)
    return _signed_playlist(services, link, rec.proxy_playlist_key, files, scope, "proxy")


@router.get(
    f"{API}/media/{{recording_id}}/proxy/{{index}}",
    responses=_media("video/mp2t", partial=True),
    tags=["media"],
    response_class=Response,
)
def media_proxy_segment(
    link: MediaLinkDep,
    index: Annotated[int, Field(ge=0, le=10**7)],
    services: ServicesDep,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """One MPEG-TS file of the review proxy (for viewing; the evidence is the segments)."""
    rec, scope = _opened(services, link)
    files = services.vigil.catalog.proxy_segments(rec.id)
    return _serve_listed(services, link, rec, scope, files, index, range_, "proxy file")


class _Listed(Protocol):
    key: str
    index: int
    size: int
    start_s: float
    end_s: float


def _opened(services: Services, link: MediaLink) -> tuple[Recording, Scope]:
    """The recording a checked link opens, and what of it its principal may see now."""
    return reachable_recording(
        services, link.caller, link.recording_id, "recording.play", "GET media", link.case
    )


def _serve_listed(
    services: Services,
    link: MediaLink,
    rec: Recording,
    scope: Scope,
    files: Sequence[_Listed],
    index: int,
    range_header: str | None,
    what: str,
    chunks: Chunks | None = None,
) -> Response:
    """File ``index`` of a recording's segments or proxy files, by its own media type; one
    outside the caller's windows is answered as one that does not exist."""
    item = next((f for f in files if f.index == index), None)
    if item is not None and not scope.covers(item.start_s, item.end_s):
        reason = f"{what} {index} is outside the case's window"
        _deny(services, link.caller.id, reason, "GET media", link.case, rec.id)
        item = None
    if item is None:
        raise HTTPException(404, f"{rec.id} has no {what} {index}")
    kind = MEDIA_TYPES.get(Path(item.key).suffix.lower(), "video/mp2t")
    return _serve(services, "derived", item.key, item.size, range_header, link, rec, kind, chunks)


def _signed_playlist(
    services: Services,
    link: MediaLink,
    key: str,
    files: Sequence[_Listed],
    scope: Scope,
    path: str,
) -> Response:
    """A stored HLS playlist with each file the caller may see replaced by a signed link to
    ``path/<index>`` for the same principal, token and case as ``link``, and the others left
    out (a discontinuity marks where)."""
    names = {f.key.rpartition("/")[2]: f for f in files}
    with services.vigil.store.open("derived", key) as fh:
        text = fh.read().decode()
    expires = int(time.time()) + services.vigil.settings.api_media_ttl_s
    caller = link.caller
    lines: list[str] = []
    pending: list[str] = []  # the tags of the next file, kept or dropped with it
    skipped = False
    for line in text.splitlines():
        if line.startswith(SEGMENT_TAGS):
            pending.append(line)
            continue
        item = names.get(line)
        if item is None:
            lines += [*pending, line]
        elif scope.covers(item.start_s, item.end_s):
            if skipped and lines and DISCONTINUITY not in pending:
                pending.insert(0, DISCONTINUITY)
            claim = LinkClaim(
                link.recording_id, f"{path}/{item.index}", caller.id, caller.token_id or 0,
                link.case or "", expires,
            )  # fmt: skip
            lines += [*pending, link_url(services.secret, claim)]
            skipped = False
        else:
            skipped = True
        pending = []
    return Response("\n".join(lines) + "\n", media_type="application/vnd.apple.mpegurl")


def _serve(
    services: Services,
    bucket: Literal["originals", "derived"],
    key: str,
    size: int,
    range_header: str | None,
    link: MediaLink,
    rec: Recording,
    media_type: str,
    chunks: Chunks | None = None,
) -> Response:
    """Bytes of the stored object ``key`` (or those ``chunks`` gives), as asked."""
    wanted = _range(range_header, size)
    start, length = wanted if wanted is not None else (0, size)
    services.vigil.catalog.add_event(
        Event(
            "view",
            link.caller.id,
            rec.id,
            link.case,
            reason=f"media {key.rpartition('/')[2]} bytes {start}+{length}",
        )
    )
    store = services.vigil.store

    def stored(start: int, length: int) -> Iterator[bytes]:
        with store.open_range(bucket, key, start, length) as fh:
            while chunk := fh.read(1 << 20):
                yield chunk

    def body() -> Iterator[bytes]:
        return (chunks or stored)(start, length)

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(length)}
    if wanted is None:
        return StreamingResponse(body(), media_type=media_type, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    return StreamingResponse(body(), status_code=206, media_type=media_type, headers=headers)
