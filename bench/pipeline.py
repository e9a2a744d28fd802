"""Vigil's three paths (custody, dense index, transcode) against the raw tools doing the same work.

Run from the repo root:

    /tmp/venvtest/bin/python bench/pipeline.py [--quick] [--clip PATH] [--transcode-clip PATH]
        [--work DIR] [--rounds N] [--no-profile] [--skip-memory]

Clips (rendered once with ``transcode.samples`` and cached under ``.cache/bench/``):

- custody and dense: full mode a 5-minute 1080p30 H.264/AAC clip (1 s GOP, ~6 Mbps), rendered as
  60 s and concatenated five times with stream copy; ``--quick`` a 20 s 720p clip.
- transcode: a non-playable 720p30 MPEG-4 Part 2 / PCM AVI clip, 60 s full, 10 s quick.
- memory (full mode only, ``--skip-memory`` skips it): ~200 MB and ~2 GB inputs, stream-copy
  concatenations of a cached 25 s 720p30 ~33 Mbps chunk.

Each measured part runs in a fresh Python subprocess (this file with ``--part``), so its peak RSS
is its own; the part reports the Python process (RUSAGE_SELF) and its ffmpeg children
separately: their CPU from RUSAGE_CHILDREN, their peak RSS from /proc/<pid>/status VmHWM sampled
every 10 ms (the children's ru_maxrss is useless here: a child forked from a Python process of
N MiB reports at least N MiB, because Linux records the parent's high-water mark when the child
execs ffmpeg).

Parts:
  floor-copy             copy of the original + fsync (the floor of storing it)
  floor-sha256-original  hashlib, 1 MiB chunks
  floor-segment          ffmpeg -c copy -f segment -segment_time 10 -segment_format mpegts
  floor-sha256-segments  hashlib, 1 MiB chunks
  floor-keyframes        ffmpeg -skip_frame nokey ... -fps_mode passthrough
                           -vf scale=64:64:flags=area,format=gray -f rawvideo -> /dev/null
  floor-decode           ffmpeg -fps_mode passthrough -vf scale=64:64:flags=area,format=gray
                           -f rawvideo (every frame, as Vigil hashes by default)
  floor-proxy            Vigil's own proxy command line (transcode.commands.proxy_command), run
                           bare with subprocess on the MPEG-4 clip, into a temporary folder
  floor-audio-decode     per floor segment: ffmpeg -i SEG -map 0:a:0 -vn -ac 1 -ar 5512
                           -f s16le - > /dev/null (the bare audio decode the fingerprint needs)
  audio-profile          per floor segment, Vigil's audio fingerprint taken apart: ffmpeg with
                           Vigil's arguments (vigil_verify.audio_tracks.audio_decode_args), the
                           same without ashowinfo, the stderr lines through AudioLog + redact,
                           and the numpy fingerprint (not compared; where the time goes)
  vigil                  build_app on embedded defaults (fresh data dir), ingest_file +
                           run_pipeline on the H.264 clip; each path timed by wrappers around
                           its handlers (custody = ingest_file + SegmentStage, dense =
                           PerceptualStage, transcode = TranscodeStage: ~0 on playable H.264)
  vigil-noaudio          the vigil part with the audio stubbed out in that subprocess only
                           (segment_media decodes the pictures alone, as before audio was
                           fingerprinted; PerceptualStage._audio gives None): the dense path
                           without the audio fingerprint
                           (``--skip-audio-cost`` skips it and the two audio parts above)
  vigil-transcode        the same on the MPEG-4 clip (TranscodeStage makes the review proxy)
  vigil-profile          the H.264 run once more under cProfile (not compared; per-path
                           profiles: bench/profile_paths.py)
  memory                 the Vigil run on a memory input, once each

The floor parts and the Vigil runs are repeated in interleaved rounds (default 2);
each floor part and each Vigil path reports its fastest round, to damp other load on the machine
(the load average is printed per part). The output is also written to
``bench/results/pipeline-<quick|full>.txt``; the audio-fingerprint section (dense with / without
audio, the audio step against the bare audio decode) also to
``bench/results/audio_cost[-quick].txt``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import dataclasses
import functools
import hashlib
import importlib
import io
import json
import math
import os
import platform
import pstats
import resource
import shlex
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.machine import command_output, cpu_model  # noqa: E402
from bench.profile_paths import H264_SPEC, MPEG4_SPEC  # noqa: E402
from transcode.ffmpeg import ProcessRunner, find_ffmpeg  # noqa: E402
from transcode.probe import ProbeResult, Track, probe  # noqa: E402
from transcode.samples import SampleSpec, find_font, make_sample  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
RESULTS = ROOT / "bench" / "results"
CHUNK = 1 << 20
SEGMENT_S = 10.0
# 0: every decoded frame at its own time, Vigil's default since issue 15 (until 2026-12-05 the
# bench ran the fixed 10 fps grid that older recordings keep, and its dense figures were that)
PHASH_FPS = 0.0
MIB = 1024.0  # ru_maxrss and VmHWM are in KiB on Linux
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# Body-cam-like footage: 1 s GOP, H.264 high, AAC mono 48 kHz.
FULL_CHUNK = SampleSpec(
    duration_s=60.0, width=1920, height=1080, fps=30, video_bitrate="6M", seed=11
)
FULL_REPEATS = 5  # 5 x 60 s = 5 minutes
QUICK_SPEC = SampleSpec(**H264_SPEC)  # 20 s 720p30 4 Mbps
# Not playable in a browser: MPEG-4 Part 2 video, PCM audio, in AVI (an older body cam).
TRANSCODE_QUICK = SampleSpec(**MPEG4_SPEC)  # 10 s 720p30
TRANSCODE_FULL = dataclasses.replace(TRANSCODE_QUICK, duration_s=60.0)
# Memory inputs: a high-bitrate 720p chunk (~103 MB for 25 s) concatenated up to each size.
MEMORY_CHUNK = SampleSpec(
    duration_s=25.0, width=1280, height=720, fps=30, video_bitrate="32M", seed=13
)
MEMORY_INPUTS: tuple[tuple[str, float], ...] = (("200 MB", 200e6), ("2 GB", 2e9))
MEMORY_TARGET_MIB = 300
RENDER_TIMEOUT_S = 1800.0

CUSTODY_FLOOR = (
    "floor-copy",
    "floor-sha256-original",
    "floor-segment",
    "floor-sha256-segments",
    "floor-keyframes",
)
DENSE_FLOOR = "floor-decode"
AUDIO_FLOOR = "floor-audio-decode"
AUDIO_PROFILE_PART = "audio-profile"
VIGIL_NOAUDIO_PART = "vigil-noaudio"
AUDIO_RATE = 5512  # vigil_verify.audio.RATE, checked in part_audio_profile
AUDIO_FILTER = "ashowinfo,aresample=async=1"  # Vigil's -af, checked in part_audio_profile
AUDIO_TARGET = 0.10  # the issue: fingerprinting adds under 10% to the dense path
TRANSCODE_FLOOR = "floor-proxy"
VIGIL_PART = "vigil"
VIGIL_TRANSCODE_PART = "vigil-transcode"
PROFILE_PART = "vigil-profile"
MEMORY_PART = "memory"
PART_TITLES = {
    "floor-copy": "floor: copy original + fsync",
    "floor-sha256-original": "floor: sha256 original",
    "floor-segment": "floor: ffmpeg segment (copy)",
    "floor-sha256-segments": "floor: sha256 segments",
    "floor-keyframes": "floor: keyframes 64x64 gray",
    "floor-keyframes-1thread": "floor: keyframes 64x64 gray, one decoding thread",
    "floor-decode": "floor: decode 64x64 gray, every frame",
    "floor-proxy": "floor: proxy, bare ffmpeg",
    "floor-audio-decode": "floor: audio decode 5512 Hz mono",
    "audio-profile": "audio fingerprint taken apart",
    "vigil-noaudio": "vigil: ingest + run_pipeline, no audio",
    "vigil": "vigil: ingest + run_pipeline",
    "vigil-transcode": "vigil: ingest + run_pipeline",
    "vigil-profile": "vigil under cProfile",
    "memory": "vigil: ingest + run_pipeline",
}

# The paths, each timed around its handlers; "other" is anything outside them.
PATHS = ("custody", "dense", "transcode", "finalise")
PATH_TITLES = {
    "custody": "vigil custody: ingest + SegmentStage",
    "dense": "vigil dense: PerceptualStage",
    "transcode": "vigil transcode: TranscodeStage",
    "finalise": "vigil finalise: FinaliseStage",
}
CURRENT_PATH: list[str] = ["other"]  # the path whose handler is running (a stack)


# --------------------------------------------------------------------------- data


@dataclass
class StageTime:
    """Time spent inside one instrumented function (outermost calls only)."""

    label: str
    wall_s: float = 0.0
    cpu_self_s: float = 0.0
    cpu_children_s: float = 0.0
    calls: int = 0


@dataclass
class PathTime:
    """One path of a Vigil run: its handlers' time and the peak RSS while they ran."""

    path: str
    wall_s: float = 0.0
    cpu_self_s: float = 0.0
    cpu_children_s: float = 0.0
    calls: int = 0
    rss_self_kib: int = 0  # the Python process's VmRSS, sampled while the path ran
    rss_ffmpeg_kib: int = 0  # the largest ffmpeg child's VmHWM, sampled while the path ran

    @property
    def cpu_s(self) -> float:
        return self.cpu_self_s + self.cpu_children_s


