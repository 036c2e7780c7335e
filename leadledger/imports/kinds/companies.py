"""Importing companies: one row, one directory card (name, tax id, KPP, industry, region,
city, addresses, notes), with the same rules as ``POST /companies``.

Each row is decided by :func:`aggregates.company.add_to_directory` (the INN's check
digits, the KPP's shape, the lengths) with the claims on its tax id and its normalised
name in its city, so **likely duplicates** are refused as by the command: a row whose tax
id or name in its city is held by another company of the directory is a bad row naming
that company's id (``different_company: yes`` lets the name through, never the tax id),
and so is a row whose tax id or name another row of the file took (naming that row).

**The record's id** is the row's ``company_id`` when given (a directory exported from
LeadLedger carries it), else its tax id (as lead files name their clients), else one
derived from its normalised name in its city: the same company imported twice is the
same record, "already imported". A company first seen on a lead (just its name) gets its
card filled from the row (``CompanyCardChanged``), as a ``PATCH`` would; it is already
imported when the row says nothing more than its name.

Claims are read for a whole batch of rows at once (only the claim streams that exist are
loaded) and followed through the file, so a million new companies cost two look-ups per
batch.
"""

# (the Russian header names are Cyrillic on purpose)

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aggregates import company
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from commands.companies import load_company_records
from event_store.bulk import existing_streams
from leadledger.imports.base import Field, NewEventSpec, RowRefused, Session, record_id

NAME = "companies"
FIELDS: tuple[Field, ...] = (
    Field(
        "company_id",
        aliases=("id", "company id", "код", "идентификатор", "id компании"),
        help="The company's id in LeadLedger (leads name it by it). Default: its tax id, "
        "else one derived from its name in its city.",
    ),
    Field(
        "name",
        required=True,
        aliases=("название", "наименование", "компания", "клиент", "company", "company name"),
    ),
    Field(
        "tax_id",
        aliases=("инн", "inn", "tax id", "taxpayer id"),
        help="INN: 10 digits (an organisation) or 12 (a person), check digits verified.",
    ),
    Field("kpp", aliases=("кпп",), help="KPP: 9 characters, with an organisation's INN."),
    Field("industry", aliases=("отрасль", "сфера деятельности", "сфера", "вид деятельности")),
    Field("region", aliases=("регион", "область")),
    Field("city", aliases=("город", "населенный пункт", "населённый пункт")),
    Field(
        "legal_address",
        aliases=("адрес", "юридический адрес", "юр адрес", "юр. адрес", "address"),
    ),
    Field("actual_address", aliases=("фактический адрес", "факт адрес", "факт. адрес")),
    Field("postal_address", aliases=("почтовый адрес",)),
    Field("notes", aliases=("примечание", "примечания", "комментарий", "заметки")),
    Field(
        "different_company",
        "flag",
        aliases=("другая компания",),
        help="yes: another company than the one with the same name in the same city "
        "(never for the same tax id).",
    ),
)
CARD = company.CARD_FIELDS


def company_id_of(values: dict[str, Any]) -> str:
    """The record's company id from its row (see the module's docstring)."""
    given = values.get("company_id")
    if isinstance(given, str) and given.strip():
        return given.strip()
    tax = values.get("tax_id")
    if isinstance(tax, str) and tax.replace(" ", ""):
        return tax.replace(" ", "")
    key = company.name_key(str(values.get("name", "")), values.get("city"))
    return str(record_id(NAME, f"name:{key}"))


def _card(values: dict[str, Any]) -> dict[str, Any]:
    return {f: values[f] for f in CARD if f in values}


def _duplicate_of_row(what: str, field: str, row: int, holder: str, value: str) -> RowRefused:
    return RowRefused(
        field,
        f"likely a duplicate of row {row} (company {holder}): it has the same {what} ({value})",
        "likely_duplicate",
    )


class Companies:
    name = NAME
    fields = FIELDS

    def key(self, number: int, values: dict[str, Any], checksum: str) -> str:
        return company_id_of(values)

    def record(self, key: str) -> UUID:
        return company.company_stream_id(key)

    def start(self, session: Session) -> CompanyRun:
        return CompanyRun(session)


