"""Unit tests for integrity.merkle (RFC 6962 / RFC 9162 Merkle tree).

Reference vectors are copied from github.com/transparency-dev/merkle (the successor of the
google/trillian merkle/rfc6962 and certificate-transparency-go merkletree test data):

- leaves, node hashes, roots for sizes 0..8 and compact ranges ("frontiers"):
  ``testonly/constants.go`` (LeafInputs, NodeHashes, RootHashes, CompactTrees, EmptyRootHash),
  commit 582a6ad190b6848f1d26f8bf08ddef29955d9db1;
- inclusion and consistency proof vectors: ``proof/verify_test.go`` (inclusionProofs,
  consistencyProofs; its leaf numbers are 1-based, ``leaf - 1`` is the index),
  commit 02194e9afb6c1d95b5381350007963aa70fff472.

Everything else is checked against a naive recursive implementation of RFC 6962 §2.1 (MTH, PATH,
PROOF/SUBPROOF) written below, independent of the module under test.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence

import pytest

from integrity import merkle
from integrity.merkle import (
    EMPTY_ROOT,
    MerkleLog,
    TreeHead,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# -- reference data (transparency-dev/merkle) ------------------------------------------------

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

ROOTS = [  # indexed by tree size
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# CompactTrees(): the frontier for each size, as (level, index) into NODE_HASHES.
FRONTIERS: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# inclusionProofs: (1-based leaf number, tree size, path).
INCLUSION_VECTORS: list[tuple[int, int, list[str]]] = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (1, 1, []),
]

# consistencyProofs: (size1, size2, proof).
CONSISTENCY_VECTORS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def hx(hashes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


# -- naive RFC 6962 §2.1 reference, over the entries themselves ------------------------------


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = ref_split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_shape(m: int, n: int) -> list[bool]:
    """PATH's shape, leaf side first: True where the sibling is on the right."""
    if n <= 1 or m >= n:
        return [] if n == 1 else [False] * 99  # sizes 0 or index >= size: no valid shape
    k = ref_split(n)
    if m < k:
        return [*ref_shape(m, k), True]
    return [*ref_shape(m - k, n - k), False]


def consistency_length(m: int, n: int) -> int:
    """len(PROOF(m, D[n])) from the naive reference, over placeholder leaves."""
    return len(ref_proof(m, [b""] * n))


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return [] if m in (0, len(d)) else ref_subproof(m, d, True)


def build(entries: Sequence[bytes]) -> MerkleLog:
    log = MerkleLog()
    for i, e in enumerate(entries):
        assert log.append(e) == i
    return log


@pytest.fixture(scope="module")
def ref_log() -> MerkleLog:
    return build(LEAVES)


# -- hashing and the reference vectors --------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == ROOTS[0]
    for i, data in enumerate(LEAVES):
        assert leaf_hash(data).hex() == NODE_HASHES[0][i]
    for level in range(1, 4):
        below = hx(NODE_HASHES[level - 1])
        for j, h in enumerate(NODE_HASHES[level]):
            assert node_hash(below[2 * j], below[2 * j + 1]).hex() == h


