"""Checkpoints: signed C2SP notes with an RFC 3161 token that ``openssl ts -verify``
accepts, the cadence helpers, and witness cosignatures (accepted, forged, unknown).
Both profiles; on production the TSA is the test TSA standing in for the URL one."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from vault.db.ledger_models import LedgerCheckpoint, LedgerCosignature
from vault.errors import InvalidInput
from vault.ledger import checkpoints, proofs
from vault.ledger.checkpoint import Checkpoint, open_checkpoint
from vault.ledger.checkpoints import (
    CheckpointNotFound,
    InvalidCosignature,
    UnknownWitness,
    add_cosignature,
    make_checkpoint,
)
from vault.ledger.note import CosignatureSigner, Ed25519Verifier, Signer
from vault.service import Vault


@pytest.fixture
def pki(vault: Vault, tmp_path: Path) -> Any:
    """The TSA trust material; on production, install the test TSA as the TSA."""
    if vault.settings.profile == "production":
        from vault.pdf.pki import load_or_create_test_pki
        from vault.tsa import LocalTimeStamper

        p = load_or_create_test_pki(tmp_path / "tsa-pki", vault.clock.now())
        vault.extras["timestamper"] = LocalTimeStamper.from_test_pki(p, vault.clock)
        return p
    return vault.test_pki()


def _append(vault: Vault, n: int) -> None:
    def unit(_s: Any, ledger: Any) -> None:
        ledger.append("KEY_ROTATED", note="cp")

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda _: vault.sequencer.run(unit, savepoint=False), range(n)))


def test_checkpoint_is_a_signed_note_over_the_stored_root(vault: Vault, pki: Any) -> None:
    assert make_checkpoint(vault) is None  # empty log: nothing to sign
    _append(vault, 300)
    cp = make_checkpoint(vault)
    assert cp is not None and cp.size == 300
    verifier = Ed25519Verifier.from_vkey(checkpoints.public_key(vault))
    body, opened = open_checkpoint(cp.note, [verifier], origin=vault.settings.log_origin)
    assert body == Checkpoint(vault.settings.log_origin, 300, proofs.root_at(vault, 300))
    assert opened.verified_names() == [vault.settings.log_origin]
    assert cp.key_version == vault.keyring.log_signing_version
    # Not grown: no new checkpoint; grown: a new one.
    assert make_checkpoint(vault) is None
    _append(vault, 1)
    cp2 = make_checkpoint(vault)
    assert cp2 is not None and cp2.size == 301
    assert checkpoints.latest_checkpoint(vault).size == 301  # type: ignore[union-attr]
    assert checkpoints.checkpoint_at_or_after(vault, 1).size == 300  # type: ignore[union-attr]
    assert checkpoints.checkpoint_at_or_after(vault, 301).size == 301  # type: ignore[union-attr]
    assert checkpoints.checkpoint_at_or_after(vault, 302) is None


def test_openssl_ts_verify_accepts_the_token_over_the_exact_note(
    vault: Vault, pki: Any, tmp_path: Path
) -> None:
    _append(vault, 3)
    cp = make_checkpoint(vault)
    assert cp is not None and cp.timestamp_token
    note = tmp_path / "note.txt"
    note.write_bytes(cp.note.encode("utf-8"))
    token = tmp_path / "token.der"
    token.write_bytes(cp.timestamp_token)
    cmd = ["openssl", "ts", "-verify", "-data", str(note), "-in", str(token), "-token_in"]
    cmd += ["-CAfile", str(pki.root_path), "-untrusted", str(pki.chain_path)]
    ok = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    # One changed byte of the note and the token no longer matches.
    note.write_bytes(cp.note.replace("\n", "\n ", 1).encode("utf-8"))
    bad = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert bad.returncode != 0


def test_checkpoints_from_concurrent_callers_are_stored_once_in_size_order(
    vault: Vault, pki: Any
) -> None:
    _append(vault, 50)
    with ThreadPoolExecutor(6) as ex:
        made = [c for c in ex.map(lambda _: make_checkpoint(vault), range(6)) if c is not None]
    assert [c.size for c in made] == [50]
    with vault.read() as s:
        assert list(s.execute(select(LedgerCheckpoint.size)).scalars()) == [50]


def test_ensure_checkpoint_covering_makes_one_only_when_needed(vault: Vault, pki: Any) -> None:
    _append(vault, 10)
    first = checkpoints.ensure_checkpoint_covering(vault, 9)
    assert first.size == 10
    assert checkpoints.ensure_checkpoint_covering(vault, 3).size == 10
    _append(vault, 5)
    assert checkpoints.ensure_checkpoint_covering(vault, 12).size == 15


# --- witnesses ---------------------------------------------------------------------


def _witness(name: str, seed_byte: int) -> CosignatureSigner:
    return CosignatureSigner(name, bytes([seed_byte]) * 32)


def _configure(vault: Vault, *witnesses: CosignatureSigner) -> None:
    keys = ",".join(w.vkey for w in witnesses)
    vault.settings = dataclasses.replace(vault.settings, witness_keys=keys)


def _cosigned(cp: LedgerCheckpoint, *witnesses: CosignatureSigner, ts: int = 1772355600) -> str:
    body = cp.note[: cp.note.index("\n\n") + 1]
    return cp.note + "".join(w.sign(body, timestamp=ts) for w in witnesses)


def test_witness_cosignature_is_verified_stored_and_served(vault: Vault, pki: Any) -> None:
    w1, w2 = _witness("cnda.example/witness", 1), _witness("rights.example/w", 2)
    _configure(vault, w1, w2)
    _append(vault, 20)
    cp = make_checkpoint(vault)
    assert cp is not None
    res = add_cosignature(vault, _cosigned(cp, w1))
    assert (res.size, res.accepted, res.duplicates) == (20, [w1.name], [])
    # The same witness again (even with another timestamp) is a duplicate; w2 is new.
    res = add_cosignature(vault, _cosigned(cp, w1, w2, ts=1772355700))
    assert (res.accepted, res.duplicates) == ([w2.name], [w1.name])
    served = checkpoints.served_note(vault, cp)
    opened = open_checkpoint(
        served,
        [Ed25519Verifier.from_vkey(checkpoints.public_key(vault)), w1.verifier(), w2.verifier()],
        origin=vault.settings.log_origin,
    )[1]
    assert sorted(opened.verified_names()) == sorted([vault.settings.log_origin, w1.name, w2.name])


def test_forged_cosignature_is_rejected_and_nothing_stored(vault: Vault, pki: Any) -> None:
    w1 = _witness("cnda.example/witness", 1)
    _configure(vault, w1)
    _append(vault, 5)
    cp = make_checkpoint(vault)
    assert cp is not None
    # The witness's own line with one bit of the Ed25519 signature flipped.
    line = w1.sign(cp.note[: cp.note.index("\n\n") + 1], timestamp=1772355600)
    prefix, b64 = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    forged = cp.note + prefix + " " + base64.b64encode(bytes(raw)).decode() + "\n"
    with pytest.raises(InvalidCosignature) as e:
        add_cosignature(vault, forged)
    assert e.value.status == 422
    with vault.read() as s:
        assert s.execute(select(LedgerCosignature)).first() is None


def test_cosignature_from_unknown_witness_is_refused(vault: Vault, pki: Any) -> None:
    _configure(vault, _witness("cnda.example/witness", 1))
    _append(vault, 5)
    cp = make_checkpoint(vault)
    assert cp is not None
    with pytest.raises(UnknownWitness) as e:
        add_cosignature(vault, _cosigned(cp, _witness("stranger.example/w", 3)))
    assert (e.value.status, e.value.code) == (403, "unknown_witness")


def test_cosignature_on_a_checkpoint_the_log_never_signed_is_refused(
    vault: Vault, pki: Any
) -> None:
    """A split-view attempt from the outside: a witness cosigning a different tree of
    the same size must not get that note attached to ours."""
    w1 = _witness("cnda.example/witness", 1)
    _configure(vault, w1)
    _append(vault, 5)
    cp = make_checkpoint(vault)
    assert cp is not None
    other = Checkpoint(vault.settings.log_origin, 5, bytes(32)).to_text()
    fake_log = Signer(vault.settings.log_origin, bytes([7]) * 32)
    note = other + "\n" + fake_log.sign(other) + w1.sign(other, timestamp=1772355600)
    with pytest.raises(CheckpointNotFound):
        add_cosignature(vault, note)
    with pytest.raises(CheckpointNotFound):
        add_cosignature(vault, _cosigned(cp, w1).replace("\n5\n", "\n6\n", 1))
    with pytest.raises(InvalidInput):
        add_cosignature(vault, "not a note")


def test_cosignature_dated_in_the_future_is_refused(vault: Vault, pki: Any) -> None:
    w1 = _witness("cnda.example/witness", 1)
    _configure(vault, w1)
    _append(vault, 2)
    cp = make_checkpoint(vault)
    assert cp is not None
    future = int(vault.clock.now().timestamp()) + 3600
    with pytest.raises(InvalidCosignature):
        add_cosignature(vault, _cosigned(cp, w1, ts=future))


# --- CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["embedded"])  # the CLI opens its own vault and TSA
def test_cli_ledger_checkpoint_and_rebuild(
    vault: Vault, pki: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.cli import app

    _append(vault, 400)
    monkeypatch.setenv("VAULT_DATA_DIR", str(vault.settings.data_dir))
    monkeypatch.setenv("VAULT_BACKGROUND_TASKS", "false")
    runner = CliRunner()
    r = runner.invoke(app, ["ledger", "checkpoint", "--json"], env=dict(os.environ))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["created"] is True and out["size"] == 400
    r = runner.invoke(app, ["ledger", "checkpoint", "--json"], env=dict(os.environ))
    assert json.loads(r.stdout)["created"] is False
    r = runner.invoke(app, ["ledger", "rebuild", "--json"], env=dict(os.environ))
    assert r.exit_code == 0, r.output
    rebuilt = json.loads(r.stdout)
    assert rebuilt["size"] == 400 and rebuilt["root_hash"] == out["root_hash"]
