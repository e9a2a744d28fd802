"""The HTTP API on a real server (uvicorn on loopback): resumable uploads cut mid-chunk and
resumed, access control with every denial logged, signed media links with byte ranges, the
custody log with proofs, and export approval.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sqlite3
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from vigil_verify.checkpoint import parse_checkpoint
from vigil_verify.merkle import leaf_hash, verify_inclusion

import ingest.upload_hash as upload_hash_module
from ingest.service import IngestService
from interfaces.api.app import create_api
from interfaces.devservices.base import free_port
from tests.helpers import START
from transcode.samples import SampleSpec
from workers.app import Vigil

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]
CHUNK = 1 << 20


SECRET = b"api-test-link-secret"


@dataclass
class Server:
    app: Vigil
    url: str
    tokens: dict[str, str]
    api: FastAPI

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def events(self, action: str) -> list[Any]:
        return [e for e in self.app.catalog.events() if e.action == action]


def serve(app: Vigil) -> Iterator[str]:
    yield from serve_api(create_api(app, secret=SECRET))


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
def server(app_factory: Callable[..., Vigil]) -> Iterator[Server]:
    app = app_factory()
    people = {
        "bc-0042": ("device", {"device_id": "BC-0042"}),
        "alice": ("reviewer", {}),
        "bob": ("reviewer", {}),
        "sam": ("supervisor", {}),
        "sue": ("supervisor", {}),
        "audrey": ("auditor", {}),
        "root": ("admin", {}),
        "olga": ("officer", {"officer_id": "031245"}),
    }
    tokens = {}
    for pid, (role, extra) in people.items():
        app.access.add_principal(pid, role, display_name=pid, actor="setup", **extra)  # type: ignore[arg-type]
        tokens[pid] = app.access.issue_token(pid, label="test", actor="setup").token
    api = create_api(app, secret=SECRET)
    for url in serve_api(api):
        yield Server(app, url, tokens, api)


def upload(
    server: Server,
    data: bytes,
    *,
    who: str = "bc-0042",
    device: str = "BC-0042",
    device_clock: str | None = None,
    name: str = "clip.mp4",
) -> dict[str, Any]:
    with server.client(who) as client:
        body: dict[str, Any] = {
            "device_id": device,
            "size": len(data),
            "original_name": name,
            "officer_id": "031245",
            "device_start": START.isoformat(),
        }
        if device_clock:
            body["device_clock"] = device_clock
        started = client.post("/api/v1/uploads", json=body)
        assert started.status_code == 201, started.text
        upload_id = started.json()["upload_id"]
        offset = 0
        while offset < len(data):
            chunk = data[offset : offset + CHUNK]
            sent = client.put(
                f"/api/v1/uploads/{upload_id}",
                params={"offset": offset},
                content=chunk,
                headers={
                    "X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest(),
                    "Content-Type": "application/octet-stream",
                },
            )
            assert sent.status_code == 200, sent.text
            offset = sent.json()["offset"]
        done = client.post(
            f"/api/v1/uploads/{upload_id}/finish", json={"sha256": hashlib.sha256(data).hexdigest()}
        )
        assert done.status_code == 200, done.text
        result: dict[str, Any] = done.json()
    # Segmenting and hashing go on in the server's background after the answer; wait for them
    # (run_pipeline takes its turn after the background's drain).
    server.app.run_pipeline()
    return result


def cut_mid_chunk(url: str, token: str, upload_id: str, offset: int, chunk: bytes) -> None:
    """Send a chunk's headers and half its body, then drop the connection, as a device losing
    its network would."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"PUT /api/v1/uploads/{upload_id}?offset={offset} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"X-Chunk-SHA256: {hashlib.sha256(chunk).hexdigest()}\r\n"
        f"Content-Length: {len(chunk)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + chunk[: len(chunk) // 2])
    time.sleep(0.3)  # the server notices the disconnect


