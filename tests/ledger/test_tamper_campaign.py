"""Tamper campaign (issue 3, deliverable 8): a DBA attacker rewrites a COPY of a
ledger populated through the real services (accounts, postings, first accesses,
signed and time-stamped checkpoints). Every test is named after the attack. Each
mutation first drops the append-only triggers, as a database superuser would
(vault/db/append_only.py says this is exactly what verification is for).

``ledger verify`` must name the first bad index and the failed check; the external
monitor, which saw the honest log before the attack, must report what it can see:
a rewrite or rollback of what it verified, and with ``--full`` a changed entry.
Run on both profiles (SQLite + files, PostgreSQL + Swift S3).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import rfc8785
from cryptography import x509
from litestar.testing import TestClient
from sqlalchemy import Connection, func, select, text
from typer.testing import CliRunner

from tests.conftest import auth, make_pdf, new_registration, post_pdf
from tests.support.services import _conninfo, fresh_pg_database, pg_admin_url
from vault.db.engine import make_engine
from vault.db.models import LedgerEntry
from vault.ledger.checkpoint import Checkpoint
from vault.ledger.checkpoints import log_signer, make_checkpoint, public_key
from vault.ledger.entries import ZERO_CHAIN, chain_next, leaf_hash
from vault.ledger.monitor import Monitor
from vault.ledger.note import Signer, sign_note
from vault.ledger.store import rebuild_tiles
from vault.ledger.verify import LedgerReport, load_trust_roots, verify_ledger
from vault.service import Vault, open_vault

BASE = "http://testserver.local"


# --------------------------------------------------------------------------------------
# Population, copies, the attacker's connection
# --------------------------------------------------------------------------------------


@pytest.fixture
def tsa_root(vault: Vault, tmp_path: Path) -> Path:
    """PEM of the TSA trust anchor. The production profile has no embedded TSA (it
    takes a URL); its tests use a real in-process RFC 3161 TSA on a throw-away PKI."""
    if vault.settings.profile == "embedded":
        return Path(vault.test_pki().root_path)
    from vault.pdf.pki import load_or_create_test_pki
    from vault.tsa import LocalTimeStamper

    pki = load_or_create_test_pki(tmp_path / "tsa-pki", vault.clock.now())
    vault.extras["timestamper"] = LocalTimeStamper.from_test_pki(pki, vault.clock)
    return Path(pki.root_path)


@pytest.fixture
def roots(tsa_root: Path) -> list[x509.Certificate]:
    return load_trust_roots([tsa_root])


def new_applicant(client: TestClient[Any], staff: dict[str, str]) -> tuple[str, str]:
    reg = new_registration()
    r = client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"]))
    assert r.status_code == 201, r.text
    created = r.json()
    r = client.post(
        "/api/v1/auth/first-connection",
        json={
            "agdref": reg["agdref"],
            "connection_key": created["connection_key"],
            "password": "correct horse battery",
        },
    )
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return created["account_id"], r.json()["token"]


def populate(
    client: TestClient[Any],
    staff: dict[str, str],
    vault: Vault,
    clock: Any,
    *,
    rounds: int = 3,
    applicants: int = 2,
) -> dict[str, Any]:
    """Accounts, postings and first accesses through the real API; a checkpoint per
    round. Returns the entry count and the checkpoint sizes."""
    sizes: list[int] = []
    for r in range(rounds):
        for _ in range(applicants):
            account_id, token = new_applicant(client, staff)
            resp = post_pdf(client, staff["agent"], account_id, make_pdf(f"doc {r}"))
            assert resp.status_code == 201, resp.text
            doc = resp.json()
            resp = client.get(
                f"/api/v1/me/documents/{doc['document_id']}/content", headers=auth(token)
            )
            assert resp.status_code == 200
            client.cookies.clear()
        clock.advance(timedelta(minutes=5))
        cp = make_checkpoint(vault)
        assert cp is not None
        sizes.append(cp.size)
    with vault.read() as s:
        n = s.scalar(select(func.count()).select_from(LedgerEntry))
    assert n == sizes[-1]
    return {"entries": n, "checkpoints": sizes}


@pytest.fixture
def populated(
    client: TestClient[Any], staff: dict[str, str], vault: Vault, clock: Any, tsa_root: Path
) -> dict[str, Any]:
    return populate(client, staff, vault, clock)


@contextmanager
def ledger_copy(vault: Vault) -> Iterator[str]:
    """A copy of the vault's database (file backup on SQLite; CREATE DATABASE ...
    TEMPLATE on PostgreSQL); yields its URL."""
    url = vault.settings.effective_database_url
    if url.startswith("sqlite"):
        src_path = url.removeprefix("sqlite:///")
        dst = Path(src_path).with_name(f"copy-{uuid.uuid4().hex[:8]}.db")
        src, dst_conn = sqlite3.connect(src_path), sqlite3.connect(dst)
        try:
            src.backup(dst_conn)  # consistent even with a WAL
        finally:
            src.close()
            dst_conn.close()
        yield f"sqlite:///{dst}"
        return
    # TEMPLATE needs the source database idle: close our pools, end stragglers.
    vault.write_engine.dispose()
    vault.read_engine.dispose()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_conninfo(pg_admin_url()), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    with fresh_pg_database(template=name) as copy_url:
        yield copy_url


@contextmanager
def attacker(url: str) -> Iterator[Connection]:
    """A superuser's transaction on the copy with the append-only triggers dropped."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in ("ledger_entries", "ledger_checkpoints"):
                if conn.dialect.name == "sqlite":
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
                else:
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_rewrite ON {table}"))
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
            yield conn
    finally:
        engine.dispose()


