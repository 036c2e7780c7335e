"""The Deal aggregate's rules and a lead's conversion into a deal, one Given/When/Then each
(aggregates/deal.py, aggregates/lead.py ``convert``, commands/deals.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aggregates.deal import (
    CloseDeal,
    CompleteEstimate,
    CreateDeal,
    DealClosed,
    DealCommand,
    DealContractRecorded,
    DealCreated,
    DealEstimateReady,
    DealEstimateRejected,
    DealHandoffNoted,
    DealInvoiceIssued,
    DealProjectStarted,
    DealProposalRecorded,
    DealStageChanged,
    DealStatus,
    EstimateResult,
    EstimateRound,
    HandoffView,
    Invoice,
    IssueInvoice,
    MoveDealToStage,
    NoteHandoff,
    NoteProject,
    Proposal,
    RecordContract,
    RecordProposal,
    ReturnFromEstimate,
    ServiceLine,
    requests_closed_reason,
)
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.lead import (
    CloseLead,
    CreateLead,
    EscalateUnansweredLead,
    LeadAnswerEscalated,
    LeadAnswerReminderSent,
    LeadCommand,
    LeadConvertedToDeal,
    MoveLeadToStage,
    PauseLead,
    QualifyLead,
    RecordLeadAssessment,
    RemindUnansweredLead,
    ResumeLead,
    UpdateLeadCard,
)
from commands.context import StreamNotFound
from commands.deals import convert_lead, create_upsell, deal_id_for_lead, load_deal
from commands.leads import load_lead
from event_store import EventStore
from tests.factories import LeadDriver
from tests.gwt_deals import DEAL, FUNNELS, LEAD, RULES, STEP, T0, ConvertToDeal

DEAL_ID = UUID("00000000-0000-4000-8000-00000000d001")
LEAD_ID = UUID("00000000-0000-4000-8000-00000000a001")
LOGISTICS_REQUEST = UUID("00000000-0000-4000-8000-00000000b001")
ENGINEERING_REQUEST = UUID("00000000-0000-4000-8000-00000000b002")
REQUESTS = {"logistics": LOGISTICS_REQUEST, "engineering": ENGINEERING_REQUEST}

SERVICES = (
    ServiceLine("design", Decimal("1000.00")),
    ServiceLine("installation", Decimal("2500.50")),
)
PROPOSAL = RecordProposal(SERVICES)
CONTRACT = RecordContract("C-2026-01", date(2026, 1, 10))
INVOICE = IssueInvoice("INV-1", Decimal("3500.50"), "main")

ROUND = 2
"""A deal created and then moved into its estimate stage: the move is its version 2."""
STARTED = T0 + STEP


def new_deal(**overrides: Any) -> CreateDeal:
    """A valid CreateDeal in the turnkey funnel, with any field overridden."""
    fields: dict[str, Any] = {
        "deal_id": DEAL_ID,
        "funnel": "turnkey",
        "title": "Warehouse fit-out",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "boris",
    }
    fields.update(overrides)
    return CreateDeal(**fields)


def deal(*commands: DealCommand, **card: Any) -> tuple[Any, ...]:
    """Events of a deal (card fields overridable) after these commands, one STEP apart."""
    return DEAL.history(new_deal(**card), *commands)


def view(
    department: str,
    *,
    stage: str = "new",
    status: str = "open",
    assignee: str | None = None,
    price: Decimal | None = None,
    round: int | None = ROUND,
    ready_at: datetime | None = None,
    request_id: UUID | None = None,
) -> HandoffView:
    """A request as the deal sees it (updated_at is the note's own instant on the deal)."""
    return HandoffView(
        request_id=request_id or REQUESTS[department],
        department=department,
        stage=stage,
        status=status,
        assignee=assignee,
        price=price,
        round=round,
        ready_at=ready_at,
        updated_at=T0,
    )


def ready(
    department: str,
    *,
    ready_at: datetime,
    assignee: str | None = None,
    price: Decimal | None = None,
    stage: str = "approval",
    **other: Any,
) -> HandoffView:
    status = "done" if stage == "done" else "ready"
    return view(
        department,
        stage=stage,
        status=status,
        assignee=assignee,
        price=price,
        ready_at=ready_at,
        **other,
    )


def note(v: HandoffView) -> NoteHandoff:
    return NoteHandoff(v)


ENTER_ESTIMATE = MoveDealToStage("estimate")


# --- create -----------------------------------------------------------------------------


@pytest.mark.parametrize("funnel", ["turnkey", "transport", "upsell"])
def test_a_new_deal_lands_open_in_the_first_stage_of_its_funnel(funnel: str) -> None:
    accepted = (
        DEAL.given()
        .when(new_deal(funnel=funnel, lead_id=LEAD_ID, amount=Decimal("12.5")))
        .then(
            DealCreated,
            deal_id=DEAL_ID,
            funnel=funnel,
            stage="new",
            title="Warehouse fit-out",
            company_name="Northwind LLC",
            company_id=None,
            source="website",
            manager="boris",
            description=None,
            amount=Decimal("12.50"),
            lead_id=LEAD_ID,
            previous_deal_id=None,
        )
    )
    state = accepted.state
    assert (state.version, state.status, state.stage) == (1, DealStatus.OPEN, "new")
    assert state.estimate is None
    assert state.handoffs == ()
    assert (state.created_at, state.created_by, state.stage_entered_at) == (T0, "anna.sales", T0)


def test_create_trims_texts_and_reads_blank_optional_texts_as_none() -> None:
    DEAL.given().when(
        new_deal(title="  Fit-out  ", company_id="  ", description="", manager=" vera ")
    ).then(DealCreated, title="Fit-out", company_id=None, description=None, manager="vera")


def test_create_in_an_unknown_deal_funnel_is_invalid() -> None:
    DEAL.given().when(new_deal(funnel="out_of_court")).then_invalid(field="funnel")


@pytest.mark.parametrize("field", ["title", "company_name", "source", "manager"])
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_create_without_a_required_field_is_invalid(field: str, blank: str | None) -> None:
    DEAL.given().when(new_deal(**{field: blank})).then_invalid(field=field)


@pytest.mark.parametrize("amount", ["-0.01", "0.001", "1e15", "NaN"])
def test_create_with_a_bad_amount_is_invalid(amount: str) -> None:
    DEAL.given().when(new_deal(amount=Decimal(amount))).then_invalid(field="amount")


# --- stages -----------------------------------------------------------------------------


def test_a_deal_moves_to_a_stage_without_estimates_and_opens_no_round() -> None:
    accepted = (
        DEAL.given(*deal(funnel="upsell"))
        .when(MoveDealToStage("contract"))
        .then(
            DealStageChanged,
            funnel="upsell",
            from_stage="new",
            to_stage="contract",
            needs=(),
            ready_stage=None,
        )
    )
    assert accepted.state.stage == "contract"
    assert accepted.state.stage_entered_at == accepted.event.at
    assert accepted.state.estimate is None


def test_moving_to_the_current_stage_is_refused() -> None:
    DEAL.given(*deal()).when(MoveDealToStage("new")).then_violates("same_stage")


def test_moving_to_a_stage_outside_the_funnel_is_invalid() -> None:
    DEAL.given(*deal(funnel="upsell")).when(MoveDealToStage("estimate")).then_invalid(field="stage")


# --- estimate rounds --------------------------------------------------------------------


def test_entering_a_stage_with_needs_starts_an_estimate_round_numbered_by_that_change() -> None:
    accepted = (
        DEAL.given(*deal())
        .when(ENTER_ESTIMATE, at=STARTED)
        .then(
            DealStageChanged,
            from_stage="new",
            to_stage="estimate",
            needs=("logistics", "engineering"),
            ready_stage="estimate_ready",
        )
    )
    assert accepted.state.estimate == EstimateRound(
        round=2,
        stage="estimate",
        needs=("logistics", "engineering"),
        return_stage="new",
        ready_stage="estimate_ready",
        started_at=STARTED,
    )
    assert accepted.state.round_requests() == {}


def test_the_round_number_is_the_deal_version_of_the_stage_change() -> None:
    accepted = (
        DEAL.given(*deal(PROPOSAL, MoveDealToStage("proposal"), funnel="transport"))
        .when(ENTER_ESTIMATE)
        .then(DealStageChanged, from_stage="proposal", needs=("logistics",))
    )
    assert accepted.state.estimate is not None
    assert accepted.state.estimate.round == accepted.state.version == 4
    assert accepted.state.estimate.return_stage == "proposal"


@pytest.mark.parametrize("forward", ["estimate_ready", "proposal", "contract", "invoice"])
def test_a_deal_cannot_move_on_past_an_estimate_stage_while_estimates_are_pending(
    forward: str,
) -> None:
    DEAL.given(*deal(ENTER_ESTIMATE)).when(MoveDealToStage(forward)).then_violates(
        "estimates_pending"
    )


def test_one_ready_estimate_of_two_is_still_pending() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP, assignee="lena")),
        note(view("engineering", stage="in_work", status="in_work", assignee="egor")),
    )
    error = DEAL.given(*events).when(MoveDealToStage("proposal")).then_violates("estimates_pending")
    assert "engineering" in error.message
    assert "logistics" not in error.message


