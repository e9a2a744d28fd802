"""Issue 15: an export proves its scope. The pure rule (``vigil_verify.scope``): a recording a
package holds must be linked to its case by a proved, standing ``case.link``, and hold only the
segments (and original) its signed windows cover.

The signed facts are built the way the verifier builds them, from custody events read by
``vigil_verify.facts`` (``parse_event``, ``apply_event``).
"""

from __future__ import annotations

import json
from pathlib import Path

from vigil_verify.facts import LedgerCheck, SignedRecording, apply_event, parse_event
from vigil_verify.scope import (
    NOT_LINKED,
    OUTSIDE,
    Held,
    held_recordings,
    links_whole,
    scope_findings,
)

CASE = "CASE-15"
REC = "rec-00000000000000a1"
SPANS = [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 32.0)]  # the standard clip's segments
HEX = "ab" * 32
Event = tuple[str, str | None, dict[str, object]]  # action, case, detail


def signed(*events: Event, case: str = CASE) -> LedgerCheck:
    """The facts of ``REC``'s four segments and then ``events`` (action, case, detail), each
    applied as the verifier applies a proved event."""
    check = LedgerCheck(case=case)
    stored = [
        ("segment.stored", None, {
            "index": i, "key": f"{REC}/seg-{i:05d}-000000000000.ts", "sha256": HEX, "size": 1,
            "start_s": lo, "end_s": hi, "origin_s": 0.0, "previous": HEX, "chain": HEX,
        })
        for i, (lo, hi) in enumerate(SPANS)
    ]  # fmt: skip
    for n, (action, event_case, detail) in enumerate([*stored, *events], 1):
        raw = {"id": n, "action": action, "recording": REC, "case": event_case, "detail": detail}
        apply_event(check, parse_event(n, json.dumps(raw)))
    return check


def link(from_s: float | None, to_s: float | None, case: str = CASE) -> Event:
    return ("case.link", case, {"from_s": from_s, "to_s": to_s})


def unlink(case: str = CASE) -> Event:
    return ("case.unlink", case, {})


def held(segments: tuple[int, ...] = (0, 1, 2, 3), original: bool = False) -> Held:
    return Held(
        REC,
        listed=True,
        folder=True,
        segments={i: f"{REC}/segments/seg-{i:05d}-000000000000.ts" for i in segments},
        original=f"{REC}/original.mp4" if original else None,
    )


def findings(check: LedgerCheck, what: Held) -> list[tuple[int | None, str]]:
    return [(f.index, f.kind) for f in scope_findings(CASE, check.facts.get(REC), what)]


def test_a_whole_link_covers_every_segment_and_the_original() -> None:
    check = signed(link(None, None))
    assert findings(check, held(original=True)) == []


def test_a_recording_without_a_link_is_named() -> None:
    check = signed()
    (found,) = scope_findings(CASE, check.facts[REC], held())
    assert (found.recording, found.index, found.kind) == (REC, None, NOT_LINKED)
    assert found.kind == "not linked to the case"
    assert f"no case.link event proved in the signed log links it to case {CASE}" in found.detail
    assert found.detail.endswith(f"yet the manifest lists it and the package has its folder {REC}/")


def test_a_link_to_another_case_does_not_link_it_to_this_one() -> None:
    check = signed(link(None, None, case="CASE-OTHER"))
    assert findings(check, held()) == [(None, NOT_LINKED)]


def test_a_recording_no_proved_event_names_is_named() -> None:
    (found,) = scope_findings(CASE, None, Held(REC, folder=True))
    assert found.kind == NOT_LINKED
    assert found.detail.endswith(f", yet the package has its folder {REC}/")
    assert "manifest" not in found.detail


