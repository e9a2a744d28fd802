"""The S3 part size grows with the object so that it fits in S3's 10,000 parts."""

from __future__ import annotations

from store.s3_support import MAX_PARTS, part_size_for

MiB = 1 << 20


def test_the_part_size_is_the_least_until_an_object_needs_more_than_10000_parts() -> None:
    assert part_size_for(0, 8 * MiB) == 8 * MiB
    assert part_size_for(80_000 * MiB, 8 * MiB) == 8 * MiB
    bigger = part_size_for(80_000 * MiB + 1, 8 * MiB)
    assert bigger == 9 * MiB
    size = 200 * 1024 * MiB  # a 200 GiB original
    part = part_size_for(size, 8 * MiB)
    assert part % MiB == 0
    assert -(-size // part) <= MAX_PARTS
    assert -(-size // (part - MiB)) > MAX_PARTS  # the least whole MiB that fits
