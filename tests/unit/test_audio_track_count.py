"""Several audio tracks, without ffmpeg: the container that can carry every one by stream copy,
the count catalogued, and what the timeline says of them."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pytest

from catalog.models import Recording
from catalog.repository import Catalog
from ingest.custody import record_probe
from interfaces.api.schemas import RecordingOut
from interfaces.cli.render import audio_summary
from transcode.probe import ProbeResult, StreamInfo, Track
from transcode.segmenter import container_for, playable


def _track(index: int, media: str, codec: str, rate: int = 48000, n: int = 50) -> Track:
    info = StreamInfo(index, media, codec, Fraction(1, rate))
    step = 1024 if media == "audio" else rate // 25
    return Track(
        info,
        np.arange(n, dtype=np.int64) * step,
        np.full(n, step, dtype=np.int64),
        np.full(n, 200, dtype=np.int64),
        np.ones(n, dtype=np.bool_),
    )


def _probed(video: str | None, *audio: str, empty: tuple[str, ...] = ()) -> ProbeResult:
    """A probe of a file with ``video`` (or none) and the ``audio`` tracks, in that order;
    ``empty``: audio streams without any packet after them."""
    tracks = [_track(0, "video", video, 90000)] if video is not None else []
    tracks += [_track(len(tracks) + i, "audio", codec) for i, codec in enumerate(audio)]
    streams = [t.stream for t in tracks]
    streams += [
        StreamInfo(len(streams) + i, "audio", codec, Fraction(1, 48000))
        for i, codec in enumerate(empty)
    ]
    first_audio = next((t for t in tracks if t.stream.media_type == "audio"), None)
    return ProbeResult(
        "mov,mp4,m4a,3gp,3g2,mj2",
        2.0,
        tuple(streams),
        tracks[0] if video is not None else None,
        first_audio,
    )


@pytest.mark.parametrize(
    ("video", "audio", "container"),
    [
        ("h264", ("aac", "aac"), "mpegts"),
        ("h264", ("aac", "mp3", "ac3"), "mpegts"),
        ("h264", ("aac", "pcm_s16le"), "matroska"),  # MPEG-TS cannot carry the second
        ("h264", ("pcm_s16le", "aac"), "matroska"),
        ("hevc", ("aac", "opus"), "matroska"),
        (None, ("aac", "mp3"), "mpegts"),  # an audio-only recording's tracks alone
        (None, ("mp3", "pcm_s16le"), "matroska"),
    ],
)
def test_the_segment_container_carries_every_audio_track(
    video: str | None, audio: tuple[str, ...], container: str
) -> None:
    assert container_for(_probed(video, *audio)) == container


def test_an_audio_stream_without_packets_is_copied_too_so_it_decides_the_container() -> None:
    # ``-map 0:a?`` copies it into the segments along with the others.
    assert container_for(_probed("h264", "aac", empty=("pcm_s16le",))) == "matroska"


def test_a_second_track_a_browser_cannot_play_keeps_copy_playback_while_ts_carries_it() -> None:
    assert playable(_probed("h264", "aac", "ac3"))  # the player plays the first (AAC)
    assert not playable(_probed("h264", "aac", "pcm_s16le"))  # Matroska: a proxy is made


class _Recorder:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def update_recording(self, recording_id: str, **values: Any) -> None:
        self.values = {"id": recording_id, **values}


@pytest.mark.parametrize(
    ("probed", "codec", "count"),
    [
        (_probed("h264", "aac", "aac"), "aac", 2),
        (_probed("h264", "aac", "pcm_s16le", "mp3"), "aac", 3),
        (_probed("h264", "aac"), "aac", 1),
        (_probed("h264"), None, 0),
        (_probed(None, "mp3", "aac"), "mp3", 2),
        (_probed("h264", empty=("aac",)), None, 0),  # no packet anywhere: no audio is cut
    ],
)
def test_record_probe_catalogues_how_many_audio_tracks_the_segments_carry(
    probed: ProbeResult, codec: str | None, count: int
) -> None:
    recorder = _Recorder()
    record_probe(cast(Catalog, recorder), "rec-1", probed)
    assert recorder.values["audio_tracks"] == count
    assert recorder.values["audio_codec"] == codec  # the first track's, as before


def _recording(**values: Any) -> Recording:
    base: dict[str, Any] = {
        "id": "r",
        "sha256": "0" * 64,
        "size": 1,
        "original_key": "k",
        "original_name": "n",
        "device_id": "d",
        "received_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return Recording(**{**base, **values})


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"video_codec": "h264", "audio_codec": "aac", "audio_tracks": 2}, "audio 2 tracks"),
        ({"video_codec": "h264", "audio_codec": "aac", "audio_tracks": 1}, "audio 1 track (aac)"),
        ({"video_codec": "h264", "audio_codec": None, "audio_tracks": 0}, "audio none"),
        ({"video_codec": "h264", "audio_codec": "aac", "audio_tracks": None}, "audio aac"),
        ({"video_codec": "h264", "audio_codec": None, "audio_tracks": None}, "audio none"),
        ({"video_codec": None, "audio_codec": None, "audio_tracks": None}, "audio ?"),
    ],
)
def test_the_timeline_says_which_audio_tracks_a_recording_has(
    values: dict[str, Any], said: str
) -> None:
    assert audio_summary(_recording(**values)).startswith(said)


def test_the_timeline_names_the_first_tracks_codec_among_several() -> None:
    rec = _recording(video_codec="h264", audio_codec="aac", audio_tracks=3)
    assert audio_summary(rec) == "audio 3 tracks (first aac)"


def test_the_api_timeline_has_a_typed_track_count() -> None:
    fields = RecordingOut.model_fields
    assert fields["audio_tracks"].annotation == (int | None)
    assert fields["audio_codec"].annotation == (str | None)