def rows(conn: Connection) -> list[dict[str, Any]]:
    res = conn.execute(text("SELECT * FROM ledger_entries ORDER BY seq"))
    return [dict(r._mapping) for r in res]


def set_entry(conn: Connection, seq: int, **cols: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in cols)
    conn.execute(text(f"UPDATE ledger_entries SET {sets} WHERE seq = :seq"), {**cols, "seq": seq})


def rechain_from(conn: Connection, k: int) -> None:
    """Recompute every leaf hash and chain link from index ``k`` (a careful attacker)."""
    all_rows = rows(conn)
    prev = ZERO_CHAIN if k == 0 else bytes(all_rows[k - 1]["chain"])
    for r in all_rows[k:]:
        lh = leaf_hash(bytes(r["entry"]))
        prev = chain_next(prev, lh)
        set_entry(conn, r["seq"], leaf_hash=lh, chain=prev)


def with_at_digit_changed(entry: bytes) -> bytes:
    """One byte changed, still canonical JSON: the last digit of the microseconds."""
    obj = json.loads(entry)
    at = obj["at"]
    i = at.rindex("Z") - 1
    obj["at"] = at[:i] + ("1" if at[i] != "1" else "2") + at[i + 1 :]
    out = bytes(rfc8785.dumps(obj))
    assert len(out) == len(entry) and sum(a != b for a, b in zip(out, entry, strict=True)) == 1
    return out


def verify_copy(vault: Vault, url: str, roots: list[x509.Certificate], **kw: Any) -> LedgerReport:
    """``ledger verify`` offline on the copy: the engine, the published key, the TSA root."""
    engine = make_engine(url, immediate=False)
    try:
        return verify_ledger(
            engine,
            log_vkey=public_key(vault),
            trust_roots=roots,
            origin=vault.settings.log_origin,
            **kw,
        )
    finally:
        engine.dispose()


def assert_caught(
    report: LedgerReport, check: str, index: int | None, size: int | None = None
) -> None:
    assert not report.ok, report.summary()
    assert report.failure is not None
    assert (report.failure.check, report.failure.index) == (check, index), report.summary()
    if size is not None:
        assert report.failure.checkpoint_size == size, report.summary()
    assert check in report.summary()


@contextmanager
def vault_on(vault: Vault, url: str) -> Iterator[tuple[Vault, TestClient[Any]]]:
    """The vault software started on the tampered copy, with its HTTP API."""
    from api.app import create_app

    v2 = open_vault(dataclasses.replace(vault.settings, database_url=url), clock=vault.clock)
    if "timestamper" in vault.extras:
        v2.extras["timestamper"] = vault.extras["timestamper"]
    try:
        with TestClient(create_app(vault=v2), raise_server_exceptions=False) as c:
            yield v2, c
    finally:
        v2.close()


def middle_of_last_segment(info: dict[str, Any]) -> tuple[int, int]:
    """An index covered only by the last checkpoint, and the previous checkpoint size."""
    prev, last = info["checkpoints"][-2], info["checkpoints"][-1]
    return (prev + last) // 2, prev


# --------------------------------------------------------------------------------------
# The honest copy verifies (the campaign's baseline)
# --------------------------------------------------------------------------------------


