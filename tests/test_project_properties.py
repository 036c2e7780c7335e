"""Properties of projects, their billing, the person's day and the computed health
(hypothesis).

- An accountant's random invoices and payments (valid or not), through the real billing
  handler on SQLite: every answer is the one the sums call for, the payment status and
  what is left always follow from the sums (per invoice and for the project), nothing is
  ever overpaid, and a refusal writes nothing.
- A PM's random project commands (status moves, tasks with dependencies, completions,
  hours and their corrections, manual and computed health, card changes) keep the
  project's invariants.
- The computed health is a pure function of the project's events and the instant: the
  same after the events' encode → decode, the same when asked twice, blind to the health
  recorded before; and ``next_change`` is exactly the next instant it changes.
- Replaying the stored streams of two projects (their tasks, hours, invoices, payments
  and the people's days they share) rebuilds the states the handlers decided, and a
  person's day always adds up to the hours of that person and day on every project.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregates import billing, project, timesheets
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import DomainError, InvalidValue, RuleViolation
from aggregates.health import compute_health, next_change
from aggregates.rules import HEALTH_LEVELS, ProjectRules
from commands.context import CommandContext, CommandFailed
from commands.projects import (
    create_project,
    handle_billing_command,
    handle_project_command,
    load_billing,
    load_project,
    load_project_records,
)
from event_store import EventStore, NewEvent, open_event_store
from leadledger.wiring import event_codec
from tests.factories import ManualClock
from tests.gwt_deals import RULES, T0

PROJECT_RULES: ProjectRules = RULES.project
CENT = Decimal("0.01")
MICROSECOND = timedelta(microseconds=1)
CODEC = event_codec()

BILLING_EXAMPLES = settings(max_examples=150, deadline=None)
PROJECT_EXAMPLES = settings(max_examples=300, deadline=None)
HEALTH_EXAMPLES = settings(max_examples=300, deadline=None)
REPLAY_EXAMPLES = settings(max_examples=100, deadline=None)


def meta(at: datetime, actor: str = "petr.pm") -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=uuid4())


def new_project(project_id: UUID) -> project.CreateProject:
    return project.CreateProject(
        project_id=project_id,
        title="Warehouse fit-out",
        company_name="Northwind LLC",
        amount=Decimal("120000.00"),
        pm="petr.pm",
    )


def today_of(now: datetime) -> date:
    return now.astimezone(UTC).date()


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
        store = RecordingStore(open_event_store(f"sqlite:///{directory}/events.sqlite", CODEC))
        try:
            yield store
        finally:
            store.close()


# --- steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    status: str


@dataclass(frozen=True)
class Add:
    task: str
    planned: Decimal
    due: int | None
    """Days after the project's first day."""
    depends: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    task: str
    field: str
    value: Any


@dataclass(frozen=True)
class Complete:
    task: str


@dataclass(frozen=True)
class Log:
    person: str
    day: int
    """Days after today (1: tomorrow)."""
    hours: Decimal
    task: str | None
    entry: int | None
    """None: a fresh entry; else one of the project's entries again."""


@dataclass(frozen=True)
class Correct:
    entry: int
    """One of the project's entries (an unknown one when it has none)."""
    hours: Decimal
    reason: str


@dataclass(frozen=True)
class SetManual:
    level: str
    comment: str


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class Computed:
    level: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Card:
    field: str
    value: Any


@dataclass(frozen=True)
class Progress:
    """The PM's next natural step: 'plan' the next task after the last one, 'finish' the
    first open task, 'work' on it, 'update' its % done, or make the first task depend on
    the last one ('loop')."""

    what: str


@dataclass(frozen=True)
class Invoice:
    number: str
    amount: Decimal
    due: int
    """Days after today."""
    issued: int | None


@dataclass(frozen=True)
class Pay:
    number: str
    how: str
    """'rest' (exactly what is left), 'over' (a cent more), 'half', or a fixed amount."""


ProjectStep = (
    Move | Add | Change | Complete | Log | Correct | SetManual | Clear | Computed | Card | Progress
)
BillingStep = Invoice | Pay

