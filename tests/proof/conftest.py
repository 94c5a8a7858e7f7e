"""Fixtures for proof files: a sealing vault on both profiles, posted documents.

The embedded profile seals with the generated test PKI. The production profile seals
with a PKCS#12 file (the production code path, ``VAULT_SEAL_PKCS12_FILE``) cut from a
test PKI made for the run, and time-stamps with an in-process TSA of that PKI put in
place of ``VAULT_TSA_URL`` (no TSA server is reachable from the test machines).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from litestar.testing import TestClient

from tests.conftest import auth, make_pdf, post_pdf
from vault import sealing
from vault.clock import FrozenClock
from vault.pdf.pki import TestPki, generate_test_pki
from vault.service import Vault
from vault.tsa import LocalTimeStamper


@pytest.fixture
def clock() -> FrozenClock:
    """Frozen at the real current time (overrides the suite's 2026-03-01 clock).

    The Sealer validates its own chain and CRLs at the wall-clock time, and pdfsig
    validates signatures at the wall-clock time, while the test PKI and the TSA follow
    the vault's clock: starting the frozen clock at "now" keeps the two in step.
    Tests advance it as usual."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def production_pki(vault: Vault, clock: FrozenClock) -> TestPki:
    pki = generate_test_pki(vault.settings.data_dir / "prod-pki", now=clock.now())
    p12 = vault.settings.data_dir / "seal.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"seal", pki.seal_key, pki.seal_cert, list(pki.chain), BestAvailableEncryption(b"pw")
        )
    )
    vault.settings = dataclasses.replace(
        vault.settings, seal_pkcs12_file=str(p12), seal_pkcs12_password="pw"
    )
    vault.extras["timestamper"] = LocalTimeStamper.from_test_pki(pki, clock)
    vault.extras["prod_pki"] = pki
    return pki


@pytest.fixture
def sealing_vault(vault: Vault, clock: FrozenClock) -> Vault:
    """The vault with ``vault.sealing`` installed (as EXTENSIONS will do)."""
    if vault.settings.profile == "production":
        production_pki(vault, clock)
    vault.extras.pop("sealer", None)
    sealing.install(vault)
    assert sealing.sealer_of(vault) is not None
    return vault


def root_pem(vault: Vault) -> Path:
    pki = vault.extras.get("prod_pki") or vault.test_pki()
    return Path(pki.root_path)


@pytest.fixture
def posted(
    sealing_vault: Vault, client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str]
) -> dict[str, Any]:
    r = post_pdf(
        client,
        staff["agent"],
        applicant["account_id"],
        make_pdf("Décision"),
        type="DECISION",
        title="Décision sur la demande d'asile",
    )
    assert r.status_code == 201, r.text
    return {
        "document_id": r.json()["document_id"],
        "sha256": r.json()["sha256"],
        "applicant": applicant,
        "posted_at": sealing_vault.clock.now(),
        "client": client,
        "staff": staff,
        "vault": sealing_vault,
    }


def get_proof(client: TestClient[Any], token: str, document_id: str, *, me: bool = False) -> bytes:
    url = (
        f"/api/v1/me/documents/{document_id}/proof"
        if me
        else f"/api/v1/documents/{document_id}/proof"
    )
    r = client.get(url, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/zip")
    return r.content
