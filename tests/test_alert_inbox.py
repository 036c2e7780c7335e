"""Alerts marked read per user (issue 15 "Alerts reach people"): the recipient marks one,
a list, or everything up to a position; nobody else can; ``GET /alerts`` tells which are
read, filters the unread ones and counts them; the header's count is the viewer's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import inbox
from aggregates.base import CommandMeta
from aggregates.errors import NotPermitted
from leadledger.wiring import Platform, read_model_projections
from projections.database import ReadModelDatabase
from projections.projector import rebuild
from tests.conftest import FakeClock, PlatformFactory, bearer
from tests.test_deal_projections import PipelineDriver

VERA = bearer("vera", "manager")
BORIS = bearer("boris", "manager")
TOP = bearer("anna.sales", "top")


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


def raise_alerts(platform: Platform, clock: FakeClock, *recipients: str) -> tuple[UUID, list[int]]:
    """Vera's deal with hand-off requests nobody takes: a reminder to each recipient, in
    order (one request each); the first request's id and the alerts' ids."""
    d = PipelineDriver(platform.store, clock, rules=platform.rules)
    deal_id = d.deal_from_lead("transport", manager="vera", company_id="acme")
    d.open_estimate(deal_id)
    for recipient in recipients:
        clock.advance(hours=1)
        d.remind_request(d.request(deal_id, "logistics"), recipient)
    return d.requests[0], list(d.alerts)


def get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    params.setdefault("min_position", client.app.state.platform.store.last_position())  # type: ignore[attr-defined]
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def post(client: TestClient, path: str, headers: dict[str, str], **body: Any) -> Any:
    """POST once the read models hold every alert raised so far (``min_position``)."""
    head = client.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    return client.post(path, params={"min_position": head}, json=body, headers=headers)


def test_the_recipient_marks_one_alert_read(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    request_id, (first, second) = raise_alerts(platform, clock, "vera", "vera")
    page = get(client, "/alerts", VERA, recipient="vera")
    assert [a["alert_id"] for a in page["items"]] == [second, first]
    assert [a["read"] for a in page["items"]] == [False, False]
    assert page["unread"] == 2
    assert get(client, "/alerts/unread-count", VERA) == {"unread": 2}

    marked = post(client, f"/alerts/{first}/read", VERA)
    assert marked.status_code == 200, marked.text
    assert marked.json()["marked"] == [first]
    assert marked.json()["username"] == "vera"

    page = get(client, "/alerts", VERA, recipient="vera", min_position=marked.json()["position"])
    assert {a["alert_id"]: a["read"] for a in page["items"]} == {first: True, second: False}
    assert page["unread"] == 1
    unread = get(client, "/alerts", VERA, recipient="vera", unread="true")
    assert [a["alert_id"] for a in unread["items"]] == [second]
    assert unread["total"] == 1
    assert get(client, "/alerts/unread-count", VERA) == {"unread": 1}
    assert str(request_id) == page["items"][-1]["subject_id"]


def test_marking_again_records_nothing(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    _, (alert,) = raise_alerts(platform, clock, "vera")
    first = post(client, f"/alerts/{alert}/read", VERA).json()
    head = platform.store.last_position()
    again = post(client, f"/alerts/{alert}/read", VERA)
    assert again.status_code == 200
    assert again.json()["marked"] == []
    assert again.json()["version"] == first["version"] == 1
    assert again.headers["Idempotent-Replayed"] == "true"
    assert platform.store.last_position() == head


def test_only_the_recipient_marks_it_read(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    _, (alert,) = raise_alerts(platform, clock, "vera")
    get(client, "/alerts", TOP)  # caught up
    refused = post(client, f"/alerts/{alert}/read", TOP)
    assert refused.status_code == 403, refused.text
    assert refused.json()["rule"] == "not_recipient"
    # boris does not see vera's deal: for him the alert is not there
    assert post(client, f"/alerts/{alert}/read", BORIS).status_code == 404
    assert post(client, "/alerts/99999/read", VERA).status_code == 404
    assert post(client, "/alerts/0/read", VERA).status_code == 422
    assert get(client, "/alerts/unread-count", VERA) == {"unread": 1}


def test_mark_a_list_or_all_up_to_a_position(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    _, (a, b, c, d) = raise_alerts(platform, clock, "vera", "boris", "vera", "vera")
    get(client, "/alerts", TOP)
    listed = post(client, "/alerts/read", VERA, alert_ids=[a, c])
    assert listed.status_code == 200, listed.text
    assert listed.json()["marked"] == [a, c]
    # a list naming someone else's alert (on vera's own deal: she sees it) is refused whole
    mixed = post(client, "/alerts/read", VERA, alert_ids=[d, b])
    assert mixed.status_code == 403
    both = post(client, "/alerts/read", VERA, alert_ids=[d], up_to=d)
    assert both.status_code == 422
    assert both.json()["field"] == "up_to"
    upto = post(client, "/alerts/read", VERA, up_to=d)
    assert upto.json()["marked"] == [d]
    assert get(client, "/alerts/unread-count", VERA, min_position=upto.json()["position"]) == {
        "unread": 0
    }
    assert get(client, "/alerts/unread-count", BORIS) == {"unread": 1}
    everything = post(client, "/alerts/read", BORIS)
    assert everything.json()["marked"] == [b]


def test_the_marks_survive_a_rebuild(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    _, (a, b) = raise_alerts(platform, clock, "vera", "vera")
    post(client, f"/alerts/{b}/read", VERA)
    post(client, "/alerts/read", VERA, alert_ids=[a, b])
    page = get(client, "/alerts", VERA, recipient="vera")
    assert [x["read"] for x in page["items"]] == [True, True]
    query = "SELECT alert_id, reader, read_at, position FROM alert_reads ORDER BY alert_id"
    counts = "SELECT recipient, raised, read FROM alert_counts ORDER BY recipient"
    incremental = platform.db.cursor().execute(query).fetchall()
    incremental_counts = platform.db.cursor().execute(counts).fetchall()
    db = ReadModelDatabase(":memory:")
    try:
        rebuild(platform.store, db, read_model_projections(platform.funnels, platform.rules))
        assert db.cursor().execute(query).fetchall() == incremental
        assert db.cursor().execute(counts).fetchall() == incremental_counts
    finally:
        db.close()
    assert [(r[0], r[1]) for r in incremental] == [(a, "vera"), (b, "vera")]
    assert incremental_counts == [("vera", 2, 2)]


def test_the_unread_counts_agree_with_the_marks(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    """The header's count (kept per recipient) equals the alerts without a read mark."""
    _, ids = raise_alerts(platform, clock, "vera", "boris", "vera", "boris", "vera")
    post(client, "/alerts/read", VERA, alert_ids=[ids[0], ids[4]])
    post(client, "/alerts/read", BORIS, up_to=ids[1])
    get(client, "/alerts", TOP)
    cursor = platform.db.cursor()
    kept = dict(cursor.execute("SELECT recipient, raised - read FROM alert_counts").fetchall())
    counted = dict(
        cursor.execute(
            "SELECT recipient, count(*) FILTER (WHERE alert_id NOT IN "
            "(SELECT alert_id FROM alert_reads)) FROM alerts GROUP BY recipient"
        ).fetchall()
    )
    assert kept == counted == {"vera": 1, "boris": 1}
    assert get(client, "/alerts/unread-count", VERA) == {"unread": 1}


META = CommandMeta(actor="vera", at=datetime(2026, 1, 5, tzinfo=UTC), command_id=UUID(int=1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 40), max_size=8), max_size=8))
def test_every_alert_is_read_once_whatever_the_marks(marks: list[list[int]]) -> None:
    """However the marks repeat and overlap, each alert is named by exactly one event,
    and the inbox holds every alert marked."""
    state: inbox.Inbox | None = None
    named: list[int] = []
    for ids in marks:
        command = inbox.MarkAlertsRead("vera", tuple(inbox.Alert(i, "vera") for i in ids))
        event = inbox.mark_read(state, command, META)
        if event is not None:
            named.extend(event.alert_ids)
            state = inbox.evolve(state, event)
    assert sorted(named) == sorted(set(named))
    assert set(named) == {i for ids in marks for i in ids}
    assert (state.read if state else frozenset()) == set(named)


def test_another_users_alert_is_not_permitted() -> None:
    command = inbox.MarkAlertsRead("vera", (inbox.Alert(1, "vera"), inbox.Alert(2, "boris")))
    with pytest.raises(NotPermitted):
        inbox.mark_read(None, command, META)
