"""Proof files: build one for a document, and verify one offline (issue 4 items 5 and 7).

A proof file is a ZIP (format ``ofpra-vault-proof/1``, public contract in
docs/proof-format.md) holding ``proof.json``, the sealed PDF (``document.pdf``), the
sealed ``attestation.pdf`` and PEM chains. Its invariants:

* every ledger entry about the document (``ledger_entries.document_id``) is in it,
  each with an RFC 9162 inclusion proof against ONE checkpoint that covers them all;
* the checkpoint is the C2SP signed note exactly as time-stamped (RFC 3161 over the
  note bytes), cosignature lines travel beside it;
* ``proof.json`` is RFC 8785 canonical JSON; it lists the SHA-256 of every other file
  except the attestation, and the sealed attestation carries the SHA-256 of
  ``proof.json``: no byte of the ZIP can change without a check failing;
* staff exports never count as the applicant's access (the document is decrypted
  directly, ``open_document`` is not called); the applicant's own export does, since
  it hands them the document (the read-path rule: access is recorded before any
  plaintext byte leaves).

Who sees the subject (``subject.agdref`` + ``subject.salt``, which open the
``subject_commitment`` of the entries): legal and court staff and the applicant
themself. The public verifier never echoes it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from vault.clock import parse_rfc3339, rfc3339
from vault.crypto.envelope import EncryptionContext, decrypt_stream
from vault.crypto.keys import WrappedKey, unwrap_applicant_key, unwrap_data_key
from vault.db.models import Account, Document, LedgerEntry
from vault.errors import InvalidInput, SignatureError, VaultError
from vault.ledger import merkle
from vault.ledger.checkpoint import Checkpoint
from vault.ledger.entries import parse_entry
from vault.ledger.note import (
    CosignatureVerifier,
    NoteVerifier,
    open_note,
    parse_signature_line,
    verifier_from_vkey,
)
from vault.notification import (
    DEFAULT_APPEAL_RULE,
    DEFAULT_NOTIFICATION_RULE,
    appeal_deadline,
    notification_date,
)
from vault.principal import Principal
from vault.service import Vault

__all__ = [
    "PROOF_FORMAT",
    "CheckResult",
    "ProofReport",
    "ProofTooLarge",
    "export_proof",
    "verify_bundle",
    "write_proof",
]

PROOF_FORMAT = "ofpra-vault-proof/1"
PROOF_JSON = "proof.json"
DOCUMENT_PDF = "document.pdf"
ATTESTATION_PDF = "attestation.pdf"
SEAL_CHAIN = "seal-chain.pem"
TSA_CHAIN = "tsa-chain.pem"
ROOT_PEM = "root.pem"
PROOF_ROLES = ("legal", "court")
#: Largest proof.json accepted by the verifier (the PDFs are bounded by the ZIP limit).
MAX_PROOF_JSON = 8 * 1024 * 1024

CHECKS = (
    "bundle",
    "files",
    "entries",
    "inclusion",
    "checkpoint_signature",
    "cosignatures",
    "checkpoint_timestamp",
    "document_seal",
    "attestation_seal",
    "proof_binding",
    "document_digest",
    "subject_commitment",
    "notification",
    "appeal_deadline",
)


class ProofTooLarge(VaultError):
    code = "proof_too_large"
    title = "The proof file is too large"
    status = 413


class NotAProof(InvalidInput):
    code = "not_a_proof"
    title = "Not an ofpra-vault proof file"


# ======================================================================================
# Building
# ======================================================================================


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _token_certs(token: bytes) -> list[x509.Certificate]:
    from asn1crypto import cms

    signed = cms.ContentInfo.load(token)["content"]
    return [x509.load_der_x509_certificate(c.chosen.dump()) for c in (signed["certificates"] or [])]


def _pdf_certs(path: Path) -> list[x509.Certificate]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    with path.open("rb") as f:
        sigs = PdfFileReader(f, strict=False).embedded_signatures
        if not sigs:
            return []
        certs = sigs[0].signed_data["certificates"] or []
        return [x509.load_der_x509_certificate(c.chosen.dump()) for c in certs]


def _order_chain(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf first, anchor last (each certificate's issuer follows it)."""
    unique = {c.fingerprint(c.signature_hash_algorithm or _sha256()): c for c in certs}
    pool = list(unique.values())
    issuers = {c.issuer for c in pool if c.issuer != c.subject}
    leaves = [c for c in pool if c.subject not in issuers and c.issuer != c.subject] or pool[:1]
    out: list[x509.Certificate] = []
    cur = leaves[0] if leaves else None
    while cur is not None and cur not in out:
        out.append(cur)
        cur = next((c for c in pool if c.subject == cur.issuer and c not in out), None)
    out.extend(c for c in pool if c not in out)
    return out


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _can_see_subject(principal: Principal) -> bool:
    return principal.kind == "applicant" or principal.role in PROOF_ROLES


