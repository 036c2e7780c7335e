"""The DuckDB file holding the read models, and each projection's stored position."""

from __future__ import annotations

import threading
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

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            cursor = self._root.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

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

    def close(self) -> None:
        self._root.close()
