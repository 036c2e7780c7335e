"""The workspace's company pages: the directory (search, filters, pager, "New company"),
a company's card (its fields, the edit form, the merge form for heads and top
management) and the client card (totals and one timeline).

Every form goes through the API's own handler with the API's guard and scope
(:func:`workspace.pages.command_context`); a likely duplicate is shown in the refusal's
words with a link to the existing record. Every page reads through the query its API
route calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from aggregates import company
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from aggregates.users import Principal
from commands.companies import change_company_card, company_id_for, merge_company, register_company
from commands.context import CommandFailed, CommandResult, StreamNotFound, VersionConflict
from leadledger.imports.export import export_response
from leadledger.imports.kinds import KINDS
from queries import clients, companies
from read_api.access import read_models
from read_api.routes.companies import must_see
from schemas.companies import CARD_FIELDS, CompanyCard, CompanyRequest, MergeRequest
from workspace.imports import export_link
from workspace.messages import N_
from workspace.pages import (
    PAGE_SIZE,
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
TIMELINE_KINDS = (
    N_("lead_created"),
    N_("lead_closed"),
    N_("deal_created"),
    N_("deal_closed"),
    N_("activity"),
    N_("project_created"),
    N_("invoice"),
    N_("payment"),
)
"""The kinds of the client card's timeline entries, as the page names them."""
FILTER_LABELS = (N_("Name or tax id"), N_("Industry"), N_("Region"), N_("City"))
"""The directory's filter labels (the template names them)."""
FILTERS = ("search", "industry", "region", "city")
TIMELINE_ROWS = 50


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _card_values(form: FormData) -> dict[str, Any]:
    return {name: _text(form, name) for name in CARD_FIELDS}


def refusal(error: Exception) -> dict[str, Any]:
    """A refused form in words: the field or rule, the message, and for a likely
    duplicate the existing record's id (the page links to it)."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        return {"field": field, "message": first["msg"], "code": "invalid", "status": 422}
    if isinstance(error, InvalidValue):
        return {"field": error.field, "message": error.message, "code": "invalid", "status": 422}
    if isinstance(error, RuleViolation):
        return {
            "rule": error.rule,
            "message": error.message,
            "code": "rule",
            "existing": error.details.get("existing_company_id"),
            "merged_into": error.details.get("merged_into"),
            "status": 409,
        }
    if isinstance(error, VersionConflict):
        return {"message": error.message, "code": "version_conflict", "status": 409}
    if isinstance(error, NotPermitted):
        return {"rule": error.rule, "message": error.message, "code": "forbidden", "status": 403}
    if isinstance(error, DomainError | CommandFailed):
        return {"message": error.message, "code": "refused", "status": 409}
    raise error


# --- the directory --------------------------------------------------------------------------


@router.get("/companies")
def company_list(
    request: Request,
    principal: Viewer,
    search: Annotated[str | None, Query(max_length=200)] = None,
    industry: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    city: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    chosen = {"search": search, "industry": industry, "region": region, "city": city}
    return _list_page(request, principal, chosen, offset_of(offset))


def _list_page(
    request: Request,
    principal: Principal,
    chosen: dict[str, str | None],
    offset: int,
    *,
    new_company: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/companies")
    platform = _platform(request)
    chosen = {k: (v or "").strip() or None for k, v in chosen.items()}
    filters = companies.CompanyFilters(
        chosen["search"], chosen["industry"], chosen["region"], chosen["city"]
    )
    with read_models(platform, principal) as cursor:
        items, total = companies.list_companies(cursor, filters, PAGE_SIZE, offset)
    context = {
        "items": items,
        "total": total,
        "chosen": chosen,
        "page": pager(f"{PREFIX}/companies", chosen, offset, PAGE_SIZE, total),
        "export": export_link(f"{PREFIX}/companies/export.xlsx", chosen),
        "may_create": may(principal, "POST", "/companies"),
        "new_company": new_company or {"values": {}, "error": None, "key": uuid4().hex},
    }
    return render(
        request, "companies/list.html", context, principal=principal, status_code=status_code
    )


@router.post("/companies", dependencies=[CsrfChecked])
async def new_company(request: Request, principal: Viewer) -> Response:
    """The "New company" form: POST /companies's handler."""
    form = await request.form()
    require(principal, "POST", "/companies")
    platform = _platform(request)
    values = _card_values(form)
    different = form.get("different_company") == "1"

    def apply() -> CommandResult:
        body = CompanyRequest.model_validate(
            {**{k: v for k, v in values.items() if v is not None}, "different_company": different}
        )
        payload = {"command": "register", **body.model_dump(mode="json")}
        ctx = command_context(
            request,
            principal,
            Operation("/companies", "register"),
            {},
            "register-company",
            payload,
            key=_text(form, "key"),
        )
        command = company.RegisterCompany(
            company_id_for(ctx.command_id), body.card(), body.different_company
        )
        return register_company(platform.store, command, ctx)

    def refused(error: Exception) -> Response:
        why = refusal(error)
        return _list_page(
            request,
            principal,
            dict.fromkeys(FILTERS),
            0,
            new_company={
                "values": {**values, "different_company": different},
                "error": why,
                "key": _text(form, "key"),
            },
            status_code=why["status"],
        )

    def target(result: CommandResult) -> str:
        events = platform.store.load(result.stream_id)
        added = events[0].event
        return f"{PREFIX}/companies/{getattr(added, 'company_id', '')}"

    return await post_form(request, apply, refused, target)


