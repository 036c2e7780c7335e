"""Lead → quality → deal → won → project cohorts (issue 16 §1) through HTTP, against
figures worked out by hand from a small history; and a property: the month cohorts add
up to the period's, and each step counts no more than the one before it.

The history (out_of_court unless said):

- A, created 2026-01-05 09:00: quality after 2 days, a deal 1 day later, won 7 days
  after that, its project 1 day after (the process manager runs then);
- B, created 2026-01-06 09:00: non-quality;
- C, created 2026-02-02 09:00 in *court*: open;
- D, created 2026-02-03 09:00: quality after 4 days, a deal 2 days later, lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from leadledger.wiring import Platform
from projections.cohorts import CohortProjection
from projections.leads import LEADS_COLUMNS, _ddl
from queries import conversion
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, create


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def _to_deal(
    api: TestClient, clock: FakeClock, lead_id: str, quality_days: int, deal_days: int
) -> str:
    clock.advance(days=quality_days)
    ok(api.post(f"/leads/{lead_id}/qualification", json={"quality": True}))
    clock.advance(days=deal_days)
    deal_id: str = ok(api.post(f"/leads/{lead_id}/deal", json={"funnel": "upsell"}), 201)["deal_id"]
    return deal_id


@pytest.fixture
def history(api: TestClient, platform: Platform, clock: FakeClock) -> int:
    a = create(api, amount="100")["lead_id"]
    deal_a = _to_deal(api, clock, a, 2, 1)
    proposal = {"services": [{"name": "transport", "price": "100.00"}]}
    ok(api.post(f"/deals/{deal_a}/proposal", json=proposal))
    ok(api.post(f"/deals/{deal_a}/contract", json={"number": "C-1", "signed_on": "2026-01-08"}))
    invoice = {"number": "S-1", "amount": "100.00", "organisation": "main"}
    ok(api.post(f"/deals/{deal_a}/invoice", json=invoice))
    clock.advance(days=7)
    ok(api.post(f"/deals/{deal_a}/close", json={"outcome": "won"}))
    clock.advance(days=1)
    platform.processes.run_once()  # the won deal's project
    clock.now = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    b = create(api)["lead_id"]
    ok(api.post(f"/leads/{b}/qualification", json={"quality": False, "reason": "no case"}))
    clock.now = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    create(api, funnel="court")
    clock.now = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
    d = create(api)["lead_id"]
    deal_d = _to_deal(api, clock, d, 4, 2)
    lost = {"outcome": "lost", "reason": "price"}
    position: int = ok(api.post(f"/deals/{deal_d}/close", json=lost))["position"]
    platform.processes.run_once()
    return position


def step(median: float | None, p90: float | None) -> dict[str, float | None]:
    return {"median_days": median, "p90_days": p90}


def test_cohorts_per_month_and_funnel_with_the_time_each_step_took(
    api: TestClient, history: int
) -> None:
    report = ok(api.get("/reports/conversion-cohorts", params={"min_position": history}))
    cohorts = {(r["month"], r["funnel"]): r for r in report["rows"]}
    assert set(cohorts) == {
        ("2026-01", "out_of_court"),
        ("2026-02", "court"),
        ("2026-02", "out_of_court"),
    }
    january = cohorts[("2026-01", "out_of_court")]
    assert [january[k] for k in ("leads", "quality", "deals", "won", "projects")] == [2, 1, 1, 1, 1]
    assert (january["quality_share"], january["project_share"]) == (0.5, 0.5)
    assert january["to_quality"] == step(2.0, 2.0)
    assert january["to_deal"] == step(1.0, 1.0)
    assert january["to_won"] == step(7.0, 7.0)
    assert january["to_project"] == step(1.0, 1.0)
    february = cohorts[("2026-02", "out_of_court")]
    assert [february[k] for k in ("leads", "quality", "deals", "won", "projects")] == [
        1,
        1,
        1,
        0,
        0,
    ]
    assert february["to_quality"] == step(4.0, 4.0)
    assert february["to_won"] == step(None, None)
    court = cohorts[("2026-02", "court")]
    assert [court[k] for k in ("leads", "quality", "deals")] == [1, 0, 0]

    totals = report["totals"]
    assert [totals[k] for k in ("leads", "quality", "deals", "won", "projects")] == [4, 2, 2, 1, 1]
    # to quality: 2 and 4 days: median 3, p90 2 + 0.9 * 2
    assert totals["to_quality"] == step(3.0, 3.8)
    assert totals["to_deal"] == step(1.5, 1.9)
    assert [(m["month"], m["leads"]) for m in report["by_month"]] == [
        ("2026-01", 2),
        ("2026-02", 2),
    ]

    court_only = ok(
        api.get("/reports/conversion-cohorts", params={"min_position": history, "funnel": "court"})
    )
    assert court_only["totals"]["leads"] == 1
    january_only = ok(
        api.get(
            "/reports/conversion-cohorts",
            params={"min_position": history, "from": "2026-01-01", "to": "2026-01-31"},
        )
    )
    assert january_only["totals"]["projects"] == 1


def test_a_manager_sees_the_cohorts_of_their_own_leads(api: TestClient, history: int) -> None:
    from tests.conftest import bearer

    mine = ok(
        api.get(
            "/reports/conversion-cohorts",
            params={"min_position": history},
            headers=bearer("nobody.else", "manager"),
        )
    )
    assert mine["totals"]["leads"] == 0
    assert mine["rows"] == []
    boris = ok(
        api.get(
            "/reports/conversion-cohorts",
            params={"min_position": history},
            headers=bearer("boris", "manager"),
        )
    )
    assert boris["totals"]["leads"] == 4  # the default manager of the test leads


def test_an_unknown_funnel_is_a_422(api: TestClient) -> None:
    response = api.get("/reports/conversion-cohorts", params={"funnel": "turnkey"})
    assert (response.status_code, response.json()["field"]) == (422, "funnel")


# --- cohorts add up ---------------------------------------------------------------------

START = datetime(2025, 1, 1, tzinfo=UTC)
leads = st.lists(
    st.tuples(
        st.sampled_from(["court", "out_of_court"]),
        st.integers(min_value=0, max_value=360),
        st.sampled_from([None, True, False]),
        st.booleans(),
        st.integers(min_value=0, max_value=30),
    ),
    max_size=25,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(_ddl("leads", LEADS_COLUMNS))
    con.execute(
        "CREATE TABLE deals (deal_id VARCHAR, status VARCHAR, created_at TIMESTAMPTZ, "
        "closed_at TIMESTAMPTZ, project_id VARCHAR)"
    )
    con.execute("CREATE TABLE projects (project_id VARCHAR, created_at TIMESTAMPTZ)")
    CohortProjection().create_tables(con)
    yield con
    con.close()


@settings(max_examples=50, deadline=None)
@given(leads=leads)
def test_month_cohorts_add_up_and_steps_only_narrow(
    scratch: duckdb.DuckDBPyConnection, leads: list[Any]
) -> None:
    for table in ("leads", "deals", "projects"):
        scratch.execute(f"DELETE FROM {table}")
    for n, (funnel, day, quality, won, took) in enumerate(leads):
        created = START + timedelta(days=day)
        qualified = created + timedelta(days=took) if quality else None
        deal = f"d{n}" if quality else None
        scratch.execute(
            "INSERT INTO leads (lead_id, funnel, created_at, quality, qualified_at, deal_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [f"l{n}", funnel, created, quality, qualified, deal],
        )
        if deal is not None:
            assert qualified is not None
            closed = qualified + timedelta(days=took)
            project = f"p{n}" if won else None
            scratch.execute(
                "INSERT INTO deals VALUES (?, ?, ?, ?, ?)",
                [deal, "won" if won else "open", qualified, closed if won else None, project],
            )
            if project is not None:
                scratch.execute("INSERT INTO projects VALUES (?, ?)", [project, closed])
    CohortProjection().derive_all(scratch)  # the cohorts' read models, as the projector does
    report = conversion.conversion_cohorts(scratch, funnel=None, start=None, end=None)
    steps = ("leads", "quality", "deals", "won", "projects")
    for key in steps:
        assert sum(r[key] for r in report["rows"]) == report["totals"][key]
        assert sum(r[key] for r in report["by_month"]) == report["totals"][key]
    for row in [*report["rows"], report["totals"]]:
        counts = [row[k] for k in steps]
        assert counts == sorted(counts, reverse=True)
    assert report["totals"]["leads"] == len(leads)
