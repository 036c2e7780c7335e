"""The company directory: one stream per client company id, and the claims that keep it
free of duplicates.

**First seen on a lead.** Creating a lead with a ``company_id`` appends the lead's first
event and, when the company is not registered yet, ``CompanyRegistered`` in one atomic
write. Two racing leads for one new company cannot both register it, so exactly one of
them is **new** and every later one is **repeat**. Such a company is a directory record
with just its name; filling its card is an update.

**Registered in the directory** (``CompanyAddedToDirectory``): the whole card (name, tax
id, industry, region, city, addresses, notes) before any lead names it. The first lead
that names it then appends ``CompanyFirstLeadRecorded`` to its stream in the lead's
atomic write, so that lead is new and every later one repeat, race-free as above.

**Duplicates.** A company's tax id and its normalised name in its city are *claimed*,
each on a stream of its own (:func:`tax_id_stream_id`, :func:`name_stream_id`), in the
same atomic append as the company's event: of two racing registrations with one tax id,
exactly one wins and the other hears ``likely_duplicate`` with the winner's id. The tax
id rule is absolute; the name rule gives way to an explicit override ("this is a
different company"), and then the name is held by both.

**Merge.** ``CompanyMerged`` on the merged record and ``CompanyAbsorbed`` on the
survivor, with the merged record's claims moved to the survivor, in one append. A
merged record is read-only; a later lead naming it is a repeat lead of the survivor.
"""

# ruff: noqa: RUF001, RUF002
# (Russian legal forms and city prefixes are Cyrillic on purpose)

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation

COMPANY_NAMESPACE = UUID("6f1d1c2e-93a4-4d0b-9d57-2a0d3f6c8b11")
MAX_NAME = 300
MAX_FIELD = 1_000
"""Longest industry, region, city or address."""


def company_stream_id(company_id: str) -> UUID:
    return uuid5(COMPANY_NAMESPACE, f"company:{company_id}")


def tax_id_stream_id(tax_id: str) -> UUID:
    """The stream holding the claim on one tax id (INN)."""
    return uuid5(COMPANY_NAMESPACE, f"tax-id:{tax_id}")


def name_stream_id(name_key: str) -> UUID:
    """The stream holding the claims on one normalised name in one city."""
    return uuid5(COMPANY_NAMESPACE, f"name:{name_key}")


# --- tax ids and names ------------------------------------------------------------------

INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
INN11_WEIGHTS = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
KPP = re.compile(r"^[0-9]{4}[0-9A-Z]{2}[0-9]{3}$")


def _check_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_is_valid(inn: str) -> bool:
    """A Russian tax id (INN): 10 digits (an organisation) or 12 (a person or sole
    trader), whose check digits are right."""
    if not inn.isascii() or not inn.isdigit():
        return False
    if len(inn) == 10:
        return _check_digit(inn, INN10_WEIGHTS) == int(inn[9])
    if len(inn) == 12:
        return _check_digit(inn, INN11_WEIGHTS) == int(inn[10]) and _check_digit(
            inn, INN12_WEIGHTS
        ) == int(inn[11])
    return False


def with_check_digits(stem: str) -> str:
    """The valid INN that starts with ``stem`` (9 digits → 10, 10 digits → 12): for the
    demo and tests."""
    if len(stem) == 9:
        return stem + str(_check_digit(stem, INN10_WEIGHTS))
    if len(stem) == 10:
        eleven = stem + str(_check_digit(stem, INN11_WEIGHTS))
        return eleven + str(_check_digit(eleven, INN12_WEIGHTS))
    raise ValueError("a stem has 9 or 10 digits")


def tax_id(value: Any, field: str = "tax_id") -> str | None:
    checked = values.text(field, value, required=False)
    if checked is None:
        return None
    compact = checked.replace(" ", "")
    if not compact.isascii() or not compact.isdigit() or len(compact) not in (10, 12):
        raise InvalidValue(field, f"'{field}' must be an INN of 10 or 12 digits")
    if not inn_is_valid(compact):
        raise InvalidValue(
            field, f"'{field}' {compact} is not a valid INN: its check digit is wrong"
        )
    return compact