# --- a company's card -----------------------------------------------------------------------


def _card_page(
    request: Request,
    principal: Principal,
    company_id: str,
    *,
    failure: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/companies/{company_id}")
    platform = _platform(request)
    with read_models(platform, principal) as cursor:
        record = companies.company_record(cursor, company_id)
    if record is None:
        raise PageNotFound
    merged = record["merged_into"] is not None
    context = {
        "company": record,
        "fields": CARD_FIELDS,
        "failure": failure,
        "done": request.query_params.get("done"),
        "may_edit": not merged and may(principal, "PUT", "/companies/{company_id}"),
        "may_merge": not merged and may(principal, "POST", "/companies/{company_id}/merge"),
        "keys": {"card": uuid4().hex, "merge": uuid4().hex},
    }
    return render(
        request, "companies/card.html", context, principal=principal, status_code=status_code
    )


@router.get("/companies/export.xlsx")
def company_export(
    request: Request,
    principal: Viewer,
    search: Annotated[str | None, Query(max_length=200)] = None,
    industry: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    city: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The companies the viewer sees (with the list's filters) in the companies import's
    format."""
    require(principal, "GET", "/companies")
    text = [(v or "").strip() or None for v in (search, industry, region, city)]
    filters = companies.CompanyFilters(text[0], text[1], text[2], text[3])
    with read_models(_platform(request), principal) as cursor:
        return export_response(
            KINDS["companies"], companies.directory_export(cursor, filters), "companies.xlsx"
        )


@router.get("/companies/{company_id}")
def company_card(request: Request, principal: Viewer, company_id: str) -> HTMLResponse:
    return _card_page(request, principal, company_id)


def _seen(request: Request, principal: Principal, company_id: str) -> None:
    try:
        must_see(_platform(request), principal, company_id)
    except StreamNotFound:
        raise PageNotFound from None


async def _company_form(
    request: Request,
    principal: Principal,
    company_id: str,
    form_name: str,
    run: Callable[[FormData], CommandResult],
) -> Response:
    form = await request.form()

    def refused(error: Exception) -> Response:
        why = {**refusal(error), "form": form_name, "values": dict(form)}
        return _card_page(request, principal, company_id, failure=why, status_code=why["status"])

    return await post_form(
        request,
        lambda: run(form),
        refused,
        f"{PREFIX}/companies/{company_id}?done={form_name}",
    )


@router.post("/companies/{company_id}/card", dependencies=[CsrfChecked])
async def edit_company(request: Request, principal: Viewer, company_id: str) -> Response:
    """The edit form: PUT /companies/{id} with the card's version as If-Match."""
    require(principal, "PUT", "/companies/{company_id}")
    _seen(request, principal, company_id)
    platform = _platform(request)

    def run(form: FormData) -> CommandResult:
        values = _card_values(form)
        different = form.get("different_company") == "1"
        body = CompanyCard.model_validate(
            {**{k: v for k, v in values.items() if v is not None}, "different_company": different}
        )
        payload = {"command": "card", "company_id": company_id, **body.model_dump(mode="json")}
        ctx = command_context(
            request,
            principal,
            Operation("/companies/{company_id}", "replace_card"),
            {"company_id": company_id},
            f"company:{company_id}",
            payload,
            version=_text(form, "version"),
            key=_text(form, "key"),
            method="PUT",
        )
        command = company.ChangeCompanyCard(body.card(), True, body.different_company)
        return change_company_card(platform.store, company_id, command, ctx)

    return await _company_form(request, principal, company_id, "card", run)


@router.post("/companies/{company_id}/merge", dependencies=[CsrfChecked])
async def merge_form(request: Request, principal: Viewer, company_id: str) -> Response:
    """The merge form (heads and top management): POST /companies/{id}/merge."""
    require(principal, "POST", "/companies/{company_id}/merge")
    _seen(request, principal, company_id)
    platform = _platform(request)

    def run(form: FormData) -> CommandResult:
        body = MergeRequest.model_validate({"into": _text(form, "into") or ""})
        must_see(platform, principal, body.into)
        payload = {"command": "merge", "company_id": company_id, **body.model_dump(mode="json")}
        ctx = command_context(
            request,
            principal,
            Operation("/companies/{company_id}/merge", "merge"),
            {"company_id": company_id},
            f"company:{company_id}",
            payload,
            key=_text(form, "key"),
        )
        return merge_company(platform.store, company_id, company.MergeCompany(body.into), ctx)

    return await _company_form(request, principal, company_id, "merge", run)


# --- the client card ------------------------------------------------------------------------


@router.get("/clients/{company_id}")
def client_card(
    request: Request,
    principal: Viewer,
    company_id: str,
    offset: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    require(principal, "GET", "/clients/{company_id}")
    platform = _platform(request)
    start = offset_of(offset)
    with read_models(platform, principal) as cursor:
        card = clients.client_card(
            cursor,
            company_id,
            platform.clock(),
            platform.rules.sales.dormant_after_days,
            TIMELINE_ROWS,
            start,
        )
    if card is None:
        raise PageNotFound
    context = {
        "card": card,
        "page": pager(f"{PREFIX}/clients/{company_id}", {}, start, TIMELINE_ROWS, card["total"]),
    }
    return render(request, "companies/client.html", context, principal=principal)
