"""The Project and Billing aggregates' rules, the person-day cap of 24 hours across
projects, and the computed portfolio health, one Given/When/Then each
(aggregates/project.py, aggregates/billing.py, aggregates/timesheets.py,
aggregates/health.py, commands/projects.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from aggregates import billing, project, timesheets
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import RuleViolation
from aggregates.health import compute_health, next_change
from aggregates.project import (
    AddTask,
    ClearHealth,
    CompleteTask,
    CorrectHours,
    CreateProject,
    HoursCorrected,
    HoursLogged,
    LogHours,
    MoveProjectToStatus,
    ProjectCardUpdated,
    ProjectCreated,
    ProjectHealthCleared,
    ProjectHealthComputed,
    ProjectHealthSet,
    ProjectStatusChanged,
    RecordComputedHealth,
    SetHealth,
    TaskAdded,
    TaskCompleted,
    TaskUpdated,
    UpdateProjectCard,
    UpdateTask,
)
from aggregates.rules import ProjectRules, ProjectStatus
from commands.context import CommandContext
from commands.projects import (
    create_project,
    handle_project_command,
    load_project,
    load_project_records,
)
from event_store import EventStore
from tests.conftest import FakeClock
from tests.gwt_deals import ACTOR, RULES, STEP, T0, Decider, meta

PROJECT_RULES: ProjectRules = RULES.project
HEALTH = PROJECT_RULES.health
PROJECT_ID = UUID("00000000-0000-4000-8000-00000000c001")
OTHER_PROJECT_ID = UUID("00000000-0000-4000-8000-00000000c002")
ENTRY = UUID("00000000-0000-4000-8000-00000000e001")
OTHER_ENTRY = UUID("00000000-0000-4000-8000-00000000e002")
TODAY = T0.date()
"""2026-01-05, the Monday the project starts (T0 is 09:00 UTC that day)."""
PM = "petr.pm"


def new_project(**overrides: Any) -> CreateProject:
    """A valid CreateProject with any field overridden."""
    fields: dict[str, Any] = {
        "project_id": PROJECT_ID,
        "title": "Warehouse fit-out",
        "company_name": "Northwind LLC",
        "amount": Decimal("120000.00"),
        "pm": PM,
        "planned_start": date(2026, 1, 5),
        "planned_end": date(2026, 3, 31),
    }
    fields.update(overrides)
    return CreateProject(**fields)


PROJECT: Decider[project.Project] = Decider(
    name="project",
    creates=CreateProject,
    create=lambda command, m: project.create(command, PROJECT_RULES, m),
    decide=lambda state, command, m: project.decide(state, command, PROJECT_RULES, m),
    evolve=project.evolve,
)


def story(*commands: Any, start: datetime = T0, **card: Any) -> tuple[DomainEvent, ...]:
    """Events of a project (card overridable) after these commands, one STEP apart."""
    return PROJECT.history(new_project(**card), *commands, start=start)


def state_of(events: tuple[DomainEvent, ...] | list[DomainEvent]) -> project.Project:
    state = project.fold(list(events))
    assert state is not None
    return state


# --- billing's Given/When/Then ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NoInvoicesYet(DomainEvent):
    """The project's billing before its first invoice: where an accountant's story starts
    (a starting point of these tests, never stored)."""


NO_INVOICES = NoInvoicesYet(actor=ACTOR, at=T0, command_id=UUID(int=0))


def _billing_evolve(state: billing.Billing | None, event: DomainEvent) -> billing.Billing:
    if isinstance(event, NoInvoicesYet):
        return billing.empty_billing(PROJECT_ID, event.at)
    return billing.evolve(state, event)


def _no_creation(command: Any, m: CommandMeta) -> DomainEvent:
    raise AssertionError("billing starts from NO_INVOICES, not from a creation")


BILLING: Decider[billing.Billing] = Decider(
    name="billing",
    creates=NoInvoicesYet,  # no command is one: every command is decided on a state
    create=_no_creation,
    decide=billing.decide,
    evolve=_billing_evolve,
)


def invoices(*commands: billing.BillingCommand, start: datetime = T0) -> tuple[DomainEvent, ...]:
    """The billing events of these commands (from no invoices), one STEP apart."""
    state = billing.empty_billing(PROJECT_ID, start)
    events: list[DomainEvent] = []
    for n, command in enumerate(commands, start=1):
        event = billing.decide(state, command, meta(start + n * STEP))
        events.append(event)
        state = billing.evolve(state, event)
    return tuple(events)


def bills(*commands: billing.BillingCommand) -> billing.Billing:
    state = billing.fold(list(invoices(*commands)))
    assert state is not None
    return state


def invoice(
    number: str = "INV-1",
    amount: str = "1000.00",
    due: date = date(2026, 1, 20),
    issued: date | None = None,
) -> billing.IssueProjectInvoice:
    return billing.IssueProjectInvoice(number, Decimal(amount), due, issued)


def pay(amount: str, number: str = "INV-1", on: date = date(2026, 1, 10)) -> billing.RecordPayment:
    return billing.RecordPayment(number, Decimal(amount), on)


# --- create -----------------------------------------------------------------------------


def test_a_new_project_starts_in_the_first_configured_status_with_a_good_health() -> None:
    accepted = (
        PROJECT.given()
        .when(new_project(title="  Warehouse fit-out ", curator=" ", amount=Decimal("12.5")))
        .then(
            ProjectCreated,
            project_id=PROJECT_ID,
            title="Warehouse fit-out",
            curator=None,
            amount=Decimal("12.50"),
            status=PROJECT_RULES.first_status,
        )
    )
    state = accepted.state
    assert PROJECT_RULES.first_status == "planning"
    assert (state.version, state.status, state.status_entered_at) == (1, "planning", T0)
    assert (state.tasks, state.entries, state.manual_health) == ((), (), None)
    assert (state.computed_health, state.health, state.computed_reasons) == ("good", "good", ())
    assert (state.created_at, state.created_by) == (T0, ACTOR)


def test_the_card_lists_the_mandatory_fields_still_empty() -> None:
    state = state_of(story(pm=None))
    assert state.empty_mandatory_fields(PROJECT_RULES) == [
        "pm",
        "curator",
        "department",
        "direction",
        "category",
    ]
    filled = state_of(
        story(
            UpdateProjectCard(
                {
                    "pm": PM,
                    "curator": "olga",
                    "department": "production",
                    "direction": "turnkey",
                    "category": "A",
                }
            )
        )
    )
    assert filled.empty_mandatory_fields(PROJECT_RULES) == []


@pytest.mark.parametrize("field", ["title", "company_name"])
@pytest.mark.parametrize("blank", [None, "", "  "])
def test_create_without_a_title_or_client_is_invalid(field: str, blank: str | None) -> None:
    PROJECT.given().when(new_project(**{field: blank})).then_invalid(field=field)


@pytest.mark.parametrize("amount", ["-0.01", "0.001", "1e15", "NaN"])
def test_create_with_a_bad_amount_is_invalid(amount: str) -> None:
    PROJECT.given().when(new_project(amount=Decimal(amount))).then_invalid(field="amount")


def test_create_with_the_planned_end_before_the_start_is_invalid() -> None:
    command = new_project(planned_start=date(2026, 2, 1), planned_end=date(2026, 1, 31))
    PROJECT.given().when(command).then_invalid(field="planned_end")


def test_a_project_may_start_and_end_on_the_same_day() -> None:
    day = date(2026, 2, 1)
    PROJECT.given().when(new_project(planned_start=day, planned_end=day)).then(
        ProjectCreated, planned_start=day, planned_end=day
    )


# --- the card ---------------------------------------------------------------------------


def test_the_card_changes_field_by_field_and_records_old_and_new() -> None:
    accepted = (
        PROJECT.given(*story())
        .when(
            UpdateProjectCard(
                {
                    "curator": " olga ",
                    "amount": Decimal("99.5"),
                    "planned_end": date(2026, 4, 30),
                    "pm": PM,  # unchanged: not in the diff
                }
            )
        )
        .then(
            ProjectCardUpdated,
            changes={
                "curator": {"old": None, "new": "olga"},
                "amount": {"old": "120000.00", "new": "99.50"},
                "planned_end": {"old": "2026-03-31", "new": "2026-04-30"},
            },
        )
    )
    state = accepted.state
    assert (state.curator, state.amount, state.planned_end) == (
        "olga",
        Decimal("99.50"),
        date(2026, 4, 30),
    )
    assert (state.version, state.updated_at) == (2, accepted.event.at)


def test_a_card_change_that_changes_nothing_is_refused() -> None:
    PROJECT.given(*story()).when(UpdateProjectCard({"pm": f" {PM} "})).then_violates("no_change")


def test_an_empty_card_change_is_invalid() -> None:
    PROJECT.given(*story()).when(UpdateProjectCard({})).then_invalid(field="body")


@pytest.mark.parametrize("field", ["status", "project_id", "tasks", "company_name"])
def test_only_card_fields_can_be_changed(field: str) -> None:
    PROJECT.given(*story()).when(UpdateProjectCard({field: "x"})).then_invalid(field=field)


def test_the_title_cannot_be_blanked() -> None:
    PROJECT.given(*story()).when(UpdateProjectCard({"title": " "})).then_invalid(field="title")


@pytest.mark.parametrize(
    "changes",
    [
        {"planned_end": date(2026, 1, 4)},
        {"planned_start": date(2026, 4, 1)},
        {"planned_start": date(2026, 5, 2), "planned_end": date(2026, 5, 1)},
    ],
)
def test_a_card_change_cannot_put_the_planned_end_before_the_start(changes: dict[str, Any]) -> None:
    PROJECT.given(*story()).when(UpdateProjectCard(changes)).then_invalid(field="planned_end")


def test_a_planned_date_must_be_a_date() -> None:
    command = UpdateProjectCard({"planned_start": T0})
    PROJECT.given(*story()).when(command).then_invalid(field="planned_start")


# --- statuses ---------------------------------------------------------------------------


def test_a_project_moves_to_any_other_status_and_its_clock_restarts() -> None:
    moved_at = T0 + 5 * STEP
    accepted = (
        PROJECT.given(*story())
        .when(MoveProjectToStatus("approval"), at=moved_at)
        .then(ProjectStatusChanged, from_status="planning", to_status="approval")
    )
    assert (accepted.state.status, accepted.state.status_entered_at) == ("approval", moved_at)


def test_moving_to_the_current_status_is_refused() -> None:
    PROJECT.given(*story()).when(MoveProjectToStatus("planning")).then_violates("same_status")


def test_moving_to_an_unknown_status_is_invalid() -> None:
    PROJECT.given(*story()).when(MoveProjectToStatus("archive")).then_invalid(field="status")


DONE = MoveProjectToStatus("done")


@pytest.mark.parametrize(
    "command",
    [
        AddTask("t9", "Paint the walls"),
        CompleteTask("t1"),
        UpdateTask("t1", {"percent_done": 40}),
        LogHours(OTHER_ENTRY, "ivan", TODAY, Decimal(2)),
    ],
    ids=["add task", "complete task", "change task", "log hours"],
)
def test_a_done_project_takes_no_more_tasks_or_hours(command: Any) -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design"), DONE))
    given.when(command).then_violates("project_done")


def test_moving_a_done_project_back_reopens_it() -> None:
    reopened = story(AddTask("t1", "Design"), DONE, MoveProjectToStatus("rework"))
    PROJECT.given(*reopened).when(CompleteTask("t1")).then(TaskCompleted, task_id="t1")
    PROJECT.given(*reopened).when(LogHours(ENTRY, "ivan", TODAY, Decimal(2))).then(HoursLogged)


def test_a_done_project_takes_no_hour_corrections() -> None:
    given = PROJECT.given(*story(LogHours(ENTRY, "ivan", TODAY, Decimal(3)), DONE))
    given.when(CorrectHours(ENTRY, Decimal(5), "forgot the site visit")).then_violates(
        "project_done"
    )


# --- tasks ------------------------------------------------------------------------------


def test_a_task_is_added_with_its_plan_and_dependencies() -> None:
    accepted = (
        PROJECT.given(*story(AddTask("t1", "Design")))
        .when(
            AddTask(
                " t2 ",
                " Build ",
                assignee=" ivan ",
                planned_hours=Decimal("40.5"),
                start=date(2026, 1, 12),
                due=date(2026, 1, 23),
                depends_on=("t1",),
            )
        )
        .then(
            TaskAdded,
            task_id="t2",
            title="Build",
            assignee="ivan",
            planned_hours=Decimal("40.50"),
            start=date(2026, 1, 12),
            due=date(2026, 1, 23),
            depends_on=("t1",),
        )
    )
    task = accepted.state.task("t2")
    assert task is not None
    assert (task.percent_done, task.completed_at, task.depends_on) == (0, None, ("t1",))
    assert accepted.state.planned_hours == Decimal("40.50")


def test_a_task_id_is_used_once() -> None:
    PROJECT.given(*story(AddTask("t1", "Design"))).when(AddTask("t1", "Again")).then_violates(
        "task_exists"
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (AddTask(" ", "Design"), "task_id"),
        (AddTask("t2", " "), "title"),
        (AddTask("t2", "Build", planned_hours=Decimal("-1")), "planned_hours"),
        (AddTask("t2", "Build", planned_hours=Decimal("0.001")), "planned_hours"),
        (AddTask("t2", "Build", planned_hours=Decimal("100000.01")), "planned_hours"),
        (AddTask("t2", "Build", start=date(2026, 2, 2), due=date(2026, 2, 1)), "due"),
        (AddTask("t2", "Build", depends_on=("t7",)), "depends_on[0]"),
        (AddTask("t2", "Build", depends_on=("t1", "t2")), "depends_on[1]"),
        (AddTask("t2", "Build", depends_on=("t1", " ")), "depends_on[1]"),
    ],
)
def test_a_task_with_a_bad_value_is_invalid(command: AddTask, field: str) -> None:
    PROJECT.given(*story(AddTask("t1", "Design"))).when(command).then_invalid(field=field)


def test_a_task_may_plan_up_to_the_maximum_hours() -> None:
    PROJECT.given(*story()).when(AddTask("t1", "Build", planned_hours=Decimal(100_000))).then(
        TaskAdded, planned_hours=Decimal("100000.00")
    )


def test_a_project_holds_at_most_its_maximum_of_tasks() -> None:
    full = replace(
        state_of(story()),
        tasks=tuple(
            project.Task(f"t{n}", "Step", None, Decimal(0), None, None, (), 0, None)
            for n in range(project.MAX_TASKS)
        ),
    )
    with pytest.raises(RuleViolation) as caught:
        project.decide(full, AddTask("one-more", "Step"), PROJECT_RULES, meta())
    assert caught.value.rule == "too_many_tasks"
    fewer = replace(full, tasks=full.tasks[1:])
    assert isinstance(
        project.decide(fewer, AddTask("one-more", "Step"), PROJECT_RULES, meta()), TaskAdded
    )


def test_a_task_is_changed_field_by_field() -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design"), AddTask("t2", "Build")))
    accepted = given.when(
        UpdateTask(
            "t2",
            {
                "percent_done": 40,
                "planned_hours": Decimal(16),
                "due": date(2026, 2, 6),
                "depends_on": ["t1"],
                "title": "Build",  # unchanged: not in the diff
            },
        )
    ).then(
        TaskUpdated,
        task_id="t2",
        changes={
            "percent_done": {"old": 0, "new": 40},
            "planned_hours": {"old": "0.00", "new": "16.00"},
            "due": {"old": None, "new": "2026-02-06"},
            "depends_on": {"old": [], "new": ["t1"]},
        },
    )
    task = accepted.state.task("t2")
    assert task is not None
    assert (task.percent_done, task.planned_hours, task.due, task.depends_on) == (
        40,
        Decimal("16.00"),
        date(2026, 2, 6),
        ("t1",),
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "body"),
        ({"completed_at": T0}, "completed_at"),
        ({"percent_done": 101}, "percent_done"),
        ({"percent_done": -1}, "percent_done"),
        ({"percent_done": 50.5}, "percent_done"),
        ({"percent_done": True}, "percent_done"),
        ({"title": ""}, "title"),
        ({"start": date(2026, 2, 2), "due": date(2026, 2, 1)}, "due"),
        ({"depends_on": ["t1"]}, "depends_on[0]"),
        ({"depends_on": ["t9"]}, "depends_on[0]"),
    ],
)
def test_a_task_change_with_a_bad_value_is_invalid(changes: dict[str, Any], field: str) -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design")))
    given.when(UpdateTask("t1", changes)).then_invalid(field=field)


def test_changing_an_unknown_task_is_invalid() -> None:
    command = UpdateTask("t9", {"percent_done": 10})
    PROJECT.given(*story()).when(command).then_invalid(field="task_id")


def test_a_task_change_that_changes_nothing_is_refused() -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design")))
    given.when(UpdateTask("t1", {"title": " Design "})).then_violates("no_change")


def test_dependencies_cannot_form_a_cycle() -> None:
    chain = story(
        AddTask("t1", "Design"),
        AddTask("t2", "Build", depends_on=("t1",)),
        AddTask("t3", "Hand over", depends_on=("t2",)),
    )
    given = PROJECT.given(*chain)
    given.when(UpdateTask("t1", {"depends_on": ["t3"]})).then_violates("dependency_cycle")
    given.when(UpdateTask("t1", {"depends_on": ["t2"]})).then_violates("dependency_cycle")
    # not a cycle: a second path to the same task
    given.when(UpdateTask("t3", {"depends_on": ["t2", "t1"]})).then(TaskUpdated)


def test_a_task_completes_only_after_every_task_it_depends_on() -> None:
    chain = story(
        AddTask("t1", "Design"),
        AddTask("t2", "Permits"),
        AddTask("t3", "Build", depends_on=("t1", "t2")),
    )
    refusal = PROJECT.given(*chain).when(CompleteTask("t3")).then_violates("dependency_not_done")
    assert "t1, t2" in refusal.message
    half = PROJECT.given(*chain).when(CompleteTask("t1")).then(TaskCompleted).given
    refusal = half.when(CompleteTask("t3")).then_violates("dependency_not_done")
    assert "t2" in refusal.message
    assert "t1" not in refusal.message.split("depends on")[1]
    both = half.when(CompleteTask("t2")).then(TaskCompleted).given
    done = both.when(CompleteTask("t3")).then(TaskCompleted, task_id="t3")
    task = done.state.task("t3")
    assert task is not None
    assert (task.completed_at, task.percent_done) == (done.event.at, 100)


def test_a_task_completes_once() -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design"), CompleteTask("t1")))
    given.when(CompleteTask("t1")).then_violates("task_completed")


def test_completing_an_unknown_task_is_invalid() -> None:
    PROJECT.given(*story()).when(CompleteTask("t1")).then_invalid(field="task_id")


def test_a_completed_task_stays_100_percent_done() -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design"), CompleteTask("t1")))
    given.when(UpdateTask("t1", {"percent_done": 60})).then_violates("task_completed")
    given.when(UpdateTask("t1", {"title": "Design, v2"})).then(TaskUpdated)


def test_a_completed_task_cannot_get_a_dependency_still_open() -> None:
    given = PROJECT.given(
        *story(AddTask("t1", "Design"), CompleteTask("t1"), AddTask("t2", "Permits"))
    )
    given.when(UpdateTask("t1", {"depends_on": ["t2"]})).then_rejected(RuleViolation)


# --- hours ------------------------------------------------------------------------------


def test_hours_are_logged_by_a_person_for_a_day_on_a_task_or_none() -> None:
    given = PROJECT.given(*story(AddTask("t1", "Design", planned_hours=Decimal(10))))
    on_task = given.when(LogHours(ENTRY, " ivan ", TODAY, Decimal("7.5"), " t1 ")).then(
        HoursLogged, entry_id=ENTRY, person="ivan", task_id="t1", day=TODAY, hours=Decimal("7.50")
    )
    both = (
        on_task.given.when(LogHours(OTHER_ENTRY, "olga", TODAY - timedelta(days=3), Decimal(2)))
        .then(HoursLogged, task_id=None)
        .state
    )
    assert both.actual_hours == Decimal("9.50")
    assert [(e.person, e.hours) for e in both.entries] == [
        ("ivan", Decimal("7.50")),
        ("olga", Decimal("2.00")),
    ]


@pytest.mark.parametrize("hours", ["0.01", "24", "24.00"])
def test_an_entry_holds_more_than_0_and_at_most_24_hours(hours: str) -> None:
    PROJECT.given(*story()).when(LogHours(ENTRY, "ivan", TODAY, Decimal(hours))).then(
        HoursLogged, hours=Decimal(hours).quantize(Decimal("0.01"))
    )


@pytest.mark.parametrize("hours", ["0", "-1", "24.01", "25", "0.001", "NaN", "Infinity"])
def test_an_entry_outside_0_to_24_hours_is_invalid(hours: str) -> None:
    command = LogHours(ENTRY, "ivan", TODAY, Decimal(hours))
    PROJECT.given(*story()).when(command).then_invalid(field="hours")


def test_hours_cannot_be_logged_for_a_day_still_to_come() -> None:
    late_evening = datetime(2026, 1, 5, 23, 59, 59, 999999, tzinfo=UTC)
    given = PROJECT.given(*story())
    given.when(
        LogHours(ENTRY, "ivan", TODAY + timedelta(days=1), Decimal(1)), at=late_evening
    ).then_invalid(field="day")
    given.when(LogHours(ENTRY, "ivan", TODAY, Decimal(1)), at=late_evening).then(HoursLogged)
    midnight = datetime(2026, 1, 6, tzinfo=UTC)
    given.when(LogHours(ENTRY, "ivan", TODAY + timedelta(days=1), Decimal(1)), at=midnight).then(
        HoursLogged
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (LogHours(ENTRY, " ", TODAY, Decimal(1)), "person"),
        (LogHours(ENTRY, "ivan", T0, Decimal(1)), "day"),  # an instant, not a day
        (LogHours(ENTRY, "ivan", TODAY, Decimal(1), "t9"), "task_id"),
    ],
)
def test_hours_with_a_bad_value_are_invalid(command: LogHours, field: str) -> None:
    PROJECT.given(*story()).when(command).then_invalid(field=field)


def test_an_entry_id_is_used_once() -> None:
    given = PROJECT.given(*story(LogHours(ENTRY, "ivan", TODAY, Decimal(1))))
    given.when(LogHours(ENTRY, "olga", TODAY, Decimal(2))).then_violates("entry_exists")


def test_a_correction_is_a_new_event_and_the_entry_shows_its_right_hours() -> None:
    logged = story(LogHours(ENTRY, "ivan", TODAY, Decimal(8)))
    accepted = (
        PROJECT.given(*logged)
        .when(CorrectHours(ENTRY, Decimal("6.5"), " lunch was counted "))
        .then(
            HoursCorrected,
            entry_id=ENTRY,
            person="ivan",
            day=TODAY,
            old_hours=Decimal("8.00"),
            hours=Decimal("6.50"),
            reason="lunch was counted",
        )
    )
    assert len(accepted.events) == len(logged) + 1
    assert isinstance(accepted.events[-2], HoursLogged)
    assert accepted.events[-2].hours == Decimal("8.00")  # the entry as logged stays
    entry = accepted.state.entry(ENTRY)
    assert entry is not None
    assert entry.hours == accepted.state.actual_hours == Decimal("6.50")


def test_a_correction_to_zero_withdraws_the_entry() -> None:
    accepted = (
        PROJECT.given(*story(LogHours(ENTRY, "ivan", TODAY, Decimal(8))))
        .when(CorrectHours(ENTRY, Decimal(0), "logged on the wrong project"))
        .then(HoursCorrected, old_hours=Decimal("8.00"), hours=Decimal("0.00"))
    )
    assert accepted.state.actual_hours == Decimal("0.00")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (CorrectHours(OTHER_ENTRY, Decimal(2), "typo"), "entry_id"),
        (CorrectHours(ENTRY, Decimal("-1"), "typo"), "hours"),
        (CorrectHours(ENTRY, Decimal("24.01"), "typo"), "hours"),
        (CorrectHours(ENTRY, Decimal("0.005"), "typo"), "hours"),
        (CorrectHours(ENTRY, Decimal(2), "  "), "reason"),
    ],
)
def test_a_correction_with_a_bad_value_is_invalid(command: CorrectHours, field: str) -> None:
    given = PROJECT.given(*story(LogHours(ENTRY, "ivan", TODAY, Decimal(8))))
    given.when(command).then_invalid(field=field)


def test_a_correction_to_the_same_hours_is_refused() -> None:
    given = PROJECT.given(*story(LogHours(ENTRY, "ivan", TODAY, Decimal(8))))
    given.when(CorrectHours(ENTRY, Decimal("8.00"), "check")).then_violates("no_change")


@pytest.mark.parametrize("hours", ["eight", True])
def test_a_correction_with_hours_that_are_no_number_is_invalid(hours: Any) -> None:
    given = PROJECT.given(*story(LogHours(ENTRY, "ivan", TODAY, Decimal(8))))
    given.when(CorrectHours(ENTRY, hours, "typo")).then_invalid(field="hours")


# --- manual and computed health ---------------------------------------------------------


def test_a_pm_sets_the_health_by_hand_and_it_overrides_the_computed_one_until_cleared() -> None:
    computed = story(RecordComputedHealth("some_difficulties", ("1 overdue task(s): t1",)))
    assert state_of(computed).health == "some_difficulties"
    set_at = T0 + 10 * STEP
    manual = (
        PROJECT.given(*computed)
        .when(SetHealth("good", " client agreed to the delay "), at=set_at, actor=PM)
        .then(ProjectHealthSet, level="good", comment="client agreed to the delay")
    )
    assert manual.state.manual_health == project.ManualHealth(
        "good", "client agreed to the delay", PM, set_at
    )
    assert manual.state.health == "good"
    # the computed health keeps being recorded underneath
    recomputed = (
        manual.given.when(RecordComputedHealth("big_difficulties", ("3 overdue task(s): a, b, c",)))
        .then(ProjectHealthComputed)
        .state
    )
    assert (recomputed.computed_health, recomputed.health) == ("big_difficulties", "good")
    cleared = (
        manual.given.when(ClearHealth(), actor=PM).then(ProjectHealthCleared, level="good").state
    )
    assert cleared.manual_health is None
    assert cleared.health == "some_difficulties"


def test_clearing_a_health_not_set_by_hand_is_refused() -> None:
    PROJECT.given(*story()).when(ClearHealth()).then_violates("no_manual_health")
    cleared = story(SetHealth("big_difficulties", "supplier bankrupt"), ClearHealth())
    PROJECT.given(*cleared).when(ClearHealth()).then_violates("no_manual_health")


def test_a_later_manual_health_replaces_the_earlier_one() -> None:
    given = PROJECT.given(*story(SetHealth("big_difficulties", "supplier bankrupt")))
    state = given.when(SetHealth("some_difficulties", "new supplier found")).then().state
    assert state.manual_health is not None
    assert (state.health, state.manual_health.comment) == (
        "some_difficulties",
        "new supplier found",
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (SetHealth("excellent", "all fine"), "level"),
        (SetHealth("", "all fine"), "level"),
        (SetHealth("good", " "), "comment"),
    ],
)
def test_a_manual_health_needs_a_known_level_and_a_comment(command: SetHealth, field: str) -> None:
    PROJECT.given(*story()).when(command).then_invalid(field=field)


def test_an_unchanged_computed_health_is_not_recorded_again() -> None:
    PROJECT.given(*story()).when(RecordComputedHealth("good", ())).then_violates("no_change")
    reasons = ("1 overdue task(s): t1",)
    given = PROJECT.given(*story(RecordComputedHealth("some_difficulties", reasons)))
    given.when(RecordComputedHealth("some_difficulties", reasons)).then_violates("no_change")
    # same level, other reasons: recorded
    given.when(RecordComputedHealth("some_difficulties", ("2 overdue task(s): t1, t2",))).then(
        ProjectHealthComputed
    )


# --- billing ----------------------------------------------------------------------------


def test_the_first_invoice_opens_the_projects_billing() -> None:
    accepted = (
        BILLING.given(NO_INVOICES)
        .when(invoice(" INV-1 ", "1000", due=date(2026, 1, 20)))
        .then(
            billing.ProjectInvoiceIssued,
            project_id=PROJECT_ID,
            number="INV-1",
            amount=Decimal("1000.00"),
            due_date=date(2026, 1, 20),
            issued_on=TODAY,  # the day it was recorded, when not named
        )
    )
    state = accepted.state
    assert (state.version, state.invoiced, state.paid, state.remaining) == (
        1,
        Decimal("1000.00"),
        Decimal("0.00"),
        Decimal("1000.00"),
    )
    assert state.status == "not_paid"
    # the stream as the handler folds it: without the starting point
    assert billing.fold([accepted.event]) == state


def test_an_invoice_number_is_used_once_per_project() -> None:
    given = BILLING.given(NO_INVOICES, *invoices(invoice("INV-1")))
    given.when(invoice(" INV-1 ", "5")).then_violates("invoice_number_taken")
    given.when(invoice("INV-2", "5")).then(billing.ProjectInvoiceIssued, number="INV-2")


def test_an_invoice_is_not_due_before_its_day() -> None:
    given = BILLING.given(NO_INVOICES)
    named = invoice(due=date(2026, 1, 9), issued=date(2026, 1, 10))
    given.when(named).then_invalid(field="due_date")
    recorded_today = invoice(due=TODAY - timedelta(days=1))
    given.when(recorded_today).then_invalid(field="due_date")
    given.when(invoice(due=TODAY)).then(billing.ProjectInvoiceIssued, due_date=TODAY)
    given.when(invoice(due=date(2026, 1, 10), issued=date(2026, 1, 10))).then(
        billing.ProjectInvoiceIssued, issued_on=date(2026, 1, 10)
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (invoice(" "), "number"),
        (invoice(amount="0"), "amount"),
        (invoice(amount="-5"), "amount"),
        (invoice(amount="0.001"), "amount"),
        (billing.IssueProjectInvoice("INV-1", Decimal(1), None), "due_date"),  # type: ignore[arg-type]
    ],
)
def test_an_invoice_with_a_bad_value_is_invalid(
    command: billing.IssueProjectInvoice, field: str
) -> None:
    BILLING.given(NO_INVOICES).when(command).then_invalid(field=field)


def test_payments_move_an_invoice_from_not_paid_to_partially_paid_to_paid() -> None:
    given = BILLING.given(NO_INVOICES, *invoices(invoice(amount="1000.00")))
    partly = given.when(pay("400.00")).then(
        billing.ProjectPaymentRecorded,
        invoice_number="INV-1",
        amount=Decimal("400.00"),
        invoice_remaining=Decimal("600.00"),
    )
    issued = partly.state.invoice("INV-1")
    assert issued is not None
    assert (issued.paid, issued.remaining, issued.status) == (
        Decimal("400.00"),
        Decimal("600.00"),
        "partially_paid",
    )
    assert (partly.state.status, partly.state.payments) == ("partially_paid", 1)
    # paying exactly what is left
    paid = partly.given.when(pay("600.00")).then(invoice_remaining=Decimal("0.00")).state
    assert paid.invoice("INV-1") is not None
    assert (paid.status, paid.remaining, paid.payments) == ("paid", Decimal("0.00"), 2)


def test_a_payment_one_cent_above_what_is_left_is_refused_naming_what_is_left() -> None:
    given = BILLING.given(NO_INVOICES, *invoices(invoice(amount="1000.00"), pay("400.00")))
    refusal = given.when(pay("600.01")).then_violates("overpayment")
    assert isinstance(refusal, RuleViolation)
    assert refusal.details == {"remaining": "600.00", "requested": "600.01"}
    given.when(pay("600.00")).then(billing.ProjectPaymentRecorded)


def test_a_paid_invoice_takes_no_more_payments() -> None:
    given = BILLING.given(NO_INVOICES, *invoices(invoice(amount="10.00"), pay("10.00")))
    refusal = given.when(pay("0.01")).then_violates("overpayment")
    assert isinstance(refusal, RuleViolation)
    assert refusal.details == {"remaining": "0.00", "requested": "0.01"}


def test_a_payment_counts_against_its_own_invoice_only() -> None:
    given = BILLING.given(
        NO_INVOICES, *invoices(invoice("INV-1", "100.00"), invoice("INV-2", "50.00"))
    )
    refusal = given.when(pay("100.01", "INV-2")).then_violates("overpayment")
    assert isinstance(refusal, RuleViolation)
    assert refusal.details == {"remaining": "50.00", "requested": "100.01"}
    state = given.when(pay("50.00", "INV-2")).then().state
    second, first = state.invoice("INV-2"), state.invoice("INV-1")
    assert second is not None
    assert first is not None
    assert (second.status, first.status, state.status) == ("paid", "not_paid", "partially_paid")
    assert (state.invoiced, state.paid, state.remaining) == (
        Decimal("150.00"),
        Decimal("50.00"),
        Decimal("100.00"),
    )


def test_a_new_invoice_makes_a_paid_project_partially_paid() -> None:
    paid = bills(invoice("INV-1", "100.00"), pay("100.00"))
    assert paid.status == "paid"
    more = bills(invoice("INV-1", "100.00"), pay("100.00"), invoice("INV-2", "1.00"))
    assert more.status == "partially_paid"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (pay("10", number="INV-9"), "invoice_number"),
        (pay("10", number=" "), "invoice_number"),
        (pay("0"), "amount"),
        (pay("-1"), "amount"),
        (pay("0.001"), "amount"),
        (billing.RecordPayment("INV-1", Decimal(1), None), "paid_on"),  # type: ignore[arg-type]
    ],
)
def test_a_payment_with_a_bad_value_is_invalid(command: billing.RecordPayment, field: str) -> None:
    BILLING.given(NO_INVOICES, *invoices(invoice())).when(command).then_invalid(field=field)


@pytest.mark.parametrize(
    ("invoiced", "paid", "status"),
    [
        ("0", "0", "not_paid"),
        ("100.00", "0.00", "not_paid"),
        ("100.00", "0.01", "partially_paid"),
        ("100.00", "99.99", "partially_paid"),
        ("100.00", "100.00", "paid"),
    ],
)
def test_the_payment_status_follows_from_the_sums(invoiced: str, paid: str, status: str) -> None:
    assert billing.payment_status(Decimal(invoiced), Decimal(paid)) == status


# --- the person's day across projects (handlers, both event stores) ---------------------


def _day_stream(store: EventStore, person: str, day: date) -> list[Any]:
    return store.load(timesheets.person_day_stream_id(person, day))


def _log(store: EventStore, clock: FakeClock, project_id: UUID, entry_id: UUID, hours: str) -> None:
    command = LogHours(entry_id, "ivan", clock.now.date(), Decimal(hours))
    handle_project_command(
        store, RULES, project_id, command, CommandContext.new(actor="ivan", clock=clock)
    )


def _correct(
    store: EventStore, clock: FakeClock, project_id: UUID, entry_id: UUID, hours: str
) -> None:
    command = CorrectHours(entry_id, Decimal(hours), "timesheet review")
    handle_project_command(
        store, RULES, project_id, command, CommandContext.new(actor=PM, clock=clock)
    )


def _two_projects(store: EventStore, clock: FakeClock) -> None:
    for project_id in (PROJECT_ID, OTHER_PROJECT_ID):
        command = new_project(project_id=project_id)
        create_project(store, RULES, command, CommandContext.new(actor=PM, clock=clock))


def _refused_over_24(
    action: Callable[[], None], store: EventStore, logged: str, requested: str
) -> None:
    """The action is refused by the day cap and writes nothing anywhere."""
    before = store.last_position()
    with pytest.raises(RuleViolation) as caught:
        action()
    assert caught.value.rule == "day_over_24_hours"
    assert caught.value.details == {"logged": logged, "requested": requested}
    assert store.last_position() == before


def test_a_persons_day_holds_24_hours_across_projects(store: EventStore, clock: FakeClock) -> None:
    _two_projects(store, clock)
    a, b = uuid4(), uuid4()
    _log(store, clock, PROJECT_ID, a, "16")
    clock.advance(minutes=5)
    _log(store, clock, OTHER_PROJECT_ID, b, "8")
    day = _day_stream(store, "ivan", TODAY)
    assert [(r.event.project_id, r.event.change, r.event.total) for r in day] == [
        (PROJECT_ID, Decimal("16.00"), Decimal("16.00")),
        (OTHER_PROJECT_ID, Decimal("8.00"), Decimal("24.00")),
    ]
    assert timesheets.day_total([r.event for r in day]) == Decimal("24.00")
    # the project's event and the day's are written together
    logged = load_project_records(store, OTHER_PROJECT_ID)[-1]
    assert isinstance(logged.event, HoursLogged)
    assert day[-1].position == logged.position + 1
    assert day[-1].event.command_id == logged.event.command_id

    project_versions = {
        p: len(load_project_records(store, p)) for p in (PROJECT_ID, OTHER_PROJECT_ID)
    }
    _refused_over_24(
        lambda: _log(store, clock, PROJECT_ID, uuid4(), "0.01"), store, "24.00", "0.01"
    )
    _refused_over_24(
        lambda: _log(store, clock, OTHER_PROJECT_ID, uuid4(), "0.01"), store, "24.00", "0.01"
    )
    assert {
        p: len(load_project_records(store, p)) for p in (PROJECT_ID, OTHER_PROJECT_ID)
    } == project_versions
    assert len(_day_stream(store, "ivan", TODAY)) == 2
    assert load_project(store, PROJECT_ID).actual_hours == Decimal("16.00")


def test_another_person_or_another_day_has_a_cap_of_its_own(
    store: EventStore, clock: FakeClock
) -> None:
    _two_projects(store, clock)
    _log(store, clock, PROJECT_ID, uuid4(), "24")
    ctx = CommandContext.new(actor="olga", clock=clock)
    handle_project_command(
        store, RULES, OTHER_PROJECT_ID, LogHours(uuid4(), "olga", TODAY, Decimal(24)), ctx
    )
    yesterday = TODAY - timedelta(days=1)
    handle_project_command(
        store, RULES, OTHER_PROJECT_ID, LogHours(uuid4(), "ivan", yesterday, Decimal(24)), ctx
    )
    assert load_project(store, OTHER_PROJECT_ID).actual_hours == Decimal("48.00")
    for person, day in (("ivan", TODAY), ("olga", TODAY), ("ivan", yesterday)):
        assert timesheets.day_total([r.event for r in _day_stream(store, person, day)]) == 24


def test_a_correction_down_frees_hours_of_the_day_and_one_up_is_capped(
    store: EventStore, clock: FakeClock
) -> None:
    _two_projects(store, clock)
    a, b = uuid4(), uuid4()
    _log(store, clock, PROJECT_ID, a, "16")
    _log(store, clock, OTHER_PROJECT_ID, b, "8")
    clock.advance(hours=2)
    _correct(store, clock, PROJECT_ID, a, "15.5")
    day = _day_stream(store, "ivan", TODAY)
    assert (day[-1].event.entry_id, day[-1].event.change, day[-1].event.total) == (
        a,
        Decimal("-0.50"),
        Decimal("23.50"),
    )
    _refused_over_24(
        lambda: _correct(store, clock, OTHER_PROJECT_ID, b, "8.51"), store, "23.50", "0.51"
    )
    entry = load_project(store, OTHER_PROJECT_ID).entry(b)
    assert entry is not None
    assert entry.hours == Decimal("8.00")
    _correct(store, clock, OTHER_PROJECT_ID, b, "8.5")
    assert timesheets.day_total([r.event for r in _day_stream(store, "ivan", TODAY)]) == 24
    _refused_over_24(
        lambda: _log(store, clock, PROJECT_ID, uuid4(), "0.01"), store, "24.00", "0.01"
    )
    # withdrawing an entry frees all of its hours
    _correct(store, clock, PROJECT_ID, a, "0")
    _log(store, clock, OTHER_PROJECT_ID, uuid4(), "15.5")
    assert timesheets.day_total([r.event for r in _day_stream(store, "ivan", TODAY)]) == 24
    assert load_project(store, PROJECT_ID).actual_hours == 0


# --- computed health --------------------------------------------------------------------


def start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


MICROSECOND = timedelta(microseconds=1)
DUE = date(2026, 1, 6)
"""A due date inside the planning status' limit (120 h from T0 reach 2026-01-10 09:00)."""
OVERDUE = start_of(DUE + timedelta(days=1))
"""The first instant the tasks due on DUE are overdue."""


