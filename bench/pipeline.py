"""Vigil's whole pipeline against the raw tools doing the same work, on one body-cam-like clip.

Run from the repo root:

    /tmp/venvtest/bin/python bench/pipeline.py [--quick] [--clip PATH] [--work DIR]
        [--rounds N] [--no-profile]

Full mode uses a 5-minute 1080p30 H.264/AAC clip (1 s GOP, ~6 Mbps), rendered once with
``transcode.samples`` as 60 s and concatenated five times with stream copy (cached under
``.cache/bench/``); ``--quick`` uses a 20 s 720p clip. Each measured part runs in a fresh
Python subprocess (this file with ``--part``), so its peak RSS is its own; the part reports
the Python process (RUSAGE_SELF) and its ffmpeg children separately: their CPU from
RUSAGE_CHILDREN, their peak RSS from /proc/<pid>/status VmHWM sampled every 10 ms (the
children's ru_maxrss is useless here: a child forked from a Python process of N MiB reports at
least N MiB, because Linux records the parent's high-water mark when the child execs ffmpeg).

Parts:
  floor: copy       copy of the original + fsync (the floor of storing it)
  floor: sha256 original / segments   hashlib, 1 MiB chunks
  floor: segment    ffmpeg -c copy -f segment -segment_time 10 -segment_format mpegts
  floor: decode     ffmpeg -vf fps=10,scale=64:64:flags=area,format=gray -f rawvideo -> /dev/null
  vigil             build_app on embedded defaults (fresh data dir), ingest_file + run_pipeline,
                    with a per-stage breakdown from timing wrappers around the stage handlers
  vigil (cProfile)  the same once more under cProfile (not timed against the floor)

The floor parts and the Vigil run are repeated in interleaved rounds (default 3 quick, 2 full)
and each part reports its fastest round, to damp other load on the machine (the load average is
printed per part). The output is also written to ``bench/results/pipeline-<quick|full>.txt``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import hashlib
import io
import json
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.machine import command_output, cpu_model  # noqa: E402
from transcode.ffmpeg import ProcessRunner, find_ffmpeg  # noqa: E402
from transcode.probe import ProbeResult, Track, probe  # noqa: E402
from transcode.samples import SampleSpec, find_font, make_sample  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
RESULTS = ROOT / "bench" / "results"
CHUNK = 1 << 20
SEGMENT_S = 10.0
PHASH_FPS = 10.0
MIB = 1024.0  # ru_maxrss is in KiB on Linux

# Body-cam-like footage: 1 s GOP, H.264 high, AAC mono 48 kHz.
FULL_CHUNK = SampleSpec(
    duration_s=60.0, width=1920, height=1080, fps=30, video_bitrate="6M", seed=11
)
FULL_REPEATS = 5  # 5 x 60 s = 5 minutes
QUICK_SPEC = SampleSpec(
    duration_s=20.0, width=1280, height=720, fps=30, video_bitrate="4M", seed=11
)
RENDER_TIMEOUT_S = 1800.0

FLOOR_PARTS = ("floor-copy", "floor-sha256-original", "floor-segment", "floor-sha256-segments")
DECODE_PART = "floor-decode"
VIGIL_PART = "vigil"
PROFILE_PART = "vigil-profile"
PART_TITLES = {
    "floor-copy": "floor: copy original + fsync",
    "floor-sha256-original": "floor: sha256 original",
    "floor-segment": "floor: ffmpeg segment (copy)",
    "floor-sha256-segments": "floor: sha256 segments",
    "floor-decode": "floor: decode 64x64 gray 10 fps",
    "vigil": "vigil: ingest + run_pipeline",
    "vigil-profile": "vigil under cProfile",
}


# --------------------------------------------------------------------------- data


@dataclass
class StageTime:
    """Time spent inside one instrumented function (outermost calls only)."""

    label: str
    wall_s: float = 0.0
    cpu_self_s: float = 0.0
    cpu_children_s: float = 0.0
    calls: int = 0


@dataclass(frozen=True)
class PipelineFacts:
    """What the Vigil run produced, to check it did the whole job."""

    status: str
    sha256: str
    segments: int
    frames_hashed: int
    setup_s: float  # build_app: folders, SQLite, migrations (not in the timed wall)
    ingest_s: float
    run_pipeline_s: float
    hooks_missing: tuple[str, ...]


@dataclass
class PartResult:
    """One measured part, measured inside its own subprocess."""

    name: str
    wall_s: float
    cpu_self_s: float
    cpu_children_s: float
    maxrss_self_kib: int
    maxrss_children_kib: int  # largest ffmpeg child, sampled (see ChildRssSampler)
    load_before: float = 0.0
    load_after: float = 0.0
    output_files: int = 0
    sha256: str = ""
    stages: list[StageTime] = field(default_factory=list)
    pipeline: PipelineFacts | None = None
    profile: str = ""
    round_walls: list[float] = field(default_factory=list)  # filled in by the parent

    @property
    def cpu_s(self) -> float:
        return self.cpu_self_s + self.cpu_children_s

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PartResult:
        raw = json.loads(text)
        stages = [StageTime(**s) for s in raw.pop("stages")]
        facts = raw.pop("pipeline")
        pipeline = None
        if facts is not None:
            facts["hooks_missing"] = tuple(facts["hooks_missing"])
            pipeline = PipelineFacts(**facts)
        return cls(**raw, stages=stages, pipeline=pipeline)


@dataclass(frozen=True)
class Clip:
    path: Path
    duration_s: float
    width: int
    height: int
    fps: float
    size: int
    video_codec: str
    audio_codec: str | None
    keyframe_interval_s: float
    bitrate_mbps: float


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Usage:
    wall: float
    cpu_self: float
    cpu_children: float

    @classmethod
    def now(cls) -> Usage:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(time.perf_counter(), me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime)


class ChildRssSampler(threading.Thread):
    """Polls the peak RSS (VmHWM) of this process's ffmpeg children while they run."""

    def __init__(self, interval_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            for pid in self._children():
                self.peak_kib = max(self.peak_kib, self._ffmpeg_hwm_kib(pid))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_kib

    @staticmethod
    def _children() -> list[str]:
        pids: list[str] = []
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                pids += (task / "children").read_text().split()
        return pids

    @staticmethod
    def _ffmpeg_hwm_kib(pid: str) -> int:
        name, hwm = "", 0
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return hwm if name == "ffmpeg" else 0  # not yet exec'd: still the Python image


@contextlib.contextmanager
def measured(name: str) -> Iterator[PartResult]:
    """Measure the block; the yielded result is filled in when the block ends."""
    result = PartResult(name, 0.0, 0.0, 0.0, 0, 0, load_before=os.getloadavg()[0])
    sampler = ChildRssSampler()
    sampler.start()
    start = Usage.now()
    try:
        yield result
    finally:
        end = Usage.now()
        result.maxrss_children_kib = sampler.stop()
    result.wall_s = end.wall - start.wall
    result.cpu_self_s = end.cpu_self - start.cpu_self
    result.cpu_children_s = end.cpu_children - start.cpu_children
    result.maxrss_self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.load_after = os.getloadavg()[0]


class StageClock:
    """Accumulates wall and CPU time per label; a label nested in itself counts once."""

    def __init__(self) -> None:
        self.stages: dict[str, StageTime] = {}
        self._depth: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def measure(self, label: str, *, light: bool = False) -> Iterator[None]:
        stage = self.stages.setdefault(label, StageTime(label))
        if self._depth[label]:
            yield
            return
        self._depth[label] += 1
        try:
            if light:  # per-frame calls: cheap clocks only (this thread's CPU, no children)
                wall, cpu = time.perf_counter(), time.thread_time()
                yield
                stage.wall_s += time.perf_counter() - wall
                stage.cpu_self_s += time.thread_time() - cpu
            else:
                start = Usage.now()
                yield
                end = Usage.now()
                stage.wall_s += end.wall - start.wall
                stage.cpu_self_s += end.cpu_self - start.cpu_self
                stage.cpu_children_s += end.cpu_children - start.cpu_children
            stage.calls += 1
        finally:
            self._depth[label] -= 1


Label = str | Callable[[tuple[object, ...], dict[str, object]], str]


def instrument(
    owner: object, name: str, label: Label, clock: StageClock, *, light: bool = False
) -> bool:
    """Replace ``owner.name`` by a timed wrapper; False if there is no such attribute."""
    original = getattr(owner, name, None)
    if original is None or not callable(original):
        return False

    @functools.wraps(original)
    def timed(*args: object, **kwargs: object) -> object:
        text = label if isinstance(label, str) else label(args, kwargs)
        with clock.measure(text, light=light):
            return original(*args, **kwargs)

    setattr(owner, name, timed)
    return True


def _bucket_label(args: tuple[object, ...], kwargs: dict[str, object]) -> str:
    bucket = args[1] if len(args) > 1 else kwargs.get("bucket")
    return f"store.put_file {bucket}"


# Labels of the stage breakdown, in print order, with their indent.
BREAKDOWN: tuple[tuple[str, int], ...] = (
    ("ingest_file", 0),
    ("stage-in: read + sha256 + write + fsync", 1),
    ("sniff (ffmpeg)", 1),
    ("store.put_file originals", 1),
    ("run_pipeline", 0),
    ("SegmentStage", 1),
    ("probe original (ffmpeg framecrc + parse)", 2),
    ("segment_file (ffmpeg cut + probe segments)", 2),
    ("probe each segment (ffmpeg framecrc + parse)", 3),
    ("sha256 of segments + playlist", 2),
    ("store.put_file derived", 2),
    ("PerceptualStage", 1),
    ("segment_hashes (ffmpeg decode + PDQ)", 2),
    ("PDQ, numpy batches (this thread)", 3),
    ("FinaliseStage", 1),
    ("framecrc parse, Python (all probes)", 0),
    ("catalogue, SQLAlchemy/SQLite (all calls)", 0),
)


def install_hooks(clock: StageClock) -> list[str]:
    """Wrap the functions the breakdown times; return the hooks that could not be installed."""
    import catalog.repository
    import ingest.service
    import ingest.store
    import integrity.phash
    import transcode.probe
    import transcode.segmenter
    import workers.stages

    stages = workers.stages
    hooks: list[tuple[object, str, Label, bool]] = [
        (ingest.service.IngestService, "ingest_file", "ingest_file", False),
        (ingest.service.IngestService, "_stage", "stage-in: read + sha256 + write + fsync", False),
        (ingest.service, "sniff", "sniff (ffmpeg)", False),
        (ingest.store.LocalFolderStore, "put_file", _bucket_label, False),
        (stages.SegmentStage, "__call__", "SegmentStage", False),
        (stages, "probe", "probe original (ffmpeg framecrc + parse)", False),
        (stages, "segment_file", "segment_file (ffmpeg cut + probe segments)", False),
        (transcode.segmenter, "probe", "probe each segment (ffmpeg framecrc + parse)", False),
        (stages, "sha256_file", "sha256 of segments + playlist", False),
        (stages.PerceptualStage, "__call__", "PerceptualStage", False),
        (stages, "segment_hashes", "segment_hashes (ffmpeg decode + PDQ)", False),
        (integrity.phash, "pdq_hashes", "PDQ, numpy batches (this thread)", True),
        (stages.FinaliseStage, "__call__", "FinaliseStage", False),
        (transcode.probe, "parse_framecrc", "framecrc parse, Python (all probes)", False),
    ]
    catalogue = "catalogue, SQLAlchemy/SQLite (all calls)"
    repo = catalog.repository.Catalog
    for name, value in vars(repo).items():
        if callable(value) and not name.startswith("_") and name not in ("session", "migrate"):
            hooks.append((repo, name, catalogue, False))
    missing: list[str] = []
    for owner, name, label, light in hooks:
        if not instrument(owner, name, label, clock, light=light):
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
    return missing


# --------------------------------------------------------------------------- the parts


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def run_quiet(cmd: Sequence[str], *, stdout: int | None = subprocess.DEVNULL) -> None:
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=stdout)


