"""Unit tests for vigil_verify.packets: the canonical packet-hash call as a list, and the
framehash document read into packets and digests."""

from __future__ import annotations

from pathlib import Path

import pytest
from vigil_verify.packets import (
    FramehashError,
    Packet,
    Stream,
    digest,
    packet_hash_args,
    parse_framehash,
    stream_codecs,
    stream_digests,
)

H1 = "a" * 64
H2 = "b" * 64
DOC = f"""#format: frame checksums
#version: 2
#hash: SHA256
#tb 0: 1/15360
#media_type 0: video
#codec_id 0: h264
#tb 1: 1/44100
#media_type 1: audio
#codec_id 1: aac
#stream#, dts, pts, duration, size, hash
0,      -1024,          0,        512,     3101, {H1}
1,          0,          0,       1024,      371, {H2}
0,       -512,       1536,        512,      914, {H2.upper()}
"""


def test_the_call_maps_each_stream_and_puts_it_in_canonical_form() -> None:
    args = packet_hash_args(
        Path("in.mp4"), [Stream(0, "h264"), Stream(1, "aac"), Stream(3, "pcm_s16le")]
    )
    assert args[args.index("-i") + 1] == "in.mp4"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:0", "0:1", "0:3"]
    assert args[args.index("-bsf:0") + 1] == "h264_mp4toannexb,filter_units=remove_types=7|8|9"
    assert args[args.index("-bsf:1") + 1] == "aac_adtstoasc"
    assert "-bsf:2" not in args  # PCM has one form
    assert args[-5:] == ["-f", "framehash", "-hash", "sha256", "pipe:1"]
    assert args[args.index("-c") + 1] == "copy"


def test_framehash_lines_become_packets_with_times_in_seconds() -> None:
    packets = parse_framehash(DOC)
    assert packets[0] == Packet(0, -1024 / 15360, 0.0, 512 / 15360, 3101, H1)
    assert packets[1] == Packet(1, 0.0, 0.0, 1024 / 44100, 371, H2)
    assert packets[2].sha256 == H2  # lower case, whatever ffmpeg wrote
    assert stream_codecs(DOC) == {0: "h264", 1: "aac"}


def test_digests_are_per_stream_in_decode_order_and_ignore_times() -> None:
    packets = parse_framehash(DOC)
    digests = stream_digests(packets)
    assert digests[0] == digest([packets[0], packets[2]])
    assert digests[0] != digest([packets[2], packets[0]])  # order is part of it
    moved = [
        Packet(p.stream, p.dts_s + 9, p.pts_s + 9, p.duration_s, p.size, p.sha256) for p in packets
    ]
    assert stream_digests(moved) == digests  # another container's time base: same identity


def test_a_document_that_is_not_framehash_is_refused() -> None:
    with pytest.raises(FramehashError, match="not a framehash line"):
        parse_framehash("#tb 0: 1/90000\n0, 1, 2, 3, nope\n")
    with pytest.raises(FramehashError, match="stream 4 has no time base"):
        parse_framehash(f"4, 0, 0, 1, 10, {H1}\n")
