"""Queries of delivery, from the read models: the project portfolio for PMs and heads,
plan vs fact, people's load against the production calendar, deviations, and invoices
and payments for finance. Pass ``min_position`` from a command's answer to read your write.

Periods here are whole days (``from``/``to``, ISO dates, both included): the days hours
were logged for, invoices issued on and payments received on.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import UTC, date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from aggregates.users import Principal, Role
from event_store.codec import dumps_http
from queries import projects as project_queries
from queries.common import Filters
from queries.projects import Days, Expected, Span
from read_api.access import CurrentUser
from read_api.deps import PlatformDep, ReadCursor
from read_api.errors import BadRequestValue
from schemas.portfolio import (
    DeviationsReport,
    HealthLevel,
    PaymentsReport,
    PaymentStatus,
    PlanFactReport,
    PortfolioReport,
    ProjectPage,
    ResourceLoadReport,
)

router = APIRouter(tags=["portfolio"])

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(field: str, raw: str | None) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        if ISO_DAY.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise BadRequestValue(field, "must be an ISO date (2026-06-30)")


class DayPeriod:
    """The optional ``from`` / ``to`` days of a report, both included."""

    def __init__(
        self,
        day_from: Annotated[
            str | None, Query(alias="from", description="First day: ISO date")
        ] = None,
        day_to: Annotated[str | None, Query(alias="to", description="Last day: ISO date")] = None,
    ) -> None:
        self.start = parse_day("from", day_from)
        self.end = parse_day("to", day_to)
        if self.start and self.end and self.start > self.end:
            raise BadRequestValue("from", "must not be after 'to'")

    @property
    def days(self) -> Days:
        return Days(self.start, self.end)

    def or_month(self, today: date) -> Span:
        """The period, always bounded: without ``from`` and ``to``, the month of ``today``;
        with only one of them, the rest of its month on that side."""
        start = self.start or (self.end or today).replace(day=1)
        end = self.end or start.replace(day=monthrange(start.year, start.month)[1])
        return Span(start, end)


DayPeriodDep = Annotated[DayPeriod, Depends()]


def _today(platform: PlatformDep) -> date:
    return platform.clock().astimezone(UTC).date()


def _check_status(platform: PlatformDep, status: str | None) -> None:
    if status is not None and platform.rules.project.status(status) is None:
        known = ", ".join(s.id for s in platform.rules.project.statuses)
        raise BadRequestValue("status", f"unknown project status '{status}' (statuses: {known})")


@router.get("/projects", response_model=ProjectPage)
def list_projects(
    platform: PlatformDep,
    cursor: ReadCursor,
    pm: str | None = None,
    curator: str | None = None,
    department: str | None = None,
    status: Annotated[str | None, Query(description="A configured project status")] = None,
    health: Annotated[HealthLevel | None, Query(description="The health in force")] = None,
    payment_status: PaymentStatus | None = None,
    direction: str | None = None,
    category: str | None = None,
    company_id: str | None = None,
    deal_id: Annotated[UUID | None, Query(description="The won deal's project")] = None,
    lead_id: Annotated[UUID | None, Query(description="Projects of this lead's deals")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The portfolio, newest project first: each with its status, health (computed, manual
    and the one in force), PM, department, planned vs actual hours, % done, payment status
    and what is left to pay."""
    _check_status(platform, status)
    filters = Filters(
        equal={
            "pm": pm,
            "curator": curator,
            "department": department,
            "status": status,
            "health": health,
            "payment_status": payment_status,
            "direction": direction,
            "category": category,
            "company_id": company_id,
            "deal_id": None if deal_id is None else str(deal_id),
            "lead_id": None if lead_id is None else str(lead_id),
        }
    )
    items, total = project_queries.list_projects(cursor, filters, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/reports/portfolio", response_model=PortfolioReport)
def portfolio_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    pm: Annotated[str | None, Query(description="One PM's portfolio (default: all)")] = None,
    department: Annotated[str | None, Query(description="One department's portfolio")] = None,
) -> dict[str, Any]:
    """One PM's, one department's or the whole company's portfolio: projects and open
    (not done) projects per PM with their statuses, the status and health distributions,
    and each department's load (projects, planned and actual hours)."""
    filters = Filters(equal={"pm": pm, "department": department})
    report = project_queries.portfolio(cursor, filters, platform.rules.project)
    return {"pm": pm, "department": department, **report}


