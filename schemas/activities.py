"""Request and response models of the managers' activities («Мои Дела»), their
indicators and the personal weekly plans."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.leads import Strict
from schemas.limits import Code, LongText, Name
from schemas.pipeline import Page

ActivityState = Literal["planned", "overdue", "done", "cancelled"]
"""What an activity is at an instant; the four partition every activity. Overdue: still
planned and its planned end passed."""
ActivityGroup = Literal["calls", "meetings", "demos", "emails"]


# --- commands ---------------------------------------------------------------------------


class ActivityRequest(Strict):
    """Plan an activity, or register one that happened (``done``; always for incoming
    calls and e-mails: they are registered after the fact)."""

    type: Code = Field(description="An activity type's code (see GET /activity-types)")
    owner: Code | None = Field(
        default=None,
        description="Who it is for (default: you). A head may name the people of their "
        "department, top management anyone, a manager only themselves.",
    )
    company_id: Code | None = Field(default=None, description="The client company")
    contact: Name | None = Field(
        default=None, description="The client contact (a person, phone or e-mail)"
    )
    lead_id: UUID | None = None
    deal_id: UUID | None = None
    project_id: UUID | None = None
    planned_at: datetime | None = Field(
        default=None,
        description="When it starts (planned) or started (registered); default: now",
    )
    duration_minutes: int = Field(default=30, description="1 to 1440")
    notes: LongText | None = None
    done: bool = Field(default=False, description="It happened already: register it done")
    result: LongText | None = Field(default=None, description="Only with done")


class ActivityDoneRequest(Strict):
    result: LongText = Field(description="What came of it")


class ActivityCancelRequest(Strict):
    reason: LongText | None = None


class ActivityRescheduleRequest(Strict):
    planned_at: datetime
    duration_minutes: int | None = Field(default=None, description="Default: unchanged")
    reason: LongText | None = None


class ActivityAccepted(BaseModel):
    activity_id: UUID
    status: Literal["planned", "done", "cancelled"]
    version: int
    position: int


# --- reads ------------------------------------------------------------------------------


class ActivityOut(BaseModel):
    activity_id: UUID
    type: str
    group: ActivityGroup
    direction: str | None
    owner: str
    company_id: str | None
    contact: str | None
    lead_id: UUID | None
    deal_id: UUID | None
    project_id: UUID | None
    planned_at: datetime
    duration_minutes: int
    planned_end: datetime
    notes: str | None
    status: Literal["planned", "done", "cancelled"]
    state: ActivityState = Field(description="The status with overdue derived, now (or as_of)")
    result: str | None
    done_at: datetime | None
    cancel_reason: str | None
    registered: bool = Field(description="Registered after the fact (done at once)")
    reschedules: int
    created_at: datetime
    created_by: str
    version: int


class ActivityPage(Page):
    items: list[ActivityOut]


class ActivityDetail(ActivityOut):
    as_of: datetime | None = Field(description="The instant it was read as of (null: now)")


class ActivityTypeOut(BaseModel):
    code: str
    name: str
    group: ActivityGroup
    direction: str | None
    weight: float
    registered_after_the_fact: bool


class ActivityTypes(BaseModel):
    types: list[ActivityTypeOut]
    groups: list[ActivityGroup]
    coefficient_cap: float
    no_interaction_days: int


# --- indicators -------------------------------------------------------------------------


class WeeklyCell(BaseModel):
    all: int = Field(description="Activities of the type that day (cancelled ones excluded)")
    done: int
    overdue: int
    planned: int | None = Field(
        default=None, description="The personal plan's count, when a plan exists"
    )
    link: str = Field(description="The activities list filtered to this cell")


class WeeklyTypeCell(WeeklyCell):
    type: str
    group: ActivityGroup


class WeeklyGroupCell(WeeklyCell):
    group: ActivityGroup


class WeeklyRow(BaseModel):
    day: date
    weekday: int = Field(description="1 (Monday) to 5 (Friday)")
    total: WeeklyCell
    types: list[WeeklyTypeCell] = Field(description="One cell per activity type, in order")
    groups: list[WeeklyGroupCell] = Field(description="The group totals (calls, meetings...)")


class WeeklyReport(BaseModel):
    week: date = Field(description="The week's Monday")
    owners: list[str] = Field(description="Whose activities (the viewer's scope, filtered)")
    types: list[ActivityTypeOut]
    days: list[WeeklyRow]
    totals: WeeklyRow = Field(description="The week per type and group (day: the Monday)")
    has_plan: bool


class CoefficientPart(BaseModel):
    type: str
    group: ActivityGroup
    weight: float
    planned: int = Field(description="The target: the personal plan's count, or activities due")
    done: int
    from_plan: bool = Field(description="The target came from personal plans")


class CoefficientReport(BaseModel):
    period_from: date
    period_to: date
    owners: list[str]
    coefficient: float | None = Field(
        description="min(cap, Σ weight * done / Σ weight * planned); null: nothing planned"
    )
    raw: float | None = Field(description="The ratio before the cap")
    cap: float
    weighted_planned: float
    weighted_done: float
    parts: list[CoefficientPart]


class CallsRow(BaseModel):
    owner: str
    period: date = Field(description="The day, or the week's Monday")
    calls: int
    outgoing: int
    incoming: int


class CallsReport(BaseModel):
    by: Literal["day", "week"]
    period_from: date
    period_to: date
    items: list[CallsRow]
    total: int
    limit: int
    offset: int


class ClientRow(BaseModel):
    company_id: str
    company_name: str | None
    managers: list[str]
    last_done_at: datetime | None
    days_without: int | None = Field(description="Days since the last done activity")
    next_planned_at: datetime | None


class ClientsReport(BaseModel):
    days: int | None = Field(default=None, description="N: no done activity for N days")
    items: list[ClientRow]
    total: int
    limit: int
    offset: int


# --- personal plans ---------------------------------------------------------------------


class PlanDay(Strict):
    day: date
    counts: dict[Code, int] = Field(description="Activity type code → how many planned")


class ActivityPlanRequest(Strict):
    days: list[PlanDay] = Field(max_length=7, description="Days of that week (Monday to Sunday)")
    note: LongText | None = None


class PlanCommentRequest(Strict):
    text: LongText


class ActivityPlanAccepted(BaseModel):
    plan_id: UUID
    version: int
    position: int


class PlanComment(BaseModel):
    author: str
    text: str
    at: datetime


class ActivityPlanOut(BaseModel):
    plan_id: UUID
    manager: str
    week: date
    days: list[PlanDay]
    totals: dict[str, int]
    note: str | None
    comments: list[PlanComment]
    updated_at: datetime | None
    updated_by: str | None
    version: int


class ActivityPlanSummary(BaseModel):
    plan_id: UUID
    manager: str
    week: date
    totals: dict[str, int]
    comments: int
    updated_at: datetime | None
    version: int


class ActivityPlanPage(Page):
    items: list[ActivityPlanSummary]
