"""The transactional outbox: rows written with the event, sealed, idempotent.

Helpers at the top (``alert_settings``, ``set_contacts``, ``post``, ``alert_entries``,
``raw_outbox_bytes``) are shared by the other alert test modules.
"""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, text

from tests.alerts.conftest import REPORT_SECRET, WEBHOOK_SECRET
from tests.conftest import auth, post_pdf
from tests.support.sms_provider import SmsProviderHandle
from tests.support.smtp_server import SmtpServerHandle
from vault.alerts.dispatcher import dispatch_due
from vault.alerts.outbox import enqueue_applicant_message, mask_recipient
from vault.config import Settings
from vault.db.models import Account, LedgerEntry
from vault.db.outbox_models import OutboxMessage
from vault.errors import InvalidInput
from vault.ledger.entries import parse_entry
from vault.ledger.sequencer import LedgerAppender
from vault.service import Vault

EMAIL = "demandeur.test@exemple.fr"
PHONE = "+33612345678"
PORTAL = "https://espace.ofpra.example"


def alert_settings(
    settings: Settings,
    smtp: SmtpServerHandle | None,
    sms: SmsProviderHandle | None,
    **over: Any,
) -> Settings:
    """The test settings pointed at the real SMTP server and the local SMS provider."""
    values: dict[str, Any] = {
        "public_url": PORTAL,
        "cookie_secure": "false",
        "alerts_backoff_seconds": 30.0,
        "sms_report_secret": REPORT_SECRET.decode(),
        "ack_webhook_secret": WEBHOOK_SECRET.decode(),
    }
    if smtp is not None:
        values.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="none")
    if sms is not None:
        values.update(sms_url=sms.sms_url, sms_username="vault", sms_password="sms-password")
    values.update(over)
    return dataclasses.replace(settings, **values)


@pytest.fixture
def settings(
    settings: Settings, smtp_server: SmtpServerHandle, sms_provider: SmsProviderHandle
) -> Settings:
    return alert_settings(settings, smtp_server, sms_provider)


def set_contacts(
    vault: Vault, account_id: str, *, email: str | None = EMAIL, phone: str | None = PHONE
) -> None:
    # Until PUT /api/v1/me/contacts lands (accounts issue), contacts are set directly.
    with vault.write() as s:
        acc = s.get(Account, account_id)
        assert acc is not None
        acc.email, acc.phone = email, phone


def post(client: TestClient[Any], staff: dict[str, str], account_id: str, pdf: bytes) -> str:
    r = post_pdf(client, staff["agent"], account_id, pdf)
    assert r.status_code == 201, r.text
    return str(r.json()["document_id"])


def alert_entries(vault: Vault, document_id: str | None = None) -> list[dict[str, Any]]:
    with vault.read() as s:
        q = select(LedgerEntry).where(LedgerEntry.type == "ALERT_SENT").order_by(LedgerEntry.seq)
        if document_id is not None:
            q = q.where(LedgerEntry.document_id == document_id)
        return [parse_entry(bytes(r.entry)) for r in s.scalars(q)]


def all_ledger_bytes(vault: Vault) -> bytes:
    with vault.read() as s:
        return b"\n".join(bytes(r.entry) for r in s.scalars(select(LedgerEntry)))


def raw_outbox_bytes(vault: Vault) -> bytes:
    """Every column of every outbox row as stored, to search for data in clear."""
    with vault.read() as s:
        rows = s.execute(text("SELECT * FROM alert_outbox")).all()
    out = []
    for row in rows:
        for value in row:
            if isinstance(value, bytes | memoryview):
                out.append(bytes(value))
            elif value is not None:
                out.append(str(value).encode())
    return b"\n".join(out)


def part(mail: EmailMessage, subtype: str) -> str:
    """The text/plain or text/html body of a received e-mail."""
    body = mail.get_body((subtype,))
    assert body is not None
    return str(body.get_content())


