"""The workspace's lead pages: the filtered list with the funnel chart and the "New lead"
form, the lead card with its tabs (card, cost breakdown, sensitive information, history,
status time) and "as of" control, and the lead's commands as forms.

Every form goes through the same command handler, with the same ownership guard
(:func:`read_api.access.command_guard` for the API operation the form stands for), as the
JSON API; every tab reads through the same function its API route calls. A form carries
the lead's version (a stale form is refused and shows the current state) and an
idempotency key (a double submit applies once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from aggregates import lead, sensitive
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from aggregates.users import Principal, Role
from commands.context import (
    CommandContext,
    CommandFailed,
    CommandResult,
    StreamNotFound,
    VersionConflict,
)
from commands.deals import convert_lead
from commands.leads import create_lead, handle_lead_command, lead_id_for
from commands.sensitive import read_sensitive_info, set_sensitive_info
from commands.users import StoreDirectory
from leadledger.imports.export import ExportFilters, export_response, kind_records
from leadledger.wiring import Platform
from queries.leads import LeadFilters, funnel_report, get_lead, list_leads
from read_api.access import read_models
from read_api.routes import status_time as status_time_routes
from read_api.routes.leads import lead_detail, lead_history
from schemas.deals import ConvertLeadRequest
from schemas.leads import (
    AssessmentRequest,
    CloseRequest,
    CostBreakdownRequest,
    CreateLeadRequest,
    PauseRequest,
    QualificationRequest,
    ResumeRequest,
    StageRequest,
    TransferRequest,
)
from schemas.users import SensitiveInfoRequest
from workspace import i18n
from workspace.imports import export_link
from workspace.pages import (
    LEAD_STATUSES,
    PAGE_SIZE,
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    _platform,
    as_of_moment,
    as_of_value,
    chart_data,
    command_context,
    may,
    pager,
    post_form,
    render,
    require,
)

router = APIRouter()
TABS = ("card", "cost", "sensitive", "history", "status-time")
COST_ROWS = 3
"""Empty rows the cost breakdown form offers beyond the lead's components."""