def test_an_unlink_leaves_it_not_linked_and_a_new_link_stands() -> None:
    unlinked = signed(link(None, None), unlink())
    (found,) = scope_findings(CASE, unlinked.facts[REC], held())
    assert found.kind == NOT_LINKED and "unlinks it from case" in found.detail
    relinked = signed(link(0.0, 5.0), unlink(), link(None, None))
    assert findings(relinked, held(original=True)) == []
    # Linked again by a window: the window of the new link counts, not the old one.
    rewindowed = signed(link(None, None), unlink(), link(12.0, 18.0))
    assert findings(rewindowed, held((0, 1))) == [(0, OUTSIDE)]


def test_segments_outside_every_window_are_named_with_their_times() -> None:
    check = signed(link(12.0, 18.0))
    found = scope_findings(CASE, check.facts[REC], held((0, 1, 2)))
    assert [(f.index, f.kind) for f in found] == [(0, OUTSIDE), (2, OUTSIDE)]
    assert found[0].kind == "outside the linked windows"
    assert "0-10 s of the recording" in found[0].detail and "12 s to 18 s" in found[0].detail
    assert found[1].file == f"{REC}/segments/seg-00002-000000000000.ts"


def test_segments_in_any_window_are_in_scope() -> None:
    check = signed(link(1.0, 2.0), link(25.0, None))
    assert findings(check, held((0, 2, 3))) == []
    assert findings(check, held((0, 1, 2, 3))) == [(1, OUTSIDE)]


def test_the_original_of_a_windowed_link_is_outside_it() -> None:
    check = signed(link(12.0, 18.0))
    assert findings(check, held((1,), original=True)) == [(None, OUTSIDE)]


def test_a_window_is_whole_by_the_servers_rule() -> None:
    """Whole when it starts at or before the first frame and ends at or after the duration the
    server records (the last segment's end less the first's start): ``catalog.scopes.is_whole``."""
    assert links_whole(signed(link(0.0, 32.0)).facts[REC])
    assert links_whole(signed(link(None, 40.0)).facts[REC])
    assert not links_whole(signed(link(0.0, 31.5)).facts[REC])
    assert not links_whole(signed(link(0.5, None)).facts[REC])
    assert findings(signed(link(0.0, 32.0)), held(original=True)) == []


def test_a_held_segment_no_event_signs_is_left_to_the_footage_check() -> None:
    check = signed(link(12.0, 18.0))
    assert findings(check, held((1, 7))) == []


def test_what_a_package_holds_is_read_from_its_manifest_and_folders(tmp_path: Path) -> None:
    facts: dict[str, SignedRecording] = signed(link(12.0, 18.0)).facts
    segments = tmp_path / REC / "segments"
    segments.mkdir(parents=True)
    (segments / "seg-00000-000000000000.ts").write_bytes(b"x")  # signed: held
    (segments / "seg-00009-000000000000.ts").write_bytes(b"x")  # no signed name: not counted
    (tmp_path / REC / "original.mp4").write_bytes(b"x")
    (tmp_path / "ledger").mkdir()  # the package's own folder, no recording
    (tmp_path / "not an id").mkdir()
    stray = "rec-00000000000000b2"
    (tmp_path / stray).mkdir()
    listed = "rec-00000000000000c3"
    manifest: dict[str, object] = {
        "recordings": [
            {"id": listed, "original": None, "segments": [{"index": 2, "file": "x.ts"}]},
            {"id": listed, "original": {"path": f"{listed}/original.mp4"}, "segments": []},
            {"id": "../escape"},
            "junk",
        ]
    }
    found = held_recordings(tmp_path, manifest, facts)
    assert sorted(found) == [REC, stray, listed]
    assert found[REC] == Held(
        REC,
        folder=True,
        segments={0: f"{REC}/segments/seg-00000-000000000000.ts"},
        original=f"{REC}/original.mp4",
    )
    assert found[stray] == Held(stray, folder=True)
    assert found[listed] == Held(
        listed, listed=True, segments={2: "x.ts"}, original=f"{listed}/original.mp4"
    )
