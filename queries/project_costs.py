"""The projects report with cost and margin (seed 000: «Считать себестоимость и
маржинальность проектов»).

Per project: its start and end (planned, and actual: the first day hours were logged on
it and the day it reached the done status), the hours it spent in each status, the
planned and actual hours, its value (the project's amount), and its cost:

- **labour**: every hour logged on it times the hourly cost rate of the person who
  logged it in force on that day (``user_cost_rates``: the rate whose days, from its
  first day up to the next rate's, hold it; an hour logged before the person's first
  rate costs nothing and is counted apart, ``unpriced_hours``), rounded to the cent per
  project;
- **contractors**: the prices of the accepted contractor estimates of the project's deal
  hand-offs: logistics estimates naming a contractor that reached a ready stage, were not
  rejected, and belong to the deal's last estimate round that had any (or were sent by
  hand), as the job sold is told apart when its delivery is recorded;

cost = labour + contractors, margin = value - cost, margin % = margin in % of the value.
Rolled up per PM, department or month (the month the project starts: its planned start,
else the day it was created), as ``group`` asks; the period (``from``/``to``) chooses the
projects starting in it. A project's costs are its own whoever reads it: the hand-offs of
its deal are read from the stored table (a PM sees the project, not always the deal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

from queries.common import ZERO, Filters, decimal, page_of, percent, rows
from queries.projects import Days

GROUPS = ("pm", "department", "month")
"""What the projects may be rolled up by."""

START_DAY = "coalesce(p.planned_start, p.created_at::DATE)"
"""The day a project starts, for the period and the month it is counted in."""


@dataclass(frozen=True)
class CostFilters:
    """Which projects: equality filters on the project and the period of their start."""

    filters: Filters
    days: Days


def stored_table(cursor: duckdb.DuckDBPyConnection, table: str) -> str:
    row = cursor.execute("SELECT current_database()").fetchone()
    assert row is not None
    return '"' + str(row[0]).replace('"', '""') + f'".main.{table}'


STORED_LABOUR = """
    labour AS (
      SELECT project_id, actual_start, round(labour, 2) AS labour, unpriced
      FROM project_labour WHERE project_id IN (SELECT project_id FROM chosen)
    ),"""
"""The chosen projects' labour as already priced (``project_labour``)."""

PRICED_LABOUR = """
    rates AS (
      SELECT username, valid_from, rate,
        lead(valid_from, 1, DATE '9999-12-31')
          OVER (PARTITION BY username ORDER BY valid_from) AS until
      FROM user_cost_rates
    ),
    labour AS (
      SELECT e.project_id, min(e.day) FILTER (WHERE e.hours > 0) AS actual_start,
        round(sum(e.hours * coalesce(r.rate, 0)), 2) AS labour,
        coalesce(sum(e.hours) FILTER (WHERE r.rate IS NULL), 0) AS unpriced
      FROM time_entries e LEFT JOIN rates r
        ON e.person = r.username AND e.day >= r.valid_from AND e.day < r.until
      WHERE e.project_id IN (SELECT project_id FROM chosen)
      GROUP BY e.project_id
    ),"""
"""The chosen projects' labour priced now, every time entry by its rate."""


def _base(
    cursor: duckdb.DuckDBPyConnection, chosen: CostFilters, stored: bool
) -> tuple[str, list[Any]]:
    """SQL: one row per chosen project with its figures (see the module)."""
    in_period, period_params = chosen.days.where(START_DAY)
    where, params = chosen.filters.where("p")
    where = (where + " AND " if where else " WHERE ") + in_period
    handoffs = stored_table(cursor, "handoffs")
    sql = f"""
    WITH chosen AS (
      SELECT p.project_id, p.title, p.company_name, p.pm, p.department, p.manager,
        p.status, p.deal_id, p.planned_start, p.planned_end, p.planned_hours,
        p.actual_hours, p.amount, p.status_entered_at, p.created_at,
        strftime({START_DAY}, '%Y-%m') AS month
      FROM projects p{where}
    ),{STORED_LABOUR if stored else PRICED_LABOUR}
    estimates AS (
      SELECT h.deal_id, h.price, h.round,
        max(h.round) OVER (PARTITION BY h.deal_id) AS last_round
      FROM {handoffs} h
      WHERE h.deal_id IN (SELECT deal_id FROM chosen) AND h.contractor_id IS NOT NULL
        AND h.ready_at IS NOT NULL AND h.status <> 'rejected' AND h.price IS NOT NULL
    ),
    contractors AS (
      SELECT deal_id, sum(price) AS contractors FROM estimates
      WHERE round IS NULL OR last_round IS NULL OR round = last_round GROUP BY deal_id
    )
    SELECT c.project_id, c.title, c.company_name, c.pm, c.department, c.manager, c.status,
      c.month, c.planned_start, c.planned_end, l.actual_start,
      CASE WHEN c.status = ? THEN c.status_entered_at::DATE END AS actual_end,
      c.planned_hours, c.actual_hours, coalesce(l.unpriced, 0) AS unpriced_hours,
      c.amount AS value,
      coalesce(l.labour, 0)::DECIMAL(38,2) AS labour_cost,
      coalesce(k.contractors, 0)::DECIMAL(38,2) AS contractor_cost,
      (coalesce(l.labour, 0) + coalesce(k.contractors, 0))::DECIMAL(38,2) AS cost,
      (c.amount - coalesce(l.labour, 0) - coalesce(k.contractors, 0))::DECIMAL(38,2) AS margin,
      c.created_at
    FROM chosen c LEFT JOIN labour l ON l.project_id = c.project_id
    LEFT JOIN contractors k ON k.deal_id = c.deal_id
    """
    return sql, [*params, *period_params]


