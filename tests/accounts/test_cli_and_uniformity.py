"""The accounts CLI, and the 'same work for unknown identifiers' rule (§4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from vault import accounts
from vault.config import Settings
from vault.errors import Unauthenticated
from vault.service import Vault


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_cli_sweep_closures_and_purge(
    settings: Settings, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.cli_accounts import accounts_app

    monkeypatch.setenv("VAULT_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    r = runner.invoke(accounts_app, ["sweep-closures", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"due": 0, "closed": 0, "dry_run": True}
    r = runner.invoke(accounts_app, ["purge-throttle", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == {"purged": 0}


def test_unknown_identifier_costs_the_same_argon2_work(
    applicant: dict[str, str], vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing side channel: an unknown identifier runs one Argon2id verification,
    exactly like a known one with a wrong secret (login, reset)."""
    calls: list[str] = []
    real_verify, real_dummy = accounts.verify_password, accounts.dummy_verify

    def verify(*a: Any) -> bool:
        calls.append("verify")
        return real_verify(*a)

    def dummy(*a: Any) -> None:
        calls.append("dummy")
        real_dummy(*a)

    monkeypatch.setattr(accounts, "verify_password", verify)
    monkeypatch.setattr(accounts, "dummy_verify", dummy)
    cases = [
        lambda ident: accounts.login(vault, ident, "not the password"),
        lambda ident: accounts.reset_password(
            vault, ident, "2222-2222-2222-2222-2222", "a new long passphrase"
        ),
    ]
    for case in cases:
        per_ident = []
        for ident in (applicant["agdref"], "5555555555"):
            calls.clear()
            with pytest.raises(Unauthenticated) as exc:
                case(ident)
            per_ident.append((len(calls), exc.value.detail))
        assert per_ident[0] == per_ident[1]
        assert per_ident[0][0] == 1
