"""The hash chain's cost (issue 6): appends with and without the chain, and verify speed.

For each back-end (a SQLite file, a fresh PostgreSQL schema), two event stores side by
side: one with the chain (the default), one with ``recorder.chain_enabled = False`` (the
baseline: the library's append and nothing else). The two take turns append by append so
that drift on the machine hits both alike. Measured at the recorder
(``recorder.insert_events``), so the percentages are of the bare storage cost — through
``EventStore.append`` (JSON encoding) or a command handler they are smaller.

- single-event appends (one transaction per event) and 100-event batches: µs per event;
- ``seal_existing`` and ``verify`` over a larger store: events per second. On PostgreSQL
  the events are COPY-ed straight into the table (no chain rows), then sealed; on SQLite
  they are appended in 1,000-event batches with the chain on.

Schemas are dropped and files removed at the end. Run from the project root:

    .venv/bin/python -m bench.bench_chain
    .venv/bin/python -m bench.bench_chain --singles 500 --batches 20 --verify-events 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from aggregates.base import CommandMeta
from aggregates.lead import CreateLead, create
from bench import benchlib
from event_store import EventStore, NewEvent, open_event_store, seal_existing, verify
from leadledger.settings import DEFAULT_FUNNELS_FILE
from leadledger.wiring import event_codec, load_funnels

SCHEMA_PREFIX = "bench_chain_"
TARGET_OVERHEAD = 0.15

STATE = json.dumps(
    {
        "actor": "anna.sales",
        "at": "2026-01-05T09:00:00Z",
        "command_id": "0b6c5d6e-1f0a-4c1e-9a51-0c3c1f7d2b11",
        "funnel": "out_of_court",
        "stage": "qualification",
        "title": "Appraisal of a warehouse",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "boris",
        "amount": "1234.50",
    }
).encode()
TOPIC = "aggregates.lead:LeadCreated"


FUNNELS = load_funnels(DEFAULT_FUNNELS_FILE)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _lead_created(n: int) -> list[NewEvent]:
    """``n`` LeadCreated events of new leads, decided by the Lead decider."""
    out = []
    for _ in range(n):
        lead_id = uuid4()
        command = CreateLead(
            lead_id=lead_id,
            funnel="out_of_court",
            title="Appraisal of a warehouse",
            company_name="Northwind LLC",
            source="website",
            manager="boris",
        )
        meta = CommandMeta(actor="anna.sales", at=T0, command_id=uuid4())
        out.append(NewEvent(lead_id, 1, create(command, FUNNELS, meta, company_known=False)))
    return out


def _events(streams: int, versions: int = 1) -> list[StoredEvent]:
    return [
        StoredEvent(sid, v, TOPIC, STATE)
        for sid in (uuid4() for _ in range(streams))
        for v in range(1, versions + 1)
    ]


@contextmanager
def store_urls(backend: str, postgres_url: str, workdir: Path, n: int) -> Iterator[list[str]]:
    if backend == "sqlite":
        yield [f"sqlite:///{workdir}/events{i}.sqlite" for i in range(n)]
        return
    schemas = [benchlib.create_schema(postgres_url, SCHEMA_PREFIX) for _ in range(n)]
    try:
        yield [benchlib.schema_url(postgres_url, s) for s in schemas]
    finally:
        for s in schemas:
            benchlib.drop_schema(postgres_url, s)


def append_costs(
    with_chain: EventStore, without: EventStore, appends: int, batch: int, level: str
) -> tuple[float, float]:
    """µs per event (with chain, without): the two stores take turns append by append (the
    order flipping every append), so that disk and machine noise hit both alike; each is
    the median over rounds of 50 appends of the round's mean. ``level``: "store" appends
    Lead decider events with ``EventStore.append`` (JSON encoding included, as a command
    does); "recorder" inserts ready StoredEvents with ``recorder.insert_events``."""

    def prepared(store: EventStore) -> Callable[[], object]:
        """One append, its events built beforehand (building them is not measured)."""
        if level == "store":
            new_events = _lead_created(batch)
            return lambda: store.append(new_events)
        stored = _events(batch)
        return lambda: store.recorder.insert_events(stored)

    stores = {True: with_chain, False: without}
    clock = time.perf_counter
    rounds: dict[bool, list[float]] = {True: [], False: []}
    spent = {True: 0.0, False: 0.0}
    for i in range(appends):
        for chained in (True, False) if i % 2 else (False, True):
            call = prepared(stores[chained])
            started = clock()
            call()
            spent[chained] += clock() - started
        if (i + 1) % 50 == 0:
            for chained in (True, False):
                rounds[chained].append(spent[chained] / (50 * batch) * 1e6)
                spent[chained] = 0.0
    return statistics.median(rounds[True]), statistics.median(rounds[False])


def copy_events(url: str, store: EventStore, events: int) -> None:
    """``events`` events COPY-ed into the store's table (no chain rows: to be sealed)."""
    schema = url.rsplit("schema=", 1)[1]
    base = url.split("?", 1)[0]
    with psycopg.connect(base) as conn, conn.cursor() as cur:
        with cur.copy(
            sql.SQL(
                "COPY {} (originator_id, originator_version, topic, state, notification_id) "
                "FROM STDIN"
            ).format(sql.Identifier(schema, "stored_events"))
        ) as copy:
            for position in range(1, events + 1):
                copy.write_row((uuid4(), 1, TOPIC, STATE, position))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
            [f'"{schema}".stored_events', events],
        )
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, "stored_events")))


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    codec = event_codec()
    with store_urls(backend, args.postgres_url, workdir, 3) as urls:
        with_chain = open_event_store(urls[0], codec)
        without = open_event_store(urls[1], codec)
        without.recorder.chain_enabled = False  # type: ignore[attr-defined]
        big = open_event_store(urls[2], codec)
        try:
            # warm up both (connections, prepared statements, page cache)
            append_costs(with_chain, without, 100, 1, "store")
            costs = {
                (level, batch): append_costs(
                    with_chain, without, args.singles if batch == 1 else args.batches, batch, level
                )
                for level in ("store", "recorder")
                for batch in (1, 100)
            }
            report = verify(with_chain)
            assert report.ok, report

            if backend == "postgres":
                copy_events(urls[2], big, args.verify_events)
                started = time.perf_counter()
                sealed = seal_existing(big)
                seal_seconds = time.perf_counter() - started
                assert sealed == args.verify_events, sealed
            else:
                started = time.perf_counter()
                for _ in range(args.verify_events // 1000):
                    big.recorder.insert_events(_events(1000))
                seal_seconds = time.perf_counter() - started
                sealed = args.verify_events // 1000 * 1000
            verify(big)  # warm the page cache
            runs = [verify(big) for _ in range(3)]
            best = max(runs, key=lambda r: r.events_per_second)
            assert best.ok, best
            assert best.events == sealed, best
        finally:
            with_chain.close()
            without.close()
            big.close()
    return {
        "costs": costs,
        "sealed": sealed,
        "seal_rate": sealed / seal_seconds,
        "verify_rate": best.events_per_second,
        "verify_seconds": best.seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--singles", type=int, default=3000, help="single-event appends per store (default 3000)"
    )
    p.add_argument(
        "--batches", type=int, default=500, help="100-event appends per store (default 500)"
    )
    p.add_argument(
        "--verify-events",
        type=int,
        default=200_000,
        help="events in the store that is sealed and verified (default 200,000)",
    )
    p.add_argument("--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL)
    p.add_argument("--backends", default="sqlite,postgres")
    args = p.parse_args(argv)

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_chain_") as tmp:
        for backend in args.backends.split(","):
            results[backend] = run_backend(backend, args, Path(tmp))

    rows = []
    for backend, r in results.items():
        for (level, batch), (on, off) in r["costs"].items():
            extra = on / off - 1
            rows.append(
                [
                    backend,
                    "EventStore.append" if level == "store" else "recorder.insert_events",
                    "single-event" if batch == 1 else "100-event batches",
                    f"{off:.1f}",
                    f"{on:.1f}",
                    f"{extra * 100:+.1f}%",
                    "yes" if extra <= TARGET_OVERHEAD else "NO",
                ]
            )
    print(
        benchlib.table(
            "Append cost, µs per event (stores taking turns, same run)",
            ["backend", "through", "appends", "without chain", "with chain", "extra", "≤ 15%"],
            rows,
        )
    )
    print(
        benchlib.table(
            "Sealing and verifying",
            ["backend", "events", "seal events/s", "verify events/s", "verify s"],
            [
                [
                    backend,
                    benchlib.count(r["sealed"]),
                    benchlib.count(r["seal_rate"]),
                    benchlib.count(r["verify_rate"]),
                    f"{r['verify_seconds']:.2f}",
                ]
                for backend, r in results.items()
            ],
        )
    )
    print(
        "SQLite 'seal events/s' is the rate of chained 1,000-event appends that built the "
        "store; PostgreSQL's is seal_existing over COPY-ed events."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
