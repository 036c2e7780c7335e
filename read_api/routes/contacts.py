"""Contacts: register, edit, list with search, card (with the leads naming it), history."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from aggregates import contact
from commands.contacts import contact_id_for, register_contact, update_contact
from commands.context import CommandResult, StreamNotFound
from leadledger.imports.export import XLSX, export_response
from leadledger.imports.kinds import KINDS
from queries import contacts as contact_queries
from read_api.deps import CommandHeadersDep, PlatformDep, ReadCursor, mark_accepted
from schemas.contacts import (
    ContactAccepted,
    ContactCard,
    ContactPage,
    ContactRequest,
    ContactUpdateRequest,
)
from schemas.limits import MAX_QUERY_TEXT

router = APIRouter(prefix="/contacts", tags=["contacts"])

Headers = CommandHeadersDep
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown contact"},
    409: {
        "description": "A phone or e-mail another contact has (rule likely_duplicate, with "
        "that contact's contact_id and the field), no change, or a version conflict"
    },
    422: {"description": "Invalid body, header or value; names the field"},
}


def _accepted(result: CommandResult, response: Response) -> ContactAccepted:
    mark_accepted(result, response)
    return ContactAccepted(
        contact_id=result.stream_id, version=result.version, position=result.position
    )


@router.post("", status_code=201, response_model=ContactAccepted, responses=ERRORS)
def register(
    body: ContactRequest, headers: Headers, platform: PlatformDep, response: Response
) -> ContactAccepted:
    """Add a contact (a person: name, phones, e-mails, position, companies, notes)."""
    ctx = headers.context(
        platform, "register-contact", {"command": "register", **body.model_dump(mode="json")}
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
    result = register_contact(platform.store, command, ctx)
    response.headers["Location"] = f"/contacts/{result.stream_id}"
    return _accepted(result, response)


@router.put("/{contact_id}", response_model=ContactAccepted, responses=ERRORS)
def update(
    contact_id: UUID,
    body: ContactUpdateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ContactAccepted:
    """Change the contact's card; only the fields sent are changed (lists whole)."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    request = {"command": "card", "contact_id": str(contact_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"contact:{contact_id}", request)
    result = update_contact(platform.store, contact_id, contact.UpdateContact(changes), ctx)
    return _accepted(result, response)


@router.get(
    "",
    response_model=ContactPage,
    responses={
        200: {
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The page (JSON), or with format=xlsx every contact the viewer "
            "sees as the contacts import reads it",
        }
    },
)
def list_contacts(
    cursor: ReadCursor,
    q: Annotated[
        str | None,
        Query(max_length=MAX_QUERY_TEXT, description="Part of a name, a phone or an e-mail"),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    format: Annotated[
        Literal["json", "xlsx"],
        Query(
            description="xlsx: every contact matching q (not paged) in the import format of "
            "`leadledger import contacts` / `POST /imports`: it imports back as the same "
            "records"
        ),
    ] = "json",
) -> Any:
    """The contacts the viewer sees, by name, each with the number of leads naming it."""
    if format == "xlsx":
        records = contact_queries.contacts_export(cursor, q)
        return export_response(KINDS["contacts"], records, "contacts.xlsx")
    items, total = contact_queries.list_contacts(cursor, q, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{contact_id}", response_model=ContactCard, responses={404: ERRORS[404]})
def get_contact(contact_id: UUID, cursor: ReadCursor) -> dict[str, Any]:
    """The contact's card and the leads naming it."""
    card = contact_queries.contact_card(cursor, str(contact_id))
    if card is None:
        raise StreamNotFound(f"contact {contact_id} not found")
    return card
