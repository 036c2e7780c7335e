"""Project commands (card, status, tasks, hours, health, invoices and payments), the
project card as it is (or was), and its history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from aggregates import billing, project
from aggregates.rules import Rules
from commands.context import CommandResult, StreamNotFound
from commands.projects import (
    create_project,
    handle_billing_command,
    handle_project_command,
    launch_services,
    load_billing,
    load_billing_records,
    load_project_records,
    log_time_entry,
    project_id_for,
    record_act,
)
from event_store.codec import dumps_http
from leadledger.wiring import Platform
from queries.history import stream_history
from read_api.deps import CommandHeaders, CommandHeadersDep, PlatformDep, as_utc, mark_accepted
from schemas.projects import (
    ActRequest,
    BillingAccepted,
    CreateProjectRequest,
    HealthRequest,
    HoursAccepted,
    HoursCorrectionRequest,
    HoursRequest,
    LaunchRequest,
    PaymentRequest,
    ProjectAccepted,
    ProjectCardRequest,
    ProjectDetail,
    ProjectHistory,
    ProjectInvoiceRequest,
    ProjectStatusOut,
    ProjectStatusRequest,
    TaskRequest,
    TaskUpdateRequest,
)

router = APIRouter(tags=["projects"])

Headers = CommandHeadersDep
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown project"},
    409: {"description": "The state forbids the command (names the rule), or a version conflict"},
    422: {"description": "Invalid body, header or value; names the field"},
}


def _accepted(result: CommandResult, response: Response) -> ProjectAccepted:
    mark_accepted(result, response)
    return ProjectAccepted(
        project_id=result.stream_id, version=result.version, position=result.position
    )


@router.get("/project-statuses", response_model=list[ProjectStatusOut], tags=["configuration"])
def project_statuses(platform: PlatformDep) -> list[dict[str, Any]]:
    """The project statuses in kanban order, with their time limits."""
    return [
        {
            "id": s.id,
            "name": s.name,
            "time_limit_hours": s.time_limit_hours,
            "stops_clock": s.stops_clock,
        }
        for s in platform.rules.project.statuses
    ]


@router.post("/projects", status_code=201, response_model=ProjectAccepted, responses=ERRORS)
def create(
    body: CreateProjectRequest, headers: Headers, platform: PlatformDep, response: Response
) -> ProjectAccepted:
    """Start a project directly (a won deal gets its project by itself)."""
    ctx = headers.context(
        platform, "create-project", {"command": "create", **body.model_dump(mode="json")}
    )
    command = project.CreateProject(project_id=project_id_for(ctx.command_id), **body.model_dump())
    result = create_project(platform.store, platform.rules, command, ctx)
    response.headers["Location"] = f"/projects/{result.stream_id}"
    return _accepted(result, response)


def _run(
    platform: PlatformDep,
    headers: CommandHeaders,
    project_id: UUID,
    name: str,
    fields: dict[str, Any],
    command: project.ProjectCommand,
    response: Response,
) -> ProjectAccepted:
    """Run a command on the project; ``fields`` fingerprint the request for Idempotency-Key."""
    request = {"command": name, "project_id": str(project_id), **fields}
    ctx = headers.context(platform, f"project:{project_id}", request)
    result = handle_project_command(platform.store, platform.rules, project_id, command, ctx)
    return _accepted(result, response)


@router.post("/projects/{project_id}/card", response_model=ProjectAccepted, responses=ERRORS)
def update_card(
    project_id: UUID,
    body: ProjectCardRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Change card fields: only those sent; the event keeps old → new."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    command = project.UpdateProjectCard(changes)
    return _run(
        platform, headers, project_id, "card", body.model_dump(mode="json"), command, response
    )


@router.post("/projects/{project_id}/status", response_model=ProjectAccepted, responses=ERRORS)
def move(
    project_id: UUID,
    body: ProjectStatusRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Move the project to another status of the kanban (on_hold stops the clocks)."""
    command = project.MoveProjectToStatus(body.status)
    return _run(
        platform, headers, project_id, "status", body.model_dump(mode="json"), command, response
    )


