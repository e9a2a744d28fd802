"""The continuity rule for pictures (``vigil_verify.continuity.cadence``): a gap is time with
no picture, judged against the recording's own cadence around it. Tables of presentation
times, as a camera writes them (docs/continuity.md)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from vigil_verify.continuity import cadence, local_cadence


def at(*stretches: tuple[float, float, float]) -> NDArray[np.float64]:
    """Pictures from ``start`` (inclusive) to ``end`` (exclusive) every ``step`` seconds."""
    parts = [
        start + step * np.arange(round((end - start) / step)) for start, end, step in stretches
    ]
    return np.concatenate(parts)


CFR = at((0, 10, 1 / 30))
# A camera at 30 fps that drops to 10 fps for 10 s in the dark, then back.
VFR = at((0, 5, 1 / 30), (5, 15, 0.1), (15, 20, 1 / 30))
# Holds of 5 to 11 ticks of 1/15 s, as tree.avi (Cinepak, a variable-rate camera) has them.
TREE_TICKS = [11, 6, 7, 7, 6, 6, 6, 7, 5, 6, 5, 6, 6, 5, 6, 10, 6, 6, 6, 6, 7, 5, 6, 6, 7, 5]
TREE = np.concatenate([[0.0], np.cumsum(TREE_TICKS * 3)]) / 15


def drop(times: NDArray[np.float64], start: float, end: float) -> NDArray[np.float64]:
    return times[(times < start - 1e-9) | (times >= end - 1e-9)]


@pytest.mark.parametrize(
    ("times", "holes"),
    [
        pytest.param(CFR, [], id="constant 30 fps"),
        pytest.param(VFR, [], id="30 fps dropping to 10 fps and back"),
        pytest.param(at((0, 10, 0.1), (10, 20, 1 / 30)), [], id="10 fps rising to 30 fps"),
        pytest.param(TREE, [], id="erratic holds of 0.33 to 0.73 s"),
        pytest.param(drop(CFR, 4.0, 4.0 + 1 / 30), [], id="one dropped frame"),
        pytest.param(drop(CFR, 4.0, 4.0 + 2 / 30), [(4.0, 4.0 + 2 / 30)], id="two dropped frames"),
        pytest.param(drop(VFR, 8.0, 9.0), [(8.0, 9.0)], id="1 s hole at 10 fps"),
        pytest.param(drop(VFR, 2.0, 3.0), [(2.0, 3.0)], id="1 s hole at 30 fps"),
        pytest.param(drop(VFR, 5.0, 6.0), [(5.0, 6.0)], id="1 s hole where the rate drops"),
        pytest.param(
            np.concatenate([CFR[:150], CFR[150:] + 3600]), [(5.0, 3605.0)], id="an hour's jump"
        ),
        pytest.param(
            drop(drop(CFR, 2.0, 2.5), 3.0, 3.5), [(2.0, 2.5), (3.0, 3.5)], id="two holes close"
        ),
    ],
)
def test_gaps_are_judged_against_the_local_cadence(
    times: NDArray[np.float64], holes: list[tuple[float, float]]
) -> None:
    found = cadence(times, tolerance_frames=1.0).holes()
    assert found == [pytest.approx(h, abs=1e-9) for h in holes]


def test_losses_close_together_are_each_found_until_they_are_the_cadence() -> None:
    # Two frames lost four times in 20 frames (a failing card): each loss is a gap.
    lossy = np.delete(CFR, [62, 63, 68, 69, 74, 75, 80, 81])
    assert len(cadence(lossy, 1.0).holes()) == 4
    # Two lost in every six for 2 s: around each loss a quarter of the intervals are as
    # long, which is how a camera holding pictures irregularly looks: that is read as its
    # cadence, and only the first two and last two losses, with fewer such neighbours, are
    # gaps. The rule's limit (docs/continuity.md).
    periodic = np.delete(CFR, [i for i in range(60, 120) if i % 6 in (4, 5)])
    found = cadence(periodic, 1.0).holes()
    assert [round(a, 3) for a, _ in found] == [2.133, 2.333, 3.733, 3.933]


def test_tolerance_frames_sets_how_many_usual_intervals_may_be_missing() -> None:
    three_lost = drop(CFR, 4.0, 4.0 + 3 / 30)
    assert len(cadence(three_lost, 1.0).holes()) == 1
    assert cadence(three_lost, 3.0).holes() == []  # up to 3 missing frames allowed


def test_the_longest_normal_hold_and_the_closing_hold() -> None:
    judged = cadence(drop(VFR, 8.0, 9.0), 1.0)
    assert judged.longest_hold_s == pytest.approx(0.1)  # the 1.1 s around the hole is no hold
    assert judged.closing_hold_s == pytest.approx(1 / 30)
    assert cadence(at((0, 5, 0.1)), 1.0).closing_hold_s == pytest.approx(0.1)


def test_footage_time_counts_a_gap_as_one_usual_interval() -> None:
    jumped = np.concatenate([CFR[:150], CFR[150:] + 3600])
    footage = cadence(jumped, 1.0).footage()
    assert footage[-1] == pytest.approx(CFR[-1])
    assert footage[150] - footage[149] == pytest.approx(1 / 30)


@pytest.mark.parametrize(
    "times",
    [
        pytest.param(np.array([]), id="none"),
        pytest.param(np.array([3.0]), id="one picture"),
        pytest.param(np.array([0.0, 0.0, 0.0, 1.0]), id="repeated timestamps"),
        pytest.param(np.array([0.0, 0.04]), id="two pictures"),
    ],
)
def test_too_few_pictures_to_judge_have_no_gap(times: NDArray[np.float64]) -> None:
    assert cadence(times, 1.0).holes() == []


def test_local_cadence_leaves_the_interval_itself_out() -> None:
    intervals = np.array([0.1] * 8 + [5.0] + [0.1] * 8)
    expected = local_cadence(intervals)
    assert expected[8] == pytest.approx(0.1)
    assert expected.shape == intervals.shape


def test_local_cadence_of_a_long_recording_is_chunked_and_exact() -> None:
    intervals = np.full(200_000, 1 / 30)
    intervals[150_000] = 2.0
    expected = local_cadence(intervals)
    assert np.allclose(expected, 1 / 30)


@pytest.mark.parametrize("start_ticks", [0, 126_000, 900_000_000, 2**33 - 5_000_000])
@pytest.mark.parametrize("lost_at", [1, 2, 150])
def test_exactly_one_dropped_frame_is_no_gap_wherever_the_clock_stands(
    start_ticks: int, lost_at: int
) -> None:
    # 30 fps on a 90 kHz clock from a given tick; the float rounding of tick/90000 must not
    # decide the verdict at exactly the threshold (an AVI's drop frame at 0.033 s was a gap).
    ticks = start_ticks + 3000 * np.arange(300)
    one = np.delete(ticks, lost_at) / 90_000
    two = np.delete(ticks, [lost_at, lost_at + 1]) / 90_000
    assert cadence(one, 1.0).holes() == []
    ((lo, hi),) = cadence(two, 1.0).holes()
    assert hi - lo == pytest.approx(2 / 30, abs=1e-6)


def test_one_dropped_frame_on_a_millisecond_clock_is_no_gap_and_two_are() -> None:
    ms = np.round(np.arange(300) / 30 * 1000) / 1000  # Matroska: 0, 0.033, 0.067, 0.1...
    for lost in (1, 2, 3, 150):
        assert cadence(np.delete(ms, lost), 1.0).holes() == [], lost
        assert len(cadence(np.delete(ms, [lost, lost + 1]), 1.0).holes()) == 1, lost
