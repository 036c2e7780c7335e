"""Commands over HTTP on PostgreSQL (or SQLite) with C concurrent clients (default 16):
req/s, p50, p99.

In the same run, at the same concurrency:

1. a bare FastAPI POST endpoint with a pydantic body (``bench/serve_app.py:bare_app``),
   served by uvicorn exactly like LeadLedger: the HTTP ceiling;
2. LeadLedger (``bench/serve_app.py:leadledger_app``: ``leadledger.wiring.build`` +
   ``read_api.app.create_app``, projector running in-process as with ``leadledger
   serve``) on a fresh PostgreSQL schema and a fresh DuckDB file: each client creates a
   lead (``POST /leads``) and moves it through the next stages of its funnel (``POST
   /leads/{id}/stage`` with ``If-Match``), then starts again;
3. bare eventsourcing ``Application.save`` of one new aggregate per commit on PostgreSQL
   (its own fresh schema), from C threads;

``--store sqlite`` runs LeadLedger and ``Application.save`` on fresh files of the
embedded SQLite store instead.

and the ratios LeadLedger/bare-FastAPI and LeadLedger/Application.save.

Servers run with uvicorn in a subprocess on a free port of 127.0.0.1, and every request
goes there. Each phase is bounded: it stops by itself after --warmup + --duration seconds
or --max-requests requests, whichever comes first; only the requests that complete after
the warm-up count. Schemas are dropped, subprocesses stopped and files removed at the
end. The clients are a small keep-alive HTTP/1.1 client on asyncio (``--client raw``,
default, so that the client costs the shared 2 cores little) or httpx
(``--client httpx``). Run from the project root:

    .venv/bin/python -m bench.bench_commands_http               # 16 clients, 30 s each
    .venv/bin/python -m bench.bench_commands_http --duration 3 --warmup 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from psycopg import sql

from aggregates.users import Principal, Role
from bench import benchlib
from bench.profiler import summarise
from leadledger.demo import MANAGERS, SOURCES, TITLES
from leadledger.settings import Settings
from leadledger.tokens import Signer
from leadledger.wiring import load_funnels

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PREFIX = "bench_commands_"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 30.0


# --- results ------------------------------------------------------------------------------


@dataclass
class Results:
    """Completed operations: (start, end, kind, status)."""

    records: list[tuple[float, float, str, int]] = field(default_factory=list)
    started: float = 0.0
    window_start: float = 0.0
    window_end: float = 0.0
    server_cpu: float | None = None
    client_cpu: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    reads: list[tuple[float, float, str, int]] = field(default_factory=list)
    """Read-your-writes reads (``--read-your-writes``): apart, so that command figures
    stay commands only."""

    def in_window(
        self, kind: str | None = None, *, reads: bool = False
    ) -> list[tuple[float, float, str, int]]:
        return [
            r
            for r in (self.reads if reads else self.records)
            if self.window_start <= r[1] <= self.window_end and (kind is None or r[2] == kind)
        ]

    @property
    def window(self) -> float:
        return max(1e-9, self.window_end - self.window_start)

    def row(self, name: str, kind: str | None = None, *, reads: bool = False) -> list[Any]:
        """Figures of the window; server CPU per request only over all kinds together."""
        done = self.in_window(kind, reads=reads)
        good = [r for r in done if r[3] < 300]
        latencies = [r[1] - r[0] for r in good]
        per_request = (
            "-"
            if self.server_cpu is None or not done or kind is not None or reads
            else f"{1000 * self.server_cpu / len(done):.2f}"
        )
        return [
            name,
            benchlib.count(len(good)),
            benchlib.count(len(good) / self.window),
            benchlib.ms(benchlib.percentile(latencies, 50)),
            benchlib.ms(benchlib.percentile(latencies, 95)),
            benchlib.ms(benchlib.percentile(latencies, 99)),
            benchlib.count(len(done) - len(good)),
            per_request,
        ]

    def rate(self) -> float:
        return sum(1 for r in self.in_window() if r[3] < 300) / self.window

    def p50(self) -> float:
        return benchlib.percentile([r[1] - r[0] for r in self.in_window() if r[3] < 300], 50)


RESULT_HEADERS = (
    "what",
    "ok",
    "per s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "non-2xx",
    "server CPU ms/req",
)


# --- a small HTTP/1.1 keep-alive client ---------------------------------------------------


class RawConnection:
    """One keep-alive HTTP/1.1 connection; requests go one at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return self.reader, self.writer

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        reader, writer = await self._open()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        status_line = await reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = await reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class HttpxConnection:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        response = await self.client.request(method, path, content=body, headers=headers)
        return response.status_code, response.content

    async def close(self) -> None:
        return None


