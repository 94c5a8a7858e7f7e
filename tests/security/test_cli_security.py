"""``ofpra-vault security`` commands (vault/cli_security.py), embedded profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault.cli_security import security_app


def test_cli_rotate_log_key_announces_and_ledger_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VAULT_ARGON2_MEMLIMIT", "65536")
    monkeypatch.setenv("VAULT_ARGON2_OPSLIMIT", "1")
    runner = CliRunner()
    r = runner.invoke(security_app, ["rotate-log-key", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["new_version"] == out["old_version"] + 1
    # name+keyid+base64: the base64 part may itself contain "+" (C2SP signed-note).
    name, key_id, key = out["vkey"].split("+", 2)
    assert name and len(key_id) == 8 and key
    from vault.config import load_settings
    from vault.ledger.verify import verify_ledger
    from vault.service import open_vault

    v = open_vault(load_settings(), migrate=False)
    try:
        assert v.keyring.log_signing_version == out["new_version"]
        report = verify_ledger(v)
        assert report.ok, report.summary()
    finally:
        v.close()


def test_cli_shred_refuses_without_confirmation(tmp_path: Path) -> None:
    r = CliRunner().invoke(security_app, ["shred", "00000000-0000-0000-0000-000000000000"])
    assert r.exit_code == 2
