"""A file ingested whole is cut from its staged bytes while its original is stored (issue 20).

With S3 the original travels to the store; the segment worker used to download it back before
it could cut. Ingest given a custody path now cuts, hashes and stores the segment files
meanwhile, and catalogues them once the original and its row are on record (objects before
rows). Shown here on embedded defaults with the same custody path the segment stage runs, and
against Kafka, S3 and PostgreSQL in ``test_distributed.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.segmenting import no_progress
from tests.helpers import metadata
from tests.integration.test_crash_safety import Crash, FailingStore, assert_complete_once, rows
from workers.app import Vigil
from workers.wiring import make_custody

pytestmark = [pytest.mark.ffmpeg, pytest.mark.copies_kept]


def cutting_app(app_factory: Callable[..., Vigil]) -> Vigil:
    """An embedded app whose ingest cuts at ingest, as with S3 (``workers.app.make_ingest``)."""
    app = app_factory()
    app.ingest.service.custody = make_custody(
        app.settings, catalog=app.catalog, store=app.store, tools=app.tools, progress=no_progress
    )
    return app


def test_a_file_is_on_record_when_ingest_returns_and_is_processed_once(
    app_factory: Callable[..., Vigil], standard_clip: Path
) -> None:
    app = cutting_app(app_factory)
    result = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    rec = app.catalog.recording(result.recording_id)
    assert rec.status == "segmented"
    assert rec.segment_count == 4
    actions = [e.action for e in app.catalog.events(recording_ids=[rec.id])]
    assert actions[0] == "ingest"
    assert actions[1:] == ["segment.stored"] * 4 + ["segment"]
    assert not list(app.settings.work_dir.glob(f"{rec.id}*")), "the cut's files are left"
    # the announcement still goes out: the segment stage finds it on record, the rest follows
    app.run_pipeline()
    assert_complete_once(app, rec.id, 4)
    assert rows(app, "SELECT count(*) FROM custody_events WHERE action = 'segment.stored'") == 4


def test_an_original_that_cannot_be_stored_leaves_no_row_and_its_retry_no_duplicate(
    app_factory: Callable[..., Vigil], standard_clip: Path
) -> None:
    app = cutting_app(app_factory)
    app.ingest.service.store = FailingStore(app.settings.store_root, fail_originals=True)
    with pytest.raises(Crash):
        app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    assert rows(app, "SELECT count(*) FROM recordings") == 0
    assert rows(app, "SELECT count(*) FROM segments") == 0
    assert not list(app.settings.work_dir.glob("*.staged-*")), "the cut's files are left"
    # the segment files the cut stored meanwhile are what the same cut stores again
    (derived,) = (app.settings.store_root / "derived").iterdir()
    before = sorted(p.name for p in derived.glob("seg-*.ts"))
    assert len(before) == 4
    app.ingest.service.store = app.store
    result = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    assert result.created
    app.run_pipeline()
    assert_complete_once(app, result.recording_id, 4)
    assert sorted(p.name for p in derived.glob("seg-*.ts")) == before


def test_a_cut_that_fails_at_ingest_is_left_to_the_segment_stage(
    app_factory: Callable[..., Vigil], standard_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = cutting_app(app_factory)
    custody = app.ingest.service.custody
    assert custody is not None
    blocked = app.settings.data_dir / "not-a-folder"
    blocked.write_text("")
    custody.work_dir = blocked  # the cut cannot write its files: an OSError
    result = app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    assert result.created and result.announce
    assert app.catalog.recording(result.recording_id).status == "stored"
    assert rows(app, "SELECT count(*) FROM segments") == 0
    assert "left to the segment stage" in caplog.text
    app.run_pipeline()
    assert_complete_once(app, result.recording_id, 4)


def test_a_crash_while_the_cut_is_catalogued_is_finished_by_a_resume_without_duplicates(
    app_factory: Callable[..., Vigil], standard_clip: Path
) -> None:
    app = cutting_app(app_factory)
    # the 5th derived write is the playlist, stored while the segment rows are written: its
    # failure is raised once they are in, so all 4 are written either way
    failing = FailingStore(app.settings.store_root, fail_on_derived=5)
    app.ingest.service.store = failing
    custody = app.ingest.service.custody
    assert custody is not None
    custody.store = custody.writer.store = failing
    with pytest.raises(Crash):
        app.ingest.ingest_file(standard_clip, metadata("a.mp4"), actor="test")
    (rec,) = app.catalog.recordings()
    assert rec.status == "segmenting"
    assert rows(app, "SELECT count(*) FROM segments") == 4
    app.stop()

    restarted = app_factory()
    assert restarted.resume_unfinished() == 1
    restarted.run_pipeline()
    assert_complete_once(restarted, rec.id, 4)
    assert (
        rows(restarted, "SELECT count(*) FROM custody_events WHERE action = 'segment.stored'") == 4
    )
