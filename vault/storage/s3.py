"""S3 blob store through the ``minio`` client: the production profile (DESIGN.md §3).

Works with any S3 endpoint: MinIO, Ceph RGW, AWS S3, and OpenStack Swift's s3api
(``scripts/s3-server.sh`` runs one locally for tests).

Streaming and atomicity. ``put`` hands minio a file-like view of the caller's
iterator with an unknown length, so minio cuts it into ``part_size`` parts and
uploads them one at a time: memory stays at a few parts whatever the object size.
An object no larger than one part is sent as a single PUT, which S3 applies whole
or not at all. A larger one is a multipart upload, which only becomes visible on
CompleteMultipartUpload; if anything fails before that (the caller's iterator
raising included), minio aborts the upload, and an upload that could not even be
aborted stays invisible (a bucket lifecycle rule for incomplete uploads reclaims
the space on stores that support one).

Failing fast. minio's default HTTP client waits five minutes to connect and
retries five times; here the connect timeout is short and retries are few, so a
dead endpoint surfaces as :class:`~vault.errors.StorageUnavailable` in seconds.
Error messages carry the S3 error code or the transport error's class name,
never the endpoint's credentials.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from vault.errors import BlobNotFound, ConfigurationError, StorageUnavailable
from vault.storage.base import BlobInfo, validate_blob_name, validate_prefix

__all__ = ["S3BlobStore", "S3Settings"]

MiB = 1024 * 1024
#: S3's limits on a multipart part (the last part may be smaller).
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB

_READ_CHUNK = 1 * MiB
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject"})


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and how to reach the bucket."""

    endpoint: str  # host:port, no scheme
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    region: str = "us-east-1"  # must equal the server's location (s3api: `location`)
    secure: bool = True
    part_size: int = 16 * MiB
    connect_timeout: float = 2.0  # seconds, per attempt
    read_timeout: float = 60.0  # seconds without a byte, per socket read
    retries: int = 2  # extra attempts on connection errors and 5xx (idempotent requests)

    def __post_init__(self) -> None:
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ConfigurationError("S3 part size must be between 5 MiB and 5 GiB")
        if not self.endpoint or "://" in self.endpoint:
            raise ConfigurationError("S3 endpoint must be host:port without a scheme")
        try:
            check_bucket_name(self.bucket, strict=True, s3_check=True)  # portable (AWS rules)
        except ValueError:
            raise ConfigurationError("S3 bucket name is not valid") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = "VAULT_S3_") -> S3Settings:
        """Read ``<prefix>ENDPOINT``, ``ACCESS_KEY``, ``SECRET_KEY``, ``BUCKET``,
        ``REGION``, ``SECURE`` and optionally ``PART_SIZE`` (bytes) from a mapping."""
        missing = [
            key
            for key in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "BUCKET")
            if not environ.get(prefix + key)
        ]
        if missing:
            names = ", ".join(prefix + key for key in missing)
            raise ConfigurationError(f"S3 settings missing: {names}")
        secure = environ.get(prefix + "SECURE", "true").strip().lower()
        if secure not in {"true", "false", "1", "0", "yes", "no"}:
            raise ConfigurationError(f"{prefix}SECURE must be true or false")
        part_size = environ.get(prefix + "PART_SIZE")
        return cls(
            endpoint=environ[prefix + "ENDPOINT"],
            access_key=environ[prefix + "ACCESS_KEY"],
            secret_key=environ[prefix + "SECRET_KEY"],
            bucket=environ[prefix + "BUCKET"],
            region=environ.get(prefix + "REGION") or "us-east-1",
            secure=secure in {"true", "1", "yes"},
            part_size=int(part_size) if part_size else 16 * MiB,
        )


class _SourceError(Exception):
    """Carries an exception of the caller's iterator through minio, untouched."""

    def __init__(self, original: BaseException) -> None:
        super().__init__("the data source failed")
        self.original = original


