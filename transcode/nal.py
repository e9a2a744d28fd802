"""H.264 and HEVC NAL units as far as recovery needs them: an Exp-Golomb bit reader, the few
fields of a parameter set and a slice header that tell a real NAL unit from other bytes, and
the test of one candidate unit (``NalRules.check``).

A unit is accepted only when everything that can be checked without decoding fits: the
forbidden bit, the type, the layer, the final ``rbsp_stop_one_bit``; for a slice, its first
macroblock within the picture, its slice type, a picture parameter set the reference has and,
for H.264, a ``frame_num`` that follows the previous picture's (equal or one more; 0 for an
IDR); an access unit delimiter or SEI must parse to its last byte; an in-band parameter set
must be one of the reference's. Random bytes (an interleaved audio chunk) pass all of that
about once in ten million positions. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from transcode.isobmff import Codec

HEAD_BYTES = 24
"""Bytes of a slice read to check its header (first macroblock, type, PPS, frame_num)."""
MAX_WHOLE = 1 << 16
"""The largest non-slice unit (SEI, delimiter, parameter set) read whole to check it."""

_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


class BitsExhausted(ValueError):
    """Read past the end of the bytes given."""


def unescape(data: bytes) -> bytes:
    """RBSP from NAL payload bytes: every ``00 00 03`` emulation prevention byte removed."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class Bits:
    """Big-endian bits of an RBSP, with Exp-Golomb codes (H.264 §9.1)."""

    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.at = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        if self.at + n > self.size:
            raise BitsExhausted(f"{n} bits wanted at bit {self.at} of {self.size}")
        self.at += n
        return (self.value >> (self.size - self.at)) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BitsExhausted("an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


@dataclass(frozen=True)
class AvcSps:
    log2_max_frame_num: int
    macroblocks: int  # in a frame
    separate_colour_plane: bool
    poc_type: int = 2  # 0: pic_order_cnt_lsb in each slice; 1, 2: derived from frame_num
    log2_max_poc_lsb: int = 0
    frame_mbs_only: bool = True


def _skip_scaling_lists(bits: Bits, count: int) -> None:
    for i in range(count):
        if bits.u(1):
            last = nxt = 8
            for _ in range(16 if i < 6 else 64):
                if nxt:
                    nxt = (last + bits.se() + 256) % 256
                last = nxt or last


def parse_avc_sps(unit: bytes) -> AvcSps:
    """The fields of an H.264 SPS (with its header byte) that slice headers depend on."""
    bits = Bits(unescape(unit[1:]))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    separate = False
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            separate = bool(bits.u(1))
        bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if bits.u(1):
            _skip_scaling_lists(bits, 12 if chroma == 3 else 8)
    log2_max_frame_num = bits.ue() + 4
    poc_type = bits.ue()
    log2_max_poc_lsb = 0
    if poc_type == 0:
        log2_max_poc_lsb = bits.ue() + 4
    elif poc_type == 1:
        bits.u(1), bits.se(), bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue(), bits.u(1)  # max_num_ref_frames, gaps_in_frame_num_value_allowed
    width, height = bits.ue() + 1, bits.ue() + 1
    frame_mbs_only = bits.u(1)
    return AvcSps(
        log2_max_frame_num, width * height * (2 - frame_mbs_only), separate, poc_type,
        log2_max_poc_lsb, bool(frame_mbs_only),
    )  # fmt: skip


def parse_hevc_sps(unit: bytes) -> tuple[int, bool]:
    """An HEVC SPS's (header included) log2_max_pic_order_cnt_lsb and
    separate_colour_plane_flag (H.265 7.3.2.2)."""
    bits = Bits(unescape(unit[2:]))
    bits.u(4)
    sub_layers = bits.u(3)
    bits.u(1)
    bits.u(96)  # general profile, tier, level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 * profile + 8 * level)
    bits.ue()  # sps_seq_parameter_set_id
    separate = False
    if bits.ue() == 3:  # chroma_format_idc
        separate = bool(bits.u(1))
    bits.ue(), bits.ue()  # width, height
    if bits.u(1):  # conformance window
        bits.ue(), bits.ue(), bits.ue(), bits.ue()
    bits.ue(), bits.ue()  # bit depths
    return bits.ue() + 4, separate


def parameter_set_id(unit: bytes, codec: Codec) -> int:
    """A PPS's own ID (its first Exp-Golomb field after the header)."""
    return Bits(unescape(unit[_header_size(codec) : 16])).ue()


def _header_size(codec: Codec) -> int:
    return 1 if codec == "h264" else 2


def nal_type(unit: bytes, codec: Codec) -> int:
    return unit[0] & 0x1F if codec == "h264" else (unit[0] >> 1) & 0x3F


@dataclass(frozen=True)
class Slice:
    first: bool  # the first slice of a picture
    idr: bool  # a picture that starts over (IDR / IRAP): decodable on its own
    frame_num: int | None  # H.264 only
    poc_lsb: int | None = None  # its picture order count's low bits (None: not in the header)
    reference: bool = True  # the picture order count of those after counts from it
    resets: bool = False  # its picture order count starts over (H.264 IDR; HEVC IDR, BLA)


def _sei_parses(rbsp: bytes) -> bool:
    """Do the SEI messages run exactly to the ``rbsp_trailing_bits``?"""
    at = 0
    while at < len(rbsp) - 1:
        for _ in range(2):  # payloadType, then payloadSize
            value = 0
            while at < len(rbsp) and rbsp[at] == 0xFF:
                value, at = value + 255, at + 1
            if at >= len(rbsp):
                return False
            value, at = value + rbsp[at], at + 1
        at += value  # the last value read is the payload's size
    return at == len(rbsp) - 1 and rbsp[-1] == 0x80


@dataclass
class NalRules:
    """What a reference recording's setup allows a NAL unit of this device to be, and the
    state that carries from one accepted unit to the next (the last ``frame_num``)."""

    codec: Codec
    parameter_sets: tuple[bytes, ...]
    sps: AvcSps | None = None
    pps_ids: frozenset[int] = frozenset()
    last_frame_num: int | None = None
    extra_slice_header_bits: int = 0  # HEVC: the PPS's num_extra_slice_header_bits
    output_flag_present: bool = False  # HEVC: the PPS's output_flag_present_flag
    log2_max_poc_lsb: int = 0  # HEVC: the SPS's
    separate_colour_plane: bool = False  # HEVC: the SPS's

    @classmethod
    def of(cls, codec: Codec, parameter_sets: tuple[bytes, ...]) -> NalRules:
        pps_type = 8 if codec == "h264" else 34
        pps = [p for p in parameter_sets if nal_type(p, codec) == pps_type]
        sps = [p for p in parameter_sets if nal_type(p, codec) == pps_type - 1]
        if not pps or not sps:
            raise ValueError("the reference's setup has no SPS or PPS")
        parsed = parse_avc_sps(sps[0]) if codec == "h264" else None
        ids = frozenset(parameter_set_id(p, codec) for p in pps)
        rules = cls(codec, parameter_sets, parsed, ids)
        if codec == "hevc":  # pps_id, sps_id, two flags, then num_extra_slice_header_bits
            bits = Bits(unescape(pps[0][2:16]))
            bits.ue(), bits.ue(), bits.u(1)
            rules.output_flag_present = bool(bits.u(1))
            rules.extra_slice_header_bits = bits.u(3)
            rules.log2_max_poc_lsb, rules.separate_colour_plane = parse_hevc_sps(sps[0])
        return rules

    def check(self, unit: bytes | memoryview) -> Slice | bool:
        """Is ``unit`` (header included, length prefix not) a plausible NAL unit of this
        stream? A slice is returned as ``Slice``; any other acceptable unit as True. Only its
        first bytes and its last are read, unless it is a small unit that must parse whole."""
        size = len(unit)
        if size < 2 or unit[0] & 0x80 or unit[-1] == 0:
            return False
        head = bytes(unit[:HEAD_BYTES])
        whole = bytes(unit) if size <= MAX_WHOLE else None
        try:
            return self._h264(head, whole) if self.codec == "h264" else self._hevc(head, whole)
        except BitsExhausted:
            return False

    def accept(self, checked: Slice | bool) -> None:
        if isinstance(checked, Slice) and checked.frame_num is not None:
            self.last_frame_num = checked.frame_num

    def _h264(self, head: bytes, whole: bytes | None) -> Slice | bool:
        kind, ref = head[0] & 0x1F, head[0] >> 5
        if kind in (1, 5):
            return self._avc_slice(head, idr=kind == 5, ref=ref)
        if kind == 9:  # access unit delimiter: primary_pic_type, then the stop bit
            return whole is not None and len(whole) == 2 and ref == 0 and whole[1] & 0x1F == 0x10
        if kind == 6:
            return ref == 0 and whole is not None and _sei_parses(unescape(whole[1:]))
        if kind in (7, 8):
            return whole is not None and whole in self.parameter_sets
        return False  # filler data, and any other type, is no unit a camera writes in a sample

    def _avc_slice(self, head: bytes, *, idr: bool, ref: int) -> Slice | bool:
        assert self.sps is not None
        if idr and ref == 0:
            return False
        bits = Bits(unescape(head[1:]))
        first_mb, slice_type, pps_id = bits.ue(), bits.ue(), bits.ue()
        if first_mb >= self.sps.macroblocks or slice_type > 9 or pps_id not in self.pps_ids:
            return False
        if self.sps.separate_colour_plane:
            bits.u(2)
        frame_num = bits.u(self.sps.log2_max_frame_num)
        if idr:
            if frame_num != 0 or slice_type % 5 not in (2, 4):  # I or SI only
                return False
        elif self.last_frame_num is not None:
            following = (self.last_frame_num + 1) % (1 << self.sps.log2_max_frame_num)
            if frame_num not in (self.last_frame_num, following):
                return False
        poc_lsb = None
        if self.sps.poc_type == 0 and self.sps.frame_mbs_only:
            if idr:
                bits.ue()  # idr_pic_id
            poc_lsb = bits.u(self.sps.log2_max_poc_lsb)
        return Slice(first_mb == 0, idr, frame_num, poc_lsb, reference=ref != 0, resets=idr)

    def _hevc_first_slice(self, bits: Bits, kind: int, tid: int) -> Slice | bool:
        """The rest of a picture's first slice header: the extra bits, slice_type (B, P or I;
        an IRAP picture: I), then its picture order count's lsb (an IDR's is 0)."""
        bits.u(self.extra_slice_header_bits)
        slice_type = bits.ue()
        irap = 16 <= kind <= 21
        if slice_type > 2 or (irap and slice_type != 2):
            return False
        if self.output_flag_present:
            bits.u(1)
        if self.separate_colour_plane:
            bits.u(2)
        poc_lsb = 0 if kind in (19, 20) else bits.u(self.log2_max_poc_lsb)
        # what later pictures count from: temporal layer 0, not leading, not sub-layer non-ref
        reference = tid == 0 and not 6 <= kind <= 9 and not (kind <= 14 and kind % 2 == 0)
        return Slice(True, irap, None, poc_lsb, reference=reference, resets=16 <= kind <= 20)

    def _hevc(self, head: bytes, whole: bytes | None) -> Slice | bool:
        kind = (head[0] >> 1) & 0x3F
        layer = ((head[0] & 1) << 5) | (head[1] >> 3)
        if layer != 0 or head[1] & 7 == 0 or len(head) < 3:
            return False
        if kind <= 9 or 16 <= kind <= 21:
            bits = Bits(unescape(head[2:]))
            first = bool(bits.u(1))
            irap = 16 <= kind <= 21
            if irap:
                bits.u(1)  # no_output_of_prior_pics_flag
            if bits.ue() not in self.pps_ids:
                return False
            if not first:
                return Slice(first=False, idr=irap, frame_num=None)
            return self._hevc_first_slice(bits, kind, tid=(head[1] & 7) - 1)
        if kind == 35:  # access unit delimiter: pic_type (3 bits), then the stop bit
            return whole is not None and len(whole) == 3 and whole[2] & 0x1F == 0x10
        if kind in (39, 40):
            return whole is not None and _sei_parses(unescape(whole[2:]))
        if kind in (32, 33, 34):
            return whole is not None and whole in self.parameter_sets
        return False
