"""Proof files, their public verification, and the court look-up (issue 4 items 5, 7, 8)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Response, Stream

from api.security import PrincipalDep, VaultDep
from vault import court, proof
from vault.errors import PayloadTooLarge, UnsupportedMediaType

LEGAL_COURT = {"roles": ("legal", "court")}
APPLICANT = {"roles": ("applicant",)}
COURT = {"roles": ("court",)}
#: The verifier accepts proof files up to this size (a proof holds one sealed PDF).
VERIFY_LIMIT_EXTRA = 16 * 1024 * 1024


def _zip_response(path: Any, size: int, document_id: str) -> Stream:
    return Stream(
        proof.iter_file(path),
        media_type="application/zip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="proof-{document_id}.zip"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@get(
    "/api/v1/documents/{document_id:str}/proof",
    opt=LEGAL_COURT,
    tags=["proofs"],
    media_type="application/zip",
)
async def document_proof(
    document_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Stream:
    """The proof file (ZIP, ofpra-vault-proof/1) of a document; logged in the access log."""
    path, size = await anyio.to_thread.run_sync(
        proof.write_proof_tempfile, vault, principal, document_id
    )
    return _zip_response(path, size, document_id)


@get(
    "/api/v1/me/documents/{document_id:str}/proof",
    opt=APPLICANT,
    tags=["applicant"],
    media_type="application/zip",
)
async def my_document_proof(
    document_id: FromPath[str], vault: VaultDep, principal: PrincipalDep
) -> Stream:
    """The applicant's proof file of their own document (404 for any other)."""
    path, size = await anyio.to_thread.run_sync(
        proof.write_proof_tempfile, vault, principal, document_id
    )
    return _zip_response(path, size, document_id)


@post("/api/v1/proofs/verify", tags=["proofs"], status_code=200, request_max_body_size=None)
async def verify_proof(
    request: Request[Any, Any, Any], vault: VaultDep
) -> Response[dict[str, Any]]:
    """Verify an uploaded proof file (public). The body is the ZIP itself."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/zip", "application/octet-stream"):
        raise UnsupportedMediaType("send the proof ZIP itself with Content-Type: application/zip")
    limit = vault.settings.max_upload_bytes + VERIFY_LIMIT_EXTRA
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the limit is {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the limit is {limit} bytes")
    report = await anyio.to_thread.run_sync(
        lambda: proof.verify_bundle(bytes(body), max_size=limit)
    )
    return Response(report.to_json(), headers={"Cache-Control": "no-store"})


@get("/api/v1/court/decisions", opt=COURT, tags=["court"], sync_to_thread=True)
def court_decisions(
    vault: VaultDep,
    principal: PrincipalDep,
    ofpra_number: Annotated[str, QueryParameter(min_length=1, max_length=32)],
) -> dict[str, Any]:
    """The DECISION documents of an OFPRA file, with notification date and appeal deadline."""
    return court.decisions(vault, principal, ofpra_number)


ROUTES = [document_proof, my_document_proof, verify_proof, court_decisions]
