"""The proof and court endpoints: who may get what, the access log, the public verifier,
and the applicant's sealed download checked by poppler's pdfsig."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.conftest import auth, make_pdf, new_registration, post_pdf
from tests.proof.conftest import get_proof, root_pem
from tests.support.services import require_tool
from vault.db.models import AccessLog
from vault.proof import verify_bundle

ROOT = Path(__file__).resolve().parents[2]


def _log(vault: Any, document_id: str) -> list[tuple[str, str]]:
    with vault.read() as s:
        rows = s.scalars(select(AccessLog).where(AccessLog.document_id == document_id))
        return [(r.actor_role, r.action) for r in rows]


def test_applicant_download_is_sealed_and_pdfsig_says_valid(
    posted: dict[str, Any], tmp_path: Path
) -> None:
    pdfsig, certutil = require_tool("pdfsig"), require_tool("certutil")
    client, app_ = posted["client"], posted["applicant"]
    r = client.get(
        f"/api/v1/me/documents/{posted['document_id']}/content", headers=auth(app_["token"])
    )
    assert r.status_code == 200
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(r.content)
    db = f"sql:{tmp_path}"
    subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True)
    subprocess.run(
        [
            certutil,
            "-A",
            "-d",
            db,
            "-n",
            "root",
            "-t",
            "CT,C,C",
            "-i",
            str(root_pem(posted["vault"])),
        ],
        check=True,
    )
    out = subprocess.run([pdfsig, "-nssdir", db, str(pdf)], capture_output=True, text=True)
    assert "Signature is Valid." in out.stdout, out.stdout + out.stderr
    assert "Certificate is Trusted." in out.stdout
    assert "OFPRA-Seal" in out.stdout


def test_staff_proof_does_not_count_as_access_and_is_logged(posted: dict[str, Any]) -> None:
    client, staff, vault = posted["client"], posted["staff"], posted["vault"]
    doc_id = posted["document_id"]
    data = get_proof(client, staff["legal"], doc_id)
    rep = verify_bundle(data, trust_root_pem=root_pem(vault).read_bytes())
    assert rep.ok, rep.summary("en")
    assert rep.notified_on is None  # no first access was recorded by the staff export
    r = client.get(f"/api/v1/documents/{doc_id}", headers=auth(staff["legal"]))
    assert r.json()["first_access_at"] is None
    assert ("legal", "document.proof") in _log(vault, doc_id)


def test_attack_other_roles_cannot_get_staff_proof(posted: dict[str, Any]) -> None:
    client, staff = posted["client"], posted["staff"]
    for role in ("agent", "professional", "ofii", "admin"):
        r = client.get(
            f"/api/v1/documents/{posted['document_id']}/proof", headers=auth(staff[role])
        )
        assert r.status_code == 403, role
    r = client.get(f"/api/v1/documents/{posted['document_id']}/proof")
    assert r.status_code == 401


def test_applicant_gets_own_proof_with_subject(posted: dict[str, Any]) -> None:
    client, app_ = posted["client"], posted["applicant"]
    data = get_proof(client, app_["token"], posted["document_id"], me=True)
    rep = verify_bundle(data, trust_root_pem=root_pem(posted["vault"]).read_bytes())
    assert rep.ok, rep.summary("en")
    assert rep.check("subject_commitment").status == "pass"  # type: ignore[union-attr]
    assert rep.basis == "first_access"  # receiving the document is an access


def test_attack_applicant_cannot_get_another_applicants_proof(posted: dict[str, Any]) -> None:
    client, staff = posted["client"], posted["staff"]
    reg = new_registration()
    created = client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"])).json()
    r = client.post(
        "/api/v1/auth/first-connection",
        json={
            "agdref": reg["agdref"],
            "connection_key": created["connection_key"],
            "password": "another horse battery",
        },
    )
    other = r.json()["token"]
    client.cookies.clear()
    r = client.get(f"/api/v1/me/documents/{posted['document_id']}/proof", headers=auth(other))
    assert r.status_code == 404
    r = client.get("/api/v1/me/documents/not-a-uuid/proof", headers=auth(other))
    assert r.status_code == 404


def test_public_verify_endpoint(posted: dict[str, Any]) -> None:
    client, staff = posted["client"], posted["staff"]
    data = get_proof(client, staff["court"], posted["document_id"])
    client.cookies.clear()
    r = client.post(
        "/api/v1/proofs/verify", content=data, headers={"Content-Type": "application/zip"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["failed"] == []
    assert "agdref" not in r.text  # the public verifier never echoes the subject
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    r = client.post(
        "/api/v1/proofs/verify", content=bytes(bad), headers={"Content-Type": "application/zip"}
    )
    assert r.status_code == 200 and r.json()["ok"] is False
    r = client.post("/api/v1/proofs/verify", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_attack_corrupted_deflate_stream_in_uploaded_proof(posted: dict[str, Any]) -> None:
    """A byte flipped inside a compressed member (not in the ZIP structure) breaks the
    deflate stream itself: a verdict "not valid", never a 500."""
    client, staff = posted["client"], posted["staff"]
    data = bytearray(get_proof(client, staff["court"], posted["document_id"]))
    client.cookies.clear()
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        member = max(
            (i for i in zf.infolist() if i.compress_type == zipfile.ZIP_DEFLATED),
            key=lambda i: i.compress_size,
        )
    # Local file header: 30 bytes + name + extra, then the compressed data.
    name_len = int.from_bytes(data[member.header_offset + 26 : member.header_offset + 28], "little")
    extra_len = int.from_bytes(
        data[member.header_offset + 28 : member.header_offset + 30], "little"
    )
    start = member.header_offset + 30 + name_len + extra_len
    for offset in (start + 2, start + member.compress_size // 2):
        bad = bytearray(data)
        bad[offset] ^= 0xFF
        r = client.post(
            "/api/v1/proofs/verify", content=bytes(bad), headers={"Content-Type": "application/zip"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is False


def test_attack_oversized_upload_to_public_verifier(posted: dict[str, Any]) -> None:
    client, vault = posted["client"], posted["vault"]
    limit = vault.settings.max_upload_bytes + 16 * 1024 * 1024
    r = client.post(
        "/api/v1/proofs/verify",
        content=b"\0" * (limit + 1),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 413


def test_court_decisions_lookup(posted: dict[str, Any]) -> None:
    client, staff, app_, vault = (
        posted["client"],
        posted["staff"],
        posted["applicant"],
        posted["vault"],
    )
    r = post_pdf(client, staff["agent"], app_["account_id"], make_pdf("Convocation"))
    assert r.status_code == 201
    r = client.get(
        "/api/v1/court/decisions",
        params={"ofpra_number": app_["ofpra_number"]},
        headers=auth(staff["court"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["document_id"] for d in body["decisions"]] == [posted["document_id"]]
    item = body["decisions"][0]
    assert item["proof"] == f"/api/v1/documents/{posted['document_id']}/proof"
    assert item["notified_on"] is None and item["appeal_deadline"] is None
    assert ("court", "court.decision") in _log(vault, posted["document_id"])
    r = client.get(
        "/api/v1/court/decisions",
        params={"ofpra_number": app_["ofpra_number"]},
        headers=auth(staff["legal"]),
    )
    assert r.status_code == 403


def test_cli_export_then_verify(posted: dict[str, Any], tmp_path: Path) -> None:
    vault = posted["vault"]
    if vault.settings.profile != "embedded":
        return  # the CLI reads VAULT_* settings; the production run is covered by the API
    env = {
        **os.environ,
        "VAULT_DATA_DIR": str(vault.settings.data_dir),
        "VAULT_BACKGROUND_TASKS": "false",
    }
    out = tmp_path / "p.zip"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vault.cli",
            "proof",
            "export",
            posted["document_id"],
            "-o",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vault.cli",
            "proof",
            "verify",
            str(out),
            "--trust-root",
            str(root_pem(vault)),
            "--lang",
            "en",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
