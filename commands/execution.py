"""Running a command: load, decide, append atomically, and retry when another writer won.

A command has a **primary** stream (the one it is addressed to, whose version
``If-Match`` names) and may append to other streams in the same atomic write: the
parent deal of a hand-off request, a contractor's quote history, the revenue ledger of an
organisation, a manager's monthly count. When the append is refused because one of those
streams moved, the command is decided again on fresh state; when the primary stream
moved, the answer is a version conflict: one of two racing commands on a stream wins.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from aggregates.base import DomainEvent
from commands.context import (
    CommandContext,
    CommandResult,
    IdempotencyKeyReused,
    StreamNotFound,
    VersionConflict,
)
from event_store import ConcurrencyError, EventStore, NewEvent, RecordedEvent

MAX_ATTEMPTS = 200
"""Under heavy contention on one consistency boundary (e.g. 50 invoices racing for an
organisation's revenue ledger) each round lets one writer through; the rest decide again."""

Decision = Callable[[list[RecordedEvent]], Sequence[NewEvent]]
"""Given the primary stream's history, the events to append (the first one on the
primary stream at its next version)."""


def load_stream(
    store: EventStore,
    stream_id: UUID,
    first: type[DomainEvent] | tuple[type[DomainEvent], ...],
    *,
    as_of: datetime | None = None,
) -> list[RecordedEvent]:
    """A stream's recorded events when it is of the kind that starts with ``first``, else
    none: an id of another kind (a lead's id asked for as a deal's) reads as unknown."""
    records = store.load(stream_id, as_of=as_of)
    if records and not isinstance(records[0].event, first):
        return []
    return records


def find_replay(
    history: list[RecordedEvent], ctx: CommandContext, store: EventStore | None = None
) -> CommandResult | None:
    """The first result of this command if it was recorded already (an Idempotency-Key
    repeat, or a process manager's redelivered command). With the ``store`` that loaded
    ``history``, found through its index of the stream's commands, else by a scan."""
    if ctx.idempotency_key is None or not history:
        return None
    span = (
        store.command_span(history[0].stream_id, ctx.command_id, history)
        if store is not None
        else False
    )
    if span is None:
        return None
    if span is False:
        mine = [r for r in history if r.event.command_id == ctx.command_id]
        if not mine:
            return None
        span = (mine[0], mine[-1])
    assert span is not True
    first, last = span
    if first.event.request_hash != ctx.request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key '{ctx.idempotency_key}' was already used for a different request"
        )
    # the last of them: a command may append more than one event to its stream (a deal's
    # close and the notes of the requests it cancelled); its answer is where it left it
    return CommandResult(last.stream_id, last.version, last.position, True)


def execute(
    store: EventStore,
    ctx: CommandContext,
    stream_id: UUID,
    decide: Decision,
    *,
    what: str,
    must_exist: bool | None = True,
    load: Callable[[UUID], list[RecordedEvent]] | None = None,
    state_of: Callable[[list[RecordedEvent]], object] | None = None,
) -> CommandResult:
    """Decide and append, retrying on fresh state while other streams race ours.

    ``must_exist``: True for a command on an existing stream (404 when there is none),
    False for a creation (409 when the stream exists, unless this very command made it),
    None for either.
    ``load`` reads the primary stream (default: the whole stream; callers pass one that
    returns [] for a stream of another kind, so that an id of the wrong kind is a 404).
    ``state_of`` folds the primary stream into the state the context's ownership guard
    judges: the guard runs right after the load, before the replay, the existence and the
    version checks, so that a record the actor may not act on tells them nothing (the
    guard answers "not found" for a record the actor may not even see).
    """
    loader = load or store.load
    for attempt in range(MAX_ATTEMPTS):
        history = loader(stream_id)
        if state_of is not None and history and ctx.guard is not None:
            ctx.check(state_of(history))
        replayed = find_replay(history, ctx, store)
        if replayed is not None:
            return replayed
        if must_exist is True and not history:
            raise StreamNotFound(f"{what} {stream_id} not found")
        if must_exist is False and history:
            raise VersionConflict(f"{what} {stream_id} exists already", len(history))
        version = len(history)
        if ctx.expected_version is not None and ctx.expected_version != version:
            raise VersionConflict(
                f"the {what} is at version {version}, not {ctx.expected_version}", version
            )
        new_events = decide(history)
        try:
            positions = store.append(new_events)
        except ConcurrencyError:
            current = loader(stream_id)
            replayed = find_replay(current, ctx, store)
            if replayed is not None:
                return replayed
            if len(current) != version:
                # two commands on one stream: one wins, the other hears of it (never a
                # lost update, never a silent re-decision on state the client did not see)
                raise VersionConflict(
                    f"another command changed the {what} first; it is now at version "
                    f"{len(current)}",
                    len(current),
                ) from None
            if attempt >= 3:
                time.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))
            continue
        # the primary stream's last new event: its version is the stream's now
        last = max(i for i, e in enumerate(new_events) if e.stream_id == stream_id)
        return CommandResult(stream_id, new_events[last].version, positions[last])
    raise VersionConflict(
        f"the {what} could not be changed under contention: try again", len(loader(stream_id))
    )