def test_a_ready_request_of_another_round_does_not_count_for_this_one() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP, round=None)),
        note(ready("engineering", ready_at=T0 + 3 * STEP, round=1)),
    )
    DEAL.given(*events).when(MoveDealToStage("proposal")).then_violates("estimates_pending")


def test_a_rejected_request_is_not_a_ready_estimate() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(view("logistics", stage="rejected", status="rejected")),
        funnel="transport",
    )
    DEAL.given(*events).when(MoveDealToStage("proposal")).then_violates("estimates_pending")


@pytest.mark.parametrize("funnel", ["turnkey", "transport"])
def test_moving_back_while_estimates_are_pending_is_allowed_and_ends_the_round(
    funnel: str,
) -> None:
    accepted = (
        DEAL.given(*deal(ENTER_ESTIMATE, funnel=funnel))
        .when(MoveDealToStage("new"))
        .then(DealStageChanged, from_stage="estimate", to_stage="new", needs=())
    )
    assert accepted.state.estimate is None
    assert accepted.state.round_requests() == {}


def test_once_every_estimate_is_ready_the_deal_may_move_on_by_hand() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP)),
        note(ready("engineering", ready_at=T0 + 3 * STEP, stage="done")),
    )
    accepted = (
        DEAL.given(*events)
        .when(MoveDealToStage("proposal"))
        .then(DealStageChanged, from_stage="estimate", to_stage="proposal")
    )
    assert accepted.state.estimate is None


