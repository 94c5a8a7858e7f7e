"""Acknowledgements of receipt (CESEDA R.531-17) to the DG and the prefecture.

When a document is notified (first consultation, or deemed after 15 days), R.531-17
requires an acknowledgement of receipt to OFPRA's director general and to the
prefecture. :func:`on_notified` runs inside the transaction that records ``NOTIFIED``
and queues one outbox row per destination:

* the DG: ``VAULT_ACK_DG_DESTINATION``;
* the account's prefecture: ``VAULT_ACK_PREFECTURE_DESTINATIONS`` (JSON map
  prefecture -> destination), looked up by ``Account.prefecture``.

A destination is ``mailto:ADDR`` (e-mail) or an ``https://`` URL (signed webhook). A
missing destination is recorded in the ledger as ``no_channel`` for that recipient.

The message carries the date, basis, document type and reference and the OFPRA
number, as text/HTML and as two attachments built at send time: ``ack.json`` (the
same facts, machine-readable) and ``ack.pdf`` (fpdf2), sealed with the office seal
when ``vault.extras["sealer"]`` is set, unsealed otherwise (see docs/alerts.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session as DbSession

from vault.alerts.channels import Attachment
from vault.alerts.messages import RenderedMessage
from vault.alerts.outbox import enqueue_office_message
from vault.db.models import Account, Document
from vault.errors import ConfigurationError
from vault.ledger.sequencer import LedgerAppender
from vault.notification import NotificationOutcome
from vault.service import Vault

log = logging.getLogger("vault.alerts")

KIND: Final = "acknowledgement_of_receipt"
FONT: Final = Path(__file__).resolve().parents[1] / "pdf" / "fonts" / "DejaVuSans.ttf"
_BASIS: Final = {"first_access": "first_consultation", "delay_expired": "deemed_after_15_days"}
SERVICES: Final = {"dg": "Directeur général de l'OFPRA"}


def prefecture_destinations(vault: Vault) -> dict[str, str]:
    raw = vault.settings.ack_prefecture_destinations
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigurationError("VAULT_ACK_PREFECTURE_DESTINATIONS is not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError("VAULT_ACK_PREFECTURE_DESTINATIONS must map names to strings")
    return value


def ack_context(
    doc: Document, acc: Account, outcome: NotificationOutcome, recipient_service: str
) -> dict[str, Any]:
    return {
        "document_reference": doc.id,
        "document_type": doc.type_code,
        # An account registered before the OFPRA number was known still needs an ack.
        "ofpra_number": acc.ofpra_number or "non attribué",
        "made_available_at": doc.posted_at,
        "first_consulted_at": doc.first_access_at,
        "notification_date": outcome.notified_on,
        "notification_basis": _BASIS[outcome.basis],
        "rule_version": f"{outcome.rule_name} v{outcome.rule_version}",
        "recipient_service": recipient_service,
    }


def on_notified(vault: Vault) -> Any:
    def hook(
        s: DbSession,
        ledger: LedgerAppender,
        doc: Document,
        acc: Account,
        outcome: NotificationOutcome,
    ) -> None:
        prefecture = acc.prefecture or ""
        targets = [
            ("dg", SERVICES["dg"], vault.settings.ack_dg_destination),
            (
                "prefecture",
                f"Préfecture ({prefecture})" if prefecture else "Préfecture",
                prefecture_destinations(vault).get(prefecture) if prefecture else None,
            ),
        ]
        for name, service, destination in targets:
            enqueue_office_message(
                s,
                vault,
                kind=KIND,
                destination_name=name,
                destination=destination,
                account=acc,
                context=ack_context(doc, acc, outcome, service),
                dedupe_key=f"ack:{doc.id}:{name}",
                document_id=doc.id,
                ledger=ledger,
            )

    return hook


def ack_json(context: Mapping[str, Any]) -> bytes:
    """The machine-readable acknowledgement (ISO dates, UTC instants)."""

    def iso(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date | datetime) else v

    body = {"type": "acknowledgement_of_receipt", "legal_basis": "CESEDA R.531-17"}
    body.update({k: iso(v) for k, v in context.items()})
    return json.dumps(body, ensure_ascii=False, sort_keys=True, indent=2).encode()


def ack_pdf(rendered: RenderedMessage) -> bytes:
    """A one-page PDF of the acknowledgement text (DejaVu: accents and any script)."""
    # fpdf2 costs ~25 MB resident: import it only when an acknowledgement is built.
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2000, 1, 1))  # deterministic bytes for a given text
    pdf.set_title(rendered.subject)
    pdf.set_creator("ofpra-vault")
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.add_page()
    pdf.set_font("DejaVu", size=10)
    pdf.multi_cell(0, 5, rendered.text)
    return bytes(pdf.output())


def ack_attachments(
    vault: Vault, rendered: RenderedMessage, context: Mapping[str, Any]
) -> tuple[tuple[Attachment, ...], bool]:
    """(attachments, sealed?) for one acknowledgement."""
    pdf = ack_pdf(rendered)
    sealer = vault.extras.get("sealer")
    sealed = False
    # vault.sealing installs a FileSealer (seal_bytes); a bare pdf.seal.Sealer has seal.
    seal = getattr(sealer, "seal_bytes", None) or getattr(sealer, "seal", None)
    if callable(seal):
        pdf = seal(pdf)
        sealed = True
    else:
        log.warning("no process-wide sealer: acknowledgement PDF attached unsealed")
    return (
        Attachment("ack.json", "application/json", ack_json(context)),
        Attachment("ack.pdf", "application/pdf", pdf),
    ), sealed


__all__ = ["ack_attachments", "ack_context", "ack_json", "ack_pdf", "on_notified"]
