"""The shared directories (courts, opponents, consultants, lawyers, experts and
signatories): their kinds, entries, cards and links; and the signatories report."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from aggregates import directory_entry as entries
from commands.context import CommandResult, StreamNotFound
from commands.directories import (
    entry_id_for,
    link_entry,
    register_entry,
    require_kind,
    unlink_entry,
    update_entry,
)
from leadledger.imports.export import XLSX, export_response
from leadledger.imports.kinds.directories import directory_kind
from leadledger.wiring import Platform
from queries import directories as directory_queries
from read_api.deps import CommandHeadersDep, PlatformDep, ReadCursor, mark_accepted
from schemas.directories import (
    EntryAccepted,
    EntryCard,
    EntryPage,
    EntryRequest,
    EntryUpdateRequest,
    KindList,
    LinkRequest,
    SignatoriesReport,
)
from schemas.limits import MAX_CODE, MAX_QUERY_TEXT

router = APIRouter(prefix="/directories", tags=["directories"])
reports = APIRouter(tags=["reports"])

Headers = CommandHeadersDep
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown directory kind or entry"},
    409: {"description": "Already linked, not linked, no change, or a version conflict"},
    422: {"description": "Invalid body or value; names the field"},
}


def _accepted(result: CommandResult, response: Response) -> EntryAccepted:
    mark_accepted(result, response)
    return EntryAccepted(
        entry_id=result.stream_id, version=result.version, position=result.position
    )


def kinds_of(platform: Platform) -> dict[str, Any]:
    return {
        "kinds": [
            {
                "id": k.id,
                "name": k.name,
                "title_field": k.title_field,
                "fields": [
                    {"id": f.id, "name": f.name, "type": f.type, "required": f.required}
                    for f in k.fields
                ],
                "roles": {t: list(r) for t, r in k.roles.items()},
            }
            for k in platform.directories
        ]
    }


@router.get("", response_model=KindList)
def list_kinds(platform: PlatformDep) -> dict[str, Any]:
    """The configured kinds of directory, their fields and link roles."""
    return kinds_of(platform)


@router.post("/{kind}", status_code=201, response_model=EntryAccepted, responses=ERRORS)
def register(
    kind: str, body: EntryRequest, headers: Headers, platform: PlatformDep, response: Response
) -> EntryAccepted:
    """Add an entry to the kind's directory."""
    configured = require_kind(platform.directories, kind)
    ctx = headers.context(
        platform,
        f"register-entry:{kind}",
        {"command": "register", "kind": kind, **body.model_dump()},
    )
    command = entries.RegisterEntry(entry_id_for(ctx.command_id), dict(body.fields))
    result = register_entry(platform.store, configured, command, ctx)
    response.headers["Location"] = f"/directories/{kind}/{result.stream_id}"
    return _accepted(result, response)


@router.put("/{kind}/{entry_id}", response_model=EntryAccepted, responses=ERRORS)
def update(
    kind: str,
    entry_id: UUID,
    body: EntryUpdateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> EntryAccepted:
    """Change the entry's fields; only those sent are changed."""
    configured = require_kind(platform.directories, kind)
    request = {"command": "card", "entry_id": str(entry_id), **body.model_dump()}
    ctx = headers.context(platform, f"entry:{entry_id}", request)
    command = entries.UpdateEntry(dict(body.fields))
    return _accepted(update_entry(platform.store, configured, entry_id, command, ctx), response)


@router.post("/{kind}/{entry_id}/links", response_model=EntryAccepted, responses=ERRORS)
def link(
    kind: str,
    entry_id: UUID,
    body: LinkRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> EntryAccepted:
    """Link the entry to a lead or a project with a role the kind declares."""
    configured = require_kind(platform.directories, kind)
    request = {"command": "link", "entry_id": str(entry_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"entry:{entry_id}", request)
    command = entries.LinkEntry(body.target, body.target_id, body.role)
    return _accepted(link_entry(platform.store, configured, entry_id, command, ctx), response)


@router.post("/{kind}/{entry_id}/unlink", response_model=EntryAccepted, responses=ERRORS)
def unlink(
    kind: str,
    entry_id: UUID,
    body: LinkRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> EntryAccepted:
    """Remove one link of the entry."""
    configured = require_kind(platform.directories, kind)
    request = {"command": "unlink", "entry_id": str(entry_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"entry:{entry_id}", request)
    command = entries.UnlinkEntry(body.target, body.target_id, body.role)
    return _accepted(unlink_entry(platform.store, configured, entry_id, command, ctx), response)


@router.get(
    "/{kind}",
    response_model=EntryPage,
    responses={
        200: {
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The page (JSON), or with format=xlsx the kind's entries as its "
            "import reads them",
        },
        404: ERRORS[404],
    },
)
def list_entries(
    kind: str,
    platform: PlatformDep,
    cursor: ReadCursor,
    q: Annotated[
        str | None, Query(max_length=MAX_QUERY_TEXT, description="Part of any field")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    format: Annotated[
        Literal["json", "xlsx"],
        Query(
            description="xlsx: every entry matching q (not paged) in the import format of "
            "`leadledger import {kind}` / `POST /imports` with kind={kind}: it imports back "
            "as the same entries"
        ),
    ] = "json",
) -> Any:
    """The kind's entries by title, each with its number of links."""
    configured = require_kind(platform.directories, kind)
    if format == "xlsx":
        records = directory_queries.entries_export(cursor, kind, configured.field_ids, q)
        return export_response(directory_kind(configured), records, f"{kind}.xlsx")
    items, total = directory_queries.list_entries(cursor, kind, q, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{kind}/{entry_id}", response_model=EntryCard, responses={404: ERRORS[404]})
def get_entry(
    kind: str, entry_id: UUID, platform: PlatformDep, cursor: ReadCursor
) -> dict[str, Any]:
    """The entry's card: its fields and the leads and projects it is linked to (those the
    viewer sees, with their titles and statuses)."""
    require_kind(platform.directories, kind)
    card = directory_queries.entry_card(cursor, kind, str(entry_id))
    if card is None:
        raise StreamNotFound(f"{kind} entry {entry_id} not found")
    return card


@reports.get("/reports/signatories", response_model=SignatoriesReport)
def signatories_report(
    cursor: ReadCursor,
    status: Annotated[
        list[Annotated[str, Query(max_length=MAX_CODE)]] | None,
        Query(max_length=50, description="Only projects in these statuses (repeatable)"),
    ] = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Signatories and the projects they sign (the projects the viewer sees), filterable
    by project status, e.g. every project at closing and its signatories."""
    statuses = sorted({s.strip() for s in status or [] if s.strip()})
    return directory_queries.signatories_report(cursor, statuses, limit, offset)
