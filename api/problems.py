"""RFC 9457 problem details with stable codes. No stack trace ever reaches a client."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_405_METHOD_NOT_ALLOWED

from vault.errors import IntegrityError, UnavailableError, VaultError

log = logging.getLogger("vault.api")
PROBLEM_BASE = "https://ofpra-vault.invalid/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail and detail != title:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"Retry-After": "5"} if status == 503 else {}
    if status == 429 and "retry_after" in extra:
        headers["Retry-After"] = str(int(extra["retry_after"]))
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def on_vault_error(request: Request[Any, Any, Any], exc: VaultError) -> Response[dict[str, Any]]:
    if isinstance(exc, IntegrityError) and exc.status >= 500:
        # Integrity failures are opaque to clients; the detail goes to the log.
        log.error("integrity failure on %s: %s (%s)", request.url.path, exc.code, exc.detail)
        return problem(exc.status, exc.code, exc.title)
    if isinstance(exc, UnavailableError):
        log.warning("unavailable on %s: %s", request.url.path, exc.code)
    extra = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | float | bool)}
    return problem(exc.status, exc.code, exc.title, exc.detail, **extra)


def on_validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors = []
    if isinstance(exc.extra, list):
        for e in exc.extra:
            if isinstance(e, dict):
                errors.append(
                    {k: str(v) for k, v in e.items() if k in ("key", "message", "source")}
                )
    return problem(
        400, "invalid_input", "The request is not valid", exc.detail, errors=errors or None
    )


_HTTP_CODES = {
    400: ("bad_request", "The request is not valid"),
    401: ("unauthenticated", "Authentication is required"),
    403: ("forbidden", "This role may not do this"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "The request body is too large"),
    415: ("unsupported_media_type", "The content type is not supported"),
    429: ("too_many_requests", "Too many requests"),
}


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        status = 404
    elif isinstance(exc, NotAuthorizedException):
        status = 401
    elif isinstance(exc, PermissionDeniedException):
        status = 403
    code, title = _HTTP_CODES.get(status, ("http_error", "Request failed"))
    if status >= 500:
        log.error("HTTP %s on %s: %s", status, request.url.path, exc.detail)
        return problem(status, "internal_error", "Internal error")
    detail = exc.detail if status not in (404, HTTP_405_METHOD_NOT_ALLOWED) else None
    if status == 400 and "JSON" in str(exc.detail):
        code, title = "malformed_json", "The JSON body is malformed"
    return problem(status, code, title, detail)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal_error", "Internal error")
