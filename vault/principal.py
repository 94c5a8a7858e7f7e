"""Who is asking. Object-level checks in the services take a :class:`Principal`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STAFF_ROLES = ("agent", "legal", "court", "professional", "ofii", "admin")
ROLES = ("applicant", *STAFF_ROLES)


@dataclass(frozen=True)
class Principal:
    kind: Literal["staff", "applicant"]
    id: str  # staff id, or the applicant's account id
    role: str
    structure_id: str | None = None
    session_digest: bytes | None = None

    @property
    def account_id(self) -> str | None:
        return self.id if self.kind == "applicant" else None
