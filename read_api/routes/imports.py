"""Importing an existing base (issue 18 §2): upload a file, see its dry run, import it;
saved column mappings. Administrators and top management only."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi import Path as Path_
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from aggregates.errors import InvalidValue
from commands.context import VersionConflict
from commands.imports import (
    get_mapping,
    import_file,
    mapping_columns,
    save_mapping,
)
from leadledger.imports.base import MappingError
from leadledger.imports.export import ExportFilters, export_response, kind_records
from leadledger.imports.files import UnreadableFile
from leadledger.imports.report import write_errors
from leadledger.imports.runner import ImportConflict
from read_api.deps import CommandHeadersDep, Period, PlatformDep, ReadCursor, mark_accepted
from read_api.excel import XLSX
from schemas.imports import ImportReportView, MappingAccepted, MappingRequest, MappingView
from schemas.limits import MAX_CODE

router = APIRouter(prefix="/imports", tags=["imports"])
Headers = CommandHeadersDep
MAX_ERRORS_SHOWN = 1_000
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown saved mapping"},
    409: {"description": "The store changed under the import: nothing was written"},
    413: {"description": "The file is larger than the request body limit"},
    422: {
        "description": "Unknown kind or mode, a mapping that does not fit, an unreadable "
        "file; names the field"
    },
}


@router.post(
    "",
    response_model=ImportReportView,
    responses={**ERRORS, 200: {"content": {XLSX: {}}, "description": "The report"}},
)
def run(
    headers: Headers,
    platform: PlatformDep,
    file: Annotated[UploadFile, File(description="The XLSX or CSV file")],
    kind: Annotated[
        str,
        Form(
            max_length=40,
            description="leads, deals, companies, contacts, or a directory's id (court, "
            "signatory...) for its entries",
        ),
    ],
    mapping: Annotated[
        str | None,
        Form(max_length=20_000, description='JSON: {"Column": "field", ...}'),
    ] = None,
    mapping_name: Annotated[
        str | None, Form(max_length=64, description="A saved mapping's name")
    ] = None,
    mode: Annotated[Literal["all", "rows"], Form()] = "all",
    dry_run: Annotated[bool, Form()] = False,
    report: Annotated[
        Literal["json", "xlsx"],
        Form(description="xlsx: answer with the refused rows and their reasons as a workbook"),
    ] = "json",
) -> Any:
    """Check a file of records (dry_run) or import it: mode 'all' imports the whole file
    or nothing, 'rows' the good rows. Every refused row is reported with its row number,
    column and reason. Importing the same rows again adds nothing."""
    columns = _mapping(platform, mapping, mapping_name)
    ctx = headers.context(platform, "import", {"kind": kind, "file": file.filename})
    folder = Path(tempfile.mkdtemp(prefix="leadledger-upload-"))
    try:
        path = folder / "upload"
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out)
        try:
            outcome, source = import_file(
                platform.store,
                platform.funnels,
                platform.rules,
                ctx,
                kind,
                path,
                file_name=Path(file.filename or "upload").name,
                mapping=columns,
                mode=mode,
                dry_run=dry_run,
                directories=platform.directories,
            )
        except MappingError as exc:
            raise InvalidValue(exc.field, exc.message) from None
        except UnreadableFile as exc:
            raise InvalidValue("file", str(exc)) from None
        except ImportConflict as exc:
            raise VersionConflict(str(exc), 0) from None
        if report == "xlsx":
            workbook = folder / "errors.xlsx"
            write_errors(source, outcome, workbook)
            stem = Path(source.name).stem or "import"
            return FileResponse(
                workbook,
                media_type=XLSX,
                filename=f"{stem}-errors.xlsx",
                background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    return outcome.as_dict(MAX_ERRORS_SHOWN)


def _mapping(platform: Any, raw: str | None, name: str | None) -> dict[str, str] | None:
    if raw is not None and name is not None:
        raise InvalidValue("mapping", "give a mapping or a mapping_name, not both")
    if name is not None:
        return get_mapping(platform.store, name).columns
    if raw is None or not raw.strip():
        return None
    try:
        return mapping_columns(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidValue("mapping", f"the mapping is not JSON: {exc.msg}") from None
    except MappingError as exc:
        raise InvalidValue("mapping", exc.message) from None


@router.put("/mappings/{name}", response_model=MappingAccepted, responses=ERRORS)
def put_mapping(
    name: str, body: MappingRequest, headers: Headers, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Save a column mapping under a name (replacing the one saved before)."""
    ctx = headers.context(platform, f"import-mapping:{name}", body.model_dump(mode="json"))
    result = save_mapping(platform.store, name, body.kind, dict(body.columns), ctx)
    mark_accepted(result, response)
    return {"name": name, "version": result.version, "position": result.position}


@router.get("/mappings/{name}", response_model=MappingView, responses=ERRORS)
def read_mapping(name: str, platform: PlatformDep) -> dict[str, Any]:
    """A saved column mapping."""
    state = get_mapping(platform.store, name)
    return {
        "name": state.name,
        "kind": state.kind,
        "columns": state.columns,
        "version": state.version,
        "saved_by": state.saved_by,
    }


@router.get(
    "/{kind}/export",
    responses={
        200: {
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The records in the kind's import format",
        },
        422: {"description": "Unknown kind or funnel, or a filter the kind does not take"},
    },
)
def export(
    kind: Annotated[
        str,
        Path_(
            max_length=40,
            description="leads, deals, companies, contacts, or a directory's id (court, "
            "signatory...) for its entries",
        ),
    ],
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: Annotated[
        str | None, Query(max_length=MAX_CODE, description="Leads and deals: the funnel")
    ] = None,
    manager: Annotated[
        str | None, Query(max_length=MAX_CODE, description="Leads and deals: the manager")
    ] = None,
) -> FileResponse:
    """Every record of the kind the viewer sees (leads and deals: the funnel, manager and
    creation period given) in the import format of `leadledger import {kind}` /
    `POST /imports`: importing the file into an empty platform makes the same records,
    into this one adds nothing."""
    filters = ExportFilters(funnel, manager, period.start, period.end)
    found, records = kind_records(
        cursor, kind, platform.funnels, platform.rules, platform.directories, filters
    )
    return export_response(found, records, f"{kind}.xlsx")
