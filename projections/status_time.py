"""Status-time read models: how long each deal spent in each stage, each project in each
status, and when each lead was paused.

- ``deal_stage_visits``: one row per visit of a deal to a stage. ``DealCreated`` opens the
  first; every stage change (``DealStageChanged``, ``DealEstimateReady``,
  ``DealEstimateRejected``) ends the open visit and opens the next; ``DealClosed`` ends
  the last. ``left_at`` is NULL while the deal is still in the stage.
- ``project_status_visits``: one row per visit of a project to a status, the same way
  (``ProjectCreated``, ``ProjectStatusChanged``). ``stops_clock`` marks a status such as
  ``on_hold`` whose time counts for no status and against no limit.
- ``project_status_pms``: each project's PM, so that PMs can see their own projects.
- ``lead_pauses``: every pause of a lead (``LeadPaused`` until ``LeadResumed`` or, when
  the lead is closed while paused, ``LeadClosed``). Leads' visits to stages are kept in
  ``lead_stage_visits`` (projections/leads.py); the pauses let the status-time report
  leave paused time out of a visit at any instant, not only once the pause is over.

- ``status_limit_changes``: every time limit set by hand (``StatusLimitSet``), in log
  order.

The configured limits are not stored: the report reads them from the configuration when
asked and the limits set by hand since from ``status_limit_changes``, so a new limit
applies at once. Only what the folds read (a status's ``stops_clock``) is part of the
fingerprint.

Deals see few events, so their pages are folded in Python, as the deal read models are:
Arrow picks the page's events of a model's topics, the rows those events can change (a
stream's last visit) are read in one query, the events are applied in log order, and the
rows go back with one DELETE and one INSERT per table. Leads make most of the log and the
projects' status changes much of a delivery-heavy one, so the leads' pauses and the
projects' visits are folded set-based in DuckDB, as ``leads`` is. A row holds all
the next page needs, so folding the log in any page sizes gives exactly the rows one
rebuild gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from projections.base import Projection
from projections.deals import Column, MissingCreation, PageEvent, ddl, page_events

Row = dict[str, Any]

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
"""The folds are this module's Python code: any change to it rebuilds the read models."""

TEXT = ("VARCHAR", pa.string())
INT = ("INTEGER", pa.int32())
MOMENT = ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC"))
FLAG = ("BOOLEAN", pa.bool_())


def _column(name: str, kind: tuple[str, pa.DataType]) -> Column:
    return Column(name, kind[0], kind[1])


DEAL_VISIT_COLUMNS: tuple[Column, ...] = (
    _column("deal_id", TEXT),
    _column("visit_no", INT),
    _column("funnel", TEXT),
    _column("stage", TEXT),
    _column("entered_at", MOMENT),
    _column("left_at", MOMENT),
)

PROJECT_VISIT_COLUMNS: tuple[Column, ...] = (
    _column("project_id", TEXT),
    _column("visit_no", INT),
    _column("status", TEXT),
    _column("entered_at", MOMENT),
    _column("left_at", MOMENT),
    _column("stops_clock", FLAG),
)

PROJECT_PM_COLUMNS: tuple[Column, ...] = (_column("project_id", TEXT), _column("pm", TEXT))

LEAD_PAUSE_COLUMNS: tuple[Column, ...] = (
    _column("lead_id", TEXT),
    _column("pause_no", INT),  # the version of the lead's LeadPaused: unique per lead
    _column("paused_at", MOMENT),
    _column("resumed_at", MOMENT),
)


def _arrow(columns: Sequence[Column], rows: Sequence[Row]) -> pa.Table:
    return pa.table(
        {c.name: pa.array([r[c.name] for r in rows], c.arrow) for c in columns},
        schema=pa.schema([(c.name, c.arrow) for c in columns]),
    )


def _with_view(
    cursor: duckdb.DuckDBPyConnection, view: str, table: pa.Table, sql: str
) -> list[tuple[Any, ...]]:
    """Run one statement over a registered Arrow table; the view is released after."""
    cursor.register(view, table)
    try:
        return cursor.execute(sql).fetchall()
    finally:
        cursor.unregister(view)


