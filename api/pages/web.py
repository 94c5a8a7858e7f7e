"""Page machinery: templates, language choice, CSRF, security headers, page errors.

Pages are plain HTML forms with POST/redirect/GET; they work without JavaScript.

CSRF (OWASP CSRF cheat sheet, "signed double-submit cookie"): a random ``vault_csrf``
cookie (HttpOnly, SameSite=Strict) is the key of an HMAC over the value of the
session cookie in use (applicant or staff page session, or nothing before sign-in);
every form carries that HMAC and every POST recomputes it. A token is thus bound to
the browser and to its session, and a cookie planted by a sibling domain is useless
without the session. The ``Origin`` header, when sent, must be our own host. We do
this inside the pages rather than with Litestar's ``CSRFConfig`` because that
middleware is app-wide and would break the bearer-token JSON API.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import anyio.to_thread
import jinja2
from babel.dates import format_date, format_datetime
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.types import ASGIApp, Receive, Scope, Send

from api import i18n
from api.pages import staff_sessions
from api.security import SESSION_COOKIE, resolve_principal
from vault import accounts
from vault.db.models import Account
from vault.errors import Forbidden, NotFound, Unauthenticated, VaultError
from vault.principal import Principal
from vault.service import Vault

STAFF_COOKIE = "vault_staff"
CSRF_COOKIE = "vault_csrf"
LANG_COOKIE = "vault_lang"
PARIS = ZoneInfo("Europe/Paris")  # dates are shown in the office's legal time zone

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

#: CSP (W3C CSP Level 3): no script at all, styles from our own stylesheet only,
#: forms post to ourselves, never framed (clickjacking).
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chrome sends "Origin: null" on
    # form posts, and the Origin check below needs the real origin.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Every page shows personal data or a per-session CSRF token: never cache.
    "Cache-Control": "no-store",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


class CsrfFailed(VaultError):
    code = "csrf_failed"
    status = 403
    title = "The form has expired or did not come from this site"


def _vault(request: Request[Any, Any, Any]) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def safe_next(value: str | None, default: str) -> str:
    """A local path only (no scheme, no host, no ``//``): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


@dataclass
class Page:
    """Everything a handler needs to answer with a page."""

    request: Request[Any, Any, Any]
    vault: Vault
    principal: Principal | None
    lang: i18n.Language
    csrf_key: str
    cookies: list[Cookie] = field(default_factory=list)

    # -- text -----------------------------------------------------------------------
    def _(self, message: str, **values: Any) -> str:
        text = self.lang.gettext(message)
        return text.format(**values) if values else text

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(PARIS).date()
        return format_date(value, "long", locale=self.lang.code)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, "medium", tzinfo=PARIS, locale=self.lang.code)

    # -- CSRF -----------------------------------------------------------------------
    def _binding(self) -> str:
        req = self.request
        return req.cookies.get(STAFF_COOKIE) or req.cookies.get(SESSION_COOKIE) or ""

    def csrf_token(self, binding: str | None = None) -> str:
        bound = self._binding() if binding is None else binding
        mac = hmac.new(self.csrf_key.encode(), b"pages-csrf\x00" + bound.encode(), hashlib.sha256)
        return mac.hexdigest()

    def check_csrf(self, form: Mapping[str, Any]) -> None:
        origin = self.request.headers.get("origin")
        host = self.request.headers.get("host", "")
        if origin is not None and urlsplit(origin).netloc != host:
            raise CsrfFailed()
        sent = form.get("csrf_token")
        cookie = self.request.cookies.get(CSRF_COOKIE)
        if not cookie or not isinstance(sent, str):
            raise CsrfFailed()
        if not hmac.compare_digest(sent, self.csrf_token()):
            raise CsrfFailed()

    # -- responses ------------------------------------------------------------------
    def cookie(self, key: str, value: str, *, max_age: int | None = None) -> None:
        self.cookies.append(
            Cookie(
                key=key,
                value=value,
                httponly=True,
                samesite="strict",
                secure=self.vault.settings.secure_cookies,
                path="/",
                max_age=max_age,
            )
        )

    def expire_cookie(self, key: str) -> None:
        self.cookies.append(
            Cookie(
                key=key,
                value="",
                httponly=True,
                samesite="strict",
                secure=self.vault.settings.secure_cookies,
                path="/",
                max_age=0,
            )
        )

    def render(
        self, template: str, *, status: int = 200, binding: str | None = None, **context: Any
    ) -> Response[str]:
        path = self.request.url.path
        switch = [
            (code, i18n.language(code).name, f"{path}?lang={code}")
            for code in i18n.available_languages()
        ]
        html = _env.get_template(template).render(
            _=self._,
            fmt_date=self.date,
            fmt_datetime=self.datetime,
            lang=self.lang,
            languages=switch,
            principal=self.principal,
            csrf_token=self.csrf_token(binding),
            path=path,
            **context,
        )
        return Response(
            html,
            status_code=status,
            media_type="text/html",
            headers=dict(SECURITY_HEADERS),
            cookies=list(self.cookies),
        )

    def redirect(self, url: str) -> Redirect:
        # 303: the browser follows with GET (POST/redirect/GET).
        return Redirect(
            url, status_code=303, headers=dict(SECURITY_HEADERS), cookies=list(self.cookies)
        )


