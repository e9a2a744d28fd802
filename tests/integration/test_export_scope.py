"""Issue 15: an export proves its scope. Every recording in a package is there because a
``case.link`` of the package's case, proved in the signed log, links it (with its window), and
``vigil-verify`` names one that is not, and a segment outside the linked windows.

Three small recordings (6 s, 2 s segments: 0-2, 2-4, 4-6 s) are ingested once:

- ``windowed``: linked to ``CASE`` twice, 2.5-3.5 s and 4.5-5.5 s (segments 1 and 2, no original);
- ``relinked``: linked to ``CASE`` for 0-1 s, unlinked, linked again whole;
- ``other``: linked whole to ``OTHER`` only.

Both cases are exported once; each test tampers with its own copy of a package.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vigil_verify.cli import main as verify_main
from vigil_verify.report import PackageReport, verify_package

from integrity.errors import LedgerError
from integrity.export import export_case
from integrity.ledger import canonical_event
from tests.helpers import ingest_and_process, segment_path
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg]

CASE = "CASE-15"
OTHER = "CASE-15-OTHER"
NOT_LINKED = "not linked to the case"
OUTSIDE = "outside the linked windows"


@dataclass(frozen=True)
class Packages:
    app: Vigil
    case: Path  # the package of CASE
    other: Path  # the package of OTHER
    windowed: str
    relinked: str
    other_rec: str


def _export(app: Vigil, case_id: str, folder: Path) -> Path:
    return export_case(
        app.catalog, app.store, app.ledger, case_id, folder, actor="reviewer",
        reason="disclosure to the defence", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip


@pytest.fixture(scope="module")
def packages(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Iterator[Packages]:
    base = tmp_path_factory.mktemp("export-scope")
    app = build_app(Settings(data_dir=base / "vigil", segment_seconds=2.0))  # type: ignore[call-arg]
    windowed, relinked, other = (
        ingest_and_process(
            app, make_clip(SampleSpec(duration_s=6.0, width=320, height=240, seed=seed))
        )
        for seed in (151, 152, 153)
    )
    link = app.cases.link
    link(CASE, windowed, from_s=2.5, to_s=3.5, reason="the stop", actor="officer")
    link(CASE, windowed, from_s=4.5, to_s=5.5, reason="the arrest", actor="officer")
    link(CASE, relinked, from_s=0.0, to_s=1.0, reason="first look", actor="officer")
    app.cases.unlink(CASE, relinked, reason="wrong window", actor="officer")
    link(CASE, relinked, from_s=None, to_s=None, reason="all of it", actor="officer")
    link(OTHER, other, from_s=None, to_s=None, reason="another incident", actor="officer")
    case = _export(app, CASE, base / "export")
    other_package = _export(app, OTHER, base / "export")
    yield Packages(app, case, other_package, windowed, relinked, other)
    app.stop()


@pytest.fixture
def copy(packages: Packages, tmp_path: Path) -> Path:
    """A private copy of the package of CASE to tamper with."""
    target = tmp_path / CASE
    shutil.copytree(packages.case, target)
    return target


def check(package: Path, ffmpeg: str) -> PackageReport:
    return verify_package(package, ffmpeg=ffmpeg)


def scope(report: PackageReport) -> list[tuple[str, int | None, str]]:
    return [(f.recording, f.index, f.kind) for f in report.scope]


def run_json(package: Path, ffmpeg: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    status = verify_main([str(package), "--ffmpeg", ffmpeg, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict) and report["exit_status"] == status
    return report


def listed(report: dict[str, object], key: str) -> list[dict[str, object]]:
    """The list ``key`` of a ``--json`` report."""
    value = report[key]
    assert isinstance(value, list) and all(isinstance(v, dict) for v in value)
    return value


def drop_events(package: Path, recording: str, action: str, *, last_only: bool = False) -> int:
    """Delete the ``action`` events of ``recording`` from the package's events.jsonl (only the
    last of them with ``last_only``); how many went."""
    path = package / "ledger" / "events.jsonl"
    lines = path.read_text().splitlines()
    hits = [
        n
        for n, line in enumerate(lines)
        if (event := json.loads(json.loads(line)["event"]))["action"] == action
        and event["recording"] == recording
    ]
    gone = set(hits[-1:] if last_only else hits)
    path.write_text("".join(line + "\n" for n, line in enumerate(lines) if n not in gone))
    return len(gone)


def test_genuine_packages_are_in_scope_and_clean(
    packages: Packages, ffmpeg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two windows of one recording, a link undone and made again whole, a whole link of
    another case: each package holds what its case links, and verifies clean."""
    report = check(packages.case, ffmpeg)
    assert report.clean, (report.scope, report.log_problems, report.manifest_problems)
    assert report.scope == []
    assert {(o.recording, o.kind) for o in report.originals} == {
        (packages.windowed, "not exported"),
        (packages.relinked, "intact"),
    }
    assert {(s.recording, s.index, s.kind) for s in report.segments} == {
        (packages.windowed, 1, "intact"), (packages.windowed, 2, "intact"),
        (packages.relinked, 0, "intact"), (packages.relinked, 1, "intact"),
        (packages.relinked, 2, "intact"),
    }  # fmt: skip
    assert not (packages.case / packages.other_rec).exists()
    other = run_json(packages.other, ffmpeg, capsys)
    assert other["exit_status"] == 0 and other["clean"] is True and other["scope"] == []
    assert verify_main([str(packages.case), "--ffmpeg", ffmpeg]) == 0
    assert "RESULT: CLEAN (5 intact)" in capsys.readouterr().out


