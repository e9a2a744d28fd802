"""Issue 19, clips: the pure parts. How a clip is cut (copy on a keyframe, else x264), the ffmpeg
command lines as lists, the keyframe times read from a catalogue row, the manifest definition a
clip is signed with, and the signing identity's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrity.clip_credentials import (
    EVIDENCE_LABEL,
    CheckpointRef,
    ClipSigner,
    ClipSigningError,
    ClipSource,
    EvidenceAssertion,
    SegmentHash,
    manifest_definition,
)
from integrity.clips import ClipSegment, ClipWindow, clip_bounds, clip_name, keyframe_times
from tests.c2pa_ca import TestCA
from transcode.clips import (
    ClipError,
    ClipJob,
    clip_command,
    clip_method,
    concat_list_text,
    parse_start,
    start_command,
    starts_on_keyframe,
)

SEGS = (Path("/p/R/segments/seg-00001.ts"), Path("/p/R/segments/seg-00002.ts"))


def test_a_window_on_a_keyframe_is_copied_else_re_encoded() -> None:
    keyframes = [2.0, 3.0, 4.0]
    assert clip_method(3.0, keyframes) == "copy"
    assert clip_method(3.0004, keyframes) == "copy"  # stored times are rounded to the µs
    assert clip_method(2.5, keyframes) == "h264"
    assert not starts_on_keyframe(3.01, keyframes)


def test_copy_command_reads_the_segments_back_to_back_and_copies_packets() -> None:
    job = ClipJob(SEGS, Path("/out/c.mp4"), seek_s=12.066667, length_s=2.0, method="copy")
    assert clip_command("ffmpeg", job, 10.008) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-nostats",
        "-ss", "2.058667",  # from the input's start: where ffmpeg counts an input -ss from
        "-i", "concat:/p/R/segments/seg-00001.ts|/p/R/segments/seg-00002.ts",
        "-t", "2.000000", "-map", "0:v:0", "-map", "0:a?", "-map_metadata", "-1",
        "-c", "copy", "-f", "mp4", "-y", "/out/c.mp4",
    ]  # fmt: skip


def test_h264_command_re_encodes_every_frame_from_the_window_start() -> None:
    job = ClipJob(SEGS, Path("/out/c.mp4"), seek_s=12.5, length_s=1.0, method="h264")
    cmd = clip_command("ffmpeg", job, 10.0)
    assert cmd.index("-copyts") < cmd.index("-i") < cmd.index("-ss")  # decoded, then trimmed
    assert cmd[cmd.index("-ss") + 1] == "12.499500"  # the window's first frame, not the one before
    assert cmd[cmd.index("-c:v") + 1] == "libx264"
    assert cmd[cmd.index("-fps_mode") + 1] == "passthrough"
    assert cmd[cmd.index("-c:a") + 1] == "aac"
    assert "copy" not in cmd


def test_matroska_segments_are_read_through_a_concat_list(tmp_path: Path) -> None:
    mkv = (tmp_path / "a b.mkv", tmp_path / "it's.mkv")
    job = ClipJob(
        mkv, tmp_path / "c.mp4", seek_s=0.0, length_s=1.0, method="h264", matroska=True,
        concat_list=tmp_path / "list.txt",
    )  # fmt: skip
    cmd = clip_command("ffmpeg", job, 0.0)
    assert cmd[cmd.index("-f") : cmd.index("-f") + 6] == [
        "-f", "concat", "-safe", "0", "-i", str(tmp_path / "list.txt"),
    ]  # fmt: skip
    text = concat_list_text(mkv)
    assert "file '" + str(mkv[1].resolve()).replace("'", "'\\''") + "'" in text


@pytest.mark.parametrize(
    "job",
    [
        ClipJob((), Path("c.mp4"), seek_s=0.0, length_s=1.0, method="copy"),
        ClipJob(SEGS, Path("c.mp4"), seek_s=0.0, length_s=0.0, method="copy"),
    ],
)
def test_no_segment_or_an_empty_window_is_a_clear_error(job: ClipJob) -> None:
    with pytest.raises(ClipError):
        clip_command("ffmpeg", job, 0.0)


def test_the_input_start_is_read_from_ffmpegs_description() -> None:
    text = "Input #0, mpegts, from 'concat:a.ts':\n  Duration: 00:00:04.07, start: 2.008000, b"
    assert parse_start(text) == 2.008
    with pytest.raises(ClipError):
        parse_start("concat:a.ts: No such file or directory")
    job = ClipJob(SEGS, Path("c.mp4"), seek_s=0.0, length_s=1.0, method="copy")
    assert start_command("ffmpeg", job)[-2:] == ["-i", "concat:" + "|".join(map(str, SEGS))]


def test_keyframe_times_come_from_the_row_and_the_segment_start() -> None:
    row = '[{"t": 2.5, "pdq": "00", "quality": 100}, {"t": 3.0, "pdq": "00", "quality": 90}]'
    assert keyframe_times(2.0, row) == (2.0, 2.5, 3.0)
    assert keyframe_times(2.0, None) == (2.0,)
    assert keyframe_times(2.0, "not json") == (2.0,)


def _segment(index: int, start: float) -> ClipSegment:
    return ClipSegment(index, Path(f"s{index}.ts"), "ab" * 32, start, start + 2.0, start, (start,))


def test_clip_bounds_close_open_ends_on_the_segments() -> None:
    window = ClipWindow("R", "a.mp4", None, None, None, 3.0, (_segment(0, 0.0), _segment(1, 2.0)))
    lo, hi, covered = clip_bounds(window)
    assert (lo, hi, [s.index for s in covered]) == (0.0, 3.0, [0, 1])
    window = ClipWindow("R", "a.mp4", None, None, 2.0, None, (_segment(0, 0.0), _segment(1, 2.0)))
    lo, hi, covered = clip_bounds(window)
    assert (lo, hi, [s.index for s in covered]) == (2.0, 4.0, [1])
    assert clip_name("R", lo, hi) == "R_2.000-4.000.mp4"


def _evidence(method: str) -> EvidenceAssertion:
    return EvidenceAssertion(
        recording="R", case="C", from_s=2.5, to_s=3.5, method=method, original_sha256="cd" * 32,
        segments=(SegmentHash(index=1, sha256="ab" * 32),),
        checkpoint=CheckpointRef(origin="vigil", size=12, root="ef" * 32),
    )  # fmt: skip


def test_manifest_says_opened_trimmed_and_transcoded_with_the_window() -> None:
    source = ClipSource("R", "cam.mp4", "cd" * 32, None)
    definition = manifest_definition("R_2.500-3.500.mp4", source, _evidence("h264"))
    assertions = definition["assertions"]
    assert isinstance(assertions, list)
    actions = assertions[0]["data"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.trimmed", "c2pa.transcoded"]
    assert actions[1]["parameters"]["from_s"] == 2.5
    assert assertions[1]["label"] == EVIDENCE_LABEL
    assert assertions[1]["data"]["segments"] == [{"index": 1, "sha256": "ab" * 32}]
    assert assertions[1]["data"]["checkpoint"]["size"] == 12
    assert definition["ingredients"] == [
        {
            "title": "cam.mp4", "format": "video/mp4", "relationship": "parentOf",
            "instance_id": "vigil:recording:R",
            "description": "the original recording R, SHA-256 " + "cd" * 32
            + " as the signed custody log records it",
        }
    ]  # fmt: skip
    copied = manifest_definition("c.mp4", source, _evidence("copy"))["assertions"]
    assert isinstance(copied, list)
    assert [a["action"] for a in copied[0]["data"]["actions"]] == ["c2pa.opened", "c2pa.trimmed"]


def test_signer_refuses_a_key_that_is_not_the_certificates() -> None:
    ca = TestCA.make()
    one, other = ca.issue("Agency A"), ca.issue("Agency B")
    with pytest.raises(ClipSigningError, match="does not match"):
        ClipSigner(one.chain_pem, other.key_pem)
    with pytest.raises(ClipSigningError, match="not PEM"):
        ClipSigner(b"nonsense", one.key_pem)
    assert ClipSigner(one.chain_pem, one.key_pem).subject.startswith("CN=Agency A")


def test_signer_files_that_cannot_be_read_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClipSigningError, match="C2PA signing files"):
        ClipSigner.load(tmp_path / "none.pem", tmp_path / "none.key")
