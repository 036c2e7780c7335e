"""Every endpoint and every error path of the lead API, through HTTP (issue 2, §3, §4, §7).

Commands answer ``{"lead_id", "version", "position"}``; the read models fill
asynchronously, so every query that must see a write passes ``min_position``. History
and ``as_of`` read the event store directly. Server time is the fake clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from aggregates.company import company_stream_id
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import (
    ACTOR,
    FakeClock,
    PlatformFactory,
    bearer,
    create,
    iso,
    new_lead_body,
)

JSON = {"content-type": "application/json"}

# A valid body for each of the nine commands on an open lead in out_of_court/new.
VALID_BODIES: dict[str, dict[str, Any] | None] = {
    "card": {"title": "Another title"},
    "cost": {"components": [{"name": "survey", "amount": "10.00"}]},
    "stage": {"stage": "assessment"},
    "transfer": {"funnel": "court"},
    "pause": {"reason": "client on holiday"},
    "resume": None,
    "assessment": {"expert": "eva", "result": "feasible", "hours": "2"},
    "qualification": {"quality": True},
    "close": {"outcome": "won"},
}
COMMANDS = tuple(VALID_BODIES)


# --- helpers ----------------------------------------------------------------------------


def command(
    client: TestClient,
    lead_id: str | UUID,
    name: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/leads/{lead_id}/{name}",
        json=body,
        headers={**ACTOR, **(headers or {})},
    )
    return response


def ok(
    client: TestClient,
    lead_id: str | UUID,
    name: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = command(client, lead_id, name, body, headers)
    assert response.status_code == 200, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


def read(client: TestClient, lead_id: str | UUID, position: int) -> dict[str, Any]:
    response = client.get(f"/leads/{lead_id}", params={"min_position": position})
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def events(client: TestClient, lead_id: str | UUID) -> list[dict[str, Any]]:
    response = client.get(f"/leads/{lead_id}/history")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["events"]
    return entries


def listing(client: TestClient, position: int, **params: Any) -> dict[str, Any]:
    response = client.get("/leads", params={"min_position": position, **params})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def assert_error(
    response: httpx.Response, status: int, code: str, **expected: Any
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str), body
    assert body["detail"], body
    for key, value in expected.items():
        assert body.get(key) == value, body
    return body


def assert_invalid(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] in ("invalid_request", "invalid_value"), body
    assert body["field"] == field, body
    assert body["detail"], body
    return body


def assert_rule(response: httpx.Response, rule: str) -> None:
    assert_error(response, 409, "rule_violation", rule=rule)


@pytest.fixture
def lenient(platform: Platform) -> Iterator[TestClient]:
    """Like ``client``, but a server error comes back as a 500 response, not an exception."""
    with TestClient(
        create_app(platform, close_on_exit=False), raise_server_exceptions=False, headers=ACTOR
    ) as c:
        yield c


@pytest.fixture
def short_wait_client(make_platform: PlatformFactory) -> Iterator[TestClient]:
    """A client whose read-your-writes wait gives up after 0.2 s."""
    platform: Platform = make_platform(read_wait_seconds=0.2)
    with TestClient(
        create_app(platform, close_on_exit=False), raise_server_exceptions=False, headers=ACTOR
    ) as c:
        yield c


# --- create -----------------------------------------------------------------------------


def test_create_answers_201_with_location_and_lands_in_first_stage(
    client: TestClient, clock: FakeClock
) -> None:
    response = client.post("/leads", json=new_lead_body(), headers=ACTOR)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"lead_id", "version", "position"}
    lead_id = UUID(body["lead_id"])
    assert body["version"] == 1
    assert isinstance(body["position"], int)
    assert body["position"] >= 1
    assert response.headers["Location"] == f"/leads/{lead_id}"
    assert response.headers["ETag"] == '"1"'

    detail = read(client, lead_id, body["position"])
    assert detail["lead_id"] == str(lead_id)
    assert detail["funnel"] == "out_of_court"
    assert detail["stage"] == "new"
    assert detail["status"] == "open"
    assert detail["title"] == "Appraisal of a warehouse"
    assert detail["company_name"] == "Northwind LLC"
    assert detail["company_id"] is None
    assert detail["repeat"] is False
    assert detail["source"] == "website"
    assert detail["manager"] == "boris"
    assert Decimal(detail["amount"]) == 0
    assert detail["cost_components"] == []
    assert detail["created_by"] == "anna.sales"
    assert detail["created_at"] == iso(clock.now)
    assert detail["stage_entered_at"] == iso(clock.now)
    assert detail["version"] == 1


def test_create_with_every_optional_field(client: TestClient) -> None:
    created = create(
        client,
        funnel="court",
        company_id="INN-7701",
        expert="eva",
        need_maturity="hot",
        answer_due="2026-02-01",
        description="Warehouse in Tver",
        amount="1500.50",
    )

    detail = read(client, created["lead_id"], created["position"])
    assert detail["funnel"] == "court"
    assert detail["stage"] == "request_received"
    assert detail["company_id"] == "INN-7701"
    assert detail["repeat"] is False
    assert detail["expert"] == "eva"
    assert detail["need_maturity"] == "hot"
    assert detail["answer_due"] == "2026-02-01"
    assert detail["description"] == "Warehouse in Tver"
    assert Decimal(detail["amount"]) == Decimal("1500.50")


def test_second_lead_of_a_company_is_repeat_others_are_new(client: TestClient) -> None:
    first = create(client, company_id="C-1")
    second = create(client, company_id="C-1", title="Second appraisal")
    other = create(client, company_id="C-2")
    anonymous = create(client)
    anonymous_again = create(client)

    last = anonymous_again["position"]
    assert read(client, first["lead_id"], last)["repeat"] is False
    assert read(client, second["lead_id"], last)["repeat"] is True
    assert read(client, other["lead_id"], last)["repeat"] is False
    assert read(client, anonymous["lead_id"], last)["repeat"] is False
    assert read(client, anonymous_again["lead_id"], last)["repeat"] is False
    repeats = {i["lead_id"] for i in listing(client, last)["items"] if i["repeat"]}
    assert repeats == {second["lead_id"]}


# --- the nine commands ------------------------------------------------------------------


def test_every_command_answers_200_with_next_version_and_a_later_position(
    client: TestClient, clock: FakeClock
) -> None:
    created = create(client)
    lead_id = created["lead_id"]
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("card", {"title": "Appraisal of two warehouses", "description": "urgent"}),
        (
            "cost",
            {
                "components": [
                    {"name": "survey", "amount": "1000"},
                    {"name": "report", "amount": "500.50"},
                ]
            },
        ),
        ("stage", {"stage": "assessment"}),
        ("transfer", {"funnel": "court", "stage": "assessment"}),
        ("pause", {"reason": "client on holiday"}),
        ("resume", None),
        ("assessment", {"expert": "eva", "result": "feasible", "hours": "3.5"}),
        ("qualification", {"quality": True}),
        ("close", {"outcome": "won"}),
    ]
    version, position = 1, created["position"]
    for name, body in steps:
        clock.advance(hours=1)
        response = command(client, lead_id, name, body)
        assert response.status_code == 200, (name, response.text)
        accepted = response.json()
        assert set(accepted) == {"lead_id", "version", "position"}
        assert accepted["lead_id"] == lead_id
        assert accepted["version"] == version + 1, name
        assert accepted["position"] > position, name
        assert response.headers["ETag"] == f'"{accepted["version"]}"'
        assert "Idempotent-Replayed" not in response.headers
        version, position = accepted["version"], accepted["position"]

    detail = read(client, lead_id, position)
    assert detail["version"] == 10
    assert detail["funnel"] == "court"
    assert detail["stage"] == "assessment"
    assert detail["status"] == "won"
    assert detail["title"] == "Appraisal of two warehouses"
    assert detail["description"] == "urgent"
    assert Decimal(detail["amount"]) == Decimal("1500.50")
    assert [(c["name"], Decimal(c["amount"])) for c in detail["cost_components"]] == [
        ("survey", Decimal("1000")),
        ("report", Decimal("500.50")),
    ]
    assert detail["assessment"]["expert"] == "eva"
    assert detail["assessment"]["result"] == "feasible"
    assert Decimal(detail["assessment"]["hours"]) == Decimal("3.5")
    assert Decimal(detail["assessment_hours_total"]) == Decimal("3.5")
    assert detail["quality"] is True
    assert detail["pause_reason"] is None
    assert detail["closed_at"] == iso(clock.now)
    assert detail["updated_at"] == iso(clock.now)
    assert detail["created_at"] == iso(clock.now - timedelta(hours=9))


def test_each_command_changes_the_state_read_back(client: TestClient, clock: FakeClock) -> None:
    lead_id = create(client)["lead_id"]

    clock.advance(hours=1)
    detail = read(
        client, lead_id, ok(client, lead_id, "stage", {"stage": "proposal_sent"})["position"]
    )
    assert (detail["stage"], detail["stage_entered_at"]) == ("proposal_sent", iso(clock.now))

    detail = read(
        client, lead_id, ok(client, lead_id, "stage", {"stage": "assessment"})["position"]
    )
    assert detail["stage"] == "assessment"  # moving back is allowed

    detail = read(client, lead_id, ok(client, lead_id, "transfer", {"funnel": "court"})["position"])
    assert (detail["funnel"], detail["stage"]) == ("court", "request_received")

    clock.advance(hours=1)
    detail = read(client, lead_id, ok(client, lead_id, "pause", {"reason": "waiting"})["position"])
    assert (detail["status"], detail["pause_reason"]) == ("paused", "waiting")
    assert detail["paused_since"] == iso(clock.now)

    # a paused lead still takes card and cost edits
    detail = read(client, lead_id, ok(client, lead_id, "card", {"manager": "vera"})["position"])
    assert (detail["manager"], detail["status"]) == ("vera", "paused")

    detail = read(client, lead_id, ok(client, lead_id, "resume", {})["position"])
    assert (detail["status"], detail["pause_reason"], detail["paused_since"]) == (
        "open",
        None,
        None,
    )

    detail = read(
        client,
        lead_id,
        ok(client, lead_id, "assessment", {"expert": "eva", "result": "weak", "hours": 1})[
            "position"
        ],
    )
    assert detail["assessment"]["result"] == "weak"

    detail = read(
        client,
        lead_id,
        ok(client, lead_id, "qualification", {"quality": False, "reason": "no budget"})["position"],
    )
    assert detail["status"] == "non_quality"
    assert detail["quality"] is False
    assert detail["qualification_reason"] == "no budget"


def test_close_as_lost_with_reason(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    position = ok(client, lead_id, "close", {"outcome": "lost", "reason": "went elsewhere"})[
        "position"
    ]
    detail = read(client, lead_id, position)
    assert (detail["status"], detail["close_reason"]) == ("lost", "went elsewhere")


def test_a_paused_lead_can_be_closed(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    ok(client, lead_id, "pause", {"reason": "waiting"})
    position = ok(client, lead_id, "close", {"outcome": "lost", "reason": "silence"})["position"]
    detail = read(client, lead_id, position)
    assert (detail["status"], detail["pause_reason"]) == ("lost", None)


def test_card_update_clears_an_optional_field_sent_as_null(client: TestClient) -> None:
    lead_id = create(client, expert="eva")["lead_id"]
    position = ok(client, lead_id, "card", {"expert": None})["position"]
    assert read(client, lead_id, position)["expert"] is None


# --- unknown lead: 404 --------------------------------------------------------------------


@pytest.mark.parametrize("name", COMMANDS)
def test_command_on_unknown_lead_is_404(client: TestClient, name: str) -> None:
    create(client)  # the store is not empty
    assert_error(command(client, uuid4(), name, VALID_BODIES[name]), 404, "not_found")


def test_queries_on_unknown_lead_are_404(client: TestClient) -> None:
    position = create(client)["position"]
    unknown = uuid4()
    assert_error(
        client.get(f"/leads/{unknown}", params={"min_position": position}), 404, "not_found"
    )
    assert_error(client.get(f"/leads/{unknown}/history"), 404, "not_found")
    assert_error(
        client.get(f"/leads/{unknown}", params={"as_of": "2030-01-01T00:00:00Z"}), 404, "not_found"
    )


def test_a_company_stream_is_not_a_lead(lenient: TestClient) -> None:
    """The company registry's stream ids are derived from company ids: never a lead."""
    client = lenient
    position = create(client, company_id="C-9")["position"]
    stream = company_stream_id("C-9")

    assert_error(
        client.get(f"/leads/{stream}", params={"min_position": position}), 404, "not_found"
    )
    assert_error(client.get(f"/leads/{stream}/history"), 404, "not_found")
    assert_error(
        client.get(f"/leads/{stream}", params={"as_of": "2030-01-01T00:00:00Z"}), 404, "not_found"
    )
    assert_error(command(client, stream, "pause", {"reason": "x"}), 404, "not_found")


