"""Service-level invariants of the foundation, on both profiles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from tests.conftest import auth, post_pdf
from vault.clock import FrozenClock
from vault.db.models import Account, Document, LedgerEntry
from vault.documents import sweep_blobs
from vault.keyrotation import rotate_kek
from vault.service import Vault
from vault.storage import new_blob_name


def _doc_blob(vault: Vault, document_id: str) -> str:
    with vault.read() as s:
        doc = s.get(Document, document_id)
        assert doc is not None
        return doc.blob_name


def test_sweeper_removes_old_orphans_only(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
    clock: FrozenClock,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    orphan = new_blob_name()
    vault.blobs.put(orphan, [b"ciphertext left by a crash between blob write and commit"])
    fresh_orphan = new_blob_name()
    vault.blobs.put(fresh_orphan, [b"a post still in flight"])

    # Blob times come from the store's own clock (real time): sweep "now" vs a far future.
    real_now = vault.blobs.stat(orphan).modified_at
    report = sweep_blobs(vault, now=real_now + timedelta(seconds=10))
    assert report.deleted == 0  # everything is younger than the grace period
    later = real_now + timedelta(seconds=vault.settings.blob_sweep_grace_seconds + 60)
    report = sweep_blobs(vault, now=later)
    assert report.deleted == 2
    assert not vault.blobs.exists(orphan)
    assert vault.blobs.exists(_doc_blob(vault, doc["document_id"]))
    # The committed document still opens.
    r = client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


def test_crash_between_blob_and_commit_leaves_no_row_and_no_entry(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blobs_before = {b.name for b in vault.blobs.list("")}

    def explode(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("simulated crash before the commit")

    monkeypatch.setattr(vault.sequencer, "run", explode)
    r = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes)
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"
    assert "simulated" not in r.text
    monkeypatch.undo()
    with vault.read() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 0
        assert s.scalar(select(func.count()).where(LedgerEntry.type == "POSTED")) == 0
    # The blob written before the failed commit was removed on the spot.
    assert {b.name for b in vault.blobs.list("")} == blobs_before


def test_committed_row_never_points_at_missing_blob(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    for _ in range(3):
        assert (
            post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).status_code == 201
        )
    with vault.read() as s:
        names = list(s.scalars(select(Document.blob_name)))
    assert names and all(vault.blobs.exists(n) for n in names)


def test_kek_rotation_rewraps_without_reencrypting(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    blob = _doc_blob(vault, doc["document_id"])
    before = b"".join(vault.blobs.open(blob))
    with vault.read() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None
        old_version, old_wrap = acc.kek_version, acc.wrapped_key
    report = rotate_kek(vault)
    assert report.new_version == old_version + 1
    assert report.rewrapped >= 1 and report.remaining_on_old == 0
    with vault.read() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None
        assert acc.kek_version == report.new_version and acc.wrapped_key != old_wrap
        assert s.scalar(select(func.count()).where(LedgerEntry.type == "KEY_ROTATED")) == 1
    assert b"".join(vault.blobs.open(blob)) == before  # content untouched
    r = client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    # The old KEK can now be retired: nothing is wrapped under it any more.
    vault.keyring.retire(old_version, remaining_wrapped=0)
    r = client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert r.status_code == 200


def test_unreadable_blob_never_records_first_access(
    client: TestClient[Any],
    staff: dict[str, str],
    applicant: dict[str, str],
    pdf_bytes: bytes,
    vault: Vault,
) -> None:
    """An outage of the store must not record a legal notification (R.531-17) for a
    download that did not happen: the object is reached before FIRST_ACCESS commits."""
    doc = post_pdf(client, staff["agent"], applicant["account_id"], pdf_bytes).json()
    vault.blobs.delete(_doc_blob(vault, doc["document_id"]))
    r = client.get(
        f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(applicant["token"])
    )
    assert r.status_code >= 500 and "Traceback" not in r.text
    with vault.read() as s:
        assert s.scalar(select(func.count()).where(LedgerEntry.type == "FIRST_ACCESS")) == 0
        row = s.get(Document, doc["document_id"])
        assert row is not None and row.first_access_at is None