def test_re_entering_the_estimate_stage_starts_a_new_round() -> None:
    accepted = (
        DEAL.given(*deal(ENTER_ESTIMATE, MoveDealToStage("new")))
        .when(ENTER_ESTIMATE)
        .then(DealStageChanged, to_stage="estimate")
    )
    assert accepted.state.estimate is not None
    assert accepted.state.estimate.round == 4


# --- complete an estimate round ---------------------------------------------------------


def _all_ready() -> tuple[Any, ...]:
    """Logistics ready at +2h, engineering ready at +3h, logistics done at +4h (its ready
    instant stays +2h): the last estimate was ready 2h after the round started at +1h."""
    return deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP, assignee="lena", price=Decimal("1200.50"))),
        note(ready("engineering", ready_at=T0 + 3 * STEP, assignee="egor")),
        note(
            ready(
                "logistics",
                ready_at=T0 + 2 * STEP,
                assignee="lena",
                price=Decimal("1200.50"),
                stage="done",
            )
        ),
    )


def test_completing_the_round_moves_the_deal_to_the_ready_stage_with_price_and_time() -> None:
    given = DEAL.given(*_all_ready())
    at = T0 + 5 * STEP
    accepted = given.when(CompleteEstimate(ROUND), at=at).then(
        DealEstimateReady,
        round=ROUND,
        from_stage="estimate",
        to_stage="estimate_ready",
        price=Decimal("1200.50"),
        estimated_by=("lena", "egor"),
        took_seconds=7200.0,
    )
    state = accepted.state
    assert (state.stage, state.stage_entered_at, state.estimate) == ("estimate_ready", at, None)
    assert state.estimate_result == EstimateResult(
        round=ROUND,
        price=Decimal("1200.50"),
        estimated_by=("lena", "egor"),
        took_seconds=7200.0,
        ready_at=at,
    )


def test_the_round_price_is_the_sum_of_the_ready_requests_prices() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP, price=Decimal("1200.50"))),
        note(ready("engineering", ready_at=T0 + 3 * STEP, price=Decimal("799.55"))),
        # an earlier-round request with a price is not part of this round
        note(
            ready(
                "logistics",
                ready_at=T0 + 4 * STEP,
                price=Decimal("5000.00"),
                round=1,
                request_id=UUID(int=7),
            )
        ),
    )
    DEAL.given(*events).when(CompleteEstimate(ROUND)).then(
        DealEstimateReady, price=Decimal("2000.05")
    )


def test_estimated_by_names_each_assignee_once_in_the_order_of_the_needs() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("engineering", ready_at=T0 + 2 * STEP, assignee="lena")),
        note(ready("logistics", ready_at=T0 + 3 * STEP, assignee="lena")),
    )
    DEAL.given(*events).when(CompleteEstimate(ROUND)).then(
        DealEstimateReady, estimated_by=("lena",), took_seconds=7200.0
    )


def test_a_round_with_one_need_completes_on_its_one_estimate() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP, assignee="lena", price=Decimal(300))),
        funnel="transport",
    )
    DEAL.given(*events).when(CompleteEstimate(ROUND)).then(
        DealEstimateReady,
        price=Decimal(300),
        estimated_by=("lena",),
        took_seconds=3600.0,
        to_stage="estimate_ready",
    )


def test_completing_a_round_with_an_estimate_not_ready_is_refused() -> None:
    events = deal(
        ENTER_ESTIMATE,
        note(ready("logistics", ready_at=T0 + 2 * STEP)),
        note(view("engineering", stage="in_work", status="in_work", assignee="egor")),
    )
    DEAL.given(*events).when(CompleteEstimate(ROUND)).then_violates("estimates_pending")


def test_completing_a_round_without_any_request_is_refused() -> None:
    DEAL.given(*deal(ENTER_ESTIMATE)).when(CompleteEstimate(ROUND)).then_violates(
        "estimates_pending"
    )


@pytest.mark.parametrize(
    ("commands", "round_no"),
    [
        ((), ROUND),  # never entered the estimate stage
        ((ENTER_ESTIMATE,), ROUND + 1),  # not this round's number
        ((ENTER_ESTIMATE, MoveDealToStage("new")), ROUND),  # the round ended
        ((ENTER_ESTIMATE, MoveDealToStage("new"), ENTER_ESTIMATE), ROUND),  # a later round
    ],
)
def test_completing_a_round_the_deal_is_not_in_is_refused(
    commands: tuple[DealCommand, ...], round_no: int
) -> None:
    DEAL.given(*deal(*commands)).when(CompleteEstimate(round_no)).then_violates(
        "no_such_estimate_round"
    )


def test_a_completed_round_cannot_complete_twice() -> None:
    accepted = DEAL.given(*_all_ready()).when(CompleteEstimate(ROUND)).then(DealEstimateReady)
    accepted.given.when(CompleteEstimate(ROUND)).then_violates("no_such_estimate_round")


# --- return from an estimate ------------------------------------------------------------

REJECTED = view("logistics", stage="rejected", status="rejected", assignee="lena")


