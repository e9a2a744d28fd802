"""A crash at any point loses no footage and duplicates nothing.

Failures are injected at each step of the path (a store that fails mid-way, a decoder that
dies, a catalogue write that never happens), and a real ``vigil ingest`` process is SIGKILLed
mid-run. After a restart (``resume`` or re-ingesting the file) the catalogue holds every
segment exactly once and verification passes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from catalog.repository import Catalog
from store.base import Bucket, StoredObject
from store.local import LocalFolderStore
from tests.helpers import VIGIL, metadata
from transcode.ffmpeg import Tools
from workers.app import Vigil
from workers.messages import OriginalStored
from workers.stages import PerceptualStage, SegmentStage

pytestmark = [pytest.mark.ffmpeg, pytest.mark.copies_kept]


class Crash(RuntimeError):
    pass


class FailingStore(LocalFolderStore):
    """Fails the n-th derived write (or, ``fail_originals``, every write of an original), as a
    disk or process failure would."""

    def __init__(
        self, root: Path, fail_on_derived: int = 0, *, fail_originals: bool = False
    ) -> None:
        super().__init__(root)
        self.fail_on_derived = fail_on_derived
        self.fail_originals = fail_originals
        self.derived_writes = 0

    def put_file(
        self,
        bucket: Bucket,
        key: str,
        path: Path,
        sha256: str,
        *,
        category: str | None = None,
        verified: bool = False,
        retain: bool = True,
    ) -> StoredObject:
        if bucket == "originals" and self.fail_originals:
            raise Crash(f"injected failure storing {key}")
        if bucket == "derived":
            self.derived_writes += 1
            if self.derived_writes == self.fail_on_derived:
                raise Crash(f"injected failure storing {key}")
        return super().put_file(
            bucket, key, path, sha256, category=category, verified=verified, retain=retain
        )


def rows(app: Vigil, sql: str) -> int:
    with app.catalog.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def assert_complete_once(app: Vigil, rec_id: str, expected_segments: int) -> None:
    rec = app.catalog.recording(rec_id)
    assert rec.status == "complete"
    assert rows(app, "SELECT count(*) FROM recordings") == 1
    assert rows(app, "SELECT count(*) FROM segments") == expected_segments
    indexes = [s.index for s in app.catalog.segments(rec_id)]
    assert indexes == list(range(expected_segments))
    actions = [e.action for e in app.catalog.events(recording_ids=[rec_id])]
    for once in ("ingest", "segment", "catalogue"):
        assert actions.count(once) == 1, actions
    derived = sorted(p.name for p in (app.settings.store_root / "derived" / rec_id).iterdir())
    assert len([n for n in derived if n.endswith(".ts")]) == expected_segments
    assert app.verifier.verify_recording(rec_id, actor="test").ok


def test_a_store_failure_mid_segmenting_is_resumed_without_duplicates(
    app_factory: Callable[..., Vigil], standard_clip: Path
) -> None:
    app = app_factory()
    failing = FailingStore(app.settings.store_root, fail_on_derived=3)
    app.ingest.service.store = failing
    segment_stage = app.stages["segment"]
    assert isinstance(segment_stage, SegmentStage)
    segment_stage.custody.store = failing
    segment_stage.custody.writer.store = failing
    result = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    with pytest.raises(Crash):
        app.run_pipeline()
    # The files are stored first (while the keyframes decode), the rows after all of them:
    # the files put beside the failed third (three at a time) made it, no row points at them.
    assert rows(app, "SELECT count(*) FROM segments") == 0
    stored = app.settings.store_root / "derived" / result.recording_id
    assert len(list(stored.glob("seg-*.ts"))) in (2, 3)
    assert app.catalog.recording(result.recording_id).status == "segmenting"
    app.stop()

    restarted = app_factory()
    again = restarted.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    assert again.resumed
    assert not again.created
    restarted.run_pipeline()
    assert_complete_once(restarted, result.recording_id, 4)
    # Those stored before the failure were found identical and kept: no duplicates.
    assert len(list(stored.glob("seg-*.ts"))) == 4


def test_a_decoder_dying_in_the_perceptual_stage_is_resumed(
    app_factory: Callable[..., Vigil], standard_clip: Path
) -> None:
    app = app_factory()
    phash_stage = app.stages["phash"]
    assert isinstance(phash_stage, PerceptualStage)
    phash_stage.tools = Tools(phash_stage.tools.runner, "/nonexistent/ffmpeg", 10)
    result = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    with pytest.raises(FileNotFoundError):
        app.run_pipeline()
    assert app.catalog.recording(result.recording_id).status == "segmented"
    app.stop()

    restarted = app_factory()
    restarted.bus.publish(
        OriginalStored(
            recording_id=result.recording_id,
            original_key=app.catalog.recording(result.recording_id).original_key,
            sha256=result.sha256,
            size=result.size,
        )
    )
    restarted.run_pipeline()
    assert_complete_once(restarted, result.recording_id, 4)


def test_a_crash_between_storing_and_cataloguing_the_original(
    app_factory: Callable[..., Vigil], standard_clip: Path
) -> None:
    app = app_factory()

    def crash(*_args: object, **_kwargs: object) -> None:
        raise Crash("power lost before the catalogue write")

    original_add = Catalog.add_recording
    app.catalog.add_recording = crash  # type: ignore[method-assign, assignment]
    with pytest.raises(Crash):
        app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    stored = list((app.settings.store_root / "originals").rglob("original.mp4"))
    assert len(stored) == 1  # the footage is safe in the store
    assert rows(app, "SELECT count(*) FROM recordings") == 0
    app.catalog.add_recording = original_add.__get__(app.catalog)  # type: ignore[method-assign]

    result = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    assert result.created
    app.run_pipeline()
    assert list((app.settings.store_root / "originals").rglob("original.mp4")) == stored
    assert_complete_once(app, result.recording_id, 4)


def test_sigkill_of_a_real_ingest_then_resume(
    app_factory: Callable[..., Vigil], standard_clip: Path, tmp_path: Path
) -> None:
    data = tmp_path / "vigil"
    env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
    cmd = [
        sys.executable,
        "-m",
        "interfaces.cli",
        "ingest",
        str(standard_clip),
        "--device",
        "BC-0042",
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert proc.stderr is not None
    killed_at = ""
    deadline = time.monotonic() + 120
    for raw in iter(proc.stderr.readline, b""):
        line = raw.decode()
        if " phash " in line:  # segments are stored and catalogued, hashing is under way
            killed_at = line.strip()
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, killed_at
    assert killed_at

    resumed = subprocess.run(
        [*VIGIL, "-q", "resume"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert b"resumed 1 recording" in resumed.stdout

    app = app_factory()
    (rec,) = app.catalog.recordings()
    assert_complete_once(app, rec.id, 4)
    assert not list(app.settings.staging_dir.iterdir())
