"""Our recorder subclasses pass the eventsourcing library's own recorder test cases.

``event_store.recorders`` subclasses the library's SQLite and PostgreSQL process
recorders to add ``select_stream``. The library ships abstract recorder test cases in
``eventsourcing.tests.persistence``; its per-back-end test modules (tests/persistence_tests/
test_sqlite.py and test_postgres.py in the library's repository, not shipped in the wheel)
subclass them with a ``create_recorder`` building a recorder over a ``SQLiteDatastore`` or
``PostgresDatastore``. We do the same with our subclasses, so anything they change in the
library's behaviour shows up here.

PostgreSQL cases run in a schema of their own per test (created in ``setUp``, dropped with
everything in it in ``tearDown``) in the database of LEADLEDGER_TEST_POSTGRES_URL.

Left out on purpose, with the reason:
- the library's back-end modules' tests that call ``pg_close_all_connections()``
  (``test_retry_*_after_closing_connection``): it terminates every other backend on the
  server, which would break test runs sharing this PostgreSQL;
- ``optional_test_insert_subscribe`` and the LISTEN/NOTIFY subscription tests: LeadLedger
  does not use subscriptions (the projector polls the notification log);
- ``AggregateRecorderTestCase``: it asserts that ``insert_events`` returns no
  notification ids, true of the library's aggregate-only recorders, not of application or
  process recorders (the library runs it only against its ``*AggregateRecorder``); the
  application-recorder case covers the same insert/select paths with ids;
- the ``text`` originator-id variants: LeadLedger's store always uses UUID stream ids (and
  ``select_stream`` takes a UUID).
The abstract cases are imported through their module so pytest does not collect them.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any, ClassVar
from unittest import TestCase
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests import persistence as library_cases
from psycopg.sql import SQL, Identifier

from event_store import EventStore, open_event_store
from event_store.recorders import LeadLedgerPostgresRecorder, LeadLedgerSQLiteRecorder
from event_store.store import recorder_env
from leadledger.wiring import event_codec

POSTGRES_URL = os.environ.get(
    "LEADLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

# --- SQLite -----------------------------------------------------------------------------


class SQLiteRecorderCase:
    """Builds our SQLite recorder over an in-memory database, or a temporary file."""

    db_name: str = ":memory:"
    pool_size: int = 5

    def create_recorder(self) -> LeadLedgerSQLiteRecorder:
        recorder = LeadLedgerSQLiteRecorder(
            SQLiteDatastore(db_name=self.db_name, pool_size=self.pool_size)
        )
        recorder.create_table()
        return recorder


def _tmp_db(case: TestCase) -> str:
    """A SQLite file in a temporary folder removed (with its WAL files) after the case."""
    folder = tempfile.TemporaryDirectory(prefix="leadledger_recorder_")
    case.addCleanup(folder.cleanup)
    return f"{folder.name}/events.sqlite"


class TestSQLiteRecorderAsApplicationRecorder(
    SQLiteRecorderCase, library_cases.ApplicationRecorderTestCase[LeadLedgerSQLiteRecorder]
):
    pool_size = 100  # as the library's own module: one connection per concurrent writer

    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:  # noqa: PT028
        self.db_name = _tmp_db(self)  # the library runs the concurrency cases on a file
        super().test_concurrent_no_conflicts()

    def test_concurrent_no_conflicts_in_memory_db(self) -> None:
        self.db_name = "file::memory:?cache=shared"
        super().test_concurrent_no_conflicts()

    def test_concurrent_throughput(self) -> None:
        self.db_name = _tmp_db(self)
        super().test_concurrent_throughput()


class TestSQLiteRecorderAsTrackingRecorder(
    SQLiteRecorderCase, library_cases.TrackingRecorderTestCase
):
    pass


class TestSQLiteRecorderAsProcessRecorder(
    SQLiteRecorderCase, library_cases.ProcessRecorderTestCase
):
    pass


class TestSQLiteRecorderNonInterleaving(
    SQLiteRecorderCase, library_cases.NonInterleavingNotificationIDsBaseCase
):
    insert_num = 10_000

    def setUp(self) -> None:
        self.db_name = _tmp_db(self)


# --- PostgreSQL -------------------------------------------------------------------------


def _pg_params() -> dict[str, Any]:
    env = recorder_env(POSTGRES_URL)
    return {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
    }


class PostgresRecorderCase:
    """Builds our PostgreSQL recorder in a schema of its own, dropped after the test.

    Like the library's module it uses maximally long (63-character) table names, so the
    identifier-length handling is exercised too.
    """

    events_table_name: ClassVar[str] = ("s" * 50 + "stored_events")[:63]
    tracking_table_name: ClassVar[str] = ("n" * 42 + "notification_tracking")[:63]
    pool_size: ClassVar[int] = 2
    datastore: PostgresDatastore
    schema: str

    def setUp(self) -> None:
        self.schema = f"rec_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(self.schema)))
        self.datastore = PostgresDatastore(
            **_pg_params(),
            pool_size=self.pool_size,
            max_overflow=0,
            schema=self.schema,
            lock_timeout=30,
        )
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        self.datastore.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(self.schema)))

    def create_recorder(self) -> LeadLedgerPostgresRecorder:
        recorder = LeadLedgerPostgresRecorder(
            self.datastore,
            events_table_name=self.events_table_name,
            tracking_table_name=self.tracking_table_name,
        )
        recorder.create_table()
        return recorder

    def resize_pool(self, size: int) -> None:
        self.datastore.pool.open()
        self.datastore.pool.resize(size, size)


def test_long_table_names_are_at_the_limit() -> None:
    assert len(PostgresRecorderCase.events_table_name) == 63
    assert len(PostgresRecorderCase.tracking_table_name) == 63


class TestPostgresRecorderAsApplicationRecorder(
    PostgresRecorderCase,
    library_cases.ApplicationRecorderTestCase[LeadLedgerPostgresRecorder],
):
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:  # noqa: PT028
        self.resize_pool(12)  # 10 writers and 2 readers, as the library's own module
        super().test_concurrent_no_conflicts()

    def test_concurrent_throughput(self) -> None:
        self.resize_pool(10)
        super().test_concurrent_throughput()


class TestPostgresRecorderAsTrackingRecorder(
    PostgresRecorderCase, library_cases.TrackingRecorderTestCase
):
    pass


class TestPostgresRecorderAsProcessRecorder(
    PostgresRecorderCase, library_cases.ProcessRecorderTestCase
):
    pass


class TestPostgresRecorderNonInterleaving(
    PostgresRecorderCase, library_cases.NonInterleavingNotificationIDsBaseCase
):
    insert_num = 100  # as the library's own module for PostgreSQL


# --- select_stream, our addition --------------------------------------------------------


def _stored(stream: UUID, version: int, label: str) -> StoredEvent:
    return StoredEvent(
        originator_id=stream,
        originator_version=version,
        topic=f"Topic{label}",
        state=f'{{"label": "{label}"}}'.encode(),
    )


def test_event_store_uses_our_recorders(store: EventStore) -> None:
    expected = (
        LeadLedgerPostgresRecorder if store.backend == "postgresql" else LeadLedgerSQLiteRecorder
    )
    assert type(store.recorder) is expected


def test_select_stream_returns_version_position_topic_state_in_version_order(
    store: EventStore,
) -> None:
    recorder: Any = store.recorder
    a, b = uuid4(), uuid4()
    # Versions of stream a are written out of order and interleaved with stream b, so
    # version order and position order differ.
    first = recorder.insert_events([_stored(a, 3, "a3"), _stored(b, 1, "b1"), _stored(a, 1, "a1")])
    second = recorder.insert_events([_stored(b, 2, "b2"), _stored(a, 2, "a2")])
    positions = {
        ("a", 3): first[0],
        ("b", 1): first[1],
        ("a", 1): first[2],
        ("b", 2): second[0],
        ("a", 2): second[1],
    }

    rows_a = recorder.select_stream(a)
    rows_b = recorder.select_stream(b)

    assert rows_a == [
        (v, positions[("a", v)], f"Topica{v}", f'{{"label": "a{v}"}}'.encode()) for v in (1, 2, 3)
    ]
    assert rows_b == [
        (v, positions[("b", v)], f"Topicb{v}", f'{{"label": "b{v}"}}'.encode()) for v in (1, 2)
    ]
    for version, position, topic, state in rows_a + rows_b:
        assert isinstance(version, int)
        assert isinstance(position, int)
        assert isinstance(topic, str)
        assert isinstance(state, bytes)
    # The positions are the notification log's ids.
    log = {n.id: (n.originator_id, n.originator_version) for n in store.read(0, 100)}
    assert {p: (a, v) for v, p, _, _ in rows_a} == {p: log[p] for _, p, _, _ in rows_a}
    assert recorder.select_stream(uuid4()) == []


def test_select_notification_rows_agree_with_the_library_notifications(
    store: EventStore,
) -> None:
    """The projector's plain-tuple read returns what ``select_notifications`` returns."""
    recorder: Any = store.recorder
    streams = [uuid4() for _ in range(4)]
    for version in (1, 2, 3):
        recorder.insert_events(
            [_stored(s, version, f"{i}-{version}") for i, s in enumerate(streams)]
        )
    library = recorder.select_notifications(0, 100, inclusive_of_start=False)
    assert len(library) == 12

    rows = recorder.select_notification_rows(0, 100)
    assert [
        (n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state)) for n in library
    ] == [(p, s, v, t, bytes(st)) for p, s, v, t, st in rows]
    for position, stream_id, version, topic, state in rows:
        assert isinstance(position, int)
        assert isinstance(stream_id, str)
        assert UUID(stream_id) in streams
        assert str(UUID(stream_id)) == stream_id  # canonical, dashed, lower-case text
        assert isinstance(version, int)
        assert isinstance(topic, str)
        assert isinstance(state, bytes)

    # after is exclusive, limit bounds the page, pages join up with no gap or overlap
    ids = [r[0] for r in rows]
    assert [r[0] for r in recorder.select_notification_rows(ids[3], 4)] == ids[4:8]
    assert recorder.select_notification_rows(ids[-1], 10) == []
    paged: list[int] = []
    after = 0
    while page := recorder.select_notification_rows(after, 5):
        paged += [r[0] for r in page]
        after = page[-1][0]
    assert paged == ids


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_select_stream_on_library_built_datastores(backend: str, tmp_path: Any) -> None:
    """select_stream also works on a recorder built directly over a library datastore."""
    if backend == "sqlite":
        recorder: Any = LeadLedgerSQLiteRecorder(SQLiteDatastore(str(tmp_path / "r.sqlite")))
        recorder.create_table()
        cleanup = recorder.datastore.close
        schema = None
    else:
        schema = f"rec_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
        datastore = PostgresDatastore(**_pg_params(), schema=schema)
        recorder = LeadLedgerPostgresRecorder(datastore, events_table_name="lead_events")
        recorder.create_table()
        cleanup = datastore.close
    try:
        stream = uuid4()
        ids = recorder.insert_events([_stored(stream, v, str(v)) for v in (2, 1)])
        assert [(r[0], r[1]) for r in recorder.select_stream(stream)] == [(1, ids[1]), (2, ids[0])]
    finally:
        cleanup()
        if schema is not None:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


def test_open_event_store_closes_cleanly(store_url: str) -> None:
    s = open_event_store(store_url, event_codec())
    try:
        assert s.last_position() == 0
    finally:
        s.close()
