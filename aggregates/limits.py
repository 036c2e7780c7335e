"""Limits that span aggregates, each kept in a stream of its own that is the consistency
boundary: the write it guards appends to the limit's stream at its next version in the
same atomic append, so two racing writes cannot both pass a check made on one total.

- **Revenue cap** (simplified-tax regime): one stream per organisation and year books
  every invoice's amount with the running total, deal invoices (``RevenueBooked``) and
  project invoices (``ProjectRevenueBooked``) alike; a deal's invoice carried into its
  project's billing is booked once, by the deal. An invoice that would take the total
  past the yearly cap is refused, naming the cap and the current total. An invoice is
  booked to the year of its own day, whatever years the ledger has booked since: the cap
  is a yearly one, so a backdated invoice counts against the cap of the year it is dated
  in (and is refused when that year's cap is full).
- **New clients per manager and month**: one stream per manager and month counts the
  clients (client and direction) the manager took; over the cap an assignment waits for a
  head's approval.
- **Client assignment**: one stream per client and direction says which manager owns it.
  A direction no one holds is taken at once (within the monthly cap); one another
  manager holds is never taken silently: the request waits for the requester's head (or
  a configured approver), and only their approval moves it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import NotPermitted, RuleViolation
from aggregates.rules import Organisation, Rules

LIMITS_NAMESPACE = UUID("5d0c6f4e-8a1b-4f7e-9c2d-3b6a1e0f7d21")


# --- revenue cap ------------------------------------------------------------------------


def revenue_stream_id(organisation: str, year: int) -> UUID:
    return uuid5(LIMITS_NAMESPACE, f"revenue:{organisation}:{year}")


@dataclass(frozen=True, kw_only=True)
class RevenueBooked(DomainEvent):
    organisation: str
    year: int
    deal_id: UUID
    invoice_number: str
    amount: Decimal
    total: Decimal
    """The organisation's invoiced total for the year, this invoice included."""
    cap: Decimal


@dataclass(frozen=True, kw_only=True)
class ProjectRevenueBooked(DomainEvent):
    """An invoice issued on a project, booked on its organisation's ledger."""

    organisation: str
    year: int
    project_id: UUID
    invoice_number: str
    amount: Decimal
    total: Decimal
    """The organisation's invoiced total for the year, this invoice included."""
    cap: Decimal


@dataclass(frozen=True)
class RevenueLedger:
    version: int
    total: Decimal


def revenue_ledger(events: list[DomainEvent]) -> RevenueLedger:
    total = Decimal("0.00")
    for event in events:
        assert isinstance(event, RevenueBooked | ProjectRevenueBooked)
        total = event.total
    return RevenueLedger(len(events), total)


def book_revenue(
    ledger: RevenueLedger,
    organisation: Organisation,
    year: int,
    deal_id: UUID,
    invoice_number: str,
    amount: Decimal,
    meta: CommandMeta,
) -> RevenueBooked:
    """Book an invoice against the yearly cap, or refuse it with the figures."""
    total, cap = _within_cap(ledger, organisation, year, amount)
    return RevenueBooked(
        **meta.event_fields(),
        organisation=organisation.id,
        year=year,
        deal_id=deal_id,
        invoice_number=invoice_number,
        amount=amount,
        total=total,
        cap=cap,
    )


def book_project_revenue(
    ledger: RevenueLedger,
    organisation: Organisation,
    year: int,
    project_id: UUID,
    invoice_number: str,
    amount: Decimal,
    meta: CommandMeta,
) -> ProjectRevenueBooked:
    """Book a project's invoice against the yearly cap (the same rule as a deal's)."""
    total, cap = _within_cap(ledger, organisation, year, amount)
    return ProjectRevenueBooked(
        **meta.event_fields(),
        organisation=organisation.id,
        year=year,
        project_id=project_id,
        invoice_number=invoice_number,
        amount=amount,
        total=total,
        cap=cap,
    )


def _within_cap(
    ledger: RevenueLedger, organisation: Organisation, year: int, amount: Decimal
) -> tuple[Decimal, Decimal]:
    """The new total and the cap, or the refusal with the figures."""
    cap = organisation.yearly_revenue_cap
    assert cap is not None
    total = ledger.total + amount
    if total > cap:
        raise RuleViolation(
            "simplified_tax_revenue_cap",
            f"{organisation.name} is on the simplified-tax regime: this invoice of {amount} "
            f"would take its {year} revenue to {total}, over the cap of {cap} "
            f"(invoiced so far: {ledger.total}, room left: {cap - ledger.total})",
            cap=str(cap),
            current_total=str(ledger.total),
            requested=str(amount),
            year=year,
            organisation=organisation.id,
        )
    return total, cap


