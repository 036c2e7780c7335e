"""Relay to Kafka: throughput to the broker (target ≥ 50,000 events/s) and commit →
published lag at a steady command rate (target p99 < 100 ms at 1,000 commands/s), for
each Kafka client the relay supports (``relay.kafka.connect``: kafka-python, confluent).

A real Kafka-compatible broker (Tansu, in memory, ``tests.kafka_broker.Broker``) runs on
a loopback port for the whole run.

Part 1, throughput, on PostgreSQL. Setup (in a child process): ``--events`` (200,000)
lead events are decided by the Lead decider and COPY-ed into ``stored_events`` of a fresh
PostgreSQL schema (as ``bench_projection`` does), then VACUUM ANALYZE. Measured in this
process:

-. reading alone, for reference: ``store.read_rows`` in pages of 5,000 over the log;
a. mapping: ``Publication.messages`` of those rows, page by page;
b. the kafka-python ceiling (baseline): ``KafkaSink.publish`` of the pre-built messages in
   pages of 5,000 (``acks=all``, one request in flight) to topics of their own;
b2. the same messages through ``ConfluentSink.publish`` (librdkafka, idempotent), pages
   of 5,000, to topics of their own;
c. the whole relay, for each of ``--clients`` and ``--page-sizes``: ``Relay.catch_up()``
   (``depth=2``: the next page is read and mapped while the previous one is on its way)
   from position 0 to a fresh topic prefix (store read + mapping + publish + position
   write); its rate is also given as a ratio to (b).

Every sink is connected, its topics created (``relay.kafka.ensure_topics``) and their
partition metadata fetched before the clock starts, for (b), (b2) and (c) alike.

Part 2, lag, once per ``--lag-store`` (sqlite: the embedded default, a file
``<workdir>/lag-<client>.sqlite``; postgres: a fresh schema) and ``--lag-clients``: the
relay runs as its own OS process (``python -m leadledger.cli relay``,
``LEADLEDGER_KAFKA_CLIENT=<client>``, ``LEADLEDGER_RELAY_POLL_SECONDS=0.02``). Once it
has published a first lead, ``--threads`` threads (default 1 on SQLite, which serialises
writers, and 16 on PostgreSQL, where a command mostly waits for its commit: 4 kept only
~430/s) create leads through ``commands.leads.create_lead`` at ``--rate`` (1,000/s in
total; each thread keeps its share of one global schedule) for
``--seconds`` (20), recording when each append returned and its position. A monitor
process reads ``ProcessStore.position("relay:kafka")`` every 2 ms and records when it
first reached each value. A command's lag = the moment the relay's position first covered
its position - the moment its append returned.

Schemas and files are removed, the relay process stopped (SIGTERM) and the broker closed
at the end. Run from the project root:

    .venv/bin/python -m bench.bench_relay                     # 200,000 events; 1,000/s for 20 s
    .venv/bin/python -m bench.bench_relay --events 20000 --seconds 5 --lag-clients confluent
"""

from __future__ import annotations

import argparse
import bisect
import concurrent.futures
import gc
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from aggregates import lead
from bench import benchlib
from bench.bench_projection import load_history, vacuum_analyze
from commands.context import CommandContext
from commands.leads import create_lead
from event_store import open_event_store
from event_store.recorders import NotificationRow
from leadledger.demo import MANAGERS, TITLES
from leadledger.settings import Settings
from leadledger.wiring import CommandSide, build_command_side, event_codec
from process_managers.state import ProcessStore
from relay.kafka import KAFKA_CLIENTS, ConfluentSink, KafkaSink, connect
from relay.publishing import Message, Publication
from relay.relay import RELAY_POSITION, Relay, tune_gc
from tests.kafka_broker import Broker

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PREFIX = "bench_relay_"
TARGET_EVENTS_PER_S = 50_000
TARGET_P99 = 0.100
TARGET_RATE_SHARE = 0.95
PAGE = 5_000
DEPTH = 2
PARTITIONS = 3
LAG_STORES = ("sqlite", "postgres")
DEFAULT_THREADS = {"sqlite": 1, "postgres": 16}
START_TIMEOUT = 60.0
DRAIN_TIMEOUT = 60.0


def rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else float("nan")


def prefix(what: str) -> str:
    return f"bench-{what}-{uuid.uuid4().hex[:8]}"


# --- part 1: throughput -----------------------------------------------------------------


