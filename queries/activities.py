"""Read-model queries of the managers' activities and their indicators (seeds 003, 004).

Every function takes a DuckDB cursor (scoped to what the viewer may see) and the instant
``now`` at which overdue is judged, and returns plain dicts. The same functions serve the
JSON API, the workspace pages and the Excel renderer.

**The activity coefficient** (seed 004 «Коэффициент Активности Менеджера», left "to be
defined" there) is defined as

    K = min(cap, Σ_t w_t * done_t / Σ_t w_t * planned_t)

over the activity types t, with the weights w_t and the cap of ``[activities]`` in
rules.toml (default cap 1.2), where for the period and the people chosen:

- ``done_t``: the activities of type t done (planned then done, or registered after
  the fact) whose time falls in the period;
- ``planned_t``: the target. For each person and day of the period up to today: the
  count their personal weekly plan sets for type t when they made a plan for that week;
  otherwise the activities of type t planned for that day whose time has come (done,
  still open, overdue or cancelled alike: cancelling does not lower the target).

Weights make a demonstration count more than an e-mail; the target is what the manager
promised (their plan) or scheduled; the cap keeps overshooting an easy type from hiding
the rest, while still showing up to 20 % more work than planned. Nothing planned: K is
null, never a division by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import duckdb
import orjson

from aggregates.rules import ActivityRules, ActivityType
from queries.common import rows
from queries.companies import as_clients

ACTIVITY_COLUMNS = (
    'activity_id, type, activity_group AS "group", direction, owner, company_id, contact, '
    "lead_id, deal_id, project_id, planned_at, duration_minutes, planned_end, notes, status, "
    "result, done_at, cancel_reason, registered, reschedules, created_at, created_by, version"
)
STATE_SQL = "CASE WHEN status = 'planned' AND planned_end < ? THEN 'overdue' ELSE status END"
WORK_DAYS = 5
"""The weekly table's days: Monday to Friday (seed 004)."""


@dataclass
class ActivityFilters:
    """Who (owner, or a department, region or city of the directory), what (type, group,
    state, client, lead, deal, project) and when (the planned time)."""

    owner: str | None = None
    department: str | None = None
    region: str | None = None
    city: str | None = None
    type: str | None = None
    group: str | None = None
    state: str | None = None
    company_id: str | None = None
    lead_id: str | None = None
    deal_id: str | None = None
    project_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    extra: list[tuple[str, list[Any]]] = field(default_factory=list)

    def people(self, column: str = "owner") -> tuple[list[str], list[Any]]:
        """The clauses choosing people by name and by the directory's columns."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.owner is not None:
            clauses.append(f"{column} = ?")
            params.append(self.owner)
        for name in ("department", "region", "city"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{column} IN (SELECT username FROM users WHERE {name} = ?)")
                params.append(value)
        return clauses, params

    def where(self, now: datetime, *, with_time: bool = True) -> tuple[str, list[Any]]:
        clauses, params = self.people()
        for column, value in (
            ("type", self.type),
            ("activity_group", self.group),
            ("company_id", self.company_id),
            ("lead_id", self.lead_id),
            ("deal_id", self.deal_id),
            ("project_id", self.project_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.state == "overdue":
            clauses.append("status = 'planned' AND planned_end < ?")
            params.append(now)
        elif self.state == "planned":
            clauses.append("status = 'planned' AND planned_end >= ?")
            params.append(now)
        elif self.state is not None:
            clauses.append("status = ?")
            params.append(self.state)
        if with_time and self.start is not None:
            clauses.append("planned_at >= ?")
            params.append(self.start)
        if with_time and self.end is not None:
            clauses.append("planned_at <= ?")
            params.append(self.end)
        for clause, values in self.extra:
            clauses.append(clause)
            params.extend(values)
        return (" WHERE " + " AND ".join(f"({c})" for c in clauses)) if clauses else "", params


def _count(cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> int:
    row = cursor.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


# --- the list ---------------------------------------------------------------------------


def list_activities(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    now: datetime,
    limit: int,
    offset: int,
    *,
    ascending: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Activities by planned time (latest first unless ``ascending``), with their state
    now (overdue derived), a page at a time with the total the filters match."""
    where, params = filters.where(now)
    # the planned and overdue ones are few: their own table
    table = "activities_open" if filters.state in ("planned", "overdue") else "activities"
    total = _count(cursor, f"SELECT count(*) FROM {table}{where}", params)
    order = "ASC" if ascending else "DESC"
    cursor.execute(
        f"SELECT {ACTIVITY_COLUMNS}, {STATE_SQL} AS state FROM {table}{where} "
        f"ORDER BY planned_at {order}, activity_id LIMIT ? OFFSET ?",
        [now, *params, limit, offset],
    )
    return rows(cursor), total


