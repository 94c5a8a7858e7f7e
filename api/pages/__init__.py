"""Server-rendered pages (web pages issue): one Router with its own middleware,
error pages and security headers, mounted by api/app.py like any route module."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.static_files import create_static_files_router

from api.pages import applicant, legal, office, professional
from api.pages.web import STATIC, on_page_error, pages_middleware
from vault.errors import VaultError

pages_router = Router(
    path="/",
    route_handlers=[*applicant.ROUTES, *office.ROUTES, *professional.ROUTES, *legal.ROUTES],
    middleware=[pages_middleware],
    exception_handlers={VaultError: on_page_error, Exception: on_page_error},
    include_in_schema=False,
)

static_router = create_static_files_router(
    path="/static",
    directories=[STATIC],
    opt={"page": True},
    include_in_schema=False,
)

ROUTES: list[Any] = [pages_router, static_router]
