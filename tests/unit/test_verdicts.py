"""The one vocabulary (``vigil_verify.verdicts``) and the one decision on a segment whose bytes
are not the signed ones (``vigil_verify.changed``), which ``vigil-verify`` and the server's
``vigil verify`` both make. Synthetic footage, hashed with PDQ for real; no ffmpeg.
"""

from __future__ import annotations

import json
from functools import cache
from typing import get_args

import numpy as np
import pytest
from vigil_verify.changed import (
    NoDecoder,
    Undecodable,
    changed_segment,
    original_finding,
    placed,
)
from vigil_verify.compare import Thresholds
from vigil_verify.facts import SignedSegment
from vigil_verify.frames import FrameHashes
from vigil_verify.pdq import pdq_hashes
from vigil_verify.scope import ScopeKind
from vigil_verify.verdicts import CLEAN, MEANINGS, REPORT_KEYS, Finding, Verdict

REC = "rec-0123456789abcdef"
RATE = 10.0
SIGNED = SignedSegment(
    index=1, key=f"{REC}/seg-00001-000010000000.ts", sha256="a" * 64, size=1_000_000,
    start_s=10.0, end_s=20.0, origin_s=0.0, previous="b" * 64, chain="c" * 64, event_id=7,
)  # fmt: skip


@cache
def footage(scene: int) -> FrameHashes:
    """10 s at 10 fps from 10 s on: a camera panning over a smooth random texture."""
    rng = np.random.default_rng(scene)
    world = rng.normal(128.0, 40.0, (96, 400))
    world = (world + np.roll(world, 1, 0) + np.roll(world, 1, 1) + np.roll(world, 2, 1)) / 4
    frames = np.stack([world[16:80, 3 * k : 3 * k + 64] for k in range(100)])
    hashes, quality = pdq_hashes(np.clip(np.rint(frames), 0, 255).astype(np.uint8))
    return FrameHashes.on_grid(SIGNED.start_s, RATE, hashes, quality)


def decided(size: int, fresh: FrameHashes | Exception, *, reference: bool = True) -> Finding:
    def decode(signed: FrameHashes) -> FrameHashes:
        assert signed is footage(0)  # the signed per-frame hashes come in
        if isinstance(fresh, Exception):
            raise fresh
        return fresh

    return changed_segment(
        REC,
        SIGNED,
        size=size,
        file=SIGNED.key,
        reference=footage(0) if reference else None,
        decode=decode,
        thresholds=Thresholds(),
    )


def test_every_word_has_one_line_of_meaning_and_a_json_form() -> None:
    assert set(MEANINGS) == set(Verdict)
    assert all(m.strip() and "\n" not in m for m in MEANINGS.values())
    assert frozenset({Verdict.INTACT, Verdict.NOT_EXPORTED}) == CLEAN
    assert Verdict.BYTES_ALTERED == "bytes altered" and Verdict("re-encoded").meaning
    found = Finding(
        kind=Verdict.EDITED, recording=REC, index=2, ranges=((23.95, 26.05),),
        detail="the picture changed at 23.9-26.1 s", file=f"{REC}/segments/seg-00002.ts",
    )  # fmt: skip
    text = json.dumps(found.to_json())
    assert json.loads(text) == {
        "kind": "edited", "recording": REC, "index": 2, "ranges": [[23.95, 26.05]],
        "detail": "the picture changed at 23.9-26.1 s", "file": f"{REC}/segments/seg-00002.ts",
        "audio": None,
    }  # fmt: skip
    assert Finding.from_json(json.loads(text)) == found
    with pytest.raises(ValueError):
        Finding.from_json({**found.to_json(), "kind": "altered"})  # no longer a word
    assert REPORT_KEYS[:3] == ("package", "case", "clean")


def test_the_scope_words_are_words_of_the_vocabulary() -> None:
    assert {str(v) for v in get_args(ScopeKind)} <= {v.value for v in Verdict}


def test_bytes_changed_in_place_are_bytes_altered_whatever_the_pictures_say() -> None:
    same_pictures = decided(SIGNED.size, footage(0))
    assert same_pictures.kind == Verdict.BYTES_ALTERED
    assert "in place" in same_pictures.detail and "picture matches" in same_pictures.detail
    assert same_pictures.ranges == ()
    other_pictures = decided(SIGNED.size, footage(5))
    assert other_pictures.kind == Verdict.BYTES_ALTERED
    assert other_pictures.ranges  # where the picture changed, still said
    for undecided in (NoDecoder("no ffmpeg"), Undecodable("no video stream")):
        assert decided(SIGNED.size, undecided).kind == Verdict.BYTES_ALTERED
    assert decided(SIGNED.size, footage(0), reference=False).kind == Verdict.BYTES_ALTERED


def test_another_size_with_the_same_pictures_is_re_encoded() -> None:
    found = decided(SIGNED.size - 4096, footage(0))
    assert (found.kind, found.index, found.ranges, found.file) == (
        Verdict.RE_ENCODED, 1, (), SIGNED.key,
    )  # fmt: skip


def test_the_first_half_of_the_pictures_is_truncated_with_what_is_gone() -> None:
    half = footage(0).slice_time(10.0, 15.0)
    found = decided(SIGNED.size // 2, half)
    assert found.kind == Verdict.TRUNCATED
    ((start, end),) = found.ranges
    assert start == pytest.approx(15.0, abs=0.15) and end == pytest.approx(20.0, abs=0.15)


def test_other_footage_is_edited_or_missing_with_its_ranges() -> None:
    found = decided(SIGNED.size + 100, footage(5))
    assert found.kind in (Verdict.EDITED, Verdict.MISSING)
    assert found.ranges and all(10.0 <= a < b <= 20.0 + 1e-6 for a, b in found.ranges)


def test_what_cannot_be_compared_is_unverifiable_and_what_does_not_decode_missing() -> None:
    assert decided(5, NoDecoder("no ffmpeg")).kind == Verdict.UNVERIFIABLE
    assert decided(5, footage(0), reference=False).kind == Verdict.UNVERIFIABLE
    gone = decided(5, Undecodable("ffmpeg cannot decode it"))
    assert (gone.kind, gone.ranges) == (Verdict.MISSING, ((10.0, 20.0),))
    empty = decided(5, FrameHashes.empty(RATE))
    assert (empty.kind, empty.ranges) == (Verdict.MISSING, ((10.0, 20.0),))


def test_another_signed_segment_is_reordered_or_foreign() -> None:
    assert placed(REC, 1, None, "f") is None
    own = placed(REC, 1, (REC, 3), "f")
    assert own is not None and (own.kind, own.index) == (Verdict.REORDERED, 1)
    other = placed(REC, 1, ("rec-fedcba9876543210", 0), "f")
    assert other is not None and other.kind == Verdict.FOREIGN
    assert "segment 0 of recording rec-fedcba9876543210" in other.detail


def test_an_original_is_checked_by_its_bytes_alone() -> None:
    assert original_finding(REC, "a" * 64, 10, "a" * 64, 10, "o.mp4").kind == Verdict.INTACT
    shorter = original_finding(REC, "b" * 64, 9, "a" * 64, 10, "o.mp4")
    assert shorter.kind == Verdict.BYTES_ALTERED and "9 bytes, 10 signed" in shorter.detail
