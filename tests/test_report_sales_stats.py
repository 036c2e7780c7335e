"""Sales statistics by delivered projects (issue 16 §1) through HTTP: the year's months
beside last year's, the forecast to the year's end and the method's backtest, against
figures worked out by hand; and properties of the method.

The history: projects delivered (moved to done) on the 10th of

| month | 2025 | 2026 |
| ----- | ---- | ---- |
| Jan   | 100  | 150  |
| Feb   | 200  | 300  |
| Mar   | 100  |      |
| Apr   | 400  |      |

and one project of 1000 in production, never delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from leadledger.wiring import Platform
from queries import sales_stats
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 1, 10, 9, 0, tzinfo=UTC))


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


DELIVERED = [
    (2025, 1, "100.00"),
    (2025, 2, "200.00"),
    (2025, 3, "100.00"),
    (2025, 4, "400.00"),
    (2026, 1, "150.00"),
    (2026, 2, "300.00"),
]


@pytest.fixture
def history(api: TestClient, clock: FakeClock) -> int:
    position = 0
    for year, month, amount in DELIVERED:
        clock.now = datetime(year, month, 10, 9, 0, tzinfo=UTC)
        body = {
            "title": "Job",
            "company_name": "Acme",
            "amount": amount,
            "department": "production",
        }
        project_id = ok(api.post("/projects", json=body), 201)["project_id"]
        position = ok(api.post(f"/projects/{project_id}/status", json={"status": "done"}))[
            "position"
        ]
    body = {"title": "Big job", "company_name": "Acme", "amount": "1000.00"}
    project_id = ok(api.post("/projects", json=body), 201)["project_id"]
    ok(api.post(f"/projects/{project_id}/status", json={"status": "in_production"}))
    return position


def test_the_year_beside_last_year_and_the_forecast(api: TestClient, history: int) -> None:
    report = ok(
        api.get(
            "/reports/delivered-sales",
            params={"min_position": history, "year": 2026, "as_of": "2026-02-28"},
        )
    )
    months = {m["month"]: m for m in report["months"]}
    assert (months[1]["amount"], months[1]["last_year_amount"]) == ("150.00", "100.00")
    assert months[1]["change_percent"] == "50.00"
    assert months[2]["change_percent"] == "50.00"
    assert (months[2]["projects"], months[2]["last_year_projects"]) == (1, 1)
    assert months[2]["forecast_amount"] is None  # a month to date is not forecast
    assert report["ratio"] == "1.5000"  # 450 / 300
    assert months[3]["forecast_amount"] == "150.00"
    assert months[4]["forecast_amount"] == "600.00"
    assert months[12]["forecast_amount"] == "0.00"
    assert report["to_date_amount"] == "450.00"
    assert report["last_year_to_date_amount"] == "300.00"
    assert report["forecast_year_amount"] == "1200.00"
    assert report["last_year_amount"] == "800.00"
    assert report["to_date_projects"] == 2
    assert "last year" in report["method"]


def test_a_month_not_over_is_forecast_too(api: TestClient, history: int) -> None:
    report = ok(
        api.get(
            "/reports/delivered-sales",
            params={"min_position": history, "year": 2026, "as_of": "2026-02-15T12:00:00Z"},
        )
    )
    months = {m["month"]: m for m in report["months"]}
    assert report["ratio"] == "1.5000"  # January only: 150 / 100
    # February: 200 last year * 1.5 = 300, and 300 already delivered: at least that
    assert months[2]["forecast_amount"] == "300.00"
    assert (months[2]["amount"], months[2]["change_percent"]) == ("300.00", "50.00")
    assert months[3]["forecast_amount"] == "150.00"
    assert report["forecast_year_amount"] == "1200.00"  # 150 + 300 + 150 + 600


def test_the_backtest_of_the_method(api: TestClient, history: int) -> None:
    report = ok(
        api.get(
            "/reports/delivered-sales",
            params={"min_position": history, "year": 2026, "as_of": "2026-04-30"},
        )
    )
    # made at January's end: ratio 150/100, Feb..Mar forecast 1.5 * (200 + 100) = 450
    # against 300 delivered; at February's end: March forecast 150 against 0 (no error)
    assert [
        (p["made_at"], p["horizon"], p["forecast"], p["actual"], p["error_percent"])
        for p in report["backtest"]
    ] == [
        ("2026-01", "2026-02..2026-03", "450.00", "300.00", "50.00"),
        ("2026-02", "2026-03..2026-03", "150.00", "0.00", None),
    ]
    assert report["backtest_mape_percent"] == "50.00"


def test_last_year_and_scope(api: TestClient, history: int) -> None:
    last_year = ok(
        api.get("/reports/delivered-sales", params={"min_position": history, "year": 2025})
    )
    assert last_year["to_date_amount"] == "800.00"
    assert last_year["last_year_amount"] == "0.00"
    assert last_year["ratio"] is None
    logistics = ok(
        api.get(
            "/reports/delivered-sales",
            params={"min_position": history, "year": 2025, "department": "logistics"},
        )
    )
    assert logistics["to_date_amount"] == "0.00"
    stranger = ok(
        api.get(
            "/reports/delivered-sales",
            params={"min_position": history, "year": 2025},
            headers=bearer("mia.manager", "manager"),
        )
    )
    assert stranger["to_date_amount"] == "0.00"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"year": "1999"}, "year"),
        ({"as_of": "soon"}, "as_of"),
        ({"department": "nowhere"}, "department"),
        ({"funnel": "nowhere"}, "funnel"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(
    api: TestClient, params: dict[str, str], field: str
) -> None:
    response = api.get("/reports/delivered-sales", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


# --- the method -------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=100_000, places=2)


@settings(max_examples=80, deadline=None)
@given(
    last=st.lists(amounts, min_size=12, max_size=12),
    this=st.lists(amounts, min_size=12, max_size=12),
    through=st.integers(min_value=1, max_value=11),
)
def test_the_forecast_is_last_years_months_scaled_and_the_months_add_up(
    last: list[Decimal], this: list[Decimal], through: int
) -> None:
    series: sales_stats.Series = {}
    for m in range(1, 13):
        series[(2025, m)] = (1, last[m - 1])
        if m <= through:
            series[(2026, m)] = (1, this[m - 1])
    ratio = sales_stats.ratio_to_date(series, 2026, through)
    to_date = sum(this[:through], Decimal(0))
    if sum(last[:through], Decimal(0)) == 0:
        assert ratio is None
    else:
        assert ratio is not None
    forecast = [sales_stats.forecast_month(series, 2026, m, ratio) for m in range(through + 1, 13)]
    for m, value in zip(range(through + 1, 13), forecast, strict=True):
        expected = last[m - 1] if ratio is None else last[m - 1] * ratio
        assert abs(value - expected) <= Decimal("0.005")
    # a year exactly like the last one is forecast exactly
    if this[:through] == last[:through] and ratio is not None:
        assert ratio == 1
        assert to_date + sum(forecast, Decimal(0)) == sum(last, Decimal(0))
