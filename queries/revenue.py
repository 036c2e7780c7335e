"""The revenue cap report: what each organisation's ledger booked in a year against its
yearly revenue cap."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from aggregates.rules import Organisation
from queries.common import CENT, ZERO


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
