"""GPS read out of a recording's own tracks at custody time, kept as signed derived objects
(issue 17).

Each track of the original that holds positions in a known form (``transcode.gps``: NMEA in a
subtitle track, GoPro GPMF in a data track) is read once, when the recording is segmented.
Its fixes become a JSON object in the ``derived`` bucket, stored write-once before any row
names it; the ``segment`` custody event lists each (``catalog.tracks.TrackGps``: form, count,
UTC span, key, SHA-256, size), so the timeline and ``vigil verify`` take them from the signed
log. The original keeps the track itself, byte-exact.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from catalog.models import Recording
from catalog.tracks import GpsPoint, TrackGps, gps_points_json
from store.base import ObjectStore
from transcode.ffmpeg import Tools
from transcode.gps import GpsTrackUnreadable, TrackFixes, track_fixes
from transcode.probe import ProbeResult

logger = logging.getLogger(__name__)


def gps_key(recording_id: str, index: int, sha256: str) -> str:
    """Where a track's GPS object is stored (its hash in the name: never overwritten)."""
    return f"{recording_id}/gps/stream-{index}-{sha256[:12]}.json"


def _kept(store: ObjectStore, recording: Recording, got: TrackFixes, work: Path) -> TrackGps:
    points = [GpsPoint(t=f.t, lat=f.lat, lon=f.lon, media_s=f.media_s) for f in got.fixes]
    body = gps_points_json(points)
    sha = hashlib.sha256(body).hexdigest()
    path = work / f"gps-{got.index}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    key = gps_key(recording.id, got.index, sha)
    store.put_file("derived", key, path, sha, category=recording.category)
    times = [f.t for f in got.fixes]
    return TrackGps(
        index=got.index, form=got.form, fixes=len(points), skipped=got.skipped,
        first=min(times, default=None), last=max(times, default=None),
        key=key, sha256=sha, size=len(body),
    )  # fmt: skip


def read_gps(
    tools: Tools, store: ObjectStore, recording: Recording, source: Path, probed: ProbeResult,
    work: Path,
) -> tuple[TrackGps, ...]:  # fmt: skip
    """The GPS of every track of ``source`` that holds some, each stored as a derived object.
    A track that cannot be read is logged and passed over: the original keeps it either way,
    and the ``segment`` event lists it among the tracks kept."""
    found: list[TrackGps] = []
    for track in probed.extra_tracks:
        try:
            got = track_fixes(tools, source, track)
        except GpsTrackUnreadable as exc:
            logger.warning("%s: GPS not read: %s", recording.id, exc)
            continue
        if got is not None:
            found.append(_kept(store, recording, got, work))
    return tuple(found)