def segment_dir(work: Path) -> Path:
    return work / "floor-segments"


def part_copy(clip: Path, work: Path) -> PartResult:
    target = work / f"copy{clip.suffix}"
    target.unlink(missing_ok=True)
    with measured("floor-copy") as result:
        shutil.copyfile(clip, target)
        with target.open("rb+") as fh:
            os.fsync(fh.fileno())
    result.output_files = 1
    return result


def part_sha256_original(clip: Path) -> PartResult:
    with measured("floor-sha256-original") as result:
        result.sha256 = sha256_file(clip)
    return result


def part_segment(ffmpeg: str, clip: Path, work: Path) -> PartResult:
    out = segment_dir(work)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(clip),
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
        "-f", "segment", "-segment_time", f"{SEGMENT_S:g}", "-segment_format", "mpegts",
        str(out / "seg-%05d.ts"),
    ]  # fmt: skip
    with measured("floor-segment") as result:
        run_quiet(cmd)
    result.output_files = len(list(out.glob("seg-*.ts")))
    return result


def part_sha256_segments(work: Path) -> PartResult:
    files = sorted(segment_dir(work).glob("seg-*.ts"))
    with measured("floor-sha256-segments") as result:
        digests = [sha256_file(path) for path in files]
    result.output_files = len(digests)
    return result


