"""Response models of the portfolio queries: the project list and the reports of PMs,
heads of department, analysts and finance (all from read models)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

HealthLevel = Literal["good", "some_difficulties", "big_difficulties"]
PaymentStatus = Literal["not_paid", "partially_paid", "paid"]


class Page(BaseModel):
    total: int = Field(description="How many match the filters, over all pages")
    limit: int
    offset: int


# --- the portfolio list -----------------------------------------------------------------


class ProjectSummary(BaseModel):
    project_id: UUID
    title: str
    company_name: str
    company_id: str | None
    amount: Decimal
    lead_id: UUID | None = Field(description="The lead its deal came from, if any")
    deal_id: UUID | None = Field(description="The won deal it was created for, if any")
    status: str
    status_entered_at: datetime
    health: HealthLevel = Field(description="The manual health while one is set, else computed")
    computed_health: HealthLevel
    computed_reasons: list[str]
    manual_health: HealthLevel | None = Field(description="Set by the PM, until cleared")
    manual_comment: str | None
    pm: str | None
    curator: str | None
    department: str | None
    direction: str | None
    category: str | None
    planned_start: date | None
    planned_end: date | None
    planned_hours: Decimal = Field(description="Its tasks' planned hours")
    actual_hours: Decimal = Field(description="Hours logged on it, as corrected")
    percent_done: float = Field(description="Tasks' % done weighted by their planned hours")
    tasks: int
    tasks_done: int
    invoiced: Decimal
    paid: Decimal
    remaining: Decimal = Field(
        description="Left to pay of the project's amount: amount - paid, never below 0 "
        "(of what was invoiced while the amount is 0)"
    )
    payment_status: PaymentStatus = Field(
        description="Measured against the project's amount (against what was invoiced while "
        "its amount is 0)"
    )
    invoiced_unpaid: Decimal = Field(description="Invoiced and not paid yet")
    payment_measured_against: Literal["amount", "invoiced"]
    empty_mandatory_fields: list[str]
    created_at: datetime
    updated_at: datetime
    version: int
    billing_version: int = Field(
        description="Its billing's version (0: no invoice yet): If-Match of invoices and payments"
    )


class ProjectPage(Page):
    items: list[ProjectSummary]


# --- the portfolio report ---------------------------------------------------------------


class StatusCount(BaseModel):
    status: str
    name: str
    projects: int


class HealthCount(BaseModel):
    health: HealthLevel
    projects: int


class Load(BaseModel):
    projects: int
    open_projects: int = Field(description="Not done")
    planned_hours: Decimal
    actual_hours: Decimal


class PmLoad(Load):
    pm: str | None = Field(description="null: projects without a PM")
    by_status: list[StatusCount]
    by_health: list[HealthCount]


class DepartmentProjects(Load):
    department: str | None = Field(description="null: projects without a department")


class PaymentStatusCount(BaseModel):
    payment_status: PaymentStatus
    projects: int


class PortfolioPayments(BaseModel):
    amount: Decimal = Field(description="The projects' amounts")
    paid: Decimal
    remaining: Decimal = Field(description="Left to pay of their amounts")
    invoiced_unpaid: Decimal = Field(description="Invoiced and not paid yet")
    by_status: list[PaymentStatusCount] = Field(
        description="Payment status measured against each project's amount"
    )


class PortfolioReport(Load):
    pm: str | None
    department: str | None
    by_status: list[StatusCount] = Field(description="Every status, in kanban order")
    by_health: list[HealthCount] = Field(description="The health in force")
    payments: PortfolioPayments
    pms: list[PmLoad] = Field(description="Most open projects first")
    departments: list[DepartmentProjects]


# --- plan vs fact -----------------------------------------------------------------------


class PlanFactRow(BaseModel):
    project_id: UUID
    title: str
    company_name: str
    pm: str | None
    department: str | None
    direction: str | None
    category: str | None
    status: str
    planned_hours: Decimal
    period_planned_hours: Decimal = Field(
        description="The part of the plan in the period: each task's plan spread over its "
        "working days"
    )
    period_hours: Decimal = Field(description="Logged on days of the period")
    period_deviation_percent: Decimal | None = Field(
        description="Logged in the period against its part of the plan, in % (+ over)"
    )
    actual_hours: Decimal = Field(description="Logged overall")
    deviation_hours: Decimal = Field(description="Actual overall minus planned")
    deviation_percent: Decimal | None = Field(
        description="The deviation in % of the plan; null when nothing is planned"
    )


class PlanFactTotals(BaseModel):
    projects: int
    planned_hours: Decimal
    period_planned_hours: Decimal
    period_hours: Decimal
    period_deviation_percent: Decimal | None
    actual_hours: Decimal
    deviation_hours: Decimal
    deviation_percent: Decimal | None


class PlanFactReport(Page):
    period_from: date | None
    period_to: date | None
    items: list[PlanFactRow]
    totals: PlanFactTotals = Field(description="Over every project the filters match")


# --- people's hours ---------------------------------------------------------------------


class ProjectHours(BaseModel):
    project_id: UUID
    title: str | None
    hours: Decimal = Field(description="Logged on days of the period")
    planned_hours: Decimal = Field(
        default=Decimal(0), description="The person's tasks' plan that falls in the period"
    )


class TaskHours(BaseModel):
    project_id: UUID
    project: str | None
    task_id: str | None = Field(description="null: hours logged on the project, on no task")
    title: str | None
    planned_hours: Decimal = Field(description="The task's plan that falls in the period")
    logged_hours: Decimal = Field(description="Logged on days of the period")


class PersonLoad(BaseModel):
    person: str
    logged_hours: Decimal
    planned_hours: Decimal = Field(
        default=Decimal(0),
        description="Their tasks' plan that falls in the period (spread over working days)",
    )
    calendar_hours: Decimal = Field(description="What the production calendar asks")
    load_percent: Decimal | None = Field(description="Logged in % of the calendar's hours")
    planned_load_percent: Decimal | None = Field(
        default=None, description="Planned in % of the calendar's hours"
    )
    projects: list[ProjectHours] = Field(description="Most hours first")
    tasks: list[TaskHours] = Field(default_factory=list, description="By project and task")


class DepartmentEfficiency(BaseModel):
    department: str | None
    people: int
    capacity_hours: Decimal = Field(description="The calendar's hours of the period, each")
    logged_hours: Decimal
    planned_hours: Decimal
    efficiency_percent: Decimal | None = Field(description="Logged in % of the capacity")


class ResourceLoadReport(Page):
    period_from: date
    period_to: date
    calendar_hours: Decimal
    items: list[PersonLoad] = Field(description="Most hours first")
    departments: list[DepartmentEfficiency] = Field(
        default_factory=list, description="Efficiency: logged hours / calendar capacity"
    )


class PersonShortfall(BaseModel):
    person: str
    department: str | None = Field(description="From the user directory (null: not in it)")
    required_hours: Decimal
    logged_hours: Decimal
    missing_hours: Decimal


class PersonShortfallPage(Page):
    items: list[PersonShortfall] = Field(description="Most hours missing first")


class EmptyCard(BaseModel):
    project_id: UUID
    title: str
    pm: str | None
    department: str | None
    status: str
    empty_mandatory_fields: list[str]


class EmptyCardPage(Page):
    items: list[EmptyCard] = Field(description="Newest project first")


class DeviationsReport(BaseModel):
    period_from: date
    period_to: date
    required_hours: Decimal = Field(description="The production calendar's hours of the period")
    people: PersonShortfallPage
    cards: EmptyCardPage


# --- invoices and payments --------------------------------------------------------------


class ProjectPayments(BaseModel):
    project_id: UUID
    title: str
    company_id: str | None
    company_name: str
    pm: str | None
    invoices: int = Field(description="Issued in the period")
    invoiced: Decimal = Field(description="Issued in the period")
    payments: int = Field(description="Received in the period")
    paid: Decimal = Field(description="Received in the period, on any of its invoices")
    outstanding: Decimal = Field(description="Still to pay of the invoices issued in the period")
    status: PaymentStatus | None = Field(
        description="Of the invoices issued in the period; null when none was"
    )
    amount: Decimal = Field(description="The project's amount")
    payment_status: PaymentStatus = Field(
        description="The project's, measured against its amount (now, whatever the period)"
    )
    remaining: Decimal = Field(description="Left to pay of the project's amount (now)")


class ClientPayments(BaseModel):
    company_id: str | None
    company_name: str
    projects: int
    invoiced: Decimal
    paid: Decimal
    outstanding: Decimal
    remaining: Decimal = Field(description="Left to pay of the projects' amounts (now)")


class PaymentTotals(BaseModel):
    projects: int
    invoiced: Decimal
    paid: Decimal
    outstanding: Decimal
    remaining: Decimal = Field(description="Left to pay of the projects' amounts (now)")


class PaymentsReport(Page):
    period_from: date | None
    period_to: date | None
    items: list[ProjectPayments] = Field(description="By client, then title")
    clients: list[ClientPayments]
    totals: PaymentTotals
