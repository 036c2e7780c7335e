"""Read models of sales plans and of deals' invoices (the sales indicators read them):

- ``sales_plans``: one row per manager and month, the plan in force (amount, currency,
  deals) and who set it last, when and why;
- ``sales_plan_changes``: every setting or change of a plan, in log order (its history);
- ``deal_invoices``: every invoice issued on a deal (number, amount, day, prepayment; an
  imported won deal's invoice too) with
  the deal's manager and client when it was issued: invoices issued per period, manager
  and client, and dormant clients (none for years), read without a join;
- ``client_first_leads``: each company's first lead ever (its id, the manager it was
  created for, when): client-base growth (a company's ``company_id`` is set when its lead
  is created and never changes, and the log is in creation order, so the first
  ``LeadCreated`` naming a company is its first lead).

Folded like the deal models (:class:`projections.deals.KeyedFold`; the other tables get
one row per event, inserted from Arrow in the projector's transaction).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from projections.base import Projection
from projections.deals import (
    _SOURCE_DIGEST,
    Column,
    KeyedFold,
    PageEvent,
    Row,
    _bigint,
    _day,
    _flag,
    _insert,
    _int,
    _moment,
    _money,
    _text,
    ddl,
    page_events,
)

_OWN_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

PLAN_COLUMNS: tuple[Column, ...] = (
    _text("plan_id"),
    _text("manager"),
    _text("month"),
    _money("amount"),
    _text("currency"),
    _int("deals"),
    _text("department"),
    _text("set_by"),
    _text("set_by_role"),
    _moment("set_at"),
    _text("reason"),
    _int("version"),
    _bigint("last_position"),
)
CHANGE_COLUMNS: tuple[Column, ...] = (
    _text("plan_id"),
    _text("manager"),
    _text("month"),
    _int("version"),
    _money("amount"),
    _text("currency"),
    _int("deals"),
    _money("previous_amount"),
    _int("previous_deals"),
    _text("set_by"),
    _text("set_by_role"),
    _moment("set_at"),
    _text("reason"),
    _bigint("position"),
)
INVOICE_COLUMNS: tuple[Column, ...] = (
    _text("deal_id"),
    _text("manager"),
    _text("company_id"),
    _text("company_name"),
    _text("number"),
    _money("amount"),
    _day("issued_on"),
    _flag("prepayment"),
    _text("organisation"),
    _text("approval"),
    _moment("issued_at"),
    _text("issued_by"),
    _bigint("position"),
)


class SalesPlanProjection(KeyedFold):
    name = "sales_plans"
    table = "sales_plans"
    tables: tuple[str, ...] = ("sales_plans", "sales_plan_changes")
    key = "plan_id"
    what = "sales plan"
    columns = PLAN_COLUMNS
    topics = frozenset({"SalesPlanSet"})

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(ddl(t, c) for t, c in self.ddl_parts()), _SOURCE_DIGEST]
        parts.append(_OWN_DIGEST)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def ddl_parts(self) -> list[tuple[str, tuple[Column, ...]]]:
        return [(self.table, self.columns), ("sales_plan_changes", CHANGE_COLUMNS)]

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        plan = row or self.new_row(plan_id=event.stream_id, manager=doc["manager"])
        plan.update(
            month=doc["month"],
            amount=event.money("amount"),
            currency=doc["currency"],
            deals=doc.get("deals"),
            department=doc.get("department"),
            set_by=doc["actor"],
            set_by_role=doc.get("actor_role"),
            set_at=event.moment,
            reason=doc.get("reason"),
        )
        return plan

    def after_fold(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        rows = [
            {
                "plan_id": e.stream_id,
                "manager": e.doc["manager"],
                "month": e.doc["month"],
                "version": e.version,
                "amount": e.money("amount"),
                "currency": e.doc["currency"],
                "deals": e.doc.get("deals"),
                "previous_amount": e.money("previous_amount"),
                "previous_deals": e.doc.get("previous_deals"),
                "set_by": e.doc["actor"],
                "set_by_role": e.doc.get("actor_role"),
                "set_at": e.moment,
                "reason": e.doc.get("reason"),
                "position": e.position,
            }
            for e in events
        ]
        _insert(cursor, "sales_plan_changes", CHANGE_COLUMNS, rows)


class DealInvoiceProjection:
    """One row per invoice issued on a deal (insert only: an invoice is never re-issued),
    with its deal's manager and client then. Listed after the deal models, which fold
    each page first."""

    name = "deal_invoices"
    topics: frozenset[str] = frozenset({"DealInvoiceIssued", "DealImported"})
    tables: tuple[str, ...] = ("deal_invoices",)

    @property
    def fingerprint(self) -> str:
        parts = [self.name, ddl("deal_invoices", INVOICE_COLUMNS), _SOURCE_DIGEST, _OWN_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl("deal_invoices", INVOICE_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        events = [
            e
            for e in page_events(page, self.topics)
            if e.topic == "DealInvoiceIssued" or e.doc.get("invoice_number") is not None
        ]
        if not events:
            return
        # the deals' rows as this page left them (the deal models fold the page first)
        deal_ids = sorted({e.stream_id for e in events})
        cursor.execute(
            "SELECT deal_id, manager, company_id, company_name FROM deals"
            " WHERE deal_id IN (SELECT unnest(?::VARCHAR[]))",
            [deal_ids],
        )
        deals = {r[0]: r[1:] for r in cursor.fetchall()}
        rows = [
            {
                "deal_id": e.stream_id,
                "manager": deals.get(e.stream_id, (None, None, None))[0],
                "company_id": deals.get(e.stream_id, (None, None, None))[1],
                "company_name": deals.get(e.stream_id, (None, None, None))[2],
                "issued_by": e.doc["actor"],
                "position": e.position,
                **(_imported_invoice(e) if e.topic == "DealImported" else _issued_invoice(e)),
            }
            for e in events
        ]
        _insert(cursor, "deal_invoices", INVOICE_COLUMNS, rows)


def _issued_invoice(e: PageEvent) -> Row:
    return {
        "number": e.doc["number"],
        "amount": e.money("amount"),
        "issued_on": e.day("issued_on"),
        "prepayment": bool(e.doc.get("prepayment", False)),
        "organisation": e.doc.get("organisation"),
        "approval": e.doc.get("approval", "not_required"),
        "issued_at": e.moment,
    }


def _imported_invoice(e: PageEvent) -> Row:
    """An imported deal's invoice (DealImported v2): issued when its file says."""
    issued_on = e.day("invoice_issued_on")
    assert issued_on is not None
    return {
        "number": e.doc["invoice_number"],
        "amount": e.money("invoice_amount"),
        "issued_on": issued_on,
        "prepayment": False,
        "organisation": e.doc.get("invoice_organisation"),
        "approval": "not_required",
        "issued_at": datetime.combine(issued_on, time.min, UTC),
    }


