"""eventsourcing recorders extended with one query: a stream with its global positions.

Auditors' history shows each event's position in the notification log, and an
idempotent replay of a command returns the position of the event it first appended.
The library's recorders return streams without positions, so these subclasses add
``select_stream`` and otherwise behave exactly like the library's (the library's own
recorder test cases run against them in tests/test_recorders.py).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pyarrow as pa
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal
from pyarrow import csv as pa_csv

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


class LeadLedgerSQLiteRecorder(SQLiteProcessRecorder):
    def select_stream(self, originator_id: UUID) -> list[StreamRow]:
        statement = (
            f"SELECT originator_version, rowid, topic, state FROM {self.events_table_name} "
            "WHERE originator_id = ? ORDER BY originator_version"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (originator_id.hex,))
            return [(row[0], row[1], row[2], bytes(row[3])) for row in c.fetchall()]

    def select_notification_rows(self, after: int, limit: int) -> list[NotificationRow]:
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [
                (row[0], _dashed(row[1]) if len(row[1]) == 32 else row[1], row[2], row[3], row[4])
                for row in c.fetchall()
            ]

    def select_notification_page(self, after: int, limit: int) -> pa.Table:
        """The next page of the log as an Arrow table (see ``projections.base.PAGE_SCHEMA``)."""
        return _page_from_rows(self.select_notification_rows(after, limit))


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


class LeadLedgerPostgresRecorder(PostgresProcessRecorder):
    """Adds stream reads with positions, and keeps positions gap-free on refusals.

    The library numbers events from a sequence inside its INSERT, so an append refused
    by the unique (stream, version) key would burn the numbers of its whole batch and
    leave a hole in the notification log. Here the taken versions are looked for first,
    under the same exclusive table lock, and a refused append consumes no number.
    """

    def _sql(self, text: str, **parts: Any) -> Composed:
        """A statement on this recorder's events table ({schema}.{table} in ``text``)."""
        return SQL(text).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            **parts,
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        keys = [(e.originator_id, e.originator_version) for e in stored_events]
        curs.execute(
            self._sql(
                "SELECT t.originator_id, t.originator_version FROM {schema}.{table} t "
                "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS k(id, version) "
                "ON t.originator_id = k.id AND t.originator_version = k.version LIMIT 1",
                id_type=Identifier(self.datastore.originator_id_type),
            ),
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
        taken = curs.fetchone()
        duplicated = next((k for k in keys if keys.count(k) > 1), None)
        if taken is not None or duplicated is not None:
            # Fail the transaction the way the library expects (a unique violation), with
            # an explicit position so that no sequence number is consumed.
            key = (
                (taken["originator_id"], taken["originator_version"])
                if taken is not None
                else duplicated
            )
            statement = self._sql(
                "INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state, notification_id) "
                "VALUES (%s, %s, '', ''::bytea, 0)"
            )
            for _ in range(1 if taken is not None else 2):
                curs.execute(statement, key)
            return
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

    def select_stream(self, originator_id: UUID) -> list[StreamRow]:
        statement = self._sql(
            "SELECT originator_version, notification_id, topic, state FROM {schema}.{table} "
            "WHERE originator_id = %s ORDER BY originator_version"
        )
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (originator_id,), prepare=True)
            return [
                (
                    row["originator_version"],
                    row["notification_id"],
                    row["topic"],
                    bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def select_notification_rows(self, after: int, limit: int) -> list[NotificationRow]:
        statement = self._sql(
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s "
            "ORDER BY notification_id LIMIT %s"
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (after, limit), prepare=True)
            rows: list[NotificationRow] = curs.fetchall()
            return rows

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
