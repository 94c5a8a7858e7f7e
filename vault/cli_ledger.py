"""Command-line access to the Merkle ledger and the independent witness.

Mounted by the main CLI as ``ofpra-vault ledger ...`` and ``ofpra-vault witness ...``.
"""

from __future__ import annotations

import typer

ledger_app = typer.Typer(no_args_is_help=True, help="Merkle ledger")
witness_app = typer.Typer(no_args_is_help=True, help="Independent witness")


# --- ledger checkpoint / ledger rebuild (stored tree and checkpoints) ---------------
# Thin wrappers: the logic is in vault.ledger.checkpoints and vault.ledger.store.


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Sign and time-stamp a checkpoint of the current tree now (if it grew)."""
    import base64
    import json

    from vault.config import load_settings
    from vault.ledger.checkpoints import latest_checkpoint, make_checkpoint
    from vault.service import open_vault

    vault = open_vault(load_settings())
    try:
        made = make_checkpoint(vault)
        cp = made or latest_checkpoint(vault)
    finally:
        vault.close()
    if cp is None:
        data: dict[str, object] = {"created": False, "size": 0}
        human = "the log is empty: no checkpoint"
    else:
        data = {
            "created": made is not None,
            "size": cp.size,
            "root_hash": base64.b64encode(cp.root_hash).decode(),
            "note": cp.note,
            "key_version": cp.key_version,
            "timestamped": cp.timestamp_token is not None,
        }
        human = ("new checkpoint" if made else "unchanged; latest checkpoint") + (
            f" at size {cp.size}\n\n{cp.note}"
        )
    typer.echo(json.dumps(data, sort_keys=True) if as_json else human)


@ledger_app.command("rebuild")
def ledger_rebuild(
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Recompute every stored tile from ledger_entries (after a restore, or if tiles
    are missing). Holds the writer lock while it runs."""
    import base64
    import json

    from rich.progress import Progress

    from vault.config import load_settings
    from vault.ledger.store import rebuild_tiles
    from vault.service import open_vault

    vault = open_vault(load_settings())
    try:
        with Progress(disable=as_json, transient=True) as bar:
            task = bar.add_task("rebuilding tiles", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = rebuild_tiles(vault, progress=progress)
    finally:
        vault.close()
    data = {
        "size": report.size,
        "tiles": report.tiles,
        "root_hash": base64.b64encode(report.root_hash).decode(),
    }
    human = f"rebuilt {report.tiles} tiles for {report.size} entries; root {data['root_hash']}"
    typer.echo(json.dumps(data, sort_keys=True) if as_json else human)
