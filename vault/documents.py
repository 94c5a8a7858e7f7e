"""Posting and reading documents (DESIGN.md §4 and §5).

Write path invariants:

* the blob is written under a fresh random name *before* the row is committed, so a
  committed row never points at a missing blob; a crash in between leaves an orphan
  that :func:`sweep_blobs` removes after a grace period;
* the document row and its ``POSTED`` entry commit in ONE transaction (a sequencer
  unit), and the entry's ``at`` is the legal time of making available;
* an ``Idempotency-Key`` makes a retried post return the first result.

Read path invariants:

* the applicant's first read durably commits ``FIRST_ACCESS`` (and ``NOTIFIED`` where
  that access is the notification) *before* the first plaintext byte is produced;
  concurrent first opens yield exactly one ``FIRST_ACCESS`` (conditional update under
  the single writer, plus a partial unique index as a backstop);
* staff never read plaintext through the applicant's path and never count as access;
* another applicant's document is indistinguishable from a missing one (404).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm.attributes import set_committed_value

from vault.crypto.envelope import EncryptionContext, decrypt_stream, encrypt_stream
from vault.crypto.keys import (
    WrappedKey,
    new_data_key,
    unwrap_applicant_key,
    unwrap_data_key,
    wrap_data_key,
)
from vault.db.models import AccessLog, Account, Document, LedgerEntry
from vault.errors import (
    AccountClosed,
    AccountOptedOut,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
)
from vault.ledger.entries import EntryType, parse_entry, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.pdf.validate import inspect_pdf
from vault.principal import Principal
from vault.service import Vault
from vault.storage import new_blob_name

TYPE_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
READ_CHUNK = 1024 * 1024
STAFF_VIEW_ROLES = ("agent", "legal", "court")

#: Hooks run inside the first-access unit (the notification rules plug in here).
FirstAccessHook = Callable[[DbSession, LedgerAppender, Document, Account, datetime], None]
PostedHook = Callable[[DbSession, LedgerAppender, Document, Account], None]


class DocumentNotFound(NotFound):
    code = "document_not_found"
    title = "No such document"


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"


@dataclass(frozen=True)
class PostedDocument:
    document_id: str
    created: bool
    sha256: str
    size: int
    posted_at: datetime
    seq: int | None


@dataclass(frozen=True)
class OpenedDocument:
    document_id: str
    title: str
    size: int
    sha256: str
    chunks: Iterator[bytes]


def _file_chunks(f: BinaryIO, size: int = READ_CHUNK) -> Iterator[bytes]:
    while True:
        b = f.read(size)
        if not b:
            return
        yield b


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with path.open("rb") as f:
        for b in _file_chunks(f):
            h.update(b)
            n += len(b)
    return h.hexdigest(), n


def _check_postable(acc: Account | None) -> Account:
    if acc is None:
        raise AccountNotFound()
    if acc.status == "closed":
        raise AccountClosed()
    if acc.status == "opted_out":
        raise AccountOptedOut()
    return acc


def post_document(
    vault: Vault,
    actor: Principal,
    account_id: str,
    source: Path,
    *,
    type_code: str,
    title: str,
    idempotency_key: str | None = None,
) -> PostedDocument:
    """Post the PDF at ``source`` to an applicant. The caller owns ``source``."""
    if actor.role != "agent":
        raise Forbidden()
    if not TYPE_CODE_RE.fullmatch(type_code or ""):
        raise InvalidInput("type must be an upper-case code such as CONVOCATION", field="type")
    title = (title or "").strip()
    if not 1 <= len(title) <= 300:
        raise InvalidInput("title must be 1 to 300 characters", field="title")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters")

    with vault.read() as s:
        acc = _check_postable(s.get(Account, account_id))
        upload_sha, _ = _sha256_file(source)
        request_digest = hashlib.sha256(f"{type_code}\n{title}\n{upload_sha}".encode()).hexdigest()
        if idempotency_key is not None:
            existing = s.scalar(
                select(Document).where(
                    Document.account_id == account_id, Document.idempotency_key == idempotency_key
                )
            )
            if existing is not None:
                return _replay(existing, request_digest)

    inspect_pdf(source, max_size=vault.settings.max_upload_bytes)
    sealed = _seal(vault, source)
    try:
        return _store_and_commit(
            vault, actor, acc, sealed, type_code, title, idempotency_key, request_digest
        )
    finally:
        if sealed != source:
            sealed.unlink(missing_ok=True)


def _replay(existing: Document, request_digest: str) -> PostedDocument:
    if existing.request_digest != request_digest:
        raise IdempotencyConflict()
    return PostedDocument(
        existing.id, False, existing.sha256, existing.size, existing.posted_at, None
    )


def _seal(vault: Vault, source: Path) -> Path:
    sealer = vault.extras.get("sealer")
    if sealer is None:
        return source
    out = source.with_name(source.name + ".sealed")
    sealer.seal_file(source, out)
    return out


def _store_and_commit(
    vault: Vault,
    actor: Principal,
    acc: Account,
    sealed: Path,
    type_code: str,
    title: str,
    idempotency_key: str | None,
    request_digest: str,
) -> PostedDocument:
    document_id = str(uuid.uuid4())
    applicant_key = unwrap_applicant_key(
        vault.keyring, WrappedKey(acc.kek_version, acc.wrapped_key or b""), acc.id
    )
    data_key = new_data_key()
    ctx = EncryptionContext(acc.id, document_id, acc.key_version)
    digest = hashlib.sha256()
    size = 0

    def plaintext() -> Iterator[bytes]:
        nonlocal size
        with sealed.open("rb") as f:
            for b in _file_chunks(f):
                digest.update(b)
                size += len(b)
                yield b

    blob_name = new_blob_name()
    vault.blobs.put(blob_name, encrypt_stream(data_key, ctx, plaintext()))
    sha = digest.hexdigest()
    wrapped_dk = wrap_data_key(applicant_key, data_key, acc.id, document_id)
    posted_hooks: list[PostedHook] = vault.hooks("posted_hooks")
    account_id = acc.id
    salt, agdref = acc.subject_salt or b"", acc.agdref

    def unit(s: DbSession, ledger: LedgerAppender) -> PostedDocument:
        row = _check_postable(s.get(Account, account_id))
        at = vault.clock.now()
        doc = Document(
            id=document_id,
            account_id=account_id,
            type_code=type_code,
            title=title,
            sha256=sha,
            size=size,
            blob_name=blob_name,
            wrapped_data_key=wrapped_dk,
            key_version=row.key_version,
            posted_at=at,
            posted_by=actor.id,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
        )
        s.add(doc)
        s.flush()
        entry = ledger.append(
            EntryType.POSTED,
            at=at,
            document_id=document_id,
            account_id=account_id,
            document_sha256=sha,
            document_type=type_code,
            subject_commitment=subject_commitment(salt, agdref),
        )
        for hook in posted_hooks:
            hook(s, ledger, doc, row)
        return PostedDocument(document_id, True, sha, size, at, entry.seq)

    try:
        return vault.sequencer.run(unit)
    except SAIntegrityError:
        # A concurrent post with the same Idempotency-Key won; our blob is an orphan.
        vault.blobs.delete(blob_name)
        with vault.read() as s:
            existing = s.scalar(
                select(Document).where(
                    Document.account_id == account_id, Document.idempotency_key == idempotency_key
                )
            )
        if existing is None:
            raise
        return _replay(existing, request_digest)
    except BaseException:
        vault.blobs.delete(blob_name)
        raise


class DocumentSummary(NamedTuple):
    """What an applicant's document list shows (never the keys or the blob name)."""

    id: str
    type_code: str
    title: str
    posted_at: datetime
    first_access_at: datetime | None
    size: int
    sha256: str
    notified_on: date | None
    notified_basis: str | None