def part_decode(ffmpeg: str, clip: Path) -> PartResult:
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(clip),
        "-vf", f"fps={PHASH_FPS:g},scale=64:64:flags=area,format=gray", "-f", "rawvideo", "-",
    ]  # fmt: skip
    with measured(DECODE_PART) as result:
        run_quiet(cmd)
    return result


def part_vigil(clip: Path, work: Path, *, profile: bool) -> PartResult:
    from ingest.service import RecordingMetadata
    from workers.app import build_app
    from workers.settings import Settings

    clock = StageClock()
    missing = [] if profile else install_hooks(clock)
    data_dir = work / ("vigil-data-profile" if profile else "vigil-data")
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(
        data_dir=data_dir, segment_seconds=SEGMENT_S, phash_fps=PHASH_FPS, ffmpeg=find_ffmpeg()
    )
    setup = time.perf_counter()
    app = build_app(settings)
    setup_s = time.perf_counter() - setup
    meta = RecordingMetadata(
        device_id="BENCH-01",
        officer_id="000001",
        device_start=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        original_name=clip.name,
    )
    profiler = cProfile.Profile() if profile else None
    try:
        with measured(PROFILE_PART if profile else VIGIL_PART) as result:
            if profiler is not None:
                profiler.enable()
            ingest_start = time.perf_counter()
            ingested = app.ingest.ingest_file(clip, meta, actor="bench")
            pipeline_start = time.perf_counter()
            app.run_pipeline()
            pipeline_end = time.perf_counter()
            if profiler is not None:
                profiler.disable()
        recording = app.catalog.recording(ingested.recording_id)
        segments = app.catalog.segments(recording.id)
    finally:
        app.stop()
    result.stages = list(clock.stages.values())
    result.stages.append(StageTime("ingest_file", pipeline_start - ingest_start, calls=1))
    result.stages.append(StageTime("run_pipeline", pipeline_end - pipeline_start, calls=1))
    result.sha256 = recording.sha256
    result.output_files = len(segments)
    result.pipeline = PipelineFacts(
        status=recording.status,
        sha256=recording.sha256,
        segments=len(segments),
        frames_hashed=sum(s.phash_frames or 0 for s in segments),
        setup_s=setup_s,
        ingest_s=pipeline_start - ingest_start,
        run_pipeline_s=pipeline_end - pipeline_start,
        hooks_missing=tuple(missing),
    )
    if profiler is not None:
        result.profile = profile_text(profiler)
    return result