def test_untampered_copy_verifies(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    with ledger_copy(vault) as url:
        report = verify_copy(vault, url, roots, tiles=True)
    assert report.ok, report.summary()
    assert report.entries == populated["entries"]
    assert report.timestamps_verified == report.checkpoints_verified == 3


# --------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------


def test_change_one_byte_of_an_entry(
    vault: Vault,
    client: TestClient[Any],
    populated: dict[str, Any],
    roots: list[x509.Certificate],
    tmp_path: Path,
) -> None:
    k = populated["entries"] // 2
    state = tmp_path / "monitor.json"
    assert Monitor(BASE, state, public_key(vault), http_client=client).check().ok
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            set_entry(conn, k, entry=with_at_digit_changed(bytes(rows(conn)[k]["entry"])))
        assert_caught(verify_copy(vault, url, roots), "leaf_hash", k)
        # The monitor: the signed checkpoint did not move, so only --full sees it.
        with vault_on(vault, url) as (_, c):
            m = Monitor(BASE, state, http_client=c)
            assert m.check().status == "unchanged"
            report = m.check(full=True)
            assert report.status == "full_mismatch", report.summary()
            assert f"entry {k} does not hash" in report.message
            assert report.exit_code == 1


def test_change_one_byte_making_the_entry_non_canonical(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    k = 3
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            entry = bytes(rows(conn)[k]["entry"])
            set_entry(conn, k, entry=entry.replace(b'"seq":', b'"seq" :', 1)[: len(entry)])
        assert_caught(verify_copy(vault, url, roots), "entry_canonical", k)


def test_rewrite_an_entry_and_recompute_every_hash_and_link(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    k, prev = middle_of_last_segment(populated)
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            set_entry(conn, k, entry=with_at_digit_changed(bytes(rows(conn)[k]["entry"])))
            rechain_from(conn, k)
        # Chains are consistent again; the signed root is not: the first index in
        # doubt is the first one not covered by an earlier, intact checkpoint.
        report = verify_copy(vault, url, roots)
        assert_caught(report, "checkpoint_root", prev, populated["checkpoints"][-1])


def test_delete_a_row(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    k = populated["entries"] // 3
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            conn.execute(text("DELETE FROM ledger_entries WHERE seq = :k"), {"k": k})
        assert_caught(verify_copy(vault, url, roots), "seq_gap", k)


def test_swap_two_rows(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    a, b = 4, populated["entries"] - 2
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            ra, rb = rows(conn)[a], rows(conn)[b]
            cols = ("type", "entry", "leaf_hash", "chain", "document_id", "account_id")
            # Park one row's unique (document_id, type) while swapping.
            set_entry(conn, a, document_id=None, type="KEY_ROTATED")
            set_entry(conn, b, **{c: ra[c] for c in cols})
            set_entry(conn, a, **{c: rb[c] for c in cols})
        assert_caught(verify_copy(vault, url, roots), "entry_seq", a)


def test_truncate_the_tail_under_a_checkpoint(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    n = populated["entries"]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            conn.execute(text("DELETE FROM ledger_entries WHERE seq >= :k"), {"k": n - 3})
        assert_caught(verify_copy(vault, url, roots), "checkpoint_beyond_log", n - 3, n)


def test_truncate_the_tail_and_its_checkpoints_is_a_rollback_for_the_monitor(
    vault: Vault,
    client: TestClient[Any],
    populated: dict[str, Any],
    roots: list[x509.Certificate],
    tmp_path: Path,
) -> None:
    """The thorough attacker also deletes the checkpoints that covered the tail. The
    database alone is then a valid shorter log (nothing inside it remembers more),
    which is why the outside monitor exists: it saw the longer tree."""
    state = tmp_path / "monitor.json"
    assert Monitor(BASE, state, public_key(vault), http_client=client).check().status == "first"
    cut = populated["checkpoints"][-2]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            conn.execute(text("DELETE FROM ledger_entries WHERE seq >= :k"), {"k": cut})
            conn.execute(text("DELETE FROM ledger_checkpoints WHERE size > :k"), {"k": cut})
        assert verify_copy(vault, url, roots).ok  # documented limit of an offline check
        before = state.read_bytes()
        with vault_on(vault, url) as (v2, c):
            rebuild_tiles(v2)
            report = Monitor(BASE, state, http_client=c).check()
        assert report.status == "rollback", report.summary()
        assert report.exit_code == 1
        assert f"now has {cut} entries" in report.message
        assert state.read_bytes() == before  # the anchor did not move


def test_insert_a_forged_row_in_the_middle(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    """Insert a row at k, renumber the rest (entry ``seq`` fields too) and recompute
    every hash and link: only the signed root can tell."""
    k, prev = middle_of_last_segment(populated)
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            tail = rows(conn)[k:]
            conn.execute(text("DELETE FROM ledger_entries WHERE seq >= :k"), {"k": k})
            forged = dict(tail[0], type="KEY_ROTATED", document_id=None, account_id=None)
            obj = json.loads(tail[0]["entry"])
            forged["entry"] = bytes(
                rfc8785.dumps({"v": 1, "type": "KEY_ROTATED", "seq": k, "at": obj["at"]})
            )
            for i, r in enumerate([forged, *tail]):
                o = json.loads(r["entry"])
                o["seq"] = k + i
                r = dict(r, seq=k + i, entry=bytes(rfc8785.dumps(o)))
                cols = ", ".join(r)
                conn.execute(
                    text(f"INSERT INTO ledger_entries ({cols}) VALUES (:{', :'.join(r)})"), r
                )
            rechain_from(conn, k)
        assert_caught(verify_copy(vault, url, roots), "checkpoint_root", prev)


def test_insert_a_forged_row_with_a_broken_chain(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    n = populated["entries"]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            last = rows(conn)[-1]
            entry = json.loads(last["entry"])
            forged = bytes(
                rfc8785.dumps({"v": 1, "type": "KEY_ROTATED", "seq": n, "at": entry["at"]})
            )
            conn.execute(
                text(
                    "INSERT INTO ledger_entries (seq, type, entry, leaf_hash, chain, "
                    "recorded_at) VALUES (:s, 'KEY_ROTATED', :e, :l, :c, :r)"
                ),
                {
                    "s": n,
                    "e": forged,
                    "l": leaf_hash(forged),
                    "c": bytes(32),
                    "r": last["recorded_at"],
                },
            )
        assert_caught(verify_copy(vault, url, roots), "chain", n)


def test_append_a_forged_row_after_the_last_checkpoint(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    """A forged row with a correct chain after the last checkpoint is, to the
    database, a legitimate unsigned append; the stored tiles (written by the
    sequencer in the same transaction) have no leaf for it: ``--tiles`` catches it."""
    n = populated["entries"]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            last = rows(conn)[-1]
            entry = json.loads(last["entry"])
            forged = bytes(
                rfc8785.dumps({"v": 1, "type": "KEY_ROTATED", "seq": n, "at": entry["at"]})
            )
            lh = leaf_hash(forged)
            conn.execute(
                text(
                    "INSERT INTO ledger_entries (seq, type, entry, leaf_hash, chain, "
                    "recorded_at) VALUES (:s, 'KEY_ROTATED', :e, :l, :c, :r)"
                ),
                {
                    "s": n,
                    "e": forged,
                    "l": lh,
                    "c": chain_next(bytes(last["chain"]), lh),
                    "r": last["recorded_at"],
                },
            )
        report = verify_copy(vault, url, roots, tiles=True)
        assert not report.ok and report.check == "tile", report.summary()
        assert report.bad_index is not None and report.bad_index <= n


# --------------------------------------------------------------------------------------
# Checkpoints and time stamps
# --------------------------------------------------------------------------------------


def _replace_checkpoint(conn: Connection, size: int, **cols: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in cols)
    conn.execute(
        text(f"UPDATE ledger_checkpoints SET {sets} WHERE size = :size"), {**cols, "size": size}
    )


def test_replace_a_checkpoint_resigned_with_another_key(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    size = populated["checkpoints"][1]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            note = conn.execute(
                text("SELECT note FROM ledger_checkpoints WHERE size = :s"), {"s": size}
            ).scalar_one()
            body = note[: note.rfind("\n\n") + 1]
            impostor = Signer(vault.settings.log_origin, b"\x07" * 32)
            _replace_checkpoint(conn, size, note=sign_note(body, [impostor]))
        assert_caught(verify_copy(vault, url, roots), "checkpoint_signature", None, size)


def test_replace_a_checkpoint_by_one_for_a_different_root_signed_with_the_log_key(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    """An insider holding the log key signs another root for an existing size."""
    first, size = populated["checkpoints"][0], populated["checkpoints"][1]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            root = bytes(32 * [0x42])
            body = Checkpoint.for_log(vault.settings.log_origin, size, root).to_text()
            _replace_checkpoint(
                conn, size, root_hash=root, note=sign_note(body, [log_signer(vault)])
            )
        assert_caught(verify_copy(vault, url, roots), "checkpoint_root", first, size)


def test_change_a_checkpoint_row_behind_its_signed_note(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    size = populated["checkpoints"][0]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            _replace_checkpoint(conn, size, root_hash=bytes(32))
        assert_caught(verify_copy(vault, url, roots), "checkpoint_note", None, size)


def test_replace_a_timestamp_token(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    a, b = populated["checkpoints"][0], populated["checkpoints"][1]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            tok = {
                r.size: bytes(r.timestamp_token)
                for r in conn.execute(text("SELECT size, timestamp_token FROM ledger_checkpoints"))
            }
            _replace_checkpoint(conn, a, timestamp_token=tok[b])
            _replace_checkpoint(conn, b, timestamp_token=tok[a])
        assert_caught(verify_copy(vault, url, roots), "checkpoint_timestamp", None, a)


def test_remove_a_timestamp_token(
    vault: Vault, populated: dict[str, Any], roots: list[x509.Certificate]
) -> None:
    size = populated["checkpoints"][-1]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            _replace_checkpoint(conn, size, timestamp_token=None)
        assert_caught(verify_copy(vault, url, roots), "checkpoint_timestamp", None, size)


# --------------------------------------------------------------------------------------
# Insider rewrites that re-sign: only the monitor, which remembers, can see them
# --------------------------------------------------------------------------------------


def test_insider_rewrite_resigned_and_restamped_at_the_same_size_is_a_split_view(
    vault: Vault,
    client: TestClient[Any],
    populated: dict[str, Any],
    roots: list[x509.Certificate],
    tmp_path: Path,
) -> None:
    """The attacker holds the log key and the TSA: rewrites an entry, recomputes
    everything, rebuilds the tiles and replaces the last checkpoint with a new signed,
    time-stamped one of the same size. The database is self-consistent again; the
    monitor that verified the old tree reports two trees of one size."""
    state = tmp_path / "monitor.json"
    assert Monitor(BASE, state, public_key(vault), http_client=client).check().ok
    k, _ = middle_of_last_segment(populated)
    size = populated["checkpoints"][-1]
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            set_entry(conn, k, entry=with_at_digit_changed(bytes(rows(conn)[k]["entry"])))
            rechain_from(conn, k)
            conn.execute(text("DELETE FROM ledger_checkpoints WHERE size = :s"), {"s": size})
        with vault_on(vault, url) as (v2, c):
            rebuild_tiles(v2)
            assert make_checkpoint(v2) is not None  # signed + stamped by the insider
            assert verify_copy(vault, url, roots).ok  # self-consistent again
            report = Monitor(BASE, state, http_client=c).check()
        assert report.status == "split_view", report.summary()
        assert report.exit_code == 1 and report.new_size == size


def test_insider_rewrite_then_growth_fails_the_consistency_proof(
    vault: Vault,
    client: TestClient[Any],
    staff: dict[str, str],
    populated: dict[str, Any],
    roots: list[x509.Certificate],
    tmp_path: Path,
) -> None:
    """Same rewrite, but the log keeps growing and signs a larger tree: the proof
    from the size the monitor verified to the new size cannot verify."""
    state = tmp_path / "monitor.json"
    assert Monitor(BASE, state, public_key(vault), http_client=client).check().ok
    k = populated["checkpoints"][0] // 2
    with ledger_copy(vault) as url:
        with attacker(url) as conn:
            set_entry(conn, k, entry=with_at_digit_changed(bytes(rows(conn)[k]["entry"])))
            rechain_from(conn, k)
        with vault_on(vault, url) as (v2, c):
            rebuild_tiles(v2)
            new_applicant(c, staff)
            cp = make_checkpoint(v2)
            assert cp is not None and cp.size > populated["entries"]
            report = Monitor(BASE, state, http_client=c).check()
        assert report.status == "split_view", report.summary()
        assert "does not extend" in report.message


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def test_cli_ledger_verify_names_the_first_bad_index(
    vault: Vault, populated: dict[str, Any], tsa_root: Path
) -> None:
    from vault.cli_ledger import ledger_app

    k = populated["entries"] // 2
    runner = CliRunner()
    with ledger_copy(vault) as url:
        args = [
            "verify",
            "--database-url",
            url,
            "--log-key",
            public_key(vault),
            "--trust-root",
            str(tsa_root),
            "--origin",
            vault.settings.log_origin,
        ]
        ok = runner.invoke(ledger_app, [*args, "--tiles"])
        assert ok.exit_code == 0, ok.output
        assert "ledger OK" in ok.output
        with attacker(url) as conn:
            set_entry(conn, k, entry=with_at_digit_changed(bytes(rows(conn)[k]["entry"])))
        bad = runner.invoke(ledger_app, args)
        assert bad.exit_code == 1, bad.output
        assert f"index {k}" in bad.output and "leaf_hash" in bad.output
        js = runner.invoke(ledger_app, [*args, "--json"])
        assert js.exit_code == 1
        doc = json.loads(js.output)
        assert doc["ok"] is False
        assert doc["failure"]["index"] == k and doc["failure"]["check"] == "leaf_hash"
