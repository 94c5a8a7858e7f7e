"""Key management (issue 8, item 5): log-key rotation, crypto-shredding at the end
of retention, KEK rotation under load. Real components, both profiles."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from tests.conftest import auth, make_pdf, new_registration, post_pdf
from vault import closure, documents
from vault.crypto.keys import KeyDestroyed
from vault.db.ledger_models import LedgerCheckpoint
from vault.db.models import Account, LedgerEntry
from vault.errors import ConfigurationError
from vault.keyrotation import rotate_kek
from vault.ledger.checkpoints import log_verifier, make_checkpoint
from vault.ledger.note import open_note
from vault.ledger.verify import verify_ledger
from vault.logkeys import rotate_log_key
from vault.principal import Principal
from vault.service import Vault
from vault.shred import AccountNotClosed, KeyAlreadyDestroyed, shred_account


def _entries(vault: Vault, type_: str) -> list[dict[str, Any]]:
    with vault.read() as s:
        rows = s.scalars(select(LedgerEntry).where(LedgerEntry.type == type_)).all()
        return [json.loads(r.entry) for r in rows]


def test_log_key_rotation_old_checkpoints_still_verify(
    client: TestClient[Any], vault: Vault, staff: dict[str, str], applicant: dict[str, str]
) -> None:
    assert (
        post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("a")).status_code == 201
    )
    rotation = rotate_log_key(vault)
    assert rotation.new_version == rotation.old_version + 1
    assert (
        post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("b")).status_code == 201
    )
    make_checkpoint(vault)
    with vault.read() as s:
        cps = s.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size)).all()
        versions = [(c.size, c.key_version, c.note) for c in cps]
    assert {v for _, v, _ in versions} == {rotation.old_version, rotation.new_version}
    # Each checkpoint verifies with the key that signed it, and only with that one.
    for _, version, note in versions:
        open_note(note, [log_verifier(vault, version)])
        other = rotation.new_version if version == rotation.old_version else rotation.old_version
        with pytest.raises(Exception):  # noqa: B017 -- any refusal of the wrong key
            open_note(note, [log_verifier(vault, other)])
    announced = _entries(vault, "KEY_ROTATED")
    assert any(
        e.get("key") == "log"
        and e.get("version") == rotation.new_version
        and e.get("vkey") == rotation.vkey
        for e in announced
    )
    assert client.get("/log/public-key").text.strip() == rotation.vkey
    report = verify_ledger(vault)
    assert report.ok, report.summary()


def test_crypto_shredding_makes_documents_unreadable_ledger_verifiable(
    client: TestClient[Any], vault: Vault, staff: dict[str, str], applicant: dict[str, str]
) -> None:
    closure.install(vault)
    r = post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("to be shredded"))
    assert r.status_code == 201, r.text
    doc_id = r.json()["document_id"]
    me = Principal("applicant", applicant["account_id"], "applicant", None)
    opened = documents.open_document(vault, me, doc_id)
    assert b"".join(opened.chunks).startswith(b"%PDF")
    with pytest.raises(AccountNotClosed):
        shred_account(vault, applicant["account_id"])
    r = client.post(
        f"/api/v1/accounts/{applicant['account_id']}/close", headers=auth(staff["agent"])
    )
    assert r.status_code in (200, 204), r.text
    shredded = shred_account(vault, applicant["account_id"])
    assert shredded.documents == 1
    with vault.read() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None and acc.wrapped_key is None
    with pytest.raises(KeyDestroyed) as exc:
        b"".join(documents.open_document(vault, me, doc_id).chunks)
    assert exc.value.status == 410 and exc.value.code == "key_destroyed"
    with pytest.raises(KeyAlreadyDestroyed):
        shred_account(vault, applicant["account_id"])
    destroyed = _entries(vault, "KEY_DESTROYED")
    assert len(destroyed) == 1
    assert destroyed[0]["key"] == "applicant"
    assert applicant["agdref"] not in json.dumps(destroyed[0])
    assert applicant["account_id"] not in json.dumps(destroyed[0])
    make_checkpoint(vault)
    report = verify_ledger(vault)
    assert report.ok, report.summary()


def test_kek_rotation_under_load_old_kek_retired_only_after_rewrap(
    client: TestClient[Any], vault: Vault, staff: dict[str, str]
) -> None:
    accounts = []
    for _ in range(6):
        r = client.post("/api/v1/accounts", json=new_registration(), headers=auth(staff["agent"]))
        assert r.status_code == 201
        accounts.append(r.json()["account_id"])
    old = vault.keyring.current_kek_version
    errors: list[str] = []
    posted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(i: int) -> None:
        n = 0
        while not stop.is_set() and n < 6:
            n += 1
            if n % 2:
                r = client.post(
                    "/api/v1/accounts", json=new_registration(), headers=auth(staff["agent"])
                )
            else:
                r = post_pdf(client, staff["agent"], accounts[i], make_pdf(f"load {i} {n}"))
            with lock:
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                elif "document_id" in r.json():
                    posted.append(r.json()["document_id"])

    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    report = rotate_kek(vault)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert report.new_version == old + 1
    # A second pass finishes anything created under the old KEK during the run.
    from vault.keyrotation import rewrap_all

    rewrap_all(vault)
    with vault.read() as s:
        left = s.scalars(select(Account).where(Account.kek_version == old)).all()
    assert not left
    with pytest.raises(ConfigurationError):
        vault.keyring.retire(old, remaining_wrapped=1)
    vault.keyring.retire(old, remaining_wrapped=0)
    assert old not in vault.keyring.kek_versions
    # Everything posted under load still opens with only the new KEK.
    with vault.read() as s:
        owners = {a.id for a in s.scalars(select(Account)).all()}
    assert set(accounts) <= owners
    for doc_id in posted:
        with vault.read() as s:
            from vault.db.models import Document

            d = s.get(Document, doc_id)
            assert d is not None
            acc_id = d.account_id
        me = Principal("applicant", acc_id, "applicant", None)
        assert b"".join(documents.open_document(vault, me, doc_id).chunks).startswith(b"%PDF")
    assert _entries(vault, "KEY_ROTATED")
    assert verify_ledger(vault).ok