def _load_for(vault: Vault, principal: Principal, document_id: str) -> tuple[Document, Account]:
    from vault.documents import DocumentNotFound, _is_uuid

    with vault.read() as s:
        doc = s.get(Document, document_id) if _is_uuid(document_id) else None
        if doc is None:
            raise DocumentNotFound()
        if principal.kind == "applicant":
            if doc.account_id != principal.id:
                raise DocumentNotFound()  # another's document looks missing (404)
        elif principal.role not in PROOF_ROLES:
            from vault.errors import Forbidden

            raise Forbidden()
        acc = s.get(Account, doc.account_id)
        assert acc is not None
    return doc, acc


def _decrypt_to(vault: Vault, doc: Document, acc: Account, out: IO[bytes]) -> None:
    applicant_key = unwrap_applicant_key(
        vault.keyring, WrappedKey(acc.kek_version, acc.wrapped_key or b""), acc.id
    )
    data_key = unwrap_data_key(applicant_key, doc.wrapped_data_key, acc.id, doc.id)
    ctx = EncryptionContext(acc.id, doc.id, doc.key_version)
    for chunk in decrypt_stream(data_key, ctx, vault.blobs.open(doc.blob_name)):
        out.write(chunk)


def _entry_label(e: dict[str, Any]) -> tuple[str, str]:
    t = e.get("type", "")
    if t == "POSTED":
        return "Mise à disposition", "Made available"
    if t == "ALERT_SENT":
        ch = str(e.get("channel", "?"))
        outcome = str(e.get("outcome", ""))
        if outcome == "no_channel":
            return "Alerte impossible (aucun canal)", "Alert impossible (no channel)"
        return f"Alerte {ch} ({outcome})", f"Alert {ch} ({outcome})"
    if t == "FIRST_ACCESS":
        return "Première consultation", "First consultation"
    if t == "NOTIFIED":
        return "Notification", "Notification"
    return t, t


@dataclass(frozen=True)
class ExportedProof:
    document_id: str
    filename: str
    size: int


