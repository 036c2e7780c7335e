"""The workspace's reports: every report of the API as a page (its filters as a GET form,
its tables as the workbook lays them out, a chart where the workbook has one) with
"Download Excel"; the read-model exports (CSV, Parquet, Excel) for analysts; the history
search and chain verification for auditors.

A report page runs the API's own route function for the report (the one place its
parameters are checked and its query is called) over the viewer's scoped read cursor,
and its download renders that same result with the API's one Excel renderer
(:func:`read_api.excel.render_report`): the numbers on the page, in the workbook and in
the JSON answer are the same. The download is a workspace route under the session rather
than the JSON API taking the session cookie, so the API stays bearer-only (no ambient
cookie credential, hence no cross-site request risk, on the API).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import duckdb
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from starlette.responses import FileResponse

from aggregates.users import Principal
from commands.context import StreamNotFound
from event_store.chain import verify
from leadledger.wiring import Platform
from queries import project_costs
from queries.leads import leads_per_manager
from read_api import excel
from read_api.access import VISIBLE_IDS, read_models
from read_api.deps import Period
from read_api.errors import BadRequestValue
from read_api.routes import activities as activity_routes
from read_api.routes import companies as company_routes
from read_api.routes import deals as deal_routes
from read_api.routes import (
    delivery,
    pipeline,
    portfolio,
    process_map,
    projects,
    reports,
    sales,
    status_time,
)
from read_api.routes import directories as directory_routes
from read_api.routes import exports as export_routes
from read_api.routes import leads as lead_routes
from read_api.routes import sales_plans as sales_plan_routes
from schemas.activities import CallsReport, ClientsReport, CoefficientReport
from schemas.companies import DealVolumeReport
from schemas.delivery import CheckGrowthReport, ProjectCostsReport
from schemas.directories import SignatoriesReport
from schemas.leads import FunnelReport, PausedLeadsReport
from schemas.pipeline import (
    ContractorOverrunReport,
    DealPipelineReport,
    DepartmentLoadReport,
    HandoffReport,
    RevenueCapReport,
)
from schemas.portfolio import (
    DeviationsReport,
    PaymentsReport,
    PlanFactReport,
    PortfolioReport,
    ResourceLoadReport,
)
from schemas.process_map import ProcessMap
from schemas.sales import (
    AverageCheckReport,
    ConversionCohortsReport,
    DeliveredSalesReport,
    LeadsPeriodReport,
    ProposalsReport,
)
from schemas.sales_plans import (
    DealsInWorkReport,
    DormantClientsReport,
    InvoicesReport,
    NewClientsReport,
    NewLeadsReport,
)
from schemas.status_time import StatusTimePage, StatusTimeSummary
from workspace import i18n
from workspace.pages import (
    PREFIX,
    PageNotFound,
    Viewer,
    _platform,
    may,
    offset_of,
    pager,
    render,
    require,
)
from workspace.report_columns import N_

ROWS = 50
"""Rows a paged report shows on a page: a page as the API answers it by default, from the
page's ``offset`` (the download has the same rows)."""
NUMERIC = frozenset({"money", "int", "float", "share"})

Values = Mapping[str, str]
PAGING = frozenset({"limit", "offset"})
"""Summary fields of the paging only (the page's pager shows them)."""


@dataclass(frozen=True)
class Filter:
    """One field of a report's GET form: its query name, label msgid and input kind
    (``text``, ``date``, ``datetime``, ``check``, ``year`` or ``choice`` over ``options``)."""

    name: str
    label: str
    kind: str = "text"
    options: str = ""


@dataclass(frozen=True)
class Report:
    """A report page: its slug, the API path whose rules apply, its title msgid, the
    response model, its filters, and how to run the API's route for it."""

    slug: str
    path: str
    title: str
    model: type[BaseModel]
    filters: tuple[Filter, ...]
    run: Callable[[Platform, duckdb.DuckDBPyConnection, Principal, Values], dict[str, Any]]
    highlight: str = ""
    defaults: Callable[[Platform], dict[str, str]] = field(default=lambda _: {})
    graph: Callable[[dict[str, Any], Callable[[str], str]], dict[str, Any]] | None = None
    """A drawn graph of the result (ECharts graph series) shown before the other charts."""
    tiles: tuple[str, ...] = ()
    """Summary figures shown as tiles above the chart (their column titles)."""