@dataclass(frozen=True)
class PipelineFacts:
    """What the Vigil run produced, to check it did the whole job."""

    status: str
    sha256: str
    segments: int
    frames_hashed: int
    proxy_files: int  # proxy*.ts files in the object store after the run
    setup_s: float  # build_app: folders, SQLite, migrations (not in the timed wall)
    ingest_s: float
    run_pipeline_s: float
    hooks_missing: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass
class PartResult:
    """One measured part, measured inside its own subprocess."""

    name: str
    wall_s: float
    cpu_self_s: float
    cpu_children_s: float
    maxrss_self_kib: int
    maxrss_children_kib: int  # largest ffmpeg child, sampled (see RssSampler)
    load_before: float = 0.0
    load_after: float = 0.0
    output_files: int = 0
    sha256: str = ""
    command: str = ""
    stages: list[StageTime] = field(default_factory=list)
    paths: dict[str, PathTime] = field(default_factory=dict)
    rss_by_path: dict[str, list[int]] = field(default_factory=dict)
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
        paths = {k: PathTime(**v) for k, v in raw.pop("paths").items()}
        facts = raw.pop("pipeline")
        pipeline = None
        if facts is not None:
            facts["hooks_missing"] = tuple(facts["hooks_missing"])
            facts["notes"] = tuple(facts["notes"])
            pipeline = PipelineFacts(**facts)
        return cls(**raw, stages=stages, paths=paths, pipeline=pipeline)


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

    def describe(self) -> str:
        return (
            f"{self.path.name}: {self.duration_s:.2f} s, {self.width}x{self.height}"
            f" {self.fps:.2f} fps {self.video_codec}/{self.audio_codec},"
            f" GOP {self.keyframe_interval_s:.2f} s,"
            f" {self.size / 1e6:.1f} MB ({self.bitrate_mbps:.2f} Mbps)"
        )


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


