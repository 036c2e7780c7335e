"""The tamper-evident hash chain over the stored events (issue 6), on SQLite and on the real
PostgreSQL: intact after appends and commands, and each kind of tampering done straight in
the database is reported at exactly its position — by ``verify``, ``leadledger verify``
and ``GET /audit/verify``."""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from event_store import EventStore, open_event_store, seal_existing, verify
from event_store.chain import CHAIN_TABLE
from event_store.store import recorder_env
from leadledger.cli import main
from leadledger.wiring import event_codec
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory, bearer, create


def _append(store: EventStore, n_streams: int = 1, versions: int = 1) -> list[int]:
    """Raw events (the chain hashes stored bytes, whatever they say) in one transaction."""
    events = [
        StoredEvent(sid, v, "tests.Event", b'{"n": %d}' % v)
        for sid in (uuid4() for _ in range(n_streams))
        for v in range(1, versions + 1)
    ]
    return list(store.recorder.insert_events(events) or [])


def _fill(store: EventStore) -> None:
    """Ten events: singles and multi-event batches."""
    _append(store)
    _append(store, 2, 2)
    _append(store)
    _append(store, 1, 4)


@contextmanager
def _db(url: str) -> Iterator[Callable[..., None]]:
    """``run(sql, *params)`` on the store's database; ``{events}``/``{chain}`` in the sql
    are its tables, ``{pos}`` its position column."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        lite = sqlite3.connect(parsed.path, isolation_level=None)

        def run_lite(statement: str, *params: Any) -> None:
            lite.execute(
                statement.format(events="stored_events", chain=CHAIN_TABLE, pos="rowid"), params
            )

        try:
            yield run_lite
        finally:
            lite.close()
        return
    schema = parse_qs(parsed.query)["schema"][0]
    env = recorder_env(url)
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        autocommit=True,
    ) as conn:

        def run_pg(statement: str, *params: Any) -> None:
            conn.execute(
                SQL(statement.replace("%", "%%").replace("?", "%s")).format(
                    events=Identifier(schema, "stored_events"),
                    chain=Identifier(schema, CHAIN_TABLE),
                    pos=Identifier("notification_id"),
                ),
                params,
            )

        yield run_pg


def _recompute(store: EventStore) -> str:
    """The chain's head hash from the spec, written out independently of event_store.chain."""

    def field(data: bytes) -> bytes:
        return struct.pack(">i", len(data)) + data

    head = bytes(32)
    for n in store.read(0, 10**9):
        stream = n.originator_id.hex if isinstance(n.originator_id, UUID) else n.originator_id
        head = hashlib.sha256(
            head
            + field(struct.pack(">q", n.id))
            + field(stream.encode())
            + field(struct.pack(">q", n.originator_version))
            + field(n.topic.encode())
            + field(bytes(n.state))
        ).digest()
    return head.hex()


# --- intact ------------------------------------------------------------------------------


def test_chain_is_intact_after_single_and_batched_appends(store: EventStore) -> None:
    assert verify(store).as_dict() == {
        "ok": True,
        "events": 0,
        "head_position": 0,
        "head_hash": bytes(32).hex(),
    }
    _fill(store)
    report = verify(store)
    assert report.ok, report
    assert (report.events, report.head_position) == (10, 10)
    assert report.head_hash == _recompute(store)


def test_a_second_writer_and_refused_appends_keep_the_chain(store_url: str) -> None:
    """Another store object (as another process would be) appends in between; a refused
    append (taken version) writes no chain row."""
    first = open_event_store(store_url, event_codec())
    second = open_event_store(store_url, event_codec())
    try:
        sid = uuid4()
        first.recorder.insert_events([StoredEvent(sid, 1, "t", b"{}")])
        _append(second, 1, 3)
        with pytest.raises(Exception, match=r"(?i)unique|integrity|duplicate"):
            first.recorder.insert_events([StoredEvent(sid, 1, "t", b"{}")])
        _append(first)
        _append(second)
        report = verify(first)
        assert report.ok, report
        assert report.events == 6
        assert report.head_hash == _recompute(first)
    finally:
        first.close()
        second.close()


def test_concurrent_appends_from_two_threads_and_two_stores_on_postgres(
    pg_schema_url: str,
) -> None:
    stores = [open_event_store(pg_schema_url, event_codec()) for _ in range(2)]
    try:
        errors: list[BaseException] = []

        def writer(store: EventStore, batch: int) -> None:
            try:
                for _ in range(25):
                    _append(store, batch, 1)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=writer, args=(s, batch))
            for s in stores
            for batch in (1, 3)  # two threads per store object, one pool each
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        report = verify(stores[0])
        assert report.ok, report
        assert report.events == 2 * 25 * (1 + 3)
        assert report.head_hash == _recompute(stores[0])
    finally:
        for s in stores:
            s.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.binary(max_size=40)),
        min_size=1,
        max_size=5,
    )
)
def test_property_random_batches_verify_and_match_a_recomputation(
    store: EventStore, batches: list[tuple[int, int, bytes]]
) -> None:
    for n_streams, versions, state in batches:
        store.recorder.insert_events(
            [
                StoredEvent(sid, v, f"topic.{v}", state)
                for sid in (uuid4() for _ in range(n_streams))
                for v in range(1, versions + 1)
            ]
        )
    report = verify(store)
    assert report.ok, report
    assert report.events == store.last_position()
    assert report.head_hash == _recompute(store)


# --- tampering ---------------------------------------------------------------------------


