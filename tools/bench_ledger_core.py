"""Benchmark the pure ledger core: tile building, proof generation and verification.

Builds an in-memory C2SP tile store (MemoryTileSource) with TileBuilder for logs of
10k, 1M and 10M synthetic leaf hashes, then times inclusion and consistency proof
generation through TiledNodeReader (warm tile cache, and cold: fresh cache per
proof) and proof verification, at random indexes. Prints a table; asserts nothing.

    .venv/bin/python tools/bench_ledger_core.py [--sizes 10000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable

from vault.ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from vault.ledger.tiles import MemoryTileSource, TileBuilder, TileCache, TiledNodeReader

BATCH = 1 << 16


def build(size: int, seed: int) -> tuple[MemoryTileSource, TileBuilder, float]:
    rng = random.Random(seed)
    src = MemoryTileSource()
    builder = TileBuilder()
    t0 = time.perf_counter()
    done = 0
    last_report = t0
    while done < size:
        n = min(BATCH, size - done)
        blob = rng.randbytes(32 * n)  # synthetic leaf hashes
        leaves = [blob[i : i + 32] for i in range(0, 32 * n, 32)]
        update = builder.append(leaves)
        src.write(update.tiles)
        builder = update.builder
        done += n
        now = time.perf_counter()
        if now - last_report > 2:
            rate = done / (now - t0)
            print(f"  built {done:>11,} / {size:,} leaves ({rate:,.0f}/s)", file=sys.stderr)
            last_report = now
    return src, builder, time.perf_counter() - t0


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def us(samples: list[float]) -> str:
    med = statistics.median(samples) * 1e6
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1] * 1e6
    return f"{med:8.1f} / {p99:8.1f}"


def bench(size: int, queries: int, seed: int) -> dict[str, str]:
    print(f"building {size:,} leaves ...", file=sys.stderr)
    src, builder, build_s = build(size, seed)
    root = builder.root()
    gc.collect()
    gc.freeze()  # the tile store is long-lived: keep it out of GC pauses while timing
    rng = random.Random(seed + 1)
    idx = [rng.randrange(size) for _ in range(queries)]
    olds = [rng.randrange(1, size + 1) for _ in range(queries)]
    leaf = {i: src.tile(0, i // 256, min(256, size - (i // 256) * 256)) for i in idx}

    cache = TileCache(capacity=200_000)
    reader = TiledNodeReader(src, size, cache)
    for i, s1 in zip(idx, olds, strict=True):  # warm the cache
        inclusion_proof(reader, i, size)
        consistency_proof(reader, s1, size)

    it_i = iter(idx * 2)
    incl = timed(lambda: inclusion_proof(reader, next(it_i), size), queries)
    it_c = iter(olds * 2)
    cons = timed(lambda: consistency_proof(reader, next(it_c), size), queries)

    reads: list[int] = []

    def cold_incl() -> None:
        c = TileCache(capacity=64)
        inclusion_proof(TiledNodeReader(src, size, c), rng.randrange(size), size)
        reads.append(c.misses)

    cold = timed(cold_incl, min(queries, 300))

    proofs = []
    for i in idx[:200]:
        off = (i % 256) * 32
        lh = leaf[i][off : off + 32]
        proofs.append((lh, i, inclusion_proof(reader, i, size)))
    it_v = iter(proofs * 10)

    def v_incl() -> None:
        lh, i, p = next(it_v)
        verify_inclusion(lh, i, size, p, root)

    vincl = timed(v_incl, min(queries, 2000))

    cons_cases = []
    for s1 in olds[:50]:
        r1 = root_at(TiledNodeReader(src, s1, cache), s1)  # old checkpoint root, from tiles
        cons_cases.append((s1, consistency_proof(reader, s1, size), r1))
    it_vc = iter(cons_cases * 100)

    def v_cons() -> None:
        s1, p, r1 = next(it_vc)
        verify_consistency(s1, size, p, r1, root)

    vcons = timed(v_cons, min(queries, 2000))
    return {
        "size": f"{size:,}",
        "build": f"{build_s:7.1f} s ({size / build_s / 1e3:,.0f}k/s)",
        "tiles": f"{len(src):,}",
        "incl gen warm": us(incl),
        "cons gen warm": us(cons),
        "incl gen cold": us(cold),
        "tile reads cold": f"{statistics.mean(reads):.1f}",
        "incl verify": us(vincl),
        "cons verify": us(vcons),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,1000000,10000000")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    rows = [bench(int(s), args.queries, args.seed) for s in args.sizes.split(",")]
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("times in microseconds: median / p99")
    print(" | ".join(c.ljust(widths[c]) for c in cols))
    print("-|-".join("-" * widths[c] for c in cols))
    for r in rows:
        print(" | ".join(r[c].ljust(widths[c]) for c in cols))


if __name__ == "__main__":
    main()
