"""The workspace's cabinets: the manager's (their month: plan, % done, plan to date, deals
in work, client-base growth, the plan bar and the deal sums by stage) and the head of
sales' (plan, plan to date, fact, % done and open deals rolled up region → city →
manager, with one manager's open deals and hand-offs on drill-down).

Each page runs the API's own route function over the viewer's scoped read cursor, lays
its tables and charts out as the workbook does (:func:`workspace.reports.layout`), and its
download is the API's one Excel renderer over that same result. Heads and top management
set a plan from the page: the form stands for ``PUT /sales-plans/{manager}/{month}`` and
goes through the API's own command context and handler (the rule of who may is the
aggregate's; a refusal is shown beside the form).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from aggregates import sales_plans
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from aggregates.users import Principal, Role
from commands.context import CommandFailed, CommandResult, StreamNotFound
from commands.sales_plans import set_sales_plan
from read_api import excel
from read_api.access import read_models
from read_api.errors import BadRequestValue
from read_api.routes import cabinets as cabinet_routes
from read_api.routes.sales_plans import SellerFilters
from schemas.cabinets import ManagerCabinet, SalesCabinet
from workspace import i18n
from workspace.pages import (
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    _platform,
    command_context,
    may,
    render,
    require,
)
from workspace.report_columns import N_
from workspace.reports import Report, layout

router = APIRouter()

MANAGER = Report(
    "cabinet-manager",
    "/cabinets/manager",
    N_("Manager's cabinet"),
    ManagerCabinet,
    (),
    lambda p, c, who, v: cabinet_routes.manager_cabinet(
        p, c, who, v.get("manager") or None, v.get("month") or None
    ),
)
SALES = Report(
    "cabinet-sales",
    "/cabinets/sales",
    N_("Sales cabinet"),
    SalesCabinet,
    (),
    lambda p, c, who, v: cabinet_routes.sales_cabinet(
        p,
        c,
        who,
        SellerFilters(
            v.get("manager") or None,
            v.get("department") or None,
            v.get("region") or None,
            v.get("city") or None,
        ),
        v.get("month") or None,
    ),
)
PAGES = {"manager": MANAGER, "sales": SALES}
FILTERS = {"manager": ("manager", "month"), "sales": ("month", "region", "city", "manager")}
SET_PLAN = Operation("/sales-plans/{manager}/{month}", "set_plan")
SETTERS = frozenset({Role.HEAD, Role.TOP})
ACTIVITY_TABLES = frozenset(
    {
        "activity week",
        "coefficient",
        "overdue activities",
        "today activities",
        "next week plan",
    }
)
"""The manager's cabinet's activity sections: not generic tables on the page."""

TITLES = (
    N_("Plan, plan to date and fact"),
    N_("Deal sums by stage"),
    N_("Plan by region"),
    N_("plan bar"),
    N_("measure"),
    N_("plan"),
    N_("plan to date"),
    N_("fact"),
    N_("stages"),
    N_("regions"),
    N_("regions · cities"),
    N_("regions · cities · managers"),
    N_("cities"),
    N_("managers"),
    N_("drill down · deals"),
    N_("drill down · handoffs"),
)
"""The cabinets' table, column and chart titles, for the catalogues."""


def sections(principal: Principal) -> list[tuple[str, str]]:
    """The navigation entries of the cabinets the viewer may open."""
    items = []
    if may(principal, "GET", "/cabinets/manager") and principal.role is not Role.TOP:
        items.append((f"{PREFIX}/cabinets/manager", "My cabinet"))
    if may(principal, "GET", "/cabinets/sales") and principal.role is not Role.MANAGER:
        items.append((f"{PREFIX}/cabinets/sales", "Sales cabinet"))
    return items


def _values(request: Request, which: str) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip()[:200] for name in FILTERS[which]}


def _run(platform: Any, principal: Principal, report: Report, values: dict[str, str]) -> Any:
    with read_models(platform, principal) as cursor:
        return report.run(platform, cursor, principal, values)


def _report(principal: Principal, which: str) -> Report:
    report = PAGES.get(which)
    if report is None:
        raise PageNotFound
    require(principal, "GET", report.path)
    return report


