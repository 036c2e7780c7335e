"""The simplified-tax cap holds for every invoice of the organisation, in one ledger
(seed 002: «блокировать выставление новых счетов в случае превышения лимита по
организации»).

Deal invoices (``RevenueBooked``) and project invoices naming the organisation
(``ProjectRevenueBooked``) are booked on one stream per organisation and year, in the
same atomic write as the invoice; a deal's invoice carried into its project's billing is
not booked again. An invoice is booked to the year of its own day (a backdated one
counts against its own year's cap). ``GET /reports/revenue-cap`` shows each capped
organisation's revenue against its cap per year.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import deal, limits
from aggregates.errors import RuleViolation
from aggregates.rules import Organisation
from commands.deals import convert_lead, deal_id_for_lead, handle_deal_command
from event_store import EventStore
from leadledger.wiring import Platform
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild
from projections.revenue import RevenueLedgerProjection
from tests.conftest import PlatformFactory, bearer
from tests.deal_helpers import SELLER, new_deal, ok
from tests.factories import LeadDriver, ManualClock
from tests.gwt_deals import FUNNELS, RULES, meta
from tests.revenue_race import accepted_within_the_cap, api_of, capped_rules, pg_platform_with
from tests.test_concurrency_postgres import race
from tests.test_organisation_services import project_of

SIMPLIFIED = RULES.organisations["simplified"]
CAP = Decimal("265800000.00")
PROJECT_ID = UUID("00000000-0000-4000-8000-0000000000e1")


# --- the ledger's rule ------------------------------------------------------------------


def test_a_project_invoice_is_held_to_the_same_cap_with_the_same_figures() -> None:
    ledger = limits.RevenueLedger(version=2, total=CAP - Decimal("100.00"))
    booked = limits.book_project_revenue(
        ledger, SIMPLIFIED, 2026, PROJECT_ID, "P-1", Decimal("100.00"), meta()
    )
    assert (booked.total, booked.cap, booked.project_id) == (CAP, CAP, PROJECT_ID)
    with pytest.raises(RuleViolation) as caught:
        limits.book_project_revenue(
            ledger, SIMPLIFIED, 2026, PROJECT_ID, "P-1", Decimal("100.01"), meta()
        )
    assert caught.value.rule == "simplified_tax_revenue_cap"
    assert caught.value.details == {
        "cap": str(CAP),
        "current_total": str(CAP - Decimal("100.00")),
        "requested": "100.01",
        "year": 2026,
        "organisation": "simplified",
    }


def test_the_ledger_folds_deal_and_project_bookings_alike() -> None:
    first = limits.book_revenue(
        limits.RevenueLedger(0, Decimal("0.00")),
        SIMPLIFIED,
        2026,
        PROJECT_ID,
        "INV-1",
        Decimal("10.00"),
        meta(),
    )
    second = limits.book_project_revenue(
        limits.revenue_ledger([first]), SIMPLIFIED, 2026, PROJECT_ID, "P-1", Decimal("5"), meta()
    )
    assert limits.revenue_ledger([first, second]) == limits.RevenueLedger(2, Decimal("15.00"))


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.integers(1, 400), max_size=30), cap=st.integers(1, 2000))
def test_booked_totals_never_pass_the_cap_and_sum_the_accepted(
    amounts: list[int], cap: int
) -> None:
    organisation = Organisation("o", "O", "simplified", Decimal(cap))
    events: list[Any] = []
    accepted: list[Decimal] = []
    for n, amount in enumerate(amounts):
        ledger = limits.revenue_ledger(events)
        try:
            if n % 2:
                event: Any = limits.book_project_revenue(
                    ledger, organisation, 2026, PROJECT_ID, f"P-{n}", Decimal(amount), meta()
                )
            else:
                event = limits.book_revenue(
                    ledger, organisation, 2026, PROJECT_ID, f"I-{n}", Decimal(amount), meta()
                )
        except RuleViolation:
            assert ledger.total + amount > cap
            continue
        events.append(event)
        accepted.append(Decimal(amount))
    total = limits.revenue_ledger(events).total
    assert total == sum(accepted, Decimal(0))
    assert total <= cap


# --- through the handlers and HTTP ------------------------------------------------------


def _ledger(store: EventStore, year: int = 2026) -> list[Any]:
    return [r.event for r in store.load(limits.revenue_stream_id("simplified", year))]


def _won_deal(client: TestClient, amount: str = "100.00") -> tuple[str, UUID, int]:
    """A won deal of the simplified-tax organisation (an invoice, booked); its project."""
    deal_id = new_deal(client, funnel="upsell")
    proposal = {"services": [{"name": "survey", "price": amount}], "organisation": "simplified"}
    ok(client.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    contract = {"number": "C-1", "signed_on": "2026-01-05"}
    ok(client.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
    invoice = {"number": "INV-1", "amount": amount, "organisation": "simplified"}
    ok(client.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER))
    closed = ok(client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER))
    return deal_id, project_of(client, deal_id), closed["position"]


def test_a_carried_deal_invoice_is_booked_once_and_a_project_invoice_beside_it(
    platform: Platform, client: TestClient
) -> None:
    deal_id, project_id, _ = _won_deal(client)
    assert [(type(b).__name__, b.invoice_number) for b in _ledger(platform.store)] == [
        ("RevenueBooked", "INV-1")
    ]
    body = {"number": "P-1", "amount": "50.00", "due_date": "2026-02-01"}
    issued = ok(
        client.post(f"/projects/{project_id}/invoices", json=body | {"organisation": "simplified"}),
        201,
    )
    ok(client.post(f"/projects/{project_id}/invoices", json=body | {"number": "P-2"}), 201)
    ok(
        client.post(
            f"/projects/{project_id}/invoices",
            json=body | {"number": "P-3", "organisation": "main"},
        ),
        201,
    )
    ledger = _ledger(platform.store)
    assert [(type(b).__name__, b.invoice_number, b.total) for b in ledger] == [
        ("RevenueBooked", "INV-1", Decimal("100.00")),
        ("ProjectRevenueBooked", "P-1", Decimal("150.00")),
    ]
    assert ledger[1].project_id == project_id
    # the booking is in the invoice's own atomic write: the very next position
    records = platform.store.load(limits.revenue_stream_id("simplified", 2026))
    assert records[1].position == issued["position"] + 1
    card = ok(client.get(f"/projects/{project_id}?min_position={issued['position']}"))
    organisations = {i["number"]: i["organisation"] for i in card["payments"]["invoices"]}
    assert organisations == {"INV-1": "simplified", "P-1": "simplified", "P-2": None, "P-3": "main"}
    assert deal_id


def test_a_project_invoice_over_the_cap_is_refused_and_writes_nothing(
    platform: Platform, client: TestClient
) -> None:
    _, project_id, _ = _won_deal(client, "265799990.00")
    before = platform.store.last_position()
    body = {"number": "P-1", "amount": "10.01", "due_date": "2026-02-01"}
    refused = client.post(
        f"/projects/{project_id}/invoices", json=body | {"organisation": "simplified"}
    )
    assert refused.status_code == 409, refused.text
    assert (refused.json()["rule"], refused.json()["current_total"]) == (
        "simplified_tax_revenue_cap",
        "265799990.00",
    )
    assert platform.store.last_position() == before
    ok(
        client.post(
            f"/projects/{project_id}/invoices",
            json=body | {"amount": "10.00", "organisation": "simplified"},
        ),
        201,
    )


def test_an_invoice_dated_into_an_earlier_year_is_booked_to_its_own_year(
    store: EventStore,
) -> None:
    """A deal opened in December, invoiced in January for January and then, backdated,
    for December: each booking goes to the ledger of its invoice's year, and the earlier
    year's cap holds for the backdated one."""
    clock = ManualClock(datetime(2025, 12, 20, 10, 0, tzinfo=UTC))
    driver = LeadDriver(store, clock=clock)
    lead_id = driver.create().stream_id
    driver.assess(lead_id)
    driver.qualify(lead_id)
    convert_lead(store, FUNNELS, RULES, lead_id, "transport", driver.context())
    deal_id = deal_id_for_lead(lead_id)
    for command in (
        deal.RecordProposal((deal.ServiceLine("survey", Decimal(1)),)),
        deal.RecordContract("C-1", date(2025, 12, 20)),
    ):
        handle_deal_command(store, RULES, deal_id, command, driver.context())
    clock.set(datetime(2026, 1, 10, 10, 0, tzinfo=UTC))
    for number, amount, day in (
        ("INV-2", "70.00", None),
        ("INV-1", "30.00", date(2025, 12, 28)),
    ):
        invoice = deal.IssueInvoice(number, Decimal(amount), "simplified", issued_on=day)
        handle_deal_command(store, RULES, deal_id, invoice, driver.context())
    assert [(b.invoice_number, b.year, b.total) for b in _ledger(store, 2026)] == [
        ("INV-2", 2026, Decimal("70.00"))
    ]
    assert [(b.invoice_number, b.year, b.total) for b in _ledger(store, 2025)] == [
        ("INV-1", 2025, Decimal("30.00"))
    ]
    # the earlier year's own cap: 30.00 booked, so the rest of it fits and no more
    left = CAP - Decimal("30.00")
    over = deal.IssueInvoice(
        "INV-0", left + Decimal("0.01"), "simplified", issued_on=date(2025, 12, 29)
    )
    with pytest.raises(RuleViolation) as caught:
        handle_deal_command(store, RULES, deal_id, over, driver.context())
    assert (caught.value.details["year"], caught.value.details["current_total"]) == (2025, "30.00")