# --- strategies -------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, roughly in proportion to its weight (st.one_of drops repeats
    of the very same strategy object, so repeat fresh copies)."""
    return st.one_of(*[s.map(_same) for w, s in choices for _ in range(w)])


STATUSES = [s.id for s in PROJECT_RULES.statuses]
TASKS = ["t1", "t2", "t3", "t4"]
task_ids = st.sampled_from(TASKS)
due_offsets = st.none() | st.integers(min_value=-3, max_value=20)
planned = st.sampled_from([Decimal(0), Decimal(4), Decimal("8.5"), Decimal(40), Decimal(-1)])
dependencies = st.lists(task_ids, max_size=2, unique=True).map(tuple)

task_changes = st.one_of(
    st.tuples(st.just("percent_done"), st.sampled_from([0, 30, 100, 101])),
    st.tuples(st.just("planned_hours"), st.sampled_from([Decimal(2), Decimal(16), Decimal(-1)])),
    st.tuples(st.just("due"), due_offsets),
    st.tuples(st.just("depends_on"), dependencies),
    st.tuples(st.just("title"), st.sampled_from(["Build", " "])),
)
card_changes = st.sampled_from(
    [
        ("curator", "olga"),
        ("curator", None),
        ("amount", Decimal("5000")),
        ("planned_start", 2),
        ("planned_end", 1),
        ("planned_end", None),
        ("title", " "),
        ("status", "done"),
    ]
)
day_hours = st.sampled_from(
    [Decimal("0.5"), Decimal(8), Decimal(8), Decimal(16), Decimal(24), Decimal("24.01"), Decimal(0)]
)
corrected_hours = st.sampled_from(
    [Decimal(0), Decimal(2), Decimal("7.5"), Decimal(24), Decimal(25), Decimal(-1)]
)
health_levels = st.sampled_from([*HEALTH_LEVELS, "excellent"])

project_steps: st.SearchStrategy[ProjectStep] = weighted(
    (3, st.builds(Move, st.sampled_from(STATUSES))),
    (1, st.just(Move(PROJECT_RULES.done_status))),
    (10, st.builds(Progress, st.sampled_from(["plan", "finish", "work", "update", "loop"]))),
    (4, st.builds(Add, task_ids, planned, due_offsets, st.just(()) | dependencies)),
    (3, st.builds(lambda task, change: Change(task, *change), task_ids, task_changes)),
    (4, st.builds(Complete, task_ids)),
    (
        6,
        st.builds(
            Log,
            st.sampled_from(["ivan", "olga", " "]),
            st.sampled_from([-2, -1, 0, 0, 0, 1]),
            day_hours,
            st.none() | task_ids,
            st.none() | st.none() | st.integers(min_value=0, max_value=5),
        ),
    ),
    (
        3,
        st.builds(
            Correct,
            st.integers(min_value=0, max_value=5),
            corrected_hours,
            st.sampled_from(["timesheet review", "timesheet review", " "]),
        ),
    ),
    (2, st.builds(SetManual, health_levels, st.sampled_from(["client delay", " "]))),
    (2, st.just(Clear())),
    (
        1,
        st.builds(
            Computed,
            st.sampled_from(HEALTH_LEVELS),
            st.sampled_from([(), ("1 overdue task(s): t1",)]),
        ),
    ),
    (1, card_changes.map(lambda c: Card(*c))),
)

billing_steps: st.SearchStrategy[BillingStep] = weighted(
    (
        3,
        st.builds(
            Invoice,
            st.sampled_from(["INV-1", "INV-2", "INV-3", " INV-1 ", " "]),
            st.sampled_from(
                [Decimal("100.00")] * 3
                + [Decimal("0.01"), Decimal("2500.50"), Decimal(0), Decimal(-1), Decimal("0.001")]
            ),
            st.sampled_from([-3, 0, 7, 30]),
            st.none() | st.sampled_from([-5, 0, 2]),
        ),
    ),
    (
        5,
        st.builds(
            Pay,
            st.sampled_from(["INV-1", "INV-1", "INV-2", "INV-3", "INV-9", " "]),
            st.sampled_from(["rest", "rest", "over", "half", "half", "0.01", "100.00", "0", "-5"]),
        ),
    ),
)
# seconds since the previous command, and the command
timed = st.integers(min_value=60, max_value=3 * 24 * 3600)
project_scenarios = st.one_of(
    st.lists(st.tuples(timed, project_steps), max_size=30),
    st.lists(st.tuples(timed, project_steps), min_size=20, max_size=40),
)
billing_scenarios = st.one_of(
    st.lists(st.tuples(timed, billing_steps), max_size=25),
    st.lists(st.tuples(timed, billing_steps), min_size=10, max_size=25),
)
mixed_steps: st.SearchStrategy[ProjectStep | BillingStep] = weighted(
    (4, project_steps), (1, billing_steps)
)
mixed_scenarios = st.one_of(
    st.lists(st.tuples(timed, mixed_steps), max_size=30),
    st.lists(st.tuples(timed, mixed_steps), min_size=20, max_size=40),
)


# --- from steps to commands -------------------------------------------------------------


def project_command(step: ProjectStep, state: project.Project, now: datetime) -> Any:
    """The step's command on the project as it is."""
    first_day = today_of(state.created_at)
    match step:
        case Progress(what=what):
            return _progress(what, state, now)
        case Move(status=status):
            return project.MoveProjectToStatus(status)
        case Add(task=task, planned=hours, due=due, depends=depends):
            day = None if due is None else first_day + timedelta(days=due)
            return project.AddTask(task, f"Step {task}", None, hours, None, day, depends)
        case Change(task=task, field=name, value=value):
            if name == "due" and value is not None:
                return project.UpdateTask(task, {name: first_day + timedelta(days=value)})
            if name == "depends_on":
                return project.UpdateTask(task, {name: list(value)})
            return project.UpdateTask(task, {name: value})
        case Complete(task=task):
            return project.CompleteTask(task)
        case Log(person=person, day=day, hours=hours, task=task, entry=entry):
            if entry is not None and state.entries:
                entry_id = state.entries[entry % len(state.entries)].entry_id
            else:
                entry_id = UUID(int=len(state.entries) + 1 + 1000 * state.version)
            return project.LogHours(
                entry_id, person, today_of(now) + timedelta(days=day), hours, task
            )
        case Correct(entry=entry, hours=hours, reason=reason):
            entry_id = (
                state.entries[entry % len(state.entries)].entry_id
                if state.entries
                else UUID(int=999_999)
            )
            return project.CorrectHours(entry_id, hours, reason)
        case SetManual(level=level, comment=comment):
            return project.SetHealth(level, comment)
        case Clear():
            return project.ClearHealth()
        case Computed(level=level, reasons=reasons):
            return project.RecordComputedHealth(level, reasons)
        case Card(field=name, value=value):
            if name in ("planned_start", "planned_end") and value is not None:
                value = first_day + timedelta(days=value)
            return project.UpdateProjectCard({name: value})
    raise AssertionError(f"not a project step: {step!r}")