def write_proof(
    vault: Vault, principal: Principal, document_id: str, out: IO[bytes]
) -> ExportedProof:
    """Write the proof ZIP of ``document_id`` to ``out`` (a seekable binary file)."""
    from vault.documents import log_access, record_first_access
    from vault.ledger.checkpoints import (
        cosignature_lines,
        ensure_checkpoint_covering,
        public_key,
    )
    from vault.ledger.proofs import inclusion_proof
    from vault.pdf.attestation import AttestationData, TimelineEvent, render_attestation

    doc, acc = _load_for(vault, principal, document_id)
    if principal.kind == "applicant":
        if doc.first_access_at is None:
            record_first_access(vault, principal, document_id)
        doc, acc = _load_for(vault, principal, document_id)
    log_access(vault, principal, acc.id, "document.proof", doc.id)

    with vault.read() as s:
        rows = list(
            s.execute(
                select(LedgerEntry.seq, LedgerEntry.entry)
                .where(LedgerEntry.document_id == doc.id)
                .order_by(LedgerEntry.seq)
            ).all()
        )
    if not rows:
        raise InvalidInput("the document has no ledger entry")
    cp = ensure_checkpoint_covering(vault, rows[-1][0])
    entries = []
    parsed = []
    for seq, raw in rows:
        raw = bytes(raw)
        entries.append(
            {
                "index": seq,
                "entry": _b64(raw),
                "inclusion_proof": [_b64(h) for h in inclusion_proof(vault, seq, cp.size)],
            }
        )
        parsed.append(parse_entry(raw))
    token = bytes(cp.timestamp_token or b"")
    witness_keys = [k.strip() for k in vault.settings.witness_keys.split(",") if k.strip()]

    with tempfile.TemporaryDirectory(dir=_tmpdir(vault)) as td:
        pdf_path = Path(td) / DOCUMENT_PDF
        with pdf_path.open("wb") as f:
            _decrypt_to(vault, doc, acc, f)
        seal_chain = _order_chain(_pdf_certs(pdf_path))
        tsa_chain = _order_chain(_token_certs(token)) if token else []
        roots = _roots(vault, seal_chain + tsa_chain)
        pem_files = {SEAL_CHAIN: _pem(seal_chain), TSA_CHAIN: _pem(tsa_chain)}
        if roots:
            pem_files[ROOT_PEM] = _pem(roots)

        notified = next((e for e in parsed if e["type"] == "NOTIFIED"), None)
        deadline = appeal_deadline(doc.notified_on) if doc.notified_on else None
        notification = {
            "made_available_at": rfc3339(doc.posted_at),
            "first_access_at": rfc3339(doc.first_access_at) if doc.first_access_at else None,
            "notified_on": doc.notified_on.isoformat() if doc.notified_on else None,
            "notified_at": notified.get("notified_at") if notified else None,
            "basis": doc.notified_basis,
            "rule": notified.get("rule") if notified else DEFAULT_NOTIFICATION_RULE.name,
            "rule_version": notified.get("rule_version")
            if notified
            else DEFAULT_NOTIFICATION_RULE.version,
            "appeal_deadline": deadline.deadline.isoformat() if deadline else None,
            "appeal_rule": DEFAULT_APPEAL_RULE.name,
            "appeal_rule_version": DEFAULT_APPEAL_RULE.version,
            "appeal_caveat_fr": DEFAULT_APPEAL_CAVEATS[0],
            "appeal_caveat_en": DEFAULT_APPEAL_CAVEATS[1],
        }
        files = {DOCUMENT_PDF: _sha256_file(pdf_path)}
        files.update({k: hashlib.sha256(v).hexdigest() for k, v in pem_files.items()})
        proof: dict[str, Any] = {
            "format": PROOF_FORMAT,
            "generated_at": rfc3339(vault.clock.now()),
            "log": {
                "origin": vault.settings.log_origin,
                "public_key": public_key(vault),
                "witnesses": witness_keys,
            },
            "checkpoint": {
                "note": cp.note,
                "cosignatures": [ln.rstrip("\n") for ln in cosignature_lines(vault, cp.size)],
            },
            "checkpoint_timestamp": _b64(token),
            "tsa_chain": pem_files[TSA_CHAIN].decode("ascii"),
            "seal_chain": pem_files[SEAL_CHAIN].decode("ascii"),
            "entries": entries,
            "document": {"id": doc.id, "type": doc.type_code, "sha256": doc.sha256},
            "notification": notification,
            "files": files,
        }
        if _can_see_subject(principal):
            proof["subject"] = {
                "agdref": acc.agdref,
                "salt": _b64(acc.subject_salt or b""),
            }
        proof_bytes = bytes(rfc8785.dumps(proof))

        events = [
            TimelineEvent(e["type"], parse_rfc3339(e["at"]), e["seq"], *_entry_label(e))
            for e in parsed
        ]
        if notified is not None and notified.get("notified_at"):
            # The legal instant may precede the recording (catch-up sweep): draw both.
            events = [
                ev
                if ev.kind != "NOTIFIED"
                else TimelineEvent(
                    "NOTIFIED",
                    parse_rfc3339(notified["notified_at"]),
                    ev.index,
                    "Notification ("
                    + ("consultation" if doc.notified_basis == "first_access" else "délai expiré")
                    + ")",
                    "Notification ("
                    + ("consultation" if doc.notified_basis == "first_access" else "delay expired")
                    + ")",
                )
                for ev in events
            ]
        attestation = render_attestation(
            AttestationData(
                document_id=doc.id,
                document_type=doc.type_code,
                document_sha256=doc.sha256,
                made_available_at=doc.posted_at,
                first_access_at=doc.first_access_at,
                notified_on=doc.notified_on,
                notified_basis=doc.notified_basis,
                notification_rule=(
                    f"{notification['rule']} v{notification['rule_version']}" if notified else None
                ),
                appeal_deadline=deadline.deadline if deadline else None,
                appeal_rule=f"{DEFAULT_APPEAL_RULE.name} v{DEFAULT_APPEAL_RULE.version}",
                caveat_fr=DEFAULT_APPEAL_CAVEATS[0],
                caveat_en=DEFAULT_APPEAL_CAVEATS[1],
                checkpoint_size=cp.size,
                checkpoint_root_hex=bytes(cp.root_hash).hex(),
                log_origin=vault.settings.log_origin,
                proof_sha256=hashlib.sha256(proof_bytes).hexdigest(),
                issued_at=vault.clock.now(),
                events=events,
            )
        )
        from vault.sealing import sealer_of

        fs = sealer_of(vault)
        if fs is not None:
            attestation = fs.seal_bytes(attestation)

        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PROOF_JSON, proof_bytes)
            zf.write(pdf_path, DOCUMENT_PDF)
            zf.writestr(ATTESTATION_PDF, attestation)
            for name, data in pem_files.items():
                zf.writestr(name, data)
    out.flush()
    size = out.tell()
    return ExportedProof(doc.id, f"proof-{doc.id}.zip", size)


def export_proof(vault: Vault, principal: Principal, document_id: str) -> bytes:
    """The proof ZIP as bytes (CLI and tests; the API streams a temp file)."""
    buf = io.BytesIO()
    write_proof(vault, principal, document_id, buf)
    return buf.getvalue()


def _tmpdir(vault: Vault) -> Path:
    d = vault.settings.data_dir / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _roots(vault: Vault, certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    found = {c.subject.rfc4514_string(): c for c in certs if c.issuer == c.subject}
    if vault.settings.profile == "embedded" and not vault.settings.tsa_url:
        root = vault.test_pki().root_cert
        found[root.subject.rfc4514_string()] = root
    return list(found.values())


DEFAULT_APPEAL_CAVEATS = (
    appeal_deadline(date(2026, 1, 5)).caveat_fr,
    appeal_deadline(date(2026, 1, 5)).caveat_en,
)


# ======================================================================================
# Verifying
# ======================================================================================

Status = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail_en: str
    detail_fr: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status,
            "detail_en": self.detail_en,
            "detail_fr": self.detail_fr,
        }


