"""Personal weekly plans («Личные Планы», seed 004): a manager plans, for each day of a
week, how many activities of each type they will do; their head and top management read
the plan and comment on it.

One stream per manager and week (the week named by its Monday). Setting the plan again
replaces it whole. A week that is over can no longer be planned (its plan is what the
activity coefficient measured against). Who may set or comment on whose plan is the
ownership policy (``commands/policy.py``): the manager themselves, their head, or top
management; another manager gets a 403.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import ActivityRules

PLAN_NAMESPACE = UUID("9d3f6a2b-1c7e-4b58-a0d4-3e6f8c1b2a97")
MAX_PER_DAY = 500
"""Activities of one type on one day: more is a typo."""
MAX_COMMENTS = 1000


def plan_stream_id(manager: str, week: date) -> UUID:
    return uuid5(PLAN_NAMESPACE, f"activity-plan:{manager}:{week.isoformat()}")


@dataclass(frozen=True)
class PlannedCount:
    """How many activities of a type a day of the plan holds."""

    day: date
    activity_type: str
    count: int


@dataclass(frozen=True)
class Comment:
    author: str
    text: str
    at: datetime


@dataclass(frozen=True)
class ActivityPlan:
    plan_id: UUID
    version: int
    manager: str
    week: date
    days: dict[str, dict[str, int]]
    """ISO day → activity type → count (only counts above 0)."""
    note: str | None
    comments: tuple[Comment, ...]
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class SetActivityPlan:
    manager: str
    week: date
    days: dict[date, dict[str, int]]
    note: str | None = None


@dataclass(frozen=True)
class CommentActivityPlan:
    text: str


@dataclass(frozen=True, kw_only=True)
class ActivityPlanSet(DomainEvent):
    """The manager's plan for the week (the whole plan, replacing any earlier one)."""

    plan_id: UUID
    manager: str
    week: date
    counts: tuple[PlannedCount, ...]
    """Only counts above 0, by day and type."""
    note: str | None


@dataclass(frozen=True, kw_only=True)
class ActivityPlanCommented(DomainEvent):
    text: str


ACTIVITY_PLAN_EVENT_TYPES: tuple[type[DomainEvent], ...] = (ActivityPlanSet, ActivityPlanCommented)


def require_monday(value: date, field: str = "week") -> date:
    if value.weekday() != 0:
        raise InvalidValue(field, f"'{field}' must be a Monday (the week's first day)")
    return value


def set_plan(
    plan: ActivityPlan | None, command: SetActivityPlan, rules: ActivityRules, meta: CommandMeta
) -> ActivityPlanSet:
    week = require_monday(command.week)
    today = meta.at.astimezone(UTC).date()
    if week + timedelta(days=7) <= today:
        raise RuleViolation("week_over", f"the week of {week} is over: its plan stays as it was")
    if week > today + timedelta(days=366):
        raise InvalidValue("week", "'week' must not be more than a year ahead")
    days: dict[str, dict[str, int]] = {}
    for day, counts in sorted(command.days.items()):
        if not week <= day < week + timedelta(days=7):
            raise InvalidValue("days", f"{day} is not a day of the week of {week}")
        checked: dict[str, int] = {}
        for code, count in sorted(counts.items()):
            rules.require_type(code, f"days[{day}].counts")
            if isinstance(count, bool) or not isinstance(count, int):
                raise InvalidValue(f"days[{day}].counts", "counts must be whole numbers")
            if not 0 <= count <= MAX_PER_DAY:
                raise InvalidValue(
                    f"days[{day}].counts", f"a count must be between 0 and {MAX_PER_DAY}"
                )
            if count:
                checked[code] = count
        if checked:
            days[day.isoformat()] = checked
    note = values.text("note", command.note, required=False)
    if plan is not None and (plan.days, plan.note) == (days, note):
        raise RuleViolation("no_change", "the plan is like that already")
    planned = tuple(
        PlannedCount(date.fromisoformat(day), code, n)
        for day, per_type in days.items()
        for code, n in per_type.items()
    )
    return ActivityPlanSet(
        **meta.event_fields(),
        plan_id=plan_stream_id(command.manager, week),
        manager=command.manager,
        week=week,
        counts=planned,
        note=note,
    )


def days_of(counts: tuple[PlannedCount, ...]) -> dict[str, dict[str, int]]:
    days: dict[str, dict[str, int]] = {}
    for c in counts:
        days.setdefault(c.day.isoformat(), {})[c.activity_type] = c.count
    return days


def comment(plan: ActivityPlan, command: CommentActivityPlan, meta: CommandMeta) -> DomainEvent:
    if len(plan.comments) >= MAX_COMMENTS:
        raise RuleViolation("too_many_comments", f"a plan takes at most {MAX_COMMENTS} comments")
    return ActivityPlanCommented(
        **meta.event_fields(), text=values.required_text("text", command.text)
    )


def evolve(plan: ActivityPlan | None, event: DomainEvent) -> ActivityPlan:
    if isinstance(event, ActivityPlanSet):
        if plan is None:
            return ActivityPlan(
                plan_id=event.plan_id,
                version=1,
                manager=event.manager,
                week=event.week,
                days=days_of(event.counts),
                note=event.note,
                comments=(),
                updated_at=event.at,
                updated_by=event.actor,
            )
        return replace(
            plan,
            version=plan.version + 1,
            days=days_of(event.counts),
            note=event.note,
            updated_at=event.at,
            updated_by=event.actor,
        )
    if plan is None:
        raise ValueError(f"a plan's stream starts with ActivityPlanSet, not {event.type}")
    if isinstance(event, ActivityPlanCommented):
        comment_ = Comment(event.actor, event.text, event.at)
        return replace(plan, version=plan.version + 1, comments=(*plan.comments, comment_))
    raise ValueError(f"not a plan event: {event.type}")


def fold(events: list[DomainEvent]) -> ActivityPlan | None:
    plan: ActivityPlan | None = None
    for event in events:
        plan = evolve(plan, event)
    return plan
