"""The estimate hand-off: a deal entering a stage that needs estimates asks the
departments for them, one after the other, and moves on when the last one is ready.

- the deal enters e.g. ``estimate`` (needs ``logistics`` then ``engineering``): a request
  to logistics is opened, carrying the deal's title and description;
- logistics reaches ``approval`` or ``done``: a request to engineering is opened;
- the last one is ready: the deal moves to its ``ready_stage`` with the price (the sum of
  the requests' prices), who estimated it and how long it took;
- a request of the round is rejected: the deal returns to the stage it came from, with
  the department's reason;
- requests nobody needs any more are cancelled: a round's open ones when the deal is moved
  out of the round by hand. (A deal's close cancels its requests itself, in the same
  atomic write; a deal closed before it did has its unended ones cancelled here when one
  of its events is delivered — replaying the log from position 0 reconciles them all,
  with the same deterministic command ids.)

The manager looks at the deal's current state on every event of the deal (its stage
changes and its requests' changes, which the deal records itself), so it acts on what is
true now: delivering an event again, or out of date, finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from aggregates import deal, handoff
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult
from commands.deals import handle_deal_command, load_deal_records
from commands.handoffs import (
    create_handoff,
    handle_handoff_command,
    load_handoff_records,
    request_id_for_round,
)
from event_store import EventStore, RecordedEvent
from process_managers.runner import Issuer
from process_managers.state import Deadline, DeadlineChanges


class EstimateHandoff:
    name = "estimate-handoff"
    topics = frozenset({"DealCreated", "DealStageChanged", "DealHandoffNoted", "DealClosed"})

    def __init__(self, store: EventStore, rules: Rules, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.rules = rules
        self.issuer = Issuer(self.name, clock)

    def handle(self, recorded: RecordedEvent, changes: DeadlineChanges) -> None:
        self.reconcile(recorded.stream_id)

    def fire(self, deadline: Deadline) -> Deadline | None:  # pragma: no cover - none kept
        return None

    def reconcile(self, deal_id: UUID) -> None:
        """Take the deal's estimate round one step further, if it can go further."""
        records = load_deal_records(self.store, deal_id)
        state = deal.fold([r.event for r in records])
        if state is None:
            return
        self._cancel_moot_requests(state)
        if state.status is not deal.DealStatus.OPEN or state.estimate is None:
            return
        estimate = state.estimate
        requests = state.round_requests()
        for department in estimate.needs:
            view = requests.get(department)
            if view is None:
                self._ask(state, estimate.round, department)
                return
            if view.status == "rejected":
                self._return(state, estimate.round, view.request_id)
                return
            if view.status not in ("ready", "done"):
                return
        self.issuer.issue(
            lambda ctx: handle_deal_command(
                self.store, self.rules, deal_id, deal.CompleteEstimate(estimate.round), ctx
            ),
            deal_id,
            estimate.round,
            "complete",
        )

    def _cancel_moot_requests(self, state: deal.Deal) -> None:
        """Requests nobody needs any more stop taking the departments' time: every open one
        once the deal is closed, and an estimate round's once the deal left that round."""
        current = None if state.estimate is None else state.estimate.round
        if state.status is not deal.DealStatus.OPEN:
            reason = deal.requests_closed_reason(state.status.value)
            for view in state.open_requests():
                self._cancel(view.request_id, reason)
            return
        for view in state.handoffs:
            if view.status not in ("open", "in_work"):
                continue
            if view.round is not None and view.round != current:
                reason = "the deal left the stage that asked for this estimate"
            else:
                continue
            self._cancel(view.request_id, reason)

    def _cancel(self, request_id: UUID, reason: str) -> None:
        command = handoff.CancelHandoff(reason)

        def send(ctx: CommandContext) -> CommandResult:
            return handle_handoff_command(self.store, self.rules, request_id, command, ctx)

        self.issuer.issue(send, request_id, "cancel")

    def _ask(self, state: deal.Deal, round_no: int, department: str) -> None:
        request_id = request_id_for_round(state.deal_id, round_no, department)
        notes = (
            state.title if state.description is None else f"{state.title}\n\n{state.description}"
        )
        command = handoff.CreateHandoff(
            request_id=request_id,
            deal_id=state.deal_id,
            department=department,
            round=round_no,
            notes=notes,
        )

        def send(ctx: CommandContext) -> CommandResult:
            return create_handoff(self.store, self.rules, command, ctx)

        self.issuer.issue(send, state.deal_id, round_no, "ask", department)

    def _return(self, state: deal.Deal, round_no: int, request_id: UUID) -> None:
        request = handoff.fold(
            [r.event for r in load_handoff_records(self.store, request_id)], self.rules
        )
        reason = (request.rejection_reason if request else None) or "no reason given"
        command = deal.ReturnFromEstimate(round_no, request_id, reason)
        self.issuer.issue(
            lambda ctx: handle_deal_command(self.store, self.rules, state.deal_id, command, ctx),
            state.deal_id,
            round_no,
            "return",
        )
