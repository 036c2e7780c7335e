"""Contacts in the workspace: the list with search, a contact's card with the leads naming
it, adding and editing a contact, and a new lead naming the contact — through the API's
handlers, guards and queries."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from aggregates import contact
from aggregates.users import Principal
from commands.contacts import contact_id_for, register_contact, update_contact
from commands.context import CommandResult
from leadledger.imports.export import export_response
from leadledger.imports.kinds import KINDS
from queries.contacts import contact_card, list_contacts
from queries.contacts import contacts_export as contacts_export_rows
from read_api.access import read_models
from schemas.contacts import ContactRequest, ContactUpdateRequest
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
TEXT_FIELDS = ("name", "position", "notes")
LIST_FIELDS = ("phones", "emails", "companies")


def sections(principal: Principal) -> list[tuple[str, str]]:
    return [(f"{PREFIX}/contacts", "Contacts")] if may(principal, "GET", "/contacts") else []


def _body(form: FormData) -> dict[str, Any]:
    """The form's contact: text fields, and lists typed one per line or comma-separated."""
    body: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        raw = form.get(name)
        if isinstance(raw, str) and raw.strip():
            body[name] = raw.strip()
    for name in LIST_FIELDS:
        raw = form.get(name)
        if isinstance(raw, str):
            body[name] = [v.strip() for v in raw.replace("\n", ",").split(",") if v.strip()]
    return body


@router.get("/contacts")
def contacts_page(
    request: Request,
    principal: Viewer,
    new_contact: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/contacts")
    q = (request.query_params.get("q") or "").strip()[:100]
    offset = offset_of(request.query_params.get("offset"))
    with read_models(_platform(request), principal) as cursor:
        items, total = list_contacts(cursor, q or None, PAGE_SIZE, offset)
    context = {
        "items": items,
        "total": total,
        "q": q,
        "page": pager(f"{PREFIX}/contacts", {"q": q}, offset, PAGE_SIZE, total),
        "export": export_link(f"{PREFIX}/contacts/export.xlsx", {"q": q}),
        "may_create": may(principal, "POST", "/contacts"),
        "new_contact": new_contact or {"values": {}, "error": None, "key": uuid4().hex},
    }
    return render(
        request, "contacts/list.html", context, principal=principal, status_code=status_code
    )


@router.post("/contacts", dependencies=[CsrfChecked])
async def new_contact(request: Request, principal: Viewer) -> Response:
    require(principal, "POST", "/contacts")
    form = await request.form()
    platform = _platform(request)
    raw = _body(form)

    def apply() -> CommandResult:
        body = ContactRequest.model_validate(raw)
        ctx = command_context(
            request,
            principal,
            Operation("/contacts", "register"),
            {},
            "register-contact",
            {"command": "register", **body.model_dump(mode="json")},
            key=form.get("idempotency_key"),
        )
        command = contact.RegisterContact(
            contact_id=contact_id_for(ctx.command_id),
            name=body.name,
            phones=tuple(body.phones),
            emails=tuple(body.emails),
            position=body.position,
            companies=tuple(body.companies),
            notes=body.notes,
        )
        return register_contact(platform.store, command, ctx)

    def refused(error: Exception) -> Response:
        message, code = _message(error)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        state = {"values": values, "error": message, "key": form.get("idempotency_key")}
        return contacts_page(request, principal, new_contact=state, status_code=code)

    return await post_form(request, apply, refused, lambda r: f"{PREFIX}/contacts/{r.stream_id}")


def _contact_uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise PageNotFound from None


@router.get("/contacts/export.xlsx")
def contacts_export(
    request: Request, principal: Viewer, q: Annotated[str | None, Query(max_length=100)] = None
) -> Response:
    """The contacts the viewer sees (matching ``q``) in the contacts import's format."""
    require(principal, "GET", "/contacts")
    with read_models(_platform(request), principal) as cursor:
        return export_response(
            KINDS["contacts"],
            contacts_export_rows(cursor, (q or "").strip() or None),
            "contacts.xlsx",
        )


@router.get("/contacts/{contact_id}")
def contact_page(
    request: Request,
    principal: Viewer,
    contact_id: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/contacts/{contact_id}")
    contact_uuid = _contact_uuid(contact_id)
    platform = _platform(request)
    with read_models(platform, principal) as cursor:
        card = contact_card(cursor, str(contact_uuid))
    if card is None:
        raise PageNotFound
    context = {
        "card": card,
        "error": error,
        "may_edit": may(principal, "PUT", "/contacts/{contact_id}"),
        "may_create_lead": may(principal, "POST", "/leads"),
        "funnels": [(f.id, f.name) for f in platform.funnels.values()],
        "key": uuid4().hex,
    }
    return render(
        request, "contacts/card.html", context, principal=principal, status_code=status_code
    )


@router.post("/contacts/{contact_id}/card", dependencies=[CsrfChecked])
async def edit_contact(request: Request, principal: Viewer, contact_id: str) -> Response:
    require(principal, "PUT", "/contacts/{contact_id}")
    contact_uuid = _contact_uuid(contact_id)
    form = await request.form()
    platform = _platform(request)
    raw = _body(form)

    def apply() -> CommandResult:
        body = ContactUpdateRequest.model_validate(raw)
        changes = {f: getattr(body, f) for f in body.model_fields_set}
        request_body = {"command": "card", "contact_id": str(contact_uuid), **raw}
        ctx = command_context(
            request,
            principal,
            Operation("/contacts/{contact_id}", "update"),
            {"contact_id": str(contact_uuid)},
            f"contact:{contact_uuid}",
            request_body,
            key=form.get("idempotency_key"),
            method="PUT",
        )
        return update_contact(platform.store, contact_uuid, contact.UpdateContact(changes), ctx)

    def refused(error: Exception) -> Response:
        message, code = _message(error)
        return contact_page(request, principal, contact_id, error=message, status_code=code)

    return await post_form(request, apply, refused, f"{PREFIX}/contacts/{contact_uuid}")
