"""An insider with write access to the data folder and the catalogue, and no key: each thing they
can rewrite is named, with the right kind, recording and segment, by ``vigil verify``, ``vigil
ledger check`` and ``vigil-verify`` on an export; an untouched system stays clean.

Kinds are the words of ``vigil_verify.verdicts``: what the footage is (*bytes altered*, *foreign*,
...: stored bytes differ from the signed log) and *catalogue altered* (a row differs from the
event that signed its value). docs/threat-model.md points here.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from vigil_verify.report import PackageReport, verify_package

from integrity.audit import FullAudit, full_audit
from integrity.export import export_case
from integrity.match import MatchError, match_copy
from integrity.timeline import case_timeline
from integrity.verify import RecordingVerification
from tests.helpers import copy_data, ingest_and_process, object_path
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow, pytest.mark.copies_kept]

CASE = "CASE-INSIDER"
OTHER = SampleSpec(duration_s=12.0, width=640, height=360, video_bitrate="1M", seed=11)


@dataclass(frozen=True)
class Store:
    app: Vigil
    rec: str  # the recording the insider works on (4 segments)
    other: str  # another recording, whose footage they have


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory,
    standard_recorded: tuple[Path, str],
    make_clip: Callable[[SampleSpec], Path],
) -> tuple[Path, str, str]:
    """The data folder as the insider finds it, made once (on a copy of the run's standard
    recording): each test works on its own copy."""
    root = copy_data(standard_recorded[0], tmp_path_factory.mktemp("insider") / "vigil")
    rec = standard_recorded[1]
    app = build_app(Settings(data_dir=root))
    try:
        other = ingest_and_process(app, make_clip(OTHER), device="BC-0099")
        app.cases.link(CASE, rec, from_s=None, to_s=None, reason="incident 4711", actor="officer")
        app.ledger.checkpoint()  # as every CLI command does after writing events
    finally:
        app.stop()
    return root, rec, other


@pytest.fixture
def store(
    app_factory: Callable[..., Vigil], recorded: tuple[Path, str, str], tmp_path: Path
) -> Store:
    root, rec, other = recorded
    copy_data(root, tmp_path / "vigil")  # where app_factory's app lives
    return Store(app_factory(), rec, other)


def sql(app: Vigil, statement: str, **params: object) -> None:
    with app.catalog.engine.begin() as conn:
        conn.execute(text(statement), params)


def writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


def verify(s: Store) -> RecordingVerification:
    return s.app.verifier.verify_recording(s.rec, actor="auditor")


def named(result: RecordingVerification | FullAudit) -> set[tuple[str, int | None, str]]:
    rows = result.catalogue if isinstance(result, RecordingVerification) else result.rows
    return {(f.recording_id, f.segment, f.field) for f in rows}


def exported(s: Store, tmp_path: Path, ffmpeg: str) -> PackageReport:
    package = export_case(
        s.app.catalog, s.app.store, s.app.ledger, CASE, tmp_path / "export",
        actor="reviewer", reason="disclosure", tolerance_frames=1.0, device_tolerance_s=2.0,
        worm_checkpoints=s.app.worm_checkpoints(), segment_files=s.app.segment_files,
    )  # fmt: skip
    return verify_package(package, ffmpeg=ffmpeg)


def segment_states(result: RecordingVerification) -> dict[int, str]:
    return {c.index: c.kind for c in result.segments if c.index is not None}


def test_an_untouched_system_is_clean_everywhere(store: Store, tmp_path: Path, ffmpeg: str) -> None:
    result = verify(store)
    assert result.ok, result.problems
    assert result.catalogue == ()
    audit = full_audit(store.app.ledger)
    assert audit.ok, (audit.ledger.problems, audit.rows, audit.log_problems)
    report = exported(store, tmp_path, ffmpeg)
    assert report.clean, report


def test_rows_rewritten_are_catalogue_altered_and_the_footage_intact(store: Store) -> None:
    app, rec = store.app, store.rec
    foreign = app.catalog.segments(store.other)[0]
    sql(app, 'UPDATE segments SET sha256 = :s, chain = :c WHERE recording_id = :r AND "index" = 3',
        s=foreign.sha256, c=foreign.chain, r=rec)  # fmt: skip
    sql(app, "UPDATE recordings SET chain_head = :c WHERE id = :r", c=foreign.chain, r=rec)
    result = verify(store)
    assert not result.ok
    assert named(result) == {(rec, 3, "sha256"), (rec, 3, "chain link"), (rec, None, "chain head")}
    assert set(segment_states(result).values()) == {"intact"}  # the footage itself is untouched
    assert result.original.kind == "intact"
    assert any(p.startswith(f"catalogue altered: {rec} segment 3 sha256") for p in result.problems)
    audit = full_audit(app.ledger)
    assert audit.ledger.ok  # the log is intact ...
    assert named(audit) == named(result)  # ... and every rewritten row is named against it
    # The case timeline shows what the verification found, from its custody event.
    view = case_timeline(app.catalog, CASE, tolerance_frames=1.0, device_tolerance_s=2.0)
    states = {s.index: s.integrity for s in view.recordings[0].segments}
    assert states == {0: "verified", 1: "verified", 2: "verified", 3: "catalogue altered"}


def test_a_file_replaced_by_another_recordings_is_foreign_and_the_rows_clean(
    store: Store, tmp_path: Path, ffmpeg: str
) -> None:
    app, rec = store.app, store.rec
    target = app.catalog.segments(rec)[2]
    foreign = app.catalog.segments(store.other)[0]
    shutil.copyfile(object_path(app, "derived", foreign.key), writable(
        object_path(app, "derived", target.key)))  # fmt: skip
    result = verify(store)
    assert segment_states(result) == {0: "intact", 1: "intact", 2: "foreign", 3: "intact"}
    (found,) = [c for c in result.segments if c.index == 2]
    assert f"segment 0 of recording {store.other}" in found.detail  # whose it is, from the log
    assert result.catalogue == ()  # nobody touched a row: no false "catalogue altered"
    assert full_audit(app.ledger).ok  # the log and the rows are intact: nothing to name there
    report = exported(store, tmp_path, ffmpeg)
    assert {f.index: f.kind for f in report.segments if f.recording == rec}[2] != "intact"
    assert not report.clean


def test_rows_and_files_rewritten_together_are_both_named(
    store: Store, tmp_path: Path, ffmpeg: str
) -> None:
    """The first wave's miss: a segment replaced by another recording's, and its hash, chain
    rows and the recording's chain head rewritten to match. The log still knows."""
    app, rec = store.app, store.rec
    target = app.catalog.segments(rec)[3]
    foreign = app.catalog.segments(store.other)[0]
    shutil.copyfile(object_path(app, "derived", foreign.key), writable(
        object_path(app, "derived", target.key)))  # fmt: skip
    sql(app, 'UPDATE segments SET sha256 = :s, size = :z, chain = :c'
        ' WHERE recording_id = :r AND "index" = 3',
        s=foreign.sha256, z=foreign.size, c=foreign.chain, r=rec)  # fmt: skip
    sql(app, "UPDATE recordings SET chain_head = :c WHERE id = :r", c=foreign.chain, r=rec)
    result = verify(store)
    assert segment_states(result)[3] == "foreign"
    assert {(rec, 3, "sha256"), (rec, 3, "chain link")} <= named(result)
    assert {(rec, 3, "sha256"), (rec, 3, "chain link")} <= named(full_audit(app.ledger))
    report = exported(store, tmp_path, ffmpeg)
    kinds = {f.index: f.kind for f in report.segments if f.recording == rec}
    assert kinds[3] != "intact" and all(kinds[i] == "intact" for i in (0, 1, 2))


