"""Read-model queries of the sales pipeline: deals, hand-off requests, the contractor
directory, alerts, client assignments and their reports.

Each function takes a DuckDB cursor and returns plain dicts; lists come a page at a time
with the total count of what the filters match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from aggregates.funnels import Funnel
from aggregates.rules import Department, Organisation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
UNASSIGNED = "unassigned"
OPEN_REQUEST = "status NOT IN ('done', 'rejected', 'cancelled')"

DEAL_COLUMNS = (
    "deal_id, funnel, stage, status, title, company_name, company_id, source, manager, "
    "amount, lead_id, previous_deal_id, project_id, proposal_total, contract_number, "
    "invoiced_total, invoices, invoices_pending, estimate_price, estimated_by, estimate_seconds, "
    "estimate_rejection, requests, open_requests, close_reason, created_at, updated_at, "
    "stage_entered_at, closed_at, version"
)
HANDOFF_COLUMNS = (
    "request_id, deal_id, department, stage, status, round, assignee, created_at, taken_at, "
    "ready_at, take_seconds, estimate_seconds, price, service, contractor_id, contractor_name, "
    "own_equipment, lead_time_days, plan_hours, rejection_reason, reminded, escalated, "
    "updated_at, version"
)
CONTRACTOR_COLUMNS = (
    "contractor_id, name, services, contacts, notes, quotes, average_rating, last_used_at, "
    "created_at, updated_at, version"
)
QUOTE_COLUMNS = "position, request_id, deal_id, service, price, rating, notes, quoted_at, quoted_by"
DELIVERY_COLUMNS = (
    "position, request_id, deal_id, service, contracted_on, lead_time_days, planned_on, "
    "completed_on, actual_days, days_late, overrun, rating, notes, delivered_at, delivered_by"
)
ALERT_COLUMNS = (
    "alert_id, kind, subject_type, subject_id, recipient, detail, due, raised_at, raised_by"
)
ASSIGNMENT_COLUMNS = (
    "assignment_id, company_id, direction, manager, status, requested_manager, requested_by, "
    "approver, decided_by, comment, month, updated_at, version, pending_because"
)


@dataclass
class Filters:
    """Equality filters on columns (None: not filtered) and an optional time range."""

    equal: dict[str, Any] = field(default_factory=dict)
    time_column: str = "created_at"
    start: datetime | None = None
    end: datetime | None = None
    extra: list[tuple[str, list[Any]]] = field(default_factory=list)
    """Further clauses with their parameters."""

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        prefix = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in self.equal.items():
            if value is not None:
                clauses.append(f"{prefix}{column} = ?")
                params.append(value)
        if self.start is not None:
            clauses.append(f"{prefix}{self.time_column} >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{prefix}{self.time_column} <= ?")
            params.append(self.end)
        for clause, values in self.extra:
            clauses.append(clause)
            params.extend(values)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _count(cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> int:
    row = cursor.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


def _page(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    filters: Filters,
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where, params = filters.where()
    total = _count(cursor, f"SELECT count(*) FROM {table}{where}", params)
    cursor.execute(
        f"SELECT {columns} FROM {table}{where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return _rows(cursor), total


def _average(total: Decimal | None, count: int) -> Decimal | None:
    if total is None or count == 0:
        return None
    return (Decimal(total) / count).quantize(CENT, rounding=ROUND_HALF_UP)


# --- lists ------------------------------------------------------------------------------


def list_deals(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Deals, newest first."""
    return _page(cursor, "deals", DEAL_COLUMNS, filters, "created_at DESC, deal_id", limit, offset)


