"""Status-time control: how long leads, deals and projects spent in each stage or status,
against the configured time limits, now or as it was at ``as_of``. Pass ``min_position``
from a command's answer to read your write."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from aggregates import status_limits
from commands.context import StreamNotFound
from commands.status_limits import set_status_limit
from leadledger.wiring import Platform
from queries import status_time
from queries.status_time import Kind, StatusTimeFilters
from read_api.deps import (
    CommandHeadersDep,
    PlatformDep,
    ReadCursor,
    mark_accepted,
    parse_instant,
)
from read_api.errors import BadRequestValue
from schemas.status_time import (
    SetStatusLimitRequest,
    StatusLimitAccepted,
    StatusLimits,
    StatusTimePage,
    StatusTimeSummary,
    SubjectStatusTime,
)

router = APIRouter(tags=["status time"])

KindQuery = Annotated[Kind, Query(description="What to report on: lead, deal or project")]
AsOf = Annotated[
    str | None,
    Query(
        description="ISO timestamp, or a date (its start, 00:00 UTC): the picture as it was "
        "then (default: now)"
    ),
]
Funnel = Annotated[str | None, Query(description="Lead or deal funnel id")]
Stage = Annotated[str | None, Query(description="A stage of leads or deals")]
Status = Annotated[str | None, Query(description="A project status")]
Manager = Annotated[str | None, Query(description="The lead's or deal's manager")]
Pm = Annotated[str | None, Query(description="The project's PM")]
OverLimitOnly = Annotated[bool, Query(description="Only visits over their stage's limit")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]


def _as_of(platform: Platform, raw: str | None) -> datetime:
    now = platform.clock()
    moment = parse_instant("as_of", raw) or now
    if moment > now:
        raise BadRequestValue("as_of", "must not be in the future")
    return moment


def _refuse(value: str | None, field: str, message: str) -> None:
    if value is not None:
        raise BadRequestValue(field, message)


def _check_stage(platform: Platform, kind: Kind, funnel: str | None, stage: str | None) -> None:
    catalog = platform.funnels if kind == "lead" else platform.rules.deal_funnels
    chosen = None
    if funnel is not None:
        chosen = catalog.get(funnel)
        if chosen is None:
            known = ", ".join(sorted(catalog))
            raise BadRequestValue("funnel", f"unknown {kind} funnel '{funnel}' (known: {known})")
    if stage is None:
        return
    funnels = [chosen] if chosen is not None else list(catalog.values())
    if not any(f.stage(stage) is not None for f in funnels):
        where = f"funnel '{funnel}'" if funnel is not None else f"any {kind} funnel"
        raise BadRequestValue("stage", f"unknown stage '{stage}' of {where}")


def _filters(
    platform: Platform,
    kind: Kind,
    *,
    as_of: str | None,
    funnel: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    manager: str | None = None,
    pm: str | None = None,
    subject_id: UUID | None = None,
    over_limit_only: bool = False,
) -> StatusTimeFilters:
    """The filters, each checked against the kind and the configuration (422 naming it)."""
    moment = _as_of(platform, as_of)
    if kind == "project":
        _refuse(funnel, "funnel", "projects have no funnel")
        _refuse(stage, "stage", "projects have statuses: filter them with 'status'")
        _refuse(manager, "manager", "filter projects by their 'pm'")
        if status is not None:
            platform.rules.project.require_status(status)
        stage_or_status, owner = status, pm
    else:
        _refuse(status, "status", f"{kind}s have stages: filter them with 'stage'")
        _refuse(pm, "pm", f"filter {kind}s by their 'manager'")
        _check_stage(platform, kind, funnel, stage)
        stage_or_status, owner = stage, manager
    return StatusTimeFilters(
        kind=kind,
        as_of=moment,
        funnel=funnel,
        stage=stage_or_status,
        owner=owner,
        subject_id=None if subject_id is None else str(subject_id),
        over_limit_only=over_limit_only,
    )


def _limits(
    platform: Platform, cursor: ReadCursor, kind: Kind, as_of: datetime
) -> list[status_time.StageLimit]:
    """The kind's limits as they were at ``as_of``: configured, then set by hand."""
    changes = status_time.limit_changes(cursor, kind, as_of)
    return status_time.stage_limits(kind, platform.funnels, platform.rules, changes)


