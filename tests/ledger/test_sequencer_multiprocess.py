"""Several processes append to one log at once (API workers on PostgreSQL; a CLI
sweeper next to ``serve`` on SQLite). Each opens its own Vault, so each has its own
sequencer and its own cached tile builder; they meet only in the database.

Afterwards: indexes are dense 0..n-1 with no duplicate, every chain link verifies,
every process got back exactly the indexes it was acknowledged, the stored tiles
equal a from-scratch rebuild, and the stored root equals the root recomputed from
all leaf hashes. Run on both profiles (PostgreSQL: advisory lock; SQLite: BEGIN
IMMEDIATE)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from vault.config import Settings
from vault.db.ledger_models import LedgerTile
from vault.db.models import LedgerEntry
from vault.ledger import proofs
from vault.ledger.entries import ZERO_CHAIN, chain_next, leaf_hash, parse_entry
from vault.ledger.merkle import root_from_leaf_hashes
from vault.ledger.store import rebuild_tiles
from vault.service import Vault, open_vault

PROCESSES = 4
PER_PROCESS = 200
THREADS = 16


def _worker(settings: Settings, worker: int, start: Any) -> list[int]:
    """One process: its own Vault, THREADS threads, PER_PROCESS acknowledged appends."""
    vault = open_vault(settings, migrate=False)
    try:
        start.wait()

        def one(n: int) -> int:
            def unit(_s: Any, ledger: Any) -> int:
                return int(ledger.append("KEY_ROTATED", worker=worker, n=n).seq)

            # Half the units with a savepoint, half without: both paths of the sequencer.
            return vault.sequencer.run(unit, savepoint=bool(n % 2), timeout=120)

        with ThreadPoolExecutor(THREADS) as ex:
            return list(ex.map(one, range(PER_PROCESS)))
    finally:
        vault.close()


def test_concurrent_appends_from_several_processes_stay_dense_and_consistent(
    settings: Settings, vault: Vault
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(PROCESSES) as pool:
        pending = [pool.apply_async(_worker, (settings, w, start)) for w in range(PROCESSES)]
        start.set()
        acked = [p.get(timeout=300) for p in pending]

    with vault.read() as s:
        rows = s.execute(
            select(
                LedgerEntry.seq, LedgerEntry.entry, LedgerEntry.leaf_hash, LedgerEntry.chain
            ).order_by(LedgerEntry.seq)
        ).all()
    n = PROCESSES * PER_PROCESS
    assert [r.seq for r in rows] == list(range(n))  # dense, no gap, no duplicate
    chain = ZERO_CHAIN
    seen: dict[tuple[int, int], int] = {}
    for r in rows:
        body = parse_entry(bytes(r.entry))
        assert body["seq"] == r.seq
        assert leaf_hash(bytes(r.entry)) == bytes(r.leaf_hash)
        chain = chain_next(chain, bytes(r.leaf_hash))
        assert chain == bytes(r.chain), f"chain breaks at {r.seq}"
        seen[(body["worker"], body["n"])] = r.seq
    # Every acknowledged index holds that process's entry, and nothing else exists.
    for w, seqs in enumerate(acked):
        assert [seen[(w, i)] for i in range(PER_PROCESS)] == seqs
    assert len(seen) == n

    hashes = [bytes(r.leaf_hash) for r in rows]
    root = root_from_leaf_hashes(hashes)
    with vault.read() as s:
        stored = {
            (t.level, t.idx, t.width, bytes(t.data))
            for t in s.execute(select(LedgerTile)).scalars()
        }
    assert proofs.root_at(vault, n) == root
    report = rebuild_tiles(vault)
    assert report.root_hash == root
    with vault.read() as s:
        rebuilt = {
            (t.level, t.idx, t.width, bytes(t.data))
            for t in s.execute(select(LedgerTile)).scalars()
        }
    assert stored == rebuilt
