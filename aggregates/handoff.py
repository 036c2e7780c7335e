"""The hand-off request: a child request from a deal to another department.

It lives in its department's funnel (``new → in_work → approval → done``, or
``rejected`` with a reason, by default). Someone from the department takes it (who and
when are recorded), works it and records the outcome: for logistics the contractor from
the directory or the company's own equipment, the cost, the lead time and notes; for
engineering a plan (hours, notes); for the experts' calculation the priced services
(name, optional quantity and unit, price, optional hours; the total is the sum of each
service's price times its quantity). The outcome is required before the request reaches a
ready stage; done and rejected end it, and so does a cancellation when the deal closes or
leaves the stage that asked for the request. A request not taken in time gets a reminder to
its department, then an escalation to the department's head.

Once the job a contractor's estimate priced is done, the logistician records its
**delivery** (:func:`deliver`): the actual completion date and a rating from 1 to 5 of
the work delivered, once per job. The job is contracted when the parent deal is won, so the
planned completion is the day the deal was won plus the estimate's lead time.

Every event of a request is written together with ``DealHandoffNoted`` on its parent
deal, in one atomic append, so the deal's view of its requests always equals theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.deal import Deal, DealStatus, HandoffView
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import Department, Rules

MAX_PLAN_HOURS = Decimal(100_000)
MAX_LEAD_TIME_DAYS = 3650
MAX_CALCULATION_SERVICES = 200
MAX_QUANTITY = Decimal(1_000_000)


@dataclass(frozen=True)
class LogisticsEstimate:
    contractor_id: UUID | None
    """None when the company's own equipment does the job."""
    contractor_name: str | None
    service: str
    cost: Decimal
    lead_time_days: int
    notes: str | None
    rating: int | None
    """The contractor's quality rating for this job, 1 to 5."""


@dataclass(frozen=True)
class Delivery:
    """The contracted job as delivered: planned vs actual completion and its rating."""

    contracted_on: date
    """The day the parent deal was won: the job was ordered then."""
    planned_on: date
    """``contracted_on`` plus the estimate's lead time."""
    completed_on: date
    days_late: int
    """Days after ``planned_on`` (0 when on time)."""
    rating: int
    """The quality of the work delivered, 1 to 5."""
    notes: str | None
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class EngineeringPlan:
    hours: Decimal
    notes: str | None


@dataclass(frozen=True)
class CalculatedService:
    """One service the experts priced: ``price`` is per unit when a quantity is given."""

    name: str
    quantity: Decimal | None
    unit: str | None
    price: Decimal
    hours: Decimal | None
    amount: Decimal
    """``price`` times ``quantity`` (or ``price`` when no quantity is given), to the cent."""


@dataclass(frozen=True)
class Calculation:
    services: tuple[CalculatedService, ...]
    total: Decimal
    notes: str | None


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffRequest:
    request_id: UUID
    version: int
    deal_id: UUID
    department: str
    stage: str
    round: int | None
    """The deal's estimate round that asked for it; None for a request sent by hand."""
    notes: str | None
    assignee: str | None
    taken_at: datetime | None
    logistics: LogisticsEstimate | None
    engineering: EngineeringPlan | None
    ready_at: datetime | None
    rejection_reason: str | None
    reminded: bool
    escalated: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_entered_at: datetime
    cancellation_reason: str | None = None
    """Set when the request lost its purpose (the deal closed, or left the estimate)."""
    delivery: Delivery | None = None
    """The contracted job as delivered (a contractor's estimate, its deal won)."""
    calculation: Calculation | None = None
    """The experts' priced services (a department whose outcome is 'calculation')."""

    @property
    def price(self) -> Decimal | None:
        if self.calculation is not None:
            return self.calculation.total
        return None if self.logistics is None else self.logistics.cost

    def status(self, department: Department) -> str:
        if self.cancellation_reason is not None:
            return "cancelled"
        if self.stage == department.rejected_stage:
            return "rejected"
        if self.stage in department.final_stages:
            return "done"
        if department.is_ready(self.stage):
            return "ready"
        return "open" if self.assignee is None else "in_work"

    def view(self, department: Department) -> HandoffView:
        """The deal's view of this request."""
        return HandoffView(
            request_id=self.request_id,
            department=self.department,
            stage=self.stage,
            status=self.status(department),
            assignee=self.assignee,
            price=self.price,
            round=self.round,
            ready_at=self.ready_at,
            updated_at=self.updated_at,
        )


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateHandoff:
    request_id: UUID
    deal_id: UUID
    department: str
    round: int | None = None
    notes: str | None = None


