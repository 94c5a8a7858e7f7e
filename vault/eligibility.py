"""Who is notified through the secure digital space, and who by post.

The scheme (CESEDA R.531-17; arrêtés of 8 July 2020, 29 April 2021, 25 April 2022)
covers an application or re-examination registered at a listed mainland GUDA on or
after the date that GUDA joined, and a Dublin case requalified into the normal or
accelerated procedure in a prefecture of a region on or after the date that region
joined. The GUDA list and dates are data (``vault/data/scheme_gudas.json``), loaded
once through :mod:`importlib.resources`; the rules below are code.

Invariants
----------
* :func:`decide` is pure and total over valid registrations: it returns one decision
  with one stable reason code and the version of the table that produced it.
  Malformed input raises :class:`InvalidInput`; it never yields a decision.
* Reasons are checked in a fixed precedence (:data:`PRECEDENCE`): personal exclusions
  first (overseas, unaccompanied minor, unable to use the space; Conseil d'État,
  26 March 2025, no. 488274), then the procedure, then places and dates. The first
  that applies is the reason; an earlier one always wins.
* For a requalified Dublin case, only the requalification date and region count; the
  GUDA and the original registration date do not (our reading of the FAQ: the
  requalified case enters the scheme on its own footing).
* Names match case-, accent- and punctuation-insensitively ("Chalons en champagne"
  is "Châlons-en-Champagne").
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args

from vault.errors import ConfigurationError, InvalidInput, NotEligible

__all__ = [
    "PRECEDENCE",
    "EligibilityDecision",
    "GudaEntry",
    "Procedure",
    "Reason",
    "RegionEntry",
    "Registration",
    "SchemeTable",
    "decide",
    "default_scheme_table",
    "require_electronic",
]

Procedure = Literal["normal", "accelerated", "dublin", "dublin_requalified"]

# Stable reason codes: part of the public contract (API, ledger, reports).
Reason = Literal[
    "eligible",
    "overseas",
    "unaccompanied_minor",
    "unable_to_use_space",
    "dublin_procedure",
    "requalification_missing",
    "region_not_in_scheme",
    "region_not_in_scheme_at_date",
    "guda_not_in_scheme",
    "guda_not_in_scheme_at_date",
]

#: Order in which exclusions are tested; the first that applies is the reason.
PRECEDENCE: tuple[Reason, ...] = (
    "overseas",
    "unaccompanied_minor",
    "unable_to_use_space",
    "dublin_procedure",
    # requalified Dublin cases only:
    "requalification_missing",
    "region_not_in_scheme",
    "region_not_in_scheme_at_date",
    # normal and accelerated procedures only:
    "guda_not_in_scheme",
    "guda_not_in_scheme_at_date",
)

_T = TypeVar("_T")

_EXPLANATIONS: Mapping[Reason, str] = MappingProxyType(
    {
        "eligible": "in the electronic notification scheme",
        "overseas": "applicants overseas (outre-mer) are notified by post",
        "unaccompanied_minor": "unaccompanied minors are notified by post",
        "unable_to_use_space": (
            "the applicant showed at registration they cannot use the space "
            "(CE 26 March 2025, no. 488274); notified by post"
        ),
        "dublin_procedure": "Dublin cases not requalified are notified by post",
        "requalification_missing": (
            "a requalified Dublin case needs the requalification date and region"
        ),
        "region_not_in_scheme": "the requalification region is not a scheme region",
        "region_not_in_scheme_at_date": (
            "the requalification predates the region's entry into the scheme"
        ),
        "guda_not_in_scheme": "the GUDA is not in the scheme",
        "guda_not_in_scheme_at_date": "the registration predates the GUDA's entry into the scheme",
    }
)


# --- the versioned table ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GudaEntry:
    name: str
    departement: str
    region: str
    in_scheme_from: date


@dataclass(frozen=True, slots=True)
class RegionEntry:
    name: str
    requalified_dublin_from: date


@dataclass(frozen=True, slots=True)
class SchemeTable:
    """The GUDA and region table at one version. Build it with :meth:`from_json`."""

    version: str
    sources: tuple[str, ...]
    gudas: Mapping[str, GudaEntry] = field(repr=False)
    regions: Mapping[str, RegionEntry] = field(repr=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> SchemeTable:
        """Parse and check a table; a malformed table raises :class:`ConfigurationError`."""
        try:
            doc = json.loads(text)
            return cls._from_doc(doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"malformed scheme table: {exc}") from exc

    @classmethod
    def _from_doc(cls, doc: Mapping[str, Any]) -> SchemeTable:
        version = doc["version"]
        if not isinstance(version, str) or not version:
            raise ValueError("the table needs a version string")
        regions: dict[str, RegionEntry] = {}
        region_by_name: dict[str, RegionEntry] = {}
        for row in doc["regions"]:
            entry = RegionEntry(row["name"], date.fromisoformat(row["requalified_dublin_from"]))
            region_by_name[row["name"]] = entry
            _index(regions, entry, [row["name"], *row.get("aliases", [])])
        gudas: dict[str, GudaEntry] = {}
        for row in doc["gudas"]:
            if row["region"] not in region_by_name:
                raise ValueError(f"GUDA {row['name']!r} names an unknown region {row['region']!r}")
            guda = GudaEntry(
                row["name"],
                row["departement"],
                row["region"],
                date.fromisoformat(row["in_scheme_from"]),
            )
            _index(gudas, guda, [row["name"], *row.get("aliases", [])])
        sources = tuple(str(s["id"]) for s in doc["sources"])
        return cls(version, sources, MappingProxyType(gudas), MappingProxyType(regions))

    def guda(self, name: str) -> GudaEntry | None:
        return self.gudas.get(_key(name))

    def region(self, name: str) -> RegionEntry | None:
        return self.regions.get(_key(name))


@functools.cache
def default_scheme_table() -> SchemeTable:
    """The table packaged with the vault (``vault/data/scheme_gudas.json``)."""
    text = resources.files("vault").joinpath("data/scheme_gudas.json").read_bytes()
    return SchemeTable.from_json(text)


# --- the decision ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Registration:
    """What the GUDA recorded, as far as the scheme cares.

    ``procedure`` is the current procedure; a Dublin case requalified into the normal
    or accelerated procedure is ``"dublin_requalified"`` with ``requalified_on`` and
    ``requalification_region`` (the region of the requalifying prefecture).
    A re-examination is registered like an application.
    """

    guda: str
    registered_on: date
    procedure: Procedure
    requalified_on: date | None = None
    requalification_region: str | None = None
    overseas: bool = False
    unaccompanied_minor: bool = False
    unable_to_use_space: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.guda, str) or not self.guda.strip():
            raise InvalidInput("the GUDA name is required", field="guda")
        _require_date("registered_on", self.registered_on)
        if self.procedure not in get_args(Procedure):
            raise InvalidInput(f"unknown procedure {self.procedure!r}", field="procedure")
        if self.requalified_on is not None:
            _require_date("requalified_on", self.requalified_on)
            if self.requalified_on < self.registered_on:
                raise InvalidInput(
                    "the requalification precedes the registration", field="requalified_on"
                )
        requalification_given = (
            self.requalified_on is not None or self.requalification_region is not None
        )
        if requalification_given and self.procedure != "dublin_requalified":
            raise InvalidInput(
                "requalification data given for a case that is not a requalified Dublin case",
                field="procedure",
            )


@dataclass(frozen=True, slots=True)
class EligibilityDecision:
    electronic: bool
    reason: Reason
    table_version: str

    @property
    def detail(self) -> str:
        return _EXPLANATIONS[self.reason]

    def summary(self) -> str:
        channel = "electronic" if self.electronic else "post"
        return f"{channel}: {self.reason} ({self.detail}; table {self.table_version})"


def decide(registration: Registration, table: SchemeTable | None = None) -> EligibilityDecision:
    """Is this applicant notified through the secure space? See :data:`PRECEDENCE`."""
    table = default_scheme_table() if table is None else table
    return EligibilityDecision(
        electronic=(reason := _reason(registration, table)) == "eligible",
        reason=reason,
        table_version=table.version,
    )


def require_electronic(registration: Registration, table: SchemeTable | None = None) -> None:
    """Return ``None`` if the applicant is in the scheme; raise :class:`NotEligible`."""
    decision = decide(registration, table)
    if not decision.electronic:
        raise NotEligible(
            decision.detail, reason=decision.reason, table_version=decision.table_version
        )


def _reason(reg: Registration, table: SchemeTable) -> Reason:
    # Personal exclusions outrank everything: they hold whatever the place or date.
    if reg.overseas:
        return "overseas"
    if reg.unaccompanied_minor:
        return "unaccompanied_minor"
    if reg.unable_to_use_space:
        return "unable_to_use_space"
    if reg.procedure == "dublin":
        return "dublin_procedure"
    if reg.procedure == "dublin_requalified":
        # Seed FAQ: "requalified ... from 15 July 2020 in a prefecture of Nouvelle-
        # Aquitaine or Bretagne, or from 2 May 2022 in ... any other mainland region".
        if reg.requalified_on is None or not reg.requalification_region:
            return "requalification_missing"
        region = table.region(reg.requalification_region)
        if region is None:
            return "region_not_in_scheme"
        if reg.requalified_on < region.requalified_dublin_from:
            return "region_not_in_scheme_at_date"
        return "eligible"
    guda = table.guda(reg.guda)
    if guda is None:
        return "guda_not_in_scheme"
    if reg.registered_on < guda.in_scheme_from:
        return "guda_not_in_scheme_at_date"
    return "eligible"


# --- machinery ---------------------------------------------------------------------------
def _key(name: str) -> str:
    """Fold case, accents and punctuation: 'Châlons-en-Champagne' -> 'chalons en champagne'."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = "".join(c if c.isalnum() else " " for c in bare).split()
    return " ".join(words)


def _index(index: dict[str, _T], entry: _T, names: Sequence[str]) -> None:
    for name in names:
        key = _key(name)
        if not key or key in index:
            raise ValueError(f"duplicate or empty name {name!r} in the scheme table")
        index[key] = entry


def _require_date(field_name: str, value: object) -> None:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput(f"{field_name} must be a date", field=field_name)
