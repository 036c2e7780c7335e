"""Reading the log in bounded pages, and the one log tail fanning events out: the feed
and the Server-Sent Events stream on a real uvicorn server, the event store's byte budget
on both back-ends, and the awaited waits of read-your-writes and of ``sees``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.streamlib import Subscriber, large_lead, request
from event_store import EventStore, NewEvent
from leadledger.wiring import Platform
from read_api import log_tail
from tests.conftest import PlatformFactory, new_lead_body, serving, token

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOP = token("tom.top", "top")
MIA = token("mia.manager", "manager")


def _append_large(store: EventStore, count: int, size: int, manager: str = "tom.top") -> list[str]:
    ids = []
    for i in range(count):
        event = large_lead(size, AT + timedelta(seconds=i))
        event = type(event)(**{**event.__dict__, "manager": manager})
        store.append([NewEvent(event.lead_id, 1, event)])
        ids.append(str(event.lead_id))
    return ids


def test_a_page_stops_at_its_byte_budget_on_both_back_ends(store: EventStore) -> None:
    _append_large(store, 5, 100_000)
    everything = store.read_rows(0, 100)
    assert [r[0] for r in everything] == [1, 2, 3, 4, 5]
    two = store.read_rows(0, 100, 250_000)
    assert [(r[0], bytes(r[4])) for r in two] == [(r[0], bytes(r[4])) for r in everything[:2]]
    # a single event larger than the budget is read alone, never skipped
    assert [r[0] for r in store.read_rows(2, 100, 10)] == [3]
    assert [r[0] for r in store.read_rows(0, 3, 10**9)] == [1, 2, 3]
    assert store.read_rows(5, 100, 250_000) == []


def test_the_feed_pages_large_events_by_bytes_and_loses_none(
    platform: Platform, client: TestClient
) -> None:
    _append_large(platform.store, 6, 200_000)
    page = client.get("/events", params={"after": 0, "limit": 1000}).json()
    assert [e["position"] for e in page["items"]] == [1, 2]  # a third would pass 512 KiB
    assert page["next_after"] == 2
    assert page["head"] == 6
    seen, after = [], 0
    while items := (page := client.get("/events", params={"after": after}).json())["items"]:
        seen += [e["position"] for e in items]
        after = page["next_after"]
    assert seen == [1, 2, 3, 4, 5, 6]


def test_a_read_your_writes_wait_is_resolved_by_the_projector(platform: Platform) -> None:
    _append_large(platform.store, 1, 10)  # nothing folds it: the background is not started

    async def scenario() -> tuple[bool, bool, float]:
        waiting = asyncio.create_task(platform.projector.reached(1, 10))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await asyncio.to_thread(platform.projector.catch_up)
        reached = await asyncio.wait_for(waiting, 2)
        started = time.monotonic()
        beyond = await platform.projector.reached(2, 0.3)
        return reached, beyond, time.monotonic() - started

    reached, beyond, waited = asyncio.run(scenario())
    assert reached is True
    assert beyond is False
    assert 0.25 < waited < 2


@pytest.fixture
def serve() -> Iterator[Any]:
    """Serve a platform's API with uvicorn on a real port (in a thread);
    ``serve(platform)`` returns the port."""
    with ExitStack() as servers:

        def start(platform: Platform, background: bool = True) -> int:
            return servers.enter_context(serving(platform, background=background))

        yield start


def _settle(platform: Platform) -> None:
    assert platform.projector.wait_for(platform.store.last_position(), 10)


def test_subscribers_switch_from_catching_up_to_the_tail_without_gaps_or_repeats(
    platform: Platform, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A top manager gets every event, a manager only those of their own leads: in order,
    each once, while events keep arriving during their catch-up (small pages, so that
    catching up takes many reads and the tail publishes meanwhile)."""
    monkeypatch.setattr(log_tail, "PAGE_EVENTS", 3)
    port = serve(platform)

    async def create(manager: str) -> str:
        body = new_lead_body(manager=manager, title=f"Lead of {manager}")
        _, answer = await request(port, "POST", "/leads", TOP, body)
        return str(httpx.Response(200, content=answer).json()["lead_id"])

    async def scenario() -> tuple[list[int], list[int], set[str]]:
        mine = set()
        for i in range(20):
            lead_id = await create("mia.manager" if i % 2 else "max.manager")
            if i % 2:
                mine.add(lead_id)
        await asyncio.to_thread(_settle, platform)
        top, mia = Subscriber(port, TOP), Subscriber(port, MIA)
        await asyncio.gather(top.open(keep_ids=True), mia.open(keep_ids=True))
        for i in range(12):  # while they catch up
            lead_id = await create("mia.manager" if i % 2 else "max.manager")
            if i % 2:
                mine.add(lead_id)
        head = platform.store.last_position()
        await top.until(head, 20)
        mine_positions = [r[0] for r in platform.store.read_rows(0, 10_000) if r[1] in mine]
        await mia.until(mine_positions[-1], 20)
        await asyncio.sleep(0.5)  # anything sent twice would arrive now
        await asyncio.gather(top.close(), mia.close())
        assert top.ids is not None
        assert mia.ids is not None
        return top.ids, mia.ids, mine

    top_ids, mia_ids, mine = asyncio.run(scenario())
    rows = platform.store.read_rows(0, 10_000)
    assert top_ids == [r[0] for r in rows]
    assert mia_ids == [r[0] for r in rows if r[1] in mine]
    assert len(mia_ids) >= 16


