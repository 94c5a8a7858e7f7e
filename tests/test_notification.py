"""Tests for vault.notification: R.531-17 deemed notification and the L.532-1 deadline.

Worked examples marked "hand-checked" were computed on a paper calendar (weekday of
every date checked against ``date.weekday()`` only). The holiday sweep derives its
cases from the ``holidays`` calendar; the pinned 2026 list guards that calendar.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from vault.cli_legal import legal_app, parse_instant
from vault.errors import InvalidInput
from vault.notification import (
    APPEAL_CAVEAT_EN,
    APPEAL_CAVEAT_FR,
    DEFAULT_APPEAL_RULE,
    DEFAULT_NOTIFICATION_RULE,
    AppealRule,
    NotificationRule,
    _add_months,
    appeal_deadline,
    deemed_notification_date,
    deemed_notification_instant,
    is_working_day,
    notification_date,
)

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args).replace(tzinfo=PARIS)  # type: ignore[arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args).replace(tzinfo=UTC)  # type: ignore[arg-type]


def d(text: str) -> date:
    return date.fromisoformat(text)


# --- rules ---------------------------------------------------------------------------------
def test_default_rules_are_named_and_versioned() -> None:
    assert DEFAULT_NOTIFICATION_RULE.name == "R531-17/deemed-15-days"
    assert DEFAULT_NOTIFICATION_RULE.version == "1"
    assert DEFAULT_NOTIFICATION_RULE.days == 15
    assert DEFAULT_NOTIFICATION_RULE.tz == "Europe/Paris"
    assert DEFAULT_NOTIFICATION_RULE.extend_to_working_day is False
    assert DEFAULT_APPEAL_RULE.name == "CESEDA L532-1/one-month-franc"
    assert DEFAULT_APPEAL_RULE.version == "1"
    assert (DEFAULT_APPEAL_RULE.months, DEFAULT_APPEAL_RULE.franc) == (1, True)
    assert DEFAULT_APPEAL_RULE.holiday_subdivision is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": 0},
        {"days": -1},
        {"days": True},
        {"tz": "Mars/Olympus_Mons"},
        {"tz": ""},
        {"name": ""},
        {"version": ""},
    ],
)
def test_notification_rule_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "name": "x",
        "version": "1",
        "days": 15,
        "tz": "Europe/Paris",
        "description": "",
    }
    with pytest.raises(InvalidInput):
        NotificationRule(**(base | kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"months": 0}, {"months": True}, {"holiday_subdivision": "XX"}, {"name": ""}]
)
def test_appeal_rule_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"name": "x", "version": "1", "description": ""}
    with pytest.raises(InvalidInput):
        AppealRule(**(base | kwargs))  # type: ignore[arg-type]


# --- deemed notification -------------------------------------------------------------------
DEEMED_CASES = [
    # (made available, deemed legal date, deemed instant UTC, why)
    (paris(2026, 3, 1, 10), "2026-03-16", utc(2026, 3, 16, 23), "the brief's example"),
    (paris(2026, 3, 1, 0, 0), "2026-03-16", utc(2026, 3, 16, 23), "first instant of the day"),
    (
        paris(2026, 2, 28, 23, 59, 59, 999999),
        "2026-03-15",
        utc(2026, 3, 15, 23),
        "last instant of the previous day",
    ),
    # DST, spring: the clocks go forward at 02:00 on Sunday 29 March 2026.
    (paris(2026, 3, 28, 23, 30), "2026-04-12", utc(2026, 4, 12, 22), "day before DST, CET"),
    (utc(2026, 3, 28, 23, 30), "2026-04-13", utc(2026, 4, 13, 22), "00:30 Paris on 29 March"),
    (utc(2026, 3, 29, 1, 30), "2026-04-13", utc(2026, 4, 13, 22), "03:30 CEST on DST day"),
    (paris(2026, 3, 15, 12), "2026-03-30", utc(2026, 3, 30, 22), "delay spans the change"),
    # DST, autumn: the clocks go back at 03:00 on Sunday 25 October 2026.
    (paris(2026, 10, 24, 23, 30), "2026-11-08", utc(2026, 11, 8, 23), "day before, CEST"),
    (utc(2026, 10, 25, 0, 30), "2026-11-09", utc(2026, 11, 9, 23), "02:30 CEST (1st pass)"),
    (utc(2026, 10, 25, 1, 30), "2026-11-09", utc(2026, 11, 9, 23), "02:30 CET (2nd pass)"),
    (paris(2026, 10, 11, 9), "2026-10-26", utc(2026, 10, 26, 23), "delay spans the change"),
    # No weekend or holiday extension (believed): deemed dates on such days stand.
    (paris(2026, 2, 14, 9), "2026-03-01", utc(2026, 3, 1, 23), "Sunday stands"),
    (paris(2026, 4, 16, 9), "2026-05-01", utc(2026, 5, 1, 22), "1 May stands"),
    # Month and year ends, leap day.
    (paris(2026, 12, 20, 9), "2027-01-04", utc(2027, 1, 4, 23), "across the new year"),
    (paris(2028, 2, 14, 9), "2028-02-29", utc(2028, 2, 29, 23), "leap day"),
    (paris(2027, 2, 14, 9), "2027-03-01", utc(2027, 3, 1, 23), "no leap day"),
]


@pytest.mark.parametrize(("made", "legal", "instant", "why"), DEEMED_CASES)
def test_deemed_notification(made: datetime, legal: str, instant: datetime, why: str) -> None:
    assert deemed_notification_date(made) == d(legal), why
    got = deemed_notification_instant(made)
    assert got == instant, why
    assert got.tzinfo is UTC
    # The instant is always local midnight starting the day after the legal date.
    assert got.astimezone(PARIS).time() == time(0)
    assert got.astimezone(PARIS).date() == d(legal) + timedelta(days=1)


def test_deemed_instant_is_calendar_midnight_not_24_hour_multiples() -> None:
    made = paris(2026, 3, 28, 23, 30)  # 22:30Z
    # Midnight 13 April CEST is 22:00Z on 12 April: the spring change shortens the
    # delay by an hour, so it lasts 15 days less 30 minutes, not a whole number of days.
    assert deemed_notification_instant(made) - made == timedelta(days=15) - timedelta(minutes=30)


def test_naive_made_available_is_refused() -> None:
    with pytest.raises(InvalidInput):
        deemed_notification_date(datetime(2026, 3, 1, 10))


def test_configurable_rule_days_tz_and_extension() -> None:
    counting_start_day = NotificationRule("alt/14", "1", 14, "Europe/Paris", "start day counted")
    assert deemed_notification_date(paris(2026, 3, 1, 10), counting_start_day) == d("2026-03-15")
    extended = NotificationRule("alt/ext", "1", 15, "Europe/Paris", "", extend_to_working_day=True)
    assert deemed_notification_date(paris(2026, 2, 14, 9), extended) == d("2026-03-02")
    assert deemed_notification_instant(paris(2026, 2, 14, 9), extended) == utc(2026, 3, 2, 23)
    # 1 May 2026 is a Friday: Saturday and Sunday follow.
    assert deemed_notification_date(paris(2026, 4, 16, 9), extended) == d("2026-05-04")
    utc_rule = NotificationRule("alt/utc", "1", 15, "UTC", "")
    # 00:30 Paris on 29 March is still 28 March in UTC.
    assert deemed_notification_date(utc(2026, 3, 28, 23, 30), utc_rule) == d("2026-04-12")


# --- notification_date ---------------------------------------------------------------------
MADE = paris(2026, 3, 1, 10)
DEEMED_AT = utc(2026, 3, 16, 23)  # 2026-03-17 00:00 Paris

FIRST_ACCESS_CASES = [
    # (first access, expected basis, expected legal date, why)
    (MADE, "first_access", "2026-03-01", "opened at the very instant it was posted"),
    (paris(2026, 3, 5, 23, 59), "first_access", "2026-03-05", "23:59 Paris"),
    (paris(2026, 3, 6, 0, 1), "first_access", "2026-03-06", "00:01 Paris, still 5 March UTC"),
    (paris(2026, 3, 16, 23, 59), "first_access", "2026-03-16", "last minute of the delay"),
    (
        paris(2026, 3, 16, 23, 59, 59, 999999),
        "first_access",
        "2026-03-16",
        "last microsecond of the delay",
    ),
    (paris(2026, 3, 17, 0, 0), "delay_expired", "2026-03-16", "exactly at the deemed instant"),
    (paris(2026, 3, 17, 0, 1), "delay_expired", "2026-03-16", "00:01 the day after"),
    (paris(2026, 6, 1, 12), "delay_expired", "2026-03-16", "months later"),
]


@pytest.mark.parametrize(("access", "basis", "legal", "why"), FIRST_ACCESS_CASES)
def test_first_access_against_deemed_instant(
    access: datetime, basis: str, legal: str, why: str
) -> None:
    for now in (None, paris(2026, 12, 31, 12)):
        outcome = notification_date(MADE, access, now=now)
        assert outcome is not None
        assert outcome.basis == basis, why
        assert outcome.notified_on == d(legal), why
        expected_at = access if basis == "first_access" else DEEMED_AT
        assert outcome.notified_at == expected_at
        assert outcome.notified_at.tzinfo is UTC
        assert (outcome.rule_name, outcome.rule_version) == ("R531-17/deemed-15-days", "1")


def test_unopened_document_before_during_and_after_the_delay() -> None:
    assert notification_date(MADE, None, now=MADE) is None
    assert notification_date(MADE, None, now=DEEMED_AT - timedelta(microseconds=1)) is None
    at_instant = notification_date(MADE, None, now=DEEMED_AT)
    assert at_instant is not None
    assert at_instant.basis == "delay_expired"
    assert (at_instant.notified_on, at_instant.notified_at) == (d("2026-03-16"), DEEMED_AT)
    later = notification_date(MADE, None, now=paris(2026, 4, 1))
    assert later == at_instant


def test_first_access_outcome_is_independent_of_now() -> None:
    access = paris(2026, 3, 3, 8)
    assert notification_date(MADE, access) == notification_date(MADE, access, now=access)


def test_outcome_summary_names_basis_and_rule() -> None:
    outcome = notification_date(MADE, paris(2026, 3, 3, 8))
    assert outcome is not None
    assert "2026-03-03" in outcome.summary()
    assert "first consultation" in outcome.summary()
    assert "R531-17/deemed-15-days v1" in outcome.summary()


@pytest.mark.parametrize(
    ("made", "access", "now"),
    [
        (datetime(2026, 3, 1, 10), None, paris(2026, 4, 1)),  # naive on purpose
        (MADE, datetime(2026, 3, 2, 10), None),
        (MADE, None, datetime(2026, 4, 1)),
        (MADE, MADE - timedelta(microseconds=1), None),  # access before making available
        (MADE, paris(2026, 3, 5), paris(2026, 3, 4)),  # access after now
        (MADE, None, MADE - timedelta(seconds=1)),  # made available after now
        (MADE, None, None),  # unopened, and no `now` to tell whether the delay has run
    ],
)
def test_inconsistent_facts_are_refused(
    made: datetime, access: datetime | None, now: datetime | None
) -> None:
    with pytest.raises(InvalidInput):
        notification_date(made, access, now=now)


# --- appeal deadline: hand-checked worked examples ----------------------------------------
APPEAL_CASES = [
    # (notified, nominal last day, deadline, why) -- hand-checked
    ("2026-03-10", "2026-04-11", "2026-04-13", "brief: Saturday 11 April -> Monday 13"),
    ("2026-01-31", "2026-03-01", "2026-03-02", "brief: no 31 Feb -> 28 Feb, +1 = Sunday"),
    ("2026-01-28", "2026-03-01", "2026-03-02", "28 Feb + 1 = Sunday 1 March"),
    ("2026-01-27", "2026-02-28", "2026-03-02", "Saturday 28 February"),
    ("2026-01-26", "2026-02-27", "2026-02-27", "a Friday: no extension"),
    ("2028-01-31", "2028-03-01", "2028-03-01", "leap year: 29 Feb, +1 = Wed 1 March"),
    ("2028-01-29", "2028-03-01", "2028-03-01", "leap year: 29 Jan -> 29 Feb"),
    ("2028-01-28", "2028-02-29", "2028-02-29", "lands on the leap day itself"),
    ("2028-02-29", "2028-03-30", "2028-03-30", "notified on the leap day"),
    ("2026-03-31", "2026-05-01", "2026-05-04", "31 Mar -> 30 Apr, +1 = 1 May (Fri) + weekend"),
    ("2026-04-30", "2026-05-31", "2026-06-01", "30 Apr -> 30 May, +1 = Sunday 31 May"),
    ("2026-12-31", "2027-02-01", "2027-02-01", "31 Dec -> 31 Jan, +1 = Monday 1 Feb"),
    ("2026-12-10", "2027-01-11", "2027-01-11", "across the year end"),
    ("2023-11-29", "2023-12-30", "2024-01-02", "chain: Sat, Sun, then 1 January (Mon)"),
    ("2026-03-05", "2026-04-06", "2026-04-07", "Easter Monday 2026"),
    ("2027-02-28", "2027-03-29", "2027-03-30", "Easter Monday 2027"),
    ("2026-03-30", "2026-05-01", "2026-05-04", "1 May 2026 (Fri) then weekend"),
    ("2026-04-07", "2026-05-08", "2026-05-11", "8 May 2026 (Fri) then weekend"),
    ("2026-04-13", "2026-05-14", "2026-05-15", "Ascension 2026 (Thu)"),
    ("2026-04-24", "2026-05-25", "2026-05-26", "Whit Monday 2026"),
    ("2026-04-22", "2026-05-23", "2026-05-26", "chain: weekend then Whit Monday"),
    ("2026-06-13", "2026-07-14", "2026-07-15", "14 July 2026 (Tue)"),
    ("2025-07-14", "2025-08-15", "2025-08-18", "15 August 2025 (Fri) then weekend"),
    ("2026-09-30", "2026-10-31", "2026-11-02", "chain: Sat 31 Oct, 1 Nov (Sun)"),
    ("2027-09-29", "2027-10-30", "2027-11-02", "chain: weekend then 1 Nov 2027 (Mon)"),
    ("2026-10-10", "2026-11-11", "2026-11-12", "11 November 2026 (Wed)"),
    ("2026-11-24", "2026-12-25", "2026-12-28", "Christmas 2026 (Fri) then weekend"),
    ("2043-04-06", "2043-05-07", "2043-05-11", "longest chain: Ascension, 8 May, weekend"),
]


@pytest.mark.parametrize(("notified", "nominal", "deadline", "why"), APPEAL_CASES)
def test_appeal_deadline_worked_examples(
    notified: str, nominal: str, deadline: str, why: str
) -> None:
    result = appeal_deadline(d(notified))
    assert result.nominal_deadline == d(nominal), why
    assert result.deadline == d(deadline), why
    assert result.notified_on == d(notified)
    assert (result.rule_name, result.rule_version) == ("CESEDA L532-1/one-month-franc", "1")
    expected_skipped = tuple(
        d(nominal) + timedelta(days=i) for i in range((d(deadline) - d(nominal)).days)
    )
    assert result.skipped_days == expected_skipped


def test_appeal_caveat_states_legal_aid_suspension_and_end_of_day() -> None:
    result = appeal_deadline(d("2026-03-10"))
    assert (result.caveat_fr, result.caveat_en) == (APPEAL_CAVEAT_FR, APPEAL_CAVEAT_EN)
    for text in (result.caveat_fr, result.caveat_en):
        assert "91-647" in text
        assert "9-4" in text
    assert "quinze jours" in result.caveat_fr
    assert "aide juridictionnelle" in result.caveat_fr
    assert "fin de ce jour" in result.caveat_fr
    assert "fifteen days" in result.caveat_en
    assert "end of that day" in result.caveat_en
    assert "absent a legal-aid request" in result.summary()


def test_alsace_moselle_calendar_is_available_but_not_the_default() -> None:
    # 2 March 2026 -> 2 April, +1 = Friday 3 April 2026, Good Friday: a holiday only in
    # Alsace-Moselle. The CNDA sits in Montreuil, so the default ignores it.
    assert appeal_deadline(d("2026-03-02")).deadline == d("2026-04-03")
    moselle = AppealRule("alt/57", "1", "Moselle calendar", holiday_subdivision="57")
    assert appeal_deadline(d("2026-03-02"), moselle).deadline == d("2026-04-07")


def test_appeal_rule_without_franc_or_extension() -> None:
    not_franc = AppealRule("alt/plain", "1", "", franc=False)
    assert appeal_deadline(d("2026-03-10"), not_franc).deadline == d("2026-04-10")
    no_extension = AppealRule("alt/noext", "1", "", extend_to_working_day=False)
    result = appeal_deadline(d("2026-03-10"), no_extension)
    assert (result.deadline, result.skipped_days) == (d("2026-04-11"), ())


@pytest.mark.parametrize("bad", [datetime(2026, 3, 10, tzinfo=UTC), "2026-03-10", None])
def test_appeal_deadline_wants_a_date(bad: object) -> None:
    with pytest.raises(InvalidInput):
        appeal_deadline(bad)  # type: ignore[arg-type]


def test_appeal_deadline_out_of_range() -> None:
    with pytest.raises(InvalidInput):
        appeal_deadline(date(9999, 12, 15))


# --- appeal deadline: every public holiday, from the calendar --------------------------------
PINNED_2026 = {
    "2026-01-01",  # Jour de l'an
    "2026-04-06",  # Lundi de Pâques
    "2026-05-01",  # Fête du Travail
    "2026-05-08",  # Victoire 1945
    "2026-05-14",  # Ascension
    "2026-05-25",  # Lundi de Pentecôte
    "2026-07-14",  # Fête nationale
    "2026-08-15",  # Assomption
    "2026-11-01",  # Toussaint
    "2026-11-11",  # Armistice
    "2026-12-25",  # Noël
}
SWEEP_YEARS = range(2020, 2041)


def test_holiday_calendar_is_the_national_list() -> None:
    calendar_2026 = holidays.country_holidays("FR", years=2026)
    assert {day.isoformat() for day in calendar_2026} == PINNED_2026
    for day in PINNED_2026:
        assert not is_working_day(d(day))


def _touching(holiday: date) -> list[tuple[date, bool]]:
    """Notification dates whose nominal last day is ``holiday`` (True) or whose
    extension runs through it (False)."""
    found = []
    for back in range(28, 40):
        notified = holiday - timedelta(days=back)
        result = appeal_deadline(notified)
        if result.nominal_deadline == holiday:
            found.append((notified, True))
        elif holiday in result.skipped_days:
            found.append((notified, False))
    return found


@pytest.mark.parametrize("year", SWEEP_YEARS)
def test_no_deadline_ever_lands_on_a_public_holiday(year: int) -> None:
    for holiday in holidays.country_holidays("FR", years=year):
        for notified, _ in _touching(holiday):
            result = appeal_deadline(notified)
            assert result.deadline > holiday
            assert is_working_day(result.deadline)
            # The deadline is the first working day at or after the nominal day.
            day = result.nominal_deadline
            while day.weekday() >= 5 or day in holidays.country_holidays("FR", years=day.year):
                day += timedelta(days=1)
            assert result.deadline == day


def test_every_holiday_is_reached_over_the_sweep() -> None:
    landed: set[str] = set()
    reached: set[str] = set()
    names: set[str] = set()
    for year in SWEEP_YEARS:
        calendar_year = holidays.country_holidays("FR", years=year, language="en_US")
        for holiday, name in calendar_year.items():
            names.add(name)
            touches = _touching(holiday)
            reached |= {name} if touches else set()
            landed |= {name} if any(direct for _, direct in touches) else set()
    assert len(names) == 11
    assert reached == names
    # 1 January and 1 November can never be the nominal last day: that would need the
    # month to expire on 31 December (31 October), i.e. a notification on 31 November
    # (31 September). They matter only when an extension runs into them.
    assert names - landed == {"New Year's Day", "All Saints' Day"}


# --- appeal deadline: properties -------------------------------------------------------------
notification_days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 11, 30))


@given(notification_days)
def test_deadline_is_a_working_day_after_the_month(notified: date) -> None:
    result = appeal_deadline(notified)
    one_month = _add_months(notified, 1)
    assert is_working_day(result.deadline)
    assert result.deadline > one_month
    assert result.deadline - one_month <= timedelta(days=5)
    assert result.nominal_deadline == one_month + timedelta(days=1)
    assert all(not is_working_day(day) for day in result.skipped_days)


@given(notification_days, notification_days)
def test_deadline_is_monotonic(first: date, second: date) -> None:
    if first <= second:
        assert appeal_deadline(first).deadline <= appeal_deadline(second).deadline


# --- notification: properties ------------------------------------------------------------------
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 1), timezones=st.just(UTC)
)


@given(instants)
def test_deemed_date_is_paris_date_plus_fifteen(made: datetime) -> None:
    paris_date = made.astimezone(PARIS).date()
    assert deemed_notification_date(made) == paris_date + timedelta(days=15)
    instant = deemed_notification_instant(made)
    assert instant.astimezone(PARIS).date() == paris_date + timedelta(days=16)
    assert instant.astimezone(PARIS).time() == time(0)


@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)))
def test_first_access_basis_iff_before_deemed_instant(made: datetime, delay: timedelta) -> None:
    access = made + delay
    outcome = notification_date(made, access)
    assert outcome is not None
    deemed_at = deemed_notification_instant(made)
    assert (outcome.basis == "first_access") == (access < deemed_at)
    assert outcome.notified_on <= deemed_notification_date(made)
    assert outcome.notified_at <= deemed_at


# --- CLI --------------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_notification_date_json() -> None:
    result = runner.invoke(
        legal_app,
        ["notification-date", "--made-available", "2026-03-01T10:00:00+01:00",
         "--now", "2026-03-20T00:00:00Z", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "notified"
    assert payload["basis"] == "delay_expired"
    assert payload["notified_on"] == "2026-03-16"
    assert payload["notified_at"] == "2026-03-16T23:00:00Z"
    assert payload["rule"] == {"name": "R531-17/deemed-15-days", "version": "1"}
    assert payload["timezone_assumed"] is None


def test_cli_time_without_offset_is_paris_and_says_so() -> None:
    result = runner.invoke(
        legal_app,
        ["notification-date", "--made-available", "2026-03-01T10:00",
         "--first-access", "2026-03-06T00:30", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["notified_on"] == "2026-03-06"
    assert payload["notified_at"] == "2026-03-05T23:30:00Z"
    assert payload["timezone_assumed"] == {
        "timezone": "Europe/Paris",
        "fields": ["made_available", "first_access"],
    }
    human = runner.invoke(legal_app, ["notification-date", "--made-available", "2026-03-01T10:00"])
    assert human.exit_code == 0
    assert "Europe/Paris" in human.stderr
    assert "16/03/2026" in human.stdout
    assert "2026-03-16" in human.stdout


@pytest.mark.parametrize("text", ["2026-03-29T02:30", "2026-10-25T02:30", "yesterday"])
def test_cli_refuses_nonexistent_ambiguous_or_garbled_times(text: str) -> None:
    result = runner.invoke(legal_app, ["notification-date", "--made-available", text])
    assert result.exit_code == 2
    with pytest.raises(InvalidInput):
        parse_instant(text, "--made-available")


def test_cli_not_yet_notified() -> None:
    result = runner.invoke(
        legal_app,
        ["notification-date", "--made-available", "2026-03-01T10:00:00+01:00",
         "--now", "2026-03-10T00:00:00Z", "--json"],
    )  # fmt: skip
    payload = json.loads(result.stdout)
    assert payload["status"] == "not_yet_notified"
    assert payload["notified_on"] is None
    assert payload["deemed_notification_date"] == "2026-03-16"


def test_cli_appeal_deadline() -> None:
    result = runner.invoke(legal_app, ["appeal-deadline", "--notified", "2026-01-31", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["deadline"] == "2026-03-02"
    assert payload["skipped_days"] == ["2026-03-01"]
    assert payload["absent_legal_aid_request"] is True
    human = runner.invoke(legal_app, ["appeal-deadline", "--notified", "2026-03-10"])
    assert "13/04/2026" in human.stdout
    assert "2026-04-13" in human.stdout
    assert "aide juridictionnelle" in human.stdout
    bad = runner.invoke(legal_app, ["appeal-deadline", "--notified", "10/03/2026"])
    assert bad.exit_code == 2
