"""Crash harness: SIGKILL the real server under load, restart, check nothing acknowledged is lost.

Issue 8, item 1. The server runs as a real subprocess (``python -m vault.cli serve``)
on a free port with its own data directory. Each round:

1. restart the server; every document acknowledged in earlier rounds and not yet
   checked is downloaded by its applicant (it must be readable);
2. threads post PDFs (agent), open documents (applicants) and sweep (``sweep
   notifications`` / ``sweep blobs`` CLI, default grace) concurrently;
3. at a random point the server gets ``SIGKILL`` (no graceful shutdown, no flush);
4. with the server down the invariants are checked:
   - every acknowledged posting (201/200 seen by the client) has its document row and
     its ``POSTED`` ledger entry, and its blob exists;
   - ``ofpra-vault ledger verify --json`` exits 0;
   - ledger sequence numbers have no gap;
   - exactly one ``FIRST_ACCESS`` for each document the client opened successfully,
     at most one ``FIRST_ACCESS`` and at most one ``NOTIFIED`` for every document;
   - after ``ofpra-vault sweep blobs`` with ``VAULT_BLOB_SWEEP_GRACE_SECONDS=0`` (only
     ever with the server stopped: an in-flight post's blob is younger than the
     grace period by design) no orphan blob is left and no row points at a missing
     blob.

    python tools/crash_test.py --rounds 200                         # embedded
    python tools/crash_test.py --rounds 200 --profile production \
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres     # + VAULT_S3_* env

Production sealing and time stamps use the in-process test TSA (``VAULT_TSA_URL``
empty), so ``ledger verify`` checks them against the generated test root.
Exit status 0 only when no invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "vault.cli"]


def small_pdf(text: str) -> bytes:
    """A valid one-page PDF (the posting path validates and seals it)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1,
        xref,
    )
    return bytes(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Applicant:
    account_id: str
    token: str


@dataclass
class Stats:
    rounds: int = 0
    kills: int = 0
    acked: int = 0
    opens: int = 0
    sweeps: int = 0
    reads_after_restart: int = 0
    post_errors: int = 0
    violations: list[str] = field(default_factory=list)


class Harness:
    def __init__(self, profile: str, pg_url: str, seed: int, verbose: bool) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.verbose = verbose
        self.work = Path(tempfile.mkdtemp(prefix=f"vault-crash-{profile}-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "VAULT_DATA_DIR": str(self.work / "data"),
            "VAULT_BACKGROUND_TASKS": "false",
            "VAULT_ARGON2_OPSLIMIT": "1",
            "VAULT_ARGON2_MEMLIMIT": "65536",
            "VAULT_PORT": str(self.port),
            "VAULT_HOST": "127.0.0.1",
        }
        self.db_name = ""
        self.pg_url = pg_url
        if profile == "production":
            import psycopg

            from vault.crypto.keys import KeyRing

            self.db_name = "vault_crash_" + uuid.uuid4().hex[:8]
            with psycopg.connect(pg_url, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{self.db_name}"')
            (self.work / "data").mkdir(mode=0o700)
            KeyRing.generate(self.work / "data" / "keyring.json")
            self.env.update(
                VAULT_PROFILE="production",
                VAULT_DATABASE_URL=pg_url.rsplit("/", 1)[0] + "/" + self.db_name,
                VAULT_BLOB_STORE="s3",
                VAULT_S3_BUCKET="crash-" + uuid.uuid4().hex[:8],
                VAULT_KEYRING_FILE=str(self.work / "data" / "keyring.json"),
            )
        self.server: subprocess.Popen[bytes] | None = None
        self.stats = Stats()
        self.lock = threading.Lock()
        self.acked: dict[str, str] = {}  # document_id -> account_id (acknowledged)
        self.unread: list[str] = []  # acknowledged, not yet read back after a restart
        self.opened: set[str] = set()  # opened successfully (200 + every byte)
        self.applicants: list[Applicant] = []
        self.agent = ""
        self.seq = 0
        self.cli_every = 0
        self.started_once = False
        self.killed_at = 0.0

    # --- setup / server ---------------------------------------------------------
    def cli(
        self, *args: str, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra or {})}
        return subprocess.run(
            [*CLI, *args], env=env, capture_output=True, text=True, cwd=ROOT, check=False
        )

    def setup(self, applicants: int) -> None:
        r = self.cli("migrate")
        if r.returncode:
            raise SystemExit(f"migrate failed: {r.stderr}")
        if self.profile == "production":
            from vault.config import load_settings
            from vault.service import make_blob_store

            make_blob_store(load_settings(self.env)).ensure_bucket()  # type: ignore[attr-defined]
        r = self.cli("staff", "create", "--role", "agent", "--name", "crash harness")
        if r.returncode:
            raise SystemExit(f"staff create failed: {r.stderr}")
        self.agent = r.stdout.strip()
        self.start()
        h = {"Authorization": f"Bearer {self.agent}"}
        with httpx.Client(base_url=self.base, timeout=30) as c:
            for i in range(applicants):
                agdref = f"{self.rng.randrange(10**9, 10**10)}"
                reg = {
                    "agdref": agdref,
                    "guda": "Rennes",
                    "registered_on": "2026-02-20",
                    "procedure": "normal",
                    "structure_id": "SPADA-35",
                    "ofpra_number": f"OFPRA-CRASH-{uuid.uuid4().hex[:8]}-{i}",
                }
                acc = c.post("/api/v1/accounts", json=reg, headers=h)
                acc.raise_for_status()
                tok = c.post(
                    "/api/v1/auth/first-connection",
                    json={
                        "agdref": agdref,
                        "connection_key": acc.json()["connection_key"],
                        "password": "a long crash harness password",
                    },
                )
                tok.raise_for_status()
                self.applicants.append(Applicant(acc.json()["account_id"], tok.json()["token"]))

    def start(self) -> None:
        log = (self.work / "server.log").open("ab")
        # The first start is `ofpra-vault serve` itself; restarts run the very command
        # `serve` exec()s into (uvicorn on the app factory), which skips re-importing
        # the CLI and halves the restart time without changing the serving process.
        cmd = [*CLI, "serve", "--port", str(self.port)]
        if self.started_once:
            cmd = [
                sys.executable, "-m", "uvicorn", "api.app:app_from_env", "--factory",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                "--no-access-log",
            ]  # fmt: skip
        self.started_once = True
        self.server = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"server exited: see {self.work / 'server.log'}")
            try:
                if httpx.get(self.base + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit("server not ready after 240 s")

    def kill(self) -> None:
        assert self.server is not None
        # `serve` exec()s uvicorn in the same process, so this pid is the server.
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.wait(timeout=30)
        self.killed_at = time.monotonic()
        self.server = None
        self.stats.kills += 1

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait(timeout=30)
            self.server = None

    # --- traffic ----------------------------------------------------------------
    def poster(self, stop: threading.Event) -> None:
        h = {"Authorization": f"Bearer {self.agent}", "Content-Type": "application/pdf"}
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not stop.is_set():
                app = self.rng.choice(self.applicants)
                with self.lock:
                    self.seq += 1
                    n = self.seq
                try:
                    r = c.post(
                        f"/api/v1/accounts/{app.account_id}/documents",
                        params={"type": "DECISION", "title": f"crash {n}"},
                        headers={**h, "Idempotency-Key": f"crash-{uuid.uuid4().hex}"},
                        content=small_pdf(f"crash harness document {n}"),
                    )
                except httpx.HTTPError:
                    continue  # killed mid-request: not acknowledged, may or may not exist
                if r.status_code in (200, 201):
                    with self.lock:
                        doc = r.json()["document_id"]
                        self.acked[doc] = app.account_id
                        self.unread.append(doc)
                        self.stats.acked += 1
                else:
                    with self.lock:
                        self.stats.post_errors += 1

    def read(self, c: httpx.Client, doc: str) -> int:
        app = next(a for a in self.applicants if a.account_id == self.acked[doc])
        r = c.get(
            f"/api/v1/me/documents/{doc}/content",
            headers={"Authorization": f"Bearer {app.token}"},
        )
        if r.status_code == 200 and len(r.content) == int(r.headers["content-length"]):
            with self.lock:
                self.opened.add(doc)
        return r.status_code

    def opener(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not stop.is_set():
                with self.lock:
                    docs = list(self.acked)
                if not docs:
                    time.sleep(0.02)
                    continue
                try:
                    if self.read(c, self.rng.choice(docs)) == 200:
                        with self.lock:
                            self.stats.opens += 1
                except httpx.HTTPError:
                    continue

    def sweeper(self, stop: threading.Event) -> None:
        """Sweep from another process than the server, as ``ofpra-vault sweep`` would
        (same functions, default grace period), concurrently with posts and opens."""
        from vault.documents import sweep_blobs
        from vault.notify import sweep_notifications

        with self.offline_vault() as vault:
            while not stop.is_set():
                try:
                    if self.rng.random() < 0.5:
                        sweep_notifications(vault)
                    else:
                        sweep_blobs(vault)
                    self.stats.sweeps += 1
                except Exception:  # noqa: BLE001 -- a sweep may lose a race with the kill
                    time.sleep(0.05)
                time.sleep(0.05)

    # --- rounds -----------------------------------------------------------------
    def round(self, posters: int, openers: int) -> None:
        t0 = time.monotonic()
        self.start()
        if self.verbose:
            print(f"  server ready in {time.monotonic() - t0:.1f} s", flush=True)
        # Every posting acknowledged before the last kill must be readable by its
        # applicant now that the server is back.
        with self.lock:
            pending, self.unread = self.unread, []
        with httpx.Client(base_url=self.base, timeout=30) as c:
            for doc in pending:
                status = self.read(c, doc)
                self.stats.reads_after_restart += 1
                if status != 200:
                    self.stats.violations.append(
                        f"round {self.stats.rounds}: acknowledged {doc} unreadable ({status})"
                    )
        stop = threading.Event()
        threads = [threading.Thread(target=self.poster, args=(stop,)) for _ in range(posters)]
        threads += [threading.Thread(target=self.opener, args=(stop,)) for _ in range(openers)]
        threads.append(threading.Thread(target=self.sweeper, args=(stop,)))
        for t in threads:
            t.start()
        # Kill at a random point once traffic flows (at least one posting acknowledged
        # in this round, or 60 s gone), so a slow machine cannot make rounds idle.
        acked_before, deadline = self.stats.acked, time.monotonic() + 60
        while self.stats.acked == acked_before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(self.rng.uniform(0.0, 2.0))
        self.kill()
        stop.set()
        for t in threads:
            t.join()
        self.stats.rounds += 1
        self.check(cli=bool(self.cli_every) and self.stats.rounds % self.cli_every == 0)

    @contextmanager
    def offline_vault(self, **extra: str) -> Iterator[Any]:
        from vault.config import load_settings
        from vault.service import open_vault

        v = open_vault(load_settings({**self.env, **extra}), migrate=False)
        try:
            yield v
        finally:
            v.close()

    def check(self, cli: bool = False) -> None:
        from sqlalchemy import func, select

        from vault.db.models import Document, LedgerEntry
        from vault.documents import sweep_blobs
        from vault.ledger.verify import verify_ledger

        r = f"round {self.stats.rounds}"
        bad = self.stats.violations
        # S3 (Swift) reports LastModified rounded to the second: a blob written just
        # before the kill can look younger than "now", so even a grace of 0 would keep
        # it as recent. Two seconds after the kill every in-flight blob is old enough.
        time.sleep(max(0.0, self.killed_at + 2.0 - time.monotonic()))
        if cli:
            # The real commands, as an operator runs them (slow: one process each).
            v = self.cli("ledger", "verify", "--json")
            if v.returncode:
                bad.append(f"{r}: ledger verify failed: {(v.stdout + v.stderr)[-400:]}")
            # Grace 0 is only safe with the server stopped (no post in flight).
            sw = self.cli("sweep", "blobs", "--json", extra={"VAULT_BLOB_SWEEP_GRACE_SECONDS": "0"})
            if sw.returncode:
                bad.append(f"{r}: sweep blobs failed: {sw.stderr[-400:]}")
        else:
            # The same functions the commands call, without paying a process start.
            with self.offline_vault(VAULT_BLOB_SWEEP_GRACE_SECONDS="0") as vault:
                report = verify_ledger(vault)
                if not report.ok:
                    bad.append(f"{r}: ledger verify failed: {report.summary()[-400:]}")
                sweep_blobs(vault)
        with self.offline_vault() as vault, vault.read() as s:
            seqs = list(s.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)))
            if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                bad.append(f"{r}: ledger sequence gap in {seqs[0]}..{seqs[-1]}")
            docs = {d.id: d for d in s.scalars(select(Document))}
            counts: dict[tuple[str, str], int] = {
                (doc, typ): n
                for doc, typ, n in s.execute(
                    select(LedgerEntry.document_id, LedgerEntry.type, func.count())
                    .where(LedgerEntry.document_id.is_not(None))
                    .group_by(LedgerEntry.document_id, LedgerEntry.type)
                )
            }
            with self.lock:
                acked = dict(self.acked)
                opened = set(self.opened)
            for doc, account in acked.items():
                d = docs.get(doc)
                if d is None or d.account_id != account:
                    bad.append(f"{r}: acknowledged {doc} has no document row")
                if counts.get((doc, "POSTED"), 0) != 1:
                    bad.append(f"{r}: acknowledged {doc} has no POSTED entry")
            for doc in opened:
                if counts.get((doc, "FIRST_ACCESS"), 0) != 1:
                    bad.append(
                        f"{r}: opened {doc} has {counts.get((doc, 'FIRST_ACCESS'), 0)} FIRST_ACCESS"
                    )
            for (doc, typ), n in counts.items():
                if typ in ("POSTED", "FIRST_ACCESS", "NOTIFIED") and n > 1:
                    bad.append(f"{r}: {doc} has {n} {typ}")
            for doc, d in docs.items():
                if not vault.blobs.exists(d.blob_name):
                    bad.append(f"{r}: document {doc} points at a missing blob")
            names = [b.name for b in vault.blobs.list("")]
            used = {d.blob_name for d in docs.values()}
            used |= set(vault.extras.get("referenced_blobs", lambda _s, _n: set())(s, names))
            orphans = [n for n in names if n not in used]
            if orphans:
                bad.append(f"{r}: {len(orphans)} orphan blob(s) after sweep, e.g. {orphans[0]}")
            self.n_docs, self.n_entries, self.n_blobs = len(docs), len(seqs), len(names)
        if self.verbose:
            print(
                f"{r}: acked {self.stats.acked} docs {self.n_docs} entries {self.n_entries} "
                f"blobs {self.n_blobs} violations {len(bad)}",
                flush=True,
            )

    def cleanup(self) -> None:
        self.stop()
        if self.db_name:
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def run(
    profile: str,
    rounds: int,
    pg_url: str,
    seed: int,
    verbose: bool = False,
    cli_every: int = 0,
    max_seconds: float = 0,
) -> Stats:
    """Run ``rounds`` kill/restart rounds on one profile and return the figures.

    The ``ledger verify`` / ``sweep blobs`` commands run as subprocesses after the
    last round and every ``cli_every`` rounds; the other rounds call the same
    functions in process (a CLI start costs seconds)."""
    t0 = time.monotonic()
    h = Harness(profile, pg_url, seed, verbose)
    h.cli_every = cli_every
    try:
        h.setup(applicants=3)
        h.stop()
        for _ in range(rounds):
            if max_seconds and time.monotonic() - t0 > max_seconds:
                break  # time budget spent: stop cleanly and still run the final check
            h.round(posters=3, openers=2)
        # Final restart: the last round's acknowledged documents must be readable too.
        h.start()
        with httpx.Client(base_url=h.base, timeout=30) as c:
            for doc in h.unread:
                h.stats.reads_after_restart += 1
                if (st := h.read(c, doc)) != 200:
                    h.stats.violations.append(f"final: acknowledged {doc} unreadable ({st})")
        h.unread = []
        h.stop()
        h.check(cli=True)
        return h.stats
    finally:
        h.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--profile", choices=["embedded", "production", "both"], default="embedded")
    ap.add_argument("--pg-url", default=os.environ.get("VAULT_TEST_PG_URL", ""))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--cli-every", type=int, default=10, help="run the CLI checks every N rounds")
    ap.add_argument(
        "--max-seconds", type=float, default=0, help="per-profile time budget (0: none)"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    profiles = ["embedded", "production"] if args.profile == "both" else [args.profile]
    results: dict[str, Stats] = {}
    for p in profiles:
        t = time.monotonic()
        results[p] = run(
            p, args.rounds, args.pg_url, args.seed, args.verbose, args.cli_every, args.max_seconds
        )
        results[p].__dict__["seconds"] = round(time.monotonic() - t, 1)
    if args.json:
        print(json.dumps({p: s.__dict__ for p, s in results.items()}, indent=2))
    else:
        print(f"seed {args.seed}")
        print(
            f"{'profile':<11} {'rounds':>6} {'kills':>5} {'acked':>6} {'opens':>6} "
            f"{'reread':>6} {'sweeps':>6} {'errors':>6} {'violations':>10} {'seconds':>8}"
        )
        for p, s in results.items():
            print(
                f"{p:<11} {s.rounds:>6} {s.kills:>5} {s.acked:>6} {s.opens:>6} "
                f"{s.reads_after_restart:>6} {s.sweeps:>6} {s.post_errors:>6} "
                f"{len(s.violations):>10} "
                f"{s.__dict__['seconds']:>8}"
            )
        for p, s in results.items():
            for line in s.violations[:20]:
                print(f"VIOLATION {p}: {line}")
    return 1 if any(s.violations for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
