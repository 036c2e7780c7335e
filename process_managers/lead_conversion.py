"""Lead conversion: a lead qualified as quality in a funnel set to ``auto_convert``
becomes a deal in the funnel's ``deal_funnel`` (funnels.toml).

The deal's id follows from the lead's and the conversion is refused once the lead has
its deal, so delivering the qualification again converts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aggregates import lead
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.deals import convert_lead
from commands.leads import load_lead_records
from event_store import EventStore, RecordedEvent
from process_managers.runner import Issuer
from process_managers.state import Deadline, DeadlineChanges


class LeadConversion:
    name = "lead-conversion"
    topics = frozenset({"LeadQualified"})

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

    def auto_converts(self, funnel_id: str) -> bool:
        funnel = self.funnels.get(funnel_id)
        return funnel is not None and funnel.options.get("auto_convert") is True

    def handle(self, recorded: RecordedEvent, changes: DeadlineChanges) -> None:
        event = recorded.event
        if not isinstance(event, lead.LeadQualified) or not event.quality:
            return
        state = lead.fold([r.event for r in load_lead_records(self.store, recorded.stream_id)])
        if state is None or state.deal_id is not None or not self.auto_converts(state.funnel):
            return
        self.issuer.issue(
            lambda ctx: convert_lead(
                self.store, self.funnels, self.rules, recorded.stream_id, None, ctx
            ),
            recorded.stream_id,
            "convert",
        )

    def fire(self, deadline: Deadline) -> Deadline | None:  # pragma: no cover - none kept
        return None