def _text(values: Values, name: str) -> str | None:
    value = values.get(name, "").strip()
    return value or None


def _uuid(values: Values, name: str) -> UUID | None:
    raw = _text(values, name)
    try:
        return None if raw is None else UUID(raw)
    except ValueError:
        raise BadRequestValue(name, "must be an id (a UUID)") from None


def _year(values: Values, name: str) -> int | None:
    raw = _text(values, name)
    if raw is None:
        return None
    if not raw.isdigit() or not 2000 <= int(raw) <= 2100:
        raise BadRequestValue(name, "must be a year from 2000 to 2100")
    return int(raw)


def _offset(values: Values) -> int:
    """The page's first row (``offset``, kept beside the filters in the page's links)."""
    return offset_of(values.get("offset"))


def _period(values: Values) -> Period:
    return Period(_text(values, "from"), _text(values, "to"))


def _days(values: Values) -> portfolio.DayPeriod:
    return portfolio.DayPeriod(_text(values, "from"), _text(values, "to"))


def _kind(values: Values) -> Any:
    kind = values.get("kind") or "lead"
    if kind not in ("lead", "deal", "project"):
        raise BadRequestValue("kind", "must be lead, deal or project")
    return kind


PERIOD = (Filter("from", N_("From"), "date"), Filter("to", N_("To"), "date"))
STATUS_TIME = (
    Filter("kind", N_("Of"), "choice", "kinds"),
    Filter("as_of", N_("As of"), "datetime"),
    Filter("funnel", N_("Funnel")),
    Filter("manager", N_("Manager")),
    Filter("over_limit_only", N_("Only over the limit"), "check"),
)


def _one_of(values: Values, name: str, allowed: tuple[str, ...]) -> Any:
    value = _text(values, name) or allowed[0]
    if value not in allowed:
        raise BadRequestValue(name, f"must be one of {', '.join(allowed)}")
    return value


LEAD_SPLITS = ("month", "funnel", "department", "source", "manager")
PROJECT_SPLITS = ("month", "funnel", "department")
COHORT_TILES = (
    "totals leads",
    "totals quality share",
    "totals deal share",
    "totals won share",
    "totals project share",
)


