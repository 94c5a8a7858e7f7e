"""The transparency log's read API, in C2SP tlog-tiles layout, and witness submission.

Paths under ``/log`` follow https://c2sp.org/tlog-tiles with prefix ``/log``:
``/log/checkpoint``, ``/log/tile/<L>/<N>[.p/<W>]``, ``/log/tile/entries/<N>[.p/<W>]``,
so an off-the-shelf tlog client pointed at ``<public url>/log`` reads our tree.
Additions: ``/log/public-key`` (verifier key string), ``/log/checkpoint/<size>/
timestamp`` (the RFC 3161 token over the stored note), ``POST /log/cosignature``
(witnesses), and the JSON proof endpoints under ``/api/v1/log``.

Who may read. The log is public by default (DESIGN.md §6: entries hold no personal
data). ``VAULT_LOG_READ_ROLES`` (e.g. ``legal,court,admin``) restricts the read
routes to those roles. Because that list is a *setting*, it cannot be written in
``opt["roles"]`` at import without freezing it; instead every read route declares
``opt={"roles_setting": "log_read_roles"}`` and carries :func:`log_read_guard`, which
applies the same rule as the global role guard with the configured roles. The
route table thus states truthfully "public unless log_read_roles is set", and the
access-control matrix test can read ``roles_setting`` from it. ``POST
/log/cosignature`` is public: a witness has no account; its cosignature is checked
against the configured witness keys instead.

Caching: full and partial tiles and entry bundles are immutable under their path
(a partial tile of width W never changes), so they are served ``immutable``; the
checkpoint changes every second at most, so it is cached for 1 s.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, QueryParameter
from sqlalchemy import select

from api.security import VaultDep, resolve_principal
from vault.db.models import LedgerEntry
from vault.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, Unauthenticated
from vault.ledger import checkpoints, proofs
from vault.ledger.store import read_tile
from vault.ledger.tiles import ENTRIES, TILE_WIDTH, encode_entry_bundle, parse_tile_path
from vault.service import Vault

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=1"
TEXT = "text/plain"  # Litestar appends "; charset=utf-8" to text/* types
MAX_COSIGNED_NOTE = 64 * 1024


async def log_read_guard(
    conn: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Enforce ``settings.log_read_roles`` (empty: public)."""
    vault: Vault = conn.app.state.vault
    roles = {r.strip() for r in vault.settings.log_read_roles.split(",") if r.strip()}
    if not roles:
        return
    principal = await resolve_principal(conn)
    if principal is None:
        raise Unauthenticated()
    if principal.role not in roles:
        raise Forbidden()


READ = {"roles_setting": "log_read_roles"}
READ_GUARDS = [log_read_guard]


def _latest(vault: Vault) -> Any:
    cp = checkpoints.latest_checkpoint(vault)
    if cp is None:
        raise NotFound("the log has no checkpoint yet")
    return cp


@get("/log/checkpoint", opt=READ, guards=READ_GUARDS, tags=["log"], sync_to_thread=True)
def get_checkpoint(vault: VaultDep) -> Response[bytes]:
    """The latest signed checkpoint note with the stored witness cosignatures."""
    cp = _latest(vault)
    note = checkpoints.served_note(vault, cp)
    return Response(note.encode("utf-8"), media_type=TEXT, headers={"Cache-Control": SHORT})


@get("/log/public-key", opt=READ, guards=READ_GUARDS, tags=["log"], sync_to_thread=False)
def get_public_key(vault: VaultDep) -> Response[bytes]:
    """The log's note verifier key string (``<origin>+<key id>+<base64 key>``)."""
    vkey = checkpoints.public_key(vault)
    return Response(
        (vkey + "\n").encode(), media_type=TEXT, headers={"Cache-Control": "public, max-age=300"}
    )


@get(
    "/log/checkpoint/{size:int}/timestamp",
    opt=READ,
    guards=READ_GUARDS,
    tags=["log"],
    sync_to_thread=True,
    media_type="application/timestamp-token",
)
def get_checkpoint_timestamp(size: FromPath[int], vault: VaultDep) -> Response[bytes]:
    """The DER RFC 3161 TimeStampToken over the exact bytes of the stored note of the
    checkpoint of ``size`` (the note without cosignatures)."""
    cp = checkpoints.checkpoint_at(vault, size)
    if cp.timestamp_token is None:
        raise NotFound(f"the checkpoint of size {size} has no time stamp")
    return Response(
        bytes(cp.timestamp_token),
        media_type="application/timestamp-token",
        headers={"Cache-Control": IMMUTABLE},
    )


@get(
    "/log/checkpoint/{size:int}/note",
    opt=READ,
    guards=READ_GUARDS,
    tags=["log"],
    sync_to_thread=True,
)
def get_checkpoint_note(size: FromPath[int], vault: VaultDep) -> Response[bytes]:
    """The stored note of the checkpoint of ``size`` (the bytes the time stamp covers)."""
    cp = checkpoints.checkpoint_at(vault, size)
    return Response(cp.note.encode("utf-8"), media_type=TEXT, headers={"Cache-Control": IMMUTABLE})


