"""Human-typable connection keys and bearer tokens.

Connection key: the secret printed on the applicant's registration letter and typed
on the first connection, together with the AGDREF number. 20 symbols drawn
uniformly (``secrets.choice``) from a 30-letter alphabet with no look-alikes --
digits 2-9 and the letters A-Z without I, L, O and U (no 0/O, 1/I/L, U/V) -- shown
in groups of four: ``XXXX-XXXX-XXXX-XXXX-XXXX``. Entropy: 20 x log2(30) = 98.1 bits.

:func:`normalize_connection_key` accepts what people type: lower case, and spaces,
dots, dashes or underscores anywhere. Confusable letters are handled by the alphabet
rather than by guessing: a key never contains 0, O, 1, I or L, so those never need
telling apart; the one repair made is ``U`` read as ``V`` (as Crockford's base32
does), safe because ``U`` is never in a key. Typed ``0 1 I L O`` are refused, not
mapped: whatever we mapped them to, we would only turn one wrong key into another.

Bearer token: ``"ovt_" + base64url(32 random bytes)`` (256 bits); the prefix makes
leaked tokens easy to find with secret scanners. Only :func:`token_digest` (SHA-256)
is stored; a 256-bit random token needs no salt or slow hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from vault.errors import InvalidInput

__all__ = [
    "CONNECTION_KEY_ALPHABET",
    "CONNECTION_KEY_LENGTH",
    "TOKEN_PREFIX",
    "connection_keys_equal",
    "new_connection_key",
    "new_token",
    "normalize_connection_key",
    "token_digest",
]

CONNECTION_KEY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CONNECTION_KEY_LENGTH = 20
_GROUP = 4
_SEPARATORS = " \t-._\u00a0\u2010\u2011\u2012\u2013\u2014"
# Repairs that are unambiguous because the typed letter is never in a key.
_REPAIRS = {"U": "V"}
TOKEN_PREFIX = "ovt_"  # noqa: S105 -- a public marker, not a secret
_TOKEN_BYTES = 32


def _group(symbols: str) -> str:
    return "-".join(symbols[i : i + _GROUP] for i in range(0, len(symbols), _GROUP))


def new_connection_key() -> str:
    """A fresh key such as ``"7KQ4-XM2D-9TGB-RW5C-HN8P"`` (98 bits)."""
    return _group(
        "".join(secrets.choice(CONNECTION_KEY_ALPHABET) for _ in range(CONNECTION_KEY_LENGTH))
    )


def normalize_connection_key(user_input: str) -> str:
    """The canonical grouped form of what the user typed, or :class:`InvalidInput`."""
    symbols = []
    for ch in user_input.upper():
        if ch in _SEPARATORS:
            continue
        ch = _REPAIRS.get(ch, ch)
        if ch not in CONNECTION_KEY_ALPHABET:
            raise InvalidInput("A connection key has 20 letters and digits")
        symbols.append(ch)
    if len(symbols) != CONNECTION_KEY_LENGTH:
        raise InvalidInput("A connection key has 20 letters and digits")
    return _group("".join(symbols))


def connection_keys_equal(expected: str, user_input: str) -> bool:
    """Constant-time comparison of a stored key with user input (normalised first)."""
    try:
        typed = normalize_connection_key(user_input)
    except InvalidInput:
        return False
    return hmac.compare_digest(normalize_connection_key(expected).encode(), typed.encode())


def new_token() -> str:
    """A bearer token: ``ovt_`` + 43 base64url characters (256 bits)."""
    raw = secrets.token_bytes(_TOKEN_BYTES)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def token_digest(token: str) -> bytes:
    """SHA-256 of the token, the only form stored (look-up key in the database)."""
    return hashlib.sha256(token.encode("utf-8")).digest()
