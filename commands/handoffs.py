"""Hand-off request handlers.

Every event of a request is appended with ``DealHandoffNoted`` on its parent deal in the
same atomic write (the deal's view of its requests cannot drift from the requests). A
logistics estimate that names a contractor also appends the contractor's price quote and
rating, so the directory's history is exactly the estimates that used it; the delivery
of the job such an estimate priced appends the contractor's delivery the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID, uuid5

from aggregates import contractor, deal, handoff
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.deals import load_deal_records
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent

HANDOFF_NAMESPACE = UUID("9a7e3c2d-1f4b-4e8a-b6d5-c3a2f1e0d9b8")


def request_id_for_round(deal_id: UUID, round_no: int, department: str) -> UUID:
    """The id of the request an estimate round asks of a department: the estimate
    hand-off creates it once, however often it is told that the deal entered the stage."""
    return uuid5(HANDOFF_NAMESPACE, f"{deal_id}:round:{round_no}:{department}")


def request_id_for(command_id: UUID) -> UUID:
    return uuid5(HANDOFF_NAMESPACE, f"command:{command_id}")


def load_handoff_records(
    store: EventStore, request_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return load_stream(store, request_id, handoff.HandoffRequested, as_of=as_of)


def load_handoff(
    store: EventStore, rules: Rules, request_id: UUID
) -> tuple[handoff.HandoffRequest, list[RecordedEvent]]:
    records = load_handoff_records(store, request_id)
    state = handoff.fold([r.event for r in records], rules)
    if state is None:
        raise StreamNotFound(f"hand-off request {request_id} not found")
    return state, records


def _note_on_deal(
    store: EventStore,
    rules: Rules,
    state: handoff.HandoffRequest,
    ctx: CommandContext,
) -> NewEvent:
    records = load_deal_records(store, state.deal_id)
    parent = deal.fold([r.event for r in records])
    if parent is None:
        raise InvalidValue("deal_id", f"deal {state.deal_id} does not exist")
    department = rules.require_department(state.department)
    noted = deal.decide(parent, deal.NoteHandoff(state.view(department)), rules, ctx.meta)
    return NewEvent(state.deal_id, parent.version + 1, noted)


def create_handoff(
    store: EventStore, rules: Rules, command: handoff.CreateHandoff, ctx: CommandContext
) -> CommandResult:
    """Open a request to a department for a deal (by hand, or by the estimate hand-off)."""

    def load_parent() -> deal.Deal:
        records = load_deal_records(store, command.deal_id)
        parent = deal.fold([r.event for r in records])
        if parent is None:
            raise StreamNotFound(f"deal {command.deal_id} not found")
        ctx.check(parent)  # the deal's guard: its manager, their head or top management
        return parent

    load_parent()  # ownership first, before a replay or a version is looked at

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        parent = load_parent()
        if parent.status is not deal.DealStatus.OPEN:
            raise RuleViolation(
                "deal_closed", f"the deal is {parent.status.value}: it asks nothing more"
            )
        created = handoff.create(command, rules, ctx.meta)
        state = handoff.evolve(None, created, rules)
        return [
            NewEvent(command.request_id, 1, created),
            _note_on_deal(store, rules, state, ctx),
        ]

    return execute(
        store, ctx, command.request_id, decide, what="hand-off request", must_exist=False
    )


def handle_handoff_command(
    store: EventStore,
    rules: Rules,
    request_id: UUID,
    command: handoff.HandoffCommand,
    ctx: CommandContext,
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = handoff.fold([r.event for r in history], rules)
        assert state is not None
        checked = command
        quote_stream: tuple[UUID, contractor.Contractor] | None = None
        if isinstance(command, handoff.RecordLogisticsEstimate) and command.contractor_id:
            found = contractor.fold([r.event for r in _contractor_records(store, command)])
            if found is not None:
                quote_stream = (command.contractor_id, found)
            # the name comes from the directory only: an unknown contractor has none
            checked = replace(command, contractor_name=None if found is None else found.name)
        event = handoff.decide(state, checked, rules, ctx.meta)
        after = handoff.evolve(state, event, rules)
        new_events = [
            NewEvent(request_id, state.version + 1, event),
            _note_on_deal(store, rules, after, ctx),
        ]
        if quote_stream is not None and isinstance(event, handoff.HandoffLogisticsEstimated):
            contractor_id, found = quote_stream
            assert event.rating is not None
            quote = contractor.quote(
                found,
                contractor.RecordQuote(
                    request_id=request_id,
                    deal_id=state.deal_id,
                    service=event.service,
                    price=event.cost,
                    rating=event.rating,
                    notes=event.notes,
                ),
                ctx.meta,
            )
            new_events.append(NewEvent(contractor_id, found.version + 1, quote))
        return new_events

    return execute(
        store,
        ctx,
        request_id,
        decide,
        what="hand-off request",
        load=lambda stream_id: load_handoff_records(store, stream_id),
        state_of=lambda history: handoff.fold([r.event for r in history], rules),
    )


def _contractor_records(
    store: EventStore, command: handoff.RecordLogisticsEstimate
) -> list[RecordedEvent]:
    assert command.contractor_id is not None
    return load_stream(store, command.contractor_id, contractor.ContractorRegistered)


def record_delivery(
    store: EventStore,
    rules: Rules,
    request_id: UUID,
    command: handoff.RecordDelivery,
    ctx: CommandContext,
) -> CommandResult:
    """The contracted job is done: its delivery on the request, the note on its deal and
    the delivery on the contractor's stream, in one atomic append (like the quote)."""

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = handoff.fold([r.event for r in history], rules)
        assert state is not None
        parent = deal.fold([r.event for r in load_deal_records(store, state.deal_id)])
        if parent is None:
            raise InvalidValue("deal_id", f"deal {state.deal_id} does not exist")
        event = handoff.deliver(state, parent, command, rules, ctx.meta)
        after = handoff.evolve(state, event, rules)
        records = load_stream(store, event.contractor_id, contractor.ContractorRegistered)
        found = contractor.fold([r.event for r in records])
        if found is None:
            raise InvalidValue("contractor_id", f"unknown contractor {event.contractor_id}")
        delivered = contractor.deliver(
            found,
            contractor.RecordDelivery(
                request_id=request_id,
                deal_id=state.deal_id,
                service=event.service,
                contracted_on=event.contracted_on,
                lead_time_days=event.lead_time_days,
                planned_on=event.planned_on,
                completed_on=event.completed_on,
                days_late=event.days_late,
                rating=event.rating,
                notes=event.notes,
            ),
            ctx.meta,
        )
        return [
            NewEvent(request_id, state.version + 1, event),
            _note_on_deal(store, rules, after, ctx),
            NewEvent(event.contractor_id, found.version + 1, delivered),
        ]

    return execute(
        store,
        ctx,
        request_id,
        decide,
        what="hand-off request",
        load=lambda stream_id: load_handoff_records(store, stream_id),
        state_of=lambda history: handoff.fold([r.event for r in history], rules),
    )
