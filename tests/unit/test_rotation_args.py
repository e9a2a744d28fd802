"""Unit tests for the orientation rule of the per-frame decode (issue 17: rotation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vigil_verify.sampling import display_rotation, frame_decode_args, upright_filter

FF = "/opt/ffmpeg/bin/ffmpeg"
SRC = Path("/evidence/seg 0001.ts")


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [(None, 0), (0.0, 0), (-90.0, 90), (90.0, 270), (180.0, 180), (-180.0, 180),
     (-89.6, 90), (45.0, 0), (float("nan"), 0), (270.0, 90)],
)  # fmt: skip
def test_display_rotation(matrix: float | None, expected: int) -> None:
    assert display_rotation(matrix) == expected


def test_upright_filter() -> None:
    assert upright_filter(0) == ""
    assert upright_filter(90) == "transpose=clock"
    assert upright_filter(180) == "hflip,vflip"
    assert upright_filter(270) == "transpose=cclock"
    with pytest.raises(ValueError):
        upright_filter(45)


def test_rotation_zero_keeps_the_old_arguments() -> None:
    args = frame_decode_args(FF, SRC)
    assert args == frame_decode_args(FF, SRC, rotation=0)
    assert "-noautorotate" not in args
    assert args[args.index("-vf") + 1] == "scale=64:64:flags=area,format=gray,showinfo"


def test_rotation_turns_off_autorotate_and_applies_the_turn() -> None:
    args = frame_decode_args(FF, SRC, side=32, rotation=90)
    assert args.index("-noautorotate") < args.index("-i")
    assert args[args.index("-i") + 1] == str(SRC)
    assert (
        args[args.index("-vf") + 1] == "transpose=clock,scale=32:32:flags=area,format=gray,showinfo"
    )


def test_keyframes_command_rotation() -> None:
    from transcode.commands import keyframes_command

    plain = keyframes_command(FF, SRC)
    assert plain == keyframes_command(FF, SRC, rotation=0)
    assert "-noautorotate" not in plain
    turned = keyframes_command(FF, SRC, rotation=270)
    assert turned.index("-noautorotate") < turned.index("-i")
    assert turned[turned.index("-vf") + 1].startswith("transpose=cclock,scale=64:64")


def _hashed(rotation: object) -> str:
    import json

    detail: dict[str, object] = {
        "index": 0, "segment_sha256": "a" * 64, "phash_sha256": "b" * 64, "frames": 3,
        "rate": 30.0, "sampling": "frames",
    }  # fmt: skip
    if rotation is not None:
        detail["rotation"] = rotation
    return json.dumps({"id": 2, "action": "segment.hashed", "recording": "REC-1", "detail": detail})


def _stored() -> str:
    import json

    detail = {
        "index": 0, "key": "REC-1/seg.ts", "sha256": "a" * 64, "size": 10, "start_s": 0.0,
        "end_s": 3.0, "origin_s": 0.0, "previous": "c" * 64, "chain": "d" * 64,
    }  # fmt: skip
    return json.dumps({"id": 1, "action": "segment.stored", "recording": "REC-1", "detail": detail})


@pytest.mark.parametrize(("signed", "expected"), [(None, 0), (0, 0), (90, 90), (270, 270)])
def test_signed_rotation_is_read_per_segment(signed: object, expected: int) -> None:
    from vigil_verify.facts import LedgerCheck, apply_event, parse_event

    check = LedgerCheck()
    apply_event(check, parse_event(0, _stored()))
    apply_event(check, parse_event(1, _hashed(signed)))
    assert check.facts["REC-1"].segments[0].rotation == expected


@pytest.mark.parametrize("signed", [45, "90", 90.0, True])
def test_a_signed_rotation_that_is_no_quarter_turn_is_malformed(signed: object) -> None:
    from vigil_verify.facts import LedgerCheck, apply_event, parse_event

    check = LedgerCheck()
    apply_event(check, parse_event(0, _stored()))
    with pytest.raises(ValueError):
        apply_event(check, parse_event(1, _hashed(signed)))


def test_segment_hashed_detail_says_a_turn_only_when_there_is_one() -> None:
    from workers.stages import SegmentHashedDetail

    base = {"index": 0, "segment_sha256": "a", "phash_sha256": "b", "frames": 1, "rate": 30.0}
    assert SegmentHashedDetail(**base).rotation is None  # type: ignore[arg-type]
    assert SegmentHashedDetail(**base, rotation=90).model_dump()["rotation"] == 90  # type: ignore[arg-type]


def test_a_turned_h264_recording_is_not_playable_as_copied() -> None:
    from dataclasses import replace
    from fractions import Fraction

    import numpy as np

    from transcode.probe import ProbeResult, StreamInfo, Track

    stream = StreamInfo(0, "video", "h264", Fraction(1, 30), 320, 240)
    empty = np.zeros(0, dtype=np.int64)
    track = Track(stream, empty, empty, empty, np.zeros(0, dtype=np.bool_))
    upright = ProbeResult("mov", 1.0, (stream,), track, None)
    assert upright.playable
    assert not replace(upright, rotation=90).playable
