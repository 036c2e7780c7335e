"""The projector: follows the notification log and keeps the DuckDB read models current.

Each page of events is folded by every projection and committed together with the new
position in ONE DuckDB transaction, so a crash anywhere in a page leaves the read models
exactly at the previous page, and the restart folds the page again from there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import orjson

from event_store import EventStore
from event_store.recorders import NotificationRow
from projections.base import PageEvent, Projection
from projections.database import ReadModelDatabase

log = logging.getLogger(__name__)

POSITION_NAME = "read_models"

FaultHook = Callable[[int], None]
"""Called with the number of events folded so far in the page; tests raise from it."""


class Projector:
    def __init__(
        self,
        store: EventStore,
        db: ReadModelDatabase,
        projections: Sequence[Projection],
        *,
        page_size: int = 20_000,
        fault_hook: FaultHook | None = None,
        batch_window: float = 0.02,
    ) -> None:
        self.store = store
        self.db = db
        self.projections = list(projections)
        self.page_size = page_size
        self.fault_hook = fault_hook
        self.batch_window = batch_window
        self._cursor = db.cursor()
        self._wake = threading.Event()
        self._caught_up = threading.Condition()
        for projection in self.projections:
            projection.create_tables(self._cursor)
        self.position = db.position(POSITION_NAME, self._cursor)

    # --- one page -----------------------------------------------------------------------

    def _fetch(self, after: int) -> list[NotificationRow]:
        return self.store.read_rows(after, self.page_size)

    def _apply(self, rows: list[NotificationRow]) -> None:
        """Fold one page into every projection and commit it with the new position."""
        by_projection: list[list[PageEvent]] = [[] for _ in self.projections]
        for position, stream_id, version, topic, state in rows:
            for index, projection in enumerate(self.projections):
                if topic in projection.topics:
                    by_projection[index].append(
                        PageEvent(stream_id, version, position, topic, orjson.loads(state))
                    )
        last = rows[-1][0]
        cursor = self._cursor
        cursor.execute("BEGIN TRANSACTION")
        try:
            folded = 0
            for projection, events in zip(self.projections, by_projection, strict=True):
                if self.fault_hook is not None:
                    self.fault_hook(folded)
                projection.apply(cursor, events)
                folded += len(events)
            if self.fault_hook is not None:
                self.fault_hook(folded)
            self.db.set_position(cursor, POSITION_NAME, last)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        with self._caught_up:
            self.position = last
            self._caught_up.notify_all()

    def run_once(self) -> int:
        """Fold the next page; the number of events read (0 when caught up)."""
        rows = self._fetch(self.position)
        if rows:
            self._apply(rows)
        return len(rows)

    def catch_up(self, progress: Callable[[int], object] | None = None) -> int:
        """Fold pages until no event is left; the number of events read.

        While a full page is being folded, the next one is read in a second thread, so
        the event store's read and DuckDB's write overlap with the Python fold.
        """
        total = 0
        rows = self._fetch(self.position)
        if len(rows) < self.page_size:
            if rows:
                self._apply(rows)
                if progress is not None:
                    progress(len(rows))
            return len(rows)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector-read") as pool:
            while rows:
                ahead = pool.submit(self._fetch, rows[-1][0])
                try:
                    self._apply(rows)
                except BaseException:
                    ahead.cancel()
                    raise
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
                rows = ahead.result()
        return total

    # --- in the background --------------------------------------------------------------

    def notify(self, _position: int = 0) -> None:
        """Wake the loop now (called after an append in this process)."""
        self._wake.set()

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        backoff = poll_seconds
        while not stop.is_set():
            try:
                self.catch_up()
                backoff = poll_seconds
            except Exception:
                log.exception("projector failed; retrying in %.1fs", backoff)
                backoff = min(backoff * 2, 30.0)
            self._wake.wait(backoff)
            self._wake.clear()
            # let a burst of appends land, so it is folded as one page, not one per command
            stop.wait(self.batch_window)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the read models include ``position``; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._caught_up:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._caught_up.wait(min(remaining, 0.1))
            return True


def rebuild(
    store: EventStore,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    page_size: int = 50_000,
    progress: Callable[[int], object] | None = None,
) -> Projector:
    """Drop the read models and fold the whole log again from the start."""
    cursor = db.cursor()
    cursor.execute("BEGIN TRANSACTION")
    for projection in projections:
        for table in projection.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute("DELETE FROM projection_positions WHERE name = ?", [POSITION_NAME])
    cursor.execute("COMMIT")
    projector = Projector(store, db, projections, page_size=page_size)
    projector.catch_up(progress)
    return projector
