"""The dispatcher against the real SMTP server and the local SMS provider.

Faults: provider down (retried with backoff, nothing lost), permanent refusal and
exhausted attempts (dead letter, admin retry), a dispatcher killed with SIGKILL after
the provider accepted the message but before the outbox row was updated (the restart
sends with the same transport key: one SMS counted, one Message-ID), and concurrent
dispatchers (disjoint claims).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.alerts.conftest import REPORT_SECRET
from tests.alerts.test_outbox import (
    EMAIL,
    PHONE,
    alert_entries,
    all_ledger_bytes,
    part,
    post,
    rows,
    set_contacts,
)
from tests.alerts.test_outbox import settings as settings  # fixture override
from tests.conftest import auth
from tests.support.sms_provider import (
    SmsProviderHandle,
    bad_request,
    hang,
    rate_limited,
    server_error,
)
from tests.support.smtp_server import SmtpServerHandle
from vault.alerts.channels import SmtpChannel, message_id_for, sign_body
from vault.alerts.dispatcher import (
    EXTRAS_KEY,
    alert_status_for_documents,
    claim_due,
    dispatch_due,
    transport_key,
)
from vault.alerts.messages import message_digest, render
from vault.alerts.outbox import enqueue_applicant_message
from vault.clock import FrozenClock
from vault.config import Settings
from vault.db.models import Account
from vault.ledger.sequencer import LedgerAppender
from vault.service import Vault

ROOT = Path(__file__).resolve().parents[2]


def by_channel(entries: list[dict[str, Any]], channel: str) -> list[tuple[int, str]]:
    return [(e["attempt"], e["outcome"]) for e in entries if e["channel"] == channel]


# --- the nominal path ----------------------------------------------------------------------
def test_dispatch_sends_one_email_and_one_sms_and_records_alert_sent(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    smtp_server: SmtpServerHandle,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    report = dispatch_due(vault)
    assert (report.claimed, report.sent) == (2, 2)

    [mail] = smtp_server.messages()
    assert smtp_server.envelopes()[0]["rcpt_tos"] == [EMAIL]
    assert mail["Message-ID"] == message_id_for(transport_key(f"doc:{doc}:available", "email"))
    assert mail["Content-Language"] == "en"  # the applicant's language
    plain = part(mail, "plain")
    html = part(mail, "html")
    assert "https://espace.ofpra.example/" in plain and "https://espace.ofpra.example/" in html
    for leak in ("CONVOCATION", "Convocation", "entretien"):  # type and title: never
        assert leak not in plain and leak not in html and leak not in mail["Subject"]
    [sms] = sms_provider.sms_sent()
    assert sms["body"]["to"] == PHONE
    assert sms["headers"]["idempotency-key"] == transport_key(f"doc:{doc}:available", "sms")

    entries = alert_entries(vault, doc)
    assert sorted((e["channel"], e["outcome"], e["attempt"]) for e in entries) == [
        ("email", "sent", 1),
        ("sms", "sent", 1),
    ]
    expected = message_digest(
        render("document_available", "en", portal_url="https://espace.ofpra.example/")
    )
    assert {e["message_digest"] for e in entries} == {expected}
    assert all(e["subject_commitment"] and e["document_id"] == doc for e in entries)
    ledger = all_ledger_bytes(vault)
    assert EMAIL.encode() not in ledger and PHONE.encode() not in ledger

    status = alert_status_for_documents(vault, [doc])[doc]
    assert sorted((s["channel"], s["status"], s["attempts"]) for s in status) == [
        ("email", "sent", 1),
        ("sms", "sent", 1),
    ]
    # A second pass finds nothing to do: nothing is ever sent twice in normal operation.
    assert dispatch_due(vault).claimed == 0
    assert len(smtp_server.messages()) == 1 and len(sms_provider.sms_sent()) == 1


# --- provider down ------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_provider_down_is_retried_with_backoff_and_nothing_is_lost(
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
    # SMTP server unreachable; SMS provider: 500, then 429 Retry-After 90, then a hang.
    vault.extras.setdefault(EXTRAS_KEY, {})["email"] = SmtpChannel(
        "127.0.0.1", _closed_port(), "none", None, None, "noreply@ofpra.invalid", timeout=2
    )
    sms_provider.set_failures([server_error(), rate_limited("90"), hang(3.0)])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    assert dispatch_due(vault).retrying == 2
    assert dispatch_due(vault).claimed == 0  # not due before the backoff
    [email_row, sms_row] = rows(vault, document_id=doc)
    assert email_row.next_attempt_at - clock.now() == timedelta(seconds=30)

    clock.advance(timedelta(seconds=31))
    assert dispatch_due(vault).retrying == 2
    [email_row, sms_row] = rows(vault, document_id=doc)
    assert email_row.next_attempt_at - clock.now() == timedelta(seconds=60)  # doubled
    assert sms_row.next_attempt_at - clock.now() == timedelta(seconds=90)  # Retry-After
    assert sms_row.last_error == "SMS provider rate limited (429)"

    del vault.extras[EXTRAS_KEY]["email"]  # the SMTP server is back
    clock.advance(timedelta(seconds=91))
    report = dispatch_due(vault)
    assert (report.sent, report.retrying) == (1, 1)  # e-mail sent; SMS hung (timeout)

    clock.advance(timedelta(minutes=10))
    assert dispatch_due(vault).sent == 1
    entries = alert_entries(vault, doc)
    assert by_channel(entries, "email") == [
        (1, "retryable_failure"),
        (2, "retryable_failure"),
        (3, "sent"),
    ]
    assert by_channel(entries, "sms") == [
        (1, "retryable_failure"),
        (2, "retryable_failure"),
        (3, "retryable_failure"),
        (4, "sent"),
    ]
    assert len(smtp_server.messages()) == 1
    assert len(sms_provider.sms_sent()) == 1
    assert {r.status for r in rows(vault, document_id=doc)} == {"sent"}


# --- dead letter ----------------------------------------------------------------------------
def test_exhausted_attempts_go_dead_and_an_admin_can_retry(
    vault: Vault,
    clock: FrozenClock,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    sms_provider: SmsProviderHandle,
) -> None:
    vault.settings = dataclasses.replace(vault.settings, alerts_max_attempts=2)
    set_contacts(vault, applicant["account_id"], email=None)
    sms_provider.set_failures([server_error(503), server_error(500)])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    dispatch_due(vault)
    clock.advance(timedelta(hours=1))
    assert dispatch_due(vault).dead == 1
    assert by_channel(alert_entries(vault, doc), "sms") == [(1, "retryable_failure"), (2, "dead")]

    r = client.get("/api/v1/admin/outbox?status=dead", headers=auth(staff["admin"]))
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["recipient"] == "+33*******78" and PHONE not in r.text
    assert (item["status"], item["attempts"], item["document_id"]) == ("dead", 2, doc)
    assert client.get("/api/v1/admin/outbox", headers=auth(staff["agent"])).status_code == 403

    r = client.post(f"/api/v1/admin/outbox/{item['id']}/retry", headers=auth(staff["admin"]))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    assert dispatch_due(vault).sent == 1
    assert len(sms_provider.sms_sent()) == 1
    r = client.post(f"/api/v1/admin/outbox/{item['id']}/retry", headers=auth(staff["admin"]))
    assert r.status_code == 409 and r.json()["code"] == "outbox_not_retryable"
    r = client.post("/api/v1/admin/outbox/999999/retry", headers=auth(staff["admin"]))
    assert r.status_code == 404


def test_permanent_refusal_is_dead_lettered_at_once(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None)
    sms_provider.set_failures([bad_request()])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    assert dispatch_due(vault).dead == 1
    assert by_channel(alert_entries(vault, doc), "sms") == [(1, "permanent_failure")]
    [row] = rows(vault, document_id=doc)
    assert row.status == "dead" and row.last_error == "SMS provider refused the message (400)"


# --- killed mid-send -----------------------------------------------------------------------
CHILD = r"""
import json, os, signal, sys
from datetime import timedelta
from vault.clock import SystemClock
from vault.config import load_settings
from vault.service import open_vault
from vault.alerts import dispatcher