class _IterableReader:
    """A ``read(n)`` view of an iterable of byte chunks, for minio's unknown-length put.

    ``read(n)`` returns exactly ``n`` bytes until the end: minio accumulates a part
    with ``+=`` on bytes, so short reads would make every part cost quadratic copies.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self._done = False
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        wanted = sys.maxsize if n < 0 else n
        out = bytearray()
        while len(out) < wanted:
            if not self._pending:
                if self._done:
                    break
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    self._done = True
                    break
                except BaseException as exc:
                    # Wrapped so that minio (which catches Exception) aborts the
                    # multipart upload, and so that we can tell it from S3's errors.
                    raise _SourceError(exc) from exc
                self._pending = memoryview(chunk).cast("B")
            take = self._pending[: wanted - len(out)]
            out += take
            self._pending = self._pending[len(take) :]
        self.size += len(out)
        return bytes(out)


def _http_client(settings: S3Settings) -> urllib3.PoolManager:
    retry = Retry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        backoff_factor=0.2,
        backoff_max=2.0,
        status_forcelist=(500, 502, 503, 504),
        # Only idempotent methods are retried (urllib3's default set): every PUT
        # here carries its whole body as bytes, so it can be sent again.
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        raise_on_status=False,  # after the last retry minio sees the 5xx and reports it
    )
    return urllib3.PoolManager(
        timeout=Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
        retries=retry,
        # As many kept-alive connections as request threads that may download at once
        # (anyio's default limit is 40): with urllib3's default of 10, every download
        # past the tenth opened a fresh TCP connection and threw it away afterwards.
        maxsize=40,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )


@contextmanager
def _translate_errors(action: str) -> Iterator[None]:
    """Map minio and transport failures to StorageUnavailable with a plain message."""
    try:
        yield
    except S3Error as exc:
        raise StorageUnavailable(f"S3 {action} failed: {exc.code}") from exc
    except ServerError as exc:
        raise StorageUnavailable(f"S3 {action} failed: HTTP {exc.status_code}") from exc
    except MinioException as exc:
        raise StorageUnavailable(f"S3 {action} failed: invalid response") from exc
    except urllib3.exceptions.MaxRetryError as exc:
        reason = type(exc.reason).__name__ if exc.reason else "no response"
        raise StorageUnavailable(f"S3 {action} failed: endpoint unreachable ({reason})") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageUnavailable(f"S3 {action} failed: {type(exc).__name__}") from exc


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        raise StorageUnavailable("S3 response lacks a modification time")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class S3BlobStore:
    """Objects in one S3 bucket."""

    def __init__(
        self, settings: S3Settings, *, http_client: urllib3.PoolManager | None = None
    ) -> None:
        self._settings = settings
        self._bucket = settings.bucket
        self._part_size = settings.part_size
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http_client or _http_client(settings),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> S3BlobStore:
        return cls(S3Settings.from_env(environ))

    def __repr__(self) -> str:
        return f"S3BlobStore(endpoint={self._settings.endpoint!r}, bucket={self._bucket!r})"

    @property
    def bucket(self) -> str:
        return self._bucket

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (idempotent, safe under races)."""
        with _translate_errors("bucket creation"):
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket, location=self._settings.region)
            except S3Error as exc:
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    # --- the port ------------------------------------------------------------
    def put(self, name: str, chunks: Iterable[bytes]) -> int:
        validate_blob_name(name)
        reader = _IterableReader(chunks)
        try:
            with _translate_errors("upload"):
                self._client.put_object(
                    self._bucket,
                    name,
                    reader,  # type: ignore[arg-type]  # minio only calls read(n)
                    length=-1,
                    part_size=self._part_size,
                    # One part in flight: memory stays at about three parts.
                    num_parallel_uploads=1,
                )
        except _SourceError as exc:
            raise exc.original from None
        return reader.size

    def open(self, name: str) -> Iterator[bytes]:
        validate_blob_name(name)
        with _translate_errors("download"):
            try:
                response = self._client.get_object(self._bucket, name)
            except S3Error as exc:
                if exc.code in _NOT_FOUND_CODES:
                    raise BlobNotFound() from None
                raise
        return self._stream(response)

    def exists(self, name: str) -> bool:
        try:
            self.stat(name)
        except BlobNotFound:
            return False
        return True

    def delete(self, name: str) -> None:
        validate_blob_name(name)
        with _translate_errors("delete"):
            try:
                self._client.remove_object(self._bucket, name)
            except S3Error as exc:
                if exc.code not in _NOT_FOUND_CODES:
                    raise

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        validate_prefix(prefix)
        return self._list(prefix)

    def stat(self, name: str) -> BlobInfo:
        validate_blob_name(name)
        with _translate_errors("stat"):
            try:
                obj = self._client.stat_object(self._bucket, name)
            except S3Error as exc:
                if exc.code in _NOT_FOUND_CODES:
                    raise BlobNotFound() from None
                raise
        return BlobInfo(name=name, size=obj.size or 0, modified_at=_utc(obj.last_modified))

    def check(self) -> None:
        with _translate_errors("health check"):
            found = self._client.bucket_exists(self._bucket)
        if not found:
            raise StorageUnavailable("S3 health check failed: the bucket does not exist")

    # --- internals -------------------------------------------------------------
    def _stream(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            with _translate_errors("download"):
                # urllib3 enforces Content-Length: a cut connection raises rather
                # than returning a short object.
                yield from response.stream(_READ_CHUNK)
        finally:
            response.close()
            response.release_conn()

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        with _translate_errors("listing"):
            for obj in self._client.list_objects(self._bucket, prefix=prefix, recursive=True):
                if obj.is_dir or obj.object_name is None:
                    continue
                yield BlobInfo(
                    name=obj.object_name,
                    size=obj.size or 0,
                    modified_at=_utc(obj.last_modified),
                )