def test_a_rejected_request_returns_the_deal_to_the_stage_before_the_estimate() -> None:
    round_no = 4
    rejected = replace(REJECTED, round=round_no)
    events = deal(PROPOSAL, MoveDealToStage("proposal"), ENTER_ESTIMATE, note(rejected))
    accepted = (
        DEAL.given(*events)
        .when(ReturnFromEstimate(round_no, LOGISTICS_REQUEST, "no trucks free in March"))
        .then(
            DealEstimateRejected,
            round=round_no,
            request_id=LOGISTICS_REQUEST,
            department="logistics",
            from_stage="estimate",
            to_stage="proposal",
            reason="logistics rejected the request: no trucks free in March",
        )
    )
    state = accepted.state
    assert (state.stage, state.estimate) == ("proposal", None)
    assert state.estimate_rejection == "logistics rejected the request: no trucks free in March"
    assert state.stage_entered_at == accepted.event.at


def test_after_a_return_a_completed_round_clears_the_rejection() -> None:
    events = deal(ENTER_ESTIMATE, note(REJECTED), funnel="transport")
    returned = (
        DEAL.given(*events)
        .when(ReturnFromEstimate(ROUND, LOGISTICS_REQUEST, "no trucks"))
        .then(DealEstimateRejected, to_stage="new")
    )
    again = returned.given.when(ENTER_ESTIMATE).then(DealStageChanged)
    new_round = again.state.version
    later = again.given.when(
        note(ready("logistics", ready_at=again.event.at, round=new_round, request_id=UUID(int=9)))
    ).then(DealHandoffNoted)
    done = later.given.when(CompleteEstimate(new_round)).then(DealEstimateReady)
    assert done.state.estimate_rejection is None


@pytest.mark.parametrize(
    "noted",
    [
        view("logistics", stage="in_work", status="in_work", assignee="lena"),  # not rejected
        replace(REJECTED, round=1),  # rejected, but in another round
        replace(REJECTED, round=None),  # rejected, sent by hand
    ],
)
def test_returning_for_a_request_of_the_round_that_is_not_rejected_is_refused(
    noted: HandoffView,
) -> None:
    events = deal(ENTER_ESTIMATE, note(noted))
    DEAL.given(*events).when(
        ReturnFromEstimate(ROUND, LOGISTICS_REQUEST, "no trucks")
    ).then_violates("request_not_rejected")


def test_returning_for_a_request_the_deal_does_not_know_is_refused() -> None:
    DEAL.given(*deal(ENTER_ESTIMATE, note(REJECTED))).when(
        ReturnFromEstimate(ROUND, UUID(int=404), "no trucks")
    ).then_violates("request_not_rejected")


def test_returning_from_a_round_the_deal_is_not_in_is_refused() -> None:
    DEAL.given(*deal(ENTER_ESTIMATE, note(REJECTED))).when(
        ReturnFromEstimate(ROUND + 1, LOGISTICS_REQUEST, "no trucks")
    ).then_violates("no_such_estimate_round")


# --- proposal, contract, invoice --------------------------------------------------------


def test_a_proposal_records_its_services_and_total_and_sets_the_amount() -> None:
    accepted = (
        DEAL.given(*deal(amount=Decimal(10)))
        .when(RecordProposal((ServiceLine(" design ", Decimal("1000")), SERVICES[1])))
        .then(DealProposalRecorded, services=SERVICES, total=Decimal("3500.50"))
    )
    assert accepted.state.proposal == Proposal(SERVICES, Decimal("3500.50"))
    assert accepted.state.amount == Decimal("3500.50")


@pytest.mark.parametrize(
    ("services", "field"),
    [
        ((), "services"),
        ((ServiceLine("  ", Decimal(1)),), "services[0].name"),
        ((SERVICES[0], ServiceLine("design ", Decimal(5))), "services[1].name"),
        ((SERVICES[0], ServiceLine("audit", Decimal("-1"))), "services[1].price"),
        ((ServiceLine("audit", Decimal("0.001")),), "services[0].price"),
        (tuple(ServiceLine(f"s{n}", Decimal(1)) for n in range(201)), "services"),
        (
            (ServiceLine("a", Decimal("999999999999999")), ServiceLine("b", Decimal(1))),
            "services",
        ),
    ],
)
def test_a_bad_proposal_is_invalid(services: tuple[ServiceLine, ...], field: str) -> None:
    DEAL.given(*deal()).when(RecordProposal(services)).then_invalid(field=field)


def test_a_proposal_with_the_most_services_allowed_is_accepted() -> None:
    services = tuple(ServiceLine(f"s{n}", Decimal(1)) for n in range(200))
    DEAL.given(*deal()).when(RecordProposal(services)).then(total=Decimal(200))


def test_a_contract_after_a_proposal_is_recorded() -> None:
    accepted = (
        DEAL.given(*deal(PROPOSAL))
        .when(RecordContract(" C-2026-01 ", date(2026, 1, 10)))
        .then(DealContractRecorded, number="C-2026-01", signed_on=date(2026, 1, 10))
    )
    assert accepted.state.contract is not None
    assert accepted.state.contract.number == "C-2026-01"


