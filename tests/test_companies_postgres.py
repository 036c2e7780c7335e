"""The duplicate claims under real concurrency, on PostgreSQL, through the HTTP API.

Registrations released together by a barrier: of many with one tax id (or one name in
one city), exactly one wins and every other hears ``likely_duplicate`` naming it; of many
first leads of a company registered in the directory, exactly one is new.
"""

# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from aggregates.company import (
    CompanyFirstLeadRecorded,
    company_stream_id,
    tax_id_stream_id,
    with_check_digits,
)
from aggregates.lead import LeadCreated
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory, new_lead_body
from tests.test_concurrency_postgres import race

THREADS = 12


@pytest.fixture
def pg_platform(make_platform: PlatformFactory, pg_schema_url: str) -> Platform:
    return make_platform(event_store_url=pg_schema_url)


@pytest.fixture
def api(pg_platform: Platform) -> Iterator[TestClient]:
    app = create_app(pg_platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as client:
        yield client


def test_racing_registrations_with_one_tax_id_exactly_one_wins(
    api: TestClient, pg_platform: Platform
) -> None:
    tax_id = with_check_digits(f"77{uuid4().int % 10**7:07d}")
    responses = race(
        lambda i: api.post("/companies", json={"name": f"Company {i}", "tax_id": tax_id}),
        THREADS,
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (THREADS - 1), [r.text for r in responses]
    [winner] = [r.json()["company_id"] for r in responses if r.status_code == 201]
    for refused in (r.json() for r in responses if r.status_code == 409):
        assert refused["rule"] == "likely_duplicate"
        assert refused["existing_company_id"] == winner
    claims = pg_platform.store.load(tax_id_stream_id(tax_id))
    assert [c.event.company_id for c in claims] == [winner]  # type: ignore[attr-defined]


def test_racing_registrations_with_one_name_in_one_city_exactly_one_wins(api: TestClient) -> None:
    city = f"Город {uuid4().hex[:6]}"
    names = ["ООО «Ромашка»", "Ромашка", "РОМАШКА АО", '"ромашка", ооо']
    responses = race(
        lambda i: api.post("/companies", json={"name": names[i % len(names)], "city": city}),
        THREADS,
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (THREADS - 1), [r.text for r in responses]
    [winner] = [r.json()["company_id"] for r in responses if r.status_code == 201]
    assert {r.json()["existing_company_id"] for r in responses if r.status_code == 409} == {winner}


def test_racing_first_leads_of_a_directory_company_exactly_one_is_new(
    api: TestClient, pg_platform: Platform
) -> None:
    created = api.post("/companies", json={"name": f"Acme {uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    company_id = created.json()["company_id"]
    responses = race(
        lambda i: api.post("/leads", json=new_lead_body(company_id=company_id, title=f"L{i}")),
        THREADS,
    )
    assert [r.status_code for r in responses] == [201] * THREADS, [r.text for r in responses]
    store = pg_platform.store
    repeat = {}
    for response in responses:
        lead_id = UUID(response.json()["lead_id"])
        [recorded] = store.load(lead_id)
        assert isinstance(recorded.event, LeadCreated)
        repeat[lead_id] = recorded.event.repeat
    new = [lead_id for lead_id, flag in repeat.items() if not flag]
    assert len(new) == 1, "exactly one lead is new, every other one repeat"
    firsts = [
        r.event
        for r in store.load(company_stream_id(company_id))
        if isinstance(r.event, CompanyFirstLeadRecorded)
    ]
    assert [f.lead_id for f in firsts] == new
