"""Properties of deals and their hand-off requests, driven through the real command handlers
on a real event store (hypothesis).

A deal is created from a qualified lead; then random commands on the deal and on its
hand-off requests interleave: stage moves, estimate rounds and their requests (derived
from the round, or sent by hand), taking, logistics estimates (a contractor from the
directory, one not in it, or the company's own equipment), engineering plans, request
stage moves, rejections, cancellations, reminders, proposals, contracts, invoices,
closing and the won deal's project (as the project creation makes it). Refusals are part
of the game. After every step:

- the deal's view of each of its requests equals the request's own state, field for
  field, in the order the requests were opened (both are written in one atomic append);
- the deal's invariants hold (a closed deal has no request still open; only a won deal has
  a project, whose billing holds the deal's invoices), and a refused command wrote nothing;
- a contractor's quotes are exactly the logistics estimates that named it.

Replaying every stream after the codec's encode → decode rebuilds the very same deal,
request and contractor states as the events decided by the handlers.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from aggregates import billing, contractor, deal, handoff, project
from aggregates.base import DomainEvent
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from commands.context import CommandContext, CommandFailed
from commands.contractors import load_contractor_records, register_contractor
from commands.deals import convert_lead, deal_id_for_lead, handle_deal_command, load_deal_records
from commands.handoffs import (
    create_handoff,
    handle_handoff_command,
    load_handoff_records,
    request_id_for,
    request_id_for_round,
)
from commands.projects import create_project_for_deal, load_billing, load_project
from event_store import EventStore, NewEvent, open_event_store
from leadledger.wiring import event_codec
from tests.factories import LeadDriver, ManualClock
from tests.gwt_deals import FUNNELS, RULES

SQLITE_EXAMPLES = settings(max_examples=60, deadline=None)
REPLAY_EXAMPLES = settings(max_examples=30, deadline=None)
POSTGRES_EXAMPLES = settings(max_examples=10, deadline=None)

# --- the event store, keeping what the handlers decided ---------------------------------


class RecordingStore(EventStore):
    """The event store, also keeping every event of a successful append as it was decided
    (before the codec wrote it)."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner.recorder, inner.codec, inner._factory)
        self.appended: list[NewEvent] = []

    def append(self, new_events: Sequence[NewEvent], **kwargs: Any) -> list[int]:
        positions = super().append(new_events, **kwargs)
        self.appended.extend(new_events)
        return positions


@contextmanager
def sqlite_store() -> Iterator[RecordingStore]:
    """A fresh SQLite event store in a temporary directory, for one example."""
    with tempfile.TemporaryDirectory() as directory:
        store = RecordingStore(
            open_event_store(f"sqlite:///{directory}/events.sqlite", event_codec())
        )
        try:
            yield store
        finally:
            store.close()


# --- steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DealMove:
    stage: str


@dataclass(frozen=True)
class DealSell:
    """The deal's next sale step: proposal, contract, invoice, then won."""


@dataclass(frozen=True)
class Drive:
    """What the estimate hand-off and the people would do next: enter the estimate stage,
    ask the round's next department, work its request, complete the round (or return
    from it when a request of the round was rejected); then sell up to the invoice."""


@dataclass(frozen=True)
class DealPropose:
    services: tuple[deal.ServiceLine, ...]


@dataclass(frozen=True)
class DealContract:
    number: str


@dataclass(frozen=True)
class DealInvoice:
    number: str
    amount: Decimal
    organisation: str


@dataclass(frozen=True)
class DealClose:
    outcome: str
    reason: str | None


@dataclass(frozen=True)
class RoundComplete:
    stale: bool
    """Name the round before the current one."""


@dataclass(frozen=True)
class RoundReturn:
    index: int
    reason: str


@dataclass(frozen=True)
class Ask:
    """Open a request: for the deal's estimate round (its id derived from the round), or
    by hand (its id from the command, or a fresh one)."""

    department: str
    how: str


@dataclass(frozen=True)
class Take:
    index: int
    assignee: str


@dataclass(frozen=True)
class Estimate:
    index: int
    supplier: str
    """'volga' or 'kama' (in the directory), 'unknown' (not in it) or 'own' equipment."""
    service: str
    cost: Decimal
    days: int
    rating: int | None


