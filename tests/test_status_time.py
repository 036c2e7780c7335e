"""Status-time control: how long leads, deals and projects spent in each stage or status.

(a) One small portfolio is driven through the command handlers at known fake instants —
    a lead paused twice, a deal that goes over its stage limits and is lost, projects
    that go on hold — and every figure the report gives is checked against the hours
    worked out by hand in the comments, now and as it was at earlier instants.
(b) Properties over random histories of leads, deals and projects: folding the log in
    any page sizes gives the tables one rebuild gives; at any instant every report total
    is the sum of its visits, and a subject's visits tile its life up to that instant.
(c) Bad kinds, instants and filters answer 422 naming the field; unknown ids 404.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import deal, lead, project
from aggregates.rules import ProjectStatus
from commands.context import CommandContext, CommandResult
from commands.deals import convert_lead, deal_id_for_lead, handle_deal_command, load_deal_records
from commands.leads import create_lead, handle_lead_command, load_lead_records
from commands.projects import create_project, handle_project_command, load_project_records
from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.wiring import Platform, event_codec, load_rules, read_model_projections
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild
from projections.status_time import ProjectStatusVisitProjection
from queries.status_time import (
    Kind,
    StatusTimeFilters,
    list_visits,
    stage_limits,
    subject_status_time,
    summary,
)
from tests.conftest import FakeClock, PlatformFactory, iso
from tests.factories import EPOCH, FUNNELS, LeadDriver, ManualClock, Step, generate_history
from tests.test_deal_projections import PipelineDriver

RULES = load_rules(Settings().funnels_file, Settings().rules_file)
H = 3600.0  # seconds in an hour


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    """The process managers stay off: nothing moves but what the tests send."""
    return make_platform(process_managers=False)


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- (a) a portfolio worked out by hand -------------------------------------------------


@dataclass
class Portfolio:
    """Ids, the first instant T and the last event's position."""

    t: datetime
    ids: dict[str, UUID]
    position: int = 0

    def at(self, hours: float) -> str:
        return iso(self.t + timedelta(hours=hours))


@pytest.fixture
def portfolio(platform: Platform, clock: FakeClock) -> Portfolio:
    """At T (hours from T in brackets):

    - lead L (boris, out_of_court): new from 0; paused 10 → 30; assessment from 34;
      paused again from 130, still paused at 200;
    - lead L2 (vera): new from 0, assessed and qualified, never moved; it becomes
      - deal D (turnkey, vera): new from 0; proposal from 50; lost at 180;
    - project P (pm petra): planning 0 → 60; in_production 60 → 100; on_hold 100 → 160;
      in_production from 160;
    - project P2 (pm pavel): planning from 0.

    "Now" is T + 200 h.
    """
    store, rules = platform.store, platform.rules
    leads = LeadDriver(store, clock=clock, funnels=platform.funnels)
    results: list[CommandResult] = []

    def ctx() -> CommandContext:
        return CommandContext.new(actor="anna.sales", clock=clock)

    def at(hours: float) -> None:
        clock.now = t + timedelta(hours=hours)

    def move_project(project_id: UUID, status: str) -> None:
        command = project.MoveProjectToStatus(status)
        results.append(handle_project_command(store, rules, project_id, command, ctx()))

    t = clock.now
    ids: dict[str, UUID] = {}
    ids["L"] = leads.create(manager="boris").stream_id
    ids["L2"] = leads.create(manager="vera", title="Survey of a plant").stream_id
    leads.assess(ids["L2"])
    leads.qualify(ids["L2"], True)
    results.append(convert_lead(store, platform.funnels, rules, ids["L2"], "turnkey", ctx()))
    ids["D"] = deal_id_for_lead(ids["L2"])
    for name, pm in (("P", "petra"), ("P2", "pavel")):
        command = project.CreateProject(uuid4(), f"Project {name}", "Northwind LLC", pm=pm)
        results.append(create_project(store, rules, command, ctx()))
        ids[name] = command.project_id

    at(10)
    results.append(leads.pause(ids["L"]))
    at(30)
    results.append(leads.resume(ids["L"]))
    at(34)
    results.append(leads.move(ids["L"], "assessment"))
    at(50)
    results.append(
        handle_deal_command(store, rules, ids["D"], deal.MoveDealToStage("proposal"), ctx())
    )
    at(60)
    move_project(ids["P"], "in_production")
    at(100)
    move_project(ids["P"], "on_hold")
    at(130)
    results.append(leads.pause(ids["L"]))
    at(160)
    move_project(ids["P"], "in_production")
    at(180)
    close = deal.CloseDeal("lost", "went to a competitor")
    results.append(handle_deal_command(store, rules, ids["D"], close, ctx()))
    at(200)
    return Portfolio(t, ids, max(r.position for r in results))


