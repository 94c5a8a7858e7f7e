"""Shared fixtures: a vault on each profile, an HTTP client, staff tokens, PDFs.

``profile`` is parametrized over ``embedded`` (SQLite + filesystem) and ``production``
(PostgreSQL + the real Swift S3 server), so the same API tests run on both.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.support.services import _conninfo, fresh_pg_database, pg_admin_url, s3_settings
from vault.clock import FrozenClock
from vault.config import Settings, load_settings
from vault.service import Vault, open_vault

FAST_ARGON2 = {
    "argon2_opslimit": 1,
    "argon2_memlimit": 64 * 1024,
    "background_tasks": False,  # tests drive sweepers and checkpoints explicitly
}
_PG_TEMPLATE: dict[str, str] = {}


def make_pdf(text: str = "Convocation", pages: int = 1, pad: int = 0) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    for i in range(pages):
        pdf.add_page()
        pdf.set_font("helvetica", size=14)
        pdf.cell(0, 10, f"{text} - page {i + 1}")
    if pad:
        # Incompressible padding inside a stream keeps the PDF valid at any size.
        pdf.set_creator("x" * 16)
        pdf.add_page()
        pdf.set_font("helvetica", size=6)
        pdf.multi_cell(0, 3, uuid.uuid4().hex * (pad // 32 + 1))
    out = pdf.output()
    return bytes(out)


@pytest.fixture(scope="session")
def pdf_bytes() -> bytes:
    return make_pdf()


def _pg_template() -> str:
    """A migrated template database, created once per test session."""
    if "name" not in _PG_TEMPLATE:
        from vault.db.engine import make_engine
        from vault.db.migrate import upgrade

        name = "vault_tpl_" + uuid.uuid4().hex[:8]
        admin = pg_admin_url()
        with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        engine = make_engine(admin.rsplit("/", 1)[0] + "/" + name)
        upgrade(engine)
        engine.dispose()
        _PG_TEMPLATE["name"] = name
    return _PG_TEMPLATE["name"]


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    name = _PG_TEMPLATE.get("name")
    if name:
        try:
            with psycopg.connect(_conninfo(pg_admin_url()), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception:  # noqa: BLE001 -- best-effort clean-up
            pass


START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def session_pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One test PKI for the whole run (generation costs ~1 s); each vault gets a copy."""
    from vault.pdf.pki import load_or_create_test_pki

    d = tmp_path_factory.mktemp("pki") / "pki"
    load_or_create_test_pki(d, START)
    return d


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each embedded-profile test."""
    from vault.db.engine import make_engine
    from vault.db.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "vault.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints and removes the WAL
    assert not path.with_name("vault.db-wal").exists()
    return path


def _copy_pki(src: Path, data_dir: Path) -> None:
    import shutil

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copytree(src, data_dir / "pki")


@pytest.fixture(params=["embedded", "production"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def _seal_pkcs12(pki_dir: Path, out: Path, password: bytes) -> None:
    """The production seal as operators supply it: a PKCS#12 file with its chain."""
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from vault.pdf.pki import load_or_create_test_pki

    pki = load_or_create_test_pki(pki_dir, START)
    out.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"office seal (test)",
            pki.seal_key,
            pki.seal_cert,
            list(pki.chain),
            BestAvailableEncryption(password),
        )
    )
    out.chmod(0o600)


