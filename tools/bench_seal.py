"""Benchmark PAdES sealing: our Sealer against bare pyHanko, in one run.

    .venv/bin/python tools/bench_seal.py [--n 50] [--size 100000]

Every variant seals the same ~100 KB PDF with the same test PKI and the same
in-process RFC 3161 TSA (vault.tsa.LocalTimeStamper), so the rows differ only in the
signing path:

* ``pyHanko stock``: key and certificates loaded from PEM for every seal (what a
  naive per-request integration does), PAdES B-T, pyHanko's size estimate;
* ``pyHanko B-T, cached key`` (the anchor): one ``SimpleSigner`` and one
  ``PdfSigner`` for the run, PAdES B-T, pyHanko's size estimate;
* ``pyHanko B-LT, cached key + VC``: as the anchor plus a reusable validation
  context with the CRLs up front, ``embed_validation_info=True`` (B-LT);
* ``vault Sealer (B-LT)``: :class:`vault.pdf.seal.Sealer`, which is B-LT.

Figures are printed, never asserted (STYLE.md rule 10).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from fpdf import FPDF
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from vault.clock import SystemClock
from vault.pdf.pki import TestPki, generate_test_pki
from vault.pdf.seal import Sealer, _key_info
from vault.tsa import LocalTimeStamper, to_asn1_cert


def make_pdf(size: int) -> bytes:
    pdf = FPDF()
    pdf.set_compression(False)
    pdf.set_font("helvetica", size=6)
    lines = max(1, size // 110)
    for i in range(lines):
        if i % 60 == 0:
            pdf.add_page()
            pdf.text(10, 10, "Convocation - benchmark document")
        pdf.text(10, 15 + 4 * (i % 60), os.urandom(40).hex())
    return bytes(pdf.output())


def pades_meta(**extra: object) -> signers.PdfSignatureMetadata:
    return signers.PdfSignatureMetadata(
        field_name="OFPRA-Seal",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="benchmark",
        **extra,  # type: ignore[arg-type]
    )


def variants(pki: TestPki, tsa: LocalTimeStamper) -> dict[str, Callable[[bytes], bytes]]:
    d = pki.directory
    chain = [to_asn1_cert(c) for c in pki.chain]

    def stock(pdf: bytes) -> bytes:
        signer = signers.SimpleSigner.load(
            str(d / "seal.key.pem"), str(d / "seal.pem"), ca_chain_files=(str(pki.chain_path),)
        )
        w = IncrementalPdfFileWriter(io.BytesIO(pdf))
        out: io.BytesIO = signers.PdfSigner(pades_meta(), signer, timestamper=tsa).sign_pdf(w)
        return out.getvalue()

    cached_signer = signers.SimpleSigner(
        signing_cert=to_asn1_cert(pki.seal_cert),
        signing_key=_key_info(pki.seal_key),
        cert_registry=SimpleCertificateStore.from_certs(chain),
    )
    anchor_signer = signers.PdfSigner(pades_meta(), cached_signer, timestamper=tsa)

    def anchor(pdf: bytes) -> bytes:
        out: io.BytesIO = anchor_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)))
        return out.getvalue()

    context = ValidationContext(
        trust_roots=[to_asn1_cert(pki.root_cert)],
        other_certs=chain,
        crls=[c.public_bytes(serialization.Encoding.DER) for c in pki.crls],
        allow_fetching=False,
        revocation_mode="require",
    )
    lt_signer = signers.PdfSigner(
        pades_meta(
            embed_validation_info=True,
            validation_context=context,
            dss_settings=DSSContentSettings(
                include_vri=False, placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE
            ),
        ),
        cached_signer,
        timestamper=tsa,
    )

    def pyhanko_lt(pdf: bytes) -> bytes:
        out: io.BytesIO = lt_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)))
        return out.getvalue()

    sealer = Sealer.from_test_pki(pki, clock=SystemClock())
    return {
        "pyHanko stock (PEM per seal), B-T": stock,
        "pyHanko B-T, cached key [anchor]": anchor,
        "pyHanko B-LT, cached key + VC": pyhanko_lt,
        f"vault Sealer ({sealer.level})": sealer.seal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50, help="seals per variant")
    parser.add_argument("--size", type=int, default=100_000, help="PDF size in bytes")
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)  # pyHanko warns that fetching is off: on purpose
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate_test_pki(Path(tmp), now=datetime.now(UTC))
        tsa = LocalTimeStamper.from_test_pki(pki, SystemClock())
        pdf = make_pdf(args.size)
        rows: list[tuple[str, float, float]] = []
        for name, seal in variants(pki, tsa).items():
            seal(pdf)  # warm-up: imports, caches, the TSA's dummy token
            times = []
            for _ in range(args.n):
                start = time.perf_counter()
                seal(pdf)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            rows.append((name, statistics.median(times), times[int(0.95 * (len(times) - 1))]))

    anchor = next(median for name, median, _ in rows if "[anchor]" in name)
    print(f"PDF: {len(pdf)} bytes, {args.n} seals per variant, ECDSA P-256, in-process TSA")
    print(f"{'variant':<38} {'ms/seal':>8} {'p95 ms':>8} {'seals/s':>8} {'vs anchor':>10}")
    for name, median, p95 in rows:
        print(f"{name:<38} {median:8.1f} {p95:8.1f} {1000 / median:8.1f} {median / anchor:9.2f}x")


if __name__ == "__main__":
    main()
