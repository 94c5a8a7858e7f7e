"""Routes of the accounts issue (5): recovery, contacts, access log, notice, the
professional module, opt-out, closure and staff administration.

Every handler declares its roles in ``opt`` (the global guard enforces them); the
object-level checks (which account, which structure) are in the vault services.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post, put
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, JSONBody, QueryParameter

from api.routes.v1 import _session_response, client_address
from api.schemas import (
    MAX_OFFSET,
    Accepted,
    AccessLogLine,
    AccessLogOut,
    AccountClosedOut,
    ConnectionKeyOut,
    ContactsIn,
    ContactsOut,
    OptOutFormStored,
    OptOutRequested,
    Password,
    ProApplicant,
    ProApplicantList,
    RecoverKey,
    ResetPassword,
    SessionOut,
    StaffCreate,
    StaffList,
    StaffOut,
    StaffToken,
)
from api.security import PrincipalDep, VaultDep
from vault import accounts, closure, optout, professional, staff
from vault.errors import PayloadTooLarge, UnsupportedMediaType
from vault.service import Vault

APPLICANT = {"roles": ("applicant",)}
AGENT = {"roles": ("agent",)}
PRO = {"roles": ("professional",)}
OFII = {"roles": ("ofii",)}
ADMIN = {"roles": ("admin",)}
NO_STORE = {"Cache-Control": "no-store"}


# --- recovery (public, throttled, never says whether an account exists) ----------------
@post("/api/v1/auth/reset-password", status_code=200, tags=["auth"], sync_to_thread=True)
def reset_password(
    request: Request[Any, Any, Any], data: JSONBody[ResetPassword], vault: VaultDep
) -> Response[SessionOut]:
    """Lost password: identifier (AGDREF or OFPRA number) + connection key + new password.

    Unknown identifier and wrong key give the same 401 after the same Argon2id work."""
    issued = accounts.reset_password(
        vault, data.identifier, data.connection_key, data.password, client=client_address(request)
    )
    return _session_response(vault, issued)


def _send_key(vault: Vault, identifier: str, channel: str) -> None:
    accounts.send_recovered_key(vault, identifier, channel)


@post("/api/v1/auth/recover-key", status_code=202, tags=["auth"], sync_to_thread=True)
def recover_key(
    request: Request[Any, Any, Any], data: JSONBody[RecoverKey], vault: VaultDep
) -> Response[Accepted]:
    """Lost key: queue it by SMS or e-mail to the contact on file.

    Always 202 with the same body; the lookup and the queueing run after the response
    is sent (a background task), so neither wording nor timing tells whether the
    account or the contact exists."""
    accounts.recover_key(vault, data.identifier, data.channel, client=client_address(request))
    return Response(
        Accepted(),
        status_code=202,
        headers=NO_STORE,
        background=BackgroundTask(_send_key, vault, data.identifier, data.channel),
    )


# --- the applicant --------------------------------------------------------------------
# GET and PUT share a path: Litestar then mis-runs sync_to_thread handlers (a coroutine
# reaches the response handler), so these two are async and use a worker thread.
@get("/api/v1/me/contacts", opt=APPLICANT, tags=["applicant"])
async def get_contacts(vault: VaultDep, principal: PrincipalDep) -> Response[ContactsOut]:
    c = await anyio.to_thread.run_sync(accounts.get_contacts, vault, principal)
    return Response(ContactsOut(c.phone, c.email), headers=NO_STORE)


@put("/api/v1/me/contacts", opt=APPLICANT, tags=["applicant"])
async def put_contacts(
    data: JSONBody[ContactsIn], vault: VaultDep, principal: PrincipalDep
) -> Response[ContactsOut]:
    """Set the phone (E.164) and e-mail; ``null`` removes one. New contacts get a
    confirmation message through the alert outbox."""
    c = await anyio.to_thread.run_sync(
        accounts.set_contacts, vault, principal, data.phone, data.email
    )
    return Response(ContactsOut(c.phone, c.email), headers=NO_STORE)


class ChangePassword(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


@post("/api/v1/me/password", opt=APPLICANT, status_code=204, tags=["applicant"])
async def change_password(
    request: Request[Any, Any, Any],
    data: JSONBody[ChangePassword],
    vault: VaultDep,
    principal: PrincipalDep,
) -> Response[None]:
    """Change my password: the current one (Argon2id-checked, throttled like log-in),
    then the new one (same rules as the first connection). This session stays valid;
    every other session of the account is revoked.

    Wrong current password: 403 ``wrong_current_password`` (not 401: the session is
    fine). Weak new password: 400 ``invalid_input``, as at the first connection.
    Too many wrong attempts: 429 ``too_many_requests``."""
    await anyio.to_thread.run_sync(
        lambda: accounts.change_password(
            vault,
            principal,
            data.current_password,
            data.new_password,
            client=client_address(request),
        )
    )
    return Response(None, status_code=204, headers=NO_STORE)


@get("/api/v1/me/access-log", opt=APPLICANT, tags=["applicant"], sync_to_thread=True)
def my_access_log(
    vault: VaultDep,
    principal: PrincipalDep,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> Response[AccessLogOut]:
    """Who read my data: role and structure, when, and what."""
    lines, total = accounts.access_log(vault, principal, offset=offset, limit=limit)
    items = [
        AccessLogLine(x.at, x.actor_role, x.structure_id, x.action, x.document_id) for x in lines
    ]
    return Response(AccessLogOut(items, total, offset, limit), headers=NO_STORE)


# --- agents ---------------------------------------------------------------------------
@get(
    "/api/v1/accounts/{account_id:str}/notice.pdf",
    opt=AGENT,
    tags=["accounts"],
    media_type="application/pdf",
    sync_to_thread=True,
)
def notice(account_id: FromPath[str], vault: VaultDep, principal: PrincipalDep) -> Response[bytes]:
    """The GUDA notice to print (until the first connection; then 410 notice_unavailable)."""
    pdf = accounts.notice_pdf(vault, principal, account_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            **NO_STORE,
            "Content-Disposition": f'inline; filename="notice-{account_id}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@post(
    "/api/v1/accounts/{account_id:str}/close",
    opt=AGENT,
    status_code=200,
    tags=["accounts"],
    sync_to_thread=True,
)
def close_account(
    account_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> AccountClosedOut:
    """Close the applicant's space: ACCOUNT_CLOSED, sessions revoked; nothing deleted."""
    c = closure.close_account(vault, principal, account_id)
    return AccountClosedOut(c.account_id, "closed", c.closed_at)


