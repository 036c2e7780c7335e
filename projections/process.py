"""The process map's read models (issue 16 §3, §4): each record's visits of its own funnel,
ready for a period's map.

One table per kind of record: ``lead_process_visits``, ``deal_process_visits`` and
``project_process_visits``. A record's **case** is its visits in the funnel of its first
visit (a lead transferred away and back keeps only the visits of the funnel it was created
in; a project's case is every status visit), numbered ``seq`` 1, 2, … in visit order. Each
row carries what the map reads of its visit and of its case:

- the record's ``owner``: a lead's or deal's responsible manager, a project's department,
  as they stand now (the department filter reads it, with the directory);
- the visit: ``stage``, ``entered_at``, ``left_at``, the case's next stage after it
  (``next_stage``: the directly-follows edge);
- the case: ``first_at`` (its first visit's entry: the period picks cases by it, so the
  table is read by one range filter), ``min_at`` and ``last_at`` (the earliest and latest
  entry among its visits), and on the first row (``seq = 1``) its ``path`` (the stages in
  order, joined by ``PATH_SEPARATOR``: the variants are a GROUP BY on it) and ``steps``;
- ``first_in_stage`` and ``first_on_edge``: the case's first visit of the stage, its
  first move along the edge, so that the records per stage and per edge are counts, not
  distinct counts.

The rows are derived from the status-time visits (``lead_stage_visits``, kept by
projections/leads.py; ``deal_stage_visits`` and ``project_status_visits``, kept by
projections/status_time.py), so this projection runs after those, in the same
transaction: for every record a page touches (an event that opens or ends a visit), its
rows are deleted and rebuilt from all its visits, set-based in DuckDB. A record that moves
later changes its path, next stages and ``last_at`` at once, and folding the log in any
page sizes gives exactly the rows one rebuild gives.

Times that depend on the instant asked (a visit still open waits until then) and the
funnels' steps (a move back is to a smaller step) are not stored: the query computes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

PATH_SEPARATOR = " → "

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


@dataclass(frozen=True)
class ProcessKind:
    kind: str
    table: str
    """The read model this projection keeps."""
    visits: str
    """The status-time visits it is derived from."""
    key: str
    stage: str
    funnel: str | None
    """The visits' funnel column (None: one process, every visit belongs to the case)."""
    topics: frozenset[str]
    """The events that open or end a visit of the kind, or change its owner."""
    owner: str
    """The record's current-state table and its column kept as ``owner``."""
    owner_changed: str = ""
    """The card change that may change the owner (as its ``changes`` name it)."""


KINDS: tuple[ProcessKind, ...] = (
    ProcessKind(
        "lead",
        "lead_process_visits",
        "lead_stage_visits",
        "lead_id",
        "stage",
        "funnel",
        frozenset(
            {
                "LeadCreated",
                "LeadStageChanged",
                "LeadTransferred",
                "LeadQualified",
                "LeadClosed",
                "LeadCardUpdated",
            }
        ),
        "leads.manager",
        "LeadCardUpdated",
    ),
    ProcessKind(
        "deal",
        "deal_process_visits",
        "deal_stage_visits",
        "deal_id",
        "stage",
        "funnel",
        frozenset(
            {
                "DealCreated",
                "DealStageChanged",
                "DealEstimateReady",
                "DealEstimateRejected",
                "DealClosed",
            }
        ),
        "deals.manager",
    ),
    ProcessKind(
        "project",
        "project_process_visits",
        "project_status_visits",
        "project_id",
        "status",
        None,
        frozenset({"ProjectCreated", "ProjectStatusChanged", "ProjectCardUpdated"}),
        "projects.department",
        "ProjectCardUpdated",
    ),
)


def columns(kind: ProcessKind) -> tuple[tuple[str, str], ...]:
    return (
        (kind.key, "VARCHAR"),
        ("owner", "VARCHAR"),
        ("funnel", "VARCHAR"),
        ("first_at", "TIMESTAMPTZ"),
        ("min_at", "TIMESTAMPTZ"),
        ("last_at", "TIMESTAMPTZ"),
        ("seq", "INTEGER"),
        ("stage", "VARCHAR"),
        ("entered_at", "TIMESTAMPTZ"),
        ("left_at", "TIMESTAMPTZ"),
        ("next_stage", "VARCHAR"),
        ("path", "VARCHAR"),
        ("steps", "INTEGER"),
        ("first_in_stage", "BOOLEAN"),
        ("first_on_edge", "BOOLEAN"),
    )


def _ddl(kind: ProcessKind) -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns(kind))
    return f"CREATE TABLE IF NOT EXISTS {kind.table} ({body})"


