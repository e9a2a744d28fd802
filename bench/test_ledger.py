"""bench/ledger.py at tiny sizes: the structural facts its report rests on, no timings."""

from __future__ import annotations

import json
import math
import random

import pytest
import vigil_verify.merkle

from bench.ledger import (
    BATCH,
    Floor,
    SizeResult,
    counting_node_hashes,
    custody_event,
    measure_sizes,
    report,
)
from integrity import merkle

SAMPLES = 200


@pytest.fixture(scope="module")
def results() -> dict[int, SizeResult]:
    sizes = (2**10, 1000)
    measured = measure_sizes(sizes, rng=random.Random(7), samples=SAMPLES, rounds=1, batches=1)
    return {r.n: r for r in measured}


def test_custody_event_is_canonical_json_of_about_300_bytes() -> None:
    events = [custody_event(seq) for seq in range(200)]
    for data in events:
        parsed = json.loads(data)
        canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
        assert data == canonical
        assert 250 <= len(data) <= 350
    assert len(set(events)) == len(events)
    assert {json.loads(e)["action"] for e in events} == {"ingest", "segment", "catalogue"}


def test_counting_node_hashes_counts_and_restores() -> None:
    original = vigil_verify.merkle.node_hash
    log = merkle.MerkleLog()
    with counting_node_hashes() as counter:
        for seq in range(8):
            log.append(custody_event(seq))
        assert counter.calls == 7  # a perfect tree of 8 leaves has 7 inner nodes
    assert merkle.node_hash is original
    assert vigil_verify.merkle.node_hash is original


@pytest.mark.parametrize("n", [2**10, 1000])
def test_structure(results: dict[int, SizeResult], n: int) -> None:
    r = results[n]
    depth = math.ceil(math.log2(n))
    # Appends: under one node hash on average, never more than log2(size after the append).
    assert r.append.hashes_max == math.floor(math.log2(n))
    assert r.append.hashes_mean == (n - n.bit_count()) / n  # n leaves, n - popcount(n) nodes
    assert r.append.marginal_hashes_max <= math.floor(math.log2(n + BATCH))
    assert r.append.marginal_hashes_mean <= 1.0
    # Inclusion: one hash per level of the leaf's path, ceil(log2 n) for the deepest leaves.
    inclusion = r.inclusion
    assert inclusion.len_max == depth
    assert 1 <= inclusion.len_min <= inclusion.len_max
    if n == 2**10:
        assert inclusion.len_min == inclusion.len_max == 10
    assert inclusion.make_hashes_max <= n.bit_count() - 1
    assert inclusion.verify_hashes_max <= depth
    # Consistency: at most ceil(log2 n) + 1 hashes (the extra one: the old tree's last subtree).
    consistency = r.consistency
    assert 1 <= consistency.len_min <= consistency.len_max <= depth + 1
    assert consistency.make_hashes_max <= depth
    assert consistency.verify_hashes_max <= 2 * (depth + 1)
    # Every proof verifies.
    assert inclusion.verified == inclusion.samples == SAMPLES
    assert consistency.verified == consistency.samples == SAMPLES
    # Timings exist (their values are not asserted).
    for value in (r.append.mean_us, r.append.marginal_us, inclusion.make_us, consistency.make_us):
        assert value > 0


def test_report_growth_lines() -> None:
    measured = measure_sizes((100, 1000), rng=random.Random(1), samples=20, rounds=1, batches=2)
    floor = Floor(leaf_bytes=300, sha256_leaf_us=0.5, sha256_node_us=0.3)
    lines = report(["date: test"], floor, 50.0, measured, rounds=1, seed=1, wall_s=0.1)
    text = "\n".join(lines)
    for what in ("append", "inclusion", "consistency"):
        assert f"growth {what} 1e2->1e3: " in text
    assert "log2 proof length at 1e3: 10" in lines
    assert all(len(r.append.marginal_rounds_us) == 2 for r in measured)