def rows(vault: Vault, **where: Any) -> list[OutboxMessage]:
    with vault.read() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        for k, v in where.items():
            q = q.where(getattr(OutboxMessage, k) == v)
        return list(s.scalars(q))


# --- tests ---------------------------------------------------------------------------------
def test_posting_queues_one_sealed_row_per_channel(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
) -> None:
    set_contacts(vault, applicant["account_id"])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    queued = rows(vault, document_id=doc)
    assert sorted(r.channel for r in queued) == ["email", "sms"]
    assert {r.status for r in queued} == {"pending"}
    assert {r.kind for r in queued} == {"document_available"}
    assert {r.language for r in queued} == {"en"}
    # At rest: no address, no phone number, no document type (arrêté of 8 July 2020).
    raw = raw_outbox_bytes(vault)
    assert EMAIL.encode() not in raw
    assert PHONE.encode() not in raw
    assert b"CONVOCATION" not in raw
    assert {r.recipient_hint for r in queued} == {"d***@e***.fr", "+33*******78"}
    # Posting alone records nothing in the ledger: attempts are recorded when made.
    assert alert_entries(vault, doc) == []


def test_enqueue_is_idempotent_per_dedupe_key_and_channel(
    vault: Vault, applicant: dict[str, str]
) -> None:
    set_contacts(vault, applicant["account_id"])

    def unit(s: Any, ledger: LedgerAppender) -> list[int]:
        acc = s.get(Account, applicant["account_id"])
        return enqueue_applicant_message(
            s, vault, acc, "contact_confirmation", ledger=ledger,
            context={"contact_kind": "phone"}, dedupe_key="contact:x:1",
        )  # fmt: skip

    first = vault.sequencer.run(unit)
    again = vault.sequencer.run(unit)
    assert len(first) == 2 and again == []
    assert len(rows(vault, dedupe_key="contact:x:1")) == 2


def test_email_only_kind_skips_sms(vault: Vault, applicant: dict[str, str]) -> None:
    set_contacts(vault, applicant["account_id"])

    def unit(s: Any, ledger: LedgerAppender) -> list[int]:
        acc = s.get(Account, applicant["account_id"])
        return enqueue_applicant_message(
            s, vault, acc, "contact_confirmation", context={"contact_kind": "email"},
            dedupe_key="contact:y:1",
        )  # fmt: skip

    vault.sequencer.run(unit)
    assert [r.channel for r in rows(vault, dedupe_key="contact:y:1")] == ["email"]


def test_outbox_rows_roll_back_with_their_event(vault: Vault, applicant: dict[str, str]) -> None:
    set_contacts(vault, applicant["account_id"])

    class Boom(Exception):
        pass

    def unit(s: Any, ledger: LedgerAppender) -> None:
        acc = s.get(Account, applicant["account_id"])
        enqueue_applicant_message(s, vault, acc, "reminder", ledger=ledger, dedupe_key="rollback:1")
        raise Boom()

    with pytest.raises(Boom):
        vault.sequencer.run(unit)
    assert rows(vault, dedupe_key="rollback:1") == []


