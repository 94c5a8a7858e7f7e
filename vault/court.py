"""Court look-up (issue 4 item 8): the decisions on an OFPRA file, with their legal dates.

Role ``court`` only. Each look-up of an existing file is written to the access log:
one ``court.decisions`` row for the account, and one ``court.decision`` row per
document listed (the access log is keyed by account, so a number that matches no
account leaves no row; the request log still has it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from vault.clock import rfc3339
from vault.db.models import Account, Document
from vault.errors import Forbidden
from vault.notification import APPEAL_CAVEAT_EN, APPEAL_CAVEAT_FR, appeal_deadline
from vault.principal import Principal
from vault.service import Vault

__all__ = ["DECISION_TYPE", "decisions"]

DECISION_TYPE = "DECISION"


def decisions(vault: Vault, principal: Principal, ofpra_number: str) -> dict[str, Any]:
    from vault.documents import log_access

    if principal.kind != "staff" or principal.role != "court":
        raise Forbidden()
    with vault.read() as s:
        acc = s.scalar(select(Account).where(Account.ofpra_number == ofpra_number))
        docs = (
            list(
                s.scalars(
                    select(Document)
                    .where(Document.account_id == acc.id, Document.type_code == DECISION_TYPE)
                    .order_by(Document.posted_at, Document.id)
                )
            )
            if acc is not None
            else []
        )
    items = []
    with vault.write() as ws:
        if acc is not None:
            log_access(vault, principal, acc.id, "court.decisions", None, s=ws)
        for d in docs:
            log_access(vault, principal, d.account_id, "court.decision", d.id, s=ws)
            deadline = appeal_deadline(d.notified_on) if d.notified_on else None
            items.append(
                {
                    "document_id": d.id,
                    "type": d.type_code,
                    "title": d.title,
                    "sha256": d.sha256,
                    "made_available_at": rfc3339(d.posted_at),
                    "first_access_at": rfc3339(d.first_access_at) if d.first_access_at else None,
                    "notified_on": d.notified_on.isoformat() if d.notified_on else None,
                    "basis": d.notified_basis,
                    "appeal_deadline": deadline.deadline.isoformat() if deadline else None,
                    "appeal_caveat_fr": APPEAL_CAVEAT_FR,
                    "appeal_caveat_en": APPEAL_CAVEAT_EN,
                    "proof": f"/api/v1/documents/{d.id}/proof",
                }
            )
    return {"ofpra_number": ofpra_number, "found": acc is not None, "decisions": items}
