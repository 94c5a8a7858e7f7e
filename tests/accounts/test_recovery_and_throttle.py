"""Recovery (issue 5 §4) and the brute-force defence (§5): tests named after the attack."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import select

from tests.accounts.helpers import PASSWORD, activate, register
from tests.conftest import auth
from vault.clock import FrozenClock
from vault.service import Vault


def _login(client: TestClient[Any], ident: str, password: str) -> Any:
    r = client.post("/api/v1/auth/login", json={"identifier": ident, "password": password})
    client.cookies.clear()
    return r


def test_reset_password_with_key_and_uniform_failures(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    good = {
        "identifier": applicant["ofpra_number"],
        "connection_key": applicant["connection_key"].lower().replace("-", " "),
        "password": "a brand new passphrase",
    }
    wrong_key = {**good, "connection_key": "2222-2222-2222-2222-2222"}
    unknown = {**good, "identifier": "9999999999"}
    r1 = client.post("/api/v1/auth/reset-password", json=wrong_key)
    r2 = client.post("/api/v1/auth/reset-password", json=unknown)
    assert r1.status_code == r2.status_code == 401
    assert r1.json() == r2.json()  # same words whether or not the account exists
    r = client.post("/api/v1/auth/reset-password", json=good)
    assert r.status_code == 200, r.text
    client.cookies.clear()
    # The old session and the old password are gone.
    assert client.get("/api/v1/me/documents", headers=auth(applicant["token"])).status_code == 401
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 401
    assert _login(client, applicant["agdref"], good["password"]).status_code == 200


def test_recover_key_never_reveals_account_or_contact(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    from vault.alerts.outbox import CONTEXT_PURPOSE, open_json, row_binding
    from vault.db.outbox_models import OutboxMessage

    h = auth(applicant["token"])
    assert client.put("/api/v1/me/contacts", json={"email": "a@example.org"}, headers=h).is_success
    answers = []
    for ident, channel in (
        (applicant["agdref"], "email"),  # account with that contact
        (applicant["agdref"], "sms"),  # account without a phone
        ("9999999999", "email"),  # no account
    ):
        r = client.post("/api/v1/auth/recover-key", json={"identifier": ident, "channel": channel})
        answers.append((r.status_code, r.text))
    assert len(set(answers)) == 1 and answers[0][0] == 202
    with vault.read() as s:
        rows = list(
            s.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.account_id == applicant["account_id"],
                    OutboxMessage.kind == "key_recovery",
                )
            )
        )
    assert [m.channel for m in rows] == ["email"]
    ctx = open_json(
        vault, rows[0].context_sealed, CONTEXT_PURPOSE, row_binding(rows[0].dedupe_key, "email")
    )
    assert ctx["connection_key"] == applicant["connection_key"]


def test_credential_stuffing_locks_account(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault, clock: FrozenClock
) -> None:
    """Many leaked passwords tried against one account, from many addresses."""
    n = vault.settings.auth_max_failures
    for i in range(n):
        r = _login(client, applicant["agdref"], f"leaked-password-{i}")
        assert r.status_code == 401
    # Locked now, even for the right password, with a Retry-After.
    r = _login(client, applicant["agdref"], applicant["password"])
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_requests"
    assert int(r.headers["retry-after"]) == vault.settings.auth_lockout_seconds
    # The OFPRA number is another identifier but the same door stays shut on reset too.
    r = client.post(
        "/api/v1/auth/reset-password",
        json={
            "identifier": applicant["agdref"],
            "connection_key": applicant["connection_key"],
            "password": "another good passphrase",
        },
    )
    assert r.status_code == 429
    # After the lockout the owner gets in; the next lockout would be twice as long.
    clock.advance(timedelta(seconds=vault.settings.auth_lockout_seconds + 1))
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 200


def test_backoff_doubles_on_repeated_lockouts(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault, clock: FrozenClock
) -> None:
    n, lock = vault.settings.auth_max_failures, vault.settings.auth_lockout_seconds
    for round_ in range(2):
        for i in range(n):
            assert _login(client, applicant["agdref"], f"guess-{round_}-{i}").status_code == 401
        r = _login(client, applicant["agdref"], "guess-more")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) == lock * 2**round_
        clock.advance(timedelta(seconds=lock * 2**round_ + 1))


def test_lockout_does_not_reveal_account_existence(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    n = vault.settings.auth_max_failures
    seen = {}
    for ident in (applicant["agdref"], "8888888888"):
        codes = [_login(client, ident, f"wrong-{i}").status_code for i in range(n + 1)]
        last = _login(client, ident, "wrong-again")
        seen[ident] = (codes, last.status_code, last.json(), last.headers["retry-after"])
    known, unknown = seen.values()
    assert known == unknown
    assert known[0] == [401] * n + [429]


def test_password_spraying_locked_out_per_address(
    client: TestClient[Any], staff: dict[str, str], vault: Vault, clock: FrozenClock
) -> None:
    """One common password tried against many accounts from one address."""
    limit = vault.settings.auth_ip_per_minute
    idents = [str(7000000000 + i) for i in range(limit + 3)]
    codes = [_login(client, ident, "Password2026!").status_code for ident in idents]
    assert codes[:limit] == [401] * limit
    assert set(codes[limit:]) == {429}
    # The same address is refused for first connections and key recovery too.
    acc = register(client, staff["agent"])
    r = client.post(
        "/api/v1/auth/first-connection",
        json={
            "agdref": acc["agdref"],
            "connection_key": acc["connection_key"],
            "password": PASSWORD,
        },
    )
    assert r.status_code == 429
    r = client.post(
        "/api/v1/auth/recover-key", json={"identifier": acc["agdref"], "channel": "sms"}
    )
    assert r.status_code == 429
    # A minute later the address may try again.
    clock.advance(timedelta(seconds=61))
    activate(client, acc)


def test_parallel_guessing_respects_limit(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    """Many simultaneous guesses must not slip past the per-account limit."""
    from vault import accounts
    from vault.errors import TooManyRequests, Unauthenticated

    n = vault.settings.auth_max_failures
    results: list[str] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        try:
            accounts.login(vault, applicant["agdref"], f"parallel-{i}", client=f"10.0.0.{i}")
            out = "ok"
        except Unauthenticated:
            out = "401"
        except TooManyRequests:
            out = "429"
        with lock:
            results.append(out)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(4 * n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 0
    assert results.count("401") == n  # exactly the allowed number was checked
    assert results.count("429") == 3 * n


def test_key_recovery_flood_is_throttled_but_does_not_lock_login(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    """Denial of service by spamming recover-key must not lock the owner out."""
    n = vault.settings.auth_max_failures
    body = {"identifier": applicant["agdref"], "channel": "email"}
    codes = [client.post("/api/v1/auth/recover-key", json=body).status_code for _ in range(n + 1)]
    assert codes == [202] * n + [429]
    assert _login(client, applicant["agdref"], applicant["password"]).status_code == 200
