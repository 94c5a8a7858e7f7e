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


def test_witness_cosignature_travels_and_verifies(posted: dict[str, Any], clock: Any) -> None:
    import dataclasses

    from vault.ledger.checkpoints import add_cosignature, latest_checkpoint
    from vault.ledger.note import CosignatureSigner, generate_key

    vault, client = posted["vault"], posted["client"]
    skey, vkey = generate_key("witness.example/w1", cosigner=True)
    vault.settings = dataclasses.replace(vault.settings, witness_keys=vkey)
    get_proof(client, posted["staff"]["legal"], posted["document_id"])  # makes a checkpoint
    cp = latest_checkpoint(vault)
    assert cp is not None
    body = cp.note[: cp.note.rfind("\n\n") + 1]
    line = CosignatureSigner.from_skey(skey).sign(body, timestamp=int(clock.now().timestamp()))
    add_cosignature(vault, body + "\n" + line)
    data = get_proof(client, posted["staff"]["legal"], posted["document_id"])
    rep = verify_bundle(data, witness_vkeys=[vkey])
    assert rep.ok, rep.summary("en")
    assert rep.witnesses_verified == ("witness.example/w1",)
    from tests.proof.test_proof_verify import _edit_json, _flip_b64, tool

    def bad(p: dict[str, Any]) -> None:
        name, _, b64 = p["checkpoint"]["cosignatures"][0][2:].partition(" ")
        p["checkpoint"]["cosignatures"][0] = "\u2014 " + name + " " + _flip_b64(b64, 30)

    tampered = _edit_json(data, bad)
    assert "cosignatures" in verify_bundle(tampered).failed
    res, info = tool.verify(data, None, None, [vkey])
    assert info["witnesses"] == ["witness.example/w1"]
    res, _ = tool.verify(tampered, None, None, [vkey])
    assert "cosignatures" in [r.name for r in res.all() if r.status == "fail"]