class RssSampler(threading.Thread):
    """Polls this process's RSS and the peak RSS (VmHWM) of its ffmpeg children, and files
    each sample under the path running at that moment (``CURRENT_PATH``)."""

    def __init__(self, interval_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_ffmpeg_kib = 0
        self.by_path: dict[str, list[int]] = {}  # path -> [python VmRSS, ffmpeg VmHWM] peaks
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            peaks = self.by_path.setdefault(CURRENT_PATH[-1], [0, 0])
            peaks[0] = max(peaks[0], self._own_rss_kib())
            for pid in self._children():
                hwm = self._ffmpeg_hwm_kib(pid)
                peaks[1] = max(peaks[1], hwm)
                self.peak_ffmpeg_kib = max(self.peak_ffmpeg_kib, hwm)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_ffmpeg_kib

    @staticmethod
    def _children() -> list[str]:
        pids: list[str] = []
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                pids += (task / "children").read_text().split()
        return pids

    @staticmethod
    def _own_rss_kib() -> int:
        with (
            contextlib.suppress(OSError, ValueError, IndexError),
            open("/proc/self/statm", "rb") as fh,
        ):
            return int(fh.read().split()[1]) * PAGE_KIB
        return 0

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
    sampler = RssSampler()
    sampler.start()
    start = Usage.now()
    try:
        yield result
    finally:
        end = Usage.now()
        result.maxrss_children_kib = sampler.stop()
        result.rss_by_path = sampler.by_path
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
            if light:  # per-batch calls: cheap clocks only (this thread's CPU, no children)
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


# --------------------------------------------------------------------------- timing hooks

Label = str | Callable[[tuple[object, ...], dict[str, object]], str]
Target = tuple[str, str]  # (module, "attr" or "Class.attr")


def resolve(module: str, attr: str) -> tuple[object, str] | None:
    """The object holding ``attr`` (a module or class) and its name; None if there is none."""
    try:
        owner: object = importlib.import_module(module)
    except ImportError:
        return None
    *chain, name = attr.split(".")
    for part in chain:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    if isinstance(owner, type) and not any(  # a method the class (not ``object``) defines
        name in vars(k) for k in owner.__mro__ if k is not object
    ):
        return None
    if not callable(getattr(owner, name, None)):
        return None
    return owner, name


def wrap_path(owner: object, name: str, path: str, label: str, clock: StageClock) -> None:
    """Time ``owner.name`` as one handler of ``path`` (and run what it calls under ``path``)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: object, **kwargs: object) -> object:
        CURRENT_PATH.append(path)
        try:
            with clock.measure(path), clock.measure(f"{path}|{label}"):
                return original(*args, **kwargs)
        finally:
            CURRENT_PATH.pop()

    setattr(owner, name, timed)


def wrap_step(owner: object, name: str, label: Label, clock: StageClock, *, light: bool) -> None:
    """Time ``owner.name`` under the label, filed under the path that calls it."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: object, **kwargs: object) -> object:
        text = label if isinstance(label, str) else label(args, kwargs)
        with clock.measure(f"{CURRENT_PATH[-1]}|{text}", light=light):
            return original(*args, **kwargs)

    setattr(owner, name, timed)


def _bucket_label(args: tuple[object, ...], kwargs: dict[str, object]) -> str:
    bucket = args[1] if len(args) > 1 else kwargs.get("bucket")
    return f"store.put_file {bucket}"


AUDIO_STEP = "audio work outside the shared decode (fingerprint, other tracks)"
SHARED_DECODE = "segment_media: one decode, pictures + first audio track (ffmpeg + PDQ)"

# The handlers of each path: (path, label, targets).
PATH_HOOKS: tuple[tuple[str, str, tuple[Target, ...]], ...] = (
    ("custody", "ingest_file", (("ingest.service", "IngestService.ingest_file"),)),
    ("custody", "SegmentStage", (("workers.stages", "SegmentStage.__call__"),)),
    ("dense", "PerceptualStage", (("workers.stages", "PerceptualStage.__call__"),)),
    ("transcode", "TranscodeStage", (("workers.stages", "TranscodeStage.__call__"),)),
    ("finalise", "FinaliseStage", (("workers.stages", "FinaliseStage.__call__"),)),
)
# Steps inside the handlers: (label, targets, light). Every target found is wrapped (a function
# imported into another module is wrapped where it is looked up); a label none of whose
# targets exists is reported as a missing hook. The same label nested in itself counts once.
STEP_HOOKS: tuple[tuple[Label, tuple[Target, ...], bool], ...] = (
    (
        "stage-in: read + sha256 + write + fsync",
        (("ingest.service", "IngestService._stage"),),
        False,
    ),
    ("sniff (ffmpeg)", (("ingest.service", "sniff"),), False),
    (_bucket_label, (("store.base", "LocalFolderStore.put_file"),), False),
    ("probe original (ffmpeg framecrc + parse)", (("ingest.segmenting", "probe"),), False),
    (
        "segment_file (ffmpeg cut)",
        (("ingest.segmenting", "segment_file"), ("transcode.segmenter", "segment_file")),
        False,
    ),
    (
        "probe segments (ffmpeg framecrc + parse)",
        (("transcode.segmenter", "probe"), ("transcode.segmenter", "probe_video_many")),
        False,
    ),
    (
        "keyframe hashing (ffmpeg keyframe decode + PDQ)",
        (("ingest.segmenting", "keyframe_hashes"), ("integrity.keyframes", "keyframe_hashes")),
        False,
    ),
    (
        "PDQ, numpy batches (this thread)",
        (("integrity.phash", "pdq_hashes"),),
        True,
    ),
    (
        "sha256 of the files made (hashlib)",
        (("ingest.custody", "sha256_file"), ("workers.stages", "sha256_file")),
        False,
    ),
    (
        "segment_hashes (ffmpeg decode + PDQ)",
        (("workers.stages", "segment_hashes"), ("integrity.frames", "segment_hashes")),
        False,
    ),
    (
        "make_proxy (ffmpeg x264)",
        (("workers.stages", "make_proxy"), ("transcode.segmenter", "make_proxy")),
        False,
    ),
    ("framecrc parse, Python", (("transcode.probe", "parse_framecrc"),), False),
    (
        SHARED_DECODE,
        (("workers.stages", "segment_media"),),
        False,
    ),
    (
        AUDIO_STEP,
        (("integrity.audio", "tracks_from_first"), ("workers.stages", "PerceptualStage._audio")),
        False,
    ),
    (
        "audio decode (ffmpeg via the runner + stderr pump)",
        (("vigil_verify.audio_tracks", "_decode_first"),),
        False,
    ),
    (
        "AudioLog.line: ashowinfo log parse (pump thread)",
        (("vigil_verify.audio_tracks", "AudioLog.line"),),
        True,
    ),
    (
        "audio fingerprint, numpy (this thread)",
        (("vigil_verify.audio_tracks", "fingerprint"),),
        True,
    ),
)
CATALOGUE = "catalogue, SQLAlchemy/SQLite"

# The breakdown, per path, in print order with indent; labels found but not listed follow.
BREAKDOWN: dict[str, tuple[tuple[str, int], ...]] = {
    "custody": (
        ("ingest_file", 1),
        ("stage-in: read + sha256 + write + fsync", 2),
        ("sniff (ffmpeg)", 2),
        ("store.put_file originals", 2),
        ("SegmentStage", 1),
        ("probe original (ffmpeg framecrc + parse)", 2),
        ("segment_file (ffmpeg cut)", 2),
        ("probe segments (ffmpeg framecrc + parse)", 3),
        ("keyframe hashing (ffmpeg keyframe decode + PDQ)", 2),
        ("PDQ, numpy batches (this thread)", 3),
        ("sha256 of the files made (hashlib)", 2),
        ("store.put_file derived", 2),
        (CATALOGUE, 1),
        ("framecrc parse, Python", 1),
    ),
    "dense": (
        ("PerceptualStage", 1),
        (SHARED_DECODE, 2),
        ("segment_hashes (ffmpeg decode + PDQ)", 2),
        ("PDQ, numpy batches (this thread)", 3),
        (AUDIO_STEP, 2),
        ("audio decode (ffmpeg via the runner + stderr pump)", 3),
        ("AudioLog.line: ashowinfo log parse (pump thread)", 4),
        ("audio fingerprint, numpy (this thread)", 3),
        ("store.put_file derived", 2),
        (CATALOGUE, 1),
    ),
    "transcode": (
        ("TranscodeStage", 1),
        ("probe original (ffmpeg framecrc + parse)", 2),
        ("make_proxy (ffmpeg x264)", 2),
        ("probe segments (ffmpeg framecrc + parse)", 3),
        ("sha256 of the files made (hashlib)", 2),
        ("store.put_file derived", 2),
        (CATALOGUE, 1),
        ("framecrc parse, Python", 1),
    ),
    "finalise": (("FinaliseStage", 1), (CATALOGUE, 1)),
}


def install_hooks(clock: StageClock) -> list[str]:
    """Wrap the handlers and the steps the breakdown times; return the hooks not found."""
    missing: list[str] = []
    for path, label, targets in PATH_HOOKS:
        found = [t for t in (resolve(*target) for target in targets) if t is not None]
        for owner, name in found:
            wrap_path(owner, name, path, label, clock)
        if not found:
            missing.append(" | ".join(f"{m}.{a}" for m, a in targets))
    for step, targets, light in STEP_HOOKS:
        found = [t for t in (resolve(*target) for target in targets) if t is not None]
        for owner, name in found:
            wrap_step(owner, name, step, clock, light=light)
        if not found:
            missing.append(" | ".join(f"{m}.{a}" for m, a in targets))
    catalog = importlib.import_module("catalog.repository").Catalog
    for name, value in list(vars(catalog).items()):
        plain = callable(value) and not isinstance(value, staticmethod | classmethod)
        if plain and not name.startswith("_") and name not in ("session", "migrate"):
            wrap_step(catalog, name, CATALOGUE, clock, light=False)
    return missing


def stage_notes(app: object) -> list[str]:
    """Check that each path's handler in ``app.stages`` is one the hooks time."""
    expected = {
        "segment": "SegmentStage",
        "phash": "PerceptualStage",
        "transcode": "TranscodeStage",
    }
    stages: dict[str, object] = getattr(app, "stages", {})
    notes: list[str] = []
    for key, class_name in expected.items():
        handler = stages.get(key)
        if handler is None:
            notes.append(f"app.stages has no {key!r} stage")
        elif type(handler).__name__ != class_name:
            notes.append(f"app.stages[{key!r}] is {type(handler).__name__}, not {class_name}")
        elif not hasattr(type(handler).__call__, "__wrapped__"):
            notes.append(f"app.stages[{key!r}] ({class_name}) is not timed")
    return notes


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
    target.unlink()
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
    result.command = shlex.join(cmd)
    return result


def part_sha256_segments(work: Path) -> PartResult:
    files = sorted(segment_dir(work).glob("seg-*.ts"))
    with measured("floor-sha256-segments") as result:
        digests = [sha256_file(path) for path in files]
    result.output_files = len(digests)
    return result


def part_keyframes(ffmpeg: str, clip: Path, *, one_thread: bool = False) -> PartResult:
    """The floor's keyframe decode, with ffmpeg's default threads (the floor since issue 20
    set its target), or on one thread as Vigil decodes keyframes (``one_thread``)."""
    name = "floor-keyframes-1thread" if one_thread else "floor-keyframes"
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-skip_frame", "nokey",
        *(["-threads", "1"] if one_thread else []), "-i", str(clip),
        "-map", "0:v:0", "-fps_mode", "passthrough",
        "-vf", "scale=64:64:flags=area,format=gray", "-f", "rawvideo", "-",
    ]  # fmt: skip
    with measured(name) as result:
        run_quiet(cmd)
    result.command = shlex.join(cmd) + " > /dev/null"
    return result


