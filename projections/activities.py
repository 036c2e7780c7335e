"""Read models of the managers' activities: ``activities``, one row per activity;
``activities_open``, those still planned; and ``activity_clients``, per client and person
the activities and the last done one.

The fold is set-based SQL over a whole page, inside DuckDB (as ``projections/leads.py``):
the page's activity events are parsed once by DuckDB; each field of an activity takes
the value of the page's last event that sets it (or keeps its stored value). An
activity's life is short (a creation, a reschedule or two, done or cancelled, maybe an
overdue reminder), so most activities are created and finished within one page of a
rebuild. Python touches no event one by one.

A page is written back with two statements: delete the touched rows, insert their new
versions. Overdue is not stored: it is derived at query time (still planned and the
planned end passed), so that it is right at any instant.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from projections.deals import MissingCreation, page_events

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

ACTIVITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("activity_id", "VARCHAR"),
    ("type", "VARCHAR"),
    ("activity_group", "VARCHAR"),
    ("direction", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("company_id", "VARCHAR"),
    ("contact", "VARCHAR"),
    ("lead_id", "VARCHAR"),
    ("deal_id", "VARCHAR"),
    ("project_id", "VARCHAR"),
    ("planned_at", "TIMESTAMPTZ"),
    ("duration_minutes", "INTEGER"),
    ("planned_end", "TIMESTAMPTZ"),
    ("planned_day", "DATE"),
    ("notes", "VARCHAR"),
    ("status", "VARCHAR"),
    ("result", "VARCHAR"),
    ("done_at", "TIMESTAMPTZ"),
    ("cancel_reason", "VARCHAR"),
    ("cancelled_at", "TIMESTAMPTZ"),
    ("registered", "BOOLEAN"),
    ("reschedules", "INTEGER"),
    ("reminded_for", "TIMESTAMPTZ"),
    ("created_at", "TIMESTAMPTZ"),
    ("created_by", "VARCHAR"),
    ("updated_at", "TIMESTAMPTZ"),
    ("version", "INTEGER"),
    ("last_position", "BIGINT"),
)
ACTIVITIES_DDL = (
    "CREATE TABLE IF NOT EXISTS activities ("
    + ", ".join(f"{name} {sql}" for name, sql in ACTIVITY_COLUMNS)
    + ")"
)
OPEN_DDL = ACTIVITIES_DDL.replace("activities (", "activities_open (", 1)
"""The activities still planned (open or overdue), the same columns: the overdue and
upcoming lists and the clients with nothing planned read this small table."""

TOPICS = (
    "ActivityPlanned",
    "ActivityRegistered",
    "ActivityDone",
    "ActivityCancelled",
    "ActivityRescheduled",
    "ActivityOverdueReminderSent",
)
CREATED = "topic IN ('ActivityPlanned', 'ActivityRegistered')"

DOCUMENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("at", "VARCHAR"),
    ("actor", "VARCHAR"),
    ("activity_type", "VARCHAR"),
    ("group", "VARCHAR"),
    ("direction", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("company_id", "VARCHAR"),
    ("contact", "VARCHAR"),
    ("lead_id", "VARCHAR"),
    ("deal_id", "VARCHAR"),
    ("project_id", "VARCHAR"),
    ("planned_at", "VARCHAR"),
    ("duration_minutes", "INTEGER"),
    ("notes", "VARCHAR"),
    ("result", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("planned_end", "VARCHAR"),
)
SHAPE = "{" + ", ".join(f'"{name}": "{sql}"' for name, sql in DOCUMENT_FIELDS) + "}"
FLAT = ", ".join(f'doc."{name}" AS e_{name}' for name, _ in DOCUMENT_FIELDS)
TOPIC_LIST = ", ".join(f"'{t}'" for t in TOPICS)

EVENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _activity_events AS
SELECT position, activity_id, version, topic, {FLAT}, (doc."at")::TIMESTAMPTZ AS event_at
FROM (
  SELECT position, stream_id AS activity_id, version, topic, json_transform(state, '{SHAPE}') AS doc
  FROM _page WHERE topic IN ({TOPIC_LIST})
)
"""


def _last(condition: str, value: str) -> str:
    """The value of the page's last event meeting the condition (NULL: none did)."""
    return f"arg_max({value}, version) FILTER (WHERE {condition})"


