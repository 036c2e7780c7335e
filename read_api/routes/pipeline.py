"""Queries of the sales pipeline, from the read models: lists of deals, hand-off requests,
contractors, alerts and client assignments, and the pipeline reports for sales heads,
logistics and analysts. Pass ``min_position`` from a command's answer to read your write.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import duckdb
from fastapi import APIRouter, Depends, Path, Query, Response

from aggregates import inbox
from aggregates.funnels import Funnel
from aggregates.users import Principal
from commands.context import StreamNotFound
from commands.inbox import mark_alerts_read
from leadledger.wiring import Platform
from queries import alerts, assignments, contractors, deals, handoffs, revenue
from queries.common import Filters
from queries.contractors import OverrunFilters
from read_api.access import current_user
from read_api.deps import (
    CommandHeaders,
    CommandHeadersDep,
    Period,
    PlatformDep,
    ReadCursor,
    mark_accepted,
    parse_instant,
    read_position,
)
from read_api.errors import BadRequestValue
from schemas.pipeline import (
    AlertKind,
    AlertPage,
    AlertsMarkedRead,
    AlertSubject,
    AssignmentStatus,
    ClientAssignmentPage,
    ContractorCard,
    ContractorOverrunReport,
    ContractorPage,
    DealPage,
    DealPipelineReport,
    DealStatus,
    DepartmentLoadReport,
    HandoffPage,
    HandoffReport,
    HandoffStatus,
    MarkAlertsReadRequest,
    RevenueCapReport,
    UnreadAlerts,
)

router = APIRouter(tags=["pipeline"])

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
PeriodDep = Annotated[Period, Depends()]
Headers = CommandHeadersDep


def _page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _deal_funnel(platform: PlatformDep, funnel: str | None) -> Funnel | None:
    if funnel is None:
        return None
    found = platform.rules.deal_funnels.get(funnel)
    if found is None:
        known = ", ".join(sorted(platform.rules.deal_funnels))
        raise BadRequestValue("funnel", f"unknown deal funnel '{funnel}' (known: {known})")
    return found


def _check_deal_stage(platform: PlatformDep, funnel: Funnel | None, stage: str | None) -> None:
    if stage is None:
        return
    funnels = [funnel] if funnel is not None else list(platform.rules.deal_funnels.values())
    if not any(f.stage(stage) is not None for f in funnels):
        where = f"funnel '{funnel.id}'" if funnel is not None else "any deal funnel"
        raise BadRequestValue("stage", f"unknown stage '{stage}' of {where}")


def _check_department(platform: PlatformDep, department: str | None) -> None:
    if department is not None and department not in platform.rules.departments:
        known = ", ".join(sorted(platform.rules.departments))
        raise BadRequestValue("department", f"unknown department '{department}' (known: {known})")


def _check_request_stage(platform: PlatformDep, department: str | None, stage: str | None) -> None:
    if stage is None:
        return
    departments = [d for d in platform.rules.departments.values() if department in (None, d.id)]
    if not any(d.funnel.stage(stage) is not None for d in departments):
        where = f"department '{department}'" if department else "any department"
        raise BadRequestValue("stage", f"unknown stage '{stage}' of {where}")


@router.get("/deals", response_model=DealPage)
def list_deals(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: PeriodDep,
    funnel: Annotated[str | None, Query(description="Deal funnel id")] = None,
    stage: str | None = None,
    status: DealStatus | None = None,
    manager: str | None = None,
    company_id: str | None = None,
    lead_id: UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Deals, newest first, filtered (``from``/``to`` on their creation) and paginated."""
    _check_deal_stage(platform, _deal_funnel(platform, funnel), stage)
    filters = Filters(
        equal={
            "funnel": funnel,
            "stage": stage,
            "status": status,
            "manager": manager,
            "company_id": company_id,
            "lead_id": None if lead_id is None else str(lead_id),
        },
        start=period.start,
        end=period.end,
    )
    items, total = deals.list_deals(cursor, filters, limit, offset)
    return _page(items, total, limit, offset)


