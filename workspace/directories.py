"""The shared directories in the workspace: each kind's list and an entry's card (one
template pair for every kind), adding and editing entries, and linking an entry to a lead
or a project — through the API's handlers, guards and queries."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from aggregates import directory_entry as entries
from aggregates.users import Principal
from commands.context import CommandResult
from commands.directories import (
    entry_id_for,
    link_entry,
    register_entry,
    require_kind,
    unlink_entry,
    update_entry,
)
from leadledger.imports.export import export_response
from leadledger.imports.kinds.directories import directory_kind
from queries.directories import entries_export, entry_card, list_entries
from read_api.access import read_models
from schemas.directories import EntryRequest, EntryUpdateRequest, LinkRequest
from workspace.imports import export_link
from workspace.leads import _message
from workspace.pages import (
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    _platform,
    command_context,
    may,
    offset_of,
    pager,
    post_form,
    render,
    require,
)

router = APIRouter()
PAGE_SIZE = 25


def sections(principal: Principal) -> list[tuple[str, str]]:
    """The navigation entry of the directories (every kind is a tab of its page)."""
    return (
        [(f"{PREFIX}/directories", "Directories")] if may(principal, "GET", "/directories") else []
    )


def _kind(request: Request, kind: str) -> entries.DirectoryKind:
    try:
        return require_kind(_platform(request).directories, kind)
    except Exception:
        raise PageNotFound from None


def _entry_uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise PageNotFound from None


def _kinds(request: Request) -> list[str]:
    return list(_platform(request).directories.kinds)


def _form_fields(kind: entries.DirectoryKind, form: FormData) -> dict[str, str | None]:
    """The kind's fields from the form (an empty one: none)."""
    fields: dict[str, str | None] = {}
    for spec in kind.fields:
        raw = form.get(f"field_{spec.id}")
        if isinstance(raw, str):
            fields[spec.id] = raw.strip() or None
    return fields


@router.get("/directories")
def first_directory(request: Request, principal: Viewer) -> Response:
    require(principal, "GET", "/directories")
    return directory_list(request, principal, _kinds(request)[0])


