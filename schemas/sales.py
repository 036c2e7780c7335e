"""Response models of the sales pack (issue 16 §1): leads and sales for a period, proposals,
the average check, the conversion cohorts and the sales of delivered projects."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from schemas.leads import CountAmount, LeadSummary

Split = Literal["month", "funnel", "department", "source", "manager"]
"""How a report's rows are cut: by creation month, funnel, the responsible manager's
department (in the directory now), source or manager."""


# --- leads and sales for a period --------------------------------------------------------


class LeadsPeriodFigures(BaseModel):
    leads: CountAmount = Field(description="Leads created in the period and their amount")
    in_work: CountAmount = Field(description="Of them, open now (paused ones included)")
    new: CountAmount
    repeat: CountAmount
    non_quality: CountAmount
    paused: CountAmount = Field(description="Of them, paused now")


class SplitKey(BaseModel):
    key: str | None = Field(description="The split's value (None: not set)")


class LeadsPeriodRow(LeadsPeriodFigures, SplitKey):
    """The split's value first (the row's label), then its figures."""


class PauseReasonAmount(BaseModel):
    reason: str
    count: int
    amount: Decimal


class LeadsPeriodReport(BaseModel):
    """Leads created in the period, cut as asked; the rows add up to the totals."""

    funnel: str | None
    split: Split
    created_from: datetime | None
    created_to: datetime | None
    rows: list[LeadsPeriodRow]
    totals: LeadsPeriodFigures
    pause_reasons: list[PauseReasonAmount] = Field(description="Paused now, most leads first")
    in_work_items: list[LeadSummary] = Field(description="The leads in work, newest first")
    total: int = Field(description="How many leads are in work, over all pages")
    limit: int
    offset: int


# --- proposals --------------------------------------------------------------------------


class ProposalFigures(BaseModel):
    count: int
    amount: Decimal
    average: Decimal | None


class MonthDepartment(BaseModel):
    month: str
    department: str | None


class ProposalRow(ProposalFigures, MonthDepartment):
    pass


class ProposalSplitRow(ProposalFigures, SplitKey):
    pass


class ProposalsReport(BaseModel):
    """Deals' proposals (КП, each deal's current one) recorded in the period, per month
    and the deal manager's department."""

    funnel: str | None
    recorded_from: datetime | None
    recorded_to: datetime | None
    rows: list[ProposalRow]
    by_month: list[ProposalSplitRow]
    by_department: list[ProposalSplitRow]
    totals: ProposalFigures


# --- average check ----------------------------------------------------------------------


class AverageCheckFigures(BaseModel):
    projects: int
    amount: Decimal
    average: Decimal | None


class AverageCheckRow(AverageCheckFigures, SplitKey):
    pass


class AverageCheckReport(BaseModel):
    """The average value of the projects started in the period, cut as asked."""

    funnel: str | None
    split: Literal["month", "funnel", "department"]
    created_from: datetime | None
    created_to: datetime | None
    rows: list[AverageCheckRow]
    totals: AverageCheckFigures


# --- conversion cohorts -----------------------------------------------------------------


class StepTime(BaseModel):
    median_days: float | None
    p90_days: float | None


class CohortFigures(BaseModel):
    leads: int
    quality: int = Field(description="Found quality, or went on to a deal or a project")
    deals: int = Field(description="Became a deal, or a project directly")
    won: int = Field(description="Their deal won, or became a project directly")
    projects: int
    quality_share: float | None = Field(description="Share of the leads found quality")
    deal_share: float | None = Field(description="Share of the leads that became a deal")
    won_share: float | None = Field(description="Share of the leads whose deal was won")
    project_share: float | None = Field(description="Share of the leads that became a project")
    to_quality: StepTime = Field(description="Lead created → found quality")
    to_deal: StepTime = Field(description="Found quality (else created) → deal created")
    to_won: StepTime = Field(description="Deal created → deal won")
    to_project: StepTime = Field(description="Deal won (else lead created) → project created")


class Cohort(BaseModel):
    month: str
    funnel: str


class CohortRow(CohortFigures, Cohort):
    pass


class ConversionCohortsReport(BaseModel):
    """Leads created in the period as cohorts by creation month and funnel: how many
    reached each step and how long each step took (in days)."""

    funnel: str | None
    created_from: datetime | None
    created_to: datetime | None
    rows: list[CohortRow]
    by_month: list[CohortRow] = Field(description="Per month over the funnels ('*')")
    totals: CohortFigures


# --- sales of delivered projects ----------------------------------------------------------


class DeliveredMonth(BaseModel):
    month: int
    projects: int
    amount: Decimal
    last_year_projects: int
    last_year_amount: Decimal
    forecast_amount: Decimal | None = Field(
        description="For the months not over: last year's * the year's ratio (at least their sales)"
    )
    change_percent: Decimal | None


class BacktestPoint(BaseModel):
    made_at: str = Field(description="The month end the forecast was made at (YYYY-MM)")
    horizon: str = Field(description="The months it forecast (YYYY-MM..YYYY-MM)")
    forecast: Decimal
    actual: Decimal
    error_percent: Decimal | None


class DeliveredSalesReport(BaseModel):
    """Projects delivered (in the done status) per month of the year, the same months of
    last year beside them, and a forecast for the rest of the year."""

    year: int
    as_of: datetime
    funnel: str | None
    department: str | None
    months: list[DeliveredMonth]
    to_date_projects: int
    to_date_amount: Decimal
    last_year_to_date_amount: Decimal
    ratio: Decimal | None = Field(description="This year to date / last year's same months")
    forecast_year_amount: Decimal = Field(description="Delivered to date + forecast to year end")
    last_year_amount: Decimal
    method: str
    backtest: list[BacktestPoint]
    backtest_mape_percent: Decimal | None