def _account_language(vault: Vault, account_id: str) -> str | None:
    with vault.read() as s:
        acc = s.get(Account, account_id)
        return acc.language if acc is not None else None


async def optional_principal(request: Request[Any, Any, Any]) -> Principal | None:
    try:
        return await resolve_principal(request)
    except VaultError:
        return None


async def page(request: Request[Any, Any, Any], *, principal: Principal | None = None) -> Page:
    """Build the page context.

    Language (issue 7): the applicant's saved preference, then an explicit choice, then
    Accept-Language, then French. A signed-in applicant's explicit choice (``?lang=``,
    the switcher) is saved as their preference (``accounts.set_language``), so it holds
    on every device and in their alerts. Before sign-in, the explicit choice is this
    request's ``?lang=`` or the ``vault_lang`` cookie the switcher sets. A shared
    phone's old choice thus never overrides the saved preference of the next applicant.

    The switcher is a link (no JavaScript), so saving happens on a GET: the session
    cookie is SameSite=Strict, so a cross-site link arrives without it and saves nothing.
    """
    vault = _vault(request)
    if principal is None:
        principal = await optional_principal(request)
    cookies: list[Cookie] = []
    csrf_key = request.cookies.get(CSRF_COOKIE) or ""
    new_csrf = len(csrf_key) < 32
    if new_csrf:
        csrf_key = secrets.token_urlsafe(32)
    explicit = i18n.normalize(request.query_params.get("lang"))
    code: str | None = None
    if principal is not None and principal.kind == "applicant":
        if explicit:
            await anyio.to_thread.run_sync(accounts.set_language, vault, principal, explicit)
            code = explicit
        else:
            code = i18n.normalize(
                await anyio.to_thread.run_sync(_account_language, vault, principal.id)
            )
    code = (
        code
        or explicit
        or i18n.normalize((request.cookies.get(LANG_COOKIE) or "").partition(":")[0])
        or i18n.from_accept_language(request.headers.get("accept-language"))
        or i18n.DEFAULT_LANGUAGE
    )
    p = Page(request, vault, principal, i18n.language(code), csrf_key, cookies)
    if new_csrf:
        p.cookie(CSRF_COOKIE, csrf_key)
    if explicit:
        p.cookie(LANG_COOKIE, explicit, max_age=365 * 24 * 3600)
    return p


