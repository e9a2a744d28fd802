"""Retention on a real S3 store with Object Lock (SeaweedFS): ``extend_retention`` moves the
COMPLIANCE retain-until, ``delete_expired`` is refused before it (by our check, and by the
store itself when our check is bypassed) and deletes every version after it; and the
retention service end to end, on that store and a SQLite catalogue.

``RetentionPolicy`` counts whole days (at least one), so short retentions are made with
``extend_retention`` on objects stored without a lock (``lock_derived=False``), or written
with a raw client: S3 takes a retain-until date to the second (SeaweedFS keeps whole seconds).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import time
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
from catalog.models import Segment
from catalog.repository import Catalog, Event, recording_id_for
from catalog.retention import DELETED, RetentionDeletedDetail, RetentionService
from interfaces.devservices.seaweed import SeaweedService
from store.base import Bucket, StoredObject
from store.errors import RetentionActive, StoreRefused
from store.retention import RetentionPolicy
from store.s3 import S3ObjectStore
from tests.helpers import recording
from tests.services.fixtures import ExternalS3

pytestmark = pytest.mark.services

KEY = "rec-0123456789abcdef/original.mp4"
SEGMENT = "rec-0123456789abcdef/seg-00000.ts"
POLICY = RetentionPolicy(default_days=183, by_category={"traffic": 30, "incident": 365})
SHORT_S = 3


@pytest.fixture
def raw(seaweed_service: SeaweedService | ExternalS3) -> Minio:
    return Minio(
        seaweed_service.endpoint,
        seaweed_service.access_key,
        seaweed_service.secret_key,
        secure=False,
    )


def make_store(seaweed: SeaweedService | ExternalS3, **kwargs: object) -> S3ObjectStore:
    tag = uuid.uuid4().hex[:12]
    options: dict[str, object] = {
        "secure": False,
        "originals_bucket": f"vigil-originals-{tag}",
        "derived_bucket": f"vigil-derived-{tag}",
        "retention": POLICY,
        "outage_budget_s": 30.0,
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
def store(seaweed_service: SeaweedService | ExternalS3) -> S3ObjectStore:
    """Originals locked for their category's days; derived files stored without a lock."""
    return make_store(seaweed_service, lock_derived=False)


def put(store: S3ObjectStore, tmp_path: Path, bucket: Bucket, key: str, content: bytes) -> str:
    source = tmp_path / "upload"
    source.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    store.put_file(bucket, key, source, digest, category="traffic")
    return digest


def retain_until(raw: Minio, bucket: str, key: str) -> datetime | None:
    retention = raw.get_object_retention(bucket, key)
    assert retention is not None and retention.mode == COMPLIANCE
    return retention.retain_until_date


def versions(raw: Minio, bucket: str, key: str) -> list[tuple[str | None, bool]]:
    return [
        (o.version_id, bool(o.is_delete_marker))
        for o in raw.list_objects(bucket, prefix=key, include_version=True)
        if o.object_name == key
    ]


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 1.0)


# -- the store ----------------------------------------------------------------------------------