def part_decode(ffmpeg: str, clip: Path) -> PartResult:
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(clip),
        "-map", "0:v:0", "-fps_mode", "passthrough",
        "-vf", "scale=64:64:flags=area,format=gray", "-f", "rawvideo", "-",
    ]  # fmt: skip
    with measured(DENSE_FLOOR) as result:
        run_quiet(cmd)
    result.command = shlex.join(cmd) + " > /dev/null"
    return result


def audio_floor_command(ffmpeg: str, segment: Path) -> list[str]:
    """The bare decode of a segment's first audio track to what the fingerprint reads."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(segment),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(AUDIO_RATE),
        "-f", "s16le", "-acodec", "pcm_s16le", "-",
    ]  # fmt: skip


def floor_segments(work: Path) -> list[Path]:
    files = sorted(segment_dir(work).glob("seg-*.ts"))
    if not files:
        raise SystemExit(f"no floor segments in {segment_dir(work)} (run floor-segment first)")
    return files


def part_audio_decode(ffmpeg: str, work: Path) -> PartResult:
    files = floor_segments(work)
    with measured(AUDIO_FLOOR) as result:
        for segment in files:
            run_quiet(audio_floor_command(ffmpeg, segment))
    result.output_files = len(files)
    result.command = (
        f"for each of the {len(files)} floor segments: "
        + shlex.join(audio_floor_command(ffmpeg, Path("SEG.ts")))
        + " > /dev/null"
    )
    return result


def part_audio_profile(ffmpeg: str, work: Path) -> PartResult:
    """Vigil's audio fingerprint of each floor segment, step by step (sequential, so the
    steps' times add up): ffmpeg with Vigil's arguments (stdout and stderr captured), the same
    without ``ashowinfo`` at ``-loglevel error``, the stderr lines through ``AudioLog.line`` and
    the runner's ``redact`` (what the stderr pump does per line), the numpy fingerprint and the
    blob + SHA-256."""
    from vigil_verify.audio import RATE
    from vigil_verify.audio_tracks import (
        AudioLog,
        AudioTracks,
        audio_decode_args,
        track_fingerprint,
    )

    from transcode.ffmpeg import redact

    assert RATE == AUDIO_RATE, f"vigil_verify.audio.RATE is {RATE}, the bench says {AUDIO_RATE}"
    files = floor_segments(work)
    clock = StageClock()
    labels = (
        "ffmpeg, Vigil's args (ashowinfo, loglevel info)",
        "ffmpeg, Vigil's args without ashowinfo (loglevel error)",
        "stderr lines: AudioLog.line + redact x2 (Python)",
        "fingerprint, numpy (track_fingerprint)",
        "AudioTracks.to_bytes + sha256",
    )
    lines_total = pcm_total = frames_total = 0
    with measured(AUDIO_PROFILE_PART) as result:
        for segment in files:
            args = audio_decode_args(ffmpeg, segment, first_video=False)
            with clock.measure(labels[0]):
                done = subprocess.run(args, capture_output=True, check=False)
            assert AUDIO_FILTER in args, f"Vigil's audio args changed: {args}"
            assert "info" in args, f"Vigil's audio args changed: {args}"
            quiet = [
                "aresample=async=1" if a == AUDIO_FILTER else "error" if a == "info" else a
                for a in args
            ]
            with clock.measure(labels[1]):
                subprocess.run(quiet, capture_output=True, check=False)
            text = done.stderr.decode(errors="replace").splitlines()
            with clock.measure(labels[2]):
                log = AudioLog()
                for line in text:
                    log.line(line)
                    redact(line)
                    redact(line)
            with clock.measure(labels[3]):
                tracks = AudioTracks((track_fingerprint(done.stdout, log, 0.0),))
            with clock.measure(labels[4]):
                hashlib.sha256(tracks.to_bytes()).hexdigest()
            lines_total += len(text)
            pcm_total += len(done.stdout)
            frames_total += len(tracks.tracks[0])
    result.stages = [clock.stages[label] for label in labels]
    result.output_files = len(files)
    result.command = (
        f"{len(files)} segments, {lines_total} stderr lines ({lines_total / len(files):.0f} per"
        f" segment), {pcm_total / 2 / AUDIO_RATE:.1f} s of PCM, {frames_total} fingerprint"
        f" frames; Vigil's args: {shlex.join(audio_decode_args(ffmpeg, Path('SEG.ts')))}"
    )
    return result


def stub_audio() -> None:
    """Take the audio fingerprint out of the dense path, in this process only: the segment's
    audio is then treated as undecodable (no ``audio_sha256``, no blob), as Vigil does when
    its audio does not decode."""
    stages = importlib.import_module("workers.stages")
    audio = importlib.import_module("integrity.audio")
    frames = importlib.import_module("integrity.frames")

    def no_audio(self: object, recording: object, path: Path, origin: float) -> None:
        return None

    def pictures_only(tools: Any, path: Path, *, origin_s: float, rotation: int) -> Any:
        hashes = frames.timed_frame_hashes(tools, path, origin_s=origin_s, rotation=rotation)
        return audio.HeardSegment(hashes, None, "stubbed out by the bench")

    stages.PerceptualStage._audio = no_audio
    stages.segment_media = pictures_only


def proxy_floor_command(ffmpeg: str, clip: Path, out_dir: Path) -> list[str]:
    """The command line Vigil runs for the review proxy of ``clip``, from Vigil's builder."""
    from transcode.proxy_settings import ProxySettings

    try:
        from transcode.commands import ProxyJob, proxy_command
    except ImportError as exc:
        raise SystemExit(f"no proxy builder in transcode.commands yet: {exc}") from exc
    probed = probe(ProcessRunner(), ffmpeg, clip)
    try:
        from transcode.segmenter import proxy_audio

        audio = proxy_audio(probed.audio.stream.codec if probed.audio else None)
    except ImportError:
        from transcode.probe import PLAYABLE_AUDIO

        codec = probed.audio.stream.codec if probed.audio else None
        audio = "none" if codec is None else "copy" if codec in PLAYABLE_AUDIO else "aac"
    video = probed.video
    size = (video.stream.width, video.stream.height) if video is not None else None
    job = ProxyJob(source=clip, out_dir=out_dir, segment_s=SEGMENT_S, audio=audio, size=size)  # type: ignore[arg-type]
    assert job.proxy == ProxySettings()  # Vigil's embedded default settings
    return proxy_command(ffmpeg, job)


def part_proxy(ffmpeg: str, clip: Path, work: Path) -> PartResult:
    out = work / "floor-proxy"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = proxy_floor_command(ffmpeg, clip, out)
    log = work / "floor-proxy.log"
    with log.open("wb") as stderr, measured(TRANSCODE_FLOOR) as result:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=stderr, check=False)  # fmt: skip
    if done.returncode:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        raise SystemExit(f"proxy floor: ffmpeg exit {done.returncode}: " + " / ".join(tail))
    result.output_files = sum(1 for p in out.iterdir() if p.suffix == ".ts")
    result.command = shlex.join(cmd)
    shutil.rmtree(out, ignore_errors=True)
    return result


def count_proxy_files(root: Path) -> int:
    """Review-proxy media files (``proxy-*.ts``) in the object store."""
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob("proxy*.ts") if p.is_file())


