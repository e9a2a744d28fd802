"""Vigil on the engines a deployment uses: stage workers as separate processes on a real Kafka
broker, originals and segments in a real S3 store with Object Lock (SeaweedFS), the catalogue
in a real PostgreSQL. Workers are killed, the broker restarted, poison messages sent; every
test counts what ends up catalogued and stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from minio import Minio
from minio.error import S3Error
from sqlalchemy import create_engine, text

from interfaces.devservices.base import ServiceError, free_port, wait_until
from tests.helpers import VIGIL, footage_cache, listening, render_once
from tests.services.prometheus import PrometheusService
from transcode.samples import SampleSpec
from workers.messages import OriginalStored, encode

pytestmark = [pytest.mark.services, pytest.mark.ffmpeg, pytest.mark.copies_kept]

STAGES = ("segment", "phash", "finalise")
LONG_S = 240  # the long recording: long enough that a kill or a restart lands mid-run
LONG_SEGMENTS = LONG_S // 10


@dataclass
class Deployment:
    """One isolated deployment: its own topics (prefix), buckets and database."""

    env: dict[str, str]
    prefix: str
    originals: str
    derived: str
    database_url: str
    s3: Minio
    logs: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, stage: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
        return self.start_process(name, "worker", stage, "--id", name, *extra)

    def start_process(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [*VIGIL, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, needle: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.log(name):
            assert self.workers[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, f"{needle!r} not in {name}'s log:\n{self.log(name)}"
            time.sleep(0.2)

    def vigil(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VIGIL, "-q", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def ingest(self, clip: Path, wait_s: float = 300, device: str = "BC-0042") -> str:
        done = self.vigil("ingest", str(clip), "--device", device, "--wait", str(wait_s))
        assert done.returncode == 0, done.stdout + done.stderr + self.all_logs()
        return done.stdout.split()[1]

    def start_ingest(
        self, clip: Path, wait_s: float = 300, device: str = "BC-0042"
    ) -> subprocess.Popen[str]:
        """``ingest`` as a background process (it ends when the recording is complete)."""
        return subprocess.Popen(
            [*VIGIL, "-q", "ingest", str(clip), "--device", device, "--wait", str(wait_s)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def all_logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.workers)

    def scalar(self, sql: str, **params: object) -> int:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text(sql), params).scalar_one())
        finally:
            engine.dispose()

    def objects(self, bucket: str, prefix: str) -> list[str]:
        return sorted(o.object_name for o in self.s3.list_objects(bucket, prefix, recursive=True))

    def stop_all(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def deployment(
    tmp_path: Path, kafka_service: object, seaweed_service: object, database_url: str
) -> Iterator[Deployment]:
    kafka = kafka_service
    s3 = seaweed_service
    prefix = f"t{uuid.uuid4().hex[:10]}"
    originals, derived = f"{prefix}-originals", f"{prefix}-derived"
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_BUS": "kafka",
        "VIGIL_KAFKA_BOOTSTRAP": kafka.bootstrap,  # type: ignore[attr-defined]
        "VIGIL_KAFKA_TOPIC_PREFIX": prefix,
        "VIGIL_KAFKA_PARTITIONS": "2",
        "VIGIL_STORE": "s3",
        "VIGIL_S3_ENDPOINT": s3.endpoint,  # type: ignore[attr-defined]
        "VIGIL_S3_ACCESS_KEY": s3.access_key,  # type: ignore[attr-defined]
        "VIGIL_S3_SECRET_KEY": s3.secret_key,  # type: ignore[attr-defined]
        "VIGIL_S3_ORIGINALS_BUCKET": originals,
        "VIGIL_S3_DERIVED_BUCKET": derived,
        "VIGIL_CATALOG_URL": database_url,
        "VIGIL_HANDLER_ATTEMPTS": "2",
        "VIGIL_SHUTDOWN_GRACE_S": "10",
        "PYTHONUNBUFFERED": "1",
    }
    client = Minio(
        s3.endpoint,  # type: ignore[attr-defined]
        access_key=s3.access_key,  # type: ignore[attr-defined]
        secret_key=s3.secret_key,  # type: ignore[attr-defined]
        secure=False,
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    deployment = Deployment(env, prefix, originals, derived, database_url, client, logs)
    yield deployment
    deployment.stop_all()


def legal_hold(client: Minio, bucket: str, key: str) -> bool:
    """SeaweedFS answers NoSuchObjectLegalHold for an object that never had one."""
    try:
        return bool(client.is_object_legal_hold_enabled(bucket, key))
    except S3Error as exc:
        if exc.code == "NoSuchObjectLegalHold":
            return False
        raise


def start_pipeline(
    d: Deployment, phash_workers: int = 1, metrics_ports: dict[str, int] | None = None
) -> None:
    """The stage workers; with ``metrics_ports`` (worker name -> port) each serves /metrics."""

    def extra(name: str) -> list[str]:
        port = (metrics_ports or {}).get(name)
        return ["--metrics-port", str(port)] if port else []

    d.start_worker("segment", "segment-1", *extra("segment-1"))
    for n in range(1, phash_workers + 1):
        d.start_worker("phash", f"phash-{n}", *extra(f"phash-{n}"))
    d.start_worker("finalise", "finalise-1", *extra("finalise-1"))
    for name in d.workers:
        d.wait_log(name, "assigned", timeout_s=90)


@pytest.fixture(scope="session")
def small_clip(make_clip: Callable[[SampleSpec], Path]) -> Path:
    return make_clip(
        SampleSpec(duration_s=30, width=320, height=240, video_bitrate="400k", seed=21)
    )


@pytest.fixture(scope="session")
def long_clip(ffmpeg: str) -> Path:
    """A 4-minute H.264/AAC recording, 24 segments (a test pattern: only the length matters
    here): long enough that a phash worker killed after 10 segments, or the broker restarted
    after the first, goes down mid-run (one worker hashes a segment in ~0.2 s). 10 minutes
    (60 segments) only added ~8 s of hashing to each of the two tests."""
    return render_once(
        footage_cache() / f"{LONG_S}-seconds-320x240.mp4",
        lambda tmp: subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
             "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
             "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000",
             "-t", str(LONG_S), "-c:v", "libx264", "-preset", "veryfast", "-g", "15",
             "-b:v", "200k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", str(tmp)],
            check=True,
            timeout=600,
        ),
    )  # fmt: skip


def test_one_recording_through_kafka_into_postgres_and_s3(
    deployment: Deployment, small_clip: Path
) -> None:
    d = deployment
    # `vigil ingest` cuts from the staged bytes while the original uploads, before any worker
    # runs: on return the segments are in S3 and catalogued
    done = d.vigil("ingest", str(small_clip), "--device", "BC-0042")
    assert done.returncode == 0, done.stdout + done.stderr
    rec = done.stdout.split()[1]
    assert d.scalar("SELECT count(*) FROM recordings WHERE status = 'segmented'") == 1
    assert d.scalar("SELECT count(*) FROM segments") == 3
    assert not list((Path(d.env["VIGIL_DATA_DIR"]) / "work").glob("*")), "cut files left"
    # the segment worker then finds it on record and passes it on: nothing cut twice
    start_pipeline(d)
    deadline = time.monotonic() + 300
    while d.scalar("SELECT count(*) FROM recordings WHERE status = 'complete'") < 1:
        assert time.monotonic() < deadline, d.all_logs()
        time.sleep(0.25)
    for action, count in (("segment", 1), ("segment.stored", 3), ("segment.hashed", 3)):
        assert d.scalar("SELECT count(*) FROM custody_events WHERE action = :a", a=action) == count
    assert d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL") == 3
    originals = d.objects(d.originals, rec)
    assert originals == [f"{rec}/original.mp4"]
    stored = d.s3.get_object(d.originals, originals[0])
    try:
        assert stored.read() == small_clip.read_bytes()
    finally:
        stored.close()
        stored.release_conn()
    segments = [k for k in d.objects(d.derived, rec) if k.endswith(".ts")]
    assert len(segments) == 3
    verified = d.vigil("verify", rec, "--full")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Every worker did its part, each message once.
    assert d.log("segment-1").count(" done ") == 1
    assert d.log("phash-1").count(" done ") == 3

    # The custody ledger on PostgreSQL and S3: a linked case exports to a package that checks out
    # offline, its signed heads are locked in the WORM store, and the audit is clean.
    linked = d.vigil("case", "link", "CASE-D", rec, "--reason", "incident")
    assert linked.returncode == 0, linked.stderr
    exported = d.vigil("export", "CASE-D", str(d.logs.parent / "export"), "--reason", "court")
    assert exported.returncode == 0, exported.stderr
    package = d.logs.parent / "export" / "CASE-D"
    verifier = Path(sys.executable).with_name("vigil-verify")
    offline = subprocess.run(
        [str(verifier), str(package)], capture_output=True, text=True, timeout=300, check=False
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "RESULT: CLEAN (3 intact)" in offline.stdout
    heads = d.objects(d.derived, "ledger/checkpoints/")
    assert heads
    retention = d.s3.get_object_retention(d.derived, heads[-1])
    assert retention is not None and retention.mode == "COMPLIANCE"
    checked = d.vigil("ledger", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ledger intact" in checked.stdout


def test_a_worker_sigkilled_mid_recording_loses_and_duplicates_nothing(
    deployment: Deployment, long_clip: Path
) -> None:
    d = deployment
    start_pipeline(d)
    ingest = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interfaces.cli",
            "-q",
            "ingest",
            str(long_clip),
            "--device",
            "BC-7",
        ],
        env=d.env,
    )
    assert ingest.wait(timeout=300) == 0
    d.wait_log("phash-1", " done ", timeout_s=300)
    while d.log("phash-1").count(" done ") < 10:
        time.sleep(0.1)
    os.killpg(d.workers["phash-1"].pid, signal.SIGKILL)
    d.workers["phash-1"].wait(timeout=10)
    hashed_before = d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL")
    assert 10 <= hashed_before < LONG_SEGMENTS
    d.start_worker("phash", "phash-2")
    deadline = time.monotonic() + 600
    while d.scalar("SELECT count(*) FROM recordings WHERE status = 'complete'") < 1:
        assert time.monotonic() < deadline, d.all_logs()
        time.sleep(0.25)
    assert d.scalar("SELECT count(*) FROM segments") == LONG_SEGMENTS
    assert d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL") == LONG_SEGMENTS
    assert d.scalar('SELECT count(DISTINCT "index") FROM segments') == LONG_SEGMENTS
    for action, count in (
        ("ingest", 1), ("segment", 1), ("catalogue", 1), ("segment.stored", LONG_SEGMENTS),
        ("segment.hashed", LONG_SEGMENTS),
    ):  # fmt: skip
        assert d.scalar("SELECT count(*) FROM custody_events WHERE action = :a", a=action) == count
    (rec,) = {k.split("/")[0] for k in d.objects(d.derived, "rec-")}
    assert len([k for k in d.objects(d.derived, rec) if k.endswith(".ts")]) == LONG_SEGMENTS
    verified = d.vigil("verify", rec)
    assert verified.returncode == 0, verified.stdout


def test_two_workers_in_one_group_share_the_work(
    deployment: Deployment, make_clip: Callable[[SampleSpec], Path]
) -> None:
    from kafka.partitioner.default import murmur2

    from catalog.repository import recording_id_for
    from store.base import sha256_file

    d = deployment
    # the segment worker cuts from the store here (a file ingested whole is otherwise cut
    # at ingest, from its staged bytes): that path stays covered against the real services
    d.env["VIGIL_CUSTODY_AT_INGEST"] = "false"
    start_pipeline(d, phash_workers=2)

    def latest_assignment(name: str) -> str:
        lines = [line for line in d.log(name).splitlines() if ": assigned " in line]
        return lines[-1] if lines else ""

    # The group rebalances as the second worker joins: wait until each holds one partition.
    deadline = time.monotonic() + 60
    while not all(
        latest_assignment(n).count("segment.stored[") == 1 for n in ("phash-1", "phash-2")
    ):
        assert time.monotonic() < deadline, d.all_logs()
        time.sleep(0.2)
    # Two recordings whose keys land on different partitions of the 2-partition topic.
    chosen: dict[int, Path] = {}
    for seed in range(40, 60):
        clip = make_clip(SampleSpec(duration_s=12, width=320, height=240, seed=seed))
        key = recording_id_for(sha256_file(clip)[0]).encode()
        chosen.setdefault((murmur2(key) & 0x7FFFFFFF) % 2, clip)
        if len(chosen) == 2:
            break
    # Both at once (each ingest waits for its recording to complete): the two workers hash
    # side by side, and neither waits for the other recording's ingest to end first.
    ingests = [d.start_ingest(clip) for clip in chosen.values()]
    for proc in ingests:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out + err + d.all_logs()
    assert d.scalar("SELECT count(*) FROM recordings WHERE status = 'complete'") == 2
    assert d.log("segment-1").count(" done ") == 2
    assert d.scalar("SELECT count(*) FROM custody_events WHERE action = 'segment'") == 2
    done = {n: d.log(n).count(" done ") for n in ("phash-1", "phash-2")}
    assert done["phash-1"] >= 1
    assert done["phash-2"] >= 1
    assert sum(done.values()) == d.scalar("SELECT count(*) FROM segments")


def test_a_poison_message_is_dead_lettered_while_others_flow(
    deployment: Deployment, small_clip: Path
) -> None:
    d = deployment
    start_pipeline(d)
    producer = KafkaProducer(bootstrap_servers=d.env["VIGIL_KAFKA_BOOTSTRAP"])
    topic = f"{d.prefix}.original.stored"
    producer.send(topic, key=b"junk", value=b"\x00not json at all")
    ghost = OriginalStored(
        recording_id="rec-" + "0" * 16, original_key="none", sha256="0" * 64, size=1
    )
    producer.send(topic, key=b"ghost", value=encode(ghost))
    producer.flush()
    producer.close()
    rec = d.ingest(small_clip)
    assert d.scalar("SELECT count(*) FROM recordings WHERE status = 'complete'") == 1
    consumer = KafkaConsumer(
        f"{d.prefix}.dead-letter",
        bootstrap_servers=d.env["VIGIL_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
        group_id=f"{d.prefix}-test",
    )
    letters = []
    for record in consumer:
        letters.append(record)
        if len(letters) == 2:
            break
    consumer.close()
    assert len(letters) == 2, d.log("segment-1")
    by_key = {r.key: dict(r.headers) for r in letters}
    junk, missing = by_key[b"junk"], by_key[b"ghost"]
    assert b"not a valid Vigil message" in junk["vigil.error"]
    assert junk["vigil.source.topic"] == topic.encode()
    assert junk["vigil.source.offset"] == b"0"
    assert b"NotFound" in missing["vigil.error"]
    assert rec in d.vigil("recordings").stdout


def test_locked_originals_cannot_be_deleted_and_case_links_hold_them(
    deployment: Deployment, small_clip: Path
) -> None:
    d = deployment
    start_pipeline(d)
    rec = d.ingest(small_clip)
    key = f"{rec}/original.mp4"
    version = d.s3.stat_object(d.originals, key).version_id
    with pytest.raises(S3Error):
        d.s3.remove_object(d.originals, key, version_id=version)
    assert d.s3.stat_object(d.originals, key, version_id=version).size == small_clip.stat().st_size
    segment = next(k for k in d.objects(d.derived, rec) if k.endswith(".ts"))

    assert not legal_hold(d.s3, d.originals, key)
    linked = d.vigil("case", "link", "CASE-9", rec, "--reason", "assault report")
    assert linked.returncode == 0, linked.stderr
    assert legal_hold(d.s3, d.originals, key)
    assert legal_hold(d.s3, d.derived, segment)
    unlinked = d.vigil("case", "unlink", "CASE-9", rec, "--reason", "wrong case")
    assert unlinked.returncode == 0, unlinked.stderr
    assert not legal_hold(d.s3, d.originals, key)
    assert not legal_hold(d.s3, d.derived, segment)


def test_the_run_completes_across_a_broker_restart(
    deployment: Deployment, kafka_service: object, long_clip: Path
) -> None:
    if os.environ.get("VIGIL_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("an external broker is not ours to restart")
    d = deployment
    start_pipeline(d)
    ingest = d.vigil("ingest", str(long_clip), "--device", "BC-8")
    assert ingest.returncode == 0, ingest.stderr
    d.wait_log("phash-1", " done ", timeout_s=300)
    kafka_service.restart(down_s=5)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 600
    while d.scalar("SELECT count(*) FROM recordings WHERE status = 'complete'") < 1:
        assert time.monotonic() < deadline, d.all_logs()
        time.sleep(0.25)
    assert d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL") == LONG_SEGMENTS
    assert d.scalar("SELECT count(*) FROM custody_events WHERE action = 'catalogue'") == 1
    # The broker went away mid-run: the phash worker lost it, then hashed on.
    log = d.log("phash-1")
    lost = log.find("KafkaConnectionError")
    assert lost != -1 and " done " in log[lost:], log


def test_the_store_down_for_20_s_during_ingest_loses_nothing(
    deployment: Deployment, seaweed_service: object, small_clip: Path
) -> None:
    if os.environ.get("VIGIL_TEST_S3_ENDPOINT"):
        pytest.skip("an external store is not ours to stop")
    d = deployment
    start_pipeline(d)
    seaweed_service.stop()  # type: ignore[attr-defined]
    down_at = time.monotonic()
    try:  # the store is the session's: up again for the tests after this one, whatever happens
        ingest = subprocess.Popen(
            [*VIGIL, "-q", "ingest", str(small_clip), "--device", "BC-9",
             "--wait", "300"],
            env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(20)
        assert ingest.poll() is None  # still trying, nothing given up
    finally:
        seaweed_service.start()  # type: ignore[attr-defined]
    out, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, out + err + d.all_logs()
    assert time.monotonic() - down_at >= 20
    assert "retry" in err.lower()  # it said what it was waiting for
    rec = out.split()[1]
    assert d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL") == 3
    stored = d.s3.get_object(d.originals, f"{rec}/original.mp4")
    try:
        assert stored.read() == small_clip.read_bytes()
    finally:
        stored.close()
        stored.release_conn()
    verified = d.vigil("verify", rec)
    assert verified.returncode == 0, verified.stdout


def test_a_live_stream_is_segmented_and_hashed_while_still_recording(
    deployment: Deployment, ffmpeg: str
) -> None:
    from interfaces.devservices.base import free_port

    d = deployment
    # 4 s segments (the default is 10 s) and a 15 s stream: 4 segments, the second closed and
    # hashed ~7 s before the camera stops, in half the time a 35 s stream of 10 s ones took.
    d.env["VIGIL_SEGMENT_SECONDS"] = "4"
    start_pipeline(d)
    port = free_port()
    live = subprocess.Popen(
        [*VIGIL, "-q", "live", f"tcp://127.0.0.1:{port}?listen",
         "--device", "CAM-GATE-1", "--category", "fixed-site", "--max-outage", "0"],
        env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    camera_cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "15",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-c:a", "aac",
        "-f", "mpegts", f"tcp://127.0.0.1:{port}",
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while not listening(port):  # the recorder's socket opens once its ffmpeg has started
        assert live.poll() is None, live.communicate()
        assert time.monotonic() < deadline, "the live recorder never listened"
        time.sleep(0.05)
    while True:
        camera = subprocess.Popen(camera_cmd)
        time.sleep(1.5)
        if camera.poll() is None:
            break
        assert time.monotonic() < deadline, "could not connect to the live recorder"
    # While the camera is still streaming, earlier segments are already stored and hashed.
    while d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL") < 2:
        assert camera.poll() is None, "the stream ended before any segment was hashed"
        time.sleep(0.2)
    assert d.scalar("SELECT count(*) FROM recordings WHERE status = 'recording'") == 1
    assert camera.wait(timeout=60) == 0
    out, err = live.communicate(timeout=120)
    assert live.returncode == 0, out + err
    assert "4 segments in 1 session(s), outages none (end of stream" in out
    rec = out.split()[1]
    deadline = time.monotonic() + 120
    while d.scalar("SELECT count(*) FROM recordings WHERE status = 'complete'") < 1:
        assert time.monotonic() < deadline, d.all_logs()
        time.sleep(0.2)
    assert d.scalar("SELECT count(*) FROM segments WHERE phash IS NOT NULL") == 4
    assert d.objects(d.originals, rec) == [f"{rec}/original.ts"]
    verified = d.vigil("verify", rec)
    assert verified.returncode == 0, verified.stdout


def test_prometheus_scrapes_the_workers_of_a_known_clip(
    deployment: Deployment, small_clip: Path, tmp_path: Path
) -> None:
    """A real Prometheus scrapes five Vigil processes on one host (each its own /metrics port:
    three stage workers, two of them phash, and the monitor) while a 30 s clip goes through;
    PromQL then returns the footage seconds and the segment count the clip must give."""
    d = deployment
    # the segment worker cuts (as for an upload through the API), so that its counts are
    # scraped: `vigil ingest` would cut the file itself, and a one-off command is not scraped
    d.env["VIGIL_CUSTODY_AT_INGEST"] = "false"
    names = ["segment-1", "phash-1", "phash-2", "finalise-1", "monitor"]
    ports = {name: free_port() for name in names}
    start_pipeline(d, phash_workers=2, metrics_ports=ports)
    d.start_process("monitor", "monitor", "--metrics-port", str(ports["monitor"]))
    d.wait_log("monitor", "metrics on")
    prometheus = PrometheusService(
        tmp_path / "prometheus",
        {
            "vigil": [f"127.0.0.1:{ports[n]}" for n in names if n != "monitor"],
            "vigil-monitor": [f"127.0.0.1:{ports['monitor']}"],
        },
    )
    prometheus.start()
    try:
        rec = d.ingest(small_clip)
        expected = {
            "sum(vigil_segments_total)": 3.0,
            'sum(vigil_recordings_total{status="complete"})': 1.0,
            'sum(vigil_catalog_uploads_total{device="BC-0042"})': 1.0,
            'sum(up{job=~"vigil.*"})': 5.0,
            "vigil_dead_letter_queue_messages": 0.0,
            # the monitor reads the committed offsets when scraped: a phash worker commits
            # after it has hashed, so the lag it last saw may still count the last segments
            'sum(vigil_kafka_consumer_lag{group=~".*phash"})': 0.0,
        }

        def settled() -> bool:
            return all(prometheus.value(q) == v for q, v in expected.items()) and all(
                (prometheus.value(f'sum(vigil_stage_footage_seconds_total{{stage="{s}"}})') or 0)
                > 29.0
                for s in ("segment", "phash")
            )

        try:
            wait_until(settled, 60, "prometheus to see the clip", None)
        except ServiceError:
            seen = {
                q: prometheus.query(q) for q in [*expected, "vigil_stage_footage_seconds_total"]
            }
            pytest.fail(f"Prometheus saw: {seen}\n{d.all_logs()}")
        segment_s = prometheus.value('sum(vigil_stage_footage_seconds_total{stage="segment"})')
        phash_s = prometheus.value('sum(vigil_stage_footage_seconds_total{stage="phash"})')
        assert segment_s == pytest.approx(30.0, abs=0.5)
        assert phash_s == pytest.approx(30.0, abs=0.5)  # the three segments, whoever hashed them
        by_worker = prometheus.query(
            'sum by (instance) (vigil_stage_messages_total{stage="phash",outcome="done"})'
        )
        assert sum(s.value for s in by_worker) == 3.0
        assert (prometheus.value('vigil_catalog_stored_bytes{bucket="originals"}') or 0) == (
            small_clip.stat().st_size
        )
        p99 = prometheus.value(
            "histogram_quantile(0.99, sum by (le) (vigil_end_to_end_seconds_bucket))"
        )
        assert p99 is not None and p99 > 0
        assert rec
    finally:
        prometheus.stop()
