"""The Project aggregate: delivery after the sale.

A decider like the others: ``create``/``decide`` return exactly one event or raise a
:class:`~aggregates.errors.DomainError`; ``evolve`` folds an event in.

Rules in brief:
- a project starts in the first configured status (``planning``) and moves to any other
  status; ``done`` closes it (no more tasks or hours), a move back reopens it;
- the card (PM, curator, department, direction, category, planned start and end, …) can
  be changed field by field; the card reports which mandatory fields are still empty;
- tasks: added with a title and optional assignee, planned hours, start, due and the tasks
  they depend on (known tasks, no cycles); updated (including % done); completed only
  once every task they depend on is complete;
- hours: logged by a person for a day (> 0, at most 24 a day — the person's day across
  all projects is checked beside it, see :mod:`aggregates.timesheets`), on one of the
  project's tasks or none; an entry is corrected by a new event, never edited;
- launch: the services of the won deal's proposal (all not launched yet by default, or
  the ones named) are launched in one write, each becoming a task (its name, the planned
  hours from the experts' calculation, an optional assignee); a service launched twice is
  refused;
- acts of completed work: an act (number unique in the project, date, amount, the
  services or tasks it covers) completes the tasks it covers in the same write, each
  under the completion rule above; a task is covered by one act at most. The act is
  recorded on its invoice in the billing beside it (:mod:`aggregates.billing`);
- a project made from a lead that completed a funnel delivering directly carries the
  lead's card (contact, currency, cost components, source, need maturity, expert,
  description, answer date) as given at its creation;
- health: a PM sets it by hand with a comment, which overrides the computed value until
  cleared; the computed value is recorded by the health process manager when it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import HEALTH_LEVELS, ProjectRules

MAX_TASKS = 2_000
MAX_TASK_HOURS = Decimal(100_000)
MAX_DAY_HOURS = Decimal(24)

CARD_TEXT = ("title", "pm", "curator", "department", "direction", "category", "manager")
CARD_DATES = ("planned_start", "planned_end")
CARD_FIELDS = (*CARD_TEXT, *CARD_DATES, "amount")


@dataclass(frozen=True)
class Task:
    task_id: str
    title: str
    assignee: str | None
    planned_hours: Decimal
    start: date | None
    due: date | None
    depends_on: tuple[str, ...]
    percent_done: int
    completed_at: datetime | None


@dataclass(frozen=True)
class TimeEntry:
    entry_id: UUID
    person: str
    task_id: str | None
    day: date
    hours: Decimal
    """The entry's hours now (after its corrections)."""


@dataclass(frozen=True)
class LaunchedService:
    """A service of the proposal launched into work: the task it became."""

    service: str
    task_id: str
    price: Decimal
    planned_hours: Decimal


@dataclass(frozen=True)
class Act:
    """An act of completed work."""

    number: str
    act_date: date
    amount: Decimal
    task_ids: tuple[str, ...]
    services: tuple[str, ...]
    invoice_number: str | None
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class CostComponent:
    """One line of the cost breakdown the project carries from its lead."""

    name: str
    amount: Decimal


