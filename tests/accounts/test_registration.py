"""Registration: eligibility at the door, the GUDA notice, first connection, login,
contacts and sessions (issue 5 §1-3)."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.accounts.helpers import PASSWORD, activate, entries, ledger_types, register
from tests.conftest import auth, new_registration
from vault.clock import FrozenClock
from vault.db.models import Account
from vault.service import Vault


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"procedure": "dublin"}, "dublin_procedure"),
        ({"unaccompanied_minor": True}, "unaccompanied_minor"),
        ({"overseas": True}, "overseas"),
        ({"unable_to_use_space": True}, "unable_to_use_space"),
        ({"guda": "Lyon", "registered_on": "2022-05-01"}, "guda_not_in_scheme_at_date"),
    ],
)
def test_ineligible_registration_is_refused_with_reason_and_nothing_stored(
    client: TestClient[Any], staff: dict[str, str], vault: Vault, over: dict[str, Any], reason: str
) -> None:
    reg = new_registration(**over)
    r = client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"]))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "not_eligible"
    assert body["reason"] == reason
    with vault.read() as s:
        assert s.scalar(select(func.count()).where(Account.agdref == reg["agdref"])) == 0


def test_requalified_dublin_case_is_eligible_and_recorded(
    client: TestClient[Any], staff: dict[str, str], vault: Vault
) -> None:
    acc = register(
        client,
        staff["agent"],
        procedure="dublin_requalified",
        requalified_on="2022-05-02",
        requalification_region="Auvergne-Rhône-Alpes",
        prefecture="Rhône",
        registered_on="2022-03-01",
        guda="Lyon",
    )
    with vault.read() as s:
        row = s.get(Account, acc["account_id"])
        assert row is not None
        assert row.ofpra_number == acc["ofpra_number"]
        assert row.structure_id == "SPADA-35"
        assert row.prefecture == "Rhône"
        assert row.eligibility_table
        assert row.connection_key_hash.startswith("$argon2id$")
        assert acc["connection_key"].encode() not in bytes(row.connection_key_sealed)
    assert ledger_types(vault, acc["account_id"]) == ["ACCOUNT_CREATED"]
    entry = entries(vault, acc["account_id"], "ACCOUNT_CREATED")[0]
    assert acc["agdref"] not in str(entry) and acc["ofpra_number"] not in str(entry)


def _pdf_text(pdf: bytes, tmp_path: Any) -> str:
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_notice_pdf_french_and_arabic_until_first_connection(
    client: TestClient[Any], staff: dict[str, str], tmp_path: Any
) -> None:
    acc = register(client, staff["agent"], language="ar")
    url = f"/api/v1/accounts/{acc['account_id']}/notice.pdf"
    r = client.get(url, headers=auth(staff["agent"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/pdf")
    assert r.headers["cache-control"] == "no-store"
    text = _pdf_text(r.content, tmp_path)
    assert acc["agdref"] in text
    assert acc["connection_key"] in text
    assert "24 heures" in text
    assert "مفتاح الدخول" in text  # Arabic page, extracted in logical order
    # A second applicant's notice in English has the English page, not the Arabic one.
    en = register(client, staff["agent"], language="en")
    r2 = client.get(f"/api/v1/accounts/{en['account_id']}/notice.pdf", headers=auth(staff["agent"]))
    t2 = _pdf_text(r2.content, tmp_path)
    assert "Connection key" in t2 and "مفتاح" not in t2
    # Gone once the applicant has connected: the key is never printed again.
    activate(client, acc)
    r = client.get(url, headers=auth(staff["agent"]))
    assert r.status_code == 410
    assert r.json()["code"] == "notice_unavailable"
    # Other roles may not print notices.
    for role in ("legal", "court", "professional", "ofii", "admin"):
        assert client.get(url, headers=auth(staff[role])).status_code == 403


def test_first_connection_rules_and_reminders(
    client: TestClient[Any], staff: dict[str, str], vault: Vault, clock: FrozenClock
) -> None:
    acc = register(client, staff["agent"])
    # No expiry: a first connection a year later still works.
    clock.advance(timedelta(days=400))
    body = {"agdref": acc["agdref"], "connection_key": acc["connection_key"]}
    for weak in ("short", "password1", "azerty123", "iloveyou", "Sunshine1"):
        r = client.post("/api/v1/auth/first-connection", json={**body, "password": weak})
        assert r.status_code == 400, (weak, r.text)
    # No composition rules: a long all-lower-case passphrase is fine.
    r = client.post("/api/v1/auth/first-connection", json={**body, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["reminder"] == "add_contacts"
    assert r.json()["missing_contacts"] == ["phone", "email"]
    assert ledger_types(vault, acc["account_id"]) == ["ACCOUNT_CREATED", "ACCOUNT_ACTIVATED"]
    client.cookies.clear()
    # Later logins, by AGDREF or OFPRA number, remind to keep contacts current.
    for ident in (acc["agdref"], acc["ofpra_number"]):
        r = client.post("/api/v1/auth/login", json={"identifier": ident, "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["reminder"] == "keep_contacts_current"
        client.cookies.clear()


def test_contacts_validated_and_confirmed_through_the_outbox(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    from vault.db.outbox_models import OutboxMessage

    h = auth(applicant["token"])
    r = client.get("/api/v1/me/contacts", headers=h)
    assert r.status_code == 200 and r.json() == {"phone": None, "email": None}
    for bad in (
        {"phone": "0612345678"},
        {"phone": "+0612"},
        {"email": "no-at-sign"},
        {"email": "a@b"},
        {"email": "x@" + "a" * 250 + ".fr"},
    ):
        r = client.put("/api/v1/me/contacts", json=bad, headers=h)
        assert r.status_code == 400, (bad, r.text)
    r = client.put(
        "/api/v1/me/contacts",
        json={"phone": "+33 6 12 34 56 78", "email": "Amina@Example.ORG"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"phone": "+33612345678", "email": "Amina@example.org"}
    with vault.read() as s:
        kinds = sorted(
            (m.kind, m.channel)
            for m in s.scalars(
                select(OutboxMessage).where(OutboxMessage.account_id == applicant["account_id"])
            )
        )
    assert ("contact_confirmation", "email") in kinds
    # Login now reports no missing contact.
    r = client.post(
        "/api/v1/auth/login",
        json={"identifier": applicant["agdref"], "password": applicant["password"]},
    )
    assert r.json()["missing_contacts"] == []


def test_sessions_idle_and_absolute_timeouts_and_logout(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault, clock: FrozenClock
) -> None:
    h = auth(applicant["token"])
    assert client.get("/api/v1/me/documents", headers=h).status_code == 200
    # Idle timeout: silence longer than the idle limit ends the session.
    clock.advance(timedelta(seconds=vault.settings.session_idle_seconds + 1))
    assert client.get("/api/v1/me/documents", headers=h).status_code == 401
    # Absolute timeout: even an active session ends.
    r = client.post(
        "/api/v1/auth/login",
        json={"identifier": applicant["agdref"], "password": applicant["password"]},
    )
    client.cookies.clear()
    h2 = auth(r.json()["token"])
    step = timedelta(seconds=vault.settings.session_idle_seconds // 2)
    absolute = timedelta(seconds=vault.settings.session_absolute_seconds)
    elapsed = timedelta()
    while elapsed + step < absolute:
        clock.advance(step)
        elapsed += step
        assert client.get("/api/v1/me/documents", headers=h2).status_code == 200
    clock.advance(absolute - elapsed)  # active all along, but the absolute limit is reached
    assert client.get("/api/v1/me/documents", headers=h2).status_code == 401
    # Logout revokes server-side.
    r = client.post(
        "/api/v1/auth/login",
        json={"identifier": applicant["agdref"], "password": applicant["password"]},
    )
    client.cookies.clear()
    h3 = auth(r.json()["token"])
    assert client.post("/api/v1/auth/logout", headers=h3).status_code == 204
    assert client.get("/api/v1/me/documents", headers=h3).status_code == 401
