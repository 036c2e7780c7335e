"""Response model of the process map: the directly-follows graph of a funnel's stages (or
the project statuses), the most frequent paths, rework loops and where records wait."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["lead", "deal", "project"]


class ProcessNode(BaseModel):
    """A stage (or status) the records visited, in funnel order."""

    stage: str
    name: str
    step: int | None = Field(description="The stage's step in its funnel; null if unconfigured")
    position: int = Field(description="Left to right: 0 for the first stage visited")
    visits: int
    records: int = Field(description="Records that visited the stage at least once")
    left: int = Field(description="Visits that left the stage (to another or by closing)")
    waiting_now: int = Field(description="Visits still in the stage at as_of")
    starts: int = Field(description="Records whose first stage this is")
    ends: int = Field(description="Records whose path ended here (left it and went nowhere)")
    median_wait_seconds: float | None
    p90_wait_seconds: float | None


class ProcessEdge(BaseModel):
    """A transition between consecutive visits (directly follows)."""

    from_stage: str
    to_stage: str
    count: int = Field(description="Moves from the one stage straight to the other")
    records: int = Field(description="Records that made the move at least once")
    median_seconds: float | None = Field(description="Time from entering one to entering the other")
    p90_seconds: float | None
    rework: bool = Field(description="A move back to an earlier stage of the funnel")


class ProcessVariant(BaseModel):
    """A path: the stages of a record in order."""

    rank: int
    path: str = Field(description="The stages in order, joined by ' → '")
    steps: int
    count: int
    share: float = Field(description="Share of the records taking this path")
    median_seconds: float | None = Field(
        description="From entering the first stage to entering the last"
    )
    p90_seconds: float | None


class ReworkLoop(BaseModel):
    """A move back, counted."""

    from_stage: str
    to_stage: str
    count: int
    records: int


class StageWait(BaseModel):
    """A stage's waiting time, the longest first."""

    stage: str
    name: str
    visits: int
    waiting_now: int
    median_wait_seconds: float | None
    p90_wait_seconds: float | None


class ProcessMap(BaseModel):
    """The process as it really runs, for the records created in the period."""

    kind: Kind
    funnel: str | None
    department: str | None
    as_of: datetime = Field(description="Open visits are measured up to this instant")
    records: int = Field(description="Records created in the period (of the department)")
    variant_count: int = Field(description="Distinct paths among them")
    rework_moves: int
    rework_records: int
    rework_share: float = Field(description="Share of the records that moved back at least once")
    nodes: list[ProcessNode]
    edges: list[ProcessEdge]
    variants: list[ProcessVariant]
    rework: list[ReworkLoop]
    waits: list[StageWait]
