"""Public events of the managers' activities («Мои Дела»: calls, meetings, demonstrations,
e-mails).

Published on the ``activity`` aggregate type (the aggregate id is the activity id) and,
for the personal weekly plans, on ``activity_plan`` (one per manager and week).
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Day, Id, Instant, PublicPayload


class ActivityPlannedV1(PublicPayload):
    """An activity was planned for its owner (by them, their head or top management)."""

    activity_id: Id
    activity_type: str = Field(description="The configured activity type's code.")
    group: str = Field(description="The type's group: calls, meetings, demos or emails.")
    direction: str | None = Field(description="in, out, or null (meetings, demonstrations).")
    owner: str = Field(description="The person the activity is for.")
    company_id: str | None = Field(description="The client company.")
    contact: str | None = Field(description="The client contact (person, phone, e-mail).")
    lead_id: Id | None
    deal_id: Id | None
    project_id: Id | None
    planned_at: Instant = Field(description="When it is to start.")
    duration_minutes: int
    notes: str | None


class ActivityRegisteredV1(PublicPayload):
    """An activity that happened was recorded after the fact (an incoming call or e-mail,
    or an unplanned one): done at once, at ``planned_at``."""

    activity_id: Id
    activity_type: str = Field(description="The configured activity type's code.")
    group: str = Field(description="The type's group: calls, meetings, demos or emails.")
    direction: str | None = Field(description="in, out, or null (meetings, demonstrations).")
    owner: str = Field(description="The person the activity is for.")
    company_id: str | None = Field(description="The client company.")
    contact: str | None = Field(description="The client contact (person, phone, e-mail).")
    lead_id: Id | None
    deal_id: Id | None
    project_id: Id | None
    planned_at: Instant = Field(description="When it happened.")
    duration_minutes: int
    notes: str | None
    result: str | None


class ActivityDoneV1(PublicPayload):
    """A planned activity was done, with its result."""

    result: str


class ActivityCancelledV1(PublicPayload):
    """A planned activity was cancelled."""

    reason: str | None


class ActivityRescheduledV1(PublicPayload):
    """A planned activity was moved to another time."""

    planned_at: Instant = Field(description="The new start.")
    duration_minutes: int
    previous_planned_at: Instant
    reason: str | None


class ActivityOverdueReminderSentV1(PublicPayload):
    """A planned activity's end passed undone: its owner was reminded."""

    recipient: str = Field(description="Who was reminded: the activity's owner.")
    planned_end: Instant
    due: Day = Field(description="The planned end's day (UTC).")


class PlannedCount(PublicPayload):
    """How many activities of a type a day of the plan holds."""

    day: Day
    activity_type: str = Field(description="The activity type's code.")
    count: int


class ActivityPlanSetV1(PublicPayload):
    """A manager's personal plan for a week («Личные Планы»): how many activities of each
    type on each day; the whole plan, replacing any earlier one."""

    plan_id: Id
    manager: str
    week: Day = Field(description="The week's Monday.")
    counts: tuple[PlannedCount, ...] = Field(
        description="By day and type, how many (only counts above 0)."
    )
    note: str | None


class ActivityPlanCommentedV1(PublicPayload):
    """The manager's head (or top management, or the manager) commented on the plan."""

    text: str


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "activity": (
        ActivityPlannedV1,
        ActivityRegisteredV1,
        ActivityDoneV1,
        ActivityCancelledV1,
        ActivityRescheduledV1,
        ActivityOverdueReminderSentV1,
    ),
    "activity_plan": (ActivityPlanSetV1, ActivityPlanCommentedV1),
}
"""The models of this module by aggregate type, every version of every event type."""
