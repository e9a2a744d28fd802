"""What a probe's ffmpeg header says beyond the video and audio timing (issue 17).

Pure parsers of the stream dump ffmpeg writes to stderr when it opens an input:

* the display matrix of the first video stream, as the clockwise turn that makes its stored
  pixels upright (``vigil_verify.sampling.display_rotation``): stored segments lose the
  matrix, so this is what must be catalogued and applied when they are decoded;
* the subtitle, data and timecode tracks, which the segments do not carry (the original,
  stored byte-exact, keeps them);
* the language of each audio track, which the segments carry every one of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vigil_verify.sampling import display_rotation

TrackKind = Literal["subtitle", "data", "timecode"]

_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)\S*:\s*(Video|Audio|Subtitle|Data|Attachment):\s*(\S+)")
_AUDIO = re.compile(r"^\s*Stream #0:\d+(?:\[[^\]]*\])?(?:\((?P<lang>[^)]*)\))?:\s*Audio:")
_UNDETERMINED = frozenset({"", "und", "unk", "xxx"})
_TAG = re.compile(r"\((\w{4}) / 0x[0-9A-Fa-f]+\)")  # the container's codec tag: "(tmcd / 0x...)"
_MATRIX = re.compile(r"displaymatrix:\s*rotation of\s*(-?[\d.]+)\s*degrees")


@dataclass(frozen=True)
class ExtraTrack:
    """A track that is neither video nor audio: its stream index, codec name and kind, and
    the container's codec tag where the header shows one ("gpmd" for GoPro's GPMF)."""

    index: int
    codec: str
    kind: TrackKind
    tag: str | None = None


def header_rotation(stderr: str) -> int:
    """Clockwise degrees (0, 90, 180, 270) that make the first video stream upright."""
    in_first_video = False
    for line in stderr.splitlines():
        stream = _STREAM.match(line)
        if stream is not None:
            if in_first_video:
                return 0
            in_first_video = stream.group(2) == "Video"
            continue
        matrix = _MATRIX.search(line)
        if in_first_video and matrix is not None:
            return display_rotation(float(matrix.group(1)))
    return 0


def extra_tracks(stderr: str) -> tuple[ExtraTrack, ...]:
    """The subtitle, data and timecode tracks of the input, in stream order. A track ffmpeg
    has no decoder name for ("none", as a QuickTime timecode) is named by its codec tag."""
    found: list[ExtraTrack] = []
    for line in stderr.splitlines():
        stream = _STREAM.match(line)
        if stream is None or stream.group(2) not in ("Subtitle", "Data"):
            continue
        codec = stream.group(3).rstrip(",")
        tag = _TAG.search(line)
        if codec == "none" and tag is not None:
            codec = tag.group(1)
        kind: TrackKind = "subtitle" if stream.group(2) == "Subtitle" else "data"
        if "tmcd" in line:
            kind = "timecode"
        named = tag.group(1) if tag is not None else None
        found.append(ExtraTrack(int(stream.group(1)), codec, kind, named))
    return tuple(found)


@dataclass(frozen=True)
class AudioTrack:
    """An audio track of a recording, as ffmpeg names it: its codec, channel layout ("mono",
    "stereo", "5.1"...; None: not said) and language (ISO 639 code; None: not said)."""

    codec: str
    channels: str | None = None
    language: str | None = None


def audio_languages(stderr: str) -> tuple[str | None, ...]:
    """The language of each audio stream of input #0, in stream order (None where the input
    says none, or "und"). The dump of the outputs that follows it is not read."""
    found: list[str | None] = []
    for line in stderr.splitlines():
        if line.startswith("Output #"):
            break
        audio = _AUDIO.match(line)
        if audio is not None:
            language = (audio.group("lang") or "").strip().lower()
            found.append(None if language in _UNDETERMINED else language)
    return tuple(found)
