"""Project and billing handlers.

Hours logged (or corrected) on a project are booked on the person's day in the same
atomic write (:mod:`aggregates.timesheets`), so a person's day never passes 24 hours
across all projects, however entries race. A won deal's project has an id derived from
the deal's: at most one project per deal. A lead closed won in a funnel that delivers
directly gets its project the same way (id derived from the lead's): at most one per lead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID, uuid5

from aggregates import billing, deal, handoff, lead, limits, project, timesheets
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.deals import load_deal_records
from commands.execution import execute, load_stream
from commands.leads import load_lead
from event_store import EventStore, NewEvent, RecordedEvent

ZERO = Decimal("0.00")
PROJECT_NAMESPACE = UUID("d4a7c9e1-6b2f-4a3d-8c5e-9f1b0a2d4c6e")


def project_id_for_deal(deal_id: UUID) -> UUID:
    """A won deal's project has an id derived from the deal's: one project per deal."""
    return uuid5(PROJECT_NAMESPACE, f"deal:{deal_id}")


def project_id_for_lead(lead_id: UUID) -> UUID:
    """A lead delivered directly has its project's id derived from the lead's: one project
    per lead (never the same as its deal's project: a lead has one or the other)."""
    return uuid5(PROJECT_NAMESPACE, f"lead:{lead_id}")


def project_id_for(command_id: UUID) -> UUID:
    return uuid5(PROJECT_NAMESPACE, f"command:{command_id}")


def load_project_records(
    store: EventStore, project_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return load_stream(store, project_id, project.ProjectCreated, as_of=as_of)


def load_project(store: EventStore, project_id: UUID) -> project.Project:
    state = project.fold([r.event for r in load_project_records(store, project_id)])
    if state is None:
        raise StreamNotFound(f"project {project_id} not found")
    return state


def load_billing_records(
    store: EventStore, project_id: UUID, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return store.load(billing.billing_stream_id(project_id), as_of=as_of)


def load_billing(
    store: EventStore, project_id: UUID, *, as_of: datetime | None = None
) -> billing.Billing | None:
    return billing.fold([r.event for r in load_billing_records(store, project_id, as_of=as_of)])


def create_project(
    store: EventStore, rules: Rules, command: project.CreateProject, ctx: CommandContext
) -> CommandResult:
    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        return [NewEvent(command.project_id, 1, project.create(command, rules.project, ctx.meta))]

    return execute(store, ctx, command.project_id, decide, what="project", must_exist=False)


def deal_project(state: deal.Deal, project_id: UUID, rules: Rules) -> project.CreateProject:
    """The project a won deal becomes: its client, amount, lead, funnel and manager (won
    through the commands, or imported won)."""
    return project.CreateProject(
        project_id=project_id,
        title=state.title,
        company_name=state.company_name,
        company_id=state.company_id,
        amount=state.amount,
        lead_id=state.lead_id,
        deal_id=state.deal_id,
        funnel=state.funnel,
        manager=state.manager,
        department=rules.project.department_for(state.funnel),
        direction=state.funnel,
    )


def create_project_for_deal(
    store: EventStore, rules: Rules, deal_id: UUID, ctx: CommandContext
) -> CommandResult:
    """The project of a won deal, carrying its client, amount, lead, funnel and manager.

    One atomic write: ``ProjectCreated``, the deal's ``DealProjectStarted`` (the link back)
    and, on the project's billing, each of the deal's invoices carried over — so the
    project never shows a won deal's invoice missing, and a redelivered closing finds the
    project (and everything with it) made already.
    """
    project_id = project_id_for_deal(deal_id)

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = deal.fold([r.event for r in load_deal_records(store, deal_id)])
        if state is None:
            raise StreamNotFound(f"deal {deal_id} not found")
        command = deal_project(state, project_id, rules)
        linked = deal.decide(state, deal.NoteProject(project_id), rules, ctx.meta)
        new_events = [
            NewEvent(project_id, 1, project.create(command, rules.project, ctx.meta)),
            NewEvent(deal_id, state.version + 1, linked),
        ]
        bills = billing.empty_billing(project_id, ctx.at)
        # only counted invoices: a declined prepayment is not payable (and a won deal has
        # no pending one). Carried invoices were booked on the revenue ledger by the deal.
        for invoice in (i for i in state.invoices if i.counted):
            carried = billing.decide(
                bills,
                billing.CarryDealInvoice(
                    deal_id=deal_id,
                    number=invoice.number,
                    amount=invoice.amount,
                    organisation=invoice.organisation,
                    prepayment=invoice.prepayment,
                    issued_on=invoice.issued_on,
                ),
                ctx.meta,
            )
            bills = billing.evolve(bills, carried)
            stream_id = billing.billing_stream_id(project_id)
            new_events.append(NewEvent(stream_id, bills.version, carried))
        return new_events

    return execute(store, ctx, project_id, decide, what="project", must_exist=False)


def create_project_for_lead(
    store: EventStore, rules: Rules, funnels: FunnelCatalog, lead_id: UUID, ctx: CommandContext
) -> CommandResult:
    """The project of a lead closed won in a funnel that delivers directly, carrying the
    lead's card: client, contact, amount and cost components, currency, source, need
    maturity, manager, expert, description, answer date and funnel.

    One atomic write: ``ProjectCreated`` and the lead's ``LeadProjectStarted`` (the link
    back); a redelivered closing finds the project made already.
    """
    project_id = project_id_for_lead(lead_id)

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        state, _history = load_lead(store, lead_id)
        linked = lead.start_project(state, project_id, funnels, ctx.meta)
        command = project.CreateProject(
            project_id=project_id,
            title=state.title,
            company_name=state.company_name,
            company_id=state.company_id,
            amount=state.amount,
            lead_id=lead_id,
            funnel=state.funnel,
            manager=state.manager,
            department=rules.project.department_for(state.funnel),
            direction=state.funnel,
            currency=state.currency,
            contact=state.contact,
            source=state.source,
            need_maturity=state.need_maturity,
            expert=state.expert,
            description=state.description,
            answer_due=state.answer_due,
            cost_components=tuple(
                project.CostComponent(c.name, c.amount) for c in state.cost_components
            ),
        )
        return [
            NewEvent(project_id, 1, project.create(command, rules.project, ctx.meta)),
            NewEvent(lead_id, state.version + 1, linked),
        ]

    return execute(store, ctx, project_id, decide, what="project", must_exist=False)


def handle_project_command(
    store: EventStore,
    rules: Rules,
    project_id: UUID,
    command: project.ProjectCommand,
    ctx: CommandContext,
) -> CommandResult:
    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = project.fold([r.event for r in history])
        assert state is not None
        event = project.decide(state, command, rules.project, ctx.meta)
        new_events = [NewEvent(project_id, state.version + 1, event)]
        if isinstance(event, project.HoursLogged | project.HoursCorrected):
            change = (
                event.hours - event.old_hours
                if isinstance(event, project.HoursCorrected)
                else event.hours
            )
            day_stream = timesheets.person_day_stream_id(event.person, event.day)
            day = store.load(day_stream)
            booked = timesheets.book(
                timesheets.day_total([r.event for r in day]),
                event.person,
                event.day,
                project_id,
                event.entry_id,
                change,
                ctx.meta,
            )
            new_events.append(NewEvent(day_stream, len(day) + 1, booked))
        return new_events

    return execute(
        store,
        ctx,
        project_id,
        decide,
        what="project",
        load=lambda stream_id: load_project_records(store, stream_id),
        state_of=lambda history: project.fold([r.event for r in history]),
    )


def log_time_entry(
    store: EventStore,
    rules: Rules,
    project_id: UUID,
    person: str,
    day: date,
    hours: Decimal,
    task_id: str | None,
    ctx: CommandContext,
) -> tuple[CommandResult, UUID]:
    """Log a time entry (its id derived from the command's, so a repeat finds it): the
    result and the entry's id."""
    entry_id = project_id_for(ctx.command_id)
    command = project.LogHours(
        entry_id=entry_id, person=person, day=day, hours=hours, task_id=task_id
    )
    return handle_project_command(store, rules, project_id, command, ctx), entry_id


def handle_billing_command(
    store: EventStore,
    project_id: UUID,
    command: billing.BillingCommand,
    ctx: CommandContext,
    rules: Rules | None = None,
) -> CommandResult:
    """Invoices and payments of an existing project (If-Match names the billing's version).

    An invoice naming an organisation on the simplified-tax regime is booked on its
    revenue ledger in the same atomic write (as a deal's invoice is)."""
    found = load_project(store, project_id)  # 404 for an unknown project
    ctx.check(found)
    stream_id = billing.billing_stream_id(project_id)
    won = _won_deal(store, found.deal_id)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = billing.fold([r.event for r in history]) or billing.empty_billing(
            project_id, ctx.at
        )
        event = billing.decide(
            state,
            command,
            ctx.meta,
            opened=found.created_at,
            rules=rules,
            services=() if won is None or won.proposal is None else _services(won.proposal),
            unpayable={} if won is None else _unpayable(won),
        )
        new_events = [NewEvent(stream_id, state.version + 1, event)]
        if isinstance(event, billing.ProjectInvoiceIssued) and rules is not None:
            booking = _book_project_invoice(store, rules, event, ctx)
            if booking is not None:
                new_events.append(booking)
        return new_events

    return execute(store, ctx, stream_id, decide, what="project billing", must_exist=None)


def offered_services(
    store: EventStore, rules: Rules, state: project.Project
) -> tuple[tuple[project.OfferedService, ...], UUID | None]:
    """The services of the project's deal's proposal, with the hours the calculation it
    was built from planned for each (0 for a proposal typed by hand), and that
    calculation's request id."""
    if state.deal_id is None:
        return (), None
    parent = deal.fold([r.event for r in load_deal_records(store, state.deal_id)])
    if parent is None or parent.proposal is None:
        return (), None
    calculation_id = parent.proposal.calculation_id
    hours: dict[str, Decimal] = {}
    if calculation_id is not None:
        records = load_stream(store, calculation_id, handoff.HandoffRequested)
        request = handoff.fold([r.event for r in records], rules)
        if request is not None and request.calculation is not None:
            hours = {s.name: s.hours or ZERO for s in request.calculation.services}
    offered = tuple(
        project.OfferedService(line.name, line.price, hours.get(line.name, ZERO))
        for line in parent.proposal.services
    )
    return offered, calculation_id


def launch_services(
    store: EventStore,
    rules: Rules,
    project_id: UUID,
    services: tuple[project.ServiceLaunch, ...] | None,
    ctx: CommandContext,
) -> CommandResult:
    """Launch the proposal's services into work: the launch and a task per service, in
    one write."""

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = project.fold([r.event for r in history])
        assert state is not None
        offered, calculation_id = offered_services(store, rules, state)
        command = project.LaunchServices(offered, services, calculation_id)
        launched, tasks = project.launch(state, command, rules.project, ctx.meta)
        return [
            NewEvent(project_id, state.version + 1 + i, event)
            for i, event in enumerate((launched, *tasks))
        ]

    return _execute_on_project(store, project_id, decide, ctx)


def record_act(
    store: EventStore,
    rules: Rules,
    project_id: UUID,
    command: project.RecordAct,
    ctx: CommandContext,
) -> CommandResult:
    """Record an act of completed work: the act, the completions of the tasks it covers
    and, when it names an invoice, the act on the invoice in the billing, in one write."""
    stream_id = billing.billing_stream_id(project_id)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = project.fold([r.event for r in history])
        assert state is not None
        act, completions = project.record_act(state, command, rules.project, ctx.meta)
        new_events = [
            NewEvent(project_id, state.version + 1 + i, event)
            for i, event in enumerate((act, *completions))
        ]
        if act.invoice_number is not None:
            bills_records = store.load(stream_id)
            bills = billing.fold([r.event for r in bills_records]) or billing.empty_billing(
                project_id, ctx.at
            )
            acted = billing.decide(
                bills,
                billing.RecordActOnInvoice(
                    act.invoice_number, act.number, act.amount, act.act_date
                ),
                ctx.meta,
            )
            new_events.append(NewEvent(stream_id, bills.version + 1, acted))
        return new_events

    return _execute_on_project(store, project_id, decide, ctx)


def _execute_on_project(
    store: EventStore,
    project_id: UUID,
    decide: Callable[[list[RecordedEvent]], Sequence[NewEvent]],
    ctx: CommandContext,
) -> CommandResult:
    return execute(
        store,
        ctx,
        project_id,
        decide,
        what="project",
        load=lambda stream_id: load_project_records(store, stream_id),
        state_of=lambda history: project.fold([r.event for r in history]),
    )


def _won_deal(store: EventStore, deal_id: UUID | None) -> deal.Deal | None:
    if deal_id is None:
        return None
    return deal.fold([r.event for r in load_deal_records(store, deal_id)])


def _services(proposal: deal.Proposal) -> tuple[str, ...]:
    return tuple(line.name for line in proposal.services)


def _unpayable(won: deal.Deal) -> dict[str, str]:
    """The won deal's invoices left behind as not approved, by number."""
    return {i.number: i.approval for i in won.invoices if not i.counted}


def _book_project_invoice(
    store: EventStore,
    rules: Rules,
    invoice: billing.ProjectInvoiceIssued,
    ctx: CommandContext,
) -> NewEvent | None:
    """The project invoice's booking on its organisation's revenue ledger (of the year of
    the invoice's day), or None when it names none or one without a cap."""
    if invoice.organisation is None or invoice.deal_id is not None:
        return None
    organisation = rules.require_organisation(invoice.organisation)
    if organisation.yearly_revenue_cap is None:
        return None
    year = invoice.issued_on.year
    stream_id = limits.revenue_stream_id(organisation.id, year)
    ledger = limits.revenue_ledger([r.event for r in store.load(stream_id)])
    booked = limits.book_project_revenue(
        ledger, organisation, year, invoice.project_id, invoice.number, invoice.amount, ctx.meta
    )
    return NewEvent(stream_id, ledger.version + 1, booked)
