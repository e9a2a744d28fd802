"""Unit tests for vigil_verify.compare on synthetic moving-camera footage (no ffmpeg).

A camera pans over a smoothed random texture; frames are area-downscaled to 64x64
like ffmpeg's output, then PDQ-hashed for real. "Content time" is the moment of
the original recording a copy's frame shows, so cuts and insertions are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import pytest
from numpy.typing import NDArray
from vigil_verify.compare import (
    SegmentReference,
    SegmentVerdict,
    Thresholds,
    compare_segment,
    match_recording,
)

from integrity.phash import FrameHashes, hash_frames

RATE = 10.0
VIEW = 128  # camera view in world pixels, downscaled 2x to 64x64
BOX = (slice(20, 56), slice(30, 66))  # ~8% of the view


@cache
def world(seed: int) -> NDArray[np.float64]:
    size = 1024
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft2(rng.standard_normal((size, size)))
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    spectrum /= (np.hypot(kx, ky) + 0.01) ** 1.2
    img = np.fft.irfft2(spectrum, (size, size))
    return np.asarray(np.clip(128 + 45 * (img - img.mean()) / img.std(), 0, 255))


def frame(
    t: float, *, scene: int = 0, boxed: bool = False, noise: float = 0.0, seed: int = 0
) -> NDArray[np.uint8]:
    """The camera's 64x64 gray view at content time ``t`` (slow pan with sway)."""
    x = round(300 + 60 * math.sin(t / 5) + 4 * t)
    y = round(300 + 40 * math.sin(t / 3.7))
    view = world(scene)[y : y + VIEW, x : x + VIEW].copy()
    if boxed:
        view[BOX] = 20.0
    if noise:
        view += np.random.default_rng(seed).normal(0.0, noise, view.shape)
    small = view.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    out: NDArray[np.uint8] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out


def recording(duration: float, start: float = 0.0) -> FrameHashes:
    n = round(duration * RATE)
    frames = (frame(start + k / RATE) for k in range(n))
    return hash_frames(frames, start=start, rate=RATE)


def copy_of(
    duration: float,
    content: Callable[[float], float] = lambda c: c,
    *,
    boxed: tuple[float, float] | None = None,
    scene_after: float = math.inf,
    noise: float = 3.0,
) -> FrameHashes:
    """A noisy copy on its own timeline from 0; ``content`` maps copy time to content time."""
    frames = []
    for k in range(round(duration * RATE)):
        c = k / RATE
        t = content(c)
        box = boxed is not None and boxed[0] <= t < boxed[1]
        scene = 1 if c >= scene_after else 0
        frames.append(frame(t, scene=scene, boxed=box, noise=noise, seed=k))
    return hash_frames(frames, start=0.0, rate=RATE)


def segments(rec: FrameHashes, length: float = 10.0) -> list[SegmentReference]:
    count = math.ceil(len(rec) / RATE / length)
    return [
        SegmentReference(
            i, i * length, (i + 1) * length, rec.slice_time(i * length, (i + 1) * length)
        )
        for i in range(count)
    ]


def statuses(verdicts: Sequence[SegmentVerdict]) -> list[str]:
    return [v.status for v in verdicts]


@pytest.fixture(scope="module")
def rec40() -> FrameHashes:
    return recording(40.0)


def test_identical_copy_is_same(rec40: FrameHashes) -> None:
    seg = rec40.slice_time(10.0, 20.0)
    verdict = compare_segment(seg, seg, index=1)
    assert verdict.index == 1 and verdict.status == "same"
    assert verdict.offset_s == 0.0 and verdict.mean_bits == 0.0
    assert verdict.max_window_bits == 0.0 and verdict.edited_ranges == ()


def test_noisy_reencode_is_same(rec40: FrameHashes) -> None:
    report = match_recording(segments(rec40), copy_of(40.0))
    assert report.clean
    assert statuses(report.segments) == ["same"] * 4
    for v in report.segments:
        assert v.offset_s == 0.0 and v.max_window_bits < Thresholds().edited_bits


