"""Read model of the organisations' revenue ledgers (simplified-tax regime):

- ``revenue_ledger``: one row per organisation and year (its ledger stream): what is
  booked against the yearly cap (the running total), how many invoices, deals' and
  projects' apart, and the cap in force when the last one was booked.

Folded like the deal models (one row per stream, :class:`projections.deals.KeyedFold`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from projections.deals import (
    _SOURCE_DIGEST,
    KeyedFold,
    PageEvent,
    Row,
    _bigint,
    _int,
    _moment,
    _money,
    _text,
    ddl,
)

_OWN_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

REVENUE_COLUMNS = (
    _text("ledger_id"),
    _text("organisation"),
    _int("year"),
    _money("booked"),
    _money("cap"),
    _int("invoices"),
    _int("deal_invoices"),
    _int("project_invoices"),
    _moment("last_booked_at"),
    _int("version"),
    _bigint("last_position"),
)


class RevenueLedgerProjection(KeyedFold):
    name = "revenue_ledger"
    table = "revenue_ledger"
    tables: tuple[str, ...] = ("revenue_ledger",)
    key = "ledger_id"
    what = "revenue ledger"
    columns = REVENUE_COLUMNS
    topics = frozenset({"RevenueBooked", "ProjectRevenueBooked"})

    @property
    def fingerprint(self) -> str:
        parts = [self.name, ddl(self.table, self.columns), _SOURCE_DIGEST, _OWN_DIGEST]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        ledger = row or self.new_row(
            ledger_id=event.stream_id,
            organisation=doc["organisation"],
            year=int(doc["year"]),
            invoices=0,
            deal_invoices=0,
            project_invoices=0,
        )
        ledger["booked"] = event.money("total")
        ledger["cap"] = event.money("cap")
        ledger["invoices"] += 1
        side = "project_invoices" if event.topic == "ProjectRevenueBooked" else "deal_invoices"
        ledger[side] += 1
        ledger["last_booked_at"] = event.moment
        return ledger
