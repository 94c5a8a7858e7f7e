"""The ofpra-vault command line, run as a real subprocess on the embedded profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "vault.cli"]


def run(data_dir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VAULT_DATA_DIR": str(data_dir),
        "VAULT_ARGON2_MEMLIMIT": "65536",
        "VAULT_ARGON2_OPSLIMIT": "1",
    }
    p = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_migrate_creates_private_data_dir_and_keyring(tmp_path: Path) -> None:
    d = tmp_path / "data"
    out = json.loads(run(d, "migrate", "--json").stdout)
    assert out["revision"]
    assert (d.stat().st_mode & 0o777) == 0o700
    run(d, "staff", "create", "--role", "agent", "--name", "A")
    keyring = d / "keys" / "keyring.json"
    assert (keyring.stat().st_mode & 0o777) == 0o600


def test_staff_create_prints_token_and_json(tmp_path: Path) -> None:
    d = tmp_path / "data"
    token = run(d, "staff", "create", "--role", "agent", "--name", "Agent A").stdout.strip()
    assert token.startswith("ovt_") and len(token) > 40
    out = json.loads(run(d, "staff", "create", "--role", "legal", "--name", "L", "--json").stdout)
    assert out["role"] == "legal" and out["token"].startswith("ovt_")
    bad = run(d, "staff", "create", "--role", "pirate", "--name", "X", ok=False)
    assert bad.returncode != 0 and "role must be one of" in bad.stderr
    bad = run(d, "staff", "create", "--role", "professional", "--name", "X", ok=False)
    assert bad.returncode != 0 and "structure" in bad.stderr


def test_keys_rotate_and_sweep_blobs(tmp_path: Path) -> None:
    d = tmp_path / "data"
    out = json.loads(run(d, "keys", "rotate", "--json").stdout)
    assert out["new_version"] == 2
    out = json.loads(run(d, "sweep", "blobs", "--json").stdout)
    assert out == {"deleted": 0, "kept_recent": 0, "referenced": 0, "scanned": 0}
    out = json.loads(run(d, "sweep", "notifications", "--json").stdout)
    assert out["notified"] == 0


def test_legal_commands_are_mounted(tmp_path: Path) -> None:
    out = json.loads(
        run(tmp_path, "legal", "appeal-deadline", "--notified", "2026-03-10", "--json").stdout
    )
    assert out["deadline"] == "2026-04-13"


@pytest.mark.parametrize("profile_env", [{"VAULT_PROFILE": "production"}])
def test_production_profile_never_generates_keys(
    tmp_path: Path, profile_env: dict[str, str]
) -> None:
    env = {
        **os.environ,
        **profile_env,
        "VAULT_DATA_DIR": str(tmp_path),
        "VAULT_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "VAULT_BLOB_STORE": "fs",
        "VAULT_KEYRING_FILE": str(tmp_path / "missing.json"),
    }
    p = subprocess.run(
        [*CLI, "staff", "create", "--role", "agent", "--name", "A"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode != 0
    assert "never generates keys" in p.stderr
    assert not (tmp_path / "missing.json").exists()
