"""S3ObjectStore against a real S3 server with Object Lock: SeaweedFS ``weed mini`` on loopback.

Every test gets its own pair of buckets. The server is shared by the module; the outage test
stops and restarts it (same port, same data).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from catalog.db import make_engine
from catalog.repository import Catalog, Event
from integrity.keys import create_signing_key
from integrity.ledger import Ledger
from interfaces.devservices.base import free_port
from interfaces.devservices.seaweed import SeaweedService
from store.base import StoredObject, sha256_file
from store.errors import ObjectConflict, ObjectMissing, StoreError, StoreRefused, StoreUnavailable
from store.retention import RetentionPolicy
from store.s3 import S3ObjectStore, http_client

pytestmark = pytest.mark.services

MiB = 1 << 20
KEY = "rec-0123456789abcdef/original.mp4"
POLICY = RetentionPolicy(default_days=183, by_category={"evidence": 36500, "traffic": 30})


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedService]:
    service = SeaweedService(tmp_path_factory.mktemp("seaweed"))
    service.start()
    try:
        yield service
    finally:
        # Its data goes with the module: no graceful stop to wait for (~2 s, and now and then
        # the 10 s grace of a weed that hangs after stopping its filer).
        service.kill()


def make_store(seaweed: SeaweedService, **kwargs: object) -> S3ObjectStore:
    tag = uuid.uuid4().hex[:12]
    options: dict[str, object] = {
        "secure": False,
        "originals_bucket": f"vigil-originals-{tag}",
        "derived_bucket": f"vigil-derived-{tag}",
        "retention": POLICY,
        "outage_budget_s": 120.0,
        **kwargs,
    }
    store = S3ObjectStore.connect(
        seaweed.endpoint,
        seaweed.access_key,
        seaweed.secret_key,
        **options,  # type: ignore[arg-type]
    )
    store.ensure_buckets()
    return store


@pytest.fixture
def store(seaweed: SeaweedService, tmp_path: Path) -> S3ObjectStore:
    return make_store(seaweed, tmp_dir=tmp_path)


@pytest.fixture
def raw(seaweed: SeaweedService) -> Minio:
    return seaweed.client()


def source(tmp_path: Path, content: bytes, name: str = "upload") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def big_file(path: Path, size: int, seed: int = 0) -> str:
    """``size`` pseudo-random bytes written in 1 MiB blocks; their sha256."""
    digest = hashlib.sha256()
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    with path.open("wb") as out:
        for i in range(0, size, MiB):
            chunk = (i.to_bytes(8, "big") + block)[: min(MiB, size - i)]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def versions(raw: Minio, bucket: str, key: str) -> list[str]:
    return [
        o.version_id or ""
        for o in raw.list_objects(bucket, prefix=key, include_version=True)
        if o.object_name == key and not o.is_delete_marker
    ]


def legal_hold(raw: Minio, bucket: str, key: str) -> bool:
    """Whether the object's legal hold is on. SeaweedFS answers NoSuchObjectLegalHold for an
    object that never had one (minio-py only maps NoSuchObjectLockConfiguration to False)."""
    try:
        return raw.is_object_legal_hold_enabled(bucket, key)
    except S3Error as exc:
        if exc.code == "NoSuchObjectLegalHold":
            return False
        raise


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


# -- round trip and write-once ----------------------------------------------------------------


@pytest.mark.parametrize("size", [11, 11 * MiB + 7], ids=["single-part", "multipart"])
def test_put_stat_open_local_path_round_trip(
    seaweed: SeaweedService, tmp_path: Path, size: int
) -> None:
    store = make_store(seaweed, part_size=5 * MiB, tmp_dir=tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    content = os.urandom(size)
    path, digest = source(tmp_path, content)
    stored = store.put_file("originals", KEY, path, digest)
    assert stored == StoredObject("originals", KEY, digest, size)
    assert store.stat("originals", KEY) == stored
    assert store.stat("derived", KEY) is None  # buckets are separate
    with store.open("originals", KEY) as fh:
        assert fh.read() == content
    with store.local_path("originals", KEY) as local:
        assert local.name == "original.mp4"  # the extension survives, for ffmpeg
        assert local.read_bytes() == content
        assert not os.access(local, os.W_OK) or os.geteuid() == 0
    assert not local.exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary folder is gone too


def test_missing_key(store: S3ObjectStore) -> None:
    assert store.stat("originals", "rec-x/none.mp4") is None
    with pytest.raises(ObjectMissing) as info, store.local_path("originals", "rec-x/none.mp4"):
        pass  # pragma: no cover
    assert (info.value.bucket, info.value.key) == ("originals", "rec-x/none.mp4")
    with pytest.raises(ObjectMissing), store.open("derived", "rec-x/none.ts"):
        pass  # pragma: no cover
    with pytest.raises(ObjectMissing):
        store.set_legal_hold("originals", "rec-x/none.mp4", True)
    with pytest.raises(StoreError, match="invalid object key"):
        store.stat("originals", "../escape")


def test_same_content_twice_is_a_no_op(store: S3ObjectStore, raw: Minio, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"same bytes" * 100)
    first = store.put_file("originals", KEY, path, digest)
    before = versions(raw, store.buckets["originals"], KEY)
    again, _ = source(tmp_path, b"same bytes" * 100, name="again")
    assert store.put_file("originals", KEY, again, digest) == first
    assert versions(raw, store.buckets["originals"], KEY) == before
    assert len(before) == 1


def test_different_content_conflicts_and_keeps_the_original(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    path, digest = source(tmp_path, b"the original")
    store.put_file("originals", KEY, path, digest)
    other, other_digest = source(tmp_path, b"a forgery", name="forgery")
    with pytest.raises(ObjectConflict) as info:
        store.put_file("originals", KEY, other, other_digest)
    assert (info.value.existing, info.value.offered) == (digest, other_digest)
    with store.open("originals", KEY) as fh:
        assert fh.read() == b"the original"
    assert len(versions(raw, store.buckets["originals"], KEY)) == 1  # no new version


@pytest.mark.parametrize("size", [100, 6 * MiB], ids=["single-part", "multipart"])
def test_wrong_given_hash_is_refused_and_nothing_is_stored(
    seaweed: SeaweedService, raw: Minio, tmp_path: Path, size: int
) -> None:
    store = make_store(seaweed, part_size=5 * MiB)
    path, _ = source(tmp_path, os.urandom(size))
    claimed = hashlib.sha256(b"what we thought we had").hexdigest()
    with pytest.raises(StoreError, match="does not have the hash given") as info:
        store.put_file("originals", KEY, path, claimed)
    assert not isinstance(info.value, ObjectConflict)
    assert store.stat("originals", KEY) is None
    assert list(raw.list_objects(store.buckets["originals"], include_version=True)) == []


# -- WORM: Object Lock, retention, legal hold ---------------------------------------------------


def test_locked_original_cannot_be_deleted_or_overwritten(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    bucket = store.buckets["originals"]
    path, digest = source(tmp_path, b"evidence bytes" * 1000)
    store.put_file("originals", KEY, path, digest, category="evidence")
    (original_version,) = versions(raw, bucket, KEY)

    # deleting the locked version is refused
    with pytest.raises(S3Error) as info:
        raw.remove_object(bucket, KEY, version_id=original_version)
    assert info.value.code == "AccessDenied"
    # so is shortening its retention (COMPLIANCE: not even the admin)
    with pytest.raises(S3Error):
        raw.set_object_retention(
            bucket,
            KEY,
            Retention(COMPLIANCE, datetime.now(UTC) + timedelta(days=1)),
            version_id=original_version,
        )

    # overwriting through the store is refused
    forged, forged_digest = source(tmp_path, b"forged bytes", name="forged")
    with pytest.raises(ObjectConflict):
        store.put_file("originals", KEY, forged, forged_digest)

    # a raw client can add a version (S3 versioning), but the locked original stays intact...
    raw.put_object(bucket, KEY, io.BytesIO(b"forged bytes"), 12, metadata={"sha256": forged_digest})
    raw.remove_object(bucket, KEY)  # ...and a delete marker on top hides nothing either
    assert len(versions(raw, bucket, KEY)) == 2
    response = raw.get_object(bucket, KEY, version_id=original_version)
    try:
        assert response.read() == b"evidence bytes" * 1000
    finally:
        response.close()
        response.release_conn()
    # ...and the store keeps reading the evidence version, not the newest one
    assert store.stat("originals", KEY) == StoredObject("originals", KEY, digest, 14000)
    with store.open("originals", KEY) as fh:
        assert fh.read() == b"evidence bytes" * 1000
    with pytest.raises(ObjectConflict):
        store.put_file("originals", KEY, forged, forged_digest)
    with pytest.raises(S3Error):
        raw.remove_object(bucket, KEY, version_id=original_version)


@pytest.mark.parametrize(
    ("category", "days"),
    [(None, 183), ("evidence", 36500), ("traffic", 30), ("no-such-category", 183)],
)
def test_retention_is_compliance_for_the_category_period(
    store: S3ObjectStore, raw: Minio, tmp_path: Path, category: str | None, days: int
) -> None:
    path, digest = source(tmp_path, b"footage")
    before = datetime.now(UTC)
    store.put_file("originals", KEY, path, digest, category=category)
    store.put_file("derived", "rec-1/seg-00000.ts", path, digest, category=category)
    after = datetime.now(UTC)
    for bucket, key in (("originals", KEY), ("derived", "rec-1/seg-00000.ts")):
        retention = raw.get_object_retention(store.buckets[bucket], key)  # type: ignore[index]
        assert retention is not None
        assert retention.mode == COMPLIANCE
        until = retention.retain_until_date
        assert until is not None
        expected = timedelta(days=days)
        assert before + expected - timedelta(seconds=2) <= until <= after + expected
        assert legal_hold(raw, store.buckets[bucket], key) is False  # type: ignore[index]


def test_derived_can_be_left_unlocked(seaweed: SeaweedService, raw: Minio, tmp_path: Path) -> None:
    store = make_store(seaweed, lock_derived=False)
    path, digest = source(tmp_path, b"proxy segment")
    store.put_file("derived", "rec-1/seg-00000.ts", path, digest)
    store.put_file("originals", KEY, path, digest)
    derived = raw.stat_object(store.buckets["derived"], "rec-1/seg-00000.ts")
    original = raw.stat_object(store.buckets["originals"], KEY)
    assert derived.metadata.get("x-amz-object-lock-mode") is None
    assert original.metadata.get("x-amz-object-lock-mode") == "COMPLIANCE"


def test_legal_hold_on_and_off(store: S3ObjectStore, raw: Minio, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"held footage")
    store.put_file("originals", KEY, path, digest)
    bucket = store.buckets["originals"]
    assert legal_hold(raw, bucket, KEY) is False
    store.set_legal_hold("originals", KEY, True)
    assert raw.is_object_legal_hold_enabled(bucket, KEY) is True
    store.set_legal_hold("originals", KEY, True)  # idempotent
    assert raw.is_object_legal_hold_enabled(bucket, KEY) is True
    store.set_legal_hold("originals", KEY, False)
    assert raw.is_object_legal_hold_enabled(bucket, KEY) is False


def test_presigned_url_fetches_the_bytes(
    store: S3ObjectStore, seaweed: SeaweedService, tmp_path: Path
) -> None:
    content = os.urandom(100_000)
    path, digest = source(tmp_path, content)
    store.put_file("originals", KEY, path, digest)
    url = store.presigned_get_url("originals", KEY, timedelta(minutes=5))
    assert url.startswith(f"http://{seaweed.endpoint}/")
    assert "versionId=" in url  # pinned to the evidence version
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == content


def test_ensure_buckets_is_idempotent_and_refuses_unlocked_buckets(
    seaweed: SeaweedService, raw: Minio
) -> None:
    store = make_store(seaweed)
    store.ensure_buckets()
    store.ensure_buckets()
    for name in store.buckets.values():
        assert raw.get_bucket_versioning(name).status == "Enabled"
        raw.get_object_lock_config(name)  # raises if Object Lock is off
    plain = f"vigil-plain-{uuid.uuid4().hex[:12]}"
    raw.make_bucket(plain)
    unlocked = S3ObjectStore(raw, originals_bucket=plain, derived_bucket=plain)
    with pytest.raises(StoreError, match="without Object Lock"):
        unlocked.ensure_buckets()


# -- outages and refusals -------------------------------------------------------------------------


def test_refusal_fails_at_once(seaweed: SeaweedService, tmp_path: Path) -> None:
    store = S3ObjectStore.connect(
        seaweed.endpoint, "nobody", "wrong-secret-key", secure=False, outage_budget_s=60
    )
    path, digest = source(tmp_path, b"bytes")
    started = time.monotonic()
    with pytest.raises(StoreRefused) as info:
        store.put_file("originals", KEY, path, digest)
    assert time.monotonic() - started < 5
    assert info.value.code in ("InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch")


def test_unreachable_store_gives_up_after_the_outage_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = S3ObjectStore.connect(
        f"127.0.0.1:{free_port()}", "k", "secret-key", secure=False, outage_budget_s=3
    )
    path, digest = source(tmp_path, b"bytes")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="store.s3"), pytest.raises(StoreUnavailable):
        store.put_file("originals", KEY, path, digest)
    assert 1.5 <= time.monotonic() - started < 30
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retries and all(f"originals/{KEY}" in m for m in retries), retries


class PausingMinio(Minio):
    """Pauses the upload after its first part until told to go on (the store is down then)."""

    first_part_done = threading.Event()
    resume = threading.Event()

    def _upload_part(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        etag = super()._upload_part(*args, **kwargs)
        if not self.first_part_done.is_set():
            self.first_part_done.set()
            assert self.resume.wait(120)
        return etag


@pytest.mark.slow
def test_store_down_for_20s_during_a_put_loses_nothing(
    seaweed: SeaweedService, raw: Minio, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = PausingMinio(
        seaweed.endpoint,
        seaweed.access_key,
        seaweed.secret_key,
        secure=False,
        region="us-east-1",
        http_client=http_client(),
    )
    tag = uuid.uuid4().hex[:12]
    store = S3ObjectStore(
        client,
        originals_bucket=f"vigil-originals-{tag}",
        derived_bucket=f"vigil-derived-{tag}",
        retention=POLICY,
        part_size=5 * MiB,
        outage_budget_s=120,
    )
    store.ensure_buckets()
    path = tmp_path / "big.mp4"
    digest = big_file(path, 30 * MiB, seed=1)
    outcome: list[object] = []

    def put() -> None:
        try:
            outcome.append(store.put_file("originals", KEY, path, digest, category="evidence"))
        except BaseException as exc:  # pragma: no cover - reported below
            outcome.append(exc)

    with caplog.at_level(logging.WARNING, logger="store.s3"):
        worker = threading.Thread(target=put, daemon=True)
        worker.start()
        assert PausingMinio.first_part_done.wait(60)
        seaweed.stop()
        stopped = time.monotonic()
        PausingMinio.resume.set()  # the upload goes on against a dead server
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        assert worker.is_alive(), outcome  # still retrying, not failed, not done
        seaweed.start()
        print(f"store down {time.monotonic() - stopped:.1f} s")
        worker.join(120)
    assert not worker.is_alive()
    assert outcome == [StoredObject("originals", KEY, digest, 30 * MiB)], outcome
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) >= 3
    assert all(f"put {store.buckets['originals']}/{KEY}" in m for m in retries)
    assert store.stat("originals", KEY) == outcome[0]
    with store.local_path("originals", KEY) as local:
        assert sha256_file(local) == (digest, 30 * MiB)
    assert len(versions(raw, store.buckets["originals"], KEY)) == 1


@pytest.mark.slow
def test_a_200mb_upload_keeps_memory_flat(store: S3ObjectStore, tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    size = 200 * MiB
    digest = big_file(path, size, seed=2)
    baseline = vm_rss_kib()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, vm_rss_kib())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stored = store.put_file("originals", KEY, path, digest)
    finally:
        done.set()
        sampler.join()
    assert stored == StoredObject("originals", KEY, digest, size)
    growth_mib = (peak - baseline) / 1024
    print(f"RSS {baseline / 1024:.0f} MiB -> peak {peak / 1024:.0f} MiB (+{growth_mib:.1f} MiB)")
    assert growth_mib < 50


def test_list_keys_under_a_prefix(store: S3ObjectStore, tmp_path: Path) -> None:
    for key in ("ledger/checkpoints/2.json", "ledger/checkpoints/10.json", "rec-1/seg.ts"):
        path, sha = source(tmp_path, key.encode(), key.replace("/", "_"))
        store.put_file("derived", key, path, sha)
    assert store.list_keys("derived", "ledger/checkpoints/") == [
        "ledger/checkpoints/10.json",
        "ledger/checkpoints/2.json",
    ]
    assert store.list_keys("originals", "ledger/") == []


def test_a_signed_head_in_the_worm_bucket_cannot_be_deleted_or_replaced(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    """Issue 13: an insider deleting or overwriting a ledger head in the WORM store is refused
    by Object Lock, and Vigil keeps reading the signed version."""
    catalog = Catalog(make_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}"))
    catalog.migrate()
    key = create_signing_key(tmp_path / "ledger.pem", "vigil.test/custody")
    ledger = Ledger(catalog=catalog, store=store, key=key, work_dir=tmp_path / "work")
    catalog.add_event(Event("view", "alice", "rec-0123456789abcdef", reason="review"))
    head = ledger.checkpoint()
    bucket = store.buckets["derived"]
    (version,) = versions(raw, bucket, head.object_key)
    with pytest.raises(S3Error) as info:
        raw.remove_object(bucket, head.object_key, version_id=version)
    assert info.value.code == "AccessDenied"
    forged = b'{"format": "vigil-checkpoint/1", "note": "forged"}'
    raw.put_object(bucket, head.object_key, io.BytesIO(forged), len(forged))
    raw.remove_object(bucket, head.object_key)  # a delete marker on top
    assert ledger.read_checkpoint(head.object_key).note == head.note
    assert ledger.audit([head.object_key]).ok
    catalog.engine.dispose()