class StreamRowsFold:
    """Rows of a table that belong to streams (visits), folded event by event.

    Only the rows ``current`` selects for the page's streams can change (a stream's last
    visit); they are read once, the events append and amend rows in
    memory, and the stream's loaded and new rows replace the loaded ones in one DELETE
    and one INSERT.
    """

    name: str
    table: str
    key: str
    row_no: str
    columns: tuple[Column, ...]
    topics: frozenset[str]
    tables: tuple[str, ...]
    current: str
    """A WHERE/QUALIFY tail selecting, among a stream's rows, those a new event may change."""

    def config(self) -> str:
        """The configuration the fold reads (part of the fingerprint)."""
        return ""

    def ddl_parts(self) -> list[tuple[str, tuple[Column, ...]]]:
        return [(self.table, self.columns)]

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(ddl(t, c) for t, c in self.ddl_parts()), self.current]
        parts += [self.config(), _SOURCE_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        for table, columns in self.ddl_parts():
            cursor.execute(ddl(table, columns))

    def fold(self, rows: list[Row], event: PageEvent) -> None:
        """Apply one event to its stream's rows in hand (changed in place, or appended)."""
        raise NotImplementedError

    def after_fold(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        """Tables besides the main one."""

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        events = page_events(page, self.topics)
        if not events:
            return
        keys = sorted({e.stream_id for e in events})
        names = [c.name for c in self.columns]
        loaded = _with_view(
            cursor,
            f"_touched_{self.table}",
            pa.table({"key": pa.array(keys, pa.string())}),
            f"SELECT {', '.join(names)} FROM {self.table} "
            f"WHERE {self.key} IN (SELECT key FROM _touched_{self.table}) {self.current}",
        )
        streams: dict[str, list[Row]] = {key: [] for key in keys}
        for values in loaded:
            row = dict(zip(names, values, strict=True))
            streams[row[self.key]].append(row)
        old = [(r[self.key], r[self.row_no]) for rows in streams.values() for r in rows]
        for event in events:
            self.fold(streams[event.stream_id], event)
        if old:
            view = f"_replaced_{self.table}"
            _with_view(
                cursor,
                view,
                pa.table(
                    {
                        "key": pa.array([k for k, _ in old], pa.string()),
                        "row_no": pa.array([n for _, n in old], pa.int32()),
                    }
                ),
                f"DELETE FROM {self.table} t USING {view} r "
                f"WHERE t.{self.key} = r.key AND t.{self.row_no} = r.row_no",
            )
        new_rows = [r for key in keys for r in streams[key]]
        if new_rows:
            view = f"_new_{self.table}"
            _with_view(
                cursor,
                view,
                _arrow(self.columns, new_rows),
                f"INSERT INTO {self.table} ({', '.join(names)}) SELECT {', '.join(names)} "
                f"FROM {view}",
            )
        self.after_fold(cursor, events)

    def new_row(self, **values: Any) -> Row:
        row: Row = dict.fromkeys(c.name for c in self.columns)
        row.update(values)
        return row


LAST_VISIT = "QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY visit_no DESC) = 1"


class VisitFold(StreamRowsFold):
    """A stream's visits: its creation opens the first, a move ends the open one and
    opens the next, an ending event ends the last."""

    row_no = "visit_no"
    what: str
    created: str
    moves: frozenset[str]
    ends: frozenset[str] = frozenset()

    def opened(self, event: PageEvent, last: Row | None) -> Row:
        raise NotImplementedError

    def fold(self, rows: list[Row], event: PageEvent) -> None:
        last = rows[-1] if rows else None
        if event.topic == self.created:
            if last is None:
                rows.append(self.opened(event, None))
            return
        if last is None:
            raise MissingCreation(self.what, event.stream_id)
        if last["left_at"] is None:
            last["left_at"] = event.moment
        if event.topic in self.moves:
            rows.append(self.opened(event, last))


class DealStageVisitProjection(VisitFold):
    name = "deal_stage_visits"
    table = "deal_stage_visits"
    tables: tuple[str, ...] = ("deal_stage_visits",)
    key = "deal_id"
    what = "deal"
    columns = DEAL_VISIT_COLUMNS
    current = LAST_VISIT.format(key="deal_id")
    created = "DealCreated"
    moves = frozenset({"DealStageChanged", "DealEstimateReady", "DealEstimateRejected"})
    ends = frozenset({"DealClosed"})
    topics = frozenset({created, *moves, *ends, "DealImported"})

    def fold(self, rows: list[Row], event: PageEvent) -> None:
        if event.topic != "DealImported":
            super().fold(rows, event)
            return
        if rows:
            return
        # a deal brought in by an import (issue 18 §2): in its stage since its original
        # instant, until it closed
        doc = event.doc
        closed = doc.get("closed_at")
        rows.append(
            self.new_row(
                deal_id=event.stream_id,
                visit_no=1,
                funnel=doc["funnel"],
                stage=doc["stage"],
                entered_at=datetime.fromisoformat(doc["stage_entered_at"]),
                left_at=None if closed is None else datetime.fromisoformat(closed),
            )
        )

    def opened(self, event: PageEvent, last: Row | None) -> Row:
        doc = event.doc
        return self.new_row(
            deal_id=event.stream_id,
            visit_no=1 if last is None else last["visit_no"] + 1,
            funnel=doc.get("funnel") or (None if last is None else last["funnel"]),
            stage=doc["stage"] if last is None else doc["to_stage"],
            entered_at=event.moment,
        )


# A page's project status visits, set-based (the health process manager makes projects'
# pages long): the events that open a visit (a creation only when the project has no
# visit yet; every status change), each project's stored last visit, ended by its first
# such event of the page, and the new visits, numbered after it, each ended by the next.
PROJECT_VISITS_SQL = """
CREATE OR REPLACE TEMP TABLE _status_events AS
WITH events AS (
  SELECT stream_id AS project_id, position, topic,
    CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ) AS event_at,
    CASE WHEN topic = 'ProjectCreated' THEN json_extract_string(state, '$.status')
      ELSE json_extract_string(state, '$.to_status') END AS status
  FROM _page WHERE topic IN ('ProjectCreated', 'ProjectStatusChanged')
),
stored AS (
  SELECT project_id, max(visit_no) AS last_no FROM project_status_visits
  WHERE project_id IN (SELECT project_id FROM events) GROUP BY project_id
),
created AS (
  SELECT project_id, min(position) AS position FROM events
  WHERE topic = 'ProjectCreated' GROUP BY project_id
)
SELECT e.project_id, e.position, e.topic, e.event_at, e.status, s.last_no,
  -- a change before the project has a visit: its creation is missing
  e.topic = 'ProjectStatusChanged' AND s.last_no IS NULL
    AND coalesce(c.position > e.position, TRUE) AS orphan,
  e.topic = 'ProjectStatusChanged' OR (s.last_no IS NULL AND e.position = c.position) AS opens
FROM events e LEFT JOIN stored s USING (project_id) LEFT JOIN created c USING (project_id)
"""

PROJECT_ORPHAN_SQL = "SELECT project_id FROM _status_events WHERE orphan ORDER BY position LIMIT 1"

PROJECT_VISIT_ROWS_SQL = """
CREATE OR REPLACE TEMP TABLE _status_rows AS
WITH opening AS (SELECT * FROM _status_events WHERE opens),
new AS (
  SELECT project_id, CAST(coalesce(last_no, 0) + row_number() OVER w AS INTEGER) AS visit_no,
    status, event_at AS entered_at, lead(event_at) OVER w AS left_at
  FROM opening WINDOW w AS (PARTITION BY project_id ORDER BY position)
),
firsts AS (
  SELECT project_id, last_no, arg_min(event_at, position) AS event_at FROM opening
  WHERE last_no IS NOT NULL GROUP BY project_id, last_no
)
SELECT v.project_id, v.visit_no, v.status, v.entered_at, coalesce(v.left_at, f.event_at) AS left_at,
  v.stops_clock
FROM project_status_visits v JOIN firsts f
  ON v.project_id = f.project_id AND v.visit_no = f.last_no
UNION ALL
SELECT project_id, visit_no, status, entered_at, left_at, {stops_clock} FROM new
"""

PROJECT_PMS_SQL = """
CREATE OR REPLACE TEMP TABLE _project_pms AS
SELECT stream_id AS project_id,
  arg_max_null(CASE WHEN topic = 'ProjectCreated' THEN json_extract_string(state, '$.pm')
    ELSE json_extract_string(state, '$.changes.pm.new') END, position) AS pm
FROM _page
WHERE topic = 'ProjectCreated'
  OR (topic = 'ProjectCardUpdated' AND json_exists(state, '$.changes.pm'))
GROUP BY stream_id
"""

PROJECT_WRITE_SQL = (
    "DELETE FROM project_status_visits t USING _status_rows r "
    "WHERE t.project_id = r.project_id AND t.visit_no = r.visit_no",
    "INSERT INTO project_status_visits (project_id, visit_no, status, entered_at, left_at, "
    "stops_clock) SELECT * FROM _status_rows ORDER BY project_id, visit_no",
    PROJECT_PMS_SQL,
    "DELETE FROM project_status_pms WHERE project_id IN (SELECT project_id FROM _project_pms)",
    "INSERT INTO project_status_pms SELECT project_id, pm FROM _project_pms ORDER BY project_id",
    "DROP TABLE _status_events",
    "DROP TABLE _status_rows",
    "DROP TABLE _project_pms",
)


class ProjectStatusVisitProjection:
    """Each project's visits to its statuses and its PM, folded set-based: a creation
    opens the first visit, each status change ends the open one and opens the next."""

    name = "project_status_visits"
    table = "project_status_visits"
    tables: tuple[str, ...] = ("project_status_visits", "project_status_pms")
    topics: frozenset[str] = frozenset(
        {"ProjectCreated", "ProjectStatusChanged", "ProjectCardUpdated"}
    )

    def __init__(self, rules: Rules) -> None:
        statuses = rules.project.statuses
        self._stops_clock = {s.id: s.stops_clock for s in statuses}
        self._topic_values = pa.array(sorted(self.topics), pa.string())
        stopping = ", ".join(
            "'" + status.replace("'", "''") + "'"
            for status, stops in sorted(self._stops_clock.items())
            if stops
        )
        # a status no longer configured keeps the clock running
        self._rows_sql = PROJECT_VISIT_ROWS_SQL.format(
            stops_clock=f"coalesce(list_contains([{stopping}]::VARCHAR[], status), FALSE)"
        )

    def config(self) -> str:
        """Which statuses stop the clock: stored in each visit."""
        return repr(sorted(self._stops_clock.items()))

    @property
    def fingerprint(self) -> str:
        parts = [
            self.name,
            ddl(self.table, PROJECT_VISIT_COLUMNS),
            ddl("project_status_pms", PROJECT_PM_COLUMNS),
            PROJECT_VISITS_SQL,
            self._rows_sql,
            *PROJECT_WRITE_SQL,
            self.config(),
            _SOURCE_DIGEST,
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl(self.table, PROJECT_VISIT_COLUMNS))
        cursor.execute(ddl("project_status_pms", PROJECT_PM_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # on an error the caller rolls the transaction back, the temp tables included
        cursor.execute(PROJECT_VISITS_SQL)
        orphan = cursor.execute(PROJECT_ORPHAN_SQL).fetchone()
        if orphan is not None:
            raise MissingCreation("project", str(orphan[0]))
        cursor.execute(self._rows_sql)
        for statement in PROJECT_WRITE_SQL:
            cursor.execute(statement)


PAUSE_TOPICS = ("LeadPaused", "LeadResumed", "LeadClosed", "LeadImported")

# A page's lead pauses, set-based (leads make most of the log): the open pauses of the
# leads whose pause may end in the page, and the page's new pauses, each ended by the
# lead's first resume or close after it (pauses never overlap: a paused lead is resumed
# or closed before it is paused again).
PAUSES_SQL = """
CREATE OR REPLACE TEMP TABLE _pause_rows AS
WITH events AS (
  SELECT stream_id AS lead_id, version, topic,
    CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ) AS event_at
  FROM _page WHERE topic IN ('LeadPaused', 'LeadResumed', 'LeadClosed')
  UNION ALL
  -- a lead imported paused (issue 18 §2): paused since its original instant
  SELECT stream_id, version, 'LeadPaused',
    CAST(json_extract_string(state, '$.paused_since') AS TIMESTAMPTZ)
  FROM _page WHERE topic = 'LeadImported' AND json_extract_string(state, '$.status') = 'paused'
),
pauses AS (
  SELECT lead_id, pause_no, paused_at FROM lead_pauses
  WHERE resumed_at IS NULL
    AND lead_id IN (SELECT lead_id FROM events WHERE topic <> 'LeadPaused')
  UNION ALL
  SELECT lead_id, CAST(version AS INTEGER), event_at FROM events WHERE topic = 'LeadPaused'
),
ends AS (
  SELECT p.lead_id, p.pause_no, arg_min(e.event_at, e.version) AS resumed_at
  FROM pauses p JOIN events e
    ON e.lead_id = p.lead_id AND e.version > p.pause_no AND e.topic <> 'LeadPaused'
  GROUP BY p.lead_id, p.pause_no
)
SELECT p.lead_id, p.pause_no, p.paused_at, n.resumed_at
FROM pauses p LEFT JOIN ends n ON n.lead_id = p.lead_id AND n.pause_no = p.pause_no
"""

PAUSES_WRITE_SQL = (
    "DELETE FROM lead_pauses t USING _pause_rows r "
    "WHERE t.lead_id = r.lead_id AND t.pause_no = r.pause_no",
    "INSERT INTO lead_pauses (lead_id, pause_no, paused_at, resumed_at) "
    "SELECT lead_id, pause_no, paused_at, resumed_at FROM _pause_rows",
    "DROP TABLE _pause_rows",
)


class LeadPauseProjection:
    """Every pause of a lead; a lead closed while paused ends its pause on closing."""

    name = "lead_pauses"
    tables: tuple[str, ...] = ("lead_pauses",)
    topics: frozenset[str] = frozenset(PAUSE_TOPICS)

    def __init__(self) -> None:
        self._topic_values = pa.array(sorted(self.topics), pa.string())

    @property
    def fingerprint(self) -> str:
        parts = [self.name, ddl("lead_pauses", LEAD_PAUSE_COLUMNS), PAUSES_SQL, _SOURCE_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl("lead_pauses", LEAD_PAUSE_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        # on an error the caller rolls the transaction back, the temporary table included
        cursor.execute(PAUSES_SQL)
        for statement in PAUSES_WRITE_SQL:
            cursor.execute(statement)


LIMIT_CHANGE_COLUMNS: tuple[Column, ...] = (
    _column("kind", TEXT),
    _column("funnel", TEXT),
    _column("stage", TEXT),
    Column("limit_hours", "DOUBLE", pa.float64()),
    Column("previous_hours", "DOUBLE", pa.float64()),
    _column("set_at", MOMENT),
    _column("set_by", TEXT),
    _column("set_by_role", TEXT),
    _column("reason", TEXT),
    Column("position", "BIGINT", pa.int64()),
)

LIMIT_CHANGES_SQL = """
INSERT INTO status_limit_changes
SELECT json_extract_string(state, '$.kind'), json_extract_string(state, '$.funnel'),
  json_extract_string(state, '$.stage'),
  CAST(json_extract(state, '$.limit_hours') AS DOUBLE),
  CAST(json_extract(state, '$.previous_hours') AS DOUBLE),
  CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ),
  json_extract_string(state, '$.actor'), json_extract_string(state, '$.actor_role'),
  json_extract_string(state, '$.reason'), position
FROM _page WHERE topic = 'StatusLimitSet' ORDER BY position
"""


class StatusLimitChangeProjection:
    """Every time limit set by hand (``status_limit_changes``, one row per change, in log
    order): the status-time report reads the limit in force at each instant from them."""

    name = "status_limit_changes"
    tables: tuple[str, ...] = ("status_limit_changes",)
    topics: frozenset[str] = frozenset({"StatusLimitSet"})

    def __init__(self) -> None:
        self._topic_values = pa.array(sorted(self.topics), pa.string())

    @property
    def fingerprint(self) -> str:
        parts = [
            self.name,
            ddl("status_limit_changes", LIMIT_CHANGE_COLUMNS),
            LIMIT_CHANGES_SQL,
            _SOURCE_DIGEST,
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl("status_limit_changes", LIMIT_CHANGE_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        cursor.execute(LIMIT_CHANGES_SQL)


def status_time_projections(funnels: FunnelCatalog, rules: Rules) -> list[Projection]:
    """The read models of the status-time report besides ``lead_stage_visits``.

    ``funnels`` is taken for symmetry with the other read models: the folds read no lead
    funnel configuration (stage limits are read when the report is asked for).
    """
    del funnels
    return [
        DealStageVisitProjection(),
        ProjectStatusVisitProjection(rules),
        LeadPauseProjection(),
        StatusLimitChangeProjection(),
    ]
