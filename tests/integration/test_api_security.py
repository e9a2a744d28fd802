"""The API's security findings (issue 14), each on a real server on loopback, each tried as an
attacker or a clumsy client would: the link secret, links bound to what they open, failed
authentication kept out of the permanent log, limits before work, case windows, and no leaks.
The pieces on their own: tests/unit/test_security.py; what they add up to: docs/security.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from interfaces.api.app import create_api
from interfaces.devservices.base import free_port
from tests.helpers import ingest_and_process
from transcode.samples import SampleSpec
from workers.app import Vigil

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

SECRET = b"security-test-link-secret"
CLIP = SampleSpec(duration_s=6.0, width=320, height=240, seed=61)
WINDOW = (2.5, 3.5)  # of the 6 s recording: CASE-W links only this


@dataclass
class Site:
    app: Vigil
    api: FastAPI
    url: str
    tokens: dict[str, str]
    recording: str

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def events(self, action: str | None = None) -> list[Any]:
        return [e for e in self.app.catalog.events() if action in (None, e.action)]

    def flush(self) -> None:
        """Write the failed-authentication summaries now (a server does when a window
        closes, and at shutdown)."""
        guard = getattr(self.api.state.services, "guard", None)
        if guard is not None:
            guard.flush(everything=True)

    def token_id(self, who: str) -> int:
        return max(t.id for t in self.app.access.tokens(who) if t.revoked_at is None)


def serve_api(api: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def site(
    app_factory: Callable[..., Vigil], make_clip: Callable[[SampleSpec], Path]
) -> Iterator[Site]:
    """One 6 s recording in 1 s segments, linked whole to CASE-ALL (bob's) and for 2.5-3.5 s
    to CASE-W (alice's); another linked whole to CASE-B (bob's); sam supervises."""
    app = app_factory(segment_seconds=1.0)
    rec = ingest_and_process(app, make_clip(CLIP))
    other = ingest_and_process(
        app, make_clip(SampleSpec(duration_s=2.0, width=320, height=240, seed=62))
    )
    app.cases.link("CASE-ALL", rec, from_s=None, to_s=None, reason="whole", actor="sam")
    app.cases.link("CASE-W", rec, from_s=WINDOW[0], to_s=WINDOW[1], reason="part", actor="sam")
    app.cases.link("CASE-B", other, from_s=None, to_s=None, reason="other", actor="sam")
    people = {
        "alice": ("reviewer", {}),
        "bob": ("reviewer", {}),
        "sam": ("supervisor", {}),
        "audrey": ("auditor", {}),
        "bc-0042": ("device", {"device_id": "BC-0042"}),
    }
    for pid, (role, extra) in people.items():
        app.access.add_principal(pid, role, display_name=pid, actor="setup", **extra)  # type: ignore[arg-type]
    app.access.assign("CASE-W", "alice", actor="sam")
    app.access.assign("CASE-ALL", "bob", actor="sam")
    app.access.assign("CASE-B", "bob", actor="sam")
    tokens = {pid: app.access.issue_token(pid, label="t", actor="setup").token for pid in people}
    api = create_api(app, secret=SECRET)
    for url in serve_api(api):
        yield Site(app, api, url, tokens, rec)


def playback(
    site: Site, who: str, case: str | None = None, rec: str | None = None
) -> httpx.Response:
    params = {"case": case} if case else {}
    with site.client(who) as client:
        return client.get(f"/api/v1/recordings/{rec or site.recording}/playback", params=params)


def signed(site: Site, who: str, path: str, case: str = "", expires_in: int = 120) -> str:
    """A link as the server would sign it (the test knows the server's secret)."""
    from interfaces.api.links import LinkClaim, link_url

    claim = LinkClaim(
        site.recording, path, who, site.token_id(who), case, int(time.time()) + expires_in
    )
    return link_url(SECRET, claim)


# -- 1. the link secret: configured, or generated per deployment and said so ----------------------


def test_without_a_configured_secret_development_generates_one_and_says_so_once(
    app_factory: Callable[..., Vigil], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory()
    with caplog.at_level(logging.WARNING):
        first = create_api(app)
        second = create_api(app)  # another process on the same data folder
    secret = app.settings.dev_link_secret.read_text().strip()
    assert first.state.services.secret == second.state.services.secret == secret.encode()
    notices = [r.getMessage() for r in caplog.records if "media-link secret" in r.getMessage()]
    assert len(notices) == 2 and "generated a DEVELOPMENT" in notices[0]
    assert all("VIGIL_API_SECRET" in n and secret not in n for n in notices)
    assert secret not in caplog.text


def test_production_refuses_to_serve_without_a_configured_secret(
    app_factory: Callable[..., Vigil], tmp_path: Path
) -> None:
    from integrity.keys import create_signing_key

    key = tmp_path / "ledger.pem"
    create_signing_key(key, "vigil.local/custody")
    app = app_factory(environment="production", ledger_key_file=key)
    with pytest.raises(Exception, match="VIGIL_API_SECRET"):
        create_api(app)
    assert not app.settings.dev_link_secret.exists()


# -- 2. media links bound to what they open, to whom, under which token, for how long -------------


def test_a_media_link_opens_only_the_object_it_was_signed_for(site: Site) -> None:
    links = playback(site, "bob", "CASE-ALL").json()
    original = links["original"]
    with httpx.Client(base_url=site.url) as anyone:
        opened = anyone.get(original, headers={"Range": "bytes=0-9"})
        assert opened.status_code == 206 and opened.headers["cache-control"] == "no-store"
        for swapped in (
            original.replace("/original?", "/segments/0?"),
            original.replace("/original?", "/index.m3u8?"),
            original.replace("/original?", "/proxy/0?"),
            original.replace(site.recording, site.events("ingest")[-1].recording_id),
        ):
            assert swapped != original
            refused = anyone.get(swapped)
            assert refused.status_code == 403, swapped
            assert refused.content.startswith(b"{")  # a refusal, not footage


def test_a_media_link_dies_with_its_token_or_its_account(site: Site) -> None:
    original = playback(site, "bob", "CASE-ALL").json()["original"]
    with httpx.Client(base_url=site.url) as anyone:
        assert anyone.get(original, headers={"Range": "bytes=0-9"}).status_code == 206
        site.app.access.revoke_token(site.token_id("bob"), actor="admin")
        revoked = anyone.get(original)
        assert revoked.status_code in (403, 404) and b"ftyp" not in revoked.content
    site.tokens["sam"] = site.app.access.issue_token("sam", label="2", actor="t").token
    original = playback(site, "sam").json()["original"]
    site.app.access.disable("sam", actor="admin")
    with httpx.Client(base_url=site.url) as anyone:
        assert anyone.get(original).status_code in (403, 404)


def test_a_media_link_lives_five_minutes_and_names_its_token_never_the_token(
    site: Site,
) -> None:
    answer = playback(site, "bob", "CASE-ALL").json()
    query = parse_qs(urlsplit(answer["original"]).query)
    assert int(query["exp"][0]) - time.time() <= 300 + 5
    assert query["tok"] == [str(site.token_id("bob"))]
    assert site.tokens["bob"] not in json.dumps(answer)
    # Even signed with the server's secret, a link for ten years is not one it would issue.
    forever = signed(site, "bob", "original", "CASE-ALL", expires_in=10 * 365 * 86400)
    with httpx.Client(base_url=site.url) as anyone:
        assert anyone.get(forever).status_code == 403


def test_the_name_in_a_forged_link_is_never_written_to_the_log(site: Site) -> None:
    forged = (
        f"/api/v1/media/{site.recording}/original?by=sam&tok=1&case=CASE-ALL"
        f"&exp={int(time.time()) + 60}&sig=AAAA"
    )
    before = len(site.events())
    with httpx.Client(base_url=site.url) as anyone:
        assert anyone.get(forged).status_code == 403
    site.flush()
    written = site.events()[before:]
    assert [e.actor for e in written] == ["unknown"]  # one summary, attributed to no one


# -- 3. failed authentication: metrics and one summary, never a leaf per request; then 429 ---------


def test_failed_authentication_never_writes_one_custody_event_per_request(site: Site) -> None:
    before = len(site.events())
    with site.client() as anonymous:
        statuses = []
        for n in range(18):
            headers = {"Authorization": f"Bearer vgl_guess{n}"} if n % 2 else {}
            statuses.append(anonymous.get("/api/v1/cases", headers=headers).status_code)
        statuses.append(anonymous.get("/api/v1/cases/" + "x" * 20_000).status_code)
        statuses.append(anonymous.get("/api/v1/me").status_code)
    assert set(statuses[:18]) == {401} and statuses[18] in (400, 401, 414, 431)
    assert site.events()[before:] == []  # nothing per request
    site.flush()
    written = site.events()[before:]
    assert len(written) == 1
    summary = written[0]
    assert summary.action == "access.denied" and summary.actor == "unknown"
    attempts = statuses.count(401)
    assert summary.reason.startswith(f"{attempts} failed attempts from 127.0.0.1")
    assert len(summary.reason) < 100 and len(summary.detail or "") < 1000
    registry = site.app.metrics.registry
    assert registry.get_sample_value("vigil_api_auth_failures_total", {"reason": "unknown token"})


def test_a_revoked_token_is_named_only_once_it_was_found_to_exist(site: Site) -> None:
    site.app.access.revoke_token(site.token_id("bob"), actor="admin")
    before = len(site.events())
    with site.client("bob") as bob:
        assert bob.get("/api/v1/cases").status_code == 401
    site.flush()
    assert [(e.actor, e.action) for e in site.events()[before:]] == [("bob", "access.denied")]


def test_repeated_failures_from_one_address_get_429_with_retry_after(site: Site) -> None:
    with site.client() as anonymous:
        answers = [
            anonymous.get("/api/v1/cases", headers={"Authorization": f"Bearer vgl_{n}"})
            for n in range(21)
        ]
    assert [a.status_code for a in answers[:20]] == [401] * 20
    assert answers[20].status_code == 429
    assert 0 < int(answers[20].headers["retry-after"]) <= 60
    with site.client("sam") as sam:  # held up before its token is even looked at
        assert sam.get("/api/v1/cases").status_code == 429
    with httpx.Client(base_url=site.url) as anyone:
        assert anyone.get(signed(site, "bob", "original", "CASE-ALL")).status_code == 429


# -- 4. limits before work -----------------------------------------------------------------------


def _raw(url: str, head: str, body: bytes) -> bytes:
    """Send ``head`` and ``body`` on one connection; what the server answers (it may answer and
    close before the body is through)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        with contextlib.suppress(OSError):  # refused mid-body: the answer is on its way
            sock.sendall(body)
        return sock.recv(4096)


def test_a_body_over_its_cap_is_refused_before_authentication(site: Site) -> None:
    head = (
        "POST /api/v1/cases/CASE-W/exports HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 150000000\r\n\r\n"
    )
    answer = _raw(site.url, head, b'{"reason": "' + b"x" * 65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    chunk_head = (
        "PUT /api/v1/uploads/" + "0" * 32 + "?offset=0 HTTP/1.1\r\nHost: x\r\n"
        f"X-Chunk-SHA256: {'0' * 64}\r\nContent-Length: {(64 << 20) + 1}\r\n\r\n"
    )
    assert _raw(site.url, chunk_head, b"\0" * 65536).startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"reason": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    with site.client() as anonymous:
        chunked = anonymous.post(
            "/api/v1/cases/CASE-W/exports",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
    assert chunked.status_code == 413
    with site.client("alice") as alice:  # a body within the cap is served as ever
        ok = alice.post("/api/v1/cases/CASE-W/exports", json={"reason": "for the court"})
    assert ok.status_code == 201, ok.text


def test_a_5000_digit_range_is_416_and_a_date_out_of_range_is_422(site: Site) -> None:
    original = playback(site, "bob", "CASE-ALL").json()["original"]
    with httpx.Client(base_url=site.url) as anyone:
        for header in ("bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000):
            assert anyone.get(original, headers={"Range": header}).status_code == 416
    with site.client("audrey") as auditor:
        for params in ({"until": "9999-12-31"}, {"since": "0001-01-01", "until": "0001-01-02"}):
            answer = auditor.get("/api/v1/stats/hours", params=params)
            assert answer.status_code == 422, answer.text


# -- 5. case windows -----------------------------------------------------------------------------


def _inside(site: Site) -> set[int]:
    lo, hi = WINDOW
    return {
        s.index
        for s in site.app.catalog.segments(site.recording)
        if s.end_s > lo and s.start_s < hi
    }


def test_a_case_window_is_all_its_reviewer_sees_of_the_recording(site: Site) -> None:
    inside = _inside(site)
    every = {s.index for s in site.app.catalog.segments(site.recording)}
    assert inside and inside != every
    with site.client("alice") as alice:
        timeline = alice.get("/api/v1/cases/CASE-W").json()
        log = alice.get("/api/v1/cases/CASE-W/custody").json()
        verified = alice.post("/api/v1/cases/CASE-W/verify").json()
    rec = timeline["recordings"][0]
    assert (rec["window_from_s"], rec["window_to_s"]) == WINDOW
    assert {s["index"] for s in rec["segments"]} == inside
    links = playback(site, "alice", "CASE-W").json()
    assert links["original"] is None
    assert links["windows"] == [{"from_s": WINDOW[0], "to_s": WINDOW[1]}]
    with httpx.Client(base_url=site.url) as anyone:
        playlist = anyone.get(links["playlist"]).text
        listed = [line for line in playlist.splitlines() if "/segments/" in line]
        assert {int(urlsplit(u).path.rsplit("/", 1)[1]) for u in listed} == inside
        for url in listed:
            assert anyone.get(url).status_code == 200
        # Links signed as the server would, for what lies outside the window: not there.
        assert anyone.get(signed(site, "alice", "original", "CASE-W")).status_code == 404
        for index in every - inside:
            outside = anyone.get(signed(site, "alice", f"segments/{index}", "CASE-W"))
            assert outside.status_code == 404
    stored = {
        e["detail"]["index"]
        for e in log["events"]
        if e["action"] in ("segment.stored", "segment.hashed") and e["detail"]
    }
    assert stored == inside
    assert {int(i) for i in verified[0]["segments"]} == inside
    # Page by page (one event each), the same events: what the window hides never fills a page.
    # (Each page is a view, one more event: the walk stops where the whole log ended.)
    whole = [e["id"] for e in log["events"]]
    with site.client("alice") as alice:
        paged, after = [], 0
        while after is not None and after < whole[-1]:
            page = alice.get("/api/v1/cases/CASE-W/custody", params={"after": after, "limit": 1})
            paged += page.json()["events"]
            after = page.json()["next_after"]
    assert [e["id"] for e in paged][: len(whole)] == whole
    assert not [
        e
        for e in paged
        if e["action"] in ("segment.stored", "segment.hashed")
        and e["detail"]["index"] not in inside
    ]
    # The whole recording, to those allowed all of it.
    assert playback(site, "bob", "CASE-ALL").json()["original"] is not None
    assert playback(site, "sam", "CASE-W").json()["original"] is not None


# -- 6. no leaks ---------------------------------------------------------------------------------


def test_a_recording_the_caller_may_not_see_is_answered_as_one_that_does_not_exist(
    site: Site,
) -> None:
    other = next(link.recording_id for link in site.app.catalog.case_links("CASE-B"))
    sha = site.app.catalog.recording(other).sha256
    hidden = playback(site, "alice", rec=other)
    absent = playback(site, "alice", rec="rec-" + "0" * 32)
    assert (hidden.status_code, absent.status_code) == (404, 404)
    assert hidden.json()["detail"] == f"no recording {other!r}"
    assert "CASE" not in hidden.text
    assert playback(site, "alice", rec=sha[:16]).status_code == 404  # no hash prefixes
    assert playback(site, "alice", "CASE-ALL").status_code == 404  # not through bob's case
    with site.client("alice") as alice:
        assert alice.post(f"/api/v1/recordings/{other}/verify").status_code == 404
    # A role that never plays footage is told so, whether the recording exists or not.
    assert playback(site, "bc-0042", rec=other).status_code == 403
    assert playback(site, "bc-0042", rec="rec-" + "0" * 32).status_code == 403


def test_a_refused_upload_names_the_file_as_the_device_gave_it_and_no_server_path(
    site: Site,
) -> None:
    data = b"these are meeting notes, not footage\n" * 200
    with site.client("bc-0042") as device:
        started = device.post(
            "/api/v1/uploads",
            json={"device_id": "BC-0042", "size": len(data), "original_name": "notes.mp4"},
        ).json()
        upload = started["upload_id"]
        device.put(
            f"/api/v1/uploads/{upload}",
            params={"offset": 0},
            content=data,
            headers={"X-Chunk-SHA256": hashlib.sha256(data).hexdigest()},
        )
        refused = device.post(
            f"/api/v1/uploads/{upload}/finish", json={"sha256": hashlib.sha256(data).hexdigest()}
        )
        status = device.get(f"/api/v1/uploads/{upload}").json()
    assert refused.status_code == 422 and "notes.mp4" in refused.json()["detail"]
    data_dir = str(site.app.settings.data_dir)
    for text in (refused.text, json.dumps(status)):
        assert data_dir not in text and "/staging" not in text and ".part" not in text


def test_metrics_are_served_only_to_the_scrape_token(app_factory: Callable[..., Vigil]) -> None:
    closed = create_api(app_factory(), secret=SECRET)
    for url in serve_api(closed):
        assert httpx.get(f"{url}/metrics").status_code == 404
    token = "scrape-token-0123456789"
    guarded = create_api(app_factory(metrics_token=token), secret=SECRET)
    for url in serve_api(guarded):
        assert httpx.get(f"{url}/metrics").status_code == 401
        wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and "vigil_api_auth_failures_total" in right.text


# -- /docs renders under its CSP: Swagger UI from a package, no CDN, no inline script -------------


def test_the_docs_page_loads_only_its_own_files_under_its_csp(
    app_factory: Callable[..., Vigil],
) -> None:
    import re

    from fastapi.testclient import TestClient

    with TestClient(create_api(app_factory(), secret=SECRET, background=False)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src" not in csp  # scripts: 'self' only
        scripts = re.findall(r"<script([^>]*)>", page.text)
        assert scripts and all('src="/' in attrs for attrs in scripts)  # none inline
        files = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert files and all(f.startswith("/docs/") for f in files)  # none from another host
        for f in files:
            assert client.get(f).status_code == 200, f
        assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
        assert "/openapi.json" in client.get("/docs/init.js").text
        assert client.get("/openapi.json").status_code == 200
