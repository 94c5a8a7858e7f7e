"""Pages of issue 7's last gaps, through the app on both profiles: the applicant's
password change, the saved language, and the legal/court look-up by OFPRA number.
Tests named after the attack they cover where they cover one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import auth, make_pdf, post_pdf
from vault.service import Vault

NEW = "a brand new passphrase"


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


def _html_lang(html: str) -> tuple[str, str]:
    m = re.search(r'<html lang="([a-z]+)" dir="(ltr|rtl)">', html)
    assert m, html[:200]
    return m.group(1), m.group(2)


def _page_login(client: TestClient[Any], ident: str, password: str, **headers: str) -> Any:
    form = client.get("/login", headers=headers)
    return client.post(
        "/login",
        data={"csrf_token": _csrf(form.text), "identifier": ident, "password": password},
        headers=headers,
        follow_redirects=False,
    )


def _staff_sign_in(client: TestClient[Any], token: str) -> None:
    client.cookies.clear()
    form = client.get("/staff/sign-in")
    r = client.post(
        "/staff/sign-in",
        data={"csrf_token": _csrf(form.text), "token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/staff", r.text


# -- password change ------------------------------------------------------------------
def test_password_page_changes_it_and_closes_the_other_sessions(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    r = _page_login(client, applicant["agdref"], applicant["password"])
    assert r.status_code == 303
    home = client.get("/documents")
    assert '<a href="/password"' in home.text  # linked from the applicant's menu
    form = client.get("/password")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    for name, auto in (
        ("current_password", "current-password"),
        ("password", "new-password"),
        ("password_confirm", "new-password"),
    ):
        assert f'<label for="{name}">' in form.text
        assert f'id="{name}" name="{name}" type="password" autocomplete="{auto}"' in form.text
    token = _csrf(form.text)

    # Wrong current password: error summary linking to the field, nothing changed.
    r = client.post(
        "/password",
        data={
            "csrf_token": token,
            "current_password": "not mine at all",
            "password": NEW,
            "password_confirm": NEW,
        },
    )
    assert r.status_code == 400
    assert 'class="error-summary"' in r.text and '<a href="#current_password">' in r.text
    assert 'aria-invalid="true"' in r.text
    assert "<title>Error:" in r.text or "<title>Erreur" in r.text
    # Mismatch and a too-common password, each on its field.
    r = client.post(
        "/password",
        data={
            "csrf_token": token,
            "current_password": applicant["password"],
            "password": NEW,
            "password_confirm": NEW + "x",
        },
    )
    assert r.status_code == 400 and '<a href="#password_confirm">' in r.text
    r = client.post(
        "/password",
        data={
            "csrf_token": token,
            "current_password": applicant["password"],
            "password": "password1",
            "password_confirm": "password1",
        },
    )
    assert r.status_code == 400 and '<a href="#password">' in r.text
    assert client.get("/api/v1/me/documents", headers=auth(applicant["token"])).is_success

    r = client.post(
        "/password",
        data={
            "csrf_token": token,
            "current_password": applicant["password"],
            "password": NEW,
            "password_confirm": NEW,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/password?changed=1"
    done = client.get("/password?changed=1")
    assert done.status_code == 200 and 'class="success"' in done.text  # still signed in
    # The API session opened at the first connection is another session: closed.
    client_cookies = dict(client.cookies)
    client.cookies.clear()
    assert client.get("/api/v1/me/documents", headers=auth(applicant["token"])).status_code == 401
    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 400
    client.cookies.clear()
    assert _page_login(client, applicant["agdref"], NEW).status_code == 303
    assert client_cookies  # the page session had cookies (session + CSRF)


def test_cross_site_password_change_without_csrf_token_is_refused(
    client: TestClient[Any], applicant: dict[str, str]
) -> None:
    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 303
    body = {"current_password": applicant["password"], "password": NEW, "password_confirm": NEW}
    r = client.post("/password", data=body)
    assert r.status_code == 403 and r.headers["x-vault-problem"] == "csrf_failed"
    token = _csrf(client.get("/password").text)
    r = client.post(
        "/password", data={**body, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    client.cookies.clear()
    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 303


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_guessing_the_current_password_on_the_page_is_throttled(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 303
    token = _csrf(client.get("/password?lang=en").text)
    for i in range(vault.settings.auth_max_failures + 1):
        r = client.post(
            "/password",
            data={
                "csrf_token": token,
                "current_password": f"guess number {i}",
                "password": NEW,
                "password_confirm": NEW,
            },
        )
        assert r.status_code == 400
    assert "Too many attempts" in r.text and "not correct" not in r.text
    # Locked like the log-in form: even the right password waits.
    r = client.post(
        "/password",
        data={
            "csrf_token": token,
            "current_password": applicant["password"],
            "password": NEW,
            "password_confirm": NEW,
        },
    )
    assert r.status_code == 400 and "Too many attempts" in r.text


def test_password_page_is_for_signed_in_applicants_only(
    client: TestClient[Any], staff: dict[str, str]
) -> None:
    r = client.get("/password", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/password"
    _staff_sign_in(client, staff["agent"])
    r = client.get("/password", follow_redirects=False)
    assert r.status_code == 403 and r.headers["x-vault-problem"] == "forbidden"


# -- saved language -------------------------------------------------------------------
def test_language_switch_is_saved_and_follows_the_applicant_to_a_fresh_client(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    from vault.db.models import Account

    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 303
    assert _html_lang(client.get("/documents").text) == ("en", "ltr")  # saved at creation
    r = client.get("/documents?lang=ar")
    assert _html_lang(r.text) == ("ar", "rtl")
    with vault.read() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None and acc.language == "ar"
    client.cookies.clear()

    # A fresh phone whose browser asks for French and whose switcher says English:
    # the saved preference comes first once signed in.
    client.cookies.set("vault_lang", "en")
    login = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert _html_lang(login.text) == ("en", "ltr")  # before sign-in: the explicit choice
    r = _page_login(client, applicant["agdref"], applicant["password"], **{"Accept-Language": "fr"})
    assert r.status_code == 303
    for path in ("/documents", "/contacts", "/password", "/access-log"):
        page = client.get(path, headers={"Accept-Language": "fr"})
        assert page.status_code == 200, path
        assert _html_lang(page.text) == ("ar", "rtl"), path


def test_language_link_from_another_site_saves_nothing(
    client: TestClient[Any], applicant: dict[str, str], vault: Vault
) -> None:
    """A cross-site link arrives without the SameSite=Strict session cookie: an
    anonymous visit, which may set the visitor's switcher cookie but not the account."""
    from vault.db.models import Account

    r = client.get("/documents?lang=ar", follow_redirects=False)
    assert r.status_code == 303
    with vault.read() as s:
        acc = s.get(Account, applicant["account_id"])
        assert acc is not None and acc.language == "en"


