"""Tests for vault.eligibility and the packaged scheme table.

The GUDA lists and dates below are copied from DOMAIN.md ("Who is in the scheme"),
itself from the seed FAQ and the arrêtés of 8 July 2020, 29 April 2021 and 25 April
2022; they are written out here, not read from the table under test.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from vault.cli_legal import eligibility_app
from vault.eligibility import (
    PRECEDENCE,
    Registration,
    SchemeTable,
    decide,
    default_scheme_table,
    require_electronic,
)
from vault.errors import ConfigurationError, InvalidInput, NotEligible

WAVE_2020 = date(2020, 7, 15)
WAVE_2022 = date(2022, 5, 2)
DAY = timedelta(days=1)

GUDAS_2020 = ["Rennes", "Bordeaux", "Poitiers", "Limoges"]
GUDAS_2022 = [
    "Clermont-Ferrand", "Lyon", "Grenoble", "Dijon", "Besançon", "Mâcon", "Orléans",
    "Marseille", "Châlons-en-Champagne", "Metz", "Strasbourg", "Colmar", "Lille",
    "Beauvais", "Paris", "Melun", "Versailles", "Evry", "Nanterre", "Bobigny", "Créteil",
    "Cergy-Pontoise", "Caen", "Rouen", "Toulouse", "Montpellier", "Nantes", "Angers", "Nice",
]  # fmt: skip
ENTRY = dict.fromkeys(GUDAS_2020, WAVE_2020) | dict.fromkeys(GUDAS_2022, WAVE_2022)

MAINLAND_REGIONS = {
    "Auvergne-Rhône-Alpes": WAVE_2022,
    "Bourgogne-Franche-Comté": WAVE_2022,
    "Bretagne": WAVE_2020,
    "Centre-Val de Loire": WAVE_2022,
    "Corse": WAVE_2022,
    "Grand Est": WAVE_2022,
    "Hauts-de-France": WAVE_2022,
    "Île-de-France": WAVE_2022,
    "Normandie": WAVE_2022,
    "Nouvelle-Aquitaine": WAVE_2020,
    "Occitanie": WAVE_2022,
    "Pays de la Loire": WAVE_2022,
    "Provence-Alpes-Côte d'Azur": WAVE_2022,
}

PREFECTURE_REGION = {
    "Rennes": "Bretagne",
    "Bordeaux": "Nouvelle-Aquitaine",
    "Poitiers": "Nouvelle-Aquitaine",
    "Limoges": "Nouvelle-Aquitaine",
    "Clermont-Ferrand": "Auvergne-Rhône-Alpes",
    "Lyon": "Auvergne-Rhône-Alpes",
    "Grenoble": "Auvergne-Rhône-Alpes",
    "Dijon": "Bourgogne-Franche-Comté",
    "Besançon": "Bourgogne-Franche-Comté",
    "Mâcon": "Bourgogne-Franche-Comté",
    "Orléans": "Centre-Val de Loire",
    "Marseille": "Provence-Alpes-Côte d'Azur",
    "Nice": "Provence-Alpes-Côte d'Azur",
    "Châlons-en-Champagne": "Grand Est",
    "Metz": "Grand Est",
    "Strasbourg": "Grand Est",
    "Colmar": "Grand Est",
    "Lille": "Hauts-de-France",
    "Beauvais": "Hauts-de-France",
    "Paris": "Île-de-France",
    "Melun": "Île-de-France",
    "Versailles": "Île-de-France",
    "Evry": "Île-de-France",
    "Nanterre": "Île-de-France",
    "Bobigny": "Île-de-France",
    "Créteil": "Île-de-France",
    "Cergy-Pontoise": "Île-de-France",
    "Caen": "Normandie",
    "Rouen": "Normandie",
    "Toulouse": "Occitanie",
    "Montpellier": "Occitanie",
    "Nantes": "Pays de la Loire",
    "Angers": "Pays de la Loire",
}


def normal(guda: str, registered_on: date, **kwargs: object) -> Registration:
    return Registration(guda=guda, registered_on=registered_on, procedure="normal", **kwargs)  # type: ignore[arg-type]


def requalified(region: str | None, on: date | None, guda: str = "Rennes") -> Registration:
    return Registration(
        guda=guda,
        registered_on=date(2019, 1, 10),
        procedure="dublin_requalified",
        requalified_on=on,
        requalification_region=region,
    )


# --- the table -----------------------------------------------------------------------------
def test_table_is_versioned_and_cites_its_sources() -> None:
    table = default_scheme_table()
    assert table.version == "2022-05-02.1"
    assert {"arrete-2020-07-08", "arrete-2021-04-29", "arrete-2022-04-25"} <= set(table.sources)
    raw = json.loads(resources.files("vault").joinpath("data/scheme_gudas.json").read_text())
    assert raw["version"] == table.version
    assert raw["believed"], "what no source confirmed is listed in the table itself"


def test_table_holds_exactly_the_domain_gudas() -> None:
    table = default_scheme_table()
    assert {entry.name for entry in table.gudas.values()} == set(ENTRY)
    assert len(ENTRY) == 33


@pytest.mark.parametrize("guda", sorted(ENTRY))
def test_each_guda_entry_date_and_region(guda: str) -> None:
    entry = default_scheme_table().guda(guda)
    assert entry is not None
    assert entry.in_scheme_from == ENTRY[guda]
    assert entry.region == PREFECTURE_REGION[guda]


def test_regions_are_the_thirteen_mainland_regions() -> None:
    table = default_scheme_table()
    got = {entry.name: entry.requalified_dublin_from for entry in table.regions.values()}
    assert got == MAINLAND_REGIONS


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("besancon", "Besançon"),
        ("BESANÇON", "Besançon"),
        ("macon", "Mâcon"),
        ("Chalons en Champagne", "Châlons-en-Champagne"),
        ("châlons-en-champagne", "Châlons-en-Champagne"),
        ("creteil", "Créteil"),
        ("CRÉTEIL", "Créteil"),
        ("Évry", "Evry"),
        ("Évry-Courcouronnes", "Evry"),
        ("clermont ferrand", "Clermont-Ferrand"),
        ("Clermont–Ferrand", "Clermont-Ferrand"),  # en dash
        ("  Cergy  Pontoise ", "Cergy-Pontoise"),
        ("orleans", "Orléans"),
    ],
)
def test_guda_names_match_case_accent_and_punctuation_insensitively(
    spelling: str, canonical: str
) -> None:
    entry = default_scheme_table().guda(spelling)
    assert entry is not None
    assert entry.name == canonical


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("ile de france", "Île-de-France"),
        ("PACA", "Provence-Alpes-Côte d'Azur"),
        ("provence alpes cote d azur", "Provence-Alpes-Côte d'Azur"),
        ("nouvelle aquitaine", "Nouvelle-Aquitaine"),
        ("Brittany", "Bretagne"),
    ],
)
def test_region_names_match_loosely(spelling: str, canonical: str) -> None:
    entry = default_scheme_table().region(spelling)
    assert entry is not None
    assert entry.name == canonical


# --- every GUDA around every boundary ---------------------------------------------------------
BOUNDARY_DAYS = [
    WAVE_2020 - DAY,
    WAVE_2020,
    WAVE_2020 + DAY,
    WAVE_2022 - DAY,
    WAVE_2022,
    WAVE_2022 + DAY,
]


@pytest.mark.parametrize("procedure", ["normal", "accelerated"])
@pytest.mark.parametrize("registered_on", BOUNDARY_DAYS, ids=str)
@pytest.mark.parametrize("guda", sorted(ENTRY))
def test_every_guda_at_every_boundary(guda: str, registered_on: date, procedure: str) -> None:
    reg = Registration(guda=guda, registered_on=registered_on, procedure=procedure)  # type: ignore[arg-type]
    decision = decide(reg)
    in_scheme = registered_on >= ENTRY[guda]
    assert decision.electronic is in_scheme
    assert decision.reason == ("eligible" if in_scheme else "guda_not_in_scheme_at_date")
    assert decision.table_version == "2022-05-02.1"


@pytest.mark.parametrize("guda", ["Ajaccio", "Bastia", "Cayenne", "Mamoudzou", "Rennes-Est", ""])
def test_unknown_guda(guda: str) -> None:
    if not guda:
        with pytest.raises(InvalidInput):
            normal(guda, date(2023, 1, 1))
        return
    decision = decide(normal(guda, date(2023, 1, 1)))
    assert (decision.electronic, decision.reason) == (False, "guda_not_in_scheme")


# --- exclusions and precedence -----------------------------------------------------------------
IN_SCHEME = normal("Rennes", date(2023, 1, 1))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"overseas": True}, "overseas"),
        ({"unaccompanied_minor": True}, "unaccompanied_minor"),
        ({"unable_to_use_space": True}, "unable_to_use_space"),
        ({"procedure": "dublin"}, "dublin_procedure"),
        # precedence: personal exclusions first, in this order
        ({"overseas": True, "unaccompanied_minor": True}, "overseas"),
        ({"overseas": True, "unable_to_use_space": True}, "overseas"),
        ({"unaccompanied_minor": True, "unable_to_use_space": True}, "unaccompanied_minor"),
        ({"unable_to_use_space": True, "procedure": "dublin"}, "unable_to_use_space"),
        ({"overseas": True, "guda": "Cayenne"}, "overseas"),
        ({"procedure": "dublin", "guda": "Cayenne"}, "dublin_procedure"),
        ({"procedure": "dublin", "registered_on": date(2019, 1, 1)}, "dublin_procedure"),
        ({"unaccompanied_minor": True, "registered_on": date(2019, 1, 1)}, "unaccompanied_minor"),
    ],
)
def test_exclusions_and_precedence(changes: dict[str, object], reason: str) -> None:
    decision = decide(replace(IN_SCHEME, **changes))  # type: ignore[arg-type]
    assert (decision.electronic, decision.reason) == (False, reason)


def test_precedence_lists_every_exclusion_once() -> None:
    assert len(PRECEDENCE) == len(set(PRECEDENCE)) == 9
    assert "eligible" not in PRECEDENCE
    assert PRECEDENCE[:4] == (
        "overseas",
        "unaccompanied_minor",
        "unable_to_use_space",
        "dublin_procedure",
    )


def test_personal_exclusions_outrank_a_requalified_dublin_case() -> None:
    reg = replace(requalified("Bretagne", WAVE_2020), unable_to_use_space=True)
    assert decide(reg).reason == "unable_to_use_space"


# --- requalified Dublin ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "on", "reason"),
    [
        ("Bretagne", WAVE_2020 - DAY, "region_not_in_scheme_at_date"),
        ("Bretagne", WAVE_2020, "eligible"),
        ("Bretagne", WAVE_2020 + DAY, "eligible"),
        ("Bretagne", WAVE_2022 - DAY, "eligible"),
        ("Bretagne", WAVE_2022, "eligible"),
        ("Nouvelle-Aquitaine", WAVE_2020 - DAY, "region_not_in_scheme_at_date"),
        ("Nouvelle-Aquitaine", WAVE_2020, "eligible"),
        ("Occitanie", WAVE_2020 - DAY, "region_not_in_scheme_at_date"),
        ("Occitanie", WAVE_2020, "region_not_in_scheme_at_date"),
        ("Occitanie", WAVE_2020 + DAY, "region_not_in_scheme_at_date"),
        ("Occitanie", WAVE_2022 - DAY, "region_not_in_scheme_at_date"),
        ("Occitanie", WAVE_2022, "eligible"),
        ("Occitanie", WAVE_2022 + DAY, "eligible"),
        ("Île-de-France", WAVE_2022 - DAY, "region_not_in_scheme_at_date"),
        ("Corse", WAVE_2022, "eligible"),
        ("Guadeloupe", WAVE_2022, "region_not_in_scheme"),
        ("Atlantis", WAVE_2022, "region_not_in_scheme"),
    ],
)
def test_requalified_dublin_by_region_and_date(region: str, on: date, reason: str) -> None:
    decision = decide(requalified(region, on))
    assert decision.reason == reason
    assert decision.electronic is (reason == "eligible")


@pytest.mark.parametrize("region", sorted(MAINLAND_REGIONS))
def test_requalified_dublin_every_region_at_its_boundary(region: str) -> None:
    start = MAINLAND_REGIONS[region]
    assert not decide(requalified(region, start - DAY)).electronic
    assert decide(requalified(region, start)).electronic
    assert decide(requalified(region, start + DAY)).electronic


def test_requalified_dublin_ignores_the_guda_and_registration_date() -> None:
    # Registered in 2019 at a GUDA then outside the scheme, or at no listed GUDA at all:
    # the requalification date and region alone decide (our reading; see the docs).
    assert decide(requalified("Occitanie", WAVE_2022, guda="Toulouse")).electronic
    assert decide(requalified("Occitanie", WAVE_2022, guda="Ajaccio")).electronic
    # Registered at Rennes (2020 wave) but requalified in Occitanie before 2 May 2022.
    reg = Registration(
        guda="Rennes",
        registered_on=date(2021, 3, 1),
        procedure="dublin_requalified",
        requalified_on=WAVE_2022 - DAY,
        requalification_region="Occitanie",
    )
    assert decide(reg).reason == "region_not_in_scheme_at_date"


@pytest.mark.parametrize(
    ("region", "on"), [(None, WAVE_2022), ("Bretagne", None), (None, None), ("", WAVE_2022)]
)
def test_requalification_missing(region: str | None, on: date | None) -> None:
    decision = decide(requalified(region, on))
    assert (decision.electronic, decision.reason) == (False, "requalification_missing")


# --- input validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"procedure": "asylum"},
        {"registered_on": datetime(2023, 1, 1, 9)},  # a datetime is not a date
        {"registered_on": "2023-01-01"},
        {"guda": "   "},
        # requalification data on a case that is not a requalified Dublin case
        {"requalified_on": date(2023, 2, 1)},
        {"requalification_region": "Bretagne"},
        # requalified before being registered
        {
            "procedure": "dublin_requalified",
            "requalified_on": date(2022, 12, 31),
            "requalification_region": "Bretagne",
        },
    ],
)
def test_malformed_registrations_are_refused(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "guda": "Rennes",
        "registered_on": date(2023, 1, 1),
        "procedure": "normal",
    }
    with pytest.raises(InvalidInput):
        Registration(**(base | kwargs))  # type: ignore[arg-type]


# --- require_electronic ------------------------------------------------------------------------
def test_require_electronic_returns_none_when_in_scheme() -> None:
    assert require_electronic(IN_SCHEME) is None  # type: ignore[func-returns-value]


def test_require_electronic_raises_with_reason_code() -> None:
    with pytest.raises(NotEligible) as caught:
        require_electronic(replace(IN_SCHEME, procedure="dublin"))
    assert caught.value.code == "not_eligible"
    assert caught.value.extra["reason"] == "dublin_procedure"
    assert caught.value.extra["table_version"] == "2022-05-02.1"


def test_decision_summary() -> None:
    assert decide(IN_SCHEME).summary().startswith("electronic: eligible")
    summary = decide(replace(IN_SCHEME, overseas=True)).summary()
    assert summary.startswith("post: overseas")
    assert "2022-05-02.1" in summary


# --- other tables --------------------------------------------------------------------------------
def _doc() -> dict[str, object]:
    return {
        "version": "test-1",
        "sources": [{"id": "s"}],
        "regions": [{"name": "Bretagne", "requalified_dublin_from": "2030-01-01"}],
        "gudas": [
            {
                "name": "Rennes",
                "departement": "Ille-et-Vilaine",
                "region": "Bretagne",
                "in_scheme_from": "2030-01-01",
            }
        ],
    }


def test_decide_against_an_injected_table() -> None:
    table = SchemeTable.from_json(json.dumps(_doc()))
    decision = decide(IN_SCHEME, table)
    assert (decision.reason, decision.table_version) == ("guda_not_in_scheme_at_date", "test-1")
    assert decide(normal("Lyon", date(2031, 1, 1)), table).reason == "guda_not_in_scheme"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda doc: doc.pop("version"),
        lambda doc: doc.update(version=""),
        lambda doc: doc["gudas"][0].update(region="Narnia"),
        lambda doc: doc["gudas"][0].update(in_scheme_from="15/07/2020"),
        lambda doc: doc["gudas"].append(dict(doc["gudas"][0], name="RENNES")),
        lambda doc: doc["regions"][0].pop("requalified_dublin_from"),
    ],
)
def test_malformed_tables_are_configuration_errors(breakage: object) -> None:
    doc = _doc()
    breakage(doc)  # type: ignore[operator]
    with pytest.raises(ConfigurationError):
        SchemeTable.from_json(json.dumps(doc))
    with pytest.raises(ConfigurationError):
        SchemeTable.from_json("{not json")


# --- properties ----------------------------------------------------------------------------------
registration_days = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))


@given(st.sampled_from(sorted(ENTRY)), registration_days)
def test_known_guda_is_in_scheme_iff_registered_on_or_after_entry(guda: str, on: date) -> None:
    assert decide(normal(guda, on)).electronic is (on >= ENTRY[guda])


@given(
    st.sampled_from(sorted(ENTRY)),
    registration_days,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_any_personal_exclusion_means_post(
    guda: str, on: date, overseas: bool, minor: bool, unable: bool
) -> None:
    reg = normal(guda, on, overseas=overseas, unaccompanied_minor=minor, unable_to_use_space=unable)
    decision = decide(reg)
    if overseas or minor or unable:
        assert not decision.electronic
        assert decision.reason in PRECEDENCE[:3]


# --- CLI ------------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_eligibility_check_json() -> None:
    result = runner.invoke(
        eligibility_app,
        ["check", "--guda", "chalons en champagne", "--registered-on", "2022-05-01",
         "--procedure", "normal", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload == {
        "electronic": False,
        "reason": "guda_not_in_scheme_at_date",
        "detail": "the registration predates the GUDA's entry into the scheme",
        "table_version": "2022-05-02.1",
    }


def test_cli_eligibility_requalified_and_human_output() -> None:
    result = runner.invoke(
        eligibility_app,
        ["check", "--guda", "Rennes", "--registered-on", "2019-05-01",
         "--procedure", "dublin-requalified", "--requalified-on", "2020-07-15",
         "--requalification-region", "bretagne"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Notification électronique" in result.stdout
    assert "Electronic notification" in result.stdout
    bad = runner.invoke(
        eligibility_app,
        ["check", "--guda", "Rennes", "--registered-on", "2023-01-01", "--procedure", "x"],
    )
    assert bad.exit_code == 2
