"""Status-time queries: how long leads, deals and projects spent in each stage or status,
against the configured time limits, as it was at any instant.

Every visit is measured up to ``as_of``: a visit entered later is left out, one still open
then (or left later) counts up to ``as_of``. A lead's paused time is left out of its visit
(``lead_pauses``, clipped to the visit and to ``as_of``); a project's visit to a status
that stops the clock (``on_hold``) is paused time as a whole: its time counts for no
status and against no limit. Durations are summed in whole microseconds, so a report's
totals are exactly the sums of its visits.

Limits come from the configuration at the time of asking (a stage's ``time_limit_hours``,
a project status's ``time_limit_hours``; none for the done status or a status that stops
the clock). A visit is over its limit when its time (pauses left out) exceeds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import duckdb

from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules

Kind = Literal["lead", "deal", "project"]
MICROSECONDS = 1_000_000
HOUR_US = 3600 * MICROSECONDS


@dataclass(frozen=True)
class StageLimit:
    """A configured stage (or project status) and its time limit."""

    funnel: str | None
    stage: str
    limit_hours: float | None
    stops_clock: bool = False

    @property
    def limit_us(self) -> int | None:
        return None if self.limit_hours is None else round(self.limit_hours * HOUR_US)


def stage_limits(kind: Kind, funnels: FunnelCatalog, rules: Rules) -> list[StageLimit]:
    """Every configured stage of the kind, in funnel (or kanban) order, with its limit."""
    if kind == "project":
        project = rules.project
        return [
            StageLimit(
                None,
                s.id,
                None if s.stops_clock or s.id == project.done_status else s.time_limit_hours,
                s.stops_clock,
            )
            for s in project.statuses
        ]
    catalog = funnels if kind == "lead" else rules.deal_funnels
    return [StageLimit(f.id, s.id, s.time_limit_hours) for f in catalog.values() for s in f.stages]


@dataclass(frozen=True)
class StatusTimeFilters:
    kind: Kind
    as_of: datetime
    funnel: str | None = None
    stage: str | None = None
    """A stage (leads, deals) or a status (projects)."""
    owner: str | None = None
    """The manager (leads, deals) or the PM (projects)."""
    subject_id: str | None = None
    over_limit_only: bool = False


# Each kind's visits with the same columns; ``left_raw`` is when the visit ended, if it has.
BASE_SQL: dict[Kind, str] = {
    "lead": """
        SELECT v.lead_id AS subject_id, v.visit_no, v.funnel, v.stage, FALSE AS stops_clock,
          v.entered_at, v.left_at AS left_raw, l.manager AS manager, NULL::VARCHAR AS pm
        FROM lead_stage_visits v LEFT JOIN leads l ON l.lead_id = v.lead_id""",
    "deal": """
        SELECT v.deal_id AS subject_id, v.visit_no, v.funnel, v.stage, FALSE AS stops_clock,
          v.entered_at, v.left_at AS left_raw, d.manager AS manager, NULL::VARCHAR AS pm
        FROM deal_stage_visits v LEFT JOIN deals d ON d.deal_id = v.deal_id""",
    "project": """
        SELECT v.project_id AS subject_id, v.visit_no, NULL::VARCHAR AS funnel,
          v.status AS stage, v.stops_clock, v.entered_at, v.left_at AS left_raw,
          NULL::VARCHAR AS manager, p.pm AS pm
        FROM project_status_visits v LEFT JOIN project_status_pms p
          ON p.project_id = v.project_id""",
}

# The paused time of each lead visit up to as_of: every pause's overlap with the visit.
LEAD_PAUSED_SQL = """
  SELECT c.subject_id, c.visit_no,
    sum(greatest(
      epoch_us(least(coalesce(x.resumed_at, c.ended_at), c.ended_at))
        - epoch_us(greatest(x.paused_at, c.entered_at)),
      0)) AS paused_us
  FROM clipped c JOIN lead_pauses x ON x.lead_id = c.subject_id
    AND x.paused_at < c.ended_at AND coalesce(x.resumed_at, c.ended_at) > c.entered_at
  GROUP BY c.subject_id, c.visit_no"""

NO_PAUSES_SQL = """
  SELECT NULL::VARCHAR AS subject_id, NULL::INTEGER AS visit_no, NULL::BIGINT AS paused_us
  WHERE FALSE"""

VISITS_SQL = """
WITH params AS (SELECT CAST($as_of AS TIMESTAMPTZ) AS as_of),
limits(funnel, stage, limit_us) AS (
  SELECT CAST(col0 AS VARCHAR), CAST(col1 AS VARCHAR), CAST(col2 AS BIGINT)
  FROM (VALUES {limit_rows})
),
base AS ({base}),
clipped AS (
  SELECT b.*,
    CASE WHEN b.left_raw <= p.as_of THEN b.left_raw END AS left_at,
    least(coalesce(b.left_raw, p.as_of), p.as_of) AS ended_at
  FROM base b, params p
  WHERE b.entered_at <= p.as_of{filters}
),
paused AS ({paused}),
measured AS (
  SELECT c.*, epoch_us(c.ended_at) - epoch_us(c.entered_at) AS elapsed_us,
    coalesce(z.paused_us, 0) AS paused_in_visit_us
  FROM clipped c LEFT JOIN paused z ON z.subject_id = c.subject_id AND z.visit_no = c.visit_no
),
visits AS (
  SELECT m.subject_id, m.visit_no, m.funnel, m.stage, m.stops_clock, m.entered_at, m.left_at,
    m.left_at IS NULL AS open, m.manager, m.pm, l.limit_us,
    CASE WHEN m.stops_clock THEN 0 ELSE m.elapsed_us - m.paused_in_visit_us END AS active_us,
    CASE WHEN m.stops_clock THEN m.elapsed_us ELSE m.paused_in_visit_us END AS paused_us
  FROM measured m LEFT JOIN limits l
    ON l.funnel IS NOT DISTINCT FROM m.funnel AND l.stage = m.stage
),
judged AS (
  SELECT *, coalesce(active_us > limit_us, FALSE) AS over_limit,
    open AND coalesce(active_us > limit_us, FALSE) AS over_limit_now
  FROM visits
)
SELECT * FROM judged{judged_filter}
"""

VISIT_COLUMNS = (
    "subject_id, visit_no, funnel, stage, stops_clock, entered_at, left_at, open, manager, pm, "
    "limit_us, active_us, paused_us, over_limit, over_limit_now"
)


def _visits_sql(
    filters: StatusTimeFilters, limits: Sequence[StageLimit]
) -> tuple[str, dict[str, Any]]:
    """The statement selecting ``judged`` visits, and its named parameters."""
    params: dict[str, Any] = {"as_of": filters.as_of}
    rows = []
    for i, limit in enumerate(limits):
        rows.append(f"($f{i}, $s{i}, $l{i})")
        params.update({f"f{i}": limit.funnel, f"s{i}": limit.stage, f"l{i}": limit.limit_us})
    if not rows:
        rows.append("(NULL, NULL, NULL)")
    clauses = []
    for column, name, value in (
        ("funnel", "funnel", filters.funnel),
        ("stage", "stage", filters.stage),
        ("pm" if filters.kind == "project" else "manager", "owner", filters.owner),
        ("subject_id", "subject_id", filters.subject_id),
    ):
        if value is not None:
            clauses.append(f" AND b.{column} = ${name}")
            params[name] = value
    sql = VISITS_SQL.format(
        limit_rows=", ".join(rows),
        base=BASE_SQL[filters.kind],
        filters="".join(clauses),
        paused=LEAD_PAUSED_SQL if filters.kind == "lead" else NO_PAUSES_SQL,
        judged_filter=" WHERE over_limit" if filters.over_limit_only else "",
    )
    return sql, params


def _seconds(us: int | None) -> float:
    return 0.0 if us is None else us / MICROSECONDS


def _visit_out(
    kind: Kind, row: dict[str, Any], limits: dict[tuple[str | None, str], StageLimit]
) -> dict[str, Any]:
    limit = limits.get((row["funnel"], row["stage"]))
    return {
        "kind": kind,
        "subject_id": row["subject_id"],
        "visit_no": row["visit_no"],
        "funnel": row["funnel"],
        "stage": row["stage"],
        "stops_clock": row["stops_clock"],
        "manager": row["manager"],
        "pm": row["pm"],
        "entered_at": row["entered_at"],
        "left_at": row["left_at"],
        "open": row["open"],
        "seconds": _seconds(row["active_us"]),
        "paused_seconds": _seconds(row["paused_us"]),
        "limit_hours": None if limit is None else limit.limit_hours,
        "over_limit": row["over_limit"],
        "over_limit_now": row["over_limit_now"],
    }


def _fetch(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    cursor.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _by_stage(limits: Iterable[StageLimit]) -> dict[tuple[str | None, str], StageLimit]:
    return {(s.funnel, s.stage): s for s in limits}


def list_visits(
    cursor: duckdb.DuckDBPyConnection,
    filters: StatusTimeFilters,
    limits: Sequence[StageLimit],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of visits, the latest entered first, and how many match in all."""
    sql, params = _visits_sql(filters, limits)
    counted = cursor.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()
    total = int(counted[0][0]) if counted else 0
    rows = _fetch(
        cursor,
        f"SELECT {VISIT_COLUMNS} FROM ({sql}) "
        "ORDER BY entered_at DESC, subject_id, visit_no DESC LIMIT $limit OFFSET $offset",
        {**params, "limit": limit, "offset": offset},
    )
    configured = _by_stage(limits)
    return [_visit_out(filters.kind, r, configured) for r in rows], total


