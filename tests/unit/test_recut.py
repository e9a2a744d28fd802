"""``vigil_verify.recut``: a cut in other bytes is the signed segment only with the signed
packets, each at the original's time."""

from __future__ import annotations

from dataclasses import replace

from vigil_verify.packets import Packet, PacketRange, digest
from vigil_verify.recut import SHIFT_LIMIT_S, TIME_TOLERANCE_S, cut_streams, recut_problem

NO_TIME = -9223372036854775808 / 1000


def _packets(stream: int, times: list[float], salt: str = "") -> list[Packet]:
    return [
        Packet(stream, t, t, 0.04, 100 + n, f"{salt}{stream}{n:063d}"[:64])
        for n, t in enumerate(times)
    ]


ORIGINAL = _packets(0, [0.0, 0.04, 0.08, 0.12, 0.16]) + _packets(1, [0.0, 0.021, 0.042])
# segment 1: video packets 2-4, audio packet 2
RANGES = (
    PacketRange(0, "mpeg4", 2, 3, digest([p for p in ORIGINAL if p.stream == 0][2:])),
    PacketRange(1, "ac3", 2, 1, digest([p for p in ORIGINAL if p.stream == 1][2:])),
)


def _cut(shift: float = 0.0, places: int = 3) -> list[Packet]:
    """Segment 1 as a cut holds it: its own packets, times rounded (Matroska: milliseconds)."""
    out = []
    for r in RANGES:
        mine = [p for p in ORIGINAL if p.stream == r.stream][r.first : r.first + r.count]
        for p in mine:
            t = round(p.pts_s + shift, places)
            out.append(Packet(r.stream, t, t, p.duration_s, p.size, p.sha256))
    return out


def test_the_signed_packets_at_the_originals_times_in_other_bytes_are_the_segment() -> None:
    assert cut_streams(RANGES)[1].index == 1
    assert recut_problem(ORIGINAL, _cut(), RANGES) is None
    assert recut_problem(ORIGINAL, _cut(shift=TIME_TOLERANCE_S * 0.9, places=9), RANGES) is None


def test_one_shift_of_the_whole_segment_within_the_limit_is_the_muxers() -> None:
    assert recut_problem(ORIGINAL, _cut(shift=0.067), RANGES) is None


def test_a_segment_moved_further_on_the_timeline_is_not() -> None:
    why = recut_problem(ORIGINAL, _cut(shift=SHIFT_LIMIT_S + 0.05), RANGES)
    assert why is not None and "its times are +0.250 s from the original's" in why


def test_one_packet_at_another_time_is_not() -> None:
    cut = _cut()
    moved = [*cut[:1], replace(cut[1], pts_s=cut[1].pts_s + 0.04), *cut[2:]]
    why = recut_problem(ORIGINAL, moved, RANGES)
    assert why is not None and "presented at 0.160 s, the original's at 0.120 s" in why


def test_a_packet_more_less_or_other_is_not() -> None:
    cut = _cut()
    assert "2 packet(s), 3 signed" in str(recut_problem(ORIGINAL, cut[1:], RANGES))
    other = [*cut[:1], Packet(0, 0.12, 0.12, 0.04, 103, "f" * 64), *cut[2:]]
    assert "not the signed ones" in str(recut_problem(ORIGINAL, other, RANGES))


def test_a_time_in_one_and_none_in_the_other_is_not() -> None:
    cut = _cut()
    untimed = [Packet(0, NO_TIME, NO_TIME, 0.04, cut[0].size, cut[0].sha256), *cut[1:]]
    assert "a time in one and none" in str(recut_problem(ORIGINAL, untimed, RANGES))


def test_an_original_whose_packets_there_changed_proves_nothing() -> None:
    changed = [*ORIGINAL[:3], Packet(0, 0.12, 0.12, 0.04, 103, "e" * 64), *ORIGINAL[4:]]
    why = recut_problem(changed, _cut(), RANGES)
    assert why is not None and "the original's packets there" in why
