"""Each task's plan spread over its days (issue 16 §2, §4): ``plan_days``, the read model
of the resource load and plan/fact reports.

One row per task with planned hours and each day of its span whose share of the plan is
not zero: the project, the task, its assignee (``person``; none for a task nobody is
assigned to), the day and the hours of the plan that fall on it (``planned``). The
plan is spread as :func:`queries.projects.planned_in_period` spreads it: pro rata over
the production calendar's working days of the task's span (over its calendar days when
it has none), the plan up to a day rounded to the cent and each day given the plan up to
it less the plan up to the day before; so the days of any period add up to exactly the
period's plan, to the cent.

The projection runs after the projects' read models, in the same transaction: every
task of a project whose tasks or card (the planned dates a task's span falls back on) a
page changes is spread again from ``project_tasks`` and ``projects``. Pages without such
events cost one Arrow scan. Folding the log in any page sizes gives the rows one rebuild
gives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from aggregates.rules import Calendar
from queries.projects import workdays_before

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "VARCHAR"),
    ("task_id", "VARCHAR"),
    ("person", "VARCHAR"),
    ("day", "DATE"),
    ("planned", "DECIMAL(18,2)"),
)

TOPICS = frozenset(
    {
        # a task's plan, span or assignee, or the project's planned dates
        "ProjectCreated",
        "ProjectCardUpdated",
        "TaskAdded",
        "TaskUpdated",
    }
)


def days_sql(calendar: Calendar, where: str) -> str:
    """SQL: the rows of ``plan_days`` of the tasks (``project_tasks`` t of ``projects``
    p) that ``where`` chooses. A task's span and shares are those of
    :func:`queries.projects.planned_in_period`, the working days before a day counted by
    the same expression, but once per day of the tasks' spans (a calendar looked up by
    day) instead of on every row of the spread."""

    def before(day: str) -> str:
        return workdays_before(calendar, day)

    return f"""
    WITH spans AS (
      SELECT t.project_id, t.task_id, t.assignee, t.planned_hours,
        coalesce(t.start, p.planned_start, t.added_at::DATE) AS first,
        greatest(coalesce(t.due, p.planned_end, t.start, p.planned_start,
                          t.added_at::DATE),
                 coalesce(t.start, p.planned_start, t.added_at::DATE)) AS last
      FROM project_tasks t JOIN projects p ON p.project_id = t.project_id
      WHERE t.planned_hours > 0 AND ({where})
    ),
    calendar AS (
      SELECT day, {before("day")} AS before, {before("day + 1")} AS upto
      FROM (
        SELECT CAST(unnest(generate_series(min(first), max(last), INTERVAL 1 DAY)) AS DATE)
          AS day
        FROM spans
      )
    ),
    counted AS (
      SELECT s.*, f.before AS first_before, l.upto - f.before AS weight,
        date_diff('day', s.first, s.last) + 1 AS length
      FROM spans s JOIN calendar f ON f.day = s.first JOIN calendar l ON l.day = s.last
    ),
    spread AS (
      SELECT c.*, CAST(unnest(generate_series(c.first, c.last, INTERVAL 1 DAY)) AS DATE) AS day
      FROM counted c
    ),
    -- the calendar as two lists indexed by day: a lookup per task day instead of a join
    listed AS (
      SELECT min(day) AS start, list(before ORDER BY day) AS befores,
        list(upto ORDER BY day) AS uptos
      FROM calendar
    ),
    looked AS (
      SELECT s.*, l.befores[date_diff('day', l.start, s.day) + 1] AS before,
        l.uptos[date_diff('day', l.start, s.day) + 1] AS upto
      FROM spread s, listed l
    ),
    shares AS (
      SELECT s.project_id, s.task_id, s.assignee, s.day,
        CASE WHEN s.weight > 0 THEN (
          round(s.planned_hours * (s.upto - s.first_before) / s.weight, 2)
          - round(s.planned_hours * (s.before - s.first_before) / s.weight, 2)
        )::DECIMAL(18,2)
        ELSE (
          round(s.planned_hours * (date_diff('day', s.first, s.day) + 1) / s.length, 2)
          - round(s.planned_hours * date_diff('day', s.first, s.day) / s.length, 2)
        )::DECIMAL(18,2) END AS planned
      FROM looked s
      -- a day off of a task with working days has no share (the two roundings are equal)
      WHERE s.weight = 0 OR s.upto > s.before
    )
    SELECT project_id, task_id, assignee AS person, day, planned FROM shares
    WHERE planned <> 0
    """


def _ddl() -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS plan_days ({body})"


TOUCHED_SQL = (
    "CREATE OR REPLACE TEMP TABLE _plan_days_touched AS SELECT DISTINCT stream_id AS "
    "project_id FROM _page WHERE topic IN (" + ", ".join(f"'{t}'" for t in sorted(TOPICS)) + ")"
)


class PlanDayProjection:
    """``plan_days`` (register it after the projects' projection)."""

    name = "plan_days"
    tables: tuple[str, ...] = ("plan_days",)
    topics: frozenset[str] = TOPICS

    def __init__(self, calendar: Calendar) -> None:
        self._topic_values = pa.array(sorted(self.topics), pa.string())
        self._write = (
            "DELETE FROM plan_days WHERE project_id IN (SELECT project_id FROM _plan_days_touched)",
            "INSERT INTO plan_days "
            + days_sql(calendar, "t.project_id IN (SELECT project_id FROM _plan_days_touched)"),
            "DROP TABLE _plan_days_touched",
        )
        self._all = days_sql(calendar, "TRUE")

    @property
    def fingerprint(self) -> str:
        parts = [self.name, _ddl(), TOUCHED_SQL, *self._write, _SOURCE_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(_ddl())

    def derive_all(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Every row again from the tasks as they stand (for read models written without
        the projector)."""
        cursor.execute("DELETE FROM plan_days")
        cursor.execute("INSERT INTO plan_days " + self._all)

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # on an error the caller rolls the transaction back, the temp table included
        cursor.execute(TOUCHED_SQL)
        for statement in self._write:
            cursor.execute(statement)
