"""The sales pack (issue 16 §1): leads and sales for a period, proposals, the average
check, the conversion cohorts and the sales of delivered projects. Each route parses
its filters (422 naming a bad one) and calls one query over the viewer's scope."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from queries import conversion, sales, sales_stats
from read_api.deps import Period, PlatformDep, ReadCursor, parse_instant
from read_api.errors import BadRequestValue
from schemas.sales import (
    AverageCheckReport,
    ConversionCohortsReport,
    DeliveredSalesReport,
    LeadsPeriodReport,
    ProposalsReport,
    Split,
)

router = APIRouter(tags=["funnels and reports"])

FunnelQuery = Annotated[str | None, Query(description="One funnel id (default: all)")]


def lead_funnel(platform: PlatformDep, funnel: str | None) -> str | None:
    if funnel is not None and funnel not in platform.funnels:
        known = ", ".join(sorted(platform.funnels))
        raise BadRequestValue("funnel", f"unknown funnel '{funnel}' (known: {known})")
    return funnel


def deal_funnel(platform: PlatformDep, funnel: str | None) -> str | None:
    if funnel is not None and funnel not in platform.rules.deal_funnels:
        known = ", ".join(sorted(platform.rules.deal_funnels))
        raise BadRequestValue("funnel", f"unknown deal funnel '{funnel}' (known: {known})")
    return funnel


def any_funnel(platform: PlatformDep, funnel: str | None) -> str | None:
    """A project's funnel: the lead or deal funnel it was sold in."""
    known = {*platform.funnels, *platform.rules.deal_funnels}
    if funnel is not None and funnel not in known:
        raise BadRequestValue(
            "funnel", f"unknown funnel '{funnel}' (known: {', '.join(sorted(known))})"
        )
    return funnel


@router.get("/reports/leads-period", response_model=LeadsPeriodReport)
def leads_period_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: FunnelQuery = None,
    split: Annotated[Split, Query(description="Rows per month, funnel, ...")] = "month",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """Leads created in the period and the money in them, in work now (with the list),
    new and repeat, non-quality, paused (with reasons), per month, funnel, department
    (the manager's, in the directory now), source or manager."""
    return sales.leads_period(
        cursor,
        funnel=lead_funnel(platform, funnel),
        split=split,
        start=period.start,
        end=period.end,
        limit=limit,
        offset=offset,
    )


@router.get("/reports/proposals", response_model=ProposalsReport)
def proposals_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: Annotated[str | None, Query(description="One deal funnel id")] = None,
) -> dict[str, Any]:
    """The deals' proposals (КП) recorded in the period (``from``/``to`` on the date the
    proposal was recorded) per month and department: count, sum, average."""
    return sales.proposals(
        cursor, funnel=deal_funnel(platform, funnel), start=period.start, end=period.end
    )


@router.get("/reports/average-check", response_model=AverageCheckReport)
def average_check_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: FunnelQuery = None,
    split: Annotated[Literal["month", "funnel", "department"], Query()] = "month",
) -> dict[str, Any]:
    """The average value of the projects created in the period, per month, funnel or
    department."""
    return sales.average_check(
        cursor,
        funnel=any_funnel(platform, funnel),
        split=split,
        start=period.start,
        end=period.end,
    )


@router.get("/reports/conversion-cohorts", response_model=ConversionCohortsReport)
def conversion_cohorts_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: FunnelQuery = None,
) -> dict[str, Any]:
    """Lead → quality → deal → won → project per creation month and funnel, with the
    median and p90 days each step took."""
    return conversion.conversion_cohorts(
        cursor, funnel=lead_funnel(platform, funnel), start=period.start, end=period.end
    )


@router.get("/reports/delivered-sales", response_model=DeliveredSalesReport)
def delivered_sales_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="Default: as_of's")] = None,
    as_of: Annotated[
        str | None, Query(description="The forecast's moment: ISO date or timestamp (now)")
    ] = None,
    funnel: FunnelQuery = None,
    department: str | None = None,
) -> dict[str, Any]:
    """Projects delivered per month of the year beside last year's, and the forecast to
    the year's end (method and backtest in the answer)."""
    moment = parse_instant("as_of", as_of, end_of_day=True) or platform.clock()
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if department is not None and department not in platform.rules.departments:
        known = ", ".join(sorted(platform.rules.departments))
        raise BadRequestValue("department", f"unknown department '{department}' (known: {known})")
    return sales_stats.delivered_sales(
        cursor,
        done_status=platform.rules.project.done_status,
        year=year or moment.year,
        as_of=moment,
        funnel=any_funnel(platform, funnel),
        department=department,
    )
