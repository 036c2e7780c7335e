"""Read models of deals, hand-off requests, contractors, alerts and client assignments.

- ``deals``: one row per deal (stage, status, amounts, estimate, open hand-off requests);
- ``handoffs``: one row per hand-off request (who took it and when, time to estimate,
  price, contractor or plan, status as the department's configuration defines it);
- ``contractors`` and ``contractor_quotes``: the directory and every price quote in it;
- ``contractor_deliveries``: every delivered job (planned vs actual completion, rating);
- ``alerts``: every reminder, escalation and approval request raised to someone;
- ``client_assignments``: which manager owns each client's direction, or asks to.

These models see far fewer events than leads, so a page is folded in Python: the page's
events of a model's topics are picked out by Arrow (nothing in Python touches the other
events), decoded once, and applied in log order to the current rows of the keys they
touch, read in one query. The new rows go back with two set-based statements per table:
delete the touched keys, insert from an Arrow table. Every statement runs in the
projector's transaction, so a crash mid-page leaves the tables at the previous page;
registered Arrow views are released whatever happens.

A row keeps everything the next page needs (e.g. the deal's open request ids), so
folding the log in any page sizes gives exactly the rows one rebuild gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from aggregates.rules import Rules
from projections.base import Projection

Row = dict[str, Any]
CENT = Decimal("0.01")
CLOSED_REQUEST_STATUSES = frozenset({"done", "rejected", "cancelled"})

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
"""The folds are this module's Python code: any change to it rebuilds the read models."""


# --- columns and page events ------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    arrow: pa.DataType


def _text(name: str) -> Column:
    return Column(name, "VARCHAR", pa.string())


def _texts(name: str) -> Column:
    return Column(name, "VARCHAR[]", pa.list_(pa.string()))


def _int(name: str) -> Column:
    return Column(name, "INTEGER", pa.int32())


def _bigint(name: str) -> Column:
    return Column(name, "BIGINT", pa.int64())


def _money(name: str) -> Column:
    # 38 digits: a deal's invoiced total adds up amounts each below 10^15
    return Column(name, "DECIMAL(38,2)", pa.decimal128(38, 2))


def _seconds(name: str) -> Column:
    return Column(name, "DOUBLE", pa.float64())


def _flag(name: str) -> Column:
    return Column(name, "BOOLEAN", pa.bool_())


def _day(name: str) -> Column:
    return Column(name, "DATE", pa.date32())


def _moment(name: str) -> Column:
    return Column(name, "TIMESTAMPTZ", pa.timestamp("us", tz="UTC"))