@dataclass(frozen=True)
class TakeHandoff:
    assignee: str


@dataclass(frozen=True)
class RecordLogisticsEstimate:
    service: str
    cost: Decimal
    lead_time_days: int
    contractor_id: UUID | None = None
    contractor_name: str | None = None
    """Filled by the handler from the directory; the decider checks it is there."""
    own_equipment: bool = False
    notes: str | None = None
    rating: int | None = None


@dataclass(frozen=True)
class RecordEngineeringPlan:
    hours: Decimal
    notes: str | None = None


@dataclass(frozen=True)
class RecordDelivery:
    """The contracted job is done: when (a day), how well (1 to 5), notes."""

    completed_on: date | None
    rating: int | None
    notes: str | None = None


@dataclass(frozen=True)
class CalculatedServiceLine:
    name: str
    price: Decimal
    quantity: Decimal | None = None
    unit: str | None = None
    hours: Decimal | None = None


@dataclass(frozen=True)
class RecordCalculation:
    """The experts price the services of a request for calculation."""

    services: tuple[CalculatedServiceLine, ...]
    notes: str | None = None


@dataclass(frozen=True)
class MoveHandoffToStage:
    stage: str


@dataclass(frozen=True)
class RejectHandoff:
    reason: str


@dataclass(frozen=True)
class CancelHandoff:
    """The request lost its purpose: its deal closed, or left the stage that asked for it."""

    reason: str


@dataclass(frozen=True)
class RemindHandoffNotTaken:
    recipient: str


@dataclass(frozen=True)
class EscalateHandoffNotTaken:
    recipient: str


HandoffCommand = (
    TakeHandoff
    | RecordLogisticsEstimate
    | RecordEngineeringPlan
    | RecordCalculation
    | MoveHandoffToStage
    | RejectHandoff
    | CancelHandoff
    | RemindHandoffNotTaken
    | EscalateHandoffNotTaken
)


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HandoffRequested(DomainEvent):
    request_id: UUID
    deal_id: UUID
    department: str
    stage: str
    round: int | None
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class HandoffTaken(DomainEvent):
    assignee: str
    from_stage: str
    to_stage: str


@dataclass(frozen=True, kw_only=True)
class HandoffLogisticsEstimated(DomainEvent):
    contractor_id: UUID | None
    contractor_name: str | None
    service: str
    cost: Decimal
    lead_time_days: int
    notes: str | None
    rating: int | None


@dataclass(frozen=True, kw_only=True)
class HandoffDeliveryRecorded(DomainEvent):
    """The job a contractor's estimate priced was done: planned vs actual completion and
    the rating of the work delivered."""

    contractor_id: UUID
    contractor_name: str | None
    service: str
    contracted_on: date
    lead_time_days: int
    planned_on: date
    completed_on: date
    days_late: int
    rating: int
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class HandoffPlanRecorded(DomainEvent):
    hours: Decimal
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class HandoffCalculated(DomainEvent):
    """The experts priced the services; a new calculation replaces the one before."""

    services: tuple[CalculatedService, ...]
    total: Decimal
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class HandoffStageChanged(DomainEvent):
    from_stage: str
    to_stage: str