@router.get("/directories/{kind}")
def directory_list(
    request: Request,
    principal: Viewer,
    kind: str,
    new_entry: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/directories/{kind}")
    configured = _kind(request, kind)
    q = (request.query_params.get("q") or "").strip()[:100]
    offset = offset_of(request.query_params.get("offset"))
    with read_models(_platform(request), principal) as cursor:
        items, total = list_entries(cursor, kind, q or None, PAGE_SIZE, offset)
    context = {
        "kinds": _kinds(request),
        "names": {k.id: k.name for k in _platform(request).directories},
        "kind": configured,
        "items": items,
        "total": total,
        "q": q,
        "page": pager(f"{PREFIX}/directories/{kind}", {"q": q}, offset, PAGE_SIZE, total),
        "export": export_link(f"{PREFIX}/directories/{kind}/export.xlsx", {"q": q}),
        "may_create": may(principal, "POST", "/directories/{kind}"),
        "new_entry": new_entry or {"values": {}, "error": None, "key": uuid4().hex},
    }
    return render(
        request, "directories/list.html", context, principal=principal, status_code=status_code
    )


@router.post("/directories/{kind}", dependencies=[CsrfChecked])
async def new_entry(request: Request, principal: Viewer, kind: str) -> Response:
    require(principal, "POST", "/directories/{kind}")
    configured = _kind(request, kind)
    form = await request.form()
    platform = _platform(request)
    fields = {k: v for k, v in _form_fields(configured, form).items() if v is not None}

    def apply() -> CommandResult:
        body = EntryRequest.model_validate({"fields": fields})
        ctx = command_context(
            request,
            principal,
            Operation("/directories/{kind}", "register"),
            {"kind": kind},
            f"register-entry:{kind}",
            {"command": "register", "kind": kind, **body.model_dump()},
            key=form.get("idempotency_key"),
        )
        command = entries.RegisterEntry(entry_id_for(ctx.command_id), dict(body.fields))
        return register_entry(platform.store, configured, command, ctx)

    def refused(error: Exception) -> Response:
        message, code = _message(error)
        state = {"values": fields, "error": message, "key": form.get("idempotency_key")}
        return directory_list(request, principal, kind, new_entry=state, status_code=code)

    return await post_form(
        request, apply, refused, lambda r: f"{PREFIX}/directories/{kind}/{r.stream_id}"
    )


@router.get("/directories/{kind}/export.xlsx")
def directory_export(request: Request, principal: Viewer, kind: str) -> Response:
    """The kind's entries (matching ``q``) in the directory import's format."""
    require(principal, "GET", "/directories/{kind}")
    configured = _kind(request, kind)
    q = (request.query_params.get("q") or "").strip()[:100] or None
    with read_models(_platform(request), principal) as cursor:
        return export_response(
            directory_kind(configured),
            entries_export(cursor, kind, configured.field_ids, q),
            f"{kind}.xlsx",
        )


@router.get("/directories/{kind}/{entry_id}")
def entry_page(
    request: Request,
    principal: Viewer,
    kind: str,
    entry_id: str,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/directories/{kind}/{entry_id}")
    configured = _kind(request, kind)
    entry_uuid = _entry_uuid(entry_id)
    with read_models(_platform(request), principal) as cursor:
        card = entry_card(cursor, kind, str(entry_uuid))
    if card is None:
        raise PageNotFound
    prefill = request.query_params.get("lead") or ""
    context = {
        "kinds": _kinds(request),
        "kind": configured,
        "card": card,
        "may_edit": may(principal, "PUT", "/directories/{kind}/{entry_id}"),
        "targets": [(t, list(roles)) for t, roles in configured.roles.items()],
        "prefill": prefill,
        "error": error,
    }
    return render(
        request, "directories/card.html", context, principal=principal, status_code=status_code
    )


@router.post("/directories/{kind}/{entry_id}/{action}", dependencies=[CsrfChecked])
async def entry_action(
    request: Request, principal: Viewer, kind: str, entry_id: str, action: str
) -> Response:
    """Edit the entry (``card``), link it (``link``) or remove a link (``unlink``)."""
    paths = {
        "card": ("PUT", "/directories/{kind}/{entry_id}", "update"),
        "link": ("POST", "/directories/{kind}/{entry_id}/links", "link"),
        "unlink": ("POST", "/directories/{kind}/{entry_id}/unlink", "unlink"),
    }
    if action not in paths:
        raise PageNotFound
    method, path, name = paths[action]
    require(principal, method, path)
    configured = _kind(request, kind)
    entry_uuid = _entry_uuid(entry_id)
    form = await request.form()
    platform = _platform(request)

    def apply() -> CommandResult:
        ctx_args = (
            request,
            principal,
            Operation(path, name),
            {"kind": kind, "entry_id": str(entry_uuid)},
            f"entry:{entry_uuid}",
        )
        if action == "card":
            fields = _form_fields(configured, form)
            body = EntryUpdateRequest.model_validate({"fields": fields})
            changes = {k: v for k, v in body.fields.items() if v != (form.get(f"old_{k}") or None)}
            request_body = {"command": "card", "entry_id": str(entry_uuid), "fields": changes}
            ctx = command_context(*ctx_args, request_body, key=form.get("idempotency_key"))
            command = entries.UpdateEntry(changes)
            return update_entry(platform.store, configured, entry_uuid, command, ctx)
        raw = {k: form.get(k) for k in ("target", "target_id", "role")}
        link = LinkRequest.model_validate(raw)
        request_body = {
            "command": action,
            "entry_id": str(entry_uuid),
            **link.model_dump(mode="json"),
        }
        ctx = command_context(*ctx_args, request_body, key=form.get("idempotency_key"))
        if action == "link":
            linked = entries.LinkEntry(link.target, link.target_id, link.role)
            return link_entry(platform.store, configured, entry_uuid, linked, ctx)
        unlinked = entries.UnlinkEntry(link.target, link.target_id, link.role)
        return unlink_entry(platform.store, configured, entry_uuid, unlinked, ctx)

    def refused(error: Exception) -> Response:
        message, code = _message(error)
        return entry_page(
            request,
            principal,
            kind,
            entry_id,
            error={"action": action, "message": message},
            status_code=code,
        )

    return await post_form(request, apply, refused, f"{PREFIX}/directories/{kind}/{entry_uuid}")
