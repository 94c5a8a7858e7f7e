"""Issue 8, item 2: /metrics exposes the ledger sequencer and request latency, and the
figures move when a document is posted (both profiles, real components)."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import auth, make_pdf, post_pdf
from vault.service import Vault

POST_ROUTE = "/api/v1/accounts/{account_id}/documents"


def _samples(client: TestClient[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _get(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_expose_sequencer_and_request_latency_and_move_after_a_post(
    client: TestClient[Any], vault: Vault, staff: dict[str, str], applicant: dict[str, str]
) -> None:
    before = _samples(client)
    for name in (
        "vault_ledger_batches_total",
        "vault_ledger_units_total",
        "vault_ledger_queue_depth",
        "vault_db_unavailable_total",
    ):
        assert any(k[0] == name for k in before), f"{name} missing from /metrics"
    assert ("vault_db_unavailable_total", (("kind", "timeout"),)) in before

    r = post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("metrics"))
    assert r.status_code == 201, r.text
    doc = r.json()["document_id"]
    assert (
        client.get(
            f"/api/v1/me/documents/{doc}/content", headers=auth(applicant["token"])
        ).status_code
        == 200
    )
    after = _samples(client)

    # The sequencer's counters (this vault) and histograms (this process) moved.
    batches, units = "vault_ledger_batches_total", "vault_ledger_units_total"
    assert _get(after, batches) >= _get(before, batches) + 1
    assert _get(after, units) >= _get(before, units) + 2
    assert _get(after, "vault_ledger_batch_entries_count") > _get(
        before, "vault_ledger_batch_entries_count"
    )
    assert _get(after, "vault_ledger_batch_entries_sum") > _get(
        before, "vault_ledger_batch_entries_sum"
    )
    assert _get(after, "vault_ledger_commit_seconds_count") > _get(
        before, "vault_ledger_commit_seconds_count"
    )
    for name in ("vault_ledger_batch_seconds", "vault_ledger_queue_wait_seconds"):
        assert _get(after, f"{name}_count") > _get(before, f"{name}_count")
        assert _get(after, f"{name}_sum") >= _get(before, f"{name}_sum")
    assert _get(after, "vault_ledger_queue_depth") >= 0
    assert vault.sequencer.units == _get(after, "vault_ledger_units_total")

    # Request latency by route TEMPLATE and status class: never a concrete identifier.
    labels = {"method": "POST", "route": POST_ROUTE, "status": "2xx"}
    count = "vault_http_request_duration_seconds_count"
    assert _get(after, count, **labels) == _get(before, count, **labels) + 1
    assert _get(after, "vault_http_request_duration_seconds_bucket", le="+Inf", **labels) >= 1
    text = client.get("/metrics").text
    assert applicant["account_id"] not in text
    assert doc not in text

    # A refused request is counted under its own status class.
    r = post_pdf(client, "not-a-token", applicant["account_id"], make_pdf("refused"))
    assert r.status_code == 401
    after_refusal = _samples(client)
    refused = {"method": "POST", "route": POST_ROUTE, "status": "4xx"}
    assert _get(after_refusal, count, **refused) == _get(after, count, **refused) + 1
