"""Issue 19: the agency's C2PA key lives with the ledger service, not the API.

With ``VIGIL_EXPORTS_BUILT_BY=ledger`` (the compose deployment) the API holds neither the ledger
key nor the C2PA key: it takes a request for clips, records the supervisor's approval, and
leaves the request *approved*. A real ``vigil ledger run`` process, the one given both keys,
builds the package in its next round, signing the clips; the requester then downloads it through
the API, and ``vigil-verify`` finds every clip faithful and signed by the agency.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from vigil_verify.report import verify_package

from integrity.keys import create_signing_key
from interfaces.api.app import create_api
from tests.c2pa_ca import TestCA
from tests.helpers import VIGIL, ingest_and_process
from tests.integration.test_api import serve_api
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

CASE = "CASE-19-LEDGER"
SPEC = SampleSpec(duration_s=6.0, width=320, height=240, video_bitrate="300k", gop_s=1.0, seed=192)


@dataclass(frozen=True)
class Keys:
    ledger_key: Path
    ledger_public: Path
    c2pa_cert: Path
    c2pa_key: Path
    trust: Path


def _keys(folder: Path) -> Keys:
    """The ledger's Ed25519 key pair, and the agency's C2PA chain and key from a private CA."""
    ca = TestCA.make()
    agency = ca.issue("Vigil Test Agency Exports", "Vigil Test Agency")
    cert, key = folder / "agency-chain.pem", folder / "agency-key.pem"
    cert.write_bytes(agency.chain_pem)
    key.write_bytes(agency.key_pem)
    ledger_key = folder / "keys" / "ledger.pem"
    public = ledger_key.with_suffix(".pub.pem")
    public.write_bytes(create_signing_key(ledger_key, "vigil.test/custody").public_pem)
    return Keys(ledger_key, public, cert, key, ca.write_trust_anchors(folder / "trust.pem"))


def _bearer(app: Vigil, who: str, role: str) -> dict[str, str]:
    app.access.add_principal(who, role, display_name=who, actor="setup")  # type: ignore[arg-type]
    token = app.access.issue_token(who, label="t", actor="setup").token
    return {"Authorization": f"Bearer {token}"}


def _run_ledger_until_ready(app: Vigil, keys: Keys, export_id: str) -> tuple[str, str]:
    """``vigil ledger run`` with both keys, on the API's data, until the export is ready (or
    five minutes pass); its status then, and what the ledger said."""
    env = {
        **os.environ, "VIGIL_DATA_DIR": str(app.settings.data_dir), "VIGIL_SEGMENT_SECONDS": "2",
        "VIGIL_LEDGER_KEY_FILE": str(keys.ledger_key), "VIGIL_EXPORTS_BUILT_BY": "ledger",
        "VIGIL_C2PA_SIGN_CERT": str(keys.c2pa_cert), "VIGIL_C2PA_SIGN_KEY": str(keys.c2pa_key),
        "VIGIL_LEDGER_INTERVAL_S": "0.5",
    }  # fmt: skip
    ledger = subprocess.Popen([*VIGIL, "ledger", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while (state := app.exports.get(export_id).status) == "approved":
            if time.monotonic() > deadline or ledger.poll() is not None:
                break
            time.sleep(0.5)
    finally:
        ledger.send_signal(signal.SIGTERM)
        _, said = ledger.communicate(timeout=60)
    return state, said


def _ask_and_approve(http: httpx.Client, alice: dict[str, str], sam: dict[str, str]) -> str:
    """Alice asks for the case with clips, Sam approves; the API only records it."""
    asked = http.post(
        f"/api/v1/cases/{CASE}/exports", headers=alice,
        json={"reason": "for the defence", "clips": True},
    )  # fmt: skip
    assert asked.status_code == 201, asked.text  # the API holds no C2PA key, and need not
    export_id = str(asked.json()["id"])
    approved = http.post(f"/api/v1/exports/{export_id}/approve", headers=sam, json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"  # not built by the API
    waiting = http.get(f"/api/v1/exports/{export_id}/package", headers=alice)
    assert waiting.status_code == 409, waiting.text
    return export_id


def test_the_ledger_service_builds_and_signs_an_export_the_api_only_approved(
    tmp_path: Path, make_clip: Callable[[SampleSpec], Path]
) -> None:
    keys = _keys(tmp_path)
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "vigil", segment_seconds=2.0, ledger_public_key_file=keys.ledger_public,
        exports_built_by="ledger",
    )  # fmt: skip
    app = build_app(settings)  # the API's process: no signing key of any kind
    try:
        assert not app.ledger.can_sign
        rec = ingest_and_process(app, make_clip(SPEC))
        app.cases.link(CASE, rec, from_s=2.0, to_s=4.0, reason="incident", actor="sam")
        alice, sam = _bearer(app, "alice", "reviewer"), _bearer(app, "sam", "supervisor")
        app.access.assign(CASE, "alice", actor="sam")
        for url in serve_api(create_api(app, secret=b"ledger-test-link-secret")):
            with httpx.Client(base_url=url, timeout=120) as http:
                export_id = _ask_and_approve(http, alice, sam)
                state, said = _run_ledger_until_ready(app, keys, export_id)
                assert state == "ready", said
                assert f"export {export_id} of {CASE}: ready" in said, said
                package = http.get(f"/api/v1/exports/{export_id}/package", headers=alice)
                assert package.status_code == 200, package.text
    finally:
        app.stop()
    zipped = tmp_path / "package.zip"
    zipped.write_bytes(package.content)
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(tmp_path / "unzipped")
        clips = [n for n in archive.namelist() if n.startswith(f"{CASE}/clips/")]
    assert len(clips) == 1
    report = verify_package(
        tmp_path / "unzipped" / CASE, ffmpeg="ffmpeg", c2pa_trust=keys.trust.read_text()
    )
    assert [c.faithful for c in report.clips] == [True], [c.detail for c in report.clips]
    assert report.clips[0].c2pa == "valid, signer anchored in the given trust list"
