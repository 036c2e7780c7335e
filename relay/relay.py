"""The relay: follows the event store's log and publishes every event to Kafka.

Its position is stored beside the events (the process managers' position table, under
``relay:kafka``) and moves only after the broker acknowledged every event up to it. A
crash or restart therefore publishes again what was sent but not yet recorded: delivery
is at least once, and a duplicate carries the event id it had the first time. While the
broker is unreachable the relay keeps its position, logs what it waits for and retries
with a doubling back-off; it never skips an event and never exits for it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from event_store import EventStore
from process_managers.state import DeadlineChanges, ProcessStore
from relay.kafka import Pending, Sink
from relay.publishing import Message, Publication

log = logging.getLogger("leadledger.relay")

RELAY_POSITION = "relay:kafka"


@dataclass
class RelayStats:
    """What /metrics reports: how many events went out and how fast."""

    published_total: int = 0
    failures_total: int = 0
    position: int = 0
    window_seconds: float = 10.0
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    def record(self, count: int, position: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.published_total += count
        self.position = position
        self._recent.append((now, count))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - self.window_seconds:
            self._recent.popleft()

    def events_per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return sum(count for _, count in self._recent) / self.window_seconds


def tune_gc() -> None:
    """The relay allocates a few small containers per event; with the start-up heap frozen
    and fewer young collections, the collector stops costing a third of its time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


class Relay:
    """Publishes the log page by page; see the module's docstring for the guarantees."""

    def __init__(
        self,
        store: EventStore,
        publication: Publication,
        connect: Callable[[], Sink],
        *,
        page_size: int = 5_000,
        depth: int = 2,
        where: str = "Kafka",
    ) -> None:
        self.store = store
        self.publication = publication
        self._connect = connect
        self.page_size = page_size
        self.depth = depth
        self.where = where
        self.state = ProcessStore(store)
        self.stats = RelayStats(position=self.state.position(RELAY_POSITION))
        self._sink: Sink | None = None
        self._inflight: deque[Pending] = deque()
        self._sent: int | None = None
        """The last position handed to the sink (None: start from the stored position)."""
        self._prepared: list[Message] | None = None
        """The page after ``_sent``, read and mapped while the broker worked on the last."""
        self._wake = threading.Event()

    @property
    def position(self) -> int:
        return self.state.position(RELAY_POSITION)

    def lag(self) -> int:
        """Events stored but not yet acknowledged by the broker."""
        return max(0, self.store.last_position() - self.stats.position)

    def notify(self, _position: int = 0) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """Hand up to ``depth`` pages to the sink ahead, read and map the page after them
        while the broker works, then wait until the broker acknowledged the oldest and
        store its last position; how many events that acknowledged (0: nothing to
        publish). The position never passes an unacknowledged event. On any failure the
        sink and what it held are dropped (sent again on the next call)."""
        try:
            return self._publish_next()
        except BaseException:
            self._drop_sink()
            raise

    def _page(self, after: int) -> list[Message]:
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            return prepared
        return self.publication.messages(self.store.read_rows(after, self.page_size))

    def _publish_next(self) -> int:
        if self._sent is None:
            self._sent = self.state.position(RELAY_POSITION)
            self.stats.position = self._sent
        full = False
        while len(self._inflight) < self.depth:
            messages = self._page(self._sent)
            if not messages:
                break
            if self._sink is None:
                self._sink = self._connect()
            self._inflight.append(self._sink.send(messages))
            self._sent = messages[-1].position
            full = len(messages) >= self.page_size
            if not full:
                break  # at the head of the log
        if not self._inflight:
            return 0
        if full and self._prepared is None:
            # more is waiting: map it now, while the broker acknowledges what was sent
            self._prepared = self.publication.messages(
                self.store.read_rows(self._sent, self.page_size)
            )
        pending = self._inflight[0]
        assert self._sink is not None
        self._sink.wait(pending)
        self._inflight.popleft()
        self.state.advance(RELAY_POSITION, pending.last, DeadlineChanges())
        self.stats.record(pending.count, pending.last)
        return pending.count

    def catch_up(self) -> int:
        """Publish until the log's head as it is now; how many events went out."""
        total = 0
        while count := self.run_once():
            total += count
        return total

    def _drop_sink(self) -> None:
        """Forget the producer and everything not acknowledged: it is sent again from the
        stored position."""
        self._inflight.clear()
        self._prepared = None
        self._sent = None
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.close(timeout=0)
            except Exception:  # a broken connection may fail to close; it is gone anyway
                log.debug("closing the Kafka producer failed", exc_info=True)

    def run_forever(
        self, stop: threading.Event, poll_seconds: float = 0.5, max_backoff: float = 30.0
    ) -> None:
        """Follow the log until ``stop`` is set, surviving an unreachable broker."""
        backoff = poll_seconds
        while not stop.is_set():
            try:
                published = self.run_once()
                backoff = poll_seconds
                if published:
                    continue  # more may be waiting: no pause between pages
            except Exception as exc:
                self.stats.failures_total += 1
                position = self.stats.position  # the last acknowledged (no database here)
                log.warning(
                    "relay: cannot publish to %s (%s: %s); events after position %d are "
                    "kept and retried in %.1fs",
                    self.where,
                    type(exc).__name__,
                    exc,
                    position,
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(max(backoff * 2, 0.5), max_backoff)
                continue
            self._wake.wait(backoff)
            self._wake.clear()
        self._drop_sink()
