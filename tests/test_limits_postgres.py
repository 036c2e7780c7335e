"""Limits that span aggregates, under concurrency on the real PostgreSQL, over HTTP.

- the yearly revenue cap of an organisation on the simplified-tax regime: many invoices
  from many deals racing for the organisation's revenue ledger never take it past the cap,
  and the ledger books exactly the invoices that were accepted;
- a manager's monthly cap of new clients: racing assignments give the manager exactly
  the cap, the rest wait for a head's approval;
- one invoice number on one deal: of two racing invoices, exactly one is issued.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from aggregates import deal, lead, limits
from commands.context import CommandContext
from commands.deals import convert_lead, handle_deal_command, load_deal
from commands.leads import create_lead, handle_lead_command
from leadledger.wiring import Platform
from tests.conftest import PlatformFactory, bearer
from tests.revenue_race import accepted_within_the_cap, api_of, capped_rules, pg_platform_with
from tests.test_concurrency_postgres import race

CAP = Decimal("1000.00")
INVOICE_AMOUNT = Decimal("37.00")
RACING_INVOICES = 50
CLIENT_CAP = 5
RACING_ASSIGNMENTS = 20
YEAR = 2026
"""The year of the fake clock's today, the invoices' default issue date."""

RULES = capped_rules(
    CAP,
    f"""\
[escalation]
grace_hours = 24
default_head = "head.of.sales"
heads = {{ }}

[client_assignments]
monthly_new_client_cap = {CLIENT_CAP}
approvers = ["head.of.sales"]

""",
)


@pytest.fixture
def pg_platform(make_platform: PlatformFactory, pg_schema_url: str, tmp_path: Path) -> Platform:
    return pg_platform_with(make_platform, pg_schema_url, tmp_path, RULES)


@pytest.fixture
def api(pg_platform: Platform) -> Iterator[TestClient]:
    yield from api_of(pg_platform)


def _context(platform: Platform, actor: str = "anna.sales") -> CommandContext:
    return CommandContext.new(actor=actor, clock=platform.clock)


def _deal_with_contract(platform: Platform, n: int) -> UUID:
    """A lead assessed, qualified and converted into a transport deal with a proposal and
    a contract: ready for invoices."""
    store, funnels, rules = platform.store, platform.funnels, platform.rules
    lead_id = uuid4()
    create_lead(
        store,
        funnels,
        lead.CreateLead(
            lead_id=lead_id,
            funnel="out_of_court",
            title=f"Transport of equipment {n}",
            company_name=f"Client {n} LLC",
            source="website",
            manager="boris",
        ),
        _context(platform),
    )
    for command in (
        lead.RecordLeadAssessment("ivan.expert", "feasible", Decimal("2")),
        lead.QualifyLead(True),
    ):
        handle_lead_command(store, funnels, lead_id, command, _context(platform))
    deal_id = convert_lead(
        store, funnels, rules, lead_id, "transport", _context(platform)
    ).stream_id
    for deal_command in (
        deal.RecordProposal((deal.ServiceLine("transport", Decimal("100.00")),)),
        deal.RecordContract(f"C-{n}", date(2026, 1, 6)),
    ):
        handle_deal_command(store, rules, deal_id, deal_command, _context(platform))
    return deal_id


E = TypeVar("E")


def _events(platform: Platform, stream_id: UUID, kind: type[E]) -> list[E]:
    """A stream's events, every one of them of the given kind."""
    events = [r.event for r in platform.store.load(stream_id)]
    typed: list[E] = [e for e in events if isinstance(e, kind)]
    assert len(typed) == len(events), events
    return typed


def _assert_log_has_no_gaps(platform: Platform) -> None:
    positions = [row[0] for row in platform.store.read_rows(0, 1_000_000)]
    assert positions == list(range(1, len(positions) + 1))
    assert positions[-1] == platform.store.last_position()


@pytest.mark.postgres
def test_racing_invoices_never_take_the_organisation_past_its_revenue_cap(
    api: TestClient, pg_platform: Platform
) -> None:
    deal_ids = [_deal_with_contract(pg_platform, n) for n in range(RACING_INVOICES)]

    responses = race(
        lambda i: api.post(
            f"/deals/{deal_ids[i]}/invoice",
            json={
                "number": f"INV-{i}",
                "amount": str(INVOICE_AMOUNT),
                "organisation": "simplified",
            },
            headers=bearer(f"accountant{i}"),
        ),
        threads=RACING_INVOICES,
    )

    accepted, bookings = accepted_within_the_cap(responses, pg_platform, CAP, INVOICE_AMOUNT, YEAR)
    refused = [i for i, r in enumerate(responses) if r.status_code == 409]
    for i in refused:
        body = responses[i].json()
        assert body["code"] == "rule_violation", body
        assert body["rule"] == "simplified_tax_revenue_cap", body
        assert body["organisation"] == "simplified"
        assert body["year"] == YEAR
        assert Decimal(body["cap"]) == CAP
        assert Decimal(body["requested"]) == INVOICE_AMOUNT
        current_total = Decimal(body["current_total"])
        assert current_total <= CAP
        assert current_total + INVOICE_AMOUNT > CAP, "refused although it fitted"
    assert len(accepted) == 27
    assert all(code in (200, 409) for code in (r.status_code for r in responses))

    # The ledger books exactly the accepted invoices (each on a higher running total).
    ledger_id = limits.revenue_stream_id("simplified", YEAR)
    ledger = pg_platform.store.load(ledger_id)
    bookings = _events(pg_platform, ledger_id, limits.RevenueBooked)
    booked = {(b.deal_id, b.invoice_number) for b in bookings}
    assert booked == {(deal_ids[i], f"INV-{i}") for i in accepted}

    # Each deal has its invoice exactly when its request was accepted, appended in the same
    # write as its booking.
    booking_positions = {b.deal_id: r.position for r, b in zip(ledger, bookings, strict=True)}
    for i, deal_id in enumerate(deal_ids):
        state, records = load_deal(pg_platform.store, deal_id)
        if i in accepted:
            assert [inv.number for inv in state.invoices] == [f"INV-{i}"]
            assert responses[i].json()["position"] == records[-1].position
            assert booking_positions[deal_id] == records[-1].position + 1
        else:
            assert state.invoices == ()
    _assert_log_has_no_gaps(pg_platform)


