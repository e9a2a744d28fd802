"""``tests.helpers.made_once``: a test copy (a re-encode, a tampered file) is made once per
command and input bytes, then copied from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import helpers


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(helpers, "footage_cache", lambda: folder)
    return folder


def test_the_same_command_on_the_same_bytes_is_made_once(cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.mp4"
    src.write_bytes(b"recording")
    made: list[Path] = []

    def maker(out: Path) -> None:
        made.append(out)
        out.write_bytes(src.read_bytes()[::-1])

    for n in range(3):
        out = tmp_path / f"copy{n}.mp4"  # another output path: the same copy
        helpers.made_once(
            ["ffmpeg", "-i", str(src), "-c", "copy", str(out)], lambda out=out: maker(out)
        )
        assert out.read_bytes() == b"gnidrocer"
    assert len(made) == 1
    assert len(list((cache / "made").iterdir())) == 1

    # Other input bytes (at the same path), or another argument: made anew.
    src.write_bytes(b"another recording")
    out = tmp_path / "copy-new.mp4"
    helpers.made_once(["ffmpeg", "-i", str(src), "-c", "copy", str(out)], lambda: maker(out))
    assert out.read_bytes() == b"another recording"[::-1]
    out = tmp_path / "copy-crf.mp4"
    helpers.made_once(["ffmpeg", "-i", str(src), "-crf", "23", str(out)], lambda: maker(out))
    assert len(made) == 3


def test_a_failed_or_fileless_command_is_not_kept(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.mp4"

    def fail() -> None:
        raise RuntimeError("ffmpeg failed")

    with pytest.raises(RuntimeError):
        helpers.made_once(["ffmpeg", "-i", "x", str(out)], fail)
    runs = []
    for _ in range(2):
        helpers.made_once(["ffmpeg", "-i", "x", "-f", "null", "-"], lambda: runs.append(1))
        helpers.made_once(
            ["ffmpeg", "-i", "x", str(tmp_path / "seg%03d.ts")], lambda: runs.append(2)
        )
    assert runs == [1, 2, 1, 2]
    assert not (cache / "made").exists() or not any((cache / "made").iterdir())
