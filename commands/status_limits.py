"""Status limit handlers: set, change or remove the time limit of a stage or status, and
the limit in force at an instant (read by the project health's process manager)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregates import status_limits
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent


def load_status_limit_records(
    store: EventStore,
    kind: str,
    funnel: str | None,
    stage: str,
    *,
    as_of: datetime | None = None,
) -> list[RecordedEvent]:
    stream_id = status_limits.status_limit_stream_id(kind, funnel, stage)
    return load_stream(store, stream_id, status_limits.StatusLimitSet, as_of=as_of)


def set_status_limit(
    store: EventStore,
    funnels: FunnelCatalog,
    rules: Rules,
    command: status_limits.SetStatusLimit,
    ctx: CommandContext,
) -> CommandResult:
    configured = status_limits.configured_limit(
        command.kind, command.funnel, command.stage, funnels, rules
    )
    stream_id = status_limits.status_limit_stream_id(command.kind, command.funnel, command.stage)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = status_limits.fold([r.event for r in history])
        event = status_limits.decide(state, command, configured, ctx.meta)
        return [NewEvent(stream_id, len(history) + 1, event)]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="status limit",
        must_exist=None,
        load=lambda _: load_status_limit_records(
            store, command.kind, command.funnel, command.stage
        ),
    )


def project_status_limit(
    store: EventStore, rules: Rules, status: str, at: datetime
) -> float | None:
    """The limit in force at ``at`` of a project status (None: none), as set by hand or,
    before that, configured."""
    found = rules.project.status(status)
    if found is None or found.stops_clock or found.id == rules.project.done_status:
        return None
    records = load_status_limit_records(store, "project", None, status)
    return status_limits.in_force(found.time_limit_hours, [r.event for r in records], at)