# -- legal and court look-up by OFPRA number --------------------------------------------
def _file_with_two_documents(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str]
) -> dict[str, str]:
    conv = post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("Convocation"))
    dec = post_pdf(
        client,
        staff["agent"],
        applicant["account_id"],
        make_pdf("Decision"),
        type="DECISION",
        title="Décision du directeur",
    )
    assert conv.status_code == dec.status_code == 201
    # The applicant opens the convocation: it gets a first access and a notification date.
    r = client.get(
        f"/api/v1/me/documents/{conv.json()['document_id']}/content",
        headers=auth(applicant["token"]),
    )
    assert r.status_code == 200
    client.cookies.clear()
    return {"convocation": conv.json()["document_id"], "decision": dec.json()["document_id"]}


def _access_actions(vault: Vault, account_id: str) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from vault.db.models import AccessLog

    with vault.read() as s:
        rows = s.scalars(select(AccessLog).where(AccessLog.account_id == account_id))
        return [(r.actor_role, r.action) for r in rows]


def test_legal_looks_up_every_document_of_a_file_with_dates_and_proofs(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], vault: Vault
) -> None:
    docs = _file_with_two_documents(client, staff, applicant)
    _staff_sign_in(client, staff["legal"])
    home = client.get("/staff?lang=en")
    assert '<a href="/legal/lookup">Documents by OFPRA number</a>' in home.text
    r = client.get("/legal/lookup", params={"ofpra_number": applicant["ofpra_number"]})
    assert r.status_code == 200, r.text
    html = r.text
    assert html.count('<li class="doc">') == 2
    for doc_id in docs.values():
        assert f'href="/legal/documents/{doc_id}/proof"' in html
    assert "Made available on" in html and "First opened on" in html
    assert "Notification date" in html and "first opened by the applicant" in html
    assert "Not opened yet" in html  # the decision
    assert "Appeal deadline" in html  # shown for the decision only
    # Least personal data: no AGDREF, no account id, no contact.
    assert applicant["agdref"] not in html and applicant["account_id"] not in html
    assert r.headers["cache-control"] == "no-store"
    # The proof export linked from the page works for the legal department.
    proof = client.get(f"/legal/documents/{docs['convocation']}/proof")
    assert proof.status_code == 200 and proof.content[:2] == b"PK"
    actions = _access_actions(vault, applicant["account_id"])
    assert ("legal", "legal.lookup") in actions
    assert actions.count(("legal", "legal.document")) == 2
    # The applicant sees the look-up in their access log, in words.
    client.cookies.clear()
    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 303
    log = client.get("/access-log?lang=en").text
    assert "Look-up of the file by the legal department" in log


