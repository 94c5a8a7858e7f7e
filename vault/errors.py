"""One exception tree with stable codes.

Every failure the vault can report derives from :class:`VaultError` and carries a
stable ``code`` (snake_case, part of the public API contract) and an HTTP ``status``
that the API maps to an RFC 9457 problem document.

Two families matter to callers:

* :class:`IntegrityError` -- tamper, bad proof, bad signature, failed decryption.
  Never retried. Messages shown to clients are opaque; the detail goes to the log.
* :class:`UnavailableError` -- storage down, database busy. May be retried; the API
  answers 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VaultError(Exception):
    """Root of every error the vault raises on purpose."""

    code: ClassVar[str] = "vault_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


# --- client errors -----------------------------------------------------------------
class InvalidInput(VaultError):
    code = "invalid_input"
    status = 400
    title = "The request is not valid"


class PayloadTooLarge(VaultError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class UnsupportedMediaType(VaultError):
    code = "unsupported_media_type"
    status = 415
    title = "The content type is not supported"


class InvalidPdf(VaultError):
    code = "invalid_pdf"
    status = 422
    title = "The file is not a valid PDF"


class EncryptedPdf(InvalidPdf):
    code = "encrypted_pdf"
    title = "Encrypted PDF files are refused"


class NotEligible(VaultError):
    code = "not_eligible"
    status = 422
    title = "The applicant is not in the electronic notification scheme"


class Unauthenticated(VaultError):
    code = "unauthenticated"
    status = 401
    title = "Authentication is required"


class Forbidden(VaultError):
    code = "forbidden"
    status = 403
    title = "This role may not do this"


class NotFound(VaultError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(VaultError):
    code = "conflict"
    status = 409
    title = "The request conflicts with the current state"


class AccountClosed(Conflict):
    code = "account_closed"
    title = "The account is closed"


class AccountOptedOut(Conflict):
    code = "account_opted_out"
    title = "The applicant has left the electronic scheme; notify by post"


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


class TooManyRequests(VaultError):
    code = "too_many_requests"
    status = 429
    title = "Too many attempts; try again later"


# --- integrity errors (never retried) -------------------------------------------------
class IntegrityError(VaultError):
    code = "integrity_error"
    status = 500
    title = "An integrity check failed"


class DecryptionError(IntegrityError):
    """A ciphertext failed authentication. Deliberately says nothing more."""

    code = "decryption_failed"
    title = "Decryption failed"


class ProofError(IntegrityError):
    code = "invalid_proof"
    status = 422
    title = "The proof does not verify"


class SignatureError(IntegrityError):
    code = "invalid_signature"
    status = 422
    title = "The signature does not verify"


class LedgerCorrupted(IntegrityError):
    code = "ledger_corrupted"
    title = "The ledger failed verification"


# --- infrastructure errors (may be retried) -------------------------------------------
class UnavailableError(VaultError):
    code = "service_unavailable"
    status = 503
    title = "A component is temporarily unavailable"


class StorageUnavailable(UnavailableError):
    code = "storage_unavailable"
    title = "Object storage is unavailable"


class DatabaseUnavailable(UnavailableError):
    code = "database_unavailable"
    title = "The database is unavailable"


class BlobNotFound(IntegrityError):
    """A committed row points at a missing blob: an invariant violation, not a 404."""

    code = "blob_missing"
    title = "A stored object is missing"


class ConfigurationError(VaultError):
    code = "configuration_error"
    title = "The vault is not configured correctly"
