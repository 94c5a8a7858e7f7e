"""Look-up by OFPRA number for the legal department and the court (issues 4 item 8, 7).

One look-up, two remits:

* ``court`` (the CNDA clerk) sees the DECISION documents of the file only, with their
  notification date and appeal deadline -- what an appeal needs;
* ``legal`` (the office's legal department) sees every document of the file.

Either way the answer holds the least personal data that proves notification: the
OFPRA number asked, and per document its id, type, title, digest and dates (made
available, first access, notified, on which basis). Never the AGDREF number, the
contacts, the structure or the account id.

Each look-up of an existing file is written to the access log: one row for the
account (``court.decisions`` / ``legal.lookup``) and one row per document listed
(``court.decision`` / ``legal.document``). The access log is keyed by account, so a
number that matches no account leaves no row (the request log still has it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from vault.clock import rfc3339
from vault.db.models import Account, Document
from vault.errors import Forbidden
from vault.notification import APPEAL_CAVEAT_EN, APPEAL_CAVEAT_FR, appeal_deadline
from vault.principal import Principal
from vault.service import Vault

__all__ = ["DECISION_TYPE", "LOOKUP_ROLES", "Lookup", "LookupItem", "decisions", "lookup"]

DECISION_TYPE = "DECISION"
#: Who may look a file up, and the access-log actions (file, document) of each.
LOOKUP_ROLES = ("legal", "court")
_ACTIONS = {
    "court": ("court.decisions", "court.decision"),
    "legal": ("legal.lookup", "legal.document"),
}


@dataclass(frozen=True)
class LookupItem:
    document_id: str
    type: str
    title: str
    sha256: str
    made_available_at: datetime
    first_access_at: datetime | None
    notified_on: date | None
    basis: str | None  # "first_access" or "deemed" (CESEDA R.531-17)
    appeal_deadline: date | None  # DECISION documents once notified

    @property
    def proof(self) -> str:
        return f"/api/v1/documents/{self.document_id}/proof"


@dataclass(frozen=True)
class Lookup:
    ofpra_number: str
    found: bool
    documents: list[LookupItem]


def lookup(vault: Vault, principal: Principal, ofpra_number: str) -> Lookup:
    """The documents of the file ``ofpra_number`` within the caller's remit."""
    from vault.documents import log_access

    if principal.kind != "staff" or principal.role not in LOOKUP_ROLES:
        raise Forbidden()
    file_action, doc_action = _ACTIONS[principal.role]
    with vault.read() as s:
        acc = s.scalar(select(Account).where(Account.ofpra_number == ofpra_number))
        docs: list[Document] = []
        if acc is not None:
            q = select(Document).where(Document.account_id == acc.id)
            if principal.role == "court":
                q = q.where(Document.type_code == DECISION_TYPE)
            docs = list(s.scalars(q.order_by(Document.posted_at, Document.id)))
    items = []
    with vault.write() as ws:
        if acc is not None:
            log_access(vault, principal, acc.id, file_action, None, s=ws)
        for d in docs:
            log_access(vault, principal, d.account_id, doc_action, d.id, s=ws)
            deadline = (
                appeal_deadline(d.notified_on).deadline
                if d.notified_on and d.type_code == DECISION_TYPE
                else None
            )
            items.append(
                LookupItem(
                    document_id=d.id,
                    type=d.type_code,
                    title=d.title,
                    sha256=d.sha256,
                    made_available_at=d.posted_at,
                    first_access_at=d.first_access_at,
                    notified_on=d.notified_on,
                    basis=d.notified_basis,
                    appeal_deadline=deadline,
                )
            )
    return Lookup(ofpra_number, acc is not None, items)


def decisions(vault: Vault, principal: Principal, ofpra_number: str) -> dict[str, Any]:
    """The court's JSON answer (``GET /api/v1/court/decisions``): its decisions only."""
    if principal.kind != "staff" or principal.role != "court":
        raise Forbidden()
    found = lookup(vault, principal, ofpra_number)
    return {
        "ofpra_number": ofpra_number,
        "found": found.found,
        "decisions": [
            {
                "document_id": d.document_id,
                "type": d.type,
                "title": d.title,
                "sha256": d.sha256,
                "made_available_at": rfc3339(d.made_available_at),
                "first_access_at": rfc3339(d.first_access_at) if d.first_access_at else None,
                "notified_on": d.notified_on.isoformat() if d.notified_on else None,
                "basis": d.basis,
                "appeal_deadline": d.appeal_deadline.isoformat() if d.appeal_deadline else None,
                "appeal_caveat_fr": APPEAL_CAVEAT_FR,
                "appeal_caveat_en": APPEAL_CAVEAT_EN,
                "proof": d.proof,
            }
            for d in found.documents
        ],
    }