def _progress(what: str, state: project.Project, now: datetime) -> Any:
    tasks = state.tasks
    first_open = next((t for t in tasks if t.completed_at is None), None)
    if what == "plan" or not tasks:
        n = len(tasks) + 1
        due = today_of(state.created_at) + timedelta(days=2 * n)
        after = (tasks[-1].task_id,) if tasks else ()
        return project.AddTask(f"t{n}", f"Step {n}", "ivan", Decimal(8), None, due, after)
    if what == "loop":
        return project.UpdateTask(tasks[0].task_id, {"depends_on": [tasks[-1].task_id]})
    if first_open is None:
        return project.CompleteTask(tasks[0].task_id)
    if what == "finish":
        return project.CompleteTask(first_open.task_id)
    if what == "update":
        done = min(100, first_open.percent_done + 30)
        return project.UpdateTask(first_open.task_id, {"percent_done": done})
    entry_id = UUID(int=len(state.entries) + 1 + 1000 * state.version)
    return project.LogHours(entry_id, "ivan", today_of(now), Decimal(8), first_open.task_id)


def billing_command(
    step: BillingStep, state: billing.Billing | None, now: datetime
) -> billing.IssueProjectInvoice | billing.RecordPayment:
    today = today_of(now)
    match step:
        case Invoice(number=number, amount=amount, due=due, issued=issued):
            issued_on = None if issued is None else today + timedelta(days=issued)
            return billing.IssueProjectInvoice(
                number, amount, today + timedelta(days=due), issued_on
            )
        case Pay(number=number, how=how):
            known = state.invoice(number.strip()) if state else None
            rest = known.remaining if known else Decimal("0.00")
            if how == "rest":
                amount = rest
            elif how == "over":
                amount = rest + CENT
            elif how == "half":
                amount = (rest / 2).quantize(CENT)
            else:
                amount = Decimal(how)
            return billing.RecordPayment(number, amount, today)
    raise AssertionError(f"not a billing step: {step!r}")


def refusal_name(refusal: Exception) -> str:
    if isinstance(refusal, RuleViolation):
        return f"rule:{refusal.rule}"
    if isinstance(refusal, InvalidValue):
        return f"field:{refusal.field}"
    return type(refusal).__name__