# --- OFII -----------------------------------------------------------------------------
@post(
    "/api/v1/accounts/{account_id:str}/opt-out/form",
    opt=OFII,
    status_code=201,
    tags=["opt-out"],
)
async def opt_out_form(
    request: Request[Any, Any, Any],
    account_id: FromPath[str],
    vault: VaultDep,
    principal: PrincipalDep,
) -> OptOutFormStored:
    """The dated, signed opt-out form (the PDF itself, Content-Type: application/pdf)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/pdf":
        raise UnsupportedMediaType("send the PDF itself with Content-Type: application/pdf")
    limit = vault.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the limit is {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"the limit is {limit} bytes")
    stored = await anyio.to_thread.run_sync(optout.store_form, vault, principal, account_id, body)
    return OptOutFormStored(stored.form_id, stored.sha256, stored.size, stored.uploaded_at)


# --- professionals ----------------------------------------------------------------------
@get("/api/v1/pro/applicants", opt=PRO, tags=["professional"], sync_to_thread=True)
def pro_applicants(vault: VaultDep, principal: PrincipalDep) -> Response[ProApplicantList]:
    """The applicants the caller's structure accompanies (minimal data)."""
    items = [
        ProApplicant(a.account_id, a.status, a.channel, a.language, a.has_phone, a.has_email)
        for a in professional.list_applicants(vault, principal)
    ]
    return Response(ProApplicantList(items), headers=NO_STORE)


@post(
    "/api/v1/pro/applicants/{account_id:str}/connection-key",
    opt=PRO,
    status_code=200,
    tags=["professional"],
    sync_to_thread=True,
)
def pro_connection_key(
    account_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Response[ConnectionKeyOut]:
    """Retrieve an accompanied applicant's key (ledger KEY_RETRIEVED_BY_PROFESSIONAL)."""
    key = professional.retrieve_connection_key(vault, principal, account_id)
    return Response(ConnectionKeyOut(key), headers=NO_STORE)


@post(
    "/api/v1/pro/applicants/{account_id:str}/opt-out",
    opt=PRO,
    status_code=201,
    tags=["professional", "opt-out"],
    sync_to_thread=True,
)
def pro_opt_out(
    account_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> OptOutRequested:
    """Record the applicant's opt-out request (ledger OPT_OUT_REQUESTED)."""
    at = optout.request_opt_out(vault, principal, account_id)
    return OptOutRequested(account_id, at)


# --- admin ----------------------------------------------------------------------------
def _staff_out(v: staff.StaffView) -> StaffOut:
    return StaffOut(
        v.staff_id, v.name, v.role, v.structure_id, v.created_at, v.expires_at, v.disabled
    )


@get("/api/v1/admin/staff", opt=ADMIN, tags=["admin"])
async def list_staff(vault: VaultDep, principal: PrincipalDep) -> StaffList:
    # Async + worker thread: same path as POST below (see get_contacts).
    views = await anyio.to_thread.run_sync(staff.list_staff, vault, principal)
    return StaffList([_staff_out(v) for v in views])


@post("/api/v1/admin/staff", opt=ADMIN, status_code=201, tags=["admin"])
async def create_staff(
    data: JSONBody[StaffCreate], vault: VaultDep, principal: PrincipalDep
) -> Response[StaffToken]:
    """Create a staff member; the bearer token is shown once."""
    t = await anyio.to_thread.run_sync(
        lambda: staff.admin_create_staff(
            vault, principal, role=data.role, name=data.name, structure_id=data.structure_id
        )
    )
    return Response(StaffToken(t.staff_id, t.role, t.token), status_code=201, headers=NO_STORE)


@post(
    "/api/v1/admin/staff/{staff_id:str}/disable",
    opt=ADMIN,
    status_code=204,
    tags=["admin"],
    sync_to_thread=True,
)
def disable_staff(staff_id: FromPath[str], vault: VaultDep, principal: PrincipalDep) -> None:
    staff.admin_disable_staff(vault, principal, staff_id)


@post(
    "/api/v1/admin/staff/{staff_id:str}/rotate-token",
    opt=ADMIN,
    status_code=200,
    tags=["admin"],
    sync_to_thread=True,
)
def rotate_staff_token(
    staff_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Response[StaffToken]:
    t = staff.admin_rotate_token(vault, principal, staff_id)
    return Response(StaffToken(t.staff_id, t.role, t.token), headers=NO_STORE)


ROUTES = [
    reset_password,
    recover_key,
    get_contacts,
    put_contacts,
    change_password,
    my_access_log,
    notice,
    close_account,
    opt_out_form,
    pro_applicants,
    pro_connection_key,
    pro_opt_out,
    list_staff,
    create_staff,
    disable_staff,
    rotate_staff_token,
]
