"""RFC 6962 / RFC 9162 Merkle tree hashing and proof verification, with no dependency beyond
the standard library.

leaf hash = SHA-256(0x00 ‖ data), node hash = SHA-256(0x01 ‖ left ‖ right). Verifiers follow
RFC 9162 §2.1.3.2 and §2.1.4.2 literally, and return False, never raise, on malformed input
(wrong sizes or types, hashes that are not 32 bytes, proofs of the wrong length). The log that
makes the proofs is ``integrity.merkle.MerkleLog`` on the server side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
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
