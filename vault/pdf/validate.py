"""Input validation of posted PDFs, before anything else touches them (DESIGN.md 4.1).

A posted file is accepted only if all of these hold, checked in this order so that
the cheap checks run first and the size limit holds before any parsing:

1. its size is at most ``max_size`` bytes (else :class:`PayloadTooLarge`);
2. it starts with ``%PDF-`` (ISO 32000-1 section 7.5.2) and has ``%%EOF`` in its
   last KiB (section 7.5.5); a file cut short in transit fails here
   (:class:`InvalidPdf`);
3. qpdf opens it *without* recovery: a damaged cross-reference table that qpdf
   would silently reconstruct is refused, as is any qpdf warning, because a reader
   that reconstructs may display something other than what was sealed;
4. it is not encrypted, even with an empty user password (:class:`EncryptedPdf`):
   the seal and the ledger digest must cover bytes anyone can read;
5. pyHanko, which applies the seal, can read its cross-references;
6. it has at least one page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from vault.errors import EncryptedPdf, InvalidPdf, PayloadTooLarge

__all__ = ["PdfInfo", "inspect_pdf"]

_TRAILER_WINDOW = 1024


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    size: int


def _size_and_ends(source: bytes | Path, max_size: int) -> tuple[int, bytes, bytes]:
    """Size, first bytes and last KiB, without reading a file into memory."""
    if isinstance(source, bytes):
        return len(source), source[:8], source[-_TRAILER_WINDOW:]
    try:
        size = source.stat().st_size
        if size > max_size:
            raise PayloadTooLarge(f"the PDF is {size} bytes; the limit is {max_size}")
        with source.open("rb") as f:
            head = f.read(8)
            f.seek(max(0, size - _TRAILER_WINDOW))
            tail = f.read()
    except OSError as exc:
        raise InvalidPdf("the file cannot be read") from exc
    return size, head, tail


def inspect_pdf(source: bytes | Path, max_size: int) -> PdfInfo:
    """Check that ``source`` is a clean, unencrypted PDF of at most ``max_size`` bytes.

    A path is parsed straight from the file (qpdf and pyHanko read objects on demand),
    so memory stays flat for very large documents."""
    size, head, tail = _size_and_ends(source, max_size)
    if size > max_size:
        raise PayloadTooLarge(f"the PDF is {size} bytes; the limit is {max_size}")
    if not head.startswith(b"%PDF-"):
        raise InvalidPdf("the file is not a PDF (no %PDF- header)")
    if b"%%EOF" not in tail:
        raise InvalidPdf("the PDF is truncated (no %%EOF marker at its end)")

    try:
        opened = (
            pikepdf.open(source, attempt_recovery=False)
            if isinstance(source, Path)
            else pikepdf.open(io.BytesIO(source), attempt_recovery=False)
        )
        with opened as pdf:
            if pdf.is_encrypted:
                raise EncryptedPdf()
            pages = len(pdf.pages)
            warnings = pdf.get_warnings()
    except pikepdf.PasswordError as exc:
        raise EncryptedPdf() from exc
    except pikepdf.PdfError as exc:
        raise InvalidPdf("the PDF is damaged") from exc
    if warnings:
        raise InvalidPdf("the PDF is damaged", warnings=list(warnings)[:5])
    if pages < 1:
        raise InvalidPdf("the PDF has no page")

    try:
        with (source.open("rb") if isinstance(source, Path) else io.BytesIO(source)) as stream:
            reader = PdfFileReader(stream, strict=True)
            if reader.encrypted:  # pragma: no cover - qpdf refuses first
                raise EncryptedPdf()
    except OSError as exc:
        raise InvalidPdf("the file cannot be read") from exc
    except (PdfError, ValueError, KeyError, IndexError) as exc:
        raise InvalidPdf("the PDF cannot be sealed") from exc
    return PdfInfo(pages=pages, size=size)