def test_a_contract_needs_a_proposal() -> None:
    DEAL.given(*deal()).when(CONTRACT).then_violates("proposal_required")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (RecordContract("  ", date(2026, 1, 10)), "number"),
        (RecordContract("C-1", None), "signed_on"),  # type: ignore[arg-type]
        (RecordContract("C-1", datetime(2026, 1, 10, tzinfo=UTC)), "signed_on"),
    ],
)
def test_a_bad_contract_is_invalid(command: RecordContract, field: str) -> None:
    DEAL.given(*deal(PROPOSAL)).when(command).then_invalid(field=field)


def test_an_invoice_after_the_contract_is_issued_on_the_day_it_is_received() -> None:
    at = datetime(2026, 2, 3, 23, 30, tzinfo=UTC)
    accepted = (
        DEAL.given(*deal(PROPOSAL, CONTRACT))
        .when(IssueInvoice(" INV-1 ", Decimal("3500.5"), "simplified", prepayment=True), at=at)
        .then(
            DealInvoiceIssued,
            number="INV-1",
            amount=Decimal("3500.50"),
            prepayment=True,
            organisation="simplified",
            issued_on=date(2026, 2, 3),
            approval="pending",
            approver=RULES.head_of("boris"),
        )
    )
    assert accepted.state.invoices == (
        Invoice("INV-1", Decimal("3500.50"), True, "simplified", date(2026, 2, 3), "pending"),
    )


def test_the_default_invoice_day_is_the_utc_day_whatever_the_instants_offset() -> None:
    moscow = timezone(timedelta(hours=3))
    at = datetime(2026, 1, 1, 1, 30, tzinfo=moscow)  # 2025-12-31 22:30 UTC
    DEAL.given(*deal(PROPOSAL, CONTRACT)).when(INVOICE, at=at).then(
        DealInvoiceIssued, issued_on=date(2025, 12, 31)
    )


def test_an_invoice_keeps_the_day_it_names_and_the_deal_keeps_every_invoice() -> None:
    events = deal(PROPOSAL, CONTRACT, INVOICE)
    accepted = (
        DEAL.given(*events)
        .when(IssueInvoice("INV-2", Decimal(100), "main", issued_on=date(2025, 12, 30)))
        .then(DealInvoiceIssued, issued_on=date(2025, 12, 30), prepayment=False)
    )
    assert [i.number for i in accepted.state.invoices] == ["INV-1", "INV-2"]


def test_an_invoice_needs_a_contract() -> None:
    DEAL.given(*deal(PROPOSAL)).when(INVOICE).then_violates("contract_required")


def test_an_invoice_number_is_used_once_per_deal() -> None:
    DEAL.given(*deal(PROPOSAL, CONTRACT, INVOICE)).when(
        IssueInvoice(" INV-1", Decimal(5), "simplified")
    ).then_violates("invoice_number_taken")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (IssueInvoice("", Decimal(1), "main"), "number"),
        (IssueInvoice("INV-9", Decimal(0), "main"), "amount"),
        (IssueInvoice("INV-9", Decimal("-5"), "main"), "amount"),
        (IssueInvoice("INV-9", Decimal("0.001"), "main"), "amount"),
        (IssueInvoice("INV-9", Decimal(1), "offshore"), "organisation"),
        (
            IssueInvoice("INV-9", Decimal(1), "main", issued_on=datetime(2026, 1, 1, tzinfo=UTC)),
            "issued_on",
        ),
    ],
)
def test_a_bad_invoice_is_invalid(command: IssueInvoice, field: str) -> None:
    DEAL.given(*deal(PROPOSAL, CONTRACT)).when(command).then_invalid(field=field)


# --- close ------------------------------------------------------------------------------


def test_a_deal_with_an_invoice_is_won() -> None:
    accepted = (
        DEAL.given(*deal(PROPOSAL, CONTRACT, INVOICE))
        .when(CloseDeal("won"))
        .then(DealClosed, outcome="won", reason=None)
    )
    state = accepted.state
    assert (state.status, state.closed_at, state.close_reason) == (
        DealStatus.WON,
        accepted.event.at,
        None,
    )


def test_winning_needs_an_invoice() -> None:
    DEAL.given(*deal(PROPOSAL, CONTRACT)).when(CloseDeal("won")).then_violates("invoice_required")


def test_a_deal_is_lost_with_a_reason_and_its_open_round_ends() -> None:
    accepted = (
        DEAL.given(*deal(ENTER_ESTIMATE))
        .when(CloseDeal("lost", "  went to a competitor "))
        .then(DealClosed, outcome="lost", reason="went to a competitor")
    )
    state = accepted.state
    assert (state.status, state.close_reason, state.estimate) == (
        DealStatus.LOST,
        "went to a competitor",
        None,
    )


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_losing_needs_a_reason(reason: str | None) -> None:
    DEAL.given(*deal()).when(CloseDeal("lost", reason)).then_invalid(field="reason")


@pytest.mark.parametrize("outcome", ["", "cancelled", "WON"])
def test_closing_with_an_unknown_outcome_is_invalid(outcome: str) -> None:
    DEAL.given(*deal()).when(CloseDeal(outcome, "why")).then_invalid(field="outcome")


