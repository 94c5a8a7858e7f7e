"""PAdES sealing (vault.pdf.seal), checked by pyHanko and independently by pdfsig."""

from __future__ import annotations

import asyncio
import io
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pikepdf
import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.pdf.conftest import make_pdf
from tests.support.services import require_tool
from vault.clock import FrozenClock, SystemClock
from vault.errors import ConfigurationError, InvalidPdf
from vault.pdf.pki import TestPki
from vault.pdf.seal import SEAL_FIELD, Sealer, validate_seal
from vault.tsa import LocalTimeStamper

TEXT = "Convocation a un entretien OFPRA"


def pdfsig(sealed: bytes, nss_db: str, tmp_path: Path) -> str:
    tool = require_tool("pdfsig")
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    result = subprocess.run(
        [tool, "-nssdir", nss_db, str(path)], capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr


# --- the happy path -------------------------------------------------------------------
def test_sealed_pdf_validates_at_pades_b_lt(sealer: Sealer, test_pki: TestPki) -> None:
    sealed = sealer.seal(make_pdf(TEXT))
    report = validate_seal(sealed, [test_pki.root_cert])
    assert report.ok, report.summary()
    assert report.level == "B-LT" and sealer.level == "B-LT"
    assert report.field_name == SEAL_FIELD
    assert report.signer_subject is not None and "NOT FOR PRODUCTION" in report.signer_subject
    assert report.timestamp_time is not None
    assert abs(report.timestamp_time - datetime.now(UTC)) < timedelta(minutes=5)
    assert "VALID" in report.summary()


def test_seal_is_one_incremental_update(sealer: Sealer) -> None:
    original = make_pdf(TEXT)
    sealed = sealer.seal(original)
    assert sealed.startswith(original)
    assert sealed.count(b"%%EOF") == original.count(b"%%EOF") + 1


def test_seal_metadata(sealer: Sealer) -> None:
    sealed = sealer.seal(make_pdf(TEXT))
    with pikepdf.open(io.BytesIO(sealed)) as pdf:
        field = next(f for f in pdf.Root.AcroForm.Fields if str(f.T) == SEAL_FIELD)
        assert str(field.V.SubFilter) == "/ETSI.CAdES.detached"
        assert "notification électronique OFPRA" in str(field.V.Reason)
        assert "/DSS" in pdf.Root
        assert len(pdf.Root.DSS.CRLs) == 2


def test_pdfsig_trusts_the_seal(sealer: Sealer, nss_db: str, tmp_path: Path) -> None:
    out = pdfsig(sealer.seal(make_pdf(TEXT)), nss_db, tmp_path)
    assert "Signature Field Name: OFPRA-Seal" in out
    assert "Signature is Valid." in out
    assert "Certificate is Trusted." in out
    assert "Total document signed" in out
    assert "ETSI.CAdES.detached" in out


def test_pdfsig_on_a_100kb_document(sealer: Sealer, nss_db: str, tmp_path: Path) -> None:
    pdf = make_pdf(TEXT, pad_to=100_000)
    assert len(pdf) >= 100_000
    out = pdfsig(sealer.seal(pdf), nss_db, tmp_path)
    assert "Signature is Valid." in out and "Certificate is Trusted." in out


def test_seal_async_inside_an_event_loop(sealer: Sealer, test_pki: TestPki) -> None:
    async def post() -> bytes:
        return await sealer.seal_async(make_pdf(TEXT))

    assert validate_seal(asyncio.run(post()), [test_pki.root_cert]).ok


# --- tampering -------------------------------------------------------------------------
def test_content_tampering_breaks_the_seal(
    sealer: Sealer, test_pki: TestPki, nss_db: str, tmp_path: Path
) -> None:
    sealed = sealer.seal(make_pdf(TEXT))
    forged = sealed.replace(b"entretien", b"ENTRETIEN")
    assert forged != sealed
    report = validate_seal(forged, [test_pki.root_cert])
    assert not report.intact and not report.ok
    assert "NOT VALID" in report.summary()
    assert "Signature is Valid." not in pdfsig(forged, nss_db, tmp_path)


def test_incremental_update_after_seal_is_detected(sealer: Sealer, test_pki: TestPki) -> None:
    """Shadow attack family: content appended after the signed revision."""
    sealed = sealer.seal(make_pdf(TEXT))
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Rotate"] = generic.NumberObject(90)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    report = validate_seal(out.getvalue(), [test_pki.root_cert])
    assert report.intact and report.valid  # the signed revision itself is untouched
    assert not report.covers_whole_file
    assert not report.ok


def test_impostor_root_is_not_trusted(sealer: Sealer, other_pki: TestPki) -> None:
    report = validate_seal(sealer.seal(make_pdf(TEXT)), [other_pki.root_cert])
    assert report.intact and report.valid
    assert not report.trusted and not report.ok


def test_seal_made_by_an_impostor_is_not_trusted(test_pki: TestPki, other_pki: TestPki) -> None:
    impostor = Sealer.from_test_pki(other_pki, clock=SystemClock())
    report = validate_seal(impostor.seal(make_pdf(TEXT)), [test_pki.root_cert])
    assert not report.trusted and not report.timestamp_trusted and not report.ok


def test_unsealed_pdf_reports_no_seal(test_pki: TestPki) -> None:
    report = validate_seal(make_pdf(TEXT), [test_pki.root_cert])
    assert not report.ok and report.field_name is None and report.problem


def test_validate_garbage_raises_invalid_pdf(test_pki: TestPki) -> None:
    with pytest.raises(InvalidPdf):
        validate_seal(b"not a pdf", [test_pki.root_cert])


# --- levels and configuration ------------------------------------------------------------
def test_without_crls_the_seal_is_b_t(test_pki: TestPki) -> None:
    clock = SystemClock()
    sealer = Sealer(
        key=test_pki.seal_key,
        cert=test_pki.seal_cert,
        chain=test_pki.chain,
        timestamper=LocalTimeStamper.from_test_pki(test_pki, clock),
        clock=clock,
    )
    assert sealer.level == "B-T"
    report = validate_seal(sealer.seal(make_pdf(TEXT)), [test_pki.root_cert])
    assert report.ok and report.level == "B-T"


def test_stale_crls_degrade_to_b_t(test_pki: TestPki) -> None:
    clock = FrozenClock(datetime.now(UTC))
    sealer = Sealer.from_test_pki(test_pki, clock=clock)
    assert sealer.level == "B-LT"
    clock.advance(timedelta(days=31))
    assert sealer.level == "B-T"
    sealed = sealer.seal(make_pdf(TEXT))
    assert validate_seal(sealed, [test_pki.root_cert]).level == "B-T"


def test_mismatched_key_is_a_configuration_error(test_pki: TestPki) -> None:
    with pytest.raises(ConfigurationError):
        Sealer(
            key=test_pki.tsa_key,
            cert=test_pki.seal_cert,
            chain=test_pki.chain,
            timestamper=LocalTimeStamper.from_test_pki(test_pki, SystemClock()),
            clock=SystemClock(),
        )


def test_tsa_without_timestamping_eku_is_refused_at_start_up(test_pki: TestPki) -> None:
    clock = SystemClock()
    not_a_tsa = LocalTimeStamper(test_pki.seal_cert, test_pki.seal_key, test_pki.chain, clock)
    with pytest.raises(ConfigurationError):
        Sealer(
            key=test_pki.seal_key,
            cert=test_pki.seal_cert,
            chain=test_pki.chain,
            timestamper=not_a_tsa,
            clock=clock,
            crls=test_pki.crls,
        )


def test_from_pkcs12(test_pki: TestPki, tmp_path: Path) -> None:
    p12 = tmp_path / "seal.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"seal",
            test_pki.seal_key,
            test_pki.seal_cert,
            list(test_pki.chain),
            BestAvailableEncryption(b"correct horse"),
        )
    )
    clock = SystemClock()
    tsa = LocalTimeStamper.from_test_pki(test_pki, clock)
    sealer = Sealer.from_pkcs12(p12, b"correct horse", tsa, clock=clock, crls=test_pki.crls)
    assert validate_seal(sealer.seal(make_pdf(TEXT)), [test_pki.root_cert]).ok
    with pytest.raises(ConfigurationError):
        Sealer.from_pkcs12(p12, b"wrong", tsa, clock=clock)


