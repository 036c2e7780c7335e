"""The workspace's reports, exports and the cabinets of heads, top management, analysts
and auditors, over the real app: every report page, its Excel download equal to the JSON
API's report for the same filters, the per-person table, history search and chain check."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient

from leadledger.wiring import Platform
from read_api import excel
from read_api.app import create_app
from tests.conftest import PlatformFactory, bearer, new_lead_body
from workspace.report_columns import TITLES
from workspace.reports import REPORTS

ADMIN = bearer("adam.admin", "admin")
TOP = bearer("anna.sales")
USERS = {
    "mia.manager": ("manager", "sales"),
    "boris": ("manager", "sales"),
    "olga.other": ("manager", "other"),
    "hana.head": ("head", "sales"),
    "tess.top": ("top", None),
    "alice.analyst": ("analyst", None),
    "audrey.auditor": ("auditor", None),
}
PASSWORD = "a-good-password"


@pytest.fixture
def ws(make_platform: PlatformFactory) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    platform = make_platform(signin_delay_seconds=0)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        for user, (role, department) in USERS.items():
            body: dict[str, Any] = {"username": user, "name": user.title(), "role": role}
            if department:
                body["department"] = department
            assert api.post("/users", json=body, headers=ADMIN).status_code == 201
            platform.credentials.set_password(user, PASSWORD, set_by="test")
        leads = {}
        for manager, amount in (
            ("mia.manager", "1000.50"),
            ("boris", "250000"),
            ("olga.other", "7"),
        ):
            lead = new_lead_body(manager=manager, title=f"Lead of {manager}", amount=amount)
            response = api.post("/leads", json=lead, headers=TOP)
            assert response.status_code == 201, response.text
            leads[manager] = response.json()["lead_id"]
        for _ in range(200):
            if api.get("/health").json()["lag"] == 0:
                break
            time.sleep(0.02)
        yield api, platform, leads


def sign_in(api: TestClient, user: str) -> None:
    api.cookies.clear()
    page = api.get("/workspace/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = api.post(
        "/workspace/sign-in",
        data={"username": user, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_every_report_page_answers_for_top_management_with_its_table(ws) -> None:
    api, _, _ = ws
    sign_in(api, "tess.top")
    index = api.get("/workspace/reports")
    assert index.status_code == 200
    for report in REPORTS:
        assert f"/workspace/reports/{report.slug}" in index.text
        page = api.get(f"/workspace/reports/{report.slug}")
        assert page.status_code == 200, (report.slug, page.text[:500])
        assert "Download Excel" in page.text
        assert "<table" in page.text
        download = api.get(f"/workspace/reports/{report.slug}/excel")
        assert download.status_code == 200, report.slug
        assert download.headers["content-type"].startswith("application/vnd.openxmlformats")


def test_the_funnel_workbook_equals_the_json_report_for_the_same_period(ws) -> None:
    api, _, _ = ws
    sign_in(api, "tess.top")
    query = {"funnel": "out_of_court", "from": "2000-01-01", "to": "2100-12-31"}
    page = api.get("/workspace/reports/funnel", params=query)
    assert page.status_code == 200
    assert "251,007.50" in page.text  # the funnel's total amount, with separators
    workbook = openpyxl.load_workbook(
        io.BytesIO(api.get("/workspace/reports/funnel/excel", params=query).content)
    )
    report = api.get("/reports/funnel", params=query, headers=bearer("tess.top", "top")).json()
    assert report["totals"]["count"] == 3
    sheet = workbook.worksheets[0]
    cells = list(sheet.iter_rows(values_only=True))
    header = next(i for i, row in enumerate(cells) if "name" in row and "count" in row)
    names = list(cells[header])
    rows = cells[header + 1 : header + 1 + len(report["stages"])]
    for stage, row in zip(report["stages"], rows, strict=True):
        assert row[names.index("name")] == stage["name"]
        assert row[names.index("count")] == stage["count"]
        assert float(str(row[names.index("amount")])) == float(stage["amount"])
    total = cells[header + 1 + len(report["stages"])]
    assert total[0] == "Total"
    assert total[names.index("count")] == report["totals"]["count"]


def test_bad_filters_are_the_form_again_with_the_field_named(ws) -> None:
    api, _, _ = ws
    sign_in(api, "tess.top")
    page = api.get("/workspace/reports/funnel", params={"funnel": "nope"})
    assert page.status_code == 400
    assert "funnel" in page.text
    assert "unknown funnel" in page.text
    page = api.get("/workspace/reports/revenue-cap", params={"year": "1066"})
    assert page.status_code == 400
    assert "year" in page.text
    assert api.get("/workspace/reports/no-such-report").status_code == 404


def test_a_roles_reports_follow_the_apis_table(ws) -> None:
    api, _, _ = ws
    sign_in(api, "mia.manager")
    assert api.get("/workspace/reports/revenue-cap").status_code == 403
    assert api.get("/workspace/reports/funnel").status_code == 200


def test_a_heads_cabinet_has_a_row_per_person_of_the_department(ws) -> None:
    api, _, _ = ws
    sign_in(api, "hana.head")
    home = api.get("/")
    assert home.status_code == 200
    table = home.text.split('id="per-person"')[1].split("</table>")[0]
    assert "mia.manager" in table
    assert "boris" in table
    assert "olga.other" not in table  # another department's manager


def test_the_top_cabinet_shows_pipeline_portfolio_and_payments(ws) -> None:
    api, _, _ = ws
    sign_in(api, "tess.top")
    home = api.get("/")
    assert home.status_code == 200
    for part in ("Pipeline by stage", "Deal pipeline", "Portfolio", "Payments", "report-charts"):
        assert part in home.text, part


def test_an_analyst_gets_the_reports_and_the_exports(ws) -> None:
    api, _, _ = ws
    sign_in(api, "alice.analyst")
    home = api.get("/")
    assert "/workspace/exports/leads?format=parquet" in home.text
    csv = api.get("/workspace/exports/leads", params={"format": "csv"})
    assert csv.status_code == 200
    assert csv.text.count("\n") == 4  # the header and three leads
    parquet = api.get("/workspace/exports/leads", params={"format": "parquet"})
    assert parquet.status_code == 200
    assert parquet.content[:4] == b"PAR1"
    xlsx = api.get("/workspace/exports/leads", params={"format": "xlsx"})
    assert xlsx.status_code == 200
    assert api.get("/workspace/exports/secrets", params={"format": "csv"}).status_code == 404


def test_an_auditor_finds_a_records_history_and_verifies_the_chain(ws) -> None:
    api, _, leads = ws
    sign_in(api, "audrey.auditor")
    home = api.get("/")
    assert "history-search" in home.text
    assert "chain-check" in home.text
    found = api.get("/workspace/history", params={"id": leads["boris"]})
    assert found.status_code == 200
    assert "LeadCreated" in found.text or "lead_created" in found.text.lower()
    unknown = "00000000-0000-4000-8000-000000000000"
    assert api.get("/workspace/history", params={"id": unknown}).status_code == 404
    assert api.get("/workspace/history", params={"id": "x"}).status_code == 400
    checked = api.get("/workspace/audit", params={"check": "1"})
    assert checked.status_code == 200
    assert "The chain is intact." in checked.text


def test_a_managers_history_search_stops_at_their_scope(ws) -> None:
    api, _, leads = ws
    sign_in(api, "mia.manager")
    assert api.get("/workspace/history", params={"id": leads["mia.manager"]}).status_code == 200
    assert api.get("/workspace/history", params={"id": leads["boris"]}).status_code == 404


def test_status_time_rows_over_their_limit_are_highlighted(ws, clock) -> None:
    api, _, _ = ws
    sign_in(api, "tess.top")
    calm = api.get("/workspace/reports/status-time", params={"kind": "lead"})
    assert calm.status_code == 200
    assert 'class="over-limit"' not in calm.text
    clock.advance(days=30)
    sign_in(api, "tess.top")  # the session expired meanwhile
    late = api.get("/workspace/reports/status-time", params={"kind": "lead"})
    assert late.text.count('<tr class="over-limit">') == 3  # the three open leads' visits
    summary = api.get("/workspace/reports/status-time-summary", params={"kind": "lead"})
    assert '<tr class="over-limit">' in summary.text


def test_every_column_title_of_every_report_is_in_the_catalogues() -> None:
    titles = set(TITLES)
    for report in REPORTS:
        for table in excel.tables(report.model):
            assert {part.replace("_", " ") for part in table.path} <= titles, table.name
            assert {c.title for c in (*table.parents, *table.columns)} <= titles, table.name
        assert {c.title for c in excel.scalar_columns(report.model)} <= titles, report.slug


def test_a_department_column_is_headed_department_and_the_role_department_worker(ws) -> None:
    """The role "department" and the report column "department" are two words: the column
    of a department reads "department", a department worker's header "department worker"."""
    api, platform, _leads = ws
    sign_in(api, "tess.top")
    page = api.get("/workspace/reports/resource-load")
    assert page.status_code == 200, page.text
    assert ">department</th>" in page.text
    assert "department worker" not in page.text
    assert (
        api.post(
            "/users",
            json={
                "username": "dora.dept",
                "name": "Dora",
                "role": "department",
                "department": "logistics",
            },
            headers=ADMIN,
        ).status_code
        == 201
    )
    platform.credentials.set_password("dora.dept", PASSWORD, set_by="test")
    sign_in(api, "dora.dept")
    home = api.get("/workspace/")
    assert home.status_code == 200, home.text
    assert 'data-role="department">dora.dept · department worker</span>' in home.text