CLOSED_DEALS = {
    "won": deal(PROPOSAL, CONTRACT, INVOICE, CloseDeal("won")),
    "lost": deal(ENTER_ESTIMATE, CloseDeal("lost", "no budget")),
}
EVERY_COMMAND_BUT_A_NOTE: list[DealCommand] = [
    MoveDealToStage("proposal"),
    MoveDealToStage("new"),
    PROPOSAL,
    CONTRACT,
    IssueInvoice("INV-7", Decimal(1), "main"),
    CloseDeal("won"),
    CloseDeal("lost", "changed their mind"),
    CompleteEstimate(ROUND),
    ReturnFromEstimate(ROUND, LOGISTICS_REQUEST, "no trucks"),
]


@pytest.mark.parametrize("outcome", sorted(CLOSED_DEALS))
@pytest.mark.parametrize("command", EVERY_COMMAND_BUT_A_NOTE, ids=repr)
def test_a_closed_deal_refuses_every_command(outcome: str, command: DealCommand) -> None:
    DEAL.given(*CLOSED_DEALS[outcome]).when(command).then_violates("deal_closed")


@pytest.mark.parametrize("outcome", sorted(CLOSED_DEALS))
def test_a_closed_deal_still_notes_its_requests(outcome: str) -> None:
    accepted = (
        DEAL.given(*CLOSED_DEALS[outcome])
        .when(note(view("logistics", stage="in_work", status="in_work", assignee="lena")))
        .then(DealHandoffNoted, stage="in_work", assignee="lena")
    )
    assert accepted.state.status.value == outcome
    assert [h.stage for h in accepted.state.handoffs] == ["in_work"]


# --- the deal's view of its hand-off requests -------------------------------------------


def test_a_note_records_the_request_as_the_deal_sees_it() -> None:
    noted = ready("logistics", ready_at=T0 + STEP, assignee="lena", price=Decimal("99.90"))
    at = T0 + 3 * STEP
    accepted = (
        DEAL.given(*deal())
        .when(note(noted), at=at)
        .then(
            DealHandoffNoted,
            request_id=LOGISTICS_REQUEST,
            department="logistics",
            stage="approval",
            status="ready",
            assignee="lena",
            price=Decimal("99.90"),
            round=ROUND,
            ready_at=T0 + STEP,
        )
    )
    assert accepted.state.handoffs == (replace(noted, updated_at=at),)
    assert accepted.state.handoff(LOGISTICS_REQUEST) == replace(noted, updated_at=at)
    assert accepted.state.handoff(ENGINEERING_REQUEST) is None


def test_notes_keep_the_requests_in_order_and_replace_a_known_requests_view() -> None:
    first = view("logistics", round=None)
    second = view("engineering", round=None)
    third = view("logistics", request_id=UUID(int=3), round=None)
    taken = replace(first, stage="in_work", status="in_work", assignee="lena")
    events = deal(note(first), note(second), note(third))
    at = events[-1].at + STEP
    accepted = DEAL.given(*events).when(note(taken), at=at).then(DealHandoffNoted)
    handoffs = accepted.state.handoffs
    assert [h.request_id for h in handoffs] == [LOGISTICS_REQUEST, ENGINEERING_REQUEST, UUID(int=3)]
    assert handoffs[0] == replace(taken, updated_at=at)
    assert handoffs[1] == replace(second, updated_at=events[2].at)
    assert handoffs[2] == replace(third, updated_at=events[3].at)


def test_the_round_requests_are_the_views_of_the_open_round_by_department() -> None:
    state = DEAL.fold(
        deal(
            ENTER_ESTIMATE,
            note(view("logistics")),
            note(view("engineering", round=None)),
            note(view("logistics", round=1, request_id=UUID(int=5))),
        )
    )
    assert state is not None
    assert {d: v.request_id for d, v in state.round_requests().items()} == {
        "logistics": LOGISTICS_REQUEST
    }


# --- a lead becomes a deal --------------------------------------------------------------

ASSESS = RecordLeadAssessment(expert="ivan", result="feasible", hours=Decimal("3.5"))
QUALIFY = QualifyLead(quality=True)
CONVERT = ConvertToDeal(DEAL_ID, "turnkey")


def new_lead(**overrides: Any) -> CreateLead:
    fields: dict[str, Any] = {
        "lead_id": LEAD_ID,
        "funnel": "out_of_court",
        "title": "Appraisal of a warehouse",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "boris",
    }
    fields.update(overrides)
    return CreateLead(**fields)


def lead(*commands: Any, **card: Any) -> tuple[Any, ...]:
    return LEAD.history(new_lead(**card), *commands)


def test_a_lead_qualified_as_quality_records_its_deal() -> None:
    accepted = (
        LEAD.given(*lead(ASSESS, QUALIFY))
        .when(ConvertToDeal(DEAL_ID, "transport"))
        .then(LeadConvertedToDeal, deal_id=DEAL_ID, deal_funnel="transport")
    )
    assert accepted.state.deal_id == DEAL_ID
    assert accepted.state.status.value == "open"


@pytest.mark.parametrize(
    ("commands", "rule"),
    [
        ((), "lead_not_qualified"),
        ((ASSESS,), "lead_not_qualified"),
        ((ASSESS, QUALIFY, PauseLead("client on holiday")), "lead_paused"),
        ((ASSESS, QualifyLead(quality=False, reason="spam")), "lead_closed"),
        ((ASSESS, QUALIFY, CloseLead("lost", "no budget")), "lead_closed"),
        ((ASSESS, QUALIFY, CloseLead("won")), "lead_closed"),
        ((ASSESS, QUALIFY, CONVERT), "lead_already_converted"),
    ],
)
def test_a_lead_that_may_not_become_a_deal_is_refused(
    commands: tuple[LeadCommand, ...], rule: str
) -> None:
    LEAD.given(*lead(*commands)).when(CONVERT).then_violates(rule)