def test_encrypted_input_is_refused(sealer: Sealer) -> None:
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(make_pdf(TEXT))) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(owner="o", user="", R=6))
    with pytest.raises(InvalidPdf):
        sealer.seal(out.getvalue())


def test_garbage_input_is_refused(sealer: Sealer) -> None:
    with pytest.raises(InvalidPdf):
        sealer.seal(b"%PDF-1.7\nnothing here\n%%EOF\n")


def test_signing_time_is_not_in_the_cms(sealer: Sealer) -> None:
    """PAdES baseline (EN 319 142-1 5.2.3) forbids the CMS signing-time attribute."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    sealed = sealer.seal(make_pdf(TEXT))
    signature = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
    types = {a["type"].native for a in signature.signer_info["signed_attrs"]}
    assert types == {"content_type", "message_digest", "signing_certificate_v2"}
    unsigned = {a["type"].native for a in signature.signer_info["unsigned_attrs"]}
    assert unsigned == {"signature_time_stamp_token"}


def test_seal_file_streams_to_disk(sealer: Sealer, test_pki: TestPki, tmp_path: Path) -> None:
    source, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    source.write_bytes(make_pdf(TEXT, pad_to=50_000))
    sealer.seal_file(source, out)
    sealed = out.read_bytes()
    assert sealed.startswith(source.read_bytes())
    assert validate_seal(sealed, [test_pki.root_cert]).ok
