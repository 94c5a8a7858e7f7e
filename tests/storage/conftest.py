"""Fixtures for the blob store conformance suite: one ``store`` per adapter.

``fs`` lives in ``tmp_path``. ``s3`` talks to the real Swift/s3api server started by
``scripts/s3-server.sh`` (settings from VAULT_S3_* variables; see
``tests/support/s3.py`` for the skip-or-fail rule) and gets a bucket of its own,
emptied and removed afterwards.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.error import MinioException

from tests.support.s3 import require_s3_settings
from vault.storage import BlobStore, FilesystemBlobStore, S3BlobStore
from vault.storage.s3 import MIN_PART_SIZE, S3Settings

#: Part size of the S3 store under test: S3's minimum, so multipart is cheap to reach.
TEST_PART_SIZE = MIN_PART_SIZE


def _raw_client(settings: S3Settings) -> Minio:
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
    )


def _remove_bucket(settings: S3Settings) -> None:
    client = _raw_client(settings)
    try:
        for obj in client.list_objects(settings.bucket, recursive=True):
            client.remove_object(settings.bucket, obj.object_name or "")
        client.remove_bucket(settings.bucket)
    except MinioException as exc:  # a leftover test bucket must not fail the test
        warnings.warn(f"could not remove test bucket {settings.bucket}: {exc}", stacklevel=1)


@pytest.fixture
def s3_settings() -> Iterator[S3Settings]:
    """Settings for a fresh, empty bucket on the test server (removed afterwards)."""
    settings = require_s3_settings(
        bucket=f"vault-test-{secrets.token_hex(6)}", part_size=TEST_PART_SIZE
    )
    S3BlobStore(settings).ensure_bucket()
    yield settings
    _remove_bucket(settings)


@pytest.fixture
def s3_store(s3_settings: S3Settings) -> S3BlobStore:
    return S3BlobStore(s3_settings)


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemBlobStore:
    store = FilesystemBlobStore(tmp_path / "blobs")
    store.ensure_root()
    return store


@pytest.fixture(params=["fs", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> BlobStore:
    """Each conformance test runs once per adapter."""
    fixture = {"fs": "fs_store", "s3": "s3_store"}[request.param]
    result: BlobStore = request.getfixturevalue(fixture)
    return result
