"""Throughput of the OVB1 envelope against the raw AES-256-GCM primitive.

Run: ``.venv/bin/python tools/bench_crypto.py [--seconds 1.0]``

For each buffer size it measures, on the same buffer in the same run:

* raw   -- one ``AESGCM.encrypt_into`` over the whole buffer into a preallocated
           output (the ceiling: no chunking, no allocation, no Python per chunk);
* encrypt / decrypt -- ``encrypt_stream`` / ``decrypt_stream`` with the default
  chunk size, the source given as one piece and the output consumed (not joined).

and prints MB/s (10^6 bytes per second), each as % of raw, and the goals:
envelope >= 50 % of raw at 64 MB, and >= 500 MB/s at 100 KB. It also sweeps the
chunk size at 64 MB (the figures behind DEFAULT_CHUNK_SIZE) and times one Argon2id
hash at the default parameters. Figures, never assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto.envelope import (
    DEFAULT_CHUNK_SIZE,
    EncryptionContext,
    decrypt_stream,
    encrypt_stream,
)
from vault.crypto.passwords import DEFAULT_PARAMS, hash_password

ANCHOR = "AWS Encryption SDK for Python: 161 MB/s measured on this machine class"


def rate(size: int, fn: Callable[[], object], seconds: float) -> float:
    """Best-of-3 MB/s of ``fn`` processing ``size`` bytes, each round >= seconds/3."""
    fn()  # warm up (allocator, caches)
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 3:
                break
        best = max(best, size * n / elapsed / 1e6)
    return best


def drain(it: Iterable[bytes]) -> None:
    for _ in it:
        pass


def measure(
    key: bytes, ctx: EncryptionContext, data: bytes, seconds: float, chunk: int
) -> tuple[float, float, float]:
    """(raw, envelope encrypt, envelope decrypt) MB/s on the same buffer."""
    raw, nonce, out = AESGCM(key), os.urandom(12), bytearray(len(data) + 16)
    ciphertext = b"".join(encrypt_stream(key, ctx, [data], chunk_size=chunk))
    r_raw = rate(len(data), lambda: raw.encrypt_into(nonce, data, None, out), seconds)
    r_enc = rate(
        len(data), lambda: drain(encrypt_stream(key, ctx, [data], chunk_size=chunk)), seconds
    )
    r_dec = rate(len(data), lambda: drain(decrypt_stream(key, ctx, [ciphertext])), seconds)
    return r_raw, r_enc, r_dec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()

    key = AESGCM.generate_key(256)
    ctx = EncryptionContext(str(uuid.uuid4()), str(uuid.uuid4()), 1)

    print(f"chunk size {DEFAULT_CHUNK_SIZE} bytes; MB = 10^6 bytes; best of 3")
    header = (
        f"{'size':>8} | {'raw MB/s':>9} | {'encrypt':>8} {'%raw':>5} | {'decrypt':>8} {'%raw':>5}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for label, size in (("100 KB", 100_000), ("64 MB", 64_000_000)):
        data = os.urandom(size)
        r_raw, r_enc, r_dec = measure(key, ctx, data, args.seconds, DEFAULT_CHUNK_SIZE)
        print(
            f"{label:>8} | {r_raw:9.0f} | {r_enc:8.0f} {100 * r_enc / r_raw:4.0f}% "
            f"| {r_dec:8.0f} {100 * r_dec / r_raw:4.0f}%"
        )
        if size == 100_000:
            ok = min(r_enc, r_dec) >= 500
            verdicts.append(f"goal >= 500 MB/s at 100 KB: {'MET' if ok else 'MISSED'}")
        else:
            ok = min(r_enc, r_dec) >= 0.5 * r_raw
            verdicts.append(f"goal >= 50% of raw at 64 MB: {'MET' if ok else 'MISSED'}")
    print()
    for line in verdicts:
        print(line)
    print(f"reference: {ANCHOR}")

    print()
    print("chunk size sweep at 64 MB (raw / encrypt / decrypt MB/s):")
    data = os.urandom(64_000_000)
    for chunk in (64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20):
        r_raw, r_enc, r_dec = measure(key, ctx, data, args.seconds, chunk)
        print(f"  {chunk >> 10:>6} KiB: {r_raw:6.0f} / {r_enc:6.0f} / {r_dec:6.0f}")

    start = time.perf_counter()
    hash_password("benchmark password", DEFAULT_PARAMS)
    elapsed = (time.perf_counter() - start) * 1000
    print()
    print(
        f"Argon2id opslimit={DEFAULT_PARAMS.opslimit} "
        f"memlimit={DEFAULT_PARAMS.memlimit >> 20} MiB: {elapsed:.0f} ms per hash"
    )


if __name__ == "__main__":
    main()