def list_handoffs(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Hand-off requests, newest first."""
    return _page(
        cursor, "handoffs", HANDOFF_COLUMNS, filters, "created_at DESC, request_id", limit, offset
    )


def list_alerts(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Alerts, newest first."""
    return _page(
        cursor, "alerts", ALERT_COLUMNS, filters, "raised_at DESC, alert_id DESC", limit, offset
    )


def list_client_assignments(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Client assignments, the most recently changed first."""
    return _page(
        cursor,
        "client_assignments",
        ASSIGNMENT_COLUMNS,
        filters,
        "updated_at DESC, assignment_id",
        limit,
        offset,
    )


# --- the contractor directory -----------------------------------------------------------


def _prices(
    cursor: duckdb.DuckDBPyConnection, contractor_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Per contractor, each quoted service's number of quotes and average price."""
    if not contractor_ids:
        return {}
    cursor.execute(
        "SELECT contractor_id, service, count(*) AS quotes, sum(price) AS total "
        "FROM contractor_quotes WHERE list_contains(?, contractor_id) "
        "GROUP BY ALL ORDER BY contractor_id, service",
        [contractor_ids],
    )
    prices: dict[str, list[dict[str, Any]]] = {c: [] for c in contractor_ids}
    for contractor_id, service, quotes, total in cursor.fetchall():
        prices[contractor_id].append(
            {"service": service, "quotes": quotes, "average_price": _average(total, quotes)}
        )
    return prices


def _days(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _delivered_figures(row: Sequence[Any] | None) -> dict[str, Any]:
    """The delivery figures of one aggregate row: jobs, rating, planned vs actual lead
    time, on time, overruns (count, share, average days late)."""
    jobs, rating, planned, actual, overruns, late = row if row else (0, None, None, None, 0, None)
    jobs, overruns = int(jobs or 0), int(overruns or 0)
    return {
        "jobs": jobs,
        "rating": _days(rating),
        "average_planned_days": _days(planned),
        "average_actual_days": _days(actual),
        "on_time": jobs - overruns,
        "overruns": overruns,
        "overrun_share": None if jobs == 0 else _days(Decimal(overruns) / jobs),
        "average_days_late": _days(late),
    }


DELIVERED_FIGURES = (
    "count(*), avg(rating), avg(lead_time_days), avg(actual_days), count(*) FILTER (overrun), "
    "avg(days_late) FILTER (overrun)"
)
"""Aggregates over contractor_deliveries, in the order :func:`_delivered_figures` reads."""


def _delivered(
    cursor: duckdb.DuckDBPyConnection, contractor_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Per contractor, its delivered jobs' figures (over the deliveries the viewer sees)."""
    if not contractor_ids:
        return {}
    cursor.execute(
        f"SELECT contractor_id, {DELIVERED_FIGURES} FROM contractor_deliveries "
        "WHERE list_contains(?, contractor_id) GROUP BY contractor_id",
        [contractor_ids],
    )
    found = {row[0]: row[1:] for row in cursor.fetchall()}
    return {c: _delivered_figures(found.get(c)) for c in contractor_ids}


def list_contractors(
    cursor: duckdb.DuckDBPyConnection, service: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Contractors by name (those offering ``service``), with their average price per
    quoted service and their delivered jobs' figures."""
    filters = Filters(extra=[] if service is None else [("list_contains(services, ?)", [service])])
    items, total = _page(
        cursor, "contractors", CONTRACTOR_COLUMNS, filters, "name, contractor_id", limit, offset
    )
    ids = [i["contractor_id"] for i in items]
    prices = _prices(cursor, ids)
    delivered = _delivered(cursor, ids)
    for item in items:
        item["prices"] = prices[item["contractor_id"]]
        item["delivered"] = delivered[item["contractor_id"]]
    return items, total


def contractor_card(
    cursor: duckdb.DuckDBPyConnection, contractor_id: str, limit: int, offset: int
) -> dict[str, Any] | None:
    """The directory card: the contractor, its quote history newest first (a page of it),
    its average price per service, average rating and when it was last used."""
    cursor.execute(
        f"SELECT {CONTRACTOR_COLUMNS} FROM contractors WHERE contractor_id = ?", [contractor_id]
    )
    found = _rows(cursor)
    if not found:
        return None
    card = found[0]
    card["prices"] = _prices(cursor, [contractor_id])[contractor_id]
    cursor.execute(
        f"SELECT {QUOTE_COLUMNS} FROM contractor_quotes WHERE contractor_id = ? "
        "ORDER BY position DESC LIMIT ? OFFSET ?",
        [contractor_id, limit, offset],
    )
    card["history"] = _rows(cursor)
    card["history_limit"] = limit
    card["history_offset"] = offset
    card["delivered"] = _delivered(cursor, [contractor_id])[contractor_id]
    cursor.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM contractor_deliveries WHERE contractor_id = ? "
        "ORDER BY position DESC LIMIT ? OFFSET ?",
        [contractor_id, limit, offset],
    )
    card["deliveries"] = _rows(cursor)
    return card


@dataclass(frozen=True)
class OverrunFilters:
    """The overruns report's filters (None: not filtered); the sale period is on the
    parent deal's won time."""

    contractor_id: str | None = None
    service: str | None = None
    overrun_only: bool = False
    manager: str | None = None
    funnel: str | None = None
    won_from: datetime | None = None
    won_to: datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("j.contractor_id = ?", self.contractor_id),
            ("j.service = ?", self.service),
            ("d.manager = ?", self.manager),
            ("d.funnel = ?", self.funnel),
            ("d.closed_at >= ?", self.won_from),
            ("d.closed_at <= ?", self.won_to),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if self.overrun_only:
            clauses.append("j.overrun")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


OVERRUN_SOURCE = (
    " FROM contractor_deliveries j LEFT JOIN deals d ON d.deal_id = j.deal_id"
    " LEFT JOIN contractors c ON c.contractor_id = j.contractor_id"
)


def contractor_overruns(
    cursor: duckdb.DuckDBPyConnection, filters: OverrunFilters, limit: int, offset: int
) -> dict[str, Any]:
    """One row per delivered job (contractor, service, request, parent deal with its
    manager, funnel and won time, planned vs actual completion, days late), the latest
    completion first; and the totals of every job the filters match."""
    where, params = filters.where()
    totals = cursor.execute(
        "SELECT count(*), avg(j.rating), avg(j.lead_time_days), avg(j.actual_days), "
        "count(*) FILTER (j.overrun), avg(j.days_late) FILTER (j.overrun), "
        f"coalesce(sum(j.days_late), 0){OVERRUN_SOURCE}{where}",
        params,
    ).fetchone()
    assert totals is not None
    cursor.execute(
        "SELECT j.position, j.contractor_id, c.name AS contractor_name, j.service, "
        "j.request_id, j.deal_id, d.title AS deal_title, d.company_name, d.manager, d.funnel, "
        "d.closed_at AS won_at, j.contracted_on, j.lead_time_days, j.planned_on, "
        "j.completed_on, j.actual_days, j.days_late, j.overrun, j.rating, j.notes, "
        f"j.delivered_at, j.delivered_by{OVERRUN_SOURCE}{where} "
        "ORDER BY j.completed_on DESC, j.position DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {
        "items": _rows(cursor),
        "total": int(totals[0]),
        "limit": limit,
        "offset": offset,
        "totals": {**_delivered_figures(totals[:6]), "days_late": int(totals[6])},
    }


# --- reports ----------------------------------------------------------------------------


def _pair(count: int = 0, amount: Decimal = ZERO) -> dict[str, Any]:
    return {"count": count, "amount": amount}


def deal_pipeline(
    cursor: duckdb.DuckDBPyConnection, funnels: Iterable[Funnel], filters: Filters
) -> list[dict[str, Any]]:
    """Per funnel and stage (in funnel order, empty stages included): the open deals and
    their amount; per funnel the open, won and lost totals."""
    where, params = filters.where()
    cursor.execute(
        "SELECT funnel, stage, status, count(*) AS n, coalesce(sum(amount), 0) AS amount "
        f"FROM deals{where} GROUP BY ALL",
        params,
    )
    figures: dict[tuple[str, str, str], tuple[int, Decimal]] = {
        (funnel, stage, status): (n, Decimal(amount))
        for funnel, stage, status, n, amount in cursor.fetchall()
    }
    report = []
    for funnel in funnels:
        stages = []
        counts = dict.fromkeys(("open", "won", "lost"), 0)
        amounts = dict.fromkeys(("open", "won", "lost"), ZERO)
        for (funnel_id, _stage, status), (n, amount) in figures.items():
            if funnel_id == funnel.id and status in counts:
                counts[status] += n
                amounts[status] += amount
        for stage in funnel.stages:
            n, amount = figures.get((funnel.id, stage.id, "open"), (0, ZERO))
            stages.append(
                {"stage": stage.id, "name": stage.name, "step": stage.step, **_pair(n, amount)}
            )
        report.append(
            {
                "funnel": funnel.id,
                "name": funnel.name,
                "stages": stages,
                **{status: _pair(counts[status], amounts[status]) for status in counts},
            }
        )
    return report


def handoff_report(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> dict[str, Any]:
    """Per request: department, deal, who took it, the time to take it and to estimate it
    (seconds from the request), price and status; with a summary of all it matches."""
    where, params = filters.where("h")
    summary_row = cursor.execute(
        "SELECT count(*), count(h.taken_at), count(h.ready_at), avg(h.take_seconds), "
        f"avg(h.estimate_seconds), coalesce(sum(h.price), 0) FROM handoffs h{where}",
        params,
    ).fetchone()
    assert summary_row is not None
    total, taken, estimated, take_avg, estimate_avg, price_total = summary_row
    cursor.execute(
        "SELECT h.request_id, h.department, h.deal_id, d.title AS deal_title, "
        "d.company_name, h.assignee, h.created_at, h.taken_at, h.take_seconds, h.ready_at, "
        "h.estimate_seconds, h.price, h.status "
        f"FROM handoffs h LEFT JOIN deals d ON d.deal_id = h.deal_id{where} "
        "ORDER BY h.created_at DESC, h.request_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {
        "items": _rows(cursor),
        "total": int(total),
        "limit": limit,
        "offset": offset,
        "summary": {
            "requests": int(total),
            "taken": int(taken),
            "estimated": int(estimated),
            "average_take_seconds": take_avg,
            "average_estimate_seconds": estimate_avg,
            "total_price": Decimal(price_total),
        },
    }


def department_load(
    cursor: duckdb.DuckDBPyConnection, departments: Iterable[Department]
) -> list[dict[str, Any]]:
    """Open requests (not done, rejected or cancelled) per department and person; every configured
    department is listed, with none open too."""
    cursor.execute(
        "SELECT department, assignee, status, count(*) AS n FROM handoffs "
        f"WHERE {OPEN_REQUEST} GROUP BY ALL"
    )
    counted = cursor.fetchall()
    load: dict[str, dict[str, Any]] = {
        d.id: {"department": d.id, "name": d.name, "people": {}, "by_status": {}}
        for d in departments
    }
    for department, assignee, status, n in counted:
        entry = load.setdefault(
            department,
            {"department": department, "name": department, "people": {}, "by_status": {}},
        )
        person = UNASSIGNED if assignee is None else assignee
        entry["people"][person] = entry["people"].get(person, 0) + n
        entry["by_status"][status] = entry["by_status"].get(status, 0) + n
    report = []
    for entry in load.values():
        people = sorted(entry["people"].items(), key=lambda p: (-p[1], p[0]))
        report.append(
            {
                "department": entry["department"],
                "name": entry["name"],
                "open_requests": sum(entry["people"].values()),
                "by_status": {
                    status: entry["by_status"].get(status, 0)
                    for status in ("open", "in_work", "ready")
                },
                "people": [{"assignee": who, "open_requests": n} for who, n in people],
            }
        )
    return report


def revenue_cap_report(
    cursor: duckdb.DuckDBPyConnection, organisations: Iterable[Organisation], year: int
) -> list[dict[str, Any]]:
    """Per organisation with a yearly revenue cap (in configuration order): what its
    ledger booked in the year against the cap, what is left and the share used."""
    cursor.execute(
        "SELECT organisation, booked, invoices, deal_invoices, project_invoices "
        "FROM revenue_ledger WHERE year = ?",
        [year],
    )
    booked = {row[0]: row[1:] for row in cursor.fetchall()}
    report = []
    for organisation in organisations:
        cap = organisation.yearly_revenue_cap
        if cap is None:
            continue
        total, invoices, deal_invoices, project_invoices = booked.get(
            organisation.id, (ZERO, 0, 0, 0)
        )
        total = Decimal(total).quantize(CENT)
        report.append(
            {
                "organisation": organisation.id,
                "name": organisation.name,
                "regime": organisation.tax_regime,
                "cap": cap,
                "booked": total,
                "remaining": cap - total,
                "share": float((total / cap).quantize(Decimal("0.0001"), ROUND_HALF_UP)),
                "invoices": invoices,
                "deal_invoices": deal_invoices,
                "project_invoices": project_invoices,
            }
        )
    return report
