"""The Deal aggregate: a sale from its creation (from a qualified lead, or as an upsell to
an existing client) through estimates, proposal, contract and invoice to won or lost.

A decider like the lead: ``decide(state, command, rules, meta)`` returns exactly one event
or raises a :class:`~aggregates.errors.DomainError`; ``evolve`` folds an event in.

Rules in brief:
- a deal moves to any stage of its funnel except the current one while it is open; it
  cannot move on past a stage that asked for estimates while they are pending (moving
  back is allowed and ends that estimate round);
- entering a stage whose configuration ``needs`` departments starts an **estimate
  round**: the stage change records which departments, in order, and the stage to
  return to if one of them rejects the request;
- the deal keeps a view of every hand-off request to another department, updated in the
  same atomic write as the request itself, so the view never disagrees with the request;
- a proposal needs at least one service; one built from a request for calculation takes
  that request's calculated services as they are (the request must be the deal's, carry a
  calculation and be ready or done) and records which request it came from; a contract
  needs a proposal; an invoice needs a contract, a positive amount and a number the deal
  has not used;
- a prepayment invoice is issued **pending**: the manager's head or a configured approver
  approves or declines it (with a reason); only a counted invoice (not a prepayment, or
  an approved one) books revenue, makes the deal winnable and reaches the project's
  billing; a deal with a pending invoice is not won until it is decided;
- an organisation sells only its allowed services: a proposal naming the organisation,
  and an invoice (checked against the proposal's services), may not name another;
- winning needs an invoice; losing needs a reason; a closed deal accepts no command
  but the notes of its requests and, once won, the project it became;
- closing the deal ends its requests: every one not done, rejected or cancelled yet (at
  any stage, ``approval`` included) is cancelled in the same atomic write as the close
  (:meth:`Deal.open_requests`, :func:`requests_closed_reason`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from aggregates import billing, values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from aggregates.rules import Rules

MAX_SERVICES = 200


ENDED_REQUEST_STATUSES = frozenset({"done", "rejected", "cancelled"})
"""Statuses of a hand-off request that accepts no further command."""


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class ServiceLine:
    name: str
    price: Decimal


@dataclass(frozen=True)
class Proposal:
    services: tuple[ServiceLine, ...]
    total: Decimal
    calculation_id: UUID | None = None
    """The request for calculation whose services the proposal was built from."""
    organisation: str | None = None
    """The organisation selling it, when the proposal names one."""
    recorded_at: datetime | None = field(default=None, compare=False)
    """When it was recorded (the proposals report's month; not part of what it says)."""


@dataclass(frozen=True)
class Contract:
    number: str
    signed_on: date


APPROVAL_NOT_REQUIRED = "not_required"
APPROVAL_PENDING = "pending"
APPROVAL_APPROVED = "approved"
APPROVAL_DECLINED = "declined"
COUNTED_APPROVALS = frozenset({APPROVAL_NOT_REQUIRED, APPROVAL_APPROVED})


@dataclass(frozen=True)
class Invoice:
    number: str
    amount: Decimal
    prepayment: bool
    organisation: str
    issued_on: date
    approval: str = APPROVAL_NOT_REQUIRED
    """'not_required' (not a prepayment), 'pending', 'approved' or 'declined'."""
    decided_by: str | None = None
    decline_reason: str | None = None

    @property
    def counted(self) -> bool:
        """Counted (revenue, pipeline, winning, the project's billing): not a prepayment,
        or an approved one."""
        return self.approval in COUNTED_APPROVALS


@dataclass(frozen=True)
class EstimateRound:
    """The estimates asked for when the deal entered a stage that needs them."""

    round: int
    """The deal version whose stage change opened the round; request ids derive from it."""
    stage: str
    needs: tuple[str, ...]
    return_stage: str
    ready_stage: str
    started_at: datetime


@dataclass(frozen=True)
class EstimateResult:
    round: int
    price: Decimal
    estimated_by: tuple[str, ...]
    took_seconds: float
    ready_at: datetime


@dataclass(frozen=True)
class HandoffView:
    """What the deal knows of one of its hand-off requests (equal to the request's own
    state: both change in one atomic write)."""

    request_id: UUID
    department: str
    stage: str
    status: str
    assignee: str | None
    price: Decimal | None
    round: int | None
    ready_at: datetime | None
    updated_at: datetime


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deal:
    deal_id: UUID
    version: int
    funnel: str
    stage: str
    status: DealStatus
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    description: str | None
    amount: Decimal
    lead_id: UUID | None
    previous_deal_id: UUID | None
    proposal: Proposal | None
    contract: Contract | None
    invoices: tuple[Invoice, ...]
    estimate: EstimateRound | None
    """The open estimate round, if the deal is in a stage that asked for estimates."""
    estimate_result: EstimateResult | None
    estimate_rejection: str | None
    handoffs: tuple[HandoffView, ...]
    close_reason: str | None
    closed_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_entered_at: datetime
    project_id: UUID | None = None
    """The project the won deal became, once it exists."""
    paid: Decimal | None = None
    """What was paid of an imported deal's invoice, as its file said (a deal won here is
    paid on its project)."""
    paid_on: date | None = None

    def handoff(self, request_id: UUID) -> HandoffView | None:
        for view in self.handoffs:
            if view.request_id == request_id:
                return view
        return None

    def open_requests(self) -> tuple[HandoffView, ...]:
        """Its requests not ended yet: open, in work or ready (e.g. at ``approval``)."""
        return tuple(h for h in self.handoffs if h.status not in ENDED_REQUEST_STATUSES)

    def round_requests(self) -> dict[str, HandoffView]:
        """The open estimate round's requests, by department."""
        if self.estimate is None:
            return {}
        return {h.department: h for h in self.handoffs if h.round == self.estimate.round}


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateDeal:
    deal_id: UUID
    funnel: str
    title: str
    company_name: str
    source: str
    manager: str
    company_id: str | None = None
    description: str | None = None
    amount: Decimal = Decimal(0)
    lead_id: UUID | None = None
    previous_deal_id: UUID | None = None


@dataclass(frozen=True)
class MoveDealToStage:
    stage: str


@dataclass(frozen=True)
class RecordProposal:
    services: tuple[ServiceLine, ...]
    organisation: str | None = None


@dataclass(frozen=True)
class CalculatedLine:
    """A calculated service as the proposal takes it: its name and amount."""

    name: str
    amount: Decimal


@dataclass(frozen=True)
class RecordProposalFromCalculation:
    """Build the proposal from a request for calculation's calculated services.

    ``services`` is filled by the handler from the request's own stream when the request
    is this deal's (None: it has no calculation, or is no request of the deal's); the
    decider checks the rest against the deal's view of its requests."""

    request_id: UUID
    services: tuple[CalculatedLine, ...] | None = None
    typed: bool = False
    """Services were typed beside the calculation: refused (one or the other)."""
    organisation: str | None = None


@dataclass(frozen=True)
class RecordContract:
    number: str
    signed_on: date


@dataclass(frozen=True)
class IssueInvoice:
    number: str
    amount: Decimal
    organisation: str
    prepayment: bool = False
    issued_on: date | None = None
    """Defaults to the day the command is received (UTC)."""


@dataclass(frozen=True)
class DecideInvoiceApproval:
    """Approve or decline a pending prepayment invoice (a decline needs a reason)."""

    number: str
    approve: bool
    reason: str | None = None


@dataclass(frozen=True)
class CloseDeal:
    outcome: str
    reason: str | None = None


@dataclass(frozen=True)
class NoteHandoff:
    """Record the current state of one of the deal's hand-off requests."""

    view: HandoffView


@dataclass(frozen=True)
class NoteProject:
    """Record the project the won deal became."""

    project_id: UUID


@dataclass(frozen=True)
class CompleteEstimate:
    """The estimate round's last request is ready: move on with the price."""

    round: int


@dataclass(frozen=True)
class ReturnFromEstimate:
    """A request of the round was rejected: go back to the stage before the estimate."""

    round: int
    request_id: UUID
    reason: str


DealCommand = (
    MoveDealToStage
    | RecordProposal
    | RecordProposalFromCalculation
    | RecordContract
    | IssueInvoice
    | DecideInvoiceApproval
    | CloseDeal
    | NoteHandoff
    | NoteProject
    | CompleteEstimate
    | ReturnFromEstimate
)


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DealCreated(DomainEvent):
    deal_id: UUID
    funnel: str
    stage: str
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    description: str | None
    amount: Decimal
    lead_id: UUID | None
    previous_deal_id: UUID | None


@dataclass(frozen=True, kw_only=True)
class DealStageChanged(DomainEvent):
    funnel: str
    from_stage: str
    to_stage: str
    needs: tuple[str, ...] = ()
    """Departments whose estimates the new stage asks for, in order (empty: none)."""
    ready_stage: str | None = None


@dataclass(frozen=True, kw_only=True)
class DealProposalRecorded(DomainEvent):
    """Version 2 added ``calculation_id`` and ``organisation``; version 1 proposals were
    typed by hand and named no organisation (see ``upcast_deal_proposal_recorded_v1``)."""

    schema_version: ClassVar[int] = 2

    services: tuple[ServiceLine, ...]
    total: Decimal
    calculation_id: UUID | None = None
    """The request for calculation the services were taken from; None when typed."""
    organisation: str | None = None
    """The organisation selling the services, when the proposal names one."""


@dataclass(frozen=True, kw_only=True)
class DealContractRecorded(DomainEvent):
    number: str
    signed_on: date


@dataclass(frozen=True, kw_only=True)
class DealInvoiceIssued(DomainEvent):
    """Version 2 added ``approval`` and ``approver``: a prepayment invoice is issued
    pending. Invoices issued before were counted at once, prepayments too
    (``upcast_deal_invoice_issued_v1``: 'not_required')."""

    schema_version: ClassVar[int] = 2

    number: str
    amount: Decimal
    prepayment: bool
    organisation: str
    issued_on: date
    approval: str
    approver: str | None
    """Who is asked to approve a pending invoice (the manager's head)."""


@dataclass(frozen=True, kw_only=True)
class DealInvoiceApproved(DomainEvent):
    """A pending prepayment invoice was approved: from now on it counts."""

    number: str
    amount: Decimal
    organisation: str
    issued_on: date
    comment: str | None


@dataclass(frozen=True, kw_only=True)
class DealInvoiceDeclined(DomainEvent):
    """A pending prepayment invoice was declined: it never counts nor is payable."""

    number: str
    reason: str


def upcast_deal_invoice_issued_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Invoices issued before prepayments needed approval counted at once."""
    return data | {"approval": APPROVAL_NOT_REQUIRED, "approver": None}


def upcast_deal_proposal_recorded_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Proposals recorded before calculations and organisations were typed by hand and
    named no organisation."""
    return data | {"calculation_id": None, "organisation": None}


def upcast_deal_imported_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Deals imported before won deals could be: no money, no earlier deal."""
    return data | {
        "previous_deal_id": None,
        "proposal_services": [],
        "proposal_total": None,
        "proposal_at": None,
        "contract_number": None,
        "contract_signed_on": None,
        "invoice_number": None,
        "invoice_amount": None,
        "invoice_organisation": None,
        "invoice_issued_on": None,
        "paid": None,
        "paid_on": None,
    }


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("DealInvoiceIssued", 1): upcast_deal_invoice_issued_v1,
    ("DealProposalRecorded", 1): upcast_deal_proposal_recorded_v1,
    ("DealImported", 1): upcast_deal_imported_v1,
}
"""Stored-event upcasters: (event type, stored version) → the next version's fields."""


@dataclass(frozen=True, kw_only=True)
class DealHandoffNoted(DomainEvent):
    request_id: UUID
    department: str
    stage: str
    status: str
    assignee: str | None
    price: Decimal | None
    round: int | None
    ready_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class DealEstimateReady(DomainEvent):
    round: int
    from_stage: str
    to_stage: str
    price: Decimal
    estimated_by: tuple[str, ...]
    took_seconds: float


@dataclass(frozen=True, kw_only=True)
class DealEstimateRejected(DomainEvent):
    round: int
    request_id: UUID
    department: str
    from_stage: str
    to_stage: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class DealClosed(DomainEvent):
    outcome: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class DealProjectStarted(DomainEvent):
    """The won deal's project was created (in the same atomic write as the project)."""

    project_id: UUID


DEAL_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    DealCreated,
    DealStageChanged,
    DealProposalRecorded,
    DealContractRecorded,
    DealInvoiceIssued,
    DealHandoffNoted,
    DealEstimateReady,
    DealEstimateRejected,
    DealClosed,
    DealProjectStarted,
    DealInvoiceApproved,
    DealInvoiceDeclined,
)


