"""The sales indicators and the two cabinets, from the read models.

**Who is in view.** Every indicator and cabinet is about a set of sellers (active
managers and heads in the directory) the viewer may see, narrowed by the filters
(manager, department, region, city): top management (and analysts, auditors) everyone; a
head the people of their department and themselves; an assistant the managers they work
for; anyone else themselves. A *regional head* — a head whose directory record names a
region — sees the people of their department **in that region** (and themselves): region
and department compose as an intersection, so a regional head never sees another region's
people, and a head without a region sees their whole department (seed 003: «доступ к
клиентам разграничен по регионам и ответственным»). The records (leads, deals, invoices)
counted are those of the sellers in view only. Those sellers are always among the people
of the viewer's read scope (:class:`read_api.access.Scope`: themselves, a head's
department, an assistant's managers), whose records the scoped views always show, so
the queries read the base tables filtered by seller (the same rows, without the cost of
the views); top management with no filter reads everything unfiltered.

**Indicators** (``/reports/...``): new leads per day and per week; new clients
(client-base growth: companies whose first lead ever falls in the period); dormant
clients (the last invoice on their deals more than ``[sales] dormant_after_days`` ago,
seed 003: two years); invoices issued per manager and per client; deals in work (count,
sum) and their sums by stage. Every split adds up to its totals.

**Cabinets**: the manager's (plan, % done, plan to date, deals in work, client-base
growth, sums by stage, then the sections of :data:`MANAGER_SECTIONS`) and the head of
sales' (plan, plan to date, fact, % done and open deals' sum rolled up region → city →
manager, with one manager's open deals and hand-offs on drill-down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from aggregates.funnels import FunnelCatalog
from aggregates.rules import ActivityRules, Calendar
from aggregates.sales_plans import month_days, plan_share, plan_to_date
from aggregates.users import Principal, Role
from queries import activities
from queries.activities import ActivityFilters
from queries.common import rows
from queries.companies import as_clients
from queries.sales_plans import plans_of

ZERO = Decimal("0.00")
NO_REGION = ""
"""People whose directory record names no region or city are rolled up under ''."""


# --- who is in view --------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    """The filters naming sellers: one manager, a department, a region, a city."""

    manager: str | None = None
    department: str | None = None
    region: str | None = None
    city: str | None = None


def _scope_clause(principal: Principal) -> tuple[str, list[Any]]:
    if principal.sees_everything:
        return "TRUE", []
    me = principal.user
    if principal.role is Role.HEAD:
        department = "(department = ?)" if principal.department else "FALSE"
        region = "(region = ?)" if principal.region else "TRUE"
        params: list[Any] = [me]
        params += [principal.department] if principal.department else []
        params += [principal.region] if principal.region else []
        return f"(username = ? OR ({department} AND {region}))", params
    if principal.role is Role.ASSISTANT:
        return (
            "username IN (SELECT unnest(managers) FROM users WHERE username = ? AND active)",
            [me],
        )
    return "username = ?", [me]


def people(
    cursor: duckdb.DuckDBPyConnection, principal: Principal, who: Who
) -> list[dict[str, Any]]:
    """The sellers in view — active managers, and the heads of departments that have
    managers (a delivery department's head sells nothing) — by region, city and name."""
    scope, params = _scope_clause(principal)
    clauses = [scope]
    for column, value in (
        ("username", who.manager),
        ("department", who.department),
        ("coalesce(region, '')", who.region),
        ("coalesce(city, '')", who.city),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    cursor.execute(
        "SELECT username AS manager, coalesce(name, username) AS name, role, department,"
        " coalesce(region, '') AS region, coalesce(city, '') AS city FROM users"
        " WHERE active AND (role = 'manager' OR (role = 'head' AND department IN"
        " (SELECT department FROM users WHERE role = 'manager' AND active))) AND "
        + " AND ".join(clauses)
        + " ORDER BY region, city, username",
        params,
    )
    return rows(cursor)


def names(rows: Iterable[dict[str, Any]]) -> list[str]:
    return [r["manager"] for r in rows]


# --- periods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """An indicator's period: from ``start`` to ``end``, both included."""

    start: datetime
    end: datetime


def month_span(month: str) -> Span:
    """A ``YYYY-MM`` month as a period (UTC)."""
    first, last = month_days(month)
    return Span(datetime.combine(first, time.min, UTC), datetime.combine(last, time.max, UTC))


# --- indicators ---------------------------------------------------------------------------


def _people(column: str, managers: list[str] | None) -> tuple[str, list[Any]]:
    """SQL restricting rows to these sellers (None: no restriction, top management's
    whole picture)."""
    if managers is None:
        return "TRUE", []
    return f"{column} IN (SELECT unnest(?::VARCHAR[]))", [managers]


def new_leads(
    cursor: duckdb.DuckDBPyConnection, managers: list[str] | None, span: Span
) -> dict[str, Any]:
    """New leads (created in the period) per day, per ISO week (Monday) and per manager,
    with totals: one scan, three grouping sets."""
    who, params = _people("manager", managers)
    # whole days and Monday weeks as integers (day 0: 1970-01-01, a Thursday): grouping on
    # them is several times cheaper than on dates cast per row
    cursor.execute(
        "SELECT (to_timestamp(day * 86400))::DATE AS day,"
        " (to_timestamp((week * 7 - 3) * 86400))::DATE AS week, manager, count,"
        " amount FROM (SELECT day, week, manager, count(*) AS count,"
        " coalesce(sum(amount), 0)::DECIMAL(38, 2) AS amount,"
        " GROUPING(day, week, manager) AS level FROM ("
        "  SELECT epoch_us(created_at) // 86400000000 AS day,"
        "  (epoch_us(created_at) // 86400000000 + 3) // 7 AS week, manager, amount"
        f"  FROM {_catalog(cursor)}.leads"
        f"  WHERE {who} AND created_at >= ? AND created_at <= ?)"
        " GROUP BY GROUPING SETS ((day), (week), (manager)))"
        " ORDER BY level, day, week, manager",
        [*params, span.start, span.end],
    )
    found = rows(cursor)
    days = [{k: r[k] for k in ("day", "count", "amount")} for r in found if r["day"] is not None]
    weeks = [{k: r[k] for k in ("week", "count", "amount")} for r in found if r["week"] is not None]
    by_manager = [
        {k: r[k] for k in ("manager", "count", "amount")}
        for r in found
        if r["day"] is None and r["week"] is None
    ]
    totals = {
        "count": sum(d["count"] for d in days),
        "amount": sum((d["amount"] for d in days), ZERO),
    }
    return {
        "start": span.start,
        "end": span.end,
        "days": days,
        "weeks": weeks,
        "managers": by_manager,
        "totals": totals,
    }


def _catalog(cursor: duckdb.DuckDBPyConnection) -> str:
    row = cursor.execute("SELECT current_database()").fetchone()
    assert row is not None
    return '"' + str(row[0]).replace('"', '""') + '".main'


def new_clients(
    cursor: duckdb.DuckDBPyConnection,
    managers: list[str] | None,
    span: Span,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Client-base growth: the companies whose first lead ever (whoever's it is) was
    created in the period, counted for the manager that lead was created for
    (``client_first_leads``)."""
    who, params = _people("manager", managers)
    firsts = as_clients("client_first_leads", _catalog(cursor), first="created_at, lead_id")
    base = f"FROM {firsts} WHERE {who} AND created_at >= ? AND created_at <= ?"
    params = [*params, span.start, span.end]
    cursor.execute(f"SELECT manager, count(*) AS count {base} GROUP BY 1 ORDER BY 1", params)
    by_manager = rows(cursor)
    cursor.execute(
        "SELECT company_id, company_name, manager, created_at AS first_lead_at, lead_id"
        f" {base} ORDER BY created_at DESC, company_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    items = rows(cursor)
    total = sum(m["count"] for m in by_manager)
    return {
        "start": span.start,
        "end": span.end,
        "managers": by_manager,
        "items": items,
        "totals": {"count": total},
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def dormant_clients(
    cursor: duckdb.DuckDBPyConnection,
    managers: list[str] | None,
    on: date,
    after_days: int,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Clients with no invoice for more than ``after_days`` days on ``on`` (seed 003:
    two years): companies invoiced before, whose last invoice is older; each with the
    manager of the deal last invoiced and what was invoiced to them in all."""
    base = (
        f"SELECT company_id, arg_max(company_name, issued_on) AS company_name,"
        f" arg_max(manager, issued_on) AS manager, max(issued_on) AS last_invoice_on,"
        f" count(*) AS invoices, sum(amount)::DECIMAL(38, 2) AS invoiced"
        f" FROM {as_clients('deal_invoices', _catalog(cursor))}"
        " WHERE issued_on <= ? AND company_id IS NOT NULL"
        f" GROUP BY company_id"
    )
    who, people = _people("manager", managers)
    where = f"WHERE ? - last_invoice_on > ? AND {who}"
    params = [on, on, after_days, *people]
    cursor.execute(
        f"SELECT manager, count(*) AS count FROM ({base}) {where} GROUP BY 1 ORDER BY 1", params
    )
    by_manager = rows(cursor)
    cursor.execute(
        f"SELECT company_id, company_name, manager, last_invoice_on,"
        f" (? - last_invoice_on) AS days_since, invoices, invoiced FROM ({base}) {where}"
        f" ORDER BY last_invoice_on, company_id LIMIT ? OFFSET ?",
        [on, *params, limit, offset],
    )
    items = rows(cursor)
    total = sum(m["count"] for m in by_manager)
    return {
        "on": on,
        "after_days": after_days,
        "managers": by_manager,
        "items": items,
        "totals": {"count": total},
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def invoices(
    cursor: duckdb.DuckDBPyConnection,
    managers: list[str] | None,
    first: date,
    last: date,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Invoices issued on deals from ``first`` to ``last`` (their issue day): per manager,
    per client (paginated, the largest first) and in all."""
    who, params = _people("manager", managers)
    invoiced = as_clients("deal_invoices", _catalog(cursor))
    base = f"FROM {invoiced} WHERE issued_on >= ? AND issued_on <= ? AND {who}"
    params = [first, last, *params]
    money = "sum(amount)::DECIMAL(38, 2) AS amount"
    cursor.execute(
        f"SELECT manager, count(*) AS count, {money} {base} GROUP BY 1 ORDER BY 1", params
    )
    by_manager = rows(cursor)
    cursor.execute(
        f"SELECT count(DISTINCT company_id), count(DISTINCT (company_id, manager)) {base}",
        params,
    )
    row = cursor.fetchone()
    clients, total = (int(row[0]), int(row[1])) if row else (0, 0)
    cursor.execute(
        f"SELECT company_id, arg_max(company_name, issued_on) AS company_name, manager,"
        f" count(*) AS count, {money} {base} GROUP BY company_id, manager"
        " ORDER BY amount DESC, company_id, manager LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {
        "start": first,
        "end": last,
        "managers": by_manager,
        "clients": rows(cursor),
        "totals": {
            "count": sum(m["count"] for m in by_manager),
            "amount": sum((m["amount"] for m in by_manager), ZERO),
            "clients": clients,
        },
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def stage_names(funnels: FunnelCatalog) -> dict[tuple[str, str], tuple[str, int]]:
    return {(f.id, s.id): (s.name, n) for f in funnels.values() for n, s in enumerate(f.stages)}


def deals_in_work(
    cursor: duckdb.DuckDBPyConnection, managers: list[str] | None, funnels: FunnelCatalog
) -> dict[str, Any]:
    """Open deals now: count and sum in all, per manager and per stage (funnel order)."""
    who, params = _people("manager", managers)
    base = f"FROM {_catalog(cursor)}.deals WHERE status = 'open' AND {who}"
    money = "coalesce(sum(amount), 0)::DECIMAL(38, 2) AS amount"
    cursor.execute(f"SELECT funnel, stage, count(*) AS count, {money} {base} GROUP BY 1, 2", params)
    named = stage_names(funnels)
    stages = [
        {**r, "name": named.get((r["funnel"], r["stage"]), (r["stage"], 0))[0]}
        for r in rows(cursor)
    ]
    order = list(funnels)
    stages.sort(
        key=lambda r: (
            order.index(r["funnel"]) if r["funnel"] in order else len(order),
            named.get((r["funnel"], r["stage"]), ("", 999))[1],
            r["stage"],
        )
    )
    cursor.execute(
        f"SELECT manager, count(*) AS count, {money} {base} GROUP BY 1 ORDER BY 1", params
    )
    by_manager = rows(cursor)
    return {
        "stages": [
            {k: r[k] for k in ("funnel", "stage", "name", "count", "amount")} for r in stages
        ],
        "managers": by_manager,
        "totals": {
            "count": sum(s["count"] for s in stages),
            "amount": sum((s["amount"] for s in stages), ZERO),
        },
    }


def won_in_month(
    cursor: duckdb.DuckDBPyConnection, managers: list[str], month: str
) -> dict[str, tuple[int, Decimal]]:
    """Per manager, the deals won in the month (closed won then) and their amount."""
    first, last = month_days(month)
    cursor.execute(
        "SELECT manager, count(*), coalesce(sum(amount), 0)::DECIMAL(38, 2)"
        f" FROM {_catalog(cursor)}.deals"
        " WHERE status = 'won' AND closed_at::DATE BETWEEN ? AND ?"
        " AND manager IN (SELECT unnest(?)) GROUP BY 1",
        [first, last, managers],
    )
    return {m: (int(n), amount) for m, n, amount in cursor.fetchall()}


# --- the manager's cabinet -----------------------------------------------------------------


@dataclass(frozen=True)
class CabinetContext:
    """What every cabinet section reads: the cursor, the manager, the month and today."""

    cursor: duckdb.DuckDBPyConnection
    manager: dict[str, Any]
    month: str
    today: date
    calendar: Calendar
    funnels: FunnelCatalog
    now: datetime
    activity_rules: ActivityRules
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def own(self) -> ActivityFilters:
        """The manager's own activities."""
        return ActivityFilters(owner=self.manager["manager"])


Section = Callable[[CabinetContext], Any]


def _plate(ctx: CabinetContext) -> dict[str, Any]:
    user = ctx.manager["manager"]
    plan = plans_of(ctx.cursor, [user], ctx.month).get(user)
    won_deals, fact = won_in_month(ctx.cursor, [user], ctx.month).get(user, (0, ZERO))
    work = deals_in_work(ctx.cursor, [user], ctx.funnels)
    growth = new_clients(ctx.cursor, [user], month_span(ctx.month), 1, 0)["totals"]["count"]
    due = None if plan is None else plan_to_date(plan.amount, ctx.month, ctx.today, ctx.calendar)
    ctx.extra["stages"] = work["stages"]
    return {
        "manager": user,
        "name": ctx.manager["name"],
        "month": ctx.month,
        "plan": None if plan is None else plan.amount,
        "currency": None if plan is None else plan.currency,
        "plan_deals": None if plan is None else plan.deals,
        "plan_to_date": due,
        "fact": fact,
        "won_deals": won_deals,
        "done": plan_share(fact, None if plan is None else plan.amount),
        "done_to_date": plan_share(fact, due),
        "deals_in_work": work["totals"]["count"],
        "deals_in_work_amount": work["totals"]["amount"],
        "new_clients": growth,
    }


def _plan_bar(ctx: CabinetContext) -> list[dict[str, Any]]:
    s = ctx.extra["plate"]
    return [
        {"measure": "plan", "amount": s["plan"] or ZERO},
        {"measure": "plan to date", "amount": s["plan_to_date"] or ZERO},
        {"measure": "fact", "amount": s["fact"]},
    ]


def _stages(ctx: CabinetContext) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = ctx.extra["stages"]
    return stages


CABINET_ACTIVITIES = 20
"""How many overdue and today's activities the cabinet lists (the rest: the list page)."""


def _activity_week(ctx: CabinetContext) -> dict[str, Any]:
    return activities.weekly_table(ctx.cursor, ctx.own, ctx.today, ctx.now, ctx.activity_rules)


def _coefficient(ctx: CabinetContext) -> dict[str, Any]:
    first = activities.monday(ctx.today)
    return activities.coefficient(
        ctx.cursor, ctx.own, first, ctx.today, ctx.now, ctx.activity_rules
    )


def _overdue(ctx: CabinetContext) -> dict[str, Any]:
    chosen = replace(ctx.own, state="overdue")
    items, total = activities.list_activities(
        ctx.cursor, chosen, ctx.now, CABINET_ACTIVITIES, 0, ascending=True
    )
    return {"items": items, "total": total}


def _today(ctx: CabinetContext) -> dict[str, Any]:
    start = datetime.combine(ctx.today, time.min, tzinfo=UTC)
    chosen = replace(ctx.own, start=start, end=start + timedelta(days=1, microseconds=-1))
    items, total = activities.list_activities(
        ctx.cursor, chosen, ctx.now, CABINET_ACTIVITIES, 0, ascending=True
    )
    return {"items": items, "total": total}


def _next_week_plan(ctx: CabinetContext) -> dict[str, Any] | None:
    week = activities.monday(ctx.today) + timedelta(days=7)
    plans, _ = activities.list_plans(ctx.cursor, ctx.own, week, 1, 0)
    return plans[0] if plans else None


MANAGER_SECTIONS: list[tuple[str, Section]] = [
    ("plate", _plate),
    ("plan_bar", _plan_bar),
    ("stages", _stages),
    ("activity_week", _activity_week),
    ("coefficient", _coefficient),
    ("overdue_activities", _overdue),
    ("today_activities", _today),
    ("next_week_plan", _next_week_plan),
]
"""The manager's cabinet, section by section, in order: (key in the answer, query).

Each section reads the :class:`CabinetContext` (and the sections before it, in
``ctx.extra``); the activity sections come from :mod:`queries.activities`, with their
fields in ``schemas.cabinets.ManagerCabinet``."""


def manager_cabinet(
    cursor: duckdb.DuckDBPyConnection,
    manager: dict[str, Any],
    month: str,
    today: date,
    calendar: Calendar,
    funnels: FunnelCatalog,
    now: datetime,
    activity_rules: ActivityRules,
) -> dict[str, Any]:
    """One manager's cabinet: every section of :data:`MANAGER_SECTIONS` for the month
    (``today``: the day plan to date is read on; ``now``: the instant activities are
    overdue at)."""
    ctx = CabinetContext(cursor, manager, month, today, calendar, funnels, now, activity_rules)
    answer: dict[str, Any] = {}
    for key, section in MANAGER_SECTIONS:
        answer[key] = ctx.extra[key] = section(ctx)
    return answer


# --- the head of sales' cabinet --------------------------------------------------------------


MEASURES = ("plan", "plan_to_date", "fact", "open_amount")


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    plan = sum((r["plan"] or ZERO for r in rows), ZERO)
    due = sum((r["plan_to_date"] or ZERO for r in rows), ZERO)
    fact = sum((r["fact"] for r in rows), ZERO)
    planned = any(r["plan"] is not None for r in rows)
    return {
        "plan": plan if planned else None,
        "plan_to_date": due if planned else None,
        "fact": fact,
        "won_deals": sum(r["won_deals"] for r in rows),
        "done": plan_share(fact, plan if planned else None),
        "done_to_date": plan_share(fact, due if planned else None),
        "open_deals": sum(r["open_deals"] for r in rows),
        "open_amount": sum((r["open_amount"] for r in rows), ZERO),
    }


def sales_cabinet(
    cursor: duckdb.DuckDBPyConnection,
    sellers: list[dict[str, Any]],
    month: str,
    today: date,
    calendar: Calendar,
) -> dict[str, Any]:
    """Plan, plan to date, fact, % done and open deals rolled up region → city → manager
    for the sellers in view; totals over them all."""
    users = names(sellers)
    plans = plans_of(cursor, users, month)
    won = won_in_month(cursor, users, month)
    cursor.execute(
        "SELECT manager, count(*), coalesce(sum(amount), 0)::DECIMAL(38, 2)"
        f" FROM {_catalog(cursor)}.deals"
        " WHERE status = 'open' AND manager IN (SELECT unnest(?)) GROUP BY 1",
        [users],
    )
    open_deals = {m: (int(n), a) for m, n, a in cursor.fetchall()}
    table: list[dict[str, Any]] = []
    for seller in sellers:
        user = seller["manager"]
        plan = plans.get(user)
        won_deals, fact = won.get(user, (0, ZERO))
        count, amount = open_deals.get(user, (0, ZERO))
        due = None if plan is None else plan_to_date(plan.amount, month, today, calendar)
        table.append(
            {
                **seller,
                "plan": None if plan is None else plan.amount,
                "currency": None if plan is None else plan.currency,
                "plan_deals": None if plan is None else plan.deals,
                "plan_to_date": due,
                "fact": fact,
                "won_deals": won_deals,
                "done": plan_share(fact, None if plan is None else plan.amount),
                "done_to_date": plan_share(fact, due),
                "open_deals": count,
                "open_amount": amount,
            }
        )
    regions: list[dict[str, Any]] = []
    for region in sorted({r["region"] for r in table}):
        in_region = [r for r in table if r["region"] == region]
        cities = []
        for city in sorted({r["city"] for r in in_region}):
            in_city = [r for r in in_region if r["city"] == city]
            cities.append({"city": city, **_figures(in_city), "managers": in_city})
        regions.append({"region": region, **_figures(in_region), "cities": cities})
    return {"month": month, "on": today, "regions": regions, "totals": _figures(table)}


def drill_down(cursor: duckdb.DuckDBPyConnection, manager: str, limit: int) -> dict[str, Any]:
    """One manager's open deals (the latest first) and their open hand-off requests."""
    cursor.execute(
        "SELECT deal_id, title, company_name, funnel, stage, amount, created_at,"
        f" open_requests FROM {_catalog(cursor)}.deals WHERE status = 'open' AND manager = ?"
        " ORDER BY created_at DESC LIMIT ?",
        [manager, limit],
    )
    deals = rows(cursor)
    cursor.execute(
        "SELECT h.request_id, h.deal_id, h.department, h.stage, h.status, h.assignee,"
        f" h.created_at FROM {_catalog(cursor)}.handoffs AS h"
        f" JOIN {_catalog(cursor)}.deals AS d USING (deal_id)"
        " WHERE d.manager = ? AND h.status NOT IN ('done', 'rejected', 'cancelled')"
        " ORDER BY h.created_at DESC LIMIT ?",
        [manager, limit],
    )
    return {"manager": manager, "deals": deals, "handoffs": rows(cursor)}