@dataclass(frozen=True, kw_only=True)
class HandoffRejected(DomainEvent):
    from_stage: str
    to_stage: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class HandoffCancelled(DomainEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class HandoffReminderSent(DomainEvent):
    """Not taken within the department's time limit: a reminder to the department."""

    recipient: str


@dataclass(frozen=True, kw_only=True)
class HandoffEscalated(DomainEvent):
    """Still not taken after the grace period: an escalation to the department's head."""

    recipient: str


HANDOFF_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    HandoffRequested,
    HandoffTaken,
    HandoffLogisticsEstimated,
    HandoffPlanRecorded,
    HandoffCalculated,
    HandoffStageChanged,
    HandoffRejected,
    HandoffCancelled,
    HandoffReminderSent,
    HandoffEscalated,
    HandoffDeliveryRecorded,
)


# --- decide -----------------------------------------------------------------------------


def create(command: CreateHandoff, rules: Rules, meta: CommandMeta) -> HandoffRequested:
    department = rules.require_department(command.department)
    return HandoffRequested(
        **meta.event_fields(),
        request_id=command.request_id,
        deal_id=command.deal_id,
        department=department.id,
        stage=department.first_stage,
        round=command.round,
        notes=values.text("notes", command.notes, required=False),
    )


def decide(
    request: HandoffRequest, command: HandoffCommand, rules: Rules, meta: CommandMeta
) -> DomainEvent:
    department = rules.require_department(request.department)
    status = request.status(department)
    if status in ("done", "rejected", "cancelled"):
        raise RuleViolation(
            "request_closed", f"the request is {status} and accepts no further command"
        )
    match command:
        case TakeHandoff(assignee=assignee):
            who = values.required_text("assignee", assignee)
            if request.assignee is not None:
                raise RuleViolation(
                    "already_taken", f"the request was taken by {request.assignee} already"
                )
            return HandoffTaken(
                **meta.event_fields(),
                assignee=who,
                from_stage=request.stage,
                to_stage=department.taken_stage,
            )
        case RecordLogisticsEstimate():
            return _logistics(request, department, command, meta)
        case RecordEngineeringPlan(hours=hours, notes=notes):
            planned = values.hours("hours", hours, maximum=MAX_PLAN_HOURS)
            notes_text = values.text("notes", notes, required=False)
            _require_outcome_kind(department, "engineering")
            _require_in_work(request, department)
            _require_not_ready(request, department)
            return HandoffPlanRecorded(**meta.event_fields(), hours=planned, notes=notes_text)
        case RecordCalculation():
            return _calculation(request, department, command, meta)
        case MoveHandoffToStage(stage=stage_id):
            stage = department.funnel.stage(stage_id)
            if stage is None:
                known = ", ".join(s.id for s in department.funnel.stages)
                raise InvalidValue(
                    "stage", f"unknown stage '{stage_id}' of {department.id} (stages: {known})"
                )
            if stage.id == request.stage:
                raise RuleViolation("same_stage", f"the request is already in stage '{stage.id}'")
            if stage.id == department.rejected_stage:
                raise RuleViolation(
                    "reject_with_reason", "reject the request with a reason (POST …/reject)"
                )
            if stage.id == department.first_stage:
                raise RuleViolation(
                    "cannot_return_to_new", "a request cannot go back to its first stage"
                )
            _require_in_work(request, department)
            if department.is_ready(stage.id) and not _has_outcome(request, department):
                what = {"logistics": "estimate", "calculation": "calculation"}.get(
                    department.outcome, "plan"
                )
                raise RuleViolation(
                    "outcome_required",
                    f"record the {department.id} {what} before the request reaches '{stage.id}'",
                )
            return HandoffStageChanged(
                **meta.event_fields(), from_stage=request.stage, to_stage=stage.id
            )
        case RejectHandoff(reason=reason):
            reason_text = values.required_text("reason", reason)
            return HandoffRejected(
                **meta.event_fields(),
                from_stage=request.stage,
                to_stage=department.rejected_stage,
                reason=reason_text,
            )
        case CancelHandoff(reason=reason):
            return HandoffCancelled(
                **meta.event_fields(), reason=values.required_text("reason", reason)
            )
        case RemindHandoffNotTaken(recipient=recipient):
            if request.assignee is not None or request.reminded:
                raise RuleViolation("nothing_to_remind", "the request is taken or was reminded")
            return HandoffReminderSent(**meta.event_fields(), recipient=recipient)
        case EscalateHandoffNotTaken(recipient=recipient):
            if request.assignee is not None or request.escalated:
                raise RuleViolation("nothing_to_escalate", "the request is taken or was escalated")
            return HandoffEscalated(**meta.event_fields(), recipient=recipient)
    raise TypeError(f"not a hand-off command: {command!r}")  # pragma: no cover