# Creations carry the activity's fixed fields (one per stream: no aggregation needed);
# the page's later events per stream are few: their group-by is small.
CHANGES_SQL = f"""
CREATE OR REPLACE TEMP TABLE _activity_changes AS
WITH created AS (
  SELECT activity_id, e_activity_type AS type, e_group AS activity_group,
    e_direction AS direction, e_owner AS owner, e_company_id AS company_id,
    e_contact AS contact, e_lead_id AS lead_id, e_deal_id AS deal_id,
    e_project_id AS project_id, e_notes AS notes, event_at AS created_at,
    e_actor AS created_by, topic = 'ActivityRegistered' AS registered,
    (e_planned_at)::TIMESTAMPTZ AS first_planned_at, e_duration_minutes AS first_duration,
    e_result AS first_result, version AS first_version, position AS first_position
  FROM _activity_events WHERE {CREATED}
),
later AS (
  SELECT activity_id,
    max(version) AS version,
    max(position) AS last_position,
    arg_max(event_at, version) AS updated_at,
    {_last("topic = 'ActivityRescheduled'", "(e_planned_at)::TIMESTAMPTZ")} AS moved_to,
    {_last("topic = 'ActivityRescheduled'", "e_duration_minutes")} AS moved_duration,
    count(*) FILTER (WHERE topic = 'ActivityRescheduled') AS rescheduled,
    any_value(CASE topic WHEN 'ActivityCancelled' THEN 'cancelled' ELSE 'done' END)
      FILTER (WHERE topic IN ('ActivityDone', 'ActivityCancelled')) AS status,
    any_value(e_result) FILTER (WHERE topic = 'ActivityDone') AS result,
    any_value(event_at) FILTER (WHERE topic = 'ActivityDone') AS done_at,
    any_value(e_reason) FILTER (WHERE topic = 'ActivityCancelled') AS cancel_reason,
    any_value(event_at) FILTER (WHERE topic = 'ActivityCancelled') AS cancelled_at,
    {_last("topic = 'ActivityOverdueReminderSent'", "(e_planned_end)::TIMESTAMPTZ")}
      AS reminded_for
  FROM _activity_events WHERE NOT ({CREATED}) GROUP BY activity_id
)
SELECT coalesce(c.activity_id, l.activity_id) AS activity_id,
  coalesce(l.version, c.first_version) AS version,
  coalesce(l.last_position, c.first_position) AS last_position,
  coalesce(l.updated_at, c.created_at) AS updated_at,
  c.activity_id IS NOT NULL AS created,
  c.type, c.activity_group, c.direction, c.owner, c.company_id, c.contact, c.lead_id,
  c.deal_id, c.project_id, c.notes, c.created_at, c.created_by, c.registered,
  coalesce(l.moved_to, c.first_planned_at) AS planned_at,
  coalesce(l.moved_duration, c.first_duration) AS duration_minutes,
  coalesce(l.rescheduled, 0) AS rescheduled,
  CASE WHEN c.registered THEN 'done' ELSE l.status END AS status,
  CASE WHEN c.registered THEN c.first_result ELSE l.result END AS result,
  CASE WHEN c.registered THEN c.created_at ELSE l.done_at END AS done_at,
  l.cancel_reason, l.cancelled_at, l.reminded_for
FROM created c FULL JOIN later l ON l.activity_id = c.activity_id
"""

MISSING_SQL = """
SELECT a.activity_id FROM _activity_changes a
WHERE NOT a.created AND a.activity_id NOT IN (SELECT activity_id FROM activities) LIMIT 1
"""


def _keep(column: str) -> str:
    return f"coalesce(a.{column}, c.{column}) AS {column}"


ROWS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _activity_rows AS
WITH folded AS (
  SELECT a.activity_id,
    {_keep("type")}, {_keep("activity_group")},
    CASE WHEN a.created THEN a.direction ELSE c.direction END AS direction,
    {_keep("owner")},
    CASE WHEN a.created THEN a.company_id ELSE c.company_id END AS company_id,
    CASE WHEN a.created THEN a.contact ELSE c.contact END AS contact,
    CASE WHEN a.created THEN a.lead_id ELSE c.lead_id END AS lead_id,
    CASE WHEN a.created THEN a.deal_id ELSE c.deal_id END AS deal_id,
    CASE WHEN a.created THEN a.project_id ELSE c.project_id END AS project_id,
    {_keep("planned_at")}, {_keep("duration_minutes")},
    CASE WHEN a.created THEN a.notes ELSE c.notes END AS notes,
    coalesce(a.status, c.status, 'planned') AS status,
    {_keep("result")}, {_keep("done_at")}, {_keep("cancel_reason")}, {_keep("cancelled_at")},
    CASE WHEN a.created THEN a.registered ELSE c.registered END AS registered,
    (coalesce(c.reschedules, 0) + a.rescheduled)::INTEGER AS reschedules,
    {_keep("reminded_for")}, {_keep("created_at")}, {_keep("created_by")},
    a.updated_at, a.version::INTEGER AS version, a.last_position
  FROM _activity_changes a
  LEFT JOIN (
    SELECT * FROM activities
    WHERE activity_id IN (SELECT activity_id FROM _activity_changes WHERE NOT created)
  ) c ON c.activity_id = a.activity_id
)
SELECT activity_id, type, activity_group, direction, owner, company_id, contact,
  lead_id, deal_id, project_id, planned_at, duration_minutes,
  planned_at + to_minutes(duration_minutes) AS planned_end,
  (planned_at AT TIME ZONE 'UTC')::DATE AS planned_day,
  notes, status, result, done_at, cancel_reason, cancelled_at, registered, reschedules,
  reminded_for, created_at, created_by, updated_at, version, last_position
