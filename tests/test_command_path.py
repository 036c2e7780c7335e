"""The command path's shortcuts keep every answer the long way gives (issue 17).

- ``EventStore.load`` keeps the decoded events of recent streams and reads only the rows
  after them: another process's append is seen at once, and a log rewritten under it
  (its last known event gone) is read whole again; on both back-ends.
- The projector coalesces appends while busy, yet a read-your-writes waiter is served
  within milliseconds, and an idle projector reacts within milliseconds too.
- Process managers do not store a position for a page they ignore, yet report it and
  never read that page again in the same process; a waiter learns when they have
  handled a position and where their reactions are, at once even while they are busy.
- A lead command over HTTP costs the thread pool one hand-off (its work, from context to
  append): its dependencies, its endpoint and its response run on the event loop.
- A lead read with ``min_position`` before the read models reach it is answered from
  its stream, exactly as the read model answers later (random histories), and only when
  the lead, as its stream has it, is the scoped viewer's.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi import routing as fastapi_routing
from fastapi.dependencies import utils as fastapi_dependencies
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from aggregates.base import CommandMeta
from aggregates.lead import Lead, LeadCreated, LeadImported, LeadPaused, LeadResumed
from aggregates.lead import evolve as lead_evolve
from aggregates.lead import fold as lead_fold
from bench.benchlib import LeadHistory
from event_store import ConcurrencyError, EventStore, NewEvent, open_event_store
from leadledger.wiring import Platform, event_codec
from process_managers import runner as runner_module
from process_managers.runner import ProcessRunner
from process_managers.state import Deadline, DeadlineChanges
from read_api.app import create_app
from read_api.routes import leads as lead_routes
from tests.conftest import ACTOR, PlatformFactory, bearer, new_lead_body
from tests.test_event_store import T0, _created, _paused, _resumed

ROOT = Path(__file__).resolve().parent.parent


def _pause_resume(store: EventStore, lead_id: UUID, version: int, n: int) -> int:
    """Append n pause/resume events after ``version``; the new version."""
    for _ in range(n):
        at = T0 + timedelta(minutes=version)
        event = (
            _paused(lead_id, version + 1, at) if version % 2 else _resumed(lead_id, version + 1, at)
        )
        store.append([event])
        version += 1
    return version


def test_load_sees_another_process_append(store_url: str, store: EventStore) -> None:
    created = _created()
    lead_id = created.stream_id
    store.append([created])
    assert [r.version for r in store.load(lead_id)] == [1]  # now kept by this store
    script = (
        "import sys; from datetime import timedelta; from uuid import UUID\n"
        "from event_store import open_event_store\n"
        "from leadledger.wiring import event_codec\n"
        "from tests.test_event_store import T0, _paused\n"
        "s = open_event_store(sys.argv[1], event_codec())\n"
        "s.append([_paused(UUID(sys.argv[2]), 2, T0 + timedelta(minutes=1))])\n"
        "s.close()\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, store_url, str(lead_id)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=120,
    )
    loaded = store.load(lead_id)
    assert [(r.version, type(r.event).__name__) for r in loaded] == [
        (1, "LeadCreated"),
        (2, "LeadPaused"),
    ]
    fresh = open_event_store(store_url, event_codec())
    try:
        assert fresh.load(lead_id) == loaded
    finally:
        fresh.close()


def test_load_reads_whole_stream_when_its_last_event_is_gone(
    store_url: str, store: EventStore
) -> None:
    created = _created()
    lead_id = created.stream_id
    store.append([created])
    _pause_resume(store, lead_id, 1, 2)
    assert len(store.load(lead_id)) == 3
    # the log is cut back under the store (a restored dump, a test's DELETE)
    if store_url.startswith("sqlite"):
        import sqlite3

        path = store_url.removeprefix("sqlite:///")
        with sqlite3.connect("/" + path if not path.startswith("/") else path) as db:
            db.execute(
                "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 3",
                (lead_id.hex,),
            )
    else:
        schema = store_url.split("schema=")[1]
        with psycopg.connect(store_url.split("?")[0], autocommit=True) as conn:
            conn.execute(
                SQL("DELETE FROM {} WHERE originator_id = %s AND originator_version = 3").format(
                    Identifier(schema, "stored_events")
                ),
                (lead_id,),
            )
    assert [r.version for r in store.load(lead_id)] == [1, 2]
    other = open_event_store(store_url, event_codec())
    try:
        assert store.load(lead_id) == other.load(lead_id)
    finally:
        other.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=6))
def test_two_stores_always_load_what_the_log_holds(
    tmp_path: Path, steps: list[tuple[bool, int]]
) -> None:
    """Property: whichever of two stores appends and in what order, each one's load of
    the stream equals a load by a store that never kept anything."""
    url = f"sqlite:///{tmp_path}/prop-{uuid4().hex}.sqlite"
    a, b = open_event_store(url, event_codec()), open_event_store(url, event_codec())
    try:
        created = _created()
        lead_id = created.stream_id
        a.append([created])
        version = 1
        for use_a, n in steps:
            writer = a if use_a else b
            writer.load(lead_id)
            version = _pause_resume(writer, lead_id, version, n)
            reference = open_event_store(url, event_codec())
            try:
                expected = reference.load(lead_id)
            finally:
                reference.close()
            assert a.load(lead_id) == expected
            assert b.load(lead_id) == expected
            assert len(expected) == version
    finally:
        a.close()
        b.close()


def _run_projector(platform: Platform) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    platform.store.on_append(platform.projector.notify)
    thread = threading.Thread(target=platform.projector.run_forever, args=(stop, 30.0), daemon=True)
    thread.start()
    return stop, thread


def test_idle_projector_reacts_within_milliseconds(platform: Platform) -> None:
    stop, thread = _run_projector(platform)
    try:
        time.sleep(0.1)
        [position] = platform.store.append([_created()])
        started = time.monotonic()
        while platform.projector.position < position:
            assert time.monotonic() - started < 2.0
            time.sleep(0.002)
        assert time.monotonic() - started < 0.5
    finally:
        stop.set()
        platform.projector.notify()
        thread.join(10)


def test_busy_projector_serves_a_read_your_writes_waiter_at_once(
    make_platform: PlatformFactory,
) -> None:
    platform = make_platform()
    platform.projector.busy_batch_window = 5.0  # busy: a long coalescing window
    stop, thread = _run_projector(platform)
    try:
        [first] = platform.store.append([_created()])
        assert platform.projector.wait_for(first, 2.0)
        time.sleep(0.05)  # the loop has folded a page: it is "busy" and settles 5 s
        [second] = platform.store.append([_created()])
        started = time.monotonic()
        assert platform.projector.wait_for(second, 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        platform.projector.notify()
        thread.join(10)


class _Watcher:
    """A process manager that handles one topic and counts what it saw."""

    name = "test_watcher"
    topics = frozenset({"LeadPaused"})

    def __init__(self) -> None:
        self.seen: list[int] = []

    def handle(self, recorded: object, changes: DeadlineChanges) -> None:
        self.seen.append(recorded.position)  # type: ignore[attr-defined]

    def fire(self, deadline: Deadline) -> Deadline | None:
        return None


def test_process_manager_skips_storing_ignored_pages(platform: Platform) -> None:
    store = platform.store
    watcher = _Watcher()
    runner = ProcessRunner(store, [watcher], lambda: T0)
    created = _created()
    [p1] = store.append([created])
    runner.run_once()
    assert runner.position(watcher.name) == p1
    assert runner.state.position(watcher.name) == 0  # nothing handled: nothing written
    [p2] = store.append([_paused(created.stream_id, 2, T0 + timedelta(minutes=1))])
    runner.run_once()
    assert watcher.seen == [p2]
    assert runner.state.position(watcher.name) == p2  # a handled page stores its end
    runner.run_once()
    assert watcher.seen == [p2]  # never delivered twice in a process
    # a restart re-reads only ignored events; the handled one is not delivered again
    again = _Watcher()
    assert ProcessRunner(store, [again], lambda: T0).run_once() == 0
    assert again.seen == []


class _Reminder:
    """A process manager that schedules a reminder an hour after each pause, and a
    follow-up an hour after each reminder fires (twice)."""

    name = "test_reminder"
    topics = frozenset({"LeadPaused"})

    def __init__(self) -> None:
        self.fired: list[str] = []

    def handle(self, recorded: Any, changes: DeadlineChanges) -> None:
        at = recorded.event.at + timedelta(hours=1)
        changes.schedule.append(
            Deadline(f"r:{recorded.stream_id}", "remind", recorded.stream_id, at)
        )

    def fire(self, deadline: Deadline) -> Deadline | None:
        self.fired.append(deadline.key)
        if deadline.key.count("+") >= 2:
            return None
        later = deadline.due_at + timedelta(hours=1)
        return Deadline(deadline.key + "+", deadline.kind, deadline.subject_id, later)


def test_a_round_asks_for_due_deadlines_only_when_one_is_due(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positions and soonest deadlines are read once a round for every manager; a
    manager's due deadlines are asked for only when its soonest is due (kept as the
    runner schedules), and fire as before: on time, with their follow-ups."""
    events = store
    now = [T0]
    reminder = _Reminder()
    runner = ProcessRunner(events, [reminder, _Watcher()], lambda: now[0])
    asked: list[str] = []
    original = runner.state.due

    def counted(name: str, at: Any, limit: int = 500) -> list[Deadline]:
        asked.append(name)
        return original(name, at, limit)

    monkeypatch.setattr(runner.state, "due", counted)
    created = _created()
    events.append([created, _paused(created.stream_id, 2, T0)])
    runner.run_once()
    runner.run_once()
    assert asked == []  # scheduled, not due: no query
    assert reminder.fired == []
    now[0] = T0 + timedelta(minutes=61)
    runner.run_once()
    assert reminder.fired == [f"r:{created.stream_id}"]
    now[0] = T0 + timedelta(minutes=121)
    runner.run_once()  # the follow-up, kept by the runner as it scheduled it
    assert reminder.fired == [f"r:{created.stream_id}", f"r:{created.stream_id}+"]
    asked.clear()
    runner.run_once()
    assert asked == []
    assert [d.key for d in runner.state.pending(reminder.name)] == [f"r:{created.stream_id}++"]


