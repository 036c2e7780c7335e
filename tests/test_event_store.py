"""The event store on both back-ends (the ``store`` fixture runs each test on SQLite and on
the real PostgreSQL): atomic multi-stream appends, the gap-free notification log, as-of
loads, paging, and events stored as readable JSON."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlparse
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from aggregates.base import CommandMeta
from aggregates.lead import CreateLead, LeadCreated, LeadPaused, LeadResumed, create
from event_store import ConcurrencyError, EventStore, NewEvent, open_event_store
from event_store.store import recorder_env
from leadledger.wiring import event_codec
from tests.factories import FUNNELS, LeadDriver, ManualClock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _meta(at: datetime = T0, actor: str = "anna.sales") -> CommandMeta:
    return CommandMeta(actor=actor, at=at, command_id=uuid4())


def _created(lead_id: UUID | None = None, at: datetime = T0, **fields: object) -> NewEvent:
    lead_id = lead_id or uuid4()
    command = CreateLead(
        lead_id=lead_id,
        funnel=str(fields.pop("funnel", "court")),
        title=str(fields.pop("title", "Appraisal")),
        company_name="Northwind LLC",
        source="website",
        manager="boris",
        **fields,  # type: ignore[arg-type]
    )
    return NewEvent(lead_id, 1, create(command, FUNNELS, _meta(at), company_known=False))


def _paused(lead_id: UUID, version: int, at: datetime) -> NewEvent:
    return NewEvent(lead_id, version, LeadPaused(**_meta(at).event_fields(), reason="holiday"))


def _resumed(lead_id: UUID, version: int, at: datetime) -> NewEvent:
    return NewEvent(lead_id, version, LeadResumed(**_meta(at).event_fields(), paused_seconds=60.0))


def _all_positions(store: EventStore) -> list[int]:
    return [n.id for n in store.read(0, 1_000_000)]


# --- appends ----------------------------------------------------------------------------


def test_multi_stream_append_returns_increasing_positions(store: EventStore) -> None:
    a, b, c = _created(), _created(), _created()
    positions = store.append([a, b, c])
    assert positions == sorted(positions)
    assert positions == list(range(positions[0], positions[0] + 3))
    for new, position in zip((a, b, c), positions, strict=True):
        [recorded] = store.load(new.stream_id)
        assert recorded.position == position
        assert recorded.version == 1
        assert recorded.event == new.event


@pytest.mark.parametrize("conflict_at", [0, 1, 2])
def test_a_conflict_on_one_stream_appends_nothing_of_the_batch(
    store: EventStore, conflict_at: int
) -> None:
    taken = _created()
    store.append([taken])
    before = store.last_position()

    batch = [_created(), _created()]
    clash = NewEvent(taken.stream_id, 1, _created(taken.stream_id).event)
    batch.insert(conflict_at, clash)
    with pytest.raises(ConcurrencyError):
        store.append(batch)

    assert store.last_position() == before
    assert _all_positions(store) == [before]
    for new in batch:
        if new is not clash:
            assert store.load(new.stream_id) == []
    assert [r.event for r in store.load(taken.stream_id)] == [taken.event]


def test_a_duplicate_version_inside_one_batch_appends_nothing(store: EventStore) -> None:
    lead_id = uuid4()
    first = _created(lead_id)
    other = _created()
    with pytest.raises(ConcurrencyError):
        store.append([first, other, _paused(lead_id, 1, T0)])
    assert store.last_position() == 0
    assert store.load(lead_id) == []
    assert store.load(other.stream_id) == []


def test_an_empty_append_appends_nothing(store: EventStore) -> None:
    assert store.append([]) == []
    assert store.last_position() == 0


def test_positions_are_gap_free_and_increasing_across_appends(store: EventStore) -> None:
    written: list[int] = []
    lead_id = uuid4()
    written += store.append([_created(lead_id)])
    for i in range(5):
        batch = [_created() for _ in range(i)]
        written += store.append(batch)
    written += store.append([_paused(lead_id, 2, T0 + timedelta(hours=1))])
    assert written == list(range(1, len(written) + 1))
    assert _all_positions(store) == written
    assert store.last_position() == written[-1]


def test_positions_stay_gap_free_after_refused_appends(store: EventStore) -> None:
    """A refused append leaves no hole in the notification log.

    event_store/store.py and ARCHITECTURE.md promise every event "a gap-free global
    position". On PostgreSQL the library's recorder takes ids from a bigserial sequence
    inside the INSERT, so an INSERT refused by the unique (stream, version) constraint
    has already consumed ids for every row of its batch and leaves a hole (here positions
    1, 8, 9 instead of 1, 2, 3). Every 409 of a racing command does this in production.
    """
    lead_id = uuid4()
    store.append([_created(lead_id)])
    for _ in range(3):
        with pytest.raises(ConcurrencyError):
            store.append([_created(), _created(lead_id)])
    store.append([_created()])
    store.append([_paused(lead_id, 2, T0)])
    assert _all_positions(store) == [1, 2, 3]


def test_racing_appends_of_one_version_have_exactly_one_winner(store: EventStore) -> None:
    lead_id = uuid4()
    store.append([_created(lead_id)])
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        event = _paused(lead_id, 2, T0 + timedelta(minutes=i))
        barrier.wait()
        try:
            store.append([event])
            result = "ok"
        except ConcurrencyError:
            result = "conflict"
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert sorted(outcomes) == ["conflict"] * (threads - 1) + ["ok"]
    assert [r.version for r in store.load(lead_id)] == [1, 2]


def test_on_append_listeners_hear_the_last_position(store: EventStore) -> None:
    heard: list[int] = []
    store.on_append(heard.append)
    positions = store.append([_created(), _created()])
    with pytest.raises(ConcurrencyError):
        store.append([NewEvent(uuid4(), 1, _created().event)] * 2)
    assert heard == [positions[-1]]


# --- loads ------------------------------------------------------------------------------


def test_load_returns_the_stream_in_version_order_with_positions(store: EventStore) -> None:
    lead_id = uuid4()
    store.append([_created(lead_id)])
    store.append([_created()])  # another stream in between
    store.append([_paused(lead_id, 2, T0 + timedelta(hours=1))])
    store.append([_resumed(lead_id, 3, T0 + timedelta(hours=2))])
    loaded = store.load(lead_id)
    assert [r.version for r in loaded] == [1, 2, 3]
    assert [r.position for r in loaded] == [1, 3, 4]
    assert [type(r.event).__name__ for r in loaded] == ["LeadCreated", "LeadPaused", "LeadResumed"]
    assert all(r.stream_id == lead_id for r in loaded)
    assert store.load(uuid4()) == []


def test_load_as_of_filters_by_event_time_inclusively(store: EventStore) -> None:
    lead_id = uuid4()
    t1, t2, t3 = T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    store.append([_created(lead_id, at=t1)])
    store.append([_paused(lead_id, 2, t2)])
    store.append([_resumed(lead_id, 3, t3)])

    def versions(as_of: datetime) -> list[int]:
        return [r.version for r in store.load(lead_id, as_of=as_of)]

    assert versions(t1 - timedelta(microseconds=1)) == []
    assert versions(t1) == [1]
    assert versions(t2 - timedelta(seconds=1)) == [1]
    assert versions(t2) == [1, 2]
    assert versions(t3 + timedelta(days=365)) == [1, 2, 3]
    # The same instant written in another time zone is the same instant.
    plus3 = timezone(timedelta(hours=3))
    assert versions(t2.astimezone(plus3)) == [1, 2]
    assert versions((t2 - timedelta(seconds=1)).astimezone(plus3)) == [1]


def test_load_as_of_through_the_handlers(store: EventStore) -> None:
    clock = ManualClock(T0)
    driver = LeadDriver(store, clock=clock)
    lead_id = driver.create().stream_id
    clock.advance(hours=1)
    driver.move(lead_id, "assessment")
    clock.advance(hours=1)
    driver.pause(lead_id)
    as_of = [r.event.at for r in store.load(lead_id, as_of=T0 + timedelta(minutes=90))]
    assert as_of == [T0, T0 + timedelta(hours=1)]


# --- the notification log ---------------------------------------------------------------


def test_read_pages_through_the_log(store: EventStore) -> None:
    for i in range(4):
        store.append([_created() for _ in range(i + 1)])  # 10 events in all
    everything = store.read(0, 100)
    assert [n.id for n in everything] == list(range(1, 11))

    paged: list[int] = []
    after = 0
    while True:
        page = store.read(after, 3)
        if not page:
            break
        assert len(page) <= 3
        assert all(n.id > after for n in page)
        paged += [n.id for n in page]
        after = page[-1].id
    assert paged == list(range(1, 11))
    assert [n.id for n in store.read(4, 2)] == [5, 6]
    assert [n.id for n in store.read(9, 5)] == [10]
    assert store.read(10, 5) == []
    assert [n.id for n in store.read(0, 1)] == [1]
    by_id = {n.id: n for n in everything}
    for n in store.read(5, 3):
        assert (n.originator_id, n.originator_version, n.topic, n.state) == (
            by_id[n.id].originator_id,
            by_id[n.id].originator_version,
            by_id[n.id].topic,
            by_id[n.id].state,
        )


def test_read_rows_is_read_as_plain_tuples(store: EventStore) -> None:
    lead_id = uuid4()
    store.append([_created(lead_id), _created()])
    store.append([_paused(lead_id, 2, T0 + timedelta(hours=1))])
    for after, limit in [(0, 10), (0, 2), (1, 1), (2, 5), (3, 5)]:
        expected = [
            (n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
            for n in store.read(after, limit)
        ]
        got = [(p, s, v, t, bytes(st)) for p, s, v, t, st in store.read_rows(after, limit)]
        assert got == expected
    assert store.read_rows(0, 10)[2][1:3] == (str(lead_id), 2)


# --- readable JSON ----------------------------------------------------------------------


def _raw_rows(store_url: str) -> list[tuple[str, bytes]]:
    """(topic, state) of every stored event, read straight from the database."""
    parsed = urlparse(store_url)
    if parsed.scheme == "sqlite":
        lite = sqlite3.connect(parsed.path)
        try:
            return [
                (topic, bytes(state))
                for topic, state in lite.execute(
                    "SELECT topic, state FROM stored_events ORDER BY rowid"
                )
            ]
        finally:
            lite.close()
    schema = parse_qs(parsed.query)["schema"][0]
    env = recorder_env(store_url)
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
    ) as conn:
        rows = conn.execute(
            SQL("SELECT topic, state FROM {}.stored_events ORDER BY notification_id").format(
                Identifier(schema)
            )
        ).fetchall()
    return [(topic, bytes(state)) for topic, state in rows]


def test_events_are_stored_as_readable_json(store: EventStore, store_url: str) -> None:
    lead_id = uuid4()
    event = _created(lead_id, funnel="out_of_court", amount=Decimal("1234.50"), company_id="ACME-1")
    store.append([event])
    store.append([_paused(lead_id, 2, T0 + timedelta(hours=1))])

    for rows in (
        [(n.topic, n.state) for n in store.read(0, 10)],
        _raw_rows(store_url),
    ):
        assert [topic for topic, _ in rows] == ["LeadCreated", "LeadPaused"]
        created = json.loads(rows[0][1].decode("utf-8"))
        paused = json.loads(rows[1][1].decode("utf-8"))
        assert created["lead_id"] == str(lead_id)
        assert created["funnel"] == "out_of_court"
        assert created["stage"] == "new"
        assert created["amount"] == "1234.50"
        assert created["company_id"] == "ACME-1"
        assert created["repeat"] is False
        assert created["actor"] == "anna.sales"
        assert datetime.fromisoformat(created["at"]) == T0
        assert UUID(created["command_id"])
        # LeadCreated v2 records the currency, v3 the contact and the assessment asked, v4
        # the contact record a private person's lead names
        assert created["schema_version"] == 4
        assert created["contact_id"] is None
        assert created["currency"] == "RUB"
        assert created["assessment_required"] is None
        assert paused["schema_version"] == 1
        assert paused["reason"] == "holiday"
        assert datetime.fromisoformat(paused["at"]) == T0 + timedelta(hours=1)


def test_decoding_stored_json_gives_back_equal_events(store: EventStore) -> None:
    new = _created(amount=Decimal("0.10"), answer_due=datetime(2026, 2, 1).date())
    store.append([new])
    [recorded] = store.load(new.stream_id)
    assert isinstance(recorded.event, LeadCreated)
    assert recorded.event == new.event
    assert recorded.event.amount == Decimal("0.10")


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/test",
        "redis://localhost:6379/0",
        "events.sqlite",
        "",
        "sqlite://relative/path.sqlite",
    ],
)
def test_an_unknown_or_malformed_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="event store URL"):
        open_event_store(url, event_codec())


def test_backend_follows_the_url(store: EventStore, store_url: str) -> None:
    expected = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    assert store.backend == expected
