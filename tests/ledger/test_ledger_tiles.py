"""C2SP tlog-tiles: vectors (Tessera paths, tiles, bundles) and TileBuilder/TiledNodeReader."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import InvalidInput, LedgerCorrupted, NotFound
from vault.ledger.merkle import (
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from vault.ledger.tiles import (
    TILE_WIDTH,
    MemoryTileSource,
    Tile,
    TileBuilder,
    TileCache,
    TiledNodeReader,
    TileLevelLayout,
    TilePath,
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path_for_log_index,
    parse_tile_path,
    partial_tiles,
    tile_layout,
    tile_path,
    tile_width,
    tiles_for_size,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "vectors" / "vectors.json").read_text()
)


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


def _path_id(v: dict[str, Any]) -> str:
    return v.get("desc") or v["path"]


# --- paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "v", [pytest.param(v, id=_path_id(v)) for v in VECTORS["tile_path_vectors"]]
)
def test_tile_path_vector(v: dict[str, Any]) -> None:
    width = v["width"] or TILE_WIDTH
    assert tile_path(v["level"], v["index"], v["width"]) == v["path"]
    assert tile_path(v["level"], v["index"], width) == v["path"]
    assert parse_tile_path(v["path"]) == TilePath(v["level"], v["index"], width)
    desc = v.get("desc", "")
    if desc.startswith("EntriesPathForLogIndex"):
        seq, size = (int(x.split("=")[1]) for x in desc[desc.index("(") + 1 : -1].split(", "))
        assert entries_path_for_log_index(seq, size) == v["path"]


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in level
        "tile/64/000",  # level out of range
        "tile/0/000.p/0",  # width 0
        "tile/0/000.p/256",  # width too large
        "tile/0/000.p/010",  # leading zero in width
        "tile/0/00",  # short group
        "tile/0/0000",  # long group
        "tile/0/x000/001",  # non-canonical leading zero group
        "tile/0/001/002",  # missing x prefix
        "tile/0/x001",  # x on the last group
        "tile/0/",
        "tile/0",
        "tiles/0/000",
        "tile/entries/000.p/",
        "tile/0/000.p/1/2",
        "tile/0/+12",
        "tile/0/٠٠٠",  # non-ASCII digits
        "tile/1/x999/x999/x999/x999/x999/x999/x999/999",  # index >= 2**64
    ],
)
def test_malformed_tile_path_rejected(path: str) -> None:
    with pytest.raises(InvalidInput):
        parse_tile_path(path)


@settings(deadline=None)
@given(
    st.one_of(st.integers(0, 63), st.just("entries")),
    st.integers(0, 2**64 - 1),
    st.integers(1, 256),
)
def test_tile_path_round_trips(level: int | str, index: int, width: int) -> None:
    p = tile_path(level, index, width)  # type: ignore[arg-type]
    assert parse_tile_path(p) == TilePath(level, index, width)  # type: ignore[arg-type]
    assert str(parse_tile_path(p)) == p


# --- tile arithmetic ---------------------------------------------------------------------


def test_tile_layout_for_70000_matches_spec_example() -> None:
    assert tile_layout(70_000) == [
        TileLevelLayout(0, 273, 112),
        TileLevelLayout(1, 1, 17),
        TileLevelLayout(2, 0, 1),
    ]
    assert partial_tiles(70_000) == [TilePath(0, 273, 112), TilePath(1, 1, 17), TilePath(2, 0, 1)]
    assert sum(1 for _ in tiles_for_size(70_000)) == 273 + 1 + 1 + 1 + 1
    assert tile_width(0, 273, 70_000) == 112
    assert tile_width(0, 272, 70_000) == 256
    assert tile_width(0, 274, 70_000) == 0


def test_tile_layout_edges() -> None:
    assert tile_layout(0) == []
    assert partial_tiles(256) == [TilePath(1, 0, 1)]  # the full L0 tile hashed up
    assert tile_layout(256) == [TileLevelLayout(0, 1, 0), TileLevelLayout(1, 0, 1)]
    assert partial_tiles(65536) == [TilePath(2, 0, 1)]


# --- tile and entry bundle vectors (Tessera testdata/log, 15 entries) ---------------------


@pytest.mark.parametrize("v", [pytest.param(v, id=v["id"]) for v in VECTORS["tile_vectors"]])
def test_tile_vector(v: dict[str, Any]) -> None:
    entries = [bytes.fromhex(x) for x in v["leaves"]]
    parsed = parse_tile_path(v["path"])
    content = bytes.fromhex(v["content"])
    if v["kind"] == "entries":
        assert encode_entry_bundle(entries) == content
        assert decode_entry_bundle(content, parsed.width) == entries
    else:
        update = TileBuilder().append([leaf_hash(e) for e in entries])
        assert [t.path for t in update.tiles] == [v["path"]]
        assert update.tiles[0].data == content


def test_tessera_log_built_one_entry_per_run_matches_every_checkpoint_root() -> None:
    (tree,) = [t for t in VECTORS["tree_vectors"] if t["id"] == "tessera-testdata-15"]
    builder = TileBuilder()
    for i, e in enumerate(tree["leaves"]):
        update = builder.append([leaf_hash(bytes.fromhex(e))])
        builder = update.builder
        assert update.root().hex() == tree["roots_by_size"][str(i + 1)]


def test_entry_bundle_truncated_or_padded_rejected() -> None:
    bundle = encode_entry_bundle([b"one", b"two"])
    for bad in (bundle[:-1], bundle + b"\x00", bundle[:1], b""):
        with pytest.raises(InvalidInput):
            decode_entry_bundle(bad)
    with pytest.raises(InvalidInput):
        decode_entry_bundle(bundle, width=3)
    with pytest.raises(ValueError):
        encode_entry_bundle([b"x" * 65536])
    with pytest.raises(ValueError):
        encode_entry_bundle([b""] * 257)


# --- TileBuilder -------------------------------------------------------------------------


def _one_go(leaves: list[bytes]) -> MemoryTileSource:
    src = MemoryTileSource()
    src.write(TileBuilder().append(leaves).tiles)
    return src


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2000), st.lists(st.integers(1, 600), min_size=1, max_size=40))
def test_tile_builder_in_random_batches_equals_one_go(n: int, batch_sizes: list[int]) -> None:
    leaves = _leaves(n)
    tree = MemoryTree(leaves)
    src = MemoryTileSource()
    builder = TileBuilder()
    pos = 0
    i = 0
    while pos < n:
        k = batch_sizes[i % len(batch_sizes)]
        i += 1
        update = builder.append(leaves[pos : pos + k])
        pos = min(n, pos + k)
        # Partial tiles written along the way are prefixes of their final tile
        # (MemoryTileSource.write refuses anything else).
        src.write(update.tiles)
        for t in update.tiles:
            assert t.width == tile_width(t.level, t.index, pos)
        builder = update.builder
        assert update.root() == tree.root(pos)
        assert builder.compact_range().size == pos
    final = _one_go(leaves)
    assert src._tiles == final._tiles
    assert {(lv, idx) for lv, idx in src._tiles} == {(t.level, t.index) for t in tiles_for_size(n)}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 1500), st.integers(0, 700))
def test_tile_builder_resumes_from_its_partial_tiles(n: int, more: int) -> None:
    leaves = _leaves(n + more)
    first = TileBuilder().append(leaves[:n]).builder
    resumed = TileBuilder.from_partial_tiles(n, first.state())
    a = first.append(leaves[n:])
    b = resumed.append(leaves[n:])
    assert a.tiles == b.tiles
    assert a.root() == b.root() == MemoryTree(leaves).root()


def test_tile_builder_append_leaves_original_state_untouched() -> None:
    b0 = TileBuilder().append(_leaves(300)).builder
    state = b0.state()
    b0.append(_leaves(1000, salt=b"x"))
    assert b0.state() == state and b0.size == 300


def test_tile_builder_resume_with_wrong_partial_tiles_rejected() -> None:
    b = TileBuilder().append(_leaves(300)).builder
    with pytest.raises(ValueError):
        TileBuilder.from_partial_tiles(301, b.state())
    with pytest.raises(ValueError):
        TileBuilder.from_partial_tiles(300, {0: b.state()[0][:-32], 1: b.state()[1]})


def test_tile_builder_rejects_bad_leaf_hash() -> None:
    with pytest.raises(ValueError):
        TileBuilder().append([b"\x00" * 31])


def test_tile_rewrite_of_history_refused_by_memory_source() -> None:
    src = MemoryTileSource()
    src.write([Tile(0, 0, 2, b"\x01" * 64)])
    with pytest.raises(LedgerCorrupted):
        src.write([Tile(0, 0, 3, b"\x02" * 96)])
    with pytest.raises(LedgerCorrupted):
        src.write([Tile(0, 0, 1, b"\x01" * 32)])


# --- TiledNodeReader ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 1500), st.data())
def test_every_proof_from_tiles_verifies_and_equals_in_memory(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    tree = MemoryTree(leaves)
    src = _one_go(leaves)
    size = data.draw(st.integers(1, n))  # an older checkpoint: reads narrower partial tiles
    reader = TiledNodeReader(src, size, TileCache(capacity=3))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(reader, index, size)
    assert proof == tree.inclusion_proof(index, size)
    verify_inclusion(leaves[index], index, size, proof, tree.root(size))
    size1 = data.draw(st.integers(1, size))
    cproof = consistency_proof(reader, size1, size)
    assert cproof == tree.consistency_proof(size1, size)
    verify_consistency(size1, size, cproof, tree.root(size1), tree.root(size))


def test_proofs_from_tiles_across_three_tile_levels() -> None:
    n = 70_000
    leaves = _leaves(n)
    tree = MemoryTree(leaves)
    src = _one_go(leaves)
    rng = random.Random(1)
    cache = TileCache()
    for size in (1, 255, 256, 257, 65_535, 65_536, 65_537, 69_999, n):
        reader = TiledNodeReader(src, size, cache)
        for _ in range(20):
            i = rng.randrange(size)
            p = inclusion_proof(reader, i, size)
            assert p == tree.inclusion_proof(i, size)
            verify_inclusion(leaves[i], i, size, p, tree.root(size))
            s1 = rng.randrange(1, size + 1)
            c = consistency_proof(reader, s1, size)
            verify_consistency(s1, size, c, tree.root(s1), tree.root(size))


def test_tiled_reader_reads_log_many_tiles_per_proof() -> None:
    n = 70_000
    src = _one_go(_leaves(n))
    cache = TileCache()
    reader = TiledNodeReader(src, n, cache)
    inclusion_proof(reader, 12_345, n)
    # one tile per tile level on the path, plus partial tiles on the right border
    assert cache.misses <= 2 * len(tile_layout(n))


def test_tiled_reader_refuses_node_outside_tree() -> None:
    reader = TiledNodeReader(_one_go(_leaves(10)), 10)
    with pytest.raises(ValueError):
        reader.node(1, 5)  # covers leaves 10..11
    with pytest.raises(ValueError):
        reader.node(4, 0)  # 16 leaves


def test_truncated_tile_from_storage_detected() -> None:
    class ShortSource:
        def tile(self, level: int, index: int, width: int) -> bytes:
            return b"\x00" * (width * 32 - 1)

    with pytest.raises(LedgerCorrupted):
        TiledNodeReader(ShortSource(), 10).node(0, 3)


def test_missing_tile_is_not_found() -> None:
    with pytest.raises(NotFound):
        TiledNodeReader(MemoryTileSource(), 10).node(0, 3)


def test_tile_cache_is_bounded_lru() -> None:
    src = _one_go(_leaves(256 * 5))
    cache = TileCache(capacity=2)
    reader = TiledNodeReader(src, 256 * 5, cache)
    for t in range(5):
        reader.node(0, t * 256)
    assert len(cache) == 2
    reader.node(0, 4 * 256 + 1)
    assert cache.hits == 1
