"""Contractor quality rated on the work done (issue 13, §2): the delivery of a contracted
job, one Given/When/Then each (aggregates/handoff.py ``deliver``, aggregates/contractor.py
``deliver``), the handler's one atomic append and the read model it feeds.

The job is the one sold: a contractor's estimate that reached a ready stage, its deal
won. Planned completion = the day the deal was won + the estimate's lead time; the actual
completion lies between that won day and today; once per job (a second is 409).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import contractor, deal, handoff
from aggregates.base import DomainEvent
from aggregates.deal import (
    CloseDeal,
    CreateDeal,
    DealStatus,
    EstimateResult,
    IssueInvoice,
    RecordContract,
    RecordProposal,
    ServiceLine,
)
from aggregates.errors import RuleViolation
from aggregates.handoff import (
    CreateHandoff,
    HandoffDeliveryRecorded,
    MoveHandoffToStage,
    RecordDelivery,
    RecordLogisticsEstimate,
    RejectHandoff,
    TakeHandoff,
)
from commands.context import CommandResult
from commands.handoffs import load_handoff, record_delivery
from event_store import EventStore, open_event_store
from leadledger.wiring import event_codec, read_model_projections
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild
from tests.factories import ManualClock
from tests.gwt_deals import DEAL, FUNNELS, RULES, STEP, T0, Decider, meta
from tests.test_deal_projections import PipelineDriver

REQUEST_ID = UUID("00000000-0000-4000-8000-00000000b013")
DEAL_ID = UUID("00000000-0000-4000-8000-00000000d013")
CONTRACTOR_ID = UUID("00000000-0000-4000-8000-00000000c013")
LOGISTICS = RULES.departments["logistics"]

WON_AT = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)
WON_ON = WON_AT.date()
LATER = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
"""When the delivery is recorded (its 'today')."""

TAKE = TakeHandoff("lev")
ESTIMATE = RecordLogisticsEstimate(
    service="heavy haulage",
    cost=Decimal("1200.00"),
    lead_time_days=5,
    contractor_id=CONTRACTOR_ID,
    contractor_name="Volga Trucks",
    rating=4,
)
OWN_EQUIPMENT = RecordLogisticsEstimate(
    service="crane", cost=Decimal(300), lead_time_days=2, own_equipment=True
)
APPROVAL = MoveHandoffToStage("approval")
DONE = MoveHandoffToStage("done")


def won_deal(**overrides: Any) -> deal.Deal:
    """The parent deal, won at WON_AT through its real commands."""
    events = DEAL.history(
        CreateDeal(DEAL_ID, "upsell", "Tractor", "Agro", "phone", "mia.manager"),
        RecordProposal((ServiceLine("transport", Decimal(100)),)),
        RecordContract("C-1", date(2026, 1, 6)),
        IssueInvoice("INV-1", Decimal(100), "main"),
        CloseDeal("won"),
        start=WON_AT - 4 * STEP,
    )
    state = DEAL.fold(events)
    assert state is not None
    assert (state.status, state.closed_at) == (DealStatus.WON, WON_AT)
    return replace(state, **overrides)


def open_deal() -> deal.Deal:
    state = DEAL.fold(
        DEAL.history(CreateDeal(DEAL_ID, "upsell", "Tractor", "Agro", "phone", "mia.manager"))
    )
    assert state is not None
    return state


def delivering(parent: deal.Deal) -> Decider[handoff.HandoffRequest]:
    """The hand-off request's decider, its deliveries decided against ``parent``."""

    def decide(state: handoff.HandoffRequest, command: Any, m: Any) -> DomainEvent:
        if isinstance(command, RecordDelivery):
            return handoff.deliver(state, parent, command, RULES, m)
        return handoff.decide(state, command, RULES, m)

    return Decider(
        name="hand-off request",
        creates=CreateHandoff,
        create=lambda command, m: handoff.create(command, RULES, m),
        decide=decide,
        evolve=lambda state, event: handoff.evolve(state, event, RULES),
    )


def request(*commands: Any, parent: deal.Deal | None = None, **create: Any) -> Any:
    """The request's history: created at T0, then the commands one STEP apart."""
    fields: dict[str, Any] = {"request_id": REQUEST_ID, "deal_id": DEAL_ID, **create}
    decider = delivering(parent or won_deal())
    return decider.given(
        *decider.history(CreateHandoff(department="logistics", **fields), *commands)
    )


