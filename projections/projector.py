"""The projector: follows the notification log and keeps the DuckDB read models current.

Each page of events is folded by every projection and committed together with the new
position in ONE DuckDB transaction, so a crash anywhere in a page leaves the read models
exactly at the previous page, and the restart folds the page again from there.

Derived read models (a projection with ``derive_all``: its tables are a function of other
read models' tables, e.g. the cohorts, the lead days, the process visits and months) are
folded page by page by the live projector, but a rebuild skips their ``apply`` and derives
them once at the end (``Projector.derive``), which costs one page's fold instead of one
per page. Crash safety: the row ``DERIVE_PENDING`` in ``projection_positions`` says "the
derived models are not current". ``rebuild`` writes it in the transaction that drops the
read models, and ``derive`` clears it in the transaction that derives them. A Projector
opened on a database with the marker set (an interrupted rebuild), without
``derive_at_end``, first derives every derived model at the stored position and clears
the marker, in one transaction, then folds incrementally from there; one opened with
``derive_at_end`` (``rebuild``) keeps skipping them until its ``derive``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from event_store import EventStore
from event_store.follow import Progress, follow_until_stopped
from projections.base import DerivedProjection, Projection
from projections.database import ReadModelDatabase

log = logging.getLogger(__name__)

POSITION_NAME = "read_models"

FINGERPRINTS_DDL = """
CREATE TABLE IF NOT EXISTS read_model_fingerprints (
    name VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL
)
"""

DERIVE_PENDING = "read_models:derive_pending"
"""The marker row (in projection_positions) of derived models not yet derived."""

REBUILD_SETTINGS = {
    # how much write-ahead log a rebuild lets grow before DuckDB checkpoints (see rebuild)
    "checkpoint_threshold": "16GB",
    # DuckDB's buffer pool during a rebuild: what does not fit (the committed pages not
    # yet checkpointed, the derives' intermediates) is evicted or spilled to disk, so the
    # rebuild's peak memory stays under the bench's 1 GiB with the pages in flight
    "memory_limit": "512MB",
}
"""The DuckDB settings a rebuild runs with; the previous values are restored after it."""

FaultHook = Callable[[int], None]
"""Called with the number of events folded so far in the page; tests raise from it."""


def _count_topics(page: pa.Table, topics: frozenset[str]) -> int:
    mask = pc.is_in(page["topic"], value_set=pa.array(sorted(topics), pa.string()))
    return int(pc.sum(mask).as_py() or 0)


def derived_projections(projections: Sequence[Projection]) -> list[DerivedProjection]:
    """The projections derived from other read models (they define ``derive_all``), in
    their order (a derived model may read one registered before it)."""
    return [p for p in projections if isinstance(p, DerivedProjection)]


def _set_pending(cursor: duckdb.DuckDBPyConnection) -> None:
    ReadModelDatabase.set_position(cursor, DERIVE_PENDING, 1)


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
        busy_batch_window: float = 0.3,
        busy_share: float | None = 0.25,
        max_batch_window: float = 1.0,
        derive_at_end: bool = False,
        first_page_size: int | None = None,
    ) -> None:
        self.store = store
        self.db = db
        self.projections = list(projections)
        self.derived = derived_projections(self.projections)
        self.page_size = page_size
        self.first_page_size = min(first_page_size or page_size, page_size)
        self.fault_hook = fault_hook
        self.batch_window = batch_window
        self.busy_batch_window = busy_batch_window
        self.busy_share = busy_share
        self.max_batch_window = max_batch_window
        self._hurry = threading.Event()
        self._cursor = db.cursor()
        self._wake = threading.Event()
        self._prepare_tables()
        pending = db.position(DERIVE_PENDING, self._cursor) > 0
        if derive_at_end and self.derived:
            # the derived models' apply is skipped until derive(): say so first
            if not pending:
                self._cursor.execute("BEGIN TRANSACTION")
                _set_pending(self._cursor)
                self._cursor.execute("COMMIT")
            skipped = {id(p) for p in self.derived}
            self._folding = [p for p in self.projections if id(p) not in skipped]
        else:
            self._folding = self.projections
            if pending:  # an interrupted rebuild: derive them at the stored position
                self.derive()
        self.progress = Progress(db.position(POSITION_NAME, self._cursor), self._hurry_up)

    @property
    def position(self) -> int:
        """The last position the read models include."""
        return self.progress.position

    def _prepare_tables(self) -> None:
        """Create the tables; drop them first when another version or configuration of
        the projections built them (their fingerprint differs), so they are rebuilt."""
        fingerprint = hashlib.sha256(
            "\n".join(p.fingerprint for p in self.projections).encode()
        ).hexdigest()
        cursor = self._cursor
        cursor.execute(FINGERPRINTS_DDL)
        stored = cursor.execute(
            "SELECT fingerprint FROM read_model_fingerprints WHERE name = ?", [POSITION_NAME]
        ).fetchall()
        built = self.db.position(POSITION_NAME, cursor) > 0
        if (stored and stored[0][0] != fingerprint) or (not stored and built):
            log.warning(
                "the read models were built by another version or configuration of "
                "LeadLedger: dropping them to rebuild from the start of the event log"
            )
            drop_read_models(self.db, self.projections)
        cursor.execute("BEGIN TRANSACTION")
        for projection in self.projections:
            projection.create_tables(cursor)
        cursor.execute(
            "INSERT OR REPLACE INTO read_model_fingerprints VALUES (?, ?)",
            [POSITION_NAME, fingerprint],
        )
        cursor.execute("COMMIT")

    def derive(self) -> None:
        """Derive every derived model wholly from the other read models, at the current
        position, and clear the marker, in one transaction; from then on every page is
        folded by every projection."""
        cursor = self._cursor
        cursor.execute("BEGIN TRANSACTION")
        try:
            for projection in self.derived:
                projection.derive_all(cursor)
            cursor.execute("DELETE FROM projection_positions WHERE name = ?", [DERIVE_PENDING])
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        self._folding = self.projections

    # --- one page -----------------------------------------------------------------------

    def _fetch(self, after: int, limit: int | None = None) -> pa.Table:
        return self.store.read_page(after, limit or self.page_size)

    def _apply(self, page: pa.Table) -> None:
        """Fold one page into every projection and commit it with the new position.

        Only the projections with an event of their topics on the page are called (one
        Arrow pass finds the page's topics): a live page of a few commands touches a
        handful of the read models, and each other one would cost its own check, some a
        DuckDB scan of the page. A page none of them folds registers nothing with DuckDB
        and only moves the position."""
        last = page["position"][-1].as_py()
        present = set(pc.unique(page["topic"]).to_pylist())
        folding = [p for p in self._folding if not p.topics.isdisjoint(present)]
        cursor = self._cursor
        if folding:
            cursor.register("_page", page)
        cursor.execute("BEGIN TRANSACTION")
        try:
            hook = self.fault_hook
            folded = 0
            # the hook is called before every projection, skipped or not (tests count on it)
            for projection in folding if hook is None else self._folding:
                if hook is not None:
                    hook(folded)
                    if projection not in folding:
                        continue
                projection.apply(cursor, page)
                if hook is not None:  # the count only serves the hook: not on the hot path
                    folded += _count_topics(page, projection.topics)
            if hook is not None:
                hook(folded)
            self.db.set_position(cursor, POSITION_NAME, last)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            if folding:
                cursor.unregister("_page")
        self.progress.advance(last)

    def run_once(self) -> int:
        """Fold the next page; the number of events read (0 when caught up)."""
        page = self._fetch(self.position)
        if page.num_rows:
            self._apply(page)
        return int(page.num_rows)

    def catch_up(self, progress: Callable[[int], object] | None = None) -> int:
        """Fold pages until no event is left; the number of events read.

        While a full page is being folded in DuckDB, the next one is read from the event
        store in a second thread, so reading and folding overlap. The first read is of
        ``first_page_size`` events, and each next page twice the last up to
        ``page_size``: nothing is folded while the first page is read, so a small one
        starts the fold sooner, and each read stays shorter than the fold it overlaps.
        """
        total = 0
        size = self.first_page_size
        page = self._fetch(self.position, size)
        if page.num_rows < size:
            if page.num_rows:
                self._apply(page)
                if progress is not None:
                    progress(page.num_rows)
            return int(page.num_rows)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector-read") as pool:
            while page.num_rows:
                size = min(2 * size, self.page_size)
                ahead = pool.submit(self._fetch, page["position"][-1].as_py(), size)
                try:
                    self._apply(page)
                except BaseException:
                    ahead.cancel()
                    raise
                total += page.num_rows
                if progress is not None:
                    progress(page.num_rows)
                page = ahead.result()
        return total

    # --- in the background --------------------------------------------------------------

    def notify(self, _position: int = 0) -> None:
        """Wake the loop now (called after an append in this process)."""
        self._wake.set()

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        # a burst of appends settles first, so it is folded as one page, not one per command;
        # while appends keep coming the window widens (busy_batch_window, 0.3 s), so the
        # fixed cost of a page (a DuckDB transaction, each projection's statements: tens
        # of milliseconds whatever the page's size) is shared by more events, and widens
        # further with the time a page takes to fold (busy_share: folding takes at most a
        # quarter of the time, the window up to max_batch_window, 1 s); a read-your-writes
        # waiter (wait_for, reached) cuts it short, so only readers that do not wait for a
        # position see the read models up to that much behind under load
        follow_until_stopped(
            self.catch_up,
            self._wake,
            stop,
            poll_seconds,
            what="projector",
            log=log,
            settle_seconds=self.batch_window,
            busy_settle_seconds=self.busy_batch_window,
            busy_share=self.busy_share,
            max_settle_seconds=self.max_batch_window,
            hurry=self._hurry,
        )

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the read models include ``position``; False on timeout."""
        return self.progress.wait_for(position, timeout)

    async def reached(self, position: int, timeout: float) -> bool:
        """Like ``wait_for``, but awaited: the waiting request holds no thread, only a
        future the projector resolves when it commits ``position``; False on timeout."""
        return await self.progress.reached(position, timeout)

    def _hurry_up(self) -> None:
        self._wake.set()
        self._hurry.set()


def drop_read_models(
    db: ReadModelDatabase, projections: Sequence[Projection], *, derive_pending: bool = False
) -> None:
    """Drop the projections' tables and forget their position, in one transaction (with
    ``derive_pending``: and set the marker of derived models to derive, see above)."""
    cursor = db.cursor()
    cursor.execute("BEGIN TRANSACTION")
    for projection in projections:
        for table in projection.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute("DELETE FROM projection_positions WHERE name = ?", [POSITION_NAME])
    cursor.execute("DELETE FROM projection_positions WHERE name = ?", [DERIVE_PENDING])
    if derive_pending and derived_projections(projections):
        _set_pending(cursor)
    cursor.execute("COMMIT")
    cursor.close()


def rebuild(
    store: EventStore,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    page_size: int = 200_000,
    progress: Callable[[int], object] | None = None,
    fault_hook: FaultHook | None = None,
    first_page_size: int | None = None,
) -> Projector:
    """Drop the read models and fold the whole log again from the start.

    The first page is of ``first_page_size`` events (default: an eighth of
    ``page_size``), the next ones double up to ``page_size`` (see ``catch_up``).

    The derived models are not folded page by page: they are derived once at the end
    (see the module's docstring for the marker that makes this crash-safe).

    The pages are committed to the write-ahead log only, and the database file is written
    once at the end (one CHECKPOINT): by default DuckDB checkpoints whenever the log
    passes 16 MiB, i.e. after every large page, rewriting each time the row groups of the
    tables every page changes (``leads``, the visits) — ~3% of the rebuild's CPU on
    the 1M-event bench. A crash in between loses nothing: the log is replayed on opening.
    """
    drop_read_models(db, projections, derive_pending=True)
    cursor = db.cursor()
    previous = {
        name: str(cursor.execute("SELECT current_setting(?)", [name]).fetchall()[0][0])
        for name in REBUILD_SETTINGS
    }
    try:
        for name, value in REBUILD_SETTINGS.items():
            cursor.execute(f"SET {name} = '{value}'")
        projector = Projector(
            store,
            db,
            projections,
            page_size=page_size,
            fault_hook=fault_hook,
            derive_at_end=True,
            first_page_size=first_page_size or max(1, page_size // 8),
        )
        projector.catch_up(progress)
        projector.derive()
        db.checkpoint()
    finally:
        for name, value in previous.items():
            cursor.execute(f"SET {name} = '{value}'")
        cursor.close()
    return projector
