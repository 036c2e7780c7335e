"""Funnels and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from read_api import queries
from read_api.deps import PlatformDep, ReadCursor, as_utc
from read_api.errors import BadRequestValue
from schemas.leads import FunnelOut, FunnelReport

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
        }
        for f in platform.funnels.values()
    ]


@router.get("/reports/funnel", response_model=FunnelReport)
def funnel_report(
    platform: PlatformDep,
    cursor: ReadCursor,
    funnel: Annotated[str, Query(description="Funnel id")],
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Per stage count, amount, reached and conversion; totals, non-quality, new vs repeat."""
    f = platform.funnels.get(funnel)
    if f is None:
        known = ", ".join(sorted(platform.funnels))
        raise BadRequestValue("funnel", f"unknown funnel '{funnel}' (known: {known})")
    created_from, created_to = as_utc(created_from), as_utc(created_to)
    if created_from and created_to and created_from > created_to:
        raise BadRequestValue("from", "must not be after 'to'")
    return queries.funnel_report(cursor, f, created_from, created_to)
