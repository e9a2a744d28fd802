"""Forensic precision on real footage (Debian's opencv-doc clips), with copies made by ffmpeg:
no false alarm on the untouched file, a remux or benign re-encodes; frame drops, freezes, cuts,
insertions and short tails found and placed where they were made.

Megamind.avi (MPEG-4 Part 2 with packed B-frames in AVI, 23.976 fps: its Matroska segments
repeat one frame time and skip another) and tree.avi (Cinepak, about 2 distinct pictures a
second: a slow scene) are the hard cases the issue names. bench/tamper_suite.py runs the
whole grid; docs/forensic-precision.md has its table.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from vigil_verify.compare import MatchReport

from integrity.match import match_copy, references
from tests.conftest import opencv_sample
from tests.helpers import VIGIL, ingest_and_process
from tests.tamper import (
    cut_command,
    drop_frames_command,
    freeze_command,
    insert_command,
    reencode_command,
    remux_command,
    resample_command,
    run,
    tail_cut_command,
)
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = pytest.mark.ffmpeg


@dataclass(frozen=True)
class Recorded:
    app: Vigil
    rec_id: str
    source: Path
    times: np.ndarray  # the recording's frame times (what ffmpeg's filters number)
    data_dir: Path

    def index(self, at: float) -> int:
        return int((self.times < at - 1e-6).sum())

    def match(self, copy: Path) -> MatchReport:
        return match_copy(self.app.catalog, self.app.tools, self.rec_id, copy, actor="test")


def _recorded(name: str, tmp: Path) -> Iterator[Recorded]:
    source = opencv_sample(name)
    app = build_app(Settings(data_dir=tmp / "vigil"))
    try:
        rec_id = ingest_and_process(app, source)
        times = np.concatenate([r.frames.times for r in references(app.catalog, rec_id)])
        yield Recorded(app, rec_id, source, times, tmp / "vigil")
    finally:
        app.stop()


@pytest.fixture(scope="module")
def megamind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    yield from _recorded("Megamind.avi", tmp_path_factory.mktemp("megamind"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    yield from _recorded("tree.avi", tmp_path_factory.mktemp("tree"))


def made(tmp_path: Path, name: str, command: list[str]) -> Path:
    run(command)
    out = Path(command[-1])
    assert out.parent == tmp_path and out.name == name
    return out


def edits(report: MatchReport) -> list[tuple[str, float, float]]:
    return [(e.kind, e.start, e.end) for v in report.segments for e in v.edits]


# -- no false alarms ---------------------------------------------------------------------------


def test_the_untouched_megamind_original_matches_itself_exactly(megamind: Recorded) -> None:
    report = megamind.match(megamind.source)
    assert report.clean, edits(report)
    (segment,) = report.segments
    assert segment.status == "same" and segment.max_window_bits == 0.0


@pytest.mark.parametrize("variant", ["remux", "crf23", "crf35", "half-res", "25fps"])
def test_benign_copies_of_megamind_are_the_same(
    megamind: Recorded, ffmpeg: str, tmp_path: Path, variant: str
) -> None:
    out = tmp_path / "copy.mkv"
    command = {
        "remux": lambda: remux_command(ffmpeg, megamind.source, out),
        "crf23": lambda: reencode_command(ffmpeg, megamind.source, out, crf=23),
        "crf35": lambda: reencode_command(ffmpeg, megamind.source, out, crf=35),
        "half-res": lambda: reencode_command(ffmpeg, megamind.source, out, crf=23, scale=0.5),
        "25fps": lambda: resample_command(ffmpeg, megamind.source, out, fps=25),
    }[variant]()
    report = megamind.match(made(tmp_path, "copy.mkv", command))
    assert report.clean, edits(report)


def test_a_slow_scene_re_encoded_at_crf35_is_the_same(
    tree: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    copy = made(
        tmp_path, "copy.mkv", reencode_command(ffmpeg, tree.source, tmp_path / "copy.mkv", crf=35)
    )
    report = tree.match(copy)
    assert report.clean, edits(report)


# -- timing: dropped frames, freezes -----------------------------------------------------------


def test_three_dropped_frames_are_found_to_the_frame_from_their_timestamps(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    first = megamind.index(5.0)
    cmd = drop_frames_command(
        ffmpeg, megamind.source, tmp_path / "c.mkv", first=first, frames=3, shift_s=0, retime=False
    )
    report = megamind.match(made(tmp_path, "c.mkv", cmd))
    ((kind, lo, hi),) = edits(report)
    step = 1 / 23.976
    assert kind == "dropped"
    assert lo == pytest.approx(megamind.times[first], abs=step)
    assert hi == pytest.approx(megamind.times[first + 3], abs=step)


def test_three_dropped_frames_re_timestamped_are_found_by_the_pictures(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    first = megamind.index(5.0)
    cmd = drop_frames_command(
        ffmpeg, megamind.source, tmp_path / "c.mkv", first=first, frames=3,
        shift_s=3 / 23.976, retime=True,
    )  # fmt: skip
    report = megamind.match(made(tmp_path, "c.mkv", cmd))
    assert not report.clean
    ((kind, lo, _hi),) = edits(report)
    assert kind == "cut" and lo == pytest.approx(5.0, abs=0.5)


def test_a_half_second_freeze_is_found_where_it_is(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    first, last = megamind.index(5.0), megamind.index(5.5) - 1
    cmd = freeze_command(ffmpeg, megamind.source, tmp_path / "c.mkv", first=first, last=last)
    report = megamind.match(made(tmp_path, "c.mkv", cmd))
    frozen = [(lo, hi) for kind, lo, hi in edits(report) if kind == "frozen"]
    assert frozen and frozen[0][0] == pytest.approx(5.0, abs=0.1)


def test_a_two_second_freeze_in_a_slow_scene_is_found(
    tree: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    first, last = tree.index(12.0), tree.index(14.0) - 1
    cmd = freeze_command(ffmpeg, tree.source, tmp_path / "c.mkv", first=first, last=last)
    report = tree.match(made(tmp_path, "c.mkv", cmd))
    assert not report.clean
    assert min(abs(lo - 12.0) for _k, lo, _h in edits(report)) <= 0.5


# -- cuts, insertions, tails ---------------------------------------------------------------


@pytest.mark.parametrize("keep_cadence", [True, False], ids=["shifted", "renumbered"])
def test_a_one_second_cut_in_a_slow_scene_is_found(
    tree: Recorded, ffmpeg: str, tmp_path: Path, keep_cadence: bool
) -> None:
    cmd = cut_command(ffmpeg, tree.source, tmp_path / "c.mkv", at_s=12.0, keep_cadence=keep_cadence)
    report = tree.match(made(tmp_path, "c.mkv", cmd))
    assert not report.clean
    if keep_cadence:  # renumbering squeezes a variable-rate clip: everything moves
        assert min(abs(lo - 12.0) for _k, lo, _h in edits(report)) <= 0.75


def test_a_cut_is_the_range_removed_not_the_rest_of_the_segment(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    cmd = cut_command(ffmpeg, megamind.source, tmp_path / "c.mkv", at_s=5.0)
    report = megamind.match(made(tmp_path, "c.mkv", cmd))
    (segment,) = report.segments
    assert segment.status == "edited"
    ((lo, hi),) = segment.edited_ranges
    assert lo == pytest.approx(5.0, abs=0.2) and hi == pytest.approx(6.0, abs=0.2)
    assert hi < segment.edited_ranges[-1][1] + 1e-9 < 11.0  # not to the segment's end
    assert report.extra == ()


def test_inserted_footage_is_placed_where_it_was_inserted(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    cmd = insert_command(ffmpeg, megamind.source, tmp_path / "c.mkv", at_s=5.0, duration_s=2.0)
    report = megamind.match(made(tmp_path, "c.mkv", cmd))
    (extra,) = report.extra
    assert extra.start == pytest.approx(5.0, abs=0.1) and extra.end == pytest.approx(7.0, abs=0.1)
    assert [(k, lo) for k, lo, _h in edits(report)] == [("inserted", pytest.approx(5.0, abs=0.1))]


def test_a_lost_last_three_quarters_of_a_second_is_truncated(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    end = float(megamind.times[-1]) + 1 / 23.976
    cmd = tail_cut_command(ffmpeg, megamind.source, tmp_path / "c.mkv", keep_s=end - 0.75)
    report = megamind.match(made(tmp_path, "c.mkv", cmd))
    ((kind, lo, hi),) = edits(report)
    assert kind == "truncated"
    assert lo == pytest.approx(end - 0.75, abs=0.1) and hi == pytest.approx(end, abs=0.05)


# -- the command ---------------------------------------------------------------------------


def test_vigil_match_json_names_the_cut_in_the_shared_finding_form(
    megamind: Recorded, ffmpeg: str, tmp_path: Path
) -> None:
    cmd = cut_command(ffmpeg, megamind.source, tmp_path / "c.mkv", at_s=5.0)
    copy = made(tmp_path, "c.mkv", cmd)
    env = {**os.environ, "VIGIL_DATA_DIR": str(megamind.data_dir), "VIGIL_ACTOR": "reviewer-2"}
    done = subprocess.run(
        [*VIGIL, "-q", "match", str(copy), "--recording", megamind.rec_id, "--json"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    assert body["clean"] is False and body["exit_status"] == 1
    (segment,) = body["segments"]
    assert segment["kind"] == "edited" and segment["recording"] == megamind.rec_id
    assert set(segment) == {"kind", "recording", "index", "ranges", "detail", "file", "audio"}
    assert segment["ranges"][0][0] == pytest.approx(5.0, abs=0.2), json.dumps(segment)
    assert "content cut" in segment["detail"]
