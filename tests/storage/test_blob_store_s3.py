"""S3 adapter specifics: failing fast and cleanly when the endpoint is down, settings."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from vault.errors import ConfigurationError, StorageUnavailable
from vault.storage import S3BlobStore, S3Settings, blob_store_from_settings

SECRET = "s3cr3t-never-in-messages"


def closed_port() -> int:
    """A local port nothing listens on: bound once by us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def dead_store() -> S3BlobStore:
    return S3BlobStore(
        S3Settings(
            endpoint=f"127.0.0.1:{closed_port()}",
            access_key="vault:tester",
            secret_key=SECRET,
            bucket="nowhere",
            secure=False,
        )
    )


OPERATIONS: dict[str, Callable[[S3BlobStore], Any]] = {
    "put": lambda s: s.put("d/aa/bb/x", [b"data"]),
    "open": lambda s: s.open("d/aa/bb/x"),
    "exists": lambda s: s.exists("d/aa/bb/x"),
    "stat": lambda s: s.stat("d/aa/bb/x"),
    "delete": lambda s: s.delete("d/aa/bb/x"),
    "list": lambda s: list(s.list("d/")),
    "check": lambda s: s.check(),
    "ensure_bucket": lambda s: s.ensure_bucket(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_dead_endpoint_fails_fast_as_storage_unavailable(
    dead_store: S3BlobStore, operation: str
) -> None:
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught:
        OPERATIONS[operation](dead_store)
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"{operation} took {elapsed:.1f} s to give up"
    assert "unreachable" in caught.value.detail
    assert SECRET not in str(caught.value)
    assert caught.value.code == "storage_unavailable"


def test_wrong_secret_is_storage_unavailable_without_the_secret(
    s3_settings: S3Settings,
) -> None:
    wrong = S3Settings(
        endpoint=s3_settings.endpoint,
        access_key=s3_settings.access_key,
        secret_key=SECRET,
        bucket=s3_settings.bucket,
        region=s3_settings.region,
        secure=s3_settings.secure,
    )
    store = S3BlobStore(wrong)

    with pytest.raises(StorageUnavailable) as caught:
        store.check()

    assert SECRET not in str(caught.value)
    assert "SignatureDoesNotMatch" in caught.value.detail or "AccessDenied" in caught.value.detail


def test_missing_bucket_fails_the_health_check(s3_settings: S3Settings) -> None:
    store = blob_store_from_settings(
        "s3",
        endpoint=s3_settings.endpoint,
        access_key=s3_settings.access_key,
        secret_key=s3_settings.secret_key,
        bucket=s3_settings.bucket + "-absent",
        region=s3_settings.region,
        secure=s3_settings.secure,
    )
    with pytest.raises(StorageUnavailable, match="bucket does not exist"):
        store.check()


def test_ensure_bucket_is_idempotent(s3_store: S3BlobStore) -> None:
    s3_store.ensure_bucket()
    s3_store.ensure_bucket()
    s3_store.check()


def test_settings_never_show_the_secret() -> None:
    settings = S3Settings(
        endpoint="s3.example:443", access_key="a", secret_key=SECRET, bucket="bkt"
    )
    assert SECRET not in repr(settings)
    assert SECRET not in repr(S3BlobStore(settings))


def test_settings_from_env() -> None:
    env = {
        "VAULT_S3_ENDPOINT": "127.0.0.1:18080",
        "VAULT_S3_ACCESS_KEY": "vault:tester",
        "VAULT_S3_SECRET_KEY": SECRET,
        "VAULT_S3_BUCKET": "docs",
        "VAULT_S3_SECURE": "false",
        "VAULT_S3_PART_SIZE": str(8 * 1024 * 1024),
    }
    settings = S3Settings.from_env(env)
    assert (settings.endpoint, settings.bucket, settings.secure) == (
        "127.0.0.1:18080",
        "docs",
        False,
    )
    assert (settings.region, settings.part_size) == ("us-east-1", 8 * 1024 * 1024)

    with pytest.raises(ConfigurationError, match="VAULT_S3_BUCKET"):
        S3Settings.from_env({k: v for k, v in env.items() if k != "VAULT_S3_BUCKET"})
    with pytest.raises(ConfigurationError):
        S3Settings.from_env({**env, "VAULT_S3_SECURE": "maybe"})


@pytest.mark.parametrize(
    "change",
    [
        {"part_size": 1024},
        {"part_size": 6 * 1024**3},
        {"endpoint": "http://h:1"},
        {"bucket": ""},
        {"bucket": "x"},
        {"bucket": "Bad_Name"},
    ],
)
def test_invalid_settings_are_configuration_errors(change: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "endpoint": "h:1",
        "access_key": "a",
        "secret_key": "s",
        "bucket": "bucket",
        **change,
    }
    with pytest.raises(ConfigurationError):
        S3Settings(**fields)


def test_factory_rejects_unknown_kinds_and_settings(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError):
        blob_store_from_settings("ftp")
    with pytest.raises(ConfigurationError):
        blob_store_from_settings("s3", endpoint="h:1")
    with pytest.raises(ConfigurationError):
        blob_store_from_settings("fs", root=tmp_path, bucket="x")