def roundtrip(events: Sequence[DomainEvent]) -> list[DomainEvent]:
    """The events as the event store writes and reads them."""
    return [CODEC.decode(CODEC.topic(e), CODEC.encode(e)) for e in events]


# --- (a) an accountant's invoices and payments, through the billing handler ------------


@dataclass
class Ledger:
    """What an accountant expects: each invoice's amount and what was paid of it."""

    invoices: dict[str, list[Decimal]] = field(default_factory=dict)
    """number → [amount, paid], in the order they were issued"""

    def expect(
        self, command: billing.IssueProjectInvoice | billing.RecordPayment, today: date
    ) -> str | None:
        """The refusal the command calls for ('rule:…' / 'field:…'); None: accepted."""
        if isinstance(command, billing.IssueProjectInvoice):
            number = command.number.strip()
            if not number:
                return "field:number"
            if not _money(command.amount):
                return "field:amount"
            if command.due_date < (command.issued_on or today):
                return "field:due_date"
            if number in self.invoices:
                return "rule:invoice_number_taken"
            return None
        number = command.invoice_number.strip()
        if not number:
            return "field:invoice_number"
        if not _money(command.amount):
            return "field:amount"
        if number not in self.invoices:
            return "field:invoice_number"
        amount, paid = self.invoices[number]
        if command.amount > amount - paid:
            return "rule:overpayment"
        return None

    def record(self, command: billing.IssueProjectInvoice | billing.RecordPayment) -> None:
        if isinstance(command, billing.IssueProjectInvoice):
            self.invoices[command.number.strip()] = [command.amount, Decimal(0)]
        else:
            self.invoices[command.invoice_number.strip()][1] += command.amount


def _money(amount: Decimal) -> bool:
    return amount > 0 and amount == amount.quantize(CENT)


def _status(invoiced: Decimal, paid: Decimal) -> str:
    """The payment status as an accountant reads it from the two sums."""
    if paid == 0:
        return "not_paid"
    return "paid" if paid == invoiced else "partially_paid"


def check_billing(state: billing.Billing | None, ledger: Ledger) -> None:
    if state is None:
        assert ledger.invoices == {}
        return
    assert [(i.number, i.amount, i.paid) for i in state.invoices] == [
        (number, amount, paid) for number, (amount, paid) in ledger.invoices.items()
    ]
    for issued in state.invoices:
        assert issued.remaining == issued.amount - issued.paid >= 0
        assert issued.status == billing.payment_status(issued.amount, issued.paid)
        assert issued.status == _status(issued.amount, issued.paid)
    invoiced = sum((amount for amount, _ in ledger.invoices.values()), Decimal(0))
    paid = sum((paid for _, paid in ledger.invoices.values()), Decimal(0))
    assert (state.invoiced, state.paid) == (invoiced, paid)
    assert state.remaining == invoiced - paid >= 0
    assert state.status == billing.payment_status(invoiced, paid) == _status(invoiced, paid)
    assert state.version == len(state.invoices) + state.payments


def run_billing(store: RecordingStore, steps: list[tuple[int, BillingStep]]) -> Counter[str]:
    clock = ManualClock()
    project_id = uuid4()
    ctx = CommandContext.new(actor="petr.pm", clock=clock)
    create_project(store, RULES, new_project(project_id), ctx)
    ledger = Ledger()
    seen: Counter[str] = Counter()
    for seconds, step in steps:
        clock.advance(seconds=seconds)
        command = billing_command(step, load_billing(store, project_id), clock.now)
        expected = ledger.expect(command, today_of(clock.now))
        position = store.last_position()
        ctx = CommandContext.new(actor="alla.accounts", clock=clock)
        refusal: DomainError | None = None
        try:
            handle_billing_command(store, project_id, command, ctx)
        except DomainError as caught:
            refusal = caught
        if refusal is not None:
            seen[refusal_name(refusal)] += 1
            assert refusal_name(refusal) == expected, f"{command!r}: {refusal.message}"
            assert store.last_position() == position, f"{command!r} was refused but wrote"
            if isinstance(refusal, RuleViolation) and refusal.rule == "overpayment":
                assert isinstance(command, billing.RecordPayment)
                amount, paid = ledger.invoices[command.invoice_number.strip()]
                assert refusal.details == {
                    "remaining": str(amount - paid),
                    "requested": str(command.amount),
                }
        else:
            assert expected is None, f"{command!r} was accepted; expected {expected}"
            assert store.last_position() == position + 1
            event = store.appended[-1].event
            seen[event.type] += 1
            ledger.record(command)
            if isinstance(event, billing.ProjectPaymentRecorded):
                amount, paid = ledger.invoices[event.invoice_number]
                assert event.invoice_remaining == amount - paid
        state = load_billing(store, project_id)
        check_billing(state, ledger)
        if state is not None:
            seen[f"status:{state.status}"] += 1
    return seen


