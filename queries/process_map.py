"""The process as it really runs: a process map of a lead funnel, a deal funnel or the
project statuses, from the stage visits the status-time read models keep
(``lead_stage_visits``, ``deal_stage_visits``, ``project_status_visits``).

The records are those created in the period (their first visit entered in it), of the
funnel and, when asked, of a department (a lead's or a deal's responsible manager's
department in the directory, a project's own), over the viewer's scope (the read models
the cursor sees). Each record's path is its visits in order, as it stands now:

- **nodes**: per stage, the visits, the records that visited it, the visits that left it,
  those still in it, and the time a visit waits in it (median and p90; a visit still open
  is measured up to ``as_of``);
- **edges** (the directly-follows graph): per pair of consecutive visits, how many records
  took it and the time it took (from entering the first stage to entering the next: the
  first visit's time); ``starts`` (first stages) and ``ends`` (the last stage of a record
  that left it: closed, won, lost, done) complete the graph, so the edges out of a stage
  and its end count are exactly the visits that left it;
- **variants**: the distinct paths, the most frequent first, each with its share of the
  records and its duration (from entering the first stage to entering the last);
- **rework**: moves back to an earlier stage of the funnel (by step), counted per pair and
  per record;
- **waits**: the stages by median wait, the longest first.

Times are elapsed time (a lead's pauses included: a record waits while paused), in
seconds; medians and p90 are interpolated (``quantile_cont``).

The map is read from the process read models (``lead_process_visits``,
``deal_process_visits``, ``project_process_visits``: projections/process.py), which keep
per visit of a case its next stage, the case's first entry, path and span, and the first
visit of each stage and edge per case: a period is a range on the first entry, the
variants a GROUP BY on the stored path, the records per stage or edge a count. When the
stored rows cannot answer as asked (a picked case has a visit entered after ``as_of``, or
before the period's start), the visits are gathered from the status-time visits instead
(``lead_stage_visits``, ...) into a temporary table of the request's cursor, read by four
small aggregations, and dropped: the same figures, computed the old way.

A long period (over ``LONG_PERIOD``, 45 days: a quarter is one, or without a start) whose
whole months hold ``MONTHS_MIN_CASES`` cases or more reads those months from the months
read model (``lead_process_months``, ...: projections/process_months.py): counts per
month, funnel and owner (and per department, and everyone's) with histograms of the times
in log-spaced buckets, summed; the cut months at its ends are bucketed from the process
visits the same way (counted together, not per month and owner), the visits still open
from ``lead_process_open`` (measured up to ``as_of``). Its counts, paths, shares and moves
back are the exact ones; its medians and p90 are within ``RELATIVE_ERROR`` (2 %) of
them. A department's long period reads the department's rows (its people's summed when
they were counted, with the directory as it stood then: a directory event counts them
again), not its people's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb

from projections import process_months as pm
from projections.process import PATH_SEPARATOR
from queries import common

Kind = Literal["lead", "deal", "project"]
MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class StageInfo:
    """A configured stage in funnel order: its id, name and step (rework is a move to a
    smaller step)."""

    id: str
    name: str
    step: int


@dataclass(frozen=True)
class ProcessMapFilters:
    kind: Kind
    funnel: str | None
    """The lead or deal funnel (None for projects)."""
    as_of: datetime
    start: datetime | None = None
    end: datetime | None = None
    department: str | None = None
    variants: int = 10
    """How many of the most frequent variants to list."""


# Each kind's visits of one funnel (``{department}``: only the records of a department).
BASE_SQL: dict[Kind, str] = {
    "lead": """
        SELECT lead_id AS subject_id, visit_no, stage, entered_at, left_at
        FROM lead_stage_visits WHERE funnel = $funnel{department}""",
    "deal": """
        SELECT deal_id AS subject_id, visit_no, stage, entered_at, left_at
        FROM deal_stage_visits WHERE funnel = $funnel{department}""",
    "project": """
        SELECT project_id AS subject_id, visit_no, status AS stage, entered_at, left_at
        FROM project_status_visits WHERE $funnel IS NULL{department}""",
}

# A record's department: its responsible manager's in the directory (a project's own).
DEPARTMENT_SQL: dict[Kind, str] = {
    "lead": " AND lead_id IN (SELECT o.lead_id FROM leads o JOIN users u"
    " ON u.username = o.manager WHERE u.department = $department)",
    "deal": " AND deal_id IN (SELECT d.deal_id FROM deals d JOIN users u"
    " ON u.username = d.manager WHERE u.department = $department)",
    "project": " AND project_id IN (SELECT project_id FROM projects"
    " WHERE department = $department)",
}

# The picked visits: of records first seen in the period (and the department), each with
# the next visit's stage, its time and the steps of both stages.
GATHER_SQL = """
CREATE OR REPLACE TEMP TABLE _process_visits AS
WITH steps(stage, step) AS (SELECT CAST(col0 AS VARCHAR), CAST(col1 AS INTEGER)
  FROM (VALUES {steps})),
