"""Server-Sent Events at scale on a real server: memory, idle CPU and delivery latency.

LeadLedger is served by uvicorn in a subprocess (``bench/serve_app.py:leadledger_app``:
embedded SQLite, projector and process managers inside, as ``leadledger serve``) over a
log of large events written to the store directly (default 60 leads of 250 KB: 15 MB).
Measured on the server process with psutil:

1. RSS before any subscriber, at its peak while S subscribers (default 100) replay the
   log from ``after=0``, once they have all caught up, and after they have closed;
2. the CPU share of the server while I subscribers (default 1,000) sit idle at the head
   for W seconds (default 10);
3. the delivery latency of a new event (``POST /leads``) to every one of those I
   subscribers, over D events (default 20): p50, p99 and max over all (event,
   subscriber) pairs, from the moment the POST was sent.

Any non-2xx answer stops the run with a non-zero exit. Clients are raw asyncio streams
(``bench/streamlib.py``), so a thousand cost the client little. Run from the project root:

    .venv/bin/python -m bench.bench_stream
    .venv/bin/python -m bench.bench_stream --subscribers 20 --idle 200 --window 3
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson
from psutil import Process

from bench import benchlib
from bench import streamlib as sl


def _new_lead(i: int) -> dict[str, str]:
    return {
        "funnel": "out_of_court",
        "title": f"Delivery probe {i}",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "bench.top",
    }


async def replay(port: int, token: str, server: Process, count: int, head: int) -> list[int]:
    """[peak RSS while replaying, RSS when all caught up, RSS after they closed]."""
    async with sl.PeakRss(server) as peak:
        subscribers = await sl.subscribe(port, token, count)
        started = time.monotonic()
        try:
            await asyncio.gather(*(s.until(head, 600) for s in subscribers))
            caught_up = sl.rss(server)
        finally:
            await sl.close_all(subscribers)
    print(f"  {count} subscribers replayed {head} events in {time.monotonic() - started:.1f} s")
    await asyncio.sleep(1.0)
    return [peak.value, caught_up, sl.rss(server)]


async def idle_and_deliver(
    port: int, token: str, server: Process, count: int, window: float, deliveries: int
) -> tuple[float, list[float], list[float]]:
    """(CPU share while idle, latencies of every (event, subscriber), time until the last
    subscriber had each event)."""
    _, body = await sl.request(port, "GET", "/events?after=0&limit=1", token)
    head = orjson.loads(body)["head"]
    subscribers = await sl.subscribe(port, token, count, after=head)
    try:
        await asyncio.sleep(1.0)
        started, cpu = time.monotonic(), sl.cpu_seconds(server)
        await asyncio.sleep(window)
        share = (sl.cpu_seconds(server) - cpu) / (time.monotonic() - started)
        latencies: list[float] = []
        last: list[float] = []
        for i in range(deliveries):
            sent = time.monotonic()
            _, created = await sl.request(port, "POST", "/leads", token, _new_lead(i))
            position = orjson.loads(created)["position"]
            arrived = await asyncio.gather(*(s.until(position, 30) for s in subscribers))
            latencies.extend(t - sent for t in arrived)
            last.append(max(arrived) - sent)
            await asyncio.sleep(0.1)
    finally:
        await sl.close_all(subscribers)
    return share, latencies, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=60, help="large events in the log")
    parser.add_argument("--event-bytes", type=int, default=250_000, help="size of each")
    parser.add_argument("--subscribers", type=int, default=100, help="replaying from 0")
    parser.add_argument("--idle", type=int, default=1_000, help="idle subscribers")
    parser.add_argument("--window", type=float, default=10.0, help="idle CPU window, s")
    parser.add_argument("--deliveries", type=int, default=20, help="new events to deliver")
    args = parser.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle * 2 + 200
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))

    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    try:
        env = sl.server_env(workdir)
        head = sl.seed_large_log(env["LEADLEDGER_EVENT_STORE_URL"], args.events, args.event_bytes)
        log_mb = args.events * args.event_bytes / 2**20
        token = sl.top_token()
        with sl.served(env, workdir / "server.log") as (port, server):
            before = sl.settle_rss(server)
            peak, caught_up, after = asyncio.run(
                replay(port, token, server, args.subscribers, head)
            )
            share, latencies, last = asyncio.run(
                idle_and_deliver(port, token, server, args.idle, args.window, args.deliveries)
            )
    except sl.NotOk as refused:
        print(f"FAILED: {refused}", file=sys.stderr)
        return 1
    finally:
        benchlib.remove_tree(workdir)

    s = args.subscribers
    print()
    print(
        benchlib.table(
            f"Server RSS, {s} SSE subscribers replaying {head} events ({log_mb:.1f} MB) "
            "from after=0",
            ("when", "RSS MiB", "vs before MiB", "per subscriber MiB"),
            [
                ("before", benchlib.mib(before), "", ""),
                *(
                    (
                        name,
                        benchlib.mib(value),
                        benchlib.mib(value - before),
                        f"{(value - before) / s / 2**20:.2f}",
                    )
                    for name, value in (
                        ("peak while replaying", peak),
                        ("all caught up", caught_up),
                        ("after they closed", after),
                    )
                ),
            ],
        )
    )
    print(
        benchlib.table(
            f"{args.idle} idle SSE subscribers",
            ("what", "value"),
            [
                (f"server CPU over {args.window:g} s, cores", f"{share:.4f}"),
                *(
                    (f"delivery of a new event, {name} ms", benchlib.ms(value))
                    for name, value in (
                        ("p50", benchlib.percentile(latencies, 50)),
                        ("p99", benchlib.percentile(latencies, 99)),
                        ("max", max(latencies)),
                        ("p50 until the last subscriber has it", benchlib.percentile(last, 50)),
                    )
                ),
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