# --- manager's new clients per month ----------------------------------------------------


def month_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def manager_month_stream_id(manager: str, month: str) -> UUID:
    return uuid5(LIMITS_NAMESPACE, f"manager-clients:{manager}:{month}")


@dataclass(frozen=True, kw_only=True)
class ManagerClientTaken(DomainEvent):
    manager: str
    month: str
    assignment_id: UUID
    company_id: str
    direction: str
    count: int
    """New clients the manager took this month, this one included."""
    cap: int
    approved_by: str | None
    """The head who approved it, when it was over the cap."""


def manager_month_count(events: list[DomainEvent]) -> int:
    count = 0
    for event in events:
        assert isinstance(event, ManagerClientTaken)
        count = event.count
    return count


# --- client assignment ------------------------------------------------------------------


def assignment_id_for(company_id: str, direction: str) -> UUID:
    return uuid5(LIMITS_NAMESPACE, f"assignment:{company_id}:{direction}")


@dataclass(frozen=True)
class ClientAssignment:
    assignment_id: UUID
    version: int
    company_id: str
    direction: str
    manager: str | None
    status: str
    """'assigned', 'pending_approval' or 'declined'."""
    requested_manager: str | None
    requested_by: str | None
    month: str | None
    decided_by: str | None
    comment: str | None
    updated_at: datetime
    pending_because: str | None = None
    """Why a request waits: 'monthly_cap' (the requester took their monthly cap of new
    clients) or 'held' (another manager, ``manager``, holds the direction)."""


@dataclass(frozen=True)
class AssignClient:
    company_id: str
    direction: str
    manager: str
    reason: str | None = None


@dataclass(frozen=True)
class DecideAssignment:
    approve: bool
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class ClientAssigned(DomainEvent):
    assignment_id: UUID
    company_id: str
    direction: str
    manager: str
    previous_manager: str | None
    month: str
    count: int
    approved_by: str | None
    comment: str | None


@dataclass(frozen=True, kw_only=True)
class ClientAssignmentApprovalRequested(DomainEvent):
    assignment_id: UUID
    company_id: str
    direction: str
    manager: str
    month: str
    count: int
    cap: int
    approver: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class ClientAssignmentTakeoverRequested(DomainEvent):
    """A manager asked for a client's direction another manager holds: it moves only on
    the approver's word (the holder keeps it meanwhile, and if declined)."""

    assignment_id: UUID
    company_id: str
    direction: str
    manager: str
    held_by: str
    approver: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class ClientAssignmentDeclined(DomainEvent):
    manager: str
    comment: str | None


LIMIT_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    RevenueBooked,
    ProjectRevenueBooked,
    ManagerClientTaken,
    ClientAssigned,
    ClientAssignmentApprovalRequested,
    ClientAssignmentDeclined,
    ClientAssignmentTakeoverRequested,
)


def assign(
    assignment: ClientAssignment | None,
    command: AssignClient,
    taken_this_month: int,
    rules: Rules,
    meta: CommandMeta,
) -> tuple[DomainEvent, ManagerClientTaken | None]:
    """Assign a client's direction to a manager. A free direction (no one holds it) is
    taken at once under the monthly cap (with the count booked on the manager's month),
    else it waits for a head's approval; a direction another manager holds always waits
    for the approval (``ClientAssignmentTakeoverRequested``, naming the holder). Asking
    again for a direction one holds is a 409 (a retry is answered by the request's
    Idempotency-Key, so a second, new request is a mistake worth hearing about)."""
    company_id = values.required_text("company_id", command.company_id)
    direction = values.required_text("direction", command.direction)
    manager = values.required_text("manager", command.manager)
    reason = values.text("reason", command.reason, required=False)
    assignment_id = assignment_id_for(company_id, direction)
    if assignment is not None:
        if assignment.status == "pending_approval":
            raise RuleViolation(
                "approval_pending",
                f"an assignment of this client to {assignment.requested_manager} waits for "
                "a head's approval",
            )
        if assignment.status == "assigned" and assignment.manager == manager:
            raise RuleViolation(
                "already_assigned", f"{manager} owns this client's {direction} already"
            )
        if assignment.manager is not None:
            return (
                ClientAssignmentTakeoverRequested(
                    **meta.event_fields(),
                    assignment_id=assignment_id,
                    company_id=company_id,
                    direction=direction,
                    manager=manager,
                    held_by=assignment.manager,
                    approver=rules.head_of(manager),
                    reason=reason,
                ),
                None,
            )
    month = month_of(meta.at)
    cap = rules.monthly_new_client_cap
    if taken_this_month >= cap:
        return (
            ClientAssignmentApprovalRequested(
                **meta.event_fields(),
                assignment_id=assignment_id,
                company_id=company_id,
                direction=direction,
                manager=manager,
                month=month,
                count=taken_this_month,
                cap=cap,
                approver=rules.head_of(manager),
                reason=reason,
            ),
            None,
        )
    count = taken_this_month + 1
    return (
        ClientAssigned(
            **meta.event_fields(),
            assignment_id=assignment_id,
            company_id=company_id,
            direction=direction,
            manager=manager,
            previous_manager=None if assignment is None else assignment.manager,
            month=month,
            count=count,
            approved_by=None,
            comment=reason,
        ),
        ManagerClientTaken(
            **meta.event_fields(),
            manager=manager,
            month=month,
            assignment_id=assignment_id,
            company_id=company_id,
            direction=direction,
            count=count,
            cap=cap,
            approved_by=None,
        ),
    )


