"""Unit tests for store.local.LocalFolderStore: write-once objects in a temporary folder."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from store.base import StoredObject, sha256_file
from store.errors import ObjectConflict, ObjectMissing, StoreError
from store.local import LocalFolderStore

KEY = "rec-0123456789abcdef/original.mp4"


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "objects")


def source(tmp_path: Path, content: bytes, name: str = "upload") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_buckets_are_created(tmp_path: Path) -> None:
    LocalFolderStore(tmp_path / "objects")
    assert (tmp_path / "objects" / "originals").is_dir()
    assert (tmp_path / "objects" / "derived").is_dir()


def test_sha256_file_hashes_in_chunks(tmp_path: Path) -> None:
    content = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB chunk
    path, digest = source(tmp_path, content)
    assert sha256_file(path) == (digest, len(content))


def test_put_then_stat(store: LocalFolderStore, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"video bytes" * 1000)
    stored = store.put_file("originals", KEY, path, digest)
    assert stored == StoredObject("originals", KEY, digest, 11000)
    assert store.stat("originals", KEY) == stored
    assert (store.root / "originals" / KEY).read_bytes() == b"video bytes" * 1000
    assert store.stat("derived", KEY) is None  # buckets are separate


def test_stat_of_missing_key_is_none(store: LocalFolderStore) -> None:
    assert store.stat("originals", "rec-x/none.mp4") is None


def test_put_same_content_again_is_a_no_op(store: LocalFolderStore, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"same bytes")
    first = store.put_file("originals", KEY, path, digest)
    target = store.root / "originals" / KEY
    before = target.stat()
    again, _ = source(tmp_path, b"same bytes", name="upload-again")
    second = store.put_file("originals", KEY, again, digest)
    after = target.stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_different_content_under_same_key_conflicts_and_keeps_original(
    store: LocalFolderStore, tmp_path: Path
) -> None:
    path, digest = source(tmp_path, b"the original")
    store.put_file("originals", KEY, path, digest)
    other, other_digest = source(tmp_path, b"a forgery", name="forgery")
    with pytest.raises(ObjectConflict) as info:
        store.put_file("originals", KEY, other, other_digest)
    assert info.value.existing == digest
    assert info.value.offered == other_digest
    assert (info.value.bucket, info.value.key) == ("originals", KEY)
    assert (store.root / "originals" / KEY).read_bytes() == b"the original"


def test_hash_that_does_not_match_the_file_is_refused_and_leaves_nothing(
    store: LocalFolderStore, tmp_path: Path
) -> None:
    path, _ = source(tmp_path, b"actual bytes")
    claimed = hashlib.sha256(b"what we thought we had").hexdigest()
    with pytest.raises(StoreError, match="does not have the hash given") as info:
        store.put_file("originals", KEY, path, claimed)
    assert not isinstance(info.value, ObjectConflict)
    assert store.stat("originals", KEY) is None
    assert all_files(store.root) == []


def test_stored_files_are_read_only(store: LocalFolderStore, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"evidence")
    store.put_file("derived", "rec-1/seg-00000.ts", path, digest)
    mode = stat.S_IMODE((store.root / "derived" / "rec-1" / "seg-00000.ts").stat().st_mode)
    assert mode == 0o444


def test_no_temporary_files_are_left_behind(store: LocalFolderStore, tmp_path: Path) -> None:
    for i in range(3):
        path, digest = source(tmp_path, f"segment {i}".encode(), name=f"s{i}")
        store.put_file("derived", f"rec-1/seg-{i:05d}.ts", path, digest)
    path, digest = source(tmp_path, b"segment 0", name="again")
    store.put_file("derived", "rec-1/seg-00000.ts", path, digest)
    names = sorted(p.name for p in (store.root / "derived" / "rec-1").iterdir())
    assert names == ["seg-00000.ts", "seg-00001.ts", "seg-00002.ts"]


@pytest.mark.parametrize(
    "key",
    ["../escape.mp4", "rec-1/../../escape.mp4", "rec-1/..", "/etc/passwd", "/rec-1/original.mp4"],
)
def test_keys_leaving_the_bucket_are_refused(
    store: LocalFolderStore, tmp_path: Path, key: str
) -> None:
    path, digest = source(tmp_path, b"bytes")
    with pytest.raises(StoreError, match="invalid object key"):
        store.put_file("originals", key, path, digest)
    with pytest.raises(StoreError, match="invalid object key"):
        store.stat("originals", key)
    with pytest.raises(StoreError, match="invalid object key"), store.open("originals", key):
        pass  # pragma: no cover
    assert all_files(store.root) == []
    assert not (tmp_path / "escape.mp4").exists()


def test_key_with_dots_inside_a_name_is_allowed(store: LocalFolderStore, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"bytes")
    stored = store.put_file("derived", "rec-1/playlist..m3u8", path, digest)
    assert stored.key == "rec-1/playlist..m3u8"


def test_local_path_and_open_read_the_object(store: LocalFolderStore, tmp_path: Path) -> None:
    path, digest = source(tmp_path, b"payload")
    store.put_file("originals", KEY, path, digest)
    with store.local_path("originals", KEY) as local:
        assert local == store.root / "originals" / KEY
        assert local.read_bytes() == b"payload"
    with store.open("originals", KEY) as fh:
        assert fh.read() == b"payload"


def test_local_path_and_open_of_missing_key_raise_object_missing(store: LocalFolderStore) -> None:
    with pytest.raises(ObjectMissing) as info, store.local_path("originals", "rec-1/none.mp4"):
        pass  # pragma: no cover
    assert (info.value.bucket, info.value.key) == ("originals", "rec-1/none.mp4")
    with pytest.raises(ObjectMissing), store.open("derived", "rec-1/none.ts"):
        pass  # pragma: no cover


def test_concurrent_writer_of_same_content_is_accepted(
    store: LocalFolderStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker links the same object between our stat and our link."""
    path, digest = source(tmp_path, b"raced bytes")
    real_link = os.link

    def link_after_other_writer(src: str, dst: str) -> None:
        real_link(src, tmp_path / "other-writer")
        os.replace(tmp_path / "other-writer", dst)  # the other worker got there first
        real_link(src, dst)  # raises FileExistsError, as os.link does

    monkeypatch.setattr("store.local.os.link", link_after_other_writer)
    stored = store.put_file("originals", KEY, path, digest)
    assert stored.sha256 == digest
    assert (store.root / "originals" / KEY).read_bytes() == b"raced bytes"
    assert [p.name for p in (store.root / "originals" / KEY).parent.iterdir()] == ["original.mp4"]


