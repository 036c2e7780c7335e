"""Response models of the pipeline queries: deals, hand-off requests, the contractor
directory, alerts, client assignments and the pipeline reports (all from read models)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

DealStatus = Literal["open", "won", "lost"]
HandoffStatus = Literal["open", "in_work", "ready", "done", "rejected", "cancelled"]
AlertKind = Literal["reminder", "escalation", "approval_request"]
AlertSubject = Literal["lead", "handoff", "client_assignment", "deal", "activity"]
AssignmentStatus = Literal["assigned", "pending_approval", "declined"]


class Page(BaseModel):
    total: int = Field(description="How many match the filters, over all pages")
    limit: int
    offset: int


# --- deals ------------------------------------------------------------------------------


class DealSummary(BaseModel):
    deal_id: UUID
    funnel: str
    stage: str
    status: DealStatus
    title: str
    company_name: str
    company_id: str | None
    source: str
    manager: str
    amount: Decimal = Field(description="The proposal's total once there is one")
    lead_id: UUID | None
    previous_deal_id: UUID | None
    project_id: UUID | None = Field(description="The won deal's project, once it exists")
    proposal_total: Decimal | None
    contract_number: str | None
    invoiced_total: Decimal = Field(
        description="Of its counted invoices: not prepayments, or approved ones"
    )
    invoices: int = Field(description="Its counted invoices")
    invoices_pending: int = Field(description="Its prepayment invoices awaiting approval")
    estimate_price: Decimal | None
    estimated_by: list[str] | None
    estimate_seconds: float | None
    estimate_rejection: str | None
    requests: int = Field(description="Hand-off requests the deal sent")
    open_requests: int = Field(description="Its hand-off requests not done, rejected or cancelled")
    close_reason: str | None
    created_at: datetime
    updated_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    version: int


class DealPage(Page):
    items: list[DealSummary]


# --- hand-off requests ------------------------------------------------------------------


class HandoffSummary(BaseModel):
    request_id: UUID
    deal_id: UUID
    department: str
    stage: str
    status: HandoffStatus
    round: int | None = Field(description="The deal's estimate round; null when sent by hand")
    assignee: str | None
    created_at: datetime
    taken_at: datetime | None
    ready_at: datetime | None
    take_seconds: float | None = Field(description="From the request to its taking")
    estimate_seconds: float | None = Field(description="From the request to a ready stage")
    price: Decimal | None = Field(description="The logistics cost")
    service: str | None
    contractor_id: UUID | None
    contractor_name: str | None
    own_equipment: bool | None
    lead_time_days: int | None
    plan_hours: Decimal | None
    rejection_reason: str | None
    reminded: bool
    escalated: bool
    updated_at: datetime
    version: int


class HandoffPage(Page):
    items: list[HandoffSummary]


# --- contractors ------------------------------------------------------------------------


class ServicePrice(BaseModel):
    service: str
    quotes: int
    average_price: Decimal | None


class DeliveredFigures(BaseModel):
    """A contractor's delivered jobs (rated on the work done), apart from its quotes."""

    jobs: int = Field(description="Jobs delivered")
    rating: Decimal | None = Field(description="Average rating of the work delivered, 1 to 5")
    average_planned_days: Decimal | None = Field(description="Average lead time estimated")
    average_actual_days: Decimal | None = Field(
        description="Average days from the deal's win to the job's completion"
    )
    on_time: int = Field(description="Jobs completed by their planned date")
    overruns: int = Field(description="Jobs completed after their planned date")
    overrun_share: Decimal | None = Field(description="overruns / jobs, 0 to 1")
    average_days_late: Decimal | None = Field(description="Average days late of the overruns")


class ContractorSummary(BaseModel):
    contractor_id: UUID
    name: str
    services: list[str]
    contacts: str | None
    notes: str | None
    quotes: int
    average_rating: Decimal | None = Field(
        description="The quote-time rating: the average of the ratings given with its "
        "estimates, 1 to 5 (the delivered rating is in `delivered`)"
    )
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    prices: list[ServicePrice] = Field(description="Average quoted price per service")
    delivered: DeliveredFigures


class ContractorPage(Page):
    items: list[ContractorSummary]


class QuoteOut(BaseModel):
    position: int
    request_id: UUID
    deal_id: UUID
    service: str
    price: Decimal
    rating: int
    notes: str | None
    quoted_at: datetime
    quoted_by: str


class DeliveryOut(BaseModel):
    position: int
    request_id: UUID
    deal_id: UUID
    service: str
    contracted_on: date = Field(description="The day the deal was won: the job was ordered")
    lead_time_days: int = Field(description="Planned lead time (the estimate's)")
    planned_on: date = Field(description="contracted_on plus the lead time")
    completed_on: date
    actual_days: int = Field(description="Days from contracted_on to completed_on")
    days_late: int = Field(description="Days after planned_on; 0 when on time")
    overrun: bool
    rating: int = Field(description="The quality of the work delivered, 1 to 5")
    notes: str | None
    delivered_at: datetime = Field(description="When the delivery was recorded")
    delivered_by: str


class ContractorCard(ContractorSummary):
    history: list[QuoteOut] = Field(description="Its quotes, newest first (one page)")
    history_limit: int
    history_offset: int
    deliveries: list[DeliveryOut] = Field(
        description="Its delivered jobs, newest first (the same page as the history)"
    )


