"""Post and download one large document through the HTTP API; report peak server RSS.

Issue 2's goal: a 1 GB document posted and downloaded on both profiles with the
server's peak resident memory at most 200 MB (the upload limit is raised for the run).

    python tools/bench_large_document.py --size-mb 1024                  # embedded
    python tools/bench_large_document.py --size-mb 1024 --profile production \
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres          # + VAULT_S3_* env

The server runs as a real subprocess (``ofpra-vault serve``); its RSS is sampled from
/proc every 20 ms, and VmHWM (the kernel's own peak) is read at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

GOAL_RSS_MB = 200


def write_big_pdf(path: Path, size: int) -> str:
    """A valid one-page PDF padded with an unreferenced stream of random bytes."""
    h = hashlib.sha256()
    offsets = []
    with path.open("wb") as f:

        def w(b: bytes) -> None:
            f.write(b)
            h.update(b)

        w(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        objs = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >>"
            b" /Contents 4 0 R >>",
        ]
        content = b"0 0 m 300 300 l S"
        for i, body in enumerate(objs, start=1):
            offsets.append(f.tell())
            w(b"%d 0 obj\n" % i + body + b"\nendobj\n")
        offsets.append(f.tell())
        w(
            b"4 0 obj\n<< /Length %d >>\nstream\n" % len(content)
            + content
            + b"\nendstream\nendobj\n"
        )
        pad = max(0, size - f.tell() - 400)
        offsets.append(f.tell())
        w(b"5 0 obj\n<< /Length %d >>\nstream\n" % pad)
        left = pad
        while left:
            n = min(left, 8 << 20)
            w(os.urandom(n))
            left -= n
        w(b"\nendstream\nendobj\n")
        xref = f.tell()
        w(b"xref\n0 6\n0000000000 65535 f \n")
        for off in offsets:
            w(b"%010d 00000 n \n" % off)
        w(b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.02)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--profile", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--pg-url", default=os.environ.get("VAULT_TEST_PG_URL", ""))
    args = ap.parse_args()
    size = args.size_mb * 1024 * 1024

    work = Path(tempfile.mkdtemp(prefix="vault-large-"))
    env = {
        **os.environ,
        "VAULT_DATA_DIR": str(work / "data"),
        "VAULT_MAX_UPLOAD_BYTES": str(size + (1 << 20)),
        "VAULT_BACKGROUND_TASKS": "false",
        "VAULT_ARGON2_OPSLIMIT": "1",
        "VAULT_ARGON2_MEMLIMIT": "65536",
    }
    if args.profile == "production":
        import psycopg

        from vault.crypto.keys import KeyRing

        db = "vault_large_" + uuid.uuid4().hex[:8]
        with psycopg.connect(args.pg_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{db}"')
        (work / "data").mkdir(mode=0o700)
        KeyRing.generate(work / "data" / "keyring.json")
        # The production seal and TSA as operators supply them: a PKCS#12 file and an
        # RFC 3161 server reached over HTTP (here a loopback server on a test PKI).
        from cryptography.hazmat.primitives.serialization import (
            BestAvailableEncryption,
            pkcs12,
        )

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test TSA
        from tests.support.tsa_server import tsa_server
        from vault.clock import SystemClock
        from vault.pdf.pki import load_or_create_test_pki

        pki = load_or_create_test_pki(work / "pki", SystemClock().now())
        (work / "seal.p12").write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"seal",
                pki.seal_key,
                pki.seal_cert,
                list(pki.chain),
                BestAvailableEncryption(b"bench"),
            )
        )
        tsa = tsa_server(pki, SystemClock())
        env["VAULT_TSA_URL"] = tsa.__enter__()
        env.update(
            VAULT_SEAL_PKCS12_FILE=str(work / "seal.p12"),
            VAULT_SEAL_PKCS12_PASSWORD="bench",  # noqa: S106 -- a throw-away test seal
        )
        env.update(
            VAULT_PROFILE="production",
            VAULT_DATABASE_URL=args.pg_url.rsplit("/", 1)[0] + "/" + db,
            VAULT_BLOB_STORE="s3",
            VAULT_S3_BUCKET="large-" + uuid.uuid4().hex[:8],
            VAULT_KEYRING_FILE=str(work / "data" / "keyring.json"),
        )
    cli = [sys.executable, "-m", "vault.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    if args.profile == "production":
        from vault.config import load_settings
        from vault.service import make_blob_store

        make_blob_store(load_settings(env)).ensure_bucket()  # type: ignore[attr-defined]
    agent = subprocess.run(
        [*cli, "staff", "create", "--role", "agent", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    pdf = work / "big.pdf"
    t = time.perf_counter()
    digest = write_big_pdf(pdf, size)
    print(f"generated {size / 2**20:.0f} MiB PDF in {time.perf_counter() - t:.1f} s")

    port = free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sampler = RssSampler(server.pid)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                err = server.stderr.read().decode(errors="replace") if server.stderr else ""
                raise SystemExit(f"the server exited at start-up:\n{err[-3000:]}")
            try:
                if httpx.get(base + "/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start within 180 s") from None
                time.sleep(0.2)
        sampler.start()
        with httpx.Client(base_url=base, timeout=600) as c:
            h = {"Authorization": f"Bearer {agent}"}
            reg = {
                "agdref": "1234567890",
                "guda": "Rennes",
                "registered_on": "2026-02-20",
                "procedure": "normal",
                "structure_id": "SPADA-35",
                "ofpra_number": "OFPRA-1",
            }
            acc = c.post("/api/v1/accounts", json=reg, headers=h).json()
            tok = c.post(
                "/api/v1/auth/first-connection",
                json={
                    "agdref": "1234567890",
                    "connection_key": acc["connection_key"],
                    "password": "a long bench password",
                },
            ).json()["token"]
            # Baseline: the serving process after its first requests, before the upload.
            idle_kb = rss_kb(server.pid)
            t = time.perf_counter()
            with pdf.open("rb") as f:
                r = c.post(
                    f"/api/v1/accounts/{acc['account_id']}/documents",
                    params={"type": "DECISION", "title": "big"},
                    headers={**h, "Content-Type": "application/pdf"},
                    content=f,
                )
            up = time.perf_counter() - t
            r.raise_for_status()
            doc = r.json()
            t = time.perf_counter()
            dh = hashlib.sha256()
            n = 0
            with c.stream(
                "GET",
                f"/api/v1/me/documents/{doc['document_id']}/content",
                headers={"Authorization": f"Bearer {tok}"},
            ) as resp:
                resp.raise_for_status()
                for chunk in resp.iter_bytes(1 << 20):
                    dh.update(chunk)
                    n += len(chunk)
            down = time.perf_counter() - t
        time.sleep(0.1)
        hwm = 0
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        peak_mb = max(hwm, sampler.peak_kb) / 1024
        mib = size / 2**20
        print(f"profile {args.profile}: {mib:.0f} MiB document")
        print(f"  post      {up:7.1f} s  {mib / up:7.1f} MiB/s  (validate, seal, encrypt, store)")
        print(f"  download  {down:7.1f} s  {mib / down:7.1f} MiB/s  (first access first)")
        print(
            f"  downloaded bytes match the stored sealed PDF: {dh.hexdigest() == doc['sha256']} "
            f"({n} bytes; input sha256 {'==' if digest == doc['sha256'] else '!='} stored, "
            "a seal changes it)"
        )
        print(
            f"  server RSS before upload {idle_kb / 1024:.0f} MB, peak {peak_mb:.0f} MB "
            f"(goal <= {GOAL_RSS_MB} MB: {'MET' if peak_mb <= GOAL_RSS_MB else 'NOT MET'})"
        )
        return 0 if peak_mb <= GOAL_RSS_MB else 1
    finally:
        sampler.stop.set()
        server.terminate()
        server.wait(timeout=30)
        pdf.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
