"""``ofpra-vault proof export|verify`` (issue 4 items 5 and 7).

``export`` runs as a legal officer named ``cli:<user>``; the export is written to the
access log like an API export. ``verify`` needs no vault at all: it reads only the
file (and the pinned log key / trust root when given).
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import typer

proof_app = typer.Typer(no_args_is_help=True, help="Proof files (export, offline verification)")


@proof_app.command("export")
def proof_export(
    document_id: str = typer.Argument(..., help="the document's id"),
    output: Path = typer.Option(..., "-o", "--output", help="where to write the ZIP"),  # noqa: B008
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Write the proof file (ZIP, ofpra-vault-proof/1) of a document."""
    from vault.cli import _vault
    from vault.principal import Principal
    from vault.proof import write_proof
    from vault.sealing import install

    vault = _vault()
    try:
        install(vault)
        who = Principal(kind="staff", id=f"cli:{getpass.getuser()}", role="legal")
        tmp = output.with_name(output.name + ".part")
        with tmp.open("wb") as f:
            exported = write_proof(vault, who, document_id, f)
        tmp.replace(output)
    finally:
        vault.close()
    size = output.stat().st_size
    if as_json:
        typer.echo(
            json.dumps({"document_id": exported.document_id, "file": str(output), "size": size})
        )
    else:
        typer.echo(f"proof of {exported.document_id} written to {output} ({size} bytes)")


@proof_app.command("verify")
def proof_verify(
    file: Path = typer.Argument(..., help="the proof ZIP"),  # noqa: B008
    log_key: str = typer.Option("", "--log-key", help="pinned log verifier key (C2SP vkey)"),
    trust_root: Path | None = typer.Option(  # noqa: B008
        None, "--trust-root", help="pinned trust anchor (PEM) for seals and time stamps"
    ),
    witness_key: list[str] = typer.Option(  # noqa: B008
        [], "--witness-key", help="witness cosigner vkey (repeatable)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
    lang: str = typer.Option("fr", "--lang", help="fr or en"),
) -> None:
    """Verify a proof file offline. Exit 0 only if every check passes; otherwise exit 1
    and name the failed checks."""
    from vault.proof import verify_bundle

    report = verify_bundle(
        file,
        log_vkey=log_key or None,
        trust_root_pem=trust_root.read_bytes() if trust_root else None,
        witness_vkeys=witness_key,
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(report.summary("en" if lang == "en" else "fr"))
    if not report.ok:
        print("failed: " + ", ".join(report.failed), file=sys.stderr)
        raise typer.Exit(1)
