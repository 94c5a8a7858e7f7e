"""Bulk seeding for growth tests (issue 9): many documents and ledger entries, fast.

Not the HTTP API and not one transaction per document. Per batch of documents:

1. accounts and documents are made in memory with real keys: every account has its
   own wrapped applicant key and subject salt, every document its own data key and
   its own encrypted blob (the ``OVB1`` envelope of a small PDF), so every seeded
   document opens through the normal read path and its proofs export;
2. the blobs are stored: on the filesystem store, written without the per-file
   ``fsync`` pair of :meth:`FilesystemBlobStore.put` and made durable by one
   ``sync()`` for the whole batch, before the rows that point at them commit; on S3,
   real ``PUT``s from a thread pool (the S3 server is the limit there);
3. ONE write transaction takes the cross-process writer lock (the sequencer's
   ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), reads the
   committed tail, builds the batch's entries with the sequencer's arithmetic
   (canonical bytes, leaf hashes, chain links; see :class:`_BulkAppender`), bulk-inserts
   accounts, documents and entries (``COPY`` on PostgreSQL, ``executemany`` on
   SQLite) and hands the entries to the ledger's :class:`TileWriter`, which writes
   the tiles in the same transaction, exactly as the group commit does.

``ledger verify`` therefore passes on a seeded vault, and the tiles need no rebuild.
Bulk-load settings are scoped to the load: ``SET LOCAL synchronous_commit = off`` per
PostgreSQL transaction (the final commit is a normal durable one); on SQLite,
``synchronous=OFF`` and a larger page cache on the seeding connection only, restored
(and the WAL checkpointed with ``synchronous=FULL``) before returning.

What is cut short, on purpose:

* every seeded account shares one Argon2id password hash and one connection-key hash
  (hashing 200,000 passwords would take hours and measure nothing about growth); the
  password is :data:`SEED_PASSWORD`, so load tests can log in as any seeded account;
* blobs are a small unsealed PDF (no PAdES seal, no TSA call per document);
* the entries beyond POSTED / FIRST_ACCESS / ACCOUNT_* are ALERT_SENT entries with
  ``channel: "none"`` (the shape the outbox writes when no channel is configured).

Personal data never enters an entry: subjects are ``subject_commitment(salt, agdref)``.
Never run this on a production vault: it creates synthetic applicants.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session as DbSession

from vault.clock import rfc3339
from vault.crypto.envelope import EncryptionContext, encrypt_stream
from vault.crypto.keys import (
    new_applicant_key,
    new_data_key,
    seal_secret,
    wrap_applicant_key,
    wrap_data_key,
)
from vault.crypto.passwords import Argon2Params, hash_password
from vault.crypto.tokens import new_connection_key, normalize_connection_key
from vault.db.models import Account, Document, LedgerEntry
from vault.errors import InvalidInput
from vault.ledger.entries import (
    ZERO_CHAIN,
    EntryType,
    canonical_entry,
    chain_next,
    leaf_hash,
    subject_commitment,
)
from vault.ledger.sequencer import LEDGER_COLUMNS, AppendedEntry
from vault.ledger.store import ledger_store, lock_writer
from vault.service import Vault
from vault.storage import FilesystemBlobStore, new_blob_name, validate_blob_name

SEED_PASSWORD = "seeded account password"  # noqa: S105 -- synthetic accounts only
DOCS_PER_ACCOUNT = 5


def _minimal_pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table (readers such as pyHanko,
    used by proof export, need ``startxref``)."""
    objs = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


_PDF = _minimal_pdf()
_PDF_SHA256 = hashlib.sha256(_PDF).hexdigest()

_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
_DOCUMENTS: Table = Document.__table__  # type: ignore[assignment]
_ENTRIES: Table = LedgerEntry.__table__  # type: ignore[assignment]


