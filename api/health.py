"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.security import VaultDep
from vault.errors import VaultError


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