def health(
    events: tuple[DomainEvent, ...] | list[DomainEvent],
    now: datetime,
    billing_state: billing.Billing | None = None,
    rules: ProjectRules = PROJECT_RULES,
) -> tuple[str, tuple[str, ...]]:
    return compute_health(state_of(events), billing_state, now, rules)


def test_a_new_project_is_in_good_health_with_no_reasons() -> None:
    assert health(story(), T0) == ("good", ())
    assert next_change(state_of(story()), None, T0, PROJECT_RULES) == T0 + timedelta(
        hours=120, microseconds=1
    )


def _tasks_due(count: int, due: date = DUE) -> list[AddTask]:
    return [AddTask(f"t{n}", f"Step {n}", due=due) for n in range(1, count + 1)]


@pytest.mark.parametrize(
    ("count", "level"),
    [
        (HEALTH.overdue_tasks_some, "some_difficulties"),
        (HEALTH.overdue_tasks_big - 1, "some_difficulties"),
        (HEALTH.overdue_tasks_big, "big_difficulties"),
        (HEALTH.overdue_tasks_big + 1, "big_difficulties"),
    ],
)
def test_overdue_tasks_count_towards_some_then_big_difficulties(count: int, level: str) -> None:
    assert (HEALTH.overdue_tasks_some, HEALTH.overdue_tasks_big) == (1, 3)
    events = story(*_tasks_due(count))
    ids = ", ".join(f"t{n}" for n in range(1, count + 1))
    assert health(events, OVERDUE - MICROSECOND) == ("good", ())  # due today is not late
    assert health(events, OVERDUE) == (level, (f"{count} overdue task(s): {ids}",))


