"""Journeys in a real browser (issue 7): applicant (French, English), agent, Arabic RTL."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.helpers import check_page, go, path_of
from tests.conftest import make_pdf

PASSWORD = "une phrase de passe assez longue"
NEW_PASSWORD = "un autre mot de passe bien long"


def _agdref() -> str:
    return str(uuid.uuid4().int)[:10]


def _account_with_document(
    server: Server, language: str, doc_type: str = "CONVOCATION"
) -> dict[str, Any]:
    """Set-up through the JSON API: an agent creates an account and posts a PDF."""
    agent = server.staff_token("agent")
    agdref = _agdref()
    created = server.api(
        "POST",
        "/api/v1/accounts",
        agent,
        {
            "agdref": agdref,
            "ofpra_number": "OFPRA-" + agdref,
            "guda": "Rennes",
            "registered_on": "2026-02-20",
            "procedure": "normal",
            "structure_id": "SPADA-35",
            "language": language,
        },
    )
    import urllib.request

    req = urllib.request.Request(
        server.url
        + f"/api/v1/accounts/{created['account_id']}/documents?type={doc_type}&title=Convocation",
        data=make_pdf("Convocation a un entretien"),
        method="POST",
    )
    req.add_header("Authorization", f"Bearer {agent}")
    req.add_header("Content-Type", "application/pdf")
    import json

    with urllib.request.urlopen(req, timeout=60) as resp:
        posted = json.loads(resp.read())
    return {**created, "ofpra_number": "OFPRA-" + agdref, "document": posted}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_applicant_journey(server: Server, phone: Any, artifacts: Path, language: str) -> None:
    acc = _account_with_document(server, language)
    page = phone.new_page()
    shot = f"applicant-{language}"

    page.goto(f"{server.url}/?lang={language}")
    assert page.locator("html").get_attribute("lang") == language
    check_page(page, artifacts, f"{shot}-01-home")

    go(page, "a[href='/first-connection']")
    check_page(page, artifacts, f"{shot}-02-first-connection")

    # A wrong key: the error summary at the top links to the field.
    page.fill("#agdref", acc["agdref"])
    page.fill("#connection_key", "AAAA-BBBB-CCCC-DDDD")
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    go(page, "main button[type=submit]")
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert summary.locator("a").first.get_attribute("href") == "#agdref"
    assert page.locator("#agdref").get_attribute("aria-invalid") == "true"
    check_page(page, artifacts, f"{shot}-03-first-connection-error")

    page.fill("#connection_key", acc["connection_key"])
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    go(page, "main button[type=submit]")
    # Activated: asked for contacts first (alerts when a document arrives).
    assert path_of(page) == "/contacts"
    check_page(page, artifacts, f"{shot}-04-contacts")
    page.fill("#phone", "+33 6 12 34 56 78")
    page.fill("#email", "not an address")
    go(page, "main button[type=submit]")
    assert page.locator(".error-summary a[href='#email']").count() == 1
    check_page(page, artifacts, f"{shot}-05-contacts-error")
    page.fill("#email", "demandeur@example.org")
    go(page, "main button[type=submit]")
    assert page.locator(".success").is_visible()
    assert page.locator("#phone").input_value() == "+33612345678"
    go(page, ".main-nav a[href='/documents']")
    assert path_of(page) == "/documents"
    # The applicant's saved language wins from now on.
    assert page.locator("html").get_attribute("lang") == language
    doc = page.locator(".doc").first
    assert "Convocation" in doc.inner_text()
    assert doc.locator(".status-new").count() == 1
    check_page(page, artifacts, f"{shot}-06-documents-new")

    with page.expect_download() as info:
        doc.locator(f"a[href='/documents/{acc['document']['document_id']}/file']").click()
    body = Path(info.value.path()).read_bytes()
    assert body.startswith(b"%PDF")
    assert hashlib.sha256(body).hexdigest() == acc["document"]["sha256"]

    page.reload()
    doc = page.locator(".doc").first
    assert doc.locator(".status-opened").count() == 1
    check_page(page, artifacts, f"{shot}-07-documents-opened")
    go(page, ".main-nav a[href='/access-log']")
    assert "/documents" not in page.locator("main").inner_text()
    check_page(page, artifacts, f"{shot}-08-access-log")

    # Password change from the menu: a wrong current password first, then the right one.
    go(page, ".main-nav a[href='/password']")
    assert path_of(page) == "/password"
    assert page.locator(".main-nav a[href='/password']").get_attribute("aria-current") == "page"
    check_page(page, artifacts, f"{shot}-09-password")
    page.fill("#current_password", "not my password")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    go(page, "main button[type=submit]")
    assert page.locator(".error-summary a[href='#current_password']").count() == 1
    assert page.locator("#current_password").get_attribute("aria-invalid") == "true"
    check_page(page, artifacts, f"{shot}-10-password-error")
    page.fill("#current_password", PASSWORD)
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    go(page, "main button[type=submit]")
    assert page.locator(".success").is_visible()  # still signed in on this phone
    check_page(page, artifacts, f"{shot}-11-password-changed")

    go(page, ".main-nav button[type=submit]")
    assert path_of(page) == "/login"
    check_page(page, artifacts, f"{shot}-12-login")
    page.goto(f"{server.url}/documents")
    assert path_of(page) == "/login"  # logged out: the list is no longer reachable

    # The old password no longer opens the account; the new one does.
    page.fill("#identifier", acc["agdref"])
    page.fill("#password", PASSWORD)
    go(page, "main button[type=submit]")
    assert path_of(page) == "/login"
    page.fill("#password", NEW_PASSWORD)
    go(page, "main button[type=submit]")
    assert path_of(page) == "/documents"
    assert page.locator("html").get_attribute("lang") == language


def test_agent_creates_account_and_posts_document(
    server: Server, phone: Any, artifacts: Path, tmp_path: Path
) -> None:
    token = server.staff_token("agent")
    page = phone.new_page()
    page.goto(f"{server.url}/staff/sign-in?lang=en")
    check_page(page, artifacts, "agent-01-sign-in")
    page.fill("#token", token)
    go(page, "main button[type=submit]")
    assert path_of(page) == "/staff"
    check_page(page, artifacts, "agent-02-home")

    go(page, "a[href='/agent/accounts/new']")
    check_page(page, artifacts, "agent-03-account-form")
    go(page, "main button[type=submit]")  # empty form: errors listed at the top
    assert page.locator(".error-summary a[href='#agdref']").count() == 1
    check_page(page, artifacts, "agent-04-account-form-errors")

    agdref = _agdref()
    page.fill("#agdref", agdref)
    page.fill("#guda", "Rennes")
    page.fill("#registered_on", "2026-02-20")
    page.select_option("#procedure", "normal")
    page.fill("#structure_id", "SPADA-35")
    page.select_option("#language", "ar")
    go(page, "main button[type=submit]")
    key = page.locator("#connection-key").inner_text()
    assert len(key.replace("-", "")) >= 16
    assert page.locator("#created-agdref").inner_text() == agdref
    check_page(page, artifacts, "agent-05-account-created")

    go(page, "a[href^='/agent/documents/new?account_id=']")
    pdf = tmp_path / "decision.pdf"
    pdf.write_bytes(make_pdf("Decision"))
    page.select_option("#type", "DECISION")
    page.fill("#title", "Décision")
    page.set_input_files("#file", str(pdf))
    check_page(page, artifacts, "agent-06-post-form")
    go(page, "main button[type=submit]")
    assert path_of(page).startswith("/office/documents/")
    assert page.locator(".success").is_visible()
    assert "POSTED" in page.locator(".timeline").inner_text()
    check_page(page, artifacts, "agent-07-document-status")

    # The new applicant signs in in Arabic (their saved language): right to left.
    applicant = phone.browser.new_context(viewport={"width": 360, "height": 740})
    try:
        ap = applicant.new_page()
        ap.goto(f"{server.url}/first-connection")
        ap.fill("#agdref", agdref)
        ap.fill("#connection_key", key)
        ap.fill("#password", PASSWORD)
        ap.fill("#password_confirm", PASSWORD)
        go(ap, "main button[type=submit]")
        assert path_of(ap) == "/contacts"
        assert ap.locator("html").get_attribute("dir") == "rtl"
        check_page(ap, artifacts, "applicant-ar-contacts")
        go(ap, ".main-nav a[href='/documents']")
        assert ap.locator("html").get_attribute("dir") == "rtl"
        assert ap.locator("html").get_attribute("lang") == "ar"
        check_page(ap, artifacts, "applicant-ar-documents")
        # Switching language while signed in saves it: a fresh phone, which asks for
        # English, signs in and gets French (the saved preference comes first).
        go(ap, ".lang-switch a[lang='fr']")
        go(ap, ".main-nav a[href='/contacts']")
        assert ap.locator("html").get_attribute("lang") == "fr"
    finally:
        applicant.close()
    other = phone.browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB")
    try:
        ap = other.new_page()
        ap.goto(f"{server.url}/login")
        assert ap.locator("html").get_attribute("lang") == "en"
        ap.fill("#identifier", agdref)
        ap.fill("#password", PASSWORD)
        go(ap, "main button[type=submit]")
        assert path_of(ap) == "/documents"
        assert ap.locator("html").get_attribute("lang") == "fr"
    finally:
        other.close()


def test_language_switch_is_saved_and_arabic_follows_to_a_fresh_phone(
    server: Server, phone: Any, artifacts: Path
) -> None:
    """Switch to Arabic once signed in, log out, log in from another phone whose browser
    asks for French: every page is Arabic, right to left (the saved preference)."""
    acc = _account_with_document(server, "fr")
    page = phone.new_page()
    page.goto(f"{server.url}/first-connection")
    page.fill("#agdref", acc["agdref"])
    page.fill("#connection_key", acc["connection_key"])
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    go(page, "main button[type=submit]")
    assert page.locator("html").get_attribute("lang") == "fr"
    go(page, ".lang-switch a[lang='ar']")
    assert page.locator("html").get_attribute("dir") == "rtl"
    go(page, ".main-nav button[type=submit]")
    fresh = phone.browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, locale="fr-FR"
    )
    try:
        ap = fresh.new_page()
        ap.goto(f"{server.url}/login")
        assert ap.locator("html").get_attribute("lang") == "fr"  # nobody signed in yet
        ap.fill("#identifier", acc["ofpra_number"])
        ap.fill("#password", PASSWORD)
        go(ap, "main button[type=submit]")
        assert path_of(ap) == "/documents"
        for path, name in (("/documents", "documents"), ("/password", "password")):
            ap.goto(server.url + path)
            assert ap.locator("html").get_attribute("lang") == "ar"
            assert ap.locator("html").get_attribute("dir") == "rtl"
            check_page(ap, artifacts, f"applicant-ar-saved-{name}")
        ap.fill("#current_password", "wrong")
        go(ap, "main button[type=submit]")
        assert ap.locator(".error-summary").is_visible()
        check_page(ap, artifacts, "applicant-ar-saved-password-errors")
    finally:
        fresh.close()


def test_arabic_pages_render_right_to_left(server: Server, phone: Any, artifacts: Path) -> None:
    page = phone.new_page()
    page.goto(f"{server.url}/?lang=ar")
    assert page.locator("html").get_attribute("dir") == "rtl"
    check_page(page, artifacts, "ar-01-home")
    # The choice is kept (cookie) on the next page without ?lang=.
    go(page, "a[href='/first-connection']")
    assert page.locator("html").get_attribute("dir") == "rtl"
    go(page, "main button[type=submit]")
    assert page.locator(".error-summary").is_visible()
    check_page(page, artifacts, "ar-02-first-connection-errors")
    page.goto(f"{server.url}/login")
    check_page(page, artifacts, "ar-03-login")
    # The brand sits on the right in RTL: the header's first child starts at the right.
    box = page.locator(".brand").bounding_box()
    assert box is not None and box["x"] + box["width"] > 250


def test_professional_retrieves_a_key_and_requests_opt_out(
    server: Server, phone: Any, artifacts: Path
) -> None:
    acc = _account_with_document(server, "fr")
    token = server.staff_token("professional", structure="SPADA-35")
    page = phone.new_page()
    page.goto(f"{server.url}/staff/sign-in?lang=fr")
    page.fill("#token", token)
    go(page, "main button[type=submit]")
    check_page(page, artifacts, "pro-01-home")
    go(page, "a[href='/pro/applicants']")
    check_page(page, artifacts, "pro-02-applicants")
    go(page, f"form[action='/pro/applicants/{acc['account_id']}/key'] button")
    assert page.locator("#connection-key").inner_text() == acc["connection_key"]
    check_page(page, artifacts, "pro-03-key")
    go(page, "a[href='/pro/applicants']")
    optout = f"form[action='/pro/applicants/{acc['account_id']}/opt-out']"
    go(page, f"{optout} button")  # not confirmed: nothing requested
    assert page.locator(".error-summary").is_visible()
    page.check(f"{optout} input[name=confirm]")
    go(page, f"{optout} button")
    assert page.locator(".success").is_visible()
    check_page(page, artifacts, "pro-04-opt-out-requested")


def test_court_looks_up_a_decision_exports_and_verifies_its_proof(
    server: Server, phone: Any, artifacts: Path, tmp_path: Path
) -> None:
    acc = _account_with_document(server, "fr", doc_type="DECISION")
    token = server.staff_token("court")
    page = phone.new_page()
    page.goto(f"{server.url}/staff/sign-in?lang=fr")
    page.fill("#token", token)
    go(page, "main button[type=submit]")
    go(page, "a[href='/legal/lookup']")
    page.fill("#ofpra_number", acc["ofpra_number"])
    go(page, "main button[type=submit]")
    assert page.locator(".doc").count() == 1
    check_page(page, artifacts, "court-01-decisions")
    with page.expect_download() as info:
        page.locator(".doc a[href$='/proof']").click()
    zip_path = tmp_path / "proof.zip"
    info.value.save_as(str(zip_path))
    assert zip_path.read_bytes()[:2] == b"PK"

    page.goto(f"{server.url}/legal/verify")
    page.set_input_files("#file", str(zip_path))
    go(page, "main button[type=submit]")
    assert page.locator(".verdict-ok").is_visible(), page.locator("main").inner_text()
    check_page(page, artifacts, "court-02-proof-verified")

    # One byte changed: the verdict says so.
    bad = bytearray(zip_path.read_bytes())
    bad[len(bad) // 2] ^= 1
    bad_path = tmp_path / "tampered.zip"
    bad_path.write_bytes(bytes(bad))
    page.set_input_files("#file", str(bad_path))
    go(page, "main button[type=submit]")
    assert page.locator(".verdict-fail").is_visible()
    check_page(page, artifacts, "court-03-proof-tampered")


def test_legal_looks_up_a_file_and_exports_a_proof(
    server: Server, phone: Any, artifacts: Path, tmp_path: Path
) -> None:
    acc = _account_with_document(server, "fr", doc_type="DECISION")
    token = server.staff_token("legal")
    page = phone.new_page()
    page.goto(f"{server.url}/staff/sign-in?lang=en")
    page.fill("#token", token)
    go(page, "main button[type=submit]")
    check_page(page, artifacts, "legal-01-home")
    go(page, "a[href='/legal/lookup']")
    check_page(page, artifacts, "legal-02-lookup")
    go(page, "main button[type=submit]")  # no number: the error summary says so
    assert page.locator(".error-summary a[href='#ofpra_number']").count() == 1
    check_page(page, artifacts, "legal-03-lookup-error")
    page.fill("#ofpra_number", "OFPRA-none")
    go(page, "main button[type=submit]")
    assert page.locator(".doc").count() == 0
    page.fill("#ofpra_number", acc["ofpra_number"])
    go(page, "main button[type=submit]")
    doc = page.locator(".doc")
    assert doc.count() == 1
    text = doc.inner_text()
    for label in ("Made available on", "First opened on", "Notification date"):
        assert label in text
    assert acc["account_id"] not in page.locator("main").inner_text()  # least data
    check_page(page, artifacts, "legal-04-lookup-result")
    with page.expect_download() as info:
        doc.locator("a[href$='/proof']").click()
    zip_path = tmp_path / "proof.zip"
    info.value.save_as(str(zip_path))
    assert zip_path.read_bytes()[:2] == b"PK"
    go(page, "a[href^='/office/documents/']")
    assert "POSTED" in page.locator(".timeline").inner_text()
