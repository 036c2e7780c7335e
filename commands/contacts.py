"""Contact handlers: register and edit a contact, claiming its phones and e-mails in the
same atomic append (see ``aggregates/contact.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid5

from aggregates import contact
from aggregates.base import CommandMeta
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent

CONTACT_COMMAND_NAMESPACE = UUID("9e2b6f0d-1c3a-4b57-8d24-6a0c5e7f3b19")


def contact_id_for(command_id: UUID) -> UUID:
    return uuid5(CONTACT_COMMAND_NAMESPACE, f"command:{command_id}")


def load_contact_records(
    store: EventStore, contact_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return load_stream(store, contact_id, contact.ContactRegistered, as_of=as_of)


def load_contact(store: EventStore, contact_id: UUID) -> contact.Contact:
    state = contact.fold([r.event for r in load_contact_records(store, contact_id)])
    if state is None:
        raise StreamNotFound(f"contact {contact_id} not found")
    return state


def _claim_events(
    store: EventStore,
    contact_id: UUID,
    before: frozenset[tuple[str, str]],
    after: frozenset[tuple[str, str]],
    meta: CommandMeta,
) -> list[NewEvent]:
    """The claim streams' new events, each at its stream's next version: a racing claim
    of the same value makes the whole append fail, and the command is decided again."""
    touched = sorted(after ^ before)
    histories = {key: store.load(contact.claim_stream_id(*key)) for key in touched}
    owners = {key: contact.claim_owner([r.event for r in h]) for key, h in histories.items()}
    events = contact.claims(contact_id, before, after, owners, meta)
    return [
        NewEvent(
            contact.claim_stream_id(e.kind, e.value),
            len(histories[(e.kind, e.value)]) + 1,
            e,
        )
        for e in events
    ]


def register_contact(
    store: EventStore, command: contact.RegisterContact, ctx: CommandContext
) -> CommandResult:
    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        event = contact.register(command, ctx.meta)
        after = contact.identifiers(event.phones, event.emails)
        claims = _claim_events(store, command.contact_id, frozenset(), after, ctx.meta)
        return [NewEvent(command.contact_id, 1, event), *claims]

    return execute(store, ctx, command.contact_id, decide, what="contact", must_exist=False)


def update_contact(
    store: EventStore, contact_id: UUID, command: contact.UpdateContact, ctx: CommandContext
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = contact.fold([r.event for r in history])
        assert state is not None
        event = contact.update(state, command, ctx.meta)
        after = contact.identifiers(event.phones, event.emails)
        claims = _claim_events(store, contact_id, state.identifiers(), after, ctx.meta)
        return [NewEvent(contact_id, state.version + 1, event), *claims]

    return execute(
        store,
        ctx,
        contact_id,
        decide,
        what="contact",
        load=lambda stream_id: load_contact_records(store, stream_id),
    )
