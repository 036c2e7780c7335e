"""Monthly sales plans (set by heads and top management, read by everyone in scope) and
the sales indicators under ``/reports/...`` (each answers ``?format=xlsx`` too)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from aggregates import sales_plans
from aggregates.users import Principal
from commands.context import StreamNotFound
from commands.sales_plans import set_sales_plan
from leadledger.wiring import Platform
from queries import cabinets
from queries import sales_plans as plan_queries
from read_api.access import CurrentUser
from read_api.deps import (
    CommandHeadersDep,
    Period,
    PlatformDep,
    ReadCursor,
    mark_accepted,
)
from read_api.errors import BadRequestValue
from schemas.sales_plans import (
    DealsInWorkReport,
    DormantClientsReport,
    InvoicesReport,
    NewClientsReport,
    NewLeadsReport,
    SalesPlanAccepted,
    SalesPlanHistory,
    SalesPlanPage,
    SetSalesPlanRequest,
)

router = APIRouter(tags=["sales plans and indicators"])

Headers = CommandHeadersDep
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
MonthQuery = Annotated[str | None, Query(description="YYYY-MM")]
PeriodDep = Annotated[Period, Depends()]


def parse_month(raw: str | None, field: str = "month") -> str | None:
    """A ``YYYY-MM`` query value, or 422 naming the field."""
    if raw is None or raw == "":
        return None
    try:
        return sales_plans.month(raw, field)
    except Exception:
        raise BadRequestValue(field, "must be a month as YYYY-MM (e.g. 2026-03)") from None


def parse_day(field: str, raw: str | None) -> date | None:
    """An ISO date query value (``2026-01-31``), or 422 naming the field."""
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequestValue(field, "must be an ISO date (2026-01-31)") from None


class SellerFilters:
    """Whose figures: one manager, a department, a region or a city (within the scope)."""

    def __init__(
        self,
        manager: Annotated[str | None, Query(description="A manager (username)")] = None,
        department: Annotated[str | None, Query(description="Their department")] = None,
        region: Annotated[str | None, Query(description="Their region (directory)")] = None,
        city: Annotated[str | None, Query(description="Their city (directory)")] = None,
    ) -> None:
        self.who = cabinets.Who(manager, department, region, city)


Sellers = Annotated[SellerFilters, Depends()]


def sellers_in_view(cursor: Any, principal: Principal, filters: SellerFilters) -> list[str] | None:
    """The sellers whose figures the viewer asked for; None: everyone's records (top
    management, analysts and auditors with no filter)."""
    if principal.sees_everything and filters.who == cabinets.Who():
        return None
    return cabinets.names(cabinets.people(cursor, principal, filters.who))


def span_of(platform: Platform, period: Period) -> cabinets.Span:
    """The period asked for; by default the current month up to now."""
    now = platform.clock()
    start = period.start or datetime.combine(now.date().replace(day=1), time.min, UTC)
    end = period.end or now
    return cabinets.Span(start, end)


# --- plans ---------------------------------------------------------------------------------


@router.put(
    "/sales-plans/{manager}/{month}",
    response_model=SalesPlanAccepted,
    responses={
        403: {
            "description": "Rules plan_set_by_management (managers read, never change, "
            "their plan), plan_of_own_department, own_plan_by_management"
        },
        409: {"description": "The plan is this already (rule plan_unchanged)"},
        422: {"description": "A bad month, amount, currency, deals or reason; names the field"},
    },
)
def set_plan(
    manager: str,
    month: str,
    body: SetSalesPlanRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> dict[str, Any]:
    """Set or change a manager's sales plan for a month (``YYYY-MM``): the amount of won
    deals, its currency and optionally the number of deals, with the reason. A head sets
    the plans of their department's people, top management anyone's; a manager may read
    their plan but never change it (seed 004)."""
    request = body.model_dump(mode="json")
    ctx = headers.context(platform, f"sales-plan:{manager}:{month}", request)
    principal = headers.principal
    command = sales_plans.SetSalesPlan(
        manager,
        month,
        body.amount,
        body.currency or platform.rules.sales.currency,
        body.deals,
        body.reason,
    )
    setter = sales_plans.Person(principal.user, principal.role.value, principal.department)
    result = set_sales_plan(platform.store, command, setter, ctx)
    mark_accepted(result, response)
    return {
        "manager": manager,
        "month": month,
        "version": result.version,
        "position": result.position,
    }


@router.get("/sales-plans", response_model=SalesPlanPage)
def list_plans(
    cursor: ReadCursor,
    month: MonthQuery = None,
    manager: str | None = None,
    department: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Sales plans in the viewer's scope (a manager's own, a head's department's), the
    latest month first; filtered by month, manager and department."""
    filters = plan_queries.PlanFilters(parse_month(month), manager, department)
    items, total = plan_queries.list_plans(cursor, filters, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/sales-plans/{manager}/{month}/history",
    response_model=SalesPlanHistory,
    responses={404: {"description": "No plan of this manager and month in the viewer's scope"}},
)
def plan_history(manager: str, month: str, cursor: ReadCursor) -> dict[str, Any]:
    """Every setting and change of a plan: who, when, from what to what and why."""
    checked = parse_month(month) or month
    changes = plan_queries.plan_history(cursor, manager, checked)
    if not changes:
        raise StreamNotFound(f"no sales plan of {manager} for {checked}")
    return {"manager": manager, "month": checked, "changes": changes}


