"""The workspace's deal pages and the department queue.

- **Deals**: a kanban per deal funnel (columns: its stages; cards: the open deals from the
  query of ``GET /deals``, column totals from the deal-pipeline report's query), and the
  deal card (the deal as ``GET /deals/{id}`` replays it, its hand-off requests as
  ``GET /handoffs/{id}`` shows each, its history) with the deal's commands as forms.
- **Department queue**: the department's requests (the query of ``GET /handoffs``, over
  the viewer's read scope) and the request page with the department's commands as forms.

Every form posts to the same command handler the API route calls, with the ownership
guard the API builds for that route (:func:`read_api.access.command_guard`), the record's
version as the expected version (a stale form is a conflict, nothing applied) and a key
per rendered form as the idempotency key (a double submit applies once).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from aggregates import contractor, deal, handoff
from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from aggregates.rules import Department
from aggregates.users import Principal, Role
from commands.context import (
    CommandContext,
    CommandResult,
    IdempotencyKeyReused,
    StreamNotFound,
    VersionConflict,
)
from commands.contractors import contractor_id_for, register_contractor
from commands.deals import handle_deal_command, load_deal_records
from commands.handoffs import (
    create_handoff,
    handle_handoff_command,
    load_handoff_records,
    record_delivery,
    request_id_for,
)
from commands.policy import Policy
from commands.users import StoreDirectory
from leadledger.imports.export import ExportFilters, export_response, kind_records
from leadledger.wiring import Platform
from queries.common import Filters
from queries.contractors import list_contractors
from queries.deals import deal_as_of, deal_detail, deal_history, deal_pipeline, list_deals
from queries.handoffs import (
    OPEN_REQUEST,
    handoff_as_of,
    handoff_detail,
    handoff_history,
    list_handoffs,
)
from read_api.access import read_models, sees
from schemas.deals import (
    CalculationRequest,
    ContractorRequest,
    ContractRequest,
    DealCloseRequest,
    DealStageRequest,
    DeliveryRequest,
    HandoffCreateRequest,
    HandoffStageRequest,
    InvoiceApprovalRequest,
    InvoiceRequest,
    LogisticsEstimateRequest,
    PlanRequest,
    ProposalRequest,
    RejectRequest,
)
from workspace.imports import export_link
from workspace.messages import N_
from workspace.pages import (
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    as_of_moment,
    as_of_value,
    local_target,
    may,
    pager,
    post_form,
    render,
    require,
)
from workspace.pages import command_context as api_context

router = APIRouter()

WORDS = (
    N_("Deals"),
    N_("Queue"),
    N_("in_work"),
    N_("ready"),
    N_("done"),
    N_("rejected"),
    N_("cancelled"),
    N_("not_required"),
    N_("pending"),
    N_("approved"),
    N_("declined"),
)
"""Words the deal pages translate from data (sections, statuses, approvals)."""
EVENT_LABELS = {
    "DealCreated": N_("Deal created"),
    "DealImported": N_("Deal imported"),
    "DealStageChanged": N_("Stage changed"),
    "DealProposalRecorded": N_("Proposal recorded"),
    "DealContractRecorded": N_("Contract recorded"),
    "DealInvoiceIssued": N_("Invoice issued"),
    "DealInvoiceApproved": N_("Invoice approved"),
    "DealInvoiceDeclined": N_("Invoice declined"),
    "DealHandoffNoted": N_("Hand-off request updated"),
    "DealEstimateReady": N_("Estimate ready"),
    "DealEstimateRejected": N_("Estimate rejected"),
    "DealClosed": N_("Deal closed"),
    "DealProjectStarted": N_("Project started"),
    "HandoffRequested": N_("Requested"),
    "HandoffTaken": N_("Taken"),
    "HandoffLogisticsEstimated": N_("Logistics estimate recorded"),
    "HandoffDeliveryRecorded": N_("Delivery recorded"),
    "HandoffPlanRecorded": N_("Plan recorded"),
    "HandoffCalculated": N_("Calculation recorded"),
    "HandoffStageChanged": N_("Stage changed"),
    "HandoffRejected": N_("Rejected"),
    "HandoffCancelled": N_("Cancelled"),
    "HandoffReminderSent": N_("Reminder sent"),
    "HandoffEscalated": N_("Escalated"),
}
"""The history timeline's words for the events (the event's type is kept beside)."""
ACTOR_ROLES = (N_("process"),)

KANBAN_LIMIT = 500
"""Open deals read per funnel for the kanban (the busiest funnel of the demo has ~40)."""
QUEUE_SIZE = 50
SERVICE_ROWS = 5
"""Service lines a proposal or calculation form offers."""
QUEUE_ROLES = frozenset({Role.DEPARTMENT, Role.HEAD, Role.TOP})
DEAL_ROLES = frozenset({Role.MANAGER, Role.HEAD, Role.TOP, Role.ANALYST, Role.ASSISTANT})
HANDOFF_STATUSES = ("open", "in_work", "ready", "done", "rejected", "cancelled")

DEAL_ACTIONS: dict[str, tuple[str, str]] = {
    "stage": ("/deals/{deal_id}/stage", "move_deal"),
    "proposal": ("/deals/{deal_id}/proposal", "record_proposal"),
    "contract": ("/deals/{deal_id}/contract", "record_contract"),
    "invoice": ("/deals/{deal_id}/invoice", "issue_invoice"),
    "approval": ("/deals/{deal_id}/invoices/{number}/approval", "decide_invoice_approval"),
    "close": ("/deals/{deal_id}/close", "close_deal"),
    "requests": ("/deals/{deal_id}/requests", "request_handoff"),
}
"""A deal form → the API operation it is (role table, guard) and the route's name."""
HANDOFF_ACTIONS: dict[str, tuple[str, str]] = {
    action: (f"/handoffs/{{request_id}}/{action}", name)
    for action, name in (
        ("take", "take"),
        ("estimate", "estimate"),
        ("plan", "plan"),
        ("calculation", "calculation"),
        ("stage", "move_handoff"),
        ("reject", "reject"),
        ("delivery", "delivery"),
    )
}