@dataclass(frozen=True)
class Plan:
    index: int
    hours: Decimal


@dataclass(frozen=True)
class RequestMove:
    index: int
    stage: str


@dataclass(frozen=True)
class Reject:
    index: int
    reason: str


@dataclass(frozen=True)
class Cancel:
    """What the estimate hand-off sends when the request lost its purpose."""

    index: int
    reason: str


@dataclass(frozen=True)
class StartProject:
    """The project creation's command for the deal (refused unless it is won)."""


@dataclass(frozen=True)
class Remind:
    index: int


@dataclass(frozen=True)
class Escalate:
    index: int


@dataclass(frozen=True)
class Work:
    """The request's next natural step: take, outcome, approval, done."""

    index: int


Step = (
    DealMove
    | DealSell
    | Drive
    | DealPropose
    | DealContract
    | DealInvoice
    | DealClose
    | RoundComplete
    | RoundReturn
    | Ask
    | Take
    | Estimate
    | Plan
    | RequestMove
    | Reject
    | Cancel
    | Remind
    | Escalate
    | StartProject
    | Work
)

# --- strategies -------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, roughly in proportion to its weight (st.one_of drops repeats
    of the very same strategy object, so repeat fresh copies)."""
    return st.one_of(*[s.map(_same) for w, s in choices for _ in range(w)])


DEAL_STAGES = [*sorted({s.id for f in RULES.deal_funnels.values() for s in f.stages}), "archive"]
REQUEST_STAGES = ["in_work", "approval", "done", "new", "rejected", "archive"]
# mostly the request opened last, which the story is about; sometimes an earlier one
index = weighted((3, st.just(-1)), (2, st.integers(min_value=0, max_value=5)))
texts = st.sampled_from(["no trucks free", "out of scope", "no budget", "  "])

steps_strategy: st.SearchStrategy[Step] = weighted(
    (4, st.just(DealMove("estimate"))),
    (1, st.just(DealMove("new"))),
    (2, st.builds(DealMove, st.sampled_from(DEAL_STAGES))),
    (2, st.just(DealSell())),
    (14, st.just(Drive())),
    (
        1,
        st.builds(
            DealPropose,
            st.lists(
                st.builds(
                    deal.ServiceLine,
                    st.sampled_from(["design", "haulage", " "]),
                    st.sampled_from([Decimal("100.00"), Decimal("0.5"), Decimal("-1")]),
                ),
                max_size=2,
            ).map(tuple),
        ),
    ),
    (1, st.builds(DealContract, st.sampled_from(["C-1", " "]))),
    (
        1,
        st.builds(
            DealInvoice,
            st.sampled_from(["INV-1", "INV-2"]),
            st.sampled_from([Decimal("10.00"), Decimal(0)]),
            st.sampled_from(["main", "simplified", "offshore"]),
        ),
    ),
    (2, st.builds(DealClose, st.sampled_from(["won", "lost", "lost", "draw"]), st.none() | texts)),
    (3, st.just(RoundComplete(stale=False))),
    (1, st.just(RoundComplete(stale=True))),
    (2, st.builds(RoundReturn, index, texts)),
    (5, st.builds(Ask, st.sampled_from(["logistics", "engineering"]), st.just("round"))),
    (
        2,
        st.builds(
            Ask,
            # a department that does not exist, now and then
            st.sampled_from(["logistics", "engineering"] * 3 + ["legal"]),
            st.sampled_from(["command", "fresh"]),
        ),
    ),
    (2, st.builds(Take, index, st.sampled_from(["lena", "egor", " "]))),
    (
        3,
        st.builds(
            Estimate,
            index,
            # mostly valid values, repeated to weigh them
            st.sampled_from(["volga", "volga", "kama", "kama", "unknown", "own"]),
            st.sampled_from(["haulage", "haulage", "storage", "crane"]),
            st.sampled_from([Decimal("1200.50")] * 3 + [Decimal("0"), Decimal("-1")]),
            st.sampled_from([5, 5, 0, 4000]),
            st.sampled_from([4, 4, 4, 1, None, 6]),
        ),
    ),
    (1, st.builds(Plan, index, st.sampled_from([Decimal("12.5"), Decimal(0)]))),
    (3, st.builds(RequestMove, index, st.sampled_from(REQUEST_STAGES))),
    (2, st.builds(Reject, index, texts)),
    (2, st.builds(Cancel, index, texts)),
    (3, st.builds(Remind, index)),
    (3, st.builds(Escalate, index)),
    (2, st.just(StartProject())),
    (10, st.builds(Work, index)),
)
# seconds since the previous command, and the command
timed_steps = st.tuples(st.integers(min_value=1, max_value=6 * 3600), steps_strategy)
scenarios = st.tuples(
    st.sampled_from(["turnkey", "transport", "upsell"]),
    st.one_of(
        st.lists(timed_steps, min_size=1, max_size=30),
        st.lists(timed_steps, min_size=20, max_size=40),
    ),
)

# --- running a scenario -----------------------------------------------------------------


@dataclass
class World:
    store: RecordingStore
    clock: ManualClock
    deal_id: UUID
    contractors: dict[str, UUID]
    requests: list[tuple[UUID, str]] = field(default_factory=list)
    """Every request opened for the deal, in order, with its department."""
    seen: Counter[str] = field(default_factory=Counter)
    """Event types appended and refusals met (rules and fields), for the vacuity guard."""

    def ctx(self, actor: str = "anna.sales") -> CommandContext:
        return CommandContext.new(actor=actor, clock=self.clock)

    def deal(self) -> deal.Deal:
        state = deal.fold([r.event for r in load_deal_records(self.store, self.deal_id)])
        assert state is not None
        return state

    def request(self, request_id: UUID) -> handoff.HandoffRequest:
        state = handoff.fold([r.event for r in load_handoff_records(self.store, request_id)], RULES)
        assert state is not None
        return state

    def pick(self, n: int) -> tuple[UUID, str] | None:
        return self.requests[n % len(self.requests)] if self.requests else None


def open_world(store: RecordingStore, funnel: str) -> World:
    """A deal in ``funnel`` converted from a qualified lead, and two contractors."""
    clock = ManualClock()
    driver = LeadDriver(store, clock=clock)
    lead_id = driver.create(lead_id=uuid4()).stream_id
    driver.assess(lead_id)
    driver.qualify(lead_id)
    convert_lead(store, FUNNELS, RULES, lead_id, funnel, driver.context())
    contractors = {"volga": uuid4(), "kama": uuid4()}
    offers = {"volga": ("haulage", "crane"), "kama": ("storage",)}
    for key, contractor_id in contractors.items():
        register = contractor.RegisterContractor(contractor_id, f"{key.title()} Ltd", offers[key])
        register_contractor(store, register, driver.context())
    return World(store, clock, deal_id_for_lead(lead_id), contractors)


def run(store: RecordingStore, funnel: str, steps: list[tuple[int, Step]], *, check: bool) -> World:
    world = open_world(store, funnel)
    if check:
        check_world(world)
    for seconds, step in steps:
        world.clock.advance(seconds=seconds)
        before = store.last_position()
        appended = len(store.appended)
        expected = _expected_round_outcome(world) if check else None
        try:
            send(world, step)
        except (DomainError, CommandFailed) as refusal:
            world.seen[_refusal(refusal)] += 1
            if check:
                assert store.last_position() == before, f"{step!r} was refused but wrote"
            continue
        written = store.appended[appended:]
        world.seen.update(new.event.type for new in written)
        if check:
            ended = [n.event for n in written if isinstance(n.event, ROUND_ENDINGS)]
            if ended:
                assert expected is not None, f"{ended[0]!r} without an estimate round"
                _check_round_outcome(world, expected, ended[0])
            check_world(world)
    return world


def _refusal(refusal: Exception) -> str:
    if isinstance(refusal, (RuleViolation, NotPermitted)):
        return f"rule:{refusal.rule}"
    if isinstance(refusal, InvalidValue):
        return f"field:{refusal.field}"
    return type(refusal).__name__


def send(world: World, step: Step) -> None:
    """Send the step's command through its handler (a step with nothing to act on, such as
    a request step before any request, sends nothing)."""
    store, ctx = world.store, world.ctx()
    match step:
        case DealMove(stage=stage):
            _deal_command(world, deal.MoveDealToStage(stage))
        case DealSell():
            if world.deal().status is deal.DealStatus.WON:  # then the project is next
                create_project_for_deal(store, RULES, world.deal_id, ctx)
            else:
                _deal_command(world, _next_sale(world.deal()))
        case Drive():
            _drive(world, ctx)
        case DealPropose(services=lines):
            _deal_command(world, deal.RecordProposal(lines))
        case DealContract(number=number):
            _deal_command(world, deal.RecordContract(number, world.clock.now.date()))
        case DealInvoice(number=number, amount=amount, organisation=organisation):
            _deal_command(world, deal.IssueInvoice(number, amount, organisation))
        case DealClose(outcome=outcome, reason=reason):
            _deal_command(world, deal.CloseDeal(outcome, reason))
        case RoundComplete(stale=stale):
            _deal_command(world, deal.CompleteEstimate(_round_of(world.deal(), stale)))
        case RoundReturn(index=n, reason=reason):
            picked = world.pick(n)
            if picked is not None:
                round_no = _round_of(world.deal(), stale=False)
                _deal_command(world, deal.ReturnFromEstimate(round_no, picked[0], reason))
        case Ask(department=department, how=how):
            _ask(world, department, how, ctx)
        case StartProject():
            create_project_for_deal(store, RULES, world.deal_id, ctx)
        case Work(index=n):
            picked = world.pick(n)
            if picked is not None:
                command = _next_work(world, *picked)
                if command is not None:
                    handle_handoff_command(store, RULES, picked[0], command, ctx)
        case _:
            picked = world.pick(getattr(step, "index", 0))
            if picked is not None:
                command = _request_command(world, step)
                handle_handoff_command(store, RULES, picked[0], command, ctx)


def _deal_command(world: World, command: deal.DealCommand) -> None:
    handle_deal_command(world.store, RULES, world.deal_id, command, world.ctx())


def _round_of(state: deal.Deal, stale: bool) -> int:
    """The open round's number (one before it when ``stale``); without a round, the
    deal's version, which is no round's."""
    if state.estimate is None:
        return state.version
    return state.estimate.round - 1 if stale else state.estimate.round


def _next_sale(state: deal.Deal) -> deal.DealCommand:
    if state.proposal is None:
        return deal.RecordProposal((deal.ServiceLine("turnkey works", Decimal("5000.00")),))
    if state.contract is None:
        return deal.RecordContract("C-2026-1", state.updated_at.date())
    if not state.invoices:
        return deal.IssueInvoice("INV-1", state.amount, "simplified")
    return deal.CloseDeal("won")


def _drive(world: World, ctx: CommandContext) -> None:
    state = world.deal()
    funnel = RULES.deal_funnels[state.funnel]
    estimate_stages = [s for s in funnel.stages if s.needs]
    if state.estimate is None:
        step = funnel.step_of(state.stage) or 0
        if estimate_stages and step < estimate_stages[0].step:
            _deal_command(world, deal.MoveDealToStage(estimate_stages[0].id))
        elif not state.invoices:  # closing is left to the other steps
            _deal_command(world, _next_sale(state))
        return
    asked = {
        department: request_id
        for request_id, department in world.requests
        if world.request(request_id).round == state.estimate.round
    }
    for department in state.estimate.needs:
        if department not in asked:
            _ask(world, department, "round", ctx)
            return
        command = _next_work(world, asked[department], department)
        request = world.request(asked[department])
        if request.stage == "rejected":
            reason = request.rejection_reason or ""
            back = deal.ReturnFromEstimate(state.estimate.round, request.request_id, reason)
            _deal_command(world, back)
            return
        if not RULES.departments[department].is_ready(request.stage) and command is not None:
            handle_handoff_command(world.store, RULES, asked[department], command, ctx)
            return
    _deal_command(world, deal.CompleteEstimate(state.estimate.round))


def _ask(world: World, department: str, how: str, ctx: CommandContext) -> None:
    state = world.deal()
    round_no: int | None = None
    if how == "round" and state.estimate is not None:
        round_no = state.estimate.round
        request_id = request_id_for_round(world.deal_id, round_no, department)
    elif how == "fresh":
        request_id = uuid4()
    else:
        request_id = request_id_for(ctx.command_id)
    command = handoff.CreateHandoff(request_id, world.deal_id, department, round_no)
    create_handoff(world.store, RULES, command, ctx)
    world.requests.append((request_id, department))


def _estimate(world: World, step: Estimate) -> handoff.RecordLogisticsEstimate:
    own = step.supplier == "own"
    known = world.contractors.get(step.supplier)
    return handoff.RecordLogisticsEstimate(
        service=step.service,
        cost=step.cost,
        lead_time_days=step.days,
        contractor_id=None if own else (known or uuid4()),
        own_equipment=own,
        rating=step.rating,
    )


def _request_command(world: World, step: Step) -> handoff.HandoffCommand:
    match step:
        case Take(assignee=assignee):
            return handoff.TakeHandoff(assignee)
        case Estimate():
            return _estimate(world, step)
        case Plan(hours=hours):
            return handoff.RecordEngineeringPlan(hours, "a plan")
        case RequestMove(stage=stage):
            return handoff.MoveHandoffToStage(stage)
        case Reject(reason=reason):
            return handoff.RejectHandoff(reason)
        case Cancel(reason=reason):
            return handoff.CancelHandoff(reason)
        case Remind():
            return handoff.RemindHandoffNotTaken("department.team")
        case Escalate():
            return handoff.EscalateHandoffNotTaken("department.head")
    raise AssertionError(f"not a request step: {step!r}")


def _next_work(world: World, request_id: UUID, department: str) -> handoff.HandoffCommand | None:
    request = world.request(request_id)
    if request.assignee is None:
        return handoff.TakeHandoff("egor" if department == "engineering" else "lena")
    if department == "engineering" and request.engineering is None:
        return handoff.RecordEngineeringPlan(Decimal(8), None)
    if department == "logistics" and request.logistics is None:
        return handoff.RecordLogisticsEstimate(
            service="haulage",
            cost=Decimal("1200.50"),
            lead_time_days=3,
            contractor_id=world.contractors["volga"],
            rating=4,
        )
    return {
        "in_work": handoff.MoveHandoffToStage("approval"),
        "approval": handoff.MoveHandoffToStage("done"),
    }.get(request.stage)


# --- checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundOutcome:
    """What completing or returning from the round should record, from the requests'
    own states before the command."""

    round: int
    price: Decimal | None
    estimated_by: tuple[str, ...]
    ready_at: Any
    started_at: Any
    return_stage: str
    ready_stage: str


ROUND_ENDINGS = (deal.DealEstimateReady, deal.DealEstimateRejected)


def _expected_round_outcome(world: World) -> RoundOutcome | None:
    estimate = world.deal().estimate
    if estimate is None:
        return None
    requests = [world.request(rid) for rid, _ in world.requests]
    of_round = {r.department: r for r in requests if r.round == estimate.round}
    ready = [
        of_round[d]
        for d in estimate.needs
        if d in of_round and RULES.departments[d].is_ready(of_round[d].stage)
    ]
    complete = len(ready) == len(estimate.needs)
    return RoundOutcome(
        round=estimate.round,
        price=sum((r.price or Decimal(0) for r in ready), Decimal(0)) if complete else None,
        estimated_by=tuple(dict.fromkeys(r.assignee for r in ready if r.assignee)),
        ready_at=max((r.ready_at for r in ready if r.ready_at), default=None),
        started_at=estimate.started_at,
        return_stage=estimate.return_stage,
        ready_stage=estimate.ready_stage,
    )


def _check_round_outcome(world: World, expected: RoundOutcome, last: DomainEvent) -> None:
    state = world.deal()
    if isinstance(last, deal.DealEstimateReady):
        assert expected.price is not None, "the round completed with an estimate not ready"
        assert (last.round, last.price, last.estimated_by) == (
            expected.round,
            expected.price,
            expected.estimated_by,
        )
        assert last.took_seconds == (expected.ready_at - expected.started_at).total_seconds()
        assert (last.to_stage, state.stage) == (expected.ready_stage, expected.ready_stage)
    else:
        assert isinstance(last, deal.DealEstimateRejected)
        request = world.request(last.request_id)
        assert (last.round, last.department) == (expected.round, request.department)
        assert (request.round, request.stage) == (expected.round, "rejected")
        assert (last.to_stage, state.stage) == (expected.return_stage, expected.return_stage)


def check_world(world: World) -> None:
    records = load_deal_records(world.store, world.deal_id)
    state = deal.fold([r.event for r in records])
    assert state is not None
    assert [r.version for r in records] == list(range(1, len(records) + 1))
    assert state.version == len(records)
    check_deal(state, records[-1].event if records else None, records)
    views = []
    for request_id, department in world.requests:
        request = check_request(world, request_id, department)
        views.append(request.view(RULES.departments[department]))
    assert list(state.handoffs) == views, "the deal's view disagrees with its requests"
    if state.project_id is not None:
        assert state.status is deal.DealStatus.WON
        made = load_project(world.store, state.project_id)
        bills = load_billing(world.store, state.project_id)
        assert (made.deal_id, made.lead_id) == (state.deal_id, state.lead_id)
        assert bills is not None
        assert [(i.number, i.amount, i.issued_on, i.deal_id) for i in bills.invoices] == [
            (i.number, i.amount, i.issued_on, state.deal_id) for i in state.invoices
        ]
    check_quotes(world)


def check_deal(state: deal.Deal, last: DomainEvent | None, records: list[Any]) -> None:
    funnel = RULES.deal_funnels[state.funnel]
    stage = funnel.stage(state.stage)
    assert stage is not None
    is_open = state.status is deal.DealStatus.OPEN
    assert is_open == (state.closed_at is None)
    if state.status is deal.DealStatus.LOST:
        assert state.close_reason
    if state.status is deal.DealStatus.WON:
        assert state.invoices
    if not is_open:
        assert not state.open_requests(), "a closed deal has a request still open"
    if state.estimate is None:
        assert not (is_open and stage.needs), "an open deal in an estimate stage has no round"
    else:
        assert is_open
        assert state.estimate.stage == state.stage
        assert state.estimate.needs == stage.needs
        assert state.estimate.ready_stage == stage.ready_stage
        opened = records[state.estimate.round - 1].event
        assert isinstance(opened, deal.DealStageChanged)
        assert (opened.to_stage, opened.at) == (state.stage, state.estimate.started_at)
    if state.invoices:
        assert state.contract is not None
    if state.contract is not None:
        assert state.proposal is not None
    if state.proposal is not None:
        assert state.amount == state.proposal.total
    numbers = [i.number for i in state.invoices]
    assert len(numbers) == len(set(numbers))
    if state.estimate_result is not None:
        assert state.estimate_result.took_seconds >= 0
    assert last is None or state.updated_at == last.at


def check_request(world: World, request_id: UUID, department: str) -> handoff.HandoffRequest:
    records = load_handoff_records(world.store, request_id)
    request = handoff.fold([r.event for r in records], RULES)
    assert request is not None
    assert request.version == len(records)
    assert (request.deal_id, request.department) == (world.deal_id, department)
    config = RULES.departments[department]
    assert config.funnel.stage(request.stage) is not None
    if config.is_ready(request.stage):
        assert request.ready_at is not None
        assert (request.logistics or request.engineering) is not None
    if request.stage == config.first_stage:
        assert request.assignee is None
    if department == "logistics":
        assert request.engineering is None
    else:
        assert request.logistics is None
    return request


def check_quotes(world: World) -> None:
    """Each contractor's quotes are the logistics estimates that named it, one for one."""
    estimates: dict[UUID, list[UUID]] = {cid: [] for cid in world.contractors.values()}
    for request_id, _ in world.requests:
        for record in load_handoff_records(world.store, request_id):
            event = record.event
            if isinstance(event, handoff.HandoffLogisticsEstimated) and event.contractor_id:
                estimates.setdefault(event.contractor_id, []).append(event.command_id)
    for contractor_id, named in estimates.items():
        records = load_contractor_records(world.store, contractor_id)
        state = contractor.fold([r.event for r in records])
        assert state is not None, f"an estimate named {contractor_id}, in no directory"
        assert state.quotes == len(named)
        quoted = [r.event.command_id for r in records[1:]]
        assert all(isinstance(r.event, contractor.ContractorQuoteRecorded) for r in records[1:])
        assert sorted(quoted) == sorted(named)


