"""Small helpers shared by the accounts tests."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.conftest import auth, new_registration

PASSWORD = "correct horse battery"


def register(client: TestClient[Any], agent: str, **over: Any) -> dict[str, Any]:
    reg = new_registration(**over)
    r = client.post("/api/v1/accounts", json=reg, headers=auth(agent))
    assert r.status_code == 201, r.text
    return {**reg, **r.json()}


def activate(client: TestClient[Any], acc: dict[str, Any], password: str = PASSWORD) -> str:
    r = client.post(
        "/api/v1/auth/first-connection",
        json={
            "agdref": acc["agdref"],
            "connection_key": acc["connection_key"],
            "password": password,
        },
    )
    assert r.status_code == 200, r.text
    client.cookies.clear()
    token: str = r.json()["token"]
    return token


def ledger_types(vault: Any, account_id: str) -> list[str]:
    from sqlalchemy import select

    from vault.db.models import LedgerEntry

    with vault.read() as s:
        return list(
            s.scalars(
                select(LedgerEntry.type)
                .where(LedgerEntry.account_id == account_id)
                .order_by(LedgerEntry.seq)
            )
        )


def entries(vault: Any, account_id: str, type_: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from vault.db.models import LedgerEntry
    from vault.ledger.entries import parse_entry

    with vault.read() as s:
        rows = s.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id, LedgerEntry.type == type_)
            .order_by(LedgerEntry.seq)
        )
        return [parse_entry(bytes(r.entry)) for r in rows]
