"""Lead → quality → deal → won → project conversion as cohorts (issue 16 §1).

A cohort is the leads created in one month (UTC) in one funnel (the lead's funnel now).
A lead counts at a step when it reached that step *or a later one* (a lead turned into a
project directly reached the deal and won steps too), so each step's count is at most
the previous one's. Each step's time is measured where both of its ends are known:

- to quality: lead created → found quality;
- to deal: found quality (else the lead's creation) → the deal created from it;
- to won: the deal created → the deal closed won;
- to project: the deal won (else the lead's creation) → the project created.

Times are in days: the median and the 90th percentile (interpolated).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from queries.common import rows
from queries.sales import DAY, MONTH_OF_DAY, period_where

DAYS = "(epoch({to}) - epoch({frm})) / 86400.0"
STEPS = {
    "to_quality": DAYS.format(to="l.qualified_at", frm="l.created_at"),
    "to_deal": DAYS.format(to="d.created_at", frm="coalesce(l.qualified_at, l.created_at)"),
    "to_won": (
        f"CASE WHEN d.status = 'won' THEN {DAYS.format(to='d.closed_at', frm='d.created_at')} END"
    ),
    "to_project": DAYS.format(
        to="p.created_at",
        frm="CASE WHEN d.status = 'won' THEN d.closed_at ELSE l.created_at END",
    ),
}
REACHED = {
    "projects": "p.project_id IS NOT NULL",
    "won": "(d.status = 'won' OR p.project_id IS NOT NULL)",
    "deals": "(d.deal_id IS NOT NULL OR p.project_id IS NOT NULL)",
    "quality": (
        "(coalesce(l.quality, FALSE) OR d.deal_id IS NOT NULL OR p.project_id IS NOT NULL)"
    ),
}
COHORTS = """
WITH cohort AS (
  SELECT {day} AS day, l.funnel AS funnel,
    {reached},
    {steps}
  FROM leads AS l
  LEFT JOIN deals AS d ON d.deal_id = l.deal_id
  LEFT JOIN projects AS p ON p.project_id = coalesce(l.project_id, d.project_id){where}
),
months AS (SELECT day, {month} AS month FROM (SELECT DISTINCT day FROM cohort))
SELECT month, funnel, grouping(month, funnel) AS level, count(*) AS leads,
  {counts},
  {quantiles}
FROM cohort JOIN months USING (day) GROUP BY GROUPING SETS ((month, funnel), (month), ())
ORDER BY level, month, funnel
"""
"""One scan for the three levels: per month and funnel (level 0), per month (1), all (3)."""


def _query(where: str) -> str:
    return COHORTS.format(
        day=DAY.format(column="l.created_at"),
        month=MONTH_OF_DAY.format(day="day"),
        reached=",\n    ".join(f"{cond} AS r_{name}" for name, cond in REACHED.items()),
        steps=",\n    ".join(f"{expr} AS {name}" for name, expr in STEPS.items()),
        where=where,
        counts=",\n  ".join(f"count(*) FILTER (WHERE r_{n}) AS {n}" for n in REACHED),
        quantiles=",\n  ".join(
            f"quantile_cont({s}, 0.5) FILTER (WHERE {s} >= 0) AS {s}_median, "
            f"quantile_cont({s}, 0.9) FILTER (WHERE {s} >= 0) AS {s}_p90"
            for s in STEPS
        ),
    )


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _days(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    leads = int(row["leads"])
    counts = {n: int(row[n]) for n in REACHED}
    return {
        "leads": leads,
        **counts,
        "quality_share": _share(counts["quality"], leads),
        "deal_share": _share(counts["deals"], leads),
        "won_share": _share(counts["won"], leads),
        "project_share": _share(counts["projects"], leads),
        **{
            s: {"median_days": _days(row[f"{s}_median"]), "p90_days": _days(row[f"{s}_p90"])}
            for s in STEPS
        },
    }


def conversion_cohorts(
    cursor: duckdb.DuckDBPyConnection,
    *,
    funnel: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """The cohorts of the leads created in the period (all funnels or one): per month
    and funnel, per month over the funnels, and for the whole period."""
    where, params = period_where("l.created_at", start, end, funnel, "l.funnel")
    cursor.execute(_query(where), params)
    found = rows(cursor)
    cohorts = [
        {"month": r["month"], "funnel": r["funnel"], **_figures(r)}
        for r in found
        if r["level"] == 0
    ]
    by_month = [
        {"month": r["month"], "funnel": "*", **_figures(r)} for r in found if r["level"] == 1
    ]
    everything = [r for r in found if r["level"] == 3]
    totals = _figures(everything[0] if everything else _empty())
    return {
        "funnel": funnel,
        "created_from": start,
        "created_to": end,
        "rows": cohorts,
        "by_month": by_month,
        "totals": totals,
    }


def _empty() -> dict[str, Any]:
    return {
        "leads": 0,
        **dict.fromkeys(REACHED, 0),
        **{f"{s}_{q}": None for s in STEPS for q in ("median", "p90")},
    }
