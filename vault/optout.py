"""Leaving the electronic scheme (seed FAQ "opt-out"), in the FAQ's order only.

1. the SPADA/DNA professional records the request: ``OPT_OUT_REQUESTED``;
2. OFII uploads the dated, signed form (a PDF, stored encrypted like a document);
3. an agent posts the ``COURRIER_POST`` letter (ordinary posting route);
4. ``OPT_OUT_EFFECTIVE`` is appended in the SAME transaction as that ``POSTED`` entry
   (a posted hook), and the account becomes ``opted_out``: the exclusion takes effect
   only when OFPRA puts that letter in the space (FAQ).

Each step out of order is a 409 with a stable code. After the opt-out, electronic
posting returns ``account_opted_out`` (vault/documents.py) and the applicant keeps
read access to what was posted before.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from vault.crypto.envelope import EncryptionContext, encrypt_stream
from vault.crypto.keys import WrappedKey, new_data_key, unwrap_applicant_key, wrap_data_key
from vault.db.accounts_models import OptOutForm
from vault.db.models import Account, Document
from vault.errors import AccountClosed, Conflict, Forbidden, NotFound
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.pdf.validate import inspect_pdf
from vault.principal import Principal
from vault.service import Vault
from vault.storage import new_blob_name

COURRIER_POST = "COURRIER_POST"


class OptOutAlreadyRequested(Conflict):
    code = "opt_out_already_requested"
    title = "An opt-out request is already recorded for this applicant"


class OptOutNotRequested(Conflict):
    code = "opt_out_not_requested"
    title = "No opt-out request was recorded by the accompanying structure"


class OptOutFormMissing(Conflict):
    code = "opt_out_form_missing"
    title = "The signed opt-out form has not been received from OFII"


class OptOutFormAlreadyReceived(Conflict):
    code = "opt_out_form_already_received"
    title = "The signed opt-out form was already received"


class AlreadyOptedOut(Conflict):
    code = "account_opted_out"
    title = "The applicant has left the electronic scheme; notify by post"


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"


@dataclass(frozen=True)
class FormStored:
    form_id: str
    sha256: str
    size: int
    uploaded_at: datetime


def _commitment(acc: Account) -> str:
    return subject_commitment(acc.subject_salt or b"", acc.agdref)


def _not_final(acc: Account) -> None:
    if acc.status == "closed":
        raise AccountClosed()
    if acc.status == "opted_out":
        raise AlreadyOptedOut()


def request_opt_out(vault: Vault, principal: Principal, account_id: str) -> datetime:
    """Step 1 (professional of the applicant's structure only; others get 404)."""
    if principal.role != "professional" or not principal.structure_id:
        raise Forbidden()

    def unit(s: DbSession, ledger: LedgerAppender) -> datetime:
        acc = s.get(Account, account_id)
        if acc is None or acc.structure_id != principal.structure_id:
            raise AccountNotFound()
        _not_final(acc)
        if acc.opt_out_requested_at is not None:
            raise OptOutAlreadyRequested()
        at = vault.clock.now()
        acc.opt_out_requested_at = at
        # The structure id is an organisation, not personal data; the person is only
        # present through the salted commitment.
        ledger.append(
            EntryType.OPT_OUT_REQUESTED,
            at=at,
            account_id=acc.id,
            subject_commitment=_commitment(acc),
            structure_id=principal.structure_id,
        )
        return at

    return vault.sequencer.run(unit)


def store_form(vault: Vault, principal: Principal, account_id: str, pdf: bytes) -> FormStored:
    """Step 2 (OFII): the signed form, encrypted under the applicant's key."""
    if principal.role != "ofii":
        raise Forbidden()
    with vault.read() as s:
        acc = s.get(Account, account_id) if _is_uuid(account_id) else None
        if acc is None:
            raise AccountNotFound()
        _not_final(acc)
        if acc.opt_out_requested_at is None:
            raise OptOutNotRequested()
        if acc.opt_out_form_at is not None:
            raise OptOutFormAlreadyReceived()
    inspect_pdf(pdf, max_size=vault.settings.max_upload_bytes)
    form_id = str(uuid.uuid4())
    applicant_key = unwrap_applicant_key(
        vault.keyring, WrappedKey(acc.kek_version, acc.wrapped_key or b""), acc.id
    )
    data_key = new_data_key()
    ctx = EncryptionContext(acc.id, form_id, acc.key_version)
    blob_name = new_blob_name()
    vault.blobs.put(blob_name, encrypt_stream(data_key, ctx, iter([pdf])))
    sha = hashlib.sha256(pdf).hexdigest()
    wrapped = wrap_data_key(applicant_key, data_key, acc.id, form_id)
    at = vault.clock.now()
    try:
        with vault.write() as s:
            row = s.get(Account, account_id, with_for_update=True)
            assert row is not None
            _not_final(row)
            if row.opt_out_form_at is not None:
                raise OptOutFormAlreadyReceived()
            row.opt_out_form_at = at
            s.add(
                OptOutForm(
                    id=form_id,
                    account_id=acc.id,
                    blob_name=blob_name,
                    wrapped_data_key=wrapped,
                    key_version=acc.key_version,
                    sha256=sha,
                    size=len(pdf),
                    uploaded_at=at,
                    uploaded_by=principal.id,
                )
            )
    except BaseException:
        vault.blobs.delete(blob_name)  # never leave a blob without its row
        raise
    return FormStored(form_id, sha, len(pdf), at)


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def on_posted(s: DbSession, ledger: LedgerAppender, doc: Document, acc: Account) -> None:
    """Steps 3-4, inside the posting transaction: ``COURRIER_POST`` makes it effective."""
    if doc.type_code != COURRIER_POST:
        return
    if acc.opt_out_requested_at is None:
        raise OptOutNotRequested()
    if acc.opt_out_form_at is None:
        raise OptOutFormMissing()
    acc.status = "opted_out"
    acc.opted_out_at = doc.posted_at
    # Same transaction and same legal time as the POSTED entry of the letter.
    ledger.append(
        EntryType.OPT_OUT_EFFECTIVE,
        at=doc.posted_at,
        document_id=doc.id,
        account_id=acc.id,
        subject_commitment=_commitment(acc),
    )
    s.flush()


def referenced_form_blobs(s: DbSession, names: Iterable[str]) -> set[str]:
    return set(s.scalars(select(OptOutForm.blob_name).where(OptOutForm.blob_name.in_(list(names)))))


def install(vault: Vault) -> None:
    """Register the posting hook and keep form blobs out of the blob sweeper."""
    hooks = vault.hooks("posted_hooks")
    if on_posted not in hooks:
        hooks.append(on_posted)
    previous: Callable[[DbSession, list[str]], set[str]] | None = vault.extras.get(
        "referenced_blobs"
    )
    if previous is not None and getattr(previous, "_vault_optout", False):
        return

    def referenced(s: DbSession, names: list[str]) -> set[str]:
        used = referenced_form_blobs(s, names)
        if previous is not None:
            used |= set(previous(s, names))
        return used

    referenced._vault_optout = True  # type: ignore[attr-defined]
    vault.extras["referenced_blobs"] = referenced