def state_counts(
    cursor: duckdb.DuckDBPyConnection, filters: ActivityFilters, now: datetime
) -> dict[str, int]:
    """How many activities the filters match in each state (they partition them)."""
    where, params = filters.where(now)
    rows = cursor.execute(
        f"SELECT {STATE_SQL} AS state, count(*) FROM activities{where} GROUP BY 1",
        [now, *params],
    ).fetchall()
    counts = dict.fromkeys(("planned", "overdue", "done", "cancelled"), 0)
    counts.update({str(state): int(n) for state, n in rows})
    return counts


def owners(
    cursor: duckdb.DuckDBPyConnection, filters: ActivityFilters, first: date, last: date
) -> list[str]:
    """The people the filters choose who have activities or personal plans (that the
    viewer sees) on the days ``first``..``last``."""
    clauses, params = filters.people()
    plan_clauses, plan_params = filters.people("manager")
    where = "".join(f" AND {c}" for c in clauses)
    plan_where = "".join(f" AND {c}" for c in plan_clauses)
    rows = cursor.execute(
        f"SELECT DISTINCT owner FROM activities WHERE planned_day BETWEEN ? AND ?{where} "
        "UNION SELECT DISTINCT manager FROM activity_plans"
        f" WHERE week BETWEEN date_trunc('week', ?::DATE)::DATE AND ?{plan_where} ORDER BY 1",
        [first, last, *params, first, last, *plan_params],
    ).fetchall()
    return [r[0] for r in rows]


# --- the weekly table -------------------------------------------------------------------


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _type_out(t: ActivityType) -> dict[str, Any]:
    return {
        "code": t.code,
        "name": t.name,
        "group": t.group,
        "direction": t.direction,
        "weight": t.weight,
        "registered_after_the_fact": t.after_the_fact,
    }


def activity_types(rules: ActivityRules) -> dict[str, Any]:
    return {
        "types": [_type_out(t) for t in rules.types],
        "groups": list(rules.groups),
        "coefficient_cap": rules.coefficient_cap,
        "no_interaction_days": rules.no_interaction_days,
    }


def _cell(
    all_: int, done: int, overdue: int, planned: int | None, link: dict[str, str]
) -> dict[str, Any]:
    return {
        "all": all_,
        "done": done,
        "overdue": overdue,
        "planned": planned,
        "link": "/activities?" + urlencode({k: v for k, v in link.items() if v}),
    }


def _add(cells: Sequence[dict[str, Any]], link: dict[str, str]) -> dict[str, Any]:
    planned = [c["planned"] for c in cells if c["planned"] is not None]
    return _cell(
        sum(c["all"] for c in cells),
        sum(c["done"] for c in cells),
        sum(c["overdue"] for c in cells),
        sum(planned) if planned else None,
        link,
    )


def _row(
    day: date,
    weekday: int,
    types: list[dict[str, Any]],
    rules: ActivityRules,
    link: dict[str, str],
) -> dict[str, Any]:
    """A row of the weekly table: its type cells, their group totals and the total."""
    groups = [
        {**_add([c for c in types if c["group"] == g], {**link, "group": g}), "group": g}
        for g in rules.groups
    ]
    return {
        "day": day,
        "weekday": weekday,
        "total": _add(types, link),
        "types": types,
        "groups": groups,
    }


