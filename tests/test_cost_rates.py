"""Hourly cost rates in the user directory (issue 16 §2): ``UserCostRateSet`` on the
user's stream, set by administrators and top management through
``PUT /users/{u}/cost-rate``; the rate in force on a day is the last one whose first day
is not after it; every rate is kept in the ``user_cost_rates`` read model.

Given / When / Then for the decider; hypothesis checks that the rate in force on any day,
folded from any history of rates, is the last one set for the latest first day up to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from aggregates import users
from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, RuleViolation
from commands.users import load_user
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, bearer
from tests.deal_helpers import ok
from tests.test_access import ADMIN, settle

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def meta(actor: str = "tom.top", at: datetime = T0) -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=uuid4())


def person(*rates: tuple[str, str]) -> users.User:
    """A registered worker with these (rate, first day) set in turn."""
    state = users.evolve(
        None,
        users.register(users.RegisterUser("ivan", "Ivan", "department", "production"), meta()),
    )
    for rate, day in rates:
        command = users.SetCostRate(rate, date.fromisoformat(day), "grade")
        state = users.evolve(state, users.set_cost_rate(state, command, meta()))
    return state


# --- the decider -----------------------------------------------------------------------------


def test_a_rate_is_set_from_a_day_with_who_and_why() -> None:
    given = person(("900.00", "2025-12-01"))
    command = users.SetCostRate(Decimal("1000.50"), date(2026, 1, 1), " new grade ", "RUB")
    event = users.set_cost_rate(given, command, meta("adam.admin"))
    assert (event.username, event.rate, event.currency, event.valid_from) == (
        "ivan",
        Decimal("1000.50"),
        "RUB",
        date(2026, 1, 1),
    )
    assert (event.reason, event.actor, event.previous) == ("new grade", "adam.admin", Decimal(900))


def test_the_rate_in_force_is_the_last_one_from_a_day_not_after_it() -> None:
    state = person(("900", "2026-01-01"), ("1200", "2026-02-01"), ("1000", "2026-01-01"))
    assert state.rate_on(date(2025, 12, 31)) is None
    assert [state.rate_on(date(2026, m, 15)).rate for m in (1, 2, 3)] == [  # type: ignore[union-attr]
        Decimal(1000),
        Decimal(1200),
        Decimal(1200),
    ]


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (users.SetCostRate("-1", date(2026, 1, 1), "x"), "rate"),
        (users.SetCostRate("10.001", date(2026, 1, 1), "x"), "rate"),
        (users.SetCostRate("abc", date(2026, 1, 1), "x"), "rate"),
        (users.SetCostRate("2000000", date(2026, 1, 1), "x"), "rate"),
        (users.SetCostRate("10", None, "x"), "valid_from"),
        (users.SetCostRate("10", date(1999, 1, 1), "x"), "valid_from"),
        (users.SetCostRate("10", date(2040, 1, 1), "x"), "valid_from"),
        (users.SetCostRate("10", date(2026, 1, 1), "  "), "reason"),
        (users.SetCostRate("10", date(2026, 1, 1), "x", "rub"), "currency"),
    ],
)
def test_a_bad_value_is_named(command: users.SetCostRate, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        users.set_cost_rate(person(), command, meta())
    assert refused.value.field == field


def test_the_same_rate_from_the_same_day_changes_nothing() -> None:
    state = person(("900", "2026-01-01"))
    with pytest.raises(RuleViolation) as refused:
        users.set_cost_rate(state, users.SetCostRate("900", date(2026, 1, 1), "again"), meta())
    assert refused.value.rule == "nothing_changed"


@given(
    st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 400)), min_size=0, max_size=12),
    st.integers(-10, 420),
)
def test_the_rate_on_a_day_is_the_last_set_for_the_latest_day_up_to_it(
    sets: list[tuple[int, int]], asked: int
) -> None:
    first = date(2025, 1, 1)
    state = person()
    last_set: dict[int, int] = {}
    for cents, offset in sets:
        command = users.SetCostRate(Decimal(cents) / 100, first + timedelta(days=offset), "r")
        try:
            state = users.evolve(state, users.set_cost_rate(state, command, meta()))
        except RuleViolation:
            assert last_set.get(offset) == cents  # only a repeat is refused
        last_set[offset] = cents
    days = [d for d in last_set if d <= asked]
    found = state.rate_on(first + timedelta(days=asked))
    if not days:
        assert found is None
    else:
        assert found is not None
        assert found.rate == Decimal(last_set[max(days)]) / 100


# --- through HTTP ----------------------------------------------------------------------------


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        body = {"username": "ivan.fitter", "name": "Ivan", "role": "department"}
        ok(client.post("/users", json={**body, "department": "production"}, headers=ADMIN), 201)
        yield client


def put(api: TestClient, headers: dict[str, str], who: str = "ivan.fitter", **body: Any) -> Any:
    fields = {"rate": "1000.00", "valid_from": "2026-01-01", "reason": "grade", **body}
    return api.put(f"/users/{who}/cost-rate", json=fields, headers=headers)


def test_admins_and_top_management_set_rates_kept_in_the_read_model(
    api: TestClient, platform: Platform
) -> None:
    ok(put(api, ADMIN))
    ok(put(api, ACTOR, rate="1500.00", valid_from="2026-02-01", reason="raise"))
    ok(put(api, ACTOR, rate="1100.00", reason="correction"))  # replaces 01-01
    state = load_user(platform.store, "ivan.fitter")
    assert [(r.valid_from, r.rate) for r in state.cost_rates] == [
        (date(2026, 1, 1), Decimal("1100.00")),
        (date(2026, 2, 1), Decimal("1500.00")),
    ]
    settle(platform)
    with platform.db.cursor() as cursor:
        stored = cursor.execute(
            "SELECT valid_from, rate, currency, reason, set_by FROM user_cost_rates "
            "ORDER BY valid_from"
        ).fetchall()
    assert stored == [
        (date(2026, 1, 1), Decimal("1100.00"), "RUB", "correction", "anna.sales"),
        (date(2026, 2, 1), Decimal("1500.00"), "RUB", "raise", "anna.sales"),
    ]
    events = ok(api.get("/events", params={"after": 0, "limit": 100}))
    published = [e for e in events["items"] if e["type"] == "UserCostRateSet"]
    assert published[-1]["data"]["rate"] == "1100.00"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (bearer("mia.manager", "manager"), 403),
        (bearer("pia.pm", "pm"), 403),
        (bearer("hana.head", "head", "sales"), 403),
        (bearer("ana.analyst", "analyst"), 403),
    ],
)
def test_no_one_else_sets_a_rate(api: TestClient, headers: dict[str, str], status: int) -> None:
    assert put(api, headers).status_code == status


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rate": "-5"}, "rate"),
        ({"rate": "1.005"}, "rate"),
        ({"valid_from": "someday"}, "valid_from"),
        ({"reason": ""}, "reason"),
        ({"currency": "rubles"}, "currency"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    answer = put(api, ADMIN, **body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field, answer.json()


def test_an_unknown_person_is_a_404_and_a_repeat_a_409(api: TestClient) -> None:
    assert put(api, ADMIN, who="nobody").status_code == 404
    ok(put(api, ADMIN))
    again = put(api, ADMIN)
    assert again.status_code == 409
    assert again.json()["rule"] == "nothing_changed"