def _empty_stage(limit: StageLimit) -> dict[str, Any]:
    return {
        "funnel": limit.funnel,
        "stage": limit.stage,
        "stops_clock": limit.stops_clock,
        "limit_hours": limit.limit_hours,
        "visits": 0,
        "total_us": 0,
        "paused_us": 0,
        "over_limit": 0,
        "current": 0,
        "current_over_limit": 0,
    }


def _stage_out(stage: dict[str, Any]) -> dict[str, Any]:
    visits = stage["visits"]
    return {
        "funnel": stage["funnel"],
        "stage": stage["stage"],
        "stops_clock": stage["stops_clock"],
        "limit_hours": stage["limit_hours"],
        "visits": visits,
        "total_seconds": _seconds(stage["total_us"]),
        "paused_seconds": _seconds(stage["paused_us"]),
        "average_seconds": (None if visits == 0 else _seconds(round(stage["total_us"] / visits))),
        "visits_over_limit": stage["over_limit"],
        "current": stage["current"],
        "current_over_limit": stage["current_over_limit"],
    }


SUMMARY_SQL = """
SELECT funnel, stage, count(*) AS visits, sum(active_us) AS total_us,
  sum(paused_us) AS paused_us, count(*) FILTER (WHERE over_limit) AS over_limit,
  count(*) FILTER (WHERE open) AS current,
  count(*) FILTER (WHERE over_limit_now) AS current_over_limit
FROM ({sql}) GROUP BY funnel, stage
"""