# --- decide -----------------------------------------------------------------------------


def create(command: CreateDeal, rules: Rules, meta: CommandMeta) -> DealCreated:
    funnel = rules.deal_funnels.require(command.funnel)
    return DealCreated(
        **meta.event_fields(),
        deal_id=command.deal_id,
        funnel=funnel.id,
        stage=funnel.first_stage.id,
        title=values.required_text("title", command.title),
        company_name=values.required_text("company_name", command.company_name),
        company_id=values.text("company_id", command.company_id, required=False),
        source=values.required_text("source", command.source),
        manager=values.required_text("manager", command.manager),
        description=values.text("description", command.description, required=False),
        amount=values.amount("amount", command.amount),
        lead_id=command.lead_id,
        previous_deal_id=command.previous_deal_id,
    )


def _require_open(deal: Deal) -> None:
    if deal.status is not DealStatus.OPEN:
        raise RuleViolation(
            "deal_closed", f"the deal is closed ({deal.status.value}) and accepts no command"
        )


def decide(deal: Deal, command: DealCommand, rules: Rules, meta: CommandMeta) -> DomainEvent:
    """Decide the one event a command on an existing deal produces, or refuse it."""
    match command:
        case NoteHandoff(view=view):
            # The request's own change already happened: the deal records it even closed.
            return DealHandoffNoted(
                **meta.event_fields(),
                request_id=view.request_id,
                department=view.department,
                stage=view.stage,
                status=view.status,
                assignee=view.assignee,
                price=view.price,
                round=view.round,
                ready_at=view.ready_at,
            )
        case NoteProject(project_id=project_id):
            if deal.status is not DealStatus.WON:
                raise RuleViolation("deal_not_won", "only a won deal becomes a project")
            if deal.project_id is not None:
                raise RuleViolation(
                    "project_exists", f"the deal became project {deal.project_id} already"
                )
            return DealProjectStarted(**meta.event_fields(), project_id=project_id)
        case _:
            pass
    _require_open(deal)
    match command:
        case MoveDealToStage(stage=stage_id):
            return _move(deal, stage_id, rules, meta)
        case RecordProposal(services=services):
            return _with_organisation(_proposal(services, meta), command.organisation, rules)
        case RecordProposalFromCalculation(organisation=organisation):
            recorded = _proposal_from_calculation(deal, command, meta)
            return _with_organisation(recorded, organisation, rules)
        case RecordContract(number=number, signed_on=signed_on):
            number_text = values.required_text("number", number)
            signed = values.day("signed_on", signed_on, required=True)
            assert signed is not None
            values.sensible_day("signed_on", signed, meta.at, since=deal.created_at, record="deal")
            if deal.proposal is None:
                raise RuleViolation("proposal_required", "record a proposal before the contract")
            return DealContractRecorded(**meta.event_fields(), number=number_text, signed_on=signed)
        case IssueInvoice():
            return issue_invoice(deal, command, rules, meta)
        case DecideInvoiceApproval():
            return decide_invoice_approval(deal, command, rules, meta)
        case CloseDeal(outcome=outcome, reason=reason):
            if outcome not in ("won", "lost"):
                raise InvalidValue("outcome", "'outcome' must be 'won' or 'lost'")
            reason_text = values.text("reason", reason, required=outcome == "lost")
            if outcome == "won":
                _require_winnable(deal)
            return DealClosed(**meta.event_fields(), outcome=outcome, reason=reason_text)
        case CompleteEstimate(round=round_no):
            return _complete_estimate(deal, round_no, rules, meta)
        case ReturnFromEstimate(round=round_no, request_id=request_id, reason=reason):
            return _return_from_estimate(deal, round_no, request_id, reason, meta)
    raise TypeError(f"not a deal command: {command!r}")  # pragma: no cover