@router.get("/handoffs", response_model=HandoffPage)
def list_handoffs(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: PeriodDep,
    department: str | None = None,
    stage: str | None = None,
    status: HandoffStatus | None = None,
    assignee: str | None = None,
    deal_id: UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Hand-off requests, newest first, filtered (``from``/``to`` on their creation)."""
    _check_department(platform, department)
    _check_request_stage(platform, department, stage)
    filters = Filters(
        equal={
            "department": department,
            "stage": stage,
            "status": status,
            "assignee": assignee,
            "deal_id": None if deal_id is None else str(deal_id),
        },
        start=period.start,
        end=period.end,
    )
    items, total = handoffs.list_handoffs(cursor, filters, limit, offset)
    return _page(items, total, limit, offset)


@router.get("/contractors", response_model=ContractorPage)
def list_contractors(
    cursor: ReadCursor,
    service: Annotated[str | None, Query(description="Only contractors offering it")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The contractor directory by name: each with its quotes, quote-time rating, last use,
    average quoted price per service and, apart, its delivered jobs' figures (delivered
    rating, planned vs actual lead time, on time, overruns)."""
    items, total = contractors.list_contractors(cursor, service, limit, offset)
    return _page(items, total, limit, offset)


@router.get(
    "/contractors/{contractor_id}",
    response_model=ContractorCard,
    responses={404: {"description": "Unknown contractor"}},
)
def get_contractor(
    contractor_id: UUID,
    cursor: ReadCursor,
    limit: Annotated[int, Query(ge=1, le=500, description="Quotes of the history")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """The directory card: the contractor, its quote history newest first, average price
    per service, quote-time rating, when it was last used, and its delivered jobs (newest
    first, the same page) with their figures."""
    card = contractors.contractor_card(cursor, str(contractor_id), limit, offset)
    if card is None:
        raise StreamNotFound(f"contractor {contractor_id} not found")
    return card


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    cursor: ReadCursor,
    period: PeriodDep,
    kind: AlertKind | None = None,
    recipient: str | None = None,
    subject_type: AlertSubject | None = None,
    subject_id: UUID | None = None,
    unread: Annotated[
        bool, Query(description="Only the alerts their recipient has not marked read")
    ] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Reminders, escalations and approval requests, newest first (``from``/``to`` on
    when they were raised), each with ``read`` (its recipient marked it read); ``unread``
    counts the unread ones the filters match."""
    filters = Filters(
        equal={
            "kind": kind,
            "recipient": recipient,
            "subject_type": subject_type,
            "subject_id": None if subject_id is None else str(subject_id),
        },
        time_column="raised_at",
        start=period.start,
        end=period.end,
    )
    items, total, unread_total = alerts.list_alerts(
        cursor, filters, limit, offset, unread_only=unread
    )
    return _page(items, total, limit, offset) | {"unread": unread_total}


@router.get("/alerts/unread-count", response_model=UnreadAlerts)
def unread_alerts(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(current_user)],
    _caught_up: Annotated[None, Depends(read_position)],
) -> dict[str, Any]:
    """How many of the viewer's own alerts are unread (cheap: for a page's header)."""
    cursor = platform.db.cursor()
    try:
        return {"unread": alerts.unread_count(cursor, principal.user)}
    finally:
        cursor.close()


MARK_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "The alert is addressed to someone else (rule not_recipient)"},
    404: {"description": "No such alert (or one the viewer may not see)"},
    422: {"description": "A bad id, or both alert_ids and up_to; names the field"},
}


def _mark(
    platform: Platform,
    cursor: duckdb.DuckDBPyConnection,
    headers: CommandHeaders,
    response: Response,
    alert_ids: list[int] | None,
    up_to: int | None,
    request: dict[str, Any],
) -> dict[str, Any]:
    reader = headers.principal.user
    own = platform.db.cursor()
    try:
        chosen = alerts.alerts_to_mark(own, cursor, reader, alert_ids, up_to)
    finally:
        own.close()
    ctx = headers.context(platform, f"alert-inbox:{reader}", request)
    marked = mark_alerts_read(platform.store, inbox.MarkAlertsRead(reader, chosen, up_to), ctx)
    mark_accepted(marked.result, response)
    return {
        "username": reader,
        "marked": list(marked.alert_ids),
        "version": marked.result.version,
        "position": marked.result.position,
    }


@router.post("/alerts/read", response_model=AlertsMarkedRead, responses=MARK_RESPONSES)
def mark_alerts(
    body: MarkAlertsReadRequest,
    headers: Headers,
    platform: PlatformDep,
    cursor: ReadCursor,
    response: Response,
) -> dict[str, Any]:
    """Mark the viewer's own alerts read: those listed in ``alert_ids``, or every unread
    one up to ``up_to`` (an alert's id is a log position), or with neither every unread
    one (at most 500 a request: repeat until ``marked`` is empty). Only an alert's
    recipient marks it read; marking a read alert again changes nothing."""
    if body.alert_ids is not None and body.up_to is not None:
        raise BadRequestValue("up_to", "give alert_ids or up_to, not both")
    ids = None if body.alert_ids is None else sorted(set(body.alert_ids))
    request = body.model_dump(mode="json")
    return _mark(platform, cursor, headers, response, ids, body.up_to, request)


@router.post("/alerts/{alert_id}/read", response_model=AlertsMarkedRead, responses=MARK_RESPONSES)
def mark_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**62, description="The alert's id")],
    headers: Headers,
    platform: PlatformDep,
    cursor: ReadCursor,
    response: Response,
) -> dict[str, Any]:
    """Mark one of the viewer's own alerts read (only its recipient may)."""
    return _mark(platform, cursor, headers, response, [alert_id], None, {"alert_id": alert_id})


@router.get("/client-assignments", response_model=ClientAssignmentPage)
def list_client_assignments(
    cursor: ReadCursor,
    manager: Annotated[
        str | None, Query(description="The manager who owns the client, or asks to take it")
    ] = None,
    status: AssignmentStatus | None = None,
    company_id: str | None = None,
    direction: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Which manager owns each client's direction, the most recently changed first."""
    extra = [] if manager is None else [("(manager = ? OR requested_manager = ?)", [manager] * 2)]
    filters = Filters(
        equal={"status": status, "company_id": company_id, "direction": direction}, extra=extra
    )
    items, total = assignments.list_client_assignments(cursor, filters, limit, offset)
    return _page(items, total, limit, offset)


@router.get("/reports/deal-pipeline", response_model=DealPipelineReport)
def deal_pipeline(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: PeriodDep,
    funnel: Annotated[str | None, Query(description="One deal funnel (default: all)")] = None,
    manager: str | None = None,
) -> dict[str, Any]:
    """Per deal funnel and stage, in funnel order: the open deals and their amount; per
    funnel the open, won and lost totals (``from``/``to`` on the deals' creation)."""
    chosen = _deal_funnel(platform, funnel)
    funnels = [chosen] if chosen is not None else list(platform.rules.deal_funnels.values())
    filters = Filters(equal={"manager": manager}, start=period.start, end=period.end)
    return {
        "manager": manager,
        "created_from": period.start,
        "created_to": period.end,
        "funnels": deals.deal_pipeline(cursor, funnels, filters),
    }


@router.get("/reports/handoffs", response_model=HandoffReport)
def handoff_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: PeriodDep,
    department: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Per request, newest first: department, deal, who took it, time to take and to
    estimate it (seconds), price and status (``from``/``to`` on the request's creation)."""
    _check_department(platform, department)
    filters = Filters(equal={"department": department}, start=period.start, end=period.end)
    return handoffs.handoff_report(cursor, filters, limit, offset)


@router.get("/reports/contractor-overruns", response_model=ContractorOverrunReport)
def contractor_overruns(
    platform: PlatformDep,
    cursor: ReadCursor,
    contractor_id: UUID | None = None,
    service: str | None = None,
    overrun: Annotated[bool, Query(description="Only the jobs finished late")] = False,
    manager: Annotated[str | None, Query(description="The parent deal's manager")] = None,
    funnel: Annotated[str | None, Query(description="The parent deal's funnel")] = None,
    won_from: Annotated[
        str | None, Query(description="Parent deal won at or after: ISO date or timestamp")
    ] = None,
    won_to: Annotated[
        str | None,
        Query(description="Parent deal won at or before: ISO timestamp, or a date (whole day)"),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """One row per delivered contractor job, the latest completion first: contractor,
    service, request, parent deal (manager, funnel, won), planned vs actual completion,
    days late; with the totals of every job the filters match (jobs, on time, overruns,
    their share and average days late, planned vs actual lead time, delivered rating)."""
    _deal_funnel(platform, funnel)
    start = parse_instant("won_from", won_from)
    end = parse_instant("won_to", won_to, end_of_day=True)
    if start and end and start > end:
        raise BadRequestValue("won_from", "must not be after 'won_to'")
    filters = OverrunFilters(
        contractor_id=None if contractor_id is None else str(contractor_id),
        service=service,
        overrun_only=overrun,
        manager=manager,
        funnel=funnel,
        won_from=start,
        won_to=end,
    )
    return contractors.contractor_overruns(cursor, filters, limit, offset)


@router.get("/reports/department-load", response_model=DepartmentLoadReport)
def department_load(platform: PlatformDep, cursor: ReadCursor) -> dict[str, Any]:
    """Open requests (not done, rejected or cancelled) per department and person, every configured
    department listed; requests nobody took count as "unassigned"."""
    departments = handoffs.department_load(cursor, platform.rules.departments.values())
    return {"departments": departments}


@router.get("/reports/revenue-cap", response_model=RevenueCapReport)
def revenue_cap(
    platform: PlatformDep,
    cursor: ReadCursor,
    year: Annotated[
        int | None, Query(ge=2000, le=2100, description="Default: this year (UTC)")
    ] = None,
) -> dict[str, Any]:
    """Per organisation on the simplified-tax regime: its revenue booked in the year (every
    invoice of the organisation, deals' and projects', once each) against its yearly cap,
    what is left and the share used."""
    chosen = platform.clock().year if year is None else year
    organisations = platform.rules.organisations.values()
    return {
        "year": chosen,
        "organisations": revenue.revenue_cap_report(cursor, organisations, chosen),
    }