# --- alerts and client assignments ------------------------------------------------------


class RevenueCapLine(BaseModel):
    organisation: str
    name: str
    regime: str = Field(description="The tax regime (only capped ones are listed)")
    cap: Decimal = Field(description="The yearly revenue cap")
    booked: Decimal = Field(description="Invoiced in the year: deals' and projects' invoices")
    remaining: Decimal = Field(description="What the cap leaves")
    share: float = Field(description="booked / cap (0..1)")
    invoices: int
    deal_invoices: int
    project_invoices: int


class RevenueCapReport(BaseModel):
    year: int
    organisations: list[RevenueCapLine]


class AlertOut(BaseModel):
    alert_id: int = Field(description="The position of the event that raised it")
    kind: AlertKind
    subject_type: AlertSubject
    subject_id: UUID
    recipient: str
    detail: str
    due: date | None
    raised_at: datetime
    raised_by: str
    read: bool = Field(default=False, description="Whether its recipient marked it read")


class AlertPage(Page):
    items: list[AlertOut]
    unread: int = Field(
        default=0, description="How many of the alerts the filters match are unread"
    )


class UnreadAlerts(BaseModel):
    unread: int = Field(description="How many of the viewer's own alerts are unread")


class MarkAlertsReadRequest(BaseModel):
    """Which of the viewer's alerts to mark read: a list of ids, or every unread one up to
    a position (``up_to``), or, with neither, every unread one."""

    model_config = ConfigDict(extra="forbid")

    alert_ids: list[Annotated[int, Field(ge=1, le=2**62)]] | None = Field(
        default=None, min_length=1, max_length=500, description="The alerts' ids"
    )
    up_to: int | None = Field(
        default=None, ge=1, le=2**62, description="Every unread alert with an id up to this"
    )


class AlertsMarkedRead(BaseModel):
    username: str = Field(description="The reader")
    marked: list[int] = Field(description="The alerts this request marked read (new ones)")
    version: int = Field(description="The version of the reader's inbox stream")
    position: int = Field(description="Pass as min_position to read your write")


class ClientAssignmentOut(BaseModel):
    assignment_id: UUID
    company_id: str
    direction: str
    manager: str | None = Field(description="Who owns the client's direction now")
    status: AssignmentStatus
    requested_manager: str | None = Field(description="Who asks to take it, awaiting approval")
    requested_by: str | None
    approver: str | None = Field(description="Who was asked to approve")
    pending_because: Literal["monthly_cap", "held"] | None = Field(
        default=None,
        description="Why it waits: the requester's monthly cap of new clients, or another "
        "manager (manager) holds the direction",
    )
    decided_by: str | None
    comment: str | None
    month: str | None
    updated_at: datetime
    version: int


class ClientAssignmentPage(Page):
    items: list[ClientAssignmentOut]


# --- reports ----------------------------------------------------------------------------


class CountAmount(BaseModel):
    count: int
    amount: Decimal


class PipelineStage(CountAmount):
    stage: str
    name: str
    step: int


class PipelineFunnel(BaseModel):
    funnel: str
    name: str
    stages: list[PipelineStage] = Field(description="Open deals per stage, in funnel order")
    open: CountAmount
    won: CountAmount
    lost: CountAmount


class DealPipelineReport(BaseModel):
    manager: str | None
    created_from: datetime | None
    created_to: datetime | None
    funnels: list[PipelineFunnel]


class HandoffReportRow(BaseModel):
    request_id: UUID
    department: str
    deal_id: UUID
    deal_title: str | None
    company_name: str | None
    assignee: str | None = Field(description="Who took it")
    created_at: datetime
    taken_at: datetime | None
    take_seconds: float | None
    ready_at: datetime | None
    estimate_seconds: float | None
    price: Decimal | None
    status: HandoffStatus


class HandoffReportSummary(BaseModel):
    requests: int
    taken: int
    estimated: int
    average_take_seconds: float | None
    average_estimate_seconds: float | None
    total_price: Decimal


class HandoffReport(Page):
    items: list[HandoffReportRow]
    summary: HandoffReportSummary = Field(description="Over every request the filters match")


class PersonLoad(BaseModel):
    assignee: str = Field(description='A person, or "unassigned" for requests not taken')
    open_requests: int


class DepartmentLoad(BaseModel):
    department: str
    name: str
    open_requests: int
    by_status: dict[str, int] = Field(description="open (not taken), in_work, ready")
    people: list[PersonLoad]


class DepartmentLoadReport(BaseModel):
    departments: list[DepartmentLoad]


class OverrunRow(DeliveryOut):
    contractor_id: UUID
    contractor_name: str | None
    deal_title: str | None
    company_name: str | None
    manager: str | None = Field(description="The parent deal's manager")
    funnel: str | None = Field(description="The parent deal's funnel")
    won_at: datetime | None = Field(description="When the parent deal was won")


class OverrunTotals(DeliveredFigures):
    days_late: int = Field(description="Days late of every job the filters match, summed")


class ContractorOverrunReport(Page):
    items: list[OverrunRow] = Field(description="One per delivered job, latest completion first")
    totals: OverrunTotals = Field(description="Over every job the filters match")
