"""Lead commands and queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import duckdb
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from aggregates import lead, sensitive
from aggregates.users import Principal
from commands.context import CommandResult, StreamNotFound
from commands.leads import create_lead, handle_lead_command, lead_id_for, load_lead_records
from event_store.codec import dumps_http
from event_store.keys import key_id_of
from leadledger.wiring import Platform
from queries import leads as lead_queries
from queries.history import history, sensitive_history
from queries.leads import detail_from_row, detail_from_state
from read_api.access import STREAM_LEAD, CurrentUser, StreamLead, own_lead_at, read_models
from read_api.deps import (
    CommandHeaders,
    CommandHeadersDep,
    MinPosition,
    Period,
    PlatformDep,
    ReadCursor,
    as_utc,
    await_read_models,
    mark_accepted,
    read_models_behind,
)
from schemas.leads import (
    AssessmentRequest,
    CloseRequest,
    CommandAccepted,
    CostBreakdownRequest,
    CreateLeadRequest,
    LeadDetail,
    LeadHistory,
    LeadPage,
    PauseRequest,
    QualificationRequest,
    ResumeRequest,
    StageRequest,
    TransferRequest,
    UpdateCardRequest,
)

router = APIRouter(prefix="/leads", tags=["leads"])

Headers = CommandHeadersDep
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown lead"},
    409: {"description": "The lead's state forbids the command, or a version conflict"},
    422: {"description": "Invalid body, header or value; names the field"},
}


def _accepted(result: CommandResult, response: Response) -> CommandAccepted:
    mark_accepted(result, response)
    return CommandAccepted(
        lead_id=result.stream_id, version=result.version, position=result.position
    )


@router.post("", status_code=201, response_model=CommandAccepted, responses=ERRORS)
async def create(body: CreateLeadRequest, headers: Headers, response: Response) -> CommandAccepted:
    """Create a lead; it lands in the first stage of its funnel."""
    result = await run_in_threadpool(_create, headers.platform, headers, body)
    response.headers["Location"] = f"/leads/{result.stream_id}"
    return _accepted(result, response)


def _create(platform: Platform, headers: CommandHeaders, body: CreateLeadRequest) -> CommandResult:
    ctx = headers.context(
        platform, "create-lead", {"command": "create", **body.model_dump(mode="json")}
    )
    command = lead.CreateLead(lead_id=lead_id_for(ctx.command_id), **body.model_dump())
    return create_lead(platform.store, platform.funnels, command, ctx)


async def _run(
    headers: CommandHeaders,
    lead_id: UUID,
    name: str,
    body: Any,
    command: lead.LeadCommand,
    response: Response,
) -> CommandAccepted:
    """A command on one lead, in one worker thread from its context to its append (the
    guard and the store do I/O); the endpoint and its response stay on the event loop,
    so a command costs one thread-pool hand-off, not two (a plain endpoint's response is
    validated in the pool again). The platform comes with the headers: a dependency
    fewer for the event loop to solve on every command."""
    result = await run_in_threadpool(
        _handle, headers.platform, headers, lead_id, name, body, command
    )
    return _accepted(result, response)


def _handle(
    platform: Platform,
    headers: CommandHeaders,
    lead_id: UUID,
    name: str,
    body: Any,
    command: lead.LeadCommand,
) -> CommandResult:
    request = {"command": name, "lead_id": str(lead_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"lead:{lead_id}", request)
    return handle_lead_command(platform.store, platform.funnels, lead_id, command, ctx)


@router.post("/{lead_id}/card", response_model=CommandAccepted, responses=ERRORS)
async def update_card(
    lead_id: UUID,
    body: UpdateCardRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Change card fields; only the fields sent are changed and the event keeps old → new."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    return await _run(headers, lead_id, "card", body, lead.UpdateLeadCard(changes), response)


@router.post("/{lead_id}/cost", response_model=CommandAccepted, responses=ERRORS)
async def set_cost(
    lead_id: UUID,
    body: CostBreakdownRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Set the cost breakdown; its total becomes the lead's amount."""
    components = tuple(lead.CostComponent(c.name, c.amount) for c in body.components)
    return await _run(
        headers, lead_id, "cost", body, lead.SetLeadCostBreakdown(components), response
    )


