"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from litestar import Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import select, text

from api.security import VaultDep
from vault.db import engine as db_engine
from vault.db.models import LedgerEntry
from vault.errors import VaultError
from vault.service import Vault

#: The readiness probe's own bound on PostgreSQL (ms): a probe answers quickly, even
#: when requests may wait up to VAULT_DB_STATEMENT_TIMEOUT_MS.
READY_STATEMENT_TIMEOUT_MS = 2000

# Readiness as metrics, so an alert can fire on a component outage (issue 8, item 2)
# without scraping the JSON; refreshed at each /health/ready probe.
READY = Gauge("vault_ready", "1 when every component answered the last readiness probe")
COMPONENT_UP = Gauge(
    "vault_component_up", "1 when the component answered the last readiness probe", ["component"]
)
READY_FAILURES = Counter(
    "vault_ready_failures", "readiness probes that found a component unavailable", ["component"]
)


@get("/health/live", tags=["health"], sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["health"], sync_to_thread=True)
def ready(vault: VaultDep) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    try:
        with vault.read() as s, s.begin():
            if vault.read_engine.dialect.name == "postgresql":
                s.execute(text(f"SET LOCAL statement_timeout = {READY_STATEMENT_TIMEOUT_MS}"))
            # The ledger tail, not only SELECT 1: a server that answers but whose ledger
            # is locked or too slow (the writer would wait on it) is not ready either.
            s.execute(select(LedgerEntry.seq).order_by(LedgerEntry.seq.desc()).limit(1))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 -- any failure means not ready
        slow = type(exc.__cause__).__name__ == "QueryCanceled"
        checks["database"] = "timeout" if slow else "unavailable"
    try:
        vault.blobs.check()
        checks["storage"] = "ok"
    except VaultError:
        checks["storage"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    for component, state in checks.items():
        COMPONENT_UP.labels(component).set(1 if state == "ok" else 0)
        if state != "ok":
            READY_FAILURES.labels(component).inc()
    READY.set(1 if ok else 0)
    headers = {} if ok else {"Retry-After": "5"}
    return Response(
        {"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
        headers=headers,
    )


class _DatabaseCollector:
    """Process-wide counts of database failures answered 503, by kind."""

    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily(
            "vault_db_unavailable",
            "database failures answered 503 (timeout, pool_timeout, disconnect, operational)",
            labels=["kind"],
        )
        for kind in ("timeout", "pool_timeout", "disconnect", "operational"):
            c.add_metric([kind], db_engine.UNAVAILABLE_COUNTS.get(kind, 0))
        yield c


REGISTRY.register(_DatabaseCollector())


class _SequencerCollector:
    """This vault's ledger sequencer, read at scrape time."""

    def __init__(self, vault: Vault) -> None:
        self._seq = vault.sequencer

    def collect(self) -> Iterator[Metric]:
        seq = self._seq
        yield CounterMetricFamily(
            "vault_ledger_batches", "group commits made by the ledger sequencer", value=seq.batches
        )
        yield CounterMetricFamily(
            "vault_ledger_units", "units of work committed by the ledger sequencer", value=seq.units
        )
        yield GaugeMetricFamily(
            "vault_ledger_queue_depth", "units waiting for the ledger writer", value=seq.queue_depth
        )


@get("/metrics", tags=["health"], sync_to_thread=False, include_in_schema=False)
def metrics(vault: VaultDep) -> Response[bytes]:
    own = CollectorRegistry(auto_describe=False)
    own.register(_SequencerCollector(vault))
    return Response(generate_latest() + generate_latest(own), media_type=CONTENT_TYPE_LATEST)


ROUTES = [live, ready, metrics]
