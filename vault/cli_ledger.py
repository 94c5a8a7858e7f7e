"""Command-line access to the Merkle ledger and the independent witness.

Mounted by the main CLI as ``ofpra-vault ledger ...`` and ``ofpra-vault witness ...``.
"""

from __future__ import annotations

import typer

ledger_app = typer.Typer(no_args_is_help=True, help="Merkle ledger")
witness_app = typer.Typer(no_args_is_help=True, help="Independent witness")
