"""Request for calculation → proposal → launch → act (seed 002), one Given/When/Then per
rule of the deciders (aggregates/handoff.py, deal.py, project.py, billing.py), the
handlers' atomic writes on the real event store, and the invariants as properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import billing, deal, handoff, project
from aggregates.base import DomainEvent
from aggregates.deal import (
    CalculatedLine,
    CreateDeal,
    DealProposalRecorded,
    HandoffView,
    NoteHandoff,
    RecordProposalFromCalculation,
)
from aggregates.errors import DomainError, InvalidValue, RuleViolation
from aggregates.handoff import (
    CalculatedService,
    CalculatedServiceLine,
    CreateHandoff,
    HandoffCalculated,
    MoveHandoffToStage,
    RecordCalculation,
    TakeHandoff,
)
from aggregates.project import (
    AddTask,
    LaunchServices,
    OfferedService,
    ProjectActRecorded,
    ProjectServicesLaunched,
    RecordAct,
    ServiceLaunch,
    TaskAdded,
    TaskCompleted,
)
from commands.context import CommandContext
from commands.deals import handle_deal_command, load_deal
from commands.handoffs import create_handoff, handle_handoff_command
from commands.projects import (
    create_project_for_deal,
    launch_services,
    load_billing,
    load_project,
    record_act,
)
from event_store import EventStore, NewEvent
from leadledger.wiring import event_codec
from tests.conftest import FakeClock
from tests.gwt_deals import DEAL, HANDOFF, RULES, STEP, T0, meta
from tests.test_project_rules import BILLING, NO_INVOICES, invoices, story

DEAL_ID = UUID("00000000-0000-4000-8000-0000000d0001")
REQUEST_ID = UUID("00000000-0000-4000-8000-0000000e0001")
OTHER_REQUEST = UUID("00000000-0000-4000-8000-0000000e0002")
EXPERT = "erik.expert"

AUDIT = CalculatedServiceLine(
    "Financial audit", Decimal("1500.00"), Decimal("10"), "day", Decimal("80")
)
REPORT = CalculatedServiceLine("Audit report", Decimal("20000"), hours=Decimal("16"))


def experts_request(*commands: Any) -> tuple[DomainEvent, ...]:
    return HANDOFF.history(CreateHandoff(REQUEST_ID, DEAL_ID, "experts"), *commands)


def calculated(*more: Any) -> tuple[DomainEvent, ...]:
    return experts_request(TakeHandoff(EXPERT), RecordCalculation((AUDIT, REPORT)), *more)


# --- the calculation on the request ----------------------------------------------------


def test_experts_price_the_services_and_the_total_is_the_sum_of_the_amounts() -> None:
    accepted = (
        HANDOFF.given(*experts_request(TakeHandoff(EXPERT)))
        .when(RecordCalculation((AUDIT, REPORT), notes="  two weeks on site "))
        .then(HandoffCalculated, total=Decimal("35000.00"), notes="two weeks on site")
    )
    assert accepted.event.services == (  # type: ignore[attr-defined]
        CalculatedService(
            "Financial audit",
            Decimal("10.00"),
            "day",
            Decimal("1500.00"),
            Decimal("80.00"),
            Decimal("15000.00"),
        ),
        CalculatedService(
            "Audit report", None, None, Decimal("20000.00"), Decimal("16.00"), Decimal("20000.00")
        ),
    )
    state = accepted.state
    assert state.calculation is not None
    assert state.price == Decimal("35000.00")
    # the deal's view carries the total as the request's price
    assert state.view(RULES.require_department("experts")).price == Decimal("35000.00")


def test_a_new_calculation_replaces_the_one_before_until_the_request_is_ready() -> None:
    again = HANDOFF.given(*calculated()).when(RecordCalculation((REPORT,))).then(HandoffCalculated)
    assert again.state.price == Decimal("20000.00")
    HANDOFF.given(*calculated(MoveHandoffToStage("approval"))).when(
        RecordCalculation((REPORT,))
    ).then_violates("request_ready")


def test_a_request_for_calculation_reaches_approval_only_with_its_calculation() -> None:
    HANDOFF.given(*experts_request(TakeHandoff(EXPERT))).when(
        MoveHandoffToStage("approval")
    ).then_violates("outcome_required")
    ready = HANDOFF.given(*calculated()).when(MoveHandoffToStage("approval")).then()
    assert ready.state.status(RULES.require_department("experts")) == "ready"


def test_only_the_experts_calculate_and_only_once_the_request_is_taken() -> None:
    HANDOFF.given(*experts_request()).when(RecordCalculation((AUDIT,))).then_violates("not_taken")
    logistics = HANDOFF.history(
        CreateHandoff(REQUEST_ID, DEAL_ID, "logistics"), TakeHandoff("lev.logistics")
    )
    HANDOFF.given(*logistics).when(RecordCalculation((AUDIT,))).then_violates("wrong_outcome")
    # and the experts record no logistics estimate
    HANDOFF.given(*experts_request(TakeHandoff(EXPERT))).when(
        handoff.RecordEngineeringPlan(Decimal(3))
    ).then_violates("wrong_outcome")


def test_a_calculation_names_each_service_once_with_a_valid_price_quantity_and_hours() -> None:
    taken = HANDOFF.given(*experts_request(TakeHandoff(EXPERT)))
    taken.when(RecordCalculation(())).then_invalid(field="services")
    taken.when(RecordCalculation((AUDIT, replace(REPORT, name=" Financial audit")))).then_invalid(
        field="services[1].name"
    )
    taken.when(RecordCalculation((replace(AUDIT, price=Decimal("-1")),))).then_invalid(
        field="services[0].price"
    )
    taken.when(RecordCalculation((replace(AUDIT, quantity=Decimal(0)),))).then_invalid(
        field="services[0].quantity"
    )
    taken.when(RecordCalculation((replace(REPORT, hours=Decimal("0.001")),))).then_invalid(
        field="services[0].hours"
    )
    too_many = tuple(
        CalculatedServiceLine(f"s{i}", Decimal(1))
        for i in range(handoff.MAX_CALCULATION_SERVICES + 1)
    )
    taken.when(RecordCalculation(too_many)).then_invalid(field="services")


# --- the proposal from the calculation --------------------------------------------------


def expert_deal(status: str = "ready", request_id: UUID = REQUEST_ID) -> tuple[DomainEvent, ...]:
    created = CreateDeal(DEAL_ID, "expert_services", "Audit 2026", "Sercons", "phone", "anna")
    view = HandoffView(
        request_id, "experts", "approval", status, EXPERT, Decimal("35000.00"), None, None, T0
    )
    return DEAL.history(created, NoteHandoff(view))


LINES = (
    CalculatedLine("Financial audit", Decimal("15000.00")),
    CalculatedLine("Audit report", Decimal("20000.00")),
)


def test_the_proposal_takes_the_calculated_services_as_they_are_and_names_the_request() -> None:
    accepted = (
        DEAL.given(*expert_deal())
        .when(RecordProposalFromCalculation(REQUEST_ID, LINES))
        .then(
            DealProposalRecorded,
            services=(
                deal.ServiceLine("Financial audit", Decimal("15000.00")),
                deal.ServiceLine("Audit report", Decimal("20000.00")),
            ),
            total=Decimal("35000.00"),
            calculation_id=REQUEST_ID,
        )
    )
    assert accepted.state.proposal is not None
    assert accepted.state.proposal.calculation_id == REQUEST_ID
    assert accepted.state.amount == Decimal("35000.00")
    done = DEAL.given(*expert_deal("done")).when(RecordProposalFromCalculation(REQUEST_ID, LINES))
    done.then(DealProposalRecorded, calculation_id=REQUEST_ID)


def test_the_calculation_must_be_the_deals_calculated_and_ready() -> None:
    DEAL.given(*expert_deal()).when(
        RecordProposalFromCalculation(OTHER_REQUEST, LINES)
    ).then_violates("calculation_not_of_deal")
    DEAL.given(*expert_deal()).when(RecordProposalFromCalculation(REQUEST_ID, None)).then_violates(
        "calculation_required"
    )
    DEAL.given(*expert_deal()).when(
        RecordProposalFromCalculation(REQUEST_ID, LINES, typed=True)
    ).then_invalid(field="services")
    for status in ("open", "in_work", "rejected", "cancelled"):
        DEAL.given(*expert_deal(status)).when(
            RecordProposalFromCalculation(REQUEST_ID, LINES)
        ).then_violates("calculation_not_ready")


def test_a_typed_proposal_names_no_calculation_and_version_1_proposals_read_as_typed() -> None:
    typed = (
        DEAL.given(*expert_deal())
        .when(deal.RecordProposal((deal.ServiceLine("Audit", Decimal(5)),)))
        .then(DealProposalRecorded, calculation_id=None)
    )
    assert typed.state.proposal is not None
    codec = event_codec()
    stored = orjson.loads(codec.encode(typed.event))
    assert stored["schema_version"] == 2
    del stored["calculation_id"]
    stored["schema_version"] = 1
    old = codec.decode("DealProposalRecorded", orjson.dumps(stored))
    assert isinstance(old, DealProposalRecorded)
    assert (old.calculation_id, old.total) == (None, Decimal("5.00"))


# --- launch -----------------------------------------------------------------------------

OFFERED = (
    OfferedService("Financial audit", Decimal("15000.00"), Decimal("80.00")),
    OfferedService("Audit report", Decimal("20000.00"), Decimal("16.00")),
)


def launch(
    state: project.Project, services: tuple[ServiceLaunch, ...] | None = None, **kw: Any
) -> tuple[ProjectServicesLaunched, tuple[TaskAdded, ...]]:
    command = LaunchServices(kw.get("offered", OFFERED), services, REQUEST_ID)
    return project.launch(state, command, RULES.project, meta(kw.get("at", T0 + STEP)))


def fold(*events: DomainEvent) -> project.Project:
    state = project.fold(list(events))
    assert state is not None
    return state


def test_launching_creates_a_task_per_service_with_the_calculated_hours() -> None:
    created = story()
    launched, tasks = launch(fold(*created))
    assert launched.calculation_id == REQUEST_ID
    assert [(s.service, s.task_id, s.planned_hours) for s in launched.services] == [
        ("Financial audit", "service-1", Decimal("80.00")),
        ("Audit report", "service-2", Decimal("16.00")),
    ]
    assert [(t.task_id, t.title, t.planned_hours, t.assignee) for t in tasks] == [
        ("service-1", "Financial audit", Decimal("80.00"), None),
        ("service-2", "Audit report", Decimal("16.00"), None),
    ]
    state = fold(*created, launched, *tasks)
    assert state.planned_hours == Decimal("96.00")
    assert state.launched_service("Audit report") == launched.services[1]


def test_a_service_is_launched_once() -> None:
    created = story()
    first, tasks = launch(fold(*created), (ServiceLaunch("Audit report", " erik.expert "),))
    assert (tasks[0].assignee, tasks[0].task_id) == ("erik.expert", "service-1")
    state = fold(*created, first, *tasks)
    assert_refused(lambda: launch(state, (ServiceLaunch("Audit report"),)), rule="service_launched")
    rest, more = launch(state)  # the default: every one not launched yet
    assert [(s.service, s.task_id) for s in rest.services] == [("Financial audit", "service-2")]
    done = fold(*created, first, *tasks, rest, *more)
    assert_refused(lambda: launch(done), rule="nothing_to_launch")


def test_launch_names_services_of_the_proposal_and_needs_one() -> None:
    state = fold(*story())
    assert_refused(lambda: launch(state, (ServiceLaunch("Tax advice"),)), field="services[0].name")
    assert_refused(
        lambda: launch(state, (ServiceLaunch("Audit report"), ServiceLaunch("Audit report"))),
        field="services[1].name",
    )
    assert_refused(lambda: launch(state, offered=()), rule="proposal_required")
    assert_refused(lambda: launch(state, ()), field="services")


def test_launch_skips_task_ids_in_use() -> None:
    created = story(AddTask("service-1", "Kick-off"))
    _, tasks = launch(fold(*created), (ServiceLaunch("Audit report"),))
    assert tasks[0].task_id == "service-2"


# --- acts -------------------------------------------------------------------------------


def launched_project(*commands: Any) -> tuple[DomainEvent, ...]:
    created = story(*commands)
    launched, tasks = launch(fold(*created), at=created[-1].at + STEP)
    return (*created, launched, *tasks)


def act(state: project.Project, **fields: Any) -> tuple[ProjectActRecorded, tuple[Any, ...]]:
    body: dict[str, Any] = {
        "number": "A-1",
        "act_date": T0.date() + timedelta(days=1),
        "amount": Decimal("15000"),
        "services": ("Financial audit",),
    }
    body.update(fields)
    return project.record_act(state, RecordAct(**body), RULES.project, meta(T0 + timedelta(days=2)))


def test_an_act_completes_the_tasks_it_covers() -> None:
    events = launched_project()
    recorded, completions = act(fold(*events), invoice_number=" S-1 ")
    assert (recorded.number, recorded.amount, recorded.invoice_number) == (
        "A-1",
        Decimal("15000.00"),
        "S-1",
    )
    assert (recorded.task_ids, recorded.services) == (("service-1",), ("Financial audit",))
    assert [type(c) for c in completions] == [TaskCompleted]
    state = fold(*events, recorded, *completions)
    assert state.task("service-1").completed_at is not None  # type: ignore[union-attr]
    assert state.task("service-2").completed_at is None  # type: ignore[union-attr]
    assert state.act("A-1") is not None


def test_an_act_follows_the_dependencies_of_the_tasks() -> None:
    events = launched_project()
    state = fold(*events)
    depends = project.decide(
        state,
        project.UpdateTask("service-2", {"depends_on": ["service-1"]}),
        RULES.project,
        meta(T0 + 2 * STEP),
    )
    state = project.evolve(state, depends)
    # alone, the report waits for the audit
    assert_refused(lambda: act(state, services=("Audit report",)), rule="dependency_not_done")
    # covering both completes the audit first, whatever the order named
    recorded, completions = act(state, services=("Audit report", "Financial audit"))
    assert [c.task_id for c in completions] == ["service-1", "service-2"]
    assert recorded.task_ids == ("service-2", "service-1")


def test_a_task_is_acted_once_and_an_act_number_once() -> None:
    events = launched_project()
    recorded, completions = act(fold(*events))
    state = fold(*events, recorded, *completions)
    assert_refused(lambda: act(state), rule="act_number_taken")
    assert_refused(lambda: act(state, number="A-2"), rule="task_acted")
    # a task completed by hand may still be acted, and is not completed again
    _, more = act(state, number="A-2", services=(), task_ids=("service-2",))
    assert [c.task_id for c in more] == ["service-2"]


def test_an_act_names_what_it_covers_a_real_day_and_a_positive_amount() -> None:
    state = fold(*launched_project())
    assert_refused(lambda: act(state, services=()), field="services")
    assert_refused(lambda: act(state, services=("Tax advice",)), field="services[0]")
    assert_refused(lambda: act(state, services=(), task_ids=("nope",)), field="task_ids[0]")
    assert_refused(lambda: act(state, amount=Decimal(0)), field="amount")
    assert_refused(lambda: act(state, act_date=date(2026, 1, 9)), field="act_date")


def assert_refused(call: Any, *, rule: str | None = None, field: str | None = None) -> None:
    error: type[DomainError] = RuleViolation if rule is not None else InvalidValue
    with pytest.raises(error) as caught:
        call()
    refusal = caught.value
    if isinstance(refusal, RuleViolation):
        assert refusal.rule == rule, refusal.message
    if isinstance(refusal, InvalidValue):
        assert refusal.field == field, refusal.message


# --- acts on the invoice ----------------------------------------------------------------


def test_an_act_is_recorded_on_its_invoice_up_to_the_invoice_amount() -> None:
    issued = invoices(billing.IssueProjectInvoice("S-1", Decimal(1000), date(2026, 1, 20)))
    first = (
        BILLING.given(NO_INVOICES, *issued)
        .when(billing.RecordActOnInvoice("S-1", "A-1", Decimal(600), date(2026, 1, 6)))
        .then(billing.ProjectInvoiceActed, invoice_acted=Decimal(600))
    )
    invoice = first.state.invoice("S-1")
    assert invoice is not None
    assert (invoice.acted, invoice.acts) == (Decimal(600), ("A-1",))
    first.given.when(
        billing.RecordActOnInvoice("S-1", "A-2", Decimal("400.01"), date(2026, 1, 6))
    ).then_violates("act_over_invoice")
    first.given.when(billing.RecordActOnInvoice("S-1", "A-2", Decimal(400), date(2026, 1, 6))).then(
        invoice_acted=Decimal(1000)
    )
    first.given.when(
        billing.RecordActOnInvoice("S-9", "A-2", Decimal(1), date(2026, 1, 6))
    ).then_invalid(field="invoice_number")


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.integers(1, 600), max_size=8))
def test_the_acted_amount_never_exceeds_the_invoice(amounts: list[int]) -> None:
    state = billing.fold(
        list(invoices(billing.IssueProjectInvoice("S-1", Decimal(1000), date(2026, 1, 20))))
    )
    assert state is not None
    accepted = Decimal(0)
    for n, amount in enumerate(amounts):
        command = billing.RecordActOnInvoice("S-1", f"A-{n}", Decimal(amount), date(2026, 1, 6))
        if accepted + amount > 1000:
            assert_refused(
                lambda b=state, c=command, n=n: billing.decide(b, c, meta(T0 + n * STEP)),
                rule="act_over_invoice",
            )
            continue
        event = billing.decide(state, command, meta(T0 + n * STEP))
        accepted += amount
        state = billing.evolve(state, event)
        invoice = state.invoice("S-1")
        assert invoice is not None
        assert invoice.acted == accepted <= invoice.amount


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.decimals(0, 10_000, places=2),
            st.none() | st.decimals(Decimal("0.01"), 100, places=2),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_total_is_the_sum_of_price_times_quantity(
    lines: list[tuple[Decimal, Decimal | None]],
) -> None:
    services = tuple(
        CalculatedServiceLine(f"service {i}", price, quantity)
        for i, (price, quantity) in enumerate(lines)
    )
    event = handoff.decide(
        HANDOFF.fold(experts_request(TakeHandoff(EXPERT))),  # type: ignore[arg-type]
        RecordCalculation(services),
        RULES,
        meta(T0 + 3 * STEP),
    )
    assert isinstance(event, HandoffCalculated)
    expected = sum(
        (p if q is None else (p * q).quantize(Decimal("0.01")) for p, q in lines), Decimal(0)
    )
    assert event.total == expected
    assert event.total == sum((s.amount for s in event.services), Decimal(0))


# --- the handlers: each step one atomic write on the real event store -------------------


def ctx(clock: FakeClock, actor: str) -> CommandContext:
    return CommandContext(actor=actor, at=clock.now, command_id=uuid4())


def test_the_chain_through_the_handlers(store: EventStore, clock: FakeClock) -> None:
    seller, expert = "anna.sales", EXPERT
    created = deal.create(
        CreateDeal(DEAL_ID, "upsell", "Audit 2026", "Sercons", "phone", seller),
        RULES,
        ctx(clock, seller).meta,
    )
    store.append([NewEvent(DEAL_ID, 1, created)])
    create_handoff(store, RULES, CreateHandoff(REQUEST_ID, DEAL_ID, "experts"), ctx(clock, seller))
    for step in (
        TakeHandoff(expert),
        RecordCalculation((AUDIT, REPORT)),
        MoveHandoffToStage("approval"),
    ):
        clock.advance(minutes=10)
        handle_handoff_command(store, RULES, REQUEST_ID, step, ctx(clock, expert))
    clock.advance(minutes=10)
    handle_deal_command(
        store, RULES, DEAL_ID, RecordProposalFromCalculation(REQUEST_ID), ctx(clock, seller)
    )
    state, _ = load_deal(store, DEAL_ID)
    assert state.proposal is not None
    assert state.proposal.calculation_id == REQUEST_ID
    assert [(s.name, s.price) for s in state.proposal.services] == [
        ("Financial audit", Decimal("15000.00")),
        ("Audit report", Decimal("20000.00")),
    ]
    for sale in (
        deal.RecordContract("C-1", clock.now.date()),
        deal.IssueInvoice("S-1", Decimal("35000"), "main"),
        deal.CloseDeal("won"),
    ):
        handle_deal_command(store, RULES, DEAL_ID, sale, ctx(clock, seller))
    created_project = create_project_for_deal(store, RULES, DEAL_ID, ctx(clock, "process"))
    project_id = created_project.stream_id
    before = len(store.load(project_id))
    launch_services(store, RULES, project_id, None, ctx(clock, "olga.pm"))
    after = load_project(store, project_id)
    assert len(store.load(project_id)) == before + 3  # the launch and its two tasks
    assert [(t.task_id, t.planned_hours) for t in after.tasks] == [
        ("service-1", Decimal("80.00")),
        ("service-2", Decimal("16.00")),
    ]
    clock.advance(days=1)
    command = RecordAct("A-1", clock.now.date(), Decimal("15000"), ("Financial audit",), (), "S-1")
    record_act(store, RULES, project_id, command, ctx(clock, "olga.pm"))
    done = load_project(store, project_id)
    assert done.task("service-1").completed_at is not None  # type: ignore[union-attr]
    bills = load_billing(store, project_id)
    assert bills is not None
    invoice = bills.invoice("S-1")
    assert invoice is not None
    assert (invoice.acted, invoice.acts) == (Decimal("15000.00"), ("A-1",))
    # over the invoice: nothing of the act is written
    clock.advance(hours=1)
    too_much = RecordAct("A-2", clock.now.date(), Decimal("20001"), ("Audit report",), (), "S-1")
    length = len(store.load(project_id))
    assert_refused(
        lambda: record_act(store, RULES, project_id, too_much, ctx(clock, "olga.pm")),
        rule="act_over_invoice",
    )
    assert len(store.load(project_id)) == length
    assert load_project(store, project_id).task("service-2").completed_at is None  # type: ignore[union-attr]


# --- a property: random launches and acts keep the chain's invariants -------------------

SERVICE_NAMES = [s.name for s in OFFERED] + ["Tax advice"]
chain_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("launch"),
            st.none() | st.lists(st.sampled_from(SERVICE_NAMES), max_size=2).map(tuple),
        ),
        st.tuples(
            st.just("depend"),
            st.tuples(
                st.sampled_from(["service-1", "service-2"]),
                st.sampled_from(["service-1", "service-2"]),
            ),
        ),
        st.tuples(
            st.just("act"),
            st.tuples(
                st.sampled_from(["A-1", "A-2", "A-3"]),
                st.lists(st.sampled_from(SERVICE_NAMES), max_size=2).map(tuple),
                st.lists(st.sampled_from(["service-1", "service-2", "t9"]), max_size=2).map(tuple),
            ),
        ),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(steps=chain_steps)
def test_random_launches_and_acts_keep_the_invariants(steps: list[tuple[str, Any]]) -> None:
    codec = event_codec()
    events: list[DomainEvent] = list(story())
    state = fold(*events)
    at = T0 + STEP
    for kind, arg in steps:
        at += STEP
        new: list[DomainEvent]
        try:
            if kind == "launch":
                services = None if arg is None else tuple(ServiceLaunch(n) for n in arg)
                launched, tasks = launch(state, services, at=at)
                new = [launched, *tasks]
            elif kind == "depend":
                command = project.UpdateTask(arg[0], {"depends_on": [arg[1]]})
                new = [project.decide(state, command, RULES.project, meta(at))]
            else:
                number, names, task_ids = arg
                acting = RecordAct(number, at.date(), Decimal(10), names, task_ids)
                recorded, completions = project.record_act(state, acting, RULES.project, meta(at))
                new = [recorded, *completions]
        except (RuleViolation, InvalidValue):
            continue
        for event in new:
            state = project.evolve(state, event)
        events += new
    # each service launched once, as one task of its name
    names = [s.service for s in state.launched]
    assert len(names) == len(set(names))
    for service in state.launched:
        task = state.task(service.task_id)
        assert task is not None
        assert task.title == service.service
    # each task acted once, and complete; no completed task waits for another
    acted = [t for a in state.acts for t in a.task_ids]
    assert len(acted) == len(set(acted))
    for task_id in acted:
        assert state.task(task_id).completed_at is not None  # type: ignore[union-attr]
    for task in state.tasks:
        if task.completed_at is not None:
            for dependency in task.depends_on:
                assert state.task(dependency).completed_at is not None  # type: ignore[union-attr]
    # replaying the stored form rebuilds the same state
    stored = [codec.decode(e.type, codec.encode(e)) for e in events]
    assert project.fold(stored) == state
