"""The event stream without Kafka (GET /events, Server-Sent Events), upcasting of stored
v1 events, /asyncapi.json and /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4, uuid5

import httpx
import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from aggregates.lead import LeadCreated
from leadledger.wiring import Platform
from read_api.app import create_app
from relay.publishing import EVENT_ID_NAMESPACE, Publication, event_id
from tests.conftest import ACTOR, PlatformFactory, create, serving


def _lead_created_v1(platform: Platform) -> tuple[str, bytes]:
    """A LeadCreated as LeadLedger stored it before currencies: version 1, no currency."""
    lead_id = str(uuid4())
    state = {
        "actor": "anna.sales",
        "at": "2025-03-01T10:00:00+00:00",
        "command_id": str(uuid4()),
        "correlation_id": None,
        "request_hash": None,
        "lead_id": lead_id,
        "funnel": "out_of_court",
        "stage": "new",
        "title": "Appraisal of a warehouse",
        "company_name": "Northwind LLC",
        "company_id": None,
        "repeat": False,
        "source": "phone",
        "manager": "anna.sales",
        "expert": None,
        "need_maturity": None,
        "answer_due": None,
        "description": None,
        "amount": "1500.00",
        "schema_version": 1,
    }
    return lead_id, orjson.dumps(state)


def _store_v1(platform: Platform) -> str:
    from uuid import UUID

    lead_id, state = _lead_created_v1(platform)
    platform.store.recorder.insert_events([StoredEvent(UUID(lead_id), 1, "LeadCreated", state)])
    return lead_id


def test_a_v1_event_is_read_as_v2_everywhere(platform: Platform, client: TestClient) -> None:
    from uuid import UUID

    lead_id = _store_v1(platform)
    (record,) = platform.store.load(UUID(lead_id))
    assert isinstance(record.event, LeadCreated)
    assert record.event.currency == "RUB"
    # read in the current version (4: no contact, the funnel's assessment setting, no
    # contact record)
    assert type(record.event).schema_version == 4
    assert (record.event.contact, record.event.assessment_required) == (None, None)
    assert record.event.contact_id is None

    page = client.get("/events", params={"after": 0}).json()
    (envelope,) = [e for e in page["items"] if e["aggregate_id"] == lead_id]
    assert envelope["schema_version"] == 4
    assert envelope["data"]["currency"] == "RUB"
    assert envelope["data"]["assessment_required"] is None
    assert envelope["data"]["amount"] == "1500.00"

    position = platform.store.last_position()
    detail = client.get(f"/leads/{lead_id}", params={"min_position": position}).json()
    assert detail["currency"] == "RUB"
    assert detail["amount"] == "1500.00" or float(detail["amount"]) == 1500.0
    # the stored bytes are untouched: upcasting happens on reading
    ((_, _, _, _, state),) = [r for r in platform.store.read_rows(0, 100) if r[1] == lead_id]
    assert orjson.loads(state)["schema_version"] == 1


def test_a_new_lead_records_its_currency(client: TestClient) -> None:
    accepted = create(client, currency="EUR")
    detail = client.get(
        f"/leads/{accepted['lead_id']}", params={"min_position": accepted["position"]}
    ).json()
    assert detail["currency"] == "EUR"
    default = create(client)
    assert (
        client.get(
            f"/leads/{default['lead_id']}", params={"min_position": default["position"]}
        ).json()["currency"]
        == "RUB"
    )


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", "", "ÄÖÜ"])
def test_a_malformed_currency_is_refused_naming_the_field(
    client: TestClient, currency: str
) -> None:
    body = {
        "funnel": "out_of_court",
        "title": "Appraisal",
        "company_name": "Northwind LLC",
        "source": "phone",
        "manager": "anna.sales",
        "currency": currency,
    }
    response = client.post("/leads", json=body, headers=ACTOR)
    assert response.status_code == 422
    assert "currency" in response.text
    assert client.get("/events").json()["items"] == []


def _load(client: TestClient, leads: int) -> None:
    for i in range(leads):
        accepted = create(client, title=f"Lead {i}")
        client.post(
            f"/leads/{accepted['lead_id']}/stage",
            json={"stage": "contact"},
            headers=ACTOR | {"If-Match": '"1"'},
        )


def test_the_feed_pages_through_the_log_in_order(platform: Platform, client: TestClient) -> None:
    _load(client, 7)
    head = platform.store.last_position()
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get("/events", params={"after": after, "limit": 3}).json()
        assert page["head"] == head
        assert len(page["items"]) <= 3
        if not page["items"]:
            assert page["next_after"] == after
            break
        seen += page["items"]
        after = page["next_after"]
    assert [e["position"] for e in seen] == list(range(1, head + 1))
    publication = Publication(platform.store.codec)
    assert seen == publication.envelopes(platform.store.read_rows(0, 1000))
    for e in seen:
        assert e["event_id"] == event_id(e["aggregate_id"], e["aggregate_version"])
        assert set(e) == {
            "event_id",
            "type",
            "schema_version",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            "position",
            "occurred_at",
            "actor",
            "command_id",
            "correlation_id",
            "data",
        }
        assert not {"actor", "at", "command_id", "request_hash"} & set(e["data"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": -1}, "after"),
        ({"after": "x"}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_bad_feed_parameters_are_refused_naming_them(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = client.get("/events", params=params)
    assert response.status_code == 422
    assert field in response.text


def test_sensitive_fields_never_leave(platform: Platform, client: TestClient) -> None:
    """A field the domain marks sensitive is dropped even if a public schema named it."""
    from schemas.events.registry import CURRENT, PublishedEventType

    created = create(client)
    original = LeadCreated.sensitive_fields
    try:
        LeadCreated.sensitive_fields = frozenset({"description", "title"})
        publication = Publication(
            platform.store.codec,
            published=CURRENT | {"LeadCreated": PublishedEventType(**vars(CURRENT["LeadCreated"]))},
        )
        (envelope,) = publication.envelopes(platform.store.read_rows(0, 1))
    finally:
        LeadCreated.sensitive_fields = original
    assert envelope["aggregate_id"] == created["lead_id"]
    assert "title" not in envelope["data"]
    assert "description" not in envelope["data"]
    assert "company_name" in envelope["data"]


@pytest.fixture
def live_server(platform: Platform) -> Iterator[str]:
    """The API on a real port (Server-Sent Events need a real streaming connection)."""
    with serving(platform) as port:
        yield f"http://127.0.0.1:{port}"


def _sse_events(lines: Iterator[str], count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    break
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        current[name] = value
    return events


def test_server_sent_events_deliver_the_log_then_new_events_and_resume(
    live_server: str, platform: Platform
) -> None:
    with httpx.Client(base_url=live_server, headers=ACTOR, timeout=20) as http:
        for i in range(3):
            assert http.post("/leads", json=_lead(i)).status_code == 201
        with http.stream("GET", "/events/stream", params={"after": 1}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            first = _sse_events(lines, 2)
            # a new event arrives on the open stream by itself
            assert http.post("/leads", json=_lead(9)).status_code == 201
            (later,) = _sse_events(lines, 1)
        assert [int(e["id"]) for e in first] == [2, 3]
        assert int(later["id"]) == 4
        envelope = orjson.loads(later["data"])
        assert later["event"] == envelope["type"] == "LeadCreated"
        assert envelope["data"]["title"] == "Lead 9"
        assert envelope == Publication(platform.store.codec).envelope(
            platform.store.read_rows(3, 1)[0]
        )
        # a reconnecting EventSource sends Last-Event-ID and resumes after it
        with http.stream("GET", "/events/stream", headers={"Last-Event-ID": "3"}) as stream:
            (resumed,) = _sse_events(stream.iter_lines(), 1)
        assert resumed["id"] == "4"
        bad = http.get("/events/stream", headers={"Last-Event-ID": "three"})
        assert bad.status_code == 422
        assert "Last-Event-ID" in bad.text


def _lead(i: int) -> dict[str, Any]:
    return {
        "funnel": "out_of_court",
        "title": f"Lead {i}",
        "company_name": "Northwind LLC",
        "source": "phone",
        "manager": "anna.sales",
    }


def test_asyncapi_is_served_with_one_channel_per_topic(
    make_platform: PlatformFactory,
) -> None:
    platform = make_platform(kafka_topic_prefix="acme.leadledger")
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        document = client.get("/asyncapi.json").json()
    assert document["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in document["channels"].values()}
    assert "acme.leadledger.lead" in addresses
    assert addresses == set(Publication(platform.store.codec, "acme.leadledger").topics)


def test_metrics_report_relay_projector_and_process_manager_lag(
    platform: Platform, client: TestClient
) -> None:
    _load(client, 3)
    head = platform.store.last_position()
    response = client.get("/metrics", params={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("leadledger_log_head_position", ())] == head
    # no relay runs here: everything stored is lag
    assert samples[("leadledger_relay_position", ())] == 0
    assert samples[("leadledger_relay_lag_events", ())] == head
    projected = samples[("leadledger_projector_position", ())]
    assert samples[("leadledger_projector_lag_events", ())] == head - projected
    managers = [k for k in samples if k[0] == "leadledger_process_manager_lag_events"]
    assert len(managers) == len(platform.processes.managers)


@given(st.uuids(), st.integers(min_value=1, max_value=2**31))
def test_event_ids_are_the_documented_uuid5_of_aggregate_and_version(
    aggregate_id: UUID, version: int
) -> None:
    expected = uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")
    assert event_id(str(aggregate_id), version) == str(expected)
