"""The DuckDB file holding the read models, and each projection's stored position."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS projection_positions (
    name VARCHAR PRIMARY KEY,
    position BIGINT NOT NULL
)
"""


class ReadModelDatabase:
    """One DuckDB database per process; each thread works through its own cursor."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._root = duckdb.connect(self.path)
        self._root.execute("SET TimeZone = 'UTC'")
        self._root.execute(POSITIONS_DDL)
        self._lock = threading.Lock()
        self._idle: OrderedDict[Hashable, list[duckdb.DuckDBPyConnection]] = OrderedDict()
        self._idle_count = 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            cursor = self._root.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    @contextmanager
    def leased(
        self,
        key: Hashable,
        prepare: Callable[[duckdb.DuckDBPyConnection], None],
        *,
        keep: int = 64,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor prepared for ``key`` (e.g. a reader's scoped views), taken from the
        ones kept from earlier requests of the same key or prepared now, and kept after
        use (the ``keep`` most recently used ones; older ones are closed)."""
        with self._lock:
            idle = self._idle.get(key)
            cursor = idle.pop() if idle else None
            if cursor is not None:
                self._idle_count -= 1
        if cursor is None:
            cursor = self.cursor()
            try:
                prepare(cursor)
            except BaseException:
                cursor.close()
                raise
        try:
            yield cursor
        except duckdb.Error:
            cursor.close()  # its state is unknown after a database error: not kept
            raise
        finally:
            self._keep(key, cursor, keep)

    def _keep(self, key: Hashable, cursor: duckdb.DuckDBPyConnection, keep: int) -> None:
        try:
            cursor.execute("SELECT 1")
        except duckdb.Error:
            return  # closed above
        closing: list[duckdb.DuckDBPyConnection] = []
        with self._lock:
            self._idle.setdefault(key, []).append(cursor)
            self._idle.move_to_end(key)
            self._idle_count += 1
            while self._idle_count > keep:
                _, oldest = next(iter(self._idle.items()))
                closing.append(oldest.pop(0))
                self._idle_count -= 1
                if not oldest:
                    self._idle.popitem(last=False)
        for old in closing:
            old.close()

    def position(self, name: str, cursor: duckdb.DuckDBPyConnection | None = None) -> int:
        cur = cursor or self.cursor()
        rows = cur.execute(
            "SELECT position FROM projection_positions WHERE name = ?", [name]
        ).fetchall()
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def set_position(cursor: duckdb.DuckDBPyConnection, name: str, position: int) -> None:
        cursor.execute(
            "INSERT OR REPLACE INTO projection_positions (name, position) VALUES (?, ?)",
            [name, position],
        )

    def checkpoint(self) -> None:
        """Write the committed transactions from the write-ahead log into the file."""
        cursor = self.cursor()
        try:
            cursor.execute("CHECKPOINT")
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            kept = [c for cursors in self._idle.values() for c in cursors]
            self._idle.clear()
            self._idle_count = 0
        for cursor in kept:
            cursor.close()
        self._root.close()
