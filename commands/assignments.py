"""Client assignment handlers: the manager's monthly new-client cap holds under
concurrency because every assignment books its count on the manager's month stream at
its next version, in the same atomic write."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from aggregates import limits
from aggregates.base import DomainEvent
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent


def load_assignment_records(store: EventStore, assignment_id: UUID) -> list[RecordedEvent]:
    kinds = (limits.ClientAssigned, limits.ClientAssignmentApprovalRequested)
    return load_stream(store, assignment_id, kinds)


def _with_count(
    store: EventStore,
    decided: tuple[DomainEvent, limits.ManagerClientTaken | None],
    assignment_id: UUID,
    version: int,
    month_stream: UUID,
    month_version: int,
) -> list[NewEvent]:
    event, taken = decided
    new_events = [NewEvent(assignment_id, version + 1, event)]
    if taken is not None:
        new_events.append(NewEvent(month_stream, month_version + 1, taken))
    return new_events


def assign_client(
    store: EventStore, rules: Rules, command: limits.AssignClient, ctx: CommandContext
) -> CommandResult:
    """Assign at once under the cap, else record a request for a head's approval."""
    assignment_id = limits.assignment_id_for(command.company_id.strip(), command.direction.strip())

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = limits.fold_assignment([r.event for r in history])
        month_stream = limits.manager_month_stream_id(
            command.manager.strip(), limits.month_of(ctx.at)
        )
        month = store.load(month_stream)
        decided = limits.assign(
            state, command, limits.manager_month_count([r.event for r in month]), rules, ctx.meta
        )
        return _with_count(store, decided, assignment_id, len(history), month_stream, len(month))

    return execute(
        store,
        ctx,
        assignment_id,
        decide,
        what="client assignment",
        must_exist=None,
        load=lambda stream_id: load_assignment_records(store, stream_id),
    )


def decide_assignment(
    store: EventStore,
    rules: Rules,
    assignment_id: UUID,
    command: limits.DecideAssignment,
    ctx: CommandContext,
) -> CommandResult:
    """A head approves (the manager takes the client over the cap) or declines."""

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = limits.fold_assignment([r.event for r in history])
        assert state is not None
        manager = state.requested_manager or state.manager or ""
        month_stream = limits.manager_month_stream_id(manager, limits.month_of(ctx.at))
        month = store.load(month_stream)
        decided = limits.decide_approval(
            state, command, limits.manager_month_count([r.event for r in month]), rules, ctx.meta
        )
        return _with_count(store, decided, assignment_id, len(history), month_stream, len(month))

    return execute(
        store,
        ctx,
        assignment_id,
        decide,
        what="client assignment",
        load=lambda stream_id: load_assignment_records(store, stream_id),
        state_of=lambda history: limits.fold_assignment([r.event for r in history]),
    )
