"""Exports of the read models for analysts: Parquet (Arrow types kept), CSV or Excel.

An export is computed over the viewer's scoped views like every other read, so it holds
exactly what its reader may see; no read model holds sensitive information. Excel is
written in constant memory: the rows stream from DuckDB in Arrow batches, each converted
column by column and written by a compiled xlsx writer into a workbook on disk (in FastAPI's
thread pool, so the server keeps answering), served and then removed.
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from read_api.deps import ReadCursor
from read_api.errors import BadRequestValue
from read_api.excel import XLSX, Title, title_of_export, write_rows

router = APIRouter(tags=["exports"])

EXPORTABLE = (
    "leads",
    "lead_stage_visits",
    "lead_pauses",
    "deals",
    "deal_stage_visits",
    "handoffs",
    "contractors",
    "contractor_quotes",
    "contractor_deliveries",
    "client_assignments",
    "alerts",
    "projects",
    "project_tasks",
    "time_entries",
    "project_invoices",
    "project_payments",
    "project_acts",
)
MEDIA = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "xlsx": XLSX,
}
BATCH_ROWS = 4_096
"""Rows per Arrow batch: each is written while holding the GIL for a few tens of ms."""


@router.get("/exports/{table}", response_class=FileResponse)
def export(
    table: str,
    cursor: ReadCursor,
    request: Request,
    format: Annotated[
        Literal["parquet", "csv", "xlsx"], Query(description="File format")
    ] = "parquet",
) -> Response:
    """One read model as a file, with the rows the caller may see."""
    if table not in EXPORTABLE:
        raise BadRequestValue("table", f"must be one of: {', '.join(EXPORTABLE)}")
    title = title_of_export(request, table) if format == "xlsx" else None
    return export_file(cursor, table, format, title)


def export_file(
    cursor: ReadCursor, table: str, format: str, title: Title | None = None
) -> FileResponse:
    """The read model ``table`` (one of EXPORTABLE) as a file of ``format`` (parquet, csv
    or xlsx, which needs its title block), over the caller's scoped cursor."""
    handle, path = tempfile.mkstemp(prefix="leadledger-export-", suffix=f".{format}")
    os.close(handle)
    if format == "xlsx":
        if title is None:
            raise ValueError("an Excel export has a title block")
        _write_xlsx(cursor, table, path, title)
    else:
        options = "FORMAT parquet" if format == "parquet" else "FORMAT csv, HEADER true"
        # the table name is one of EXPORTABLE and the path is ours: nothing from the request
        cursor.execute(f"COPY (SELECT * FROM {table}) TO '{path}' ({options})")
    return FileResponse(
        path,
        media_type=MEDIA[format],
        filename=f"{table}.{format}",
        background=BackgroundTask(os.unlink, path),
    )


def _write_xlsx(cursor: ReadCursor, table: str, path: str, title: Title) -> None:
    """The table's rows, Arrow batch by batch, into a constant-memory workbook at ``path``."""
    rows = cursor.sql(f"SELECT * FROM {table}").to_arrow_reader(BATCH_ROWS)  # one of EXPORTABLE
    try:
        write_rows(path, title, rows)
    except BaseException:
        os.unlink(path)
        raise
