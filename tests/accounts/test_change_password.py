"""Password change while signed in and the saved language (issue 7): the service and
the JSON API, on both profiles. Tests named after the attack they cover."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.accounts.helpers import ledger_types
from tests.conftest import auth
from vault import accounts
from vault.clock import FrozenClock
from vault.errors import Forbidden, InvalidInput
from vault.principal import Principal
from vault.service import Vault

NEW = "a brand new passphrase"


def _login(client: TestClient[Any], ident: str, password: str) -> Any:
    r = client.post("/api/v1/auth/login", json={"identifier": ident, "password": password})
    client.cookies.clear()
    return r


def _change(client: TestClient[Any], token: str, current: str, new: str) -> Any:
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=auth(token),
    )
    client.cookies.clear()
    return r


def test_change_password_keeps_this_session_and_revokes_the_others(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    """A thief's session (opened with a leaked password) dies when the owner changes it."""
    thief = _login(client, applicant["agdref"], applicant["password"]).json()["token"]
    before = ledger_types(vault, applicant["account_id"])
    r = _change(client, applicant["token"], applicant["password"], NEW)
    assert r.status_code == 204, r.text
    assert r.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/me/documents", headers=auth(applicant["token"]))
    assert me.status_code == 200  # the session that changed it stays open
    assert client.get("/api/v1/me/documents", headers=auth(thief)).status_code == 401
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 401
    assert _login(client, applicant["agdref"], NEW).status_code == 200
    # Like reset-password: nothing in the ledger (no evidence, no personal data).
    assert ledger_types(vault, applicant["account_id"]) == before


def test_stolen_session_cannot_change_password_without_the_current_one(
    client: TestClient[Any], applicant: dict[str, str]
) -> None:
    r = _change(client, applicant["token"], "not my password", NEW)
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "wrong_current_password"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert NEW not in r.text and "not my password" not in r.text
    # Nothing changed: the old password still logs in, the session is still valid.
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 200
    me = client.get("/api/v1/me/documents", headers=auth(applicant["token"]))
    assert me.status_code == 200


def test_weak_new_password_is_refused_with_the_first_connection_code(
    client: TestClient[Any], applicant: dict[str, str]
) -> None:
    for weak in ("short", "password1", "azerty123", "x" * 200):
        r = _change(client, applicant["token"], applicant["password"], weak)
        assert r.status_code == 400, (weak, r.text)
        assert r.json()["code"] == "invalid_input"
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 200


def test_guessing_the_current_password_through_a_session_is_throttled_like_login(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault, clock: FrozenClock
) -> None:
    """A stolen session is no better a password oracle than the log-in form: both draw
    on the same per-account budget, with the same lockout."""
    n = vault.settings.auth_max_failures
    for i in range(n):
        assert _change(client, applicant["token"], f"guess-{i}", NEW).status_code == 403
    r = _change(client, applicant["token"], applicant["password"], NEW)
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_requests"
    assert int(r.headers["retry-after"]) == vault.settings.auth_lockout_seconds
    # The log-in form is locked too (one budget), and nothing was changed.
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 429
    clock.advance(timedelta(seconds=vault.settings.auth_lockout_seconds + 1))
    assert _change(client, applicant["token"], applicant["password"], NEW).status_code == 204
    assert _login(client, applicant["agdref"], NEW).status_code == 200


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_staff_and_anonymous_cannot_change_an_applicant_password(
    client: TestClient[Any], applicant: dict[str, str], staff: dict[str, str]
) -> None:
    body = {"current_password": applicant["password"], "new_password": NEW}
    assert client.post("/api/v1/me/password", json=body).status_code == 401
    for role in ("agent", "legal", "court", "professional", "admin"):
        r = client.post("/api/v1/me/password", json=body, headers=auth(staff[role]))
        assert r.status_code == 403, role
    # Unknown fields are refused (no mass assignment), missing ones too.
    r = _change(client, applicant["token"], applicant["password"], NEW)
    assert r.status_code == 204
    extra = {**body, "current_password": NEW, "account_id": "someone-else"}
    r = client.post("/api/v1/me/password", json=extra, headers=auth(applicant["token"]))
    assert r.status_code == 400
    r = client.post(
        "/api/v1/me/password", json={"new_password": NEW}, headers=auth(applicant["token"])
    )
    assert r.status_code == 400


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_set_language_is_saved_validated_and_applicant_only(
    applicant: dict[str, str], vault: Vault
) -> None:
    from vault.db.models import Account

    me = Principal("applicant", applicant["account_id"], "applicant", "SPADA-35")
    assert accounts.set_language(vault, me, "ar") is True
    assert accounts.set_language(vault, me, "ar") is False  # no write when unchanged
    with vault.read() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None and acc.language == "ar"
    for bad in ("", "arabic", "AR", "ar;drop", "x" * 9):
        with pytest.raises(InvalidInput):
            accounts.set_language(vault, me, bad)
    with pytest.raises(Forbidden):
        accounts.set_language(vault, Principal("staff", "s1", "agent", None), "fr")
    with pytest.raises(Forbidden):
        accounts.change_password(
            vault, Principal("staff", "s1", "agent", None), applicant["password"], NEW
        )
