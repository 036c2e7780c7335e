"""Won deals imported with their money (issue 18 §2): a deal won through the commands
(proposal, contract, an invoice of a simplified-tax organisation, won), exported in the
import format and imported into a fresh platform on PostgreSQL, is the same deal in the
deal list and card, the same invoice in the sales figures and the same booking on the
revenue ledger; bad money rows get their row, column and reason in the dry run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import billing, deal
from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, RuleViolation
from leadledger.imports.base import record_id
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import Platform, event_codec, load_rules
from tests.conftest import FakeClock, PlatformFactory
from tests.test_import_leads_deals_export import _at, _lead, _step, client, export, ok, run
from tests.test_imports import run as run_with

LIST_FIELDS = (
    "deal_id",
    "funnel",
    "stage",
    "status",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "amount",
    "lead_id",
    "previous_deal_id",
    "proposal_total",
    "contract_number",
    "invoiced_total",
    "invoices",
    "invoices_pending",
    "close_reason",
    "created_at",
    "stage_entered_at",
    "closed_at",
)
CARD_FIELDS = ("proposal", "contract", "invoices", "status", "amount", "closed_at")


@pytest.fixture
def source(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(source: Platform) -> Iterator[TestClient]:
    with client(source) as c:
        yield c


def win_through_commands(api: TestClient, clock: FakeClock) -> tuple[str, int]:
    """A lead converted to a deal, then proposal, contract, invoice and won; an upsell of
    it. The won deal's id and the last position."""
    lead_id = _lead(api, clock, "2025-04-01T10:00:00", title="Проект", company_id="7705000005")
    assessment = {"expert": "eve.expert", "result": "feasible", "hours": "1.5"}
    _step(api, clock, "2025-04-01T10:00:00", f"/leads/{lead_id}/assessment", assessment)
    _step(api, clock, "2025-04-01T10:00:00", f"/leads/{lead_id}/qualification", {"quality": True})
    clock.now = _at("2025-04-01T11:00:00")
    deal_id: str = ok(api.post(f"/leads/{lead_id}/deal", json={"funnel": "turnkey"}), 201)[
        "deal_id"
    ]
    services = {"services": [{"name": "design", "price": "250000.00"}]}
    _step(api, clock, "2025-04-03T09:00:00", f"/deals/{deal_id}/proposal", services)
    contract = {"number": "K-17", "signed_on": "2025-04-05"}
    _step(api, clock, "2025-04-05T09:00:00", f"/deals/{deal_id}/contract", contract)
    invoice = {
        "number": "S-17",
        "amount": "200000.00",
        "organisation": "simplified",
        "issued_on": "2025-04-07",
    }
    _step(api, clock, "2025-04-07T09:00:00", f"/deals/{deal_id}/invoice", invoice)
    _step(api, clock, "2025-04-10T12:00:00", f"/deals/{deal_id}/close", {"outcome": "won"})
    clock.now = _at("2025-05-01")
    upsell = {"previous_deal_id": deal_id, "title": "Ещё", "manager": "boris", "amount": "10"}
    position = int(ok(api.post("/deals", json=upsell), 201)["position"])
    return deal_id, position


def figures(api: TestClient, deal_id: str) -> dict[str, Any]:
    """What the deal list, the card and the sales and revenue reports say of the deal."""
    position = api.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    wait = {"min_position": position}
    items = ok(api.get("/deals", params={**wait, "limit": 500}))["items"]
    row = next(i for i in items if i["deal_id"] == deal_id)
    card = ok(api.get(f"/deals/{deal_id}"))
    april = {**wait, "from": "2025-04-01", "to": "2025-04-30"}
    return {
        "list": {f: row[f] for f in LIST_FIELDS},
        "card": {f: card[f] for f in CARD_FIELDS},
        "invoices": ok(api.get("/reports/invoices", params=april)),
        "proposals": ok(api.get("/reports/proposals", params=april)),
        "revenue": ok(api.get("/reports/revenue-cap", params={**wait, "year": 2025})),
        "pipeline": ok(api.get("/reports/deal-pipeline", params=wait)),
    }