def _status_time_args(values: Values) -> dict[str, Any]:
    return {
        "kind": _kind(values),
        "as_of": _text(values, "as_of"),
        "funnel": _text(values, "funnel"),
        "manager": _text(values, "manager"),
        "over_limit_only": bool(_text(values, "over_limit_only")),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "funnel",
        "/reports/funnel",
        N_("Funnel"),
        FunnelReport,
        (Filter("funnel", N_("Funnel"), "choice", "funnels"), *PERIOD),
        lambda p, c, _, v: reports.funnel_report(p, c, v.get("funnel", ""), _period(v)),
        defaults=lambda p: {"funnel": next(iter(p.funnels), "")},
    ),
    Report(
        "paused-leads",
        "/reports/paused-leads",
        N_("Paused leads"),
        PausedLeadsReport,
        (
            Filter("funnel", N_("Funnel"), "choice", "funnels"),
            Filter("manager", N_("Manager")),
            *PERIOD,
        ),
        lambda p, c, _, v: reports.paused_leads_report(
            p, c, _period(v), _text(v, "funnel"), _text(v, "manager"), ROWS, _offset(v)
        ),
    ),
    Report(
        "deal-pipeline",
        "/reports/deal-pipeline",
        N_("Deal pipeline"),
        DealPipelineReport,
        (Filter("manager", N_("Manager")), *PERIOD),
        lambda p, c, _, v: pipeline.deal_pipeline(p, c, _period(v), None, _text(v, "manager")),
    ),
    Report(
        "handoffs",
        "/reports/handoffs",
        N_("Hand-offs"),
        HandoffReport,
        (Filter("department", N_("Department"), "choice", "departments"), *PERIOD),
        lambda p, c, _, v: pipeline.handoff_report(
            p, c, _period(v), _text(v, "department"), ROWS, _offset(v)
        ),
    ),
    Report(
        "department-load",
        "/reports/department-load",
        N_("Department load"),
        DepartmentLoadReport,
        (),
        lambda p, c, _, v: pipeline.department_load(p, c),
    ),
    Report(
        "contractor-overruns",
        "/reports/contractor-overruns",
        N_("Contractor overruns"),
        ContractorOverrunReport,
        (
            Filter("service", N_("Service")),
            Filter("manager", N_("Manager")),
            Filter("overrun", N_("Only late jobs"), "check"),
            Filter("won_from", N_("Won from"), "date"),
            Filter("won_to", N_("Won to"), "date"),
        ),
        lambda p, c, _, v: pipeline.contractor_overruns(
            p,
            c,
            service=_text(v, "service"),
            overrun=bool(_text(v, "overrun")),
            manager=_text(v, "manager"),
            won_from=_text(v, "won_from"),
            won_to=_text(v, "won_to"),
            limit=ROWS,
            offset=_offset(v),
        ),
    ),
    Report(
        "revenue-cap",
        "/reports/revenue-cap",
        N_("Revenue cap"),
        RevenueCapReport,
        (Filter("year", N_("Year"), "year"),),
        lambda p, c, _, v: pipeline.revenue_cap(p, c, _year(v, "year")),
    ),
    Report(
        "portfolio",
        "/reports/portfolio",
        N_("Portfolio"),
        PortfolioReport,
        (Filter("pm", N_("PM")), Filter("department", N_("Department"), "choice", "departments")),
        lambda p, c, _, v: portfolio.portfolio_report(p, c, _text(v, "pm"), _text(v, "department")),
    ),
    Report(
        "plan-fact",
        "/reports/plan-fact",
        N_("Plan and fact"),
        PlanFactReport,
        (
            *PERIOD,
            Filter("pm", N_("PM")),
            Filter("department", N_("Department"), "choice", "departments"),
        ),
        lambda p, c, _, v: portfolio.plan_fact_report(
            p,
            c,
            _days(v),
            pm=_text(v, "pm"),
            department=_text(v, "department"),
            limit=ROWS,
            offset=_offset(v),
        ),
    ),
    Report(
        "resource-load",
        "/reports/resource-load",
        N_("Resource load"),
        ResourceLoadReport,
        (*PERIOD, Filter("person", N_("Person"))),
        lambda p, c, _, v: portfolio.resource_load_figures(
            p, c, _days(v), _text(v, "person"), ROWS, _offset(v)
        ),
    ),
    Report(
        "deviations",
        "/reports/deviations",
        N_("Deviations"),
        DeviationsReport,
        PERIOD,
        lambda p, c, who, v: portfolio.deviations_report(p, c, who, _days(v), ROWS, _offset(v)),
    ),
    Report(
        "payments",
        "/reports/payments",
        N_("Payments"),
        PaymentsReport,
        (*PERIOD, Filter("project_id", N_("Project id"))),
        lambda p, c, _, v: portfolio.payments_report(
            c, _days(v), project_id=_uuid(v, "project_id"), limit=ROWS, offset=_offset(v)
        ),
    ),
    Report(
        "leads-period",
        "/reports/leads-period",
        N_("Leads and sales for a period"),
        LeadsPeriodReport,
        (
            Filter("funnel", N_("Funnel"), "choice", "funnels"),
            Filter("split", N_("Split by"), "choice", "lead_splits"),
            *PERIOD,
        ),
        lambda p, c, _, v: sales.leads_period_report(
            p, c, _period(v), _text(v, "funnel"), _one_of(v, "split", LEAD_SPLITS), ROWS, 0
        ),
    ),
    Report(
        "proposals",
        "/reports/proposals",
        N_("Proposals"),
        ProposalsReport,
        (Filter("funnel", N_("Deal funnel"), "choice", "deal_funnels"), *PERIOD),
        lambda p, c, _, v: sales.proposals_report(p, c, _period(v), _text(v, "funnel")),
    ),
    Report(
        "average-check",
        "/reports/average-check",
        N_("Average check"),
        AverageCheckReport,
        (Filter("split", N_("Split by"), "choice", "project_splits"), *PERIOD),
        lambda p, c, _, v: sales.average_check_report(
            p, c, _period(v), None, _one_of(v, "split", PROJECT_SPLITS)
        ),
    ),
    Report(
        "conversion-cohorts",
        "/reports/conversion-cohorts",
        N_("Conversion cohorts"),
        ConversionCohortsReport,
        (Filter("funnel", N_("Funnel"), "choice", "funnels"), *PERIOD),
        lambda p, c, _, v: sales.conversion_cohorts_report(p, c, _period(v), _text(v, "funnel")),
        tiles=COHORT_TILES,
    ),
    Report(
        "delivered-sales",
        "/reports/delivered-sales",
        N_("Delivered sales"),
        DeliveredSalesReport,
        (
            Filter("year", N_("Year"), "year"),
            Filter("as_of", N_("As of"), "date"),
            Filter("department", N_("Department"), "choice", "departments"),
        ),
        lambda p, c, _, v: sales.delivered_sales_report(
            p, c, _year(v, "year"), _text(v, "as_of"), None, _text(v, "department")
        ),
        tiles=("to date amount", "last year to date amount", "forecast year amount"),
    ),
    Report(
        "status-time",
        "/reports/status-time",
        N_("Status time"),
        StatusTimePage,
        STATUS_TIME,
        lambda p, c, _, v: status_time.status_time_report(
            p, c, **_status_time_args(v), limit=ROWS, offset=_offset(v)
        ),
        highlight="over_limit",
    ),
    Report(
        "status-time-summary",
        "/reports/status-time/summary",
        N_("Status time summary"),
        StatusTimeSummary,
        STATUS_TIME,
        lambda p, c, _, v: status_time.status_time_summary(p, c, **_status_time_args(v)),
        highlight="current_over_limit",
    ),
    Report(
        "process-map",
        "/reports/process-map",
        N_("Process map"),
        ProcessMap,
        (
            Filter("kind", N_("Of"), "choice", "kinds"),
            Filter("funnel", N_("Funnel"), "choice", "process_funnels"),
            Filter("department", N_("Department")),
            *PERIOD,
        ),
        lambda p, c, _, v: process_map.process_map_report(
            p, c, _period(v), _kind(v), _text(v, "funnel"), _text(v, "department")
        ),
        defaults=lambda p: {"kind": "lead", "funnel": next(iter(p.funnels), "")},
        graph=lambda result, gettext: process_graph(result, gettext),
    ),
    Report(
        "signatories",
        "/reports/signatories",
        N_("Signatories"),
        SignatoriesReport,
        (Filter("status", N_("Project status")),),
        lambda p, c, _, v: directory_routes.signatories_report(
            c, [s] if (s := _text(v, "status")) else None, ROWS, _offset(v)
        ),
    ),
)
REPORTS += (
    Report(
        "project-costs",
        "/reports/project-costs",
        N_("Project cost and margin"),
        ProjectCostsReport,
        (
            *PERIOD,
            Filter("group", N_("Group by"), "choice", "cost_groups"),
            Filter("pm", N_("PM")),
            Filter("department", N_("Department"), "choice", "departments"),
        ),
        lambda p, c, _, v: delivery.project_costs_report(
            p,
            c,
            _days(v),
            group=_text(v, "group"),
            pm=_text(v, "pm"),
            department=_text(v, "department"),
            limit=ROWS,
        ),
    ),
    Report(
        "check-growth",
        "/reports/check-growth",
        N_("Check growth"),
        CheckGrowthReport,
        (*PERIOD, Filter("manager", N_("Manager")), Filter("source", N_("Source"))),
        lambda p, c, _, v: delivery.check_growth_report(
            c, _days(v), manager=_text(v, "manager"), source=_text(v, "source"), limit=ROWS
        ),
    ),
)
"""The delivery reports of issue 16 §2."""

