"""Outside copies compared with the catalogued recording: re-encodes match, edits are located.

The recording is the standard 32 s clip (segments ~0-10, 10-20, 20-30, 30-32 s), ingested
once for the run (``standard_recorded``; this module opens its own copy): every test only
compares a copy with it (a match adds its event, nothing else).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vigil_verify.compare import MatchReport

from integrity.match import match_copy
from tests.helpers import copy_data
from tests.tamper import cut_command, overlay_command, reencode_command, run
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = pytest.mark.ffmpeg


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, standard_recorded: tuple[Path, str]
) -> Iterator[Vigil]:
    data = copy_data(standard_recorded[0], tmp_path_factory.mktemp("perceptual") / "vigil")
    vigil = build_app(Settings(data_dir=data))
    yield vigil
    vigil.stop()


@pytest.fixture(scope="module")
def catalogued(standard_recorded: tuple[Path, str]) -> str:
    return standard_recorded[1]


def statuses(report: MatchReport) -> dict[int, str]:
    return {v.index: v.status for v in report.segments}


@pytest.mark.parametrize(
    ("crf", "scale"), [(23, 1.0), (35, 1.0), (23, 0.5)], ids=["crf23", "crf35", "half-res"]
)
def test_a_reencoded_copy_matches_segment_by_segment(
    app: Vigil, catalogued: str, standard_clip: Path, ffmpeg: str, tmp_path: Path,
    crf: int, scale: float,
) -> None:  # fmt: skip
    copy = tmp_path / "copy.mp4"
    run(reencode_command(ffmpeg, standard_clip, copy, crf=crf, scale=scale))
    assert copy.read_bytes() != standard_clip.read_bytes()
    report = match_copy(app.catalog, app.tools, catalogued, copy, actor="test")
    assert statuses(report) == {0: "same", 1: "same", 2: "same", 3: "same"}
    assert report.clean
    assert report.extra == ()
    for verdict in report.segments:
        assert abs(verdict.offset_s) < 0.15


def test_a_two_second_overlay_flags_that_segment_and_no_other(
    app: Vigil, catalogued: str, standard_clip: Path, ffmpeg: str, tmp_path: Path
) -> None:
    edited = tmp_path / "edited.mp4"
    run(overlay_command(ffmpeg, standard_clip, edited, start_s=23.0, duration_s=2.0, area=0.08))
    report = match_copy(app.catalog, app.tools, catalogued, edited, actor="test")
    assert statuses(report) == {0: "same", 1: "same", 2: "edited", 3: "same"}
    (edited_range,) = report.segments[2].edited_ranges
    assert edited_range[0] == pytest.approx(23.0, abs=0.5)
    assert edited_range[1] == pytest.approx(25.0, abs=0.5)


def test_a_small_overlay_is_still_found(
    app: Vigil, catalogued: str, standard_clip: Path, ffmpeg: str, tmp_path: Path
) -> None:
    edited = tmp_path / "edited-small.mp4"
    run(overlay_command(ffmpeg, standard_clip, edited, start_s=4.0, duration_s=2.0, area=0.02))
    report = match_copy(app.catalog, app.tools, catalogued, edited, actor="test")
    assert statuses(report) == {0: "edited", 1: "same", 2: "same", 3: "same"}


def test_one_second_cut_flags_only_the_segment_that_held_it(
    app: Vigil, catalogued: str, standard_clip: Path, ffmpeg: str, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.mp4"
    run(cut_command(ffmpeg, standard_clip, cut, at_s=14.5, duration_s=1.0))
    report = match_copy(app.catalog, app.tools, catalogued, cut, actor="test")
    assert statuses(report) == {0: "same", 1: "edited", 2: "same", 3: "same"}
    assert report.segments[2].offset_s == pytest.approx(-1.0, abs=0.15)
    assert report.segments[3].offset_s == pytest.approx(-1.0, abs=0.15)


def test_a_copy_missing_its_end_reports_the_missing_segment(
    app: Vigil, catalogued: str, standard_clip: Path, ffmpeg: str, tmp_path: Path
) -> None:
    short = tmp_path / "short.mp4"
    run([ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(standard_clip), "-t", "19.5",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac",
         str(short)])  # fmt: skip
    report = match_copy(app.catalog, app.tools, catalogued, short, actor="test")
    got = statuses(report)
    assert got[0] == "same"
    assert got[2] == "missing"
    assert got[3] == "missing"


def test_match_is_a_custody_event(app: Vigil, catalogued: str, standard_clip: Path) -> None:
    match_copy(app.catalog, app.tools, catalogued, standard_clip, actor="court-clerk")
    events = app.catalog.events(recording_ids=[catalogued])
    (event,) = [e for e in events if e.action == "match" and e.actor == "court-clerk"]
    assert event.detail is not None
    assert '"clean":true' in event.detail
