"""Deadlines: reminders, then escalations, for what waits too long.

- A lead whose ``answer_due`` passes (the day is over, UTC) while it is still in the
  first stage of its funnel gets a reminder for its manager; still unanswered after the
  grace period (rules.toml ``escalation.grace_hours``), an escalation to the manager's
  head. A new answer date replaces the pending reminder.
- A hand-off request not taken within its department's ``take_within_hours`` gets a
  reminder to the department; still not taken after the grace period, an escalation to
  the department's head.
- A planned activity whose planned end passes while it is still planned gets one
  overdue reminder for its owner (rescheduling replaces the pending deadline; done or
  cancelled ones are let be).

Deadlines are stored durably (``process_managers.state``) and fired by the injected
clock. Each reminder and escalation is an event on the lead or request (in its history,
and in ``GET /alerts``); the aggregates' rules let each happen once per due date, and the
commands carry deterministic ids, so a deadline fired again adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from aggregates import activities, handoff, lead
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.activities import handle_activity_command, load_activity_records
from commands.context import CommandContext, CommandResult
from commands.handoffs import handle_handoff_command, load_handoff_records
from commands.leads import handle_lead_command, load_lead_records
from event_store import EventStore, RecordedEvent
from process_managers.runner import Issuer
from process_managers.state import Deadline, DeadlineChanges

LEAD_REMINDER = "lead_answer_reminder"
LEAD_ESCALATION = "lead_answer_escalation"
HANDOFF_REMINDER = "handoff_take_reminder"
HANDOFF_ESCALATION = "handoff_take_escalation"
ACTIVITY_OVERDUE = "activity_overdue"


def answer_deadline(due: date) -> datetime | None:
    """An answer due on a day is late once that day is over (UTC); never for the last day
    of the calendar."""
    if due == date.max:
        return None
    return datetime.combine(due + timedelta(days=1), time.min, UTC)


class Deadlines:
    name = "deadlines"
    topics = frozenset(
        {
            "LeadCreated",
            "LeadCardUpdated",
            "HandoffRequested",
            "ActivityPlanned",
            "ActivityRescheduled",
            "ActivityDone",
            "ActivityCancelled",
        }
    )

    def __init__(
        self,
        store: EventStore,
        funnels: FunnelCatalog,
        rules: Rules,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.funnels = funnels
        self.rules = rules
        self.issuer = Issuer(self.name, clock)
        self.grace = timedelta(hours=rules.grace_hours)

    # --- scheduling ---------------------------------------------------------------------

    def handle(self, recorded: RecordedEvent, changes: DeadlineChanges) -> None:
        event = recorded.event
        subject = recorded.stream_id
        if isinstance(event, lead.LeadCreated) and event.answer_due is not None:
            self._remind(changes, subject, event.answer_due)
        elif isinstance(event, lead.LeadCardUpdated) and "answer_due" in event.changes:
            new = event.changes["answer_due"]["new"]
            self._remind(changes, subject, None if new is None else date.fromisoformat(new))
        elif isinstance(event, handoff.HandoffRequested):
            department = self.rules.departments.get(event.department)
            if department is not None and department.take_within_hours is not None:
                changes.schedule.append(
                    Deadline(
                        key=f"handoff:{subject}:reminder",
                        kind=HANDOFF_REMINDER,
                        subject_id=subject,
                        due_at=event.at + timedelta(hours=department.take_within_hours),
                        data={"department": department.id},
                    )
                )
        elif isinstance(event, (activities.ActivityPlanned, activities.ActivityRescheduled)):
            end = event.planned_at + timedelta(minutes=event.duration_minutes)
            changes.schedule.append(
                Deadline(
                    key=f"activity:{subject}:overdue",
                    kind=ACTIVITY_OVERDUE,
                    subject_id=subject,
                    due_at=end,
                    data={"planned_end": end.isoformat()},
                )
            )
        elif isinstance(event, (activities.ActivityDone, activities.ActivityCancelled)):
            changes.cancel.append(f"activity:{subject}:overdue")

    def _remind(self, changes: DeadlineChanges, lead_id: UUID, due: date | None) -> None:
        """Schedule the lead's answer reminder for ``due`` (replacing an earlier one), or
        cancel it when there is no answer date (or it is the calendar's last day)."""
        key = f"lead:{lead_id}:reminder"
        moment = None if due is None else answer_deadline(due)
        if due is None or moment is None:
            changes.cancel.append(key)
            return
        changes.schedule.append(
            Deadline(
                key=key,
                kind=LEAD_REMINDER,
                subject_id=lead_id,
                due_at=moment,
                data={"due": due.isoformat()},
            )
        )

    # --- firing -------------------------------------------------------------------------

    def fire(self, deadline: Deadline) -> Deadline | None:
        if deadline.kind in (LEAD_REMINDER, LEAD_ESCALATION):
            return self._fire_lead(deadline)
        if deadline.kind in (HANDOFF_REMINDER, HANDOFF_ESCALATION):
            return self._fire_handoff(deadline)
        if deadline.kind == ACTIVITY_OVERDUE:
            self._fire_activity(deadline)
        return None

    def _fire_activity(self, deadline: Deadline) -> None:
        """Remind the owner once of an activity still planned past its planned end (the
        aggregate refuses it for one done, cancelled, rescheduled or reminded already)."""
        activity_id = deadline.subject_id
        state = activities.fold([r.event for r in load_activity_records(self.store, activity_id)])
        end = datetime.fromisoformat(deadline.data["planned_end"])
        if state is None or state.status != "planned":
            return
        command = activities.RemindOverdueActivity(end)

        def send(ctx: CommandContext) -> CommandResult:
            return handle_activity_command(self.store, activity_id, command, ctx)

        self.issuer.issue(send, activity_id, deadline.kind, end.isoformat())

    def _fire_lead(self, deadline: Deadline) -> Deadline | None:
        lead_id = deadline.subject_id
        state = lead.fold([r.event for r in load_lead_records(self.store, lead_id)])
        due = date.fromisoformat(deadline.data["due"])
        if state is None:
            return None
        command: lead.LeadCommand
        if deadline.kind == LEAD_REMINDER:
            command = lead.RemindUnansweredLead(due, state.manager)
        else:
            command = lead.EscalateUnansweredLead(due, self.rules.head_of(state.manager))

        def send(ctx: CommandContext) -> CommandResult:
            return handle_lead_command(self.store, self.funnels, lead_id, command, ctx)

        self.issuer.issue(send, lead_id, deadline.kind, due)
        if deadline.kind == LEAD_ESCALATION:
            return None
        after = lead.fold([r.event for r in load_lead_records(self.store, lead_id)])
        if after is None or after.answer_reminded_for != due or after.answer_escalated_for == due:
            return None
        return Deadline(
            key=f"lead:{lead_id}:escalation:{due.isoformat()}",
            kind=LEAD_ESCALATION,
            subject_id=lead_id,
            due_at=deadline.due_at + self.grace,
            data=deadline.data,
        )

    def _fire_handoff(self, deadline: Deadline) -> Deadline | None:
        request_id = deadline.subject_id
        department = self.rules.departments.get(deadline.data.get("department", ""))
        if department is None:
            return None
        command: handoff.HandoffCommand
        if deadline.kind == HANDOFF_REMINDER:
            command = handoff.RemindHandoffNotTaken(department.id)
        else:
            command = handoff.EscalateHandoffNotTaken(department.head)

        def send(ctx: CommandContext) -> CommandResult:
            return handle_handoff_command(self.store, self.rules, request_id, command, ctx)

        self.issuer.issue(send, request_id, deadline.kind)
        if deadline.kind == HANDOFF_ESCALATION:
            return None
        state = handoff.fold(
            [r.event for r in load_handoff_records(self.store, request_id)], self.rules
        )
        if state is None or state.assignee is not None or not state.reminded or state.escalated:
            return None
        if state.status(department) in ("done", "rejected"):
            return None
        return Deadline(
            key=f"handoff:{request_id}:escalation",
            kind=HANDOFF_ESCALATION,
            subject_id=request_id,
            due_at=deadline.due_at + self.grace,
            data=deadline.data,
        )