_TITLES = {
    "bundle": ("proof file structure", "structure du fichier de preuve"),
    "files": ("file digests", "empreintes des fichiers"),
    "entries": ("ledger entries", "entrées du journal"),
    "inclusion": ("inclusion proofs (RFC 9162)", "preuves d'inclusion (RFC 9162)"),
    "checkpoint_signature": ("checkpoint signature", "signature du point de contrôle"),
    "cosignatures": ("witness cosignatures", "cosignatures des témoins"),
    "checkpoint_timestamp": ("checkpoint time stamp (RFC 3161)", "horodatage (RFC 3161)"),
    "document_seal": ("document seal (PAdES)", "sceau du document (PAdES)"),
    "attestation_seal": ("attestation seal (PAdES)", "sceau de l'attestation (PAdES)"),
    "proof_binding": ("attestation bound to proof.json", "attestation liée à proof.json"),
    "document_digest": ("document digest", "empreinte du document"),
    "subject_commitment": ("subject commitment", "engagement sur l'identité"),
    "notification": ("notification date (R.531-17)", "date de notification (R.531-17)"),
    "appeal_deadline": ("CNDA appeal deadline", "date limite de recours CNDA"),
}


@dataclass(frozen=True)
class ProofReport:
    checks: tuple[CheckResult, ...]
    document_id: str | None = None
    document_type: str | None = None
    notified_on: str | None = None
    basis: str | None = None
    appeal_deadline: str | None = None
    checkpoint_size: int | None = None
    log_key_pinned: bool = False
    trust_root_pinned: bool = False
    witnesses_verified: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.status == "fail"]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed": self.failed,
            "document_id": self.document_id,
            "document_type": self.document_type,
            "notified_on": self.notified_on,
            "basis": self.basis,
            "appeal_deadline": self.appeal_deadline,
            "checkpoint_size": self.checkpoint_size,
            "log_key_pinned": self.log_key_pinned,
            "trust_root_pinned": self.trust_root_pinned,
            "witnesses_verified": list(self.witnesses_verified),
            "checks": [c.to_json() for c in self.checks],
        }

    def summary(self, lang: str = "fr") -> str:
        fr = lang == "fr"
        mark = {"pass": "OK  ", "fail": "ÉCHEC" if fr else "FAIL", "skipped": "--  "}
        lines = []
        if self.ok:
            lines.append(
                "VERDICT : la preuve est VALIDE." if fr else "VERDICT: the proof is VALID."
            )
        else:
            names = ", ".join(self.failed)
            lines.append(
                f"VERDICT : la preuve N'EST PAS VALIDE (contrôles en échec : {names})."
                if fr
                else f"VERDICT: the proof is NOT VALID (failed checks: {names})."
            )
        if self.document_id:
            lines.append(
                ("Document : " if fr else "Document: ") + f"{self.document_id} "
                f"({self.document_type})"
            )
        if self.notified_on:
            basis = {
                "first_access": ("première consultation", "first consultation"),
                "delay_expired": ("délai de 15 jours expiré", "15-day delay expired"),
            }.get(self.basis or "", (self.basis or "", self.basis or ""))
            lines.append(
                f"Notifié le {self.notified_on} ({basis[0]}) ; recours CNDA jusqu'au "
                f"{self.appeal_deadline} inclus, sauf demande d'aide juridictionnelle."
                if fr
                else f"Notified on {self.notified_on} ({basis[1]}); CNDA appeal until the end "
                f"of {self.appeal_deadline}, absent a legal-aid request."
            )
        if not self.log_key_pinned:
            lines.append(
                "Attention : clé du journal non fournie (--log-key) ; clé lue dans le fichier "
                "(confiance à la première utilisation)."
                if fr
                else "Note: log key not pinned (--log-key); the key in the file was used "
                "(trust on first use)."
            )
        if not self.trust_root_pinned:
            lines.append(
                "Attention : racine de confiance non fournie (--trust-root) ; racine lue dans "
                "le fichier (confiance à la première utilisation)."
                if fr
                else "Note: trust root not pinned (--trust-root); the root in the file was "
                "used (trust on first use)."
            )
        for c in self.checks:
            title = _TITLES.get(c.name, (c.name, c.name))[1 if fr else 0]
            detail = c.detail_fr if fr else c.detail_en
            lines.append(f"  [{mark[c.status]}] {c.name} — {title}: {detail}")
        return "\n".join(lines)


class _Checks:
    def __init__(self) -> None:
        self.results: dict[str, CheckResult] = {}

    def set(self, name: str, status: Status, en: str, fr: str | None = None) -> None:
        prev = self.results.get(name)
        if prev is not None and prev.status == "fail" and status != "fail":
            return  # a failure sticks
        if prev is not None and prev.status == "fail" and status == "fail":
            en, fr = prev.detail_en + "; " + en, prev.detail_fr + " ; " + (fr or en)
        self.results[name] = CheckResult(name, status, en, fr or en)

    def ok(self, name: str, en: str, fr: str | None = None) -> None:
        self.set(name, "pass", en, fr)

    def fail(self, name: str, en: str, fr: str | None = None) -> None:
        self.set(name, "fail", en, fr)

    def skip(self, name: str, en: str, fr: str | None = None) -> None:
        self.set(name, "skipped", en, fr)

    def failed(self, name: str) -> bool:
        r = self.results.get(name)
        return r is not None and r.status == "fail"

    def done(self) -> tuple[CheckResult, ...]:
        out = []
        for name in CHECKS:
            r = self.results.get(name)
            out.append(r or CheckResult(name, "skipped", "not reached", "non atteint"))
        return tuple(out)