@dataclass
class SeedReport:
    accounts: int
    documents: int
    entries: int
    seconds: float
    ledger_size: int
    blob_seconds: float = 0.0  # of which: making and storing the encrypted blobs
    db_seconds: float = 0.0  # of which: building entries and the bulk transactions

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def seed(
    vault: Vault,
    *,
    documents: int,
    entries: int,
    batch: int = 5000,
    blob_threads: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Add ``documents`` documents (and ``documents / 5`` accounts) and at least
    ``entries`` ledger entries. Returns counts and the elapsed time."""
    if documents < 1 or entries < 0 or batch < 1:
        raise InvalidInput("documents must be >= 1, entries >= 0, batch >= 1")
    # Whole accounts per batch, so that every account's documents share its batch.
    batch = max(DOCS_PER_ACCOUNT, batch // DOCS_PER_ACCOUNT * DOCS_PER_ACCOUNT)
    n_accounts = max(1, -(-documents // DOCS_PER_ACCOUNT))
    base_entries = 2 * n_accounts + 2 * documents  # CREATED, ACTIVATED, POSTED, FIRST_ACCESS
    fillers = max(0, entries - base_entries)
    fillers_per_doc, fillers_extra = divmod(fillers, documents)

    params = Argon2Params(vault.settings.argon2_opslimit, vault.settings.argon2_memlimit)
    hashes = (
        hash_password(SEED_PASSWORD, params),
        hash_password(normalize_connection_key(new_connection_key()), params),
    )
    from vault.eligibility import Registration, decide

    registered_on = vault.clock.now().date() - timedelta(days=3)
    decision = decide(Registration(guda="Rennes", registered_on=registered_on, procedure="normal"))

    started = time.perf_counter()
    appended = 0
    done_docs = 0
    blob_s = db_s = 0.0
    doc_index = 0
    with ThreadPoolExecutor(blob_threads) as pool, _bulk_connection(vault) as conn:
        while done_docs < documents:
            n_docs = min(batch, documents - done_docs)
            t0 = time.perf_counter()
            accounts = _make_accounts(vault, -(-n_docs // DOCS_PER_ACCOUNT), registered_on)
            docs = _make_documents(vault, pool, accounts, n_docs)
            t1 = time.perf_counter()
            extra = []
            for _ in docs:
                extra.append(fillers_per_doc + (1 if doc_index < fillers_extra else 0))
                doc_index += 1
            appended += _commit_batch(
                vault, conn, accounts, docs, extra, hashes, decision.table_version
            )
            db_s += time.perf_counter() - t1
            blob_s += t1 - t0
            done_docs += n_docs
            if progress is not None:
                progress(done_docs, appended)
    from vault.ledger.store import current_size

    with vault.read() as s:
        size = current_size(s)
    return SeedReport(
        accounts=n_accounts,
        documents=documents,
        entries=appended,
        seconds=time.perf_counter() - started,
        ledger_size=size,
        blob_seconds=round(blob_s, 1),
        db_seconds=round(db_s, 1),
    )


# --- bulk-load connection -----------------------------------------------------------------
@contextmanager
def _bulk_connection(vault: Vault) -> Iterator[Connection]:
    """One write connection for the whole load, with bulk settings on SQLite that are
    restored (and made durable by a checkpoint) before it goes back to the pool."""
    with vault.write_engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        before = {
            p: raw.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "cache_size")
        }
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading
        try:
            yield conn
        finally:
            if conn.in_transaction():
                conn.rollback()
            raw.execute(f"PRAGMA synchronous={int(before['synchronous'])}")
            raw.execute(f"PRAGMA cache_size={int(before['cache_size'])}")
            # Every commit above skipped fsync: write the WAL back durably now.
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --- accounts and documents ---------------------------------------------------------------
def _make_accounts(vault: Vault, n: int, registered_on: date) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        account_id = str(uuid.uuid4())
        key = new_applicant_key()
        wrapped = wrap_applicant_key(vault.keyring, key, account_id)
        salt = secrets.token_bytes(32)
        agdref = str(secrets.randbelow(10**10)).zfill(10)
        out.append(
            {
                "id": account_id,
                "agdref": agdref,
                "ofpra_number": "SEED-" + uuid.uuid4().hex[:16],
                "registered_on": registered_on,
                "salt": salt,
                "commitment": subject_commitment(salt, agdref),
                "key": key,
                "wrapped": wrapped,
                "sealed_ck": seal_secret(vault.keyring, b"seeded", "connection-key", account_id),
            }
        )
    return out


def _make_documents(
    vault: Vault, pool: ThreadPoolExecutor, accounts: list[dict[str, Any]], n: int
) -> list[dict[str, Any]]:
    fs = vault.blobs if isinstance(vault.blobs, FilesystemBlobStore) else None

    def one(i: int) -> dict[str, Any]:
        acc = accounts[i // DOCS_PER_ACCOUNT]
        document_id = str(uuid.uuid4())
        data_key = new_data_key()
        name = new_blob_name()
        ctx = EncryptionContext(acc["id"], document_id, 1)
        blob = b"".join(encrypt_stream(data_key, ctx, [_PDF]))
        if fs is not None:
            _write_file(fs, name, blob)
        else:
            vault.blobs.put(name, [blob])
        return {
            "id": document_id,
            "account": acc,
            "blob_name": name,
            "wrapped_data_key": wrap_data_key(acc["key"], data_key, acc["id"], document_id),
        }

    docs = list(pool.map(one, range(n)))
    if fs is not None:
        os.sync()  # the batch's blobs are durable before the rows naming them commit
    return docs


def _write_file(store: FilesystemBlobStore, name: str, data: bytes) -> None:
    """The filesystem store's layout and modes (0700 folders, 0600 files, no symlink
    followed), without its per-object fsync pair: the caller syncs once per batch."""
    path = store.root / validate_blob_name(name)
    parent = path.parent
    missing = []
    while not parent.is_dir():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another pool thread made it first
            os.mkdir(d, 0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


# --- the bulk transaction -----------------------------------------------------------------
def _commit_batch(
    vault: Vault,
    conn: Connection,
    accounts: list[dict[str, Any]],
    docs: list[dict[str, Any]],
    fillers: list[int],
    hashes: tuple[str, str],
    table_version: str | None,
) -> int:
    password_hash, key_hash = hashes
    with DbSession(bind=conn, expire_on_commit=False) as s, s.begin():
        pg = conn.dialect.name == "postgresql"
        if pg:
            lock_writer(s)
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            # A batch is one COPY of up to millions of entries: the online statement
            # timeout (VAULT_DB_STATEMENT_TIMEOUT_MS, 15 s) is for requests, not for
            # this offline load, and cancelled a 10-million-entry seed. For this
            # transaction only (the writer-lock wait above stays bounded).
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        tail = s.execute(
            select(LedgerEntry.seq, LedgerEntry.chain).order_by(LedgerEntry.seq.desc()).limit(1)
        ).first()
        next_seq, prev_chain = (tail[0] + 1, bytes(tail[1])) if tail else (0, ZERO_CHAIN)
        now = vault.clock.now()
        _unique_agdrefs(s, accounts)
        ledger = _BulkAppender(next_seq, prev_chain, now)
        for a in accounts:
            for t in (EntryType.ACCOUNT_CREATED, EntryType.ACCOUNT_ACTIVATED):
                ledger.append(t, account_id=a["id"], subject_commitment=a["commitment"])
        for d, extra in zip(docs, fillers, strict=True):
            acc = d["account"]
            common = {"document_id": d["id"], "account_id": acc["id"]}
            ledger.append(
                EntryType.POSTED,
                document_sha256=_PDF_SHA256,
                document_type="CONVOCATION",
                subject_commitment=acc["commitment"],
                **common,
            )
            ledger.append(
                EntryType.FIRST_ACCESS,
                document_sha256=_PDF_SHA256,
                subject_commitment=acc["commitment"],
                **common,
            )
            for attempt in range(extra):
                ledger.filler(attempt, d["id"], acc["id"], acc["commitment"])

        when = _bind(conn, _ENTRIES.c.recorded_at, now)
        reg = _bind(conn, _ACCOUNTS.c.registered_on, accounts[0]["registered_on"])
        acc_rows = [
            {
                "id": a["id"],
                "agdref": a["agdref"],
                "ofpra_number": a["ofpra_number"],
                "status": "active",
                "guda": "Rennes",
                "registered_on": reg,
                "procedure": "normal",
                "structure_id": "SPADA-35",
                "language": "fr",
                "overseas": False,
                "unaccompanied_minor": False,
                "unable_to_use_space": False,
                "eligibility_table": table_version,
                "password_hash": password_hash,
                "connection_key_hash": key_hash,
                "connection_key_sealed": a["sealed_ck"],
                "subject_salt": a["salt"],
                "wrapped_key": a["wrapped"].blob,
                "kek_version": a["wrapped"].kek_version,
                "key_version": 1,
                "created_at": when,
                "activated_at": when,
            }
            for a in accounts
        ]
        _bulk_insert(conn, _ACCOUNTS, acc_rows)
        doc_rows = [
            {
                "id": d["id"],
                "account_id": d["account"]["id"],
                "type_code": "CONVOCATION",
                "title": "Convocation (seed)",
                "sha256": _PDF_SHA256,
                "size": len(_PDF),
                "blob_name": d["blob_name"],
                "wrapped_data_key": d["wrapped_data_key"],
                "key_version": 1,
                "posted_at": when,
                "posted_by": "seed",
                "first_access_at": when,
            }
            for d in docs
        ]
        _bulk_insert(conn, _DOCUMENTS, doc_rows)
        _insert_entries(conn, ledger.appended, when)
        # The tiles, in this transaction, by the group commit's own hook; it hands
        # back what to run once the commit is durable (its cached right edge).
        committed = ledger_store(vault).writer(conn, ledger.appended)
    if callable(committed):
        committed()
    return len(ledger.appended)


def _unique_agdrefs(s: DbSession, accounts: list[dict[str, Any]]) -> None:
    """Random 10-digit AGDREFs collide (about 2 expected among 200,000): redraw the
    ones already taken in this batch or in the database (we hold the writer lock)."""
    while True:
        seen: set[str] = set()
        clash = []
        for a in accounts:
            if a["agdref"] in seen:
                clash.append(a)
            seen.add(a["agdref"])
        taken = set(s.scalars(select(Account.agdref).where(Account.agdref.in_(list(seen)))).all())
        clash += [a for a in accounts if a["agdref"] in taken]
        if not clash:
            return
        for a in clash:
            a["agdref"] = str(secrets.randbelow(10**10)).zfill(10)
            a["commitment"] = subject_commitment(a["salt"], a["agdref"])


#: The ALERT_SENT filler entry, keys in RFC 8785 order (code points): what
#: :func:`canonical_entry` makes of these fields. :meth:`_BulkAppender.filler` checks it
#: against canonical_entry once per batch, and ``ledger verify`` re-derives every one.
_FILLER = (
    '{{"at":"{at}","attempt":{attempt},"channel":"none","document_id":"{doc}",'
    '"kind":"new_document","outcome":"no_channel","reason":"seed","seq":{seq},'
    '"subject_commitment":"{subject}","type":"ALERT_SENT","v":1}}'
)


class _BulkAppender:
    """The sequencer's :class:`LedgerAppender` arithmetic (index, leaf hash, chain
    link) for one bulk batch recorded at one instant, plus a template fast path for
    the filler entries (a third of the per-entry cost of the generic encoder)."""

    def __init__(self, next_seq: int, prev_chain: bytes, at: datetime) -> None:
        self._next = next_seq
        self._chain = prev_chain
        self._at = at
        self._at_text = rfc3339(at)
        self._checked = False
        self.appended: list[AppendedEntry] = []

    def _add(self, type_: str, data: bytes, document_id: str | None, account_id: str) -> None:
        lh = leaf_hash(data)
        chain = chain_next(self._chain, lh)
        self.appended.append(
            AppendedEntry(self._next, type_, self._at, data, lh, chain, document_id, account_id)
        )
        self._next += 1
        self._chain = chain

    def append(
        self, type_: str, *, account_id: str, document_id: str | None = None, **fields: Any
    ) -> None:
        if document_id is not None:
            fields["document_id"] = document_id
        self._add(
            str(type_),
            canonical_entry(type_, self._next, self._at, fields),
            document_id,
            account_id,
        )

    def filler(self, attempt: int, document_id: str, account_id: str, subject: str) -> None:
        data = _FILLER.format(
            at=self._at_text, attempt=attempt, doc=document_id, seq=self._next, subject=subject
        ).encode("ascii")
        if not self._checked:
            fields = {
                "channel": "none",
                "outcome": "no_channel",
                "attempt": attempt,
                "kind": "new_document",
                "reason": "seed",
                "subject_commitment": subject,
                "document_id": document_id,
            }
            if data != canonical_entry(EntryType.ALERT_SENT, self._next, self._at, fields):
                raise RuntimeError("seed filler template differs from canonical_entry")
            self._checked = True
        self._add(EntryType.ALERT_SENT.value, data, document_id, account_id)


def _bind(conn: Connection, column: Any, value: Any) -> Any:
    """``value`` as the driver wants it for ``column`` (SQLite stores datetimes as
    text, PostgreSQL takes the aware datetime): the column type's own processor."""
    proc = column.type._cached_bind_processor(conn.dialect)
    return proc(value) if proc is not None else value


