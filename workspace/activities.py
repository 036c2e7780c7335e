"""The workspace's activity pages («Мои Дела», «Личные Планы», seed 004): a person's
activities (today's, the overdue ones, the coming ones, and any filtered list), the
week's table (days by types, all / done, overdue marked, plan vs fact), the forms that
plan or register an activity and mark one done, cancel or reschedule it; and the grid of
a personal plan for a week with its comments.

Pages read through the API's own queries and scopes and act through the API's own
handlers, each form as the API operation it stands for (the same endpoint table, the
same ownership guard, the same idempotency).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from aggregates import activities, activity_plans
from aggregates.users import Principal, Role
from commands.activities import (
    activity_id_for,
    comment_activity_plan,
    handle_activity_command,
    load_plan_records,
    plan_activity,
    plan_of,
    set_activity_plan,
)
from commands.context import CommandContext, CommandFailed, CommandResult, StreamNotFound
from commands.policy import Policy
from commands.users import StoreDirectory
from leadledger.wiring import Platform
from queries import activities as queries
from queries.activities import ActivityFilters
from read_api.access import read_models, sees
from read_api.errors import BadRequestValue
from schemas.activities import (
    ActivityCancelRequest,
    ActivityDoneRequest,
    ActivityPlanRequest,
    ActivityRequest,
    ActivityRescheduleRequest,
    PlanCommentRequest,
)
from workspace.messages import N_
from workspace.pages import (
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    command_context,
    may,
    render,
    require,
)
from workspace.projects import REFUSALS, Failure, failure_of

router = APIRouter()

WORDS = (
    N_("Activities"),
    N_("Weekly plan"),
    N_("planned"),
    N_("overdue"),
    N_("done"),
    N_("cancelled"),
    N_("calls"),
    N_("meetings"),
    N_("demos"),
    N_("emails"),
    N_("Outgoing call: cold"),
    N_("Outgoing call: potentially active"),
    N_("Outgoing call: on a current deal"),
    N_("Incoming call: new client"),
    N_("Incoming call: known client"),
    N_("Meeting: cold"),
    N_("Meeting: potentially active"),
    N_("Meeting: active client"),
    N_("Demonstration"),
    N_("Incoming e-mail"),
    N_("Outgoing e-mail"),
)
"""Words the pages translate from data (states, groups, the default types' names)."""

OPERATIONS = {
    "plan": Operation("/activities", "plan"),
    "done": Operation("/activities/{activity_id}/done", "done"),
    "cancel": Operation("/activities/{activity_id}/cancel", "cancel"),
    "reschedule": Operation("/activities/{activity_id}/reschedule", "reschedule"),
    "put_plan": Operation("/activity-plans/{manager}/{week}", "put_plan"),
    "comment": Operation("/activity-plans/{manager}/{week}/comments", "comment_plan"),
}
PLAN_VALUES = (
    "type",
    "owner",
    "company_id",
    "contact",
    "lead_id",
    "deal_id",
    "project_id",
    "planned_at",
    "duration_minutes",
    "notes",
    "done",
    "result",
)
SECTION_SIZE = 20
PAGE_SIZE = 25


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _text(form: FormData, name: str) -> str | None:
    raw = form.get(name)
    if not isinstance(raw, str):
        return None
    return raw.strip() or None


def _moment(raw: str | None) -> str | None:
    """A datetime-local input's value (taken as UTC) as an ISO instant."""
    if raw is None:
        return None
    return raw if raw.endswith("Z") or "+" in raw[10:] else f"{raw}Z"


def _day(raw: str | None, today: date) -> date:
    if raw:
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            return today
    return today


def _person(principal: Principal, raw: str | None) -> str | None:
    """Whose activities: a manager only their own; heads and top anyone's in scope (or,
    left empty, everyone's they see)."""
    person = (raw or "").strip()[:100]
    if principal.role is Role.MANAGER:
        return principal.user
    return person or None


# --- the activities page ----------------------------------------------------------------------


def activities_context(
    platform: Platform,
    principal: Principal,
    chosen: dict[str, str],
    page: int,
) -> dict[str, Any]:
    now = platform.clock()
    today = now.astimezone(UTC).date()
    owner = _person(principal, chosen.get("owner"))
    rules = platform.rules.activities
    day_start = datetime.combine(today, datetime.min.time(), UTC)
    filtered = any(chosen.get(k) for k in ("type", "group", "status", "from", "to"))
    with read_models(platform, principal) as cursor:
        mine = ActivityFilters(owner=owner)
        sections: dict[str, Any] = {}
        for name, filters, ascending in (
            (
                "overdue",
                ActivityFilters(owner=owner, state="overdue"),
                True,
            ),
            (
                "today",
                ActivityFilters(
                    owner=owner, start=day_start, end=day_start + timedelta(days=1, microseconds=-1)
                ),
                True,
            ),
            (
                "upcoming",
                ActivityFilters(owner=owner, state="planned", start=day_start + timedelta(days=1)),
                True,
            ),
        ):
            items, total = queries.list_activities(
                cursor, filters, now, SECTION_SIZE, 0, ascending=ascending
            )
            sections[name] = {"items": items, "total": total}
        found: dict[str, Any] | None = None
        if filtered:
            start = _day(chosen.get("from"), today) if chosen.get("from") else None
            end = _day(chosen.get("to"), today) if chosen.get("to") else None
            listing = ActivityFilters(
                owner=owner,
                type=chosen.get("type") if rules.type(chosen.get("type", "")) else None,
                group=chosen.get("group") if chosen.get("group") in rules.groups else None,
                state=chosen.get("status") if chosen.get("status") in activities.STATES else None,
                start=None if start is None else datetime.combine(start, datetime.min.time(), UTC),
                end=None if end is None else datetime.combine(end, datetime.max.time(), UTC),
            )
            items, total = queries.list_activities(
                cursor, listing, now, PAGE_SIZE, (page - 1) * PAGE_SIZE, ascending=True
            )
            found = {"items": items, "total": total}
        week = queries.monday(_day(chosen.get("week"), today))
        table = queries.weekly_table(cursor, mine, week, now, rules)
        coefficient = queries.coefficient(
            cursor, mine, week, min(today, week + timedelta(days=6)), now, rules
        )
    names = {t.code: t.name for t in rules.types}
    return {
        "sections": sections,
        "found": found,
        "chosen": chosen,
        "owner": owner,
        "table": table,
        "coefficient": coefficient,
        "type_names": names,
        "types": rules.types,
        "groups": rules.groups,
        "states": activities.STATES,
        "week": week,
        "previous_week": (week - timedelta(days=7)).isoformat(),
        "next_week": (week + timedelta(days=7)).isoformat(),
        "may_plan": may(principal, "POST", "/activities"),
        "may_choose_owner": principal.role is not Role.MANAGER,
        "now_local": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "key": uuid4().hex,
        "page": page,
    }


@router.get("/activities")
def activities_page(
    request: Request,
    principal: Viewer,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    group: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    week: Annotated[str | None, Query(max_length=10)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    require(principal, "GET", "/activities")
    chosen = {
        k: v
        for k, v in {
            "owner": owner,
            "type": type,
            "group": group,
            "status": status,
            "from": from_,
            "to": to,
            "week": week,
        }.items()
        if v
    }
    context = activities_context(_platform(request), principal, chosen, page)
    context.update(failure=None, values={}, accepted=done)
    return render(request, "activities/list.html", context, principal=principal)


def _refused(request: Request, principal: Principal, failure: Failure) -> HTMLResponse:
    context = activities_context(_platform(request), principal, {}, 1)
    context.update(failure=failure, values=failure.values, accepted=None)
    return render(
        request,
        "activities/list.html",
        context,
        status_code=failure.status,
        principal=principal,
    )


async def _submit(
    request: Request,
    principal: Principal,
    form_name: str,
    values: dict[str, Any],
    run: Callable[[], CommandResult],
    back: str,
) -> Response:
    platform = _platform(request)
    try:
        result = await run_in_threadpool(run)
    except StreamNotFound:
        raise PageNotFound from None
    except (*REFUSALS, CommandFailed) as error:
        failure = failure_of(form_name, error, values)
        return await run_in_threadpool(_refused, request, principal, failure)
    await platform.projector.reached(result.position, platform.settings.read_wait_seconds)
    return RedirectResponse(back, status_code=303)


@router.post("/activities", dependencies=[CsrfChecked])
async def plan_form(request: Request, principal: Viewer) -> Response:
    """Plan an activity, or register one that happened: POST /activities."""
    require(principal, "POST", OPERATIONS["plan"].path)
    form = await request.form()
    values = {n: v for n in PLAN_VALUES if (v := _text(form, n)) is not None}
    platform = _platform(request)

    def run() -> CommandResult:
        raw: dict[str, Any] = {k: v for k, v in values.items() if k != "done"}
        raw["planned_at"] = _moment(values.get("planned_at"))
        raw["done"] = values.get("done") in ("on", "true", "1")
        if principal.role is Role.MANAGER or not raw.get("owner"):
            raw.pop("owner", None)
        body = ActivityRequest.model_validate({k: v for k, v in raw.items() if v is not None})
        ctx = command_context(
            request,
            principal,
            OPERATIONS["plan"],
            {},
            "plan-activity",
            {"command": "plan", **body.model_dump(mode="json")},
            key=_text(form, "key"),
        )
        command = activities.PlanActivity(
            activity_id=activity_id_for(ctx.command_id),
            activity_type=body.type,
            owner=body.owner or principal.user,
            planned_at=body.planned_at or ctx.at,
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
        return plan_activity(platform.store, platform.rules.activities, command, ctx)

    back = f"{PREFIX}/activities?" + urlencode({"done": "plan"})
    return await _submit(request, principal, "plan", values, run, back)


@router.post("/activities/{activity_id}/{action}", dependencies=[CsrfChecked])
async def activity_form(
    request: Request, principal: Viewer, activity_id: str, action: str
) -> Response:
    """Mark done (with the result), cancel or reschedule an activity."""
    if action not in ("done", "cancel", "reschedule"):
        raise PageNotFound
    try:
        activity_uuid = UUID(activity_id)
    except ValueError:
        raise PageNotFound from None
    require(principal, "POST", OPERATIONS[action].path)
    platform = _platform(request)
    if not await sees(platform, principal, "activities", "activity_id", str(activity_uuid)):
        raise PageNotFound
    form = await request.form()
    values = {
        n: v
        for n in ("result", "reason", "planned_at", "duration_minutes")
        if (v := _text(form, n)) is not None
    }

    def run() -> CommandResult:
        command: activities.ActivityCommand
        if action == "done":
            done = ActivityDoneRequest.model_validate({"result": values.get("result", "")})
            body: dict[str, Any] = done.model_dump(mode="json")
            command = activities.CompleteActivity(done.result)
        elif action == "cancel":
            cancel = ActivityCancelRequest.model_validate({"reason": values.get("reason")})
            body = cancel.model_dump(mode="json")
            command = activities.CancelActivity(cancel.reason)
        else:
            moved = ActivityRescheduleRequest.model_validate(
                {
                    "planned_at": _moment(values.get("planned_at")),
                    **(
                        {"duration_minutes": values["duration_minutes"]}
                        if "duration_minutes" in values
                        else {}
                    ),
                }
            )
            body = moved.model_dump(mode="json")
            planned_at = (
                moved.planned_at.astimezone(UTC)
                if moved.planned_at.tzinfo
                else moved.planned_at.replace(tzinfo=UTC)
            )
            command = activities.RescheduleActivity(planned_at, moved.duration_minutes, None)
        ctx: CommandContext = command_context(
            request,
            principal,
            OPERATIONS[action],
            {"activity_id": str(activity_uuid)},
            f"activity:{activity_uuid}",
            {"command": action, "activity_id": str(activity_uuid), **body},
            version=_text(form, "version"),
            key=_text(form, "key"),
        )
        return handle_activity_command(platform.store, activity_uuid, command, ctx)

    back = _text(form, "next") or f"{PREFIX}/activities"
    if not back.startswith(f"{PREFIX}/"):
        back = f"{PREFIX}/activities"
    sep = "&" if "?" in back else "?"
    return await _submit(request, principal, action, values, run, f"{back}{sep}done={action}")


# --- personal weekly plans ----------------------------------------------------------------------


def plan_context(
    platform: Platform, principal: Principal, manager: str, week: date
) -> dict[str, Any]:
    state = plan_of(load_plan_records(platform.store, manager, week))
    rules = platform.rules.activities
    days = [week + timedelta(days=i) for i in range(7)]
    with read_models(platform, principal) as cursor:
        plans, _ = queries.list_plans(cursor, ActivityFilters(), week, 200, 0)
    return {
        "manager": manager,
        "week": week,
        "days": days,
        "types": rules.types,
        "counts": {} if state is None else state.days,
        "note": None if state is None else state.note,
        "comments": () if state is None else state.comments,
        "version": 0 if state is None else state.version,
        "exists": state is not None,
        "plans": plans,
        "previous_week": (week - timedelta(days=7)).isoformat(),
        "next_week": (week + timedelta(days=7)).isoformat(),
        "may_edit": may(principal, "PUT", OPERATIONS["put_plan"].path),
        "may_choose_manager": principal.role is not Role.MANAGER,
        "key": uuid4().hex,
    }


def _plan_target(
    principal: Principal, manager: str | None, week: str | None, today: date
) -> tuple[str, date]:
    who = _person(principal, manager) or principal.user
    default = today + timedelta(days=7)  # seed 004: plans are made for next week
    return who, queries.monday(_day(week, default))


@router.get("/activity-plans")
async def plan_page(
    request: Request,
    principal: Viewer,
    manager: Annotated[str | None, Query(max_length=100)] = None,
    week: Annotated[str | None, Query(max_length=10)] = None,
    saved: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    require(principal, "GET", "/activity-plans/{manager}/{week}")
    platform = _platform(request)
    who, monday = _plan_target(principal, manager, week, platform.clock().astimezone(UTC).date())
    if not principal.sees_everything and not Policy(principal, StoreDirectory(platform.store)).runs(
        who
    ):
        raise PageNotFound
    context = await run_in_threadpool(plan_context, platform, principal, who, monday)
    context.update(failure=None, saved=saved)
    return render(request, "activities/plan.html", context, principal=principal)


def _counts(form: FormData, week: date) -> list[dict[str, Any]]:
    days: dict[str, dict[str, int]] = {}
    for name, raw in form.multi_items():
        if not name.startswith("n|") or not isinstance(raw, str) or not raw.strip():
            continue
        parts = name.split("|")
        if len(parts) != 3:
            continue
        try:
            count = int(raw.strip())
        except ValueError:
            raise BadRequestValue(name, "counts must be whole numbers") from None
        days.setdefault(parts[1], {})[parts[2]] = count
    return [{"day": day, "counts": counts} for day, counts in sorted(days.items())][:7]


@router.post("/activity-plans", dependencies=[CsrfChecked])
async def weekly_plan_form(request: Request, principal: Viewer) -> Response:
    """The grid (PUT /activity-plans/{manager}/{week}) or a comment (POST .../comments)."""
    form = await request.form()
    platform = _platform(request)
    today = platform.clock().astimezone(UTC).date()
    who, monday = _plan_target(principal, _text(form, "manager"), _text(form, "week"), today)
    comment = _text(form, "comment")
    action = "comment" if comment is not None or _text(form, "action") == "comment" else "put_plan"
    require(principal, "PUT" if action == "put_plan" else "POST", OPERATIONS[action].path)
    params = {"manager": who, "week": monday.isoformat()}

    def run() -> CommandResult:
        if action == "comment":
            body = PlanCommentRequest.model_validate({"text": comment or ""})
            ctx = command_context(
                request,
                principal,
                OPERATIONS["comment"],
                params,
                f"activity-plan:{who}:{monday}",
                {"command": "comment", **params, **body.model_dump(mode="json")},
                key=_text(form, "key"),
            )
            command = activity_plans.CommentActivityPlan(body.text)
            return comment_activity_plan(platform.store, who, monday, command, ctx)
        plan = ActivityPlanRequest.model_validate(
            {"days": _counts(form, monday), "note": _text(form, "note")}
        )
        ctx = command_context(
            request,
            principal,
            OPERATIONS["put_plan"],
            params,
            f"activity-plan:{who}:{monday}",
            {"command": "plan", **params, **plan.model_dump(mode="json")},
            version=_text(form, "version"),
            key=_text(form, "key"),
            method="PUT",
        )
        days = {d.day: dict(d.counts) for d in plan.days}
        set_command = activity_plans.SetActivityPlan(who, monday, days, plan.note)
        return set_activity_plan(platform.store, platform.rules.activities, set_command, ctx)

    try:
        result = await run_in_threadpool(run)
    except StreamNotFound:
        raise PageNotFound from None
    except (*REFUSALS, ValidationError, CommandFailed) as error:
        failure = failure_of(action, error, {})
        context = await run_in_threadpool(plan_context, platform, principal, who, monday)
        context.update(failure=failure, saved=None)
        return render(
            request,
            "activities/plan.html",
            context,
            status_code=failure.status,
            principal=principal,
        )
    await platform.projector.reached(result.position, platform.settings.read_wait_seconds)
    query = urlencode({**params, "saved": action})
    return RedirectResponse(f"{PREFIX}/activity-plans?{query}", status_code=303)