def test_an_original_grown_by_a_byte_with_its_rows_rewritten(
    store: Store, tmp_path: Path, ffmpeg: str
) -> None:
    app, rec = store.app, store.rec
    row = app.catalog.recording(rec)
    path = writable(object_path(app, "originals", row.original_key))
    with path.open("ab") as fh:
        fh.write(b"\x00")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    sql(app, "UPDATE recordings SET sha256 = :s, size = size + 1, chain_anchor = :s WHERE id = :r",
        s=sha, r=rec)  # fmt: skip
    result = verify(store)
    assert result.original.kind == "bytes altered"
    assert {(rec, None, "sha256"), (rec, None, "size"), (rec, None, "chain anchor")} <= named(
        result
    )
    assert set(segment_states(result).values()) == {"intact"}
    audit = full_audit(app.ledger)
    assert {(rec, None, "sha256"), (rec, None, "size")} <= named(audit)
    report = exported(store, tmp_path, ffmpeg)
    assert report.originals and report.originals[0].kind != "intact"


def test_a_per_frame_hash_blob_swapped_with_its_row(store: Store) -> None:
    app, rec = store.app, store.rec
    foreign = app.catalog.segments(store.other)[0]
    sql(app, 'UPDATE segments SET phash = :b, phash_digest = :d, phash_frames = :f'
        ' WHERE recording_id = :r AND "index" = 1',
        b=foreign.phash, d=foreign.phash_digest, f=foreign.phash_frames, r=rec)  # fmt: skip
    result = verify(store)
    assert named(result) == {(rec, 1, "per-frame hashes sha256")}
    assert named(full_audit(app.ledger)) == {(rec, 1, "per-frame hashes sha256")}


@pytest.mark.parametrize("blob", ["another recording's", "none"])
def test_an_audio_fingerprint_blob_rewritten_or_dropped_is_named_and_never_believed(
    store: Store, blob: str
) -> None:
    """Without its signed fingerprints a segment's sound would go uncompared: a muted warning
    would pass. A blob swapped or set to NULL is named, and ``vigil match`` refuses it."""
    app, rec = store.app, store.rec
    foreign = app.catalog.segments(store.other)[0].audio if blob != "none" else None
    sql(app, 'UPDATE segments SET audio = :b WHERE recording_id = :r AND "index" = 2',
        b=foreign, r=rec)  # fmt: skip
    assert named(verify(store)) == {(rec, 2, "audio fingerprints sha256")}
    assert named(full_audit(app.ledger)) == {(rec, 2, "audio fingerprints sha256")}
    original = object_path(app, "originals", app.catalog.recording(rec).original_key)
    with pytest.raises(MatchError, match="segment 2: its audio fingerprints are not the ones"):
        match_copy(app.catalog, app.tools, rec, original, actor="auditor", ledger=app.ledger)


def test_packet_ranges_rewritten_in_a_row_are_named_never_believed(store: Store) -> None:
    """Issue 18: a row's packet ranges (JSON) moved to cover another segment's packets, or
    made unreadable, is catalogue altered; what verify judges by is the signed ranges."""
    app, rec = store.app, store.rec
    moved = app.catalog.segments(rec)[1].packets
    sql(app, 'UPDATE segments SET packets = :p WHERE recording_id = :r AND "index" = 2',
        p=moved, r=rec)  # fmt: skip
    sql(app, 'UPDATE segments SET packets = :p WHERE recording_id = :r AND "index" = 3',
        p="{not json", r=rec)  # fmt: skip
    result = verify(store)
    assert named(result) == {(rec, 2, "packet ranges digest"), (rec, 3, "packet ranges digest")}
    assert set(segment_states(result).values()) == {"intact"}
    assert result.original.kind == "intact"
