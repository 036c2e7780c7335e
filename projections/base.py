"""What a projection is: a set-based fold of a page of events inside one transaction."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import duckdb
import pyarrow as pa

from event_store.recorders import PAGE_SCHEMA

__all__ = ["PAGE_SCHEMA", "DerivedProjection", "Projection"]


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


@runtime_checkable
class DerivedProjection(Projection, Protocol):
    """A projection whose tables are a function of other read models' tables.

    Its ``apply`` folds a page incrementally (the live projector calls it); a rebuild
    does not call it, and calls ``derive_all`` once at the end instead.
    """

    def derive_all(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """(Re)compute every row wholly from the other read models' tables, which are
        complete at the current position, inside the caller's transaction, deleting what
        was there first."""
