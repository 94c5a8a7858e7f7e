"""Reminders for unread documents: D+7 and D+13, once each, never once read or deemed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from tests.alerts.test_outbox import alert_entries, part, post, rows, set_contacts
from tests.alerts.test_outbox import settings as settings  # fixture override
from tests.support.sms_provider import SmsProviderHandle, server_error
from tests.support.smtp_server import SmtpServerHandle
from vault.alerts.dispatcher import dispatch_due
from vault.alerts.reminders import send_reminders
from vault.clock import FrozenClock
from vault.documents import record_first_access
from vault.notification import deemed_notification_instant
from vault.principal import Principal
from vault.service import Vault

POSTED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # the clock fixture's start


def reminders(vault: Vault, doc: str) -> list[tuple[str, str]]:
    return [
        (r.dedupe_key.rsplit(":", 1)[1], r.channel)
        for r in rows(vault, document_id=doc, kind="reminder")
    ]


def test_reminders_at_d7_and_d13_exactly_once(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    smtp_server: SmtpServerHandle,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    dispatch_due(vault)  # the posting alert

    clock.set(POSTED + timedelta(days=6, hours=23))
    assert send_reminders(vault).queued == 0
    clock.set(POSTED + timedelta(days=7))
    assert send_reminders(vault).queued == 2
    assert send_reminders(vault).queued == 0  # a second sweep the same day: nothing
    assert dispatch_due(vault).sent == 2
    clock.set(POSTED + timedelta(days=10))
    assert send_reminders(vault).queued == 0
    clock.set(POSTED + timedelta(days=13))
    assert send_reminders(vault).queued == 2
    assert dispatch_due(vault).sent == 2
    clock.set(POSTED + timedelta(days=14))
    assert send_reminders(vault).queued == 0

    assert sorted(reminders(vault, doc)) == [
        ("d13", "email"), ("d13", "sms"), ("d7", "email"), ("d7", "sms"),
    ]  # fmt: skip
    assert len(smtp_server.messages()) == 3 and len(sms_provider.sms_sent()) == 3
    kinds = [(e["kind"], e["outcome"]) for e in alert_entries(vault, doc)]
    assert kinds.count(("reminder", "sent")) == 4
    # The reminder says nothing about the document either.
    last = part(smtp_server.messages()[-1], "plain")
    assert "CONVOCATION" not in last and "Convocation" not in last


def test_no_reminder_once_the_document_was_read(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
) -> None:
    set_contacts(vault, applicant["account_id"])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    clock.set(POSTED + timedelta(days=3))
    open_as_applicant(vault, applicant["account_id"], doc)
    for day in (7, 13):
        clock.set(POSTED + timedelta(days=day))
        assert send_reminders(vault).queued == 0
    assert reminders(vault, doc) == []


def test_reminder_never_sent_after_the_deemed_date(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    dispatch_due(vault)
    deemed = deemed_notification_instant(POSTED)  # 2026-03-16T23:00Z

    # D+13 reminder queued, but the provider is down until after the deemed instant.
    clock.set(POSTED + timedelta(days=13))
    sms_provider.set_failures([server_error()])
    send_reminders(vault)
    assert dispatch_due(vault).retrying == 1
    clock.set(deemed)
    report = dispatch_due(vault)
    assert (report.sent, report.cancelled) == (0, 1)
    [row] = rows(vault, document_id=doc, kind="reminder")
    assert row.status == "cancelled"
    assert len(sms_provider.sms_sent()) == 1  # only the posting alert
    # The sweep never queues one either once the delay has run.
    clock.set(deemed + timedelta(days=1))
    assert send_reminders(vault).queued == 0


def test_late_sweep_sends_only_the_latest_due_reminder_before_the_deemed_date(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    clock.set(POSTED + timedelta(days=15))  # the reminder task was down for a week
    assert send_reminders(vault).queued == 1
    assert reminders(vault, doc) == [("d13", "sms")]


def test_reminder_without_contacts_records_no_channel_once(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None, phone=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    clock.set(POSTED + timedelta(days=7))
    send_reminders(vault)
    send_reminders(vault)
    outcomes = [(e["kind"], e["outcome"]) for e in alert_entries(vault, doc)]
    assert outcomes == [("document_available", "no_channel"), ("reminder", "no_channel")]


def open_as_applicant(vault: Vault, account_id: str, document_id: str) -> None:
    # The service call the content route makes first (the session would have idled out
    # while the frozen clock jumped days ahead).
    record_first_access(vault, Principal("applicant", account_id, "applicant"), document_id)
