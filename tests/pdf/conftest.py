"""Fixtures for the PDF tests: a test PKI, the embedded TSA and sealer, an NSS db.

The PKI is made at the real current time, not a pinned one: pyHanko stamps the
signature dictionary's /M from the wall clock, and pdfsig validates at the wall clock,
so certificates must be valid *now*. Tests that need pinned time pin the TSA clock.

External tools (openssl, pdfsig, certutil) are skipped when missing on a developer
machine, but a missing tool FAILS the run when CI=true: the independent-verifier
checks (DESIGN.md section 7) must never silently disappear in CI.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import pytest

from tests.support.services import require_tool
from vault.clock import SystemClock
from vault.pdf.pki import TestPki, generate_test_pki
from vault.pdf.seal import Sealer
from vault.tsa import LocalTimeStamper


def make_pdf(text: str = "Convocation à un entretien", *, pad_to: int = 0) -> bytes:
    """A small, uncompressed fpdf2 PDF (so tests can find and alter its text)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(False)
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(0, 10, text.encode("latin-1", "replace").decode("latin-1"))
    out = bytes(pdf.output())
    if pad_to > len(out):
        # Random text lines (no line breaking: fpdf2's is slow) grow the uncompressed
        # content streams to the wanted size, over as many pages as needed.
        pdf = FPDF()
        pdf.set_compression(False)
        pdf.set_font("helvetica", size=6)
        lines = (pad_to - len(out)) // 110 + 1
        for i in range(lines):
            if i % 60 == 0:
                pdf.add_page()
                pdf.text(10, 10, text.encode("latin-1", "replace").decode("latin-1"))
            pdf.text(10, 15 + 4 * (i % 60), os.urandom(40).hex())
        out = bytes(pdf.output())
    return out


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"), now=datetime.now(UTC))


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """An unrelated PKI with the same names: an impostor's."""
    return generate_test_pki(tmp_path_factory.mktemp("other-pki"), now=datetime.now(UTC))


@pytest.fixture(scope="session")
def local_tsa(test_pki: TestPki) -> LocalTimeStamper:
    return LocalTimeStamper.from_test_pki(test_pki, SystemClock())


@pytest.fixture(scope="session")
def sealer(test_pki: TestPki) -> Sealer:
    return Sealer.from_test_pki(test_pki, clock=SystemClock())


@pytest.fixture(scope="session")
def nss_db(test_pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database trusting only the test root, for ``pdfsig -nssdir``."""
    certutil = require_tool("certutil")
    directory = tmp_path_factory.mktemp("nssdb")
    db = f"sql:{directory}"
    subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True)
    subprocess.run(
        [
            certutil,
            "-A",
            "-d",
            db,
            "-n",
            "OFPRA TEST root",
            "-t",
            "CT,C,C",
            "-i",
            str(test_pki.root_path),
        ],
        check=True,
    )
    return db
