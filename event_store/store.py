"""The event store LeadLedger writes to and reads from.

One URL chooses the back-end: ``sqlite:///path/to/events.sqlite`` (embedded default) or
``postgresql://user:password@host:port/dbname?schema=name`` (production). Both are the
eventsourcing library's recorders; every event gets a gap-free global position in the
notification log, and a stream's versions are unique, which is what optimistic
concurrency rests on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

import pyarrow as pa
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
)

from aggregates.base import DomainEvent
from event_store.codec import EventCodec
from event_store.recorders import Expect, NotificationRow


class ConcurrencyError(Exception):
    """Another writer appended to one of the streams first."""


@dataclass(frozen=True)
class NewEvent:
    stream_id: UUID
    version: int
    event: DomainEvent


@dataclass(frozen=True)
class RecordedEvent:
    stream_id: UUID
    version: int
    position: int
    event: DomainEvent


def recorder_env(url: str) -> dict[str, str]:
    """eventsourcing settings for an event store URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if parsed.netloc:  # sqlite://relative/path is a mistake worth naming
            raise ValueError(
                f"event store URL '{url}': write sqlite:///relative/path or "
                "sqlite:////absolute/path"
            )
        path = path[1:] if path.startswith("/") else path
        if path in ("", ":memory:"):
            dbname = "file:leadledger?mode=memory&cache=shared"
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            dbname = path
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": dbname,
            "SQLITE_LOCK_TIMEOUT": "30",
            "PROCESS_RECORDER_TOPIC": "event_store.recorders:LeadLedgerSQLiteRecorder",
        }
    if parsed.scheme in ("postgresql", "postgres"):
        query = parse_qs(parsed.query)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_POOL_SIZE": query.get("pool_size", ["10"])[0],
            "POSTGRES_MAX_OVERFLOW": query.get("max_overflow", ["10"])[0],
            "POSTGRES_LOCK_TIMEOUT": "30",
            "PROCESS_RECORDER_TOPIC": "event_store.recorders:LeadLedgerPostgresRecorder",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env
    raise ValueError(f"event store URL '{url}' must start with sqlite:/// or postgresql://")


GROUP_COMMIT_MAX = 64
"""Appends one group-commit transaction writes at most."""


class _Pending:
    """One append waiting in a group commit."""

    __slots__ = ("done", "error", "events", "expects", "leads", "positions")

    def __init__(self, events: list[StoredEvent], expects: list[Expect]) -> None:
        self.events = events
        self.expects = expects
        self.done = threading.Event()
        self.leads = False
        self.positions: list[int] = []
        self.error: BaseException | None = None


