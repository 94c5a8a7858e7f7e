"""``ofpra-vault doctor`` on both profiles, against the real database, S3 server and TSA.

A healthy vault passes; each broken component fails with its own plain message and
makes the command exit non-zero.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from alembic import command
from typer.testing import CliRunner

from tests.support.services import fresh_pg_database
from vault.cli_doctor import doctor
from vault.clock import Clock, FrozenClock, SystemClock
from vault.config import Settings
from vault.db.migrate import alembic_config
from vault.doctor import FAIL, OK, Report, run_checks
from vault.service import Vault


@pytest.fixture
def deployed(
    settings: Settings, vault: Vault, clock: FrozenClock
) -> Iterator[tuple[Settings, Clock]]:
    """The test vault's settings made deployable, and the clock the doctor should use.

    Production: the settings an operator must add (https public URL, alert channels)
    and a TSA on the wall clock, since the doctor compares this host's clock with the
    database server's and the TSA's."""
    if settings.profile == "embedded":
        yield settings, clock
        return
    from tests.support.tsa_server import tsa_server
    from vault.pdf.pki import load_or_create_test_pki

    pki = load_or_create_test_pki(settings.data_dir / "pki", clock.now())
    with tsa_server(pki, SystemClock()) as tsa_url:
        yield (
            dataclasses.replace(
                settings,
                public_url="https://vault.ofpra.example",
                smtp_host="smtp.ofpra.example",
                smtp_tls="starttls",
                sms_url="https://sms.example/send",
                sms_report_secret="s",
                log_origin="vault.ofpra.example/log",
                tsa_url=tsa_url,
            ),
            SystemClock(),
        )


def failed(report: Report, name: str) -> str:
    messages = [c.message for c in report.checks if c.name == name and c.status == FAIL]
    assert messages, report.to_text()
    return " | ".join(messages)


def test_healthy_vault_passes(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    report = run_checks(settings, clock=clock)
    assert report.ok, report.to_text()
    status = {c.name: c.status for c in report.checks}
    for name in ("database", "blob store", "key ring", "tsa"):
        assert status[name] == OK, report.to_text()
    if settings.profile == "production":
        assert status["seal"] == OK
        assert status["clock.database"] == OK
        assert status["clock.tsa"] == OK
    else:
        seal = next(c for c in report.checks if c.name == "seal")
        assert "NOT FOR PRODUCTION" in seal.message


def test_wrong_bucket_fails(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    if settings.profile == "production":
        broken = dataclasses.replace(settings, s3_bucket="no-such-bucket-doctor")
        report = run_checks(broken, clock=clock)
        assert "bucket does not exist" in failed(report, "blob store")
        assert "no-such-bucket-doctor" in failed(report, "blob store")
    else:
        shutil.rmtree(settings.data_dir / "blobs")
        report = run_checks(settings, clock=clock)
        assert "no blob directory" in failed(report, "blob store")
    assert not report.ok


def test_missing_keyring_fails(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    settings.effective_keyring_file.unlink()
    report = run_checks(settings, clock=clock)
    assert "no key ring at" in failed(report, "key ring")
    assert not report.ok


def test_world_readable_keyring_fails(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    settings.effective_keyring_file.chmod(0o644)
    report = run_checks(settings, clock=clock)
    assert "chmod 600" in failed(report, "key ring")


def test_unmigrated_database_fails(deployed: tuple[Settings, Clock], tmp_path: Path) -> None:
    settings, clock = deployed

    def check(url: str) -> None:
        from vault.db.engine import make_engine

        engine = make_engine(url)
        with engine.connect():
            pass  # an empty database (SQLite: an empty file)
        report = run_checks(dataclasses.replace(settings, database_url=url), clock=clock)
        assert "the database is empty: run `ofpra-vault migrate`" in failed(report, "database")
        # Only the core chain applied: the feature branches are missing.
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
        engine.dispose()
        report = run_checks(dataclasses.replace(settings, database_url=url), clock=clock)
        message = failed(report, "database")
        assert "schema at 0001 but this version needs" in message
        assert "run `ofpra-vault migrate`" in message

    if settings.profile == "production":
        with fresh_pg_database() as url:
            check(url)
    else:
        check(f"sqlite:///{tmp_path / 'empty.db'}")
        missing = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'no.db'}")
        assert "no database at" in failed(run_checks(missing, clock=clock), "database")
        assert not (tmp_path / "no.db").exists()  # the doctor created nothing


def test_unreachable_database_fails(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    url = "postgresql://postgres@127.0.0.1:9/vault"  # discard port: nothing listens
    report = run_checks(dataclasses.replace(settings, database_url=url), clock=clock)
    assert "cannot reach postgresql://postgres@127.0.0.1:9/vault" in failed(report, "database")


@pytest.mark.parametrize("profile", ["production"])
def test_production_settings_inconsistencies_fail(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    broken = dataclasses.replace(
        settings,
        public_url="http://vault.ofpra.example",
        smtp_host="",
        sms_url="",
        witness_keys="garbage+1234+AAAA",
        seal_pkcs12_file="",
    )
    report = run_checks(broken, clock=clock)
    message = failed(report, "settings")
    assert "is not https://" in message
    assert "applicants get no alert" in message
    assert "unreadable keys: garbage" in failed(report, "witnesses")
    assert "would NOT be sealed" in failed(report, "seal")


@pytest.mark.parametrize("profile", ["production"])
def test_wrong_seal_password_fails(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    broken = dataclasses.replace(settings, seal_pkcs12_password="wrong")
    assert "cannot load the seal" in failed(run_checks(broken, clock=clock), "seal")


def test_unanswering_tsa_fails(deployed: tuple[Settings, Clock]) -> None:
    settings, clock = deployed
    broken = dataclasses.replace(settings, tsa_url="http://127.0.0.1:9/tsa")
    assert "did not answer" in failed(run_checks(broken, clock=clock), "tsa")


def test_cli_exits_nonzero_with_plain_message(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(doctor)
    app.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name
    env = {"VAULT_DATA_DIR": str(tmp_path / "nothing"), "VAULT_PROFILE": "embedded"}
    result = CliRunner().invoke(app, ["doctor"], env=env)
    assert result.exit_code == 1
    assert "[FAIL] database: no database at" in result.output
    assert "check(s) failed" in result.output
    result = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    assert result.exit_code == 1
    assert '"ok": false' in result.output
