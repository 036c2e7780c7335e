"""Contacts under contention on the real PostgreSQL, through the HTTP API: of racing first
leads naming one contact exactly one is new, and of racing contacts with one phone
exactly one is registered (the rest hear it is a likely duplicate of that one)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from aggregates.contact import ContactFirstLeadNamed, claim_stream_id, first_lead_stream_id
from aggregates.lead import LeadCreated
from leadledger.wiring import Platform
from tests.conftest import ACTOR, new_lead_body
from tests.test_concurrency_postgres import THREADS, api, pg_platform, race

__all__ = ["api", "pg_platform"]

pytestmark = pytest.mark.postgres


def test_racing_first_leads_of_one_private_person_make_exactly_one_new(
    api: TestClient, pg_platform: Platform
) -> None:
    created = api.post("/contacts", json={"name": "Anna", "phones": ["+79123456789"]})
    assert created.status_code == 201, created.text
    contact_id = created.json()["contact_id"]
    responses = race(
        lambda i: api.post(
            "/leads",
            json=new_lead_body(company_name="Anna", contact_id=contact_id, title=f"Lead {i}"),
            headers=ACTOR,
        )
    )
    assert [r.status_code for r in responses] == [201] * THREADS, [r.text for r in responses]
    events: dict[UUID, LeadCreated] = {}
    for r in responses:
        [recorded] = pg_platform.store.load(UUID(r.json()["lead_id"]))
        assert isinstance(recorded.event, LeadCreated)
        events[recorded.event.lead_id] = recorded.event
    new = [lead_id for lead_id, e in events.items() if not e.repeat]
    assert len(new) == 1, "exactly one lead is new, every other one repeat"
    [mark] = pg_platform.store.load(first_lead_stream_id(UUID(contact_id)))
    assert isinstance(mark.event, ContactFirstLeadNamed)
    assert mark.event.first_lead_id == new[0]


def test_racing_contacts_with_one_phone_register_one_and_name_it_to_the_rest(
    api: TestClient, pg_platform: Platform
) -> None:
    phone = f"+7912{uuid4().int % 10**7:07d}"
    responses = race(
        lambda i: api.post("/contacts", json={"name": f"Person {i}", "phones": [phone]})
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (THREADS - 1), [r.text for r in responses]
    [winner] = [r.json()["contact_id"] for r in responses if r.status_code == 201]
    for r in responses:
        if r.status_code == 409:
            assert (r.json()["rule"], r.json()["contact_id"]) == ("likely_duplicate", winner)
    claims = pg_platform.store.load(claim_stream_id("phone", phone))
    assert len(claims) == 1