FIRST_LEAD_COLUMNS: tuple[Column, ...] = (
    _text("company_id"),
    _text("company_name"),
    _text("lead_id"),
    _text("manager"),
    _moment("created_at"),
    _bigint("position"),
)


class ClientFirstLeadProjection:
    """One row per company: its first lead (insert only, the first one named wins)."""

    name = "client_first_leads"
    topics: frozenset[str] = frozenset({"LeadCreated", "LeadImported"})
    tables: tuple[str, ...] = ("client_first_leads",)

    @property
    def fingerprint(self) -> str:
        parts = [self.name, ddl(self.name, FIRST_LEAD_COLUMNS), _SOURCE_DIGEST, _OWN_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl(self.name, FIRST_LEAD_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        if not pc.any(pc.is_in(page["topic"], value_set=_FIRST_LEAD_TOPICS)).as_py():
            return
        cursor.execute(FIRST_LEADS_SQL)


_FIRST_LEAD_TOPICS = pa.array(sorted(ClientFirstLeadProjection.topics), pa.string())
# Each company's first lead in the page (in log order) unless it has one already; an
# imported lead was created when the old system says.
FIRST_LEADS_SQL = """
INSERT INTO client_first_leads
SELECT company_id, company_name, lead_id, manager, created_at, position FROM (
  SELECT doc.company_id, doc.company_name, stream_id AS lead_id, doc.manager,
    CAST(CASE WHEN topic = 'LeadImported' THEN doc.created_at ELSE doc.at END AS TIMESTAMPTZ)
      AS created_at,
    position
  FROM (
    SELECT topic, stream_id, position, json_transform(state,
      '{"company_id": "VARCHAR", "company_name": "VARCHAR", "manager": "VARCHAR",
        "created_at": "VARCHAR", "at": "VARCHAR"}') AS doc
    FROM _page WHERE topic IN ('LeadCreated', 'LeadImported')
  )
  WHERE doc.company_id <> ''
  QUALIFY row_number() OVER (PARTITION BY doc.company_id ORDER BY position) = 1
)
WHERE company_id NOT IN (SELECT company_id FROM client_first_leads)
"""


def sales_projections() -> list[Projection]:
    return [SalesPlanProjection(), DealInvoiceProjection(), ClientFirstLeadProjection()]
