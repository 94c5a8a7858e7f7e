"""Benchmark the ledger end to end, side by side with pymerkle 7 on the same machine.

One run prints one table:

* durable appends/s through the real sequencer (group commit, tiles written in the
  same transaction, ``synchronous=FULL`` on SQLite / default ``fsync`` on
  PostgreSQL), with 1 and with 64 concurrent writers, each waiting for its
  acknowledgement before the next append (closed loop); the 64 writers are OS threads
  (``Sequencer.run``), then event-loop tasks (``Sequencer.run_async``);
* pymerkle ``SqliteTree.append_entry`` durable appends/s (one commit per entry);
* the bulk-load rate (entries + tiles written directly in large transactions);
* proof generation from the database (inclusion, consistency), warm tile cache and
  cold (fresh cache per proof: every tile read from the database), and proof
  verification, at 10k, 1M and 10M entries; pymerkle ``prove_inclusion`` /
  ``prove_consistency`` at the same sizes where it is feasible to build.

pymerkle is a dev-only dependency of this tool:
``.venv/bin/uv pip install --python .venv/bin/python 'pymerkle==7.*'``.

    .venv/bin/python tools/bench_ledger.py [--sizes 10000,1000000,10000000]
        [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--pymerkle-max 1000000]
        [--appends 20000] [--proofs 2000]

Asserts nothing: read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault.config import load_settings
from vault.db.models import LedgerEntry
from vault.ledger import proofs
from vault.ledger.entries import ZERO_CHAIN, canonical_entry, chain_next, leaf_hash
from vault.ledger.merkle import verify_consistency, verify_inclusion
from vault.ledger.store import ledger_store, write_tiles
from vault.ledger.tiles import TileBuilder, TileCache
from vault.service import Vault, open_vault

ROWS: list[tuple[str, str, str]] = []  # (what, ours, pymerkle)


def row(what: str, ours: str, anchor: str = "") -> None:
    ROWS.append((what, ours, anchor))
    print(f"  {what:<58} {ours:>16} {anchor:>16}", flush=True)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}/s"


def fmt_ms(x: float) -> str:
    return f"{x * 1e3:.3f} ms"


# --- appends ---------------------------------------------------------------------------


def _pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    name = "bench_ledger_" + uuid.uuid4().hex[:8]
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def open_bench_vault(tmp: Path, database_url: str = "") -> Vault:
    settings = load_settings(
        {}, data_dir=tmp, background_tasks=False, database_url=database_url or ""
    )
    return open_vault(settings, migrate=True)


def _unit(_session: Any, ledger: Any) -> int:
    # A realistic entry: a POSTED event with pseudonymous fields only.
    e = ledger.append(
        "POSTED",
        document_id=str(uuid.uuid4()),
        subject="5e" * 32,
        sha256="c0" * 32,
        doc_type="CONVOCATION",
    )
    return int(e.seq)


def bench_appends(vault: Vault, threads: int, total: int) -> float:
    per = total // threads

    def worker(_: int) -> None:
        for _i in range(per):
            vault.sequencer.run(_unit, savepoint=False, timeout=120)

    vault.sequencer.run(_unit, savepoint=False)  # start the writer thread
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(worker, range(threads)))
    return per * threads / (time.perf_counter() - t0)


def bench_appends_async(vault: Vault, writers: int, total: int) -> float:
    """The same closed loop with event-loop writers (``Sequencer.run_async``): how an
    async request handler waits for its durable append."""
    per = total // writers

    async def main() -> float:
        async def writer() -> None:
            for _i in range(per):
                await vault.sequencer.run_async(_unit, savepoint=False, timeout=120)

        t0 = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        return per * writers / (time.perf_counter() - t0)

    return asyncio.run(main())


def bench_pymerkle_appends(tmp: Path, seconds: float = 3.0) -> float:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(tmp / "pymerkle-appends.db"))
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tree.append_entry(b"entry %d" % n)
        n += 1
    rate = n / (time.perf_counter() - t0)
    tree.close()
    return rate


# --- bulk load and proofs ----------------------------------------------------------------

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _entry_bytes(seq: int) -> bytes:
    # KEY_ROTATED entries carry no document_id, so the load does not pay for the
    # document indexes: what is measured is the log (entries, chain, tiles).
    return (
        b'{"at":"2026-03-01T09:00:00.000000Z","key_version":1,"seq":%d,"type":"KEY_ROTATED","v":1}'
        % seq
    )


def bulk_load(vault: Vault, start: int, end: int, state: dict[str, Any]) -> float:
    """Append entries start..end-1 directly (no sequencer) with their tiles, in large
    transactions. Entries are the exact canonical bytes the vault would write."""
    assert _entry_bytes(7) == canonical_entry("KEY_ROTATED", 7, AT, {"key_version": 1})
    builder: TileBuilder = state.setdefault("builder", TileBuilder())
    chain: bytes = state.setdefault("chain", ZERO_CHAIN)
    chunk = 100_000
    t0 = time.perf_counter()
    last = t0
    seq = start
    while seq < end:
        stop = min(end, seq + chunk)
        rows = []
        hashes = []
        for i in range(seq, stop):
            data = _entry_bytes(i)
            lh = leaf_hash(data)
            chain = chain_next(chain, lh)
            hashes.append(lh)
            rows.append((i, "KEY_ROTATED", data, lh, chain, "2026-03-01 09:00:00.000000"))
        update = builder.append(hashes)
        with vault.write() as s:
            c = s.connection()
            # The raw driver cursor: SQLAlchemy's per-row processing would dominate.
            cur = c.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cur.executemany(
                "INSERT INTO ledger_entries (seq, type, entry, leaf_hash, chain, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            write_tiles(c, update.tiles)
        builder = update.builder
        seq = stop
        now = time.perf_counter()
        if now - last > 5:
            last = now
            rate = (seq - start) / (now - t0)
            print(f"    bulk load {seq:,}/{end:,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    state["builder"], state["chain"] = builder, chain
    ledger_store(vault).writer.forget()
    return (end - start) / (time.perf_counter() - t0)


def _time(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def bench_proofs(vault: Vault, size: int, n: int, rng: random.Random) -> dict[str, float]:
    store = ledger_store(vault)
    idx = [rng.randrange(size) for _ in range(n)]
    olds = [rng.randrange(1, size) for _ in range(n)]
    root = proofs.root_at(vault, size, known_size=size)
    roots_old = {m: proofs.root_at(vault, m, known_size=size) for m in olds}
    with vault.read() as s:
        from sqlalchemy import select

        leaves = {
            i: bytes(h)
            for i, h in s.execute(
                select(LedgerEntry.seq, LedgerEntry.leaf_hash).where(LedgerEntry.seq.in_(idx[:500]))
            )
        }
    out: dict[str, float] = {}
    # Cold: a fresh cache per proof, so every tile comes from the database.
    cold = []
    for i in idx[:200]:
        store.cache = TileCache(capacity=8192)
        t0 = time.perf_counter()
        proofs.inclusion_proof(vault, i, size, known_size=size)
        cold.append(time.perf_counter() - t0)
    out["incl_cold"] = statistics.median(cold)
    store.cache = TileCache(capacity=max(8192, 4 * n))
    for i in idx:  # warm the cache with exactly the tiles these proofs need
        proofs.inclusion_proof(vault, i, size, known_size=size)
    for m in olds:
        proofs.consistency_proof(vault, m, size, known_size=size)
    it = iter(idx * 2)
    out["incl_warm"] = _time(
        lambda: proofs.inclusion_proof(vault, next(it), size, known_size=size), n
    )
    ot = iter(olds * 2)
    out["cons_warm"] = _time(
        lambda: proofs.consistency_proof(vault, next(ot), size, known_size=size), n
    )
    samples = [(i, proofs.inclusion_proof(vault, i, size, known_size=size)) for i in leaves]
    si = iter(samples * 10)

    def vi() -> None:
        i, p = next(si)
        verify_inclusion(leaves[i], i, size, p, root)

    out["incl_verify"] = _time(vi, len(samples))
    csamples = [(m, proofs.consistency_proof(vault, m, size, known_size=size)) for m in olds[:500]]
    ci = iter(csamples * 10)

    def vc() -> None:
        m, p = next(ci)
        verify_consistency(m, size, p, roots_old[m], root)

    out["cons_verify"] = _time(vc, len(csamples))
    return out


def bench_pymerkle_proofs(tmp: Path, size: int, n: int, rng: random.Random) -> dict[str, float]:
    from pymerkle import SqliteTree
    from pymerkle import verify_inclusion as pm_verify

    path = tmp / f"pymerkle-{size}.db"
    tree = SqliteTree(str(path))
    t0 = time.perf_counter()
    tree.append_entries((b"entry %d" % i for i in range(size)), chunksize=100_000)
    build = time.perf_counter() - t0
    idx = [rng.randrange(1, size + 1) for _ in range(n)]
    olds = [rng.randrange(1, size) for _ in range(n)]
    out = {"build_rate": size / build}
    it = iter(idx)
    out["incl"] = _time(lambda: tree.prove_inclusion(next(it), size), n)
    ot = iter(olds)
    out["cons"] = _time(lambda: tree.prove_consistency(next(ot), size), n)
    root = tree.get_state(size)
    i = idx[0]
    proof = tree.prove_inclusion(i, size)
    base = tree.get_leaf(i)
    out["incl_verify"] = _time(lambda: pm_verify(base, root, proof), 200)
    tree.close()
    return out


# --- main ------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,1000000,10000000")
    ap.add_argument("--pg-url", default=os.environ.get("VAULT_TEST_PG_URL", ""))
    ap.add_argument("--pymerkle-max", type=int, default=1_000_000)
    ap.add_argument("--appends", type=int, default=20_000, help="appends per 64-writer run")
    ap.add_argument("--proofs", type=int, default=2000, help="proofs per measurement")
    ap.add_argument("--skip-appends", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rng = random.Random(2026)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    # The GIL switch interval `serve` sets (VAULT_GIL_SWITCH_INTERVAL_MS), so the
    # writer thread competes for the GIL as it does in the server.
    switch_ms = load_settings({}, data_dir=tmp).gil_switch_interval_ms
    sys.setswitchinterval(switch_ms / 1000)
    print(
        f"bench_ledger: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, tmp {tmp}, "
        f"GIL switch interval {switch_ms} ms (as serve), load {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'measure':<58} {'ofpra-vault':>16} {'pymerkle 7':>16}")

    if not args.skip_appends:
        try:
            pm = bench_pymerkle_appends(tmp)
        except ImportError:
            pm = float("nan")
        for label, url_fn in (
            ("embedded (SQLite WAL, synchronous=FULL)", None),
            ("production (PostgreSQL)", args.pg_url),
        ):
            drop: Callable[[], None] | None = None
            url = ""
            if url_fn is not None:
                if not url_fn:
                    row(f"appends, {label}", "skipped: no --pg-url")
                    continue
                url, drop = _pg_database(url_fn)
            d = tmp / ("ap-" + uuid.uuid4().hex[:6])
            v = open_bench_vault(d, url)
            try:
                r1 = bench_appends(v, 1, min(2000, args.appends))
                row(f"durable appends/s, 1 writer, {label}", fmt_rate(r1), fmt_rate(pm))
                for kind, fn in (
                    ("threads", bench_appends),
                    ("event-loop tasks", bench_appends_async),
                ):
                    u0, b0 = v.sequencer.units, v.sequencer.batches
                    r64 = fn(v, 64, args.appends)
                    u, b = v.sequencer.units - u0, v.sequencer.batches - b0
                    row(f"durable appends/s, 64 writers ({kind}), {label}", fmt_rate(r64), "")
                    print(f"    ({u} units in {b} group commits, {u / max(b, 1):.1f} per commit)")
            finally:
                v.close()
                if drop:
                    drop()

    v = open_bench_vault(tmp / "proofs")
    state: dict[str, Any] = {}
    loaded = 0
    try:
        for size in sizes:
            rate = bulk_load(v, loaded, size, state)
            loaded = size
            pm_row: dict[str, float] = {}
            if size <= args.pymerkle_max:
                try:
                    pm_row = bench_pymerkle_proofs(tmp, size, min(args.proofs, 200), rng)
                except ImportError:
                    pm_row = {}
            row(
                f"bulk load entries+tiles, up to {size:,}",
                fmt_rate(rate),
                fmt_rate(pm_row["build_rate"]) if pm_row else "not built",
            )
            r = bench_proofs(v, size, args.proofs, rng)
            na = "n/a (too slow to build)" if not pm_row else ""
            row(
                f"inclusion proof @ {size:,}, warm cache",
                fmt_ms(r["incl_warm"]),
                fmt_ms(pm_row["incl"]) if pm_row else na,
            )
            row(f"inclusion proof @ {size:,}, cold (tiles from DB)", fmt_ms(r["incl_cold"]), "")
            row(
                f"consistency proof @ {size:,}, warm cache",
                fmt_ms(r["cons_warm"]),
                fmt_ms(pm_row["cons"]) if pm_row else na,
            )
            row(
                f"verify inclusion @ {size:,}",
                fmt_ms(r["incl_verify"]),
                fmt_ms(pm_row["incl_verify"]) if pm_row else na,
            )
            row(f"verify consistency @ {size:,}", fmt_ms(r["cons_verify"]), "")
    finally:
        v.close()

    print("\n| measure | ofpra-vault | pymerkle 7 |\n|---|---:|---:|")
    for what, ours, anchor in ROWS:
        print(f"| {what} | {ours} | {anchor} |")


if __name__ == "__main__":
    main()