def _insert_entries(conn: Connection, appended: Sequence[AppendedEntry], when: Any) -> None:
    rows = (
        (e.seq, e.type, e.entry, e.leaf_hash, e.chain, e.document_id, e.account_id, when)
        for e in appended
    )
    _copy_rows(conn, _ENTRIES.name, LEDGER_COLUMNS, rows)


def _bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    # Python-side column defaults (``default=...``) a later migration may add: the
    # driver-level insert below would otherwise leave them NULL.
    defaults = {
        c.name: c.default.arg  # type: ignore[attr-defined]  # a ScalarElementColumnDefault
        for c in table.columns
        if c.name not in rows[0] and c.default is not None and c.default.is_scalar
    }
    if defaults:
        rows = [defaults | r for r in rows]
    cols = tuple(rows[0])
    _copy_rows(conn, table.name, cols, (tuple(r[c] for c in cols) for r in rows))


def _copy_rows(conn: Connection, table: str, cols: Sequence[str], rows: Any) -> None:
    """``COPY ... FROM STDIN`` on PostgreSQL, one ``executemany`` on SQLite, both on
    the transaction's own driver connection (values already in driver form)."""
    raw: Any = conn.connection.driver_connection
    names = ", ".join(cols)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(cols))
    cur = raw.cursor()
    try:
        # Table and column names come from the models; values are bound parameters.
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608
        cur.executemany(sql, rows)
    finally:
        cur.close()
