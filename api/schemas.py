"""Request and response bodies (msgspec: validated, and described in OpenAPI)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

Agdref = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9,10}$", description="AGDREF number")]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")]
#: Upper bound of every ``offset`` query parameter: larger values overflowed the
#: 64-bit SQL integer (500 found by schema fuzzing, tools/fuzz_api.py) and no list
#: is that long.
MAX_OFFSET = 1_000_000_000


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    agdref: Agdref
    guda: ShortText
    registered_on: date
    procedure: Literal["normal", "accelerated", "dublin", "dublin_requalified"]
    structure_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ofpra_number: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z-]{1,32}$")] | None = None
    language: Language = "fr"
    requalified_on: date | None = None
    requalification_region: ShortText | None = None
    overseas: bool = False
    unaccompanied_minor: bool = False
    unable_to_use_space: bool = False
    prefecture: ShortText | None = None


class AccountCreated(msgspec.Struct):
    account_id: str
    agdref: str
    connection_key: str


class FirstConnection(msgspec.Struct, forbid_unknown_fields=True):
    agdref: Agdref
    connection_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Password


class Login(msgspec.Struct, forbid_unknown_fields=True):
    identifier: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    password: Password


class SessionOut(msgspec.Struct):
    token: str
    token_type: str
    expires_in: int
    account_id: str
    # "add_contacts" after the first connection, "keep_contacts_current" later (FAQ).
    reminder: str | None = None
    missing_contacts: list[str] = []


class DocumentPosted(msgspec.Struct):
    document_id: str
    sha256: str
    size: int
    posted_at: datetime
    created: bool


class AlertStatus(msgspec.Struct):
    """One alert about a document, for the applicant's list and the agent's view."""

    kind: str
    channel: str  # email|sms|webhook|none
    destination: str | None  # dg|prefecture for acknowledgements
    status: str
    attempts: int
    last_at: datetime


class DocumentItem(msgspec.Struct):
    document_id: str
    type: str
    title: str
    posted_at: datetime
    first_access_at: datetime | None
    size: int
    sha256: str
    notified_on: date | None = None
    notified_basis: str | None = None
    alerts: list[AlertStatus] = msgspec.field(default_factory=list)


class DocumentList(msgspec.Struct):
    items: list[DocumentItem]
    total: int
    offset: int
    limit: int


# --- accounts issue (5) -------------------------------------------------------------------
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
ConnectionKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ResetPassword(msgspec.Struct, forbid_unknown_fields=True):
    identifier: Identifier
    connection_key: ConnectionKey
    password: Password


class RecoverKey(msgspec.Struct, forbid_unknown_fields=True):
    identifier: Identifier
    channel: Literal["sms", "email"]


class Accepted(msgspec.Struct):
    status: str = "accepted"


class ContactsIn(msgspec.Struct, forbid_unknown_fields=True):
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None


class ContactsOut(msgspec.Struct):
    phone: str | None
    email: str | None


class AccessLogLine(msgspec.Struct):
    at: str
    actor_role: str
    structure_id: str | None
    action: str
    document_id: str | None


class AccessLogOut(msgspec.Struct):
    items: list[AccessLogLine]
    total: int
    offset: int
    limit: int


class ProApplicant(msgspec.Struct):
    account_id: str
    status: str
    channel: str
    language: str
    has_phone: bool
    has_email: bool


class ProApplicantList(msgspec.Struct):
    items: list[ProApplicant]


class ConnectionKeyOut(msgspec.Struct):
    connection_key: str


class OptOutRequested(msgspec.Struct):
    account_id: str
    requested_at: datetime


class OptOutFormStored(msgspec.Struct):
    form_id: str
    sha256: str
    size: int
    uploaded_at: datetime


class AccountClosedOut(msgspec.Struct):
    account_id: str
    status: str
    closed_at: str


class StaffCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["agent", "legal", "court", "professional", "ofii", "admin"]
    name: ShortText
    structure_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class StaffToken(msgspec.Struct):
    staff_id: str
    role: str
    token: str


class StaffOut(msgspec.Struct):
    staff_id: str
    name: str
    role: str
    structure_id: str | None
    created_at: str
    expires_at: str
    disabled: bool


class StaffList(msgspec.Struct):
    items: list[StaffOut]
