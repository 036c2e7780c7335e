"""The process managers: crash and restart, redelivery, deadlines by a fake clock, both
back-ends, inside the server and on their own (``leadledger process``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from aggregates import deal, handoff, lead
from commands.context import CommandContext
from commands.deals import convert_lead, handle_deal_command, load_deal
from commands.handoffs import handle_handoff_command, load_handoff
from commands.leads import create_lead, handle_lead_command, lead_id_for
from commands.projects import load_billing, load_project, project_id_for_deal
from event_store import EventStore, NewEvent, open_event_store
from event_store.recorders import NotificationRow
from leadledger.settings import Settings
from leadledger.wiring import (
    Platform,
    build_command_side,
    event_codec,
    process_managers,
)
from process_managers.deadlines import Deadlines
from process_managers.estimate_handoff import EstimateHandoff
from process_managers.runner import ProcessRunner
from process_managers.state import DeadlineChanges, ProcessStore
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory, bearer

BIN = Path(sys.executable).parent / "leadledger"
SELLER = "anna.sales"


class Seller:
    """Sends the commands a sales team would, through the handlers, at the fake clock."""

    def __init__(self, store: EventStore, clock: FakeClock) -> None:
        side = build_command_side(Settings(), clock=clock)
        side.close()
        self.store, self.funnels, self.rules, self.clock = store, side.funnels, side.rules, clock

    def ctx(self, actor: str = SELLER) -> CommandContext:
        return CommandContext.new(actor=actor, clock=self.clock)

    def lead(self, answer_due: date | None = None, qualified: bool = False) -> UUID:
        ctx = self.ctx()
        lead_id = lead_id_for(ctx.command_id)
        command = lead.CreateLead(
            lead_id=lead_id,
            funnel="out_of_court",
            title="Tractor to the farm",
            company_name="Agro Holding",
            source="phone",
            manager=SELLER,
            answer_due=answer_due,
        )
        create_lead(self.store, self.funnels, command, ctx)
        if qualified:
            for step in (
                lead.RecordLeadAssessment("eve", "fine", Decimal(1)),
                lead.QualifyLead(True),
            ):
                handle_lead_command(self.store, self.funnels, lead_id, step, self.ctx())
        return lead_id

    def deal(self, funnel: str = "transport") -> UUID:
        lead_id = self.lead(qualified=True)
        result = convert_lead(self.store, self.funnels, self.rules, lead_id, funnel, self.ctx())
        return result.stream_id

    def to_estimate(self, deal_id: UUID) -> None:
        command = deal.MoveDealToStage("estimate")
        handle_deal_command(self.store, self.rules, deal_id, command, self.ctx())

    def work(self, request_id: UUID, *commands: handoff.HandoffCommand) -> None:
        for command in commands:
            handle_handoff_command(self.store, self.rules, request_id, command, self.ctx("lev"))

    def estimate_and_approve(self, request_id: UUID) -> None:
        self.work(
            request_id,
            handoff.TakeHandoff("lev"),
            handoff.RecordLogisticsEstimate(
                service="haulage", cost=Decimal("100.00"), lead_time_days=2, own_equipment=True
            ),
            handoff.MoveHandoffToStage("approval"),
        )


def runner(store: EventStore, seller: Seller, clock: FakeClock) -> ProcessRunner:
    managers = process_managers(store, seller.funnels, seller.rules, clock)
    return ProcessRunner(store, managers, clock, page_size=7)


def streams(store: EventStore) -> dict[str, list[str]]:
    """Every stream's event types, in order: what a run of the managers produced."""
    by_stream: dict[str, list[str]] = {}
    for _, stream_id, _, topic, _ in store.read_rows(0, 1_000_000):
        by_stream.setdefault(stream_id, []).append(topic)
    return by_stream


@pytest.fixture
def seller(store: EventStore, clock: FakeClock) -> Seller:
    return Seller(store, clock)


class InjectedCrash(Exception):
    pass


class CrashingEstimateHandoff(EstimateHandoff):
    """Dies after reacting to its n-th event, before its position is stored."""

    def __init__(self, *args: Any, after: int) -> None:
        super().__init__(*args)
        self.left = after

    def handle(self, recorded: Any, changes: DeadlineChanges) -> None:
        super().handle(recorded, changes)
        self.left -= 1
        if self.left == 0:
            raise InjectedCrash