def _get(client: TestClient, portfolio: Portfolio, path: str, **query: Any) -> dict[str, Any]:
    params = {"min_position": portfolio.position, **query}
    return _ok(client.get(path, params=params))


def _visits_of(body: dict[str, Any], subject: UUID) -> list[dict[str, Any]]:
    found = [v for v in body["items"] if v["subject_id"] == str(subject)]
    return sorted(found, key=lambda v: v["visit_no"])


def _brief(visit: dict[str, Any]) -> tuple[Any, ...]:
    """(stage, seconds, paused seconds, over limit, open, over limit now)."""
    return (
        visit["stage"],
        visit["seconds"],
        visit["paused_seconds"],
        visit["over_limit"],
        visit["open"],
        visit["over_limit_now"],
    )


def _stage(summary_body: dict[str, Any], stage: str, funnel: str | None = None) -> dict[str, Any]:
    rows = [
        s
        for s in summary_body["stages"]
        if s["stage"] == stage and (funnel is None or s["funnel"] == funnel)
    ]
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    """(visits, total, paused, average, over limit, current, current over limit)."""
    return (
        row["visits"],
        row["total_seconds"],
        row["paused_seconds"],
        row["average_seconds"],
        row["visits_over_limit"],
        row["current"],
        row["current_over_limit"],
    )


def _assert_totals_are_sums(body: dict[str, Any]) -> None:
    totals = body["totals"]
    stages = body["stages"]
    for name in ("visits", "visits_over_limit", "current", "current_over_limit"):
        assert totals[name] == sum(s[name] for s in stages)
    for name in ("total_seconds", "paused_seconds"):
        assert Decimal(str(totals[name])) == sum(Decimal(str(s[name])) for s in stages)


def test_lead_visits_leave_paused_time_out(client: TestClient, portfolio: Portfolio) -> None:
    body = _get(client, portfolio, "/reports/status-time", kind="lead")
    assert body["as_of"] == portfolio.at(200)
    assert body["total"] == 3
    # L: new 34 h of which 20 h paused (14 h, limit 24 h); assessment 166 h of which
    # 70 h paused (since 130): 96 h > 72 h, still open
    first, second = _visits_of(body, portfolio.ids["L"])
    assert _brief(first) == ("new", 14 * H, 20 * H, False, False, False)
    assert _brief(second) == ("assessment", 96 * H, 70 * H, True, True, True)
    assert (first["entered_at"], first["left_at"]) == (portfolio.at(0), portfolio.at(34))
    assert (second["entered_at"], second["left_at"]) == (portfolio.at(34), None)
    assert (first["limit_hours"], second["limit_hours"]) == (24, 72)
    assert first["manager"] == "boris"
    # L2: new for 200 h, never paused
    (only,) = _visits_of(body, portfolio.ids["L2"])
    assert _brief(only) == ("new", 200 * H, 0, True, True, True)


def test_lead_summary_per_stage_is_the_sum_of_the_visits(
    client: TestClient, portfolio: Portfolio
) -> None:
    mine = _get(
        client,
        portfolio,
        "/reports/status-time/summary",
        kind="lead",
        manager="boris",
        funnel="out_of_court",
    )
    assert [s["stage"] for s in mine["stages"]] == [s.id for s in FUNNELS["out_of_court"].stages]
    assert _figures(_stage(mine, "new")) == (1, 14 * H, 20 * H, 14 * H, 0, 0, 0)
    assert _figures(_stage(mine, "assessment")) == (1, 96 * H, 70 * H, 96 * H, 1, 1, 1)
    assert _figures(_stage(mine, "contract")) == (0, 0, 0, None, 0, 0, 0)
    assert mine["totals"] == {
        "visits": 2,
        "total_seconds": 110 * H,
        "paused_seconds": 90 * H,
        "visits_over_limit": 1,
        "current": 1,
        "current_over_limit": 1,
    }
    _assert_totals_are_sums(mine)

    everyone = _get(client, portfolio, "/reports/status-time/summary", kind="lead")
    # both funnels' stages are listed; L's 14 h and L2's 200 h in out_of_court's new
    assert len(everyone["stages"]) == sum(len(f.stages) for f in FUNNELS.values())
    assert _figures(_stage(everyone, "new", "out_of_court")) == (
        2,
        214 * H,
        20 * H,
        107 * H,
        1,
        1,
        1,
    )
    assert everyone["totals"]["total_seconds"] == 310 * H
    _assert_totals_are_sums(everyone)


