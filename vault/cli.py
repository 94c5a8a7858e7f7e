"""``ofpra-vault``: the command line. Every command that prints data takes ``--json``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer

from vault.config import load_settings
from vault.errors import VaultError
from vault.principal import STAFF_ROLES

app = typer.Typer(no_args_is_help=True, add_completion=False, help="OFPRA notification vault")
staff_app = typer.Typer(no_args_is_help=True, help="Staff accounts and tokens")
keys_app = typer.Typer(no_args_is_help=True, help="Key ring")
sweep_app = typer.Typer(no_args_is_help=True, help="Sweepers")
app.add_typer(staff_app, name="staff")
app.add_typer(keys_app, name="keys")
app.add_typer(sweep_app, name="sweep")

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def emit(data: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str, sort_keys=True))
    else:
        typer.echo(human)


def _vault(migrate: bool | None = None) -> Any:
    from vault.service import open_vault

    return open_vault(load_settings(), migrate=migrate)


@app.command()
def migrate(as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema."""
    from vault.db.engine import make_engine
    from vault.db.migrate import current_revision, upgrade
    from vault.service import prepare_data_dir

    settings = load_settings()
    if settings.profile == "embedded":
        prepare_data_dir(settings)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    rev = current_revision(engine)
    engine.dispose()
    emit({"revision": rev}, as_json, f"database at revision {rev}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (VAULT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (VAULT_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the HTTP server (migrates and generates keys on the embedded profile)."""
    import uvicorn

    from vault.staff import create_staff

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = load_settings(**overrides)
    vault = _vault()
    try:
        if settings.profile == "embedded":
            issued = create_staff(vault, role="admin", name="bootstrap admin (serve)")
            typer.echo(f"OFPRA vault (embedded profile) on {settings.effective_public_url}")
            typer.echo(f"data directory: {settings.data_dir.resolve()}")
            typer.echo(f"one-time admin token (shown once): {issued.token}")
            typer.echo(f"API documentation: {settings.effective_public_url}/schema")
    finally:
        vault.close()
    import os

    for k, v in overrides.items():
        os.environ["VAULT_" + k.upper()] = str(v)
    # glibc gives every thread its own malloc arena; with the server's worker threads
    # that multiplies retained memory. Two arenas keep the server's RSS flat.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    sys.stdout.flush()
    # Replace this process with a fresh server: the CLI's own imports (every
    # sub-command's tooling) would otherwise stay resident in the serving process.
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:app_from_env",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]
    if workers > 1:
        args += ["--workers", str(workers)]
    assert uvicorn  # the server module must be importable before we exec into it
    os.execv(sys.executable, args)  # noqa: S606 -- fixed argv, no shell


@staff_app.command("create")
def staff_create(
    role: Annotated[str, typer.Option(help="one of: " + ", ".join(STAFF_ROLES))],
    name: Annotated[str, typer.Option(help="display name")],
    structure: Annotated[str | None, typer.Option(help="structure id (professionals)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a staff member and print their bearer token (shown once)."""
    from vault.staff import create_staff

    vault = _vault()
    try:
        issued = create_staff(vault, role=role, name=name, structure_id=structure)
    finally:
        vault.close()
    emit(asdict(issued), as_json, issued.token)


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """Add a key-encryption key and rewrap every applicant key (content is untouched)."""
    from vault.keyrotation import rotate_kek

    vault = _vault()
    try:
        report = rotate_kek(vault)
    finally:
        vault.close()
    emit(asdict(report), as_json, report.summary())


@sweep_app.command("blobs")
def sweep_blobs(
    dry_run: Annotated[bool, typer.Option(help="report only")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete blobs that no committed row references, after the grace period."""
    from vault.documents import sweep_blobs as run

    vault = _vault()
    try:
        report = run(vault, dry_run=dry_run)
    finally:
        vault.close()
    emit(
        asdict(report),
        as_json,
        f"scanned {report.scanned}, deleted {report.deleted}, "
        f"kept {report.referenced} referenced and {report.kept_recent} recent",
    )


#: (module, attribute, command name): sub-apps owned by feature modules.
SUB_APPS = (
    ("vault.cli_legal", "legal_app", "legal"),
    ("vault.cli_legal", "eligibility_app", "eligibility"),
    ("vault.cli_ledger", "ledger_app", "ledger"),
    ("vault.cli_ledger", "witness_app", "witness"),
    ("vault.cli_proof", "proof_app", "proof"),
    ("vault.cli_alerts", "alerts_app", "alerts"),
    ("vault.cli_accounts", "accounts_app", "accounts"),
    ("vault.cli_security", "security_app", "security"),
)


@sweep_app.command("notifications")
def sweep_notifications(as_json: JsonOpt = False) -> None:
    """Record NOTIFIED (delay expired) for every document whose 15-day delay has run."""
    from dataclasses import asdict as _asdict

    from vault.notify import sweep_notifications as run

    vault = _vault()
    try:
        report = run(vault)
    finally:
        vault.close()
    emit(_asdict(report), as_json, report.summary())


def _mount_commands() -> None:
    """Top-level commands owned by feature modules."""
    from vault.cli_doctor import doctor
    from vault.cli_seed import seed_command

    app.command("doctor")(doctor)
    app.command("seed")(seed_command)


def _mount_sub_apps() -> None:
    import importlib

    for module, attr, name in SUB_APPS:
        try:
            sub = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # that feature is not in this build
        app.add_typer(sub, name=name)


_mount_commands()
_mount_sub_apps()


def main() -> None:
    try:
        app()
    except VaultError as exc:
        typer.echo(f"error [{exc.code}]: {exc.detail}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
