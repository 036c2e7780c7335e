"""Deal commands, the deal as it is (or was), its history, and the hand-off requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from aggregates import deal, handoff
from commands.context import CommandResult, StreamNotFound
from commands.deals import (
    convert_lead,
    create_upsell,
    deal_id_for,
    handle_deal_command,
    load_deal_records,
)
from commands.handoffs import (
    create_handoff,
    handle_handoff_command,
    load_handoff_records,
    record_delivery,
    request_id_for,
)
from event_store.codec import dumps_http
from queries.deals import deal_as_of, deal_detail, deal_history
from queries.handoffs import handoff_as_of, handoff_detail, handoff_history
from read_api.deps import CommandHeaders, CommandHeadersDep, PlatformDep, as_utc, mark_accepted
from schemas.deals import (
    CalculationRequest,
    ContractRequest,
    ConvertLeadRequest,
    CreateDealRequest,
    DealAccepted,
    DealCloseRequest,
    DealDetail,
    DealFunnelOut,
    DealStageRequest,
    DeliveryRequest,
    HandoffAccepted,
    HandoffCreateRequest,
    HandoffDetail,
    HandoffStageRequest,
    InvoiceApprovalRequest,
    InvoiceRequest,
    LogisticsEstimateRequest,
    PlanRequest,
    ProposalRequest,
    RejectRequest,
    StreamHistory,
    TakeRequest,
)

router = APIRouter(tags=["deals"])
handoffs = APIRouter(prefix="/handoffs", tags=["hand-off requests"])

Headers = CommandHeadersDep
AsOf = Annotated[
    datetime | None,
    Query(description="ISO timestamp: as it was then (replayed from the event store)"),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown deal, lead or request"},
    409: {"description": "The state forbids the command (names the rule), or a version conflict"},
    422: {"description": "Invalid body, header or value; names the field"},
}


def _deal_accepted(result: CommandResult, response: Response) -> DealAccepted:
    mark_accepted(result, response)
    return DealAccepted(deal_id=result.stream_id, version=result.version, position=result.position)


def _handoff_accepted(result: CommandResult, response: Response) -> HandoffAccepted:
    mark_accepted(result, response)
    return HandoffAccepted(
        request_id=result.stream_id, version=result.version, position=result.position
    )


# --- configuration ----------------------------------------------------------------------


@router.get("/deal-funnels", response_model=list[DealFunnelOut], tags=["configuration"])
def deal_funnels(platform: PlatformDep) -> list[dict[str, Any]]:
    """The deal funnels (one per sales direction) and their stages, in order."""
    return [
        {
            "id": f.id,
            "name": f.name,
            "stages": [
                {
                    "id": s.id,
                    "name": s.name,
                    "step": s.step,
                    "time_limit_hours": s.time_limit_hours,
                    "needs": list(s.needs),
                    "ready_stage": s.ready_stage,
                }
                for s in f.stages
            ],
        }
        for f in platform.rules.deal_funnels.values()
    ]


@router.get("/departments", tags=["configuration"])
def departments(platform: PlatformDep) -> list[dict[str, Any]]:
    """The departments receiving hand-off requests, with their funnels."""
    return [
        {
            "id": d.id,
            "name": d.name,
            "outcome": d.outcome,
            "head": d.head,
            "take_within_hours": d.take_within_hours,
            "taken_stage": d.taken_stage,
            "ready_stages": sorted(d.ready_stages),
            "rejected_stage": d.rejected_stage,
            "stages": [{"id": s.id, "name": s.name} for s in d.funnel.stages],
        }
        for d in platform.rules.departments.values()
    ]


# --- deals ------------------------------------------------------------------------------


@router.post(
    "/leads/{lead_id}/deal",
    status_code=201,
    response_model=DealAccepted,
    responses=ERRORS,
    tags=["deals"],
)
def convert(
    lead_id: UUID,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
    body: ConvertLeadRequest | None = None,
) -> DealAccepted:
    """Make the deal of an open lead qualified as quality; it carries the lead's card,
    client and source, and the lead records the link. If-Match names the lead's version."""
    body = body or ConvertLeadRequest()
    request = {"command": "convert", "lead_id": str(lead_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"lead:{lead_id}:deal", request)
    result = convert_lead(
        platform.store, platform.funnels, platform.rules, lead_id, body.funnel, ctx
    )
    response.headers["Location"] = f"/deals/{result.stream_id}"
    return _deal_accepted(result, response)


@router.post("/deals", status_code=201, response_model=DealAccepted, responses=ERRORS)
def create(
    body: CreateDealRequest, headers: Headers, platform: PlatformDep, response: Response
) -> DealAccepted:
    """An upsell: a deal for an existing client, linked to the client's earlier deal."""
    ctx = headers.context(
        platform, "create-deal", {"command": "create", **body.model_dump(mode="json")}
    )
    command = deal.CreateDeal(
        deal_id=deal_id_for(ctx.command_id),
        funnel=body.funnel,
        title=body.title,
        company_name="",
        source=body.source,
        manager=body.manager,
        description=body.description,
        amount=body.amount,
    )
    result = create_upsell(platform.store, platform.rules, body.previous_deal_id, command, ctx)
    response.headers["Location"] = f"/deals/{result.stream_id}"
    return _deal_accepted(result, response)


def _run(
    platform: PlatformDep,
    headers: CommandHeaders,
    deal_id: UUID,
    name: str,
    body: Any,
    command: deal.DealCommand,
    response: Response,
) -> DealAccepted:
    request = {"command": name, "deal_id": str(deal_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"deal:{deal_id}", request)
    return _deal_accepted(
        handle_deal_command(platform.store, platform.rules, deal_id, command, ctx), response
    )


@router.post("/deals/{deal_id}/stage", response_model=DealAccepted, responses=ERRORS)
def move_deal(
    deal_id: UUID,
    body: DealStageRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> DealAccepted:
    """Move the deal to another stage; a stage that needs estimates asks the departments."""
    return _run(
        platform, headers, deal_id, "stage", body, deal.MoveDealToStage(body.stage), response
    )


@router.post("/deals/{deal_id}/proposal", response_model=DealAccepted, responses=ERRORS)
def record_proposal(
    deal_id: UUID,
    body: ProposalRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> DealAccepted:
    """Record the commercial proposal: services with prices, or ``calculation``: a
    request for calculation of the deal (ready or done) whose calculated services it takes
    as they are (409 ``calculation_not_of_deal``, ``calculation_required`` or
    ``calculation_not_ready`` otherwise); its total is the deal's amount. A named
    ``organisation`` must sell every service (409 ``organisation_service_not_allowed``)."""
    typed = tuple(deal.ServiceLine(s.name, s.price) for s in body.services or ())
    command: deal.DealCommand = (
        deal.RecordProposal(typed, body.organisation)
        if body.calculation is None
        else deal.RecordProposalFromCalculation(
            body.calculation, typed=body.services is not None, organisation=body.organisation
        )
    )
    return _run(platform, headers, deal_id, "proposal", body, command, response)


@router.post("/deals/{deal_id}/contract", response_model=DealAccepted, responses=ERRORS)
def record_contract(
    deal_id: UUID,
    body: ContractRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> DealAccepted:
    """Record the contract (number, date); needs a proposal."""
    command = deal.RecordContract(body.number, body.signed_on)
    return _run(platform, headers, deal_id, "contract", body, command, response)


@router.post("/deals/{deal_id}/invoice", response_model=DealAccepted, responses=ERRORS)
def issue_invoice(
    deal_id: UUID, body: InvoiceRequest, headers: Headers, platform: PlatformDep, response: Response
) -> DealAccepted:
    """Issue an invoice; needs a contract. An organisation on the simplified-tax regime
    refuses an invoice over its yearly revenue cap (409 naming the cap and the total); a
    prepayment invoice is issued pending and booked when approved."""
    command = deal.IssueInvoice(
        body.number, body.amount, body.organisation, body.prepayment, body.issued_on
    )
    return _run(platform, headers, deal_id, "invoice", body, command, response)


@router.post(
    "/deals/{deal_id}/invoices/{number}/approval",
    response_model=DealAccepted,
    responses={**ERRORS, 403: {"description": "Not the manager's head nor an approver"}},
)
def decide_invoice_approval(
    deal_id: UUID,
    number: str,
    body: InvoiceApprovalRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> DealAccepted:
    """Approve or decline (with a reason) a pending prepayment invoice: the deal manager's
    head or a configured approver (403 ``prepayment_approver`` for others). An approval
    books the invoice on its organisation's revenue ledger (409 over the cap)."""
    command = deal.DecideInvoiceApproval(number, body.decision == "approve", body.reason)
    request_body = {"invoice": number, **body.model_dump(mode="json")}
    request = {"command": "invoice_approval", "deal_id": str(deal_id), **request_body}
    ctx = headers.context(platform, f"deal:{deal_id}", request)
    return _deal_accepted(
        handle_deal_command(platform.store, platform.rules, deal_id, command, ctx), response
    )


@router.post("/deals/{deal_id}/close", response_model=DealAccepted, responses=ERRORS)
def close_deal(
    deal_id: UUID,
    body: DealCloseRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> DealAccepted:
    """Close the deal as won (needs an invoice) or lost (needs a reason)."""
    command = deal.CloseDeal(body.outcome, body.reason)
    return _run(platform, headers, deal_id, "close", body, command, response)


@router.post(
    "/deals/{deal_id}/requests",
    status_code=201,
    response_model=HandoffAccepted,
    responses=ERRORS,
)
def request_handoff(
    deal_id: UUID,
    body: HandoffCreateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Ask a department for something by hand (estimates a stage needs are asked for
    automatically)."""
    request = {"command": "request", "deal_id": str(deal_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"deal:{deal_id}:request", request)
    command = handoff.CreateHandoff(
        request_id=request_id_for(ctx.command_id),
        deal_id=deal_id,
        department=body.department,
        notes=body.notes,
    )
    result = create_handoff(platform.store, platform.rules, command, ctx)
    response.headers["Location"] = f"/handoffs/{result.stream_id}"
    return _handoff_accepted(result, response)


@router.get(
    "/deals/{deal_id}", response_model=DealDetail, responses={404: {"description": "Unknown deal"}}
)
def get_deal(
    deal_id: UUID, platform: PlatformDep, response: Response, as_of: AsOf = None
) -> dict[str, Any]:
    """The deal with its hand-off requests and their statuses, now or as it was at as_of
    (from the event store: always current, no read-model lag)."""
    state = deal_as_of(platform.store, deal_id, as_utc(as_of))
    response.headers["ETag"] = f'"{state.version}"'
    return deal_detail(state)


@router.get(
    "/deals/{deal_id}/history",
    response_model=StreamHistory,
    responses={404: {"description": "Unknown deal"}},
)
def get_deal_history(deal_id: UUID, platform: PlatformDep) -> Response:
    """Every event of the deal, in order, with its changes old → new."""
    records = load_deal_records(platform.store, deal_id)
    if not records:
        raise StreamNotFound(f"deal {deal_id} not found")
    body = dumps_http({"id": deal_id, "events": deal_history(records)})
    return Response(content=body, media_type="application/json")


# --- hand-off requests ------------------------------------------------------------------


def _run_handoff(
    platform: PlatformDep,
    headers: CommandHeaders,
    request_id: UUID,
    name: str,
    body: Any,
    command: handoff.HandoffCommand,
    response: Response,
) -> HandoffAccepted:
    request = {"command": name, "request_id": str(request_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"handoff:{request_id}", request)
    result = handle_handoff_command(platform.store, platform.rules, request_id, command, ctx)
    return _handoff_accepted(result, response)


@handoffs.post("/{request_id}/take", response_model=HandoffAccepted, responses=ERRORS)
def take(
    request_id: UUID,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
    body: TakeRequest | None = None,
) -> HandoffAccepted:
    """Take the request (yourself, or the assignee named); it moves into work."""
    body = body or TakeRequest()
    command = handoff.TakeHandoff(body.assignee if body.assignee is not None else headers.actor)
    return _run_handoff(platform, headers, request_id, "take", body, command, response)


@handoffs.post("/{request_id}/estimate", response_model=HandoffAccepted, responses=ERRORS)
def estimate(
    request_id: UUID,
    body: LogisticsEstimateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Logistics: price the job with a contractor from the directory (adding a quote and
    a rating to its history) or with the company's own equipment."""
    command = handoff.RecordLogisticsEstimate(
        service=body.service,
        cost=body.cost,
        lead_time_days=body.lead_time_days,
        contractor_id=body.contractor_id,
        own_equipment=body.own_equipment,
        notes=body.notes,
        rating=body.rating,
    )
    return _run_handoff(platform, headers, request_id, "estimate", body, command, response)


@handoffs.post("/{request_id}/plan", response_model=HandoffAccepted, responses=ERRORS)
def plan(
    request_id: UUID,
    body: PlanRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Engineering: record the plan (hours, notes)."""
    command = handoff.RecordEngineeringPlan(body.hours, body.notes)
    return _run_handoff(platform, headers, request_id, "plan", body, command, response)


@handoffs.post("/{request_id}/calculation", response_model=HandoffAccepted, responses=ERRORS)
def calculation(
    request_id: UUID,
    body: CalculationRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Experts: price the services of a request for calculation (name, optional quantity
    and unit, price per unit, optional hours); the total is the sum of the amounts. A new
    calculation replaces the one before, until the request is ready."""
    command = handoff.RecordCalculation(
        services=tuple(
            handoff.CalculatedServiceLine(s.name, s.price, s.quantity, s.unit, s.hours)
            for s in body.services
        ),
        notes=body.notes,
    )
    return _run_handoff(platform, headers, request_id, "calculation", body, command, response)


@handoffs.post("/{request_id}/stage", response_model=HandoffAccepted, responses=ERRORS)
def move_handoff(
    request_id: UUID,
    body: HandoffStageRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Move the request in its department's funnel (approval and done need the outcome)."""
    command = handoff.MoveHandoffToStage(body.stage)
    return _run_handoff(platform, headers, request_id, "stage", body, command, response)


@handoffs.post("/{request_id}/reject", response_model=HandoffAccepted, responses=ERRORS)
def reject(
    request_id: UUID,
    body: RejectRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Reject the request with a reason; an estimate round returns the deal a stage back."""
    command = handoff.RejectHandoff(body.reason)
    return _run_handoff(platform, headers, request_id, "reject", body, command, response)


@handoffs.post("/{request_id}/delivery", response_model=HandoffAccepted, responses=ERRORS)
def delivery(
    request_id: UUID,
    body: DeliveryRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HandoffAccepted:
    """Logistics: the job a contractor's estimate priced is done (its deal won): the actual
    completion date and the rating of the work delivered, once per job; added to the
    contractor's history with the planned date (the deal's won day plus the lead time)."""
    request = {"command": "delivery", "request_id": str(request_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"handoff:{request_id}", request)
    command = handoff.RecordDelivery(body.completed_on, body.rating, body.notes)
    result = record_delivery(platform.store, platform.rules, request_id, command, ctx)
    return _handoff_accepted(result, response)


@handoffs.get(
    "/{request_id}",
    response_model=HandoffDetail,
    responses={404: {"description": "Unknown request"}},
)
def get_handoff(
    request_id: UUID, platform: PlatformDep, response: Response, as_of: AsOf = None
) -> dict[str, Any]:
    """The request now, or as it was at as_of (from the event store)."""
    state = handoff_as_of(platform.store, platform.rules, request_id, as_utc(as_of))
    response.headers["ETag"] = f'"{state.version}"'
    return handoff_detail(state, platform.rules)


@handoffs.get(
    "/{request_id}/history",
    response_model=StreamHistory,
    responses={404: {"description": "Unknown request"}},
)
def get_handoff_history(request_id: UUID, platform: PlatformDep) -> Response:
    """Every event of the request, in order, with its changes old → new."""
    records = load_handoff_records(platform.store, request_id)
    if not records:
        raise StreamNotFound(f"hand-off request {request_id} not found")
    body = dumps_http({"id": request_id, "events": handoff_history(records, platform.rules)})
    return Response(content=body, media_type="application/json")
