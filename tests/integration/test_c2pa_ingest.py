"""Content Credentials at ingest, for real: a private CA made now, a real H.264/AAC MP4 signed by
c2pa-python as a body camera signs at capture, ingested by the code the CLI runs (embedded
defaults: folder store, SQLite), judged against ``VIGIL_C2PA_TRUST_ANCHORS``. Each finding is
in the signed custody log, on the case timeline and in the metrics; none stops ingest."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog.repository import SYSTEM_ACTOR
from integrity.credentials import CaptureCredentials, find_manifest_store
from integrity.logfacts import prove
from integrity.timeline import case_timeline
from tests.c2pa_ca import SigningIdentity, TestCA, sign_mp4
from tests.helpers import VIGIL, ingest_and_process, object_path
from transcode.samples import SampleSpec
from workers.app import Vigil

pytestmark = pytest.mark.ffmpeg

CLIP = SampleSpec(duration_s=4.0, width=320, height=240, video_bitrate="300k", seed=19)
DEVICE = "CN=BC-0042, O=Vigil Test Devices, C=US"


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA.make()


@pytest.fixture(scope="module")
def device(ca: TestCA) -> SigningIdentity:
    return ca.issue("BC-0042")


@pytest.fixture
def trust(ca: TestCA, tmp_path: Path) -> Path:
    return ca.write_trust_anchors(tmp_path / "trust-anchors.pem")


@pytest.fixture
def clip(make_clip: Callable[[SampleSpec], Path]) -> Path:
    return make_clip(CLIP)


@pytest.fixture
def signed(clip: Path, device: SigningIdentity, tmp_path: Path) -> tuple[Path, bytes]:
    """The clip as the camera hands it over, and the manifest store c2pa wrote into it."""
    out = tmp_path / "BC-0042_20261127_093000.mp4"
    return out, sign_mp4(clip, out, device, "BC-0042")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def change_a_media_byte(path: Path) -> None:
    """One byte in the middle of the ``mdat`` box (the coded pictures and sound) changed."""
    data = bytearray(path.read_bytes())
    at = data.index(b"mdat") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    data[at + size // 2] ^= 0x01
    path.write_bytes(bytes(data))


def counted(app: Vigil, state: str) -> float:
    value = app.metrics.registry.get_sample_value("vigil_c2pa_manifests_total", {"state": state})
    assert value is not None
    return value


def ingested(app: Vigil, path: Path, case: str) -> tuple[str, CaptureCredentials | None, str]:
    """Ingest ``path`` and link it to ``case``: its recording, the finding its custody log
    records, and what the case timeline shows."""
    rec_id = ingest_and_process(app, path)
    events = app.catalog.events(recording_ids=[rec_id])
    actions = [e.action for e in events]
    assert actions[0] == "ingest"  # the original is on record, hashed, before anything else
    found = [CaptureCredentials.parse(e.detail) for e in events if e.action == "original.c2pa"]
    assert len(found) <= 1
    app.cases.link(case, rec_id, from_s=None, to_s=None, reason="traffic stop", actor="test")
    timeline = case_timeline(app.catalog, case, tolerance_frames=1, device_tolerance_s=2)
    (view,) = timeline.recordings
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete"  # ingest and the custody path went on, whatever was found
    assert sha256(object_path(app, "originals", rec.original_key)) == sha256(path)
    return rec_id, found[0] if found else None, view.provenance


def test_a_device_signed_original_is_valid_in_the_signed_log_and_on_the_timeline(
    app_factory: Callable[..., Vigil], signed: tuple[Path, bytes], trust: Path
) -> None:
    path, store = signed
    app = app_factory(c2pa_trust_anchors=trust)
    rec_id, found, shown = ingested(app, path, "CASE-C2PA-1")
    assert found is not None
    assert found.state == "valid"
    assert found.signer == DEVICE
    assert found.issuer == "CN=Vigil Test Root CA, O=Vigil Tests, C=US"
    assert found.claim_generator == "AcmeCam BC-3/2.1"
    assert found.manifest_sha256 == hashlib.sha256(store).hexdigest()
    assert found.manifest_size == len(store)
    assert found.trust_list_sha256 == sha256(trust)
    assert found.failures == ()
    assert shown == f"signed at capture by {DEVICE}: valid"
    event = next(
        e for e in app.catalog.events(recording_ids=[rec_id]) if e.action == "original.c2pa"
    )
    assert event.reason == shown
    assert event.actor == "test"  # who ingested it, as for the ingest event
    app.ledger.checkpoint()
    proved = prove(app.ledger, app.ledger.public_key, [rec_id]).of(rec_id)
    assert proved.problems == [] and proved.unsigned == []
    assert proved.events_proved == proved.events  # the finding is in the signed log
    assert counted(app, "valid") == 1
    assert counted(app, "invalid") == counted(app, "untrusted") == 0


def test_one_changed_media_byte_is_invalid_and_ingested_byte_exact(
    app_factory: Callable[..., Vigil], signed: tuple[Path, bytes], trust: Path
) -> None:
    path, store = signed
    change_a_media_byte(path)
    assert find_manifest_store(path) == store  # the manifest is untouched; the footage is not
    app = app_factory(c2pa_trust_anchors=trust)
    _, found, shown = ingested(app, path, "CASE-C2PA-2")
    assert found is not None
    assert found.state == "invalid"
    assert found.signer == DEVICE
    assert "assertion.bmffHash.mismatch" in found.failures
    assert shown == f"signed at capture by {DEVICE}: invalid (assertion.bmffHash.mismatch)"
    assert counted(app, "invalid") == 1
    assert counted(app, "valid") == counted(app, "untrusted") == 0


def test_a_signer_of_an_unknown_ca_is_untrusted(
    app_factory: Callable[..., Vigil], clip: Path, trust: Path, tmp_path: Path
) -> None:
    stranger = TestCA.make("Someone Else's Root").issue("BC-0042")
    path = tmp_path / "elsewhere.mp4"
    sign_mp4(clip, path, stranger, "BC-0042")
    app = app_factory(c2pa_trust_anchors=trust)
    _, found, shown = ingested(app, path, "CASE-C2PA-3")
    assert found is not None
    assert found.state == "untrusted"
    assert found.issuer == "CN=Someone Else's Root, O=Vigil Tests, C=US"
    assert found.failures == ("signingCredential.untrusted",)
    assert shown == f"signed at capture by {DEVICE}: untrusted (signingCredential.untrusted)"
    assert counted(app, "untrusted") == 1


def test_without_a_trust_list_a_signer_is_at_most_untrusted(
    app_factory: Callable[..., Vigil], signed: tuple[Path, bytes]
) -> None:
    app = app_factory()
    _, found, _ = ingested(app, signed[0], "CASE-C2PA-4")
    assert found is not None
    assert found.state == "untrusted"
    assert found.trust_list_sha256 is None


def test_an_unreadable_manifest_is_invalid_and_never_blocks_ingest(
    app_factory: Callable[..., Vigil], signed: tuple[Path, bytes], trust: Path
) -> None:
    path, store = signed
    data = path.read_bytes()
    at = data.index(store) + len(store) // 2
    path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    app = app_factory(c2pa_trust_anchors=trust)
    _, found, shown = ingested(app, path, "CASE-C2PA-5")
    assert found is not None
    assert found.state == "invalid"
    assert shown.startswith("signed at capture") and ": invalid (" in shown
    assert counted(app, "invalid") == 1


def test_an_original_without_a_manifest_records_nothing(
    app_factory: Callable[..., Vigil], clip: Path, trust: Path
) -> None:
    app = app_factory(c2pa_trust_anchors=trust)
    _, found, shown = ingested(app, clip, "CASE-C2PA-6")
    assert found is None
    assert shown == "no C2PA manifest"
    assert {counted(app, s) for s in ("valid", "invalid", "untrusted")} == {0}


def test_the_cli_records_and_shows_it(
    signed: tuple[Path, bytes], trust: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_C2PA_TRUST_ANCHORS": str(trust),
    }

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*VIGIL, "-q", *args], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done

    rec = vigil("ingest", str(signed[0]), "--device", "BC-0042").stdout.split()[1]
    vigil("case", "link", "CASE-C2PA-7", rec, "--reason", "traffic stop")
    shown = vigil("case", "show", "CASE-C2PA-7").stdout
    assert f"provenance signed at capture by {DEVICE}: valid" in shown
    events = vigil("events", "--recording", rec).stdout.splitlines()
    assert [line.split()[3] for line in events[:2]] == ["ingest", "original.c2pa"]
    assert f"reason: signed at capture by {DEVICE}: valid" in events[1]
    assert SYSTEM_ACTOR not in events[1].split()[2]


def test_a_bad_trust_list_stops_the_cli_with_the_reason(tmp_path: Path, clip: Path) -> None:
    bad = tmp_path / "anchors.pem"
    bad.write_text("not a certificate\n")
    env = {**os.environ, "VIGIL_DATA_DIR": str(tmp_path / "data")}
    for value, says in ((bad, "not a PEM file"), (tmp_path / "absent.pem", "No such file")):
        done = subprocess.run(
            [*VIGIL, "-q", "ingest", str(clip), "--device", "BC-0042"],
            env={**env, "VIGIL_C2PA_TRUST_ANCHORS": str(value)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode != 0
        assert "C2PA trust anchors" in done.stderr and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
