"""Public events of a project: delivery after the sale (card, status, tasks, hours, health).

Published on the ``project`` aggregate type; the aggregate id is the project id.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import (
    CardChanges,
    CurrencyCode,
    Day,
    HealthLevel,
    Hours,
    Id,
    Money,
    PublicPayload,
)


class ProjectCreatedV1(PublicPayload):
    """A project was opened, usually for a won deal, in the first project status."""

    project_id: Id
    title: str
    company_name: str
    company_id: str | None = Field(description="The client's id in the company registry.")
    amount: Money = Field(description="The project's value.")
    lead_id: Id | None = Field(description="The lead the project comes from, if any.")
    deal_id: Id | None = Field(description="The deal the project comes from, if any.")
    funnel: str | None = Field(description="The deal funnel it was sold in, if any.")
    manager: str | None = Field(description="The sales manager.")
    department: str | None
    direction: str | None = Field(description="The line of business.")
    category: str | None
    pm: str | None = Field(description="The project manager.")
    curator: str | None
    planned_start: Day | None
    planned_end: Day | None
    status: str = Field(description="The project's first status (configured, e.g. planning).")


class ProjectCostComponent(PublicPayload):
    """One line of the cost breakdown a project carries from its lead."""

    name: str
    amount: Money


class ProjectCreatedV2(ProjectCreatedV1):
    """A project was opened in the first project status, carrying the card of the lead it
    was delivered from directly when it was (version 2; version 1: the amount was in
    roubles, RUB, and no card details were carried)."""

    currency: CurrencyCode = Field(
        default="RUB", description="ISO 4217 currency of ``amount``, e.g. RUB."
    )
    contact: str | None = Field(
        default=None, description="The client's contact person, from the lead."
    )
    source: str | None = Field(default=None, description="Where the lead came from.")
    need_maturity: str | None = Field(default=None, description="How mature the client's need was.")
    expert: str | None = Field(default=None, description="The lead's expert.")
    description: str | None = None
    answer_due: Day | None = Field(default=None, description="The lead's answer date.")
    cost_components: tuple[ProjectCostComponent, ...] = Field(
        default=(), description="The lead's cost breakdown when the project began."
    )


class ProjectCardUpdatedV1(PublicPayload):
    """Fields of the project's card were edited (title, PM, curator, department, direction,
    category, manager, planned start and end, amount)."""

    changes: CardChanges


class ProjectStatusChangedV1(PublicPayload):
    """The project moved to another status (``done`` closes it; moving back reopens it)."""

    from_status: str
    to_status: str


class TaskAddedV1(PublicPayload):
    """A task was added to the project's plan."""

    task_id: str = Field(description="The task's id within the project.")
    title: str
    assignee: str | None
    planned_hours: Hours
    start: Day | None
    due: Day | None
    depends_on: tuple[str, ...] = Field(
        description="Ids of the tasks that must be complete before this one."
    )


class TaskUpdatedV1(PublicPayload):
    """Fields of a task were edited (including its percent done)."""

    task_id: str
    changes: CardChanges


class TaskCompletedV1(PublicPayload):
    """A task was completed."""

    task_id: str


class HoursLoggedV1(PublicPayload):
    """A person logged hours worked on the project for a day."""

    entry_id: Id = Field(description="The time entry; corrections name it.")
    person: str
    task_id: str | None = Field(description="The task worked on; null for the project itself.")
    day: Day
    hours: Hours


class HoursCorrectedV1(PublicPayload):
    """A time entry's hours were corrected."""

    entry_id: Id = Field(description="The corrected time entry.")
    person: str
    day: Day
    old_hours: Hours = Field(description="The entry's hours before the correction.")
    hours: Hours = Field(description="The entry's hours from now on.")
    reason: str


class ProjectHealthSetV1(PublicPayload):
    """The PM set the project's health by hand; it overrides the computed health until
    cleared."""

    level: HealthLevel
    comment: str


class ProjectHealthClearedV1(PublicPayload):
    """The PM cleared the health set by hand; the computed health applies again."""

    level: HealthLevel = Field(description="The manual level that was cleared.")


class ProjectHealthComputedV1(PublicPayload):
    """The project's computed health changed."""

    level: HealthLevel
    reasons: tuple[str, ...] = Field(description="Why, one reason per rule that holds.")


class LaunchedService(PublicPayload):
    """A service of the proposal launched into work, and the task it became."""

    service: str
    task_id: str = Field(description="The task created for it.")
    price: Money = Field(description="The service's price in the proposal.")
    planned_hours: Hours = Field(description="Hours planned by the calculation (0: none).")


class ProjectServicesLaunchedV1(PublicPayload):
    """Services of the won deal's proposal were launched into work; each became a task
    (whose ``TaskAdded`` follows in the same write)."""

    services: tuple[LaunchedService, ...]
    calculation_id: Id | None = Field(
        description="The request for calculation the proposal was built from, if any."
    )


class ProjectActRecordedV1(PublicPayload):
    """An act of completed work was recorded; the completions of the open tasks it covers
    follow in the same write."""

    number: str = Field(description="The act's number, unique within the project.")
    act_date: Day
    amount: Money
    task_ids: tuple[str, ...] = Field(description="The tasks the act covers.")
    services: tuple[str, ...] = Field(description="The launched services among them.")
    invoice_number: str | None = Field(description="The invoice the act is recorded on.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "project": (
        ProjectCreatedV1,
        ProjectCreatedV2,
        ProjectCardUpdatedV1,
        ProjectStatusChangedV1,
        TaskAddedV1,
        TaskUpdatedV1,
        TaskCompletedV1,
        HoursLoggedV1,
        HoursCorrectedV1,
        ProjectHealthSetV1,
        ProjectHealthClearedV1,
        ProjectHealthComputedV1,
        ProjectServicesLaunchedV1,
        ProjectActRecordedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""