# --- commands as forms -------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One of the lead's commands as a form: the API operation it stands for (its roles
    and its guard), the body model it validates, and how it runs."""

    method: str
    api_path: str
    command: str
    """The API route's name: recorded as the event's command, as the API records it."""
    body: Callable[[FormData], dict[str, Any]]
    model: type[BaseModel]
    run: Callable[[Platform, UUID, Any, CommandContext], CommandResult]
    scope: str = "lead:{lead_id}"


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _lead_command(
    make: Callable[[Any], lead.LeadCommand],
) -> Callable[[Platform, UUID, Any, CommandContext], CommandResult]:
    def run(platform: Platform, lead_id: UUID, body: Any, ctx: CommandContext) -> CommandResult:
        return handle_lead_command(platform.store, platform.funnels, lead_id, make(body), ctx)

    return run


def _cost_body(form: FormData) -> dict[str, Any]:
    names = form.getlist("component_name")
    amounts = form.getlist("component_amount")
    components = [
        {"name": str(name).strip(), "amount": str(amount).strip() or "0"}
        for name, amount in zip(names, amounts, strict=False)
        if str(name).strip() or str(amount).strip()
    ]
    return {"components": components}


def _sensitive_body(form: FormData) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for line in str(form.get("fields") or "").splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip():
            fields[name.strip()] = value.strip()
        elif line.strip():
            raise InvalidValue("fields", "write each field on a line of its own as 'name: value'")
    return {"notes": str(form.get("notes") or ""), "fields": fields}


def _convert(platform: Platform, lead_id: UUID, body: Any, ctx: CommandContext) -> CommandResult:
    return convert_lead(platform.store, platform.funnels, platform.rules, lead_id, body.funnel, ctx)


def _seal(platform: Platform, lead_id: UUID, body: Any, ctx: CommandContext) -> CommandResult:
    info = sensitive.clean(body.notes, body.fields)
    return set_sensitive_info(platform.store, platform.keys, lead_id, info, ctx)


def _components(body: Any) -> lead.LeadCommand:
    return lead.SetLeadCostBreakdown(
        tuple(lead.CostComponent(c.name, c.amount) for c in body.components)
    )


ACTIONS: dict[str, Action] = {
    "stage": Action(
        "POST",
        "/leads/{lead_id}/stage",
        "move_to_stage",
        lambda f: {"stage": _text(f, "stage") or ""},
        StageRequest,
        _lead_command(lambda b: lead.MoveLeadToStage(b.stage)),
    ),
    "pause": Action(
        "POST",
        "/leads/{lead_id}/pause",
        "pause",
        lambda f: {"reason": _text(f, "reason") or ""},
        PauseRequest,
        _lead_command(lambda b: lead.PauseLead(b.reason)),
    ),
    "resume": Action(
        "POST",
        "/leads/{lead_id}/resume",
        "resume",
        lambda f: {},
        ResumeRequest,
        _lead_command(lambda b: lead.ResumeLead()),
    ),
    "transfer": Action(
        "POST",
        "/leads/{lead_id}/transfer",
        "transfer",
        lambda f: {"funnel": _text(f, "funnel") or "", "stage": _text(f, "stage")},
        TransferRequest,
        _lead_command(lambda b: lead.TransferLead(b.funnel, b.stage)),
    ),
    "assessment": Action(
        "POST",
        "/leads/{lead_id}/assessment",
        "record_assessment",
        lambda f: {
            "expert": _text(f, "expert") or "",
            "result": _text(f, "result") or "",
            "hours": _text(f, "hours") or "0",
        },
        AssessmentRequest,
        _lead_command(lambda b: lead.RecordLeadAssessment(b.expert, b.result, b.hours)),
    ),
    "qualification": Action(
        "POST",
        "/leads/{lead_id}/qualification",
        "qualify",
        lambda f: {"quality": f.get("quality") == "true", "reason": _text(f, "reason")},
        QualificationRequest,
        _lead_command(lambda b: lead.QualifyLead(b.quality, b.reason)),
    ),
    "close": Action(
        "POST",
        "/leads/{lead_id}/close",
        "close",
        lambda f: {"outcome": _text(f, "outcome") or "", "reason": _text(f, "reason")},
        CloseRequest,
        _lead_command(lambda b: lead.CloseLead(b.outcome, b.reason)),
    ),
    "deal": Action(
        "POST",
        "/leads/{lead_id}/deal",
        "convert",
        lambda f: {"funnel": _text(f, "funnel")},
        ConvertLeadRequest,
        _convert,
        scope="lead:{lead_id}:deal",
    ),
    "cost": Action(
        "POST",
        "/leads/{lead_id}/cost",
        "set_cost",
        _cost_body,
        CostBreakdownRequest,
        _lead_command(_components),
    ),
    "sensitive": Action(
        "PUT",
        "/leads/{lead_id}/sensitive",
        "set_info",
        _sensitive_body,
        SensitiveInfoRequest,
        _seal,
        scope="sensitive:{lead_id}",
    ),
}
"""The lead's commands; the card shows each where the viewer's role may call it."""

FORM_TABS = {"cost": "cost", "sensitive": "sensitive"}
"""The tab a form lives on (the others are on the card)."""
OPEN_ONLY = frozenset({"stage", "pause", "transfer", "assessment", "qualification", "deal"})


def offered(principal: Principal, detail: dict[str, Any]) -> list[str]:
    """The commands the card offers: the role may call them (the API's table) and the
    lead's state is one they apply to (the decider still has the last word)."""
    status = detail["status"]
    if status in ("won", "lost", "non_quality"):
        return []
    names = [n for n, a in ACTIONS.items() if may(principal, a.method, a.api_path)]
    shown = []
    for name in names:
        if name in OPEN_ONLY and status != "open":
            continue
        if name == "resume" and status != "paused":
            continue
        if name == "deal" and (detail.get("quality") is not True or detail.get("deal_id")):
            continue
        shown.append(name)
    return shown


def _context(
    request: Request,
    principal: Principal,
    method: str,
    api_path: str,
    command: str,
    scope: str,
    lead_id: UUID | None,
    payload: dict[str, Any],
    form: FormData,
) -> CommandContext:
    """The command's context as the API builds it for the same operation
    (:func:`workspace.pages.command_context`): the form's version as the expected one and
    its key as the Idempotency-Key."""
    return command_context(
        request,
        principal,
        Operation(api_path, command),
        {"lead_id": str(lead_id)} if lead_id else {},
        scope,
        payload,
        version=_text(form, "version"),
        key=_text(form, "idempotency_key"),
        method=method,
    )


def _message(error: Exception) -> tuple[str, int]:
    """A refusal in words and its status (the API's: 422 for a bad field, 409 for a rule
    or a conflict, 403 for a refused actor)."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        return f"{field}: {first['msg']}", 422
    if isinstance(error, InvalidValue):
        return f"{error.field}: {error.message}", 422
    if isinstance(error, NotPermitted):
        return error.message, 403
    if isinstance(error, RuleViolation):
        return error.message, 409
    if isinstance(error, DomainError | CommandFailed):
        return error.message, 409 if isinstance(error, CommandFailed) else 422
    raise error


# --- the list --------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@router.get("/leads")
def leads(
    request: Request,
    principal: Viewer,
    funnel: Annotated[str | None, Query(max_length=100)] = None,
    stage: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    manager: Annotated[str | None, Query(max_length=100)] = None,
    created_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    created_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    return _list_page(
        request,
        principal,
        {
            "funnel": funnel,
            "stage": stage,
            "status": status,
            "manager": manager,
            "from": created_from,
            "to": created_to,
        },
        page,
    )


def _list_page(
    request: Request,
    principal: Principal,
    raw: dict[str, str | None],
    page: int,
    *,
    new_lead: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/leads")
    platform = _platform(request)
    start, end = _day(raw.get("from")), _day(raw.get("to"))
    chosen: dict[str, str | None] = {
        "funnel": raw["funnel"] if raw.get("funnel") in platform.funnels else None,
        "stage": raw.get("stage") or None,
        "status": raw["status"] if raw.get("status") in LEAD_STATUSES else None,
        "manager": (raw.get("manager") or "").strip() or None,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
    }
    filters = LeadFilters(
        chosen["funnel"],
        chosen["stage"],
        chosen["status"],
        chosen["manager"],
        datetime.combine(start, datetime.min.time(), UTC) if start else None,
        datetime.combine(end, datetime.max.time(), UTC) if end else None,
    )
    shown = [platform.funnels[chosen["funnel"]]] if chosen["funnel"] else platform.funnels.values()
    with read_models(platform, principal) as cursor:
        items, total = list_leads(cursor, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        reports = [
            {
                "name": f.name,
                **funnel_report(cursor, f, filters.created_from, filters.created_to),
            }
            for f in shown
        ]
    offset = (page - 1) * PAGE_SIZE
    context = {
        "items": items,
        "total": total,
        "page": pager(f"{PREFIX}/leads", chosen, offset, PAGE_SIZE, total, by_page=True),
        "chosen": chosen,
        "funnels": [(f.id, f.name) for f in platform.funnels.values()],
        "stages": sorted({(s.id, s.name) for f in platform.funnels.values() for s in f.stages}),
        "statuses": LEAD_STATUSES,
        "chart": chart_data(
            [r for r in reports if r["totals"]["count"]],
            i18n.translations(i18n.language_of(request)).gettext,
        ),
        "may_create": may(principal, "POST", "/leads"),
        "export": export_link(
            f"{PREFIX}/leads/export.xlsx",
            {k: chosen[k] for k in ("funnel", "manager", "from", "to")},
        ),
        "managers": _nameable_managers(platform, principal),
        "new_lead": new_lead or {"values": {}, "error": None, "key": uuid4().hex},
    }
    return render(request, "leads/list.html", context, principal=principal, status_code=status_code)


def _nameable_managers(platform: Platform, principal: Principal) -> list[str] | None:
    """Whom the "New lead" form offers as manager: a manager themselves, an assistant the
    managers they work for; None: a free field (a head or top management)."""
    if principal.role is Role.MANAGER:
        return [principal.user]
    if principal.role is Role.ASSISTANT:
        return sorted(StoreDirectory(platform.store).managers_of(principal.user))
    return None


NEW_LEAD_FIELDS = (
    "funnel",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "answer_due",
    "amount",
    "contact",
    "contact_id",
    "description",
)


@router.post("/leads", dependencies=[CsrfChecked])
async def new_lead(request: Request, principal: Viewer) -> Response:
    """The "New lead" form: POST /leads's handler with its guard (an assistant names one
    of the managers they work for, a manager only themselves)."""
    form = await request.form()
    require(principal, "POST", "/leads")
    platform = _platform(request)
    values = {name: _text(form, name) for name in NEW_LEAD_FIELDS}
    payload_in = {k: v for k, v in values.items() if v is not None}

    def apply() -> CommandResult:
        body = CreateLeadRequest.model_validate(payload_in)
        payload = {"command": "create", **body.model_dump(mode="json")}
        ctx = _context(
            request, principal, "POST", "/leads", "create", "create-lead", None, payload, form
        )
        command = lead.CreateLead(lead_id=lead_id_for(ctx.command_id), **body.model_dump())
        return create_lead(platform.store, platform.funnels, command, ctx)

    def refused(error: Exception) -> Response:
        message, code = _message(error)
        raw = {
            k: request.query_params.get(k)
            for k in ("funnel", "stage", "status", "manager", "from", "to")
        }
        return _list_page(
            request,
            principal,
            raw,
            1,
            new_lead={"values": values, "error": message, "key": _text(form, "idempotency_key")},
            status_code=code,
        )

    return await post_form(
        request, apply, refused, lambda result: f"{PREFIX}/leads/{result.stream_id}"
    )


# --- the card ----------------------------------------------------------------------------


def _lead_uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise PageNotFound from None


@router.get("/leads/export.xlsx")
def lead_export(
    request: Request,
    principal: Viewer,
    funnel: Annotated[str | None, Query(max_length=100)] = None,
    manager: Annotated[str | None, Query(max_length=100)] = None,
    created_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    created_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    """The leads the viewer sees (with the list's funnel, manager and period) in the leads
    import's format."""
    require(principal, "GET", "/leads")
    platform = _platform(request)
    start, end = _day(created_from), _day(created_to)
    filters = ExportFilters(
        funnel if funnel in platform.funnels else None,
        (manager or "").strip() or None,
        datetime.combine(start, datetime.min.time(), UTC) if start else None,
        datetime.combine(end, datetime.max.time(), UTC) if end else None,
    )
    with read_models(platform, principal) as cursor:
        kind, records = kind_records(
            cursor, "leads", platform.funnels, platform.rules, platform.directories, filters
        )
        return export_response(kind, records, "leads.xlsx")


@router.get("/leads/{lead_id}")
def lead_card(
    request: Request,
    principal: Viewer,
    lead_id: str,
    tab: Annotated[str, Query(max_length=20)] = "card",
    as_of: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    return _card_page(request, principal, _lead_uuid(lead_id), tab, as_of)


def _card_page(
    request: Request,
    principal: Principal,
    lead_id: UUID,
    tab: str,
    as_of_raw: str | None,
    *,
    failed: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require(principal, "GET", "/leads/{lead_id}")
    platform = _platform(request)
    tab = tab if tab in TABS else "card"
    moment = as_of_moment(as_of_raw, platform.clock())
    tabs = [
        t for t in TABS if t != "sensitive" or may(principal, "GET", "/leads/{lead_id}/sensitive")
    ]
    if tab not in tabs:
        tab = "card"
    extra: dict[str, Any] = {}
    with read_models(platform, principal) as cursor:
        # the viewer's scope first: a lead they may not see is not there, now or then
        if get_lead(cursor, str(lead_id)) is None:
            raise PageNotFound
        current = lead_detail(platform, cursor, lead_id, None)
        detail = current
        if moment is not None:
            try:
                detail = lead_detail(platform, cursor, lead_id, moment)
            except StreamNotFound:
                extra["not_yet"] = True
        if tab == "status-time":
            as_of_text = moment.isoformat() if moment else None
            try:
                extra["status_time"] = status_time_routes.lead_status_time(
                    lead_id, platform, cursor, as_of_text
                )
            except StreamNotFound:  # not yet created at as_of
                extra["status_time"] = {"stages": [], "visits": []}
    if tab == "history":
        extra["history"] = lead_history(platform, lead_id)
    if tab == "sensitive":
        extra["sensitive"] = _read_sensitive(request, principal, lead_id)
    funnel = platform.funnels.get(detail["funnel"])
    context = {
        "lead": detail,
        "current": current,
        "tab": tab,
        "tabs": tabs,
        "as_of": moment,
        "as_of_value": as_of_value(moment),
        "funnel_name": funnel.name if funnel else detail["funnel"],
        "funnel_stages": [(s.id, s.name) for s in funnel.stages] if funnel else [],
        "lead_funnels": [(f.id, f.name) for f in platform.funnels.values()],
        "deal_funnels": [(f.id, f.name) for f in platform.rules.deal_funnels.values()],
        "actions": offered(principal, current) if moment is None else [],
        "may_cost": moment is None and "cost" in offered(principal, current),
        "may_seal": moment is None and "sensitive" in offered(principal, current),
        "key": uuid4().hex,
        "failed": failed,
        "cost_rows": COST_ROWS,
        **extra,
    }
    return render(request, "leads/card.html", context, principal=principal, status_code=status_code)


def _read_sensitive(request: Request, principal: Principal, lead_id: UUID) -> dict[str, Any]:
    """GET /leads/{id}/sensitive's read, with its guard: recorded before it is shown."""
    platform = _platform(request)
    path = "/leads/{lead_id}/sensitive"
    ctx = _context(
        request,
        principal,
        "GET",
        path,
        "get_info",
        f"sensitive-read:{lead_id}",
        lead_id,
        {},
        FormData(),
    )
    try:
        read = read_sensitive_info(platform.store, platform.keys, lead_id, ctx)
    except NotPermitted as error:
        return {"refused": error.message}
    return {
        "status": read.outcome,
        "notes": read.info.notes if read.info else "",
        "fields": read.info.fields if read.info else {},
        "updated_at": read.updated_at,
        "updated_by": read.updated_by,
        "erased_at": read.erased_at,
    }


@router.post("/leads/{lead_id}/{action}", dependencies=[CsrfChecked])
async def lead_command(request: Request, principal: Viewer, lead_id: str, action: str) -> Response:
    """One of the lead's commands from its form: applied, then back to the card; refused,
    the card again with the message (a stale form: with the lead as it is now)."""
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise PageNotFound
    lead_uuid = _lead_uuid(lead_id)
    require(principal, chosen.method, chosen.api_path)
    platform = _platform(request)
    form = await request.form()
    tab = _text(form, "tab") or "card"

    def apply() -> CommandResult:
        body = chosen.model.model_validate(chosen.body(form))
        payload = {"command": action, "lead_id": str(lead_uuid), **body.model_dump(mode="json")}
        if action == "sensitive":  # the fingerprint must not hold the plaintext either
            payload = {"lead_id": str(lead_uuid)}
        scope = chosen.scope.format(lead_id=lead_uuid)
        ctx = _context(
            request,
            principal,
            chosen.method,
            chosen.api_path,
            chosen.command,
            scope,
            lead_uuid,
            payload,
            form,
        )
        return chosen.run(platform, lead_uuid, body, ctx)

    def refused(error: Exception) -> Response:
        message, code = _message(error)
        failed = {
            "action": action,
            "message": message,
            "rule": getattr(error, "rule", None),  # the refusal's code: its words in ru
            "stale": isinstance(error, VersionConflict),
            "values": {k: v for k, v in form.items() if isinstance(v, str)},
        }
        shown_on = FORM_TABS.get(action, "card")  # the refusal is shown beside its form
        return _card_page(
            request, principal, lead_uuid, shown_on, None, failed=failed, status_code=code
        )

    target = f"{PREFIX}/leads/{lead_uuid}"
    if tab != "card":
        target += "?" + urlencode({"tab": tab})
    return await post_form(request, apply, refused, target)
