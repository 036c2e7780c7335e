"""The contractor directory: contractors with their prices and delivered jobs' figures,
a contractor's card (quote and delivery history), and the overruns report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from queries.common import CENT, Filters, average, page, rows

CONTRACTOR_COLUMNS = (
    "contractor_id, name, services, contacts, notes, quotes, average_rating, last_used_at, "
    "created_at, updated_at, version"
)
QUOTE_COLUMNS = "position, request_id, deal_id, service, price, rating, notes, quoted_at, quoted_by"
DELIVERY_COLUMNS = (
    "position, request_id, deal_id, service, contracted_on, lead_time_days, planned_on, "
    "completed_on, actual_days, days_late, overrun, rating, notes, delivered_at, delivered_by"
)


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
            {"service": service, "quotes": quotes, "average_price": average(total, quotes)}
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
    items, total = page(
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
    found = rows(cursor)
    if not found:
        return None
    card = found[0]
    card["prices"] = _prices(cursor, [contractor_id])[contractor_id]
    cursor.execute(
        f"SELECT {QUOTE_COLUMNS} FROM contractor_quotes WHERE contractor_id = ? "
        "ORDER BY position DESC LIMIT ? OFFSET ?",
        [contractor_id, limit, offset],
    )
    card["history"] = rows(cursor)
    card["history_limit"] = limit
    card["history_offset"] = offset
    card["delivered"] = _delivered(cursor, [contractor_id])[contractor_id]
    cursor.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM contractor_deliveries WHERE contractor_id = ? "
        "ORDER BY position DESC LIMIT ? OFFSET ?",
        [contractor_id, limit, offset],
    )
    card["deliveries"] = rows(cursor)
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
        "items": rows(cursor),
        "total": int(totals[0]),
        "limit": limit,
        "offset": offset,
        "totals": {**_delivered_figures(totals[:6]), "days_late": int(totals[6])},
    }