FROM folded
"""

CLIENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS activity_clients (company_id VARCHAR, owner VARCHAR, "
    "activities INTEGER, done INTEGER, last_done_at TIMESTAMPTZ)"
)
"""Per client company and person: their activities with it, how many done, and the time
of the last done one (what "clients without interaction" reads, not 1M activities)."""

# An activity's client and owner never change, and it is created and done once: the
# page's new and newly done activities add to their (company, owner) row.
CLIENT_ROWS_SQL = """
CREATE OR REPLACE TEMP TABLE _client_rows AS
WITH touched AS (
  SELECT r.company_id, r.owner,
    count(*) FILTER (WHERE a.created) AS activities,
    count(*) FILTER (WHERE a.status = 'done') AS done,
    max(r.planned_at) FILTER (WHERE a.status = 'done') AS last_done_at
  FROM _activity_rows r JOIN _activity_changes a USING (activity_id)
  WHERE r.company_id IS NOT NULL AND (a.created OR a.status = 'done')
  GROUP BY ALL
)
SELECT t.company_id, t.owner,
  (coalesce(c.activities, 0) + t.activities)::INTEGER AS activities,
  (coalesce(c.done, 0) + t.done)::INTEGER AS done,
  greatest(c.last_done_at, t.last_done_at) AS last_done_at