def profile_text(profiler: cProfile.Profile) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write("top 15 by cumulative time (main thread):\n")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(15)
    out.write("top 10 by own time (main thread):\n")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(10)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    return "\n".join(line for line in lines if not line.lstrip().startswith("Ordered by"))


def run_part(name: str, clip: Path, work: Path) -> PartResult:
    ffmpeg = find_ffmpeg()
    if name == "floor-copy":
        return part_copy(clip, work)
    if name == "floor-sha256-original":
        return part_sha256_original(clip)
    if name == "floor-segment":
        return part_segment(ffmpeg, clip, work)
    if name == "floor-sha256-segments":
        return part_sha256_segments(work)
    if name == DECODE_PART:
        return part_decode(ffmpeg, clip)
    if name in (VIGIL_PART, PROFILE_PART):
        return part_vigil(clip, work, profile=name == PROFILE_PART)
    raise SystemExit(f"unknown part {name!r}")


def spawn_part(name: str, clip: Path, work: Path) -> PartResult:
    """Run one part in a fresh interpreter, so that its peak RSS is its own."""
    print(f"  running {name} ...", file=sys.stderr, flush=True)
    result_file = work / f"{name}.json"
    result_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--part", name,
        "--clip", str(clip), "--work", str(work), "--result", str(result_file),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    return PartResult.from_json(result_file.read_text())


