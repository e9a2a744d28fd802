"""The API under load: the engine of ``tests/integration/test_api_load.py`` (50 devices uploading
while 20 reviewers read, on loopback) and of ``bench/api_load.py``, which adds the report.

What the load does is told in ``bench/api_load.py``'s docstring. ``python -m tests.load DATA_DIR
PORT`` serves ``DATA_DIR`` the way ``vigil api`` does (the subprocess side of
``serve_subprocess``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import ssl
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ingest.service import RecordingMetadata
from interfaces.api.app import create_api
from interfaces.devservices.base import free_port
from tests.helpers import footage_cache, render_once
from transcode.ffmpeg import find_ffmpeg
from transcode.samples import find_font
from workers.app import Vigil, build_app
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"
CHUNK = 256 << 10
SEED_CASES = 4
SECRET = "api-load-bench-secret"
EXPECTED = {"POST /uploads": 201, "GET media range": 206}  # every other request: 200


# -- footage -------------------------------------------------------------------------------------


def clip_command(ffmpeg: str, index: int, out: Path, font: Path | None) -> list[str]:
    """A distinct 3-5 s 320x240 H.264/AAC clip: its own length, noise seed, caption and tone."""
    seconds = 3 + index % 3
    tone = f"sine=frequency={220 + 10 * index}:sample_rate=48000:duration={seconds}"
    text = ""
    if font is not None:
        text = (
            f",drawtext=fontfile={font}:text='LOAD {index:03d}':x=10:y=10:fontsize=20"
            ":fontcolor=white:box=1:boxcolor=black@0.6"
        )
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", tone,
        "-vf", f"noise=alls=24:allf=t:all_seed={1000 + index}{text}",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", "600k", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def make_clips(count: int, *, first: int = 0, folder: Path | None = None) -> list[Path]:
    """``count`` distinct clips (``first`` .. ``first + count - 1``), rendered once and cached
    (in ``folder``, by default the test footage's cache)."""
    folder = folder or footage_cache() / "api-load"
    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    font = find_font()
    folder.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(repr(clip_command("ffmpeg", 0, Path("x"), font)).encode()).hexdigest()
    paths = [folder / f"{tag[:12]}-{i:03d}.mp4" for i in range(first, first + count)]

    def render(index: int, path: Path) -> None:
        render_once(
            path,
            lambda partial: subprocess.run(
                clip_command(ffmpeg, index, partial, font), check=True, timeout=120
            ),
        )

    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(render, range(first, first + count), paths))
    return paths


# -- the server ----------------------------------------------------------------------------------


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, api_secret=SECRET)  # type: ignore[arg-type,call-arg]


@contextlib.contextmanager
def serve_in_thread(vigil: Vigil, *, secret: bytes = SECRET.encode()) -> Iterator[str]:
    """``create_api(vigil)`` on a uvicorn server in a thread on loopback; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_api(vigil, secret=secret), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def serve_forever(data_dir: Path, port: int) -> None:
    """What ``vigil api`` does, on ``data_dir`` (the subprocess side of ``serve_subprocess``)."""
    settings = settings_for(data_dir)
    app = build_app(settings)
    try:
        uvicorn.run(
            create_api(app, secret=settings.api_secret.get_secret_value().encode()),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    finally:
        app.stop()


@contextlib.contextmanager
def serve_subprocess(data_dir: Path) -> Iterator[str]:
    """The API as its own process (as ``vigil api`` runs it); yields its base URL."""
    with serve_process(data_dir) as (url, _pid):
        yield url


@contextlib.contextmanager
def serve_process(data_dir: Path) -> Iterator[tuple[str, int]]:
    """``serve_subprocess``, yielding the process ID with the URL (to read its CPU time)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.load", str(data_dir), str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API process exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the API process did not start")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the catalogue before the run ----------------------------------------------------------------


@dataclass
class Cast:
    devices: list[tuple[str, str, str]]  # (principal, device id, token)
    reviewers: list[tuple[str, str, str]]  # (principal, case id, token)
    supervisor: str  # token
    seed_recordings: dict[str, str]  # case id -> recording id