kill_after, offset, lease = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

class Later(SystemClock):
    def now(self):
        return super().now() + timedelta(seconds=offset)

vault = open_vault(load_settings(), clock=Later())
real_channel_for = dispatcher.channel_for

class Killing:
    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
    def send(self, message):
        result = self.inner.send(message)
        if message.channel == kill_after:
            # The provider has accepted; the outbox row is still "sending".
            sys.stdout.write(json.dumps({"killed_after": result.outcome}) + "\n")
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return result

dispatcher.channel_for = lambda v, ch, url=None: Killing(real_channel_for(v, ch, url))
report = dispatcher.dispatch_due(vault, limit=1, lease_seconds=lease)
print(json.dumps({"sent": report.sent, "claimed": report.claimed}))
vault.close()
"""


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if value == f.default:
            continue
        env["VAULT_" + f.name.upper()] = (
            ("true" if value else "false") if isinstance(value, bool) else str(value)
        )
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_dispatcher_child(
    settings: Settings,
    kill_after: str,
    offset_seconds: float = 0.0,
    lease_seconds: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """A dispatcher process; with ``kill_after=CHANNEL`` it SIGKILLs itself right after
    that channel's provider call returned, before the outcome is committed."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, kill_after, str(offset_seconds), str(lease_seconds)],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_sigkill_after_sms_accepted_then_restart_sends_no_duplicate_sms(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    sms_provider: SmsProviderHandle,
    smtp_server: SmtpServerHandle,
) -> None:
    set_contacts(vault, applicant["account_id"])
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    first = run_dispatcher_child(vault.settings, kill_after="sms")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert json.loads(first.stdout.splitlines()[-1]) == {"killed_after": "sent"}
    assert len(sms_provider.sms_sent()) == 1
    [_email_row, sms_row] = rows(vault, document_id=doc)
    assert sms_row.status == "sending"  # the crash left it claimed, not sent

    # Too early: the lease has not expired, so a restarted dispatcher leaves it alone.
    early = run_dispatcher_child(vault.settings, kill_after="none")
    assert early.returncode == 0, early.stderr
    assert json.loads(early.stdout.splitlines()[-1])["claimed"] == 0

    # After the lease (120 s): reclaimed and re-sent with the same Idempotency-Key.
    restarted = run_dispatcher_child(vault.settings, kill_after="none", offset_seconds=600)
    assert restarted.returncode == 0, restarted.stderr
    requests = [r for r in sms_provider.requests() if r["path"] == "/sms"]
    assert len(requests) == 2
    assert len({r["headers"]["idempotency-key"] for r in requests}) == 1
    assert [r["counted"] for r in requests] == [True, False]  # the provider deduplicated
    assert len(sms_provider.sms_sent()) == 1
    assert len(smtp_server.messages()) == 1
    [_email_row, sms_row] = rows(vault, document_id=doc)
    assert (sms_row.status, sms_row.attempts, sms_row.provider_message_id) == ("sent", 2, "sms-1")
    # Attempt 1's outcome died with the process; attempt 2 is in the ledger.
    assert by_channel(alert_entries(vault, doc), "sms") == [(2, "sent")]