# --------------------------------------------------------------------------- the clip


def spec_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def render(ffmpeg: str, spec: SampleSpec, out: Path) -> Path:
    if not out.exists():
        print(f"  rendering {out.name} ({spec.duration_s:g} s {spec.width}x{spec.height}) ...",
              file=sys.stderr, flush=True)  # fmt: skip
        started = time.perf_counter()
        make_sample(ffmpeg, spec, out, timeout_s=RENDER_TIMEOUT_S, font=find_font())
        print(f"  rendered in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def concatenate(ffmpeg: str, chunk: Path, repeats: int, out: Path) -> Path:
    """``repeats`` copies of ``chunk`` end to end: video by stream copy (concat demuxer).

    Each AAC chunk starts with encoder priming that overlaps the previous chunk's end, so the
    audio is re-encoded on a continuous sample count (``asetpts=N/SR/TB``, cheap); the video
    packets are the rendered ones, untouched, and their timestamps carry straight on.
    """
    if out.exists():
        return out
    print(f"  concatenating {repeats} x {chunk.name} ...", file=sys.stderr, flush=True)
    listing = out.with_suffix(".txt")
    quoted = str(chunk).replace("'", "'\\''")
    listing.write_text(f"file '{quoted}'\n" * repeats)
    partial = out.with_name(f".{out.name}.partial")
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "concat", "-safe", "0", "-i", str(listing),
        "-map", "0:v:0", "-map", "0:a:0", "-c:v", "copy",
        "-af", "asetpts=N/SR/TB", "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "1",
        "-movflags", "+faststart", "-f", "mp4", str(partial),
    ]  # fmt: skip
    try:
        run_quiet(cmd)
    except subprocess.CalledProcessError:
        partial.unlink(missing_ok=True)
        raise
    listing.unlink()
    partial.replace(out)
    return out


def timestamp_gaps(track: Track, tolerance_frames: float = 1.5) -> list[tuple[float, float]]:
    """Holes in a track's timeline longer than ``tolerance_frames`` frames: (end, next start)."""
    if track.count < 2:
        return []
    order = np.argsort(track.pts, kind="stable")
    pts = track.pts[order]
    ends = pts + np.maximum(track.duration[order], 0)
    tb = float(track.stream.time_base)
    gaps = (pts[1:] - ends[:-1]).astype(np.float64) * tb
    where = np.nonzero(gaps > tolerance_frames * track.frame_duration_s)[0]
    return [(float(ends[i] * tb), float(pts[i + 1] * tb)) for i in where]


