"""Issue 8, item 2: PostgreSQL stopped, then back, under the production profile.

The database is a PRIVATE throwaway PostgreSQL cluster (initdb in a temporary folder,
own port, run as the postgres user like scripts/postgres.sh does) because the test
stops it; the shared server on 5432 serves the rest of the suite. Storage is the
shared Swift S3 server (a bucket of its own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.conftest import FAST_ARGON2, auth, make_pdf, post_pdf
from tests.support.services import s3_settings, unavailable
from vault.config import Settings, load_settings
from vault.db.models import Document, LedgerEntry
from vault.service import Vault

PORT = 55491


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        unavailable("no PostgreSQL binaries under /usr/lib/postgresql")
    return found[-1].parent


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="vault-pg-faults-"))
        self.state = self.dir / "pgdata"
        self.run_as: list[str] = []
        if os.getuid() == 0:
            # initdb refuses to run as root: the postgres user, as scripts/postgres.sh.
            shutil.chown(self.dir, "postgres", "postgres")
            self.run_as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        self._run("initdb", "-D", str(self.state), "-U", "postgres", "-A", "trust")
        self.url = f"postgresql://postgres@127.0.0.1:{PORT}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.state), "-l", str(self.dir / "server.log"), "-w",
            "-o", f"-p {PORT} -k {self.dir} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.state), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


@pytest.fixture
def settings(private_pg: PrivatePostgres, tmp_path: Path) -> Settings:
    import psycopg

    from vault.crypto.keys import KeyRing

    db = "vault_faults_" + uuid.uuid4().hex[:8]
    with psycopg.connect(private_pg.url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    KeyRing.generate(data / "keyring.json")
    env = {f"VAULT_{k.upper()}": v for k, v in s3_settings().items()}
    return load_settings(
        env,
        profile="production",
        data_dir=data,
        database_url=private_pg.url.rsplit("/", 1)[0] + "/" + db,
        blob_store="s3",
        s3_bucket="pgf-" + uuid.uuid4().hex[:12],
        keyring_file=str(data / "keyring.json"),
        **FAST_ARGON2,
    )


def _counts(vault: Vault) -> tuple[int, int]:
    with vault.read() as s:
        docs = s.scalar(select(func.count()).select_from(Document)) or 0
        posted = s.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.type == "POSTED")
        )
    return docs, posted or 0


def test_database_outage_answers_503_records_nothing_and_recovers(
    private_pg: PrivatePostgres,
    client: TestClient[Any],
    vault: Vault,
    staff: dict[str, str],
    applicant: dict[str, str],
) -> None:
    agent, acc = staff["agent"], applicant["account_id"]
    ok = post_pdf(client, agent, acc, make_pdf("before the outage"))
    assert ok.status_code == 201, ok.text
    doc = ok.json()["document_id"]
    before = _counts(vault)

    private_pg.stop()
    try:
        r = post_pdf(client, agent, acc, make_pdf("during the outage"))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "database_unavailable"
        assert int(r.headers["retry-after"]) > 0
        r = client.get(f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"]))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "database_unavailable"
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "unavailable"
        assert client.get("/health/live").status_code == 200
        metrics = client.get("/metrics").text
        assert 'vault_component_up{component="database"} 0.0' in metrics
    finally:
        private_pg.start()

    # Recovery by itself (pool_pre_ping replaces the dead connections).
    assert client.get("/health/ready").status_code == 200
    # Nothing half-recorded by the failed post.
    assert _counts(vault) == before
    r = post_pdf(client, agent, acc, make_pdf("after the outage"))
    assert r.status_code == 201, r.text
    r = client.get(f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"]))
    assert r.status_code == 200
    assert _counts(vault) == (before[0] + 1, before[1] + 1)