def sections(principal: Principal) -> list[tuple[str, str]]:
    """The navigation entries of this module the viewer's role may open."""
    items = []
    if principal.role in DEAL_ROLES and may(principal, "GET", "/deals"):
        items.append((f"{PREFIX}/deals", "Deals"))
    if principal.role in QUEUE_ROLES and may(principal, "GET", "/handoffs"):
        items.append((f"{PREFIX}/queue", "Queue"))
    return items


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise PageNotFound from None


async def _require_seen(
    request: Request, principal: Principal, table: str, column: str, record_id: UUID
) -> None:
    """A record outside the viewer's read scope is a 404 page, like an unknown one (the
    API's own test, waiting for the read models like the API does)."""
    if not await sees(_platform(request), principal, table, column, str(record_id)):
        raise PageNotFound


# --- commands through the API's handlers and guards -------------------------------------


def command_context(
    request: Request,
    principal: Principal,
    operation: tuple[str, str],
    params: dict[str, str],
    scope: str,
    body: dict[str, Any],
    form: FormData,
    *,
    new_record: bool = False,
) -> CommandContext:
    """The API's context for this form (:func:`workspace.pages.command_context`): the
    form's record version as If-Match (none for a ``new_record``), its key as the
    Idempotency-Key."""
    return api_context(
        request,
        principal,
        Operation(*operation),
        params,
        scope,
        body,
        version=None if new_record else form.get("version"),
        key=form.get("key"),
    )


Body = TypeVar("Body", bound=BaseModel)


def _validated(model: type[Body], fields: dict[str, Any]) -> Body:
    """The form's fields as the API's request body (the same validation, the field named)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "form"
        raise InvalidValue(field, f"{field}: {first['msg']}") from None


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _fields(form: FormData, *names: str) -> dict[str, Any]:
    """The non-empty text fields of the form (an empty optional field is left out)."""
    return {n: v for n in names if (v := _text(form, n)) is not None}


def _service_rows(form: FormData, *columns: str) -> list[dict[str, Any]]:
    rows = []
    for n in range(SERVICE_ROWS):
        row = {c: v for c in columns if (v := _text(form, f"{c}_{n}")) is not None}
        if row:
            rows.append(row)
    return rows


def failure(exc: Exception) -> tuple[int, dict[str, Any]]:
    """A refused command as the form shows it: the status and the error body's fields."""
    if isinstance(exc, InvalidValue):
        return 422, {"detail": exc.message, "code": "invalid_value", "field": exc.field}
    if isinstance(exc, RuleViolation):
        return 409, {"detail": exc.message, "code": "rule_violation", "rule": exc.rule}
    if isinstance(exc, NotPermitted):
        return 403, {"detail": exc.message, "code": "forbidden", "rule": exc.rule}
    if isinstance(exc, VersionConflict):
        return 409, {
            "detail": exc.message,
            "code": "version_conflict",
            "current_version": exc.current_version,
        }
    if isinstance(exc, IdempotencyKeyReused):
        return 409, {"detail": exc.message, "code": "idempotency_key_reused"}
    raise exc  # pragma: no cover - only the errors above reach here


