"""What the vault says: alert messages rendered in the applicant's language.

Invariants:

* Each kind has a closed context schema. A key outside it is refused
  (:class:`InvalidInput`), so ``document_available`` and ``reminder`` can never be
  given a document's type, title or content, even by mistake: an alert may be read by
  whoever holds the phone or the mailbox, and the document itself is only for the
  applicant's secure space (arrêté of 8 July 2020).
* ``key_recovery`` is the only applicant message carrying a secret (the connection
  key); ``acknowledgement_of_receipt`` goes to OFPRA's director general and the
  prefecture (CESEDA R.531-17) and carries the document's reference, type, OFPRA
  number and notification date. Both are ``sensitive``: their digest must be keyed.
* Plain text is the source: the HTML part is the same paragraphs, autoescaped, laid out
  by ``_layout.html.j2``, so the two parts cannot drift apart and HTML adds nothing the
  text does not say.
* Languages: ``fr``, ``en``, ``ar``; any other falls back to French. The
  acknowledgement of receipt is always French (it goes to French administrations).
  The Arabic wording should be reviewed by a sworn translator before production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime

from vault.alerts.channels import Attachment, ChannelName, OutboundMessage
from vault.errors import InvalidInput

MessageKind = Literal[
    "document_available",
    "reminder",
    "key_recovery",
    "contact_confirmation",
    "acknowledgement_of_receipt",
]
Language = Literal["fr", "en", "ar"]
NotificationBasis = Literal["first_consultation", "deemed_after_15_days"]

SUPPORTED_LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
FALLBACK_LANGUAGE: Final[Language] = "fr"
RTL_LANGUAGES: Final = frozenset({"ar"})
PARIS: Final = ZoneInfo("Europe/Paris")
TEMPLATES_DIR: Final = Path(__file__).parent / "templates"

# Kinds whose rendering holds a secret or personal data: see message_digest().
SENSITIVE_KINDS: Final[frozenset[MessageKind]] = frozenset(
    {"key_recovery", "acknowledgement_of_receipt"}
)


@dataclass(frozen=True)
class _Schema:
    required: frozenset[str]
    optional: frozenset[str] = frozenset()


_SCHEMAS: Final[Mapping[MessageKind, _Schema]] = {
    "document_available": _Schema(frozenset({"portal_url"})),
    "reminder": _Schema(frozenset({"portal_url"})),
    "key_recovery": _Schema(frozenset({"portal_url", "connection_key"})),
    "contact_confirmation": _Schema(frozenset({"portal_url", "contact_kind"})),
    "acknowledgement_of_receipt": _Schema(
        frozenset(
            {
                "document_reference",
                "document_type",
                "ofpra_number",
                "made_available_at",
                "notification_date",
                "notification_basis",
            }
        ),
        frozenset({"first_consulted_at", "rule_version", "recipient_service"}),
    ),
}


@dataclass(frozen=True)
class RenderedMessage:
    """One rendered message. ``sms`` is ``None`` for kinds never sent by SMS."""

    kind: MessageKind
    language: Language
    subject: str
    text: str
    html: str
    sms: str | None

    @property
    def sensitive(self) -> bool:
        return self.kind in SENSITIVE_KINDS

    def __repr__(self) -> str:
        # The bodies may hold a connection key: never in a log line.
        return f"RenderedMessage(kind={self.kind!r}, language={self.language!r})"

    def to_outbound(
        self,
        channel: ChannelName,
        dedupe_key: str,
        recipient: str,
        attachments: tuple[Attachment, ...] = (),
    ) -> OutboundMessage:
        """The message as a channel sends it: SMS gets the short body only."""
        if channel == "sms":
            if self.sms is None:
                raise InvalidInput(f"{self.kind} is not sent by SMS")
            return OutboundMessage(
                dedupe_key=dedupe_key,
                channel="sms",
                recipient=recipient,
                subject=None,
                text=self.sms,
                language=self.language,
            )
        return OutboundMessage(
            dedupe_key=dedupe_key,
            channel=channel,
            recipient=recipient,
            subject=self.subject,
            text=self.text,
            html=self.html,
            attachments=attachments,
            language=self.language,
        )


def resolve_language(language: str | None) -> Language:
    """``"en-GB"`` -> ``"en"``; unsupported or missing -> French."""
    if language:
        primary = language.replace("_", "-").split("-", 1)[0].lower()
        for supported in SUPPORTED_LANGUAGES:
            if primary == supported:
                return supported
    return FALLBACK_LANGUAGE


_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    # HTML escaped; plain-text parts (.txt.j2) are not HTML and must not be escaped.
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",), default=True
    ),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)


def _checked(kind: str, context: Mapping[str, Any]) -> tuple[MessageKind, dict[str, Any]]:
    if kind not in _SCHEMAS:
        raise InvalidInput(f"unknown message kind {kind!r}")
    checked_kind: MessageKind = kind  # type: ignore[assignment]  # narrowed by the test above
    return checked_kind, _PREPARE[checked_kind](_check_context(checked_kind, context))


def validate(kind: str, **context: Any) -> None:
    """Refuse a context :func:`render` would refuse (schema and value checks) without
    rendering the templates: for callers that queue a message now and render it at
    send time, inside the ledger writer's transaction where every millisecond counts."""
    _checked(kind, context)


