"""Office pages: staff sign-in, agent (accounts, posting), document status and timeline."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from api import i18n
from api.pages import staff_sessions
from api.pages.web import STAFF_COOKIE, Page, form_of, page, page_opt, safe_next
from api.security import SESSION_COOKIE, PrincipalDep, VaultDep
from vault import accounts, closure, documents
from vault.errors import (
    AccountClosed,
    AccountOptedOut,
    InvalidInput,
    InvalidPdf,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    VaultError,
)

PUBLIC = page_opt()
STAFF = page_opt("agent", "legal", "court", "professional", "ofii", "admin")
AGENT = page_opt("agent")
READERS = page_opt(*documents.STAFF_VIEW_ROLES)

#: Document types offered in the form; the service accepts any upper-case code
#: (DOMAIN.md: "the list is data").
DOCUMENT_TYPES = ("CONVOCATION", "DECISION", "INTERVIEW_TRANSCRIPT", "COURRIER_POST", "LETTER")


# -- sign-in ------------------------------------------------------------------------
@get("/staff/sign-in", opt=PUBLIC, include_in_schema=False)
async def sign_in_form(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    nxt = safe_next(request.query_params.get("next"), "/staff")
    return p.render("staff_sign_in.html", errors=[], next=nxt)


@post("/staff/sign-in", opt=PUBLIC, include_in_schema=False, status_code=303)
async def sign_in_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    p = await page(request)
    form = await form_of(request)
    p.check_csrf(form)
    token = str(form.get("token") or "").strip()
    nxt = safe_next(str(form.get("next") or ""), "/staff")
    errors: list[tuple[str, str]] = []
    if not token:
        errors.append(("token", p._("Paste your access token.")))
    else:
        try:
            session_id, _principal = await anyio.to_thread.run_sync(
                staff_sessions.sign_in, p.vault, token
            )
        except Unauthenticated:
            errors.append(("token", p._("This access token is not recognised or has expired.")))
        else:
            p.cookie(STAFF_COOKIE, session_id)
            p.expire_cookie(SESSION_COOKIE)
            return p.redirect(nxt)
    return p.render("staff_sign_in.html", status=400, errors=errors, next=nxt)


@post("/staff/sign-out", opt=STAFF, include_in_schema=False, status_code=303)
async def sign_out(request: Request[Any, Any, Any], vault: VaultDep) -> Response[Any]:
    p = await page(request)
    p.check_csrf(await form_of(request))
    session_id = request.cookies.get(STAFF_COOKIE)
    if session_id:
        await anyio.to_thread.run_sync(staff_sessions.sign_out, vault, session_id)
    p.expire_cookie(STAFF_COOKIE)
    return p.redirect("/staff/sign-in")


@get("/staff", opt=STAFF, include_in_schema=False)
async def staff_home(request: Request[Any, Any, Any], principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    return p.render("staff_home.html")


# -- agent: accounts ----------------------------------------------------------------
def _account_form(
    p: Page, errors: list[tuple[str, str]], values: dict[str, Any], status: int = 200
) -> Response[Any]:
    return p.render(
        "agent_account_new.html",
        status=status,
        errors=errors,
        values=values,
        procedures=accounts.PROCEDURES,
        account_languages=[(c, i18n.language(c).name) for c in i18n.available_languages()],
    )


@get("/agent/accounts/new", opt=AGENT, include_in_schema=False)
async def account_form(request: Request[Any, Any, Any], principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    return _account_form(p, [], {"language": "fr", "procedure": "normal"})


@post("/agent/accounts/new", opt=AGENT, include_in_schema=False, status_code=200)
async def account_submit(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    form = await form_of(request)
    p.check_csrf(form)
    values = {
        k: str(form.get(k) or "").strip()
        for k in (
            "agdref",
            "ofpra_number",
            "guda",
            "registered_on",
            "procedure",
            "structure_id",
            "language",
            "prefecture",
        )
    }
    errors: list[tuple[str, str]] = []
    if not accounts.AGDREF_RE.fullmatch(values["agdref"]):
        errors.append(("agdref", p._("The AGDREF number has 9 or 10 digits.")))
    if not values["guda"]:
        errors.append(("guda", p._("Enter the GUDA (one-stop desk) of registration.")))
    registered: date | None = None
    try:
        registered = date.fromisoformat(values["registered_on"])
    except ValueError:
        errors.append(("registered_on", p._("Enter the registration date.")))
    if values["procedure"] not in accounts.PROCEDURES:
        errors.append(("procedure", p._("Choose a procedure.")))
    if not values["structure_id"]:
        errors.append(
            ("structure_id", p._("Enter the accompanying structure (for example SPADA-35)."))
        )
    if values["language"] not in i18n.available_languages():
        errors.append(("language", p._("Choose a language.")))
    if errors or registered is None:
        return _account_form(p, errors, values, status=400)
    reg = accounts.Registration(
        agdref=values["agdref"],
        ofpra_number=values["ofpra_number"] or None,
        guda=values["guda"],
        registered_on=registered,
        procedure=values["procedure"],
        structure_id=values["structure_id"],
        language=values["language"],
        prefecture=values["prefecture"] or None,
    )
    try:
        created = await anyio.to_thread.run_sync(accounts.create_account, vault, reg, principal)
    except accounts.AccountExists:
        return _account_form(
            p, [("agdref", p._("An account already exists for this AGDREF number."))], values, 409
        )
    except (InvalidInput, VaultError) as exc:
        if exc.status >= 500:
            raise
        return _account_form(
            p, [("agdref", p._("The account could not be created. Check the fields."))], values, 400
        )
    # The connection key is shown once and never stored in clear: this page is the
    # answer to the POST itself (no redirect that would have to carry the key).
    return p.render("agent_account_created.html", created=created, reg=reg)


# -- agent: posting -----------------------------------------------------------------
def _post_form(
    p: Page, errors: list[tuple[str, str]], values: dict[str, Any], status: int = 200
) -> Response[Any]:
    return p.render(
        "agent_document_new.html", status=status, errors=errors, values=values, types=DOCUMENT_TYPES
    )


@get("/agent/documents/new", opt=AGENT, include_in_schema=False)
async def post_form(request: Request[Any, Any, Any], principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    values = {
        "account_id": request.query_params.get("account_id", ""),
        "type": "CONVOCATION",
        "title": "",
    }
    return _post_form(p, [], values)


@post(
    "/agent/documents/new",
    opt=AGENT,
    include_in_schema=False,
    status_code=303,
    request_max_body_size=None,  # checked below against settings.max_upload_bytes
)
async def post_submit(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    limit = vault.settings.max_upload_bytes + 64 * 1024  # the PDF plus the form fields
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the limit is {vault.settings.max_upload_bytes} bytes")
    form = await form_of(request)
    p.check_csrf(form)
    values = {k: str(form.get(k) or "").strip() for k in ("account_id", "type", "title")}
    upload = form.get("file")
    errors: list[tuple[str, str]] = []
    if not values["account_id"]:
        errors.append(("account_id", p._("Enter the account identifier.")))
    if values["type"] not in DOCUMENT_TYPES:
        errors.append(("type", p._("Choose a document type.")))
    if not values["title"]:
        errors.append(("title", p._("Enter a title.")))
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors.append(("file", p._("Choose the PDF file to post.")))
    if errors or not isinstance(upload, UploadFile):
        return _post_form(p, errors, values, 400)
    tmpdir = vault.settings.data_dir / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="page-upload-", suffix=".pdf", dir=tmpdir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            await anyio.to_thread.run_sync(shutil.copyfileobj, upload.file, out)
        posted = await anyio.to_thread.run_sync(
            lambda: documents.post_document(
                vault,
                principal,
                values["account_id"],
                path,
                type_code=values["type"],
                title=values["title"],
            )
        )
    except (documents.AccountNotFound, NotFound):
        return _post_form(p, [("account_id", p._("No account has this identifier."))], values, 404)
    except (AccountClosed, AccountOptedOut):
        return _post_form(
            p,
            [("account_id", p._("This account no longer receives documents electronically."))],
            values,
            409,
        )
    except (InvalidPdf, PayloadTooLarge):
        return _post_form(
            p, [("file", p._("This file is not a valid PDF or is too large."))], values, 400
        )
    except InvalidInput:
        return _post_form(p, [("title", p._("Check the type and the title."))], values, 400)
    finally:
        path.unlink(missing_ok=True)
        await upload.close()
    return p.redirect(f"/office/documents/{posted.document_id}?posted=1")


# -- document status ----------------------------------------------------------------
@get("/office/documents", opt=READERS, include_in_schema=False)
async def document_lookup(
    request: Request[Any, Any, Any], principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    doc_id = (request.query_params.get("document_id") or "").strip()
    if doc_id:
        return p.redirect(f"/office/documents/{doc_id}")
    return p.render("staff_document_lookup.html", errors=[])


@get("/office/documents/{document_id:str}", opt=READERS, include_in_schema=False)
async def document_status(
    request: Request[Any, Any, Any],
    document_id: FromPath[str],
    vault: VaultDep,
    principal: PrincipalDep,
) -> Response[Any]:
    p = await page(request, principal=principal)
    view = await anyio.to_thread.run_sync(documents.document_view, vault, principal, document_id)
    for event in view["timeline"]:
        event["when"] = datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00"))
    return p.render(
        "staff_document.html", doc=view, posted=request.query_params.get("posted") == "1"
    )


@get("/agent/accounts/{account_id:str}/notice.pdf", opt=AGENT, include_in_schema=False)
async def account_notice(
    account_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Response[bytes]:
    """The GUDA connection notice to print (until the first connection)."""
    pdf = await anyio.to_thread.run_sync(accounts.notice_pdf, vault, principal, account_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="notice-{account_id}.pdf"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "frame-ancestors 'none'",
        },
    )


@get("/agent/accounts/close", opt=AGENT, include_in_schema=False)
async def close_form(request: Request[Any, Any, Any], principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    values = {"account_id": request.query_params.get("account_id", "")}
    return p.render("agent_close.html", errors=[], values=values, closed=None)


@post("/agent/accounts/close", opt=AGENT, include_in_schema=False, status_code=200)
async def close_submit(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    form = await form_of(request)
    p.check_csrf(form)
    values = {"account_id": str(form.get("account_id") or "").strip()}
    errors: list[tuple[str, str]] = []
    if form.get("confirm") != "yes":
        errors.append(("confirm", p._("Tick the box to confirm the closure.")))
    if not values["account_id"]:
        errors.append(("account_id", p._("Enter the account identifier.")))
    if errors:
        return p.render("agent_close.html", status=400, errors=errors, values=values, closed=None)
    try:
        closed = await anyio.to_thread.run_sync(
            closure.close_account, vault, principal, values["account_id"]
        )
    except NotFound:
        errors = [("account_id", p._("No account has this identifier."))]
        return p.render("agent_close.html", status=404, errors=errors, values=values, closed=None)
    except AccountClosed:
        errors = [("account_id", p._("This account is already closed."))]
        return p.render("agent_close.html", status=409, errors=errors, values=values, closed=None)
    return p.render("agent_close.html", errors=[], values=values, closed=closed)


ROUTES: list[Any] = [
    account_notice,
    close_form,
    close_submit,
    sign_in_form,
    sign_in_submit,
    sign_out,
    staff_home,
    account_form,
    account_submit,
    post_form,
    post_submit,
    document_lookup,
    document_status,
]
