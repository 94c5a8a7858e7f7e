"""The GUDA notice: the applicant's credentials, printed at registration (issue 5 §2).

It carries the AGDREF number, the connection key, and how and when to connect: within
24 hours of registration, then at any time until the account is closed (seed FAQ).
It is in French and, when known and different, in the applicant's language too
(English and Arabic for now). Arabic is shaped and laid out right to left by
HarfBuzz (fpdf2 text shaping, ``uharfbuzz``) with DejaVu Sans, shipped in
``vault/pdf/fonts`` (Bitstream Vera / DejaVu licence, see the file beside it).

The notice exists only until the first connection: afterwards the key must not be
printed again (it would be a second copy of a credential in circulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from vault.crypto.keys import open_secret
from vault.db.models import Account
from vault.errors import VaultError

FONT = "DejaVuSans.ttf"
RTL_LANGUAGES = frozenset({"ar"})


class NoticeUnavailable(VaultError):
    code = "notice_unavailable"
    status = 410
    title = "The notice is no longer available: the first connection has been made"


@dataclass(frozen=True)
class NoticeText:
    title: str
    intro: str
    identifier: str
    key: str
    when: str
    where: str
    keep: str


TEXTS: dict[str, NoticeText] = {
    "fr": NoticeText(
        title="Notice de connexion à votre espace numérique personnel sécurisé",
        intro="L'OFPRA vous notifie ses convocations et ses décisions dans cet espace "
        "(article R.531-17 du CESEDA).",
        identifier="Identifiant (numéro AGDREF)",
        key="Clé de connexion",
        when="Connectez-vous dans les 24 heures, puis à tout moment, au moins tous les "
        "15 jours. La première connexion reste possible jusqu'à la clôture du compte.",
        where="Adresse du portail",
        keep="Gardez cette clé : elle sert à la première connexion et à retrouver un "
        "mot de passe perdu. Ne la communiquez à personne.",
    ),
    "en": NoticeText(
        title="How to connect to your secure personal digital space",
        intro="OFPRA notifies you of its interview notices and decisions in this space.",
        identifier="Identifier (AGDREF number)",
        key="Connection key",
        when="Connect within 24 hours, then at any time, at least every 15 days. The "
        "first connection remains possible until the account is closed.",
        where="Portal address",
        keep="Keep this key: you need it for the first connection and to reset a lost "
        "password. Do not share it with anyone.",
    ),
    "ar": NoticeText(
        title="كيفية الدخول إلى فضائك الرقمي الشخصي الآمن",
        intro="يبلغك المكتب الفرنسي لحماية اللاجئين وعديمي الجنسية باستدعاءاته وقراراته "
        "في هذا الفضاء.",
        identifier="المعرّف (رقم AGDREF)",
        key="مفتاح الدخول",
        when="ادخل خلال 24 ساعة، ثم في أي وقت، مرة كل 15 يوما على الأقل. يبقى الدخول الأول "
        "ممكنا حتى إغلاق الحساب.",
        where="عنوان البوابة",
        keep="احتفظ بهذا المفتاح: تحتاجه للدخول الأول ولاستعادة كلمة مرور مفقودة. لا تعطه لأحد.",
    ),
}


def notice_languages(language: str | None) -> list[str]:
    """French always; the applicant's language too when we have it and it differs."""
    base = (language or "fr").split("-")[0].lower()
    return ["fr"] + ([base] if base != "fr" and base in TEXTS else [])


def _font_path() -> str:
    return str(resources.files("vault").joinpath("pdf/fonts/" + FONT))


def render_notice(
    *, agdref: str, connection_key: str, portal_url: str, language: str | None
) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title("Notice")
    pdf.set_creator("ofpra-vault")
    pdf.add_font("dejavu", "", _font_path())
    for lang in notice_languages(language):
        t = TEXTS[lang]
        pdf.add_page()
        rtl = lang in RTL_LANGUAGES
        if rtl:
            pdf.set_text_shaping(
                use_shaping_engine=True, direction="rtl", script="arab", language="ara"
            )
        else:
            pdf.set_text_shaping(use_shaping_engine=True, direction="ltr")
        align = "R" if rtl else "L"
        pdf.set_font("dejavu", size=15)
        pdf.multi_cell(0, 9, t.title, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        pdf.set_font("dejavu", size=11)
        pdf.multi_cell(0, 6, t.intro, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        for label, value in ((t.identifier, agdref), (t.key, connection_key)):
            pdf.set_font("dejavu", size=11)
            pdf.multi_cell(0, 7, label, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            # Values are Latin digits/letters: always left to right, large, monospaced
            # spacing is not needed thanks to the unambiguous alphabet.
            pdf.set_text_shaping(use_shaping_engine=True, direction="ltr")
            pdf.set_font("dejavu", size=20)
            pdf.multi_cell(0, 11, value, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            if rtl:
                pdf.set_text_shaping(
                    use_shaping_engine=True, direction="rtl", script="arab", language="ara"
                )
        pdf.ln(4)
        pdf.set_font("dejavu", size=11)
        pdf.multi_cell(0, 6, t.when, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        pdf.multi_cell(0, 6, t.where, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_shaping(use_shaping_engine=True, direction="ltr")
        pdf.set_font("dejavu", size=13)
        pdf.multi_cell(0, 8, portal_url, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if rtl:
            pdf.set_text_shaping(
                use_shaping_engine=True, direction="rtl", script="arab", language="ara"
            )
        pdf.ln(2)
        pdf.set_font("dejavu", size=11)
        pdf.multi_cell(0, 6, t.keep, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def notice_for_account(keyring: object, acc: Account, portal_url: str) -> bytes:
    """The notice of ``acc``; :class:`NoticeUnavailable` once it has connected."""
    from vault.accounts import CONNECTION_KEY_PURPOSE
    from vault.crypto.keys import KeyRing

    assert isinstance(keyring, KeyRing)
    if acc.status != "awaiting_first_connection":
        raise NoticeUnavailable()
    key = open_secret(keyring, acc.connection_key_sealed, CONNECTION_KEY_PURPOSE, acc.id)
    return render_notice(
        agdref=acc.agdref,
        connection_key=key.decode(),
        portal_url=portal_url,
        language=acc.language,
    )
