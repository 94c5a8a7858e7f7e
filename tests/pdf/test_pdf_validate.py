"""Input validation of posted PDFs (vault.pdf.validate)."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest

from tests.pdf.conftest import make_pdf
from vault.errors import EncryptedPdf, InvalidPdf, PayloadTooLarge
from vault.pdf.validate import PdfInfo, inspect_pdf

LIMIT = 10 * 1024 * 1024


def encrypt(pdf: bytes, *, user: str) -> bytes:
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.save(out, encryption=pikepdf.Encryption(owner="owner-secret", user=user, R=6))
    return out.getvalue()


def test_valid_pdf() -> None:
    pdf = make_pdf()
    assert inspect_pdf(pdf, LIMIT) == PdfInfo(pages=1, size=len(pdf))


def test_valid_pdf_from_path(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(make_pdf())
    assert inspect_pdf(path, LIMIT).pages == 1


def test_not_a_pdf() -> None:
    with pytest.raises(InvalidPdf) as caught:
        inspect_pdf(b"GIF89a" + b"\0" * 100, LIMIT)
    assert caught.value.code == "invalid_pdf"


def test_html_renamed_to_pdf() -> None:
    with pytest.raises(InvalidPdf):
        inspect_pdf(b"<html><body>%PDF-1.7</body></html>", LIMIT)


def test_empty_body() -> None:
    with pytest.raises(InvalidPdf):
        inspect_pdf(b"", LIMIT)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9, 0.99])
def test_truncated_upload(fraction: float) -> None:
    pdf = make_pdf()
    with pytest.raises(InvalidPdf) as caught:
        inspect_pdf(pdf[: int(len(pdf) * fraction)], LIMIT)
    assert caught.value.code == "invalid_pdf"


def test_broken_xref_is_not_silently_reconstructed() -> None:
    """qpdf would rebuild the table and carry on; we refuse instead."""
    pdf = bytearray(make_pdf())
    xref = pdf.rindex(b"\nxref")
    entry = pdf.index(b" 00000 n", xref)
    pdf[entry - 10 : entry] = b"9999999999"  # first in-use offset points nowhere
    with pytest.raises(InvalidPdf):
        inspect_pdf(bytes(pdf), LIMIT)


def test_wrong_startxref_is_refused() -> None:
    pdf = make_pdf()
    head, _, tail = pdf.rpartition(b"startxref\n")
    offset, _, rest = tail.partition(b"\n")
    bad = head + b"startxref\n" + str(int(offset) + 7).encode() + b"\n" + rest
    with pytest.raises(InvalidPdf):
        inspect_pdf(bad, LIMIT)


def test_garbage_body_with_pdf_markers() -> None:
    with pytest.raises(InvalidPdf):
        inspect_pdf(b"%PDF-1.7\n" + b"\x00garbage" * 50 + b"\n%%EOF\n", LIMIT)


def test_encrypted_with_empty_user_password() -> None:
    """Opens without a password in any reader, but is still refused."""
    with pytest.raises(EncryptedPdf) as caught:
        inspect_pdf(encrypt(make_pdf(), user=""), LIMIT)
    assert caught.value.code == "encrypted_pdf"
    assert isinstance(caught.value, InvalidPdf)


def test_encrypted_with_user_password() -> None:
    with pytest.raises(EncryptedPdf):
        inspect_pdf(encrypt(make_pdf(), user="secret"), LIMIT)


def test_oversized_bytes() -> None:
    pdf = make_pdf()
    with pytest.raises(PayloadTooLarge) as caught:
        inspect_pdf(pdf, len(pdf) - 1)
    assert caught.value.code == "payload_too_large"
    assert inspect_pdf(pdf, len(pdf)).size == len(pdf)


def test_oversized_path_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"0" * 4096)
    with pytest.raises(PayloadTooLarge):
        inspect_pdf(path, 1024)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidPdf):
        inspect_pdf(tmp_path / "absent.pdf", LIMIT)