def render(kind: str, language: str | None, **context: Any) -> RenderedMessage:
    """Render ``kind`` in ``language`` (with French fallback). See the module docstring."""
    checked_kind, values = _checked(kind, context)
    lang = "fr" if checked_kind == "acknowledgement_of_receipt" else resolve_language(language)

    template = _ENV.get_template(f"{checked_kind}/{lang}.txt.j2")
    subject = " ".join(_render_block(template, "subject", values).split())
    text = _render_block(template, "text", values).strip() + "\n"
    sms_text = " ".join(_render_block(template, "sms", values).split()) or None
    html = _ENV.get_template("_layout.html.j2").render(
        lang=lang,
        direction="rtl" if lang in RTL_LANGUAGES else "ltr",
        subject=subject,
        paragraphs=[p.split("\n") for p in text.strip().split("\n\n")],
        link=values.get("portal_url"),
    )
    return RenderedMessage(checked_kind, lang, subject, text, html, sms_text)


def _render_block(template: jinja2.Template, block: str, values: Mapping[str, Any]) -> str:
    if block not in template.blocks:
        return ""
    return "".join(template.blocks[block](template.new_context(dict(values))))


def _check_context(kind: MessageKind, context: Mapping[str, Any]) -> dict[str, Any]:
    schema = _SCHEMAS[kind]
    unexpected = set(context) - schema.required - schema.optional
    if unexpected:
        # Names only: the values may be exactly what must not leak.
        raise InvalidInput(f"{kind} does not take {', '.join(sorted(unexpected))}")
    missing = schema.required - set(context)
    if missing:
        raise InvalidInput(f"{kind} needs {', '.join(sorted(missing))}")
    return dict(context)


def _check_portal_url(values: dict[str, Any]) -> dict[str, Any]:
    url = values["portal_url"]
    if not isinstance(url, str) or not url.startswith("https://") or any(c.isspace() for c in url):
        raise InvalidInput("portal_url must be an https:// URL")
    return values


def _prepare_key_recovery(values: dict[str, Any]) -> dict[str, Any]:
    key = values["connection_key"]
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        raise InvalidInput("connection_key must be a non-empty string without spaces")
    return _check_portal_url(values)


def _prepare_contact_confirmation(values: dict[str, Any]) -> dict[str, Any]:
    if values["contact_kind"] not in ("email", "phone"):
        raise InvalidInput("contact_kind must be email or phone")
    return _check_portal_url(values)


def _paris(at: Any, name: str) -> str:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput(f"{name} must be an aware datetime")
    return format_datetime(at, "d MMMM y 'à' HH:mm:ss", tzinfo=PARIS, locale="fr_FR") + (
        " (heure de Paris)"
    )


def _prepare_acknowledgement(values: dict[str, Any]) -> dict[str, Any]:
    notification_date = values["notification_date"]
    if not isinstance(notification_date, date) or isinstance(notification_date, datetime):
        raise InvalidInput("notification_date must be a date (the legal date, Europe/Paris)")
    if values["notification_basis"] not in get_args(NotificationBasis):
        raise InvalidInput("notification_basis must be first_consultation or deemed_after_15_days")
    for name in ("document_reference", "document_type", "ofpra_number"):
        if not isinstance(values[name], str) or not values[name].strip():
            raise InvalidInput(f"{name} must be a non-empty string")
    first = values.get("first_consulted_at")
    if values["notification_basis"] == "first_consultation" and first is None:
        raise InvalidInput("a first_consultation basis needs first_consulted_at")
    return {
        **values,
        "made_available_at": _paris(values["made_available_at"], "made_available_at"),
        "first_consulted_at": None if first is None else _paris(first, "first_consulted_at"),
        "notification_date": format_date(notification_date, "long", locale="fr_FR"),
        "rule_version": values.get("rule_version"),
        "recipient_service": values.get("recipient_service"),
    }


_PREPARE: Final[Mapping[MessageKind, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "document_available": _check_portal_url,
    "reminder": _check_portal_url,
    "key_recovery": _prepare_key_recovery,
    "contact_confirmation": _prepare_contact_confirmation,
    "acknowledgement_of_receipt": _prepare_acknowledgement,
}


def message_digest(rendered: RenderedMessage, *, key: bytes | None = None) -> str:
    """Hex SHA-256 of the rendered message, for the ledger (never the address).

    The input is a canonical JSON of kind, language, subject, text, HTML and SMS body.
    With ``key`` it is HMAC-SHA256 instead, and a key is *required* for sensitive kinds:
    a plain hash of a message whose only unknown is a short connection key, or an
    OFPRA number, can be reversed by trying every value. Erasing the key later
    unlinks the ledger entry from the person without breaking the proof.
    """
    canonical = json.dumps(
        {
            "kind": rendered.kind,
            "language": rendered.language,
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "sms": rendered.sms,
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")
    if key is None:
        if rendered.sensitive:
            raise InvalidInput(f"a {rendered.kind} digest must be keyed")
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


# --- SMS length (3GPP TS 23.038) ---------------------------------------------------------
_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION: Final = frozenset("^{}\\[~]|€\f")


def gsm7_length(text: str) -> int | None:
    """Septets needed in the GSM 7-bit default alphabet, or ``None`` if it needs UCS-2."""
    length = 0
    for char in text:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENSION:
            length += 2
        else:
            return None
    return length


def sms_segments(text: str) -> int:
    """How many SMS parts ``text`` takes (160/153 septets, or 70/67 UCS-2 units)."""
    septets = gsm7_length(text)
    if septets is not None:
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


__all__ = [
    "SENSITIVE_KINDS",
    "SUPPORTED_LANGUAGES",
    "Language",
    "MessageKind",
    "NotificationBasis",
    "RenderedMessage",
    "gsm7_length",
    "message_digest",
    "render",
    "resolve_language",
    "sms_segments",
]
