"""Acknowledgements of receipt (CESEDA R.531-17) to the DG and the prefecture."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.alerts.test_outbox import (
    alert_entries,
    alert_settings,
    all_ledger_bytes,
    part,
    post,
    raw_outbox_bytes,
    rows,
    set_contacts,
)
from tests.support.sms_provider import SmsProviderHandle
from tests.support.smtp_server import SmtpServerHandle
from vault.alerts.dispatcher import dispatch_due
from vault.clock import FrozenClock
from vault.config import Settings
from vault.db.models import Account
from vault.documents import record_first_access
from vault.notify import sweep_notifications
from vault.principal import Principal
from vault.service import Vault

DG = "dg-accuses@ofpra.example"
PREFECTURE = "Ille-et-Vilaine"


@pytest.fixture
def settings(
    settings: Settings, smtp_server: SmtpServerHandle, sms_provider: SmsProviderHandle
) -> Settings:
    return alert_settings(
        settings,
        smtp_server,
        sms_provider,
        ack_dg_destination=f"mailto:{DG}",
        ack_prefecture_destinations=json.dumps({PREFECTURE: sms_provider.webhook_url}),
    )


def set_prefecture(vault: Vault, account_id: str, prefecture: str | None) -> None:
    with vault.write() as s:
        acc = s.get(Account, account_id)
        assert acc is not None
        acc.prefecture = prefecture


def test_first_access_acknowledged_to_dg_by_email_and_prefecture_by_signed_webhook(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    smtp_server: SmtpServerHandle,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None, phone=None)
    set_prefecture(vault, applicant["account_id"], PREFECTURE)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    clock.advance(timedelta(days=2))
    open_as_applicant(vault, applicant["account_id"], doc)

    queued = rows(vault, document_id=doc, kind="acknowledgement_of_receipt")
    assert sorted((r.destination, r.channel) for r in queued) == [
        ("dg", "email"),
        ("prefecture", "webhook"),
    ]
    assert applicant["ofpra_number"].encode() not in raw_outbox_bytes(vault)
    assert dispatch_due(vault).sent == 2

    [mail] = smtp_server.messages()
    assert smtp_server.envelopes()[0]["rcpt_tos"] == [DG]
    text = part(mail, "plain")
    for fact in (doc, "CONVOCATION", applicant["ofpra_number"], "3 mars 2026", "R.531-17"):
        assert fact in text
    assert "première consultation" in text
    files = {p.get_filename(): p.get_content() for p in mail.iter_attachments()}
    assert set(files) == {"ack.json", "ack.pdf"}
    facts = json.loads(files["ack.json"])
    assert facts["ofpra_number"] == applicant["ofpra_number"]
    assert facts["notification_date"] == "2026-03-03"
    assert facts["notification_basis"] == "first_consultation"
    assert facts["document_reference"] == doc and facts["document_type"] == "CONVOCATION"
    pdf = files["ack.pdf"]
    assert pdf.startswith(b"%PDF-")
    # Sealed when the process has a sealer (vault.sealing); unsealed otherwise.
    assert (b"/ByteRange" in pdf) == (vault.extras.get("sealer") is not None)

    [hook] = [r for r in sms_provider.requests() if r["path"] == "/webhook"]
    assert hook["signature_valid"] and hook["counted"]
    body = hook["body"]
    assert body["recipient"] == f"Préfecture ({PREFECTURE})"
    assert {a["filename"] for a in body["attachments"]} == {"ack.json", "ack.pdf"}
    pdf2 = next(a for a in body["attachments"] if a["filename"] == "ack.pdf")
    assert base64.b64decode(pdf2["content_base64"]).startswith(b"%PDF-")

    acks = [e for e in alert_entries(vault, doc) if e["kind"] == "acknowledgement_of_receipt"]
    assert sorted((e["destination"], e["channel"], e["outcome"]) for e in acks) == [
        ("dg", "email", "sent"),
        ("prefecture", "webhook", "sent"),
    ]
    # Keyed digest: the OFPRA number is guessable, a plain hash would reveal it.
    assert {e["digest_alg"].split("/")[0] for e in acks} == {"hmac-sha256"}
    assert applicant["ofpra_number"].encode() not in all_ledger_bytes(vault)


def test_deemed_notification_acknowledged_with_its_basis(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    smtp_server: SmtpServerHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None, phone=None)
    set_prefecture(vault, applicant["account_id"], PREFECTURE)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    clock.set(datetime(2026, 3, 20, 8, 0, tzinfo=UTC))
    assert sweep_notifications(vault).notified == 1
    dispatch_due(vault)
    [mail] = smtp_server.messages()
    facts = json.loads(
        next(p for p in mail.iter_attachments() if p.get_filename() == "ack.json").get_content()
    )
    assert facts["notification_basis"] == "deemed_after_15_days"
    assert facts["notification_date"] == "2026-03-16"
    assert facts["first_consulted_at"] is None
    assert doc in part(mail, "plain")


def test_missing_prefecture_destination_records_no_channel(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
) -> None:
    vault.settings = dataclasses.replace(vault.settings, ack_prefecture_destinations="{}")
    set_contacts(vault, applicant["account_id"], email=None, phone=None)
    set_prefecture(vault, applicant["account_id"], "Finistère")
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    open_as_applicant(vault, applicant["account_id"], doc)
    acks = [e for e in alert_entries(vault, doc) if e["kind"] == "acknowledgement_of_receipt"]
    assert [(e.get("destination"), e["outcome"]) for e in acks] == [("prefecture", "no_channel")]
    assert [r.destination for r in rows(vault, document_id=doc, channel="email")] == ["dg"]


def open_as_applicant(vault: Vault, account_id: str, document_id: str) -> None:
    # The service call the content route makes first (the session would have idled out
    # while the frozen clock jumped days ahead).
    record_first_access(vault, Principal("applicant", account_id, "applicant"), document_id)