def test_account_without_contacts_records_no_channel_and_sends_nothing(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    smtp_server: SmtpServerHandle,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None, phone=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    [entry] = alert_entries(vault, doc)
    assert entry["outcome"] == "no_channel"
    assert entry["channel"] == "none"
    assert entry["document_id"] == doc
    assert [r.status for r in rows(vault, document_id=doc)] == ["no_channel"]
    report = dispatch_due(vault)
    assert report.claimed == 0
    assert smtp_server.messages() == [] and sms_provider.sms_sent() == []
    # The agent's view of the document shows it (its timeline is the ledger's).
    r = client.get(f"/api/v1/documents/{doc}", headers=auth(staff["agent"]))
    assert [(t["type"], t.get("outcome")) for t in r.json()["timeline"]] == [
        ("POSTED", None),
        ("ALERT_SENT", "no_channel"),
    ]


def test_alert_context_cannot_carry_the_document_type_leak(
    vault: Vault, applicant: dict[str, str]
) -> None:
    set_contacts(vault, applicant["account_id"])

    def unit(s: Any, ledger: LedgerAppender) -> None:
        acc = s.get(Account, applicant["account_id"])
        enqueue_applicant_message(
            s, vault, acc, "document_available", context={"document_type": "REJET"},
            dedupe_key="leak:1",
        )  # fmt: skip

    with pytest.raises(InvalidInput):
        vault.sequencer.run(unit)
    assert rows(vault, dedupe_key="leak:1") == []


def test_key_recovery_connection_key_is_never_stored_or_logged_in_clear(
    vault: Vault,
    applicant: dict[str, str],
    sms_provider: SmsProviderHandle,
    smtp_server: SmtpServerHandle,
) -> None:
    set_contacts(vault, applicant["account_id"])
    key = "K3Y-RECOVERY-SECRET-42"

    def unit(s: Any, ledger: LedgerAppender) -> list[int]:
        acc = s.get(Account, applicant["account_id"])
        return enqueue_applicant_message(
            s, vault, acc, "key_recovery", ledger=ledger,
            context={"connection_key": key}, dedupe_key="recovery:1",
        )  # fmt: skip

    assert len(vault.sequencer.run(unit)) == 2
    assert key.encode() not in raw_outbox_bytes(vault)

    report = dispatch_due(vault)
    assert report.sent == 2
    [sms] = sms_provider.sms_sent()
    assert key in sms["body"]["text"]
    [mail] = smtp_server.messages()
    assert key in part(mail, "plain")
    # Ledger: a keyed digest (a plain hash of a message whose only unknown is the key
    # could be brute-forced), and never the key, the address or the phone number.
    entries = alert_entries(vault)
    assert {e["outcome"] for e in entries} == {"sent"}
    assert {e["digest_alg"] for e in entries} == {
        f"hmac-sha256/kek-v{vault.keyring.current_kek_version}"
    }
    ledger = all_ledger_bytes(vault)
    for secret in (key, EMAIL, PHONE, applicant["agdref"]):
        assert secret.encode() not in ledger
    assert key.encode() not in raw_outbox_bytes(vault)


def test_mask_recipient() -> None:
    assert mask_recipient("email", "jeanne@exemple.fr") == "j***@e***.fr"
    assert mask_recipient("sms", "+33612345678") == "+33*******78"
    assert (
        mask_recipient("webhook", "https://pref.example/hook?token=x") == "https://pref.example/…"
    )


def test_no_alert_data_in_repr_of_rows(tmp_path: Path) -> None:
    # OutboundMessage and RenderedMessage hide bodies; the row model holds sealed
    # bytes only, so even a debug print of a row shows no address.
    row = OutboxMessage(recipient_hint="d***@e***.fr", recipient_sealed=b"\x00sealed")
    assert EMAIL not in repr(row)


def test_kek_rotation_reseals_unsent_rows_so_the_old_kek_can_be_retired(
    vault: Vault, applicant: dict[str, str], sms_provider: SmsProviderHandle
) -> None:
    from vault.alerts.outbox import count_sealed_under, reseal_outbox

    set_contacts(vault, applicant["account_id"], email=None)

    def unit(s: Any, ledger: LedgerAppender) -> list[int]:
        acc = s.get(Account, applicant["account_id"])
        return enqueue_applicant_message(s, vault, acc, "reminder", dedupe_key="rotate:1")

    vault.sequencer.run(unit)
    old = vault.keyring.current_kek_version
    vault.keyring.rotate()
    assert count_sealed_under(vault, old) == 2  # recipient and context
    assert reseal_outbox(vault) == 1
    assert count_sealed_under(vault, old) == 0
    assert dispatch_due(vault).sent == 1
    assert len(sms_provider.sms_sent()) == 1
