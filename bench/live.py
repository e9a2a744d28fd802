"""Live custody latency: 16 cameras pushing RTMP to Vigil at once, time from a segment closing to
it being on record (issue 7: p99 under 2 s), and how far the dense index lags behind.

Run from the repo root:

    /tmp/venvtest/bin/python bench/live.py --quick     # 16 streams x 20 s, under a minute
    /tmp/venvtest/bin/python bench/live.py             # 16 streams x 60 s
        [--streams N] [--segment-seconds S] [--seconds S] [--together] [--work DIR]

**How it runs Vigil.** ``vigil live`` records one source per process (there is no multi-camera
command), so a site with 16 cameras runs 16 ``vigil live --listen rtmp://…`` processes, one per
camera, all on one data dir: this bench does exactly that, on embedded defaults (SQLite
catalogue in WAL mode, local folder store, in-process bus) in a fresh temporary data dir. The
bench first builds the app once itself (``build_app`` with ``Settings``: migrations and the
development ledger key, like a deployment's first start), then starts the 16 processes. Each one
is this file with ``--part recorder``, which installs timing wrappers and then runs the real
``vigil`` command line (``workers.cli.main``, ``live URL --listen --device CAM-NN --max-outage
0``), so the recorder is wired exactly as the CLI wires it: ``SegmentWriter`` for the custody
path, and ``after_publish=app.run_pipeline``, i.e. the in-process bus is drained (the ``phash``
stage: per-frame PDQ, the dense index; at the end ``transcode`` and ``finalise``) on the
storing thread after each segment is announced. That is "the dense index behind the recorders"
as the product runs it on embedded defaults. (The transcode stage makes a review proxy only for
sources a browser cannot play; this H.264/AAC footage has none.)

**The cameras.** One cached clip (``transcode.samples``, 1280x720 30 fps H.264 high / AAC, 1 s
GOP, ~3 Mbps, 80 s; rendered once under ``.cache/bench/``) is pushed by 16 ffmpeg processes
with ``-re -c copy -f flv`` (real time, almost no CPU). Stream i starts ``i`` seconds into the
clip, so no two streams carry the same bytes (the catalogue keeps one recording per original
hash), and i x segment/16 s after stream 0: independent cameras do not close their segments
in step (``--together`` starts them all at once: every close in a burst, the worst case).
Each pusher ends after ``--seconds``; the camera's disconnect ends its recording
(``--max-outage 0``), which then stores the original and finishes the pipeline.

**What is measured.** Per segment, from the wrappers in each recorder process (wall clock,
``time.time()``):

- *closed*: the segment file's mtime, i.e. ffmpeg's last write to it before it closed it and
  listed it in ``segments.csv``. (The time the recorder first reads the row in
  ``segments.csv`` is also recorded, as *seen*: using it instead would hide the recorder's
  polling and queueing, so it is shown only as a part of the breakdown.)
- *on record*: ``SegmentWriter.add`` returned: the segment is hashed (SHA-256), stored
  write-once in the object store, and catalogued with its ``segment.stored`` custody event in
  one committed transaction. (If the custody path gains more work, e.g. keyframe hashes inside
  ``SegmentWriter.add``, it is inside this span.)

latency = on record - closed. From the catalogue afterwards: each segment's ``segment.hashed``
event time (the dense index done; the event's ``at`` is taken inside its transaction, just
before the commit) and each recording's ``catalogue`` event (complete). Percentiles are
numpy's linear interpolation over all segments of all streams.

Also printed: CPU seconds (every process's rusage when it is waited for: the 16 recorders with
their ffmpeg children, the pushers) and the machine's busy share from ``/proc/stat`` (other
users' load included), peak RSS (VmHWM of every process of the tree, sampled every 0.5 s; each
recorder's own ru_maxrss), load averages at start and end, and a correctness check: every
recording complete, every closed segment stored once with contiguous indices, the stored bytes'
SHA-256 equal to the catalogue's, every original stored with its hash, every segment densely
indexed. The output is also written to ``bench/results/live-<quick|full>.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = ROOT / ".cache" / "bench"
RESULTS = ROOT / "bench" / "results"
TARGET_P99_S = 2.0
CLIP_SECONDS = 80.0  # longest run (60 s) + one second of offset per stream (up to 15 s)
SAMPLE_S = 0.5  # RSS sampling interval
MIB = 1024.0


# --------------------------------------------------------------------------- recorder part


def recorder_part(args: argparse.Namespace) -> int:
    """One camera's ``vigil live`` process, with timing wrappers; runs the real CLI."""
    with Path(args.timings).open("a", buffering=1) as out:
        return _record(args, out)