SOLD = (TAKE, ESTIMATE, APPROVAL)
DELIVERY = RecordDelivery(completed_on=date(2026, 1, 12), rating=5, notes="  on the day  ")


# --- the delivery of a sold job ---------------------------------------------------------


def test_a_job_completed_by_its_planned_day_is_on_time() -> None:
    accepted = (
        request(*SOLD)
        .when(DELIVERY, at=LATER, actor="lev")
        .then(
            HandoffDeliveryRecorded,
            contractor_id=CONTRACTOR_ID,
            contractor_name="Volga Trucks",
            service="heavy haulage",
            contracted_on=WON_ON,
            lead_time_days=5,
            planned_on=date(2026, 1, 12),
            completed_on=date(2026, 1, 12),
            days_late=0,
            rating=5,
            notes="on the day",
        )
    )
    delivery = accepted.state.delivery
    assert delivery is not None
    assert (delivery.planned_on, delivery.days_late, delivery.recorded_by) == (
        date(2026, 1, 12),
        0,
        "lev",
    )
    assert (delivery.recorded_at, delivery.rating) == (LATER, 5)
    # the request itself is unchanged otherwise: still at its stage, same status
    assert accepted.state.status(LOGISTICS) == "ready"


def test_a_job_completed_after_its_planned_day_is_an_overrun_by_the_days_late() -> None:
    request(*SOLD).when(replace(DELIVERY, completed_on=date(2026, 1, 21)), at=LATER).then(
        planned_on=date(2026, 1, 12), completed_on=date(2026, 1, 21), days_late=9
    )


def test_a_done_request_takes_its_delivery() -> None:
    """Done ends the request for every other command: the delivery comes after the job."""
    given_done = request(*SOLD, DONE)
    given_done.when(TAKE, at=LATER).then_violates("request_closed")
    given_done.when(DELIVERY, at=LATER).then(HandoffDeliveryRecorded, days_late=0)


def test_a_request_cancelled_with_its_won_deal_takes_its_delivery() -> None:
    cancelled = request(*SOLD, handoff.CancelHandoff("the deal was won"))
    cancelled.when(DELIVERY, at=LATER).then(HandoffDeliveryRecorded)


def test_a_job_is_delivered_once() -> None:
    delivered = request(*SOLD).when(DELIVERY, at=LATER).then(HandoffDeliveryRecorded)
    refusal = delivered.given.when(DELIVERY, at=LATER + STEP).then_violates("already_delivered")
    assert "2026-01-12" in refusal.message


def test_own_equipment_has_no_contractor_to_rate() -> None:
    request(TAKE, OWN_EQUIPMENT, APPROVAL).when(DELIVERY, at=LATER).then_violates("no_contractor")


def test_a_request_without_an_estimate_contracted_nothing() -> None:
    request(TAKE).when(DELIVERY, at=LATER).then_violates("estimate_required")


def test_an_estimate_that_never_reached_approval_is_not_the_job_sold() -> None:
    request(TAKE, ESTIMATE).when(DELIVERY, at=LATER).then_violates("estimate_not_ready")


def test_a_rejected_request_contracted_nothing() -> None:
    rejected = request(*SOLD, RejectHandoff("no trucks"))
    rejected.when(DELIVERY, at=LATER).then_violates("request_rejected")


def test_an_estimate_of_a_superseded_round_is_not_the_job_sold() -> None:
    result = EstimateResult(9, Decimal(1), ("lev",), 1.0, WON_AT)
    superseded = request(*SOLD, parent=won_deal(estimate_result=result), round=3)
    superseded.when(DELIVERY, at=LATER).then_violates("estimate_superseded")
    # the round the deal was sold on is
    sold_round = request(*SOLD, parent=won_deal(estimate_result=replace(result, round=3)), round=3)
    sold_round.when(DELIVERY, at=LATER).then(HandoffDeliveryRecorded)