@pytest.mark.postgres
def test_racing_assignments_give_a_manager_exactly_the_monthly_cap_of_new_clients(
    api: TestClient, pg_platform: Platform
) -> None:
    responses = race(
        lambda i: api.post(
            "/client-assignments",
            json={"company_id": f"CLIENT-{i}", "direction": "transport", "manager": "boris"},
            headers=bearer(f"sales{i}"),
        ),
        threads=RACING_ASSIGNMENTS,
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * CLIENT_CAP + [202] * (RACING_ASSIGNMENTS - CLIENT_CAP), [
        r.text for r in responses
    ]
    assigned = [r.json() for r in responses if r.status_code == 200]
    pending = [r.json() for r in responses if r.status_code == 202]
    assert {b["status"] for b in assigned} == {"assigned"}
    assert {b["manager"] for b in assigned} == {"boris"}
    assert {b["status"] for b in pending} == {"pending_approval"}

    month_stream = limits.manager_month_stream_id("boris", "2026-01")
    month = _events(pg_platform, month_stream, limits.ManagerClientTaken)
    assert [e.count for e in month] == [1, 2, 3, 4, 5]
    assigned_ids = {UUID(b["assignment_id"]) for b in assigned}
    assert {e.assignment_id for e in month} == assigned_ids

    # Over the cap only the head decides; approved, the client counts as the sixth.
    waiting = pending[0]["assignment_id"]
    refused = api.post(
        f"/client-assignments/{waiting}/decision",
        json={"approve": True},
        headers=bearer("anna.sales", "manager"),
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["rule"] == "role_not_allowed"
    # a head, but not the one the rules name for this decision, who does not see it
    # either (boris is no one of their department): it does not exist for them
    refused = api.post(
        f"/client-assignments/{waiting}/decision",
        json={"approve": True},
        headers=bearer("other.head", "head", "sales"),
    )
    assert refused.status_code == 404, refused.text
    assert refused.json()["detail"] == f"client assignment {waiting} not found"
    approved = api.post(
        f"/client-assignments/{waiting}/decision",
        json={"approve": True, "comment": "a key account"},
        headers=bearer("head.of.sales", "head", "sales"),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "assigned"
    assert approved.json()["manager"] == "boris"

    month = _events(pg_platform, month_stream, limits.ManagerClientTaken)
    assert [e.count for e in month] == [1, 2, 3, 4, 5, 6]
    sixth = month[-1]
    assert sixth.assignment_id == UUID(waiting)
    assert sixth.approved_by == "head.of.sales"
    detail = api.get(f"/client-assignments/{waiting}").json()
    assert detail["status"] == "assigned"
    assert detail["manager"] == "boris"
    _assert_log_has_no_gaps(pg_platform)


@pytest.mark.postgres
@pytest.mark.parametrize("organisation", ["simplified", "main"])
def test_two_invoices_with_one_number_on_one_deal_issue_it_once(
    api: TestClient, pg_platform: Platform, organisation: str
) -> None:
    amounts = ["10.00", "20.00"]
    deal_ids = [_deal_with_contract(pg_platform, n) for n in range(5)]
    for deal_id in deal_ids:

        def invoice(i: int, deal_id: UUID = deal_id) -> httpx.Response:
            response: httpx.Response = api.post(
                f"/deals/{deal_id}/invoice",
                json={"number": "INV-1", "amount": amounts[i], "organisation": organisation},
                headers=bearer(f"accountant{i}"),
            )
            return response

        responses = race(invoice, threads=2)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 409], [r.text for r in responses]
        [winner] = [i for i, r in enumerate(responses) if r.status_code == 200]
        loser = responses[1 - winner].json()
        assert loser["code"] == "version_conflict" or (
            loser["code"] == "rule_violation" and loser["rule"] == "invoice_number_taken"
        ), loser
        state, _ = load_deal(pg_platform.store, deal_id)
        assert [(inv.number, str(inv.amount)) for inv in state.invoices] == [
            ("INV-1", amounts[winner])
        ]

    bookings = _events(
        pg_platform, limits.revenue_stream_id("simplified", YEAR), limits.RevenueBooked
    )
    if organisation == "simplified":
        assert sorted(b.deal_id for b in bookings) == sorted(deal_ids)
        assert bookings[-1].total == sum(b.amount for b in bookings)
    else:
        assert bookings == [], "an organisation on the general regime books no revenue"
    _assert_log_has_no_gaps(pg_platform)