def load_log(args: argparse.Namespace, schema: str) -> dict[str, Any]:
    """The history COPY-ed in a child process (its generation does not count here)."""
    leads = args.leads or max(100, args.events * 3 // 20)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(load_history, args.postgres_url, schema, args.events, leads, args.seed)
        return future.result()


def connected_sink(
    client: str, bootstrap: str, publication: Publication
) -> KafkaSink | ConfluentSink:
    """A producer of ``client`` with its topics created and their partition metadata
    fetched, so that neither happens inside the timing."""
    sink = connect(client, bootstrap, partitions=PARTITIONS, replication_factor=1)
    sink.prepare(publication.topics)
    return sink


def reset_relay(postgres_url: str, schema: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE name = %s").format(
                sql.Identifier(schema, "leadledger_process_positions")
            ),
            [RELAY_POSITION],
        )


class Meter:
    """Wall time, this process's CPU (every thread) and the broker's CPU of a stage."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.seconds = 0.0
        self.cpu = 0.0
        self.broker_cpu = 0.0

    def _broker_cpu(self) -> float:
        process = self.broker.process
        return benchlib.process_cpu(process.pid) if process is not None else 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        wall, cpu, broker_cpu = time.perf_counter(), time.process_time(), self._broker_cpu()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.broker_cpu += self._broker_cpu() - broker_cpu


def publish_pages(
    client: str, broker: Broker, publication: Publication, pages: list[list[Message]]
) -> Meter:
    """``sink.publish`` of every page, one after another (each acknowledged before the
    next is sent), to ``publication``'s topics."""
    meter = Meter(broker)
    sink = connected_sink(client, broker.bootstrap, publication)
    try:
        with meter.measure():
            for page in pages:
                sink.publish(page)
    finally:
        sink.close()
    return meter


def measure_throughput(
    args: argparse.Namespace, broker: Broker, schema: str, url: str
) -> tuple[list[list[Any]], dict[str, Any]]:
    details: dict[str, Any] = {"best": {}}
    print("part 1: generating and loading the log ...", file=sys.stderr, flush=True)
    # The tables exist before the child COPYs into them.
    store = open_event_store(url, event_codec())
    try:
        ProcessStore(store)
        loaded = load_log(args, schema)
        details["setup"] = loaded["seconds"]
        details["state_bytes"] = loaded["state_bytes"]
        vacuum_analyze(args.postgres_url, schema)
        events = store.last_position()
        details["events"] = events

        print("part 1: read, map, publish ...", file=sys.stderr, flush=True)
        tune_gc()  # as `leadledger relay` does
        baseline_prefix = prefix("baseline")
        baseline_publication = Publication(store.codec, baseline_prefix)
        read, mapping = Meter(broker), Meter(broker)
        pages: list[list[Message]] = []
        position = 0
        while True:
            with read.measure():
                rows: list[NotificationRow] = store.read_rows(position, PAGE)
            if not rows:
                break
            with mapping.measure():
                pages.append(baseline_publication.messages(rows))
            position = rows[-1][0]
        mapped = sum(len(p) for p in pages)
        details["value_bytes"] = sum(len(m.value) for p in pages for m in p)

        publish = publish_pages("kafka-python", broker, baseline_publication, pages)
        baseline = rate(mapped, publish.seconds)
        rows_out: list[list[Any]] = [
            stage_row("read_rows alone, pages of 5,000", mapped, read, None),
            stage_row("(a) Publication.messages (mapping)", mapped, mapping, None),
            stage_row("(b) KafkaSink.publish, pages of 5,000", mapped, publish, None),
        ]
        if "confluent" in args.clients:
            confluent_prefix = prefix("confluent")
            confluent_publication = Publication(store.codec, confluent_prefix)
            renamed = [
                [
                    m._replace(topic=m.topic.replace(baseline_prefix, confluent_prefix, 1))
                    for m in page
                ]
                for page in pages
            ]
            del pages
            other = publish_pages("confluent", broker, confluent_publication, renamed)
            rows_out.append(
                stage_row("(b2) ConfluentSink.publish, pages of 5,000", mapped, other, baseline)
            )
            del renamed
        else:
            del pages

        for client in args.clients:
            for page_size in args.page_sizes:
                print(
                    f"part 1: relay, {client}, pages of {page_size:,} ...",
                    file=sys.stderr,
                    flush=True,
                )
                reset_relay(args.postgres_url, schema)
                publication = Publication(store.codec, prefix(f"relay{page_size}"))
                sink = connected_sink(client, broker.bootstrap, publication)

                def connect_sink(
                    sink: KafkaSink | ConfluentSink = sink,
                ) -> KafkaSink | ConfluentSink:
                    return sink

                relay = Relay(store, publication, connect_sink, page_size=page_size, depth=DEPTH)
                whole = Meter(broker)
                try:
                    with whole.measure():
                        published = relay.catch_up()
                finally:
                    sink.close()
                if published != events or relay.position != events:
                    raise RuntimeError(f"relay published {published} of {events} events")
                rows_out.append(
                    stage_row(
                        f"(c) relay, {client}, pages of {page_size:,}", published, whole, baseline
                    )
                )
                per_s = rate(published, whole.seconds)
                details["best"][client] = max(details["best"].get(client, 0.0), per_s)
        return rows_out, details
    finally:
        store.close()