def test_court_looks_up_decisions_only(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], vault: Vault
) -> None:
    docs = _file_with_two_documents(client, staff, applicant)
    _staff_sign_in(client, staff["court"])
    # The court's former address sends to the shared page with the same query.
    r = client.get(
        "/court/decisions",
        params={"ofpra_number": applicant["ofpra_number"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/legal/lookup?ofpra_number={applicant['ofpra_number']}"
    r = client.get(r.headers["location"] + "&lang=en")
    assert r.status_code == 200
    assert "Decisions by OFPRA number" in r.text
    assert r.text.count('<li class="doc">') == 1
    assert f'href="/legal/documents/{docs["decision"]}/proof"' in r.text
    assert docs["convocation"] not in r.text
    assert ("court", "court.decisions") in _access_actions(vault, applicant["account_id"])


def test_lookup_input_errors_and_unknown_numbers(
    client: TestClient[Any], staff: dict[str, str]
) -> None:
    _staff_sign_in(client, staff["legal"])
    r = client.get("/legal/lookup?lang=en")
    assert r.status_code == 200 and 'name="ofpra_number"' in r.text
    for bad in ("", "   ", "9" * 33):
        r = client.get("/legal/lookup", params={"ofpra_number": bad, "lang": "en"})
        assert r.status_code == 400
        assert '<a href="#ofpra_number">' in r.text
    r = client.get("/legal/lookup", params={"ofpra_number": "OFPRA-NOPE", "lang": "en"})
    assert r.status_code == 200 and "No file has this OFPRA number." in r.text


def test_other_roles_cannot_look_up_a_file(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str]
) -> None:
    q = {"ofpra_number": applicant["ofpra_number"]}
    r = client.get("/legal/lookup", params=q, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/sign-in")
    for role in ("agent", "professional", "ofii", "admin"):
        _staff_sign_in(client, staff[role])
        r = client.get("/legal/lookup", params=q, follow_redirects=False)
        assert r.status_code == 403 and r.headers["x-vault-problem"] == "forbidden", role
        assert '<li class="doc">' not in r.text
    _staff_sign_in(client, staff["legal"])
    r = client.get("/court/decisions", params=q, follow_redirects=False)
    assert r.status_code == 403  # the court's address stays the court's
    client.cookies.clear()
    assert _page_login(client, applicant["agdref"], applicant["password"]).status_code == 303
    r = client.get("/legal/lookup", params=q, follow_redirects=False)
    assert r.status_code == 403