base AS ({base}),
cases AS (
  SELECT subject_id FROM base
  WHERE visit_no = 1{period}
),
ordered AS (
  SELECT b.subject_id, b.visit_no, b.stage, b.entered_at, b.left_at,
    lead(b.stage) OVER (PARTITION BY b.subject_id ORDER BY b.visit_no) AS next_stage
  FROM base b SEMI JOIN cases c ON c.subject_id = b.subject_id
  WHERE b.entered_at <= $as_of{later}
)
SELECT o.subject_id, o.visit_no, o.stage, o.entered_at, o.left_at, o.next_stage,
  (epoch_us(least(coalesce(o.left_at, $as_of), $as_of)) - epoch_us(o.entered_at))
    AS wait_us,
  o.left_at IS NOT NULL AND o.left_at <= $as_of AS has_left,
  s.step, n.step AS next_step
FROM ordered o LEFT JOIN steps s ON s.stage = o.stage
  LEFT JOIN steps n ON n.stage = o.next_stage
"""

# The same figures from the process read models (projections/process.py), straight from
# the stored rows of the period's cases (a range on the case's first entry): the next
# stage, the path, its duration and the first visit of a stage or edge per case are
# stored; only what depends on ``as_of`` (a visit still open waits until then) is computed
# here, and which moves go back (the funnel's steps) in Python. ``{where}`` picks the rows.
FAST_TABLES: dict[Kind, str] = {
    "lead": "lead_process_visits",
    "deal": "deal_process_visits",
    "project": "project_process_visits",
}
FAST_KEYS: dict[Kind, str] = {"lead": "lead_id", "deal": "deal_id", "project": "project_id"}
FAST_WAIT = "epoch_us(least(coalesce(o.left_at, $as_of), $as_of)) - epoch_us(o.entered_at)"
# The cases the stored rows cannot answer for as asked (a visit entered after ``as_of``,
# or before the period's start): then the visits are gathered the old way.
FAST_STALE_SQL = "SELECT count(*) FROM {table} o WHERE {where} AND o.seq = 1 AND ({stale})"
FAST_NODES_SQL = f"""
SELECT o.stage, count(*) AS visits, count(*) FILTER (WHERE o.first_in_stage) AS records,
  count(*) FILTER (WHERE o.left_at <= $as_of) AS left_count,
  count(*) FILTER (WHERE o.left_at IS NULL OR o.left_at > $as_of) AS waiting_now,
  quantile_cont({FAST_WAIT}, [0.5, 0.9]) AS q,
  count(*) FILTER (WHERE o.seq = 1) AS starts,
  count(*) FILTER (WHERE o.left_at <= $as_of AND o.next_stage IS NULL) AS ends
FROM {{table}} o WHERE {{where}} GROUP BY o.stage
"""
FAST_EDGES_SQL = f"""
SELECT o.stage AS from_stage, o.next_stage AS to_stage, count(*) AS count,
  count(*) FILTER (WHERE o.first_on_edge) AS records,
  quantile_cont({FAST_WAIT}, [0.5, 0.9]) AS q
