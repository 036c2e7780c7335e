"""An assistant creates leads for the managers they work for (seed 000: «создается
вручную ассистентом»; seed 002: «руководство - менеджер - ассистент менеджера»).

The decider of the directory (``users.set_managers``), the ownership rules
(``commands.policy``) and, through HTTP, what an assistant may do and see."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import users
from aggregates.base import CommandMeta
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from aggregates.users import Principal, Role
from commands.context import CommandContext
from commands.policy import Policy
from commands.users import change_user, load_user, register_user, set_assistant_managers
from event_store import open_event_store
from leadledger.wiring import Platform, event_codec
from projections.database import ReadModelDatabase
from projections.directory import DirectoryProjection
from projections.projector import Projector, rebuild
from read_api.app import create_app
from tests.conftest import ACTOR, bearer, new_lead_body
from tests.deal_helpers import ok, qualified_lead

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADMIN = bearer("adam.admin", "admin")


def meta(actor: str = "adam.admin") -> CommandMeta:
    return CommandMeta(actor=actor, at=T0, command_id=uuid4())


def registered(username: str, role: str, department: str | None = None) -> users.User:
    event = users.register(users.RegisterUser(username, username, role, department), meta())
    return users.evolve(None, event)


DIRECTORY = {
    "mia.manager": registered("mia.manager", "manager", "sales"),
    "max.manager": registered("max.manager", "manager", "sales"),
    "pia.pm": registered("pia.pm", "pm"),
}
AMY = registered("amy.assistant", "assistant", "sales")


# --- the decider: given a user, when the managers are set, then ... ---------------------


def set_managers(user: users.User, *managers: str) -> users.AssistantManagersSet:
    command = users.SetAssistantManagers(tuple(managers))
    named = {name: DIRECTORY.get(name) for name in managers}
    return users.set_managers(user, command, named, meta())


def test_an_assistant_is_attached_to_managers_and_the_directory_remembers_them() -> None:
    event = set_managers(AMY, "max.manager", "mia.manager")
    assert (event.username, event.managers, event.previous) == (
        "amy.assistant",
        ("max.manager", "mia.manager"),
        (),
    )
    assert event.actor == "adam.admin"
    after = users.evolve(AMY, event)
    assert (after.managers, after.version) == (("max.manager", "mia.manager"), 2)
    again = set_managers(after, "mia.manager")
    assert (again.managers, again.previous) == (("mia.manager",), ("max.manager", "mia.manager"))
    assert users.evolve(after, again).managers == ("mia.manager",)


def test_only_an_assistant_has_managers() -> None:
    with pytest.raises(RuleViolation) as caught:
        set_managers(DIRECTORY["max.manager"], "mia.manager")
    assert caught.value.rule == "not_an_assistant"


def test_an_assistant_works_only_for_managers() -> None:
    with pytest.raises(RuleViolation) as caught:
        set_managers(AMY, "mia.manager", "pia.pm")
    assert caught.value.rule == "not_a_manager"
    assert "pia.pm" in caught.value.message


@pytest.mark.parametrize(
    "managers",
    [(), ("nobody.here",), ("mia.manager", "mia.manager"), ("Not A Name",)],
)
def test_the_managers_must_be_one_or_more_known_users(managers: tuple[str, ...]) -> None:
    with pytest.raises(InvalidValue) as caught:
        set_managers(AMY, *managers)
    assert caught.value.field == "managers"


def test_an_inactive_manager_cannot_be_named() -> None:
    gone = users.evolve_changes(DIRECTORY["mia.manager"], {"active": False})
    command = users.SetAssistantManagers(("mia.manager",))
    with pytest.raises(InvalidValue):
        users.set_managers(AMY, command, {"mia.manager": gone}, meta())


def test_setting_the_same_managers_again_changes_nothing() -> None:
    after = users.evolve(AMY, set_managers(AMY, "mia.manager"))
    with pytest.raises(RuleViolation) as caught:
        set_managers(after, "mia.manager")
    assert caught.value.rule == "nothing_changed"


# --- the ownership rules -------------------------------------------------------------------


class Directory:
    def __init__(self, managers: frozenset[str]) -> None:
        self.managers = managers

    def department_of(self, user: str) -> str | None:
        return "sales"

    def managers_of(self, assistant: str) -> frozenset[str]:
        return self.managers if assistant == "amy.assistant" else frozenset()


@given(
    attached=st.frozensets(st.sampled_from(["mia.manager", "max.manager", "oleg.other"])),
    owner=st.sampled_from(["mia.manager", "max.manager", "oleg.other", "amy.assistant"]),
)
def test_an_assistant_names_and_acts_for_exactly_the_managers_attached(
    attached: frozenset[str], owner: str
) -> None:
    policy = Policy(Principal("amy.assistant", Role.ASSISTANT, "sales"), Directory(attached))
    allowed = owner in attached
    assert policy.assists(owner) is allowed
    if allowed:
        policy.may_own(owner, "manager")
    else:
        with pytest.raises(NotPermitted) as caught:
            policy.may_own(owner, "manager")
        assert caught.value.rule == "not_your_manager"
        assert owner in caught.value.message


def test_being_attached_gives_nothing_to_other_roles() -> None:
    policy = Policy(Principal("max.manager", Role.MANAGER), Directory(frozenset({"mia.manager"})))
    assert not policy.assists("mia.manager")


# --- through HTTP ------------------------------------------------------------------------------

AMY_H = bearer("amy.assistant", "assistant", "sales")
MIA_H = bearer("mia.manager", "manager")
OLEG_H = bearer("oleg.other", "manager")


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, close_on_exit=False)) as client:
        yield client


def settle(platform: Platform) -> None:
    assert platform.projector.wait_for(platform.store.last_position(), 10)


def _people(api: TestClient) -> None:
    for username, role, department in (
        ("mia.manager", "manager", "sales"),
        ("max.manager", "manager", "sales"),
        ("oleg.other", "manager", "retail"),
        ("amy.assistant", "assistant", "sales"),
        ("pia.pm", "pm", "projects"),
    ):
        body = {"username": username, "name": username, "role": role, "department": department}
        ok(api.post("/users", json=body, headers=ADMIN), 201)


def _attach(api: TestClient, *managers: str) -> dict[str, Any]:
    body = {"managers": list(managers)}
    return ok(api.post("/users/amy.assistant/managers", json=body, headers=ADMIN))


def test_an_admin_attaches_an_assistant_and_the_directory_shows_it(
    api: TestClient, platform: Platform
) -> None:
    _people(api)
    _attach(api, "mia.manager", "max.manager")
    shown = ok(api.get("/users/amy.assistant", headers=ADMIN))
    assert (shown["role"], shown["managers"]) == ("assistant", ["max.manager", "mia.manager"])
    settle(platform)
    listed = ok(api.get("/users", params={"role": "assistant"}, headers=ADMIN))["items"]
    assert [(u["username"], u["managers"]) for u in listed] == [
        ("amy.assistant", ["max.manager", "mia.manager"])
    ]
    assert ok(api.get("/users/mia.manager", headers=ADMIN))["managers"] == []
    # a person who is no manager, an unknown one, a user who is no assistant, a non-admin
    refused = api.post(
        "/users/amy.assistant/managers", json={"managers": ["pia.pm"]}, headers=ADMIN
    )
    assert (refused.status_code, refused.json()["rule"]) == (409, "not_a_manager")
    unknown = api.post("/users/amy.assistant/managers", json={"managers": ["x.y"]}, headers=ADMIN)
    assert (unknown.status_code, unknown.json()["field"]) == (422, "managers")
    empty = api.post("/users/amy.assistant/managers", json={"managers": []}, headers=ADMIN)
    assert empty.status_code == 422
    manager = api.post(
        "/users/mia.manager/managers", json={"managers": ["max.manager"]}, headers=ADMIN
    )
    assert (manager.status_code, manager.json()["rule"]) == (409, "not_an_assistant")
    nobody = api.post("/users/no.one/managers", json={"managers": ["max.manager"]}, headers=ADMIN)
    assert nobody.status_code == 404
    not_admin = api.post("/users/amy.assistant/managers", json={"managers": []}, headers=ACTOR)
    assert not_admin.status_code == 403


def test_an_assistant_creates_and_fills_leads_for_their_managers_only(
    api: TestClient, platform: Platform
) -> None:
    _people(api)
    _attach(api, "mia.manager")
    body = new_lead_body(manager="mia.manager")
    lead_id = ok(api.post("/leads", json=body, headers=AMY_H), 201)["lead_id"]
    # another manager's: refused, naming the rule
    refused = api.post("/leads", json=new_lead_body(manager="oleg.other"), headers=AMY_H)
    assert (refused.status_code, refused.json()["rule"]) == (403, "not_your_manager")
    themselves = api.post("/leads", json=new_lead_body(manager="amy.assistant"), headers=AMY_H)
    assert themselves.status_code == 403
    # the card, the cost breakdown, stage moves, pause and resume: as the manager may
    card = {"description": "called on Monday", "need_maturity": "ready_to_buy"}
    ok(api.post(f"/leads/{lead_id}/card", json=card, headers=AMY_H))
    cost = {"components": [{"name": "survey", "amount": "1000.00"}]}
    ok(api.post(f"/leads/{lead_id}/cost", json=cost, headers=AMY_H))
    ok(api.post(f"/leads/{lead_id}/stage", json={"stage": "assessment"}, headers=AMY_H))
    ok(api.post(f"/leads/{lead_id}/pause", json={"reason": "client away"}, headers=AMY_H))
    ok(api.post(f"/leads/{lead_id}/resume", json={}, headers=AMY_H))
    # handing the lead to a manager they do not work for is refused
    away = api.post(f"/leads/{lead_id}/card", json={"manager": "oleg.other"}, headers=AMY_H)
    assert (away.status_code, away.json()["rule"]) == (403, "not_your_manager")
    # qualifying, closing and the sensitive section stay the manager's
    for path, payload in (
        ("qualification", {"quality": False, "reason": "spam"}),
        ("close", {"outcome": "lost", "reason": "gone"}),
    ):
        answer = api.post(f"/leads/{lead_id}/{path}", json=payload, headers=AMY_H)
        assert (answer.status_code, answer.json()["rule"]) == (403, "role_not_allowed")
    # the history shows the assistant as the actor
    settle(platform)
    history = ok(api.get(f"/leads/{lead_id}/history", headers=AMY_H))
    actors = {e["actor"] for e in history["events"]}
    assert actors == {"amy.assistant"}
    assert ok(api.get(f"/leads/{lead_id}", headers=MIA_H))["manager"] == "mia.manager"


def test_an_assistant_sees_what_their_managers_see_and_no_more(
    api: TestClient, platform: Platform
) -> None:
    _people(api)
    _attach(api, "mia.manager")
    mias = ok(api.post("/leads", json=new_lead_body(manager="mia.manager"), headers=MIA_H), 201)
    olegs = ok(api.post("/leads", json=new_lead_body(manager="oleg.other"), headers=OLEG_H), 201)
    deal_lead = qualified_lead(api, manager="mia.manager")
    deal_id = ok(
        api.post(f"/leads/{deal_lead}/deal", json={"funnel": "transport"}, headers=ACTOR), 201
    )
    settle(platform)

    def seen(path: str) -> set[str]:
        items = ok(api.get(path, headers=AMY_H, params={"limit": 500}))["items"]
        key = "deal_id" if path == "/deals" else "lead_id"
        return {i[key] for i in items}

    assert seen("/leads") == {mias["lead_id"], deal_lead}
    assert seen("/deals") == {deal_id["deal_id"]}
    assert api.get(f"/leads/{olegs['lead_id']}", headers=AMY_H).status_code == 404
    # acting on a lead outside the scope reads as an unknown lead
    hidden = api.post(f"/leads/{olegs['lead_id']}/stage", json={"stage": "x"}, headers=AMY_H)
    assert hidden.status_code == 404
    # deals are read, not run, by an assistant
    moved = api.post(f"/deals/{deal_id['deal_id']}/stage", json={"stage": "x"}, headers=AMY_H)
    assert moved.status_code == 403
    # reattached to another manager: mia's records are gone from the scope at once
    _attach(api, "max.manager")
    settle(platform)
    assert seen("/leads") == set()
    assert api.get(f"/leads/{mias['lead_id']}", headers=AMY_H).status_code == 404
    refused = api.post("/leads", json=new_lead_body(manager="mia.manager"), headers=AMY_H)
    assert refused.status_code == 403


# --- the read model ------------------------------------------------------------------------


def _directory_rows(db: ReadModelDatabase) -> list[tuple[Any, ...]]:
    cursor = db.cursor()
    try:
        return cursor.execute("SELECT * FROM users ORDER BY username").fetchall()
    finally:
        cursor.close()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page_size=st.integers(1, 6), order=st.permutations(["mia.manager", "max.manager"]))
def test_the_directory_in_any_pages_equals_a_rebuild(page_size: int, order: list[str]) -> None:
    """An assistant's managers, set and changed among other changes, read the same from
    the read model built page by page as from one rebuild, and as the aggregate folds."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(f"sqlite:///{tmp}/events.sqlite", event_codec())
        db = ReadModelDatabase(f"{tmp}/incremental.duckdb")
        projections = [DirectoryProjection()]
        try:
            n = 0

            def ctx() -> CommandContext:
                nonlocal n
                n += 1
                return CommandContext(actor="adam.admin", at=T0, command_id=uuid4())

            for name, role in (("mia.manager", "manager"), ("max.manager", "manager")):
                register_user(store, users.RegisterUser(name, name, role, "sales"), ctx())
                Projector(store, db, projections, page_size=page_size).run_once()
            register_user(
                store, users.RegisterUser("amy.assistant", "Amy", "assistant", "sales"), ctx()
            )
            for chosen in ([order[0]], order, [order[1]]):
                command = users.SetAssistantManagers(tuple(chosen))
                set_assistant_managers(store, "amy.assistant", command, ctx())
                Projector(store, db, projections, page_size=page_size).run_once()
            change_user(store, "amy.assistant", users.ChangeUser({"region": "Kazan"}), ctx())
            Projector(store, db, projections, page_size=page_size).catch_up()
            incremental = _directory_rows(db)
            again = ReadModelDatabase(f"{tmp}/rebuilt.duckdb")
            try:
                rebuild(store, again, projections)
                assert _directory_rows(again) == incremental
            finally:
                again.close()
            amy = next(r for r in incremental if r[0] == "amy.assistant")
            assert list(amy[9]) == [order[1]]  # managers
            assert amy[4] == "Kazan"
            assert load_user(store, "amy.assistant").managers == (order[1],)
        finally:
            db.close()
            store.close()