def test_the_job_is_contracted_once_the_deal_is_won() -> None:
    refusal = request(*SOLD, parent=open_deal()).when(DELIVERY, at=LATER)
    assert "open" in refusal.then_violates("deal_not_won").message
    lost = won_deal(status=DealStatus.LOST)
    request(*SOLD, parent=lost).when(DELIVERY, at=LATER).then_violates("deal_not_won")


@pytest.mark.parametrize(
    ("completed_on", "why"),
    [
        (WON_ON - timedelta(days=1), "2026-01-07"),  # before the deal was won
        (LATER.date() + timedelta(days=1), "today"),  # a completion still to come
        (None, "required"),
        ("2026-01-12", "date"),
    ],
)
def test_the_completion_lies_between_the_won_day_and_today(completed_on: Any, why: str) -> None:
    refusal = (
        request(*SOLD)
        .when(replace(DELIVERY, completed_on=completed_on), at=LATER)
        .then_invalid(field="completed_on")
    )
    assert why in refusal.message


def test_the_completion_may_be_the_won_day_or_today() -> None:
    for day in (WON_ON, LATER.date()):
        request(*SOLD).when(replace(DELIVERY, completed_on=day), at=LATER).then(completed_on=day)


@pytest.mark.parametrize("rating", [0, 6, None, True, 4.5, "5"])
def test_the_work_delivered_is_rated_from_1_to_5(rating: Any) -> None:
    request(*SOLD).when(replace(DELIVERY, rating=rating), at=LATER).then_invalid(field="rating")


def test_a_bad_value_is_named_before_the_state_is_judged() -> None:
    """A malformed body gets its 422 even on a job that could not be delivered."""
    request(TAKE).when(replace(DELIVERY, rating=9), at=LATER).then_invalid(field="rating")


# --- the contractor's side --------------------------------------------------------------


def test_the_contractor_counts_its_deliveries_apart_from_its_quotes() -> None:
    registered = contractor.register(
        contractor.RegisterContractor(CONTRACTOR_ID, "Volga Trucks", ("heavy haulage",)),
        meta(T0),
    )
    state = contractor.evolve(None, registered)
    delivered = contractor.deliver(
        state,
        contractor.RecordDelivery(
            request_id=REQUEST_ID,
            deal_id=DEAL_ID,
            service="heavy haulage",
            contracted_on=WON_ON,
            lead_time_days=5,
            planned_on=date(2026, 1, 12),
            completed_on=date(2026, 1, 14),
            days_late=2,
            rating=3,
        ),
        meta(LATER),
    )
    after = contractor.evolve(state, delivered)
    assert (after.deliveries, after.quotes, after.version) == (1, 0, 2)
    assert after.last_used_at is None  # the last use is the last quote


# --- an invariant -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lead_time=st.integers(min_value=0, max_value=60),
    completed_after_win=st.integers(min_value=0, max_value=120),
    rating=st.integers(min_value=1, max_value=5),
)
def test_days_late_are_the_days_past_the_won_day_plus_the_lead_time(
    lead_time: int, completed_after_win: int, rating: int
) -> None:
    completed = WON_ON + timedelta(days=completed_after_win)
    at = datetime.combine(completed, WON_AT.timetz()) + timedelta(days=1)
    accepted = (
        request(TAKE, replace(ESTIMATE, lead_time_days=lead_time), APPROVAL)
        .when(RecordDelivery(completed, rating), at=at)
        .then(HandoffDeliveryRecorded)
    )
    event = accepted.event
    assert isinstance(event, HandoffDeliveryRecorded)
    assert (event.planned_on - event.contracted_on).days == lead_time
    assert event.days_late == max(0, completed_after_win - lead_time)
    assert (event.days_late > 0) == (event.completed_on > event.planned_on)


# --- the handler: one atomic append, and the read model ---------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    yield opened
    opened.close()


def _sold_job(
    driver: PipelineDriver, clock: ManualClock, *, own_equipment: bool = False
) -> tuple[UUID, UUID, UUID]:
    """A deal won today whose logistics request priced the job (lead time 3 days)."""
    contractor_id = driver.contractor("Volga Trucks", "truck")
    deal_id = driver.deal_from_lead("transport", manager="mia.manager")
    request_id = driver.request(deal_id, "logistics")
    driver.take(request_id, "lev")
    driver.estimate(request_id, "900.00", None if own_equipment else contractor_id)
    driver.send_handoff(request_id, APPROVAL)
    driver.proposal(deal_id, ("transport", "1000.00"))
    driver.contract(deal_id, "C-1")
    driver.invoice(deal_id, "INV-1", "1000.00")
    driver.close(deal_id, "won")
    clock.advance(days=10)
    return deal_id, request_id, contractor_id