def _require_outcome_kind(department: Department, kind: str) -> None:
    if department.outcome != kind:
        other = {
            "logistics": "an estimate (POST …/estimate)",
            "calculation": "a calculation (POST …/calculation)",
        }.get(department.outcome, "a plan (POST …/plan)")
        raise RuleViolation(
            "wrong_outcome", f"{department.id} records {other}, not a {kind} outcome"
        )


def _require_in_work(request: HandoffRequest, department: Department) -> None:
    if request.assignee is None:
        raise RuleViolation(
            "not_taken", f"someone from {department.id} must take the request first"
        )


def _require_not_ready(request: HandoffRequest, department: Department) -> None:
    if department.is_ready(request.stage):
        raise RuleViolation(
            "request_ready",
            f"the request is at '{request.stage}': move it back to work for a new outcome",
        )


def _has_outcome(request: HandoffRequest, department: Department) -> bool:
    if department.outcome == "logistics":
        return request.logistics is not None
    if department.outcome == "calculation":
        return request.calculation is not None
    return request.engineering is not None


def _logistics(
    request: HandoffRequest,
    department: Department,
    command: RecordLogisticsEstimate,
    meta: CommandMeta,
) -> HandoffLogisticsEstimated:
    service = values.required_text("service", command.service)
    cost = values.amount("cost", command.cost)
    days = command.lead_time_days
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_LEAD_TIME_DAYS:
        raise InvalidValue(
            "lead_time_days",
            f"'lead_time_days' must be a whole number from 0 to {MAX_LEAD_TIME_DAYS}",
        )
    notes = values.text("notes", command.notes, required=False)
    if command.own_equipment == (command.contractor_id is not None):
        raise InvalidValue(
            "contractor_id",
            "name a contractor from the directory, or set own_equipment: true (not both)",
        )
    rating = command.rating
    if command.own_equipment:
        if rating is not None:
            raise InvalidValue("rating", "a rating rates a contractor: none for own equipment")
    elif rating is None or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise InvalidValue("rating", "rate the contractor's quality from 1 to 5")
    if command.contractor_id is not None and command.contractor_name is None:
        raise InvalidValue("contractor_id", f"unknown contractor {command.contractor_id}")
    _require_outcome_kind(department, "logistics")
    _require_in_work(request, department)
    _require_not_ready(request, department)
    return HandoffLogisticsEstimated(
        **meta.event_fields(),
        contractor_id=command.contractor_id,
        contractor_name=command.contractor_name,
        service=service,
        cost=cost,
        lead_time_days=days,
        notes=notes,
        rating=rating,
    )


