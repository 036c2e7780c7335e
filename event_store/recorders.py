"""eventsourcing recorders extended with one query: a stream with its global positions.

Auditors' history shows each event's position in the notification log, and an
idempotent replay of a command returns the position of the event it first appended.
The library's recorders return streams without positions, so these subclasses add
``select_stream`` and otherwise behave exactly like the library's (the library's own
recorder test cases run against them in tests/test_recorders.py).
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pyarrow as pa
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal
from pyarrow import csv as pa_csv

from event_store.chain import (
    CHAIN_TABLE,
    ZERO_HASH,
    ChainError,
    ChainRow,
    EventRow,
    link_rows,
    link_stored,
)

Expect = tuple[UUID, int, int]
"""(stream, version, position): an append's decision saw that event last in that stream
(version 0, position 0: saw the stream empty); the append goes in only while it still is
the stream's last event in the database."""

StreamRow = tuple[int, int, str, bytes]
"""(originator_version, notification_id, topic, state)"""

PAGE_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("stream_id", pa.string()),
        ("version", pa.int64()),
        ("topic", pa.string()),
        ("state", pa.string()),
    ]
)
"""A page of the notification log as an Arrow table; ``state`` is the event's JSON."""

NotificationRow = tuple[int, str, int, str, bytes]
"""(notification_id, originator_id as canonical UUID text, originator_version, topic, state)

The projector's fast path: plain tuples, no per-row UUID or dataclass objects."""


def _dashed(hex_id: str) -> str:
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def _fetch(cursor: Any, chunk: int) -> Iterator[Any]:
    """The rows of an executed cursor, fetched ``chunk`` at a time."""
    while rows := cursor.fetchmany(chunk):
        yield from rows


def last_within_budget(sizes: Sequence[tuple[int, int]], max_bytes: int) -> int | None:
    """The position of the last of the (position, size) rows that fit, in order, within
    ``max_bytes`` (the first always does: a page never stops short of one event)."""
    total = 0
    last: int | None = None
    for position, size in sizes:
        total += size or 0
        if last is not None and total > max_bytes:
            break
        last = position
    return last


def _insert_chain_rows(c: SQLiteCursor, rows: Sequence[ChainRow]) -> None:
    c.executemany(f"INSERT INTO {CHAIN_TABLE} (position, hash) VALUES (?, ?)", rows)


class _ChainHead:
    """The hash chain's state shared by both recorders (see ``event_store.chain``).

    ``_chain_head`` is the (position, hash) of the last chain row this recorder committed.
    An append whose first position is exactly one more chains onto it without reading the
    chain table: the append runs under the store's write lock (SQLite's write transaction,
    PostgreSQL's EXCLUSIVE lock on the events table, both taken by the event INSERT before
    the chain is touched), and chain rows are written only under that lock, so no row can
    lie between. Any other first position (another process appended, a number was burned,
    nothing cached yet) reads the chain's last row instead. The head is set only after the
    transaction committed, never from a transaction that may still roll back.
    """

    chain_enabled: bool = True
    """Off only for benchmarks' baselines: events appended with it off are never chained."""
    _chain_head: ChainRow | None = None

    def _cached_prev(self, first: int) -> bytes | None:
        head = self._chain_head
        return head[1] if head is not None and head[0] == first - 1 else None

    @staticmethod
    def _report_head(kwargs: dict[str, Any], rows: list[ChainRow]) -> None:
        out: list[ChainRow] | None = kwargs.get("_chain_out")
        if out is not None:
            out.append(rows[-1])


