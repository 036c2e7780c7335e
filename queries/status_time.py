"""Status-time queries: how long leads, deals and projects spent in each stage or status,
against the configured time limits, as it was at any instant.

Every visit is measured up to ``as_of``: a visit entered later is left out, one still open
then (or left later) counts up to ``as_of``. A lead's paused time is left out of its visit
(``lead_pauses``, clipped to the visit and to ``as_of``); a project's visit to a status
that stops the clock (``on_hold``) is paused time as a whole: its time counts for no
status and against no limit. Durations are summed in whole microseconds, so a report's
totals are exactly the sums of its visits.

Limits: a stage's (or project status's) configured ``time_limit_hours`` (none for the
done status or a status that stops the clock), replaced by each limit set by hand
(``status_limit_changes``) from the instant it was set; at ``as_of``, only the limits set
by then count. A visit went over its limit (``over_limit``) when its time (pauses left
out) exceeded the limit in force at that instant: a visit that ran while the limit
changed is over it when its time at the change exceeded the limit until then, or its
time at its end (or at as_of) exceeds the limit in force then. Its ``limit_hours`` is the
limit in force at its end (at as_of while open), and ``over_limit_now`` compares its time
at as_of with the limit in force at as_of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import duckdb

from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from queries import common

Kind = Literal["lead", "deal", "project"]
MICROSECONDS = 1_000_000
HOUR_US = 3600 * MICROSECONDS


def _us(hours: float | None) -> int | None:
    return None if hours is None else round(hours * HOUR_US)


@dataclass(frozen=True)
class LimitChange:
    """A time limit set by hand (``status_limit_changes``)."""

    funnel: str | None
    stage: str
    limit_hours: float | None
    previous_hours: float | None
    set_at: datetime
    set_by: str
    set_by_role: str | None
    reason: str | None


@dataclass(frozen=True)
class Segment:
    """A stretch of time during which one limit was in force: from ``start`` (None: the
    beginning) until ``end`` (None: still in force at as_of), ``end`` excluded."""

    start: datetime | None
    end: datetime | None
    limit_hours: float | None


@dataclass(frozen=True)
class StageLimit:
    """A configured stage (or project status) and its time limit at as_of: the last one
    set by hand by then, else the configured one; ``segments`` say which was in force
    when (one unbounded segment when none was ever set by hand)."""

    funnel: str | None
    stage: str
    limit_hours: float | None
    stops_clock: bool = False
    configured_hours: float | None = None
    changes: tuple[LimitChange, ...] = ()

    @property
    def limit_us(self) -> int | None:
        return _us(self.limit_hours)

    @property
    def segments(self) -> tuple[Segment, ...]:
        if not self.changes:
            return (Segment(None, None, self.limit_hours),)
        found: list[Segment] = []
        start: datetime | None = None
        hours = self.configured_hours
        for change in self.changes:
            found.append(Segment(start, change.set_at, hours))
            start, hours = change.set_at, change.limit_hours
        found.append(Segment(start, None, hours))
        return tuple(found)

    @property
    def last_change(self) -> LimitChange | None:
        return self.changes[-1] if self.changes else None


LIMIT_CHANGES_SQL = """
SELECT funnel, stage, limit_hours, previous_hours, set_at, set_by, set_by_role, reason
FROM status_limit_changes WHERE kind = $kind AND set_at <= $as_of ORDER BY position
"""


def limit_changes(
    cursor: duckdb.DuckDBPyConnection, kind: Kind, as_of: datetime
) -> list[LimitChange]:
    """The limits of the kind set by hand up to ``as_of``, in log order."""
    cursor.execute(LIMIT_CHANGES_SQL, {"kind": kind, "as_of": as_of})
    return [LimitChange(*row) for row in cursor.fetchall()]


def stage_limits(
    kind: Kind, funnels: FunnelCatalog, rules: Rules, changes: Sequence[LimitChange] = ()
) -> list[StageLimit]:
    """Every configured stage of the kind, in funnel (or kanban) order, with its limit:
    the configured one, replaced by each limit set by hand (``changes``, in log order)."""
    by_stage: dict[tuple[str | None, str], list[LimitChange]] = {}
    for change in changes:
        by_stage.setdefault((change.funnel, change.stage), []).append(change)

    def limit(funnel: str | None, stage: str, configured: float | None, stops: bool) -> StageLimit:
        mine = tuple(by_stage.get((funnel, stage), ()))
        hours = mine[-1].limit_hours if mine else configured
        return StageLimit(funnel, stage, hours, stops, configured, mine)

    if kind == "project":
        project = rules.project
        return [
            # the final status and those that stop the clock count against no limit (none
            # can be set on them by hand either)
            StageLimit(None, s.id, None, True)
            if s.stops_clock
            else StageLimit(None, s.id, None)
            if s.id == project.done_status
            else limit(None, s.id, s.time_limit_hours, False)
            for s in project.statuses
        ]
    catalog = funnels if kind == "lead" else rules.deal_funnels
    return [
        limit(f.id, s.id, s.time_limit_hours, False) for f in catalog.values() for s in f.stages
    ]


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


# Each kind's visits with the same columns; ``left_raw`` is when the visit ended, if it has,
# and ``stored_paused_us`` a lead visit's paused time once it has ended (lead_stage_visits
# keeps it: a lead is resumed or closed, which ends its pause, before it leaves a stage).
# Read through DOUBLE, which is several times faster than a wide DECIMAL and exact: below
# 2^52 microseconds (a century) the double nearest to n / 10^6, times 10^6, rounds to n.
# A lead's manager is not read here: it is joined only to filter by it, and to the visits
# shown (see OWNER_SQL), so that a summary reads no ``leads`` row.
BASE_SQL: dict[Kind, str] = {
    "lead": """
        SELECT v.lead_id AS subject_id, v.visit_no, v.funnel, v.stage, FALSE AS stops_clock,
          v.entered_at, v.left_at AS left_raw,
          round(v.paused_seconds::DOUBLE * 1000000)::BIGINT AS stored_paused_us,
          NULL::VARCHAR AS manager, NULL::VARCHAR AS pm
        FROM lead_stage_visits v""",
    "deal": """
        SELECT v.deal_id AS subject_id, v.visit_no, v.funnel, v.stage, FALSE AS stops_clock,
          v.entered_at, v.left_at AS left_raw, NULL::BIGINT AS stored_paused_us,
          d.manager AS manager, NULL::VARCHAR AS pm
        FROM deal_stage_visits v LEFT JOIN deals d ON d.deal_id = v.deal_id""",
    "project": """
        SELECT v.project_id AS subject_id, v.visit_no, NULL::VARCHAR AS funnel,
          v.status AS stage, v.stops_clock, v.entered_at, v.left_at AS left_raw,
          NULL::BIGINT AS stored_paused_us, NULL::VARCHAR AS manager, p.pm AS pm
        FROM project_status_visits v LEFT JOIN project_status_pms p
          ON p.project_id = v.project_id""",
}

# The owner filter of each kind: a join of the base visits, or a condition on ``base b``.
# (A lead's manager is joined: as a semi-join, DuckDB hashes the visits, not the leads.)
OWNER_FILTER: dict[Kind, tuple[str, str]] = {
    "lead": (" JOIN leads o ON o.lead_id = v.lead_id AND o.manager = $owner", ""),
    "deal": ("", " AND b.manager = $owner"),
    "project": ("", " AND b.pm = $owner"),
}

# The visits shown (``{source}``), with their owner: a lead's manager is joined here.
OWNER_SQL: dict[Kind, str] = {
    "lead": "SELECT j.* REPLACE (o.manager AS manager) FROM {source} j "
    "LEFT JOIN leads o ON o.lead_id = j.subject_id",
    "deal": "SELECT * FROM {source}",
    "project": "SELECT * FROM {source}",
}

# The paused time up to as_of of each lead visit still open then: every pause's overlap
# with the visit. A visit ended by as_of has its paused time stored.
LEAD_PAUSED_SQL = """
  SELECT c.subject_id, c.visit_no,
    sum(greatest(
      epoch_us(least(coalesce(x.resumed_at, c.ended_at), c.ended_at))
        - epoch_us(greatest(x.paused_at, c.entered_at)),
      0)) AS paused_us
  FROM clipped c JOIN lead_pauses x ON x.lead_id = c.subject_id
    AND x.paused_at < c.ended_at AND coalesce(x.resumed_at, c.ended_at) > c.entered_at
  WHERE c.left_at IS NULL
  GROUP BY c.subject_id, c.visit_no"""

# Each visit measured: ``elapsed_us`` up to as_of and ``paused_in_visit_us``. A lead visit
# ended by as_of has its paused time stored; only those still open are matched against
# ``lead_pauses``. Deals and projects have no pauses.
MEASURED_SQL: dict[Kind, str] = {
    "lead": f"""paused AS ({LEAD_PAUSED_SQL}),