SELLERS = (
    Filter("manager", N_("Manager")),
    Filter("department", N_("Department")),
    Filter("region", N_("Region")),
    Filter("city", N_("City")),
)
"""Whose figures: a manager, or the people of a department, region or city."""


def _sellers(values: Values) -> sales_plan_routes.SellerFilters:
    return sales_plan_routes.SellerFilters(
        _text(values, "manager"),
        _text(values, "department"),
        _text(values, "region"),
        _text(values, "city"),
    )


def _who(values: Values) -> activity_routes.Who:
    return activity_routes.Who(
        owner=_text(values, "manager"),
        department=_text(values, "department"),
        region=_text(values, "region"),
        city=_text(values, "city"),
    )


REPORTS += (
    Report(
        "new-leads",
        "/reports/new-leads",
        N_("New leads per day and week"),
        NewLeadsReport,
        (*PERIOD, *SELLERS),
        lambda p, c, who, v: sales_plan_routes.new_leads(p, c, who, _period(v), _sellers(v)),
    ),
    Report(
        "new-clients",
        "/reports/new-clients",
        N_("New clients (client-base growth)"),
        NewClientsReport,
        (*PERIOD, *SELLERS),
        lambda p, c, who, v: sales_plan_routes.new_clients(
            p, c, who, _period(v), _sellers(v), ROWS, _offset(v)
        ),
    ),
    Report(
        "dormant-clients",
        "/reports/dormant-clients",
        N_("Dormant clients"),
        DormantClientsReport,
        SELLERS,
        lambda p, c, who, v: sales_plan_routes.dormant_clients(
            p, c, who, _sellers(v), None, ROWS, _offset(v)
        ),
    ),
    Report(
        "invoices",
        "/reports/invoices",
        N_("Invoices issued"),
        InvoicesReport,
        (*PERIOD, *SELLERS),
        lambda p, c, who, v: sales_plan_routes.invoices(
            p, c, who, _period(v), _sellers(v), ROWS, _offset(v)
        ),
    ),
    Report(
        "deals-in-work",
        "/reports/deals-in-work",
        N_("Deals in work"),
        DealsInWorkReport,
        SELLERS,
        lambda p, c, who, v: sales_plan_routes.deals_in_work(p, c, who, _sellers(v)),
    ),
    Report(
        "activity-coefficient",
        "/reports/activities/coefficient",
        N_("Activity coefficient"),
        CoefficientReport,
        (*PERIOD, *SELLERS),
        lambda p, c, _, v: activity_routes.coefficient(p, c, _period(v), _who(v)),
    ),
    Report(
        "activity-calls",
        "/reports/activities/calls",
        N_("Calls per day"),
        CallsReport,
        (*PERIOD, *SELLERS),
        lambda p, c, _, v: activity_routes.calls(
            p, c, _period(v), _who(v), "day", ROWS, _offset(v)
        ),
    ),
    Report(
        "clients-without-interaction",
        "/reports/activities/clients-without-interaction",
        N_("Clients without interaction"),
        ClientsReport,
        SELLERS,
        lambda p, c, _, v: activity_routes.clients_without_interaction(
            p, c, _who(v), None, ROWS, _offset(v)
        ),
    ),
    Report(
        "clients-without-planned",
        "/reports/activities/clients-without-planned",
        N_("Clients with no planned activity"),
        ClientsReport,
        SELLERS,
        lambda p, c, _, v: activity_routes.clients_without_planned(p, c, _who(v), ROWS, _offset(v)),
    ),
)
"""The sales indicators and the activity indicators of issue 15 §3."""
REPORTS += (
    Report(
        "deal-volume-by-industry",
        "/reports/deal-volume-by-industry",
        N_("Deal volume by client industry"),
        DealVolumeReport,
        PERIOD,
        lambda p, c, _, v: company_routes.deal_volume_by_industry(c, _period(v)),
    ),
)
"""The deal volume by client industry (issue 18 §1, seed 001)."""
BY_SLUG = {r.slug: r for r in REPORTS}
ANALYST_EXPORTS = export_routes.EXPORTABLE
EXPORT_FORMATS = ("csv", "parquet", "xlsx")