class LeadLedgerSQLiteRecorder(_ChainHead, SQLiteProcessRecorder):
    # --- hash chain (event_store.chain) ---------------------------------------------------

    _chain_events_sql = (
        "SELECT rowid, CAST(originator_id AS BLOB), originator_version, CAST(topic AS BLOB), "
        "state FROM {events} WHERE rowid > ? AND rowid < ? ORDER BY rowid"
    )

    def construct_create_table_statements(self) -> list[str]:
        statements: list[str] = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} "
            "(position INTEGER PRIMARY KEY, hash BLOB NOT NULL)"
        )
        return statements

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        out: list[ChainRow] = []
        ids: Sequence[int] | None = super().insert_events(stored_events, _chain_out=out, **kwargs)
        if out:  # committed
            self._chain_head = out[-1]
        return ids

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = super()._insert_events(c, stored_events, **kwargs)
        expects: Sequence[Expect] = kwargs.get("_expects") or ()
        if expects and self._stale(c, expects, stored_events):
            raise IntegrityError("a stream moved since the append's decision saw it")
        if ids and self.chain_enabled:
            prev = self._cached_prev(ids[0])
            if prev is None:
                prev = self._chain_prev(c, ids[0])
            rows = link_stored(prev, ids, stored_events)
            _insert_chain_rows(c, rows)
            self._report_head(kwargs, rows)
        return ids

    def _stale(
        self, c: SQLiteCursor, expects: Sequence[Expect], written: Sequence[StoredEvent]
    ) -> bool:
        """Whether, right after ``written`` went in (under the write lock the INSERT took),
        some expected event is no longer its stream's last before ``written``: its row is
        not there at its position, or its stream has other rows after it."""
        for stream_id, version, position in expects:
            mine = sum(1 for e in written if e.originator_id == stream_id)
            c.execute(self._stale_sql, (stream_id.hex, version, stream_id.hex, version))
            row = c.fetchone()
            if (row[0] or 0) != position or row[1] != mine:
                return True
        return False

    @property
    def _stale_sql(self) -> str:
        table = self.events_table_name
        return (
            f"SELECT (SELECT rowid FROM {table} WHERE originator_id = ? AND "
            f"originator_version = ?), (SELECT count(*) FROM {table} "
            "WHERE originator_id = ? AND originator_version > ?)"
        )

    def insert_event_groups(
        self,
        groups: Sequence[Sequence[StoredEvent]],
        expects: Sequence[Sequence[Expect]] | None = None,
    ) -> list[list[int] | None]:
        """Group commit (as the PostgreSQL recorder's): several appends in ONE write
        transaction, each all or nothing on its own (a savepoint each: one whose
        (stream, version) is taken, or whose expected last events (``expects``, one list
        per group) are not their streams' last any more, rolls back alone, its rowids
        unused, and answers None); then the chain rows of every event written, in order."""
        answers: list[list[int] | None] = [None] * len(groups)
        written: list[StoredEvent] = []
        ids: list[int] = []
        out: list[ChainRow] = []
        with self.datastore.transaction(commit=True) as c:
            for index, group in enumerate(groups):
                c.execute("SAVEPOINT leadledger_append")
                try:
                    got = list(SQLiteProcessRecorder._insert_events(self, c, group) or [])
                    if expects and expects[index] and self._stale(c, expects[index], group):
                        raise sqlite3.IntegrityError("stale")
                except sqlite3.IntegrityError:
                    c.execute("ROLLBACK TO leadledger_append")
                    c.execute("RELEASE leadledger_append")
                    continue
                c.execute("RELEASE leadledger_append")
                answers[index] = got
                written.extend(group)
                ids.extend(got)
            if ids and self.chain_enabled:
                prev = self._cached_prev(ids[0])
                if prev is None:
                    prev = self._chain_prev(c, ids[0])
                out = link_stored(prev, ids, written)
                _insert_chain_rows(c, out)
        if out:  # committed
            self._chain_head = out[-1]
        return answers

    def _chain_prev(self, c: SQLiteCursor, first: int) -> bytes:
        """The hash to chain the event at ``first`` onto, read inside the write transaction;
        an empty chain first seals the events recorded before it existed."""
        c.execute(f"SELECT position, hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        if row is not None:
            if row[0] >= first:
                raise ChainError(
                    f"the event chain has a row at position {row[0]} but the new event got "
                    f"position {first}: the last event(s) were deleted; run `leadledger verify`"
                )
            return bytes(row[1])
        c.execute(self._chain_events_sql.format(events=self.events_table_name), (0, first))
        sealed = link_rows(ZERO_HASH, [tuple(r) for r in c.fetchall()])
        if not sealed:
            return ZERO_HASH
        c.executemany(f"INSERT INTO {CHAIN_TABLE} (position, hash) VALUES (?, ?)", sealed)
        return sealed[-1][1]

    @contextmanager
    def chain_scan(self, chunk: int) -> Iterator[tuple[Iterator[EventRow], Iterator[ChainRow]]]:
        """Events and chain rows in position order, read in one snapshot (WAL readers do
        not block the writer)."""
        with (
            self.datastore.get_connection(commit=False) as conn,
            conn.transaction(commit=False) as c,
        ):
            events = c.sqlite_cursor
            chain = conn.cursor().sqlite_cursor
            try:
                events.row_factory = None
                chain.row_factory = None
                events.execute(
                    self._chain_events_sql.format(events=self.events_table_name),
                    (0, 2**63 - 1),
                )
                chain.execute(f"SELECT position, hash FROM {CHAIN_TABLE} ORDER BY position")
                yield _fetch(events, chunk), _fetch(chain, chunk)
            finally:
                chain.close()

    def seal_chain(self, chunk: int) -> int:
        """Chain the events after the chain head (all of them if the chain is empty)."""
        with self.datastore.get_connection(commit=True) as conn:
            write = conn.cursor().sqlite_cursor
            read = conn.cursor().sqlite_cursor
            read.row_factory = None
            try:
                write.execute("BEGIN IMMEDIATE")
                write.execute(
                    f"SELECT position, hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
                )
                row = write.fetchone()
                head: ChainRow = (row[0], bytes(row[1])) if row is not None else (0, ZERO_HASH)
                read.execute(
                    self._chain_events_sql.format(events=self.events_table_name),
                    (head[0], 2**63 - 1),
                )
                sealed = 0
                while rows := read.fetchmany(chunk):
                    out = link_rows(head[1], rows)
                    write.executemany(
                        f"INSERT INTO {CHAIN_TABLE} (position, hash) VALUES (?, ?)", out
                    )
                    head = out[-1]
                    sealed += len(out)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                read.close()
                write.close()
        if sealed:
            self._chain_head = head
        return sealed

    # --- streams with positions -------------------------------------------------------------

    def select_stream(self, originator_id: UUID, from_version: int = 0) -> list[StreamRow]:
        """The stream's rows with versions at or after ``from_version`` (all by default)."""
        statement = (
            f"SELECT originator_version, rowid, topic, state FROM {self.events_table_name} "
            "WHERE originator_id = ? AND originator_version >= ? ORDER BY originator_version"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (originator_id.hex, from_version))
            return [(row[0], row[1], row[2], bytes(row[3])) for row in c.fetchall()]

    def select_notification_rows(
        self, after: int, limit: int, max_bytes: int | None = None
    ) -> list[NotificationRow]:
        """Up to ``limit`` rows after ``after``; with ``max_bytes``, only as many as fit in
        that many bytes of event state (at least one), measured before any is read."""
        table = self.events_table_name
        with self.datastore.transaction(commit=False) as c:
            if max_bytes is None:
                c.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, limit),
                )
            else:
                c.execute(
                    f"SELECT rowid, length(state) FROM {table} WHERE rowid > ? "
                    "ORDER BY rowid LIMIT ?",
                    (after, limit),
                )
                upto = last_within_budget(c.fetchall(), max_bytes)
                if upto is None:
                    return []
                c.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                    (after, upto),
                )
            return [
                (row[0], _dashed(row[1]) if len(row[1]) == 32 else row[1], row[2], row[3], row[4])
                for row in c.fetchall()
            ]

    def select_notification_page(self, after: int, limit: int) -> pa.Table:
        """The next page of the log as an Arrow table (see ``projections.base.PAGE_SCHEMA``)."""
        return _page_from_rows(self.select_notification_rows(after, limit))

    def select_topic_rows(
        self, after: int, limit: int, topics: Sequence[str]
    ) -> tuple[list[NotificationRow], int]:
        """Up to ``limit`` rows of the given topics after ``after``, and how far the log was
        read: the last row's position when the page is full, else the log's end."""
        table = self.events_table_name
        marks = ", ".join("?" for _ in topics) or "NULL"
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}")
            head = int(c.fetchone()[0])
            if head <= after:
                return [], after
            c.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {table} WHERE rowid > ? AND rowid <= ? AND topic IN ({marks}) "
                "ORDER BY rowid LIMIT ?",
                (after, head, *topics, limit),
            )
            rows: list[NotificationRow] = [
                (row[0], _dashed(row[1]) if len(row[1]) == 32 else row[1], row[2], row[3], row[4])
                for row in c.fetchall()
            ]
        return rows, rows[-1][0] if len(rows) >= limit else head


