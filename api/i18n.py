"""Languages of the pages: gettext catalogues loaded with Babel.

Each language is a directory ``api/locales/<code>/LC_MESSAGES/messages.po``; adding a
language means adding a catalogue, nothing else (its direction comes from the CLDR
data in Babel). Catalogues are compiled in memory at first use, so a fresh clone
needs no build step and no ``.mo`` file is committed.

Message ids are the English sentences; the English catalogue is complete too so
the completeness test treats every language alike.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "fr"  # the office's language (Constitution art. 2)


@functools.cache
def available_languages() -> tuple[str, ...]:
    found = sorted(p.parent.parent.name for p in LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))
    # French first: it is the default and the legal reference text.
    return tuple(sorted(found, key=lambda c: (c != DEFAULT_LANGUAGE, c)))


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # the language's own name, for the switcher
    direction: str  # "ltr" or "rtl"
    translations: Translations

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)


@functools.cache
def language(code: str) -> Language:
    if code not in available_languages():
        code = DEFAULT_LANGUAGE
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=code)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    loc = Locale.parse(code)
    name = loc.get_display_name(loc) or code
    return Language(
        code=code,
        name=name[:1].upper() + name[1:],
        direction="rtl" if loc.character_order == "right-to-left" else "ltr",
        translations=Translations(buf),
    )


def normalize(code: str | None) -> str | None:
    """``"en-GB"`` -> ``"en"`` if available, else None."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if base in available_languages() else None


def from_accept_language(header: str | None) -> str | None:
    """The best available language of an Accept-Language header (RFC 9110 §12.5.4)."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        code = normalize(tag)
        if code and q > 0:
            ranked.append((-q, i, code))
    return min(ranked)[2] if ranked else None
