"""Deal command handlers: creation from a lead or as an upsell, and commands on a deal.

Converting a lead appends ``DealCreated`` and the lead's ``LeadConvertedToDeal`` in one
atomic write; the deal's id follows from the lead's, so a lead becomes at most one deal
however often (and by however many) the conversion is asked for. An invoice from an
organisation on the simplified-tax regime books its amount on the organisation's
revenue ledger for the year in the same write (see :mod:`aggregates.limits`); a
prepayment invoice is booked when it is approved, not when it is issued pending (a
declined one never counts, so it never takes room under the cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID, uuid5

from aggregates import deal, handoff, lead, limits
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult, StreamNotFound, VersionConflict
from commands.execution import execute, load_stream
from commands.leads import load_lead
from event_store import EventStore, NewEvent, RecordedEvent

DEAL_NAMESPACE = UUID("e2b8a4c1-7d3f-4b6e-a1c9-0f5d2e8b7a63")


def deal_id_for_lead(lead_id: UUID) -> UUID:
    """A lead's deal has an id derived from the lead's: one lead, at most one deal."""
    return uuid5(DEAL_NAMESPACE, f"lead:{lead_id}")


def deal_id_for(command_id: UUID) -> UUID:
    return uuid5(DEAL_NAMESPACE, f"command:{command_id}")


def load_deal_records(
    store: EventStore, deal_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    """A deal's recorded events (empty when the id is no deal's)."""
    return load_stream(store, deal_id, (deal.DealCreated, deal.DealImported), as_of=as_of)


def load_deal(store: EventStore, deal_id: UUID) -> tuple[deal.Deal, list[RecordedEvent]]:
    records = load_deal_records(store, deal_id)
    state = deal.fold([r.event for r in records])
    if state is None:
        raise StreamNotFound(f"deal {deal_id} not found")
    return state, records


def convert_lead(
    store: EventStore,
    funnels: FunnelCatalog,
    rules: Rules,
    lead_id: UUID,
    deal_funnel: str | None,
    ctx: CommandContext,
) -> CommandResult:
    """Create the deal of an open lead qualified as quality; the lead records the link."""
    deal_id = deal_id_for_lead(lead_id)
    # ownership first: before If-Match and before "the lead became a deal already"
    lead_state, _ = load_lead(store, lead_id)
    ctx.check(lead_state)

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        state, _history = load_lead(store, lead_id)
        ctx.check(state)  # again on fresh state: the lead may have been transferred
        funnel_id = deal_funnel or _default_deal_funnel(funnels, rules, state.funnel)
        rules.deal_funnels.require(funnel_id, "funnel")
        link = lead.convert(state, deal_id, funnel_id, ctx.meta)
        command = deal.CreateDeal(
            deal_id=deal_id,
            funnel=funnel_id,
            title=state.title,
            company_name=state.company_name,
            company_id=state.company_id,
            source=state.source,
            manager=state.manager,
            description=state.description,
            amount=state.amount,
            lead_id=lead_id,
        )
        created = deal.create(command, rules, ctx.meta)
        return [NewEvent(deal_id, 1, created), NewEvent(lead_id, state.version + 1, link)]

    if ctx.expected_version is not None:
        # If-Match names the lead's version here: the deal does not exist yet.
        if lead_state.version != ctx.expected_version:
            raise VersionConflict(
                f"the lead is at version {lead_state.version}, not {ctx.expected_version}",
                lead_state.version,
            )
        ctx = replace(ctx, expected_version=None)
    try:
        return execute(store, ctx, deal_id, decide, what="deal", must_exist=False)
    except VersionConflict:
        if load_deal_records(store, deal_id):
            raise RuleViolation(
                "lead_already_converted", f"the lead became deal {deal_id} already"
            ) from None
        raise


def _default_deal_funnel(funnels: FunnelCatalog, rules: Rules, lead_funnel: str) -> str:
    funnel = funnels.get(lead_funnel)
    configured = None if funnel is None else funnel.options.get("deal_funnel")
    if isinstance(configured, str):
        return configured
    return next(iter(rules.deal_funnels))


def create_upsell(
    store: EventStore,
    rules: Rules,
    previous_deal_id: UUID,
    command: deal.CreateDeal,
    ctx: CommandContext,
) -> CommandResult:
    """A deal for an existing client, linked to the client's earlier deal."""

    def load_previous() -> deal.Deal:
        records = load_deal_records(store, previous_deal_id)
        previous = deal.fold([r.event for r in records])
        if previous is None:
            raise InvalidValue("previous_deal_id", f"deal {previous_deal_id} does not exist")
        ctx.check(previous)
        return previous

    load_previous()  # ownership first, before a replay of the key is looked for

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        previous = load_previous()
        created = deal.create(
            deal.CreateDeal(
                deal_id=command.deal_id,
                funnel=command.funnel,
                title=command.title,
                company_name=previous.company_name,
                company_id=previous.company_id,
                source=command.source,
                manager=command.manager,
                description=command.description,
                amount=command.amount,
                lead_id=previous.lead_id,
                previous_deal_id=previous_deal_id,
            ),
            rules,
            ctx.meta,
        )
        return [NewEvent(command.deal_id, 1, created)]

    return execute(store, ctx, command.deal_id, decide, what="deal", must_exist=False)


