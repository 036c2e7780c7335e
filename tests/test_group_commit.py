"""Group commit on the real PostgreSQL and on SQLite (issue 17): concurrent appends share
transactions, yet each keeps its own answer.

- ``insert_event_groups`` writes several appends in one transaction: a group with a
  taken (stream, version), or one an earlier group of the call claimed, is left out
  alone; the others get gap-free positions in order, and the hash chain covers them.
- ``EventStore.append`` from many threads at once: transactions do carry more than one
  append; every (stream, version) is won by exactly one append, the losers hear
  ``ConcurrencyError``, the positions are 1..N with no gap, each winner's positions are
  where its events are, and the chain verifies.
- A group whose transaction fails for another reason writes each append alone: a bad
  append fails only itself.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from event_store import ConcurrencyError, EventStore
from event_store.chain import verify
from tests.test_event_store import T0, _created, _paused


def _stored(store: EventStore, stream_id: UUID, version: int) -> StoredEvent:
    event = _paused(stream_id, version, T0 + timedelta(minutes=version)).event
    return StoredEvent(stream_id, version, store.codec.topic(event), store.codec.encode(event))


def _positions(store: EventStore) -> list[int]:
    return [n.id for n in store.read(0, 1_000_000)]


def test_insert_event_groups_leaves_out_only_the_groups_that_conflict(
    store: EventStore,
) -> None:
    a, b, c = _created(), _created(), _created()
    store.append([a, b, c])  # positions 1..3
    recorder: Any = store.recorder
    groups = [
        [_stored(store, a.stream_id, 2)],  # fine
        [_stored(store, b.stream_id, 1)],  # version 1 of b is taken: out
        [_stored(store, c.stream_id, 2), _stored(store, b.stream_id, 2)],  # fine, two events
        [_stored(store, a.stream_id, 2)],  # claimed by the first group: out
        [_stored(store, c.stream_id, 3), _stored(store, c.stream_id, 3)],  # twice: out
        [_stored(store, a.stream_id, 3)],  # fine
    ]
    answers = recorder.insert_event_groups(groups)
    assert answers == [[4], None, [5, 6], None, None, [7]]
    assert _positions(store) == [1, 2, 3, 4, 5, 6, 7]
    assert [(r.version, r.position) for r in store.load(c.stream_id)] == [(1, 3), (2, 5)]
    assert [(r.version, r.position) for r in store.load(b.stream_id)] == [(1, 2), (2, 6)]
    assert verify(store).ok
    # nothing left to write: no position is used up, and the next append follows on
    assert recorder.insert_event_groups([[_stored(store, a.stream_id, 1)]]) == [None]
    assert store.append([_paused(b.stream_id, 3, T0)]) == [8]
    assert verify(store).ok


def test_concurrent_appends_share_transactions_and_keep_their_own_answers(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = [_created() for _ in range(4)]
    store.append(streams)
    sizes: list[int] = []
    assert store._groups is not None
    inner = store._groups._insert_groups

    def counted(groups: Any, *expects: Any) -> list[list[int] | None]:
        sizes.append(len(groups))
        return inner(groups, *expects)

    monkeypatch.setattr(store._groups, "_insert_groups", counted)
    threads, rounds = 16, 12
    won: dict[tuple[UUID, int], list[tuple[int, list[int]]]] = {}
    lost: list[tuple[int, UUID, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for r in range(rounds):
                # four threads race for each (stream, version); each also writes a new lead
                stream = streams[i % 4].stream_id
                version = 2 + r
                extra = _created()
                try:
                    positions = store.append([_paused(stream, version, T0), extra])
                except ConcurrencyError:
                    with lock:
                        lost.append((i, stream, version))
                    continue
                with lock:
                    won.setdefault((stream, version), []).append((i, positions))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors[0]
    assert max(sizes) > 1, sizes  # appends did share transactions
    # every (stream, version) was won exactly once; everyone else heard of it
    assert sorted(won) == sorted((s.stream_id, 2 + r) for s in streams for r in range(rounds))
    assert all(len(winners) == 1 for winners in won.values())
    assert len(lost) == threads * rounds - len(won)
    # gap-free positions, each winner's where its events are
    total = 4 + 2 * len(won)
    assert _positions(store) == list(range(1, total + 1))
    for (stream, version), [(_, positions)] in won.items():
        assert len(positions) == 2
        assert positions[1] == positions[0] + 1
        [recorded] = [r for r in store.load(stream) if r.version == version]
        assert recorded.position == positions[0]
    assert verify(store).ok


def test_a_group_that_fails_otherwise_writes_each_append_alone(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store._groups is not None
    calls: list[int] = []

    def broken(groups: Any, *expects: Any) -> list[list[int] | None]:
        calls.append(len(groups))
        raise RuntimeError("the group's transaction failed")

    monkeypatch.setattr(store._groups, "_insert_groups", broken)
    # the leader holds the lead while the others queue: they then go as one group
    gate = threading.Event()
    inner_one = store._groups._insert_one

    def slow_one(events: list[StoredEvent], *expects: Any) -> list[int]:
        gate.wait(5)
        return inner_one(events, *expects)

    monkeypatch.setattr(store._groups, "_insert_one", slow_one)
    results: dict[int, Any] = {}

    def run(i: int, event: Any) -> None:
        try:
            results[i] = store.append([event])
        except BaseException as exc:
            results[i] = exc

    first = _created()
    leader = threading.Thread(target=run, args=(0, first))
    leader.start()
    while not store._groups._busy:
        time.sleep(0.001)
    queued = [
        threading.Thread(target=run, args=(1, _created())),
        threading.Thread(target=run, args=(2, _paused(first.stream_id, 1, T0))),  # taken
        threading.Thread(target=run, args=(3, _created())),
    ]
    for t in queued:
        t.start()
    while len(store._groups._queue) < 3:
        time.sleep(0.001)
    gate.set()
    for t in (leader, *queued):
        t.join(30)
    assert calls == [3]  # the three queued appends went as one group, which failed
    assert results[0] == [1]
    assert isinstance(results[2], ConcurrencyError)
    assert sorted([results[1][0], results[3][0]]) == [2, 3]
    assert _positions(store) == [1, 2, 3]
    assert verify(store).ok


def test_a_group_whose_expected_last_event_moved_is_left_out_alone(store: EventStore) -> None:
    """``insert_event_groups(groups, expects)``: a group goes in only while each event it
    expects is still its stream's last (in the database, and not moved by an earlier
    group of the same call); the others are written, gap-free."""
    a, b = _created(), _created()
    store.append([a, b])  # positions 1, 2
    recorder: Any = store.recorder
    a1, b1 = (a.stream_id, 1, 1), (b.stream_id, 1, 2)
    groups = [
        [_stored(store, a.stream_id, 2)],  # after a's 1: fine
        [_stored(store, b.stream_id, 2)],  # expects b's 1 at position 1: it is at 2, out
        [_stored(store, b.stream_id, 2)],  # after b's 1 at 2: fine
        [_stored(store, a.stream_id, 3)],  # a's 1 is not a's last any more (group 0): out
    ]
    answers = recorder.insert_event_groups(groups, [[a1], [(b.stream_id, 1, 1)], [b1], [a1]])
    assert answers == [[3], None, [4], None]
    assert _positions(store) == [1, 2, 3, 4]
    assert verify(store).ok