FROM {{table}} o WHERE {{where}} AND o.next_stage IS NOT NULL
GROUP BY o.stage, o.next_stage
"""
FAST_VARIANTS_SQL = """
SELECT o.path, any_value(o.steps) AS steps, count(*) AS count,
  quantile_cont(epoch_us(o.last_at) - epoch_us(o.min_at), [0.5, 0.9]) AS q,
  count(*) OVER () AS variants
FROM {table} o WHERE {where} AND o.seq = 1
GROUP BY o.path ORDER BY count DESC, o.path LIMIT $limit
"""
# The records that moved back at least once (``{back}``: the moves back, as pairs).
FAST_REWORK_SQL = """
SELECT count(DISTINCT o.{key}) FROM {table} o
WHERE {where} AND (o.stage, o.next_stage) IN ({back})
"""
# A department's people (a lead's or deal's ``owner`` is its responsible manager): read
# first, so that the stored rows are filtered by a list of constants (a semi join with
# the directory costs a year's months 8 times the scan).
DEPARTMENT_PEOPLE_SQL = "SELECT username FROM users WHERE department = ? ORDER BY username"

NODES_SQL = """
SELECT stage, count(*) AS visits, count(DISTINCT subject_id) AS records,
  count(*) FILTER (WHERE has_left) AS left_count,
  count(*) FILTER (WHERE NOT has_left) AS waiting_now,
  quantile_cont(wait_us, 0.5) AS median_us, quantile_cont(wait_us, 0.9) AS p90_us,
  count(*) FILTER (WHERE visit_no = 1) AS starts,
  count(*) FILTER (WHERE has_left AND next_stage IS NULL) AS ends
FROM _process_visits GROUP BY stage
"""

EDGES_SQL = """
SELECT stage AS from_stage, next_stage AS to_stage, count(*) AS count,
  count(DISTINCT subject_id) AS records,
  quantile_cont(wait_us, 0.5) AS median_us, quantile_cont(wait_us, 0.9) AS p90_us,
  coalesce(bool_or(next_step < step), FALSE) AS back
FROM _process_visits WHERE next_stage IS NOT NULL
GROUP BY stage, next_stage
"""

VARIANTS_SQL = """
WITH paths AS (
  SELECT subject_id, string_agg(stage, $separator ORDER BY visit_no) AS path,
    count(*) AS steps,
    epoch_us(max(entered_at)) - epoch_us(min(entered_at)) AS duration_us
  FROM _process_visits GROUP BY subject_id
)
SELECT path, any_value(steps) AS steps, count(*) AS count,
  quantile_cont(duration_us, 0.5) AS median_us, quantile_cont(duration_us, 0.9) AS p90_us,
  count(*) OVER () AS variants
FROM paths GROUP BY path ORDER BY count DESC, path LIMIT $limit
"""

REWORK_SQL = """
SELECT count(*) FILTER (WHERE next_step < step) AS moves,
  count(DISTINCT subject_id) FILTER (WHERE next_step < step) AS records,
  count(DISTINCT subject_id) AS cases
