"""What every query module shares: the filters of a list, rows as dicts, a page of a
table with its total, and the arithmetic of money, hours and percentages.

Each query takes a DuckDB cursor and returns plain dicts; lists come a page at a time
with the total count of what the filters match.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass
class Filters:
    """Equality filters on columns (None: not filtered) and an optional time range."""

    equal: dict[str, Any] = field(default_factory=dict)
    time_column: str = "created_at"
    start: datetime | None = None
    end: datetime | None = None
    extra: list[tuple[str, list[Any]]] = field(default_factory=list)
    """Further clauses with their parameters."""

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        prefix = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in self.equal.items():
            if value is not None:
                clauses.append(f"{prefix}{column} = ?")
                params.append(value)
        if self.start is not None:
            clauses.append(f"{prefix}{self.time_column} >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{prefix}{self.time_column} <= ?")
            params.append(self.end)
        for clause, values in self.extra:
            clauses.append(clause)
            params.extend(values)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of the cursor's last query, each a dict by column name."""
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


EXPORT_BATCH = 2_000


def streamed_rows(cursor: duckdb.DuckDBPyConnection) -> Iterator[dict[str, Any]]:
    """The rows of the cursor's last query, each a dict by column name, fetched a batch
    at a time (an export of a whole directory never holds it all in memory)."""
    names = [d[0] for d in cursor.description or ()]
    while batch := cursor.fetchmany(EXPORT_BATCH):
        for values in batch:
            yield dict(zip(names, values, strict=True))


def count(cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> int:
    """The single number a ``SELECT count(*) ...`` answers (0 when it answers no row)."""
    row = cursor.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


def page(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    filters: Filters,
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of a table's rows the filters match, in ``order``, and how many match."""
    where, params = filters.where()
    total = count(cursor, f"SELECT count(*) FROM {table}{where}", params)
    cursor.execute(
        f"SELECT {columns} FROM {table}{where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows(cursor), total


def page_of(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def average(total: Decimal | None, n: int) -> Decimal | None:
    """``total / n`` to the cent, rounded half up (None when there is nothing to divide)."""
    if total is None or n == 0:
        return None
    return (Decimal(total) / n).quantize(CENT, rounding=ROUND_HALF_UP)


def decimal(value: Any) -> Decimal:
    """A stored amount or number of hours to the cent (0 for none)."""
    return ZERO if value is None else Decimal(value).quantize(CENT)


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole`` (None when ``whole`` is 0)."""
    if whole == 0:
        return None
    return (part * HUNDRED / whole).quantize(CENT, rounding=ROUND_HALF_UP)


def deviation(actual: Decimal, planned: Decimal) -> Decimal | None:
    """How far the actual hours are from the plan, in % of the plan (+ over, - under)."""
    return percent(actual - planned, planned)


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def name_key(value: str | None) -> tuple[bool, str]:
    """Sort named things by name, the unnamed last."""
    return (value is None, value or "")
