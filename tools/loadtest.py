"""Load test of a real ``ofpra-vault serve`` (issue 9): latency percentiles per endpoint.

    .venv/bin/python tools/loadtest.py --profile embedded --duration 30
    eval "$(bash scripts/s3-server.sh env)"
    .venv/bin/python tools/loadtest.py --profile production --workers 2 \
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres --duration 30

What it does, in order:

1. builds a fresh deployment in ``--workdir``: embedded (SQLite + filesystem), or
   production (a fresh PostgreSQL database, a fresh bucket on the S3 server named by
   ``VAULT_S3_*``, a key ring, the test PKI's seal as PKCS#12 and an HTTP TSA on the
   wall clock, both clearly test material);
2. starts ``ofpra-vault serve --workers N`` as a subprocess and waits for
   ``/health/ready``;
3. seeds through the HTTP API: an agent and a legal token (``staff create``),
   applicant accounts (created, first connection), the 1 MB documents for the
   first-open scenario (rate x duration of them, never opened), small documents
   opened once (for proof exports);
4. runs each scenario with Locust (tools/loadtest_locustfile.py), headless, one at a
   time, at its offered rate (open loop: Poisson arrivals, users = rate / per-user
   rate, each user a Poisson process started at a random instant; response times to
   the last byte of the body), then, with ``--saturate``, closed-loop with no think
   time to find the saturation throughput;
5. prints one table: p50 / p95 / p99 (ms), achieved throughput, error rate, next to
   the offered rate and the issue's goals; writes it as JSON too (``--out``);
6. on PostgreSQL, runs ``ofpra-vault ledger verify`` (no gaps after concurrent
   workers) and reports its verdict.

The server's per-address login throttle is raised (``VAULT_AUTH_IP_PER_MINUTE``):
every virtual user comes from 127.0.0.1. Locust runs on the same machine as the
server, so figures are for client and server sharing the cores: say so with them.
No figure here is asserted anywhere: this is a measurement tool, not a test.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LOCUSTFILE = Path(__file__).with_name("loadtest_locustfile.py")
#: First-open documents per seeded owner (an asylum file holds a handful to a few dozen).
OPEN_DOCS_PER_OWNER = 20
PASSWORD = "correct horse battery staple"  # noqa: S105 -- throwaway test accounts

#: scenario -> (Locust class, default offered rate req/s, per-user rate, goal text)
SCENARIOS: dict[str, tuple[str, float, float, str]] = {
    "open": ("OpenFirst", 100.0, 1.0, "p99 <= 50 ms at 100 opens/s"),
    "list": ("ListDocuments", 200.0, 2.0, "p99 <= 20 ms at 200 req/s"),
    "login": ("Login", 5.0, 0.5, "(no goal; Argon2id-bound)"),
    "post": ("PostPdf", 10.0, 0.5, "zero errors below saturation"),
    "proof": ("ExportProof", 10.0, 0.5, "zero errors below saturation"),
    "log": ("ReadLog", 100.0, 2.0, "zero errors below saturation"),
}


def make_pdf(size: int, text: str = "Convocation (load test)") -> bytes:
    """A valid one-page PDF of about ``size`` bytes: incompressible random padding in
    a private stream (PDF 32000-1 §14.5 page-piece dictionary), so the blob store and
    the transport move the full size. fpdf2 takes ~40 s for 1 MB of text; this, none."""
    pad = os.urandom(max(0, size - 1200))
    content = f"BT /F1 14 Tf 72 770 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> "
        b"/PieceInfo << /LoadTest << /Private 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(pad) + pad + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1,
        xref,
    )
    return bytes(out)


# --- deployment ---------------------------------------------------------------------------
@contextmanager
def deployment(args: argparse.Namespace, work: Path) -> Iterator[dict[str, str]]:
    """Environment of a deployment of the chosen profile.

    Fresh and torn down on exit by default. With ``--data-dir`` it is persistent: the
    folder keeps the data (embedded) or the key ring, PKI, seal and the names of the
    database and bucket (production, ``loadtest-deployment.json``), so a bulk-seeded
    deployment is built once and measured many times; ``--teardown`` removes it."""
    persistent = bool(args.data_dir)
    data = Path(args.data_dir).absolute() if persistent else work / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VAULT_") or k.startswith("VAULT_S3_")
    }
    env.update(
        VAULT_DATA_DIR=str(data),
        VAULT_AUTH_IP_PER_MINUTE="100000000",
        VAULT_LOG_LEVEL="warning",
        VAULT_PORT=str(args.port),
    )
    if args.profile == "embedded":
        env["VAULT_PROFILE"] = "embedded"
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        yield env
        return
    sys.path.insert(0, str(ROOT))
    import psycopg
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from tests.support.tsa_server import tsa_server  # test TSA, over HTTP, wall clock
    from vault.clock import SystemClock
    from vault.crypto.keys import KeyRing
    from vault.pdf.pki import load_or_create_test_pki

    state_file = data / "loadtest-deployment.json"
    admin = args.pg_url
    if state_file.exists():
        state = json.loads(state_file.read_text())
        name, bucket = state["database"], state["bucket"]
        pki = load_or_create_test_pki(data / "pki", datetime.now(UTC))
        seal = data / "seal.p12"
    else:
        data.mkdir(parents=True, mode=0o700, exist_ok=True)
        pki = load_or_create_test_pki(data / "pki", datetime.now(UTC))
        seal = data / "seal.p12"
        seal.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"seal (load test)",
                pki.seal_key,
                pki.seal_cert,
                list(pki.chain),
                BestAvailableEncryption(b"lt"),
            )
        )
        seal.chmod(0o600)
        KeyRing.generate(data / "keyring.json")
        name = "vault_lt_" + uuid.uuid4().hex[:8]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        bucket = "lt-" + uuid.uuid4().hex[:12]
        s3_store(env, bucket).ensure_bucket()
        if persistent:
            state_file.write_text(json.dumps({"database": name, "bucket": bucket}))
    try:
        with tsa_server(pki, SystemClock()) as tsa_url:
            env.update(
                VAULT_PROFILE="production",
                VAULT_DATABASE_URL=admin.rsplit("/", 1)[0] + "/" + name,
                VAULT_BLOB_STORE="s3",
                VAULT_S3_BUCKET=bucket,
                VAULT_KEYRING_FILE=str(data / "keyring.json"),
                VAULT_TSA_URL=tsa_url,
                LOADTEST_TRUST_ROOT=str(pki.root_path),
            )
            if not args.no_seal:
                env.update(
                    VAULT_SEAL_PKCS12_FILE=str(seal),
                    VAULT_SEAL_PKCS12_PASSWORD="lt",  # noqa: S106 -- test seal
                )
            run_cli(env, "migrate")
            yield env
    finally:
        if not args.keep and not persistent:
            drop_production(env, admin, name, bucket)


def s3_store(env: dict[str, str], bucket: str) -> Any:
    from vault.storage import blob_store_from_settings

    return blob_store_from_settings(
        "s3",
        endpoint=env["VAULT_S3_ENDPOINT"],
        access_key=env["VAULT_S3_ACCESS_KEY"],
        secret_key=env["VAULT_S3_SECRET_KEY"],
        bucket=bucket,
        region=env.get("VAULT_S3_REGION", "us-east-1"),
        secure=env.get("VAULT_S3_SECURE", "true").lower() in ("1", "true", "yes"),
    )


def drop_production(env: dict[str, str], admin: str, name: str, bucket: str) -> None:
    """Drop the load test's own database and bucket (objects removed in bulk)."""
    import psycopg
    from minio.deleteobjects import DeleteObject

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    client = s3_store(env, bucket)._client
    if not client.bucket_exists(bucket):
        return
    names = (DeleteObject(o.object_name) for o in client.list_objects(bucket, recursive=True))
    for err in client.remove_objects(bucket, names):
        print("S3 delete error:", err, file=sys.stderr)
    client.remove_bucket(bucket)