COUNTS = ("visits", "total_us", "paused_us", "over_limit", "current", "current_over_limit")


def summary(
    cursor: duckdb.DuckDBPyConnection,
    filters: StatusTimeFilters,
    limits: Sequence[StageLimit],
) -> dict[str, Any]:
    """Per stage (or status): visits, their total and average time, the limit, visits over
    it, visits still open at as_of and those of them over the limit; and the totals.

    The configured stages the filters select appear even without a visit, in their
    order; stages found in the visits but no longer configured follow.
    """
    sql, params = _visits_sql(filters, limits)
    found = {
        (r["funnel"], r["stage"]): r for r in _fetch(cursor, SUMMARY_SQL.format(sql=sql), params)
    }
    configured = _by_stage(limits)
    stages: list[dict[str, Any]] = []
    listed = [
        s for s in limits if filters.funnel in (None, s.funnel) and filters.stage in (None, s.stage)
    ]
    for limit in listed:
        stage = _empty_stage(limit)
        row = found.pop((limit.funnel, limit.stage), None)
        if row is not None:
            stage.update({k: int(row[k] or 0) for k in COUNTS})
        stages.append(stage)
    for key in sorted(found, key=lambda k: (k[0] or "", k[1])):
        row = found[key]
        known = configured.get(key)
        stage = _empty_stage(known or StageLimit(key[0], key[1], None))
        stage.update({k: int(row[k] or 0) for k in COUNTS})
        stages.append(stage)
    totals = {k: sum(s[k] for s in stages) for k in COUNTS}
    return {
        "stages": [_stage_out(s) for s in stages],
        "totals": {
            "visits": totals["visits"],
            "total_seconds": _seconds(totals["total_us"]),
            "paused_seconds": _seconds(totals["paused_us"]),
            "visits_over_limit": totals["over_limit"],
            "current": totals["current"],
            "current_over_limit": totals["current_over_limit"],
        },
    }


EXISTS_SQL: dict[Kind, str] = {
    "lead": "SELECT min(entered_at) FROM lead_stage_visits WHERE lead_id = $id",
    "deal": "SELECT min(entered_at) FROM deal_stage_visits WHERE deal_id = $id",
    "project": "SELECT min(entered_at) FROM project_status_visits WHERE project_id = $id",
}


def created_at(cursor: duckdb.DuckDBPyConnection, kind: Kind, subject_id: str) -> datetime | None:
    """When the subject entered its first stage (None: no such lead, deal or project)."""
    rows = cursor.execute(EXISTS_SQL[kind], {"id": subject_id}).fetchall()
    value = rows[0][0] if rows else None
    return value if isinstance(value, datetime) else None


def subject_status_time(
    cursor: duckdb.DuckDBPyConnection, filters: StatusTimeFilters, limits: Sequence[StageLimit]
) -> dict[str, Any]:
    """One subject's visits in order, and its time per stage (in order of first visit)."""
    sql, params = _visits_sql(filters, limits)
    rows = _fetch(cursor, f"SELECT {VISIT_COLUMNS} FROM ({sql}) ORDER BY visit_no", params)
    configured = _by_stage(limits)
    per_stage: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["funnel"], row["stage"])
        stage = per_stage.get(key)
        if stage is None:
            stage = _empty_stage(configured.get(key) or StageLimit(key[0], key[1], None))
            per_stage[key] = stage
        stage["visits"] += 1
        stage["total_us"] += row["active_us"]
        stage["paused_us"] += row["paused_us"]
        stage["over_limit"] += int(row["over_limit"])
        stage["current"] += int(row["open"])
        stage["current_over_limit"] += int(row["over_limit_now"])
    return {
        "visits": [_visit_out(filters.kind, r, configured) for r in rows],
        "stages": [_stage_out(s) for s in per_stage.values()],
        "total_seconds": _seconds(sum(r["active_us"] for r in rows)),
        "paused_seconds": _seconds(sum(r["paused_us"] for r in rows)),
    }