def test_the_revenue_cap_report_shows_each_capped_organisation_per_year(
    platform: Platform, client: TestClient
) -> None:
    _, project_id, _ = _won_deal(client, "1000.00")
    body = {"number": "P-1", "amount": "329000.00", "due_date": "2026-02-01"}
    issued = ok(
        client.post(f"/projects/{project_id}/invoices", json=body | {"organisation": "simplified"}),
        201,
    )
    analyst = bearer("alice.analyst", "analyst")
    report = ok(
        client.get(
            f"/reports/revenue-cap?year=2026&min_position={issued['position']}", headers=analyst
        )
    )
    assert report["year"] == 2026
    assert report["organisations"] == [
        {
            "organisation": "simplified",
            "name": "LeadLedger Expert IE",
            "regime": "simplified",
            "cap": "265800000.00",
            "booked": "330000.00",
            "remaining": "265470000.00",
            "share": 0.0012,
            "invoices": 2,
            "deal_invoices": 1,
            "project_invoices": 1,
        }
    ]
    empty = ok(client.get("/reports/revenue-cap?year=2025", headers=analyst))
    assert empty["organisations"][0]["booked"] == "0.00"
    assert empty["organisations"][0]["invoices"] == 0
    default = ok(client.get("/reports/revenue-cap", headers=analyst))
    assert default["year"] == platform.clock().year
    manager = client.get("/reports/revenue-cap", headers=bearer("mia.manager", "manager"))
    assert manager.status_code == 403
    bad = client.get("/reports/revenue-cap?year=abc", headers=analyst)
    assert bad.status_code == 422


