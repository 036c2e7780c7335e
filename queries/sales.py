"""Leads and sales for a period (issue 16 §1): the leads created in a period and the money
in them, cut by month, funnel, department, source or manager; the deals' proposals per
month and department; the average value of the projects started.

A lead's or deal's **department** is its responsible manager's department in the user
directory *now*: the same rule the read scope uses (a head sees the records of their
department's people as the directory stands), so a head's report and the department's
row of the top's report show the same leads. A manager who moved takes their records'
history with them; the records carry no department of their own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from queries.common import ZERO, average, rows
from queries.leads import SUMMARY_COLUMNS

MONTH = "strftime(timezone('UTC', {column}), '%Y-%m')"
"""A moment's month (UTC) as ``YYYY-MM``."""
DAY = "epoch_us({column}) // 86400000000"
"""A moment's day (UTC) as days since 1970-01-01."""
MONTH_OF_DAY = "strftime(DATE '1970-01-01' + CAST({day} AS INTEGER), '%Y-%m')"
"""The month (``YYYY-MM``) of a day counted as ``DAY`` counts it."""

LEAD_SPLITS = {
    "month": MONTH.format(column="l.created_at"),
    "funnel": "l.funnel",
    "department": "u.department",
    "source": "l.source",
    "manager": "l.manager",
}
DEPARTMENT_JOIN = "LEFT JOIN users AS u ON u.username = {manager}"
FIGURES = ("leads", "in_work", "new", "repeat", "non_quality", "paused")
IN_WORK = frozenset({"open", "paused"})


