"""The managers' activities («Мои Дела», seed 004): commands, the list, one activity now
or as of an instant, its history; the personal weekly plans; the activity indicators
(the weekly table, the activity coefficient, calls per day and week, clients without
interaction or with nothing planned). Lists and reports are the viewer's scope: a
manager's own, a head's department, top management's everything."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from aggregates import activities, activity_plans
from aggregates.users import Principal
from commands.activities import (
    activity_id_for,
    activity_of,
    comment_activity_plan,
    handle_activity_command,
    load_activity_records,
    load_plan_records,
    plan_activity,
    plan_of,
    set_activity_plan,
)
from commands.context import CommandResult, StreamNotFound
from event_store.codec import dumps_http
from queries import activities as queries
from queries.activities import ActivityFilters
from queries.history import stream_history
from read_api.access import current_user
from read_api.deps import (
    CommandHeaders,
    CommandHeadersDep,
    Period,
    PlatformDep,
    ReadCursor,
    as_utc,
    mark_accepted,
)
from read_api.errors import BadRequestValue
from schemas.activities import (
    ActivityAccepted,
    ActivityCancelRequest,
    ActivityDetail,
    ActivityDoneRequest,
    ActivityGroup,
    ActivityPage,
    ActivityPlanAccepted,
    ActivityPlanOut,
    ActivityPlanPage,
    ActivityPlanRequest,
    ActivityRequest,
    ActivityRescheduleRequest,
    ActivityState,
    ActivityTypes,
    CallsReport,
    ClientsReport,
    CoefficientReport,
    PlanCommentRequest,
    WeeklyReport,
)
from schemas.deals import StreamHistory

router = APIRouter(tags=["activities"])

Headers = CommandHeadersDep
CurrentUser = Annotated[Principal, Depends(current_user)]
PeriodDep = Annotated[Period, Depends()]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
AsOf = Annotated[
    datetime | None,
    Query(description="ISO timestamp: as it was then (replayed from the event store)"),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not the activity's (or plan's) owner, their head or top management"},
    404: {"description": "Unknown activity or plan"},
    409: {"description": "The state forbids the command (names the rule), or a version conflict"},
    422: {"description": "Invalid body, header or value; names the field"},
}


def _accepted(platform: PlatformDep, result: CommandResult, response: Response) -> ActivityAccepted:
    state = activity_of(load_activity_records(platform.store, result.stream_id))
    assert state is not None
    mark_accepted(result, response)
    return ActivityAccepted(
        activity_id=result.stream_id,
        status=state.status,  # type: ignore[arg-type]
        version=result.version,
        position=result.position,
    )


def detail(state: activities.Activity, at: datetime) -> dict[str, Any]:
    """An activity's shape for readers, its state (overdue derived) at ``at``."""
    return {
        "activity_id": state.activity_id,
        "type": state.activity_type,
        "group": state.group,
        "direction": state.direction,
        "owner": state.owner,
        "company_id": state.company_id,
        "contact": state.contact,
        "lead_id": state.lead_id,
        "deal_id": state.deal_id,
        "project_id": state.project_id,
        "planned_at": state.planned_at,
        "duration_minutes": state.duration_minutes,
        "planned_end": state.planned_end,
        "notes": state.notes,
        "status": state.status,
        "state": state.state_at(at),
        "result": state.result,
        "done_at": state.done_at,
        "cancel_reason": state.cancel_reason,
        "registered": state.registered,
        "reschedules": state.reschedules,
        "created_at": state.created_at,
        "created_by": state.created_by,
        "version": state.version,
    }


# --- commands ---------------------------------------------------------------------------


@router.post("/activities", status_code=201, response_model=ActivityAccepted, responses=ERRORS)
def plan(
    body: ActivityRequest, headers: Headers, platform: PlatformDep, response: Response
) -> ActivityAccepted:
    """Plan an activity for yourself (a head: for a person of their department; top
    management: for anyone), or register one that happened (``done``; incoming calls
    and e-mails always are)."""
    ctx = headers.context(
        platform, "plan-activity", {"command": "plan", **body.model_dump(mode="json")}
    )
    command = activities.PlanActivity(
        activity_id=activity_id_for(ctx.command_id),
        activity_type=body.type,
        owner=body.owner or headers.actor,
        planned_at=as_utc(body.planned_at) or ctx.at,
        duration_minutes=body.duration_minutes,
        company_id=body.company_id,
        contact=body.contact,
        lead_id=body.lead_id,
        deal_id=body.deal_id,
        project_id=body.project_id,
        notes=body.notes,
        done=body.done,
        result=body.result,
    )
    result = plan_activity(platform.store, platform.rules.activities, command, ctx)
    response.headers["Location"] = f"/activities/{result.stream_id}"
    return _accepted(platform, result, response)