@pytest.mark.parametrize("crash_after", [1, 5, 9])
def test_a_crash_mid_way_then_a_restart_creates_nothing_twice_and_misses_nothing(
    store: EventStore, seller: Seller, clock: FakeClock, crash_after: int
) -> None:
    deals = [seller.deal() for _ in range(6)]
    for deal_id in deals:
        seller.to_estimate(deal_id)
    crashing = CrashingEstimateHandoff(store, seller.rules, clock, after=crash_after)
    with pytest.raises(InjectedCrash):
        ProcessRunner(store, [crashing], clock, page_size=50).run_once()
    runner(store, seller, clock).run_once()  # restarted: a fresh runner, stored state only

    requests = []
    for deal_id in deals:
        state, _ = load_deal(store, deal_id)
        assert state.stage == "estimate"
        assert [h.department for h in state.handoffs] == ["logistics"]
        requests.append(state.handoffs[0].request_id)
    topics = Counter(topic for types in streams(store).values() for topic in types)
    assert topics["HandoffRequested"] == len(deals)

    for request_id in requests:
        seller.estimate_and_approve(request_id)
    crashing = CrashingEstimateHandoff(store, seller.rules, clock, after=crash_after)
    crashing_runner = ProcessRunner(store, [crashing], clock, page_size=50)
    with pytest.raises(InjectedCrash):
        crashing_runner.run_once()
    runner(store, seller, clock).run_once()
    for deal_id in deals:
        state, records = load_deal(store, deal_id)
        assert state.stage == "estimate_ready"
        assert state.estimate_result is not None
        assert state.estimate_result.price == Decimal("100.00")
        assert sum(isinstance(r.event, deal.DealEstimateReady) for r in records) == 1


