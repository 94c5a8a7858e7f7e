"""Command-line access to the legal rules: notification date, appeal deadline,
eligibility.

Mounted by the main CLI::

    app.add_typer(legal_app, name="legal")
    app.add_typer(eligibility_app, name="eligibility")

Times are ISO 8601. A time without an offset is read as Europe/Paris wall-clock time
(the output says so); a wall-clock time that does not exist or occurs twice because of
a DST change is refused, with a request for an explicit offset. Nothing here reads the
clock: pass ``--now`` to know whether an unopened document is notified yet.

Exit codes: 0 on an answer (including "not eligible" and "not yet notified"),
2 on invalid input.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, NoReturn

import typer

from vault.eligibility import Procedure, Registration, decide
from vault.errors import InvalidInput
from vault.notification import (
    DEFAULT_NOTIFICATION_RULE,
    PARIS,
    AppealDeadline,
    NotificationOutcome,
    appeal_deadline,
    deemed_notification_date,
    deemed_notification_instant,
    notification_date,
)

__all__ = ["eligibility_app", "legal_app", "parse_instant"]

legal_app = typer.Typer(
    help="Legal dates: notification (CESEDA R.531-17) and CNDA appeal deadline (L.532-1).",
    no_args_is_help=True,
)
eligibility_app = typer.Typer(
    help="Who is in the electronic notification scheme.", no_args_is_help=True
)


@legal_app.callback()
def _legal() -> None:
    """Legal dates (CESEDA R.531-17, L.532-1). Not legal advice."""


@eligibility_app.callback()
def _eligibility() -> None:
    """Electronic notification scheme eligibility."""


def parse_instant(text: str, field: str) -> tuple[datetime, bool]:
    """Parse ISO 8601; return (aware UTC instant, whether Europe/Paris was assumed)."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"{field}: not an ISO 8601 date-time: {text!r}", field=field) from exc
    if at.tzinfo is not None:
        return at.astimezone(UTC), False
    zone = DEFAULT_NOTIFICATION_RULE.zone
    first, second = at.replace(tzinfo=zone, fold=0), at.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        # Either a gap (spring forward) or an overlap (fall back): both need an offset.
        roundtrip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        what = "does not exist" if roundtrip != at else "occurs twice"
        raise InvalidInput(
            f"{field}: {text!r} {what} in Europe/Paris (DST change); give an offset",
            field=field,
        )
    return first.astimezone(UTC), True


def _parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"{field}: not an ISO 8601 date: {text!r}", field=field) from exc


def _fail(error: InvalidInput) -> NoReturn:
    typer.echo(f"erreur / error: {error.detail}", err=True)
    raise typer.Exit(code=2)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _paris(at: datetime) -> str:
    return at.astimezone(DEFAULT_NOTIFICATION_RULE.zone).isoformat()


def _emit(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True))


