"""Excel for every report (issue 14, §4): each report route answers ``?format=xlsx`` (or
``Accept``) with a workbook whose numbers equal the JSON report's for the same filters and
viewer, read back here with openpyxl; a bad ``format`` is a 422 naming it.

The data is the demo's (leads, deals with their hand-offs, projects with hours, invoices
and payments), sent through the command handlers and projected as the server would.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import orjson
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr

from leadledger.demo import load_demo, load_demo_deals, load_demo_users
from leadledger.settings import Settings
from leadledger.wiring import build
from read_api import routes
from read_api.app import create_app
from read_api.excel import XLSX, is_report_path
from tests.conftest import ACTOR, TEST_AUTH_SECRET, FakeClock, bearer

TITLE_ROWS = 5
"""Rows above a first sheet's table: title, filters, generated at, by, a blank."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API over the demo's records (40 leads, 6 deals and what follows from them),
    built once for the module: the tests only read."""
    workdir = tmp_path_factory.mktemp("excel")
    settings = Settings(
        event_store_url=f"sqlite:///{workdir}/events.sqlite",
        duckdb_path=workdir / "read_models.duckdb",
        auth_secret=SecretStr(TEST_AUTH_SECRET),
    )
    platform = build(settings, clock=FakeClock())
    now = platform.clock()
    load_demo(platform.store, platform.funnels, now, leads=40)
    load_demo_deals(platform.store, platform.funnels, platform.rules, now, deals=6)
    load_demo_users(platform.store, now)
    platform.projector.catch_up()
    app = create_app(platform, background=False)
    with TestClient(app, headers=ACTOR) as client:
        yield client


def workbook(client: TestClient, url: str, **params: Any) -> openpyxl.Workbook:
    response = client.get(url, params={**params, "format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"].endswith('.xlsx"')
    return openpyxl.load_workbook(io.BytesIO(response.content))


def report(client: TestClient, url: str, **params: Any) -> dict[str, Any]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def table(sheet: Any, header_row: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of the table whose header is at ``header_row`` (1-based), and its totals
    row (empty without one)."""
    header = [str(c.value) for c in sheet[header_row]]
    rows: list[dict[str, Any]] = []
    for values in sheet.iter_rows(min_row=header_row + 1, values_only=True):
        if all(v is None for v in values):
            break
        row = dict(zip(header, values, strict=False))
        if values[0] == "Total":
            return rows, row
        rows.append(row)
    return rows, {}


def first_table(book: openpyxl.Workbook) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return table(book.worksheets[0], TITLE_ROWS + 1)


def sheet_table(book: openpyxl.Workbook, name: str) -> list[dict[str, Any]]:
    rows, _ = table(book[name], 3)
    return rows


def summary(book: openpyxl.Workbook) -> dict[str, Any]:
    """The label/value pairs under a first sheet's "Summary"."""
    sheet = book.worksheets[0]
    found: dict[str, Any] = {}
    inside = False
    for label, value, *_ in sheet.iter_rows(values_only=True):
        if label == "Summary":
            inside = True
        elif inside and label is not None:
            found[str(label)] = value
    return found


def number(value: Any) -> float:
    return float(Decimal(str(value)))


def same_numbers(cells: dict[str, Any], json_row: dict[str, Any], *fields: str) -> None:
    for field in fields:
        expected = json_row[field]
        got = cells[field.replace("_", " ")]
        if expected is None:
            assert got is None, (field, got)
        else:
            assert got == pytest.approx(number(expected)), (field, got, expected)


# --- every report ---------------------------------------------------------------------------

SUBJECT_PATHS = {"lead_id": "leads", "deal_id": "deals", "project_id": "projects"}
REQUIRED = {
    "/reports/funnel": {"funnel": "out_of_court"},
    "/reports/status-time": {"kind": "lead"},
    "/reports/status-time/summary": {"kind": "deal"},
    "/cabinets/manager": {"manager": "anna.petrova"},
}
KNOWN = [
    "/reports/funnel",
    "/reports/deal-pipeline",
    "/reports/handoffs",
    "/reports/department-load",
    "/reports/portfolio",
    "/reports/plan-fact",
    "/reports/resource-load",
    "/reports/deviations",
    "/reports/payments",
    "/reports/status-time",
    "/reports/status-time/summary",
    "/leads/{lead_id}/status-time",
    "/deals/{deal_id}/status-time",
    "/projects/{project_id}/status-time",
    "/leads",
    "/deals",
    "/handoffs",
    "/projects",
    "/alerts",
    "/contractors",
    "/client-assignments",
]