def test_a_completed_task_or_one_without_a_due_date_is_never_overdue() -> None:
    events = story(
        AddTask("t1", "Design", due=DUE),
        AddTask("t2", "Build"),
        AddTask("t3", "Permits", due=DUE),
        CompleteTask("t1"),
    )
    assert health(events, OVERDUE) == ("some_difficulties", ("1 overdue task(s): t3",))


def test_a_status_over_its_limit_by_one_microsecond_gives_its_level() -> None:
    moved = T0 + STEP
    events = story(MoveProjectToStatus("approval"))
    state = state_of(events)
    assert state.status_entered_at == moved
    limit = moved + timedelta(hours=72)
    assert health(events, limit) == ("good", ())
    assert health(events, limit + MICROSECOND) == (
        HEALTH.status_over_limit,
        ("'approval' for longer than its 72 h limit",),
    )
    assert next_change(state, None, T0 + STEP, PROJECT_RULES) == limit + MICROSECOND


def test_a_status_without_a_limit_is_never_over_it() -> None:
    assert PROJECT_RULES.status("on_hold") == ProjectStatus(
        "on_hold", "On hold", None, stops_clock=True
    )
    events = story(MoveProjectToStatus("on_hold"))
    assert health(events, T0 + timedelta(days=3650)) == ("good", ())
    assert next_change(state_of(events), None, T0 + STEP, PROJECT_RULES) is None


