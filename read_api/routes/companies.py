"""The company directory (register, change, merge, list, read, history), the client card
and the deal volume by client industry.

A scoped viewer (a manager, a head, an assistant) sees the companies of the records in
their scope and of the client directions held there, and those they registered: any
other company is not there for them (404), for reads and commands alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import FileResponse

from aggregates import company
from aggregates.users import Principal
from commands.companies import (
    change_company_card,
    company_id_for,
    load_company_records,
    merge_company,
    register_company,
)
from commands.context import CommandResult, StreamNotFound
from event_store.codec import dumps_http
from leadledger.imports.export import export_response
from leadledger.imports.kinds import KINDS
from leadledger.wiring import Platform
from queries import clients, companies
from queries.history import stream_history
from read_api.access import current_user, visible
from read_api.deps import (
    CommandHeaders,
    CommandHeadersDep,
    Period,
    PlatformDep,
    ReadCursor,
    mark_accepted,
)
from read_api.errors import BadRequestValue
from read_api.excel import XLSX
from schemas.companies import (
    ClientCard,
    CompanyAccepted,
    CompanyCard,
    CompanyHistory,
    CompanyPage,
    CompanyPatch,
    CompanyRecord,
    CompanyRequest,
    DealVolumeReport,
    MergeRequest,
)
from schemas.limits import MAX_CODE

router = APIRouter(tags=["companies"])

Headers = CommandHeadersDep
Viewer = Annotated[Principal, Depends(current_user)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
CompanyId = Annotated[str, Path(max_length=MAX_CODE, description="The company's id")]
Text = Annotated[str | None, Query(max_length=MAX_CODE)]
PeriodDep = Annotated[Period, Depends()]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The role may not do this"},
    404: {"description": "Unknown company (or outside the viewer's scope)"},
    409: {
        "description": "likely_duplicate (the same tax id, or the same name in the same city: "
        "names existing_company_id), company_merged (a merged record is read-only), "
        "company_unchanged, or a version conflict"
    },
    422: {"description": "Invalid body, header or value; names the field"},
}


def _accepted(company_id: str, result: CommandResult, response: Response) -> CompanyAccepted:
    mark_accepted(result, response)
    return CompanyAccepted(company_id=company_id, version=result.version, position=result.position)


def must_see(platform: Platform, principal: Principal, company_id: str) -> None:
    """A company outside a scoped viewer's read models is not there (404). One the read
    models have not caught up with yet is looked up again once they have."""
    if principal.sees_everything:
        return
    if visible(platform, principal, "companies", "company_id", company_id):
        return
    head = platform.store.last_position()
    behind = platform.projector.position < head
    if (
        behind
        and platform.projector.wait_for(head, platform.settings.read_wait_seconds)
        and visible(platform, principal, "companies", "company_id", company_id)
    ):
        return
    raise StreamNotFound(f"company {company_id} not found")


@router.post("/companies", status_code=201, response_model=CompanyAccepted, responses=ERRORS)
def register(
    body: CompanyRequest, headers: Headers, platform: PlatformDep, response: Response
) -> CompanyAccepted:
    """Add a company to the directory with its card. The same tax id as another company's,
    or the same name (case, quotes and legal form aside) in the same city, is refused as a
    likely duplicate (409 ``likely_duplicate`` with ``existing_company_id``);
    ``different_company: true`` lets the name through, never the tax id."""
    ctx = headers.context(
        platform, "register-company", {"command": "register", **body.model_dump(mode="json")}
    )
    company_id = (body.company_id or "").strip() or company_id_for(ctx.command_id)
    command = company.RegisterCompany(company_id, body.card(), body.different_company)
    result = register_company(platform.store, command, ctx)
    response.headers["Location"] = f"/companies/{company_id}"
    return _accepted(company_id, result, response)


def _change(
    platform: Platform,
    headers: CommandHeaders,
    company_id: str,
    changes: dict[str, Any],
    *,
    replace: bool,
    different_company: bool,
    request: dict[str, Any],
    response: Response,
) -> CompanyAccepted:
    must_see(platform, headers.principal, company_id)
    ctx = headers.context(platform, f"company:{company_id}", request)
    command = company.ChangeCompanyCard(changes, replace, different_company)
    result = change_company_card(platform.store, company_id, command, ctx)
    return _accepted(company_id, result, response)


@router.put("/companies/{company_id}", response_model=CompanyAccepted, responses=ERRORS)
def replace_card(
    company_id: CompanyId,
    body: CompanyCard,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> CompanyAccepted:
    """Replace the company's card (fields left out are cleared). ``If-Match`` (its
    version) is required: a card is replaced only as the client saw it."""
    if headers.expected_version is None:
        raise BadRequestValue("If-Match", "is required: the company's version you replace")
    request = {"command": "card", "company_id": company_id, **body.model_dump(mode="json")}
    return _change(
        platform,
        headers,
        company_id,
        body.card(),
        replace=True,
        different_company=body.different_company,
        request=request,
        response=response,
    )


@router.patch("/companies/{company_id}", response_model=CompanyAccepted, responses=ERRORS)
def change_card(
    company_id: CompanyId,
    body: CompanyPatch,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> CompanyAccepted:
    """Change the fields sent (optional ``If-Match``: the version expected). A company
    first seen on a lead has just its name: filling its card claims its tax id and name."""
    request = {"command": "patch", "company_id": company_id, **body.model_dump(mode="json")}
    return _change(
        platform,
        headers,
        company_id,
        body.changes(),
        replace=False,
        different_company=body.different_company,
        request=request,
        response=response,
    )


@router.post("/companies/{company_id}/merge", response_model=CompanyAccepted, responses=ERRORS)
def merge(
    company_id: CompanyId,
    body: MergeRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> CompanyAccepted:
    """Merge this company (a duplicate) into ``into``: it becomes read-only, its leads,
    deals and projects are reported under the survivor (later leads naming it are repeat
    leads of the survivor), and its tax id and name claims move to the survivor."""
    must_see(platform, headers.principal, company_id)
    must_see(platform, headers.principal, body.into)
    request = {"command": "merge", "company_id": company_id, **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"company:{company_id}", request)
    result = merge_company(platform.store, company_id, company.MergeCompany(body.into), ctx)
    return _accepted(company_id, result, response)


@router.get(
    "/companies",
    response_model=CompanyPage,
    responses={
        200: {
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The page (JSON), or with format=xlsx the whole directory as "
            "the companies import reads it",
        }
    },
)
def list_companies(
    cursor: ReadCursor,
    search: Annotated[
        str | None,
        Query(max_length=MAX_CODE, description="Name (as duplicates are found) or tax id"),
    ] = None,
    industry: Text = None,
    region: Text = None,
    city: Text = None,
    merged: Annotated[bool, Query(description="Include merged records")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
    format: Annotated[
        Literal["json", "xlsx"],
        Query(
            description="xlsx: every company the filters match (not paged, merged records "
            "left out) in the import format of `leadledger import companies` / "
            "`POST /imports`: it imports back as the same records"
        ),
    ] = "json",
) -> Any:
    """The company directory by name: search by name or tax id, filter by industry,
    region and city (whole, case aside)."""
    filters = companies.CompanyFilters(search, industry, region, city, merged)
    if format == "xlsx":
        return _export(cursor, filters)
    items, total = companies.list_companies(cursor, filters, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _export(cursor: ReadCursor, filters: companies.CompanyFilters) -> FileResponse:
    """The directory as the companies import reads it."""
    records = companies.directory_export(cursor, filters)
    return export_response(KINDS["companies"], records, "companies.xlsx")


@router.get(
    "/companies/{company_id}",
    response_model=CompanyRecord,
    responses={404: {"description": "Unknown company"}},
)
def get_company(company_id: CompanyId, cursor: ReadCursor, response: Response) -> dict[str, Any]:
    """The company's record (ETag: its version), the duplicates merged into it, and for a
    merged one its survivor."""
    record = companies.company_record(cursor, company_id)
    if record is None:
        raise StreamNotFound(f"company {company_id} not found")
    response.headers["ETag"] = f'"{record["version"]}"'
    return record


def _detail(state: company.Company) -> dict[str, Any]:
    return {
        **asdict(state.card),
        "in_directory": state.in_directory,
        "merged_into": state.merged_into,
        "absorbed": list(state.absorbed),
        "first_lead_id": state.first_lead_id,
    }


@router.get(
    "/companies/{company_id}/history",
    response_model=CompanyHistory,
    responses={404: {"description": "Unknown company"}},
)
def history(company_id: CompanyId, platform: PlatformDep, viewer: Viewer) -> Response:
    """Every event of the company: registration, card changes, its first lead, merges."""
    must_see(platform, viewer, company_id)
    records = load_company_records(platform.store, company_id)
    if not records:
        raise StreamNotFound(f"company {company_id} not found")
    entries = stream_history(records, company.evolve, _detail)
    return Response(
        content=dumps_http({"company_id": company_id, "events": entries}),
        media_type="application/json",
    )


@router.get(
    "/clients/{company_id}",
    response_model=ClientCard,
    responses={404: {"description": "Unknown company"}},
)
def client_card(
    company_id: CompanyId,
    platform: PlatformDep,
    cursor: ReadCursor,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The client card: the company (a merged one's survivor), one timeline of its leads,
    deals, activities, projects, invoices and payments (the merged companies' too),
    newest first, and its totals: lifetime value (paid), invoiced, open deals, last
    interaction, dormant since (the dormant-clients indicator's rule)."""
    card = clients.client_card(
        cursor,
        company_id,
        platform.clock(),
        platform.rules.sales.dormant_after_days,
        limit,
        offset,
    )
    if card is None:
        raise StreamNotFound(f"company {company_id} not found")
    return card


@router.get("/reports/deal-volume-by-industry", response_model=DealVolumeReport)
def deal_volume_by_industry(cursor: ReadCursor, period: PeriodDep) -> dict[str, Any]:
    """Deals created in the period (``from``/``to``) by client industry: count and sum,
    won / open / lost (the splits add up to each row and the rows to the totals)."""
    return companies.deal_volume_by_industry(cursor, period.start, period.end)
