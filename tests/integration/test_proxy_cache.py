"""Issue 18: the review proxy as a cache (``VIGIL_PROXY_CACHE_DAYS``): made and logged as before,
stored without retention, expired when unused for the period (a ``proxy.expired`` event, its
files deleted), and made again when the recording is played. With no segment copies
(``VIGIL_SEGMENT_COPIES=derive``) a source that needs a proxy then stores its original alone.

One MPEG-4 Part 2/PCM AVI (a browser plays neither; segments in Matroska) on the embedded
defaults, ingested once; each test works on its own copy of the data folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from catalog.proxy_cache import ProxyCache
from interfaces.api.app import create_api
from store.base import ObjectStore
from tests.helpers import CrashingStore, copy_data, ingest_and_process, stored_bytes
from tests.integration.test_api import SECRET, serve_api
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg]

AVI = SampleSpec(duration_s=12.0, width=640, height=360, codec="mpeg4", container="avi", seed=34)
LATER = timedelta(days=3)


def _settings(folder: Path) -> Settings:
    return Settings(data_dir=folder, segment_copies="derive", proxy_cache_days=2)


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("proxy-cache") / "vigil"
    app = build_app(_settings(folder))
    try:
        rec = ingest_and_process(app, make_clip(AVI))
    finally:
        app.stop()
    return folder, rec


@pytest.fixture
def app(prepared: tuple[Path, str], tmp_path: Path) -> Iterator[Vigil]:
    mine = copy_data(prepared[0], tmp_path / "vigil")
    vigil = build_app(_settings(mine))
    yield vigil
    vigil.stop()


def _cache(app: Vigil, store: ObjectStore | None = None) -> ProxyCache:
    return ProxyCache(catalog=app.catalog, store=store or app.store, keep_days=2)


def _proxy_keys(app: Vigil, rec: str) -> list[str]:
    return [k for k in app.store.list_keys("derived", f"{rec}/proxy/")]


def _actions(app: Vigil, rec: str, action: str) -> int:
    return sum(e.action == action for e in app.catalog.events(recording_ids=[rec]))


def test_a_proxy_used_within_the_period_is_kept_and_one_unused_expires(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    rec = prepared[1]
    recording = app.catalog.recording(rec)
    assert recording.playback == "proxy" and recording.proxy_playlist_key is not None
    proxy_files = app.catalog.proxy_segments(rec)
    assert proxy_files and all(not s.kept for s in app.catalog.segments(rec))
    assert _cache(app).expire(datetime.now(UTC), actor="ops", apply=True) == []
    due = _cache(app).expire(datetime.now(UTC) + LATER, actor="ops", apply=False)
    assert [(d.recording_id, d.state) for d in due] == [(rec, "due")]
    assert due[0].freed_bytes == sum(f.size for f in proxy_files)
    assert _proxy_keys(app, rec)  # a dry run deletes nothing
    [done] = _cache(app).expire(datetime.now(UTC) + LATER, actor="ops", apply=True)
    assert done.state == "expired" and _proxy_keys(app, rec) == []
    assert app.catalog.recording(rec).proxy_playlist_key is None
    assert app.catalog.proxy_segments(rec) == [] and _actions(app, rec, "proxy.expired") == 1
    stored = stored_bytes(app)
    assert stored["derived"] < 0.02 * stored["originals"], stored  # the original alone, at rest
    assert app.verifier.verify_recording(rec, actor="auditor").ok  # no verdict reads a proxy


def test_playing_a_recording_whose_proxy_expired_makes_it_again(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    rec = prepared[1]
    first = {f.index: f.sha256 for f in app.catalog.proxy_segments(rec)}
    _cache(app).expire(datetime.now(UTC) + LATER, actor="ops", apply=True)
    app.cases.link("CASE-18P", rec, from_s=None, to_s=None, reason="incident", actor="sam")
    app.access.add_principal("alice", "reviewer", display_name="alice", actor="setup")
    app.access.assign("CASE-18P", "alice", actor="sam")
    token = app.access.issue_token("alice", label="test", actor="setup").token
    for url in serve_api(create_api(app, secret=SECRET)):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as alice:
            asked = alice.get(f"/api/v1/recordings/{rec}/playback").json()
            assert asked["proxy"] is None and asked["proxy_pending"] is True
            deadline = time.monotonic() + 120
            while app.catalog.recording(rec).proxy_playlist_key is None:
                assert time.monotonic() < deadline, "the proxy was not made again"
                time.sleep(0.2)
            again = alice.get(f"/api/v1/recordings/{rec}/playback").json()
            assert again["proxy"] and again["proxy_pending"] is False
    remade = app.catalog.proxy_segments(rec)
    assert sorted(f.index for f in remade) == sorted(first)
    assert all(app.store.stat("derived", f.key) is not None for f in remade)
    assert _actions(app, rec, "proxy.stored") == 2  # hashed and logged as the first


def test_files_a_crash_left_after_the_event_are_deleted_by_the_next_run(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    rec = prepared[1]
    later = datetime.now(UTC) + LATER
    with pytest.raises(KeyboardInterrupt):
        _cache(app, CrashingStore(app.store)).expire(later, actor="ops", apply=True)  # type: ignore[arg-type]
    assert app.catalog.recording(rec).proxy_playlist_key is None and _proxy_keys(app, rec)
    assert _cache(app).expire(later, actor="ops", apply=True) == []  # nothing due: it is gone
    assert _proxy_keys(app, rec) == [] and _actions(app, rec, "proxy.expired") == 1
