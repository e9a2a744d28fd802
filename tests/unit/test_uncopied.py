"""Issue 18, the logic around segments whose copies are not kept: when custody may leave a copy
out (``derivable``), how a recording's cut is described again (``plan_from_rows``), and how such
a segment is judged by what the original's packets say of it (``uncopied_finding``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from vigil_verify.ledger import SignedSegment
from vigil_verify.packets import PacketRange, RangeFinding
from vigil_verify.verdicts import Finding, Verdict

from catalog.models import Recording, Segment
from ingest.segmenting import derivable
from integrity.segment_files import DONE, SegmentFiles, plan_from_rows
from integrity.uncopied import FromOriginal, uncopied_finding
from transcode.segmenter import SegmentFile, SegmentOutcome

H = "0" * 64


def _ranges(first_video: int, first_audio: int) -> tuple[PacketRange, ...]:
    return (
        PacketRange(stream=0, codec="h264", first=first_video, count=300, sha256=H),
        PacketRange(stream=1, codec="aac", first=first_audio, count=430, sha256=H),
    )


def _outcome(**changes: object) -> SegmentOutcome:
    files = tuple(
        SegmentFile(i, Path(f"seg-{i:05d}.ts"), 10.0 * i, 10.0 * i + 10, 300, ()) for i in range(3)
    )
    base: dict[str, object] = {
        "container": "mpegts",
        "segments": files,
        "damage": None,
        "measured": "split",
        "shift_s": 0.0,
        "packets": (_ranges(0, 0), _ranges(300, 430), _ranges(600, 860)),
        "cuts": (300, 600),
    }
    return SegmentOutcome(**{**base, **changes})  # type: ignore[arg-type]


def test_a_cut_by_listed_packets_with_every_range_signed_needs_no_copy() -> None:
    assert derivable(_outcome())


@pytest.mark.parametrize(
    "changes",
    [
        {"packets": None},  # not known exactly (a recovered stream, a count that disagrees)
        {"cuts": None},  # ffmpeg chose the cuts (too many to list)
        {"cuts": (300, 601)},  # told other packets than the signed ranges start at
        {"damage": "segmenting stopped early"},
        {"packets": (_ranges(0, 0), _ranges(300, 430))},  # a segment without ranges
        {"packets": (_ranges(0, 0), (), _ranges(600, 860))},
    ],
)
def test_anything_short_of_an_exact_cut_keeps_the_copies(changes: dict[str, object]) -> None:
    assert not derivable(_outcome(**changes))


def _recording(**extra: object) -> Recording:
    values: dict[str, object] = {
        "id": "rec-1", "original_key": "rec-1/original.mp4", "video_codec": "h264",
        "audio_tracks": 1,
    }  # fmt: skip
    return Recording(**{**values, **extra})


def _row(index: int, first: int | None, kept: bool = False, suffix: str = ".ts") -> Segment:
    ranges = [{"stream": 0, "codec": "h264", "first": first, "count": 300, "sha256": H}]
    packets = json.dumps(ranges) if first is not None else None
    return Segment(
        recording_id="rec-1", index=index, key=f"rec-1/seg-{index:05d}-abc{suffix}",
        sha256=f"{index}" * 64, size=1, kept=kept, packets=packets,
    )  # fmt: skip


def test_the_cut_is_described_again_from_the_rows() -> None:
    plan = plan_from_rows(_recording(), [_row(2, 600), _row(0, 0), _row(1, 300)])
    assert plan is not None
    assert plan.container == "mpegts" and plan.cuts == (300, 600)
    assert plan.audio and plan.video and plan.original_key == "rec-1/original.mp4"
    assert sorted(plan.files) == [0, 1, 2] and plan.files[1].sha256 == "1" * 64
    matroska = plan_from_rows(_recording(audio_tracks=0), [_row(0, 0, suffix=".mkv")])
    assert matroska is not None and matroska.container == "matroska" and not matroska.audio
    assert plan_from_rows(_recording(), [_row(0, 0), _row(1, None)]) is None
    assert plan_from_rows(_recording(), []) is None


def _signed(index: int) -> SignedSegment:
    return SignedSegment(
        index=index, key=f"rec-1/seg-{index:05d}-abc.ts", sha256=H, size=1,
        start_s=10.0 * index, end_s=10.0 * index + 10, origin_s=0.0, previous=H, chain=H,
        event_id=index, packets=_ranges(0, 0), kept=False,
    )  # fmt: skip


def _original(kind: Verdict, said: dict[int, RangeFinding] | None = None) -> FromOriginal:
    finding = Finding(kind=kind, recording="rec-1", detail="as found")
    return FromOriginal(finding, said, "rec-1/original.mp4", None)


@pytest.mark.parametrize(
    ("original", "verdict", "words"),
    [
        (_original(Verdict.INTACT), Verdict.INTACT, "whose bytes are as signed"),
        (_original(Verdict.MISSING), Verdict.MISSING, "is gone"),
        (_original(Verdict.BYTES_ALTERED), Verdict.UNVERIFIABLE, "could not be read"),
        (
            _original(Verdict.BYTES_ALTERED, {1: RangeFinding(1, "same")}),
            Verdict.INTACT,
            "as signed (the original changed elsewhere)",
        ),
        (
            _original(Verdict.BYTES_ALTERED, {1: RangeFinding(1, "differs", (0,))}),
            Verdict.BYTES_ALTERED,
            "differ from the signed ones (stream 0)",
        ),
        (
            _original(Verdict.TRUNCATED, {1: RangeFinding(1, "short", (0, 1))}),
            Verdict.TRUNCATED,
            "ends before its signed packets do (stream 0, 1)",
        ),
    ],
)
def test_a_segment_without_a_copy_is_what_the_originals_packets_say(
    original: FromOriginal, verdict: Verdict, words: str
) -> None:
    found = uncopied_finding("rec-1", _signed(1), original)
    assert found.kind == verdict and found.index == 1
    assert found.detail.startswith("no copy kept: ") and words in found.detail


def test_the_cut_cache_keeps_the_last_recordings_and_none_unused_for_its_period(
    tmp_path: Path,
) -> None:
    files = SegmentFiles(
        store=None,
        tools=None,
        cache_dir=tmp_path,
        keep_recordings=3,
        keep_s=3600,  # type: ignore[arg-type]
    )
    now = time.time()
    ages = {"rec-a": 10, "rec-b": 20, "rec-c": 30, "rec-d": 40, "rec-old": 7200}
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / DONE).touch()
        os.utime(tmp_path / name, (now - age, now - age))
    for name, age in (("cut-1", 7200), ("read-2", 7200), ("read-3", 5)):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (now - age, now - age))
    files._evict(keep=tmp_path / "rec-new")
    # the one just cut, and the two most recently used besides; a crash's leftovers go too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["read-3", "rec-a", "rec-b"]
