"""Unit tests for vigil_verify.chain, integrity.continuity and transcode.hls."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from vigil_verify.chain import ChainEntry, build_chain, first_break, link
from vigil_verify.continuity import (
    Discontinuity,
    Span,
    WallDiscontinuity,
    WallSpan,
    check_spans,
    check_wall_spans,
    tolerance_s,
)

from transcode.hls import PlaylistEntry, playlist

ANCHOR = hashlib.sha256(b"original recording bytes").hexdigest()


def sha(n: int) -> str:
    return hashlib.sha256(f"segment {n}".encode()).hexdigest()


ENTRIES = [ChainEntry(i, i * 10.0, (i + 1) * 10.0, sha(i)) for i in range(5)]


# -- chain ------------------------------------------------------------------------------------


def test_link_is_sha256_of_previous_position_times_and_segment_hash() -> None:
    entry = ChainEntry(2, 20.0, 30.5, sha(2))
    payload = (
        bytes.fromhex(ANCHOR)
        + (2).to_bytes(8, "big", signed=True)
        + (20_000_000).to_bytes(8, "big", signed=True)
        + (30_500_000).to_bytes(8, "big", signed=True)
        + bytes.fromhex(sha(2))
    )
    assert link(ANCHOR, entry) == hashlib.sha256(payload).hexdigest()


def test_chain_is_deterministic() -> None:
    first = build_chain(ANCHOR, ENTRIES)
    assert first == build_chain(ANCHOR, list(ENTRIES))
    assert len(first) == 5
    assert len(set(first)) == 5
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in first)


def test_chain_of_nothing_is_empty() -> None:
    assert build_chain(ANCHOR, []) == []


def test_chain_is_anchored_on_the_original_hash() -> None:
    other = hashlib.sha256(b"another original").hexdigest()
    a, b = build_chain(ANCHOR, ENTRIES), build_chain(other, ENTRIES)
    assert all(x != y for x, y in zip(a, b, strict=True))
    assert a[0] == link(ANCHOR, ENTRIES[0])


@pytest.mark.parametrize(
    "change",
    [
        {"index": 7},
        {"start_s": 20.000001},
        {"end_s": 29.999},
        {"sha256": sha(99)},
    ],
    ids=["index", "start", "end", "sha256"],
)
@pytest.mark.parametrize("position", [0, 2, 4])
def test_any_change_alters_that_link_and_every_later_one(
    change: dict[str, object], position: int
) -> None:
    original = build_chain(ANCHOR, ENTRIES)
    changed = list(ENTRIES)
    changed[position] = replace(changed[position], **change)  # type: ignore[arg-type]
    altered = build_chain(ANCHOR, changed)
    assert altered[:position] == original[:position]
    assert all(x != y for x, y in zip(altered[position:], original[position:], strict=True))
    assert first_break(ANCHOR, changed, original) == position


def test_times_below_a_microsecond_do_not_change_the_link() -> None:
    nudged = replace(ENTRIES[1], start_s=ENTRIES[1].start_s + 1e-8)
    assert link(ANCHOR, nudged) == link(ANCHOR, ENTRIES[1])


def test_first_break_is_none_for_an_intact_chain() -> None:
    assert first_break(ANCHOR, ENTRIES, build_chain(ANCHOR, ENTRIES)) is None


def test_first_break_finds_a_tampered_recorded_link() -> None:
    recorded = build_chain(ANCHOR, ENTRIES)
    recorded[3] = "0" * 64
    assert first_break(ANCHOR, ENTRIES, recorded) == 3


def test_first_break_finds_swapped_segments() -> None:
    recorded = build_chain(ANCHOR, ENTRIES)
    swapped = [*ENTRIES[:1], ENTRIES[2], ENTRIES[1], *ENTRIES[3:]]
    assert first_break(ANCHOR, swapped, recorded) == 1


def test_first_break_with_wrong_anchor_is_zero() -> None:
    recorded = build_chain(ANCHOR, ENTRIES)
    assert first_break("f" * 64, ENTRIES, recorded) == 0


# -- continuity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second_start", "tolerance", "expected"),
    [
        (10.0, 0.04, []),  # touching
        (10.03, 0.04, []),  # gap within tolerance
        (9.97, 0.04, []),  # overlap within tolerance
        (10.04, 0.04, []),  # exactly the tolerance
        (12.5, 0.04, [Discontinuity("gap", "s0", "s1", 10.0, pytest.approx(2.5))]),
        (9.0, 0.04, [Discontinuity("overlap", "s0", "s1", 9.0, pytest.approx(1.0))]),
        (10.1, 0.0, [Discontinuity("gap", "s0", "s1", 10.0, pytest.approx(0.1))]),
    ],
    ids=["touching", "small-gap", "small-overlap", "at-tolerance", "gap", "overlap", "zero-tol"],
)
def test_check_spans_table(
    second_start: float, tolerance: float, expected: list[Discontinuity]
) -> None:
    spans = [Span("s0", 0.0, 10.0), Span("s1", second_start, second_start + 10.0)]
    assert check_spans(spans, tolerance) == expected


def test_check_spans_reports_each_pair_in_order() -> None:
    spans = [
        Span("a", 0, 10),
        Span("b", 10, 20),
        Span("c", 25, 30),
        Span("d", 29, 40),
        Span("e", 40, 50),
    ]
    found = check_spans(spans, 0.1)
    assert [(d.kind, d.after, d.before, d.start, d.seconds) for d in found] == [
        ("gap", "b", "c", 20, 5),
        ("overlap", "c", "d", 29, 1),
    ]


@pytest.mark.parametrize("spans", [[], [Span("only", 0, 5)]])
def test_check_spans_with_fewer_than_two_spans_finds_nothing(spans: list[Span]) -> None:
    assert check_spans(spans, 0.0) == []


T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def wall(label: str, start_min: float, minutes: float) -> WallSpan:
    start = T0 + timedelta(minutes=start_min)
    return WallSpan(label, start, start + timedelta(minutes=minutes))


def test_check_wall_spans_sorts_by_start() -> None:
    spans = [
        wall("third", 30, 10),
        wall("first", 0, 10),
        wall("fourth", 38, 5),
        wall("second", 10, 15),
    ]
    found = check_wall_spans(spans, 2.0)
    assert found == [
        WallDiscontinuity("gap", "second", "third", T0 + timedelta(minutes=25), 300.0),
        WallDiscontinuity("overlap", "third", "fourth", T0 + timedelta(minutes=38), 120.0),
    ]


def test_check_wall_spans_gap_between_recordings() -> None:
    spans = [wall("b", 12, 5), wall("a", 0, 10)]
    assert check_wall_spans(spans, 2.0) == [
        WallDiscontinuity("gap", "a", "b", T0 + timedelta(minutes=10), 120.0)
    ]


def test_check_wall_spans_within_tolerance_and_across_time_zones() -> None:
    plus8 = timezone(timedelta(hours=8))
    a = wall("a", 0, 10)
    # b starts 1 s after a ends, written in +08:00.
    b_start = (a.end + timedelta(seconds=1)).astimezone(plus8)
    b = WallSpan("b", b_start, b_start + timedelta(minutes=5))
    assert check_wall_spans([b, a], 2.0) == []
    assert check_wall_spans([b, a], 0.5) == [WallDiscontinuity("gap", "a", "b", a.end, 1.0)]


@pytest.mark.parametrize(
    ("frame", "hold", "frames", "expected"),
    [
        (0.04, 0.04, 1.0, 0.04),  # constant rate: one frame
        (0.04, 0.04, 2.5, 0.1),
        (1 / 30, 0.2, 1.0, 0.4 - 1 / 30),  # variable rate: two holds less a frame
        (0.04, 0.04, 0.0, 0.04),
        (0.0, 0.0, 1.0, 1e-3),  # never zero
    ],
)
def test_tolerance_s_table(frame: float, hold: float, frames: float, expected: float) -> None:
    assert tolerance_s(frame, hold, frames) == pytest.approx(expected)


# -- hls.playlist -----------------------------------------------------------------------------


def entries(*spans: tuple[float, float]) -> list[PlaylistEntry]:
    return [PlaylistEntry(f"seg-{i:05d}.ts", a, b) for i, (a, b) in enumerate(spans)]


def test_playlist_header_entries_and_endlist() -> None:
    text = playlist(entries((0, 10), (10, 20), (20, 24.5)), wall_start=None, gap_tolerance_s=0.04)
    assert text.endswith("\n")
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:10",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXTINF:10.000000,",
        "seg-00000.ts",
        "#EXTINF:10.000000,",
        "seg-00001.ts",
        "#EXTINF:4.500000,",
        "seg-00002.ts",
        "#EXT-X-ENDLIST",
    ]


def test_playlist_target_duration_rounds_the_longest_segment_up() -> None:
    text = playlist(entries((0, 10.2), (10.2, 18)), wall_start=None, gap_tolerance_s=0.04)
    assert "#EXT-X-TARGETDURATION:11" in text.splitlines()
    assert "#EXTINF:10.200000," in text.splitlines()


def test_playlist_empty_is_valid_vod() -> None:
    lines = playlist([], wall_start=None, gap_tolerance_s=0.04).splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-TARGETDURATION:1" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert not any(line.startswith("#EXTINF") for line in lines)


def test_playlist_marks_discontinuity_before_a_gap_only() -> None:
    text = playlist(
        entries((0, 10), (10.02, 20), (25, 30), (30, 40)), wall_start=None, gap_tolerance_s=0.04
    )
    lines = text.splitlines()
    assert lines.count("#EXT-X-DISCONTINUITY") == 1
    at = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[at + 1 : at + 3] == ["#EXTINF:5.000000,", "seg-00002.ts"]


def test_playlist_program_date_time_from_wall_start() -> None:
    start = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    text = playlist(entries((0, 10), (10, 20), (22.5, 30)), wall_start=start, gap_tolerance_s=0.04)
    lines = text.splitlines()
    stamps = [
        line.partition(":")[2] for line in lines if line.startswith("#EXT-X-PROGRAM-DATE-TIME")
    ]
    assert stamps == [
        "2026-11-27T09:30:00.000+00:00",
        "2026-11-27T09:30:10.000+00:00",
        "2026-11-27T09:30:22.500+00:00",
    ]
    # Each date-time tag sits right before its segment's EXTINF; the discontinuity before both.
    third = lines.index("seg-00002.ts")
    assert lines[third - 3 : third] == [
        "#EXT-X-DISCONTINUITY",
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-27T09:30:22.500+00:00",
        "#EXTINF:7.500000,",
    ]


def test_playlist_without_wall_start_has_no_program_date_time() -> None:
    text = playlist(entries((0, 10)), wall_start=None, gap_tolerance_s=0.04)
    assert "PROGRAM-DATE-TIME" not in text
