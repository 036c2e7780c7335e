"""The process as it really runs: the process map of a funnel, and the process log for
process-mining tools (OCEL 2.0 and XES), streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from aggregates.users import Principal
from leadledger.wiring import Platform
from queries import process_log, process_map
from queries.process_map import Kind, ProcessMapFilters, StageInfo
from read_api.access import current_user, read_models
from read_api.deps import Period, PlatformDep, ReadCursor, read_position
from read_api.errors import BadRequestValue
from schemas.process_map import ProcessMap

router = APIRouter(tags=["process map"])

KindQuery = Annotated[Kind, Query(description="What to map: lead, deal or project")]


def stages_of(platform: Platform, kind: Kind, funnel: str | None) -> list[StageInfo]:
    """The stages of the funnel (the kind's first when none is named, or the project
    statuses) in order; 422 for a bad funnel."""
    if kind == "project":
        if funnel is not None:
            raise BadRequestValue("funnel", "projects have no funnel: leave it out")
        return [
            StageInfo(s.id, s.name, i) for i, s in enumerate(platform.rules.project.statuses, 1)
        ]
    catalog = platform.funnels if kind == "lead" else platform.rules.deal_funnels
    if funnel is None:
        funnel = next(iter(catalog), "")  # the first funnel of the kind
    chosen = catalog.get(funnel)
    if chosen is None:
        known = ", ".join(sorted(catalog))
        raise BadRequestValue("funnel", f"unknown {kind} funnel '{funnel}' (known: {known})")
    return [StageInfo(s.id, s.name, s.step) for s in chosen.stages]


@router.get("/reports/process-map", response_model=ProcessMap)
def process_map_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    kind: KindQuery = "lead",
    funnel: Annotated[
        str | None, Query(description="Lead or deal funnel id (default: the kind's first)")
    ] = None,
    department: Annotated[
        str | None,
        Query(description="The responsible manager's department (a project's own)"),
    ] = None,
    variants: Annotated[int, Query(ge=1, le=500, description="Most frequent paths to list")] = 10,
) -> dict[str, Any]:
    """The directly-follows graph of the stages with each transition's count and median
    and p90 time, the most frequent paths, the moves back and where records wait, for the
    records created in the period (of the department), over the viewer's scope.

    A period longer than 45 days (a quarter, a year, or without a start) reads its whole
    months from monthly histograms of the times (log-spaced buckets): its medians and p90
    are then within 2 % of the exact times; the counts, paths and moves back are exact.
    A period of up to 45 days (a month) is exact."""
    stages = stages_of(platform, kind, funnel)
    if kind != "project" and funnel is None:
        catalog = platform.funnels if kind == "lead" else platform.rules.deal_funnels
        funnel = next(iter(catalog), None)
    if department is not None and not (
        department in platform.rules.departments
        or process_map.department_exists(cursor, department)
    ):
        raise BadRequestValue("department", f"unknown department '{department}'")
    filters = ProcessMapFilters(
        kind=kind,
        funnel=funnel,
        as_of=platform.clock(),
        start=period.start,
        end=period.end,
        department=department,
        variants=variants,
    )
    return process_map.process_map(cursor, filters, stages)


def _streamed(
    platform: Platform, principal: Principal, chunks: Any, *args: Any
) -> Iterator[bytes | str]:
    """The chunks, produced on a cursor of the viewer's own opened when streaming starts."""
    with read_models(platform, principal) as cursor:
        yield from chunks(cursor, *args)


@router.get(
    "/exports/process-log.ocel.json",
    response_class=StreamingResponse,
    dependencies=[Depends(read_position)],
)
def process_log_ocel(
    platform: PlatformDep, principal: Annotated[Principal, Depends(current_user)]
) -> StreamingResponse:
    """The process log as OCEL 2.0 JSON: leads, deals, hand-off requests and projects, and
    the events that touch one or several of them, without sensitive fields; streamed."""
    return StreamingResponse(
        _streamed(platform, principal, process_log.ocel_json),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="process-log.ocel.json"'},
    )


@router.get(
    "/exports/process-log.xes",
    response_class=StreamingResponse,
    dependencies=[Depends(read_position)],
)
def process_log_xes(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(current_user)],
    kind: KindQuery = "lead",
    funnel: Annotated[str | None, Query(description="Only this lead or deal funnel")] = None,
) -> StreamingResponse:
    """The process log of one record kind as XES: a trace per record, an event per visit
    to a stage (or status); streamed."""
    if funnel is not None:
        stages_of(platform, kind, funnel)
    return StreamingResponse(
        _streamed(platform, principal, process_log.xes, kind, funnel),
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="process-log-{kind}.xes"'},
    )
