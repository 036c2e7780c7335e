"""Alert inbox handlers: a user marks alerts addressed to them read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aggregates import inbox
from commands.context import CommandContext, CommandResult
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent


class _NothingNew(Exception):
    """Every alert named is read already: nothing is appended."""

    def __init__(self, history: list[RecordedEvent]) -> None:
        super().__init__("nothing new")
        self.history = history


def load_inbox_records(store: EventStore, username: str) -> list[RecordedEvent]:
    return load_stream(store, inbox.inbox_stream_id(username), inbox.AlertsRead)


@dataclass(frozen=True)
class Marked:
    result: CommandResult
    alert_ids: tuple[int, ...]
    """The alerts this command marked read (none when all were read already)."""


def mark_alerts_read(
    store: EventStore, command: inbox.MarkAlertsRead, ctx: CommandContext
) -> Marked:
    """Record the alerts newly read; when there are none the answer is the inbox as it
    is (``replayed``: nothing was appended). A repeated Idempotency-Key answers what the
    first request marked."""
    stream_id = inbox.inbox_stream_id(command.reader)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = inbox.fold([r.event for r in history])
        event = inbox.mark_read(state, command, ctx.meta)
        if event is None:
            raise _NothingNew(history)
        return [NewEvent(stream_id, len(history) + 1, event)]

    try:
        result = execute(
            store,
            ctx,
            stream_id,
            decide,
            what="alert inbox",
            must_exist=None,
            load=lambda _: load_inbox_records(store, command.reader),
        )
    except _NothingNew as nothing:
        last = nothing.history[-1] if nothing.history else None
        return Marked(
            CommandResult(
                stream_id, last.version if last else 0, last.position if last else 0, True
            ),
            (),
        )
    for record in load_inbox_records(store, command.reader):
        if record.version == result.version and record.event.command_id == ctx.command_id:
            assert isinstance(record.event, inbox.AlertsRead)
            return Marked(result, record.event.alert_ids)
    return Marked(result, ())
