"""What a projection is: a set-based fold of a page of events inside one transaction."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import duckdb


class PageEvent(NamedTuple):
    stream_id: str
    version: int
    position: int
    topic: str
    data: dict[str, Any]


class Projection(Protocol):
    name: str
    topics: frozenset[str]
    tables: tuple[str, ...]

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None: ...

    def apply(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        """Fold the page's events into the tables (the caller owns the transaction)."""