def check_replay(world: World) -> None:
    """Every stream, read back and passed once more through encode → decode, rebuilds the
    state the handlers' own events build."""
    codec = event_codec()
    decided: dict[UUID, list[DomainEvent]] = {}
    for new in world.store.appended:
        decided.setdefault(new.stream_id, []).append(new.event)
    streams: list[tuple[UUID, Any]] = [(world.deal_id, deal.fold)]
    streams += [(rid, lambda events: handoff.fold(events, RULES)) for rid, _ in world.requests]
    streams += [(cid, contractor.fold) for cid in world.contractors.values()]
    project_id = world.deal().project_id
    if project_id is not None:
        streams += [
            (project_id, project.fold),
            (billing.billing_stream_id(project_id), billing.fold),
        ]
    for stream_id, fold in streams:
        stored = [r.event for r in world.store.load(stream_id)]
        assert stored == decided[stream_id]
        again = [codec.decode(codec.topic(e), codec.encode(e)) for e in stored]
        assert again == stored
        rebuilt = fold(again)
        assert rebuilt is not None
        assert rebuilt == fold(decided[stream_id])


# --- properties -------------------------------------------------------------------------


def test_a_deal_and_its_requests_never_disagree_on_sqlite() -> None:
    @SQLITE_EXAMPLES
    @given(scenarios)
    def prop(scenario: tuple[str, list[tuple[int, Step]]]) -> None:
        with sqlite_store() as store:
            run(store, *scenario, check=True)

    prop()


