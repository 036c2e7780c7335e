"""Deals: the list, the pipeline report, and a deal's card and history replayed from the
event store (now or as it was at an instant)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb

from aggregates import deal
from aggregates.funnels import Funnel
from commands.context import StreamNotFound
from commands.deals import load_deal_records
from event_store import EventStore, RecordedEvent
from queries.common import ZERO, Filters, page, streamed_rows
from queries.history import stream_history

DEAL_COLUMNS = (
    "deal_id, funnel, stage, status, title, company_name, company_id, source, manager, "
    "amount, lead_id, previous_deal_id, project_id, proposal_total, contract_number, "
    "invoiced_total, invoices, invoices_pending, estimate_price, estimated_by, estimate_seconds, "
    "estimate_rejection, requests, open_requests, close_reason, created_at, updated_at, "
    "stage_entered_at, closed_at, version"
)


def list_deals(
    cursor: duckdb.DuckDBPyConnection, filters: Filters, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Deals, newest first."""
    return page(cursor, "deals", DEAL_COLUMNS, filters, "created_at DESC, deal_id", limit, offset)


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


def deal_as_of(store: EventStore, deal_id: UUID, moment: datetime | None) -> deal.Deal:
    """The deal now, or as it was at ``moment``, replayed from the event store (404 when
    it did not exist then)."""
    state = deal.fold([r.event for r in load_deal_records(store, deal_id, as_of=moment)])
    if state is None:
        when = "" if moment is None else f" at {moment:%Y-%m-%dT%H:%M:%S%z}"
        raise StreamNotFound(f"deal {deal_id} not found{when}")
    return state


def deal_detail(state: deal.Deal) -> dict[str, Any]:
    detail = asdict(state)
    detail["status"] = state.status.value
    return detail


def deal_history(records: list[RecordedEvent]) -> list[dict[str, Any]]:
    return stream_history(records, deal.evolve, deal_detail)


DEAL_EXPORT_COLUMNS = (
    "deal_id",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "funnel",
    "stage",
    "status",
    "created_at",
    "stage_entered_at",
    "closed_at",
    "amount",
    "description",
    "lead_id",
    "previous_deal_id",
    "close_reason",
    "proposal_service",
    "proposal_total",
    "proposal_at",
    "contract_number",
    "contract_signed_on",
    "invoiced_total",
    "invoices",
    "paid",
    "paid_on",
)
INVOICE_EXPORT = (
    "(SELECT string_agg(i.number, ', ' ORDER BY i.position) FROM deal_invoices i"
    " WHERE i.deal_id = deals.deal_id) AS invoice_number",
    "(SELECT min(i.issued_on) FROM deal_invoices i WHERE i.deal_id = deals.deal_id) AS invoiced_on",
    "(SELECT first(i.organisation ORDER BY i.position) FROM deal_invoices i"
    " WHERE i.deal_id = deals.deal_id) AS organisation",
)
"""A deal's invoices as the import's one invoice: the numbers, the first day and
organisation (the invoiced total is the deal's counted one)."""


def deals_export(cursor: duckdb.DuckDBPyConnection, filters: Filters) -> Iterator[dict[str, Any]]:
    """Every deal the viewer sees (those the filters match), oldest first, as the deals
    import reads them: the id as ``external_id`` (so the file imports back as these very
    deals), the card, the stage and status with their instants, the lead's id, the reason
    it was closed, the proposal, contract and invoice it was won with (several invoices go
    as one: their numbers, the first day, the counted total) and what was paid of an
    imported one. An upsell names the client's earlier deal (``previous_deal``) beside its
    lead: it imports back linked to both, the lead recording its first deal only."""
    where, params = filters.where()
    columns = ", ".join((*DEAL_EXPORT_COLUMNS, *INVOICE_EXPORT))
    cursor.execute(
        f"SELECT {columns} FROM deals{where} ORDER BY created_at, deal_id",
        params,
    )
    for row in streamed_rows(cursor):
        row["external_id"] = row.pop("deal_id")
        row["lead"] = row.pop("lead_id")
        row["previous_deal"] = row.pop("previous_deal_id")
        row["reason"] = row.pop("close_reason")
        row["service"] = row.pop("proposal_service")
        row["proposal_amount"] = row.pop("proposal_total")
        invoiced, counted = row.pop("invoiced_total"), row.pop("invoices")
        row["invoiced"] = invoiced if counted else None
        if row["status"] == "open":
            row["closed_at"] = None
        yield row