def weekly_table(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    week: date,
    now: datetime,
    rules: ActivityRules,
) -> dict[str, Any]:
    """Days (Monday to Friday) * activity types: each cell all / done (cancelled ones are
    not counted in all), the overdue among them, and the personal plans' count when a
    plan exists; group totals per day, the week's totals per type and group. Each cell
    links to the activities list it counts."""
    week = monday(week)
    last = week + timedelta(days=WORK_DAYS - 1)
    where, params = filters.where(now, with_time=False)
    joiner = " AND " if where else " WHERE "
    rows = cursor.execute(
        f"SELECT planned_day, type, count(*) FILTER (WHERE status <> 'cancelled'),"
        " count(*) FILTER (WHERE status = 'done'),"
        " count(*) FILTER (WHERE status = 'planned' AND planned_end < ?)"
        f" FROM activities{where}{joiner}planned_day BETWEEN ? AND ? GROUP BY ALL",
        [now, *params, week, last],
    ).fetchall()
    counts = {(d, t): (int(a), int(dn), int(o)) for d, t, a, dn, o in rows}
    plan_clauses, plan_params = filters.people("manager")
    plan_where = "".join(f" AND {c}" for c in plan_clauses)
    plan_rows = cursor.execute(
        "SELECT day, type, sum(count) FROM activity_plan_days WHERE week = ?"
        f"{plan_where} GROUP BY ALL",
        [week, *plan_params],
    ).fetchall()
    plans = {(d, t): int(n) for d, t, n in plan_rows}
    has_plan = (
        _count(
            cursor,
            f"SELECT count(*) FROM activity_plans WHERE week = ?{plan_where}",
            [week, *plan_params],
        )
        > 0
    )
    base = {
        "owner": filters.owner or "",
        "department": filters.department or "",
        "region": filters.region or "",
        "city": filters.city or "",
    }
    days: list[dict[str, Any]] = []
    for offset in range(WORK_DAYS):
        day = week + timedelta(days=offset)
        when = {**base, "from": day.isoformat(), "to": day.isoformat()}
        types = []
        for t in rules.types:
            a, dn, o = counts.get((day, t.code), (0, 0, 0))
            planned = plans.get((day, t.code), 0) if has_plan else None
            cell = _cell(a, dn, o, planned, {**when, "type": t.code})
            types.append({**cell, "type": t.code, "group": t.group})
        days.append(_row(day, offset + 1, types, rules, when))
    span = {**base, "from": week.isoformat(), "to": last.isoformat()}
    week_types = [
        {
            **_add([d["types"][i] for d in days], {**span, "type": t.code}),
            "type": t.code,
            "group": t.group,
        }
        for i, t in enumerate(rules.types)
    ]
    totals = _row(week, 1, week_types, rules, span)
    return {
        "week": week,
        "owners": owners(cursor, filters, week, last),
        "types": [_type_out(t) for t in rules.types],
        "days": days,
        "totals": totals,
        "has_plan": has_plan,
    }


# --- the activity coefficient -------------------------------------------------------------


def coefficient(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    first: date,
    last: date,
    now: datetime,
    rules: ActivityRules,
) -> dict[str, Any]:
    """The activity coefficient of the people chosen over the days ``first``..``last``,
    with its parts (see the module's docstring for the definition)."""
    where, params = filters.where(now, with_time=False)
    joiner = " AND " if where else " WHERE "
    today = now.date()
    plan_clauses, plan_params = filters.people("manager")
    plan_where = "".join(f" AND {c}" for c in plan_clauses)
    rows = cursor.execute(
        f"""
        WITH acts AS (
          SELECT owner, planned_day, date_trunc('week', planned_day)::DATE AS week, type,
            count(*) FILTER (WHERE planned_at <= ?) AS due,
            count(*) FILTER (WHERE status = 'done') AS done
          FROM activities{where}{joiner}planned_day BETWEEN ? AND ?
          GROUP BY ALL
        ),
        planned_weeks AS (
          SELECT DISTINCT manager AS owner, week FROM activity_plans
          WHERE week BETWEEN date_trunc('week', ?::DATE)::DATE AND ?{plan_where}
        ),
        plan AS (
          SELECT type, sum(count) AS n FROM activity_plan_days
          WHERE day BETWEEN ? AND least(?, ?){plan_where}
          GROUP BY ALL
        ),
        unplanned AS (
          SELECT a.type, sum(a.due) AS due FROM acts a
          LEFT JOIN planned_weeks w ON w.owner = a.owner AND w.week = a.week
          WHERE a.planned_day <= ? AND w.owner IS NULL
          GROUP BY ALL
        ),
        done AS (SELECT type, sum(done) AS done FROM acts GROUP BY ALL)
        SELECT t.type, coalesce(p.n, 0) AS from_plan, coalesce(u.due, 0) AS due,
          coalesce(d.done, 0) AS done
        FROM (SELECT type FROM done UNION SELECT type FROM plan
              UNION SELECT type FROM unplanned) t
        LEFT JOIN plan p USING (type) LEFT JOIN unplanned u USING (type)
        LEFT JOIN done d USING (type)
        """,
        [
            now,
            *params,
            first,
            last,
            first,
            last,
            *plan_params,
            first,
            last,
            today,
            *plan_params,
            today,
        ],
    ).fetchall()
    found = {t: (int(p), int(u), int(d)) for t, p, u, d in rows}
    parts = []
    weighted_planned = 0.0
    weighted_done = 0.0
    for t in rules.types:
        from_plan, due, done = found.get(t.code, (0, 0, 0))
        planned = from_plan + due
        weighted_planned += t.weight * planned
        weighted_done += t.weight * done
        parts.append(
            {
                "type": t.code,
                "group": t.group,
                "weight": t.weight,
                "planned": planned,
                "done": done,
                "from_plan": from_plan > 0,
            }
        )
    raw = None if weighted_planned == 0 else weighted_done / weighted_planned
    return {
        "period_from": first,
        "period_to": last,
        "owners": owners(cursor, filters, first, last),
        "coefficient": None if raw is None else round(min(rules.coefficient_cap, raw), 4),
        "raw": None if raw is None else round(raw, 4),
        "cap": rules.coefficient_cap,
        "weighted_planned": round(weighted_planned, 4),
        "weighted_done": round(weighted_done, 4),
        "parts": parts,
    }


