"""``ofpra-vault accounts ...``: the account sweepers by hand (cron, tests, operators).

``serve`` runs the closure sweeper as a background task once ``vault.closure`` is in
``EXTENSIONS``; these commands run one pass of the same functions.
"""

from __future__ import annotations

import json
from typing import Any

import typer

accounts_app = typer.Typer(no_args_is_help=True, help="Accounts: closure sweeper, throttle")


def _open() -> Any:
    from vault.config import load_settings
    from vault.service import open_vault

    return open_vault(load_settings())


@accounts_app.command("sweep-closures")
def sweep_closures(
    dry_run: bool = typer.Option(False, "--dry-run", help="list the accounts due, close none"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Close the accounts whose DECISION was notified at least
    VAULT_CLOSURE_AFTER_NOTIFICATION_DAYS ago (ACCOUNT_CLOSED, sessions revoked)."""
    from vault import closure

    vault = _open()
    try:
        due = closure.due_for_closure(vault)
        closed = 0 if dry_run else closure.sweep_closures(vault)
    finally:
        vault.close()
    if as_json:
        typer.echo(json.dumps({"due": len(due), "closed": closed, "dry_run": dry_run}))
    else:
        typer.echo(
            f"{len(due)} account(s) due; {closed} closed" + (" (dry run)" if dry_run else "")
        )


@accounts_app.command("purge-throttle")
def purge_throttle(
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Drop brute-force counters untouched for two days and not locked."""
    from vault import throttle

    vault = _open()
    try:
        n = throttle.purge(vault)
    finally:
        vault.close()
    typer.echo(json.dumps({"purged": n}) if as_json else f"{n} counter(s) purged")
