"""Alert routes: the admin view of the outbox and the SMS provider's delivery reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter

from api.schemas import MAX_OFFSET, AlertStatus
from api.security import PrincipalDep, VaultDep
from vault.alerts import dispatcher
from vault.alerts.channels import parse_delivery_report
from vault.clock import SystemClock
from vault.errors import PayloadTooLarge, SignatureError
from vault.service import Vault

ADMIN = {"roles": ("admin",)}


class DeliveryReportRejected(SignatureError):
    """A delivery report whose signature or timestamp does not verify (forged or
    replayed): 401, saying nothing of which check failed."""

    code = "delivery_report_rejected"
    status = 401
    title = "The delivery report is not authentic"


MAX_REPORT_BYTES = 16 * 1024

OutboxStatus = Literal[
    "pending", "sending", "sent", "delivered", "failed", "dead", "cancelled", "no_channel"
]


class OutboxItem(msgspec.Struct):
    id: int
    kind: str
    channel: str
    destination: str | None
    recipient: str  # masked (j***@e***.fr, +33*******78): never the address
    document_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider_message_id: str | None
    created_at: datetime
    updated_at: datetime


class OutboxList(msgspec.Struct):
    items: list[OutboxItem]
    offset: int
    limit: int


class DeliveryReportAccepted(msgspec.Struct):
    status: str | None


def alert_statuses(vault: Vault, document_ids: Iterable[str]) -> dict[str, list[AlertStatus]]:
    """:func:`vault.alerts.dispatcher.alert_status_for_documents` as response Structs
    (one query for a whole page of documents)."""
    return {
        doc: [AlertStatus(**item) for item in items]
        for doc, items in dispatcher.alert_status_for_documents(vault, document_ids).items()
    }


@get("/api/v1/admin/outbox", opt=ADMIN, tags=["admin"], sync_to_thread=True)
def admin_outbox(
    vault: VaultDep,
    principal: PrincipalDep,
    status: Annotated[OutboxStatus | None, QueryParameter()] = None,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> Response[OutboxList]:
    """Outbox messages, newest first (``?status=dead`` for the dead-letter queue)."""
    items = dispatcher.list_outbox(vault, status=status, limit=limit, offset=offset)
    return Response(
        OutboxList([OutboxItem(**i) for i in items], offset, limit),
        headers={"Cache-Control": "no-store"},
    )


@post(
    "/api/v1/admin/outbox/{message_id:int}/retry",
    opt=ADMIN,
    tags=["admin"],
    sync_to_thread=True,
    status_code=200,
)
def admin_outbox_retry(
    message_id: FromPath[int], vault: VaultDep, principal: PrincipalDep
) -> OutboxItem:
    """Put a dead (or provider-failed) message back in the queue with fresh attempts."""
    return OutboxItem(**dispatcher.retry_message(vault, message_id))


@post("/api/v1/alerts/sms/delivery-report", tags=["alerts"], status_code=200)
async def sms_delivery_report(
    request: Request[Any, Any, Any], vault: VaultDep
) -> DeliveryReportAccepted:
    """The SMS provider's delivery report (public; HMAC-signed with
    ``VAULT_SMS_REPORT_SECRET``, see :func:`vault.alerts.channels.parse_delivery_report`).

    An unknown message id is accepted (200, ``status: null``) so that the provider
    stops retrying, but changes nothing."""
    secret = vault.settings.sms_report_secret
    if not secret:
        # No secret configured: every report is refused rather than trusted.
        raise DeliveryReportRejected()
    body = await request.body()
    if len(body) > MAX_REPORT_BYTES:
        raise PayloadTooLarge("a delivery report is at most 16 KiB")
    # Freshness is judged against real time: the provider signs with its wall clock.
    try:
        report = parse_delivery_report(
            body, dict(request.headers), secret.encode(), now=SystemClock().now()
        )
    except SignatureError:
        raise DeliveryReportRejected() from None
    status = await anyio.to_thread.run_sync(dispatcher.apply_delivery_report, vault, report)
    return DeliveryReportAccepted(status)


ROUTES: list[Any] = [admin_outbox, admin_outbox_retry, sms_delivery_report]