@dataclass(frozen=True)
class ManualHealth:
    level: str
    comment: str
    set_by: str
    set_at: datetime


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    project_id: UUID
    version: int
    title: str
    company_name: str
    company_id: str | None
    amount: Decimal
    lead_id: UUID | None
    deal_id: UUID | None
    funnel: str | None
    manager: str | None
    department: str | None
    direction: str | None
    category: str | None
    pm: str | None
    curator: str | None
    planned_start: date | None
    planned_end: date | None
    status: str
    status_entered_at: datetime
    tasks: tuple[Task, ...]
    entries: tuple[TimeEntry, ...]
    manual_health: ManualHealth | None
    computed_health: str
    computed_reasons: tuple[str, ...]
    created_at: datetime
    created_by: str
    updated_at: datetime
    currency: str = values.DEFAULT_CURRENCY
    contact: str | None = None
    source: str | None = None
    need_maturity: str | None = None
    expert: str | None = None
    description: str | None = None
    answer_due: date | None = None
    cost_components: tuple[CostComponent, ...] = ()
    launched: tuple[LaunchedService, ...] = ()
    acts: tuple[Act, ...] = ()

    def launched_service(self, name: str) -> LaunchedService | None:
        return next((s for s in self.launched if s.service == name), None)

    def act(self, number: str) -> Act | None:
        return next((a for a in self.acts if a.number == number), None)

    def task(self, task_id: str) -> Task | None:
        return next((t for t in self.tasks if t.task_id == task_id), None)

    def entry(self, entry_id: UUID) -> TimeEntry | None:
        return next((e for e in self.entries if e.entry_id == entry_id), None)

    @property
    def planned_hours(self) -> Decimal:
        return sum((t.planned_hours for t in self.tasks), Decimal("0.00"))

    @property
    def actual_hours(self) -> Decimal:
        return sum((e.hours for e in self.entries), Decimal("0.00"))

    @property
    def percent_done(self) -> float:
        """Tasks' % done weighted by their planned hours (plain mean when none planned)."""
        if not self.tasks:
            return 0.0
        planned = self.planned_hours
        if planned > 0:
            weighted = sum(
                t.planned_hours * (100 if t.completed_at else t.percent_done) for t in self.tasks
            )
            return float(weighted / planned)
        return sum(100 if t.completed_at else t.percent_done for t in self.tasks) / len(self.tasks)

    @property
    def health(self) -> str:
        """The manual health while one is set, else the computed one."""
        return self.manual_health.level if self.manual_health else self.computed_health

    def empty_mandatory_fields(self, rules: ProjectRules) -> list[str]:
        return [f for f in rules.mandatory_fields if getattr(self, f, None) in (None, "")]


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateProject:
    project_id: UUID
    title: str
    company_name: str
    company_id: str | None = None
    amount: Decimal = Decimal(0)
    lead_id: UUID | None = None
    deal_id: UUID | None = None
    funnel: str | None = None
    manager: str | None = None
    department: str | None = None
    direction: str | None = None
    category: str | None = None
    pm: str | None = None
    curator: str | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    currency: str = values.DEFAULT_CURRENCY
    contact: str | None = None
    source: str | None = None
    need_maturity: str | None = None
    expert: str | None = None
    description: str | None = None
    answer_due: date | None = None
    cost_components: tuple[CostComponent, ...] = ()


@dataclass(frozen=True)
class UpdateProjectCard:
    changes: dict[str, Any]


@dataclass(frozen=True)
class MoveProjectToStatus:
    status: str


@dataclass(frozen=True)
class AddTask:
    task_id: str
    title: str
    assignee: str | None = None
    planned_hours: Decimal = Decimal(0)
    start: date | None = None
    due: date | None = None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateTask:
    task_id: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class CompleteTask:
    task_id: str


@dataclass(frozen=True)
class LogHours:
    entry_id: UUID
    person: str
    day: date
    hours: Decimal
    task_id: str | None = None


@dataclass(frozen=True)
class CorrectHours:
    entry_id: UUID
    hours: Decimal
    """The entry's right hours (0 withdraws it)."""
    reason: str


@dataclass(frozen=True)
class OfferedService:
    """A service of the won deal's proposal, with the hours its calculation planned."""

    name: str
    price: Decimal
    planned_hours: Decimal


@dataclass(frozen=True)
class ServiceLaunch:
    name: str
    assignee: str | None = None


@dataclass(frozen=True)
class LaunchServices:
    """Launch services of the proposal into work.

    ``offered`` is filled by the handler from the project's deal (its proposal and the
    calculation it came from); ``services`` names the ones to launch (None: every one not
    launched yet)."""

    offered: tuple[OfferedService, ...]
    services: tuple[ServiceLaunch, ...] | None = None
    calculation_id: UUID | None = None


@dataclass(frozen=True)
class RecordAct:
    number: str
    act_date: date
    amount: Decimal
    services: tuple[str, ...] = ()
    task_ids: tuple[str, ...] = ()
    invoice_number: str | None = None


@dataclass(frozen=True)
class SetHealth:
    level: str
    comment: str


@dataclass(frozen=True)
class ClearHealth:
    pass


@dataclass(frozen=True)
class RecordComputedHealth:
    level: str
    reasons: tuple[str, ...]


ProjectCommand = (
    UpdateProjectCard
    | MoveProjectToStatus
    | AddTask
    | UpdateTask
    | CompleteTask
    | LogHours
    | CorrectHours
    | SetHealth
    | ClearHealth
    | RecordComputedHealth
)


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProjectCreated(DomainEvent):
    """Version 2 added the lead card a project carries (currency, contact, source, need
    maturity, expert, description, answer date, cost components); version 1 events are
    read with none of it and the default currency (see ``upcast_project_created_v1``)."""

    schema_version: ClassVar[int] = 2

    project_id: UUID
    title: str
    company_name: str
    company_id: str | None
    amount: Decimal
    lead_id: UUID | None
    deal_id: UUID | None
    funnel: str | None
    manager: str | None
    department: str | None
    direction: str | None
    category: str | None
    pm: str | None
    curator: str | None
    planned_start: date | None
    planned_end: date | None
    status: str
    currency: str = values.DEFAULT_CURRENCY
    contact: str | None = None
    source: str | None = None
    need_maturity: str | None = None
    expert: str | None = None
    description: str | None = None
    answer_due: date | None = None
    cost_components: tuple[CostComponent, ...] = ()