measured AS (
  SELECT c.*, epoch_us(c.ended_at) - epoch_us(c.entered_at) AS elapsed_us,
    coalesce(c.stored_paused_us, 0) AS paused_in_visit_us
  FROM clipped c WHERE c.left_at IS NOT NULL
  UNION ALL
  SELECT c.*, epoch_us(c.ended_at) - epoch_us(c.entered_at) AS elapsed_us,
    coalesce(z.paused_us, 0) AS paused_in_visit_us
  FROM clipped c LEFT JOIN paused z ON z.subject_id = c.subject_id AND z.visit_no = c.visit_no
  WHERE c.left_at IS NULL
),""",
    "deal": """measured AS (
  SELECT c.*, epoch_us(c.ended_at) - epoch_us(c.entered_at) AS elapsed_us,
    0::BIGINT AS paused_in_visit_us
  FROM clipped c
),""",
}
MEASURED_SQL["project"] = MEASURED_SQL["deal"]

# ``picked``: the visits the filters select, narrow (a page is picked among them before
# any visit is measured); ``clipped`` measures them, or only those in ``{restrict}``.
VISITS_SQL = """
WITH params AS (SELECT CAST($as_of AS TIMESTAMPTZ) AS as_of),
limits(funnel, stage, from_at, until_at, limit_us, limit_hours) AS (
  SELECT CAST(col0 AS VARCHAR), CAST(col1 AS VARCHAR), CAST(col2 AS TIMESTAMPTZ),
    CAST(col3 AS TIMESTAMPTZ), CAST(col4 AS BIGINT), CAST(col5 AS DOUBLE)
  FROM (VALUES {limit_rows})
),
base AS NOT MATERIALIZED ({base}),
picked AS NOT MATERIALIZED (
  SELECT b.subject_id, b.visit_no, b.entered_at
  FROM base b, params p
  WHERE b.entered_at <= p.as_of{filters}
),
{page}
clipped AS {clipped_mode} (
  SELECT b.*,
    CASE WHEN b.left_raw <= p.as_of THEN b.left_raw END AS left_at,
    least(coalesce(b.left_raw, p.as_of), p.as_of) AS ended_at
  FROM base b, params p
  WHERE b.entered_at <= p.as_of{filters}{restrict}
),
{measured}visits AS (
  SELECT m.subject_id, m.visit_no, m.funnel, m.stage, m.stops_clock, m.entered_at, m.left_at,
    m.ended_at, m.left_at IS NULL AS open, m.manager, m.pm,
    CASE WHEN m.stops_clock THEN 0 ELSE m.elapsed_us - m.paused_in_visit_us END AS active_us,
    CASE WHEN m.stops_clock THEN m.elapsed_us ELSE m.paused_in_visit_us END AS paused_us
  FROM measured m
),
{rated}
judged AS (SELECT * FROM rated{judged_filter})
"""

# No limit set by hand: each stage has one limit, for all time.
RATED_SQL = """rated AS (
  SELECT v.*, l.limit_us, l.limit_hours,
    coalesce(v.active_us > l.limit_us, FALSE) AS over_limit,
    v.open AND coalesce(v.active_us > l.limit_us, FALSE) AS over_limit_now
  FROM visits v LEFT JOIN limits l
    ON l.funnel IS NOT DISTINCT FROM v.funnel AND l.stage = v.stage
),"""

# Limits set by hand: a visit is cut into the stretches of the limits in force while it
# ran. Its time only grows, so it went over a stretch's limit when its time at the end of
# the stretch (the visit's end, or the next change) exceeds that limit. The visit's limit
# is the one in force at its end (at as_of while open): "over the limit now" compares
# the time at as_of with the limit in force then.
RATED_CHANGES_SQL = """segments AS (
  SELECT v.subject_id, v.visit_no, l.limit_us, l.limit_hours,
    l.until_at IS NULL OR l.until_at > v.ended_at AS final,
    CASE WHEN l.until_at IS NULL OR l.until_at > v.ended_at THEN v.active_us
      ELSE {active_at} END AS active_then
  FROM visits v JOIN limits l
    ON l.funnel IS NOT DISTINCT FROM v.funnel AND l.stage = v.stage
    AND (l.from_at IS NULL OR l.from_at <= v.ended_at)
    AND (l.until_at IS NULL OR l.until_at > v.entered_at)
),
limited AS (
  SELECT subject_id, visit_no,
    max(limit_us) FILTER (WHERE final) AS limit_us,
    max(limit_hours) FILTER (WHERE final) AS limit_hours,
    bool_or(coalesce(active_then > limit_us, FALSE)) AS over_limit
  FROM segments GROUP BY subject_id, visit_no
),
rated AS (
  SELECT v.*, j.limit_us, j.limit_hours, coalesce(j.over_limit, FALSE) AS over_limit,
    v.open AND coalesce(v.active_us > j.limit_us, FALSE) AS over_limit_now
  FROM visits v LEFT JOIN limited j ON j.subject_id = v.subject_id AND j.visit_no = v.visit_no
),"""

# A visit's time at ``l.until_at`` (a change of its limit while it ran): a lead's pauses
# up to then left out; a project's visit to a status that stops the clock counts none.
ACTIVE_AT_SQL: dict[Kind, str] = {
    "lead": """epoch_us(l.until_at) - epoch_us(v.entered_at) - coalesce((
        SELECT sum(greatest(
          epoch_us(least(coalesce(x.resumed_at, l.until_at), l.until_at))
            - epoch_us(greatest(x.paused_at, v.entered_at)), 0))
        FROM lead_pauses x WHERE x.lead_id = v.subject_id AND x.paused_at < l.until_at
          AND coalesce(x.resumed_at, l.until_at) > v.entered_at), 0)""",
    "deal": "epoch_us(l.until_at) - epoch_us(v.entered_at)",
    "project": "CASE WHEN v.stops_clock THEN 0 "
    "ELSE epoch_us(l.until_at) - epoch_us(v.entered_at) END",
}

VISIT_COLUMNS = (
    "subject_id, visit_no, funnel, stage, stops_clock, entered_at, left_at, open, manager, pm, "
    "limit_us, limit_hours, active_us, paused_us, over_limit, over_limit_now"
)

ORDER = "entered_at DESC, subject_id, visit_no DESC"

# A page picked before measuring: only its visits are measured (and their owner joined).
PAGE_SQL = f"""page_keys AS (
  SELECT subject_id, visit_no FROM picked ORDER BY {ORDER} LIMIT $limit OFFSET $offset
),"""
PAGE_RESTRICT = " AND (b.subject_id, b.visit_no) IN (SELECT subject_id, visit_no FROM page_keys)"


def _visits_sql(
    filters: StatusTimeFilters, limits: Sequence[StageLimit], page: bool = False
) -> tuple[str, dict[str, Any]]:
    """The WITH clause ending with ``judged`` visits, and its named parameters; with
    ``page``, ``judged`` holds only the page picked (by $limit, $offset) among ``picked``.
    """
    params: dict[str, Any] = {"as_of": filters.as_of}
    rows = []
    i = 0
    for limit in limits:
        for segment in limit.segments:
            rows.append(f"($f{i}, $s{i}, $a{i}, $b{i}, $l{i}, $h{i})")
            params.update(
                {
                    f"f{i}": limit.funnel,
                    f"s{i}": limit.stage,
                    f"a{i}": segment.start,
                    f"b{i}": segment.end,
                    f"l{i}": _us(segment.limit_hours),
                    f"h{i}": segment.limit_hours,
                }
            )
            i += 1
    if not rows:
        rows.append("(NULL, NULL, NULL, NULL, NULL, NULL)")
    changed = any(limit.changes for limit in limits)
    base = BASE_SQL[filters.kind]
    clauses = []
    for column, name, value in (
        ("funnel", "funnel", filters.funnel),
        ("stage", "stage", filters.stage),
        (None, "owner", filters.owner),
        ("subject_id", "subject_id", filters.subject_id),
    ):
        if value is None:
            continue
        if column is None:
            join, condition = OWNER_FILTER[filters.kind]
            base += join
            clauses.append(condition)
        else:
            clauses.append(f" AND b.{column} = ${name}")
        params[name] = value
    sql = VISITS_SQL.format(
        limit_rows=", ".join(rows),
        base=base,
        filters="".join(clauses),
        page=PAGE_SQL if page else "",
        restrict=PAGE_RESTRICT if page else "",
        measured=MEASURED_SQL[filters.kind],
        rated=RATED_CHANGES_SQL.format(active_at=ACTIVE_AT_SQL[filters.kind])
        if changed
        else RATED_SQL,
        clipped_mode="MATERIALIZED" if filters.owner is not None else "NOT MATERIALIZED",
        judged_filter=" WHERE over_limit" if filters.over_limit_only else "",
    )
    return sql, params


def _seconds(us: int | None) -> float:
    return 0.0 if us is None else us / MICROSECONDS


def _visit_out(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
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
        "limit_hours": row["limit_hours"],
        "over_limit": row["over_limit"],
        "over_limit_now": row["over_limit_now"],
    }


def _fetch(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    cursor.execute(sql, params)
    return common.rows(cursor)


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
    kind = filters.kind
    if filters.over_limit_only:
        # Over the limit: every visit must be measured to pick the page.
        sql, params = _visits_sql(filters, limits)
        statement = (
            f"{sql}, top AS (SELECT * FROM judged ORDER BY {ORDER} LIMIT $limit OFFSET $offset),\n"
            f"page AS ({OWNER_SQL[kind].format(source='top')}),\n"
            "counted AS (SELECT count(*) AS total FROM judged)\n"
        )
    else:
        sql, params = _visits_sql(filters, limits, page=True)
        statement = (
            f"{sql}, page AS ({OWNER_SQL[kind].format(source='judged')}),\n"
            "counted AS (SELECT count(*) AS total FROM picked)\n"
        )
    rows = _fetch(
        cursor,
        f"{statement}SELECT t.total, g.* FROM counted t LEFT JOIN "
        f"(SELECT {VISIT_COLUMNS} FROM page) g ON TRUE ORDER BY {ORDER}",
        {**params, "limit": limit, "offset": offset},
    )
    total = int(rows[0]["total"]) if rows else 0
    return [_visit_out(kind, r) for r in rows if r["subject_id"] is not None], total


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


SUMMARY_SQL = """{sql}
SELECT funnel, stage, count(*) AS visits, sum(active_us) AS total_us,
  sum(paused_us) AS paused_us, count(*) FILTER (WHERE over_limit) AS over_limit,
  count(*) FILTER (WHERE open) AS current,
  count(*) FILTER (WHERE over_limit_now) AS current_over_limit
FROM judged GROUP BY funnel, stage
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
    rows = _fetch(
        cursor,
        f"{sql}, shown AS ({OWNER_SQL[filters.kind].format(source='judged')})\n"
        f"SELECT {VISIT_COLUMNS} FROM shown ORDER BY visit_no",
        params,
    )
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
        "visits": [_visit_out(filters.kind, r) for r in rows],
        "stages": [_stage_out(s) for s in per_stage.values()],
        "total_seconds": _seconds(sum(r["active_us"] for r in rows)),
        "paused_seconds": _seconds(sum(r["paused_us"] for r in rows)),
    }
