"""``ofpra-vault security rotate-log-key|shred`` (issue 8, item 5).

Mounted through ``vault.cli.SUB_APPS`` as ``("vault.cli_security", "security_app",
"security")``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

security_app = typer.Typer(no_args_is_help=True, help="Log-key rotation and crypto-shredding")

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


@security_app.command("rotate-log-key")
def rotate_log_key_cmd(as_json: JsonOpt = False) -> None:
    """Add a checkpoint signing key, announce it in the ledger (KEY_ROTATED)."""
    from vault.cli import _vault, emit
    from vault.logkeys import rotate_log_key

    vault = _vault()
    try:
        r = rotate_log_key(vault)
    finally:
        vault.close()
    emit(
        asdict(r),
        as_json,
        f"log key version {r.new_version} is current (was {r.old_version}); "
        f"announced at ledger entry {r.seq}; public key {r.vkey}",
    )


@security_app.command("shred")
def shred_cmd(
    account_id: Annotated[str, typer.Argument(help="a closed account's id")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Destroy a closed account's key at the end of retention (KEY_DESTROYED)."""
    from vault.cli import _vault, emit
    from vault.shred import shred_account

    if not yes:
        typer.echo("refusing without --yes: the documents become unreadable forever", err=True)
        raise typer.Exit(2)
    vault = _vault()
    try:
        r = shred_account(vault, account_id)
    finally:
        vault.close()
    emit(
        asdict(r),
        as_json,
        f"key destroyed; {r.documents} document(s) unreadable; ledger entry {r.seq}",
    )
