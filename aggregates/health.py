"""Portfolio health computed by rules: a pure function of a project's events (folded into
its state and its billing) and the instant it is asked for.

Each rule that holds gives a level and a reason; the worst level wins, ``good`` when none
holds. A PM's manual health overrides the computed one until cleared (see
:class:`aggregates.project.Project.health`); both histories are kept as events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from aggregates.billing import Billing
from aggregates.project import Project
from aggregates.rules import HEALTH_LEVELS, ProjectRules, ProjectStatus


def _worst(levels: list[str]) -> str:
    return max(levels, key=HEALTH_LEVELS.index, default="good")


def _today(now: datetime) -> date:
    return now.astimezone(UTC).date()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _day_after(day: date) -> datetime | None:
    """The start of the day after ``day`` (None at the end of the calendar)."""
    return None if day == date.max else _start_of(day + timedelta(days=1))


def _status_limit(
    status: ProjectStatus | None, limits: Mapping[str, float | None] | None
) -> float | None:
    """The status's limit in force: set by hand (``limits``), else configured; none for a
    status that stops the clock."""
    if status is None or status.stops_clock:
        return None
    if limits is not None and status.id in limits:
        return limits[status.id]
    return status.time_limit_hours


def compute_health(
    project: Project,
    billing: Billing | None,
    now: datetime,
    rules: ProjectRules,
    limits: Mapping[str, float | None] | None = None,
) -> tuple[str, tuple[str, ...]]:
    """The computed level and the reasons behind it. ``limits``: the time limits in force
    at ``now`` of the statuses whose limit was set by hand (the others' are configured)."""
    health = rules.health
    today = _today(now)
    found: list[tuple[str, str]] = []
    working = project.status != rules.done_status
    if working:
        overdue = [
            t.task_id
            for t in project.tasks
            if t.completed_at is None and t.due is not None and t.due < today
        ]
        if overdue:
            level = (
                "big_difficulties"
                if len(overdue) >= health.overdue_tasks_big
                else "some_difficulties"
                if len(overdue) >= health.overdue_tasks_some
                else "good"
            )
            if level != "good":
                found.append((level, f"{len(overdue)} overdue task(s): {', '.join(overdue)}"))
        status = rules.status(project.status)
        hours = _status_limit(status, limits)
        if (
            status is not None
            and hours is not None
            and now - project.status_entered_at > timedelta(hours=hours)
        ):
            found.append(
                (health.status_over_limit, f"'{status.id}' for longer than its {hours:g} h limit")
            )
        planned = project.planned_hours
        actual = project.actual_hours
        if planned > 0 and actual > planned:
            # the reason names the threshold crossed, not the exact share: it changes (and
            # is recorded) when the project crosses a threshold, not with every entry
            over = float((actual - planned) / planned * 100)
            if over > health.hours_over_plan_percent_big:
                found.append(
                    (
                        "big_difficulties",
                        f"actual hours more than {health.hours_over_plan_percent_big:g} % "
                        "over plan",
                    )
                )
            elif over > health.hours_over_plan_percent_some:
                found.append(
                    (
                        "some_difficulties",
                        f"actual hours more than {health.hours_over_plan_percent_some:g} % "
                        "over plan",
                    )
                )
    if billing is not None:
        late = [i.number for i in billing.invoices if i.overdue(today)]
        if late:
            found.append(
                (health.overdue_unpaid_invoice, f"overdue unpaid invoice(s): {', '.join(late)}")
            )
    found = [(level, reason) for level, reason in found if level != "good"]
    return _worst([level for level, _ in found]), tuple(reason for _, reason in found)


def next_change(
    project: Project,
    billing: Billing | None,
    now: datetime,
    rules: ProjectRules,
    limits: Mapping[str, float | None] | None = None,
) -> datetime | None:
    """The first instant after ``now`` at which the passing of time alone could change the
    computed health (a due date passing, a status reaching its limit in force), if any."""
    candidates: list[datetime | None] = []
    if project.status != rules.done_status:
        for task in project.tasks:
            if task.completed_at is None and task.due is not None:
                candidates.append(_day_after(task.due))
        hours = _status_limit(rules.status(project.status), limits)
        if hours is not None:
            with contextlib.suppress(OverflowError):  # a limit beyond the calendar never passes
                candidates.append(
                    project.status_entered_at + timedelta(hours=hours) + timedelta(microseconds=1)
                )
    if billing is not None:
        for invoice in billing.invoices:
            if invoice.remaining > 0 and invoice.due_date is not None:
                candidates.append(_day_after(invoice.due_date))
    future = [c for c in candidates if c is not None and c > now]
    return min(future, default=None)
