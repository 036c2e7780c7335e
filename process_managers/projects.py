"""Delivery's process managers.

- **Project creation**: a won deal gets exactly one project, carrying its client, amount,
  source lead, funnel, manager and department (the project's id follows from the deal's,
  so delivering the deal's closing again creates nothing). A lead closed won without a
  deal in a funnel that delivers directly (``delivery = "project"``) gets exactly one
  project the same way, carrying the lead's card.
- **Project health**: after every change of a project or its billing, whenever the
  passing of time alone could change it (a due date passes, a status reaches its limit in
  force), and for every project in a status whose limit is set by hand,
  the computed health is evaluated (:func:`aggregates.health.compute_health`) and
  recorded on the project when it changed: its history is the project's events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from aggregates import billing, deal, lead, project, status_limits
from aggregates.funnels import FunnelCatalog
from aggregates.health import compute_health, next_change
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult
from commands.leads import load_lead_records
from commands.projects import (
    create_project_for_deal,
    create_project_for_lead,
    handle_project_command,
    load_billing,
    load_project_records,
)
from commands.status_limits import project_status_limit
from event_store import EventStore, RecordedEvent
from process_managers.runner import Issuer
from process_managers.state import Deadline, DeadlineChanges

HEALTH_CHECK = "project_health_check"


class ProjectCreation:
    name = "project-creation"
    topics = frozenset({"DealClosed", "LeadClosed"})

    def __init__(
        self,
        store: EventStore,
        rules: Rules,
        clock: Callable[[], datetime],
        funnels: FunnelCatalog | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        self.funnels = funnels
        self.issuer = Issuer(self.name, clock)

    def handle(self, recorded: RecordedEvent, changes: DeadlineChanges) -> None:
        event = recorded.event
        if isinstance(event, lead.LeadClosed):
            self.deliver_lead(recorded)
            return
        if not isinstance(event, deal.DealClosed) or event.outcome != "won":
            return
        deal_id = recorded.stream_id
        self.issuer.issue(
            lambda ctx: create_project_for_deal(self.store, self.rules, deal_id, ctx),
            deal_id,
            "project",
        )

    def deliver_lead(self, recorded: RecordedEvent) -> None:
        """A lead closed won, without a deal, in a funnel that delivers directly."""
        funnels = self.funnels
        if funnels is None or getattr(recorded.event, "outcome", None) != "won":
            return
        lead_id = recorded.stream_id
        state = lead.fold([r.event for r in load_lead_records(self.store, lead_id)])
        if (
            state is None
            or state.project_id is not None
            or not lead.delivers_project(state, funnels)
        ):
            return
        self.issuer.issue(
            lambda ctx: create_project_for_lead(self.store, self.rules, funnels, lead_id, ctx),
            lead_id,
            "lead-project",
        )

    def fire(self, deadline: Deadline) -> Deadline | None:  # pragma: no cover - none kept
        return None


STATUS_TOPICS = ("ProjectCreated", "ProjectStatusChanged")
SWEEP_PAGE = 20_000


class ProjectHealth:
    name = "project-health"
    topics = frozenset(
        {t.__name__ for t in project.PROJECT_EVENT_TYPES} - {"ProjectHealthComputed"}
        | {t.__name__ for t in billing.BILLING_EVENT_TYPES}
        | {"StatusLimitSet"}
    )

    def __init__(self, store: EventStore, rules: Rules, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.issuer = Issuer(self.name, clock)

    def handle(self, recorded: RecordedEvent, changes: DeadlineChanges) -> None:
        event = recorded.event
        if isinstance(event, status_limits.StatusLimitSet):
            # a project status's limit changed by hand: every project in it looks again
            if event.kind == "project":
                for project_id in self._in_status(event.stage, recorded.position):
                    self._look_again(project_id, changes)
            return
        project_id = event.project_id if hasattr(event, "project_id") else recorded.stream_id
        self._look_again(project_id, changes)

    def _look_again(self, project_id: UUID, changes: DeadlineChanges) -> None:
        follow_up = self.evaluate(project_id)
        if follow_up is not None:
            changes.schedule.append(follow_up)
        else:
            changes.cancel.append(_key(project_id))

    def _in_status(self, status: str, until: int) -> list[UUID]:
        """The projects in ``status`` at log position ``until``: the log up to there read
        once, a page at a time (a limit is changed by hand, rarely)."""
        topics = pa.array(STATUS_TOPICS, pa.string())
        current: dict[str, str] = {}
        after = 0
        while after < until:
            page = self.store.read_page(after, SWEEP_PAGE)
            if page.num_rows == 0:
                break
            after = int(pc.max(page["position"]).as_py())
            picked = page.filter(pc.is_in(page["topic"], value_set=topics)).to_pydict()
            for position, stream_id, state in sorted(
                zip(picked["position"], picked["stream_id"], picked["state"], strict=True)
            ):
                if position <= until:
                    doc = orjson.loads(state)
                    current[stream_id] = doc.get("to_status") or doc["status"]
        return [UUID(k) for k, v in sorted(current.items()) if v == status]

    def fire(self, deadline: Deadline) -> Deadline | None:
        return self.evaluate(deadline.subject_id)

    def evaluate(self, project_id: UUID) -> Deadline | None:
        """Record the computed health if it changed; the next time to look again."""
        records = load_project_records(self.store, project_id)
        state = project.fold([r.event for r in records])
        if state is None:
            return None
        bills = load_billing(self.store, project_id)
        now = self.clock()
        # the limit in force of its status (set by hand, else configured)
        limits = {state.status: project_status_limit(self.store, self.rules, state.status, now)}
        level, reasons = compute_health(state, bills, now, self.rules.project, limits)
        if (level, reasons) != (state.computed_health, state.computed_reasons):
            command = project.RecordComputedHealth(level, reasons)

            def send(ctx: CommandContext) -> CommandResult:
                return handle_project_command(self.store, self.rules, project_id, command, ctx)

            self.issuer.issue(send, project_id, state.version, level, *reasons)
        moment = next_change(state, bills, now, self.rules.project, limits)
        if moment is None:
            return None
        return Deadline(
            key=_key(project_id), kind=HEALTH_CHECK, subject_id=project_id, due_at=moment
        )


def _key(project_id: UUID) -> str:
    return f"project:{project_id}:health"