def check_continuous(probed: ProbeResult, *, expected_frames: int | None, gop_s: float) -> None:
    """Raise if the clip has holes in its timestamps or a missing frame."""
    video, audio = probed.video, probed.audio
    assert video is not None
    problems: list[str] = []
    if gaps := timestamp_gaps(video):
        problems.append(f"video timestamp gaps {gaps}")
    if audio is not None and (gaps := timestamp_gaps(audio)):
        problems.append(f"audio timestamp gaps {gaps}")
    if expected_frames is not None and video.count != expected_frames:
        problems.append(f"{video.count} video frames, expected {expected_frames}")
    keys = video.keyframe_times()
    if keys.size > 1 and float(max(keys[1:] - keys[:-1])) > gop_s + 1.5 / video.fps:
        problems.append(f"a keyframe interval is {float(max(keys[1:] - keys[:-1])):.3f} s")
    if probed.complaints or probed.exit_code:
        problems.append(f"damaged: {probed.describe_damage()}")
    if problems:
        raise SystemExit(f"{probed.container} clip is not continuous: " + "; ".join(problems))


def prepare_clip(ffmpeg: str, quick: bool) -> tuple[Path, int | None, float]:
    """The cached benchmark clip (rendered on first use): path, frame count, GOP seconds."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if quick:
        spec = QUICK_SPEC
        path = render(ffmpeg, spec, CACHE / f"quick-{spec_digest(spec)}.mp4")
        return path, round(spec.duration_s * spec.fps), spec.gop_s
    spec = FULL_CHUNK
    chunk = render(ffmpeg, spec, CACHE / f"chunk-{spec_digest(spec)}.mp4")
    full = concatenate(
        ffmpeg, chunk, FULL_REPEATS, CACHE / f"full-{spec_digest(spec, FULL_REPEATS)}.mp4"
    )
    return full, round(spec.duration_s * spec.fps) * FULL_REPEATS, spec.gop_s


def describe_clip(path: Path, probed: ProbeResult) -> Clip:
    video = probed.video
    assert video is not None
    duration = video.end_s - video.start_s
    keys = video.keyframe_times()
    gop = float((keys[-1] - keys[0]) / (keys.size - 1)) if keys.size > 1 else duration
    size = path.stat().st_size
    return Clip(
        path=path,
        duration_s=duration,
        width=video.stream.width or 0,
        height=video.stream.height or 0,
        fps=video.fps,
        size=size,
        video_codec=video.stream.codec,
        audio_codec=probed.audio.stream.codec if probed.audio else None,
        keyframe_interval_s=gop,
        bitrate_mbps=size * 8 / duration / 1e6,
    )


# --------------------------------------------------------------------------- report


def environment_lines(ffmpeg: str) -> list[str]:
    commit = command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    changed = len(dirty.splitlines()) if dirty != "unknown" else 0
    ffmpeg_version = command_output([ffmpeg, "-hide_banner", "-version"]).splitlines()[0]
    load = os.getloadavg()
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"git commit: {commit}"
        + (f" (+{changed} modified tracked files in the working tree)" if changed else ""),
        f"ffmpeg: {ffmpeg_version} ({ffmpeg})",
        f"cpu: {cpu_model()}, {os.cpu_count()} cores; python {platform.python_version()},"
        f" pdqhash {metadata.version('pdqhash')}, numpy {metadata.version('numpy')}",
        f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


def mib(kib: int) -> str:
    return f"{kib / MIB:7.1f}" if kib else "      -"


def row(title: str, wall: float, cpu_py: float, cpu_ff: float, clip_s: float) -> str:
    cpu = cpu_py + cpu_ff
    per_core = f"{clip_s / cpu:9.1f}" if cpu > 0 else "        -"
    return (
        f"{title:<36} {wall:8.2f} {cpu:7.2f} ={cpu_py:6.2f} +{cpu_ff:7.2f}"
        f" {clip_s / wall:7.1f} {per_core}"
    )


HEADER = (
    f"{'part':<36} {'wall s':>8} {'CPU s':>7}  {'py':>6}  {'ffmpeg':>7} {'x-rt':>7}"
    f" {'x-rt/core':>9}  {'RSS MiB py':>10} {'ffmpeg':>7} {'load1':>5}  wall per round"
)


def part_line(part: PartResult, clip_s: float) -> str:
    return (
        row(PART_TITLES[part.name], part.wall_s, part.cpu_self_s, part.cpu_children_s, clip_s)
        + f"  {mib(part.maxrss_self_kib):>10} {mib(part.maxrss_children_kib):>7}"
        + f" {part.load_after:5.2f}"
        + (
            f"  {' '.join(f'{w:.2f}' for w in part.round_walls)}"
            if len(part.round_walls) > 1
            else ""
        )
    )


def ratio(floor: float, actual: float) -> str:
    return f"{floor / actual:.2f}" if actual > 0 else "n/a"


def report(
    env: list[str], clip: Clip, floors: list[PartResult], decode: PartResult,
    vigil: PartResult, profiled: PartResult | None, load_end: tuple[float, float, float],
    rounds: int,
) -> list[str]:  # fmt: skip
    facts = vigil.pipeline
    assert facts is not None
    stages = {s.label: s for s in vigil.stages}
    clip_s = clip.duration_s
    lines = [*env]
    lines.append(
        f"clip: {clip.path.name}: {clip.duration_s:.2f} s, {clip.width}x{clip.height}"
        f" {clip.fps:.2f} fps {clip.video_codec}/{clip.audio_codec},"
        f" GOP {clip.keyframe_interval_s:.2f} s,"
        f" {clip.size / 1e6:.1f} MB ({clip.bitrate_mbps:.2f} Mbps); in page cache for every part"
    )
    lines.append(
        "each part runs in a fresh Python subprocess; CPU = user+sys of the Python process (py)"
        " + its waited-for ffmpeg children; RSS = peak of the Python process and of its largest"
        " ffmpeg child (VmHWM sampled every 10 ms); load1 = 1-min load average when the part ended"
    )
    lines.append(
        f"{rounds} interleaved round(s) (floor parts, then vigil); each part shows its round with"
        " the least wall time"
    )
    lines += ["", HEADER]
    lines += [part_line(part, clip_s) for part in floors]
    lines.append(part_line(decode, clip_s))
    floor_all = [*floors, decode]
    floor_wall = sum(p.wall_s for p in floor_all)
    lines.append(
        row(
            "floor total (sum of the above)",
            floor_wall,
            sum(p.cpu_self_s for p in floor_all),
            sum(p.cpu_children_s for p in floor_all),
            clip_s,
        )
    )
    lines.append(part_line(vigil, clip_s))
    if profiled is not None:
        lines.append(part_line(profiled, clip_s) + "   (profiling overhead; not compared)")
    lines += [
        "",
        f"vigil: status {facts.status}, {facts.segments} segments (floor segmenter made"
        f" {floors[2].output_files}), {facts.frames_hashed} frames PDQ-hashed"
        f" ({facts.frames_hashed / clip_s:.2f}/s of clip), sha256"
        f" {'matches' if facts.sha256 == floors[1].sha256 else 'DIFFERS FROM'} hashlib's;"
        f" build_app setup {facts.setup_s:.2f} s (not timed)",
    ]
    if facts.hooks_missing:
        lines.append(f"breakdown hooks not installed (code changed?): {facts.hooks_missing}")
    lines += ["", "vigil stage breakdown (wall s, CPU s = py + ffmpeg, calls):"]
    for label, indent in BREAKDOWN:
        stage = stages.get(label)
        if stage is None:
            continue
        title = "  " * indent + label
        cpu = stage.cpu_self_s + stage.cpu_children_s
        cpu_text = (
            f"{cpu:7.2f} ={stage.cpu_self_s:6.2f} +{stage.cpu_children_s:7.2f}"
            if cpu
            else f"{'':7} {'':7} {'':8}"
        )
        lines.append(
            f"  {title:<52} {stage.wall_s:8.2f}  {cpu_text} {stage.calls:6d}"
            f"  {stage.wall_s / vigil.wall_s * 100:5.1f}%"
        )
        cut = stages.get("segment_file (ffmpeg cut + probe segments)")
        if label.startswith("probe each segment") and cut is not None:
            alone = cut.wall_s - stage.wall_s
            lines.append(
                f"  {'      ffmpeg cut alone (segment_file - probes)':<52} {alone:8.2f}"
                f"  {'':24} {'':6}  {alone / vigil.wall_s * 100:5.1f}%"
            )
    custody_floor = sum(p.wall_s for p in floors)
    segment_stage = stages.get("SegmentStage")
    perceptual = stages.get("PerceptualStage")
    custody = facts.ingest_s + (segment_stage.wall_s if segment_stage else float("nan"))
    ingest = stages.get("ingest_file")
    custody_cpu = sum(s.cpu_self_s + s.cpu_children_s for s in (ingest, segment_stage) if s)
    perceptual_cpu = perceptual.cpu_self_s + perceptual.cpu_children_s if perceptual else 0.0
    lines += [
        "",
        f"pipeline {vigil.wall_s:.2f} s vs floor {floor_wall:.2f} s;"
        f" custody (ingest + SegmentStage) {custody:.2f} s vs floor (copy + sha256 + segment +"
        f" sha256) {custody_floor:.2f} s; perceptual (PerceptualStage)"
        f" {perceptual.wall_s if perceptual else float('nan'):.2f} s vs decode floor"
        f" {decode.wall_s:.2f} s",
        f"ratio pipeline/floor: {ratio(floor_wall, vigil.wall_s)}",
        f"ratio custody/floor: {ratio(custody_floor, custody)}",
        f"ratio perceptual/floor: "
        f"{ratio(decode.wall_s, perceptual.wall_s) if perceptual else 'n/a'}",
        "the same ratios on CPU seconds (less sensitive to other load on the machine):"
        f" pipeline {ratio(sum(p.cpu_s for p in (*floors, decode)), vigil.cpu_s)},"
        f" custody {ratio(sum(p.cpu_s for p in floors), custody_cpu)},"
        f" perceptual {ratio(decode.cpu_s, perceptual_cpu)}",
        f"load average at end (1/5/15 min): {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}",
    ]
    if profiled is not None and profiled.profile:
        lines += ["", f"cProfile of a second Vigil run ({profiled.wall_s:.2f} s wall):"]
        lines += profiled.profile.splitlines()
    return lines


# --------------------------------------------------------------------------- main


def best_round(results: list[PartResult]) -> PartResult:
    """The round with the least wall time (the one least disturbed by other load)."""
    best = min(results, key=lambda r: r.wall_s)
    best.round_walls = [r.wall_s for r in results]
    return best


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s 720p clip, under a minute")
    parser.add_argument("--clip", type=Path, help="benchmark this clip instead of a sample")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds, best kept (default: 3 quick, 2 full)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one measured part
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part:
        result = run_part(args.part, args.clip, args.work)
        args.result.write_text(result.to_json())
        return 0
    ffmpeg = find_ffmpeg()
    env = environment_lines(ffmpeg)
    if args.clip is not None:
        clip_path, expected, gop = args.clip.resolve(), None, float("inf")
    else:
        clip_path, expected, gop = prepare_clip(ffmpeg, args.quick)
    probed = probe(ProcessRunner(), ffmpeg, clip_path)
    if args.clip is None:
        check_continuous(probed, expected_frames=expected, gop_s=gop)
    clip = describe_clip(clip_path, probed)
    sha256_file(clip_path)  # read it once so that every part finds it in the page cache
    owned = args.work is None
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-")) if owned else args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    rounds = args.rounds or (3 if args.quick else 2)
    runs: dict[str, list[PartResult]] = collections.defaultdict(list)
    try:
        for index in range(rounds):
            print(f"round {index + 1}/{rounds}", file=sys.stderr, flush=True)
            for name in (*FLOOR_PARTS, DECODE_PART, VIGIL_PART):
                runs[name].append(spawn_part(name, clip_path, work))
        profiled = None if args.no_profile else spawn_part(PROFILE_PART, clip_path, work)
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)
    best = {name: best_round(results) for name, results in runs.items()}
    floors = [best[name] for name in FLOOR_PARTS]
    lines = report(
        env, clip, floors, best[DECODE_PART], best[VIGIL_PART], profiled, os.getloadavg(), rounds
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    mode = "quick" if args.quick else "full"
    name = f"pipeline-{mode}.txt" if args.clip is None else f"pipeline-{mode}-{clip_path.stem}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
