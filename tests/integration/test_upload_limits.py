"""Uploads bounded before work (issue 14): a declared size must fit in the free space left
for uploads and is reserved; a device has at most so many uploads open; an open upload with no
chunk for ``VIGIL_UPLOAD_EXPIRE_S`` expires with one ``upload.expired`` custody event and its
``.part`` file deleted; a device names only its own officer, and an officer gets playback only
of what they or a device bound to them sent."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import ingest.uploads
from ingest.service import RecordingMetadata
from ingest.uploads import UploadError
from interfaces.api.app import create_api
from transcode.samples import SampleSpec
from workers.app import Vigil

SECRET = b"upload-limits-test-link-secret"
MARGIN = 1 << 20
PEOPLE: dict[str, tuple[str, dict[str, str]]] = {
    "bc-1": ("device", {"device_id": "BC-0001"}),
    "bc-2": ("device", {"device_id": "BC-0002"}),
    "bc-olga": ("device", {"device_id": "BC-0003", "officer_id": "031245"}),
    "olga": ("officer", {"officer_id": "031245"}),
}


class Site:
    def __init__(self, app: Vigil, client: TestClient, tokens: dict[str, str]) -> None:
        self.app, self.client, self.tokens = app, client, tokens

    def start(self, who: str, size: int = 1000, **extra: Any) -> Any:
        device = PEOPLE[who][1]["device_id"]
        body = {"device_id": device, "size": size, "original_name": "a.mp4", **extra}
        body.setdefault("device_start", "2024-05-01T10:00:00Z")
        return self.client.post("/api/v1/uploads", json=body, headers=self.auth(who))

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def send(self, who: str, upload_id: str, data: bytes, offset: int = 0) -> Any:
        headers = {**self.auth(who), "X-Chunk-SHA256": hashlib.sha256(data).hexdigest()}
        headers["Content-Type"] = "application/octet-stream"
        return self.client.put(
            f"/api/v1/uploads/{upload_id}", params={"offset": offset}, content=data, headers=headers
        )


@pytest.fixture
def make_site(app_factory: Callable[..., Vigil]) -> Iterator[Callable[..., Site]]:
    clients: list[TestClient] = []

    def make(**settings: object) -> Site:
        app = app_factory(upload_free_margin_bytes=MARGIN, **settings)
        for pid, (role, extra) in PEOPLE.items():
            app.access.add_principal(pid, role, display_name=pid, actor="setup", **extra)  # type: ignore[arg-type]
        tokens = {
            pid: app.access.issue_token(pid, label="t", actor="setup").token for pid in PEOPLE
        }
        client = TestClient(create_api(app, secret=SECRET, background=False))
        clients.append(client)
        return Site(app, client, tokens)

    yield make
    for client in clients:
        client.close()


def _free(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(ingest.uploads.shutil, "disk_usage", lambda _p: usage._replace(free=free))


def test_a_declared_size_must_fit_in_the_free_space_and_is_reserved(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site()
    huge = site.start("bc-1", size=1 << 40)  # 1 TiB on a disk without it
    assert huge.status_code == 422, huge.text
    assert "VIGIL_UPLOAD_FREE_MARGIN_BYTES" in huge.json()["detail"]
    _free(monkeypatch, MARGIN + 1500)
    assert site.start("bc-1", size=1000).status_code == 201
    second = site.start("bc-2", size=1000)  # 1000 of the 1500 are reserved by the first
    assert second.status_code == 422, second.text
    assert "1000 bytes reserved" in second.json()["detail"]
    assert site.start("bc-2", size=500).status_code == 201


def test_a_device_has_at_most_its_cap_of_open_uploads(make_site: Callable[..., Site]) -> None:
    site = make_site(upload_max_open_per_device=2)
    assert [site.start("bc-1").status_code for _ in range(2)] == [201, 201]
    third = site.start("bc-1")
    assert third.status_code == 409, third.text
    assert "VIGIL_UPLOAD_MAX_OPEN_PER_DEVICE" in third.json()["detail"]
    assert site.start("bc-2").status_code == 201  # another device's cap is its own


def test_an_upload_without_a_chunk_for_the_expiry_time_expires_once_with_a_custody_event(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(upload_expire_s=3600, upload_max_open_per_device=1)
    stale = site.start("bc-1").json()["upload_id"]
    assert site.send("bc-1", stale, b"x" * 100).status_code == 200
    part = site.app.settings.uploads_dir / f"{stale}.part"
    assert part.exists()
    real_now = ingest.uploads.now
    monkeypatch.setattr(ingest.uploads, "now", lambda: real_now() + timedelta(seconds=3601))
    fresh = site.start("bc-1")  # the sweep at the start frees the device's one slot
    assert fresh.status_code == 201, fresh.text
    assert site.app.uploads.expire() == []  # once only
    status = site.client.get(f"/api/v1/uploads/{stale}", headers=site.auth("bc-1")).json()
    assert status["status"] == "expired"
    assert not part.exists()
    late = site.send("bc-1", stale, b"y" * 10, offset=100)
    assert late.status_code == 409, late.text
    events = [e for e in site.app.catalog.events() if e.action == "upload.expired"]
    assert len(events) == 1
    assert stale in str(events[0].detail)


def test_a_device_bound_to_an_officer_names_no_other(make_site: Callable[..., Site]) -> None:
    site = make_site()
    other = site.start("bc-olga", officer_id="099999")
    assert other.status_code == 422, other.text
    assert "bound to officer 031245" in other.json()["detail"]
    assert site.start("bc-olga", officer_id="031245").status_code == 201
    assert site.start("bc-olga").status_code == 201  # none named: the bound officer's


@pytest.mark.ffmpeg
def test_an_officer_plays_back_only_what_they_or_their_bound_device_sent(
    make_site: Callable[..., Site], make_clip: Callable[[SampleSpec], Path]
) -> None:
    site = make_site()
    plays = {}
    for who, seed in (("bc-1", 71), ("bc-olga", 72)):
        data = make_clip(SampleSpec(duration_s=1.0, width=160, height=120, seed=seed)).read_bytes()
        upload_id = site.start(who, size=len(data), officer_id="031245").json()["upload_id"]
        assert site.send(who, upload_id, data).status_code == 200
        done = site.client.post(
            f"/api/v1/uploads/{upload_id}/finish",
            json={"sha256": hashlib.sha256(data).hexdigest()},
            headers=site.auth(who),
        )
        assert done.status_code == 200, done.text
        rec = done.json()["recording_id"]
        site.app.run_pipeline()
        plays[who] = site.client.get(
            f"/api/v1/recordings/{rec}/playback", headers=site.auth("olga")
        ).status_code
    # An unbound device's word that footage is olga's gives her nothing; her own device's does.
    assert plays == {"bc-1": 404, "bc-olga": 200}


def _starts(site: Site, who: str, times: int) -> list[str]:
    """``times`` starts of 1000 bytes by ``who`` at once: each upload's ID or the error's name."""
    metadata = RecordingMetadata.model_validate({"device_id": PEOPLE[who][1]["device_id"]})

    def start(_n: int) -> str:
        try:
            return site.app.uploads.start(who, metadata, 1000).id
        except UploadError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(start, range(times)))


def test_uploads_started_at_once_keep_the_cap_and_the_free_space(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starts that come at once are committed together; what each reserved counts for the
    others before it is committed."""
    site = make_site(upload_max_open_per_device=3)
    started = _starts(site, "bc-1", 8)
    assert started.count("TooManyOpenUploads") == 5, started
    opened = [x for x in started if x != "TooManyOpenUploads"]
    assert [site.app.uploads.state(u, "bc-1").status for u in opened] == ["open"] * 3
    _free(monkeypatch, MARGIN + 3000 + 2500)  # the three open reserve 3000: room for two more
    more = _starts(site, "bc-2", 6)
    assert more.count("NoRoomForUpload") == 4, more
    assert [site.app.uploads.state(u, "bc-2").status for u in more if len(u) == 32] == ["open"] * 2