def period_where(
    column: str, start: datetime | None, end: datetime | None, funnel: str | None, funnel_col: str
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if funnel is not None:
        clauses.append(f"{funnel_col} = ?")
        params.append(funnel)
    if start is not None:
        clauses.append(f"{column} >= ?")
        params.append(start)
    if end is not None:
        clauses.append(f"{column} <= ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _pair(n: Any, amount: Any) -> dict[str, Any]:
    return {"count": int(n or 0), "amount": Decimal(amount or ZERO)}


DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_DAY = timedelta(days=1)
ONE_US = timedelta(microseconds=1)
PAUSED_REASON = "CASE WHEN l.status = 'paused' THEN l.pause_reason END"


def _day(moment: datetime) -> int:
    """A moment's day (UTC) as ``DAY`` counts it."""
    return (moment - EPOCH) // ONE_DAY


def _midnight(day: int) -> datetime:
    return EPOCH + day * ONE_DAY


def _whole_days(
    start: datetime | None, end: datetime | None
) -> tuple[int | None, int | None, list[tuple[datetime | None, datetime | None]]]:
    """The first and last whole UTC day of the period (None: unbounded) and the instants
    it covers outside them (each an inclusive range): read from ``leads``, not from the
    days' rows. No whole day (first > last): the whole period is such a range."""
    first = None if start is None else -(-(start - EPOCH) // ONE_DAY)  # ceil: a whole day
    last = None if end is None else _day(end + ONE_US) - 1
    if first is not None and last is not None and first > last:
        return first, last, [(start, end)]
    cuts: list[tuple[datetime | None, datetime | None]] = []
    if start is not None and first is not None and start < _midnight(first):
        cuts.append((start, _midnight(first) - ONE_US))
    if end is not None and last is not None and end >= _midnight(last + 1):
        cuts.append((_midnight(last + 1), end))
    return first, last, cuts


def _stored_groups(
    split: str, funnel: str | None, start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    """The report's groups from ``lead_days`` (whole days) and ``leads`` (cut days)."""
    first, last, cuts = _whole_days(start, end)
    join = DEPARTMENT_JOIN.format(manager="l.manager") if split == "department" else ""
    day_clauses: list[str] = []
    params: list[Any] = []
    if funnel is not None:
        day_clauses.append("l.funnel = ?")
        params.append(funnel)
    if first is not None:
        day_clauses.append("l.day >= ?")
        params.append(first)
    if last is not None:
        day_clauses.append("l.day <= ?")
        params.append(last)
    if first is not None and last is not None and first > last:
        day_clauses.append("FALSE")
    day_key = "l.day" if split == "month" else LEAD_SPLITS[split]
    parts = [
        f"SELECT {day_key} AS k, l.status AS status, l.is_repeat AS is_repeat, "
        "l.pause_reason AS pause_reason, l.leads AS n, l.amount AS amount "
        f"FROM lead_days AS l {join}"
        + (" WHERE " + " AND ".join(day_clauses) if day_clauses else "")
    ]
    if cuts:
        ranges: list[str] = []
        for low, high in cuts:
            bounds = []
            if low is not None:
                bounds.append("l.created_at >= ?")
                params.append(low)
            if high is not None:
                bounds.append("l.created_at <= ?")
                params.append(high)
            ranges.append("(" + " AND ".join(bounds or ["TRUE"]) + ")")
        where = "(" + " OR ".join(ranges) + ")"
        if funnel is not None:
            where += " AND l.funnel = ?"
            params.append(funnel)
        lead_key = DAY.format(column="l.created_at") if split == "month" else LEAD_SPLITS[split]
        parts.append(
            f"SELECT {lead_key} AS k, l.status AS status, coalesce(l.repeat, FALSE) AS is_repeat,"
            f" {PAUSED_REASON} AS pause_reason, count(*) AS n,"
            f" coalesce(sum(l.amount), 0) AS amount FROM leads AS l {join} WHERE {where}"
            " GROUP BY ALL"
        )
    return " UNION ALL ".join(parts), params


def _in_work_from(
    cursor: duckdb.DuckDBPyConnection,
    funnel: str | None,
    start: datetime | None,
    end: datetime | None,
    wanted: int,
) -> datetime | None:
    """An instant at or after which the period holds at least ``wanted`` leads in work
    (the first midnight going back from the period's end, counted in ``lead_days``), so
    the in-work page need only read the leads created since; None: the whole period."""
    first, last, _ = _whole_days(start, end)
    if first is not None and last is not None and first > last:
        return None
    clauses = ["status IN ('open', 'paused')"]
    params: list[Any] = []
    if funnel is not None:
        clauses.append("funnel = ?")
        params.append(funnel)
    if first is not None:
        clauses.append("day >= ?")
        params.append(first)
    if last is not None:
        clauses.append("day <= ?")
        params.append(last)
    found = cursor.execute(
        "SELECT day FROM (SELECT day, sum(sum(leads)) OVER (ORDER BY day DESC) AS running "
        f"FROM lead_days WHERE {' AND '.join(clauses)} GROUP BY day) WHERE running >= ? "
        "ORDER BY day DESC LIMIT 1",
        [*params, wanted],
    ).fetchone()
    return None if found is None else _midnight(int(found[0]))


def leads_period(
    cursor: duckdb.DuckDBPyConnection,
    *,
    funnel: str | None,
    split: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    offset: int,
    stored: bool = True,
) -> dict[str, Any]:
    """The leads created in the period (all funnels or one), each figure in count and
    money, per value of ``split``; totals; the paused ones per reason; the leads in work.

    ``stored``: the figures from the days already counted (``lead_days``) and the days the
    period cuts; False: from every lead of the period, as they were before the days' read
    model (the same answers, the properties' oracle)."""
    # Grouped by the split, status, repeat and pause reason (a few thousand groups at
    # most), the figures added up here; months are grouped by day first and the days
    # named by their month in a second step (a date format per day, not per lead).
    outer = MONTH_OF_DAY.format(day="k") if split == "month" else "k"
    where, params = period_where("l.created_at", start, end, funnel, "l.funnel")
    if stored:
        groups, group_params = _stored_groups(split, funnel, start, end)
    else:
        key = DAY.format(column="l.created_at") if split == "month" else LEAD_SPLITS[split]
        join = DEPARTMENT_JOIN.format(manager="l.manager") if split == "department" else ""
        groups = (
            f"SELECT {key} AS k, l.status AS status, coalesce(l.repeat, FALSE) AS is_repeat, "
            f"{PAUSED_REASON} AS pause_reason, count(*) AS n, "
            f"coalesce(sum(l.amount), 0) AS amount FROM leads AS l {join}{where} GROUP BY ALL"
        )
        group_params = params
    cursor.execute(
        f"SELECT {outer} AS key, status, is_repeat, pause_reason, sum(n) AS n, "
        "sum(amount) AS amount FROM (SELECT k, status, is_repeat, pause_reason, "
        f"sum(n) AS n, sum(amount) AS amount FROM ({groups}) GROUP BY ALL) GROUP BY ALL",
        group_params,
    )
    per_key: dict[Any, dict[str, list[Any]]] = {}
    reasons: dict[str, list[Any]] = {}
    for k, status, is_repeat, pause_reason, n, amount in cursor.fetchall():
        figures = per_key.setdefault(k, {f: [0, ZERO] for f in FIGURES})
        facts = {
            "leads": True,
            "in_work": status in IN_WORK,
            "new": not is_repeat,
            "repeat": is_repeat,
            "non_quality": status == "non_quality",
            "paused": status == "paused",
        }
        for figure, holds in facts.items():
            if holds:
                figures[figure][0] += int(n)
                figures[figure][1] += Decimal(amount)
        if status == "paused":
            reason = reasons.setdefault(pause_reason or "", [0, ZERO])
            reason[0] += int(n)
            reason[1] += Decimal(amount)
    ordered = sorted(per_key.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    out_rows = [{"key": k, **{f: _pair(*figures[f]) for f in FIGURES}} for k, figures in ordered]
    totals = {
        f: {
            "count": sum(r[f]["count"] for r in out_rows),
            "amount": sum((r[f]["amount"] for r in out_rows), ZERO),
        }
        for f in FIGURES
    }
    pause_reasons = [
        {"reason": reason, "count": n, "amount": amount}
        for reason, (n, amount) in sorted(reasons.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    # the page: from the days' counts, only the leads created since the page's first day
    # are read (a few thousand rows, not every lead in work)
    in_work = f"{where} AND " if where else " WHERE "
    in_work += "l.status IN ('open', 'paused')"
    page_params = list(params)
    since = _in_work_from(cursor, funnel, start, end, offset + limit) if stored else None
    if since is not None:
        in_work += " AND l.created_at >= ?"
        page_params.append(since)
    columns = ", ".join(f"l.{c.strip()}" for c in SUMMARY_COLUMNS.split(","))
    cursor.execute(
        f"SELECT {columns} FROM leads AS l{in_work} ORDER BY l.created_at DESC, l.lead_id "
        "LIMIT ? OFFSET ?",
        [*page_params, limit, offset],
    )
    items = rows(cursor)
    if (
        since is not None
        and len(items) < limit
        and offset + len(items) < totals["in_work"]["count"]
    ):
        # the days' counts were read in another snapshot than the leads: the whole period
        cursor.execute(
            f"SELECT {columns} FROM leads AS l{in_work.removesuffix(' AND l.created_at >= ?')}"
            " ORDER BY l.created_at DESC, l.lead_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        items = rows(cursor)
    return {
        "funnel": funnel,
        "split": split,
        "created_from": start,
        "created_to": end,
        "rows": out_rows,
        "totals": totals,
        "pause_reasons": pause_reasons,
        "in_work_items": items,
        "total": totals["in_work"]["count"],
        "limit": limit,
        "offset": offset,
    }


def _figures(n: int, amount: Decimal) -> dict[str, Any]:
    return {"count": n, "amount": amount, "average": average(amount, n)}


def proposals(
    cursor: duckdb.DuckDBPyConnection,
    *,
    funnel: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """Each deal's current proposal recorded in the period, per month of its recording
    and the deal manager's department: count, sum and average."""
    where, params = period_where("d.proposal_at", start, end, funnel, "d.funnel")
    recorded = f"{where} AND " if where else " WHERE "
    cursor.execute(
        f"SELECT {MONTH.format(column='d.proposal_at')} AS month, u.department AS department, "
        "count(*) AS n, coalesce(sum(d.proposal_total), 0) AS amount FROM deals AS d "
        f"{DEPARTMENT_JOIN.format(manager='d.manager')}{recorded}d.proposal_at IS NOT NULL "
        "GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST",
        params,
    )
    found = [
        {"month": r["month"], "department": r["department"], **_figures(r["n"], r["amount"])}
        for r in rows(cursor)
    ]

    def split_by(field: str) -> list[dict[str, Any]]:
        sums: dict[str | None, list[Any]] = {}
        for r in found:
            bucket = sums.setdefault(r[field], [0, ZERO])
            bucket[0] += r["count"]
            bucket[1] += r["amount"]
        ordered = sorted(sums.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        return [{"key": k, **_figures(n, amount)} for k, (n, amount) in ordered]

    n = sum(r["count"] for r in found)
    amount = sum((r["amount"] for r in found), ZERO)
    return {
        "funnel": funnel,
        "recorded_from": start,
        "recorded_to": end,
        "rows": found,
        "by_month": split_by("month"),
        "by_department": split_by("department"),
        "totals": _figures(n, amount),
    }


PROJECT_SPLITS = {
    "month": MONTH.format(column="p.created_at"),
    "funnel": "p.funnel",
    "department": "p.department",
}


def average_check(
    cursor: duckdb.DuckDBPyConnection,
    *,
    funnel: str | None,
    split: str,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """The projects created in the period: how many, their value and its average (the
    average check), per month, funnel or the project's department."""
    where, params = period_where("p.created_at", start, end, funnel, "p.funnel")
    cursor.execute(
        f"SELECT {PROJECT_SPLITS[split]} AS key, count(*) AS n, "
        f"coalesce(sum(p.amount), 0) AS amount FROM projects AS p{where} "
        "GROUP BY 1 ORDER BY 1 NULLS LAST",
        params,
    )
    found = rows(cursor)
    n = sum(int(r["n"]) for r in found)
    amount = sum((Decimal(r["amount"]) for r in found), ZERO)
    return {
        "funnel": funnel,
        "split": split,
        "created_from": start,
        "created_to": end,
        "rows": [
            {
                "key": r["key"],
                "projects": int(r["n"]),
                "amount": Decimal(r["amount"]),
                "average": average(Decimal(r["amount"]), int(r["n"])),
            }
            for r in found
        ],
        "totals": {"projects": n, "amount": amount, "average": average(amount, n)},
    }