def test_a_won_deal_exported_imports_back_won_with_its_money_as_the_commands_won_it(
    source: Platform,
    api: TestClient,
    make_platform: PlatformFactory,
    clock: FakeClock,
    tmp_path: Path,
    pg_schema_url: str,
) -> None:
    deal_id, _ = win_through_commands(api, clock)
    clock.now = _at("2026-01-05T09:00:00")
    before = figures(api, deal_id)
    assert before["list"]["status"] == "won"
    booked = {o["organisation"]: o for o in before["revenue"]["organisations"]}
    assert Decimal(str(booked["simplified"]["booked"])) == Decimal("200000")
    leads_file, deals_file = export(api, "leads", tmp_path), export(api, "deals", tmp_path)

    fresh = make_platform(pg_schema_url, process_managers=False)
    leads = run(fresh, clock, leads_file, "leads")
    assert (leads.status, leads.refused) == ("imported", 0), leads.errors
    deals = run(fresh, clock, deals_file, "deals")
    assert (deals.status, deals.imported, deals.refused) == ("imported", 2, 0), deals.errors
    with client(fresh) as there:
        after = figures(there, deal_id)
    assert after == before
    # one event for the deal, and its invoice booked on the ledger beside it
    event = fresh.store.load(UUID(deal_id))[0].event
    assert isinstance(event, deal.DealImported)
    assert (event.invoice_number, event.invoice_amount) == ("S-17", Decimal("200000.00"))
    again = run(source, clock, deals_file, "deals")
    assert (again.status, again.imported, again.events) == ("already_imported", 0, 0)


HEADER = (
    "external_id,title,company_name,source,manager,funnel,status,created_at,closed_at,"
    "service,proposal_amount,proposal_at,contract_number,contract_signed_on,invoice_number,"
    "invoiced,invoiced_on,organisation,paid,paid_on,previous_deal,reason\n"
)


def won_row(external_id: str, **cells: str) -> str:
    row = {
        "external_id": external_id,
        "title": "Roof",
        "company_name": "Company 1",
        "source": "website",
        "manager": "boris",
        "funnel": "turnkey",
        "status": "won",
        "created_at": "2025-03-01",
        "closed_at": "2025-03-20",
        "service": "",
        "proposal_amount": "120000",
        "proposal_at": "2025-03-05",
        "contract_number": "K-1",
        "contract_signed_on": "2025-03-10",
        "invoice_number": "S-1",
        "invoiced": "100000",
        "invoiced_on": "2025-03-15",
        "organisation": "main",
        "paid": "60000",
        "paid_on": "2025-03-25",
        "previous_deal": "",
        "reason": "",
    }
    row.update(cells)
    return ",".join(row[name] for name in HEADER.strip().split(",")) + "\n"