# --- rules the lead's state enforces: 409 naming the rule -----------------------------------


def _paused(client: TestClient) -> str:
    lead_id: str = create(client)["lead_id"]
    ok(client, lead_id, "pause", {"reason": "waiting"})
    return lead_id


def _assessed(client: TestClient) -> str:
    lead_id: str = create(client)["lead_id"]
    ok(client, lead_id, "assessment", {"expert": "eva", "result": "ok", "hours": 1})
    return lead_id


def test_moving_to_the_current_stage_is_same_stage(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    assert_rule(command(client, lead_id, "stage", {"stage": "new"}), "same_stage")


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("stage", {"stage": "assessment"}),
        ("transfer", {"funnel": "court"}),
        ("assessment", {"expert": "eva", "result": "ok", "hours": 1}),
    ],
)
def test_a_paused_lead_refuses_work(client: TestClient, name: str, body: dict[str, Any]) -> None:
    lead_id = _paused(client)
    assert_rule(command(client, lead_id, name, body), "lead_paused")


def test_a_paused_lead_cannot_be_qualified(client: TestClient) -> None:
    lead_id = _assessed(client)
    ok(client, lead_id, "pause", {"reason": "waiting"})
    assert_rule(command(client, lead_id, "qualification", {"quality": True}), "lead_paused")


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize(
    "closing",
    [
        ("close", {"outcome": "won"}),
        ("close", {"outcome": "lost", "reason": "price"}),
        ("qualification", {"quality": False, "reason": "spam"}),
    ],
    ids=["won", "lost", "non_quality"],
)
def test_a_closed_lead_accepts_no_command(
    client: TestClient, name: str, closing: tuple[str, dict[str, Any]]
) -> None:
    lead_id = _assessed(client)
    ok(client, lead_id, *closing)

    def commanded() -> int:
        # a won out-of-court lead also gets its project's link from the project-creation
        # process (LeadProjectStarted), whenever it runs: not a command's event
        return sum(e["type"] != "LeadProjectStarted" for e in events(client, lead_id))

    before = commanded()

    assert_rule(command(client, lead_id, name, VALID_BODIES[name]), "lead_closed")
    assert commanded() == before


