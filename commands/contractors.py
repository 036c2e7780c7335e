"""Contractor directory handlers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid5

from aggregates import contractor
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent

CONTRACTOR_NAMESPACE = UUID("4c2e9b7a-3d1f-4a6c-8e5b-7f0a9d2c1b34")


def contractor_id_for(command_id: UUID) -> UUID:
    return uuid5(CONTRACTOR_NAMESPACE, f"command:{command_id}")


def load_contractor_records(
    store: EventStore, contractor_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return load_stream(store, contractor_id, contractor.ContractorRegistered, as_of=as_of)


def load_contractor(store: EventStore, contractor_id: UUID) -> contractor.Contractor:
    state = contractor.fold([r.event for r in load_contractor_records(store, contractor_id)])
    if state is None:
        raise StreamNotFound(f"contractor {contractor_id} not found")
    return state


def register_contractor(
    store: EventStore, command: contractor.RegisterContractor, ctx: CommandContext
) -> CommandResult:
    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        return [NewEvent(command.contractor_id, 1, contractor.register(command, ctx.meta))]

    return execute(store, ctx, command.contractor_id, decide, what="contractor", must_exist=False)


def update_contractor(
    store: EventStore,
    contractor_id: UUID,
    command: contractor.UpdateContractor,
    ctx: CommandContext,
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = contractor.fold([r.event for r in history])
        assert state is not None
        return [
            NewEvent(contractor_id, state.version + 1, contractor.update(state, command, ctx.meta))
        ]

    return execute(
        store,
        ctx,
        contractor_id,
        decide,
        what="contractor",
        load=lambda stream_id: load_contractor_records(store, stream_id),
    )