def prepare(vigil: Vigil, devices: int, reviewers: int, seed_clips: Sequence[Path]) -> Cast:
    """Principals and tokens; ``seed_clips`` ingested and linked, one case each."""
    access = vigil.access
    cast = Cast([], [], "", {})
    access.add_principal("sup", "supervisor", display_name="Supervisor", actor="bench")
    cast.supervisor = access.issue_token("sup", label="bench", actor="bench").token
    for n, clip in enumerate(seed_clips):
        case_id = f"CASE-{n + 1:02d}"
        metadata = RecordingMetadata.model_validate(
            {"device_id": "BC-SEED", "original_name": clip.name}
        )
        result = vigil.ingest.ingest_file(clip, metadata, actor="bench")
        vigil.run_pipeline()
        vigil.cases.link(
            case_id, result.recording_id, from_s=None, to_s=None, reason="seed", actor="sup"
        )
        cast.seed_recordings[case_id] = result.recording_id
    cases = sorted(cast.seed_recordings)
    for i in range(devices):
        pid, device = f"dev-{i:03d}", f"BC-L{i:03d}"
        access.add_principal(pid, "device", display_name=pid, actor="bench", device_id=device)
        cast.devices.append((pid, device, access.issue_token(pid, label="b", actor="bench").token))
    for j in range(reviewers):
        pid, case_id = f"rev-{j:02d}", cases[j % len(cases)]
        access.add_principal(pid, "reviewer", display_name=pid, actor="bench")
        access.assign(case_id, pid, actor="sup")
        cast.reviewers.append(
            (pid, case_id, access.issue_token(pid, label="b", actor="bench").token)
        )
    return cast


# -- the load ------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    ok: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Each reviewer's first page, also in ``latencies``: the seventy clients send their first
    # requests at the same instant, a burst the rest of the run does not see again.
    first: list[float] = field(default_factory=list)

    async def request(
        self,
        client: httpx.AsyncClient,
        label: str,
        method: str,
        url: str,
        *,
        first: bool = False,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request, timed; anything but the expected status is an error (None).
        ``first``: a reviewer's first page (its latency is also kept in ``first``)."""
        expected = EXPECTED.get(label, 200)
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._took(label, time.perf_counter() - started, first)
            self.failed[label] += 1
            self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        self._took(label, time.perf_counter() - started, first)
        if response.status_code != expected:
            self.failed[label] += 1
            self.errors.append(f"{label}: HTTP {response.status_code}: {response.text[:300]}")
            return None
        self.ok[label] += 1
        return response

    def _took(self, label: str, seconds: float, first: bool) -> None:
        self.latencies[label].append(seconds)
        if first:
            self.first.append(seconds)


@dataclass
class Upload:
    device: str
    size: int
    sha256: str
    recording_id: str | None = None
    error: str | None = None


_TLS: list[ssl.SSLContext] = []


def client_for(url: str, headers: dict[str, str], timeout_s: float) -> httpx.AsyncClient:
    """One principal's client. They share one TLS context: httpx otherwise loads the CA bundle
    for each client (~20 ms of CPU), and seventy clients made at once held the load's one
    event loop for about 1.5 s, which the first requests' latencies counted as the server's."""
    if not _TLS:
        _TLS.append(ssl.create_default_context())
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s, verify=_TLS[0])


async def device_upload(
    url: str, token: str, device: str, clip: Path, stats: Stats, timeout_s: float
) -> Upload:
    data = clip.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    done = Upload(device, len(data), sha)
    headers = {"Authorization": f"Bearer {token}"}
    async with client_for(url, headers, timeout_s) as client:
        started = await stats.request(
            client,
            "POST /uploads",
            "POST",
            f"{API}/uploads",
            json={
                "device_id": device,
                "size": len(data),
                "original_name": clip.name,
                "device_start": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
                "device_clock": datetime.now(UTC).isoformat(),
            },
        )
        if started is None:
            done.error = "start"
            return done
        upload_id = started.json()["upload_id"]
        offset = 0
        while offset < len(data):
            chunk = data[offset : offset + CHUNK]
            sent = await stats.request(
                client,
                "PUT chunk",
                "PUT",
                f"{API}/uploads/{upload_id}",
                params={"offset": offset},
                content=chunk,
                headers={
                    "X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest(),
                    "Content-Type": "application/octet-stream",
                },
            )
            if sent is None:
                done.error = f"chunk at {offset}"
                return done
            offset = sent.json()["offset"]
        finished = await stats.request(
            client, "POST finish", "POST", f"{API}/uploads/{upload_id}/finish", json={"sha256": sha}
        )
        if finished is None:
            done.error = "finish"
            return done
        body = finished.json()
        if body["status"] != "complete" or not body["may_delete"] or body["sha256"] != sha:
            done.error = f"finish answered {body}"
            stats.errors.append(f"POST finish: {device}: {body}")
            return done
        done.recording_id = body["recording_id"]
        return done