def _load_certs(pem: bytes) -> list[x509.Certificate]:
    try:
        return list(x509.load_pem_x509_certificates(pem)) if pem.strip() else []
    except ValueError:
        return []


def verify_bundle(
    source: str | Path | bytes,
    *,
    log_vkey: str | None = None,
    trust_root_pem: bytes | str | Path | None = None,
    witness_vkeys: Sequence[str] = (),
    max_size: int | None = None,
) -> ProofReport:
    """Verify a proof file offline; never raises on a bad file (the report says why)."""
    c = _Checks()
    info: dict[str, Any] = {}
    with contextlib.suppress(_Abort):  # the failed check is already recorded
        _verify(c, info, source, log_vkey, trust_root_pem, witness_vkeys, max_size)
    return ProofReport(
        checks=c.done(),
        document_id=info.get("document_id"),
        document_type=info.get("document_type"),
        notified_on=info.get("notified_on"),
        basis=info.get("basis"),
        appeal_deadline=info.get("appeal_deadline"),
        checkpoint_size=info.get("checkpoint_size"),
        log_key_pinned=log_vkey is not None,
        trust_root_pinned=trust_root_pem is not None,
        witnesses_verified=tuple(info.get("witnesses", ())),
    )


class _Abort(Exception):
    pass


def _read_zip(c: _Checks, source: str | Path | bytes, max_size: int | None) -> dict[str, bytes]:
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        c.fail("bundle", f"cannot read the file: {exc}", f"fichier illisible : {exc}")
        raise _Abort() from exc
    if max_size is not None and len(data) > max_size:
        c.fail("bundle", "file too large", "fichier trop volumineux")
        raise _Abort()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
            if total > (max_size or 1 << 34) * 4 + MAX_PROOF_JSON:
                raise zipfile.BadZipFile("uncompressed size out of proportion")
            names = [i.filename for i in zf.infolist()]
            if len(set(names)) != len(names):
                raise zipfile.BadZipFile("duplicate file names")
            return {i.filename: zf.read(i) for i in zf.infolist()}
    # zlib.error: a corrupted deflate stream (a flipped byte inside a member).
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        c.fail("bundle", f"not a readable ZIP: {exc}", f"ZIP illisible : {exc}")
        raise _Abort() from exc


def _verify(
    c: _Checks,
    info: dict[str, Any],
    source: str | Path | bytes,
    log_vkey: str | None,
    trust_root_pem: bytes | str | Path | None,
    witness_vkeys: Sequence[str],
    max_size: int | None,
) -> None:
    files = _read_zip(c, source, max_size)
    raw_json = files.get(PROOF_JSON)
    if raw_json is None or len(raw_json) > MAX_PROOF_JSON:
        c.fail("bundle", "proof.json is missing", "proof.json absent")
        raise _Abort()
    try:
        proof = json.loads(raw_json)
        canonical = bytes(rfc8785.dumps(proof)) == raw_json
    except (ValueError, TypeError) as exc:
        c.fail("bundle", f"proof.json is not JSON: {exc}", "proof.json n'est pas du JSON")
        raise _Abort() from exc
    if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
        c.fail("bundle", f"format is not {PROOF_FORMAT}", f"le format n'est pas {PROOF_FORMAT}")
        raise _Abort()
    missing = [
        k
        for k in (
            "log",
            "checkpoint",
            "checkpoint_timestamp",
            "entries",
            "document",
            "notification",
            "files",
        )
        if k not in proof
    ]
    missing += [n for n in (DOCUMENT_PDF, ATTESTATION_PDF) if n not in files]
    if missing:
        c.fail("bundle", f"missing: {', '.join(missing)}", f"manquant : {', '.join(missing)}")
        raise _Abort()
    if not canonical:
        c.fail("bundle", "proof.json is not RFC 8785 canonical", "proof.json non canonique")
    else:
        c.ok(
            "bundle",
            f"{PROOF_FORMAT}, {len(files)} files",
            f"{PROOF_FORMAT}, {len(files)} fichiers",
        )
    try:
        _verify_body(c, info, proof, files, raw_json, log_vkey, trust_root_pem, witness_vkeys)
    except (KeyError, TypeError, ValueError, AttributeError, VaultError) as exc:
        c.fail("bundle", f"malformed proof.json: {exc!r}", f"proof.json mal formé : {exc!r}")


