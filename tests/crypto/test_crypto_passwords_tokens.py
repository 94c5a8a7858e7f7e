"""Argon2id password hashing, connection keys and bearer tokens."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto.passwords import (
    DEFAULT_PARAMS,
    FAST_TEST_PARAMS,
    Argon2Params,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify_password,
)
from vault.crypto.tokens import (
    CONNECTION_KEY_ALPHABET,
    CONNECTION_KEY_LENGTH,
    connection_keys_equal,
    new_connection_key,
    new_token,
    normalize_connection_key,
    token_digest,
)
from vault.errors import InvalidInput

# --- passwords ----------------------------------------------------------------------------


def test_hash_and_verify() -> None:
    h = hash_password("correct horse battery staple", FAST_TEST_PARAMS)
    assert h.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert verify_password(h, "correct horse battery staple")
    assert not verify_password(h, "Correct horse battery staple")
    assert hash_password("x", FAST_TEST_PARAMS) != hash_password("x", FAST_TEST_PARAMS)


def test_unicode_password_normalised() -> None:
    composed, decomposed = "r\u00e9fugi\u00e9", "re\u0301fugie\u0301"
    h = hash_password(composed, FAST_TEST_PARAMS)
    assert verify_password(h, decomposed)


@pytest.mark.parametrize("stored", ["", "garbage", "$argon2i$v=19$m=64,t=1,p=1$AAAA$BBBB", "é"])
def test_verify_never_raises_on_malformed_hash(stored: str) -> None:
    assert verify_password(stored, "anything") is False


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_verify_is_exact(password: str, attempt: str) -> None:
    h = hash_password(password, FAST_TEST_PARAMS)
    same = unicodedata.normalize("NFKC", password) == unicodedata.normalize("NFKC", attempt)
    assert verify_password(h, attempt) == same


def test_needs_rehash() -> None:
    h = hash_password("pw", FAST_TEST_PARAMS)
    assert not needs_rehash(h, FAST_TEST_PARAMS)
    assert needs_rehash(h, DEFAULT_PARAMS)
    assert needs_rehash(h, Argon2Params(opslimit=2, memlimit=64 * 1024))
    assert needs_rehash("$2b$12$bcrypt-style", FAST_TEST_PARAMS)


def test_dummy_verify_runs() -> None:
    dummy_verify(FAST_TEST_PARAMS)


def test_params_validated() -> None:
    with pytest.raises(ValueError):
        Argon2Params(opslimit=0, memlimit=64 * 1024)
    with pytest.raises(ValueError):
        Argon2Params(opslimit=1, memlimit=64 * 1024 + 1)


# --- connection keys ----------------------------------------------------------------------


def test_connection_key_shape_and_entropy() -> None:
    key = new_connection_key()
    assert re.fullmatch(r"([2-9A-HJKMNP-TV-Z]{4}-){4}[2-9A-HJKMNP-TV-Z]{4}", key)
    assert not set("01ILOU") & set(CONNECTION_KEY_ALPHABET)
    assert len(set(CONNECTION_KEY_ALPHABET)) == 30
    assert CONNECTION_KEY_LENGTH * math.log2(len(CONNECTION_KEY_ALPHABET)) >= 96


def test_connection_keys_are_spread_over_the_alphabet() -> None:
    seen = set("".join(new_connection_key() for _ in range(200)).replace("-", ""))
    assert seen == set(CONNECTION_KEY_ALPHABET)


@pytest.mark.parametrize(
    "typed",
    [
        "7kq4-xm2d-9tgb-rw5c-hn8p",
        "7KQ4 XM2D 9TGB RW5C HN8P",
        "  7kq4xm2d9tgbrw5chn8p ",
        "7KQ4.XM2D.9TGB.RW5C.HN8P",
        "7KQ4\u2013XM2D\u2013 9TGB_RW5C-HN8P",
    ],
)
def test_normalize_tolerates_case_spaces_and_dashes(typed: str) -> None:
    assert normalize_connection_key(typed) == "7KQ4-XM2D-9TGB-RW5C-HN8P"


def test_normalize_repairs_u_as_v() -> None:
    assert normalize_connection_key("UUUU-2222-3333-4444-5555") == "VVVV-2222-3333-4444-5555"


@pytest.mark.parametrize(
    "typed", ["", "7KQ4-XM2D", "7KQ4-XM2D-9TGB-RW5C-HN8P-A", "0KQ4-XM2D-9TGB-RW5C-HN8P", "é" * 20]
)
def test_normalize_refuses_what_is_not_a_key(typed: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_connection_key(typed)


@given(st.just(None))
def test_normalize_round_trips_generated_keys(_: None) -> None:
    key = new_connection_key()
    assert normalize_connection_key(key.lower().replace("-", " ")) == key


def test_connection_keys_equal() -> None:
    key = new_connection_key()
    assert connection_keys_equal(key, key.lower())
    assert not connection_keys_equal(key, new_connection_key())
    assert not connection_keys_equal(key, "nonsense")


# --- tokens -----------------------------------------------------------------------------------


def test_token_shape_and_digest() -> None:
    token = new_token()
    assert re.fullmatch(r"ovt_[A-Za-z0-9_-]{43}", token)
    assert token_digest(token) == hashlib.sha256(token.encode()).digest()
    assert len({new_token() for _ in range(100)}) == 100
