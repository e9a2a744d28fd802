"""Issue 18: custody signs each segment's packets in the original (per stream, in decode
order, each packet in its canonical form), chains them, and ``vigil verify`` and ``vigil
match`` judge footage by them: a change to the stored original is named at its segment, a
remux of it is the same footage.

One MPEG-TS recording (what live recording and many cameras write: segments 0-10, 10-20,
20-30 s) on the embedded defaults, each test tampering with the stored original and putting
it back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from vigil_verify.packets import Stream, packet_hash_args, parse_framehash

from integrity.match import match_copy
from tests import tamper
from tests.helpers import ingest_and_process, object_path
from transcode.samples import SampleSpec
from workers.app import Vigil, build_app
from workers.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.copies_kept]

TS = SampleSpec(duration_s=30.0, width=640, height=360, video_bitrate="1M", seed=18,
                container="ts")  # fmt: skip


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, make_clip: Callable[[SampleSpec], Path]
) -> Iterator[tuple[Vigil, str, Path]]:
    app = build_app(Settings(data_dir=tmp_path_factory.mktemp("packets") / "vigil"))
    rec = ingest_and_process(app, make_clip(TS))
    stored = object_path(app, "originals", app.catalog.recording(rec).original_key)
    yield app, rec, stored
    app.stop()


@pytest.fixture
def original(recorded: tuple[Vigil, str, Path], tmp_path: Path) -> Iterator[Path]:
    """The stored original, writable for one test and put back after it."""
    _app, _rec, stored = recorded
    kept = shutil.copyfile(stored, tmp_path / "kept.ts")
    stored.chmod(0o644)
    yield stored
    shutil.copyfile(kept, stored)


def _signed(app: Vigil, rec: str) -> list[dict[str, object]]:
    events = [e for e in app.catalog.events(recording_ids=[rec]) if e.action == "segment.stored"]
    return [json.loads(e.detail or "{}") for e in sorted(events, key=lambda e: e.id)]


def test_every_packet_of_the_original_is_signed_in_exactly_one_segment(
    recorded: tuple[Vigil, str, Path], ffmpeg: str
) -> None:
    app, rec, stored = recorded
    signed = _signed(app, rec)
    assert len(signed) == 3
    streams = {(r["stream"], r["codec"]) for d in signed for r in d["packets"]}  # type: ignore[union-attr]
    assert streams == {(0, "h264"), (1, "aac")}
    out = subprocess.run(
        [ffmpeg, *packet_hash_args(stored, _streams(signed))],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    totals = {s: 0 for s in (0, 1)}
    for p in parse_framehash(out.decode()):
        totals[p.stream] += 1
    for n, stream in enumerate((0, 1)):
        ranges = [d["packets"][n] for d in signed]  # type: ignore[index]
        assert [r["first"] for r in ranges] == [0, *(
            sum(x["count"] for x in ranges[:k]) for k in range(1, len(ranges)))]  # fmt: skip
        assert sum(r["count"] for r in ranges) == totals[stream] > 100
    report = app.verifier.verify_recording(rec, actor="auditor")
    assert report.ok, report.problems


def _streams(signed: list[dict[str, object]]) -> list[Stream]:
    return [Stream(r["stream"], r["codec"]) for r in signed[0]["packets"]]  # type: ignore[attr-defined]


def test_a_byte_flipped_in_the_original_is_named_at_its_segment(
    recorded: tuple[Vigil, str, Path], original: Path, ffmpeg: str
) -> None:
    app, rec, _ = recorded
    pos, size = tamper.packet_at(ffmpeg, original, "v:0", 14.0)
    tamper.flip_byte(original, pos + min(size, 188 * 3))  # inside that picture's payload
    report = app.verifier.verify_recording(rec, actor="auditor")
    assert not report.ok
    assert report.original.kind == "bytes altered"
    assert "segment(s) 1 (changed: stream 0)" in report.original.detail, report.original
    assert len(report.original.ranges) == 1
    assert report.original.ranges[0][0] == pytest.approx(10.0, abs=0.1)
    assert {c.kind for c in report.segments} == {"intact"}  # the segment copies are untouched


def test_a_swapped_packet_range_is_named_at_its_segment(
    recorded: tuple[Vigil, str, Path], original: Path, ffmpeg: str
) -> None:
    """Two runs of 20 transport packets inside segment 2 (23 s and 26 s) change places."""
    app, rec, _ = recorded
    run = 188 * 20
    a = tamper.packet_at(ffmpeg, original, "v:0", 23.0)[0] // 188 * 188
    b = tamper.packet_at(ffmpeg, original, "v:0", 26.0)[0] // 188 * 188
    data = bytearray(original.read_bytes())
    data[a : a + run], data[b : b + run] = data[b : b + run], data[a : a + run]
    original.write_bytes(bytes(data))
    report = app.verifier.verify_recording(rec, actor="auditor")
    assert report.original.kind == "bytes altered", report.original
    assert "segment(s) 2 (changed" in report.original.detail, report.original.detail
    assert len(report.original.ranges) == 1
    assert report.original.ranges[0][0] == pytest.approx(20.0, abs=0.1)


def test_a_truncated_original_is_named_from_the_segment_it_ends_in(
    recorded: tuple[Vigil, str, Path], original: Path, ffmpeg: str
) -> None:
    app, rec, _ = recorded
    pos, _size = tamper.packet_at(ffmpeg, original, "v:0", 15.0)
    with original.open("r+b") as handle:
        handle.truncate(pos)
    report = app.verifier.verify_recording(rec, actor="auditor")
    assert report.original.kind == "truncated", report.original
    assert report.original.ranges[0][0] == pytest.approx(10.0, abs=0.1)


def test_an_untouched_recording_remuxed_through_ffmpeg_is_the_same_footage(
    recorded: tuple[Vigil, str, Path], original: Path, ffmpeg: str, tmp_path: Path
) -> None:
    """A remux (to MP4, with AAC out of ADTS and H.264 out of start codes) keeps every
    packet: ``vigil match`` finds every segment the same without decoding a frame, and the
    stored original, if it were replaced by it, is re-muxed, not altered."""
    app, rec, _ = recorded
    remux = tmp_path / "remux.mp4"
    tamper.run([ffmpeg, "-v", "error", "-y", "-i", str(original), "-map", "0", "-c", "copy",
                str(remux)])  # fmt: skip
    report = match_copy(app.catalog, app.tools, rec, remux, actor="defence", ledger=app.ledger)
    assert report.clean and [v.status for v in report.segments] == ["same"] * 3
    event = [e for e in app.catalog.events(recording_ids=[rec]) if e.action == "match"][-1]
    assert json.loads(event.detail or "{}")["by_packets"] is True
    shutil.copyfile(remux, original)
    verified = app.verifier.verify_recording(rec, actor="auditor")
    assert verified.original.kind == "bytes altered", verified.original
    assert not verified.original.ranges
    assert "the footage as signed" in verified.original.detail