def test_a_resumed_qualified_lead_becomes_a_deal() -> None:
    events = lead(ASSESS, QUALIFY, PauseLead("client on holiday"), ResumeLead())
    LEAD.given(*events).when(CONVERT).then(LeadConvertedToDeal)


# --- a lead whose answer date passed (the deadline's reminder and escalation) -----------

DUE = date(2026, 1, 20)
LATER = date(2026, 2, 1)
REMIND = RemindUnansweredLead(DUE, "boris")
ESCALATE = EscalateUnansweredLead(DUE, "head.of.sales")


def test_an_unanswered_lead_is_reminded_then_escalated_once_per_answer_date() -> None:
    reminded = (
        LEAD.given(*lead(answer_due=DUE))
        .when(REMIND)
        .then(LeadAnswerReminderSent, due=DUE, recipient="boris")
    )
    assert reminded.state.answer_reminded_for == DUE
    reminded.given.when(REMIND).then_violates("already_reminded")
    escalated = reminded.given.when(ESCALATE).then(
        LeadAnswerEscalated, due=DUE, recipient="head.of.sales", manager="boris"
    )
    assert escalated.state.answer_escalated_for == DUE
    escalated.given.when(ESCALATE).then_violates("already_escalated")


def test_an_escalation_follows_a_reminder() -> None:
    LEAD.given(*lead(answer_due=DUE)).when(ESCALATE).then_violates("not_reminded")


def test_a_new_answer_date_is_reminded_and_escalated_afresh() -> None:
    events = lead(REMIND, ESCALATE, UpdateLeadCard({"answer_due": LATER}), answer_due=DUE)
    LEAD.given(*events).when(REMIND).then_violates("answer_due_changed")
    LEAD.given(*events).when(EscalateUnansweredLead(LATER, "head.of.sales")).then_violates(
        "not_reminded"
    )
    reminded = LEAD.given(*events).when(RemindUnansweredLead(LATER, "boris")).then()
    reminded.given.when(EscalateUnansweredLead(LATER, "head.of.sales")).then(
        LeadAnswerEscalated, due=LATER
    )


@pytest.mark.parametrize("command", [REMIND, ESCALATE], ids=["remind", "escalate"])
def test_a_lead_past_its_first_stage_has_answered(command: LeadCommand) -> None:
    events = lead(REMIND, MoveLeadToStage("assessment"), answer_due=DUE)
    LEAD.given(*events).when(command).then_violates("answered")


@pytest.mark.parametrize("command", [REMIND, ESCALATE], ids=["remind", "escalate"])
def test_a_closed_lead_is_neither_reminded_nor_escalated(command: LeadCommand) -> None:
    events = lead(REMIND, CloseLead("lost", "no answer"), answer_due=DUE)
    LEAD.given(*events).when(command).then_violates("lead_closed")


def test_a_paused_lead_in_its_first_stage_is_still_unanswered() -> None:
    LEAD.given(*lead(PauseLead("waiting"), answer_due=DUE)).when(REMIND).then(
        LeadAnswerReminderSent
    )


def test_a_lead_without_an_answer_date_is_not_reminded() -> None:
    LEAD.given(*lead()).when(REMIND).then_violates("answer_due_changed")


# --- the handlers: conversion and upsell ------------------------------------------------


def _qualified_lead(driver: LeadDriver, **card: Any) -> UUID:
    lead_id = driver.create(**card).stream_id
    driver.assess(lead_id)
    driver.qualify(lead_id)
    return lead_id


def test_converting_a_lead_creates_its_deal_and_links_both_in_one_write(
    store: EventStore,
) -> None:
    driver = LeadDriver(store)
    lead_id = _qualified_lead(
        driver,
        company_id="inn-7701",
        description="roof and walls",
        amount=Decimal("4200.00"),
        manager="vera",
    )
    result = convert_lead(store, FUNNELS, RULES, lead_id, None, driver.context())
    deal_id = deal_id_for_lead(lead_id)
    assert result.stream_id == deal_id
    state, records = load_deal(store, deal_id)
    assert (state.funnel, state.stage, state.lead_id) == ("turnkey", "new", lead_id)
    assert (state.title, state.company_name, state.company_id) == (
        "Appraisal of a warehouse",
        "Northwind LLC",
        "inn-7701",
    )
    assert (state.source, state.manager, state.description, state.amount) == (
        "website",
        "vera",
        "roof and walls",
        Decimal("4200.00"),
    )
    converted, lead_records = load_lead(store, lead_id)
    assert converted.deal_id == deal_id
    link = lead_records[-1]
    assert isinstance(link.event, LeadConvertedToDeal)
    assert link.event.deal_funnel == "turnkey"
    assert link.event.command_id == records[0].event.command_id
    assert link.position == records[0].position + 1


