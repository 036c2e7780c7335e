"""Request and response models of the project and billing commands and the project card."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import HistoryEntry, Strict
from schemas.limits import (
    MAX_ACT_ITEMS,
    MAX_DEPENDENCIES,
    MAX_LAUNCH_SERVICES,
    Code,
    LongText,
    Name,
)

Health = Literal["good", "some_difficulties", "big_difficulties"]


class CreateProjectRequest(Strict):
    """A project started directly (a won deal gets its project by itself)."""

    title: Name
    company_name: Name
    company_id: Code | None = None
    amount: Decimal = Field(default=Decimal(0), description="≥ 0, 2 decimals")
    department: Code | None = None
    direction: Code | None = None
    category: Code | None = None
    pm: Code | None = None
    curator: Code | None = None
    planned_start: date | None = None
    planned_end: date | None = None


class ProjectCardRequest(Strict):
    """Only the fields sent are changed; a field sent as null is cleared (optional ones)."""

    title: Name | None = None
    amount: Decimal | None = None
    manager: Code | None = None
    department: Code | None = None
    direction: Code | None = None
    category: Code | None = None
    pm: Code | None = None
    curator: Code | None = None
    planned_start: date | None = None
    planned_end: date | None = None


class ProjectStatusRequest(Strict):
    status: Code = Field(description="A configured status (see GET /project-statuses)")


class TaskRequest(Strict):
    task_id: Code = Field(description="The task's id within the project, chosen by the client")
    title: Name
    assignee: Code | None = None
    planned_hours: Decimal = Field(default=Decimal(0), description="≥ 0")
    start: date | None = None
    due: date | None = None
    depends_on: list[Code] = Field(
        default_factory=list, max_length=MAX_DEPENDENCIES, description="Ids of earlier tasks"
    )


class TaskUpdateRequest(Strict):
    """Only the fields sent are changed."""

    title: Name | None = None
    assignee: Code | None = None
    planned_hours: Decimal | None = None
    start: date | None = None
    due: date | None = None
    depends_on: list[Code] | None = Field(default=None, max_length=MAX_DEPENDENCIES)
    percent_done: int | None = Field(default=None, description="0 to 100")


class HoursRequest(Strict):
    person: Code | None = Field(default=None, description="Defaults to the authenticated user")
    day: date
    hours: Decimal = Field(description="> 0; a person's day holds at most 24 across projects")
    task_id: Code | None = None


class HoursCorrectionRequest(Strict):
    hours: Decimal = Field(description="The entry's right hours; 0 withdraws it")
    reason: LongText


class HealthRequest(Strict):
    level: Health
    comment: LongText


class ProjectInvoiceRequest(Strict):
    number: Code
    amount: Decimal = Field(description="> 0, 2 decimals")
    due_date: date
    issued_on: date | None = Field(default=None, description="Defaults to today (UTC)")
    organisation: Code | None = Field(
        default=None,
        description="The issuing organisation (rules.toml): held to its services and, on "
        "the simplified-tax regime, booked against its yearly revenue cap",
    )


class PaymentRequest(Strict):
    amount: Decimal = Field(description="> 0; at most what is left of the invoice")
    paid_on: date


class ServiceLaunchIn(Strict):
    name: Name = Field(description="A service of the won deal's proposal")
    assignee: Code | None = None


class LaunchRequest(Strict):
    services: list[ServiceLaunchIn] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LAUNCH_SERVICES,
        description="The services to launch; default: every service of the proposal not "
        "launched yet",
    )


class ActRequest(Strict):
    number: Code = Field(description="Unique within the project")
    act_date: date = Field(alias="date", description="The act's day (not in the future)")
    amount: Decimal = Field(
        description="> 0, 2 decimals; with the invoice's other acts at most its amount"
    )
    services: list[Name] = Field(
        default_factory=list, max_length=MAX_ACT_ITEMS, description="Launched services covered"
    )
    task_ids: list[Code] = Field(
        default_factory=list, max_length=MAX_ACT_ITEMS, description="Tasks covered"
    )
    invoice_number: Code | None = Field(
        default=None, description="The project's invoice the act is recorded on"
    )


class ProjectAccepted(BaseModel):
    project_id: UUID
    version: int
    position: int


class HoursAccepted(ProjectAccepted):
    entry_id: UUID


class BillingAccepted(BaseModel):
    project_id: UUID
    billing_version: int
    position: int


class TaskOut(BaseModel):
    task_id: str
    title: str
    assignee: str | None
    planned_hours: Decimal
    actual_hours: Decimal
    start: date | None
    due: date | None
    depends_on: list[str]
    percent_done: int
    completed_at: datetime | None


class TimeEntryOut(BaseModel):
    entry_id: UUID
    person: str
    task_id: str | None
    day: date
    hours: Decimal


class InvoiceOut(BaseModel):
    number: str
    amount: Decimal
    due_date: date | None = Field(description="null for an invoice carried from the won deal")
    issued_on: date
    deal_id: UUID | None = Field(description="The won deal it was carried from, if any")
    organisation: str | None = Field(description="The issuing organisation, when named")
    prepayment: bool
    paid: Decimal
    remaining: Decimal
    status: Literal["not_paid", "partially_paid", "paid"]
    overdue: bool
    acted: Decimal = Field(default=Decimal(0), description="The amount of its acts")
    acts: list[str] = Field(default_factory=list, description="Its acts' numbers")


class PaymentsOut(BaseModel):
    status: Literal["not_paid", "partially_paid", "paid"] = Field(
        description="Measured against the project's amount (against what was invoiced "
        "while its amount is 0)"
    )
    amount: Decimal = Field(description="The project's amount")
    measured_against: Literal["amount", "invoiced"]
    invoiced: Decimal
    paid: Decimal
    remaining: Decimal = Field(description="Amount - paid, never below 0")
    invoiced_unpaid: Decimal = Field(description="Invoiced and not paid yet")
    invoices: list[InvoiceOut]


class LaunchedServiceOut(BaseModel):
    service: str
    task_id: str
    price: Decimal
    planned_hours: Decimal


class ActOut(BaseModel):
    number: str
    act_date: date
    amount: Decimal
    task_ids: list[str]
    services: list[str]
    invoice_number: str | None
    recorded_at: datetime
    recorded_by: str


class HealthOut(BaseModel):
    effective: Health
    computed: Health
    computed_reasons: list[str]
    manual: Health | None
    manual_comment: str | None
    manual_set_by: str | None
    manual_set_at: datetime | None


class ProjectCostComponent(BaseModel):
    name: str
    amount: Decimal


class ProjectDetail(BaseModel):
    project_id: UUID
    title: str
    company_name: str
    company_id: str | None
    amount: Decimal
    lead_id: UUID | None
    deal_id: UUID | None
    funnel: str | None
    manager: str | None
    department: str | None
    direction: str | None
    category: str | None
    pm: str | None
    curator: str | None
    planned_start: date | None
    planned_end: date | None
    status: str
    status_entered_at: datetime
    empty_mandatory_fields: list[str]
    tasks: list[TaskOut]
    time_entries: list[TimeEntryOut]
    planned_hours: Decimal
    actual_hours: Decimal
    percent_done: float
    health: HealthOut
    payments: PaymentsOut
    launched: list[LaunchedServiceOut] = Field(
        default_factory=list, description="Services of the proposal launched into work"
    )
    acts: list[ActOut] = Field(default_factory=list, description="Acts of completed work")
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int
    billing_version: int = Field(
        description="The version of the project's billing (0: no invoice yet); If-Match of "
        "its invoices and payments names it"
    )
    currency: str = Field(default="RUB", description="ISO 4217 code of the amount's currency")
    contact: str | None = Field(default=None, description="The client's contact (from the lead)")
    source: str | None = Field(default=None, description="Where the lead came from")
    need_maturity: str | None = Field(default=None, description="From the lead's card")
    expert: str | None = Field(default=None, description="The lead's expert")
    description: str | None = Field(default=None, description="From the lead's card")
    answer_due: date | None = Field(default=None, description="The lead's answer date")
    cost_components: list[ProjectCostComponent] = Field(
        default_factory=list, description="The lead's cost breakdown when the project began"
    )


class ProjectHistoryEntry(HistoryEntry):
    stream: Literal["project", "billing"] = Field(
        description="The record the event is on: the project, or its billing (invoices and "
        "payments); ``version`` is that record's"
    )


class ProjectHistory(BaseModel):
    id: UUID
    events: list[ProjectHistoryEntry]


class ProjectStatusOut(BaseModel):
    id: str
    name: str
    time_limit_hours: float | None
    stops_clock: bool