def _record(args: argparse.Namespace, out: IO[str]) -> int:
    import catalog.repository
    import ingest.live.storing
    import store.local
    import workers.app

    lock = threading.Lock()

    def emit(record: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(record) + "\n")

    seen: dict[str, float] = {}
    closed_rows = ingest.live.storing._closed

    def closed(directory: Path) -> list[Path]:
        paths = closed_rows(directory)
        at = time.time()
        for path in paths:
            seen.setdefault(str(path), at)
        return paths

    ingest.live.storing._closed = closed

    # Inside SegmentWriter.add (the storing thread only), time its parts.
    parts: dict[str, float] = {}
    storing: list[threading.Thread] = []
    missing: list[str] = []

    def part(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None or not callable(original):
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return

        def timed(*a: Any, **kw: Any) -> Any:
            if threading.current_thread() not in storing:
                return original(*a, **kw)
            started = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                parts[label] = parts.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)

    if hasattr(workers.segment_writer, "keyframe_hashes"):  # keyframe PDQ on the custody path
        part(workers.segment_writer, "keyframe_hashes", "keyframes")
    part(workers.segment_writer, "sha256_file", "sha256")
    part(store.local.LocalFolderStore, "put_file", "store")
    part(catalog.repository.Catalog, "add_segment", "catalogue")

    add = workers.segment_writer.SegmentWriter.add

    def timed_add(self: Any, *a: Any, **kw: Any) -> Any:
        recording = a[0] if a else kw["recording"]
        produced = a[1] if len(a) > 1 else kw["produced"]
        began = time.time()
        stat = os.stat(produced.path)
        parts.clear()
        storing.append(threading.current_thread())
        try:
            row = add(self, *a, **kw)
        finally:
            storing.pop()
        on_record = time.time()
        emit(
            dict(
                kind="segment", recording=recording.id, index=produced.index,
                closed=stat.st_mtime_ns / 1e9, seen=seen.get(str(produced.path)), began=began,
                on_record=on_record, size=stat.st_size, start_s=row.start_s, end_s=row.end_s,
                parts=dict(parts), missing=missing,
            )
        )  # fmt: skip
        return row

    workers.segment_writer.SegmentWriter.add = timed_add  # type: ignore[method-assign]

    drain = workers.app.Vigil.run_pipeline

    def timed_drain(self: Any) -> int:
        began = time.time()
        count = drain(self)
        emit(dict(kind="drain", began=began, ended=time.time(), messages=count))
        return count

    workers.app.Vigil.run_pipeline = timed_drain  # type: ignore[method-assign]

    sys.argv = [
        "vigil", "-q", "live", args.url, "--listen", "--device", args.device,
        "--category", "fixed-site", "--max-outage", "0", "--max-seconds", f"{args.max_seconds:g}",
    ]  # fmt: skip
    try:
        workers.cli.main()
    finally:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        emit(
            dict(
                kind="rusage", cpu_self=me.ru_utime + me.ru_stime,
                cpu_children=kids.ru_utime + kids.ru_stime, maxrss_kib=me.ru_maxrss,
            )
        )  # fmt: skip
    return 0


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A process this bench started, waited for by its own thread (``os.wait4``: exit time and
    rusage, which includes the ffmpeg children it waited for)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ended: float | None = None
    cpu_s: float = 0.0
    returncode: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        _pid, status, usage = os.wait4(self.popen.pid, 0)
        self.ended = time.time()
        self.cpu_s = usage.ru_utime + usage.ru_stime
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode
        self.done.set()

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(f"    {x}" for x in text.splitlines()[-lines:])