@pytest.fixture
def settings(
    profile: str, tmp_path: Path, session_pki_dir: Path, sqlite_template: Path, clock: FrozenClock
) -> Iterator[Settings]:
    import shutil

    data_dir = tmp_path / "data"
    _copy_pki(session_pki_dir, data_dir)
    if profile == "embedded":
        shutil.copyfile(sqlite_template, data_dir / "vault.db")
        yield load_settings({}, data_dir=data_dir, **FAST_ARGON2)
        return
    from tests.support.tsa_server import tsa_server
    from vault.pdf.pki import load_or_create_test_pki

    s3 = s3_settings()
    bucket = "t-" + uuid.uuid4().hex[:16]
    _seal_pkcs12(data_dir / "pki", data_dir / "seal.p12", b"seal-pass")
    pki = load_or_create_test_pki(data_dir / "pki", START)
    with fresh_pg_database(template=_pg_template()) as url, tsa_server(pki, clock) as tsa_url:
        keyring = data_dir / "keyring.json"
        from vault.crypto.keys import KeyRing

        KeyRing.generate(keyring)
        env = {f"VAULT_{k.upper()}": v for k, v in s3.items()}
        yield load_settings(
            env,
            profile="production",
            data_dir=data_dir,
            database_url=url,
            blob_store="s3",
            s3_bucket=bucket,
            keyring_file=str(keyring),
            tsa_url=tsa_url,
            seal_pkcs12_file=str(data_dir / "seal.p12"),
            seal_pkcs12_password="seal-pass",
            **FAST_ARGON2,
        )


@pytest.fixture
def vault(settings: Settings, clock: FrozenClock) -> Iterator[Vault]:
    v = open_vault(settings, clock=clock, migrate=True)
    ensure = getattr(v.blobs, "ensure_bucket", None)
    if ensure is not None:
        ensure()
    try:
        yield v
    finally:
        v.close()
        _drop_bucket(v)


def _drop_bucket(v: Vault) -> None:
    client = getattr(v.blobs, "_client", None)
    bucket = getattr(v.blobs, "_bucket", None)
    if client is None or bucket is None:
        return
    try:
        for obj in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, obj.object_name)
        client.remove_bucket(bucket)
    except Exception:  # noqa: BLE001 -- best-effort clean-up
        pass


@pytest.fixture
def client(vault: Vault) -> Iterator[TestClient[Any]]:
    from api.app import create_app

    app = create_app(vault=vault)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def staff(vault: Vault) -> dict[str, str]:
    """A bearer token per staff role (the professional belongs to structure SPADA-35)."""
    from vault.staff import create_staff

    out = {}
    for role in ("agent", "legal", "court", "ofii", "admin"):
        out[role] = create_staff(vault, role=role, name=f"test {role}").token
    out["professional"] = create_staff(
        vault, role="professional", name="test pro", structure_id="SPADA-35"
    ).token
    return out


REGISTRATION = {
    "agdref": "1234567890",
    "ofpra_number": "OFPRA-2026-0001",
    "guda": "Rennes",
    "registered_on": "2026-02-20",
    "procedure": "normal",
    "structure_id": "SPADA-35",
    "language": "en",
}


def new_registration(**over: Any) -> dict[str, Any]:
    body = dict(REGISTRATION)
    body["agdref"] = str(uuid.uuid4().int)[:10]
    body["ofpra_number"] = "OFPRA-" + uuid.uuid4().hex[:10]
    body.update(over)
    return body


@pytest.fixture
def applicant(client: TestClient[Any], staff: dict[str, str]) -> dict[str, str]:
    """An activated applicant: account created by an agent, first connection done."""
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
    return {
        "account_id": created["account_id"],
        "agdref": reg["agdref"],
        "ofpra_number": reg["ofpra_number"],
        "connection_key": created["connection_key"],
        "token": r.json()["token"],
        "password": "correct horse battery",
    }


def post_pdf(
    client: TestClient[Any], token: str, account_id: str, pdf: bytes, **params: Any
) -> Any:
    q = {"type": "CONVOCATION", "title": "Convocation à l'entretien", **params}
    headers = {"Content-Type": "application/pdf", **auth(token)}
    if "idem" in q:
        headers["Idempotency-Key"] = q.pop("idem")
    return client.post(
        f"/api/v1/accounts/{account_id}/documents",
        content=io.BytesIO(pdf).read(),
        params=q,
        headers=headers,
    )
