"""``ofpra-vault seed``: bulk-fill a vault for growth tests (see vault/seed.py).

Mounted by vault/cli.py as a plain command: ``app.command("seed")(seed_command)``.
Never run it on a production vault: it creates synthetic applicants.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated

import typer

seed_app = typer.Typer(add_completion=False, help="Bulk seeding for growth tests")


def seed_command(
    documents: Annotated[int, typer.Option(help="documents to add (accounts: 1 per 5)")],
    entries: Annotated[int, typer.Option(help="ledger entries to add, at least")] = 0,
    batch: Annotated[int, typer.Option(help="documents per transaction")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable JSON")] = False,
) -> None:
    """Add synthetic accounts, documents (small encrypted blobs) and ledger entries in
    big transactions through the sequencer. Not for a production vault."""
    from vault.config import load_settings
    from vault.seed import seed
    from vault.service import open_vault

    vault = open_vault(load_settings())

    def progress(docs: int, appended: int) -> None:
        if not as_json:
            print(f"  {docs} documents, {appended} entries", file=sys.stderr, flush=True)

    try:
        report = seed(vault, documents=documents, entries=entries, batch=batch, progress=progress)
    finally:
        vault.close()
    data = asdict(report) | {"entries_per_second": round(report.entries_per_second, 1)}
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
    else:
        typer.echo(
            f"added {report.accounts} accounts, {report.documents} documents, "
            f"{report.entries} entries in {report.seconds:.1f} s "
            f"({report.entries_per_second:.0f} entries/s); ledger size {report.ledger_size}"
        )


seed_app.command("seed")(seed_command)
