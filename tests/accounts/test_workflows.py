"""Professional module, opt-out in FAQ order, closure, access log and staff admin
(issue 5 §6-10), end to end through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import select

from tests.accounts.helpers import activate, entries, ledger_types, register
from tests.conftest import auth, make_pdf, post_pdf
from vault.clock import FrozenClock
from vault.db.models import Account
from vault.service import Vault


def test_professional_sees_only_own_structure(
    client: TestClient[Any], staff: dict[str, str], vault: Vault
) -> None:
    mine = register(client, staff["agent"])  # SPADA-35, the professional's structure
    other = register(client, staff["agent"], structure_id="DNA-75")
    pro = auth(staff["professional"])
    r = client.get("/api/v1/pro/applicants", headers=pro)
    assert r.status_code == 200
    items = r.json()["items"]
    ids = {i["account_id"] for i in items}
    assert mine["account_id"] in ids and other["account_id"] not in ids
    item = next(i for i in items if i["account_id"] == mine["account_id"])
    assert set(item) == {"account_id", "status", "channel", "language", "has_phone", "has_email"}
    assert mine["agdref"] not in r.text
    # The key of an accompanied applicant: ledger + access log, no personal data.
    r = client.post(f"/api/v1/pro/applicants/{mine['account_id']}/connection-key", headers=pro)
    assert r.status_code == 200 and r.json() == {"connection_key": mine["connection_key"]}
    (entry,) = entries(vault, mine["account_id"], "KEY_RETRIEVED_BY_PROFESSIONAL")
    assert entry["structure_id"] == "SPADA-35"
    assert mine["agdref"] not in str(entry) and mine["account_id"] not in str(entry)
    # Another structure's applicant, or no applicant at all: the same 404.
    for aid in (other["account_id"], "00000000-0000-0000-0000-000000000000", "x" * 40):
        for path in ("connection-key", "opt-out"):
            r = client.post(f"/api/v1/pro/applicants/{aid}/{path}", headers=pro)
            assert r.status_code == 404, (aid, path, r.text)
            assert (
                r.json()["code"] == "applicant_not_found" or r.json()["code"] == "account_not_found"
            )
    assert "KEY_RETRIEVED_BY_PROFESSIONAL" not in ledger_types(vault, other["account_id"])
    # The applicant sees who read the key: a professional of SPADA-35.
    token = activate(client, mine)
    log = client.get("/api/v1/me/access-log", headers=auth(token)).json()["items"]
    assert any(
        x["action"] == "pro.connection_key"
        and x["actor_role"] == "professional"
        and x["structure_id"] == "SPADA-35"
        for x in log
    )


def test_opt_out_in_faq_order_only(
    client: TestClient[Any], staff: dict[str, str], vault: Vault, applicant: dict[str, str]
) -> None:
    aid = applicant["account_id"]
    ofii, pro = auth(staff["ofii"]), auth(staff["professional"])
    form = make_pdf("Formulaire de sortie signé")
    first = post_pdf(client, staff["agent"], aid, make_pdf("Convocation"))
    assert first.status_code == 201
    form_url = f"/api/v1/accounts/{aid}/opt-out/form"
    pdf_h = {"Content-Type": "application/pdf"}

    # Out of order: form before request, letter before request, letter before form.
    r = client.post(form_url, content=form, headers={**pdf_h, **ofii})
    assert r.status_code == 409 and r.json()["code"] == "opt_out_not_requested"
    r = post_pdf(client, staff["agent"], aid, make_pdf("Courrier"), type="COURRIER_POST")
    assert r.status_code == 409 and r.json()["code"] == "opt_out_not_requested"

    r = client.post(f"/api/v1/pro/applicants/{aid}/opt-out", headers=pro)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/pro/applicants/{aid}/opt-out", headers=pro)
    assert r.status_code == 409 and r.json()["code"] == "opt_out_already_requested"
    r = post_pdf(client, staff["agent"], aid, make_pdf("Courrier"), type="COURRIER_POST")
    assert r.status_code == 409 and r.json()["code"] == "opt_out_form_missing"

    # OFII's signed form: stored encrypted (the blob is not the PDF).
    r = client.post(form_url, content=b"not a pdf", headers={**pdf_h, **ofii})
    assert r.status_code == 422
    r = client.post(form_url, content=form, headers={**pdf_h, **ofii})
    assert r.status_code == 201, r.text
    from vault.db.accounts_models import OptOutForm

    with vault.read() as s:
        row = s.scalar(select(OptOutForm).where(OptOutForm.account_id == aid))
        assert row is not None
    stored = b"".join(vault.blobs.open(row.blob_name))
    assert b"%PDF" not in stored and form not in stored
    # The sweeper keeps the form's blob (referenced_blobs callback).
    from vault.documents import sweep_blobs

    report = sweep_blobs(vault, now=vault.clock.now() + timedelta(days=2))
    assert report.deleted == 0
    assert b"".join(vault.blobs.open(row.blob_name)) == stored

    # The COURRIER_POST posting makes it effective, in the same transaction.
    r = post_pdf(client, staff["agent"], aid, make_pdf("Courrier"), type="COURRIER_POST")
    assert r.status_code == 201, r.text
    types = ledger_types(vault, aid)
    assert types.count("OPT_OUT_EFFECTIVE") == 1
    posted, effective = (
        entries(vault, aid, "POSTED")[-1],
        entries(vault, aid, "OPT_OUT_EFFECTIVE")[0],
    )
    assert effective["at"] == posted["at"] and effective["document_id"] == posted["document_id"]
    assert types.index("OPT_OUT_REQUESTED") < types.index("OPT_OUT_EFFECTIVE")
    with vault.read() as s:
        acc = s.get(Account, aid)
        assert acc is not None and acc.status == "opted_out"

    # From now on: post refused, the account shows postal, the applicant still reads.
    r = post_pdf(client, staff["agent"], aid, make_pdf("Décision"), type="DECISION")
    assert r.status_code == 409 and r.json()["code"] == "account_opted_out"
    items = client.get("/api/v1/pro/applicants", headers=pro).json()["items"]
    assert next(i for i in items if i["account_id"] == aid)["channel"] == "postal"
    h = auth(applicant["token"])
    docs = client.get("/api/v1/me/documents", headers=h).json()["items"]
    assert len(docs) == 2
    r = client.get(f"/api/v1/me/documents/{first.json()['document_id']}/content", headers=h)
    assert r.status_code == 200
    r = client.post(form_url, content=form, headers={**pdf_h, **ofii})
    assert r.status_code == 409 and r.json()["code"] == "account_opted_out"


def test_agent_closes_account_and_nothing_is_deleted(
    client: TestClient[Any], staff: dict[str, str], vault: Vault, applicant: dict[str, str]
) -> None:
    aid = applicant["account_id"]
    doc = post_pdf(client, staff["agent"], aid, make_pdf("Convocation")).json()["document_id"]
    r = client.post(f"/api/v1/accounts/{aid}/close", headers=auth(staff["agent"]))
    assert r.status_code == 200, r.text
    assert (
        client.post(f"/api/v1/accounts/{aid}/close", headers=auth(staff["agent"])).json()["code"]
        == "account_closed"
    )
    assert ledger_types(vault, aid)[-1] == "ACCOUNT_CLOSED"
    # Access is closed: session revoked, login and key-based reset refused.
    assert client.get("/api/v1/me/documents", headers=auth(applicant["token"])).status_code == 401
    r = client.post(
        "/api/v1/auth/login",
        json={"identifier": applicant["agdref"], "password": applicant["password"]},
    )
    assert r.status_code == 401
    # Documents and proofs are kept.
    r = client.get(f"/api/v1/documents/{doc}", headers=auth(staff["court"]))
    assert r.status_code == 200 and r.json()["timeline"][0]["type"] == "POSTED"
    r = post_pdf(client, staff["agent"], aid, make_pdf("x"))
    assert r.status_code == 409 and r.json()["code"] == "account_closed"


def test_sweeper_closes_after_decision_notified(
    client: TestClient[Any],
    staff: dict[str, str],
    vault: Vault,
    applicant: dict[str, str],
    clock: FrozenClock,
) -> None:
    from vault.closure import sweep_closures

    aid = applicant["account_id"]
    doc = post_pdf(client, staff["agent"], aid, make_pdf("Décision"), type="DECISION").json()
    r = client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert r.status_code == 200  # first consultation = notification
    days = vault.settings.closure_after_notification_days
    clock.advance(timedelta(days=days) - timedelta(minutes=1))
    assert sweep_closures(vault) == 0
    clock.advance(timedelta(minutes=2))
    assert sweep_closures(vault) == 1
    assert sweep_closures(vault) == 0  # idempotent
    (closed,) = entries(vault, aid, "ACCOUNT_CLOSED")
    assert closed["reason"] == "decision_notified"
    assert any(t.name == "closure-sweeper" for t in vault.background)


def test_access_log_shows_who_read_what(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str]
) -> None:
    aid = applicant["account_id"]
    doc = post_pdf(client, staff["agent"], aid, make_pdf("Convocation")).json()["document_id"]
    client.get(f"/api/v1/documents/{doc}", headers=auth(staff["court"]))
    h = auth(applicant["token"])
    client.get(f"/api/v1/me/documents/{doc}/content", headers=h)
    client.get("/api/v1/pro/applicants", headers=auth(staff["professional"]))
    items = client.get("/api/v1/me/access-log", headers=h).json()["items"]
    seen = {(x["actor_role"], x["action"]) for x in items}
    assert ("court", "document.metadata") in seen
    assert ("applicant", "document.download") in seen
    assert ("professional", "pro.list") in seen
    assert all(
        set(x) == {"at", "actor_role", "structure_id", "action", "document_id"} for x in items
    )


def test_admin_manages_staff(
    client: TestClient[Any], staff: dict[str, str], clock: FrozenClock
) -> None:
    adm = auth(staff["admin"])
    r = client.post(
        "/api/v1/admin/staff",
        json={"role": "professional", "name": "Travailleuse sociale", "structure_id": "DNA-13"},
        headers=adm,
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert client.get("/api/v1/pro/applicants", headers=auth(new["token"])).status_code == 200
    r = client.post("/api/v1/admin/staff", json={"role": "professional", "name": "x"}, headers=adm)
    assert r.status_code == 400  # a professional needs a structure
    listing = client.get("/api/v1/admin/staff", headers=adm).json()["items"]
    assert any(x["staff_id"] == new["staff_id"] for x in listing)
    assert "token" not in str(listing[0].keys())
    r = client.post(f"/api/v1/admin/staff/{new['staff_id']}/rotate-token", headers=adm)
    assert r.status_code == 200
    rotated = r.json()["token"]
    assert client.get("/api/v1/pro/applicants", headers=auth(new["token"])).status_code == 401
    assert client.get("/api/v1/pro/applicants", headers=auth(rotated)).status_code == 200
    r = client.post(f"/api/v1/admin/staff/{new['staff_id']}/disable", headers=adm)
    assert r.status_code == 204
    assert client.get("/api/v1/pro/applicants", headers=auth(rotated)).status_code == 401
    r = client.post("/api/v1/admin/staff/not-a-uuid/disable", headers=adm)
    assert r.status_code == 404
    # Tokens expire.
    clock.advance(timedelta(days=91))
    assert client.get("/api/v1/admin/staff", headers=adm).status_code == 401