def deliver(
    request: HandoffRequest,
    parent: Deal,
    command: RecordDelivery,
    rules: Rules,
    meta: CommandMeta,
) -> HandoffDeliveryRecorded:
    """Record the delivery of the job the request's contractor estimate priced.

    The job is the one sold: the request holds a contractor's estimate that reached a
    ready stage (not rejected, and of the estimate round that priced the deal, if one did)
    and its deal is won. Once per job. The completion lies between the day the deal was won
    and today; it is late by the days after the deal's won day plus the lead time.
    """
    completed = values.day("completed_on", command.completed_on, required=True)
    assert completed is not None
    rating = command.rating
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise InvalidValue("rating", "rate the work delivered from 1 to 5")
    notes = values.text("notes", command.notes, required=False)
    if parent.deal_id != request.deal_id:
        raise ValueError(f"deal {parent.deal_id} is not the request's deal")  # pragma: no cover
    department = rules.require_department(request.department)
    estimate = request.logistics
    if estimate is None:
        raise RuleViolation(
            "estimate_required", "the request has no logistics estimate: nothing was contracted"
        )
    if estimate.contractor_id is None:
        raise RuleViolation(
            "no_contractor", "the company's own equipment did the job: no contractor to rate"
        )
    if request.delivery is not None:
        raise RuleViolation(
            "already_delivered",
            f"the job's delivery was recorded already (completed {request.delivery.completed_on})",
        )
    if request.status(department) == "rejected":
        raise RuleViolation("request_rejected", "the request was rejected: nothing was contracted")
    if request.ready_at is None:
        raise RuleViolation(
            "estimate_not_ready", "the estimate never reached approval: it is not the job sold"
        )
    sold = parent.estimate_result
    if request.round is not None and sold is not None and sold.round != request.round:
        raise RuleViolation(
            "estimate_superseded",
            f"the deal was priced by its estimate round {sold.round}, not by this request's "
            f"round {request.round}: this estimate is not the job sold",
        )
    if parent.status is not DealStatus.WON or parent.closed_at is None:
        raise RuleViolation(
            "deal_not_won",
            f"the deal is {parent.status.value}: the job is contracted once the deal is won",
        )
    contracted = parent.closed_at.astimezone(UTC).date()
    if completed < contracted:
        raise InvalidValue(
            "completed_on",
            f"'completed_on' must not be before {contracted}, when the deal was won and the "
            "job contracted",
        )
    today = meta.at.astimezone(UTC).date()
    if completed > today:
        raise InvalidValue(
            "completed_on", f"'completed_on' is the actual completion: not after today ({today})"
        )
    planned = contracted + timedelta(days=estimate.lead_time_days)
    return HandoffDeliveryRecorded(
        **meta.event_fields(),
        contractor_id=estimate.contractor_id,
        contractor_name=estimate.contractor_name,
        service=estimate.service,
        contracted_on=contracted,
        lead_time_days=estimate.lead_time_days,
        planned_on=planned,
        completed_on=completed,
        days_late=max(0, (completed - planned).days),
        rating=rating,
        notes=notes,
    )


def _calculation(
    request: HandoffRequest,
    department: Department,
    command: RecordCalculation,
    meta: CommandMeta,
) -> HandoffCalculated:
    if not command.services:
        raise InvalidValue("services", "a calculation prices at least one service")
    if len(command.services) > MAX_CALCULATION_SERVICES:
        raise InvalidValue(
            "services", f"a calculation has at most {MAX_CALCULATION_SERVICES} services"
        )
    priced = []
    seen: set[str] = set()
    for index, line in enumerate(command.services):
        at = f"services[{index}]"
        name = values.required_text(f"{at}.name", line.name)
        if name in seen:
            raise InvalidValue(f"{at}.name", f"service '{name}' appears twice")
        seen.add(name)
        price = values.amount(f"{at}.price", line.price)
        quantity = (
            None
            if line.quantity is None
            else values.hours(f"{at}.quantity", line.quantity, maximum=MAX_QUANTITY)
        )
        hours = (
            None
            if line.hours is None
            else values.hours(f"{at}.hours", line.hours, maximum=MAX_PLAN_HOURS)
        )
        amount = price if quantity is None else (price * quantity).quantize(Decimal("0.01"))
        if amount >= values.MAX_AMOUNT:
            raise InvalidValue(
                f"{at}.price", f"the amount must be less than {values.MAX_AMOUNT:,.0f}"
            )
        unit = values.text(f"{at}.unit", line.unit, required=False)
        priced.append(CalculatedService(name, quantity, unit, price, hours, amount))
    total = sum((s.amount for s in priced), Decimal("0.00"))
    if total >= values.MAX_AMOUNT:
        raise InvalidValue("services", f"the total must be less than {values.MAX_AMOUNT:,.0f}")
    notes = values.text("notes", command.notes, required=False)
    _require_outcome_kind(department, "calculation")
    _require_in_work(request, department)
    _require_not_ready(request, department)
    return HandoffCalculated(
        **meta.event_fields(), services=tuple(priced), total=total, notes=notes
    )


