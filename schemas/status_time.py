"""Response models of the status-time report: how long leads, deals and projects spent in
each stage or status, against the configured limits, as it was at an instant."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import Strict
from schemas.limits import Code, LongText
from schemas.pipeline import Page

Kind = Literal["lead", "deal", "project"]


class StatusTimeVisit(BaseModel):
    """One visit of a lead or deal to a stage, or of a project to a status."""

    kind: Kind
    subject_id: UUID = Field(description="The lead's, deal's or project's id")
    visit_no: int = Field(description="1 for the first stage or status, then one per move")
    funnel: str | None = Field(description="The lead or deal funnel; null for projects")
    stage: str = Field(description="The stage (leads, deals) or the status (projects)")
    stops_clock: bool = Field(
        description="A project status such as on_hold: its time counts for no status and "
        "against no limit, so all of it is paused_seconds"
    )
    manager: str | None = Field(description="The lead's or deal's manager now")
    pm: str | None = Field(description="The project's PM now")
    entered_at: datetime
    left_at: datetime | None = Field(description="Null while the visit was open at as_of")
    open: bool = Field(description="Still in this stage or status at as_of")
    seconds: float = Field(
        description="Time in the stage or status up to as_of (or until left), paused time left out"
    )
    paused_seconds: float = Field(
        description="Paused time within the visit (a lead's pauses; a project's whole "
        "visit to a status that stops the clock)"
    )
    limit_hours: float | None = Field(description="The configured limit; null: none")
    over_limit: bool = Field(description="seconds exceed the limit")
    over_limit_now: bool = Field(description="Open at as_of and over its limit then")


class StatusTimePage(Page):
    kind: Kind
    as_of: datetime
    items: list[StatusTimeVisit]


class StageTime(BaseModel):
    """The visits to one stage or status; its figures are the sums of those visits."""

    funnel: str | None
    stage: str
    stops_clock: bool
    limit_hours: float | None
    visits: int
    total_seconds: float = Field(description="The sum of the visits' seconds")
    paused_seconds: float = Field(description="The sum of the visits' paused seconds")
    average_seconds: float | None = Field(description="Per visit; null without visits")
    visits_over_limit: int
    current: int = Field(description="Visits open at as_of (subjects in it then)")
    current_over_limit: int = Field(description="Of those, visits over their limit then")


class StatusTimeTotals(BaseModel):
    """The sums over every stage or status of the report."""

    visits: int
    total_seconds: float
    paused_seconds: float
    visits_over_limit: int
    current: int
    current_over_limit: int


class StatusTimeSummary(BaseModel):
    kind: Kind
    as_of: datetime
    stages: list[StageTime] = Field(
        description="Configured stages (or statuses) in order, each even without a visit; "
        "then any no longer configured"
    )
    totals: StatusTimeTotals


class SubjectStatusTime(BaseModel):
    """One lead's, deal's or project's visits, and its time per stage or status."""

    kind: Kind
    subject_id: UUID
    as_of: datetime
    visits: list[StatusTimeVisit] = Field(description="In order of visit")
    stages: list[StageTime] = Field(description="In order of first visit")
    total_seconds: float
    paused_seconds: float


# --- time limits set by hand ------------------------------------------------------------


class SetStatusLimitRequest(Strict):
    """Set, change or remove (``limit_hours`` null) the time limit of a stage or status."""

    kind: Kind
    funnel: Code | None = Field(
        default=None, description="The lead or deal funnel; left out for a project status"
    )
    stage: Code = Field(description="The stage (leads, deals) or the status (projects)")
    limit_hours: float | None = Field(
        description="The limit from now on, in hours (> 0); null removes it (no limit)"
    )
    reason: LongText | None = None


class StatusLimitAccepted(BaseModel):
    kind: Kind
    funnel: str | None
    stage: str
    version: int = Field(description="The stage limit's version: one per change")
    position: int = Field(description="Pass as min_position to read the new limit")


class StatusLimitChangeOut(BaseModel):
    kind: Kind
    funnel: str | None
    stage: str
    limit_hours: float | None = Field(description="In force from set_at on; null: no limit")
    previous_hours: float | None
    set_at: datetime
    set_by: str
    set_by_role: str | None
    reason: str | None


class StatusLimitOut(BaseModel):
    kind: Kind
    funnel: str | None
    stage: str
    configured_hours: float | None = Field(description="The configuration's starting value")
    limit_hours: float | None = Field(description="The limit in force at as_of; null: none")
    set_by_hand: bool = Field(description="Set by hand (else the configured one)")
    set_at: datetime | None
    set_by: str | None
    set_by_role: str | None
    reason: str | None


class StatusLimits(BaseModel):
    as_of: datetime
    items: list[StatusLimitOut] = Field(description="Every stage or status, in configured order")
    changes: list[StatusLimitChangeOut] = Field(
        description="The limits set by hand up to as_of, the latest first"
    )
