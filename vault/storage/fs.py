"""Filesystem blob store: the embedded profile's object storage (DESIGN.md §3).

Each object is one file ``<root>/<name>``, mode 0600, in directories mode 0700.

Atomic and durable put, the classic recipe: write a hidden temporary file in the
target's own directory (so the rename cannot cross filesystems), ``fsync`` it,
``rename`` it over the target (atomic on POSIX), then ``fsync`` the directory so
the rename itself survives a power cut. Directories created on the way are fsynced
into their parents too. A crash leaves at most a hidden ``.tmp-*`` file, which
listings ignore.

Names are checked by :func:`~vault.storage.base.validate_blob_name`, which makes
them safe relative paths; files are opened with ``O_NOFOLLOW`` so a symlink planted
in place of an object is not followed.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat as stat_module
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from vault.errors import BlobNotFound, StorageUnavailable
from vault.storage.base import BlobInfo, validate_blob_name, validate_prefix

__all__ = ["FilesystemBlobStore"]

_FILE_MODE = 0o600
_DIR_MODE = 0o700
_TEMP_PREFIX = ".tmp-"
_OPEN_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW


@contextmanager
def _io(action: str) -> Iterator[None]:
    """Turn the store's own OS errors into StorageUnavailable (paths stay in the log)."""
    try:
        yield
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "error")
        raise StorageUnavailable(f"filesystem blob store: {action} failed ({code})") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> int:
    view = memoryview(data).cast("B")
    total = len(view)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    return total


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime_ns / 1_000_000_000, tz=UTC)


class FilesystemBlobStore:
    """Objects as files under ``root``."""

    def __init__(self, root: Path, *, chunk_size: int = 1024 * 1024) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._root = Path(root).absolute()
        self._chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self._root)!r})"

    @property
    def root(self) -> Path:
        return self._root

    def ensure_root(self) -> None:
        """Create the root directory (mode 0700) if it does not exist."""
        with _io("creating the root directory"):
            self._make_dirs(self._root)

    # --- the port ------------------------------------------------------------
    def put(self, name: str, chunks: Iterable[bytes]) -> int:
        path = self._path(name)
        parent = path.parent
        temp = parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        with _io("creating directories"):
            self._make_dirs(parent)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, _FILE_MODE)
        size = 0
        try:
            try:
                # Exceptions from the caller's iterator propagate as they are;
                # only our own writes are storage failures.
                for chunk in chunks:
                    with _io("writing"):
                        size += _write_all(fd, chunk)
                with _io("flushing"):
                    os.fsync(fd)
            finally:
                os.close(fd)
            with _io("committing"):
                os.replace(temp, path)
                _fsync_dir(parent)
        except BaseException:
            # Nothing partial may remain: remove the temporary file whatever failed.
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            except OSError:  # the original error matters more; a stray temp file is inert
                pass
            raise
        return size

    def open(self, name: str) -> Iterator[bytes]:
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound() from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink where an object should be
                raise BlobNotFound() from None
            raise StorageUnavailable("filesystem blob store: opening failed") from exc
        try:
            with _io("opening"):
                is_file = stat_module.S_ISREG(os.fstat(fd).st_mode)
        except BaseException:
            os.close(fd)
            raise
        if not is_file:
            os.close(fd)
            raise BlobNotFound()
        return self._read(fd)

    def exists(self, name: str) -> bool:
        return self._lstat(name) is not None

    def delete(self, name: str) -> None:
        path = self._path(name)
        with _io("deleting"):
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return
            _fsync_dir(path.parent)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        validate_prefix(prefix)
        directory, _, partial = prefix.rpartition("/")
        start = self._root / directory if directory else self._root
        base = f"{directory}/" if directory else ""
        return self._walk(start, base, partial)

    def stat(self, name: str) -> BlobInfo:
        st = self._lstat(name)
        if st is None:
            raise BlobNotFound()
        return BlobInfo(name=name, size=st.st_size, modified_at=_mtime(st))

    def check(self) -> None:
        if not self._root.is_dir():
            raise StorageUnavailable("filesystem blob store: root directory is missing")
        probe = self._root / f"{_TEMP_PREFIX}probe-{secrets.token_hex(8)}"
        with _io("health check"):
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, _FILE_MODE)
            try:
                os.write(fd, b"ok")
            finally:
                os.close(fd)
                os.unlink(probe)

    # --- internals -------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self._root / validate_blob_name(name)

    def _lstat(self, name: str) -> os.stat_result | None:
        path = self._path(name)
        with _io("reading metadata"):
            try:
                st = path.lstat()
            except (FileNotFoundError, NotADirectoryError):
                return None
        return st if stat_module.S_ISREG(st.st_mode) else None

    def _make_dirs(self, path: Path) -> None:
        """mkdir -p, fsyncing each new directory's parent so the entry is durable."""
        missing: list[Path] = []
        current = path
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for directory in reversed(missing):
            try:
                os.mkdir(directory, _DIR_MODE)
            except FileExistsError:  # a concurrent put made it first
                continue
            _fsync_dir(directory.parent)

    def _read(self, fd: int) -> Iterator[bytes]:
        try:
            while True:
                with _io("reading"):
                    chunk = os.read(fd, self._chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)

    def _walk(self, directory: Path, base: str, partial: str) -> Iterator[BlobInfo]:
        """Objects under ``directory`` in S3 order (byte order of the full name).

        Sorting each directory's entries with a trailing "/" on subdirectories gives
        the same order as sorting the full names, lazily.
        """
        with _io("listing"):
            try:
                with os.scandir(directory) as it:
                    entries = [e for e in it if e.name.startswith(partial)]
            except (FileNotFoundError, NotADirectoryError):
                return
        keyed: list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            if entry.name.startswith("."):  # temporary files and probes
                continue
            with _io("listing"):
                is_dir = entry.is_dir(follow_symlinks=False)
            keyed.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
        keyed.sort(key=lambda item: item[0])
        for _, entry, is_dir in keyed:
            if is_dir:
                yield from self._walk(Path(entry.path), f"{base}{entry.name}/", "")
                continue
            with _io("listing"):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while we listed
                    continue
            if stat_module.S_ISREG(st.st_mode):
                yield BlobInfo(name=base + entry.name, size=st.st_size, modified_at=_mtime(st))
