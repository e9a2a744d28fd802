"""Issue 18: ``vigil storage compact`` moves a recording stored with every segment's copy (the
default ``VIGIL_SEGMENT_COPIES=keep``) to the form without copies: a signed ``segment.uncopied``
event and the rows first, then the copies deleted as the store allows. Idempotent, and a crash
at any point leaves a state the next run finishes; a copy under legal hold stays.

One H.264/AAC MP4 (segments 0-10, 10-20, 20-30 s) on the embedded defaults, ingested once; each
test works on its own copy of the data folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vigil_verify.report import verify_package
from vigil_verify.verdicts import Verdict

import ingest.segmenting as segmenting
from integrity.compact import Compactor, CompactReport
from integrity.export import export_case
from integrity.ledger import Ledger
from store.base import ObjectStore
from tests import tamper
from tests.helpers import CrashingStore, copy_data, ingest_and_process, object_path
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.copies_kept]

MP4 = SampleSpec(duration_s=30.0, width=640, height=360, video_bitrate="1M", seed=33)
CASE = "CASE-18C"


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("compact") / "vigil"
    app = build_app(Settings(data_dir=folder))
    try:
        rec = ingest_and_process(app, make_clip(MP4))
    finally:
        app.stop()
    return folder, rec


@pytest.fixture
def app(prepared: tuple[Path, str], tmp_path: Path) -> Iterator[Vigil]:
    folder, _rec = prepared
    mine = copy_data(folder, tmp_path / "vigil")
    vigil = build_app(Settings(data_dir=mine))
    yield vigil
    vigil.stop()


def _compact(app: Vigil, apply: bool, store: ObjectStore | None = None) -> CompactReport:
    compactor = Compactor(
        catalog=app.catalog, store=store or app.store, ledger=app.ledger,
        segment_files=app.segment_files,
    )  # fmt: skip
    return compactor.run(apply=apply, actor="operator")


def _exported_clean(app: Vigil, rec: str, folder: Path, ffmpeg: str) -> bool:
    """Link ``rec`` to a case, export the case, and say whether ``vigil-verify`` finds the
    package clean (its segments cut again from the original)."""
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident", actor="sam")
    package = export_case(
        app.catalog, app.store, app.ledger, CASE, folder, actor="reviewer",
        reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=app.worm_checkpoints(), segment_files=app.segment_files,
    )  # fmt: skip
    return verify_package(package, ffmpeg=ffmpeg).clean


def _copies(app: Vigil, rec: str) -> list[str]:
    return [s.key for s in app.catalog.segments(rec) if app.store.stat("derived", s.key)]


def _uncopied_events(app: Vigil, rec: str) -> int:
    return sum(e.action == "segment.uncopied" for e in app.catalog.events(recording_ids=[rec]))


def test_a_dry_run_says_what_would_be_freed_and_changes_nothing(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    rec = prepared[1]
    sizes = sum(s.size for s in app.catalog.segments(rec))
    report = _compact(app, apply=False)
    assert [(i.recording_id, i.state) for i in report.items] == [(rec, "to compact")]
    assert report.freed_bytes == sizes > 0
    assert len(_copies(app, rec)) == 3 and _uncopied_events(app, rec) == 0
    assert all(s.kept for s in app.catalog.segments(rec))


def test_apply_deletes_every_copy_after_the_signed_event_and_the_recording_still_verifies(
    app: Vigil, prepared: tuple[Path, str], tmp_path: Path, ffmpeg: str
) -> None:
    rec = prepared[1]
    report = _compact(app, apply=True)
    assert [i.state for i in report.items] == ["compacted"] and not report.items[0].retained
    assert _copies(app, rec) == [] and _uncopied_events(app, rec) == 1
    assert not any(s.kept for s in app.catalog.segments(rec))
    result = app.verifier.verify_recording(rec, actor="auditor", full=True)
    assert result.ok, result.problems
    assert all(s.detail.startswith("no copy kept") for s in result.segments)
    again = _compact(app, apply=True)  # idempotent: nothing left, nothing logged
    assert again.freed_bytes == 0 and again.items[0].detail == "no segment copy is stored"
    assert _uncopied_events(app, rec) == 1
    assert _exported_clean(app, rec, tmp_path / "export", ffmpeg)


@pytest.mark.parametrize("after", [0, 1, 2])
def test_a_crash_between_the_deletions_is_finished_by_the_next_run(
    app: Vigil, prepared: tuple[Path, str], after: int
) -> None:
    rec = prepared[1]
    crashing = CrashingStore(app.store, after)
    with pytest.raises(KeyboardInterrupt):
        _compact(app, apply=True, store=crashing)  # type: ignore[arg-type]
    assert len(_copies(app, rec)) == 3 - after and _uncopied_events(app, rec) == 1
    assert app.verifier.verify_recording(rec, actor="auditor").ok  # judged by the original
    report = _compact(app, apply=True)
    assert report.items[0].state == "compacted" and _copies(app, rec) == []
    assert _uncopied_events(app, rec) == 1  # nothing logged twice


def test_a_copy_under_legal_hold_stays_until_the_hold_is_lifted(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    rec = prepared[1]
    app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident", actor="sam")
    held = _compact(app, apply=True).items[0]
    assert held.state == "compacted" and held.freed_bytes == 0
    assert len(held.retained) == 3 and all("legal hold" in r for r in held.retained)
    assert len(_copies(app, rec)) == 3 and app.verifier.verify_recording(rec, actor="a").ok
    app.cases.unlink(CASE, rec, reason="case closed", actor="sam")
    freed = _compact(app, apply=True).items[0]
    assert freed.freed_bytes > 0 and not freed.retained and _copies(app, rec) == []


def test_a_recording_whose_original_is_not_the_signed_one_keeps_its_copies(
    app: Vigil, prepared: tuple[Path, str], ffmpeg: str
) -> None:
    rec = prepared[1]
    original = object_path(app, "originals", app.catalog.recording(rec).original_key)
    original.chmod(0o644)
    pos, size = tamper.packet_at(ffmpeg, original, "v:0", 14.0)
    tamper.flip_byte(original, pos + size // 2)
    item = _compact(app, apply=True).items[0]
    assert item.state == "kept" and "not the signed one" in item.detail
    assert len(_copies(app, rec)) == 3 and _uncopied_events(app, rec) == 0
    result = app.verifier.verify_recording(rec, actor="auditor")
    assert result.original.kind == Verdict.BYTES_ALTERED
    assert [s.kind for s in result.segments] == [Verdict.INTACT] * 3  # the copies, as signed


def test_retention_ends_a_compacted_recording_whole(app: Vigil, prepared: tuple[Path, str]) -> None:
    """After compaction the original is the segments' only copy: the retention sweep deletes it
    and any copy compaction left behind."""
    rec = prepared[1]
    with pytest.raises(KeyboardInterrupt):
        _compact(app, apply=True, store=CrashingStore(app.store, 1))  # type: ignore[arg-type]
    left = _copies(app, rec)
    assert len(left) == 2
    app.catalog.update_recording(rec, category="traffic")  # uncategorised footage is never due
    report = app.retention.sweep(datetime.now(UTC) + timedelta(days=4000), actor="retention")
    [item] = report.items
    assert item.outcome == "deleted", item.error
    assert sorted(o.key for o in item.objects if o.bucket == "derived") == sorted(
        [*left, f"{rec}/index.m3u8"]
    )
    assert _copies(app, rec) == []
    assert app.store.stat("originals", app.catalog.recording(rec).original_key) is None


def test_a_copy_that_is_not_the_signed_bytes_is_never_compacted_away(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    rec = prepared[1]
    copy = object_path(app, "derived", app.catalog.segments(rec)[1].key)
    copy.chmod(0o644)
    tamper.flip_byte(copy, copy.stat().st_size // 2)
    item = _compact(app, apply=True).items[0]
    assert item.state == "kept" and "segment 1's copy is not the signed bytes" in item.detail
    assert len(_copies(app, rec)) == 3 and _uncopied_events(app, rec) == 0
    assert not app.verifier.verify_recording(rec, actor="auditor").ok  # still named


@pytest.fixture
def old_form(
    tmp_path: Path, make_clip: Callable[[SampleSpec], Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Vigil, str]]:
    """A recording as Vigil stored it before issue 18: segment copies, no packets signed (the
    custody path run as it was then, the packet pass not asked for)."""
    cut = segmenting.segment_file

    def as_before(*args: object, **kwargs: object) -> object:
        return cut(*args, **{**kwargs, "hash_packets": False})  # type: ignore[arg-type]

    monkeypatch.setattr(segmenting, "segment_file", as_before)
    vigil = build_app(Settings(data_dir=tmp_path / "old"))
    rec = ingest_and_process(vigil, make_clip(MP4))
    monkeypatch.undo()
    yield vigil, rec
    vigil.stop()


def test_a_recording_logged_before_packets_were_signed_gets_them_logged_and_compacts(
    old_form: tuple[Vigil, str], tmp_path: Path, ffmpeg: str
) -> None:
    app, rec = old_form
    assert all(not s.packets for s in app.catalog.segments(rec))
    item = _compact(app, apply=True).items[0]
    assert item.state == "compacted", item.detail
    assert _copies(app, rec) == [] and _uncopied_events(app, rec) == 1
    rows = app.catalog.segments(rec)
    assert all(s.packet_ranges and not s.kept for s in rows)
    assert [s.packet_ranges[0].first for s in rows] == [0, 300, 600]  # 10 s of 30 fps each
    result = app.verifier.verify_recording(rec, actor="auditor", full=True)
    assert result.ok, result.problems  # the chain as it was signed; rows as the log says
    assert result.chain_break is None and not result.catalogue
    assert _exported_clean(app, rec, tmp_path / "export", ffmpeg)


def test_where_this_process_cannot_sign_no_copy_goes_before_the_event_is_signed(
    app: Vigil, prepared: tuple[Path, str]
) -> None:
    """Under Kafka the CLI holds the verifying key only and ``vigil ledger run`` signs: nothing
    is done before the recording's events are signed, and the copies wait for a run after the
    ``segment.uncopied`` event is too."""
    rec = prepared[1]
    reader = Ledger(
        catalog=app.catalog, store=app.store, key=app.ledger.verifying,
        work_dir=app.settings.work_dir,
    )  # fmt: skip
    assert not reader.can_sign
    compactor = Compactor(
        catalog=app.catalog, store=app.store, ledger=reader, segment_files=app.segment_files
    )
    unsigned = compactor.run(apply=True, actor="operator").items[0]
    assert unsigned.state == "kept" and "signed tree head" in unsigned.detail
    app.ledger.checkpoint()  # the signer's turn: the ingest's events
    first = compactor.run(apply=True, actor="operator").items[0]
    assert first.state == "to compact" and "signed tree head" in first.detail
    assert len(_copies(app, rec)) == 3 and _uncopied_events(app, rec) == 1
    app.ledger.checkpoint()  # the segment.uncopied event
    second = compactor.run(apply=True, actor="operator").items[0]
    assert second.state == "compacted" and _copies(app, rec) == []
    assert _uncopied_events(app, rec) == 1
