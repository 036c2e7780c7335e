"""The workspace's import page (issue 18 §2), for administrators and top management:
upload a file, choose its kind, the mode and a saved mapping, check it (a dry run: the
refused rows with their row, column and reason, and the errors workbook to download),
then import it, all without sending the file twice.

An uploaded file is kept on the server under a random token (with who uploaded it, its
name, kind, mode and mapping) until it is imported or an hour has passed; only its
uploader may use the token. Every run goes through :func:`commands.imports.import_file`,
the handler ``POST /imports`` calls, with the context the API builds for it.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from aggregates.errors import InvalidValue
from aggregates.users import Principal
from commands.context import StreamNotFound
from commands.imports import get_mapping, import_file
from leadledger.imports.base import Kind, MappingError
from leadledger.imports.files import SourceFile, UnreadableFile
from leadledger.imports.kinds import KINDS
from leadledger.imports.kinds.directories import directory_kind
from leadledger.imports.report import write_errors
from leadledger.imports.runner import ImportConflict, ImportReport
from read_api.excel import XLSX
from workspace.messages import N_
from workspace.pages import (
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    _platform,
    command_context,
    may,
    render,
    require,
)

router = APIRouter()


def export_link(path: str, query: Mapping[str, str | None]) -> str:
    """A list page's "export for import" link, with the list's filters."""
    chosen = {k: v for k, v in query.items() if v}
    return f"{path}?{urlencode(chosen)}" if chosen else path


UPLOADS = Path(tempfile.gettempdir()) / "leadledger-workspace-imports"
KEEP_SECONDS = 3_600
MAX_ERRORS_SHOWN = 200
TOKEN = re.compile(r"^[0-9a-f]{32}$")
MODES = ("all", "rows")
STATUS_LABELS = (
    N_("import_status:dry_run"),
    N_("import_status:imported"),
    N_("import_status:rejected"),
    N_("import_status:already_imported"),
    N_("import_status:nothing"),
)
"""How the page names a report's status (the template looks them up)."""
KIND_LABELS = (N_("import_kind:leads"), N_("import_kind:deals"), N_("import_kind:companies"))
MODE_LABELS = (N_("import_mode:all"), N_("import_mode:rows"))


@dataclass(frozen=True)
class Upload:
    """A file uploaded on the page, kept for its check and its import."""

    token: str
    user: str
    name: str
    kind: str
    mode: str
    mapping_name: str | None
    at: float

    @property
    def folder(self) -> Path:
        return UPLOADS / self.token

    @property
    def path(self) -> Path:
        return self.folder / "file"


def _prune() -> None:
    """Forget the uploads older than KEEP_SECONDS."""
    if not UPLOADS.is_dir():
        return
    now = time.time()
    for folder in UPLOADS.iterdir():
        try:
            if now - folder.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _save(upload: UploadFile, principal: Principal, choice: dict[str, Any]) -> Upload:
    _prune()
    kept = Upload(
        token=uuid4().hex,
        user=principal.user,
        name=Path(upload.filename or "upload").name or "upload",
        at=time.time(),
        **choice,
    )
    kept.folder.mkdir(parents=True, mode=0o700)
    with open(kept.path, "wb") as out:
        shutil.copyfileobj(upload.file, out)
    (kept.folder / "upload.json").write_text(json.dumps(asdict(kept)), encoding="utf-8")
    return kept


def _kept(token: str, principal: Principal) -> Upload:
    """The upload of this token, its uploader's only (else not there: 404)."""
    if not TOKEN.match(token):
        raise PageNotFound
    try:
        raw = json.loads((UPLOADS / token / "upload.json").read_text(encoding="utf-8"))
        kept = Upload(**raw)
    except (OSError, ValueError, TypeError):
        raise PageNotFound from None
    if kept.user != principal.user or not kept.path.is_file():
        raise PageNotFound
    return kept


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _choice(form: FormData) -> dict[str, Any]:
    return {
        "kind": _text(form, "kind") or "",
        "mode": _text(form, "mode") or "all",
        "mapping_name": _text(form, "mapping_name"),
    }