_DOCS = Document.__table__.c
_LIST_STATEMENT = (
    select(*(_DOCS[f] for f in DocumentSummary._fields))
    .where(_DOCS.account_id == bindparam("account_id"))
    .order_by(_DOCS.posted_at.desc(), _DOCS.id)
)
_ACCOUNTS = Account.__table__.c
#: What a download needs, document and owner's wrapped key, in one Core query.
_OPEN_STATEMENT = (
    select(
        _DOCS.id,
        _DOCS.account_id,
        _DOCS.title,
        _DOCS.size,
        _DOCS.sha256,
        _DOCS.blob_name,
        _DOCS.wrapped_data_key,
        _DOCS.key_version,
        _DOCS.first_access_at,
        _ACCOUNTS.kek_version,
        _ACCOUNTS.wrapped_key,
    )
    .join_from(Document.__table__, Account.__table__, _ACCOUNTS.id == _DOCS.account_id)
    .where(_DOCS.id == bindparam("document_id"))
)
_ACCESS_LOG_INSERT = insert(cast(Table, AccessLog.__table__))


def list_documents(vault: Vault, principal: Principal) -> list[DocumentSummary]:
    """The applicant's documents, newest first. Every list request runs this: one Core
    query built once, plain tuples out (no ORM objects)."""
    if principal.kind != "applicant":
        raise Forbidden()
    with vault.read_connection() as c:
        rows = c.execute(_LIST_STATEMENT, {"account_id": principal.id})
        return [DocumentSummary._make(r) for r in rows]


