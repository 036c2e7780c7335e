"""Where process managers keep their position in the log and their pending deadlines.

Both live in the event store's own database (SQLite or PostgreSQL), so one transaction
moves a process manager's position and schedules the deadlines the events of that page
asked for: after a crash the page is delivered again and scheduling it again is
harmless (a deadline's key is unique; scheduling replaces it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import orjson

from event_store import EventStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Deadline:
    key: str
    """Unique per process manager: scheduling the same key again replaces it."""
    kind: str
    subject_id: UUID
    due_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeadlineChanges:
    schedule: list[Deadline] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.schedule or self.cancel)


class ProcessStore:
    """Positions and deadlines of the process managers, beside the events."""

    def __init__(self, store: EventStore) -> None:
        self.recorder: Any = cast(Any, store.recorder)  # the library recorder, its datastore
        self.postgres = store.backend == "postgresql"
        if self.postgres:
            schema = self.recorder.datastore.schema or "public"
            self._positions = f'"{schema}".leadledger_process_positions'
            self._deadlines = f'"{schema}".leadledger_deadlines'
            self._p = "%s"
        else:
            self._positions = "leadledger_process_positions"
            self._deadlines = "leadledger_deadlines"
            self._p = "?"
        self._create_tables()

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.recorder.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _sql(self, text: str) -> str:
        return text.format(positions=self._positions, deadlines=self._deadlines, p=self._p)

    def _create_tables(self) -> None:
        with self._transaction(commit=True) as c:
            c.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {positions} "
                    "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
                )
            )
            c.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {deadlines} ("
                    "process TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, "
                    "subject_id TEXT NOT NULL, due_at BIGINT NOT NULL, data TEXT NOT NULL, "
                    "PRIMARY KEY (process, key))"
                )
            )
            c.execute(
                self._sql(
                    "CREATE INDEX IF NOT EXISTS leadledger_deadlines_due "
                    "ON {deadlines} (process, due_at)"
                )
            )

    def position(self, name: str) -> int:
        with self._transaction(commit=False) as c:
            c.execute(self._sql("SELECT position FROM {positions} WHERE name = {p}"), (name,))
            row = c.fetchone()
        if row is None:
            return 0
        return int(row["position"] if isinstance(row, dict) else row[0])

    def round_state(
        self, names: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, datetime | None]]:
        """The stored positions of ``names`` (0 for none) and when each has its soonest
        deadline (None: none), in one statement: what a round of the runner starts from
        (a lookup by key and a min a process over its ``(process, due_at)`` index each)."""
        if not names:
            return {}, {}
        column = self._sql(
            "(SELECT position FROM {positions} WHERE name = {p}) AS p%d, "
            "(SELECT min(due_at) FROM {deadlines} WHERE process = {p}) AS d%d"
        )
        columns = ", ".join(column.replace("%d", str(i)) for i in range(len(names)))
        with self._transaction(commit=False) as c:
            c.execute(f"SELECT {columns}", tuple(n for name in names for n in (name, name)))
            row = c.fetchone()
        values = (
            [row[f"{k}{i}"] for i in range(len(names)) for k in ("p", "d")]
            if isinstance(row, dict)
            else list(row)
        )
        positions = {
            name: 0 if values[2 * i] is None else int(values[2 * i]) for i, name in enumerate(names)
        }
        due = {
            name: None if values[2 * i + 1] is None else _moment(int(values[2 * i + 1]))
            for i, name in enumerate(names)
        }
        return positions, due

    def _upsert(self, c: Any, name: str, deadlines: Sequence[Deadline]) -> None:
        for d in deadlines:
            c.execute(
                self._sql(
                    "INSERT INTO {deadlines} (process, key, kind, subject_id, due_at, data) "
                    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (process, key) DO UPDATE "
                    "SET kind = excluded.kind, subject_id = excluded.subject_id, "
                    "due_at = excluded.due_at, data = excluded.data"
                ),
                (
                    name,
                    d.key,
                    d.kind,
                    str(d.subject_id),
                    _micros(d.due_at),
                    orjson.dumps(d.data).decode(),
                ),
            )

    def _delete(self, c: Any, name: str, keys: Sequence[str]) -> None:
        for key in keys:
            c.execute(
                self._sql("DELETE FROM {deadlines} WHERE process = {p} AND key = {p}"),
                (name, key),
            )

    def advance(self, name: str, position: int, changes: DeadlineChanges) -> None:
        """Store the new position and the page's deadline changes in one transaction."""
        with self._transaction(commit=True) as c:
            self._delete(c, name, changes.cancel)
            self._upsert(c, name, changes.schedule)
            self._store_position(c, name, position)

    def store_positions(self, positions: dict[str, int]) -> None:
        """Store several managers' positions (no deadline change) in one transaction."""
        with self._transaction(commit=True) as c:
            for name, position in positions.items():
                self._store_position(c, name, position)

    def _store_position(self, c: Any, name: str, position: int) -> None:
        c.execute(
            self._sql(
                "INSERT INTO {positions} (name, position) VALUES ({p}, {p}) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
            ),
            (name, position),
        )

    def complete(self, name: str, key: str, follow_up: Deadline | None) -> None:
        """A fired deadline is done; its follow-up (if any) is scheduled in the same write."""
        with self._transaction(commit=True) as c:
            self._delete(c, name, [key])
            if follow_up is not None:
                self._upsert(c, name, [follow_up])

    def due(self, name: str, now: datetime, limit: int = 500) -> list[Deadline]:
        """Deadlines due at ``now`` or earlier, soonest first."""
        return self._select(
            name, "AND due_at <= {p} ORDER BY due_at LIMIT {p}", (_micros(now), limit)
        )

    def pending(self, name: str) -> list[Deadline]:
        return self._select(name, "ORDER BY due_at", ())

    def _select(self, name: str, tail: str, params: tuple[Any, ...]) -> list[Deadline]:
        with self._transaction(commit=False) as c:
            c.execute(
                self._sql(
                    "SELECT key, kind, subject_id, due_at, data FROM {deadlines} "
                    "WHERE process = {p} " + tail
                ),
                (name, *params),
            )
            rows = c.fetchall()
        deadlines = []
        for row in rows:
            values = (
                [row[k] for k in ("key", "kind", "subject_id", "due_at", "data")]
                if isinstance(row, dict)
                else list(row)
            )
            deadlines.append(
                Deadline(
                    key=values[0],
                    kind=values[1],
                    subject_id=UUID(values[2]),
                    due_at=_moment(int(values[3])),
                    data=orjson.loads(values[4]),
                )
            )
        return deadlines