def requests_closed_reason(outcome: str) -> str:
    """Why a closing deal's open requests are cancelled."""
    return f"the deal was {outcome}"


def _move(deal: Deal, stage_id: str, rules: Rules, meta: CommandMeta) -> DealStageChanged:
    funnel = rules.deal_funnels.require(deal.funnel)
    stage = rules.deal_funnels.require_stage(funnel, stage_id)
    if stage.id == deal.stage:
        raise RuleViolation("same_stage", f"the deal is already in stage '{stage.id}'")
    if deal.estimate is not None:
        current_step = funnel.step_of(deal.stage) or 0
        if stage.step > current_step:
            waiting = [
                d for d in deal.estimate.needs if not _is_ready(deal.round_requests().get(d), rules)
            ]
            if waiting:
                raise RuleViolation(
                    "estimates_pending",
                    f"the deal waits for estimates from {', '.join(waiting)}: it moves on "
                    "by itself when they are ready",
                )
    return DealStageChanged(
        **meta.event_fields(),
        funnel=deal.funnel,
        from_stage=deal.stage,
        to_stage=stage.id,
        needs=stage.needs,
        ready_stage=stage.ready_stage if stage.needs else None,
    )


def _is_ready(view: HandoffView | None, rules: Rules) -> bool:
    """Estimated: at a ready stage of its department, and neither cancelled nor rejected."""
    if view is None or view.status not in ("ready", "done"):
        return False
    department = rules.departments.get(view.department)
    return department is not None and department.is_ready(view.stage)


