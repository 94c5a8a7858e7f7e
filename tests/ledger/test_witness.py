"""The independent witness (C2SP tlog-witness add-checkpoint semantics), against the
real vault API on both profiles: it cosigns an honest growing log, its cosignature is
accepted and served with ``/log/checkpoint``, and it refuses a fork, a rollback and an
inconsistent tree, leaving its state untouched."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from tests.ledger.test_tamper_campaign import (  # noqa: F401 -- fixtures
    BASE,
    populate,
    tsa_root,
)
from vault.ledger.checkpoint import Checkpoint
from vault.ledger.checkpoints import log_signer, public_key
from vault.ledger.note import CosignatureVerifier, open_note, sign_note, verifier_from_vkey
from vault.ledger.witness import Witness, WitnessKeyError, keygen, load_witness_key
from vault.service import Vault


@pytest.fixture
def witness_key(vault: Vault, tmp_path: Path) -> tuple[Path, str]:
    """A cosigner key made with ``witness keygen``, configured as a trusted witness."""
    path = tmp_path / "witness.key"
    vkey = keygen("cnda.example/witness", path)
    vault.settings = dataclasses.replace(vault.settings, witness_keys=vkey)
    return path, vkey


def make_witness(
    vault: Vault, key: Path, state: Path, http: httpx.Client | TestClient[Any]
) -> Witness:
    return Witness(
        BASE,
        load_witness_key(key),
        state,
        log_vkey=public_key(vault),
        http_client=http,
        now=lambda: int(vault.clock.now().timestamp()),
    )


def serving(client: TestClient[Any], checkpoint: Callable[[], str]) -> httpx.Client:
    """An httpx client that reaches the real app, except that ``/log/checkpoint``
    answers what the (compromised) log chooses to show this witness."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/log/checkpoint":
            return httpx.Response(200, text=checkpoint())
        r = client.request(
            request.method,
            str(request.url),
            content=request.content,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )
        return httpx.Response(r.status_code, content=r.content, headers=dict(r.headers))

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_witness_cosigns_an_honest_growing_log(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    witness_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    key, vkey = witness_key
    state = tmp_path / "witness.json"
    w = make_witness(vault, key, state, client)
    info = populate(client, staff, vault, clock, rounds=1)
    r = w.step()
    assert r.status == "cosigned", r.summary()
    assert r.size == info["checkpoints"][-1] and r.previous_size == 0

    # Accepted by the vault and served with the checkpoint; it verifies as cosignature/v1.
    served = client.get("/log/checkpoint").text
    witness = verifier_from_vkey(vkey)
    assert isinstance(witness, CosignatureVerifier)
    opened = open_note(served, [witness, log_signer(vault).verifier()])
    assert sorted(opened.verified_names()) == sorted(
        [vault.settings.log_origin, "cnda.example/witness"]
    )
    assert w.step().status == "up_to_date"

    # The log grows: the witness checks consistency from what it cosigned.
    info = populate(client, staff, vault, clock, rounds=2)
    r = w.step()
    assert r.status == "cosigned", r.summary()
    assert r.previous_size is not None and r.size is not None and r.previous_size < r.size
    assert "consistent with" in r.message
    served = client.get("/log/checkpoint").text
    cp = Checkpoint.parse(served[: served.rfind("\n\n") + 1])
    assert cp.size == r.size
    assert "— cnda.example/witness " in served


def _forged(vault: Vault, size: int, root: bytes) -> str:
    body = Checkpoint.for_log(vault.settings.log_origin, size, root).to_text()
    return sign_note(body, [log_signer(vault)])


def _cosigned_once(
    vault: Vault, client: TestClient[Any], staff: dict[str, str], clock: Any, key: Path, state: Path
) -> tuple[Witness, dict[str, Any]]:
    info = populate(client, staff, vault, clock, rounds=2)
    w = make_witness(vault, key, state, client)
    assert w.step().status == "cosigned"
    return w, info


def test_witness_refuses_a_fork_of_the_same_size(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    witness_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    key, _ = witness_key
    state = tmp_path / "witness.json"
    _, info = _cosigned_once(vault, client, staff, clock, key, state)
    before = state.read_bytes()
    size = info["checkpoints"][-1]
    fork = _forged(vault, size, b"\x66" * 32)  # genuinely signed by the log key
    w = make_witness(vault, key, state, serving(client, lambda: fork))
    r = w.step()
    assert r.status == "fork" and r.refused and r.exit_code == 1, r.summary()
    assert "two histories" in r.message
    assert state.read_bytes() == before
    evidence = list((tmp_path / "witness.json.evidence").iterdir())
    assert len(evidence) == 1 and evidence[0].read_text() == fork
    with vault.read() as s:
        from sqlalchemy import func, select

        from vault.db.ledger_models import LedgerCosignature

        assert s.scalar(select(func.count()).select_from(LedgerCosignature)) == 1


def test_witness_refuses_a_rollback(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    witness_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    key, _ = witness_key
    state = tmp_path / "witness.json"
    _, info = _cosigned_once(vault, client, staff, clock, key, state)
    before = state.read_bytes()
    older = client.get(f"/log/checkpoint/{info['checkpoints'][0]}/note").text  # real, older
    w = make_witness(vault, key, state, serving(client, lambda: older))
    r = w.step()
    assert r.status == "rollback" and r.exit_code == 1, r.summary()
    assert state.read_bytes() == before


def test_witness_refuses_a_larger_tree_that_is_not_consistent(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    witness_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    key, _ = witness_key
    state = tmp_path / "witness.json"
    _cosigned_once(vault, client, staff, clock, key, state)
    before = state.read_bytes()
    populate(client, staff, vault, clock, rounds=1)  # the real log grows...
    with vault.read() as s:
        from vault.ledger.store import current_size

        n = current_size(s)
    # ...but this witness is shown a tree of that size with another root.
    other = _forged(vault, n, b"\x77" * 32)
    r = make_witness(vault, key, state, serving(client, lambda: other)).step()
    assert r.status == "inconsistent" and r.exit_code == 1, r.summary()
    assert state.read_bytes() == before


def test_witness_refuses_a_checkpoint_not_signed_by_the_log(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    witness_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    from vault.ledger.note import Signer

    key, _ = witness_key
    state = tmp_path / "witness.json"
    _cosigned_once(vault, client, staff, clock, key, state)
    before = state.read_bytes()
    body = Checkpoint.for_log(vault.settings.log_origin, 10**6, b"\x01" * 32).to_text()
    fake = sign_note(body, [Signer(vault.settings.log_origin, b"\x02" * 32)])
    r = make_witness(vault, key, state, serving(client, lambda: fake)).step()
    assert r.status == "bad_signature" and r.refused, r.summary()
    assert state.read_bytes() == before


def test_witness_needs_a_pinned_log_key_and_keeps_it(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    keygen("w.example", key)
    signer = load_witness_key(key)
    from vault.ledger.monitor import StateFileError

    with pytest.raises(StateFileError):
        Witness(BASE, signer, tmp_path / "s.json").step()


def test_witness_keygen_cli_and_key_file(tmp_path: Path) -> None:
    from vault.cli_ledger import witness_app

    out = tmp_path / "keys" / "witness.key"
    r = CliRunner().invoke(witness_app, ["keygen", "--name", "cnda.example/w", "--out", str(out)])
    assert r.exit_code == 0, r.output
    vkey = r.output.strip()
    assert vkey.startswith("cnda.example/w+")
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert out.read_text().startswith("PRIVATE+KEY+cnda.example/w+")
    assert load_witness_key(out).vkey == vkey
    again = CliRunner().invoke(witness_app, ["keygen", "--name", "x", "--out", str(out)])
    assert again.exit_code == 2  # never overwrites a key
    with pytest.raises(WitnessKeyError):
        keygen("x", out)
    bad = tmp_path / "bad.key"
    bad.write_text("PRIVATE+KEY+nonsense\n")
    with pytest.raises(WitnessKeyError):
        load_witness_key(bad)