def upcast_project_created_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Projects opened before they carried a lead's card: amounts in the default currency,
    no card details."""
    return data | {
        "currency": values.DEFAULT_CURRENCY,
        "contact": None,
        "source": None,
        "need_maturity": None,
        "expert": None,
        "description": None,
        "answer_due": None,
        "cost_components": [],
    }


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("ProjectCreated", 1): upcast_project_created_v1,
}
"""Stored-event upcasters of the project's events."""


@dataclass(frozen=True, kw_only=True)
class ProjectCardUpdated(DomainEvent):
    changes: dict[str, dict[str, Any]]
    """``{field: {"old": value, "new": value}}`` with JSON values."""


@dataclass(frozen=True, kw_only=True)
class ProjectStatusChanged(DomainEvent):
    from_status: str
    to_status: str


@dataclass(frozen=True, kw_only=True)
class TaskAdded(DomainEvent):
    task_id: str
    title: str
    assignee: str | None
    planned_hours: Decimal
    start: date | None
    due: date | None
    depends_on: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TaskUpdated(DomainEvent):
    task_id: str
    changes: dict[str, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(DomainEvent):
    task_id: str


@dataclass(frozen=True, kw_only=True)
class HoursLogged(DomainEvent):
    entry_id: UUID
    person: str
    task_id: str | None
    day: date
    hours: Decimal


@dataclass(frozen=True, kw_only=True)
class HoursCorrected(DomainEvent):
    entry_id: UUID
    person: str
    day: date
    old_hours: Decimal
    hours: Decimal
    reason: str


@dataclass(frozen=True, kw_only=True)
class ProjectServicesLaunched(DomainEvent):
    """Services of the proposal were launched into work; each became the task named
    (its ``TaskAdded`` follows in the same write)."""

    services: tuple[LaunchedService, ...]
    calculation_id: UUID | None


@dataclass(frozen=True, kw_only=True)
class ProjectActRecorded(DomainEvent):
    """An act of completed work; the completions of the tasks it covers that were still
    open follow in the same write."""

    number: str
    act_date: date
    amount: Decimal
    task_ids: tuple[str, ...]
    services: tuple[str, ...]
    """The launched services among the tasks it covers."""
    invoice_number: str | None


@dataclass(frozen=True, kw_only=True)
class ProjectHealthSet(DomainEvent):
    level: str
    comment: str


@dataclass(frozen=True, kw_only=True)
class ProjectHealthCleared(DomainEvent):
    level: str
    """The manual level that was cleared."""


@dataclass(frozen=True, kw_only=True)
class ProjectHealthComputed(DomainEvent):
    level: str
    reasons: tuple[str, ...]


PROJECT_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ProjectCreated,
    ProjectCardUpdated,
    ProjectStatusChanged,
    TaskAdded,
    TaskUpdated,
    TaskCompleted,
    HoursLogged,
    HoursCorrected,
    ProjectHealthSet,
    ProjectHealthCleared,
    ProjectHealthComputed,
    ProjectServicesLaunched,
    ProjectActRecorded,
)


# --- decide -----------------------------------------------------------------------------


