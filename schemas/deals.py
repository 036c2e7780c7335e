"""Request and response models of the deal, hand-off, contractor and client-assignment
commands, and of the details read from the event store."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import HistoryEntry, Strict
from schemas.limits import (
    MAX_CALCULATION_SERVICES,
    MAX_CONTRACTOR_SERVICES,
    MAX_SERVICES,
    Code,
    LongText,
    Name,
)

# --- deals ------------------------------------------------------------------------------


class ConvertLeadRequest(Strict):
    funnel: Code | None = Field(
        default=None,
        description="Deal funnel (see GET /deal-funnels); defaults to the lead funnel's "
        "deal_funnel",
    )


class CreateDealRequest(Strict):
    """A deal for an existing client, linked to the client's earlier deal (an upsell)."""

    previous_deal_id: UUID = Field(description="The client's earlier deal")
    funnel: Code = Field(default="upsell", description="Deal funnel (see GET /deal-funnels)")
    title: Name
    manager: Code
    source: Name = "upsell"
    description: LongText | None = None
    amount: Decimal = Field(default=Decimal(0), description="≥ 0, 2 decimals")


class DealStageRequest(Strict):
    stage: Code


class ServiceLineIn(Strict):
    name: Name
    price: Decimal = Field(description="≥ 0, 2 decimals")


class ProposalRequest(Strict):
    """The services typed, or a request for calculation whose services it takes."""

    services: list[ServiceLineIn] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SERVICES,
        description=f"At least one, at most {MAX_SERVICES}; names unique (or calculation)",
    )
    calculation: UUID | None = Field(
        default=None,
        description="A request for calculation of the deal, ready or done: the proposal's "
        "services are its calculated services (instead of services)",
    )
    organisation: Code | None = Field(
        default=None,
        description="The selling organisation (rules.toml): every service must be one it "
        "sells (409 organisation_service_not_allowed)",
    )


class ContractRequest(Strict):
    number: Code
    signed_on: date


class InvoiceRequest(Strict):
    number: Code
    amount: Decimal = Field(description="> 0, 2 decimals")
    organisation: Code = Field(description="The issuing organisation (rules.toml)")
    prepayment: bool = False
    issued_on: date | None = Field(default=None, description="Defaults to today (UTC)")


class InvoiceApprovalRequest(Strict):
    decision: Literal["approve", "decline"]
    reason: LongText | None = Field(default=None, description="Required to decline")


class DealCloseRequest(Strict):
    outcome: Literal["won", "lost"]
    reason: LongText | None = Field(default=None, description="Required when the outcome is lost")


class HandoffCreateRequest(Strict):
    department: Code = Field(description="Department id (see GET /departments)")
    notes: LongText | None = Field(default=None, description="What the department needs to know")


class DealAccepted(BaseModel):
    deal_id: UUID
    version: int
    position: int = Field(
        description="Global position of the event; pass as min_position to read it back"
    )


class ServiceLineOut(BaseModel):
    name: str
    price: Decimal


class ProposalOut(BaseModel):
    services: list[ServiceLineOut]
    total: Decimal
    calculation_id: UUID | None = Field(
        default=None, description="The request for calculation it was built from"
    )
    organisation: str | None = None


class ContractOut(BaseModel):
    number: str
    signed_on: date


class InvoiceOut(BaseModel):
    number: str
    amount: Decimal
    prepayment: bool
    organisation: str
    issued_on: date
    approval: Literal["not_required", "pending", "approved", "declined"] = Field(
        description="A prepayment invoice is pending until approved or declined; only "
        "'not_required' and 'approved' ones count"
    )
    decided_by: str | None = None
    decline_reason: str | None = None


class EstimateRoundOut(BaseModel):
    round: int
    stage: str
    needs: list[str]
    return_stage: str
    ready_stage: str
    started_at: datetime


class EstimateResultOut(BaseModel):
    round: int
    price: Decimal
    estimated_by: list[str]
    took_seconds: float
    ready_at: datetime