def _verify_body(
    c: _Checks,
    info: dict[str, Any],
    proof: dict[str, Any],
    files: dict[str, bytes],
    raw_json: bytes,
    log_vkey: str | None,
    trust_root_pem: bytes | str | Path | None,
    witness_vkeys: Sequence[str],
) -> None:
    doc = proof["document"]
    info["document_id"] = doc["id"]
    info["document_type"] = doc.get("type")

    # --- files ------------------------------------------------------------------------
    listed: dict[str, str] = proof["files"]
    bad = [
        n
        for n, h in listed.items()
        if hashlib.sha256(files.get(n, b"\0")).hexdigest() != h or n not in files
    ]
    extra = [n for n in files if n not in listed and n not in (PROOF_JSON, ATTESTATION_PDF)]
    if bad or extra or DOCUMENT_PDF not in listed:
        c.fail(
            "files",
            f"altered: {bad or '-'}; unlisted: {extra or '-'}",
            f"modifiés : {bad or '-'} ; non listés : {extra or '-'}",
        )
    else:
        c.ok("files", f"{len(listed)} files match proof.json", f"{len(listed)} fichiers conformes")

    # --- trust roots --------------------------------------------------------------------
    if trust_root_pem is not None:
        pem = (
            trust_root_pem
            if isinstance(trust_root_pem, bytes)
            else (
                Path(trust_root_pem).read_bytes()
                if not str(trust_root_pem).lstrip().startswith("-----")
                else str(trust_root_pem).encode()
            )
        )
        roots = _load_certs(pem)
    else:
        roots = _load_certs(files.get(ROOT_PEM, b""))

    # --- checkpoint signature ----------------------------------------------------------
    origin = proof["log"]["origin"]
    vkey = log_vkey or proof["log"]["public_key"]
    note: str = proof["checkpoint"]["note"]
    cosigs: list[str] = list(proof["checkpoint"].get("cosignatures") or [])
    root_hash: bytes | None = None
    size = 0
    try:
        log_verifier = verifier_from_vkey(vkey)
        if log_verifier.name != origin:
            raise SignatureError(f"key name {log_verifier.name!r} is not the origin {origin!r}")
        opened = open_note(note, [log_verifier])
        cp = Checkpoint.parse(opened.text)
        if cp.origin != origin:
            raise SignatureError("checkpoint origin differs from the log origin")
        root_hash, size = cp.root_hash, cp.size
        info["checkpoint_size"] = size
        c.ok(
            "checkpoint_signature",
            f"signed by {log_verifier.name} (size {size})",
            f"signé par {log_verifier.name} (taille {size})",
        )
    except (VaultError, ValueError) as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        c.fail("checkpoint_signature", f"does not verify: {detail}", f"invalide : {detail}")

    # --- cosignatures -------------------------------------------------------------------
    known = [*witness_vkeys, *(proof["log"].get("witnesses") or [])]
    verifiers: list[NoteVerifier] = []
    for k in known:
        try:
            v = verifier_from_vkey(k)
            if isinstance(v, CosignatureVerifier):
                verifiers.append(v)
        except (VaultError, ValueError):
            continue
    verified: list[str] = []
    unverified: list[str] = []
    for line in cosigs:
        try:
            sig = parse_signature_line(line.rstrip("\n"))
            w = next((w for w in verifiers if (w.name, w.key_id) == (sig.name, sig.key_id)), None)
            if w is None:
                unverified.append(sig.name)
                continue
            body = note[: note.rfind("\n\n") + 1]
            w.verify(body.encode("utf-8"), sig.signature)
            verified.append(sig.name)
        except (VaultError, ValueError) as exc:
            c.fail(
                "cosignatures",
                f"a cosignature does not verify: {exc}",
                f"une cosignature est invalide : {exc}",
            )
    info["witnesses"] = verified
    if not c.failed("cosignatures"):
        if not cosigs:
            c.skip(
                "cosignatures", "no witness cosignature in the file", "aucune cosignature de témoin"
            )
        elif unverified:
            c.fail(
                "cosignatures",
                f"unknown witness keys: {unverified}",
                f"clés de témoin inconnues : {unverified}",
            )
        else:
            c.ok(
                "cosignatures",
                f"verified: {', '.join(verified)}",
                f"vérifiées : {', '.join(verified)}",
            )

    # --- timestamp ----------------------------------------------------------------------
    token = base64.b64decode(proof["checkpoint_timestamp"], validate=True)
    if not roots:
        c.fail("checkpoint_timestamp", "no trust root", "aucune racine de confiance")
    else:
        from vault.tsa import verify_timestamp

        try:
            when = verify_timestamp(token, note.encode("utf-8"), roots)
            c.ok(
                "checkpoint_timestamp",
                f"note time-stamped at {rfc3339(when)}",
                f"note horodatée le {rfc3339(when)}",
            )
        except (VaultError, ValueError) as exc:
            detail = getattr(exc, "detail", None) or str(exc)
            c.fail("checkpoint_timestamp", detail, detail)

    # --- entries and inclusion ----------------------------------------------------------
    parsed: list[dict[str, Any]] = []
    entry_problems: list[str] = []
    inclusion_problems: list[str] = []
    for item in proof["entries"]:
        idx = int(item["index"])
        raw = base64.b64decode(item["entry"], validate=True)
        try:
            e = parse_entry(raw)
            if e.get("seq") != idx:
                entry_problems.append(f"#{idx}: seq {e.get('seq')}")
            if e.get("document_id") != doc["id"]:
                entry_problems.append(f"#{idx}: other document")
            parsed.append(e)
        except ValueError as exc:
            entry_problems.append(f"#{idx}: {exc}")
        if root_hash is None:
            continue
        try:
            path = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            merkle.verify_inclusion(merkle.leaf_hash(raw), idx, size, path, root_hash)
        except (VaultError, ValueError) as exc:
            inclusion_problems.append(f"#{idx}: {getattr(exc, 'detail', None) or exc}")
    types = [e.get("type") for e in parsed]
    if "POSTED" not in types:
        entry_problems.append("no POSTED entry")
    if entry_problems:
        c.fail("entries", "; ".join(entry_problems), "; ".join(entry_problems))
    else:
        c.ok(
            "entries",
            f"{len(parsed)} entries: {', '.join(map(str, types))}",
            f"{len(parsed)} entrées : {', '.join(map(str, types))}",
        )
    if root_hash is None:
        c.fail("inclusion", "no verified checkpoint root", "pas de racine vérifiée")
    elif inclusion_problems:
        c.fail("inclusion", "; ".join(inclusion_problems), "; ".join(inclusion_problems))
    else:
        c.ok(
            "inclusion",
            f"all {len(proof['entries'])} entries are in the tree of size {size}",
            f"les {len(proof['entries'])} entrées sont dans l'arbre de taille {size}",
        )

    # --- seals ---------------------------------------------------------------------------
    from vault.pdf.seal import validate_seal

    for name, fname in (("document_seal", DOCUMENT_PDF), ("attestation_seal", ATTESTATION_PDF)):
        if not roots:
            c.fail(name, "no trust root", "aucune racine de confiance")
            continue
        try:
            rep = validate_seal(files[fname], roots)
        except VaultError as exc:
            c.fail(name, f"not a PDF: {exc.detail}", "PDF illisible")
            continue
        if rep.intact and rep.valid and rep.trusted and rep.covers_whole_file:
            c.ok(
                name,
                f"{rep.level} seal by {rep.signer_subject}",
                f"sceau {rep.level} de {rep.signer_subject}",
            )
        else:
            why = rep.problem or (
                f"intact={rep.intact} valid={rep.valid} trusted={rep.trusted} "
                f"whole_file={rep.covers_whole_file}"
            )
            c.fail(name, why, why)

    # --- binding ------------------------------------------------------------------------
    want = hashlib.sha256(raw_json).hexdigest()
    found = _attestation_proof_digest(files[ATTESTATION_PDF])
    if found == want:
        c.ok(
            "proof_binding",
            "the sealed attestation names this proof.json",
            "l'attestation scellée désigne ce proof.json",
        )
    else:
        c.fail(
            "proof_binding",
            "the attestation was issued for another proof.json",
            "l'attestation a été délivrée pour un autre proof.json",
        )

    # --- digests ------------------------------------------------------------------------
    actual = hashlib.sha256(files[DOCUMENT_PDF]).hexdigest()
    recorded = {e.get("document_sha256") for e in parsed if "document_sha256" in e}
    if actual == doc["sha256"] and recorded == {actual}:
        c.ok(
            "document_digest",
            f"SHA-256 {actual} in every entry",
            f"SHA-256 {actual} dans chaque entrée",
        )
    else:
        c.fail(
            "document_digest",
            f"document.pdf {actual}, proof.json {doc['sha256']}, "
            f"entries {sorted(x for x in recorded if x)}",
            "l'empreinte du PDF ne correspond pas aux entrées",
        )

    # --- subject ------------------------------------------------------------------------
    commitments = {e.get("subject_commitment") for e in parsed if "subject_commitment" in e}
    subject = proof.get("subject")
    if len(commitments) > 1:
        c.fail(
            "subject_commitment",
            "entries commit to different subjects",
            "les entrées désignent des personnes différentes",
        )
    elif subject is None:
        c.skip(
            "subject_commitment",
            "subject not included in this file",
            "identité non incluse dans ce fichier",
        )
    else:
        salt = base64.b64decode(subject["salt"], validate=True)
        mine = hashlib.sha256(salt + str(subject["agdref"]).encode("ascii")).hexdigest()
        if commitments == {mine}:
            c.ok(
                "subject_commitment",
                "SHA-256(salt || AGDREF) matches every entry",
                "SHA-256(sel || AGDREF) correspond à chaque entrée",
            )
        else:
            c.fail(
                "subject_commitment",
                "the subject does not open the entries' commitment",
                "l'identité ne correspond pas à l'engagement des entrées",
            )

    # --- legal dates --------------------------------------------------------------------
    try:
        _check_dates(c, info, proof["notification"], parsed)
    except VaultError as exc:  # impossible facts (access before posting...) fail the check
        c.fail("notification", exc.detail or exc.title, exc.detail or exc.title)


