"""RFC 6962 / RFC 9162 Merkle tree: hashing, incremental roots, proofs.

Pure functions over bytes: no I/O, no clock, no state shared between calls.

Hashing (RFC 9162 §2.1.1), SHA-256 with domain separation::

    leaf_hash(d)    = SHA-256(0x00 || d)
    node_hash(l, r) = SHA-256(0x01 || l || r)
    MTH({})         = SHA-256("")                       (EMPTY_ROOT)
    MTH(D[n])       = node_hash(MTH(D[0:k]), MTH(D[k:n])), k = largest power of 2 < n

Node addressing. ``(level, index)`` names the *perfect* subtree that covers leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf hashes. Such a
node never changes once the tree has grown past its last leaf, which is what lets
storage (C2SP tlog-tiles, see ``tiles.py``) keep it forever. Nodes on the right
border of a tree whose size is not a power of two are *ephemeral*: they are never
stored, and proof generation recomputes them from the perfect subtrees under them.

Invariants:

* Every hash handled here is exactly 32 bytes; anything else is rejected before
  any hashing is done.
* Verification functions return ``None`` or raise :class:`vault.errors.ProofError`.
  The expected proof length is checked before hashing (as sigstore-python does),
  so a malformed proof costs nothing and never reaches the hash loop.
* An inclusion proof does not bind the tree size (the same path for index 0
  verifies for sizes 3 and 4 under the same root). Callers MUST take ``size``
  and ``root`` from a verified checkpoint, never from the proof's own envelope.
* A consistency proof from size 0 is rejected, even 0 -> 0 (transparency-dev
  behaviour, encoded in the published golden vectors). A protocol that needs
  "anything is consistent with the empty tree" (tlog-witness ``old 0``) handles
  that case itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from vault.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryTree",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_at",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH of the empty tree, ``e3b0c442...b855`` (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Hash one log entry: ``SHA-256(0x00 || data)``."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children: ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """``k`` of RFC 9162 §2.1.1: the largest power of two strictly less than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 9162 §2.1.1), in O(n) time, O(log n) memory."""
    _require_hashes(leaf_hashes, "leaf hash")
    cr = CompactRange()
    cr.extend(leaf_hashes)
    return cr.root()


# --------------------------------------------------------------------------------------
# Incremental root
# --------------------------------------------------------------------------------------


class CompactRange:
    """The right edge of a tree: one perfect-subtree hash per set bit of ``size``.

    ``frontier()[i]`` are the roots of the perfect subtrees that partition
    ``[0, size)``, largest (leftmost) first. Their count is ``popcount(size)``
    (at most 64), so this is all a database has to persist to keep appending and
    to compute the root of every new size.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> CompactRange:
        """Restore from ``(size, frontier())``, as persisted by a previous run."""
        if size < 0:
            raise ValueError("size must be >= 0")
        if len(frontier) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} frontier hashes, "
                f"got {len(frontier)}"
            )
        _require_hashes(frontier, "frontier hash")
        cr = cls()
        cr._size = size
        cr._hashes = list(frontier)
        return cr

    @property
    def size(self) -> int:
        return self._size

    def frontier(self) -> list[bytes]:
        """Perfect-subtree roots covering ``[0, size)``, left to right (a copy)."""
        return list(self._hashes)

    def copy(self) -> CompactRange:
        return CompactRange.from_frontier(self._size, self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash; amortised one ``node_hash`` per leaf."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        self._push(leaf_hash, 0)

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def _push(self, h: bytes, level: int) -> None:
        """Append a perfect subtree of height ``level``; ``size`` must be aligned to it."""
        hashes = self._hashes
        n = self._size >> level
        hashes.append(h)
        while n & 1:
            right = hashes.pop()
            hashes[-1] = _sha256(_NODE_PREFIX + hashes[-1] + right).digest()
            n >>= 1
        self._size += 1 << level

    def root(self) -> bytes:
        """MTH(D[0:size]); ``EMPTY_ROOT`` for the empty tree."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        r = hashes[-1]
        for h in reversed(hashes[:-1]):
            r = _sha256(_NODE_PREFIX + h + r).digest()
        return r


# --------------------------------------------------------------------------------------
# Proof generation
# --------------------------------------------------------------------------------------


class NodeReader(Protocol):
    """Read access to the perfect subtrees of a tree (the port proof generation uses)."""

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree over leaves ``[index * 2**level, (index+1) * 2**level)``.

        The subtree lies entirely within the tree; callers never ask for another.
        """
        ...


def _range_hash(reader: NodeReader, start: int, size: int) -> bytes:
    """MTH(D[start:start+size]) for an aligned range (``start`` a multiple of bit_ceil(size)).

    The range splits into perfect subtrees, one per set bit of ``size``, largest
    first; folding them right to left is exactly the MTH recursion. This is how the
    ephemeral right-border nodes of RFC 6962 are rebuilt from stored nodes.
    """
    parts: list[bytes] = []
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if (size >> level) & 1:
            parts.append(reader.node(level, pos >> level))
            pos += 1 << level
    r = parts[-1]
    for h in reversed(parts[:-1]):
        r = _sha256(_NODE_PREFIX + h + r).digest()
    return r


def _path(reader: NodeReader, m: int, start: int, n: int) -> list[bytes]:
    """PATH(m, D[start:start+n]) of RFC 9162 §2.1.3.1, leaf-to-root order."""
    out: list[bytes] = []
    # Iterative form of the recursion: walk down from the root, collecting the
    # sibling at each split, then reverse (the proof lists them bottom-up).
    while n > 1:
        k = _largest_power_of_two_below(n)
        if m < k:
            out.append(_range_hash(reader, start + k, n - k))
            n = k
        else:
            out.append(_perfect(reader, start, k))
            m -= k
            start += k
            n -= k
    out.reverse()
    return out


def _perfect(reader: NodeReader, start: int, k: int) -> bytes:
    level = k.bit_length() - 1
    return reader.node(level, start >> level)


def _subproof(reader: NodeReader, m: int, start: int, n: int, known: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:start+n], b) of RFC 9162 §2.1.4.1, in proof order."""
    out: list[bytes] = []
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:
            out.append(_range_hash(reader, start + k, n - k))
            n = k
        else:
            out.append(_perfect(reader, start, k))
            m -= k
            start += k
            n -= k
            known = False
    if not known:
        out.append(_range_hash(reader, start, n))
    out.reverse()
    return out


def root_at(reader: NodeReader, size: int) -> bytes:
    """MTH(D[0:size]) from stored perfect subtrees: popcount(size) reads, no leaf scan."""
    if size < 0:
        raise ValueError("size must be >= 0")
    return EMPTY_ROOT if size == 0 else _range_hash(reader, 0, size)


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1).

    Reads O(log n) nodes: the perfect siblings, plus the perfect subtrees under the
    single ephemeral node on the right border, if the path has one.
    """
    if not 0 <= index < size:
        raise ValueError(f"index {index} out of range for tree size {size}")
    return _path(reader, index, 0, size)


