"""Recovery of unfinalised recordings (issue 17), the pure parts: the ISO BMFF box walker, the
NAL unit checks, the walk of ``mdat`` with its resynchronisation, the Annex B stream, the
ffmpeg command, and the verifier's rule for the link of a recovered stream to its original."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from vigil_verify.facts import LedgerCheck, SignedEvent, SignedRecovery, apply_event
from vigil_verify.recovered import recovered_finding
from vigil_verify.verdicts import Verdict

from transcode import matroska
from transcode.isobmff import BoxError, VideoSetup, avc_config, boxes, top_level
from transcode.nal import Bits, NalRules, Slice, parse_avc_sps, unescape
from transcode.recover import (
    Picture,
    RecoveryImpossible,
    display_order,
    find_mdat,
    remux_command,
    scan_mdat,
    write_matroska,
)


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> BitWriter:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def ue(self, value: int) -> BitWriter:
        code = value + 1
        length = code.bit_length()
        return self.u(length - 1, 0).u(length, code)

    def rbsp(self, tail: bytes = b"") -> bytes:
        """The bits, then ``tail`` bytes when given (a slice's data), then the stop bit."""
        bits = [*self.bits]
        while len(bits) % 8:
            bits.append(1 if tail else 0)  # slice data continues in whole bytes
        data = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        return data + tail + b"\x80"


def box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


# baseline, frame_num in 4 bits, picture order count type 0 with its lsb in 6 bits, 40x23 MBs
SPS = (
    b"\x67"
    + (BitWriter().u(8, 66).u(16, 30).ue(0).ue(0).ue(0).ue(2).ue(1).u(1, 0).ue(39).ue(22))
    .u(1, 1)
    .u(1, 0)
    .u(1, 0)
    .u(1, 0)
    .rbsp()
)
PPS = b"\x68" + BitWriter().ue(0).ue(0).u(1, 0).u(1, 0).rbsp()


def slice_unit(*, idr: bool, frame_num: int, first_mb: int = 0, size: int = 40) -> bytes:
    header = b"\x65" if idr else b"\x41"
    bits = BitWriter().ue(first_mb).ue(7 if idr else 5).ue(0).u(4, frame_num)
    if idr:
        bits.ue(0)  # idr_pic_id
    bits.u(6, (2 * frame_num) % 64)  # pic_order_cnt_lsb
    rng = random.Random(frame_num * 7 + first_mb)
    payload = bytes(rng.randrange(1, 256) for _ in range(size))
    return header + bits.rbsp(payload.replace(b"\x00", b"\x01"))


def setup(length_size: int = 4) -> VideoSetup:
    config = bytes([1, 66, 0, 30, 0xFC | (length_size - 1), 0xE1])
    config += len(SPS).to_bytes(2, "big") + SPS + b"\x01" + len(PPS).to_bytes(2, "big") + PPS
    return VideoSetup("h264", length_size, (SPS, PPS), config, 640, 368, 30000, 1000)


def prefixed(unit: bytes, n: int = 4) -> bytes:
    return len(unit).to_bytes(n, "big") + unit


# -- the box walker -------------------------------------------------------------------------


def test_boxes_read_sizes_zero_largesize_and_a_cut_off_box() -> None:
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isom")
    large = (1).to_bytes(4, "big") + b"free" + (16 + 4).to_bytes(8, "big") + b"abcd"
    cut = (1000).to_bytes(4, "big") + b"mdat" + b"x" * 50
    found = list(boxes(ftyp + large + cut))
    assert [b.kind for b in found] == [b"ftyp", b"free", b"mdat"]
    assert found[1].body - found[1].start == 16 and found[1].end - found[1].start == 20
    assert found[2].truncated and found[2].end == len(ftyp + large + cut)
    to_end = list(boxes(b"\x00\x00\x00\x00mdat" + b"y" * 30))
    assert to_end[0].end == 38 and not to_end[0].truncated


def test_a_walk_stops_at_bytes_that_are_no_box() -> None:
    with pytest.raises(BoxError):
        list(boxes(b"\x00\x00\x00\x03mdat" + b"z" * 10))
    assert top_level(box(b"ftyp", b"isom") + b"\x00\x00\x00\x02\x01\x02") == top_level(
        box(b"ftyp", b"isom")
    )


def test_find_mdat_says_why_it_cannot_recover() -> None:
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00")
    with pytest.raises(RecoveryImpossible, match=r"^cam\.mp4: it has no mdat"):
        find_mdat(ftyp + box(b"free", b""), "cam.mp4")
    with pytest.raises(RecoveryImpossible, match=r"^cam\.mp4: its moov .* is there"):
        find_mdat(ftyp + box(b"mdat", b"a" * 40) + box(b"moov", b""), "cam.mp4")
    with pytest.raises(RecoveryImpossible, match=r"^x\.mp4: not an MP4 or MOV"):
        find_mdat(b"RIFF" + b"\x00" * 40, "x.mp4")
    mdat = find_mdat(ftyp + (10**6).to_bytes(4, "big") + b"mdat" + b"v" * 40, "cam.mp4")
    assert mdat.truncated and mdat.end - mdat.body == 40


def test_avc_config_gives_the_length_size_and_parameter_sets() -> None:
    raw = bytes([1, 66, 0, 30, 0xFF, 0xE1]) + prefixed(SPS, 2) + b"\x01" + prefixed(PPS, 2)
    assert avc_config(raw) == (4, (SPS, PPS))
    with pytest.raises(BoxError, match="cut short"):
        avc_config(raw[:-3])


# -- NAL units ------------------------------------------------------------------------------


def test_exp_golomb_and_emulation_prevention() -> None:
    bits = Bits(BitWriter().ue(0).ue(5).ue(300).u(3, 5).rbsp())
    assert (bits.ue(), bits.ue(), bits.ue(), bits.u(3)) == (0, 5, 300, 5)
    assert unescape(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"


def test_the_sps_gives_the_frame_num_size_and_picture_size() -> None:
    sps = parse_avc_sps(SPS)
    assert (sps.log2_max_frame_num, sps.macroblocks) == (4, 40 * 23)
    assert (sps.poc_type, sps.log2_max_poc_lsb) == (0, 6)


def test_slices_are_checked_against_the_reference_setup() -> None:
    rules = NalRules.of("h264", (SPS, PPS))
    idr = rules.check(slice_unit(idr=True, frame_num=0))
    assert idr == Slice(first=True, idr=True, frame_num=0, poc_lsb=0, resets=True)
    rules.accept(idr)
    assert isinstance(rules.check(slice_unit(idr=False, frame_num=1)), Slice)
    assert rules.check(slice_unit(idr=False, frame_num=3)) is False  # frame_num jumps
    assert rules.check(slice_unit(idr=True, frame_num=2)) is False  # an IDR has frame_num 0
    assert rules.check(slice_unit(idr=False, frame_num=1, first_mb=5000)) is False
    assert rules.check(slice_unit(idr=False, frame_num=1)[:-1] + b"\x00") is False  # no stop bit
    assert rules.check(b"\x09\xf0") is True  # access unit delimiter
    assert rules.check(SPS) is True and rules.check(SPS[:-1] + b"\x81") is False
    sei = b"\x06" + b"\x05\x03abc" + b"\x80"
    assert rules.check(sei) is True and rules.check(b"\x06\x05\x09abc\x80") is False


def _mdat(units: list[bytes], junk: list[bytes]) -> bytes:
    out = b""
    for unit, between in zip(units, junk, strict=True):
        out += prefixed(unit) + between
    return out


def test_the_walk_skips_interleaved_audio_and_keeps_every_picture(tmp_path: Path) -> None:
    rng = random.Random(5)
    sei = b"\x06\x05\x04abcd\x80"  # before the first picture, as x264 writes it
    units = [sei, slice_unit(idr=True, frame_num=0)] + [
        slice_unit(idr=False, frame_num=i, size=60 + i) for i in range(1, 12)
    ]
    junk = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400))) for _ in units]
    data = b"\x00" * 16 + _mdat(units, junk) + b"\x00\x00\x10\x00\x65trunc"
    scan = scan_mdat(data, 16, len(data), setup())
    assert (len(scan.pictures), scan.dropped) == (12, 0)
    found = [data[u.offset : u.offset + u.size] for p in scan.pictures for u in p.units]
    assert found == units
    assert [u.size for u in scan.pictures[0].units] == [len(sei), len(units[1])]  # SEI, IDR
    out = tmp_path / "x.mkv"
    write_matroska(data, scan, setup(), out)
    written = out.read_bytes()
    assert written.startswith(bytes.fromhex("1a45dfa3"))
    assert setup().config in written and b"V_MPEG4/ISO/AVC" in written
    assert all(prefixed(u) in written for u in units[1:])  # samples as the MP4 held them