def part_vigil(name: str, clip: Path, work: Path, *, profile: bool) -> PartResult:
    from ingest.service import RecordingMetadata
    from workers.app import build_app
    from workers.settings import Settings

    clock = StageClock()
    if name == VIGIL_NOAUDIO_PART:
        stub_audio()
    missing = [] if profile else install_hooks(clock)
    data_dir = work / f"vigil-data-{name}"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(
        data_dir=data_dir, segment_seconds=SEGMENT_S, phash_fps=PHASH_FPS, ffmpeg=find_ffmpeg()
    )
    setup = time.perf_counter()
    app = build_app(settings)
    setup_s = time.perf_counter() - setup
    notes = [] if profile else stage_notes(app)
    meta = RecordingMetadata(
        device_id="BENCH-01",
        officer_id="000001",
        device_start=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        original_name=clip.name,
    )
    profiler = cProfile.Profile() if profile else None
    try:
        with measured(name) as result:
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
        proxy_files = count_proxy_files(settings.data_dir)
    finally:
        app.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    result.stages = list(clock.stages.values())
    for path in PATHS:
        stage = clock.stages.get(path)
        if stage is None:
            continue
        rss = result.rss_by_path.get(path, [0, 0])
        result.paths[path] = PathTime(
            path, stage.wall_s, stage.cpu_self_s, stage.cpu_children_s, stage.calls, *rss
        )
    result.sha256 = recording.sha256
    result.output_files = len(segments)
    result.pipeline = PipelineFacts(
        status=recording.status,
        sha256=recording.sha256,
        segments=len(segments),
        frames_hashed=sum(getattr(s, "phash_frames", 0) or 0 for s in segments),
        proxy_files=proxy_files,
        setup_s=setup_s,
        ingest_s=pipeline_start - ingest_start,
        run_pipeline_s=pipeline_end - pipeline_start,
        hooks_missing=tuple(missing),
        notes=tuple(notes),
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
    if name in ("floor-keyframes", "floor-keyframes-1thread"):
        return part_keyframes(ffmpeg, clip, one_thread=name.endswith("1thread"))
    if name == DENSE_FLOOR:
        return part_decode(ffmpeg, clip)
    if name == TRANSCODE_FLOOR:
        return part_proxy(ffmpeg, clip, work)
    if name == AUDIO_FLOOR:
        return part_audio_decode(ffmpeg, work)
    if name == AUDIO_PROFILE_PART:
        return part_audio_profile(ffmpeg, work)
    if name in (VIGIL_PART, VIGIL_NOAUDIO_PART, VIGIL_TRANSCODE_PART, PROFILE_PART, MEMORY_PART):
        return part_vigil(name, clip, work, profile=name == PROFILE_PART)
    raise SystemExit(f"unknown part {name!r}")


def spawn_part(name: str, clip: Path, work: Path) -> PartResult | None:
    """Run one part in a fresh interpreter, so that its peak RSS is its own; None if it failed."""
    print(f"  running {name} ...", file=sys.stderr, flush=True)
    result_file = work / f"{name}.json"
    result_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--part", name,
        "--clip", str(clip), "--work", str(work), "--result", str(result_file),
    ]  # fmt: skip
    done = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL)
    if done.returncode or not result_file.exists():
        print(f"  {name} FAILED (exit {done.returncode}); see above", file=sys.stderr)
        return None
    return PartResult.from_json(result_file.read_text())


# --------------------------------------------------------------------------- the clips


def spec_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def render(ffmpeg: str, spec: SampleSpec, out: Path) -> Path:
    if not out.exists():
        print(f"  rendering {out.name} ({spec.duration_s:g} s {spec.width}x{spec.height}) ...",
              file=sys.stderr, flush=True)  # fmt: skip
        started = time.perf_counter()
        partial = out.with_name(f".{out.stem}.partial{out.suffix}")
        make_sample(ffmpeg, spec, partial, timeout_s=RENDER_TIMEOUT_S, font=find_font())
        partial.replace(out)
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
    """The cached H.264 benchmark clip (rendered on first use): path, frame count, GOP s."""
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


