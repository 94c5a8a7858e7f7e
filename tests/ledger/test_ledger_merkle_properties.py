"""Properties and named attacks for vault.ledger.merkle (RFC 9162 §2.1)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vault.errors import ProofError
from vault.ledger.merkle import (
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 as written: the independent reference."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _flip(b: bytes, bit: int) -> bytes:
    i, j = divmod(bit % (len(b) * 8), 8)
    return b[:i] + bytes([b[i] ^ (1 << j)]) + b[i + 1 :]


# Shapes: the sequence of left/right decisions a verifier makes. Two parameter sets
# with the same shape are indistinguishable to the verifier (RFC 9162 proofs do not
# bind the tree size); a change that alters the shape must be detected.


def _inclusion_shape(index: int, size: int) -> tuple[int, ...] | None:
    if not 0 <= index < size:
        return None
    fn, sn, out = index, size - 1, []
    while sn:
        if fn & 1 or fn == sn:
            out.append(1)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            out.append(0)
        fn, sn = fn >> 1, sn >> 1
    return tuple(out)


def _consistency_shape(size1: int, size2: int) -> tuple[int, ...] | None:
    if not 0 < size1 < size2:
        return None
    fn, sn = size1 - 1, size2 - 1
    out = [size1 & (size1 - 1) == 0]
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    while sn:
        if fn & 1 or fn == sn:
            out.append(1)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            out.append(0)
        fn, sn = fn >> 1, sn >> 1
    return tuple(int(x) for x in out)


sizes = st.integers(min_value=1, max_value=300)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[MemoryTree, int, int]:
    size = draw(sizes)
    index = draw(st.integers(0, size - 1))
    return MemoryTree(_leaves(size)), index, size


@st.composite
def tree_and_sizes(draw: st.DrawFn) -> tuple[MemoryTree, int, int]:
    size2 = draw(st.integers(2, 300))
    size1 = draw(st.integers(1, size2 - 1))
    return MemoryTree(_leaves(size2)), size1, size2


# --- roots ---------------------------------------------------------------------------


@settings(deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=200))
def test_compact_range_root_equals_mth_for_any_sequence(hashes: list[bytes]) -> None:
    cr = CompactRange()
    for i, h in enumerate(hashes):
        cr.append(h)
        assert cr.size == i + 1
    assert cr.root() == _mth(hashes) == root_from_leaf_hashes(hashes)


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=100), st.integers(0, 100))
def test_compact_range_survives_frontier_round_trip(hashes: list[bytes], cut: int) -> None:
    cut = min(cut, len(hashes))
    cr = CompactRange()
    cr.extend(hashes[:cut])
    restored = CompactRange.from_frontier(cr.size, cr.frontier())
    assert len(cr.frontier()) == cut.bit_count()
    restored.extend(hashes[cut:])
    assert restored.root() == _mth(hashes)


def test_compact_range_frontier_with_wrong_count_rejected() -> None:
    with pytest.raises(ValueError):
        CompactRange.from_frontier(3, [b"\x00" * 32])
    with pytest.raises(ValueError):
        CompactRange.from_frontier(1, [b"\x00" * 31])


# --- generated proofs verify ------------------------------------------------------------


@settings(deadline=None)
@given(tree_and_index())
def test_every_generated_inclusion_proof_verifies(t: tuple[MemoryTree, int, int]) -> None:
    tree, index, size = t
    verify_inclusion(tree.node(0, index), index, size, tree.inclusion_proof(index, size),
                     tree.root(size))


@settings(deadline=None)
@given(tree_and_sizes())
def test_every_generated_consistency_proof_verifies(t: tuple[MemoryTree, int, int]) -> None:
    tree, size1, size2 = t
    verify_consistency(size1, size2, tree.consistency_proof(size1, size2), tree.root(size1),
                       tree.root(size2))


# --- one-bit changes are rejected ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(tree_and_index(), st.integers(0, 10_000), st.integers(0, 63))
def test_inclusion_any_bit_flip_rejected(
    t: tuple[MemoryTree, int, int], bit: int, which: int
) -> None:
    tree, index, size = t
    leaf, proof, root = tree.node(0, index), tree.inclusion_proof(index, size), tree.root(size)
    with pytest.raises(ProofError):
        verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    for k in range(len(proof)):
        bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, bad, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index ^ (1 << which), size, proof, root)
    bad_size = size ^ (1 << which)
    if _inclusion_shape(index, bad_size) != _inclusion_shape(index, size):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, bad_size, proof, root)


@settings(max_examples=200, deadline=None)
@given(tree_and_sizes(), st.integers(0, 10_000), st.integers(0, 63))
def test_consistency_any_bit_flip_rejected(
    t: tuple[MemoryTree, int, int], bit: int, which: int
) -> None:
    tree, size1, size2 = t
    proof = tree.consistency_proof(size1, size2)
    root1, root2 = tree.root(size1), tree.root(size2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, _flip(root1, bit), root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, _flip(root2, bit))
    for k in range(len(proof)):
        bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, bad, root1, root2)
    for s1, s2 in ((size1 ^ (1 << which), size2), (size1, size2 ^ (1 << which))):
        if _consistency_shape(s1, s2) != _consistency_shape(size1, size2):
            with pytest.raises(ProofError):
                verify_consistency(s1, s2, proof, root1, root2)


# --- named attacks -----------------------------------------------------------------------


def test_inclusion_proof_for_wrong_size_rejected() -> None:
    tree = MemoryTree(_leaves(7))
    proof = tree.inclusion_proof(4, 6)
    with pytest.raises(ProofError, match="expected"):
        verify_inclusion(tree.node(0, 4), 4, 7, proof, tree.root(6))


def test_inclusion_proof_does_not_bind_tree_size_so_size_must_come_from_checkpoint() -> None:
    # Documented RFC 9162 property (C2SP-NOTES §7 pitfalls): the same path for index 0
    # verifies for sizes 3 and 4 against the same root. Only a signed checkpoint pins
    # (size, root); this test guards that the docstring's warning stays true.
    tree = MemoryTree(_leaves(3))
    proof = tree.inclusion_proof(0, 3)
    verify_inclusion(tree.node(0, 0), 0, 3, proof, tree.root(3))
    verify_inclusion(tree.node(0, 0), 0, 4, proof, tree.root(3))


def test_inclusion_proof_for_wrong_leaf_rejected() -> None:
    tree = MemoryTree(_leaves(10))
    with pytest.raises(ProofError):
        verify_inclusion(tree.node(0, 3), 2, 10, tree.inclusion_proof(2, 10), tree.root(10))


def test_inclusion_index_beyond_tree_rejected() -> None:
    tree = MemoryTree(_leaves(4))
    with pytest.raises(ProofError, match="not below"):
        verify_inclusion(tree.node(0, 0), 4, 4, tree.inclusion_proof(0, 4), tree.root(4))
    with pytest.raises(ProofError):
        verify_inclusion(tree.node(0, 0), -1, 4, [], tree.root(4))


def test_inclusion_proof_with_appended_garbage_rejected_before_hashing() -> None:
    tree = MemoryTree(_leaves(5))
    proof = tree.inclusion_proof(1, 5)
    with pytest.raises(ProofError, match="hashes, expected"):
        verify_inclusion(tree.node(0, 1), 1, 5, [*proof, b"\x00" * 32], tree.root(5))
    with pytest.raises(ProofError, match="hashes, expected"):
        verify_inclusion(tree.node(0, 1), 1, 5, proof[:-1], tree.root(5))


def test_inclusion_proof_with_short_hash_rejected() -> None:
    tree = MemoryTree(_leaves(2))
    with pytest.raises(ProofError, match="32-byte"):
        verify_inclusion(tree.node(0, 0), 0, 2, [b"\x00" * 31], tree.root(2))
    with pytest.raises(ProofError, match="32-byte"):
        verify_inclusion(b"\x00" * 33, 0, 2, tree.inclusion_proof(0, 2), tree.root(2))


def test_interior_node_passed_off_as_leaf_rejected() -> None:
    # Second-preimage attack: present node (1, 0) as a leaf of a smaller tree. Domain
    # separation (0x00 / 0x01) makes node hashes unusable as leaf hashes.
    tree = MemoryTree(_leaves(4))
    forged_leaf = leaf_hash(tree.node(0, 0) + tree.node(0, 1))
    with pytest.raises(ProofError):
        verify_inclusion(forged_leaf, 0, 2, [tree.node(1, 1)], tree.root(4))


def test_rollback_to_smaller_tree_rejected() -> None:
    tree = MemoryTree(_leaves(8))
    with pytest.raises(ProofError, match="backwards"):
        verify_consistency(8, 5, [], tree.root(8), tree.root(5))


def test_fork_with_rewritten_history_rejected() -> None:
    honest = MemoryTree(_leaves(10))
    forked = MemoryTree([*_leaves(4), *_leaves(6, salt=b"evil")])
    proof = forked.consistency_proof(6, 10)
    with pytest.raises(ProofError):
        verify_consistency(6, 10, proof, honest.root(6), forked.root(10))


def test_consistency_from_empty_tree_rejected_even_zero_to_zero() -> None:
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 0, [], MemoryTree().root(0), MemoryTree().root(0))
    with pytest.raises(ValueError):
        consistency_proof(MemoryTree(_leaves(3)), 0, 3)


def test_consistency_equal_sizes_need_empty_proof_and_equal_roots() -> None:
    tree = MemoryTree(_leaves(5))
    verify_consistency(5, 5, [], tree.root(5), tree.root(5))
    with pytest.raises(ProofError, match="not empty"):
        verify_consistency(5, 5, [tree.root(5)], tree.root(5), tree.root(5))
    with pytest.raises(ProofError, match="differ"):
        verify_consistency(5, 5, [], tree.root(5), tree.root(4))


def test_generators_refuse_out_of_range() -> None:
    tree = MemoryTree(_leaves(3))
    with pytest.raises(ValueError):
        inclusion_proof(tree, 3, 3)
    with pytest.raises(ValueError):
        consistency_proof(tree, 3, 2)


@settings(deadline=None)
@given(st.integers(1, 300), st.data())
def test_generated_proof_lengths_are_logarithmic(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    tree = MemoryTree(_leaves(size))
    assume(size > 1)
    assert len(tree.inclusion_proof(index, size)) <= (size - 1).bit_length()