FIGURES = "_project_costs"
"""The temporary table one request's per-project figures are computed into."""

SUMS = (
    "count(*), sum(value), sum(labour_cost), sum(contractor_cost), sum(cost), sum(margin), "
    "sum(planned_hours), sum(actual_hours), sum(unpriced_hours)"
)


def _figures(values: tuple[Any, ...]) -> dict[str, Any]:
    n, value, labour, contractors, cost, margin, planned, actual, unpriced = values
    margin = decimal(margin)
    value = decimal(value)
    return {
        "projects": int(n or 0),
        "value": value,
        "labour_cost": decimal(labour),
        "contractor_cost": decimal(contractors),
        "cost": decimal(cost),
        "margin": margin,
        "margin_percent": percent(margin, value),
        "planned_hours": decimal(planned),
        "actual_hours": decimal(actual),
        "unpriced_hours": decimal(unpriced),
    }


def project_costs(
    cursor: duckdb.DuckDBPyConnection,
    chosen: CostFilters,
    group: str | None,
    done_status: str,
    now: datetime,
    limit: int,
    offset: int,
    *,
    stored: bool = True,
) -> dict[str, Any]:
    """The projects report (see the module): a page of projects (newest first) with
    their dates, hours per status, value, cost and margin; the roll-up by ``group``
    (one of :data:`GROUPS`, None: none); the totals over every project chosen.

    ``stored``: the labour as already priced per project (``project_labour``);
    otherwise every time entry is priced now (the same figures)."""
    base, params = _base(cursor, chosen, stored)
    # the chosen projects' figures are computed once, then summed, grouped and paged
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE {FIGURES} AS {base}", [*params, done_status])
    try:
        totals = cursor.execute(f"SELECT {SUMS} FROM {FIGURES}").fetchone()
        assert totals is not None
        groups: list[dict[str, Any]] = []
        if group is not None:
            assert group in GROUPS
            cursor.execute(f"SELECT {group}, {SUMS} FROM {FIGURES} GROUP BY 1 ORDER BY 1")
            groups = [{"key": key, **_figures(tuple(f))} for key, *f in cursor.fetchall()]
        cursor.execute(
            f"SELECT * EXCLUDE (created_at) FROM {FIGURES} "
            "ORDER BY created_at DESC, project_id LIMIT ? OFFSET ?",
            [limit, offset],
        )
        items = rows(cursor)
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {FIGURES}")
    hours = _status_hours(cursor, [i["project_id"] for i in items], now)
    for item in items:
        for key in ("value", "labour_cost", "contractor_cost", "cost", "margin"):
            item[key] = decimal(item[key])
        item["unpriced_hours"] = decimal(item["unpriced_hours"])
        item["margin_percent"] = percent(item["margin"], item["value"])
        item["status_hours"] = hours.get(item["project_id"], [])
    whole = _figures(tuple(totals))
    return {
        "period_from": chosen.days.start,
        "period_to": chosen.days.end,
        "group": group,
        **page_of(items, whole["projects"], limit, offset),
        "groups": groups,
        "totals": whole,
    }


def _status_hours(
    cursor: duckdb.DuckDBPyConnection, project_ids: list[str], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Each project's hours in each status it visited (an open visit counts up to now),
    in the order first entered."""
    if not project_ids:
        return {}
    cursor.execute(
        "SELECT project_id, status, min(visit_no) AS first, "
        "sum(epoch(coalesce(left_at, ?::TIMESTAMPTZ) - entered_at)) / 3600 AS hours "
        "FROM project_status_visits WHERE list_contains(?, project_id) "
        "GROUP BY ALL ORDER BY project_id, first",
        [now, project_ids],
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for project_id, status, _, hours in cursor.fetchall():
        found.setdefault(project_id, []).append(
            {"status": status, "hours": Decimal(str(max(hours or 0, 0))).quantize(ZERO)}
        )
    return found
