"""Page security over plain HTTP against the real server (no browser needed):
CSRF, redirects, cookies and headers. Named after the attack each test covers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import Server


@pytest.fixture
def web(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60) as c:
        yield c


def _token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


def _staff_session(server: Server, web: httpx.Client, role: str) -> None:
    token = server.staff_token(role)
    form = web.get("/staff/sign-in")
    r = web.post("/staff/sign-in", data={"csrf_token": _token(form.text), "token": token})
    assert r.status_code == 303 and r.headers["location"] == "/staff"


def test_cross_site_form_post_without_csrf_token_is_refused(web: httpx.Client) -> None:
    web.get("/login")  # the browser has its CSRF cookie, as a victim's would
    r = web.post("/login", data={"identifier": "1234567890", "password": "whatever12"})
    assert r.status_code == 403 and r.headers["x-vault-problem"] == "csrf_failed"
    assert "vault_session" not in r.headers.get("set-cookie", "")


def test_csrf_token_from_another_browser_is_refused(server: Server, web: httpx.Client) -> None:
    with httpx.Client(base_url=server.url) as attacker:
        stolen = _token(attacker.get("/login").text)
    web.get("/login")
    r = web.post("/login", data={"csrf_token": stolen, "identifier": "1", "password": "x" * 8})
    assert r.status_code == 403


def test_cross_origin_post_is_refused_even_with_a_token(web: httpx.Client) -> None:
    token = _token(web.get("/login").text)
    r = web.post(
        "/login",
        data={"csrf_token": token, "identifier": "1", "password": "x" * 8},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_csrf_token_is_bound_to_the_session(server: Server, web: httpx.Client) -> None:
    """A token minted before sign-in does not authorise a post inside the session."""
    before = _token(web.get("/staff/sign-in").text)
    _staff_session(server, web, "agent")
    r = web.post("/staff/sign-out", data={"csrf_token": before})
    assert r.status_code == 403


def test_unauthenticated_pages_redirect_to_sign_in(web: httpx.Client) -> None:
    r = web.get("/documents")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/documents"
    r = web.get("/agent/accounts/new")
    assert r.status_code == 303
    assert r.headers["location"] == "/staff/sign-in?next=/agent/accounts/new"
    r = web.post("/contacts", data={})
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_wrong_role_gets_a_403_page_not_the_page(server: Server, web: httpx.Client) -> None:
    _staff_session(server, web, "court")
    r = web.get("/agent/accounts/new")
    assert r.status_code == 403 and r.headers["x-vault-problem"] == "forbidden"
    assert r.headers["content-type"].startswith("text/html")
    assert 'name="agdref"' not in r.text


def test_open_redirect_through_next_is_ignored(web: httpx.Client) -> None:
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        r = web.get("/login", params={"next": evil})
        assert 'name="next" value="/documents"' in r.text


def test_clickjacking_and_caching_headers_on_every_page(web: httpx.Client) -> None:
    for path in ("/", "/login", "/first-connection", "/staff/sign-in", "/recover-key"):
        r = web.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert "default-src 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert "<script" not in r.text


def test_session_cookies_are_httponly_and_samesite_strict(
    server: Server, web: httpx.Client
) -> None:
    _staff_session(server, web, "agent")
    cookies = list(web.cookies.jar)
    names = {c.name for c in cookies}
    assert {"vault_csrf", "vault_staff"} <= names
    for c in cookies:
        assert c.has_nonstandard_attr("HttpOnly"), c.name
        assert str(c.get_nonstandard_attr("SameSite")).lower() == "strict", c.name


def test_signed_out_staff_session_cannot_be_replayed(server: Server, web: httpx.Client) -> None:
    _staff_session(server, web, "agent")
    session = web.cookies["vault_staff"]
    home = web.get("/staff")
    assert home.status_code == 200
    r = web.post("/staff/sign-out", data={"csrf_token": _token(home.text)})
    assert r.status_code == 303
    with httpx.Client(base_url=server.url, follow_redirects=False) as replay:
        replay.cookies.set("vault_staff", session)
        assert replay.get("/staff").status_code == 303