class TwiceDelivered:
    """An event store whose log delivers every event twice in a row."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read_rows(self, after: int, limit: int) -> list[NotificationRow]:
        doubled: list[NotificationRow] = []
        for row in self._store.read_rows(after, limit):
            doubled += [row, row]
        return doubled


def test_redelivering_every_event_twice_changes_nothing(
    store: EventStore, seller: Seller, clock: FakeClock
) -> None:
    deals = [seller.deal(funnel) for funnel in ("transport", "turnkey", "transport")]
    for deal_id in deals:
        seller.to_estimate(deal_id)
    twice: Any = TwiceDelivered(store)
    managers = process_managers(twice, seller.funnels, seller.rules, clock)
    ProcessRunner(twice, managers, clock, page_size=5).run_once()
    after_first = streams(store)
    for deal_id in deals:
        state, _ = load_deal(store, deal_id)
        seller.estimate_and_approve(state.handoffs[0].request_id)
    ProcessRunner(twice, managers, clock, page_size=5).run_once()
    settled = streams(store)
    assert len(settled) > len(after_first)

    # every position forgotten: the whole log delivered again, twice over
    positions = ProcessStore(store)
    for manager in managers:
        positions.advance(manager.name, 0, DeadlineChanges())
    last = store.last_position()
    ProcessRunner(twice, managers, clock, page_size=3).run_once()
    assert store.last_position() == last
    assert streams(store) == settled
    stages = [load_deal(store, d)[0].stage for d in deals]
    assert stages == [
        "estimate_ready",
        "estimate",
        "estimate_ready",
    ]  # turnkey waits for engineering


def _alerts(store: EventStore, stream_id: UUID) -> list[tuple[str, str, datetime]]:
    return [
        (r.event.type, r.event.recipient, r.event.at)  # type: ignore[attr-defined]
        for r in store.load(stream_id)
        if r.event.type.endswith(("ReminderSent", "Escalated"))
    ]


def test_an_unanswered_lead_is_reminded_then_escalated_exactly_once_each(
    store: EventStore, seller: Seller, clock: FakeClock
) -> None:
    due = date(2026, 1, 7)
    late = seller.lead(answer_due=due)
    answered = seller.lead(answer_due=due)
    handle_lead_command(
        store, seller.funnels, answered, lead.MoveLeadToStage("assessment"), seller.ctx()
    )
    moved = seller.lead(answer_due=due)
    changes = {"answer_due": date(2026, 1, 9)}
    handle_lead_command(store, seller.funnels, moved, lead.UpdateLeadCard(changes), seller.ctx())
    processes = runner(store, seller, clock)

    clock.now = datetime(2026, 1, 7, 23, 59, tzinfo=UTC)
    processes.run_once()
    assert _alerts(store, late) == []
    clock.now = datetime(2026, 1, 8, 0, 0, tzinfo=UTC)
    for _ in range(3):
        processes.run_once()
    reminder = ("LeadAnswerReminderSent", SELLER, datetime(2026, 1, 8, tzinfo=UTC))
    assert _alerts(store, late) == [reminder]
    clock.advance(hours=23, minutes=59)
    processes.run_once()
    assert _alerts(store, late) == [reminder]
    clock.advance(minutes=1)
    runner(store, seller, clock).run_once()  # a restart on the way changes nothing
    escalation = ("LeadAnswerEscalated", "head.of.sales", datetime(2026, 1, 9, tzinfo=UTC))
    assert _alerts(store, late) == [reminder, escalation]
    clock.advance(days=30)
    processes.run_once()
    assert _alerts(store, late) == [reminder, escalation]
    assert _alerts(store, answered) == []
    # the moved answer date (Jan 9) was not due on Jan 9; by the clock's jump to Feb 8 both
    # its reminder and its escalation were overdue: both fire then, once each
    assert _alerts(store, moved) == [
        ("LeadAnswerReminderSent", SELLER, datetime(2026, 2, 8, tzinfo=UTC)),
        ("LeadAnswerEscalated", "head.of.sales", datetime(2026, 2, 8, tzinfo=UTC)),
    ]
    assert processes.state.pending("deadlines") == []


def test_a_request_not_taken_in_time_reminds_its_department_then_its_head(
    store: EventStore, seller: Seller, clock: FakeClock
) -> None:
    waiting, taken = seller.deal(), seller.deal()
    for deal_id in (waiting, taken):
        seller.to_estimate(deal_id)
    processes = runner(store, seller, clock)
    processes.run_once()
    waiting_request = load_deal(store, waiting)[0].handoffs[0].request_id
    taken_request = load_deal(store, taken)[0].handoffs[0].request_id
    seller.work(taken_request, handoff.TakeHandoff("lev"))
    opened = clock.now

    clock.advance(hours=3, minutes=59)
    processes.run_once()
    assert _alerts(store, waiting_request) == []
    clock.advance(minutes=1)
    processes.run_once()
    processes.run_once()
    assert _alerts(store, waiting_request) == [
        ("HandoffReminderSent", "logistics", opened + timedelta(hours=4))
    ]
    clock.advance(hours=24)
    processes.run_once()
    assert [a[:2] for a in _alerts(store, waiting_request)] == [
        ("HandoffReminderSent", "logistics"),
        ("HandoffEscalated", "logistics.head"),
    ]
    assert _alerts(store, taken_request) == []
    request, _ = load_handoff(store, seller.rules, waiting_request)
    assert (request.reminded, request.escalated) == (True, True)
    clock.advance(days=5)
    processes.run_once()
    assert len(_alerts(store, waiting_request)) == 2


def test_the_process_managers_run_inside_the_server(
    make_platform: PlatformFactory,
) -> None:
    platform: Platform = make_platform(process_poll_seconds=0.05)
    seller = Seller(platform.store, platform.clock)  # type: ignore[arg-type]
    deal_id = seller.deal()
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as api:
        moved = api.post(
            f"/deals/{deal_id}/stage", json={"stage": "estimate"}, headers=bearer(SELLER)
        )
        assert moved.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            handoffs = api.get(f"/deals/{deal_id}").json()["handoffs"]
            if handoffs:
                break
            time.sleep(0.02)
        assert [h["department"] for h in handoffs] == ["logistics"]


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    env["LEADLEDGER_EVENT_STORE_URL"] = url
    env["LEADLEDGER_DUCKDB_PATH"] = str(tmp_path / "unused.duckdb")
    env["LEADLEDGER_PROCESS_POLL_SECONDS"] = "0.02"
    return env


def test_leadledger_process_killed_mid_way_and_restarted_creates_each_request_once(
    store_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    store = open_event_store(store_url, event_codec())
    try:
        seller = Seller(store, clock)
        deals = [seller.deal() for _ in range(60)]
        for deal_id in deals:
            seller.to_estimate(deal_id)
        proc = subprocess.Popen(
            [str(BIN), "process"],
            env=_env(store_url, tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                made = Counter(t for t in _topics(store))["HandoffRequested"]
                if made >= 5:
                    break
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert made >= 5
        done = subprocess.run(
            [str(BIN), "process", "--once"],
            env=_env(store_url, tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "process managers read" in done.stdout
        assert Counter(_topics(store))["HandoffRequested"] == len(deals)
        for deal_id in deals:
            state, _ = load_deal(store, deal_id)
            assert len(state.handoffs) == 1
    finally:
        store.close()


def _topics(store: EventStore) -> Sequence[str]:
    return [row[3] for row in store.read_rows(0, 1_000_000)]


def test_deadlines_survive_a_restart(store: EventStore, seller: Seller, clock: FakeClock) -> None:
    lead_id = seller.lead(answer_due=date(2026, 1, 5))
    first = runner(store, seller, clock)
    first.run_once()
    pending = first.state.pending(Deadlines.name)
    assert [(d.kind, d.subject_id, d.due_at) for d in pending] == [
        ("lead_answer_reminder", lead_id, datetime(2026, 1, 6, tzinfo=UTC))
    ]
    clock.advance(days=1)
    runner(store, seller, clock).run_once()  # another process, the same stored deadlines
    assert [a[0] for a in _alerts(store, lead_id)] == ["LeadAnswerReminderSent"]


def test_health_shows_where_each_process_manager_is(make_platform: PlatformFactory) -> None:
    platform: Platform = make_platform(process_managers=False)
    seller = Seller(platform.store, platform.clock)  # type: ignore[arg-type]
    seller.deal()
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as api:
        before = api.get("/health").json()["process_managers"]
        assert before == {
            "estimate-handoff": 0,
            "lead-conversion": 0,
            "deadlines": 0,
            "project-creation": 0,
            "project-health": 0,
        }
        platform.processes.run_once()
        after = api.get("/health").json()["process_managers"]
        assert set(after.values()) == {platform.store.last_position()}


def test_an_answer_date_at_the_end_of_the_calendar_never_fires_nor_breaks_the_managers(
    store: EventStore, seller: Seller, clock: FakeClock
) -> None:
    # no command records such a date any more (dates are bounded to what the business
    # can mean); a card change of before the bound is still in the store and must not
    # break the managers
    lead_id = seller.lead()
    legacy = lead.LeadCardUpdated(
        **seller.ctx().meta.event_fields(),
        changes={"answer_due": {"old": None, "new": date.max.isoformat()}},
    )
    store.append([NewEvent(lead_id, 2, legacy)])
    processes = runner(store, seller, clock)
    processes.run_once()
    assert processes.state.pending(Deadlines.name) == []
    changes = {"answer_due": date(2026, 1, 5)}
    handle_lead_command(store, seller.funnels, lead_id, lead.UpdateLeadCard(changes), seller.ctx())
    clock.advance(days=1)
    processes.run_once()
    assert [a[0] for a in _alerts(store, lead_id)] == ["LeadAnswerReminderSent"]


def test_a_won_deals_project_carries_its_invoice_once_however_often_delivered(
    store: EventStore, seller: Seller, clock: FakeClock
) -> None:
    deal_id = seller.deal("upsell")
    for command in (
        deal.RecordProposal((deal.ServiceLine("transport", Decimal("17500.25")),)),
        deal.RecordContract("C-1", date(2026, 1, 6)),
        deal.IssueInvoice("S-1", Decimal("17500.25"), "main", prepayment=True),
        deal.DecideInvoiceApproval("S-1", True),  # a prepayment counts once approved
        deal.CloseDeal("won"),
    ):
        actor = (
            seller.rules.head_of(SELLER)
            if isinstance(command, deal.DecideInvoiceApproval)
            else SELLER
        )
        handle_deal_command(store, seller.rules, deal_id, command, seller.ctx(actor))
    twice: Any = TwiceDelivered(store)
    managers = process_managers(twice, seller.funnels, seller.rules, clock)
    ProcessRunner(twice, managers, clock, page_size=3).run_once()
    settled = streams(store)
    # every position forgotten: the whole log delivered again, twice over
    positions = ProcessStore(store)
    for manager in managers:
        positions.advance(manager.name, 0, DeadlineChanges())
    ProcessRunner(twice, managers, clock, page_size=2).run_once()
    assert streams(store) == settled
    kinds = Counter(topic for topics in settled.values() for topic in topics)
    assert (
        kinds["ProjectCreated"],
        kinds["DealProjectStarted"],
        kinds["ProjectInvoiceIssued"],
    ) == (1, 1, 1)

    project_id = project_id_for_deal(deal_id)
    state, _ = load_deal(store, deal_id)
    assert state.project_id == project_id
    made = load_project(store, project_id)
    assert (made.deal_id, made.lead_id) == (deal_id, state.lead_id)
    bills = load_billing(store, project_id)
    assert bills is not None
    assert (bills.invoiced, bills.paid, bills.remaining, bills.status) == (
        Decimal("17500.25"),
        Decimal("0.00"),
        Decimal("17500.25"),
        "not_paid",
    )
    [invoice] = bills.invoices
    assert (invoice.number, invoice.deal_id, invoice.organisation, invoice.prepayment) == (
        "S-1",
        deal_id,
        "main",
        True,
    )
