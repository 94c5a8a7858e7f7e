"""Reminders for unread documents (D+7 and D+13 by default, ``VAULT_REMINDER_DAYS``).

A document not yet opened gets one reminder per configured day, counted from its
making available. Rules:

* only while it is unread (``first_access_at`` is NULL) and not yet notified;
* never at or after the deemed instant (:func:`deemed_notification_instant`): once the
  15-day delay has run the document *is* notified (R.531-17) and a reminder would be
  misleading; the dispatcher re-checks both conditions just before sending, since a
  reminder may wait in the outbox (retries) while the applicant opens the document;
* exactly once per (document, day): dedupe key ``rem:<document>:d<day>``.

A sweep that ran late (downtime) still sends a due reminder as long as the deemed
instant has not passed: D+7 missed on day 7 is sent on day 9; a reminder is never
sent for a day whose *next* reminder is also due (only the latest due one is sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from vault.alerts.outbox import enqueue_applicant_message
from vault.db.models import Account, Document
from vault.errors import ConfigurationError
from vault.ledger.sequencer import LedgerAppender
from vault.notification import deemed_notification_instant
from vault.service import Vault

BATCH = 200


def reminder_days(vault: Vault) -> tuple[int, ...]:
    try:
        days = tuple(sorted({int(d) for d in vault.settings.reminder_days.split(",") if d.strip()}))
    except ValueError:
        raise ConfigurationError("VAULT_REMINDER_DAYS is a comma-separated list of days") from None
    if any(d <= 0 for d in days):
        raise ConfigurationError("VAULT_REMINDER_DAYS must be positive")
    return days


def reminder_key(document_id: str, day: int) -> str:
    return f"rem:{document_id}:d{day}"


def still_worth_reminding(doc: Document, now: datetime) -> bool:
    return (
        doc.first_access_at is None
        and doc.notified_on is None
        and now < deemed_notification_instant(doc.posted_at)
    )


def due_day(doc: Document, days: tuple[int, ...], now: datetime) -> int | None:
    """The latest configured day already reached, if reminding still makes sense."""
    if not still_worth_reminding(doc, now):
        return None
    reached = [d for d in days if doc.posted_at + timedelta(days=d) <= now]
    return reached[-1] if reached else None


@dataclass(frozen=True)
class ReminderSweep:
    examined: int
    queued: int

    def summary(self) -> str:
        return f"{self.queued} reminder messages queued ({self.examined} documents examined)"


def send_reminders(vault: Vault, *, now: datetime | None = None) -> ReminderSweep:
    """Queue the reminders due at ``now`` (the dispatcher sends them)."""
    now = now or vault.clock.now()
    days = reminder_days(vault)
    if not days:
        return ReminderSweep(0, 0)
    # Deemed instant is at most ~17 days after posting (15 + working-day shift): older
    # documents can't need a reminder; newer than the first day don't need one yet.
    oldest = now - timedelta(days=max(days) + 20)
    newest = now - timedelta(days=days[0])
    examined = queued = 0
    after = ""
    while True:
        with vault.read() as s:
            ids = list(
                s.scalars(
                    select(Document.id)
                    .where(
                        Document.first_access_at.is_(None),
                        Document.notified_on.is_(None),
                        Document.posted_at >= oldest,
                        Document.posted_at <= newest,
                        Document.id > after,
                    )
                    .order_by(Document.id)
                    .limit(BATCH)
                )
            )
        if not ids:
            return ReminderSweep(examined, queued)
        after = ids[-1]
        examined += len(ids)

        def unit(s: DbSession, ledger: LedgerAppender, ids: list[str] = ids) -> int:
            n = 0
            for doc in s.scalars(select(Document).where(Document.id.in_(ids))):
                day = due_day(doc, days, now)
                if day is None:
                    continue
                acc = s.get(Account, doc.account_id)
                if acc is None or acc.status in ("closed", "opted_out"):
                    continue
                n += len(
                    enqueue_applicant_message(
                        s,
                        vault,
                        acc,
                        "reminder",
                        ledger=ledger,
                        document_id=doc.id,
                        dedupe_key=reminder_key(doc.id, day),
                    )
                )
            return n

        queued += vault.sequencer.run(unit)


__all__ = ["ReminderSweep", "due_day", "reminder_days", "reminder_key", "send_reminders"]
