"""Applicant pages: first connection, log-in, documents, opening a document, contacts,
password change, access log, log-out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath
from litestar.response import Stream

from api.pages.web import N_, STAFF_COOKIE, Page, form_of, page, page_opt, safe_next
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


def _client(request: Request[Any, Any, Any]) -> str | None:
    """The client address, for the per-address throttle (vault/throttle.py)."""
    return request.client.host if request.client else None


def _session_cookie(p: Page, issued: accounts.IssuedSession) -> None:
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
                lambda: accounts.first_connection(
                    p.vault, agdref, key, password, client=_client(request)
                )
            )
        except InvalidInput:
            errors.append(
                ("password", p._("This password is too common or too long. Choose another one."))
            )
        except (Unauthenticated, AccountClosed):
            errors.append(
                ("agdref", p._("The AGDREF number or the connection key is not recognised."))
            )
        except TooManyRequests:
            errors.append(("agdref", p._("Too many attempts. Wait a few minutes and try again.")))
        else:
            _session_cookie(p, issued)
            # The applicant is asked for a phone number and an e-mail next (alerts).
            return p.redirect("/contacts?welcome=1" if issued.missing_contacts else "/documents")
    return p.render("first_connection.html", status=400, errors=errors, values={"agdref": agdref})


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
            issued = await anyio.to_thread.run_sync(
                lambda: accounts.login(p.vault, identifier, password, client=_client(request))
            )
        except Unauthenticated:
            errors.append(("identifier", p._("The number or the password is not recognised.")))
        except TooManyRequests:
            errors.append(
                ("identifier", p._("Too many attempts. Wait a few minutes and try again."))
            )
        else:
            _session_cookie(p, issued)
            return p.redirect(nxt)
    return p.render(
        "login.html", status=400, errors=errors, values={"identifier": identifier}, next=nxt
    )


@post("/logout", opt=APPLICANT, include_in_schema=False, status_code=303)
async def logout(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
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


ALERT_STATUSES = {
    "pending": N_("being sent"),
    "claimed": N_("being sent"),
    "sending": N_("being sent"),
    "failed": N_("being sent"),  # retried with backoff until it is dead
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "dead": N_("not delivered"),
    "cancelled": N_("cancelled"),
}
ALERT_CHANNELS = {"sms": N_("SMS"), "email": N_("E-mail")}


def _alert_text(p: Page, alerts: Any) -> str | None:
    """``SMS: delivered, E-mail: sent`` from the alerts area's per-document list
    (vault.alerts.dispatcher.alert_status_for_documents)."""
    if not alerts:
        return None
    parts = []
    for a in alerts if isinstance(alerts, list) else [alerts]:
        status = str(a.get("status")) if isinstance(a, dict) else str(a)
        channel = str(a.get("channel")) if isinstance(a, dict) else ""
        if status == "no_channel" or channel == "none":
            parts.append(p._("no contact to alert"))
            continue
        label = p._(ALERT_CHANNELS[channel]) if channel in ALERT_CHANNELS else channel
        text = p._(ALERT_STATUSES[status]) if status in ALERT_STATUSES else status
        parts.append(f"{label}: {text}" if label else text)
    return ", ".join(dict.fromkeys(parts))


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
                "alert": _alert_text(p, alerts.get(d.id)),
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


# -- lost password / lost key -------------------------------------------------------
@get("/reset-password", opt=PUBLIC, include_in_schema=False)
async def reset_form(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    return p.render("reset_password.html", errors=[], values={})


@post("/reset-password", opt=PUBLIC, include_in_schema=False, status_code=303)
async def reset_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    form = await form_of(request)
    p.check_csrf(form)
    identifier = str(form.get("identifier") or "").strip()
    key = str(form.get("connection_key") or "")
    password = str(form.get("password") or "")
    confirm = str(form.get("password_confirm") or "")
    errors: list[tuple[str, str]] = []
    if not identifier:
        errors.append(("identifier", p._("Enter your AGDREF or OFPRA number.")))
    if not key.strip():
        errors.append(("connection_key", p._("Enter the connection key printed on your notice.")))
    if len(password) < accounts.MIN_PASSWORD:
        errors.append(("password", p._("Choose a password of at least 8 characters.")))
    elif password != confirm:
        errors.append(("password_confirm", p._("The two passwords are different.")))
    if not errors:
        try:
            issued = await anyio.to_thread.run_sync(
                lambda: accounts.reset_password(
                    p.vault, identifier, key, password, client=_client(request)
                )
            )
        except InvalidInput:
            errors.append(
                ("password", p._("This password is too common or too long. Choose another one."))
            )
        except (Unauthenticated, AccountClosed):
            errors.append(
                ("identifier", p._("The number or the connection key is not recognised."))
            )
        except TooManyRequests:
            errors.append(
                ("identifier", p._("Too many attempts. Wait a few minutes and try again."))
            )
        else:
            _session_cookie(p, issued)
            return p.redirect("/documents")
    return p.render(
        "reset_password.html", status=400, errors=errors, values={"identifier": identifier}
    )


@get("/recover-key", opt=PUBLIC, include_in_schema=False)
async def recover_form(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    sent = request.query_params.get("sent") == "1"
    return p.render("recover_key.html", errors=[], values={"channel": "sms"}, sent=sent)


@post("/recover-key", opt=PUBLIC, include_in_schema=False, status_code=303)
async def recover_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    form = await form_of(request)
    p.check_csrf(form)
    identifier = str(form.get("identifier") or "").strip()
    channel = str(form.get("channel") or "")
    errors: list[tuple[str, str]] = []
    if not identifier:
        errors.append(("identifier", p._("Enter your AGDREF or OFPRA number.")))
    if channel not in ("sms", "email"):
        errors.append(("channel-sms", p._("Choose how to receive the key.")))
    if not errors:
        try:
            await anyio.to_thread.run_sync(
                lambda: accounts.recover_key(p.vault, identifier, channel, client=_client(request))
            )
        except TooManyRequests:
            errors.append(
                ("identifier", p._("Too many attempts. Wait a few minutes and try again."))
            )
        else:
            # Same answer whether or not the account or the contact exists; the key is
            # queued after the response so that timing says nothing either.
            resp = p.redirect("/recover-key?sent=1")
            resp.background = BackgroundTask(
                anyio.to_thread.run_sync, accounts.send_recovered_key, p.vault, identifier, channel
            )
            return resp
    values = {"identifier": identifier, "channel": channel}
    return p.render("recover_key.html", status=400, errors=errors, values=values, sent=False)


# -- contacts and access log --------------------------------------------------------
@get("/contacts", opt=APPLICANT, include_in_schema=False)
async def contacts_form(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    current = await anyio.to_thread.run_sync(accounts.get_contacts, vault, principal)
    values = {"phone": current.phone or "", "email": current.email or ""}
    return p.render(
        "contacts.html",
        errors=[],
        values=values,
        welcome=request.query_params.get("welcome") == "1",
        saved=request.query_params.get("saved") == "1",
    )


@post("/contacts", opt=APPLICANT, include_in_schema=False, status_code=303)
async def contacts_submit(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    form = await form_of(request)
    p.check_csrf(form)
    phone = str(form.get("phone") or "").strip()
    email = str(form.get("email") or "").strip()
    errors: list[tuple[str, str]] = []
    try:
        accounts.normalize_phone(phone)
    except InvalidInput:
        errors.append(
            (
                "phone",
                p._("Enter a phone number with its country code, for example +33 6 12 34 56 78."),
            )
        )
    try:
        accounts.normalize_email(email)
    except InvalidInput:
        errors.append(("email", p._("Enter an e-mail address such as name@example.org.")))
    if not errors:
        await anyio.to_thread.run_sync(
            lambda: accounts.set_contacts(vault, principal, phone or None, email or None)
        )
        return p.redirect("/contacts?saved=1")
    values = {"phone": phone, "email": email}
    return p.render(
        "contacts.html", status=400, errors=errors, values=values, welcome=False, saved=False
    )


@get("/password", opt=APPLICANT, include_in_schema=False)
async def password_form(request: Request[Any, Any, Any], principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    changed = request.query_params.get("changed") == "1"
    return p.render("change_password.html", errors=[], changed=changed)


@post("/password", opt=APPLICANT, include_in_schema=False, status_code=303)
async def password_submit(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    """Change the password while signed in: the current one, then the new one twice.
    This session stays open; the account's other sessions are closed."""
    p = await page(request, principal=principal)
    form = await form_of(request)
    p.check_csrf(form)
    current = str(form.get("current_password") or "")
    password = str(form.get("password") or "")
    confirm = str(form.get("password_confirm") or "")
    errors: list[tuple[str, str]] = []
    if not current:
        errors.append(("current_password", p._("Enter your current password.")))
    if len(password) < accounts.MIN_PASSWORD:
        errors.append(("password", p._("Choose a password of at least 8 characters.")))
    elif password != confirm:
        errors.append(("password_confirm", p._("The two passwords are different.")))
    if not errors:
        try:
            await anyio.to_thread.run_sync(
                lambda: accounts.change_password(
                    vault, principal, current, password, client=_client(request)
                )
            )
        except accounts.WrongPassword:
            errors.append(("current_password", p._("Your current password is not correct.")))
        except InvalidInput:
            errors.append(
                ("password", p._("This password is too common or too long. Choose another one."))
            )
        except TooManyRequests:
            errors.append(
                ("current_password", p._("Too many attempts. Wait a few minutes and try again."))
            )
        else:
            return p.redirect("/password?changed=1")
    return p.render("change_password.html", status=400, errors=errors, changed=False)


