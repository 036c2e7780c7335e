"""Request and response models of the sales plans, the sales indicators and the cabinets."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import Strict
from schemas.limits import Code, LongText
from schemas.pipeline import Page

# --- plans -------------------------------------------------------------------------------


class SetSalesPlanRequest(Strict):
    """A manager's plan for the month of the path; a reason is required."""

    amount: Decimal = Field(description="The amount of won deals planned, ≥ 0, 2 decimals")
    currency: Code | None = Field(
        default=None, description="ISO 4217 code (default: [sales] currency, RUB)"
    )
    deals: int | None = Field(default=None, description="The number of deals to win (optional)")
    reason: LongText = Field(description="Why the plan is set or changed")


class SalesPlanAccepted(BaseModel):
    manager: str
    month: str
    version: int = Field(description="The plan's version: one per change")
    position: int = Field(description="Pass as min_position to read the new plan")


class SalesPlanOut(BaseModel):
    manager: str
    month: str
    amount: Decimal
    currency: str
    deals: int | None
    department: str | None
    set_by: str
    set_by_role: str | None
    set_at: datetime
    reason: str | None
    version: int


class SalesPlanPage(Page):
    items: list[SalesPlanOut]


class SalesPlanChange(BaseModel):
    version: int
    amount: Decimal
    currency: str
    deals: int | None
    previous_amount: Decimal | None
    previous_deals: int | None
    set_by: str
    set_by_role: str | None
    set_at: datetime
    reason: str | None
    position: int


class SalesPlanHistory(BaseModel):
    manager: str
    month: str
    changes: list[SalesPlanChange]


# --- indicators ----------------------------------------------------------------------------


class CountAmount(BaseModel):
    count: int
    amount: Decimal


class Count(BaseModel):
    count: int


class DayCount(BaseModel):
    day: date
    count: int
    amount: Decimal


class WeekCount(BaseModel):
    week: date = Field(description="The week's Monday")
    count: int
    amount: Decimal


class ManagerCountAmount(BaseModel):
    manager: str
    count: int
    amount: Decimal


class ManagerCount(BaseModel):
    manager: str
    count: int


class NewLeadsReport(BaseModel):
    """New leads (created in the period) per day, per week and per manager."""

    start: datetime = Field(description="The period's start")
    end: datetime = Field(description="The period's end")
    days: list[DayCount]
    weeks: list[WeekCount]
    managers: list[ManagerCountAmount]
    totals: CountAmount


class NewClient(BaseModel):
    company_id: str
    company_name: str | None
    manager: str
    first_lead_at: datetime
    lead_id: UUID


class NewClientsReport(Page):
    """Client-base growth: companies whose first lead ever was created in the period."""

    start: datetime = Field(description="The period's start")
    end: datetime = Field(description="The period's end")
    items: list[NewClient]
    managers: list[ManagerCount]
    totals: Count


class DormantClient(BaseModel):
    company_id: str
    company_name: str | None
    manager: str = Field(description="The manager of the deal invoiced last")
    last_invoice_on: date
    days_since: int
    invoices: int
    invoiced: Decimal


class DormantClientsReport(Page):
    """Clients with no invoice for more than ``after_days`` days (seed 003: two years)."""

    on: date
    after_days: int
    items: list[DormantClient]
    managers: list[ManagerCount]
    totals: Count


class ClientInvoices(BaseModel):
    company_id: str | None
    company_name: str | None
    manager: str
    count: int
    amount: Decimal


class InvoiceTotals(BaseModel):
    count: int
    amount: Decimal
    clients: int


class InvoicesReport(Page):
    """Invoices issued on deals in the period, per manager and per client."""

    start: date = Field(description="The first day of the period")
    end: date = Field(description="The last day of the period")
    managers: list[ManagerCountAmount]
    clients: list[ClientInvoices]
    totals: InvoiceTotals


class StageSum(BaseModel):
    funnel: str
    stage: str
    name: str
    count: int
    amount: Decimal


class DealsInWorkReport(BaseModel):
    """Open deals now: count and sum per stage and per manager."""

    stages: list[StageSum]
    managers: list[ManagerCountAmount]
    totals: CountAmount