def _proposal(services: tuple[ServiceLine, ...], meta: CommandMeta) -> DealProposalRecorded:
    if not services:
        raise InvalidValue("services", "a proposal needs at least one service")
    if len(services) > MAX_SERVICES:
        raise InvalidValue("services", f"a proposal has at most {MAX_SERVICES} services")
    checked = []
    seen: set[str] = set()
    for index, line in enumerate(services):
        name = values.required_text(f"services[{index}].name", line.name)
        if name in seen:
            raise InvalidValue(f"services[{index}].name", f"service '{name}' appears twice")
        seen.add(name)
        checked.append(ServiceLine(name, values.amount(f"services[{index}].price", line.price)))
    total = sum((line.price for line in checked), Decimal("0.00"))
    if total >= values.MAX_AMOUNT:
        raise InvalidValue("services", f"the total must be less than {values.MAX_AMOUNT:,.0f}")
    return DealProposalRecorded(**meta.event_fields(), services=tuple(checked), total=total)


def _proposal_from_calculation(
    deal: Deal, command: RecordProposalFromCalculation, meta: CommandMeta
) -> DealProposalRecorded:
    if command.typed:
        raise InvalidValue("services", "give the services or a calculation, not both")
    view = deal.handoff(command.request_id)
    if view is None:
        raise RuleViolation(
            "calculation_not_of_deal",
            f"request {command.request_id} is not one of this deal's requests",
        )
    if not command.services:
        raise RuleViolation(
            "calculation_required",
            f"request {command.request_id} ({view.department}) has no calculated services",
        )
    if view.status not in ("ready", "done"):
        raise RuleViolation(
            "calculation_not_ready",
            f"the calculation of request {command.request_id} is {view.status}: the proposal "
            "takes it once it is ready (approval) or done",
        )
    lines = tuple(ServiceLine(s.name, s.amount) for s in command.services)
    recorded = _proposal(lines, meta)
    return replace(recorded, calculation_id=command.request_id)


def issue_invoice(
    deal: Deal, command: IssueInvoice, rules: Rules, meta: CommandMeta
) -> DealInvoiceIssued:
    """The invoice event; the revenue cap of its organisation is checked beside it
    (:mod:`aggregates.limits`), in the same atomic write."""
    _require_open(deal)
    number = values.required_text("number", command.number)
    amount = values.amount("amount", command.amount, positive=True)
    organisation = rules.require_organisation(command.organisation)
    issued_on = values.day("issued_on", command.issued_on, required=False) or (
        meta.at.astimezone(UTC).date()
    )
    values.sensible_day("issued_on", issued_on, meta.at, since=deal.created_at, record="deal")
    if deal.contract is None:
        raise RuleViolation("contract_required", "record the contract before an invoice")
    if any(invoice.number == number for invoice in deal.invoices):
        raise RuleViolation("invoice_number_taken", f"the deal already has invoice '{number}'")
    if deal.proposal is not None:
        organisation.require_sells(line.name for line in deal.proposal.services)
    prepayment = bool(command.prepayment)
    return DealInvoiceIssued(
        **meta.event_fields(),
        number=number,
        amount=amount,
        prepayment=prepayment,
        organisation=organisation.id,
        issued_on=issued_on,
        approval=APPROVAL_PENDING if prepayment else APPROVAL_NOT_REQUIRED,
        approver=rules.head_of(deal.manager) if prepayment else None,
    )


# --- prepayment approval and the organisation's services --------------------------------


def _with_organisation(
    recorded: DealProposalRecorded, organisation_id: str | None, rules: Rules
) -> DealProposalRecorded:
    """The proposal of a named organisation: every service one it may sell."""
    if organisation_id is None:
        return recorded
    organisation = rules.require_organisation(organisation_id)
    organisation.require_sells(line.name for line in recorded.services)
    return replace(recorded, organisation=organisation.id)


def _require_winnable(deal: Deal) -> None:
    pending = [i.number for i in deal.invoices if i.approval == APPROVAL_PENDING]
    if pending:
        raise RuleViolation(
            "invoice_approval_pending",
            f"prepayment invoice {', '.join(pending)} awaits approval: approve or decline it "
            "before the deal is won",
            invoices=pending,
        )
    if not any(i.counted for i in deal.invoices):
        raise RuleViolation(
            "invoice_required",
            "a deal is won once it has an invoice (a prepayment one once approved)",
        )


