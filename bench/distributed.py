"""End-to-end throughput through Kafka, S3 and PostgreSQL against the embedded run, same clip.

Run from the repo root (starts its own Kafka, SeaweedFS and PostgreSQL on loopback):

    .venv/bin/python bench/distributed.py [--quick] [--phash-workers 1 2] [--custody-only]

For the clip (the 5-minute 1080p30 H.264 clip of bench/pipeline.py, or its 20 s 720p quick
clip) it times, in one run:
  floor     the custody floor of bench/pipeline.py (copy + sha256 of the original, ffmpeg
            stream-copy segmenting, sha256 of the segments, keyframe-only 64x64 decode), each
            part in a fresh process;
  custody   the custody path through S3 and PostgreSQL (a `segment` worker, a separate
            process on Kafka, always running), timed from the ingest call in this process to
            the commit of the recording's `segment` custody event (polled every 20 ms), in
            three forms, interleaved, the fastest of two each:
              cut at ingest, no copies: the default with S3. Ingest streams the original
                into S3 with its SHA-256 while it cuts and hashes the segments and hashes the
                keyframes from the staged bytes, storing no segment file the original makes
                again (VIGIL_SEGMENT_COPIES=derive, issue 18); it catalogues them in
                PostgreSQL once the original's row is there, then announces the recording;
              cut at ingest, copies kept (VIGIL_SEGMENT_COPIES=keep): as the first, storing
                every segment file too;
              segment worker from the store (VIGIL_CUSTODY_AT_INGEST=false): ingest stores
                and announces; the worker downloads the original and does the rest;
  embedded  `vigil ingest` on embedded defaults (folder store, SQLite, in-process bus);
  kafka xN  stage workers as separate processes (segment, N x phash, transcode, finalise) on
            Kafka with the catalogue in PostgreSQL and objects in S3, from `vigil ingest` until
            the recording is complete in the catalogue.
It prints wall seconds and x-realtime, `ratio custody, <form>/floor` (floor wall / custody
wall; target >= 0.85; also against the floor with its keyframes decoded on one thread, as
Vigil decodes them) and `ratio kafka/embedded` (embedded wall / kafka wall). The output is also
written to bench/results/distributed-<quick|full>.txt.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import prepare_clip  # noqa: E402
from catalog.db import make_engine  # noqa: E402
from catalog.repository import Catalog  # noqa: E402
from interfaces.devservices.kafka import KafkaService  # noqa: E402
from interfaces.devservices.postgres import PostgresService  # noqa: E402
from interfaces.devservices.seaweed import SeaweedService  # noqa: E402
from transcode.ffmpeg import ProcessRunner, find_ffmpeg  # noqa: E402
from transcode.probe import probe  # noqa: E402

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Run:
    name: str
    wall_s: float
    clip_s: float

    @property
    def x_realtime(self) -> float:
        return self.clip_s / self.wall_s


def vigil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "-q", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )


def embedded(clip: Path, clip_s: float, work: Path) -> Run:
    env = {**os.environ, "VIGIL_DATA_DIR": str(work / "embedded")}
    started = time.monotonic()
    vigil(env, "ingest", str(clip), "--device", "BC-BENCH")
    return Run(
        "embedded (folder store, SQLite, in-process bus)", time.monotonic() - started, clip_s
    )


def distributed(
    clip: Path,
    clip_s: float,
    work: Path,
    *,
    kafka: KafkaService,
    s3: SeaweedService,
    database_url: str,
    phash_workers: int,
) -> Run:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **kafka_env(work, prefix, kafka, s3, database_url)}
    Catalog(make_engine(database_url)).migrate()
    stages = ["segment", *["phash"] * phash_workers, "transcode", "finalise"]
    logs = work / f"{prefix}-logs"
    logs.mkdir(parents=True)
    workers = []
    for n, stage in enumerate(stages):
        out = (logs / f"{stage}-{n}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "interfaces.cli", "worker", stage, "--id", str(n)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        deadline = time.monotonic() + 120
        while not all("assigned" in p.read_text() for p in logs.iterdir()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not join their groups; see {logs}")
            time.sleep(0.2)
        started = time.monotonic()
        vigil(env, "ingest", str(clip), "--device", "BC-BENCH", "--wait", "3600")
        wall = time.monotonic() - started
    finally:
        for proc in workers:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=60)
    name = f"kafka x{phash_workers} phash (Kafka, S3, PostgreSQL; {len(stages)} workers)"
    return Run(name, wall, clip_s)


def kafka_env(
    work: Path, prefix: str, kafka: KafkaService, s3: SeaweedService, url: str, partitions: int = 4
) -> dict[str, str]:
    """Vigil's settings for Kafka, S3 and PostgreSQL on loopback, under fresh names."""
    return {
        "VIGIL_DATA_DIR": str(work / prefix),
        "VIGIL_BUS": "kafka",
        "VIGIL_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": prefix,
        "VIGIL_KAFKA_PARTITIONS": str(partitions),
        "VIGIL_STORE": "s3",
        "VIGIL_S3_ENDPOINT": s3.endpoint,
        "VIGIL_S3_ACCESS_KEY": s3.access_key,
        "VIGIL_S3_SECRET_KEY": s3.secret_key,
        "VIGIL_S3_ORIGINALS_BUCKET": f"{prefix}-originals",
        "VIGIL_S3_DERIVED_BUCKET": f"{prefix}-derived",
        "VIGIL_CATALOG_URL": url,
    }


@dataclass(frozen=True)
class Form:
    """A way the custody path runs: its name in the output and the settings that make it."""

    name: str
    env: dict[str, str]