def ddl(table: str, columns: Sequence[Column]) -> str:
    body = ", ".join(f"{c.name} {c.sql}" for c in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


@dataclass(frozen=True)
class PageEvent:
    """One event of the page, its JSON decoded."""

    position: int
    stream_id: str
    version: int
    topic: str
    doc: dict[str, Any]

    @property
    def moment(self) -> datetime:
        return datetime.fromisoformat(self.doc["at"])

    def money(self, field: str) -> Decimal | None:
        raw = self.doc.get(field)
        return None if raw is None else Decimal(raw).quantize(CENT)

    def day(self, field: str) -> date | None:
        raw = self.doc.get(field)
        return None if raw is None else date.fromisoformat(raw)


def page_events(page: pa.Table, topics: frozenset[str]) -> list[PageEvent]:
    """The page's events of these topics, in log order (Arrow picks them out)."""
    mask = pc.is_in(page["topic"], value_set=pa.array(sorted(topics), pa.string()))
    picked = page.filter(mask)
    if picked.num_rows == 0:
        return []
    columns = picked.select(["position", "stream_id", "version", "topic", "state"]).to_pydict()
    events = [
        PageEvent(position, stream_id, version, topic, orjson.loads(state))
        for position, stream_id, version, topic, state in zip(
            columns["position"],
            columns["stream_id"],
            columns["version"],
            columns["topic"],
            columns["state"],
            strict=True,
        )
    ]
    events.sort(key=lambda e: e.position)
    return events


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _arrow_rows(columns: Sequence[Column], rows: Iterable[Row]) -> pa.Table:
    listed = list(rows)
    schema = pa.schema([(c.name, c.arrow) for c in columns])
    return pa.table(
        {c.name: pa.array([r[c.name] for r in listed], c.arrow) for c in columns},
        schema=schema,
    )


def _insert(
    cursor: duckdb.DuckDBPyConnection, table: str, columns: Sequence[Column], rows: list[Row]
) -> None:
    """Insert rows from one registered Arrow table: one statement, whatever their number."""
    view = f"_new_{table}"
    cursor.register(view, _arrow_rows(columns, rows))
    try:
        names = ", ".join(c.name for c in columns)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        cursor.unregister(view)


class MissingCreation(RuntimeError):
    def __init__(self, what: str, key: str) -> None:
        super().__init__(
            f"events for {what} {key} whose creation was never projected: rebuild the read models"
        )


# --- one row per stream, folded in Python -----------------------------------------------


class KeyedFold:
    """A table with one row per stream, folded event by event and written per page."""

    name: str
    table: str
    key: str
    what: str
    columns: tuple[Column, ...]
    topics: frozenset[str]
    tables: tuple[str, ...]

    def config(self) -> str:
        """The configuration the fold reads (part of the fingerprint)."""
        return ""

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(ddl(t, c) for t, c in self.ddl_parts()), self.config()]
        parts.append(_SOURCE_DIGEST)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def ddl_parts(self) -> list[tuple[str, tuple[Column, ...]]]:
        return [(self.table, self.columns)]

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        for table, columns in self.ddl_parts():
            cursor.execute(ddl(table, columns))

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        raise NotImplementedError

    def after_fold(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        """Tables besides the keyed one (e.g. rows inserted per event)."""

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        events = page_events(page, self.topics)
        if not events:
            return
        keys = sorted({e.stream_id for e in events})
        touched = f"_touched_{self.table}"
        cursor.register(touched, pa.table({"key": pa.array(keys, pa.string())}))
        try:
            names = [c.name for c in self.columns]
            cursor.execute(
                f"SELECT {', '.join(names)} FROM {self.table} "
                f"WHERE {self.key} IN (SELECT key FROM {touched})"
            )
            rows: dict[str, Row] = {
                r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()
            }
            for event in events:
                row = rows.get(event.stream_id)
                folded = self.fold(None if row is None else dict(row), event)
                folded["version"] = event.version
                folded["last_position"] = event.position
                rows[event.stream_id] = folded
            cursor.execute(
                f"DELETE FROM {self.table} WHERE {self.key} IN (SELECT key FROM {touched})"
            )
        finally:
            cursor.unregister(touched)
        _insert(cursor, self.table, self.columns, [rows[k] for k in keys])
        self.after_fold(cursor, events)

    def require(self, row: Row | None, event: PageEvent) -> Row:
        if row is None:
            raise MissingCreation(self.what, event.stream_id)
        return row

    def new_row(self, **values: Any) -> Row:
        row: Row = dict.fromkeys(c.name for c in self.columns)
        row.update(values)
        return row


# --- deals ------------------------------------------------------------------------------

DEAL_COLUMNS: tuple[Column, ...] = (
    _text("deal_id"),
    _text("funnel"),
    _text("stage"),
    _text("status"),
    _text("title"),
    _text("company_name"),
    _text("company_id"),
    _text("source"),
    _text("manager"),
    _text("description"),
    _money("amount"),
    _text("lead_id"),
    _text("previous_deal_id"),
    _text("project_id"),
    _money("proposal_total"),
    _int("proposal_services"),
    _text("proposal_calculation_id"),
    _moment("proposal_at"),
    _text("contract_number"),
    _day("contract_signed_on"),
    _money("invoiced_total"),
    _int("invoices"),
    _int("invoices_pending"),
    _text("proposal_service"),
    _money("paid"),
    _day("paid_on"),
    _int("estimate_round"),
    _money("estimate_price"),
    _texts("estimated_by"),
    _seconds("estimate_seconds"),
    _text("estimate_rejection"),
    _texts("request_ids"),
    _texts("open_request_ids"),
    _int("requests"),
    _int("open_requests"),
    _text("close_reason"),
    _moment("created_at"),
    _text("created_by"),
    _moment("updated_at"),
    _moment("stage_entered_at"),
    _moment("closed_at"),
    _int("version"),
    _bigint("last_position"),
)


class DealProjection(KeyedFold):
    name = "deals"
    table = "deals"
    tables: tuple[str, ...] = ("deals",)
    key = "deal_id"
    what = "deal"
    columns = DEAL_COLUMNS
    topics = frozenset(
        {
            "DealCreated",
            "DealImported",
            "DealStageChanged",
            "DealProposalRecorded",
            "DealContractRecorded",
            "DealInvoiceIssued",
            "DealHandoffNoted",
            "DealEstimateReady",
            "DealEstimateRejected",
            "DealClosed",
            "DealProjectStarted",
            "DealInvoiceApproved",
            "DealInvoiceDeclined",
        }
    )

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        at = event.moment
        if event.topic == "DealCreated":
            return self.new_row(
                deal_id=event.stream_id,
                funnel=doc["funnel"],
                stage=doc["stage"],
                status="open",
                title=doc["title"],
                company_name=doc["company_name"],
                company_id=doc.get("company_id"),
                source=doc["source"],
                manager=doc["manager"],
                description=doc.get("description"),
                amount=event.money("amount"),
                lead_id=doc.get("lead_id"),
                previous_deal_id=doc.get("previous_deal_id"),
                invoiced_total=Decimal("0.00"),
                invoices=0,
                invoices_pending=0,
                request_ids=[],
                open_request_ids=[],
                requests=0,
                open_requests=0,
                created_at=at,
                created_by=doc["actor"],
                updated_at=at,
                stage_entered_at=at,
            )
        if event.topic == "DealImported":
            return self._imported(event)
        deal = self.require(row, event)
        deal["updated_at"] = at
        match event.topic:
            case "DealStageChanged":
                deal["stage"] = doc["to_stage"]
                deal["stage_entered_at"] = at
                # entering a stage that needs estimates opens a round named by this version
                deal["estimate_round"] = event.version if doc.get("needs") else None
            case "DealProposalRecorded":
                deal["proposal_total"] = event.money("total")
                deal["proposal_services"] = len(doc["services"])
                deal["proposal_calculation_id"] = doc.get("calculation_id")
                services = doc["services"]
                deal["proposal_service"] = services[0]["name"] if len(services) == 1 else None
                deal["proposal_at"] = at
                deal["amount"] = event.money("total")
            case "DealContractRecorded":
                deal["contract_number"] = doc["number"]
                deal["contract_signed_on"] = event.day("signed_on")
            case "DealInvoiceIssued" | "DealInvoiceApproved" | "DealInvoiceDeclined":
                _fold_invoice(deal, event)
            case "DealHandoffNoted":
                request_id = doc["request_id"]
                known = list(deal["request_ids"] or [])
                if request_id not in known:
                    known.append(request_id)
                still_open = [r for r in deal["open_request_ids"] or [] if r != request_id]
                if doc["status"] not in CLOSED_REQUEST_STATUSES:
                    still_open.append(request_id)
                deal["request_ids"] = known
                deal["open_request_ids"] = still_open
                deal["requests"] = len(known)
                deal["open_requests"] = len(still_open)
            case "DealEstimateReady":
                deal["stage"] = doc["to_stage"]
                deal["stage_entered_at"] = at
                deal["estimate_round"] = None
                deal["estimate_rejection"] = None
                deal["estimate_price"] = event.money("price")
                deal["estimated_by"] = list(doc["estimated_by"])
                deal["estimate_seconds"] = float(doc["took_seconds"])
            case "DealEstimateRejected":
                deal["stage"] = doc["to_stage"]
                deal["stage_entered_at"] = at
                deal["estimate_round"] = None
                deal["estimate_rejection"] = doc["reason"]
            case "DealClosed":
                deal["status"] = doc["outcome"]
                deal["close_reason"] = doc.get("reason")
                deal["closed_at"] = at
                deal["estimate_round"] = None
            case "DealProjectStarted":
                deal["project_id"] = doc["project_id"]
        return deal

    def _imported(self, event: PageEvent) -> Row:
        """A deal brought in by an import: at its stage and status, with its original
        instants, and the proposal, contract and invoice it was won with (issue 18 §2)."""
        doc = event.doc
        services = doc.get("proposal_services") or []
        return self.new_row(
            deal_id=event.stream_id,
            funnel=doc["funnel"],
            stage=doc["stage"],
            status=doc["status"],
            title=doc["title"],
            company_name=doc["company_name"],
            company_id=doc.get("company_id"),
            source=doc["source"],
            manager=doc["manager"],
            description=doc.get("description"),
            amount=event.money("amount"),
            lead_id=doc.get("lead_id"),
            previous_deal_id=doc.get("previous_deal_id"),
            proposal_total=event.money("proposal_total"),
            proposal_services=len(services) if services else None,
            proposal_service=services[0]["name"] if len(services) == 1 else None,
            proposal_at=_instant(doc.get("proposal_at")),
            contract_number=doc.get("contract_number"),
            contract_signed_on=event.day("contract_signed_on"),
            invoiced_total=event.money("invoice_amount") or Decimal("0.00"),
            invoices=0 if doc.get("invoice_number") is None else 1,
            invoices_pending=0,
            paid=event.money("paid"),
            paid_on=event.day("paid_on"),
            request_ids=[],
            open_request_ids=[],
            requests=0,
            open_requests=0,
            close_reason=doc.get("close_reason"),
            created_at=datetime.fromisoformat(doc["created_at"]),
            created_by=doc["actor"],
            updated_at=event.moment,
            stage_entered_at=datetime.fromisoformat(doc["stage_entered_at"]),
            closed_at=_instant(doc.get("closed_at")),
        )


def _instant(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


def _fold_invoice(deal: Row, event: PageEvent) -> None:
    """Only counted invoices (not prepayments, or approved ones) are in the deal's invoiced
    total and count; a pending prepayment is counted apart until it is decided. Invoices
    stored before approvals (no ``approval``) counted at once."""
    pending = deal["invoices_pending"] or 0
    if event.topic == "DealInvoiceIssued" and event.doc.get("approval") == "pending":
        deal["invoices_pending"] = pending + 1
        return
    if event.topic != "DealInvoiceIssued":
        deal["invoices_pending"] = max(0, pending - 1)
    if event.topic == "DealInvoiceDeclined":
        return
    deal["invoices"] = (deal["invoices"] or 0) + 1
    deal["invoiced_total"] = (deal["invoiced_total"] or Decimal("0.00")) + (
        event.money("amount") or Decimal("0.00")
    )


# --- hand-off requests ------------------------------------------------------------------

HANDOFF_COLUMNS: tuple[Column, ...] = (
    _text("request_id"),
    _text("deal_id"),
    _text("department"),
    _text("stage"),
    _text("status"),
    _int("round"),
    _text("notes"),
    _text("assignee"),
    _moment("created_at"),
    _text("created_by"),
    _moment("taken_at"),
    _moment("ready_at"),
    _seconds("take_seconds"),
    _seconds("estimate_seconds"),
    _money("price"),
    _text("service"),
    _text("contractor_id"),
    _text("contractor_name"),
    _flag("own_equipment"),
    _int("lead_time_days"),
    _int("rating"),
    _text("estimate_notes"),
    Column("plan_hours", "DECIMAL(18,2)", pa.decimal128(18, 2)),
    _text("plan_notes"),
    _int("calculation_services"),
    Column("calculation_hours", "DECIMAL(18,2)", pa.decimal128(18, 2)),
    _text("rejection_reason"),
    _text("cancellation_reason"),
    _flag("reminded"),
    _flag("escalated"),
    _moment("stage_entered_at"),
    _moment("updated_at"),
    _int("version"),
    _bigint("last_position"),
)


class HandoffProjection(KeyedFold):
    name = "handoffs"
    table = "handoffs"
    tables: tuple[str, ...] = ("handoffs",)
    key = "request_id"
    what = "hand-off request"
    columns = HANDOFF_COLUMNS
    topics = frozenset(
        {
            "HandoffRequested",
            "HandoffTaken",
            "HandoffLogisticsEstimated",
            "HandoffPlanRecorded",
            "HandoffCalculated",
            "HandoffStageChanged",
            "HandoffRejected",
            "HandoffCancelled",
            "HandoffReminderSent",
            "HandoffEscalated",
            "HandoffDeliveryRecorded",
        }
    )

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def config(self) -> str:
        """What the status and the ready time read: each department's stage roles."""
        return repr(
            sorted(
                (
                    d.id,
                    d.rejected_stage,
                    sorted(d.ready_stages),
                    sorted(d.final_stages),
                )
                for d in self.rules.departments.values()
            )
        )

    def _is_ready(self, department: str, stage: str) -> bool:
        configured = self.rules.departments.get(department)
        return configured is not None and configured.is_ready(stage)

    def status(self, row: Row) -> str:
        """As ``HandoffRequest.status``, from the department's configuration."""
        if row["cancellation_reason"] is not None:
            return "cancelled"
        department = self.rules.departments.get(row["department"])
        if department is None:
            # a department no longer configured: what the request itself still tells
            if row["rejection_reason"] is not None:
                return "rejected"
            return "open" if row["assignee"] is None else "in_work"
        stage = row["stage"]
        if stage == department.rejected_stage:
            return "rejected"
        if stage in department.final_stages:
            return "done"
        if department.is_ready(stage):
            return "ready"
        return "open" if row["assignee"] is None else "in_work"

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        at = event.moment
        if event.topic == "HandoffRequested":
            request = self.new_row(
                request_id=event.stream_id,
                deal_id=doc["deal_id"],
                department=doc["department"],
                stage=doc["stage"],
                round=doc.get("round"),
                notes=doc.get("notes"),
                created_at=at,
                created_by=doc["actor"],
                reminded=False,
                escalated=False,
                stage_entered_at=at,
                updated_at=at,
            )
        else:
            request = self.require(row, event)
            request["updated_at"] = at
            match event.topic:
                case "HandoffTaken":
                    request["assignee"] = doc["assignee"]
                    request["taken_at"] = at
                    request["stage"] = doc["to_stage"]
                    request["stage_entered_at"] = at
                case "HandoffLogisticsEstimated":
                    request["price"] = event.money("cost")
                    request["service"] = doc["service"]
                    request["contractor_id"] = doc.get("contractor_id")
                    request["contractor_name"] = doc.get("contractor_name")
                    request["own_equipment"] = doc.get("contractor_id") is None
                    request["lead_time_days"] = doc["lead_time_days"]
                    request["rating"] = doc.get("rating")
                    request["estimate_notes"] = doc.get("notes")
                case "HandoffPlanRecorded":
                    request["plan_hours"] = event.money("hours")
                    request["plan_notes"] = doc.get("notes")
                case "HandoffCalculated":
                    request["price"] = event.money("total")
                    request["calculation_services"] = len(doc["services"])
                    request["calculation_hours"] = sum(
                        (Decimal(s["hours"]) for s in doc["services"] if s.get("hours")),
                        Decimal("0.00"),
                    ).quantize(Decimal("0.01"))
                case "HandoffStageChanged":
                    to_stage = doc["to_stage"]
                    request["stage"] = to_stage
                    request["stage_entered_at"] = at
                    # the first time in a row of ready stages counts as the estimate time
                    ready = self._is_ready(request["department"], to_stage)
                    request["ready_at"] = (request["ready_at"] or at) if ready else None
                case "HandoffRejected":
                    request["stage"] = doc["to_stage"]
                    request["stage_entered_at"] = at
                    request["rejection_reason"] = doc["reason"]
                case "HandoffCancelled":
                    request["cancellation_reason"] = doc["reason"]
                case "HandoffReminderSent":
                    request["reminded"] = True
                case "HandoffEscalated":
                    request["escalated"] = True
        request["status"] = self.status(request)
        request["take_seconds"] = _seconds_between(request["created_at"], request["taken_at"])
        request["estimate_seconds"] = _seconds_between(request["created_at"], request["ready_at"])
        return request


# --- contractors ------------------------------------------------------------------------

CONTRACTOR_COLUMNS: tuple[Column, ...] = (
    _text("contractor_id"),
    _text("name"),
    _texts("services"),
    _text("contacts"),
    _text("notes"),
    _int("quotes"),
    _bigint("rating_total"),
    Column("average_rating", "DECIMAL(4,2)", pa.decimal128(4, 2)),
    _moment("last_used_at"),
    _moment("created_at"),
    _text("created_by"),
    _moment("updated_at"),
    _int("version"),
    _bigint("last_position"),
)

QUOTE_COLUMNS: tuple[Column, ...] = (
    _bigint("position"),
    _text("contractor_id"),
    _text("request_id"),
    _text("deal_id"),
    _text("service"),
    _money("price"),
    _int("rating"),
    _text("notes"),
    _moment("quoted_at"),
    _text("quoted_by"),
)


DELIVERY_COLUMNS: tuple[Column, ...] = (
    _bigint("position"),
    _text("contractor_id"),
    _text("request_id"),
    _text("deal_id"),
    _text("service"),
    _day("contracted_on"),
    _int("lead_time_days"),
    _day("planned_on"),
    _day("completed_on"),
    _int("actual_days"),
    _int("days_late"),
    _flag("overrun"),
    _int("rating"),
    _text("notes"),
    _moment("delivered_at"),
    _text("delivered_by"),
)


class ContractorProjection(KeyedFold):
    name = "contractors"
    table = "contractors"
    tables: tuple[str, ...] = ("contractors", "contractor_quotes", "contractor_deliveries")
    key = "contractor_id"
    what = "contractor"
    columns = CONTRACTOR_COLUMNS
    topics = frozenset(
        {
            "ContractorRegistered",
            "ContractorUpdated",
            "ContractorQuoteRecorded",
            "ContractorDeliveryRecorded",
        }
    )

    def ddl_parts(self) -> list[tuple[str, tuple[Column, ...]]]:
        return [
            ("contractors", CONTRACTOR_COLUMNS),
            ("contractor_quotes", QUOTE_COLUMNS),
            ("contractor_deliveries", DELIVERY_COLUMNS),
        ]

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        at = event.moment
        if event.topic == "ContractorRegistered":
            return self.new_row(
                contractor_id=event.stream_id,
                name=doc["name"],
                services=list(doc["services"]),
                contacts=doc.get("contacts"),
                notes=doc.get("notes"),
                quotes=0,
                rating_total=0,
                created_at=at,
                created_by=doc["actor"],
                updated_at=at,
            )
        contractor = self.require(row, event)
        contractor["updated_at"] = at
        if event.topic == "ContractorUpdated":
            contractor["name"] = doc["name"]
            contractor["services"] = list(doc["services"])
            contractor["contacts"] = doc.get("contacts")
            contractor["notes"] = doc.get("notes")
        elif event.topic == "ContractorQuoteRecorded":
            quotes = contractor["quotes"] + 1
            total = contractor["rating_total"] + int(doc["rating"])
            contractor["quotes"] = quotes
            contractor["rating_total"] = total
            contractor["average_rating"] = (Decimal(total) / Decimal(quotes)).quantize(
                CENT, rounding=ROUND_HALF_UP
            )
            contractor["last_used_at"] = at
        return contractor

    def after_fold(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        quotes = [
            {
                "position": e.position,
                "contractor_id": e.stream_id,
                "request_id": e.doc["request_id"],
                "deal_id": e.doc["deal_id"],
                "service": e.doc["service"],
                "price": e.money("price"),
                "rating": int(e.doc["rating"]),
                "notes": e.doc.get("notes"),
                "quoted_at": e.moment,
                "quoted_by": e.doc["actor"],
            }
            for e in events
            if e.topic == "ContractorQuoteRecorded"
        ]
        if quotes:
            _insert(cursor, "contractor_quotes", QUOTE_COLUMNS, quotes)
        deliveries = [_delivery(e) for e in events if e.topic == "ContractorDeliveryRecorded"]
        if deliveries:
            _insert(cursor, "contractor_deliveries", DELIVERY_COLUMNS, deliveries)


def _delivery(e: PageEvent) -> Row:
    """A delivered job; its lead time in days from the day it was contracted."""
    contracted = e.day("contracted_on")
    completed = e.day("completed_on")
    assert contracted is not None
    assert completed is not None
    days_late = int(e.doc["days_late"])
    return {
        "position": e.position,
        "contractor_id": e.stream_id,
        "request_id": e.doc["request_id"],
        "deal_id": e.doc["deal_id"],
        "service": e.doc["service"],
        "contracted_on": contracted,
        "lead_time_days": int(e.doc["lead_time_days"]),
        "planned_on": e.day("planned_on"),
        "completed_on": completed,
        "actual_days": (completed - contracted).days,
        "days_late": days_late,
        "overrun": days_late > 0,
        "rating": int(e.doc["rating"]),
        "notes": e.doc.get("notes"),
        "delivered_at": e.moment,
        "delivered_by": e.doc["actor"],
    }


# --- client assignments -----------------------------------------------------------------

ASSIGNMENT_COLUMNS: tuple[Column, ...] = (
    _text("assignment_id"),
    _text("company_id"),
    _text("direction"),
    _text("manager"),
    _text("status"),
    _text("requested_manager"),
    _text("requested_by"),
    _text("approver"),
    _text("decided_by"),
    _text("comment"),
    _text("month"),
    _moment("updated_at"),
    _int("version"),
    _bigint("last_position"),
    _text("pending_because"),
)


class ClientAssignmentProjection(KeyedFold):
    """As ``limits.evolve_assignment``."""

    name = "client_assignments"
    table = "client_assignments"
    tables: tuple[str, ...] = ("client_assignments",)
    key = "assignment_id"
    what = "client assignment"
    columns = ASSIGNMENT_COLUMNS
    topics = frozenset(
        {
            "ClientAssigned",
            "ClientAssignmentApprovalRequested",
            "ClientAssignmentDeclined",
            "ClientAssignmentTakeoverRequested",
        }
    )

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        if row is None:
            if event.topic in ("ClientAssignmentDeclined", "ClientAssignmentTakeoverRequested"):
                raise MissingCreation(self.what, event.stream_id)
            row = self.new_row(
                assignment_id=event.stream_id,
                company_id=doc["company_id"],
                direction=doc["direction"],
                status="declined",
            )
        row["updated_at"] = event.moment
        match event.topic:
            case "ClientAssigned":
                row.update(
                    manager=doc["manager"],
                    status="assigned",
                    requested_manager=None,
                    requested_by=None,
                    approver=None,
                    month=doc["month"],
                    decided_by=doc.get("approved_by"),
                    comment=doc.get("comment"),
                    pending_because=None,
                )
            case "ClientAssignmentApprovalRequested":
                row.update(
                    status="pending_approval",
                    requested_manager=doc["manager"],
                    requested_by=doc["actor"],
                    approver=doc["approver"],
                    month=doc["month"],
                    decided_by=None,
                    comment=doc.get("reason"),
                    pending_because="monthly_cap",
                )
            case "ClientAssignmentTakeoverRequested":
                row.update(
                    status="pending_approval",
                    requested_manager=doc["manager"],
                    requested_by=doc["actor"],
                    approver=doc["approver"],
                    decided_by=None,
                    comment=doc.get("reason"),
                    pending_because="held",
                )
            case "ClientAssignmentDeclined":
                row.update(
                    status="assigned" if row["manager"] else "declined",
                    requested_manager=None,
                    approver=None,
                    decided_by=doc["actor"],
                    comment=doc.get("comment"),
                    pending_because=None,
                )
        return row


# --- alerts -----------------------------------------------------------------------------

ALERT_COLUMNS: tuple[Column, ...] = (
    _bigint("alert_id"),
    _text("kind"),
    _text("subject_type"),
    _text("subject_id"),
    _text("recipient"),
    _text("detail"),
    _day("due"),
    _moment("raised_at"),
    _text("raised_by"),
    _text("command_id"),
    _bigint("position"),
)


def _lead_reminder(e: PageEvent) -> tuple[str, str, str]:
    return ("reminder", "lead", f"The client has had no answer yet: it was due {e.doc['due']}")


def _lead_escalation(e: PageEvent) -> tuple[str, str, str]:
    return (
        "escalation",
        "lead",
        f"{e.doc['manager']}'s client still has no answer after a reminder: "
        f"it was due {e.doc['due']}",
    )


def _handoff_reminder(_: PageEvent) -> tuple[str, str, str]:
    return (
        "reminder",
        "handoff",
        "The hand-off request is not taken yet: its department's time to take it is over",
    )


def _handoff_escalation(_: PageEvent) -> tuple[str, str, str]:
    return ("escalation", "handoff", "The hand-off request is still not taken after a reminder")


def _approval_request(e: PageEvent) -> tuple[str, str, str]:
    doc = e.doc
    detail = (
        f"{doc['manager']} asks to take client {doc['company_id']} ({doc['direction']}): "
        f"{doc['count']} of {doc['cap']} new clients taken in {doc['month']} already"
    )
    if doc.get("reason"):
        detail += f"; reason: {doc['reason']}"
    return ("approval_request", "client_assignment", detail)


def _takeover_request(e: PageEvent) -> tuple[str, str, str]:
    doc = e.doc
    detail = (
        f"{doc['manager']} asks to take client {doc['company_id']} ({doc['direction']}) "
        f"from {doc['held_by']}, who holds it"
    )
    if doc.get("reason"):
        detail += f"; reason: {doc['reason']}"
    return ("approval_request", "client_assignment", detail)


def _prepayment_approval(e: PageEvent) -> tuple[str, str, str] | None:
    doc = e.doc
    if doc.get("approval") != "pending":
        return None
    detail = (
        f"Prepayment invoice {doc['number']} of {doc['amount']} ({doc['organisation']}) "
        "awaits approval"
    )
    return ("approval_request", "deal", detail)


def _activity_overdue(e: PageEvent) -> tuple[str, str, str]:
    return (
        "reminder",
        "activity",
        f"The activity planned to end at {e.doc['planned_end']} is overdue: mark it done, "
        "reschedule or cancel it",
    )


ALERTS: dict[str, Callable[[PageEvent], tuple[str, str, str] | None]] = {
    "LeadAnswerReminderSent": _lead_reminder,
    "LeadAnswerEscalated": _lead_escalation,
    "HandoffReminderSent": _handoff_reminder,
    "HandoffEscalated": _handoff_escalation,
    "ClientAssignmentApprovalRequested": _approval_request,
    "ClientAssignmentTakeoverRequested": _takeover_request,
    "DealInvoiceIssued": _prepayment_approval,
    "ActivityOverdueReminderSent": _activity_overdue,
}


@dataclass(frozen=True)
class RaisedAlert:
    """What an alert event raises, whatever its type (the ALERTS entry gives the kind,
    subject and detail; the recipient is in the event)."""

    alert_id: int
    """The position of the event that raised it."""
    kind: str
    subject_type: str
    subject_id: str
    recipient: str
    detail: str
    due: date | None
    raised_at: datetime


def raised_alert(e: PageEvent) -> RaisedAlert | None:
    """The alert an event of an ALERTS topic raises (None: this one raises none, e.g. an
    invoice that needs no approval). Read by the projection and by the mailer."""
    alert = ALERTS[e.topic](e)
    if alert is None:
        return None
    kind, subject_type, detail = alert
    recipient = e.doc.get("approver") or e.doc["recipient"]
    return RaisedAlert(
        e.position, kind, subject_type, e.stream_id, recipient, detail, e.day("due"), e.moment
    )


class AlertProjection:
    """One row per alert event; the alert's id is its event's position in the log."""

    name = "alerts"
    tables: tuple[str, ...] = ("alerts",)
    topics: frozenset[str] = frozenset(ALERTS)

    @property
    def fingerprint(self) -> str:
        parts = [self.name, ddl("alerts", ALERT_COLUMNS), _SOURCE_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ddl("alerts", ALERT_COLUMNS))

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        rows: list[Row] = []
        for e in page_events(page, self.topics):
            alert = raised_alert(e)
            if alert is None:  # e.g. an invoice that needs no approval
                continue
            rows.append(
                {
                    "alert_id": alert.alert_id,
                    "kind": alert.kind,
                    "subject_type": alert.subject_type,
                    "subject_id": alert.subject_id,
                    "recipient": alert.recipient,
                    "detail": alert.detail,
                    "due": alert.due,
                    "raised_at": alert.raised_at,
                    "raised_by": e.doc["actor"],
                    "command_id": e.doc["command_id"],
                    "position": e.position,
                }
            )
        if rows:
            _insert(cursor, "alerts", ALERT_COLUMNS, rows)


def deal_projections(rules: Rules) -> list[Projection]:
    return [
        DealProjection(),
        HandoffProjection(rules),
        ContractorProjection(),
        ClientAssignmentProjection(),
        AlertProjection(),
    ]