def _with_status(status_id: str, **changes: Any) -> ProjectRules:
    statuses = tuple(
        replace(s, **changes) if s.id == status_id else s for s in PROJECT_RULES.statuses
    )
    return replace(PROJECT_RULES, statuses=statuses)


def test_a_status_that_stops_the_clock_is_never_over_its_limit() -> None:
    events = story(MoveProjectToStatus("on_hold"))
    stopped = _with_status("on_hold", time_limit_hours=1.0, stops_clock=True)
    running = _with_status("on_hold", time_limit_hours=1.0, stops_clock=False)
    later = T0 + timedelta(days=30)
    assert health(events, later, rules=stopped) == ("good", ())
    assert next_change(state_of(events), None, T0 + STEP, stopped) is None
    # the same limit with a running clock
    assert health(events, later, rules=running) == (
        "some_difficulties",
        ("'on_hold' for longer than its 1 h limit",),
    )


def test_a_status_move_restarts_the_clock() -> None:
    events = story(MoveProjectToStatus("on_hold"), MoveProjectToStatus("planning"))
    back = T0 + 2 * STEP
    assert health(events, back + timedelta(hours=120)) == ("good", ())
    assert health(events, back + timedelta(hours=120) + MICROSECOND)[0] == "some_difficulties"


def _hours(total: Decimal) -> list[LogHours]:
    """Entries of at most 24 hours making ``total``."""
    entries, left = [], total
    while left > 0:
        part = min(left, Decimal(24))
        entries.append(LogHours(uuid4(), "ivan", TODAY, part))
        left -= part
    return entries