@router.get("/reports/plan-fact", response_model=PlanFactReport)
def plan_fact_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: DayPeriodDep,
    project_id: UUID | None = None,
    status: Annotated[str | None, Query(description="A configured project status")] = None,
    direction: str | None = None,
    category: str | None = None,
    department: str | None = None,
    pm: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Per project, newest first: planned hours (its tasks' plan), the part of the plan
    in the period (each task's planned hours spread over its working days, start to due:
    a task that only touches the period counts only its days in it), hours logged on days
    of the period (``from``/``to``; all days without them) and overall, and how far the
    period's hours are from its plan and the overall hours from the whole plan (hours and
    % of the plan); with the totals."""
    _check_status(platform, status)
    filters = Filters(
        equal={
            "project_id": None if project_id is None else str(project_id),
            "status": status,
            "direction": direction,
            "category": category,
            "department": department,
            "pm": pm,
        }
    )
    return project_queries.plan_fact(
        cursor, filters, period.days, limit, offset, platform.rules.project.calendar
    )


@router.get("/reports/resource-load", response_model=ResourceLoadReport)
def resource_load_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: DayPeriodDep,
    person: Annotated[str | None, Query(description="One person (listed with no hours too)")] = (
        None
    ),
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Per person, most hours first: the hours logged on days of the period and their
    tasks' planned hours that fall in it (each task's plan spread over its working days),
    per project, per task and in all, against the production calendar's working hours of
    the period (load %, logged and planned); per department its people, capacity (the
    calendar's hours of each) and efficiency (logged hours in % of the capacity). The
    period defaults to the current month; with only ``from`` (or ``to``) it runs to the
    end (from the start) of that month. Listed: everyone who logged or planned hours in
    the period."""
    # written as the model would write it (tests/test_portfolio.py checks): a page holds
    # thousands of task rows, which the model's validation would take longer over than
    # the query
    figures = resource_load_figures(platform, cursor, period, person, limit, offset)
    return Response(content=dumps_http(figures), media_type="application/json")


def resource_load_figures(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: DayPeriod,
    person: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The resource load's figures (:func:`resource_load_report`) as the query gives them
    (for the workspace and the Excel report)."""
    span = period.or_month(_today(platform))
    return project_queries.resource_load(
        cursor, platform.rules.project.calendar, span, person, limit, offset
    )


@router.get("/reports/deviations", response_model=DeviationsReport)
def deviations_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    period: DayPeriodDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """(a) People who logged fewer hours on days of the period than the production
    calendar asks (required, logged, missing), most missing first. The people are
    everyone who should have logged hours: the users of the delivering departments
    (``[calendar] departments`` of the rules) with a role that logs its own hours
    (``[calendar] roles``) active in the period, those who logged nothing included (0
    hours), and anyone else who has logged hours on a project the viewer sees on a day in
    or before the period (an entry since corrected to zero included). Of the directory,
    top management, analysts and auditors see everyone, a head their department's people,
    anyone else only themselves.
    (b) Project cards with mandatory fields still empty (as they are now, whatever the
    period): the project, its PM and which fields.

    The period defaults to the current month, as in the resource load; each list is paged
    with ``limit``/``offset`` and has its own total."""
    span = period.or_month(_today(platform))
    return project_queries.deviations(
        cursor, platform.rules.project.calendar, span, limit, offset, _expected(principal)
    )


def _expected(principal: Principal) -> Expected:
    """Who of the directory a viewer sees missing: everyone (top, analysts, auditors), a
    head their department's people, anyone else only themselves."""
    if principal.sees_everything:
        return Expected()
    if principal.role is Role.HEAD and principal.department:
        return Expected(department=principal.department)
    return Expected(person=principal.user)


@router.get("/reports/payments", response_model=PaymentsReport)
def payments_report(
    cursor: ReadCursor,
    period: DayPeriodDep,
    company_id: str | None = None,
    project_id: UUID | None = None,
    status: Annotated[
        PaymentStatus | None,
        Query(description="Payment status of the project's invoices issued in the period"),
    ] = None,
    payment_status: Annotated[
        PaymentStatus | None,
        Query(description="The project's payment status, measured against its amount"),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Per project with an invoice issued or a payment received in the period (by client,
    then title): invoiced and paid in the period, and what is still outstanding of the
    invoices issued in it; per client and in total. Without ``from``/``to``: all time, so
    the figures are each project's invoiced, paid and remaining. Beside them, the
    project's amount, its payment status and what is left to pay of its amount (now)."""
    filters = Filters(
        equal={
            "company_id": company_id,
            "project_id": None if project_id is None else str(project_id),
        }
    )
    return project_queries.payments(
        cursor, filters, period.days, status, limit, offset, payment_status
    )