def start(name: str, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    with log.open("wb") as fh:
        popen = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    return Proc(name, popen, log)


def stop_all(procs: Sequence[Proc]) -> None:
    """SIGTERM the process groups this bench started that still run (on failure only)."""
    import signal

    for proc in procs:
        if not proc.done.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
    for proc in procs:
        if not proc.done.wait(30):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)


def listening(port: int) -> bool:
    """Whether a socket listens on loopback ``port`` (from the kernel's table: a test
    connection would be taken as the RTMP listener's one publisher)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.read().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if local.endswith(f":{port:04X}") and state == "0A":
                    return True
    return False


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time (counted in user already)
    return total - idle, total


class RssSampler(threading.Thread):
    """Every ``SAMPLE_S``: VmHWM of every process below this one, by kind, and the sum of
    their VmRSS (the whole deployment's footprint at that moment)."""

    def __init__(self, recorder_pids: Callable[[], set[int]]) -> None:
        super().__init__(daemon=True)
        self.recorder_pids = recorder_pids
        self.peak_kib: dict[str, int] = {}
        self.peak_total_kib = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_S):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def sample(self) -> None:
        recorders = self.recorder_pids()
        total = 0
        for pid, parent in _descendants(os.getpid()):
            name, hwm, rss = _status(pid)
            if not name:
                continue
            if pid in recorders:
                kind = "recorder (python)"
            elif name.startswith("python"):
                continue  # forked, not yet exec'd (an ffmpeg to be): its parent's pages
            elif parent in recorders:
                kind = f"recorder's {name}"
            else:
                kind = f"pusher {name}" if name == "ffmpeg" else name
            self.peak_kib[kind] = max(self.peak_kib.get(kind, 0), hwm)
            total += rss
        self.peak_total_kib = max(self.peak_total_kib, total)


def _descendants(root: int) -> Iterator[tuple[int, int]]:
    stack = [root]
    while stack:
        parent = stack.pop()
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                with contextlib.suppress(OSError):
                    children += [int(x) for x in (task / "children").read_text().split()]
        for child in children:
            yield child, parent
            stack.append(child)


def _status(pid: int) -> tuple[str, int, int]:
    name, hwm, rss = "", 0, 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Name:"):
                name = line.split()[1]
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return name, hwm, rss


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Stream:
    number: int
    device: str
    url: str
    offset_s: float  # into the clip
    delay_s: float  # after stream 0's start


@dataclass
class Outcome:
    streams: list[Stream]
    recorders: list[Proc]
    pushers: list[Proc]
    timings: list[dict[str, Any]]
    pushed_at: float  # first pusher started
    streams_end: float  # last pusher ended
    all_done: float  # last recorder exited
    listening_s: float  # from starting the recorders to all of them listening
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    machine_busy_streams: float  # share of all cores, first push to last pusher's end
    machine_busy_catchup: float  # from then to the last recorder's exit
    rss: RssSampler
    parent_cpu_s: float
    work: Path


def push_command(ffmpeg: str, clip: Path, stream: Stream, seconds: float) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-ss", f"{stream.offset_s:g}", "-i", str(clip), "-t", f"{seconds:g}",
        "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", "-f", "flv", stream.url,
    ]  # fmt: skip


