"""Records written in their import format: the round trip's other half.

A kind's export is a workbook whose first row names the kind's fields (the headers the
import recognises without a mapping) and whose rows are the records, one each, with the
values the import reads back: text as text, dates as dates, amounts as numbers, flags as
``yes`` (empty for no). Importing it into an empty platform makes the same records, and
into the platform it came from adds nothing (every row is "already imported").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import xlsxwriter
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from aggregates.directory_entry import DirectoryCatalog
from aggregates.errors import InvalidValue
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.imports import kind_named
from leadledger.imports.base import Kind
from queries import companies, contacts, deals, leads
from queries import directories as directory_entries
from queries.common import Filters, streamed_rows
from queries.leads import LeadFilters

MAX_WIDTH = 60
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_columns(kind: Kind, leave_out: Iterable[str] = ()) -> list[str]:
    """The kind's fields, in the order the import lists them (less ``leave_out``)."""
    skipped = set(leave_out)
    return [f.name for f in kind.fields if f.name not in skipped]


def write_records(
    kind: Kind, records: Iterable[Mapping[str, Any]], path: Path, sheet: str | None = None
) -> int:
    """Write ``records`` (field name → value; missing fields are empty) as ``kind``'s
    import file at ``path`` (XlsxWriter, constant memory). Returns the rows written."""
    types = {f.name: f.type for f in kind.fields}
    columns = export_columns(kind)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        sheet_ = workbook.add_worksheet(sheet or kind.name.capitalize())
        bold = workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        widths = [len(c) + 2 for c in columns]
        for col, name in enumerate(columns):
            sheet_.write_string(0, col, name, bold)
        out = 0
        for out, record in enumerate(records, start=1):
            for col, name in enumerate(columns):
                value = record.get(name)
                if value is None or value == "":
                    continue
                kind_of = types[name]
                if kind_of == "flag":
                    if value:
                        sheet_.write_string(out, col, "yes")
                elif kind_of == "instant" and isinstance(value, datetime):
                    # naive in the workbook: the import reads it back as UTC
                    moment = value if value.tzinfo is None else value.astimezone(UTC)
                    sheet_.write_datetime(out, col, moment.replace(tzinfo=None), stamp)
                    widths[col] = max(widths[col], 21)
                elif kind_of == "day" and isinstance(value, date):
                    sheet_.write_datetime(out, col, datetime.combine(value, time.min), day)
                    widths[col] = max(widths[col], 12)
                elif kind_of == "amount" and isinstance(value, (int, float, Decimal)):
                    sheet_.write_number(out, col, float(value))
                else:
                    text = str(value) if isinstance(value, UUID) else f"{value}"
                    sheet_.write_string(out, col, text)
                    widths[col] = max(widths[col], min(MAX_WIDTH, len(text) + 2))
        for col, width in enumerate(widths):
            sheet_.set_column(col, col, width)
        sheet_.freeze_panes(1, 0)
        return out
    finally:
        workbook.close()


