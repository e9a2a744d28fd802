"""Issue 19, part two: exported clips carry C2PA Content Credentials any standard tool verifies,
and ``vigil-verify`` checks each clip against the signed log.

A private CA is made now; the agency's signing certificate is issued by it. One recording (6 s,
2 s segments, a keyframe every second), signed at capture by a "device" of the same CA, is
linked to the case three times: whole (its original travels in the package, and its own
manifest in the clip's ingredient), 2.0-4.0 s (on keyframes: copied) and 2.5-3.5 s (between
keyframes: re-encoded). The case is exported once with ``--clip``; each test works on its own
copy of the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import c2pa
import pytest
from vigil_verify.cli import main as verify_main
from vigil_verify.report import PackageReport, verify_package

from integrity.clip_credentials import EVIDENCE_LABEL, ClipSource, EvidenceAssertion
from integrity.clips import ClipExporter
from integrity.export import Manifest, export_case
from tests.c2pa_ca import SigningIdentity, TestCA, sign_mp4
from tests.helpers import VIGIL, ingest_and_process
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

CASE = "CASE-19-CLIPS"
SPEC = SampleSpec(duration_s=6.0, width=320, height=240, video_bitrate="300k", gop_s=1.0, seed=191)


@dataclass(frozen=True)
class Exported:
    app: Vigil
    package: Path
    manifest: Manifest
    trust: Path
    agency: SigningIdentity
    recording: str


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Iterator[Exported]:
    base = tmp_path_factory.mktemp("c2pa-clips")
    ca = TestCA.make()
    agency = ca.issue("Vigil Test Agency Exports", "Vigil Test Agency")
    cert, key = base / "agency-chain.pem", base / "agency-key.pem"
    cert.write_bytes(agency.chain_pem)
    key.write_bytes(agency.key_pem)
    trust = ca.write_trust_anchors(base / "trust-anchors.pem")
    original = base / "BC-0042_20261206_020000.mp4"
    sign_mp4(make_clip(SPEC), original, ca.issue("BC-0042"), "BC-0042")
    settings = Settings(  # type: ignore[call-arg]
        data_dir=base / "vigil", segment_seconds=2.0, c2pa_trust_anchors=trust,
        c2pa_sign_cert=cert, c2pa_sign_key=key,
    )  # fmt: skip
    app = build_app(settings)
    rec = ingest_and_process(app, original)
    for lo, hi in ((None, None), (2.0, 4.0), (2.5, 3.5)):
        app.cases.link(CASE, rec, from_s=lo, to_s=hi, reason="incident 19", actor="officer")
    package = export_case(
        app.catalog, app.store, app.ledger, CASE, base / "export", actor="reviewer",
        reason="disclosure to the defence", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
        clips=ClipExporter.configured(app.tools, cert, key),
    )  # fmt: skip
    manifest = Manifest.model_validate_json((package / "manifest.json").read_text())
    yield Exported(app, package, manifest, trust, agency, rec)
    app.stop()


@pytest.fixture
def copy(exported: Exported, tmp_path: Path) -> Path:
    target = tmp_path / CASE
    shutil.copytree(exported.package, target)
    return target


def read(path: Path, trust: Path) -> dict[str, object]:
    """What c2pa-python's Reader says of ``path``, judged against the test trust list."""
    settings = c2pa.Settings.from_dict(
        {"verify": {"verify_trust": True}, "trust": {"trust_anchors": trust.read_text()}}
    )
    with (
        c2pa.Context(settings) as context,
        path.open("rb") as fh,
        c2pa.Reader("video/mp4", fh, None, context) as reader,
    ):
        store = json.loads(reader.json())
    assert isinstance(store, dict)
    return store


def active(store: dict[str, object]) -> dict[str, object]:
    manifests = store["manifests"]
    assert isinstance(manifests, dict)
    found = manifests[store["active_manifest"]]
    assert isinstance(found, dict)
    return found


def assertion(manifest: dict[str, object], label: str) -> dict[str, object]:
    listed = manifest["assertions"]
    assert isinstance(listed, list)
    data = next(  # c2pa names a versioned standard assertion with its version (.v2)
        a["data"] for a in listed if a["label"] == label or a["label"].startswith(label + ".v")
    )
    assert isinstance(data, dict)
    return data


def clip_of(exported: Exported, lo: float, hi: float) -> str:
    return next(c.file for c in exported.manifest.clips if (c.from_s, c.to_s) == (lo, hi))


