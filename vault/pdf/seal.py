"""The office's PAdES seal on posted PDFs, and its validation.

A :class:`Sealer` is built once per process (DESIGN.md section 9, "pyHanko speed"):

* the seal key is parsed once and kept as a ``cryptography`` key object;
* the certificate chain and the TSA chain are validated once, at construction, with
  a :class:`~pyhanko_certvalidator.ValidationContext` that is given the CRLs up front
  and may not fetch anything; a broken configuration fails at start-up
  (:class:`~vault.errors.ConfigurationError`), never on a user's upload;
* the validation data found then (certificates and CRLs) is what each sealed PDF
  carries in its Document Security Store, written in the *same* revision as the
  signature, so the whole file is covered by the signature (ETSI EN 319 142-1
  section 5.4 allows the DSS before or after the signature);
* the room reserved for the CMS blob is measured once by a self-test seal;
* the CMS ``SignedData`` is assembled from pre-encoded parts (see
  :class:`_SealSigner`) because asn1crypto re-serialising the embedded certificates
  dominated the cost.

Each seal is a PAdES baseline signature (ETSI EN 319 142-1):

* B-B: ``ETSI.CAdES.detached`` sub-filter, SHA-256, ESS signing-certificate-v2;
* B-T: an RFC 3161 signature timestamp over the signature value, from the timestamper;
* B-LT: a DSS holding every certificate of both paths and the CRLs, when CRLs were
  given and are still current; otherwise the seal is B-T and a warning is logged.

Invariants: a sealed PDF is the input plus exactly one incremental update; the seal
never reads the network; ``validate_seal`` returns a report and raises only on input
that is not a PDF at all.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from asn1crypto import cms, keys
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError, as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import ValidationInfoReadingError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from vault.clock import Clock
from vault.errors import ConfigurationError, InvalidPdf
from vault.pdf.pki import TestPki
from vault.tsa import LocalTimeStamper, to_asn1_cert

__all__ = ["SEAL_FIELD", "SealReport", "Sealer", "validate_seal"]

log = logging.getLogger(__name__)

SEAL_FIELD: Final = "OFPRA-Seal"
SEAL_REASON: Final = "Mise à disposition — notification électronique OFPRA"
SEAL_LOCATION: Final = "Office français de protection des réfugiés et apatrides, France"

SealKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Room for one incremental update's worth of variation in the TSA token (serial
# number, fraction digits) beyond the size measured by the self-test seal.
_RESERVE_MARGIN = 2048


_MESSAGE_DIGEST_OID = bytes.fromhex("06092a864886f70d010904")  # 1.2.840.113549.1.9.4


def _der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _dump(value: Any) -> bytes:
    der: bytes = value.dump()
    return der


def _to_asn1_crl(crl: x509.CertificateRevocationList) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))


def _key_info(key: SealKey) -> keys.PrivateKeyInfo:
    return keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class _SealSigner(signers.SimpleSigner):
    """pyHanko's ``SimpleSigner`` with the per-signature costs taken out.

    * ``sign_raw`` uses the ``cryptography`` key parsed once (the stock version
      re-parses the DER key on every signature: ~0.5 s for RSA-3072);
    * the PAdES signed attributes and the ``SignedData`` around them are assembled
      from DER encoded once here, in the exact shape pyHanko produces (content-type,
      message-digest, signing-certificate-v2; RFC 5652 section 5). Any other request
      (another digest, non-PAdES attributes) is handed back to pyHanko unchanged.
    """

    def __init__(
        self, cert: x509.Certificate, key: SealKey, chain: Sequence[x509.Certificate]
    ) -> None:
        if cert.public_key() != key.public_key():
            raise ConfigurationError("the seal key does not match the seal certificate")
        asn1_cert = to_asn1_cert(cert)
        asn1_chain = [to_asn1_cert(c) for c in chain]
        super().__init__(
            signing_cert=asn1_cert,
            signing_key=_key_info(key),
            cert_registry=SimpleCertificateStore.from_certs(asn1_chain),  # type: ignore[no-untyped-call]
        )
        self._key = key
        cert_ders = {cert.public_bytes(serialization.Encoding.DER)} | {
            c.public_bytes(serialization.Encoding.DER) for c in chain
        }
        # RFC 5652 5.1: certificates [0] IMPLICIT SET OF, DER-sorted.
        self._certificates_der = _der_tlv(0xA0, b"".join(sorted(cert_ders)))
        self._sid_der = _dump(
            cms.IssuerAndSerialNumber(
                {"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number}
            )
        )
        self._digest_algorithm_der = bytes.fromhex("300d06096086480165030402010500")
        self._signature_algorithm_der = _dump(self.get_signature_mechanism_for_digest("sha256"))
        self._content_type_attr = bytes.fromhex(
            "301806092a864886f70d010903310b06092a864886f70d010701"
        )  # contentType = id-data
        self._ess_attr = _dump(
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [as_signing_certificate_v2(asn1_cert)],
                }
            )
        )

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if digest_algorithm != "sha256":
            return super().sign_raw(data, digest_algorithm)
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        if self.get_signature_mechanism_for_digest("sha256").signature_algo != "rsassa_pkcs1v15":
            return super().sign_raw(data, digest_algorithm)
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    async def signed_attrs(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        attr_settings: PdfCMSSignedAttributes | None = None,
        content_type: str = "data",
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        dry_run: bool = False,
        is_pdf_sig: bool = True,
    ) -> cms.CMSAttributes:
        plain_pades = (
            use_pades
            and digest_algorithm == "sha256"
            and content_type == "data"
            and (attr_settings is None or attr_settings.cades_signed_attrs is None)
        )
        if not plain_pades:
            return await super().signed_attrs(
                data_digest,
                digest_algorithm,
                attr_settings=attr_settings,
                content_type=content_type,
                use_pades=use_pades,
                timestamper=timestamper,
                dry_run=dry_run,
                is_pdf_sig=is_pdf_sig,
            )
        # PAdES (EN 319 142-1 section 5.2.3) forbids the CMS signing-time attribute;
        # the claimed time is the dictionary's /M, the proven one the timestamp.
        message_digest = _der_tlv(
            0x30,
            bytes.fromhex("06092a864886f70d010904") + _der_tlv(0x31, _der_tlv(0x04, data_digest)),
        )
        attrs = sorted([self._content_type_attr, message_digest, self._ess_attr])
        return cms.CMSAttributes.load(_der_tlv(0x31, b"".join(attrs)))

    def _package_signature(
        self,
        *,
        digest_algorithm: str,
        cms_version: str,
        signed_attrs: cms.CMSAttributes,
        signature: bytes,
        unsigned_attrs: cms.CMSAttributes | None,
        encap_content_info: Any,
    ) -> cms.ContentInfo:
        if digest_algorithm != "sha256" or cms_version != "v1" or encap_content_info:
            return super()._package_signature(
                digest_algorithm=digest_algorithm,
                cms_version=cms_version,
                signed_attrs=signed_attrs,
                signature=signature,
                unsigned_attrs=unsigned_attrs,
                encap_content_info=encap_content_info,
            )
        # SignerInfo (RFC 5652 5.3): the attribute SETs travel as [0] / [1] IMPLICIT,
        # so only their tag byte changes.
        signed_der = b"\xa0" + _dump(signed_attrs)[1:]
        unsigned_der = b"\xa1" + _dump(unsigned_attrs)[1:] if unsigned_attrs else b""
        signer_info = _der_tlv(
            0x30,
            b"\x02\x01\x01"
            + self._sid_der
            + self._digest_algorithm_der
            + signed_der
            + self._signature_algorithm_der
            + _der_tlv(0x04, signature)
            + unsigned_der,
        )
        signed_data = _der_tlv(
            0x30,
            b"\x02\x01\x01"
            + _der_tlv(0x31, self._digest_algorithm_der)
            + bytes.fromhex("300b06092a864886f70d010701")  # encapContentInfo: id-data
            + self._certificates_der
            + _der_tlv(0x31, signer_info),
        )
        return cms.ContentInfo.load(
            _der_tlv(0x30, bytes.fromhex("06092a864886f70d010702") + _der_tlv(0xA0, signed_data))
        )


def _validation_context(
    trust_roots: Iterable[asn1_x509.Certificate],
    other_certs: Iterable[asn1_x509.Certificate],
    crls: Iterable[asn1_crl.CertificateList],
    *,
    require_revocation: bool,
    at: datetime | None = None,
) -> ValidationContext:
    return ValidationContext(
        trust_roots=list(trust_roots),
        other_certs=list(other_certs),
        crls=list(crls),
        allow_fetching=False,
        revocation_mode="require" if require_revocation else "soft-fail",
        moment=at,
    )


def _one_page_pdf() -> bytes:
    """A minimal valid one-page PDF (ISO 32000-1 7.5), written by hand so that the
    serving process never loads a PDF-generation library just to measure a seal."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class Sealer:
    """Applies the office's PAdES seal. Build one per process and share it.

    ``seal`` is CPU-bound (~20 ms); from async code run it in a worker thread, or
    await :meth:`seal_async` when the timestamper does network I/O.
    """

    def __init__(
        self,
        *,
        key: SealKey,
        cert: x509.Certificate,
        chain: Sequence[x509.Certificate],
        timestamper: TimeStamper,
        clock: Clock,
        crls: Sequence[x509.CertificateRevocationList] = (),
        trust_roots: Sequence[x509.Certificate] | None = None,
        field_name: str = SEAL_FIELD,
        reason: str = SEAL_REASON,
        location: str = SEAL_LOCATION,
    ) -> None:
        self._clock = clock
        self._timestamper = timestamper
        self._signer = _SealSigner(cert, key, chain)
        roots = list(trust_roots) if trust_roots else [c for c in chain if c.issuer == c.subject]
        if not roots:
            raise ConfigurationError("no trust anchor: give trust_roots or a chain ending in one")
        self._crls = [_to_asn1_crl(c) for c in crls]
        self._crls_valid_until = min(
            (c.next_update_utc for c in crls if c.next_update_utc is not None),
            default=None,
        )
        self._dss_certs = self._validate_configuration(
            roots=[to_asn1_cert(c) for c in roots], chain=[to_asn1_cert(c) for c in chain]
        )
        self._pdf_signer = signers.PdfSigner(
            signers.PdfSignatureMetadata(
                field_name=field_name,
                reason=reason,
                location=location,
                md_algorithm="sha256",
                subfilter=fields.SigSeedSubFilter.PADES,
            ),
            signer=self._signer,
            timestamper=timestamper,
        )
        self._bytes_reserved: int | None = None
        self._bytes_reserved = self._measure_reserve()

    # --- constructors --------------------------------------------------------------
    @classmethod
    def from_pkcs12(
        cls,
        path: Path,
        passphrase: bytes | None,
        timestamper: TimeStamper,
        *,
        clock: Clock,
        crls: Sequence[x509.CertificateRevocationList] = (),
        trust_roots: Sequence[x509.Certificate] | None = None,
    ) -> Sealer:
        """The production seal from a PKCS#12 file (key, certificate and chain)."""
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load the seal from {path}") from exc
        if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ConfigurationError(f"{path} holds no ECDSA or RSA key with its certificate")
        return cls(
            key=key,
            cert=cert,
            chain=extra,
            timestamper=timestamper,
            clock=clock,
            crls=crls,
            trust_roots=trust_roots,
        )

    @classmethod
    def from_test_pki(cls, pki: TestPki, *, clock: Clock) -> Sealer:
        """The embedded profile: test seal, in-process TSA, CRLs from the test PKI."""
        return cls(
            key=pki.seal_key,
            cert=pki.seal_cert,
            chain=pki.chain,
            timestamper=LocalTimeStamper.from_test_pki(pki, clock),
            clock=clock,
            crls=pki.crls,
        )

    # --- set-up ----------------------------------------------------------------------
    def _validate_configuration(
        self, *, roots: list[asn1_x509.Certificate], chain: list[asn1_x509.Certificate]
    ) -> list[asn1_x509.Certificate]:
        """Validate the seal and TSA paths once; return the certificates for the DSS."""
        # Validate at the vault's own time: the TSA and the test PKI follow that clock.
        context = _validation_context(
            roots, chain, self._crls, require_revocation=bool(self._crls), at=self._clock.now()
        )

        async def paths() -> list[asn1_x509.Certificate]:
            from pyhanko_certvalidator import CertificateValidator

            validator = CertificateValidator(self._signer.signing_cert, validation_context=context)
            seal_path = await validator.async_validate_usage({"non_repudiation"})  # type: ignore[no-untyped-call]
            certs = list(seal_path)
            async for tsa_path in self._timestamper.validation_paths(context):  # type: ignore[no-untyped-call]
                certs.extend(tsa_path)
            return certs

        try:
            certs = asyncio.run(paths())
        except Exception as exc:  # certvalidator/TSA errors of many types
            raise ConfigurationError(f"the seal configuration does not validate: {exc}") from exc
        unique: dict[bytes, asn1_x509.Certificate] = {c.sha256: c for c in certs}
        return list(unique.values())

    def _measure_reserve(self) -> int:
        """Seal a one-page PDF with pyHanko's own estimate; keep the real size."""
        sealed = self.seal(_one_page_pdf())
        signature = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
        # /Contents is zero-padded to pyHanko's generous estimate: measure the DER.
        der_size = len(_dump(cms.ContentInfo.load(signature.pkcs7_content, strict=False)))
        # bytes_reserved counts hex digits of /Contents: two per DER byte.
        return 2 * (der_size + _RESERVE_MARGIN)

    @property
    def level(self) -> str:
        """The PAdES baseline level the next seal will have: ``B-LT`` or ``B-T``."""
        return "B-LT" if self._dss_is_current() else "B-T"

    def _dss_is_current(self) -> bool:
        if not self._crls:
            return False
        return self._crls_valid_until is None or self._clock.now() < self._crls_valid_until

    # --- sealing -------------------------------------------------------------------------
    def _writer_for(self, stream: BinaryIO) -> IncrementalPdfFileWriter:
        try:
            writer = IncrementalPdfFileWriter(stream)
        except (PdfError, ValueError, KeyError, IndexError) as exc:
            raise InvalidPdf("the PDF cannot be sealed") from exc
        if writer.prev.encrypted:
            raise InvalidPdf("an encrypted PDF cannot be sealed")
        if self._dss_is_current():
            DocumentSecurityStore.supply_dss_in_writer(
                writer, None, certs=self._dss_certs, crls=self._crls
            )
        elif self._crls:
            log.warning("CRLs are past their nextUpdate: sealing at PAdES B-T only")
        return writer

    async def _sign_into(self, writer: IncrementalPdfFileWriter, output: BinaryIO) -> None:
        try:
            await self._pdf_signer.async_sign_pdf(
                writer, bytes_reserved=self._bytes_reserved, output=output
            )
        except SigningError as exc:
            raise ConfigurationError(f"sealing failed: {exc}") from exc
        except (PdfError, ValueError, KeyError, IndexError) as exc:
            raise InvalidPdf("the PDF cannot be sealed") from exc

    async def seal_async(self, pdf: bytes) -> bytes:
        """Seal ``pdf`` (validated beforehand with ``inspect_pdf``); return the new PDF."""
        output = io.BytesIO()
        await self._sign_into(self._writer_for(io.BytesIO(pdf)), output)
        return output.getvalue()

    async def seal_file_async(self, source: Path, out: Path) -> None:
        """Seal the PDF at ``source`` into ``out`` (created or truncated), streaming
        both files so that memory stays flat for large documents."""
        with source.open("rb") as inp, out.open("w+b") as output:
            writer = self._writer_for(inp)
            await self._sign_into(writer, output)

    def seal_file(self, source: Path, out: Path) -> None:
        """Synchronous :meth:`seal_file_async`; not for use inside a running event loop."""
        asyncio.run(self.seal_file_async(source, out))

    def seal(self, pdf: bytes) -> bytes:
        """Synchronous :meth:`seal_async`; not for use inside a running event loop."""
        return asyncio.run(self.seal_async(pdf))


