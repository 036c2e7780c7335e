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
from queries.common import Filters
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
        return kind, deals.deals_export(cursor, deal_filters)
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
