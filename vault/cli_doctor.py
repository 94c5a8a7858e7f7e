"""``ofpra-vault doctor``: the deployment check as a command (see vault/doctor.py).

Mounted by vault/cli.py as a plain command: ``app.command("doctor")(doctor)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vault.doctor import diagnose

doctor_app = typer.Typer(add_completion=False, help="Check a deployment")


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable JSON")] = False,
) -> None:
    """Check the database, blob store, key ring, seal, TSA, clocks and settings.

    Exits 1 if any check fails (warnings do not fail)."""
    report = diagnose()
    typer.echo(report.to_json() if as_json else report.to_text())
    if not report.ok:
        raise typer.Exit(1)


doctor_app.command("doctor")(doctor)
