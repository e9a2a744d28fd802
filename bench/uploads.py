"""Uploads near the floor: devices sending recordings by Vigil's resumable protocol, against a
bare FastAPI endpoint doing the same receive, SHA-256 check, write and fsync per chunk, in the
same run.

Run from the repo root:

    .venv/bin/python bench/uploads.py                   # 1 device x 1 GB; 8 devices x >= 200 MB
    .venv/bin/python bench/uploads.py --quick           # 1 x 150 MB; 4 x 40 MB (a few minutes)
    .venv/bin/python bench/uploads.py --profile-finish  # + a cProfile of finish in the server

Options: ``--one-mb``, ``--each-mb``, ``--devices``, ``--chunk-mib`` (16), ``--rounds`` (2),
``--cases one,many``, ``--work DIR`` (scratch parent), ``--repo DIR`` (run Vigil from another
checkout, e.g. ``git archive COMMIT | tar -x -C DIR``, to compare with an earlier version).

Each run gets a fresh server process on 127.0.0.1, started and made ready before the clock
starts, and stopped after:

- **vigil**: the API as ``vigil api`` serves it (``tests.load.serve_forever``: ``build_app`` on
  embedded defaults, folder store, SQLite, in-process bus, ``create_api`` with its background
  processing, ``uvicorn.run``), on a fresh data dir with one device principal per uploader.
  A device does ``POST /uploads``, ``PUT`` each chunk with its SHA-256 at the confirmed offset,
  then ``POST .../finish`` with the file's SHA-256; the clock stops when the last finish has
  answered ``complete``, ``may_delete``.
- **floor**: ``floor_app``: ``PUT /floor/{name}?offset=N`` with ``X-Chunk-SHA256``: the body
  received, its SHA-256 checked, written at ``offset`` and fsynced (in the thread pool, as the
  API does it); nothing else. The clock stops at the last chunk's answer.

Every device starts at once (one asyncio client process, one httpx client per device; the
device's file is read chunk by chunk from the page cache, its hashes computed beforehand, as a
device has them). The payloads are real video, since ingest probes them: 8 s 1280x720 testsrc2
clips with their own noise seed and tone at ~50 Mbps H.264/AAC, joined with ``-c copy`` (a
device's file starts at its own clip, so every file is distinct), cached in
``.cache/bench/uploads``. A warm-up run of each kind comes first and is not counted: the
first run of a case (the floor's) was up to twice as slow as the floor's later runs, at up to
2.7 times their CPU for the same work, which flattered every ratio against a median. Then
rounds run floor, vigil, vigil, floor, ...; the best run of each kind is compared. Output:
``bench/results/uploads.txt`` (``uploads-quick.txt`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench" / "uploads"
RESULTS = ROOT / "bench" / "results"
MB = 1_000_000
API = "/api/v1"
BASES = 8


def _import_path(repo: Path | None) -> None:
    """Vigil (and ``tests.load``) from ``repo``, else from this checkout."""
    where = str((repo or ROOT).resolve())
    if where not in sys.path:
        sys.path.insert(0, where)
    if repo is not None and str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # bench.machine, if the other checkout lacks it


# -- footage -------------------------------------------------------------------------------------


def base_command(ffmpeg: str, index: int, out: Path) -> list[str]:
    """An 8 s 1280x720 clip at ~50 Mbps: its own noise seed and tone."""
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=8",
        "-f", "lavfi", "-i", f"sine=frequency={300 + 40 * index}:sample_rate=48000:duration=8",
        "-vf", f"noise=alls=40:allf=t:all_seed={4000 + index}",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "50M", "-maxrate", "60M",
        "-bufsize", "60M", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        "-shortest", str(out),
    ]  # fmt: skip


def base_clips(ffmpeg: str) -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(repr(base_command("ffmpeg", 0, Path("x"))).encode()).hexdigest()[:10]
    paths = [CACHE / f"base-{tag}-{i}.mp4" for i in range(BASES)]
    for index, path in enumerate(paths):
        if not path.exists():
            partial = path.with_name(f".{path.name}.partial.mp4")
            subprocess.run(base_command(ffmpeg, index, partial), check=True, timeout=600)
            partial.replace(path)
    return paths


def recording(ffmpeg: str, bases: Sequence[Path], first: int, at_least: int) -> Path:
    """Base clips from ``first`` on, round and round, joined by stream copy until the file has
    ``at_least`` bytes (cached)."""
    parts: list[Path] = []
    while sum(p.stat().st_size for p in parts) < at_least * 1.01 + (1 << 20):
        parts.append(bases[(first + len(parts)) % len(bases)])
    out = CACHE / f"rec-{bases[0].stem.split('-')[1]}-{first}-{len(parts)}.mp4"
    if not out.exists():
        listing = CACHE / f".{out.stem}.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in parts))
        partial = out.with_name(f".{out.name}.partial.mp4")
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
             "-i", str(listing), "-map", "0", "-c", "copy", str(partial)],
            check=True, timeout=600,
        )  # fmt: skip
        partial.replace(out)
        listing.unlink()
    if out.stat().st_size < at_least:
        raise RuntimeError(f"{out}: {out.stat().st_size} bytes, fewer than {at_least}")
    return out


@dataclass(frozen=True)
class Payload:
    path: Path
    size: int
    sha256: str
    chunk_hashes: tuple[str, ...]


def payload(path: Path, chunk: int) -> Payload:
    """The file's hash and its chunks' (read once: it is in the page cache after)."""
    whole = hashlib.sha256()
    hashes = []
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            whole.update(block)
            hashes.append(hashlib.sha256(block).hexdigest())
    return Payload(path, path.stat().st_size, whole.hexdigest(), tuple(hashes))


# -- the servers ---------------------------------------------------------------------------------


def floor_app(folder: Path) -> FastAPI:
    """The floor: receive, SHA-256 check, write at the offset, fsync; nothing else."""
    app = FastAPI()
    folder.mkdir(parents=True, exist_ok=True)

    @app.put("/floor/{name}")
    async def put(
        name: str, request: Request, offset: int, x_chunk_sha256: str = Header()
    ) -> dict[str, int]:
        if not name.isalnum():
            raise HTTPException(422, "name")
        parts = [part async for part in request.stream()]

        def write() -> int:
            data = b"".join(parts)
            if hashlib.sha256(data).hexdigest() != x_chunk_sha256:
                raise HTTPException(422, "chunk hash")
            path = folder / name
            with path.open("r+b" if path.exists() else "wb") as fh:
                fh.truncate(offset)
                fh.seek(offset)
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            return offset + len(data)

        return {"offset": await run_in_threadpool(write)}

    return app


def profile_finish(out: Path) -> None:
    """Wrap ``UploadService.finish`` in this process with a cProfile per call; the merged
    report (top calls by cumulative time) is rewritten to ``out`` after every call."""
    import cProfile
    import io
    import pstats
    import threading

    from ingest.uploads import UploadService

    original = UploadService.finish
    lock = threading.Lock()
    profiles: list[cProfile.Profile] = []
    walls: list[float] = []

    def finish(self: Any, *args: Any, **kwargs: Any) -> Any:
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        try:
            return original(self, *args, **kwargs)
        finally:
            profile.disable()
            with lock:
                walls.append(time.perf_counter() - started)
                profiles.append(profile)
                text = io.StringIO()
                stats = pstats.Stats(profiles[0], stream=text)
                for more in profiles[1:]:
                    stats.add(more)
                stats.sort_stats("cumulative").print_stats(30)
                head = f"finish calls: {len(walls)}; wall s: {', '.join(f'{w:.3f}' for w in walls)}"
                out.write_text(head + "\n" + text.getvalue())

    put_walls: list[float] = []
    put_chunk = UploadService.put_chunk

    def timed_put(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return put_chunk(self, *args, **kwargs)
        finally:
            put_walls.append(time.perf_counter() - started)
            (out.parent / f"put-{out.name}").write_text(
                " ".join(f"{w * 1000:.0f}" for w in put_walls) + "\n"
            )

    UploadService.finish = finish  # type: ignore[method-assign]
    UploadService.put_chunk = timed_put  # type: ignore[method-assign]


def serve(kind: str, where: Path, port: int, profile: Path | None) -> None:
    """The server side of ``server`` (this file run with ``--serve``)."""
    import uvicorn

    if kind == "floor":
        uvicorn.run(floor_app(where), host="127.0.0.1", port=port, log_level="warning")
        return
    if profile is not None:
        profile_finish(profile)
    from tests.load import serve_forever

    if kind == "vigil":
        serve_forever(where, port)
        return
    # "vigil-nobg": the same without the API's background processing (a diagnosis only: what
    # segmenting the first finished uploads costs the uploads still coming in).
    from interfaces.api.app import create_api
    from tests.load import SECRET, settings_for
    from workers.app import build_app

    app = build_app(settings_for(where))
    try:
        api = create_api(app, secret=SECRET.encode(), background=False)
        uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")
    finally:
        app.stop()


def process_cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid`` so far: its threads, and the children it has waited for
    (ffmpeg), user and system (/proc; psutil is not installed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(
    kind: str, where: Path, args: argparse.Namespace, profile: Path | None, cpu: list[float]
) -> Iterator[str]:
    """The server, until the block ends; ``cpu`` gets its CPU seconds then (before it stops:
    background work after the run is not counted)."""
    from tests.load import free_port

    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, str(where), str(port)]
    if args.repo is not None:
        cmd += ["--repo", str(args.repo)]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    proc = subprocess.Popen(cmd, cwd=args.repo or ROOT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        yield url
    finally:
        with contextlib.suppress(OSError, ValueError):
            cpu.append(process_cpu_s(proc.pid))
        proc.terminate()  # its background work is not timed: it need not finish
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.1)


def prepare(data_dir: Path, devices: int) -> list[tuple[str, str]]:
    """A fresh data dir with one device principal per uploader: (device id, token) each."""
    from tests.load import settings_for
    from workers.app import build_app

    vigil = build_app(settings_for(data_dir))
    try:
        cast = []
        for i in range(devices):
            pid, device = f"dev-{i:03d}", f"BC-U{i:03d}"
            vigil.access.add_principal(
                pid, "device", display_name=pid, actor="bench", device_id=device
            )
            cast.append((device, vigil.access.issue_token(pid, label="b", actor="bench").token))
        return cast
    finally:
        vigil.stop()


# -- the load ------------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str
    devices: int
    size: int
    wall_s: float = 0.0
    chunks: list[float] = field(default_factory=list)
    finishes: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server_cpu_s: float | None = None  # the server process's CPU seconds, until the run ended

    @property
    def mb_s(self) -> float:
        return self.size / MB / self.wall_s if self.wall_s else 0.0


async def device(
    url: str, token: str | None, name: str, load: Payload, chunk: int, run: Run
) -> None:
    from tests.load import client_for

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client_for(url, headers, 600) as client:
        target = f"/floor/{name}"
        if token is not None:
            started = await client.post(
                f"{API}/uploads",
                json={"device_id": name, "size": load.size, "original_name": load.path.name},
            )
            if started.status_code != 201:
                run.errors.append(f"start: {started.status_code} {started.text[:200]}")
                return
            target = f"{API}/uploads/{started.json()['upload_id']}"
        with load.path.open("rb") as fh:
            for index, sha in enumerate(load.chunk_hashes):
                offset = index * chunk
                data = await asyncio.to_thread(os.pread, fh.fileno(), chunk, offset)
                began = time.perf_counter()
                sent = await client.put(
                    target,
                    params={"offset": offset},
                    content=data,
                    headers={"X-Chunk-SHA256": sha, "Content-Type": "application/octet-stream"},
                )
                run.chunks.append(time.perf_counter() - began)
                if sent.status_code != 200 or sent.json()["offset"] != offset + len(data):
                    run.errors.append(f"chunk at {offset}: {sent.status_code} {sent.text[:200]}")
                    return
        if token is not None:
            began = time.perf_counter()
            done = await client.post(f"{target}/finish", json={"sha256": load.sha256})
            run.finishes.append(time.perf_counter() - began)
            body = done.json() if done.status_code == 200 else {}
            if not (body.get("may_delete") and body.get("sha256") == load.sha256):
                run.errors.append(f"finish: {done.status_code} {done.text[:300]}")


def one_run(kind: str, loads: Sequence[Payload], args: argparse.Namespace, work: Path) -> Run:
    chunk = args.chunk_mib << 20
    run = Run(kind, len(loads), sum(load.size for load in loads))
    scratch = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
    profile = args.profile_dir / f"finish-{len(loads)}.txt" if args.profile_dir else None
    try:
        cast: list[tuple[str, str | None]]
        if kind == "vigil":
            cast = list(prepare(scratch / "vigil", len(loads)))
        else:
            cast = [(f"dev{i:02d}{uuid.uuid4().hex[:8]}", None) for i in range(len(loads))]
        where = scratch / ("vigil" if kind == "vigil" else "floor")
        served = "vigil-nobg" if kind == "vigil" and args.no_background else kind
        cpu: list[float] = []
        with server(served, where, args, profile if kind == "vigil" else None, cpu) as url:

            async def all_devices() -> None:
                await asyncio.gather(
                    *(
                        device(url, tok, name, ld, chunk, run)
                        for (name, tok), ld in zip(cast, loads, strict=True)
                    )
                )

            began = time.perf_counter()
            asyncio.run(all_devices())
            run.wall_s = time.perf_counter() - began
        run.server_cpu_s = cpu[0] if cpu else None
    finally:
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    return run


# -- the report ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "-"


def case_lines(name: str, runs: Sequence[Run], target: float) -> list[str]:
    first = runs[0]
    lines = [
        "",
        f"case {name}: {first.devices} device(s) at once, {first.size / MB:.1f} MB in all"
        f" ({first.size / first.devices / MB:.1f} MB each)",
        f"  {'run':<6} {'wall s':>7} {'MB/s':>7} {'PUT p50':>8} {'PUT p99':>8}"
        f" {'finish p50':>11} {'finish p99':>11} {'errors':>6} {'server CPU s':>12}"
        "   (latencies in ms)",
    ]
    for run in runs:
        cpu = f"{run.server_cpu_s:.2f}" if run.server_cpu_s is not None else "-"
        lines.append(
            f"  {run.kind:<6} {run.wall_s:>7.2f} {run.mb_s:>7.1f} {_ms(run.chunks, 50):>8}"
            f" {_ms(run.chunks, 99):>8} {_ms(run.finishes, 50):>11} {_ms(run.finishes, 99):>11}"
            f" {len(run.errors):>6} {cpu:>12}"
        )
    best = {
        kind: max((r for r in runs if r.kind == kind and not r.errors), key=lambda r: r.mb_s)
        for kind in ("floor", "vigil")
        if any(r.kind == kind and not r.errors for r in runs)
    }
    if len(best) == 2:
        ratio = best["vigil"].mb_s / best["floor"].mb_s
        medians = {
            k: statistics.median(r.mb_s for r in runs if r.kind == k and not r.errors) for k in best
        }
        lines.append(
            f"  best: floor {best['floor'].mb_s:.1f} MB/s, vigil {best['vigil'].mb_s:.1f} MB/s;"
            f" median floor {medians['floor']:.1f}, vigil {medians['vigil']:.1f}"
        )
        lines.append(
            f"ratio {name} vigil/floor: {ratio:.2f} (best runs; median runs"
            f" {medians['vigil'] / medians['floor']:.2f}; target >= {target})"
        )
    for run in runs:
        lines += [f"  {run.kind} error: {e}" for e in run.errors[:5]]
    return lines


def header(args: argparse.Namespace) -> list[str]:
    from bench.machine import cpu_model

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=ROOT, check=False)
        return done.stdout.strip() or "unknown"

    dirty = "dirty" if git("status", "--porcelain") != "unknown" else "clean"
    return [
        f"git commit: {git('rev-parse', '--short', 'HEAD')} (worktree {dirty})"
        f"{f'; Vigil from {args.repo}' if args.repo else ''};"
        f" date {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"machine: {cpu_model()}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f} at start",
        "note: a shared 2-core machine (a CI run and other jobs beside it): compare only ratios"
        " measured in the same run",
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"chunks: {args.chunk_mib} MiB; rounds: {args.rounds} (floor, vigil, vigil, floor, ...)"
        f"{', after a warm-up run of each, not counted' if args.warmup else ''};"
        " each run a fresh server process on 127.0.0.1; vigil counted until finish answered"
        + ("; vigil WITHOUT its background processing (diagnosis)" if args.no_background else ""),
    ]


def run_case(
    name: str, loads: Sequence[Payload], args: argparse.Namespace, work: Path
) -> list[Run]:
    for kind in ("floor", "vigil")[: 2 * args.warmup]:  # settles the machine; not counted
        run = one_run(kind, loads, args, work)
        print(f"  {name} {kind} (warm-up, not counted): {run.mb_s:.1f} MB/s", flush=True)
    runs = []
    for round_ in range(args.rounds):
        order = ("floor", "vigil") if round_ % 2 == 0 else ("vigil", "floor")
        for kind in order:
            run = one_run(kind, loads, args, work)
            print(
                f"  {name} {kind}: {run.mb_s:.1f} MB/s in {run.wall_s:.2f} s"
                f"{f', {len(run.errors)} errors' if run.errors else ''}",
                flush=True,
            )
            runs.append(run)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one-mb", type=float, help="the lone device's recording (1000)")
    parser.add_argument("--each-mb", type=float, help="each of the many devices' (200)")
    parser.add_argument("--devices", type=int, help="the many devices (8)")
    parser.add_argument("--chunk-mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--warmup",
        type=int,
        choices=(0, 1),
        default=1,
        help="one run of each kind first, not counted (1: the default)",
    )
    parser.add_argument("--cases", default="one,many")
    parser.add_argument("--work", type=Path, help="scratch parent (default: a temporary one)")
    parser.add_argument("--repo", type=Path, help="run Vigil from this checkout")
    parser.add_argument("--profile-finish", action="store_true")
    parser.add_argument(
        "--no-background",
        action="store_true",
        help="diagnosis: serve Vigil without the API's background processing",
    )
    parser.add_argument("--out", type=Path, help="report file (default: bench/results/...)")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "DIR", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _import_path(args.repo)
    if args.serve:
        kind, where, port = args.serve
        serve(kind, Path(where), int(port), args.profile_out)
        return 0
    one_mb = args.one_mb or (150 if args.quick else 1000)
    each_mb = args.each_mb or (40 if args.quick else 200)
    devices = args.devices or (4 if args.quick else 8)
    out = args.out or RESULTS / f"uploads{'-quick' if args.quick else ''}.txt"
    from transcode.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    bases = base_clips(ffmpeg)
    chunk = args.chunk_mib << 20
    cases: dict[str, tuple[Callable[[], list[Path]], float]] = {
        "one": (lambda: [recording(ffmpeg, bases, 0, int(one_mb * MB))], 0.85),
        "many": (
            lambda: [recording(ffmpeg, bases, i, int(each_mb * MB)) for i in range(devices)],
            0.9,
        ),
    }
    lines = header(args)
    with tempfile.TemporaryDirectory(prefix="vigil-uploads-", dir=args.work) as tmp:
        work = Path(tmp)
        args.profile_dir = work / "profiles" if args.profile_finish else None
        if args.profile_dir:
            args.profile_dir.mkdir()
        for name in args.cases.split(","):
            make, target = cases[name]
            loads = [payload(path, chunk) for path in make()]
            print(f"case {name}: {len(loads)} x {loads[0].size / MB:.1f} MB", flush=True)
            lines += case_lines(name, run_case(name, loads, args, work), target)
        for profile in sorted(args.profile_dir.glob("finish-*")) if args.profile_dir else []:
            puts = [float(w) for w in profile.with_name(f"put-{profile.name}").read_text().split()]
            lines += [
                "",
                f"in the server, last vigil run ({profile.stem}): put_chunk p50"
                f" {statistics.median(puts):.0f} ms, p99 {percentile(puts, 99):.0f} ms;"
                f" cProfile of finish:",
            ]
            lines += profile.read_text().splitlines()[:50]
    lines.append(f"load at end: {os.getloadavg()[0]:.2f}")
    print("\n".join(lines))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
