"""Rewriting history through plain SQL is refused by the database itself.

Raw statements on a raw connection (no ORM, no vault code in the way): UPDATE and
DELETE on ``ledger_entries``, ``ledger_checkpoints`` and ``ledger_cosignatures`` on
SQLite and PostgreSQL, and TRUNCATE on PostgreSQL, must fail with the trigger's
message and change nothing. (A superuser can still drop a trigger: that is what
``ledger verify``, the monitor and the witnesses catch.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from vault.ledger.checkpoints import add_cosignature, make_checkpoint
from vault.ledger.note import CosignatureSigner
from vault.service import Vault

TABLES = ("ledger_entries", "ledger_checkpoints", "ledger_cosignatures")
REWRITES = {
    "ledger_entries": [
        "UPDATE ledger_entries SET type = 'POSTED' WHERE seq = 1",
        "UPDATE ledger_entries SET leaf_hash = chain",
        "DELETE FROM ledger_entries WHERE seq = 2",
        "DELETE FROM ledger_entries",
    ],
    "ledger_checkpoints": [
        "UPDATE ledger_checkpoints SET note = 'forged'",
        "UPDATE ledger_checkpoints SET size = size + 1",
        "DELETE FROM ledger_checkpoints",
    ],
    "ledger_cosignatures": [
        "UPDATE ledger_cosignatures SET signature_line = 'x'",
        "DELETE FROM ledger_cosignatures",
    ],
}


@pytest.fixture
def populated(vault: Vault, tmp_path: Any) -> Vault:
    if vault.settings.profile == "production":
        from vault.pdf.pki import load_or_create_test_pki
        from vault.tsa import LocalTimeStamper

        p = load_or_create_test_pki(tmp_path / "tsa-pki", vault.clock.now())
        vault.extras["timestamper"] = LocalTimeStamper.from_test_pki(p, vault.clock)
    w = CosignatureSigner("cnda.example/witness", bytes([1]) * 32)
    vault.settings = dataclasses.replace(vault.settings, witness_keys=w.vkey)
    for _ in range(5):
        vault.sequencer.run(lambda _s, ledger: ledger.append("KEY_ROTATED", note="x"))
    cp = make_checkpoint(vault)
    assert cp is not None
    body = cp.note[: cp.note.index("\n\n") + 1]
    add_cosignature(vault, cp.note + w.sign(body, timestamp=1772355600))
    return vault


def _snapshot(vault: Vault) -> dict[str, list[Any]]:
    with vault.write_engine.connect() as c:
        return {t: [tuple(r) for r in c.execute(text(f"SELECT * FROM {t}"))] for t in TABLES}


@pytest.mark.parametrize("table", TABLES)
def test_sql_rewrite_of_history_is_refused_by_the_database(populated: Vault, table: str) -> None:
    vault = populated
    before = _snapshot(vault)
    assert all(before[t] for t in TABLES)
    statements = list(REWRITES[table])
    if vault.write_engine.dialect.name == "postgresql":
        statements.append(f"TRUNCATE {table} CASCADE")
    for sql in statements:
        with vault.write_engine.connect() as c, pytest.raises(DBAPIError) as e, c.begin():
            c.exec_driver_sql(sql)
        assert "append-only" in str(e.value), sql
    assert _snapshot(vault) == before


def test_appending_is_still_allowed(populated: Vault) -> None:
    vault = populated
    e = vault.sequencer.run(lambda _s, ledger: ledger.append("KEY_ROTATED", note="y"))
    assert e.seq == 5