class HandoffViewOut(BaseModel):
    request_id: UUID
    department: str
    stage: str
    status: Literal["open", "in_work", "ready", "done", "rejected", "cancelled"]
    assignee: str | None
    price: Decimal | None
    round: int | None
    ready_at: datetime | None
    updated_at: datetime


class DealDetail(BaseModel):
    deal_id: UUID
    funnel: str
    stage: str
    status: Literal["open", "won", "lost"]
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    description: str | None
    amount: Decimal
    lead_id: UUID | None
    previous_deal_id: UUID | None
    project_id: UUID | None = Field(description="The won deal's project, once it exists")
    proposal: ProposalOut | None
    contract: ContractOut | None
    invoices: list[InvoiceOut]
    estimate: EstimateRoundOut | None = Field(description="The estimate round under way")
    estimate_result: EstimateResultOut | None = Field(description="The last estimate")
    estimate_rejection: str | None
    handoffs: list[HandoffViewOut] = Field(description="Every hand-off request and its status")
    close_reason: str | None
    closed_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_entered_at: datetime
    version: int
    paid: Decimal | None = Field(
        default=None,
        description="What was paid of an imported deal's invoice, as its file said (a deal "
        "won here is paid on its project)",
    )
    paid_on: date | None = None


class StreamHistory(BaseModel):
    id: UUID
    events: list[HistoryEntry]


# --- hand-off requests ------------------------------------------------------------------


class TakeRequest(Strict):
    assignee: Code | None = Field(default=None, description="Defaults to the authenticated user")


class LogisticsEstimateRequest(Strict):
    service: Name = Field(description="The service priced, e.g. 'heavy haulage'")
    cost: Decimal = Field(description="≥ 0, 2 decimals")
    lead_time_days: int = Field(description="Whole days, 0 to 3650")
    contractor_id: UUID | None = Field(
        default=None, description="A contractor from the directory (or own_equipment)"
    )
    own_equipment: bool = False
    rating: int | None = Field(
        default=None, description="The contractor's quality for this job, 1 to 5"
    )
    notes: LongText | None = None


class CalculatedServiceIn(Strict):
    name: Name
    quantity: Decimal | None = Field(default=None, description="> 0; price is then per unit")
    unit: Code | None = Field(default=None, description="The unit of the quantity")
    price: Decimal = Field(description="≥ 0, 2 decimals; per unit when a quantity is given")
    hours: Decimal | None = Field(default=None, description="Hours the service needs, > 0")


class CalculationRequest(Strict):
    services: list[CalculatedServiceIn] = Field(
        min_length=1,
        max_length=MAX_CALCULATION_SERVICES,
        description=f"At least one, at most {MAX_CALCULATION_SERVICES}; names unique",
    )
    notes: LongText | None = None


class PlanRequest(Strict):
    hours: Decimal = Field(description="Planned hours, > 0")
    notes: LongText | None = None


class HandoffStageRequest(Strict):
    stage: Code


class RejectRequest(Strict):
    reason: LongText


class DeliveryRequest(Strict):
    completed_on: date = Field(
        description="When the contracted job was actually completed: from the day the deal "
        "was won to today"
    )
    rating: int = Field(description="The quality of the work delivered, 1 to 5")
    notes: LongText | None = None


class HandoffAccepted(BaseModel):
    request_id: UUID
    version: int
    position: int


class LogisticsOut(BaseModel):
    contractor_id: UUID | None
    contractor_name: str | None
    own_equipment: bool
    service: str
    cost: Decimal
    lead_time_days: int
    notes: str | None
    rating: int | None


class DeliveryOut(BaseModel):
    contracted_on: date = Field(description="The day the deal was won: the job was ordered")
    planned_on: date = Field(description="contracted_on plus the estimate's lead time")
    completed_on: date
    days_late: int = Field(description="Days after planned_on; 0 when on time")
    rating: int = Field(description="The quality of the work delivered, 1 to 5")
    notes: str | None
    recorded_at: datetime
    recorded_by: str


