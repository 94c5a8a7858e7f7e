"""The applicant read path after the issue-9 speed work: what it writes, how durably,
and the in-process SQLite writer gate (no timings asserted: tools/ measures speed)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from tests.conftest import auth, post_pdf
from vault.db import engine as engine_module
from vault.db.engine import _WriterGate, make_engine
from vault.db.models import AccessLog, Document, LedgerEntry
from vault.service import Vault


def _log(vault: Vault, account_id: str) -> list[tuple[str, str, str | None]]:
    with vault.read() as s:
        return [
            (r.actor_kind, r.action, r.document_id)
            for r in s.scalars(
                select(AccessLog).where(AccessLog.account_id == account_id).order_by(AccessLog.id)
            )
        ]


def test_list_and_downloads_are_logged_once_each_and_first_access_is_committed(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    h = auth(applicant["token"])
    listed = client.get("/api/v1/me/documents", headers=h)
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    item = listed.json()["items"][0]
    assert item["document_id"] == doc["document_id"] and item["first_access_at"] is None
    for _ in range(2):
        r = client.get(f"/api/v1/me/documents/{doc['document_id']}/content", headers=h)
        assert r.status_code == 200 and r.content.startswith(b"%PDF")
    lines = _log(vault, applicant["account_id"])
    assert lines == [
        ("applicant", "documents.list", None),
        ("applicant", "document.download", doc["document_id"]),  # in the FIRST_ACCESS unit
        ("applicant", "document.download", doc["document_id"]),
    ]
    with vault.read() as s:
        kinds = list(
            s.scalars(select(LedgerEntry.type).where(LedgerEntry.document_id == doc["document_id"]))
        )
        assert kinds.count("FIRST_ACCESS") == 1
        assert s.get(Document, doc["document_id"]).first_access_at is not None  # type: ignore[union-attr]


def test_another_applicants_document_is_not_found_on_the_fast_path(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    from tests.conftest import new_registration

    other = client.post("/api/v1/accounts", json=new_registration(), headers=auth(staff["agent"]))
    assert other.status_code == 201
    foreign = post_pdf(client, staff["agent"], other.json()["account_id"], pdf_bytes).json()
    h = auth(applicant["token"])
    for path in (foreign["document_id"], foreign["document_id"].upper(), "not-a-uuid"):
        r = client.get(f"/api/v1/me/documents/{path}/content", headers=h)
        assert r.status_code == 404
        assert r.json()["code"] == "document_not_found"
    with vault.read() as s:
        assert s.get(Document, foreign["document_id"]).first_access_at is None  # type: ignore[union-attr]
    assert client.get("/api/v1/me/documents", headers=h).json()["items"] == []


def test_relaxed_writes_skip_the_fsync_and_durable_writes_keep_it(vault: Vault) -> None:
    """Only the applicant's own access-log rows and the session touch go through the
    relaxed engine; everything else (ledger, documents, staff reads) stays durable."""
    if vault.write_engine.dialect.name == "sqlite":
        assert vault.relaxed_engine is not None
        with vault.relaxed_engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        with vault.write_engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    else:
        with vault.write_relaxed() as c:
            assert c.execute(text("SHOW synchronous_commit")).scalar() == "off"
        with vault.write_engine.connect() as c:
            assert c.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_writer_gate_hands_over_in_arrival_order() -> None:
    gate = _WriterGate()
    assert gate.acquire(1)
    order: list[int] = []
    started = [threading.Event() for _ in range(3)]

    def writer(i: int) -> None:
        started[i].set()
        assert gate.acquire(10)
        order.append(i)
        gate.release()

    threads = []
    for i in range(3):
        t = threading.Thread(target=writer, args=(i,))
        t.start()
        started[i].wait()
        while len(gate._waiters) < i + 1:  # queued behind the holder, in order
            threading.Event().wait(0.001)
        threads.append(t)
    gate.release()
    for t in threads:
        t.join()
    assert order == [0, 1, 2]
    assert gate.acquire(0)  # free again


def test_writer_gate_gives_up_after_its_timeout() -> None:
    gate = _WriterGate()
    assert gate.acquire(1)
    assert gate.acquire(0.05) is False
    assert gate._waiters == type(gate._waiters)()
    gate.release()
    assert gate.acquire(0)


def test_sqlite_writer_gate_is_released_by_rollback_and_by_a_failed_transaction(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write transaction that fails must not keep the gate: the next writer would
    otherwise wait for the whole timeout and fail with 'database is locked'."""
    monkeypatch.setattr(engine_module, "GATE_TIMEOUT_SECONDS", 5.0)
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    writer = make_engine(url, immediate=True)
    relaxed = make_engine(url, immediate=True, synchronous="NORMAL")
    with writer.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x INTEGER NOT NULL)")
    with pytest.raises(Exception, match="NOT NULL"), writer.begin() as c:
        c.exec_driver_sql("INSERT INTO t VALUES (NULL)")
    with relaxed.begin() as c:  # same file, same gate: free again
        c.exec_driver_sql("INSERT INTO t VALUES (1)")
    with writer.connect() as c:
        c.exec_driver_sql("INSERT INTO t VALUES (2)")
        c.rollback()
    # Writers from several threads all get through, one at a time.
    errors: list[SQLAlchemyError] = []

    def write(i: int) -> None:
        try:
            for _ in range(20):
                with (writer if i % 2 else relaxed).begin() as c:
                    c.exec_driver_sql("INSERT INTO t VALUES (?)", (i,))
        except SQLAlchemyError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with create_engine(url).connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM t").scalar() == 81
    writer.dispose()
    relaxed.dispose()
