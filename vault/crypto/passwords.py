"""Password hashing with Argon2id (RFC 9106) through libsodium (PyNaCl).

Hashes are libsodium's PHC strings (``$argon2id$v=19$m=...,t=...,p=1$salt$hash``),
which carry their own salt and parameters, so parameters can be raised later and old
hashes upgraded at the next successful login (:func:`needs_rehash`).

Invariants:

* :func:`verify_password` returns ``True`` or ``False`` and never raises for a wrong
  password or a malformed stored hash; the comparison inside libsodium is
  constant-time.
* :func:`dummy_verify` costs what a real verification with the same parameters costs,
  so that "unknown identifier" and "wrong password" take the same time.
* Passwords are normalised to Unicode NFKC before hashing (NIST SP 800-63B §5.1.1.2),
  so that "é" typed as one code point or as "e" + combining accent is the same
  password on every device.

Default cost: ``opslimit=3`` passes over ``memlimit=32 MiB``, measured at about 75 ms
per hash on the reference machine (tools/bench_crypto.py prints it); this is above
the OWASP minimum for Argon2id (19 MiB, t=2). Each concurrent hash holds that much
memory, which bounds how many logins a process should verify at once.
"""

from __future__ import annotations

import contextlib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

__all__ = [
    "DEFAULT_PARAMS",
    "FAST_TEST_PARAMS",
    "Argon2Params",
    "dummy_verify",
    "hash_password",
    "needs_rehash",
    "verify_password",
]


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """libsodium's knobs: ``opslimit`` = passes (t), ``memlimit`` = bytes of memory (m)."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        if self.opslimit < argon2id.OPSLIMIT_MIN or self.memlimit < argon2id.MEMLIMIT_MIN:
            raise ValueError("Argon2id parameters below libsodium's minimum")
        if self.memlimit % 1024:
            raise ValueError("memlimit must be a whole number of KiB")


DEFAULT_PARAMS = Argon2Params(opslimit=3, memlimit=32 * 1024 * 1024)
# For tests only: cheap enough to hash hundreds of times per second.
FAST_TEST_PARAMS = Argon2Params(opslimit=1, memlimit=64 * 1024)


def _encode(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def hash_password(password: str, params: Argon2Params = DEFAULT_PARAMS) -> str:
    """A PHC-format Argon2id hash of ``password`` with a fresh random salt."""
    return argon2id.str(
        _encode(password), opslimit=params.opslimit, memlimit=params.memlimit
    ).decode("ascii")


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``. Never raises on a mismatch.

    A stored value that is not an Argon2id hash also gives ``False`` (after spending
    the default verification time, so it is not a timing oracle either).
    """
    try:
        encoded = stored_hash.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        dummy_verify()
        return False
    if not encoded.startswith(argon2id.STRPREFIX):
        dummy_verify()
        return False
    try:
        return bool(argon2id.verify(encoded, _encode(password)))
    except nacl.exceptions.CryptoError:  # InvalidkeyError (mismatch) is a subclass
        return False


def needs_rehash(stored_hash: str, params: Argon2Params = DEFAULT_PARAMS) -> bool:
    """Whether ``stored_hash`` was made with other parameters (or is not Argon2id)."""
    try:
        return _params_of(stored_hash) != params
    except ValueError:
        return True


def _params_of(stored_hash: str) -> Argon2Params:
    # $argon2id$v=19$m=32768,t=3,p=1$<salt>$<hash>
    parts = stored_hash.split("$")
    if len(parts) != 6 or parts[1] != "argon2id" or parts[2] != "v=19":
        raise ValueError("not an Argon2id v1.3 hash")
    fields = dict(item.split("=", 1) for item in parts[3].split(","))
    if fields.get("p") != "1":
        raise ValueError("libsodium hashes use one lane")
    return Argon2Params(opslimit=int(fields["t"]), memlimit=int(fields["m"]) * 1024)


@lru_cache(maxsize=8)
def _dummy_hash(params: Argon2Params) -> bytes:
    return argon2id.str(
        b"dummy password for uniform timing",
        opslimit=params.opslimit,
        memlimit=params.memlimit,
    )


def dummy_verify(params: Argon2Params = DEFAULT_PARAMS) -> None:
    """Spend the time of one real verification, and return nothing.

    Call it when the identifier is unknown, with the parameters real hashes use.
    The dummy hash is computed once per parameter set (the first call costs two
    hashes; call it at start-up to warm it).
    """
    with contextlib.suppress(nacl.exceptions.InvalidkeyError):
        argon2id.verify(_dummy_hash(params), b"not the dummy password")