# --- deals: the kanban -------------------------------------------------------------------


def kanban(
    platform: Platform, principal: Principal, funnel_id: str, manager: str | None
) -> dict[str, Any]:
    """The open deals of one deal funnel by stage (``GET /deals``'s query) with each
    stage's count and amount (the deal-pipeline report's query), over the read scope."""
    funnel = platform.rules.deal_funnels[funnel_id]
    open_deals = {"funnel": funnel_id, "status": "open", "manager": manager}
    filters = Filters(equal=open_deals)
    with read_models(platform, principal) as cursor:
        items, total = list_deals(cursor, filters, KANBAN_LIMIT, 0)
        totals = deal_pipeline(cursor, [funnel], Filters(equal={"manager": manager}))
    now = platform.clock()
    by_stage: dict[str, list[dict[str, Any]]] = {s.id: [] for s in funnel.stages}
    for item in items:
        item["age_days"] = max(0, (now - item["created_at"]).days)
        item["stage_days"] = max(0, (now - item["stage_entered_at"]).days)
        by_stage.setdefault(item["stage"], []).append(item)
    figures = {s["stage"]: s for s in totals[0]["stages"]} if totals else {}
    columns = [
        {
            "id": s.id,
            "name": s.name,
            "deals": by_stage.get(s.id, []),
            "count": figures.get(s.id, {}).get("count", 0),
            "amount": figures.get(s.id, {}).get("amount", 0),
        }
        for s in funnel.stages
    ]
    return {"columns": columns, "total": total, "shown": len(items)}


@router.get("/deals")
def deals_board(
    request: Request, principal: Viewer, funnel: str | None = None, manager: str | None = None
) -> HTMLResponse:
    require(principal, "GET", "/deals")
    platform = _platform(request)
    funnels = platform.rules.deal_funnels
    chosen = funnel if funnel is not None and funnel in funnels else next(iter(funnels))
    who = (manager or "").strip()[:100] or None
    board = kanban(platform, principal, chosen, who)
    context = {
        "board": board,
        "funnels": [(f.id, f.name) for f in funnels.values()],
        "chosen": {"funnel": chosen, "manager": who},
        "may_move": may(principal, "POST", DEAL_ACTIONS["stage"][0]),
        "board_url": f"{PREFIX}/deals?" + urlencode({"funnel": chosen, "manager": who or ""}),
        "export": export_link(f"{PREFIX}/deals/export.xlsx", {"funnel": chosen, "manager": who}),
        "key": uuid4().hex,
    }
    return render(request, "deals/board.html", context, principal=principal)


@router.get("/deals/export.xlsx")
def deal_export(
    request: Request,
    principal: Viewer,
    funnel: Annotated[str | None, Query(max_length=100)] = None,
    manager: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The deals the viewer sees of the board's funnel (open, won and lost; the board's
    manager) in the deals import's format."""
    require(principal, "GET", "/deals")
    platform = _platform(request)
    chosen = funnel if funnel in platform.rules.deal_funnels else None
    filters = ExportFilters(chosen, (manager or "").strip() or None)
    with read_models(platform, principal) as cursor:
        kind, records = kind_records(
            cursor, "deals", platform.funnels, platform.rules, platform.directories, filters
        )
        return export_response(kind, records, "deals.xlsx")


# --- deals: the card ---------------------------------------------------------------------


def _guard_allows(guard: Callable[[Any], None], state: Any) -> bool:
    try:
        guard(state)
    except NotPermitted:
        return False
    return True


def deal_forms(platform: Platform, principal: Principal, state: deal.Deal) -> dict[str, bool]:
    """Which of the deal's forms the viewer gets: the role may (the endpoint table), the
    ownership guard lets them, and the deal's state allows it."""
    policy = Policy(principal, StoreDirectory(platform.store))
    runs = _guard_allows(policy.deal("act on"), state)
    is_open = state.status is deal.DealStatus.OPEN

    def allowed(action: str) -> bool:
        return may(principal, "POST", DEAL_ACTIONS[action][0]) and runs and is_open

    approver = _guard_allows(
        policy.prepayment_approval(platform.rules.may_approve_prepayment), state
    )
    pending = any(i.approval == deal.APPROVAL_PENDING for i in state.invoices)
    return {
        "stage": allowed("stage"),
        "proposal": allowed("proposal"),
        "contract": allowed("contract") and state.proposal is not None,
        "invoice": allowed("invoice") and state.contract is not None,
        "approval": may(principal, "POST", DEAL_ACTIONS["approval"][0])
        and approver
        and is_open
        and pending,
        "close": allowed("close"),
        "requests": allowed("requests"),
    }