FROM _process_visits
"""


def department_exists(cursor: duckdb.DuckDBPyConnection, department: str) -> bool:
    """Whether someone in the directory belongs to the department."""
    cursor.execute("SELECT 1 FROM users WHERE department = ? LIMIT 1", [department])
    return bool(cursor.fetchall())


def _seconds(us: float | int | None) -> float | None:
    return None if us is None else float(us) / MICROSECONDS


def _gather_sql(
    filters: ProcessMapFilters, stages: Sequence[StageInfo]
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"funnel": filters.funnel, "as_of": filters.as_of}
    rows = []
    for i, stage in enumerate(stages):
        rows.append(f"($s{i}, $t{i})")
        params[f"s{i}"] = stage.id
        params[f"t{i}"] = stage.step
    period = later = ""
    if filters.start is not None:
        period += " AND entered_at >= $start"
        # a record's visits all follow its first: those before the period are none of its
        later = " AND b.entered_at >= $start"
        params["start"] = filters.start
    if filters.end is not None:
        period += " AND entered_at <= $end"
        params["end"] = filters.end
    department = ""
    if filters.department is not None:
        department = DEPARTMENT_SQL[filters.kind]
        params["department"] = filters.department
    sql = GATHER_SQL.format(
        steps=", ".join(rows) or "(NULL, NULL)",
        base=BASE_SQL[filters.kind].format(department=department),
        period=period,
        later=later,
    )
    return sql, params


def _department_where(
    cursor: duckdb.DuckDBPyConnection, filters: ProcessMapFilters, params: dict[str, Any]
) -> str:
    """The stored rows' condition of the department (``o.owner``: a lead's or deal's
    responsible manager, a project's department), its parameters put in ``params``."""
    if filters.kind == "project":
        params["department"] = filters.department
        return " AND o.owner = $department"
    cursor.execute(DEPARTMENT_PEOPLE_SQL, [filters.department])
    people = [row[0] for row in cursor.fetchall()]
    for i, person in enumerate(people):
        params[f"person{i}"] = person
    listed = ", ".join(f"$person{i}" for i in range(len(people)))
    return f" AND o.owner IN ({listed})" if people else " AND FALSE"


def _fast_where(
    cursor: duckdb.DuckDBPyConnection, filters: ProcessMapFilters
) -> tuple[str, str, dict[str, Any], str]:
    """The stored rows' WHERE (the funnel, the period, the department), the condition of
    a case the stored rows cannot answer for, their parameters and the department's
    condition alone."""
    params: dict[str, Any] = {"funnel": filters.funnel, "as_of": filters.as_of}
    where = "$funnel IS NULL" if filters.kind == "project" else "o.funnel = $funnel"
    stale = "o.last_at > $as_of"
    if filters.start is not None:
        where += " AND o.first_at >= $start"
        stale += " OR o.min_at < $start"
        params["start"] = filters.start
    if filters.end is not None:
        where += " AND o.first_at <= $end"
        params["end"] = filters.end
    department = ""
    if filters.department is not None:
        department = _department_where(cursor, filters, params)
    return where + department, stale, params, department


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _quantiles(row: dict[str, Any]) -> dict[str, Any]:
    q = row.pop("q")
    row["median_us"], row["p90_us"] = (None, None) if q is None else q
    return row


def _back(stages: Sequence[StageInfo]) -> Callable[[str, str], bool]:
    """Whether a move from one stage to another goes back (to a smaller step; a stage no
    longer configured goes neither way)."""
    step = {s.id: s.step for s in stages}

    def back(frm: str, to: str) -> bool:
        a, b = step.get(frm), step.get(to)
        return a is not None and b is not None and b < a

    return back


Rows = tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]


def _stored_rows(
    cursor: duckdb.DuckDBPyConnection, filters: ProcessMapFilters, stages: Sequence[StageInfo]
) -> Rows | None:
    """The map's rows from the process read models; None when they cannot answer."""
    table = FAST_TABLES[filters.kind]
    where, stale, params, _ = _fast_where(cursor, filters)
    sql = FAST_STALE_SQL.format(table=table, where=where, stale=stale)
    cursor.execute(sql, _used(sql, params))
    found = cursor.fetchall()
    if found and found[0][0]:
        return None
    sql = FAST_NODES_SQL.format(table=table, where=where)
    cursor.execute(sql, _used(sql, params))
    node_rows = {r["stage"]: _quantiles(r) for r in common.rows(cursor)}
    sql = FAST_EDGES_SQL.format(table=table, where=where)
    cursor.execute(sql, _used(sql, params))
    back = _back(stages)
    edge_rows = [
        {**_quantiles(r), "back": back(r["from_stage"], r["to_stage"])} for r in common.rows(cursor)
    ]
    sql = FAST_VARIANTS_SQL.format(table=table, where=where)
    cursor.execute(sql, {**_used(sql, params), "limit": max(filters.variants, 0)})
    variant_rows = [_quantiles(r) for r in common.rows(cursor)]
    back_pairs = [(r["from_stage"], r["to_stage"]) for r in edge_rows if r["back"]]
    records = 0
    if back_pairs:
        pairs = []
        for i, (frm, to) in enumerate(back_pairs):
            pairs.append(f"($bf{i}, $bt{i})")
            params[f"bf{i}"] = frm
            params[f"bt{i}"] = to
        sql = FAST_REWORK_SQL.format(
            key=FAST_KEYS[filters.kind], table=table, where=where, back=", ".join(pairs)
        )
        cursor.execute(sql, _used(sql, params))
        records = int(cursor.fetchall()[0][0])
    rework_row = {
        "moves": sum(int(r["count"]) for r in edge_rows if r["back"]),
        "records": records,
        "cases": sum(int(r["starts"]) for r in node_rows.values()),
    }
    return node_rows, edge_rows, variant_rows, rework_row


