"""Closing an applicant's space (issue 5 §8; arrêté of 8 July 2020: the space is
deactivated at most one year after the OFPRA decision is notified).

Closing revokes every session and refuses any later login or first connection; it
never deletes a document, a proof or a ledger entry (retention is a separate
setting and process). ``ACCOUNT_CLOSED`` records why: ``agent`` or
``decision_notified`` (the sweeper), never who the person is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from vault.db.models import Account, Document, Session
from vault.errors import AccountClosed, Forbidden, NotFound
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.principal import Principal
from vault.service import BackgroundTask, Vault

DECISION = "DECISION"
REASONS = ("agent", "decision_notified")


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"


@dataclass(frozen=True)
class Closed:
    account_id: str
    closed_at: str
    reason: str


def _close_in(
    s: DbSession, ledger: LedgerAppender, vault: Vault, acc: Account, reason: str
) -> None:
    now = vault.clock.now()
    acc.status = "closed"
    acc.closed_at = now
    acc.closed_reason = reason
    s.execute(
        update(Session)
        .where(Session.account_id == acc.id, Session.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    ledger.append(
        EntryType.ACCOUNT_CLOSED,
        at=now,
        account_id=acc.id,
        subject_commitment=subject_commitment(acc.subject_salt or b"", acc.agdref),
        reason=reason,
    )


def close_account(vault: Vault, principal: Principal, account_id: str) -> Closed:
    if principal.role != "agent":
        raise Forbidden()

    def unit(s: DbSession, ledger: LedgerAppender) -> Closed:
        acc = s.get(Account, account_id)
        if acc is None:
            raise AccountNotFound()
        if acc.status == "closed":
            raise AccountClosed()
        _close_in(s, ledger, vault, acc, "agent")
        assert acc.closed_at is not None
        return Closed(acc.id, acc.closed_at.isoformat(), "agent")

    return vault.sequencer.run(unit)


def due_for_closure(vault: Vault) -> list[str]:
    """Accounts whose DECISION was notified at least the configured days ago."""
    cutoff = vault.clock.now() - timedelta(days=vault.settings.closure_after_notification_days)
    with vault.read() as s:
        return list(
            s.scalars(
                select(Account.id)
                .join(Document, Document.account_id == Account.id)
                .where(
                    Account.status != "closed",
                    Document.type_code == DECISION,
                    Document.notified_at.is_not(None),
                    Document.notified_at <= cutoff,
                )
                .distinct()
            )
        )


def sweep_closures(vault: Vault) -> int:
    """Close every account due; idempotent and safe to run from several processes."""
    n = 0
    for account_id in due_for_closure(vault):

        def unit(s: DbSession, ledger: LedgerAppender, account_id: str = account_id) -> bool:
            acc = s.get(Account, account_id)
            if acc is None or acc.status == "closed":
                return False
            _close_in(s, ledger, vault, acc, "decision_notified")
            return True

        if vault.sequencer.run(unit):
            n += 1
    return n


def install(vault: Vault) -> None:
    if not any(t.name == "closure-sweeper" for t in vault.background):
        vault.background.append(BackgroundTask("closure-sweeper", 3600.0, sweep_closures))
