"""User directory handlers, and the directory the authorisation rules read."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aggregates import users
from aggregates.base import DomainEvent
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent


def load_user_records(store: EventStore, username: str) -> list[RecordedEvent]:
    return load_stream(store, users.user_stream_id(username), users.UserRegistered)


def load_user(store: EventStore, username: str) -> users.User:
    state = users.fold([r.event for r in load_user_records(store, username)])
    if state is None:
        raise StreamNotFound(f"user {username} not found")
    return state


def register_user(
    store: EventStore, command: users.RegisterUser, ctx: CommandContext
) -> CommandResult:
    stream_id = users.user_stream_id(users.username(command.username, "username"))

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        return [NewEvent(stream_id, 1, users.register(command, ctx.meta))]

    return execute(store, ctx, stream_id, decide, what="user", must_exist=False)


def _update_user(
    store: EventStore,
    username: str,
    ctx: CommandContext,
    decide_event: Callable[[users.User], DomainEvent],
) -> CommandResult:
    """Load an existing user (404 naming them), decide one event on their state, append."""
    load_user(store, username)  # 404 naming the user
    stream_id = users.user_stream_id(username)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = users.fold([r.event for r in history])
        assert state is not None
        return [NewEvent(stream_id, state.version + 1, decide_event(state))]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="user",
        load=lambda _: load_user_records(store, username),
    )


def change_user(
    store: EventStore, username: str, command: users.ChangeUser, ctx: CommandContext
) -> CommandResult:
    return _update_user(store, username, ctx, lambda s: users.change(s, command, ctx.meta))


def set_assistant_managers(
    store: EventStore, username: str, command: users.SetAssistantManagers, ctx: CommandContext
) -> CommandResult:
    """Attach an assistant to their managers (each read from the directory now)."""

    def decide(state: users.User) -> DomainEvent:
        named = command.managers if isinstance(command.managers, (tuple, list)) else ()
        directory = {name: _find_user(store, name) for name in named if isinstance(name, str)}
        return users.set_managers(state, command, directory, ctx.meta)

    return _update_user(store, username, ctx, decide)


def set_cost_rate(
    store: EventStore, username: str, command: users.SetCostRate, ctx: CommandContext
) -> CommandResult:
    """Set a person's hourly cost rate from a day on (administrators and top management)."""
    return _update_user(store, username, ctx, lambda s: users.set_cost_rate(s, command, ctx.meta))


def _find_user(store: EventStore, name: str) -> users.User | None:
    if not users.USERNAME.match(name):
        return None
    return users.fold([r.event for r in load_user_records(store, name)])


class StoreDirectory:
    """Departments read from the users' streams: exact, with no read-model lag."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def department_of(self, user: str) -> str | None:
        if not users.USERNAME.match(user):
            return None
        state = users.fold([r.event for r in load_user_records(self.store, user)])
        return None if state is None or not state.active else state.department

    def managers_of(self, assistant: str) -> frozenset[str]:
        """The managers an active assistant works for (none for anyone else)."""
        state = _find_user(self.store, assistant)
        if state is None or not state.active or state.role is not users.Role.ASSISTANT:
            return frozenset()
        return frozenset(state.managers)