# --- validation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SealReport:
    """What a verifier can say about the seal of one PDF."""

    field_name: str | None
    intact: bool
    """The signed byte ranges hash to the signed digest."""
    valid: bool
    """The signature value verifies with the signer's key."""
    trusted: bool
    """The signer's certificate chains to a given trust root, unrevoked."""
    covers_whole_file: bool
    """Nothing was appended after the seal."""
    signer_subject: str | None
    signing_time: datetime | None
    """Time claimed by the signer (/M); not proof of anything by itself."""
    timestamp_time: datetime | None
    """Time proven by the RFC 3161 signature timestamp."""
    timestamp_trusted: bool
    has_validation_data: bool
    """A DSS with revocation data is embedded (PAdES B-LT)."""
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.intact
            and self.valid
            and self.trusted
            and self.covers_whole_file
            and self.timestamp_trusted
        )

    @property
    def level(self) -> str | None:
        if not (self.intact and self.valid):
            return None
        if self.timestamp_time is None:
            return "B-B"
        return "B-LT" if self.has_validation_data else "B-T"

    def summary(self) -> str:
        def yes(flag: bool) -> str:
            return "yes" if flag else "NO"

        def when(at: datetime | None) -> str:
            return at.isoformat() if at else "-"

        lines = [
            f"seal field:            {self.field_name or '(none)'}",
            f"verdict:               {'VALID' if self.ok else 'NOT VALID'}",
            f"document intact:       {yes(self.intact)}",
            f"signature valid:       {yes(self.valid)}",
            f"signer trusted:        {yes(self.trusted)}",
            f"covers whole file:     {yes(self.covers_whole_file)}",
            f"signer:                {self.signer_subject or '-'}",
            f"claimed signing time:  {when(self.signing_time)}",
            f"timestamp time:        {when(self.timestamp_time)}",
            f"timestamp trusted:     {yes(self.timestamp_trusted)}",
            f"PAdES level:           {self.level or '-'}",
        ]
        if self.problem:
            lines.append(f"problem:               {self.problem}")
        return "\n".join(lines)