Connection = RawConnection | HttpxConnection
Scenario = Callable[[Connection, random.Random, "Driver"], Awaitable[None]]


class Driver:
    """Runs C client coroutines against a server until the deadline or the request cap."""

    def __init__(self, port: int, args: argparse.Namespace) -> None:
        self.port = port
        self.args = args
        self.results = Results()
        self.sent = 0
        self.deadline = 0.0
        self.profile_pid: int | None = None
        """The server to signal when the window starts and ends (it profiles itself)."""

    @property
    def running(self) -> bool:
        return time.perf_counter() < self.deadline and self.sent < self.args.max_requests

    async def call(
        self,
        conn: Connection,
        kind: str,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        *,
        read: bool = False,
    ) -> tuple[int, bytes]:
        if not read:
            self.sent += 1
        payload = None if body is None else orjson.dumps(body)
        started = time.perf_counter()
        try:
            status, data = await asyncio.wait_for(
                conn.request(method, path, payload, headers), REQUEST_TIMEOUT
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            self.results.failures[type(exc).__name__] += 1
            await conn.close()
            return 0, b""
        (self.results.reads if read else self.results.records).append(
            (started, time.perf_counter(), kind, status)
        )
        if status >= 300:
            self.results.failures[f"HTTP {status} {kind}"] += 1
        return status, data

    async def _run(self, scenario: Scenario) -> None:
        args = self.args
        httpx_client = None
        if args.client == "httpx":
            import httpx

            httpx_client = httpx.AsyncClient(
                base_url=f"http://{HOST}:{self.port}",
                limits=httpx.Limits(max_connections=args.clients),
                timeout=REQUEST_TIMEOUT,
            )
        conns: list[Connection] = [
            RawConnection(self.port) if httpx_client is None else HttpxConnection(httpx_client)
            for _ in range(args.clients)
        ]
        results = self.results
        results.started = time.perf_counter()
        results.window_start = results.started + args.warmup
        self.deadline = results.window_start + args.duration

        async def client(index: int, conn: Connection) -> None:
            rng = random.Random(args.seed * 1000 + index)
            try:
                while self.running:
                    await scenario(conn, rng, self)
            finally:
                await conn.close()

        async def mark_window() -> None:
            # the server's profile covers the measured window only
            await asyncio.sleep(max(0.0, results.window_start - time.perf_counter()))
            if self.profile_pid is not None:
                os.kill(self.profile_pid, signal.SIGUSR1)

        marker = asyncio.create_task(mark_window())
        try:
            await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
            if self.profile_pid is not None:
                os.kill(self.profile_pid, signal.SIGUSR2)
        finally:
            marker.cancel()
            if httpx_client is not None:
                await httpx_client.aclose()
        results.window_end = min(time.perf_counter(), self.deadline)

    def run(self, scenario: Scenario, server_pid: int | None) -> Results:
        cpu_before = _process_cpu(server_pid) if server_pid else None
        client_before = time.process_time()
        asyncio.run(self._run(scenario))
        results = self.results
        results.client_cpu = time.process_time() - client_before
        if server_pid and cpu_before is not None:
            # the server's CPU over the whole phase, warm-up included: scale to the window
            whole = max(1e-9, time.perf_counter() - results.started)
            used = _process_cpu(server_pid) - cpu_before
            results.server_cpu = used * results.window / whole
        return results


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --- scenarios ------------------------------------------------------------------------------


def _lead_body(rng: random.Random, funnel: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "funnel": funnel,
        "title": rng.choice(TITLES),
        "company_name": f"Company {rng.randrange(5000)}",
        "source": "court_request" if funnel == "court" else rng.choice(SOURCES[1:]),
        "manager": rng.choice(MANAGERS),
        "need_maturity": "comparing_offers",
        "description": "Request received by phone; documents to follow",
        "amount": f"{rng.randrange(50_000, 2_000_000)}.00",
    }
    if rng.random() < 0.85:
        body["company_id"] = f"INN{7700000000 + rng.randrange(5000)}"
    return body


BENCH_AUTH_SECRET = "leadledger-bench-secret-0123456789abcdef"


def bare_scenario() -> Scenario:
    async def scenario(conn: Connection, rng: random.Random, driver: Driver) -> None:
        body = _lead_body(rng, "out_of_court")
        await driver.call(conn, "create", "POST", "/leads", body, {"X-Actor": "bench"})

    return scenario


def leadledger_scenario(moves: int, read_your_writes: bool = False) -> Scenario:
    funnels = load_funnels(Settings().funnels_file)
    stages = {f: [s.id for s in funnels[f].stages] for f in funnels}
    funnel_ids = list(funnels)

    signer = Signer(BENCH_AUTH_SECRET.encode())
    issued = datetime.now(UTC)
    tokens = {
        manager: {
            "Authorization": "Bearer "
            + signer.issue(Principal(manager, Role.MANAGER), now=issued, ttl=timedelta(days=1))
        }
        for manager in MANAGERS
    }

    async def scenario(conn: Connection, rng: random.Random, driver: Driver) -> None:
        manager = rng.choice(MANAGERS)
        actor = tokens[manager]
        funnel = (
            "out_of_court"
            if rng.random() < 0.6 and "out_of_court" in funnels
            else (rng.choice(funnel_ids))
        )
        # a manager creates leads for themselves (anyone else's: 403 not_your_team)
        body = _lead_body(rng, funnel) | {"manager": manager}
        status, data = await driver.call(conn, "create", "POST", "/leads", body, actor)
        if status != 201:
            return
        accepted = orjson.loads(data)
        lead_id, version = accepted["lead_id"], accepted["version"]
        moved = accepted
        for stage in stages[funnel][1 : 1 + moves]:
            if not driver.running:
                return
            status, data = await driver.call(
                conn,
                "move",
                "POST",
                f"/leads/{lead_id}/stage",
                {"stage": stage},
                {**actor, "If-Match": str(version)},
            )
            if status != 200:
                return
            moved = orjson.loads(data)
            version = moved["version"]
        if read_your_writes and driver.running:
            # the lead's card as of the last write: answered once the projector has it
            await driver.call(
                conn,
                "read",
                "GET",
                f"/leads/{lead_id}?min_position={moved['position']}",
                None,
                actor,
                read=True,
            )

    return scenario


def busy_leads(url: str, count: int, events: int, seed: int) -> list[tuple[str, int]]:
    """``count`` open leads of ``events`` events each (decided by the Lead decider, as in
    bench_history), appended straight to the event store before the server starts: the
    1,000-event streams a busy lead has: [(lead id, version)]; their managers go into
    BUSY_MANAGERS."""
    from aggregates import lead as lead_decider
    from aggregates.lead import LeadCreated
    from event_store import NewEvent, open_event_store
    from leadledger.wiring import event_codec

    store = open_event_store(url, event_codec())
    funnels = load_funnels(Settings().funnels_file)
    out: list[tuple[str, int]] = []
    try:
        for n in range(count):
            history = benchlib.LeadHistory(
                funnels, leads=1, events=events, seed=seed * 7919 + n
            ).single_lead(events)
            for start in range(0, len(history), 200):
                store.append([NewEvent(s, v, e) for s, v, e in history[start : start + 200]])
            state = None
            for _, _, event in history:
                state = lead_decider.evolve(state, event)
            assert isinstance(history[0][2], LeadCreated)
            assert state is not None
            out.append((str(history[0][0]), len(history)))
            BUSY_MANAGERS[str(history[0][0])] = state.manager
    finally:
        store.close()
    return out


BUSY_MANAGERS: dict[str, str] = {}


def busy_scenario(leads: list[tuple[str, int]]) -> Scenario:
    """Each client edits the card of its own busy lead (a stream of ~1,000 events and
    growing), so every command loads and folds the long stream."""
    signer = Signer(BENCH_AUTH_SECRET.encode())
    issued = datetime.now(UTC)
    tokens = {
        manager: {
            "Authorization": "Bearer "
            + signer.issue(Principal(manager, Role.MANAGER), now=issued, ttl=timedelta(days=1))
        }
        for manager in set(BUSY_MANAGERS.values())
    }
    queue = list(leads)
    edits = Counter[str]()

    async def scenario(conn: Connection, rng: random.Random, driver: Driver) -> None:
        if not queue:
            await asyncio.sleep(0.05)
            return
        lead_id, _ = queue.pop()
        actor = tokens[BUSY_MANAGERS[lead_id]]
        try:
            while driver.running:
                edits[lead_id] += 1
                body = {"description": f"Busy note {edits[lead_id]} ({rng.random():.6f})"}
                status, _ = await driver.call(
                    conn, "card", "POST", f"/leads/{lead_id}/card", body, actor
                )
                if status != 200:
                    return
        finally:
            queue.append((lead_id, 0))

    return scenario


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _get(port: int, path: str) -> int:
    with socket.create_connection((HOST, port), timeout=2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(64)
    return int(head.split()[1])


@contextmanager
def uvicorn_server(factory: str, env: dict[str, str], log: Path) -> Iterator[tuple[int, int]]:
    """Serve ``bench.serve_app:<factory>``; yields (port, pid); stopped on exit."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"bench.serve_app:{factory}",
        "--app-dir",
        str(ROOT),
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--backlog",
        "4096",  # room for a thousand Server-Sent Events subscribers connecting at once
    ]
    with open(log, "ab") as log_file:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log_file, stderr=log_file
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"uvicorn {factory} exited ({proc.returncode}):\n{tail}")
            try:
                if _get(port, "/health") == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn {factory} did not answer within 120 s")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --- bare Application.save --------------------------------------------------------------------


class Ticket(Aggregate):
    """A small aggregate: one event per save."""

    def __init__(self, title: str, amount: int) -> None:
        self.title = title
        self.amount = amount


def application_env(url: str) -> dict[str, str]:
    from event_store.store import recorder_env

    env = recorder_env(url)
    env.pop("PROCESS_RECORDER_TOPIC", None)  # the library's own recorder
    return env


def application_save(args: argparse.Namespace, url: str) -> Results:
    app: Application[Any] = Application(env=application_env(url))
    results = Results()
    lock = threading.Lock()
    failures: Counter[str] = Counter()
    app.save(Ticket("warm-up", 0))
    results.started = time.perf_counter()
    results.window_start = results.started + args.warmup
    deadline = results.window_start + args.duration
    sent = [0]

    def worker(index: int) -> None:
        records: list[tuple[float, float, str, int]] = []
        n = 0
        while time.perf_counter() < deadline:
            with lock:
                if sent[0] >= args.max_requests:
                    break
                sent[0] += 1
            n += 1
            started = time.perf_counter()
            try:
                app.save(Ticket(f"ticket {index}-{n}", n))
            except Exception as exc:  # counted, and the loop goes on until the deadline
                with lock:
                    failures[type(exc).__name__] += 1
                continue
            records.append((started, time.perf_counter(), "save", 200))
        with lock:
            results.records.extend(records)

    client_before = time.process_time()
    threads = [
        threading.Thread(target=worker, args=(i,), name=f"save-{i}") for i in range(args.clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.window_end = min(time.perf_counter(), deadline)
    results.client_cpu = time.process_time() - client_before
    results.failures = failures
    app.close()
    return results


# --- main ---------------------------------------------------------------------------------


def count_events(url: str) -> int:
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            found = db.execute("SELECT count(*) FROM stored_events").fetchone()
        return int(found[0]) if found else 0
    postgres_url, schema = url.split("?schema=")
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "stored_events"))
        ).fetchone()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients/threads")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds a phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument(
        "--max-requests", type=int, default=500_000, help="cap on requests (saves) a phase"
    )
    parser.add_argument("--moves", type=int, default=3, help="stage moves after each create")
    parser.add_argument(
        "--read-your-writes",
        action="store_true",
        help="each client reads its lead with min_position of its last move (a row of its own)",
    )
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="HTTP client of the drivers"
    )
    parser.add_argument(
        "--projector",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run LeadLedger's projector in the server process, as `leadledger serve` does",
    )
    parser.add_argument(
        "--phases",
        default="bare,leadledger,busy,save",
        help="comma-separated subset of: bare, leadledger, busy, save",
    )
    parser.add_argument(
        "--busy-events",
        type=int,
        default=1000,
        help="events in each busy lead's stream before the busy phase (one lead a client)",
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sample the LeadLedger server's CPU by function (bench/profiler.py) and print it",
    )
    parser.add_argument("--profile-top", type=int, default=15, help="functions listed")
    parser.add_argument(
        "--profile-json", type=Path, default=None, help="also keep the raw profile in this file"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="experiment: cap the LeadLedger server's worker threads for sync endpoints",
    )
    parser.add_argument("--seed", type=int, default=3, help="random seed")
    parser.add_argument(
        "--postgres-url", default=benchlib.DEFAULT_POSTGRES_URL, help="PostgreSQL to use"
    )
    parser.add_argument(
        "--store",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="the event store of LeadLedger and of Application.save: a fresh PostgreSQL "
        "schema, or a fresh file of the embedded SQLite store",
    )
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if set(phases) - {"bare", "leadledger", "busy", "save"}:
        parser.error("--phases takes bare, leadledger, busy, save")
    print(
        f"bench_commands_http: clients={args.clients} warmup={args.warmup:g}s "
        f"duration={args.duration:g}s max_requests={args.max_requests:,} moves={args.moves} "
        f"client={args.client} projector={'on' if args.projector else 'off'}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench_commands_http_"))
    log = workdir / "uvicorn.log"
    schemas: list[str] = []
    measured: dict[str, Results] = {}
    extra: dict[str, Any] = {}

    loads: dict[str, str] = {}
    """The load average (1/5/15 min) as each phase starts: the machine is shared."""

    def load_average() -> str:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())

    def fresh_store(name: str) -> str:
        """A fresh event store URL (schema or file) of the chosen back-end."""
        if args.store == "sqlite":
            return f"sqlite:///{workdir / name}.sqlite"
        schema = benchlib.create_schema(args.postgres_url, SCHEMA_PREFIX)
        schemas.append(schema)
        return benchlib.schema_url(args.postgres_url, schema)

    try:
        if "bare" in phases:
            loads["bare"] = load_average()
            print("bare FastAPI ...", file=sys.stderr, flush=True)
            with uvicorn_server("bare_app", {}, log) as (port, pid):
                measured["bare"] = Driver(port, args).run(bare_scenario(), pid)
        if "leadledger" in phases:
            loads["leadledger"] = load_average()
            print("LeadLedger over HTTP ...", file=sys.stderr, flush=True)
            url = fresh_store("events")
            env = {
                "LEADLEDGER_AUTH_SECRET": BENCH_AUTH_SECRET,
                "LEADLEDGER_EVENT_STORE_URL": url,
                "LEADLEDGER_DUCKDB_PATH": str(workdir / "read_models.duckdb"),
            }
            if args.threads:
                env["LEADLEDGER_BENCH_THREADS"] = str(args.threads)
            profile_file = workdir / "profile.json"
            if args.profile:
                env["LEADLEDGER_BENCH_PROFILE"] = str(profile_file)
            factory = "leadledger_app" if args.projector else "leadledger_app_no_projector"
            with uvicorn_server(factory, env, log) as (port, pid):
                driver = Driver(port, args)
                driver.profile_pid = pid if args.profile else None
                scenario = leadledger_scenario(args.moves, args.read_your_writes)
                measured["leadledger"] = driver.run(scenario, pid)
                if args.profile:
                    deadline = time.monotonic() + 10
                    while not profile_file.exists() and time.monotonic() < deadline:
                        time.sleep(0.05)
            extra["events"] = count_events(url)
            if args.profile and profile_file.exists():
                extra["profile"] = orjson.loads(profile_file.read_bytes())
                if args.profile_json is not None:
                    args.profile_json.write_bytes(profile_file.read_bytes())
        if "busy" in phases:
            loads["busy"] = load_average()
            print(
                f"LeadLedger over HTTP, {args.busy_events:,}-event streams ...",
                file=sys.stderr,
                flush=True,
            )
            url = fresh_store("busy_events")
            leads = busy_leads(url, args.clients, args.busy_events, args.seed)
            env = {
                "LEADLEDGER_AUTH_SECRET": BENCH_AUTH_SECRET,
                "LEADLEDGER_EVENT_STORE_URL": url,
                "LEADLEDGER_DUCKDB_PATH": str(workdir / "busy_read_models.duckdb"),
            }
            factory = "leadledger_app" if args.projector else "leadledger_app_no_projector"
            with uvicorn_server(factory, env, log) as (port, pid):
                measured["busy"] = Driver(port, args).run(busy_scenario(leads), pid)
        if "save" in phases:
            loads["save"] = load_average()
            print("eventsourcing Application.save ...", file=sys.stderr, flush=True)
            measured["save"] = application_save(args, fresh_store("save_events"))
    finally:
        for schema in schemas:
            benchlib.drop_schema(args.postgres_url, schema)
        log_text = log.read_text(errors="replace") if log.exists() else ""
        benchlib.remove_tree(workdir)

    print()
    rows: list[list[Any]] = []
    if "bare" in measured:
        rows.append(measured["bare"].row("bare FastAPI POST /leads (pydantic body)"))
    if "leadledger" in measured:
        ll = measured["leadledger"]
        rows.append(ll.row("LeadLedger all commands"))
        rows.append(ll.row("  POST /leads (create)", "create"))
        rows.append(ll.row("  POST /leads/{id}/stage (move)", "move"))
        if args.read_your_writes:
            rows.append(ll.row("  GET /leads/{id}?min_position= (read)", reads=True))
    if "busy" in measured:
        rows.append(
            measured["busy"].row(f"LeadLedger card edits, {args.busy_events:,}-event streams")
        )
    if "save" in measured:
        rows.append(measured["save"].row("eventsourcing Application.save (threads)"))
    print(
        benchlib.table(
            f"Commands on {'SQLite' if args.store == 'sqlite' else 'PostgreSQL'}, "
            f"{args.clients} concurrent clients, "
            f"{args.duration:g} s measured after {args.warmup:g} s warm-up",
            RESULT_HEADERS,
            rows,
        )
    )
    failed = {key: result.failures for key, result in measured.items() if result.failures}
    ratios: list[list[Any]] = []
    if "leadledger" in measured and not failed:
        ll_rate, ll_p50 = measured["leadledger"].rate(), measured["leadledger"].p50()
        for key, name in (("bare", "bare FastAPI"), ("save", "Application.save")):
            if key in measured:
                other = measured[key]
                ratios.append(
                    [
                        f"LeadLedger / {name}",
                        f"{ll_rate / max(1e-9, other.rate()):.3f}",
                        f"{ll_p50 / max(1e-9, other.p50()):.2f}",
                    ]
                )
    if ratios:
        print(benchlib.table("Ratios", ("what", "throughput ratio", "p50 latency ratio"), ratios))
    info: list[list[Any]] = []
    for key, result in measured.items():
        info.append(
            [
                key,
                f"{result.window:.1f}",
                f"{result.client_cpu:.1f}",
                "-" if result.server_cpu is None else f"{result.server_cpu:.1f}",
                loads.get(key, "-"),
                ", ".join(f"{k}: {v}" for k, v in result.failures.most_common()) or "none",
            ]
        )
    print(
        benchlib.table(
            "Run details",
            (
                "phase",
                "window s",
                "client CPU s",
                "server CPU s (window)",
                "load avg at start",
                "failures",
            ),
            info,
        )
    )
    print(f"load average at the end (1/5/15 min): {load_average()}")
    if "events" in extra:
        print(
            f"LeadLedger events appended (incl. company registrations, warm-up): "
            f"{extra['events']:,}"
        )
    if "profile" in extra:
        ll = measured["leadledger"]
        commands = len(ll.in_window()) or 1
        print(
            f"\nWhere the LeadLedger server's CPU went (the measured window, "
            f"{commands:,} commands; bench/profiler.py):\n"
            + summarise(extra["profile"], args.profile_top, commands)
        )
    if log_text.strip():
        print("\nuvicorn log (last lines):\n" + "\n".join(log_text.strip().splitlines()[-20:]))
    if failed:
        # a refusal is not work: a run with any non-2xx answer measures nothing
        print(
            "FAILED: non-2xx answers or errors in "
            + ", ".join(f"{k} ({sum(v.values()):,})" for k, v in failed.items())
            + "; no ratio is printed",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
