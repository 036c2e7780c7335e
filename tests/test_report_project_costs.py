"""The projects report with cost and margin (issue 16 §2), through HTTP: hourly cost
rates set in the directory, hours logged on a direct project, a won deal whose logistics
hand-off priced a contractor's job, ``GET /reports/project-costs`` rolled up by PM,
department and month, in Excel with the same numbers, over the viewer's scope.

The history (the fake clock starts on Monday 2026-01-05):

- rates: ivan 1200 from 01-01 (replaced by 1000 for the same day), 1500 from 01-08;
  petr 800 from 01-06;
- Alpha (direct, PM olga.pm, value 50,000, planned start 2026-02-02): ivan 8 h on 01-05
  (* 1000 = 8,000) and 4 h on 01-08 (* 1500 = 6,000); petr 2 h on 01-05 (no rate yet:
  unpriced) and 5 h on 01-06 (* 800 = 4,000). Labour 18,000; margin 32,000 (64 %);
- Beta (from mia.manager's won deal, value 1,000, no planned start: month of creation,
  2026-01): the contractor's accepted estimate 900. Margin 100 (10 %).
Totals: value 51,000, cost 18,900, margin 32,100 = 62.94 % of the value.

A hypothesis property checks, on random read-model rows, that each project's labour is
Σ hours * the rate in force that day, and that the roll-ups by PM, department and month
add up to the totals.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.projects import project_id_for_deal
from leadledger.wiring import Platform, read_model_projections
from projections.database import ReadModelDatabase
from projections.deals import HANDOFF_COLUMNS, ddl
from projections.directory import RATES_DDL
from projections.project_labour import ProjectLabourProjection
from projections.projector import rebuild
from projections.projects import TABLES
from projections.status_time import PROJECT_VISIT_COLUMNS
from queries.common import Filters
from queries.project_costs import CostFilters, project_costs
from queries.projects import Days
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer
from tests.deal_helpers import ok, register_contractor
from tests.test_access import ADMIN, _directory, settle
from tests.test_api_contractor_overruns import sold_job

PM = bearer("olga.pm", "pm")
HEAD = bearer("hana.head", "head", "sales")
MANAGER = bearer("mia.manager", "manager")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        _directory(client)
        for username, role, department in (
            ("ivan.fitter", "department", "production"),
            ("petr.fitter", "department", "production"),
            ("olga.pm", "pm", "production"),
        ):
            body = {"username": username, "name": username, "role": role}
            body["department"] = department
            ok(client.post("/users", json=body, headers=ADMIN), 201)
        yield client


CENT = Decimal("0.01")


def rate(api: TestClient, who: str, value: str, day: str, headers: Any = ACTOR) -> Any:
    body = {"rate": value, "valid_from": day, "reason": "grade"}
    return api.put(f"/users/{who}/cost-rate", json=body, headers=headers)


def history(api: TestClient, platform: Platform, clock: FakeClock) -> tuple[str, str]:
    ok(rate(api, "ivan.fitter", "1200.00", "2026-01-01"))
    ok(rate(api, "ivan.fitter", "1000.00", "2026-01-01"))  # the same day: replaced
    ok(rate(api, "ivan.fitter", "1500.00", "2026-01-08"))
    ok(rate(api, "petr.fitter", "800.00", "2026-01-06"))
    body = {
        "title": "Alpha",
        "company_name": "Agro",
        "amount": "50000.00",
        "department": "production",
        "pm": "olga.pm",
        "planned_start": "2026-02-02",
        "planned_end": "2026-02-27",
    }
    alpha = ok(api.post("/projects", json=body), 201)["project_id"]
    clock.advance(days=7)
    for person, day, hours in (
        ("ivan.fitter", "2026-01-05", "8"),
        ("ivan.fitter", "2026-01-08", "4"),
        ("petr.fitter", "2026-01-05", "2"),
        ("petr.fitter", "2026-01-06", "5"),
    ):
        entry = {"person": person, "day": day, "hours": hours}
        ok(api.post(f"/projects/{alpha}/hours", json=entry), 201)
    contractor = register_contractor(api)
    deal_id, _ = sold_job(api, contractor)
    platform.processes.run_once()  # the won deal's project
    beta = str(project_id_for_deal(UUID(deal_id)))
    settle(platform)
    return alpha, beta


def D(value: str | int) -> Decimal:
    return Decimal(value)


def test_cost_and_margin_per_project_and_rolled_up(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    alpha, beta = history(api, platform, clock)
    report = ok(api.get("/reports/project-costs"))
    by_id = {i["project_id"]: i for i in report["items"]}
    a, b = by_id[alpha], by_id[beta]
    assert (D(a["value"]), D(a["labour_cost"]), D(a["contractor_cost"])) == (
        D("50000"),
        D("18000"),
        D("0"),
    )
    assert (D(a["cost"]), D(a["margin"]), D(a["margin_percent"])) == (
        D("18000"),
        D("32000"),
        D("64"),
    )
    assert (D(a["actual_hours"]), D(a["unpriced_hours"])) == (D("19"), D("2"))
    assert (a["month"], a["actual_start"], a["actual_end"]) == ("2026-02", "2026-01-05", None)
    assert [s["status"] for s in a["status_hours"]] == ["planning"]
    assert D(a["status_hours"][0]["hours"]) == D(7 * 24)  # created at 01-05 09:00, now 01-12
    assert (D(b["value"]), D(b["labour_cost"]), D(b["contractor_cost"])) == (
        D("1000"),
        D("0"),
        D("900"),
    )
    assert (D(b["margin"]), D(b["margin_percent"]), b["month"]) == (D("100"), D("10"), "2026-01")
    totals = report["totals"]
    assert (totals["projects"], D(totals["value"]), D(totals["cost"])) == (
        2,
        D("51000"),
        D("18900"),
    )
    assert (D(totals["margin"]), D(totals["margin_percent"])) == (D("32100"), D("62.94"))

    months = ok(api.get("/reports/project-costs", params={"group": "month"}))["groups"]
    assert [(g["key"], D(g["margin"])) for g in months] == [
        ("2026-01", D("100")),
        ("2026-02", D("32000")),
    ]
    pms = ok(api.get("/reports/project-costs", params={"group": "pm"}))["groups"]
    assert [(g["key"], D(g["cost"])) for g in pms] == [("olga.pm", D("18000")), (None, D("900"))]
    departments = ok(api.get("/reports/project-costs", params={"group": "department"}))
    assert [(g["key"], g["projects"]) for g in departments["groups"]] == [("production", 2)]

    # the period chooses the projects starting in it
    february = ok(api.get("/reports/project-costs", params={"from": "2026-02-01"}))
    assert [i["project_id"] for i in february["items"]] == [alpha]


def test_a_rate_set_after_the_hours_prices_them_again_as_a_rebuild_does(
    api: TestClient, platform: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    alpha, _ = history(api, platform, clock)
    # from 01-08 Ivan costs 2000.00, not 1500.00: his 4 h of 01-08 cost 2000.00 more
    ok(rate(api, "ivan.fitter", "2000.00", "2026-01-08"))
    settle(platform)
    (item,) = [
        i for i in ok(api.get("/reports/project-costs"))["items"] if i["project_id"] == alpha
    ]
    assert D(item["labour_cost"]) == D("20000")
    again = ReadModelDatabase(tmp_path / "rebuilt.duckdb")
    try:
        rebuild(platform.store, again, read_model_projections(platform.funnels, platform.rules))
        read = "SELECT * FROM project_labour ORDER BY ALL"
        cursor = platform.db.cursor()
        folded = cursor.execute(read).fetchall()
        cursor.close()
        rebuilt = again.cursor()
        assert folded == rebuilt.execute(read).fetchall()
        rebuilt.close()
    finally:
        again.close()


def test_the_workbook_has_the_json_figures(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    history(api, platform, clock)
    params = {"group": "pm"}
    report = ok(api.get("/reports/project-costs", params=params))
    answer = api.get("/reports/project-costs", params={**params, "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book.worksheets[0]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    header_at = next(i for i, row in enumerate(cells) if row[0] == "project id")
    header = cells[header_at]
    total = next(row for row in cells if row[0] == "Total")
    for field in ("value", "labour cost", "contractor cost", "cost", "margin"):
        key = field.replace(" ", "_")
        assert Decimal(str(total[header.index(field)])) == D(report["totals"][key])
    rows = cells[header_at + 1 : header_at + 1 + len(report["items"])]
    assert sorted(Decimal(str(r[header.index("margin")])) for r in rows) == sorted(
        D(i["margin"]) for i in report["items"]
    )
    groups = book["groups"]
    keyed = {
        row[0].value: Decimal(str(row[[c.value for c in groups[3]].index("margin")].value))
        for row in groups.iter_rows(min_row=4)
        if row[0].value is not None
    }
    assert keyed["olga.pm"] == D("32000")


def test_each_viewer_sees_the_costs_of_the_projects_they_see(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    alpha, beta = history(api, platform, clock)

    def seen(headers: dict[str, str]) -> tuple[set[str], Decimal]:
        report = ok(api.get("/reports/project-costs", headers=headers))
        return {i["project_id"] for i in report["items"]}, D(report["totals"]["margin"])

    assert seen(PM) == ({alpha}, D("32000"))
    # the sales head sees her manager's project, with its contractor's cost
    assert seen(HEAD) == ({beta}, D("100"))
    assert seen(MANAGER) == ({beta}, D("100"))


def test_bad_filters_are_named(api: TestClient) -> None:
    for params, field in (
        ({"group": "week"}, "group"),
        ({"from": "2026-13-01"}, "from"),
        ({"status": "nowhere"}, "status"),
        ({"limit": "0"}, "limit"),
    ):
        answer = api.get("/reports/project-costs", params=params)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field, answer.json()


# --- the property --------------------------------------------------------------------------

PEOPLE = ("a", "b", "c")
DAY0 = date(2026, 1, 1)


@st.composite
def ledgers(draw: st.DrawFn) -> dict[str, Any]:
    projects = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("pm1", "pm2", None)),
                st.sampled_from(("production", "logistics", None)),
                st.integers(0, 90),
                st.integers(0, 10_000_000),
            ),
            min_size=1,
            max_size=6,
        )
    )
    entries = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(projects) - 1),
                st.sampled_from(PEOPLE),
                st.integers(0, 60),
                st.integers(1, 2400),
            ),
            max_size=25,
        )
    )
    rates = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(PEOPLE), st.integers(0, 60)),
            st.integers(0, 500_000),
            max_size=8,
        )
    )
    contractors = draw(
        st.lists(st.tuples(st.integers(0, len(projects) - 1), st.integers(0, 1_000_000)))
    )
    return {"projects": projects, "entries": entries, "rates": rates, "contractors": contractors}


def _tables(con: duckdb.DuckDBPyConnection, ledger: dict[str, Any]) -> None:
    for table, columns in TABLES.items():
        con.execute(ddl(table, columns))
    con.execute(ddl("handoffs", HANDOFF_COLUMNS))
    con.execute(ddl("project_status_visits", PROJECT_VISIT_COLUMNS))
    con.execute(RATES_DDL)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for n, (pm, department, start, amount) in enumerate(ledger["projects"]):
        con.execute(
            "INSERT INTO projects (project_id, title, company_name, pm, department, status, "
            "deal_id, planned_start, planned_hours, actual_hours, amount, status_entered_at, "
            "created_at) VALUES (?, ?, 'c', ?, ?, 'planning', ?, ?, 0, 0, ?, ?, ?)",
            [
                str(UUID(int=n + 1)),
                f"p{n}",
                pm,
                department,
                f"deal{n}",
                DAY0 + timedelta(days=start),
                Decimal(amount) / 100,
                created,
                created + timedelta(seconds=n),
            ],
        )
    for n, (project, person, day, hours) in enumerate(ledger["entries"]):
        con.execute(
            "INSERT INTO time_entries (project_id, entry_id, person, day, hours) "
            "VALUES (?, ?, ?, ?, ?)",
            [str(UUID(int=project + 1)), f"e{n}", person, DAY0 + timedelta(days=day),
             Decimal(hours) / 100],
        )  # fmt: skip
    for (person, day), value in ledger["rates"].items():
        con.execute(
            "INSERT INTO user_cost_rates (username, valid_from, rate) VALUES (?, ?, ?)",
            [person, DAY0 + timedelta(days=day), Decimal(value) / 100],
        )
    for n, (project, price) in enumerate(ledger["contractors"]):
        con.execute(
            "INSERT INTO handoffs (request_id, deal_id, status, contractor_id, ready_at, price) "
            "VALUES (?, ?, 'cancelled', 'k', ?, ?)",
            [f"r{n}", f"deal{project}", created, Decimal(price) / 100],
        )
    labour = ProjectLabourProjection()
    labour.create_tables(con)
    labour.derive_all(con)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_labour_is_priced_by_the_rate_of_the_day_and_roll_ups_add_up(
    ledger: dict[str, Any],
) -> None:
    con = duckdb.connect()
    try:
        _tables(con, ledger)
        now = datetime(2026, 6, 1, tzinfo=UTC)
        chosen = CostFilters(Filters(), Days())
        whole = project_costs(con, chosen, None, "done", now, 500, 0)
        # the oracle: each project's labour, hour by hour at the rate in force that day
        for item in whole["items"]:
            n = UUID(item["project_id"]).int - 1
            labour = Decimal(0)
            for project, person, day, hours in ledger["entries"]:
                if project != n:
                    continue
                known = [d for (who, d) in ledger["rates"] if who == person and d <= day]
                if known:
                    labour += Decimal(hours) / 100 * Decimal(ledger["rates"][(person, max(known))])
            # money rounds half up, as every figure of the reports does
            assert item["labour_cost"] == (labour / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            assert item["cost"] == item["labour_cost"] + item["contractor_cost"]
            assert item["margin"] == item["value"] - item["cost"]
        # the labour already priced per project answers as pricing every hour now does
        assert whole == project_costs(con, chosen, None, "done", now, 500, 0, stored=False)
        totals = whole["totals"]
        for group in ("pm", "department", "month"):
            groups = project_costs(con, chosen, group, "done", now, 1, 0)["groups"]
            assert (
                groups
                == (project_costs(con, chosen, group, "done", now, 1, 0, stored=False)["groups"])
            )
            for figure in ("projects", "value", "labour_cost", "contractor_cost", "cost"):
                assert sum(g[figure] for g in groups) == totals[figure], (group, figure)
            assert sum(g["margin"] for g in groups) == totals["margin"]
        # and months split the period: two halves add up to the whole
        first = project_costs(
            con, CostFilters(Filters(), Days(None, date(2026, 2, 14))), None, "done", now, 1, 0
        )["totals"]
        second = project_costs(
            con, CostFilters(Filters(), Days(date(2026, 2, 15), None)), None, "done", now, 1, 0
        )["totals"]
        for figure in ("projects", "value", "cost", "margin"):
            assert first[figure] + second[figure] == totals[figure]
    finally:
        con.close()