# --- indicators -----------------------------------------------------------------------------


@router.get("/reports/new-leads", response_model=NewLeadsReport)
def new_leads(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    period: PeriodDep,
    sellers: Sellers,
) -> dict[str, Any]:
    """New leads per day, per week (Monday) and per manager, in the period (default: this
    month) of the sellers in view."""
    managers = sellers_in_view(cursor, principal, sellers)
    return cabinets.new_leads(cursor, managers, span_of(platform, period))


@router.get("/reports/new-clients", response_model=NewClientsReport)
def new_clients(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    period: PeriodDep,
    sellers: Sellers,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Client-base growth: the companies whose first lead ever was created in the period
    (default: this month), per manager of that lead."""
    managers = sellers_in_view(cursor, principal, sellers)
    return cabinets.new_clients(cursor, managers, span_of(platform, period), limit, offset)


@router.get("/reports/dormant-clients", response_model=DormantClientsReport)
def dormant_clients(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    sellers: Sellers,
    on: Annotated[
        str | None, Query(description="The day to judge on, an ISO date (default: today)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Clients with no invoice for more than ``[sales] dormant_after_days`` days (seed
    003: two years): invoiced before, none since; the longest asleep first."""
    managers = sellers_in_view(cursor, principal, sellers)
    day = parse_day("on", on) or platform.clock().date()
    after = platform.rules.sales.dormant_after_days
    return cabinets.dormant_clients(cursor, managers, day, after, limit, offset)


@router.get("/reports/invoices", response_model=InvoicesReport)
def invoices(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    period: PeriodDep,
    sellers: Sellers,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Invoices issued on deals in the period (their issue day; default: this month), per
    manager and per client."""
    managers = sellers_in_view(cursor, principal, sellers)
    span = span_of(platform, period)
    return cabinets.invoices(cursor, managers, span.start.date(), span.end.date(), limit, offset)


@router.get("/reports/deals-in-work", response_model=DealsInWorkReport)
def deals_in_work(
    platform: PlatformDep, cursor: ReadCursor, principal: CurrentUser, sellers: Sellers
) -> dict[str, Any]:
    """Open deals now: count and sum per stage (funnel order) and per manager."""
    managers = sellers_in_view(cursor, principal, sellers)
    return cabinets.deals_in_work(cursor, managers, platform.rules.deal_funnels)
