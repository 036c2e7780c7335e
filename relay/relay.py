"""The relay: follows the event store's log and publishes every event to Kafka.

Its position is stored beside the events (the process managers' position table, under
``relay:kafka``) and moves only after the broker acknowledged every event up to it. A
crash or restart therefore publishes again what was sent but not yet recorded: delivery
is at least once, and a duplicate carries the event id it had the first time. While the
broker is unreachable the relay keeps its position, logs what it waits for and retries
with a doubling back-off; it never skips an event and never exits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from event_store import EventStore
from process_managers.state import DeadlineChanges, ProcessStore
from relay.publishing import Message, Publication

log = logging.getLogger("leadledger.relay")

RELAY_POSITION = "relay:kafka"


class Sink(Protocol):
    """Where messages go; ``relay.kafka.KafkaSink`` is the real one."""

    def publish(self, messages: Sequence[Message]) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


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


class Relay:
    """Publishes the log page by page; see the module's docstring for the guarantees."""

    def __init__(
        self,
        store: EventStore,
        publication: Publication,
        connect: Callable[[], Sink],
        *,
        page_size: int = 5_000,
        where: str = "Kafka",
    ) -> None:
        self.store = store
        self.publication = publication
        self._connect = connect
        self.page_size = page_size
        self.where = where
        self.state = ProcessStore(store)
        self.stats = RelayStats(position=self.state.position(RELAY_POSITION))
        self._sink: Sink | None = None
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
        """Publish one page after the stored position; how many events went out."""
        position = self.state.position(RELAY_POSITION)
        rows = self.store.read_rows(position, self.page_size)
        if not rows:
            self.stats.position = position
            return 0
        messages = self.publication.messages(rows)
        if self._sink is None:
            self._sink = self._connect()
        self._sink.publish(messages)
        last = rows[-1][0]
        self.state.advance(RELAY_POSITION, last, DeadlineChanges())
        self.stats.record(len(rows), last)
        return len(rows)

    def catch_up(self) -> int:
        """Publish until the log's head as it is now; how many events went out."""
        total = 0
        while count := self.run_once():
            total += count
        return total

    def _drop_sink(self) -> None:
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
                self._drop_sink()
                position = self.stats.position or self.state.position(RELAY_POSITION)
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