@router.post(
    "/projects/{project_id}/tasks",
    status_code=201,
    response_model=ProjectAccepted,
    responses=ERRORS,
)
def add_task(
    project_id: UUID,
    body: TaskRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Add a task: title, assignee, planned hours, start, due and the tasks it depends on."""
    command = project.AddTask(
        task_id=body.task_id,
        title=body.title,
        assignee=body.assignee,
        planned_hours=body.planned_hours,
        start=body.start,
        due=body.due,
        depends_on=tuple(body.depends_on),
    )
    return _run(
        platform, headers, project_id, "add-task", body.model_dump(mode="json"), command, response
    )


@router.post(
    "/projects/{project_id}/tasks/{task_id}", response_model=ProjectAccepted, responses=ERRORS
)
def update_task(
    project_id: UUID,
    task_id: str,
    body: TaskUpdateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Change a task (only the fields sent), including its % done."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    if "depends_on" in changes and changes["depends_on"] is not None:
        changes["depends_on"] = tuple(changes["depends_on"])
    command = project.UpdateTask(task_id, changes)
    fields = {"task_id": task_id, **body.model_dump(mode="json")}
    return _run(platform, headers, project_id, "task", fields, command, response)


@router.post(
    "/projects/{project_id}/tasks/{task_id}/complete",
    response_model=ProjectAccepted,
    responses=ERRORS,
)
def complete_task(
    project_id: UUID,
    task_id: str,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Complete a task; refused while a task it depends on is not complete."""
    command = project.CompleteTask(task_id)
    return _run(platform, headers, project_id, "complete", {"task_id": task_id}, command, response)


@router.post(
    "/projects/{project_id}/hours",
    status_code=201,
    response_model=HoursAccepted,
    responses=ERRORS,
)
def log_hours(
    project_id: UUID,
    body: HoursRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> HoursAccepted:
    """Log hours for a person and day (the person's day holds at most 24 hours across all
    projects: 409 ``day_over_24_hours`` names what is logged already)."""
    request = {"command": "hours", "project_id": str(project_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"project:{project_id}", request)
    person = body.person if body.person is not None else headers.actor
    result, entry_id = log_time_entry(
        platform.store, platform.rules, project_id, person, body.day, body.hours, body.task_id, ctx
    )
    mark_accepted(result, response)
    return HoursAccepted(
        project_id=result.stream_id,
        version=result.version,
        position=result.position,
        entry_id=entry_id,
    )


@router.post(
    "/projects/{project_id}/hours/{entry_id}/correction",
    response_model=ProjectAccepted,
    responses=ERRORS,
)
def correct_hours(
    project_id: UUID,
    entry_id: UUID,
    body: HoursCorrectionRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Correct a time entry: a new event with the right hours and why; never an edit."""
    command = project.CorrectHours(entry_id, body.hours, body.reason)
    fields = {"entry_id": str(entry_id), **body.model_dump(mode="json")}
    return _run(platform, headers, project_id, "correction", fields, command, response)


@router.post("/projects/{project_id}/health", response_model=ProjectAccepted, responses=ERRORS)
def set_health(
    project_id: UUID,
    body: HealthRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Set the health by hand with a comment; it overrides the computed one until cleared."""
    command = project.SetHealth(body.level, body.comment)
    return _run(
        platform, headers, project_id, "health", body.model_dump(mode="json"), command, response
    )


@router.post(
    "/projects/{project_id}/health/clear", response_model=ProjectAccepted, responses=ERRORS
)
def clear_health(
    project_id: UUID, headers: Headers, platform: PlatformDep, response: Response
) -> ProjectAccepted:
    """Clear the manual health: the computed one applies again."""
    return _run(platform, headers, project_id, "clear-health", {}, project.ClearHealth(), response)


def _billing_accepted(
    result: CommandResult, response: Response, project_id: UUID
) -> BillingAccepted:
    mark_accepted(result, response)
    return BillingAccepted(
        project_id=project_id, billing_version=result.version, position=result.position
    )


@router.post(
    "/projects/{project_id}/invoices",
    status_code=201,
    response_model=BillingAccepted,
    responses=ERRORS,
)
def issue_invoice(
    project_id: UUID,
    body: ProjectInvoiceRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> BillingAccepted:
    """Issue an invoice of the project (number, amount, due date, optional organisation:
    an organisation on the simplified-tax regime refuses an invoice over its yearly
    revenue cap, 409 naming the cap and the total)."""
    request = {"command": "invoice", "project_id": str(project_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"billing:{project_id}", request)
    command = billing.IssueProjectInvoice(
        body.number, body.amount, body.due_date, body.issued_on, body.organisation
    )
    result = handle_billing_command(platform.store, project_id, command, ctx, platform.rules)
    return _billing_accepted(result, response, project_id)


@router.post(
    "/projects/{project_id}/invoices/{number}/payments",
    status_code=201,
    response_model=BillingAccepted,
    responses=ERRORS,
)
def record_payment(
    project_id: UUID,
    number: str,
    body: PaymentRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> BillingAccepted:
    """Record a payment of an invoice; more than is left of it is refused (409
    ``overpayment`` with the remaining amount)."""
    request = {
        "command": "payment",
        "project_id": str(project_id),
        "invoice": number,
        **body.model_dump(mode="json"),
    }
    ctx = headers.context(platform, f"billing:{project_id}", request)
    command = billing.RecordPayment(number, body.amount, body.paid_on)
    result = handle_billing_command(platform.store, project_id, command, ctx, platform.rules)
    return _billing_accepted(result, response, project_id)


@router.post("/projects/{project_id}/launch", response_model=ProjectAccepted, responses=ERRORS)
def launch(
    project_id: UUID,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
    body: LaunchRequest | None = None,
) -> ProjectAccepted:
    """Launch services of the won deal's proposal into work (default: every one not
    launched yet): one task per service, its planned hours from the calculation, in one
    write. A service launched twice is refused (409 ``service_launched``)."""
    body = body or LaunchRequest()
    request = {"command": "launch", "project_id": str(project_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"project:{project_id}", request)
    services = (
        None
        if body.services is None
        else tuple(project.ServiceLaunch(s.name, s.assignee) for s in body.services)
    )
    result = launch_services(platform.store, platform.rules, project_id, services, ctx)
    return _accepted(result, response)


@router.post(
    "/projects/{project_id}/acts",
    status_code=201,
    response_model=ProjectAccepted,
    responses=ERRORS,
)
def add_act(
    project_id: UUID,
    body: ActRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ProjectAccepted:
    """Record an act of completed work: it completes the tasks it covers (services
    launched, or task ids; their dependencies must be complete or covered too) and, with
    an invoice number, is recorded on that invoice (409 ``act_over_invoice`` above its
    amount)."""
    request = {"command": "act", "project_id": str(project_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"project:{project_id}", request)
    command = project.RecordAct(
        number=body.number,
        act_date=body.act_date,
        amount=body.amount,
        services=tuple(body.services),
        task_ids=tuple(body.task_ids),
        invoice_number=body.invoice_number,
    )
    result = record_act(platform.store, platform.rules, project_id, command, ctx)
    return _accepted(result, response)


def project_detail(
    state: project.Project, bills: billing.Billing | None, rules: Rules, now: datetime
) -> dict[str, Any]:
    """The project card: fields, tasks, hours, health and payments."""
    task_hours: dict[str, Decimal] = {}
    for entry in state.entries:
        if entry.task_id is not None:
            task_hours[entry.task_id] = task_hours.get(entry.task_id, Decimal(0)) + entry.hours
    today = now.astimezone(UTC).date()
    invoices = [] if bills is None else list(bills.invoices)
    invoiced = sum((i.amount for i in invoices), Decimal("0.00"))
    paid = sum((i.paid for i in invoices), Decimal("0.00"))
    owed = billing.project_payment(state.amount, invoiced, paid)
    manual = state.manual_health
    return {
        **{
            f: getattr(state, f)
            for f in (
                "project_id",
                "title",
                "company_name",
                "company_id",
                "amount",
                "lead_id",
                "deal_id",
                "funnel",
                "manager",
                "department",
                "direction",
                "category",
                "pm",
                "curator",
                "planned_start",
                "planned_end",
                "status",
                "status_entered_at",
                "planned_hours",
                "actual_hours",
                "percent_done",
                "created_at",
                "created_by",
                "updated_at",
                "version",
            )
        },
        "billing_version": 0 if bills is None else bills.version,
        **{
            f: getattr(state, f)
            for f in (
                "currency",
                "contact",
                "source",
                "need_maturity",
                "expert",
                "description",
                "answer_due",
            )
        },
        "cost_components": [{"name": c.name, "amount": c.amount} for c in state.cost_components],
        "empty_mandatory_fields": state.empty_mandatory_fields(rules.project),
        "tasks": [
            {
                "task_id": t.task_id,
                "title": t.title,
                "assignee": t.assignee,
                "planned_hours": t.planned_hours,
                "actual_hours": task_hours.get(t.task_id, Decimal("0.00")),
                "start": t.start,
                "due": t.due,
                "depends_on": list(t.depends_on),
                "percent_done": t.percent_done,
                "completed_at": t.completed_at,
            }
            for t in state.tasks
        ],
        "time_entries": [
            {
                "entry_id": e.entry_id,
                "person": e.person,
                "task_id": e.task_id,
                "day": e.day,
                "hours": e.hours,
            }
            for e in state.entries
        ],
        "health": {
            "effective": state.health,
            "computed": state.computed_health,
            "computed_reasons": list(state.computed_reasons),
            "manual": None if manual is None else manual.level,
            "manual_comment": None if manual is None else manual.comment,
            "manual_set_by": None if manual is None else manual.set_by,
            "manual_set_at": None if manual is None else manual.set_at,
        },
        "payments": {
            "status": owed.status,
            "amount": state.amount,
            "measured_against": owed.measured_against,
            "invoiced": invoiced,
            "paid": paid,
            "remaining": owed.remaining,
            "invoiced_unpaid": owed.invoiced_unpaid,
            "invoices": [
                {
                    "number": i.number,
                    "amount": i.amount,
                    "due_date": i.due_date,
                    "issued_on": i.issued_on,
                    "deal_id": i.deal_id,
                    "organisation": i.organisation,
                    "prepayment": i.prepayment,
                    "paid": i.paid,
                    "remaining": i.remaining,
                    "status": i.status,
                    "overdue": i.overdue(today),
                    "acted": i.acted,
                    "acts": list(i.acts),
                }
                for i in invoices
            ],
        },
        "launched": [asdict(s) for s in state.launched],
        "acts": [asdict(a) for a in state.acts],
    }


@router.get(
    "/projects/{project_id}",
    response_model=ProjectDetail,
    responses={404: {"description": "Unknown project"}},
)
def get_project(
    project_id: UUID,
    platform: PlatformDep,
    response: Response,
    as_of: Annotated[
        datetime | None,
        Query(description="ISO timestamp: the project as it was then (from the event store)"),
    ] = None,
) -> dict[str, Any]:
    """The project card with its tasks, hours, health and payment status, now or at as_of
    (from the event store: always current)."""
    state, detail = project_card(platform, project_id, as_utc(as_of))
    response.headers["ETag"] = f'"{state.version}"'
    return detail


def project_card(
    platform: Platform, project_id: UUID, as_of: datetime | None = None
) -> tuple[project.Project, dict[str, Any]]:
    """The project and its card, now or as it was at ``as_of`` (from the event store:
    always current); unknown: StreamNotFound."""
    records = load_project_records(platform.store, project_id, as_of=as_of)
    state = project.fold([r.event for r in records])
    if state is None:
        raise StreamNotFound(f"project {project_id} not found")
    bills = load_billing(platform.store, project_id, as_of=as_of)
    return state, project_detail(state, bills, platform.rules, as_of or platform.clock())


def billing_figures(bills: billing.Billing) -> dict[str, Any]:
    """What a billing event changes, as its history shows it: the project's payment figures
    and the invoice's own."""
    return {
        "payment_status": bills.status,
        "invoiced": bills.invoiced,
        "paid": bills.paid,
        "remaining": bills.remaining,
        **{
            f"invoice {i.number}": {
                "amount": i.amount,
                "paid": i.paid,
                "status": i.status,
                "acted": i.acted,
            }
            for i in bills.invoices
        },
    }


@router.get(
    "/projects/{project_id}/history",
    response_model=ProjectHistory,
    responses={404: {"description": "Unknown project"}},
)
def get_history(
    project_id: UUID,
    platform: PlatformDep,
    as_of: Annotated[
        datetime | None, Query(description="ISO timestamp: only what was recorded until then")
    ] = None,
) -> Response:
    """Every accepted command on the project's endpoints, in log order, with its changes
    old → new: the project's own events (health computed and set by hand included) and its
    billing's (invoices, those carried from the won deal included, and payments), each
    with actor, role, command and time; ``stream`` and ``version`` say which record and
    which of its versions (the billing's is the If-Match of invoices and payments)."""
    moment = as_utc(as_of)
    records = load_project_records(platform.store, project_id, as_of=moment)
    if not records:
        raise StreamNotFound(f"project {project_id} not found")

    def detail(state: project.Project) -> dict[str, Any]:
        return project_detail(state, None, platform.rules, state.updated_at)

    entries = [{**e, "stream": "project"} for e in stream_history(records, project.evolve, detail)]
    bills = load_billing_records(platform.store, project_id, as_of=moment)
    entries += [
        {**e, "stream": "billing"} for e in stream_history(bills, billing.evolve, billing_figures)
    ]
    entries.sort(key=lambda e: int(e["position"]))
    return Response(
        content=dumps_http({"id": project_id, "events": entries}), media_type="application/json"
    )