def report_routes() -> list[str]:
    """Every report route the API's routers define (a new one is tested by itself)."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        for router in vars(module).values():
            if not isinstance(router, APIRouter):
                continue
            found.update(
                route.path
                for route in router.routes
                if isinstance(route, APIRoute)
                and "GET" in (route.methods or set())
                and is_report_path("get", route.path)
            )
    return sorted(found)


REPORTS = report_routes()


def test_the_reports_are_every_report_route(client: TestClient) -> None:
    """The reports tested below are the app's: every one of them, the known ones too."""
    paths = client.get("/openapi.json").json()["paths"]
    served = sorted(p for p, item in paths.items() if "get" in item and is_report_path("get", p))
    assert served == REPORTS
    assert set(KNOWN) <= set(REPORTS)


def _url(client: TestClient, template: str) -> str:
    for param, listing in SUBJECT_PATHS.items():
        if "{" + param + "}" in template:
            first = report(client, f"/{listing}", limit=1)["items"][0]
            return template.replace("{" + param + "}", str(first[param]))
    return template


@pytest.mark.parametrize("template", REPORTS)
def test_every_report_answers_a_workbook(demo: TestClient, template: str) -> None:
    url = _url(demo, template)
    params = REQUIRED.get(template, {})
    book = workbook(demo, url, **params)
    first = book.worksheets[0]
    assert first["A1"].value, "the title"
    assert first["A2"].value == "Filters"
    assert first["A3"].value == "Generated at (UTC)"
    assert first["B3"].value == FakeClock().now.replace(tzinfo=None)  # the platform's clock
    assert first["A4"].value == "By"
    assert first["B4"].value == "anna.sales (top)"
    for key, value in params.items():
        assert f"{key} = {value}" in first["B2"].value
    for sheet in book.worksheets:
        assert sheet.freeze_panes is not None, sheet.title
        assert sheet.auto_filter.ref, sheet.title
    # the same report through the Accept header
    response = demo.get(url, params=params, headers={**ACTOR, "Accept": XLSX})
    assert response.headers["content-type"] == XLSX
    openpyxl.load_workbook(io.BytesIO(response.content))


# --- the numbers equal the JSON report's ----------------------------------------------------


def test_funnel_workbook_equals_the_json_report(demo: TestClient) -> None:
    params = {"funnel": "out_of_court", "from": "2025-11-01"}
    body = report(demo, "/reports/funnel", **params)
    book = workbook(demo, "/reports/funnel", **params)
    rows, totals = first_table(book)
    assert [r["stage"] for r in rows] == [s["stage"] for s in body["stages"]]
    for cells, stage in zip(rows, body["stages"], strict=True):
        same_numbers(cells, stage, "step", "count", "amount", "reached", "conversion_to_next")
        assert isinstance(cells["amount"], int | float)
    assert totals["count"] == body["totals"]["count"]
    assert totals["amount"] == pytest.approx(number(body["totals"]["amount"]))
    for cells, stage in zip(rows, body["stages"], strict=True):
        assert cells["paused count"] == stage["paused"]["count"]
    # the totals row totals what the report totals: a stage's paused figures are not the
    # funnel's count and amount (their total is the summary's paused figure)
    assert totals["paused count"] is None
    assert totals["paused amount"] is None
    figures = summary(book)
    assert figures["paused count"] == body["paused"]["count"]
    assert figures["non quality count"] == body["non_quality"]["count"]
    assert figures["repeat amount"] == pytest.approx(number(body["repeat"]["amount"]))
    assert figures["created from"] == datetime(2025, 11, 1)
    sheet: Any = book.worksheets[0]
    amount_col = [c.value for c in sheet[TITLE_ROWS + 1]].index("amount") + 1
    assert sheet.cell(TITLE_ROWS + 2, amount_col).number_format == "#,##0.00"
    share_col = [c.value for c in sheet[TITLE_ROWS + 1]].index("conversion to next") + 1
    assert sheet.cell(TITLE_ROWS + 2, share_col).number_format == "0.0%"
    assert len(sheet._charts) == 1  # openpyxl keeps the charts it read there


