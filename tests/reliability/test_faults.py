"""Issue 8, item 2: the object store dies under the production profile.

The S3 server here is a PRIVATE Swift instance (own state folder and ports, started
with scripts/s3-server.sh) because the test stops and restarts it; the shared one
serves the rest of the suite concurrently. Everything else is the real production
stack: PostgreSQL, the in-process API, the real S3 client.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.conftest import auth, make_pdf, post_pdf
from tests.support.services import unavailable
from vault.db.models import Document, LedgerEntry
from vault.service import Vault

ROOT = Path(__file__).resolve().parents[2]
SWIFT_ENV = {
    "VAULT_S3_STATE_DIR": "/tmp/ofpra-vault-swift-faults",
    "VAULT_S3_PORT": "18090",
    "VAULT_S3_BACKEND_PORT": "16210",
}


def _swift(action: str) -> str:
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "s3-server.sh"), action],
        env={**os.environ, **SWIFT_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if r.returncode and action == "start":
        unavailable(f"cannot start the private Swift instance: {r.stderr[-500:]}")
    return r.stdout


@pytest.fixture(scope="module")
def private_swift() -> Iterator[dict[str, str]]:
    out = _swift("start")
    env = dict(re.findall(r"(VAULT_S3_[A-Z_]+)=(\S+)", out))
    try:
        yield env
    finally:
        _swift("stop")


@pytest.fixture
def profile(private_swift: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    # The suite's `settings` fixture reads VAULT_S3_* when it builds the production
    # settings: point it at the private instance.
    for k, v in private_swift.items():
        monkeypatch.setenv(k, v)
    return "production"


def _counts(vault: Vault) -> tuple[int, int]:
    with vault.read() as s:
        docs = s.scalar(select(func.count()).select_from(Document)) or 0
        posted = (
            s.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.type == "POSTED")
            )
            or 0
        )
    return docs, posted


def _metric(client: TestClient[Any], name: str) -> str:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return "\n".join(line for line in r.text.splitlines() if line.startswith(name))


def test_storage_outage_answers_503_records_nothing_and_recovers(
    client: TestClient[Any],
    vault: Vault,
    staff: dict[str, str],
    applicant: dict[str, str],
) -> None:
    agent, acc = staff["agent"], applicant["account_id"]
    ok = post_pdf(client, agent, acc, make_pdf("before the outage"))
    assert ok.status_code == 201, ok.text
    doc = ok.json()["document_id"]
    # Opened once while storage is up: FIRST_ACCESS is already on record.
    assert (
        client.get(
            f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"])
        ).status_code
        == 200
    )
    assert client.get("/health/ready").status_code == 200
    before = _counts(vault)

    _swift("stop")
    try:
        r = post_pdf(client, agent, acc, make_pdf("during the outage"))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "storage_unavailable"
        assert int(r.headers["retry-after"]) > 0
        # Nothing half-recorded: no document row, no POSTED entry.
        assert _counts(vault) == before

        r = client.get(f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"]))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "storage_unavailable"
        assert "retry-after" in r.headers

        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "storage": "unavailable"}
        assert "retry-after" in r.headers
        assert client.get("/health/live").status_code == 200
        assert "vault_ready 0.0" in _metric(client, "vault_ready")
        assert 'vault_component_up{component="storage"} 0.0' in _metric(
            client, "vault_component_up"
        )
    finally:
        _swift("start")

    # Recovery by itself: no restart of the service, the same client and vault.
    deadline = time.monotonic() + 60
    while client.get("/health/ready").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get("/health/ready").status_code == 200
    assert "vault_ready 1.0" in _metric(client, "vault_ready")
    r = post_pdf(client, agent, acc, make_pdf("after the outage"))
    assert r.status_code == 201, r.text
    r = client.get(f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"]))
    assert r.status_code == 200
    assert _counts(vault) == (before[0] + 1, before[1] + 1)
