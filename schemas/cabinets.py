"""Response models of the manager's cabinet and the head of sales' cabinet."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.activities import ActivityOut, ActivityPlanSummary, CoefficientReport, WeeklyReport
from schemas.sales_plans import StageSum


class CabinetPlate(BaseModel):
    """The summary plate: the month's plan and how far it is done."""

    manager: str
    name: str
    month: str
    plan: Decimal | None = Field(description="The month's plan; null: none set")
    currency: str | None
    plan_deals: int | None
    plan_to_date: Decimal | None = Field(
        description="plan times working days elapsed / working days in the month"
    )
    fact: Decimal = Field(description="Won deals' amount in the month")
    won_deals: int
    done: float | None = Field(description="Share of the plan done: fact / plan")
    done_to_date: float | None = Field(description="Share of the plan to date done")
    deals_in_work: int
    deals_in_work_amount: Decimal
    new_clients: int = Field(description="Client-base growth: new clients in the month")


class PlanBar(BaseModel):
    measure: str = Field(description="plan, plan to date or fact")
    amount: Decimal


class CabinetActivities(BaseModel):
    items: list[ActivityOut]
    total: int = Field(description="How many there are (the list shows the first 20)")


class ManagerCabinet(BaseModel):
    """One manager's cabinet for a month: the summary plate (``plate``), plan vs plan to
    date and fact (the plan bar), deal sums by stage."""

    plate: CabinetPlate
    plan_bar: list[PlanBar]
    stages: list[StageSum]
    activity_week: WeeklyReport = Field(
        description="This week's activities: days * types, all / done, overdue, plan vs fact"
    )
    coefficient: CoefficientReport = Field(description="The activity coefficient this week")
    overdue_activities: CabinetActivities = Field(description="Overdue, oldest first")
    today_activities: CabinetActivities = Field(description="Today's activities by time")
    next_week_plan: ActivityPlanSummary | None = Field(
        description="The manager's personal plan for next week (None: not made yet)"
    )


class Figures(BaseModel):
    plan: Decimal | None
    plan_to_date: Decimal | None
    fact: Decimal
    won_deals: int
    done: float | None = Field(description="Share of the plan done: fact / plan")
    done_to_date: float | None = Field(description="Share of the plan to date done")
    open_deals: int
    open_amount: Decimal


class SellerRow(Figures):
    manager: str
    name: str
    role: str
    department: str | None
    region: str
    city: str
    currency: str | None
    plan_deals: int | None


class CityRow(Figures):
    city: str
    managers: list[SellerRow]


class RegionRow(Figures):
    region: str
    cities: list[CityRow]


class OpenDeal(BaseModel):
    deal_id: UUID
    title: str | None
    company_name: str | None
    funnel: str
    stage: str
    amount: Decimal | None
    created_at: datetime
    open_requests: int | None


class OpenHandoff(BaseModel):
    request_id: UUID
    deal_id: UUID
    department: str
    stage: str
    status: str
    assignee: str | None
    created_at: datetime


class DrillDown(BaseModel):
    manager: str
    deals: list[OpenDeal]
    handoffs: list[OpenHandoff]


class SalesCabinet(BaseModel):
    """Plan, plan to date, fact, % done and open deals rolled up region → city → manager;
    with ``manager``, that manager's open deals and hand-offs."""

    month: str
    on: date
    regions: list[RegionRow]
    totals: Figures
    drill_down: DrillDown | None = None