def prepare_transcode_clip(ffmpeg: str, quick: bool) -> Path:
    """The cached non-playable MPEG-4 Part 2 clip (the name bench/profile_paths.py uses)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    spec = TRANSCODE_QUICK if quick else TRANSCODE_FULL
    prefix = "transcode-quick" if quick else "transcode-full"
    return render(ffmpeg, spec, CACHE / f"{prefix}-{spec_digest(spec)}.{spec.container}")


def prepare_memory_inputs(ffmpeg: str) -> list[tuple[str, Path]]:
    """The ~200 MB and ~2 GB inputs: the high-bitrate chunk concatenated to each size."""
    CACHE.mkdir(parents=True, exist_ok=True)
    chunk = render(ffmpeg, MEMORY_CHUNK, CACHE / f"memory-chunk-{spec_digest(MEMORY_CHUNK)}.mp4")
    size = chunk.stat().st_size
    inputs: list[tuple[str, Path]] = []
    for label, target in MEMORY_INPUTS:
        repeats = max(1, math.ceil(target / size))
        out = CACHE / f"memory-{repeats}x-{spec_digest(MEMORY_CHUNK, repeats)}.mp4"
        fresh = not out.exists()
        concatenate(ffmpeg, chunk, repeats, out)
        if fresh:
            frames = round(MEMORY_CHUNK.duration_s * MEMORY_CHUNK.fps) * repeats
            check_continuous(
                probe(ProcessRunner(), ffmpeg, out),
                expected_frames=frames,
                gop_s=MEMORY_CHUNK.gop_s,
            )
        inputs.append((label, out))
    return inputs


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
    """Date, commit, ffmpeg, CPU and versions; the load average is the last line."""
    commit = command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    changed = len(dirty.splitlines()) if dirty not in ("unknown", "") else 0
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
    speed = f"{clip_s / wall:7.1f}" if wall > 0 else "      -"
    return f"{title:<40} {wall:8.2f} {cpu:7.2f} ={cpu_py:6.2f} +{cpu_ff:7.2f} {speed} {per_core}"


HEADER = (
    f"{'part':<40} {'wall s':>8} {'CPU s':>7}  {'py':>6}  {'ffmpeg':>7} {'x-rt':>7}"
    f" {'x-rt/core':>9}  {'RSS MiB py':>10} {'ffmpeg':>7} {'load1':>5}  wall per round"
)


def walls(values: Sequence[float]) -> str:
    return f"  {' '.join(f'{w:.2f}' for w in values)}" if len(values) > 1 else ""


def part_cpu(part: PartResult) -> tuple[float, float, float]:
    return part.wall_s, part.cpu_self_s, part.cpu_children_s


def part_line(part: PartResult | None, clip_s: float, title: str | None = None) -> str:
    if part is None:
        return f"{title or '?':<40} (failed: see the messages above)"
    return (
        row(title or PART_TITLES[part.name], *part_cpu(part), clip_s)
        + f"  {mib(part.maxrss_self_kib):>10} {mib(part.maxrss_children_kib):>7}"
        + f" {part.load_after:5.2f}{walls(part.round_walls)}"
    )


@dataclass
class BestPath:
    """A path's fastest round among a Vigil part's rounds."""

    time: PathTime
    load: float
    round_walls: list[float]


def best_path(runs: Sequence[PartResult], path: str) -> BestPath | None:
    timed = [(r.paths[path], r.load_after) for r in runs if path in r.paths]
    if not timed:
        return None
    best, load = min(timed, key=lambda t: t[0].wall_s)
    return BestPath(best, load, [t.wall_s for t, _ in timed])


def path_line(best: BestPath | None, path: str, clip_s: float, title: str | None = None) -> str:
    title = title or PATH_TITLES[path]
    if best is None:
        return f"{title:<40} (not timed: no such handler ran)"
    t = best.time
    return (
        row(title, t.wall_s, t.cpu_self_s, t.cpu_children_s, clip_s)
        + f"  {mib(t.rss_self_kib):>10} {mib(t.rss_ffmpeg_kib):>7} {best.load:5.2f}"
        + walls(best.round_walls)
        + f"   ({t.calls} calls)"
    )


def ratio(floor: float, actual: float) -> str:
    if not (math.isfinite(floor) and math.isfinite(actual)) or actual <= 0 or floor <= 0:
        return "n/a"
    return f"{floor / actual:.2f}"


def sum_row(title: str, parts: Sequence[PartResult | None], clip_s: float) -> str:
    if any(p is None for p in parts):
        return f"{title:<40} (a part failed)"
    done = [p for p in parts if p is not None]
    return (
        row(title, *(sum(values) for values in zip(*map(part_cpu, done), strict=True)), clip_s)
        + f"  {mib(max(p.maxrss_self_kib for p in done)):>10}"
        + f" {mib(max(p.maxrss_children_kib for p in done)):>7}"
    )


def breakdown_lines(part: PartResult, paths: Sequence[str]) -> list[str]:
    """The per-step breakdown of the given paths of one Vigil run."""
    stages = {s.label: s for s in part.stages}
    lines: list[str] = []
    for path in paths:
        total = stages.get(path)
        if total is None:
            continue
        lines.append(
            f"  {path:<56} {total.wall_s:8.2f}  {cpu_text(total)} {total.calls:6d}  100.0%"
        )
        listed = BREAKDOWN.get(path, ())
        known = {label for label, _ in listed}
        extra = sorted(
            label.partition("|")[2]
            for label in stages
            if label.startswith(f"{path}|") and label.partition("|")[2] not in known
        )
        for label, indent in (*listed, *((label, 1) for label in extra)):
            stage = stages.get(f"{path}|{label}")
            if stage is None or not stage.calls:
                continue
            share = stage.wall_s / total.wall_s * 100 if total.wall_s else 0.0
            title = "  " * indent + label
            lines.append(
                f"  {title:<56} {stage.wall_s:8.2f}  {cpu_text(stage)} {stage.calls:6d}"
                f"  {share:5.1f}%"
            )
    return lines


def cpu_text(stage: StageTime) -> str:
    cpu = stage.cpu_self_s + stage.cpu_children_s
    if not cpu:
        return f"{'':7} {'':7} {'':8}"
    return f"{cpu:7.2f} ={stage.cpu_self_s:6.2f} +{stage.cpu_children_s:7.2f}"


def facts_lines(label: str, part: PartResult, clip: Clip) -> list[str]:
    facts = part.pipeline
    assert facts is not None
    lines = [
        f"vigil on the {label} clip: status {facts.status}, {facts.segments} segments,"
        f" {facts.frames_hashed} frames PDQ-hashed ({facts.frames_hashed / clip.duration_s:.2f}/s"
        f" of clip), {facts.proxy_files} proxy segments; build_app setup {facts.setup_s:.2f} s"
        " (not timed)"
    ]
    if facts.hooks_missing:
        lines.append(f"  breakdown hooks not found (code changed?): {list(facts.hooks_missing)}")
    lines += [f"  NOTE: {note}" for note in facts.notes]
    return lines


@dataclass
class Measured:
    """Everything the report needs."""

    env: list[str]
    clip: Clip
    tclip: Clip
    floors: dict[str, PartResult | None]
    vigil: list[PartResult]
    vigil_transcode: list[PartResult]
    profiled: PartResult | None
    memory: list[tuple[str, Clip, PartResult | None]]
    rounds: int
    quick: bool
    vigil_noaudio: list[PartResult] = field(default_factory=list)
    audio_profile: PartResult | None = None
    command: str = ""


def best_round(results: Sequence[PartResult | None]) -> PartResult | None:
    """The round with the least wall time (the one least disturbed by other load)."""
    done = [r for r in results if r is not None]
    if not done:
        return None
    best = min(done, key=lambda r: r.wall_s)
    best.round_walls = [r.wall_s for r in done]
    return best


def report(m: Measured) -> list[str]:
    from transcode.proxy_settings import ProxySettings

    clip_s, tclip_s = m.clip.duration_s, m.tclip.duration_s
    lines = [*m.env]
    lines.append(f"clip (custody, dense): {m.clip.describe()}")
    lines.append(f"clip (transcode): {m.tclip.describe()}")
    lines.append("every clip is in the page cache for every part")
    lines.append(
        "each part runs in a fresh Python subprocess; CPU = user+sys of the Python process (py)"
        " + its waited-for ffmpeg children; RSS = peak of the Python process and of its largest"
        " ffmpeg child (VmHWM sampled every 10 ms; for a Vigil path, the Python VmRSS and the"
        " children sampled while the path's handlers ran); load1 = 1-min load average when the"
        " part ended; x-rt = clip s / wall s, x-rt/core = clip s / CPU s"
    )
    lines.append(
        f"{m.rounds} interleaved round(s); each floor part and each Vigil path shows its round"
        " with the least wall time"
    )
    custody_floor = [m.floors[name] for name in CUSTODY_FLOOR]
    decode, proxy = m.floors[DENSE_FLOOR], m.floors[TRANSCODE_FLOOR]
    custody = best_path(m.vigil, "custody")
    dense = best_path(m.vigil, "dense")
    transcode = best_path(m.vigil_transcode, "transcode")
    h264_transcode = best_path(m.vigil, "transcode")
    whole = best_round(m.vigil)
    whole_t = best_round(m.vigil_transcode)
    lines += ["", HEADER, f"-- custody path, {m.clip.path.name}"]
    lines += [
        part_line(p, clip_s, PART_TITLES[n])
        for n, p in zip(CUSTODY_FLOOR, custody_floor, strict=True)
    ]
    lines.append(sum_row("custody floor (sum of the above)", custody_floor, clip_s))
    lines.append(path_line(custody, "custody", clip_s))
    lines.append(f"-- dense path, {m.clip.path.name}")
    lines.append(part_line(decode, clip_s, PART_TITLES[DENSE_FLOOR]))
    lines.append(path_line(dense, "dense", clip_s))
    lines.append(f"-- transcode path, {m.tclip.path.name}")
    lines.append(part_line(proxy, tclip_s, PART_TITLES[TRANSCODE_FLOOR]))
    lines.append(path_line(transcode, "transcode", tclip_s))
    lines.append("-- whole runs (all stages, for reference)")
    lines.append(part_line(whole, clip_s, f"vigil: whole run, {m.clip.video_codec} clip"))
    lines.append(part_line(whole_t, tclip_s, f"vigil: whole run, {m.tclip.video_codec} clip"))
    if m.profiled is not None:
        lines.append(
            part_line(m.profiled, clip_s, "vigil under cProfile") + "   (overhead; not compared)"
        )
    if proxy is not None:
        lines.append(f"transcode floor command (Vigil's proxy_command): {proxy.command}")
    lines.append("")
    if whole is not None:
        lines += facts_lines(m.clip.video_codec, whole, m.clip)
        sha = m.floors["floor-sha256-original"]
        if sha is not None and whole.pipeline is not None:
            same = "matches" if whole.pipeline.sha256 == sha.sha256 else "DIFFERS FROM"
            lines.append(f"  sha256 of the original {same} hashlib's")
        segment = m.floors["floor-segment"]
        if segment is not None:
            lines.append(f"  the floor segmenter made {segment.output_files} segments")
    if whole_t is not None:
        lines += facts_lines(m.tclip.video_codec, whole_t, m.tclip)
        if proxy is not None:
            lines.append(f"  the floor proxy command made {proxy.output_files} proxy segments")
    if h264_transcode is not None:
        t = h264_transcode.time
        made = whole.pipeline.proxy_files if whole is not None and whole.pipeline else 0
        lines.append(
            f"transcode on the {m.clip.video_codec} clip: {t.wall_s:.3f} s in {t.calls} calls,"
            f" {made} proxy segments (expected ~0 s and none when the clip is playable)"
        )
    if whole is not None:
        lines += [
            "",
            f"vigil stage breakdown, {m.clip.video_codec} clip, the round with the least total"
            " wall (wall s, CPU s = py + ffmpeg, calls, share of the path; steps running on"
            " other threads, e.g. keyframe hashing beside the cut, overlap, so shares can add"
            " up to more than 100%; CPU of overlapping steps is the whole process's):",
        ]
        lines += breakdown_lines(whole, PATHS)
    if whole_t is not None:
        lines += [
            "",
            f"vigil stage breakdown, {m.tclip.video_codec} clip:",
        ]
        lines += breakdown_lines(whole_t, PATHS)

    custody_floor_wall = (
        sum(p.wall_s for p in custody_floor if p is not None)
        if all(p is not None for p in custody_floor)
        else math.nan
    )
    custody_floor_cpu = sum(p.cpu_s for p in custody_floor if p is not None)

    def wall_of(best: BestPath | None) -> float:
        return best.time.wall_s if best is not None and best.time.calls else math.nan

    def cpu_of(best: BestPath | None) -> float:
        return best.time.cpu_s if best is not None and best.time.calls else math.nan

    lines += [
        "",
        f"custody {wall_of(custody):.2f} s vs floor (copy + sha256 + segment + sha256 +"
        f" keyframes) {custody_floor_wall:.2f} s; dense {wall_of(dense):.2f} s vs decode floor"
        f" {decode.wall_s if decode else math.nan:.2f} s; transcode {wall_of(transcode):.2f} s"
        f" vs bare proxy command {proxy.wall_s if proxy else math.nan:.2f} s",
        f"ratio custody/floor: {ratio(custody_floor_wall, wall_of(custody))}",
        f"ratio dense/floor: {ratio(decode.wall_s if decode else math.nan, wall_of(dense))}",
        f"ratio transcode/floor: {ratio(proxy.wall_s if proxy else math.nan, wall_of(transcode))}",
        "(floor wall / Vigil wall; targets: custody >= 0.8, dense >= 0.9, transcode >= 0.9)",
        "the same ratios on CPU seconds (less sensitive to other load on the machine):"
        f" custody {ratio(custody_floor_cpu, cpu_of(custody))},"
        f" dense {ratio(decode.cpu_s if decode else math.nan, cpu_of(dense))},"
        f" transcode {ratio(proxy.cpu_s if proxy else math.nan, cpu_of(transcode))}",
    ]
    if proxy is not None and proxy.cpu_s > 0:
        p = ProxySettings()
        lines.append(
            f"proxy settings (x264 {p.preset}, crf {p.crf}, AAC {p.audio_bitrate}) at"
            f" {m.tclip.width}x{m.tclip.height}: {tclip_s / proxy.cpu_s:.2f} x-realtime per core"
            f" ({tclip_s / proxy.wall_s:.2f} x-realtime on {os.cpu_count()} cores; target >= 3"
            " per core)"
        )
    lines += memory_lines(m)
    lines += audio_lines(m)
    load = os.getloadavg()
    lines.append(f"load average at end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if m.profiled is not None and m.profiled.profile:
        lines += ["", f"cProfile of one more Vigil run ({m.profiled.wall_s:.2f} s wall):"]
        lines += m.profiled.profile.splitlines()
    return lines


def seconds(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def stage_of(part: PartResult, label: str) -> StageTime | None:
    return next((s for s in part.stages if s.label == label), None)


def audio_lines(m: Measured) -> list[str]:
    """Dense with and without the audio fingerprint, the audio step against the bare decode."""
    if not m.vigil_noaudio:
        return ["", "audio fingerprint cost: not measured (--skip-audio-cost, or the run failed)"]
    clip_s = m.clip.duration_s
    with_audio = best_path(m.vigil, "dense")
    without = best_path(m.vigil_noaudio, "dense")
    floor = m.floors.get(AUDIO_FLOOR)
    lines = [
        "",
        f"audio fingerprint cost, dense path, {m.clip.path.name} (target: fingerprinting adds"
        f" < {AUDIO_TARGET:.0%} to the dense path; vigil-noaudio = the same run with"
        " the audio stubbed out in its subprocess: pictures decoded alone, no fingerprint)",
        HEADER,
        path_line(with_audio, "dense", clip_s, "vigil dense, with audio"),
        path_line(without, "dense", clip_s, "vigil dense, audio stubbed out"),
        part_line(floor, clip_s, PART_TITLES[AUDIO_FLOOR]),
    ]
    if with_audio is None or without is None:
        return [*lines, "  (a dense run failed: no ratio)"]
    a, b = with_audio.time, without.time
    wall_ratio = a.wall_s / b.wall_s if b.wall_s else math.nan
    cpu_ratio = a.cpu_s / b.cpu_s if b.cpu_s else math.nan
    estimates = {"wall, run vs run": wall_ratio - 1, "CPU, run vs run": cpu_ratio - 1}
    lines += [
        f"ratio dense with audio / dense without audio: wall {wall_ratio:.3f}"
        f" ({wall_ratio - 1:+.1%}), CPU {cpu_ratio:.3f} ({cpu_ratio - 1:+.1%}) (fastest rounds of"
        f" each; dense walls per round: with {seconds(with_audio.round_walls)},"
        f" without {seconds(without.round_walls)})",
    ]
    # The audio step inside the same runs (wrapped PerceptualStage._audio), per round.
    shares: list[tuple[float, float, float, float]] = []  # audio wall, cpu, dense wall, cpu
    for run in m.vigil:
        step, dense = stage_of(run, f"dense|{AUDIO_STEP}"), run.paths.get("dense")
        if step is not None and dense is not None and dense.wall_s:
            cpu = step.cpu_self_s + step.cpu_children_s
            shares.append((step.wall_s, cpu, dense.wall_s, dense.cpu_s))
    if shares:
        best = min(shares, key=lambda t: t[0])
        lines.append(
            f"the audio step inside the dense path ({AUDIO_STEP}), per round:"
            + "".join(
                f" {w:.2f} s wall / {c:.2f} s CPU = {w / dw:.1%} of dense wall, {c / dc:.1%} of"
                f" dense CPU;"
                for w, c, dw, dc in shares
            )
        )
        lines.append(
            f"  audio step / (dense - audio step), round with the fastest audio step: wall"
            f" {best[0]:.2f} s / {best[2] - best[0]:.2f} s = {best[0] / (best[2] - best[0]):+.1%},"
            f" CPU {best[1]:.2f} s / {best[3] - best[1]:.2f} s ="
            f" {best[1] / (best[3] - best[1]):+.1%} (not an estimate of the whole cost: the"
            " first track is decoded inside the picture decode, which this step does not see;"
            " the verdict is run vs run)"
        )
        if floor is not None and floor.wall_s:
            lines.append(
                f"  audio step vs bare ffmpeg audio decode of the same {floor.output_files}"
                f" segments: wall {best[0]:.2f} / {floor.wall_s:.2f} s ="
                f" {best[0] / floor.wall_s:.2f}x, CPU {best[1]:.2f} / {floor.cpu_s:.2f} s ="
                f" {best[1] / floor.cpu_s:.2f}x (ratio floor/audio step:"
                f" {ratio(floor.wall_s, best[0])})"
            )
    if floor is not None:
        lines.append(f"  audio floor command: {floor.command}")
    meets = [name for name, value in estimates.items() if value < AUDIO_TARGET]
    verdict = (
        "MEETS"
        if len(meets) == len(estimates)
        else "MISSES"
        if not meets
        else "UNCLEAR (the estimates disagree: rerun on a quieter machine)"
    )
    lines.append(
        f"verdict: fingerprinting adds < {AUDIO_TARGET:.0%} to the dense path: {verdict};"
        f" estimates: {', '.join(f'{n} {v:+.1%}' for n, v in estimates.items())}"
    )
    prof = m.audio_profile
    if prof is not None and prof.stages:
        lines.append(
            f"audio fingerprint taken apart (audio-profile part, sequential, {prof.wall_s:.2f} s"
            f" wall in all): {prof.command}"
        )
        lines.append(f"  {'step':<56} {'wall s':>8}  {'CPU s':>7}  {'py':>6}  {'ffmpeg':>7}")
        for stage in prof.stages:
            lines.append(f"  {stage.label:<56} {stage.wall_s:8.2f}  {cpu_text(stage)}")
    return lines


def memory_lines(m: Measured) -> list[str]:
    if not m.memory:
        why = "quick mode" if m.quick else "--skip-memory"
        return ["", f"memory: not measured ({why})"]
    lines = [
        "",
        "memory: custody + dense (the whole pipeline) on embedded defaults, one fresh subprocess"
        " per input; peak RSS of the Python process (ru_maxrss) and of its largest ffmpeg child",
    ]
    peaks: dict[str, str] = {}
    for label, clip, part in m.memory:
        head = f"  {label} input {clip.describe()}"
        if part is None or part.pipeline is None:
            lines.append(f"{head}: FAILED")
            peaks[label] = "n/a"
            continue
        lines.append(head)
        lines.append(
            f"    python {part.maxrss_self_kib / MIB:.1f} MiB, largest ffmpeg child"
            f" {part.maxrss_children_kib / MIB:.1f} MiB; wall {part.wall_s:.1f} s, status"
            f" {part.pipeline.status}, {part.pipeline.segments} segments"
        )
        for path in ("custody", "dense"):
            t = part.paths.get(path)
            if t is not None:
                lines.append(
                    f"    {path:<8} {t.wall_s:7.1f} s, {clip.duration_s / t.cpu_s:6.1f} x-rt/core,"
                    f" python VmRSS {t.rss_self_kib / MIB:.1f} MiB, ffmpeg"
                    f" {t.rss_ffmpeg_kib / MIB:.1f} MiB"
                )
        peaks[label] = f"{part.maxrss_self_kib / MIB:.0f}"
    big, small = (peaks.get(label, "n/a") for label, _ in MEMORY_INPUTS[::-1])
    lines.append(
        f"memory: peak RSS 2 GB input {big} MiB, 200 MB input {small} MiB"
        f" (target <= {MEMORY_TARGET_MIB} MiB, flat)"
    )
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="20 s 720p + 10 s MPEG-4 clips, under a minute"
    )
    parser.add_argument("--clip", type=Path, help="custody/dense on this clip instead")
    parser.add_argument("--transcode-clip", type=Path, help="transcode this clip instead")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, best kept (default: 2)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument(
        "--skip-memory", action="store_true", help="skip the 200 MB / 2 GB memory runs (full)"
    )
    parser.add_argument(
        "--skip-audio-cost",
        action="store_true",
        help="skip the dense run without audio fingerprints and the audio floor / profile parts",
    )
    parser.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one measured part
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_clip(ffmpeg: str, path: Path) -> Clip:
    clip = describe_clip(path, probe(ProcessRunner(), ffmpeg, path))
    sha256_file(path)  # read it once so that every part finds it in the page cache
    return clip


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part:
        result = run_part(args.part, args.clip, args.work)
        args.result.write_text(result.to_json())
        return 0
    ffmpeg = find_ffmpeg()
    env = environment_lines(ffmpeg)
    if args.clip is not None:
        clip_path = args.clip.resolve()
    else:
        clip_path, expected, gop = prepare_clip(ffmpeg, args.quick)
        check_continuous(
            probe(ProcessRunner(), ffmpeg, clip_path), expected_frames=expected, gop_s=gop
        )
    tclip_path = (
        args.transcode_clip.resolve()
        if args.transcode_clip is not None
        else prepare_transcode_clip(ffmpeg, args.quick)
    )
    memory_inputs = [] if args.quick or args.skip_memory else prepare_memory_inputs(ffmpeg)
    clip, tclip = load_clip(ffmpeg, clip_path), load_clip(ffmpeg, tclip_path)
    owned = args.work is None
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-")) if owned else args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    rounds = args.rounds or 2
    runs: dict[str, list[PartResult | None]] = collections.defaultdict(list)
    memory: list[tuple[str, Clip, PartResult | None]] = []
    try:
        for index in range(rounds):
            print(f"round {index + 1}/{rounds}", file=sys.stderr, flush=True)
            names: tuple[str, ...] = (*CUSTODY_FLOOR, DENSE_FLOOR, VIGIL_PART)
            if not args.skip_audio_cost:
                names += (AUDIO_FLOOR, AUDIO_PROFILE_PART, VIGIL_NOAUDIO_PART)
            for name in names:
                runs[name].append(spawn_part(name, clip_path, work))
            for name in (TRANSCODE_FLOOR, VIGIL_TRANSCODE_PART):
                runs[name].append(spawn_part(name, tclip_path, work))
        profiled = None if args.no_profile else spawn_part(PROFILE_PART, clip_path, work)
        for label, path in memory_inputs:
            print(f"memory: {label} input", file=sys.stderr, flush=True)
            memory.append((label, load_clip(ffmpeg, path), spawn_part(MEMORY_PART, path, work)))
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)
    floors = {name: best_round(runs[name]) for name in (*CUSTODY_FLOOR, DENSE_FLOOR)}
    floors[TRANSCODE_FLOOR] = best_round(runs[TRANSCODE_FLOOR])
    floors[AUDIO_FLOOR] = best_round(runs[AUDIO_FLOOR])
    measured_all = Measured(
        env=env,
        clip=clip,
        tclip=tclip,
        floors=floors,
        vigil=[r for r in runs[VIGIL_PART] if r is not None],
        vigil_transcode=[r for r in runs[VIGIL_TRANSCODE_PART] if r is not None],
        profiled=profiled,
        memory=memory,
        rounds=rounds,
        quick=args.quick,
        vigil_noaudio=[r for r in runs[VIGIL_NOAUDIO_PART] if r is not None],
        audio_profile=best_round(runs[AUDIO_PROFILE_PART]),
        command=bench_command(argv),
    )
    text = "\n".join(report(measured_all)) + "\n"
    print(text, end="")
    mode = "quick" if args.quick else "full"
    name = f"pipeline-{mode}.txt" if args.clip is None else f"pipeline-{mode}-{clip_path.stem}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(text)
    if not args.skip_audio_cost:
        audio = "audio_cost.txt" if not args.quick else "audio_cost-quick.txt"
        audio = audio if args.clip is None else f"audio_cost-{mode}-{clip_path.stem}.txt"
        (RESULTS / audio).write_text(audio_report(measured_all))
    return 0


def bench_command(argv: Sequence[str] | None) -> str:
    """The command line of this run, as typed from the repo root."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([str(python), "bench/pipeline.py", *args])


def audio_report(m: Measured) -> str:
    """bench/results/audio_cost*.txt: the environment, the command, the audio section."""
    lines = [*m.env, f"command (from the repo root): {m.command}"]
    lines.append(f"clip (custody, dense): {m.clip.describe()}")
    lines.append(
        f"{m.rounds} interleaved round(s) of: custody floors, dense floor, vigil (with audio),"
        " floor-audio-decode, audio-profile, vigil-noaudio; each in a fresh subprocess"
    )
    lines += audio_lines(m)
    whole = best_round(m.vigil)
    if whole is not None:
        lines += ["", "dense breakdown of the vigil round with the least total wall:"]
        lines += breakdown_lines(whole, ("dense",))
    bare = best_round(m.vigil_noaudio)
    if bare is not None:
        lines += ["", "dense breakdown of the vigil-noaudio round with the least total wall:"]
        lines += breakdown_lines(bare, ("dense",))
        if bare.pipeline is not None:
            lines.append(f"  vigil-noaudio status {bare.pipeline.status}")
    load = os.getloadavg()
    lines.append(f"load average at end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
