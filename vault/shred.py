"""Crypto-shredding at the end of retention: destroy an applicant's key.

Every document of an account is encrypted under a data key wrapped by the
applicant key, itself wrapped by the KEK (SECURITY.md "Key hierarchy"). Erasing the
wrapped applicant key makes every blob of the account permanently unreadable
without touching the blobs, the backups' copies of them, or the append-only ledger
(GDPR art. 17 and art. 5(1)(e) storage limitation; NIST SP 800-88 r1 §2.6,
"cryptographic erase"). Backups taken before the shredding still hold the wrapped
key: their own retention must be shorter than the legal retention margin
(docs/backup.md).

The ledger keeps its entries (they carry no personal data) and records
``KEY_DESTROYED`` with the account's subject commitment, so the chain stays
verifiable and the destruction is itself provable. Erasing the subject salt
(unlinking the commitment from the AGDREF number) is a separate decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from vault.db.models import Account, Document
from vault.errors import Conflict, NotFound
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.service import Vault


class AccountNotClosed(Conflict):
    code = "account_not_closed"
    title = "Only a closed account's key may be destroyed"


class KeyAlreadyDestroyed(Conflict):
    code = "key_already_destroyed"
    title = "This account's key was already destroyed"


@dataclass(frozen=True)
class Shredded:
    account_id: str
    documents: int
    seq: int


def shred_account(vault: Vault, account_id: str) -> Shredded:
    """Destroy the applicant key of a closed account and record ``KEY_DESTROYED``.

    One transaction (the sequencer's): the key is gone if and only if the entry is."""

    def unit(s: DbSession, ledger: LedgerAppender) -> Shredded:
        acc = s.get(Account, account_id)
        if acc is None:
            raise NotFound("no such account")
        if acc.status != "closed":
            raise AccountNotClosed()
        if acc.wrapped_key is None:
            raise KeyAlreadyDestroyed()
        n = s.scalar(
            select(func.count()).select_from(Document).where(Document.account_id == acc.id)
        )
        acc.wrapped_key = None
        entry = ledger.append(
            EntryType.KEY_DESTROYED,
            at=vault.clock.now(),
            account_id=acc.id,
            key="applicant",
            subject_commitment=subject_commitment(acc.subject_salt or b"", acc.agdref),
        )
        return Shredded(acc.id, int(n or 0), entry.seq)

    return vault.sequencer.run(unit)
