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

The report reads the cohorts' read models (projections/cohorts.py): whole months as
``cohort_months`` counted them, the months the period cuts and the period's step times
from the per-lead rows of ``lead_cohorts``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from projections.cohorts import MONTHS_SQL, REACHED, STEPS
from queries.common import rows

MICROSECOND = timedelta(microseconds=1)
# The totals' step times over the period's lead rows (``{where}``: the period and funnel).
TOTAL_TIMES_SQL = "SELECT " + ", ".join(
    f"(SELECT quantile_cont({s}, [0.5, 0.9]) FROM lead_cohorts WHERE {s} >= 0{{where}}) AS {s}"
    for s in STEPS
)


def _month_floor(at: datetime) -> datetime:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(at: datetime) -> datetime:
    return (at.replace(day=28) + timedelta(days=4)).replace(day=1)


def _whole_months(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The period's whole months (UTC) as [first month's start, last month's next): None
    is unbounded; the leads of the period outside them are in the partial edge months."""
    first = None
    if start is not None:
        first = _month_floor(start)
        if first != start:
            first = _next_month(first)
    last = None if end is None else _month_floor(end + MICROSECOND)
    return first, last


def _where(parts: list[tuple[str, Any]], params: dict[str, Any], prefix: str = " AND ") -> str:
    clauses = []
    for i, (clause, value) in enumerate(parts):
        name = f"p{len(params)}_{i}"
        clauses.append(clause.replace("?", f"${name}"))
        params[name] = value
    return (prefix + " AND ".join(clauses)) if clauses else ""


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
    and funnel, per month over the funnels, and for the whole period.

    Whole months are read as ``cohort_months`` counted them; the leads of a month the
    period cuts (its first or last) are counted from ``lead_cohorts``, and so are the
    period's step times (projections/cohorts.py)."""
    first, last = _whole_months(start, end)
    funnel_part = [] if funnel is None else [("funnel = ?", funnel)]
    # whole months: as counted (per funnel, and over the funnels when all are asked)
    params: dict[str, Any] = {}
    bounds = []
    if first is not None:
        bounds.append(("month_start >= ?", first))
    if last is not None:
        bounds.append(("month_next <= ?", last))
    levels = "level = 0" + _where(funnel_part, params) if funnel else "TRUE"
    cursor.execute(f"SELECT * FROM cohort_months WHERE {levels}{_where(bounds, params)}", params)
    found = rows(cursor)
    if funnel is not None:  # one funnel: each month over the funnels is the funnel's month
        found += [{**r, "level": 1, "funnel": None} for r in found]
    # the cut months, from the lead rows
    period: list[tuple[str, Any]] = []
    if start is not None:
        period.append(("created_at >= ?", start))
    if end is not None:
        period.append(("created_at <= ?", end))
    inside = []
    if first is not None:
        inside.append("created_at >= ?")
    if last is not None:
        inside.append("created_at < ?")
    params = {}
    where = _where(period + funnel_part, params, " WHERE ")
    if inside:
        cut = " OR ".join(f"NOT ({c.replace('?', f'$cut{i}')})" for i, c in enumerate(inside))
        for i, value in enumerate(v for v in (first, last) if v is not None):
            params[f"cut{i}"] = value
        where += (" AND " if where else " WHERE ") + f"({cut})"
        cursor.execute(MONTHS_SQL.format(rows="lead_cohorts", where=where), params)
        found += rows(cursor)
    cohorts = sorted(
        (
            {"month": r["month"], "funnel": r["funnel"], **_figures(r)}
            for r in found
            if r["level"] == 0
        ),
        key=lambda r: (r["month"], r["funnel"]),
    )
    by_month = sorted(
        ({"month": r["month"], "funnel": "*", **_figures(r)} for r in found if r["level"] == 1),
        key=lambda r: r["month"],
    )
    # the period: the months' counts added up, the step times over its lead rows
    params = {}
    cursor.execute(TOTAL_TIMES_SQL.format(where=_where(period + funnel_part, params)), params)
    times = rows(cursor)[0]
    whole = {
        "leads": sum(r["leads"] for r in cohorts),
        **{n: sum(r[n] for r in cohorts) for n in REACHED},
    }
    for step in STEPS:
        q = times[step]
        whole[f"{step}_median"], whole[f"{step}_p90"] = (None, None) if q is None else q
    totals = _figures(whole)
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
