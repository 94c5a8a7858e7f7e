"""Chunked, streaming authenticated encryption of documents (format ``OVB1``).

A document is encrypted under its own fresh, random 256-bit *data key* with
AES-256-GCM, in fixed-size chunks so that memory stays flat whatever the size of
the file. The format, the associated data and the reasons for the choices are in
``docs/crypto.md``; the summary:

``header  = b"OVB1" || version (u8 = 1) || chunk_size (u32, big-endian)``
``chunk_i = AES-256-GCM(data_key, nonce_i, plaintext_i, aad_i) = ciphertext_i || tag_i``
``nonce_i = i as a 96-bit big-endian integer``
``aad_i   = header || key_version (u32) || len(account) (u16) || account
            || len(document) (u16) || document || i (u64) || final (u8)``

Invariants (each one has an attack-named test in ``tests/crypto/test_envelope.py``):

* A data key encrypts exactly one stream. Nonces are the chunk index, so they never
  repeat under a key *as long as the key is never reused*: :func:`encrypt_stream`
  must be called once per data key (``keys.new_data_key()`` per document).
* Every chunk is full (``chunk_size`` bytes of plaintext) except the last, which
  carries the *final* flag in its associated data. An empty plaintext is exactly one
  final, empty chunk. Dropping the last chunk leaves a non-final chunk at the end,
  which fails; appending anything after the final chunk fails; reordering changes
  the index a chunk is checked against, which fails.
* The associated data binds the account, the document and the key version, so a
  ciphertext moved to another account, document or key version does not decrypt.
* The decryptor never releases plaintext of a chunk before that chunk's tag has
  verified, and every failure is the same opaque :class:`~vault.errors.DecryptionError`.

Nothing here reads the clock, the disk or the network; the caller brings the bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto._ids import canonical_uuid
from vault.errors import DecryptionError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "TAG_SIZE",
    "EncryptionContext",
    "ciphertext_size",
    "decrypt_stream",
    "encrypt_stream",
]

MAGIC = b"OVB1"
FORMAT_VERSION = 1
TAG_SIZE = 16
DATA_KEY_SIZE = 32
_HEADER = struct.Struct(">4sBI")
HEADER_SIZE = _HEADER.size  # 9 bytes
_TRAILER = struct.Struct(">QB")  # chunk index, final flag

# 1 MiB: measured with tools/bench_crypto.py, AES-GCM throughput is flat from 256 KiB
# to 1 MiB and drops at 4 MiB (the buffers leave the L2/L3 cache); 1 MiB keeps the
# per-chunk overhead (16-byte tag, one Python call) below 0.01 % and one chunk of
# plaintext is all a reader ever holds.
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 16
# The header is read before anything is authenticated: cap what it may make us buffer.
MAX_CHUNK_SIZE = 16 << 20

_OPAQUE = "Decryption failed"


@dataclass(frozen=True, slots=True)
class EncryptionContext:
    """What a document ciphertext is bound to. All three must match to decrypt.

    ``account_id`` and ``document_id`` are UUIDs; they are canonicalised (lower-case,
    hyphenated) so that the binding does not depend on how a caller spelled them.
    ``key_version`` is the version of the key that wraps the data key.
    """

    account_id: str
    document_id: str
    key_version: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_id", canonical_uuid(self.account_id, "account_id"))
        object.__setattr__(self, "document_id", canonical_uuid(self.document_id, "document_id"))
        if not isinstance(self.key_version, int) or not 0 <= self.key_version < 2**32:
            raise ValueError("key_version must be an integer in [0, 2**32)")

    def _aad_prefix(self, chunk_size: int) -> bytes:
        account = self.account_id.encode("ascii")
        document = self.document_id.encode("ascii")
        return b"".join(
            (
                _HEADER.pack(MAGIC, FORMAT_VERSION, chunk_size),
                struct.pack(">I", self.key_version),
                struct.pack(">H", len(account)),
                account,
                struct.pack(">H", len(document)),
                document,
            )
        )


def _check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")


def _nonce(index: int) -> bytes:
    # Deterministic nonces are safe because the data key is fresh per document and
    # encrypts one stream only; the index never repeats within a stream.
    return index.to_bytes(12, "big")


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Exact size of the ``OVB1`` ciphertext of ``plaintext_size`` bytes."""
    _check_chunk_size(chunk_size)
    if plaintext_size < 0:
        raise ValueError("plaintext_size must be >= 0")
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def encrypt_stream(
    data_key: bytes,
    ctx: EncryptionContext,
    source: Iterable[bytes] | BinaryIO,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[bytes]:
    """Encrypt ``source`` and yield the ``OVB1`` ciphertext piece by piece.

    ``source`` is a binary file (read ``chunk_size`` bytes at a time) or any iterable
    of byte strings of any sizes. The generator holds at most two chunks of plaintext.
    The first piece yielded is the header, then one piece per chunk.

    ``data_key`` must be fresh (``keys.new_data_key()``) and never used for another
    stream: the nonces are the chunk indexes.
    """
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError("data_key must be 32 bytes")
    _check_chunk_size(chunk_size)
    return _encrypt(AESGCM(data_key), ctx._aad_prefix(chunk_size), source, chunk_size)


def _encrypt(
    aead: AESGCM, prefix: bytes, source: Iterable[bytes] | BinaryIO, chunk_size: int
) -> Iterator[bytes]:
    yield prefix[:HEADER_SIZE]
    for index, (chunk, final) in enumerate(_chunks(source, chunk_size)):
        yield aead.encrypt(_nonce(index), chunk, prefix + _TRAILER.pack(index, final))


def decrypt_stream(
    data_key: bytes,
    ctx: EncryptionContext,
    source: Iterable[bytes] | BinaryIO,
) -> Iterator[bytes]:
    """Decrypt an ``OVB1`` ciphertext and yield the plaintext chunk by chunk.

    Each chunk is yielded only after its own tag has verified, so no unauthenticated
    byte ever leaves this generator. Any failure -- wrong key, wrong context, a
    flipped bit, a truncated, reordered or extended stream, a malformed header --
    raises the same :class:`~vault.errors.DecryptionError` and nothing else.

    Streaming has a consequence the caller must handle: the chunks before a bad one
    have already been yielded when the error is raised, and a truncation is only
    detected at the very end (the last chunk present is not marked final). A
    consumer that forwards chunks to a client as they come (the HTTP download) must
    therefore *abort the connection* on ``DecryptionError``, never finish the
    response normally, so that the client sees an incomplete transfer and not a
    silently shortened document. Callers that need all-or-nothing must buffer.
    """
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError("data_key must be 32 bytes")
    return _decrypt(AESGCM(data_key), ctx, source)


def _decrypt(
    aead: AESGCM, ctx: EncryptionContext, source: Iterable[bytes] | BinaryIO
) -> Iterator[bytes]:
    reader = _Reader(source)
    header = reader.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        raise DecryptionError(_OPAQUE)
    magic, version, chunk_size = _HEADER.unpack(header)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise DecryptionError(_OPAQUE)
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionError(_OPAQUE)
    prefix = ctx._aad_prefix(chunk_size)
    for index, (chunk, final) in enumerate(reader.chunks(chunk_size + TAG_SIZE)):
        if len(chunk) < TAG_SIZE:
            raise DecryptionError(_OPAQUE)
        try:
            plaintext = aead.decrypt(_nonce(index), chunk, prefix + _TRAILER.pack(index, final))
        except InvalidTag:
            raise DecryptionError(_OPAQUE) from None
        # An empty final chunk is only ever written for an empty document; anywhere
        # else it is an extension an attacker could not have forged, but refuse it
        # explicitly rather than rely on that.
        if final and index > 0 and not plaintext:
            raise DecryptionError(_OPAQUE)
        yield plaintext


# --- re-chunking ---------------------------------------------------------------------


def _chunks(source: Iterable[bytes] | BinaryIO, size: int) -> Iterator[tuple[memoryview, bool]]:
    return _Reader(source).chunks(size)


class _Reader:
    """Turns a file or an iterable of pieces of any sizes into exact-size reads.

    A read is served as a zero-copy view into the current piece when the piece is an
    immutable ``bytes`` holding enough data (or all that is left of the input);
    otherwise the parts are joined into a new ``bytes`` of exactly the size read.
    Only ``bytes`` are viewed in place: a caller's ``bytearray`` could change under
    us while we hold a view on it. Either way a chunk handed out stays valid after
    the next read, which is what the one-chunk look-ahead in :meth:`chunks` needs.
    """

    def __init__(self, source: Iterable[bytes] | BinaryIO) -> None:
        # Files are read in exactly the sizes asked for (header, then whole chunks) so
        # that every read lands on a chunk boundary and is used without a copy.
        self._read_size = HEADER_SIZE
        self._pieces: Iterator[bytes]
        if hasattr(source, "read"):
            self._pieces = iter(partial(self._read_file, cast(BinaryIO, source)), b"")
        else:
            self._pieces = iter(source)
        self._piece = memoryview(b"")
        self._pos = 0
        self._immutable = True
        self._peeked: memoryview | None = None

    def _read_file(self, file: BinaryIO) -> bytes:
        return file.read(self._read_size)

    def _next_piece(self) -> memoryview | None:
        for piece in self._pieces:
            if len(piece):
                return memoryview(piece).cast("B")
        return None

    def _advance(self) -> bool:
        piece, self._peeked = self._peeked or self._next_piece(), None
        if piece is None:
            return False
        self._immutable = type(piece.obj) is bytes
        self._piece, self._pos = piece, 0
        return True

    def read(self, n: int) -> memoryview:
        """Up to ``n`` bytes; fewer only at the end of the input."""
        if self._pos == len(self._piece) and not self._advance():
            return memoryview(b"")
        if self._immutable:
            available = len(self._piece) - self._pos
            if available < n and self._peeked is None:
                self._peeked = self._next_piece()
            if available >= n or self._peeked is None:
                view = self._piece[self._pos : self._pos + n]
                self._pos += len(view)
                return view
        parts: list[memoryview] = []
        wanted = n
        while wanted:
            if self._pos == len(self._piece) and not self._advance():
                break
            part = self._piece[self._pos : self._pos + wanted]
            self._pos += len(part)
            wanted -= len(part)
            parts.append(part)
        return memoryview(b"".join(parts))

    def chunks(self, size: int) -> Iterator[tuple[memoryview, bool]]:
        """Yield ``(chunk, final)``: full chunks, then one final chunk (maybe short).

        The final chunk is empty only when the input is empty. A full chunk is held
        back until the next read shows whether anything follows it.
        """
        self._read_size = size
        held = self.read(size)
        while len(held) == size:
            nxt = self.read(size)
            if not nxt:
                break
            yield held, False
            held = nxt
        yield held, True
