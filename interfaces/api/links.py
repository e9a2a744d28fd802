"""Signed media links: short-lived URLs that stand for a caller instead of a bearer token, so
that a ``<video>`` element or an HLS player can follow them; and the byte ranges they serve.

A link is bound to what it opens and to whom: its HMAC covers the object's path (the original,
segment *i*, proxy file *i*, a playlist), the recording, the principal, the ID of the token the
link was issued under (never the token), the case it was opened from and its expiry, at most
``api_media_ttl_s`` (5 minutes by default) ahead. On every use the signature is checked first
(nothing is read from, or attributed to, the ``by`` of a link that fails it), then that the
token is still active and its principal enabled, and then, by the route, that the principal may
still see that object (``deps.reachable_recording``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Query, Request

from catalog.access import Caller
from interfaces.api.deps import API, Services, ServicesDep
from interfaces.api.guard import client_source
from interfaces.api.schemas import _ID, CasePath

CLOCK_SKEW_S = 60  # API processes on several hosts: a link may come from one slightly ahead
REFUSED = "media link invalid or expired; ask for a new one"
MAX_RANGE_CHARS = 100


@dataclass(frozen=True)
class LinkClaim:
    """What a media link stands for; its signature covers every field."""

    recording_id: str
    path: str  # "original", "index.m3u8", "segments/3", "proxy.m3u8", "proxy/3"
    principal: str
    token_id: int
    case: str  # "" when opened from no case
    expires: int  # Unix seconds

    def message(self) -> bytes:
        fields = (
            "vigil-media-link/2", self.recording_id, self.path, self.principal,
            str(self.token_id), self.case, str(self.expires),
        )  # fmt: skip
        return "\n".join(fields).encode()


def sign(secret: bytes, claim: LinkClaim) -> str:
    digest = hmac.new(secret, claim.message(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:43]


def link_url(secret: bytes, claim: LinkClaim) -> str:
    """The URL of ``claim`` (``by`` first: the principal a person reading the URL sees)."""
    query = {
        "by": claim.principal,
        "tok": claim.token_id,
        "case": claim.case,
        "exp": claim.expires,
        "sig": sign(secret, claim),
    }
    return f"{API}/media/{claim.recording_id}/{claim.path}?{urlencode(query)}"


def issue_link(
    services: Services, caller: Caller, recording_id: str, path: str, case: str | None
) -> tuple[str, int]:
    """A link to ``path`` of the recording standing for ``caller`` (under the token of this
    request) for ``api_media_ttl_s``; and its expiry."""
    if caller.token_id is None:
        raise HTTPException(403, "media links are issued only to a bearer token")
    expires = int(time.time()) + services.vigil.settings.api_media_ttl_s
    claim = LinkClaim(recording_id, path, caller.id, caller.token_id, case or "", expires)
    return link_url(services.secret, claim), expires


@dataclass(frozen=True)
class MediaLink:
    """A checked signed media link: the caller it stands for (as they are now), the path it
    opens and the case it was opened from."""

    recording_id: str
    path: str
    caller: Caller
    case: str | None


def _media_link(
    request: Request,
    services: ServicesDep,
    recording_id: CasePath,
    by: Annotated[str, Query(pattern=_ID)],
    tok: Annotated[int, Query(ge=1, le=2**53, description="The token it was issued under.")],
    exp: Annotated[int, Query(ge=0, le=2**40)],
    sig: Annotated[str, Query(min_length=1, max_length=64)],
    case: Annotated[str, Query(pattern=r"^[A-Za-z0-9._:-]{0,64}$")] = "",
) -> MediaLink:
    source = client_source(request)
    services.guard.check(source)
    path = str(request.scope["path"]).removeprefix(f"{API}/media/{recording_id}/")
    claim = LinkClaim(recording_id, path, by, tok, case, exp)
    expected = sign(services.secret, claim)
    at = time.time()
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    genuine = hmac.compare_digest(expected.encode(), sig.encode())
    if not genuine or exp > at + services.vigil.settings.api_media_ttl_s + CLOCK_SKEW_S:
        services.guard.failed(source, "media link", where=f"GET {request.scope['path']}")
        raise HTTPException(403, REFUSED)
    if exp < at:
        services.guard.expired()
        raise HTTPException(403, REFUSED)
    check = services.access.active_caller(by, tok)
    if check.caller is None:  # a genuine link; its token is named once found to exist
        where = f"GET {request.scope['path']}"
        why = f"media link, {check.why}"
        services.guard.failed(source, why, principal=check.principal, where=where)
        raise HTTPException(403, REFUSED)
    return MediaLink(recording_id, path, check.caller, case or None)


MediaLinkDep = Annotated[MediaLink, Depends(_media_link)]


_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single-range request, None for the whole; 416 if unsatisfiable
    (or longer than any real one: a header is bounded before it is parsed)."""
    if header is None:
        return None
    match = _RANGE.match(header.strip()) if len(header) <= MAX_RANGE_CHARS else None
    if match is None or (not match.group(1) and not match.group(2)):
        shown = header[:40] + ("…" if len(header) > 40 else "")
        raise HTTPException(416, f"unsupported range {shown!r}; one bytes=a-b range")
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