def test_bad_won_rows_get_their_row_column_and_reason_and_good_ones_count_as_won(
    source: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    clock.now = _at("2026-01-05T09:00:00")
    rows = [
        won_row("W1", status="won", **dict.fromkeys(MONEY, "")),  # row 2: won, no money
        won_row("W2", paid="100000.01"),  # row 3: paid more than invoiced
        # the commands' day rules: at most 90 days before the deal (or project) was made
        won_row("W3", invoiced_on="2024-11-30"),  # row 4: invoice 91 days before the deal
        won_row("W4", contract_signed_on="2024-11-30"),  # row 5: the same for the contract
        won_row("W5", paid_on="2024-12-19"),  # row 6: 91 days before the project (the win)
        won_row("W6", contract_number="", contract_signed_on=""),  # row 7: no contract
        won_row("W7", closed_at="2025-03-04"),  # row 8: won before its proposal was made
        won_row("W8", organisation="simplified", service="roofing"),  # row 9: not sold
        won_row("W9", organisation="simplified", service="design"),  # row 10: good
        won_row("W10", previous_deal="W404", title="More"),  # row 11: no such deal
        won_row("W11", previous_deal="W9", title="More"),  # row 12: an upsell of row 10
        won_row("W12", invoiced="-5"),  # row 13: the command's rule: a positive amount
    ]
    path = tmp_path / "won.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    report = run_with(source, clock, path, "deals", dry_run=True)
    assert report.status == "dry_run"
    got = {e.row: (e.column, e.code) for e in report.errors}
    assert got == {
        2: ("invoiced", "invalid_value"),
        3: ("paid", "invalid_value"),
        4: ("invoiced_on", "invalid_value"),
        5: ("contract_signed_on", "invalid_value"),
        6: ("paid_on", "invalid_value"),
        7: ("contract_number", "invalid_value"),
        8: ("closed_at", "invalid_value"),
        9: (None, "organisation_service_not_allowed"),
        11: ("previous_deal", "previous_deal_not_found"),
        13: ("invoiced", "invalid_value"),
    }, report.errors
    reasons = {e.row: e.reason for e in report.errors}
    assert "invoice" in reasons[2]
    assert "overpay" in reasons[3]  # the billing's own rule, as a payment on the project

    # backdated as the commands allow: a contract before the proposal, an invoice before the
    # contract, a payment before the invoice, won before the invoice's day
    backdated = [
        won_row("B1", contract_signed_on="2025-03-04", invoiced_on="2025-03-03"),
        won_row("B2", paid_on="2025-03-14"),
        won_row("B3", closed_at="2025-03-14", invoiced_on="2025-03-16"),
        won_row("B4", contract_signed_on="2024-12-02", invoiced_on="2024-12-02"),
    ]
    good = tmp_path / "good.csv"
    good.write_text(HEADER + rows[8] + rows[10] + "".join(backdated), encoding="utf-8")
    done = run(source, clock, good, "deals")
    assert (done.status, done.imported, done.refused) == ("imported", 6, 0), done.errors
    won_id = record_id("deals", "id:W9")
    upsell_id = record_id("deals", "id:W11")
    state = deal.fold([r.event for r in source.store.load(won_id)])
    assert state is not None
    assert state.status is deal.DealStatus.WON
    assert state.amount == Decimal("120000")
    assert [i.number for i in state.invoices] == ["S-1"]
    upsell = deal.fold([r.event for r in source.store.load(upsell_id)])
    assert upsell is not None
    assert upsell.previous_deal_id == won_id
    position = source.store.last_position()
    revenue = ok(api.get("/reports/revenue-cap", params={"min_position": position, "year": 2025}))
    booked = {o["organisation"]: o for o in revenue["organisations"]}["simplified"]
    assert (Decimal(str(booked["booked"])), booked["deal_invoices"]) == (Decimal("100000"), 1)
    rows_out = ok(api.get("/deals", params={"min_position": position}))["items"]
    won = next(r for r in rows_out if r["deal_id"] == str(won_id))
    assert (won["status"], won["invoices"], won["contract_number"]) == ("won", 1, "K-1")


MONEY = (
    "service",
    "proposal_amount",
    "proposal_at",
    "contract_number",
    "contract_signed_on",
    "invoice_number",
    "invoiced",
    "invoiced_on",
    "organisation",
    "paid",
    "paid_on",
)


# --- the decider: an imported won deal is the state the commands leave ------------------

RULES = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)
START = datetime(2024, 1, 10, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COMPARED = (
    "deal_id",
    "funnel",
    "stage",
    "status",
    "title",
    "amount",
    "lead_id",
    "proposal",
    "contract",
    "invoices",
    "closed_at",
    "created_at",
    "stage_entered_at",
)


def _meta(at: datetime) -> CommandMeta:
    return CommandMeta(actor="adam.admin", at=at, command_id=uuid4())


cents = st.integers(min_value=1, max_value=10**11).map(lambda n: Decimal(n) / 100)


@settings(max_examples=60, deadline=None)
@given(
    proposal=cents,
    invoiced=cents,
    hours=st.lists(st.integers(min_value=0, max_value=24 * 90), min_size=2, max_size=2),
    days=st.lists(st.integers(min_value=-90, max_value=700), min_size=2, max_size=2),
    organisation=st.sampled_from(["main", "simplified"]),
    stage=st.sampled_from(["new", "proposal", "contract", "invoice"]),
)
def test_an_imported_won_deal_is_the_deal_the_commands_win(
    proposal: Decimal,
    invoiced: Decimal,
    hours: list[int],
    days: list[int],
    organisation: str,
    stage: str,
) -> None:
    """Whatever the amounts, the commands' instants in order, the organisation and the
    contract's and invoice's days as the commands take them (backdated up to 90 days
    before the deal, or after the win, in any order): importing a won deal decides the
    state winning it through the commands leaves, no rule more."""
    proposal_at = START + timedelta(hours=hours[0])
    signed_on = START.date() + timedelta(days=days[0])
    invoiced_on = START.date() + timedelta(days=days[1])
    closed_at = proposal_at + timedelta(hours=hours[1])
    deal_id = uuid4()
    card = deal.CreateDeal(deal_id, "turnkey", "Survey", "Monolit LLC", "referral", "vera")
    state = deal.evolve(None, deal.create(card, RULES, _meta(START)))
    commands: list[tuple[datetime, deal.DealCommand]] = [
        (proposal_at, deal.RecordProposal((deal.ServiceLine("survey", proposal),))),
        (proposal_at, deal.RecordContract("K-1", signed_on)),
        (proposal_at, deal.IssueInvoice("S-1", invoiced, organisation, False, invoiced_on)),
    ]
    if stage != "new":
        commands.insert(0, (START, deal.MoveDealToStage(stage)))
    commands.append((closed_at, deal.CloseDeal("won")))
    for at, command in commands:
        state = deal.evolve(state, deal.decide(state, command, RULES, _meta(at)))
    event = deal.import_deal(
        deal.ImportDeal(
            deal_id=deal_id,
            created_at=START,
            stage=stage,
            stage_entered_at=START,
            status="won",
            closed_at=closed_at,
            service="survey",
            proposal_amount=proposal,
            proposal_at=proposal_at,
            contract_number="K-1",
            contract_signed_on=signed_on,
            invoice_number="S-1",
            invoiced=invoiced,
            invoiced_on=invoiced_on,
            organisation=organisation,
            funnel=card.funnel,
            title=card.title,
            company_name=card.company_name,
            source=card.source,
            manager=card.manager,
        ),
        RULES,
        _meta(NOW),
    )
    imported = deal.fold([event])
    assert imported is not None
    assert {f: getattr(imported, f) for f in COMPARED} == {f: getattr(state, f) for f in COMPARED}


def test_deals_imported_before_won_deals_could_be_read_with_no_money() -> None:
    codec = event_codec()
    row = won_row("OLD").split(",")
    values = dict(zip(HEADER.strip().split(","), row, strict=True))
    event = deal.import_deal(
        deal.ImportDeal(
            deal_id=uuid4(),
            funnel="turnkey",
            title=values["title"],
            company_name=values["company_name"],
            source="website",
            manager="boris",
            created_at=START,
        ),
        RULES,
        _meta(NOW),
    )
    stored = orjson.loads(codec.encode(event))
    for name in deal.upcast_deal_imported_v1({}):
        stored.pop(name)
    stored["schema_version"] = 1
    old = codec.decode("DealImported", orjson.dumps(stored))
    assert isinstance(old, deal.DealImported)
    assert old == event
    state = deal.fold([old])
    assert state is not None
    assert (state.proposal, state.contract, state.invoices, state.paid) == (None, None, (), None)


@settings(max_examples=60, deadline=None)
@given(
    invoiced=cents,
    share=st.integers(min_value=1, max_value=120),
    days=st.integers(min_value=-120, max_value=700),
)
def test_an_imported_payment_takes_the_billings_rules_no_more(
    invoiced: Decimal, share: int, days: int
) -> None:
    """What was paid of a won deal's invoice is refused exactly when recording it on the
    project (opened when the deal was won) would be: an overpayment, or a day more than 90
    days before the project; any other day, before the invoice's too, goes in."""
    closed_at = START + timedelta(days=20)
    paid = (invoiced * share / 100).quantize(Decimal("0.01"))
    paid_on = closed_at.date() + timedelta(days=days)
    bills = billing.empty_billing(uuid4(), closed_at)
    carry = billing.CarryDealInvoice(uuid4(), "S-1", invoiced, "main", False, START.date())
    bills = billing.evolve(bills, billing.decide(bills, carry, _meta(NOW)))
    expected = _billing_refuses(bills, billing.RecordPayment("S-1", paid, paid_on), closed_at)
    row = deal.ImportDeal(
        deal_id=uuid4(),
        funnel="turnkey",
        title="Survey",
        company_name="Monolit LLC",
        source="referral",
        manager="vera",
        created_at=START,
        status="won",
        closed_at=closed_at,
        service="survey",
        proposal_amount=invoiced,
        contract_number="K-1",
        contract_signed_on=START.date(),
        invoice_number="S-1",
        invoiced=invoiced,
        invoiced_on=START.date(),
        organisation="main",
        paid=paid,
        paid_on=paid_on,
    )
    if expected is not None:
        with pytest.raises(InvalidValue) as refused:
            deal.import_deal(row, RULES, _meta(NOW))
        assert refused.value.field == expected
        return
    event = deal.import_deal(row, RULES, _meta(NOW))
    assert (event.paid, event.paid_on) == (paid, paid_on)


def _billing_refuses(
    bills: billing.Billing, command: billing.RecordPayment, opened: datetime
) -> str | None:
    """The import's column the billing refuses the payment for (None: it records it)."""
    try:
        billing.decide(bills, command, _meta(NOW), opened=opened)
    except InvalidValue as refusal:
        return {"amount": "paid"}.get(refusal.field, refusal.field)
    except RuleViolation:
        return "paid"  # an overpayment
    return None