# --- a long period: whole months from the months read model ---------------------------

LONG_PERIOD = timedelta(days=45)
"""Periods longer than this (or without a start) are read from the months read model
(projections/process_months.py) for their whole months, their quantiles within
``RELATIVE_ERROR``, when those hold ``MONTHS_MIN_CASES`` cases or more; shorter ones are
read exactly from the process visits, which answer them in time (a month's map at 1M
leads, 28 ms p95 at rest). A quarter is read from its whole months since its exact map
(every visit's time sorted per stage, edge and path) took 54 ms p95 at rest: its
quantiles are within 2 %, its counts exact."""
RELATIVE_ERROR = pm.RELATIVE_ERROR
MONTH_KINDS: dict[str, pm.MonthKind] = {k.process.kind: k for k in pm.MONTH_KINDS}

# a cut month's visits the process visits answer for only with the instant asked: entered
# or left after it
CUT_STALE_SQL = "SELECT count(*) FROM {table} o WHERE {where} AND ({stale} OR o.left_at > $as_of)"
MONTHS_STALE_SQL = (
    "SELECT min(o.min_at), max(o.max_at), coalesce(sum(o.n) FILTER (WHERE o.part = 'path'), 0)"
    " FROM {table} o WHERE {where}"
)
MONTHS_MIN_CASES = 50_000
"""Whole months holding fewer cases are read exactly from the process visits (about
15 ms at 50,000 cases, at rest): the histograms pay off above it."""
# The map's cells (the stages, edges and paths) summed over the whole months' rows
# ``{months}``, the cut months' rows ``{cut}`` and the waits of the visits still open
# (measured up to the instant asked), with their histograms' quantile ranks: per quantile
# the buckets of the two ranks ``quantile_cont`` interpolates between.
MAP_SQL = (
    """
WITH parts AS (
  SELECT part, coalesce(stage, '') AS stage, coalesce(next_stage, '') AS next_stage,
    coalesce(path, '') AS path, steps, bucket, n, records, starts, ends
  FROM ({months}{cut}) o
  UNION ALL
  SELECT 'open', o.stage, '', '', NULL, """
    + pm.bucket_sql("epoch_us($as_of) - epoch_us(o.entered_at)")
    + """, count(*), 0, 0, 0
  FROM {open} o WHERE {where} GROUP BY ALL
),
cells AS (
  SELECT CASE WHEN part = 'open' THEN 'node' ELSE part END AS cell, * EXCLUDE (part),
    part = 'open' AS opened
  FROM parts
),
totals AS (
  SELECT cell, stage, next_stage, path, any_value(steps) AS steps,
    sum(n) FILTER (WHERE NOT opened) AS n, sum(records) AS records,
    sum(starts) AS starts, sum(ends) AS ends,
    coalesce(sum(n) FILTER (WHERE NOT opened AND bucket IS NULL), 0) AS waiting
  FROM cells GROUP BY ALL
),
hist AS (
  SELECT cell, stage, next_stage, path, bucket, sum(n) AS h
  FROM cells WHERE bucket IS NOT NULL GROUP BY ALL
),
cum AS (
  SELECT *, sum(h) OVER (PARTITION BY cell, stage, next_stage, path ORDER BY bucket) AS cum,
    sum(h) OVER (PARTITION BY cell, stage, next_stage, path) AS tot
  FROM hist
),
ranks AS (
  SELECT cell, stage, next_stage, path, any_value(tot) AS tot,
    min(bucket) FILTER (WHERE cum > floor((tot - 1) * 0.5)) AS m_lo,
    min(bucket) FILTER (WHERE cum > floor((tot - 1) * 0.5) + 1) AS m_hi,
    min(bucket) FILTER (WHERE cum > floor((tot - 1) * 0.9)) AS p_lo,
    min(bucket) FILTER (WHERE cum > floor((tot - 1) * 0.9) + 1) AS p_hi
  FROM cum GROUP BY ALL
)
SELECT t.*, r.tot, r.m_lo, r.m_hi, r.p_lo, r.p_hi
FROM totals t LEFT JOIN ranks r USING (cell, stage, next_stage, path)
"""
)
MONTH_ROWS_SQL = (
    "SELECT part, stage, next_stage, path, steps, bucket, n, records, starts, ends"
    " FROM {table} o WHERE {where}"
)