ACCESS_ACTIONS = {
    "documents.list": N_("Looked at the list of documents"),
    "document.download": N_("Opened a document"),
    "document.metadata": N_("Looked at a document's status"),
    "contacts.read": N_("Looked at the contact details"),
    "pro.list": N_("Listed the accompanied applicants"),
    "pro.connection_key": N_("Retrieved the connection key"),
    "account.notice": N_("Printed the connection notice"),
    "court.decisions": N_("Court look-up of the decisions"),
    "court.decision": N_("Court look-up of a decision"),
    "legal.lookup": N_("Look-up of the file by the legal department"),
    "legal.document": N_("Look-up of a document by the legal department"),
}
ROLE_NAMES = {
    "applicant": N_("You"),
    "agent": N_("OFPRA agent"),
    "legal": N_("OFPRA legal department"),
    "court": N_("Court (CNDA)"),
    "professional": N_("Social worker of your structure"),
    "ofii": N_("OFII"),
    "admin": N_("Administrator"),
}


@get("/access-log", opt=APPLICANT, include_in_schema=False)
async def access_log(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    lines, total = await anyio.to_thread.run_sync(
        lambda: accounts.access_log(vault, principal, offset=0, limit=100)
    )
    rows = [
        {
            "at": datetime.fromisoformat(line.at),
            "who": p._(ROLE_NAMES.get(line.actor_role, line.actor_role)),
            "role": line.actor_role,
            "structure": line.structure_id,
            "what": p._(ACCESS_ACTIONS[line.action])
            if line.action in ACCESS_ACTIONS
            else line.action,
        }
        for line in lines
    ]
    return p.render("access_log.html", rows=rows, total=total)


ROUTES: list[Any] = [
    reset_form,
    reset_submit,
    recover_form,
    recover_submit,
    contacts_form,
    contacts_submit,
    password_form,
    password_submit,
    access_log,
    home,
    first_connection_form,
    first_connection_submit,
    login_form,
    login_submit,
    logout,
    document_list,
    document_file,
]
