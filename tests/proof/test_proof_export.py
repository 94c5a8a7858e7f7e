"""Exported proofs verify, for an opened document and for one that never was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import auth
from tests.proof.conftest import get_proof, root_pem
from vault.notification import appeal_deadline, deemed_notification_date, notification_date
from vault.notify import sweep_notifications
from vault.proof import verify_bundle


def test_opened_document_proof_verifies(posted: dict[str, Any], clock: Any) -> None:
    client, app_ = posted["client"], posted["applicant"]
    clock.advance(timedelta(minutes=5))
    r = client.get(
        f"/api/v1/me/documents/{posted['document_id']}/content", headers=auth(app_["token"])
    )
    assert r.status_code == 200
    data = get_proof(client, posted["staff"]["legal"], posted["document_id"])
    report = verify_bundle(data, trust_root_pem=root_pem(posted["vault"]).read_bytes())
    print(report.summary("en"))
    assert report.ok, report.summary("en")
    assert report.basis == "first_access"
    want = notification_date(posted["posted_at"], clock.now(), now=clock.now())
    assert want is not None
    assert report.notified_on == want.notified_on.isoformat()
    assert report.appeal_deadline == appeal_deadline(want.notified_on).deadline.isoformat()


def test_unopened_document_proof_verifies(posted: dict[str, Any], clock: Any) -> None:
    client = posted["client"]
    clock.advance(timedelta(days=16))
    assert sweep_notifications(posted["vault"]).notified == 1
    data = get_proof(client, posted["staff"]["court"], posted["document_id"])
    report = verify_bundle(data)
    print(report.summary("fr"))
    assert report.ok, report.summary("en")
    assert report.basis == "delay_expired"
    deemed = deemed_notification_date(posted["posted_at"])
    assert report.notified_on == deemed.isoformat()
    assert report.appeal_deadline == appeal_deadline(deemed).deadline.isoformat()
