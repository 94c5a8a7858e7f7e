"""``verify_ledger`` on an honest, populated ledger: online (vault) and offline
(engine + published key + TSA root), with tiles; the report's shape."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from tests.ledger.test_tamper_campaign import populated, roots, tsa_root  # noqa: F401 -- fixtures
from vault.ledger.checkpoints import public_key
from vault.ledger.verify import CHECKS, verify_ledger
from vault.service import Vault


def test_honest_ledger_verifies_online_and_offline(
    vault: Vault,
    populated: dict[str, Any],  # noqa: F811 -- the imported fixture
    roots: list[x509.Certificate],  # noqa: F811 -- the imported fixture
) -> None:
    report = verify_ledger(vault, trust_roots=roots, tiles=True)
    assert report.ok, report.summary()
    assert report.entries == populated["entries"]
    assert report.checkpoints_verified == report.checkpoints_total == 3
    assert report.timestamps_verified == 3
    assert report.tiles_verified > 0
    assert report.last_checkpoint_size == populated["checkpoints"][-1]
    assert report.summary().startswith("ledger OK")
    offline = verify_ledger(vault.read_engine, log_vkey=public_key(vault))
    assert offline.ok, offline.summary()
    # Without a trust root or tiles flag, what was not checked is said, not hidden.
    assert any("time stamps" in s for s in offline.skipped)
    assert any("tiles" in s for s in offline.skipped)


def test_wrong_log_key_fails_the_signature_check(
    vault: Vault,
    populated: dict[str, Any],  # noqa: F811
) -> None:
    from vault.ledger.note import Signer

    other = Signer(vault.settings.log_origin, b"\x01" * 32).vkey
    report = verify_ledger(vault.read_engine, log_vkey=other)
    assert report.check == "checkpoint_signature"
    assert report.failure is not None
    assert report.failure.checkpoint_size == populated["checkpoints"][0]
    assert report.to_json()["failure"]["check"] in CHECKS


def test_empty_ledger_verifies(vault: Vault) -> None:
    report = verify_ledger(vault)
    assert report.ok and report.entries == 0