def test_every_linked_window_is_a_clip_cut_as_said_and_logged_once(exported: Exported) -> None:
    clips = {(c.from_s, c.to_s): c for c in exported.manifest.clips}
    assert set(clips) == {(0.0, 6.0), (2.0, 4.0), (2.5, 3.5)}
    assert clips[(2.0, 4.0)].method == "copy"  # starts on a keyframe
    assert clips[(2.5, 3.5)].method == "h264"  # starts between two
    assert [s.index for s in clips[(2.5, 3.5)].segments] == [1]
    assert [s.index for s in clips[(2.0, 4.0)].segments] == [1]  # touching segment 2 only
    assert [s.index for s in clips[(0.0, 6.0)].segments] == [0, 1, 2]
    events = [e for e in exported.app.catalog.events(case_id=CASE) if e.action == "export.clip"]
    assert len(events) == 3
    for event in events:
        detail = json.loads(event.detail or "{}")
        entry = clips[(detail["from_s"], detail["to_s"])]
        assert detail["sha256"] == entry.sha256
        assert detail["manifest_sha256"] == entry.manifest_sha256
        assert event.recording_id == exported.recording
    lines = (exported.package / "ledger" / "events.jsonl").read_text().splitlines()
    logged = [json.loads(json.loads(line)["event"])["action"] for line in lines]
    assert logged.count("export.clip") == 3  # proved in the package itself


def test_each_clip_validates_with_c2pa_against_the_test_trust_list(exported: Exported) -> None:
    for clip in exported.manifest.clips:
        store = read(exported.package / clip.file, exported.trust)
        assert store["validation_state"] == "Trusted", (clip.file, store.get("validation_status"))
        manifest = active(store)
        actions = [a["action"] for a in assertion(manifest, "c2pa.actions")["actions"]]
        expected = ["c2pa.opened", "c2pa.trimmed"]
        assert actions == (expected if clip.method == "copy" else [*expected, "c2pa.transcoded"])
        evidence = assertion(manifest, EVIDENCE_LABEL)
        assert evidence["recording"] == exported.recording
        assert (evidence["from_s"], evidence["to_s"]) == (clip.from_s, clip.to_s)
        assert evidence["segments"] == [s.model_dump() for s in clip.segments]
        ingredients = manifest["ingredients"]
        assert isinstance(ingredients, list) and ingredients[0]["relationship"] == "parentOf"
        original_sha256 = evidence["original_sha256"]
        assert isinstance(original_sha256, str) and original_sha256 in ingredients[0]["description"]


def test_the_originals_own_manifest_travels_in_the_whole_clips_ingredient(
    exported: Exported,
) -> None:
    store = read(exported.package / clip_of(exported, 0.0, 6.0), exported.trust)
    (ingredient,) = active(store)["ingredients"]  # type: ignore[misc]
    assert ingredient.get("active_manifest"), ingredient  # the device's manifest, carried
    manifests = store["manifests"]
    assert isinstance(manifests, dict) and len(manifests) == 2


def test_one_changed_byte_fails_c2pa(exported: Exported, copy: Path) -> None:
    path = copy / clip_of(exported, 2.0, 4.0)
    data = bytearray(path.read_bytes())
    at = data.index(b"mdat") + len(data[data.index(b"mdat") :]) // 2
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    store = read(path, exported.trust)
    assert store["validation_state"] == "Invalid"
    report = verify_package(copy, ffmpeg=shutil.which("ffmpeg"))
    finding = next(c for c in report.clips if c.file.endswith(path.name))
    assert not finding.faithful and "sha256 differs" in finding.detail


def check(package: Path, trust: Path | None = None) -> PackageReport:
    pem = trust.read_text() if trust else None
    return verify_package(package, ffmpeg=shutil.which("ffmpeg"), c2pa_trust=pem)


def test_vigil_verify_reports_each_clip_faithful(
    exported: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(exported.package), "--ffmpeg", str(shutil.which("ffmpeg"))]
    assert verify_main([*args, "--c2pa-trust", str(exported.trust)]) == 0
    text = capsys.readouterr().out
    assert text.count("[C2PA: valid, signer anchored in the given trust list]") == 3, text
    report = check(exported.package, exported.trust)
    assert len(report.clips) == 3
    assert all(c.faithful for c in report.clips), text
    assert f"clip {Path(clip_of(exported, 2.0, 4.0)).name}: faithful to segments 1 (" in text
    assert f"clip {Path(clip_of(exported, 2.5, 3.5)).name}: faithful to segments 1 " in text
    assert text.count("pictures as signed, sound as signed") == 3, text  # each clip's sound heard
    assert report.clean, text


def _resign(
    exported: Exported, copy: Path, clip: str, evidence: EvidenceAssertion, src: Path
) -> None:
    """Sign ``src`` with the agency's own key (the strongest forger) as ``copy/clip``."""
    signer = ClipExporter.configured(exported.app.tools, *_signing(exported)).signer
    source = ClipSource(exported.recording, "BC-0042_20261206_020000.mp4", None, None)
    signer.sign(src, copy / clip, source, evidence)


def _signing(exported: Exported) -> tuple[Path | None, Path | None]:
    return exported.app.settings.c2pa_sign_cert, exported.app.settings.c2pa_sign_key


def _evidence(exported: Exported, clip: str) -> EvidenceAssertion:
    store = read(exported.package / clip, exported.trust)
    return EvidenceAssertion.model_validate(assertion(active(store), EVIDENCE_LABEL))


