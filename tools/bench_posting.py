"""Sealing throughput: bare pyHanko B-T sealing vs end-to-end posting, same run.

Issue 4 item 10. The anchor is bare pyHanko PAdES B-T sealing with a cached key:
``PdfSigner.sign_pdf`` with a stock ``SimpleSigner`` whose key was loaded once, and
the same in-process RFC 3161 TSA, on in-memory 100 KB PDFs. Against it:

* ``Sealer.seal`` -- the project's sealer (B-LT: DSS in the signed revision);
* ``FileSealer.seal_file`` -- the same, streaming file to file (what posting uses);
* ``post_document`` -- end-to-end posting through the service function: inspect,
  seal, encrypt, store, ``POSTED`` ledger entry, posted hooks (alerts outbox).

Goal: end-to-end posting at >= 80% of the bare sealing throughput.

    .venv/bin/python tools/bench_posting.py [-n 200] [--size-kb 100] [--profile embedded]

Production profile: ``--profile production --pg-url postgresql://...`` plus the
``VAULT_S3_*`` environment (see scripts/s3-server.sh env).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_pdf(size: int) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(False)
    pdf.add_page()
    pdf.set_font("helvetica", size=6)
    line = os.urandom(48).hex()
    pdf.multi_cell(0, 3, " ".join([line] * (size // 97 + 1)))
    return bytes(pdf.output())


def rate(n: int, fn: Callable[[int], object]) -> float:
    fn(-1)  # warm-up
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--size-kb", type=int, default=100)
    ap.add_argument("--profile", choices=("embedded", "production"), default="embedded")
    ap.add_argument("--pg-url", default="")
    a = ap.parse_args()

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    from vault import sealing
    from vault.accounts import Registration, create_account
    from vault.clock import SystemClock
    from vault.config import load_settings
    from vault.documents import post_document
    from vault.principal import Principal
    from vault.service import open_vault
    from vault.tsa import LocalTimeStamper, to_asn1_cert

    tmp = Path(tempfile.mkdtemp(prefix="bench-posting-"))
    over: dict[str, object] = {
        "background_tasks": False,
        "argon2_opslimit": 1,
        "argon2_memlimit": 64 * 1024,
    }
    bench_db = ""
    if a.profile == "production":
        import psycopg

        from vault.crypto.keys import KeyRing

        # A database of its own (created here, dropped at the end): never the admin one.
        bench_db = "bench_posting_" + uuid.uuid4().hex[:8]
        with psycopg.connect(a.pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{bench_db}"')
        a.pg_url = a.pg_url.rsplit("/", 1)[0] + "/" + bench_db
        KeyRing.generate(tmp / "keyring.json")
        env = {k: v for k, v in os.environ.items() if k.startswith("VAULT_S3")}
        settings = load_settings(
            env,
            profile="production",
            data_dir=tmp,
            database_url=a.pg_url,
            blob_store="s3",
            s3_bucket="bench-" + uuid.uuid4().hex[:8],
            keyring_file=str(tmp / "keyring.json"),
            **over,
        )
    else:
        settings = load_settings({}, data_dir=tmp / "data", **over)
    vault = open_vault(settings, clock=SystemClock(), migrate=True)
    ensure = getattr(vault.blobs, "ensure_bucket", None)
    if ensure:
        ensure()
    if a.profile == "production":
        import dataclasses

        from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

        from vault.pdf.pki import generate_test_pki

        pki = generate_test_pki(tmp / "pki", now=datetime.now(UTC))
        (tmp / "seal.p12").write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"seal", pki.seal_key, pki.seal_cert, list(pki.chain), NoEncryption()
            )
        )
        vault.settings = dataclasses.replace(vault.settings, seal_pkcs12_file=str(tmp / "seal.p12"))
        vault.extras["timestamper"] = LocalTimeStamper.from_test_pki(pki, vault.clock)
    else:
        pki = vault.test_pki()
    sealing.install(vault)
    fs = sealing.sealer_of(vault)
    assert fs is not None

    pdf = make_pdf(a.size_kb * 1024)
    src = tmp / "in.pdf"
    src.write_bytes(pdf)

    # --- anchor: bare pyHanko B-T with a cached key ------------------------------------
    from asn1crypto import keys
    from cryptography.hazmat.primitives import serialization
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key_info = keys.PrivateKeyInfo.load(
        pki.seal_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    bare_signer = signers.SimpleSigner(
        signing_cert=to_asn1_cert(pki.seal_cert),
        signing_key=key_info,
        cert_registry=SimpleCertificateStore.from_certs([to_asn1_cert(c) for c in pki.chain]),
    )
    tsa = LocalTimeStamper.from_test_pki(pki, vault.clock)
    pdf_signer = signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name="Seal", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
        ),
        signer=bare_signer,
        timestamper=tsa,
    )

    def bare(_: int) -> None:
        w = IncrementalPdfFileWriter(io.BytesIO(pdf))
        asyncio.run(pdf_signer.async_sign_pdf(w, output=io.BytesIO()))

    def sealer_bytes(_: int) -> None:
        fs.seal_bytes(pdf)

    out = tmp / "out.pdf"

    def sealer_file(_: int) -> None:
        fs.seal_file(src, out)

    agent = Principal(kind="staff", id="bench-agent", role="agent")
    acc = create_account(
        vault,
        Registration(
            agdref=str(uuid.uuid4().int)[:10],
            ofpra_number=None,
            guda="Rennes",
            registered_on=datetime.now(UTC).date(),
            procedure="normal",
            structure_id="SPADA-35",
            language="fr",
        ),
        Principal(kind="staff", id="bench-agent", role="agent"),
    )

    def post(i: int) -> None:
        post_document(
            vault, agent, acc.account_id, src, type_code="CONVOCATION", title=f"Convocation {i}"
        )

    rows = [
        ("bare pyHanko B-T (cached key)", rate(a.n, bare)),
        ("vault Sealer.seal (bytes)", rate(a.n, sealer_bytes)),
        ("vault FileSealer.seal_file", rate(a.n, sealer_file)),
        ("post_document end-to-end", rate(a.n, post)),
    ]
    anchor = rows[0][1]
    print(
        f"profile {a.profile}, {a.n} PDFs of {len(pdf) // 1024} KB, sealer level {fs.sealer.level}"
    )
    print(f"{'path':<34} {'docs/s':>8} {'ms/doc':>8} {'vs bare':>8}")
    for name, r in rows:
        print(f"{name:<34} {r:8.1f} {1000 / r:8.2f} {100 * r / anchor:7.0f}%")
    goal = rows[-1][1] >= 0.8 * anchor
    print(f"goal (end-to-end >= 80% of bare): {'MET' if goal else 'NOT MET'}")
    vault.close()
    if bench_db:
        import psycopg

        admin = a.pg_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