def run(args: argparse.Namespace, ffmpeg: str, clip: Path, work: Path) -> Outcome:
    from interfaces.devservices.base import free_port
    from workers.app import build_app
    from workers.settings import Settings

    data = work / "data"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # A deployment's first start: catalogue migrated, development signing key made; the 16
    # recorders then start on a ready data dir (SQLite migrations are not made for 16
    # processes racing on a fresh file).
    settings = Settings(data_dir=data, segment_seconds=args.segment_seconds)  # type: ignore[call-arg]
    app = build_app(settings)
    app.stop()
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(data),
        "VIGIL_SEGMENT_SECONDS": f"{args.segment_seconds:g}",
        "VIGIL_FFMPEG": ffmpeg,
    }
    streams = [
        Stream(
            n, f"CAM-{n:02d}", f"rtmp://127.0.0.1:{free_port()}/live/CAM-{n:02d}", float(n),
            0.0 if args.together else n * args.segment_seconds / args.streams,
        )
        for n in range(args.streams)
    ]  # fmt: skip
    load_start = os.getloadavg()
    recorders: list[Proc] = []
    pushers: list[Proc] = []
    recorder_pids: set[int] = set()
    rss = RssSampler(lambda: recorder_pids)
    parent_cpu = resource.getrusage(resource.RUSAGE_SELF)
    try:
        began = time.monotonic()
        for s in streams:
            cmd = [
                sys.executable, str(Path(__file__).resolve()), "--part", "recorder",
                "--url", s.url, "--device", s.device, "--timings", str(work / f"{s.device}.jsonl"),
                "--max-seconds", f"{args.seconds + 120:g}",
            ]  # fmt: skip
            recorders.append(start(f"recorder {s.device}", cmd, logs / f"{s.device}.log", env))
            recorder_pids.add(recorders[-1].popen.pid)
        rss.start()
        ports = [int(s.url.split(":")[2].split("/")[0]) for s in streams]
        while not all(listening(p) for p in ports):
            failed = [r for r in recorders if r.done.is_set()]
            if failed:
                raise RuntimeError(f"{failed[0].name} exited early:\n{failed[0].tail()}")
            if time.monotonic() - began > 120:
                raise RuntimeError("the recorders' RTMP listeners did not come up in 120 s")
            time.sleep(0.05)
        listening_s = time.monotonic() - began
        busy0, total0 = machine_cpu()
        pushed_at = time.time()
        for s in streams:
            time.sleep(max(0.0, pushed_at + s.delay_s - time.time()))
            cmd = push_command(ffmpeg, clip, s, args.seconds)
            pushers.append(start(f"pusher {s.device}", cmd, logs / f"push-{s.device}.log"))
        for p in pushers:
            if not p.done.wait(args.seconds + 60):
                raise RuntimeError(f"{p.name} still running after {args.seconds + 60:g} s")
            if p.returncode != 0:
                raise RuntimeError(f"{p.name} failed (exit {p.returncode}):\n{p.tail()}")
        streams_end = max(p.ended or 0.0 for p in pushers)
        busy1, total1 = machine_cpu()
        for r in recorders:
            if not r.done.wait(args.catchup_timeout):
                raise RuntimeError(f"{r.name} not finished {args.catchup_timeout:g} s after")
            if r.returncode != 0:
                raise RuntimeError(f"{r.name} failed (exit {r.returncode}):\n{r.tail()}")
        all_done = max(r.ended or 0.0 for r in recorders)
        busy2, total2 = machine_cpu()
    finally:
        stop_all([*pushers, *recorders])
        rss.stop()
    me = resource.getrusage(resource.RUSAGE_SELF)
    timings: list[dict[str, Any]] = []
    for s in streams:
        path = work / f"{s.device}.jsonl"
        for line in path.read_text().splitlines() if path.exists() else []:
            timings.append({**json.loads(line), "device": s.device})
    return Outcome(
        streams=streams,
        recorders=recorders,
        pushers=pushers,
        timings=timings,
        pushed_at=pushed_at,
        streams_end=streams_end,
        all_done=all_done,
        listening_s=listening_s,
        load_start=load_start,
        load_end=os.getloadavg(),
        machine_busy_streams=(busy1 - busy0) / max(total1 - total0, 1.0),
        machine_busy_catchup=(busy2 - busy1) / max(total2 - total1, 1.0),
        rss=rss,
        parent_cpu_s=me.ru_utime + me.ru_stime - parent_cpu.ru_utime - parent_cpu.ru_stime,
        work=work,
    )


# --------------------------------------------------------------------------- checking


@dataclass
class Catalogued:
    """What the catalogue says, read after every recorder has exited."""

    recordings: dict[str, Any]  # device -> Recording
    segments: dict[str, list[Any]]  # recording id -> Segment rows
    hashed_at: dict[tuple[str, int], float]  # (recording, index) -> segment.hashed event time
    stored_events: dict[str, list[int]]  # recording id -> segment.stored indices
    stored_at: dict[tuple[str, int], float]  # (recording, index) -> segment.stored event time
    complete_at: dict[str, float]  # recording id -> its catalogue (complete) event time
    ended: dict[str, str]  # recording id -> live.ended reason
    problems: list[str]
    checked_segments: int = 0
    checked_bytes: int = 0


