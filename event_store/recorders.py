"""eventsourcing recorders extended with one query: a stream with its global positions.

Auditors' history shows each event's position in the notification log, and an
idempotent replay of a command returns the position of the event it first appended.
The library's recorders return streams without positions, so these subclasses add
``select_stream`` and otherwise behave exactly like the library's (the library's own
recorder test cases run against them in tests/test_recorders.py).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder
from psycopg.sql import SQL, Identifier

StreamRow = tuple[int, int, str, bytes]
"""(originator_version, notification_id, topic, state)"""


class LeadLedgerSQLiteRecorder(SQLiteProcessRecorder):
    def select_stream(self, originator_id: UUID) -> list[StreamRow]:
        statement = (
            f"SELECT originator_version, rowid, topic, state FROM {self.events_table_name} "
            "WHERE originator_id = ? ORDER BY originator_version"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (originator_id.hex,))
            return [(row[0], row[1], row[2], bytes(row[3])) for row in c.fetchall()]


class LeadLedgerPostgresRecorder(PostgresProcessRecorder):
    def select_stream(self, originator_id: UUID) -> list[StreamRow]:
        statement = SQL(
            "SELECT originator_version, notification_id, topic, state FROM {schema}.{table} "
            "WHERE originator_id = %s ORDER BY originator_version"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
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
