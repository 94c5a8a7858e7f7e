"""The /api/v1 contract of the foundation (accounts, auth, documents)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream

from api.routes.alerts import alert_statuses
from api.schemas import (
    MAX_OFFSET,
    AccountCreate,
    AccountCreated,
    DocumentItem,
    DocumentList,
    DocumentPosted,
    FirstConnection,
    Login,
    SessionOut,
)
from api.security import SESSION_COOKIE, PrincipalDep, VaultDep
from vault import accounts, documents
from vault.alerts.dispatcher import alert_status_for_documents
from vault.errors import PayloadTooLarge, UnsupportedMediaType
from vault.service import Vault

AGENT = {"roles": ("agent",)}


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The peer address the brute-force throttle counts (a proxy must set it right)."""
    return request.client.host if request.client is not None else None


APPLICANT = {"roles": ("applicant",)}
STAFF_READERS = {"roles": ("agent", "legal", "court")}


@post("/api/v1/accounts", opt=AGENT, status_code=201, tags=["accounts"], sync_to_thread=True)
def create_account(
    data: JSONBody[AccountCreate], vault: VaultDep, principal: PrincipalDep
) -> AccountCreated:
    """Create an applicant account at registration. The connection key is shown once."""
    created = accounts.create_account(
        vault,
        accounts.Registration(
            agdref=data.agdref,
            ofpra_number=data.ofpra_number,
            guda=data.guda,
            registered_on=data.registered_on,
            procedure=data.procedure,
            structure_id=data.structure_id,
            language=data.language,
            requalified_on=data.requalified_on,
            requalification_region=data.requalification_region,
            prefecture=data.prefecture,
            overseas=data.overseas,
            unaccompanied_minor=data.unaccompanied_minor,
            unable_to_use_space=data.unable_to_use_space,
        ),
        principal,
    )
    return AccountCreated(created.account_id, created.agdref, created.connection_key)


def _session_response(vault: Vault, issued: accounts.IssuedSession) -> Response[SessionOut]:
    body = SessionOut(
        issued.token,
        "Bearer",
        issued.expires_at_seconds,
        issued.account_id,
        issued.reminder,
        list(issued.missing_contacts),
    )
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=issued.token,
        httponly=True,
        samesite="strict",
        secure=vault.settings.secure_cookies,
        path="/",
        max_age=issued.expires_at_seconds,
    )
    return Response(body, cookies=[cookie], headers={"Cache-Control": "no-store"})


@post("/api/v1/auth/first-connection", status_code=200, tags=["auth"], sync_to_thread=True)
def first_connection(
    request: Request[Any, Any, Any], data: JSONBody[FirstConnection], vault: VaultDep
) -> Response[SessionOut]:
    """First connection with the AGDREF number and the connection key; sets the password."""
    issued = accounts.first_connection(
        vault, data.agdref, data.connection_key, data.password, client=client_address(request)
    )
    return _session_response(vault, issued)


@post("/api/v1/auth/login", status_code=200, tags=["auth"], sync_to_thread=True)
def login(
    request: Request[Any, Any, Any], data: JSONBody[Login], vault: VaultDep
) -> Response[SessionOut]:
    """Log in with the AGDREF or OFPRA number and the password.

    The response reminds the applicant to keep their contacts current (``reminder``,
    ``missing_contacts``); throttled per identifier and per client address (429)."""
    issued = accounts.login(vault, data.identifier, data.password, client=client_address(request))
    return _session_response(vault, issued)


@post("/api/v1/auth/logout", opt=APPLICANT, status_code=204, tags=["auth"], sync_to_thread=True)
def logout(vault: VaultDep, principal: PrincipalDep) -> Response[None]:
    accounts.logout(vault, principal)
    resp: Response[None] = Response(None, status_code=204)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


async def _spool_body(request: Request[Any, Any, Any], limit: int, tmpdir: Path) -> Path:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the limit is {limit} bytes")
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".pdf", dir=tmpdir)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the limit is {limit} bytes")
                f.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@post(
    "/api/v1/accounts/{account_id:str}/documents",
    opt=AGENT,
    status_code=201,
    tags=["documents"],
    request_max_body_size=None,
)
async def post_document(
    request: Request[Any, Any, Any],
    account_id: FromPath[str],
    vault: VaultDep,
    principal: PrincipalDep,
    doc_type: Annotated[str, QueryParameter(name="type", min_length=2, max_length=64)],
    title: Annotated[str, QueryParameter(min_length=1, max_length=300)],
    idempotency_key: Annotated[
        str | None, HeaderParameter(name="Idempotency-Key", max_length=200)
    ] = None,
) -> Response[DocumentPosted]:
    """Post a PDF (the request body, ``Content-Type: application/pdf``) to an applicant."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/pdf":
        raise UnsupportedMediaType("send the PDF itself with Content-Type: application/pdf")
    tmpdir = vault.settings.data_dir / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    path = await _spool_body(request, vault.settings.max_upload_bytes, tmpdir)
    try:
        posted = await anyio.to_thread.run_sync(
            lambda: documents.post_document(
                vault,
                principal,
                account_id,
                path,
                type_code=doc_type,
                title=title,
                idempotency_key=idempotency_key,
            )
        )
    finally:
        path.unlink(missing_ok=True)
    body = DocumentPosted(
        posted.document_id, posted.sha256, posted.size, posted.posted_at, posted.created
    )
    return Response(body, status_code=201 if posted.created else 200)


def _item(d: Any) -> DocumentItem:
    return DocumentItem(
        document_id=d.id,
        type=d.type_code,
        title=d.title,
        posted_at=d.posted_at,
        first_access_at=d.first_access_at,
        size=d.size,
        sha256=d.sha256,
        notified_on=d.notified_on,
        notified_basis=d.notified_basis,
    )


@get("/api/v1/me/documents", opt=APPLICANT, tags=["applicant"], sync_to_thread=True)
def my_documents(
    vault: VaultDep,
    principal: PrincipalDep,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> Response[DocumentList]:
    """The applicant's documents, newest first."""
    docs = documents.list_documents(vault, principal)
    page = [_item(d) for d in docs[offset : offset + limit]]
    statuses = alert_statuses(vault, [i.document_id for i in page])
    for item in page:
        item.alerts = statuses.get(item.document_id, [])
    documents.log_access(vault, principal, principal.id, "documents.list")
    return Response(
        DocumentList(page, len(docs), offset, limit), headers={"Cache-Control": "no-store"}
    )


@get(
    "/api/v1/me/documents/{document_id:str}/content",
    opt=APPLICANT,
    tags=["applicant"],
    media_type="application/pdf",
)
async def my_document_content(
    document_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Stream:
    """The sealed PDF. The first request durably records FIRST_ACCESS before any byte."""
    opened = await anyio.to_thread.run_sync(documents.open_document, vault, principal, document_id)
    return Stream(
        opened.chunks,
        media_type="application/pdf",
        headers={
            "Content-Length": str(opened.size),
            "Content-Disposition": f'attachment; filename="{opened.document_id}.pdf"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Content-SHA256": opened.sha256,
        },
    )


@get(
    "/api/v1/documents/{document_id:str}",
    opt=STAFF_READERS,
    tags=["documents"],
    sync_to_thread=True,
)
def document_metadata(
    document_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Metadata, ledger timeline and alert status of a document (agent, legal, court)."""
    view = documents.document_view(vault, principal, document_id)
    view["alerts"] = alert_status_for_documents(vault, [document_id]).get(document_id, [])
    return view


ROUTES = [
    create_account,
    first_connection,
    login,
    logout,
    post_document,
    my_documents,
    my_document_content,
    document_metadata,
]
