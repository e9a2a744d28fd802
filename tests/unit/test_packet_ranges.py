"""Issue 18: each segment's packets in the original, split, signed, chained and checked; the
verdict on an original whose bytes changed names the segment where its packets did."""

from __future__ import annotations

import json

import pytest
from vigil_verify.chain import ChainEntry, link
from vigil_verify.facts import LedgerCheck, SignedEvent, SignedSegment, apply_event
from vigil_verify.original import _judged
from vigil_verify.packets import (
    Packet,
    PacketRange,
    SourceBytes,
    Stream,
    check_ranges,
    digest,
    ranges_digest,
    split_ranges,
)
from vigil_verify.verdicts import Finding, Verdict

STREAMS = (Stream(0, "h264"), Stream(1, "aac"))


def _packets(video: int, audio_per_video: int = 2, salt: str = "") -> list[Packet]:
    """Interleaved as ffmpeg lists them: each picture, then its audio frames."""
    out = []
    for v in range(video):
        out.append(
            Packet(0, v / 30, v / 30, 1 / 30, 100, f"{salt}v{v}".encode().hex().ljust(64, "0")[:64])
        )
        for a in range(audio_per_video):
            n = v * audio_per_video + a
            out.append(
                Packet(1, n / 60, n / 60, 1 / 60, 10, f"a{n}".encode().hex().ljust(64, "0")[:64])
            )
    return out


def test_split_cuts_the_first_stream_at_its_starts_and_the_rest_where_listed() -> None:
    packets = _packets(9)
    ranges = split_ranges(packets, STREAMS, [3, 6])
    assert [[(r.stream, r.first, r.count) for r in seg] for seg in ranges] == [
        [(0, 0, 3), (1, 0, 6)],
        [(0, 3, 3), (1, 6, 6)],
        [(0, 6, 3), (1, 12, 6)],
    ]
    assert ranges[1][0].sha256 == digest(
        p for p in packets if p.stream == 0 and 3 <= p.dts_s * 30 < 5.5
    )
    with pytest.raises(ValueError, match="ascend"):
        split_ranges(packets, STREAMS, [6, 3])
    with pytest.raises(ValueError, match="packets of the first stream"):
        split_ranges(packets, STREAMS, [3, 9])


def test_check_names_each_segment_by_what_its_packets_say() -> None:
    packets = _packets(9)
    signed = dict(enumerate(split_ranges(packets, STREAMS, [3, 6])))
    found, extra = check_ranges(packets, STREAMS, signed)
    assert [f.status for f in found] == ["same"] * 3 and extra == 0
    # a remux lists the streams in another interleave: the same per stream
    remuxed = [p for p in packets if p.stream == 1] + [p for p in packets if p.stream == 0]
    assert all(f.same for f in check_ranges(remuxed, STREAMS, signed)[0])
    # one packet changed in segment 1 (a byte flipped in a sample)
    flipped = list(packets)
    at = next(i for i, p in enumerate(flipped) if p.stream == 0 and p.dts_s * 30 > 3.5)
    flipped[at] = Packet(0, flipped[at].dts_s, flipped[at].pts_s, 1 / 30, 100, "f" * 64)
    found, _ = check_ranges(flipped, STREAMS, signed)
    assert [(f.index, f.status, f.streams) for f in found if not f.same] == [(1, "differs", (0,))]
    # two audio packets swapped inside segment 2
    swapped = list(packets)
    a, b = [i for i, p in enumerate(swapped) if p.stream == 1][13:15]
    swapped[a], swapped[b] = swapped[b], swapped[a]
    assert [f.index for f in check_ranges(swapped, STREAMS, signed)[0] if not f.same] == [2]
    # cut short in segment 1: segments 1 and 2 fall short
    short = packets[:11]
    assert [f.status for f in check_ranges(short, STREAMS, signed)[0]] == ["same", "short", "short"]
    # packets added past the end
    assert check_ranges(packets + _packets(2, salt="x"), STREAMS, signed)[1] == 6


def _segments(n: int) -> dict[int, SignedSegment]:
    return {
        i: SignedSegment(i, f"r/seg-{i}", "0" * 64, 1, i * 10.0, i * 10.0 + 10, 0.0, "0" * 64,
                         "0" * 64, i, packets=(PacketRange(0, "h264", i, 1, "1" * 64),))
        for i in range(n)
    }  # fmt: skip


BYTES = Finding(kind=Verdict.BYTES_ALTERED, recording="rec-1", detail="sha256 differs", file="o")


def test_the_verdict_on_a_changed_original_says_where_and_what() -> None:
    from vigil_verify.packets import RangeFinding

    segs = _segments(3)
    same = [RangeFinding(i, "same") for i in range(3)]
    remuxed = _judged(BYTES, same, 0, segs)
    assert remuxed.kind == Verdict.BYTES_ALTERED and not remuxed.ranges
    assert "the footage as signed" in remuxed.detail
    altered = _judged(BYTES, [same[0], RangeFinding(1, "differs", (0,)), same[2]], 0, segs)
    assert altered.kind == Verdict.BYTES_ALTERED
    assert (
        altered.ranges == ((10.0, 20.0),) and "segment(s) 1 (changed: stream 0)" in altered.detail
    )
    cut = _judged(
        BYTES, [same[0], RangeFinding(1, "short", (0,)), RangeFinding(2, "short", (0,))], 0, segs
    )
    assert cut.kind == Verdict.TRUNCATED and cut.ranges == ((10.0, 30.0),)
    longer = _judged(BYTES, same, 4, segs)
    assert longer.kind == Verdict.BYTES_ALTERED and "4 packet(s) past" in longer.detail