def cabinet_page(
    request: Request,
    principal: Principal,
    which: str,
    failure: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    report = _report(principal, which)
    platform = _platform(request)
    values = _values(request, which)
    if failure is not None:
        values.update({k: v for k, v in failure["values"].items() if k in ("manager", "month")})
    context: dict[str, Any] = {
        "which": which,
        "report": report,
        "values": values,
        "error": None,
        "failure": failure,
        "may_set_plans": principal.role in SETTERS,
        "download": f"{PREFIX}/cabinets/{which}/excel?" + urlencode(values),
        "result": None,
    }
    try:
        result = _run(platform, principal, report, values)
    except BadRequestValue as exc:
        context["error"] = {"field": exc.field, "message": exc.message}
        return render(
            request, "cabinets/cabinet.html", context, status_code=400, principal=principal
        )
    except StreamNotFound:
        raise PageNotFound from None
    gettext = i18n.translations(i18n.language_of(request)).gettext
    context.update(layout(report, result, gettext))
    if which == "sales":  # the roll-up is drawn as one tree; the drill-down as tables
        drilled = bool(result.get("drill_down"))
        context["tables"] = [
            t for t in context["tables"] if drilled and t["name"].startswith("drill down")
        ]
    if which == "manager":  # the activity sections are drawn as on the activities page
        context["tables"] = [t for t in context["tables"] if t["parts"][0] not in ACTIVITY_TABLES]
        rules = platform.rules.activities
        context["groups"] = rules.groups
        context["type_names"] = {t.code: t.name for t in rules.types}
    context["result"] = result
    context["month"] = result.get("plate", {}).get("month") or result.get("month")
    return render(
        request, "cabinets/cabinet.html", context, status_code=status_code, principal=principal
    )


@router.get("/cabinets/{which}")
def cabinet(request: Request, principal: Viewer, which: str) -> HTMLResponse:
    return cabinet_page(request, principal, which)


@router.get("/cabinets/{which}/excel")
def cabinet_excel(request: Request, principal: Viewer, which: str) -> Response:
    """The cabinet as the API's workbook for the same filters and viewer."""
    report = _report(principal, which)
    platform = _platform(request)
    values = _values(request, which)
    try:
        result = _run(platform, principal, report, values)
    except StreamNotFound:
        raise PageNotFound from None
    except BadRequestValue:
        return cabinet_page(request, principal, which)
    filters = [(k, v) for k, v in values.items() if v]
    viewer = f"{principal.user} ({principal.role.value})"
    title = excel.Title(report.title, filters, platform.clock(), viewer)
    return Response(
        excel.render_report(report.model, result, title),
        media_type=excel.XLSX,
        headers={"Content-Disposition": f'attachment; filename="{report.slug}.xlsx"'},
    )


PLAN_FIELDS = ("manager", "month", "amount", "currency", "deals", "reason", "key", "back")


@router.post("/cabinets/plan", dependencies=[CsrfChecked])
async def plan_form(request: Request, principal: Viewer) -> Response:
    """The plan form: set or change a manager's plan for a month (heads, top). Accepted:
    back to the cabinet it was sent from; refused: that cabinet with the reason beside
    the form and what was typed kept."""
    require(principal, "PUT", SET_PLAN.path)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip()[:2000] for name in PLAN_FIELDS}
    back = values["back"] if values["back"] in PAGES else "manager"
    platform = _platform(request)

    def submit() -> CommandResult:
        manager, month = values["manager"], values["month"]
        deals: int | None = None
        if values["deals"]:
            if not values["deals"].isdigit():
                raise InvalidValue("deals", "'deals' must be a whole number")
            deals = int(values["deals"])
        body = {
            "amount": values["amount"],
            "currency": values["currency"] or platform.rules.sales.currency,
            "deals": deals,
            "reason": values["reason"],
        }
        ctx = command_context(
            request,
            principal,
            SET_PLAN,
            {"manager": manager, "month": month},
            f"sales-plan:{manager}:{month}",
            body,
            key=values["key"] or None,
            method="PUT",
        )
        command = sales_plans.SetSalesPlan(
            manager, month, values["amount"] or None, body["currency"], deals, values["reason"]
        )
        setter = sales_plans.Person(principal.user, principal.role.value, principal.department)
        return set_sales_plan(platform.store, command, setter, ctx)

    try:
        result = await run_in_threadpool(submit)
    except (DomainError, ValidationError, BadRequestValue, CommandFailed) as error:
        field = getattr(error, "field", None)
        rule = getattr(error, "rule", None)
        failure = {"message": str(error), "field": field, "rule": rule, "values": values}
        status = 403 if isinstance(error, NotPermitted) else 422
        status = 409 if isinstance(error, RuleViolation) else status
        return await run_in_threadpool(cabinet_page, request, principal, back, failure, status)
    await platform.projector.reached(result.position, platform.settings.read_wait_seconds)
    query = {"month": values["month"], "done": "plan"}
    if back == "manager":
        query["manager"] = values["manager"]
    return RedirectResponse(f"{PREFIX}/cabinets/{back}?" + urlencode(query), status_code=303)