def test_an_upload_cut_at_40_70_and_99_percent_resumes_byte_identical_and_hashed_once(
    server: Server, standard_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = standard_clip.read_bytes()
    staged_by_ingest: list[object] = []
    monkeypatch.setattr(IngestService, "_stage", lambda *a: staged_by_ingest.append(a))
    # The whole file's hash, kept as the chunks are confirmed (each state a copy of the last),
    # counted: the bytes fed to the state that is finally read out. The chunks' own checks are
    # not counted; the store links the file in without reading it back.
    whole_file_passes: list[int] = []

    class Counting:
        def __init__(self, inner: Any = None, fed: int = 0) -> None:
            self.inner = inner or hashlib.sha256()
            self.fed = fed

        def update(self, b: bytes) -> None:
            self.fed += len(b)
            self.inner.update(b)

        def copy(self) -> Counting:
            return Counting(self.inner.copy(), self.fed)

        def hexdigest(self) -> str:
            whole_file_passes.append(self.fed)
            return str(self.inner.hexdigest())

    class CountingHashlib:
        @staticmethod
        def sha256(data: bytes | None = None) -> Any:
            return hashlib.sha256(data) if data is not None else Counting()

    monkeypatch.setattr(upload_hash_module, "hashlib", CountingHashlib)
    token = server.tokens["bc-0042"]
    with server.client("bc-0042") as client:
        started = client.post(
            "/api/v1/uploads",
            json={
                "device_id": "BC-0042",
                "size": len(data),
                "original_name": "bodycam.mp4",
                "device_start": START.isoformat(),
            },
        )
        upload_id = started.json()["upload_id"]
        cuts = [int(len(data) * f) for f in (0.4, 0.7, 0.99)]
        offset = 0
        while offset < len(data):
            chunk = data[offset : offset + CHUNK]
            if cuts and offset + len(chunk) > cuts[0]:
                cuts.pop(0)
                cut_mid_chunk(server.url, token, upload_id, offset, chunk)
                status = client.get(f"/api/v1/uploads/{upload_id}").json()
                assert status["offset"] == offset  # the half-sent chunk was not kept
                assert status["status"] == "open" and not status["may_delete"]
            sent = client.put(
                f"/api/v1/uploads/{upload_id}",
                params={"offset": offset},
                content=chunk,
                headers={"X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()},
            )
            assert sent.status_code == 200, sent.text
            offset = sent.json()["offset"]
        assert not cuts
        done = client.post(
            f"/api/v1/uploads/{upload_id}/finish", json={"sha256": hashlib.sha256(data).hexdigest()}
        ).json()
    assert done["status"] == "complete" and done["may_delete"] is True
    rec = server.app.catalog.recording(done["recording_id"])
    assert rec.sha256 == hashlib.sha256(data).hexdigest() == done["sha256"]
    with server.app.store.open("originals", rec.original_key) as fh:
        assert fh.read() == data  # byte-identical
    assert whole_file_passes == [len(data)]  # the whole file hashed exactly once, as it came
    assert staged_by_ingest == []  # and ingest did not copy or hash it again
    assert len(server.events("upload.finished")) == 1
    assert len(server.events("ingest")) == 1
    # Finishing again answers the same, creates nothing.
    with server.client("bc-0042") as client:
        again = client.post(
            f"/api/v1/uploads/{upload_id}/finish", json={"sha256": hashlib.sha256(data).hexdigest()}
        ).json()
    assert again["recording_id"] == done["recording_id"]
    assert len(server.events("ingest")) == 1


def test_bad_chunks_wrong_offsets_and_a_wrong_final_hash_are_refused(
    server: Server, make_clip: Callable[[SampleSpec], Path]
) -> None:
    data = make_clip(SampleSpec(duration_s=3.0, width=320, height=240, seed=31)).read_bytes()
    with server.client("bc-0042") as client:
        upload_id = client.post(
            "/api/v1/uploads", json={"device_id": "BC-0042", "size": len(data)}
        ).json()["upload_id"]
        bad = client.put(
            f"/api/v1/uploads/{upload_id}",
            params={"offset": 0},
            content=data,
            headers={"X-Chunk-SHA256": "0" * 64},
        )
        assert bad.status_code == 422 and "nothing was written" in bad.json()["detail"]
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["offset"] == 0
        good = hashlib.sha256(data[:1000]).hexdigest()
        client.put(
            f"/api/v1/uploads/{upload_id}",
            params={"offset": 0},
            content=data[:1000],
            headers={"X-Chunk-SHA256": good},
        )
        piece = data[5000:6000]
        skipped = client.put(
            f"/api/v1/uploads/{upload_id}",
            params={"offset": 5000},
            content=piece,
            headers={"X-Chunk-SHA256": hashlib.sha256(piece).hexdigest()},
        )
        assert skipped.status_code == 409 and "resume from 1000" in skipped.json()["detail"]
        rest = data[1000:]
        client.put(
            f"/api/v1/uploads/{upload_id}",
            params={"offset": 1000},
            content=rest,
            headers={"X-Chunk-SHA256": hashlib.sha256(rest).hexdigest()},
        )
        wrong = client.post(f"/api/v1/uploads/{upload_id}/finish", json={"sha256": "a" * 64})
        assert wrong.status_code == 422 and "keep your copy" in wrong.json()["detail"]
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["may_delete"] is False
    assert server.app.catalog.recordings() == []
    # Another device's credential cannot upload for BC-0042.
    server.app.access.add_principal(
        "bc-7", "device", display_name="bc-7", actor="t", device_id="BC-7"
    )
    server.tokens["bc-7"] = server.app.access.issue_token("bc-7", label="t", actor="t").token
    with server.client("bc-7") as client:
        other = client.post("/api/v1/uploads", json={"device_id": "BC-0042", "size": 10})
    assert other.status_code == 403


def test_device_clock_drift_is_recorded_and_flagged(
    server: Server, make_clip: Callable[[SampleSpec], Path]
) -> None:
    data = make_clip(SampleSpec(duration_s=2.0, width=320, height=240, seed=32)).read_bytes()
    from catalog.repository import now

    behind = (now() - timedelta(seconds=42)).isoformat()
    done = upload(server, data, device_clock=behind)
    rec = server.app.catalog.recording(done["recording_id"])
    assert rec.clock_offset_s == pytest.approx(42, abs=2)
    assert any("device clock is +4" in (e.reason or "") for e in server.events("flag.clock_drift"))


@pytest.fixture
def two_cases(server: Server, make_clip: Callable[[SampleSpec], Path]) -> dict[str, str]:
    recs = {}
    for case, seed in (("CASE-A", 41), ("CASE-B", 42)):
        data = make_clip(SampleSpec(duration_s=4.0, width=320, height=240, seed=seed)).read_bytes()
        rec = upload(server, data, name=f"{case}.mp4")["recording_id"]
        server.app.cases.link(case, rec, from_s=None, to_s=None, reason="for review", actor="sam")
        recs[case] = rec
    server.app.access.assign("CASE-A", "alice", actor="sam")
    server.app.access.assign("CASE-B", "bob", actor="sam")
    server.tokens["alice"] = server.app.access.issue_token("alice", label="2", actor="t").token
    return recs


def test_a_reviewer_of_case_a_cannot_reach_case_b_and_every_denial_is_logged(
    server: Server, two_cases: dict[str, str]
) -> None:
    """Refused: a case not assigned (403, whether it exists or not), a recording not reachable
    (404, as if it did not exist), anything for a role that never may (403). Each denial of an
    identified principal is a custody event; failed authentication is summarised instead."""
    b = two_cases["CASE-B"]
    with server.client("alice") as alice:
        cases = alice.get("/api/v1/cases").json()
        assert [c["case_id"] for c in cases] == ["CASE-A"]  # B is not even listed
        assert alice.get("/api/v1/cases/CASE-A").status_code == 200
        denied = [
            alice.get("/api/v1/cases/CASE-B"),
            alice.get(f"/api/v1/recordings/{b}/playback"),
            alice.post(f"/api/v1/recordings/{b}/verify"),
            alice.post("/api/v1/cases/CASE-B/verify"),
            alice.post("/api/v1/cases/CASE-B/exports", json={"reason": "curious"}),
            alice.get("/api/v1/cases/CASE-B/custody"),
        ]
    assert [r.status_code for r in denied] == [403, 404, 404, 403, 403, 403]
    assert all("CASE-B" not in r.text for r in denied[1:3])  # no case named for a recording
    with server.client("bc-0042") as device:
        device_denied = [
            device.get("/api/v1/cases"),
            device.get("/api/v1/cases/CASE-A"),
            device.get(f"/api/v1/recordings/{b}/playback"),
        ]
    assert [r.status_code for r in device_denied] == [403] * 3
    token_id = server.app.access.tokens("bob")[0].id
    server.app.access.revoke_token(token_id, actor="root")
    with server.client("bob") as bob:
        assert bob.get("/api/v1/cases/CASE-B").status_code == 401
    with server.client(None) as anonymous:
        assert anonymous.get("/api/v1/cases").status_code == 401
    assert not [e for e in server.events("access.denied") if e.actor in ("bob", "unknown")]
    server.api.state.services.guard.flush(everything=True)  # as when its window closes
    denials = server.events("access.denied")
    by_actor = {(e.actor, e.case_id or e.recording_id) for e in denials}
    assert ("alice", "CASE-B") in by_actor and ("alice", b) in by_actor
    assert sum(1 for e in denials if e.actor == "alice") == 6
    assert sum(1 for e in denials if e.actor == "bc-0042") == 3
    # bob's revoked token and no token, from one address: one summary, named after no one
    (summary,) = [e for e in denials if e.actor == "unknown"]
    assert summary.reason.startswith("2 failed attempts from 127.0.0.1")
    assert json.loads(summary.detail)["principals"] == ["bob"]
    # Reads are custody events too.
    assert any(e.actor == "alice" and e.case_id == "CASE-A" for e in server.events("view"))


def test_playback_by_signed_links_with_byte_ranges(
    server: Server, two_cases: dict[str, str]
) -> None:
    a = two_cases["CASE-A"]
    rec = server.app.catalog.recording(a)
    with server.app.store.open("originals", rec.original_key) as fh:
        original = fh.read()
    with server.client("alice") as alice:
        links = alice.get(f"/api/v1/recordings/{a}/playback").json()
    with httpx.Client(base_url=server.url) as anyone:  # the link stands for the bearer
        part = anyone.get(links["original"], headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == original[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(original)}"
        whole = anyone.get(links["original"])
        assert whole.status_code == 200 and whole.content == original
        playlist = anyone.get(links["playlist"]).text
        segment_link = next(line for line in playlist.splitlines() if "/segments/" in line)
        first = server.app.catalog.segments(a)[0]
        seg = anyone.get(segment_link)
        assert hashlib.sha256(seg.content).hexdigest() == first.sha256
        forged = links["original"].replace("by=alice", "by=bob")
        assert anyone.get(forged).status_code == 403
        assert (
            anyone.get(links["original"], headers={"Range": "bytes=999999999-"}).status_code == 416
        )
    views = [e for e in server.events("view") if e.recording_id == a and e.actor == "alice"]
    assert any("bytes 100+1000" in (e.reason or "") for e in views)


def test_custody_log_comes_with_proofs_that_verify(
    server: Server, two_cases: dict[str, str]
) -> None:
    server.app.ledger.checkpoint()  # what the ledger signer does every VIGIL_LEDGER_INTERVAL_S
    with server.client("audrey") as auditor:
        log = auditor.get("/api/v1/cases/CASE-A/custody").json()
        assert auditor.get(f"/api/v1/recordings/{two_cases['CASE-A']}/playback").status_code == 403
    head = parse_checkpoint(log["checkpoint"])
    proved = [e for e in log["events"] if e["proof"] is not None]
    assert {e["action"] for e in proved} >= {"ingest", "segment.stored", "case.link"}
    for event in proved:
        assert verify_inclusion(
            leaf_hash(event["leaf"].encode()),
            event["position"],
            head.size,
            [bytes.fromhex(p) for p in event["proof"]],
            head.root,
        )


def test_a_custody_row_rewritten_between_two_reads_shows_as_it_now_reads_and_fails_its_proof(
    server: Server, two_cases: dict[str, str]
) -> None:
    """The page keeps each event's answer while a head stands (ProvedEvents), keyed by the whole
    row: a row an insider rewrites between two reads under the same head is shown as it now
    reads, with the leaf made from it, which its proof no longer bears out."""
    page = "/api/v1/cases/CASE-A/custody"
    database = server.app.catalog.engine.url.database or ""
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("DROP TRIGGER custody_events_no_UPDATE")  # what an insider does first
    rewritten_ids: list[int] = []
    with server.client("audrey") as auditor:
        for attempt in range(3):  # a head the API's own signer signs between the two reads
            server.app.ledger.checkpoint()  # keeps nothing in play: again, with another row
            before = auditor.get(page).json()
            target = [
                e for e in before["events"] if e["proof"] is not None and e["action"] != "view"
            ][attempt]
            rewritten_ids.append(target["id"])
            with contextlib.closing(sqlite3.connect(database)) as db, db:
                db.execute(
                    "UPDATE custody_events SET reason = 'nothing to see' WHERE id = ?",
                    (target["id"],),
                )
            after = auditor.get(page).json()
            if after["tree_size"] == before["tree_size"]:
                break
    assert after["tree_size"] == before["tree_size"]  # the same head: its kept answers in play
    head = parse_checkpoint(after["checkpoint"])

    def proved(event: dict[str, Any]) -> bool:
        path = [bytes.fromhex(p) for p in event["proof"]]
        leaf = leaf_hash(event["leaf"].encode())
        return verify_inclusion(leaf, event["position"], head.size, path, head.root)

    shown = {e["id"]: e for e in after["events"]}
    rewritten = shown[target["id"]]
    assert rewritten["reason"] == "nothing to see"
    assert json.loads(rewritten["leaf"])["reason"] == "nothing to see"
    assert not proved(rewritten)
    others = [e for e in after["events"] if e["proof"] is not None and e["id"] not in rewritten_ids]
    assert others and all(proved(e) for e in others)
    assert [shown[e["id"]] for e in before["events"] if e["id"] != target["id"]] == [
        e for e in before["events"] if e["id"] != target["id"]
    ]


def test_the_custody_log_comes_in_pages_that_add_up_to_the_whole_log(
    server: Server, two_cases: dict[str, str]
) -> None:
    server.app.ledger.checkpoint()
    with server.client("audrey") as auditor:
        whole = auditor.get("/api/v1/cases/CASE-A/custody").json()
        assert whole["next_after"] is None and len(whole["events"]) > 4
        paged: list[int] = []
        after: int | None = 0
        while after is not None:
            page = auditor.get("/api/v1/cases/CASE-A/custody", params={"after": after, "limit": 3})
            assert page.status_code == 200
            events = page.json()["events"]
            assert 1 <= len(events) <= 3
            paged += [e["id"] for e in events]
            after = page.json()["next_after"]
            assert after in (None, events[-1]["id"])
        for bad in ({"limit": 0}, {"limit": 2001}, {"after": -1}, {"after": "x"}):
            assert auditor.get("/api/v1/cases/CASE-A/custody", params=bad).status_code == 422
    # Each page is a view of the log too, so the walk ends past the whole log it began with.
    whole_ids = [e["id"] for e in whole["events"]]
    assert paged[: len(whole_ids)] == whole_ids
    assert paged == sorted(set(paged))
    assert len(paged) > len(whole_ids)


def test_exports_need_a_reason_and_a_supervisors_approval(
    server: Server, two_cases: dict[str, str], tmp_path: Path
) -> None:
    with server.client("alice") as alice:
        assert alice.post("/api/v1/cases/CASE-A/exports", json={"reason": ""}).status_code == 422
        asked = alice.post("/api/v1/cases/CASE-A/exports", json={"reason": "for the prosecutor"})
        assert asked.status_code == 201
        export_id = asked.json()["id"]
        assert alice.post(f"/api/v1/exports/{export_id}/approve", json={}).status_code == 403
        assert alice.get(f"/api/v1/exports/{export_id}/package").status_code == 409  # pending
    with server.client("sam") as sam:
        mine = sam.post("/api/v1/cases/CASE-A/exports", json={"reason": "self-serve"}).json()
        assert sam.post(f"/api/v1/exports/{mine['id']}/approve", json={}).status_code == 409
        approved = sam.post(f"/api/v1/exports/{export_id}/approve", json={"note": "ok"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "ready"
        assert sam.get(f"/api/v1/exports/{export_id}/package").status_code == 403  # not his
    with server.client("alice") as alice:
        package = alice.get(f"/api/v1/exports/{export_id}/package")
    assert package.status_code == 200
    assert hashlib.sha256(package.content).hexdigest() == approved.json()["package_sha256"]
    path = tmp_path / "package.zip"
    path.write_bytes(package.content)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("CASE-A/manifest.json"))
    assert "CASE-A/ledger/checkpoint.json" in names
    assert manifest["reason"] == "for the prosecutor" and manifest["exported_by"] == "alice"
    actions = [e.action for e in server.app.catalog.events(case_id="CASE-A")]
    for action in (
        "export.requested",
        "export.approved",
        "export",
        "export.ready",
        "export.downloaded",
    ):
        assert action in actions


def test_statistics_for_supervisors_and_auditors_only(
    server: Server, two_cases: dict[str, str]
) -> None:
    # Explicit periods: the footage was recorded on START (the hours report counts it then) and
    # received today (the share report counts it by receipt), whatever day the suite runs on.
    today = datetime.now(UTC).date()
    received = {"since": str(today - timedelta(days=1)), "until": str(today + timedelta(days=1))}
    recorded = {"since": str(START.date()), "until": str(START.date() + timedelta(days=1))}
    with server.client("audrey") as auditor:
        share = auditor.get("/api/v1/stats/share", params=received).json()
        hours = auditor.get("/api/v1/stats/hours", params={"by": "officer", **recorded}).json()
        csv = (
            "incident_id,officer_id,start,end\n"
            "D-1,999,2026-11-27T10:00:00+08:00,2026-11-27T10:30:00+08:00\n"
        )
        reconciled = auditor.post(
            "/api/v1/stats/reconcile",
            content=csv,
            headers={"Content-Type": "text/csv"},
            params={"since": "2026-11-20", "until": "2026-11-30"},
        )
        bad_zone = auditor.get("/api/v1/stats/delays", params={"tz": "Mars/Olympus"})
    assert share["rows"][0]["recordings"] == 2 and share["rows"][0]["unlinked"] == 0
    assert {row["key"] for row in hours["rows"]} == {"031245"}
    assert reconciled.status_code == 200, reconciled.text
    assert [(r["incident_id"], r["status"]) for r in reconciled.json()["rows"]] == [
        ("D-1", "missing")
    ]
    assert bad_zone.status_code == 422
    with server.client("alice") as alice:
        assert alice.get("/api/v1/stats/share").status_code == 403


def test_media_reads_are_logged_against_the_case_and_other_cases_stay_private(
    server: Server, two_cases: dict[str, str]
) -> None:
    a = two_cases["CASE-A"]
    # The same recording is also linked to a case alice is not assigned to.
    server.app.cases.link("CASE-SECRET", a, from_s=None, to_s=None, reason="covert", actor="sam")
    with server.client("alice") as alice:
        links = alice.get(f"/api/v1/recordings/{a}/playback", params={"case": "CASE-A"}).json()
        wrong = alice.get(f"/api/v1/recordings/{a}/playback", params={"case": "CASE-B"})
        log = alice.get("/api/v1/cases/CASE-A/custody").json()
        page = alice.get("/")
    assert wrong.status_code == 404  # not through a case the recording is not in
    with httpx.Client(base_url=server.url) as anyone:
        got = anyone.get(links["original"], headers={"Range": "bytes=0-9"})
        assert got.status_code == 206 and got.headers["content-type"] == "video/mp4"
        forged = anyone.get(links["original"].replace("case=CASE-A", "case=CASE-B"))
        assert forged.status_code == 403
    media = [e for e in server.events("view") if (e.reason or "").startswith("media")]
    assert media and all(e.case_id == "CASE-A" for e in media)
    assert not any(e["case_id"] == "CASE-SECRET" for e in log["events"])
    assert all(e["reason"] != "covert" for e in log["events"])
    assert page.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert page.headers["x-content-type-options"] == "nosniff"


def test_an_export_with_clips_needs_the_agencys_c2pa_key(
    server: Server, two_cases: dict[str, str]
) -> None:
    with server.client("alice") as alice:
        asked = alice.post(
            "/api/v1/cases/CASE-A/exports", json={"reason": "for the defence", "clips": True}
        )
        assert asked.status_code == 409, asked.text
        assert "C2PA signing certificate" in asked.json()["detail"]
        plain = alice.post("/api/v1/cases/CASE-A/exports", json={"reason": "for the defence"})
        assert plain.status_code == 201 and plain.json()["clips"] is False
