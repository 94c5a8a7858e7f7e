"""Legal dates: when a document is notified, and until when it can be appealed.

Two named, versioned policies live here, each beside the text it implements:

* :class:`NotificationRule` -- CESEDA R.531-17: a document put in the applicant's
  secure space is notified at its first consultation or, failing that, is *deemed*
  notified at the end of fifteen days from its making available (upheld by
  Conseil d'État, 6 June 2023, no. 464768).
* :class:`AppealRule` -- CESEDA L.532-1: one month from notification to appeal to the
  CNDA, counted as a *délai franc* (case law), extended past weekends and public
  holidays.

Everything here is pure: callers pass every instant (``now`` included); nothing reads
the clock, the network or the disk. The holiday calendar is the ``holidays`` package,
which computes dates in memory.

Invariants
----------
* Every instant taken is timezone-aware; every instant returned is UTC.
* Legal *dates* are calendar dates in the rule's time zone (Europe/Paris), never UTC
  dates: a first access at 00:30 Paris on 6 March is notified on 6 March, even though
  it is still 5 March in UTC.
* A document is notified once. A first access strictly before the deemed instant
  notifies it (basis ``first_access``); otherwise it was notified at the deemed instant
  (basis ``delay_expired``), even if it is opened later.
* The deemed instant is local midnight starting the day after the deemed date,
  computed on the calendar, not by adding 24-hour periods, so DST changes move it by
  no more than they move midnight.
* An appeal deadline is always a working day and always falls after
  ``notified_on`` plus the rule's months.

Rules marked "(believed)" in docs/legal-rules.md are those no source text confirmed;
each is a field of its rule so the legal team can change it by issuing a new rule
version, never by editing code paths.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from vault.errors import InvalidInput

__all__ = [
    "APPEAL_CAVEAT_EN",
    "APPEAL_CAVEAT_FR",
    "DEFAULT_APPEAL_RULE",
    "DEFAULT_NOTIFICATION_RULE",
    "AppealDeadline",
    "AppealRule",
    "NotificationBasis",
    "NotificationOutcome",
    "NotificationRule",
    "appeal_deadline",
    "deemed_notification_date",
    "deemed_notification_instant",
    "is_working_day",
    "notification_date",
]

NotificationBasis = Literal["first_access", "delay_expired"]

PARIS = "Europe/Paris"


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}", field="tz") from exc


def _aware_utc(field: str, at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(f"{field} must be a timezone-aware datetime", field=field)
    return at.astimezone(UTC)


# --- rules ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NotificationRule:
    """How the deemed-notification delay of CESEDA R.531-17 is counted.

    ``days``: length of the delay. (believed) The day of making available is not
    counted, so the delay ends at the end of the ``days``-th following day. A reading
    that counts the day of making available as day 1 is ``days=14``.
    ``tz``: the zone whose calendar days are counted. (believed) Europe/Paris.
    ``extend_to_working_day``: (believed) ``False``: no weekend or holiday extension.
    If set, a deemed date on a Saturday, Sunday or French public holiday moves to the
    next working day (same calendar as :data:`DEFAULT_APPEAL_RULE`).
    """

    name: str
    version: str
    days: int
    tz: str
    description: str
    extend_to_working_day: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.version:
            raise InvalidInput("a notification rule needs a name and a version")
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise InvalidInput("the notification delay must be a positive number of days")
        _zone(self.tz)  # fail at construction, not at first use

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.tz)


# CESEDA R.531-17; upheld by Conseil d'État, 6 June 2023, no. 464768.
DEFAULT_NOTIFICATION_RULE = NotificationRule(
    name="R531-17/deemed-15-days",
    version="1",
    days=15,
    tz=PARIS,
    description=(
        "CESEDA R.531-17: notified at first consultation; failing that, deemed notified "
        "at the end of the 15th day after the day of making available, Europe/Paris "
        "calendar, no weekend or holiday extension (counting believed, not sourced)."
    ),
)


@dataclass(frozen=True, slots=True)
class AppealRule:
    """How the CNDA appeal delay of CESEDA L.532-1 is counted.

    ``months``: length of the delay, counted date to date; where the same day does not
    exist in the target month, the last day of that month (as C. proc. civ. art. 641).
    ``franc``: (believed, case law) délai franc: neither the day of notification nor
    the day the month expires is counted, so the last day to act is the day after.
    ``extend_to_working_day``: (believed for the CNDA) a last day that is a Saturday,
    Sunday or public holiday moves to the next working day, repeatedly.
    ``holiday_subdivision``: ``holidays`` subdivision code; ``None`` is the national
    (metropolitan) list. The CNDA sits in Montreuil (Seine-Saint-Denis), so Alsace-
    Moselle's extra days (Good Friday, 26 December; subdivisions "57" and "6AE") do
    not apply to it, wherever the applicant lives.
    """

    name: str
    version: str
    description: str
    months: int = 1
    franc: bool = True
    extend_to_working_day: bool = True
    holiday_subdivision: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.version:
            raise InvalidInput("an appeal rule needs a name and a version")
        if isinstance(self.months, bool) or not isinstance(self.months, int) or self.months < 1:
            raise InvalidInput("the appeal delay must be a positive number of months")
        subdivisions = holidays.list_supported_countries()["FR"]
        if self.holiday_subdivision is not None and self.holiday_subdivision not in subdivisions:
            raise InvalidInput(
                f"unknown French holiday subdivision {self.holiday_subdivision!r}",
                field="holiday_subdivision",
            )


# CESEDA L.532-1 (ex L.731-2): one month, on pain of inadmissibility.
DEFAULT_APPEAL_RULE = AppealRule(
    name="CESEDA L532-1/one-month-franc",
    version="1",
    description=(
        "CESEDA L.532-1: one month from notification, délai franc (the day of "
        "notification and the day of expiry are not counted), moved past Saturdays, "
        "Sundays and French national public holidays to the next working day."
    ),
)

# Loi n° 91-647 du 10 juillet 1991, art. 9-4.
APPEAL_CAVEAT_FR = (
    "Date limite calculée en l'absence de demande d'aide juridictionnelle : une demande "
    "d'aide juridictionnelle présentée dans les quinze jours de la notification suspend "
    "le délai de recours (loi n° 91-647 du 10 juillet 1991, art. 9-4). Le recours doit "
    "être enregistré à la CNDA au plus tard à la fin de ce jour (heure de Paris)."
)
APPEAL_CAVEAT_EN = (
    "Deadline absent a legal-aid request: a request for legal aid (aide "
    "juridictionnelle) made within fifteen days of the notification suspends the appeal "
    "delay (loi n° 91-647 of 10 July 1991, art. 9-4). The appeal must reach the CNDA by "
    "the end of that day (Paris time)."
)


# --- outcomes ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    """When, and on what basis, a document was notified.

    ``notified_on`` is the legal date (rule time zone). ``notified_at`` is the UTC
    instant: the first access, or the deemed instant (local midnight ending the
    delay). ``rule_name`` and ``rule_version`` go into the ``NOTIFIED`` ledger entry.
    """

    notified_on: date
    notified_at: datetime
    basis: NotificationBasis
    rule_name: str
    rule_version: str

    def summary(self) -> str:
        how = "first consultation" if self.basis == "first_access" else "delay expired"
        return (
            f"notified on {self.notified_on.isoformat()} ({how}; "
            f"rule {self.rule_name} v{self.rule_version})"
        )


@dataclass(frozen=True, slots=True)
class AppealDeadline:
    """The last day to lodge an appeal with the CNDA, absent a legal-aid request.

    ``nominal_deadline`` is the last day before any working-day extension;
    ``skipped_days`` lists the Saturdays, Sundays and holidays passed over to reach
    ``deadline``. The appeal must be lodged by the end of ``deadline`` (Paris time).
    """

    notified_on: date
    deadline: date
    nominal_deadline: date
    skipped_days: tuple[date, ...]
    rule_name: str
    rule_version: str
    caveat_fr: str
    caveat_en: str

    def summary(self) -> str:
        return (
            f"appeal by the end of {self.deadline.isoformat()} "
            f"(notified {self.notified_on.isoformat()}; rule {self.rule_name} "
            f"v{self.rule_version}; absent a legal-aid request)"
        )


# --- notification --------------------------------------------------------------------
def deemed_notification_date(
    made_available_at: datetime, rule: NotificationRule = DEFAULT_NOTIFICATION_RULE
) -> date:
    """The legal date on which an unopened document is deemed notified.

    The local date of making available plus ``rule.days`` (the day of making available
    is not counted): made available on 1 March at any hour, deemed notified on 16 March.
    """
    made = _aware_utc("made_available_at", made_available_at)
    deemed = made.astimezone(rule.zone).date() + timedelta(days=rule.days)
    if rule.extend_to_working_day:
        deemed, _ = _next_working_day(deemed, None)
    return deemed


def deemed_notification_instant(
    made_available_at: datetime, rule: NotificationRule = DEFAULT_NOTIFICATION_RULE
) -> datetime:
    """The UTC instant at which the delay has expired: local midnight starting the day
    after :func:`deemed_notification_date`.

    Made available 2026-03-01 10:00 Paris: the legal date is 2026-03-16 and this
    returns 2026-03-17 00:00 Paris, i.e. 2026-03-16T23:00Z. Any first access strictly
    before this instant is within the delay.
    """
    day_after = deemed_notification_date(made_available_at, rule) + timedelta(days=1)
    # Paris never changes offset at midnight, so local midnight always exists once.
    return datetime.combine(day_after, time(0), tzinfo=rule.zone).astimezone(UTC)


def notification_date(
    made_available_at: datetime,
    first_access_at: datetime | None,
    *,
    now: datetime | None = None,
    rule: NotificationRule = DEFAULT_NOTIFICATION_RULE,
) -> NotificationOutcome | None:
    """Apply CESEDA R.531-17 to the recorded facts.

    Returns ``None`` if, at ``now``, the document is neither opened nor past its
    delay. ``now`` may be omitted only when a first access is given (the facts then
    decide alone); without either, whether the delay has run is unknowable and
    :class:`InvalidInput` is raised rather than a guess.

    Raises :class:`InvalidInput` for naive datetimes, a first access before the making
    available, or an event after ``now``.
    """
    made = _aware_utc("made_available_at", made_available_at)
    access = None if first_access_at is None else _aware_utc("first_access_at", first_access_at)
    at = None if now is None else _aware_utc("now", now)

    if access is not None and access < made:
        raise InvalidInput(
            "the first access precedes the making available", field="first_access_at"
        )
    if at is not None:
        if made > at:
            raise InvalidInput("the making available is after `now`", field="made_available_at")
        if access is not None and access > at:
            raise InvalidInput("the first access is after `now`", field="first_access_at")

    deemed_at = deemed_notification_instant(made, rule)
    if access is not None and access < deemed_at:
        return NotificationOutcome(
            notified_on=access.astimezone(rule.zone).date(),
            notified_at=access,
            basis="first_access",
            rule_name=rule.name,
            rule_version=rule.version,
        )
    if access is None:
        if at is None:
            raise InvalidInput(
                "without a first access, `now` is needed to tell whether the delay has run",
                field="now",
            )
        if at < deemed_at:
            return None
    # Opened at or after the deemed instant, or never opened and the delay has run:
    # the document was already notified when the delay expired.
    return NotificationOutcome(
        notified_on=deemed_notification_date(made, rule),
        notified_at=deemed_at,
        basis="delay_expired",
        rule_name=rule.name,
        rule_version=rule.version,
    )


# --- appeal --------------------------------------------------------------------------
def appeal_deadline(notified_on: date, rule: AppealRule = DEFAULT_APPEAL_RULE) -> AppealDeadline:
    """The last day to appeal to the CNDA, absent a legal-aid request (L.532-1).

    Notified 2026-03-10: the month expires 2026-04-10; délai franc gives Saturday
    2026-04-11; moved to Monday 2026-04-13. Notified 2026-01-31: the month expires on
    2026-02-28 (no 31 February); délai franc gives Sunday 2026-03-01; moved to
    2026-03-02.
    """
    if isinstance(notified_on, datetime) or not isinstance(notified_on, date):
        raise InvalidInput(
            "the notification date must be a date, not a datetime", field="notified_on"
        )
    try:
        nominal = _add_months(notified_on, rule.months)
        if rule.franc:
            nominal += timedelta(days=1)
        deadline, skipped = (
            _next_working_day(nominal, rule.holiday_subdivision)
            if rule.extend_to_working_day
            else (nominal, ())
        )
    except (OverflowError, ValueError) as exc:
        raise InvalidInput("the notification date is out of range", field="notified_on") from exc
    return AppealDeadline(
        notified_on=notified_on,
        deadline=deadline,
        nominal_deadline=nominal,
        skipped_days=skipped,
        rule_name=rule.name,
        rule_version=rule.version,
        caveat_fr=APPEAL_CAVEAT_FR,
        caveat_en=APPEAL_CAVEAT_EN,
    )


def is_working_day(day: date, holiday_subdivision: str | None = None) -> bool:
    """Not a Saturday, a Sunday, or a French public holiday (``holidays`` package)."""
    return day.weekday() < 5 and day not in _public_holidays(day.year, holiday_subdivision)


# --- machinery -----------------------------------------------------------------------
def _add_months(day: date, months: int) -> date:
    """Same day-of-month ``months`` later, or that month's last day (C. proc. civ. 641)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _next_working_day(day: date, subdivision: str | None) -> tuple[date, tuple[date, ...]]:
    skipped: list[date] = []
    while not is_working_day(day, subdivision):
        skipped.append(day)
        day += timedelta(days=1)
    return day, tuple(skipped)


@functools.lru_cache(maxsize=512)
def _public_holidays(year: int, subdivision: str | None) -> frozenset[date]:
    calendar_ = holidays.country_holidays("FR", subdiv=subdivision, years=year)
    return frozenset(calendar_.keys())
