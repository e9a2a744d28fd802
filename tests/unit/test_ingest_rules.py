"""Unit tests for the ingest rules: container signatures and metadata validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ingest.service import GpsFix, RecordingMetadata, looks_like_container

T = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def ts_packets(count: int) -> bytes:
    """MPEG-TS: 188-byte packets, each starting with the 0x47 sync byte."""
    return b"".join(b"\x47" + bytes([0x40, 0x00, 0x10]) + b"\xff" * 184 for _ in range(count))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", True),  # MP4
        (b"\x00\x00\x00\x18ftypqt  \x00\x00\x02\x00", True),  # QuickTime
        (b"\x00\x00\x10\x00mdat" + b"\x00" * 32, True),  # MP4 that lost its ftyp/moov
        (b"\x00\x00\x00\x08free\x00\x00\x10\x00mdat", True),
        (b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat", True),  # old QuickTime
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01", True),  # Matroska / WebM (EBML)
        (b"RIFF\x24\x10\x00\x00AVI LIST", True),  # AVI
        (b"FLV\x01\x05\x00\x00\x00\x09", True),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00", True),  # MPEG program stream
        (ts_packets(3), True),  # sync bytes at 0, 188, 376
        (ts_packets(3)[:376], False),  # too short to see the third sync byte
        (b"\x47" + b"\x00" * 400, False),  # one sync byte is not a stream
        (b"\x47" + b"\x00" * 187 + b"\x47" + b"\x00" * 187 + b"\x00" * 10, False),
        (b"RIFF\x24\x10\x00\x00WAVEfmt ", True),  # audio: a recording too
        (b"OggS\x00\x02" + bytes(20), True),
        (b"ID3\x04\x00\x00" + bytes(20), True),
        (b"fLaC\x00\x00\x00\x22", True),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", False),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", False),
        (b"%PDF-1.7\n", False),
        (b"Officer notes: the camera was switched on at 09:30.\n" * 10, False),
        (b"", False),
        (b"ftyp", False),  # signature at the wrong offset
    ],
    ids=[
        "mp4",
        "quicktime",
        "mdat-first",
        "free",
        "wide",
        "mkv",
        "avi",
        "flv",
        "mpeg-ps",
        "mpegts",
        "mpegts-short",
        "one-sync",
        "two-syncs",
        "wav",
        "ogg",
        "mp3-id3",
        "flac",
        "png",
        "jpeg",
        "pdf",
        "text",
        "empty",
        "misplaced-ftyp",
    ],
)
def test_looks_like_container(head: bytes, expected: bool) -> None:
    assert looks_like_container(head) is expected


# -- RecordingMetadata ------------------------------------------------------------------------


def test_metadata_minimal_and_defaults() -> None:
    meta = RecordingMetadata(device_id="BC-0042")
    assert meta.officer_id is None
    assert meta.device_start is None
    assert meta.gps_track == ()
    assert meta.original_name == "recording"


def test_metadata_accepts_aware_times_in_any_zone() -> None:
    plus8 = timezone(timedelta(hours=8))
    meta = RecordingMetadata(
        device_id="AXON.B3:X60-1_2",
        officer_id="031245",
        device_start=datetime(2026, 11, 27, 17, 30, tzinfo=plus8),
        device_clock_at_handover=T,
        category="traffic",
        gps_track=(GpsFix(t=T, lat=-33.86, lon=151.2),),
        original_name="AXON_20261127.mp4",
    )
    assert meta.device_start == T


@pytest.mark.parametrize("field", ["device_start", "device_clock_at_handover"])
def test_metadata_rejects_naive_datetimes(field: str) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        RecordingMetadata(device_id="BC-0042", **{field: datetime(2026, 11, 27, 9, 30)})


def test_metadata_rejects_naive_iso_string() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        RecordingMetadata.model_validate_json(
            '{"device_id": "BC-0042", "device_start": "2026-11-27T09:30:00"}'
        )
    ok = RecordingMetadata.model_validate_json(
        '{"device_id": "BC-0042", "device_start": "2026-11-27T09:30:00Z"}'
    )
    assert ok.device_start == T


@pytest.mark.parametrize(
    "device_id",
    ["", "BC 0042", "BC/0042", "../etc", "BC-0042\n", "ü-cam", "x" * 65, "a;b"],
)
def test_metadata_rejects_bad_device_ids(device_id: str) -> None:
    with pytest.raises(ValidationError, match="device_id"):
        RecordingMetadata(device_id=device_id)


@pytest.mark.parametrize("device_id", ["BC-0042", "x" * 64, "a.b_c:d-9"])
def test_metadata_accepts_good_device_ids(device_id: str) -> None:
    assert RecordingMetadata(device_id=device_id).device_id == device_id


@pytest.mark.parametrize("officer_id", ["0312 45", "o/1", "x" * 65])
def test_metadata_rejects_bad_officer_ids(officer_id: str) -> None:
    with pytest.raises(ValidationError, match="officer_id"):
        RecordingMetadata(device_id="BC-0042", officer_id=officer_id)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(90.0001, 0.0), (-90.5, 0.0), (0.0, 180.01), (0.0, -181.0), (float("nan"), 0.0)],
)
def test_gps_fix_rejects_out_of_range_coordinates(lat: float, lon: float) -> None:
    with pytest.raises(ValidationError):
        GpsFix(t=T, lat=lat, lon=lon)
    with pytest.raises(ValidationError, match="gps_track"):
        RecordingMetadata.model_validate(
            {"device_id": "BC-0042", "gps_track": [{"t": T, "lat": lat, "lon": lon}]}
        )


@pytest.mark.parametrize(("lat", "lon"), [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)])
def test_gps_fix_accepts_the_edges(lat: float, lon: float) -> None:
    assert GpsFix(t=T, lat=lat, lon=lon).lat == lat


def test_gps_fix_rejects_naive_time() -> None:
    with pytest.raises(ValidationError):
        GpsFix(t=datetime(2026, 11, 27, 9, 30), lat=1.0, lon=2.0)


def test_metadata_forbids_unknown_fields_and_is_frozen() -> None:
    with pytest.raises(ValidationError, match="extra"):
        RecordingMetadata(device_id="BC-0042", colour="red")  # type: ignore[call-arg]
    meta = RecordingMetadata(device_id="BC-0042")
    with pytest.raises(ValidationError):
        meta.device_id = "BC-9"  # type: ignore[misc]


def test_metadata_limits_name_and_category_length() -> None:
    with pytest.raises(ValidationError, match="original_name"):
        RecordingMetadata(device_id="BC-0042", original_name="n" * 256)
    with pytest.raises(ValidationError, match="category"):
        RecordingMetadata(device_id="BC-0042", category="c" * 65)
