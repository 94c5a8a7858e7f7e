"""Command-line access to the Merkle ledger and the independent witness.

Mounted by the main CLI as ``ofpra-vault ledger ...`` and ``ofpra-vault witness ...``.
"""

from __future__ import annotations

import typer

ledger_app = typer.Typer(no_args_is_help=True, help="Merkle ledger")
witness_app = typer.Typer(no_args_is_help=True, help="Independent witness")


# --- ledger verify / ledger monitor / witness run, witness keygen -------------------
# Thin wrappers: the logic is in vault.ledger.verify, .monitor and .witness.


@ledger_app.command("verify")
def ledger_verify(
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
    log_key: list[str] = typer.Option(  # noqa: B008 -- typer idiom
        [], "--log-key", help="log verifier key (vkey); default: from the key ring"
    ),
    trust_root: list[str] = typer.Option(  # noqa: B008 -- typer idiom
        [], "--trust-root", help="TSA trust anchor PEM; default: embedded test TSA root"
    ),
    tiles: bool = typer.Option(False, "--tiles", help="also compare the stored tiles"),
    database_url: str = typer.Option(
        "", "--database-url", help="verify this database (no key ring needed)"
    ),
    origin: str = typer.Option("", "--origin", help="expected checkpoint origin"),
) -> None:
    """Recompute every entry, chain link, Merkle root, checkpoint signature and time
    stamp from the database alone. Exit 0 if all good, 1 naming the first bad index."""
    from vault.ledger.verify import run_verify

    raise typer.Exit(
        run_verify(
            as_json=as_json,
            log_keys=log_key,
            trust_roots=trust_root,
            tiles=tiles,
            database_url=database_url,
            origin=origin,
        )
    )


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


# --- ledger monitor / witness run / witness keygen (external parties) -----------------


@ledger_app.command("monitor")
def ledger_monitor(
    url: str = typer.Option(..., "--url", help="base URL of the log, e.g. https://vault.example"),
    state: str = typer.Option(..., "--state", help="state file (last verified checkpoint)"),
    log_key: str = typer.Option("", "--log-key", help="pin the log vkey (else TOFU)"),
    full: bool = typer.Option(False, "--full", help="re-derive the tree from tiles and entries"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Check a running log: signature, consistency with the last verified checkpoint.
    Exit 0 good, 1 on a split view / rewrite / rollback / bad signature, 3 unreachable."""
    import json

    from vault.errors import VaultError
    from vault.ledger.monitor import Monitor

    try:
        report = Monitor(url, state, log_key or None).check(full=full)
    except VaultError as exc:
        typer.echo(f"ledger monitor: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.summary())
    raise typer.Exit(report.exit_code)


@witness_app.command("keygen")
def witness_keygen(
    name: str = typer.Option(..., "--name", help="witness name, e.g. cnda.fr/witness"),
    out: str = typer.Option(..., "--out", help="private key file to create (0600)"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Create a C2SP cosigner key (Ed25519, cosignature/v1); print its public vkey."""
    import json

    from vault.errors import VaultError
    from vault.ledger.witness import keygen

    try:
        vkey = keygen(name, out)
    except VaultError as exc:
        typer.echo(f"witness keygen: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"vkey": vkey, "key_file": out}) if as_json else vkey)


@witness_app.command("run")
def witness_run(
    log: str = typer.Option(..., "--log", help="base URL of the log"),
    key: str = typer.Option(..., "--key", help="witness private key file"),
    state: str = typer.Option(..., "--state", help="witness state file"),
    log_key: str = typer.Option("", "--log-key", help="log vkey to pin (first run)"),
    once: bool = typer.Option(False, "--once", help="one step, then exit"),
    interval: float = typer.Option(60.0, "--interval", help="seconds between steps"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Follow the log and cosign each new consistent checkpoint (C2SP tlog-witness).
    Refuses forks and rollbacks; with --once exits 1 on a refusal, 3 on an error."""
    import json
    import time

    from vault.errors import VaultError
    from vault.ledger.witness import Witness, load_witness_key

    try:
        w = Witness(log, load_witness_key(key), state, log_key or None)
        while True:
            report = w.step()
            typer.echo(json.dumps(report.to_json()) if as_json else report.summary())
            if once:
                raise typer.Exit(report.exit_code)
            time.sleep(interval)
    except VaultError as exc:
        typer.echo(f"witness run: {exc}", err=True)
        raise typer.Exit(2) from None
