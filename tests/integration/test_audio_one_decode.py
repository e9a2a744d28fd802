"""The worker hashes a segment's pictures and fingerprints its sound with one ffmpeg process
(``integrity.audio.segment_media``); the stand-alone verifier and ``vigil verify --full``
compute them apart (``segment_hashes``, ``segment_audio``). Both must give the same bytes, or
a segment untouched since ingest would read as changed. Shown with the real ffmpeg on the
kinds of segment Vigil stores: AAC in MPEG-TS, MP3 whose sound starts after its pictures,
two tracks, a turned picture, AC-3 from a real AVI; and a file without sound, where the one
decode fails and the stage falls back to decoding apart.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from integrity.audio import segment_audio, segment_media
from integrity.frames import segment_hashes
from transcode.ffmpeg import ProcessRunner, Tools

pytestmark = pytest.mark.ffmpeg

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
PICTURE = "testsrc2=size=192x108:rate=25:duration=6"


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=120,
    )


def _aac_ts(out: Path) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", PICTURE, "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
        "-c:v", "libx264", "-g", "25", "-c:a", "aac", "-output_ts_offset", "7.5", str(out),
    )  # fmt: skip
    return out


def _late_mp3_ts(out: Path) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", PICTURE, "-f", "lavfi", "-i", "anoisesrc=d=5:a=0.2:seed=3",
        "-filter_complex", "[1:a]adelay=800:all=1[a]", "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-c:a", "libmp3lame", str(out),
    )  # fmt: skip
    return out


def _two_tracks(out: Path) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", PICTURE, "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
        "-f", "lavfi", "-i", "sine=frequency=1000:duration=6",
        "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-c:a", "aac", str(out),
    )  # fmt: skip
    return out


def _megamind(out: Path) -> Path:
    if not MEGAMIND.exists():
        pytest.skip(f"{MEGAMIND.name} is not on this machine (Debian's opencv-doc)")
    _ffmpeg(
        "-fflags", "+genpts", "-t", "8", "-i", str(MEGAMIND), "-map", "0", "-c", "copy", str(out)
    )
    return out


def _silent(out: Path) -> Path:
    _ffmpeg("-f", "lavfi", "-i", PICTURE, "-c:v", "libx264", str(out))
    return out


@pytest.fixture(scope="module")
def tools() -> Tools:
    return Tools(ProcessRunner(), FFMPEG, 120.0)


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize(
    ("make", "name", "rotation", "tracks"),
    [
        (_aac_ts, "aac.ts", 0, 1),
        (_late_mp3_ts, "late-mp3.ts", 0, 1),
        (_two_tracks, "two.ts", 0, 2),
        (_aac_ts, "turned.ts", 90, 1),
        (_megamind, "megamind-ac3.ts", 0, 1),
    ],
)
def test_one_decode_gives_the_bytes_two_decodes_give(
    tools: Tools, tmp_path: Path, make: object, name: str, rotation: int, tracks: int
) -> None:
    assert callable(make)
    path = make(tmp_path / name)
    origin = 7.5 if name in ("aac.ts", "turned.ts") else 1.4
    one = segment_media(tools, path, origin_s=origin, rotation=rotation)
    pictures = segment_hashes(
        tools, path, rate=None, origin_s=origin, start_s=0.0, rotation=rotation
    )
    sound = segment_audio(tools, path, origin_s=origin)
    assert one.unheard is None
    assert one.audio is not None
    assert len(one.audio) == tracks
    assert len(one.hashes) == len(pictures) > 100
    assert _digest(one.hashes.to_bytes()) == _digest(pictures.to_bytes())
    assert _digest(one.audio.to_bytes()) == _digest(sound.to_bytes())
    assert one.audio.tracks[0].times.size > 100  # sound was heard, not an empty track


def test_a_file_without_sound_falls_back_to_its_pictures_alone(
    tools: Tools, tmp_path: Path
) -> None:
    path = _silent(tmp_path / "silent.mp4")
    one = segment_media(tools, path, origin_s=0.0, rotation=0)
    pictures = segment_hashes(tools, path, rate=None, origin_s=0.0, start_s=0.0)
    assert one.hashes.to_bytes() == pictures.to_bytes()
    assert one.audio is not None
    assert len(one.audio) == 0
