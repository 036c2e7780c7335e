"""The company directory's rules (aggregates/company.py), Given / When / Then, pure.

Tax ids with their check digits, names as duplicates are found, the claims a card makes
and releases, the duplicate refusals, merges and what a new lead naming a company adds.
"""

# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregates import company
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INN_A = company.with_check_digits("770708389")  # 7707083893
INN_B = company.with_check_digits("500100732")
INN_PERSON = company.with_check_digits("5001007322")
LEAD = UUID("00000000-0000-4000-8000-000000000001")


def meta() -> CommandMeta:
    return CommandMeta(actor="anna.sales", at=T0, command_id=uuid4())


def free_tax(tax: str | None) -> company.TaxIdClaim | None:
    return None if tax is None else company.TaxIdClaim(tax, None, 0)


def free_name(name: str, city: str | None) -> company.NameClaim:
    return company.NameClaim(company.name_key(name, city), (), 0)


def registered(company_id: str = "acme", **card: Any) -> list[DomainEvent]:
    """The events of a company registered in the directory with this card."""
    card = {"name": "Acme", **card}
    command = company.RegisterCompany(company_id, card)
    event, _ = company.add_to_directory(
        command,
        free_tax(card.get("tax_id")),
        free_name(card["name"], card.get("city")),
        meta(),
    )
    return [event]


def state(events: list[DomainEvent]) -> company.Company:
    folded = company.fold(events)
    assert folded is not None
    return folded


# --- values -----------------------------------------------------------------------------


def test_inn_check_digits() -> None:
    assert INN_A == "7707083893"
    assert company.inn_is_valid("7707083893")
    assert company.inn_is_valid("500100732259")  # a 12-digit INN
    assert not company.inn_is_valid("7707083894")
    assert not company.inn_is_valid("500100732250")
    assert not company.inn_is_valid("77070838")
    assert not company.inn_is_valid("７７０７０８３８９３")  # digits, but not ASCII ones


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.from_regex(r"[0-9]{10}", fullmatch=True))
def test_made_up_inns_are_valid_and_one_wrong_digit_is_not(stem10: str, stem12: str) -> None:
    for inn in (company.with_check_digits(stem10), company.with_check_digits(stem12)):
        assert company.inn_is_valid(inn)
        wrong = inn[:-1] + str((int(inn[-1]) + 1) % 10)
        assert not company.inn_is_valid(wrong)


