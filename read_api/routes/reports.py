"""Funnels and reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from queries import leads as lead_queries
from read_api.deps import Period, PlatformDep, ReadCursor
from read_api.errors import BadRequestValue
from schemas.leads import FunnelOut, FunnelReport, PausedLeadsReport

router = APIRouter(tags=["funnels and reports"])


@router.get("/funnels", response_model=list[FunnelOut])
def list_funnels(platform: PlatformDep) -> list[dict[str, Any]]:
    """The configured funnels and their ordered stages."""
    return [
        {
            "id": f.id,
            "name": f.name,
            "stages": [
                {"id": s.id, "name": s.name, "step": s.step, "time_limit_hours": s.time_limit_hours}
                for s in f.stages
            ],
            "assessment_required": f.assessment_required,
            "delivery": f.delivery,
        }
        for f in platform.funnels.values()
    ]


@router.get("/reports/funnel", response_model=FunnelReport)
def funnel_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    funnel: Annotated[str, Query(description="Funnel id")],
    period: Annotated[Period, Depends()],
) -> dict[str, Any]:
    """Per stage count, amount, reached and conversion; totals, non-quality, new vs repeat."""
    f = platform.funnels.get(funnel)
    if f is None:
        known = ", ".join(sorted(platform.funnels))
        raise BadRequestValue("funnel", f"unknown funnel '{funnel}' (known: {known})")
    return lead_queries.funnel_report(cursor, f, period.start, period.end)


@router.get("/reports/paused-leads", response_model=PausedLeadsReport)
def paused_leads_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    period: Annotated[Period, Depends()],
    funnel: Annotated[str | None, Query(description="Funnel id")] = None,
    manager: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """Why leads are not being worked: the leads paused now (created in the period), per
    pause reason their count, amount, average and longest paused time, and the leads."""
    if funnel is not None and funnel not in platform.funnels:
        known = ", ".join(sorted(platform.funnels))
        raise BadRequestValue("funnel", f"unknown funnel '{funnel}' (known: {known})")
    filters = lead_queries.LeadFilters(
        funnel=funnel, manager=manager, created_from=period.start, created_to=period.end
    )
    return lead_queries.paused_leads_report(cursor, filters, platform.clock(), limit, offset)
