"""How much of a recording a caller may see: all of it, or the windows of the cases that link it.

A case may link only part of a recording (``case_links.from_s``/``to_s``). Who reaches the
recording through such a case sees only that part: the segments (and review-proxy files) that
overlap the window, and never the original, which holds all of it. The whole recording belongs
to those allowed all of it: the supervisor role (every case), the officer who made it, and a
reviewer through a case that links it without a window. A pure function of the caller, the
recording's links and its length, so that every route (timeline, playback, media, custody) and
the export apply the one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from catalog.access import Action, Caller, decide

Window = tuple[float | None, float | None]  # seconds on the recording's timeline; None: open


@dataclass(frozen=True)
class LinkedWindow:
    """One active case link of a recording, as the rule needs it."""

    case_id: str
    from_s: float | None
    to_s: float | None


@dataclass(frozen=True)
class Scope:
    """What of one recording a caller may see: all of it (``whole``), or ``windows``."""

    whole: bool
    windows: tuple[Window, ...] = ()

    def covers(self, start_s: float, end_s: float) -> bool:
        """May the caller see the span ``[start_s, end_s)`` (a segment, a proxy file)?"""
        return self.whole or any(overlaps(start_s, end_s, w) for w in self.windows)


WHOLE = Scope(True)


def overlaps(start_s: float, end_s: float, window: Window) -> bool:
    """Does ``[start_s, end_s)`` overlap the window? (The rule of ``integrity.timeline``.)"""
    lo, hi = window
    return (lo is None or end_s > lo) and (hi is None or start_s < hi)


def is_whole(window: Window, duration_s: float | None) -> bool:
    """Does the window cover the recording from its first frame to its last?"""
    lo, hi = window
    starts = lo is None or lo <= 0
    ends = hi is None or (duration_s is not None and hi >= duration_s)
    return starts and ends


def recording_scope(
    caller: Caller,
    action: Action,
    *,
    officer_id: str | None,
    links: Iterable[LinkedWindow],
    duration_s: float | None,
    via_case: str | None = None,
) -> Scope | None:
    """What of a recording ``caller`` may ``action`` on: None if nothing (not even that it
    exists). With ``via_case``, through that case only (a link opened from a case is logged
    against it and sees what it links)."""
    if caller.role == "officer":
        allowed = decide(caller, action, recording_officer=officer_id).allowed
        return WHOLE if allowed else None
    usable = [
        link
        for link in links
        if (via_case is None or link.case_id == via_case)
        and decide(caller, action, case_id=link.case_id).allowed
    ]
    if not usable:
        return None
    if caller.role != "reviewer":  # supervisors (and auditors, who read logs) see every case whole
        return WHOLE
    windows = tuple((link.from_s, link.to_s) for link in usable)
    if any(is_whole(w, duration_s) for w in windows):
        return WHOLE
    return Scope(False, windows)


def visible_indexes(scope: Scope, spans: Sequence[tuple[int, float, float]]) -> set[int]:
    """The indexes of the ``(index, start_s, end_s)`` spans the scope covers."""
    return {index for index, start, end in spans if scope.covers(start, end)}