def kpp(value: Any, tax: str | None, field: str = "kpp") -> str | None:
    checked = values.text(field, value, required=False)
    if checked is None:
        return None
    compact = checked.replace(" ", "").upper()
    if not KPP.match(compact):
        raise InvalidValue(
            field,
            f"'{field}' must be a KPP of 9 characters (4 digits, 2 digits or letters, 3 digits)",
        )
    if tax is None or len(tax) != 10:
        raise InvalidValue(field, f"'{field}' goes with an organisation's INN of 10 digits")
    return compact


LEGAL_FORMS = (
    "общество с ограниченной ответственностью",
    "публичное акционерное общество",
    "закрытое акционерное общество",
    "открытое акционерное общество",
    "непубличное акционерное общество",
    "акционерное общество",
    "индивидуальный предприниматель",
    "limited liability company",
    "ооо",
    "оао",
    "зао",
    "пао",
    "нао",
    "ао",
    "ип",
    "нко",
    "ано",
    "фгуп",
    "гуп",
    "муп",
    "llc",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "gmbh",
    "ag",
    "jsc",
    "ojsc",
    "cjsc",
    "pjsc",
    "plc",
    "llp",
    "lp",
    "sa",
    "bv",
)
_FORMS_ALTERNATIVES = "|".join(re.escape(f) for f in LEGAL_FORMS)
_LEADING_FORM = re.compile(rf"^(?:{_FORMS_ALTERNATIVES})(?:\s+|$)")
_TRAILING_FORM = re.compile(rf"(?:^|\s+)(?:{_FORMS_ALTERNATIVES})$")
_NOT_WORD = re.compile(r"[^\w]+")
_CITY_PREFIX = re.compile(r"^(?:г|город|city of)\b\.?\s*")


def _fold(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).casefold().replace("ё", "е")
    return " ".join(_NOT_WORD.sub(" ", text).split())


def normalise_name(name: str) -> str:
    """A company name as duplicates are found by: case, quotes, punctuation, the legal
    form before or after the name (ООО, АО, ИП, LLC, …) and spacing do not count. A name
    that is nothing but a legal form keeps it."""
    folded = _fold(name)
    bare = folded
    while True:
        stripped = _TRAILING_FORM.sub("", _LEADING_FORM.sub("", bare))
        if stripped == bare:
            break
        bare = stripped
    return bare or folded


def normalise_city(city: str | None) -> str:
    """A city as duplicates are found by (``г. Москва`` is ``москва``); '' for none."""
    if not city:
        return ""
    folded = _fold(city)
    return " ".join(_CITY_PREFIX.sub("", folded).split())


def name_key(name: str, city: str | None) -> str:
    """The key of the name claim: the normalised name in the normalised city."""
    return f"{normalise_name(name)}|{normalise_city(city)}"


# --- the card ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """A company's directory card."""

    name: str
    tax_id: str | None = None
    kpp: str | None = None
    industry: str | None = None
    region: str | None = None
    city: str | None = None
    legal_address: str | None = None
    actual_address: str | None = None
    postal_address: str | None = None
    notes: str | None = None


CARD_FIELDS = tuple(f.name for f in fields(Card))
TEXT_FIELDS = ("industry", "region", "city", "legal_address", "actual_address", "postal_address")


def _bounded(field: str, value: Any, limit: int) -> str | None:
    checked = values.text(field, value, required=False)
    if checked is not None and len(checked) > limit:
        raise InvalidValue(field, f"'{field}' is longer than {limit} characters")
    return checked


