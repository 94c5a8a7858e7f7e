"""Filesystem adapter specifics: permissions, path safety, crash leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import BlobNotFound, InvalidInput, StorageUnavailable
from vault.storage import FilesystemBlobStore, blob_store_from_settings, validate_blob_name


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private(fs_store: FilesystemBlobStore) -> None:
    fs_store.put("d/aa/bb/object", [b"secret ciphertext"])

    assert mode(fs_store.root / "d/aa/bb/object") == 0o600
    for directory in ("d", "d/aa", "d/aa/bb"):
        assert mode(fs_store.root / directory) == 0o700


def test_failed_put_leaves_no_temporary_file(fs_store: FilesystemBlobStore) -> None:
    def source() -> object:
        yield b"partial"
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        fs_store.put("d/aa/bb/object", source())  # type: ignore[arg-type]

    assert os.listdir(fs_store.root / "d/aa/bb") == []


def test_crash_leftovers_are_not_listed(fs_store: FilesystemBlobStore) -> None:
    # What a crash between write and rename leaves: a hidden temporary file.
    fs_store.put("d/aa/bb/real", [b"x"])
    (fs_store.root / "d/aa/bb/.tmp-0123456789abcdef").write_bytes(b"half")

    assert [i.name for i in fs_store.list()] == ["d/aa/bb/real"]


def test_symlink_in_place_of_an_object_is_not_followed(
    fs_store: FilesystemBlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not a blob")
    (fs_store.root / "d").mkdir()
    (fs_store.root / "d/link").symlink_to(outside)

    with pytest.raises(BlobNotFound):
        fs_store.open("d/link")
    assert not fs_store.exists("d/link")
    assert [i.name for i in fs_store.list()] == []


def test_a_directory_is_not_an_object(fs_store: FilesystemBlobStore) -> None:
    fs_store.put("d/aa/bb/object", [b"x"])

    with pytest.raises(BlobNotFound):
        fs_store.open("d/aa")
    assert not fs_store.exists("d/aa")
    fs_store.delete("d/aa")  # a no-op, not an error
    assert fs_store.exists("d/aa/bb/object")


def test_traversal_names_touch_nothing_outside_the_root(
    fs_store: FilesystemBlobStore, tmp_path: Path
) -> None:
    for name in ("../escaped", "d/../../escaped", "/tmp/escaped"):
        with pytest.raises(InvalidInput):
            fs_store.put(name, [b"x"])
    assert not (tmp_path / "escaped").exists()


def test_missing_root_fails_the_health_check(tmp_path: Path) -> None:
    store = blob_store_from_settings("fs", root=tmp_path / "absent")
    with pytest.raises(StorageUnavailable):
        store.check()
    assert list(store.list()) == []


def test_unwritable_root_is_storage_unavailable(tmp_path: Path) -> None:
    # A regular file where the fan-out directory should be: writes fail with an
    # OS error, which is the store's failure, not the caller's.
    store = FilesystemBlobStore(tmp_path / "blobs")
    store.ensure_root()
    (store.root / "d").write_bytes(b"in the way")

    with pytest.raises(StorageUnavailable):
        store.put("d/aa/bb/object", [b"x"])


@given(st.text(max_size=80))
def test_every_accepted_name_stays_under_the_root(name: str) -> None:
    root = Path("/srv/vault/blobs")
    try:
        validate_blob_name(name)
    except InvalidInput:
        return
    resolved = Path(os.path.normpath(root / name))
    assert resolved.is_relative_to(root) and resolved != root
    assert not any(part.startswith(".") for part in Path(name).parts)