#: The first access is claimed once: only while first_access_at is still NULL.
_FIRST_ACCESS_CLAIM = (
    update(cast(Table, Document.__table__))
    .where(_DOCS.id == bindparam("document_id"), _DOCS.first_access_at.is_(None))
    .values(first_access_at=bindparam("at"))
)

#: The document and its account in one statement (the first-access unit needs both).
_DOC_WITH_ACCOUNT = (
    select(Document, Account)
    .join(Account, Account.id == Document.account_id)
    .where(Document.id == bindparam("document_id"))
)


def _own_document(
    s: DbSession, principal: Principal, document_id: str
) -> tuple[Document, Account]:
    row = (
        s.execute(_DOC_WITH_ACCOUNT, {"document_id": document_id}).first()
        if _is_uuid(document_id)
        else None
    )
    if row is None or principal.kind != "applicant" or row[0].account_id != principal.id:
        raise DocumentNotFound()
    return row[0], row[1]


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def record_first_access(
    vault: Vault, principal: Principal, document_id: str, *, access_action: str | None = None
) -> datetime:
    """Durably record the applicant's first access (idempotent). Returns its time.

    ``access_action`` also writes that access-log row in the same transaction (one
    commit for both on the first download)."""
    hooks: list[FirstAccessHook] = vault.hooks("first_access_hooks")

    def unit(s: DbSession, ledger: LedgerAppender) -> datetime:
        doc, acc = _own_document(s, principal, document_id)
        if access_action is not None:
            log_access(vault, principal, doc.account_id, access_action, document_id, s=s)
        if doc.first_access_at is not None:
            return doc.first_access_at
        at = vault.clock.now()
        # Core (not an ORM bulk update): no session synchronisation pass in the writer
        # thread. The ORM object is brought in line as already stored, so the flush
        # does not write first_access_at a second time.
        res = s.connection().execute(_FIRST_ACCESS_CLAIM, {"document_id": document_id, "at": at})
        if res.rowcount != 1:
            s.refresh(doc)
            assert doc.first_access_at is not None
            return doc.first_access_at
        set_committed_value(doc, "first_access_at", at)
        ledger.append(
            EntryType.FIRST_ACCESS,
            at=at,
            document_id=document_id,
            account_id=acc.id,
            document_sha256=doc.sha256,
            subject_commitment=subject_commitment(acc.subject_salt or b"", acc.agdref),
        )
        for hook in hooks:
            hook(s, ledger, doc, acc, at)
        return at

    return vault.sequencer.run(unit)


def log_access(
    vault: Vault,
    principal: Principal,
    account_id: str,
    action: str,
    document_id: str | None = None,
    s: DbSession | None = None,
) -> None:
    values = {
        "account_id": account_id,
        "actor_kind": principal.kind,
        "actor_role": principal.role,
        "actor_id": principal.id,
        "structure_id": principal.structure_id,
        "action": action,
        "document_id": document_id,
        "at": vault.clock.now(),
    }
    if s is not None:
        # In the caller's transaction, as Core: no unit-of-work pass for one row (this
        # runs in the ledger writer on a first download).
        s.connection().execute(_ACCESS_LOG_INSERT, values)
        return
    # An applicant reading their own space: the row's loss on a power failure harms
    # no one (it reports the applicant to themself), so it skips the fsync that would
    # otherwise dominate every list and download. Staff reads stay fully durable.
    own = principal.kind == "applicant" and principal.id == account_id
    with vault.write_relaxed() if own else vault.write_engine.begin() as c:
        c.execute(_ACCESS_LOG_INSERT, values)  # Core: no unit of work for one row


