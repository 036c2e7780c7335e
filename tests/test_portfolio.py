"""The project portfolio and delivery reports: the read models of projects, tasks, time
entries, invoices and payments, and the queries PMs, heads, analysts and finance read.

One portfolio of four projects is built through the command handlers with the platform's
fake clock (the process managers do not run, so computed health is recorded by hand);
every figure the tests expect is worked out by hand in the comments, or by folding the
aggregates from the event store. Queries pass ``min_position`` to read every command in.

Hypothesis checks that projecting random project histories in random page sizes gives
exactly what a rebuild gives, and that each project's billing figures always match the
sums of its invoices and payments.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import billing, project
from aggregates.errors import DomainError
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult
from commands.projects import (
    create_project,
    handle_billing_command,
    handle_project_command,
    load_billing,
    load_project,
)
from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import Platform, event_codec, load_rules, read_model_projections
from projections.base import Projection
from projections.database import ReadModelDatabase
from projections.projector import POSITION_NAME, Projector, rebuild
from projections.projects import TABLES, ProjectProjection, project_projections
from queries.projects import calendar_hours
from read_api.app import create_app
from schemas.portfolio import ResourceLoadReport
from tests.conftest import ACTOR, FakeClock, PlatformFactory
from tests.factories import FUNNELS, LeadDriver

RULES = load_rules(Settings().funnels_file, Settings().rules_file)
TODAY = date(2026, 2, 2)
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def D(value: str | int) -> Decimal:
    return Decimal(value).quantize(CENT)


# --- sending delivery commands through the handlers -------------------------------------


class Delivery:
    """Sends project and billing commands through the handlers, as the HTTP layer does."""

    def __init__(
        self, store: EventStore, rules: Rules, clock: Callable[[], datetime], actor: str = "olga"
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.actor = actor

    def ctx(self) -> CommandContext:
        return CommandContext.new(actor=self.actor, clock=self.clock)

    def create(self, title: str, company_name: str, **card: Any) -> UUID:
        project_id = uuid4()
        command = project.CreateProject(
            project_id=project_id, title=title, company_name=company_name, **card
        )
        create_project(self.store, self.rules, command, self.ctx())
        return project_id

    def do(self, project_id: UUID, command: project.ProjectCommand) -> CommandResult:
        return handle_project_command(self.store, self.rules, project_id, command, self.ctx())

    def task(self, project_id: UUID, task_id: str, planned: str, *depends: str) -> None:
        self.do(
            project_id,
            project.AddTask(task_id, task_id.title(), planned_hours=D(planned), depends_on=depends),
        )

    def log(
        self, project_id: UUID, person: str, day: date, hours: str, task_id: str | None = None
    ) -> UUID:
        entry_id = uuid4()
        self.do(project_id, project.LogHours(entry_id, person, day, D(hours), task_id))
        return entry_id

    def correct(self, project_id: UUID, entry_id: UUID, hours: str) -> None:
        self.do(project_id, project.CorrectHours(entry_id, D(hours), "mistyped"))

    def invoice(
        self, project_id: UUID, number: str, amount: str, issued_on: date, due: date
    ) -> None:
        command = billing.IssueProjectInvoice(number, D(amount), due, issued_on)
        handle_billing_command(self.store, project_id, command, self.ctx())

    def carry(self, project_id: UUID, number: str, amount: str, issued_on: date) -> None:
        """A won deal's invoice, as the project creation carries it (no due date)."""
        command = billing.CarryDealInvoice(uuid4(), number, D(amount), "main", True, issued_on)
        handle_billing_command(self.store, project_id, command, self.ctx())

    def pay(self, project_id: UUID, number: str, amount: str, paid_on: date) -> None:
        command = billing.RecordPayment(number, D(amount), paid_on)
        handle_billing_command(self.store, project_id, command, self.ctx())