def test_deal_visits_and_summary(client: TestClient, portfolio: Portfolio) -> None:
    body = _get(client, portfolio, "/reports/status-time", kind="deal")
    # D: new 50 h > 48 h; proposal 50 → 180 (lost): 130 h > 120 h, closed
    new, proposal = _visits_of(body, portfolio.ids["D"])
    assert _brief(new) == ("new", 50 * H, 0, True, False, False)
    assert _brief(proposal) == ("proposal", 130 * H, 0, True, False, False)
    assert proposal["left_at"] == portfolio.at(180)
    assert (new["funnel"], new["manager"], new["limit_hours"]) == ("turnkey", "vera", 48)

    over = _get(client, portfolio, "/reports/status-time", kind="deal", over_limit_only=True)
    assert over["total"] == 2
    paged = _get(client, portfolio, "/reports/status-time", kind="deal", limit=1, offset=1)
    assert (paged["total"], len(paged["items"])) == (2, 1)
    assert paged["items"][0]["stage"] == "new"  # the latest entered first

    report = _get(client, portfolio, "/reports/status-time/summary", kind="deal", funnel="turnkey")
    assert _figures(_stage(report, "new")) == (1, 50 * H, 0, 50 * H, 1, 0, 0)
    assert _figures(_stage(report, "proposal")) == (1, 130 * H, 0, 130 * H, 1, 0, 0)
    assert report["totals"]["total_seconds"] == 180 * H
    _assert_totals_are_sums(report)
    assert (
        _get(client, portfolio, "/reports/status-time", kind="deal", manager="boris")["total"] == 0
    )


def test_time_on_hold_counts_for_no_status(client: TestClient, portfolio: Portfolio) -> None:
    body = _get(client, portfolio, "/reports/status-time", kind="project")
    visits = _visits_of(body, portfolio.ids["P"])
    assert [_brief(v) for v in visits] == [
        ("planning", 60 * H, 0, False, False, False),
        ("in_production", 40 * H, 0, False, False, False),
        ("on_hold", 0, 60 * H, False, False, False),
        ("in_production", 40 * H, 0, False, True, False),
    ]
    assert [v["stops_clock"] for v in visits] == [False, False, True, False]
    assert visits[2]["limit_hours"] is None
    assert {v["pm"] for v in visits} == {"petra"}
    # P2: planning for 200 h, over its 120 h
    (planning,) = _visits_of(body, portfolio.ids["P2"])
    assert _brief(planning) == ("planning", 200 * H, 0, True, True, True)

    report = _get(client, portfolio, "/reports/status-time/summary", kind="project")
    assert [s["stage"] for s in report["stages"]] == [s.id for s in RULES.project.statuses]
    assert _figures(_stage(report, "planning")) == (2, 260 * H, 0, 130 * H, 1, 1, 1)
    assert _figures(_stage(report, "in_production")) == (2, 80 * H, 0, 40 * H, 0, 1, 0)
    assert _figures(_stage(report, "on_hold")) == (1, 0, 60 * H, 0, 0, 0, 0)
    assert _stage(report, "done")["limit_hours"] is None
    assert report["totals"] == {
        "visits": 5,
        "total_seconds": 340 * H,
        "paused_seconds": 60 * H,
        "visits_over_limit": 1,
        "current": 2,
        "current_over_limit": 1,
    }
    _assert_totals_are_sums(report)

    petra = _get(client, portfolio, "/reports/status-time/summary", kind="project", pm="petra")
    assert petra["totals"]["visits"] == 4
    assert _figures(_stage(petra, "planning")) == (1, 60 * H, 0, 60 * H, 0, 0, 0)


def test_as_of_gives_the_picture_of_that_instant(client: TestClient, portfolio: Portfolio) -> None:
    then = portfolio.at(120)
    leads = _get(client, portfolio, "/reports/status-time", kind="lead", as_of=then)
    assert leads["as_of"] == then
    # L's assessment at 120: 86 h, its second pause not begun; already over 72 h
    first, second = _visits_of(leads, portfolio.ids["L"])
    assert _brief(first) == ("new", 14 * H, 20 * H, False, False, False)
    assert _brief(second) == ("assessment", 86 * H, 0, True, True, True)
    assert second["left_at"] is None

    deals = _get(client, portfolio, "/reports/status-time", kind="deal", as_of=portfolio.at(175))
    # D's proposal at 175: open for 125 h > 120 h; lost only at 180
    _, proposal = _visits_of(deals, portfolio.ids["D"])
    assert _brief(proposal) == ("proposal", 125 * H, 0, True, True, True)
    assert proposal["left_at"] is None

    projects = _get(client, portfolio, "/reports/status-time", kind="project", as_of=then)
    # P at 120: on hold for 20 h, the return to production not yet there; P2 at its
    # limit exactly (120 h), not over it
    assert [_brief(v) for v in _visits_of(projects, portfolio.ids["P"])] == [
        ("planning", 60 * H, 0, False, False, False),
        ("in_production", 40 * H, 0, False, False, False),
        ("on_hold", 0, 20 * H, False, True, False),
    ]
    (planning,) = _visits_of(projects, portfolio.ids["P2"])
    assert _brief(planning) == ("planning", 120 * H, 0, False, True, False)
    report = _get(client, portfolio, "/reports/status-time/summary", kind="project", as_of=then)
    assert report["totals"]["visits"] == 4
    assert _figures(_stage(report, "on_hold")) == (1, 0, 20 * H, 0, 0, 1, 0)
    _assert_totals_are_sums(report)