def check_card(raw: Mapping[str, Any]) -> Card:
    """The card from raw values, every field checked (422 naming the field)."""
    unknown = set(raw) - set(CARD_FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidValue(field, f"'{field}' is not a company field")
    name = values.required_text("name", raw.get("name"))
    if len(name) > MAX_NAME:
        raise InvalidValue("name", f"'name' is longer than {MAX_NAME} characters")
    tax = tax_id(raw.get("tax_id"))
    return Card(
        name=name,
        tax_id=tax,
        kpp=kpp(raw.get("kpp"), tax),
        **{f: _bounded(f, raw.get(f), MAX_FIELD) for f in TEXT_FIELDS},
        notes=values.text("notes", raw.get("notes"), required=False),
    )


def card_fields(card: Card) -> dict[str, Any]:
    return {f: getattr(card, f) for f in CARD_FIELDS}


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    company_id: str
    version: int
    card: Card
    in_directory: bool
    """Registered in the directory, or its card filled since (it holds its claims)."""
    first_lead_id: UUID | None
    merged_into: str | None
    absorbed: tuple[str, ...]
    had_leads: bool
    """A lead named it, or one of the companies it absorbed."""
    tax_ids: frozenset[str]
    """The tax id claims it holds (its card's and the absorbed companies')."""
    name_keys: frozenset[str]
    """The name claims it holds (its card's and the absorbed companies')."""
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TaxIdClaim:
    tax_id: str
    holder: str | None
    version: int


@dataclass(frozen=True)
class NameClaim:
    name_key: str
    holders: tuple[str, ...]
    version: int


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterCompany:
    company_id: str
    card: Mapping[str, Any]
    different_company: bool = False
    """The name rule gives way: "this is a different company" (never the tax id rule)."""


@dataclass(frozen=True)
class ChangeCompanyCard:
    """``replace``: the card is ``changes`` (PUT); else only the fields named change."""

    changes: Mapping[str, Any]
    replace: bool = False
    different_company: bool = False


@dataclass(frozen=True)
class MergeCompany:
    into: str


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CompanyRegistered(DomainEvent):
    """First seen on a lead (its stream's first event then)."""

    company_id: str
    company_name: str
    first_lead_id: UUID


@dataclass(frozen=True, kw_only=True)
class CompanyAddedToDirectory(DomainEvent):
    company_id: str
    name: str
    tax_id: str | None
    kpp: str | None
    industry: str | None
    region: str | None
    city: str | None
    legal_address: str | None
    actual_address: str | None
    postal_address: str | None
    notes: str | None
    name_key: str
    different_company: bool


@dataclass(frozen=True, kw_only=True)
class CompanyCardChanged(DomainEvent):
    """The whole card after the change."""

    company_id: str
    name: str
    tax_id: str | None
    kpp: str | None
    industry: str | None
    region: str | None
    city: str | None
    legal_address: str | None
    actual_address: str | None
    postal_address: str | None
    notes: str | None
    name_key: str
    changed: tuple[str, ...]
    different_company: bool


@dataclass(frozen=True, kw_only=True)
class CompanyFirstLeadRecorded(DomainEvent):
    """The first lead naming a company registered in the directory (the lead is new)."""

    company_id: str
    lead_id: UUID


@dataclass(frozen=True, kw_only=True)
class CompanyMerged(DomainEvent):
    """The company was merged into ``into``: read-only from now on; its records are
    reported under the survivor."""

    company_id: str
    into: str
    into_name: str


@dataclass(frozen=True, kw_only=True)
class CompanyAbsorbed(DomainEvent):
    """A duplicate was merged into this company, with its claims."""

    company_id: str
    merged_company_id: str
    merged_name: str
    tax_ids: tuple[str, ...]
    name_keys: tuple[str, ...]
    merged_had_leads: bool


@dataclass(frozen=True, kw_only=True)
class CompanyTaxIdClaimed(DomainEvent):
    """``company_id`` holds the tax id now (``merged_from``: moved by a merge)."""

    tax_id: str
    company_id: str
    merged_from: str | None


@dataclass(frozen=True, kw_only=True)
class CompanyTaxIdReleased(DomainEvent):
    tax_id: str
    company_id: str


@dataclass(frozen=True, kw_only=True)
class CompanyNameClaimed(DomainEvent):
    """``company_id`` holds the name in the city (beside any holder named as a
    different company; ``merged_from``: moved by a merge)."""

    name_key: str
    company_id: str
    merged_from: str | None


@dataclass(frozen=True, kw_only=True)
class CompanyNameReleased(DomainEvent):
    name_key: str
    company_id: str


COMPANY_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    CompanyRegistered,
    CompanyAddedToDirectory,
    CompanyCardChanged,
    CompanyFirstLeadRecorded,
    CompanyMerged,
    CompanyAbsorbed,
    CompanyTaxIdClaimed,
    CompanyTaxIdReleased,
    CompanyNameClaimed,
    CompanyNameReleased,
)
COMPANY_STREAM_STARTS = (CompanyRegistered, CompanyAddedToDirectory)