def teardown(args: argparse.Namespace) -> None:
    """Remove a persistent deployment made with ``--data-dir`` (database, bucket, folder)."""
    data = Path(args.data_dir).absolute()
    state_file = data / "loadtest-deployment.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        drop_production(dict(os.environ), args.pg_url, state["database"], state["bucket"])
    shutil.rmtree(data, ignore_errors=True)
    print(f"removed {data}")


def bulk_seed(env: dict[str, str], args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """``ofpra-vault seed`` before the server starts (growth test), once per data dir;
    then, with ``--verify``, a timed ``ledger verify`` of the seeded log."""
    marker = data / "loadtest-seed.json"
    want = {"documents": args.seed_documents, "entries": args.seed_entries}
    if marker.exists():
        done = json.loads(marker.read_text())
        if {k: done.get(k) for k in want} == want or not args.seed_documents:
            print(f"reusing the bulk-seeded deployment in {data}: {done}", flush=True)
            return dict(done)
        raise SystemExit(f"{data} was seeded with {done}, not {want}: use another --data-dir")
    if not args.seed_documents:
        return {}
    print(f"bulk seeding {want} ...", flush=True)
    t0 = time.monotonic()
    argv = ["seed", "--documents", str(args.seed_documents), "--entries", str(args.seed_entries)]
    report = run_cli(env, *argv, "--batch", str(args.seed_batch), "--json")
    if not isinstance(report, dict):
        raise SystemExit(f"seed failed (see `ofpra-vault seed` without --json): {report}")
    report |= want | {"wall_seconds": round(time.monotonic() - t0, 1)}
    print(f"bulk seed: {report}", flush=True)
    if args.verify:
        report["verify_after_seed"] = timed_verify(env)
        print(f"ledger verify after seed: {report['verify_after_seed']}", flush=True)
    marker.write_text(json.dumps(report))
    return report


def timed_verify(env: dict[str, str]) -> dict[str, Any]:
    argv = ["ledger", "verify", "--json", "--tiles"]
    if "LOADTEST_TRUST_ROOT" in env:
        argv += ["--trust-root", env["LOADTEST_TRUST_ROOT"]]
    t0 = time.monotonic()
    verdict = run_cli(env, *argv)
    seconds = round(time.monotonic() - t0, 1)
    if not isinstance(verdict, dict):
        return {"seconds": seconds, "output": str(verdict)[:400]}
    keep = ("ok", "entries", "failure", "tiles_verified", "checkpoints")
    return {"seconds": seconds} | {k: verdict[k] for k in keep if k in verdict}


def db_facts(env: dict[str, str], n: int) -> tuple[int, list[str]]:
    """The committed ledger size, and ``n`` bulk-seeded document ids picked at random
    across the whole log (their POSTED entries lie anywhere in it): proofs of old
    documents, not only of the run's new ones."""
    code = (
        "import json,sys\n"
        "from sqlalchemy import text\n"
        "from vault.config import load_settings\n"
        "from vault.ledger.store import current_size\n"
        "from vault.service import open_vault\n"
        "v = open_vault(load_settings())\n"
        "with v.read() as s:\n"
        "    ids = s.execute(text(\"SELECT id FROM documents WHERE posted_by = 'seed' \"\n"
        "        \"ORDER BY random() LIMIT :n\"), {'n': int(sys.argv[1])}).scalars().all()\n"
        "    size = current_size(s)\n"
        "v.close()\n"
        "print(json.dumps([size, list(ids)]))\n"
    )
    proc = subprocess.run(
        [str(BIN / "python"), "-c", code, str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    size, ids = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(size), list(ids)


def run_cli(env: dict[str, str], *argv: str) -> Any:
    proc = subprocess.run(
        [str(BIN / "ofpra-vault"), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and argv[0] == "seed"):
        raise SystemExit(f"ofpra-vault {' '.join(argv)} failed:\n{proc.stderr}")
    out = proc.stdout.strip()
    return json.loads(out) if "--json" in argv and out.startswith("{") else out


@contextmanager
def server(env: dict[str, str], workers: int, work: Path) -> Iterator[str]:
    log = open(work / "serve.log", "w")  # noqa: SIM115 -- closed below
    proc = subprocess.Popen(
        [str(BIN / "ofpra-vault"), "serve", "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{env['VAULT_PORT']}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"serve exited; see {work / 'serve.log'}")
            try:
                if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("serve did not become ready in 120 s")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # only the group this script started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


# --- seeding ------------------------------------------------------------------------------
def seed(
    base: str, env: dict[str, str], args: argparse.Namespace, work: Path, old_docs: list[str]
) -> Path:
    t0 = time.monotonic()
    agent = run_cli(env, "staff", "create", "--role", "agent", "--name", "lt agent", "--json")
    legal = run_cli(env, "staff", "create", "--role", "legal", "--name", "lt legal", "--json")
    agent_h = {"Authorization": f"Bearer {agent['token']}"}
    pdf_1m = make_pdf(1_048_576)
    pdf_small = make_pdf(20_000)
    pdf_100k = work / "100k.pdf"
    pdf_100k.write_bytes(make_pdf(100_000))
    registered = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()

    def new_applicant(_: int) -> dict[str, str]:
        with httpx.Client(base_url=base, timeout=60) as c:
            agdref = str(uuid.uuid4().int)[:10]
            r = c.post(
                "/api/v1/accounts",
                headers=agent_h,
                json={
                    "agdref": agdref,
                    "ofpra_number": "OFPRA-" + uuid.uuid4().hex[:10],
                    "guda": "Rennes",
                    "registered_on": registered,
                    "procedure": "normal",
                    "structure_id": "SPADA-35",
                    "language": "fr",
                },
            )
            r.raise_for_status()
            created = r.json()
            r = c.post(
                "/api/v1/auth/first-connection",
                json={
                    "agdref": agdref,
                    "connection_key": created["connection_key"],
                    "password": PASSWORD,
                },
            )
            r.raise_for_status()
            return {
                "account_id": created["account_id"],
                "agdref": agdref,
                "password": PASSWORD,
                "token": r.json()["token"],
            }

    def post(acc: dict[str, str], pdf: bytes) -> str:
        with httpx.Client(base_url=base, timeout=120) as c:
            r = c.post(
                f"/api/v1/accounts/{acc['account_id']}/documents",
                params={"type": "CONVOCATION", "title": "Convocation (seed)"},
                content=pdf,
                headers={"Content-Type": "application/pdf", **agent_h},
            )
            r.raise_for_status()
            return str(r.json()["document_id"])

    with ThreadPoolExecutor(args.seed_threads) as pool:
        applicants = list(pool.map(new_applicant, range(args.applicants)))
        t1 = time.monotonic()
        n_open = int(args.rate_open * args.open_duration * 1.1) if "open" in args.scenarios else 0
        # The 1 MB documents belong to their own applicants, OPEN_DOCS_PER_OWNER each, so
        # the list scenario's applicants keep an ordinary handful of documents.
        inbox = list(pool.map(new_applicant, range(-(-n_open // OPEN_DOCS_PER_OWNER))))
        owners = [inbox[i // OPEN_DOCS_PER_OWNER] for i in range(n_open)]
        first_open = [
            {"id": d, "token": a["token"]}
            for a, d in zip(owners, pool.map(lambda a: post(a, pdf_1m), owners), strict=True)
        ]
        t2 = time.monotonic()
        proof_owners = applicants[: min(20, len(applicants))]
        proof_docs = list(pool.map(lambda a: post(a, pdf_small), proof_owners))

    with httpx.Client(base_url=base, timeout=120) as c:
        for a, d in zip(proof_owners, proof_docs, strict=True):
            r = c.get(
                f"/api/v1/me/documents/{d}/content",
                headers={"Authorization": f"Bearer {a['token']}"},
            )
            r.raise_for_status()
    out = work / "seed.json"
    out.write_text(
        json.dumps(
            {
                "agent": agent["token"],
                "legal": legal["token"],
                "applicants": applicants,
                "first_open": first_open,
                "proof_docs": proof_docs + old_docs,
                "pdf_100k": str(pdf_100k),
            }
        )
    )
    print(
        f"seeded {len(applicants)} applicants in {t1 - t0:.1f} s, "
        f"{len(first_open)} x 1 MB documents in {t2 - t1:.1f} s "
        f"({len(first_open) / max(t2 - t1, 1e-9):.1f}/s), {len(proof_docs)} opened small ones"
        f" (+ {len(old_docs)} bulk-seeded ones for proofs)",
        flush=True,
    )
    return out


# --- runs ---------------------------------------------------------------------------------
def run_scenario(
    base: str, seed_file: Path, name: str, rate: float, duration: int, work: Path, saturate: bool
) -> dict[str, Any]:
    cls, _default, per_user, goal = SCENARIOS[name]
    users = args_users = max(1, round(rate / per_user))
    if saturate:
        users = args_users = SATURATION_USERS
    prefix = work / f"{name}{'-sat' if saturate else ''}"
    env = dict(
        os.environ,
        LOADTEST_SEED=str(seed_file),
        LOADTEST_PER_USER=str(per_user),
        LOADTEST_SATURATE="1" if saturate else "0",
    )
    load_before = os.getloadavg()[0]
    subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(users, 1)),
            "--run-time",
            f"{duration}s",
            "--host",
            base,
            "--csv",
            str(prefix),
            "--loglevel",
            "ERROR",
            cls,
        ],
        env=env,
        check=False,
        capture_output=True,
    )
    rows = []
    with open(f"{prefix}_stats.csv") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                continue
            count = int(row["Request Count"])
            fails = int(row["Failure Count"])
            rows.append(
                {
                    "scenario": name + (" (saturation)" if saturate else ""),
                    "endpoint": row["Name"],
                    "offered_rps": None if saturate else rate,
                    "users": args_users,
                    "requests": count,
                    "achieved_rps": float(row["Requests/s"]),
                    "p50_ms": float(row["50%"] or 0),
                    "p95_ms": float(row["95%"] or 0),
                    "p99_ms": float(row["99%"] or 0),
                    "error_rate": fails / count if count else 0.0,
                    "goal": goal,
                    "load_avg_before": round(load_before, 2),
                }
            )
    return {"rows": rows}


SATURATION_USERS = 8


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'scenario':<20} {'endpoint':<48} {'offered':>8} {'achieved':>8} "
        f"{'p50':>7} {'p95':>7} {'p99':>7} {'errors':>7}  goal"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        offered = "closed" if r["offered_rps"] is None else f"{r['offered_rps']:.0f}/s"
        print(
            f"{r['scenario']:<20} {r['endpoint'][:48]:<48} {offered:>8} "
            f"{r['achieved_rps']:>6.1f}/s {r['p50_ms']:>5.0f}ms {r['p95_ms']:>5.0f}ms "
            f"{r['p99_ms']:>5.0f}ms {r['error_rate']:>6.1%}  {r['goal']}"
        )


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    out = [
        f"### {title}",
        "",
        "| scenario | endpoint | offered | achieved | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        offered = "closed" if r["offered_rps"] is None else f"{r['offered_rps']:.0f}/s"
        out.append(
            f"| {r['scenario']} | {r['endpoint']} | {offered} | {r['achieved_rps']:.1f}/s "
            f"| {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} "
            f"| {r['error_rate']:.1%} |"
        )
    return "\n".join(out) + "\n"


def compare(paths: list[str]) -> str:
    """Side-by-side markdown of several ``--out`` files (same scenarios), with the
    change of the last one against the first (throughput and p50/p99)."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    labels = [r.get("label") or Path(p).stem for r, p in zip(runs, paths, strict=True)]
    keys = [(r["scenario"], r["endpoint"]) for r in runs[0]["rows"]]
    head = "| scenario | endpoint | offered |"
    sep = "|---|---|---:|"
    for lab in labels:
        head += f" {lab}: achieved | p50 | p95 | p99 | err |"
        sep += "---:|---:|---:|---:|---:|"
    head += " Δ achieved | Δ p50 | Δ p99 |"
    sep += "---:|---:|---:|"
    out = [head, sep]
    for key in keys:
        found = [
            next((x for x in r["rows"] if (x["scenario"], x["endpoint"]) == key), None)
            for r in runs
        ]
        first = found[0]
        assert first is not None
        offered = "closed" if first["offered_rps"] is None else f"{first['offered_rps']:.0f}/s"
        line = f"| {key[0]} | {key[1]} | {offered} |"
        for x in found:
            if x is None:
                line += " - | - | - | - | - |"
            else:
                line += (
                    f" {x['achieved_rps']:.1f}/s | {x['p50_ms']:.0f} | {x['p95_ms']:.0f} "
                    f"| {x['p99_ms']:.0f} | {x['error_rate']:.1%} |"
                )
        last = found[-1]

        def pct(a: float, b: float) -> str:
            return f"{(b - a) / a:+.0%}" if a else "-"

        if last is None:
            line += " - | - | - |"
        else:
            line += (
                f" {pct(first['achieved_rps'], last['achieved_rps'])} "
                f"| {pct(first['p50_ms'], last['p50_ms'])} "
                f"| {pct(first['p99_ms'], last['p99_ms'])} |"
            )
        out.append(line)
    notes = []
    for lab, r in zip(labels, runs, strict=True):
        notes.append(
            f"- {lab}: {r.get('profile', '?')} profile, {r.get('workers', '?')} worker(s), "
            f"ledger {r.get('ledger_size_before', '?')} entries before the run, "
            f"load average {r.get('load_avg', '?')}, at {r.get('finished_at', '?')}"
        )
        if r.get("bulk_seed"):
            notes.append(f"  - bulk seed: {json.dumps(r['bulk_seed'])}")
        if r.get("ledger_verify"):
            notes.append(f"  - ledger verify after the run: {json.dumps(r['ledger_verify'])[:300]}")
    return "\n".join(out) + "\n\n" + "\n".join(notes) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--profile", choices=("embedded", "production"), default="embedded")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--duration", type=int, default=30, help="seconds per scenario run")
    p.add_argument(
        "--open-duration",
        type=int,
        default=0,
        help="seconds of the first-open run (default --duration); each open needs a "
        "fresh 1 MB document, seeded first (rate x seconds of them)",
    )
    p.add_argument("--scenarios", default="list,open,log,login,post,proof")
    p.add_argument("--saturate", action="store_true", help="also run closed-loop, 8 users")
    p.add_argument("--rate-open", type=float, default=SCENARIOS["open"][1])
    p.add_argument("--rate-list", type=float, default=SCENARIOS["list"][1])
    p.add_argument("--rate-login", type=float, default=SCENARIOS["login"][1])
    p.add_argument("--rate-post", type=float, default=SCENARIOS["post"][1])
    p.add_argument("--rate-proof", type=float, default=SCENARIOS["proof"][1])
    p.add_argument("--rate-log", type=float, default=SCENARIOS["log"][1])
    p.add_argument("--applicants", type=int, default=40)
    p.add_argument("--seed-threads", type=int, default=4)
    p.add_argument("--port", type=int, default=18765)
    p.add_argument("--pg-url", default=os.environ.get("VAULT_TEST_PG_URL", ""))
    p.add_argument("--workdir", default="/tmp/ofpra-vault-loadtest")  # noqa: S108
    p.add_argument(
        "--data-dir",
        default="",
        help="persistent deployment folder (growth test): built once, reused by later "
        "runs, never dropped; see --teardown",
    )
    p.add_argument(
        "--seed-documents",
        type=int,
        default=0,
        help="bulk-seed this many documents (ofpra-vault seed, not HTTP) before serving; "
        "once per --data-dir",
    )
    p.add_argument("--seed-entries", type=int, default=0, help="... and this many entries")
    p.add_argument("--seed-batch", type=int, default=5000, help="documents per seed transaction")
    p.add_argument(
        "--verify",
        action="store_true",
        help="timed `ledger verify --tiles` after the bulk seed and after the run "
        "(always after a production run)",
    )
    p.add_argument(
        "--seed-only", action="store_true", help="build and bulk-seed --data-dir, then stop"
    )
    p.add_argument(
        "--proof-old",
        type=int,
        default=0,
        help="also export proofs of this many bulk-seeded documents picked across the log "
        "(seeds made before the seed PDF got its xref table answer 500 there). A seeded "
        "document carries about entries/documents entries (500 for 10M on 20,000), so "
        "its attestation is that many rows long: such proofs measure the PDF layout of "
        "an unrealistic history, not the log size",
    )
    p.add_argument("--teardown", action="store_true", help="remove the --data-dir deployment")
    p.add_argument("--label", default="", help="name of this run in --compare tables")
    p.add_argument("--md", default="", help="append the result table (markdown) to this file")
    p.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="OUT_JSON",
        help="print a side-by-side markdown table of earlier --out files and exit",
    )
    p.add_argument(
        "--no-seal",
        action="store_true",
        help="production: no VAULT_SEAL_PKCS12_FILE (posted PDFs unsealed, no PAdES cost); "
        "needed before commit 4d86b8e, where serve failed to start with a seal",
    )
    p.add_argument("--keep", action="store_true", help="keep the database and bucket")
    p.add_argument(
        "--hold",
        type=int,
        default=0,
        help="after seeding, keep the server up this many seconds before the scenarios",
    )
    p.add_argument("--out", default="", help="write the rows as JSON here")
    args = p.parse_args()
    if args.compare:
        table = compare(args.compare)
        print(table)
        if args.md:
            with open(args.md, "a") as f:
                f.write(table + "\n")
        return
    if args.profile == "production" and not args.pg_url:
        raise SystemExit("--pg-url (or VAULT_TEST_PG_URL) is required for production")
    if args.teardown:
        if not args.data_dir:
            raise SystemExit("--teardown needs --data-dir")
        teardown(args)
        return
    args.open_duration = args.open_duration or args.duration
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    work = Path(args.workdir) / f"{args.profile}-w{args.workers}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        env = stack.enter_context(deployment(args, work))
        seeded = bulk_seed(env, args, Path(env["VAULT_DATA_DIR"]))
        size_before, old_docs = db_facts(env, args.proof_old if seeded else 0)
        print(f"ledger size before the HTTP seeding: {size_before}", flush=True)
        if args.seed_only:
            return
        base = stack.enter_context(server(env, args.workers, work))
        seed_file = seed(base, env, args, work, old_docs)
        if args.hold:  # profile by hand: py-spy on the server, Locust with LOADTEST_SEED
            print(f"serving {base} for {args.hold} s; LOADTEST_SEED={seed_file}", flush=True)
            time.sleep(args.hold)
        for name in args.scenarios:
            rate = getattr(args, f"rate_{name}")
            seconds = args.open_duration if name == "open" else args.duration
            res = run_scenario(base, seed_file, name, rate, seconds, work, False)
            rows += res["rows"]
            print_table(res["rows"])
            if args.saturate and name != "open":  # first opens run out; open = list + read
                res = run_scenario(base, seed_file, name, rate, args.duration, work, True)
                rows += res["rows"]
                print_table(res["rows"])
        size_after, _ = db_facts(env, 0)
        verdict = None
        if args.profile == "production" or args.verify:
            verdict = timed_verify(env)  # no gaps after concurrent workers
    load = os.getloadavg()
    print(
        f"\n{args.profile} profile, {args.workers} worker(s), {args.duration} s per run, "
        f"{os.cpu_count()} cores shared by Locust and the server; ledger {size_before} -> "
        f"{size_after} entries; load average now {load}"
    )
    print_table(rows)
    if verdict is not None:
        print("ledger verify:", json.dumps(verdict)[:400])
    result = {
        "label": args.label,
        "profile": args.profile,
        "workers": args.workers,
        "duration": args.duration,
        "ledger_size_before": size_before,
        "ledger_size_after": size_after,
        "bulk_seed": seeded,
        "load_avg": [round(x, 2) for x in load],
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        "ledger_verify": verdict,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    if args.md:
        title = (
            f"{args.label or 'load test'}: {args.profile}, {args.workers} worker(s), ledger "
            f"{size_before} entries, {result['finished_at']}, load avg {result['load_avg']}"
        )
        with open(args.md, "a") as f:
            f.write(markdown(rows, title) + "\n")
            if verdict is not None:
                f.write(f"ledger verify: `{json.dumps(verdict)[:300]}`\n\n")


if __name__ == "__main__":
    main()