def check(data: Path, outcome: Outcome, segment_s: float, seconds: float) -> Catalogued:
    from store.base import sha256_file
    from workers.app import build_app
    from workers.settings import Settings

    settings = Settings(data_dir=data, segment_seconds=segment_s)  # type: ignore[call-arg]
    app = build_app(settings)
    try:
        recordings = {r.device_id: r for r in app.catalog.recordings()}
        result = Catalogued(recordings, {}, {}, {}, {}, {}, {}, [])
        timed: dict[str, list[int]] = {}
        for t in outcome.timings:
            if t["kind"] == "segment":
                timed.setdefault(t["recording"], []).append(t["index"])
        for stream in outcome.streams:
            rec = recordings.get(stream.device)
            if rec is None:
                result.problems.append(f"{stream.device}: no recording")
                continue
            rows = app.catalog.segments(rec.id)
            result.segments[rec.id] = rows
            for event in app.catalog.events(recording_ids=[rec.id]):
                detail = json.loads(event.detail) if event.detail else {}
                at = event.at.timestamp()
                if event.action == "segment.hashed":
                    result.hashed_at[(rec.id, detail["index"])] = at
                elif event.action == "segment.stored":
                    result.stored_events.setdefault(rec.id, []).append(detail["index"])
                    result.stored_at[(rec.id, detail["index"])] = at
                elif event.action == "catalogue":
                    result.complete_at[rec.id] = at
                elif event.action == "live.ended":
                    result.ended[rec.id] = detail.get("reason", "?")
            problems = []
            indices = [s.index for s in rows]
            if rec.status != "complete":
                problems.append(f"status {rec.status}")
            if rec.damage:
                problems.append(f"damage: {rec.damage}")
            if result.ended.get(rec.id) != "end of stream":
                problems.append(f"ended: {result.ended.get(rec.id)}")
            if not rows or indices != list(range(len(rows))):
                problems.append(f"segment indices {indices[:3]}..{indices[-3:]} not 0..n-1")
            if rec.segment_count != len(rows):
                problems.append(f"segment_count {rec.segment_count} != {len(rows)} rows")
            if sorted(timed.get(rec.id, [])) != indices:
                problems.append(f"{len(timed.get(rec.id, []))} segments closed and stored by the"
                                f" recorder, {len(rows)} catalogued")  # fmt: skip
            if result.stored_events.get(rec.id, []) != indices:
                problems.append("segment.stored events do not match the segments")
            footage = (rows[-1].end_s - rows[0].start_s) if rows else 0.0
            if not seconds - 1.0 <= footage <= seconds + 0.5:
                problems.append(f"footage {footage:.2f} s of {seconds:g} s pushed")
            for s in rows:
                with app.store.local_path("derived", s.key) as path:
                    sha, size = sha256_file(path)
                result.checked_segments += 1
                result.checked_bytes += size
                if (sha, size) != (s.sha256, s.size):
                    problems.append(f"segment {s.index}: stored bytes hash {sha[:12]}… size"
                                    f" {size}, catalogue {s.sha256[:12]}… {s.size}")  # fmt: skip
                if not s.phash_frames:
                    problems.append(f"segment {s.index}: no perceptual hashes")
            with app.store.local_path("originals", rec.original_key) as path:
                sha, size = sha256_file(path)
            if (sha, size) != (rec.sha256, rec.size):
                problems.append("original: stored bytes differ from the catalogue's hash")
            result.problems += [f"{stream.device} {rec.id}: {p}" for p in problems]
        return result
    finally:
        app.stop()


# --------------------------------------------------------------------------- report


def percentiles(values: Sequence[float]) -> tuple[float, float, float, float]:
    import numpy as np

    if not values:
        return (float("nan"),) * 4
    a = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return float(p50), float(p90), float(p99), float(a.max())


def dist(title: str, values: Sequence[float]) -> str:
    p50, p90, p99, top = percentiles(values)
    return f"  {title:<52} {p50:7.3f} {p90:7.3f} {p99:7.3f} {top:7.3f}"


def environment(ffmpeg: str) -> list[str]:
    from bench.pipeline import environment_lines

    return environment_lines(ffmpeg)[:-1]  # its load line is printed by this report