PLANNED = Decimal(200)


def _over_plan(percent: float, extra: str = "0") -> Decimal:
    return (PLANNED * (1 + Decimal(str(percent)) / 100) + Decimal(extra)).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (PLANNED, ("good", ())),
        (_over_plan(HEALTH.hours_over_plan_percent_some), ("good", ())),
        (
            _over_plan(HEALTH.hours_over_plan_percent_some, "0.01"),
            ("some_difficulties", ("actual hours more than 10 % over plan",)),
        ),
        (
            _over_plan(HEALTH.hours_over_plan_percent_big),
            ("some_difficulties", ("actual hours more than 10 % over plan",)),
        ),
        (
            _over_plan(HEALTH.hours_over_plan_percent_big, "0.01"),
            ("big_difficulties", ("actual hours more than 30 % over plan",)),
        ),
    ],
)
def test_hours_over_plan_by_more_than_the_percentages(
    actual: Decimal, expected: tuple[str, tuple[str, ...]]
) -> None:
    assert (HEALTH.hours_over_plan_percent_some, HEALTH.hours_over_plan_percent_big) == (10, 30)
    events = story(
        AddTask("t1", "Design", planned_hours=PLANNED / 4),
        AddTask("t2", "Build", planned_hours=PLANNED * 3 / 4),
        *_hours(actual),
    )
    assert state_of(events).actual_hours == actual
    assert health(events, T0 + timedelta(hours=20)) == expected


