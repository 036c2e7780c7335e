"""Demo data: about two thousand leads over the last twelve months, deals with their
hand-offs over the last two months, and projects delivered over the last two years, all
through the handlers.

Each lead's story is planned with the Lead decider itself (so every planned command is
valid), then all stories are interleaved in time order and sent through the same command
handlers the HTTP API uses, each stamped with its simulated time.
"""

from __future__ import annotations

import contextlib
import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5

from aggregates import (
    billing,
    company,
    contractor,
    deal,
    handoff,
    lead,
    limits,
    project,
    sales_plans,
    status_limits,
    users,
)
from aggregates.base import CommandMeta
from aggregates.directory_entry import DirectoryCatalog
from aggregates.errors import DomainError
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.assignments import assign_client
from commands.companies import change_company_card, load_company
from commands.context import CommandContext, StreamNotFound, VersionConflict
from commands.contractors import register_contractor
from commands.deals import convert_lead, handle_deal_command
from commands.handoffs import handle_handoff_command, record_delivery
from commands.leads import create_lead, handle_lead_command
from commands.projects import (
    create_project,
    handle_billing_command,
    handle_project_command,
    launch_services,
    project_id_for_deal,
    record_act,
)
from commands.sales_plans import set_sales_plan
from commands.status_limits import set_status_limit
from commands.users import load_user, register_user, set_assistant_managers, set_cost_rate
from event_store import EventStore
from leadledger.wiring import process_managers
from process_managers.projects import ProjectCreation
from process_managers.runner import ProcessRunner

DEMO_NAMESPACE = UUID("5d3b0e47-0f7c-4a6e-b5f2-9c1d2e3f4a5b")

MANAGERS = [
    "anna.petrova",
    "boris.ivanov",
    "clara.smirnova",
    "dmitri.orlov",
    "elena.kuznetsova",
    "fedor.sokolov",
    "galina.popova",
    "ivan.volkov",
]
EXPERTS = ["expert.morozov", "expert.lebedeva", "expert.kozlov", "expert.novikova"]
SOURCES = ["court_request", "website", "referral", "cold_call", "exhibition", "partner"]
MATURITY = ["just_looking", "comparing_offers", "ready_to_buy"]
PAUSE_REASONS = [
    "client on vacation",
    "waiting for documents",
    "budget frozen until next quarter",
    "court hearing postponed",
]
LOST_REASONS = [
    "price too high",
    "chose a competitor",
    "client stopped responding",
    "project cancelled",
]
NON_QUALITY_REASONS = ["not our field of expertise", "no budget", "duplicate request", "spam"]
COMPANY_WORDS = [
    "Northwind",
    "Volga",
    "Ural",
    "Baltic",
    "Sever",
    "Altai",
    "Neva",
    "Kama",
    "Oka",
    "Don",
    "Irtysh",
    "Amur",
]
COMPANY_KINDS = [
    "Logistics",
    "Construction",
    "Energy",
    "Agro",
    "Retail",
    "Engineering",
    "Insurance",
    "Pharma",
]
TITLES = [
    "Appraisal of a warehouse",
    "Expertise of construction defects",
    "Equipment valuation",
    "Damage assessment after flooding",
    "Land plot valuation",
    "Review of a design project",
    "Vehicle fleet appraisal",
    "Forensic accounting review",
]


@dataclass(order=True)
class PlannedCommand:
    at: datetime
    seq: int
    lead_id: UUID
    actor: str
    command: lead.CreateLead | lead.LeadCommand


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randrange(low, high) * 100)


class _Story:
    """Plans one lead's commands, checking each against the decider as it goes."""

    def __init__(
        self, rng: random.Random, funnels: FunnelCatalog, lead_id: UUID, at: datetime, now: datetime
    ) -> None:
        self.rng = rng
        self.funnels = funnels
        self.lead_id = lead_id
        self.at = at
        self.now = now
        self.state: lead.Lead | None = None
        self.planned: list[tuple[datetime, str, lead.CreateLead | lead.LeadCommand]] = []

    def _meta(self) -> CommandMeta:
        return CommandMeta(actor="planner", at=self.at, command_id=uuid5(DEMO_NAMESPACE, "plan"))

    def later(self, hours_low: float, hours_high: float) -> bool:
        self.at += timedelta(hours=self.rng.uniform(hours_low, hours_high))
        return self.at < self.now

    def create(self, command: lead.CreateLead, actor: str) -> None:
        event = lead.create(command, self.funnels, self._meta(), company_known=False)
        self.state = lead.evolve(None, event)
        self.planned.append((self.at, actor, command))

    def do(self, command: lead.LeadCommand, actor: str) -> bool:
        assert self.state is not None
        try:
            event = lead.decide(self.state, command, self.funnels, self._meta())
        except DomainError:
            return False
        self.state = lead.evolve(self.state, event)
        self.planned.append((self.at, actor, command))
        return True


