"""Unit tests for transcode.gps: NMEA sentences in subtitle cues and GoPro GPMF payloads read
as fixes, and the ffmpeg calls that pull a track out, as lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.gpmf import gps5_payload, gps9_payload, klv, nest, padded
from transcode.gps import (
    Fix,
    data_track_command,
    gpmf_fixes,
    gps_form,
    klv_records,
    nmea_fixes,
    srt_cues,
    subtitle_text_command,
)
from transcode.tracks import ExtraTrack


def _sentence(body: str) -> str:
    value = 0
    for char in body.encode():
        value ^= char
    return f"${body}*{value:02X}"


RMC = _sentence("GPRMC,101500.00,A,4807.0380,N,01131.0000,E,022.4,084.4,061226,003.1,W")
GGA = _sentence("GPGGA,101501.00,4807.0400,N,01131.0100,E,1,08,0.9,545.4,M,46.9,M,,")
SOUTH_WEST = _sentence("GNRMC,235959.50,A,3351.1234,S,15112.5678,W,0.0,0.0,311226,,")


def test_rmc_gives_a_dated_fix_and_gga_takes_the_date_of_the_rmc_before_it() -> None:
    fixes, skipped = nmea_fixes([(0.0, RMC), (1.0, GGA)])
    assert skipped == 0
    assert fixes == (
        Fix(datetime(2026, 12, 6, 10, 15, tzinfo=UTC), 48 + 7.038 / 60, 11 + 31 / 60, 0.0),
        Fix(datetime(2026, 12, 6, 10, 15, 1, tzinfo=UTC), 48 + 7.04 / 60, 11 + 31.01 / 60, 1.0),
    )


def test_southern_and_western_hemispheres_are_negative_with_fractional_seconds() -> None:
    ((fix,), _) = nmea_fixes([(None, SOUTH_WEST)])
    assert fix.t == datetime(2026, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    assert fix.lat == pytest.approx(-(33 + 51.1234 / 60))
    assert fix.lon == pytest.approx(-(151 + 12.5678 / 60))
    assert fix.media_s is None


def test_sentences_without_a_fix_a_date_or_a_right_checksum_are_passed_over() -> None:
    void = _sentence("GPRMC,101500.00,V,,,,,,,061226,,")
    no_quality = _sentence("GPGGA,101502.00,4807.0400,N,01131.0100,E,0,00,,,M,,M,,")
    bad_sum = RMC[:-2] + ("00" if RMC[-2:] != "00" else "01")
    fixes, skipped = nmea_fixes([(0.0, GGA), (1.0, void), (2.0, no_quality), (3.0, bad_sum)])
    assert fixes == ()  # the GGA came before any date
    assert skipped == 4


def test_the_same_instant_in_rmc_and_gga_is_one_fix_and_plain_captions_are_no_gps() -> None:
    same = _sentence("GPGGA,101500.00,4807.0380,N,01131.0000,E,1,08,0.9,545.4,M,46.9,M,,")
    fixes, _ = nmea_fixes([(0.0, f"{RMC}\n{same}")])
    assert len(fixes) == 1
    assert nmea_fixes([(0.0, "unit 7 on scene"), (2.0, "$GPZDA,no position")]) == ((), 0)


def test_srt_cues_read_start_times_and_multi_line_text() -> None:
    text = "1\n00:00:00,500 --> 00:00:02,000\nline one\nline two\n\n2\n01:02:03.250 --> x\nb\n"
    assert srt_cues(text) == [(0.5, "line one\nline two"), (3723.25, "b")]


WHEN = datetime(2026, 12, 6, 10, 15, 0, tzinfo=UTC)


def test_gps5_samples_are_scaled_and_spread_over_their_second() -> None:
    points = [(48.1 + i * 1e-4, 11.5 - i * 1e-4) for i in range(18)]
    data = gps5_payload(WHEN, points) + gps5_payload(WHEN + timedelta(seconds=1), points[:2])
    fixes, skipped = gpmf_fixes(data)
    assert skipped == 0 and len(fixes) == 20
    assert fixes[0] == Fix(WHEN, pytest.approx(48.1), pytest.approx(11.5))  # type: ignore[arg-type]
    assert fixes[9].t == WHEN + timedelta(seconds=0.5)
    assert fixes[17].lat == pytest.approx(48.1 + 17e-4)
    assert fixes[18].t == WHEN + timedelta(seconds=1)


def test_a_payload_without_lock_gives_no_fix_and_a_torn_payload_is_read_to_its_last_record() -> (
    None
):
    unlocked = gps5_payload(WHEN, [(48.1, 11.5)] * 3, lock=0)
    whole = gps5_payload(WHEN, [(48.2, 11.6)])
    fixes, skipped = gpmf_fixes(unlocked + whole + whole[:-7])
    assert [f.lat for f in fixes] == [pytest.approx(48.2)]
    assert skipped == 3


def test_gps9_carries_its_own_time_and_other_top_level_records_are_ignored() -> None:
    days = (datetime(2026, 12, 6, tzinfo=UTC) - datetime(2000, 1, 1, tzinfo=UTC)).days
    data = padded(gps9_payload(days, 36900.25, (-33.86, 151.2)), 128)
    data += gps9_payload(days, 36901.0, (-33.86, 151.2), lock=0)
    fixes, skipped = gpmf_fixes(data)
    assert fixes == (
        Fix(datetime(2026, 12, 6, 10, 15, 0, 250000, tzinfo=UTC), pytest.approx(-33.86),  # type: ignore[arg-type]
            pytest.approx(151.2)),  # type: ignore[arg-type]
    )  # fmt: skip
    assert skipped == 1


def test_klv_records_pad_to_four_bytes_and_nest() -> None:
    data = klv("ABCD", "c", 1, 5, b"hello") + nest("DEVC", klv("XY12", "L", 4, 1, b"\0\0\0\1"))
    first, devc = klv_records(data)
    assert (first.key, first.type, first.repeat, first.data) == ("ABCD", "c", 5, b"hello")
    (inner,) = klv_records(devc.data)
    assert devc.key == "DEVC" and inner.key == "XY12"


def test_which_tracks_may_hold_gps() -> None:
    assert gps_form(ExtraTrack(3, "bin_data", "data", "gpmd")) == "gpmf"
    assert gps_form(ExtraTrack(2, "mov_text", "subtitle", "tx3g")) == "nmea"
    assert gps_form(ExtraTrack(2, "subrip", "subtitle")) == "nmea"
    assert gps_form(ExtraTrack(2, "dvd_subtitle", "subtitle")) is None  # pictures, no text
    assert gps_form(ExtraTrack(3, "tmcd", "timecode", "tmcd")) is None
    assert gps_form(ExtraTrack(4, "bin_data", "data")) is None


def test_the_ffmpeg_calls_that_pull_a_track_out() -> None:
    src = Path("/s/in.mp4")
    assert subtitle_text_command("ffmpeg", src, 2)[-9:] == [
        "-i", "/s/in.mp4", "-map", "0:2", "-c:s", "srt", "-f", "srt", "pipe:1",
    ][-9:]  # fmt: skip
    assert data_track_command("ffmpeg", src, 3)[-8:] == [
        "/s/in.mp4", "-map", "0:3", "-c", "copy", "-f", "data", "pipe:1",
    ]  # fmt: skip
