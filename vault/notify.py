"""Recording notification (CESEDA R.531-17) in the ledger.

Every document gets exactly one ``NOTIFIED`` entry:

* at its first access before the deemed instant, in the same transaction as
  ``FIRST_ACCESS``, with basis ``first_access`` and the Paris date of that access;
* otherwise by :func:`sweep_notifications` once the 15-day delay has run, with basis
  ``delay_expired`` and the *legal* date computed from the making-available time, not
  the time the sweep ran (so a sweep after downtime records the right date);
* if the first access comes after the delay expired but before the sweeper ran, the
  first-access unit records the ``delay_expired`` notification itself.

Each entry names its rule and version. The entry's ``at`` is when it was recorded;
``notified_on`` / ``notified_at`` carry the legal facts. Uniqueness is enforced by
the single writer and by the partial unique index on (document, type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from vault.clock import rfc3339
from vault.db.models import Account, Document
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.notification import DEFAULT_NOTIFICATION_RULE, NotificationOutcome, notification_date
from vault.service import BackgroundTask, Vault

#: Called inside the transaction that records a notification (acknowledgements plug in).
NotifiedHook = Callable[[DbSession, LedgerAppender, Document, Account, NotificationOutcome], None]

SWEEP_BATCH = 200


def record_notification(
    vault: Vault,
    s: DbSession,
    ledger: LedgerAppender,
    doc: Document,
    acc: Account,
    outcome: NotificationOutcome,
) -> None:
    if doc.notified_on is not None:
        return
    ledger.append(
        EntryType.NOTIFIED,
        document_id=doc.id,
        account_id=acc.id,
        document_sha256=doc.sha256,
        subject_commitment=subject_commitment(acc.subject_salt or b"", acc.agdref),
        basis=outcome.basis,
        notified_on=outcome.notified_on.isoformat(),
        notified_at=rfc3339(outcome.notified_at),
        made_available_at=rfc3339(doc.posted_at),
        rule=outcome.rule_name,
        rule_version=outcome.rule_version,
    )
    doc.notified_on = outcome.notified_on
    doc.notified_at = outcome.notified_at
    doc.notified_basis = outcome.basis
    hooks: list[NotifiedHook] = vault.hooks("notified_hooks")
    for hook in hooks:
        hook(s, ledger, doc, acc, outcome)


def _on_first_access(vault: Vault) -> Callable[..., None]:
    def hook(
        s: DbSession, ledger: LedgerAppender, doc: Document, acc: Account, at: datetime
    ) -> None:
        outcome = notification_date(doc.posted_at, at, now=at, rule=DEFAULT_NOTIFICATION_RULE)
        if outcome is not None:
            record_notification(vault, s, ledger, doc, acc, outcome)

    return hook


@dataclass(frozen=True)
class NotificationSweep:
    examined: int
    notified: int

    def summary(self) -> str:
        return f"{self.notified} documents deemed notified ({self.examined} examined)"


def sweep_notifications(vault: Vault, *, now: datetime | None = None) -> NotificationSweep:
    """Record ``NOTIFIED`` (delay_expired) for every document whose delay has run."""
    now = now or vault.clock.now()
    # The delay is at least 15 whole days: nothing posted later can be due yet.
    horizon = now - timedelta(days=DEFAULT_NOTIFICATION_RULE.days)
    examined = notified = 0
    after = ""
    while True:
        with vault.read() as s:
            ids = list(
                s.scalars(
                    select(Document.id)
                    .where(
                        Document.notified_on.is_(None),
                        Document.posted_at <= horizon,
                        Document.id > after,
                    )
                    .order_by(Document.id)
                    .limit(SWEEP_BATCH)
                )
            )
        if not ids:
            return NotificationSweep(examined, notified)
        after = ids[-1]
        examined += len(ids)

        def unit(s: DbSession, ledger: LedgerAppender, ids: list[str] = ids) -> int:
            n = 0
            for doc in s.scalars(select(Document).where(Document.id.in_(ids))):
                if doc.notified_on is not None:
                    continue
                outcome = notification_date(doc.posted_at, doc.first_access_at, now=now)
                if outcome is None:
                    continue
                acc = s.get(Account, doc.account_id)
                assert acc is not None
                record_notification(vault, s, ledger, doc, acc, outcome)
                n += 1
            return n

        notified += vault.sequencer.run(unit)


def install(vault: Vault) -> None:
    vault.hooks("first_access_hooks").append(_on_first_access(vault))
    vault.background.append(
        BackgroundTask("notification-sweeper", 60.0, lambda v: sweep_notifications(v))
    )
