"""An RFC 6962 / RFC 9162 Merkle tree for the append-only custody log.

leaf hash = SHA-256(0x00 ‖ data), node hash = SHA-256(0x01 ‖ left ‖ right); the hash of a tree
over n leaves is RFC 6962 §2.1's MTH (split at the largest power of two smaller than n), and the
empty tree's hash is SHA-256 of the empty string.

``MerkleLog`` caches, per level k, the hashes of the complete aligned subtrees of 2^k leaves
(level 0 holds the leaf hashes), appended as they complete. Any subtree that occurs in the MTH
recursion of a tree of size n <= log size starts at a multiple of a power of two at least as large
as itself, so it decomposes into at most log2(n) cached aligned blocks (one per set bit of its
width): roots, historical roots and proofs cost O(log n) node hashes. The right-edge blocks of the
whole tree are its "frontier" (RFC 9162's compact range).

Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 literally, and return False, never raise, on
malformed input (wrong sizes or types, hashes that are not 32 bytes, proofs of the wrong length).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleLog",
    "TreeHead",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: MTH({d(0)}) = SHA-256(0x00 ‖ d(0))."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


@dataclass(frozen=True)
class TreeHead:
    """A (size, root) pair: what a checkpoint of the log commits to."""

    size: int
    root: bytes


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleLog:
    """Append-only; stores leaf hashes, and keeps the 'frontier' (right-edge perfect subtree roots)
    so append is O(log n) and root() is O(log n).

    ``_levels[k][j]`` is the hash of leaves [j * 2^k, (j + 1) * 2^k); the frontier of a size is
    read off these lists (one block per set bit of the size), so it is never stored twice.
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    # -- building ----------------------------------------------------------------------------

    def append(self, data: bytes) -> int:
        """Append an entry; returns its leaf index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> int:
        """Append an already-computed leaf hash; returns its leaf index.

        Costs one node hash per subtree the new leaf completes (trailing zero bits of the new
        size): at most log2(size), and fewer than one on average.
        """
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        levels = self._levels
        index = len(levels[0])
        levels[0].append(h)
        k = 0
        while len(levels[k]) % 2 == 0:
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].append(node_hash(levels[k][-2], levels[k][-1]))
            k += 1
        return index

    # -- reading -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        self._check_index(index, self.size)
        return self._levels[0][index]

    def frontier(self, size: int | None = None) -> list[bytes]:
        """The roots of the perfect subtrees on the right edge of the tree of ``size`` leaves,
        largest (leftmost) first: RFC 9162's compact range [0, size)."""
        n = self._check_size(size)
        return self._blocks(0, n)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all): popcount(size) - 1 node hashes."""
        n = self._check_size(size)
        return self._range_hash(0, n)

    def head(self, size: int | None = None) -> TreeHead:
        n = self._check_size(size)
        return TreeHead(n, self._range_hash(0, n))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[0:size]), leaf-side sibling first.

        Only the first sibling to the right of the path can be an incomplete subtree, so this costs
        at most popcount(size) - 1 node hashes.
        """
        n = self._check_size(size)
        self._check_index(index, n)
        path: list[bytes] = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._range_hash(lo, lo + k))
                lo += k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(old_size, D[0:new_size]) (empty when old_size is 0 or equal)."""
        n = self._check_size(new_size)
        if not isinstance(old_size, int) or isinstance(old_size, bool) or old_size < 0:
            raise ValueError(f"old_size must be a non-negative integer, got {old_size!r}")
        if old_size > n:
            raise ValueError(f"old_size {old_size} is larger than new_size {n}")
        if old_size in (0, n):
            return []
        proof: list[bytes] = []
        m, lo, hi, whole = old_size, 0, n, True  # SUBPROOF(m, D[lo:hi], whole)
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range_hash(lo, lo + k))
                m -= k
                lo += k
                whole = False
        if not whole:
            proof.append(self._range_hash(lo, hi))
        proof.reverse()
        return proof

    # -- internals ---------------------------------------------------------------------------

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"size must be a non-negative integer, got {size!r}")
        if size > self.size:
            raise ValueError(f"size {size} is larger than the log's size {self.size}")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError(f"index must be a non-negative integer, got {index!r}")
        if index >= size:
            raise ValueError(f"index {index} is not below the tree size {size}")

    def _blocks(self, lo: int, hi: int) -> list[bytes]:
        """Cached hashes of the aligned blocks covering [lo, hi), largest first.

        Precondition (true of every subtree in the MTH recursion): lo is a multiple of a power of
        two >= hi - lo, so after each block the position is aligned for the next, smaller one.
        """
        blocks: list[bytes] = []
        width = hi - lo
        pos = lo
        for k in range(width.bit_length() - 1, -1, -1):
            if width >> k & 1:
                blocks.append(self._levels[k][pos >> k])
                pos += 1 << k
        return blocks

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) from the cached blocks: popcount(hi - lo) - 1 node hashes."""
        if hi == lo:
            return EMPTY_ROOT
        blocks = self._blocks(lo, hi)
        acc = blocks[-1]
        for block in reversed(blocks[:-1]):
            acc = node_hash(block, acc)
        return acc


# -- verification (RFC 9162) -----------------------------------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_path(proof: object) -> bool:
    return (
        isinstance(proof, Sequence)
        and not isinstance(proof, bytes | str)
        and all(_is_hash(p) for p in proof)
    )


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` in the tree of
    ``size`` leaves whose hash is ``root``? ``leaf`` is the leaf HASH, not the entry."""
    if not (_is_hash(leaf) and _is_hash(root) and _is_count(index) and _is_count(size)):
        return False
    if not _is_path(proof):
        return False
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show that the tree of ``old_size`` leaves with hash
    ``old_root`` is a prefix of the tree of ``new_size`` leaves with hash ``new_root``?

    Edge cases (outside the RFC's 0 < old_size < new_size): equal sizes need an empty proof and
    equal roots; old_size 0 needs an empty proof and old_root equal to the empty tree's hash.
    """
    if not (_is_count(old_size) and _is_count(new_size)):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_path(proof)):
        return False
    if old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root and (old_size > 0 or old_root == EMPTY_ROOT)
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    # 1. An empty path fails.
    if len(proof) == 0:
        return False
    path = list(proof)
    # 2. If old_size is an exact power of 2, prepend old_root to the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. If LSB(fn) is set, right-shift fn and sn equally until it is not.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value of the path.
    fr = sr = path[0]
    # 6. For each subsequent value c ...
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, and sn == 0.
    return fr == old_root and sr == new_root and sn == 0