def test_payment_status_and_what_is_left_always_follow_from_the_sums() -> None:
    @BILLING_EXAMPLES
    @given(billing_scenarios)
    def prop(steps: list[tuple[int, BillingStep]]) -> None:
        with sqlite_store() as store:
            run_billing(store, steps)

    prop()


# --- (b) a PM's project commands, decided one after the other --------------------------


@dataclass
class Story:
    events: list[DomainEvent]
    """The project's events."""
    bills: list[DomainEvent]
    """Its billing's events."""
    seen: Counter[str]


class Checks:
    """What must hold of every accepted command and of the project after it."""

    def accepted(self, before: project.Project, command: Any, event: DomainEvent) -> None:
        if before.status == PROJECT_RULES.done_status:
            closed = (project.TaskAdded, project.TaskUpdated, project.TaskCompleted)
            assert not isinstance(event, (*closed, project.HoursLogged)), f"{event!r} when done"
        if isinstance(event, project.TaskCompleted):
            task = before.task(event.task_id)
            assert task is not None
            assert task.completed_at is None
            for dependency in task.depends_on:
                done = before.task(dependency)
                assert done is not None
                assert done.completed_at is not None, f"{task.task_id} before {dependency}"
        if isinstance(event, project.HoursLogged):
            assert 0 < event.hours <= 24
            assert event.hours == event.hours.quantize(CENT)
            assert event.day <= today_of(event.at), "hours logged for a day still to come"
        if isinstance(event, project.HoursCorrected):
            assert 0 <= event.hours <= 24
            assert event.hours != event.old_hours
        if isinstance(command, project.SetHealth):
            assert command.level in HEALTH_LEVELS
            assert command.comment.strip()
        if isinstance(command, project.ClearHealth):
            assert before.manual_health is not None

    def refused(self, before: project.Project, command: Any, refusal: DomainError) -> None:
        if isinstance(command, project.SetHealth):
            assert command.level not in HEALTH_LEVELS or not command.comment.strip()
        if isinstance(command, project.ClearHealth):
            assert before.manual_health is None

    def state(self, state: project.Project, events: list[DomainEvent], manual: str | None) -> None:
        assert state.version == len(events)
        assert state.updated_at == events[-1].at
        # hours: each entry's hours are those of its last event; the total adds them up
        current: dict[UUID, Decimal] = {}
        for event in events:
            if isinstance(event, project.HoursLogged):
                current[event.entry_id] = event.hours
            elif isinstance(event, project.HoursCorrected):
                assert event.old_hours == current[event.entry_id]
                current[event.entry_id] = event.hours
        assert [(e.entry_id, e.hours) for e in state.entries] == list(current.items())
        assert state.actual_hours == sum(current.values(), Decimal(0))
        # tasks: complete exactly when completed, dependencies known and without cycles
        completed = {e.task_id for e in events if isinstance(e, project.TaskCompleted)}
        for task in state.tasks:
            assert (task.completed_at is not None) == (task.task_id in completed)
            if task.completed_at is not None:
                assert task.percent_done == 100
            assert 0 <= task.percent_done <= 100
            assert all(state.task(d) is not None for d in task.depends_on)
        assert not _has_cycle(state)
        # health: the manual one while the last health command was a set
        assert (state.manual_health.level if state.manual_health else None) == manual
        assert state.health == (manual or state.computed_health)
        # status
        assert state.status in STATUSES
        moves = [e for e in events if isinstance(e, project.ProjectStatusChanged)]
        assert state.status_entered_at == (moves[-1].at if moves else events[0].at)


class CompletedTasksWaitForTheirDependencies(Checks):
    def state(self, state: project.Project, events: list[DomainEvent], manual: str | None) -> None:
        super().state(state, events, manual)
        for task in state.tasks:
            if task.completed_at is not None:
                for dependency in task.depends_on:
                    waited = state.task(dependency)
                    assert waited is not None
                    assert waited.completed_at is not None, (
                        f"{task.task_id} is complete, its dependency {dependency} is not"
                    )


