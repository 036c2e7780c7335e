"""The rules of hand-off requests, the contractor directory and the cross-aggregate limits
(revenue cap, new clients per manager and month), one Given/When/Then each
(aggregates/handoff.py, aggregates/contractor.py, aggregates/limits.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from aggregates import limits
from aggregates.contractor import (
    ContractorQuoteRecorded,
    ContractorRegistered,
    ContractorUpdated,
    RecordQuote,
    RegisterContractor,
    UpdateContractor,
)
from aggregates.deal import (
    CloseDeal,
    HandoffView,
    IssueInvoice,
    RecordContract,
    RecordProposal,
    ServiceLine,
)
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from aggregates.handoff import (
    CancelHandoff,
    CreateHandoff,
    EngineeringPlan,
    EscalateHandoffNotTaken,
    HandoffCancelled,
    HandoffCommand,
    HandoffEscalated,
    HandoffLogisticsEstimated,
    HandoffPlanRecorded,
    HandoffRejected,
    HandoffReminderSent,
    HandoffRequested,
    HandoffStageChanged,
    HandoffTaken,
    LogisticsEstimate,
    MoveHandoffToStage,
    RecordEngineeringPlan,
    RecordLogisticsEstimate,
    RejectHandoff,
    RemindHandoffNotTaken,
    TakeHandoff,
)
from commands.assignments import assign_client, decide_assignment
from commands.contractors import load_contractor, register_contractor
from commands.deals import convert_lead, deal_id_for_lead, handle_deal_command, load_deal
from commands.handoffs import create_handoff, handle_handoff_command, load_handoff
from event_store import EventStore
from tests.factories import LeadDriver
from tests.gwt_deals import CONTRACTOR, FUNNELS, HANDOFF, RULES, STEP, T0, meta

REQUEST_ID = UUID("00000000-0000-4000-8000-00000000b001")
DEAL_ID = UUID("00000000-0000-4000-8000-00000000d001")
CONTRACTOR_ID = UUID("00000000-0000-4000-8000-00000000c001")
LOGISTICS = RULES.departments["logistics"]
ENGINEERING = RULES.departments["engineering"]

TAKE = TakeHandoff("lena")
ESTIMATE = RecordLogisticsEstimate(
    service="haulage",
    cost=Decimal("1200.50"),
    lead_time_days=5,
    contractor_id=CONTRACTOR_ID,
    contractor_name="Volga Trucks",
    notes="two trucks",
    rating=4,
)
OWN_EQUIPMENT = RecordLogisticsEstimate(
    service="crane", cost=Decimal(300), lead_time_days=0, own_equipment=True
)
PLAN = RecordEngineeringPlan(hours=Decimal("12.5"), notes="two engineers, one week")
APPROVAL = MoveHandoffToStage("approval")
DONE = MoveHandoffToStage("done")
IN_WORK = MoveHandoffToStage("in_work")
REJECT = RejectHandoff("no trucks free in March")
CANCEL = CancelHandoff("the deal was lost")


def new_request(department: str = "logistics", **overrides: Any) -> CreateHandoff:
    fields: dict[str, Any] = {"request_id": REQUEST_ID, "deal_id": DEAL_ID}
    fields.update(overrides)
    return CreateHandoff(department=department, **fields)


def logistics(*commands: HandoffCommand, **overrides: Any) -> tuple[Any, ...]:
    return HANDOFF.history(new_request("logistics", **overrides), *commands)


def engineering(*commands: HandoffCommand, **overrides: Any) -> tuple[Any, ...]:
    return HANDOFF.history(new_request("engineering", **overrides), *commands)


HISTORIES = {"logistics": logistics, "engineering": engineering}
OUTCOMES: dict[str, HandoffCommand] = {"logistics": ESTIMATE, "engineering": PLAN}


# --- create -----------------------------------------------------------------------------


@pytest.mark.parametrize("department", ["logistics", "engineering"])
def test_a_request_opens_in_the_first_stage_of_its_department(department: str) -> None:
    accepted = (
        HANDOFF.given()
        .when(new_request(department, round=3, notes="  the March delivery  "))
        .then(
            HandoffRequested,
            request_id=REQUEST_ID,
            deal_id=DEAL_ID,
            department=department,
            stage="new",
            round=3,
            notes="the March delivery",
        )
    )
    state = accepted.state
    assert (state.version, state.assignee, state.ready_at, state.reminded) == (1, None, None, False)
    assert state.status(RULES.departments[department]) == "open"


def test_a_request_to_an_unknown_department_is_invalid() -> None:
    HANDOFF.given().when(new_request("legal")).then_invalid(field="department")


# --- take -------------------------------------------------------------------------------


def test_taking_a_request_records_who_and_when_and_puts_it_in_work() -> None:
    at = T0 + 2 * STEP
    accepted = (
        HANDOFF.given(*logistics())
        .when(TakeHandoff(" lena "), at=at)
        .then(HandoffTaken, assignee="lena", from_stage="new", to_stage="in_work")
    )
    state = accepted.state
    assert (state.assignee, state.taken_at, state.stage, state.stage_entered_at) == (
        "lena",
        at,
        "in_work",
        at,
    )
    assert state.status(LOGISTICS) == "in_work"


def test_a_request_is_taken_once() -> None:
    HANDOFF.given(*logistics(TAKE)).when(TakeHandoff("oleg")).then_violates("already_taken")


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_taking_needs_an_assignee(blank: str | None) -> None:
    HANDOFF.given(*logistics()).when(TakeHandoff(blank)).then_invalid(  # type: ignore[arg-type]
        field="assignee"
    )


# --- outcomes: the logistics estimate and the engineering plan --------------------------


def test_logistics_records_an_estimate_with_a_contractor_and_a_rating() -> None:
    accepted = (
        HANDOFF.given(*logistics(TAKE))
        .when(replace(ESTIMATE, service=" haulage ", cost=Decimal("1200.5"), notes=" two trucks"))
        .then(
            HandoffLogisticsEstimated,
            contractor_id=CONTRACTOR_ID,
            contractor_name="Volga Trucks",
            service="haulage",
            cost=Decimal("1200.50"),
            lead_time_days=5,
            notes="two trucks",
            rating=4,
        )
    )
    assert accepted.state.logistics == LogisticsEstimate(
        CONTRACTOR_ID, "Volga Trucks", "haulage", Decimal("1200.50"), 5, "two trucks", 4
    )
    assert accepted.state.price == Decimal("1200.50")
    assert accepted.state.stage == "in_work"


def test_logistics_records_an_estimate_with_the_companys_own_equipment() -> None:
    accepted = (
        HANDOFF.given(*logistics(TAKE))
        .when(OWN_EQUIPMENT)
        .then(HandoffLogisticsEstimated, contractor_id=None, contractor_name=None, rating=None)
    )
    assert accepted.state.price == Decimal("300.00")


def test_a_new_estimate_in_work_replaces_the_earlier_one() -> None:
    accepted = HANDOFF.given(*logistics(TAKE, ESTIMATE)).when(OWN_EQUIPMENT).then()
    assert accepted.state.logistics is not None
    assert accepted.state.logistics.service == "crane"


@pytest.mark.parametrize("rating", [1, 5])
def test_a_contractors_rating_runs_from_1_to_5(rating: int) -> None:
    HANDOFF.given(*logistics(TAKE)).when(replace(ESTIMATE, rating=rating)).then(rating=rating)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"service": "  "}, "service"),
        ({"cost": Decimal("-1")}, "cost"),
        ({"cost": Decimal("0.001")}, "cost"),
        ({"lead_time_days": -1}, "lead_time_days"),
        ({"lead_time_days": 3651}, "lead_time_days"),
        ({"lead_time_days": 2.5}, "lead_time_days"),
        ({"lead_time_days": True}, "lead_time_days"),
        ({"own_equipment": True}, "contractor_id"),  # a contractor and own equipment
        ({"contractor_id": None}, "contractor_id"),  # neither
        ({"contractor_name": None}, "contractor_id"),  # not in the directory
        ({"rating": None}, "rating"),
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": True}, "rating"),
        ({"contractor_id": None, "own_equipment": True}, "rating"),  # own equipment rated
    ],
)
def test_a_bad_logistics_estimate_is_invalid(changes: dict[str, Any], field: str) -> None:
    HANDOFF.given(*logistics(TAKE)).when(replace(ESTIMATE, **changes)).then_invalid(field=field)


def test_the_longest_lead_time_is_ten_years() -> None:
    HANDOFF.given(*logistics(TAKE)).when(replace(ESTIMATE, lead_time_days=3650)).then(
        lead_time_days=3650
    )


def test_engineering_records_a_plan() -> None:
    accepted = (
        HANDOFF.given(*engineering(TAKE))
        .when(RecordEngineeringPlan(hours=Decimal("12.5"), notes=" two engineers, one week "))
        .then(HandoffPlanRecorded, hours=Decimal("12.50"), notes="two engineers, one week")
    )
    assert accepted.state.engineering == EngineeringPlan(
        Decimal("12.50"), "two engineers, one week"
    )
    assert accepted.state.price is None


@pytest.mark.parametrize("hours", ["0", "-1", "0.001", "100000.01", "NaN"])
def test_a_plan_with_bad_hours_is_invalid(hours: str) -> None:
    HANDOFF.given(*engineering(TAKE)).when(RecordEngineeringPlan(Decimal(hours))).then_invalid(
        field="hours"
    )


@pytest.mark.parametrize(
    ("department", "command"),
    [("engineering", ESTIMATE), ("engineering", OWN_EQUIPMENT), ("logistics", PLAN)],
)
def test_each_department_records_its_own_kind_of_outcome(
    department: str, command: HandoffCommand
) -> None:
    HANDOFF.given(*HISTORIES[department](TAKE)).when(command).then_violates("wrong_outcome")


@pytest.mark.parametrize("department", ["logistics", "engineering"])
def test_an_outcome_needs_the_request_taken(department: str) -> None:
    HANDOFF.given(*HISTORIES[department]()).when(OUTCOMES[department]).then_violates("not_taken")


def test_logistics_re_estimates_only_back_in_work() -> None:
    at_approval = logistics(TAKE, ESTIMATE, APPROVAL)
    HANDOFF.given(*at_approval).when(OWN_EQUIPMENT).then_violates("request_ready")
    back = HANDOFF.given(*at_approval).when(IN_WORK).then()
    back.given.when(OWN_EQUIPMENT).then(HandoffLogisticsEstimated)


# --- stages -----------------------------------------------------------------------------


@pytest.mark.parametrize("department", ["logistics", "engineering"])
@pytest.mark.parametrize("stage", ["approval", "done"])
def test_a_request_reaches_a_ready_stage_only_with_its_outcome(department: str, stage: str) -> None:
    history = HISTORIES[department]
    HANDOFF.given(*history(TAKE)).when(MoveHandoffToStage(stage)).then_violates("outcome_required")
    at = T0 + 10 * STEP
    accepted = (
        HANDOFF.given(*history(TAKE, OUTCOMES[department]))
        .when(MoveHandoffToStage(stage), at=at)
        .then(HandoffStageChanged, from_stage="in_work", to_stage=stage)
    )
    assert (accepted.state.stage, accepted.state.ready_at) == (stage, at)


def test_a_request_is_ready_from_the_first_time_it_reached_approval() -> None:
    events = logistics(TAKE, ESTIMATE, APPROVAL)
    first_ready = events[-1].at
    done = HANDOFF.given(*events).when(DONE).then(HandoffStageChanged)
    assert done.state.ready_at == first_ready
    assert done.state.status(LOGISTICS) == "done"
    back = HANDOFF.given(*events).when(IN_WORK).then()
    assert back.state.ready_at is None
    assert back.state.status(LOGISTICS) == "in_work"
    again = back.given.when(APPROVAL).then()
    assert again.state.ready_at == again.event.at


def test_a_request_cannot_go_back_to_new() -> None:
    HANDOFF.given(*logistics(TAKE)).when(MoveHandoffToStage("new")).then_violates(
        "cannot_return_to_new"
    )


def test_moving_to_the_rejected_stage_needs_a_reject_with_a_reason() -> None:
    HANDOFF.given(*logistics(TAKE)).when(MoveHandoffToStage("rejected")).then_violates(
        "reject_with_reason"
    )


def test_moving_to_the_current_stage_is_refused() -> None:
    HANDOFF.given(*logistics(TAKE)).when(IN_WORK).then_violates("same_stage")


def test_moving_to_an_unknown_stage_is_invalid() -> None:
    HANDOFF.given(*logistics(TAKE)).when(MoveHandoffToStage("archive")).then_invalid(field="stage")


def test_a_request_moves_only_once_taken() -> None:
    HANDOFF.given(*logistics()).when(IN_WORK).then_violates("not_taken")


# --- reject -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "commands", [(), (TAKE,), (TAKE, ESTIMATE, APPROVAL)], ids=["new", "in_work", "approval"]
)
def test_a_request_is_rejected_with_a_reason_from_any_open_stage(
    commands: tuple[HandoffCommand, ...],
) -> None:
    events = logistics(*commands)
    accepted = (
        HANDOFF.given(*events)
        .when(RejectHandoff("  no trucks free in March "))
        .then(
            HandoffRejected,
            from_stage=HANDOFF.fold(events).stage,  # type: ignore[union-attr]
            to_stage="rejected",
            reason="no trucks free in March",
        )
    )
    assert accepted.state.rejection_reason == "no trucks free in March"
    assert accepted.state.status(LOGISTICS) == "rejected"


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_rejection_needs_a_reason(blank: str | None) -> None:
    HANDOFF.given(*logistics(TAKE)).when(RejectHandoff(blank)).then_invalid(  # type: ignore[arg-type]
        field="reason"
    )


CLOSED_REQUESTS = {
    "done": logistics(TAKE, ESTIMATE, APPROVAL, DONE),
    "done_from_in_work": engineering(TAKE, PLAN, DONE),
    "rejected": logistics(REJECT),
    "cancelled": logistics(TAKE, CANCEL),
}
EVERY_COMMAND: list[HandoffCommand] = [
    TAKE,
    ESTIMATE,
    PLAN,
    IN_WORK,
    APPROVAL,
    REJECT,
    CANCEL,
    RemindHandoffNotTaken("logistics.team"),
    EscalateHandoffNotTaken("logistics.head"),
]


@pytest.mark.parametrize("closed", sorted(CLOSED_REQUESTS))
@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_a_done_or_rejected_request_takes_no_further_command(
    closed: str, command: HandoffCommand
) -> None:
    HANDOFF.given(*CLOSED_REQUESTS[closed]).when(command).then_violates("request_closed")


# --- cancel -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "commands", [(), (TAKE,), (TAKE, ESTIMATE, APPROVAL)], ids=["new", "in_work", "approval"]
)
def test_a_request_nobody_needs_any_more_is_cancelled_where_it_stands(
    commands: tuple[HandoffCommand, ...],
) -> None:
    events = logistics(*commands)
    before = HANDOFF.fold(events)
    assert before is not None
    accepted = (
        HANDOFF.given(*events)
        .when(CancelHandoff("  the deal was lost "))
        .then(HandoffCancelled, reason="the deal was lost")
    )
    state = accepted.state
    assert state.cancellation_reason == "the deal was lost"
    assert state.status(LOGISTICS) == "cancelled"
    assert (state.stage, state.assignee, state.ready_at) == (
        before.stage,
        before.assignee,
        before.ready_at,
    )


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_cancellation_needs_a_reason(blank: str | None) -> None:
    HANDOFF.given(*logistics(TAKE)).when(CancelHandoff(blank)).then_invalid(  # type: ignore[arg-type]
        field="reason"
    )


# --- reminders and escalations ----------------------------------------------------------

REMIND = RemindHandoffNotTaken("logistics.team")
ESCALATE = EscalateHandoffNotTaken("logistics.head")


def test_a_request_not_taken_is_reminded_once_then_escalated_once() -> None:
    reminded = (
        HANDOFF.given(*logistics())
        .when(REMIND)
        .then(HandoffReminderSent, recipient="logistics.team")
    )
    assert (reminded.state.reminded, reminded.state.escalated) == (True, False)
    reminded.given.when(REMIND).then_violates("nothing_to_remind")
    escalated = reminded.given.when(ESCALATE).then(HandoffEscalated, recipient="logistics.head")
    assert (escalated.state.reminded, escalated.state.escalated) == (True, True)
    escalated.given.when(ESCALATE).then_violates("nothing_to_escalate")
    # the stage and the deal's view do not change with a reminder
    assert escalated.state.stage == "new"
    assert escalated.state.status(LOGISTICS) == "open"


@pytest.mark.parametrize(
    ("command", "rule"), [(REMIND, "nothing_to_remind"), (ESCALATE, "nothing_to_escalate")]
)
def test_a_taken_request_is_neither_reminded_nor_escalated(
    command: HandoffCommand, rule: str
) -> None:
    HANDOFF.given(*logistics(TAKE)).when(command).then_violates(rule)


def test_a_reminded_request_can_still_be_taken() -> None:
    HANDOFF.given(*logistics(REMIND, ESCALATE)).when(TAKE).then(HandoffTaken)


# --- the deal's view --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commands", "status"),
    [
        ((), "open"),
        ((TAKE,), "in_work"),
        ((TAKE, ESTIMATE), "in_work"),
        ((TAKE, ESTIMATE, APPROVAL), "ready"),
        ((TAKE, ESTIMATE, DONE), "done"),
        ((TAKE, REJECT), "rejected"),
        ((TAKE, CANCEL), "cancelled"),
    ],
)
def test_the_view_shows_the_requests_status(
    commands: tuple[HandoffCommand, ...], status: str
) -> None:
    state = HANDOFF.fold(logistics(*commands, round=2))
    assert state is not None
    assert state.view(LOGISTICS) == HandoffView(
        request_id=REQUEST_ID,
        department="logistics",
        stage=state.stage,
        status=status,
        assignee=state.assignee,
        price=Decimal("1200.50") if ESTIMATE in commands else None,
        round=2,
        ready_at=state.ready_at,
        updated_at=state.updated_at,
    )


# --- hand-offs through the handlers -----------------------------------------------------


def _deal(store: EventStore) -> tuple[LeadDriver, UUID]:
    driver = LeadDriver(store)
    lead_id = driver.create().stream_id
    driver.assess(lead_id)
    driver.qualify(lead_id)
    convert_lead(store, FUNNELS, RULES, lead_id, "transport", driver.context())
    return driver, deal_id_for_lead(lead_id)


def _contractor(store: EventStore, driver: LeadDriver, *services: str) -> UUID:
    register_contractor(
        store,
        RegisterContractor(CONTRACTOR_ID, "Volga Trucks", services or ("haulage",)),
        driver.context(),
    )
    return CONTRACTOR_ID


def test_an_estimate_naming_a_contractor_adds_its_quote_in_the_same_write(
    store: EventStore,
) -> None:
    driver, deal_id = _deal(store)
    _contractor(store, driver)
    create_handoff(store, RULES, new_request(deal_id=deal_id), driver.context())
    handle_handoff_command(store, RULES, REQUEST_ID, TAKE, driver.context())
    estimate = replace(ESTIMATE, contractor_name=None)  # the directory names it
    handle_handoff_command(store, RULES, REQUEST_ID, estimate, driver.context())
    request, records = load_handoff(store, RULES, REQUEST_ID)
    assert request.logistics is not None
    assert request.logistics.contractor_name == "Volga Trucks"
    found = load_contractor(store, CONTRACTOR_ID)
    assert (found.quotes, found.last_used_at) == (1, records[-1].event.at)
    quote = store.load(CONTRACTOR_ID)[-1]
    assert isinstance(quote.event, ContractorQuoteRecorded)
    assert (quote.event.request_id, quote.event.deal_id) == (REQUEST_ID, deal_id)
    assert (quote.event.service, quote.event.price, quote.event.rating) == (
        "haulage",
        Decimal("1200.50"),
        4,
    )
    assert quote.event.command_id == records[-1].event.command_id
    parent, _ = load_deal(store, deal_id)
    assert parent.handoffs == (request.view(LOGISTICS),)


def test_an_estimate_for_a_service_the_contractor_does_not_offer_is_refused_whole(
    store: EventStore,
) -> None:
    driver, deal_id = _deal(store)
    _contractor(store, driver, "storage")
    create_handoff(store, RULES, new_request(deal_id=deal_id), driver.context())
    handle_handoff_command(store, RULES, REQUEST_ID, TAKE, driver.context())
    with pytest.raises(InvalidValue) as caught:
        handle_handoff_command(store, RULES, REQUEST_ID, ESTIMATE, driver.context())
    assert caught.value.field == "service"
    assert load_handoff(store, RULES, REQUEST_ID)[0].logistics is None
    assert load_contractor(store, CONTRACTOR_ID).quotes == 0
    assert load_deal(store, deal_id)[0].version == 3  # created, noted twice


def test_an_estimate_naming_a_contractor_not_in_the_directory_is_invalid(
    store: EventStore,
) -> None:
    driver, deal_id = _deal(store)
    create_handoff(store, RULES, new_request(deal_id=deal_id), driver.context())
    handle_handoff_command(store, RULES, REQUEST_ID, TAKE, driver.context())
    with pytest.raises(InvalidValue) as caught:
        handle_handoff_command(
            store, RULES, REQUEST_ID, replace(ESTIMATE, contractor_name=None), driver.context()
        )
    assert caught.value.field == "contractor_id"


def test_a_contractor_name_sent_with_an_unknown_contractor_does_not_pass_for_one(
    store: EventStore,
) -> None:
    driver, deal_id = _deal(store)
    create_handoff(store, RULES, new_request(deal_id=deal_id), driver.context())
    handle_handoff_command(store, RULES, REQUEST_ID, TAKE, driver.context())
    with pytest.raises(InvalidValue) as caught:
        handle_handoff_command(store, RULES, REQUEST_ID, ESTIMATE, driver.context())
    assert caught.value.field == "contractor_id"


def test_a_closed_deal_asks_no_new_request(store: EventStore) -> None:
    driver, deal_id = _deal(store)
    handle_deal_command(store, RULES, deal_id, CloseDeal("lost", "no budget"), driver.context())
    with pytest.raises(RuleViolation) as caught:
        create_handoff(store, RULES, new_request(deal_id=deal_id), driver.context())
    assert caught.value.rule == "deal_closed"
    assert store.load(REQUEST_ID) == []


# --- contractors ------------------------------------------------------------------------


def new_contractor(**overrides: Any) -> RegisterContractor:
    fields: dict[str, Any] = {
        "contractor_id": CONTRACTOR_ID,
        "name": "Volga Trucks",
        "services": ("haulage", "crane"),
    }
    fields.update(overrides)
    return RegisterContractor(**fields)


REGISTERED = CONTRACTOR.history(new_contractor(contacts="+7 900 000-00-00"))


def test_a_contractor_is_registered_with_its_services() -> None:
    accepted = (
        CONTRACTOR.given()
        .when(new_contractor(name=" Volga Trucks ", services=[" haulage", "crane"], notes=" "))
        .then(
            ContractorRegistered,
            contractor_id=CONTRACTOR_ID,
            name="Volga Trucks",
            services=("haulage", "crane"),
            contacts=None,
            notes=None,
        )
    )
    state = accepted.state
    assert (state.version, state.quotes, state.last_used_at) == (1, 0, None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": None}, "name"),
        ({"services": ()}, "services"),
        ({"services": "haulage"}, "services"),
        ({"services": ("haulage", "  ")}, "services[1]"),
        ({"services": ("haulage", " haulage")}, "services[1]"),
        ({"services": tuple(f"s{n}" for n in range(101))}, "services"),
    ],
)
def test_a_bad_registration_is_invalid(overrides: dict[str, Any], field: str) -> None:
    CONTRACTOR.given().when(new_contractor(**overrides)).then_invalid(field=field)


def test_an_update_touches_only_the_fields_it_names() -> None:
    accepted = (
        CONTRACTOR.given(*REGISTERED)
        .when(UpdateContractor({"services": ["haulage", "storage"], "notes": "reliable"}))
        .then(
            ContractorUpdated,
            name="Volga Trucks",
            services=("haulage", "storage"),
            contacts="+7 900 000-00-00",
            notes="reliable",
        )
    )
    assert accepted.state.version == 2
    assert accepted.state.services == ("haulage", "storage")


def test_an_update_clears_an_optional_field_given_as_none() -> None:
    CONTRACTOR.given(*REGISTERED).when(UpdateContractor({"contacts": None})).then(contacts=None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "body"),
        ({"rating": 5}, "rating"),
        ({"name": " "}, "name"),
        ({"services": []}, "services"),
        ({"services": ["crane", "crane"]}, "services[1]"),
    ],
)
def test_a_bad_update_is_invalid(changes: dict[str, Any], field: str) -> None:
    CONTRACTOR.given(*REGISTERED).when(UpdateContractor(changes)).then_invalid(field=field)


def test_an_update_that_changes_nothing_is_refused() -> None:
    CONTRACTOR.given(*REGISTERED).when(
        UpdateContractor({"name": " Volga Trucks ", "services": ["haulage", "crane"]})
    ).then_violates("no_change")


QUOTE = RecordQuote(REQUEST_ID, DEAL_ID, "crane", Decimal("300.00"), 5, "on time")


def test_a_quote_counts_towards_the_contractors_history() -> None:
    at = T0 + 5 * STEP
    accepted = (
        CONTRACTOR.given(*REGISTERED)
        .when(QUOTE, at=at)
        .then(
            ContractorQuoteRecorded,
            request_id=REQUEST_ID,
            deal_id=DEAL_ID,
            service="crane",
            price=Decimal("300.00"),
            rating=5,
            notes="on time",
        )
    )
    assert (accepted.state.quotes, accepted.state.last_used_at) == (1, at)
    second = accepted.given.when(QUOTE).then()
    assert second.state.quotes == 2


def test_a_quote_for_a_service_the_contractor_does_not_offer_is_invalid() -> None:
    CONTRACTOR.given(*REGISTERED).when(replace(QUOTE, service="storage")).then_invalid(
        field="service"
    )


# --- the simplified-tax revenue cap -----------------------------------------------------

SIMPLIFIED = RULES.organisations["simplified"]
CAP = Decimal("265800000.00")


def _book(total: str, amount: str) -> limits.RevenueBooked:
    ledger = limits.RevenueLedger(version=3, total=Decimal(total))
    return limits.book_revenue(ledger, SIMPLIFIED, 2026, DEAL_ID, "INV-9", Decimal(amount), meta())


def test_the_configured_cap_is_the_simplified_organisations_only() -> None:
    assert SIMPLIFIED.yearly_revenue_cap == CAP
    assert RULES.organisations["main"].yearly_revenue_cap is None


def test_an_invoice_that_takes_the_revenue_exactly_to_the_cap_is_booked() -> None:
    booked = _book("265799900.00", "100.00")
    assert (booked.total, booked.cap, booked.amount) == (CAP, CAP, Decimal("100.00"))
    assert (booked.organisation, booked.year, booked.deal_id, booked.invoice_number) == (
        "simplified",
        2026,
        DEAL_ID,
        "INV-9",
    )


def test_a_first_invoice_of_the_whole_cap_is_booked() -> None:
    assert _book("0.00", "265800000.00").total == CAP


def test_an_invoice_a_cent_over_the_cap_is_refused_with_the_figures() -> None:
    with pytest.raises(RuleViolation) as caught:
        _book("265799900.00", "100.01")
    refusal = caught.value
    assert refusal.rule == "simplified_tax_revenue_cap"
    assert refusal.details == {
        "cap": "265800000.00",
        "current_total": "265799900.00",
        "requested": "100.01",
        "year": 2026,
        "organisation": "simplified",
    }


def test_the_ledger_is_the_last_booked_total() -> None:
    first = _book("0.00", "100.00")
    second = replace(first, amount=Decimal("50.00"), total=Decimal("150.00"))
    assert limits.revenue_ledger([first, second]) == limits.RevenueLedger(2, Decimal("150.00"))
    assert limits.revenue_ledger([]) == limits.RevenueLedger(0, Decimal("0.00"))


def test_invoices_through_the_deal_book_the_cap_and_stop_at_it(store: EventStore) -> None:
    driver, deal_id = _deal(store)
    for command in (
        # a service the simplified-tax organisation sells (rules.toml)
        RecordProposal((ServiceLine("survey", Decimal(1)),)),
        RecordContract("C-1", T0.date()),
        IssueInvoice("INV-1", CAP - Decimal("0.01"), "simplified"),
        IssueInvoice("INV-2", Decimal("0.01"), "main"),
    ):
        handle_deal_command(store, RULES, deal_id, command, driver.context())
    with pytest.raises(RuleViolation) as caught:
        handle_deal_command(
            store,
            RULES,
            deal_id,
            IssueInvoice("INV-3", Decimal("0.02"), "simplified"),
            driver.context(),
        )
    assert caught.value.details["current_total"] == "265799999.99"
    handle_deal_command(
        store,
        RULES,
        deal_id,
        IssueInvoice("INV-4", Decimal("0.01"), "simplified"),
        driver.context(),
    )
    ledger = [r.event for r in store.load(limits.revenue_stream_id("simplified", T0.year))]
    booked = [e.total for e in ledger if isinstance(e, limits.RevenueBooked)]
    assert booked == [CAP - Decimal("0.01"), CAP]
    assert len(ledger) == 2
    assert store.load(limits.revenue_stream_id("main", T0.year)) == []
    state, _ = load_deal(store, deal_id)
    assert [i.number for i in state.invoices] == ["INV-1", "INV-2", "INV-4"]


# --- new clients per manager and month --------------------------------------------------

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
ASSIGN = limits.AssignClient(" inn-7701 ", " turnkey ", " boris ", reason="met at the fair")
ASSIGNMENT_ID = limits.assignment_id_for("inn-7701", "turnkey")


def _assign(
    state: limits.ClientAssignment | None,
    taken: int,
    command: limits.AssignClient = ASSIGN,
    rules: Any = RULES,
) -> tuple[Any, limits.ManagerClientTaken | None]:
    return limits.assign(state, command, taken, rules, meta(NOW))


def _decide(
    state: limits.ClientAssignment,
    approve: bool,
    actor: str,
    comment: str | None = None,
    rules: Any = RULES,
) -> tuple[Any, limits.ManagerClientTaken | None]:
    command = limits.DecideAssignment(approve, comment)
    return limits.decide_approval(state, command, 5, rules, meta(NOW, actor=actor))


def test_under_the_monthly_cap_the_client_is_assigned_and_counted() -> None:
    assigned, taken = _assign(None, 4)
    assert isinstance(assigned, limits.ClientAssigned)
    assert (assigned.assignment_id, assigned.company_id, assigned.direction) == (
        ASSIGNMENT_ID,
        "inn-7701",
        "turnkey",
    )
    assert (assigned.manager, assigned.previous_manager, assigned.month) == (
        "boris",
        None,
        "2026-03",
    )
    assert (assigned.count, assigned.approved_by, assigned.comment) == (5, None, "met at the fair")
    assert taken is not None
    assert (taken.manager, taken.month, taken.count, taken.cap, taken.approved_by) == (
        "boris",
        "2026-03",
        5,
        5,
        None,
    )
    state = limits.fold_assignment([assigned])
    assert state is not None
    assert (state.manager, state.status, state.version) == ("boris", "assigned", 1)
    assert limits.manager_month_count([taken]) == 5


def test_at_the_monthly_cap_the_assignment_waits_for_the_heads_approval() -> None:
    requested, taken = _assign(None, 5)
    assert taken is None
    assert isinstance(requested, limits.ClientAssignmentApprovalRequested)
    assert (requested.manager, requested.count, requested.cap, requested.approver) == (
        "boris",
        5,
        5,
        "head.of.sales",
    )
    assert requested.reason == "met at the fair"
    state = limits.fold_assignment([requested])
    assert state is not None
    assert (state.status, state.manager, state.requested_manager) == (
        "pending_approval",
        None,
        "boris",
    )


def test_the_approver_is_the_managers_own_head_when_one_is_configured() -> None:
    rules = replace(RULES, heads={"boris": "vera.head"})
    requested, _ = _assign(None, 5, rules=rules)
    assert requested.approver == "vera.head"
    state = limits.fold_assignment([requested])
    assert state is not None
    assigned, _ = _decide(state, True, "vera.head", rules=rules)
    assert isinstance(assigned, limits.ClientAssigned)
    assert assigned.approved_by == "vera.head"
    # an approver named in the rules may decide too; anyone else may not
    _decide(state, True, "head.of.sales", rules=rules)
    with pytest.raises(NotPermitted):
        _decide(state, True, "gleb.head", rules=rules)


def test_a_pending_assignment_takes_no_second_request() -> None:
    requested, _ = _assign(None, 5)
    state = limits.fold_assignment([requested])
    with pytest.raises(RuleViolation) as caught:
        _assign(state, 0, limits.AssignClient("inn-7701", "turnkey", "vera"))
    assert caught.value.rule == "approval_pending"


def test_a_client_is_not_assigned_again_to_its_manager() -> None:
    assigned, _ = _assign(None, 0)
    with pytest.raises(RuleViolation) as caught:
        _assign(limits.fold_assignment([assigned]), 0)
    assert caught.value.rule == "already_assigned"


def test_reassigning_a_client_names_the_previous_manager() -> None:
    # a held direction moves only on approval (the rule of test_client_direction.py)
    assigned, _ = _assign(None, 0)
    requested, _ = _assign(
        limits.fold_assignment([assigned]), 2, limits.AssignClient("inn-7701", "turnkey", "vera")
    )
    state = limits.fold_assignment([assigned, requested])
    assert state is not None
    command = limits.DecideAssignment(True, None)
    moved, taken = limits.decide_approval(
        state, command, 2, RULES, meta(NOW, actor="head.of.sales")
    )
    assert isinstance(moved, limits.ClientAssigned)
    assert (moved.manager, moved.previous_manager, moved.count) == ("vera", "boris", 3)
    assert taken is not None
    assert taken.manager == "vera"


@pytest.mark.parametrize("field", ["company_id", "direction", "manager"])
def test_an_assignment_without_a_required_field_is_invalid(field: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        _assign(None, 0, replace(ASSIGN, **{field: "  "}))
    assert caught.value.field == field


def test_the_head_approves_an_assignment_over_the_cap() -> None:
    assigned, _ = _assign(None, 0, limits.AssignClient("inn-7701", "turnkey", "vera"))
    requested, _ = _assign(limits.fold_assignment([assigned]), 5)
    state = limits.fold_assignment([assigned, requested])
    assert state is not None
    approved, taken = _decide(state, True, "head.of.sales", "worth it")
    assert isinstance(approved, limits.ClientAssigned)
    assert (approved.manager, approved.previous_manager, approved.approved_by) == (
        "boris",
        "vera",
        "head.of.sales",
    )
    assert (approved.count, approved.comment) == (6, "worth it")
    assert taken is not None
    assert (taken.count, taken.cap, taken.approved_by) == (6, 5, "head.of.sales")
    after = limits.fold_assignment([assigned, requested, approved])
    assert after is not None
    assert (after.manager, after.status, after.decided_by) == ("boris", "assigned", "head.of.sales")


@pytest.mark.parametrize("actor", ["boris", "vera", "logistics.head"])
def test_only_a_head_or_an_approver_decides_an_assignment(actor: str) -> None:
    requested, _ = _assign(None, 5)
    state = limits.fold_assignment([requested])
    assert state is not None
    with pytest.raises(NotPermitted) as caught:
        _decide(state, True, actor)
    assert caught.value.rule == "head_approval_required"


def test_a_declined_assignment_keeps_the_previous_manager() -> None:
    assigned, _ = _assign(None, 0, limits.AssignClient("inn-7701", "turnkey", "vera"))
    requested, _ = _assign(limits.fold_assignment([assigned]), 5)
    state = limits.fold_assignment([assigned, requested])
    assert state is not None
    declined, taken = _decide(state, False, "head.of.sales", "vera keeps it")
    assert taken is None
    assert isinstance(declined, limits.ClientAssignmentDeclined)
    assert (declined.manager, declined.comment) == ("boris", "vera keeps it")
    after = limits.fold_assignment([assigned, requested, declined])
    assert after is not None
    assert (after.manager, after.status, after.requested_manager) == ("vera", "assigned", None)
    assert (after.decided_by, after.version) == ("head.of.sales", 3)


def test_a_declined_first_assignment_leaves_the_client_without_a_manager() -> None:
    requested, _ = _assign(None, 5)
    state = limits.fold_assignment([requested])
    assert state is not None
    declined, _ = _decide(state, False, "head.of.sales", "too many this month")
    after = limits.fold_assignment([requested, declined])
    assert after is not None
    assert (after.manager, after.status) == (None, "declined")


@pytest.mark.parametrize("comment", [None, "  "])
def test_declining_needs_a_comment(comment: str | None) -> None:
    requested, _ = _assign(None, 5)
    state = limits.fold_assignment([requested])
    assert state is not None
    with pytest.raises(InvalidValue) as caught:
        _decide(state, False, "head.of.sales", comment)
    assert caught.value.field == "comment"


def test_deciding_with_nothing_pending_is_refused() -> None:
    assigned, _ = _assign(None, 0)
    state = limits.fold_assignment([assigned])
    assert state is not None
    with pytest.raises(RuleViolation) as caught:
        _decide(state, True, "head.of.sales")
    assert caught.value.rule == "no_pending_approval"


def test_the_sixth_client_of_a_month_waits_for_the_head_through_the_handlers(
    store: EventStore,
) -> None:
    driver = LeadDriver(store)
    driver.clock.set(NOW)  # type: ignore[attr-defined]
    for n in range(5):
        assign_client(
            store, RULES, limits.AssignClient(f"inn-{n}", "turnkey", "boris"), driver.context()
        )
    sixth = limits.AssignClient("inn-5", "turnkey", "boris")
    result = assign_client(store, RULES, sixth, driver.context())
    month = limits.manager_month_stream_id("boris", "2026-03")
    assert limits.manager_month_count([r.event for r in store.load(month)]) == 5
    pending = limits.fold_assignment([r.event for r in store.load(result.stream_id)])
    assert pending is not None
    assert pending.status == "pending_approval"
    decision = limits.DecideAssignment(True, "a key client")
    with pytest.raises(NotPermitted):
        decide_assignment(store, RULES, result.stream_id, decision, driver.context(actor="boris"))
    decide_assignment(
        store, RULES, result.stream_id, decision, driver.context(actor="head.of.sales")
    )
    assert limits.manager_month_count([r.event for r in store.load(month)]) == 6
    approved = limits.fold_assignment([r.event for r in store.load(result.stream_id)])
    assert approved is not None
    assert (approved.manager, approved.status) == ("boris", "assigned")