class CompanyRun:
    scan_fields: frozenset[str] = frozenset()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.companies: dict[UUID, company.Company] = {}
        """The companies of the file found in the store (first seen on a lead)."""
        self.tax_claims: dict[str, company.TaxIdClaim] = {}
        self.name_claims: dict[str, company.NameClaim] = {}
        self.file_tax: dict[str, tuple[int, str]] = {}
        """tax id → (row, company id) of the row of this file that claimed it"""
        self.file_names: dict[str, tuple[int, str]] = {}

    def scan(self, number: int, values: dict[str, Any]) -> None:
        pass

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        """A company is in already when it is in the directory, or was first seen on a
        lead and the row says nothing more than its name."""
        store = self.session.store
        found = existing_streams(store, [record for record, _ in rows])
        present: set[UUID] = set()
        for record, values in rows:
            if record not in found:
                continue
            state = self.companies.get(record)
            if state is None:
                records = load_company_records(store, company_id_of(values))
                state = company.fold([r.event for r in records])
                if state is None:  # a stream that is no company's: decided (and refused)
                    continue
                self.companies[record] = state
            if state.in_directory or self._same_card(state, values):
                present.add(record)
        return present

    @staticmethod
    def _same_card(state: company.Company, values: dict[str, Any]) -> bool:
        try:
            return company.check_card(_card(values)) == state.card
        except InvalidValue:
            return False

    def prefetch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        taxes: set[str] = set()
        names: set[str] = set()
        for _, values in rows:
            try:
                card = company.check_card(_card(values))
            except InvalidValue:
                continue  # refused when decided
            if card.tax_id is not None:
                taxes.add(card.tax_id)
            names.add(company.name_key(card.name, card.city))
        self._load_claims(taxes - set(self.tax_claims), names - set(self.name_claims))

    def _load_claims(self, taxes: set[str], names: set[str]) -> None:
        store = self.session.store
        streams = {company.tax_id_stream_id(t): ("tax", t) for t in taxes}
        streams.update({company.name_stream_id(n): ("name", n) for n in names})
        existing = existing_streams(store, list(streams))
        for stream, (kind, key) in streams.items():
            events: list[DomainEvent] = (
                [r.event for r in store.load(stream)] if stream in existing else []
            )
            if kind == "tax":
                self.tax_claims[key] = company.fold_tax_claim(key, events)
            else:
                self.name_claims[key] = company.fold_name_claim(key, events)

    def _claims(self, card: company.Card) -> tuple[company.TaxIdClaim | None, company.NameClaim]:
        key = company.name_key(card.name, card.city)
        missing_tax = {card.tax_id} - set(self.tax_claims) - {None}
        missing_name = {key} - set(self.name_claims)
        if missing_tax or missing_name:  # a row decided without its batch's prefetch
            self._load_claims({t for t in missing_tax if t is not None}, missing_name)
        tax = None if card.tax_id is None else self.tax_claims[card.tax_id]
        return tax, self.name_claims[key]

    def decide(
        self, number: int, record: UUID, values: dict[str, Any], meta: CommandMeta
    ) -> list[NewEventSpec]:
        company_id = company_id_of(values)
        different = bool(values.get("different_company"))
        card_values = _card(values)
        card = company.check_card(card_values)
        key = company.name_key(card.name, card.city)
        if card.tax_id is not None and card.tax_id in self.file_tax:
            row, holder = self.file_tax[card.tax_id]
            raise _duplicate_of_row("tax id", "tax_id", row, holder, card.tax_id)
        if key in self.file_names and not different:
            row, holder = self.file_names[key]
            place = f"{card.name}, {card.city or 'no city'}"
            raise _duplicate_of_row("name in the same city", "name", row, holder, place)
        tax_claim, name_claim = self._claims(card)
        state = self.companies.get(record)
        try:
            if state is None:
                command = company.RegisterCompany(company_id, card_values, different)
                event, claims = company.add_to_directory(command, tax_claim, name_claim, meta)
                specs: list[NewEventSpec] = [(record, 1, event)]
            else:
                change = company.ChangeCompanyCard(card_values, True, different)
                changed, claims = company.change_card(state, change, tax_claim, name_claim, meta)
                specs = [(record, state.version + 1, changed)]
        except RuleViolation as refusal:
            if refusal.rule == "likely_duplicate":
                matched = refusal.details.get("matched")
                raise RowRefused(
                    "tax_id" if matched == "tax_id" else "name", refusal.message, refusal.rule
                ) from None
            raise
        for kind, claim in claims:
            specs.append(self._claim(kind, claim))
        if card.tax_id is not None:
            self.file_tax[card.tax_id] = (number, company_id)
        self.file_names[key] = (number, company_id)
        return specs

    def _claim(self, kind: str, event: DomainEvent) -> NewEventSpec:
        """A claim event at its stream's next version (the claim followed in memory)."""
        if kind == "tax":
            assert isinstance(event, (company.CompanyTaxIdClaimed, company.CompanyTaxIdReleased))
            tax = self.tax_claims[event.tax_id]
            holder = event.company_id if isinstance(event, company.CompanyTaxIdClaimed) else None
            self.tax_claims[event.tax_id] = company.TaxIdClaim(tax.tax_id, holder, tax.version + 1)
            return (company.tax_id_stream_id(event.tax_id), tax.version + 1, event)
        assert isinstance(event, (company.CompanyNameClaimed, company.CompanyNameReleased))
        held = self.name_claims.get(event.name_key) or company.NameClaim(event.name_key, (), 0)
        holders = tuple(h for h in held.holders if h != event.company_id)
        if isinstance(event, company.CompanyNameClaimed):
            holders = (*holders, event.company_id)
        self.name_claims[event.name_key] = company.NameClaim(
            event.name_key, holders, held.version + 1
        )
        return (company.name_stream_id(event.name_key), held.version + 1, event)

    def refused(self, number: int) -> None:
        pass

    def consistent(self, refused: frozenset[int]) -> bool:
        return True


KIND = Companies()
