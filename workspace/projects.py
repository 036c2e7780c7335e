"""The workspace's project pages: the portfolio coloured by health, the project card (its
tasks on a timeline, plan vs actual hours, invoices and payments, and the PM's forms) and
a person's weekly timesheet.

Pages read through the API's own queries and scopes and act through the API's own
handlers, each form as the API operation it stands for: the same endpoint-by-role table,
the same ownership guard, the same request fingerprint for its idempotency key, and the
record's version (the billing's for invoices and payments) as its If-Match.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from aggregates import billing, project
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from aggregates.rules import HEALTH_LEVELS
from aggregates.users import Principal, Role
from commands.context import (
    CommandContext,
    CommandFailed,
    CommandResult,
    StreamNotFound,
    VersionConflict,
)
from commands.policy import Policy
from commands.projects import (
    handle_billing_command,
    handle_project_command,
    launch_services,
    log_time_entry,
    offered_services,
    record_act,
)
from commands.users import StoreDirectory
from leadledger.wiring import Platform
from queries import projects as project_queries
from queries.common import Filters, deviation
from queries.projects import PAYMENT_STATUSES, Span, calendar_hours
from read_api.access import read_models, sees
from read_api.errors import BadRequestValue
from read_api.routes.projects import project_card
from schemas.projects import (
    ActRequest,
    HealthRequest,
    HoursRequest,
    LaunchRequest,
    PaymentRequest,
    ProjectCardRequest,
    ProjectInvoiceRequest,
    ProjectStatusRequest,
    TaskRequest,
    TaskUpdateRequest,
)
from workspace.i18n import language_of, named, translations
from workspace.messages import N_
from workspace.pages import (
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    command_context,
    may,
    pager,
    post_form,
    render,
    require,
)

PAGE_SIZE = 25
CARD_FIELDS = (
    "title",
    "amount",
    "department",
    "direction",
    "category",
    "pm",
    "curator",
    "planned_start",
    "planned_end",
)
WORDS = (N_("Projects"), N_("Timesheet"), N_("not_paid"), N_("partially_paid"), N_("paid"))
"""Words the pages translate from data (sections, payment statuses), marked for extraction."""
WORKERS = frozenset({Role.DEPARTMENT, Role.EXPERT})
"""Roles that log only their own hours (the API's ``own_hours_only``)."""

router = APIRouter()


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


# --- the API operation a form stands for ----------------------------------------------------


OPERATIONS = {
    "card": Operation("/projects/{project_id}/card", "update_card"),
    "status": Operation("/projects/{project_id}/status", "move"),
    "task": Operation("/projects/{project_id}/tasks", "add_task"),
    "progress": Operation("/projects/{project_id}/tasks/{task_id}", "update_task"),
    "complete": Operation("/projects/{project_id}/tasks/{task_id}/complete", "complete_task"),
    "invoice": Operation("/projects/{project_id}/invoices", "issue_invoice"),
    "payment": Operation("/projects/{project_id}/invoices/{number}/payments", "record_payment"),
    "launch": Operation("/projects/{project_id}/launch", "launch"),
    "act": Operation("/projects/{project_id}/acts", "add_act"),
    "health": Operation("/projects/{project_id}/health", "set_health"),
    "health-clear": Operation("/projects/{project_id}/health/clear", "clear_health"),
    "hours": Operation("/projects/{project_id}/hours", "log_hours"),
}


# --- reading forms ---------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str | None:
    raw = form.get(name)
    if not isinstance(raw, str):
        return None
    value = raw.strip()
    return value or None


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def _version(form: FormData, name: str) -> int | None:
    raw = _text(form, name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise BadRequestValue(name, "must be the record's version, a positive integer")
    return int(raw)


def _uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise PageNotFound from None


@dataclass
class Failure:
    """Why a form was refused: shown beside the form, which keeps what was typed."""

    form: str
    message: str
    status: int
    kind: str
    field: str | None = None
    rule: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    current_version: int | None = None


def failure_of(form: str, error: Exception, values: dict[str, Any]) -> Failure:
    """A refused command as the form shows it (the API's status and words)."""
    match error:
        case ValidationError():
            first = error.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or None
            return Failure(form, first["msg"], 422, "invalid", field=name, values=values)
        case InvalidValue():
            return Failure(form, error.message, 422, "invalid", field=error.field, values=values)
        case BadRequestValue():
            return Failure(form, error.message, 422, "invalid", field=error.field, values=values)
        case RuleViolation():
            return Failure(form, error.message, 409, "rule", rule=error.rule, values=values)
        case NotPermitted():
            return Failure(form, error.message, 403, "forbidden", rule=error.rule, values=values)
        case VersionConflict():
            return Failure(
                form,
                error.message,
                409,
                "stale",
                values=values,
                current_version=error.current_version,
            )
        case DomainError() | CommandFailed():
            return Failure(form, error.message, 422, "invalid", values=values)
    raise error


REFUSALS = (DomainError, ValidationError, BadRequestValue)
"""What a form's command may be refused with (besides the handlers' CommandFailed)."""


# --- the portfolio ---------------------------------------------------------------------------


@router.get("/projects")
def portfolio_page(
    request: Request,
    principal: Viewer,
    pm: Annotated[str | None, Query(max_length=100)] = None,
    department: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=100)] = None,
    health: Annotated[str | None, Query(max_length=40)] = None,
    payment_status: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """The portfolio (GET /projects' query) with its filters, and the health and status
    distributions of what the filters match (the portfolio report's query)."""
    require(principal, "GET", "/projects")
    platform = _platform(request)
    rules = platform.rules.project
    chosen: dict[str, str | None] = {
        "pm": (pm or "").strip() or None,
        "department": (department or "").strip() or None,
        "status": status if status and rules.status(status) is not None else None,
        "health": health if health in HEALTH_LEVELS else None,
        "payment_status": payment_status if payment_status in PAYMENT_STATUSES else None,
    }
    filters = Filters(equal=dict(chosen))
    with read_models(platform, principal) as cursor:
        offset = (page - 1) * PAGE_SIZE
        items, total = project_queries.list_projects(cursor, filters, PAGE_SIZE, offset)
        report = project_queries.portfolio(cursor, filters, rules)
    names = {s.id: s.name for s in rules.statuses}
    context = {
        "items": items,
        "total": total,
        "page": pager(f"{PREFIX}/projects", chosen, offset, PAGE_SIZE, total, by_page=True),
        "chosen": chosen,
        "statuses": [(s.id, s.name) for s in rules.statuses],
        "status_names": names,
        "health_levels": HEALTH_LEVELS,
        "payment_statuses": PAYMENT_STATUSES,
        "report": report,
        "chart": portfolio_chart(report, language_of(request)),
        "may_log_hours": may(principal, "POST", "/projects/{project_id}/hours"),
    }
    return render(request, "projects/portfolio.html", context, principal=principal)


def portfolio_chart(report: dict[str, Any], language: str) -> str:
    """The health and status distributions (read by static/projects.js), as JSON; the
    labels are translated in the template's language."""
    gettext = translations(language).gettext
    return orjson.dumps(
        {
            "health": [
                {"level": h["health"], "label": gettext(h["health"]), "projects": h["projects"]}
                for h in report["by_health"]
            ],
            "status": [
                {
                    "status": s["status"],
                    "label": named(s["name"], gettext),
                    "projects": s["projects"],
                }
                for s in report["by_status"]
            ],
            "projects": gettext("Projects"),
        }
    ).decode()


# --- the project card ------------------------------------------------------------------------


async def _visible(request: Request, principal: Principal, project_id: UUID) -> None:
    """A project outside the viewer's read scope is not there (the 404 page)."""
    platform = _platform(request)
    if not await sees(platform, principal, "projects", "project_id", str(project_id)):
        raise PageNotFound


@router.get("/projects/{project_id}")
async def project_page(request: Request, principal: Viewer, project_id: str) -> HTMLResponse:
    require(principal, "GET", "/projects/{project_id}")
    project_uuid = _uuid(project_id)
    await _visible(request, principal, project_uuid)
    return await run_in_threadpool(card_page, request, principal, project_uuid, None)


def card_page(
    request: Request, principal: Principal, project_id: UUID, failure: Failure | None
) -> HTMLResponse:
    platform = _platform(request)
    try:
        state, detail = project_card(platform, project_id)
    except StreamNotFound:
        raise PageNotFound from None
    context = card_context(platform, principal, state, detail)
    context["failure"] = failure
    context["done"] = request.query_params.get("done") if failure is None else None
    status_code = failure.status if failure else 200
    return render(
        request, "projects/card.html", context, status_code=status_code, principal=principal
    )


def _owns(platform: Platform, principal: Principal, state: project.Project) -> bool:
    """Whether the ownership guard of project commands lets the viewer act on it."""
    try:
        Policy(principal, StoreDirectory(platform.store)).project("act on")(state)
    except NotPermitted:
        return False
    return True


def card_context(
    platform: Platform, principal: Principal, state: project.Project, detail: dict[str, Any]
) -> dict[str, Any]:
    """What the card shows, and which forms: each only where the role may (the endpoint
    table), the viewer runs the project (the ownership guard) and its state allows."""
    rules = platform.rules.project
    owner = _owns(platform, principal, state)
    working = state.status != rules.done_status

    def allowed(form: str) -> bool:
        return owner and may(principal, "POST", OPERATIONS[form].path)

    tasks = detail["tasks"]
    complete = {t["task_id"]: t["completed_at"] is not None for t in tasks}
    invoices = detail["payments"]["invoices"]
    unlaunched: list[str] = []
    if allowed("launch") and working and state.deal_id is not None:
        offered, _ = offered_services(platform.store, platform.rules, state)
        launched = {s.service for s in state.launched}
        unlaunched = [s.name for s in offered if s.name not in launched]
    forms = {
        "card": allowed("card"),
        "status": allowed("status"),
        "task": allowed("task") and working,
        "progress": allowed("progress") and working,
        "complete": allowed("complete") and working,
        "invoice": allowed("invoice"),
        "payment": allowed("payment") and any(i["remaining"] > 0 for i in invoices),
        "launch": bool(unlaunched),
        "act": allowed("act") and working and (bool(tasks) or bool(state.launched)),
        "health": allowed("health"),
        "health-clear": allowed("health-clear") and state.manual_health is not None,
    }
    today = platform.clock().astimezone(UTC).date()
    return {
        "project": detail,
        "status_name": {s.id: s.name for s in rules.statuses}.get(state.status, state.status),
        "statuses": [(s.id, s.name) for s in rules.statuses if s.id != state.status],
        "health_levels": HEALTH_LEVELS,
        "forms": forms,
        "keys": {name: uuid4().hex for name in OPERATIONS},
        "waiting": {
            t["task_id"]: [d for d in t["depends_on"] if not complete.get(d, True)] for t in tasks
        },
        "gantt": gantt(tasks, state.planned_start, state.planned_end, today),
        "hours": plan_and_actual(tasks, detail["time_entries"]),
        "unlaunched": unlaunched,
        "launched": [s.service for s in state.launched],
        "next_task_id": f"t{len(tasks) + 1}",
        "today": today,
        "may_log_hours": may(principal, "POST", OPERATIONS["hours"].path) and owner,
    }


def plan_and_actual(
    tasks: list[dict[str, Any]], entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Planned vs logged hours per task and person (the plan is the assignee's; hours
    logged on the project and no task make a row of their own), with a total row."""
    rows: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    titles = {t["task_id"]: t["title"] for t in tasks}
    for task in tasks:
        rows[(task["task_id"], task["assignee"])] = {
            "task_id": task["task_id"],
            "title": task["title"],
            "person": task["assignee"],
            "planned": task["planned_hours"],
            "actual": Decimal("0.00"),
        }
    for entry in entries:
        key = (entry["task_id"], entry["person"])
        row = rows.setdefault(
            key,
            {
                "task_id": entry["task_id"],
                "title": titles.get(entry["task_id"]),
                "person": entry["person"],
                "planned": Decimal("0.00"),
                "actual": Decimal("0.00"),
            },
        )
        row["actual"] += entry["hours"]
    listed = [r for r in rows.values() if r["planned"] or r["actual"]]
    for row in listed:
        row["deviation"] = deviation(row["actual"], row["planned"])
    return listed


GANTT_WIDTH = 960
GANTT_LABELS = 220
GANTT_ROW = 30
GANTT_RIGHT = 90
"""Room right of the last day for the last bar's % done and the last tick's date."""


def gantt(
    tasks: list[dict[str, Any]], planned_start: date | None, planned_end: date | None, today: date
) -> dict[str, Any]:
    """The tasks on a timeline, laid out for an SVG drawn by the server: a bar from start
    to due (a task with one of them: a one-day bar; with neither: no bar), its % done
    filled, an arrow from each dependency's end to the task's start, and today."""
    spans: dict[str, tuple[date, date]] = {}
    for task in tasks:
        start, due = task["start"] or task["due"], task["due"] or task["start"]
        if start is not None and due is not None:
            spans[task["task_id"]] = (start, max(start, due))
    bounds = [d for s in spans.values() for d in s] + [
        d for d in (planned_start, planned_end) if d is not None
    ]
    if not bounds:
        return {"rows": [], "height": 0}
    first, last = min(bounds), max(bounds) + timedelta(days=1)
    days = max(1, (last - first).days)
    scale = (GANTT_WIDTH - GANTT_LABELS - GANTT_RIGHT) / days

    def x(day: date) -> float:
        return round(GANTT_LABELS + (day - first).days * scale, 1)

    rows: list[dict[str, Any]] = []
    ends: dict[str, tuple[float, float]] = {}
    for index, task in enumerate(tasks):
        y = 30 + index * GANTT_ROW
        row: dict[str, Any] = {"task": task, "y": y, "bar": None}
        if task["task_id"] in spans:
            start, due = spans[task["task_id"]]
            left, right = x(start), x(due + timedelta(days=1))
            width = max(2.0, right - left)
            done = 100 if task["completed_at"] is not None else task["percent_done"]
            row["bar"] = {
                "x": left,
                "width": round(width, 1),
                "done": round(width * done / 100, 1),
                "late": task["completed_at"] is None and due < today,
                "complete": task["completed_at"] is not None,
            }
            ends[task["task_id"]] = (round(left + width, 1), y + 10)
        rows.append(row)
    arrows = []
    for row in rows:
        if row["bar"] is None:
            continue
        for dep in row["task"]["depends_on"]:
            if dep in ends:
                x1, y1 = ends[dep]
                arrows.append({"x1": x1, "y1": y1, "x2": row["bar"]["x"], "y2": row["y"] + 10})
    ticks = []
    step = max(1, math.ceil(days / 6))
    for offset in range(0, days + 1, step):
        day = first + timedelta(days=offset)
        ticks.append({"x": x(day), "day": day})
    return {
        "rows": rows,
        "arrows": arrows,
        "ticks": ticks,
        "today": x(today) if first <= today <= last else None,
        "width": GANTT_WIDTH,
        "height": 40 + len(rows) * GANTT_ROW,
        "labels": GANTT_LABELS,
    }


# --- the card's forms ---------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """A form as the API request it stands for: its fingerprint, scope and handler."""

    fields: dict[str, Any]
    scope: str
    run: Callable[[CommandContext], CommandResult]
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    billing: bool = False
    """Whether the form's version is the billing's (invoices and payments)."""


def _card_changes(state: project.Project, form: FormData) -> dict[str, Any]:
    """The card fields the form changes (only those: an unchanged field is not sent)."""
    changes: dict[str, Any] = {}
    for name in CARD_FIELDS:
        raw = _text(form, name)
        current = getattr(state, name)
        if raw is None:
            continue
        if name == "amount":
            try:
                if Decimal(raw) == current:
                    continue
            except InvalidOperation:
                pass
        elif raw == ("" if current is None else str(current)):
            continue
        changes[name] = raw
    return changes


def submission(platform: Platform, action: str, project_id: UUID, form: FormData) -> Submission:
    """Parse the form with the API's request model and build the API's command."""
    store, rules = platform.store, platform.rules
    pid = str(project_id)
    on_project = f"project:{pid}"

    def run_project(command: project.ProjectCommand) -> Callable[[CommandContext], CommandResult]:
        return lambda ctx: handle_project_command(store, rules, project_id, command, ctx)

    def run_billing(command: billing.BillingCommand) -> Callable[[CommandContext], CommandResult]:
        return lambda ctx: handle_billing_command(store, project_id, command, ctx, rules)

    target = _text(form, "target") or ""
    match action:
        case "card":
            state, _ = project_card(platform, project_id)
            body = ProjectCardRequest.model_validate(_card_changes(state, form))
            changes = {f: getattr(body, f) for f in body.model_fields_set}
            fields = {"command": "card", "project_id": pid, **body.model_dump(mode="json")}
            return Submission(fields, on_project, run_project(project.UpdateProjectCard(changes)))
        case "status":
            moved = ProjectStatusRequest.model_validate({"status": _text(form, "status")})
            fields = {"command": "status", "project_id": pid, **moved.model_dump(mode="json")}
            command: project.ProjectCommand = project.MoveProjectToStatus(moved.status)
            return Submission(fields, on_project, run_project(command))
        case "task":
            raw = {
                name: value
                for name in ("task_id", "title", "assignee", "planned_hours", "start", "due")
                if (value := _text(form, name)) is not None
            }
            task = TaskRequest.model_validate({**raw, "depends_on": _texts(form, "depends_on")})
            command = project.AddTask(
                task_id=task.task_id,
                title=task.title,
                assignee=task.assignee,
                planned_hours=task.planned_hours,
                start=task.start,
                due=task.due,
                depends_on=tuple(task.depends_on),
            )
            fields = {"command": "add-task", "project_id": pid, **task.model_dump(mode="json")}
            return Submission(fields, on_project, run_project(command))
        case "progress":
            update = TaskUpdateRequest.model_validate({"percent_done": _text(form, "percent_done")})
            command = project.UpdateTask(target, {"percent_done": update.percent_done})
            fields = {
                "command": "task",
                "project_id": pid,
                "task_id": target,
                **update.model_dump(mode="json"),
            }
            return Submission(fields, on_project, run_project(command), {"task_id": target})
        case "complete":
            fields = {"command": "complete", "project_id": pid, "task_id": target}
            command = project.CompleteTask(target)
            return Submission(fields, on_project, run_project(command), {"task_id": target})
        case "invoice":
            raw = {
                name: value
                for name in ("number", "amount", "due_date", "issued_on", "organisation")
                if (value := _text(form, name)) is not None
            }
            invoice = ProjectInvoiceRequest.model_validate(raw)
            issue = billing.IssueProjectInvoice(
                invoice.number,
                invoice.amount,
                invoice.due_date,
                invoice.issued_on,
                invoice.organisation,
            )
            fields = {"command": "invoice", "project_id": pid, **invoice.model_dump(mode="json")}
            return Submission(fields, f"billing:{pid}", run_billing(issue), billing=True)
        case "payment":
            paid = PaymentRequest.model_validate(
                {"amount": _text(form, "amount"), "paid_on": _text(form, "paid_on")}
            )
            fields = {
                "command": "payment",
                "project_id": pid,
                "invoice": target,
                **paid.model_dump(mode="json"),
            }
            record = billing.RecordPayment(target, paid.amount, paid.paid_on)
            return Submission(
                fields, f"billing:{pid}", run_billing(record), {"number": target}, billing=True
            )
        case "launch":
            chosen = _texts(form, "services")
            launch = LaunchRequest.model_validate(
                {
                    "services": [
                        {"name": name, "assignee": _text(form, f"assignee:{name}")}
                        for name in chosen
                    ]
                    or None
                }
            )
            services = (
                None
                if launch.services is None
                else tuple(project.ServiceLaunch(s.name, s.assignee) for s in launch.services)
            )
            fields = {"command": "launch", "project_id": pid, **launch.model_dump(mode="json")}
            return Submission(
                fields,
                on_project,
                lambda ctx: launch_services(store, rules, project_id, services, ctx),
            )
        case "act":
            raw = {
                name: value
                for name in ("number", "date", "amount", "invoice_number")
                if (value := _text(form, name)) is not None
            }
            act = ActRequest.model_validate(
                {**raw, "services": _texts(form, "services"), "task_ids": _texts(form, "task_ids")}
            )
            recorded = project.RecordAct(
                number=act.number,
                act_date=act.act_date,
                amount=act.amount,
                services=tuple(act.services),
                task_ids=tuple(act.task_ids),
                invoice_number=act.invoice_number,
            )
            fields = {"command": "act", "project_id": pid, **act.model_dump(mode="json")}
            return Submission(
                fields, on_project, lambda ctx: record_act(store, rules, project_id, recorded, ctx)
            )
        case "health":
            level = HealthRequest.model_validate(
                {"level": _text(form, "level"), "comment": _text(form, "comment")}
            )
            fields = {"command": "health", "project_id": pid, **level.model_dump(mode="json")}
            command = project.SetHealth(level.level, level.comment)
            return Submission(fields, on_project, run_project(command))
        case "health-clear":
            fields = {"command": "clear-health", "project_id": pid}
            return Submission(fields, on_project, run_project(project.ClearHealth()))
    raise PageNotFound


FORM_VALUES = (
    "task_id",
    "title",
    "assignee",
    "planned_hours",
    "start",
    "due",
    "number",
    "amount",
    "due_date",
    "issued_on",
    "organisation",
    "paid_on",
    "date",
    "invoice_number",
    "level",
    "comment",
    "status",
    "percent_done",
    "target",
    *CARD_FIELDS,
)


@router.post("/projects/{project_id}/{action}", dependencies=[CsrfChecked])
async def project_form(
    request: Request, principal: Viewer, project_id: str, action: str
) -> Response:
    """One of the card's forms: the API operation it stands for, with the project's (or
    its billing's) version as If-Match and the form's own idempotency key. Accepted: back
    to the card (post/redirect/get); refused: the card again with the reason beside the
    form, what was typed kept, nothing applied."""
    if action not in OPERATIONS or action == "hours":
        raise PageNotFound
    project_uuid = _uuid(project_id)
    require(principal, "POST", OPERATIONS[action].path)
    await _visible(request, principal, project_uuid)
    form = await request.form()
    values = {name: _text(form, name) for name in FORM_VALUES if _text(form, name) is not None}
    platform = _platform(request)

    def submit() -> CommandResult:
        parsed = submission(platform, action, project_uuid, form)
        version = _version(form, "billing_version" if parsed.billing else "version")
        ctx = command_context(
            request,
            principal,
            OPERATIONS[action],
            {"project_id": str(project_uuid), **parsed.params},
            parsed.scope,
            parsed.fields,
            version=version or None,
            key=_text(form, "key"),
        )
        return parsed.run(ctx)

    def refused(error: Exception) -> Response:
        return card_page(request, principal, project_uuid, failure_of(action, error, values))

    target = f"{PREFIX}/projects/{project_uuid}?" + urlencode({"done": action})
    return await post_form(request, submit, refused, target, refusals=(*REFUSALS, CommandFailed))


# --- the weekly timesheet ------------------------------------------------------------------


def week_of(raw: str | None, today: date) -> date:
    """The Monday of the week of an ISO day (default: this week)."""
    day = today
    if raw:
        try:
            day = date.fromisoformat(raw[:10])
        except ValueError:
            day = today
    return day - timedelta(days=day.isoweekday() - 1)


def _person(principal: Principal, raw: str | None) -> str:
    """Whose week: workers only their own; PMs, heads and top anyone's."""
    person = (raw or "").strip()[:100]
    if not person or principal.role in WORKERS:
        return principal.user
    return person


def cell_name(project_id: str, task_id: str | None, day: date) -> str:
    return f"h|{project_id}|{task_id or ''}|{day.isoformat()}"


def timesheet_context(
    platform: Platform, principal: Principal, person: str, monday: date
) -> dict[str, Any]:
    calendar = platform.rules.project.calendar
    span = Span(monday, monday + timedelta(days=6))
    with read_models(platform, principal) as cursor:
        sheet = project_queries.timesheet(cursor, person, span, platform.rules.project.done_status)
    days = [monday + timedelta(days=i) for i in range(7)]
    required = {d: Decimal(str(calendar.working_hours(d))).quantize(Decimal("0.01")) for d in days}
    week_hours = calendar_hours(calendar, span.start, span.end)
    return {
        "sheet": sheet,
        "person": person,
        "monday": monday,
        "days": days,
        "required": required,
        "week_required": week_hours,
        "week_missing": max(Decimal("0.00"), week_hours - sheet["total"]),
        "previous": (monday - timedelta(days=7)).isoformat(),
        "following": (monday + timedelta(days=7)).isoformat(),
        "today": platform.clock().astimezone(UTC).date(),
        "cell_name": cell_name,
        "may_choose_person": principal.role not in WORKERS,
        "key": uuid4().hex,
    }


@router.get("/timesheet")
def timesheet_page(
    request: Request,
    principal: Viewer,
    person: Annotated[str | None, Query(max_length=100)] = None,
    week: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    require(principal, "POST", OPERATIONS["hours"].path)
    platform = _platform(request)
    monday = week_of(week, platform.clock().astimezone(UTC).date())
    context = timesheet_context(platform, principal, _person(principal, person), monday)
    context.update(errors={}, values={}, saved=request.query_params.get("saved"))
    return render(request, "projects/timesheet.html", context, principal=principal)


@dataclass(frozen=True)
class Cell:
    name: str
    project_id: UUID
    task_id: str | None
    day: str
    hours: str


def _cells(form: FormData) -> list[Cell]:
    cells = []
    for name, raw in form.multi_items():
        if not name.startswith("h|") or not isinstance(raw, str) or not raw.strip():
            continue
        parts = name.split("|")
        if len(parts) != 4:
            continue
        try:
            project_id = UUID(parts[1])
        except ValueError:
            continue
        cells.append(Cell(name, project_id, parts[2] or None, parts[3], raw.strip()))
    return cells[:500]


@router.post("/timesheet", dependencies=[CsrfChecked])
async def timesheet_form(request: Request, principal: Viewer) -> Response:
    """Each filled cell is one time entry through the handler of POST
    /projects/{id}/hours (its idempotency key the form's and the cell's); a refused cell
    keeps its value and shows why (the 24 hours of a day among them); the others are
    logged."""
    require(principal, "POST", OPERATIONS["hours"].path)
    platform = _platform(request)
    form = await request.form()
    person = _person(principal, _text(form, "person"))
    monday = week_of(_text(form, "week"), platform.clock().astimezone(UTC).date())
    key = (_text(form, "key") or "")[:40]

    def log(cell: Cell) -> CommandResult:
        body = HoursRequest.model_validate(
            {"person": person, "day": cell.day, "hours": cell.hours, "task_id": cell.task_id}
        )
        fields = {
            "command": "hours",
            "project_id": str(cell.project_id),
            **body.model_dump(mode="json"),
        }
        ctx = command_context(
            request,
            principal,
            OPERATIONS["hours"],
            {"project_id": str(cell.project_id)},
            f"project:{cell.project_id}",
            fields,
            key=f"{key}|{cell.name}" if key else None,
        )
        result, _ = log_time_entry(
            platform.store,
            platform.rules,
            cell.project_id,
            person,
            body.day,
            body.hours,
            body.task_id,
            ctx,
        )
        return result

    def log_all() -> tuple[list[CommandResult], dict[str, Failure]]:
        done: list[CommandResult] = []
        errors: dict[str, Failure] = {}
        for cell in _cells(form):
            try:
                done.append(log(cell))
            except StreamNotFound as missing:
                errors[cell.name] = Failure(cell.name, missing.message, 404, "missing")
            except (*REFUSALS, CommandFailed) as error:
                errors[cell.name] = failure_of(cell.name, error, {"hours": cell.hours})
        return done, errors

    done, errors = await run_in_threadpool(log_all)
    if done:
        last = max(r.position for r in done)
        await platform.projector.reached(last, platform.settings.read_wait_seconds)
    if not errors:
        query = {"person": person, "week": monday.isoformat(), "saved": len(done)}
        return RedirectResponse(f"{PREFIX}/timesheet?" + urlencode(query), status_code=303)
    context = await run_in_threadpool(timesheet_context, platform, principal, person, monday)
    context.update(
        errors=errors,
        values={name: f.values.get("hours") for name, f in errors.items()},
        saved=str(len(done)),
    )
    status_code = max(f.status for f in errors.values())
    return render(
        request, "projects/timesheet.html", context, status_code=status_code, principal=principal
    )