def _attestation_proof_digest(pdf: bytes) -> str | None:
    from vault.pdf.attestation import PROOF_KEYWORD_PREFIX

    try:
        from pyhanko.pdf_utils.reader import PdfFileReader

        r = PdfFileReader(io.BytesIO(pdf), strict=False)
        kw = str(r.trailer["/Info"].get("/Keywords", ""))
    except Exception:  # noqa: BLE001 -- any unreadable attestation is "not bound"
        return None
    return kw[len(PROOF_KEYWORD_PREFIX) :] if kw.startswith(PROOF_KEYWORD_PREFIX) else None


def _check_dates(
    c: _Checks, info: dict[str, Any], block: dict[str, Any], parsed: list[dict[str, Any]]
) -> None:
    by_type = {e.get("type"): e for e in parsed}
    posted = by_type.get("POSTED")
    first = by_type.get("FIRST_ACCESS")
    notified = by_type.get("NOTIFIED")
    if posted is None:
        c.fail("notification", "no POSTED entry", "pas d'entrée POSTED")
        return
    made = parse_rfc3339(posted["at"])
    access = parse_rfc3339(first["at"]) if first else None
    problems: list[str] = []
    if block.get("made_available_at") != posted["at"]:
        problems.append("made_available_at differs from the POSTED entry")
    if block.get("first_access_at") != (first["at"] if first else None):
        problems.append("first_access_at differs from the FIRST_ACCESS entry")
    if notified is None:
        if block.get("notified_on") is not None:
            problems.append("notified_on given but no NOTIFIED entry")
    else:
        rule = DEFAULT_NOTIFICATION_RULE
        if (notified.get("rule"), notified.get("rule_version")) != (rule.name, rule.version):
            problems.append(f"unknown rule {notified.get('rule')} v{notified.get('rule_version')}")
        else:
            outcome = notification_date(made, access, now=parse_rfc3339(notified["at"]), rule=rule)
            if outcome is None:
                problems.append("NOTIFIED recorded before the rule allows it")
            else:
                want = {
                    "notified_on": outcome.notified_on.isoformat(),
                    "basis": outcome.basis,
                    "notified_at": rfc3339(outcome.notified_at),
                }
                for k, v in want.items():
                    if notified.get(k) != v:
                        problems.append(f"NOTIFIED {k} {notified.get(k)} != {v}")
                    if block.get(k) != v:
                        problems.append(f"notification.{k} {block.get(k)} != {v}")
                if notified.get("made_available_at") not in (None, posted["at"]):
                    problems.append("NOTIFIED made_available_at differs from POSTED")
                if block.get("rule") != rule.name:
                    problems.append("notification.rule differs")
                info["notified_on"] = want["notified_on"]
                info["basis"] = outcome.basis
    if problems:
        c.fail("notification", "; ".join(problems), "; ".join(problems))
    elif notified is None:
        c.ok("notification", "not notified yet at the checkpoint", "pas encore notifié")
    else:
        c.ok(
            "notification",
            f"{info['notified_on']} ({info['basis']}) recomputed under "
            f"{notified['rule']} v{notified['rule_version']}",
            f"{info['notified_on']} ({info['basis']}) recalculée selon "
            f"{notified['rule']} v{notified['rule_version']}",
        )
    # Appeal deadline.
    on = info.get("notified_on")
    if on is None:
        if block.get("appeal_deadline") is not None:
            c.fail(
                "appeal_deadline",
                "a deadline without a notification",
                "une date limite sans notification",
            )
        else:
            c.skip("appeal_deadline", "not notified yet", "pas encore notifié")
        return
    dl = appeal_deadline(date.fromisoformat(on)).deadline.isoformat()
    info["appeal_deadline"] = dl
    if block.get("appeal_deadline") == dl and block.get("appeal_rule") == DEFAULT_APPEAL_RULE.name:
        c.ok(
            "appeal_deadline",
            f"{dl} under {DEFAULT_APPEAL_RULE.name}",
            f"{dl} selon {DEFAULT_APPEAL_RULE.name}",
        )
    else:
        c.fail(
            "appeal_deadline",
            f"file says {block.get('appeal_deadline')}, rule gives {dl}",
            f"le fichier indique {block.get('appeal_deadline')}, la règle donne {dl}",
        )


def iter_file(path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Stream a temp file and delete it afterwards (API responses)."""
    try:
        with path.open("rb") as f:
            while b := f.read(chunk):
                yield b
    finally:
        path.unlink(missing_ok=True)


def write_proof_tempfile(vault: Vault, principal: Principal, document_id: str) -> tuple[Path, int]:
    fd, name = tempfile.mkstemp(prefix="proof-", suffix=".zip", dir=_tmpdir(vault))
    path = Path(name)
    try:
        with open(fd, "w+b") as f:
            write_proof(vault, principal, document_id, f)
            size = f.tell()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size