def test_roots_and_frontiers_for_every_size(ref_log: MerkleLog) -> None:
    assert MerkleLog().root() == EMPTY_ROOT
    assert MerkleLog().size == 0
    for size in range(9):
        assert ref_log.root(size).hex() == ROOTS[size]
        assert ref_mth(LEAVES[:size]).hex() == ROOTS[size]
        assert ref_log.head(size) == TreeHead(size, bytes.fromhex(ROOTS[size]))
        expected = [NODE_HASHES[lvl][j] for lvl, j in FRONTIERS[size]]
        assert [h.hex() for h in ref_log.frontier(size)] == expected
    # Incrementally built logs agree with the historical roots of the full one.
    log = MerkleLog()
    for size, data in enumerate(LEAVES, start=1):
        log.append(data)
        assert log.size == size
        assert log.root().hex() == ROOTS[size]
    assert (
        ref_log.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_append_leaf_hash_matches_append() -> None:
    log = MerkleLog()
    for i, data in enumerate(LEAVES):
        assert log.append_leaf_hash(leaf_hash(data)) == i
    assert log.root().hex() == ROOTS[8]
    assert log.leaf(5) == leaf_hash(LEAVES[5])
    with pytest.raises(ValueError, match="32 bytes"):
        log.append_leaf_hash(b"short")


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION_VECTORS)
def test_published_inclusion_vectors(
    ref_log: MerkleLog, leaf: int, size: int, path: list[str]
) -> None:
    index = leaf - 1
    proof = hx(path)
    assert ref_log.inclusion_proof(index, size) == proof
    root = bytes.fromhex(ROOTS[size])
    lh = leaf_hash(LEAVES[index])
    assert verify_inclusion(lh, index, size, proof, root)
    # Corruptions from verify_test.go's corruptInclusionProof.
    bad: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (lh, index - 1, size, proof, root),
        (lh, index + 1, size, proof, root),
        (lh, index ^ 2, size, proof, root),
        (lh, index, size * 2, proof, root),
        (lh, index, size // 2, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (lh, index, size, proof, EMPTY_ROOT),
        (lh, index, size, proof, SOME_HASH),
        (lh, index, size, [*proof, b""], root),
        (lh, index, size, [*proof, root], root),
        (lh, index, size, [b"", *proof], root),
        (lh, index, size, [root, *proof], root),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        bad.append((lh, index, size, flipped, root))
    if proof:
        bad.append((lh, index, size, proof[:-1], root))
    if len(proof) > 1:
        bad.append((lh, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    for args in bad:
        assert not verify_inclusion(*args), args


@pytest.mark.parametrize(("size1", "size2", "path"), CONSISTENCY_VECTORS)
def test_published_consistency_vectors(
    ref_log: MerkleLog, size1: int, size2: int, path: list[str]
) -> None:
    proof = hx(path)
    assert ref_log.consistency_proof(size1, size2) == proof
    root1, root2 = bytes.fromhex(ROOTS[size1]), bytes.fromhex(ROOTS[size2])
    assert verify_consistency(size1, size2, proof, root1, root2)
    if not proof:
        return
    # Corruptions from verify_test.go's corruptConsistencyProof.
    bad: list[tuple[int, int, list[bytes], bytes, bytes]] = [
        (size1 - 1, size2, proof, root1, root2),
        (size1 + 1, size2, proof, root1, root2),
        (size1 ^ 2, size2, proof, root1, root2),
        (size1, size2 * 2, proof, root1, root2),
        (size1, size2 // 2, proof, root1, root2),
        (size1, size2, proof, b"WrongRoot", root2),
        (size1, size2, proof, root1, b"WrongRoot"),
        (size1, size2, proof, root2, root1),
        (size1, size2, [], root1, root2),
        (size1, size2, [*proof, b""], root1, root2),
        (size1, size2, [*proof, root1], root1, root2),
        (size1, size2, [*proof, root2], root1, root2),
        (size1, size2, [b"", *proof], root1, root2),
        (size1, size2, [root1, *proof], root1, root2),
        (size1, size2, [root2, *proof], root1, root2),
        (size1, size2, [proof[0], *proof], root1, root2),
        (size1, size2, proof[:-1], root1, root2),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        bad.append((size1, size2, flipped, root1, root2))
    for args in bad:
        assert not verify_consistency(*args), args


def test_every_inclusion_proof_up_to_8(ref_log: MerkleLog) -> None:
    for size in range(1, 9):
        root = ref_log.root(size)
        for index in range(size):
            proof = ref_log.inclusion_proof(index, size)
            assert proof == ref_path(index, LEAVES[:size]), (index, size)
            assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, root)
            for other in range(size):
                if other != index:
                    assert not verify_inclusion(leaf_hash(LEAVES[other]), index, size, proof, root)


def test_every_consistency_proof_up_to_8(ref_log: MerkleLog) -> None:
    for new in range(0, 9):
        for old in range(0, new + 1):
            proof = ref_log.consistency_proof(old, new)
            assert proof == ref_proof(old, LEAVES[:new]), (old, new)
            old_root, new_root = ref_log.root(old), ref_log.root(new)
            assert verify_consistency(old, new, proof, old_root, new_root), (old, new)
            for wrong in range(0, 9):
                if ref_log.root(wrong) != old_root:
                    assert not verify_consistency(old, new, proof, ref_log.root(wrong), new_root)
                if old > 0 and ref_log.root(wrong) != new_root:  # anything extends the empty tree
                    assert not verify_consistency(old, new, proof, old_root, ref_log.root(wrong))


def test_consistency_edge_cases() -> None:
    r1, r2 = SOME_HASH, hashlib.sha256(b"other").digest()
    assert verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(0, 0, [], r1, r1)  # a size-0 tree has one possible hash
    assert verify_consistency(0, 5, [], EMPTY_ROOT, r2)
    assert not verify_consistency(0, 5, [], r1, r2)
    assert not verify_consistency(0, 5, [EMPTY_ROOT], EMPTY_ROOT, r2)
    assert verify_consistency(3, 3, [], r1, r1)
    assert not verify_consistency(3, 3, [], r1, r2)
    assert not verify_consistency(3, 3, [r1], r1, r1)
    assert not verify_consistency(1, 0, [], r1, r2)
    assert not verify_consistency(2, 1, [], r1, r2)
    assert not verify_consistency(1, 2, [], r1, r2)


# -- argument checking and malformed input ----------------------------------------------------


def test_bad_arguments_raise(ref_log: MerkleLog) -> None:
    with pytest.raises(ValueError, match="index 8 is not below the tree size 8"):
        ref_log.inclusion_proof(8)
    with pytest.raises(ValueError, match="index 3 is not below the tree size 3"):
        ref_log.inclusion_proof(3, 3)
    with pytest.raises(ValueError, match="index must be a non-negative"):
        ref_log.inclusion_proof(-1)
    with pytest.raises(ValueError, match="index 0 is not below the tree size 0"):
        MerkleLog().inclusion_proof(0)
    with pytest.raises(ValueError, match="size 9 is larger than the log's size 8"):
        ref_log.root(9)
    with pytest.raises(ValueError, match="size 9 is larger than the log's size 8"):
        ref_log.inclusion_proof(0, 9)
    with pytest.raises(ValueError, match="size 9 is larger than the log's size 8"):
        ref_log.consistency_proof(1, 9)
    with pytest.raises(ValueError, match="old_size 6 is larger than new_size 5"):
        ref_log.consistency_proof(6, 5)
    with pytest.raises(ValueError, match="old_size must be a non-negative"):
        ref_log.consistency_proof(-1)
    with pytest.raises(ValueError, match="size must be a non-negative"):
        ref_log.root(-1)


def test_verifiers_never_raise_on_malformed_input(ref_log: MerkleLog) -> None:
    lh, root = leaf_hash(LEAVES[1]), ref_log.root()
    proof = ref_log.inclusion_proof(1)
    garbage: list[object] = [
        None,
        b"",
        "x" * 32,
        1.5,
        -1,
        True,
        [None],
        [b"x"],
        "abc",
        b"\x00" * 32,
    ]
    for g in garbage:
        assert not verify_inclusion(g, 1, 8, proof, root)  # type: ignore[arg-type]
        assert not verify_inclusion(lh, g, 8, proof, root)  # type: ignore[arg-type]
        assert not verify_inclusion(lh, 1, g, proof, root)  # type: ignore[arg-type]
        assert not verify_inclusion(lh, 1, 8, g, root)  # type: ignore[arg-type]
        assert not verify_inclusion(lh, 1, 8, proof, g)  # type: ignore[arg-type]
        assert not verify_inclusion(lh, 1, 8, [*proof[:-1], g], root)  # type: ignore[list-item]
    cproof = ref_log.consistency_proof(3)
    r3 = ref_log.root(3)
    assert verify_consistency(3, 8, cproof, r3, root)
    for g in garbage:
        assert not verify_consistency(g, 8, cproof, r3, root)  # type: ignore[arg-type]
        assert not verify_consistency(3, g, cproof, r3, root)  # type: ignore[arg-type]
        assert not verify_consistency(3, 8, g, r3, root)  # type: ignore[arg-type]
        assert not verify_consistency(3, 8, cproof, g, root)  # type: ignore[arg-type]
        assert not verify_consistency(3, 8, cproof, r3, g)  # type: ignore[arg-type]
        assert not verify_consistency(3, 8, [g, *cproof[1:]], r3, root)  # type: ignore[list-item]
    # Absurd sizes: too long/short for the proof, never an exception.
    assert not verify_inclusion(lh, 1, 2**70, proof, root)
    assert not verify_consistency(3, 2**70, cproof, r3, root)
    assert not verify_consistency(2**69, 2**70, cproof, r3, root)


# -- randomized cross-check -------------------------------------------------------------------


def _flip(proof: list[bytes], i: int, byte: int) -> list[bytes]:
    out = list(proof)
    out[i] = out[i][:byte] + bytes([out[i][byte] ^ 0x01]) + out[i][byte + 1 :]
    return out


def test_randomized_cross_check() -> None:
    rng = random.Random(6962)
    entries = [rng.randbytes(rng.randrange(0, 40)) for _ in range(300)]
    log = build(entries)
    sizes = sorted(
        {1, 2, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300}
        | {rng.randrange(1, 301) for _ in range(12)}
    )
    tried_sizes = rejected_sizes = 0
    for size in sizes:
        root = log.root(size)
        assert root == ref_mth(entries[:size])
        indices = range(size) if size <= 64 else sorted(rng.sample(range(size), 40))
        for index in indices:
            lh = leaf_hash(entries[index])
            proof = log.inclusion_proof(index, size)
            assert verify_inclusion(lh, index, size, proof, root)
            if proof:
                i = rng.randrange(len(proof))
                assert not verify_inclusion(
                    lh, index, size, _flip(proof, i, rng.randrange(32)), root
                )
                assert not verify_inclusion(lh, index, size, proof[:-1], root)
            wrong_index = (index + rng.randrange(1, size)) % size if size > 1 else 1
            assert not verify_inclusion(lh, wrong_index, size, proof, root)
            # A path binds the size only through its shape (RFC 9162: the signed tree head binds
            # it): a wrong size verifies exactly when it gives the same left/right sequence.
            for wrong_size in {size + 1, size - 1, size * 2, size // 2}:
                same_shape = ref_shape(index, wrong_size) == ref_shape(index, size)
                accepted = verify_inclusion(lh, index, wrong_size, proof, root)
                assert accepted == same_shape, (index, size, wrong_size)
                rejected_sizes += not accepted
                tried_sizes += 1
        olds = range(size + 1) if size <= 64 else sorted(rng.sample(range(size + 1), 40))
        for old in olds:
            old_root = log.root(old)
            proof = log.consistency_proof(old, size)
            assert verify_consistency(old, size, proof, old_root, root), (old, size)
            if not proof:
                continue
            i = rng.randrange(len(proof))
            assert not verify_consistency(
                old, size, _flip(proof, i, rng.randrange(32)), old_root, root
            )
            assert not verify_consistency(old, size, proof[:-1], old_root, root)
            # As for inclusion, sizes bind only through the proof's shape; the RFC 9162 verifier
            # consumes exactly the PROOF length for (old, new), so a length change must fail.
            for wrong_old, wrong_new in {
                (old, size + 1),
                (old, size * 2),
                (old + 1, size),
                (old - 1, size),
                (old // 2, size),
            }:
                if 0 < wrong_old < wrong_new and (wrong_old, wrong_new) != (old, size):
                    accepted = verify_consistency(wrong_old, wrong_new, proof, old_root, root)
                    if consistency_length(wrong_old, wrong_new) != len(proof):
                        assert not accepted, (old, size, wrong_old, wrong_new)
                    rejected_sizes += not accepted
                    tried_sizes += 1
    # Paths for leaves away from the right edge keep their shape under small size changes, so
    # many wrong sizes are (correctly) indistinguishable; most still are rejected.
    assert rejected_sizes > 0.5 * tried_sizes
    # Exhaustive agreement with the naive reference for all sizes up to 40.
    for size in range(1, 41):
        for index in range(size):
            assert log.inclusion_proof(index, size) == ref_path(index, entries[:size])
        for old in range(size + 1):
            assert log.consistency_proof(old, size) == ref_proof(old, entries[:size])


# -- tampering --------------------------------------------------------------------------------


def test_removed_event_breaks_consistency() -> None:
    events = [f"event {i}: custody transfer".encode() for i in range(20)]
    honest = build(events)
    old_size = 11
    old_root = honest.root(old_size)
    # The honest log's later head is consistent with the earlier one.
    assert verify_consistency(
        old_size, 20, honest.consistency_proof(old_size), old_root, honest.root()
    )
    for removed in range(old_size):
        forged = build(events[:removed] + events[removed + 1 :])  # 19 events
        for new_size in range(old_size, forged.size + 1):
            proof = forged.consistency_proof(old_size, new_size)
            assert not verify_consistency(
                old_size, new_size, proof, old_root, forged.root(new_size)
            ), (removed, new_size)
            # Nor can the honest proof vouch for the forged head.
            if new_size <= honest.size:
                honest_proof = honest.consistency_proof(old_size, new_size)
                assert not verify_consistency(
                    old_size, new_size, honest_proof, old_root, forged.root(new_size)
                )
        # And the removed event's inclusion proof against the old head does not fit the new log.
        lh = leaf_hash(events[removed])
        assert not verify_inclusion(
            lh, removed, forged.size, forged.inclusion_proof(removed), forged.root()
        )


# -- complexity (hash counts, not time) -------------------------------------------------------


@pytest.fixture
def count_node_hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real: Callable[[bytes, bytes], bytes] = merkle.node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        calls[0] += 1
        return real(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    return calls


@pytest.mark.parametrize("n", [10**4, 10**5])
def test_hash_counts_grow_like_log_n(n: int, count_node_hashes: list[int]) -> None:
    calls = count_node_hashes
    bound = 2 * math.ceil(math.log2(n)) + 4  # 32 at 10^4, 38 at 10^5
    log = MerkleLog()
    worst_append = 0
    for i in range(n):
        before = calls[0]
        log.append_leaf_hash(i.to_bytes(32, "big"))
        worst_append = max(worst_append, calls[0] - before)
    assert worst_append <= math.floor(math.log2(n))  # one per subtree completed
    # Amortised: a tree of n leaves has n - popcount(n) complete internal nodes, each hashed once.
    assert calls[0] == n - n.bit_count()

    rng = random.Random(n)
    for size in (n, n - 1, n // 3 + 1, rng.randrange(1, n)):  # current and historical trees
        before = calls[0]
        root = log.root(size)
        assert calls[0] - before <= math.ceil(math.log2(size))
        for index in [0, size - 1, size // 2, *rng.sample(range(size), 20)]:
            before = calls[0]
            proof = log.inclusion_proof(index, size)
            # Only one incomplete subtree is hashed: popcount(size) - 1 <= log2(size) hashes.
            assert calls[0] - before <= min(bound, size.bit_count() - 1)
            assert len(proof) <= math.ceil(math.log2(size))
            assert verify_inclusion(index.to_bytes(32, "big"), index, size, proof, root)
        for old in [1, size // 2, size - 1, *rng.sample(range(1, size + 1), 10)]:
            before = calls[0]
            proof = log.consistency_proof(old, size)
            assert calls[0] - before <= bound
            assert verify_consistency(old, size, proof, log.root(old), root)


def test_a_page_of_proofs_is_each_proof_and_hashes_the_right_edge_once(
    count_node_hashes: list[int],
) -> None:
    """``inclusion_proofs`` (a custody page's events at once) gives each event's own proof,
    and hashes the tree's incomplete right-edge subtrees once for the page, not per proof."""
    calls = count_node_hashes
    rng = random.Random(9162)
    entries = [rng.randbytes(24) for _ in range(1000)]
    log = build(entries)
    for size in (1, 2, 5, 512, 999, 1000):
        indices = sorted({0, size - 1, *(rng.randrange(size) for _ in range(50))})
        one_by_one = [log.inclusion_proof(i, size) for i in indices]
        before = calls[0]
        page = log.inclusion_proofs(indices, size)
        assert calls[0] - before <= size.bit_count() * size.bit_length()
        assert page == one_by_one
        root = log.root(size)
        for index, proof in zip(indices, page, strict=True):
            assert verify_inclusion(leaf_hash(entries[index]), index, size, proof, root)
    with pytest.raises(ValueError):
        log.inclusion_proofs([0, 1000], 1000)
