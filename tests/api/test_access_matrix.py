"""Access-control matrix, generated from the application's own route table.

Every HTTP route handler of ``create_app()`` is exercised by every role (applicant,
agent, legal, court, professional, ofii, admin) and by an anonymous caller:

* a caller whose role is not in the handler's ``opt["roles"]`` never succeeds:
  anonymous gets 401 (or, on HTML pages, a redirect to sign in), a wrong role 403;
* a caller whose role is allowed, pointed at another applicant's or another
  structure's object, gets 404 (the object-level checks in the services);
* allowed roles on their own objects pass the guard (GET only: no side effects);
* a handler with no roles is public and must be listed in :data:`PUBLIC_ROUTES`,
  so a new public endpoint is a conscious decision, and a new path parameter must
  be given a value in :data:`PARAM_VALUES` before the matrix accepts it.

Because the matrix iterates ``app.routes``, a new endpoint cannot escape it.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from tests.conftest import auth, make_pdf, new_registration, post_pdf
from vault.principal import ROLES
from vault.service import Vault

#: Routes without roles, on purpose (method, path template).
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/auth/first-connection"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/reset-password"),
        ("POST", "/api/v1/auth/recover-key"),
        # The transparency log is public by default (VAULT_LOG_READ_ROLES restricts
        # it inside the handlers); witnesses post cosignatures, checked by signature.
        ("GET", "/log/checkpoint"),
        ("GET", "/log/public-key"),
        ("GET", "/log/checkpoint/{size:int}/timestamp"),
        ("GET", "/log/checkpoint/{size:int}/note"),
        ("GET", "/log/tile/{tail:path}"),
        ("POST", "/log/cosignature"),
        ("GET", "/api/v1/log/inclusion-proof"),
        ("GET", "/api/v1/log/consistency-proof"),
        # Anyone (a court, a lawyer) may verify a proof bundle offline or here.
        ("POST", "/api/v1/proofs/verify"),
        # The SMS provider's delivery reports (authenticated by HMAC in the handler).
        ("POST", "/api/v1/alerts/sms/delivery-report"),
        # Pages: sign-in and recovery forms, the home page, static files.
        ("GET", "/"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/first-connection"),
        ("POST", "/first-connection"),
        ("GET", "/reset-password"),
        ("POST", "/reset-password"),
        ("GET", "/recover-key"),
        ("POST", "/recover-key"),
        ("GET", "/staff/sign-in"),
        ("POST", "/staff/sign-in"),
        ("GET", "/static/{file_path:path}"),
        # OpenAPI documents.
        ("GET", "/schema"),
        ("GET", "/schema/openapi.json"),
        ("GET", "/schema/swagger"),
        ("GET", "/schema/scalar"),
        ("GET", "/schema/oauth2-redirect.html"),
        ("GET", "/schema/{path:str}"),
    }
)

#: (role, path parameter) pairs that name an object the role may only see when it is
#: its own (the applicant's documents, the professional's structure's applicants).
OBJECT_SCOPED = {("applicant", "document_id"), ("professional", "account_id")}
KNOWN_PARAMS = {
    "account_id",
    "document_id",
    "staff_id",
    "message_id",
    "size",
    "tail",
    "file_path",
    "path",
}
SKIP_METHODS = {"OPTIONS", "HEAD"}


def _handlers(app: Any) -> list[tuple[str, str, Any]]:
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method not in SKIP_METHODS:
                    out.append((method, route.path, handler))
    return out


def _fill(path: str, values: dict[str, str]) -> str:
    import re

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise AssertionError(f"no matrix value for path parameter {name!r} in {path}")
        return values[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", sub, path)


@pytest.fixture
def world(
    client: TestClient[Any], staff: dict[str, str], applicant: dict[str, str], vault: Vault
) -> dict[str, Any]:
    """Own objects (applicant in SPADA-35, the professional's structure) and foreign ones."""
    from vault.staff import create_staff

    own_doc = post_pdf(client, staff["agent"], applicant["account_id"], make_pdf("own"))
    assert own_doc.status_code == 201
    reg = new_registration(structure_id="DNA-99")
    r = client.post("/api/v1/accounts", json=reg, headers=auth(staff["agent"]))
    assert r.status_code == 201
    foreign_account = r.json()["account_id"]
    foreign_doc = post_pdf(client, staff["agent"], foreign_account, make_pdf("foreign"))
    assert foreign_doc.status_code == 201
    spare = create_staff(vault, role="legal", name="spare").staff_id
    base = {
        "staff_id": spare,
        "message_id": "999999",
        "size": "1",
        "tail": "0/000",
        "file_path": "none.css",
        "path": "openapi.yaml",
    }
    return {
        "tokens": {**staff, "applicant": applicant["token"]},
        "own": {
            **base,
            "account_id": applicant["account_id"],
            "document_id": own_doc.json()["document_id"],
        },
        "foreign": {
            **base,
            "account_id": foreign_account,
            "document_id": foreign_doc.json()["document_id"],
        },
    }


def _call(client: TestClient[Any], method: str, url: str, token: str | None) -> Any:
    client.cookies.clear()
    headers = auth(token) if token else {}
    return client.request(method, url, headers=headers, json={}, follow_redirects=False)


#: A page per role that carries a form, hence a CSRF token bound to the session.
FORM_PAGES = {"professional": "/pro/applicants", "applicant": "/documents"}


def _page_post(client: TestClient[Any], url: str, role: str, token: str) -> Any:
    """POST a page form with a valid CSRF token, so the object check is what answers."""
    import re

    client.cookies.clear()
    page = client.get(FORM_PAGES[role], headers=auth(token))
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, f"no CSRF token on {FORM_PAGES[role]}"
    return client.post(
        # confirm=yes: consequential page forms ask for an explicit confirmation first.
        url,
        data={"csrf_token": m.group(1), "confirm": "yes"},
        headers=auth(token),
        follow_redirects=False,
    )


def _denied_anonymous(path: str, r: Any) -> bool:
    if path.startswith(("/api/", "/log/", "/health")):
        return bool(r.status_code == 401)
    # HTML pages may send an anonymous visitor to a sign-in page instead.
    location = r.headers.get("location", "")
    redirect_to_sign_in = 300 <= r.status_code < 400 and (
        "sign-in" in location or "login" in location
    )
    return r.status_code in (401, 403) or redirect_to_sign_in


def test_access_matrix_covers_every_route(client: TestClient[Any], world: dict[str, Any]) -> None:
    failures, stale = _matrix(client, world)
    assert not failures, "\n".join(failures)
    # A stale allow-list entry is harmless but hides nothing; keep the list exact.
    assert not stale, f"PUBLIC_ROUTES lists routes that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_access_matrix_catches_planted_holes(
    client: TestClient[Any], world: dict[str, Any], vault: Vault
) -> None:
    """The matrix is not vacuous: an unguarded new route and a handler that skips the
    object check are both reported."""
    from litestar import get

    from vault.db.models import Account

    @get("/api/v1/planted/unguarded", sync_to_thread=False)
    def unguarded() -> dict[str, str]:
        return {"leak": "yes"}

    @get(
        "/api/v1/planted/pro/{account_id:str}",
        opt={"roles": ("professional",)},
        sync_to_thread=True,
    )
    def no_object_check(account_id: str) -> dict[str, str]:
        with vault.read() as s:  # forgets vault.professional.accompanied()
            acc = s.get(Account, account_id)
        return {"status": acc.status if acc else "?"}

    client.app.register(unguarded)
    client.app.register(no_object_check)
    failures, _ = _matrix(client, world)
    text = "\n".join(failures)
    assert "GET /api/v1/planted/unguarded: no roles and not in PUBLIC_ROUTES" in text
    assert "professional GET /api/v1/planted/pro/{account_id:str} on a foreign" in text