def test_a_pause_stops_the_clock_of_an_open_visit(client: TestClient, portfolio: Portfolio) -> None:
    # L paused from 10 to 30: at 15 (the start of 6 January, given as a date) and at 25
    # its first visit has 10 h either way, paused 5 h and 15 h
    assert portfolio.at(15) == "2026-01-06T00:00:00Z"
    for as_of, paused in (("2026-01-06", 5 * H), (portfolio.at(25), 15 * H)):
        body = _get(client, portfolio, f"/leads/{portfolio.ids['L']}/status-time", as_of=as_of)
        (visit,) = body["visits"]
        assert _brief(visit) == ("new", 10 * H, paused, False, True, False)


def test_one_subjects_status_time(client: TestClient, portfolio: Portfolio) -> None:
    lead_body = _get(client, portfolio, f"/leads/{portfolio.ids['L']}/status-time")
    assert [v["visit_no"] for v in lead_body["visits"]] == [1, 2]
    assert [(s["stage"], s["total_seconds"], s["paused_seconds"]) for s in lead_body["stages"]] == [
        ("new", 14 * H, 20 * H),
        ("assessment", 96 * H, 70 * H),
    ]
    assert (lead_body["total_seconds"], lead_body["paused_seconds"]) == (110 * H, 90 * H)

    project_body = _get(
        client, portfolio, f"/projects/{portfolio.ids['P']}/status-time", as_of=portfolio.at(120)
    )
    assert project_body["subject_id"] == str(portfolio.ids["P"])
    assert [(s["stage"], s["visits"], s["total_seconds"]) for s in project_body["stages"]] == [
        ("planning", 1, 60 * H),
        ("in_production", 1, 40 * H),
        ("on_hold", 1, 0),
    ]
    assert (project_body["total_seconds"], project_body["paused_seconds"]) == (100 * H, 20 * H)

    project_now = _get(client, portfolio, f"/projects/{portfolio.ids['P']}/status-time")
    in_production = _stage(project_now, "in_production")
    assert (in_production["visits"], in_production["total_seconds"]) == (2, 80 * H)
    assert in_production["current"] == 1

    deal_body = _get(client, portfolio, f"/deals/{portfolio.ids['D']}/status-time")
    assert deal_body["total_seconds"] == 180 * H
    assert [s["visits_over_limit"] for s in deal_body["stages"]] == [1, 1]


def test_estimates_move_the_deal_between_stages(
    platform: Platform, client: TestClient, clock: FakeClock
) -> None:
    """DealEstimateReady and DealEstimateRejected end a visit and open the next."""
    driver = PipelineDriver(platform.store, clock, rules=platform.rules)
    deal_id = driver.deal_from_lead("transport", manager="vera")
    clock.advance(hours=5)
    first_round = driver.open_estimate(deal_id)
    request = driver.request(deal_id, "logistics", first_round)
    clock.advance(hours=1)
    driver.take(request, "lena")
    driver.estimate(request, "800.00")
    clock.advance(hours=3)
    driver.move_request(request, "approval")
    driver.complete_estimate(deal_id, first_round)  # estimate_ready after 4 h of estimate
    clock.advance(hours=1)
    second_round = driver.open_estimate(deal_id)
    rejected = driver.request(deal_id, "logistics", second_round)
    clock.advance(hours=2)
    driver.reject(rejected, "no trucks that week")
    last = driver.return_from_estimate(deal_id, second_round, rejected, "no trucks that week")
    clock.advance(hours=50)

    body = _ok(client.get(f"/deals/{deal_id}/status-time", params={"min_position": last.position}))
    assert [_brief(v) for v in body["visits"]] == [
        ("new", 5 * H, 0, False, False, False),
        ("estimate", 4 * H, 0, False, False, False),
        ("estimate_ready", 1 * H, 0, False, False, False),
        ("estimate", 2 * H, 0, False, False, False),
        ("estimate_ready", 50 * H, 0, False, True, False),  # no limit in transport
    ]
    assert [(s["stage"], s["visits"], s["total_seconds"]) for s in body["stages"]] == [
        ("new", 1, 5 * H),
        ("estimate", 2, 6 * H),
        ("estimate_ready", 2, 51 * H),
    ]


