"""Status time limits set by hand (seed 000: "for each status a time limit can be set by
hand"): an administrator or top management sets, changes or removes the limit of a lead
or deal stage or a project status, as an event on the stage's own stream; the configured
``time_limit_hours`` is the starting value.

(a) Given/When/Then of the decider, and the limit in force at an instant.
(b) Through HTTP: who may set a limit (403), bad kind/funnel/stage/limit (422 naming the
    field), GET /status-limits now and as_of, the status-time reports with the limit in
    force at each instant, and the project health measured against the limit in force.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import project, status_limits
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.health import compute_health, next_change
from aggregates.status_limits import SetStatusLimit, StatusLimitSet
from commands.context import CommandContext
from commands.projects import load_project
from commands.status_limits import set_status_limit
from event_store import open_event_store
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import (
    Platform,
    event_codec,
    load_funnels,
    load_rules,
    read_model_projections,
)
from projections.database import ReadModelDatabase
from projections.projector import Projector, rebuild
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer, iso, new_lead_body
from tests.test_project_rules import story

RULES = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)
FUNNELS = load_funnels(DEFAULT_FUNNELS_FILE)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ADMIN = bearer("root.admin", "admin")
TOP = ACTOR


def meta(at: datetime = T0, actor: str = "root.admin") -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=uuid4())


# --- (a) the decider ------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """Given these events of one stage's limit, when a command is decided at ``at``."""

    events: tuple[DomainEvent, ...] = ()

    def when(self, command: SetStatusLimit, at: datetime = T0) -> Decided:
        return Decided(self.events, command, meta(at))


@dataclass(frozen=True)
class Decided:
    events: tuple[DomainEvent, ...]
    command: SetStatusLimit
    meta: CommandMeta

    def _decide(self) -> StatusLimitSet:
        configured = status_limits.configured_limit(
            self.command.kind, self.command.funnel, self.command.stage, FUNNELS, RULES
        )
        state = status_limits.fold(list(self.events))
        return status_limits.decide(state, self.command, configured, self.meta)

    def then(self, **fields: Any) -> Story:
        event = self._decide()
        for name, value in fields.items():
            assert getattr(event, name) == value, (name, getattr(event, name), value)
        assert (event.actor, event.at, event.command_id) == (
            self.meta.actor,
            self.meta.at,
            self.meta.command_id,
        )
        return Story((*self.events, event))

    def then_rejected(self, rule: str) -> None:
        with pytest.raises(RuleViolation) as refused:
            self._decide()
        assert refused.value.rule == rule

    def then_invalid(self, field: str) -> None:
        with pytest.raises(InvalidValue) as refused:
            self._decide()
        assert refused.value.field == field


def planning(hours: float | None, reason: str | None = None) -> SetStatusLimit:
    return SetStatusLimit("project", None, "planning", hours, reason)


def test_a_limit_is_set_changed_and_removed_each_naming_the_one_before() -> None:
    # planning is configured at 120 h
    story = (
        Story()
        .when(planning(48, "clients wait"))
        .then(kind="project", funnel=None, stage="planning", limit_hours=48.0, previous_hours=120.0)
    )
    story = story.when(planning(72), T0 + timedelta(hours=1)).then(
        limit_hours=72.0, previous_hours=48.0, reason=None
    )
    story = story.when(planning(None), T0 + timedelta(hours=2)).then(
        limit_hours=None, previous_hours=72.0
    )
    state = status_limits.fold(list(story.events))
    assert state is not None
    assert (state.limit_hours, state.version, state.set_by) == (None, 3, "root.admin")
    # and back: a limit again
    story.when(planning(120), T0 + timedelta(hours=3)).then(limit_hours=120.0)


