"""The external monitor against the real vault API, on both profiles: TOFU or pinned
key, consistency across growth, ``--full`` re-derivation, a served fork, a bad
signature, and that nothing is saved unless every check passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from typer.testing import CliRunner

from tests.ledger.test_tamper_campaign import BASE, populate, tsa_root  # noqa: F401
from tests.ledger.test_witness import _forged, serving
from vault.ledger.checkpoints import public_key
from vault.ledger.monitor import Monitor
from vault.service import Vault


def test_monitor_follows_a_growing_log(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    tmp_path: Path,
) -> None:
    state = tmp_path / "monitor.json"
    populate(client, staff, vault, clock, rounds=1)
    m = Monitor(BASE, state, http_client=client)
    r = m.check(full=True)
    assert r.status == "first" and r.ok, r.summary()
    assert "trust on first use" in r.key_source
    assert r.entries_rederived == r.new_size
    saved = json.loads(state.read_text())
    assert saved["log_vkey"] == public_key(vault) and saved["key_source"] == "tofu"

    assert m.check().status == "unchanged"
    info = populate(client, staff, vault, clock, rounds=2)
    r = m.check(full=True)
    assert r.status == "grew" and r.ok, r.summary()
    assert r.new_size == info["checkpoints"][-1] and r.entries_rederived == r.new_size
    assert "pinned in state file" in r.key_source
    assert json.loads(state.read_text())["size"] == r.new_size


def test_monitor_reports_a_split_view_and_keeps_its_anchor(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    tmp_path: Path,
) -> None:
    state = tmp_path / "monitor.json"
    info = populate(client, staff, vault, clock, rounds=1)
    assert Monitor(BASE, state, public_key(vault), http_client=client).check().ok
    before = state.read_bytes()
    fork = _forged(vault, info["checkpoints"][-1], b"\x55" * 32)
    r = Monitor(BASE, state, http_client=serving(client, lambda: fork)).check()
    assert r.status == "split_view" and r.exit_code == 1, r.summary()
    assert "same size" in r.message
    assert state.read_bytes() == before


def test_monitor_rejects_a_checkpoint_not_signed_by_the_pinned_key(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    clock: Any,
    tsa_root: Path,  # noqa: F811 -- the imported fixture
    tmp_path: Path,
) -> None:
    from vault.ledger.note import Signer

    populate(client, staff, vault, clock, rounds=1)
    other = Signer(vault.settings.log_origin, b"\x09" * 32).vkey
    r = Monitor(BASE, tmp_path / "m.json", other, http_client=client).check()
    assert r.status == "bad_signature" and r.exit_code == 1
    assert "pinned (--log-key)" in r.key_source
    assert not (tmp_path / "m.json").exists()


def test_monitor_cli_unreachable_log(tmp_path: Path) -> None:
    from vault.cli_ledger import ledger_app

    r = CliRunner().invoke(
        ledger_app,
        ["monitor", "--url", "http://127.0.0.1:9", "--state", str(tmp_path / "s.json")],
    )
    assert r.exit_code == 3, r.output
    assert "unreachable" in r.output