def test_hours_without_a_plan_are_never_over_it() -> None:
    events = story(AddTask("t1", "Design"), *_hours(Decimal(100)))
    assert health(events, T0 + timedelta(hours=20)) == ("good", ())


def test_corrected_hours_count_as_corrected() -> None:
    entry = LogHours(ENTRY, "ivan", TODAY, Decimal(20))
    events = story(AddTask("t1", "Design", planned_hours=Decimal(10)), entry)
    assert health(events, T0 + STEP * 5)[0] == "big_difficulties"
    corrected = PROJECT.given(*events).when(CorrectHours(ENTRY, Decimal(11), "typo")).then().events
    assert health(corrected, T0 + STEP * 5) == ("good", ())


INVOICE_DUE = date(2026, 1, 7)


@pytest.mark.parametrize(
    ("payments", "expected"),
    [
        ((), ("big_difficulties", ("overdue unpaid invoice(s): INV-1",))),
        ((pay("999.99"),), ("big_difficulties", ("overdue unpaid invoice(s): INV-1",))),
        ((pay("1000.00"),), ("good", ())),
    ],
    ids=["not paid", "partially paid", "paid"],
)
def test_an_invoice_unpaid_after_its_due_date_gives_its_level(
    payments: tuple[billing.RecordPayment, ...], expected: tuple[str, tuple[str, ...]]
) -> None:
    assert HEALTH.overdue_unpaid_invoice == "big_difficulties"
    bill = bills(invoice(amount="1000.00", due=INVOICE_DUE), *payments)
    events = story()
    assert health(events, start_of(INVOICE_DUE + timedelta(days=1)) - MICROSECOND, bill) == (
        "good",
        (),
    )
    assert health(events, start_of(INVOICE_DUE + timedelta(days=1)), bill) == expected


