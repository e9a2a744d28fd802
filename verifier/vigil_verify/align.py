"""Where each original frame is in a copy: a path of time offsets, found by dynamic programming.

Each original frame ``i`` (time ``t_i``) is compared with the copy frame shown at
``t_i + offset`` for every candidate offset (multiples of the original's frame interval
within ±``max_offset_s`` of the offset carried in). The path through frames chooses, per
frame, one offset or "absent" (the frame is nowhere near), minimising the summed distance
plus a penalty per change of offset. The result is piecewise constant: a cut, a dropped run
of frames or an insertion is one change of offset, placed where the pictures say it is, and
frames with no counterpart are absent. Static scenes, where every offset fits, keep the
offset they entered with, because changing costs.

Copy frames are looked up by display time (the last copy frame at or before the time, within
half a frame), so copies at another frame rate pair naturally; the distance is the least over
copy frames within ``jitter_frames`` of it, which absorbs sampling phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil_verify.frames import MIN_QUALITY, FrameHashes, hamming

MAX_JITTER_S = 0.1
"""Farthest a neighbouring copy frame may be from the time it stands in for (one 10 fps frame)."""

ABSENT = -1
"""Path state of an original frame that has no counterpart in the copy."""


@dataclass(frozen=True)
class Path:
    """Per original frame: the chosen offset index (or ABSENT), the offset in seconds (NaN
    when absent), the distance there (bits; NaN when absent), and the copy frame shown."""

    state: NDArray[np.int64]
    offset: NDArray[np.float64]
    distance: NDArray[np.float64]
    copy_index: NDArray[np.int64]  # -1 when absent

    @property
    def present(self) -> NDArray[np.bool_]:
        found: NDArray[np.bool_] = np.not_equal(self.state, ABSENT)
        return found


@dataclass(frozen=True)
class Costs:
    offsets: NDArray[np.float64]  # (k,)
    distance: NDArray[np.float64]  # (k, n): bits, NaN where the copy shows nothing
    copy_index: NDArray[np.int64]  # (k, n): copy frame shown, -1 where none
    exact: NDArray[np.float64]  # (k, n): bits to the copy frame shown itself (no jitter)


def lookup(copy: FrameHashes, x: NDArray[np.float64], tol: float) -> NDArray[np.int64]:
    """Index of the copy frame shown at each time ``x`` (-1 before its first frame or after
    its last frame's display time)."""
    u = copy.times
    if len(copy) == 0:
        return np.full(x.shape, -1, dtype=np.int64)
    j = np.searchsorted(u, x + tol, side="right").astype(np.int64) - 1
    last_hold = 1.0 / copy.rate
    outside = (j < 0) | (x > u[-1] + last_hold + tol)
    return np.where(outside, -1, j)


def costs(
    original: FrameHashes, copy: FrameHashes, offsets: NDArray[np.float64], jitter: int
) -> Costs:
    n = len(original)
    tol = 0.5 / max(original.rate, copy.rate)
    x = original.times[None, :] + offsets[:, None]
    j = lookup(copy, x, tol)
    shown = j >= 0
    dist = np.full(x.shape, np.nan)
    if n == 0 or not shown.any():
        return Costs(offsets, dist, j, dist.copy())
    rows = np.broadcast_to(np.arange(n)[None, :], x.shape)[shown]
    xs, js = x[shown], j[shown]
    best = hamming(original.hashes[rows], copy.hashes[js]).astype(np.float64)
    exact = np.full(x.shape, np.nan)
    exact[shown] = best
    # neighbours stand in only within one short frame: a held picture's neighbours in a
    # slow or variable-rate recording are other moments, not the same one sampled late
    reach = tol + jitter * min(1.0 / original.rate, 1.0 / copy.rate, MAX_JITTER_S)
    for step in range(-jitter, jitter + 1):
        if step == 0:
            continue
        other = np.clip(js + step, 0, len(copy) - 1)
        near = np.abs(copy.times[other] - xs) <= reach
        bits = hamming(original.hashes[rows], copy.hashes[other]).astype(np.float64)
        best = np.where(near, np.minimum(best, bits), best)
    featureless = (original.quality[rows] < MIN_QUALITY) & (copy.quality[js] < MIN_QUALITY)
    best[featureless] = 0.0
    dist[shown] = best
    return Costs(offsets, dist, j, exact)


def best_path(c: Costs, *, entry: int, absent_cost: float, cap: float, penalty: float) -> Path:
    """Viterbi over (offset states + absent): stay free, any change costs ``penalty``; the
    path enters at offset index ``entry`` (any other start costs ``penalty``)."""
    k, n = c.distance.shape
    # exact distances break ties between neighbouring offsets that jitter makes equal
    tie = 1e-3 * np.nan_to_num(c.exact, nan=cap)
    local = np.vstack(
        [np.minimum(np.nan_to_num(c.distance, nan=cap), cap) + tie, np.full((1, n), absent_cost)]
    )
    states = k + 1
    back = np.zeros((n, states), dtype=np.int64)
    score = np.full(states, penalty)
    score[entry] = 0.0
    score = score + local[:, 0] if n else score
    back[0] = np.arange(states) if n else back[0]
    for i in range(1, n):
        origin = int(np.argmin(score))
        switch = score[origin] + penalty
        stay = score <= switch
        back[i] = np.where(stay, np.arange(states), origin)
        score = np.where(stay, score, switch) + local[:, i]
    path = np.zeros(n, dtype=np.int64)
    if n:
        path[-1] = int(np.argmin(score))
        for i in range(n - 1, 0, -1):
            path[i - 1] = back[i, path[i]]
    state = np.where(path == k, ABSENT, path)
    present = state != ABSENT
    safe = np.where(present, state, 0)
    cols = np.arange(n)
    offset = np.where(present, c.offsets[safe], np.nan)
    distance = np.where(present, np.nan_to_num(c.distance[safe, cols], nan=cap), np.nan)
    copy_index = np.where(present, c.copy_index[safe, cols], -1)
    return Path(state, offset, distance, copy_index)


def candidate_offsets(
    center: float, step: float, max_offset_s: float
) -> tuple[NDArray[np.float64], int]:
    """Offsets ``center + k * step`` within ±``max_offset_s``, and the index of ``center``."""
    reach = round(max_offset_s / step)
    ks = np.arange(-reach, reach + 1, dtype=np.float64)
    return center + ks * step, reach