def visible_reports(principal: Principal) -> list[Report]:
    """The reports the viewer's role may read (the API's endpoint table)."""
    return [r for r in REPORTS if may(principal, "GET", r.path)]


def run_report(
    platform: Platform, principal: Principal, report: Report, values: Values
) -> dict[str, Any]:
    """The report's result for the viewer: the API route's own answer over their scope."""
    with read_models(platform, principal) as cursor:
        return report.run(platform, cursor, principal, values)


def layout(
    report: Report, result: dict[str, Any], gettext: Callable[[str], str] = str
) -> dict[str, Any]:
    """The page's tables, summary and chart data: the workbook's own layout (the charts'
    titles and series names in the viewer's language, by ``gettext``)."""
    laid, summary = excel.report_layout(report.model, result)
    charts = excel.CHARTS.get(report.model.__name__, ())
    shown = []
    if report.graph is not None and result.get("nodes"):
        shown.append(report.graph(result, gettext))
    for chart in charts:
        found = next((t for t in laid if ".".join(t.table.path) == chart.table), None)
        if found is None or not found.rows:
            continue
        names = [c.path[-1] for c in found.columns]
        if chart.categories not in names:
            continue
        at = names.index(chart.categories)
        series = [
            {
                "name": gettext(v.replace("_", " ")),
                "data": [_plain(row[names.index(v)]) for row in found.rows],
            }
            for v in chart.values
            if v in names
        ]
        shown.append(
            {
                "title": gettext(chart.title),
                "kind": chart.kind,
                "categories": [
                    "—" if row[at] is None else i18n.named(str(row[at]), gettext)
                    for row in found.rows
                ],
                "series": series,
            }
        )
    return {
        "tables": [
            {
                "name": t.table.name,
                "parts": [part.replace("_", " ") for part in t.table.path],
                "columns": t.columns,
                "classes": ["num" if c.kind in NUMERIC else "" for c in t.columns],
                "rows": t.rows,
                "totals": t.totals,
                "highlight": _highlight_at(t.columns, report.highlight),
            }
            for t in laid
        ],
        "summary": [(c, v) for c, v in summary if c.path[-1] not in PAGING],
        "charts": orjson.dumps(shown).decode(),
        "has_charts": bool(shown),
    }


