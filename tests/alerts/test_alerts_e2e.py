"""Done-when of the alerts issue, end to end on both profiles.

Posting a document (HTTP API) to an applicant with an e-mail address and a phone
number produces exactly one e-mail received by the real SMTP server (aiosmtpd, a
child process) and one SMS request counted by the local provider (a child process);
``ALERT_SENT`` entries are in the ledger and in the document's timeline; a
dispatcher killed with SIGKILL mid-send and restarted (the real ``ofpra-vault alerts
run --once --json``) sends no duplicate.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from litestar.testing import TestClient

from api.routes.alerts import alert_statuses
from tests.alerts.test_dispatch import ROOT, run_dispatcher_child, settings_env
from tests.alerts.test_outbox import EMAIL, PHONE, alert_entries, part, post, rows, set_contacts
from tests.alerts.test_outbox import settings as settings  # fixture override
from tests.conftest import auth
from tests.support.sms_provider import SmsProviderHandle
from tests.support.smtp_server import SmtpServerHandle
from vault.alerts.dispatcher import alert_status_for_documents
from vault.service import Vault

CLI = str(ROOT / ".venv" / "bin" / "ofpra-vault")


def alerts_run_once(vault: Vault) -> dict[str, Any]:
    out = subprocess.run(
        [CLI, "alerts", "run", "--once", "--json"],
        env=settings_env(vault.settings),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_posting_alerts_once_by_email_and_sms_even_across_a_killed_dispatcher(
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

    # A dispatcher process claims both messages (1 s lease), sends the e-mail, then
    # the SMS, and is SIGKILLed as soon as the provider has accepted the SMS.
    killed = run_dispatcher_child(vault.settings, kill_after="sms", lease_seconds=1.0)
    assert killed.returncode == -9, killed.stderr
    assert [r.status for r in rows(vault, document_id=doc)] == ["sent", "sending"]
    time.sleep(1.5)  # the dead dispatcher's lease expires

    restarted = alerts_run_once(vault)
    assert restarted["channels"] == ["email", "sms", "webhook"]
    assert (restarted["claimed"], restarted["sent"]) == (1, 1)
    assert alerts_run_once(vault)["claimed"] == 0

    # Exactly one e-mail, received by the real SMTP server ...
    [mail] = smtp_server.messages()
    assert smtp_server.envelopes()[0]["rcpt_tos"] == [EMAIL]
    assert "https://espace.ofpra.example/" in part(mail, "plain")
    # ... and one SMS counted by the provider (the restart's request was a replay).
    [sms] = sms_provider.sms_sent()
    assert sms["body"]["to"] == PHONE
    sms_requests = [r for r in sms_provider.requests() if r["path"] == "/sms"]
    assert (
        len(sms_requests) == 2
        and sms_requests[1]["headers"].get("idempotency-key")
        == (sms_requests[0]["headers"]["idempotency-key"])
    )

    # ALERT_SENT in the ledger, and in the document's timeline (what the proof file
    # and the agent's view are built from).
    assert sorted(
        (e["channel"], e["outcome"], e["attempt"]) for e in alert_entries(vault, doc)
    ) == [
        ("email", "sent", 1),
        ("sms", "sent", 2),
    ]
    r = client.get(f"/api/v1/documents/{doc}", headers=auth(staff["agent"]))
    assert r.status_code == 200, r.text
    timeline = [(t["type"], t.get("channel"), t.get("outcome")) for t in r.json()["timeline"]]
    assert timeline == [
        ("POSTED", None, None),
        ("ALERT_SENT", "email", "sent"),
        ("ALERT_SENT", "sms", "sent"),
    ]
    assert EMAIL not in r.text and PHONE not in r.text
    status = alert_status_for_documents(vault, [doc])[doc]
    assert sorted((s["channel"], s["status"]) for s in status) == [
        ("email", "sent"),
        ("sms", "sent"),
    ]
    # What the lead wires into GET /api/v1/me/documents and GET /api/v1/documents/{id}.
    [(doc_id, items)] = alert_statuses(vault, [doc]).items()
    assert doc_id == doc and sorted(i.channel for i in items) == ["email", "sms"]
