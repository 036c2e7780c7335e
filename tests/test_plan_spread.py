"""The plan spread over the days its tasks span (issue 16 §2): plan/fact and the
resources report count a task's planned hours pro rata by its working days in the
period, never whole in every period it touches.

By hand, with the production calendar of rules.toml (Mon-Fri, 8 h; holidays 01-01, 01-02,
01-07, 02-23, ...):
- "Mounting", 40 h, Mon 2026-01-26 to Fri 2026-02-06: 10 working days, 5 in January
  → January 20 h, February 20 h, the week of 01-26 20 h;
- "Survey", 12 h, 2026-01-01 to 2026-01-09: working days 01-05, 01-06, 01-08, 01-09
  (01-01, 01-02, 01-07 are holidays, 01-03/04 a weekend) → 3 h each; 01-05..01-06 6 h;
- "Weekend", 5 h on Sat 2026-01-10 to Sun 01-11: no working day, so spread over its two
  calendar days: 2.50 h each.

Hypothesis: for random tasks and any cut of a period into consecutive parts, the parts'
plans add up to the period's exactly (to the cent), and a period holding the whole span
gets the whole plan; the resources report's tasks, projects and departments add up to
each person's and everyone's hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.rules import Calendar
from leadledger.wiring import Platform
from projections.deals import ddl
from projections.directory import USERS_DDL
from projections.plan_days import PlanDayProjection
from projections.projects import TABLES
from projections.resource_months import ResourceMonthProjection
from queries.projects import Days, Span, planned_in_period, resource_load
from read_api.app import create_app
from tests.conftest import ACTOR
from tests.deal_helpers import ok
from tests.test_access import ADMIN, settle

HOLIDAYS = frozenset({date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 7), date(2026, 2, 23)})
CALENDAR = Calendar(holidays=HOLIDAYS)


def D(value: str) -> Decimal:
    return Decimal(value)


# --- the spread itself, on the read-model tables -----------------------------------------


def tasks_db(tasks: list[tuple[Decimal, date, date | None]]) -> duckdb.DuckDBPyConnection:
    """A read-model database with one project holding these (planned, start, due) tasks."""
    con = duckdb.connect()
    for table, columns in TABLES.items():
        con.execute(ddl(table, columns))
    con.execute(
        "INSERT INTO projects (project_id, title, company_name, status, created_at) "
        "VALUES ('p', 'P', 'C', 'planning', ?)",
        [datetime(2026, 1, 1, tzinfo=UTC)],
    )
    for n, (planned, start, due) in enumerate(tasks):
        con.execute(
            "INSERT INTO project_tasks (project_id, task_id, title, planned_hours, start, due, "
            "added_at) VALUES ('p', ?, ?, ?, ?, ?, ?)",
            [f"t{n}", f"t{n}", planned, start, due, datetime(2026, 1, 1, tzinfo=UTC)],
        )
    return con


def spread(con: duckdb.DuckDBPyConnection, first: date | None, last: date | None) -> list[Any]:
    sql, params = planned_in_period(Days(first, last), CALENDAR)
    return con.execute(
        f"SELECT task_id, period_planned FROM ({sql}) ORDER BY task_id", params
    ).fetchall()


def test_a_task_counts_its_working_days_in_the_period() -> None:
    con = tasks_db(
        [
            (D("40"), date(2026, 1, 26), date(2026, 2, 6)),
            (D("12"), date(2026, 1, 1), date(2026, 1, 9)),
            (D("5"), date(2026, 1, 10), date(2026, 1, 11)),
        ]
    )
    january = dict(spread(con, date(2026, 1, 1), date(2026, 1, 31)))
    february = dict(spread(con, date(2026, 2, 1), date(2026, 2, 28)))
    assert january == {"t0": D("20.00"), "t1": D("12.00"), "t2": D("5.00")}
    assert february == {"t0": D("20.00")}  # the others end in January
    assert dict(spread(con, date(2026, 1, 5), date(2026, 1, 6)))["t1"] == D("6.00")
    assert dict(spread(con, date(2026, 1, 7), date(2026, 1, 7)))["t1"] == D("0.00")  # holiday
    assert dict(spread(con, date(2026, 1, 12), date(2026, 1, 20))) == {}  # between them
    assert dict(spread(con, date(2026, 1, 10), date(2026, 1, 10)))["t2"] == D("2.50")
    assert dict(spread(con, None, None)) == {"t0": D("40"), "t1": D("12"), "t2": D("5")}


@st.composite
def plans_and_cuts(draw: st.DrawFn) -> tuple[list[Any], date, list[date], date]:
    base = date(2026, 1, 1)
    tasks = draw(
        st.lists(
            st.tuples(
                st.integers(1, 100_000).map(lambda c: Decimal(c) / 100),
                st.integers(0, 60),
                st.integers(0, 40),
            ),
            min_size=1,
            max_size=5,
        )
    )
    rows = [(h, base + timedelta(days=s), base + timedelta(days=s + n)) for h, s, n in tasks]
    first = base + timedelta(days=draw(st.integers(-5, 50)))
    length = draw(st.integers(0, 80))
    last = first + timedelta(days=length)
    cuts = sorted(
        set(draw(st.lists(st.integers(0, max(length - 1, 0)), max_size=6)) if length > 0 else [])
    )
    return rows, first, [first + timedelta(days=c) for c in cuts], last


@settings(max_examples=80, deadline=None)
@given(plans_and_cuts())
def test_splitting_a_period_into_parts_splits_its_plan_exactly(
    case: tuple[list[Any], date, list[date], date],
) -> None:
    tasks, first, cuts, last = case
    con = tasks_db(tasks)
    try:
        whole = dict(spread(con, first, last))
        bounds = [first, *[c + timedelta(days=1) for c in cuts], last + timedelta(days=1)]
        parts = [
            dict(spread(con, a, b - timedelta(days=1)))
            for a, b in itertools.pairwise(bounds)
            if a < b
        ]
        for task in whole:
            assert sum((p.get(task, Decimal(0)) for p in parts), Decimal(0)) == whole[task]
            assert whole[task] >= 0
        everything = dict(spread(con, date(2020, 1, 1), date(2030, 12, 31)))
        for n, (planned, _, _) in enumerate(tasks):
            assert everything[f"t{n}"] == planned
    finally:
        con.close()


# --- through the reports ---------------------------------------------------------------------


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        body = {"username": "ivan.fitter", "name": "Ivan", "role": "department"}
        ok(client.post("/users", json={**body, "department": "production"}, headers=ADMIN), 201)
        yield client


def test_plan_fact_and_resources_count_the_plan_in_the_period(
    api: TestClient, platform: Platform
) -> None:
    body = {"title": "Alpha", "company_name": "Agro", "department": "production"}
    project_id = ok(api.post("/projects", json=body), 201)["project_id"]
    task = {
        "task_id": "mount",
        "title": "Mounting",
        "assignee": "ivan.fitter",
        "planned_hours": "40",
        "start": "2026-01-26",
        "due": "2026-02-06",
    }
    ok(api.post(f"/projects/{project_id}/tasks", json=task), 201)
    hours = {"person": "ivan.fitter", "day": "2026-01-05", "hours": "6", "task_id": "mount"}
    ok(api.post(f"/projects/{project_id}/hours", json=hours), 201)
    settle(platform)
    january = {"from": "2026-01-01", "to": "2026-01-31"}
    plan_fact = ok(api.get("/reports/plan-fact", params=january))
    (row,) = plan_fact["items"]
    assert (D(row["planned_hours"]), D(row["period_planned_hours"])) == (D("40"), D("20"))
    assert D(row["period_hours"]) == D("6")
    assert D(row["period_deviation_percent"]) == D("-70")  # 6 h against 20 h
    assert D(plan_fact["totals"]["period_planned_hours"]) == D("20")
    february = ok(api.get("/reports/plan-fact", params={"from": "2026-02-01", "to": "2026-02-28"}))
    assert D(february["totals"]["period_planned_hours"]) == D("20")

    load = ok(api.get("/reports/resource-load", params=january))
    (person,) = load["items"]
    assert (person["person"], D(person["planned_hours"]), D(person["logged_hours"])) == (
        "ivan.fitter",
        D("20"),
        D("6"),
    )
    # January asks 8 h on each of its 19 working days (22 weekdays; 01-01, 01-02, 01-07 off)
    assert D(load["calendar_hours"]) == D("152")
    assert [
        (t["task_id"], D(t["planned_hours"]), D(t["logged_hours"])) for t in person["tasks"]
    ] == [("mount", D("20"), D("6"))]
    assert person["projects"][0]["project_id"] == project_id
    (production,) = [d for d in load["departments"] if d["department"] == "production"]
    assert (production["people"], D(production["capacity_hours"])) == (1, D("152"))
    assert D(production["efficiency_percent"]) == D("3.95")  # 6 of 152
    assert UUID(project_id)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(("u1", "u2", "u3")), st.integers(1, 4000), st.integers(0, 40)),
        max_size=6,
    ),
    st.lists(
        st.tuples(st.sampled_from(("u1", "u2", "u4")), st.integers(0, 5), st.integers(0, 40)),
        max_size=10,
    ),
)
def test_the_resources_split_add_up_per_person_project_task_and_department(
    tasks: list[tuple[str, int, int]], entries: list[tuple[str, int, int]]
) -> None:
    base = date(2026, 1, 5)
    con = tasks_db([(Decimal(c) / 100, base + timedelta(days=s), None) for _, c, s in tasks])
    try:
        con.execute(USERS_DDL)
        for who, department in (("u1", "production"), ("u2", "logistics"), ("u3", "production")):
            con.execute(
                "INSERT INTO users (username, role, department, active) "
                "VALUES (?, 'department', ?, TRUE)",
                [who, department],
            )
        for n, (who, _, _) in enumerate(tasks):
            con.execute("UPDATE project_tasks SET assignee = ? WHERE task_id = ?", [who, f"t{n}"])
        for n, (who, task, day) in enumerate(entries):
            con.execute(
                "INSERT INTO time_entries (project_id, entry_id, person, task_id, day, hours) "
                "VALUES ('p', ?, ?, ?, ?, 2.5)",
                [f"e{n}", who, f"t{task}" if task < len(tasks) else None,
                 base + timedelta(days=day)],
            )  # fmt: skip
        for derived in (PlanDayProjection(CALENDAR), ResourceMonthProjection()):
            derived.create_tables(con)
            derived.derive_all(con)
        report = resource_load(con, CALENDAR, Span(base, base + timedelta(days=30)), None, 500, 0)
        people = report["items"]
        for person in people:
            assert sum(t["logged_hours"] for t in person["tasks"]) == person["logged_hours"]
            assert sum(t["planned_hours"] for t in person["tasks"]) == person["planned_hours"]
            assert sum(p["hours"] for p in person["projects"]) == person["logged_hours"]
        departments = report["departments"]
        for figure in ("logged_hours", "planned_hours"):
            assert sum(d[figure] for d in departments) == sum(p[figure] for p in people)
        assert sum(d["people"] for d in departments) >= len(people)
    finally:
        con.close()
