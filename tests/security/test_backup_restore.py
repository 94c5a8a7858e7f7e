"""Backup and restore (issue 8, item 6; procedure in docs/backup.md).

A populated vault is backed up the documented way, restored into a fresh data
directory / a fresh PostgreSQL database and bucket, and then the ledger verifies
and every document opens with the restored key ring.

* embedded: the SQLite file through the sqlite3 online backup API (consistent while
  the server runs), plus the data directory's blobs, key ring and PKI;
* production: ``pg_dump -Fc`` / ``pg_restore`` into a fresh database, plus a copy of
  every object of the bucket into a fresh bucket, plus the key ring file.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from tests.conftest import make_pdf, post_pdf
from tests.support.services import fresh_pg_database
from vault import documents
from vault.config import Settings
from vault.db.models import Document
from vault.ledger.checkpoints import make_checkpoint
from vault.ledger.verify import verify_ledger
from vault.principal import Principal
from vault.service import Vault, open_vault

SQLITE_FILES = ("vault.db", "vault.db-wal", "vault.db-shm", "vault.db-journal")


def _populate(client: TestClient[Any], vault: Vault, staff: dict[str, str], acc: str) -> None:
    for i in range(3):
        r = post_pdf(client, staff["agent"], acc, make_pdf(f"backup {i}"))
        assert r.status_code == 201, r.text
    make_checkpoint(vault)


def _copy_dir(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*SQLITE_FILES))


def _check_restored(restored: Vault, originals: dict[str, bytes]) -> None:
    report = verify_ledger(restored)
    assert report.ok, report.summary()
    with restored.read() as s:
        docs = s.scalars(select(Document)).all()
        pairs = [(d.id, d.account_id) for d in docs]
    assert {d for d, _ in pairs} == set(originals)
    for doc_id, acc_id in pairs:
        me = Principal("applicant", acc_id, "applicant", None)
        assert b"".join(documents.open_document(restored, me, doc_id).chunks) == originals[doc_id]


def _originals(vault: Vault) -> dict[str, bytes]:
    out = {}
    with vault.read() as s:
        pairs = [(d.id, d.account_id) for d in s.scalars(select(Document)).all()]
    # Read through the service without recording an access: decrypt the blobs directly.
    from vault.crypto.envelope import EncryptionContext, decrypt_stream
    from vault.crypto.keys import WrappedKey, unwrap_applicant_key, unwrap_data_key
    from vault.db.models import Account

    for doc_id, acc_id in pairs:
        with vault.read() as s:
            d, a = s.get(Document, doc_id), s.get(Account, acc_id)
            assert d is not None and a is not None
            key = unwrap_applicant_key(
                vault.keyring, WrappedKey(a.kek_version, a.wrapped_key or b""), a.id
            )
            data_key = unwrap_data_key(key, d.wrapped_data_key, a.id, d.id)
            ctx = EncryptionContext(a.id, d.id, d.key_version)
            blob = d.blob_name
        out[doc_id] = b"".join(decrypt_stream(data_key, ctx, vault.blobs.open(blob)))
    return out


@pytest.mark.parametrize("profile", ["embedded"])
def test_backup_and_restore_embedded_fresh_data_dir(
    client: TestClient[Any],
    vault: Vault,
    settings: Settings,
    staff: dict[str, str],
    applicant: dict[str, str],
    tmp_path: Path,
    clock: Any,
) -> None:
    _populate(client, vault, staff, applicant["account_id"])
    originals = _originals(vault)
    backup = tmp_path / "backup"
    # 1. Database: online backup API (a consistent snapshot even under writes).
    _copy_dir(settings.data_dir, backup)
    src = sqlite3.connect(settings.data_dir / "vault.db")
    dst = sqlite3.connect(backup / "vault.db")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    # 2. Restore on a fresh data directory.
    fresh = tmp_path / "restored"
    shutil.copytree(backup, fresh)
    restored = open_vault(dataclasses.replace(settings, data_dir=fresh), clock=clock, migrate=False)
    try:
        _check_restored(restored, originals)
    finally:
        restored.close()


@pytest.mark.parametrize("profile", ["production"])
def test_backup_and_restore_production_pg_dump_and_bucket_copy(
    client: TestClient[Any],
    vault: Vault,
    settings: Settings,
    staff: dict[str, str],
    applicant: dict[str, str],
    tmp_path: Path,
    clock: Any,
) -> None:
    _populate(client, vault, staff, applicant["account_id"])
    originals = _originals(vault)
    dump = tmp_path / "vault.pgdump"
    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), url], check=True)
    keyring_copy = tmp_path / "keyring-backup.json"
    shutil.copy2(settings.keyring_file, keyring_copy)  # keeps mode 0600 (checked at load)
    s3 = vault.blobs._client  # type: ignore[attr-defined]
    old_bucket = vault.blobs._bucket  # type: ignore[attr-defined]
    new_bucket = "r-" + uuid.uuid4().hex[:16]
    s3.make_bucket(new_bucket)
    try:
        for obj in s3.list_objects(old_bucket, recursive=True):
            resp = s3.get_object(old_bucket, obj.object_name)
            try:
                data = resp.read()
            finally:
                resp.close()
                resp.release_conn()
            import io

            s3.put_object(new_bucket, obj.object_name, io.BytesIO(data), len(data))
        with fresh_pg_database() as new_url:
            restore_url = new_url.replace("postgresql+psycopg://", "postgresql://")
            subprocess.run(
                ["pg_restore", "--no-owner", "--exit-on-error", "-d", restore_url, str(dump)],
                check=True,
            )
            restored_settings = dataclasses.replace(
                settings,
                database_url=new_url,
                s3_bucket=new_bucket,
                keyring_file=str(keyring_copy),
                data_dir=tmp_path / "restored-data",
            )
            shutil.copytree(settings.data_dir, restored_settings.data_dir)
            restored = open_vault(restored_settings, clock=clock, migrate=False)
            try:
                _check_restored(restored, originals)
            finally:
                restored.close()
    finally:
        for obj in s3.list_objects(new_bucket, recursive=True):
            s3.remove_object(new_bucket, obj.object_name)
        s3.remove_bucket(new_bucket)