def test_a_deleted_case_link_names_the_recording(
    packages: Packages, copy: Path, ffmpeg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``relinked``'s case.link and case.unlink events deleted: the package still holds all of
    it, intact, with its manifest entry, and only its missing link is wrong."""
    rec = packages.relinked
    assert drop_events(copy, rec, "case.link") == 2
    assert drop_events(copy, rec, "case.unlink") == 1
    report = run_json(copy, ffmpeg, capsys)
    assert report["exit_status"] == 1 and report["clean"] is False
    assert (report["log_problems"], report["manifest_problems"], report["malformed"]) == (
        [], [], [],
    )  # fmt: skip
    assert {s["kind"] for s in listed(report, "segments")} == {"intact"}
    assert {o["kind"] for o in listed(report, "originals")} == {"intact", "not exported"}
    (found,) = listed(report, "scope")
    assert (found["recording"], found["index"], found["kind"]) == (rec, None, NOT_LINKED)
    assert f"links it to case {CASE}, yet the manifest lists it" in str(found["detail"])
    assert verify_main([str(copy), "--ffmpeg", ffmpeg]) == 1
    out = capsys.readouterr().out
    assert f"  recording    {NOT_LINKED}: no case.link event proved" in out
    assert f"RESULT: PROBLEMS FOUND (5 intact, 1 {NOT_LINKED})" in out


def test_a_deleted_windowed_link_names_the_recording(
    packages: Packages, copy: Path, ffmpeg: str
) -> None:
    assert drop_events(copy, packages.windowed, "case.link") == 2
    report = check(copy, ffmpeg)
    assert scope(report) == [(packages.windowed, None, NOT_LINKED)]
    assert not report.clean


def test_a_deleted_link_again_leaves_the_unlink_standing(
    packages: Packages, copy: Path, ffmpeg: str
) -> None:
    """Without its last case.link, the log's word on ``relinked`` is its unlink."""
    assert drop_events(copy, packages.relinked, "case.link", last_only=True) == 1
    report = check(copy, ffmpeg)
    assert scope(report) == [(packages.relinked, None, NOT_LINKED)]
    assert "unlinks it from case" in report.scope[0].detail
    assert not report.clean


def test_a_recording_linked_to_another_case_is_named(
    packages: Packages, copy: Path, ffmpeg: str
) -> None:
    """An insider puts a recording of another case into the package, with its manifest entry
    and every signed event about it proved against the package's own head: its footage and
    its log check out, and nothing links it to this case."""
    app, rec = packages.app, packages.other_rec
    shutil.copytree(packages.other / rec, copy / rec)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    theirs = json.loads((packages.other / "manifest.json").read_text())
    manifest["recordings"] += [r for r in theirs["recordings"] if r["id"] == rec]
    manifest_path.write_text(json.dumps(manifest))
    size = manifest["ledger"]["tree_size"]
    lines = []
    for event in app.catalog.events(recording_ids=[rec]):
        try:
            position, proof = app.ledger.inclusion_proof(event.id, size)
        except LedgerError:
            continue  # after the package's head
        entry = {"position": position, "event": canonical_event(event).decode()}
        lines.append(json.dumps({**entry, "proof": [p.hex() for p in proof]}) + "\n")
    with (copy / "ledger" / "events.jsonl").open("a") as out:
        out.writelines(lines)
    report = check(copy, ffmpeg)
    assert report.log_problems == [] and report.manifest_problems == []
    assert {s.kind for s in report.segments if s.recording == rec} == {"intact"}
    assert scope(report) == [(rec, None, NOT_LINKED)]
    assert verify_main([str(copy), "--ffmpeg", ffmpeg]) == 1


def test_a_recording_folder_the_manifest_leaves_out_is_named(
    packages: Packages, copy: Path, ffmpeg: str
) -> None:
    shutil.copytree(packages.other / packages.other_rec, copy / packages.other_rec)
    report = check(copy, ffmpeg)
    assert scope(report) == [(packages.other_rec, None, NOT_LINKED)]
    assert f"{packages.other_rec}/" in report.scope[0].detail
    assert not report.clean


def test_footage_outside_the_linked_windows_is_named(
    packages: Packages, copy: Path, ffmpeg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Segment 0 (0-2 s) and the original of ``windowed`` added, as the store holds them."""
    app, rec = packages.app, packages.windowed
    first = next(s for s in app.catalog.segments(rec) if s.index == 0)
    shutil.copyfile(
        segment_path(app, first),
        copy / rec / "segments" / first.key.rpartition("/")[2],
    )
    original = app.catalog.recording(rec).original_key
    shutil.copyfile(
        app.settings.store_root / "originals" / original,
        copy / rec / ("original" + Path(original).suffix),
    )
    report = check(copy, ffmpeg)
    assert scope(report) == [(rec, 0, OUTSIDE), (rec, None, OUTSIDE)]
    assert "0-2 s of the recording" in report.scope[0].detail
    assert "2.5 s to 3.5 s, 4.5 s to 5.5 s" in report.scope[0].detail
    assert verify_main([str(copy), "--ffmpeg", ffmpeg]) == 1
    out = capsys.readouterr().out
    assert f"segment 0    {OUTSIDE}" in out and f"original     {OUTSIDE}" in out
