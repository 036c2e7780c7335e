"""How much the check grew on the way to the money (seed 001: «на сколько увеличился чек
при реализации»): per project the lead's amount, the deal's amount, the project's value,
what was invoiced and what was paid, and the first contact's source carried through.

The source is the project's own (a project delivered straight from a lead carries the
lead card, ProjectCreated v2), else its deal's, else its lead's. The lead's and deal's
figures are read from the stored tables by the project's own ids: they are the project's
history, shown to whoever sees the project. Growth = value - lead amount, over the
projects that have a lead amount (``compared``); growth % is that in % of their lead
amount. Rolled up per manager (the project's) and per source; the period
(``from``/``to``) chooses the projects created in it.
"""

from __future__ import annotations

from typing import Any

import duckdb

from queries.common import Filters, decimal, page_of, percent, rows
from queries.project_costs import stored_table
from queries.projects import Days

FIGURES = "_check_growth"
"""The temporary table one request's per-project figures are read into."""
MONEY = ("lead_amount", "deal_amount", "value", "invoiced", "paid")


SOURCE = "coalesce(p.source, d.source, l.source)"
"""The first contact's source: the project's own, else its deal's, else its lead's."""


def _base(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, days: Days, source: str | None
) -> tuple[str, list[Any]]:
    in_period, period_params = days.where("p.created_at::DATE")
    where, params = filters.where("p")
    where = (where + " AND " if where else " WHERE ") + in_period
    if source is not None:
        where += f" AND {SOURCE} = ?"
        period_params.append(source)
    leads, deals = stored_table(cursor, "leads"), stored_table(cursor, "deals")
    sql = f"""
    SELECT p.project_id, p.title, p.company_name, p.manager,
      {SOURCE} AS source,
      coalesce(p.lead_id, d.lead_id) AS lead_id, p.deal_id,
      l.amount AS lead_amount, d.amount AS deal_amount, p.amount AS value,
      p.invoiced, p.paid,
      CASE WHEN l.amount IS NOT NULL THEN p.amount - l.amount END AS growth,
      p.created_at
    FROM projects p LEFT JOIN {deals} d ON d.deal_id = p.deal_id
    LEFT JOIN {leads} l ON l.lead_id = coalesce(p.lead_id, d.lead_id){where}
    """
    return sql, [*params, *period_params]


SUMS = (
    "count(*), count(lead_amount), sum(lead_amount), sum(deal_amount), sum(value), "
    "sum(invoiced), sum(paid), sum(growth)"
)


def _figures(values: tuple[Any, ...]) -> dict[str, Any]:
    n, compared, lead, deal, value, invoiced, paid, growth = values
    growth = decimal(growth)
    lead = decimal(lead)
    return {
        "projects": int(n or 0),
        "compared": int(compared or 0),
        "lead_amount": lead,
        "deal_amount": decimal(deal),
        "value": decimal(value),
        "invoiced": decimal(invoiced),
        "paid": decimal(paid),
        "growth": growth,
        "growth_percent": percent(growth, lead),
    }


def check_growth(
    cursor: duckdb.DuckDBPyConnection,
    filters: Filters,
    days: Days,
    limit: int,
    offset: int,
    source: str | None = None,
) -> dict[str, Any]:
    """The check's growth (see the module): a page of projects, newest first; per manager
    and per source; and in total over every project the filters match (and, given one,
    whose first contact came from ``source``)."""
    base, params = _base(cursor, filters, days, source)
    # the chosen projects' figures are read once, then summed, grouped and paged
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE {FIGURES} AS {base}", params)
    try:
        totals = cursor.execute(f"SELECT {SUMS} FROM {FIGURES}").fetchone()
        assert totals is not None
        rollups: dict[str, list[dict[str, Any]]] = {}
        for key in ("manager", "source"):
            cursor.execute(f"SELECT {key}, {SUMS} FROM {FIGURES} GROUP BY 1 ORDER BY 1 NULLS LAST")
            rollups[key] = [{key: k, **_figures(tuple(f))} for k, *f in cursor.fetchall()]
        cursor.execute(
            f"SELECT * EXCLUDE (created_at) FROM {FIGURES} "
            "ORDER BY created_at DESC, project_id LIMIT ? OFFSET ?",
            [limit, offset],
        )
        items = rows(cursor)
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {FIGURES}")
    for item in items:
        for key in MONEY:
            if item[key] is not None or key not in ("lead_amount", "deal_amount"):
                item[key] = decimal(item[key])
        if item["growth"] is not None:
            item["growth"] = decimal(item["growth"])
        item["growth_percent"] = (
            None if item["growth"] is None else percent(item["growth"], item["lead_amount"])
        )
    whole = _figures(tuple(totals))
    return {
        "period_from": days.start,
        "period_to": days.end,
        **page_of(items, whole["projects"], limit, offset),
        "managers": rollups["manager"],
        "sources": rollups["source"],
        "totals": whole,
    }
