"""``verify_ledger`` on an honest, populated ledger: online (vault) and offline
(engine + published key + TSA root), with tiles; the report's shape."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

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


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_fast_canonical_check_agrees_with_rfc8785(obj: Any) -> None:
    """The fast path of the canonical-JSON check never disagrees with ``rfc8785``."""
    import json

    import rfc8785

    from vault.ledger.verify import _canonical

    try:
        canonical = bytes(rfc8785.dumps(obj))
    except rfc8785.CanonicalizationError:
        return
    assert _canonical(canonical)[1] is True
    for other in (
        json.dumps(obj).encode(),
        json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),
        json.dumps(obj, separators=(",", ":")).encode(),
    ):
        try:
            json.loads(other)
        except ValueError:
            continue
        assert _canonical(other)[1] is (other == canonical)