def test_sigkill_after_smtp_accepted_then_restart_reuses_the_message_id(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    smtp_server: SmtpServerHandle,
) -> None:
    """SMTP cannot deduplicate: this is the residual window docs/alerts.md describes.
    What is guaranteed: the re-sent e-mail is the *same* message (same Message-ID,
    RFC 5322 s. 3.6.4), so mail stores and clients fold it into one."""
    set_contacts(vault, applicant["account_id"], phone=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)

    first = run_dispatcher_child(vault.settings, kill_after="email")
    assert first.returncode == -signal.SIGKILL, first.stderr
    restarted = run_dispatcher_child(vault.settings, kill_after="none", offset_seconds=600)
    assert restarted.returncode == 0, restarted.stderr

    mails = smtp_server.messages()
    assert len(mails) == 2  # the SMTP server accepted both transactions
    assert len({m["Message-ID"] for m in mails}) == 1  # ... of one message
    assert part(mails[0], "plain") == part(mails[1], "plain")
    [row] = rows(vault, document_id=doc)
    assert (row.status, row.attempts) == ("sent", 2)


# --- concurrency ------------------------------------------------------------------------------
def test_concurrent_dispatchers_claim_disjoint_rows(
    vault: Vault, applicant: dict[str, str]
) -> None:
    set_contacts(vault, applicant["account_id"], email=None)

    def unit(s: Any, ledger: LedgerAppender) -> None:
        acc = s.get(Account, applicant["account_id"])
        for i in range(30):
            enqueue_applicant_message(s, vault, acc, "reminder", dedupe_key=f"conc:{i}")

    vault.sequencer.run(unit)
    barrier = threading.Barrier(3)
    claimed: list[list[int]] = [[], [], []]

    def worker(n: int) -> None:
        barrier.wait()
        while batch := claim_due(vault, limit=4, channels=("sms",)):
            claimed[n].extend(c.id for c in batch)
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for part in claimed for i in part]
    assert len(every) == 30 and len(set(every)) == 30


