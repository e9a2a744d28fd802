"""Frame records read from ffmpeg's stderr wherever in a line they landed.

The lines below are ffmpeg 9.0.2's (the imageio-ffmpeg wheel), captured from one decode of a
stored segment with both ``showinfo`` (pictures) and ``ashowinfo`` (sound): the two filter
threads' records interleave inside lines. Reading by line prefix lost a picture per decode and
signed wrong frame times, so ``vigil verify`` later called intact segments unverifiable.
"""

from __future__ import annotations

from vigil_verify.audio_tracks import AudioLog
from vigil_verify.sampling import FrameTimes
from vigil_verify.showinfo import FrameRecord, frame_records

PICTURE_IN_SOUND_LINE = (
    "[Parsed_ashowinfo_0 @ 0x7fc714001c00] n:72 pts:1034368 pts_time:21.549333 fmt:fltp "
    "channels:1 chlayout:mono rate:48000 nb_samples:1024 checksum:D17EB021 plane_checksums: "
    "[ D17EB021 n:  31 pts:1899000 pts_time:21.1    duration:   3000 duration_time:0.0333333 "
    "fmt:gray cl:unspecified sar:133/75 s:32x32 i:P iskey:0 type:B checksum:F9382547 "
    "plane_checksum:[F9382547] mean:[137] stdev:[28.0]"
)
SOUND_GLUED_TO_PICTURE_LINE = (
    "[Parsed_showinfo_2 @ 0x7f9d5800fa00] color_range:pc color_space:unknownn:389 "
    "pts:1358976 pts_time:28.312 fmt:fltp channels:1 chlayout:mono rate:48000 nb_samples:1024 "
    "checksum:2BE7CE81 plane_checksums: [ 2BE7CE81 ]"
)
PICTURE = (
    "[Parsed_showinfo_2 @ 0x7f9d5800fa00] n:   0 pts:1806000 pts_time:20.066667 duration:   "
    "3000 duration_time:0.0333333 fmt:gray cl:unspecified sar:133/75 s:32x32 i:P iskey:1 "
    "type:I checksum:1C00CA3A plane_checksum:[1C00CA3A] mean:[115] stdev:[28.6]"
)
SOUND_51 = (
    "[Parsed_ashowinfo_0 @ 0x561ab7a15f40] n:0 pts:960640 pts_time:20.0133 pos:102836 "
    "fmt:fltp channels:1 chlayout:mono rate:48000 nb_samples:1024 checksum:E31AEE78 "
    "plane_checksums: [ E31AEE78 ]"
)


def test_a_picture_record_after_a_sound_prefix_is_a_picture() -> None:
    assert frame_records(PICTURE_IN_SOUND_LINE) == [
        FrameRecord("audio", 72, 21.549333),
        FrameRecord("video", 31, 21.1),
    ]


def test_a_sound_record_glued_to_a_word_of_a_picture_line_is_sound() -> None:
    assert frame_records(SOUND_GLUED_TO_PICTURE_LINE) == [FrameRecord("audio", 389, 28.312)]


def test_one_record_per_line_as_ffmpeg_5_writes_them() -> None:
    assert frame_records(PICTURE) == [FrameRecord("video", 0, 20.066667)]
    assert frame_records(SOUND_51) == [FrameRecord("audio", 0, 20.0133)]
    assert frame_records("  Duration: 00:00:10.05, start: 20.013333, bitrate: 4346 kb/s") == []


def test_a_timestamp_ffmpeg_could_not_give_is_none() -> None:
    line = PICTURE.replace("pts:1806000 pts_time:20.066667", "pts:NOPTS pts_time:NOPTS")
    assert frame_records(line) == [FrameRecord("video", 0, None)]


def test_frame_times_count_every_picture_and_no_sound() -> None:
    times = FrameTimes()
    for line in (PICTURE, PICTURE_IN_SOUND_LINE, SOUND_GLUED_TO_PICTURE_LINE, SOUND_51):
        times.line(line)
    assert times.raw == [20.066667, 21.1]


def test_the_audio_log_finds_both_starts_wherever_they_landed() -> None:
    log = AudioLog()
    first_sound_mid_line = SOUND_GLUED_TO_PICTURE_LINE.replace("n:389", "n:0")
    first_picture_mid_line = PICTURE_IN_SOUND_LINE.replace("n:  31", "n:   0")
    for line in (first_picture_mid_line, first_sound_mid_line):
        log.line(line)
    assert log.video_start == 21.1
    assert log.audio_start == 28.312
