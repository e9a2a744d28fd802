"""cProfile of each of Vigil's three paths (custody, dense index, transcode), one Stats per path.

Run from the repo root (under a minute):

    /tmp/venvtest/bin/python bench/profile_paths.py                       # this tree -> after
    /tmp/venvtest/bin/python bench/profile_paths.py --repo /tmp/vigil-before \\
        --out bench/results/profile-before.txt                            # an older worktree

``--repo`` is the tree Vigil is imported from (put first on ``sys.path``), so the same script
profiles an older commit checked out with ``git worktree add``. On embedded defaults (fresh
temporary data dir, local folder store, SQLite, in-process bus) it ingests two cached
``transcode.samples`` clips and drains the pipeline with ``app.run_pipeline()``:

- ``h264``: the 20 s 720p30 H.264/AAC clip of ``bench/pipeline.py --quick`` (playable: no proxy);
- ``mpeg4``: a 10 s 720p30 MPEG-4 Part 2 / PCM AVI clip (not playable: a review proxy is made).

Each handler is wrapped (on its class, before the bus calls it) so that a ``cProfile.Profile``
per path is enabled only while that path's handlers run:

- custody: ``IngestService.ingest_file`` + ``SegmentStage.__call__``
- dense: ``PerceptualStage.__call__``
- transcode: ``TranscodeStage.__call__`` where it exists. In older code (no TranscodeStage) the
  proxy is made inside ``SegmentStage`` while segmenting, so there the transcode profile is the
  custody handlers on the mpeg4 clip.
- keyframes: ``workers.stages.keyframe_hashes`` where the custody stage calls it, profiled on
  the thread that runs it (the custody handler may run it on a pool thread beside the cut; a
  profiler sees only the thread that enabled it).

Time spent waiting for ffmpeg shows as the wait (``select``/``read``/``wait``); the ffmpeg CPU
is in the summary's "ffmpeg CPU" column.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import hashlib
import io
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
RESULTS = ROOT / "bench" / "results"
SEGMENT_S = 10.0
PHASH_FPS = 10.0

# Keyword arguments of transcode.samples.SampleSpec; the H.264 one is bench/pipeline.py's
# QUICK_SPEC and the mpeg4 one its quick transcode clip, so both scripts share the cache.
H264_SPEC: dict[str, Any] = {
    "duration_s": 20.0, "width": 1280, "height": 720, "fps": 30, "video_bitrate": "4M",
    "seed": 11,
}  # fmt: skip
MPEG4_SPEC: dict[str, Any] = {
    "duration_s": 10.0, "width": 1280, "height": 720, "fps": 30, "video_bitrate": "4M",
    "codec": "mpeg4", "container": "avi", "seed": 11,
}  # fmt: skip
PATHS = ("custody", "keyframes", "dense", "transcode")


@dataclass
class PathProfile:
    """One path's profiler and its accumulated wall/CPU time."""

    profiler: cProfile.Profile = field(default_factory=cProfile.Profile)
    thread_only: bool = False  # CPU of this thread only (it runs beside another path)
    wall_s: float = 0.0
    cpu_py_s: float = 0.0
    cpu_ffmpeg_s: float = 0.0
    calls: int = 0


class Profiles:
    """The profiles of one clip's run; one profiled call at a time per thread."""

    def __init__(self) -> None:
        self.paths: dict[str, PathProfile] = {}
        self.local = threading.local()

    @contextlib.contextmanager
    def around(self, path: str, *, thread_only: bool = False) -> Iterator[None]:
        if getattr(self.local, "active", False):  # nested in another profiled call
            yield
            return
        entry = self.paths.setdefault(path, PathProfile(thread_only=thread_only))
        who = resource.RUSAGE_THREAD if thread_only else resource.RUSAGE_SELF
        self.local.active = True
        me = resource.getrusage(who)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        entry.profiler.enable()
        try:
            yield
        finally:
            entry.profiler.disable()
            entry.wall_s += time.perf_counter() - wall
            me2 = resource.getrusage(who)
            kids2 = resource.getrusage(resource.RUSAGE_CHILDREN)
            entry.cpu_py_s += me2.ru_utime + me2.ru_stime - me.ru_utime - me.ru_stime
            entry.cpu_ffmpeg_s += max(
                0.0, kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime
            )
            entry.calls += 1
            self.local.active = False