FROM touched t
LEFT JOIN activity_clients c ON c.company_id = t.company_id AND c.owner = t.owner
"""

# Most activities are created and finished within one page of a rebuild: only those the
# page did not create have rows to delete.
EARLIER = "activity_id IN (SELECT activity_id FROM _activity_changes WHERE NOT created)"
WRITE_SQL = (
    f"DELETE FROM activities WHERE {EARLIER}",
    "INSERT INTO activities SELECT * FROM _activity_rows",
    f"DELETE FROM activities_open WHERE {EARLIER}",
    "INSERT INTO activities_open SELECT * FROM _activity_rows WHERE status = 'planned'",
    CLIENT_ROWS_SQL,
    "DELETE FROM activity_clients c USING _client_rows r"
    " WHERE c.company_id = r.company_id AND c.owner = r.owner",
    "INSERT INTO activity_clients SELECT * FROM _client_rows",
)
TEMP_TABLES = ("_activity_events", "_activity_changes", "_activity_rows", "_client_rows")


class ActivityProjection:
    """``activities``: one row per activity (see the module's docstring)."""

    name = "activities"
    tables: tuple[str, ...] = ("activities", "activities_open", "activity_clients")
    topics: frozenset[str] = frozenset(TOPICS)

    @property
    def fingerprint(self) -> str:
        text = f"{self.name}\n{ACTIVITIES_DDL}\n{OPEN_DDL}\n{CLIENTS_DDL}\n{_SOURCE_DIGEST}"
        return hashlib.sha256(text.encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ACTIVITIES_DDL)
        cursor.execute(OPEN_DDL)
        cursor.execute(CLIENTS_DDL)

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        found = cursor.execute(
            f"SELECT count(*) FROM _page WHERE topic IN ({TOPIC_LIST})"
        ).fetchone()
        if not found or not found[0]:
            return
        try:
            cursor.execute(EVENTS_SQL)
            cursor.execute(CHANGES_SQL)
            missing = cursor.execute(MISSING_SQL).fetchone()
            if missing is not None:
                raise MissingCreation("activity", missing[0])
            cursor.execute(ROWS_SQL)
            for statement in WRITE_SQL:
                cursor.execute(statement)
        finally:
            for table in TEMP_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")


# --- personal weekly plans ----------------------------------------------------------------

PLANS_DDL = (
    "CREATE TABLE IF NOT EXISTS activity_plans (plan_id VARCHAR, manager VARCHAR, week DATE, "
    "note VARCHAR, comments VARCHAR, updated_at TIMESTAMPTZ, updated_by VARCHAR, "
    "version INTEGER, last_position BIGINT)"
)
PLAN_DAYS_DDL = (
    "CREATE TABLE IF NOT EXISTS activity_plan_days (plan_id VARCHAR, manager VARCHAR, "
    "week DATE, day DATE, type VARCHAR, count INTEGER)"
)
PLAN_COLUMNS = (
    "plan_id",
    "manager",
    "week",
    "note",
    "comments",
    "updated_at",
    "updated_by",
    "version",
    "last_position",
)


class ActivityPlanProjection:
    """``activity_plans`` (one row per manager and week, comments as JSON) and
    ``activity_plan_days`` (one row per day and type planned). Plans are few: a page's
    plan events are folded in Python, the touched plans rewritten whole."""

    name = "activity_plans"
    tables: tuple[str, ...] = ("activity_plans", "activity_plan_days")
    topics: frozenset[str] = frozenset({"ActivityPlanSet", "ActivityPlanCommented"})

    @property
    def fingerprint(self) -> str:
        text = f"{self.name}\n{PLANS_DDL}\n{PLAN_DAYS_DDL}\n{_SOURCE_DIGEST}"
        return hashlib.sha256(text.encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(PLANS_DDL)
        cursor.execute(PLAN_DAYS_DDL)

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        events = page_events(page, self.topics)
        if not events:
            return
        keys = sorted({e.stream_id for e in events})
        stored = cursor.execute(
            f"SELECT {', '.join(PLAN_COLUMNS)} FROM activity_plans "
            "WHERE plan_id IN (SELECT unnest(?))",
            [keys],
        ).fetchall()
        plans: dict[str, dict[str, Any]] = {
            row[0]: dict(zip(PLAN_COLUMNS, row, strict=True)) for row in stored
        }
        days: dict[str, dict[str, dict[str, int]] | None] = {}
        for e in events:
            doc = e.doc
            plan = plans.get(e.stream_id)
            if e.topic == "ActivityPlanSet":
                if plan is None:
                    plan = {"plan_id": e.stream_id, "comments": "[]"}
                plan.update(
                    manager=doc["manager"],
                    week=date.fromisoformat(doc["week"]),
                    note=doc.get("note"),
                    updated_at=e.moment,
                    updated_by=doc["actor"],
                )
                per_day: dict[str, dict[str, int]] = {}
                for c in doc["counts"]:
                    per_day.setdefault(c["day"], {})[c["activity_type"]] = int(c["count"])
                days[e.stream_id] = per_day
            else:
                if plan is None:
                    raise MissingCreation("activity plan", e.stream_id)
                comments = orjson.loads(plan["comments"])
                comments.append({"author": doc["actor"], "text": doc["text"], "at": doc["at"]})
                plan["comments"] = orjson.dumps(comments).decode()
            plan["version"] = e.version
            plan["last_position"] = e.position
            plans[e.stream_id] = plan
        cursor.execute("DELETE FROM activity_plans WHERE plan_id IN (SELECT unnest(?))", [keys])
        _insert_arrow(
            cursor,
            "activity_plans",
            pa.table(
                {
                    "plan_id": pa.array(keys, pa.string()),
                    "manager": pa.array([plans[k]["manager"] for k in keys], pa.string()),
                    "week": pa.array([plans[k]["week"] for k in keys], pa.date32()),
                    "note": pa.array([plans[k]["note"] for k in keys], pa.string()),
                    "comments": pa.array([plans[k]["comments"] for k in keys], pa.string()),
                    "updated_at": pa.array(
                        [plans[k]["updated_at"] for k in keys], pa.timestamp("us", tz="UTC")
                    ),
                    "updated_by": pa.array([plans[k]["updated_by"] for k in keys], pa.string()),
                    "version": pa.array([plans[k]["version"] for k in keys], pa.int32()),
                    "last_position": pa.array(
                        [plans[k]["last_position"] for k in keys], pa.int64()
                    ),
                }
            ),
        )
        replaced = sorted(days)
        if not replaced:
            return
        cursor.execute(
            "DELETE FROM activity_plan_days WHERE plan_id IN (SELECT unnest(?))", [replaced]
        )
        rows = [
            (k, plans[k]["manager"], plans[k]["week"], date.fromisoformat(day), code, n)
            for k in replaced
            for day, counts in (days[k] or {}).items()
            for code, n in counts.items()
        ]
        if rows:
            columns = list(zip(*rows, strict=True))
            types = (pa.string(), pa.string(), pa.date32(), pa.date32(), pa.string(), pa.int32())
            names = ("plan_id", "manager", "week", "day", "type", "count")
            _insert_arrow(
                cursor,
                "activity_plan_days",
                pa.table(
                    {
                        name: pa.array(list(values), kind)
                        for name, values, kind in zip(names, columns, types, strict=True)
                    }
                ),
            )


def _insert_arrow(cursor: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Insert an Arrow table's rows in one statement (never row by row)."""
    view = f"_new_{table}"
    cursor.register(view, rows)
    try:
        names = ", ".join(rows.column_names)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        cursor.unregister(view)
