"""How the check grew from the lead to the money (issue 16 §2, seed 001: «на сколько
увеличился чек при реализации»), through HTTP: ``GET /reports/check-growth`` per
project, per manager and per first-contact source, in Excel with the same numbers.

The history, worked by hand:
- "Warehouse" (boris, source website): an out-of-court lead priced 1,500 (its cost
  components) closed won, delivered straight as a project (ProjectCreated v2 carries the
  lead card and its source); the PM raises the project's value to 1,800; invoiced 1,000,
  paid 600. Growth 300 = 20 % of the lead's 1,500;
- "Tractor" (anna.sales, source phone): a lead priced 800 converted to a deal whose
  proposal makes it 1,000, won: its project is worth 1,000 (the source found through the
  deal's lead). Growth 200 = 25 %;
- "Tooling": a project started directly, worth 500: no lead, so not compared.
Totals: 3 projects, 2 compared, lead amount 2,300, value 3,300, growth 500 = 21.74 %.

Hypothesis: for any set of projects, the managers' and the sources' figures add up to the
totals.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb
import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.projects import project_id_for_deal, project_id_for_lead
from leadledger.wiring import Platform
from projections.deals import DEAL_COLUMNS, ddl
from projections.leads import LeadProjection
from projections.projects import TABLES
from queries.check_growth import check_growth
from queries.common import Filters
from queries.projects import Days
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory, bearer, create
from tests.deal_helpers import SELLER, ok, qualified_lead
from tests.factories import FUNNELS
from tests.test_access import settle

PM = bearer("olga.pm", "pm")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def D(value: Any) -> Decimal:
    return Decimal(value)


def history(api: TestClient, platform: Platform) -> tuple[str, str, str]:
    # a lead delivered straight as a project
    lead_id = create(api, title="Warehouse", company_id="inn-7701")["lead_id"]
    cost = {
        "components": [{"name": "survey", "amount": "1200.00"}, {"name": "report", "amount": "300"}]
    }
    ok(api.post(f"/leads/{lead_id}/cost", json=cost))
    ok(api.post(f"/leads/{lead_id}/qualification", json={"quality": True}))
    for stage in ("proposal_preparation", "proposal_sent", "contract", "invoice"):
        ok(api.post(f"/leads/{lead_id}/stage", json={"stage": stage}))
    ok(api.post(f"/leads/{lead_id}/close", json={"outcome": "won"}))
    # a lead converted to a deal, whose proposal is worth more
    other = qualified_lead(api, title="Tractor")
    ok(api.post(f"/leads/{other}/cost", json={"components": [{"name": "haul", "amount": "800"}]}))
    deal_id = ok(api.post(f"/leads/{other}/deal", json={"funnel": "upsell"}, headers=SELLER), 201)[
        "deal_id"
    ]
    proposal = {"services": [{"name": "transport", "price": "1000.00"}]}
    ok(api.post(f"/deals/{deal_id}/proposal", json=proposal, headers=SELLER))
    ok(api.post(f"/deals/{deal_id}/contract", json={"number": "C-1", "signed_on": "2026-01-05"}))
    invoice = {"number": "S-1", "amount": "1000.00", "organisation": "main"}
    ok(api.post(f"/deals/{deal_id}/invoice", json=invoice))
    ok(api.post(f"/deals/{deal_id}/close", json={"outcome": "won"}))
    platform.processes.run_once()  # both projects
    warehouse = str(project_id_for_lead(UUID(lead_id)))
    tractor = str(project_id_for_deal(UUID(deal_id)))
    ok(api.post(f"/projects/{warehouse}/card", json={"amount": "1800.00", "pm": "olga.pm"}))
    bill = {"number": "P-1", "amount": "1000.00", "due_date": "2026-02-01"}
    ok(api.post(f"/projects/{warehouse}/invoices", json=bill), 201)
    paid = {"amount": "600.00", "paid_on": "2026-01-05"}
    ok(api.post(f"/projects/{warehouse}/invoices/P-1/payments", json=paid), 201)
    body = {"title": "Tooling", "company_name": "LeadLedger", "amount": "500.00"}
    tooling = ok(api.post("/projects", json=body), 201)["project_id"]
    settle(platform)
    return warehouse, tractor, tooling


def test_the_check_grows_from_the_lead_to_the_money(api: TestClient, platform: Platform) -> None:
    warehouse, tractor, tooling = history(api, platform)
    report = ok(api.get("/reports/check-growth"))
    rows = {i["project_id"]: i for i in report["items"]}
    w, t, o = rows[warehouse], rows[tractor], rows[tooling]
    assert (w["source"], w["manager"], w["deal_id"]) == ("website", "boris", None)
    assert (D(w["lead_amount"]), w["deal_amount"], D(w["value"])) == (D(1500), None, D(1800))
    assert (D(w["invoiced"]), D(w["paid"])) == (D(1000), D(600))
    assert (D(w["growth"]), D(w["growth_percent"])) == (D(300), D(20))
    assert (t["source"], t["manager"]) == ("phone", "anna.sales")
    assert (D(t["lead_amount"]), D(t["deal_amount"]), D(t["value"])) == (D(800), D(1000), D(1000))
    assert (D(t["growth"]), D(t["growth_percent"])) == (D(200), D(25))
    assert (o["lead_amount"], o["growth"], o["growth_percent"], o["source"]) == (
        None,
        None,
        None,
        None,
    )
    totals = report["totals"]
    assert (totals["projects"], totals["compared"]) == (3, 2)
    assert (D(totals["lead_amount"]), D(totals["value"]), D(totals["growth"])) == (
        D(2300),
        D(3300),
        D(500),
    )
    assert D(totals["growth_percent"]) == D("21.74")
    sources = {s["source"]: s for s in report["sources"]}
    assert (D(sources["website"]["growth"]), D(sources["phone"]["growth_percent"])) == (
        D(300),
        D(25),
    )
    assert (sources[None]["compared"], sources[None]["growth_percent"]) == (0, None)
    managers = {m["manager"]: m for m in report["managers"]}
    assert (managers["boris"]["projects"], managers["anna.sales"]["projects"]) == (1, 1)

    phone = ok(api.get("/reports/check-growth", params={"source": "phone"}))
    assert [i["project_id"] for i in phone["items"]] == [tractor]
    # the PM sees their project, its lead's figures included
    mine = ok(api.get("/reports/check-growth", headers=PM))
    assert [(i["project_id"], D(i["lead_amount"])) for i in mine["items"]] == [(warehouse, D(1500))]


def test_the_workbook_has_the_json_figures(api: TestClient, platform: Platform) -> None:
    history(api, platform)
    report = ok(api.get("/reports/check-growth"))
    answer = api.get("/reports/check-growth", params={"format": "xlsx"})
    assert answer.status_code == 200, answer.text
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    cells = [[c.value for c in row] for row in book.worksheets[0].iter_rows()]
    header = next(row for row in cells if row[0] == "project id")
    total = next(row for row in cells if row[0] == "Total")
    for field in ("lead amount", "value", "invoiced", "paid", "growth"):
        assert Decimal(str(total[header.index(field)])) == D(
            report["totals"][field.replace(" ", "_")]
        )
    sheet = book["sources"]
    heads = [c.value for c in sheet[3]]
    growth = {row[0].value: row[heads.index("growth")].value for row in sheet.iter_rows(min_row=4)}
    assert D(str(growth["phone"])) == D(200)


def test_a_bad_filter_is_named(api: TestClient) -> None:
    answer = api.get("/reports/check-growth", params={"from": "yesterday"})
    assert answer.status_code == 422
    assert answer.json()["field"] == "from"


# --- the property ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("m1", "m2", None)),
            st.sampled_from(("phone", "web", None)),
            st.one_of(st.none(), st.integers(0, 10_000_000)),
            st.integers(0, 10_000_000),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_managers_and_sources_add_up_to_the_totals(projects: list[Any]) -> None:
    con = duckdb.connect()
    try:
        for table, columns in TABLES.items():
            con.execute(ddl(table, columns))
        con.execute(ddl("deals", DEAL_COLUMNS))
        LeadProjection(FUNNELS).create_tables(con)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for n, (manager, source, lead_amount, value, via_deal) in enumerate(projects):
            lead_id = str(UUID(int=1000 + n)) if lead_amount is not None else None
            deal_id = str(UUID(int=2000 + n)) if via_deal else None
            if lead_id is not None:
                con.execute(
                    "INSERT INTO leads (lead_id, source, amount) VALUES (?, ?, ?)",
                    [lead_id, source, Decimal(lead_amount) / 100],
                )
            if deal_id is not None:
                con.execute(
                    "INSERT INTO deals (deal_id, lead_id, source, amount) VALUES (?, ?, ?, ?)",
                    [deal_id, lead_id, source, Decimal(value) / 200],
                )
            con.execute(
                "INSERT INTO projects (project_id, title, company_name, manager, lead_id, "
                "deal_id, source, amount, invoiced, paid, status, created_at) "
                "VALUES (?, 't', 'c', ?, ?, ?, ?, ?, ?, ?, 'planning', ?)",
                [
                    str(UUID(int=n + 1)),
                    manager,
                    None if via_deal else lead_id,
                    deal_id,
                    None if via_deal else source,
                    Decimal(value) / 100,
                    Decimal(value) / 300,
                    Decimal(value) / 400,
                    at + timedelta(days=n),
                ],
            )
        report = check_growth(con, Filters(), Days(), 1, 0)
        totals = report["totals"]
        for split in ("managers", "sources"):
            for figure in ("projects", "compared", "lead_amount", "deal_amount", "value", "growth"):
                assert sum(r[figure] for r in report[split]) == totals[figure], (split, figure)
        assert totals["projects"] == len(projects)
    finally:
        con.close()