def _has_cycle(state: project.Project) -> bool:
    visiting: set[str] = set()
    finished: set[str] = set()

    def visit(task_id: str) -> bool:
        if task_id in finished:
            return False
        if task_id in visiting:
            return True
        visiting.add(task_id)
        task = state.task(task_id)
        found = task is not None and any(visit(d) for d in task.depends_on)
        visiting.discard(task_id)
        finished.add(task_id)
        return found

    return any(visit(t.task_id) for t in state.tasks)


def run_story(
    steps: list[tuple[int, ProjectStep | BillingStep]], checks: Checks | None = None
) -> Story:
    """The steps decided one after the other on a project and its billing; refusals
    change nothing."""
    project_id = UUID(int=1)
    events: list[DomainEvent] = [project.create(new_project(project_id), PROJECT_RULES, meta(T0))]
    state = project.evolve(None, events[0])
    bills: list[DomainEvent] = []
    bill: billing.Billing | None = None
    manual: str | None = None
    seen: Counter[str] = Counter()
    now = T0
    for seconds, step in steps:
        now += timedelta(seconds=seconds)
        if isinstance(step, Invoice | Pay):
            command = billing_command(step, bill, now)
            try:
                event = billing.decide(
                    bill or billing.empty_billing(project_id, now), command, meta(now)
                )
            except DomainError as refusal:
                seen[refusal_name(refusal)] += 1
                continue
            seen[event.type] += 1
            bills.append(event)
            bill = billing.evolve(bill, event)
            continue
        command = project_command(step, state, now)
        try:
            event = project.decide(state, command, PROJECT_RULES, meta(now))
        except DomainError as refusal:
            seen[refusal_name(refusal)] += 1
            if checks:
                checks.refused(state, command, refusal)
            continue
        seen[event.type] += 1
        if checks:
            checks.accepted(state, command, event)
        events.append(event)
        state = project.evolve(state, event)
        if isinstance(event, project.ProjectHealthSet):
            manual = event.level
        elif isinstance(event, project.ProjectHealthCleared):
            manual = None
        if checks:
            checks.state(state, events, manual)
    return Story(events, bills, seen)


def test_a_projects_invariants_hold_after_every_command() -> None:
    @PROJECT_EXAMPLES
    @given(project_scenarios)
    def prop(steps: list[tuple[int, ProjectStep | BillingStep]]) -> None:
        run_story(steps, Checks())

    prop()


def test_no_completed_task_ever_has_an_incomplete_dependency() -> None:
    @PROJECT_EXAMPLES
    @example(
        [
            (60, Add("t1", Decimal(0), None, ())),
            (60, Complete("t1")),
            (60, Add("t2", Decimal(0), None, ())),
            (60, Change("t1", "depends_on", ("t2",))),
        ]
    )
    @given(project_scenarios)
    def prop(steps: list[tuple[int, ProjectStep | BillingStep]]) -> None:
        run_story(steps, CompletedTasksWaitForTheirDependencies())

    prop()


# --- (c) the computed health: a pure function of the events and the instant ------------


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _boundaries(state: project.Project, bill: billing.Billing | None) -> list[datetime]:
    """Instants at which the health may change with time: due dates passing, the status'
    limit, invoices falling due."""
    moments = [_start_of(t.due + timedelta(days=1)) for t in state.tasks if t.due is not None]
    status = PROJECT_RULES.status(state.status)
    if status is not None and status.time_limit_hours is not None:
        moments.append(state.status_entered_at + timedelta(hours=status.time_limit_hours))
    if bill is not None:
        moments += [
            _start_of(i.due_date + timedelta(days=1))
            for i in bill.invoices
            if i.due_date is not None
        ]
    return moments


ZONES = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-7))]
SIXTY_DAYS = 60 * 24 * 3600 * 10**6


def _instants(boundaries: list[datetime]) -> st.SearchStrategy[datetime]:
    anywhere = st.integers(min_value=0, max_value=SIXTY_DAYS).map(
        lambda us: T0 + timedelta(microseconds=us)
    )
    if not boundaries:
        return anywhere
    near = st.tuples(st.sampled_from(boundaries), st.sampled_from([-1, 0, 1])).map(
        lambda b: b[0] + b[1] * MICROSECOND
    )
    return anywhere | near


HEALTH_EVENTS = (
    project.ProjectHealthSet,
    project.ProjectHealthCleared,
    project.ProjectHealthComputed,
)