# --- (c) refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "kind"),
        ({"kind": "invoice"}, "kind"),
        ({"kind": "lead", "as_of": "last tuesday"}, "as_of"),
        ({"kind": "deal", "as_of": "2026-13-01"}, "as_of"),
        ({"kind": "project", "as_of": "2030-01-01T00:00:00Z"}, "as_of"),
        ({"kind": "lead", "funnel": "nowhere"}, "funnel"),
        ({"kind": "deal", "funnel": "transport", "stage": "assessment"}, "stage"),
        ({"kind": "lead", "status": "planning"}, "status"),
        ({"kind": "deal", "pm": "petra"}, "pm"),
        ({"kind": "project", "status": "sleeping"}, "status"),
        ({"kind": "project", "stage": "planning"}, "stage"),
        ({"kind": "project", "manager": "boris"}, "manager"),
        ({"kind": "lead", "over_limit_only": "maybe"}, "over_limit_only"),
        ({"kind": "lead", "limit": 0}, "limit"),
    ],
)
def test_bad_queries_answer_422_naming_the_field(
    client: TestClient, query: dict[str, Any], field: str
) -> None:
    for path in ("/reports/status-time", "/reports/status-time/summary"):
        if path.endswith("summary") and field == "limit":
            continue
        response = client.get(path, params=query)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field


def test_unknown_subjects_answer_404(client: TestClient, portfolio: Portfolio) -> None:
    for kind in ("leads", "deals", "projects"):
        response = client.get(f"/{kind}/{uuid4()}/status-time")
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    # a deal's id is no project's, and nothing existed before T
    wrong = client.get(
        f"/projects/{portfolio.ids['D']}/status-time",
        params={"min_position": portfolio.position},
    )
    assert wrong.status_code == 404
    before = client.get(
        f"/leads/{portfolio.ids['L']}/status-time", params={"as_of": portfolio.at(-1)}
    )
    assert before.status_code == 404
    assert "did not exist" in before.json()["detail"]
    bad = client.get(f"/deals/{portfolio.ids['D']}/status-time", params={"as_of": "soon"})
    assert (bad.status_code, bad.json()["field"]) == (422, "as_of")


def test_the_fingerprint_follows_the_clock_stopping_statuses() -> None:
    """Which statuses stop the clock is stored in the visits: changing it rebuilds them.
    Limits are read when the report is asked for: changing one rebuilds nothing."""
    base = ProjectStatusVisitProjection(RULES).fingerprint
    project_rules = RULES.project
    no_hold = tuple(
        ProjectStatus(s.id, s.name, s.time_limit_hours, stops_clock=False)
        for s in project_rules.statuses
    )
    longer = tuple(
        ProjectStatus(s.id, s.name, (s.time_limit_hours or 0) + 1, s.stops_clock)
        for s in project_rules.statuses
    )

    def with_statuses(statuses: tuple[ProjectStatus, ...]) -> str:
        rules = replace(RULES, projects=replace(project_rules, statuses=statuses))
        return ProjectStatusVisitProjection(rules).fingerprint

    assert with_statuses(no_hold) != base
    assert with_statuses(longer) == base


# --- (b) properties over random histories -----------------------------------------------

PMS = ("petra", "pavel", "polina")
DEAL_FUNNELS = ("upsell", "transport")


@dataclass(frozen=True)
class Act:
    """One command (or a few, at one instant) of a deal or a project."""

    at: datetime
    run: Callable[[EventStore, CommandContext], object]


@dataclass
class _DealModel:
    funnel: str
    stage: str
    closed: bool = False


@dataclass
class _ProjectModel:
    status: str
    pm: str | None


@dataclass
class MixedHistory:
    leads: list[Step]
    acts: list[Act]
    lead_ids: list[UUID] = field(default_factory=list)
    deal_ids: list[UUID] = field(default_factory=list)
    project_ids: list[UUID] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return max([s.at for s in self.leads] + [a.at for a in self.acts])


def _new_deal(lead_id: UUID, funnel: str) -> Callable[[EventStore, CommandContext], object]:
    def run(store: EventStore, ctx: CommandContext) -> object:
        create = lead.CreateLead(lead_id, "out_of_court", "Haulage", "Agro LLC", "web", "vera")
        create_lead(store, FUNNELS, create, ctx)
        handle_lead_command(
            store, FUNNELS, lead_id, lead.RecordLeadAssessment("eva", "ok", Decimal(1)), ctx
        )
        handle_lead_command(store, FUNNELS, lead_id, lead.QualifyLead(True), ctx)
        return convert_lead(store, FUNNELS, RULES, lead_id, funnel, ctx)

    return run