@router.post("/{lead_id}/stage", response_model=CommandAccepted, responses=ERRORS)
async def move_to_stage(
    lead_id: UUID,
    body: StageRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Move the lead to another stage of its funnel, forward or back."""
    return await _run(headers, lead_id, "stage", body, lead.MoveLeadToStage(body.stage), response)


@router.post("/{lead_id}/transfer", response_model=CommandAccepted, responses=ERRORS)
async def transfer(
    lead_id: UUID,
    body: TransferRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Transfer the lead to another funnel (its first stage, or the stage named)."""
    command = lead.TransferLead(body.funnel, body.stage)
    return await _run(headers, lead_id, "transfer", body, command, response)


@router.post("/{lead_id}/pause", response_model=CommandAccepted, responses=ERRORS)
async def pause(
    lead_id: UUID,
    body: PauseRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Pause work on the lead, with a reason; its stage clock stops."""
    return await _run(headers, lead_id, "pause", body, lead.PauseLead(body.reason), response)


@router.post("/{lead_id}/resume", response_model=CommandAccepted, responses=ERRORS)
async def resume(
    lead_id: UUID,
    headers: Headers,
    response: Response,
    body: ResumeRequest | None = None,
) -> CommandAccepted:
    """Resume a paused lead."""
    return await _run(
        headers, lead_id, "resume", body or ResumeRequest(), lead.ResumeLead(), response
    )


@router.post("/{lead_id}/assessment", response_model=CommandAccepted, responses=ERRORS)
async def record_assessment(
    lead_id: UUID,
    body: AssessmentRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Record an expert's assessment: result and hours spent (> 0)."""
    command = lead.RecordLeadAssessment(body.expert, body.result, body.hours)
    return await _run(headers, lead_id, "assessment", body, command, response)


@router.post("/{lead_id}/qualification", response_model=CommandAccepted, responses=ERRORS)
async def qualify(
    lead_id: UUID,
    body: QualificationRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Qualify the lead as quality or non-quality (needs a reason; closes the lead)."""
    command = lead.QualifyLead(body.quality, body.reason)
    return await _run(headers, lead_id, "qualification", body, command, response)


@router.post("/{lead_id}/close", response_model=CommandAccepted, responses=ERRORS)
async def close(
    lead_id: UUID,
    body: CloseRequest,
    headers: Headers,
    response: Response,
) -> CommandAccepted:
    """Close the lead as won or lost (lost needs a reason)."""
    command = lead.CloseLead(body.outcome, body.reason)
    return await _run(headers, lead_id, "close", body, command, response)


@router.get("", response_model=LeadPage)
def list_leads(
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: str | None = None,
    stage: str | None = None,
    status: Literal["open", "paused", "won", "lost", "non_quality"] | None = None,
    manager: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """Leads, newest first, filtered and paginated."""
    filters = lead_queries.LeadFilters(funnel, stage, status, manager, period.start, period.end)
    items, total = lead_queries.list_leads(cursor, filters, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


async def lead_from_stream(
    request: Request,
    lead_id: UUID,
    platform: PlatformDep,
    principal: CurrentUser,
    min_position: MinPosition = None,
    as_of: Annotated[
        datetime | None,
        Query(description="ISO timestamp: the lead as it was then (from the event store)"),
    ] = None,
) -> dict[str, Any] | None:
    """Read-your-writes for one lead: when the read models have not reached
    ``min_position`` yet, the lead from its own stream (``own_lead_at``: the one
    ``authorize`` folded already for a scoped viewer, kept on the request), else None
    after waiting for the read models as every read does. A stream whose last event is
    at or after ``min_position`` answers at once (the log reaches that far)."""
    if min_position is None or platform.projector.position >= min_position:
        return None
    found: StreamLead | None = None
    if as_of is None:
        found = getattr(request.state, STREAM_LEAD, None)
        if found is None and principal.sees_everything:
            found = await run_in_threadpool(own_lead_at, platform, principal, lead_id)
        if found is not None and found.position >= min_position:
            return detail_from_state(found.state, platform.funnels)
    if not await read_models_behind(platform, min_position):
        return None
    if found is not None:
        return detail_from_state(found.state, platform.funnels)
    await await_read_models(platform, min_position)
    return None


@router.get(
    "/{lead_id}", response_model=LeadDetail, responses={404: {"description": "Unknown lead"}}
)
async def get_lead(
    lead_id: UUID,
    platform: PlatformDep,
    principal: CurrentUser,
    response: Response,
    from_stream: Annotated[dict[str, Any] | None, Depends(lead_from_stream)],
    as_of: Annotated[
        datetime | None,
        Query(description="ISO timestamp: the lead as it was then (from the event store)"),
    ] = None,
) -> dict[str, Any]:
    """The lead now (read model) or as it was at ``as_of`` (replayed from its events).

    With ``min_position`` and no ``as_of``, when the read models have not reached that
    position yet, the lead is read from its own stream instead of waiting: the same
    detail, field for field, that the read models give once they include the stream's
    last event (a position at or after ``min_position``), so read-your-writes on one lead
    costs no wait for the projector. Lists and reports still wait for the read models.
    Awaited: a read from the stream takes no worker thread here, another one only."""
    if from_stream is not None:
        detail = from_stream
    else:
        detail = await run_in_threadpool(lead_read, platform, principal, lead_id, as_of)
    response.headers["ETag"] = f'"{detail["version"]}"'
    return detail


def lead_read(
    platform: Platform, principal: Principal, lead_id: UUID, as_of: datetime | None
) -> dict[str, Any]:
    """``lead_detail`` on the read models as the principal may see them."""
    with read_models(platform, principal) as cursor:
        return lead_detail(platform, cursor, lead_id, as_of)


def lead_detail(
    platform: Platform, cursor: duckdb.DuckDBPyConnection, lead_id: UUID, as_of: datetime | None
) -> dict[str, Any]:
    """The lead's detail now (read model) or at ``as_of`` (replayed): the API and the
    workspace's card."""
    if as_of is not None:
        moment = as_utc(as_of)
        records = load_lead_records(platform.store, lead_id, as_of=moment)
        state = lead.fold([r.event for r in records])
        if state is None:
            raise StreamNotFound(f"lead {lead_id} did not exist at {moment:%Y-%m-%dT%H:%M:%S%z}")
        return detail_from_state(state, platform.funnels)
    row = lead_queries.get_lead(cursor, str(lead_id))
    if row is None:
        raise StreamNotFound(f"lead {lead_id} not found")
    return detail_from_row(row)


@router.get(
    "/{lead_id}/history",
    response_model=LeadHistory,
    responses={404: {"description": "Unknown lead"}},
)
def get_history(lead_id: UUID, platform: PlatformDep) -> Response:
    """Every event of the lead from the event store, in order, with its changes old → new."""
    entries = lead_history(platform, lead_id)
    # Serialised directly: a long history is large, and its shape is built by one function
    body = dumps_http({"lead_id": lead_id, "events": entries})
    return Response(content=body, media_type="application/json")


def lead_history(platform: Platform, lead_id: UUID) -> list[dict[str, Any]]:
    """The lead's history entries with its sensitive section's (never their content), in
    order: the API and the workspace's timeline."""
    records = load_lead_records(platform.store, lead_id)
    if not records:
        raise StreamNotFound(f"lead {lead_id} not found")
    entries = history(records, platform.funnels)
    section = platform.store.load(sensitive.section_stream_id(lead_id))
    if section:
        keys = platform.keys

        def readable(event: sensitive.LeadSensitiveInfoSet) -> bool:
            # whether its key still exists: the content is not opened to say so
            return keys.key(key_id_of(event.sealed)) is not None

        entries = sorted(
            entries + sensitive_history(section, readable), key=lambda e: e["position"]
        )
    return entries