def _card_value(field: str, value: Any) -> Any:
    if field == "title":
        return values.required_text(field, value)
    if field in CARD_TEXT:
        return values.text(field, value, required=False)
    if field in CARD_DATES:
        return values.day(field, value, required=False)
    if field == "amount":
        return values.amount(field, value)
    raise InvalidValue(field, f"'{field}' is not a project card field that can be changed")


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _from_json(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in CARD_DATES or field in ("start", "due"):
        return date.fromisoformat(value)
    if field in ("amount", "planned_hours"):
        return Decimal(value)
    if field == "depends_on":
        return tuple(value)
    return value


def _check_dates(start: date | None, end: date | None, field: str) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidValue(field, f"'{field}' must not be before the start")


def create(command: CreateProject, rules: ProjectRules, meta: CommandMeta) -> ProjectCreated:
    planned_start = values.day("planned_start", command.planned_start, required=False)
    planned_end = values.day("planned_end", command.planned_end, required=False)
    for field, day in (("planned_start", planned_start), ("planned_end", planned_end)):
        values.sensible_day(field, day, meta.at, since=meta.at, record="project")
    _check_dates(planned_start, planned_end, "planned_end")
    return ProjectCreated(
        **meta.event_fields(),
        project_id=command.project_id,
        title=values.required_text("title", command.title),
        company_name=values.required_text("company_name", command.company_name),
        company_id=values.text("company_id", command.company_id, required=False),
        amount=values.amount("amount", command.amount),
        lead_id=command.lead_id,
        deal_id=command.deal_id,
        funnel=values.text("funnel", command.funnel, required=False),
        manager=values.text("manager", command.manager, required=False),
        department=values.text("department", command.department, required=False),
        direction=values.text("direction", command.direction, required=False),
        category=values.text("category", command.category, required=False),
        pm=values.text("pm", command.pm, required=False),
        curator=values.text("curator", command.curator, required=False),
        planned_start=planned_start,
        planned_end=planned_end,
        status=rules.first_status,
        currency=values.currency(command.currency),
        contact=values.text("contact", command.contact, required=False),
        source=values.text("source", command.source, required=False),
        need_maturity=values.text("need_maturity", command.need_maturity, required=False),
        expert=values.text("expert", command.expert, required=False),
        description=values.text("description", command.description, required=False),
        answer_due=command.answer_due,
        cost_components=tuple(
            CostComponent(
                values.required_text(f"cost_components[{i}].name", c.name),
                values.amount(f"cost_components[{i}].amount", c.amount),
            )
            for i, c in enumerate(command.cost_components)
        ),
    )


def _require_open(project: Project, rules: ProjectRules, action: str) -> None:
    if project.status == rules.done_status:
        raise RuleViolation(
            "project_done", f"the project is done: move it back to a working status to {action}"
        )


def decide(
    project: Project, command: ProjectCommand, rules: ProjectRules, meta: CommandMeta
) -> DomainEvent:
    match command:
        case UpdateProjectCard(changes=changes):
            return _update_card(project, changes, meta)
        case MoveProjectToStatus(status=status_id):
            status = rules.require_status(status_id)
            if status.id == project.status:
                raise RuleViolation("same_status", f"the project is already '{status.id}'")
            return ProjectStatusChanged(
                **meta.event_fields(), from_status=project.status, to_status=status.id
            )
        case AddTask():
            return _add_task(project, command, rules, meta)
        case UpdateTask(task_id=task_id, changes=changes):
            return _update_task(project, task_id, changes, rules, meta)
        case CompleteTask(task_id=task_id):
            task = _require_task(project, task_id)
            _require_open(project, rules, "complete tasks")
            if task.completed_at is not None:
                raise RuleViolation("task_completed", f"task '{task_id}' is complete already")
            waiting = [
                d for d in task.depends_on if (dep := project.task(d)) and dep.completed_at is None
            ]
            if waiting:
                raise RuleViolation(
                    "dependency_not_done",
                    f"task '{task_id}' depends on {', '.join(waiting)}, not complete yet",
                )
            return TaskCompleted(**meta.event_fields(), task_id=task_id)
        case LogHours():
            return log_hours(project, command, rules, meta)
        case CorrectHours(entry_id=entry_id, hours=hours, reason=reason):
            entry = project.entry(entry_id)
            if entry is None:
                raise InvalidValue("entry_id", f"the project has no time entry {entry_id}")
            right = _hours_or_zero("hours", hours)
            reason_text = values.required_text("reason", reason)
            _require_open(project, rules, "correct hours")
            if right == entry.hours:
                raise RuleViolation("no_change", f"the entry has {right} hours already")
            return HoursCorrected(
                **meta.event_fields(),
                entry_id=entry_id,
                person=entry.person,
                day=entry.day,
                old_hours=entry.hours,
                hours=right,
                reason=reason_text,
            )
        case SetHealth(level=level, comment=comment):
            if level not in HEALTH_LEVELS:
                raise InvalidValue("level", f"'level' must be one of {', '.join(HEALTH_LEVELS)}")
            comment_text = values.required_text("comment", comment)
            return ProjectHealthSet(**meta.event_fields(), level=level, comment=comment_text)
        case ClearHealth():
            if project.manual_health is None:
                raise RuleViolation("no_manual_health", "the project's health is not set by hand")
            return ProjectHealthCleared(**meta.event_fields(), level=project.manual_health.level)
        case RecordComputedHealth(level=level, reasons=reasons):
            if (level, tuple(reasons)) == (project.computed_health, project.computed_reasons):
                raise RuleViolation("no_change", "the computed health is unchanged")
            return ProjectHealthComputed(**meta.event_fields(), level=level, reasons=tuple(reasons))
    raise TypeError(f"not a project command: {command!r}")  # pragma: no cover


def _hours_or_zero(field: str, value: Any) -> Decimal:
    """Hours of a corrected entry: 0 withdraws it, else as for logging."""
    if values.amount(field, value) == 0:
        return Decimal("0.00")
    return values.hours(field, value, maximum=MAX_DAY_HOURS)


def log_hours(
    project: Project, command: LogHours, rules: ProjectRules, meta: CommandMeta
) -> HoursLogged:
    person = values.required_text("person", command.person)
    day = values.day("day", command.day, required=True)
    assert day is not None
    hours = values.hours("hours", command.hours, maximum=MAX_DAY_HOURS)
    task_id = values.text("task_id", command.task_id, required=False)
    if task_id is not None:
        _require_task(project, task_id, field="task_id")
    if day > meta.at.astimezone(UTC).date():
        raise InvalidValue("day", "hours cannot be logged for a day still to come")
    values.sensible_day("day", day, meta.at, since=project.created_at, record="project")
    _require_open(project, rules, "log hours")
    if project.entry(command.entry_id) is not None:
        raise RuleViolation("entry_exists", f"time entry {command.entry_id} exists already")
    return HoursLogged(
        **meta.event_fields(),
        entry_id=command.entry_id,
        person=person,
        task_id=task_id,
        day=day,
        hours=hours,
    )


def _require_task(project: Project, task_id: str, field: str = "task_id") -> Task:
    task = project.task(task_id)
    if task is None:
        raise InvalidValue(field, f"the project has no task '{task_id}'")
    return task


def _update_card(
    project: Project, changes: dict[str, Any], meta: CommandMeta
) -> ProjectCardUpdated:
    if not changes:
        raise InvalidValue("body", "name at least one card field to change")
    diff: dict[str, dict[str, Any]] = {}
    for field, raw in changes.items():
        new = _card_value(field, raw)
        if field in CARD_DATES:
            values.sensible_day(field, new, meta.at, since=project.created_at, record="project")
        old = getattr(project, field)
        if new != old:
            diff[field] = {"old": _json(old), "new": _json(new)}
    start = changes.get("planned_start", project.planned_start)
    end = changes.get("planned_end", project.planned_end)
    _check_dates(start, end, "planned_end")
    if not diff:
        raise RuleViolation("no_change", "the card already has these values")
    return ProjectCardUpdated(**meta.event_fields(), changes=diff)


def _depends(project: Project, task_id: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    depends = tuple(values.required_text(f"depends_on[{i}]", d) for i, d in enumerate(raw))
    for index, dep in enumerate(depends):
        if dep == task_id:
            raise InvalidValue(f"depends_on[{index}]", "a task cannot depend on itself")
        if project.task(dep) is None:
            raise InvalidValue(f"depends_on[{index}]", f"the project has no task '{dep}'")
    # a cycle needs the new edge to reach back to the task itself
    seen: set[str] = set()
    frontier = list(depends)
    while frontier:
        current = frontier.pop()
        if current == task_id:
            raise RuleViolation("dependency_cycle", f"task '{task_id}' would depend on itself")
        if current in seen:
            continue
        seen.add(current)
        task = project.task(current)
        if task is not None:
            frontier.extend(task.depends_on)
    return depends


def _add_task(
    project: Project, command: AddTask, rules: ProjectRules, meta: CommandMeta
) -> TaskAdded:
    task_id = values.required_text("task_id", command.task_id)
    title = values.required_text("title", command.title)
    assignee = values.text("assignee", command.assignee, required=False)
    planned = values.amount("planned_hours", command.planned_hours)
    if planned > MAX_TASK_HOURS:
        raise InvalidValue("planned_hours", f"'planned_hours' must be at most {MAX_TASK_HOURS}")
    start = values.day("start", command.start, required=False)
    due = values.day("due", command.due, required=False)
    values.sensible_day("start", start, meta.at, since=project.created_at, record="project")
    values.sensible_day("due", due, meta.at, since=project.created_at, record="project")
    _check_dates(start, due, "due")
    if project.task(task_id) is not None:
        raise RuleViolation("task_exists", f"the project has a task '{task_id}' already")
    if len(project.tasks) >= MAX_TASKS:
        raise RuleViolation("too_many_tasks", f"a project has at most {MAX_TASKS} tasks")
    depends = _depends(project, task_id, command.depends_on)
    _require_open(project, rules, "add tasks")
    return TaskAdded(
        **meta.event_fields(),
        task_id=task_id,
        title=title,
        assignee=assignee,
        planned_hours=planned,
        start=start,
        due=due,
        depends_on=depends,
    )


TASK_FIELDS = ("title", "assignee", "planned_hours", "start", "due", "depends_on", "percent_done")


def _update_task(
    project: Project,
    task_id: str,
    changes: dict[str, Any],
    rules: ProjectRules,
    meta: CommandMeta,
) -> TaskUpdated:
    task = _require_task(project, task_id)
    if not changes:
        raise InvalidValue("body", "name at least one task field to change")
    diff: dict[str, dict[str, Any]] = {}
    for field, raw in changes.items():
        if field not in TASK_FIELDS:
            raise InvalidValue(field, f"'{field}' is not a task field that can be changed")
        new: Any
        if field == "title":
            new = values.required_text(field, raw)
        elif field == "assignee":
            new = values.text(field, raw, required=False)
        elif field == "planned_hours":
            new = values.amount(field, raw)
            if new > MAX_TASK_HOURS:
                raise InvalidValue(field, f"'{field}' must be at most {MAX_TASK_HOURS}")
        elif field in ("start", "due"):
            new = values.day(field, raw, required=False)
            values.sensible_day(field, new, meta.at, since=project.created_at, record="project")
        elif field == "depends_on":
            new = _depends(project, task_id, raw)
        else:
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 100:
                raise InvalidValue(field, "'percent_done' must be a whole number from 0 to 100")
            new = raw
        old = getattr(task, field)
        if new != old:
            diff[field] = {
                "old": _json(list(old) if field == "depends_on" else old),
                "new": _json(list(new) if field == "depends_on" else new),
            }
    _check_dates(changes.get("start", task.start), changes.get("due", task.due), "due")
    if task.completed_at is not None and "percent_done" in diff:
        raise RuleViolation("task_completed", f"task '{task_id}' is complete: it is 100 % done")
    if task.completed_at is not None and "depends_on" in diff:
        open_dependencies = [
            d
            for d in changes["depends_on"] or ()
            if (dep := project.task(d)) and not dep.completed_at
        ]
        if open_dependencies:
            raise RuleViolation(
                "dependency_not_done",
                f"task '{task_id}' is complete: it cannot depend on "
                f"{', '.join(open_dependencies)}, not complete yet",
            )
    _require_open(project, rules, "change tasks")
    if not diff:
        raise RuleViolation("no_change", "the task already has these values")
    return TaskUpdated(**meta.event_fields(), task_id=task_id, changes=diff)


def launch(
    project: Project, command: LaunchServices, rules: ProjectRules, meta: CommandMeta
) -> tuple[ProjectServicesLaunched, tuple[TaskAdded, ...]]:
    """The launch and the tasks it creates, one per service, to append in one write."""
    if not command.offered:
        raise RuleViolation(
            "proposal_required",
            "the project has no proposal to launch: it comes from no deal with a proposal",
        )
    offered = {s.name: s for s in command.offered}
    wanted: list[ServiceLaunch]
    if command.services is None:
        wanted = [
            ServiceLaunch(s.name) for s in command.offered if not project.launched_service(s.name)
        ]
        if not wanted:
            raise RuleViolation(
                "nothing_to_launch", "every service of the proposal is launched already"
            )
    else:
        if not command.services:
            raise InvalidValue("services", "name at least one service to launch")
        wanted = []
        seen: set[str] = set()
        for index, item in enumerate(command.services):
            name = values.required_text(f"services[{index}].name", item.name)
            if name not in offered:
                known = ", ".join(offered)
                raise InvalidValue(
                    f"services[{index}].name",
                    f"'{name}' is not a service of the proposal (services: {known})",
                )
            if name in seen:
                raise InvalidValue(f"services[{index}].name", f"service '{name}' appears twice")
            seen.add(name)
            assignee = values.text(f"services[{index}].assignee", item.assignee, required=False)
            wanted.append(ServiceLaunch(name, assignee))
        again = [w.name for w in wanted if project.launched_service(w.name)]
        if again:
            raise RuleViolation(
                "service_launched", f"already launched: {', '.join(again)}", services=again
            )
    if len(project.tasks) + len(wanted) > MAX_TASKS:
        raise RuleViolation("too_many_tasks", f"a project has at most {MAX_TASKS} tasks")
    _require_open(project, rules, "launch services")
    taken = {t.task_id for t in project.tasks}
    number = len(project.launched)
    launched: list[LaunchedService] = []
    tasks: list[TaskAdded] = []
    for item in wanted:
        number += 1
        while f"service-{number}" in taken:
            number += 1
        task_id = f"service-{number}"
        service = offered[item.name]
        planned = min(service.planned_hours, MAX_TASK_HOURS)
        launched.append(LaunchedService(item.name, task_id, service.price, planned))
        tasks.append(
            TaskAdded(
                **meta.event_fields(),
                task_id=task_id,
                title=item.name,
                assignee=item.assignee,
                planned_hours=planned,
                start=None,
                due=None,
                depends_on=(),
            )
        )
    event = ProjectServicesLaunched(
        **meta.event_fields(), services=tuple(launched), calculation_id=command.calculation_id
    )
    return event, tuple(tasks)


def _waits(project: Project, task_id: str) -> bool:
    """Whether the task depends on one not complete yet."""
    task = project.task(task_id)
    return task is not None and any(
        (dep := project.task(d)) is not None and dep.completed_at is None for d in task.depends_on
    )


def record_act(
    project: Project, command: RecordAct, rules: ProjectRules, meta: CommandMeta
) -> tuple[ProjectActRecorded, tuple[TaskCompleted, ...]]:
    """The act and the completions of the open tasks it covers, to append in one write
    (each completion decided as :class:`CompleteTask` is: its dependencies must be
    complete, or be completed by this act first)."""
    number = values.required_text("number", command.number)
    act_date = values.day("act_date", command.act_date, required=True)
    assert act_date is not None
    if act_date > meta.at.astimezone(UTC).date():
        raise InvalidValue("act_date", "an act cannot be dated on a day still to come")
    values.sensible_day("act_date", act_date, meta.at, since=project.created_at, record="project")
    amount = values.amount("amount", command.amount, positive=True)
    invoice_number = values.text("invoice_number", command.invoice_number, required=False)
    if not command.services and not command.task_ids:
        raise InvalidValue("services", "name the services or the tasks the act covers")
    covered: list[str] = []
    for index, name in enumerate(command.services):
        launched = project.launched_service(values.required_text(f"services[{index}]", name))
        if launched is None:
            raise InvalidValue(
                f"services[{index}]", f"service '{name}' is not launched on the project"
            )
        covered.append(launched.task_id)
    for index, task_id in enumerate(command.task_ids):
        covered.append(_require_task(project, task_id, field=f"task_ids[{index}]").task_id)
    task_ids = tuple(dict.fromkeys(covered))
    if project.act(number) is not None:
        raise RuleViolation("act_number_taken", f"the project has act '{number}' already")
    for earlier in project.acts:
        twice = [t for t in task_ids if t in earlier.task_ids]
        if twice:
            raise RuleViolation(
                "task_acted", f"act '{earlier.number}' covers {', '.join(twice)} already"
            )
    _require_open(project, rules, "record acts")
    services = tuple(s.service for s in project.launched if s.task_id in task_ids)
    completions: list[TaskCompleted] = []
    state = project
    pending = [t for t in task_ids if (task := project.task(t)) and task.completed_at is None]
    while pending:
        ready = [t for t in pending if not _waits(state, t)]
        # nothing ready: the first pending task's completion names what it waits for
        for task_id in ready or pending[:1]:
            done = decide(state, CompleteTask(task_id), rules, meta)
            assert isinstance(done, TaskCompleted)
            completions.append(done)
            state = evolve(state, done)
            pending.remove(task_id)
    act = ProjectActRecorded(
        **meta.event_fields(),
        number=number,
        act_date=act_date,
        amount=amount,
        task_ids=task_ids,
        services=services,
        invoice_number=invoice_number,
    )
    return act, tuple(completions)


# --- evolve -----------------------------------------------------------------------------


def evolve(project: Project | None, event: DomainEvent) -> Project:
    if project is None:
        if not isinstance(event, ProjectCreated):
            raise ValueError(f"a project's stream must start with ProjectCreated, not {event.type}")
        return Project(
            project_id=event.project_id,
            version=1,
            title=event.title,
            company_name=event.company_name,
            company_id=event.company_id,
            amount=event.amount,
            lead_id=event.lead_id,
            deal_id=event.deal_id,
            funnel=event.funnel,
            manager=event.manager,
            department=event.department,
            direction=event.direction,
            category=event.category,
            pm=event.pm,
            curator=event.curator,
            planned_start=event.planned_start,
            planned_end=event.planned_end,
            status=event.status,
            status_entered_at=event.at,
            tasks=(),
            entries=(),
            manual_health=None,
            computed_health="good",
            computed_reasons=(),
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
            currency=event.currency,
            contact=event.contact,
            source=event.source,
            need_maturity=event.need_maturity,
            expert=event.expert,
            description=event.description,
            answer_due=event.answer_due,
            cost_components=tuple(event.cost_components),
        )
    changes: dict[str, Any]
    match event:
        case ProjectCardUpdated(changes=card):
            changes = {f: _from_json(f, c["new"]) for f, c in card.items()}
        case ProjectStatusChanged(to_status=to_status):
            changes = {"status": to_status, "status_entered_at": event.at}
        case TaskAdded():
            task = Task(
                task_id=event.task_id,
                title=event.title,
                assignee=event.assignee,
                planned_hours=event.planned_hours,
                start=event.start,
                due=event.due,
                depends_on=tuple(event.depends_on),
                percent_done=0,
                completed_at=None,
            )
            changes = {"tasks": (*project.tasks, task)}
        case TaskUpdated(task_id=task_id, changes=task_changes):
            updates = {f: _from_json(f, c["new"]) for f, c in task_changes.items()}
            changes = {
                "tasks": tuple(
                    replace(t, **updates) if t.task_id == task_id else t for t in project.tasks
                )
            }
        case TaskCompleted(task_id=task_id):
            changes = {
                "tasks": tuple(
                    replace(t, completed_at=event.at, percent_done=100)
                    if t.task_id == task_id
                    else t
                    for t in project.tasks
                )
            }
        case HoursLogged():
            entry = TimeEntry(event.entry_id, event.person, event.task_id, event.day, event.hours)
            changes = {"entries": (*project.entries, entry)}
        case HoursCorrected(entry_id=entry_id, hours=hours):
            changes = {
                "entries": tuple(
                    replace(e, hours=hours) if e.entry_id == entry_id else e
                    for e in project.entries
                )
            }
        case ProjectHealthSet(level=level, comment=comment):
            changes = {"manual_health": ManualHealth(level, comment, event.actor, event.at)}
        case ProjectHealthCleared():
            changes = {"manual_health": None}
        case ProjectHealthComputed(level=level, reasons=reasons):
            changes = {"computed_health": level, "computed_reasons": tuple(reasons)}
        case ProjectServicesLaunched(services=services):
            changes = {"launched": (*project.launched, *services)}
        case ProjectActRecorded():
            act = Act(
                number=event.number,
                act_date=event.act_date,
                amount=event.amount,
                task_ids=tuple(event.task_ids),
                services=tuple(event.services),
                invoice_number=event.invoice_number,
                recorded_at=event.at,
                recorded_by=event.actor,
            )
            changes = {"acts": (*project.acts, act)}
        case _:
            raise ValueError(f"not a project event: {event.type}")
    changes["version"] = project.version + 1
    changes["updated_at"] = event.at
    return replace(project, **changes)


def fold(events: list[DomainEvent]) -> Project | None:
    project: Project | None = None
    for event in events:
        project = evolve(project, event)
    return project


# --- a won deal's project, imported with it (issue 18 §2) -------------------------------


@dataclass(frozen=True)
class ImportedCard:
    """An imported won deal's project as its file says: its status, PM, planned start and
    end and value (None: as the project is created)."""

    status: str | None = None
    pm: str | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    amount: Decimal | None = None


def import_project(
    command: CreateProject,
    card: ImportedCard,
    rules: ProjectRules,
    opened: CommandMeta,
    meta: CommandMeta,
) -> list[DomainEvent]:
    """The project of an imported won deal: created when the deal was won (``opened``),
    as the project process creates one, then its card and status set as the file says
    through this module's deciders (``meta``: the import), as a PM would set them. Only
    what differs from the new project is changed."""
    created = create(command, rules, opened)
    state = evolve(None, created)
    events: list[DomainEvent] = [created]
    changes = {
        name: value
        for name, value in (
            ("pm", card.pm),
            ("planned_start", card.planned_start),
            ("planned_end", card.planned_end),
            ("amount", card.amount),
        )
        if value is not None and value != getattr(state, name)
    }
    if changes:
        updated = decide(state, UpdateProjectCard(changes), rules, meta)
        state = evolve(state, updated)
        events.append(updated)
    if card.status is not None and card.status != state.status:
        moved = decide(state, MoveProjectToStatus(card.status), rules, meta)
        events.append(moved)
    return events