class _Pauser:
    """A process manager that pauses every lead it sees created (one reaction an event)."""

    name = "test_pauser"
    topics = frozenset({"LeadCreated"})

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def handle(self, recorded: Any, changes: DeadlineChanges) -> None:
        at = T0 + timedelta(minutes=1)
        self.store.append([_paused(recorded.stream_id, recorded.version + 1, at)])

    def fire(self, deadline: Deadline) -> Deadline | None:
        return None


def test_a_busy_runner_tells_a_waiter_where_its_reactions_are(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's progress waits for every manager to have handled a position, and
    ``appended`` then covers what they appended in reaction; a waiter cuts the busy
    settling short. (The workspace's read-your-writes rests on this.)"""
    monkeypatch.setattr(runner_module, "BUSY_SETTLE_SECONDS", 5.0)
    store = platform.store
    runner = ProcessRunner(store, [_Pauser(store), _Watcher()], lambda: T0)
    store.on_append(runner.notify)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop, 30.0), daemon=True)
    thread.start()

    async def wait(position: int) -> bool:
        return await runner.reached(position, 3.0)

    try:
        [first] = store.append([_created()])
        assert asyncio.run(wait(first))
        assert runner.running
        assert runner.appended == first + 1  # the pause it issued
        time.sleep(0.05)  # the loop found work: it is busy and settles 5 s
        created = _created()
        [second] = store.append([created])
        started = time.monotonic()
        assert asyncio.run(wait(second))
        assert time.monotonic() - started < 1.0
        reaction = runner.appended
        assert reaction > second
        assert [r.position for r in store.load(created.stream_id)] == [second, reaction]
        assert runner.progress.wait_for(reaction, 3.0)  # it handles its own reactions too
    finally:
        stop.set()
        runner.notify()
        thread.join(10)
    assert not runner.running


