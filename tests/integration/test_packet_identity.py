"""Issue 18, the groundwork: a segment identity computed from the original's own packets must
be the same for the original and for an honest remux of it, under any ffmpeg a verifier may
have; and a byte flipped in one sample must change that packet's hash and no other.

Remuxes: MP4 -> MKV, MPEG-TS, MOV (faststart), and MPEG-TS -> MP4; ffmpeg: the system's and,
where installed, imageio-ffmpeg's (another major version)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from vigil_verify.packets import (
    Packet,
    Stream,
    packet_hash_args,
    parse_framehash,
    stream_digests,
)

pytestmark = pytest.mark.ffmpeg


def _ffmpegs(system: str) -> list[str]:
    found = [system]
    try:
        import imageio_ffmpeg

        other = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return found
    if Path(other).resolve() != Path(system).resolve():
        found.append(other)
    return found


def _run(cmd: list[str]) -> bytes:
    return subprocess.run(cmd, check=True, capture_output=True, timeout=120).stdout


def _packets(ffmpeg: str, path: Path, streams: list[Stream]) -> list[Packet]:
    return parse_framehash(_run([ffmpeg, *packet_hash_args(path, streams)]).decode())


def _remuxes(ffmpeg: str, original: Path, folder: Path) -> list[Path]:
    out = []
    for name, extra in (("r.mkv", []), ("r.ts", []), ("r.mov", ["-movflags", "+faststart"])):
        path = folder / name
        _run([ffmpeg, "-v", "error", "-y", "-i", str(original), "-map", "0", "-c", "copy",
              *extra, str(path)])  # fmt: skip
        out.append(path)
    back = folder / "from-ts.mp4"
    _run([ffmpeg, "-v", "error", "-y", "-i", str(folder / "r.ts"), "-map", "0", "-c", "copy",
          str(back)])  # fmt: skip
    return [*out, back]


@pytest.mark.parametrize(
    ("name", "video", "codec"),
    [("h264", ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"], "h264"),
     ("hevc", ["-c:v", "libx265", "-x265-params", "log-level=error"], "hevc")],
)  # fmt: skip
def test_the_canonical_packet_digests_survive_remuxing_and_ffmpeg_versions(
    ffmpeg: str, tmp_path: Path, name: str, video: list[str], codec: str
) -> None:
    original = tmp_path / f"{name}.mp4"
    _run([ffmpeg, "-v", "error", "-y",
          "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=5",
          "-f", "lavfi", "-i", "sine=frequency=330:duration=5",
          *video, "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", str(original)])  # fmt: skip
    streams = [Stream(0, codec), Stream(1, "aac")]
    files = [original, *_remuxes(ffmpeg, original, tmp_path)]
    expected = stream_digests(_packets(ffmpeg, original, streams))
    assert len(expected) == 2
    for tool in _ffmpegs(ffmpeg):
        for path in files:
            assert stream_digests(_packets(tool, path, streams)) == expected, (tool, path.name)
    # and the raw bytes do differ between MP4 and MPEG-TS: the canonical form is what agrees
    raw = [Stream(0, "raw"), Stream(1, "raw")]
    assert stream_digests(_packets(ffmpeg, original, raw)) != stream_digests(
        _packets(ffmpeg, tmp_path / "r.ts", raw)
    )


def test_a_byte_flipped_in_one_sample_changes_that_packet_and_no_other(
    ffmpeg: str, tmp_path: Path
) -> None:
    original = tmp_path / "o.mp4"
    _run([ffmpeg, "-v", "error", "-y",
          "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=4",
          "-c:v", "libx264", "-preset", "veryfast", "-g", "30", str(original)])  # fmt: skip
    probe = shutil.which("ffprobe") or str(Path(ffmpeg).with_name("ffprobe"))
    listing = _run([probe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                    "packet=pos,size", "-of", "csv=p=0", str(original)]).decode()  # fmt: skip
    samples = [tuple(int(v) for v in line.split(",")[:2]) for line in listing.split()]
    size, pos = samples[45]  # csv order: size, pos
    flipped = tmp_path / "flipped.mp4"
    data = bytearray(original.read_bytes())
    data[pos + size // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    streams = [Stream(0, "h264")]
    before = _packets(ffmpeg, original, streams)
    after = _packets(ffmpeg, flipped, streams)
    assert len(before) == len(after) == len(samples)
    changed = [k for k, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [45]