async def reviewer_loop(
    url: str,
    token: str,
    case_id: str,
    stats: Stats,
    stop: asyncio.Event,
    rng: random.Random,
    timeout_s: float,
    think_s: float = 0.0,
) -> int:
    """Review until ``stop`` (at least one round); returns the rounds made. ``think_s``: the
    mean pause after each answer (uniform from half to one and a half times it), as a person
    reads a page before the next; 0: none, every reviewer asks again at once."""
    rounds = 0
    sizes: dict[str, int | None] = {}  # a recording's size: from its first range's Content-Range

    async def ask(label: str, path: str, **kwargs: Any) -> httpx.Response | None:
        first = rounds == 1 and label == "GET /cases"
        answer = await stats.request(client, label, "GET", path, first=first, **kwargs)
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
        return answer

    headers = {"Authorization": f"Bearer {token}"}
    async with client_for(url, headers, timeout_s) as client:
        while rounds == 0 or not stop.is_set():
            rounds += 1
            await ask("GET /cases", f"{API}/cases")
            timeline = await ask("GET /cases/{id}", f"{API}/cases/{case_id}")
            if timeline is not None and timeline.json()["recordings"]:
                rec = rng.choice(timeline.json()["recordings"])["id"]
                links = await ask("GET playback", f"{API}/recordings/{rec}/playback")
                if links is not None:
                    if rec not in sizes:
                        sizes[rec] = await _size_of(client, stats, links.json()["original"])
                    size = sizes[rec]
                    if size:
                        start = rng.randrange(size)
                        end = min(size - 1, start + rng.randrange(1, 256 << 10))
                        await ask(
                            "GET media range",
                            links.json()["original"],
                            headers={"Range": f"bytes={start}-{end}"},
                        )
            await ask("GET custody", f"{API}/cases/{case_id}/custody")
    return rounds


async def _size_of(client: httpx.AsyncClient, stats: Stats, link: str) -> int | None:
    """The original's size, from a one-byte range (its Content-Range)."""
    first = await stats.request(
        client, "GET media range", "GET", link, headers={"Range": "bytes=0-0"}
    )
    if first is None:
        return None
    return int(first.headers["content-range"].rpartition("/")[2])


@dataclass
class LoadResult:
    data_dir: Path
    uploads: list[Upload]
    stats: Stats
    wall_s: float  # from the start until the last upload finished
    all_s: float  # until the reviewers finished their last round, too
    reviewer_rounds: int
    seed_recordings: dict[str, str]

    @property
    def upload_errors(self) -> int:
        return sum(1 for u in self.uploads if u.recording_id is None)

    @property
    def reviewer_labels(self) -> list[str]:
        device = {"POST /uploads", "PUT chunk", "POST finish"}
        return [label for label in self.stats.latencies if label not in device]

    def reviewer_counts(self) -> tuple[int, int]:
        labels = self.reviewer_labels
        return (
            sum(self.stats.ok[x] for x in labels),
            sum(self.stats.failed[x] for x in labels),
        )


async def _drive(
    url: str, cast: Cast, clips: Sequence[Path], timeout_s: float, think_s: float
) -> LoadResult:
    stats = Stats()
    stop = asyncio.Event()
    rng = random.Random(20240514)
    started = time.perf_counter()
    reviewers = [
        asyncio.create_task(
            reviewer_loop(
                url, token, case_id, stats, stop, random.Random(rng.random()), timeout_s, think_s
            )
        )
        for _pid, case_id, token in cast.reviewers
    ]
    try:
        uploads = await asyncio.gather(
            *(
                device_upload(url, token, device, clip, stats, timeout_s)
                for (_pid, device, token), clip in zip(cast.devices, clips, strict=True)
            )
        )
    finally:
        stop.set()
    wall = time.perf_counter() - started
    rounds = sum(await asyncio.gather(*reviewers))
    return LoadResult(
        Path(),
        list(uploads),
        stats,
        wall,
        time.perf_counter() - started,
        rounds,
        dict(cast.seed_recordings),
    )


def run_load(
    data_dir: Path,
    *,
    devices: int = 50,
    reviewers: int = 20,
    in_process: bool = False,
    timeout_s: float = 300.0,
    deadline_s: float = 1200.0,
    think_s: float = 0.0,
) -> LoadResult:
    """Prepare ``data_dir``, serve it, run the load; the server is stopped on return.

    ``timeout_s`` bounds each request, ``deadline_s`` the whole run (TimeoutError);
    ``think_s`` is each reviewer's mean pause between pages (``reviewer_loop``)."""
    clips = make_clips(devices + SEED_CASES)
    seeds, uploads = clips[:SEED_CASES], clips[SEED_CASES:]

    def drive(url: str) -> LoadResult:
        async def bounded() -> LoadResult:
            return await asyncio.wait_for(
                _drive(url, cast, uploads, timeout_s, think_s), deadline_s
            )

        result = asyncio.run(bounded())
        result.data_dir = data_dir
        return result

    vigil = build_app(settings_for(data_dir))
    try:
        cast = prepare(vigil, devices, reviewers, seeds)
        if in_process:
            with serve_in_thread(vigil) as url:
                return drive(url)
    finally:
        vigil.stop()  # before the server process opens the same data dir
    with serve_subprocess(data_dir) as url:
        return drive(url)


if __name__ == "__main__":
    serve_forever(Path(sys.argv[1]), int(sys.argv[2]))
