"""The delivery reports of issue 16 §2: the projects with their cost and margin, and the
check's growth from the lead to the money paid (each in Excel too, ``?format=xlsx``).

Periods are whole days (``from``/``to``, ISO dates, both included)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from queries import check_growth as growth_queries
from queries import project_costs as cost_queries
from queries.common import Filters
from read_api.deps import PlatformDep, ReadCursor
from read_api.errors import BadRequestValue
from read_api.routes.portfolio import DayPeriodDep, Limit, Offset, _check_status
from schemas.delivery import CheckGrowthReport, ProjectCostsReport

router = APIRouter(tags=["portfolio"])


@router.get("/reports/project-costs", response_model=ProjectCostsReport)
def project_costs_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: DayPeriodDep,
    group: Annotated[
        str | None, Query(description="Roll up by pm, department or month (of the start)")
    ] = None,
    pm: str | None = None,
    department: str | None = None,
    manager: str | None = None,
    status: Annotated[str | None, Query(description="A configured project status")] = None,
    project_id: UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Per project starting in the period (its planned start, else the day it was
    created), newest first: start and end (planned and actual), hours in each status,
    planned and actual hours, value, and cost — labour (each hour logged * the cost rate
    of its person in force that day) plus contractors (the accepted contractor estimates
    of its deal's hand-offs) — margin and margin %; rolled up by ``group`` (pm,
    department or month) and in total."""
    if group is not None and group not in cost_queries.GROUPS:
        raise BadRequestValue("group", f"must be one of: {', '.join(cost_queries.GROUPS)}")
    _check_status(platform, status)
    filters = Filters(
        equal={
            "pm": pm,
            "department": department,
            "manager": manager,
            "status": status,
            "project_id": None if project_id is None else str(project_id),
        }
    )
    chosen = cost_queries.CostFilters(filters, period.days)
    rules = platform.rules.project
    return cost_queries.project_costs(
        cursor, chosen, group, rules.done_status, platform.clock(), limit, offset
    )


@router.get("/reports/check-growth", response_model=CheckGrowthReport)
def check_growth_report(
    cursor: ReadCursor,
    period: DayPeriodDep,
    manager: str | None = None,
    source: Annotated[str | None, Query(description="The first contact's source")] = None,
    pm: str | None = None,
    department: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """How the check grew, per project created in the period (newest first): the lead's
    amount, the deal's amount, the project's value, invoiced and paid, and the growth
    from the lead's amount (and in %); per manager and per first-contact source (the
    lead's, carried to the project), and in total."""
    filters = Filters(equal={"manager": manager, "pm": pm, "department": department})
    return growth_queries.check_growth(cursor, filters, period.days, limit, offset, source)