def test_pictures_before_the_first_keyframe_are_dropped_and_counted() -> None:
    units = [slice_unit(idr=False, frame_num=3), slice_unit(idr=True, frame_num=0)]
    data = _mdat(units, [b"", b""])
    scan = scan_mdat(data, 0, len(data), setup())
    assert (len(scan.pictures), scan.dropped) == (1, 1)


def test_random_bytes_yield_no_picture() -> None:
    rng = random.Random(11)
    data = bytes(rng.randrange(256) for _ in range(200_000))
    assert scan_mdat(data, 0, len(data), setup()).pictures == []


def test_the_remux_command_is_a_stream_copy() -> None:
    cmd = remux_command("ffmpeg", Path("/w/r.mkv"), Path("/w/r.mp4"))
    assert cmd[0] == "ffmpeg"
    assert cmd[cmd.index("-i") - 1] == "matroska" and cmd[cmd.index("-i") + 1] == "/w/r.mkv"
    assert cmd[cmd.index("-c") + 1] == "copy"
    assert cmd[-3:] == ["mp4", "-y", "/w/r.mp4"]


def _pic(poc: int | None, *, idr: bool = False, reference: bool = True) -> Picture:
    return Picture([], idr, poc, reference, resets=idr)


def test_display_order_follows_the_picture_order_count() -> None:
    # decoding order I0 P6 B2 B4 P12 B8 B10 | IDR: shown I0 B2 B4 P6 B8 B10 P12 | IDR
    pictures = [_pic(0, idr=True), _pic(6), _pic(2, reference=False), _pic(4, reference=False)]
    pictures += [_pic(12), _pic(8, reference=False), _pic(10, reference=False), _pic(0, idr=True)]
    assert display_order(pictures, 64) == [0, 3, 1, 2, 6, 4, 5, 7]
    # the lsb wraps (16): after 12, 4 is 20 and then 2 is 18
    wraps = [_pic(0, idr=True), _pic(6), _pic(12), _pic(4), _pic(2, reference=False)]
    assert display_order(wraps, 16) == [0, 1, 2, 4, 3]
    assert display_order([_pic(None, idr=True), _pic(None)], None) == [0, 1]


