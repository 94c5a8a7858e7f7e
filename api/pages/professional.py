"""Professional pages (SPADA/DNA social workers): accompanied applicants, key
retrieval, opt-out request. The structure check lives in vault/professional.py."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.params import FromPath

from api.pages.web import form_of, page, page_opt
from api.security import PrincipalDep, VaultDep
from vault import optout, professional
from vault.errors import AccountClosed, Conflict

PRO = page_opt("professional")


@get("/pro/applicants", opt=PRO, include_in_schema=False)
async def applicants(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    rows = await anyio.to_thread.run_sync(professional.list_applicants, vault, principal)
    flash = request.query_params.get("done")
    return p.render("pro_applicants.html", applicants=rows, flash=flash)


@post("/pro/applicants/{account_id:str}/key", opt=PRO, include_in_schema=False, status_code=200)
async def retrieve_key(
    request: Request[Any, Any, Any],
    account_id: FromPath[str],
    vault: VaultDep,
    principal: PrincipalDep,
) -> Response[Any]:
    p = await page(request, principal=principal)
    p.check_csrf(await form_of(request))
    try:
        key = await anyio.to_thread.run_sync(
            professional.retrieve_connection_key, vault, principal, account_id
        )
    except AccountClosed:
        return p.redirect("/pro/applicants?done=closed")
    # Answered on the POST itself (never cached, never in a URL); the retrieval is in
    # the ledger (KEY_RETRIEVED_BY_PROFESSIONAL) and the applicant's access log.
    return p.render("pro_key.html", account_id=account_id, key=key)


@post("/pro/applicants/{account_id:str}/opt-out", opt=PRO, include_in_schema=False, status_code=303)
async def request_opt_out(
    request: Request[Any, Any, Any],
    account_id: FromPath[str],
    vault: VaultDep,
    principal: PrincipalDep,
) -> Response[Any]:
    p = await page(request, principal=principal)
    form = await form_of(request)
    p.check_csrf(form)
    if form.get("confirm") != "yes":  # a consequential step: never one stray tap
        return p.redirect("/pro/applicants?done=optout-confirm")
    try:
        await anyio.to_thread.run_sync(optout.request_opt_out, vault, principal, account_id)
    except Conflict:
        return p.redirect("/pro/applicants?done=optout-conflict")
    return p.redirect("/pro/applicants?done=optout")


ROUTES: list[Any] = [applicants, retrieve_key, request_opt_out]