# --- evolve -----------------------------------------------------------------------------


def evolve(request: HandoffRequest | None, event: DomainEvent, rules: Rules) -> HandoffRequest:
    if request is None:
        if not isinstance(event, HandoffRequested):
            raise ValueError(
                f"a request's stream must start with HandoffRequested, not {event.type}"
            )
        return HandoffRequest(
            request_id=event.request_id,
            version=1,
            deal_id=event.deal_id,
            department=event.department,
            stage=event.stage,
            round=event.round,
            notes=event.notes,
            assignee=None,
            taken_at=None,
            logistics=None,
            engineering=None,
            ready_at=None,
            rejection_reason=None,
            reminded=False,
            escalated=False,
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
            stage_entered_at=event.at,
        )
    changes: dict[str, Any]
    match event:
        case HandoffTaken(assignee=assignee, to_stage=to_stage):
            changes = {
                "assignee": assignee,
                "taken_at": event.at,
                "stage": to_stage,
                "stage_entered_at": event.at,
            }
        case HandoffLogisticsEstimated():
            changes = {
                "logistics": LogisticsEstimate(
                    event.contractor_id,
                    event.contractor_name,
                    event.service,
                    event.cost,
                    event.lead_time_days,
                    event.notes,
                    event.rating,
                )
            }
        case HandoffPlanRecorded(hours=hours, notes=notes):
            changes = {"engineering": EngineeringPlan(hours, notes)}
        case HandoffCalculated(services=services, total=total, notes=notes):
            changes = {"calculation": Calculation(tuple(services), total, notes)}
        case HandoffStageChanged(to_stage=to_stage):
            department = rules.departments.get(request.department)
            ready = department is not None and department.is_ready(to_stage)
            changes = {
                "stage": to_stage,
                "stage_entered_at": event.at,
                # its estimate time: when it became ready (approval → done keeps it; a
                # request sent back to work for a new estimate is ready again later)
                "ready_at": (request.ready_at or event.at) if ready else None,
            }
        case HandoffRejected(to_stage=to_stage, reason=reason):
            changes = {"stage": to_stage, "stage_entered_at": event.at, "rejection_reason": reason}
        case HandoffCancelled(reason=reason):
            changes = {"cancellation_reason": reason}
        case HandoffReminderSent():
            changes = {"reminded": True}
        case HandoffEscalated():
            changes = {"escalated": True}
        case HandoffDeliveryRecorded():
            changes = {
                "delivery": Delivery(
                    contracted_on=event.contracted_on,
                    planned_on=event.planned_on,
                    completed_on=event.completed_on,
                    days_late=event.days_late,
                    rating=event.rating,
                    notes=event.notes,
                    recorded_at=event.at,
                    recorded_by=event.actor,
                )
            }
        case _:
            raise ValueError(f"not a hand-off event: {event.type}")
    changes["version"] = request.version + 1
    changes["updated_at"] = event.at
    return replace(request, **changes)


def fold(events: list[DomainEvent], rules: Rules) -> HandoffRequest | None:
    request: HandoffRequest | None = None
    for event in events:
        request = evolve(request, event, rules)
    return request
