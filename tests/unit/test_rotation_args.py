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