def test_setting_the_limit_in_force_again_is_refused() -> None:
    Story().when(planning(120)).then_rejected("limit_unchanged")
    story = Story().when(planning(None)).then(limit_hours=None)
    story.when(planning(None)).then_rejected("limit_unchanged")
    # a stage configured without a limit has none to remove
    Story().when(SetStatusLimit("project", None, "on_hold", None)).then_invalid("stage")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (SetStatusLimit("case", None, "planning", 1), "kind"),
        (SetStatusLimit("project", None, "archived", 1), "stage"),
        (SetStatusLimit("project", None, "", 1), "stage"),
        (SetStatusLimit("project", None, "done", 1), "stage"),  # the final status
        (SetStatusLimit("project", None, "on_hold", 1), "stage"),  # stops the clock
        (SetStatusLimit("project", "out_of_court", "planning", 1), "funnel"),
        (SetStatusLimit("lead", None, "new", 1), "funnel"),
        (SetStatusLimit("lead", "nowhere", "new", 1), "funnel"),
        (SetStatusLimit("lead", "out_of_court", "nowhere", 1), "stage"),
        (SetStatusLimit("deal", "out_of_court", "new", 1), "funnel"),  # a lead funnel
        (planning(0), "limit_hours"),
        (planning(-1), "limit_hours"),
        (planning(float("inf")), "limit_hours"),
        (planning(float("nan")), "limit_hours"),
        (planning(10**7), "limit_hours"),
        (planning(True), "limit_hours"),
        (planning("12"), "limit_hours"),  # type: ignore[arg-type]
        (planning(12, "   "), "reason"),
    ],
)
def test_a_bad_kind_funnel_stage_or_limit_is_refused_naming_the_field(
    command: SetStatusLimit, field: str
) -> None:
    Story().when(command).then_invalid(field)


def test_lead_and_deal_stages_take_their_funnel() -> None:
    lead_funnel = next(iter(FUNNELS.values()))
    stage = lead_funnel.stages[0]
    Story().when(SetStatusLimit("lead", lead_funnel.id, stage.id, 1.5)).then(
        funnel=lead_funnel.id, previous_hours=stage.time_limit_hours, limit_hours=1.5
    )
    deal_funnel = next(iter(RULES.deal_funnels.values()))
    deal_stage = deal_funnel.stages[0]
    Story().when(SetStatusLimit("deal", deal_funnel.id, deal_stage.id, 2)).then(
        funnel=deal_funnel.id, limit_hours=2.0
    )


hours = st.one_of(st.none(), st.integers(min_value=1, max_value=1000).map(float))


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=100), hours), max_size=6))
def test_the_limit_in_force_is_the_last_set_by_then(changes: list[tuple[int, Any]]) -> None:
    events: list[DomainEvent] = []
    state = None
    at = T0
    for step, value in changes:
        at = at + timedelta(hours=step)
        try:
            event = status_limits.decide(state, planning(value), 120.0, meta(at))
        except RuleViolation:
            continue
        events.append(event)
        state = status_limits.evolve(state, event)
    for probe in (T0 - timedelta(hours=1), T0, at, at + timedelta(hours=1)):
        expected: float | None = 120.0
        for recorded in events:
            assert isinstance(recorded, StatusLimitSet)
            if recorded.at <= probe:
                expected = recorded.limit_hours
        assert status_limits.in_force(120.0, events, probe) == expected


# --- (b) through HTTP -----------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=TOP) as client:
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def set_limit(api: TestClient, headers: dict[str, str] = ADMIN, **body: Any) -> Any:
    return api.post("/status-limits", json=body, headers=headers)