class GroupCommit:
    """Concurrent appends share transactions; each keeps its own answer.

    The first append to arrive while none is being written leads: it writes every append
    queued by then (itself first) in one call of ``insert_groups`` (one transaction,
    one table lock), hands the lead to the first append queued meanwhile, and returns.
    The others wait for their leader's answer. Alone, an append is written at once; under
    load, a transaction's fixed cost (its round trips under the table lock, which
    serialise every append) is shared by every append that queued during the previous
    one. Should a group's transaction fail for another reason than a taken version, each
    of its appends is written alone (``insert_one``), so one bad append fails only itself.
    """

    def __init__(
        self,
        insert_groups: Callable[
            [Sequence[Sequence[StoredEvent]], Sequence[Sequence[Expect]]], list[list[int] | None]
        ],
        insert_one: Callable[[list[StoredEvent], list[Expect]], list[int]],
    ) -> None:
        self._insert_groups = insert_groups
        self._insert_one = insert_one
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False

    def append(self, events: list[StoredEvent], expects: list[Expect]) -> list[int]:
        me = _Pending(events, expects)
        with self._lock:
            self._queue.append(me)
            if not self._busy:
                self._busy = me.leads = True
        if not me.leads:
            me.done.wait()
        if me.leads:  # at once, or handed the lead by the previous leader
            self._lead()
        if me.error is not None:
            raise me.error
        return me.positions

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[:GROUP_COMMIT_MAX]
            del self._queue[: len(batch)]
        try:
            self._write(batch)
        except BaseException as exc:  # none of them may go unanswered
            for pending in batch:
                if pending.error is None and not pending.positions:
                    pending.error = exc
        finally:
            successor: _Pending | None = None
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                else:
                    self._busy = False
            for pending in batch:
                pending.leads = False
                pending.done.set()
            if successor is not None:
                successor.done.set()

    def _write(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            self._write_alone(batch[0])
            return
        try:
            answers = self._insert_groups([p.events for p in batch], [p.expects for p in batch])
        except Exception:
            for pending in batch:
                self._write_alone(pending)
            return
        for pending, positions in zip(batch, answers, strict=True):
            if positions is None:
                pending.error = ConcurrencyError(
                    "a (stream, version) of the append is taken already, or a stream moved "
                    "since its decision"
                )
            else:
                pending.positions = positions

    def _write_alone(self, pending: _Pending) -> None:
        try:
            pending.positions = self._insert_one(pending.events, pending.expects)
        except BaseException as exc:  # the waiting append raises it
            pending.error = exc


S = TypeVar("S")

STREAM_CACHE_SIZE = 2048
"""Streams whose decoded events ``EventStore.load`` keeps (least recently used go first)."""


class _CommandIndex:
    """Where each command's events are in a kept stream: command id → (index of its
    first event, index of its last). It only grows with its stream (one per stream and
    chain of decoded events; a stream read whole again gets a new one)."""

    def __init__(self) -> None:
        self.spans: dict[UUID, tuple[int, int]] = {}
        self.covered = 0

    def extend(self, stream: tuple[RecordedEvent, ...]) -> None:
        spans = self.spans
        for i in range(self.covered, len(stream)):
            command_id = stream[i].event.command_id
            found = spans.get(command_id)
            spans[command_id] = (i, i) if found is None else (found[0], i)
        self.covered = max(self.covered, len(stream))


def _in_chain(record: RecordedEvent, chain: Sequence[RecordedEvent]) -> bool:
    return record.version <= len(chain) and chain[record.version - 1] is record


class EventStore:
    """Appends events atomically and reads streams and the notification log.

    Loading a stream reads from the database every time, but only what this store has not
    decoded yet: the decoded events of recently loaded streams are kept (events are
    immutable, a stream's versions contiguous), and a load asks the recorder for the rows
    from the last kept version on. That row must still be there with the same position,
    else (a log rewritten under us, e.g. a test's restored dump) the stream is read whole
    again. Appends by other processes are therefore always seen: nothing is served that
    the database was not just asked about.
    """

    def __init__(self, recorder: ProcessRecorder, codec: EventCodec, factory: Any = None) -> None:
        self.recorder = recorder
        self.codec = codec
        self._factory = factory
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.Lock()
        self._streams: OrderedDict[UUID, tuple[RecordedEvent, ...]] = OrderedDict()
        self._indexes: dict[UUID, _CommandIndex] = {}
        self._states: dict[UUID, dict[object, tuple[RecordedEvent, Any]]] = {}
        self._streams_lock = threading.Lock()
        grouped = getattr(recorder, "insert_event_groups", None)
        self._groups = None if grouped is None else GroupCommit(grouped, self._insert)

    @property
    def backend(self) -> str:
        return "postgresql" if "Postgres" in type(self.recorder).__name__ else "sqlite"

    def on_append(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(last_position)`` after every successful append in this process."""
        with self._lock:
            self._listeners.append(listener)

    def append(
        self,
        new_events: Sequence[NewEvent],
        *,
        after: Sequence[RecordedEvent] = (),
        empty: Sequence[UUID] = (),
    ) -> list[int]:
        """Write all events in one transaction; their positions, in order.

        Raises ConcurrencyError when a (stream, version) is taken already, or when one of
        ``after`` (the events the decision saw last in their streams) is not its stream's
        last event in the database any more, or one of the ``empty`` streams (those the
        decision saw with no event) has one: checked in the append's own transaction,
        under its write lock, in the statement that looks for taken versions (no round
        trip of its own). Such an append then also extends this store's kept chain of
        each of those streams with the events it wrote, so that the next command on the
        stream can decide on the kept chain without reading it first (``kept``).

        Concurrent appends share transactions (group commit, where the recorder can:
        PostgreSQL): an append that finds another one being written queues, and the
        next transaction writes every queued append under one table lock, each still all
        or nothing and with its own answer (a taken version fails that append alone).
        An append that finds none being written goes at once.
        """
        stored = [
            StoredEvent(
                originator_id=e.stream_id,
                originator_version=e.version,
                topic=self.codec.topic(e.event),
                state=self.codec.encode(e.event),
            )
            for e in new_events
        ]
        expects: list[Expect] = [(r.stream_id, r.version, r.position) for r in after]
        expects.extend((stream_id, 0, 0) for stream_id in empty)
        if self._groups is not None and stored:
            positions = self._groups.append(stored, expects)
        else:
            positions = self._insert(stored, expects)
        if expects and positions:
            self._extend_kept(after, empty, new_events, stored, positions)
        if positions:
            for listener in list(self._listeners):
                listener(positions[-1])
        return positions

    def _insert(self, stored: list[StoredEvent], expects: list[Expect] | None = None) -> list[int]:
        try:
            if expects:
                ids = self.recorder.insert_events(stored, _expects=expects)
            else:
                ids = self.recorder.insert_events(stored)
        except IntegrityError as exc:
            raise ConcurrencyError(str(exc)) from exc
        return list(ids or [])

    def _extend_kept(
        self,
        after: Sequence[RecordedEvent],
        empty: Sequence[UUID],
        new_events: Sequence[NewEvent],
        stored: Sequence[StoredEvent],
        positions: Sequence[int],
    ) -> None:
        """The kept chains that ended with an event of ``after``, extended with what the
        append just wrote after it (decoded from what was stored, as a load would); and
        the ``empty`` streams kept from what it wrote to them."""
        targets: list[tuple[UUID, RecordedEvent | None]] = [(r.stream_id, r) for r in after]
        targets.extend((stream_id, None) for stream_id in empty)
        for stream_id, last in targets:
            fresh = tuple(
                RecordedEvent(e.stream_id, e.version, p, self.codec.decode(s.topic, s.state))
                for e, s, p in zip(new_events, stored, positions, strict=True)
                if e.stream_id == stream_id
            )
            if not fresh or fresh[0].version != (0 if last is None else last.version) + 1:
                continue
            with self._streams_lock:
                kept = self._streams.get(stream_id, ())
                index = self._indexes.get(stream_id)
                if last is None:
                    if kept:
                        continue
                    index = self._indexes[stream_id] = _CommandIndex()
                elif not kept or kept[-1] is not last or index is None:
                    continue  # another chain by now: the next load will say
                stream = kept + fresh
                self._streams[stream_id] = stream
                self._streams.move_to_end(stream_id)
                index.extend(stream)
                while len(self._streams) > STREAM_CACHE_SIZE:
                    gone, _ = self._streams.popitem(last=False)
                    self._indexes.pop(gone, None)
                    self._states.pop(gone, None)

    def kept(self, stream_id: UUID) -> list[RecordedEvent]:
        """The stream as this store last loaded or appended it, without reading the
        database: possibly behind (another process appended) or a log since rewritten. A
        decision on it is safe only when its append names the last event in ``after``."""
        with self._streams_lock:
            return list(self._streams.get(stream_id, ()))

    def load(self, stream_id: UUID, *, as_of: datetime | None = None) -> list[RecordedEvent]:
        """A stream's events in order; with ``as_of``, only those stamped at or before it."""
        with self._streams_lock:
            known = self._streams.get(stream_id, ())
        rows = self.recorder.select_stream(stream_id, known[-1].version if known else 0)  # type: ignore[attr-defined]
        if known and (
            not rows or rows[0][0] != known[-1].version or rows[0][1] != known[-1].position
        ):
            # the last event we decoded is not there as it was: read the whole stream
            known = ()
            rows = self.recorder.select_stream(stream_id)  # type: ignore[attr-defined]
        elif known:
            rows = rows[1:]
        fresh = tuple(
            RecordedEvent(stream_id, version, position, self.codec.decode(topic, state))
            for version, position, topic, state in rows
        )
        stream = known + fresh if fresh else known
        if stream:
            with self._streams_lock:
                kept = self._streams.get(stream_id, ())
                if len(stream) >= len(kept):
                    self._streams[stream_id] = stream
                    index = self._indexes.get(stream_id)
                    if index is None or not known or (kept and kept[0] is not stream[0]):
                        index = self._indexes[stream_id] = _CommandIndex()  # a new chain
                    index.extend(stream)
                self._streams.move_to_end(stream_id)
                while len(self._streams) > STREAM_CACHE_SIZE:
                    gone, _ = self._streams.popitem(last=False)
                    self._indexes.pop(gone, None)
                    self._states.pop(gone, None)
        recorded = list(stream)
        if as_of is not None:
            recorded = [r for r in recorded if r.event.at <= as_of]
        return recorded

    def command_span(
        self, stream_id: UUID, command_id: UUID, history: Sequence[RecordedEvent]
    ) -> tuple[RecordedEvent, RecordedEvent] | bool | None:
        """The first and last events of ``command_id`` in ``history`` (a load of the
        stream by this store), found through the index of the kept stream; None when the
        command has none there; False when the index cannot tell (the stream is no longer
        kept, or moved on since): then scan ``history``."""
        if not history:
            return None
        with self._streams_lock:
            kept = self._streams.get(stream_id, ())
            index = self._indexes.get(stream_id)
        last = len(history) - 1
        if index is None or len(kept) <= last or kept[last] is not history[last]:
            return False  # not the chain of events this load returned
        span = index.spans.get(command_id)
        if span is None:
            return None if index.covered > last else False
        first, final = span
        if final > last:
            return False  # the command appended again after this load
        return history[first], history[final]

    def fold(
        self,
        history: Sequence[RecordedEvent],
        evolve: Callable[[S | None, DomainEvent], S],
    ) -> S | None:
        """``history`` (a load of one stream by this store) folded with ``evolve``, from
        the state this store folded last time for that stream with that ``evolve`` when
        that state's last event is one of this very load's (the same decoded object: the
        load checked its row against the database), else from the start. States must be
        immutable. A busy stream's command then folds only the events it has not seen,
        not the whole stream; the store's unique (stream, version) still judges its
        append."""
        if not history:
            return None
        stream_id = history[0].stream_id
        whole = history[0].version == 1 and history[-1].version == len(history)
        state: S | None = None
        start = 0
        if whole:  # a whole stream (not one read as of a moment)
            with self._streams_lock:
                kept = self._states.get(stream_id, {}).get(evolve)
            if kept is not None:
                last, folded = kept
                if last.version <= len(history) and history[last.version - 1] is last:
                    state, start = folded, last.version
        for record in history[start:] if start else history:
            state = evolve(state, record.event)
        if whole and start < len(history):
            with self._streams_lock:
                # kept while its stream is, and only for this store's chain of events
                # (an earlier state of it, e.g. of a read as of a moment, replaces none)
                chain = self._streams.get(stream_id, ())
                states = self._states.setdefault(stream_id, {})
                kept = states.get(evolve)
                if _in_chain(history[-1], chain) and (
                    kept is None or not _in_chain(kept[0], chain) or kept[0].version < len(history)
                ):
                    states[evolve] = (history[-1], state)
        return state

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        """Up to ``limit`` notifications with positions greater than ``after``."""
        return self.recorder.select_notifications(after, limit, inclusive_of_start=False)

    def read_rows(
        self, after: int, limit: int, max_bytes: int | None = None
    ) -> list[NotificationRow]:
        """Like ``read`` as plain tuples (position, stream id text, version, topic, state).

        With ``max_bytes`` the page also stops before its events' stored states exceed
        that many bytes (it always holds at least one event): a reader's memory is then
        bounded whatever the events' sizes."""
        rows: list[NotificationRow] = self.recorder.select_notification_rows(  # type: ignore[attr-defined]
            after, limit, max_bytes
        )
        return rows

    def read_topic_rows(
        self, after: int, limit: int, topics: Collection[str]
    ) -> tuple[list[NotificationRow], int]:
        """Like ``read_rows`` for the events of ``topics`` only, filtered by the database;
        with the position up to which the log was read (the end of the page when it is
        full, else the end of the log): a follower that handles few types reads past the
        rest without fetching them."""
        found: tuple[list[NotificationRow], int] = self.recorder.select_topic_rows(  # type: ignore[attr-defined]
            after, limit, sorted(topics)
        )
        return found

    def read_page(self, after: int, limit: int) -> pa.Table:
        """The next page of the log as an Arrow table (``projections.base.PAGE_SCHEMA``)."""
        page: pa.Table = self.recorder.select_notification_page(after, limit)  # type: ignore[attr-defined]
        return page

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        if self._factory is not None:
            self._factory.close()


def open_event_store(url: str, codec: EventCodec) -> EventStore:
    factory = InfrastructureFactory.construct(env=recorder_env(url))
    recorder = factory.process_recorder()
    return EventStore(recorder, codec, factory)