# --- notification-date -------------------------------------------------------------------
@legal_app.command("notification-date")
def notification_date_command(
    made_available: Annotated[
        str, typer.Option("--made-available", help="Making available (ISO 8601).")
    ],
    first_access: Annotated[
        str | None, typer.Option("--first-access", help="First consultation (ISO 8601).")
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Evaluate as of this instant (ISO 8601).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """When a document is notified: first consultation, or deemed after 15 days."""
    rule = DEFAULT_NOTIFICATION_RULE
    try:
        made, made_assumed = parse_instant(made_available, "--made-available")
        access, access_assumed = (
            parse_instant(first_access, "--first-access") if first_access else (None, False)
        )
        at, now_assumed = parse_instant(now, "--now") if now else (None, False)
        deemed_on = deemed_notification_date(made, rule)
        deemed_at = deemed_notification_instant(made, rule)
        outcome: NotificationOutcome | None = None
        if access is not None or at is not None:
            outcome = notification_date(made, access, now=at, rule=rule)
    except InvalidInput as error:
        _fail(error)

    assumed = [
        name
        for name, flag in (
            ("made_available", made_assumed),
            ("first_access", access_assumed),
            ("now", now_assumed),
        )
        if flag
    ]
    if outcome is not None:
        status = "notified"
    elif at is not None:
        status = "not_yet_notified"
    else:
        status = "deemed_if_unopened"

    if as_json:
        _emit(
            {
                "status": status,
                "notified_on": outcome.notified_on.isoformat() if outcome else None,
                "notified_at": _utc(outcome.notified_at) if outcome else None,
                "basis": outcome.basis if outcome else None,
                "deemed_notification_date": deemed_on.isoformat(),
                "deemed_notification_instant": _utc(deemed_at),
                "rule": {"name": rule.name, "version": rule.version},
                "timezone_assumed": {"timezone": PARIS, "fields": assumed} if assumed else None,
            }
        )
        return

    for name in assumed:
        typer.echo(
            f"note : heure sans décalage lue en heure de Paris ({name}) / "
            f"time without offset read as Europe/Paris ({name})",
            err=True,
        )
    if outcome is not None and outcome.basis == "first_access":
        typer.echo(
            f"Notifié le {outcome.notified_on:%d/%m/%Y} : première consultation le "
            f"{_paris(outcome.notified_at)}."
        )
        typer.echo(
            f"Notified on {outcome.notified_on.isoformat()}: first consultation at "
            f"{_utc(outcome.notified_at)}."
        )
    elif outcome is not None:
        typer.echo(
            f"Réputé notifié le {outcome.notified_on:%d/%m/%Y} : délai de {rule.days} jours "
            f"expiré le {_paris(outcome.notified_at)}."
        )
        typer.echo(
            f"Deemed notified on {outcome.notified_on.isoformat()}: the {rule.days}-day "
            f"delay expired at {_utc(outcome.notified_at)}."
        )
    else:
        prefix_fr = "Pas encore notifié. " if status == "not_yet_notified" else ""
        prefix_en = "Not yet notified. " if status == "not_yet_notified" else ""
        typer.echo(
            f"{prefix_fr}Sans consultation avant le {_paris(deemed_at)}, "
            f"réputé notifié le {deemed_on:%d/%m/%Y}."
        )
        typer.echo(
            f"{prefix_en}Unless opened before {_utc(deemed_at)}, "
            f"deemed notified on {deemed_on.isoformat()}."
        )
    typer.echo(f"Règle / rule: {rule.name} v{rule.version}")


# --- appeal-deadline ---------------------------------------------------------------------
@legal_app.command("appeal-deadline")
def appeal_deadline_command(
    notified: Annotated[
        str, typer.Option("--notified", help="Notification date (YYYY-MM-DD, Paris).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Last day to appeal to the CNDA (one month, délai franc), absent legal aid."""
    try:
        result: AppealDeadline = appeal_deadline(_parse_date(notified, "--notified"))
    except InvalidInput as error:
        _fail(error)
    if as_json:
        _emit(
            {
                "notified_on": result.notified_on.isoformat(),
                "deadline": result.deadline.isoformat(),
                "nominal_deadline": result.nominal_deadline.isoformat(),
                "skipped_days": [d.isoformat() for d in result.skipped_days],
                "lodge_by": "end of deadline day, Europe/Paris",
                "absent_legal_aid_request": True,
                "rule": {"name": result.rule_name, "version": result.rule_version},
                "caveat_fr": result.caveat_fr,
                "caveat_en": result.caveat_en,
            }
        )
        return
    typer.echo(
        f"Recours devant la CNDA au plus tard le {result.deadline:%d/%m/%Y} "
        f"(notification du {result.notified_on:%d/%m/%Y})."
    )
    typer.echo(
        f"Appeal to the CNDA by the end of {result.deadline.isoformat()} "
        f"(notified {result.notified_on.isoformat()})."
    )
    typer.echo(result.caveat_fr)
    typer.echo(result.caveat_en)
    typer.echo(f"Règle / rule: {result.rule_name} v{result.rule_version}")


# --- eligibility check -------------------------------------------------------------------
@eligibility_app.command("check")
def eligibility_check_command(
    guda: Annotated[str, typer.Option("--guda", help="GUDA of registration.")],
    registered_on: Annotated[
        str, typer.Option("--registered-on", help="Registration date (YYYY-MM-DD).")
    ],
    procedure: Annotated[
        str,
        typer.Option("--procedure", help="normal, accelerated, dublin or dublin_requalified."),
    ],
    requalified_on: Annotated[
        str | None, typer.Option("--requalified-on", help="Requalification date.")
    ] = None,
    requalification_region: Annotated[
        str | None,
        typer.Option("--requalification-region", help="Region of the requalifying prefecture."),
    ] = None,
    overseas: Annotated[bool, typer.Option("--overseas")] = False,
    unaccompanied_minor: Annotated[bool, typer.Option("--unaccompanied-minor")] = False,
    unable_to_use_space: Annotated[bool, typer.Option("--unable-to-use-space")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Is this applicant notified electronically or by post?"""
    try:
        registration = Registration(
            guda=guda,
            registered_on=_parse_date(registered_on, "--registered-on"),
            procedure=_procedure(procedure),
            requalified_on=(
                _parse_date(requalified_on, "--requalified-on") if requalified_on else None
            ),
            requalification_region=requalification_region,
            overseas=overseas,
            unaccompanied_minor=unaccompanied_minor,
            unable_to_use_space=unable_to_use_space,
        )
        decision = decide(registration)
    except InvalidInput as error:
        _fail(error)
    if as_json:
        _emit(
            {
                "electronic": decision.electronic,
                "reason": decision.reason,
                "detail": decision.detail,
                "table_version": decision.table_version,
            }
        )
        return
    if decision.electronic:
        typer.echo("Notification électronique (espace numérique personnel sécurisé).")
        typer.echo("Electronic notification (secure digital space).")
    else:
        typer.echo(f"Notification par voie postale (motif : {decision.reason}).")
        typer.echo(f"Notification by post ({decision.reason}: {decision.detail}).")
    typer.echo(f"Table : {decision.table_version}")


def _procedure(text: str) -> Procedure:
    value = text.strip().lower().replace("-", "_")
    if value == "normal":
        return "normal"
    if value == "accelerated":
        return "accelerated"
    if value == "dublin":
        return "dublin"
    if value == "dublin_requalified":
        return "dublin_requalified"
    raise InvalidInput(f"--procedure: unknown procedure {text!r}", field="procedure")