# The touched records' rows (their ids in ``_process_touched``; ``{touched}``: the
# condition, empty when every record is derived), rebuilt from all their visits, written
# in the order of their case's first entry: a period's range then skips the row groups
# outside it (DuckDB's min/max per row group).
REBUILD_SQL = """
INSERT INTO {table}
WITH visits AS (
  SELECT {key} AS id, visit_no, {funnel} AS funnel, {stage} AS stage, entered_at, left_at
  FROM {visits}{touched}
),
firsts AS (SELECT id, funnel AS case_funnel FROM visits WHERE visit_no = 1),
mine AS (
  SELECT v.* FROM visits v JOIN firsts f ON f.id = v.id{same_funnel}
),
numbered AS (
  -- one window over each case's visits in order (a GROUP BY with ordered aggregates
  -- joined back cost 15 % more)
  SELECT id, funnel, stage, entered_at, left_at,
    CAST(row_number() OVER w AS INTEGER) AS seq,
    lead(stage) OVER w AS next_stage,
    list(stage) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS stages,
    first_value(entered_at) OVER w AS first_at,
    min(entered_at) OVER c AS min_at, max(entered_at) OVER c AS last_at
  FROM mine WINDOW w AS (PARTITION BY id ORDER BY visit_no), c AS (PARTITION BY id)
),
owners AS (
  SELECT {key} AS id, {owner_column} AS owner FROM {owner_table}{touched}
)
SELECT n.id, w.owner, n.funnel, n.first_at, n.min_at, n.last_at, n.seq, n.stage, n.entered_at,
  n.left_at, n.next_stage,
  CASE WHEN n.seq = 1 THEN array_to_string(n.stages, '{separator}') END,
  CASE WHEN n.seq = 1 THEN CAST(len(n.stages) AS INTEGER) END,
  -- the first visit of its stage in the case; the first move along its edge (a last
  -- visit's edge to no stage is its case's only one)
  n.seq = 1 OR NOT list_contains(n.stages[1:n.seq - 1], n.stage),
  n.seq = 1 OR n.next_stage IS NULL OR NOT list_bool_or(list_transform(range(1, n.seq),
    lambda j: n.stages[j] = n.stage AND n.stages[j + 1] = n.next_stage))
FROM numbered n LEFT JOIN owners w USING (id)
ORDER BY n.first_at
"""


def _rebuild_sql(k: ProcessKind, touched: str) -> str:
    return REBUILD_SQL.format(
        table=k.table,
        key=k.key,
        funnel=k.funnel or "CAST(NULL AS VARCHAR)",
        stage=k.stage,
        visits=k.visits,
        same_funnel=(" AND v.funnel IS NOT DISTINCT FROM f.case_funnel" if k.funnel else ""),
        separator=PATH_SEPARATOR,
        owner_table=k.owner.split(".")[0],
        owner_column=k.owner.split(".")[1],
        touched=touched.format(key=k.key),
    )


class ProcessVisitProjection:
    """The three process tables, rebuilt per touched record from the status-time visits
    (register it after the projections that keep those)."""

    name = "process_visits"
    tables: tuple[str, ...] = tuple(k.table for k in KINDS)
    topics: frozenset[str] = frozenset().union(*(k.topics for k in KINDS))

    def __init__(self) -> None:
        self._topic_values = {k.kind: pa.array(sorted(k.topics), pa.string()) for k in KINDS}
        self._visit_topics = {
            k.kind: pa.array(sorted(k.topics - {k.owner_changed}), pa.string()) for k in KINDS
        }
        touched = " WHERE {key} IN (SELECT unnest($touched))"
        self._statements = {
            k.kind: (
                f"DELETE FROM {k.table}" + touched.format(key=k.key),
                _rebuild_sql(k, touched),
            )
            for k in KINDS
        }
        self._derive = {k.kind: _rebuild_sql(k, "") for k in KINDS}

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(_ddl(k) for k in KINDS)]
        parts += [s for k in KINDS for s in (*self._statements[k.kind], self._derive[k.kind])]
        parts.append(_SOURCE_DIGEST)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        for kind in KINDS:
            cursor.execute(_ddl(kind))

    def derive_all(
        self,
        cursor: duckdb.DuckDBPyConnection,
        kinds: tuple[str, ...] = ("lead", "deal", "project"),
    ) -> None:
        """Every row again from the status-time visits and the owners as they stand,
        inside the caller's transaction: what a rebuild calls once after its last page
        instead of every page's ``apply`` (and benches and tests, for visits written
        without the projector). The same rows as the fold with every record touched."""
        for kind in KINDS:
            if kind.kind not in kinds:
                continue
            cursor.execute(f"DELETE FROM {kind.table}")
            cursor.execute(self._derive[kind.kind])

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        topic = page["topic"]
        for kind in KINDS:
            if not pc.any(pc.is_in(topic, value_set=self._topic_values[kind.kind])).as_py():
                continue
            touched = self._touched(kind, page)
            if not touched:
                continue
            for statement in self._statements[kind.kind]:
                cursor.execute(statement, {"touched": touched})

    def _touched(self, kind: ProcessKind, page: pa.Table) -> list[str]:
        """The records the page touches, found in its Arrow columns (a temporary table
        of them costs two statements): those with an event that opens or ends a visit,
        and those whose card change names the owner's column (its JSON parsed here: a
        page has few of them)."""
        topic = page["topic"]
        streams = page["stream_id"]
        ids = set(
            streams.filter(pc.is_in(topic, value_set=self._visit_topics[kind.kind])).to_pylist()
        )
        if kind.owner_changed:
            changed = page.filter(pc.equal(topic, kind.owner_changed))
            column = kind.owner.split(".")[1]
            for stream_id, state in zip(
                changed["stream_id"].to_pylist(), changed["state"].to_pylist(), strict=True
            ):
                changes = orjson.loads(state).get("changes")
                if isinstance(changes, dict) and column in changes:
                    ids.add(stream_id)
        return sorted(ids)