def _month(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    return (moment.year - 1970) * 12 + moment.month - 1


def _month_start(month: int) -> datetime:
    return datetime(1970 + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _whole_months(filters: ProcessMapFilters) -> tuple[int | None, int | None] | None:
    """The first and last whole month of a long period (None: unbounded), or None when the
    period is short or has no whole month."""
    start, end = filters.start, filters.end
    if start is not None and (end or filters.as_of) - start <= LONG_PERIOD:
        return None
    first = last = None
    if start is not None:
        first = _month(start)
        if _month_start(first) < start:
            first += 1
    if end is not None:
        # the cases are those first seen up to ``end`` included
        last = _month(end + timedelta(microseconds=1)) - 1
    if first is not None and last is not None and first > last:
        return None
    return first, last


def _interpolated(total: int | None, q: float, lo: int | None, hi: int | None) -> float | None:
    """``quantile_cont`` of the times a histogram holds, from the buckets of the two ranks
    it interpolates between (each time taken as its bucket's middle)."""
    if not total or lo is None:
        return None
    h = (total - 1) * q
    frac = h - math.floor(h)
    low = pm.bucket_value(lo)
    if frac == 0 or hi is None:
        return low
    return low + frac * (pm.bucket_value(hi) - low)


def _month_rows(
    cursor: duckdb.DuckDBPyConnection,
    filters: ProcessMapFilters,
    stages: Sequence[StageInfo],
    *,
    always: bool = False,
) -> Rows | None:
    """The map's rows of a long period: its whole months from the months read model, the
    cut months' cases from the process visits; None when they cannot answer (or, unless
    ``always``, its whole months hold fewer than ``MONTHS_MIN_CASES`` cases)."""
    months = _whole_months(filters)
    if months is None:
        return None
    first, last = months
    table = FAST_TABLES[filters.kind]
    where, stale, params, department = _fast_where(cursor, filters)
    month_where = "$funnel IS NULL" if filters.kind == "project" else "o.funnel = $funnel"
    if first is not None:
        month_where += " AND o.month >= $first_month"
        params["first_month"], params["first_at"] = first, _month_start(first)
    if last is not None:
        month_where += " AND o.month <= $last_month"
        params["last_month"], params["after_at"] = last, _month_start(last + 1)
    if filters.department is None:
        month_where += " AND o.everyone"
    elif filters.kind == "project":
        month_where += " AND NOT o.everyone" + department
    else:
        # the department's own rows (its people's summed when the months were counted)
        month_where += " AND o.department = $department"
        params["department"] = filters.department
    month_table = MONTH_KINDS[filters.kind].table
    sql = MONTHS_STALE_SQL.format(table=month_table, where=month_where)
    cursor.execute(sql, _used(sql, params))
    found = cursor.fetchall()
    if found and found[0][1] is not None:
        min_at, max_at, cases = found[0]
        if not always and cases < MONTHS_MIN_CASES:
            return None
        if max_at > filters.as_of or (filters.start is not None and min_at < filters.start):
            return None
    # the cut months' cases: before the first whole month, after the last (two ranges on
    # the first entry, so that each skips the row groups outside it)
    cuts = []
    if filters.start is not None and first is not None:
        cuts.append(f"{where} AND o.first_at < $first_at")
    if filters.end is not None and last is not None:
        cuts.append(f"{where} AND o.first_at >= $after_at")
    cut_rows = ""
    for cut in cuts:
        sql = CUT_STALE_SQL.format(table=table, where=cut, stale=stale)
        cursor.execute(sql, _used(sql, params))
        found = cursor.fetchall()
        if found and found[0][0]:
            return None
        cut_rows += " UNION ALL " + MONTH_ROWS_SQL.format(
            table=f"({pm.rows_sql(table, where=cut, month='0', owner='NULL')})", where="TRUE"
        )
    sql = MAP_SQL.format(
        months=MONTH_ROWS_SQL.format(table=month_table, where=month_where),
        cut=cut_rows,
        open=MONTH_KINDS[filters.kind].open,
        where=where,
    )
    cursor.execute(sql, _used(sql, params))
    cells = common.rows(cursor)

    def quantiles(r: dict[str, Any]) -> dict[str, Any]:
        r["median_us"] = _interpolated(r["tot"], 0.5, r["m_lo"], r["m_hi"])
        r["p90_us"] = _interpolated(r["tot"], 0.9, r["p_lo"], r["p_hi"])
        return r

    back = _back(stages)
    node_rows: dict[str, dict[str, Any]] = {}
    edge_rows: list[dict[str, Any]] = []
    paths: list[dict[str, Any]] = []
    for r in cells:
        if r["cell"] == "node":
            node_rows[r["stage"]] = {
                **quantiles(r),
                "visits": r["n"],
                "left_count": int(r["n"]) - int(r["waiting"]),
                "waiting_now": r["waiting"],
            }
        elif r["cell"] == "edge":
            edge_rows.append(
                {
                    **quantiles(r),
                    "from_stage": r["stage"],
                    "to_stage": r["next_stage"],
                    "count": r["n"],
                    "back": back(r["stage"], r["next_stage"]),
                }
            )
        else:
            paths.append({**r, "count": int(r["n"])})
    paths.sort(key=lambda p: (-p["count"], p["path"]))
    variant_rows = [
        {**quantiles(p), "variants": len(paths)} for p in paths[: max(filters.variants, 0)]
    ]
    records = 0
    for p in paths:
        walk = p["path"].split(PATH_SEPARATOR)
        if any(back(a, b) for a, b in itertools.pairwise(walk)):
            records += p["count"]
    rework_row = {
        "moves": sum(int(e["count"]) for e in edge_rows if e["back"]),
        "records": records,
        "cases": sum(int(n["starts"]) for n in node_rows.values()),
    }
    return node_rows, edge_rows, variant_rows, rework_row


def _gathered_rows(
    cursor: duckdb.DuckDBPyConnection, filters: ProcessMapFilters, stages: Sequence[StageInfo]
) -> Rows:
    """The map's rows gathered from the status-time visits (the old way)."""
    sql, params = _gather_sql(filters, stages)
    cursor.execute(sql, params)
    try:
        cursor.execute(NODES_SQL)
        node_rows = {r["stage"]: r for r in common.rows(cursor)}
        cursor.execute(EDGES_SQL)
        edge_rows = common.rows(cursor)
        cursor.execute(
            VARIANTS_SQL, {"separator": PATH_SEPARATOR, "limit": max(filters.variants, 0)}
        )
        variant_rows = common.rows(cursor)
        cursor.execute(REWORK_SQL)
        rework_row = common.rows(cursor)[0]
    finally:
        cursor.execute("DROP TABLE IF EXISTS _process_visits")
    return node_rows, edge_rows, variant_rows, rework_row


def _ordered(found: dict[str, dict[str, Any]], stages: Sequence[StageInfo]) -> list[str]:
    """Configured stages in funnel order (those visited), then stages no longer configured."""
    known = [s.id for s in stages if s.id in found]
    return known + sorted(set(found) - set(known))


def process_map(
    cursor: duckdb.DuckDBPyConnection,
    filters: ProcessMapFilters,
    stages: Sequence[StageInfo],
    *,
    stored: bool = True,
    months: bool | None = None,
) -> dict[str, Any]:
    """The process map of the records the filters pick (see the module's docstring).

    ``stored``: read the process read models (``False``: gather every visit from the
    status-time visits, the way the read models are checked against); ``months``: read a
    long period's whole months from the months read model (``False``: from the process
    visits, exact; None: when its whole months hold ``MONTHS_MIN_CASES`` cases or more)."""
    found: Rows | None = None
    if stored:
        if months is not False:
            found = _month_rows(cursor, filters, stages, always=bool(months))
        if found is None:
            found = _stored_rows(cursor, filters, stages)
    if found is None:
        found = _gathered_rows(cursor, filters, stages)
    node_rows, edge_rows, variant_rows, rework_row = found
    info = {s.id: s for s in stages}
    order = _ordered(node_rows, stages)
    position = {stage: i for i, stage in enumerate(order)}
    nodes = []
    for i, stage in enumerate(order):
        row = node_rows[stage]
        known = info.get(stage)
        nodes.append(
            {
                "stage": stage,
                "name": known.name if known else stage,
                "step": known.step if known else None,
                "position": i,
                "visits": int(row["visits"]),
                "records": int(row["records"]),
                "left": int(row["left_count"]),
                "waiting_now": int(row["waiting_now"]),
                "starts": int(row["starts"]),
                "ends": int(row["ends"]),
                "median_wait_seconds": _seconds(row["median_us"]),
                "p90_wait_seconds": _seconds(row["p90_us"]),
            }
        )
    edges = [
        {
            "from_stage": r["from_stage"],
            "to_stage": r["to_stage"],
            "count": int(r["count"]),
            "records": int(r["records"]),
            "median_seconds": _seconds(r["median_us"]),
            "p90_seconds": _seconds(r["p90_us"]),
            "rework": bool(r["back"]),
        }
        for r in sorted(
            edge_rows,
            key=lambda r: (position[r["from_stage"]], position[r["to_stage"]]),
        )
    ]
    cases = int(rework_row["cases"])
    variants = [
        {
            "rank": i + 1,
            "path": r["path"],
            "steps": int(r["steps"]),
            "count": int(r["count"]),
            "share": int(r["count"]) / cases if cases else 0.0,
            "median_seconds": _seconds(r["median_us"]),
            "p90_seconds": _seconds(r["p90_us"]),
        }
        for i, r in enumerate(variant_rows)
    ]
    loops = [
        {
            "from_stage": e["from_stage"],
            "to_stage": e["to_stage"],
            "count": e["count"],
            "records": e["records"],
        }
        for e in edges
        if e["rework"]
    ]
    loops.sort(key=lambda e: (-e["count"], position[e["from_stage"]], position[e["to_stage"]]))
    rework_records = int(rework_row["records"] or 0)
    waits: list[dict[str, Any]] = sorted(
        (
            {
                "stage": n["stage"],
                "name": n["name"],
                "visits": n["visits"],
                "waiting_now": n["waiting_now"],
                "median_wait_seconds": n["median_wait_seconds"],
                "p90_wait_seconds": n["p90_wait_seconds"],
            }
            for n in nodes
        ),
        key=lambda w: (-(w["median_wait_seconds"] or 0.0), -(w["p90_wait_seconds"] or 0.0)),
    )
    return {
        "kind": filters.kind,
        "funnel": filters.funnel,
        "department": filters.department,
        "as_of": filters.as_of,
        "records": cases,
        "variant_count": int(variant_rows[0]["variants"]) if variant_rows else 0,
        "rework_moves": int(rework_row["moves"] or 0),
        "rework_records": rework_records,
        "rework_share": rework_records / cases if cases else 0.0,
        "nodes": nodes,
        "edges": edges,
        "variants": variants,
        "rework": loops,
        "waits": waits,
    }
