"""The stored tree: tiles written by the group commit, proofs and roots from the
database, ``ledger rebuild``, and the multi-writer reload path. Both profiles."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import delete, select, text

from vault.config import Settings
from vault.db.ledger_models import LedgerTile
from vault.db.models import LedgerEntry
from vault.errors import InvalidInput, LedgerCorrupted
from vault.ledger import proofs
from vault.ledger.merkle import root_from_leaf_hashes, verify_consistency, verify_inclusion
from vault.ledger.store import TILES, ledger_store, load_builder, rebuild_tiles
from vault.ledger.tiles import TILE_WIDTH, tiles_for_size
from vault.service import Vault, open_vault


def _append(vault: Vault, n: int, *, threads: int = 16, tag: str = "t") -> list[int]:
    def unit(_s: Any, ledger: Any) -> int:
        return int(ledger.append("KEY_ROTATED", note=tag).seq)

    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(lambda _: vault.sequencer.run(unit, savepoint=False), range(n)))


def _leaf_hashes(vault: Vault) -> list[bytes]:
    with vault.read() as s:
        return [
            bytes(h)
            for h in s.execute(select(LedgerEntry.leaf_hash).order_by(LedgerEntry.seq)).scalars()
        ]


def _tiles(vault: Vault) -> set[tuple[int, int, int, bytes]]:
    with vault.read() as s:
        return {
            (r.level, r.idx, r.width, bytes(r.data))
            for r in s.execute(select(LedgerTile)).scalars()
        }


def test_group_commit_writes_exactly_the_tiles_of_the_tree(vault: Vault) -> None:
    _append(vault, 1500)
    hashes = _leaf_hashes(vault)
    size = len(hashes)
    assert size == 1500
    stored = _tiles(vault)
    # One row per tile of the tree: the full tiles and one partial per level.
    assert {(lv, i, w) for lv, i, w, _ in stored} == {
        (int(t.level), t.index, t.width) for t in tiles_for_size(size)
    }
    level0 = {i: d for lv, i, w, d in stored if lv == 0}
    for i in range(size // TILE_WIDTH + 1):
        assert level0[i] == b"".join(hashes[i * TILE_WIDTH : (i + 1) * TILE_WIDTH])
    assert stored == _rebuilt(vault)


def _rebuilt(vault: Vault) -> set[tuple[int, int, int, bytes]]:
    rebuild_tiles(vault)
    return _tiles(vault)


def test_roots_and_proofs_from_the_database_verify(vault: Vault) -> None:
    _append(vault, 700)
    hashes = _leaf_hashes(vault)
    rng = random.Random(7)
    for size in [1, 2, 255, 256, 257, 511, 512, 513, 700, *rng.sample(range(1, 701), 20)]:
        root = root_from_leaf_hashes(hashes[:size])
        assert proofs.root_at(vault, size) == root
        for index in {0, size - 1, rng.randrange(size)}:
            p = proofs.inclusion_proof(vault, index, size)
            verify_inclusion(hashes[index], index, size, p, root)
        old = rng.randrange(1, size + 1)
        c = proofs.consistency_proof(vault, old, size)
        verify_consistency(old, size, c, root_from_leaf_hashes(hashes[:old]), root)


def test_proofs_beyond_the_tree_are_refused(vault: Vault) -> None:
    _append(vault, 10)
    with pytest.raises(InvalidInput):
        proofs.inclusion_proof(vault, 3, 11)
    with pytest.raises(InvalidInput):
        proofs.inclusion_proof(vault, 10, 10)
    with pytest.raises(InvalidInput):
        proofs.consistency_proof(vault, 5, 11)
    with pytest.raises(InvalidInput):
        proofs.consistency_proof(vault, 0, 5)


def test_rebuild_restores_lost_tiles(vault: Vault) -> None:
    _append(vault, 600)
    before = _tiles(vault)
    with vault.write() as s:
        s.connection().execute(delete(TILES))
    fresh = open_vault(vault.settings, clock=vault.clock, migrate=False)
    try:
        with pytest.raises(LedgerCorrupted, match="ledger rebuild"), fresh.read() as s:
            load_builder(s, 600)
        report = rebuild_tiles(fresh)
        assert report.size == 600
        assert report.root_hash == root_from_leaf_hashes(_leaf_hashes(fresh))
        assert _tiles(fresh) == before
        # Appends continue from the rebuilt right edge.
        _append(fresh, 300)
        assert proofs.root_at(fresh, 900) == root_from_leaf_hashes(_leaf_hashes(fresh))
    finally:
        fresh.close()


def test_lowest_partial_tile_is_rederived_from_entries(vault: Vault) -> None:
    """A missing level-0 partial tile (e.g. lost after a crash-restore of the tile
    table only) is recomputed from at most 255 leaf hashes; nothing else is read."""
    _append(vault, 300)
    with vault.write() as s:
        s.connection().execute(delete(TILES).where(TILES.c.level == 0, TILES.c.width < TILE_WIDTH))
    with vault.read() as s:
        b = load_builder(s, 300)
    assert b.root() == root_from_leaf_hashes(_leaf_hashes(vault))


def test_two_vaults_on_one_database_interleave_correctly(settings: Settings, vault: Vault) -> None:
    """Each process caches its tile builder; when another process appended meanwhile
    the builder must reload the right edge from the database (the multi-worker
    deployment on PostgreSQL, or a CLI sweeper next to `serve` on SQLite)."""
    other = open_vault(settings, clock=vault.clock, migrate=False)
    try:
        for round_ in range(6):
            _append(vault, 37 + round_, threads=4, tag="a")
            _append(other, 101 + round_, threads=4, tag="b")
        assert ledger_store(vault).writer.reloads >= 5
        assert ledger_store(other).writer.reloads >= 5
        hashes = _leaf_hashes(vault)
        assert proofs.root_at(vault, len(hashes)) == root_from_leaf_hashes(hashes)
        assert proofs.root_at(other, len(hashes)) == root_from_leaf_hashes(hashes)
        assert _tiles(vault) == _rebuilt(vault)
    finally:
        other.close()


def test_a_failed_batch_does_not_advance_the_cached_builder(vault: Vault) -> None:
    """If the transaction fails after the tiles were computed, the retry must start
    from the committed tail, not from the builder of the failed attempt."""
    _append(vault, 5)

    def bad(session: Any, ledger: Any) -> None:
        ledger.append("KEY_ROTATED", note="doomed")
        session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(Exception):  # noqa: B017 -- the unit's own database error
        vault.sequencer.run(bad, savepoint=False)
    assert ledger_store(vault).writer.size == 5
    _append(vault, 5)
    hashes = _leaf_hashes(vault)
    assert len(hashes) == 10
    assert proofs.root_at(vault, 10) == root_from_leaf_hashes(hashes)
    assert _tiles(vault) == _rebuilt(vault)