def handle_deal_command(
    store: EventStore,
    rules: Rules,
    deal_id: UUID,
    command: deal.DealCommand,
    ctx: CommandContext,
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = deal.fold([r.event for r in history])
        assert state is not None
        checked = _with_calculation(store, rules, deal_id, command)
        event = deal.decide(state, checked, rules, ctx.meta)
        new_events = [NewEvent(deal_id, state.version + 1, event)]
        if isinstance(event, deal.DealInvoiceIssued | deal.DealInvoiceApproved):
            booking = _book_revenue(store, rules, deal_id, event, ctx)
            if booking is not None:
                new_events.append(booking)
        if isinstance(event, deal.DealClosed):
            new_events += _end_open_requests(store, rules, deal.evolve(state, event), ctx)
        return new_events

    return execute(
        store,
        ctx,
        deal_id,
        decide,
        what="deal",
        load=lambda stream_id: load_deal_records(store, stream_id),
        state_of=lambda history: deal.fold([r.event for r in history]),
    )


def _with_calculation(
    store: EventStore, rules: Rules, deal_id: UUID, command: deal.DealCommand
) -> deal.DealCommand:
    """A proposal from a request for calculation gets the request's calculated services,
    read from the request itself (only a request of this deal's lends them)."""
    if not isinstance(command, deal.RecordProposalFromCalculation):
        return command
    records = load_stream(store, command.request_id, handoff.HandoffRequested)
    request = handoff.fold([r.event for r in records], rules)
    if request is None or request.deal_id != deal_id or request.calculation is None:
        return replace(command, services=None)
    lines = tuple(deal.CalculatedLine(s.name, s.amount) for s in request.calculation.services)
    return replace(command, services=lines)


def _end_open_requests(
    store: EventStore, rules: Rules, closed: deal.Deal, ctx: CommandContext
) -> list[NewEvent]:
    """Cancel the closed deal's requests that have not ended (``approval`` included), each
    with the deal's note of it.

    In the close's own atomic write rather than by a process manager: a closed deal never
    has an open request, not even for the moment until a manager reacts (department load
    and reminders read the requests' state), and nothing depends on the process managers
    running. A request its department changes meanwhile also notes itself on the deal, so
    one of the two writes wins and the other is a version conflict: the close never
    cancels a request in a state it did not see.
    """
    reason = deal.requests_closed_reason(closed.status.value)
    new_events: list[NewEvent] = []
    version = closed.version
    for view in closed.open_requests():
        records = load_stream(store, view.request_id, handoff.HandoffRequested)
        request = handoff.fold([r.event for r in records], rules)
        if request is None:  # pragma: no cover - the deal notes only requests that exist
            continue
        cancelled = handoff.decide(request, handoff.CancelHandoff(reason), rules, ctx.meta)
        after = handoff.evolve(request, cancelled, rules)
        department = rules.require_department(after.department)
        noted = deal.decide(closed, deal.NoteHandoff(after.view(department)), rules, ctx.meta)
        version += 1
        new_events += [
            NewEvent(view.request_id, request.version + 1, cancelled),
            NewEvent(closed.deal_id, version, noted),
        ]
    return new_events


def _book_revenue(
    store: EventStore,
    rules: Rules,
    deal_id: UUID,
    invoice: deal.DealInvoiceIssued | deal.DealInvoiceApproved,
    ctx: CommandContext,
) -> NewEvent | None:
    organisation = rules.require_organisation(invoice.organisation)
    if organisation.yearly_revenue_cap is None:
        return None
    if isinstance(invoice, deal.DealInvoiceIssued) and invoice.approval != "not_required":
        return None  # a prepayment is booked on its approval
    year = invoice.issued_on.year
    stream_id = limits.revenue_stream_id(organisation.id, year)
    ledger = limits.revenue_ledger([r.event for r in store.load(stream_id)])
    booked = limits.book_revenue(
        ledger, organisation, year, deal_id, invoice.number, invoice.amount, ctx.meta
    )
    return NewEvent(stream_id, ledger.version + 1, booked)
