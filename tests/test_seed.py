"""Bulk seeding (vault/seed.py) on both profiles: what it writes is a real vault.

The seeded ledger verifies (entries, chain, tiles); seeded documents open through the
normal read path; seeded applicants log in with the seed password. No timing here:
the rate is measured by ``ofpra-vault seed`` itself (see docs/deploy.md and issue 9).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

from sqlalchemy import func, select

from vault import accounts, documents
from vault.config import Settings
from vault.db.models import Account, Document
from vault.ledger.verify import verify_ledger
from vault.principal import Principal
from vault.proof import write_proof
from vault.seed import SEED_PASSWORD, seed
from vault.service import Vault, open_vault


def test_seeded_vault_verifies_opens_and_logs_in(vault: Vault) -> None:
    report = seed(vault, documents=12, entries=100, batch=5)
    assert report.documents == 12
    assert report.accounts == 3  # one account per five documents, rounded up
    assert report.entries == 100  # 2 x 3 account entries + 2 x 12 + 70 ALERT_SENT
    assert report.ledger_size == 100
    with vault.read() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 12
        acc = s.scalars(select(Account)).first()
        assert acc is not None
        doc = s.scalars(select(Document).where(Document.account_id == acc.id)).first()
        assert doc is not None
    from vault.pdf.pki import load_or_create_test_pki

    pki = load_or_create_test_pki(vault.settings.data_dir / "pki", vault.clock.now())
    verdict = verify_ledger(vault, trust_roots=[pki.root_cert], tiles=True)
    assert verdict.ok, verdict.summary()
    assert verdict.entries == 100
    assert verdict.tiles_verified > 0

    opened = documents.open_document(vault, Principal("applicant", acc.id, "applicant"), doc.id)
    assert b"".join(opened.chunks).startswith(b"%PDF-")
    assert accounts.login(vault, acc.agdref, SEED_PASSWORD).account_id == acc.id

    # The seeded PDF is one a reader parses (pyHanko needs its xref): proofs export.
    with tempfile.TemporaryFile() as f:
        write_proof(vault, Principal("staff", "legal-1", "legal"), doc.id, f)
        assert f.tell() > 0


def test_seed_appends_after_existing_entries(vault: Vault) -> None:
    first = seed(vault, documents=5, entries=0, batch=5)
    second = seed(vault, documents=5, entries=0, batch=2)  # rounded up to whole accounts
    assert first.entries == second.entries == 2 * 1 + 2 * 5
    assert second.ledger_size == 24
    assert verify_ledger(vault, tiles=True, trust_roots=[]).failure is None


def test_bulk_settings_do_not_outlive_the_seed(vault: Vault) -> None:
    """The SQLite bulk PRAGMAs (synchronous=OFF, big cache) are restored on the pooled
    write connection: later normal commits are durable again."""
    seed(vault, documents=5, entries=0, batch=5)
    if vault.write_engine.dialect.name != "sqlite":
        return  # PostgreSQL: SET LOCAL, scoped to each seed transaction by design
    with vault.write_engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert raw.execute("PRAGMA cache_size").fetchone()[0] != -262144


def test_seed_is_not_cancelled_by_the_online_statement_timeout(
    vault: Vault, settings: Settings
) -> None:
    """PostgreSQL: one seed batch is a COPY of up to millions of entries; the request
    timeout (VAULT_DB_STATEMENT_TIMEOUT_MS) cancelled a 10-million-entry seed. The
    seed lifts it for its own transactions only. (SQLite has no statement timeout:
    there the same big batch simply loads.)"""
    strict = open_vault(replace(settings, db_statement_timeout_ms=100), clock=vault.clock)
    try:
        report = seed(strict, documents=5, entries=150_000, batch=5)  # one COPY
        assert report.ledger_size == 150_000
        if strict.write_engine.dialect.name == "postgresql":
            with strict.write_engine.connect() as conn:  # back to the online timeout
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "100ms"
    finally:
        strict.close()
