"""Legal department and court pages: look-up by OFPRA number, proof export, proof
verification with the verdict (vault/court.py, vault/proof.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Stream

from api.pages.web import form_of, page, page_opt
from api.security import PrincipalDep, VaultDep
from vault import court, proof
from vault.errors import PayloadTooLarge
from vault.notification import APPEAL_CAVEAT_EN, APPEAL_CAVEAT_FR

COURT = page_opt("court")
LOOKUP = page_opt(*court.LOOKUP_ROLES)
LEGAL_AND_COURT = page_opt(*proof.PROOF_ROLES)
#: A proof file holds two PDFs and small JSON/PEM files.
MAX_PROOF_FILE = 2
#: Longest OFPRA number accepted (the column and the API's bound).
MAX_OFPRA_NUMBER = 32


@get("/legal/lookup", opt=LOOKUP, include_in_schema=False)
async def lookup(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    """Look-up by OFPRA number: the documents of the file within the caller's remit
    (court: decisions; legal: every document), their dates and a proof export each."""
    p = await page(request, principal=principal)
    number = (request.query_params.get("ofpra_number") or "").strip()
    errors: list[tuple[str, str]] = []
    result = None
    if "ofpra_number" in request.query_params:
        if not number or len(number) > MAX_OFPRA_NUMBER:
            errors.append(("ofpra_number", p._("Enter an OFPRA number.")))
        else:
            result = await anyio.to_thread.run_sync(court.lookup, vault, principal, number)
    status = 400 if errors else 200
    # The vault's wording of the appeal caveat (vault/notification.py): French, the
    # legal reference, unless the reader reads English.
    en = p.lang.code == "en"
    return p.render(
        "legal_lookup.html",
        status=status,
        errors=errors,
        number=number,
        result=result,
        caveat=APPEAL_CAVEAT_EN if en else APPEAL_CAVEAT_FR,
        caveat_lang="en" if en else "fr",
    )


@get("/court/decisions", opt=COURT, include_in_schema=False)
async def decisions(request: Request[Any, Any, Any]) -> Response[Any]:
    """The court's former address of the look-up (bookmarks): same page, same query."""
    p = await page(request)
    query = urlencode({"ofpra_number": request.query_params.get("ofpra_number") or ""})
    target = "/legal/lookup" + ("?" + query if "ofpra_number" in request.query_params else "")
    return p.redirect(target)


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                yield block
    finally:
        path.unlink(missing_ok=True)


@get("/legal/documents/{document_id:str}/proof", opt=LEGAL_AND_COURT, include_in_schema=False)
async def proof_export(
    document_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Stream:
    path, size = await anyio.to_thread.run_sync(
        proof.write_proof_tempfile, vault, principal, document_id
    )
    return Stream(
        _chunks(path),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="proof-{document_id}.zip"',
            "Content-Length": str(size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        },
    )


@get("/legal/verify", opt=LEGAL_AND_COURT, include_in_schema=False)
async def verify_form(request: Request[Any, Any, Any], principal: PrincipalDep) -> Response[Any]:
    p = await page(request, principal=principal)
    return p.render("legal_verify.html", errors=[], report=None)


@post(
    "/legal/verify",
    opt=LEGAL_AND_COURT,
    include_in_schema=False,
    status_code=200,
    request_max_body_size=None,  # bounded below by max_upload_bytes
)
async def verify_submit(
    request: Request[Any, Any, Any], vault: VaultDep, principal: PrincipalDep
) -> Response[Any]:
    p = await page(request, principal=principal)
    limit = vault.settings.max_upload_bytes * MAX_PROOF_FILE
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(f"the limit is {limit} bytes")
    form = await form_of(request)
    p.check_csrf(form)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = [("file", p._("Choose the proof file (.zip) to verify."))]
        return p.render("legal_verify.html", status=400, errors=errors, report=None)
    data = await upload.read()
    await upload.close()
    # The verdict is the offline verifier's: the same code a court would run.
    report = await anyio.to_thread.run_sync(
        lambda: proof.verify_bundle(bytes(data), max_size=limit)
    )
    return p.render("legal_verify.html", errors=[], report=report, filename=upload.filename)


ROUTES: list[Any] = [lookup, decisions, proof_export, verify_form, verify_submit]
