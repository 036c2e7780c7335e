"""Bulk appends: many events in ONE transaction, positions gap-free, the hash chain kept.

An import writes hundreds of thousands of new streams at once; appending them through
``EventStore.append`` one command at a time costs a commit each. Here the whole batch
goes in one transaction, all or nothing:

- **PostgreSQL**: the events table is locked (EXCLUSIVE, as every append locks it, so no
  other writer numbers events meanwhile), the next positions are read from the table's
  own sequence and given explicitly, the chain rows are computed here from the chain's
  head (``event_store.chain``: the same hash as every append's), and both go in with
  ``COPY``. The sequence is moved past the batch last, just before the commit: a batch
  refused on the way (a (stream, version) taken, a broken connection) rolls back having
  consumed no number, so positions stay gap-free.
- **SQLite**: the recorder's own per-append insert (events, then their chain rows), run
  chunk after chunk in one write transaction.

``chunks`` is any iterable of event chunks (lists), so a caller can stream a spooled
batch without holding it in memory; ``progress`` hears how many events each chunk wrote.
Listeners of the store (the projector, the process managers) are told once, after the
commit.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg import errors as pg_errors
from psycopg.copy import QueuedLibpqWriter
from psycopg.rows import dict_row, tuple_row
from psycopg.sql import SQL

from event_store.chain import ZERO_HASH, ChainRow
from event_store.codec import PROVENANCE_FIELDS, dumps_fields
from event_store.store import ConcurrencyError, EventStore

StoredRow = tuple[UUID, int, str, bytes]
"""(stream id, version, topic, state): an encoded event ready for the store."""

_pack = struct.Struct(">Iqi").pack
_len = struct.Struct(">i").pack
_event_pos = struct.Struct(">iq").pack


@dataclass(frozen=True)
class BulkResult:
    events: int
    first_position: int | None
    last_position: int | None


PRODUCER_WAIT_SECONDS = 120
"""How long a bulk append's transaction may wait for its next chunk."""

_CHECKED: set[type] = set()


def encode(store: EventStore, stream_id: UUID, version: int, event: Any) -> StoredRow:
    """An event as the store keeps it: the bytes ``EventCodec.encode`` writes, made from
    the event's ``__dict__`` (a dataclass sets it in field order) rather than through
    ``dataclasses.fields``, a third of an imported row's cost. The first event of each
    type is compared with the codec's own encoding, so a difference cannot go unnoticed."""
    kind = type(event)
    fields = dict(event.__dict__)
    for name in PROVENANCE_FIELDS:
        if fields.get(name) is None:
            fields.pop(name, None)
    fields["schema_version"] = kind.schema_version
    state = dumps_fields(fields)
    if kind not in _CHECKED:
        if state != store.codec.encode(event):  # pragma: no cover - a codec change
            raise AssertionError(f"bulk encoding of {kind.__name__} differs from the codec's")
        _CHECKED.add(kind)
    return (stream_id, version, kind.__name__, state)


