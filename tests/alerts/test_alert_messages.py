"""Rendering of alert messages: languages, parts, what may and may not be said."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import jinja2
import jinja2.meta
import markupsafe
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.alerts.conftest import PORTAL
from vault.alerts.messages import (
    SUPPORTED_LANGUAGES,
    TEMPLATES_DIR,
    gsm7_length,
    message_digest,
    render,
    resolve_language,
    sms_segments,
    validate,
)
from vault.errors import InvalidInput

# A realistic production-length portal address for SMS length checks.
LONG_PORTAL = "https://espace-personnel.ofpra.gouv.fr"

APPLICANT_KINDS: dict[str, dict[str, Any]] = {
    "document_available": {},
    "reminder": {},
    "key_recovery": {"connection_key": "K7Q2-9XZA-4MPD"},
    "contact_confirmation": {"contact_kind": "phone"},
}

ACK: dict[str, Any] = {
    "document_reference": "DOC-2026-000123",
    "document_type": "Décision de rejet",
    "ofpra_number": "2026-01-004567",
    "made_available_at": datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    "first_consulted_at": datetime(2026, 3, 3, 17, 5, tzinfo=UTC),
    "notification_date": date(2026, 3, 3),
    "notification_basis": "first_consultation",
    "rule_version": "r531-17/2026-01",
}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", sorted(APPLICANT_KINDS))
def test_every_applicant_kind_renders_in_every_language(kind: str, language: str) -> None:
    message = render(kind, language, portal_url=PORTAL, **APPLICANT_KINDS[kind])
    assert message.language == language
    assert message.subject and "\n" not in message.subject
    assert PORTAL in message.text
    assert f'<a href="{PORTAL}"' in message.html
    assert f'lang="{language}"' in message.html
    assert ('dir="rtl"' in message.html) == (language == "ar")
    assert (message.sms is not None and PORTAL in message.sms) or kind == "key_recovery"


@pytest.mark.parametrize(
    ("asked", "got"),
    [("fr", "fr"), ("en-GB", "en"), ("ar_MA", "ar"), ("de", "fr"), ("", "fr"), (None, "fr")],
)
def test_language_fallback(asked: str | None, got: str) -> None:
    assert resolve_language(asked) == got
    assert render("reminder", asked, portal_url=PORTAL).language == got


@pytest.mark.parametrize("kind", ["document_available", "reminder"])
@pytest.mark.parametrize(
    "leak",
    ["document_type", "document_title", "title", "content", "document_reference", "body"],
)
def test_alert_refuses_document_details(kind: str, leak: str) -> None:
    secret_value = "Décision de rejet de votre demande d'asile"
    with pytest.raises(InvalidInput) as caught:
        render(kind, "fr", portal_url=PORTAL, **{leak: secret_value})
    assert secret_value not in str(caught.value)


@pytest.mark.parametrize("kind", ["document_available", "reminder"])
def test_alert_templates_only_use_the_portal_url(kind: str) -> None:
    """Belt and braces: the template files themselves reference nothing else."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR))
    for path in sorted((TEMPLATES_DIR / kind).glob("*.j2")):
        assert env.loader is not None
        source = env.loader.get_source(env, f"{kind}/{path.name}")[0]
        assert jinja2.meta.find_undeclared_variables(env.parse(source)) == {"portal_url"}


@pytest.mark.parametrize("check", ["render", "validate"])
def test_missing_or_bad_context_refused(check: str) -> None:
    """``validate`` (used when a message is queued) refuses what ``render`` refuses."""

    def call(kind: str, **context: Any) -> None:
        if check == "render":
            render(kind, "fr", **context)
        else:
            validate(kind, **context)

    with pytest.raises(InvalidInput):
        call("key_recovery", portal_url=PORTAL)
    with pytest.raises(InvalidInput):
        call("document_available", portal_url="http://phishing.example")
    with pytest.raises(InvalidInput):
        call("contact_confirmation", portal_url=PORTAL, contact_kind="pigeon")
    with pytest.raises(InvalidInput):
        call("no_such_kind", portal_url=PORTAL)
    with pytest.raises(InvalidInput):
        call("acknowledgement_of_receipt", recipient_service="DG")  # the ACK fields missing
    call("acknowledgement_of_receipt", recipient_service="Préfecture", **ACK)


def test_html_escapes_context() -> None:
    message = render("key_recovery", "en", portal_url=PORTAL, connection_key="<script>x</script>")
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "<script>x</script>" in message.text  # plain text is not HTML