# --- deciding ---------------------------------------------------------------------------


def register(
    company_id: str, company_name: str, first_lead_id: UUID, meta: CommandMeta
) -> CompanyRegistered:
    """The company a new lead names, seen for the first time."""
    return CompanyRegistered(
        **meta.event_fields(),
        company_id=company_id,
        company_name=company_name,
        first_lead_id=first_lead_id,
    )


def lead_named(
    company: Company, lead_id: UUID, meta: CommandMeta
) -> CompanyFirstLeadRecorded | None:
    """A new lead names this (live) company: its first lead is recorded when it had
    none (the lead is new), else nothing (the lead is a repeat)."""
    if company.had_leads:
        return None
    return CompanyFirstLeadRecorded(
        **meta.event_fields(), company_id=company.company_id, lead_id=lead_id
    )


def _company_id(value: str) -> str:
    checked = values.required_text("company_id", value)
    if len(checked) > 200:
        raise InvalidValue("company_id", "'company_id' is longer than 200 characters")
    return checked


def _duplicate(what: str, existing: str, value: str) -> RuleViolation:
    return RuleViolation(
        "likely_duplicate",
        f"likely a duplicate of company {existing}: it has the same {what} ({value})",
        existing_company_id=existing,
        matched=what.replace(" ", "_"),
    )


def _claims(
    company_id: str,
    old: Card | None,
    new: Card,
    held_tax: frozenset[str],
    held_names: frozenset[str],
    tax_claim: TaxIdClaim | None,
    name_claim: NameClaim | None,
    old_claims: bool,
    different_company: bool,
    meta: CommandMeta,
) -> list[tuple[str, DomainEvent]]:
    """The claim events a card needs (each with its claim stream's kind and key), or a
    ``likely_duplicate`` refusal. ``old_claims``: the old card's claims are held."""
    out: list[tuple[str, DomainEvent]] = []
    key = name_key(new.name, new.city)
    if new.tax_id is not None and new.tax_id not in held_tax:
        assert tax_claim is not None
        assert tax_claim.tax_id == new.tax_id
        if tax_claim.holder is not None and tax_claim.holder != company_id:
            raise _duplicate("tax id", tax_claim.holder, new.tax_id)
        out.append(
            (
                "tax",
                CompanyTaxIdClaimed(
                    **meta.event_fields(),
                    tax_id=new.tax_id,
                    company_id=company_id,
                    merged_from=None,
                ),
            )
        )
    if key not in held_names:
        assert name_claim is not None
        assert name_claim.name_key == key
        others = [h for h in name_claim.holders if h != company_id]
        if others and not different_company:
            raise _duplicate(
                "name in the same city", others[0], f"{new.name}, {new.city or 'no city'}"
            )
        out.append(
            (
                "name",
                CompanyNameClaimed(
                    **meta.event_fields(), name_key=key, company_id=company_id, merged_from=None
                ),
            )
        )
    if old is not None and old_claims:
        if old.tax_id is not None and old.tax_id != new.tax_id and old.tax_id in held_tax:
            out.append(
                (
                    "tax",
                    CompanyTaxIdReleased(
                        **meta.event_fields(), tax_id=old.tax_id, company_id=company_id
                    ),
                )
            )
        old_key = name_key(old.name, old.city)
        if old_key != key and old_key in held_names:
            out.append(
                (
                    "name",
                    CompanyNameReleased(
                        **meta.event_fields(), name_key=old_key, company_id=company_id
                    ),
                )
            )
    return out