def _page_from_rows(rows: list[NotificationRow]) -> pa.Table:
    return pa.table(
        {
            "position": pa.array([r[0] for r in rows], pa.int64()),
            "stream_id": pa.array([r[1] for r in rows], pa.string()),
            "version": pa.array([r[2] for r in rows], pa.int64()),
            "topic": pa.array([r[3] for r in rows], pa.string()),
            "state": pa.array([bytes(r[4]) for r in rows], pa.binary()).cast(pa.string()),
        }
    )


class LeadLedgerPostgresRecorder(_ChainHead, PostgresProcessRecorder):
    """Adds stream reads with positions, and keeps positions gap-free on refusals.

    The library numbers events from a sequence inside its INSERT, so an append refused
    by the unique (stream, version) key would burn the numbers of its whole batch and
    leave a hole in the notification log. Here the taken versions are looked for first,
    under the same exclusive table lock, and a refused append consumes no number.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._queries: dict[str, bytes] = {}
        super().__init__(*args, **kwargs)
        self._lock_queries = [
            q.as_bytes(None) if isinstance(q, Composable) else q for q in self.lock_table_statements
        ]
        self.sql_create_statements.append(
            self._sql(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} "
                "(position bigint PRIMARY KEY, hash bytea NOT NULL)"
            )
        )
        stream_id = (
            "replace(originator_id::text, '-', '')"
            if self.datastore.originator_id_type == "uuid"
            else "originator_id"
        )
        self._chain_events_sql = self._sql(
            "SELECT notification_id, convert_to(" + stream_id + ", 'UTF8') AS stream_id, "
            "originator_version, convert_to(topic, 'UTF8') AS topic, state FROM {schema}.{table} "
            "WHERE notification_id > %s AND notification_id < %s ORDER BY notification_id"
        ).as_bytes(None)
        self._chain_last_sql = self._sql(
            "SELECT position, hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1"
        ).as_bytes(None)
        self._chain_insert_sql = self._sql(
            "INSERT INTO {schema}.{chain} (position, hash) "
            "SELECT * FROM unnest(%s::bigint[], %s::bytea[])"
        ).as_bytes(None)

    def _sql(self, text: str, **parts: Any) -> Composed:
        """A statement on this recorder's events table ({schema}.{table} in ``text``;
        {chain} is the hash chain's table)."""
        return SQL(text).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            chain=Identifier(CHAIN_TABLE),
            **parts,
        )

    def _query(self, text: str, **parts: Any) -> bytes:
        """``_sql(text, **parts)`` as the bytes psycopg sends, composed once per recorder
        (a statement's ``parts`` for one ``text`` never change in a recorder): composing
        a statement costs more Python than the rest of a short round trip's."""
        found = self._queries.get(text)
        if found is None:
            found = self._queries[text] = self._sql(text, **parts).as_bytes(None)
        return found

    def _lock_table(self, curs: Cursor[DictRow]) -> None:
        """The library's EXCLUSIVE lock of the events table, its statements composed once."""
        for statement in self._lock_queries:
            curs.execute(statement, prepare=True)

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self._query("NOTIFY {channel}", channel=Identifier(self.channel_name)))

    # --- hash chain (event_store.chain) ---------------------------------------------------

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        out: list[ChainRow] = []
        ids: Sequence[int] | None = super().insert_events(stored_events, _chain_out=out, **kwargs)
        if out:  # committed (the library retries whole transactions: the last one counts)
            self._chain_head = out[-1]
        return ids

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's hook right after the INSERT, in its transaction and under the
        EXCLUSIVE table lock: write the events' chain rows."""
        plan = kwargs.get("_plan")
        if plan is not None:  # insert_event_groups: only the accepted groups' events
            stored_events = plan["events"]
        ids: Sequence[int] | None = super()._fetch_ids_after_insert_events(
            curs, stored_events, **kwargs
        )
        if ids and self.chain_enabled:
            prev = self._cached_prev(ids[0])
            if prev is None:
                prev = self._chain_prev(curs, ids[0])
            rows = link_stored(prev, ids, stored_events)
            self._insert_chain_rows(curs, rows)
            self._report_head(kwargs, rows)
        return ids

    def _chain_prev(self, curs: Cursor[DictRow], first: int) -> bytes:
        """The hash to chain the event at ``first`` onto; an empty chain first seals the
        events recorded before it existed. (A chain row at or after ``first`` cannot be:
        positions come from a sequence; were one there, the chain row's INSERT fails.)"""
        curs.execute(self._chain_last_sql)
        row = curs.fetchone()
        if row is not None:
            return bytes(row["hash"])
        curs.execute(self._chain_events_sql, (0, first))
        sealed = link_rows(ZERO_HASH, [tuple(r.values()) for r in curs.fetchall()])
        if not sealed:
            return ZERO_HASH
        self._insert_chain_rows(curs, sealed)
        return sealed[-1][1]

    def _insert_chain_rows(self, curs: Cursor[DictRow], rows: list[ChainRow]) -> None:
        """One statement for the whole batch (``executemany`` costs a statement per row
        on the server, about 20 µs per event in a 100-event batch)."""
        curs.execute(
            self._chain_insert_sql, ([r[0] for r in rows], [r[1] for r in rows]), prepare=True
        )

    @contextmanager
    def chain_scan(self, chunk: int) -> Iterator[tuple[Iterator[EventRow], Iterator[ChainRow]]]:
        """Events and chain rows in position order: two server-side cursors in one
        REPEATABLE READ snapshot (writers are not blocked)."""
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with (
                conn.cursor(
                    name="leadledger_chain_events", row_factory=tuple_row, binary=True
                ) as events,
                conn.cursor(
                    name="leadledger_chain_rows", row_factory=tuple_row, binary=True
                ) as chain,
            ):
                events.itersize = chain.itersize = chunk
                events.execute(self._chain_events_sql, (0, 2**63 - 1))
                chain.execute(self._sql("SELECT position, hash FROM {schema}.{chain} ORDER BY 1"))
                yield _fetch(events, chunk), _fetch(chain, chunk)

    def seal_chain(self, chunk: int) -> int:
        """Chain the events after the chain head (all of them if the chain is empty), under
        the events table's lock; chain rows go in with COPY."""
        sealed = 0
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._lock_table(curs)
                curs.execute(self._chain_last_sql)
                row = curs.fetchone()
            head: ChainRow = (
                (row["position"], bytes(row["hash"])) if row is not None else (0, ZERO_HASH)
            )
            with (
                conn.cursor(name="leadledger_chain_seal", row_factory=tuple_row) as read,
                conn.cursor() as write,
            ):
                read.itersize = chunk
                read.execute(self._chain_events_sql, (head[0], 2**63 - 1))
                while rows := read.fetchmany(chunk):
                    out = link_rows(head[1], rows)
                    with write.copy(
                        self._sql("COPY {schema}.{chain} (position, hash) FROM STDIN")
                    ) as copy:
                        for chain_row in out:
                            copy.write_row(chain_row)
                    head = out[-1]
                    sealed += len(out)
        if sealed:
            self._chain_head = head
        return sealed

    def insert_event_groups(
        self,
        groups: Sequence[Sequence[StoredEvent]],
        expects: Sequence[Sequence[Expect]] | None = None,
    ) -> list[list[int] | None]:
        """Group commit: the events of several appends in ONE transaction, under one lock
        of the events table, in the order of the groups. Each group stays all or nothing on
        its own: one with a (stream, version) taken already, or claimed by an earlier group
        of the same call, or whose expected last events (``expects``, one list per group)
        are not their streams' last any more, is left out (None: its append conflicts, as
        it would have alone), the others get their positions, gap-free, and their chain
        rows."""
        plan: dict[str, Any] = {}
        ids = list(
            self.insert_events(
                [e for g in groups for e in g],
                _groups=groups,
                _plan=plan,
                _group_expects=expects or [()] * len(groups),
            )
            or []
        )
        answers: list[list[int] | None] = [None] * len(groups)
        at = 0
        for index in plan["accepted"]:
            size = len(groups[index])
            answers[index] = ids[at : at + size]
            at += size
        return answers

    def _taken_keys(
        self,
        curs: Cursor[DictRow],
        keys: Sequence[tuple[UUID | str, int]],
        limit: int | None,
        expects: Sequence[Expect] = (),
    ) -> list[tuple[Any, int, int | None]]:
        """Which of the (stream, version) keys are in the table already (up to ``limit``),
        each with None; in the same statement, each of ``expects`` that is not its
        stream's last event any more (its row gone or at another position, or a later
        version there), with its expected position."""
        taken = (
            "SELECT t.originator_id, t.originator_version, NULL::bigint AS stale "
            "FROM {schema}.{table} t "
            "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS k(id, version) "
            "ON t.originator_id = k.id AND t.originator_version = k.version"
        )
        params: tuple[Any, ...] = ([k[0] for k in keys], [k[1] for k in keys])
        if expects:
            taken += (
                " UNION ALL SELECT e.id, e.version, e.position FROM "
                "unnest(%s::{id_type}[], %s::bigint[], %s::bigint[]) AS e(id, version, position) "
                "WHERE (e.version > 0 AND NOT EXISTS (SELECT FROM {schema}.{table} t "
                "WHERE t.originator_id = e.id AND t.originator_version = e.version "
                "AND t.notification_id = e.position)) "
                "OR EXISTS (SELECT FROM {schema}.{table} t WHERE t.originator_id = e.id "
                "AND t.originator_version > e.version)"
            )
            params += tuple([x[i] for x in expects] for i in range(3))
        curs.execute(
            self._query(
                taken + ("" if limit is None else f" LIMIT {int(limit)}"),
                id_type=Identifier(self.datastore.originator_id_type),
            ),
            params,
            prepare=True,
        )
        return [
            (row["originator_id"], row["originator_version"], row["stale"])
            for row in curs.fetchall()
        ]

    def _insert_groups(
        self, curs: Cursor[DictRow], groups: Sequence[Sequence[StoredEvent]], plan: dict[str, Any]
    ) -> None:
        """``insert_event_groups``' insert, under the table lock: the groups that can go in."""
        keys = [(e.originator_id, e.originator_version) for g in groups for e in g]
        expects: Sequence[Sequence[Expect]] = plan.get("expects") or ()
        found = self._taken_keys(curs, keys, None, [x for g in expects for x in g])
        claimed = {(str(k[0]), k[1]) for k in found if k[2] is None}
        stale = {(str(k[0]), k[1], k[2]) for k in found if k[2] is not None}
        moved: set[str] = set()  # streams an accepted group of this call writes to
        accepted: list[int] = []
        events: list[StoredEvent] = []
        for index, group in enumerate(groups):
            mine = [(str(e.originator_id), e.originator_version) for e in group]
            if len(set(mine)) < len(mine) or not claimed.isdisjoint(mine):
                continue
            if expects and any(
                (str(x[0]), x[1], x[2]) in stale or str(x[0]) in moved for x in expects[index]
            ):
                continue
            claimed.update(mine)
            moved.update(k[0] for k in mine)
            accepted.append(index)
            events.extend(group)
        plan["accepted"] = accepted  # set anew when the library retries the transaction
        plan["events"] = events
        PostgresAggregateRecorder._insert_stored_events(self, curs, events)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        groups = kwargs.get("_groups")
        if groups is not None:
            kwargs["_plan"]["expects"] = kwargs.get("_group_expects")
            self._insert_groups(curs, groups, kwargs["_plan"])
            return
        keys = [(e.originator_id, e.originator_version) for e in stored_events]
        found = self._taken_keys(curs, keys, 1, kwargs.get("_expects") or ())
        taken = found[0][:2] if found and found[0][2] is None else None
        duplicated = next((k for k in keys if keys.count(k) > 1), None)
        if found and found[0][2] is not None:
            duplicated = found[0][:2]  # a stream moved since the decision saw it
        if taken is not None or duplicated is not None:
            # Fail the transaction the way the library expects (a unique violation), with
            # an explicit position so that no sequence number is consumed.
            key = taken if taken is not None else duplicated
            statement = self._sql(
                "INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state, notification_id) "
                "VALUES (%s, %s, '', ''::bytea, 0)"
            )
            for _ in range(1 if taken is not None else 2):
                curs.execute(statement, key)
            return
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

    def select_stream(self, originator_id: UUID, from_version: int = 0) -> list[StreamRow]:
        """The stream's rows with versions at or after ``from_version`` (all by default)."""
        statement = self._query(
            "SELECT originator_version, notification_id, topic, state FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version >= %s ORDER BY originator_version"
        )
        # one statement is one snapshot: no BEGIN/ROLLBACK round trips around it
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (originator_id, from_version), prepare=True)
            return [(row[0], row[1], row[2], bytes(row[3])) for row in curs.fetchall()]

    def select_notification_rows(
        self, after: int, limit: int, max_bytes: int | None = None
    ) -> list[NotificationRow]:
        """Up to ``limit`` rows after ``after``; with ``max_bytes``, only as many as fit in
        that many bytes of event state (at least one), measured before any is read."""
        columns = "notification_id, originator_id::text, originator_version, topic, state"
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            if max_bytes is None:
                curs.execute(
                    self._sql(
                        f"SELECT {columns} FROM {{schema}}.{{table}} WHERE notification_id > %s "
                        "ORDER BY notification_id LIMIT %s"
                    ),
                    (after, limit),
                    prepare=True,
                )
            else:
                curs.execute(
                    self._sql(
                        "SELECT notification_id, octet_length(state) FROM {schema}.{table} "
                        "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
                    ),
                    (after, limit),
                    prepare=True,
                )
                upto = last_within_budget(curs.fetchall(), max_bytes)
                if upto is None:
                    return []
                curs.execute(
                    self._sql(
                        f"SELECT {columns} FROM {{schema}}.{{table}} WHERE notification_id > %s "
                        "AND notification_id <= %s ORDER BY notification_id"
                    ),
                    (after, upto),
                    prepare=True,
                )
            rows: list[NotificationRow] = curs.fetchall()
            return rows

    def select_topic_rows(
        self, after: int, limit: int, topics: Sequence[str]
    ) -> tuple[list[NotificationRow], int]:
        """Up to ``limit`` rows of the given topics after ``after``, and how far the log was
        read: the last row's position when the page is full, else the log's end (read in
        the same statement: appends commit in position order under the table lock, so no
        later commit takes a position at or before it)."""
        statement = self._sql(
            "SELECT h.head, r.notification_id, r.originator_id, r.originator_version, r.topic, "
            "r.state FROM (SELECT coalesce(max(notification_id), 0) AS head "
            "FROM {schema}.{table}) h LEFT JOIN LATERAL (SELECT notification_id, "
            "originator_id::text AS originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s "
            "AND notification_id <= h.head AND topic = ANY(%s) "
            "ORDER BY notification_id LIMIT %s) r ON true"
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (after, list(topics), limit), prepare=True)
            found = curs.fetchall()
        head = int(found[0][0]) if found else after
        rows: list[NotificationRow] = [tuple(row[1:]) for row in found if row[1] is not None]
        if head <= after:
            return [], after
        return rows, rows[-1][0] if len(rows) >= limit else head

    def select_notification_page(self, after: int, limit: int) -> pa.Table:
        """The next page of the log as an Arrow table, without a Python object per row.

        PostgreSQL writes the page as CSV (COPY) and Arrow's CSV reader parses it, so a
        page of 50,000 events costs a few milliseconds of Python, not one tuple per event.
        """
        statement = self._sql(
            "COPY (SELECT notification_id, originator_id::text, originator_version, topic, "
            "convert_from(state, 'UTF8') FROM {schema}.{table} WHERE notification_id > {after} "
            "ORDER BY notification_id LIMIT {limit}) TO STDOUT WITH (FORMAT csv)",
            after=Literal(int(after)),
            limit=Literal(int(limit)),
        )
        buffer = io.BytesIO()
        with (
            self.datastore.get_connection() as conn,
            conn.cursor() as curs,
            curs.copy(statement) as copy,
        ):
            for chunk in copy:
                buffer.write(chunk)
        if buffer.tell() == 0:
            return PAGE_SCHEMA.empty_table()
        buffer.seek(0)
        table: pa.Table = pa_csv.read_csv(
            buffer,
            read_options=pa_csv.ReadOptions(column_names=PAGE_SCHEMA.names),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={f.name: f.type for f in PAGE_SCHEMA},
                strings_can_be_null=False,
            ),
        )
        return table
