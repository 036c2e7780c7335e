"""Activity handlers: plan or register, mark done, cancel, reschedule, and the overdue
reminder the deadlines process manager sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from uuid import UUID, uuid5

from aggregates import activities, activity_plans
from aggregates.rules import ActivityRules
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.deals import load_deal_records
from commands.execution import execute, load_stream
from commands.leads import load_lead_records
from commands.projects import load_project_records
from event_store import EventStore, NewEvent, RecordedEvent

ACTIVITY_NAMESPACE = UUID("5b8e1c2d-7a43-4f19-9c6e-2d8a0b4f7e51")


def activity_id_for(command_id: UUID) -> UUID:
    return uuid5(ACTIVITY_NAMESPACE, f"command:{command_id}")


def load_activity_records(
    store: EventStore, activity_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return load_stream(store, activity_id, activities.CREATIONS, as_of=as_of)


def activity_of(records: list[RecordedEvent]) -> activities.Activity | None:
    return activities.fold([r.event for r in records])


def load_activity(
    store: EventStore, activity_id: UUID, *, as_of: datetime | None = None
) -> activities.Activity:
    state = activity_of(load_activity_records(store, activity_id, as_of=as_of))
    if state is None:
        raise StreamNotFound(f"activity {activity_id} not found")
    return state


def plan_activity(
    store: EventStore,
    rules: ActivityRules,
    command: activities.PlanActivity,
    ctx: CommandContext,
) -> CommandResult:
    """Plan an activity (or register one that happened): a new stream."""
    missing = _missing_records(store, command)

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        event = activities.plan(command, rules, ctx.meta, missing=missing)
        return [NewEvent(command.activity_id, 1, event)]

    return execute(store, ctx, command.activity_id, decide, what="activity", must_exist=False)


def _missing_records(store: EventStore, command: activities.PlanActivity) -> frozenset[str]:
    """The fields of ``activities.ABOUT_FIELDS`` naming a record that does not exist."""
    loaders: dict[str, Callable[[EventStore, UUID], list[RecordedEvent]]] = {
        "lead_id": load_lead_records,
        "deal_id": load_deal_records,
        "project_id": load_project_records,
    }
    named = {
        "lead_id": command.lead_id,
        "deal_id": command.deal_id,
        "project_id": command.project_id,
    }
    return frozenset(
        field
        for field, record_id in named.items()
        if record_id is not None and not loaders[field](store, record_id)
    )


def handle_activity_command(
    store: EventStore,
    activity_id: UUID,
    command: activities.ActivityCommand,
    ctx: CommandContext,
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = activity_of(history)
        assert state is not None
        event = activities.decide(state, command, ctx.meta)
        return [NewEvent(activity_id, state.version + 1, event)]

    return execute(
        store,
        ctx,
        activity_id,
        decide,
        what="activity",
        load=lambda stream_id: load_activity_records(store, stream_id),
        state_of=activity_of,
    )


# --- personal weekly plans ----------------------------------------------------------------


def load_plan_records(
    store: EventStore, manager: str, week: date, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    stream_id = activity_plans.plan_stream_id(manager, week)
    return load_stream(store, stream_id, activity_plans.ActivityPlanSet, as_of=as_of)


def plan_of(records: list[RecordedEvent]) -> activity_plans.ActivityPlan | None:
    return activity_plans.fold([r.event for r in records])


def set_activity_plan(
    store: EventStore,
    rules: ActivityRules,
    command: activity_plans.SetActivityPlan,
    ctx: CommandContext,
) -> CommandResult:
    """Set (or replace) a manager's plan for a week."""
    week = activity_plans.require_monday(command.week)
    stream_id = activity_plans.plan_stream_id(command.manager, week)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = plan_of(history)
        event = activity_plans.set_plan(state, command, rules, ctx.meta)
        return [NewEvent(stream_id, len(history) + 1, event)]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="activity plan",
        must_exist=None,
        load=lambda _: load_plan_records(store, command.manager, week),
    )


def comment_activity_plan(
    store: EventStore,
    manager: str,
    week: date,
    command: activity_plans.CommentActivityPlan,
    ctx: CommandContext,
) -> CommandResult:
    week = activity_plans.require_monday(week)
    stream_id = activity_plans.plan_stream_id(manager, week)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = plan_of(history)
        assert state is not None
        event = activity_plans.comment(state, command, ctx.meta)
        return [NewEvent(stream_id, state.version + 1, event)]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what=f"activity plan of {manager} for the week of {week}",
        load=lambda _: load_plan_records(store, manager, week),
    )