def test_transfer_to_the_same_funnel_is_same_funnel(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    assert_rule(command(client, lead_id, "transfer", {"funnel": "out_of_court"}), "same_funnel")
    assert_rule(
        command(client, lead_id, "transfer", {"funnel": "out_of_court", "stage": "contract"}),
        "same_funnel",
    )


def test_pausing_twice_is_already_paused(client: TestClient) -> None:
    lead_id = _paused(client)
    assert_rule(command(client, lead_id, "pause", {"reason": "again"}), "already_paused")


def test_resuming_an_open_lead_is_not_paused(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    assert_rule(command(client, lead_id, "resume"), "not_paused")


def test_qualifying_as_quality_before_a_required_assessment_is_assessment_required(
    client: TestClient,
) -> None:
    lead_id = create(client, funnel="court")["lead_id"]
    assert_rule(command(client, lead_id, "qualification", {"quality": True}), "assessment_required")


def test_a_non_quality_qualification_needs_no_assessment(client: TestClient) -> None:
    lead_id = create(client, funnel="court")["lead_id"]
    ok(client, lead_id, "qualification", {"quality": False, "reason": "spam"})


def test_qualifying_as_quality_twice_is_already_qualified(client: TestClient) -> None:
    lead_id = _assessed(client)
    ok(client, lead_id, "qualification", {"quality": True})
    assert_rule(command(client, lead_id, "qualification", {"quality": True}), "already_qualified")


def test_a_card_update_that_changes_nothing_is_no_change(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    assert_rule(
        command(client, lead_id, "card", {"title": "Appraisal of a warehouse", "manager": "boris"}),
        "no_change",
    )
    assert_rule(command(client, lead_id, "card", {"amount": "0"}), "no_change")


def test_the_same_cost_breakdown_twice_is_no_change(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    body = {"components": [{"name": "survey", "amount": "10"}, {"name": "report", "amount": "5"}]}
    ok(client, lead_id, "cost", body)
    assert_rule(command(client, lead_id, "cost", body), "no_change")


def test_the_amount_of_a_lead_with_a_cost_breakdown_is_amount_from_cost_breakdown(
    client: TestClient,
) -> None:
    lead_id = create(client)["lead_id"]
    ok(client, lead_id, "cost", {"components": [{"name": "survey", "amount": "10"}]})
    assert_rule(command(client, lead_id, "card", {"amount": "99"}), "amount_from_cost_breakdown")
    # the same amount is no change to the amount: other fields may still be edited
    position = ok(client, lead_id, "card", {"amount": "10.00", "title": "New"})["position"]
    detail = read(client, lead_id, position)
    assert (detail["title"], Decimal(detail["amount"])) == ("New", Decimal("10.00"))


def test_a_refused_command_appends_nothing(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    assert_rule(command(client, lead_id, "resume"), "not_paused")
    assert_invalid(command(client, lead_id, "stage", {"stage": "nowhere"}), "stage")
    assert_rule(command(client, lead_id, "stage", {"stage": "new"}), "same_stage")
    assert [e["type"] for e in events(client, lead_id)] == ["LeadCreated"]


# --- invalid values: 422 naming the field ---------------------------------------------------


@pytest.mark.parametrize("field", ["funnel", "title", "company_name", "source", "manager"])
def test_create_without_a_required_field(client: TestClient, field: str) -> None:
    body = new_lead_body()
    del body[field]
    assert_invalid(client.post("/leads", json=body, headers=ACTOR), field)


@pytest.mark.parametrize("field", ["title", "company_name", "source", "manager"])
def test_create_with_a_blank_required_field(client: TestClient, field: str) -> None:
    assert_invalid(
        client.post("/leads", json=new_lead_body(**{field: "   "}), headers=ACTOR), field
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"funnel": "nowhere"}, "funnel"),
        ({"amount": "-1"}, "amount"),
        ({"amount": -0.01}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "1e20"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"answer_due": "next week"}, "answer_due"),
        ({"title": 123}, "title"),
        ({"title": "x" * 10_001}, "title"),
        ({"company_id": ["C-1"]}, "company_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_create_with_an_invalid_value(
    client: TestClient, overrides: dict[str, Any], field: str
) -> None:
    assert_invalid(client.post("/leads", json=new_lead_body(**overrides), headers=ACTOR), field)


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("stage", {"stage": "nowhere"}, "stage"),
        ("stage", {"stage": "request_received"}, "stage"),  # a stage of the other funnel
        ("stage", {}, "stage"),
        ("stage", {"stage": 3}, "stage"),
        ("stage", {"stage": "assessment", "force": True}, "force"),
        ("transfer", {"funnel": "nowhere"}, "funnel"),
        ("transfer", {"funnel": "court", "stage": "proposal_sent"}, "stage"),
        ("transfer", {}, "funnel"),
        ("pause", {}, "reason"),
        ("pause", {"reason": "  "}, "reason"),
        ("resume", {"reason": "back"}, "reason"),
        ("assessment", {"expert": "eva", "result": "ok", "hours": 0}, "hours"),
        ("assessment", {"expert": "eva", "result": "ok", "hours": -2}, "hours"),
        ("assessment", {"expert": "eva", "result": "ok", "hours": "many"}, "hours"),
        ("assessment", {"expert": "eva", "result": "ok"}, "hours"),
        ("assessment", {"expert": "", "result": "ok", "hours": 1}, "expert"),
        ("assessment", {"expert": "eva", "result": " ", "hours": 1}, "result"),
        ("qualification", {"quality": False}, "reason"),
        ("qualification", {"quality": False, "reason": ""}, "reason"),
        ("qualification", {"quality": "maybe"}, "quality"),
        ("qualification", {}, "quality"),
        ("close", {"outcome": "lost"}, "reason"),
        ("close", {"outcome": "lost", "reason": "  "}, "reason"),
        ("close", {"outcome": "draw"}, "outcome"),
        ("close", {}, "outcome"),
        ("card", {}, "body"),
        ("card", {"amount": "-5"}, "amount"),
        ("card", {"title": None}, "title"),
        ("card", {"title": ""}, "title"),
        ("card", {"answer_due": "31/12/2026"}, "answer_due"),
        ("card", {"funnel": "court"}, "funnel"),
        ("card", {"company_id": "C-1"}, "company_id"),
        ("cost", {"components": []}, "components"),
        ("cost", {"components": "all"}, "components"),
        ("cost", {}, "components"),
        ("cost", {"components": [{"name": "survey", "amount": "-1"}]}, "components[0].amount"),
        (
            "cost",
            {"components": [{"name": "a", "amount": 1}, {"name": "", "amount": 1}]},
            "components[1].name",
        ),
        (
            "cost",
            {"components": [{"name": "a", "amount": 1}, {"name": "a", "amount": 2}]},
            "components[1].name",
        ),
        ("cost", {"components": [{"name": "a"}]}, "components[0].amount"),
        ("cost", {"components": [{"name": "a", "amount": 1, "vat": 2}]}, "components[0].vat"),
    ],
)
def test_command_with_an_invalid_value(
    client: TestClient, name: str, body: dict[str, Any], field: str
) -> None:
    lead_id = create(client)["lead_id"]
    if name == "resume":
        ok(client, lead_id, "pause", {"reason": "waiting"})
    if name == "qualification":
        ok(client, lead_id, "assessment", {"expert": "eva", "result": "ok", "hours": 1})

    assert_invalid(command(client, lead_id, name, body), field)
    assert len(events(client, lead_id)) == (1 if name not in ("resume", "qualification") else 2)


def test_an_invalid_body_is_422_even_for_an_unknown_lead(client: TestClient) -> None:
    # the body is checked before the lead is loaded
    assert_invalid(command(client, uuid4(), "stage", {"stage": 5}), "stage")


@pytest.mark.parametrize("path", ["", "/card"])
def test_malformed_json_body(client: TestClient, path: str) -> None:
    target = create(client)["lead_id"]
    url = "/leads" if not path else f"/leads/{target}{path}"
    response = client.post(url, content=b'{"title": "unterminated', headers={**ACTOR, **JSON})
    assert_invalid(response, "body")


@pytest.mark.parametrize("raw", [b"[]", b'"lead"', b"42", b"null", b""])
def test_a_body_that_is_not_an_object(client: TestClient, raw: bytes) -> None:
    assert_invalid(client.post("/leads", content=raw, headers={**ACTOR, **JSON}), "body")


@pytest.mark.parametrize("bad", ["not-a-uuid", "1234", "g" * 32])
def test_invalid_uuid_in_path(client: TestClient, bad: str) -> None:
    assert_invalid(command(client, bad, "pause", {"reason": "x"}), "lead_id")
    assert_invalid(client.get(f"/leads/{bad}"), "lead_id")
    assert_invalid(client.get(f"/leads/{bad}/history"), "lead_id")


def test_missing_or_blank_bearer_token(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer  "},
        {"Authorization": "Basic abc"},
    ):
        for response in (
            client.post("/leads", json=new_lead_body(), headers=headers),
            client.post(f"/leads/{lead_id}/pause", json={"reason": "x"}, headers=headers),
        ):
            assert response.status_code == 401, response.text
            assert response.json()["code"] == "unauthenticated"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(events(client, lead_id)) == 1


def test_actor_is_recorded_on_each_event(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    ok(client, lead_id, "pause", {"reason": "x"}, headers=bearer("vera.head", "top"))
    history = events(client, lead_id)
    assert [e["actor"] for e in history] == ["anna.sales", "vera.head"]
    assert [e["actor_role"] for e in history] == ["top", "top"]
    assert [e["command"] for e in history] == ["create", "pause"]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", '"x"', "W/", "", "2 3"])
def test_bad_if_match(client: TestClient, value: str) -> None:
    lead_id = create(client)["lead_id"]
    assert_invalid(
        command(client, lead_id, "pause", {"reason": "x"}, headers={"If-Match": value}), "If-Match"
    )
    assert len(events(client, lead_id)) == 1


def test_bad_correlation_id_and_overlong_idempotency_key(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    assert_invalid(
        command(client, lead_id, "pause", {"reason": "x"}, headers={"X-Correlation-ID": "nope"}),
        "X-Correlation-ID",
    )
    assert_invalid(
        command(client, lead_id, "pause", {"reason": "x"}, headers={"Idempotency-Key": "k" * 201}),
        "Idempotency-Key",
    )


def test_correlation_id_is_recorded(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    correlation = str(uuid4())
    ok(client, lead_id, "pause", {"reason": "x"}, headers={"X-Correlation-ID": correlation})
    assert events(client, lead_id)[-1]["correlation_id"] == correlation


# --- optimistic concurrency -------------------------------------------------------------


def test_stale_if_match_is_409_with_the_current_version(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    ok(client, lead_id, "card", {"title": "v2"})

    response = command(client, lead_id, "pause", {"reason": "x"}, headers={"If-Match": "1"})
    assert_error(response, 409, "version_conflict", current_version=2)
    assert response.headers["ETag"] == '"2"'
    assert len(events(client, lead_id)) == 2

    response = command(client, lead_id, "pause", {"reason": "x"}, headers={"If-Match": "7"})
    assert_error(response, 409, "version_conflict", current_version=2)


@pytest.mark.parametrize("value", ["2", '"2"', 'W/"2"', " 2 "])
def test_current_if_match_is_accepted(client: TestClient, value: str) -> None:
    lead_id = create(client)["lead_id"]
    ok(client, lead_id, "card", {"title": "v2"})
    accepted = ok(client, lead_id, "pause", {"reason": "x"}, headers={"If-Match": value})
    assert accepted["version"] == 3


def test_etag_of_a_read_can_be_sent_back_as_if_match(client: TestClient) -> None:
    created = create(client)
    response = client.get(
        f"/leads/{created['lead_id']}", params={"min_position": created["position"]}
    )
    assert response.headers["ETag"] == '"1"'
    ok(
        client,
        created["lead_id"],
        "pause",
        {"reason": "x"},
        headers={"If-Match": response.headers["ETag"]},
    )


# --- idempotency ------------------------------------------------------------------------


def test_repeated_create_with_the_same_key_returns_the_first_response(client: TestClient) -> None:
    headers = {**ACTOR, "Idempotency-Key": "create-1"}
    first = client.post("/leads", json=new_lead_body(), headers=headers)
    second = client.post("/leads", json=new_lead_body(), headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(events(client, first.json()["lead_id"])) == 1
    assert listing(client, first.json()["position"])["total"] == 1


def test_repeated_command_with_the_same_key_appends_nothing(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    headers = {"Idempotency-Key": "pause-1"}
    first = command(client, lead_id, "pause", {"reason": "x"}, headers)
    second = command(client, lead_id, "pause", {"reason": "x"}, headers)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(events(client, lead_id)) == 2


def test_a_key_replays_its_first_result_even_after_later_commands(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    headers = {"Idempotency-Key": "stage-1"}
    first = ok(client, lead_id, "stage", {"stage": "assessment"}, headers)
    ok(client, lead_id, "stage", {"stage": "contract"})

    response = command(client, lead_id, "stage", {"stage": "assessment"}, headers)
    assert response.status_code == 200
    assert response.json() == first
    assert response.headers["Idempotent-Replayed"] == "true"
    assert len(events(client, lead_id)) == 3


def test_a_key_reused_for_a_different_body_is_422(client: TestClient) -> None:
    headers = {**ACTOR, "Idempotency-Key": "k-1"}
    created = client.post("/leads", json=new_lead_body(), headers=headers)
    assert created.status_code == 201
    response = client.post("/leads", json=new_lead_body(title="Other"), headers=headers)
    assert_error(response, 422, "idempotency_key_reused", field="Idempotency-Key")

    lead_id = created.json()["lead_id"]
    ok(client, lead_id, "pause", {"reason": "x"}, {"Idempotency-Key": "k-2"})
    response = command(client, lead_id, "pause", {"reason": "y"}, {"Idempotency-Key": "k-2"})
    assert_error(response, 422, "idempotency_key_reused", field="Idempotency-Key")
    response = command(client, lead_id, "resume", None, {"Idempotency-Key": "k-2"})
    assert_error(response, 422, "idempotency_key_reused", field="Idempotency-Key")
    assert len(events(client, lead_id)) == 2
    assert listing(client, created.json()["position"])["total"] == 1


def test_a_key_is_scoped_to_the_lead_it_targets(client: TestClient) -> None:
    """Keys are the actor's own per target: the same key on another lead is another command."""
    first = create(client)["lead_id"]
    second = create(client)["lead_id"]
    ok(client, first, "pause", {"reason": "x"}, {"Idempotency-Key": "shared"})

    response = command(client, second, "pause", {"reason": "x"}, {"Idempotency-Key": "shared"})
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response.headers
    first_events, second_events = events(client, first), events(client, second)
    assert len(second_events) == 2
    assert first_events[-1]["command_id"] != second_events[-1]["command_id"]


def test_keys_are_per_actor(client: TestClient) -> None:
    headers = {"Idempotency-Key": "mine"}
    first = client.post("/leads", json=new_lead_body(), headers={**ACTOR, **headers})
    other = client.post("/leads", json=new_lead_body(), headers={**bearer("gleb"), **headers})
    assert first.status_code == other.status_code == 201
    assert first.json()["lead_id"] != other.json()["lead_id"]
    assert "Idempotent-Replayed" not in other.headers


def test_a_refused_command_can_be_retried_with_its_key(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    headers = {"Idempotency-Key": "resume-1"}
    assert_rule(command(client, lead_id, "resume", None, headers), "not_paused")
    ok(client, lead_id, "pause", {"reason": "x"})
    accepted = ok(client, lead_id, "resume", None, headers)
    assert accepted["version"] == 3


# --- no input ever produces a 5xx -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "key"),
    [
        ("", "title", None),
        ("", "title", "surrogate-1"),
        ("/card", "title", None),
        ("/pause", "reason", None),
        ("/stage", "stage", None),
    ],
)
def test_a_lone_surrogate_in_a_text_field_is_422(
    lenient: TestClient, path: str, field: str, key: str | None
) -> None:
    """JSON may escape half a UTF-16 pair ("\\ud800"); such text cannot be stored: 422."""
    client = lenient
    lead_id = create(client)["lead_id"]
    body: dict[str, Any] = new_lead_body() if not path else {}
    body[field] = "\ud800 half a pair"
    headers = {**ACTOR, **JSON, **({"Idempotency-Key": key} if key else {})}
    url = "/leads" if not path else f"/leads/{lead_id}{path}"
    response = client.post(url, content=json.dumps(body).encode(), headers=headers)
    assert_invalid(response, field)


def test_odd_inputs_never_produce_a_5xx(short_wait_client: TestClient) -> None:
    client = short_wait_client
    created = create(client, company_id="C-odd")
    lead_id = created["lead_id"]
    company = company_stream_id("C-odd")
    unknown = uuid4()
    surrogate = b'"\\ud800 half a pair"'
    raw_bodies = [
        b"",
        b"{",
        b"null",
        b"[]",
        b"[1,2]",
        b"0",
        b'"x"',
        b"\xff\xfe",
        b"{}" * 1000,
        b'{"a":' * 200 + b"1" + b"}" * 200,
        b'{"title":' + surrogate + b"}",
        b'{"reason":' + surrogate + b"}",
        b'{"stage":' + surrogate + b"}",
        b'{"funnel":' + surrogate + b"}",
        b'{"expert":"e","result":' + surrogate + b',"hours":1}',
        b'{"components":[{"name":' + surrogate + b',"amount":1}]}',
        json.dumps(new_lead_body(title="\ud800")).encode(),
        json.dumps(new_lead_body(amount=1e308)).encode(),
        b'{"funnel":"court","title":"t","company_name":"c","source":"s","manager":"m",'
        b'"amount":1e400}',
        b'{"funnel":"court","title":"t","company_name":"c","source":"s","manager":"m",'
        b'"amount":NaN}',
        b'{"funnel":"court","title":"t","company_name":"c","source":"s","manager":"m",'
        b'"amount":123456789012345678901234567890}',
        b'{"funnel":"court","title":"t\\u0000","company_name":"c","source":"s","manager":"m"}',
        b'{"funnel":"court","title":"t","company_name":"c","source":"s","manager":"m",'
        b'"answer_due":"9999-12-31"}',
        b'{"funnel":"court","title":"t","company_name":"c","source":"s","manager":"m",'
        b'"answer_due":"0000-01-01"}',
        b'{"funnel":"court","title":"t","company_name":"c","source":"s","manager":"m",'
        b'"company_id":"' + b"x" * 20_000 + b'"}',
        b'{"hours":1e400,"expert":"e","result":"r"}',
        b'{"hours":"Infinity","expert":"e","result":"r"}',
        b'{"outcome":null}',
        b'{"quality":null}',
        b'{"quality":1}',
        b'{"components":[null]}',
        b'{"components":[{"name":"a","amount":"1e-400"}]}',
        b'{"components":[' + b'{"name":"x","amount":1},' * 3 + b'{"name":"y","amount":1e14}]}',
    ]
    paths = [
        "/leads",
        *(f"/leads/{lead_id}/{name}" for name in COMMANDS),
        f"/leads/{unknown}/card",
        f"/leads/{company}/card",
        f"/leads/{company}/resume",
    ]
    header_sets: list[dict[str, Any]] = [
        ACTOR,
        {**ACTOR, "Idempotency-Key": "odd"},
        {**ACTOR, "If-Match": "99999999999999999999999999"},
        {"Authorization": "Bearer " + "x" * 500},
        {"Authorization": "Bearer é".encode()},
        {"Authorization": b"Bearer \xff\xfe"},
    ]
    failures: list[str] = []

    def check(response: httpx.Response, label: str) -> None:
        if response.status_code == 503 and response.json()["code"] == "read_models_behind":
            return  # the designed answer to a min_position beyond the log
        if response.status_code >= 500:
            failures.append(f"{label} -> {response.status_code} {response.text[:120]}")

    for index, path in enumerate(paths):
        for raw in raw_bodies:
            # an Idempotency-Key adds a fingerprint of the request: try it on a few paths
            for headers in header_sets[: 2 if index in (0, 1, 4) else 1]:
                check(
                    client.post(path, content=raw, headers={**headers, **JSON}),
                    f"POST {path} {raw[:60]!r} {list(headers)}",
                )
        for headers in header_sets[2:]:
            check(
                client.post(path, json=new_lead_body(), headers=headers),
                f"POST {path} {headers}",
            )
        check(
            client.post(path, content=b"title=x", headers={**ACTOR, "content-type": "text/plain"}),
            f"POST {path} text/plain",
        )

    odd_instants = [
        "garbage",
        "2026-13-45",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59",
        "1970-01-01",
        "2026-01-05T09:00:00+25:00",
        "-1",
        "1e400",
    ]
    odd_ints = ["-1", "abc", "1e3", str(2**63), str(10**30), "1.5", ""]
    gets: list[tuple[str, dict[str, str]]] = []
    for value in odd_instants:
        gets += [
            (f"/leads/{lead_id}", {"as_of": value}),
            (f"/leads/{company}", {"as_of": value}),
            ("/leads", {"from": value}),
            ("/leads", {"to": value}),
            ("/reports/funnel", {"funnel": "court", "from": value}),
            ("/reports/funnel", {"funnel": "court", "to": value}),
        ]
    for value in odd_ints:
        gets += [
            ("/leads", {"limit": value}),
            ("/leads", {"offset": value}),
            ("/leads", {"min_position": value}),
            (f"/leads/{lead_id}", {"min_position": value}),
            ("/reports/funnel", {"funnel": "court", "min_position": value}),
        ]
    gets += [
        ("/leads", {"funnel": "'; DROP TABLE leads; --"}),
        ("/leads", {"stage": "\x00"}),
        ("/leads", {"status": "deleted"}),
        ("/leads", {"manager": "x" * 10_000}),
        ("/reports/funnel", {}),
        ("/reports/funnel", {"funnel": ""}),
        ("/reports/funnel", {"funnel": "\x00"}),
        (f"/leads/{unknown}/history", {}),
        (f"/leads/{company}/history", {}),
        (f"/leads/{company}", {}),
        ("/leads/%00", {}),
        ("/leads/" + "a" * 5000, {}),
        ("/funnels", {"x": "y"}),
        ("/health", {}),
    ]
    for url, params in gets:
        check(client.get(url, params=params), f"GET {url} {params}")
    for method in ("PUT", "PATCH", "DELETE"):
        check(client.request(method, f"/leads/{lead_id}"), f"{method} /leads/{{id}}")

    assert not failures, "\n".join(failures)


# --- GET /leads: filters and pagination ---------------------------------------------------


@pytest.fixture
def population(client: TestClient, clock: FakeClock) -> dict[str, Any]:
    """Six leads created a day apart, in various funnels, stages, statuses and managers."""
    start = clock.now
    ids: dict[str, str] = {}
    ids["a"] = create(client, manager="boris")["lead_id"]
    clock.advance(days=1)
    ids["b"] = create(client, manager="vera")["lead_id"]
    ok(client, ids["b"], "stage", {"stage": "contract"})
    clock.advance(days=1)
    ids["c"] = create(client, funnel="court", manager="vera")["lead_id"]
    ok(client, ids["c"], "pause", {"reason": "waiting"})
    clock.advance(days=1)
    ids["d"] = create(client, funnel="court", manager="boris")["lead_id"]
    ok(client, ids["d"], "close", {"outcome": "won"})
    clock.advance(days=1)
    ids["e"] = create(client, manager="gleb")["lead_id"]
    ok(client, ids["e"], "transfer", {"funnel": "court", "stage": "answer_given"})
    clock.advance(days=1)
    ids["f"] = create(client, manager="gleb")["lead_id"]
    last = ok(client, ids["f"], "close", {"outcome": "lost", "reason": "price"})
    return {"ids": ids, "start": start, "position": last["position"]}


def _names(page: dict[str, Any], ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[item["lead_id"]] for item in page["items"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "fedcba"),
        ({"funnel": "court"}, "edc"),
        ({"funnel": "out_of_court"}, "fba"),
        ({"stage": "new"}, "fa"),
        ({"stage": "contract"}, "b"),
        ({"stage": "answer_given"}, "e"),
        ({"status": "open"}, "eba"),
        ({"status": "paused"}, "c"),
        ({"status": "won"}, "d"),
        ({"status": "lost"}, "f"),
        ({"status": "non_quality"}, ""),
        ({"manager": "vera"}, "cb"),
        ({"manager": "nobody"}, ""),
        ({"funnel": "court", "manager": "boris"}, "d"),
        ({"funnel": "court", "stage": "request_received"}, "dc"),
    ],
)
def test_list_filters(
    client: TestClient, population: dict[str, Any], params: dict[str, str], expected: str
) -> None:
    page = listing(client, population["position"], **params)
    assert _names(page, population["ids"]) == list(expected)
    assert page["total"] == len(expected)


def test_list_items_carry_the_summary(client: TestClient, population: dict[str, Any]) -> None:
    page = listing(client, population["position"], stage="answer_given")
    (item,) = page["items"]
    assert item["lead_id"] == population["ids"]["e"]
    assert (item["funnel"], item["stage"], item["status"], item["manager"]) == (
        "court",
        "answer_given",
        "open",
        "gleb",
    )
    assert item["version"] == 2
    assert item["repeat"] is False
    assert item["title"] == "Appraisal of a warehouse"


def test_list_filters_by_created_period(client: TestClient, population: dict[str, Any]) -> None:
    start: datetime = population["start"]
    position = population["position"]
    ids = population["ids"]

    def period(**params: str) -> list[str]:
        return _names(listing(client, position, **params), ids)

    assert period(**{"from": iso(start + timedelta(days=2))}) == list("fedc")
    assert period(to=iso(start + timedelta(days=2))) == list("cba")  # bounds inclusive
    assert period(
        **{"from": iso(start + timedelta(days=1)), "to": iso(start + timedelta(days=3))}
    ) == list("dcb")
    assert (
        period(**{"from": iso(start + timedelta(hours=1)), "to": iso(start + timedelta(hours=2))})
        == []
    )
    # a naive timestamp is UTC; an offset is honoured
    naive = (start + timedelta(days=4)).replace(tzinfo=None).isoformat()
    assert period(**{"from": naive}) == list("fe")
    shifted = (start + timedelta(days=4)).astimezone(timezone(timedelta(hours=3))).isoformat()
    assert period(**{"from": shifted}) == list("fe")
    # a date: 'from' is its first instant, 'to' covers the whole day
    assert period(**{"from": "2026-01-07"}) == list("fedc")
    assert period(to="2026-01-07") == list("cba")
    assert period(**{"from": "2026-01-07", "to": "2026-01-07"}) == ["c"]


def test_list_from_after_to_is_422(client: TestClient) -> None:
    assert_invalid(
        client.get("/leads", params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        "from",
    )
    assert_invalid(client.get("/leads", params={"from": "yesterday"}), "from")
    assert_invalid(client.get("/leads", params={"to": "2026-02-30"}), "to")
    assert_invalid(client.get("/leads", params={"status": "deleted"}), "status")


def test_list_pagination(client: TestClient, population: dict[str, Any]) -> None:
    position = population["position"]
    ids = population["ids"]
    pages = [listing(client, position, limit=4, offset=offset) for offset in (0, 4, 8)]
    assert [_names(p, ids) for p in pages] == [list("fedc"), list("ba"), []]
    assert all(p["total"] == 6 for p in pages)
    assert [(p["limit"], p["offset"]) for p in pages] == [(4, 0), (4, 4), (4, 8)]
    default = listing(client, position)
    assert (default["limit"], default["offset"]) == (50, 0)
    assert _names(listing(client, position, limit=1, offset=2, funnel="court"), ids) == ["c"]
    assert listing(client, position, limit=1, offset=2, funnel="court")["total"] == 3


@pytest.mark.parametrize("limit", [1, 500])
def test_list_limit_bounds_accepted(client: TestClient, limit: int) -> None:
    position = create(client)["position"]
    assert listing(client, position, limit=limit)["limit"] == limit


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"min_position": -1}, "min_position"),
    ],
)
def test_list_bad_paging_is_422(client: TestClient, params: dict[str, Any], field: str) -> None:
    assert_invalid(client.get("/leads", params=params), field)


def test_list_an_offset_beyond_any_page_is_empty_not_an_error(lenient: TestClient) -> None:
    client = lenient
    position = create(client)["position"]
    for offset in (10**6, 2**62, 10**20):
        response = client.get("/leads", params={"min_position": position, "offset": offset})
        assert response.status_code in (200, 422), (offset, response.text)
        if response.status_code == 200:
            assert response.json()["items"] == []
            assert response.json()["total"] == 1
        else:
            assert response.json()["field"] == "offset"


# --- history ----------------------------------------------------------------------------


def test_history_lists_every_event_in_order_with_changes(
    client: TestClient, clock: FakeClock
) -> None:
    t0 = clock.now
    created = create(client, company_id="C-5")
    lead_id = created["lead_id"]
    clock.advance(hours=1)
    ok(
        client,
        lead_id,
        "card",
        {"title": "Appraisal of two warehouses", "expert": "eva"},
        headers=bearer("vera.pm"),
    )
    clock.advance(hours=1)
    ok(client, lead_id, "cost", {"components": [{"name": "survey", "amount": "250"}]})
    clock.advance(hours=1)
    ok(client, lead_id, "stage", {"stage": "assessment"})
    clock.advance(hours=1)
    ok(client, lead_id, "pause", {"reason": "waiting"})
    clock.advance(hours=2)
    ok(client, lead_id, "resume")
    clock.advance(hours=1)
    ok(client, lead_id, "transfer", {"funnel": "court"})
    clock.advance(hours=1)
    ok(client, lead_id, "assessment", {"expert": "eva", "result": "fine", "hours": "1.5"})
    clock.advance(hours=1)
    ok(client, lead_id, "qualification", {"quality": True})
    clock.advance(hours=1)
    ok(client, lead_id, "close", {"outcome": "lost", "reason": "price"})

    response = client.get(f"/leads/{lead_id}/history")
    assert response.status_code == 200
    body = response.json()
    assert body["lead_id"] == lead_id
    entries = body["events"]
    assert [e["type"] for e in entries] == [
        "LeadCreated",
        "LeadCardUpdated",
        "LeadCostBreakdownSet",
        "LeadStageChanged",
        "LeadPaused",
        "LeadResumed",
        "LeadTransferred",
        "LeadAssessed",
        "LeadQualified",
        "LeadClosed",
    ]
    assert [e["version"] for e in entries] == list(range(1, 11))
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions)
    assert len(set(positions)) == 10
    assert positions[0] == created["position"]
    hours = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert [e["at"] for e in entries] == [iso(t0 + timedelta(hours=h)) for h in hours]
    assert [e["actor"] for e in entries] == ["anna.sales", "vera.pm"] + ["anna.sales"] * 8
    assert len({e["command_id"] for e in entries}) == 10

    def change(entry: dict[str, Any], field: str) -> tuple[Any, Any]:
        c = entry["changes"][field]
        return c["old"], c["new"]

    created_entry, card, cost, stage, pause, resume, transfer, assess, qualify, close = entries
    assert change(created_entry, "title") == (None, "Appraisal of a warehouse")
    assert change(created_entry, "stage") == (None, "new")
    assert change(card, "title") == ("Appraisal of a warehouse", "Appraisal of two warehouses")
    assert change(card, "expert") == (None, "eva")
    assert set(card["changes"]) == {"title", "expert"}
    old_amount, new_amount = change(cost, "amount")
    assert (Decimal(old_amount), Decimal(new_amount)) == (Decimal(0), Decimal(250))
    assert change(stage, "stage") == ("new", "assessment")
    entered = datetime.fromisoformat(change(stage, "stage_entered_at")[1].replace("Z", "+00:00"))
    assert entered == t0 + timedelta(hours=3)
    assert change(pause, "status") == ("open", "paused")
    assert change(pause, "pause_reason") == (None, "waiting")
    assert change(resume, "status") == ("paused", "open")
    assert change(transfer, "funnel") == ("out_of_court", "court")
    assert change(transfer, "stage") == ("assessment", "request_received")
    assert change(assess, "assessment")[0] is None
    assert change(qualify, "quality") == (None, True)
    assert change(close, "status") == ("open", "lost")
    assert change(close, "close_reason") == (None, "price")
    assert "version" not in close["changes"]
    # the event's own facts
    assert stage["data"]["from_stage"] == "new"
    assert stage["data"]["to_stage"] == "assessment"
    assert resume["data"]["paused_seconds"] == pytest.approx(7200)
    assert transfer["data"]["to_funnel"] == "court"


def test_history_needs_no_read_model(client: TestClient) -> None:
    lead_id = create(client)["lead_id"]
    ok(client, lead_id, "pause", {"reason": "x"})
    assert [e["type"] for e in events(client, lead_id)] == ["LeadCreated", "LeadPaused"]


# --- as_of --------------------------------------------------------------------------------


def test_as_of_between_two_commands_is_the_earlier_state(
    client: TestClient, clock: FakeClock
) -> None:
    t0 = clock.now
    created = create(client)
    lead_id = created["lead_id"]
    at_v1 = read(client, lead_id, created["position"])
    clock.advance(hours=1)
    at_v2 = read(client, lead_id, ok(client, lead_id, "card", {"title": "Renamed"})["position"])
    clock.advance(hours=1)
    at_v3 = read(client, lead_id, ok(client, lead_id, "stage", {"stage": "contract"})["position"])
    clock.advance(hours=1)
    at_v4 = read(client, lead_id, ok(client, lead_id, "pause", {"reason": "waiting"})["position"])

    def as_of(moment: datetime | str) -> httpx.Response:
        value = moment if isinstance(moment, str) else iso(moment)
        response: httpx.Response = client.get(f"/leads/{lead_id}", params={"as_of": value})
        return response

    between = as_of(t0 + timedelta(minutes=30))
    assert between.status_code == 200
    assert between.json() == at_v1
    assert between.headers["ETag"] == '"1"'
    assert as_of(t0 + timedelta(minutes=90)).json() == at_v2
    assert as_of(t0 + timedelta(minutes=150)).json() == at_v3
    assert as_of(t0 + timedelta(days=1)).json() == at_v4
    # an event stamped exactly at the instant is included
    assert as_of(t0 + timedelta(hours=1)).json()["version"] == 2
    assert as_of(t0).json()["version"] == 1
    assert_error(as_of(t0 - timedelta(seconds=1)), 404, "not_found")
    # a naive timestamp is UTC; an offset is honoured
    assert as_of("2026-01-05T09:30:00").json() == at_v1
    assert as_of("2026-01-05T10:30:00").json() == at_v2
    assert as_of("2026-01-05T12:30:00+02:00").json() == at_v2
    assert as_of("2026-01-05T05:30:00-05:00").json() == at_v2
    assert_error(as_of("2026-01-05T08:59:59"), 404, "not_found")


def test_as_of_naive_is_utc_whatever_the_local_zone(
    client: TestClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    lead_id = create(client)["lead_id"]
    clock.advance(hours=1)
    ok(client, lead_id, "card", {"title": "Renamed"})
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        response = client.get(f"/leads/{lead_id}", params={"as_of": "2026-01-05T09:30:00"})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert response.status_code == 200
    assert response.json()["version"] == 1


@pytest.mark.parametrize("value", ["yesterday", "2026-01-05T25:00:00", "", "1e10x"])
def test_as_of_invalid_is_422(client: TestClient, value: str) -> None:
    lead_id = create(client)["lead_id"]
    assert_invalid(client.get(f"/leads/{lead_id}", params={"as_of": value}), "as_of")


# --- read-your-writes ---------------------------------------------------------------------


def test_min_position_beyond_the_log_is_refused_at_once(short_wait_client: TestClient) -> None:
    client = short_wait_client
    created = create(client)
    far = created["position"] + 1_000_000
    for url, params in [
        ("/leads", {}),
        (f"/leads/{created['lead_id']}", {}),
        ("/reports/funnel", {"funnel": "court"}),
    ]:
        response = client.get(url, params={**params, "min_position": far})
        body = assert_error(response, 422, "invalid_request", field="min_position")
        assert f"no event has position {far}: the event log ends at" in body["detail"]
    # the reads that come from the event store never wait
    assert client.get(f"/leads/{created['lead_id']}/history").status_code == 200


def test_min_position_not_projected_in_time_is_503(make_platform: PlatformFactory) -> None:
    platform = make_platform(read_wait_seconds=0.2)
    # no projector runs: the new lead stays beyond the read models
    app = create_app(platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as client:
        created = create(client)
        for url, params in [
            ("/leads", {}),
            ("/reports/funnel", {"funnel": "court"}),
        ]:
            response = client.get(url, params={**params, "min_position": created["position"]})
            body = assert_error(response, 503, "read_models_behind")
            assert body["min_position"] == created["position"]
            assert "retry" in body["detail"]
            assert response.headers["Retry-After"]
        # one lead is read from its own stream instead (exactly as its read model row)
        response = client.get(
            f"/leads/{created['lead_id']}", params={"min_position": created["position"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1
        assert response.headers["ETag"] == '"1"'


def test_min_position_reached_answers_at_once(client: TestClient) -> None:
    created = create(client)
    response = client.get(
        f"/leads/{created['lead_id']}", params={"min_position": created["position"]}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1
