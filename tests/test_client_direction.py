"""A client's direction is taken only if it is free (seed 002: «менеджеры сами могут
закрепляться за направлением клиента, если оно свободно»); taking one another manager
holds needs the head's approval; holding it shows the manager that client's leads and
deals of that direction.

The decider (``limits.assign`` / ``decide_approval``), a property over random requests,
and through HTTP: the answers, the read model, the alert and the read scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from aggregates import limits
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import NotPermitted, RuleViolation
from leadledger.settings import DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE
from leadledger.wiring import Platform, load_rules
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory, bearer, new_lead_body
from tests.deal_helpers import ok, qualified_lead
from tests.test_concurrency_postgres import race

RULES = load_rules(DEFAULT_FUNNELS_FILE, DEFAULT_RULES_FILE)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HEAD = "head.of.sales"


def meta(actor: str = "boris") -> CommandMeta:
    return CommandMeta(actor=actor, at=NOW, command_id=uuid4())


class Given:
    """given(events).when_assigned(manager, taken=…) / .when_decided(...), then check."""

    def __init__(self, *events: DomainEvent) -> None:
        self.events = list(events)

    @property
    def state(self) -> limits.ClientAssignment | None:
        return limits.fold_assignment(self.events)

    def when_assigned(
        self, manager: str, taken: int = 0, rules: Any = RULES
    ) -> tuple[DomainEvent, limits.ManagerClientTaken | None]:
        command = limits.AssignClient("inn-7701", "turnkey", manager, "knows the buyer")
        return limits.assign(self.state, command, taken, rules, meta(manager))

    def when_decided(
        self, approve: bool, actor: str = HEAD, taken: int = 0
    ) -> tuple[DomainEvent, limits.ManagerClientTaken | None]:
        state = self.state
        assert state is not None
        command = limits.DecideAssignment(approve, None if approve else "boris keeps it")
        return limits.decide_approval(state, command, taken, RULES, meta(actor))

    def then(self, *events: DomainEvent) -> Given:
        return Given(*self.events, *events)


def held_by_boris() -> Given:
    assigned, _ = Given().when_assigned("boris")
    return Given(assigned)


def test_a_free_direction_is_taken_at_once_within_the_cap() -> None:
    assigned, taken = Given().when_assigned("boris", taken=2)
    assert isinstance(assigned, limits.ClientAssigned)
    assert (assigned.manager, assigned.previous_manager, assigned.count) == ("boris", None, 3)
    assert taken is not None
    assert taken.count == 3


def test_a_free_direction_over_the_cap_still_waits_for_the_head() -> None:
    requested, taken = Given().when_assigned("boris", taken=RULES.monthly_new_client_cap)
    assert isinstance(requested, limits.ClientAssignmentApprovalRequested)
    assert taken is None
    state = Given(requested).state
    assert state is not None
    assert (state.status, state.pending_because) == ("pending_approval", "monthly_cap")


def test_a_direction_left_without_a_manager_by_a_decline_is_free() -> None:
    requested, _ = Given().when_assigned("boris", taken=RULES.monthly_new_client_cap)
    declined, _ = Given(requested).when_decided(False)
    assigned, _ = Given(requested, declined).when_assigned("vera")
    assert isinstance(assigned, limits.ClientAssigned)
    assert assigned.manager == "vera"


def test_a_direction_another_manager_holds_is_never_taken_silently() -> None:
    given_ = held_by_boris()
    requested, taken = given_.when_assigned("vera", taken=0)
    assert taken is None  # nothing is counted until it is approved
    assert isinstance(requested, limits.ClientAssignmentTakeoverRequested)
    assert (requested.manager, requested.held_by, requested.approver) == ("vera", "boris", HEAD)
    assert (requested.reason, requested.actor) == ("knows the buyer", "vera")
    state = given_.then(requested).state
    assert state is not None
    assert (state.status, state.manager, state.requested_manager, state.pending_because) == (
        "pending_approval",
        "boris",
        "vera",
        "held",
    )


def test_the_takeover_is_asked_of_the_requesters_own_head() -> None:
    rules = replace(RULES, heads={"vera": "vera.head"})
    requested, _ = held_by_boris().when_assigned("vera", rules=rules)
    assert isinstance(requested, limits.ClientAssignmentTakeoverRequested)
    assert requested.approver == "vera.head"


def test_the_holder_asking_again_is_a_conflict() -> None:
    with pytest.raises(RuleViolation) as caught:
        held_by_boris().when_assigned("boris")
    assert caught.value.rule == "already_assigned"


def test_a_pending_takeover_takes_no_second_request() -> None:
    given_ = held_by_boris()
    requested, _ = given_.when_assigned("vera")
    with pytest.raises(RuleViolation) as caught:
        given_.then(requested).when_assigned("gleb")
    assert caught.value.rule == "approval_pending"


def test_approval_moves_the_direction_and_says_who_lost_it() -> None:
    given_ = held_by_boris()
    requested, _ = given_.when_assigned("vera")
    approved, taken = given_.then(requested).when_decided(True, taken=1)
    assert isinstance(approved, limits.ClientAssigned)
    assert (approved.manager, approved.previous_manager, approved.approved_by) == (
        "vera",
        "boris",
        HEAD,
    )
    assert taken is not None
    assert (taken.manager, taken.count) == ("vera", 2)
    after = given_.then(requested, approved).state
    assert after is not None
    assert (after.manager, after.status, after.pending_because) == ("vera", "assigned", None)


def test_a_declined_takeover_leaves_the_holder_in_place() -> None:
    given_ = held_by_boris()
    requested, _ = given_.when_assigned("vera")
    declined, taken = given_.then(requested).when_decided(False)
    assert taken is None
    after = given_.then(requested, declined).state
    assert after is not None
    assert (after.manager, after.status, after.requested_manager) == ("boris", "assigned", None)


@pytest.mark.parametrize("actor", ["vera", "boris", "gleb.head"])
def test_only_the_head_or_an_approver_decides_a_takeover(actor: str) -> None:
    given_ = held_by_boris()
    requested, _ = given_.when_assigned("vera")
    with pytest.raises(NotPermitted) as caught:
        given_.then(requested).when_decided(True, actor=actor)
    assert caught.value.rule == "head_approval_required"


@given(
    st.lists(
        st.tuples(st.sampled_from(["boris", "vera", "gleb"]), st.integers(0, 8)),
        min_size=1,
        max_size=12,
    )
)
def test_without_an_approval_the_first_holder_keeps_the_direction(
    requests: list[tuple[str, int]],
) -> None:
    """Whatever managers ask, and however many clients they took, only an approval moves
    a held direction."""
    events: list[DomainEvent] = []
    holder: str | None = None
    for manager, taken in requests:
        state = limits.fold_assignment(events)
        try:
            event, _ = limits.assign(
                state,
                limits.AssignClient("inn-7701", "turnkey", manager),
                taken,
                RULES,
                meta(manager),
            )
        except RuleViolation:
            continue
        events.append(event)
        if isinstance(event, limits.ClientAssigned):
            assert holder is None
            assert event.previous_manager is None
            holder = event.manager
        after = limits.fold_assignment(events)
        assert after is not None
        assert after.manager == holder


# --- through HTTP ------------------------------------------------------------------------

MIA = bearer("mia.manager", "manager")
MAX = bearer("max.manager", "manager")
HEAD_H = bearer(HEAD, "head", "sales")


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False)) as client:
        yield client


def settle(platform: Platform) -> None:
    assert platform.projector.wait_for(platform.store.last_position(), 10)


def _take(
    api: TestClient, manager: str, headers: dict[str, str], company: str, direction: str
) -> Any:
    body = {"company_id": company, "direction": direction, "manager": manager}
    return api.post("/client-assignments", json=body, headers=headers)


def test_taking_a_held_direction_waits_for_the_head_and_says_who_holds_it(
    api: TestClient, platform: Platform
) -> None:
    free = _take(api, "mia.manager", MIA, "northwind", "turnkey")
    assert free.status_code == 200
    assert (free.json()["status"], free.json()["manager"]) == ("assigned", "mia.manager")
    assignment_id = free.json()["assignment_id"]
    held = _take(api, "max.manager", MAX, "northwind", "turnkey")
    assert held.status_code == 202
    body = held.json()
    assert (body["status"], body["manager"], body["requested_manager"]) == (
        "pending_approval",
        "mia.manager",
        "max.manager",
    )
    assert body["pending_because"] == "held"
    detail = ok(api.get(f"/client-assignments/{assignment_id}", headers=ACTOR))
    assert (detail["manager"], detail["requested_manager"], detail["pending_because"]) == (
        "mia.manager",
        "max.manager",
        "held",
    )
    again = _take(api, "mia.manager", MIA, "northwind", "turnkey")
    assert (again.status_code, again.json()["rule"]) == (409, "approval_pending")
    settle(platform)
    listed = ok(api.get("/client-assignments", params={"company_id": "northwind"}, headers=ACTOR))
    row = listed["items"][0]
    assert (row["manager"], row["requested_manager"], row["approver"], row["pending_because"]) == (
        "mia.manager",
        "max.manager",
        HEAD,
        "held",
    )
    alerts = ok(api.get("/alerts", params={"recipient": HEAD}, headers=ACTOR))["items"]
    assert any("from mia.manager" in a["detail"] for a in alerts)
    # the requester cannot decide it; the head can
    refused = api.post(
        f"/client-assignments/{assignment_id}/decision", json={"approve": True}, headers=MIA
    )
    assert refused.status_code == 403
    decided = ok(
        api.post(
            f"/client-assignments/{assignment_id}/decision",
            json={"approve": True},
            headers=HEAD_H,
        )
    )
    assert (decided["status"], decided["manager"], decided["pending_because"]) == (
        "assigned",
        "max.manager",
        None,
    )
    history = ok(api.get(f"/client-assignments/{assignment_id}", headers=ACTOR))
    assert history["manager"] == "max.manager"
    events = platform.store.load(limits.assignment_id_for("northwind", "turnkey"))
    last = events[-1].event
    assert isinstance(last, limits.ClientAssigned)
    assert (last.previous_manager, last.approved_by) == ("mia.manager", HEAD)
    # the holder asking again is a conflict
    mine = _take(api, "max.manager", MAX, "northwind", "turnkey")
    assert (mine.status_code, mine.json()["rule"]) == (409, "already_assigned")


def test_holding_a_direction_shows_that_clients_leads_and_deals_of_it(
    api: TestClient, platform: Platform
) -> None:
    # mia's leads of northwind: out_of_court converts into turnkey deals; court has no
    # deal funnel and is a direction of its own
    turnkey_lead = ok(
        api.post(
            "/leads",
            json=new_lead_body(manager="mia.manager", company_id="northwind"),
            headers=MIA,
        ),
        201,
    )["lead_id"]
    court_lead = ok(
        api.post(
            "/leads",
            json=new_lead_body(manager="mia.manager", company_id="northwind", funnel="court"),
            headers=MIA,
        ),
        201,
    )["lead_id"]
    other_client = ok(
        api.post(
            "/leads",
            json=new_lead_body(manager="mia.manager", company_id="contoso"),
            headers=MIA,
        ),
        201,
    )["lead_id"]
    deal_lead = qualified_lead(api, manager="mia.manager")  # client agro-holding
    deal_id = ok(
        api.post(f"/leads/{deal_lead}/deal", json={"funnel": "transport"}, headers=ACTOR), 201
    )["deal_id"]
    settle(platform)

    def leads(headers: dict[str, str]) -> set[str]:
        return {i["lead_id"] for i in ok(api.get("/leads", headers=headers))["items"]}

    def deals(headers: dict[str, str]) -> set[str]:
        return {i["deal_id"] for i in ok(api.get("/deals", headers=headers))["items"]}

    assert leads(MAX) == set()
    assert deals(MAX) == set()
    assert api.get(f"/leads/{turnkey_lead}", headers=MAX).status_code == 404

    assert _take(api, "max.manager", MAX, "northwind", "turnkey").status_code == 200
    assert _take(api, "max.manager", MAX, "agro-holding", "transport").status_code == 200
    settle(platform)
    assert leads(MAX) == {turnkey_lead}
    assert court_lead not in leads(MAX)
    assert other_client not in leads(MAX)
    assert deals(MAX) == {deal_id}
    for path in (
        f"/leads/{turnkey_lead}",
        f"/leads/{turnkey_lead}/history",
        f"/deals/{deal_id}",
        f"/deals/{deal_id}/history",
    ):
        assert api.get(path, headers=MAX).status_code == 200, path
    assert api.get(f"/leads/{court_lead}", headers=MAX).status_code == 404
    # seeing is not running: the lead stays mia's to work
    moved = api.post(f"/leads/{turnkey_lead}/stage", json={"stage": "assessment"}, headers=MAX)
    assert (moved.status_code, moved.json()["rule"]) == (403, "not_your_lead")

    # the court direction taken by max, then moved to oleg on the head's approval
    court = _take(api, "max.manager", MAX, "northwind", "court")
    assert court.status_code == 200
    settle(platform)
    assert court_lead in leads(MAX)
    oleg = bearer("oleg.other", "manager")
    asked = _take(api, "oleg.other", oleg, "northwind", "court")
    assert asked.status_code == 202
    settle(platform)
    assert court_lead in leads(MAX)  # the holder keeps it while it waits
    assert court_lead not in leads(oleg)
    decision = f"/client-assignments/{court.json()['assignment_id']}/decision"
    ok(api.post(decision, json={"approve": True}, headers=HEAD_H))
    settle(platform)
    assert court_lead not in leads(MAX)
    assert court_lead in leads(oleg)
    assert api.get(f"/leads/{court_lead}", headers=MAX).status_code == 404


# --- racing for one free direction, on the real PostgreSQL ---------------------------------

RACERS = 8


@pytest.fixture
def pg_api(make_platform: PlatformFactory, pg_schema_url: str) -> Iterator[TestClient]:
    platform = make_platform(event_store_url=pg_schema_url)
    app = create_app(platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as client:
        yield client


@pytest.mark.postgres
def test_managers_racing_for_a_free_direction_leave_one_holder_and_no_silent_move(
    pg_api: TestClient,
) -> None:
    """The first to write holds it. Those who decided on the free direction it no longer
    is hear of the change (409 version_conflict, never a silent re-decision); asking
    again they get the takeover waiting for the head (or hear that one waits)."""
    responses = race(
        lambda i: _take(pg_api, f"racer{i}", bearer(f"racer{i}", "manager"), "globex", "turnkey"),
        threads=RACERS,
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, [r.text for r in responses]
    assert codes.count(202) <= 1
    assert set(codes) <= {200, 202, 409}
    refusals = {r.json().get("rule") or r.json()["code"] for r in responses if r.status_code == 409}
    assert refusals <= {"version_conflict", "approval_pending"}
    winner = next(r.json() for r in responses if r.status_code == 200)
    for i, response in enumerate(responses):
        if response.status_code == 409:
            again = _take(pg_api, f"racer{i}", bearer(f"racer{i}", "manager"), "globex", "turnkey")
            assert again.status_code in (202, 409), again.text
    detail = ok(pg_api.get(f"/client-assignments/{winner['assignment_id']}"))
    assert (detail["manager"], detail["status"], detail["pending_because"]) == (
        winner["manager"],
        "pending_approval",
        "held",
    )
    assert detail["requested_manager"] != winner["manager"]