def test_a_done_project_ignores_tasks_status_and_hours_but_not_its_invoices() -> None:
    events = story(
        *_tasks_due(3),
        AddTask("t9", "Extra", planned_hours=Decimal(1)),
        LogHours(ENTRY, "ivan", TODAY, Decimal(10)),
        DONE,
    )
    done_with_a_limit = _with_status("done", time_limit_hours=1.0)
    late = T0 + timedelta(days=60)
    assert health(events, late) == ("good", ())
    assert health(events, late, rules=done_with_a_limit) == ("good", ())
    assert next_change(state_of(events), None, T0 + STEP * 10, done_with_a_limit) is None
    unpaid = bills(invoice(due=INVOICE_DUE))
    assert health(events, late, unpaid) == (
        "big_difficulties",
        ("overdue unpaid invoice(s): INV-1",),
    )
    # the same project working again: every rule holds
    reopened = PROJECT.given(*events).when(MoveProjectToStatus("rework")).then().events
    level, reasons = health(reopened, late, unpaid)
    assert level == "big_difficulties"
    assert reasons == (
        "3 overdue task(s): t1, t2, t3",
        "'rework' for longer than its 120 h limit",
        "actual hours more than 30 % over plan",
        "overdue unpaid invoice(s): INV-1",
    )