def _duration(seconds: float | None, gettext: Callable[[str], str]) -> str:
    """A median time as people read it: hours under two days, else days."""
    if seconds is None:
        return "—"
    hours = seconds / 3600
    if hours < 48:
        return f"{hours:.1f} {gettext('h')}"
    return f"{hours / 24:.1f} {gettext('d')}"


def process_graph(result: dict[str, Any], gettext: Callable[[str], str] = str) -> dict[str, Any]:
    """The process map as a drawn graph: the stages left to right in funnel order (sized
    by visits), an arrow per transition (as wide as its count, labelled with its count
    and median time), moves back curved below."""
    nodes = result["nodes"]
    widest = max((e["count"] for e in result["edges"]), default=1)
    biggest = max((n["visits"] for n in nodes), default=1)
    names = {n["stage"]: n["name"] for n in nodes}
    return {
        "kind": "graph",
        "title": gettext("Process graph"),
        "note": gettext(
            "Stages left to right in funnel order; an arrow per transition: how many "
            "records took it and its median time."
        )
        + " "
        + gettext(
            "Over a period longer than 45 days (a quarter, a year) the medians and p90 are "
            "read from monthly histograms: within 2 percent of the exact times (the counts "
            "are exact)."
        ),
        "nodes": [
            {
                "name": n["name"],
                "x": n["position"] * 180,
                "y": 0,
                "position": n["position"],
                "value": n["visits"],
                "symbolSize": 24 + 36 * n["visits"] / biggest,
                "caption": f"{n['name']}\n{n['visits']} · "
                + _duration(n["median_wait_seconds"], gettext),
            }
            for n in nodes
        ],
        "links": [
            {
                "source": names[e["from_stage"]],
                "target": names[e["to_stage"]],
                "value": e["count"],
                "width": 1 + 9 * e["count"] / widest,
                "rework": e["rework"],
                "caption": f"{e['count']} · {_duration(e['median_seconds'], gettext)}",
            }
            for e in result["edges"]
        ],
    }


def _highlight_at(columns: tuple[excel.Column, ...], name: str) -> int | None:
    names = [c.path[-1] for c in columns]
    return names.index(name) if name and name in names else None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _options(platform: Platform) -> dict[str, list[tuple[str, str]]]:
    return {
        "funnels": [(f.id, f.name) for f in platform.funnels.values()],
        "departments": [(d, d) for d in platform.rules.departments],
        "kinds": [("lead", "lead"), ("deal", "deal"), ("project", "project")],
        "process_funnels": [
            *((f.id, f.name) for f in platform.funnels.values()),
            *((f.id, f.name) for f in platform.rules.deal_funnels.values()),
        ],
        "deal_funnels": [(f.id, f.name) for f in platform.rules.deal_funnels.values()],
        "lead_splits": [(s, s) for s in LEAD_SPLITS],
        "project_splits": [(s, s) for s in PROJECT_SPLITS],
        "cost_groups": [(g, g) for g in project_costs.GROUPS],
    }


def filter_fields(
    report: Report, values: Values, options: dict[str, list[tuple[str, str]]]
) -> list[dict[str, Any]]:
    """The report's filters as the filter bar's fields (``_macros.html``): a choice offers
    "All" except where the report needs one (the funnel of the funnel report, a kind)."""
    fields = []
    for f in report.filters:
        required = f.name == "kind" or (f.name == "funnel" and report.slug == "funnel")
        fields.append(
            {
                "kind": f.kind,
                "name": f.name,
                "label": f.label,
                "value": values.get(f.name, ""),
                "options": options.get(f.options, []),
                "all_label": "" if required else N_("All"),
            }
        )
    return fields