# --- calls per day and per week -----------------------------------------------------------


def calls(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    first: date,
    last: date,
    now: datetime,
    by: str,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Done calls per person and day (or week, by its Monday), outgoing and incoming."""
    where, params = filters.where(now, with_time=False)
    joiner = " AND " if where else " WHERE "
    bucket = "planned_day" if by == "day" else "date_trunc('week', planned_day)::DATE"
    source = (
        f"SELECT owner, {bucket} AS period, count(*) AS calls,"
        " count(*) FILTER (WHERE direction = 'out') AS outgoing,"
        " count(*) FILTER (WHERE direction = 'in') AS incoming"
        f" FROM activities{where}{joiner}activity_group = 'calls' AND status = 'done'"
        " AND planned_day BETWEEN ? AND ? GROUP BY ALL"
    )
    args = [*params, first, last]
    total = _count(cursor, f"SELECT count(*) FROM ({source})", args)
    cursor.execute(
        f"SELECT * FROM ({source}) ORDER BY period, owner LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return {
        "by": by,
        "period_from": first,
        "period_to": last,
        "items": rows(cursor),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


# --- clients ------------------------------------------------------------------------------

CLIENTS_SQL = """
WITH base AS (
  SELECT company_id, company_name, manager FROM {leads}
  WHERE company_id IS NOT NULL AND status IN ('open', 'paused'){lead_people}
  UNION ALL
  SELECT company_id, company_name, manager FROM {deals}
  WHERE company_id IS NOT NULL AND status = 'open'{deal_people}
),
named AS (SELECT company_id, max(company_name) AS company_name FROM base GROUP BY company_id),
touched AS (
  SELECT company_id, max(last_done_at) AS last_done_at
  FROM {activity_clients}{client_people} GROUP BY company_id
),
clients AS (
  SELECT coalesce(n.company_id, t.company_id) AS company_id, n.company_name, t.last_done_at
  FROM named n {join} touched t ON t.company_id = n.company_id
),
planned AS (
  SELECT company_id, min(planned_at) AS next_planned_at FROM {activities_open}
  WHERE planned_at >= ?{activity_people}
  GROUP BY company_id
)
SELECT c.company_id, c.company_name, c.last_done_at,
  CASE WHEN c.last_done_at IS NULL THEN NULL
       ELSE date_diff('day', c.last_done_at, ?::TIMESTAMPTZ) END AS days_without,
  p.next_planned_at
FROM clients c LEFT JOIN planned p USING (company_id)
WHERE {condition}
"""

CLIENT_SOURCES = {
    "leads": as_clients("leads"),
    "deals": as_clients("deals"),
    "activity_clients": as_clients("activity_clients", named=False),
    "activities_open": as_clients("activities_open", named=False),
}
"""The records the clients' lists read, a merged company's counted as its survivor's."""

# The people of a page of clients only (lists are costly over every client).
MANAGERS_SQL = """
SELECT company_id, list_sort(list_distinct(list(manager))) AS managers FROM (
  SELECT company_id, manager FROM {leads}
  WHERE company_id IN (SELECT unnest(?)) AND status IN ('open', 'paused'){lead_people}
  UNION ALL
  SELECT company_id, manager FROM {deals}
  WHERE company_id IN (SELECT unnest(?)) AND status = 'open'{deal_people}
  UNION ALL
  SELECT company_id, owner FROM {activity_clients}
  WHERE company_id IN (SELECT unnest(?)){client_people}
) GROUP BY company_id
"""


def _clients(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    now: datetime,
    condition: str,
    condition_params: list[Any],
    *,
    with_activity_clients: bool,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Clients of leads and deals in work (and, ``with_activity_clients``, of the chosen
    people's activities) with their last done and next planned activity, and their
    managers (of those leads and deals, and the people who worked with them)."""
    manager_clauses, manager_params = filters.people("manager")
    owner_clauses, owner_params = filters.people("owner")
    and_manager = "".join(f" AND {c}" for c in manager_clauses)
    and_owner = "".join(f" AND {c}" for c in owner_clauses)
    sql = CLIENTS_SQL.format(
        **CLIENT_SOURCES,
        lead_people=and_manager,
        deal_people=and_manager,
        client_people=(" WHERE " + " AND ".join(owner_clauses)) if owner_clauses else "",
        join="FULL JOIN" if with_activity_clients else "LEFT JOIN",
        activity_people=and_owner,
        condition=condition,
    )
    args = [
        *manager_params,
        *manager_params,
        *owner_params,
        now,
        *owner_params,
        now,
        *condition_params,
    ]
    cursor.execute(
        f"SELECT *, count(*) OVER () AS _total FROM ({sql})"
        " ORDER BY last_done_at NULLS FIRST, company_id LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    clients = rows(cursor)
    if not clients:
        return [], _count(cursor, f"SELECT count(*) FROM ({sql})", args)
    total = int(clients[0]["_total"])
    ids = [r["company_id"] for r in clients]
    people_sql = MANAGERS_SQL.format(
        **CLIENT_SOURCES, lead_people=and_manager, deal_people=and_manager, client_people=and_owner
    )
    found = cursor.execute(
        people_sql,
        [ids, *manager_params, ids, *manager_params, ids, *owner_params],
    ).fetchall()
    managers = {company: list(people) for company, people in found}
    items = []
    for row in clients:
        del row["_total"]
        items.append({**row, "managers": managers.get(row["company_id"], [])})
    return items, total


def clients_without_interaction(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    now: datetime,
    days: int,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Clients (of leads and deals in work, and of any activity) with no done activity
    in the last ``days`` days (or none ever), the longest forgotten first."""
    items, total = _clients(
        cursor,
        filters,
        now,
        "c.last_done_at IS NULL OR c.last_done_at < ?",
        [now - timedelta(days=days)],
        with_activity_clients=True,
        limit=limit,
        offset=offset,
    )
    return {"days": days, "items": items, "total": total, "limit": limit, "offset": offset}


def clients_without_planned(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    now: datetime,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Clients of leads and deals in work with no activity planned from now on."""
    items, total = _clients(
        cursor,
        filters,
        now,
        "p.next_planned_at IS NULL",
        [],
        with_activity_clients=False,
        limit=limit,
        offset=offset,
    )
    return {"days": None, "items": items, "total": total, "limit": limit, "offset": offset}


# --- personal weekly plans ------------------------------------------------------------------


def plan_visible(cursor: duckdb.DuckDBPyConnection, manager: str, week: date) -> bool:
    """Whether the viewer's read models hold this manager's plan for the week."""
    row = cursor.execute(
        "SELECT 1 FROM activity_plans WHERE manager = ? AND week = ? LIMIT 1", [manager, week]
    ).fetchone()
    return row is not None


def list_plans(
    cursor: duckdb.DuckDBPyConnection,
    filters: ActivityFilters,
    week: date,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The plans of a week by manager: totals per type and how many comments."""
    clauses, params = filters.people("manager")
    where = "".join(f" AND {c}" for c in clauses)
    total = _count(
        cursor, f"SELECT count(*) FROM activity_plans WHERE week = ?{where}", [week, *params]
    )
    cursor.execute(
        "SELECT p.plan_id, p.manager, p.week, p.comments, p.updated_at, p.version,"
        " (SELECT coalesce(map(list(d.type ORDER BY d.type), list(d.n ORDER BY d.type)), MAP {})"
        "  FROM (SELECT type, sum(count)::INTEGER AS n FROM activity_plan_days"
        "        WHERE plan_id = p.plan_id GROUP BY type) d) AS totals"
        f" FROM activity_plans p WHERE week = ?{where} ORDER BY manager LIMIT ? OFFSET ?",
        [week, *params, limit, offset],
    )
    items = []
    for row in rows(cursor):
        row["comments"] = len(orjson.loads(row["comments"] or "[]"))
        row["totals"] = dict(row["totals"] or {})
        items.append(row)
    return items, total
