"""Directory entry handlers: register, edit, link to a lead or a project, unlink."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID, uuid5

from aggregates import directory_entry as entries
from aggregates.base import CommandMeta, DomainEvent
from aggregates.directory_entry import DirectoryCatalog, DirectoryKind
from aggregates.errors import InvalidValue
from aggregates.lead import LeadCreated
from aggregates.project import ProjectCreated
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent

ENTRY_NAMESPACE = UUID("5d8a3e21-7b4c-4f09-a6e2-3c1b9d0f4a77")
TARGET_FIRST_EVENTS: dict[str, type[DomainEvent]] = {"lead": LeadCreated, "project": ProjectCreated}


def entry_id_for(command_id: UUID) -> UUID:
    return uuid5(ENTRY_NAMESPACE, f"command:{command_id}")


def require_kind(catalog: DirectoryCatalog, kind_id: str) -> DirectoryKind:
    """The configured kind, or a 404 naming the known ones."""
    kind = catalog.get(kind_id)
    if kind is None:
        known = ", ".join(catalog.kinds)
        raise StreamNotFound(f"directory '{kind_id}' not found (directories: {known})")
    return kind


def load_entry_records(
    store: EventStore, entry_id: UUID, kind: str | None = None, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    """An entry's events ([] for an id of another kind of record, or of another directory)."""
    records = load_stream(store, entry_id, entries.DirectoryEntryRegistered, as_of=as_of)
    if records and kind is not None:
        first = records[0].event
        assert isinstance(first, entries.DirectoryEntryRegistered)
        if first.kind != kind:
            return []
    return records


def register_entry(
    store: EventStore, kind: DirectoryKind, command: entries.RegisterEntry, ctx: CommandContext
) -> CommandResult:
    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        return [NewEvent(command.entry_id, 1, entries.register(kind, command, ctx.meta))]

    return execute(store, ctx, command.entry_id, decide, what="entry", must_exist=False)


def _on_entry(
    store: EventStore,
    kind: DirectoryKind,
    entry_id: UUID,
    ctx: CommandContext,
    decide_event: Callable[[entries.DirectoryEntry, CommandMeta], DomainEvent],
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = entries.fold([r.event for r in history])
        assert state is not None
        return [NewEvent(entry_id, state.version + 1, decide_event(state, ctx.meta))]

    return execute(
        store,
        ctx,
        entry_id,
        decide,
        what=f"{kind.id} entry",
        load=lambda stream_id: load_entry_records(store, stream_id, kind.id),
    )


def update_entry(
    store: EventStore,
    kind: DirectoryKind,
    entry_id: UUID,
    command: entries.UpdateEntry,
    ctx: CommandContext,
) -> CommandResult:
    return _on_entry(store, kind, entry_id, ctx, lambda s, m: entries.update(kind, s, command, m))


def link_entry(
    store: EventStore,
    kind: DirectoryKind,
    entry_id: UUID,
    command: entries.LinkEntry,
    ctx: CommandContext,
) -> CommandResult:
    """Link the entry to an existing lead or project (422 naming target_id otherwise)."""
    first = TARGET_FIRST_EVENTS.get(command.target)
    if first is None:
        raise InvalidValue("target", f"'target' must be one of: {', '.join(TARGET_FIRST_EVENTS)}")
    if not load_stream(store, command.target_id, first):
        raise InvalidValue("target_id", f"{command.target} {command.target_id} does not exist")
    return _on_entry(store, kind, entry_id, ctx, lambda s, m: entries.link(kind, s, command, m))


def unlink_entry(
    store: EventStore,
    kind: DirectoryKind,
    entry_id: UUID,
    command: entries.UnlinkEntry,
    ctx: CommandContext,
) -> CommandResult:
    return _on_entry(store, kind, entry_id, ctx, lambda s, m: entries.unlink(kind, s, command, m))