def export_response(
    kind: Kind, records: Iterable[Mapping[str, Any]], filename: str, sheet: str | None = None
) -> FileResponse:
    """``records`` as ``kind``'s import file, written to a temporary file then served
    (and removed once sent)."""
    handle, name = tempfile.mkstemp(prefix=f"leadledger-{kind.name}-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        write_records(kind, records, path, sheet)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type=XLSX,
        filename=filename,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


COUNTED = "('not_required', 'approved')"
"""A deal's invoices that count (a pending or declined prepayment stays behind)."""


def deal_rows(cursor: duckdb.DuckDBPyConnection, filters: Filters) -> Iterator[dict[str, Any]]:
    """The deals export (:func:`queries.deals.deals_export`) with each deal's invoices and
    payments as the import reads them: its row carries its first invoice (and the first
    payment of it), and a *continuation row* (its ``external_id``, the card left empty)
    follows for each further invoice (with its first payment) and each further payment;
    a won deal's row carries its project's status, PM, planned start and end and value,
    and its payments are the project's (a deal won here is paid on its project)."""
    invoices: dict[str, list[dict[str, Any]]] = {}
    cursor.execute(
        "SELECT deal_id, number AS invoice_number, amount AS invoiced, issued_on AS invoiced_on,"
        f" organisation FROM deal_invoices WHERE approval IN {COUNTED} ORDER BY position"
    )
    for row in streamed_rows(cursor):
        invoices.setdefault(row.pop("deal_id"), []).append(row)
    projects: dict[str, dict[str, Any]] = {}
    cursor.execute(
        "SELECT deal_id, project_id, status AS project_status, pm AS project_pm,"
        " planned_start AS project_start, planned_end AS project_end, amount AS project_value"
        " FROM projects WHERE deal_id IS NOT NULL"
    )
    for row in streamed_rows(cursor):
        projects[row.pop("deal_id")] = row
    payments: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cursor.execute(
        "SELECT project_id, invoice_number, amount AS paid, paid_on FROM project_payments"
        " ORDER BY recorded_at, paid_on"
    )
    for row in streamed_rows(cursor):
        key = (row.pop("project_id"), row.pop("invoice_number"))
        payments.setdefault(key, []).append(row)
    for row in deals.deals_export(cursor, filters):
        deal_id = str(row["external_id"])
        made = projects.get(deal_id)
        found = invoices.get(deal_id, [])
        paid: list[list[dict[str, Any]]] = [[] for _ in found]
        if made is not None:
            project_id = made.pop("project_id")
            row.update(made)
            paid = [payments.get((project_id, i["invoice_number"]), []) for i in found]
            row["paid"] = row["paid_on"] = None
        if found:
            row.update(found[0])
        if paid and paid[0]:
            row.update(paid[0][0])
        yield row
        for index, invoice in enumerate(found):
            if index:
                yield {"external_id": deal_id, **invoice, **(paid[index][:1] or [{}])[0]}
            for payment in paid[index][1:]:
                yield {
                    "external_id": deal_id,
                    "invoice_number": invoice["invoice_number"],
                    **payment,
                }


@dataclass(frozen=True)
class ExportFilters:
    """The filters an export in the import format takes (None: not filtered): the funnel,
    the manager and the creation period, for leads and deals."""

    funnel: str | None = None
    manager: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def kind_records(
    cursor: duckdb.DuckDBPyConnection,
    name: str,
    funnels: FunnelCatalog,
    rules: Rules,
    directories: DirectoryCatalog | None,
    filters: ExportFilters = ExportFilters(),
) -> tuple[Kind, Iterator[dict[str, Any]]]:
    """The kind called ``name`` and the records the cursor's viewer sees of it, as its
    import reads them: leads and deals (the filters apply), companies (merged ones left
    out), contacts, or a configured directory's entries."""
    kind = kind_named(name, directories)
    if name == "leads":
        if filters.funnel is not None:
            funnels.require(filters.funnel)
        lead_filters = LeadFilters(
            funnel=filters.funnel,
            manager=filters.manager,
            created_from=filters.start,
            created_to=filters.end,
        )
        return kind, leads.leads_export(cursor, lead_filters)
    if name == "deals":
        if filters.funnel is not None and filters.funnel not in rules.deal_funnels:
            known = ", ".join(sorted(rules.deal_funnels))
            raise InvalidValue("funnel", f"unknown deal funnel '{filters.funnel}' (known: {known})")
        deal_filters = Filters(
            equal={"funnel": filters.funnel, "manager": filters.manager},
            start=filters.start,
            end=filters.end,
        )
        return kind, deal_rows(cursor, deal_filters)
    for field in ("funnel", "manager"):
        if getattr(filters, field) is not None:
            raise InvalidValue(field, f"'{field}' filters the leads and deals exports only")
    if filters.start is not None or filters.end is not None:
        raise InvalidValue("from", "the period filters the leads and deals exports only")
    if name == "companies":
        return kind, companies.directory_export(cursor, companies.CompanyFilters())
    if name == "contacts":
        return kind, contacts.contacts_export(cursor, None)
    configured = None if directories is None else directories.get(name)
    assert configured is not None  # kind_named found it
    return kind, directory_entries.entries_export(cursor, name, configured.field_ids, None)