def test_the_ledger_read_model_in_pages_equals_a_rebuild(
    platform: Platform, client: TestClient, tmp_path: Path
) -> None:
    for _ in range(3):
        _, project_id, _ = _won_deal(client)
        body = {"number": "P-1", "amount": "5.00", "due_date": "2026-02-01"}
        ok(
            client.post(
                f"/projects/{project_id}/invoices", json=body | {"organisation": "simplified"}
            ),
            201,
        )
    store = platform.store

    def table(db: ReadModelDatabase) -> list[Any]:
        cursor = db.cursor()
        try:
            return cursor.execute("SELECT * FROM revenue_ledger ORDER BY ledger_id").fetchall()
        finally:
            cursor.close()

    paged = ReadModelDatabase(tmp_path / "paged.duckdb")
    whole = ReadModelDatabase(tmp_path / "whole.duckdb")
    try:
        for size in (1, 2, 3):
            Projector(store, paged, [RevenueLedgerProjection()], page_size=size).run_once()
        Projector(store, paged, [RevenueLedgerProjection()], page_size=1).catch_up()
        rebuild(store, whole, [RevenueLedgerProjection()])
        assert table(paged) == table(whole)
        [row] = table(whole)
        assert row[1:6] == ("simplified", 2026, Decimal("315.00"), CAP, 6)
    finally:
        paged.close()
        whole.close()


# --- racing on PostgreSQL ---------------------------------------------------------------

PG_CAP = Decimal("1000.00")
PG_AMOUNT = Decimal("37.00")
RACERS = 40


@pytest.fixture
def pg_platform(make_platform: PlatformFactory, pg_schema_url: str, tmp_path: Path) -> Platform:
    return pg_platform_with(make_platform, pg_schema_url, tmp_path, capped_rules(PG_CAP))


@pytest.fixture
def pg_api(pg_platform: Platform) -> Iterator[TestClient]:
    yield from api_of(pg_platform)


@pytest.mark.postgres
def test_racing_deal_and_project_invoices_never_take_the_organisation_past_its_cap(
    pg_api: TestClient, pg_platform: Platform
) -> None:
    """Half the racers invoice deals, half invoice projects, all on one organisation's
    ledger: the ledger books exactly the accepted ones and never passes the cap."""
    deals = []
    for n in range(RACERS // 2):
        deal_id = new_deal(pg_api, funnel="upsell")
        proposal = {"services": [{"name": "survey", "price": "1.00"}]}
        ok(pg_api.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
        contract = {"number": f"C-{n}", "signed_on": "2026-01-05"}
        ok(pg_api.post(f"/deals/{deal_id}/contract", json=contract, headers=SELLER))
        deals.append(deal_id)
    projects = [
        ok(pg_api.post("/projects", json={"title": f"P{n}", "company_name": "X"}), 201)[
            "project_id"
        ]
        for n in range(RACERS // 2)
    ]

    def send(i: int) -> Any:
        if i % 2:
            body = {"number": f"INV-{i}", "amount": str(PG_AMOUNT), "organisation": "simplified"}
            return pg_api.post(f"/deals/{deals[i // 2]}/invoice", json=body)
        body = {
            "number": f"P-{i}",
            "amount": str(PG_AMOUNT),
            "due_date": "2026-02-01",
            "organisation": "simplified",
        }
        return pg_api.post(f"/projects/{projects[i // 2]}/invoices", json=body)

    responses = race(send, threads=RACERS)
    accepted, bookings = accepted_within_the_cap(responses, pg_platform, PG_CAP, PG_AMOUNT, 2026)
    assert len(accepted) == 27
    booked = sorted(getattr(b, "invoice_number", "") for b in bookings)
    assert booked == sorted(f"INV-{i}" if i % 2 else f"P-{i}" for i in accepted)