def test_extend_retention_moves_retain_until_and_never_shortens(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    bucket = store.buckets["originals"]
    before = datetime.now(UTC)
    put(store, tmp_path, "originals", KEY, b"evidence")
    written = retain_until(raw, bucket, KEY)
    assert written is not None
    assert before + timedelta(days=30) - timedelta(seconds=2) <= written
    assert store.retention("originals", KEY) == written

    wanted = before + timedelta(days=400, microseconds=250_000)
    effective = store.extend_retention("originals", KEY, wanted)
    assert wanted <= effective < wanted + timedelta(seconds=1)  # rounded up to the second
    assert retain_until(raw, bucket, KEY) == effective  # what the store itself holds
    assert store.retention("originals", KEY) == effective

    assert store.extend_retention("originals", KEY, wanted - timedelta(days=100)) == effective
    assert store.extend_retention("originals", KEY, wanted) == effective  # idempotent
    assert retain_until(raw, bucket, KEY) == effective
    assert store.legal_hold("originals", KEY) is False
    store.set_legal_hold("originals", KEY, True)
    assert store.legal_hold("originals", KEY) is True


def test_delete_expired_is_refused_before_expiry_by_us_and_by_the_store(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    bucket = store.buckets["originals"]
    digest = put(store, tmp_path, "originals", KEY, b"evidence")
    until = store.retention("originals", KEY)
    assert until is not None

    with pytest.raises(RetentionActive) as info:  # our check
        store.delete_expired("originals", KEY, datetime.now(UTC))
    assert KEY in str(info.value) and until.isoformat() in str(info.value)
    assert info.value.retain_until == until

    # our check bypassed (a clock a year ahead): the store refuses on its own
    with pytest.raises(StoreRefused) as refused:
        store.delete_expired("originals", KEY, until + timedelta(days=365))
    assert refused.value.code == "AccessDenied"
    assert store.stat("originals", KEY) == StoredObject("originals", KEY, digest, 8)
    assert [marker for _, marker in versions(raw, bucket, KEY)] == [False]  # still one version


def test_a_cache_file_is_stored_unlocked_in_a_locked_bucket_and_deleted_at_once(
    seaweed_service: SeaweedService | ExternalS3, raw: Minio, tmp_path: Path
) -> None:
    """Issue 18: the review proxy kept as a cache (``retain=False``) gets no retention even
    where derived files are locked; the evidence beside it still does."""
    locked = make_store(seaweed_service, lock_derived=True)
    bucket = locked.buckets["derived"]
    source = tmp_path / "proxy"
    source.write_bytes(b"proxy file")
    digest = hashlib.sha256(b"proxy file").hexdigest()
    cache_key = f"rec-cache-{uuid.uuid4().hex[:8]}/proxy/proxy-00000.ts"
    locked.put_file("derived", cache_key, source, digest, category="traffic", retain=False)
    assert locked.retention("derived", cache_key) is None
    evidence = put(locked, tmp_path, "derived", f"{cache_key}.evidence", b"segment")
    assert evidence and locked.retention("derived", f"{cache_key}.evidence") is not None
    locked.delete_expired("derived", cache_key, datetime.now(UTC))
    assert versions(raw, bucket, cache_key) == [] and locked.stat("derived", cache_key) is None
    with pytest.raises(RetentionActive):
        locked.delete_expired("derived", f"{cache_key}.evidence", datetime.now(UTC))


def test_delete_expired_succeeds_after_a_short_retention(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    bucket = store.buckets["derived"]
    put(store, tmp_path, "derived", SEGMENT, b"segment")
    assert store.retention("derived", SEGMENT) is None  # stored without a lock
    until = store.extend_retention(
        "derived", SEGMENT, datetime.now(UTC) + timedelta(seconds=SHORT_S)
    )
    assert retain_until(raw, bucket, SEGMENT) == until

    with pytest.raises(RetentionActive):
        store.delete_expired("derived", SEGMENT, datetime.now(UTC))
    with pytest.raises(StoreRefused, match="AccessDenied"):  # the store's own refusal
        store.delete_expired("derived", SEGMENT, until + timedelta(days=1))
    assert len(versions(raw, bucket, SEGMENT)) == 1

    wait_until(until)
    store.delete_expired("derived", SEGMENT, datetime.now(UTC))
    assert versions(raw, bucket, SEGMENT) == []  # every version gone, no delete marker left
    assert store.stat("derived", SEGMENT) is None
    store.delete_expired("derived", SEGMENT, datetime.now(UTC))  # again: a no-op


def test_legal_hold_blocks_deletion_after_retention_ends(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    bucket = store.buckets["derived"]
    put(store, tmp_path, "derived", SEGMENT, b"segment")
    until = store.extend_retention(
        "derived", SEGMENT, datetime.now(UTC) + timedelta(seconds=SHORT_S)
    )
    store.set_legal_hold("derived", SEGMENT, True)
    wait_until(until)
    with pytest.raises(RetentionActive, match="under legal hold"):
        store.delete_expired("derived", SEGMENT, datetime.now(UTC))
    ((version_id, _),) = versions(raw, bucket, SEGMENT)
    with pytest.raises(S3Error) as info:  # the store enforces the hold itself
        raw.remove_object(bucket, SEGMENT, version_id=version_id)
    assert info.value.code == "AccessDenied"
    store.set_legal_hold("derived", SEGMENT, False)
    store.delete_expired("derived", SEGMENT, datetime.now(UTC))
    assert versions(raw, bucket, SEGMENT) == []


def test_delete_expired_removes_later_versions_and_delete_markers(
    store: S3ObjectStore, raw: Minio, tmp_path: Path
) -> None:
    bucket = store.buckets["derived"]
    put(store, tmp_path, "derived", SEGMENT, b"segment")
    raw.put_object(bucket, SEGMENT, io.BytesIO(b"a later version"), 15)
    raw.remove_object(bucket, SEGMENT)  # a delete marker on top
    assert len(versions(raw, bucket, SEGMENT)) == 3
    store.delete_expired("derived", SEGMENT, datetime.now(UTC))
    assert versions(raw, bucket, SEGMENT) == []


# -- the retention service on S3 ----------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'catalog.sqlite3'}")
    cat = Catalog(engine)
    cat.migrate()
    yield cat
    engine.dispose()
    shutil.rmtree(tmp_path / "db", ignore_errors=True)


def add_recording(
    catalog: Catalog,
    store: S3ObjectStore,
    raw: Minio,
    tmp_path: Path,
    *,
    original_until: datetime | None,
    received_at: datetime,
) -> tuple[str, list[tuple[Bucket, str, str]]]:
    """A catalogued recording with an original and one segment in the store. With
    ``original_until`` the original is written by a raw client with that (short) retention,
    as the policy's whole days cannot; else through the store (30 days, "traffic")."""
    content = b"original footage"
    sha = hashlib.sha256(content).hexdigest()
    rec = recording("s3")
    rec.id, rec.sha256, rec.size = recording_id_for(sha), sha, len(content)
    rec.original_key = f"{rec.id}/original.mp4"
    rec.category, rec.received_at = "traffic", received_at
    if original_until is None:
        put(store, tmp_path, "originals", rec.original_key, content)
    else:
        raw.put_object(
            store.buckets["originals"],
            rec.original_key,
            io.BytesIO(content),
            len(content),
            metadata={"sha256": sha},  # x-amz-meta-sha256, as the store writes it
            retention=Retention(COMPLIANCE, original_until),
        )
    catalog.add_recording(rec, Event("ingest", "tester", rec.id))
    segment_key = f"{rec.id}/seg-00000.ts"
    segment_sha = put(store, tmp_path, "derived", segment_key, b"segment 0")
    catalog.add_segment(
        Segment(
            recording_id=rec.id,
            index=0,
            key=segment_key,
            sha256=segment_sha,
            size=9,
            kind="copy",
            start_s=0.0,
            end_s=10.0,
            frame_count=250,
            chain=segment_sha,
        )
    )
    return rec.id, [("originals", rec.original_key, sha), ("derived", segment_key, segment_sha)]


def test_change_extends_retention_in_the_store(
    store: S3ObjectStore, raw: Minio, catalog: Catalog, tmp_path: Path
) -> None:
    received = datetime.now(UTC) - timedelta(days=1)
    rec_id, objects = add_recording(
        catalog, store, raw, tmp_path, original_until=None, received_at=received
    )
    service = RetentionService(catalog=catalog, store=store, policy=POLICY)
    change = service.change(rec_id, "incident", actor="sgt-lee", reason="assault reported")
    assert change.extended == 2
    for bucket, key, _ in objects:
        until = retain_until(raw, store.buckets[bucket], key)
        assert until is not None
        assert received + timedelta(days=365) <= until < received + timedelta(days=365, seconds=1)


def test_sweep_is_refused_while_the_store_retains_and_deletes_after(
    store: S3ObjectStore, raw: Minio, catalog: Catalog, tmp_path: Path
) -> None:
    """The catalogue says the recording is due (received 40 days ago, 30-day category); the
    store still retains it for a few seconds: refused and recorded, then deleted."""
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=SHORT_S + 1)
    rec_id, objects = add_recording(
        catalog,
        store,
        raw,
        tmp_path,
        original_until=until,
        received_at=datetime.now(UTC) - timedelta(days=40),
    )
    store.extend_retention("derived", objects[1][1], until)
    service = RetentionService(catalog=catalog, store=store, policy=POLICY)

    first = service.sweep(datetime.now(UTC), actor="retention-job")
    (refused,) = first.with_outcome("refused")
    assert refused.error is not None and "retained until" in refused.error
    for bucket, key, _ in objects:
        assert len(versions(raw, store.buckets[bucket], key)) == 1

    wait_until(until)
    second = service.sweep(datetime.now(UTC), actor="retention-job")
    (deleted,) = second.with_outcome("deleted")
    assert deleted.recording_id == rec_id
    for bucket, key, _ in objects:
        assert versions(raw, store.buckets[bucket], key) == []
    assert catalog.recording(rec_id).status == DELETED
    actions = [e.action for e in catalog.events(recording_ids=[rec_id])]
    assert actions == ["ingest", "retention.refused", "retention.deleted"]
    event = catalog.events(recording_ids=[rec_id])[-1]
    assert event.detail is not None
    detail = RetentionDeletedDetail.model_validate_json(event.detail)
    assert [(o.bucket, o.key, o.sha256, o.state) for o in detail.objects] == [
        ("derived", objects[1][1], objects[1][2], "deleted"),
        ("originals", objects[0][1], objects[0][2], "deleted"),
    ]
    assert service.sweep(datetime.now(UTC), actor="retention-job").items == []