def open_document(vault: Vault, principal: Principal, document_id: str) -> OpenedDocument:
    """Record the first access if needed, then return a plaintext stream.

    Everything that can fail before a byte is delivered (keys unwrapped, the stored
    object reached) is done *before* the first access is recorded: an outage must
    never record a legal notification for a download that did not happen."""
    doc = None
    if principal.kind == "applicant" and _is_uuid(document_id):
        with vault.read_connection() as c:
            doc = c.execute(_OPEN_STATEMENT, {"document_id": document_id}).first()
    if doc is None or doc.account_id != principal.id:
        raise DocumentNotFound()  # another applicant's document is a missing one
    applicant_key = unwrap_applicant_key(
        vault.keyring, WrappedKey(doc.kek_version, doc.wrapped_key or b""), doc.account_id
    )
    data_key = unwrap_data_key(applicant_key, doc.wrapped_data_key, doc.account_id, doc.id)
    ctx = EncryptionContext(doc.account_id, doc.id, doc.key_version)
    stored = vault.blobs.open(doc.blob_name)  # raises now if the store is unreachable
    try:
        if doc.first_access_at is None:
            record_first_access(vault, principal, document_id, access_action="document.download")
        else:
            log_access(vault, principal, doc.account_id, "document.download", document_id)
    except BaseException:
        close = getattr(stored, "close", None)
        if close is not None:
            close()
        raise
    chunks = decrypt_stream(data_key, ctx, stored)
    return OpenedDocument(doc.id, doc.title, doc.size, doc.sha256, chunks)


def document_timeline(s: DbSession, document_id: str) -> list[dict[str, Any]]:
    rows = s.scalars(
        select(LedgerEntry).where(LedgerEntry.document_id == document_id).order_by(LedgerEntry.seq)
    )
    out = []
    for r in rows:
        e = parse_entry(bytes(r.entry))
        item = {"seq": r.seq, "type": r.type, "at": e["at"]}
        for k in ("basis", "notified_on", "rule", "channel", "outcome", "attempt"):
            if k in e:
                item[k] = e[k]
        out.append(item)
    return out


def document_view(vault: Vault, principal: Principal, document_id: str) -> dict[str, Any]:
    """Metadata and timeline for office staff and the court; never the content."""
    if principal.kind != "staff" or principal.role not in STAFF_VIEW_ROLES:
        raise Forbidden()
    with vault.read() as s:
        doc = s.get(Document, document_id) if _is_uuid(document_id) else None
        if doc is None:
            raise DocumentNotFound()
        acc = s.get(Account, doc.account_id)
        assert acc is not None
        timeline = document_timeline(s, document_id)
    log_access(vault, principal, acc.id, "document.metadata", document_id)
    return {
        "document_id": doc.id,
        "account_id": doc.account_id,
        "ofpra_number": acc.ofpra_number,
        "type": doc.type_code,
        "title": doc.title,
        "sha256": doc.sha256,
        "size": doc.size,
        "posted_at": doc.posted_at,
        "first_access_at": doc.first_access_at,
        "notified_on": doc.notified_on,
        "notified_basis": doc.notified_basis,
        "timeline": timeline,
    }


@dataclass(frozen=True)
class SweepReport:
    scanned: int
    deleted: int
    kept_recent: int
    referenced: int


def sweep_blobs(vault: Vault, *, now: datetime | None = None, dry_run: bool = False) -> SweepReport:
    """Delete blobs no committed row references, once older than the grace period.

    A blob younger than the grace period may belong to a post still in flight (blob
    written, row not yet committed), so it is never touched.
    """
    now = now or vault.clock.now()
    grace = vault.settings.blob_sweep_grace_seconds
    scanned = deleted = recent = referenced = 0
    batch: list[Any] = []

    def flush() -> None:
        nonlocal deleted, referenced
        if not batch:
            return
        names = [b.name for b in batch]
        with vault.read() as s:
            used = set(s.scalars(select(Document.blob_name).where(Document.blob_name.in_(names))))
            used |= set(vault.extras.get("referenced_blobs", lambda _s, _n: set())(s, names))
        for b in batch:
            if b.name in used:
                referenced += 1
            else:
                if not dry_run:
                    vault.blobs.delete(b.name)
                deleted += 1
        batch.clear()

    for info in vault.blobs.list(""):
        scanned += 1
        if (now - info.modified_at).total_seconds() < grace:
            recent += 1
            continue
        batch.append(info)
        if len(batch) >= 500:
            flush()
    flush()
    return SweepReport(scanned, deleted, recent, referenced)
