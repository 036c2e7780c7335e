"""Response models of the delivery reports of issue 16 §2: the projects with cost and
margin, and the check's growth from the lead to the money paid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.portfolio import Page

CostGroup = Literal["pm", "department", "month"]

# --- cost and margin ----------------------------------------------------------------------


class StatusHours(BaseModel):
    status: str
    hours: Decimal = Field(description="Hours the project spent in the status (all visits)")


class ProjectCost(BaseModel):
    project_id: UUID
    title: str
    company_name: str
    pm: str | None
    department: str | None
    manager: str | None
    status: str
    month: str = Field(description="The month it starts (planned start, else created)")
    planned_start: date | None
    planned_end: date | None
    actual_start: date | None = Field(description="The first day hours were logged on it")
    actual_end: date | None = Field(description="The day it reached the done status")
    planned_hours: Decimal
    actual_hours: Decimal
    unpriced_hours: Decimal = Field(description="Logged before the person had a cost rate")
    value: Decimal = Field(description="The project's amount")
    labour_cost: Decimal = Field(description="Hours logged * the person's rate on the day")
    contractor_cost: Decimal = Field(description="The accepted contractor estimates' prices")
    cost: Decimal = Field(description="Labour + contractors")
    margin: Decimal = Field(description="Value - cost")
    margin_percent: Decimal | None = Field(description="Margin in % of the value")
    status_hours: list[StatusHours] = Field(description="In the order first entered")


class CostFigures(BaseModel):
    projects: int
    value: Decimal
    labour_cost: Decimal
    contractor_cost: Decimal
    cost: Decimal
    margin: Decimal
    margin_percent: Decimal | None
    planned_hours: Decimal
    actual_hours: Decimal
    unpriced_hours: Decimal


class CostKey(BaseModel):
    key: str | None = Field(description="The PM, department or month (YYYY-MM)")


class CostGroupRow(CostFigures, CostKey):
    """The key first, then the figures (the workbook's columns in this order)."""


class ProjectCostsReport(Page):
    period_from: date | None = Field(description="Projects starting from this day")
    period_to: date | None
    group: CostGroup | None
    items: list[ProjectCost] = Field(description="Newest first")
    groups: list[CostGroupRow] = Field(description="The roll-up by `group` (empty without)")
    totals: CostFigures = Field(description="Over every project the filters match")


# --- check growth ---------------------------------------------------------------------------


class CheckGrowthRow(BaseModel):
    project_id: UUID
    title: str
    company_name: str
    manager: str | None
    source: str | None = Field(description="The first contact's source (of the lead)")
    lead_id: UUID | None
    deal_id: UUID | None
    lead_amount: Decimal | None = Field(description="What the lead was worth")
    deal_amount: Decimal | None = Field(description="The deal's amount (its proposal)")
    value: Decimal = Field(description="The project's amount")
    invoiced: Decimal
    paid: Decimal
    growth: Decimal | None = Field(description="Value - lead amount")
    growth_percent: Decimal | None = Field(description="The growth in % of the lead amount")


class CheckGrowthFigures(BaseModel):
    projects: int
    compared: int = Field(description="Projects with a lead amount: the growth's base")
    lead_amount: Decimal = Field(description="Of the projects compared")
    deal_amount: Decimal
    value: Decimal
    invoiced: Decimal
    paid: Decimal
    growth: Decimal = Field(description="Value - lead amount, of the projects compared")
    growth_percent: Decimal | None


class ManagerKey(BaseModel):
    manager: str | None


class SourceKey(BaseModel):
    source: str | None


class ManagerGrowth(CheckGrowthFigures, ManagerKey):
    """The manager first, then the figures."""


class SourceGrowth(CheckGrowthFigures, SourceKey):
    """The source first, then the figures."""


class CheckGrowthReport(Page):
    period_from: date | None = Field(description="Projects created from this day")
    period_to: date | None
    items: list[CheckGrowthRow] = Field(description="Newest first")
    managers: list[ManagerGrowth]
    sources: list[SourceGrowth]
    totals: CheckGrowthFigures = Field(description="Over every project the filters match")