@given(st.text(alphabet=st.characters(exclude_categories=("Z", "C")), min_size=1, max_size=40))
def test_html_never_carries_raw_markup_from_the_key(key: str) -> None:
    message = render("key_recovery", "fr", portal_url=PORTAL, connection_key=key)
    body = message.html.split("<body", 1)[1]
    assert "<" + "script" not in body.replace("&lt;", "")
    # The key lands in the page only in its escaped form: the page is the template
    # with the escaped key where the key goes. (Asserting ``key not in html`` was
    # wrong for keys such as "<" or "</", which the template's own markup contains.)
    marker = "KEYMARKER0123"
    template = render("key_recovery", "fr", portal_url=PORTAL, connection_key=marker).html
    assert message.html == template.replace(marker, str(markupsafe.escape(key)))


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", sorted(APPLICANT_KINDS))
def test_sms_fits_one_gsm_segment(kind: str, language: str) -> None:
    message = render(kind, language, portal_url=LONG_PORTAL, **APPLICANT_KINDS[kind])
    assert message.sms is not None
    assert gsm7_length(message.sms) is not None, "needs UCS-2: check accents"
    assert sms_segments(message.sms) == 1


def test_arabic_sms_is_short() -> None:
    for kind, extra in APPLICANT_KINDS.items():
        message = render(kind, "ar", portal_url=LONG_PORTAL, **extra)
        assert message.sms is not None
        assert sms_segments(message.sms) <= 2


def test_contact_confirmation_by_email_has_no_sms() -> None:
    message = render("contact_confirmation", "fr", portal_url=PORTAL, contact_kind="email")
    assert message.sms is None
    assert "adresse électronique" in message.text


def test_key_recovery_carries_the_key() -> None:
    message = render("key_recovery", "fr", portal_url=PORTAL, connection_key="K7Q2-9XZA-4MPD")
    assert message.sensitive
    assert message.sms is not None and "K7Q2-9XZA-4MPD" in message.sms
    assert "K7Q2-9XZA-4MPD" in message.text and "K7Q2-9XZA-4MPD" in message.html


def test_acknowledgement_of_receipt_is_french_and_complete() -> None:
    message = render("acknowledgement_of_receipt", "en", recipient_service="Préfecture", **ACK)
    assert message.language == "fr"
    assert message.sms is None
    for expected in (
        "DOC-2026-000123",
        "Décision de rejet",
        "2026-01-004567",
        "3 mars 2026",
        "1 mars 2026 à 10:00:00 (heure de Paris)",
        "première consultation",
        "R.531-17",
        "r531-17/2026-01",
        "Préfecture",
    ):
        assert expected in message.text
    assert "Décision de rejet" in message.html
    with pytest.raises(InvalidInput):
        message.to_outbound("sms", "k", "+33600000000")


def test_acknowledgement_deemed_notification() -> None:
    context = {**ACK, "notification_basis": "deemed_after_15_days", "first_consulted_at": None}
    message = render("acknowledgement_of_receipt", "fr", **context)
    assert "Première consultation : aucune" in message.text
    assert "quinze jours" in message.text
    with pytest.raises(InvalidInput):
        render("acknowledgement_of_receipt", "fr", **{**ACK, "first_consulted_at": None})
    with pytest.raises(InvalidInput):
        render("acknowledgement_of_receipt", "fr", **{**ACK, "notification_date": "2026-03-03"})


def test_message_digest() -> None:
    message = render("document_available", "fr", portal_url=PORTAL)
    digest = message_digest(message)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == message_digest(render("document_available", "fr", portal_url=PORTAL))
    assert digest != message_digest(render("document_available", "en", portal_url=PORTAL))
    assert message_digest(message, key=b"k" * 32) != digest


def test_brute_force_of_key_from_ledger_digest_prevented() -> None:
    """A plain hash of a message whose only unknown is the key would reveal the key."""
    message = render("key_recovery", "fr", portal_url=PORTAL, connection_key="1234")
    with pytest.raises(InvalidInput):
        message_digest(message)
    ack = render("acknowledgement_of_receipt", "fr", **ACK)
    with pytest.raises(InvalidInput):
        message_digest(ack)
    assert message_digest(message, key=b"ledger-key" * 4) != message_digest(
        message, key=b"other-key!" * 4
    )


def test_gsm7_counting() -> None:
    assert gsm7_length("abc") == 3
    assert gsm7_length("€") == 2
    assert gsm7_length("ê") is None
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("ب" * 70) == 1
    assert sms_segments("ب" * 71) == 2