def decide_invoice_approval(
    deal: Deal, command: DecideInvoiceApproval, rules: Rules, meta: CommandMeta
) -> DealInvoiceApproved | DealInvoiceDeclined:
    """Approve or decline a pending prepayment invoice: the manager's head or a configured
    approver only. An approval of a simplified-tax organisation's invoice books its
    revenue beside it (:mod:`aggregates.limits`), in the same atomic write."""
    _require_open(deal)
    number = values.required_text("number", command.number)
    invoice = next((i for i in deal.invoices if i.number == number), None)
    if invoice is None:
        raise InvalidValue("number", f"the deal has no invoice '{number}'")
    if not rules.may_approve_prepayment(meta.actor, deal.manager):
        raise NotPermitted(
            "prepayment_approver",
            f"{meta.actor} may not decide prepayment invoices of {deal.manager}'s deals: "
            f"their head ({rules.head_of(deal.manager)}) or a prepayment approver may",
        )
    if invoice.approval != APPROVAL_PENDING:
        raise RuleViolation(
            "invoice_not_pending",
            f"invoice '{number}' is not awaiting approval (it is {invoice.approval})",
            approval=invoice.approval,
        )
    reason = values.text("reason", command.reason, required=not command.approve)
    if not command.approve:
        assert reason is not None
        return DealInvoiceDeclined(**meta.event_fields(), number=number, reason=reason)
    return DealInvoiceApproved(
        **meta.event_fields(),
        number=number,
        amount=invoice.amount,
        organisation=invoice.organisation,
        issued_on=invoice.issued_on,
        comment=reason,
    )


def _complete_estimate(
    deal: Deal, round_no: int, rules: Rules, meta: CommandMeta
) -> DealEstimateReady:
    estimate = deal.estimate
    if estimate is None or estimate.round != round_no:
        raise RuleViolation("no_such_estimate_round", "the deal is not in that estimate round")
    requests = deal.round_requests()
    views = [requests.get(d) for d in estimate.needs]
    ready = [v for v in views if v is not None and _is_ready(v, rules)]
    if len(ready) != len(estimate.needs):
        raise RuleViolation("estimates_pending", "not every estimate of the round is ready")
    ready_at = max(v.ready_at or v.updated_at for v in ready)
    estimated_by = tuple(dict.fromkeys(v.assignee for v in ready if v.assignee))
    return DealEstimateReady(
        **meta.event_fields(),
        round=round_no,
        from_stage=deal.stage,
        to_stage=estimate.ready_stage,
        price=sum((v.price or Decimal("0.00") for v in ready), Decimal("0.00")),
        estimated_by=estimated_by,
        took_seconds=max(0.0, (ready_at - estimate.started_at).total_seconds()),
    )


def _return_from_estimate(
    deal: Deal, round_no: int, request_id: UUID, reason: str, meta: CommandMeta
) -> DealEstimateRejected:
    estimate = deal.estimate
    if estimate is None or estimate.round != round_no:
        raise RuleViolation("no_such_estimate_round", "the deal is not in that estimate round")
    view = deal.handoff(request_id)
    if view is None or view.round != round_no or view.status != "rejected":
        raise RuleViolation("request_not_rejected", "that request of the round is not rejected")
    return DealEstimateRejected(
        **meta.event_fields(),
        round=round_no,
        request_id=request_id,
        department=view.department,
        from_stage=deal.stage,
        to_stage=estimate.return_stage,
        reason=f"{view.department} rejected the request: {reason}",
    )


# --- evolve -----------------------------------------------------------------------------


def evolve(deal: Deal | None, event: DomainEvent) -> Deal:
    if deal is None:
        if isinstance(event, DealImported):
            return imported(event)
        if not isinstance(event, DealCreated):
            raise ValueError(f"a deal's stream must start with DealCreated, not {event.type}")
        return Deal(
            deal_id=event.deal_id,
            version=1,
            funnel=event.funnel,
            stage=event.stage,
            status=DealStatus.OPEN,
            title=event.title,
            company_name=event.company_name,
            company_id=event.company_id,
            source=event.source,
            manager=event.manager,
            description=event.description,
            amount=event.amount,
            lead_id=event.lead_id,
            previous_deal_id=event.previous_deal_id,
            proposal=None,
            contract=None,
            invoices=(),
            estimate=None,
            estimate_result=None,
            estimate_rejection=None,
            handoffs=(),
            close_reason=None,
            closed_at=None,
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
            stage_entered_at=event.at,
        )
    changes: dict[str, Any]
    match event:
        case DealStageChanged(to_stage=to_stage, from_stage=from_stage, needs=needs):
            estimate = None
            if needs:
                estimate = EstimateRound(
                    round=deal.version + 1,
                    stage=to_stage,
                    needs=tuple(needs),
                    return_stage=from_stage,
                    ready_stage=event.ready_stage or to_stage,
                    started_at=event.at,
                )
            changes = {"stage": to_stage, "stage_entered_at": event.at, "estimate": estimate}
        case DealProposalRecorded(services=services, total=total):
            proposal = Proposal(
                tuple(services), total, event.calculation_id, event.organisation, event.at
            )
            changes = {"proposal": proposal, "amount": total}
        case DealContractRecorded(number=number, signed_on=signed_on):
            changes = {"contract": Contract(number, signed_on)}
        case DealInvoiceIssued():
            invoice = Invoice(
                event.number,
                event.amount,
                event.prepayment,
                event.organisation,
                event.issued_on,
                event.approval,
            )
            changes = {"invoices": (*deal.invoices, invoice)}
        case DealInvoiceApproved() | DealInvoiceDeclined():
            changes = {"invoices": _decided(deal.invoices, event)}
        case DealHandoffNoted():
            view = HandoffView(
                request_id=event.request_id,
                department=event.department,
                stage=event.stage,
                status=event.status,
                assignee=event.assignee,
                price=event.price,
                round=event.round,
                ready_at=event.ready_at,
                updated_at=event.at,
            )
            known = deal.handoff(event.request_id) is not None
            handoffs = (
                tuple(view if h.request_id == event.request_id else h for h in deal.handoffs)
                if known
                else (*deal.handoffs, view)
            )
            changes = {"handoffs": handoffs}
        case DealEstimateReady():
            changes = {
                "stage": event.to_stage,
                "stage_entered_at": event.at,
                "estimate": None,
                "estimate_rejection": None,
                "estimate_result": EstimateResult(
                    event.round,
                    event.price,
                    tuple(event.estimated_by),
                    event.took_seconds,
                    event.at,
                ),
            }
        case DealEstimateRejected():
            changes = {
                "stage": event.to_stage,
                "stage_entered_at": event.at,
                "estimate": None,
                "estimate_rejection": event.reason,
            }
        case DealClosed(outcome=outcome, reason=reason):
            changes = {
                "status": DealStatus(outcome),
                "close_reason": reason,
                "closed_at": event.at,
                "estimate": None,
            }
        case DealProjectStarted(project_id=project_id):
            changes = {"project_id": project_id}
        case _:
            raise ValueError(f"not a deal event: {event.type}")
    changes["version"] = deal.version + 1
    changes["updated_at"] = event.at
    return replace(deal, **changes)