def plan(
    funnels: FunnelCatalog, now: datetime, leads: int = 2000, seed: int = 7
) -> Iterator[PlannedCommand]:
    """Every demo command, in time order."""
    rng = random.Random(seed)
    companies = [
        (f"INN{7700000000 + i}", f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {i}")
        for i in range(max(10, leads * 3 // 5))
    ]
    funnel_ids = list(funnels)
    heap: list[PlannedCommand] = []
    seq = 0
    for index in range(leads):
        lead_id = uuid5(DEMO_NAMESPACE, f"lead-{seed}-{index}")
        start = now - timedelta(days=365) + timedelta(seconds=rng.uniform(0, 364 * 86400))
        story = _Story(rng, funnels, lead_id, start, now)
        _tell(story, rng, funnels, funnel_ids, companies)
        for at, actor, command in story.planned:
            heapq.heappush(heap, PlannedCommand(at, seq, lead_id, actor, command))
            seq += 1
    while heap:
        yield heapq.heappop(heap)


def _tell(
    story: _Story,
    rng: random.Random,
    funnels: FunnelCatalog,
    funnel_ids: list[str],
    companies: list[tuple[str, str]],
) -> None:
    manager = rng.choice(MANAGERS)
    funnel_id = (
        "out_of_court"
        if "out_of_court" in funnels and rng.random() < 0.6
        else rng.choice(funnel_ids)
    )
    company_id, company_name = rng.choice(companies)
    story.create(
        lead.CreateLead(
            lead_id=story.lead_id,
            funnel=funnel_id,
            title=rng.choice(TITLES),
            company_name=company_name,
            company_id=company_id,
            source="court_request" if funnel_id == "court" else rng.choice(SOURCES[1:]),
            manager=manager,
            expert=rng.choice(EXPERTS) if rng.random() < 0.5 else None,
            need_maturity=rng.choice(MATURITY),
            answer_due=(story.at + timedelta(days=rng.randint(2, 14))).date(),
            description="Created by the demo data loader",
            amount=_money(rng, 500, 20000),
        ),
        "assistant.demo",
    )
    if rng.random() < 0.08 and story.later(1, 48):
        other = [f for f in funnel_ids if f != funnel_id]
        if other:
            story.do(lead.TransferLead(rng.choice(other)), manager)
    if rng.random() < 0.3 and story.later(1, 72):
        parts = rng.randint(2, 4)
        story.do(
            lead.SetLeadCostBreakdown(
                tuple(
                    lead.CostComponent(f"component {i + 1}", _money(rng, 50, 5000))
                    for i in range(parts)
                )
            ),
            manager,
        )
    if rng.random() < 0.15 and story.later(1, 72):
        story.do(
            lead.UpdateLeadCard(
                {"need_maturity": rng.choice(MATURITY), "title": rng.choice(TITLES)}
            ),
            manager,
        )
    assert story.state is not None
    funnel = funnels[story.state.funnel]
    if not (rng.random() < 0.85 and story.later(2, 96)):
        return
    story.do(lead.MoveLeadToStage(funnel.stages[1].id), manager)
    if rng.random() < 0.15 and story.later(1, 48):
        story.do(lead.PauseLead(rng.choice(PAUSE_REASONS)), manager)
        if story.later(24, 24 * 20):
            story.do(lead.ResumeLead(), manager)
        else:
            return
    if not (rng.random() < 0.8 and story.later(4, 120)):
        return
    story.do(
        lead.RecordLeadAssessment(
            rng.choice(EXPERTS),
            rng.choice(["feasible", "complex", "routine"]),
            Decimal(rng.randint(1, 32)) / 2,
        ),
        rng.choice(EXPERTS),
    )
    if not story.later(1, 48):
        return
    if rng.random() < 0.18:
        story.do(lead.QualifyLead(False, rng.choice(NON_QUALITY_REASONS)), manager)
        return
    story.do(lead.QualifyLead(True), manager)
    position = 1
    target = rng.randint(2, len(funnel.stages) - 1)
    while position < target and story.later(6, 24 * 10):
        position += 1
        if rng.random() < 0.06 and position > 2:
            story.do(lead.MoveLeadToStage(funnel.stages[position - 2].id), manager)
            if not story.later(6, 72):
                return
        story.do(lead.MoveLeadToStage(funnel.stages[position].id), manager)
        if rng.random() < 0.05 and story.later(1, 24):
            story.do(lead.PauseLead(rng.choice(PAUSE_REASONS)), manager)
            if not story.later(24, 24 * 15):
                return
            story.do(lead.ResumeLead(), manager)
    if not story.later(12, 24 * 14):
        return
    roll = rng.random()
    if position >= len(funnel.stages) - 2 and roll < 0.6:
        story.do(lead.CloseLead("won"), manager)
    elif roll < 0.35:
        story.do(lead.CloseLead("lost", rng.choice(LOST_REASONS)), manager)


def load_demo(
    store: EventStore,
    funnels: FunnelCatalog,
    now: datetime,
    *,
    leads: int = 2000,
    seed: int = 7,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Send every planned command through the command handlers; the number sent."""
    sent = 0
    for planned in plan(funnels, now, leads, seed):
        ctx = CommandContext(
            actor=planned.actor,
            at=planned.at,
            command_id=uuid5(DEMO_NAMESPACE, f"cmd-{seed}-{planned.seq}"),
        )
        if isinstance(planned.command, lead.CreateLead):
            create_lead(store, funnels, planned.command, ctx)
        else:
            handle_lead_command(store, funnels, planned.lead_id, planned.command, ctx)
        sent += 1
        if progress is not None:
            progress(1)
    return sent


CONTRACTORS = [
    ("HeavyHaul LLC", ("heavy haulage", "crane")),
    ("Volga Logistics", ("heavy haulage", "container transport")),
    ("Sever Cranes", ("crane",)),
]
LOGISTICIANS = ["lev.logistics", "lidia.logistics"]
ENGINEERS = ["egor.engineering", "erik.engineering"]


def load_demo_deals(
    store: EventStore,
    funnels: FunnelCatalog,
    rules: Rules,
    now: datetime,
    *,
    deals: int = 40,
    seed: int = 7,
) -> int:
    """Deals over the last two months, with their hand-offs worked by the departments and
    the process managers reacting as they would in the server; the number of deals."""
    rng = random.Random(seed + 1)
    moment = [now - timedelta(days=60)]
    sequence = [0]

    def clock() -> datetime:
        return moment[0]

    def ctx(actor: str) -> CommandContext:
        sequence[0] += 1
        return CommandContext(
            actor=actor,
            at=moment[0],
            command_id=uuid5(DEMO_NAMESPACE, f"deal-cmd-{seed}-{sequence[0]}"),
        )

    def later(hours: float) -> None:
        moment[0] = min(now, moment[0] + timedelta(hours=hours * rng.uniform(0.5, 1.5)))

    runner = ProcessRunner(store, process_managers(store, funnels, rules, clock), clock)
    sold: list[UUID] = []
    contractors = []
    for name, services in CONTRACTORS:
        registration = contractor.RegisterContractor(
            contractor_id=uuid5(DEMO_NAMESPACE, f"contractor-{seed}-{name}"),
            name=name,
            services=services,
            contacts="+7 495 000 00 00",
        )
        register_contractor(store, registration, ctx("office.manager"))
        contractors.append((registration.contractor_id, services))
    for n in range(deals):
        manager = rng.choice(MANAGERS)
        lead_ctx = ctx(manager)
        lead_id = uuid5(DEMO_NAMESPACE, f"deal-lead-{seed}-{n}")
        word = rng.choice(COMPANY_WORDS)
        create_lead(
            store,
            funnels,
            lead.CreateLead(
                lead_id=lead_id,
                funnel="out_of_court",
                title=f"Transport of equipment for {word}",
                company_name=f"{word} Agro",
                company_id=f"demo-{word.lower()}-agro",
                source=rng.choice(SOURCES),
                manager=manager,
                amount=_money(rng, 1_000, 50_000),
            ),
            lead_ctx,
        )
        qualification: list[lead.LeadCommand] = [
            lead.RecordLeadAssessment(rng.choice(EXPERTS), "feasible", Decimal(2)),
            lead.QualifyLead(True),
        ]
        for step in qualification:
            later(4)
            handle_lead_command(store, funnels, lead_id, step, ctx(manager))
        funnel = rng.choice(["transport", "transport", "turnkey"])
        deal_id = convert_lead(store, funnels, rules, lead_id, funnel, ctx(manager)).stream_id
        later(6)
        handle_deal_command(store, rules, deal_id, deal.MoveDealToStage("estimate"), ctx(manager))
        estimate_stage = rules.deal_funnels[funnel].stage("estimate")
        for department in estimate_stage.needs if estimate_stage else ():
            runner.run_once()
            state = deal.fold([r.event for r in store.load(deal_id)])
            assert state is not None
            waiting = [h for h in state.handoffs if h.department == department]
            if not waiting or rng.random() < 0.15:
                break  # left waiting for the department: reminders and escalations follow
            request_id = waiting[-1].request_id
            worker = rng.choice(LOGISTICIANS if department == "logistics" else ENGINEERS)
            steps: list[handoff.HandoffCommand] = [handoff.TakeHandoff(worker)]
            if department == "logistics":
                contractor_id, services = rng.choice(contractors)
                steps.append(
                    handoff.RecordLogisticsEstimate(
                        service=services[0],
                        cost=_money(rng, 500, 5_000),
                        lead_time_days=rng.randint(1, 10),
                        contractor_id=contractor_id,
                        rating=rng.randint(3, 5),
                    )
                )
            else:
                steps.append(handoff.RecordEngineeringPlan(Decimal(rng.randint(4, 80))))
            steps.append(handoff.MoveHandoffToStage("approval"))
            for work in steps:
                later(2)
                handle_handoff_command(store, rules, request_id, work, ctx(worker))
        runner.run_once()
        state = deal.fold([r.event for r in store.load(deal_id)])
        if state is not None and state.stage == "estimate_ready" and rng.random() < 0.7:
            _sell_and_deliver(store, rules, runner, deal_id, manager, rng, ctx, later)
            sold.append(deal_id)
    _calculation_chain(store, funnels, rules, runner, seed, ctx, later)
    _expert_sales(store, funnels, rules, runner, seed, ctx, later)
    moment[0] = now
    _record_contractor_deliveries(store, rules, sold, ctx)
    runner.run_once()
    load_demo_status_limits(store, funnels, rules, now)
    return deals


CALCULATORS = ["vera.experts"]
"""The experts' department: they price the services of requests for calculation."""


def _calculation_chain(
    store: EventStore,
    funnels: FunnelCatalog,
    rules: Rules,
    runner: ProcessRunner,
    seed: int,
    ctx: Callable[[str], CommandContext],
    later: Callable[[float], None],
) -> None:
    """One expert-services deal through the whole chain of seed 002: the request for
    calculation priced by the experts, the proposal built from it, the won deal's project
    with its services launched as tasks, and an act of completed work on the invoice."""
    manager, expert, pm = MANAGERS[0], CALCULATORS[0], PMS[0]
    lead_id = uuid5(DEMO_NAMESPACE, f"calculation-lead-{seed}")
    create_lead(
        store,
        funnels,
        lead.CreateLead(
            lead_id=lead_id,
            funnel="out_of_court",
            title="Financial audit for 2026",
            company_name="Sercons Consulting",
            company_id="demo-sercons",
            source="referral",
            manager=manager,
        ),
        ctx(manager),
    )
    for step in (
        lead.RecordLeadAssessment(EXPERTS[0], "an audit and its report", Decimal(2)),
        lead.QualifyLead(True),
    ):
        later(4)
        handle_lead_command(store, funnels, lead_id, step, ctx(manager))
    deal_id = convert_lead(
        store, funnels, rules, lead_id, "expert_services", ctx(manager)
    ).stream_id
    later(2)
    handle_deal_command(store, rules, deal_id, deal.MoveDealToStage("calculation"), ctx(manager))
    runner.run_once()  # the request for calculation reaches the experts
    state = deal.fold([r.event for r in store.load(deal_id)])
    assert state is not None
    assert state.handoffs
    request_id = state.handoffs[-1].request_id
    services = (
        handoff.CalculatedServiceLine(
            "Financial audit", Decimal("1500.00"), Decimal(10), "day", Decimal(80)
        ),
        handoff.CalculatedServiceLine("Audit report", Decimal("20000.00"), hours=Decimal(16)),
    )
    for work in (
        handoff.TakeHandoff(expert),
        handoff.RecordCalculation(services, "two weeks on site"),
        handoff.MoveHandoffToStage("approval"),
    ):
        later(3)
        handle_handoff_command(store, rules, request_id, work, ctx(expert))
    runner.run_once()  # the deal moves on to `calculated`
    later(6)
    proposal = deal.RecordProposalFromCalculation(request_id)
    handle_deal_command(store, rules, deal_id, proposal, ctx(manager))
    later(1)
    done = handoff.MoveHandoffToStage("done")
    handle_handoff_command(store, rules, request_id, done, ctx(expert))
    number = f"S-{deal_id.hex[:6]}"
    for sale in (
        deal.MoveDealToStage("proposal"),
        deal.MoveDealToStage("contract"),
        deal.RecordContract(f"C-{deal_id.hex[:6]}", ctx(manager).at.date()),
        deal.MoveDealToStage("invoice"),
        deal.IssueInvoice(number, Decimal("35000.00"), "main"),
        deal.CloseDeal("won"),
    ):
        later(12)
        handle_deal_command(store, rules, deal_id, sale, ctx(manager))
    runner.run_once()  # the won deal's project, with its invoice
    project_id = project_id_for_deal(deal_id)
    later(2)
    card = project.UpdateProjectCard({"pm": pm, "curator": "tech.director"})
    handle_project_command(store, rules, project_id, card, ctx(pm))
    later(1)
    launch = (
        project.ServiceLaunch("Financial audit", expert),
        project.ServiceLaunch("Audit report"),
    )
    launch_services(store, rules, project_id, launch, ctx(pm))
    later(48)
    act = project.RecordAct(
        "A-1", ctx(pm).at.date(), Decimal("15000.00"), ("Financial audit",), (), number
    )
    record_act(store, rules, project_id, act, ctx(pm))
    runner.run_once()


def load_demo_status_limits(
    store: EventStore, funnels: FunnelCatalog, rules: Rules, now: datetime
) -> int:
    """Time limits set by hand (top management), in force from ``now``: a tighter limit
    on the projects' approval status and on the first stage of the first lead funnel; the
    number of commands sent (a repeat appends nothing: its idempotency key replays)."""
    first = next(iter(funnels.values()), None)
    wanted: list[status_limits.SetStatusLimit] = []
    if rules.project.status("approval") is not None:
        wanted.append(status_limits.SetStatusLimit("project", None, "approval", 48, "clients wait"))
    if first is not None:
        wanted.append(status_limits.SetStatusLimit("lead", first.id, first.stages[0].id, 12))
    done = 0
    for command in wanted:
        ctx = CommandContext(
            actor="tech.director",
            at=now,
            command_id=uuid5(DEMO_NAMESPACE, f"limit-{command.kind}-{command.stage}"),
            idempotency_key=f"demo-limit-{command.kind}-{command.funnel}-{command.stage}",
            actor_role="top",
            command="set_limit",
        )
        with contextlib.suppress(DomainError):  # set already, or the same as configured
            set_status_limit(store, funnels, rules, command, ctx)
            done += 1
    return done


def _expert_sales(
    store: EventStore,
    funnels: FunnelCatalog,
    rules: Rules,
    runner: ProcessRunner,
    seed: int,
    ctx: Callable[[str], CommandContext],
    later: Callable[[float], None],
) -> None:
    """Two sales of the simplified-tax organisation, selling only the services it may:
    one with a prepayment invoice approved by the manager's head, won, and a further
    invoice on its project (both on the organisation's revenue ledger); the other with a
    prepayment invoice declined and another one still awaiting approval (an alert)."""
    manager = MANAGERS[0]
    approver = rules.head_of(manager)
    for n, won in enumerate((True, False)):
        lead_id = uuid5(DEMO_NAMESPACE, f"expert-lead-{seed}-{n}")
        create_lead(
            store,
            funnels,
            lead.CreateLead(
                lead_id=lead_id,
                funnel="out_of_court",
                title=f"Expert survey {n + 1}",
                company_name=f"{COMPANY_WORDS[n]} Agro",
                company_id=f"demo-{COMPANY_WORDS[n].lower()}-agro",
                source="referral",
                manager=manager,
                amount=Decimal("120000.00"),
            ),
            ctx(manager),
        )
        for step in (
            lead.RecordLeadAssessment(EXPERTS[0], "feasible", Decimal(2)),
            lead.QualifyLead(True),
        ):
            later(2)
            handle_lead_command(store, funnels, lead_id, step, ctx(manager))
        deal_id = convert_lead(store, funnels, rules, lead_id, "turnkey", ctx(manager)).stream_id
        services = (
            deal.ServiceLine("survey", Decimal("40000.00")),
            deal.ServiceLine("report", Decimal("80000.00")),
        )
        number = f"P-{deal_id.hex[:6]}"
        selling: list[tuple[str, deal.DealCommand]] = [
            (manager, deal.RecordProposal(services, "simplified")),
            (manager, deal.RecordContract(f"C-{deal_id.hex[:6]}", ctx(manager).at.date())),
            (
                manager,
                deal.IssueInvoice(number, Decimal("60000.00"), "simplified", prepayment=True),
            ),
        ]
        if won:
            selling += [
                (approver, deal.DecideInvoiceApproval(number, True, "client paid before")),
                (manager, deal.CloseDeal("won")),
            ]
        else:
            selling += [
                (approver, deal.DecideInvoiceApproval(number, False, "prepayment over 50%")),
                (
                    manager,
                    deal.IssueInvoice(
                        f"{number}-2", Decimal("36000.00"), "simplified", prepayment=True
                    ),
                ),
            ]
        for actor, sale in selling:
            later(6)
            handle_deal_command(store, rules, deal_id, sale, ctx(actor))
        if won:
            runner.run_once()
            later(24)
            rest = billing.IssueProjectInvoice(
                f"{number}-F",
                Decimal("60000.00"),
                ctx("accounting").at.date() + timedelta(days=14),
                organisation="simplified",
            )
            handle_billing_command(
                store, project_id_for_deal(deal_id), rest, ctx("accounting"), rules
            )


PEOPLE = ["ivan.fitter", "pavel.fitter", "nina.engineer", "oleg.engineer", "maria.designer"]
PMS = ["olga.pm", "sergey.pm", "tatiana.pm"]


def _sell_and_deliver(
    store: EventStore,
    rules: Rules,
    runner: ProcessRunner,
    deal_id: UUID,
    manager: str,
    rng: random.Random,
    ctx: Callable[[str], CommandContext],
    later: Callable[[float], None],
) -> None:
    """Proposal, contract, invoice and won; then the project the process manager opens
    (with the deal's invoice) is planned, worked, moved along its statuses and (partly)
    paid."""
    price = _money(rng, 5_000, 60_000)
    selling: list[deal.DealCommand] = [
        deal.MoveDealToStage("proposal"),
        deal.RecordProposal((deal.ServiceLine("delivery and mounting", price),)),
        deal.MoveDealToStage("contract"),
        deal.RecordContract(f"C-{deal_id.hex[:6]}", (ctx(manager).at).date()),
        deal.MoveDealToStage("invoice"),
        deal.IssueInvoice(f"S-{deal_id.hex[:6]}", price, "main"),
        deal.CloseDeal("won"),
    ]
    for sale in selling:
        later(12)
        handle_deal_command(store, rules, deal_id, sale, ctx(manager))
    runner.run_once()
    project_id = project_id_for_deal(deal_id)
    pm = rng.choice(PMS)
    start = ctx(pm).at.date()
    work: list[project.ProjectCommand] = [
        project.UpdateProjectCard(
            {
                "pm": pm,
                "curator": "tech.director",
                "category": rng.choice(["installation", "transport", "survey"]),
                "planned_start": start,
                "planned_end": start + timedelta(days=rng.randint(14, 60)),
            }
        ),
        project.AddTask(
            "survey",
            "Site survey",
            rng.choice(PEOPLE),
            Decimal(rng.randint(4, 16)),
            start,
            start + timedelta(days=3),
        ),
        project.AddTask(
            "mounting",
            "Mounting",
            rng.choice(PEOPLE),
            Decimal(rng.randint(16, 80)),
            start + timedelta(days=3),
            start + timedelta(days=20),
            ("survey",),
        ),
        project.MoveProjectToStatus("in_production"),
    ]
    for command in work:
        later(6)
        handle_project_command(store, rules, project_id, command, ctx(pm))
    for day in range(rng.randint(2, 8)):
        later(24)
        person = rng.choice(PEOPLE)
        entry = project.LogHours(
            entry_id=uuid5(DEMO_NAMESPACE, f"entry-{project_id}-{day}"),
            person=person,
            day=ctx(person).at.date(),
            hours=Decimal(rng.randint(2, 8)),
            task_id=rng.choice(["survey", "mounting"]),
        )
        with contextlib.suppress(DomainError):  # the person's day was full already
            handle_project_command(store, rules, project_id, entry, ctx(person))
    if rng.random() < 0.6:
        later(24)
        handle_project_command(store, rules, project_id, project.CompleteTask("survey"), ctx(pm))
    # the deal's invoice came with the project (carried by the project creation)
    number = f"S-{deal_id.hex[:6]}"
    if rng.random() < 0.7:
        later(72)
        paid = price if rng.random() < 0.5 else (price / 2).quantize(Decimal("0.01"))
        payment = billing.RecordPayment(number, paid, ctx("accounting").at.date())
        handle_billing_command(store, project_id, payment, ctx("accounting"))
    runner.run_once()


def _record_contractor_deliveries(
    store: EventStore, rules: Rules, sold: list[UUID], ctx: Callable[[str], CommandContext]
) -> None:
    """The won deals' contracted jobs finished by now (on time or a few days late): the
    logistician records each one's completion and rates the work (a random stream of its
    own, so the rest of the demo stays as it was)."""
    rng = random.Random(len(sold))
    for deal_id in sold:
        state = deal.fold([r.event for r in store.load(deal_id)])
        if state is None or state.closed_at is None:
            continue
        won_on = state.closed_at.date()
        for view in state.handoffs:
            request = handoff.fold([r.event for r in store.load(view.request_id)], rules)
            if request is None or request.logistics is None or request.assignee is None:
                continue
            planned = won_on + timedelta(days=request.logistics.lead_time_days)
            completed = max(won_on, planned + timedelta(days=rng.randint(-2, 6)))
            actor = ctx(request.assignee)
            if completed > actor.at.date():
                continue  # still under way
            command = handoff.RecordDelivery(completed, rng.randint(2, 5))
            with contextlib.suppress(DomainError):  # own equipment, or not the job sold
                record_delivery(store, rules, view.request_id, command, actor)


def load_demo_lead_projects(
    store: EventStore, funnels: FunnelCatalog, rules: Rules, now: datetime, *, seed: int = 7
) -> int:
    """Seed 000's lead rules on a few leads of the last ten days: out-of-court leads with a
    contact and a cost breakdown, qualified without an assessment (or with one their card
    asked for), that complete the funnel and are closed won, then become projects by the
    project-creation process (as every won out-of-court lead of the demo does); and leads
    left paused for the paused-leads report. The number of leads."""
    if "out_of_court" not in funnels or funnels["out_of_court"].delivery != "project":
        return 0
    rng = random.Random(seed + 2)
    moment = [now - timedelta(days=10)]
    sequence = [0]

    def ctx(actor: str) -> CommandContext:
        sequence[0] += 1
        moment[0] = min(now, moment[0] + timedelta(hours=rng.uniform(2, 8)))
        return CommandContext(
            actor=actor,
            at=moment[0],
            command_id=uuid5(DEMO_NAMESPACE, f"lead-project-cmd-{seed}-{sequence[0]}"),
        )

    stages = [s.id for s in funnels["out_of_court"].stages[1:]]
    count = 0
    for n in range(5):
        manager = rng.choice(MANAGERS)
        lead_id = uuid5(DEMO_NAMESPACE, f"lead-project-{seed}-{n}")
        word = rng.choice(COMPANY_WORDS)
        create_lead(
            store,
            funnels,
            lead.CreateLead(
                lead_id=lead_id,
                funnel="out_of_court",
                title=rng.choice(TITLES),
                company_name=f"{word} Retail",
                company_id=f"demo-{word.lower()}-retail",
                source=rng.choice(SOURCES[1:]),
                manager=manager,
                expert=rng.choice(EXPERTS),
                need_maturity="ready_to_buy",
                answer_due=(moment[0] + timedelta(days=5)).date(),
                description="A lead delivered directly as a project (demo)",
                contact=f"{word} office, +7 495 000 00 0{n}",
                assessment_required=True if n == 1 else None,
            ),
            ctx("assistant.demo"),
        )
        steps: list[lead.LeadCommand] = [
            lead.SetLeadCostBreakdown(
                (
                    lead.CostComponent("survey", _money(rng, 500, 3_000)),
                    lead.CostComponent("report", _money(rng, 200, 1_000)),
                )
            )
        ]
        if n == 1:  # its card asked for an assessment
            steps.append(lead.RecordLeadAssessment(rng.choice(EXPERTS), "feasible", Decimal(3)))
        if n >= 3:  # left paused: why these leads are not being worked
            steps.append(lead.PauseLead(rng.choice(PAUSE_REASONS)))
        else:
            steps.append(lead.QualifyLead(True))
            steps += [lead.MoveLeadToStage(stage) for stage in stages]
            steps.append(lead.CloseLead("won"))
        for step in steps:
            handle_lead_command(store, funnels, lead_id, step, ctx(manager))
        count += 1

    def clock() -> datetime:
        return now

    # the won leads of funnels delivering directly become projects, as in the server
    ProcessRunner(store, [ProjectCreation(store, rules, clock, funnels)], clock).run_once()
    return count


DELIVERY_FUNNELS = (
    ("turnkey", "production"),
    ("transport", "logistics"),
    ("expert_services", "experts"),
)


def load_demo_delivered_history(
    store: EventStore, rules: Rules, now: datetime, *, months: int | None = None, seed: int = 7
) -> int:
    """Projects delivered over the last ``months`` months, by default all of last year and
    this year to date (a sales history for the delivered-sales report: last year beside
    this one, and the forecast's backtest):
    each month a few projects, more in spring and autumn and growing year on year,
    started at the month's beginning and moved to done within it. The number of projects."""
    rng = random.Random(seed + 16)
    done = rules.project.done_status
    months = 12 + now.month if months is None else months
    first = (now.year * 12 + now.month - 1) - (months - 1)
    count = 0
    for index in range(months):
        year, month = divmod(first + index, 12)
        month += 1
        start = datetime(year, month, 1, 9, 0, tzinfo=now.tzinfo)
        season = 1.3 if month in (3, 4, 5, 9, 10, 11) else 0.8
        growth = 1.0 + 0.15 * (index / 12)
        for n in range(max(1, round(rng.uniform(3, 6) * season * growth))):
            created = start + timedelta(days=rng.uniform(0, 5))
            delivered = created + timedelta(days=rng.uniform(5, 22))
            if delivered > now:
                break
            funnel, department = rng.choice(DELIVERY_FUNNELS)
            project_id = uuid5(DEMO_NAMESPACE, f"delivered-{seed}-{year}-{month}-{n}")

            def ctx(actor: str, at: datetime, step: str, pid: UUID = project_id) -> CommandContext:
                return CommandContext(
                    actor=actor, at=at, command_id=uuid5(DEMO_NAMESPACE, f"{pid}-{step}")
                )

            word = rng.choice(COMPANY_WORDS)
            pm = rng.choice(PMS)
            create_project(
                store,
                rules,
                project.CreateProject(
                    project_id=project_id,
                    title=rng.choice(TITLES),
                    company_name=f"{word} Group",
                    company_id=f"demo-{word.lower()}-group",
                    amount=_money(rng, 2_000, 12_000),
                    funnel=funnel,
                    manager=rng.choice(MANAGERS),
                    department=department,
                    pm=pm,
                ),
                ctx(pm, created, "create"),
            )
            for step, status, at in (
                ("start", "in_production", created + timedelta(days=1)),
                ("done", done, delivered),
            ):
                command = project.MoveProjectToStatus(status)
                handle_project_command(store, rules, project_id, command, ctx(pm, at, step))
            count += 1
    return count


SALES_HEAD = "helen.head"
MANAGER_PLACES: dict[str, tuple[str, str]] = {
    name: (("Moscow region", "Moscow"), ("Volga", "Kazan"), ("Volga", "Samara"))[n % 3]
    for n, name in enumerate(MANAGERS)
}
"""Each demo manager's region and city in the directory (the sales cabinet rolls them up
region → city → manager)."""
REGIONAL_HEAD = "vadim.volga"
"""A regional head of sales: the Volga region's people of the sales department only."""
PLACES: dict[str, tuple[str, str]] = {**MANAGER_PLACES, REGIONAL_HEAD: ("Volga", "Kazan")}

DEMO_USERS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    *(
        (name, name.replace(".", " ").title(), "manager", "sales", MANAGER_PLACES[name][0])
        for name in MANAGERS
    ),
    (SALES_HEAD, "Helen Head", "head", "sales", None),
    (REGIONAL_HEAD, "Vadim Volga", "head", "sales", "Volga"),
    ("logistics.head", "Logistics Head", "head", "logistics", "Moscow"),
    ("engineering.head", "Engineering Head", "head", "engineering", "Kazan"),
    ("experts.head", "Experts Head", "head", "experts", "Moscow"),
    *(
        (name, name.replace(".", " ").title(), "department", "experts", "Moscow")
        for name in CALCULATORS
    ),
    ("tech.director", "Tech Director", "top", None, "Moscow"),
    *((name, name.replace(".", " ").title(), "pm", "projects", "Moscow") for name in PMS),
    *((name, name.replace(".", " ").title(), "expert", "engineering", "Kazan") for name in EXPERTS),
    *(
        (name, name.replace(".", " ").title(), "department", "logistics", "Moscow")
        for name in LOGISTICIANS
    ),
    *(
        (name, name.replace(".", " ").title(), "department", "engineering", "Kazan")
        for name in ENGINEERS
    ),
    ("alice.analyst", "Alice Analyst", "analyst", None, "Moscow"),
    ("victor.auditor", "Victor Auditor", "auditor", None, "Moscow"),
    ("adam.admin", "Adam Admin", "admin", None, "Moscow"),
    ("anya.assistant", "Anya Assistant", "assistant", "sales", "Moscow"),
)
"""The demo's people: every role, so each can be tried with the token printed for it."""


DEMO_MAIL_DOMAIN = "demo.leadledger.test"


def demo_email(username: str) -> str:
    """A demo user's work address (a reserved .test domain: no mail leaves for real)."""
    return f"{username}@{DEMO_MAIL_DOMAIN}"


def load_demo_users(store: EventStore, now: datetime) -> list[str]:
    """Register the demo's people in the directory (skipping those already there)."""
    registered = []
    for username, name, role, department, region in DEMO_USERS:
        ctx = CommandContext(
            actor="adam.admin",
            at=now,
            command_id=uuid5(DEMO_NAMESPACE, f"user-{username}"),
            idempotency_key=f"demo-user-{username}",
            actor_role="admin",
            command="register_user",
        )
        try:
            city = PLACES.get(username, (None, None))[1]
            command = users.RegisterUser(
                username, name, role, department, region, city, email=demo_email(username)
            )
            register_user(store, command, ctx)
        except VersionConflict:
            continue
        registered.append(username)
    load_demo_plans(store, now)
    return registered


def load_demo_plans(store: EventStore, now: datetime, *, seed: int = 7) -> int:
    """The demo managers' sales plans for this month and the two before (the demo's deals
    span them), set by the head of sales; the number sent (a repeat appends nothing:
    its idempotency key replays)."""
    rng = random.Random(seed + 3)
    months = []
    day = now.date().replace(day=1)
    for _ in range(3):
        months.append(sales_plans.month_of(day))
        day = (day - timedelta(days=1)).replace(day=1)
    head = sales_plans.Person(SALES_HEAD, "head", "sales")
    done = 0
    for month in sorted(months):
        for manager in MANAGERS:
            amount = Decimal(rng.randrange(40, 200) * 10_000)
            command = sales_plans.SetSalesPlan(
                manager, month, amount, "RUB", rng.randint(2, 6), "the demo's monthly plan"
            )
            ctx = CommandContext(
                actor=SALES_HEAD,
                at=now,
                command_id=uuid5(DEMO_NAMESPACE, f"plan-{manager}-{month}"),
                idempotency_key=f"demo-plan-{manager}-{month}",
                actor_role="head",
                command="set_plan",
            )
            with contextlib.suppress(DomainError):  # set already (by hand, since)
                set_sales_plan(store, command, head, ctx)
                done += 1
    return done


def demo_logins() -> list[tuple[str, str]]:
    """One demo user per role, to print tokens for."""
    seen: dict[str, str] = {}
    for username, _, role, _, _ in DEMO_USERS:
        seen.setdefault(role, username)
    return list(seen.items())


DEMO_ASSISTANT = "anya.assistant"
ASSISTED_MANAGER = MANAGERS[0]
ASSISTANT_CLIENT = ("demo-sever-bakery", "Sever Bakery LLC")
ASSISTANT_LEADS = (
    "Valuation of a bakery's equipment",
    "Appraisal of a warehouse lease",
    "Inventory valuation before a merger",
)
"""Leads the demo assistant creates for the manager they work for."""


def load_demo_assistant(
    store: EventStore, funnels: FunnelCatalog, rules: Rules, now: datetime
) -> int:
    """The demo assistant works for the first demo manager: attached by the admin, they
    create a few leads of one client for them (in the out-of-court funnel, whose sales
    direction is turnkey). Another manager holds that client's turnkey direction, so sees
    those leads too, and a third asks for it: a takeover waiting for the head. Done once
    (skipped when the assistant has managers already); the number of leads created."""
    if load_user(store, DEMO_ASSISTANT).managers:
        return 0

    def ctx(actor: str, key: str, role: str, command: str) -> CommandContext:
        return CommandContext(
            actor=actor,
            at=now,
            command_id=uuid5(DEMO_NAMESPACE, f"assistant-{key}"),
            idempotency_key=f"demo-assistant-{key}",
            actor_role=role,
            command=command,
        )

    attach = users.SetAssistantManagers((ASSISTED_MANAGER,))
    set_assistant_managers(
        store, DEMO_ASSISTANT, attach, ctx("adam.admin", "attach", "admin", "set_managers")
    )
    company_id, company_name = ASSISTANT_CLIENT
    for n, title in enumerate(ASSISTANT_LEADS):
        command = lead.CreateLead(
            lead_id=uuid5(DEMO_NAMESPACE, f"assistant-lead-{n}"),
            funnel="out_of_court" if "out_of_court" in funnels else next(iter(funnels)),
            title=title,
            company_name=company_name,
            company_id=company_id,
            source="website",
            manager=ASSISTED_MANAGER,
            amount=Decimal(25_000 * (n + 1)),
        )
        create_lead(
            store, funnels, command, ctx(DEMO_ASSISTANT, f"lead-{n}", "assistant", "create")
        )
    holder, asker = MANAGERS[1], MANAGERS[2]
    for manager in (holder, asker):
        take = limits.AssignClient(company_id, "turnkey", manager, "a demo client")
        with contextlib.suppress(DomainError):  # over a demo cap: it waits all the same
            assign_client(store, rules, take, ctx(manager, f"take-{manager}", "manager", "assign"))
    return len(ASSISTANT_LEADS)


# --- activities («Мои Дела») and personal weekly plans ---------------------------------------

ACTIVITY_RESULTS = (
    "agreed on a meeting",
    "sent the offer",
    "asked to call back next week",
    "no answer, will try again",
    "interested: sent the price list",
    "the decision maker is away",
)
CANCEL_REASONS = ("the client cancelled", "moved to a meeting", "duplicate")


def load_demo_activities(
    store: EventStore, rules: Rules, now: datetime, *, days: int = 45, seed: int = 7
) -> int:
    """A few months' worth of the sales people's activities (seed 004): each working day
    of the last ``days`` a few calls, meetings, demonstrations and e-mails per manager and
    for the sales head, most done, some cancelled, a few of the last days left undone
    (overdue), some planned for the coming days; and next week's personal plans, one of
    them commented on by the head. Idempotent (deterministic ids and keys); the number of
    activities."""
    from aggregates import activities as activity_model
    from aggregates import activity_plans
    from commands.activities import (
        activity_id_for,
        comment_activity_plan,
        handle_activity_command,
        plan_activity,
        set_activity_plan,
    )

    rng = random.Random(seed + 4)
    types = rules.activities.types
    planned_types = [t for t in types if not t.after_the_fact]
    registered_types = [t for t in types if t.after_the_fact]
    people = [*MANAGERS, SALES_HEAD]
    made = 0

    def ctx(actor: str, key: str, at: datetime, command: str) -> CommandContext:
        return CommandContext(
            actor=actor,
            at=at,
            command_id=uuid5(DEMO_NAMESPACE, f"activity-{seed}-{key}"),
            idempotency_key=f"demo-activity-{seed}-{key}",
            actor_role="head" if actor == SALES_HEAD else "manager",
            command=command,
        )

    today = now.date()
    for person in people:
        for back in range(days, -6, -1):
            day = today - timedelta(days=back)
            if day.isoweekday() > 5:
                continue
            for n in range(rng.randint(2, 5)):
                key = f"{person}-{day.isoformat()}-{n}"
                start = datetime.combine(day, datetime.min.time(), now.tzinfo) + timedelta(
                    hours=rng.randint(8, 17), minutes=rng.choice((0, 15, 30, 45))
                )
                company = f"INN{7700000000 + rng.randrange(200)}"
                incoming = registered_types and rng.random() < 0.2
                kind = rng.choice(registered_types if incoming else planned_types)
                if incoming and start > now:
                    continue
                # planned a few days ahead (or registered when it happened)
                asked = start if incoming else min(now, start - timedelta(days=rng.randint(0, 4)))
                command = activity_model.PlanActivity(
                    activity_id=activity_id_for(uuid5(DEMO_NAMESPACE, f"activity-id-{key}")),
                    activity_type=kind.code,
                    owner=person,
                    planned_at=start,
                    duration_minutes=60 if kind.group in ("meetings", "demos") else 15,
                    company_id=company,
                    notes=None,
                    result=rng.choice(ACTIVITY_RESULTS) if incoming else None,
                )
                try:
                    plan_activity(store, rules.activities, command, ctx(person, key, asked, "plan"))
                except (DomainError, VersionConflict):
                    continue
                made += 1
                if incoming or start > now:
                    continue
                fate = rng.random()
                late = back <= 2 and fate < 0.35
                if late:
                    continue  # left undone: overdue
                end = start + timedelta(minutes=command.duration_minutes)
                action: activity_model.ActivityCommand = (
                    activity_model.CancelActivity(rng.choice(CANCEL_REASONS))
                    if fate < 0.08
                    else activity_model.CompleteActivity(rng.choice(ACTIVITY_RESULTS))
                )
                with contextlib.suppress(DomainError, VersionConflict):
                    handle_activity_command(
                        store,
                        command.activity_id,
                        action,
                        ctx(person, f"{key}-end", min(now, end), "done"),
                    )
    # next week's personal plans; the head comments on the first two
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    for index, person in enumerate(MANAGERS):
        counts = {
            monday + timedelta(days=d): {
                "call_out_cold": rng.randint(4, 10),
                "call_out_deal": rng.randint(2, 6),
                "meeting_potential": rng.randint(0, 2),
                **({"demo": 1} if d in (1, 3) else {}),
            }
            for d in range(5)
        }
        usable = {
            day: {k: v for k, v in c.items() if rules.activities.type(k) is not None}
            for day, c in counts.items()
        }
        plan = activity_plans.SetActivityPlan(person, monday, usable, "next week's plan")
        with contextlib.suppress(DomainError, VersionConflict):
            set_activity_plan(
                store,
                rules.activities,
                plan,
                ctx(person, f"plan-{person}-{monday}", now, "put_plan"),
            )
        if index < 2:
            comment = activity_plans.CommentActivityPlan("More demonstrations, please.")
            with contextlib.suppress(DomainError, VersionConflict):
                comment_activity_plan(
                    store,
                    person,
                    monday,
                    comment,
                    ctx(SALES_HEAD, f"comment-{person}-{monday}", now, "comment_plan"),
                )
    return made


DEMO_RATES: tuple[tuple[str, str | None, int], ...] = (
    *((name, "production", 1500 + 150 * n) for n, name in enumerate(PEOPLE)),
    *((name, None, 1800) for name in ENGINEERS),
    *((name, None, 1300) for name in LOGISTICIANS),
    *((name, None, 2500) for name in EXPERTS),
    *((name, None, 2200) for name in CALCULATORS),
    *((name, None, 2000) for name in PMS),
)
"""The hourly cost rates of the demo's people who log hours (a department for those the
directory does not hold yet: the fitters are registered with their rates)."""


def load_demo_cost_rates(store: EventStore, now: datetime) -> int:
    """Hourly cost rates for the demo's people, so the projects' cost and margin are
    alive: each a rate from three years back and a 10 % raise two months ago. Done once
    per person (skipped for those with a rate already); the people given rates."""
    first = date(now.year - 3, 1, 1)
    raised = (now - timedelta(days=60)).date()
    given = 0
    for username, department, rate in DEMO_RATES:
        if department is not None:
            name = username.replace(".", " ").title()
            register = users.RegisterUser(username, name, "department", department, "Moscow")
            with contextlib.suppress(VersionConflict):
                register_user(store, register, _rate_ctx(username, "user", now))
        try:
            if load_user(store, username).cost_rates:
                continue
        except StreamNotFound:
            continue
        hired = users.SetCostRate(Decimal(rate), first, "demo: the rate of the grade")
        set_cost_rate(store, username, hired, _rate_ctx(username, "hired", now))
        raise_ = users.SetCostRate(
            (Decimal(rate) * Decimal("1.1")).quantize(Decimal("0.01")), raised, "demo: a raise"
        )
        set_cost_rate(store, username, raise_, _rate_ctx(username, "raised", now))
        given += 1
    return given


def _rate_ctx(username: str, key: str, now: datetime) -> CommandContext:
    """The admin registers a demo person; top management sets their rates."""
    by_admin = key == "user"
    return CommandContext(
        actor="adam.admin" if by_admin else "tech.director",
        at=now,
        command_id=uuid5(DEMO_NAMESPACE, f"rate-{username}-{key}"),
        idempotency_key=f"demo-rate-{username}-{key}",
        actor_role="admin" if by_admin else "top",
        command="register_user" if by_admin else "set_cost_rate",
    )


DEMO_INDUSTRIES = [
    "Agriculture",
    "Construction",
    "Retail",
    "Logistics",
    "Manufacturing",
    "Energy",
    "Insurance",
    "Real estate",
]
DEMO_PLACES = [
    ("Moscow", "Moscow"),
    ("Moscow region", "Podolsk"),
    ("Saint Petersburg", "Saint Petersburg"),
    ("Tver region", "Tver"),
    ("Tatarstan", "Kazan"),
    ("Sverdlovsk region", "Yekaterinburg"),
    ("Krasnodar krai", "Krasnodar"),
]


def _demo_companies(store: EventStore) -> list[tuple[str, str]]:
    """Every company the demo's leads brought in (first seen on a lead, with just a name),
    in the order they were seen: (company id, name)."""
    from projections.deals import page_events

    seen: list[tuple[str, str]] = []
    after = 0
    while True:
        page = store.read_page(after, 50_000)
        if page.num_rows == 0:
            return seen
        after = page["position"][-1].as_py()
        for e in page_events(page, frozenset({"CompanyRegistered"})):
            seen.append((e.doc["company_id"], e.doc["company_name"]))


def load_demo_companies(store: EventStore, now: datetime) -> int:
    """The directory cards of the demo's companies: an industry, a valid tax id (INN and,
    for most, a KPP), a region and a city, each following from the company's place in the
    log (deterministic: loading twice changes nothing). A name already held in the same
    city by another demo company is registered as a different company. The companies
    whose card was filled."""
    filled = 0
    for index, (company_id, name) in enumerate(_demo_companies(store)):
        try:
            if load_company(store, company_id).in_directory:
                continue
        except StreamNotFound:
            continue
        region, city = DEMO_PLACES[index % len(DEMO_PLACES)]
        tax = company.with_check_digits(f"{770100000 + index * 7:09d}")
        card = {
            "industry": DEMO_INDUSTRIES[(index * 5 + 3) % len(DEMO_INDUSTRIES)],
            "tax_id": tax,
            "kpp": f"{tax[:4]}01001" if index % 4 else None,
            "region": region,
            "city": city,
            "legal_address": f"{city}, {name} building {index % 90 + 1}",
        }
        for different in (False, True):
            ctx = CommandContext(
                actor="assistant.demo",
                at=now,
                command_id=uuid5(DEMO_NAMESPACE, f"company-card-{company_id}-{different}"),
                idempotency_key=f"demo-company-{company_id}-{different}",
                actor_role="assistant",
                command="change_card",
            )
            try:
                change_company_card(
                    store, company_id, company.ChangeCompanyCard(card, False, different), ctx
                )
            except DomainError:
                continue  # the same name in the same city: a different company, say so
            filled += 1
            break
    return filled


# --- contacts and the shared directories (issue 18 §1) ---------------------------------------

DEMO_PERSONS = (
    ("Olga Smirnova", "8 916 100-20-30", "olga.smirnova@example.ru"),
    ("Pavel Egorov", "+7 903 555 12 12", "p.egorov@example.ru"),
    ("Irina Volkova", "8 (925) 777-00-11", None),
    ("Sergei Lebedev", None, "s.lebedev@example.ru"),
)
"""Private persons (no company): the first brings two leads, the second a repeat."""
PERSON_LEADS = (
    (0, "Flat flooding appraisal"),
    (1, "Car damage appraisal"),
    (2, "Cottage appraisal for the court"),
    (3, "Inheritance appraisal"),
    (0, "Second flat: appraisal after the repair"),
)
DEMO_ENTRIES: dict[str, tuple[dict[str, str], ...]] = {
    "court": (
        {"name": "Moscow Arbitration Court", "region": "Moscow", "phone": "+7 495 600 60 00"},
        {"name": "Tver District Court", "region": "Tver"},
    ),
    "opponent": ({"name": "Stroymontazh LLC", "tax_id": "7701000001"}, {"name": "Nord Invest"}),
    "consultant": ({"name": "Maria Kovaleva", "organisation": "Expert Consult"},),
    "lawyer": ({"name": "Andrei Belov", "firm": "Belov & Partners"},),
    "expert": ({"name": "Nikolai Frolov", "speciality": "construction appraisal"},),
    "signatory": (
        {"name": "Viktor Sokolov", "position": "General director", "authority": "charter"},
        {"name": "Elena Gromova", "position": "Deputy director", "authority": "power of attorney"},
    ),
}


def _demo_projects(store: EventStore, limit: int) -> list[UUID]:
    """The first projects of the log (their ids), for signatories to sign."""
    found: list[UUID] = []
    after = 0
    while len(found) < limit:
        page = store.read(after, 5_000)
        if not page:
            break
        found += [UUID(str(n.originator_id)) for n in page if n.topic == "ProjectCreated"]
        after = page[-1].id
    return found[:limit]


def load_demo_directories(
    store: EventStore,
    funnels: FunnelCatalog,
    catalog: DirectoryCatalog,
    now: datetime,
) -> int:
    """Contacts of private persons with their leads (one of them a repeat), a few entries
    of every directory kind, courts linked to the leads they sent and signatories to
    projects. Deterministic, and done once (skipped when the first contact exists); the
    number of entries and contacts registered."""
    from aggregates import contact
    from aggregates import directory_entry as entries
    from commands.contacts import contact_id_for, load_contact_records, register_contact
    from commands.directories import entry_id_for, link_entry, register_entry

    def ctx(key: str, role: str = "manager", command: str = "register") -> CommandContext:
        return CommandContext(
            actor=MANAGERS[0],
            at=now,
            command_id=uuid5(DEMO_NAMESPACE, f"directories-{key}"),
            idempotency_key=f"demo-directories-{key}",
            actor_role=role,
            command=command,
        )

    if load_contact_records(store, contact_id_for(ctx("person-0").command_id)):
        return 0
    persons: list[UUID] = []
    for n, (name, phone, email) in enumerate(DEMO_PERSONS):
        context = ctx(f"person-{n}")
        person = contact.RegisterContact(
            contact_id=contact_id_for(context.command_id),
            name=name,
            phones=(phone,) if phone else (),
            emails=(email,) if email else (),
        )
        register_contact(store, person, context)
        persons.append(person.contact_id)
    funnel = "out_of_court" if "out_of_court" in funnels else next(iter(funnels))
    leads: list[UUID] = []
    for n, (person_no, title) in enumerate(PERSON_LEADS):
        command = lead.CreateLead(
            lead_id=uuid5(DEMO_NAMESPACE, f"directories-lead-{n}"),
            funnel=funnel,
            title=title,
            company_name=DEMO_PERSONS[person_no][0],
            source="court_request" if "court" in title else "website",
            manager=MANAGERS[0],
            amount=Decimal(15_000 + 5_000 * n),
            contact_id=persons[person_no],
        )
        create_lead(store, funnels, command, ctx(f"lead-{n}", command="create"))
        leads.append(command.lead_id)
    registered: dict[str, list[UUID]] = {}
    for kind_id, rows in DEMO_ENTRIES.items():
        kind = catalog.get(kind_id)
        if kind is None:
            continue
        for n, fields in enumerate(rows):
            context = ctx(f"{kind_id}-{n}")
            entry = entries.RegisterEntry(entry_id_for(context.command_id), dict(fields))
            register_entry(store, kind, entry, context)
            registered.setdefault(kind_id, []).append(entry.entry_id)
    links: list[tuple[str, int, str, UUID, str]] = [
        ("court", 0, "lead", leads[2], "sender"),
        ("court", 1, "lead", leads[0], "sender"),
        ("opponent", 0, "lead", leads[2], "opponent"),
        ("lawyer", 0, "lead", leads[2], "lawyer"),
    ]
    for n, project_id in enumerate(_demo_projects(store, 4)):
        links.append(("signatory", n % 2, "project", project_id, "signatory"))
    for n, (kind_id, index, target, target_id, role) in enumerate(links):
        kind = catalog.get(kind_id)
        if kind is None or kind_id not in registered:
            continue
        with contextlib.suppress(DomainError):  # a kind configured without this role
            link_entry(
                store,
                kind,
                registered[kind_id][index],
                entries.LinkEntry(target, target_id, role),
                ctx(f"link-{n}", command="link"),
            )
    return len(persons) + sum(len(ids) for ids in registered.values())