def test_constant_offset_is_found(rec40: FrameHashes) -> None:
    original = rec40.slice_time(10.0, 20.0)
    # the candidate runs 0.7 s late: candidate time = original time + 0.7
    shifted = hash_frames((frame(c / RATE - 0.7) for c in range(100, 210)), start=10.0, rate=RATE)
    verdict = compare_segment(original, shifted)
    assert verdict.status == "same"
    assert verdict.offset_s == pytest.approx(0.7)
    assert verdict.mean_bits == 0.0


def test_offset_beyond_search_is_not_found(rec40: FrameHashes) -> None:
    original = rec40.slice_time(10.0, 20.0)
    far = hash_frames((frame(c / RATE - 5.0) for c in range(100, 260)), start=10.0, rate=RATE)
    assert compare_segment(original, far).status == "edited"


def test_short_box_is_located_not_diluted(rec40: FrameHashes) -> None:
    original = rec40.slice_time(10.0, 20.0)
    candidate = hash_frames(
        (
            frame(t, boxed=14.0 <= t < 16.0, noise=3.0, seed=k)
            for k, t in enumerate(np.arange(100, 200) / RATE)
        ),
        start=10.0,
        rate=RATE,
    )
    verdict = compare_segment(original, candidate)
    th = Thresholds()
    assert verdict.status == "edited"
    assert verdict.offset_s == 0.0
    assert verdict.max_window_bits > th.edited_bits
    assert verdict.mean_bits < th.edited_bits  # a whole-segment mean would have missed it
    assert len(verdict.edited_ranges) == 1
    lo, hi = verdict.edited_ranges[0]
    assert lo == pytest.approx(14.0, abs=0.2) and hi == pytest.approx(16.0, abs=0.2)


def test_one_second_cut_flags_only_its_segment(rec40: FrameHashes) -> None:
    # original [24, 25) removed: copy time c shows content c, or c + 1 from c = 24 on
    copy = copy_of(39.0, lambda c: c if c < 24.0 else c + 1.0)
    report = match_recording(segments(rec40), copy)
    assert statuses(report.segments) == ["same", "same", "edited", "same"]
    # offsets at each segment's start: the cut is inside segment 2
    assert [v.offset_s for v in report.segments] == pytest.approx([0.0, 0.0, 0.0, -1.0])
    ((lo, hi),) = report.segments[2].edited_ranges
    assert lo == pytest.approx(24.0, abs=0.2) and hi == pytest.approx(25.0, abs=0.2)
    assert report.extra == () and not report.clean


def test_cut_at_segment_boundary_flags_the_next_segment(rec40: FrameHashes) -> None:
    copy = copy_of(39.0, lambda c: c if c < 20.0 else c + 1.0)
    report = match_recording(segments(rec40), copy)
    assert statuses(report.segments) == ["same", "same", "edited", "same"]
    ((lo, hi),) = report.segments[2].edited_ranges
    assert lo == pytest.approx(20.0, abs=0.2) and hi == pytest.approx(21.0, abs=0.2)


def test_box_in_one_segment_flags_that_segment_only(rec40: FrameHashes) -> None:
    report = match_recording(segments(rec40), copy_of(40.0, boxed=(31.0, 33.0)))
    assert statuses(report.segments) == ["same", "same", "same", "edited"]
    assert report.extra == ()


def test_short_copy_leaves_segments_missing(rec40: FrameHashes) -> None:
    report = match_recording(segments(rec40), copy_of(12.0))
    assert statuses(report.segments) == ["same", "missing", "missing", "missing"]
    missing = report.segments[1]
    assert math.isnan(missing.mean_bits) and missing.edited_ranges == ()
    assert not report.clean