def test_deal_pipeline_workbook_equals_the_json_report(demo: TestClient) -> None:
    body = report(demo, "/reports/deal-pipeline")
    book = workbook(demo, "/reports/deal-pipeline")
    funnels, _ = first_table(book)
    assert [f["funnel"] for f in funnels] == [f["funnel"] for f in body["funnels"]]
    for cells, funnel in zip(funnels, body["funnels"], strict=True):
        for outcome in ("open", "won", "lost"):
            assert cells[f"{outcome} count"] == funnel[outcome]["count"]
            assert cells[f"{outcome} amount"] == pytest.approx(number(funnel[outcome]["amount"]))
    stages = sheet_table(book, "funnels · stages")
    expected = [(f["funnel"], s) for f in body["funnels"] for s in f["stages"]]
    assert len(stages) == len(expected)
    for cells, (funnel, stage) in zip(stages, expected, strict=True):
        assert cells["funnels funnel"] == funnel
        assert cells["stage"] == stage["stage"]
        same_numbers(cells, stage, "count", "amount")
    assert sum(r["count"] for r in stages) == sum(f["open"]["count"] for f in body["funnels"])
    stages_sheet: Any = book["funnels · stages"]
    assert len(stages_sheet._charts) == 1


def test_payments_workbook_equals_the_json_report(demo: TestClient) -> None:
    body = report(demo, "/reports/payments")
    assert body["items"], "the demo has invoices"
    book = workbook(demo, "/reports/payments")
    rows, totals = first_table(book)
    assert [r["project id"] for r in rows] == [p["project_id"] for p in body["items"]]
    for cells, project in zip(rows, body["items"], strict=True):
        same_numbers(cells, project, "invoices", "invoiced", "payments", "paid", "outstanding")
        assert cells["status"] == project["status"]
    for field in ("invoiced", "paid", "outstanding"):
        assert totals[field] == pytest.approx(number(body["totals"][field]))
    clients = sheet_table(book, "clients")
    for cells, client in zip(clients, body["clients"], strict=True):
        same_numbers(cells, client, "projects", "invoiced", "paid", "outstanding")
    assert summary(book)["totals projects"] == body["totals"]["projects"]


def test_payments_workbook_of_a_period(demo: TestClient) -> None:
    params = {"from": "2025-12-01", "to": "2026-01-31"}
    body = report(demo, "/reports/payments", **params)
    rows, totals = first_table(workbook(demo, "/reports/payments", **params))
    assert len(rows) == len(body["items"])
    if body["items"]:
        assert totals["paid"] == pytest.approx(number(body["totals"]["paid"]))
    book = workbook(demo, "/reports/payments", **params)
    assert summary(book)["period from"] == datetime(2025, 12, 1)


@pytest.mark.parametrize("kind", ["lead", "deal", "project"])
def test_status_time_workbooks_equal_the_json_reports(demo: TestClient, kind: str) -> None:
    body = report(demo, "/reports/status-time/summary", kind=kind)
    rows, totals = first_table(workbook(demo, "/reports/status-time/summary", kind=kind))
    assert [r["stage"] for r in rows] == [s["stage"] for s in body["stages"]]
    for cells, stage in zip(rows, body["stages"], strict=True):
        same_numbers(
            cells,
            stage,
            "limit_hours",
            "visits",
            "total_seconds",
            "paused_seconds",
            "average_seconds",
            "visits_over_limit",
            "current",
            "current_over_limit",
        )
        assert cells["stops clock"] is stage["stops_clock"]
    for field in ("visits", "total_seconds", "visits_over_limit", "current"):
        assert totals[field.replace("_", " ")] == pytest.approx(body["totals"][field])

    page = report(demo, "/reports/status-time", kind=kind, limit=200)
    visits, _ = first_table(workbook(demo, "/reports/status-time", kind=kind, limit=200))
    assert len(visits) == len(page["items"])
    for cells, visit in zip(visits, page["items"], strict=True):
        assert cells["subject id"] == visit["subject_id"]
        same_numbers(cells, visit, "visit_no", "seconds", "paused_seconds", "limit_hours")
        assert cells["over limit"] is visit["over_limit"]
        entered = datetime.fromisoformat(visit["entered_at"]).astimezone(UTC)
        moment = entered.replace(tzinfo=None)
        assert cells["entered at"] == pytest.approx(moment, abs=timedelta(milliseconds=1))


def test_dates_are_excel_dates(demo: TestClient) -> None:
    book = workbook(demo, "/reports/resource-load", **{"from": "2025-12-01", "to": "2025-12-31"})
    figures = summary(book)
    assert figures["period from"] == datetime(2025, 12, 1)
    assert figures["period to"] == datetime(2025, 12, 31)
    assert isinstance(figures["calendar hours"], int | float)
    leads, _ = first_table(workbook(demo, "/leads", limit=5))
    assert all(isinstance(r["created at"], datetime) for r in leads)
    assert all(isinstance(r["repeat"], bool) for r in leads)