def test_the_computed_health_is_a_pure_function_of_the_events_and_the_instant() -> None:
    assert PROJECT_RULES.health.overdue_tasks_some == 1  # every overdue task is reported

    @HEALTH_EXAMPLES
    @given(mixed_scenarios, st.data())
    def prop(steps: list[tuple[int, ProjectStep | BillingStep]], data: st.DataObject) -> None:
        story = run_story(steps)
        state = project.fold(story.events)
        bill = billing.fold(story.bills)
        assert state is not None
        stored_state = project.fold(roundtrip(story.events))
        stored_bill = billing.fold(roundtrip(story.bills))
        assert stored_state is not None
        now = data.draw(_instants(_boundaries(state, bill)), "now")
        now = now.astimezone(data.draw(st.sampled_from(ZONES), "zone"))

        def health(at: datetime) -> tuple[str, tuple[str, ...]]:
            return compute_health(state, bill, at, PROJECT_RULES)

        level = health(now)
        assert level[0] in HEALTH_LEVELS
        assert bool(level[1]) == (level[0] != "good")
        assert compute_health(stored_state, stored_bill, now, PROJECT_RULES) == level
        assert health(now) == level
        assert health(now.astimezone(UTC)) == level
        # the health recorded before (computed or manual) does not feed back
        without = project.fold([e for e in story.events if not isinstance(e, HEALTH_EVENTS)])
        assert without is not None
        assert compute_health(without, bill, now, PROJECT_RULES) == level

        moment = next_change(state, bill, now, PROJECT_RULES)
        assert next_change(stored_state, stored_bill, now, PROJECT_RULES) == moment
        if moment is None:
            assert health(now + timedelta(days=3650)) == level
            return
        assert moment > now
        assert health(moment - MICROSECOND) == level
        share = data.draw(st.integers(min_value=0, max_value=1000), "share")
        assert health(now + (moment - MICROSECOND - now) * share / 1000) == level
        assert health(moment) != level, "next_change names an instant where nothing changes"

    prop()


# --- (d) replaying what the handlers stored ---------------------------------------------


@dataclass
class World:
    store: RecordingStore
    clock: ManualClock
    projects: tuple[UUID, UUID]
    seen: Counter[str]


def run_world(
    store: RecordingStore, steps: list[tuple[int, int, ProjectStep | BillingStep]]
) -> World:
    """Two projects sharing their people, driven through the handlers."""
    clock = ManualClock()
    projects = (uuid4(), uuid4())
    for project_id in projects:
        ctx = CommandContext.new(actor="petr.pm", clock=clock)
        create_project(store, RULES, new_project(project_id), ctx)
    world = World(store, clock, projects, Counter())
    for seconds, which, step in steps:
        clock.advance(seconds=seconds)
        project_id = projects[which]
        ctx = CommandContext.new(actor="petr.pm", clock=clock)
        appended = len(store.appended)
        try:
            if isinstance(step, Invoice | Pay):
                command = billing_command(step, load_billing(store, project_id), clock.now)
                handle_billing_command(store, project_id, command, ctx)
            else:
                state = load_project(store, project_id)
                command = project_command(step, state, clock.now)
                handle_project_command(store, RULES, project_id, command, ctx)
        except (DomainError, CommandFailed) as refusal:
            world.seen[refusal_name(refusal)] += 1
            assert len(store.appended) == appended
            continue
        world.seen.update(new.event.type for new in store.appended[appended:])
    return world


def check_replay(world: World) -> None:
    store = world.store
    decided: dict[UUID, list[DomainEvent]] = {}
    for new in store.appended:
        decided.setdefault(new.stream_id, []).append(new.event)
    for stream_id, events in decided.items():
        stored = [r.event for r in store.load(stream_id)]
        assert stored == events
        assert roundtrip(stored) == stored
    for project_id in world.projects:
        events = decided[project_id]
        assert load_project(store, project_id) == project.fold(events)
        assert project.fold(roundtrip(events)) == project.fold(events)
        bills = decided.get(billing.billing_stream_id(project_id), [])
        assert load_billing(store, project_id) == billing.fold(bills)
        assert billing.fold(roundtrip(bills)) == billing.fold(bills)
    check_person_days(world, decided)