def consistency_proof(reader: NodeReader, size1: int, size2: int) -> list[bytes]:
    """Consistency proof from ``size1`` to ``size2`` (RFC 9162 §2.1.4.1).

    ``size1 == size2`` gives the empty proof; ``size1 == 0`` is refused because
    such a proof proves nothing (see the module docstring).
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return []
    return _subproof(reader, size1, 0, size2, True)


class MemoryTree:
    """Whole tree kept in memory, every level: a reference generator for tests and tools.

    Implements :class:`NodeReader`. Memory is about 2 * 32 bytes per leaf.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        levels = self._levels
        levels[0].append(leaf_hash)
        level = 0
        while len(levels[level]) % 2 == 0:
            row = levels[level]
            h = node_hash(row[-2], row[-1])
            level += 1
            if level == len(levels):
                levels.append([])
            levels[level].append(h)

    def node(self, level: int, index: int) -> bytes:
        if level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise ValueError(f"node ({level}, {index}) is not a perfect subtree of this tree")

    def root(self, size: int | None = None) -> bytes:
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError(f"size {n} out of range")
        return root_at(self, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self, index, self.size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(self, size1, self.size if size2 is None else size2)


# --------------------------------------------------------------------------------------
# Proof verification
# --------------------------------------------------------------------------------------


def _require_hashes(hashes: Iterable[bytes], what: str) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"{what} must be 32 bytes")


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} is not a 32-byte hash")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]")


def _inclusion_proof_length(index: int, size: int) -> int:
    """Length of PATH(index, D[size]): inner levels below the fork, plus the border.

    ``inner`` is the height of the smallest perfect-or-not subtree holding both
    ``index`` and the last leaf; above it the path follows the right border, whose
    left siblings are one per set bit of ``index >> inner``.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``.

    RFC 9162 §2.1.3.2. Returns ``None`` or raises :class:`ProofError`.
    ``size`` and ``root`` must come from a verified checkpoint.
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    if size < 0 or index < 0:
        raise ProofError("negative index or tree size")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, expected {want}")
    _check_proof_hashes(proof)

    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def _consistency_proof_length(size1: int, size2: int) -> int:
    """Length of PROOF(size1, D[size2]) for 0 < size1 < size2 (RFC 9162 §2.1.4.1)."""
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros: size1 = odd * 2**shift
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length() - shift
    border = ((size1 - 1) >> (inner + shift)).bit_count()
    seed = 0 if size1 == 1 << shift else 1  # power of two: the old root is the seed
    return seed + inner + border


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree ``(size2, root2)`` extends the tree ``(size1, root1)``.

    RFC 9162 §2.1.4.2, with the transparency-dev edge cases: ``size1 == 0`` is
    rejected (even 0 -> 0); ``size1 == size2`` needs an empty proof and equal roots;
    ``size1 > size2`` is rejected. Returns ``None`` or raises :class:`ProofError`.
    """
    _check_hash(root1, "first root hash")
    _check_hash(root2, "second root hash")
    if size1 < 0 or size2 < 0:
        raise ProofError("negative tree size")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size2 < size1:
        raise ProofError(f"tree size went backwards: {size1} -> {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("tree sizes are equal but the proof is not empty")
        if root1 != root2:
            raise ProofError("tree sizes are equal but the root hashes differ")
        return
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise ProofError(f"consistency proof has {len(proof)} hashes, expected {want}")
    _check_proof_hashes(proof)

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the first root hash")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the second root hash")