# --- scope, format and the OpenAPI document ---------------------------------------------


def test_a_scoped_viewers_workbook_holds_only_their_records(demo: TestClient) -> None:
    manager = bearer("boris.ivanov", "manager", "sales")
    everyone = report(demo, "/leads", limit=500)["items"]
    assert {lead["manager"] for lead in everyone} > {"boris.ivanov"}
    response = demo.get("/leads", params={"format": "xlsx", "limit": 500}, headers=manager)
    assert response.status_code == 200, response.text
    rows, _ = first_table(openpyxl.load_workbook(io.BytesIO(response.content)))
    own = demo.get("/leads", params={"limit": 500}, headers=manager).json()["items"]
    assert rows
    assert {r["manager"] for r in rows} == {"boris.ivanov"}
    assert [r["lead id"] for r in rows] == [lead["lead_id"] for lead in own]

    funnel = demo.get(
        "/reports/funnel", params={"funnel": "out_of_court", "format": "xlsx"}, headers=manager
    )
    stages, _ = first_table(openpyxl.load_workbook(io.BytesIO(funnel.content)))
    mine = demo.get("/reports/funnel", params={"funnel": "out_of_court"}, headers=manager).json()
    assert [s["count"] for s in stages] == [s["count"] for s in mine["stages"]]
    first = openpyxl.load_workbook(io.BytesIO(funnel.content)).worksheets[0]
    assert first["B4"].value == "boris.ivanov (manager)"


@pytest.mark.parametrize("value", ["pdf", "XLSX", ""])
def test_a_bad_format_is_refused_naming_it(client: TestClient, value: str) -> None:
    response = client.get("/reports/funnel", params={"funnel": "court", "format": value})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "format"
    assert body["code"] == "invalid_request"
    assert "xlsx" in body["detail"]


def test_the_route_checks_come_first(client: TestClient) -> None:
    unknown = client.get("/reports/funnel", params={"funnel": "nope", "format": "xlsx"})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "funnel"
    anonymous = client.get(
        "/reports/department-load", params={"format": "pdf"}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401


def test_json_stays_the_default(client: TestClient) -> None:
    plain = client.get("/reports/department-load")
    assert plain.headers["content-type"] == "application/json"
    explicit = client.get("/reports/department-load", params={"format": "json"})
    assert explicit.json() == plain.json()
    either = client.get("/reports/department-load", headers={"Accept": "application/json"})
    assert either.headers["content-type"] == "application/json"


def test_openapi_declares_format_and_the_workbook(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in REPORTS:
        operation = paths[path]["get"]
        (param,) = [p for p in operation["parameters"] if p["name"] == "format"]
        assert param["in"] == "query"
        assert param["schema"]["enum"] == ["json", "xlsx"]
        content = operation["responses"]["200"]["content"]
        assert "application/json" in content, path
        assert XLSX in content, path
        assert "422" in operation["responses"], path
    assert "format" not in [p["name"] for p in paths["/funnels"]["get"].get("parameters", [])]


def test_a_list_of_records_takes_no_total_from_a_group_of_figures(demo: TestClient) -> None:
    """The leads-period report's totals hold ``repeat`` as a count and an amount; its list
    of leads in work has a ``repeat`` flag column: the flag takes no total (it showed "yes"),
    the table of splits still takes its own; and a split without a department is charted
    as "—", as the table shows it, not as "None"."""
    from read_api.excel import report_layout
    from schemas.sales import LeadsPeriodReport
    from workspace import reports as pages

    result = demo.get("/reports/leads-period", params={"split": "department"}).json()
    laid, _ = report_layout(LeadsPeriodReport, result)
    tables = {".".join(t.table.path): t for t in laid}
    in_work = next(t for name, t in tables.items() if "work" in name)
    assert in_work.rows
    assert not any(path[-1] == "repeat" for path in (in_work.totals or {}))
    assert any(t.totals for t in laid if t is not in_work)
    report = next(r for r in pages.REPORTS if r.model is LeadsPeriodReport)
    # the demo's managers all have a department: one more row as a manager without one
    result["rows"].append({**result["rows"][0], "key": None})
    charts = orjson.loads(pages.layout(report, result)["charts"])
    categories = [c for chart in charts for c in chart.get("categories", [])]
    assert "None" not in categories
    assert "—" in categories