def report(
    args: argparse.Namespace, env: list[str], clip_line: str, outcome: Outcome,
    cat: Catalogued,
) -> list[str]:  # fmt: skip
    segs = [t for t in outcome.timings if t["kind"] == "segment"]
    drains = [t for t in outcome.timings if t["kind"] == "drain"]
    usages = [t for t in outcome.timings if t["kind"] == "rusage"]
    latency = [t["on_record"] - t["closed"] for t in segs]
    n_streams = len(outcome.streams)
    lines = [*env]
    load = outcome.load_start
    lines.append(f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    lines.append(clip_line)
    lines.append(
        f"deployment: {n_streams} `vigil live --listen rtmp://127.0.0.1:PORT/live/CAM-NN"
        f" --max-outage 0` processes on one data dir (embedded defaults: SQLite catalogue, local"
        f" folder store on {fs_type(outcome.work)},"
        " in-process bus drained after each segment: the dense index runs on each recorder's"
        " storing thread)"
    )
    lines.append(
        f"streams: {n_streams} x {args.seconds:g} s, segments {args.segment_seconds:g} s, pushed"
        " with ffmpeg -re -c copy -f flv, stream i from i s into the clip, "
        + (
            "all started at once"
            if args.together
            else f"started {args.segment_seconds / n_streams:.3f} s apart"
        )
        + f"; recorders listening {outcome.listening_s:.1f} s after they were started"
    )
    lines += [
        "",
        "latency = on record (SegmentWriter.add returned: the custody path done, i.e. its"
        " hashes made, the segment stored write-once and catalogued with its segment.stored"
        " event, committed) - closed (the segment file's mtime: ffmpeg's last write before it"
        " closed it and listed it in segments.csv)",
        f"segments on record: {len(segs)} ({n_streams} streams)",
        f"  {'seconds':<52} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}",
        dist("latency: closed -> on record", latency),
        dist(
            "  closed -> recorder read its segments.csv row",
            [t["seen"] - t["closed"] for t in segs if t["seen"] is not None],
        ),
        dist(
            "  read -> storing began (queued behind drains)",
            [t["began"] - t["seen"] for t in segs if t["seen"] is not None],
        ),
        dist("  storing (SegmentWriter.add)", [t["on_record"] - t["began"] for t in segs]),
        *(
            [dist("    keyframe hashes (ffmpeg + PDQ)", [t["parts"]["keyframes"] for t in segs])]
            if all("keyframes" in t["parts"] for t in segs)
            else []
        ),
        dist("    sha256", [t["parts"].get("sha256", 0.0) for t in segs]),
        dist(
            "    store.put_file (local folder, fsync)", [t["parts"].get("store", 0.0) for t in segs]
        ),
        dist(
            "    catalogue: row + segment.stored event, committed",
            [t["parts"].get("catalogue", 0.0) for t in segs],
        ),
        dist(
            "    the rest (chain link, pydantic, first row)",
            [t["on_record"] - t["began"] - sum(t["parts"].values()) for t in segs],
        ),
        dist(
            "bus drain after each segment (dense index, inline)",
            [d["ended"] - d["began"] for d in drains],
        ),
        dist(
            "catalogue's segment.stored `at` - closed (cross-check)",
            [
                cat.stored_at[(t["recording"], t["index"])] - t["closed"]
                for t in segs
                if (t["recording"], t["index"]) in cat.stored_at
            ],
        ),
    ]
    # Latency by when the segment closed: does it stay flat or grow (falling behind)?
    if segs:
        first = min(t["closed"] for t in segs)
        width = max(args.seconds / 6, args.segment_seconds)
        buckets: dict[int, list[float]] = {}
        for t, value in zip(segs, latency, strict=True):
            buckets.setdefault(int((t["closed"] - first) // width), []).append(value)
        lines.append("latency by when the segment closed (s after the first close):")
        for b in sorted(buckets):
            p50, _p90, p99, top = percentiles(buckets[b])
            lines.append(
                f"  {b * width:5.0f}-{(b + 1) * width:<5.0f} {len(buckets[b]):4d} segments:"
                f" p50 {p50:6.3f}  p99 {p99:6.3f}  max {top:6.3f}"
            )
    p99 = percentiles(latency)[2]
    lines += ["", f"latency p99: {p99:.2f} s (target < {TARGET_P99_S:g} s)", ""]

    # The dense index and the recordings behind the streams.
    end = outcome.streams_end
    hashed = [(t, cat.hashed_at.get((t["recording"], t["index"]))) for t in segs]
    index_latency = [h - t["closed"] for t, h in hashed if h is not None]
    behind = [t for t, h in hashed if h is None or h > end]
    closed_by_end = [t for t in segs if t["closed"] <= end]
    custody_behind = [t for t in closed_by_end if t["on_record"] > end]
    lines.append(
        f"when the streams ended (the last pusher finished, {end - outcome.pushed_at:.1f} s"
        " after the first started):"
    )
    lines.append(
        f"  custody: {len(closed_by_end)} segments closed, {len(custody_behind)} of them not yet"
        f" on record; every segment on record {max(t['on_record'] for t in segs) - end:+.1f} s"
        " after (the streams' last segments close when their stream ends)"
    )
    lagged_s = sum(t["end_s"] - t["start_s"] for t in behind)
    last_hash = max((h for _t, h in hashed if h is not None), default=float("nan"))
    lines.append(
        f"  dense index (per-frame PDQ): {len(segs) - len(behind)} of {len(segs)} segments"
        f" hashed, {len(behind)} behind ({lagged_s:.0f} s of footage, {lagged_s / n_streams:.1f} s"
        f" per stream); caught up {last_hash - end:+.1f} s after"
    )
    complete = [cat.complete_at.get(r.id) for r in cat.recordings.values()]
    done = [c for c in complete if c is not None]
    lines.append(
        f"  recordings: {sum(1 for c in done if c <= end)} of {n_streams} complete;"
        f" all complete {max(done, default=float('nan')) - end:+.1f} s after (original stored,"
        f" playlist, finalise); last recorder exited {outcome.all_done - end:+.1f} s after"
    )
    lines.append(f"  {'seconds':<52} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    lines.append(dist("dense index latency: closed -> segment.hashed", index_latency))
    lines.append("")

    # Resources.
    rec_cpu = sum(r.cpu_s for r in outcome.recorders)
    push_cpu = sum(p.cpu_s for p in outcome.pushers)
    py_cpu = sum(u["cpu_self"] for u in usages)
    ff_cpu = sum(u["cpu_children"] for u in usages)
    wall = outcome.all_done - outcome.pushed_at
    cores = os.cpu_count() or 1
    lines.append(
        f"CPU: {rec_cpu + push_cpu:.1f} s over {wall:.1f} s from the first push to the last"
        f" recorder's exit = {(rec_cpu + push_cpu) / wall:.2f} cores (startup included):"
        f" recorders {rec_cpu:.1f} s (python {py_cpu:.1f} + their ffmpeg {ff_cpu:.1f}),"
        f" pushers {push_cpu:.1f} s, this script {outcome.parent_cpu_s:.1f} s"
    )
    lines.append(
        f"machine busy (all processes, other users' too): {outcome.machine_busy_streams:.0%} of"
        f" {cores} cores while streaming, {outcome.machine_busy_catchup:.0%} while catching up"
    )
    peaks = outcome.rss.peak_kib
    rec_rss = [u["maxrss_kib"] for u in usages]
    lines.append(
        f"peak RSS: recorder python max {max(rec_rss, default=0) / MIB:.0f} MiB (sum of the"
        f" {len(rec_rss)} peaks {sum(rec_rss) / MIB:.0f} MiB); "
        + ", ".join(
            f"{kind} {kib / MIB:.0f} MiB"
            for kind, kib in sorted(peaks.items())
            if kind != "recorder (python)"
        )
        + f"; all processes together {outcome.rss.peak_total_kib / MIB:.0f} MiB"
        f" (VmHWM/VmRSS sampled every {SAMPLE_S:g} s)"
    )
    load = outcome.load_end
    lines.append(f"load average at end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    lines.append("")

    # Correctness.
    ok = not cat.problems and len(cat.recordings) == n_streams
    footage = [rows[-1].end_s - rows[0].start_s for rows in cat.segments.values() if rows]
    lines.append(
        f"correctness: {'OK' if ok else 'FAILED'}: {len(cat.recordings)} recordings,"
        f" {sum(1 for r in cat.recordings.values() if r.status == 'complete')} complete, ended by"
        f" {sorted(set(cat.ended.values()))}; {cat.checked_segments} segments (indices 0..n-1,"
        f" one segment.stored event each, = what the recorders stored), stored bytes' sha256 ="
        f" catalogue's for every one ({cat.checked_bytes / 1e6:.0f} MB re-read), originals'"
        f" sha256 = catalogue's, every segment densely indexed; footage per stream"
        f" {min(footage, default=0):.2f}-{max(footage, default=0):.2f} s of {args.seconds:g} s"
    )
    lines += [f"  PROBLEM {p}" for p in cat.problems[:40]]
    missing = sorted({m for t in segs for m in t.get("missing", [])})
    if missing:
        lines.append(f"timing hooks not installed (code changed?): {', '.join(missing)}")
    return lines


def fs_type(path: Path) -> str:
    """The filesystem type of ``path`` (from /proc/mounts: the longest mount point above it)."""
    best, kind = "", "?"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount, fstype = parts[1], parts[2]
            if resolved.startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


# --------------------------------------------------------------------------- main


def prepare_clip(ffmpeg: str) -> Path:
    from bench.pipeline import render, spec_digest
    from transcode.samples import SampleSpec

    spec = SampleSpec(
        duration_s=CLIP_SECONDS, width=1280, height=720, fps=30, gop_s=1.0,
        video_bitrate="3M", seed=7,
    )  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    return render(ffmpeg, spec, CACHE / f"live-{spec_digest(spec)}.mp4")


def describe(ffmpeg: str, clip: Path) -> str:
    from transcode.ffmpeg import ProcessRunner
    from transcode.probe import probe

    probed = probe(ProcessRunner(), ffmpeg, clip)
    video = probed.video
    assert video is not None
    duration = video.end_s - video.start_s
    keys = video.keyframe_times()
    gop = float((keys[-1] - keys[0]) / (keys.size - 1)) if keys.size > 1 else duration
    mbps = clip.stat().st_size * 8 / duration / 1e6
    audio = probed.audio.stream.codec if probed.audio else "-"
    return (
        f"clip: {clip.name}: {duration:.1f} s {video.stream.width}x{video.stream.height}"
        f" {video.fps:.0f} fps {video.stream.codec}/{audio},"
        f" GOP {gop:.2f} s, {mbps:.2f} Mbps"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s streams (under a minute)")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--seconds", type=float, help="stream length (default 60, quick 20)")
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument(
        "--together", action="store_true", help="start every stream at once (closes in bursts)"
    )
    parser.add_argument("--work", type=Path, help="scratch folder, kept (default: a temp dir)")
    parser.add_argument("--catchup-timeout", type=float, default=900.0, help=argparse.SUPPRESS)
    # internal: one recorder process
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--timings", help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 20.0 if args.quick else 60.0
    if args.seconds + args.streams - 1 > CLIP_SECONDS:
        parser.error(f"--seconds + --streams - 1 must fit in the {CLIP_SECONDS:g} s clip")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part == "recorder":
        return recorder_part(args)
    from transcode.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    clip = prepare_clip(ffmpeg)
    env = environment(ffmpeg)
    clip_line = describe(ffmpeg, clip)
    with contextlib.ExitStack() as stack:
        if args.work is not None:
            work = args.work.resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-live-")))
        print(f"  {args.streams} recorders starting, then {args.seconds:g} s of streams ...",
              file=sys.stderr, flush=True)  # fmt: skip
        outcome = run(args, ffmpeg, clip, work)
        print("  checking the catalogue and the stored bytes ...", file=sys.stderr, flush=True)
        cat = check(work / "data", outcome, args.segment_seconds, args.seconds)
        lines = report(args, env, clip_line, outcome, cat)
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"live-{'quick' if args.quick else 'full'}.txt").write_text(text + "\n")
    return 0 if not cat.problems else 1


if __name__ == "__main__":
    sys.exit(main())
