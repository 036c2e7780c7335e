"""Deal, hand-off, contractor, client-assignment and alert read models.

Every event here goes through the real command handlers on a SQLite event store. The
tables must agree with the state the aggregates fold from the same streams; projecting
the log in any page sizes must give exactly what one rebuild gives; a fault mid-page
must leave the tables at the previous page, and the next run must converge.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import contractor, deal, handoff, lead, limits
from aggregates.rules import Rules
from commands.assignments import assign_client, decide_assignment
from commands.context import CommandContext, CommandResult
from commands.contractors import register_contractor, update_contractor
from commands.deals import convert_lead, create_upsell, deal_id_for_lead, handle_deal_command
from commands.handoffs import create_handoff, handle_handoff_command, request_id_for_round
from commands.projects import create_project_for_deal
from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.deals import (
    AlertProjection,
    ClientAssignmentProjection,
    ContractorProjection,
    DealProjection,
    HandoffProjection,
    deal_projections,
)
from projections.projector import POSITION_NAME, Projector, rebuild
from tests.factories import FUNNELS, LeadDriver, ManualClock

RULES: Rules = load_rules(Settings().funnels_file, Settings().rules_file)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TABLE_ORDER = {
    "deals": "deal_id",
    "handoffs": "request_id",
    "contractors": "contractor_id",
    "contractor_quotes": "position",
    "client_assignments": "assignment_id",
    "alerts": "alert_id",
}


# --- driving deals, requests, contractors and assignments through the handlers ----------


@dataclass
class PipelineDriver:
    """Sends commands through the handlers as the HTTP layer does, and remembers the ids
    (and the positions of the alerts) it made."""

    store: EventStore
    clock: Callable[[], datetime]
    rules: Rules = RULES
    actor: str = "anna.sales"
    deals: list[UUID] = field(default_factory=list)
    requests: list[UUID] = field(default_factory=list)
    contractors: list[UUID] = field(default_factory=list)
    assignments: list[UUID] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.leads = LeadDriver(self.store, clock=self.clock, funnels=FUNNELS, actor=self.actor)

    def ctx(self, actor: str | None = None) -> CommandContext:
        return CommandContext.new(actor=actor or self.actor, clock=self.clock)

    # leads and deals

    def lead(self, **fields: Any) -> UUID:
        return self.leads.create(**fields).stream_id

    def deal_from_lead(self, deal_funnel: str = "transport", **lead_fields: Any) -> UUID:
        lead_id = self.lead(**lead_fields)
        self.leads.assess(lead_id)
        self.leads.qualify(lead_id, True)
        convert_lead(self.store, FUNNELS, self.rules, lead_id, deal_funnel, self.ctx())
        deal_id = deal_id_for_lead(lead_id)
        self.deals.append(deal_id)
        return deal_id

    def upsell(self, previous: UUID, title: str = "Second truck", manager: str = "boris") -> UUID:
        deal_id = uuid4()
        command = deal.CreateDeal(
            deal_id=deal_id,
            funnel="upsell",
            title=title,
            company_name="ignored: the client's",
            source="existing client",
            manager=manager,
            amount=Decimal("300.00"),
        )
        create_upsell(self.store, self.rules, previous, command, self.ctx())
        self.deals.append(deal_id)
        return deal_id

    def send_deal(self, deal_id: UUID, command: deal.DealCommand) -> CommandResult:
        return handle_deal_command(self.store, self.rules, deal_id, command, self.ctx())

    def state(self, deal_id: UUID) -> deal.Deal:
        found = deal.fold([r.event for r in self.store.load(deal_id)])
        assert found is not None
        return found

    def move(self, deal_id: UUID, stage: str) -> CommandResult:
        return self.send_deal(deal_id, deal.MoveDealToStage(stage))

    def open_estimate(self, deal_id: UUID) -> int:
        """Move the deal to ``estimate``; the round its stage change opened."""
        self.move(deal_id, "estimate")
        estimate = self.state(deal_id).estimate
        assert estimate is not None
        return estimate.round

    def complete_estimate(self, deal_id: UUID, round_no: int) -> CommandResult:
        return self.send_deal(deal_id, deal.CompleteEstimate(round_no))

    def return_from_estimate(
        self, deal_id: UUID, round_no: int, request_id: UUID, reason: str
    ) -> CommandResult:
        return self.send_deal(deal_id, deal.ReturnFromEstimate(round_no, request_id, reason))

    def proposal(self, deal_id: UUID, *lines: tuple[str, str]) -> CommandResult:
        services = tuple(deal.ServiceLine(name, Decimal(price)) for name, price in lines)
        return self.send_deal(deal_id, deal.RecordProposal(services))

    def contract(self, deal_id: UUID, number: str) -> CommandResult:
        return self.send_deal(deal_id, deal.RecordContract(number, date(2026, 3, 20)))

    def invoice(self, deal_id: UUID, number: str, amount: str) -> CommandResult:
        return self.send_deal(deal_id, deal.IssueInvoice(number, Decimal(amount), "main"))

    def close(self, deal_id: UUID, outcome: str, reason: str | None = None) -> CommandResult:
        return self.send_deal(deal_id, deal.CloseDeal(outcome, reason))

    def start_project(self, deal_id: UUID) -> CommandResult:
        """What the project creation does for a won deal (the deal records its project)."""
        return create_project_for_deal(self.store, self.rules, deal_id, self.ctx())

    # hand-off requests

    def request(
        self, deal_id: UUID, department: str, round_no: int | None = None, notes: str = ""
    ) -> UUID:
        request_id = (
            uuid4() if round_no is None else request_id_for_round(deal_id, round_no, department)
        )
        command = handoff.CreateHandoff(request_id, deal_id, department, round_no, notes or None)
        create_handoff(self.store, self.rules, command, self.ctx())
        self.requests.append(request_id)
        return request_id

    def send_handoff(
        self, request_id: UUID, command: handoff.HandoffCommand, actor: str | None = None
    ) -> CommandResult:
        return handle_handoff_command(self.store, self.rules, request_id, command, self.ctx(actor))

    def take(self, request_id: UUID, assignee: str) -> CommandResult:
        return self.send_handoff(request_id, handoff.TakeHandoff(assignee), actor=assignee)

    def estimate(
        self,
        request_id: UUID,
        cost: str,
        contractor_id: UUID | None = None,
        service: str = "truck",
        rating: int | None = 4,
        lead_time_days: int = 3,
    ) -> CommandResult:
        command = handoff.RecordLogisticsEstimate(
            service=service,
            cost=Decimal(cost),
            lead_time_days=lead_time_days,
            contractor_id=contractor_id,
            own_equipment=contractor_id is None,
            notes="by road",
            rating=rating if contractor_id is not None else None,
        )
        return self.send_handoff(request_id, command)

    def plan(self, request_id: UUID, hours: str) -> CommandResult:
        return self.send_handoff(
            request_id, handoff.RecordEngineeringPlan(Decimal(hours), "two shifts")
        )

    def move_request(self, request_id: UUID, stage: str) -> CommandResult:
        return self.send_handoff(request_id, handoff.MoveHandoffToStage(stage))

    def reject(self, request_id: UUID, reason: str) -> CommandResult:
        return self.send_handoff(request_id, handoff.RejectHandoff(reason))

    def remind_request(self, request_id: UUID, recipient: str = "logistics") -> CommandResult:
        result = self.send_handoff(
            request_id, handoff.RemindHandoffNotTaken(recipient), "deadlines"
        )
        self.alerts.append(result.position)
        return result

    def escalate_request(
        self, request_id: UUID, recipient: str = "logistics.head"
    ) -> CommandResult:
        result = self.send_handoff(
            request_id, handoff.EscalateHandoffNotTaken(recipient), "deadlines"
        )
        self.alerts.append(result.position)
        return result

    def request_state(self, request_id: UUID) -> handoff.HandoffRequest:
        found = handoff.fold([r.event for r in self.store.load(request_id)], self.rules)
        assert found is not None
        return found

    # contractors

    def contractor(self, name: str, *services: str) -> UUID:
        contractor_id = uuid4()
        command = contractor.RegisterContractor(contractor_id, name, services, "+1 555 0100")
        register_contractor(self.store, command, self.ctx())
        self.contractors.append(contractor_id)
        return contractor_id

    def update_contractor(self, contractor_id: UUID, **changes: Any) -> CommandResult:
        command = contractor.UpdateContractor(changes)
        return update_contractor(self.store, contractor_id, command, self.ctx())

    # client assignments and lead reminders

    def assign(self, company_id: str, direction: str, manager: str) -> CommandResult:
        command = limits.AssignClient(company_id, direction, manager, "met at the fair")
        result = assign_client(self.store, self.rules, command, self.ctx())
        assignment_id = limits.assignment_id_for(company_id, direction)
        if assignment_id not in self.assignments:
            self.assignments.append(assignment_id)
        events = self.store.load(assignment_id)
        asked = (limits.ClientAssignmentApprovalRequested, limits.ClientAssignmentTakeoverRequested)
        if isinstance(events[-1].event, asked):
            self.alerts.append(result.position)
        return result

    def decide(
        self, assignment_id: UUID, approve: bool, actor: str = "head.of.sales"
    ) -> CommandResult:
        command = limits.DecideAssignment(approve, None if approve else "enough clients")
        return decide_assignment(self.store, self.rules, assignment_id, command, self.ctx(actor))

    def remind_lead(self, lead_id: UUID, due: date, recipient: str) -> CommandResult:
        result = self.leads.send(lead_id, lead.RemindUnansweredLead(due, recipient))
        self.alerts.append(result.position)
        return result

    def escalate_lead(self, lead_id: UUID, due: date, recipient: str) -> CommandResult:
        result = self.leads.send(lead_id, lead.EscalateUnansweredLead(due, recipient))
        self.alerts.append(result.position)
        return result


# --- random but valid pipelines ---------------------------------------------------------

Script = Iterator[None]


def _estimate_won(d: PipelineDriver, rng: random.Random, carriers: list[UUID]) -> Script:
    deal_id = d.deal_from_lead(
        "transport", manager=rng.choice(["boris", "vera"]), company_id=f"c-{rng.randint(1, 3)}"
    )
    yield
    round_no = d.open_estimate(deal_id)
    yield
    request_id = d.request(deal_id, "logistics", round_no)
    yield
    if rng.random() < 0.5:
        d.remind_request(request_id)
        yield
        if rng.random() < 0.5:
            d.escalate_request(request_id)
            yield
    d.take(request_id, rng.choice(["lena", "oleg"]))
    yield
    carrier = rng.choice([*carriers, None])
    d.estimate(request_id, f"{rng.randint(100, 900)}.50", carrier, rating=rng.randint(1, 5))
    yield
    if rng.random() < 0.3:  # re-estimated: back to work, then ready again
        d.move_request(request_id, "approval")
        yield
        d.move_request(request_id, "in_work")
        yield
        d.estimate(request_id, f"{rng.randint(100, 900)}.00", carrier, rating=rng.randint(1, 5))
        yield
    d.move_request(request_id, "approval")
    yield
    d.complete_estimate(deal_id, round_no)
    yield
    d.proposal(deal_id, ("transport", f"{rng.randint(1000, 5000)}.00"), ("loading", "150.25"))
    yield
    d.move_request(request_id, "done")
    yield
    d.contract(deal_id, f"K-{rng.randint(1, 999)}")
    yield
    d.invoice(deal_id, "I-1", "500.00")
    yield
    if rng.random() < 0.5:
        d.invoice(deal_id, "I-2", "99.99")
        yield
    d.close(deal_id, "won")
    yield
    d.start_project(deal_id)
    yield


def _estimate_rejected(d: PipelineDriver, rng: random.Random) -> Script:
    deal_id = d.deal_from_lead("transport", manager="vera", company_id="c-9")
    yield
    round_no = d.open_estimate(deal_id)
    yield
    request_id = d.request(deal_id, "logistics", round_no)
    yield
    if rng.random() < 0.5:
        d.take(request_id, "oleg")
        yield
    d.reject(request_id, "no trucks that week")
    yield
    d.return_from_estimate(deal_id, round_no, request_id, "no trucks that week")
    yield
    d.close(deal_id, "lost", "the client went elsewhere")
    yield


def _turnkey(d: PipelineDriver, rng: random.Random) -> Script:
    deal_id = d.deal_from_lead("turnkey", manager="boris", title="Plant relocation")
    yield
    round_no = d.open_estimate(deal_id)
    yield
    logistics = d.request(deal_id, "logistics", round_no)
    yield
    d.take(logistics, "lena")
    yield
    d.estimate(logistics, "1200.00")  # own equipment
    yield
    d.move_request(logistics, "done")
    yield
    engineering = d.request(deal_id, "engineering", round_no)
    yield
    d.take(engineering, "igor")
    yield
    d.plan(engineering, str(rng.choice(["12.5", "40"])))
    yield
    d.move_request(engineering, "approval")
    yield
    d.complete_estimate(deal_id, round_no)
    yield
    extra = d.request(deal_id, "engineering", notes="site visit")
    yield
    if rng.random() < 0.5:
        d.remind_request(extra, "engineering")
        yield
    d.take(extra, "igor")
    yield
    d.move(deal_id, "proposal")
    yield
    upsell = d.upsell(deal_id)
    yield
    d.move(upsell, "proposal")
    yield
    d.close(upsell, "lost", "no budget")
    yield


def _assignments(d: PipelineDriver, rng: random.Random) -> Script:
    for n in range(RULES.monthly_new_client_cap + 1):
        d.assign(f"client-{n}", "transport", "boris")
        yield
    pending = limits.assignment_id_for(f"client-{RULES.monthly_new_client_cap}", "transport")
    d.decide(pending, rng.random() < 0.5)
    yield
    d.assign("client-0", "transport", "vera")  # boris holds it: a takeover, approved
    yield
    d.decide(limits.assignment_id_for("client-0", "transport"), True)
    yield


def _lead_alerts(d: PipelineDriver, rng: random.Random) -> Script:
    due = date(2026, 3, 1)
    lead_id = d.lead(answer_due=due, manager="boris")
    yield
    d.remind_lead(lead_id, due, "boris")
    yield
    if rng.random() < 0.7:
        d.escalate_lead(lead_id, due, "head.of.sales")
        yield


def build_pipeline(
    store: EventStore,
    seed: int,
    *,
    between: Callable[[], None] | None = None,
    complete: bool = False,
) -> PipelineDriver:
    """A random interleaving of the pipeline scripts; each may stop early unless
    ``complete``. ``between`` runs after every command (e.g. a projector page)."""
    rng = random.Random(seed)
    clock = ManualClock(T0)
    driver = PipelineDriver(store, clock)
    carriers = [
        driver.contractor("Fast Trucks", "truck", "crane"),
        driver.contractor("Rail Partners", "truck", "rail"),
    ]
    driver.update_contractor(carriers[1], contacts="rail@example.com")
    scripts: list[Script] = [
        _estimate_won(driver, rng, carriers),
        _estimate_won(driver, rng, carriers),
        _estimate_rejected(driver, rng),
        _turnkey(driver, rng),
        _assignments(driver, rng),
        _lead_alerts(driver, rng),
    ]
    stops = [None if complete or rng.random() < 0.6 else rng.randint(1, 12) for _ in scripts]
    done = [0] * len(scripts)
    while scripts:
        i = rng.randrange(len(scripts))
        clock.advance(minutes=rng.randint(1, 180))
        try:
            next(scripts[i])
        except StopIteration:
            del scripts[i], stops[i], done[i]
            continue
        done[i] += 1
        if between is not None:
            between()
        limit = stops[i]
        if limit is not None and done[i] >= limit:
            del scripts[i], stops[i], done[i]
    return driver


# --- snapshots --------------------------------------------------------------------------

Snapshot = tuple[dict[str, list[tuple[Any, ...]]], int]


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


def snapshot(db: ReadModelDatabase) -> Snapshot:
    cursor = db.cursor()
    try:
        tables = {
            table: cursor.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            for table, key in TABLE_ORDER.items()
        }
        return tables, db.position(POSITION_NAME, cursor)
    finally:
        cursor.close()


def rebuilt(store: EventStore, path: Path | str) -> Snapshot:
    db = ReadModelDatabase(path)
    try:
        rebuild(store, db, projections())
        return snapshot(db)
    finally:
        db.close()


def assert_same(actual: Snapshot, expected: Snapshot) -> None:
    tables, position = actual
    expected_tables, expected_position = expected
    for table in TABLE_ORDER:
        assert len(tables[table]) == len(expected_tables[table]), table
        for row, row_expected in zip(tables[table], expected_tables[table], strict=True):
            assert row == row_expected, table
    assert position == expected_position


def rows(db: ReadModelDatabase, table: str, key: str) -> dict[str, dict[str, Any]]:
    cursor = db.cursor()
    try:
        result = cursor.execute(f"SELECT * FROM {table}")
        names = [c[0] for c in result.description]
        return {
            str(row[names.index(key)]): dict(zip(names, row, strict=True))
            for row in result.fetchall()
        }
    finally:
        cursor.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    store = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    yield store
    store.close()


# --- (a) the tables agree with the aggregates -------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _deal_fields(state: deal.Deal) -> dict[str, Any]:
    result = state.estimate_result
    open_views = [h for h in state.handoffs if h.status not in ("done", "rejected")]
    return {
        "deal_id": str(state.deal_id),
        "funnel": state.funnel,
        "stage": state.stage,
        "status": state.status.value,
        "title": state.title,
        "company_name": state.company_name,
        "company_id": state.company_id,
        "source": state.source,
        "manager": state.manager,
        "description": state.description,
        "amount": state.amount,
        "lead_id": None if state.lead_id is None else str(state.lead_id),
        "previous_deal_id": (
            None if state.previous_deal_id is None else str(state.previous_deal_id)
        ),
        "project_id": None if state.project_id is None else str(state.project_id),
        "proposal_total": None if state.proposal is None else state.proposal.total,
        "proposal_services": None if state.proposal is None else len(state.proposal.services),
        "proposal_service": (
            state.proposal.services[0].name
            if state.proposal is not None and len(state.proposal.services) == 1
            else None
        ),
        "paid": state.paid,
        "paid_on": state.paid_on,
        "proposal_calculation_id": (
            None
            if state.proposal is None or state.proposal.calculation_id is None
            else str(state.proposal.calculation_id)
        ),
        "proposal_at": None if state.proposal is None else state.proposal.recorded_at,
        "contract_number": None if state.contract is None else state.contract.number,
        "contract_signed_on": None if state.contract is None else state.contract.signed_on,
        # counted invoices only (not prepayments, or approved ones); pending ones apart
        "invoiced_total": sum((i.amount for i in state.invoices if i.counted), Decimal("0.00")),
        "invoices": sum(1 for i in state.invoices if i.counted),
        "invoices_pending": sum(1 for i in state.invoices if i.approval == "pending"),
        "estimate_round": None if state.estimate is None else state.estimate.round,
        "estimate_price": None if result is None else result.price,
        "estimated_by": None if result is None else list(result.estimated_by),
        "estimate_seconds": None if result is None else result.took_seconds,
        "estimate_rejection": state.estimate_rejection,
        "request_ids": [str(h.request_id) for h in state.handoffs],
        "open_request_ids": sorted(str(h.request_id) for h in open_views),
        "requests": len(state.handoffs),
        "open_requests": len(open_views),
        "close_reason": state.close_reason,
        "created_at": state.created_at,
        "created_by": state.created_by,
        "updated_at": state.updated_at,
        "stage_entered_at": state.stage_entered_at,
        "closed_at": state.closed_at,
        "version": state.version,
    }


def _handoff_fields(state: handoff.HandoffRequest) -> dict[str, Any]:
    department = RULES.departments[state.department]
    logistics = state.logistics
    plan = state.engineering
    calculation = state.calculation

    def seconds(end: datetime | None) -> float | None:
        return None if end is None else (end - state.created_at).total_seconds()

    return {
        "request_id": str(state.request_id),
        "deal_id": str(state.deal_id),
        "department": state.department,
        "stage": state.stage,
        "status": state.status(department),
        "round": state.round,
        "notes": state.notes,
        "assignee": state.assignee,
        "created_at": state.created_at,
        "created_by": state.created_by,
        "taken_at": state.taken_at,
        "ready_at": state.ready_at,
        "take_seconds": seconds(state.taken_at),
        "estimate_seconds": seconds(state.ready_at),
        "price": state.price,
        "service": None if logistics is None else logistics.service,
        "contractor_id": (
            None
            if logistics is None or logistics.contractor_id is None
            else str(logistics.contractor_id)
        ),
        "contractor_name": None if logistics is None else logistics.contractor_name,
        "own_equipment": None if logistics is None else logistics.contractor_id is None,
        "lead_time_days": None if logistics is None else logistics.lead_time_days,
        "rating": None if logistics is None else logistics.rating,
        "estimate_notes": None if logistics is None else logistics.notes,
        "plan_hours": None if plan is None else plan.hours,
        "plan_notes": None if plan is None else plan.notes,
        "calculation_services": None if calculation is None else len(calculation.services),
        "calculation_hours": (
            None
            if calculation is None
            else sum((s.hours or Decimal("0.00") for s in calculation.services), Decimal("0.00"))
        ),
        "rejection_reason": state.rejection_reason,
        "cancellation_reason": state.cancellation_reason,
        "reminded": state.reminded,
        "escalated": state.escalated,
        "stage_entered_at": state.stage_entered_at,
        "updated_at": state.updated_at,
        "version": state.version,
    }


def _comparable(row: dict[str, Any], drop: tuple[str, ...] = ("last_position",)) -> dict[str, Any]:
    fields = {k: v for k, v in row.items() if k not in drop}
    for k, v in fields.items():
        if isinstance(v, datetime):
            fields[k] = _utc(v)
    if "open_request_ids" in fields:
        fields["open_request_ids"] = sorted(fields["open_request_ids"])
    return fields


def assert_tables_agree_with_the_aggregates(
    store: EventStore, db: ReadModelDatabase, driver: PipelineDriver
) -> None:
    deals = rows(db, "deals", "deal_id")
    requests = rows(db, "handoffs", "request_id")
    assert sorted(deals) == sorted(str(d) for d in driver.deals)
    assert sorted(requests) == sorted(str(r) for r in driver.requests)
    for deal_id in driver.deals:
        recorded = store.load(deal_id)
        state = deal.fold([r.event for r in recorded])
        assert state is not None
        row = deals[str(deal_id)]
        assert _comparable(row) == _deal_fields(state), deal_id
        assert row["last_position"] == recorded[-1].position
        # the deal's count of open requests agrees with the requests' own rows
        open_here = [
            r
            for r in requests.values()
            if r["deal_id"] == str(deal_id) and r["status"] not in ("done", "rejected")
        ]
        assert row["open_requests"] == len(open_here)
    for request_id in driver.requests:
        recorded = store.load(request_id)
        request = handoff.fold([r.event for r in recorded], RULES)
        assert request is not None
        row = requests[str(request_id)]
        assert _comparable(row) == _handoff_fields(request), request_id
        assert row["last_position"] == recorded[-1].position

    contractors = rows(db, "contractors", "contractor_id")
    quotes = rows(db, "contractor_quotes", "position")
    assert sorted(contractors) == sorted(str(c) for c in driver.contractors)
    for contractor_id in driver.contractors:
        recorded = store.load(contractor_id)
        found = contractor.fold([r.event for r in recorded])
        assert found is not None
        recorded_quotes = [
            r for r in recorded if isinstance(r.event, contractor.ContractorQuoteRecorded)
        ]
        row = contractors[str(contractor_id)]
        assert (row["name"], row["services"], row["contacts"], row["notes"]) == (
            found.name,
            list(found.services),
            found.contacts,
            found.notes,
        )
        assert row["quotes"] == found.quotes == len(recorded_quotes)
        assert _utc(row["last_used_at"]) == found.last_used_at
        assert _utc(row["created_at"]) == found.created_at
        assert _utc(row["updated_at"]) == found.updated_at
        assert row["version"] == found.version
        ratings = [r.event.rating for r in recorded_quotes]  # type: ignore[attr-defined]
        if ratings:
            expected = (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"))
            assert row["average_rating"] == expected
        else:
            assert row["average_rating"] is None
        for r in recorded_quotes:
            event = r.event
            assert isinstance(event, contractor.ContractorQuoteRecorded)
            quote = quotes[str(r.position)]
            assert quote["contractor_id"] == str(contractor_id)
            assert quote["request_id"] == str(event.request_id)
            assert quote["deal_id"] == str(event.deal_id)
            assert (quote["service"], quote["price"], quote["rating"]) == (
                event.service,
                event.price,
                event.rating,
            )
            # every quote came with the estimate that named the contractor
            assert requests[str(event.request_id)]["contractor_id"] == str(contractor_id)
    assert len(quotes) == sum(c["quotes"] for c in contractors.values())

    assignments = rows(db, "client_assignments", "assignment_id")
    assert sorted(assignments) == sorted(str(a) for a in driver.assignments)
    for assignment_id in driver.assignments:
        recorded = store.load(assignment_id)
        folded = limits.fold_assignment([r.event for r in recorded])
        assert folded is not None
        row = assignments[str(assignment_id)]
        assert {
            k: row[k]
            for k in (
                "company_id",
                "direction",
                "manager",
                "status",
                "requested_manager",
                "requested_by",
                "month",
                "decided_by",
                "comment",
                "version",
                "pending_because",
            )
        } == {
            "company_id": folded.company_id,
            "direction": folded.direction,
            "manager": folded.manager,
            "status": folded.status,
            "requested_manager": folded.requested_manager,
            "requested_by": folded.requested_by,
            "month": folded.month,
            "decided_by": folded.decided_by,
            "comment": folded.comment,
            "version": folded.version,
            "pending_because": folded.pending_because,
        }
        assert _utc(row["updated_at"]) == folded.updated_at

    alerts = rows(db, "alerts", "alert_id")
    assert sorted(int(a) for a in alerts) == sorted(driver.alerts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_row_agrees_with_the_state_the_aggregates_fold(
    sqlite_store: EventStore, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    db = ReadModelDatabase(tmp_path / "read_models.duckdb")
    try:
        projector = Projector(sqlite_store, db, projections(), page_size=rng.randint(1, 9))

        def between() -> None:
            if rng.random() < 0.3:
                projector.run_once()

        driver = build_pipeline(sqlite_store, seed, between=between, complete=True)
        Projector(sqlite_store, db, projections(), page_size=rng.randint(5, 50)).catch_up()
        assert_tables_agree_with_the_aggregates(sqlite_store, db, driver)
    finally:
        db.close()


def test_a_transport_deal_through_estimate_to_won(sqlite_store: EventStore, tmp_path: Path) -> None:
    """One deal by hand, each figure computed here."""
    clock = ManualClock(T0)
    d = PipelineDriver(sqlite_store, clock)
    carrier = d.contractor("Fast Trucks", "truck", "crane")
    deal_id = d.deal_from_lead("transport", manager="vera", company_id="acme", amount=Decimal(50))
    clock.advance(hours=1)
    round_no = d.open_estimate(deal_id)
    request_id = d.request(deal_id, "logistics", round_no)
    clock.advance(hours=5)
    d.remind_request(request_id, "logistics")
    clock.advance(hours=1)
    d.take(request_id, "lena")  # 6 h after the request
    clock.advance(hours=2)
    d.estimate(request_id, "800.00", carrier, service="crane", rating=5, lead_time_days=4)
    d.move_request(request_id, "approval")  # ready 8 h after the request
    d.complete_estimate(deal_id, round_no)
    second = d.request(deal_id, "engineering", notes="check the ramp")

    db = ReadModelDatabase(tmp_path / "rm.duckdb")
    try:
        Projector(sqlite_store, db, projections(), page_size=3).catch_up()
        row = rows(db, "deals", "deal_id")[str(deal_id)]
        assert (row["stage"], row["status"], row["estimate_round"]) == (
            "estimate_ready",
            "open",
            None,
        )
        assert row["estimate_price"] == Decimal("800.00")
        assert row["estimated_by"] == ["lena"]
        assert row["estimate_seconds"] == 8 * 3600
        assert (row["requests"], row["open_requests"]) == (2, 2)  # approval is not done
        assert row["amount"] == Decimal("50.00")
        request = rows(db, "handoffs", "request_id")[str(request_id)]
        assert (request["status"], request["assignee"], request["price"]) == (
            "ready",
            "lena",
            Decimal("800.00"),
        )
        assert (request["take_seconds"], request["estimate_seconds"]) == (6 * 3600, 8 * 3600)
        assert (request["contractor_name"], request["own_equipment"]) == ("Fast Trucks", False)
        assert request["reminded"] is True
        assert request["escalated"] is False
        [quote] = rows(db, "contractor_quotes", "position").values()
        assert (quote["service"], quote["price"], quote["rating"]) == (
            "crane",
            Decimal("800.00"),
            5,
        )
        [alert] = rows(db, "alerts", "alert_id").values()
        assert (alert["kind"], alert["subject_type"], alert["subject_id"]) == (
            "reminder",
            "handoff",
            str(request_id),
        )
        assert alert["recipient"] == "logistics"

        d.move_request(request_id, "done")
        d.reject(second, "not our job")
        d.proposal(deal_id, ("crane", "1000.00"), ("transport", "234.56"))
        d.contract(deal_id, "K-7")
        d.invoice(deal_id, "I-1", "600.00")
        d.invoice(deal_id, "I-2", "634.56")
        clock.advance(days=1)
        d.close(deal_id, "won")
        Projector(sqlite_store, db, projections(), page_size=2).catch_up()
        row = rows(db, "deals", "deal_id")[str(deal_id)]
        assert (row["status"], row["open_requests"], row["requests"]) == ("won", 0, 2)
        assert (row["amount"], row["proposal_total"]) == (Decimal("1234.56"), Decimal("1234.56"))
        assert (row["invoices"], row["invoiced_total"]) == (2, Decimal("1234.56"))
        assert row["contract_number"] == "K-7"
        assert _utc(row["closed_at"]) == clock.now
        statuses = {k: r["status"] for k, r in rows(db, "handoffs", "request_id").items()}
        assert statuses == {str(request_id): "done", str(second): "rejected"}
        assert_tables_agree_with_the_aggregates(sqlite_store, db, d)
    finally:
        db.close()


def test_client_assignment_over_the_cap_asks_a_head_then_is_declined(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    d = PipelineDriver(sqlite_store, ManualClock(T0))
    for n in range(RULES.monthly_new_client_cap):
        d.assign(f"client-{n}", "transport", "boris")
    d.assign("client-x", "transport", "boris")
    pending = limits.assignment_id_for("client-x", "transport")
    db = ReadModelDatabase(tmp_path / "rm.duckdb")
    try:
        Projector(sqlite_store, db, projections()).catch_up()
        row = rows(db, "client_assignments", "assignment_id")[str(pending)]
        assert (row["status"], row["manager"], row["requested_manager"], row["approver"]) == (
            "pending_approval",
            None,
            "boris",
            "head.of.sales",
        )
        [alert] = rows(db, "alerts", "alert_id").values()
        assert (alert["kind"], alert["recipient"], alert["subject_id"]) == (
            "approval_request",
            "head.of.sales",
            str(pending),
        )
        assert "boris" in alert["detail"]
        assert (
            f"{RULES.monthly_new_client_cap} of {RULES.monthly_new_client_cap}" in (alert["detail"])
        )

        d.decide(pending, approve=False)
        Projector(sqlite_store, db, projections()).catch_up()
        row = rows(db, "client_assignments", "assignment_id")[str(pending)]
        assert (row["status"], row["decided_by"], row["comment"]) == (
            "declined",
            "head.of.sales",
            "enough clients",
        )
        assert_tables_agree_with_the_aggregates(sqlite_store, db, d)
    finally:
        db.close()


def test_lead_answer_reminders_and_escalations_are_alerts(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    d = PipelineDriver(sqlite_store, ManualClock(T0))
    due = date(2026, 3, 1)
    lead_id = d.lead(answer_due=due, manager="boris")
    reminder = d.remind_lead(lead_id, due, "boris")
    escalation = d.escalate_lead(lead_id, due, "head.of.sales")
    db = ReadModelDatabase(tmp_path / "rm.duckdb")
    try:
        Projector(sqlite_store, db, projections(), page_size=1).catch_up()
        alerts = rows(db, "alerts", "alert_id")
        first, second = alerts[str(reminder.position)], alerts[str(escalation.position)]
        assert (first["kind"], first["recipient"], first["due"]) == ("reminder", "boris", due)
        assert (second["kind"], second["recipient"], second["due"]) == (
            "escalation",
            "head.of.sales",
            due,
        )
        assert first["subject_type"] == second["subject_type"] == "lead"
        assert first["subject_id"] == second["subject_id"] == str(lead_id)
        assert "boris" in second["detail"]
        # the lead's own read model folds the same events without a change of its own
        cursor = db.cursor()
        version = cursor.execute(
            "SELECT version FROM leads WHERE lead_id = ?", [str(lead_id)]
        ).fetchone()
        cursor.close()
        assert version == (3,)
    finally:
        db.close()


# --- (b) random page sizes give what a rebuild gives ------------------------------------


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 10_000), pages=st.integers(0, 10_000), final=st.integers(4, 400))
def test_projecting_in_random_pages_equals_a_rebuild(seed: int, pages: int, final: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        page_rng = random.Random(pages)
        try:

            def between() -> None:
                # now and then, a page of a random size by a fresh projector resuming
                # from the stored position
                if page_rng.random() < 0.2:
                    size = page_rng.randint(1, 12)
                    Projector(store, db, projections(), page_size=size).run_once()

            build_pipeline(store, seed, between=between)
            Projector(store, db, projections(), page_size=final).catch_up()
            incremental = snapshot(db)
            assert incremental[1] == store.last_position()
            assert_same(incremental, rebuilt(store, f"{tmp}/rebuilt.duckdb"))
        finally:
            db.close()
            store.close()


# --- (c) a fault mid-page ---------------------------------------------------------------


class InjectedFault(Exception):
    pass


@pytest.mark.parametrize("fault_call", [1, 3, 0], ids=["before", "mid-page", "after-all"])
def test_a_fault_mid_page_leaves_the_previous_page_and_a_restart_converges(
    sqlite_store: EventStore, tmp_path: Path, fault_call: int
) -> None:
    build_pipeline(sqlite_store, 7, complete=True)
    total = sqlite_store.last_position()
    page_size = 30
    assert total > 3 * page_size
    path = tmp_path / "read_models.duckdb"
    db = ReadModelDatabase(path)
    try:
        projector = Projector(sqlite_store, db, projections(), page_size=page_size)
        projector.run_once()
        before = snapshot(db)
        assert before[1] == page_size
        assert before[0]["deals"]  # the first page made deals

        calls: list[int] = []
        # one call before each projection's fold, one after the last (0: that one)
        failing = fault_call or len(projections()) + 1

        def hook(folded: int) -> None:
            calls.append(folded)
            if len(calls) == failing:
                raise InjectedFault(f"fault after folding {folded} events")

        projector.fault_hook = hook
        with pytest.raises(InjectedFault):
            projector.run_once()
        if failing > 1:
            assert calls[-1] > 0  # some of the page's events were folded, then the fault
        assert projector.position == page_size
        assert_same(snapshot(db), before)

        # a fresh process on the same file goes on from the committed page
        db.close()
        db = ReadModelDatabase(path)
        fresh = Projector(sqlite_store, db, projections(), page_size=17)
        assert fresh.position == page_size
        fresh.catch_up()
        assert_same(snapshot(db), rebuilt(sqlite_store, tmp_path / "rebuilt.duckdb"))
    finally:
        db.close()


# --- fingerprints -----------------------------------------------------------------------


def test_fingerprints_follow_the_department_configuration() -> None:
    base = {p.name: p.fingerprint for p in deal_projections(RULES)}
    assert base == {p.name: p.fingerprint for p in deal_projections(RULES)}
    assert len(set(base.values())) == len(base)
    logistics = RULES.departments["logistics"]
    changed = Rules(
        deal_funnels=RULES.deal_funnels,
        departments={
            **RULES.departments,
            "logistics": type(logistics)(
                **{**logistics.__dict__, "ready_stages": frozenset({"done"})}
            ),
        },
        organisations=RULES.organisations,
    )
    after = {p.name: p.fingerprint for p in deal_projections(changed)}
    assert after["handoffs"] != base["handoffs"]
    assert {k: v for k, v in after.items() if k != "handoffs"} == {
        k: v for k, v in base.items() if k != "handoffs"
    }
    names = [
        p.name
        for p in (
            DealProjection(),
            HandoffProjection(RULES),
            ContractorProjection(),
            ClientAssignmentProjection(),
            AlertProjection(),
        )
    ]
    assert names == [p.name for p in deal_projections(RULES)]
