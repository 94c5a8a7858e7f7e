"""Bulk seeding for growth tests (issue 9): many documents and ledger entries, fast.

Not the HTTP API and not one transaction per document: accounts and documents are
inserted in big batches, each batch in **one** sequencer unit (so the entries get
consecutive indexes and chain links under the writer lock, and the tile writer
persists the batch's tiles in the same transaction, exactly as for normal traffic).
``ledger verify`` therefore passes on a seeded vault, and the tiles need no rebuild.

What is real: every account has its own wrapped applicant key and subject salt;
every document has its own data key and an encrypted blob, so seeded documents open
through the normal read path and their proofs export. What is cut short, on purpose:

* every seeded account shares one Argon2id password hash and one connection-key hash
  (hashing 200,000 passwords would take hours and measure nothing about growth); the
  password is :data:`SEED_PASSWORD`, so load tests can log in as any seeded account;
* blobs are a small unsealed PDF (no PAdES seal, no TSA call per document);
* the entries beyond POSTED / FIRST_ACCESS / ACCOUNT_* are ALERT_SENT entries with
  ``channel: "none"`` (the shape the outbox writes when no channel is configured).

Personal data never enters an entry: subjects are ``subject_commitment(salt, agdref)``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session as DbSession

from vault.crypto.envelope import EncryptionContext, encrypt_stream
from vault.crypto.keys import (
    new_applicant_key,
    new_data_key,
    seal_secret,
    wrap_applicant_key,
    wrap_data_key,
)
from vault.crypto.passwords import hash_password
from vault.crypto.tokens import new_connection_key, normalize_connection_key
from vault.db.models import Account, Document
from vault.errors import InvalidInput
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.service import Vault
from vault.storage import new_blob_name

SEED_PASSWORD = "seeded account password"  # noqa: S105 -- synthetic accounts only
DOCS_PER_ACCOUNT = 5
_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass
class SeedReport:
    accounts: int
    documents: int
    entries: int
    seconds: float
    ledger_size: int

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def seed(
    vault: Vault,
    *,
    documents: int,
    entries: int,
    batch: int = 2000,
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

    params = (vault.settings.argon2_opslimit, vault.settings.argon2_memlimit)
    from vault.crypto.passwords import Argon2Params

    password_hash = hash_password(SEED_PASSWORD, Argon2Params(*params))
    key_hash = hash_password(normalize_connection_key(new_connection_key()), Argon2Params(*params))
    from vault.eligibility import Registration, decide

    registered_on = vault.clock.now().date() - timedelta(days=3)
    decision = decide(Registration(guda="Rennes", registered_on=registered_on, procedure="normal"))

    started = time.perf_counter()
    appended = 0
    done_docs = 0
    pool = ThreadPoolExecutor(blob_threads)
    try:
        doc_index = 0
        while done_docs < documents:
            n_docs = min(batch, documents - done_docs)
            accounts = _make_accounts(vault, -(-n_docs // DOCS_PER_ACCOUNT), registered_on)
            docs = _make_documents(vault, pool, accounts, n_docs)
            extra: list[int] = []
            for _ in docs:
                extra.append(fillers_per_doc + (1 if doc_index < fillers_extra else 0))
                doc_index += 1
            appended += _commit_batch(
                vault, accounts, docs, extra, password_hash, key_hash, decision.table_version
            )
            done_docs += n_docs
            if progress is not None:
                progress(done_docs, appended)
    finally:
        pool.shutdown()
    from vault.ledger.store import current_size

    with vault.read() as s:
        size = current_size(s)
    return SeedReport(
        accounts=n_accounts,
        documents=documents,
        entries=appended,
        seconds=time.perf_counter() - started,
        ledger_size=size,
    )


def _make_accounts(vault: Vault, n: int, registered_on: date) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        account_id = str(uuid.uuid4())
        key = new_applicant_key()
        wrapped = wrap_applicant_key(vault.keyring, key, account_id)
        out.append(
            {
                "id": account_id,
                "agdref": str(secrets.randbelow(10**10)).zfill(10),
                "ofpra_number": "SEED-" + uuid.uuid4().hex[:16],
                "registered_on": registered_on,
                "salt": secrets.token_bytes(32),
                "key": key,
                "wrapped": wrapped,
                "sealed_ck": seal_secret(vault.keyring, b"seeded", "connection-key", account_id),
            }
        )
    return out


def _make_documents(
    vault: Vault, pool: ThreadPoolExecutor, accounts: list[dict[str, Any]], n: int
) -> list[dict[str, Any]]:
    sha = hashlib.sha256(_PDF).hexdigest()

    def one(i: int) -> dict[str, Any]:
        acc = accounts[i // DOCS_PER_ACCOUNT]
        document_id = str(uuid.uuid4())
        data_key = new_data_key()
        name = new_blob_name()
        ctx = EncryptionContext(acc["id"], document_id, 1)
        vault.blobs.put(name, encrypt_stream(data_key, ctx, [_PDF]))
        return {
            "id": document_id,
            "account": acc,
            "blob_name": name,
            "wrapped_data_key": wrap_data_key(acc["key"], data_key, acc["id"], document_id),
            "sha256": sha,
        }

    return list(pool.map(one, range(n)))


def _commit_batch(
    vault: Vault,
    accounts: list[dict[str, Any]],
    docs: list[dict[str, Any]],
    fillers: list[int],
    password_hash: str,
    key_hash: str,
    table_version: str | None,
) -> int:
    def unit(s: DbSession, ledger: LedgerAppender) -> int:
        now = vault.clock.now()
        s.execute(
            insert(Account),
            [
                {
                    "id": a["id"],
                    "agdref": a["agdref"],
                    "ofpra_number": a["ofpra_number"],
                    "status": "active",
                    "guda": "Rennes",
                    "registered_on": a["registered_on"],
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
                    "created_at": now,
                    "activated_at": now,
                }
                for a in accounts
            ],
        )
        s.execute(
            insert(Document),
            [
                {
                    "id": d["id"],
                    "account_id": d["account"]["id"],
                    "type_code": "CONVOCATION",
                    "title": "Convocation (seed)",
                    "sha256": d["sha256"],
                    "size": len(_PDF),
                    "blob_name": d["blob_name"],
                    "wrapped_data_key": d["wrapped_data_key"],
                    "key_version": 1,
                    "posted_at": now,
                    "posted_by": "seed",
                    "first_access_at": now,
                }
                for d in docs
            ],
        )
        n = 0
        for a in accounts:
            commitment = subject_commitment(a["salt"], a["agdref"])
            a["commitment"] = commitment
            for t in (EntryType.ACCOUNT_CREATED, EntryType.ACCOUNT_ACTIVATED):
                ledger.append(t, at=now, account_id=a["id"], subject_commitment=commitment)
                n += 1
        for d, extra in zip(docs, fillers, strict=True):
            acc = d["account"]
            common = {"document_id": d["id"], "account_id": acc["id"], "at": now}
            ledger.append(
                EntryType.POSTED,
                document_sha256=d["sha256"],
                document_type="CONVOCATION",
                subject_commitment=acc["commitment"],
                **common,
            )
            ledger.append(
                EntryType.FIRST_ACCESS,
                document_sha256=d["sha256"],
                subject_commitment=acc["commitment"],
                **common,
            )
            n += 2
            for attempt in range(extra):
                ledger.append(
                    EntryType.ALERT_SENT,
                    channel="none",
                    outcome="no_channel",
                    attempt=attempt,
                    kind="new_document",
                    reason="seed",
                    subject_commitment=acc["commitment"],
                    **common,
                )
            n += extra
        return n

    return vault.sequencer.run(unit, timeout=600.0)