def test_the_worst_level_wins_and_every_reason_is_listed() -> None:
    events = story(*_tasks_due(1))
    over_limit = T0 + timedelta(hours=120) + MICROSECOND
    assert health(events, over_limit) == (
        "some_difficulties",
        ("1 overdue task(s): t1", "'planning' for longer than its 120 h limit"),
    )
    late_invoice = bills(invoice(due=INVOICE_DUE))
    assert health(events, over_limit, late_invoice) == (
        "big_difficulties",
        (
            "1 overdue task(s): t1",
            "'planning' for longer than its 120 h limit",
            "overdue unpaid invoice(s): INV-1",
        ),
    )


def test_the_manual_health_does_not_change_the_computed_one() -> None:
    events = story(*_tasks_due(3), SetHealth("good", "client agreed to the delay"))
    assert health(events, OVERDUE)[0] == "big_difficulties"


# --- when time alone changes the health -------------------------------------------------


def test_the_next_change_is_the_first_due_date_passing_or_status_limit_reached() -> None:
    events = story(
        AddTask("t1", "Design", due=date(2026, 1, 8)),
        AddTask("t2", "Build", due=DUE),
        AddTask("t3", "Done already", due=date(2026, 1, 5)),
        CompleteTask("t3"),
    )
    state = state_of(events)
    limit_passed = T0 + timedelta(hours=120, microseconds=1)
    assert next_change(state, None, T0, PROJECT_RULES) == OVERDUE
    assert next_change(state, None, OVERDUE, PROJECT_RULES) == start_of(date(2026, 1, 9))
    assert next_change(state, None, start_of(date(2026, 1, 9)), PROJECT_RULES) == limit_passed
    assert next_change(state, None, limit_passed, PROJECT_RULES) is None
    # the health changes right at each of those instants, not before
    for moment in (OVERDUE, start_of(date(2026, 1, 9)), limit_passed):
        assert health(events, moment - MICROSECOND) != health(events, moment)


def test_an_unpaid_invoice_due_date_is_a_next_change_even_when_done() -> None:
    events = story(*_tasks_due(2), DONE)
    state = state_of(events)
    unpaid = bills(invoice(due=INVOICE_DUE))
    assert next_change(state, None, T0, PROJECT_RULES) is None
    assert next_change(state, unpaid, T0, PROJECT_RULES) == start_of(date(2026, 1, 8))
    paid = bills(invoice(amount="10.00", due=INVOICE_DUE), pay("10.00"))
    assert next_change(state, paid, T0, PROJECT_RULES) is None


def test_a_due_date_at_the_end_of_the_calendar_does_not_break_the_next_change() -> None:
    # no command records such a date any more (dates are bounded); an event of before
    # the bound still folds and computes
    *created, added = story(AddTask("t1", "Someday", due=TODAY))
    assert isinstance(added, TaskAdded)
    events = (*created, replace(added, due=date.max))
    state = state_of(events)
    assert health(events, T0 + STEP) == ("good", ())
    moment = next_change(state, None, T0 + STEP, PROJECT_RULES)
    assert moment is None or moment > T0 + STEP


# --- a won deal's invoices carried into the project's billing -----------------------------

DEAL_OF_PROJECT = UUID("00000000-0000-4000-8000-00000000d0d0")


def carried(number: str = "S-1", amount: str = "17500.25") -> billing.CarryDealInvoice:
    return billing.CarryDealInvoice(
        deal_id=DEAL_OF_PROJECT,
        number=number,
        amount=Decimal(amount),
        organisation="main",
        prepayment=True,
        issued_on=date(2026, 1, 2),
    )


def test_a_deals_invoice_is_carried_as_issued_with_no_due_date() -> None:
    accepted = (
        BILLING.given(NO_INVOICES)
        .when(carried())
        .then(
            billing.ProjectInvoiceIssued,
            project_id=PROJECT_ID,
            number="S-1",
            amount=Decimal("17500.25"),
            due_date=None,
            issued_on=date(2026, 1, 2),
            deal_id=DEAL_OF_PROJECT,
            organisation="main",
            prepayment=True,
        )
    )
    state = accepted.state
    assert (state.invoiced, state.paid, state.remaining, state.status) == (
        Decimal("17500.25"),
        Decimal("0.00"),
        Decimal("17500.25"),
        "not_paid",
    )
    [carried_invoice] = state.invoices
    assert (carried_invoice.deal_id, carried_invoice.organisation, carried_invoice.prepayment) == (
        DEAL_OF_PROJECT,
        "main",
        True,
    )
    # owed, but never overdue: a deal's invoice names no due date
    assert not carried_invoice.overdue(date(2099, 1, 1))


def test_a_carried_invoice_takes_payments_by_its_number_and_keeps_its_number() -> None:
    given = BILLING.given(NO_INVOICES, *invoices(carried()))
    paid = given.when(pay("17500.25", number="S-1")).then(
        billing.ProjectPaymentRecorded, invoice_remaining=Decimal("0.00")
    )
    assert paid.state.status == "paid"
    given.when(pay("17500.26", number="S-1")).then_violates("overpayment")
    given.when(carried()).then_violates("invoice_number_taken")
    given.when(invoice("S-1")).then_violates("invoice_number_taken")


def test_an_unpaid_carried_invoice_never_changes_the_computed_health() -> None:
    events = story()
    state = state_of(events)
    owed = bills(carried())
    assert next_change(state, owed, T0, PROJECT_RULES) == next_change(
        state, None, T0, PROJECT_RULES
    )
    later = T0 + timedelta(days=400)
    assert compute_health(state, owed, later, PROJECT_RULES) == compute_health(
        state, None, later, PROJECT_RULES
    )
