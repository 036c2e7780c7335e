"""Projects and delivery: the project portfolio and the reports of PMs, heads of
department, analysts and finance (plan vs fact, people's load against the production
calendar, deviations, invoices and payments).

Each function takes a DuckDB cursor and returns plain dicts; lists come a page at a time
with the total count of what the filters match. Hours and money are exact decimals;
percentages are rounded half up to two places.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from aggregates.rules import HEALTH_LEVELS, Calendar, ProjectRules
from queries.common import (
    CENT,
    ZERO,
    Filters,
    count,
    decimal,
    deviation,
    name_key,
    page_of,
    percent,
    rows,
    start_of,
)
from queries.companies import as_clients

PROJECT_COLUMNS = (
    "project_id, title, company_name, company_id, amount, lead_id, deal_id, status, "
    "status_entered_at, health, "
    "computed_health, computed_reasons, manual_health, manual_comment, pm, curator, "
    "department, direction, category, planned_start, planned_end, planned_hours, "
    "actual_hours, percent_done, tasks, tasks_done, invoiced, paid, remaining, "
    "payment_status, invoiced_unpaid, payment_measured_against, empty_mandatory_fields, "
    "created_at, updated_at, version, billing_version"
)
NEWEST_FIRST = "created_at DESC, project_id"
PAYMENT_STATUSES = ("not_paid", "partially_paid", "paid")


@dataclass(frozen=True)
class Days:
    """A period of whole days, both ends included; an open end is not bounded."""

    start: date | None = None
    end: date | None = None

    def where(self, column: str) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.start is not None:
            clauses.append(f"{column} >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{column} <= ?")
            params.append(self.end)
        return (" AND ".join(clauses) or "TRUE"), params


@dataclass(frozen=True)
class Span:
    """A period of whole days with both ends, both included."""

    start: date
    end: date

    @property
    def days(self) -> Days:
        return Days(self.start, self.end)


# --- the production calendar ------------------------------------------------------------


def calendar_hours(calendar: Calendar, start: date, end: date) -> Decimal:
    """The hours the production calendar asks of a person from ``start`` to ``end``
    (both included): working weekdays that are no holiday, ``hours_per_day`` each.

    Counted by whole weeks, so a period of any length costs the same."""
    if end < start:
        return ZERO
    days = (end - start).days + 1
    weeks, rest = divmod(days, 7)
    weekdays = {d for d in calendar.working_weekdays if 1 <= d <= 7}
    working = weeks * len(weekdays)
    tail = start + timedelta(days=weeks * 7)
    working += sum(1 for i in range(rest) if (tail + timedelta(days=i)).isoweekday() in weekdays)
    working -= sum(1 for h in calendar.holidays if start <= h <= end and h.isoweekday() in weekdays)
    per_day = Decimal(str(calendar.hours_per_day))
    return (per_day * working).quantize(CENT)


# --- the plan spread over its days --------------------------------------------------------

CALENDAR_FIRST = date(2000, 1, 1)
CALENDAR_LAST = date(2100, 12, 31)
EPOCH = date(2000, 1, 3)
"""A Monday: working days are counted from it by arithmetic (no calendar table)."""


def workdays_before(calendar: Calendar, day: str) -> str:
    """SQL: the production calendar's working days from :data:`EPOCH` up to the day
    before ``day`` (an SQL date expression): whole weeks times the working weekdays, the
    working weekdays of the last part week, less the holidays on working weekdays before
    it. Pure arithmetic on the row: no table to join."""
    weekdays = sorted(d for d in calendar.working_weekdays if 1 <= d <= 7)
    n = f"date_diff('day', DATE '{EPOCH}', {day})"
    partial = " + ".join(f"(({n}) % 7 > {d - 1})::INTEGER" for d in weekdays) or "0"
    count = f"(({n}) // 7 * {len(weekdays)} + {partial})"
    holidays = sorted(h for h in calendar.holidays if h.isoweekday() in weekdays)
    if not holidays:
        return count
    listed = ", ".join(f"DATE '{h}'" for h in holidays)
    return f"({count} - len(list_filter([{listed}], lambda h: h < {day})))"


def planned_in_period(
    days: Days, calendar: Calendar, where: str = "TRUE", params: Sequence[Any] = ()
) -> tuple[str, list[Any]]:
    """SQL: every task with a plan (``project_tasks`` t of ``projects`` p, filtered by
    ``where`` over t and p) whose days meet the period, and the part of its planned hours
    that falls in the period (``period_planned``), the plan spread pro rata over the
    task's working days.

    A task's days run from its start (else the project's planned start, else the day it
    was added) to its due day (else the project's planned end, else its start); a span
    with no working day spreads its plan over its calendar days. The plan up to a day is
    ``round(planned * share of the span's days up to that day, 2)``, and a period gets
    the plan up to its last day less the plan up to the day before its first: splitting
    a period into parts splits its plan exactly, to the cent."""

    def before(day: str) -> str:
        return workdays_before(calendar, day)

    sql = f"""
    WITH spans AS (
      SELECT t.project_id, t.task_id, t.title, t.assignee, t.planned_hours,
        p.title AS project, p.department,
        coalesce(t.start, p.planned_start, t.added_at::DATE) AS first,
        greatest(coalesce(t.due, p.planned_end, t.start, p.planned_start,
                          t.added_at::DATE),
                 coalesce(t.start, p.planned_start, t.added_at::DATE)) AS last
      FROM project_tasks t JOIN projects p ON p.project_id = t.project_id
      WHERE t.planned_hours > 0 AND ({where})
    ),
    cut AS (
      SELECT * FROM (
        SELECT s.*, greatest(s.first, ?::DATE) AS a, least(s.last, ?::DATE) AS b FROM spans s
      ) WHERE a <= b
    ),
    counted AS (
      SELECT c.*, {before("c.first")} AS first_before,
        {before("c.last + 1")} - {before("c.first")} AS weight,
        {before("c.a")} AS a_before, {before("c.b + 1")} AS b_upto,
        date_diff('day', c.first, c.last) + 1 AS length
      FROM cut c
    )
    SELECT c.project_id, c.task_id, c.title, c.assignee, c.planned_hours, c.project,
      c.department, c.first, c.last,
      CASE WHEN c.weight > 0 THEN (
        round(c.planned_hours * (c.b_upto - c.first_before) / c.weight, 2)
        - round(c.planned_hours * (c.a_before - c.first_before) / c.weight, 2))::DECIMAL(18,2)
      ELSE (
        round(c.planned_hours * (date_diff('day', c.first, c.b) + 1) / c.length, 2)
        - round(c.planned_hours * date_diff('day', c.first, c.a) / c.length, 2)
      )::DECIMAL(18,2) END AS period_planned
    FROM counted c
    """
    return sql, [*params, days.start or CALENDAR_FIRST, days.end or CALENDAR_LAST]


# --- the portfolio ----------------------------------------------------------------------


def list_projects(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Projects, newest first."""
    where, params = filters.where()
    total = count(cursor, f"SELECT count(*) FROM projects{where}", params)
    cursor.execute(
        f"SELECT {PROJECT_COLUMNS} FROM projects{where} ORDER BY {NEWEST_FIRST} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows(cursor), total


def _status_counts(rules: ProjectRules, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Every configured status in kanban order, then any the configuration lost."""
    listed = [
        {"status": s.id, "name": s.name, "projects": counts.get(s.id, 0)} for s in rules.statuses
    ]
    known = {s.id for s in rules.statuses}
    listed += [
        {"status": status, "name": status, "projects": n}
        for status, n in sorted(counts.items())
        if status not in known
    ]
    return listed


def _health_counts(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"health": level, "projects": counts.get(level, 0)} for level in HEALTH_LEVELS]


class _Tally:
    """Projects and hours of one PM, one department or the whole scope."""

    def __init__(self) -> None:
        self.projects = 0
        self.open_projects = 0
        self.planned_hours = ZERO
        self.actual_hours = ZERO
        self.statuses: dict[str, int] = {}
        self.health: dict[str, int] = {}

    def add(
        self, status: str, health: str, is_open: bool, n: int, planned: Any, actual: Any
    ) -> None:
        self.projects += n
        self.open_projects += n if is_open else 0
        self.planned_hours += decimal(planned)
        self.actual_hours += decimal(actual)
        self.statuses[status] = self.statuses.get(status, 0) + n
        self.health[health] = self.health.get(health, 0) + n

    def figures(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "open_projects": self.open_projects,
            "planned_hours": self.planned_hours,
            "actual_hours": self.actual_hours,
        }


def portfolio(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, rules: ProjectRules
) -> dict[str, Any]:
    """The portfolio of one PM, one department or the whole company: totals, the status
    and health distributions, the payments (by payment status, measured against each
    project's amount; amount, paid, left to pay and invoiced not paid yet), and per PM
    and per department the projects (open ones: not done) and their planned and actual
    hours."""
    where, params = filters.where()
    cursor.execute(
        "SELECT payment_status, count(*), sum(amount), sum(paid), sum(remaining), "
        f"sum(invoiced_unpaid) FROM projects{where} GROUP BY payment_status",
        params,
    )
    owed = {"amount": ZERO, "paid": ZERO, "remaining": ZERO, "invoiced_unpaid": ZERO}
    by_payment: dict[str, int] = {}
    for status, n, *money in cursor.fetchall():
        by_payment[status] = int(n)
        for key, value in zip(owed, money, strict=True):
            owed[key] += decimal(value)
    cursor.execute(
        "SELECT pm, department, status, health, count(*) AS n, sum(planned_hours), "
        f"sum(actual_hours) FROM projects{where} GROUP BY ALL",
        params,
    )
    whole = _Tally()
    pms: dict[str | None, _Tally] = {}
    departments: dict[str | None, _Tally] = {}
    for pm, department, status, health, n, planned, actual in cursor.fetchall():
        is_open = status != rules.done_status
        for tally in (
            whole,
            pms.setdefault(pm, _Tally()),
            departments.setdefault(department, _Tally()),
        ):
            tally.add(status, health, is_open, n, planned, actual)
    return {
        **whole.figures(),
        "by_status": _status_counts(rules, whole.statuses),
        "by_health": _health_counts(whole.health),
        "payments": {
            **owed,
            "by_status": [
                {"payment_status": status, "projects": by_payment.get(status, 0)}
                for status in PAYMENT_STATUSES
            ],
        },
        "pms": [
            {
                "pm": pm,
                **tally.figures(),
                "by_status": _status_counts(rules, tally.statuses),
                "by_health": _health_counts(tally.health),
            }
            for pm, tally in sorted(
                pms.items(), key=lambda p: (-p[1].open_projects, name_key(p[0]))
            )
        ],
        "departments": [
            {"department": department, **tally.figures()}
            for department, tally in sorted(departments.items(), key=lambda d: name_key(d[0]))
        ],
    }


# --- plan vs fact -----------------------------------------------------------------------


def plan_fact(
    cursor: duckdb.DuckDBPyConnection,
    filters: Filters,
    days: Days,
    limit: int,
    offset: int,
    calendar: Calendar | None = None,
    *,
    stored: bool = True,
) -> dict[str, Any]:
    """Per project (newest first): the plan (its tasks' planned hours), the part of the
    plan that falls in the period (each task's plan spread over its working days, see
    :func:`planned_in_period`: never counted whole in a period its task only touches),
    the hours logged on days of the period and overall, the period's deviation from its
    plan and the overall deviation from the whole plan; with the totals of every project
    the filters match.

    ``stored``: the period's plan summed from the days already spread (``plan_days``,
    spread with the configured calendar); otherwise every task meeting the period is
    spread now with ``calendar`` (the same figures)."""
    where, params = filters.where("p")
    in_period, period_params = days.where("day")
    logged = (
        "SELECT project_id, sum(hours) AS hours FROM time_entries "
        f"WHERE {in_period} GROUP BY project_id"
    )
    # only the chosen projects' tasks are spread
    chosen = where.removeprefix(" WHERE ") or "TRUE"
    if stored:
        days_in, days_params = days.where("d.day")
        spread = (
            "SELECT d.project_id, d.planned AS period_planned FROM plan_days d "
            f"WHERE {days_in} AND d.project_id IN (SELECT p.project_id FROM projects p{where})"
        )
        spread_params = [*days_params, *params]
    else:
        spread, spread_params = planned_in_period(days, calendar or Calendar(), chosen, params)
    # the period's plan per project is spread once, then read by the totals and the page
    cursor.execute(
        f"CREATE OR REPLACE TEMP TABLE {PLAN_SPREAD} AS SELECT project_id, "
        f"sum(period_planned) AS hours FROM ({spread}) GROUP BY ALL",
        spread_params,
    )
    base = (
        f"FROM projects p LEFT JOIN ({logged}) h ON h.project_id = p.project_id "
        f"LEFT JOIN {PLAN_SPREAD} s ON s.project_id = p.project_id{where}"
    )
    all_params = [*period_params, *params]
    try:
        totals_row = cursor.execute(
            "SELECT count(*), sum(p.planned_hours), sum(coalesce(h.hours, 0)), "
            f"sum(p.actual_hours), sum(coalesce(s.hours, 0)) {base}",
            all_params,
        ).fetchone()
        assert totals_row is not None
        total, planned_sum, period_hours, actual, period_planned = totals_row
        cursor.execute(
            "SELECT p.project_id, p.title, p.company_name, p.pm, p.department, p.direction, "
            "p.category, p.status, p.planned_hours, "
            "coalesce(s.hours, 0) AS period_planned_hours, coalesce(h.hours, 0) AS period_hours, "
            f"p.actual_hours {base} ORDER BY p.created_at DESC, p.project_id LIMIT ? OFFSET ?",
            [*all_params, limit, offset],
        )
        items = rows(cursor)
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {PLAN_SPREAD}")
    for item in items:
        item["period_hours"] = decimal(item["period_hours"])
        item["period_planned_hours"] = decimal(item["period_planned_hours"])
        item["period_deviation_percent"] = deviation(
            item["period_hours"], item["period_planned_hours"]
        )
        item["deviation_hours"] = item["actual_hours"] - item["planned_hours"]
        item["deviation_percent"] = deviation(item["actual_hours"], item["planned_hours"])
    planned_total, actual_total = decimal(planned_sum), decimal(actual)
    return {
        "period_from": days.start,
        "period_to": days.end,
        **page_of(items, int(total), limit, offset),
        "totals": {
            "projects": int(total),
            "planned_hours": planned_total,
            "period_planned_hours": decimal(period_planned),
            "period_hours": decimal(period_hours),
            "period_deviation_percent": deviation(decimal(period_hours), decimal(period_planned)),
            "actual_hours": actual_total,
            "deviation_hours": actual_total - planned_total,
            "deviation_percent": deviation(actual_total, planned_total),
        },
    }


PLAN_SPREAD = "_plan_spread"
"""The temporary table a plan/fact request spreads its projects' plans into."""


# --- people's hours ---------------------------------------------------------------------


def resource_load(
    cursor: duckdb.DuckDBPyConnection,
    calendar: Calendar,
    span: Span,
    person: str | None,
    limit: int,
    offset: int,
    *,
    stored: bool = True,
) -> dict[str, Any]:
    """Per person, most loaded first: their tasks' planned hours that fall in the period
    (each task's plan spread over its working days, :func:`planned_in_period`) and the
    hours they logged on days of the period, per project and per task, against the
    production calendar's hours of the period (load %: logged, and planned). Listed:
    everyone with hours logged or planned in the period, or the one person asked for
    (with none too).

    Per department (of the user directory): its people — those listed, and the active
    users of the delivering departments (``calendar.departments``) with a role that logs
    its own hours (``calendar.roles``) — their capacity (the calendar's hours of the
    period for each), their logged and planned hours, and its efficiency: logged hours
    in % of the capacity.

    ``stored``: the period's plans summed from the days already spread (``plan_days``,
    spread with the configured calendar); otherwise every task meeting the period is
    spread now with ``calendar`` (the same figures)."""
    required = calendar_hours(calendar, span.start, span.end)
    source, params = _hours_and_plans(calendar, span, person, stored=stored)
    # each person's figures (every value is >= 0: a person with a figure has a task with one)
    cursor.execute(
        "SELECT person, sum(logged)::VARCHAR, sum(planned)::VARCHAR "
        f"FROM ({source}) GROUP BY person HAVING sum(logged) <> 0 OR sum(planned) <> 0",
        params,
    )
    totals: dict[str, Decimal] = {}
    plans: dict[str, Decimal] = {}
    for who, hours, plan in cursor.fetchall():
        totals[who], plans[who] = Decimal(hours), Decimal(plan)
    if person is not None:
        totals.setdefault(person, ZERO)
        plans.setdefault(person, ZERO)
    people = sorted(totals, key=lambda who: (-totals[who], -plans[who], who))
    chosen = people[offset : offset + limit]
    # the page's people's tasks (sums as text: DuckDB's decimals are slow to fetch)
    cursor.execute(
        "SELECT person, project_id, max(project), task_id, max(title), "
        f"sum(logged)::VARCHAR, sum(planned)::VARCHAR FROM ({source}) "
        "WHERE list_contains(?, person) GROUP BY person, project_id, task_id "
        "HAVING sum(logged) <> 0 OR sum(planned) <> 0 "
        "ORDER BY person, 3 NULLS LAST, project_id, task_id NULLS FIRST",
        [*params, chosen],
    )
    detail = _titled(cursor, cursor.fetchall())
    tasks: dict[str, list[dict[str, Any]]] = {}
    projects: dict[str, dict[str, dict[str, Any]]] = {}
    for who, project_id, project, task_id, title, logged, planned in detail:
        hours, plan = Decimal(logged), Decimal(planned)
        tasks.setdefault(who, []).append(
            {
                "project_id": project_id,
                "project": project,
                "task_id": task_id,
                "title": title,
                "planned_hours": plan,
                "logged_hours": hours,
            }
        )
        row = projects.setdefault(who, {}).setdefault(
            project_id,
            {"project_id": project_id, "title": project, "hours": ZERO, "planned_hours": ZERO},
        )
        row["hours"] += hours
        row["planned_hours"] += plan
    items = [
        {
            "person": who,
            "logged_hours": totals[who],
            "planned_hours": plans[who],
            "calendar_hours": required,
            "load_percent": percent(totals[who], required),
            "planned_load_percent": percent(plans[who], required),
            "projects": sorted(
                projects.get(who, {}).values(),
                key=lambda p: (-p["hours"], -p["planned_hours"], p["project_id"]),
            ),
            "tasks": tasks.get(who, []),
        }
        for who in chosen
    ]
    return {
        "period_from": span.start,
        "period_to": span.end,
        "calendar_hours": required,
        **page_of(items, len(people), limit, offset),
        "departments": _department_efficiency(cursor, calendar, required, totals, plans, person),
    }


def _hours_and_plans(
    calendar: Calendar, span: Span, person: str | None, *, stored: bool
) -> tuple[str, list[Any]]:
    """SQL: rows of (person, project_id, task_id, logged, planned, project, title) whose
    sums per person, project and task are the resource load's figures of the period (the
    titles when known; none elsewhere).

    ``stored``: the months of the period from ``resource_months`` and the days it cuts
    off them from ``plan_days`` and ``time_entries`` (:func:`month_parts`); otherwise
    the hours from the time entries and every task meeting the period spread now."""
    mine = "" if person is None else " AND person = ?"
    me = [] if person is None else [person]
    if not stored:
        in_period, params = span.days.where("day")
        spread, spread_params = planned_in_period(
            span.days,
            calendar,
            "t.assignee IS NOT NULL" + (" AND t.assignee = ?" if person is not None else ""),
            me,
        )
        return (
            "SELECT person, project_id, task_id, hours AS logged, 0 AS planned, "
            f"NULL AS project, NULL AS title FROM time_entries WHERE {in_period}{mine} "
            "UNION ALL SELECT assignee, project_id, task_id, 0, period_planned, project, title "
            f"FROM ({spread})"
        ), [*params, *me, *spread_params]
    split = month_parts(span)
    parts: list[str] = []
    params = []
    if split.months:
        parts.append(
            "SELECT person, project_id, task_id, logged, planned, project, title "
            f"FROM resource_months WHERE list_contains(?, month){mine}"
        )
        params += [list(split.months), *me]
    if split.days or split.less:
        added = " OR ".join(["day BETWEEN ? AND ?"] * len(split.days)) or "FALSE"
        taken = " OR ".join(["day BETWEEN ? AND ?"] * len(split.less)) or "FALSE"
        sign = f"CASE WHEN {taken} THEN -1 ELSE 1 END"
        added_days = [day for part in split.days for day in part]
        taken_days = [day for part in split.less for day in part]
        parts.append(
            f"SELECT person, project_id, task_id, {sign} * hours AS logged, 0 AS planned, "
            "NULL::VARCHAR AS project, NULL::VARCHAR AS title FROM time_entries "
            f"WHERE ({added} OR {taken}){mine} UNION ALL "
            f"SELECT person, project_id, task_id, 0, {sign} * planned, NULL, NULL FROM plan_days "
            f"WHERE person IS NOT NULL AND ({added} OR {taken}){mine}"
        )
        params += [*taken_days, *added_days, *taken_days, *me] * 2
    return " UNION ALL ".join(parts), params


def _titled(cursor: duckdb.DuckDBPyConnection, detail: list[Any]) -> list[Any]:
    """The page's task rows with the project and task titles they lack looked up by key
    (rows of days cut off a month, or of hours alone), in the same order as the query's."""
    projects = {r[1] for r in detail if r[2] is None}
    tasks = {(r[1], r[3]) for r in detail if r[4] is None and r[3] is not None}
    if not projects and not tasks:
        return detail
    cursor.execute(
        "SELECT project_id, title FROM projects WHERE list_contains(?, project_id)",
        [sorted(projects)],
    )
    project_titles = dict(cursor.fetchall())
    cursor.execute(
        "SELECT project_id, task_id, title FROM project_tasks "
        "WHERE list_contains(?, project_id) AND list_contains(?, task_id)",
        [sorted({p for p, _ in tasks}), sorted({t for _, t in tasks})],
    )
    task_titles = {(p, t): title for p, t, title in cursor.fetchall()}
    titled = [
        (
            who,
            project_id,
            project if project is not None else project_titles.get(project_id),
            task_id,
            title if title is not None else task_titles.get((project_id, task_id)),
            logged,
            planned,
        )
        for who, project_id, project, task_id, title, logged, planned in detail
    ]
    # as the query orders them: person, project title (none last), project, task (none first)
    titled.sort(key=lambda r: (r[0], r[2] is None, r[2] or "", r[1], r[3] is not None, r[3] or ""))
    return titled


@dataclass(frozen=True)
class MonthParts:
    """A period as months' sums and days: the months (their first days) whose rows it
    adds, the days whose rows it adds and the days whose rows it takes away (days of
    an added month outside the period)."""

    months: tuple[date, ...]
    days: tuple[tuple[date, date], ...]
    less: tuple[tuple[date, date], ...]


def month_parts(span: Span) -> MonthParts:
    """The period as months' sums and day rows, reading as few days as it can: a month
    it holds whole is added; of a month it cuts, the days it holds are added when they
    are at most half the month's, else the whole month less the days it leaves out."""
    months: list[date] = []
    days: list[tuple[date, date]] = []
    less: list[tuple[date, date]] = []
    first = span.start.replace(day=1)
    while first <= span.end:
        last = first.replace(day=monthrange(first.year, first.month)[1])
        a, b = max(first, span.start), min(last, span.end)
        held = (b - a).days + 1
        if held * 2 <= last.day and (a, b) != (first, last):
            days.append((a, b))
        else:
            months.append(first)
            if a > first:
                less.append((first, a - timedelta(days=1)))
            if b < last:
                less.append((b + timedelta(days=1), last))
        if last == date.max:
            break
        first = last + timedelta(days=1)
    return MonthParts(tuple(months), tuple(days), tuple(less))


def _department_efficiency(
    cursor: duckdb.DuckDBPyConnection,
    calendar: Calendar,
    required: Decimal,
    logged: dict[str, Decimal],
    planned: dict[str, Decimal],
    person: str | None,
) -> list[dict[str, Any]]:
    """Each department's people, capacity, logged and planned hours and efficiency."""
    cursor.execute(
        "SELECT username, department FROM users WHERE list_contains(?, username) "
        "OR (? IS NULL AND active AND list_contains(?, department) AND list_contains(?, role))",
        [
            sorted(logged),
            person,
            sorted(calendar.departments),
            sorted(calendar.roles),
        ],
    )
    department_of: dict[str, str | None] = dict.fromkeys(logged)
    department_of.update(dict(cursor.fetchall()))
    tally: dict[str | None, list[Any]] = {}
    for who, department in department_of.items():
        figures = tally.setdefault(department, [0, ZERO, ZERO])
        figures[0] += 1
        figures[1] += logged.get(who, ZERO)
        figures[2] += planned.get(who, ZERO)
    return [
        {
            "department": department,
            "people": n,
            "capacity_hours": required * n,
            "logged_hours": hours,
            "planned_hours": plan,
            "efficiency_percent": percent(hours, required * n),
        }
        for department, (n, hours, plan) in sorted(tally.items(), key=lambda d: name_key(d[0]))
    ]


@dataclass(frozen=True)
class Expected:
    """Whose absence from the timesheets a viewer may see: everyone of the delivering
    departments (no bound), one department's people (a head), or only themselves."""

    department: str | None = None
    person: str | None = None


def deviations(
    cursor: duckdb.DuckDBPyConnection,
    calendar: Calendar,
    span: Span,
    limit: int,
    offset: int,
    expected: Expected | None = None,
) -> dict[str, Any]:
    """People short of the production calendar in the period, and project cards with
    mandatory fields still empty (each list a page of its own, with its total).

    The people: everyone who should have logged hours, whether they logged any or not:
    the users of the delivering departments (``calendar.departments``) with a role that
    logs its own hours (``calendar.roles``) who were active in the period (registered by
    its last day, and active now or last changed, as by their deactivation, on or after
    its first day), as far as ``expected`` lets the viewer see them; and, as before,
    anyone else who has logged hours on a project the viewer sees on a day up to the
    period's end (a withdrawn entry counts: its person still works here)."""
    bound = expected or Expected()
    required = calendar_hours(calendar, span.start, span.end)
    cursor.execute(
        "SELECT person, coalesce(sum(hours) FILTER (WHERE day >= ?), 0) AS logged "
        "FROM time_entries WHERE day <= ? GROUP BY person",
        [span.start, span.end],
    )
    logged: dict[str, Decimal] = {who: decimal(hours) for who, hours in cursor.fetchall()}
    departments: dict[str, str | None] = dict.fromkeys(logged)
    cursor.execute(
        "SELECT username, department FROM users WHERE list_contains(?, department) "
        "AND list_contains(?, role) AND created_at < ? AND (active OR updated_at >= ?) "
        "AND department = coalesce(?, department) AND username = coalesce(?, username)",
        [
            sorted(calendar.departments),
            sorted(calendar.roles),
            start_of(span.end + timedelta(days=1)) if span.end < date.max else start_of(span.end),
            start_of(span.start),
            bound.department,
            bound.person,
        ],
    )
    expected_people = dict(cursor.fetchall())
    if expected_people:
        # their hours are theirs: counted on every project, also those the viewer does
        # not see (the read scope shadows time_entries; its stored table holds them all)
        row = cursor.execute("SELECT current_database()").fetchone()
        assert row is not None
        stored = '"' + str(row[0]).replace('"', '""') + '".main.time_entries'
        cursor.execute(
            f"SELECT person, coalesce(sum(hours), 0) FROM {stored} "
            "WHERE day BETWEEN ? AND ? AND list_contains(?, person) GROUP BY person",
            [span.start, span.end, sorted(expected_people)],
        )
        hours_of = {who: decimal(hours) for who, hours in cursor.fetchall()}
        for who, department in expected_people.items():
            departments[who] = department
            logged[who] = hours_of.get(who, ZERO)
    if logged:
        cursor.execute(
            "SELECT username, department FROM users WHERE list_contains(?, username)",
            [sorted(logged)],
        )
        departments.update(dict(cursor.fetchall()))
    missing = sorted(
        ((required - hours, who) for who, hours in logged.items() if hours < required),
        key=lambda m: (-m[0], m[1]),
    )
    short = [
        {
            "person": who,
            "department": departments.get(who),
            "required_hours": required,
            "logged_hours": logged[who],
            "missing_hours": gap,
        }
        for gap, who in missing
    ]
    empty = "len(empty_mandatory_fields) > 0"
    total_cards = count(cursor, f"SELECT count(*) FROM projects WHERE {empty}", [])
    cursor.execute(
        "SELECT project_id, title, pm, department, status, empty_mandatory_fields "
        f"FROM projects WHERE {empty} ORDER BY {NEWEST_FIRST} LIMIT ? OFFSET ?",
        [limit, offset],
    )
    return {
        "period_from": span.start,
        "period_to": span.end,
        "required_hours": required,
        "people": page_of(short[offset : offset + limit], len(short), limit, offset),
        "cards": page_of(rows(cursor), total_cards, limit, offset),
    }


# --- invoices and payments --------------------------------------------------------------

# the payment status of a row's invoices, as aggregates.billing.payment_status
ROW_STATUS = (
    "CASE WHEN i.invoiced IS NULL THEN NULL "
    "WHEN i.invoiced - i.outstanding <= 0 THEN 'not_paid' "
    "WHEN i.outstanding <= 0 THEN 'paid' ELSE 'partially_paid' END"
)


def payments(
    cursor: duckdb.DuckDBPyConnection,
    filters: Filters,
    days: Days,
    status: str | None,
    limit: int,
    offset: int,
    payment_status: str | None = None,
) -> dict[str, Any]:
    """Per project with an invoice issued or a payment received in the period (by client,
    then title): invoiced and paid in the period and what is still outstanding of its
    invoices issued in the period, beside the project's amount, its payment status and
    what is left to pay of its amount (now, whatever the period); per client and in
    total over every such project the filters match."""
    issued, issued_params = days.where("issued_on")
    received, received_params = days.where("paid_on")
    extra: list[tuple[str, list[Any]]] = [
        ("(i.project_id IS NOT NULL OR r.project_id IS NOT NULL)", [])
    ]
    if status is not None:
        extra.append((f"{ROW_STATUS} = ?", [status]))
    if payment_status is not None:
        extra.append(("p.payment_status = ?", [payment_status]))
    where, params = Filters(equal=filters.equal, extra=[*filters.extra, *extra]).where("p")
    rows_sql = (
        "SELECT p.project_id, p.title, p.company_id, p.company_name, p.pm, "
        "coalesce(i.invoices, 0) AS invoices, coalesce(i.invoiced, 0) AS invoiced, "
        "coalesce(r.payments, 0) AS payments, coalesce(r.paid, 0) AS paid, "
        f"coalesce(i.outstanding, 0) AS outstanding, {ROW_STATUS} AS status, "
        "p.amount, p.payment_status, p.remaining "
        "FROM projects p "
        "LEFT JOIN (SELECT project_id, count(*) AS invoices, sum(amount) AS invoiced, "
        f"sum(remaining) AS outstanding FROM project_invoices WHERE {issued} "
        "GROUP BY project_id) i ON i.project_id = p.project_id "
        "LEFT JOIN (SELECT project_id, count(*) AS payments, sum(amount) AS paid "
        f"FROM project_payments WHERE {received} GROUP BY project_id) r "
        f"ON r.project_id = p.project_id{where}"
    )
    all_params = [*issued_params, *received_params, *params]
    cursor.execute(
        "SELECT company_id, company_name, count(*), sum(invoiced), sum(paid), "
        f"sum(outstanding), sum(remaining) FROM {as_clients(f'({rows_sql})')}"
        " GROUP BY company_id, company_name",
        all_params,
    )
    clients = sorted(
        (
            {
                "company_id": company_id,
                "company_name": company_name,
                "projects": int(n),
                "invoiced": decimal(invoiced),
                "paid": decimal(paid),
                "outstanding": decimal(outstanding),
                "remaining": decimal(remaining),
            }
            for company_id, company_name, n, invoiced, paid, outstanding, remaining in (
                cursor.fetchall()
            )
        ),
        key=lambda c: (c["company_name"], name_key(c["company_id"])),
    )
    cursor.execute(
        f"SELECT * FROM ({rows_sql}) ORDER BY company_name, title, project_id LIMIT ? OFFSET ?",
        [*all_params, limit, offset],
    )
    items = rows(cursor)
    for item in items:
        for key in ("invoiced", "paid", "outstanding", "remaining"):
            item[key] = decimal(item[key])
    total = sum(c["projects"] for c in clients)
    return {
        "period_from": days.start,
        "period_to": days.end,
        **page_of(items, total, limit, offset),
        "clients": clients,
        "totals": {
            "projects": total,
            "invoiced": sum((c["invoiced"] for c in clients), ZERO),
            "paid": sum((c["paid"] for c in clients), ZERO),
            "outstanding": sum((c["outstanding"] for c in clients), ZERO),
            "remaining": sum((c["remaining"] for c in clients), ZERO),
        },
    }


# --- a person's week ----------------------------------------------------------------------


def timesheet(
    cursor: duckdb.DuckDBPyConnection, person: str, span: Span, done_status: str
) -> dict[str, Any]:
    """A person's timesheet for a period (a week): the rows they log hours on — each open
    project they run or hold an open task of (the project itself, and each such task),
    and whatever they logged in the period — with the hours logged per row and day, and
    per day in all (on the projects the cursor sees)."""
    in_period, params = span.days.where("e.day")
    cursor.execute(
        "SELECT e.project_id, p.title, e.task_id, t.title AS task_title, e.day, "
        "sum(e.hours) AS hours FROM time_entries e "
        "JOIN projects p ON p.project_id = e.project_id "
        "LEFT JOIN project_tasks t ON t.project_id = e.project_id AND t.task_id = e.task_id "
        f"WHERE e.person = ? AND {in_period} GROUP BY ALL HAVING sum(e.hours) <> 0",
        [person, *params],
    )
    logged = rows(cursor)
    cursor.execute(
        "SELECT p.project_id, p.title, t.task_id, t.title AS task_title, p.pm = ? AS runs "
        "FROM projects p LEFT JOIN project_tasks t ON t.project_id = p.project_id "
        "AND t.assignee = ? AND t.completed_at IS NULL "
        "WHERE p.status <> ? AND (p.pm = ? OR t.task_id IS NOT NULL) "
        "ORDER BY p.title, p.project_id, t.task_no",
        [person, person, done_status, person],
    )
    sheet: dict[tuple[str, str | None], dict[str, Any]] = {}

    def row(project_id: str, title: str, task_id: str | None, task_title: str | None) -> None:
        sheet.setdefault(
            (project_id, task_id),
            {
                "project_id": project_id,
                "title": title,
                "task_id": task_id,
                "task_title": task_title,
                "hours": {},
                "total": ZERO,
            },
        )

    for item in rows(cursor):
        row(item["project_id"], item["title"], None, None)
        if item["task_id"] is not None:
            row(item["project_id"], item["title"], item["task_id"], item["task_title"])
    days: dict[date, Decimal] = {}
    for item in logged:
        row(item["project_id"], item["title"], item["task_id"], item["task_title"])
        hours = decimal(item["hours"])
        entry = sheet[(item["project_id"], item["task_id"])]
        entry["hours"][item["day"]] = entry["hours"].get(item["day"], ZERO) + hours
        entry["total"] += hours
        days[item["day"]] = days.get(item["day"], ZERO) + hours
    ordered = sorted(
        sheet.values(), key=lambda r: (r["title"], r["project_id"], r["task_id"] is not None)
    )
    return {
        "person": person,
        "period_from": span.start,
        "period_to": span.end,
        "rows": ordered,
        "days": days,
        "total": sum(days.values(), ZERO),
    }
