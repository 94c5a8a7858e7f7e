"""The foundation's HTTP contract, run on both profiles (SQLite+fs, PostgreSQL+Swift S3)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.conftest import auth, make_pdf, new_registration, post_pdf
from vault.db.models import Account, Document, LedgerEntry
from vault.ledger.entries import ZERO_CHAIN, chain_next, leaf_hash, parse_entry
from vault.service import Vault


def _problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code
    assert body["status"] == status
    assert "Traceback" not in r.text


def _ledger(vault: Vault) -> list[LedgerEntry]:
    with vault.read() as s:
        return list(s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)))


def test_post_list_open_document_end_to_end(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    r = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes)
    assert r.status_code == 201, r.text
    doc = r.json()

    r = client.get("/api/v1/me/documents", headers=auth(applicant["token"]))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["document_id"] for i in items] == [doc["document_id"]]
    assert items[0]["first_access_at"] is None

    r = client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    assert hashlib.sha256(r.content).hexdigest() == doc["sha256"]

    types = [e.type for e in _ledger(vault)]
    assert types.count("FIRST_ACCESS") == 1
    assert "POSTED" in types

    # A second read is not a new first access.
    client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert [e.type for e in _ledger(vault)].count("FIRST_ACCESS") == 1
    r = client.get("/api/v1/me/documents", headers=auth(applicant["token"]))
    assert r.json()["items"][0]["first_access_at"] is not None


def test_stored_blob_is_encrypted(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], vault: Vault
) -> None:
    pdf = make_pdf("Décision confidentielle")
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf).json()
    with vault.read() as s:
        row = s.get(Document, doc["document_id"])
        assert row is not None
    stored = b"".join(vault.blobs.open(row.blob_name))
    assert b"%PDF" not in stored
    assert b"confidentielle" not in stored
    assert len(stored) > len(pdf)


def test_first_access_committed_before_first_byte(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    with client.stream(
        "GET",
        f"/api/v1/me/documents/{doc['document_id']}/content",
        headers=auth(applicant["token"]),
    ) as r:
        assert r.status_code == 200
        # Headers arrived; no body byte read yet: the entry must already be committed,
        # seen from an independent connection.
        with vault.read() as s:
            n = s.scalar(
                select(func.count()).where(
                    LedgerEntry.document_id == doc["document_id"],
                    LedgerEntry.type == "FIRST_ACCESS",
                )
            )
        assert n == 1
        r.read()


def test_hundred_concurrent_first_opens_record_one_first_access(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    url = f"/api/v1/me/documents/{doc['document_id']}/content"
    statuses: list[int] = []
    barrier = threading.Barrier(100)

    def open_once() -> None:
        barrier.wait()
        r = client.get(url, headers=auth(applicant["token"]))
        statuses.append(r.status_code)

    threads = [threading.Thread(target=open_once) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 100
    with vault.read() as s:
        n = s.scalar(
            select(func.count()).where(
                LedgerEntry.document_id == doc["document_id"], LedgerEntry.type == "FIRST_ACCESS"
            )
        )
    assert n == 1


def test_other_applicants_document_is_404(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], pdf_bytes: bytes
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    reg = new_registration()
    created = client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"])).json()
    other = client.post(
        "/api/v1/auth/first-connection",
        json={
            "agdref": reg["agdref"],
            "connection_key": created["connection_key"],
            "password": "another long secret",
        },
    ).json()["token"]
    client.cookies.clear()
    r = client.get(f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(other))
    _problem(r, 404, "document_not_found")
    r = client.get("/api/v1/me/documents/not-a-uuid/content", headers=auth(other))
    _problem(r, 404, "document_not_found")


def test_wrong_role_is_403_and_anonymous_is_401(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], pdf_bytes: bytes
) -> None:
    r = post_pdf(client, staff["legal"], applicant["account_id"], pdf_bytes)
    _problem(r, 403, "forbidden")
    r = client.post("/api/v1/accounts", json=new_registration(), headers=auth(applicant["token"]))
    _problem(r, 403, "forbidden")
    r = client.get("/api/v1/me/documents", headers=auth(staff["agent"]))
    _problem(r, 403, "forbidden")
    r = client.get("/api/v1/me/documents")
    _problem(r, 401, "unauthenticated")
    r = client.get("/api/v1/me/documents", headers=auth("ovt_forged"))
    _problem(r, 401, "unauthenticated")


def test_staff_document_view_has_timeline_and_does_not_count_as_access(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    for role in ("agent", "legal", "court"):
        r = client.get(f"/api/v1/documents/{doc['document_id']}", headers=auth(staff[role]))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["first_access_at"] is None
        types = [t["type"] for t in body["timeline"]]
        assert types[0] == "POSTED" and "FIRST_ACCESS" not in types
    r = client.get(f"/api/v1/documents/{doc['document_id']}", headers=auth(staff["professional"]))
    _problem(r, 403, "forbidden")
    assert "FIRST_ACCESS" not in [e.type for e in _ledger(vault)]


def test_idempotency_key_makes_retry_a_noop(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    a = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes, idem="req-1")
    b = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes, idem="req-1")
    assert a.status_code == 201 and b.status_code == 200
    assert a.json()["document_id"] == b.json()["document_id"]
    c = post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("other"), idem="req-1")
    _problem(c, 409, "idempotency_key_reused")
    with vault.read() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 1


@pytest.mark.parametrize(
    ("body", "ctype", "code", "status"),
    [
        (b"hello, not a pdf", "application/pdf", "invalid_pdf", 422),
        (b"%PDF-1.7\n1 0 obj\n<<", "application/pdf", "invalid_pdf", 422),
        (None, "text/plain", "unsupported_media_type", 415),
    ],
    ids=["not_a_pdf", "malformed_pdf", "wrong_content_type"],
)
def test_bad_upload_is_4xx_and_nothing_stored(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    vault: Vault,
    body: bytes | None,
    ctype: str,
    code: str,
    status: int,
) -> None:
    content = body if body is not None else make_pdf()
    r = client.post(
        f"/api/v1/accounts/{applicant['account_id']}/documents",
        params={"type": "CONVOCATION", "title": "x"},
        content=content,
        headers={"Content-Type": ctype, **auth(staff["agent"])},
    )
    _problem(r, status, code)
    with vault.read() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 0
    assert [e.type for e in _ledger(vault)].count("POSTED") == 0


def test_truncated_pdf_rejected(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    r = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes[: len(pdf_bytes) // 2])
    _problem(r, 422, "invalid_pdf")


def test_encrypted_pdf_rejected(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    tmp_path: Any,
) -> None:
    import pikepdf

    src = tmp_path / "in.pdf"
    src.write_bytes(pdf_bytes)
    out = tmp_path / "enc.pdf"
    with pikepdf.open(src) as p:
        p.save(out, encryption=pikepdf.Encryption(owner="o", user="u", R=6))
    r = post_pdf(client, staff["agent"], applicant["account_id"], out.read_bytes())
    _problem(r, 422, "encrypted_pdf")


def test_oversized_pdf_rejected(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], vault: Vault
) -> None:
    limit = vault.settings.max_upload_bytes
    r = post_pdf(
        client, staff["agent"], applicant["account_id"], b"%PDF-1.7\n" + b"0" * (limit + 1)
    )
    _problem(r, 413, "payload_too_large")


def test_unknown_and_closed_accounts(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    r = post_pdf(client, staff["agent"], "00000000-0000-4000-8000-000000000000", pdf_bytes)
    _problem(r, 404, "account_not_found")
    with vault.write() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None
        acc.status = "closed"
    r = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes)
    _problem(r, 409, "account_closed")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"agdref": "12345"}, "invalid_input"),
        ({"agdref": "12345678901"}, "invalid_input"),
        ({"agdref": "12345abcde"}, "invalid_input"),
        ({"procedure": "unknown"}, "invalid_input"),
        ({"registered_on": "yesterday"}, "invalid_input"),
        ({"unexpected": 1}, "invalid_input"),
    ],
    ids=[
        "agdref_short",
        "agdref_long",
        "agdref_letters",
        "bad_procedure",
        "bad_date",
        "unknown_field",
    ],
)
def test_bad_account_json_is_400(
    client: TestClient[Any], staff: dict[str, str], payload: dict[str, Any], code: str, vault: Vault
) -> None:
    r = client.post(
        "/api/v1/accounts", json=new_registration(**payload), headers=auth(staff["agent"])
    )
    _problem(r, 400, code)
    with vault.read() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0


def test_missing_field_malformed_and_oversized_json(
    client: TestClient[Any], staff: dict[str, str], vault: Vault
) -> None:
    body = new_registration()
    del body["guda"]
    _problem(
        client.post("/api/v1/accounts", json=body, headers=auth(staff["agent"])),
        400,
        "invalid_input",
    )
    r = client.post(
        "/api/v1/accounts",
        content=b"{not json",
        headers={"Content-Type": "application/json", **auth(staff["agent"])},
    )
    assert r.status_code == 400 and r.json()["code"] in ("invalid_input", "malformed_json")
    big = new_registration(guda="x" * (vault.settings.max_json_bytes + 10))
    _problem(
        client.post("/api/v1/accounts", json=big, headers=auth(staff["agent"])),
        413,
        "payload_too_large",
    )


def test_duplicate_agdref_is_409(client: TestClient[Any], staff: dict[str, str]) -> None:
    reg = new_registration()
    assert (
        client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"])).status_code == 201
    )
    _problem(
        client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"])),
        409,
        "account_exists",
    )


def test_login_with_agdref_and_ofpra_number_and_uniform_failures(
    client: TestClient[Any], applicant: dict[str, str]
) -> None:
    for ident in (applicant["agdref"], applicant["ofpra_number"]):
        r = client.post(
            "/api/v1/auth/login", json={"identifier": ident, "password": applicant["password"]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["token"].startswith("ovs_")
    bad = client.post(
        "/api/v1/auth/login", json={"identifier": applicant["agdref"], "password": "wrong password"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"identifier": "999999999", "password": "wrong password"}
    )
    assert bad.status_code == unknown.status_code == 401
    assert bad.json() == unknown.json()


def test_ledger_rows_are_hash_chained_canonical_and_hold_no_personal_data(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    prev = ZERO_CHAIN
    rows = _ledger(vault)
    assert [r.seq for r in rows] == list(range(len(rows)))
    for r in rows:
        assert bytes(r.leaf_hash) == leaf_hash(bytes(r.entry))
        assert bytes(r.chain) == chain_next(prev, bytes(r.leaf_hash))
        prev = bytes(r.chain)
        e = parse_entry(bytes(r.entry))
        assert e["seq"] == r.seq
        text = bytes(r.entry).decode()
        for secret in (applicant["agdref"], applicant["ofpra_number"], applicant["account_id"]):
            assert secret not in text
    types = [r.type for r in rows]
    # ALERT_SENT (here: no_channel, the applicant gave no contact) sits after POSTED.
    assert [t for t in types if t != "ALERT_SENT"] == [
        "ACCOUNT_CREATED",
        "ACCOUNT_ACTIVATED",
        "POSTED",
        "FIRST_ACCESS",
        "NOTIFIED",
    ]


def test_openapi_is_served(client: TestClient[Any]) -> None:
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/accounts/{account_id}/documents" in spec["paths"]