def test_replaying_decoded_events_rebuilds_deals_requests_and_contractors() -> None:
    @REPLAY_EXAMPLES
    @given(scenarios)
    def prop(scenario: tuple[str, list[tuple[int, Step]]]) -> None:
        with sqlite_store() as store:
            world = run(store, *scenario, check=False)
            check_replay(world)
            check_quotes(world)

    prop()


def test_a_deal_and_its_requests_never_disagree_on_postgresql(pg_schema_url: str) -> None:
    store = RecordingStore(open_event_store(pg_schema_url, event_codec()))
    try:

        @POSTGRES_EXAMPLES
        @given(scenarios)
        def prop(scenario: tuple[str, list[tuple[int, Step]]]) -> None:
            store.appended.clear()
            world = run(store, *scenario, check=True)
            check_replay(world)

        prop()
    finally:
        store.close()


def test_the_scenarios_reach_every_outcome_of_deals_and_requests() -> None:
    """Guards the properties against vacuity: the steps do drive deals and requests
    through estimate rounds, quotes, closing and the main refusals."""
    seen: Counter[str] = Counter()

    def collect(scenario: tuple[str, list[tuple[int, Step]]]) -> None:
        with sqlite_store() as store:
            seen.update(run(store, *scenario, check=False).seen)

    # a returned round needs a request rejected while its round is still the deal's: a
    # few fixed seeds together reach it (one seed's 80 examples may not)
    for fixed in (1, 3, 5, 8):
        seed(fixed)(
            settings(max_examples=50, deadline=None, database=None)(given(scenarios)(collect))
        )()
    expected_events = {t.__name__ for t in (*deal.DEAL_EVENT_TYPES, *handoff.HANDOFF_EVENT_TYPES)}
    expected_events.remove(deal.DealCreated.__name__)  # every world starts with one
    # a won deal is rare in these worlds (it needs proposal, contract and invoice first);
    # its project is driven end to end in test_records_agree and the deal's GWT tests
    expected_events.discard(deal.DealProjectStarted.__name__)
    # so is a delivery (its deal won): driven in test_contractor_delivery and its HTTP tests
    expected_events.discard(handoff.HandoffDeliveryRecorded.__name__)
    # the worlds' departments record estimates and plans; the experts' calculation is driven
    # in test_calculation_chain (decider, handlers, properties) and its HTTP test
    expected_events.discard(handoff.HandoffCalculated.__name__)
    # the worlds' invoices are no prepayments: their approval is driven in
    # test_prepayment_approval (decider and HTTP)
    expected_events.discard(deal.DealInvoiceApproved.__name__)
    expected_events.discard(deal.DealInvoiceDeclined.__name__)
    expected_events.add(contractor.ContractorQuoteRecorded.__name__)
    assert expected_events - set(seen) == set()
    expected_refusals = {
        "rule:estimates_pending",
        "rule:no_such_estimate_round",
        "rule:deal_closed",
        "rule:request_closed",
    }
    assert expected_refusals - set(seen) == set()
