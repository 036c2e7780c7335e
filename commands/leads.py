"""Lead command handlers.

Each handler loads the lead's stream, lets the Lead decider decide, and appends exactly
one event (plus, on a lead's creation, the company's registration when the company is
new, or its first lead when it was registered in the directory with none yet, and the
contact's first-lead mark when no earlier lead named the contact).
Optimistic concurrency rests on the store's unique (stream, version): a stale
``If-Match`` or a racing writer ends in :class:`VersionConflict`, never a lost update.
A repeated Idempotency-Key finds its command's event in the stream and returns the
first result without appending.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from aggregates import contact, lead
from aggregates.errors import InvalidValue
from aggregates.funnels import FunnelCatalog
from commands.companies import lead_named_company
from commands.context import (
    CommandContext,
    CommandResult,
    StreamNotFound,
    VersionConflict,
)
from commands.execution import find_replay, load_stream
from event_store import ConcurrencyError, EventStore, NewEvent, RecordedEvent

LEAD_NAMESPACE = UUID("a3c9f0de-2b61-4f7a-8f0c-51e1f6d2c9aa")
MAX_CREATE_ATTEMPTS = 5


def lead_id_for(command_id: UUID) -> UUID:
    """A new lead's id follows from its command id, so a replayed create finds its lead."""
    return uuid5(LEAD_NAMESPACE, str(command_id))


_replay = find_replay


def create_lead(
    store: EventStore, funnels: FunnelCatalog, command: lead.CreateLead, ctx: CommandContext
) -> CommandResult:
    """Create a lead in the first stage of its funnel; new or repeat by its company id,
    or by its contact when it has no company id (a private person).

    A contact must exist (create it first with POST /contacts: a phone or e-mail another
    contact has is refused there naming that contact, whose id the lead then names)."""
    company_id = (command.company_id or "").strip() or None
    if command.contact_id is not None and not load_stream(
        store, command.contact_id, contact.ContactRegistered
    ):
        raise InvalidValue("contact_id", f"contact {command.contact_id} does not exist")
    for attempt in range(MAX_CREATE_ATTEMPTS):
        # A fresh id has no stream: look only for a replayed key or after a lost race.
        looked = ctx.idempotency_key is not None or attempt > 0
        existing = store.load(command.lead_id) if looked else []
        if existing:
            replayed = _replay(existing, ctx)
            if replayed is not None:
                return replayed
            raise VersionConflict(f"lead {command.lead_id} exists already", len(existing))
        company_known = False
        company_events: list[NewEvent] = []
        if company_id is not None:
            company_known, company_events = lead_named_company(
                store, company_id, command.lead_id, str(command.company_name).strip(), ctx.meta
            )
        contact_known = False
        if command.contact_id is not None:
            contact_known = bool(store.load(contact.first_lead_stream_id(command.contact_id)))
        event = lead.create(
            command, funnels, ctx.meta, company_known=company_known, contact_known=contact_known
        )
        new_events = [NewEvent(command.lead_id, 1, event), *company_events]
        if command.contact_id is not None and not contact_known:
            named = contact.name_first_lead(command.contact_id, command.lead_id, ctx.meta)
            new_events.append(NewEvent(contact.first_lead_stream_id(command.contact_id), 1, named))
        try:
            # the lead's stream kept from here: its next command reads nothing first
            positions = store.append(new_events, empty=[command.lead_id])
        except ConcurrencyError:
            continue  # a racing lead registered the company or named the contact first, or
            # a replay raced us: look again
        return CommandResult(command.lead_id, 1, positions[0])
    raise VersionConflict("the lead could not be created under contention: try again", 0)


def load_lead_records(
    store: EventStore, lead_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    """A lead's recorded events (empty when the id is no lead's, e.g. a company's stream)."""
    return load_stream(store, lead_id, (lead.LeadCreated, lead.LeadImported), as_of=as_of)


def load_lead(store: EventStore, lead_id: UUID) -> tuple[lead.Lead, list[RecordedEvent]]:
    history = load_lead_records(store, lead_id)
    state = store.fold(history, lead.evolve)
    if state is None:
        raise StreamNotFound(f"lead {lead_id} not found")
    return state, history


def handle_lead_command(
    store: EventStore,
    funnels: FunnelCatalog,
    lead_id: UUID,
    command: lead.LeadCommand,
    ctx: CommandContext,
) -> CommandResult:
    """Run one command against an existing lead.

    First on the lead as this store keeps it, without reading the stream: the append
    goes in only while the kept last event is still the stream's last in the database
    (checked in the append's transaction, see ``EventStore.append``). When it is not
    (another process appended, the log was rewritten), or when that decision refuses,
    replays or cannot tell, the command is decided again on the stream read afresh,
    which alone answers. Nothing but a refused append is retried after the append: an
    append that went in is never decided again."""
    kept = store.kept(lead_id)
    if kept and isinstance(kept[0].event, (lead.LeadCreated, lead.LeadImported)):
        try:
            return _decide_and_append(store, funnels, lead_id, command, ctx, kept)
        except LookAgain:
            pass
    return _decide_and_append(store, funnels, lead_id, command, ctx, None)


class LookAgain(Exception):
    """A decision on the kept stream that only a fresh read may answer."""


def _decide_and_append(
    store: EventStore,
    funnels: FunnelCatalog,
    lead_id: UUID,
    command: lead.LeadCommand,
    ctx: CommandContext,
    kept: list[RecordedEvent] | None,
) -> CommandResult:
    """The command decided on ``kept`` (raising LookAgain for anything but an accepted
    append), or, without it, on the stream read now."""
    if kept is None:
        state, history = load_lead(store, lead_id)
        event = _decide(store, funnels, command, ctx, state, history)
        if isinstance(event, CommandResult):
            return event
    else:
        history = kept
        try:
            folded = store.fold(history, lead.evolve)
            assert folded is not None
            state = folded
            event = _decide(store, funnels, command, ctx, state, history)
        except Exception as exc:  # decided on what may be behind: judge it on a fresh read
            raise LookAgain(str(exc)) from exc
        if isinstance(event, CommandResult):  # a replay: answered from the stream as read now
            raise LookAgain("replay")
    try:
        positions = store.append([NewEvent(lead_id, state.version + 1, event)], after=history[-1:])
    except ConcurrencyError:
        if kept is not None:
            raise LookAgain("the stream moved since it was kept") from None
        state, history = load_lead(store, lead_id)
        replayed = _replay(history, ctx, store)
        if replayed is not None:
            return replayed
        raise VersionConflict(
            f"another command changed the lead first; it is now at version {state.version}",
            state.version,
        ) from None
    return CommandResult(lead_id, state.version + 1, positions[0])


def _decide(
    store: EventStore,
    funnels: FunnelCatalog,
    command: lead.LeadCommand,
    ctx: CommandContext,
    state: lead.Lead,
    history: list[RecordedEvent],
) -> lead.LeadEvent | CommandResult:
    """The event the command appends, or its first result when it was recorded already."""
    ctx.check(state)  # ownership first: a lead the actor may not act on tells them nothing
    replayed = _replay(history, ctx, store)
    if replayed is not None:
        return replayed
    if ctx.expected_version is not None and ctx.expected_version != state.version:
        raise VersionConflict(
            f"the lead is at version {state.version}, not {ctx.expected_version}",
            state.version,
        )
    return lead.decide(state, command, funnels, ctx.meta)