@router.get("/reports/status-time", response_model=StatusTimePage)
def status_time_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    kind: KindQuery,
    as_of: AsOf = None,
    funnel: Funnel = None,
    stage: Stage = None,
    status: Status = None,
    manager: Manager = None,
    pm: Pm = None,
    over_limit_only: OverLimitOnly = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every visit to a stage (leads, deals) or status (projects) up to ``as_of``, the
    latest entered first: its time with paused time left out, the limit, whether it went
    over it, and whether it is still open and over it at ``as_of``."""
    filters = _filters(
        platform,
        kind,
        as_of=as_of,
        funnel=funnel,
        stage=stage,
        status=status,
        manager=manager,
        pm=pm,
        over_limit_only=over_limit_only,
    )
    items, total = status_time.list_visits(
        cursor, filters, _limits(platform, cursor, kind, filters.as_of), limit, offset
    )
    return {
        "kind": kind,
        "as_of": filters.as_of,
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/reports/status-time/summary", response_model=StatusTimeSummary)
def status_time_summary(
    platform: PlatformDep,
    cursor: ReadCursor,
    kind: KindQuery,
    as_of: AsOf = None,
    funnel: Funnel = None,
    stage: Stage = None,
    status: Status = None,
    manager: Manager = None,
    pm: Pm = None,
    over_limit_only: OverLimitOnly = False,
) -> dict[str, Any]:
    """Per stage or status, in configured order: visits, their total and average time,
    the limit, visits over it, visits open at ``as_of`` and those over the limit then;
    and the totals. Every figure is the sum of the visits the same filters list."""
    filters = _filters(
        platform,
        kind,
        as_of=as_of,
        funnel=funnel,
        stage=stage,
        status=status,
        manager=manager,
        pm=pm,
        over_limit_only=over_limit_only,
    )
    report = status_time.summary(cursor, filters, _limits(platform, cursor, kind, filters.as_of))
    return {"kind": kind, "as_of": filters.as_of, **report}


def _subject(
    platform: Platform, cursor: ReadCursor, kind: Kind, subject_id: UUID, as_of: str | None
) -> dict[str, Any]:
    filters = _filters(platform, kind, as_of=as_of, subject_id=subject_id)
    created = status_time.created_at(cursor, kind, str(subject_id))
    if created is None:
        raise StreamNotFound(f"{kind} {subject_id} not found")
    if created > filters.as_of:
        raise StreamNotFound(
            f"{kind} {subject_id} did not exist at {filters.as_of:%Y-%m-%dT%H:%M:%S%z}"
        )
    found = status_time.subject_status_time(
        cursor, filters, _limits(platform, cursor, kind, filters.as_of)
    )
    return {"kind": kind, "subject_id": subject_id, "as_of": filters.as_of, **found}


SUBJECT_DOC = (
    "The {kind}'s visits to each {stage} up to ``as_of``, in order, and its time per "
    "{stage} (paused time left out)."
)


@router.get(
    "/leads/{lead_id}/status-time",
    response_model=SubjectStatusTime,
    responses={404: {"description": "Unknown lead, or not yet created at as_of"}},
    description=SUBJECT_DOC.format(kind="lead", stage="stage"),
)
def lead_status_time(
    lead_id: UUID, platform: PlatformDep, cursor: ReadCursor, as_of: AsOf = None
) -> dict[str, Any]:
    return _subject(platform, cursor, "lead", lead_id, as_of)


@router.get(
    "/deals/{deal_id}/status-time",
    response_model=SubjectStatusTime,
    responses={404: {"description": "Unknown deal, or not yet created at as_of"}},
    description=SUBJECT_DOC.format(kind="deal", stage="stage"),
)
def deal_status_time(
    deal_id: UUID, platform: PlatformDep, cursor: ReadCursor, as_of: AsOf = None
) -> dict[str, Any]:
    return _subject(platform, cursor, "deal", deal_id, as_of)


@router.get(
    "/projects/{project_id}/status-time",
    response_model=SubjectStatusTime,
    responses={404: {"description": "Unknown project, or not yet created at as_of"}},
    description=SUBJECT_DOC.format(kind="project", stage="status"),
)
def project_status_time(
    project_id: UUID, platform: PlatformDep, cursor: ReadCursor, as_of: AsOf = None
) -> dict[str, Any]:
    return _subject(platform, cursor, "project", project_id, as_of)


# --- time limits set by hand ------------------------------------------------------------

Headers = CommandHeadersDep
KINDS: tuple[Kind, ...] = ("lead", "deal", "project")


@router.post(
    "/status-limits",
    response_model=StatusLimitAccepted,
    responses={
        403: {"description": "Only administrators and top management set limits"},
        409: {"description": "The stage has this limit already (rule limit_unchanged)"},
        422: {"description": "Unknown kind, funnel or stage, or a bad limit; names the field"},
    },
)
def set_limit(
    body: SetStatusLimitRequest, headers: Headers, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Set, change or remove (``limit_hours`` null) the time limit of a lead or deal
    stage (with its funnel) or of a project status, in force from now on: the status-time
    reports measure each visit against the limit in force at each instant, and ``as_of``
    reports use the limits of then. The configured ``time_limit_hours`` is the starting
    value. Administrators and top management only."""
    request = body.model_dump(mode="json")
    scope = f"status-limit:{body.kind}:{body.funnel or ''}:{body.stage}"
    ctx = headers.context(platform, scope, request)
    command = status_limits.SetStatusLimit(
        body.kind, body.funnel, body.stage, body.limit_hours, body.reason
    )
    result = set_status_limit(platform.store, platform.funnels, platform.rules, command, ctx)
    mark_accepted(result, response)
    return {
        "kind": body.kind,
        "funnel": body.funnel,
        "stage": body.stage,
        "version": result.version,
        "position": result.position,
    }


def _change_out(kind: Kind, change: status_time.LimitChange) -> dict[str, Any]:
    return {"kind": kind, **vars(change)}


@router.get("/status-limits", response_model=StatusLimits)
def list_limits(
    platform: PlatformDep,
    cursor: ReadCursor,
    kind: Annotated[Kind | None, Query(description="lead, deal or project (default: all)")] = None,
    as_of: AsOf = None,
) -> dict[str, Any]:
    """Every stage and status with its time limit in force now (or at ``as_of``): the
    configured one, or the one set by hand and who set it when; and every limit set by
    hand up to then, the latest first."""
    moment = _as_of(platform, as_of)
    items: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for each in (kind,) if kind is not None else KINDS:
        for limit in _limits(platform, cursor, each, moment):
            last = limit.last_change
            items.append(
                {
                    "kind": each,
                    "funnel": limit.funnel,
                    "stage": limit.stage,
                    "configured_hours": limit.configured_hours,
                    "limit_hours": limit.limit_hours,
                    "set_by_hand": last is not None,
                    "set_at": None if last is None else last.set_at,
                    "set_by": None if last is None else last.set_by,
                    "set_by_role": None if last is None else last.set_by_role,
                    "reason": None if last is None else last.reason,
                }
            )
            changes += [_change_out(each, c) for c in limit.changes]
    changes.sort(key=lambda c: c["set_at"], reverse=True)
    return {"as_of": moment, "items": items, "changes": changes}