def _act(
    platform: PlatformDep,
    headers: CommandHeaders,
    activity_id: UUID,
    name: str,
    body: Any,
    command: activities.ActivityCommand,
    response: Response,
) -> ActivityAccepted:
    request = {"command": name, "activity_id": str(activity_id), **body.model_dump(mode="json")}
    ctx = headers.context(platform, f"activity:{activity_id}", request)
    result = handle_activity_command(platform.store, activity_id, command, ctx)
    return _accepted(platform, result, response)


@router.post("/activities/{activity_id}/done", response_model=ActivityAccepted, responses=ERRORS)
def done(
    activity_id: UUID,
    body: ActivityDoneRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ActivityAccepted:
    """Mark a planned (or overdue) activity done, with its result."""
    command = activities.CompleteActivity(body.result)
    return _act(platform, headers, activity_id, "done", body, command, response)


@router.post("/activities/{activity_id}/cancel", response_model=ActivityAccepted, responses=ERRORS)
def cancel(
    activity_id: UUID,
    body: ActivityCancelRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ActivityAccepted:
    """Cancel a planned (or overdue) activity."""
    command = activities.CancelActivity(body.reason)
    return _act(platform, headers, activity_id, "cancel", body, command, response)


@router.post(
    "/activities/{activity_id}/reschedule", response_model=ActivityAccepted, responses=ERRORS
)
def reschedule(
    activity_id: UUID,
    body: ActivityRescheduleRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ActivityAccepted:
    """Move a planned (or overdue) activity to another time."""
    planned_at = as_utc(body.planned_at)
    assert planned_at is not None
    command = activities.RescheduleActivity(planned_at, body.duration_minutes, body.reason)
    return _act(platform, headers, activity_id, "reschedule", body, command, response)


# --- reads ------------------------------------------------------------------------------


@router.get("/activity-types", response_model=ActivityTypes)
def activity_types(platform: PlatformDep) -> dict[str, Any]:
    """The configured activity types (code, group, direction, weight) and groups."""
    return queries.activity_types(platform.rules.activities)


def parse_day(field: str, raw: str | None) -> date | None:
    """An ISO date (2026-01-12), strictly: 422 naming the field otherwise."""
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else date.fromisoformat("bad")
    except ValueError:
        raise BadRequestValue(field, "must be an ISO date, e.g. 2026-01-12") from None


def parse_week(raw: str) -> date:
    """A week named by its Monday, from the path."""
    day = parse_day("week", raw)
    assert day is not None
    return activity_plans.require_monday(day)


def _check_type(platform: PlatformDep, type_: str | None) -> None:
    if type_ is not None:
        platform.rules.activities.require_type(type_)


class Who:
    """Whose activities: a person, or the people of a department, region or city (within
    the viewer's scope)."""

    def __init__(
        self,
        owner: Annotated[str | None, Query(description="The person (their username)")] = None,
        manager: Annotated[str | None, Query(description="The same as owner")] = None,
        department: str | None = None,
        region: str | None = None,
        city: str | None = None,
    ) -> None:
        if owner is not None and manager is not None and owner != manager:
            raise BadRequestValue("manager", "name the person once: owner or manager")
        self.owner = owner or manager
        self.department = department
        self.region = region
        self.city = city

    def filters(self, **more: Any) -> ActivityFilters:
        return ActivityFilters(
            owner=self.owner,
            department=self.department,
            region=self.region,
            city=self.city,
            **more,
        )


WhoDep = Annotated[Who, Depends()]


@router.get("/activities", response_model=ActivityPage)
def list_activities(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: PeriodDep,
    who: WhoDep,
    type: Annotated[str | None, Query(description="An activity type's code")] = None,
    group: ActivityGroup | None = None,
    status: Annotated[
        ActivityState | None, Query(description="The state now: overdue is derived")
    ] = None,
    company_id: str | None = None,
    lead_id: UUID | None = None,
    deal_id: UUID | None = None,
    project_id: UUID | None = None,
    order: Annotated[
        Literal["planned_at", "-planned_at"],
        Query(description="By planned time: ascending, or latest first (default)"),
    ] = "-planned_at",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Activities (``from``/``to`` on their planned time), each with its state now."""
    _check_type(platform, type)
    filters = who.filters(
        type=type,
        group=group,
        state=status,
        company_id=company_id,
        lead_id=None if lead_id is None else str(lead_id),
        deal_id=None if deal_id is None else str(deal_id),
        project_id=None if project_id is None else str(project_id),
        start=period.start,
        end=period.end,
    )
    items, total = queries.list_activities(
        cursor, filters, platform.clock(), limit, offset, ascending=order == "planned_at"
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/activities/{activity_id}",
    response_model=ActivityDetail,
    responses={404: {"description": "Unknown activity"}},
)
def get_activity(
    activity_id: UUID, platform: PlatformDep, response: Response, as_of: AsOf = None
) -> dict[str, Any]:
    """The activity now, or as it was at ``as_of`` (overdue judged at that instant)."""
    at = as_utc(as_of)
    state = activity_of(load_activity_records(platform.store, activity_id, as_of=at))
    if state is None:
        raise StreamNotFound(f"activity {activity_id} not found")
    response.headers["ETag"] = f'"{state.version}"'
    return {**detail(state, at or platform.clock()), "as_of": at}


@router.get(
    "/activities/{activity_id}/history",
    response_model=StreamHistory,
    responses={404: {"description": "Unknown activity"}},
)
def history(activity_id: UUID, platform: PlatformDep) -> Response:
    """Every event of the activity, with the fields each changed."""
    records = load_activity_records(platform.store, activity_id)
    if not records:
        raise StreamNotFound(f"activity {activity_id} not found")
    now = platform.clock()
    entries = stream_history(records, activities.evolve, lambda s: detail(s, now))
    return Response(
        content=dumps_http({"id": activity_id, "events": entries}),
        media_type="application/json",
    )


# --- personal weekly plans ----------------------------------------------------------------


def _plan_out(platform: PlatformDep, manager: str, week: date) -> dict[str, Any]:
    state = plan_of(load_plan_records(platform.store, manager, week))
    if state is None:
        raise StreamNotFound(f"{manager} has no activity plan for the week of {week}")
    totals: dict[str, int] = {}
    for counts in state.days.values():
        for code, n in counts.items():
            totals[code] = totals.get(code, 0) + n
    return {
        "plan_id": state.plan_id,
        "manager": state.manager,
        "week": state.week,
        "days": [
            {"day": date.fromisoformat(day), "counts": counts}
            for day, counts in sorted(state.days.items())
        ],
        "totals": totals,
        "note": state.note,
        "comments": [{"author": c.author, "text": c.text, "at": c.at} for c in state.comments],
        "updated_at": state.updated_at,
        "updated_by": state.updated_by,
        "version": state.version,
    }


def _visible_plan(cursor: ReadCursor, principal: Principal, manager: str, week: date) -> None:
    """A plan outside the viewer's scope reads as missing."""
    if (
        not principal.sees_everything
        and manager != principal.user
        and not queries.plan_visible(cursor, manager, week)
    ):
        raise StreamNotFound(f"{manager} has no activity plan for the week of {week}")


@router.get("/activity-plans", response_model=ActivityPlanPage)
def list_plans(
    platform: PlatformDep,
    cursor: ReadCursor,
    who: WhoDep,
    week: Annotated[
        str | None, Query(description="Any day of the week, ISO (default: next week)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The personal plans of a week (default: next week) the viewer may see: per manager,
    the totals per activity type and the number of comments."""
    chosen = parse_day("week", week) or platform.clock().astimezone(UTC).date() + timedelta(days=7)
    items, total = queries.list_plans(cursor, who.filters(), queries.monday(chosen), limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/activity-plans/{manager}/{week}",
    response_model=ActivityPlanOut,
    responses={404: {"description": "No plan for that manager and week"}},
)
def get_plan(
    manager: str,
    week: str,
    platform: PlatformDep,
    cursor: ReadCursor,
    principal: CurrentUser,
    response: Response,
) -> dict[str, Any]:
    """A manager's personal plan for the week (``week``: its Monday), with comments."""
    monday = parse_week(week)
    _visible_plan(cursor, principal, manager, monday)
    plan = _plan_out(platform, manager, monday)
    response.headers["ETag"] = f'"{plan["version"]}"'
    return plan


@router.put(
    "/activity-plans/{manager}/{week}", response_model=ActivityPlanAccepted, responses=ERRORS
)
def put_plan(
    manager: str,
    week: str,
    body: ActivityPlanRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ActivityPlanAccepted:
    """Set the manager's plan for the week (``week``: its Monday): for each day, how many
    activities of each type. The manager sets their own (their head and top management
    may too); another manager gets a 403. Replaces the earlier plan whole."""
    monday = parse_week(week)
    request = {
        "command": "plan",
        "manager": manager,
        "week": monday.isoformat(),
        **body.model_dump(mode="json"),
    }
    ctx = headers.context(platform, f"activity-plan:{manager}:{monday}", request)
    days: dict[date, dict[str, int]] = {}
    for entry in body.days:
        if entry.day in days:
            raise BadRequestValue("days", f"{entry.day} appears twice")
        days[entry.day] = dict(entry.counts)
    command = activity_plans.SetActivityPlan(manager, monday, days, body.note)
    result = set_activity_plan(platform.store, platform.rules.activities, command, ctx)
    mark_accepted(result, response)
    return ActivityPlanAccepted(
        plan_id=result.stream_id, version=result.version, position=result.position
    )


@router.post(
    "/activity-plans/{manager}/{week}/comments",
    response_model=ActivityPlanAccepted,
    responses=ERRORS,
)
def comment_plan(
    manager: str,
    week: str,
    body: PlanCommentRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> ActivityPlanAccepted:
    """Comment on the manager's plan (their head, top management, or the manager)."""
    monday = parse_week(week)
    request = {
        "command": "comment",
        "manager": manager,
        "week": monday.isoformat(),
        **body.model_dump(mode="json"),
    }
    ctx = headers.context(platform, f"activity-plan:{manager}:{monday}", request)
    command = activity_plans.CommentActivityPlan(body.text)
    result = comment_activity_plan(platform.store, manager, monday, command, ctx)
    mark_accepted(result, response)
    return ActivityPlanAccepted(
        plan_id=result.stream_id, version=result.version, position=result.position
    )


# --- indicators -------------------------------------------------------------------------


def _days(period: Period, platform: PlatformDep, default_days: int) -> tuple[date, date]:
    """The period's first and last day (default: the last ``default_days`` to today)."""
    today = platform.clock().astimezone(UTC).date()
    last = period.end.date() if period.end is not None else today
    first = (
        period.start.date() if period.start is not None else last - timedelta(days=default_days - 1)
    )
    return first, last


@router.get("/reports/activities/weekly", response_model=WeeklyReport)
def weekly(
    platform: PlatformDep,
    cursor: ReadCursor,
    who: WhoDep,
    week: Annotated[
        str | None, Query(description="Any day of the week, ISO (default: this week)")
    ] = None,
) -> dict[str, Any]:
    """The weekly table (seed 004 «Текущая активность»): Monday to Friday * activity
    types, each cell all / done with the overdue marked, group and week totals, plan vs
    fact when personal plans exist; each cell links to the activities it counts."""
    now = platform.clock()
    chosen = parse_day("week", week) or now.astimezone(UTC).date()
    return queries.weekly_table(cursor, who.filters(), chosen, now, platform.rules.activities)


@router.get("/reports/activities/coefficient", response_model=CoefficientReport)
def coefficient(
    platform: PlatformDep, cursor: ReadCursor, period: PeriodDep, who: WhoDep
) -> dict[str, Any]:
    """The activity coefficient over the period (default: this week so far) and its parts:
    min(cap, Σ weight * done / Σ weight * planned), see the README."""
    now = platform.clock()
    today = now.astimezone(UTC).date()
    first = period.start.date() if period.start is not None else queries.monday(today)
    last = period.end.date() if period.end is not None else today
    return queries.coefficient(cursor, who.filters(), first, last, now, platform.rules.activities)


@router.get("/reports/activities/calls", response_model=CallsReport)
def calls(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: PeriodDep,
    who: WhoDep,
    by: Annotated[Literal["day", "week"], Query(description="Per day or per week")] = "day",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Calls made (done) per person and day or week (default: the last 28 days)."""
    first, last = _days(period, platform, 28)
    return queries.calls(cursor, who.filters(), first, last, platform.clock(), by, limit, offset)


@router.get("/reports/activities/clients-without-interaction", response_model=ClientsReport)
def clients_without_interaction(
    platform: PlatformDep,
    cursor: ReadCursor,
    who: WhoDep,
    days: Annotated[
        int | None,
        Query(ge=1, le=3650, description="N (default: [activities] no_interaction_days)"),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Clients with no done activity for N days (or never), the longest forgotten first:
    clients of leads and deals in work and of any activity, by their managers."""
    n = days or platform.rules.activities.no_interaction_days
    return queries.clients_without_interaction(
        cursor, who.filters(), platform.clock(), n, limit, offset
    )


@router.get("/reports/activities/clients-without-planned", response_model=ClientsReport)
def clients_without_planned(
    platform: PlatformDep,
    cursor: ReadCursor,
    who: WhoDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Clients of leads and deals in work with no activity planned from now on."""
    return queries.clients_without_planned(cursor, who.filters(), platform.clock(), limit, offset)