@pytest.mark.parametrize(
    ("tax_id", "kpp", "field"),
    [
        ("7707083894", None, "tax_id"),
        ("77070838", None, "tax_id"),
        ("ABCDEFGHIJ", None, "tax_id"),
        (INN_A, "77070100", "kpp"),
        (INN_PERSON, "770701001", "kpp"),
        (None, "770701001", "kpp"),
    ],
)
def test_bad_tax_ids_and_kpps_are_refused_naming_the_field(
    tax_id: str | None, kpp: str | None, field: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        company.check_card({"name": "Acme", "tax_id": tax_id, "kpp": kpp})
    assert refused.value.field == field


def test_a_card_is_checked_field_by_field() -> None:
    card = company.check_card(
        {"name": "  Acme ", "tax_id": " 7707 083893 ", "kpp": "7707ab001", "city": " Москва "}
    )
    assert (card.name, card.tax_id, card.kpp, card.city) == ("Acme", INN_A, "7707AB001", "Москва")
    for raw, field in (({"name": " "}, "name"), ({"name": "A", "colour": "red"}, "colour")):
        with pytest.raises(InvalidValue) as refused:
            company.check_card(raw)
        assert refused.value.field == field


@pytest.mark.parametrize(
    "name",
    [
        "ООО «Ромашка»",
        "Ромашка, ООО",
        '"РОМАШКА"   АО',
        "ромашка",
        "Общество с ограниченной ответственностью „Ромашка“",
        "ПАО Ромашка",
    ],
)
def test_names_are_compared_without_case_quotes_and_legal_form(name: str) -> None:
    assert company.normalise_name(name) == "ромашка"


def test_other_names_and_cities_stay_apart() -> None:
    assert company.normalise_name("Acme Co., Ltd.") == company.normalise_name("ACME")
    assert company.normalise_name("Ромашка Плюс") != company.normalise_name("Ромашка")
    assert company.normalise_name("ООО") == "ооо"  # nothing but a legal form keeps it
    assert company.normalise_city("г. Москва") == company.normalise_city("москва")
    assert company.name_key("Ромашка", "Москва") != company.name_key("Ромашка", "Тверь")
    assert company.normalise_name("Ёлка") == company.normalise_name("елка")


# --- registering ------------------------------------------------------------------------


def test_registering_claims_the_tax_id_and_the_name_in_the_city() -> None:
    command = company.RegisterCompany(
        "acme", {"name": "ООО Acme", "tax_id": INN_A, "city": "Тверь"}
    )
    event, claims = company.add_to_directory(
        command, free_tax(INN_A), free_name("Acme", "Тверь"), meta()
    )
    assert isinstance(event, company.CompanyAddedToDirectory)
    assert (event.company_id, event.name, event.tax_id, event.name_key) == (
        "acme",
        "ООО Acme",
        INN_A,
        "acme|тверь",
    )
    assert [(kind, type(e).__name__) for kind, e in claims] == [
        ("tax", "CompanyTaxIdClaimed"),
        ("name", "CompanyNameClaimed"),
    ]
    after = state([event])
    assert after.tax_ids == {INN_A}
    assert after.name_keys == {"acme|тверь"}
    assert after.in_directory
    assert not after.had_leads


def test_the_same_tax_id_is_a_likely_duplicate_whatever_the_override() -> None:
    held = company.TaxIdClaim(INN_A, "first", 1)
    for override in (False, True):
        command = company.RegisterCompany("second", {"name": "Other", "tax_id": INN_A}, override)
        with pytest.raises(RuleViolation) as refused:
            company.add_to_directory(command, held, free_name("Other", None), meta())
        assert refused.value.rule == "likely_duplicate"
        assert refused.value.details == {"existing_company_id": "first", "matched": "tax_id"}


def test_the_same_name_in_the_same_city_is_a_likely_duplicate_unless_overridden() -> None:
    key = company.name_key("Ромашка", "Москва")
    held = company.NameClaim(key, ("first",), 1)
    card = {"name": "ООО «Ромашка»", "city": "г. Москва"}
    with pytest.raises(RuleViolation) as refused:
        company.add_to_directory(company.RegisterCompany("second", card), None, held, meta())
    assert refused.value.details["existing_company_id"] == "first"
    assert refused.value.details["matched"] == "name_in_the_same_city"
    event, claims = company.add_to_directory(
        company.RegisterCompany("second", card, different_company=True), None, held, meta()
    )
    assert event.different_company
    assert [type(e).__name__ for _, e in claims] == ["CompanyNameClaimed"]
    both = company.fold_name_claim(key, [*_claimed(key, "first"), claims[0][1]])
    assert both.holders == ("first", "second")


def _claimed(key: str, holder: str) -> list[DomainEvent]:
    return [
        company.CompanyNameClaimed(
            **meta().event_fields(), name_key=key, company_id=holder, merged_from=None
        )
    ]


# --- changing the card ------------------------------------------------------------------


def test_a_company_first_seen_on_a_lead_has_a_name_and_claims_on_its_first_card() -> None:
    seen = state([company.register("acme", "Acme", LEAD, meta())])
    assert (seen.card.name, seen.in_directory, seen.had_leads) == ("Acme", False, True)
    assert seen.tax_ids == frozenset()
    change = company.ChangeCompanyCard({"tax_id": INN_A, "city": "Тверь"})
    event, claims = company.change_card(
        seen, change, free_tax(INN_A), free_name("Acme", "Тверь"), meta()
    )
    assert event.changed == ("tax_id", "city")
    assert [type(e).__name__ for _, e in claims] == ["CompanyTaxIdClaimed", "CompanyNameClaimed"]
    after = company.evolve(seen, event)
    assert after.in_directory
    assert after.tax_ids == {INN_A}


def test_a_new_tax_id_and_name_are_claimed_and_the_old_ones_released() -> None:
    events = registered(tax_id=INN_A, city="Тверь")
    before = state(events)
    change = company.ChangeCompanyCard({"tax_id": INN_B, "name": "Acme Two"})
    event, claims = company.change_card(
        before, change, free_tax(INN_B), free_name("Acme Two", "Тверь"), meta()
    )
    assert [
        (type(e).__name__, getattr(e, "tax_id", getattr(e, "name_key", None))) for _, e in claims
    ] == [
        ("CompanyTaxIdClaimed", INN_B),
        ("CompanyNameClaimed", "acme two|тверь"),
        ("CompanyTaxIdReleased", INN_A),
        ("CompanyNameReleased", "acme|тверь"),
    ]
    after = company.evolve(before, event)
    assert after.tax_ids == {INN_B}
    assert after.name_keys == {"acme two|тверь"}


def test_a_put_replaces_the_card_and_no_change_is_refused() -> None:
    before = state(registered(tax_id=INN_A, city="Тверь", notes="old"))
    put = company.ChangeCompanyCard({"name": "Acme", "city": "Тверь"}, replace=True)
    event, claims = company.change_card(before, put, None, free_name("Acme", "Тверь"), meta())
    assert (event.tax_id, event.notes) == (None, None)
    assert [type(e).__name__ for _, e in claims] == ["CompanyTaxIdReleased"]
    same = company.ChangeCompanyCard({"notes": "old"})
    with pytest.raises(RuleViolation) as refused:
        company.change_card(before, same, None, None, meta())
    assert refused.value.rule == "company_unchanged"
    with pytest.raises(InvalidValue):
        company.change_card(before, company.ChangeCompanyCard({}), None, None, meta())


def test_changing_to_another_company_s_tax_id_is_refused() -> None:
    before = state(registered())
    change = company.ChangeCompanyCard({"tax_id": INN_A})
    with pytest.raises(RuleViolation) as refused:
        company.change_card(
            before, change, company.TaxIdClaim(INN_A, "other", 1), free_name("Acme", None), meta()
        )
    assert refused.value.details["existing_company_id"] == "other"


# --- merging ----------------------------------------------------------------------------


def test_a_merge_moves_the_claims_and_leaves_the_duplicate_read_only() -> None:
    duplicate = state(registered("dup", name="Acme Ltd", tax_id=INN_A, city="Тверь"))
    survivor = state(registered("acme", name="Acme", tax_id=INN_B, city="Москва"))
    merged, absorbed = company.merge(duplicate, survivor, company.MergeCompany("acme"), meta())
    assert (merged.company_id, merged.into, merged.into_name) == ("dup", "acme", "Acme")
    assert (absorbed.company_id, absorbed.merged_company_id) == ("acme", "dup")
    assert absorbed.tax_ids == (INN_A,)
    moved = company.moved_claims(duplicate, "acme", meta())
    assert [(kind, key) for kind, key, _ in moved] == [("tax", INN_A), ("name", "acme|тверь")]
    claim = company.fold_tax_claim(
        INN_A,
        [
            company.CompanyTaxIdClaimed(
                **meta().event_fields(), tax_id=INN_A, company_id="dup", merged_from=None
            ),
            moved[0][2],
        ],
    )
    assert claim.holder == "acme"
    after = company.evolve(duplicate, merged)
    assert after.merged_into == "acme"
    assert after.tax_ids == frozenset()
    grown = company.evolve(survivor, absorbed)
    assert grown.tax_ids == {INN_A, INN_B}
    assert grown.absorbed == ("dup",)
    for refused_command in (
        lambda: company.change_card(
            after, company.ChangeCompanyCard({"notes": "x"}), None, None, meta()
        ),
        lambda: company.merge(after, survivor, company.MergeCompany("acme"), meta()),
    ):
        with pytest.raises(RuleViolation) as refused:
            refused_command()
        assert refused.value.rule == "company_merged"
        assert refused.value.details == {"merged_into": "acme"}


def test_a_merge_needs_another_live_company() -> None:
    acme = state(registered("acme"))
    with pytest.raises(InvalidValue) as itself:
        company.merge(acme, acme, company.MergeCompany("acme"), meta())
    assert itself.value.field == "into"
    with pytest.raises(InvalidValue) as unknown:
        company.merge(acme, None, company.MergeCompany("nobody"), meta())
    assert unknown.value.field == "into"
    gone = state(registered("gone"))
    gone = company.evolve(
        gone,
        company.CompanyMerged(**meta().event_fields(), company_id="gone", into="x", into_name="X"),
    )
    with pytest.raises(RuleViolation) as merged:
        company.merge(acme, gone, company.MergeCompany("gone"), meta())
    assert merged.value.details == {"merged_into": "x"}


# --- leads naming a company -------------------------------------------------------------


def test_the_first_lead_of_a_directory_company_is_recorded_later_ones_are_not() -> None:
    fresh = state(registered())
    first = company.lead_named(fresh, LEAD, meta())
    assert first is not None
    assert first.lead_id == LEAD
    after = company.evolve(fresh, first)
    assert after.had_leads
    assert company.lead_named(after, uuid4(), meta()) is None


def test_a_survivor_has_had_leads_when_a_company_it_absorbed_had() -> None:
    seen = state([company.register("dup", "Acme", LEAD, meta())])
    survivor = state(registered("acme"))
    _, absorbed = company.merge(seen, survivor, company.MergeCompany("acme"), meta())
    assert company.lead_named(company.evolve(survivor, absorbed), uuid4(), meta()) is None
