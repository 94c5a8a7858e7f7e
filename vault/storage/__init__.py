"""Object storage for document ciphertexts: the :class:`BlobStore` port and its adapters.

* :class:`FilesystemBlobStore` -- the embedded profile, files under a data folder.
* :class:`S3BlobStore` -- the production profile, any S3 endpoint via ``minio``.

Both pass the same conformance suite (``tests/storage``). Pick one with
:func:`blob_store_from_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vault.errors import ConfigurationError
from vault.storage.base import (
    BlobInfo,
    BlobStore,
    new_blob_name,
    validate_blob_name,
    validate_prefix,
)
from vault.storage.fs import FilesystemBlobStore
from vault.storage.s3 import S3BlobStore, S3Settings

__all__ = [
    "BlobInfo",
    "BlobStore",
    "FilesystemBlobStore",
    "S3BlobStore",
    "S3Settings",
    "blob_store_from_settings",
    "new_blob_name",
    "validate_blob_name",
    "validate_prefix",
]


def blob_store_from_settings(kind: str, **params: Any) -> BlobStore:
    """Build the configured adapter.

    ``kind="fs"``: ``root`` (a path). ``kind="s3"``: the fields of :class:`S3Settings`
    (``endpoint``, ``access_key``, ``secret_key``, ``bucket``, ``region``, ``secure``,
    ``part_size``, ...). Nothing is created or contacted here: call
    ``ensure_root()`` / ``ensure_bucket()`` and ``check()`` at start-up.
    """
    if kind == "fs":
        if set(params) != {"root"}:
            raise ConfigurationError("the filesystem blob store takes exactly one setting: root")
        return FilesystemBlobStore(Path(params["root"]))
    if kind == "s3":
        try:
            settings = S3Settings(**params)
        except TypeError as exc:
            raise ConfigurationError("S3 blob store settings are incomplete or unknown") from exc
        return S3BlobStore(settings)
    raise ConfigurationError(f"unknown blob store kind: {kind!r} (expected 'fs' or 's3')")
