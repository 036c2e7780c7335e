"""What bench_stream and the stream tests share: a log of large events, LeadLedger served
by uvicorn in a subprocess, and cheap Server-Sent Events clients on raw asyncio streams.

The clients cost the client side little (no HTTP library, one coroutine each), so a
thousand of them fit beside the server on a small machine.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import psutil

from aggregates.lead import LeadCreated
from aggregates.users import Principal, Role
from bench.bench_commands_http import HOST, uvicorn_server
from event_store import NewEvent, open_event_store
from leadledger.tokens import Signer
from leadledger.wiring import event_codec

SECRET = "leadledger-stream-bench-secret-0123456789abcdef"


def top_token() -> str:
    """A bearer token of top management (sees every event) the served app accepts."""
    return Signer(SECRET.encode()).issue(
        Principal("bench.top", Role.TOP), now=datetime.now(UTC), ttl=timedelta(days=1)
    )


def large_lead(description_bytes: int, at: datetime) -> LeadCreated:
    """A lead whose description alone is ``description_bytes`` long (written to the store
    directly: the commands would refuse such a text)."""
    return LeadCreated(
        actor="bench.top",
        at=at,
        command_id=uuid4(),
        lead_id=uuid4(),
        funnel="out_of_court",
        stage="new",
        title="A lead with a long description",
        company_name="Northwind LLC",
        company_id=None,
        repeat=False,
        source="website",
        manager="bench.top",
        expert=None,
        need_maturity=None,
        answer_due=None,
        description="x" * description_bytes,
        amount=Decimal("100.00"),
        currency="RUB",
    )


def seed_large_log(event_store_url: str, events: int, event_bytes: int) -> int:
    """Append ``events`` leads of about ``event_bytes`` each; the log's head position."""
    store = open_event_store(event_store_url, event_codec())
    try:
        at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        for i in range(events):
            event = large_lead(event_bytes, at + timedelta(seconds=i))
            store.append([NewEvent(event.lead_id, 1, event)])
        return store.last_position()
    finally:
        store.close()


def server_env(workdir: Path, **settings: str) -> dict[str, str]:
    """LEADLEDGER_* variables of a server on an embedded store in ``workdir``."""
    env = {
        "LEADLEDGER_EVENT_STORE_URL": f"sqlite:///{workdir}/events.sqlite",
        "LEADLEDGER_DUCKDB_PATH": str(workdir / "read_models.duckdb"),
        "LEADLEDGER_AUTH_SECRET": SECRET,
    }
    env.update({f"LEADLEDGER_{k.upper()}": v for k, v in settings.items()})
    return env


def _health(port: int) -> dict[str, Any] | None:
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if int(head.split()[1]) != 200:
        return None
    health: dict[str, Any] = orjson.loads(body)
    return health


@contextmanager
def served(
    env: dict[str, str], log: Path, factory: str = "leadledger_app"
) -> Iterator[tuple[int, psutil.Process]]:
    """LeadLedger served by uvicorn (``bench.serve_app:<factory>``) in a subprocess,
    answering and with its read models caught up; yields (port, the server process)."""
    with uvicorn_server(factory, env, log) as (port, pid):
        deadline = time.monotonic() + 120
        while factory == "leadledger_app":
            with suppress(OSError, ValueError, IndexError):
                health = _health(port)
                if health is not None and health["lag"] == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server's read models did not catch up within 120 s")
            time.sleep(0.1)
        yield port, psutil.Process(pid)


class PeakRss:
    """The highest RSS of a process while the ``async with`` block runs (sampled every
    20 ms): ``async with PeakRss(server) as peak: ...; peak.value``."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.value = rss(process)
        self._sampler: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.value = max(self.value, rss(self.process))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> PeakRss:
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        self.value = max(self.value, rss(self.process))


def rss(process: psutil.Process) -> int:
    return int(process.memory_info().rss)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class NotOk(Exception):
    """The server answered a status other than 2xx."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_ID = re.compile(rb"^id: (\d+)$", re.MULTILINE)


async def request(
    port: int, method: str, path: str, token: str, body: Any = None
) -> tuple[int, bytes]:
    """One request on a new connection; (status, body). Raises NotOk on a non-2xx."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        payload = orjson.dumps(body) if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        data = await reader.read()
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split()[1])
    if b"transfer-encoding: chunked" in head_bytes.lower():
        rest = _unchunk(rest)
    if not 200 <= status < 300:
        raise NotOk(status, f"{method} {path} answered {status}: {rest[:300]!r}")
    return status, rest


def _unchunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)


class Subscriber:
    """One Server-Sent Events connection on a raw asyncio stream.

    ``last_id`` is the highest ``id:`` received; ``seen_at`` when each awaited position
    arrived (time.monotonic()); ``received`` counts the bytes of the body."""

    def __init__(self, port: int, token: str, after: int = 0) -> None:
        self.port = port
        self.token = token
        self.after = after
        self.last_id = after
        self.ids: list[int] | None = None
        self.received = 0
        self.keepalives = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self.arrivals: dict[int, float] = {}

    async def open(self, *, keep_ids: bool = False) -> None:
        """Connect and check the answer is a 200 event stream (NotOk otherwise)."""
        if keep_ids:
            self.ids = []
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        self._writer.write(
            f"GET /events/stream?after={self.after} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status_line = await self._reader.readline()
        status = int(status_line.split()[1]) if status_line else 0
        headers = []
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            headers.append(line)
        if status != 200:
            raise NotOk(status, f"GET /events/stream answered {status}")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        reader = self._reader
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return
            self.received += size
            if chunk.startswith(b": keep-alive"):
                self.keepalives += 1
            ids = [int(m) for m in _ID.findall(chunk)]
            if ids:
                now = time.monotonic()
                if self.ids is not None:
                    self.ids.extend(ids)
                self.last_id = ids[-1]
                self.arrivals[ids[-1]] = now
                self._progress.set()
                self._progress = asyncio.Event()

    async def until(self, position: int, timeout: float) -> float:
        """Wait until ``position`` arrived; the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while self.last_id < position:
            if self._task is not None and self._task.done():
                raise ConnectionError(f"the stream ended at {self.last_id}, before {position}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"position {position} not received (at {self.last_id})")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(remaining, 1.0))
        return next(t for p, t in sorted(self.arrivals.items()) if p >= position)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with suppress(OSError):
                await self._writer.wait_closed()


async def subscribe(
    port: int, token: str, count: int, after: int = 0, *, keep_ids: bool = False
) -> list[Subscriber]:
    """``count`` open subscribers (opened 50 at a time); with ``keep_ids`` each keeps the
    ids it received in ``ids``."""
    subscribers = [Subscriber(port, token, after) for _ in range(count)]
    for i in range(0, count, 50):
        await asyncio.gather(*(s.open(keep_ids=keep_ids) for s in subscribers[i : i + 50]))
    return subscribers


async def close_all(subscribers: list[Subscriber]) -> None:
    await asyncio.gather(*(s.close() for s in subscribers))


def settle_rss(process: psutil.Process, seconds: float = 1.0) -> int:
    """The server's RSS after ``seconds`` of rest (the smaller of two samples)."""
    time.sleep(seconds / 2)
    first = rss(process)
    time.sleep(seconds / 2)
    return min(first, rss(process))
