"""The two cabinets: the manager's (``/cabinets/manager``) and the head of sales'
(``/cabinets/sales``); both answer ``?format=xlsx`` too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from aggregates.sales_plans import month_of
from aggregates.users import Role
from commands.context import StreamNotFound
from queries import cabinets
from read_api.access import CurrentUser
from read_api.deps import PlatformDep, ReadCursor
from read_api.errors import BadRequestValue
from read_api.routes.sales_plans import MonthQuery, Sellers, parse_month
from schemas.cabinets import ManagerCabinet, SalesCabinet

router = APIRouter(tags=["cabinets"])

SELLING = frozenset({Role.MANAGER, Role.HEAD})
DRILL_ROWS = 100


@router.get(
    "/cabinets/manager",
    response_model=ManagerCabinet,
    responses={
        404: {"description": "The manager is not in the viewer's scope (or not a seller)"},
        422: {"description": "A bad month, or no manager named by someone without a plan"},
    },
)
def manager_cabinet(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    manager: Annotated[
        str | None, Query(description="Whose cabinet (default: the viewer's own)")
    ] = None,
    month: MonthQuery = None,
) -> dict[str, Any]:
    """A manager's cabinet for a month (default: this one): the summary plate (plan, %
    done, plan to date, deals in work and their sum, client-base growth), the plan bar
    (plan, plan to date, fact) and deal sums by stage. A manager opens their own; a head
    their people's; top management anyone's."""
    if manager is None and principal.role not in SELLING:
        raise BadRequestValue("manager", "name the manager whose cabinet to open")
    target = manager or principal.user
    found = cabinets.people(cursor, principal, cabinets.Who(manager=target))
    if not found:
        raise StreamNotFound(f"manager {target} not found")
    now = platform.clock()
    today = now.date()
    chosen = parse_month(month) or month_of(today)
    rules = platform.rules
    return cabinets.manager_cabinet(
        cursor, found[0], chosen, today, rules.calendar, rules.deal_funnels, now, rules.activities
    )


@router.get(
    "/cabinets/sales",
    response_model=SalesCabinet,
    responses={404: {"description": "The drilled-down manager is not in the viewer's scope"}},
)
def sales_cabinet(
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    sellers: Sellers,
    month: MonthQuery = None,
) -> dict[str, Any]:
    """The head of sales' window for a month (default: this one): plan, plan to date,
    fact, % done and the open deals' sum, rolled up region → city → manager over the
    sellers in view (top management: everyone; a head: their department, within their
    region when their directory record names one; a manager: themselves). With
    ``manager``, that manager's open deals and open hand-off requests too."""
    found = cabinets.people(cursor, principal, sellers.who)
    today = platform.clock().date()
    chosen = parse_month(month) or month_of(today)
    answer = cabinets.sales_cabinet(cursor, found, chosen, today, platform.rules.calendar)
    drilled = sellers.who.manager
    if drilled is not None:
        if not found:
            raise StreamNotFound(f"manager {drilled} not found")
        answer["drill_down"] = cabinets.drill_down(cursor, drilled, DRILL_ROWS)
    return answer
