"""Exports of the read models for analysts: Parquet (Arrow types kept) or CSV.

An export is computed over the viewer's scoped views like every other read, so it holds
exactly what its reader may see; no read model holds sensitive information.
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from read_api.deps import ReadCursor
from read_api.errors import BadRequestValue

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
MEDIA = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}


@router.get("/exports/{table}", response_class=FileResponse)
def export(
    table: str,
    cursor: ReadCursor,
    format: Annotated[Literal["parquet", "csv"], Query(description="File format")] = "parquet",
) -> Response:
    """One read model as a file, with the rows the caller may see."""
    if table not in EXPORTABLE:
        raise BadRequestValue("table", f"must be one of: {', '.join(EXPORTABLE)}")
    handle, path = tempfile.mkstemp(prefix="leadledger-export-", suffix=f".{format}")
    os.close(handle)
    options = "FORMAT parquet" if format == "parquet" else "FORMAT csv, HEADER true"
    # the table name is one of EXPORTABLE and the path is ours: nothing from the request
    cursor.execute(f"COPY (SELECT * FROM {table}) TO '{path}' ({options})")
    return FileResponse(
        path,
        media_type=MEDIA[format],
        filename=f"{table}.{format}",
        background=BackgroundTask(os.unlink, path),
    )
