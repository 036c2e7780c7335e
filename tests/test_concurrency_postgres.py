"""Concurrency on the real PostgreSQL, through the HTTP API.

Many threads send commands at once (released together by a barrier) to one app whose
event store is PostgreSQL: one winner per version, 409 with the current version for the
rest, never a lost update, and exactly one registration of a new company.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from aggregates.company import CompanyRegistered, company_stream_id
from aggregates.lead import LeadCreated
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory, bearer, new_lead_body

THREADS = 20


@pytest.fixture
def pg_platform(make_platform: PlatformFactory, pg_schema_url: str) -> Platform:
    return make_platform(event_store_url=pg_schema_url)


@pytest.fixture
def api(pg_platform: Platform) -> Iterator[TestClient]:
    app = create_app(pg_platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as client:
        yield client


def race(send: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Run ``send(i)`` in ``threads`` threads released at the same instant; results by i."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = send(i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a racing request never returned"
    if errors:
        raise errors[0]
    return results


def _create_lead(api: TestClient, **overrides: object) -> UUID:
    response = api.post("/leads", json=new_lead_body(**overrides), headers=ACTOR)
    assert response.status_code == 201, response.text
    return UUID(response.json()["lead_id"])


COMMANDS = {
    "stage": {"stage": "assessment"},
    "card": {"title": "Appraisal of a fleet", "amount": "1500.00"},
    "pause": {"reason": "client on holiday"},
}


@pytest.mark.postgres
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_same_if_match_from_twenty_threads_one_wins_the_rest_get_409(
    api: TestClient, pg_platform: Platform, command: str
) -> None:
    lead_id = _create_lead(api)
    store = pg_platform.store
    assert [r.version for r in store.load(lead_id)] == [1]

    responses = race(
        lambda i: api.post(
            f"/leads/{lead_id}/{command}",
            json=COMMANDS[command],
            headers={**bearer(f"user{i}"), "If-Match": "1"},
        )
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (THREADS - 1), [r.text for r in responses]
    [winner] = [r for r in responses if r.status_code == 200]
    assert winner.json()["version"] == 2
    assert winner.headers["ETag"] == '"2"'
    for r in responses:
        if r.status_code == 409:
            body = r.json()
            assert body["code"] == "version_conflict", body
            assert body["current_version"] == 2, body
            assert "version" in body["detail"]
            assert r.headers["ETag"] == '"2"'

    recorded = store.load(lead_id)
    assert [r.version for r in recorded] == [1, 2]
    assert recorded[1].position == winner.json()["position"]
    winner_actor = recorded[1].event.actor
    assert winner_actor.startswith("user")


@pytest.mark.postgres
def test_racing_creates_for_one_new_company_register_it_exactly_once(
    api: TestClient, pg_platform: Platform
) -> None:
    company_id = f"ACME-{uuid4().hex[:8]}"
    responses = race(
        lambda i: api.post(
            "/leads",
            json=new_lead_body(company_id=company_id, title=f"Lead {i}"),
            headers=ACTOR,
        )
    )
    assert [r.status_code for r in responses] == [201] * THREADS, [r.text for r in responses]
    lead_ids = [UUID(r.json()["lead_id"]) for r in responses]
    assert len(set(lead_ids)) == THREADS

    store = pg_platform.store
    created: dict[UUID, LeadCreated] = {}
    for lead_id in lead_ids:
        [recorded] = store.load(lead_id)
        assert isinstance(recorded.event, LeadCreated)
        created[lead_id] = recorded.event
    new = [lid for lid, e in created.items() if not e.repeat]
    assert len(new) == 1, "exactly one lead is new, every other one repeat"
    assert sum(e.repeat for e in created.values()) == THREADS - 1

    registrations = store.load(company_stream_id(company_id))
    assert len(registrations) == 1
    registration = registrations[0].event
    assert isinstance(registration, CompanyRegistered)
    assert registration.company_id == company_id
    assert registration.first_lead_id == new[0]
    all_registrations = [n for n in store.read(0, 10_000) if n.topic == "CompanyRegistered"]
    assert len(all_registrations) == 1

    # The read model says the same.
    pg_platform.projector.catch_up()
    for lead_id, event in created.items():
        detail = api.get(f"/leads/{lead_id}")
        assert detail.status_code == 200, detail.text
        assert detail.json()["repeat"] is event.repeat


@pytest.mark.postgres
@pytest.mark.parametrize("round_no", [1, 2])
def test_racing_commands_without_if_match_lose_no_update(
    api: TestClient, pg_platform: Platform, round_no: int
) -> None:
    lead_id = _create_lead(api)
    responses = race(
        lambda i: api.post(
            f"/leads/{lead_id}/card",
            json={"title": f"Title from thread {i} (round {round_no})"},
            headers=ACTOR,
        )
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 409}, [r.text for r in responses]
    accepted = [(i, r.json()) for i, r in enumerate(responses) if r.status_code == 200]
    assert accepted, "at least one command must win"
    for r in responses:
        if r.status_code == 409:
            body = r.json()
            assert body["code"] == "version_conflict", body
            assert body["current_version"] >= 2

    recorded = pg_platform.store.load(lead_id)
    appended = recorded[1:]
    assert len(appended) == len(accepted), "every 200 is one event, every event one 200"
    assert sorted((b["version"], b["position"]) for _, b in accepted) == [
        (r.version, r.position) for r in appended
    ]
    # Each appended event is the change its own request asked for.
    titles_by_version = {
        b["version"]: f"Title from thread {i} (round {round_no})" for i, b in accepted
    }
    for r in appended:
        assert r.event.changes["title"]["new"] == titles_by_version[r.version]  # type: ignore[attr-defined]
    # The last accepted change is the lead's title.
    pg_platform.projector.catch_up()
    detail = api.get(f"/leads/{lead_id}").json()
    assert detail["version"] == len(recorded)
    assert detail["title"] == titles_by_version[len(recorded)]


@pytest.mark.postgres
def test_racing_repeats_of_one_idempotency_key_append_once_and_answer_alike(
    api: TestClient, pg_platform: Platform
) -> None:
    lead_id = _create_lead(api)
    responses = race(
        lambda i: api.post(
            f"/leads/{lead_id}/card",
            json={"title": "Appraisal of a fleet"},
            headers={**ACTOR, "Idempotency-Key": "card-edit-1"},
        )
    )
    assert [r.status_code for r in responses] == [200] * THREADS, [r.text for r in responses]
    bodies = {(r.json()["version"], r.json()["position"]) for r in responses}
    assert len(bodies) == 1
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in responses]
    assert replayed.count(False) == 1, "exactly one request appended, the rest replayed it"
    recorded = pg_platform.store.load(lead_id)
    assert [r.version for r in recorded] == [1, 2]
    assert bodies == {(2, recorded[1].position)}


@pytest.mark.postgres
def test_racing_repeats_of_one_create_with_an_idempotency_key_create_one_lead(
    api: TestClient, pg_platform: Platform
) -> None:
    company_id = f"ACME-{uuid4().hex[:8]}"
    body = new_lead_body(company_id=company_id)
    responses = race(
        lambda i: api.post("/leads", json=body, headers={**ACTOR, "Idempotency-Key": "create-1"})
    )
    assert [r.status_code for r in responses] == [201] * THREADS, [r.text for r in responses]
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert len({r.json()["position"] for r in responses}) == 1
    lead_id = UUID(responses[0].json()["lead_id"])
    store = pg_platform.store
    [created] = store.load(lead_id)
    assert isinstance(created.event, LeadCreated)
    assert created.event.repeat is False
    assert len(store.load(company_stream_id(company_id))) == 1
    topics = [n.topic for n in store.read(0, 10_000)]
    assert sorted(topics) == ["CompanyRegistered", "LeadCreated"]
