"""Authentication and the role guard.

Every route declares who may call it in ``opt={"roles": (...)}``; routes without
``roles`` are public. One global guard enforces it, so the access-control matrix
test can be generated from the route table and no route can forget its check.
Object-level checks (whose document, which structure) live in the core services.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from vault.accounts import authenticate_session
from vault.errors import Forbidden, Unauthenticated, VaultError
from vault.principal import Principal
from vault.service import Vault
from vault.staff import authenticate_staff

SESSION_COOKIE = "vault_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _credential(conn: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use an Authorization: Bearer token")
        return token.strip()
    # Cookies authenticate API reads only; state-changing API calls need the bearer
    # token (pages use their own CSRF-protected forms).
    if conn.scope.get("method", "GET") in SAFE_METHODS or conn.scope.get("vault_pages"):
        return conn.cookies.get(SESSION_COOKIE)
    return None


def _resolve(vault: Vault, token: str) -> Principal:
    if token.startswith("ovs_"):
        return authenticate_session(vault, token)
    if token.startswith("ovt_"):
        return authenticate_staff(vault, token)
    raise Unauthenticated()


async def resolve_principal(conn: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    scope: dict[str, Any] = conn.scope  # type: ignore[assignment]
    if "vault_principal" in scope:
        cached: Principal | None = scope["vault_principal"]
        return cached
    token = _credential(conn)
    principal = None
    if token:
        vault: Vault = conn.app.state.vault
        try:
            principal = await anyio.to_thread.run_sync(_resolve, vault, token)
        except VaultError:
            scope["vault_principal"] = None
            raise
    scope["vault_principal"] = principal
    return principal


async def role_guard(conn: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    roles = handler.opt.get("roles")
    if not roles:
        return
    principal = await resolve_principal(conn)
    if principal is None:
        raise Unauthenticated()
    if principal.role not in roles:
        raise Forbidden()


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = await resolve_principal(request)
    if principal is None:
        raise Unauthenticated()
    return principal


async def provide_optional_principal(request: Request[Any, Any, Any]) -> Principal | None:
    try:
        return await resolve_principal(request)
    except Unauthenticated:
        return None


def provide_vault(request: Request[Any, Any, Any]) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


#: Handler parameter types for the injected dependencies (explicit, Litestar 3 style).
VaultDep = NamedDependency[Vault]
PrincipalDep = NamedDependency[Principal]