def add_to_directory(
    command: RegisterCompany,
    tax_claim: TaxIdClaim | None,
    name_claim: NameClaim | None,
    meta: CommandMeta,
) -> tuple[CompanyAddedToDirectory, list[tuple[str, DomainEvent]]]:
    """A company registered in the directory, and the claims on its tax id and name
    (``tax_claim`` / ``name_claim``: the claim streams of its card's, as they are)."""
    company_id = _company_id(command.company_id)
    card = check_card(command.card)
    claims = _claims(
        company_id,
        None,
        card,
        frozenset(),
        frozenset(),
        tax_claim,
        name_claim,
        False,
        command.different_company,
        meta,
    )
    event = CompanyAddedToDirectory(
        **meta.event_fields(),
        company_id=company_id,
        **card_fields(card),
        name_key=name_key(card.name, card.city),
        different_company=command.different_company,
    )
    return event, claims


def _writable(company: Company) -> None:
    """A merged record is read-only."""
    if company.merged_into is not None:
        raise RuleViolation(
            "company_merged",
            f"company {company.company_id} was merged into {company.merged_into}: "
            "change the surviving record",
            merged_into=company.merged_into,
        )


def proposed_card(company: Company, command: ChangeCompanyCard) -> Card:
    """The card the command asks for (checked; 422 naming the field)."""
    if not command.changes:
        raise InvalidValue("body", "name at least one field to change")
    raw = (
        dict(command.changes)
        if command.replace
        else {**card_fields(company.card), **command.changes}
    )
    return check_card(raw)


def change_card(
    company: Company,
    command: ChangeCompanyCard,
    tax_claim: TaxIdClaim | None,
    name_claim: NameClaim | None,
    meta: CommandMeta,
) -> tuple[CompanyCardChanged, list[tuple[str, DomainEvent]]]:
    _writable(company)
    card = proposed_card(company, command)
    changed = tuple(f for f in CARD_FIELDS if getattr(card, f) != getattr(company.card, f))
    if not changed and company.in_directory:
        raise RuleViolation("company_unchanged", "the company already has these values")
    claims = _claims(
        company.company_id,
        company.card,
        card,
        company.tax_ids,
        company.name_keys,
        tax_claim,
        name_claim,
        company.in_directory,
        command.different_company,
        meta,
    )
    event = CompanyCardChanged(
        **meta.event_fields(),
        company_id=company.company_id,
        **card_fields(card),
        name_key=name_key(card.name, card.city),
        changed=changed,
        different_company=command.different_company,
    )
    return event, claims


def merge(
    company: Company, survivor: Company | None, command: MergeCompany, meta: CommandMeta
) -> tuple[CompanyMerged, CompanyAbsorbed]:
    """Merge ``company`` into ``survivor`` (None: unknown). The claims the merged company
    holds move with it (see :func:`moved_claims`)."""
    into = values.required_text("into", command.into)
    if into == company.company_id:
        raise InvalidValue("into", "a company cannot be merged into itself")
    _writable(company)
    if survivor is None:
        raise InvalidValue("into", f"company {into} does not exist")
    if survivor.merged_into is not None:
        raise RuleViolation(
            "company_merged",
            f"company {into} was merged into {survivor.merged_into}: "
            "merge into the surviving record",
            merged_into=survivor.merged_into,
        )
    merged = CompanyMerged(
        **meta.event_fields(),
        company_id=company.company_id,
        into=into,
        into_name=survivor.card.name,
    )
    absorbed = CompanyAbsorbed(
        **meta.event_fields(),
        company_id=into,
        merged_company_id=company.company_id,
        merged_name=company.card.name,
        tax_ids=tuple(sorted(company.tax_ids)),
        name_keys=tuple(sorted(company.name_keys)),
        merged_had_leads=company.had_leads,
    )
    return merged, absorbed


def moved_claims(
    company: Company, into: str, meta: CommandMeta
) -> list[tuple[str, str, DomainEvent]]:
    """The claim events of a merge: each claim of the merged company moves to the
    survivor (kind, key, event)."""
    moved: list[tuple[str, str, DomainEvent]] = []
    for tax in sorted(company.tax_ids):
        moved.append(
            (
                "tax",
                tax,
                CompanyTaxIdClaimed(
                    **meta.event_fields(),
                    tax_id=tax,
                    company_id=into,
                    merged_from=company.company_id,
                ),
            )
        )
    for key in sorted(company.name_keys):
        moved.append(
            (
                "name",
                key,
                CompanyNameClaimed(
                    **meta.event_fields(),
                    name_key=key,
                    company_id=into,
                    merged_from=company.company_id,
                ),
            )
        )
    return moved