def _title(report: Report, principal: Principal, values: Values, moment: datetime) -> excel.Title:
    filters = [(f.name, values[f.name]) for f in report.filters if values.get(f.name)]
    viewer = f"{principal.user} ({principal.role.value})"
    return excel.Title(report.title, filters, moment, viewer)


router = APIRouter()


@router.get("/reports")
def report_index(request: Request, principal: Viewer) -> HTMLResponse:
    context = {"reports": visible_reports(principal), "exports": _exports_of(principal)}
    return render(request, "reports/index.html", context, principal=principal)


def _exports_of(principal: Principal) -> tuple[str, ...]:
    return ANALYST_EXPORTS if may(principal, "GET", "/exports/{table}") else ()


def _chosen(request: Request, report: Report, platform: Platform) -> dict[str, str]:
    """The report's filters from the query string (its defaults when none is given), and
    the page's ``offset`` when it is past the first page."""
    asked = {f.name: request.query_params.get(f.name, "") for f in report.filters}
    if not any(asked.values()):
        asked = {**asked, **report.defaults(platform)}
    offset = offset_of(request.query_params.get("offset"))
    return {**asked, "offset": str(offset)} if offset else asked


def page_total(result: Mapping[str, Any]) -> int | None:
    """How many rows the report's paged tables have over all pages (the largest ``total``
    of the result's pages, itself or its parts: the deviations report has two); None
    for a report that is not paged."""
    pages = [result, *(v for v in result.values() if isinstance(v, Mapping))]
    totals = [p["total"] for p in pages if {"total", "limit", "offset"} <= p.keys()]
    return max(totals) if totals else None


def _report_of(principal: Principal, slug: str) -> Report:
    report = BY_SLUG.get(slug)
    if report is None:
        raise PageNotFound
    require(principal, "GET", report.path)
    return report


@router.get("/reports/{slug}")
def report_page(request: Request, principal: Viewer, slug: str) -> HTMLResponse:
    report = _report_of(principal, slug)
    platform = _platform(request)
    values = _chosen(request, report, platform)
    context: dict[str, Any] = {
        "report": report,
        "values": values,
        "fields": filter_fields(report, values, _options(platform)),
        "error": None,
        "download": f"{PREFIX}/reports/{slug}/excel?" + urlencode(values),
        "tiles": [],
    }
    try:
        result = run_report(platform, principal, report, values)
    except BadRequestValue as exc:
        context["error"] = {"field": exc.field, "message": exc.message}
        return render(request, "reports/report.html", context, status_code=400, principal=principal)
    gettext = i18n.translations(i18n.language_of(request)).gettext
    context.update(layout(report, result, gettext))
    total = page_total(result)
    if total is not None:
        path = f"{PREFIX}/reports/{slug}"
        context["page"] = pager(path, values, _offset(values), ROWS, total)
    context["tiles"] = [(c, v) for c, v in context["summary"] if c.title in report.tiles]
    return render(request, "reports/report.html", context, principal=principal)


@router.get("/reports/{slug}/excel")
def report_excel(request: Request, principal: Viewer, slug: str) -> Response:
    """The report as the API's workbook for the same filters and viewer."""
    report = _report_of(principal, slug)
    platform = _platform(request)
    values = _chosen(request, report, platform)
    try:
        result = run_report(platform, principal, report, values)
    except BadRequestValue as exc:
        context = {
            "report": report,
            "values": values,
            "fields": filter_fields(report, values, _options(platform)),
            "error": {"field": exc.field, "message": exc.message},
            "download": None,
        }
        return render(request, "reports/report.html", context, status_code=400, principal=principal)
    title = _title(report, principal, values, platform.clock())
    content = excel.render_report(report.model, result, title)
    return Response(
        content,
        media_type=excel.XLSX,
        headers={"Content-Disposition": f'attachment; filename="{report.slug}.xlsx"'},
    )