def _new_project(command: project.CreateProject) -> Callable[..., object]:
    return lambda store, ctx: create_project(store, RULES, command, ctx)


def _deal_command(deal_id: UUID, command: deal.DealCommand) -> Callable[..., object]:
    return lambda store, ctx: handle_deal_command(store, RULES, deal_id, command, ctx)


def _project_command(project_id: UUID, command: project.ProjectCommand) -> Callable[..., object]:
    return lambda store, ctx: handle_project_command(store, RULES, project_id, command, ctx)


def _deal_step(rng: random.Random, deal_id: UUID, model: _DealModel) -> Callable[..., object]:
    funnel = RULES.deal_funnels[model.funnel]
    current = funnel.stage(model.stage)
    assert current is not None
    if rng.random() < 0.12:
        model.closed = True
        return _deal_command(deal_id, deal.CloseDeal("lost", "price"))
    # a stage that asked for estimates is left backwards only (its estimates pending)
    stages = [
        s.id
        for s in funnel.stages
        if s.id != model.stage and (not current.needs or s.step <= current.step)
    ]
    model.stage = rng.choice(stages)
    return _deal_command(deal_id, deal.MoveDealToStage(model.stage))


def _project_step(
    rng: random.Random, project_id: UUID, model: _ProjectModel
) -> Callable[..., object]:
    if rng.random() < 0.2:
        pm = rng.choice([p for p in (*PMS, None) if p != model.pm])
        model.pm = pm
        return _project_command(project_id, project.UpdateProjectCard({"pm": pm}))
    model.status = rng.choice([s.id for s in RULES.project.statuses if s.id != model.status])
    return _project_command(project_id, project.MoveProjectToStatus(model.status))


def generate_mixed_history(
    seed: int, *, leads: int, deals: int, projects: int, steps: int
) -> MixedHistory:
    """Random valid histories of leads (pauses included), deals and projects, each on its
    own strictly increasing clock from EPOCH."""
    rng = random.Random(f"deals and projects {seed}")
    lead_steps = generate_history(seed, leads=leads, steps=steps, max_gap_seconds=2 * 24 * 3600)
    history = MixedHistory(lead_steps, [])
    history.lead_ids = [s.lead_id for s in lead_steps if isinstance(s.command, lead.CreateLead)]
    deal_models: dict[UUID, _DealModel] = {}
    project_models: dict[UUID, _ProjectModel] = {}
    at = EPOCH
    for _ in range(steps):
        at += timedelta(seconds=rng.randint(1, 2 * 24 * 3600), microseconds=rng.randrange(10**6))
        live_deals = [d for d, m in deal_models.items() if not m.closed]
        choice = rng.random()
        if len(deal_models) < deals and (choice < 0.15 or not live_deals):
            lead_id = UUID(int=rng.getrandbits(128), version=4)
            funnel = rng.choice(DEAL_FUNNELS)
            deal_id = deal_id_for_lead(lead_id)
            deal_models[deal_id] = _DealModel(funnel, RULES.deal_funnels[funnel].first_stage.id)
            history.deal_ids.append(deal_id)
            history.acts.append(Act(at, _new_deal(lead_id, funnel)))
        elif len(project_models) < projects and (choice < 0.3 or not project_models):
            project_id = UUID(int=rng.getrandbits(128), version=4)
            pm = rng.choice(PMS)
            project_models[project_id] = _ProjectModel(RULES.project.first_status, pm)
            history.project_ids.append(project_id)
            command = project.CreateProject(project_id, "Delivery", "Agro LLC", pm=pm)
            history.acts.append(Act(at, _new_project(command)))
        elif live_deals and choice < 0.65:
            deal_id = rng.choice(live_deals)
            history.acts.append(Act(at, _deal_step(rng, deal_id, deal_models[deal_id])))
        elif project_models:
            project_id = rng.choice(sorted(project_models))
            model = project_models[project_id]
            history.acts.append(Act(at, _project_step(rng, project_id, model)))
    return history


def _apply(store: EventStore, items: list[Step | Act]) -> None:
    clock = ManualClock()
    for item in items:
        clock.set(item.at)
        if isinstance(item, Act):
            item.run(store, CommandContext.new(actor="anna.sales", clock=clock))
            continue
        ctx = CommandContext.new(actor=item.actor, clock=clock)
        if isinstance(item.command, lead.CreateLead):
            create_lead(store, FUNNELS, item.command, ctx)
        else:
            handle_lead_command(store, FUNNELS, item.lead_id, item.command, ctx)


def _in_time_order(history: MixedHistory) -> list[Step | Act]:
    items: list[Step | Act] = [*history.leads, *history.acts]
    return sorted(items, key=lambda item: item.at)