FORMS = (
    Form("cut at ingest, no copies (the default)", {}),
    Form("cut at ingest, copies kept", {"VIGIL_SEGMENT_COPIES": "keep"}),
    Form("segment worker from the store", {"VIGIL_CUSTODY_AT_INGEST": "false"}),
)


def custody(
    clip: Path,
    clip_s: float,
    work: Path,
    form: Form,
    *,
    kafka: KafkaService,
    s3: SeaweedService,
    url: str,
) -> Run:
    """Ingest in this process, the `segment` worker in its own; until the `segment` event."""
    from ingest.service import RecordingMetadata
    from workers.app import build_app
    from workers.settings import Settings

    prefix = f"custody{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **kafka_env(work, prefix, kafka, s3, url), **form.env}
    Catalog(make_engine(url)).migrate()
    log = work / f"{prefix}-segment.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", "worker", "segment", "--id", "custody"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 120
        while "assigned" not in log.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the segment worker did not join its group; see {log}")
            time.sleep(0.2)
        app = build_app(Settings())  # type: ignore[call-arg]
        try:
            meta = RecordingMetadata(device_id="BC-BENCH", original_name=clip.name)
            started = time.monotonic()
            rec_id = app.ingest.ingest_file(clip, meta, actor="bench").recording_id
            deadline = time.monotonic() + 3600
            while not any(
                e.action == "segment" for e in app.catalog.events(recording_ids=[rec_id])
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"custody of {rec_id} did not finish; see {log}")
                time.sleep(0.02)
            wall = time.monotonic() - started
        finally:
            app.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    return Run(f"custody, {form.name}", wall, clip_s)


@dataclass(frozen=True)
class Floor:
    """The custody floor's wall seconds: as set with issue 20's target (``keyframes`` with
    ffmpeg's default threads), and with the keyframes decoded on one thread as Vigil decodes
    them (``transcode.commands.KEYFRAMES_ONLY``): the same work by the same raw tools."""

    total: float
    one_thread: float


def custody_floor(clip: Path, work: Path) -> Floor:
    """The custody floor of bench/pipeline.py, each part in a fresh process."""
    from bench.pipeline import CUSTODY_FLOOR, spawn_part

    floor_work = work / "floor"
    floor_work.mkdir(parents=True, exist_ok=True)
    walls: dict[str, float] = {}
    for name in (*CUSTODY_FLOOR, "floor-keyframes-1thread"):
        part = spawn_part(name, clip, floor_work)
        if part is None:
            raise RuntimeError(f"floor part {name} failed")
        walls[name] = part.wall_s
    total = sum(walls[name] for name in CUSTODY_FLOOR)
    one = total - walls["floor-keyframes"] + walls["floor-keyframes-1thread"]
    return Floor(total, one)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s 720p clip")
    parser.add_argument("--phash-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--custody-only", action="store_true", help="the floor and custody only (not written)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ffmpeg = find_ffmpeg(os.environ.get("VIGIL_FFMPEG"))
    clip, _frames, _gop_s = prepare_clip(ffmpeg, args.quick)
    video = probe(ProcessRunner(), ffmpeg, clip).video
    assert video is not None
    clip_s = video.end_s - video.start_s
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    lines = [
        f"git commit: {commit}; clip {clip.name}: {clip_s:.1f} s; {os.cpu_count()} cores;"
        f" load {os.getloadavg()[0]:.2f}",
    ]
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        work = Path(tmp)
        kafka, s3, pg = KafkaService(work / "kafka"), SeaweedService(work / "s3"), None
        kafka.start()
        s3.start()
        pg = PostgresService(work / "pg")
        pg.start()
        try:
            floors = [custody_floor(clip, work) for _ in range(2)]
            floor = min(f.total for f in floors)
            floor_one = min(f.one_thread for f in floors)
            tries: dict[str, list[Run]] = {f.name: [] for f in FORMS}
            for _ in range(2):  # interleaved
                for form in FORMS:
                    url = pg.create_database()
                    run = custody(clip, clip_s, work, form, kafka=kafka, s3=s3, url=url)
                    tries[form.name].append(run)
            held = [min(runs, key=lambda r: r.wall_s) for runs in tries.values()]
            runs = [] if args.custody_only else [embedded(clip, clip_s, work)]
            for n in [] if args.custody_only else args.phash_workers:
                runs.append(
                    distributed(
                        clip,
                        clip_s,
                        work,
                        kafka=kafka,
                        s3=s3,
                        database_url=pg.create_database(),
                        phash_workers=n,
                    )
                )
        finally:
            kafka.stop()
            s3.stop()
            pg.destroy()
    lines.append(f"{'run':<64} {'wall s':>8} {'x-realtime':>11}")
    lines.append(f"{'custody floor (copy, sha256, segment, sha256, keyframes)':<64} {floor:8.2f}")
    lines.append(f"{'custody floor, its keyframes decoded on one thread':<64} {floor_one:8.2f}")
    lines += [f"{r.name:<64} {r.wall_s:8.2f} {r.x_realtime:11.2f}" for r in held]
    lines += [f"{r.name:<64} {r.wall_s:8.2f} {r.x_realtime:11.2f}" for r in runs]
    for run in held:
        lines.append(
            f"ratio {run.name}/floor: {floor / run.wall_s:.2f} (target >= 0.85);"
            f" /floor with one-thread keyframes: {floor_one / run.wall_s:.2f}"
        )
    for run in runs[1:]:
        lines.append(
            f"ratio kafka/embedded ({run.name.split(' (')[0]}): {runs[0].wall_s / run.wall_s:.2f}"
        )
    lines.append(f"load at end {os.getloadavg()[0]:.2f}")
    text = "\n".join(lines)
    print(text)
    if args.custody_only:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"distributed-{'quick' if args.quick else 'full'}.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