def _decided(
    invoices: tuple[Invoice, ...], event: DealInvoiceApproved | DealInvoiceDeclined
) -> tuple[Invoice, ...]:
    approved = isinstance(event, DealInvoiceApproved)
    return tuple(
        replace(
            i,
            approval=APPROVAL_APPROVED if approved else APPROVAL_DECLINED,
            decided_by=event.actor,
            decline_reason=None if isinstance(event, DealInvoiceApproved) else event.reason,
        )
        if i.number == event.number
        else i
        for i in invoices
    )


def fold(events: list[DomainEvent]) -> Deal | None:
    deal: Deal | None = None
    for event in events:
        deal = evolve(deal, event)
    return deal


# --- import of an existing base (issue 18 §2) -------------------------------------------
#
# As for leads (see aggregates.lead, "import"): the row is checked by this module's
# deciders at its original instants (``create``, ``MoveDealToStage``, ``RecordProposal``,
# ``RecordContract``, ``IssueInvoice``, ``CloseDeal``), and one ``DealImported`` records
# the state they lead to. The same rules hold: a deal is won once it has an invoice, and an
# invoice needs a contract, which needs a proposal, so a won deal comes in with its money:
# the proposal (its amount and when), the contract (number and day), one invoice (number,
# amount, day, organisation; booked on a simplified-tax organisation's revenue ledger as an
# issued invoice is) and what of it was paid (decided by the billing's ``RecordPayment``, as
# a won deal is paid on its project). Only the commands' rules apply: the instants the
# commands are given follow each other (created, stage entered, proposal, close), and the
# contract's, invoice's and payment's days are as free as the commands leave them (backdated
# or ahead, in any order: ``values.sensible_day``). Further invoices are decided by
# ``import_invoice`` on the deal as it stood before its close. Entering a stage that
# asks for estimates opens no estimate round (no department is asked about a sale that is
# already there). An upsell names the client's earlier deal (``previous_deal_id``).


@dataclass(frozen=True)
class ImportDeal:
    deal_id: UUID
    funnel: str
    title: str
    company_name: str
    source: str
    manager: str
    created_at: datetime
    stage: str | None = None
    status: str = "open"
    company_id: str | None = None
    description: str | None = None
    amount: Decimal = Decimal(0)
    lead_id: UUID | None = None
    reason: str | None = None
    stage_entered_at: datetime | None = None
    closed_at: datetime | None = None
    external_id: str | None = None
    previous_deal_id: UUID | None = None
    service: str | None = None
    """The proposal's one service (default: the deal's title)."""
    proposal_amount: Decimal | None = None
    proposal_at: datetime | None = None
    contract_number: str | None = None
    contract_signed_on: date | None = None
    invoice_number: str | None = None
    invoiced: Decimal | None = None
    invoiced_on: date | None = None
    organisation: str | None = None
    paid: Decimal | None = None
    paid_on: date | None = None


@dataclass(frozen=True, kw_only=True)
class DealImported(DomainEvent):
    """A deal brought in from an existing base, at its stage and status, with its original
    instants (``at`` is when it was imported; ``cause`` names the file and row).

    Version 2 added the money a deal is won with (its proposal, contract and one invoice,
    and what was paid of it) and the earlier deal of an upsell; version 1 deals had none
    (``upcast_deal_imported_v1``)."""

    schema_version: ClassVar[int] = 2

    deal_id: UUID
    funnel: str
    stage: str
    status: str
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    description: str | None
    amount: Decimal
    lead_id: UUID | None
    close_reason: str | None
    created_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    external_id: str | None
    previous_deal_id: UUID | None = None
    proposal_services: tuple[ServiceLine, ...] = ()
    proposal_total: Decimal | None = None
    proposal_at: datetime | None = None
    contract_number: str | None = None
    contract_signed_on: date | None = None
    invoice_number: str | None = None
    invoice_amount: Decimal | None = None
    invoice_organisation: str | None = None
    invoice_issued_on: date | None = None
    paid: Decimal | None = None
    """What the client paid of the invoice (its record; payments are the project's)."""
    paid_on: date | None = None


DEAL_IMPORT_EVENT_TYPES: tuple[type[DomainEvent], ...] = (DealImported,)


