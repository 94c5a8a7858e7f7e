"""The BlobStore contract (vault/storage/base.py), checked on every adapter.

Each test runs on the filesystem adapter and on S3 (the real Swift/s3api server of
scripts/s3-server.sh, a fresh bucket per test). The S3 store uses 5 MiB parts, so
sizes above that exercise multipart uploads.
"""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from vault.errors import BlobNotFound, InvalidInput
from vault.storage import BlobInfo, BlobStore, new_blob_name
from vault.storage.s3 import MIN_PART_SIZE

TEST_PART_SIZE = MIN_PART_SIZE  # what the s3 fixture configures (tests/storage/conftest.py)

MiB = 1024 * 1024
# S3 listings and Last-Modified have whole seconds; clocks of client and server agree
# here (same machine), so a small tolerance suffices.
CLOCK_SLACK = timedelta(seconds=2)


class SourceFailed(Exception):
    """Raised by a test's data source mid-upload."""


def pattern(size: int, chunk: int = MiB, seed: int = 0) -> Iterator[bytes]:
    """``size`` deterministic bytes, generated lazily in ``chunk``-sized pieces.

    The bytes depend on the seed and the offset only, not on the chunking. Their
    period (a prime number of bytes) divides no part size, so parts stored out of
    order or twice would change the digest.
    """
    period = 1_000_003
    block = random.Random(seed).randbytes(period) * (min(chunk, size) // period + 2)
    offset = 0
    while offset < size:
        n = min(chunk, size - offset)
        start = offset % period
        yield block[start : start + n]
        offset += n


def digest(chunks: Iterable[bytes]) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    for chunk in chunks:
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


def failing_after(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Pass ``chunks`` through, then raise once ``limit`` bytes have gone out."""
    sent = 0
    for chunk in chunks:
        yield chunk
        sent += len(chunk)
        if sent >= limit:
            raise SourceFailed("the source broke mid-way")


def names(store: BlobStore, prefix: str = "") -> list[str]:
    return [info.name for info in store.list(prefix)]


# --- round trips ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "size",
    [0, 1, 5 * MiB + 1],
    ids=["empty", "one-byte", "5MiB+1"],
)
def test_round_trip(store: BlobStore, size: int) -> None:
    name = new_blob_name()
    assert store.put(name, pattern(size, chunk=64 * 1024)) == size

    assert digest(store.open(name)) == digest(pattern(size))
    info = store.stat(name)
    assert (info.name, info.size) == (name, size)
    assert store.exists(name)


@pytest.mark.parametrize(
    "size",
    [2 * TEST_PART_SIZE, 2 * TEST_PART_SIZE + TEST_PART_SIZE // 2 + 3],
    ids=["two-whole-parts", "two-and-a-half-parts"],
)
def test_multipart_round_trip(store: BlobStore, size: int) -> None:
    # Odd chunk sizes so that parts never line up with chunks.
    name = new_blob_name()
    assert store.put(name, pattern(size, chunk=777_777, seed=1)) == size

    assert digest(store.open(name)) == digest(pattern(size, seed=1))
    assert store.stat(name).size == size


def test_chunks_of_any_shape_are_accepted(store: BlobStore) -> None:
    name = new_blob_name()
    chunks = [b"", b"a", bytearray(b"bc"), b"", memoryview(b"def"), b"g" * 100_000]

    assert store.put(name, chunks) == 100_006  # type: ignore[arg-type]
    assert b"".join(store.open(name)) == b"abcdef" + b"g" * 100_000


def test_open_streams_in_chunks(store: BlobStore) -> None:
    name = new_blob_name()
    store.put(name, pattern(3 * MiB))

    chunks = list(store.open(name))

    assert len(chunks) > 1
    assert max(len(c) for c in chunks) <= 1 * MiB


# --- missing objects and deletion ----------------------------------------------------
def test_missing_object_raises_blob_not_found(store: BlobStore) -> None:
    name = new_blob_name()

    with pytest.raises(BlobNotFound):
        store.open(name)  # at once, not at the first chunk
    with pytest.raises(BlobNotFound):
        store.stat(name)
    assert not store.exists(name)


def test_delete_removes_and_is_idempotent(store: BlobStore) -> None:
    name = new_blob_name()
    store.put(name, [b"x"])

    store.delete(name)
    store.delete(name)
    store.delete(new_blob_name())  # never existed

    assert not store.exists(name)
    with pytest.raises(BlobNotFound):
        store.open(name)


# --- listing ---------------------------------------------------------------------------
def test_list_with_prefix_sizes_and_modified_time(store: BlobStore) -> None:
    before = datetime.now(UTC)
    contents = {
        "d/aa/01/first": b"1",
        "d/aa/01/second": b"22",
        "d/aa/02/third": b"333",
        "d/ab/01/fourth": b"4444",
        "d/aa.x": b"55555",
        "other/object": b"666666",
    }
    for name, data in contents.items():
        store.put(name, [data])
    after = datetime.now(UTC)

    everything = list(store.list())
    assert [i.name for i in everything] == sorted(contents)  # byte order, like S3
    for info in everything:
        assert isinstance(info, BlobInfo)
        assert info.size == len(contents[info.name])
        assert info.modified_at.tzinfo is not None
        assert info.modified_at.utcoffset() == timedelta(0)
        assert before - CLOCK_SLACK <= info.modified_at <= after + CLOCK_SLACK

    assert names(store, "d/aa/") == ["d/aa/01/first", "d/aa/01/second", "d/aa/02/third"]
    assert names(store, "d/aa") == ["d/aa.x", "d/aa/01/first", "d/aa/01/second", "d/aa/02/third"]
    assert names(store, "d/aa/01/s") == ["d/aa/01/second"]
    assert names(store, "d/a") == sorted(n for n in contents if n.startswith("d/a"))
    assert names(store, "nothing") == []
    assert names(store, "d/zz/") == []


def test_stat_agrees_with_list(store: BlobStore) -> None:
    name = new_blob_name()
    store.put(name, [b"hello"])

    [listed] = store.list(name)
    stated = store.stat(name)

    assert (listed.name, listed.size) == (stated.name, stated.size) == (name, 5)
    assert abs(listed.modified_at - stated.modified_at) <= CLOCK_SLACK


# --- overwrite and atomicity ----------------------------------------------------------
def test_overwrite_replaces_the_whole_object(store: BlobStore) -> None:
    name = new_blob_name()
    store.put(name, pattern(TEST_PART_SIZE + 10, seed=1))  # multipart on S3

    assert store.put(name, [b"short"]) == 5

    assert b"".join(store.open(name)) == b"short"
    assert store.stat(name).size == 5
    assert names(store) == [name]


@pytest.mark.parametrize(
    "fail_after",
    [1, TEST_PART_SIZE // 2, 2 * TEST_PART_SIZE + 1],
    ids=["first-chunk", "inside-first-part", "after-two-parts"],
)
def test_interrupted_put_leaves_no_object(store: BlobStore, fail_after: int) -> None:
    # A crashing writer must not leave a truncated blob that a later row could
    # point at (DESIGN.md §9, "Blob and row"). On S3 the last case has started a
    # multipart upload, which must be aborted, not completed.
    name = new_blob_name()
    source = failing_after(pattern(3 * TEST_PART_SIZE, chunk=MiB), fail_after)

    with pytest.raises(SourceFailed):  # the caller's own error, not a storage error
        store.put(name, source)

    assert not store.exists(name)
    assert names(store) == []


def test_interrupted_overwrite_keeps_the_old_object(store: BlobStore) -> None:
    name = new_blob_name()
    store.put(name, [b"original"])

    with pytest.raises(SourceFailed):
        store.put(name, failing_after(pattern(3 * TEST_PART_SIZE), 2 * TEST_PART_SIZE + 1))

    assert b"".join(store.open(name)) == b"original"


# --- memory ----------------------------------------------------------------------------
@pytest.mark.slow
def test_memory_stays_flat_for_a_large_object(store: BlobStore) -> None:
    # 200 MB in and out; Python allocations must stay within a few parts. The S3
    # adapter holds about three parts at once (see S3BlobStore.put).
    size = 200 * 1000 * 1000
    bound = 4 * TEST_PART_SIZE + 8 * MiB
    name = new_blob_name()

    tracemalloc.start()
    try:
        assert store.put(name, pattern(size, chunk=MiB, seed=2)) == size
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert digest(store.open(name)) == digest(pattern(size, seed=2))
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert put_peak < bound, f"put peaked at {put_peak / MiB:.1f} MiB"
    assert get_peak < bound, f"get peaked at {get_peak / MiB:.1f} MiB"


# --- names -----------------------------------------------------------------------------
BAD_NAMES = [
    "",
    "/etc/passwd",
    "../escape",
    "d/../../escape",
    "d/./x",
    "d//x",
    "d/x/",
    ".hidden",
    "d/.tmp-1234",
    "d\\x",
    "d/x y",
    "d/é",
    "d/x\x00y",
    "d/x\n",
    "a" * 600,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_rejected(store: BlobStore, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(name, [b"x"])
    with pytest.raises(InvalidInput):
        store.open(name)
    with pytest.raises(InvalidInput):
        store.stat(name)
    with pytest.raises(InvalidInput):
        store.delete(name)
    assert names(store) == []


@pytest.mark.parametrize("prefix", ["/", "../", "d/../", "d//", " ", ".tmp"])
def test_unsafe_prefixes_are_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        list(store.list(prefix))


def test_new_blob_names_are_valid_and_distinct(store: BlobStore) -> None:
    fresh = {new_blob_name() for _ in range(1000)}
    assert len(fresh) == 1000
    name = fresh.pop()
    store.put(name, [b"x"])
    assert store.exists(name)


def test_check_passes_on_a_healthy_store(store: BlobStore) -> None:
    store.check()
    assert names(store) == []  # the health probe leaves nothing behind


def test_a_partly_read_stream_can_be_abandoned(store: BlobStore) -> None:
    name = new_blob_name()
    store.put(name, pattern(3 * MiB))
    stream = store.open(name)
    next(stream)
    stream.close()  # type: ignore[attr-defined]  # a generator on every adapter

    assert store.stat(name).size == 3 * MiB  # the store is still usable
    assert digest(store.open(name)) == digest(pattern(3 * MiB))


def test_fd_or_connection_count_is_stable(store: BlobStore) -> None:
    # Many opens, half read fully, half abandoned: nothing may leak.
    name = new_blob_name()
    store.put(name, pattern(2 * MiB))
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    for i in range(40):
        stream = store.open(name)
        if i % 2:
            digest(stream)
        else:
            next(stream)
            stream.close()  # type: ignore[attr-defined]
    after = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    assert after - before <= 12  # a pooled connection or two, not one per open