def test_a_quiet_stream_still_sends_keep_alive_comments(
    platform: Platform, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_tail, "KEEPALIVE_SECONDS", 0.3)
    port = serve(platform)

    async def scenario() -> int:
        subscriber = Subscriber(port, TOP)
        await subscriber.open()
        await asyncio.sleep(1.2)
        await subscriber.close()
        return subscriber.keepalives

    assert asyncio.run(scenario()) >= 2


def test_requests_waiting_for_a_record_the_read_models_lack_hold_no_thread(
    make_platform: PlatformFactory, serve: Any
) -> None:
    """A scoped viewer's history of a record not projected yet waits in ``sees`` for the
    read models, awaited: more such requests than the request pool has threads all wait
    their bounded time (then 404: the record is not theirs to see yet), and the other
    endpoints answer at once meanwhile."""
    platform = make_platform(read_wait_seconds=6)
    (lead_id,) = _append_large(platform.store, 1, 10, manager="mia.manager")
    port = serve(platform, background=False)  # no projector: the lead stays unprojected
    waiters = 60  # more than the 40 threads of the request pool

    def history(_: int) -> tuple[int, float]:
        started = time.monotonic()
        response = httpx.get(
            f"http://127.0.0.1:{port}/leads/{UUID(lead_id)}/history",
            headers={"Authorization": f"Bearer {MIA}"},
            timeout=20,
        )
        return response.status_code, time.monotonic() - started

    with ThreadPoolExecutor(waiters + 1) as pool:
        waiting = [pool.submit(history, i) for i in range(waiters)]
        time.sleep(2)  # they have all looked the lead up and are waiting now
        started = time.monotonic()
        funnels = httpx.get(
            f"http://127.0.0.1:{port}/funnels",
            headers={"Authorization": f"Bearer {MIA}"},
            timeout=20,
        )
        funnels_took = time.monotonic() - started
        answers = [f.result() for f in waiting]
    assert funnels.status_code == 200
    # held threads would keep it waiting until the waiters give up (≥ 4 s from here);
    # the margin below that is for a busy machine (a parallel test run)
    assert funnels_took < 2.0, funnels_took
    assert {status for status, _ in answers} == {404}, answers
    assert min(elapsed for _, elapsed in answers) >= 5.9, answers