def mixed_histories(max_steps: int = 60) -> st.SearchStrategy[MixedHistory]:
    @st.composite
    def build(draw: st.DrawFn) -> MixedHistory:
        return generate_mixed_history(
            draw(st.integers(0, 2**32 - 1)),
            leads=draw(st.integers(1, 6)),
            deals=draw(st.integers(1, 5)),
            projects=draw(st.integers(1, 5)),
            steps=draw(st.integers(5, max_steps)),
        )

    return build()


STATUS_TIME_TABLES = {
    "deal_stage_visits": "deal_id, visit_no",
    "project_status_visits": "project_id, visit_no",
    "project_status_pms": "project_id",
    "lead_pauses": "lead_id, pause_no",
}


def _tables(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    cursor = db.cursor()
    try:
        return {
            table: cursor.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in STATUS_TIME_TABLES.items()
        }
    finally:
        cursor.close()


def _pieces(items: list[Step | Act], sizes: list[int]) -> list[list[Step | Act]]:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(items[start : start + size])
        start += size
    return [*pieces, items[start:]]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=mixed_histories(), data=st.data())
def test_folding_in_random_pages_equals_a_rebuild(
    history: MixedHistory, data: st.DataObject
) -> None:
    projections = read_model_projections(FUNNELS, RULES)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        fresh = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            sizes = data.draw(st.lists(st.integers(1, 40), max_size=5))
            for piece in _pieces(_in_time_order(history), sizes):
                _apply(store, piece)
                for size in data.draw(st.lists(st.integers(1, 30), max_size=3)):
                    Projector(store, db, projections, page_size=size).run_once()
            Projector(store, db, projections, page_size=data.draw(st.integers(1, 200))).catch_up()
            rebuild(store, fresh, projections)
            incremental = _tables(db)
            assert incremental == _tables(fresh)
            assert {r[0] for r in incremental["deal_stage_visits"]} == {
                str(d) for d in history.deal_ids
            }
            assert {r[0] for r in incremental["project_status_visits"]} == {
                str(p) for p in history.project_ids
            }
        finally:
            fresh.close()
            db.close()
            store.close()


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _micro(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _replayed_visits(
    store: EventStore, kind: Kind, subject: UUID, as_of: datetime
) -> list[tuple[str, int, int, bool]] | None:
    """The oracle: each visit as (stage, µs in it, µs paused, open), replayed from the
    subject's events up to as_of; None when the subject did not exist yet."""
    loaders = {"lead": load_lead_records, "deal": load_deal_records}
    records = loaders.get(kind, load_project_records)(store, subject, as_of=as_of)
    if not records:
        return None
    visits: list[list[Any]] = []  # [stage, entered, left, paused µs, stops the clock]
    paused_since: datetime | None = None

    def end(at: datetime) -> None:
        nonlocal paused_since
        if visits[-1][2] is None:
            if paused_since is not None:
                visits[-1][3] += _micro(at - paused_since)
                paused_since = None
            visits[-1][2] = at

    def enter(stage: str, at: datetime, stops: bool = False) -> None:
        if visits:
            end(at)
        visits.append([stage, at, None, 0, stops])

    def stops(status: str) -> bool:
        found = RULES.project.status(status)
        return found is not None and found.stops_clock

    for record in records:
        match record.event:
            case lead.LeadCreated() | deal.DealCreated() as e:
                enter(e.stage, e.at)
            case project.ProjectCreated() as e:
                enter(e.status, e.at, stops(e.status))
            case (
                lead.LeadStageChanged()
                | lead.LeadTransferred()
                | deal.DealStageChanged()
                | deal.DealEstimateReady()
                | deal.DealEstimateRejected()
            ) as e:
                enter(e.to_stage, e.at)
            case project.ProjectStatusChanged() as e:
                enter(e.to_status, e.at, stops(e.to_status))
            case lead.LeadPaused() as e:
                paused_since = e.at
            case lead.LeadResumed() as e:
                assert paused_since is not None
                visits[-1][3] += _micro(e.at - paused_since)
                paused_since = None
            case lead.LeadClosed() | deal.DealClosed() as e:
                end(e.at)
            case lead.LeadQualified(quality=False) as e:
                end(e.at)
    if paused_since is not None:
        visits[-1][3] += _micro(as_of - paused_since)
    replayed = []
    for stage, entered, left, paused, stops_clock in visits:
        elapsed = _micro((left or as_of) - entered)
        if stops_clock:
            replayed.append((stage, 0, elapsed, left is None))
        else:
            replayed.append((stage, elapsed - paused, paused, left is None))
    return replayed


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=mixed_histories(), data=st.data())
def test_totals_are_the_sums_of_the_visits_at_any_instant(
    history: MixedHistory, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/read_models.duckdb")
        cursor = db.cursor()
        try:
            _apply(store, _in_time_order(history))
            Projector(store, db, read_model_projections(FUNNELS, RULES)).catch_up()
            span = int((history.end - EPOCH).total_seconds()) + 2 * 24 * 3600
            drawn = data.draw(st.lists(st.integers(0, span), min_size=1, max_size=3))
            # some instants in the histories, and one after everything happened
            instants = [EPOCH + timedelta(seconds=s, microseconds=s % 997) for s in drawn]
            instants.append(history.end + timedelta(days=1))
            lead_paused = {
                (r[0], r[1]): r[2]
                for r in cursor.execute(
                    "SELECT lead_id, visit_no, paused_seconds FROM lead_stage_visits"
                ).fetchall()
            }
            subjects: dict[Kind, list[UUID]] = {
                "lead": history.lead_ids + [_lead_of(d, store) for d in history.deal_ids],
                "deal": history.deal_ids,
                "project": history.project_ids,
            }
            for as_of, (kind, ids) in itertools.product(instants, subjects.items()):
                limits = stage_limits(kind, FUNNELS, RULES)
                filters = StatusTimeFilters(kind=kind, as_of=as_of)
                visits, total = list_visits(cursor, filters, limits, 1_000_000, 0)
                assert total == len(visits)
                report = summary(cursor, filters, limits)
                _check_summary(report, visits)
                for visit in visits:
                    limit = visit["limit_hours"]
                    over = limit is not None and _us(visit["seconds"]) > _us(limit * H)
                    assert visit["over_limit"] == over
                    assert visit["over_limit_now"] == (over and visit["open"])
                    assert visit["entered_at"] <= as_of
                    assert visit["seconds"] >= 0
                    assert visit["paused_seconds"] >= 0
                    if kind == "lead" and visit["left_at"] is not None:
                        stored = lead_paused[(visit["subject_id"], visit["visit_no"])]
                        assert _us(visit["paused_seconds"]) == _us(float(stored))
                for subject in ids:
                    _check_subject(store, cursor, kind, subject, as_of, visits, limits)
        finally:
            cursor.close()
            db.close()
            store.close()


def _lead_of(deal_id: UUID, store: EventStore) -> UUID:
    records = load_deal_records(store, deal_id)
    created = records[0].event
    assert isinstance(created, deal.DealCreated)
    assert created.lead_id is not None
    return created.lead_id


def _check_summary(report: dict[str, Any], visits: list[dict[str, Any]]) -> None:
    by_stage: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for visit in visits:
        by_stage.setdefault((visit["funnel"], visit["stage"]), []).append(visit)
    for row in report["stages"]:
        mine = by_stage.pop((row["funnel"], row["stage"]), [])
        assert row["visits"] == len(mine)
        assert _us(row["total_seconds"]) == sum(_us(v["seconds"]) for v in mine)
        assert _us(row["paused_seconds"]) == sum(_us(v["paused_seconds"]) for v in mine)
        assert row["visits_over_limit"] == sum(v["over_limit"] for v in mine)
        assert row["current"] == sum(v["open"] for v in mine)
        assert row["current_over_limit"] == sum(v["over_limit_now"] for v in mine)
    assert not by_stage  # every visit's stage is in the report
    totals = report["totals"]
    assert totals["visits"] == len(visits)
    assert _us(totals["total_seconds"]) == sum(_us(v["seconds"]) for v in visits)
    assert _us(totals["paused_seconds"]) == sum(_us(v["paused_seconds"]) for v in visits)
    assert totals["current"] == sum(v["open"] for v in visits)


def _check_subject(
    store: EventStore,
    cursor: Any,
    kind: Kind,
    subject: UUID,
    as_of: datetime,
    visits: list[dict[str, Any]],
    limits: Any,
) -> None:
    """The subject's visits are those its events give, and its own view agrees."""
    mine = sorted(
        (v for v in visits if v["subject_id"] == str(subject)), key=lambda v: v["visit_no"]
    )
    replayed = _replayed_visits(store, kind, subject, as_of)
    if replayed is None:
        assert mine == []
        return
    assert [v["visit_no"] for v in mine] == list(range(1, len(mine) + 1))
    assert [
        (v["stage"], _us(v["seconds"]), _us(v["paused_seconds"]), v["open"]) for v in mine
    ] == replayed
    own = subject_status_time(
        cursor, StatusTimeFilters(kind=kind, as_of=as_of, subject_id=str(subject)), limits
    )
    assert own["visits"] == mine
    assert _us(own["total_seconds"]) == sum(_us(s["total_seconds"]) for s in own["stages"])
    assert _us(own["total_seconds"]) == sum(_us(v["seconds"]) for v in mine)