def test_only_administrators_and_top_management_set_limits(api: TestClient) -> None:
    body = {"kind": "project", "stage": "planning", "limit_hours": 48}
    for role in ("manager", "pm", "head", "analyst", "expert"):
        refused = set_limit(api, bearer(f"someone.{role}", role, "production"), **body)
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["rule"] == "role_not_allowed"
    accepted = ok(set_limit(api, ADMIN, **body))
    assert (accepted["kind"], accepted["stage"], accepted["version"]) == ("project", "planning", 1)
    assert ok(set_limit(api, TOP, **{**body, "limit_hours": 60}))["version"] == 2
    again = set_limit(api, TOP, **{**body, "limit_hours": 60})
    assert (again.status_code, again.json()["rule"]) == (409, "limit_unchanged")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "case", "stage": "planning", "limit_hours": 1}, "kind"),
        ({"kind": "project", "stage": "archived", "limit_hours": 1}, "stage"),
        ({"kind": "project", "stage": "done", "limit_hours": 1}, "stage"),
        ({"kind": "project", "funnel": "x", "stage": "planning", "limit_hours": 1}, "funnel"),
        ({"kind": "lead", "stage": "new", "limit_hours": 1}, "funnel"),
        ({"kind": "lead", "funnel": "nowhere", "stage": "new", "limit_hours": 1}, "funnel"),
        ({"kind": "project", "stage": "planning", "limit_hours": 0}, "limit_hours"),
        ({"kind": "project", "stage": "planning"}, "limit_hours"),
        ({"kind": "project", "stage": "planning", "limit_hours": "soon"}, "limit_hours"),
        ({"kind": "project", "stage": "planning", "limit_hours": 1, "colour": 1}, "colour"),
    ],
)
def test_bad_limits_answer_422_naming_the_field(
    api: TestClient, platform: Platform, body: dict[str, Any], field: str
) -> None:
    refused = set_limit(api, ADMIN, **body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert platform.store.last_position() == 0  # nothing written


def _limits(api: TestClient, platform: Platform, **params: Any) -> dict[tuple[Any, ...], Any]:
    params = {**params, "min_position": platform.store.last_position()}
    body = ok(api.get("/status-limits", params=params))
    return {(i["kind"], i["funnel"], i["stage"]): i for i in body["items"]} | {
        ("changes",): body["changes"]
    }


def test_the_limits_now_and_as_of_with_who_set_them(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    before = _limits(api, platform)
    planning_now = before[("project", None, "planning")]
    assert (planning_now["configured_hours"], planning_now["limit_hours"]) == (120.0, 120.0)
    assert (planning_now["set_by_hand"], planning_now["set_by"]) == (False, None)
    assert before[("project", None, "done")]["limit_hours"] is None
    lead_funnel = next(iter(FUNNELS.values()))
    assert (
        before[("lead", lead_funnel.id, lead_funnel.stages[0].id)]["configured_hours"]
        == lead_funnel.stages[0].time_limit_hours
    )

    clock.advance(hours=1)
    ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=48, reason="faster"))
    set_at = clock.now
    clock.advance(hours=1)
    ok(set_limit(api, TOP, kind="project", stage="planning", limit_hours=None))

    now = _limits(api, platform, kind="project")
    assert {k[0] for k in now if k != ("changes",)} == {"project"}
    planning_then = now[("project", None, "planning")]
    assert (planning_then["limit_hours"], planning_then["set_by"]) == (None, "anna.sales")
    assert (planning_then["set_by_role"], planning_then["set_by_hand"]) == ("top", True)
    assert [(c["limit_hours"], c["set_by"]) for c in now[("changes",)]] == [
        (None, "anna.sales"),
        (48.0, "root.admin"),
    ]
    # as it was between the two changes, and before the first
    middle = _limits(api, platform, kind="project", as_of=iso(set_at + timedelta(minutes=30)))
    planning_middle = middle[("project", None, "planning")]
    assert (planning_middle["limit_hours"], planning_middle["set_by"]) == (48.0, "root.admin")
    assert (planning_middle["reason"], planning_middle["set_at"]) == ("faster", iso(set_at))
    assert len(middle[("changes",)]) == 1
    first = _limits(api, platform, kind="project", as_of=iso(T0))
    assert first[("project", None, "planning")]["limit_hours"] == 120.0
    assert first[("changes",)] == []


def _visit(api: TestClient, platform: Platform, project_id: str, **params: Any) -> Any:
    params = {"kind": "project", **params, "min_position": platform.store.last_position()}
    items = ok(api.get("/reports/status-time", params=params))["items"]
    [visit] = [v for v in items if v["subject_id"] == project_id]
    return visit


def _planning(api: TestClient, platform: Platform, **params: Any) -> Any:
    params = {"kind": "project", **params, "min_position": platform.store.last_position()}
    stages = ok(api.get("/reports/status-time/summary", params=params))["stages"]
    return next(s for s in stages if s["stage"] == "planning")


