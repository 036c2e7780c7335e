"""Manager activities («Мои Дела», seed 004) and personal weekly plans («Личные Планы»).

(a) Given/When/Then of the activity decider: plan, register after the fact, done,
    cancel, reschedule, overdue derived at any instant, the overdue reminder once.
(b) Through HTTP: who may plan for whom (403), bad input (422 naming the field), the
    life of an activity, the list's filters and scope, as_of and history, the overdue
    alert through the deadlines process manager in GET /alerts, personal plans (403 for
    another manager, comments by the head).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from aggregates import activities, activity_plans
from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, RuleViolation
from aggregates.rules import DEFAULT_ACTIVITY_RULES
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer, iso

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
RULES = DEFAULT_ACTIVITY_RULES
ADMIN = bearer("root.admin", "admin")
TOP = ACTOR
BORIS = bearer("boris", "manager", "sales")
VERA = bearer("vera", "manager", "sales")
OLEG = bearer("oleg", "manager", "retail")
HEAD = bearer("helen", "head", "sales")


def meta(at: datetime = T0, actor: str = "boris") -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=uuid4())


def planned(**overrides: Any) -> activities.PlanActivity:
    fields: dict[str, Any] = {
        "activity_id": UUID("00000000-0000-4000-8000-0000000000a1"),
        "activity_type": "call_out_cold",
        "owner": "boris",
        "planned_at": T0 + timedelta(hours=2),
        "company_id": "northwind",
    }
    fields.update(overrides)
    return activities.PlanActivity(**fields)


def given(*commands: activities.PlanActivity | activities.ActivityCommand) -> activities.Activity:
    """The activity after these commands, each decided an hour after the previous."""
    first, *rest = commands
    assert isinstance(first, activities.PlanActivity)
    state = activities.evolve(None, activities.plan(first, RULES, meta()))
    for n, command in enumerate(rest, start=1):
        assert not isinstance(command, activities.PlanActivity)
        event = activities.decide(state, command, meta(T0 + timedelta(minutes=n)))
        state = activities.evolve(state, event)
    return state


# --- (a) the decider ------------------------------------------------------------------------


def test_a_planned_call_is_planned_then_overdue_once_its_end_passes() -> None:
    state = given(planned())
    assert (state.status, state.activity_type, state.group, state.direction) == (
        "planned",
        "call_out_cold",
        "calls",
        "out",
    )
    end = T0 + timedelta(hours=2, minutes=30)
    assert state.planned_end == end
    assert state.state_at(end) == "planned"
    assert state.state_at(end + timedelta(microseconds=1)) == "overdue"


def test_incoming_calls_and_emails_are_registered_done_at_once() -> None:
    for code in ("call_in_new", "call_in_known", "email_in"):
        event = activities.plan(
            planned(activity_type=code, planned_at=T0 - timedelta(minutes=5)), RULES, meta()
        )
        assert isinstance(event, activities.ActivityRegistered)
        state = activities.evolve(None, event)
        assert (state.status, state.registered, state.state_at(T0 + timedelta(days=9))) == (
            "done",
            True,
            "done",
        )
    with pytest.raises(InvalidValue) as refused:
        activities.plan(planned(activity_type="call_in_new"), RULES, meta())
    assert refused.value.field == "planned_at"


def test_an_outgoing_call_made_unplanned_is_registered_with_its_result() -> None:
    command = planned(planned_at=T0 - timedelta(hours=1), done=True, result="sent the offer")
    event = activities.plan(command, RULES, meta())
    assert isinstance(event, activities.ActivityRegistered)
    assert event.result == "sent the offer"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"activity_type": "smoke_signals"}, "type"),
        ({"company_id": None}, "company_id"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 24 * 60 + 1}, "duration_minutes"),
        ({"planned_at": T0 + timedelta(days=400)}, "planned_at"),
        ({"result": "too early"}, "result"),
        ({"owner": "  "}, "owner"),
    ],
)
def test_bad_values_are_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        activities.plan(planned(**overrides), RULES, meta())
    assert refused.value.field == field


def test_a_contact_alone_names_the_client() -> None:
    event = activities.plan(planned(company_id=None, contact="+7 900 000-00-00"), RULES, meta())
    assert event.contact == "+7 900 000-00-00"


def test_done_cancelled_and_rescheduled_only_while_planned() -> None:
    done = given(planned(), activities.CompleteActivity("agreed on a meeting"))
    assert (done.status, done.result) == ("done", "agreed on a meeting")
    for command in (
        activities.CompleteActivity("again"),
        activities.CancelActivity(),
        activities.RescheduleActivity(T0 + timedelta(days=1)),
    ):
        with pytest.raises(RuleViolation) as refused:
            activities.decide(done, command, meta())
        assert refused.value.rule == "activity_done"
    cancelled = given(planned(), activities.CancelActivity("client away"))
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "client away")
    with pytest.raises(RuleViolation):
        activities.decide(cancelled, activities.CompleteActivity("x"), meta())
    with pytest.raises(InvalidValue) as blank:
        activities.decide(given(planned()), activities.CompleteActivity("  "), meta())
    assert blank.value.field == "result"


def test_rescheduling_moves_the_planned_end_and_the_overdue_instant() -> None:
    later = T0 + timedelta(days=1)
    state = given(planned(), activities.RescheduleActivity(later, 60, "client asked"))
    assert (state.planned_at, state.duration_minutes, state.reschedules) == (later, 60, 1)
    assert state.state_at(T0 + timedelta(hours=5)) == "planned"
    assert state.state_at(later + timedelta(minutes=61)) == "overdue"
    with pytest.raises(RuleViolation) as same:
        activities.decide(state, activities.RescheduleActivity(later, 60), meta())
    assert same.value.rule == "no_change"


def test_the_overdue_reminder_is_sent_once_per_planned_end() -> None:
    state = given(planned())
    end = state.planned_end
    with pytest.raises(RuleViolation):
        activities.decide(state, activities.RemindOverdueActivity(end), meta(end - timedelta(1)))
    event = activities.decide(state, activities.RemindOverdueActivity(end), meta(end))
    assert isinstance(event, activities.ActivityOverdueReminderSent)
    assert (event.recipient, event.due) == ("boris", end.date())
    reminded = activities.evolve(state, event)
    with pytest.raises(RuleViolation) as again:
        activities.decide(reminded, activities.RemindOverdueActivity(end), meta(end))
    assert again.value.rule == "already_reminded"
    done = activities.evolve(
        reminded, activities.decide(reminded, activities.CompleteActivity("late"), meta(end))
    )
    with pytest.raises(RuleViolation):
        activities.decide(done, activities.RemindOverdueActivity(end), meta(end))


def test_a_plan_is_for_a_week_not_over_and_names_known_types() -> None:
    monday = date(2026, 1, 12)
    command = activity_plans.SetActivityPlan(
        "boris", monday, {monday: {"call_out_cold": 10, "demo": 0}}, None
    )
    event = activity_plans.set_plan(None, command, RULES, meta())
    assert activity_plans.days_of(event.counts) == {"2026-01-12": {"call_out_cold": 10}}
    plan = activity_plans.evolve(None, event)
    with pytest.raises(RuleViolation) as same:
        activity_plans.set_plan(plan, command, RULES, meta())
    assert same.value.rule == "no_change"
    with pytest.raises(InvalidValue) as tuesday:
        activity_plans.require_monday(date(2026, 1, 13))
    assert tuesday.value.field == "week"
    with pytest.raises(RuleViolation) as over:
        activity_plans.set_plan(
            None,
            activity_plans.SetActivityPlan("boris", date(2025, 12, 29), {}, None),
            RULES,
            meta(),
        )
    assert over.value.rule == "week_over"
    with pytest.raises(InvalidValue):
        activity_plans.set_plan(
            None,
            activity_plans.SetActivityPlan("boris", monday, {monday: {"fax": 1}}, None),
            RULES,
            meta(),
        )


# --- (b) through HTTP -----------------------------------------------------------------------


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        for username, role, department in (
            ("boris", "manager", "sales"),
            ("vera", "manager", "sales"),
            ("oleg", "manager", "retail"),
            ("helen", "head", "sales"),
        ):
            body = {"username": username, "name": username.title(), "role": role}
            body |= {"department": department, "region": "North", "city": "Omsk"}
            assert client.post("/users", json=body, headers=ADMIN).status_code == 201
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def read(
    api: TestClient, platform: Platform, path: str, headers: dict[str, str] = TOP, **params: Any
) -> Any:
    params["min_position"] = platform.store.last_position()
    return ok(api.get(path, params=params, headers=headers))


def plan_call(api: TestClient, headers: dict[str, str] = BORIS, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "call_out_cold",
        "company_id": "northwind",
        "planned_at": iso(T0 + timedelta(hours=2)),
    }
    body.update(overrides)
    answer: dict[str, Any] = ok(api.post("/activities", json=body, headers=headers), 201)
    return answer


def test_a_manager_plans_their_own_and_may_not_plan_for_another(api: TestClient) -> None:
    mine = plan_call(api)
    assert (mine["status"], mine["version"]) == ("planned", 1)
    refused = api.post(
        "/activities",
        json={"type": "demo", "owner": "vera", "company_id": "x", "planned_at": iso(T0)},
        headers=BORIS,
    )
    assert refused.status_code == 403, refused.text
    assert "not_your_team" in refused.text
    # their head assigns one to a person of the department; not to another department
    assigned = plan_call(api, HEAD, owner="vera", type="meeting_active")
    assert assigned["status"] == "planned"
    other = api.post(
        "/activities",
        json={"type": "demo", "owner": "oleg", "company_id": "x", "planned_at": iso(T0)},
        headers=HEAD,
    )
    assert other.status_code == 403
    assert plan_call(api, TOP, owner="oleg")["status"] == "planned"


def test_bad_bodies_are_422_naming_the_field(api: TestClient) -> None:
    for body, field in (
        ({"type": "fax", "company_id": "x"}, "type"),
        ({"type": "demo"}, "company_id"),
        ({"type": "demo", "company_id": "x", "duration_minutes": 0}, "duration_minutes"),
        ({"type": "demo", "company_id": "x", "colour": "red"}, "colour"),
    ):
        refused = api.post("/activities", json=body, headers=BORIS)
        assert refused.status_code == 422, refused.text
        assert field in refused.text


def test_an_activity_about_a_record_that_does_not_exist_is_422_naming_the_field(
    api: TestClient,
) -> None:
    for field in ("lead_id", "deal_id", "project_id"):
        refused = api.post(
            "/activities",
            json={"type": "demo", "company_id": "x", "planned_at": iso(T0), field: str(uuid4())},
            headers=BORIS,
        )
        assert refused.status_code == 422, refused.text
        assert field in refused.text
        assert "exists" in refused.text


def test_an_activity_lives_and_reads_as_of_and_in_its_history(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    activity_id = plan_call(api)["activity_id"]
    planned_state = read(api, platform, f"/activities/{activity_id}")
    assert (planned_state["state"], planned_state["type"], planned_state["group"]) == (
        "planned",
        "call_out_cold",
        "calls",
    )
    clock.advance(hours=3)  # past the planned end
    assert read(api, platform, f"/activities/{activity_id}")["state"] == "overdue"
    other = api.post(f"/activities/{activity_id}/done", json={"result": "x"}, headers=VERA)
    assert other.status_code == 404  # vera may not even see boris's activity
    ok(api.post(f"/activities/{activity_id}/done", json={"result": "meeting set"}, headers=BORIS))
    twice = api.post(f"/activities/{activity_id}/done", json={"result": "x"}, headers=BORIS)
    assert twice.status_code == 409
    assert "activity_done" in twice.text
    now = read(api, platform, f"/activities/{activity_id}")
    assert (now["state"], now["result"], now["version"]) == ("done", "meeting set", 2)
    then = read(
        api, platform, f"/activities/{activity_id}", as_of=iso(T0 + timedelta(hours=2, minutes=45))
    )
    assert (then["state"], then["version"]) == ("overdue", 1)
    history = read(api, platform, f"/activities/{activity_id}/history")
    assert [e["type"] for e in history["events"]] == ["ActivityPlanned", "ActivityDone"]


def test_the_list_filters_by_state_and_is_scoped(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    first = plan_call(api)["activity_id"]
    plan_call(api, planned_at=iso(T0 + timedelta(days=1)), type="demo")
    plan_call(api, VERA, type="meeting_cold")
    cancelled = plan_call(api, planned_at=iso(T0 + timedelta(days=2)))["activity_id"]
    ok(api.post(f"/activities/{cancelled}/cancel", json={"reason": "holiday"}, headers=BORIS))
    clock.advance(hours=3)
    mine = read(api, platform, "/activities", BORIS)
    assert mine["total"] == 3
    assert {i["owner"] for i in mine["items"]} == {"boris"}
    overdue = read(api, platform, "/activities", BORIS, status="overdue")
    assert [i["activity_id"] for i in overdue["items"]] == [first]
    assert read(api, platform, "/activities", BORIS, status="cancelled")["total"] == 1
    assert read(api, platform, "/activities", BORIS, group="demos")["total"] == 1
    assert read(api, platform, "/activities", HEAD)["total"] == 4
    assert read(api, platform, "/activities", OLEG)["total"] == 0
    assert read(api, platform, "/activities", TOP, owner="vera")["total"] == 1
    unknown = api.get("/activities", params={"type": "fax"})
    assert unknown.status_code == 422
    unseen = api.get(f"/activities/{first}", headers=OLEG)
    assert unseen.status_code == 404


def test_an_overdue_activity_reaches_its_owner_as_an_alert_once(
    api: TestClient, platform: Platform, clock: FakeClock
) -> None:
    late = plan_call(api)["activity_id"]
    on_time = plan_call(api, planned_at=iso(T0 + timedelta(hours=1)))["activity_id"]
    moved = plan_call(api, planned_at=iso(T0 + timedelta(hours=1)))["activity_id"]
    platform.processes.run_once()
    ok(api.post(f"/activities/{on_time}/done", json={"result": "done"}, headers=BORIS))
    ok(
        api.post(
            f"/activities/{moved}/reschedule",
            json={"planned_at": iso(T0 + timedelta(days=2))},
            headers=BORIS,
        )
    )
    clock.advance(hours=4)
    platform.processes.run_once()
    platform.processes.run_once()
    alerts = read(api, platform, "/alerts", BORIS, subject_type="activity")
    assert [(a["subject_id"], a["recipient"], a["kind"]) for a in alerts["items"]] == [
        (late, "boris", "reminder")
    ]
    assert read(api, platform, "/alerts", VERA, subject_type="activity")["total"] == 0
    clock.advance(days=3)
    platform.processes.run_once()
    alerts = read(api, platform, "/alerts", BORIS, subject_type="activity")
    assert {a["subject_id"] for a in alerts["items"]} == {late, moved}


def test_personal_plans_are_set_by_the_manager_and_commented_by_the_head(
    api: TestClient, platform: Platform
) -> None:
    week = "2026-01-12"
    body = {
        "days": [
            {"day": "2026-01-12", "counts": {"call_out_cold": 10, "meeting_cold": 2}},
            {"day": "2026-01-13", "counts": {"call_out_cold": 8}},
        ],
        "note": "focus on cold calls",
    }
    ok(api.put(f"/activity-plans/boris/{week}", json=body, headers=BORIS))
    refused = api.put(f"/activity-plans/boris/{week}", json=body, headers=VERA)
    assert refused.status_code == 403, refused.text
    ok(api.post(f"/activity-plans/boris/{week}/comments", json={"text": "add demos"}, headers=HEAD))
    other_head = bearer("rita", "head", "retail")
    assert (
        api.post(f"/activity-plans/boris/{week}/comments", json={"text": "x"}, headers=other_head)
    ).status_code == 403
    plan = read(api, platform, f"/activity-plans/boris/{week}", HEAD)
    assert plan["totals"] == {"call_out_cold": 18, "meeting_cold": 2}
    assert [(c["author"], c["text"]) for c in plan["comments"]] == [("helen", "add demos")]
    assert api.get(f"/activity-plans/boris/{week}", headers=VERA).status_code == 404
    assert api.put("/activity-plans/boris/2026-01-13", json=body, headers=BORIS).status_code == 422
    listed = read(api, platform, "/activity-plans", HEAD, week=week)
    assert [(p["manager"], p["comments"]) for p in listed["items"]] == [("boris", 1)]
    bad = dict(body, days=[{"day": "2026-01-12", "counts": {"fax": 1}}])
    assert api.put(f"/activity-plans/boris/{week}", json=bad, headers=BORIS).status_code == 422


def test_commands_are_idempotent_and_versioned(api: TestClient) -> None:
    body = {"type": "demo", "company_id": "northwind", "planned_at": iso(T0 + timedelta(days=1))}
    key = {"Idempotency-Key": "plan-demo-1", **BORIS}
    first = api.post("/activities", json=body, headers=key)
    again = api.post("/activities", json=body, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["activity_id"] == again.json()["activity_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    reused = api.post("/activities", json={**body, "type": "meeting_cold"}, headers=key)
    assert reused.status_code in (409, 422), reused.text
    activity_id = first.json()["activity_id"]
    stale = api.post(
        f"/activities/{activity_id}/cancel", json={}, headers={"If-Match": '"7"', **BORIS}
    )
    assert stale.status_code == 409, stale.text
    ok(api.post(f"/activities/{activity_id}/cancel", json={}, headers={"If-Match": '"1"', **BORIS}))
