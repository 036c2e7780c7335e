"""The event stream's costs on a real server: LeadLedger served by uvicorn in a
subprocess (embedded SQLite, projector and process managers inside), measured from the
outside with psutil.

- Server-Sent Events subscribers replaying a log of large events from the start hold a
  bounded amount of memory each, and give it back when they leave (RSS stops growing
  from one round of subscribers to the next).
- A thousand idle subscribers cost the server (almost) no CPU, and a new event still
  reaches every one of them.
- ``min_position`` beyond the log's head is refused at once; requests waiting for a
  position that exists but is not projected yet leave the other endpoints fast.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from psutil import Process

from bench import streamlib as sl

MIB = 2**20


@pytest.fixture
def token() -> str:
    return sl.top_token()


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for a thousand connections on both ends (the server inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if wanted < 2200:
        pytest.skip(f"the open-file limit ({hard}) is too low for a thousand connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _replay(port: int, token: str, server: Process, count: int, head: int) -> int:
    """``count`` subscribers replay the log from the start; the server's peak RSS."""
    subscribers = await sl.subscribe(port, token, count, keep_ids=True)
    async with sl.PeakRss(server) as peak:
        try:
            await asyncio.gather(*(s.until(head, 120) for s in subscribers))
        finally:
            await sl.close_all(subscribers)
    for subscriber in subscribers:
        assert subscriber.ids == list(range(1, head + 1))
    return peak.value


@pytest.mark.slow
def test_subscribers_replaying_large_events_hold_little_memory_and_give_it_back(
    tmp_path: Path, token: str
) -> None:
    env = sl.server_env(tmp_path)
    # 40 events of 300 KB: the whole log is 12 MB, any subscriber reading it in one piece
    # (or a few subscribers holding a large part of it) breaks the bound at once
    head = sl.seed_large_log(env["LEADLEDGER_EVENT_STORE_URL"], 40, 300_000)
    subscribers = 20
    with sl.served(env, tmp_path / "server.log") as (port, server):
        baseline = sl.settle_rss(server)
        after_rounds = []
        peaks = []
        for _ in range(3):
            peaks.append(asyncio.run(_replay(port, token, server, subscribers, head)))
            after_rounds.append(sl.settle_rss(server))
    growth_per_subscriber = (max(peaks) - baseline) / subscribers
    assert growth_per_subscriber < 5 * MIB, (baseline, peaks, after_rounds)
    # what the first round took is reused, not taken again: RSS does not keep growing
    # (a few MB move with the C heap's fragmentation; each subscriber's 12 MB would show)
    drift = after_rounds[-1] - after_rounds[0]
    assert drift < 1.5 * MIB * subscribers, (baseline, peaks, after_rounds)
    assert after_rounds[-1] - baseline < 3 * MIB * subscribers, (baseline, after_rounds)


async def _idle(port: int, token: str, server: Process, count: int, window: float) -> float:
    """``count`` subscribers at the head, idle for ``window`` s: the server's CPU share;
    then a new event must reach every one of them."""
    _, body = await sl.request(port, "GET", "/events?after=0&limit=1", token)
    head = orjson.loads(body)["head"]
    subscribers = await sl.subscribe(port, token, count, after=head)
    try:
        await asyncio.sleep(1.0)  # the last connections settle
        started, cpu = time.monotonic(), sl.cpu_seconds(server)
        await asyncio.sleep(window)
        share = (sl.cpu_seconds(server) - cpu) / (time.monotonic() - started)
        _, created = await sl.request(
            port,
            "POST",
            "/leads",
            token,
            {
                "funnel": "out_of_court",
                "title": "One more lead",
                "company_name": "Northwind LLC",
                "source": "website",
                "manager": "bench.top",
            },
        )
        position = orjson.loads(created)["position"]
        await asyncio.gather(*(s.until(position, 30) for s in subscribers))
    finally:
        await sl.close_all(subscribers)
    return share


@pytest.mark.slow
@pytest.mark.usefixtures("many_files")
def test_a_thousand_idle_subscribers_cost_almost_no_cpu_and_all_get_new_events(
    tmp_path: Path, token: str
) -> None:
    env = sl.server_env(tmp_path)
    sl.seed_large_log(env["LEADLEDGER_EVENT_STORE_URL"], 3, 1_000)
    with sl.served(env, tmp_path / "server.log") as (port, server):
        share = asyncio.run(_idle(port, token, server, 1_000, 10.0))
    assert share < 0.05, f"1,000 idle subscribers used {share:.3f} of a core"


def test_min_position_beyond_the_head_is_refused_at_once(tmp_path: Path, token: str) -> None:
    env = sl.server_env(tmp_path)
    head = sl.seed_large_log(env["LEADLEDGER_EVENT_STORE_URL"], 3, 1_000)

    async def ask() -> tuple[float, bytes]:
        started = time.monotonic()
        with pytest.raises(sl.NotOk) as refused:
            await sl.request(port, "GET", f"/leads?min_position={head + 1}", token)
        return time.monotonic() - started, str(refused.value).encode()

    with sl.served(env, tmp_path / "server.log") as (port, _):
        asyncio.run(ask())  # the first request warms up what is built on first use
        elapsed, refusal = asyncio.run(ask())
    assert elapsed < 0.1, elapsed
    assert b"answered 422" in refusal
    assert b"min_position" in refusal
    assert f"ends at {head}".encode() in refusal


async def _wait_and_serve(port: int, token: str, waiters: int) -> tuple[list[float], list[int]]:
    """``waiters`` requests wait for an unprojected position while /funnels is asked; the
    /funnels latencies and the waiters' statuses."""
    _, created = await sl.request(
        port,
        "POST",
        "/leads",
        token,
        {
            "funnel": "out_of_court",
            "title": "Not projected yet",
            "company_name": "Northwind LLC",
            "source": "website",
            "manager": "bench.top",
        },
    )
    position = orjson.loads(created)["position"]

    async def wait() -> int:
        try:
            await sl.request(port, "GET", f"/leads?min_position={position}", token)
        except sl.NotOk as refused:
            return refused.status
        return 200

    waiting = [asyncio.create_task(wait()) for _ in range(waiters)]
    await asyncio.sleep(0.5)  # every waiter is in
    latencies = []
    for _ in range(10):
        started = time.monotonic()
        await sl.request(port, "GET", "/funnels", token)
        latencies.append(time.monotonic() - started)
    assert not any(w.done() for w in waiting), "the waiters gave up before the read wait"
    return latencies, list(await asyncio.gather(*waiting))


def test_requests_waiting_for_the_read_models_hold_no_worker(tmp_path: Path, token: str) -> None:
    # no projector runs in this server: a stored event stays unprojected
    env = sl.server_env(tmp_path, read_wait_seconds="3")
    with sl.served(env, tmp_path / "server.log", factory="leadledger_app_no_projector") as (
        port,
        _,
    ):
        latencies, statuses = asyncio.run(_wait_and_serve(port, token, 50))
    assert max(latencies) < 0.5, latencies
    assert statuses == [503] * 50