def test_truncated_segment_reports_the_absent_tail(rec40: FrameHashes) -> None:
    report = match_recording(segments(rec40), copy_of(36.0))
    assert statuses(report.segments) == ["same", "same", "same", "edited"]
    ((lo, hi),) = report.segments[3].edited_ranges
    assert lo == pytest.approx(36.0, abs=0.15) and hi == pytest.approx(40.0, abs=0.15)


def test_longer_copy_reports_extra() -> None:
    rec = recording(30.0)
    # 5 s of other footage appended after the recording
    report = match_recording(segments(rec), copy_of(35.0, scene_after=30.0))
    assert statuses(report.segments) == ["same"] * 3
    (extra,) = report.extra
    assert extra.start == pytest.approx(30.0) and extra.end == pytest.approx(35.0)
    assert not report.clean


def test_short_tail_is_not_extra() -> None:
    rec = recording(30.0)
    report = match_recording(segments(rec), copy_of(30.5))
    assert report.extra == () and report.clean


def test_low_quality_frames_on_both_sides_are_ignored() -> None:
    flat = np.full((64, 64), 30, np.uint8)
    original = hash_frames([flat] * 30, start=0.0, rate=RATE)
    copy = hash_frames([flat + 1] * 30, start=0.0, rate=RATE)
    assert int(original.quality.max()) < 50
    verdict = compare_segment(original, copy)
    assert verdict.status == "same" and verdict.mean_bits == 0.0


def test_blanked_copy_of_textured_segment_is_edited(rec40: FrameHashes) -> None:
    original = rec40.slice_time(0.0, 10.0)
    blank = hash_frames([np.full((64, 64), 30, np.uint8)] * 100, start=0.0, rate=RATE)
    assert compare_segment(original, blank).status == "edited"


def test_one_frame_phase_jitter_is_tolerated(rec40: FrameHashes) -> None:
    original = rec40.slice_time(0.0, 10.0)
    # every 4th copy frame shows the next moment (like a held frame switching early)
    jittered = hash_frames(
        (frame(k / RATE + (0.1 if k % 4 == 0 else 0.0)) for k in range(100)),
        start=0.0,
        rate=RATE,
    )
    assert compare_segment(original, jittered).status == "same"
    strict = Thresholds(jitter_frames=0)
    assert compare_segment(original, jittered, strict).max_window_bits > 0.0


def test_missing_when_coverage_too_low(rec40: FrameHashes) -> None:
    original = rec40.slice_time(0.0, 10.0)
    partial = rec40.slice_time(0.0, 4.0)
    verdict = compare_segment(original, partial)
    assert verdict.status == "missing"
    assert compare_segment(original, partial, Thresholds(min_coverage=0.3)).status == "edited"


def test_footage_of_a_segment_moved_elsewhere_is_never_called_inserted(
    rec40: FrameHashes,
) -> None:
    # segments 2 and 3 swapped: copy 20-30 s shows content 30-40 s, copy 30-40 s content 20-30
    swapped = copy_of(40.0, lambda c: c if c < 20.0 else (c + 10.0 if c < 30.0 else c - 10.0))
    report = match_recording(segments(rec40), swapped)
    assert statuses(report.segments)[:3] == ["same", "same", "edited"]  # moved, not missing
    assert report.extra == ()  # it is the recording's own footage, only moved
    assert not report.clean


def test_a_copy_with_the_recordings_gap_closed_up_is_found_after_the_gap() -> None:
    # A camera clock jump of an hour after 20 s: the recording's timeline has the footage of
    # content 20-30 s at 3620-3630 s. A copy re-encoded without -copyts has it at 20-30 s.
    before, after = recording(20.0), recording(10.0, start=20.0)
    jumped = [
        *segments(before),
        SegmentReference(
            2,
            3620.0,
            3630.0,
            FrameHashes(after.times + 3600.0, after.rate, after.hashes, after.quality),
        ),
    ]
    report = match_recording(jumped, copy_of(30.0))
    assert statuses(report.segments) == ["same", "same", "same"]
    assert report.segments[2].offset_s == pytest.approx(-3600.0, abs=0.05)
    assert report.extra == () and report.clean


