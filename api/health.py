"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from sqlalchemy import text

from api.security import VaultDep
from vault.errors import VaultError

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
        with vault.read() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 -- any failure means not ready
        checks["database"] = "unavailable"
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


@get("/metrics", tags=["health"], sync_to_thread=False, include_in_schema=False)
def metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [live, ready, metrics]