def decide_approval(
    assignment: ClientAssignment,
    command: DecideAssignment,
    taken_this_month: int,
    rules: Rules,
    meta: CommandMeta,
) -> tuple[DomainEvent, ManagerClientTaken | None]:
    """A head approves (the client is taken over the cap, or from the manager holding it,
    who loses it: ``previous_manager``) or declines a pending request."""
    comment = values.text("comment", command.comment, required=not command.approve)
    if assignment.status != "pending_approval" or assignment.requested_manager is None:
        raise RuleViolation("no_pending_approval", "no assignment of this client awaits approval")
    manager = assignment.requested_manager
    if not rules.may_approve(meta.actor, manager):
        raise NotPermitted(
            "head_approval_required",
            f"only {rules.head_of(manager)} (the head of {manager}) or an approver may "
            "decide this assignment",
        )
    if not command.approve:
        return ClientAssignmentDeclined(
            **meta.event_fields(), manager=manager, comment=comment
        ), None
    month = month_of(meta.at)
    count = taken_this_month + 1
    return (
        ClientAssigned(
            **meta.event_fields(),
            assignment_id=assignment.assignment_id,
            company_id=assignment.company_id,
            direction=assignment.direction,
            manager=manager,
            previous_manager=assignment.manager,
            month=month,
            count=count,
            approved_by=meta.actor,
            comment=comment,
        ),
        ManagerClientTaken(
            **meta.event_fields(),
            manager=manager,
            month=month,
            assignment_id=assignment.assignment_id,
            company_id=assignment.company_id,
            direction=assignment.direction,
            count=count,
            cap=rules.monthly_new_client_cap,
            approved_by=meta.actor,
        ),
    )


def evolve_assignment(assignment: ClientAssignment | None, event: DomainEvent) -> ClientAssignment:
    changes: dict[str, Any]
    base: ClientAssigned | ClientAssignmentApprovalRequested | None = None
    match event:
        case ClientAssigned():
            changes = {
                "manager": event.manager,
                "status": "assigned",
                "requested_manager": None,
                "requested_by": None,
                "month": event.month,
                "decided_by": event.approved_by,
                "comment": event.comment,
                "pending_because": None,
            }
            base = event
        case ClientAssignmentApprovalRequested():
            changes = {
                "status": "pending_approval",
                "requested_manager": event.manager,
                "requested_by": event.actor,
                "month": event.month,
                "decided_by": None,
                "comment": event.reason,
                "pending_because": "monthly_cap",
            }
            base = event
        case ClientAssignmentTakeoverRequested():
            if assignment is None:
                raise ValueError("a takeover needs a held assignment")
            changes = {
                "status": "pending_approval",
                "requested_manager": event.manager,
                "requested_by": event.actor,
                "decided_by": None,
                "comment": event.reason,
                "pending_because": "held",
            }
        case ClientAssignmentDeclined():
            if assignment is None:
                raise ValueError("a decline needs a pending assignment")
            changes = {
                "status": "assigned" if assignment.manager else "declined",
                "requested_manager": None,
                "decided_by": event.actor,
                "comment": event.comment,
                "pending_because": None,
            }
        case _:
            raise ValueError(f"not an assignment event: {event.type}")
    if assignment is None:
        assert base is not None
        assignment = ClientAssignment(
            assignment_id=base.assignment_id,
            version=0,
            company_id=base.company_id,
            direction=base.direction,
            manager=None,
            status="declined",
            requested_manager=None,
            requested_by=None,
            month=None,
            decided_by=None,
            comment=None,
            updated_at=event.at,
        )
    return replace(assignment, version=assignment.version + 1, updated_at=event.at, **changes)


def fold_assignment(events: list[DomainEvent]) -> ClientAssignment | None:
    assignment: ClientAssignment | None = None
    for event in events:
        assignment = evolve_assignment(assignment, event)
    return assignment
