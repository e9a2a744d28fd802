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

Hashing and the proof verifiers live in ``vigil_verify.merkle``, which the stand-alone verifier
shares; they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vigil_verify.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

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
        return self.inclusion_proofs([index], size)[0]

    def inclusion_proofs(
        self, indices: Sequence[int], size: int | None = None
    ) -> list[list[bytes]]:
        """``inclusion_proof`` of each of ``indices`` in the tree of ``size`` leaves, in order.

        The incomplete subtrees of a tree all end at its right edge, so the proofs of a page of
        events share them: each is hashed once for all of them (at most log2(size) of them),
        and a proof otherwise costs only cached lookups.
        """
        n = self._check_size(size)
        levels = self._levels
        edge: dict[int, bytes] = {}  # lo -> MTH(D[lo:n]), the right edge's incomplete subtrees
        proofs: list[list[bytes]] = []
        for index in indices:
            self._check_index(index, n)
            path: list[bytes] = []
            lo, hi = 0, n
            while hi - lo > 1:
                k = _split(hi - lo)  # 2^bits leaves on the left
                bits, mid = k.bit_length() - 1, lo + k
                if index >= mid:  # the sibling is the left part: a perfect subtree, cached
                    path.append(levels[bits][lo >> bits])
                    lo = mid
                elif hi != n:  # a right part inside the tree is as wide: cached too
                    path.append(levels[bits][mid >> bits])
                    hi = mid
                else:
                    if mid not in edge:
                        edge[mid] = self._range_hash(mid, n)
                    path.append(edge[mid])
                    hi = mid
            path.reverse()
            proofs.append(path)
        return proofs

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
        width = hi - lo
        if width & (width - 1) == 0:  # a perfect subtree: most proof siblings are
            k = width.bit_length() - 1
            return [self._levels[k][lo >> k]] if width else []
        blocks: list[bytes] = []
        pos = lo
        while width:
            k = width.bit_length() - 1  # visit only the set bits, largest first
            blocks.append(self._levels[k][pos >> k])
            pos += 1 << k
            width -= 1 << k
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