def _matrix(client: TestClient[Any], world: dict[str, Any]) -> tuple[list[str], set[Any]]:
    app = client.app
    handlers = _handlers(app)
    assert len(handlers) > 20
    failures: list[str] = []
    public_seen = set()
    for method, path, handler in handlers:
        roles = handler.opt.get("roles")
        if not roles:
            public_seen.add((method, path))
            if (method, path) not in PUBLIC_ROUTES:
                failures.append(f"{method} {path}: no roles and not in PUBLIC_ROUTES")
            continue
        unknown_roles = set(roles) - set(ROLES)
        if unknown_roles:
            failures.append(f"{method} {path}: unknown roles {unknown_roles}")
        params = set(__import__("re").findall(r"\{(\w+)", path))
        if params - KNOWN_PARAMS:
            failures.append(f"{method} {path}: unmapped path parameters {params - KNOWN_PARAMS}")
            continue
        own_url = _fill(path, world["own"])
        # 1. anonymous
        r = _call(client, method, own_url, None)
        if not _denied_anonymous(path, r):
            failures.append(f"anonymous {method} {path}: {r.status_code}")
        for role in ROLES:
            token = world["tokens"][role]
            if role not in roles:
                # 2. forbidden role: 403 whatever the object
                r = _call(client, method, own_url, token)
                if r.status_code != 403:
                    failures.append(f"{role} {method} {path}: {r.status_code}, expected 403")
                continue
            # 3. allowed role, foreign object: 404
            scoped = [p for p in params if (role, p) in OBJECT_SCOPED]
            if scoped:
                foreign = dict(world["own"])
                for p in scoped:
                    foreign[p] = world["foreign"][p]
                url = _fill(path, foreign)
                if method == "POST" and not path.startswith("/api/"):
                    r = _page_post(client, url, role, token)
                else:
                    r = _call(client, method, url, token)
                if r.status_code != 404:
                    failures.append(
                        f"{role} {method} {path} on a foreign {scoped}: "
                        f"{r.status_code}, expected 404"
                    )
            # 4. allowed role on its own objects passes the guard (reads only).
            if method == "GET" and path.startswith("/api/"):
                r = _call(client, method, own_url, token)
                if r.status_code in (401, 403):
                    failures.append(f"{role} {method} {path} (own): {r.status_code}")
    return failures, PUBLIC_ROUTES - public_seen