def _instant(field: str, value: Any, *, after: datetime, before: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(field, f"'{field}' must be a date and time with its time zone")
    if value < after:
        raise InvalidValue(field, f"'{field}' must not be before {what}")
    if value > before:
        raise InvalidValue(field, f"'{field}' must not be after the import ({before:%Y-%m-%d})")
    return value


class AsColumns:
    """Re-raise a decider's InvalidValue naming the import's column instead of the
    command's field (``number`` → ``contract_number``)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if isinstance(error, InvalidValue):
            field = error.field.split(".")[0].split("[")[0]
            column = self.names.get(field)
            if column is not None:
                message = str(error).replace(f"'{error.field}'", f"'{column}'")
                raise InvalidValue(column, message) from None


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def _given(*cells: Any) -> bool:
    return any(cell is not None for cell in cells)


def import_deal(command: ImportDeal, rules: Rules, meta: CommandMeta) -> DealImported:
    """Decide an imported deal (see above)."""
    earliest = datetime.combine(values.EARLIEST_DAY, datetime.min.time(), UTC)
    created_at = _instant(
        "created_at", command.created_at, after=earliest, before=meta.at, what="2000-01-01"
    )
    stage_at = _instant(
        "stage_entered_at",
        command.stage_entered_at or created_at,
        after=created_at,
        before=meta.at,
        what="the creation",
    )

    def at(moment: datetime) -> CommandMeta:
        return CommandMeta(actor=meta.actor, at=moment, command_id=meta.command_id)

    created = create(
        CreateDeal(
            deal_id=command.deal_id,
            funnel=command.funnel,
            title=command.title,
            company_name=command.company_name,
            source=command.source,
            manager=command.manager,
            company_id=command.company_id,
            description=command.description,
            amount=command.amount,
            lead_id=command.lead_id,
            previous_deal_id=command.previous_deal_id,
        ),
        rules,
        at(created_at),
    )
    state = evolve(None, created)
    if command.stage is not None and command.stage != state.stage:
        moved = decide(state, MoveDealToStage(command.stage), rules, at(stage_at))
        assert isinstance(moved, DealStageChanged)
        state = evolve(state, replace(moved, needs=(), ready_stage=None))
    if command.status not in ("open", "won", "lost"):
        raise InvalidValue("status", "'status' must be one of open, won, lost")
    state = _imported_money(state, command, rules, meta)
    if command.status == "won" and not state.invoices:
        raise InvalidValue(
            "invoiced",
            "a deal is won once it has an invoice: a won deal comes in with its money "
            "(proposal_amount, contract_number and contract_signed_on, invoice_number, "
            "invoiced, invoiced_on and organisation)",
        )
    if command.status != "open":
        # the close is the last command: after the stage was entered and the proposal made
        # (the contract's and invoice's days are theirs to backdate, as the commands allow)
        after, what = stage_at, "the stage was entered"
        proposed = None if state.proposal is None else state.proposal.recorded_at
        if proposed is not None and proposed > after:
            after, what = proposed, "the proposal (proposal_at)"
        closed_at = _instant(
            "closed_at",
            command.closed_at or min(after, meta.at),
            after=after,
            before=meta.at,
            what=what,
        )
        close = CloseDeal(command.status, command.reason)
        state = evolve(state, decide(state, close, rules, at(closed_at)))
    proposal, contract = state.proposal, state.contract
    invoice = state.invoices[0] if state.invoices else None
    paid, paid_on = None, None
    if invoice is not None and _given(command.paid, command.paid_on):
        opened = state.closed_at or state.created_at
        payment = import_payment(invoice, command.paid, command.paid_on, opened, meta)
        paid, paid_on = payment.amount, payment.paid_on
    return DealImported(
        **meta.event_fields(),
        deal_id=state.deal_id,
        funnel=state.funnel,
        stage=state.stage,
        status=state.status.value,
        title=state.title,
        company_name=state.company_name,
        company_id=state.company_id,
        source=state.source,
        manager=state.manager,
        description=state.description,
        amount=state.amount,
        lead_id=state.lead_id,
        close_reason=state.close_reason,
        created_at=state.created_at,
        stage_entered_at=state.stage_entered_at,
        closed_at=state.closed_at,
        external_id=values.text("external_id", command.external_id, required=False),
        previous_deal_id=state.previous_deal_id,
        proposal_services=() if proposal is None else proposal.services,
        proposal_total=None if proposal is None else proposal.total,
        proposal_at=None if proposal is None else proposal.recorded_at,
        contract_number=None if contract is None else contract.number,
        contract_signed_on=None if contract is None else contract.signed_on,
        invoice_number=None if invoice is None else invoice.number,
        invoice_amount=None if invoice is None else invoice.amount,
        invoice_organisation=None if invoice is None else invoice.organisation,
        invoice_issued_on=None if invoice is None else invoice.issued_on,
        paid=paid,
        paid_on=paid_on,
    )


def _imported_money(state: Deal, command: ImportDeal, rules: Rules, meta: CommandMeta) -> Deal:
    """The imported deal's proposal, contract and invoice, decided by this module's
    deciders in the order the commands take them (each day as free as the command
    leaves it: a contract or invoice may be backdated)."""
    c = command
    has_proposal = _given(c.proposal_amount, c.proposal_at, c.service)
    has_contract = _given(c.contract_number, c.contract_signed_on)
    has_invoice = _given(c.invoice_number, c.invoiced, c.invoiced_on, c.organisation)
    has_paid = _given(c.paid, c.paid_on)
    if not has_proposal:
        if has_contract:
            raise InvalidValue(
                "proposal_amount", "a contract needs its proposal first: give proposal_amount"
            )
        if has_invoice or has_paid:
            raise InvalidValue(
                "proposal_amount",
                "an invoice needs its proposal and contract first: give proposal_amount, "
                "contract_number and contract_signed_on",
            )
        return state
    if c.proposal_amount is None:
        raise InvalidValue("proposal_amount", "'proposal_amount' is required with a proposal")
    proposal_at = _instant(
        "proposal_at",
        c.proposal_at or state.created_at,
        after=state.created_at,
        before=meta.at,
        what="the creation",
    )
    line = ServiceLine(c.service or state.title, c.proposal_amount)
    with AsColumns({"services": "proposal_amount"}):
        recorded = decide(
            state,
            RecordProposal((line,)),
            rules,
            CommandMeta(actor=meta.actor, at=proposal_at, command_id=meta.command_id),
        )
    state = evolve(state, recorded)
    if not has_contract:
        if has_invoice or has_paid:
            raise InvalidValue(
                "contract_number",
                "an invoice needs its contract first: give contract_number and contract_signed_on",
            )
        return state
    for name, cell in (
        ("contract_number", c.contract_number),
        ("contract_signed_on", c.contract_signed_on),
    ):
        if cell is None:
            raise InvalidValue(name, f"'{name}' is required with a contract")
    assert c.contract_signed_on is not None
    contract = RecordContract(c.contract_number or "", c.contract_signed_on)
    with AsColumns({"number": "contract_number", "signed_on": "contract_signed_on"}):
        state = evolve(state, decide(state, contract, rules, meta))
    if not has_invoice:
        if has_paid:
            raise InvalidValue(
                "invoice_number",
                "a payment needs its invoice: give invoice_number, invoiced, invoiced_on "
                "and organisation",
            )
        return state
    issued = import_invoice(
        state, c.invoice_number, c.invoiced, c.invoiced_on, c.organisation, rules, meta
    )
    return evolve(state, issued)


INVOICE_COLUMNS = ("invoice_number", "invoiced", "invoiced_on", "organisation")


def import_invoice(
    state: Deal,
    number: str | None,
    amount: Decimal | None,
    issued_on: date | None,
    organisation: str | None,
    rules: Rules,
    meta: CommandMeta,
) -> DealInvoiceIssued:
    """An imported invoice of the deal (before its close), decided by :func:`issue_invoice`
    as the command issues one, its refusals naming the import's columns."""
    cells = zip(INVOICE_COLUMNS, (number, amount, issued_on, organisation), strict=True)
    for column, value in cells:
        if value is None:
            raise InvalidValue(
                column,
                f"'{column}' is required with an invoice (invoice_number, invoiced, invoiced_on "
                "and organisation)",
            )
    assert amount is not None
    issue = IssueInvoice(number or "", amount, organisation or "", False, issued_on)
    names = {"number": "invoice_number", "amount": "invoiced", "issued_on": "invoiced_on"}
    with AsColumns(names):
        return issue_invoice(state, issue, rules, meta)


def import_payment(
    invoice: Invoice,
    paid: Decimal | None,
    paid_on: date | None,
    opened: datetime,
    meta: CommandMeta,
) -> billing.ProjectPaymentRecorded:
    """What was paid of an imported invoice, decided by the billing's own
    :class:`~aggregates.billing.RecordPayment` (a won deal is paid on its project, opened
    when it was won: ``opened``), its refusals naming the import's columns."""
    bills = billing.empty_billing(UUID(int=0), opened)  # a scratch billing, never stored
    carry = billing.CarryDealInvoice(
        UUID(int=0), invoice.number, invoice.amount, invoice.organisation, False, invoice.issued_on
    )
    bills = billing.evolve(bills, billing.decide(bills, carry, meta))
    return record_payment(bills, invoice.number, paid, paid_on, opened, meta)


def record_payment(
    bills: billing.Billing,
    number: str | None,
    paid: Decimal | None,
    paid_on: date | None,
    opened: datetime,
    meta: CommandMeta,
) -> billing.ProjectPaymentRecorded:
    """An imported payment of invoice ``number`` on the project's billing ``bills``, decided
    by :class:`~aggregates.billing.RecordPayment` (its refusals naming the import's columns:
    an overpayment names ``paid``)."""
    if paid is None or paid_on is None:
        name = "paid" if paid is None else "paid_on"
        raise InvalidValue(name, f"'{name}' is required with a payment (paid and paid_on)")
    try:
        with AsColumns({"amount": "paid"}):
            payment = billing.decide(
                bills, billing.RecordPayment(number or "", paid, paid_on), meta, opened=opened
            )
    except RuleViolation as refusal:
        raise InvalidValue("paid", refusal.message) from None
    assert isinstance(payment, billing.ProjectPaymentRecorded)
    return payment


def before_close(state: Deal) -> Deal:
    """The imported deal as it stood before its close: further imported invoices are
    decided on it, as the commands issue every invoice before the deal is won."""
    return replace(state, status=DealStatus.OPEN, close_reason=None, closed_at=None)


def imported(event: DealImported) -> Deal:
    """The state an imported deal starts from (version 1)."""
    proposal = None
    if event.proposal_total is not None:
        proposal = Proposal(
            tuple(event.proposal_services), event.proposal_total, recorded_at=event.proposal_at
        )
    contract = None
    if event.contract_number is not None and event.contract_signed_on is not None:
        contract = Contract(event.contract_number, event.contract_signed_on)
    invoices: tuple[Invoice, ...] = ()
    if (
        event.invoice_number is not None
        and event.invoice_amount is not None
        and event.invoice_organisation is not None
        and event.invoice_issued_on is not None
    ):
        invoices = (
            Invoice(
                event.invoice_number,
                event.invoice_amount,
                False,
                event.invoice_organisation,
                event.invoice_issued_on,
            ),
        )
    return Deal(
        deal_id=event.deal_id,
        version=1,
        funnel=event.funnel,
        stage=event.stage,
        status=DealStatus(event.status),
        title=event.title,
        company_name=event.company_name,
        company_id=event.company_id,
        source=event.source,
        manager=event.manager,
        description=event.description,
        amount=event.amount,
        lead_id=event.lead_id,
        previous_deal_id=event.previous_deal_id,
        proposal=proposal,
        contract=contract,
        invoices=invoices,
        estimate=None,
        estimate_result=None,
        estimate_rejection=None,
        handoffs=(),
        close_reason=event.close_reason,
        closed_at=event.closed_at,
        created_at=event.created_at,
        created_by=event.actor,
        updated_at=event.at,
        stage_entered_at=event.stage_entered_at,
        paid=event.paid,
        paid_on=event.paid_on,
    )
