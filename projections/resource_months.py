"""Each person's plan and hours per task and month (issue 16 §2, §4): ``resource_months``,
the read model the resource load sums for the whole months of its period.

One row per person, project, task (none: hours logged on the project, on no task) and
month (its first day) with planned or logged hours in it: the task's plan that falls on
the month's days (``plan_days`` of the person) and the hours the person logged on them
(``time_entries``, as corrected so far). A period's figures are its whole months' rows
plus the day rows of the days it cuts off a month, to the cent: the same sums.

The projection runs after ``plan_days`` and the projects' read models, in the same
transaction: the rows of every project whose plan days or time entries a page changes
are summed again from those tables. Pages without such events cost one Arrow scan.
Folding the log in any page sizes gives the rows one rebuild gives, and
:meth:`ResourceMonthProjection.derive_all` gives them from the two tables at once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from projections import plan_days, project_labour

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

COLUMNS: tuple[tuple[str, str], ...] = (
    ("person", "VARCHAR"),
    ("project_id", "VARCHAR"),
    ("task_id", "VARCHAR"),
    ("month", "DATE"),
    ("planned", "DECIMAL(18,2)"),
    ("logged", "DECIMAL(18,2)"),
    ("project", "VARCHAR"),
    ("title", "VARCHAR"),
)

# a task's plan days change with these; a project's time entries with the hours' topics
TOPICS = frozenset({*plan_days.TOPICS, *project_labour.HOURS_TOPICS})

# The rows of the projects ``{where}`` (over ``project_id``) chooses.
MONTHS_SQL = """
WITH months AS (
  SELECT person, project_id, task_id, date_trunc('month', day)::DATE AS month,
    sum(planned)::DECIMAL(18,2) AS planned, sum(logged)::DECIMAL(18,2) AS logged
  FROM (
    SELECT person, project_id, task_id, day, planned, 0 AS logged FROM plan_days
    WHERE person IS NOT NULL AND {where}
    UNION ALL
    SELECT person, project_id, task_id, day, 0, hours FROM time_entries WHERE {where}
  )
  GROUP BY ALL HAVING sum(planned) <> 0 OR sum(logged) <> 0
)
SELECT m.*, p.title AS project, t.title
FROM months m LEFT JOIN projects p ON p.project_id = m.project_id
LEFT JOIN project_tasks t ON t.project_id = m.project_id AND t.task_id = m.task_id
"""


def _ddl() -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS resource_months ({body})"


TOUCHED_SQL = (
    "CREATE OR REPLACE TEMP TABLE _resource_months_touched AS SELECT DISTINCT stream_id AS "
    "project_id FROM _page WHERE topic IN (" + ", ".join(f"'{t}'" for t in sorted(TOPICS)) + ")"
)

WRITE_SQL = (
    "DELETE FROM resource_months WHERE project_id IN "
    "(SELECT project_id FROM _resource_months_touched)",
    "INSERT INTO resource_months "
    + MONTHS_SQL.format(where="project_id IN (SELECT project_id FROM _resource_months_touched)"),
    "DROP TABLE _resource_months_touched",
)


class ResourceMonthProjection:
    """``resource_months`` (register it after ``plan_days`` and the projects'
    projections)."""

    name = "resource_months"
    tables: tuple[str, ...] = ("resource_months",)
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
        """Every row again from ``plan_days`` and ``time_entries`` as they stand (complete
        at the current position), in the caller's transaction."""
        cursor.execute("DELETE FROM resource_months")
        cursor.execute("INSERT INTO resource_months " + MONTHS_SQL.format(where="TRUE"))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # on an error the caller rolls the transaction back, the temp table included
        cursor.execute(TOUCHED_SQL)
        for statement in WRITE_SQL:
            cursor.execute(statement)