def test_matroska_sizes_and_elements() -> None:
    assert matroska.size_vint(0) == b"\x80" and matroska.size_vint(127) == b"\x40\x7f"
    assert matroska.element(0xA3, b"ab") == b"\xa3\x82ab"
    assert matroska.uint(0xE7, 300) == b"\xe7\x82\x01\x2c"


# -- the verifier's rule for the link -------------------------------------------------------

ORIGINAL, RECOVERED, REFERENCE = "a" * 64, "b" * 64, "c" * 64


def _signed(original: str = ORIGINAL) -> LedgerCheck:
    check = LedgerCheck()
    ingest = {"sha256": original, "size": 100}
    recovered = {
        "key": "rec-aaaaaaaaaaaaaaaa/recovered-bbbbbbbbbbbb.mp4",
        "sha256": RECOVERED,
        "size": 50,
        "original_sha256": ORIGINAL,
        "reference_recording": "rec-cccccccccccccccc",
        "reference_sha256": REFERENCE,
    }
    for i, (action, detail) in enumerate(
        (("ingest", ingest), ("original.recovered", recovered)), start=1
    ):
        apply_event(
            check,
            SignedEvent(i, i, action, "rec-aaaaaaaaaaaaaaaa", None, None, detail),  # type: ignore[arg-type]
        )
    return check


def test_the_signed_event_links_the_recovered_stream_to_the_original() -> None:
    rec = _signed().facts["rec-aaaaaaaaaaaaaaaa"]
    assert rec.recovered == SignedRecovery(
        key="rec-aaaaaaaaaaaaaaaa/recovered-bbbbbbbbbbbb.mp4",
        sha256=RECOVERED,
        size=50,
        original_sha256=ORIGINAL,
        reference_recording="rec-cccccccccccccccc",
        reference_sha256=REFERENCE,
        event_id=2,
    )
    found = recovered_finding(rec, (RECOVERED, 50), "r/recovered.mp4")
    assert found is not None and found.kind == Verdict.INTACT
    assert "rec-cccccccccccccccc" in found.detail


def test_a_broken_link_is_named() -> None:
    rec = _signed().facts["rec-aaaaaaaaaaaaaaaa"]
    altered = recovered_finding(rec, ("d" * 64, 50), "r/recovered.mp4")
    assert altered is not None and altered.kind == Verdict.BYTES_ALTERED
    missing = recovered_finding(rec, None, "r/recovered.mp4")
    assert missing is not None and missing.kind == Verdict.MISSING
    other = _signed(original="e" * 64).facts["rec-aaaaaaaaaaaaaaaa"]
    foreign = recovered_finding(other, (RECOVERED, 50), "r/recovered.mp4")
    assert foreign is not None and foreign.kind == Verdict.FOREIGN
    assert "not linked to this original" in foreign.detail


def test_nothing_recovered_is_no_finding() -> None:
    check = LedgerCheck()
    apply_event(
        check,
        SignedEvent(
            1, 1, "ingest", "rec-aaaaaaaaaaaaaaaa", None, None, {"sha256": ORIGINAL, "size": 1}
        ),
    )
    assert recovered_finding(check.facts["rec-aaaaaaaaaaaaaaaa"], None, None) is None