def test_a_clip_re_encoded_with_an_overlay_is_flagged(
    exported: Exported, copy: Path, tmp_path: Path
) -> None:
    clip = clip_of(exported, 2.0, 4.0)
    overlaid = tmp_path / "overlaid.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(exported.package / clip),
         "-vf", "drawbox=x=0:y=0:w=iw/2:h=ih/2:color=black:t=fill", "-c:v", "libx264",
         "-c:a", "copy", "-y", str(overlaid)],
        check=True, timeout=120,
    )  # fmt: skip
    _resign(exported, copy, clip, _evidence(exported, clip), overlaid)
    assert read(copy / clip, exported.trust)["validation_state"] == "Trusted"  # C2PA is happy
    report = check(copy)
    finding = next(c for c in report.clips if c.file == clip)
    assert not finding.faithful
    assert "edited" in finding.detail, finding.detail
    assert not report.clean


def test_a_clip_whose_sound_was_muted_is_flagged_at_that_time(
    exported: Exported, copy: Path, tmp_path: Path
) -> None:
    clip = clip_of(exported, 2.0, 4.0)
    muted = tmp_path / "muted.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(exported.package / clip), "-map", "0",
         "-c:v", "copy", "-af", "volume=enable='between(t,0.7,1.3)':volume=0",
         "-c:a", "aac", "-b:a", "128k", "-y", str(muted)],
        check=True, timeout=120,
    )  # fmt: skip
    _resign(exported, copy, clip, _evidence(exported, clip), muted)
    report = check(copy)
    finding = next(c for c in report.clips if c.file == clip)
    assert not finding.faithful
    assert "segment 1 audio edited" in finding.detail, finding.detail
    assert "segment 1 edited" not in finding.detail, finding.detail  # the pictures are the same
    assert not report.clean


def test_a_clip_whose_manifest_names_another_window_is_flagged(
    exported: Exported, copy: Path, tmp_path: Path
) -> None:
    clip = clip_of(exported, 2.0, 4.0)
    plain = tmp_path / "plain.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(exported.package / clip), "-map", "0", "-c", "copy",
         "-map_metadata", "-1", "-y", str(plain)],
        check=True, timeout=60,
    )  # fmt: skip
    evidence = _evidence(exported, clip).model_copy(update={"from_s": 0.0, "to_s": 2.0})
    _resign(exported, copy, clip, evidence, plain)
    report = check(copy)
    finding = next(c for c in report.clips if c.file == clip)
    assert not finding.faithful
    assert "the log recorded 2.000-4.000 s" in finding.detail, finding.detail


@pytest.mark.skipif(
    shutil.which("c2patool") is None,
    reason="c2patool is not on PATH (cargo install c2patool; not built by the test suite)",
)
def test_c2patool_reads_each_clip(exported: Exported, copy: Path) -> None:  # pragma: no cover
    for clip in exported.manifest.clips:
        done = subprocess.run(
            ["c2patool", str(exported.package / clip.file)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert EVIDENCE_LABEL in done.stdout


def test_without_c2pa_python_the_verifier_says_so_and_still_checks_the_pictures(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa now raises ImportError
    report = check(exported.package)
    assert len(report.clips) == 3
    for clip in report.clips:
        assert clip.c2pa.startswith("not read: c2pa-python is not installed"), clip.c2pa
        assert clip.faithful, clip.detail  # on the window the signed log recorded


def test_the_cli_exports_clips_and_says_so_without_a_signing_key(
    exported: Exported, tmp_path: Path
) -> None:
    settings = exported.app.settings
    env = {**os.environ, "VIGIL_DATA_DIR": str(settings.data_dir)}
    args = [*VIGIL, "-q", "export", CASE, str(tmp_path / "out"), "--reason", "disclosure", "--clip"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert "VIGIL_C2PA_SIGN_CERT" in done.stderr and "Traceback" not in done.stderr
    signing = {
        "VIGIL_C2PA_SIGN_CERT": str(settings.c2pa_sign_cert),
        "VIGIL_C2PA_SIGN_KEY": str(settings.c2pa_sign_key),
    }
    done = subprocess.run(args, env={**env, **signing}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    clips = sorted(p.name for p in (tmp_path / "out" / CASE / "clips").iterdir())
    assert len(clips) == 3 and all(name.endswith(".mp4") for name in clips)


def test_an_approved_export_request_with_clips_builds_them(exported: Exported) -> None:
    exports = exported.app.exports
    row = exports.request(CASE, requested_by="alice", reason="for the defence", clips=True)
    ready = exports.approve(row.id, supervisor="sam")
    assert ready.status == "ready" and ready.clips
    _, package = exports.package(row.id)
    with zipfile.ZipFile(package) as archive:
        clips = [n for n in archive.namelist() if n.startswith(f"{CASE}/clips/")]
    assert len(clips) == 3 and all(n.endswith(".mp4") for n in clips)


def test_a_signer_outside_the_given_trust_list_is_flagged(
    exported: Exported, tmp_path: Path
) -> None:
    other = TestCA.make("Another Root").write_trust_anchors(tmp_path / "other.pem")
    report = check(exported.package, other)
    assert report.clips and all(not c.faithful for c in report.clips)
    assert all(c.c2pa == "untrusted" for c in report.clips)
    assert "chains to no anchor" in report.clips[0].detail