def test_the_status_time_report_uses_the_limit_in_force_at_each_instant(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    # a project in planning from T0 (configured limit 120 h)
    project_id = ok(api.post("/projects", json={"title": "Fit-out", "company_name": "Acme"}), 201)[
        "project_id"
    ]
    clock.advance(hours=60)  # T0+60h: 60 h in planning, under 120
    visit = _visit(api, platform, project_id)
    assert (visit["limit_hours"], visit["over_limit"], visit["over_limit_now"]) == (
        120.0,
        False,
        False,
    )
    # the limit is lowered to 48 h: over it now
    ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=48))
    visit = _visit(api, platform, project_id)
    assert (visit["limit_hours"], visit["over_limit"], visit["over_limit_now"]) == (
        48.0,
        True,
        True,
    )
    assert (
        _planning(api, platform)["limit_hours"],
        _planning(api, platform)["current_over_limit"],
    ) == (
        48.0,
        1,
    )
    # as it was an hour before the change: the limit of then, 120 h
    before = iso(T0 + timedelta(hours=59))
    visit = _visit(api, platform, project_id, as_of=before)
    assert (visit["limit_hours"], visit["over_limit"], visit["over_limit_now"]) == (
        120.0,
        False,
        False,
    )
    assert _planning(api, platform, as_of=before)["limit_hours"] == 120.0

    # raised to 200 h ten hours later: not over the limit now (70 h), but it was over the
    # 48 h limit while that one was in force
    clock.advance(hours=10)
    ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=200))
    visit = _visit(api, platform, project_id)
    assert (visit["limit_hours"], visit["over_limit"], visit["over_limit_now"]) == (
        200.0,
        True,
        False,
    )
    summary = _planning(api, platform)
    assert (summary["visits_over_limit"], summary["current_over_limit"]) == (1, 0)
    over = ok(
        api.get(
            "/reports/status-time",
            params={"kind": "project", "over_limit_only": True},
        )
    )
    assert [v["subject_id"] for v in over["items"]] == [project_id]
    # the project's own report, as it was between the two changes
    between = iso(T0 + timedelta(hours=65))
    own = ok(api.get(f"/projects/{project_id}/status-time", params={"as_of": between}))
    assert [(v["limit_hours"], v["over_limit_now"]) for v in own["visits"]] == [(48.0, True)]

    # a second project enters planning after the raise: 200 h for it from the start
    clock.advance(hours=1)
    other = ok(api.post("/projects", json={"title": "Survey", "company_name": "Acme"}), 201)
    clock.advance(hours=100)
    visit = _visit(api, platform, other["project_id"])
    assert (visit["limit_hours"], visit["over_limit"]) == (200.0, False)
    # and the limit removed: no limit, nothing over now
    ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=None))
    visit = _visit(api, platform, other["project_id"])
    assert (visit["limit_hours"], visit["over_limit"], visit["over_limit_now"]) == (
        None,
        False,
        False,
    )


def test_a_deal_stage_limit_set_by_hand_counts_for_deals(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    """The same rule for deals and leads: a stage's limit set by hand is the one the
    report measures against (checked here on the configured stages of a deal funnel)."""
    deal_funnel = next(iter(RULES.deal_funnels.values()))
    stage = deal_funnel.stages[0]
    ok(set_limit(api, ADMIN, kind="deal", funnel=deal_funnel.id, stage=stage.id, limit_hours=1))
    summary = ok(
        api.get(
            "/reports/status-time/summary",
            params={
                "kind": "deal",
                "funnel": deal_funnel.id,
                "min_position": platform.store.last_position(),
            },
        )
    )
    first = next(s for s in summary["stages"] if s["stage"] == stage.id)
    assert first["limit_hours"] == 1.0


# --- the project health ------------------------------------------------------------------


def test_the_health_rule_reads_the_limit_in_force() -> None:
    [created] = story()
    state = project.fold([created])
    assert state is not None
    at = state.status_entered_at + timedelta(hours=60)
    assert compute_health(state, None, at, RULES.project) == ("good", ())
    level, reasons = compute_health(state, None, at, RULES.project, {"planning": 48.0})
    assert (level, reasons) == (
        RULES.project.health.status_over_limit,
        ("'planning' for longer than its 48 h limit",),
    )
    # removed: no limit, never over it; the next look is not the limit's
    assert compute_health(state, None, at, RULES.project, {"planning": None}) == ("good", ())
    assert next_change(state, None, at, RULES.project, {"planning": None}) is None
    assert next_change(state, None, at, RULES.project, {"planning": 100.0}) == (
        state.status_entered_at + timedelta(hours=100, microseconds=1)
    )


def test_the_health_process_manager_uses_the_limit_set_by_hand(
    make_platform: PlatformFactory, clock: FakeClock
) -> None:
    platform = make_platform()
    with TestClient(create_app(platform, close_on_exit=False), headers=TOP) as api:
        ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=24))
        project_id = ok(
            api.post("/projects", json={"title": "Fit-out", "company_name": "Acme"}), 201
        )["project_id"]
        platform.processes.run_once()
        clock.advance(hours=25)
        platform.processes.run_once()
        state = load_project(platform.store, UUID(project_id))
        assert state.computed_reasons == ("'planning' for longer than its 24 h limit",)
        # raised: the project in planning is looked at again at once, no longer over
        ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=100))
        platform.processes.run_once()
        state = load_project(platform.store, UUID(project_id))
        assert (state.computed_health, state.computed_reasons) == ("good", ())
        # lowered below its 25 h: over the new limit at once, not when 100 h would pass
        clock.advance(hours=1)
        ok(set_limit(api, ADMIN, kind="project", stage="planning", limit_hours=20))
        platform.processes.run_once()
        state = load_project(platform.store, UUID(project_id))
        assert state.computed_reasons == ("'planning' for longer than its 20 h limit",)
        # a limit of another status leaves it alone
        ok(set_limit(api, ADMIN, kind="project", stage="approval", limit_hours=1))
        platform.processes.run_once()
        assert load_project(platform.store, UUID(project_id)).version == state.version