def test_the_chain_link_covers_the_packets_only_where_they_are_signed() -> None:
    old = ChainEntry(0, 0.0, 10.0, "a" * 64)
    assert link("b" * 64, old) == link("b" * 64, ChainEntry(0, 0.0, 10.0, "a" * 64, None))
    ranges = (PacketRange(0, "h264", 0, 300, "c" * 64),)
    other = (PacketRange(0, "h264", 0, 300, "d" * 64),)
    new = ChainEntry(0, 0.0, 10.0, "a" * 64, ranges_digest(ranges))
    assert link("b" * 64, new) != link("b" * 64, old)
    assert link("b" * 64, new) != link(
        "b" * 64, ChainEntry(0, 0.0, 10.0, "a" * 64, ranges_digest(other))
    )


def _stored(packets: object) -> SignedEvent:
    detail = {"index": 0, "key": "rec-1/seg-0.ts", "sha256": "a" * 64, "size": 10, "start_s": 0.0,
              "end_s": 10.0, "origin_s": 0.0, "previous": "b" * 64, "chain": "c" * 64}  # fmt: skip
    if packets is not None:
        detail["packets"] = packets
    return SignedEvent(0, 1, "segment.stored", "rec-1", None, None, json.loads(json.dumps(detail)))


def test_signed_packet_ranges_are_read_and_checked() -> None:
    good = [{"stream": 0, "codec": "h264", "first": 0, "count": 300, "sha256": "e" * 64}]
    check = LedgerCheck()
    apply_event(check, _stored(good))
    seg = check.recording("rec-1").segments[0]
    assert seg.packets == (PacketRange(0, "h264", 0, 300, "e" * 64),)
    assert seg.packets_digest == ranges_digest(seg.packets)
    old = LedgerCheck()
    apply_event(old, _stored(None))
    assert old.recording("rec-1").segments[0].packets_digest is None
    for bad in ([{**good[0], "codec": "h264; rm"}], [{**good[0], "count": -1}], "x", [1]):
        with pytest.raises(ValueError):
            apply_event(LedgerCheck(), _stored(bad))


def test_the_run_that_cuts_also_lists_the_packets_in_canonical_form() -> None:
    from pathlib import Path

    from transcode.commands import SegmentJob, segment_command

    job = SegmentJob(Path("/in/o.mp4"), Path("/w"), 10.0, packets=STREAMS)
    cmd = segment_command("ffmpeg", job)
    cut_at = cmd.index(str(job.pattern))
    listed = cmd[cut_at + 1 :]
    assert listed == [
        "-map", "0:0", "-map", "0:1", "-c", "copy",
        "-bsf:0", "h264_mp4toannexb,filter_units=remove_types=7|8|9", "-bsf:1", "aac_adtstoasc",
        "-f", "framehash", "-hash", "sha256", "-y", "/w/packets.framehash",
    ]  # fmt: skip
    assert str(job.packets_list) not in segment_command(
        "ffmpeg", SegmentJob(job.source, job.out_dir, 10.0)
    )


def test_vigil_verify_says_where_in_the_footage_the_original_changed() -> None:
    from integrity.verify import RecordingVerification
    from interfaces.cli.render import render_verification

    changed = Finding(kind=Verdict.BYTES_ALTERED, recording="rec-1", ranges=((10.0, 20.0),))
    result = RecordingVerification("rec-1", changed, (), None, None, problems=("p",))
    assert "FAILED — original bytes altered at 10.0-20.0 s, 0/0 segments" in render_verification(
        [result]
    )
    whole = RecordingVerification("rec-1", BYTES, (), None, None, problems=("p",))
    assert "original bytes altered, 0/0" in render_verification([whole])


def _live(source: object) -> SignedEvent:
    event = _stored(None)
    return SignedEvent(
        0, 1, "segment.stored", "rec-1", None, None, {**event.detail, "source": source}
    )


def test_a_live_segments_signed_bytes_in_the_original_are_read_and_checked() -> None:
    good = {"offset": 188_000, "size": 94_000, "sha256": "d" * 64, "shift_s": 41.5}
    check = LedgerCheck()
    apply_event(check, _live(good))
    assert check.recording("rec-1").segments[0].source == SourceBytes(
        188_000, 94_000, "d" * 64, 41.5
    )
    before = LedgerCheck()
    apply_event(before, _live(None))
    assert before.recording("rec-1").segments[0].source is None
    bad_values = [
        {**good, "offset": -1}, {**good, "size": 1 << 60}, {**good, "sha256": "D" * 64},
        {**good, "shift_s": float("nan")}, {**good, "offset": "0"}, [good], "x",
    ]  # fmt: skip
    for bad in bad_values:
        with pytest.raises((ValueError, KeyError)):
            apply_event(LedgerCheck(), _live(bad))
    with pytest.raises(KeyError):
        apply_event(LedgerCheck(), _live({"offset": 0, "sha256": "d" * 64}))
