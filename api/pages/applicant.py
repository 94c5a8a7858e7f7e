"""Applicant pages: first connection, log-in, documents, opening a document, log-out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Stream

from api.pages.web import SECURITY_HEADERS, STAFF_COOKIE, form_of, page, page_opt, safe_next
from api.security import SESSION_COOKIE, PrincipalDep, VaultDep
from vault import accounts, documents
from vault.errors import AccountClosed, InvalidInput, TooManyRequests, Unauthenticated
from vault.notification import deemed_notification_date

APPLICANT = page_opt("applicant")
PUBLIC = page_opt()


@get("/", opt=PUBLIC, include_in_schema=False)
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    if p.principal is not None:
        return p.redirect("/documents" if p.principal.kind == "applicant" else "/staff")
    return p.render("home.html")


def _session_cookie(p: Any, issued: accounts.IssuedSession) -> None:
    p.cookie(SESSION_COOKIE, issued.token, max_age=issued.expires_at_seconds)
    p.expire_cookie(STAFF_COOKIE)


# -- first connection ---------------------------------------------------------------
@get("/first-connection", opt=PUBLIC, include_in_schema=False)
async def first_connection_form(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    return p.render("first_connection.html", errors=[], values={})


@post("/first-connection", opt=PUBLIC, include_in_schema=False, status_code=303)
async def first_connection_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    form = await form_of(request)
    p.check_csrf(form)
    agdref = str(form.get("agdref") or "").strip()
    key = str(form.get("connection_key") or "")
    password = str(form.get("password") or "")
    confirm = str(form.get("password_confirm") or "")
    errors: list[tuple[str, str]] = []
    if not agdref:
        errors.append(("agdref", p._("Enter your AGDREF number.")))
    if not key.strip():
        errors.append(("connection_key", p._("Enter the connection key printed on your notice.")))
    if len(password) < accounts.MIN_PASSWORD:
        errors.append(("password", p._("Choose a password of at least 8 characters.")))
    elif password != confirm:
        errors.append(("password_confirm", p._("The two passwords are different.")))
    if not errors:
        try:
            issued = await anyio.to_thread.run_sync(
                accounts.first_connection, p.vault, agdref, key, password
            )
        except InvalidInput:
            errors.append(("password", p._("This password is too common or too long. Choose another one.")))
        except (Unauthenticated, AccountClosed):
            errors.append(("agdref", p._("The AGDREF number or the connection key is not recognised.")))
        except TooManyRequests:
            errors.append(("agdref", p._("Too many attempts. Wait a few minutes and try again.")))
        else:
            _session_cookie(p, issued)
            return p.redirect("/documents")
    return p.render(
        "first_connection.html", status=400, errors=errors, values={"agdref": agdref}
    )


# -- log-in / log-out ---------------------------------------------------------------
@get("/login", opt=PUBLIC, include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    if p.principal is not None and p.principal.kind == "applicant":
        return p.redirect("/documents")
    nxt = safe_next(request.query_params.get("next"), "/documents")
    return p.render("login.html", errors=[], values={}, next=nxt)


@post("/login", opt=PUBLIC, include_in_schema=False, status_code=303)
async def login_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    form = await form_of(request)
    p.check_csrf(form)
    identifier = str(form.get("identifier") or "").strip()
    password = str(form.get("password") or "")
    nxt = safe_next(str(form.get("next") or ""), "/documents")
    errors: list[tuple[str, str]] = []
    if not identifier:
        errors.append(("identifier", p._("Enter your AGDREF or OFPRA number.")))
    if not password:
        errors.append(("password", p._("Enter your password.")))
    if not errors:
        try:
            issued = await anyio.to_thread.run_sync(accounts.login, p.vault, identifier, password)
        except Unauthenticated:
            errors.append(("identifier", p._("The number or the password is not recognised.")))
        except TooManyRequests:
            errors.append(("identifier", p._("Too many attempts. Wait a few minutes and try again.")))
        else:
            _session_cookie(p, issued)
            return p.redirect(nxt)
    return p.render(
        "login.html", status=400, errors=errors, values={"identifier": identifier}, next=nxt
    )


@post("/logout", opt=APPLICANT, include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    p.check_csrf(await form_of(request))
    await anyio.to_thread.run_sync(accounts.logout, vault, principal)
    p.expire_cookie(SESSION_COOKIE)
    return p.redirect("/login?logged_out=1")


# -- documents ----------------------------------------------------------------------
def _alert_status(vault: Any, ids: list[str]) -> dict[str, Any]:
    # The alerts area exposes the status of the SMS/e-mail alerts per document; an
    # older tree without it simply shows no alert column.
    try:
        from vault.alerts import outbox
    except ImportError:
        return {}
    fn = getattr(outbox, "alert_status_for_documents", None)
    return dict(fn(vault, ids)) if fn is not None and ids else {}


@get("/documents", opt=APPLICANT, include_in_schema=False)
async def document_list(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    docs = await anyio.to_thread.run_sync(documents.list_documents, vault, principal)
    await anyio.to_thread.run_sync(
        lambda: documents.log_access(vault, principal, principal.id, "documents.list")
    )
    alerts = await anyio.to_thread.run_sync(_alert_status, vault, [d.id for d in docs])
    items = []
    for d in docs:
        items.append(
            {
                "id": d.id,
                "title": d.title,
                "type": d.type_code,
                "posted_at": d.posted_at,
                "opened": d.first_access_at is not None,
                "first_access_at": d.first_access_at,
                "notified_on": d.notified_on,
                # CESEDA R.531-17: unopened, the document is deemed notified 15 days
                # after it was made available.
                "deemed_on": None if d.first_access_at else deemed_notification_date(d.posted_at),
                "alert": alerts.get(d.id),
            }
        )
    return p.render("documents.html", documents=items)


@get(
    "/documents/{document_id:str}/file",
    opt=APPLICANT,
    include_in_schema=False,
    media_type="application/pdf",
)
async def document_file(
    request: Request[Any, Any, Any],
    document_id: FromPath[str],
    vault: VaultDep,
    principal: PrincipalDep,
) -> Stream:
    """The sealed PDF; ``open_document`` commits FIRST_ACCESS before the first byte."""
    opened = await anyio.to_thread.run_sync(documents.open_document, vault, principal, document_id)
    inline = request.query_params.get("view") == "1"
    disposition = "inline" if inline else "attachment"
    chunks: Iterator[bytes] = opened.chunks
    headers = {
        "Content-Disposition": f'{disposition}; filename="document-{opened.document_id}.pdf"',
        "Content-Length": str(opened.size),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # No default-src here: the browser's own PDF viewer must run. Still never framed.
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Document-SHA256": opened.sha256,
    }
    return Stream(chunks, media_type="application/pdf", headers=headers)


ROUTES: list[Any] = [
    home,
    first_connection_form,
    first_connection_submit,
    login_form,
    login_submit,
    logout,
    document_list,
    document_file,
]

_unused = (Redirect, SECURITY_HEADERS)