def test_a_lead_command_costs_one_thread_pool_hand_off(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The routes' dependencies (platform, principal, command headers, the query bound)
    are coroutines, and so are the lead commands' endpoints: a command's only hand-off is
    its work (context, load, decide, append); its response is validated on the event loop
    (FastAPI validates a plain-function endpoint's response in the pool: a second one)."""
    calls: list[str] = []

    def counting(module: Any) -> None:
        original = module.run_in_threadpool

        async def run(func: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(getattr(func, "__qualname__", repr(func)))
            return await original(func, *args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", run)

    counting(fastapi_dependencies)
    counting(fastapi_routing)
    counting(lead_routes)
    created = client.post("/leads", json=new_lead_body(), headers=ACTOR)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/leads/{created.json()['lead_id']}"
    lead_id = created.json()["lead_id"]
    assert calls == ["_create"], calls
    calls.clear()
    moved = client.post(
        f"/leads/{lead_id}/stage",
        json={"stage": "assessment"},
        headers={**ACTOR, "If-Match": '"1"', "Idempotency-Key": "move-1"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] == '"2"'
    assert calls == ["_handle"], calls


def test_topic_rows_are_the_log_filtered_with_its_end(store: EventStore) -> None:
    """The database's filter: the rows of the asked topics only, in order, and how far
    the log was read (the last row when the page is full, else the log's end); on both
    back-ends."""
    assert store.read_topic_rows(0, 10, {"LeadPaused"}) == ([], 0)
    created = _created()
    lead_id = created.stream_id
    [p1] = store.append([created])
    version = _pause_resume(store, lead_id, 1, 5)  # paused, resumed, paused, ...
    head = store.last_position()
    assert version == 6
    assert head == p1 + 5
    everything = store.read_rows(0, 100)
    paused = [r for r in everything if r[3] == "LeadPaused"]
    assert store.read_topic_rows(0, 100, {"LeadPaused"}) == (paused, head)
    assert store.read_topic_rows(0, 2, {"LeadPaused"}) == (paused[:2], paused[1][0])
    assert store.read_topic_rows(paused[-1][0], 100, {"LeadPaused"}) == ([], head)
    assert store.read_topic_rows(head, 100, {"LeadPaused"}) == ([], head)
    assert store.read_topic_rows(0, 100, set()) == ([], head)
    both = store.read_topic_rows(0, 100, {"LeadPaused", "LeadCreated"})
    assert both == ([r for r in everything if r[3] != "LeadResumed"], head)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    runs=st.lists(st.integers(0, 7), min_size=1, max_size=5),
    page_size=st.integers(1, 4),
)
def test_a_manager_is_given_exactly_its_events_once(
    tmp_path: Path, runs: list[int], page_size: int
) -> None:
    """Property: whatever the pages and the appends between rounds, a manager is given
    every event of its topics once, in log order, and nothing else; it reports the log's
    end as its position; after a restart nothing it handled comes again."""
    url = f"sqlite:///{tmp_path}/pm-{uuid4().hex}.sqlite"
    store = open_event_store(url, event_codec())
    try:
        watcher = _Watcher()
        runner = ProcessRunner(store, [watcher], lambda: T0, page_size=page_size)
        created = _created()
        store.append([created])
        version = 1
        for n in runs:
            version = _pause_resume(store, created.stream_id, version, n)
            runner.run_once()
            expected = [r[0] for r in store.read_rows(0, 1000) if r[3] == "LeadPaused"]
            assert watcher.seen == expected
            assert runner.position(watcher.name) == store.last_position()
        again = _Watcher()
        ProcessRunner(store, [again], lambda: T0, page_size=page_size).run_once()
        assert again.seen == []
    finally:
        store.close()


def _scan(history: list[Any], command_id: UUID) -> tuple[Any, Any] | None:
    mine = [r for r in history if r.event.command_id == command_id]
    return (mine[0], mine[-1]) if mine else None


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.lists(st.integers(0, 3), min_size=1, max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_the_command_index_answers_as_a_scan_of_the_stream(
    tmp_path: Path, steps: list[tuple[bool, list[int]]]
) -> None:
    """Property: whichever of two stores appends what (a command may leave several
    events), the index a store keeps of a stream's commands finds exactly the first and
    last events a scan of the loaded stream finds, and it answers without a scan."""
    url = f"sqlite:///{tmp_path}/idx-{uuid4().hex}.sqlite"
    a, b = open_event_store(url, event_codec()), open_event_store(url, event_codec())
    commands = [uuid4() for _ in range(4)]
    try:
        created = _created()
        lead_id = created.stream_id
        a.append([created])
        version = 1
        for use_a, chosen in steps:
            writer = a if use_a else b
            events = []
            for n in chosen:
                version += 1
                meta = CommandMeta(actor="anna.sales", at=T0, command_id=commands[n])
                kind = LeadPaused if version % 2 == 0 else LeadResumed
                extra: dict[str, Any] = (
                    {"reason": "holiday"} if kind is LeadPaused else {"paused_seconds": 1.0}
                )
                events.append(NewEvent(lead_id, version, kind(**meta.event_fields(), **extra)))
            writer.append(events)
            for reader in (a, b):
                history = reader.load(lead_id)
                for command_id in [*commands, created.event.command_id, uuid4()]:
                    span = reader.command_span(lead_id, command_id, history)
                    assert span is not False  # the index answers
                    assert span == _scan(history, command_id)
    finally:
        a.close()
        b.close()


# --- read-your-writes on one lead, from its stream -------------------------------------


def _append_history(store: EventStore, history: list[Any], sizes: list[int]) -> dict[UUID, int]:
    """Append a generated history in pages of the given sizes; each lead's last position."""
    last: dict[UUID, int] = {}
    at = 0
    for size in [*sizes, len(history)]:
        page = history[at : at + max(1, size)]
        if not page:
            break
        positions = store.append([NewEvent(s, v, e) for s, v, e in page])
        for (stream, _, event), position in zip(page, positions, strict=True):
            if isinstance(event, LeadCreated | LeadImported) or stream in last:
                last[stream] = position
        at += len(page)
    return last


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    leads=st.integers(1, 4),
    events=st.integers(1, 60),
    sizes=st.lists(st.integers(1, 20), max_size=5),
)
def test_a_lead_read_from_its_stream_is_the_read_models_answer(
    make_platform: PlatformFactory, seed: int, leads: int, events: int, sizes: list[int]
) -> None:
    """``GET /leads/{id}?min_position=`` before the read models reach it answers from the
    lead's stream: the same JSON and ETag, for random histories, as the read model's
    answer once the projector has folded the log."""
    platform = make_platform()
    history = list(LeadHistory(platform.funnels, leads=leads, events=events, seed=seed))
    last = _append_history(platform.store, history, sizes)
    assert platform.projector.position == 0  # no projector runs: the read models are behind
    app = create_app(platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as client:
        early = {}
        for lead_id, position in last.items():
            response = client.get(f"/leads/{lead_id}", params={"min_position": position})
            assert response.status_code == 200, response.text
            early[lead_id] = (response.json(), response.headers["ETag"])
        platform.projector.catch_up()
        for lead_id, position in last.items():
            for params in ({}, {"min_position": position}):
                response = client.get(f"/leads/{lead_id}", params=params)
                assert response.status_code == 200, response.text
                assert (response.json(), response.headers["ETag"]) == early[lead_id]


def test_a_lead_no_longer_theirs_is_not_read_from_its_stream(
    make_platform: PlatformFactory,
) -> None:
    """A scoped viewer is answered from the stream only when the lead, as its stream has
    it, is theirs; a lead handed to another manager since the read models' position
    waits for the read models as before (here: 503), never shows its newer state."""
    platform = make_platform(read_wait_seconds=0.2)
    app = create_app(platform, background=False, close_on_exit=False)
    mine = bearer("boris", "manager")
    with TestClient(app, headers=ACTOR) as client:
        created = client.post("/leads", json=new_lead_body(manager="boris"))
        assert created.status_code == 201, created.text
        lead_id = created.json()["lead_id"]
        # not in the read models at all yet: theirs by its stream, so seen and read there
        new = client.get(
            f"/leads/{lead_id}", params={"min_position": created.json()["position"]}, headers=mine
        )
        assert new.status_code == 200, new.text
        assert platform.projector.position == 0
        other = client.get(
            f"/leads/{lead_id}",
            params={"min_position": created.json()["position"]},
            headers=bearer("vera", "manager"),
        )
        assert other.status_code == 404, other.text
        platform.projector.catch_up()
        edited = client.post(f"/leads/{lead_id}/card", json={"description": "called back"})
        assert edited.status_code == 200, edited.text
        own = client.get(
            f"/leads/{lead_id}", params={"min_position": edited.json()["position"]}, headers=mine
        )
        assert own.status_code == 200, own.text
        assert own.json()["description"] == "called back"
        handed = client.post(f"/leads/{lead_id}/card", json={"manager": "vera"})
        assert handed.status_code == 200, handed.text
        position = handed.json()["position"]
        theirs = client.get(f"/leads/{lead_id}", params={"min_position": position}, headers=mine)
        assert theirs.status_code == 503, theirs.text
        assert platform.projector.position < position


def test_a_fold_goes_on_from_the_stores_last_fold_of_the_stream(
    store_url: str, store: EventStore
) -> None:
    """``EventStore.fold`` folds only the events it has not folded yet for a stream, and
    answers exactly as a fold from the first event: after this store's appends, after
    another process's, and from the start for a history that is not this store's chain
    (another store's load) or not the whole stream (read as of a moment)."""
    folded: list[Any] = []

    def evolve(state: Lead | None, event: Any) -> Lead:
        folded.append(event)
        return lead_evolve(state, event)

    def check(history: list[Any], expected_folds: int) -> None:
        folded.clear()
        assert store.fold(history, evolve) == lead_fold([r.event for r in history])
        assert len(folded) == expected_folds

    created = _created()
    lead_id = created.stream_id
    store.append([created])
    version = _pause_resume(store, lead_id, 1, 5)
    check(store.load(lead_id), 6)
    check(store.load(lead_id), 0)
    version = _pause_resume(store, lead_id, version, 3)
    check(store.load(lead_id), 3)
    other = open_event_store(store_url, event_codec())
    try:
        version = _pause_resume(other, lead_id, version, 2)
        check(store.load(lead_id), 2)
        check(other.load(lead_id), version)  # not the chain this store folded
    finally:
        other.close()
    early = store.load(lead_id, as_of=T0 + timedelta(minutes=3))
    assert 0 < len(early) < version
    check(early, len(early))
    check(store.load(lead_id), 0)
    assert store.fold([], evolve) is None


def test_a_read_your_writes_lead_read_costs_one_thread_pool_hand_off(
    make_platform: PlatformFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scoped viewer's read of their lead behind ``min_position`` reads its stream once,
    in the one hand-off of ``authorize`` (which keeps the folded lead for the route):
    no second read of the stream, no question for the log's end (the stream reaches
    ``min_position``), and the endpoint and its validation run on the event loop."""
    from read_api import access, deps
    from read_api.routes import leads as lead_routes

    platform = make_platform()
    app = create_app(platform, background=False, close_on_exit=False)
    mine = bearer("boris", "manager")
    calls: list[str] = []

    def counting(module: Any) -> None:
        original = module.run_in_threadpool

        async def run(func: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(getattr(func, "__qualname__", repr(func)))
            return await original(func, *args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", run)

    with TestClient(app, headers=ACTOR) as client:
        created = client.post("/leads", json=new_lead_body(manager="boris"))
        assert created.status_code == 201, created.text
        lead_id, position = created.json()["lead_id"], created.json()["position"]
        for module in (fastapi_dependencies, fastapi_routing, access, deps, lead_routes):
            counting(module)
        read = client.get(f"/leads/{lead_id}", params={"min_position": position}, headers=mine)
        assert read.status_code == 200, read.text
        assert read.json()["manager"] == "boris"
        assert calls == ["own_lead_at"], calls
        assert platform.projector.position < position  # answered from the stream
        calls.clear()
        beyond = client.get(
            f"/leads/{lead_id}", params={"min_position": position + 5}, headers=mine
        )
        assert beyond.status_code == 422, beyond.text  # past the log's end: still refused


def test_a_page_is_folded_only_by_the_projections_of_its_topics(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector calls a projection only when the page holds an event of its topics:
    a page of one lead creation reaches the lead models, not the deals' or projects'."""
    projector = platform.projector
    called: list[str] = []

    for projection in projector.projections:
        original = projection.apply

        def spy(cursor: Any, page: Any, _name: str = projection.name, _o: Any = original) -> None:
            called.append(_name)
            _o(cursor, page)

        monkeypatch.setattr(projection, "apply", spy)
    [position] = platform.store.append([_created()])
    projector.catch_up()
    assert projector.position == position
    expected = [p.name for p in projector.projections if "LeadCreated" in p.topics]
    assert called == expected
    assert len(called) < len(projector.projections)
    rows = platform.db.cursor().execute("SELECT count(*) FROM leads").fetchone()
    assert rows == (1,)


def test_a_busy_follower_settles_longer_when_its_steps_grow_slow() -> None:
    """Idle, a follower settles its short window; busy, its busy window, and at least
    long enough that its steps take no more than ``busy_share`` of the time, up to the
    cap: slow folds make bigger pages instead of a follower that folds all the time."""
    from event_store.follow import busy_settle

    assert busy_settle(False, 0.5, 0.02, 0.3, 0.25, 1.0) == 0.02
    assert busy_settle(True, 0.05, 0.02, 0.3, 0.25, 1.0) == 0.3  # a quick fold: the window
    assert busy_settle(True, 0.2, 0.02, 0.3, 0.25, 1.0) == pytest.approx(0.6)
    assert busy_settle(True, 2.0, 0.02, 0.3, 0.25, 1.0) == 1.0  # capped
    assert busy_settle(True, 2.0, 0.02, 0.3, None, 1.0) == 0.3  # not paced


class _ResumeWatcher(_Watcher):
    name = "test_resume_watcher"
    topics = frozenset({"LeadResumed"})


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    before=st.lists(st.integers(0, 7), min_size=1, max_size=4),
    after=st.lists(st.integers(0, 7), min_size=1, max_size=4),
    page_size=st.integers(1, 6),
)
def test_one_read_a_page_serves_managers_at_different_positions(
    tmp_path: Path, before: list[int], after: list[int], page_size: int
) -> None:
    """Property: managers of different topics, one joining late (it starts from the
    log's start while the other is far ahead), share one read of the log a page, and
    each is given every event of its topics once, in order, and nothing else."""
    url = f"sqlite:///{tmp_path}/pm-{uuid4().hex}.sqlite"
    store = open_event_store(url, event_codec())
    try:
        paused = _Watcher()
        created = _created()
        store.append([created])
        version = 1
        first = ProcessRunner(store, [paused], lambda: T0, page_size=page_size)
        for n in before:
            version = _pause_resume(store, created.stream_id, version, n)
            first.run_once()
        resumed, paused_again = _ResumeWatcher(), _Watcher()
        runner = ProcessRunner(store, [paused_again, resumed], lambda: T0, page_size=page_size)
        reads: list[int] = []
        original = store.read_topic_rows

        def counting(*args: Any) -> Any:
            found = original(*args)
            reads.append(len(found[0]))
            return found

        store.read_topic_rows = counting  # type: ignore[method-assign,assignment]
        for n in after:
            version = _pause_resume(store, created.stream_id, version, n)
            reads.clear()
            runner.run_once()
            # one read a page: a full page is followed by the next, the last is not full
            assert all(r == page_size for r in reads[:-1])
            assert reads[-1] < page_size
            rows = store.read_rows(0, 1000)
            assert resumed.seen == [r[0] for r in rows if r[3] == "LeadResumed"]
            assert paused.seen + paused_again.seen == [r[0] for r in rows if r[3] == "LeadPaused"]
            for manager in (paused_again, resumed):
                assert runner.position(manager.name) == store.last_position()
    finally:
        store.close()


def test_a_polling_follower_does_not_settle_on_top_of_its_poll() -> None:
    """A follower of another process's appends (never woken) steps again once its poll
    interval has passed, busy or not: the settle is for a wake, not added to each poll."""
    from event_store.follow import follow_until_stopped

    stop, wake = threading.Event(), threading.Event()
    steps: list[float] = []

    def step() -> int:
        steps.append(time.monotonic())
        if len(steps) >= 6:
            stop.set()
        return 1  # busy: a woken follower would settle 1 s

    thread = threading.Thread(
        target=follow_until_stopped,
        args=(step, wake, stop, 0.02),
        kwargs={
            "what": "test",
            "log": runner_module.log,
            "settle_seconds": 1.0,
            "busy_settle_seconds": 1.0,
        },
        daemon=True,
    )
    thread.start()
    thread.join(10)
    assert len(steps) == 6
    assert steps[-1] - steps[0] < 2.0  # five polls of 20 ms, not five settles of 1 s


def test_a_quiet_round_stores_the_positions_of_ignored_stretches(platform: Platform) -> None:
    """An ignored stretch is not stored while the log moves; once a round finds nothing
    new, the positions kept in memory are stored (one transaction), so that another
    process reading them, or a restart, sees the managers at the log's end."""
    store = platform.store
    watcher = _Watcher()
    runner = ProcessRunner(store, [watcher], lambda: T0)
    [p1] = store.append([_created()])
    runner.run_once()
    assert runner.state.position(watcher.name) == 0  # the log moved: nothing written
    runner.run_once()  # quiet: stored now
    assert runner.state.position(watcher.name) == p1
    assert watcher.seen == []


def _delete_versions(store_url: str, stream_id: UUID, versions: list[int]) -> None:
    """Cut the log back under the stores (a restored dump, a test's DELETE)."""
    if store_url.startswith("sqlite"):
        import sqlite3

        path = store_url.removeprefix("sqlite:///")
        with sqlite3.connect("/" + path if not path.startswith("/") else path) as db:
            for v in versions:
                db.execute(
                    "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                    (stream_id.hex, v),
                )
        return
    schema = store_url.split("schema=")[1]
    with psycopg.connect(store_url.split("?")[0], autocommit=True) as conn:
        for v in versions:
            conn.execute(
                SQL("DELETE FROM {} WHERE originator_id = %s AND originator_version = %s").format(
                    Identifier(schema, "stored_events")
                ),
                (stream_id, v),
            )


def test_an_append_after_a_kept_event_goes_in_only_while_it_is_the_streams_last(
    store_url: str, store: EventStore
) -> None:
    """``append(after=...)``: written, and the kept chain extended, only while the named
    event is still its stream's last in the database (``empty=``: while the stream has
    none); refused, writing nothing, when
    another store appended since, when it was deleted, or when its version now holds
    another event: never a version past a missing one."""
    created = _created()
    lead_id = created.stream_id
    store.append([created], empty=[lead_id])  # a new stream: kept from what went in
    kept = store.kept(lead_id)
    assert [(r.version, r.position) for r in kept] == [(1, 1)]
    with pytest.raises(ConcurrencyError):  # seen empty, yet it has an event: refused
        store.append([_paused(lead_id, 2, T0)], empty=[lead_id])
    event = _paused(lead_id, 2, T0 + timedelta(minutes=1))
    store.append([event], after=kept[-1:])
    assert [(r.version, r.position) for r in store.kept(lead_id)] == [(1, 1), (2, 2)]
    other = open_event_store(store_url, event_codec())
    try:
        assert store.kept(lead_id) == other.load(lead_id)  # as a load would have it
        other.append([_resumed(lead_id, 3, T0 + timedelta(minutes=2))])  # behind `store`
        other.append([_created()])  # another lead's, at 4: the log goes on past 3
        with pytest.raises(ConcurrencyError):
            store.append([_resumed(lead_id, 3, T0)], after=store.kept(lead_id)[-1:])
        with pytest.raises(ConcurrencyError):  # a later version there: refused as well
            store.append([_resumed(lead_id, 4, T0)], after=store.kept(lead_id)[-1:])
        assert [r.version for r in store.load(lead_id)] == [1, 2, 3]
        # the last event deleted under both stores: an append after it is refused
        _delete_versions(store_url, lead_id, [3])
        with pytest.raises(ConcurrencyError):
            store.append([_paused(lead_id, 4, T0)], after=store.kept(lead_id)[-1:])
        # its version taken again by another event (at another position): refused too
        assert [r.version for r in other.load(lead_id)] == [1, 2]
        other.append([_resumed(lead_id, 3, T0 + timedelta(minutes=3))])
        with pytest.raises(ConcurrencyError):
            store.append([_paused(lead_id, 4, T0)], after=store.kept(lead_id)[-1:])
        fresh = store.load(lead_id)
        assert [(r.version, r.position) for r in fresh] == [(1, 1), (2, 2), (3, 5)]
        store.append([_paused(lead_id, 4, T0 + timedelta(minutes=4))], after=fresh[-1:])
        assert store.kept(lead_id) == other.load(lead_id)
        assert [(r.version, r.position) for r in store.kept(lead_id)] == [
            (1, 1),
            (2, 2),
            (3, 5),
            (4, 6),
        ]
        assert [n.id for n in store.read(0, 100)] == [1, 2, 4, 5, 6]  # only the deleted 3
    finally:
        other.close()


def test_two_stores_running_lead_commands_in_turn_keep_the_log_whole(
    store_url: str, store: EventStore
) -> None:
    """Two stores on one database run commands on one lead in turn, each deciding first
    on its kept chain: each command is applied once on the lead as the log has it (the
    one behind decides again on a fresh read), versions and positions are gap-free, the
    hash chain verifies, and a store's second command in a row reads nothing first."""
    from aggregates.lead import PauseLead, ResumeLead
    from commands.context import CommandContext
    from commands.leads import handle_lead_command
    from event_store import verify
    from tests.factories import FUNNELS

    created = _created()
    lead_id = created.stream_id
    store.append([created])
    other = open_event_store(store_url, event_codec())
    reads: list[UUID] = []
    for s in (store, other):
        read = s.recorder.select_stream  # type: ignore[attr-defined]

        def counted(stream_id: UUID, *rest: Any, _read: Any = read) -> Any:
            reads.append(stream_id)
            return _read(stream_id, *rest)

        s.recorder.select_stream = counted  # type: ignore[attr-defined]
    try:
        turns = [store, other, other, store, store, other, store, other, other, other]
        for n, s in enumerate(turns):
            ctx = CommandContext.new(
                actor="boris", clock=itertools.repeat(T0 + timedelta(minutes=n)).__next__
            )
            command = PauseLead(reason="holiday") if n % 2 == 0 else ResumeLead()
            reads.clear()
            result = handle_lead_command(s, FUNNELS, lead_id, command, ctx)
            assert result.version == n + 2
            if n > 0 and turns[n - 1] is s:
                assert reads == []  # decided on its kept chain, nothing read first
        expected = open_event_store(store_url, event_codec())
        try:
            log = expected.load(lead_id)
        finally:
            expected.close()
        assert [r.version for r in log] == list(range(1, len(turns) + 2))
        assert [type(r.event).__name__ for r in log[1:]] == [
            "LeadPaused" if n % 2 == 0 else "LeadResumed" for n in range(len(turns))
        ]
        assert [n.id for n in store.read(0, 100)] == list(range(1, len(turns) + 2))
        assert store.load(lead_id) == log == other.load(lead_id)
        assert verify(store).ok
    finally:
        other.close()


def test_a_lead_command_on_the_kept_stream_is_never_decided_again_once_appended(
    store: EventStore,
) -> None:
    """Only a refused append sends a decision on the kept stream to a fresh read: an
    append that went in is not decided again, whatever fails after it."""
    from aggregates.lead import PauseLead
    from commands.context import CommandContext
    from commands.leads import handle_lead_command
    from tests.factories import FUNNELS

    created = _created()
    lead_id = created.stream_id
    store.append([created], empty=[lead_id])

    def failing(position: int) -> None:
        raise RuntimeError("a listener failed after the append")

    store.on_append(failing)
    ctx = CommandContext.new(actor="boris", clock=itertools.repeat(T0).__next__)
    with pytest.raises(RuntimeError):
        handle_lead_command(store, FUNNELS, lead_id, PauseLead(reason="holiday"), ctx)
    assert [r.version for r in store.load(lead_id)] == [1, 2]