# --- the read model ----------------------------------------------------------------------


@given(sizes=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_limit_changes_folded_in_any_page_sizes_equal_a_rebuild(sizes: list[int]) -> None:
    projections = read_model_projections(FUNNELS, RULES)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        fresh = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
        try:
            lead_funnel = next(iter(FUNNELS.values()))
            commands = [
                planning(48, "faster"),
                SetStatusLimit("lead", lead_funnel.id, lead_funnel.stages[0].id, 2.5),
                planning(None),
                planning(200),
            ]
            for n, command in enumerate(commands):
                ctx = CommandContext.new(
                    actor="root.admin",
                    clock=lambda n=n: T0 + timedelta(hours=n),  # type: ignore[misc]
                    actor_role="admin",
                )
                set_status_limit(store, FUNNELS, RULES, command, ctx)
                for size in sizes:
                    Projector(store, db, projections, page_size=size).run_once()
            Projector(store, db, projections, page_size=sizes[0]).catch_up()
            rebuild(store, fresh, projections)
            query = "SELECT * FROM status_limit_changes ORDER BY position"
            rows = db.cursor().execute(query).fetchall()
            assert rows == fresh.cursor().execute(query).fetchall()
            assert [(r[0], r[3], r[7]) for r in rows] == [
                ("project", 48.0, "admin"),
                ("lead", 2.5, "admin"),
                ("project", None, "admin"),
                ("project", 200.0, "admin"),
            ]
        finally:
            fresh.close()
            db.close()
            store.close()


def test_a_lead_visit_is_measured_against_each_limit_with_its_pauses_left_out(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    """A lead in 'new' from T0, paused from T0+5h to T0+15h. The limit is set to 15 h at
    T0+16h (6 h worked then) and raised to 100 h at T0+22h: worked 12 h by then, so it
    never went over 15 h (its 22 h with the pause would have). Lowered to 10 h at T0+23h
    (13 h worked): over that one now."""
    lead_id = ok(api.post("/leads", json=new_lead_body()), 201)["lead_id"]
    clock.advance(hours=5)
    ok(api.post(f"/leads/{lead_id}/pause", json={"reason": "client on holiday"}))
    clock.advance(hours=10)
    ok(api.post(f"/leads/{lead_id}/resume", json={}))
    limit = {"kind": "lead", "funnel": "out_of_court", "stage": "new"}
    clock.advance(hours=1)
    ok(set_limit(api, ADMIN, **limit, limit_hours=15))
    clock.advance(hours=6)
    ok(set_limit(api, ADMIN, **limit, limit_hours=100))

    def visit(**params: Any) -> Any:
        params = {**params, "min_position": platform.store.last_position()}
        own = ok(api.get(f"/leads/{lead_id}/status-time", params=params))
        [found] = own["visits"]
        return (found["seconds"] / 3600, found["limit_hours"], found["over_limit"])

    assert visit() == (12.0, 100.0, False)
    assert visit(as_of=iso(T0 + timedelta(hours=20))) == (10.0, 15.0, False)
    clock.advance(hours=1)
    ok(set_limit(api, ADMIN, **limit, limit_hours=10))
    assert visit() == (13.0, 10.0, True)