def existing_streams(store: EventStore, stream_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these streams have at least one event (one query per 5,000 ids)."""
    found = existing_stream_ids(store, [s.bytes for s in stream_ids])
    return {UUID(bytes=raw) for raw in found}


def existing_stream_ids(store: EventStore, stream_ids: Sequence[bytes]) -> set[bytes]:
    """``existing_streams`` for ids as their 16 bytes (an import's pooled path asks this for
    every batch, and makes no ``UUID`` of its rows' ids)."""
    found: set[bytes] = set()
    recorder: Any = store.recorder
    for start in range(0, len(stream_ids), 5_000):
        chunk = list(stream_ids[start : start + 5_000])
        if not chunk:
            continue
        if store.backend == "postgresql":
            statement = recorder._sql(
                "SELECT DISTINCT originator_id FROM {schema}.{table} "
                "WHERE originator_id = ANY(%s::uuid[]) AND originator_version = 1"
            )
            # one text literal of the ids, not an array of UUIDs adapted one by one (an
            # import asks this for every batch of rows)
            ids = "{" + ",".join([s.hex() for s in chunk]) + "}"
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(statement, (ids,))
                for row in curs.fetchall():
                    value = row["originator_id"]
                    found.add(value.bytes if isinstance(value, UUID) else UUID(str(value)).bytes)
        else:
            marks = ",".join("?" * len(chunk))
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(
                    f"SELECT originator_id FROM {recorder.events_table_name} "
                    f"WHERE originator_version = 1 AND originator_id IN ({marks})",
                    [s.hex() for s in chunk],
                )
                found.update(UUID(row[0]).bytes for row in c.fetchall())
    return found


def link_chunk(prev: bytes, first: int, rows: Sequence[StoredRow]) -> list[ChainRow]:
    """Chain rows for ``rows`` given positions ``first``, ``first + 1``, … (the hash of
    ``event_store.chain.link``, inlined: this runs once per imported event)."""
    out: list[ChainRow] = []
    append = out.append
    sha256 = hashlib.sha256
    join = b"".join
    position = first
    for stream_id, version, topic_text, state in rows:
        sid = stream_id.hex.encode()
        topic = topic_text.encode()
        prev = sha256(
            join(
                (
                    prev,
                    _pack(8, position, len(sid)),
                    sid,
                    _pack(8, version, len(topic)),
                    topic,
                    _len(len(state)),
                    state,
                )
            )
        ).digest()
        append((position, prev))
        position += 1
    return out


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""A binary COPY's header: the signature, no flags, no header extension."""
_COPY_TRAILER = b"\xff\xff"
_copy_head = struct.Struct(">hi16s").pack
"""5 fields; the stream id (16 bytes)"""
_chain_row = struct.Struct(">hIqi").pack
"""2 fields: the position (8 bytes), the hash's length (32)"""
_body_head = struct.Struct(">Iqi")
"""the version (8 bytes), the topic's length: the same bytes in the COPY and the chain"""


@dataclass
class Prepared:
    """Events made ready for the PostgreSQL ``COPY`` and the chain where they were encoded
    (an import's worker processes), in three columns, so the writing process only numbers
    them, hashes them and sends them. A ``bodies`` item (the version, the topic and the
    state, each a field as the chain hashes it) is also the binary COPY's row from the
    version on: one ``bytes`` serves both."""

    heads: list[bytes] = field(default_factory=list)
    """the binary COPY row's start: its field count, the stream id's 16 bytes"""
    ids: list[bytes] = field(default_factory=list)
    """the stream id as the chain hashes it: 32 hex characters"""
    bodies: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.bodies)

    def add(self, row: StoredRow) -> None:
        stream_id, version, topic_text, state = row
        topic = topic_text.encode()
        self.heads.append(_copy_head(5, 16, stream_id.bytes))
        self.ids.append(stream_id.hex.encode())
        self.bodies.append(
            b"".join((_body_head.pack(8, version, len(topic)), topic, _len(len(state)), state))
        )

    def extend(self, other: Prepared, start: int = 0, stop: int | None = None) -> None:
        """``other``'s events ``start`` to ``stop`` added."""
        self.heads += other.heads[start:stop]
        self.ids += other.ids[start:stop]
        self.bodies += other.bodies[start:stop]

    def rows(self) -> list[StoredRow]:
        """The events as (stream id, version, topic, state) again."""
        out: list[StoredRow] = []
        unpack = _body_head.unpack_from
        for sid, body in zip(self.ids, self.bodies, strict=True):
            _, version, size = unpack(body)
            out.append(
                (UUID(sid.decode()), version, body[16 : 16 + size].decode(), body[20 + size :])
            )
        return out


def prepare(rows: Iterable[StoredRow]) -> Prepared:
    out = Prepared()
    for row in rows:
        out.add(row)
    return out


Chunk = Sequence[StoredRow] | Prepared
"""What ``bulk_append`` takes: events as rows, or prepared."""


def copy_rows(prev: bytes, first: int, rows: Chunk, chained: bool) -> tuple[bytes, bytes, bytes]:
    """The binary ``COPY`` rows of ``rows`` at positions ``first``, ``first + 1``, … for the
    events table (id, version, topic, state, position) and, when ``chained``, for the chain
    table (position, hash; the hash of ``event_store.chain.link``, computed in the same
    pass); and the last hash. Rows only: a COPY's data is ``_COPY_SIGNATURE``, the rows of
    any number of chunks, ``_COPY_TRAILER``."""
    ready = rows if isinstance(rows, Prepared) else prepare(rows)
    events: list[bytes] = []
    chain: list[bytes] = []
    add_event = events.append
    add_link = chain.append
    sha256 = hashlib.sha256
    join = b"".join
    position = first
    for head, sid, body in zip(ready.heads, ready.ids, ready.bodies, strict=True):
        add_event(head)
        add_event(body)
        add_event(_event_pos(8, position))
        if chained:
            prev = sha256(join((prev, _pack(8, position, 32), sid, body))).digest()
            add_link(_chain_row(2, 8, position, 32))
            add_link(prev)
        position += 1
    return join(events), join(chain) if chained else b"", prev


def bulk_append(
    store: EventStore,
    chunks: Iterable[Chunk],
    *,
    progress: Callable[[int], object] | None = None,
) -> BulkResult:
    """Append every event of ``chunks`` in one transaction (see the module's docstring).

    Raises ConcurrencyError when a (stream, version) is taken already: nothing is written.
    """
    if store.backend == "postgresql":
        result = _postgres(store, chunks, progress)
    else:
        result = _sqlite(store, chunks, progress)
    if result.last_position is not None:
        for listener in list(store._listeners):
            listener(result.last_position)
    return result


def _postgres(
    store: EventStore,
    chunks: Iterable[Chunk],
    progress: Callable[[int], object] | None,
) -> BulkResult:
    recorder: Any = store.recorder
    chained = recorder.chain_enabled
    first: int | None = None
    position = 0
    head: ChainRow | None = None
    count = 0
    try:
        with recorder.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor(row_factory=dict_row) as curs:
                # the chunks may come from a producer still deciding them (an import's
                # pipeline): the transaction may wait between statements
                curs.execute(
                    SQL("SET LOCAL idle_in_transaction_session_timeout = '{}s'").format(
                        SQL(str(PRODUCER_WAIT_SECONDS))
                    )
                )
                recorder._lock_table(curs)
                curs.execute(
                    "SELECT pg_get_serial_sequence(%s, 'notification_id') AS seq",
                    (f'"{recorder.datastore.schema}"."{recorder.events_table_name}"',),
                )
                row = curs.fetchone()
                assert row is not None
                sequence = row["seq"]
                assert sequence is not None
                curs.execute(SQL("SELECT last_value, is_called FROM {}").format(SQL(sequence)))
                seq = curs.fetchone()
                assert seq is not None
                position = seq["last_value"] + 1 if seq["is_called"] else seq["last_value"]
                first = position
                prev = ZERO_HASH
                if chained:
                    # the chain's head (sealing the events recorded before the chain, if
                    # any, as every append does)
                    prev = recorder._chain_prev(curs, position)
            # binary: the states go as they are (text COPY would write bytea as hex)
            copy_events = recorder._sql(
                "COPY {schema}.{table} "
                "(originator_id, originator_version, topic, state, notification_id) "
                "FROM STDIN (FORMAT BINARY)"
            )
            copy_chain = recorder._sql(
                "COPY {schema}.{chain} (position, hash) FROM STDIN (FORMAT BINARY)"
            )
            id_type = recorder.datastore.originator_id_type
            raw = id_type == "uuid"
            with conn.cursor(row_factory=tuple_row) as curs:
                if raw:
                    # ONE COPY of the events for every chunk, its rows built here as bytes
                    # and the chain hashed in the same pass (a few Python calls per event
                    # instead of psycopg's per field), written by a thread while the next
                    # chunk is made: no round trip per chunk, PostgreSQL takes the rows as
                    # they come. The chain's rows (46 bytes an event) go in after them.
                    links: list[bytes] = [_COPY_SIGNATURE]
                    with curs.copy(copy_events, writer=QueuedLibpqWriter(curs)) as copy:
                        copy.write(_COPY_SIGNATURE)
                        for chunk in chunks:
                            if not chunk:
                                continue
                            events_data, chain_data, prev = copy_rows(
                                prev, position, chunk, chained
                            )
                            copy.write(events_data)
                            links.append(chain_data)
                            position += len(chunk)
                            count += len(chunk)
                            if progress is not None:
                                progress(len(chunk))
                        copy.write(_COPY_TRAILER)
                    if chained and count:
                        links.append(_COPY_TRAILER)
                        with curs.copy(copy_chain) as copy:
                            copy.write(b"".join(links))
                        head = (position - 1, prev)
                for chunk in () if raw else chunks:
                    if not chunk:
                        continue
                    if isinstance(chunk, Prepared):
                        chunk = chunk.rows()
                    with curs.copy(copy_events) as copy:
                        copy.set_types([id_type, "int8", "text", "bytea", "int8"])
                        p = position
                        for stream_id, version, topic, state in chunk:
                            copy.write_row((stream_id, version, topic, state, p))
                            p += 1
                    if chained:
                        chain_rows = link_chunk(prev, position, chunk)
                        with curs.copy(copy_chain) as copy:
                            copy.set_types(["int8", "bytea"])
                            for link in chain_rows:
                                copy.write_row(link)
                        prev = chain_rows[-1][1]
                        head = chain_rows[-1]
                    position += len(chunk)
                    count += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                if count:
                    # last, so that a refused batch consumed no number
                    curs.execute("SELECT setval(%s::regclass, %s, true)", (sequence, position - 1))
                    recorder._notify_channel(curs)
    except (pg_errors.UniqueViolation, IntegrityError) as exc:
        raise ConcurrencyError(f"an imported stream exists already: {exc}") from exc
    if count == 0:
        return BulkResult(0, None, None)
    if head is not None:
        recorder._chain_head = head
    return BulkResult(count, first, position - 1)


def _sqlite(
    store: EventStore,
    chunks: Iterable[Chunk],
    progress: Callable[[int], object] | None,
) -> BulkResult:
    recorder: Any = store.recorder
    first: int | None = None
    last: int | None = None
    count = 0
    try:
        with recorder.datastore.transaction(commit=True) as c:
            for chunk in chunks:
                if not chunk:
                    continue
                rows = chunk.rows() if isinstance(chunk, Prepared) else chunk
                stored = [StoredEvent(s, v, t, b) for s, v, t, b in rows]
                ids = recorder._insert_events(c, stored)
                if ids:
                    first = ids[0] if first is None else first
                    last = ids[-1]
                count += len(chunk)
                if progress is not None:
                    progress(len(chunk))
    except IntegrityError as exc:
        raise ConcurrencyError(f"an imported stream exists already: {exc}") from exc
    recorder._chain_head = None  # read the chain's head again on the next append
    return BulkResult(count, first, last)


__all__ = [
    "BulkResult",
    "Chunk",
    "Prepared",
    "StoredRow",
    "bulk_append",
    "copy_rows",
    "encode",
    "existing_stream_ids",
    "existing_streams",
    "link_chunk",
    "prepare",
]
