"""Litestar app factory: all wiring in one place (litestar-fullstack style)."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.response_cache import ResponseCacheConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from api import problems
from api.metrics import request_metrics
from api.security import provide_principal, provide_vault, role_guard
from vault.config import Settings, load_settings
from vault.errors import VaultError
from vault.service import BackgroundTask, Vault, open_vault

log = logging.getLogger("vault.background")

#: Modules that each export ``ROUTES`` (one per feature area).
ROUTE_MODULES = (
    "api.health",
    "api.routes.v1",
    "api.routes.log",
    "api.routes.accounts",
    "api.routes.alerts",
    "api.routes.proofs",
    "api.pages",
)


def collect_routes() -> list[Any]:
    routes: list[Any] = []
    for name in ROUTE_MODULES:
        routes.extend(importlib.import_module(name).ROUTES)
    return routes


async def _run_periodically(vault: Vault, task: BackgroundTask) -> None:
    while True:
        await asyncio.sleep(task.interval_seconds)
        try:
            await asyncio.to_thread(task.run, vault)
        except Exception:
            log.exception("background task %s failed", task.name)


def create_app(settings: Settings | None = None, vault: Vault | None = None) -> Litestar:
    settings = settings or (vault.settings if vault else load_settings())
    owned = vault is None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if app.state.get("vault") is None:
            # Off the event loop: start-up work (seal validation, TSA) runs its own
            # asyncio loops and blocking I/O.
            app.state.vault = await asyncio.to_thread(open_vault, settings)
        vault_: Vault = app.state.vault
        if owned:
            # The ledger writer and the request threads give the GIL up at every
            # database round trip and must win it back from whoever holds it; with
            # Python's 5 ms default, a thread busy streaming a download made each round
            # trip of a first-access unit wait up to 5 ms (PostgreSQL, in-process, a
            # CPU-bound neighbour: writer commit p50 47.7 -> 23.8 ms at 0.5 ms).
            sys.setswitchinterval(vault_.settings.gil_switch_interval_ms / 1000)
        # Everything start-up allocated (modules, routes, schemas, the vault: ~200k
        # objects) lives until exit. Out of the collector's generations, it is no longer
        # rescanned by each full collection, which otherwise paused every request in
        # flight for 200-400 ms every few hundred requests on this 2-core machine.
        gc.collect()
        gc.freeze()
        tasks = []
        if vault_.settings.background_tasks:
            tasks = [asyncio.create_task(_run_periodically(vault_, t)) for t in vault_.background]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if owned:
                vault_.close()

    app = Litestar(
        route_handlers=collect_routes(),
        guards=[role_guard],
        dependencies={
            "vault": Provide(provide_vault, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        middleware=[request_metrics],
        exception_handlers={
            VaultError: problems.on_vault_error,
            ValidationException: problems.on_validation,
            HTTPException: problems.on_http,
            Exception: problems.on_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="OFPRA notification vault",
            version="1.0.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        ),
        request_max_body_size=settings.max_json_bytes,
        response_cache_config=ResponseCacheConfig(),
        lifespan=[lifespan],
        debug=False,
    )
    if vault is not None:
        app.state.vault = vault
    return app


def app_from_env() -> Any:
    """Entry point for ASGI servers (``uvicorn --factory api.app:app_from_env``)."""
    return create_app()