def test_concurrent_writer_of_other_content_is_a_conflict(
    store: LocalFolderStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, digest = source(tmp_path, b"ours")
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"theirs")
    real_link = os.link

    def link_after_other_writer(src: str, dst: str) -> None:
        real_link(theirs, dst)
        real_link(src, dst)

    monkeypatch.setattr("store.local.os.link", link_after_other_writer)
    with pytest.raises(ObjectConflict):
        store.put_file("originals", KEY, path, digest)
    assert (store.root / "originals" / KEY).read_bytes() == b"theirs"
    assert [p.name for p in (store.root / "originals" / KEY).parent.iterdir()] == ["original.mp4"]


def test_a_file_on_the_same_file_system_is_linked_not_copied(
    store: LocalFolderStore, tmp_path: Path
) -> None:
    path, digest = source(tmp_path, b"evidence" * 1000)
    store.put_file("originals", KEY, path, digest)
    assert (store.root / "originals" / KEY).stat().st_ino == path.stat().st_ino
    path.unlink()  # the caller drops its staging name; the object stays
    assert store.stat("originals", KEY) == StoredObject("originals", KEY, digest, 8000)


def test_a_file_on_another_file_system_is_copied_and_checked(store: LocalFolderStore) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == store.root.stat().st_dev:
        pytest.skip("no second file system to copy from")
    path = shm / f"vigil-test-{os.getpid()}"
    path.write_bytes(b"from elsewhere")
    try:
        digest = hashlib.sha256(b"from elsewhere").hexdigest()
        store.put_file("derived", "rec-1/x.ts", path, digest)
        stored = store.root / "derived" / "rec-1" / "x.ts"
        assert stored.stat().st_ino != path.stat().st_ino
        assert stored.read_bytes() == b"from elsewhere"
        wrong = hashlib.sha256(b"other").hexdigest()
        with pytest.raises(StoreError, match="content changed while storing"):
            store.put_file("derived", "rec-1/y.ts", path, wrong)
        assert store.stat("derived", "rec-1/y.ts") is None
    finally:
        path.unlink()


def test_list_keys_under_a_prefix(store: LocalFolderStore, tmp_path: Path) -> None:
    for key in ("ledger/checkpoints/2.json", "ledger/checkpoints/10.json", "rec-1/seg.ts"):
        path, sha = source(tmp_path, key.encode(), key.replace("/", "_"))
        store.put_file("derived", key, path, sha)
    assert store.list_keys("derived", "ledger/checkpoints/") == [
        "ledger/checkpoints/10.json",
        "ledger/checkpoints/2.json",
    ]
    assert store.list_keys("derived", "") == [
        "ledger/checkpoints/10.json",
        "ledger/checkpoints/2.json",
        "rec-1/seg.ts",
    ]
    assert store.list_keys("derived", "nothing/") == []
    assert store.list_keys("originals", "ledger/") == []
