"""Where a clip's sound is judged against a segment (``vigil_verify.clips.sound_span``)."""

from __future__ import annotations

import pytest
from vigil_verify.clips import MIN_SOUND_S, SOUND_EDGE_S, sound_span
from vigil_verify.facts import SignedSegment


def _segment(start: float, end: float) -> SignedSegment:
    return SignedSegment(0, "k", "0" * 64, 1, start, end, 0.0, "", "", 1)


@pytest.mark.parametrize(
    ("segment", "window", "span"),
    [
        ((2.0, 4.0), (2.0, 4.0), (2.0 + SOUND_EDGE_S, 4.0 - SOUND_EDGE_S)),  # the clip's ends
        ((2.0, 4.0), (0.0, 6.0), (2.0, 4.0)),  # inside the clip: the whole segment
        ((2.0, 4.0), (3.0, 6.0), (3.0 + SOUND_EDGE_S, 4.0)),  # the clip starts in it
        ((2.0, 4.0), (0.0, 3.0), (2.0, 3.0 - SOUND_EDGE_S)),  # the clip ends in it
    ],
)
def test_a_clip_is_heard_over_its_part_of_the_segment_less_its_own_ends(
    segment: tuple[float, float], window: tuple[float, float], span: tuple[float, float]
) -> None:
    assert sound_span(_segment(*segment), *window) == pytest.approx(span)


def test_a_short_clip_leaves_too_little_to_judge() -> None:
    start, end = sound_span(_segment(0.0, 10.0), 5.0, 5.5)
    assert end - start < MIN_SOUND_S