def _deliver(
    driver: PipelineDriver, request_id: UUID, completed_on: date, rating: int = 4
) -> CommandResult:
    command = RecordDelivery(completed_on, rating, "two days late: a broken axle")
    return record_delivery(driver.store, RULES, request_id, command, driver.ctx("lev"))


def test_the_delivery_is_one_atomic_append_on_the_request_its_deal_and_the_contractor(
    store: EventStore,
) -> None:
    clock = ManualClock(T0)
    driver = PipelineDriver(store, clock)
    deal_id, request_id, contractor_id = _sold_job(driver, clock)
    before = store.last_position()
    won_on = T0.date()
    result = _deliver(driver, request_id, won_on + timedelta(days=5))
    written = list(store.read_rows(before, 1_000_000))
    assert [(UUID(str(r[1])), r[3]) for r in written] == [
        (request_id, "HandoffDeliveryRecorded"),
        (deal_id, "DealHandoffNoted"),
        (contractor_id, "ContractorDeliveryRecorded"),
    ]
    assert result.stream_id == request_id
    state, _ = load_handoff(store, RULES, request_id)
    assert state.delivery is not None
    assert (state.delivery.planned_on, state.delivery.days_late) == (
        won_on + timedelta(days=3),
        2,
    )
    recorded = store.load(contractor_id)[-1].event
    assert isinstance(recorded, contractor.ContractorDeliveryRecorded)
    assert (recorded.request_id, recorded.deal_id, recorded.days_late, recorded.rating) == (
        request_id,
        deal_id,
        2,
        4,
    )
    # a second delivery, and one on own equipment, write nothing
    _, own_request, _ = _sold_job(driver, clock, own_equipment=True)
    last = store.last_position()
    with pytest.raises(RuleViolation) as again:
        _deliver(driver, request_id, won_on + timedelta(days=6))
    assert again.value.rule == "already_delivered"
    with pytest.raises(RuleViolation) as own:
        _deliver(driver, own_request, clock().date())
    assert own.value.rule == "no_contractor"
    assert store.last_position() == last


def test_the_deliveries_read_model_rebuilt_equals_the_one_built_page_by_page(
    store: EventStore, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    driver = PipelineDriver(store, clock)
    jobs = [_sold_job(driver, clock) for _ in range(3)]
    for n, (_, request_id, _) in enumerate(jobs):
        _deliver(driver, request_id, clock().date() - timedelta(days=n * 4), rating=n + 2)
    projections = read_model_projections(FUNNELS, RULES)
    paged = ReadModelDatabase(tmp_path / "paged.duckdb")
    whole = ReadModelDatabase(tmp_path / "whole.duckdb")
    try:
        Projector(store, paged, projections, page_size=2).catch_up()
        rebuild(store, whole, read_model_projections(FUNNELS, RULES))
        tables = ("contractor_deliveries", "contractors", "handoffs")
        keys = {"contractor_deliveries": "position", "contractors": "contractor_id"}

        def dump(db: ReadModelDatabase, table: str) -> list[Any]:
            cursor = db.cursor()
            try:
                key = keys.get(table, "request_id")
                return cursor.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            finally:
                cursor.close()

        for table in tables:
            assert dump(paged, table) == dump(whole, table), table
        cursor = whole.cursor()
        try:
            delivered = cursor.execute(
                "SELECT request_id, lead_time_days, actual_days, days_late, overrun, rating "
                "FROM contractor_deliveries ORDER BY position"
            ).fetchall()
        finally:
            cursor.close()
        # job n won on day 10n, completed on day 30 - 4n (the clock moved 10 days per win)
        assert [row[0] for row in delivered] == [str(j[1]) for j in jobs]
        assert [row[1:] for row in delivered] == [
            (3, 30, 27, True, 2),
            (3, 16, 13, True, 3),
            (3, 2, 0, False, 4),
        ]
    finally:
        paged.close()
        whole.close()
