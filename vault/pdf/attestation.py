"""The "Attestation de notification" PDF (issue 4 item 6), French then English.

It states, for one document: its making available (``POSTED``), the alerts sent, the
first access, the notification date and its basis (CESEDA R.531-17), the CNDA appeal
deadline (CESEDA L.532-1) with the legal-aid caveat (loi 91-647 art. 9-4), the ledger
indexes of every entry, the checkpoint (size and root hash) that includes them, and
the SHA-256 of the ``proof.json`` it was issued with. It draws the timeline as a
picture with fpdf2 primitives (lines, markers, labels).

The PDF is rendered here and sealed by the caller; the sealed bytes are what binds
``proof.json`` (``Keywords`` carries ``proof-sha256:<hex>`` in clear ASCII so the
offline verifier can read it after checking the seal).

Nothing personal appears: no name, AGDREF or OFPRA number, only the document id
and hashes, so the attestation can be handed to anyone the applicant chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF

__all__ = ["AttestationData", "TimelineEvent", "render_attestation"]

_FONT = Path(__file__).parent / "fonts" / "DejaVuSans.ttf"
_PARIS = ZoneInfo("Europe/Paris")

PROOF_KEYWORD_PREFIX = "proof-sha256:"


@dataclass(frozen=True)
class TimelineEvent:
    kind: str  # POSTED, ALERT_SENT, FIRST_ACCESS, NOTIFIED, APPEAL_DEADLINE
    at: datetime
    index: int | None
    label_fr: str
    label_en: str


@dataclass(frozen=True)
class AttestationData:
    document_id: str
    document_type: str
    document_sha256: str
    made_available_at: datetime
    first_access_at: datetime | None
    notified_on: date | None
    notified_basis: str | None
    notification_rule: str | None
    appeal_deadline: date | None
    appeal_rule: str | None
    caveat_fr: str
    caveat_en: str
    checkpoint_size: int
    checkpoint_root_hex: str
    log_origin: str
    proof_sha256: str
    issued_at: datetime
    events: list[TimelineEvent] = field(default_factory=list)


def _paris(at: datetime) -> str:
    return at.astimezone(_PARIS).strftime("%d/%m/%Y %H:%M:%S") + " (Paris)"


def _paris_en(at: datetime) -> str:
    return at.astimezone(_PARIS).strftime("%Y-%m-%d %H:%M:%S") + " (Paris time)"


def _fr_date(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "—"


def _en_date(d: date | None) -> str:
    return d.isoformat() if d else "—"


_BASIS = {
    "first_access": ("première consultation", "first consultation"),
    "delay_expired": (
        "expiration du délai de quinze jours sans consultation",
        "fifteen-day delay expired without consultation",
    ),
}


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("dejavu", size=7)
        self.set_text_color(110)
        self.cell(
            0,
            5,
            f"OFPRA — attestation de notification / notification certificate — "
            f"{self.page_no()}/{{nb}}",
            align="C",
        )
        self.set_text_color(0)


def render_attestation(data: AttestationData) -> bytes:
    """The unsealed attestation PDF."""
    pdf = _Pdf(format="A4")
    pdf.add_font("dejavu", fname=str(_FONT))
    pdf.set_title("Attestation de notification / Notification certificate")
    pdf.set_author("OFPRA")
    pdf.set_subject(f"document {data.document_id}")
    pdf.set_keywords(f"{PROOF_KEYWORD_PREFIX}{data.proof_sha256}")
    pdf.set_creation_date(data.issued_at.astimezone(UTC))
    pdf.set_auto_page_break(True, margin=16)
    pdf.alias_nb_pages()
    _french(pdf, data)
    _english(pdf, data)
    return bytes(pdf.output())


def _heading(pdf: FPDF, text: str, size: int = 15) -> None:
    pdf.set_font("dejavu", size=size)
    pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _row(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("dejavu", size=9)
    pdf.set_text_color(80)
    pdf.cell(62, 5.5, label)
    pdf.set_text_color(0)
    pdf.multi_cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT")


def _para(pdf: FPDF, text: str, size: int = 9) -> None:
    pdf.set_font("dejavu", size=size)
    pdf.multi_cell(0, 4.8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)


def _french(pdf: FPDF, d: AttestationData) -> None:
    pdf.add_page()
    _heading(pdf, "Attestation de notification")
    _para(
        pdf,
        "L'Office français de protection des réfugiés et apatrides atteste, sur la foi de "
        "son journal de preuve (registre Merkle en ajout seul, RFC 9162), les faits "
        "suivants concernant le document ci-dessous, mis à disposition dans l'espace "
        "personnel sécurisé du demandeur (CESEDA, art. R.531-17).",
    )
    _row(pdf, "Document", d.document_id)
    _row(pdf, "Type", d.document_type)
    _row(pdf, "Empreinte SHA-256 (PDF scellé)", d.document_sha256)
    _row(pdf, "Mise à disposition", _paris(d.made_available_at))
    for e in d.events:
        if e.kind == "ALERT_SENT":
            _row(pdf, "Alerte", f"{_paris(e.at)} — {e.label_fr} (entrée {e.index})")
    _row(
        pdf,
        "Première consultation",
        _paris(d.first_access_at) if d.first_access_at else "aucune à ce jour",
    )
    basis = _BASIS.get(d.notified_basis or "", ("—", "—"))[0]
    _row(
        pdf,
        "Date de notification",
        f"{_fr_date(d.notified_on)} — {basis}" if d.notified_on else "pas encore notifié",
    )
    _row(pdf, "Règle appliquée", d.notification_rule or "—")
    _row(pdf, "Date limite de recours CNDA", _fr_date(d.appeal_deadline))
    _row(pdf, "Règle de délai", d.appeal_rule or "—")
    pdf.ln(1)
    _para(pdf, d.caveat_fr, size=8)
    _timeline(pdf, d, lang="fr")
    _heading(pdf, "Journal de preuve", size=11)
    for e in d.events:
        if e.index is not None:
            _row(pdf, f"Entrée n° {e.index}", f"{e.kind} — {_paris(e.at)}")
    _row(pdf, "Journal", d.log_origin)
    _row(pdf, "Point de contrôle", f"taille {d.checkpoint_size}")
    _row(pdf, "Racine (SHA-256)", d.checkpoint_root_hex)
    _row(pdf, "proof.json (SHA-256)", d.proof_sha256)
    _row(pdf, "Délivrée le", _paris(d.issued_at))
    _para(
        pdf,
        "Vérification : ofpra-vault proof verify FICHIER.zip, ou l'outil autonome "
        "tools/verify_proof.py ; le format est décrit dans docs/proof-format.md. Ce "
        "document est scellé (PAdES) par l'Office.",
        size=8,
    )


def _english(pdf: FPDF, d: AttestationData) -> None:
    pdf.add_page()
    _heading(pdf, "Notification certificate (English version)")
    _para(
        pdf,
        "The French Office for the Protection of Refugees and Stateless Persons certifies, "
        "on the strength of its proof ledger (append-only Merkle log, RFC 9162), the "
        "following facts about the document below, made available in the applicant's "
        "secure personal space (CESEDA art. R.531-17). The French version prevails.",
    )
    _row(pdf, "Document", d.document_id)
    _row(pdf, "Type", d.document_type)
    _row(pdf, "SHA-256 (sealed PDF)", d.document_sha256)
    _row(pdf, "Made available", _paris_en(d.made_available_at))
    for e in d.events:
        if e.kind == "ALERT_SENT":
            _row(pdf, "Alert", f"{_paris_en(e.at)} — {e.label_en} (entry {e.index})")
    _row(
        pdf,
        "First consultation",
        _paris_en(d.first_access_at) if d.first_access_at else "none so far",
    )
    basis = _BASIS.get(d.notified_basis or "", ("—", "—"))[1]
    _row(
        pdf,
        "Notification date",
        f"{_en_date(d.notified_on)} — {basis}" if d.notified_on else "not notified yet",
    )
    _row(pdf, "Rule applied", d.notification_rule or "—")
    _row(pdf, "CNDA appeal deadline", _en_date(d.appeal_deadline))
    _row(pdf, "Deadline rule", d.appeal_rule or "—")
    pdf.ln(1)
    _para(pdf, d.caveat_en, size=8)
    _timeline(pdf, d, lang="en")
    _heading(pdf, "Proof ledger", size=11)
    for e in d.events:
        if e.index is not None:
            _row(pdf, f"Entry #{e.index}", f"{e.kind} — {_paris_en(e.at)}")
    _row(pdf, "Log", d.log_origin)
    _row(pdf, "Checkpoint", f"size {d.checkpoint_size}")
    _row(pdf, "Root (SHA-256)", d.checkpoint_root_hex)
    _row(pdf, "proof.json (SHA-256)", d.proof_sha256)
    _row(pdf, "Issued", _paris_en(d.issued_at))


_COLOURS = {
    "POSTED": (30, 90, 200),
    "ALERT_SENT": (230, 140, 20),
    "FIRST_ACCESS": (20, 150, 60),
    "NOTIFIED": (200, 30, 30),
    "APPEAL_DEADLINE": (110, 30, 160),
}


def _timeline(pdf: FPDF, d: AttestationData, *, lang: str) -> None:
    """A horizontal time axis with one coloured marker and label per event."""
    events = [e for e in d.events if e.kind != "APPEAL_DEADLINE"]
    marks: list[tuple[str, datetime, str]] = []
    for e in events:
        label = e.label_fr if lang == "fr" else e.label_en
        marks.append((e.kind, e.at, label))
    if d.appeal_deadline is not None:
        end = datetime.combine(d.appeal_deadline, time(23, 59), tzinfo=_PARIS)
        marks.append(
            ("APPEAL_DEADLINE", end, "Limite recours CNDA" if lang == "fr" else "CNDA appeal limit")
        )
    if not marks:
        return
    pdf.ln(2)
    pdf.set_font("dejavu", size=11)
    pdf.cell(0, 7, "Chronologie" if lang == "fr" else "Timeline", new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y()
    height = 70
    if top + height > pdf.h - 20:
        pdf.add_page()
        top = pdf.get_y()
    x0, x1 = pdf.l_margin + 8, pdf.w - pdf.r_margin - 8
    axis_y = top + height / 2
    t0 = min(m[1] for m in marks).astimezone(UTC)
    t1 = max(m[1] for m in marks).astimezone(UTC)
    span = max((t1 - t0).total_seconds(), 1.0)

    def xpos(at: datetime) -> float:
        return x0 + (x1 - x0) * (at.astimezone(UTC) - t0).total_seconds() / span

    pdf.set_draw_color(60)
    pdf.set_line_width(0.6)
    pdf.line(x0 - 4, axis_y, x1 + 4, axis_y)
    # Arrow head: time flows to the right.
    pdf.line(x1 + 4, axis_y, x1 + 1, axis_y - 1.5)
    pdf.line(x1 + 4, axis_y, x1 + 1, axis_y + 1.5)
    # Day ticks (at most ~40 to stay legible).
    days = (t1.date() - t0.date()).days
    step = max(1, days // 40 + 1)
    pdf.set_line_width(0.2)
    tick = datetime.combine(t0.astimezone(_PARIS).date(), time(0), tzinfo=_PARIS)
    while tick <= t1:
        if tick >= t0:
            x = xpos(tick)
            pdf.line(x, axis_y - 1, x, axis_y + 1)
        tick = datetime.combine(
            date.fromordinal(tick.date().toordinal() + step), time(0), tzinfo=_PARIS
        )
    pdf.set_font("dejavu", size=6.5)
    last_x = {1: -1e9, -1: -1e9}
    level = {1: 0, -1: 0}
    for i, (kind, at, label) in enumerate(sorted(marks, key=lambda m: m[1])):
        x = xpos(at)
        r, g, b = _COLOURS.get(kind, (0, 0, 0))
        side = 1 if i % 2 == 0 else -1  # alternate above / below the axis
        level[side] = level[side] + 1 if x - last_x[side] < 30 else 0
        last_x[side] = x
        stem = 7 + 8 * (level[side] % 3)
        pdf.set_draw_color(r, g, b)
        pdf.set_fill_color(r, g, b)
        pdf.set_line_width(0.3)
        y_end = axis_y - side * stem
        pdf.line(x, axis_y, x, y_end)
        pdf.ellipse(x - 1.6, axis_y - 1.6, 3.2, 3.2, style="F")
        stamp = at.astimezone(_PARIS).strftime("%d/%m %H:%M" if lang == "fr" else "%m-%d %H:%M")
        if kind == "NOTIFIED" and d.notified_basis == "delay_expired" and d.notified_on:
            # The deemed instant is the midnight that ENDS the legal day: show 24:00.
            stamp = d.notified_on.strftime("%d/%m 24:00" if lang == "fr" else "%m-%d 24:00")
        text_w = max(pdf.get_string_width(label), pdf.get_string_width(stamp)) + 1
        tx = min(max(x - text_w / 2, pdf.l_margin), pdf.w - pdf.r_margin - text_w)
        pdf.set_text_color(r, g, b)
        ty = y_end - 7 if side == 1 else y_end + 0.5
        pdf.set_xy(tx, ty)
        pdf.cell(text_w, 3.2, label, align="C")
        pdf.set_xy(tx, ty + 3.2)
        pdf.cell(text_w, 3.2, stamp, align="C")
    pdf.set_text_color(0)
    pdf.set_draw_color(0)
    pdf.set_y(top + height + 2)