def _no_seal(field_name: str | None, problem: str) -> SealReport:
    return SealReport(
        field_name=field_name,
        intact=False,
        valid=False,
        trusted=False,
        covers_whole_file=False,
        signer_subject=None,
        signing_time=None,
        timestamp_time=None,
        timestamp_trusted=False,
        has_validation_data=False,
        problem=problem,
    )


def validate_seal(
    pdf: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    field_name: str = SEAL_FIELD,
    crls: Sequence[x509.CertificateRevocationList] = (),
    at: datetime | None = None,
) -> SealReport:
    """Validate the seal in ``pdf`` against ``trust_roots``, offline.

    Certificates and CRLs embedded in the DSS are used alongside ``crls``; nothing is
    fetched. Certificates are checked at ``at`` -- by default the current time, as a
    PDF reader does. Raises :class:`InvalidPdf` only if ``pdf`` cannot be read.
    """
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, IndexError) as exc:
        raise InvalidPdf("the file is not a readable PDF") from exc
    signature = next((s for s in signatures if s.field_name == field_name), None)
    if signature is None:
        return _no_seal(None, f"no signature field named {field_name!r}")

    try:
        dss: DocumentSecurityStore | None = DocumentSecurityStore.read_dss(reader)
    except ValidationInfoReadingError:
        dss = None
    kwargs: dict[str, Any] = {
        "trust_roots": [to_asn1_cert(c) for c in trust_roots],
        "crls": [_to_asn1_crl(c) for c in crls],
        "allow_fetching": False,
        "revocation_mode": "soft-fail",
        "moment": at.astimezone(UTC) if at else None,
    }
    context = dss.as_validation_context(kwargs) if dss is not None else ValidationContext(**kwargs)
    has_validation_data = dss is not None and len(list(dss.crls)) + len(list(dss.ocsps)) > 0

    try:
        status = validate_pdf_signature(signature, signer_validation_context=context)
    except Exception as exc:  # noqa: BLE001  # pyHanko raises many types; all mean "invalid"
        return _no_seal(field_name, f"validation failed: {exc}")

    ts = status.timestamp_validity
    return SealReport(
        field_name=field_name,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer_subject=status.signing_cert.subject.human_friendly,
        signing_time=status.signer_reported_dt,
        timestamp_time=ts.timestamp if ts is not None else None,
        timestamp_trusted=bool(ts is not None and ts.intact and ts.valid and ts.trusted),
        has_validation_data=has_validation_data,
    )
