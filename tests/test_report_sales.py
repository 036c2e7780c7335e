"""Leads and sales for a period, proposals and the average check (issue 16 §1) through
HTTP, against figures worked out by hand from a small history sent through the real
command handlers; their workbooks read back with openpyxl; and a property: whatever the
leads, every split's rows add up to the period's totals.

The history (the directory: boris and hana in *sales*, clara in *b2b*):

| lead | created    | funnel       | source    | manager | amount | what happened              |
| ---- | ---------- | ------------ | --------- | ------- | ------ | -------------------------- |
| L1   | 2026-01-05 | out_of_court | website   | boris   | 100    | open                       |
| L2   | 2026-02-10 | court        | referral  | clara   | 200    | repeat (acme); paused: docs |
| L3   | 2026-02-11 | out_of_court | website   | clara   | 50     | non-quality                |
| L4   | 2026-03-02 | court        | cold_call | boris   | 30     | paused: vacation           |
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from leadledger.wiring import Platform
from projections.lead_days import LeadDayProjection
from projections.leads import LEADS_COLUMNS, _ddl
from queries import sales
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer, create

ADMIN = bearer("adam.admin", "admin")
HEAD_SALES = bearer("hana", "head", "sales")
CLARA = bearer("clara", "manager")
SELLER = ACTOR


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


def _directory(api: TestClient) -> int:
    position = 0
    for username, role, department in (
        ("boris", "manager", "sales"),
        ("hana", "head", "sales"),
        ("clara", "manager", "b2b"),
        ("anna.sales", "manager", "sales"),
    ):
        body = {"username": username, "name": username, "role": role, "department": department}
        position = ok(api.post("/users", json=body, headers=ADMIN), 201)["position"]
    return position


@pytest.fixture
def history(api: TestClient, clock: FakeClock) -> dict[str, Any]:
    _directory(api)
    l1 = create(api, amount="100", company_id="acme", manager="boris")["lead_id"]
    clock.now = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    l2 = create(
        api, funnel="court", source="referral", manager="clara", amount="200", company_id="acme"
    )["lead_id"]
    ok(api.post(f"/leads/{l2}/pause", json={"reason": "waiting for documents"}))
    clock.now = datetime(2026, 2, 11, 9, 0, tzinfo=UTC)
    l3 = create(api, manager="clara", amount="50")["lead_id"]
    ok(api.post(f"/leads/{l3}/qualification", json={"quality": False, "reason": "no case"}))
    clock.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    l4 = create(api, funnel="court", source="cold_call", manager="boris", amount="30")["lead_id"]
    position = ok(api.post(f"/leads/{l4}/pause", json={"reason": "client on vacation"}))["position"]
    return {"leads": (l1, l2, l3, l4), "position": position}


def leads_period(api: TestClient, position: int, **params: Any) -> dict[str, Any]:
    return ok(api.get("/reports/leads-period", params={"min_position": position, **params}))


def pair(count: int, amount: str) -> dict[str, Any]:
    return {"count": count, "amount": amount}


def figures(rows: list[dict[str, Any]]) -> dict[Any, tuple[int, str, int, int, int, int]]:
    """key → leads count and amount, in work, repeat, non-quality and paused counts."""
    return {
        r["key"]: (
            r["leads"]["count"],
            r["leads"]["amount"],
            r["in_work"]["count"],
            r["repeat"]["count"],
            r["non_quality"]["count"],
            r["paused"]["count"],
        )
        for r in rows
    }


def test_leads_for_a_period_by_month_with_the_totals_and_the_leads_in_work(
    api: TestClient, history: dict[str, Any]
) -> None:
    l1, l2, _, l4 = history["leads"]
    report = leads_period(api, history["position"])
    assert report["totals"] == {
        "leads": pair(4, "380.00"),
        "in_work": pair(3, "330.00"),
        "new": pair(3, "180.00"),
        "repeat": pair(1, "200.00"),
        "non_quality": pair(1, "50.00"),
        "paused": pair(2, "230.00"),
    }
    assert figures(report["rows"]) == {
        "2026-01": (1, "100.00", 1, 0, 0, 0),
        "2026-02": (2, "250.00", 1, 1, 1, 1),
        "2026-03": (1, "30.00", 1, 0, 0, 1),
    }
    assert report["pause_reasons"] == [
        {"reason": "client on vacation", "count": 1, "amount": "30.00"},
        {"reason": "waiting for documents", "count": 1, "amount": "200.00"},
    ]
    assert [i["lead_id"] for i in report["in_work_items"]] == [l4, l2, l1]  # newest first
    assert report["total"] == 3
    paged = leads_period(api, history["position"], limit=1, offset=1)
    assert ([i["lead_id"] for i in paged["in_work_items"]], paged["total"]) == ([l2], 3)


def test_leads_by_department_source_manager_and_funnel(
    api: TestClient, history: dict[str, Any]
) -> None:
    position = history["position"]
    by_department = leads_period(api, position, split="department")
    assert figures(by_department["rows"]) == {
        "b2b": (2, "250.00", 1, 1, 1, 1),
        "sales": (2, "130.00", 2, 0, 0, 1),
    }
    by_source = leads_period(api, position, split="source")
    assert {k: v[:2] for k, v in figures(by_source["rows"]).items()} == {
        "cold_call": (1, "30.00"),
        "referral": (1, "200.00"),
        "website": (2, "150.00"),
    }
    by_manager = leads_period(api, position, split="manager")
    assert {k: v[:2] for k, v in figures(by_manager["rows"]).items()} == {
        "boris": (2, "130.00"),
        "clara": (2, "250.00"),
    }
    by_funnel = leads_period(api, position, split="funnel")
    assert {k: v[:2] for k, v in figures(by_funnel["rows"]).items()} == {
        "court": (2, "230.00"),
        "out_of_court": (2, "150.00"),
    }
    court = leads_period(api, position, funnel="court", split="source")
    assert court["totals"]["leads"] == pair(2, "230.00")
    february = leads_period(api, position, **{"from": "2026-02-01", "to": "2026-02-28"})
    assert figures(february["rows"]) == {"2026-02": (2, "250.00", 1, 1, 1, 1)}


def test_a_head_sees_their_department_and_a_manager_their_own(
    api: TestClient, history: dict[str, Any]
) -> None:
    position = history["position"]
    head = ok(
        api.get(
            "/reports/leads-period",
            params={"min_position": position, "split": "manager"},
            headers=HEAD_SALES,
        )
    )
    assert {k: v[:2] for k, v in figures(head["rows"]).items()} == {"boris": (2, "130.00")}
    assert head["totals"]["leads"] == pair(2, "130.00")
    clara = ok(
        api.get(
            "/reports/leads-period",
            params={"min_position": position, "split": "department"},
            headers=CLARA,
        )
    )
    assert figures(clara["rows"]) == {"b2b": (2, "250.00", 1, 1, 1, 1)}


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/reports/leads-period", {"split": "week"}, "split"),
        ("/reports/leads-period", {"funnel": "nowhere"}, "funnel"),
        ("/reports/leads-period", {"from": "yesterday"}, "from"),
        ("/reports/proposals", {"funnel": "court"}, "funnel"),
        ("/reports/average-check", {"split": "source"}, "split"),
        ("/reports/average-check", {"funnel": "nowhere"}, "funnel"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(
    api: TestClient, url: str, params: dict[str, str], field: str
) -> None:
    response = api.get(url, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_the_workbook_has_the_json_numbers(api: TestClient, history: dict[str, Any]) -> None:
    params = {"min_position": history["position"], "split": "department"}
    report = leads_period(api, history["position"], split="department")
    response = api.get("/reports/leads-period", params={**params, "format": "xlsx"})
    assert response.status_code == 200, response.text
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0]
    header = [c.value for c in sheet[6]]
    body = [
        dict(zip(header, r, strict=False)) for r in sheet.iter_rows(min_row=7, values_only=True)
    ]
    by_key = {r["key"]: r for r in body if r.get("key") not in (None, "Total")}
    for row in report["rows"]:
        cells = by_key[row["key"]]
        assert cells["leads count"] == row["leads"]["count"]
        assert cells["leads amount"] == pytest.approx(float(row["leads"]["amount"]))
        assert cells["paused amount"] == pytest.approx(float(row["paused"]["amount"]))
    total = next(r for r in body if r.get("key") == "Total")
    assert total["leads amount"] == pytest.approx(380.0)
    assert total["in work count"] == 3


# --- proposals ------------------------------------------------------------------------------


def _deal(api: TestClient, manager: str) -> str:
    body = {
        "funnel": "out_of_court",
        "title": "Transport of a tractor",
        "company_name": "Agro Holding",
        "source": "phone",
        "manager": manager,
    }
    lead_id = ok(api.post("/leads", json=body, headers=SELLER), 201)["lead_id"]
    ok(api.post(f"/leads/{lead_id}/qualification", json={"quality": True}, headers=SELLER))
    response = api.post(f"/leads/{lead_id}/deal", json={"funnel": "upsell"}, headers=SELLER)
    deal_id: str = ok(response, 201)["deal_id"]
    return deal_id


def _propose(api: TestClient, deal_id: str, *prices: str) -> int:
    services = [{"name": f"service {i}", "price": p} for i, p in enumerate(prices)]
    response = api.post(f"/deals/{deal_id}/proposal", json={"services": services}, headers=SELLER)
    position: int = ok(response)["position"]
    return position


def test_proposals_per_month_and_department(api: TestClient, clock: FakeClock) -> None:
    _directory(api)
    d1 = _deal(api, "anna.sales")
    _propose(api, d1, "100.00", "50.00")
    clock.now = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
    d2, d3 = _deal(api, "clara"), _deal(api, "clara")
    _propose(api, d2, "300.00")
    _propose(api, d3, "200.00")
    clock.now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    position = _propose(api, d3, "250.00")  # a revised proposal: the deal's current one
    report = ok(api.get("/reports/proposals", params={"min_position": position}))
    assert [(r["month"], r["department"], r["count"], r["amount"]) for r in report["rows"]] == [
        ("2026-01", "sales", 1, "150.00"),
        ("2026-02", "b2b", 1, "300.00"),
        ("2026-03", "b2b", 1, "250.00"),
    ]
    assert [(r["key"], r["count"], r["amount"], r["average"]) for r in report["by_department"]] == [
        ("b2b", 2, "550.00", "275.00"),
        ("sales", 1, "150.00", "150.00"),
    ]
    assert report["totals"] == {"count": 3, "amount": "700.00", "average": "233.33"}
    march = ok(
        api.get(
            "/reports/proposals",
            params={"min_position": position, "from": "2026-03-01", "funnel": "upsell"},
        )
    )
    assert march["totals"]["amount"] == "250.00"


# --- the average check -------------------------------------------------------------------


def test_the_average_check_per_month_and_department(api: TestClient, clock: FakeClock) -> None:
    def project(amount: str, department: str) -> int:
        body = {"title": "Job", "company_name": "Acme", "amount": amount, "department": department}
        position: int = ok(api.post("/projects", json=body), 201)["position"]
        return position

    project("100.00", "production")
    clock.now = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    project("300.00", "production")
    position = project("200.00", "logistics")
    by_month = ok(api.get("/reports/average-check", params={"min_position": position}))
    assert [(r["key"], r["projects"], r["amount"], r["average"]) for r in by_month["rows"]] == [
        ("2026-01", 1, "100.00", "100.00"),
        ("2026-02", 2, "500.00", "250.00"),
    ]
    assert by_month["totals"] == {"projects": 3, "amount": "600.00", "average": "200.00"}
    by_department = ok(
        api.get("/reports/average-check", params={"min_position": position, "split": "department"})
    )
    assert [(r["key"], r["average"]) for r in by_department["rows"]] == [
        ("logistics", "200.00"),
        ("production", "200.00"),
    ]
    by_funnel = ok(
        api.get("/reports/average-check", params={"min_position": position, "split": "funnel"})
    )
    assert [(r["key"], r["projects"]) for r in by_funnel["rows"]] == [(None, 3)]  # direct


# --- splits add up to the totals -----------------------------------------------------------

MONTHS = [datetime(2025, m, 1, tzinfo=UTC) for m in range(1, 13)]
lead_rows = st.lists(
    st.tuples(
        st.sampled_from(["court", "out_of_court"]),
        st.sampled_from(["open", "paused", "non_quality", "won", "lost"]),
        st.booleans(),
        st.sampled_from(["website", "referral", None]),
        st.sampled_from(["boris", "clara", "nobody"]),
        st.decimals(min_value=0, max_value=10_000, places=2),
        st.sampled_from(MONTHS),
        st.integers(min_value=0, max_value=27),
    ),
    max_size=30,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(_ddl("leads", LEADS_COLUMNS))
    con.execute("CREATE TABLE users (username VARCHAR, department VARCHAR)")
    con.execute("INSERT INTO users VALUES ('boris', 'sales'), ('clara', 'b2b')")
    LeadDayProjection().create_tables(con)
    yield con
    con.close()


@settings(max_examples=60, deadline=None)
@given(leads=lead_rows, funnel=st.sampled_from([None, "court"]))
def test_every_split_adds_up_to_the_totals(
    scratch: duckdb.DuckDBPyConnection, leads: list[Any], funnel: str | None
) -> None:
    scratch.execute("DELETE FROM leads")
    for n, (f, status, repeat, source, manager, amount, month, day) in enumerate(leads):
        scratch.execute(
            "INSERT INTO leads (lead_id, funnel, status, repeat, source, manager, amount, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [f"l{n}", f, status, repeat, source, manager, amount, month + timedelta(days=day)],
        )
    LeadDayProjection().derive_all(scratch)
    start, end = MONTHS[2], MONTHS[9]
    totals = None
    for split in sales.LEAD_SPLITS:
        report = sales.leads_period(
            scratch, funnel=funnel, split=split, start=start, end=end, limit=5, offset=0
        )
        for figure in sales.FIGURES:
            assert (
                sum(r[figure]["count"] for r in report["rows"]) == report["totals"][figure]["count"]
            )
            assert (
                sum((r[figure]["amount"] for r in report["rows"]), Decimal(0))
                == report["totals"][figure]["amount"]
            )
        totals = totals or report["totals"]
        assert report["totals"] == totals  # every split cuts the same leads
        assert report["totals"]["leads"]["count"] == (
            report["totals"]["new"]["count"] + report["totals"]["repeat"]["count"]
        )
        assert sum(r["count"] for r in report["pause_reasons"]) == totals["paused"]["count"]
    expected = [
        lead
        for lead in leads
        if (funnel is None or lead[0] == funnel)
        and start <= lead[6] + timedelta(days=lead[7]) <= end
    ]
    assert totals is not None
    assert totals["leads"]["count"] == len(expected)
    assert totals["leads"]["amount"] == sum((lead[5] for lead in expected), Decimal(0))
