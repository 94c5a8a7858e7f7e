"""Catalogues: complete in every language; language choice order."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from api import i18n

ROOT = Path(__file__).resolve().parents[2]


def _extracted() -> set[str]:
    method_map = [("api/pages/**.py", "python"), ("api/templates/**.html", "jinja2")]
    ids: set[str] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map=method_map, keywords={"_": None, "N_": None}
    ):
        if isinstance(message, str) and message:
            ids.add(message)
    return ids


def test_every_message_is_translated_in_every_language() -> None:
    ids = _extracted()
    assert len(ids) > 150
    assert set(i18n.available_languages()) >= {"fr", "en", "ar"}
    for code in i18n.available_languages():
        lang = i18n.language(code)
        cat = lang.translations._catalog  # the compiled catalogue
        missing = sorted(m for m in ids if not cat.get(m))
        assert not missing, f"{code}: untranslated {missing[:5]}"


def test_arabic_is_right_to_left_and_named_in_arabic() -> None:
    ar = i18n.language("ar")
    assert ar.direction == "rtl" and ar.name == "العربية"
    assert i18n.language("fr").direction == "ltr"


def test_accept_language_picks_the_best_available() -> None:
    assert i18n.from_accept_language("de-DE,ar;q=0.8,en;q=0.5") == "ar"
    assert i18n.from_accept_language("en-GB;q=0.3, fr;q=0.9") == "fr"
    assert i18n.from_accept_language("de, es") is None
    assert i18n.from_accept_language("ar;q=0") is None