def test_a_lead_becomes_at_most_one_deal(store: EventStore) -> None:
    driver = LeadDriver(store)
    lead_id = _qualified_lead(driver)
    convert_lead(store, FUNNELS, RULES, lead_id, "transport", driver.context())
    with pytest.raises(RuleViolation) as caught:
        convert_lead(store, FUNNELS, RULES, lead_id, "upsell", driver.context())
    assert caught.value.rule == "lead_already_converted"
    state, records = load_deal(store, deal_id_for_lead(lead_id))
    assert (state.funnel, len(records)) == ("transport", 1)


def test_a_court_lead_becomes_a_deal_in_the_first_deal_funnel(store: EventStore) -> None:
    driver = LeadDriver(store)
    lead_id = _qualified_lead(driver, funnel="court")
    convert_lead(store, FUNNELS, RULES, lead_id, None, driver.context())
    state, _ = load_deal(store, deal_id_for_lead(lead_id))
    assert state.funnel == next(iter(RULES.deal_funnels)) == "turnkey"


def test_converting_into_an_unknown_deal_funnel_is_invalid_and_writes_nothing(
    store: EventStore,
) -> None:
    driver = LeadDriver(store)
    lead_id = _qualified_lead(driver)
    with pytest.raises(InvalidValue) as caught:
        convert_lead(store, FUNNELS, RULES, lead_id, "wholesale", driver.context())
    assert caught.value.field == "funnel"
    assert load_lead(store, lead_id)[0].deal_id is None
    with pytest.raises(StreamNotFound):
        load_deal(store, deal_id_for_lead(lead_id))


def test_an_unqualified_lead_is_not_converted_and_no_deal_appears(store: EventStore) -> None:
    driver = LeadDriver(store)
    lead_id = driver.create().stream_id
    with pytest.raises(RuleViolation) as caught:
        convert_lead(store, FUNNELS, RULES, lead_id, None, driver.context())
    assert caught.value.rule == "lead_not_qualified"
    assert store.load(deal_id_for_lead(lead_id)) == []


def test_an_upsell_takes_the_client_from_the_earlier_deal(store: EventStore) -> None:
    driver = LeadDriver(store)
    lead_id = _qualified_lead(driver, company_id="inn-7701", company_name="Northwind LLC")
    convert_lead(store, FUNNELS, RULES, lead_id, None, driver.context())
    previous = deal_id_for_lead(lead_id)
    upsell = new_deal(
        deal_id=UUID(int=77),
        funnel="upsell",
        company_name="ignored: the client is the earlier deal's",
        title="Maintenance contract",
        manager="gleb",
    )
    create_upsell(store, RULES, previous, upsell, driver.context())
    state, _ = load_deal(store, UUID(int=77))
    assert (state.funnel, state.title, state.manager) == ("upsell", "Maintenance contract", "gleb")
    assert (state.company_name, state.company_id) == ("Northwind LLC", "inn-7701")
    assert (state.previous_deal_id, state.lead_id) == (previous, lead_id)


def test_an_upsell_of_an_unknown_deal_is_invalid(store: EventStore) -> None:
    driver = LeadDriver(store)
    with pytest.raises(InvalidValue) as caught:
        create_upsell(store, RULES, UUID(int=404), new_deal(funnel="upsell"), driver.context())
    assert caught.value.field == "previous_deal_id"
    assert store.load(DEAL_ID) == []


# --- the won deal's project, and its requests when it closes ------------------------------

PROJECT_OF_DEAL = UUID("00000000-0000-4000-8000-00000000f001")


def test_a_won_deal_records_its_project_once() -> None:
    won = CLOSED_DEALS["won"]
    accepted = (
        DEAL.given(*won)
        .when(NoteProject(PROJECT_OF_DEAL))
        .then(DealProjectStarted, project_id=PROJECT_OF_DEAL)
    )
    assert accepted.state.project_id == PROJECT_OF_DEAL
    accepted.given.when(NoteProject(PROJECT_OF_DEAL)).then_violates("project_exists")


@pytest.mark.parametrize("events", [deal(), CLOSED_DEALS["lost"]], ids=["open", "lost"])
def test_only_a_won_deal_becomes_a_project(events: tuple[Any, ...]) -> None:
    DEAL.given(*events).when(NoteProject(PROJECT_OF_DEAL)).then_violates("deal_not_won")


def test_a_closed_deals_unended_requests_are_every_one_not_done_rejected_or_cancelled() -> None:
    at_approval = ready("logistics", ready_at=T0 + STEP, assignee="lena")
    done = view("engineering", stage="done", status="done", assignee="igor")
    manual = view("logistics", request_id=UUID(int=7), round=None)
    in_work = view("engineering", request_id=UUID(int=8), stage="in_work", status="in_work")
    rejected = view("logistics", request_id=UUID(int=9), stage="rejected", status="rejected")
    cancelled = view("engineering", request_id=UUID(int=10), status="cancelled")
    notes = [note(v) for v in (at_approval, done, manual, in_work, rejected, cancelled)]
    state = DEAL.fold(deal(*notes, PROPOSAL, CONTRACT, INVOICE, CloseDeal("won")))
    assert state is not None
    assert [v.request_id for v in state.open_requests()] == [
        at_approval.request_id,
        manual.request_id,
        in_work.request_id,
    ]
    assert requests_closed_reason("won") == "the deal was won"
