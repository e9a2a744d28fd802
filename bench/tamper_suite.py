"""Benign copies and edits of the real sample clips, matched against their recordings.

Run from the repo root (a few minutes on 2 cores; copies are cached in --workdir):

    .venv/bin/python bench/tamper_suite.py | tee bench/results/tamper_suite.txt

For each clip of Debian's opencv-doc (vtest.avi, tree.avi, Megamind.avi) it ingests the
original with the real pipeline (folder store, SQLite), makes copies with ffmpeg (benign:
the file itself, a stream-copy remux, CRF 23 and 35, half resolution, 25 fps; edits: a box
over 8% of the picture, cuts of 1 s and 0.5 s, 3 frames dropped with and without their
timestamps, freezes of 2 s and 0.5 s, 2 s of other footage inserted, the last 0.75 s gone)
and runs ``vigil match``'s comparison on each. It prints, per copy, the verdict, where the
edit was placed against where it was made, and the distances the decision rests on; then the
margin between the worst benign copy and the mildest edit per clip (docs/forensic-precision.md
quotes it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from numpy.typing import NDArray
from vigil_verify.compare import MatchReport

from integrity.match import match_copy, references
from tests.helpers import ingest_and_process
from tests.tamper import (
    cut_command,
    drop_frames_command,
    freeze_command,
    insert_command,
    overlay_command,
    reencode_command,
    remux_command,
    resample_command,
    run,
    tail_cut_command,
)
from workers.app import Vigil, build_app
from workers.settings import Settings

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


@dataclass(frozen=True)
class Clip:
    name: str
    edit_at: float  # where edits are made (s)
    duration_s: float


CLIPS = (
    Clip("vtest.avi", 43.0, 79.5),
    Clip("tree.avi", 12.0, 29.6),
    Clip("Megamind.avi", 5.0, 11.26),
)

Maker = Callable[[str, Path, Path, float, "Frames"], list[str] | None]
"""(ffmpeg, source, output, edit time, frames) -> command, or None for the file itself."""


@dataclass(frozen=True)
class Frames:
    """The source's decoded frame times, to turn seconds into ffmpeg's frame numbers."""

    times: NDArray[np.float64]

    def index(self, at: float) -> int:
        return int((self.times < at - 1e-6).sum())

    def step(self, at: float) -> float:
        i = self.index(at)
        return float(self.times[min(i + 1, len(self.times) - 1)] - self.times[i])


@dataclass(frozen=True)
class Variant:
    name: str
    benign: bool
    make: Maker
    extent_s: float = 0.0  # how much of the original the edit touches (for the placement check)


def _variants() -> list[Variant]:
    return [
        Variant("self", True, lambda f, s, o, at, fr: None),
        Variant("remux", True, lambda f, s, o, at, fr: remux_command(f, s, o)),
        Variant("crf23", True, lambda f, s, o, at, fr: reencode_command(f, s, o, crf=23)),
        Variant("crf35", True, lambda f, s, o, at, fr: reencode_command(f, s, o, crf=35)),
        Variant(
            "half-res", True, lambda f, s, o, at, fr: reencode_command(f, s, o, crf=23, scale=0.5)
        ),
        Variant("25fps", True, lambda f, s, o, at, fr: resample_command(f, s, o, fps=25)),
        Variant(
            "box-2s",
            False,
            lambda f, s, o, at, fr: overlay_command(f, s, o, start_s=at, duration_s=2.0),
            2.0,
        ),
        Variant(
            "cut-1s",
            False,
            lambda f, s, o, at, fr: cut_command(f, s, o, at_s=at, keep_cadence=True),
            1.0,
        ),
        Variant(
            "cut-0.5s",
            False,
            lambda f, s, o, at, fr: cut_command(
                f, s, o, at_s=at, duration_s=0.5, keep_cadence=True
            ),
            0.5,
        ),
        Variant(
            "drop-3",
            False,
            lambda f, s, o, at, fr: drop_frames_command(
                f, s, o, first=fr.index(at), frames=3, shift_s=3 * fr.step(at), retime=True
            ),
            0.1,
        ),
        Variant(
            "drop-3-hole",
            False,
            lambda f, s, o, at, fr: drop_frames_command(
                f, s, o, first=fr.index(at), frames=3, shift_s=0.0, retime=False
            ),
            0.1,
        ),
        Variant(
            "freeze-2s",
            False,
            lambda f, s, o, at, fr: freeze_command(
                f, s, o, first=fr.index(at), last=fr.index(at + 2.0) - 1
            ),
            2.0,
        ),
        Variant(
            "freeze-0.5s",
            False,
            lambda f, s, o, at, fr: freeze_command(
                f, s, o, first=fr.index(at), last=fr.index(at + 0.5) - 1
            ),
            0.5,
        ),
        Variant(
            "insert-2s",
            False,
            lambda f, s, o, at, fr: insert_command(f, s, o, at_s=at, duration_s=2.0),
            0.0,
        ),
        Variant("tail-0.75s", False, lambda f, s, o, at, fr: tail_cut_command(f, s, o, keep_s=at)),
    ]


PLACEMENT_S = 0.5
"""An edit counts as located when a reported change starts within this of where it was made."""


def placed(report: MatchReport, at: float) -> float:
    """Seconds between ``at`` and the nearest start of a reported change."""
    starts = [e.start for v in report.segments for e in v.edits]
    starts += [e.start for e in report.extra]
    return min((abs(x - at) for x in starts), default=float("inf"))


def describe(report: MatchReport) -> str:
    parts = []
    for v in report.segments:
        if v.status != "same":
            where = ",".join(f"{e.kind}:{e.start:.2f}-{e.end:.2f}" for e in v.edits)
            parts.append(f"seg{v.index}:{v.status}[{where}] T={v.threshold_bits:.1f}")
    for e in report.extra:
        parts.append(f"inserted@{e.start:.2f}-{e.end:.2f}")
    return " ".join(parts) or "-"


def run_clip(app: Vigil, clip: Clip, workdir: Path, ffmpeg: str) -> list[str]:
    source = OPENCV_DATA / clip.name
    rec_id = ingest_and_process(app, source)
    times = np.concatenate([r.frames.times for r in references(app.catalog, rec_id)])
    lines = []
    for variant in _variants():
        out = workdir / f"{Path(clip.name).stem}-{variant.name}.mkv"
        at = clip.duration_s - 0.75 if variant.name.startswith("tail") else clip.edit_at
        frames = Frames(times)
        if variant.name.startswith("freeze") and (
            frames.index(at + variant.extent_s) - frames.index(at) < 2
        ):
            print(f"{clip.name:<13} {variant.name:<12} n/a: fewer than 2 pictures to freeze")
            continue
        cmd = variant.make(ffmpeg, source, out, at, frames)
        if cmd is None:
            out = source
        elif not out.exists():
            run(cmd)
        report = match_copy(app.catalog, app.tools, rec_id, out, actor="bench")
        worst = max((v.max_window_bits for v in report.segments), default=0.0)
        verdict = "same" if report.clean else "DIFFERS"
        ok = (verdict == "same") == variant.benign
        if ok and not variant.benign and placed(report, at) > PLACEMENT_S:
            ok = False
        lines.append(
            f"{clip.name:<13} {variant.name:<12} {'benign' if variant.benign else 'edit':<6}"
            f" {verdict:<7} {'ok' if ok else 'WRONG':<5} worst-window {worst:5.1f}"
            f" placed {'-' if variant.benign else f'{placed(report, at):.2f}':>5}"
            f"  {describe(report)}"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vigil-tamper"
    )
    parser.add_argument("--clip", action="append", help="only this clip (repeatable)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    for clip in CLIPS:
        if args.clip and clip.name not in args.clip:
            continue
        with tempfile.TemporaryDirectory() as data:
            app = build_app(Settings(data_dir=Path(data) / "vigil"))
            try:
                run_clip(app, clip, args.workdir, ffmpeg)
            finally:
                app.stop()


if __name__ == "__main__":
    main()
