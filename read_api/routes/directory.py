"""The contractor directory's commands and history, and client assignments."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response

from aggregates import contractor, limits
from commands.assignments import assign_client, decide_assignment, load_assignment_records
from commands.context import CommandResult, StreamNotFound
from commands.contractors import (
    contractor_id_for,
    load_contractor_records,
    register_contractor,
    update_contractor,
)
from event_store.codec import dumps_http
from queries.assignments import assignment_detail
from queries.history import stream_history
from read_api.deps import CommandHeadersDep, PlatformDep, mark_accepted
from schemas.deals import (
    AssignmentAccepted,
    AssignmentDecisionRequest,
    AssignmentDetail,
    AssignmentRequest,
    ContractorAccepted,
    ContractorRequest,
    ContractorUpdateRequest,
    StreamHistory,
)

contractors = APIRouter(prefix="/contractors", tags=["contractors"])
assignments = APIRouter(prefix="/client-assignments", tags=["client assignments"])

Headers = CommandHeadersDep
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the manager's head (or an approver) may decide"},
    404: {"description": "Unknown contractor or assignment"},
    409: {"description": "The state forbids the command (names the rule), or a version conflict"},
    422: {"description": "Invalid body, header or value; names the field"},
}


def _contractor_accepted(result: CommandResult, response: Response) -> ContractorAccepted:
    mark_accepted(result, response)
    return ContractorAccepted(
        contractor_id=result.stream_id, version=result.version, position=result.position
    )


@contractors.post("", status_code=201, response_model=ContractorAccepted, responses=ERRORS)
def register(
    body: ContractorRequest, headers: Headers, platform: PlatformDep, response: Response
) -> ContractorAccepted:
    """Add a contractor to the directory (name, services, contacts)."""
    ctx = headers.context(
        platform, "register-contractor", {"command": "register", **body.model_dump(mode="json")}
    )
    command = contractor.RegisterContractor(
        contractor_id=contractor_id_for(ctx.command_id),
        name=body.name,
        services=tuple(body.services),
        contacts=body.contacts,
        notes=body.notes,
    )
    result = register_contractor(platform.store, command, ctx)
    response.headers["Location"] = f"/contractors/{result.stream_id}"
    return _contractor_accepted(result, response)


@contractors.post("/{contractor_id}/card", response_model=ContractorAccepted, responses=ERRORS)
def update(
    contractor_id: UUID,
    body: ContractorUpdateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ContractorAccepted:
    """Change the contractor's card; only the fields sent are changed."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    request = {
        "command": "card",
        "contractor_id": str(contractor_id),
        **body.model_dump(mode="json"),
    }
    ctx = headers.context(platform, f"contractor:{contractor_id}", request)
    result = update_contractor(
        platform.store, contractor_id, contractor.UpdateContractor(changes), ctx
    )
    return _contractor_accepted(result, response)


def _contractor_detail(state: contractor.Contractor) -> dict[str, Any]:
    return {
        "contractor_id": state.contractor_id,
        "name": state.name,
        "services": list(state.services),
        "contacts": state.contacts,
        "notes": state.notes,
        "quotes": state.quotes,
        "last_used_at": state.last_used_at,
    }


@contractors.get(
    "/{contractor_id}/history",
    response_model=StreamHistory,
    responses={404: {"description": "Unknown contractor"}},
)
def history(contractor_id: UUID, platform: PlatformDep) -> Response:
    """Every event of the contractor: its card changes and every quote, in order."""
    records = load_contractor_records(platform.store, contractor_id)
    if not records:
        raise StreamNotFound(f"contractor {contractor_id} not found")
    entries = stream_history(records, contractor.evolve, _contractor_detail)
    return Response(
        content=dumps_http({"id": contractor_id, "events": entries}),
        media_type="application/json",
    )


def _assignment_accepted(
    platform: PlatformDep, result: CommandResult, response: Response
) -> AssignmentAccepted:
    state = limits.fold_assignment(
        [r.event for r in load_assignment_records(platform.store, result.stream_id)]
    )
    assert state is not None
    mark_accepted(result, response)
    return AssignmentAccepted(
        assignment_id=result.stream_id,
        status=state.status,  # type: ignore[arg-type]
        manager=state.manager,
        requested_manager=state.requested_manager,
        pending_because=state.pending_because,  # type: ignore[arg-type]
        version=result.version,
        position=result.position,
    )


@assignments.post("", response_model=AssignmentAccepted, responses=ERRORS)
def assign(
    body: AssignmentRequest, headers: Headers, platform: PlatformDep, response: Response
) -> AssignmentAccepted:
    """Give a client's direction to a manager. A direction no one holds is assigned at
    once within the manager's monthly cap of new clients (200, status assigned); above
    the cap, or when another manager holds it (``manager``), it waits for the head's or
    an approver's decision (202, status pending_approval, ``pending_because``). The
    holder asking again is a 409 (already_assigned)."""
    ctx = headers.context(
        platform,
        f"assign:{body.company_id}:{body.direction}",
        {"command": "assign", **body.model_dump(mode="json")},
    )
    command = limits.AssignClient(body.company_id, body.direction, body.manager, body.reason)
    result = assign_client(platform.store, platform.rules, command, ctx)
    accepted = _assignment_accepted(platform, result, response)
    response.status_code = 202 if accepted.status == "pending_approval" else 200
    response.headers["Location"] = f"/client-assignments/{result.stream_id}"
    return accepted


@assignments.post("/{assignment_id}/decision", response_model=AssignmentAccepted, responses=ERRORS)
def decide(
    assignment_id: UUID,
    body: AssignmentDecisionRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> AssignmentAccepted:
    """The manager's head approves (the client counts over the cap) or declines (with a
    comment) an assignment waiting for approval."""
    request = {
        "command": "decision",
        "assignment_id": str(assignment_id),
        **body.model_dump(mode="json"),
    }
    ctx = headers.context(platform, f"assignment:{assignment_id}", request)
    command = limits.DecideAssignment(body.approve, body.comment)
    result = decide_assignment(platform.store, platform.rules, assignment_id, command, ctx)
    return _assignment_accepted(platform, result, response)


@assignments.get(
    "/{assignment_id}",
    response_model=AssignmentDetail,
    responses={404: {"description": "Unknown assignment"}},
)
def get_assignment(
    assignment_id: UUID, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Who owns the client's direction, and any approval waiting (from the event store)."""
    state = limits.fold_assignment(
        [r.event for r in load_assignment_records(platform.store, assignment_id)]
    )
    if state is None:
        raise StreamNotFound(f"client assignment {assignment_id} not found")
    response.headers["ETag"] = f'"{state.version}"'
    return assignment_detail(state)
