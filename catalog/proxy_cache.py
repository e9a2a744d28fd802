"""The review proxy as a cache, not an archive (issue 18, ``VIGIL_PROXY_CACHE_DAYS``).

A proxy is made for viewing a source a browser cannot play; no verdict reads it, and it is made
again from the original (which is evidence, held and retained) whenever it is wanted. With a
cache period, its files are stored without retention, and a proxy neither made nor viewed for
that long is expired: one ``proxy.expired`` custody event (the playlist's SHA-256 and every
file's key, SHA-256 and size) in the same transaction that removes its rows, then its files
deleted. Playback asks for it again (``interfaces.api.routes.recordings``) and the transcode
stage makes a new one, hashed and logged as the first (``proxy.stored``).

A legal hold holds the original and the segments, not the proxy: what a reviewer saw is kept
by its signed hashes, and the proxy is made again from the held original. A proxy stored with
retention (before the cache, or with the cache off) is not expired: the store would refuse its
deletion; it stays as it is.

A crash after the event leaves files that no row names: the next run deletes those named by a
``proxy.expired`` event that no current proxy uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from catalog.models import CustodyEvent, Recording
from catalog.repository import Catalog, Event
from store.base import ObjectStore
from store.errors import RetentionActive


class ExpiredFile(BaseModel):
    key: str
    sha256: str
    size: int


class ProxyExpiredDetail(BaseModel):
    playlist_key: str
    playlist_sha256: str | None
    files: list[ExpiredFile]
    unused_since: datetime


@dataclass(frozen=True)
class ProxyExpiry:
    recording_id: str
    state: str  # "expired", "due" (dry run), "kept: <why>"
    freed_bytes: int = 0


class ProxyCache:
    def __init__(self, *, catalog: Catalog, store: ObjectStore, keep_days: float) -> None:
        self.catalog = catalog
        self.store = store
        self.keep = timedelta(days=keep_days)

    def expire(self, now: datetime, *, actor: str, apply: bool) -> list[ProxyExpiry]:
        """Expire every proxy unused since ``now`` - the cache period (with ``apply``; else say
        which are due), and finish what an earlier run left."""
        done: list[ProxyExpiry] = []
        for rec in self.catalog.recordings():
            if rec.playback != "proxy":
                continue
            events = self.catalog.events(recording_ids=[rec.id])
            if apply:
                self._leftovers(rec, events, now)
            if rec.proxy_playlist_key is not None:
                expired = self._one(rec, events, now, actor, apply)
                done += [expired] if expired is not None else []
        return done

    def _one(
        self,
        rec: Recording,
        events: Sequence[CustodyEvent],
        now: datetime,
        actor: str,
        apply: bool,
    ) -> ProxyExpiry | None:
        used = [  # when its proxy was made, or a file of it last played
            e.at
            for e in events
            if e.action == "proxy.stored" or (e.action == "view" and "proxy-" in (e.reason or ""))
        ]
        since = max(used) if used else rec.received_at
        if since > now - self.keep:
            return None
        files = self.catalog.proxy_segments(rec.id)
        keys = [f.key for f in files] + [rec.proxy_playlist_key or ""]
        retained = [k for k in keys if self._retained(k, now)]
        if retained:
            return ProxyExpiry(rec.id, f"kept: {retained[0]} is stored with retention")
        size = sum(f.size for f in files)
        if not apply:
            return ProxyExpiry(rec.id, "due", size)
        detail = ProxyExpiredDetail(
            playlist_key=rec.proxy_playlist_key or "",
            playlist_sha256=rec.proxy_playlist_sha256,
            files=[ExpiredFile(key=f.key, sha256=f.sha256, size=f.size) for f in files],
            unused_since=since,
        )
        if not self.catalog.remove_proxy(
            rec.id, Event("proxy.expired", actor, rec.id, detail=detail)
        ):
            return None  # another run expired it meanwhile
        self._delete(keys, now)
        return ProxyExpiry(rec.id, "expired", size)

    def _retained(self, key: str, now: datetime) -> bool:
        if self.store.stat("derived", key) is None:
            return False
        until = self.store.retention("derived", key)
        return self.store.legal_hold("derived", key) or (until is not None and until > now)

    def _delete(self, keys: Sequence[str], now: datetime) -> None:
        for key in keys:
            try:
                self.store.delete_expired("derived", key, now)
            except RetentionActive:
                continue  # refused by the store (a hold set meanwhile): left as it is

    def _leftovers(self, rec: Recording, events: Sequence[CustodyEvent], now: datetime) -> None:
        """Files named by a ``proxy.expired`` event of ``rec``, still stored, that its proxy
        does not use now (a crash between the event and the deletions)."""
        expired = [e for e in events if e.action == "proxy.expired"]
        if not expired:
            return
        current = {f.key for f in self.catalog.proxy_segments(rec.id)}
        current.add(rec.proxy_playlist_key or "")
        for event in expired:
            detail = ProxyExpiredDetail.model_validate(json.loads(event.detail or "{}"))
            keys = [detail.playlist_key, *(f.key for f in detail.files)]
            stale = [k for k in keys if k not in current and self.store.stat("derived", k)]
            self._delete(stale, now)