# --- delivery reports -----------------------------------------------------------------------
def _report(provider_id: str, status: str, client_ref: str | None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": provider_id,
            "status": status,
            "at": "2026-03-01T09:05:00Z",
            "client_ref": client_ref,
        }
    ).encode()
    ts = str(int(time.time()))
    return body, {
        "Content-Type": "application/json",
        "X-Provider-Timestamp": ts,
        "X-Provider-Signature": sign_body(REPORT_SECRET, ts, body),
    }


def test_delivery_report_updates_the_sms_status(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    dispatch_due(vault)
    key = transport_key(f"doc:{doc}:available", "sms")

    body, headers = _report("sms-1", "delivered", key)
    r = client.post("/api/v1/alerts/sms/delivery-report", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "delivered"}
    [row] = rows(vault, document_id=doc)
    assert row.status == "delivered" and row.delivered_at is not None
    assert alert_status_for_documents(vault, [doc])[doc][0]["status"] == "delivered"

    body, headers = _report("sms-1", "undeliverable", key)
    assert client.post(
        "/api/v1/alerts/sms/delivery-report", content=body, headers=headers
    ).json() == {"status": "failed"}
    # Unknown id: acknowledged (the provider stops retrying) but nothing changes.
    body, headers = _report("sms-999", "delivered", None)
    r = client.post("/api/v1/alerts/sms/delivery-report", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"status": None}


def test_forged_delivery_report_is_rejected(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    sms_provider: SmsProviderHandle,
) -> None:
    set_contacts(vault, applicant["account_id"], email=None)
    doc = post(client, staff, applicant["account_id"], pdf_bytes)
    dispatch_due(vault)
    body, headers = _report("sms-1", "failed", None)
    headers["X-Provider-Signature"] = sign_body(
        b"attacker-secret", headers["X-Provider-Timestamp"], body
    )
    r = client.post("/api/v1/alerts/sms/delivery-report", content=body, headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "delivery_report_rejected"
    # Replay of a genuine report signed long ago.
    old = str(int(time.time()) - 3600)
    headers = {
        "X-Provider-Timestamp": old,
        "X-Provider-Signature": sign_body(REPORT_SECRET, old, body),
    }
    r = client.post("/api/v1/alerts/sms/delivery-report", content=body, headers=headers)
    assert r.status_code == 401
    # A report for another message's provider id, but carrying a client_ref that is not
    # that message's key, is ignored.
    body, headers = _report("sms-1", "failed", "ovx-someone-else")
    assert client.post(
        "/api/v1/alerts/sms/delivery-report", content=body, headers=headers
    ).json() == {"status": None}
    [row] = rows(vault, document_id=doc)
    assert row.status == "sent"


@pytest.mark.parametrize("status", ["bogus"])
def test_admin_outbox_refuses_unknown_status(
    client: TestClient[Any], staff: dict[str, str], status: str
) -> None:
    r = client.get(f"/api/v1/admin/outbox?status={status}", headers=auth(staff["admin"]))
    assert r.status_code == 400
