"""Monthly sales plans (seed 004: «План утверждается руководством компании и не может быть
отредактирован МОП»).

(a) Given/When/Then of the decider: who may set a plan, what a plan is, every change an
    event with who and why.
(b) Plan to date against the production calendar (hypothesis): monotone in the day, the
    whole plan on the month's last working day, 0 before its first.
(c) Through HTTP: PUT /sales-plans/{manager}/{month} (403 naming the rule for a manager,
    422 naming the field), GET /sales-plans scoped and filtered, a plan's history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from aggregates import sales_plans
from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from aggregates.rules import Calendar
from aggregates.sales_plans import Person, SalesPlanSet, SetSalesPlan
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import Platform, load_rules
from tests.conftest import bearer

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOP = Person("tess.top", "top", None)
HEAD = Person("hana.head", "head", "sales")
MANAGER = Person("mia.manager", "manager", "sales")
OTHER_HEAD = Person("lena.head", "head", "logistics")
RULES = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)


def meta(actor: str = "hana.head") -> CommandMeta:
    return CommandMeta(actor=actor, at=T0, command_id=uuid4())


def plan(**overrides: Any) -> SetSalesPlan:
    fields: dict[str, Any] = {
        "manager": "mia.manager",
        "month": "2026-01",
        "amount": Decimal("1000000.00"),
        "currency": "RUB",
        "deals": 4,
        "reason": "the annual plan, January",
    }
    return SetSalesPlan(**(fields | overrides))


# --- (a) the decider ---------------------------------------------------------------------


def test_a_head_sets_a_plan_of_their_department_with_who_and_why() -> None:
    event = sales_plans.decide(None, plan(), HEAD, MANAGER, meta())
    assert isinstance(event, SalesPlanSet)
    assert (event.manager, event.month, event.amount, event.deals) == (
        "mia.manager",
        "2026-01",
        Decimal("1000000.00"),
        4,
    )
    assert (event.actor, event.reason, event.previous_amount) == (
        "hana.head",
        "the annual plan, January",
        None,
    )
    state = sales_plans.evolve(None, event)
    changed = sales_plans.decide(
        state, plan(amount="1200000", reason="a new client"), TOP, MANAGER, meta("tess.top")
    )
    assert (changed.previous_amount, changed.amount, changed.actor) == (
        Decimal("1000000.00"),
        Decimal("1200000.00"),
        "tess.top",
    )
    assert sales_plans.evolve(state, changed).version == 2


@pytest.mark.parametrize(
    ("setter", "rule"),
    [
        (MANAGER, "plan_set_by_management"),
        (Person("ana.assistant", "assistant", "sales"), "plan_set_by_management"),
        (OTHER_HEAD, "plan_of_own_department"),
        (Person("mia.manager", "head", "sales"), "own_plan_by_management"),
    ],
)
def test_only_management_sets_a_plan(setter: Person, rule: str) -> None:
    with pytest.raises(NotPermitted) as refused:
        sales_plans.decide(None, plan(), setter, MANAGER, meta(setter.user))
    assert refused.value.rule == rule


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "26-01"}, "month"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"currency": "rub"}, "currency"),
        ({"deals": -1}, "deals"),
        ({"deals": True}, "deals"),
        ({"reason": "  "}, "reason"),
        ({"reason": None}, "reason"),
    ],
)
def test_a_bad_plan_names_its_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        sales_plans.decide(None, plan(**overrides), HEAD, MANAGER, meta())
    assert refused.value.field == field


def test_a_plan_is_for_an_active_seller() -> None:
    for planned in (None, Person("pm", "pm", "sales"), Person("x", "manager", "sales", False)):
        with pytest.raises(InvalidValue) as refused:
            sales_plans.decide(None, plan(), TOP, planned, meta())
        assert refused.value.field == "manager"


def test_setting_the_same_plan_again_is_refused() -> None:
    state = sales_plans.evolve(None, sales_plans.decide(None, plan(), HEAD, MANAGER, meta()))
    with pytest.raises(RuleViolation) as refused:
        sales_plans.decide(state, plan(reason="again"), HEAD, MANAGER, meta())
    assert refused.value.rule == "plan_unchanged"


# --- (b) plan to date ------------------------------------------------------------------------

CALENDAR = RULES.calendar
months = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2024, 2028), st.integers(1, 12))
amounts = st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False)
calendars = st.sampled_from(
    [
        CALENDAR,
        Calendar(),
        Calendar(working_weekdays=frozenset({1, 2, 3, 4, 5, 6})),
        Calendar(working_weekdays=frozenset()),
    ]
)


@given(months, amounts, calendars)
def test_plan_to_date_grows_to_the_plan_over_the_working_days(
    month: str, amount: Decimal, calendar: Calendar
) -> None:
    first, last = sales_plans.month_days(month)
    days = [first - timedelta(days=1)] + [
        first + timedelta(days=n) for n in range((last - first).days + 2)
    ]
    due = [sales_plans.plan_to_date(amount, month, d, calendar) for d in days]
    assert due == sorted(due), "monotone in the day"
    assert due[0] == 0
    assert due[-1] == amount
    worked = sales_plans.working_days(month, calendar)
    if worked:
        assert sales_plans.plan_to_date(amount, month, worked[-1], calendar) == amount
        before = worked[0] - timedelta(days=1)
        assert sales_plans.plan_to_date(amount, month, before, calendar) == 0
        assert all(0 <= d <= amount for d in due)


def test_the_production_calendar_skips_holidays() -> None:
    january = sales_plans.working_days("2026-01", CALENDAR)
    assert date(2026, 1, 1) not in january
    assert date(2026, 1, 2) not in january
    assert date(2026, 1, 5) == january[0]
    assert sales_plans.plan_to_date(Decimal("100"), "2026-01", date(2026, 1, 4), CALENDAR) == 0
    assert sales_plans.plan_to_date(Decimal("100"), "2026-01", date(2026, 1, 5), CALENDAR) == (
        Decimal(100) / len(january)
    ).quantize(Decimal("0.01"))


# --- (c) through HTTP -------------------------------------------------------------------------

ADMIN = bearer("root.admin", "admin")
HEAD_TOKEN = bearer("hana.head", "head", "sales")
MANAGER_TOKEN = bearer("mia.manager", "manager", "sales")
TOP_TOKEN = bearer("tess.top", "top")


def register_people(client: TestClient) -> None:
    people = [
        ("hana.head", "head", "sales", None, None),
        ("mia.manager", "manager", "sales", "Moscow region", "Moscow"),
        ("kir.manager", "manager", "sales", "Volga", "Kazan"),
        ("lev.logistics", "department", "logistics", None, None),
        ("otto.other", "manager", "partners", "Volga", "Samara"),
    ]
    for username, role, department, region, city in people:
        body = {
            "username": username,
            "name": username.replace(".", " ").title(),
            "role": role,
            "department": department,
            "region": region,
            "city": city,
        }
        response = client.post("/users", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text


def put_plan(
    client: TestClient, manager: str, month: str, headers: dict[str, str], **body: Any
) -> Any:
    fields = {"amount": "500000.00", "deals": 3, "reason": "monthly plan"} | body
    return client.put(f"/sales-plans/{manager}/{month}", json=fields, headers=headers)


def test_plans_over_http(client: TestClient, platform: Platform) -> None:
    register_people(client)
    set_ = put_plan(client, "mia.manager", "2026-01", HEAD_TOKEN)
    assert set_.status_code == 200, set_.text
    assert set_.json()["version"] == 1
    assert set_.headers["ETag"] == '"1"'

    # the manager reads their plan but may not change it: 403 naming the rule
    refused = put_plan(client, "mia.manager", "2026-01", MANAGER_TOKEN, amount="1.00")
    assert refused.status_code == 403, refused.text
    assert refused.json()["rule"] == "plan_set_by_management"
    other = put_plan(client, "otto.other", "2026-01", HEAD_TOKEN)
    assert (other.status_code, other.json()["rule"]) == (403, "plan_of_own_department")
    pm = client.put(
        "/sales-plans/mia.manager/2026-01",
        json={"amount": "1", "reason": "x"},
        headers=bearer("pat.pm", "pm", "projects"),
    )
    assert pm.status_code == 403

    for body, field in (
        ({"amount": "-5"}, "amount"),
        ({"reason": ""}, "reason"),
        ({"currency": "rubles"}, "currency"),
    ):
        bad = put_plan(client, "mia.manager", "2026-02", HEAD_TOKEN, **body)
        assert bad.status_code == 422, bad.text
        assert field in bad.text
    assert put_plan(client, "mia.manager", "2026-1", HEAD_TOKEN).status_code == 422
    assert put_plan(client, "nobody.here", "2026-01", TOP_TOKEN).status_code == 422
    again = put_plan(client, "mia.manager", "2026-01", HEAD_TOKEN)
    assert (again.status_code, again.json()["rule"]) == (409, "plan_unchanged")

    changed = put_plan(
        client, "mia.manager", "2026-01", TOP_TOKEN, amount="650000", reason="a big client"
    )
    assert changed.status_code == 200
    ok = put_plan(client, "otto.other", "2026-01", TOP_TOKEN, amount="10")
    assert ok.status_code == 200
    put_plan(client, "kir.manager", "2026-02", HEAD_TOKEN)
    position = {"min_position": platform.store.last_position()}

    everyone = client.get("/sales-plans", params=position, headers=TOP_TOKEN).json()
    assert everyone["total"] == 3
    assert [(p["month"], p["manager"]) for p in everyone["items"]] == [
        ("2026-02", "kir.manager"),
        ("2026-01", "mia.manager"),
        ("2026-01", "otto.other"),
    ]
    mine = client.get("/sales-plans", params=position, headers=MANAGER_TOKEN).json()
    assert [(p["manager"], p["amount"], p["set_by"]) for p in mine["items"]] == [
        ("mia.manager", "650000.00", "tess.top")
    ]
    department = client.get("/sales-plans", params=position, headers=HEAD_TOKEN).json()
    assert {p["manager"] for p in department["items"]} == {"mia.manager", "kir.manager"}
    january = client.get(
        "/sales-plans", params={**position, "month": "2026-01", "department": "partners"}
    ).json()
    assert [p["manager"] for p in january["items"]] == ["otto.other"]
    assert client.get("/sales-plans", params={"month": "January"}).status_code == 422

    history = client.get("/sales-plans/mia.manager/2026-01/history", headers=MANAGER_TOKEN)
    assert history.status_code == 200, history.text
    changes = history.json()["changes"]
    assert [(c["set_by"], c["amount"], c["previous_amount"], c["reason"]) for c in changes] == [
        ("hana.head", "500000.00", None, "monthly plan"),
        ("tess.top", "650000.00", "500000.00", "a big client"),
    ]
    unseen = client.get("/sales-plans/otto.other/2026-01/history", headers=MANAGER_TOKEN)
    assert unseen.status_code == 404

    workbook = client.get("/sales-plans", params={"format": "xlsx"}, headers=TOP_TOKEN)
    assert workbook.status_code == 200
    assert workbook.content[:2] == b"PK"