def stage_row(name: str, events: int, meter: Meter, baseline: float | None) -> list[Any]:
    per_s = rate(events, meter.seconds)
    return [
        name,
        benchlib.count(events),
        f"{meter.seconds:.2f}",
        benchlib.count(per_s),
        f"{per_s / TARGET_EVENTS_PER_S:.2f}x",
        "-" if baseline is None else f"{per_s / baseline:.2f}x",
        f"{meter.cpu * 1e6 / max(1, events):.1f}",
        f"{meter.broker_cpu * 1e6 / max(1, events):.1f}",
    ]


# --- part 2: lag ------------------------------------------------------------------------


@contextmanager
def relay_process(
    event_store_url: str,
    bootstrap: str,
    client: str,
    topic_prefix: str,
    poll: float,
    workdir: Path,
) -> Iterator[subprocess.Popen[bytes]]:
    """``leadledger relay`` on the event store; stopped (SIGTERM) on exit."""
    env = {
        "LEADLEDGER_EVENT_STORE_URL": event_store_url,
        "LEADLEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LEADLEDGER_KAFKA_CLIENT": client,
        "LEADLEDGER_KAFKA_TOPIC_PREFIX": topic_prefix,
        "LEADLEDGER_RELAY_POLL_SECONDS": str(poll),
        "LEADLEDGER_RELAY_PAGE_SIZE": str(PAGE),
        "LEADLEDGER_DUCKDB_PATH": str(workdir / "unused.duckdb"),
    }
    with benchlib.leadledger_command(["relay"], env, workdir / "relay.log", ROOT) as proc:
        yield proc


def relay_log(workdir: Path, lines: int = 20) -> str:
    log = workdir / "relay.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:])


def watch_positions(
    url: str, interval: float, stop: Any, ready: Any, current: Any, out: Any
) -> None:  # pragma: no cover - runs in the monitor's own process
    """The monitor's process: reads the relay's position every ``interval``, notes when it
    first reached each value, and sends (times, values, polls) back when ``stop`` is set."""
    # opened before the relay's process starts (``ready``): opening a store runs its
    # CREATE ... IF NOT EXISTS statements, which PostgreSQL refuses ("tuple concurrently
    # updated") when two processes run them at once
    store = open_event_store(url, event_codec())
    ready.set()
    try:
        positions = ProcessStore(store)
        times: list[float] = []
        values: list[int] = []
        polls, last = 0, -1
        while not stop.is_set():
            value = positions.position(RELAY_POSITION)
            now = time.perf_counter()
            polls += 1
            if value > last:
                times.append(now)
                values.append(value)
                last = current.value = value
            time.sleep(interval)
        out.send((times, values, polls))
    finally:
        store.close()


class Monitor:
    """Reads the relay's position every ``interval`` and notes when it first reached
    each value, in a process of its own: in the driving process its thread would wait for
    the sender threads' interpreter lock and see the relay's moves late (``perf_counter``
    is the system's monotonic clock, the same in both processes)."""

    def __init__(self, url: str, interval: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.times: list[float] = []
        self.values: list[int] = []
        self.polls = 0
        self._stop = context.Event()
        self._ready = context.Event()
        self._current = context.Value("q", 0)
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=watch_positions,
            args=(url, interval, self._stop, self._ready, self._current, send),
            name="relay-monitor",
            daemon=True,
        )

    @property
    def current(self) -> int:
        value: int = self._current.value
        return value

    def start(self) -> None:
        """Start the monitor's process; return once it has opened its store."""
        self._process.start()
        if not self._ready.wait(60):
            raise RuntimeError("the relay's position monitor did not start in 60 s")

    def stop(self) -> None:
        self._stop.set()
        if self._receive.poll(30):
            self.times, self.values, self.polls = self._receive.recv()
        self._process.join(timeout=5)

    def covered_at(self, position: int) -> float | None:
        """When the relay's position was first seen at or past ``position``."""
        index = bisect.bisect_left(self.values, position)
        return self.times[index] if index < len(self.values) else None


