"""What a projection is: a set-based fold of a page of events inside one transaction."""

from __future__ import annotations

from typing import Protocol

import duckdb
import pyarrow as pa

from event_store.recorders import PAGE_SCHEMA

__all__ = ["PAGE_SCHEMA", "Projection"]


class Projection(Protocol):
    name: str
    topics: frozenset[str]
    tables: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the tables' shape, the fold or the configuration it reads
        changes; stored read models with another fingerprint are rebuilt."""
        ...

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None: ...

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        """Fold the page into the tables (the caller owns the transaction).

        The page is registered in DuckDB as ``_page`` (PAGE_SCHEMA) before the call;
        a projection picks the topics it folds.
        """
