"""Sales plan handlers: set or change a manager's monthly plan (the rule of who may is the
aggregate's, :func:`aggregates.sales_plans.may_set`), and a plan's history."""

from __future__ import annotations

from collections.abc import Sequence

from aggregates import sales_plans, users
from commands.context import CommandContext, CommandResult
from commands.execution import execute, load_stream
from commands.users import load_user_records
from event_store import EventStore, NewEvent, RecordedEvent


def load_sales_plan_records(store: EventStore, manager: str, month: str) -> list[RecordedEvent]:
    stream_id = sales_plans.sales_plan_stream_id(manager, month)
    return load_stream(store, stream_id, sales_plans.SalesPlanSet)


def person(store: EventStore, username: str) -> sales_plans.Person | None:
    """The directory's record of a person, as the plan rule reads it (None: no such user)."""
    if not users.USERNAME.match(username):
        return None
    state = users.fold([r.event for r in load_user_records(store, username)])
    if state is None:
        return None
    return sales_plans.Person(state.username, state.role.value, state.department, state.active)


def set_sales_plan(
    store: EventStore,
    command: sales_plans.SetSalesPlan,
    setter: sales_plans.Person,
    ctx: CommandContext,
) -> CommandResult:
    """``setter``: the actor's role and department (from their signed principal)."""
    sales_plans.month(command.month)
    planned = person(store, command.manager)
    stream_id = sales_plans.sales_plan_stream_id(command.manager, command.month)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = sales_plans.fold([r.event for r in history])
        event = sales_plans.decide(state, command, setter, planned, ctx.meta)
        return [NewEvent(stream_id, len(history) + 1, event)]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="sales plan",
        must_exist=None,
        load=lambda _: load_sales_plan_records(store, command.manager, command.month),
    )
