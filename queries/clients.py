"""The client card: one timeline of everything about a client across leads, deals,
activities, projects, invoices and payments, newest first, with its totals.

A client is a company and every company merged into it (:func:`queries.companies.
client_ids`). Everything is read from the viewer's read models, so a manager's card shows
the records they may see and its totals are theirs.

Totals:

- **lifetime value**: what the client paid (payments recorded on their projects);
- **invoiced**: invoices issued on their deals, plus those issued on their projects
  directly (an invoice carried from a won deal to its project is counted once, on the
  deal);
- **open deals**: how many of their deals are open and their sum;
- **last interaction**: the newest entry of the timeline up to now;
- **dormant since**: the dormant-clients indicator's rule (``[sales]
  dormant_after_days``, :func:`queries.cabinets.dormant_clients`): a client invoiced
  before whose last deal invoice is more than that many days old is dormant from the day
  after that period ended; None when not dormant.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from queries.common import ZERO, rows
from queries.companies import client_ids, company_record

TIMELINE_SQL = """
SELECT created_at AS "at", 'lead_created' AS kind, lead_id AS record_id, 'lead' AS record,
       title, amount, status, manager AS who, company_id
FROM leads WHERE company_id IN (SELECT unnest(?))
UNION ALL
SELECT closed_at, 'lead_closed', lead_id, 'lead', title, amount, status, manager, company_id
FROM leads WHERE company_id IN (SELECT unnest(?)) AND closed_at IS NOT NULL
UNION ALL
SELECT created_at, 'deal_created', deal_id, 'deal', title, amount, status, manager, company_id
FROM deals WHERE company_id IN (SELECT unnest(?))
UNION ALL
SELECT closed_at, 'deal_closed', deal_id, 'deal', title, amount, status, manager, company_id
FROM deals WHERE company_id IN (SELECT unnest(?)) AND closed_at IS NOT NULL
UNION ALL
SELECT coalesce(done_at, cancelled_at, planned_at), 'activity', activity_id, 'activity',
       type, NULL, status, owner, company_id
FROM activities WHERE company_id IN (SELECT unnest(?))
UNION ALL
SELECT created_at, 'project_created', project_id, 'project', title, amount, status,
       coalesce(pm, manager), company_id
FROM projects WHERE company_id IN (SELECT unnest(?))
UNION ALL
SELECT i.issued_at, 'invoice', i.deal_id, 'deal', i.number, i.amount, i.approval, i.manager,
       i.company_id
FROM deal_invoices i WHERE i.company_id IN (SELECT unnest(?))
UNION ALL
SELECT i.issued_at, 'invoice', i.project_id, 'project', i.number, i.amount, i.status,
       i.issued_by, p.company_id
FROM project_invoices i JOIN projects p USING (project_id)
WHERE p.company_id IN (SELECT unnest(?)) AND i.deal_id IS NULL
UNION ALL
SELECT y.recorded_at, 'payment', y.project_id, 'project', y.invoice_number, y.amount, NULL,
       y.recorded_by, p.company_id
FROM project_payments y JOIN projects p USING (project_id)
WHERE p.company_id IN (SELECT unnest(?))
"""
TIMELINE_PARTS = TIMELINE_SQL.count("SELECT unnest(?)")


def dormant_since(last_invoice_on: date | None, on: date, after_days: int) -> date | None:
    """The dormant-clients indicator's rule for one client (a client invoiced before whose
    last invoice is more than ``after_days`` days before ``on`` is dormant): the first
    day it counts as dormant, or None."""
    if last_invoice_on is None or (on - last_invoice_on).days <= after_days:
        return None
    return last_invoice_on + timedelta(days=after_days + 1)


def _one(cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> tuple[Any, ...]:
    row = cursor.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def client_totals(
    cursor: duckdb.DuckDBPyConnection, ids: list[str], now: datetime, after_days: int
) -> dict[str, Any]:
    paid = _one(
        cursor,
        "SELECT coalesce(sum(y.amount), 0) FROM project_payments y JOIN projects p"
        " USING (project_id) WHERE p.company_id IN (SELECT unnest(?))",
        [ids],
    )[0]
    on_deals, last_invoice_on = _one(
        cursor,
        "SELECT coalesce(sum(amount), 0), max(issued_on) FROM deal_invoices"
        " WHERE company_id IN (SELECT unnest(?))",
        [ids],
    )
    on_projects = _one(
        cursor,
        "SELECT coalesce(sum(i.amount), 0) FROM project_invoices i JOIN projects p"
        " USING (project_id) WHERE p.company_id IN (SELECT unnest(?)) AND i.deal_id IS NULL",
        [ids],
    )[0]
    open_count, open_amount = _one(
        cursor,
        "SELECT count(*), coalesce(sum(amount), 0) FROM deals"
        " WHERE company_id IN (SELECT unnest(?)) AND status = 'open'",
        [ids],
    )
    last = _one(
        cursor,
        f'SELECT max("at") FROM ({TIMELINE_SQL}) WHERE "at" <= ?',
        [*([ids] * TIMELINE_PARTS), now],
    )[0]
    invoiced = Decimal(on_deals) + Decimal(on_projects)
    return {
        "lifetime_value": Decimal(paid).quantize(ZERO),
        "invoiced": invoiced.quantize(ZERO),
        "invoiced_on_deals": Decimal(on_deals).quantize(ZERO),
        "invoiced_on_projects": Decimal(on_projects).quantize(ZERO),
        "open_deals": int(open_count),
        "open_deals_amount": Decimal(open_amount).quantize(ZERO),
        "last_interaction_at": last,
        "last_invoice_on": last_invoice_on,
        "dormant_after_days": after_days,
        "dormant_since": dormant_since(last_invoice_on, now.date(), after_days),
    }


def client_card(
    cursor: duckdb.DuckDBPyConnection,
    company_id: str,
    now: datetime,
    after_days: int,
    limit: int,
    offset: int,
) -> dict[str, Any] | None:
    """The client's card: the company, its totals and a page of its timeline (newest
    first); None when the viewer has no such company. A merged company's card is its
    survivor's (``company.merged_into`` says so)."""
    record = company_record(cursor, company_id)
    if record is None:
        return None
    client = record["merged_into"] or company_id
    if client != company_id:
        survivor = company_record(cursor, client)
        record = survivor if survivor is not None else record
    ids = client_ids(cursor, record["company_id"])
    params = [ids] * TIMELINE_PARTS
    total = _one(cursor, f"SELECT count(*) FROM ({TIMELINE_SQL})", params)[0]
    cursor.execute(
        f'SELECT * FROM ({TIMELINE_SQL}) ORDER BY "at" DESC, kind, record_id, title'
        " LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    items = rows(cursor)
    return {
        "company": record,
        "asked_for": company_id,
        "company_ids": ids,
        "totals": client_totals(cursor, ids, now, after_days),
        "items": items,
        "total": int(total),
        "limit": limit,
        "offset": offset,
    }