class PlanOut(BaseModel):
    hours: Decimal
    notes: str | None


class CalculatedServiceOut(BaseModel):
    name: str
    quantity: Decimal | None
    unit: str | None
    price: Decimal
    hours: Decimal | None
    amount: Decimal


class CalculationOut(BaseModel):
    services: list[CalculatedServiceOut]
    total: Decimal
    notes: str | None


class HandoffDetail(BaseModel):
    request_id: UUID
    deal_id: UUID
    department: str
    stage: str
    status: Literal["open", "in_work", "ready", "done", "rejected", "cancelled"]
    round: int | None
    notes: str | None
    assignee: str | None
    taken_at: datetime | None
    logistics: LogisticsOut | None
    engineering: PlanOut | None
    calculation: CalculationOut | None = Field(
        default=None, description="The experts' priced services (a request for calculation)"
    )
    price: Decimal | None
    ready_at: datetime | None
    rejection_reason: str | None
    cancellation_reason: str | None
    reminded: bool
    escalated: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    stage_entered_at: datetime
    version: int
    delivery: DeliveryOut | None = Field(
        default=None, description="The contracted job as delivered (POST …/delivery)"
    )


# --- contractors ------------------------------------------------------------------------


class ContractorRequest(Strict):
    name: Name
    services: list[Name] = Field(
        min_length=1,
        max_length=MAX_CONTRACTOR_SERVICES,
        description=f"Services offered; at least one, at most {MAX_CONTRACTOR_SERVICES}, unique",
    )
    contacts: LongText | None = None
    notes: LongText | None = None


class ContractorUpdateRequest(Strict):
    """Only the fields sent are changed."""

    name: Name | None = None
    services: list[Name] | None = Field(
        default=None, min_length=1, max_length=MAX_CONTRACTOR_SERVICES
    )
    contacts: LongText | None = None
    notes: LongText | None = None


class ContractorAccepted(BaseModel):
    contractor_id: UUID
    version: int
    position: int


# --- client assignments -----------------------------------------------------------------


class AssignmentRequest(Strict):
    company_id: Code = Field(description="The client company")
    direction: Code = Field(description="The sales direction the manager takes for it")
    manager: Code
    reason: LongText | None = None


class AssignmentDecisionRequest(Strict):
    approve: bool
    comment: LongText | None = Field(default=None, description="Required when declining")


PendingBecause = Literal["monthly_cap", "held"]


class AssignmentAccepted(BaseModel):
    assignment_id: UUID
    status: Literal["assigned", "pending_approval", "declined"]
    manager: str | None = Field(description="Who holds the client's direction now")
    requested_manager: str | None = Field(
        default=None, description="Who asks for it, awaiting approval"
    )
    pending_because: PendingBecause | None = Field(
        default=None,
        description="Why it waits: the requester's monthly cap of new clients, or the "
        "direction is held by another manager (manager)",
    )
    version: int
    position: int


class AssignmentDetail(BaseModel):
    assignment_id: UUID
    company_id: str
    direction: str
    manager: str | None
    status: Literal["assigned", "pending_approval", "declined"]
    requested_manager: str | None
    requested_by: str | None
    month: str | None
    decided_by: str | None
    comment: str | None
    updated_at: datetime
    version: int
    pending_because: PendingBecause | None = Field(
        default=None,
        description="Why it waits: the requester's monthly cap of new clients, or the "
        "direction is held by another manager (manager)",
    )


class DealStageOut(BaseModel):
    id: str
    name: str
    step: int
    time_limit_hours: float | None
    needs: list[str] = Field(description="Departments whose estimates the stage asks for")
    ready_stage: str | None = Field(description="Where the deal goes once they are ready")


class DealFunnelOut(BaseModel):
    id: str
    name: str
    stages: list[DealStageOut]