# --- the portfolio ----------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    """Monday 2 February 2026: January's hours can be logged."""
    return FakeClock(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    """The process managers stay off: computed health is recorded here by hand."""
    return make_platform(process_managers=False)


@dataclass
class Portfolio:
    ids: dict[str, UUID]

    def id(self, key: str) -> str:
        return str(self.ids[key])


JANUARY = {"from": "2026-01-01", "to": "2026-01-31"}
FEBRUARY = {"from": "2026-02-01", "to": "2026-02-28"}


@pytest.fixture
def portfolio(platform: Platform, clock: FakeClock) -> Portfolio:
    """Four projects, created a minute apart (newest first: p4, p3, p2, p1)."""
    d = Delivery(platform.store, platform.rules, clock)
    ids: dict[str, UUID] = {}

    # p1: olga's fit-out for acme, every mandatory field filled; in production
    clock.advance(minutes=1)
    ids["p1"] = p1 = d.create(
        "Warehouse fit-out",
        "Acme",
        company_id="acme",
        amount=D("1500"),
        pm="olga",
        curator="irina",
        department="production",
        direction="turnkey",
        category="fit-out",
        planned_start=date(2026, 1, 10),
        planned_end=date(2026, 3, 31),
    )
    # tasks: survey 10 h (complete), design 30 h (50 %), mount 60 h (10 %): % done =
    # (10·100 + 30·50 + 60·10) / 100 = 31; planned 100 h
    d.task(p1, "survey", "10")
    d.task(p1, "design", "30", "survey")
    d.task(p1, "mount", "60", "design")
    d.do(p1, project.UpdateTask("design", {"percent_done": 50}))
    d.do(p1, project.UpdateTask("mount", {"percent_done": 10}))
    d.do(p1, project.CompleteTask("survey"))
    d.do(p1, project.MoveProjectToStatus("in_production"))
    # hours: ivan 8 (12 Jan, survey), ivan 6 → 4 (13 Jan, design), petr 7 (13 Jan, design),
    # petr 5 (2 Feb, mount): 24 in all, 19 in January
    d.log(p1, "ivan", date(2026, 1, 12), "8", "survey")
    typo = d.log(p1, "ivan", date(2026, 1, 13), "6", "design")
    d.correct(p1, typo, "4")
    d.log(p1, "petr", date(2026, 1, 13), "7", "design")
    d.log(p1, "petr", date(2026, 2, 2), "5", "mount")
    # health: computed some difficulties, overridden by olga with big difficulties
    d.do(p1, project.RecordComputedHealth("some_difficulties", ("1 overdue task(s): design",)))
    d.do(p1, project.SetHealth("big_difficulties", "the client changed the layout"))
    # billing: A-1 1000 (10 Jan) paid 400 on 20 Jan and 600 on 1 Feb; A-2 500 (1 Feb) paid
    # 200 on 2 Feb: invoiced 1500, paid 1200, remaining 300, partially paid
    d.invoice(p1, "A-1", "1000", date(2026, 1, 10), date(2026, 1, 31))
    d.pay(p1, "A-1", "400", date(2026, 1, 20))
    d.pay(p1, "A-1", "600", date(2026, 2, 1))
    d.invoice(p1, "A-2", "500", date(2026, 2, 1), date(2026, 2, 28))
    d.pay(p1, "A-2", "200", date(2026, 2, 2))

    # p2: olga's crane rental for acme, no curator, category or dates; done
    clock.advance(minutes=1)
    ids["p2"] = p2 = d.create(
        "Crane rental",
        "Acme",
        company_id="acme",
        pm="olga",
        department="logistics",
        direction="transport",
    )
    # one task with no planned hours, 40 % done: % done is the plain mean, 40
    d.task(p2, "rent", "0")
    d.do(p2, project.UpdateTask("rent", {"percent_done": 40}))
    # hours: ivan 2 (14 Jan); anna 8 (14 Jan) withdrawn (corrected to 0)
    d.log(p2, "ivan", date(2026, 1, 14), "2")
    withdrawn = d.log(p2, "anna", date(2026, 1, 14), "8")
    d.correct(p2, withdrawn, "0")
    # health: computed some difficulties; set good by hand, then cleared: computed again
    d.do(p2, project.RecordComputedHealth("some_difficulties", ("'planning' over limit",)))
    d.do(p2, project.SetHealth("good", "all fine, the client waits"))
    d.do(p2, project.ClearHealth())
    # billing: B-1 300 (15 Jan) paid in full on 16 Jan
    d.invoice(p2, "B-1", "300", date(2026, 1, 15), date(2026, 1, 30))
    d.pay(p2, "B-1", "300", date(2026, 1, 16))
    d.do(p2, project.MoveProjectToStatus("done"))

    # p3: boris's office move for globex, no curator, category or dates; planning
    clock.advance(minutes=1)
    ids["p3"] = p3 = d.create(
        "Office move",
        "Globex",
        company_id="globex",
        pm="boris",
        curator=None,
        department="production",
        direction="transport",
    )
    d.log(p3, "zoe", date(2026, 2, 2), "4")  # zoe's first hours: in February

    # p4: no PM and no department; on hold; vera's 3 hours on 30 Dec; D-1 250 unpaid
    clock.advance(minutes=1)
    ids["p4"] = p4 = d.create("Archive scan", "Initech")
    d.do(p4, project.MoveProjectToStatus("on_hold"))
    d.log(p4, "vera", date(2025, 12, 30), "3")
    d.invoice(p4, "D-1", "250", date(2026, 1, 20), date(2026, 2, 20))
    return Portfolio(ids)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        yield client


def get(api: TestClient, platform: Platform, path: str, **params: Any) -> dict[str, Any]:
    """GET with every command in the read models; the 200 answer."""
    query = {"min_position": platform.store.last_position(), **params}
    response = api.get(path, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(api: TestClient, path: str, **params: Any) -> str:
    """The field a 422 answer names."""
    response = api.get(path, params=params)
    assert response.status_code == 422, response.text
    field: str = response.json()["field"]
    return field


def dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def percent(part: Decimal, whole: Decimal) -> Decimal:
    return (part * 100 / whole).quantize(CENT, rounding=ROUND_HALF_UP)


def calendar_hours_by_day(first: date, last: date) -> Decimal:
    """The production calendar's hours, day by day (independent of the query's count)."""
    total = 0.0
    day = first
    while day <= last:
        total += RULES.project.calendar.working_hours(day)
        day += timedelta(days=1)
    return D(str(total))


# --- GET /projects ----------------------------------------------------------------------


def test_each_project_row_is_what_its_events_fold_to(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    body = get(api, platform, "/projects")
    assert body["total"] == 4
    assert [i["project_id"] for i in body["items"]] == [
        portfolio.id(k) for k in ("p4", "p3", "p2", "p1")
    ]
    rows = {i["project_id"]: i for i in body["items"]}
    for key, project_id in portfolio.ids.items():
        state = load_project(platform.store, project_id)
        bills = load_billing(platform.store, project_id)
        row = rows[str(project_id)]
        invoiced = bills.invoiced if bills else ZERO
        paid = bills.paid if bills else ZERO
        assert row["status"] == state.status, key
        assert row["health"] == state.health, key
        assert row["computed_health"] == state.computed_health, key
        assert row["computed_reasons"] == list(state.computed_reasons), key
        manual = state.manual_health
        assert row["manual_health"] == (manual.level if manual else None), key
        assert row["manual_comment"] == (manual.comment if manual else None), key
        assert (row["pm"], row["curator"], row["department"]) == (
            state.pm,
            state.curator,
            state.department,
        )
        assert dec(row["planned_hours"]) == state.planned_hours, key
        assert dec(row["actual_hours"]) == state.actual_hours, key
        assert row["percent_done"] == state.percent_done, key
        assert row["tasks"] == len(state.tasks), key
        assert row["tasks_done"] == sum(1 for t in state.tasks if t.completed_at), key
        assert row["empty_mandatory_fields"] == state.empty_mandatory_fields(RULES.project)
        assert dec(row["invoiced"]) == invoiced, key
        assert dec(row["paid"]) == paid, key
        owed = billing.project_payment(state.amount, invoiced, paid)
        assert dec(row["remaining"]) == owed.remaining, key
        assert row["payment_status"] == owed.status, key
        assert dec(row["invoiced_unpaid"]) == invoiced - paid, key
        assert row["version"] == state.version, key

    # and by hand
    p1, p2, p3, p4 = (rows[portfolio.id(k)] for k in ("p1", "p2", "p3", "p4"))
    assert (p1["health"], p1["computed_health"], p1["manual_health"]) == (
        "big_difficulties",
        "some_difficulties",
        "big_difficulties",
    )
    assert p1["manual_comment"] == "the client changed the layout"
    assert (dec(p1["planned_hours"]), dec(p1["actual_hours"]), p1["percent_done"]) == (
        D(100),
        D(24),
        31.0,
    )
    assert (p1["tasks"], p1["tasks_done"]) == (3, 1)
    assert (dec(p1["invoiced"]), dec(p1["paid"]), dec(p1["remaining"])) == (
        D(1500),
        D(1200),
        D(300),
    )
    assert p1["payment_status"] == "partially_paid"
    assert p1["empty_mandatory_fields"] == []
    assert (p2["status"], p2["health"], p2["manual_health"]) == (
        "done",
        "some_difficulties",
        None,
    )
    assert (dec(p2["actual_hours"]), p2["percent_done"]) == (D(2), 40.0)
    assert (p2["payment_status"], dec(p2["remaining"])) == ("paid", ZERO)
    assert p2["empty_mandatory_fields"] == ["curator", "category", "planned_start", "planned_end"]
    assert (p3["health"], p3["payment_status"], dec(p3["invoiced"])) == ("good", "not_paid", ZERO)
    assert (p4["status"], p4["payment_status"], dec(p4["remaining"])) == (
        "on_hold",
        "not_paid",
        D(250),
    )
    assert p4["empty_mandatory_fields"] == list(RULES.project.mandatory_fields)


def test_the_project_list_filters_and_pages(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    def matching(**filters: Any) -> list[str]:
        found = get(api, platform, "/projects", **filters)
        assert found["total"] == len(found["items"])
        return sorted(i["project_id"] for i in found["items"])

    def projects(*keys: str) -> list[str]:
        return sorted(portfolio.id(k) for k in keys)

    assert matching(pm="olga") == projects("p1", "p2")
    assert matching(pm="nobody") == []
    assert matching(curator="irina") == projects("p1")
    assert matching(department="production") == projects("p1", "p3")
    assert matching(status="planning") == projects("p3")
    assert matching(status="done") == projects("p2")
    assert matching(health="good") == projects("p3", "p4")
    assert matching(health="some_difficulties") == projects("p2")
    assert matching(health="big_difficulties") == projects("p1")
    assert matching(payment_status="not_paid") == projects("p3", "p4")
    assert matching(payment_status="partially_paid") == projects("p1")
    assert matching(payment_status="paid") == projects("p2")
    assert matching(direction="transport") == projects("p2", "p3")
    assert matching(category="fit-out") == projects("p1")
    assert matching(company_id="acme") == projects("p1", "p2")
    assert matching(company_id="acme", health="good") == []
    assert matching(pm="olga", payment_status="paid", direction="transport") == projects("p2")

    page = get(api, platform, "/projects", limit=2, offset=1)
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [i["project_id"] for i in page["items"]] == [portfolio.id("p3"), portfolio.id("p2")]
    assert get(api, platform, "/projects", offset=4)["items"] == []

    assert refused(api, "/projects", status="archived") == "status"
    assert refused(api, "/projects", health="fine") == "health"
    assert refused(api, "/projects", payment_status="overpaid") == "payment_status"
    assert refused(api, "/projects", limit=0) == "limit"
    assert refused(api, "/projects", limit=501) == "limit"
    assert refused(api, "/projects", offset=-1) == "offset"
    assert refused(api, "/projects", min_position=-1) == "min_position"


# --- GET /reports/portfolio -------------------------------------------------------------


def _by(items: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {i[key]: i for i in items}


def test_the_portfolio_of_the_company_a_pm_and_a_department(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    company = get(api, platform, "/reports/portfolio")
    # 4 projects, 3 open (p2 is done); hours planned 100 (p1), logged 24 + 2 + 4 + 3
    assert (company["pm"], company["department"]) == (None, None)
    assert (company["projects"], company["open_projects"]) == (4, 3)
    assert (dec(company["planned_hours"]), dec(company["actual_hours"])) == (D(100), D(33))
    statuses = [(s["status"], s["projects"]) for s in company["by_status"]]
    assert statuses == [
        ("planning", 1),
        ("in_production", 1),
        ("rework", 0),
        ("approval", 0),
        ("closing", 0),
        ("done", 1),
        ("on_hold", 1),
    ]
    assert {h["health"]: h["projects"] for h in company["by_health"]} == {
        "good": 2,
        "some_difficulties": 1,
        "big_difficulties": 1,
    }
    # per PM, most open projects first (boris 1, olga 1, then no PM)
    assert [p["pm"] for p in company["pms"]] == ["boris", "olga", None]
    olga = _by(company["pms"], "pm")["olga"]
    assert (olga["projects"], olga["open_projects"]) == (2, 1)
    assert (dec(olga["planned_hours"]), dec(olga["actual_hours"])) == (D(100), D(26))
    olga_statuses = {s["status"]: s["projects"] for s in olga["by_status"]}
    assert olga_statuses["in_production"] == olga_statuses["done"] == 1
    assert sum(olga_statuses.values()) == 2
    assert {h["health"]: h["projects"] for h in olga["by_health"]} == {
        "good": 0,
        "some_difficulties": 1,
        "big_difficulties": 1,
    }
    nobody = _by(company["pms"], "pm")[None]
    assert (nobody["projects"], dec(nobody["actual_hours"])) == (1, D(3))
    # department load: logistics (p2), production (p1, p3), then none (p4)
    departments = company["departments"]
    assert [d["department"] for d in departments] == ["logistics", "production", None]
    production = departments[1]
    assert (production["projects"], production["open_projects"]) == (2, 2)
    assert (dec(production["planned_hours"]), dec(production["actual_hours"])) == (
        D(100),
        D(28),
    )
    assert (departments[0]["open_projects"], dec(departments[0]["actual_hours"])) == (0, D(2))

    mine = get(api, platform, "/reports/portfolio", pm="olga")
    assert (mine["pm"], mine["projects"], mine["open_projects"]) == ("olga", 2, 1)
    assert [p["pm"] for p in mine["pms"]] == ["olga"]
    assert [d["department"] for d in mine["departments"]] == ["logistics", "production"]

    production_only = get(api, platform, "/reports/portfolio", department="production")
    assert (production_only["projects"], dec(production_only["actual_hours"])) == (2, D(28))
    assert [p["pm"] for p in production_only["pms"]] == ["boris", "olga"]
    assert {h["health"]: h["projects"] for h in production_only["by_health"]} == {
        "good": 1,
        "some_difficulties": 0,
        "big_difficulties": 1,
    }

    empty = get(api, platform, "/reports/portfolio", pm="nobody")
    assert (empty["projects"], empty["pms"], empty["departments"]) == (0, [], [])
    assert all(s["projects"] == 0 for s in empty["by_status"])


# --- GET /reports/plan-fact -------------------------------------------------------------


def test_plan_vs_fact_in_a_period_and_overall(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    january = get(api, platform, "/reports/plan-fact", **JANUARY)
    assert (january["period_from"], january["period_to"]) == ("2026-01-01", "2026-01-31")
    rows = _by(january["items"], "project_id")
    # p1: plan 100, January 8 + 4 + 7 = 19, overall 24: 76 h under plan, -76 %
    p1 = rows[portfolio.id("p1")]
    assert (dec(p1["planned_hours"]), dec(p1["period_hours"]), dec(p1["actual_hours"])) == (
        D(100),
        D(19),
        D(24),
    )
    assert (dec(p1["deviation_hours"]), dec(p1["deviation_percent"])) == (D(-76), D(-76))
    # p2: nothing planned: no deviation %; January 2 (anna's 8 withdrawn)
    p2 = rows[portfolio.id("p2")]
    assert (dec(p2["period_hours"]), dec(p2["actual_hours"]), p2["deviation_percent"]) == (
        D(2),
        D(2),
        None,
    )
    # p3's hours are in February, p4's in December
    assert dec(rows[portfolio.id("p3")]["period_hours"]) == ZERO
    assert dec(rows[portfolio.id("p4")]["period_hours"]) == ZERO
    totals = january["totals"]
    assert totals["projects"] == january["total"] == 4
    assert (dec(totals["planned_hours"]), dec(totals["period_hours"])) == (D(100), D(21))
    assert dec(totals["actual_hours"]) == D(33)
    assert (dec(totals["deviation_hours"]), dec(totals["deviation_percent"])) == (D(-67), D(-67))

    # each project's period hours, folded from its events
    for key, project_id in portfolio.ids.items():
        state = load_project(platform.store, project_id)
        in_january = sum(
            (e.hours for e in state.entries if date(2026, 1, 1) <= e.day <= date(2026, 1, 31)),
            ZERO,
        )
        assert dec(rows[str(project_id)]["period_hours"]) == in_january, key

    # no period: every day
    overall = get(api, platform, "/reports/plan-fact")
    assert overall["period_from"] is None
    assert dec(overall["totals"]["period_hours"]) == D(33)
    # February only, olga's in production
    february = get(
        api, platform, "/reports/plan-fact", pm="olga", status="in_production", **FEBRUARY
    )
    assert [i["project_id"] for i in february["items"]] == [portfolio.id("p1")]
    assert dec(february["items"][0]["period_hours"]) == D(5)
    assert dec(february["totals"]["deviation_percent"]) == D(-76)

    def matching(**filters: Any) -> list[str]:
        found = get(api, platform, "/reports/plan-fact", **filters)
        return sorted(i["project_id"] for i in found["items"])

    assert matching(project_id=portfolio.id("p3")) == [portfolio.id("p3")]
    assert matching(direction="transport", department="production") == [portfolio.id("p3")]
    assert matching(category="fit-out") == [portfolio.id("p1")]
    assert matching(department="logistics") == [portfolio.id("p2")]

    page = get(api, platform, "/reports/plan-fact", limit=1, offset=3)
    assert (page["total"], [i["project_id"] for i in page["items"]]) == (4, [portfolio.id("p1")])
    assert dec(page["totals"]["planned_hours"]) == D(100)  # the totals cover every page

    assert refused(api, "/reports/plan-fact", **{"from": "2026-13-01"}) == "from"
    assert refused(api, "/reports/plan-fact", **{"from": "20260101"}) == "from"
    assert refused(api, "/reports/plan-fact", to="yesterday") == "to"
    assert refused(api, "/reports/plan-fact", **{"from": "2026-02-01", "to": "2026-01-31"}) == (
        "from"
    )
    assert refused(api, "/reports/plan-fact", project_id="p1") == "project_id"
    assert refused(api, "/reports/plan-fact", status="archived") == "status"
    assert refused(api, "/reports/plan-fact", limit=0) == "limit"


# --- GET /reports/resource-load ---------------------------------------------------------


def test_the_production_calendar_counts_working_days_without_holidays() -> None:
    calendar = RULES.project.calendar
    # January 2026: 22 weekdays, 3 of them holidays (1, 2 and 7 January): 19 days of 8 h
    assert calendar_hours(calendar, date(2026, 1, 1), date(2026, 1, 31)) == D(152)
    # February 2026: 20 weekdays, 23 February a holiday
    assert calendar_hours(calendar, date(2026, 2, 1), date(2026, 2, 28)) == D(152)
    assert calendar_hours(calendar, date(2026, 1, 3), date(2026, 1, 4)) == ZERO  # a weekend
    assert calendar_hours(calendar, date(2026, 1, 5), date(2026, 1, 5)) == D(8)
    rng = random.Random(5)
    for _ in range(40):
        first = date(2025, 6, 1) + timedelta(days=rng.randint(0, 500))
        last = first + timedelta(days=rng.randint(-2, 400))
        expected = calendar_hours_by_day(first, last) if last >= first else ZERO
        assert calendar_hours(calendar, first, last) == expected, (first, last)


def test_resource_load_per_person_against_the_calendar(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    january = get(api, platform, "/reports/resource-load", **JANUARY)
    required = calendar_hours_by_day(date(2026, 1, 1), date(2026, 1, 31))
    assert dec(january["calendar_hours"]) == required == D(152)
    # ivan: 8 + 4 on p1, 2 on p2; petr: 7 on p1; anna's only entry was withdrawn, vera's
    # hours are in December, zoe's and petr's 5 in February
    assert [(p["person"], dec(p["logged_hours"])) for p in january["items"]] == [
        ("ivan", D(14)),
        ("petr", D(7)),
    ]
    ivan = january["items"][0]
    assert dec(ivan["calendar_hours"]) == D(152)
    assert dec(ivan["load_percent"]) == percent(D(14), D(152)) == D("9.21")
    assert [(p["project_id"], p["title"], dec(p["hours"])) for p in ivan["projects"]] == [
        (portfolio.id("p1"), "Warehouse fit-out", D(12)),
        (portfolio.id("p2"), "Crane rental", D(2)),
    ]
    assert dec(january["items"][1]["load_percent"]) == D("4.61")  # 7 / 152 = 4.605…

    # without a period: the current month (February, by the platform's clock)
    february = get(api, platform, "/reports/resource-load")
    assert (february["period_from"], february["period_to"]) == ("2026-02-01", "2026-02-28")
    assert [(p["person"], dec(p["logged_hours"])) for p in february["items"]] == [
        ("petr", D(5)),
        ("zoe", D(4)),
    ]
    # only `from`: to the end of its month; only `to`: from the start of its month
    rest = get(api, platform, "/reports/resource-load", **{"from": "2026-01-13"})
    assert (rest["period_from"], rest["period_to"]) == ("2026-01-13", "2026-01-31")
    assert dec(rest["calendar_hours"]) == calendar_hours_by_day(
        date(2026, 1, 13), date(2026, 1, 31)
    )
    assert [(p["person"], dec(p["logged_hours"])) for p in rest["items"]] == [
        ("petr", D(7)),
        ("ivan", D(6)),
    ]
    start = get(api, platform, "/reports/resource-load", to="2026-01-12")
    assert (start["period_from"], start["period_to"]) == ("2026-01-01", "2026-01-12")
    assert [(p["person"], dec(p["logged_hours"])) for p in start["items"]] == [("ivan", D(8))]

    # one person, listed even with no hours
    anna = get(api, platform, "/reports/resource-load", person="anna", **JANUARY)
    assert [(p["person"], dec(p["logged_hours"]), p["projects"]) for p in anna["items"]] == [
        ("anna", ZERO, [])
    ]
    assert dec(anna["items"][0]["load_percent"]) == ZERO

    page = get(api, platform, "/reports/resource-load", limit=1, offset=1, **JANUARY)
    assert (page["total"], [p["person"] for p in page["items"]]) == (2, ["petr"])

    # a period with no working day: no load % to speak of
    weekend = get(
        api, platform, "/reports/resource-load", **{"from": "2026-01-03", "to": "2026-01-04"}
    )
    assert (dec(weekend["calendar_hours"]), weekend["items"]) == (ZERO, [])

    # the body is written without the response model: it is what the model would write
    for body in (january, february, rest, start, anna, page, weekend):
        assert ResourceLoadReport.model_validate(body).model_dump(mode="json") == body

    assert refused(api, "/reports/resource-load", **{"from": "2026-1-5"}) == "from"
    assert refused(api, "/reports/resource-load", to="2026-02-30") == "to"
    assert refused(api, "/reports/resource-load", **{"from": "2026-02-01", "to": "2026-01-01"}) == (
        "from"
    )
    assert refused(api, "/reports/resource-load", limit=501) == "limit"


# --- GET /reports/deviations ------------------------------------------------------------


def test_deviations_people_short_of_the_calendar_and_empty_cards(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    january = get(api, platform, "/reports/deviations", **JANUARY)
    assert dec(january["required_hours"]) == D(152)
    # people who logged hours on a day up to 31 January: ivan, petr, anna (withdrawn) and
    # vera (December); zoe's first hours are in February
    people = [
        (p["person"], dec(p["required_hours"]), dec(p["logged_hours"]), dec(p["missing_hours"]))
        for p in january["people"]["items"]
    ]
    assert people == [
        ("anna", D(152), ZERO, D(152)),
        ("vera", D(152), ZERO, D(152)),
        ("petr", D(152), D(7), D(145)),
        ("ivan", D(152), D(14), D(138)),
    ]
    assert january["people"]["total"] == 4
    # cards with empty mandatory fields, newest first (p1's card is complete)
    cards = january["cards"]
    assert cards["total"] == 3
    assert [(c["project_id"], c["pm"], c["empty_mandatory_fields"]) for c in cards["items"]] == [
        (portfolio.id("p4"), None, list(RULES.project.mandatory_fields)),
        (portfolio.id("p3"), "boris", ["curator", "category", "planned_start", "planned_end"]),
        (portfolio.id("p2"), "olga", ["curator", "category", "planned_start", "planned_end"]),
    ]
    for card in cards["items"]:
        state = load_project(platform.store, UUID(card["project_id"]))
        assert card["empty_mandatory_fields"] == state.empty_mandatory_fields(RULES.project)

    # 12 January: ivan logged his 8 hours; anna and petr first logged hours later
    day = get(api, platform, "/reports/deviations", **{"from": "2026-01-12", "to": "2026-01-12"})
    assert dec(day["required_hours"]) == D(8)
    assert [p["person"] for p in day["people"]["items"]] == ["vera"]

    # the current month by default: zoe is known now
    february = get(api, platform, "/reports/deviations")
    assert (february["period_from"], february["period_to"]) == ("2026-02-01", "2026-02-28")
    assert [(p["person"], dec(p["missing_hours"])) for p in february["people"]["items"]] == [
        ("anna", D(152)),
        ("ivan", D(152)),
        ("vera", D(152)),
        ("zoe", D(148)),
        ("petr", D(147)),
    ]

    page = get(api, platform, "/reports/deviations", limit=2, offset=1, **JANUARY)
    assert [p["person"] for p in page["people"]["items"]] == ["vera", "petr"]
    assert [c["project_id"] for c in page["cards"]["items"]] == [
        portfolio.id("p3"),
        portfolio.id("p2"),
    ]
    assert (page["people"]["total"], page["cards"]["total"]) == (4, 3)

    assert refused(api, "/reports/deviations", **{"from": "2026-01-32"}) == "from"
    assert refused(api, "/reports/deviations", offset=-5) == "offset"


# --- GET /reports/payments --------------------------------------------------------------


def _money(row: dict[str, Any]) -> tuple[Decimal | None, ...]:
    return (dec(row["invoiced"]), dec(row["paid"]), dec(row["outstanding"]))


def test_invoices_and_payments_per_project_and_client(
    api: TestClient, platform: Platform, portfolio: Portfolio
) -> None:
    january = get(api, platform, "/reports/payments", **JANUARY)
    # issued in January: A-1 1000 (p1), B-1 300 (p2), D-1 250 (p4); received: 400 on A-1,
    # 300 on B-1. Outstanding now of those invoices: A-1 0 (paid in full on 1 Feb), B-1 0,
    # D-1 250. By client: Acme (p1, p2), then Initech (p4)
    rows = [(i["project_id"], *_money(i), i["status"]) for i in january["items"]]
    assert rows == [
        (portfolio.id("p2"), D(300), D(300), ZERO, "paid"),
        (portfolio.id("p1"), D(1000), D(400), ZERO, "paid"),
        (portfolio.id("p4"), D(250), ZERO, D(250), "not_paid"),
    ]
    assert [(i["invoices"], i["payments"]) for i in january["items"]] == [(1, 1), (1, 1), (1, 0)]
    clients = [
        (c["company_id"], c["company_name"], c["projects"], *_money(c)) for c in january["clients"]
    ]
    assert clients == [
        ("acme", "Acme", 2, D(1300), D(700), ZERO),
        (None, "Initech", 1, D(250), ZERO, D(250)),
    ]
    assert january["totals"]["projects"] == january["total"] == 3
    assert _money(january["totals"]) == (D(1550), D(700), D(250))

    # February: A-2 500 issued; received 600 on A-1 and 200 on A-2; 300 of A-2 outstanding
    february = get(api, platform, "/reports/payments", **FEBRUARY)
    assert [(i["project_id"], *_money(i), i["status"]) for i in february["items"]] == [
        (portfolio.id("p1"), D(500), D(800), D(300), "partially_paid")
    ]

    # all time: each project's invoiced, paid and remaining, as its billing folds
    overall = get(api, platform, "/reports/payments")
    assert overall["period_from"] is None
    for item in overall["items"]:
        bills = load_billing(platform.store, UUID(item["project_id"]))
        assert bills is not None
        assert _money(item) == (bills.invoiced, bills.paid, bills.remaining)
        assert item["status"] == bills.status
    assert sorted(i["project_id"] for i in overall["items"]) == sorted(
        portfolio.id(k) for k in ("p1", "p2", "p4")
    )
    assert _money(overall["totals"]) == (D(2050), D(1500), D(550))

    def matching(**filters: Any) -> list[str]:
        found = get(api, platform, "/reports/payments", **filters)
        assert found["total"] == len(found["items"]) == found["totals"]["projects"]
        return sorted(i["project_id"] for i in found["items"])

    assert matching(status="paid", **JANUARY) == sorted([portfolio.id("p1"), portfolio.id("p2")])
    assert matching(status="not_paid") == [portfolio.id("p4")]
    assert matching(status="partially_paid") == [portfolio.id("p1")]
    assert matching(company_id="acme", **FEBRUARY) == [portfolio.id("p1")]
    assert matching(project_id=portfolio.id("p2")) == [portfolio.id("p2")]
    assert matching(project_id=portfolio.id("p3")) == []  # no invoice at all
    # a day with a payment only: received, nothing issued, so no status
    payment_day = get(
        api, platform, "/reports/payments", **{"from": "2026-01-20", "to": "2026-01-20"}
    )
    assert [(i["project_id"], *_money(i), i["status"]) for i in payment_day["items"]] == [
        (portfolio.id("p1"), ZERO, D(400), ZERO, None),
        (portfolio.id("p4"), D(250), ZERO, D(250), "not_paid"),
    ]

    page = get(api, platform, "/reports/payments", limit=2, offset=2, **JANUARY)
    assert [i["project_id"] for i in page["items"]] == [portfolio.id("p4")]
    assert (page["total"], _money(page["totals"])) == (3, (D(1550), D(700), D(250)))

    assert refused(api, "/reports/payments", status="late") == "status"
    assert refused(api, "/reports/payments", project_id="A-1") == "project_id"
    assert refused(api, "/reports/payments", to="2026/01/31") == "to"


# --- the read models in any page sizes --------------------------------------------------

Snapshot = tuple[dict[str, list[tuple[Any, ...]]], int]
TABLE_ORDER = {
    "projects": "project_id",
    "project_tasks": "project_id, task_id",
    "time_entries": "project_id, entry_id",
    "project_invoices": "project_id, number",
    "project_payments": "position",
}


def projections() -> list[Projection]:
    return read_model_projections(FUNNELS, RULES)


def snapshot(db: ReadModelDatabase) -> Snapshot:
    cursor = db.cursor()
    try:
        tables = {
            table: cursor.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in TABLE_ORDER.items()
        }
        return tables, db.position(POSITION_NAME, cursor)
    finally:
        cursor.close()


def rebuilt(store: EventStore, path: str) -> Snapshot:
    db = ReadModelDatabase(path)
    try:
        rebuild(store, db, projections())
        return snapshot(db)
    finally:
        db.close()


def random_delivery(
    store: EventStore,
    clock: FakeClock,
    rng: random.Random,
    steps: int,
    between: Callable[[], None],
) -> list[UUID]:
    """Random project histories through the handlers (a refused command appends
    nothing); some lead events between them. The projects' ids."""
    d = Delivery(store, RULES, clock)
    leads = LeadDriver(store, clock=clock)
    projects: list[UUID] = []
    tasks: dict[UUID, list[str]] = {}
    entries: dict[UUID, list[UUID]] = {}
    invoices: dict[UUID, list[str]] = {}
    statuses = [s.id for s in RULES.project.statuses]
    for step in range(steps):
        clock.advance(minutes=rng.randint(1, 240))
        today = clock.now.date()
        pick = rng.random()
        try:
            if not projects or pick < 0.06:
                project_id = d.create(
                    f"Project {step}",
                    rng.choice(["Acme", "Globex", "Initech"]),
                    pm=rng.choice([None, "olga", "boris"]),
                    department=rng.choice([None, "production"]),
                )
                projects.append(project_id)
                tasks[project_id], entries[project_id], invoices[project_id] = [], [], []
                continue
            if pick < 0.09:
                leads.create()
                continue
            project_id = rng.choice(projects)
            known = tasks[project_id]
            if pick < 0.25:
                task_id = f"t{len(known) + 1}"
                depends = tuple(rng.sample(known, min(len(known), rng.randint(0, 2))))
                d.task(project_id, task_id, str(rng.choice([0, 4, 8, 16, 40])), *depends)
                known.append(task_id)
            elif pick < 0.33 and known:
                changes: dict[str, Any] = rng.choice(
                    [
                        {"percent_done": rng.randint(0, 100)},
                        {"planned_hours": D(rng.randint(0, 50))},
                        {"assignee": rng.choice(["ivan", "petr", None])},
                        {"due": today + timedelta(days=rng.randint(0, 30))},
                    ]
                )
                d.do(project_id, project.UpdateTask(rng.choice(known), changes))
            elif pick < 0.38 and known:
                d.do(project_id, project.CompleteTask(rng.choice(known)))
            elif pick < 0.55:
                on_task = rng.choice([None, *known])
                day = today - timedelta(days=rng.randint(0, 20))
                hours = str(rng.choice([1, 2, 4, 8]))
                person = rng.choice(["ivan", "petr", "anna"])
                entries[project_id].append(d.log(project_id, person, day, hours, on_task))
            elif pick < 0.62 and entries[project_id]:
                d.correct(project_id, rng.choice(entries[project_id]), str(rng.randint(0, 6)))
            elif pick < 0.66:
                d.do(project_id, project.MoveProjectToStatus(rng.choice(statuses)))
            elif pick < 0.70:
                d.do(project_id, project.SetHealth(rng.choice(["good", "big_difficulties"]), "x"))
            elif pick < 0.73:
                d.do(project_id, project.ClearHealth())
            elif pick < 0.77:
                level = rng.choice(["good", "some_difficulties", "big_difficulties"])
                d.do(project_id, project.RecordComputedHealth(level, (f"reason {step}",)))
            elif pick < 0.81:
                card: list[tuple[str, Any]] = [
                    ("curator", rng.choice(["irina", None])),
                    ("category", "fit-out"),
                    ("planned_start", today),
                    ("amount", D(rng.randint(0, 9000))),
                ]
                field, value = rng.choice(card)
                d.do(project_id, project.UpdateProjectCard({field: value}))
            elif pick < 0.90:
                number = f"N-{len(invoices[project_id]) + 1}"
                if rng.random() < 0.3:
                    d.carry(project_id, number, str(rng.randint(1, 900)), today)
                else:
                    d.invoice(project_id, number, str(rng.randint(1, 900)), today, today)
                invoices[project_id].append(number)
            elif invoices[project_id]:
                number = rng.choice(invoices[project_id])
                d.pay(project_id, number, str(rng.randint(1, 400)), today)
        except DomainError:
            pass  # refused by the rules: nothing appended
        between()
    return projects


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 10_000), pages=st.integers(0, 10_000), final=st.integers(1, 300))
def test_projecting_in_random_pages_equals_a_rebuild(seed: int, pages: int, final: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        page_rng = random.Random(pages)
        try:

            def between() -> None:
                # now and then, a page of a random size by a fresh projector resuming
                # from the stored position
                if page_rng.random() < 0.15:
                    size = page_rng.randint(1, 15)
                    Projector(store, db, projections(), page_size=size).run_once()

            clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
            projects = random_delivery(store, clock, random.Random(seed), 160, between)
            Projector(store, db, projections(), page_size=final).catch_up()
            incremental = snapshot(db)
            assert incremental[1] == store.last_position()
            expected = rebuilt(store, f"{tmp}/rebuilt.duckdb")
            for table in TABLE_ORDER:
                assert incremental[0][table] == expected[0][table], table
            assert_rows_agree_with_the_aggregates(store, db, projects)
        finally:
            db.close()
            store.close()


def assert_rows_agree_with_the_aggregates(
    store: EventStore, db: ReadModelDatabase, projects: list[UUID]
) -> None:
    """Each project's row and its tasks' rows are what its events fold to."""
    cursor = db.cursor()
    try:
        assert projects
        for project_id in projects:
            state = load_project(store, project_id)
            key = [str(project_id)]
            row = cursor.execute(
                "SELECT status, health, manual_health, computed_health, planned_hours, "
                "actual_hours, percent_done, tasks, tasks_done, empty_mandatory_fields, "
                "amount, curator, version FROM projects WHERE project_id = ?",
                key,
            ).fetchone()
            manual = state.manual_health
            assert row == (
                state.status,
                state.health,
                manual.level if manual else None,
                state.computed_health,
                state.planned_hours,
                state.actual_hours,
                state.percent_done,
                len(state.tasks),
                sum(1 for t in state.tasks if t.completed_at),
                state.empty_mandatory_fields(RULES.project),
                state.amount,
                state.curator,
                state.version,
            ), project_id
            tasks = cursor.execute(
                "SELECT task_id, planned_hours, percent_done, due, assignee, actual_hours "
                "FROM project_tasks WHERE project_id = ? ORDER BY task_no",
                key,
            ).fetchall()
            assert tasks == [
                (
                    t.task_id,
                    t.planned_hours,
                    t.percent_done,
                    t.due,
                    t.assignee,
                    sum((e.hours for e in state.entries if e.task_id == t.task_id), ZERO),
                )
                for t in state.tasks
            ]
            entries = cursor.execute(
                "SELECT entry_id, person, day, hours FROM time_entries WHERE project_id = ? "
                "ORDER BY position",
                key,
            ).fetchall()
            assert entries == [(str(e.entry_id), e.person, e.day, e.hours) for e in state.entries]
    finally:
        cursor.close()


# --- billing figures always match the invoices and payments -----------------------------

# one billing step: (project index, invoice index or None to issue one, amount in cents)
BillingStep = tuple[int, int | None, int]
billing_steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.one_of(st.none(), st.integers(0, 4)),
        st.integers(1, 100_000),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=billing_steps, page_size=st.integers(1, 12))
def test_billing_figures_match_the_sums_of_invoices_and_payments(
    steps: list[BillingStep], page_size: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/read_models.duckdb")
        try:
            clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
            d = Delivery(store, RULES, clock)
            # amounts: none (measured against what was invoiced), small, large
            amounts = (ZERO, D(500), D(5000))
            projects = [d.create(f"Project {n}", "Acme", amount=amounts[n]) for n in range(3)]
            issued: dict[int, list[str]] = {n: [] for n in range(3)}
            projection = project_projections(RULES)
            for n, invoice, cents in steps:
                clock.advance(hours=1)
                amount = str(Decimal(cents) / 100)
                try:
                    if invoice is None or not issued[n]:
                        number = f"I-{len(issued[n]) + 1}"
                        d.invoice(
                            projects[n],
                            number,
                            amount,
                            clock.now.date(),
                            TODAY + timedelta(days=60),
                        )
                        issued[n].append(number)
                    else:
                        number = issued[n][invoice % len(issued[n])]
                        d.pay(projects[n], number, amount, clock.now.date())
                except DomainError:
                    pass  # an overpayment is refused
                Projector(store, db, projection, page_size=page_size).run_once()
            Projector(store, db, projection, page_size=page_size).catch_up()

            cursor = db.cursor()
            try:
                for project_id, project_amount in zip(projects, amounts, strict=True):
                    key = [str(project_id)]
                    row = cursor.execute(
                        "SELECT invoiced, paid, remaining, payment_status, invoices, payments, "
                        "invoiced_unpaid FROM projects WHERE project_id = ?",
                        key,
                    ).fetchone()
                    assert row is not None
                    invoiced, paid, remaining, status, invoices, payments, unpaid = row
                    sums = cursor.execute(
                        "SELECT coalesce(sum(amount), 0), count(*), coalesce(sum(paid), 0) "
                        "FROM project_invoices WHERE project_id = ?",
                        key,
                    ).fetchone()
                    received = cursor.execute(
                        "SELECT coalesce(sum(amount), 0), count(*) FROM project_payments "
                        "WHERE project_id = ?",
                        key,
                    ).fetchone()
                    assert sums is not None
                    assert received is not None
                    assert (invoiced, invoices) == (sums[0], sums[1])
                    assert paid == sums[2] == received[0]
                    assert payments == received[1]
                    owed = billing.project_payment(project_amount, invoiced, paid)
                    assert remaining == owed.remaining >= 0
                    assert status == owed.status
                    assert unpaid == invoiced - paid >= 0
                    # each invoice: what its payments add up to
                    for number, amount, inv_paid, inv_remaining, inv_status in cursor.execute(
                        "SELECT number, amount, paid, remaining, status FROM project_invoices "
                        "WHERE project_id = ?",
                        key,
                    ).fetchall():
                        got = cursor.execute(
                            "SELECT coalesce(sum(amount), 0) FROM project_payments "
                            "WHERE project_id = ? AND invoice_number = ?",
                            [*key, number],
                        ).fetchone()
                        assert got is not None
                        assert inv_paid == got[0]
                        assert inv_remaining == amount - inv_paid
                        assert inv_status == billing.payment_status(amount, inv_paid)
                    # and what the billing aggregate folds to
                    bills = load_billing(store, project_id)
                    folded = billing.project_payment(
                        project_amount,
                        bills.invoiced if bills else ZERO,
                        bills.paid if bills else ZERO,
                    )
                    expected = (
                        (bills.invoiced, bills.paid, folded.remaining, folded.status)
                        if bills
                        else (ZERO, ZERO, folded.remaining, "not_paid")
                    )
                    assert (invoiced, paid, remaining, status) == expected
            finally:
                cursor.close()
        finally:
            db.close()
            store.close()


# --- fingerprints and cheap pages -------------------------------------------------------


def test_fingerprints_follow_the_mandatory_fields() -> None:
    base = ProjectProjection(RULES.project).fingerprint
    assert base == ProjectProjection(RULES.project).fingerprint
    fewer = type(RULES.project)(**{**RULES.project.__dict__, "mandatory_fields": ("pm",)})
    assert ProjectProjection(fewer).fingerprint != base
    assert set(ProjectProjection(RULES.project).tables) == set(TABLES)


def test_a_page_without_delivery_events_touches_nothing(tmp_path: Path) -> None:
    store = open_event_store(f"sqlite:///{tmp_path}/events.sqlite", event_codec())
    db = ReadModelDatabase(tmp_path / "read_models.duckdb")
    try:
        clock = FakeClock()
        leads = LeadDriver(store, clock=clock)
        for _ in range(5):
            leads.create()
        page = store.read_page(0, 100)
        assert page.num_rows == 5
        cursor = db.cursor()
        projection = ProjectProjection(RULES.project)
        projection.create_tables(cursor)
        calls: list[str] = []
        cursor_spy = _Spy(cursor, calls)
        projection.apply(cursor_spy, page)  # type: ignore[arg-type]
        assert calls == []
        cursor.close()
    finally:
        db.close()
        store.close()


class _Spy:
    """A cursor stand-in recording every statement sent through it."""

    def __init__(self, cursor: Any, calls: list[str]) -> None:
        self.cursor = cursor
        self.calls = calls

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.cursor, name)