def deal_card_context(
    platform: Platform, principal: Principal, deal_id: UUID, moment: datetime | None = None
) -> tuple[deal.Deal, dict[str, Any]]:
    """What the deal card shows: the deal (from the event store, as ``GET /deals/{id}``),
    each hand-off request as ``GET /handoffs/{id}`` shows it, and the history; at
    ``moment``, all of them as they were then (and no forms: the past is read only)."""
    state = deal_as_of(platform.store, deal_id, moment)
    rules = platform.rules
    funnel = rules.deal_funnels.get(state.funnel)
    requests = []
    for view in state.handoffs:
        try:
            request = handoff_as_of(platform.store, rules, view.request_id, moment)
        except StreamNotFound:  # noted on the deal in the same instant it was asked
            continue
        detail = handoff_detail(request, rules)
        department = rules.departments.get(request.department)
        detail["department_name"] = department.name if department else request.department
        detail["stage_name"] = _stage_name(department, request.stage)
        requests.append(detail)
    calculations = [
        r
        for r in requests
        if rules.departments[r["department"]].outcome == "calculation"
        and r["calculation"] is not None
        and r["status"] in ("ready", "done")
    ]
    stage_names = {s.id: s.name for s in funnel.stages} if funnel else {}
    records = load_deal_records(platform.store, deal_id, as_of=moment)
    history = timeline(deal_history(records), stage_names)
    context = {
        "deal": deal_detail(state),
        "funnel_name": funnel.name if funnel else state.funnel,
        "stages": [(s.id, s.name) for s in funnel.stages] if funnel else [],
        "stage_name": {s.id: s.name for s in funnel.stages}.get(state.stage, state.stage)
        if funnel
        else state.stage,
        "requests": requests,
        "calculations": calculations,
        "history": history,
        "event_labels": EVENT_LABELS,
        "forms": deal_forms(platform, principal, state) if moment is None else {},
        "departments": [(d.id, d.name) for d in rules.departments.values()],
        "organisations": [(o.id, o.name) for o in rules.organisations.values()],
        "service_rows": range(SERVICE_ROWS),
        "key": uuid4().hex,
        "age_days": max(0, ((moment or platform.clock()) - state.created_at).days),
        "as_of": moment,
        "as_of_value": as_of_value(moment),
    }
    return state, context


def _render_deal(
    request: Request,
    principal: Principal,
    deal_id: UUID,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
    moment: datetime | None = None,
) -> HTMLResponse:
    try:
        _, context = deal_card_context(_platform(request), principal, deal_id, moment)
    except StreamNotFound:
        if moment is None:
            raise PageNotFound from None
        context = {"deal": {"deal_id": deal_id}, "not_yet": True, "as_of": moment}
        context["as_of_value"] = as_of_value(moment)
    context["error"] = error
    return render(request, "deals/card.html", context, principal=principal, status_code=status_code)