@dataclass
class Commands:
    committed: list[tuple[float, int]] = field(default_factory=list)
    """(when the append returned, position of the lead's event)"""
    durations: list[float] = field(default_factory=list)
    behind: list[float] = field(default_factory=list)
    """How late each command started against its slot in the schedule."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_command(n: int) -> lead.CreateLead:
    return lead.CreateLead(
        lead_id=uuid.uuid4(),
        funnel="out_of_court",
        title=TITLES[n % len(TITLES)],
        company_name=f"Relay Bench {n} LLC",
        source="website",
        manager=MANAGERS[n % len(MANAGERS)],
        description="Lead created by the relay benchmark",
    )


def drive(
    side: CommandSide, index: int, threads: int, total: int, start: float, per_s: float
) -> Commands:
    """Thread ``index`` issues commands index, index + threads, ... at their slots (at
    once when late), and none after the schedule's end: when the commands cannot keep
    the rate, fewer are sent and the run still lasts ``total / per_s`` seconds."""
    out = Commands()
    end = start + total / per_s
    for n in range(index, total, threads):
        slot = start + n / per_s
        if time.perf_counter() >= end:
            break
        wait = slot - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        began = time.perf_counter()
        result = create_lead(
            side.store,
            side.funnels,
            create_command(n),
            CommandContext.new(actor="anna.sales", clock=side.clock),
        )
        done = time.perf_counter()
        out.committed.append((done, result.position))
        out.durations.append(done - began)
        out.behind.append(max(0.0, began - slot))
    return out


def wait_until(
    monitor: Monitor, position: int, proc: subprocess.Popen[bytes], timeout: float, workdir: Path
) -> None:
    deadline = time.perf_counter() + timeout
    while monitor.current < position:
        if proc.poll() is not None:
            raise RuntimeError(f"the relay exited ({proc.returncode}):\n{relay_log(workdir, 30)}")
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"the relay did not reach position {position} in {timeout:.0f} s "
                f"(at {monitor.current}):\n{relay_log(workdir, 30)}"
            )
        time.sleep(0.01)


@contextmanager
def lag_store(args: argparse.Namespace, kind: str, client: str, workdir: Path) -> Iterator[str]:
    """A fresh event store for one lag run: a SQLite file or a PostgreSQL schema."""
    if kind == "sqlite":
        path = workdir / f"lag-{client}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in workdir.glob(f"{path.name}*"):
                leftover.unlink(missing_ok=True)
        return
    schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
    try:
        yield benchlib.schema_url(args.postgres_url, schema)
    finally:
        benchlib.drop_schema(args.postgres_url, schema)


def measure_lag(
    args: argparse.Namespace, broker: Broker, workdir: Path, kind: str, client: str
) -> dict[str, Any]:
    threads = args.threads or DEFAULT_THREADS[kind]
    out: dict[str, Any] = {"store": kind, "client": client, "threads": threads}
    with lag_store(args, kind, client, workdir) as url:
        side = build_command_side(
            Settings(event_store_url=url, duckdb_path=workdir / "unused.duckdb")
        )
        monitor_store = open_event_store(url, event_codec())
        try:
            ProcessStore(monitor_store)  # creates the tables before the relay starts
            monitor = Monitor(url, args.monitor_ms / 1000)
            monitor.start()
            try:
                with relay_process(
                    url,
                    broker.bootstrap,
                    client,
                    prefix("lag"),
                    args.relay_poll_seconds,
                    workdir,
                ) as proc:
                    print(
                        f"part 2 ({kind}, {client}): waiting for the relay ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    started = time.perf_counter()
                    first = create_lead(
                        side.store,
                        side.funnels,
                        create_command(-1),
                        CommandContext.new(actor="anna.sales", clock=side.clock),
                    )
                    wait_until(monitor, first.position, proc, START_TIMEOUT, workdir)
                    out["startup"] = time.perf_counter() - started

                    total = int(args.rate * args.seconds)
                    print(
                        f"part 2 ({kind}, {client}): {total:,} commands at {args.rate:,.0f}/s "
                        f"from {threads} thread(s) ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    cpu_before = (benchlib.process_cpu(proc.pid), time.process_time())
                    start = time.perf_counter() + 0.05
                    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                        parts = list(
                            pool.map(
                                lambda i: drive(side, i, threads, total, start, args.rate),
                                range(threads),
                            )
                        )
                    ended = time.perf_counter()
                    last = side.store.last_position()
                    wait_until(monitor, last, proc, DRAIN_TIMEOUT, workdir)
                    out["relay_cpu"] = benchlib.process_cpu(proc.pid) - cpu_before[0]
                    out["driver_cpu"] = time.process_time() - cpu_before[1]
            finally:
                monitor.stop()
        finally:
            monitor_store.close()
            side.close()

    committed = [c for p in parts for c in p.committed]
    lags: list[float] = []
    missing = 0
    for at, position in committed:
        seen = monitor.covered_at(position)
        if seen is None:
            missing += 1
        else:
            lags.append(seen - at)
    last_commit = max(at for at, _ in committed)
    out.update(
        commands=len(committed),
        lags=lags,
        missing=missing,
        wall=max(last_commit - start, total / args.rate),
        send_wall=ended - start,
        durations=[d for p in parts for d in p.durations],
        behind=[b for p in parts for b in p.behind],
        polls=monitor.polls,
        moves=len(monitor.values),
        events=last,
    )
    return out


# --- main -------------------------------------------------------------------------------


def latency_row(name: str, samples: Sequence[float]) -> list[Any]:
    return [
        name,
        len(samples),
        benchlib.ms(benchlib.percentile(samples, 50)),
        benchlib.ms(benchlib.percentile(samples, 90)),
        benchlib.ms(benchlib.percentile(samples, 99)),
        benchlib.ms(max(samples)) if samples else "-",
    ]


def page_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive page sizes")
    return sizes


def lag_tables(args: argparse.Namespace, lag: dict[str, Any]) -> tuple[str, list[list[Any]]]:
    """The lag table of one (store, client) run and its rows of the Targets table."""
    samples = lag["lags"]
    p99 = benchlib.percentile(samples, 99)
    achieved = lag["commands"] / lag["wall"]
    ok = lag["missing"] == 0 and bool(samples) and p99 < TARGET_P99
    reached = achieved >= TARGET_RATE_SHARE * args.rate
    what = f"{lag['store']}, {lag['client']}"
    table = benchlib.table(
        f"Commit → published lag on {lag['store']}, relay on {lag['client']} polling every "
        f"{args.relay_poll_seconds:g} s, {args.rate:,.0f} commands/s asked "
        f"from {lag['threads']} thread(s)",
        ("what", "commands", "p50 ms", "p90 ms", "p99 ms", "max ms"),
        [
            latency_row("append returned → relay position covers it", samples),
            latency_row("the create_lead command itself", lag["durations"]),
            latency_row("command start behind its schedule", lag["behind"]),
        ],
    )
    rows: list[list[Any]] = [
        [
            f"p99 lag, {what} (at {achieved:,.0f} commands/s)",
            f"< {TARGET_P99 * 1000:.0f} ms",
            f"{benchlib.ms(p99)} ms",
            "PASS" if ok else "FAIL",
        ],
        [f"commands never published, {what}", "0", lag["missing"], ""],
        [
            f"achieved command rate, {what}",
            f">= {TARGET_RATE_SHARE * args.rate:,.0f}/s",
            f"{achieved:,.0f}/s",
            "PASS" if reached else "FAIL (rate not reached: lag not shown at it)",
        ],
    ]
    return table, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="events in the log (part 1)")
    parser.add_argument("--leads", type=int, default=0, help="leads in it (0: 0.15 per event)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated history")
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=KAFKA_CLIENTS,
        default=list(KAFKA_CLIENTS),
        help="Kafka clients of the whole relay (c) in part 1",
    )
    parser.add_argument(
        "--page-sizes",
        type=page_sizes,
        default=[5_000, 20_000],
        help="relay page sizes measured in part 1 (comma-separated)",
    )
    parser.add_argument(
        "--lag-store",
        nargs="+",
        choices=LAG_STORES,
        default=["sqlite"],
        help="event stores of part 2 (sqlite: a file in the temporary directory)",
    )
    parser.add_argument(
        "--lag-clients",
        nargs="+",
        choices=KAFKA_CLIENTS,
        default=list(KAFKA_CLIENTS),
        help="LEADLEDGER_KAFKA_CLIENT of the relay process in part 2",
    )
    parser.add_argument("--rate", type=float, default=1_000.0, help="commands/s (part 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of commands")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads sending commands (0: 1 on sqlite, 16 on postgres)",
    )
    parser.add_argument(
        "--relay-poll-seconds",
        type=float,
        default=0.02,
        help="LEADLEDGER_RELAY_POLL_SECONDS of the relay process",
    )
    parser.add_argument("--monitor-ms", type=float, default=2.0, help="position read interval")
    parser.add_argument("--skip-throughput", action="store_true", help="part 2 only")
    parser.add_argument("--skip-lag", action="store_true", help="part 1 only")
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.threads < 0 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--events, --rate and --seconds must be positive, --threads not negative")

    load_before = os.getloadavg()
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench_relay_"))
    broker = Broker(workdir)
    throughput: list[list[Any]] = []
    details: dict[str, Any] = {}
    lags: list[dict[str, Any]] = []
    log_tail = ""
    try:
        if not args.skip_throughput:
            schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
            try:
                throughput, details = measure_throughput(
                    args, broker, schema, benchlib.schema_url(args.postgres_url, schema)
                )
            finally:
                benchlib.drop_schema(args.postgres_url, schema)
            gc.collect()  # part 1's producers disconnect now
        if not args.skip_lag:
            for kind in args.lag_store:
                for client in args.lag_clients:
                    lags.append(measure_lag(args, broker, workdir, kind, client))
    finally:
        log_tail = relay_log(workdir)
        broker.close()
        benchlib.remove_tree(workdir)
    load_after = os.getloadavg()

    targets: list[list[Any]] = []
    print()
    if throughput:
        print(
            benchlib.table(
                f"Relay throughput on PostgreSQL → Tansu, {details['events']:,} lead events",
                (
                    "stage",
                    "events",
                    "seconds",
                    "events/s",
                    "vs 50k",
                    "vs (b)",
                    "CPU here µs/ev",
                    "broker CPU µs/ev",
                ),
                throughput,
            )
        )
        print(
            f"log: {details['state_bytes'] / details['events']:.0f} bytes of stored state and "
            f"{details['value_bytes'] / details['events']:.0f} bytes of published JSON an "
            f"event; generated and COPY-ed in {details['setup']:.1f} s (not measured)\n"
        )
        for client, best in details["best"].items():
            targets.append(
                [
                    f"relay throughput, {client} (best page size)",
                    f">= {TARGET_EVENTS_PER_S:,}/s",
                    f"{best:,.0f}/s",
                    "PASS" if best >= TARGET_EVENTS_PER_S else "FAIL",
                ]
            )
    for lag in lags:
        table, rows = lag_tables(args, lag)
        print(table)
        targets.extend(rows)
    if targets:
        print(benchlib.table("Targets", ("figure", "target", "measured", "result"), targets))
    details_rows: list[list[Any]] = [
        ["machine", f"{os.cpu_count()} cores (PostgreSQL, broker, relay, this process)"],
        ["load average (1/5/15 min) before", " / ".join(f"{x:.2f}" for x in load_before)],
        ["load average (1/5/15 min) after", " / ".join(f"{x:.2f}" for x in load_after)],
        ["run wall time", f"{time.perf_counter() - began:.0f} s"],
    ]
    for lag in lags:
        what = f"{lag['store']}, {lag['client']}"
        details_rows += [
            [f"{what}: commands / events at the end", f"{lag['commands']:,} / {lag['events']:,}"],
            [f"{what}: relay start-up until a first lead was out", f"{lag['startup']:.1f} s"],
            [f"{what}: sending wall time", f"{lag['send_wall']:.1f} s"],
            [
                f"{what}: CPU of the relay process / this process",
                f"{lag['relay_cpu']:.1f} s / {lag['driver_cpu']:.1f} s",
            ],
            [
                f"{what}: position reads / distinct positions seen",
                f"{lag['polls']:,} / {lag['moves']:,}",
            ],
        ]
    print(benchlib.table("Run details", ("what", "value"), details_rows))
    if any(word in log_tail for word in ("ERROR", "WARNING", "Traceback")):
        print("relay process log (last lines):\n" + log_tail)
    return 0 if all(row[3] in ("PASS", "") for row in targets) else 1


if __name__ == "__main__":
    status = main()
    gc.unfreeze()  # the interpreter tears the frozen heap down normally (no leak reports)
    sys.exit(status)
