"""Request and response models of the deal, hand-off, contractor and client-assignment
commands, and of the details read from the event store."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import HistoryEntry, Strict
from schemas.limits import MAX_CONTRACTOR_SERVICES, MAX_SERVICES, Code, LongText, Name

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
    services: list[ServiceLineIn] = Field(
        min_length=1,
        max_length=MAX_SERVICES,
        description=f"At least one, at most {MAX_SERVICES}; names unique",
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


class PlanRequest(Strict):
    hours: Decimal = Field(description="Planned hours, > 0")
    notes: LongText | None = None


class HandoffStageRequest(Strict):
    stage: Code


class RejectRequest(Strict):
    reason: LongText


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


class PlanOut(BaseModel):
    hours: Decimal
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


class AssignmentAccepted(BaseModel):
    assignment_id: UUID
    status: Literal["assigned", "pending_approval", "declined"]
    manager: str | None
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