def test_a_segment_cut_out_whole_is_missing_and_the_rest_are_found_after_it(
    rec40: FrameHashes,
) -> None:
    # content 10-20 s removed: the copy shows content 0-10 s, then 20-40 s at 10-30 s
    cut = copy_of(30.0, lambda c: c if c < 10.0 else c + 10.0)
    report = match_recording(segments(rec40), cut)
    assert statuses(report.segments) == ["same", "missing", "same", "same"]
    assert [round(v.offset_s, 1) for v in report.segments[2:]] == [-10.0, -10.0]
    assert report.extra == ()
    assert not report.clean


def test_a_segment_replaced_by_foreign_footage_is_edited_not_missing(rec40: FrameHashes) -> None:
    # content 10-20 s replaced by another scene: nothing of the recording is there
    foreign = copy_of(40.0, scene_after=10.0)
    foreign = copy_of(
        40.0,
        lambda c: c,
        scene_after=10.0,
    )
    replaced = FrameHashes(
        rec40.times,
        rec40.rate,
        np.concatenate(
            [copy_of(40.0).hashes[:100], foreign.hashes[100:200], copy_of(40.0).hashes[200:]]
        ),
        rec40.quality,
    )
    report = match_recording(segments(rec40), replaced)
    assert statuses(report.segments) == ["same", "edited", "same", "same"]
    assert [v.offset_s for v in report.segments] == [0.0, 0.0, 0.0, 0.0]


def held_pictures(count: int, hold: float, *, boxed: int | None = None) -> FrameHashes:
    """A variable-rate original: ``count`` pictures, each held ``hold`` s (tree.avi holds its
    Cinepak pictures 0.33-0.73 s), picture ``k`` showing content time 2k (each unlike the last)."""
    grid = hash_frames((frame(2.0 * k) for k in range(count)), start=0.0, rate=1.0)
    times = np.arange(count) * hold
    return FrameHashes(times, 1.0 / hold, grid.hashes, grid.quality)


def cfr_copy(
    count: int,
    hold: float,
    early: Callable[[int], bool],
    box: tuple[int, int, float, float] | None = None,
) -> FrameHashes:
    """The held pictures re-encoded at RATE fps: picture k from k*hold, except that a change
    ``early(k)`` comes one copy frame early (ffmpeg's rounding to its constant-rate grid);
    ``box`` (first, last picture, from, to s): an overlay drawn on them then."""
    frames = []
    for n in range(round(count * hold * RATE)):
        c = n / RATE
        k = min(int(c / hold + 1e-9), count - 1)
        if k + 1 < count and early(k + 1) and c >= (k + 1) * hold - 1.0 / RATE - 1e-9:
            k += 1
        boxed = box is not None and box[0] <= k <= box[1] and box[2] <= c < box[3]
        frames.append(frame(2.0 * k, boxed=boxed, noise=2.0, seed=n))
    return hash_frames(frames, start=0.0, rate=RATE)


def test_a_held_picture_changing_one_frame_early_in_a_constant_rate_copy_is_same() -> None:
    original = held_pictures(20, 0.4)
    copy = cfr_copy(20, 0.4, early=lambda k: k % 3 != 0)  # as tree.avi re-encoded to MP4
    assert compare_segment(original, copy).status == "same"
    # not a threshold that hides everything: with no jitter allowed, the early changes show
    assert compare_segment(original, copy, Thresholds(jitter_frames=0)).status == "edited"


def test_an_overlay_inside_a_held_picture_is_still_edited() -> None:
    original = held_pictures(20, 0.4)
    copy = cfr_copy(20, 0.4, early=lambda k: k % 3 != 0, box=(10, 12, 4.0, 5.2))
    verdict = compare_segment(original, copy)
    assert verdict.status == "edited"
    assert [(round(lo, 1), round(hi, 1)) for lo, hi in verdict.edited_ranges] == [(4.0, 5.2)]
