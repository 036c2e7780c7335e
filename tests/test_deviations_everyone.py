"""GET /reports/deviations lists everyone who should have logged hours: the active people
of the delivering departments (``[calendar] departments`` and ``roles`` of the rules),
those who logged nothing included (0 hours against the production calendar), beside
anyone else who logged hours.

The directory: ivan (production worker) logs 16 h in January; masha (production expert)
and kolya (logistics worker) log nothing; sveta (a sales manager), hugo (head of
production) and dora (a worker of the design department, not a delivering one) are not
expected to log hours; gone (a production worker) is deactivated on 2 February; late (a
production worker) is registered on 2 February.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregates.rules import ProjectRules, Rules
from leadledger.settings import Settings
from leadledger.wiring import Platform, load_rules
from queries.projects import calendar_hours
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer

ADMIN = bearer("root.admin", "admin")
RULES: Rules = load_rules(Settings().funnels_file, Settings().rules_file)
JANUARY = {"from": "2026-01-01", "to": "2026-01-31"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 12, 29, 9, 0, tzinfo=UTC))


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def register(api: TestClient, username: str, role: str, department: str | None) -> None:
    body = {"username": username, "name": username.title(), "role": role}
    if department is not None:
        body["department"] = department
    ok(api.post("/users", json=body, headers=ADMIN), 201)


def people(
    api: TestClient, platform: Platform, *viewer: dict[str, str], **period: str
) -> dict[str, tuple[Any, ...]]:
    headers = viewer[0] if viewer else None
    params = {**period, "min_position": platform.store.last_position()}
    report = ok(api.get("/reports/deviations", params=params, headers=headers))
    assert report["people"]["total"] == len(report["people"]["items"])
    return {
        p["person"]: (p["department"], Decimal(p["logged_hours"]), Decimal(p["missing_hours"]))
        for p in report["people"]["items"]
    }


def test_everyone_of_the_delivering_departments_is_listed_with_or_without_hours(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    assert RULES.project.calendar.departments == {"production", "logistics"}
    for username, role, department in (
        ("ivan", "department", "production"),
        ("masha", "expert", "production"),
        ("kolya", "department", "logistics"),
        ("sveta", "manager", "sales"),
        ("hugo", "head", "production"),
        ("dora", "department", "design"),
        ("gone", "department", "production"),
    ):
        register(api, username, role, department)
    project = ok(api.post("/projects", json={"title": "Fit-out", "company_name": "Acme"}), 201)
    clock.advance(days=35)  # 2 February 2026
    hours = f"/projects/{project['project_id']}/hours"
    for day in ("2026-01-12", "2026-01-13"):
        ok(api.post(hours, json={"person": "ivan", "day": day, "hours": "8"}), 201)
    ok(api.post("/users/gone", json={"active": False}, headers=ADMIN))
    register(api, "late", "department", "production")

    required = calendar_hours(
        RULES.project.calendar, datetime(2026, 1, 1).date(), datetime(2026, 1, 31).date()
    )
    assert required == Decimal(152)
    january = people(api, platform, **JANUARY)
    assert january == {
        "masha": ("production", 0, required),
        "kolya": ("logistics", 0, required),
        "gone": ("production", 0, required),  # active in January, deactivated since
        "ivan": ("production", 16, required - 16),
    }
    # most missing first, then by name
    report = ok(api.get("/reports/deviations", params=JANUARY))
    assert [p["person"] for p in report["people"]["items"]] == ["gone", "kolya", "masha", "ivan"]

    # March: gone has left, late has joined
    march = people(api, platform, **{"from": "2026-03-01", "to": "2026-03-31"})
    assert sorted(march) == ["ivan", "kolya", "late", "masha"]
    # December 2025: before anyone was registered, nobody is expected
    assert people(api, platform, **{"from": "2025-12-01", "to": "2025-12-28"}) == {}

    # of the directory, a head sees their department's people, anyone else themselves
    head = bearer("hugo", "head", "production")
    # (ivan's 16 hours are his, though the head does not see the project he logged them on)
    assert people(api, platform, head, **JANUARY) == {
        "masha": ("production", 0, required),
        "gone": ("production", 0, required),
        "ivan": ("production", 16, required - 16),
    }
    worker = bearer("kolya", "department", "logistics")
    assert people(api, platform, worker, **JANUARY) == {"kolya": ("logistics", 0, required)}


def test_someone_outside_the_directory_who_logged_hours_is_still_listed(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    project = ok(api.post("/projects", json={"title": "Survey", "company_name": "Acme"}), 201)
    clock.advance(days=35)
    hours = f"/projects/{project['project_id']}/hours"
    ok(api.post(hours, json={"person": "guest", "day": "2026-01-12", "hours": "4"}), 201)
    assert people(api, platform, **JANUARY) == {"guest": (None, 4, Decimal(148))}


def test_the_delivering_departments_are_configurable() -> None:
    projects = {"statuses": [{"id": "planning"}, {"id": "done"}], "departments": {"a": "x"}}
    default = ProjectRules.from_config(projects, {})
    assert default.calendar.departments == frozenset({"x"})
    assert default.calendar.roles == frozenset({"department", "expert"})
    configured = ProjectRules.from_config(projects, {"departments": ["y"], "roles": ["pm"]})
    assert configured.calendar.departments == frozenset({"y"})
    assert configured.calendar.roles == frozenset({"pm"})
