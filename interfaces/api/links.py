"""Signed media links: short-lived URLs that stand for a caller instead of a bearer token, so
that a ``<video>`` element or an HLS player can follow them; and the byte ranges they serve."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from interfaces.api.deps import API, ServicesDep, _deny
from interfaces.api.schemas import _ID, CasePath

MEDIA_TTL_S = 300


def _sign(secret: bytes, recording_id: str, caller: str, case: str, expires: int) -> str:
    message = f"{recording_id}|{caller}|{case}|{expires}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:43]


def _media_url(
    secret: bytes, recording_id: str, caller: str, case: str, path: str
) -> tuple[str, int]:
    """A link to ``path`` of the recording, standing for ``caller`` for MEDIA_TTL_S, and
    naming the case it was opened from (so that every media read is logged against it)."""
    expires = int(time.time()) + MEDIA_TTL_S
    sig = _sign(secret, recording_id, caller, case, expires)
    query = f"by={caller}&case={case}&exp={expires}&sig={sig}"
    return f"{API}/media/{recording_id}/{path}?{query}", expires


@dataclass(frozen=True)
class MediaLink:
    """A checked signed media link: who it stands for and the case it was opened from."""

    recording_id: str
    by: str
    case: str | None


def _media_link(
    request: Request,
    services: ServicesDep,
    recording_id: CasePath,
    by: Annotated[str, Query(pattern=_ID)],
    exp: Annotated[int, Query(ge=0, le=2**40)],
    sig: Annotated[str, Query(min_length=1, max_length=64)],
    case: Annotated[str, Query(pattern=r"^[A-Za-z0-9._:-]{0,64}$")] = "",
) -> MediaLink:
    expected = _sign(services.secret, recording_id, by, case, exp)
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if not hmac.compare_digest(expected.encode(), sig.encode()) or exp < time.time():
        where = f"{request.method} {request.url.path}"
        reason = "media link invalid or expired"
        _deny(services, by or "anonymous", reason, where, case or None, recording_id)
        raise HTTPException(403, "media link invalid or expired; ask for a new one")
    return MediaLink(recording_id, by, case or None)


MediaLinkDep = Annotated[MediaLink, Depends(_media_link)]


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single-range request, None for the whole; 416 if unsatisfiable."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise HTTPException(416, f"unsupported range {header!r}; one bytes=a-b range")
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start = max(0, size - int(last))
        end = size - 1
    if start >= size or end < start:
        raise HTTPException(
            416,
            f"range {header!r} outside {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end - start + 1