def _page(
    request: Request,
    principal: Principal,
    *,
    choice: dict[str, Any] | None = None,
    upload: Upload | None = None,
    report: ImportReport | None = None,
    failure: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    directories = {k.id: directory_kind(k) for k in _platform(request).directories}
    kinds: dict[str, Kind] = {**KINDS, **directories}
    context = {
        "kinds": list(kinds),
        "directory_names": {k.id: k.name for k in _platform(request).directories},
        "fields": {name: [f.name for f in kind.fields] for name, kind in kinds.items()},
        "modes": MODES,
        "choice": choice or {"kind": "leads", "mode": "all", "mapping_name": None},
        "upload": upload,
        "report": None if report is None else report.as_dict(MAX_ERRORS_SHOWN),
        "failure": failure,
    }
    return render(
        request, "imports/page.html", context, principal=principal, status_code=status_code
    )


@router.get("/imports")
def imports_page(request: Request, principal: Viewer) -> HTMLResponse:
    require(principal, "POST", "/imports")
    return _page(request, principal)


def _run(
    request: Request, principal: Principal, kept: Upload, dry_run: bool
) -> tuple[ImportReport, SourceFile]:
    """Check or import the kept file (the handler ``POST /imports`` calls)."""
    platform = _platform(request)
    mapping = None
    if kept.mapping_name:
        mapping = get_mapping(platform.store, kept.mapping_name).columns
    ctx = command_context(
        request,
        principal,
        Operation("/imports", "run"),
        {},
        "import",
        {"kind": kept.kind, "file": kept.name},
    )
    return import_file(
        platform.store,
        platform.funnels,
        platform.rules,
        ctx,
        kept.kind,
        kept.path,
        file_name=kept.name,
        mapping=mapping,
        mode=kept.mode,  # type: ignore[arg-type]  # checked by import_file
        dry_run=dry_run,
        directories=platform.directories,
    )


def _failure(error: Exception) -> dict[str, Any]:
    """A run refused before any row was decided, in words."""
    if isinstance(error, (MappingError, InvalidValue)):
        return {"field": error.field, "message": error.message, "status": 422}
    if isinstance(error, UnreadableFile):
        return {"field": "file", "message": str(error), "status": 422}
    if isinstance(error, StreamNotFound):
        return {"field": "mapping_name", "message": error.message, "status": 404}
    if isinstance(error, ImportConflict):
        return {"field": None, "message": str(error), "status": 409}
    raise error


REFUSED = (MappingError, InvalidValue, UnreadableFile, StreamNotFound, ImportConflict)


async def _answer(
    request: Request, principal: Principal, kept: Upload, action: str | None
) -> HTMLResponse:
    dry_run = action != "import"
    choice = {"kind": kept.kind, "mode": kept.mode, "mapping_name": kept.mapping_name}
    try:
        report, _ = await run_in_threadpool(_run, request, principal, kept, dry_run)
    except REFUSED as error:
        why = _failure(error)
        return _page(
            request,
            principal,
            choice=choice,
            upload=kept,
            failure=why,
            status_code=why["status"],
        )
    if report.status == "imported":
        platform = _platform(request)
        if report.last_position is not None:
            await platform.projector.reached(
                report.last_position, platform.settings.read_wait_seconds
            )
    done = not dry_run and report.status in ("imported", "already_imported")
    if done:
        shutil.rmtree(kept.folder, ignore_errors=True)
    return _page(request, principal, choice=choice, upload=None if done else kept, report=report)


@router.post("/imports", dependencies=[CsrfChecked])
async def upload_file(request: Request, principal: Viewer) -> HTMLResponse:
    """The upload form: keep the file, then check it or import it."""
    require(principal, "POST", "/imports")
    form = await request.form()
    choice = _choice(form)
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        failure = {"field": "file", "message": "choose a file (XLSX or CSV)", "status": 422}
        return _page(request, principal, choice=choice, failure=failure, status_code=422)
    kept = await run_in_threadpool(_save, file, principal, choice)
    return await _answer(request, principal, kept, _text(form, "action"))


@router.post("/imports/{token}", dependencies=[CsrfChecked])
async def run_kept(request: Request, principal: Viewer, token: str) -> HTMLResponse:
    """Check the kept file again, or import it (the mode may be changed)."""
    require(principal, "POST", "/imports")
    form = await request.form()
    kept = _kept(token, principal)
    mode = _text(form, "mode")
    if mode is not None and mode != kept.mode:
        kept = Upload(**{**asdict(kept), "mode": mode})
        (kept.folder / "upload.json").write_text(json.dumps(asdict(kept)), encoding="utf-8")
    return await _answer(request, principal, kept, _text(form, "action"))


@router.get("/imports/{token}/errors.xlsx")
async def errors_workbook(request: Request, principal: Viewer, token: str) -> Response:
    """The refused rows of the kept file as they were, their reasons beside them."""
    require(principal, "POST", "/imports")
    kept = _kept(token, principal)

    def write() -> Path:
        report, source = _run(request, principal, kept, dry_run=True)
        return _workbook(source, report)

    try:
        path = await run_in_threadpool(write)
    except REFUSED as error:
        why = _failure(error)
        return _page(request, principal, upload=kept, failure=why, status_code=why["status"])
    stem = Path(kept.name).stem or "import"
    return FileResponse(
        path,
        media_type=XLSX,
        filename=f"{stem}-errors.xlsx",
        background=BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True),
    )


def _workbook(source: SourceFile, report: ImportReport) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="leadledger-import-errors-"))
    path = folder / "errors.xlsx"
    write_errors(source, report, path)
    return path


def sections(principal: Principal) -> list[tuple[str, str]]:
    """The navigation's entry for the import page (administrators and top management)."""
    return [(f"{PREFIX}/imports", "Import")] if may(principal, "POST", "/imports") else []
