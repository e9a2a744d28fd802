"""Segment cuts and timing from the recording's own cadence (``transcode.timing``), the
ffmpeg command they make, packet numbering in the probe, and gaps on catalogue rows
(``catalog.gaps.recording_gaps``). docs/continuity.md has the rule."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from catalog.gaps import recording_gaps
from catalog.models import Segment
from tests.helpers import recording
from transcode.commands import MAX_CUT_LIST, NO_CUT, SegmentJob, segment_command
from transcode.probe import StreamInfo, Track, parse_framecrc
from transcode.timing import WRAP_TICKS, plan_cuts, segment_timings, unwrap

TB = Fraction(1, 90_000)
FRAME = 3000  # ticks of 1/30 s


def track(
    pts: list[int] | np.ndarray, *, gop: int = 30, keys: list[bool] | None = None, dur: int = FRAME
) -> Track:
    """A video track, packets in the order given; a keyframe every ``gop`` packets."""
    n = len(pts)
    key = keys if keys is not None else [i % gop == 0 for i in range(n)]
    return Track(
        stream=StreamInfo(index=0, media_type="video", codec="h264", time_base=TB),
        pts=np.asarray(pts, dtype=np.int64),
        duration=np.full(n, dur, dtype=np.int64),
        size=np.full(n, 1000, dtype=np.int64),
        key=np.array(key, dtype=np.bool_),
    )


def cfr(seconds: float, start_s: float = 0.0) -> list[int]:
    first = round(start_s * 90_000)
    return [first + i * FRAME for i in range(round(seconds * 30))]


# -- plan_cuts --------------------------------------------------------------------------------


@pytest.mark.parametrize("start_s", [0.0, 1000.0, 2**33 / 90_000 - 3])
def test_cuts_every_ten_seconds_of_footage_wherever_the_timestamps_start(start_s: float) -> None:
    assert plan_cuts(track(cfr(25, start_s)), 10.0, 1.0) == [300, 600]


def test_a_forward_jump_starts_a_segment_and_the_length_is_kept_on_both_sides() -> None:
    pts = cfr(15) + cfr(15, start_s=15 + 3600)
    # 10 s, then 5 s up to the jump, then 10 s and 5 s: not a segment per keyframe after it.
    assert plan_cuts(track(pts), 10.0, 1.0) == [300, 450, 750]


def test_a_clock_set_back_starts_a_segment() -> None:
    pts = cfr(15, start_s=3600) + cfr(15)
    assert plan_cuts(track(pts), 10.0, 1.0) == [300, 450, 750]


def test_a_hole_shorter_than_a_segment_is_no_cut_and_not_counted_as_footage() -> None:
    pts = cfr(6) + cfr(10, start_s=8)  # a 2 s hole at 6 s
    (cut,) = plan_cuts(track(pts), 10.0, 1.0)
    # 10 s of footage are reached at 12 s on the timestamps, not at 10 s.
    assert pts[cut] == 12 * 90_000


def test_a_gop_longer_than_the_segment_cuts_at_every_keyframe() -> None:
    # vtest.avi: 10 fps, a keyframe every 25 s.
    pts = [i * 9000 for i in range(795)]
    assert plan_cuts(track(pts, gop=250, dur=9000), 10.0, 1.0) == [250, 500, 750]


def test_variable_rate_footage_is_cut_on_recorded_seconds() -> None:
    slow = [5 * 90_000 + i * 9000 for i in range(100)]  # 10 fps from 5 s to 15 s
    pts = cfr(5) + slow + cfr(5, start_s=15)
    every_second = [i % 30 == 0 for i in range(150)]
    keys = every_second + [i % 10 == 0 for i in range(100)] + every_second
    assert plan_cuts(track(pts, keys=keys), 10.0, 1.0) == [200]  # the keyframe at 10.0 s


def test_cuts_follow_file_order_with_b_frames() -> None:
    # Decode order: I P B B ..., a keyframe every 30 packets; presentation is 30 fps.
    order = []
    for gop in range(25):
        base = gop * 30
        order += [base, base + 3, base + 1, base + 2]
        order += [base + i for i in range(4, 30)]
    pts = [i * FRAME for i in order]
    assert plan_cuts(track(pts), 10.0, 1.0) == [300, 600]


def test_too_short_to_cut() -> None:
    assert plan_cuts(track([0]), 10.0, 1.0) == []
    assert plan_cuts(track(cfr(9)), 10.0, 1.0) == []


# -- segment_timings --------------------------------------------------------------------------


def test_a_segment_ends_where_the_next_starts() -> None:
    a, b = track(cfr(10)), track(cfr(10, start_s=10))
    first, second = segment_timings([a, b], 1.0)
    assert (first.start_s, first.end_s, first.frames) == (0.0, 10.0, 300)
    assert second.start_s == pytest.approx(10.0)
    assert second.end_s == pytest.approx(20.0)
    assert first.holes == second.holes == ()


def test_a_variable_rate_boundary_is_held_to_the_next_picture_not_the_packet_duration() -> None:
    slow = [i * 9000 for i in range(100)]  # 10 fps, packets claiming 1/30 s each
    a, b = track(slow[:50]), track(slow[50:])
    first, second = segment_timings([a, b], 1.0)
    assert first.end_s == pytest.approx(second.start_s)
    assert second.end_s == pytest.approx(9.9 + 0.1)  # held for the cadence, not 1/30 s


def test_a_gap_at_a_boundary_lies_between_the_two_segments_and_belongs_to_the_first() -> None:
    a, b = track(cfr(10)), track(cfr(10, start_s=3610))
    first, second = segment_timings([a, b], 1.0)
    assert first.end_s == pytest.approx(10.0)
    assert first.holes == (pytest.approx((10.0, 3610.0)),)
    assert second.holes == ()
    assert second.start_s == pytest.approx(3610.0)


def test_a_gap_inside_a_segment_is_its_hole() -> None:
    (only,) = segment_timings([track(cfr(5) + cfr(5, start_s=6))], 1.0)
    assert only.holes == (pytest.approx((5.0, 6.0)),)
    assert only.end_s == pytest.approx(11.0)


def test_ts_segments_read_alone_across_the_33_bit_wrap_are_put_back_on_one_clock() -> None:
    # What ffmpeg 5.1 reads from 10 s segments of a TS that wraps 70 s in, all in one run:
    # the first at its own time, the others from -60 s (the wrap at 0), as measured.
    top_s = (WRAP_TICKS - 70 * 90_000) / 90_000
    read = [track(cfr(10, start_s=top_s))]
    read += [track(cfr(10, start_s=-60 + 10 * i)) for i in range(7)]
    one_clock = unwrap(read)
    assert [t.start_s for t in one_clock] == pytest.approx([top_s + 10 * i for i in range(8)])
    assert all(t.holes == () for t in segment_timings(one_clock, 1.0))


def test_segments_need_pictures() -> None:
    with pytest.raises(ValueError, match="at least one picture"):
        segment_timings([track([])], 1.0)


# -- the command and packet numbers -----------------------------------------------------------


def job(cuts: tuple[int, ...] | None) -> SegmentJob:
    return SegmentJob(Path("/in/a.ts"), Path("/out"), 10.0, "mpegts", cuts=cuts)


def value_after(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_segment_command_lists_the_planned_cuts_instead_of_a_duration() -> None:
    cmd = segment_command("ffmpeg", job((300, 450, 750)))
    assert value_after(cmd, "-segment_frames") == "300,450,750"
    assert "-segment_time" not in cmd


def test_segment_command_without_a_cut_makes_one_segment() -> None:
    cmd = segment_command("ffmpeg", job(()))
    assert value_after(cmd, "-segment_frames") == str(NO_CUT)


def test_segment_command_falls_back_to_ffmpeg_cutting_when_the_list_is_too_long() -> None:
    too_many = tuple(range(10_000_000, 10_000_000 + MAX_CUT_LIST // 8 + 1))
    for cuts in (None, too_many):
        cmd = segment_command("ffmpeg", job(cuts))
        assert value_after(cmd, "-segment_time") == "10"
        assert "-segment_frames" not in cmd


def test_packet_numbers_count_the_packets_the_arrays_leave_out() -> None:
    text = "\n".join(
        [
            "#tb 0: 1/90000",
            "#media_type 0: video",
            "#codec_id 0: h264",
            "0,          0,       3000,     3000,     8773, 0x1",
            "0, -9223372036854775808, -9223372036854775808, 0, 10, 0x2",  # no timestamp
            "0,       3000,       6000,     3000,        0, 0x3",  # empty: repeat the last
            "0,       6000,       9000,     3000,     2192, 0x4, F=0x0",
        ]
    )
    _streams, tracks = parse_framecrc(text)
    assert tracks[0].numbers.tolist() == [0, 3]
    assert track(cfr(1)).numbers.tolist() == list(range(30))


# -- recording_gaps on catalogue rows ---------------------------------------------------------


def row(index: int, start: float, end: float, holes: list[list[float]] | None = None) -> Segment:
    return Segment(
        recording_id="rec",
        index=index,
        start_s=start,
        end_s=end,
        holes=json.dumps(holes) if holes else None,
    )


def test_a_gap_kept_at_a_boundary_is_listed_once_between_the_two_segments() -> None:
    rec = recording(fps=30.0)
    rec.frame_hold_s = 0.1
    rows = [row(0, 0, 6.0, [[6.0, 3606.0]]), row(1, 3606.0, 3610.0)]
    (gap,) = recording_gaps(rec, rows, 1.0)
    assert (gap.kind, gap.after, gap.before, gap.start, gap.seconds) == (
        "gap", "segment 0", "segment 1", 6.0, 3600.0,
    )  # fmt: skip


def test_a_short_gap_kept_at_a_boundary_shows_though_the_spans_allow_it() -> None:
    # 10 fps footage: the spans' slack is two holds, but the custody path found the gap.
    rec = recording(fps=30.0)
    rec.frame_hold_s = 0.1
    rows = [row(0, 0, 4.0, [[4.0, 4.15]]), row(1, 4.15, 8.0)]
    (gap,) = recording_gaps(rec, rows, 1.0)
    assert (gap.after, gap.before, round(gap.seconds, 6)) == ("segment 0", "segment 1", 0.15)


def test_a_missing_segment_is_not_hidden_by_a_gap_kept_next_to_it() -> None:
    rec = recording(fps=30.0)
    rows = [row(0, 0, 4.0, [[4.0, 5.0]]), row(2, 9.0, 12.0)]  # segment 1 (5-9 s) is missing
    found = [(g.start, round(g.seconds, 6)) for g in recording_gaps(rec, rows, 1.0)]
    assert found == [(4.0, 5.0), (4.0, 1.0)]
