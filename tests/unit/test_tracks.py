"""Unit tests for transcode.tracks: rotation, extra tracks and audio languages from ffmpeg's
stream dump."""

from __future__ import annotations

from transcode.tracks import (
    ExtraTrack,
    audio_languages,
    extra_tracks,
    header_rotation,
)

DUMP = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'sub.mov':
  Stream #0:0[0x1]: Video: h264 (High) (avc1 / 0x31637661), yuv420p, 320x240, 30 fps (default)
    Metadata:
      handler_name    : VideoHandler
    Side data:
      displaymatrix: rotation of 90.00 degrees
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo
  Stream #0:2[0x3]: Subtitle: mov_text (text / 0x74786574), 0 kb/s (default)
  Stream #0:3[0x4](eng): Data: none (tmcd / 0x64636D74) (default)
  Stream #0:4: Data: bin_data
  Stream #0:5[0x6](eng): Data: bin_data (gpmd / 0x646D7067), 61 kb/s (default)
"""


def test_header_rotation() -> None:
    assert header_rotation(DUMP) == 270
    assert header_rotation(DUMP.replace("90.00", "-90.00")) == 90
    assert header_rotation(DUMP.replace("displaymatrix", "other")) == 0
    assert header_rotation("") == 0


def test_rotation_of_a_later_stream_is_not_the_videos() -> None:
    dump = (
        "  Stream #0:0: Video: h264\n  Stream #0:1: Video: mjpeg\n    Side data:\n"
        "      displaymatrix: rotation of 90.00 degrees\n"
    )
    assert header_rotation(dump) == 0


def test_extra_tracks() -> None:
    assert extra_tracks(DUMP) == (
        ExtraTrack(2, "mov_text", "subtitle", "text"),
        ExtraTrack(3, "tmcd", "timecode", "tmcd"),  # no decoder name ("none"): its codec tag
        ExtraTrack(4, "bin_data", "data"),
        ExtraTrack(5, "bin_data", "data", "gpmd"),  # GoPro's GPMF: known by its tag
    )
    assert extra_tracks("") == ()
    # no decoder name and no codec tag: "none" as ffmpeg says
    assert extra_tracks("  Stream #0:1: Data: none\n") == (ExtraTrack(1, "none", "data"),)


TWO_AUDIO = """Input #0, matroska,webm, from 'two.mkv':
  Duration: 00:00:03.00, start: 0.000000, bitrate: 900 kb/s
  Stream #0:0: Video: h264 (High), yuv420p(progressive), 160x120, 25 fps (default)
  Stream #0:1(eng): Audio: aac (LC), 44100 Hz, stereo, fltp (default)
    Metadata:
      title           : officer
  Stream #0:2[0x3](und): Audio: pcm_s16le, 48000 Hz, mono, s16, 768 kb/s
  Stream #0:3(fre): Subtitle: subrip
  Stream #0:4[0x5](DEU): Audio: mp3, 44100 Hz, mono, fltp, 64 kb/s
Output #0, framecrc, to 'pipe:':
  Stream #0:1(eng): Audio: aac (LC), 44100 Hz, stereo, fltp (default)
"""


def test_audio_languages_of_the_input_in_stream_order() -> None:
    # "und" is no language; a subtitle's is not an audio track's; the outputs are not read.
    assert audio_languages(TWO_AUDIO) == ("eng", None, "deu")
    assert audio_languages(DUMP) == ("eng",)
    assert audio_languages("  Stream #0:0: Audio: aac, 48000 Hz, mono\n") == (None,)
    assert audio_languages("") == ()