def test_an_edited_event_is_reported_as_altered_at_its_position(
    store: EventStore, store_url: str
) -> None:
    _fill(store)
    with _db(store_url) as run:
        run("UPDATE {events} SET state = ? WHERE {pos} = ?", b'{"n": 999}', 6)
    report = verify(store)
    assert (report.ok, report.position, report.problem) == (False, 6, "altered")
    assert report.events == 5


def test_a_deleted_event_is_reported_as_removed_at_its_position(
    store: EventStore, store_url: str
) -> None:
    _fill(store)
    with _db(store_url) as run:
        run("DELETE FROM {events} WHERE {pos} = ?", 4)
    report = verify(store)
    assert (report.position, report.problem) == (4, "removed")


def test_swapped_events_are_reported_as_reordered_at_the_first(
    store: EventStore, store_url: str
) -> None:
    _fill(store)
    with _db(store_url) as run:
        run("UPDATE {events} SET {pos} = -1 WHERE {pos} = ?", 3)
        run("UPDATE {events} SET {pos} = 3 WHERE {pos} = ?", 8)
        run("UPDATE {events} SET {pos} = 8 WHERE {pos} = ?", -1)
    report = verify(store)
    assert (report.position, report.problem) == (3, "reordered")
    assert "belongs at position 8" in report.detail


def test_a_deleted_chain_row_is_reported(store: EventStore, store_url: str) -> None:
    _fill(store)
    with _db(store_url) as run:
        run("DELETE FROM {chain} WHERE position = ?", 7)
    report = verify(store)
    assert (report.position, report.problem) == (7, "removed")
    assert "chain row" in report.detail


def test_an_event_written_around_the_store_is_unsealed_then_inserted(
    store: EventStore, store_url: str
) -> None:
    """At the tail it is unsealed (``--seal`` would take it in); once the store appends
    after it, it is an event without a chain row inside the chain: inserted."""
    _fill(store)
    with _db(store_url) as run:
        run(
            "INSERT INTO {events} (originator_id, originator_version, topic, state) "
            "VALUES (?, 1, 'forged', ?)",
            uuid4().hex if store.backend == "sqlite" else uuid4(),
            b"{}",
        )
    assert (verify(store).position, verify(store).problem) == (11, "unsealed")
    _append(store)
    report = verify(store)
    assert (report.position, report.problem) == (11, "inserted")


# --- events recorded before the chain existed --------------------------------------------


def _fill_without_chain(store_url: str) -> None:
    """Events as a store from before the chain recorded them."""
    old = open_event_store(store_url, event_codec())
    try:
        old.recorder.chain_enabled = False  # type: ignore[attr-defined]
        _fill(old)
    finally:
        old.close()


def test_seal_existing_chains_events_recorded_before_the_chain(store_url: str) -> None:
    _fill_without_chain(store_url)
    store = open_event_store(store_url, event_codec())
    try:
        report = verify(store)
        assert (report.position, report.problem) == (1, "unsealed")
        assert seal_existing(store) == 10
        assert seal_existing(store) == 0
        report = verify(store)
        assert report.ok, report
        assert report.head_hash == _recompute(store)
        _append(store, 2, 1)  # chains on from the sealed head
        assert verify(store).head_hash == _recompute(store)
    finally:
        store.close()


def test_the_first_append_after_an_upgrade_seals_the_earlier_events(store_url: str) -> None:
    _fill_without_chain(store_url)
    store = open_event_store(store_url, event_codec())
    try:
        _append(store)
        report = verify(store)
        assert report.ok, report
        assert report.events == 11
        assert report.head_hash == _recompute(store)
    finally:
        store.close()


# --- the command line and the API --------------------------------------------------------


def test_cli_verify_exit_codes_and_message(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADLEDGER_EVENT_STORE_URL", store_url)
    store = open_event_store(store_url, event_codec())
    try:
        store.recorder.chain_enabled = False  # type: ignore[attr-defined]
        _fill(store)
    finally:
        store.close()
    assert main(["verify"]) == 1
    assert "position 1: unsealed" in capsys.readouterr().err
    assert main(["verify", "--seal"]) == 0
    out = capsys.readouterr().out
    assert "sealed 10 event(s)" in out
    assert "intact: 10 events, head position 10" in out
    with _db(store_url) as run:
        run("UPDATE {events} SET topic = 'x' WHERE {pos} = ?", 9)
    assert main(["verify"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]]
    assert "broken at position 9: altered" in err[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_http_audit_verify(
    backend: str, make_platform: PlatformFactory, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else None
    platform = make_platform(url)
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        for _ in range(3):
            create(client)
        for role in ("manager", "analyst", "pm"):
            refused = client.get("/audit/verify", headers=bearer("someone", role))
            assert refused.status_code == 403, refused.text
        auditor = client.get("/audit/verify", headers=bearer("aud.auditor", "auditor"))
        assert auditor.status_code == 200, auditor.text
        intact = client.get("/audit/verify", headers=ACTOR)
        assert intact.status_code == 200, intact.text
        body = intact.json()
        last = platform.store.last_position()
        assert body == {
            "ok": True,
            "events": last,
            "head_position": last,
            "head_hash": _recompute(platform.store),
        }
        with _db(platform.settings.event_store_url) as run:
            run("UPDATE {events} SET state = ? WHERE {pos} = ?", b'{"forged": true}', 2)
        broken = client.get("/audit/verify", headers=ACTOR)
        assert broken.status_code == 409, broken.text
        assert broken.json()["ok"] is False
        assert (broken.json()["position"], broken.json()["problem"]) == (2, "altered")
        assert "position 2" in broken.json()["detail"]