CURRENT: list[Profiles] = []  # the clip being run (the wrappers are installed once)


def wrap(owner: object, name: str, path: str, *, thread_only: bool = False) -> bool:
    original: Callable[..., Any] | None = getattr(owner, name, None)
    if original is None:
        return False

    @functools.wraps(original)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        with CURRENT[-1].around(path, thread_only=thread_only):
            return original(*args, **kwargs)

    setattr(owner, name, profiled)
    return True


def spec_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def cached_clip(ffmpeg: str, prefix: str, kwargs: dict[str, Any]) -> Path:
    from transcode.samples import SampleSpec, find_font, make_sample

    spec = SampleSpec(**kwargs)
    suffix = {"mkv": "mkv", "avi": "avi", "ts": "ts"}.get(spec.container, "mp4")
    out = CACHE / f"{prefix}-{spec_digest(spec)}.{suffix}"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"  rendering {out.name} ...", file=sys.stderr, flush=True)
        partial = out.with_name(f".{out.name}.partial{out.suffix}")
        make_sample(ffmpeg, spec, partial, timeout_s=1800.0, font=find_font())
        partial.replace(out)
    return out


@dataclass
class ClipRun:
    label: str
    clip: Path
    duration_s: float
    profiles: Profiles
    status: str
    segments: int
    total_wall_s: float


def run_clip(label: str, clip: Path, duration_s: float, work: Path, ffmpeg: str) -> ClipRun:
    from ingest.service import RecordingMetadata
    from workers.app import build_app
    from workers.settings import Settings

    profiles = Profiles()
    CURRENT.append(profiles)
    data_dir = work / f"data-{label}"
    settings = Settings(
        data_dir=data_dir, segment_seconds=SEGMENT_S, phash_fps=PHASH_FPS, ffmpeg=ffmpeg
    )
    app = build_app(settings)
    meta = RecordingMetadata(
        device_id="PROFILE-01",
        officer_id="000001",
        device_start=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        original_name=clip.name,
    )
    try:
        started = time.perf_counter()
        ingested = app.ingest.ingest_file(clip, meta, actor="bench")
        app.run_pipeline()
        total = time.perf_counter() - started
        recording = app.catalog.recording(ingested.recording_id)
        segments = len(app.catalog.segments(recording.id))
    finally:
        app.stop()
        CURRENT.pop()
    return ClipRun(label, clip, duration_s, profiles, recording.status, segments, total)


def stats_text(profiler: cProfile.Profile, cumulative: int = 20, own: int = 15) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"top {cumulative} by cumulative time:\n")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(cumulative)
    out.write(f"top {own} by own time:\n")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(own)
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    return [line for line in lines if not line.lstrip().startswith("Ordered by")]