@get("/log/tile/{tail:path}", opt=READ, guards=READ_GUARDS, tags=["log"], sync_to_thread=True)
def get_tile(tail: FromPath[str], vault: VaultDep) -> Response[bytes]:
    """A hash tile ``tile/<L>/<N>[.p/<W>]`` or entry bundle ``tile/entries/<N>[.p/<W>]``."""
    path = parse_tile_path("tile/" + tail.lstrip("/"))
    if path.level == ENTRIES:
        data = _entry_bundle(vault, path.index, path.width)
    else:
        with vault.read() as s:
            got = read_tile(s, int(path.level), path.index, path.width)
        if got is None:
            raise NotFound(f"no tile {path}")
        data = got
    return Response(
        data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
    )


def _entry_bundle(vault: Vault, index: int, width: int) -> bytes:
    start = index * TILE_WIDTH
    with vault.read() as s:
        rows = list(
            s.execute(
                select(LedgerEntry.entry)
                .where(LedgerEntry.seq >= start, LedgerEntry.seq < start + width)
                .order_by(LedgerEntry.seq)
            ).scalars()
        )
    if len(rows) != width:
        raise NotFound(f"entry bundle {index} has no {width} entries yet")
    return encode_entry_bundle([bytes(r) for r in rows])


class CosignatureAccepted(msgspec.Struct):
    size: int
    accepted: list[str]
    duplicates: list[str]


@post("/log/cosignature", status_code=200, tags=["log"])
async def post_cosignature(request: Request[Any, Any, Any], vault: VaultDep) -> CosignatureAccepted:
    """A witness submits the checkpoint note it cosigned (``text/plain``): the
    checkpoint text, a blank line, and its ``cosignature/v1`` line(s)."""
    import anyio.to_thread

    body = await request.body()
    if len(body) > MAX_COSIGNED_NOTE:
        raise PayloadTooLarge(f"a cosigned note is at most {MAX_COSIGNED_NOTE} bytes")
    try:
        note = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the note is not UTF-8") from None
    res = await anyio.to_thread.run_sync(checkpoints.add_cosignature, vault, note)
    return CosignatureAccepted(res.size, res.accepted, res.duplicates)


class ProofOut(msgspec.Struct):
    proof: list[str]
    size: int
    root_hash: str
    index: int | None = None
    leaf_hash: str | None = None
    old: int | None = None
    old_root_hash: str | None = None


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


@get(
    "/api/v1/log/inclusion-proof",
    opt=READ,
    guards=READ_GUARDS,
    tags=["log"],
    sync_to_thread=True,
)
def get_inclusion_proof(
    vault: VaultDep,
    index: Annotated[int, QueryParameter(ge=0)],
    size: Annotated[int, QueryParameter(ge=1)],
) -> Response[ProofOut]:
    """RFC 9162 audit path of entry ``index`` in the tree of ``size`` entries.

    ``size`` may be any size up to the current tree size (usually that of a signed
    checkpoint); ``root_hash`` is returned for convenience only: verify against the
    root of a checkpoint you verified."""
    proof = proofs.inclusion_proof(vault, index, size)
    root = proofs.root_at(vault, size, known_size=size)
    with vault.read() as s:
        leaf = s.execute(select(LedgerEntry.leaf_hash).where(LedgerEntry.seq == index)).scalar()
    return Response(
        ProofOut(
            [_b64(h) for h in proof],
            size,
            _b64(root),
            index=index,
            leaf_hash=_b64(bytes(leaf)) if leaf is not None else None,
        ),
        headers={"Cache-Control": IMMUTABLE},
    )


@get(
    "/api/v1/log/consistency-proof",
    opt=READ,
    guards=READ_GUARDS,
    tags=["log"],
    sync_to_thread=True,
)
def get_consistency_proof(
    vault: VaultDep,
    old: Annotated[int, QueryParameter(ge=1)],
    new: Annotated[int, QueryParameter(ge=1)],
) -> Response[ProofOut]:
    """RFC 9162 consistency proof from tree size ``old`` to ``new`` (``new`` at most
    the current tree size)."""
    proof = proofs.consistency_proof(vault, old, new)
    return Response(
        ProofOut(
            [_b64(h) for h in proof],
            new,
            _b64(proofs.root_at(vault, new, known_size=new)),
            old=old,
            old_root_hash=_b64(proofs.root_at(vault, old, known_size=new)),
        ),
        headers={"Cache-Control": IMMUTABLE},
    )


ROUTES: list[Any] = [
    get_checkpoint,
    get_public_key,
    get_checkpoint_timestamp,
    get_checkpoint_note,
    get_tile,
    post_cosignature,
    get_inclusion_proof,
    get_consistency_proof,
]