@router.get("/exports/{table}")
def export(request: Request, principal: Viewer, table: str, format: str = "csv") -> FileResponse:
    """A read model as CSV, Parquet or Excel: the API's export over the viewer's scope."""
    require(principal, "GET", "/exports/{table}")
    if table not in ANALYST_EXPORTS or format not in EXPORT_FORMATS:
        raise PageNotFound
    platform = _platform(request)
    viewer = f"{principal.user} ({principal.role.value})"
    title = excel.Title(f"Export {table}", [("table", table)], platform.clock(), viewer)
    with read_models(platform, principal) as cursor:
        return export_routes.export_file(cursor, table, format, title)


# --- the auditor's history search and chain verification ----------------------------------


HISTORIES: tuple[tuple[str, str, Callable[[UUID, Platform], Response]], ...] = (
    ("lead", "/leads/{lead_id}/history", lead_routes.get_history),
    ("deal", "/deals/{deal_id}/history", deal_routes.get_deal_history),
    ("project", "/projects/{project_id}/history", projects.get_history),
)


def find_history(
    platform: Platform, principal: Principal, record_id: UUID
) -> tuple[str, list[dict[str, Any]]]:
    """The record's kind and history (the API's history route for its kind), when the
    viewer may read it; PageNotFound otherwise (unknown or outside their scope)."""
    if not principal.sees_everything:
        with read_models(platform, principal) as cursor:
            seen = cursor.execute(
                f"SELECT 1 FROM ({VISIBLE_IDS}) WHERE id = ? LIMIT 1", [str(record_id)]
            ).fetchone()
        if seen is None:
            raise PageNotFound
    for kind, path, route in HISTORIES:
        if not may(principal, "GET", path):
            continue
        try:
            answer = route(record_id, platform)
        except StreamNotFound:
            continue
        events: list[dict[str, Any]] = orjson.loads(bytes(answer.body))["events"]
        return kind, events
    raise PageNotFound


@router.get("/history")
def history_page(request: Request, principal: Viewer, id: str = "") -> HTMLResponse:
    context: dict[str, Any] = {"id": id.strip(), "kind": None, "events": [], "error": None}
    if context["id"]:
        try:
            record_id = UUID(context["id"])
        except ValueError:
            context["error"] = "bad_id"
            return render(
                request, "reports/history.html", context, status_code=400, principal=principal
            )
        context["kind"], context["events"] = find_history(_platform(request), principal, record_id)
    return render(request, "reports/history.html", context, principal=principal)


@router.get("/audit")
def audit_page(request: Request, principal: Viewer, check: str = "") -> HTMLResponse:
    """The hash chain's check (the audit route's own function), when asked."""
    require(principal, "GET", "/audit/verify")
    outcome = verify(_platform(request).store).as_dict() if check else None
    status = 409 if outcome is not None and not outcome.get("ok") else 200
    return render(
        request, "reports/audit.html", {"outcome": outcome}, status_code=status, principal=principal
    )


# --- the cabinets of heads, top management, analysts and auditors --------------------------


TOP_PANELS = ("deal-pipeline", "portfolio", "payments")


def cabinet_parts(
    platform: Platform, principal: Principal, gettext: Callable[[str], str] = str
) -> dict[str, Any]:
    """What a head's, top manager's, analyst's or auditor's home adds to the cabinet:
    a head the department's over-limit stages and a table per person, top management the
    pipeline, portfolio health and payments charts, an analyst the reports and exports,
    an auditor the history search and chain verification."""
    role = principal.role.value
    parts: dict[str, Any] = {}
    if role == "head" and may(principal, "GET", "/leads"):
        with read_models(platform, principal) as cursor:
            parts["people"] = leads_per_manager(cursor)
            if may(principal, "GET", "/reports/status-time/summary"):
                summary = status_time.status_time_summary(platform, cursor, "lead")
                parts["over_limit"] = [s for s in summary["stages"] if s["current_over_limit"]]
    if role == "top":
        charts: list[Any] = []
        panels = []
        for slug in TOP_PANELS:
            report = BY_SLUG[slug]
            if not may(principal, "GET", report.path):
                continue
            shown = layout(report, run_report(platform, principal, report, {}), gettext)
            charts += orjson.loads(shown["charts"])
            panels.append({"report": report, "summary": shown["summary"]})
        parts["panels"] = panels
        parts["cabinet_charts"] = orjson.dumps(charts).decode()
    if role == "analyst":
        parts["reports"] = visible_reports(principal)
        parts["exports"] = _exports_of(principal)
    if role == "auditor":
        parts["auditor"] = True
    return parts
