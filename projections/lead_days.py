"""The leads of each day already counted (issue 16 §1, §4): ``lead_days``, the read model of
the "Leads and sales for a period" report.

One row per day of creation (UTC, counted as days since 1970-01-01) and each combination
of what the report splits and counts by: the lead's funnel, responsible manager (the
department is the manager's in the directory, joined when read), source, status, whether
it is a repeat lead, and the pause reason of a paused lead; with how many leads and the
money in them (``leads``, ``amount``). A whole day of the report's period is read from
here; a day the period cuts (a bound inside it) from ``leads``.

The projection runs after the leads' read model, in the same transaction: every day of
creation of a lead whose counted fields a page changes is counted again from ``leads``
(a lead's day never changes: it is set when the lead is created or imported). Folding the
log in any page sizes gives the rows one rebuild gives.

``DAYS_SQL`` is also the scoped viewers' view (read_api/access): over the leads a viewer
sees, computed when read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

DAY = "CAST(epoch_us({column}) // 86400000000 AS INTEGER)"
"""A moment's day (UTC) as days since 1970-01-01."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("day", "INTEGER"),
    ("funnel", "VARCHAR"),
    ("manager", "VARCHAR"),
    ("source", "VARCHAR"),
    ("status", "VARCHAR"),
    ("is_repeat", "BOOLEAN"),
    ("pause_reason", "VARCHAR"),
    ("leads", "BIGINT"),
    ("amount", "DECIMAL(38,2)"),
)

# Each day's rows from the leads the name reads (``{where}``: which).
DAYS_SQL = (
    "SELECT "
    + DAY.format(column="created_at")
    + " AS day, funnel, manager, source, status, coalesce(repeat, FALSE) AS is_repeat,"
    " CASE WHEN status = 'paused' THEN pause_reason END AS pause_reason, count(*) AS leads,"
    " CAST(coalesce(sum(amount), 0) AS DECIMAL(38,2)) AS amount FROM leads{where} GROUP BY ALL"
)

TOPICS = frozenset(
    {
        # the lead's day, funnel, manager, source, status, repeat, pause reason or amount
        "LeadCreated",
        "LeadImported",
        "LeadCardUpdated",
        "LeadCostBreakdownSet",
        "LeadTransferred",
        "LeadPaused",
        "LeadResumed",
        "LeadQualified",
        "LeadClosed",
    }
)


def _ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


# The days of creation of the page's leads (``$leads``: their ids).
TOUCHED_SQL = (
    "SELECT DISTINCT "
    + DAY.format(column="created_at")
    + " FROM leads WHERE lead_id IN (SELECT unnest($leads))"
)

DELETE_SQL = "DELETE FROM lead_days WHERE day IN (SELECT unnest($days))"

# The rows of the touched days (``{first}``..``{last}``: the first and the last, literal
# numbers, so that DuckDB skips the row groups of ``leads`` created outside them, by their
# min/max, instead of computing every lead's day).
INSERT_SQL = "INSERT INTO lead_days " + DAYS_SQL.format(
    where=" WHERE created_at >= to_timestamp({first} * 86400)"
    " AND created_at < to_timestamp(({last} + 1) * 86400) AND "
    + DAY.format(column="created_at")
    + " IN (SELECT unnest($days))"
)


class LeadDayProjection:
    """``lead_days`` (register it after the leads' projection)."""

    name = "lead_days"
    tables: tuple[str, ...] = ("lead_days",)
    topics: frozenset[str] = TOPICS

    def __init__(self) -> None:
        self._topic_values = pa.array(sorted(self.topics), pa.string())

    @property
    def fingerprint(self) -> str:
        parts = [
            self.name,
            _ddl("lead_days", COLUMNS),
            TOUCHED_SQL,
            DELETE_SQL,
            INSERT_SQL,
            _SOURCE_DIGEST,
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(_ddl("lead_days", COLUMNS))

    def derive_all(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Every row again from the leads as they stand (for read models written without
        the projector, as benches fill them)."""
        cursor.execute("DELETE FROM lead_days")
        cursor.execute("INSERT INTO lead_days " + DAYS_SQL.format(where=""))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # the page's leads from its Arrow columns, their days read once, the days passed
        # to the statements that count them again: no temporary table, no read of the
        # page in DuckDB, and only the touched days' leads read
        topic = page["topic"]
        leads = pc.unique(page["stream_id"].filter(pc.is_in(topic, value_set=self._topic_values)))
        found = cursor.execute(TOUCHED_SQL, {"leads": leads.to_pylist()}).fetchall()
        days = [d for (d,) in found if d is not None]  # a day NULL is never counted
        if not days:
            return
        cursor.execute(DELETE_SQL, {"days": days})
        cursor.execute(INSERT_SQL.format(first=min(days), last=max(days)), {"days": days})