def git_line(repo: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    changed = len(git("status", "--porcelain", "--untracked-files=no").splitlines())
    head = git("log", "-1", "--format=%h %s") or "unknown"
    return f"{head[:100]}" + (f" (+{changed} modified tracked files)" if changed else "")


def report(repo: Path, runs: list[ClipRun], hooks: dict[str, bool]) -> list[str]:
    load = os.getloadavg()
    lines = [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"repo: {repo}: {git_line(repo)}",
        f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "handlers wrapped: "
        + ", ".join(f"{name}{'' if ok else ' (absent)'}" for name, ok in hooks.items()),
        "each profile sees only the thread that ran the wrapped call;"
        " cProfile inflates Python-heavy calls",
        "",
        f"{'clip':<6} {'path':<10} {'wall s':>7} {'py CPU s':>8} {'ffmpeg CPU s':>12}"
        f" {'calls':>5}  (clip s, status, segments, total wall s)",
    ]
    for run in runs:
        for path in PATHS:
            entry = run.profiles.paths.get(path)
            if entry is None:
                continue
            ffmpeg_cpu = "-" if entry.thread_only else f"{entry.cpu_ffmpeg_s:.2f}"
            lines.append(
                f"{run.label:<6} {path:<10} {entry.wall_s:7.2f} {entry.cpu_py_s:8.2f}"
                f" {ffmpeg_cpu:>12} {entry.calls:5d}  ({run.duration_s:.0f} s,"
                f" {run.status}, {run.segments}, {run.total_wall_s:.2f})"
            )
    by_label = {run.label: run for run in runs}
    h264, mpeg4 = by_label["h264"], by_label["mpeg4"]
    sections: list[tuple[str, PathProfile | None]] = [
        ("custody: ingest_file + SegmentStage, h264 clip", h264.profiles.paths.get("custody")),
    ]
    if hooks.get("keyframe_hashes"):
        sections.append(
            (
                "custody: keyframe_hashes, on the thread that runs it (py CPU: that thread), h264"
                " clip",
                h264.profiles.paths.get("keyframes"),
            )
        )
    sections.append(("dense: PerceptualStage, h264 clip", h264.profiles.paths.get("dense")))
    if hooks.get("TranscodeStage.__call__"):
        sections.append(
            ("transcode: TranscodeStage, mpeg4 clip", mpeg4.profiles.paths.get("transcode"))
        )
    else:
        sections.append(
            (
                "transcode: no TranscodeStage in this code; the proxy is made inside SegmentStage:"
                " ingest_file + SegmentStage, mpeg4 clip",
                mpeg4.profiles.paths.get("custody"),
            )
        )
    for title, entry in sections:
        lines += ["", "=" * 100, title]
        if entry is None:
            lines.append("  (never called)")
            continue
        ffmpeg_cpu = "-" if entry.thread_only else f"{entry.cpu_ffmpeg_s:.2f} s"
        lines.append(
            f"wall {entry.wall_s:.2f} s, py CPU {entry.cpu_py_s:.2f} s, ffmpeg CPU {ffmpeg_cpu},"
            f" {entry.calls} calls"
        )
        lines += stats_text(entry.profiler)
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo", type=Path, default=ROOT, help="the Vigil tree to import (default: this one)"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "profile-after.txt", help="where to write it"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    sys.path.insert(0, str(repo))
    import ingest.service
    import workers.stages
    from transcode.ffmpeg import find_ffmpeg

    loaded = Path(workers.stages.__file__).resolve()
    if not loaded.is_relative_to(repo):
        raise SystemExit(f"workers.stages came from {loaded}, not from {repo}")
    stages = workers.stages
    hooks = {
        "IngestService.ingest_file": wrap(ingest.service.IngestService, "ingest_file", "custody"),
        "SegmentStage.__call__": wrap(stages.SegmentStage, "__call__", "custody"),
        "PerceptualStage.__call__": wrap(stages.PerceptualStage, "__call__", "dense"),
    }
    transcode_stage = getattr(stages, "TranscodeStage", None)
    hooks["TranscodeStage.__call__"] = transcode_stage is not None and wrap(
        transcode_stage, "__call__", "transcode"
    )
    hooks["keyframe_hashes"] = wrap(stages, "keyframe_hashes", "keyframes", thread_only=True)
    ffmpeg = find_ffmpeg()
    clips = [
        ("h264", cached_clip(ffmpeg, "quick", H264_SPEC), H264_SPEC["duration_s"]),
        ("mpeg4", cached_clip(ffmpeg, "transcode-quick", MPEG4_SPEC), MPEG4_SPEC["duration_s"]),
    ]
    work = Path(tempfile.mkdtemp(prefix="vigil-profile-"))
    try:
        runs = []
        for label, clip, duration in clips:
            print(f"  profiling {label}: {clip.name} ...", file=sys.stderr, flush=True)
            runs.append(run_clip(label, clip, duration, work, ffmpeg))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(report(repo, runs, hooks)) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