@router.get("/deals/{deal_id}")
async def deal_card(
    request: Request,
    principal: Viewer,
    deal_id: str,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The deal now, or as it was at ``as_of`` (the "as of" control; read only)."""
    require(principal, "GET", "/deals/{deal_id}")
    deal_uuid = _uuid(deal_id)
    await _require_seen(request, principal, "deals", "deal_id", deal_uuid)
    moment = as_of_moment(as_of, _platform(request).clock())
    return await run_in_threadpool(_render_deal, request, principal, deal_uuid, moment=moment)


def _deal_command(
    platform: Platform, action: str, deal_id: UUID, form: FormData
) -> tuple[dict[str, Any], dict[str, str], Callable[[CommandContext], CommandResult]]:
    """The form as the API route's body, path parameters and handler call."""
    store, rules = platform.store, platform.rules
    params = {"deal_id": str(deal_id)}

    def run_deal(command: deal.DealCommand) -> Callable[[CommandContext], CommandResult]:
        return lambda ctx: handle_deal_command(store, rules, deal_id, command, ctx)

    if action == "stage":
        stage = _validated(DealStageRequest, _fields(form, "stage"))
        return stage.model_dump(mode="json"), params, run_deal(deal.MoveDealToStage(stage.stage))
    if action == "proposal":
        fields = _fields(form, "organisation")
        if _text(form, "calculation"):
            fields["calculation"] = _text(form, "calculation")
        else:
            fields["services"] = _service_rows(form, "name", "price")
        proposal = _validated(ProposalRequest, fields)
        typed = tuple(deal.ServiceLine(s.name, s.price) for s in proposal.services or ())
        command: deal.DealCommand = (
            deal.RecordProposal(typed, proposal.organisation)
            if proposal.calculation is None
            else deal.RecordProposalFromCalculation(
                proposal.calculation, typed=False, organisation=proposal.organisation
            )
        )
        return proposal.model_dump(mode="json"), params, run_deal(command)
    if action == "contract":
        contract = _validated(ContractRequest, _fields(form, "number", "signed_on"))
        command = deal.RecordContract(contract.number, contract.signed_on)
        return contract.model_dump(mode="json"), params, run_deal(command)
    if action == "invoice":
        fields = _fields(form, "number", "amount", "organisation", "issued_on")
        fields["prepayment"] = form.get("prepayment") == "on"
        invoice = _validated(InvoiceRequest, fields)
        command = deal.IssueInvoice(
            invoice.number,
            invoice.amount,
            invoice.organisation,
            invoice.prepayment,
            invoice.issued_on,
        )
        return invoice.model_dump(mode="json"), params, run_deal(command)
    if action == "approval":
        number = _text(form, "invoice") or ""
        approval = _validated(InvoiceApprovalRequest, _fields(form, "decision", "reason"))
        params["number"] = number
        command = deal.DecideInvoiceApproval(
            number, approval.decision == "approve", approval.reason
        )
        return {"invoice": number, **approval.model_dump(mode="json")}, params, run_deal(command)
    if action == "close":
        close = _validated(DealCloseRequest, _fields(form, "outcome", "reason"))
        return (
            close.model_dump(mode="json"),
            params,
            run_deal(deal.CloseDeal(close.outcome, close.reason)),
        )
    if action == "requests":
        ask = _validated(HandoffCreateRequest, _fields(form, "department", "notes"))

        def run(ctx: CommandContext) -> CommandResult:
            command = handoff.CreateHandoff(
                request_id=request_id_for(ctx.command_id),
                deal_id=deal_id,
                department=ask.department,
                notes=ask.notes,
            )
            return create_handoff(store, rules, command, ctx)

        return ask.model_dump(mode="json"), params, run
    raise PageNotFound


def _scope_of_deal_action(action: str, deal_id: UUID) -> str:
    return f"deal:{deal_id}:request" if action == "requests" else f"deal:{deal_id}"


@router.post("/deals/{deal_id}/{action}", dependencies=[CsrfChecked])
async def deal_action(request: Request, principal: Viewer, deal_id: str, action: str) -> Response:
    if action not in DEAL_ACTIONS:
        raise PageNotFound
    deal_uuid = _uuid(deal_id)
    path, name = DEAL_ACTIONS[action]
    require(principal, "POST", path)
    form = await request.form()
    platform = _platform(request)

    def apply() -> CommandResult:
        body, params, handler = _deal_command(platform, action, deal_uuid, form)
        command = {"command": action, "deal_id": str(deal_uuid), **body}
        if action == "approval":
            command["command"] = "invoice_approval"
        ctx = command_context(
            request,
            principal,
            (path, name),
            params,
            _scope_of_deal_action(action, deal_uuid),
            command,
            form,
            new_record=action == "requests",  # the request's: the deal's version is not
        )
        return handler(ctx)

    def refused(exc: Exception) -> Response:
        status, error = failure(exc)
        error["action"] = action
        error["values"] = {k: v for k, v in form.items() if isinstance(v, str)}
        return _render_deal(request, principal, deal_uuid, error=error, status_code=status)

    back = _text(form, "next")  # the kanban's move form comes back to the board
    target = local_target(back) if back else f"{PREFIX}/deals/{deal_uuid}"
    return await post_form(request, apply, refused, target)


# --- the department queue ---------------------------------------------------------------


@router.get("/queue")
def queue(
    request: Request,
    principal: Viewer,
    department: str | None = None,
    status: str | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    """The department's requests (``GET /handoffs``'s query, over the read scope), a
    page of QUEUE_SIZE from ``offset``: a department worker's and a head's own
    department, top management any."""
    require(principal, "GET", "/handoffs")
    if principal.role not in QUEUE_ROLES:
        raise NotPermitted("role_not_allowed", f"{principal.role.with_article} has no queue")
    platform = _platform(request)
    departments = platform.rules.departments
    if principal.role is Role.TOP:
        chosen = (
            department
            if department is not None and department in departments
            else next(iter(departments))
        )
    else:
        chosen = principal.department or ""
    wanted = status if status in HANDOFF_STATUSES else None
    filters = Filters(equal={"department": chosen, "status": wanted})
    if wanted is None:
        filters.extra.append((OPEN_REQUEST, []))
    with read_models(platform, principal) as cursor:
        items, total = list_handoffs(cursor, filters, QUEUE_SIZE, offset)
        parents = _deals_of(cursor, [str(i["deal_id"]) for i in items])
    for item in items:
        parent = parents.get(str(item["deal_id"]), {})
        item["deal_title"] = parent.get("title", "")
        item["company_name"] = parent.get("company_name", "")
        item["manager"] = parent.get("manager", "")
        item["stage_name"] = _stage_name(departments.get(item["department"]), item["stage"])
    context = {
        "items": items,
        "total": total,
        "department": departments.get(chosen),
        "departments": [(d.id, d.name) for d in departments.values()]
        if principal.role is Role.TOP
        else [],
        "chosen": {"department": chosen, "status": wanted},
        "statuses": HANDOFF_STATUSES,
        "page": pager(
            f"{PREFIX}/queue",
            {"department": department, "status": wanted},
            offset,
            QUEUE_SIZE,
            total,
        ),
    }
    return render(request, "deals/queue.html", context, principal=principal)


def _deals_of(cursor: Any, deal_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The queue's deals (``GET /deals``'s query over the viewer's scope, one page of ids)."""
    if not deal_ids:
        return {}
    filters = Filters(extra=[("deal_id IN (SELECT unnest(?))", [deal_ids])])
    items, _ = list_deals(cursor, filters, len(deal_ids), 0)
    return {str(i["deal_id"]): i for i in items}


def _stage_name(department: Department | None, stage: str) -> str:
    if department is None:
        return stage
    found = department.funnel.stage(stage)
    return stage if found is None else found.name


HISTORY_FIELDS = {
    "stage": N_("Stage"),
    "status": N_("Status"),
    "amount": N_("Amount"),
    "manager": N_("Manager"),
    "title": N_("Title"),
    "close_reason": N_("Closed because"),
}
"""The deal's fields the timeline spells out, with their labels (the rest is in the
event's name)."""


def timeline(entries: list[dict[str, Any]], stage_names: dict[str, str]) -> list[dict[str, Any]]:
    """The history newest first, each entry with its plain changes (old, new) of the
    fields people read; a stage by its name."""
    shown = []
    for entry in reversed(entries):
        changes = []
        if entry["version"] > 1:
            for field, label in HISTORY_FIELDS.items():
                change = entry["changes"].get(field)
                if change is None:
                    continue
                old, new = change["old"], change["new"]
                if field == "stage":
                    old, new = stage_names.get(old, old), stage_names.get(new, new)
                changes.append({"field": field, "label": label, "old": old, "new": new})
        shown.append({**entry, "shown_changes": changes})
    return shown


def handoff_forms(
    platform: Platform, principal: Principal, state: handoff.HandoffRequest
) -> dict[str, bool]:
    """Which of the request's forms the viewer gets (role, guard, state)."""
    department = platform.rules.require_department(state.department)
    policy = Policy(principal, StoreDirectory(platform.store))
    ours = _guard_allows(policy.handoff("act on"), state)
    status = state.status(department)
    live = status not in ("done", "rejected", "cancelled")
    in_work = live and state.assignee is not None
    ready = department.is_ready(state.stage)

    def allowed(action: str) -> bool:
        return may(principal, "POST", HANDOFF_ACTIONS[action][0]) and ours

    parent = deal_as_of(platform.store, state.deal_id, None)
    delivery = (
        allowed("delivery")
        and state.logistics is not None
        and state.logistics.contractor_id is not None
        and state.delivery is None
        and state.ready_at is not None
        and status != "rejected"
        and parent.status is deal.DealStatus.WON
    )
    return {
        "take": allowed("take") and live and state.assignee is None,
        "estimate": allowed("estimate")
        and in_work
        and not ready
        and department.outcome == "logistics",
        "plan": allowed("plan") and in_work and not ready and department.outcome == "engineering",
        "calculation": allowed("calculation")
        and in_work
        and not ready
        and department.outcome == "calculation",
        "stage": allowed("stage") and in_work,
        "reject": allowed("reject") and live,
        "delivery": delivery,
        "contractor": may(principal, "POST", "/contractors")
        and in_work
        and not ready
        and department.outcome == "logistics",
    }


def request_page_context(
    platform: Platform, principal: Principal, request_id: UUID, moment: datetime | None = None
) -> dict[str, Any]:
    """What the request page shows, now or as it was at ``moment`` (then read only)."""
    rules = platform.rules
    state = handoff_as_of(platform.store, rules, request_id, moment)
    department = rules.require_department(state.department)
    parent = deal_as_of(platform.store, state.deal_id, moment)
    forms = handoff_forms(platform, principal, state)
    if moment is not None:
        forms = dict.fromkeys(forms, False)
    contractors: list[dict[str, Any]] = []
    if forms["estimate"]:
        with read_models(platform, principal) as cursor:
            contractors, _ = list_contractors(cursor, None, 500, 0)
    movable = {department.first_stage, department.rejected_stage, state.stage}
    records = load_handoff_records(platform.store, request_id, as_of=moment)
    return {
        "request": handoff_detail(state, rules),
        "department": department,
        "deal": deal_detail(parent),
        "deal_stage_name": {
            s.id: s.name for f in rules.deal_funnels.values() for s in f.stages
        }.get(parent.stage, parent.stage),
        "stages": [(s.id, s.name) for s in department.funnel.stages if s.id not in movable],
        "stage_name": {s.id: s.name for s in department.funnel.stages}.get(
            state.stage, state.stage
        ),
        "contractors": contractors,
        "forms": forms,
        "history": list(reversed(handoff_history(records, rules))),
        "event_labels": EVENT_LABELS,
        "service_rows": range(SERVICE_ROWS),
        "key": uuid4().hex,
        "today": platform.clock().date(),
        "as_of": moment,
        "as_of_value": as_of_value(moment),
    }


def _render_request(
    request: Request,
    principal: Principal,
    request_id: UUID,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
    moment: datetime | None = None,
) -> HTMLResponse:
    try:
        context = request_page_context(_platform(request), principal, request_id, moment)
    except StreamNotFound:
        if moment is None:
            raise PageNotFound from None
        context = {"request": {"request_id": request_id}, "not_yet": True, "as_of": moment}
        context["as_of_value"] = as_of_value(moment)
    context["error"] = error
    return render(
        request, "deals/request.html", context, principal=principal, status_code=status_code
    )


@router.get("/handoffs/{request_id}")
async def request_page(
    request: Request,
    principal: Viewer,
    request_id: str,
    chosen_contractor: Annotated[str | None, Query(alias="contractor", max_length=40)] = None,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The request, now or as it was at ``as_of``; ``contractor`` (one just added to the
    directory) is the estimate form's choice."""
    require(principal, "GET", "/handoffs/{request_id}")
    request_uuid = _uuid(request_id)
    await _require_seen(request, principal, "handoffs", "request_id", request_uuid)
    chosen = {"action": None, "values": {"contractor_id": chosen_contractor}}
    return await run_in_threadpool(
        _render_request,
        request,
        principal,
        request_uuid,
        error=chosen if chosen_contractor else None,
        moment=as_of_moment(as_of, _platform(request).clock()),
    )


def _handoff_command(
    platform: Platform, principal: Principal, action: str, request_id: UUID, form: FormData
) -> tuple[BaseModel, Callable[[CommandContext], CommandResult]]:
    store, rules = platform.store, platform.rules

    def run_handoff(command: handoff.HandoffCommand) -> Callable[[CommandContext], CommandResult]:
        return lambda ctx: handle_handoff_command(store, rules, request_id, command, ctx)

    if action == "take":
        take = _validated(TakeRequestForm, {})
        return take, run_handoff(handoff.TakeHandoff(principal.user))
    if action == "estimate":
        fields = _fields(form, "service", "cost", "lead_time_days", "rating", "notes")
        contractor = _text(form, "contractor_id")
        if contractor == "own":
            fields["own_equipment"] = True
        elif contractor is not None:
            fields["contractor_id"] = contractor
        estimate = _validated(LogisticsEstimateRequest, fields)
        command: handoff.HandoffCommand = handoff.RecordLogisticsEstimate(
            service=estimate.service,
            cost=estimate.cost,
            lead_time_days=estimate.lead_time_days,
            contractor_id=estimate.contractor_id,
            own_equipment=estimate.own_equipment,
            notes=estimate.notes,
            rating=estimate.rating,
        )
        return estimate, run_handoff(command)
    if action == "plan":
        plan = _validated(PlanRequest, _fields(form, "hours", "notes"))
        return plan, run_handoff(handoff.RecordEngineeringPlan(plan.hours, plan.notes))
    if action == "calculation":
        fields = _fields(form, "notes")
        fields["services"] = _service_rows(form, "name", "quantity", "unit", "price", "hours")
        calculation = _validated(CalculationRequest, fields)
        command = handoff.RecordCalculation(
            services=tuple(
                handoff.CalculatedServiceLine(s.name, s.price, s.quantity, s.unit, s.hours)
                for s in calculation.services
            ),
            notes=calculation.notes,
        )
        return calculation, run_handoff(command)
    if action == "stage":
        stage = _validated(HandoffStageRequest, _fields(form, "stage"))
        return stage, run_handoff(handoff.MoveHandoffToStage(stage.stage))
    if action == "reject":
        reject = _validated(RejectRequest, _fields(form, "reason"))
        return reject, run_handoff(handoff.RejectHandoff(reject.reason))
    if action == "delivery":
        delivered = _validated(DeliveryRequest, _fields(form, "completed_on", "rating", "notes"))
        done = handoff.RecordDelivery(delivered.completed_on, delivered.rating, delivered.notes)
        return delivered, lambda ctx: record_delivery(store, rules, request_id, done, ctx)
    raise PageNotFound


def _register_contractor(
    platform: Platform, form: FormData
) -> tuple[BaseModel, Callable[[CommandContext], CommandResult]]:
    """A new contractor for the directory, from the request page (``POST /contractors``'s
    handler); its services are typed separated by commas."""
    fields = _fields(form, "name", "contacts")
    typed = (_text(form, "services") or "").split(",")
    fields["services"] = [service.strip() for service in typed if service.strip()]
    body = _validated(ContractorRequest, fields)

    def run(ctx: CommandContext) -> CommandResult:
        command = contractor.RegisterContractor(
            contractor_id=contractor_id_for(ctx.command_id),
            name=body.name,
            services=tuple(body.services),
            contacts=body.contacts,
            notes=body.notes,
        )
        return register_contractor(platform.store, command, ctx)

    return body, run


@router.post("/handoffs/{request_id}/contractor", dependencies=[CsrfChecked])
async def new_contractor(request: Request, principal: Viewer, request_id: str) -> Response:
    """Add a contractor to the directory while estimating: back on the request page with
    the new contractor chosen in the estimate form."""
    request_uuid = _uuid(request_id)
    require(principal, "GET", "/handoffs/{request_id}")
    require(principal, "POST", "/contractors")
    await _require_seen(request, principal, "handoffs", "request_id", request_uuid)
    form = await request.form()
    platform = _platform(request)

    def apply() -> CommandResult:
        body, handler = _register_contractor(platform, form)
        command = {"command": "register", **body.model_dump(mode="json")}
        ctx = command_context(
            request,
            principal,
            ("/contractors", "register"),
            {},
            "register-contractor",
            command,
            form,
            new_record=True,
        )
        return handler(ctx)

    def refused(exc: Exception) -> Response:
        status, error = failure(exc)
        error["action"] = "contractor"
        error["values"] = {k: v for k, v in form.items() if isinstance(v, str)}
        return _render_request(request, principal, request_uuid, error=error, status_code=status)

    # read your write: the directory on the page shows the new contractor, chosen
    return await post_form(
        request,
        apply,
        refused,
        lambda result: f"{PREFIX}/handoffs/{request_uuid}?contractor={result.stream_id}",
    )


class TakeRequestForm(BaseModel):
    """Taking a request from the page takes it for oneself (the API's body, empty)."""


@router.post("/handoffs/{request_id}/{action}", dependencies=[CsrfChecked])
async def request_action(
    request: Request, principal: Viewer, request_id: str, action: str
) -> Response:
    if action not in HANDOFF_ACTIONS:
        raise PageNotFound
    request_uuid = _uuid(request_id)
    path, name = HANDOFF_ACTIONS[action]
    require(principal, "POST", path)
    form = await request.form()
    platform = _platform(request)

    def apply() -> CommandResult:
        body, handler = _handoff_command(platform, principal, action, request_uuid, form)
        command = {
            "command": action,
            "request_id": str(request_uuid),
            **body.model_dump(mode="json"),
        }
        params = {"request_id": str(request_uuid)}
        ctx = command_context(
            request, principal, (path, name), params, f"handoff:{request_uuid}", command, form
        )
        return handler(ctx)

    def refused(exc: Exception) -> Response:
        status, error = failure(exc)
        error["action"] = action
        error["values"] = {k: v for k, v in form.items() if isinstance(v, str)}
        return _render_request(request, principal, request_uuid, error=error, status_code=status)

    return await post_form(request, apply, refused, f"{PREFIX}/handoffs/{request_uuid}")