def check_person_days(world: World, decided: dict[UUID, list[DomainEvent]]) -> None:
    """Each person's day adds up to that person's hours that day on both projects, and
    every logged or corrected entry was booked on the day in the same write."""
    hours: dict[tuple[str, date], Decimal] = {}
    changes: dict[UUID, tuple[UUID, UUID]] = {}
    for project_id in world.projects:
        for entry in load_project(world.store, project_id).entries:
            key = (entry.person, entry.day)
            hours[key] = hours.get(key, Decimal(0)) + entry.hours
        for record in load_project_records(world.store, project_id):
            if isinstance(record.event, project.HoursLogged | project.HoursCorrected):
                changes[record.event.command_id] = (project_id, record.event.entry_id)
    booked: dict[UUID, tuple[UUID, UUID]] = {}
    days: set[tuple[str, date]] = set()
    for events in decided.values():
        if not isinstance(events[0], timesheets.PersonDayHoursBooked):
            continue
        first = events[0]
        stream = world.store.load(timesheets.person_day_stream_id(first.person, first.day))
        assert [r.event for r in stream] == events
        total = Decimal(0)
        for event in events:
            assert isinstance(event, timesheets.PersonDayHoursBooked)
            assert (event.person, event.day) == (first.person, first.day)
            total += event.change
            assert event.total == total
            assert 0 <= total <= 24
            booked[event.command_id] = (event.project_id, event.entry_id)
        assert total == hours.get((first.person, first.day), Decimal(0))
        days.add((first.person, first.day))
    assert booked == changes
    assert {key for key, logged in hours.items() if logged} <= days


# people's days filling up across the two projects
day_steps: st.SearchStrategy[ProjectStep] = weighted(
    (
        3,
        st.builds(
            Log,
            st.sampled_from(["ivan", "olga"]),
            st.sampled_from([0, 0, -1]),
            st.sampled_from([Decimal(8), Decimal(16), Decimal(24), Decimal("0.5")]),
            st.none(),
            st.none(),
        ),
    ),
    (
        2,
        st.builds(
            Correct,
            st.integers(min_value=0, max_value=5),
            st.sampled_from([Decimal(0), Decimal(4), Decimal(12), Decimal(24)]),
            st.just("timesheet review"),
        ),
    ),
)
world_step = st.tuples(
    st.integers(min_value=60, max_value=8 * 3600),
    st.integers(0, 1),
    weighted((4, project_steps), (3, day_steps), (1, billing_steps)),
)
world_steps = st.one_of(
    st.lists(world_step, max_size=30), st.lists(world_step, min_size=20, max_size=40)
)


def test_replaying_the_stored_streams_rebuilds_projects_billing_and_peoples_days() -> None:
    @REPLAY_EXAMPLES
    @given(world_steps)
    def prop(steps: list[tuple[int, int, ProjectStep | BillingStep]]) -> None:
        with sqlite_store() as store:
            check_replay(run_world(store, steps))

    prop()


# --- vacuity ----------------------------------------------------------------------------


def test_the_scenarios_reach_every_event_and_the_main_refusals() -> None:
    """Guards the properties against vacuity: the steps do reach every project and
    billing event, the person-day cap and the rules' refusals."""
    seen: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(mixed_scenarios)
    def stories(steps: list[tuple[int, ProjectStep | BillingStep]]) -> None:
        seen.update(run_story(steps).seen)

    @settings(max_examples=20, deadline=None, database=None, derandomize=True)
    @given(world_steps)
    def worlds(steps: list[tuple[int, int, ProjectStep | BillingStep]]) -> None:
        with sqlite_store() as store:
            seen.update(run_world(store, steps).seen)

    @settings(max_examples=20, deadline=None, database=None, derandomize=True)
    @given(billing_scenarios)
    def accounts(steps: list[tuple[int, BillingStep]]) -> None:
        with sqlite_store() as store:
            seen.update(run_billing(store, steps))

    stories()
    worlds()
    accounts()
    expected = {t.__name__ for t in (*project.PROJECT_EVENT_TYPES, *billing.BILLING_EVENT_TYPES)}
    expected -= {project.ProjectCreated.__name__}
    # launches and acts need a won deal's proposal: their properties are in
    # tests/test_calculation_chain.py
    expected -= {
        project.ProjectServicesLaunched.__name__,
        project.ProjectActRecorded.__name__,
        billing.ProjectInvoiceActed.__name__,
    }
    expected |= {timesheets.PersonDayHoursBooked.__name__}
    assert expected - set(seen) == set()
    refusals = {
        "rule:project_done",
        "rule:dependency_not_done",
        "rule:dependency_cycle",
        "rule:task_completed",
        "rule:task_exists",
        "rule:same_status",
        "rule:entry_exists",
        "rule:no_manual_health",
        "rule:no_change",
        "rule:day_over_24_hours",
        "rule:overpayment",
        "rule:invoice_number_taken",
        "field:hours",
        "field:day",
        "field:due_date",
        "field:invoice_number",
        "status:not_paid",
        "status:partially_paid",
        "status:paid",
    }
    assert refusals - set(seen) == set()
