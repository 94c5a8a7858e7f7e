"""The professional module (seed FAQ "lost key"): a SPADA or DNA social worker sees
only the applicants their own structure accompanies.

Object-level rule, enforced here and not only in the routes: an account of another
structure is indistinguishable from a missing one (404). Listing shows minimal data
(no AGDREF, no contact value): the account id, its status and channel, the language,
and whether a phone / e-mail is on file (so the worker knows the key must be handed
over in person). Every retrieval of a key writes ``KEY_RETRIEVED_BY_PROFESSIONAL``
(commitment + structure id, no personal data) and an access-log line, in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from vault.accounts import CONNECTION_KEY_PURPOSE
from vault.crypto.keys import open_secret
from vault.db.models import Account
from vault.documents import log_access
from vault.errors import AccountClosed, Forbidden, NotFound
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.principal import Principal
from vault.service import Vault


class ApplicantNotFound(NotFound):
    code = "applicant_not_found"
    title = "No such applicant in your structure"


@dataclass(frozen=True)
class ApplicantSummary:
    account_id: str
    status: str
    channel: str  # electronic | postal
    language: str
    has_phone: bool
    has_email: bool


def _structure(principal: Principal) -> str:
    if principal.role != "professional" or not principal.structure_id:
        raise Forbidden()
    return principal.structure_id


def accompanied(s: DbSession, principal: Principal, account_id: str) -> Account:
    """The account if ``principal``'s structure accompanies it, else 404."""
    structure = _structure(principal)
    acc = s.get(Account, account_id) if len(account_id) <= 36 else None
    if acc is None or acc.structure_id != structure:
        raise ApplicantNotFound()
    return acc


def list_applicants(vault: Vault, principal: Principal) -> list[ApplicantSummary]:
    structure = _structure(principal)
    with vault.write() as s:
        rows = list(
            s.scalars(
                select(Account)
                .where(Account.structure_id == structure)
                .order_by(Account.created_at.desc(), Account.id)
            )
        )
        for acc in rows:
            log_access(vault, principal, acc.id, "pro.list", s=s)
        return [
            ApplicantSummary(
                acc.id,
                acc.status,
                "postal" if acc.status == "opted_out" else "electronic",
                acc.language,
                acc.phone is not None,
                acc.email is not None,
            )
            for acc in rows
        ]


def retrieve_connection_key(vault: Vault, principal: Principal, account_id: str) -> str:
    structure = _structure(principal)

    def unit(s: DbSession, ledger: LedgerAppender) -> str:
        acc = accompanied(s, principal, account_id)
        if acc.status == "closed":
            raise AccountClosed()
        key = open_secret(
            vault.keyring, acc.connection_key_sealed, CONNECTION_KEY_PURPOSE, acc.id
        ).decode()
        ledger.append(
            EntryType.KEY_RETRIEVED_BY_PROFESSIONAL,
            account_id=acc.id,
            subject_commitment=subject_commitment(acc.subject_salt or b"", acc.agdref),
            structure_id=structure,
        )
        log_access(vault, principal, acc.id, "pro.connection_key", s=s)
        return key

    return vault.sequencer.run(unit)
