"""Request and response bodies (msgspec: validated, and described in OpenAPI)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

Agdref = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9,10}$", description="AGDREF number")]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")]


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


class DocumentPosted(msgspec.Struct):
    document_id: str
    sha256: str
    size: int
    posted_at: datetime
    created: bool


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


class DocumentList(msgspec.Struct):
    items: list[DocumentItem]
    total: int
    offset: int
    limit: int
