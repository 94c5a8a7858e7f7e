"""Issue 8, item 2: PostgreSQL *slow* (answering, but not in time), production profile.

The real shared PostgreSQL serves this test, in a database of its own, reached through
a TCP proxy (tests/support/tcp_proxy.py) that adds latency to every packet: the server
itself is never stopped or slowed for the other tests. What makes it "too slow" is a
second connection holding locks in THIS test's database, the way a long migration, a
VACUUM FULL or a stuck writer in another process would:

* ``LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE``: every statement that touches
  the ledger waits;
* the sequencer's advisory writer lock: every ledger append waits, reads do not.

The bound is ``VAULT_DB_STATEMENT_TIMEOUT_MS`` (short here): PostgreSQL cancels the
waiting statement, the engine maps the cancellation to DatabaseUnavailable, and the
API answers 503 with Retry-After instead of hanging or answering 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.conftest import FAST_ARGON2, auth, make_pdf, post_pdf
from tests.support.services import fresh_pg_database, s3_settings
from tests.support.tcp_proxy import TcpProxy
from vault.config import Settings, load_settings
from vault.db.models import Document, LedgerEntry
from vault.documents import sweep_blobs
from vault.ledger.sequencer import ADVISORY_LOCK_KEY
from vault.service import Vault

#: Short, so the test is quick; the default is 15 s.
STATEMENT_TIMEOUT_MS = 1500
POST_ROUTE = "/api/v1/accounts/{account_id}/documents"

pytestmark = pytest.mark.timeout(300)  # a hang fails the test instead of the run


@pytest.fixture
def direct_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def proxy(direct_url: str) -> Iterator[TcpProxy]:
    host_port = direct_url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    with TcpProxy(host, int(port or 5432)) as p:
        p.latency = 0.002  # a slow link on every packet, both ways
        yield p


@pytest.fixture
def settings(direct_url: str, proxy: TcpProxy, tmp_path: Path) -> Settings:
    from vault.crypto.keys import KeyRing

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    KeyRing.generate(data / "keyring.json")
    env = {f"VAULT_{k.upper()}": v for k, v in s3_settings().items()}
    db = direct_url.rsplit("/", 1)[1]
    return load_settings(
        env,
        profile="production",
        data_dir=data,
        database_url=f"postgresql://postgres@127.0.0.1:{proxy.port}/{db}",
        blob_store="s3",
        s3_bucket="pgs-" + uuid.uuid4().hex[:12],
        keyring_file=str(data / "keyring.json"),
        db_statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        **FAST_ARGON2,
    )


def _counts(vault: Vault) -> tuple[int, int]:
    with vault.read() as s:
        docs = s.scalar(select(func.count()).select_from(Document)) or 0
        entries = s.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    return docs, entries


def _metrics(client: TestClient[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _m(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _assert_503_database(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "database_unavailable"
    assert int(r.headers["retry-after"]) > 0


def _assert_no_orphan_blob(vault: Vault) -> None:
    # Grace passed (the clock is frozen in the past; S3 dates are real).
    sweep_blobs(vault, now=datetime.now(UTC) + timedelta(days=1))
    with vault.read() as s:
        used = {d.blob_name for d in s.scalars(select(Document))}
        names = [b.name for b in vault.blobs.list("")]
        used |= set(vault.extras.get("referenced_blobs", lambda _s, _n: set())(s, names))
    assert all(vault.blobs.exists(n) for n in used)
    assert [n for n in names if n not in used] == []


def test_ledger_locked_by_another_session_answers_503_records_nothing_and_recovers(
    direct_url: str,
    proxy: TcpProxy,
    client: TestClient[Any],
    vault: Vault,
    staff: dict[str, str],
    applicant: dict[str, str],
) -> None:
    agent, acc = staff["agent"], applicant["account_id"]
    ok = post_pdf(client, agent, acc, make_pdf("before the slowdown"))
    assert ok.status_code == 201, ok.text
    doc = ok.json()["document_id"]
    before = _counts(vault)
    m0 = _metrics(client)
    assert proxy.connections > 0  # the vault really talks through the slow link

    blocker = psycopg.connect(direct_url)  # straight to the server, not the proxy
    try:
        blocker.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
        # A posting waits for the ledger, is cancelled at the bound: 503, not a hang.
        _assert_503_database(post_pdf(client, agent, acc, make_pdf("during the slowdown")))
        # A first opening records FIRST_ACCESS in the ledger: same answer.
        r = client.get(f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"]))
        _assert_503_database(r)
        # Readiness has its own, shorter bound and says why.
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "timeout"
        assert int(r.headers["retry-after"]) > 0
        assert client.get("/health/live").status_code == 200
        m1 = _metrics(client)
        assert _m(m1, "vault_component_up", component="database") == 0
        assert _m(m1, "vault_ready") == 0
        assert _m(m1, "vault_db_unavailable_total", kind="timeout") >= (
            _m(m0, "vault_db_unavailable_total", kind="timeout") + 3
        )
        count = "vault_http_request_duration_seconds_count"
        labels = {"method": "POST", "route": POST_ROUTE, "status": "5xx"}
        assert _m(m1, count, **labels) == _m(m0, count, **labels) + 1
    finally:
        blocker.rollback()  # the lock goes: the "slow" database answers again
        blocker.close()

    # Recovery by itself, same process, no restart.
    assert client.get("/health/ready").status_code == 200
    assert _m(_metrics(client), "vault_component_up", component="database") == 1
    # Nothing half-recorded: no row, no entry from the refused posting or opening.
    assert _counts(vault) == before
    r = post_pdf(client, agent, acc, make_pdf("after the slowdown"))
    assert r.status_code == 201, r.text
    r = client.get(f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"]))
    assert r.status_code == 200
    with vault.read() as s:
        first = s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.document_id == doc, LedgerEntry.type == "FIRST_ACCESS")
        )
    assert first == 1
    _assert_no_orphan_blob(vault)


def test_writer_lock_held_by_another_process_answers_503_for_appends_only(
    direct_url: str,
    client: TestClient[Any],
    vault: Vault,
    staff: dict[str, str],
    applicant: dict[str, str],
) -> None:
    """A stuck group commit in another worker holds the cross-process writer lock:
    appends are refused with 503 at the bound, reads that append nothing still work."""
    agent, acc, tok = staff["agent"], applicant["account_id"], applicant["token"]
    ok = post_pdf(client, agent, acc, make_pdf("opened before"))
    assert ok.status_code == 201, ok.text
    opened = ok.json()["document_id"]
    assert (
        client.get(f"/api/v1/me/documents/{opened}/content", headers=auth(tok)).status_code == 200
    )
    before = _counts(vault)

    other_worker = psycopg.connect(direct_url)
    try:
        other_worker.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        _assert_503_database(post_pdf(client, agent, acc, make_pdf("while the writer is stuck")))
        # Reading a document already opened records nothing in the ledger: served.
        r = client.get(f"/api/v1/me/documents/{opened}/content", headers=auth(tok))
        assert r.status_code == 200
        assert client.get("/api/v1/me/documents", headers=auth(tok)).status_code == 200
    finally:
        other_worker.rollback()
        other_worker.close()

    assert _counts(vault) == before
    r = post_pdf(client, agent, acc, make_pdf("writer back"))
    assert r.status_code == 201, r.text
    assert _counts(vault)[0] == before[0] + 1
    _assert_no_orphan_blob(vault)


def test_pool_exhausted_by_slow_statements_is_503_not_500(direct_url: str) -> None:
    """Every pooled connection busy on a slow server: the next checkout gives up after
    the pool timeout with DatabaseUnavailable (503), not SQLAlchemy's TimeoutError (500)."""
    from vault.db.engine import UNAVAILABLE_COUNTS, make_engine
    from vault.errors import DatabaseUnavailable

    engine = make_engine(direct_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    before = UNAVAILABLE_COUNTS.get("pool_timeout", 0)
    try:
        with engine.connect(), pytest.raises(DatabaseUnavailable):
            engine.connect()
        with engine.connect() as conn:  # and it recovers once a connection is free
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
    assert UNAVAILABLE_COUNTS["pool_timeout"] == before + 1


def test_stuck_writer_lock_fails_a_queued_batch_once_not_unit_by_unit(
    direct_url: str, vault: Vault
) -> None:
    """Units queued behind a writer lock held elsewhere all get 503 after ONE statement
    timeout: a database failure is not retried one unit per transaction (which waited
    the timeout again for every unit: 5 units, 6 cancellations)."""
    import threading
    from concurrent.futures import Future

    from vault.db.engine import UNAVAILABLE_COUNTS
    from vault.errors import DatabaseUnavailable

    def unit(_s: Any, ledger: Any) -> None:
        ledger.append("KEY_ROTATED", key="queued", version=0)

    gate = threading.Event()
    started = threading.Event()

    def hold(_s: Any, _ledger: Any) -> None:
        started.set()
        gate.wait(10)

    vault.sequencer.run(lambda _s, _l: None)  # the writer is up
    blocker = vault.sequencer.submit(hold)
    assert started.wait(10)
    other_worker = psycopg.connect(direct_url)
    try:
        other_worker.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        queued: list[Future[Any]] = [vault.sequencer.submit(unit) for _ in range(5)]
        timeouts = UNAVAILABLE_COUNTS.get("timeout", 0)
        gate.set()  # the next batch (the 5 units) now waits for the lock held above
        blocker.result(timeout=30)
        for f in queued:
            with pytest.raises(DatabaseUnavailable):
                f.result(timeout=30)
        cancelled = UNAVAILABLE_COUNTS.get("timeout", 0) - timeouts
    finally:
        other_worker.rollback()
        other_worker.close()
    assert cancelled == 1  # one wait at the bound for the whole batch
