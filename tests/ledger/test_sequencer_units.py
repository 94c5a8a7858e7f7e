"""The group-commit sequencer's unit semantics, on both profiles (embedded SQLite and
PostgreSQL): event-loop appenders, per-unit isolation inside a batch, timeouts, hooks."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import func, select

from vault.db.models import LedgerEntry, Setting
from vault.errors import DatabaseUnavailable
from vault.ledger.entries import ZERO_CHAIN, chain_next, leaf_hash
from vault.ledger.sequencer import BatchStats
from vault.service import Vault


def _append(_s: Any, ledger: Any) -> int:
    return int(ledger.append("KEY_ROTATED", key="test", version=0).seq)


def _check_dense_chain(vault: Vault) -> int:
    with vault.read() as s:
        rows = s.execute(
            select(
                LedgerEntry.seq, LedgerEntry.entry, LedgerEntry.leaf_hash, LedgerEntry.chain
            ).order_by(LedgerEntry.seq)
        ).all()
    prev = ZERO_CHAIN
    for i, (seq, entry, lh, chain) in enumerate(rows):
        assert seq == i
        assert bytes(lh) == leaf_hash(bytes(entry))
        prev = chain_next(prev, bytes(lh))
        assert bytes(chain) == prev
    return len(rows)


def test_event_loop_appenders_get_dense_indexes_and_one_chain(vault: Vault) -> None:
    before = _check_dense_chain(vault)

    async def main() -> list[int]:
        async def writer() -> list[int]:
            return [await vault.sequencer.run_async(_append) for _ in range(5)]

        results = await asyncio.gather(*(writer() for _ in range(32)))
        return [i for r in results for i in r]

    seqs = asyncio.run(main())
    assert sorted(seqs) == list(range(before, before + 160))
    assert _check_dense_chain(vault) == before + 160


def test_a_failing_unit_does_not_sink_its_batch(vault: Vault) -> None:
    """Units submitted together share one transaction; the one that raises is rolled
    back to its savepoint (its rows and entries gone), the others commit."""
    gate = threading.Event()
    started = threading.Event()

    def hold(_s: Any, _ledger: Any) -> None:
        started.set()
        gate.wait(10)

    def good(_s: Any, ledger: Any) -> int:
        return int(ledger.append("KEY_ROTATED", key="good", version=1).seq)

    marker = "unit-failure-" + uuid.uuid4().hex

    def bad(s: Any, ledger: Any) -> None:
        ledger.append("KEY_ROTATED", key="bad", version=2)
        s.add(Setting(key=marker, value="x", updated_at=vault.clock.now()))
        s.flush()
        raise ValueError("this unit's own failure")

    blocker = vault.sequencer.submit(hold)
    assert started.wait(10)
    futs: list[Future[Any]] = [vault.sequencer.submit(good), vault.sequencer.submit(bad)]
    futs.append(vault.sequencer.submit(good))
    gate.set()
    blocker.result(timeout=30)
    a = futs[0].result(timeout=30)
    with pytest.raises(ValueError, match="own failure"):
        futs[1].result(timeout=30)
    b = futs[2].result(timeout=30)
    assert b == a + 1  # the failed unit's entry left no hole
    with vault.read() as s:
        assert s.scalar(select(func.count()).where(Setting.key == marker)) == 0
    _check_dense_chain(vault)


@pytest.mark.parametrize("waiter", ["thread", "event-loop"])
def test_unit_cancelled_on_timeout_never_commits(vault: Vault, waiter: str) -> None:
    """A caller told 503 after a timeout must not see its unit commit later."""
    gate = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def slow(_s: Any, _ledger: Any) -> None:
        started.set()
        gate.wait(10)

    def late(_s: Any, ledger: Any) -> None:
        ran.append("late")
        ledger.append("KEY_ROTATED", key="late", version=0)

    blocker = vault.sequencer.submit(slow)
    assert started.wait(10)  # the writer is busy: the next unit waits in the queue
    with pytest.raises(DatabaseUnavailable):
        if waiter == "thread":
            vault.sequencer.run(late, timeout=0.2)
        else:
            asyncio.run(vault.sequencer.run_async(late, timeout=0.2))
    gate.set()
    blocker.result(timeout=30)
    vault.sequencer.run(lambda _s, _l: None)  # the writer has drained its queue
    assert ran == []


def test_observers_see_each_durable_batch(vault: Vault) -> None:
    seen: list[BatchStats] = []
    vault.sequencer.observers.append(seen.append)
    try:
        vault.sequencer.run(_append)
    finally:
        vault.sequencer.observers.remove(seen.append)
    assert seen and seen[-1].entries == 1 and seen[-1].units == 1
    assert seen[-1].commit_seconds >= 0
    assert vault.sequencer.queue_depth >= 0
