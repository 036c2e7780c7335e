"""One follower of the event log per process, fanning new events out to every Server-Sent
Events subscriber; and how a subscriber reads the log page by page until it joins it.

- **Bounded pages.** Every read of the log stops at :data:`PAGE_EVENTS` events or
  :data:`PAGE_BYTES` bytes of stored events (at least one event), and what a subscriber
  sends goes out in writes of at most :data:`WRITE_BYTES` (or one event): a subscriber
  holds one page at a time, whatever position it starts from and however large the
  events are, and nothing once it has disconnected.
- **One tail.** :class:`LogTail` runs one asyncio task that follows the log's head: woken
  by every append in this process, and every ``poll_seconds`` for the appends of other
  processes. It reads only while someone subscribes, encodes each new page once, and
  publishes it; every subscriber at the page's start takes it from there. An idle
  subscriber is a coroutine asleep on an event: it costs no polling.
- **Catch-up, then the fan-out.** A subscriber behind the published page (starting from
  an old position, or slower than the log) reads the log by itself, page by page, until
  it reaches the page; it always continues from the position it has sent, so nothing is
  skipped or sent twice across the switch.
- **Scope.** A scoped viewer receives only the events of the records they may see
  (:func:`read_api.access.feed_rows`), in order; an event their read models do not
  include yet is held back until the projector has folded it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import orjson
from anyio import CapacityLimiter

from aggregates.users import Principal
from event_store.recorders import NotificationRow
from leadledger.wiring import Platform
from read_api.access import feed_rows
from relay.publishing import Publication

log = logging.getLogger(__name__)

PAGE_EVENTS = 200
"""Events per read of the log (the feed's ``limit`` is capped by PAGE_BYTES too)."""
PAGE_BYTES = 512 * 1024
"""Bytes of stored events per read of the log (a larger single event is read alone)."""
WRITE_BYTES = 64 * 1024
"""Bytes of messages per write to a subscriber's connection (or one larger message)."""
KEEPALIVE_SECONDS = 15.0
"""A comment goes out on a quiet stream this often (proxies close silent connections)."""
READERS = 4
"""Threads reading the log for catching-up subscribers at once (apart from the request
pool, so subscribers never starve the other endpoints)."""

Entry = tuple[int, str, bytes]
"""(position, stream id, the Server-Sent Events message of the event)"""

T = TypeVar("T")


def sse_message(publication: Publication, row: NotificationRow) -> bytes:
    """The event as one Server-Sent Events message: id = position, event = type, data = the
    envelope published on Kafka."""
    envelope = publication.envelope(row)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        row[0],
        row[3].encode(),
        orjson.dumps(envelope),
    )


def read_entries(platform: Platform, after: int) -> list[Entry]:
    """The next bounded page of the log after ``after``, as messages."""
    rows = platform.store.read_rows(after, PAGE_EVENTS, PAGE_BYTES)
    publication = platform.publication
    return [(row[0], row[1], sse_message(publication, row)) for row in rows]


def writes(messages: Sequence[bytes]) -> list[bytes]:
    """The messages joined into writes of at most WRITE_BYTES (or one larger message)."""
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for message in messages:
        if batch and size + len(message) > WRITE_BYTES:
            out.append(b"".join(batch))
            batch, size = [], 0
        batch.append(message)
        size += len(message)
    if batch:
        out.append(b"".join(batch))
    return out


@dataclass(frozen=True)
class Page:
    """What the tail published last: the events after ``after``, up to ``last``."""

    after: int
    entries: list[Entry]

    @property
    def last(self) -> int:
        return self.entries[-1][0]

    def covers(self, position: int) -> bool:
        return self.after <= position < self.last

    def entries_after(self, position: int) -> list[Entry]:
        return [e for e in self.entries if e[0] > position]


class LogTail:
    """Follows the head of the log for every subscriber of this process (see the module)."""

    def __init__(self, platform: Platform, poll_seconds: float) -> None:
        self.platform = platform
        self.poll_seconds = poll_seconds
        self.head = 0
        """The position the tail has read (or, with nobody subscribed, seen) up to."""
        self.page: Page | None = None
        self.subscribers = 0
        self._published = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._readers = CapacityLimiter(READERS)
        self._tail_reader = CapacityLimiter(1)  # never queued behind catching-up readers

    # --- the tail ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start following (in the running loop); appends in this process wake it."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self.platform.store.on_append(self._appended)
        self.head = await self._in_thread(self.platform.store.last_position, tail=True)
        self._task = self._loop.create_task(self._run(), name="leadledger-log-tail")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _appended(self, _position: int) -> None:
        """Called by the store after an append, in the appending thread."""
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        backoff = self.poll_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._advance()
                backoff = self.poll_seconds
            except Exception:
                log.exception("following the event log failed; retrying in %.1fs", backoff)
                backoff = min(backoff * 2, 30.0)

    async def _advance(self) -> None:
        """Publish the pages after the head, one at a time (only the head's position when
        nobody subscribes)."""
        while True:
            if not self.subscribers:
                last = await self._in_thread(self.platform.store.last_position, tail=True)
                self.head = max(self.head, last)
                self.page = None
                return
            entries = await self._in_thread(read_entries, self.platform, self.head, tail=True)
            if not entries:
                return
            self.page = Page(self.head, entries)
            self.head = entries[-1][0]
            self._published.set()
            self._published = asyncio.Event()
            await asyncio.sleep(0)  # the subscribers take the page before the next one

    async def _in_thread(self, fn: Callable[..., T], *args: Any, tail: bool = False) -> T:
        limiter = self._tail_reader if tail else self._readers
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    # --- a subscriber --------------------------------------------------------------------

    async def messages(self, principal: Principal, start: int) -> AsyncIterator[bytes]:
        """The stream of one subscriber: the events after ``start`` it may see, then new
        ones as they are stored, with keep-alive comments on a quiet stream."""
        if self._task is None:
            await self.start()
        self.subscribers += 1
        self._wake.set()  # the tail may have been idle: let it look at the head now
        try:
            yield b"retry: 2000\n\n"
            position = start
            quiet_since = time.monotonic()
            while True:
                published = self._published  # before looking: no publication is missed
                waiting_for: int | None = None
                page = self.page
                if page is not None and page.covers(position):
                    entries = page.entries_after(position)
                elif position < self.head:
                    entries = await self._in_thread(read_entries, self.platform, position)
                else:
                    entries = []
                if entries:
                    visible, covered = await self._visible(principal, entries)
                    if covered > position:
                        position = covered
                        for chunk in writes([e[2] for e in visible]):
                            yield chunk
                        if visible:
                            quiet_since = time.monotonic()
                        continue
                    waiting_for = entries[0][0]  # not in the viewer's read models yet
                timeout = KEEPALIVE_SECONDS - (time.monotonic() - quiet_since)
                if await self._sleep(published, waiting_for, timeout):
                    continue
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
        finally:
            self.subscribers -= 1

    async def _visible(self, principal: Principal, entries: list[Entry]) -> tuple[list[Entry], int]:
        if principal.sees_everything:
            return entries, entries[-1][0]
        return await self._in_thread(feed_rows, self.platform, principal, entries)

    async def _sleep(self, published: asyncio.Event, projected: int | None, timeout: float) -> bool:
        """Sleep until a page is published (or the projector reaches ``projected``); False
        when ``timeout`` passed first."""
        if timeout <= 0:
            return False
        if projected is not None:
            return await self.platform.projector.reached(projected, timeout)
        try:
            async with asyncio.timeout(timeout):
                await published.wait()
        except TimeoutError:
            return False
        return True
