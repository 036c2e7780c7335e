"""Each project's labour already priced (issue 16 §2, §4): ``project_labour``, the read
model the projects' cost and margin report sums.

One row per project with hours logged: the first day hours were logged on it
(``actual_start``), its labour (every hour logged times the hourly cost rate of the person
who logged it in force on that day, ``user_cost_rates``, summed exactly: the report rounds
it to the cent) and the hours logged before the person's first rate (``unpriced``).

The projection runs after the directory's and the projects' read models, in the same
transaction: a project is priced again from ``time_entries`` when a page logs or corrects
hours on it, and every project a person logged hours on when a page sets one of their
rates (a rate changes the price of their hours from its first day on). Pages without
such events cost one Arrow scan.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "VARCHAR"),
    ("actual_start", "DATE"),
    ("labour", "DECIMAL(38,4)"),
    ("unpriced", "DECIMAL(38,2)"),
)

HOURS_TOPICS = ("HoursCorrected", "HoursLogged")
RATE_TOPIC = "UserCostRateSet"
TOPICS = frozenset({*HOURS_TOPICS, RATE_TOPIC})

# The rows of the projects ``{where}`` (over the time entries e) chooses.
LABOUR_SQL = """
WITH rates AS (
  SELECT username, valid_from, rate,
    lead(valid_from, 1, DATE '9999-12-31')
      OVER (PARTITION BY username ORDER BY valid_from) AS until
  FROM user_cost_rates
)
SELECT e.project_id, min(e.day) FILTER (WHERE e.hours > 0) AS actual_start,
  sum(e.hours * coalesce(r.rate, 0))::DECIMAL(38,4) AS labour,
  coalesce(sum(e.hours) FILTER (WHERE r.rate IS NULL), 0)::DECIMAL(38,2) AS unpriced
FROM time_entries e LEFT JOIN rates r
  ON e.person = r.username AND e.day >= r.valid_from AND e.day < r.until
WHERE {where}
GROUP BY e.project_id
"""


def _ddl() -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS project_labour ({body})"


TOUCHED_SQL = (
    "CREATE OR REPLACE TEMP TABLE _labour_touched AS "
    "SELECT stream_id AS project_id FROM _page WHERE topic IN ("
    + ", ".join(f"'{t}'" for t in HOURS_TOPICS)
    + ") UNION SELECT project_id FROM time_entries WHERE person IN ("
    f"SELECT json_extract_string(state, '$.username') FROM _page WHERE topic = '{RATE_TOPIC}')"
)

WRITE_SQL = (
    "DELETE FROM project_labour WHERE project_id IN (SELECT project_id FROM _labour_touched)",
    "INSERT INTO project_labour "
    + LABOUR_SQL.format(where="e.project_id IN (SELECT project_id FROM _labour_touched)"),
    "DROP TABLE _labour_touched",
)


class ProjectLabourProjection:
    """``project_labour`` (register it after the directory's and the projects'
    projections)."""

    name = "project_labour"
    tables: tuple[str, ...] = ("project_labour",)
    topics: frozenset[str] = TOPICS

    def __init__(self) -> None:
        self._topic_values = pa.array(sorted(self.topics), pa.string())

    @property
    def fingerprint(self) -> str:
        parts = [self.name, _ddl(), TOUCHED_SQL, *WRITE_SQL, _SOURCE_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(_ddl())

    def derive_all(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Every row again from the time entries and rates as they stand (for read models
        written without the projector, as benches fill them)."""
        cursor.execute("DELETE FROM project_labour")
        cursor.execute("INSERT INTO project_labour " + LABOUR_SQL.format(where="TRUE"))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # on an error the caller rolls the transaction back, the temp table included
        cursor.execute(TOUCHED_SQL)
        for statement in WRITE_SQL:
            cursor.execute(statement)