async def form_of(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    return {k: form.get(k) for k in form}


# -- errors -------------------------------------------------------------------------
def _login_url(request: Request[Any, Any, Any]) -> str:
    roles: Iterable[str] = ()
    handler = request.scope.get("route_handler")
    if handler is not None:
        roles = handler.opt.get("roles") or ()
    target = "/login" if "applicant" in roles or not roles else "/staff/sign-in"
    nxt = request.url.path
    return f"{target}?next={nxt}" if request.method == "GET" else target


def on_page_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Pages answer people: redirect to sign-in rather than a 401 JSON problem, and
    show other errors as an HTML page in the reader's language."""
    if isinstance(exc, Unauthenticated):
        resp = Redirect(_login_url(request), status_code=303, headers=dict(SECURITY_HEADERS))
        if request.cookies.get(STAFF_COOKIE) or request.cookies.get(SESSION_COOKIE):
            # A stale session cookie: drop it so the sign-in page starts clean.
            for key in (STAFF_COOKIE, SESSION_COOKIE):
                if request.cookies.get(key):
                    resp.delete_cookie(key, path="/")
        return resp
    status = exc.status if isinstance(exc, VaultError) else 500
    if isinstance(exc, HTTPException):
        status = exc.status_code
    if isinstance(exc, Forbidden):
        message = N_("You are not allowed to see this page.")
    elif isinstance(exc, NotFound) or status == 404:
        message = N_("This page or document does not exist.")
    elif isinstance(exc, CsrfFailed):
        message = N_("The form has expired. Go back, reload the page and try again.")
    elif status < 500:
        message = N_("The request could not be processed.")
    else:
        status = status if status >= 500 else 500
        message = N_("Something went wrong on our side. Please try again later.")
    lang_code = (
        i18n.normalize((request.cookies.get(LANG_COOKIE) or "").partition(":")[0])
        or i18n.from_accept_language(request.headers.get("accept-language"))
        or i18n.DEFAULT_LANGUAGE
    )
    lang = i18n.language(lang_code)
    html = _env.get_template("error.html").render(
        _=lambda m, **v: lang.gettext(m).format(**v) if v else lang.gettext(m),
        lang=lang,
        languages=[
            (c, i18n.language(c).name, f"{request.url.path}?lang={c}")
            for c in i18n.available_languages()
        ],
        principal=None,
        csrf_token="",
        path=request.url.path,
        message=message,
        status=status,
    )
    code = exc.code if isinstance(exc, VaultError) else f"http_{status}"
    # The stable code, for the access-control matrix and monitoring (a 403 is either
    # "forbidden" from the role guard or "csrf_failed" from the form check).
    headers = {**SECURITY_HEADERS, "X-Vault-Problem": code}
    return Response(html, status_code=status, media_type="text/html", headers=headers)


# -- middleware ---------------------------------------------------------------------
def pages_middleware(app: ASGIApp) -> ASGIApp:
    """Mark page requests (api/security.py then accepts the session cookie on POST,
    which is safe because every page POST checks its CSRF token) and resolve the
    staff page session into the principal the global role guard checks."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            s: dict[str, Any] = scope  # type: ignore[assignment]
            s["vault_pages"] = True
            headers = dict(scope.get("headers") or [])
            if b"authorization" not in headers and "vault_principal" not in s:
                session_id = _cookie(headers.get(b"cookie", b"").decode("latin-1"), STAFF_COOKIE)
                if session_id:
                    vault: Vault = scope["app"].state.vault
                    # An invalid staff session falls back to the applicant cookie,
                    # else anonymous.
                    with contextlib.suppress(Unauthenticated):
                        s["vault_principal"] = await anyio.to_thread.run_sync(
                            staff_sessions.authenticate, vault, session_id
                        )
        await app(scope, receive, send)

    return middleware


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v:
            return v
    return None


def page_opt(*roles: str) -> dict[str, Any]:
    """Route options of a page: the global role guard enforces ``roles``; ``page``
    tells the access-control matrix that refusals are 303 redirects / HTML pages."""
    return {"page": True, "roles": roles} if roles else {"page": True}


Handler = Callable[..., Any]