# --- evolving ---------------------------------------------------------------------------


def _card_of(event: CompanyAddedToDirectory | CompanyCardChanged) -> Card:
    return Card(**{f: getattr(event, f) for f in CARD_FIELDS})


def evolve(company: Company | None, event: DomainEvent) -> Company:
    if company is None:
        match event:
            case CompanyRegistered():
                return Company(
                    company_id=event.company_id,
                    version=1,
                    card=Card(name=event.company_name),
                    in_directory=False,
                    first_lead_id=event.first_lead_id,
                    merged_into=None,
                    absorbed=(),
                    had_leads=True,
                    tax_ids=frozenset(),
                    name_keys=frozenset(),
                    created_at=event.at,
                    updated_at=event.at,
                )
            case CompanyAddedToDirectory():
                card = _card_of(event)
                return Company(
                    company_id=event.company_id,
                    version=1,
                    card=card,
                    in_directory=True,
                    first_lead_id=None,
                    merged_into=None,
                    absorbed=(),
                    had_leads=False,
                    tax_ids=frozenset({card.tax_id}) if card.tax_id else frozenset(),
                    name_keys=frozenset({event.name_key}),
                    created_at=event.at,
                    updated_at=event.at,
                )
            case _:
                raise ValueError(
                    f"a company's stream starts with its registration, not {event.type}"
                )
    changes: dict[str, Any]
    match event:
        case CompanyCardChanged():
            card = _card_of(event)
            tax_ids = set(company.tax_ids)
            names = set(company.name_keys)
            if company.in_directory:
                old = company.card
                if old.tax_id and old.tax_id != card.tax_id:
                    tax_ids.discard(old.tax_id)
                old_key = name_key(old.name, old.city)
                if old_key != event.name_key:
                    names.discard(old_key)
            if card.tax_id:
                tax_ids.add(card.tax_id)
            names.add(event.name_key)
            changes = {
                "card": card,
                "in_directory": True,
                "tax_ids": frozenset(tax_ids),
                "name_keys": frozenset(names),
            }
        case CompanyFirstLeadRecorded():
            changes = {"first_lead_id": event.lead_id, "had_leads": True}
        case CompanyMerged():
            changes = {"merged_into": event.into, "tax_ids": frozenset(), "name_keys": frozenset()}
        case CompanyAbsorbed():
            changes = {
                "absorbed": (*company.absorbed, event.merged_company_id),
                "had_leads": company.had_leads or event.merged_had_leads,
                "tax_ids": company.tax_ids | set(event.tax_ids),
                "name_keys": company.name_keys | set(event.name_keys),
            }
        case _:
            raise ValueError(f"not a company event: {event.type}")
    return replace(company, version=company.version + 1, updated_at=event.at, **changes)


def fold(events: list[DomainEvent]) -> Company | None:
    company: Company | None = None
    for event in events:
        company = evolve(company, event)
    return company


def fold_tax_claim(tax: str, events: list[DomainEvent]) -> TaxIdClaim:
    holder: str | None = None
    for event in events:
        if isinstance(event, CompanyTaxIdClaimed):
            holder = event.company_id
        elif isinstance(event, CompanyTaxIdReleased) and holder == event.company_id:
            holder = None
    return TaxIdClaim(tax, holder, len(events))


def fold_name_claim(key: str, events: list[DomainEvent]) -> NameClaim:
    holders: list[str] = []
    for event in events:
        if isinstance(event, CompanyNameClaimed):
            holders = [h for h in holders if h not in (event.merged_from, event.company_id)]
            holders.append(event.company_id)
        elif isinstance(event, CompanyNameReleased):
            holders = [h for h in holders if h != event.company_id]
    return NameClaim(key, tuple(holders), len(events))
