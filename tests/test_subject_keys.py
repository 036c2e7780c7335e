"""Per-data-subject keys and sealed sensitive information: round trips, tampering,
crypto-shredding (keys deleted and, on SQLite, overwritten in the file), races between
creators, and where the keys live by default. SQLite and the real PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_store.keys import (
    KEYS_FILE_NAME,
    KeyStore,
    PostgresKeyStore,
    SealBroken,
    SensitiveCipher,
    SQLiteKeyStore,
    open_key_store,
)
from tests.conftest import POSTGRES_URL, FakeClock

CONTEXT = b"lead:7d1f0c9e"
SECRET = b"Client mentioned a pending divorce; call only after 18:00 on +49 170 555 0101"


def _schema(url: str) -> str:
    return parse_qs(urlparse(url).query)["schema"][0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def events_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.sqlite"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def keys(events_url: str, clock: FakeClock) -> Iterator[KeyStore]:
    store = open_key_store("", events_url, clock=clock)
    yield store
    store.close()


@pytest.fixture
def cipher(keys: KeyStore) -> SensitiveCipher:
    return SensitiveCipher(keys)


def _key_rows(store: KeyStore, subject_id: str) -> int:
    """Rows of the subject in the key table, read directly."""
    if isinstance(store, SQLiteKeyStore):
        with store._lock:
            row = store._conn.execute(
                "SELECT count(*) FROM leadledger_subject_keys WHERE subject_id = ?", (subject_id,)
            ).fetchone()
        return int(row[0])
    assert isinstance(store, PostgresKeyStore)
    with store._pool.connection() as conn:
        found = conn.execute(
            f'SELECT count(*) FROM "{store.schema}".leadledger_subject_keys WHERE subject_id = %s',
            (subject_id,),
        ).fetchone()
    assert found is not None
    return int(found[0])


def test_sealed_information_opens_in_its_context(cipher: SensitiveCipher) -> None:
    token = cipher.seal("lead-1", SECRET, CONTEXT)
    assert token.startswith("v1.")
    assert SECRET not in token.encode()
    assert cipher.open(token, CONTEXT) == SECRET
    # a random nonce each time: the same text never seals to the same token
    assert cipher.seal("lead-1", SECRET, CONTEXT) != token
    assert cipher.open(cipher.seal("lead-1", b"", CONTEXT), CONTEXT) == b""


def test_a_token_does_not_open_for_another_lead(cipher: SensitiveCipher) -> None:
    token = cipher.seal("lead-1", SECRET, CONTEXT)
    with pytest.raises(SealBroken) as broken:
        cipher.open(token, b"lead:someone-else")
    assert SECRET.decode() not in str(broken.value)
    assert token not in str(broken.value)


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_a_tampered_or_malformed_token_is_refused(cipher: SensitiveCipher) -> None:
    token = cipher.seal("lead-1", SECRET, CONTEXT)
    version, key_id, nonce, sealed = token.split(".")
    tampered = [
        f"{version}.{key_id}.{_flip(nonce, 3)}.{sealed}",
        f"{version}.{key_id}.{nonce}.{_flip(sealed, 5)}",
        f"{version}.{key_id}.{nonce}.{_flip(sealed, len(sealed) - 2)}",  # the tag
        f"{version}.{key_id}.{nonce}.{sealed[:-4]}",  # truncated
    ]
    for bad in tampered:
        with pytest.raises(SealBroken, match=r"authentication|wrong shape|base64"):
            cipher.open(bad, CONTEXT)
    malformed = [
        "",
        "v1",
        "plain text",
        token.replace("v1.", "v2.", 1),
        f"{version}.{key_id}.{nonce}",
        f"{version}.{key_id}.{nonce}.{sealed}.extra",
        f"{version}.{key_id[:-1]}.{nonce}.{sealed}",
        f"{version}.{key_id}.{nonce}==.{sealed}",
        f"{version}.{key_id}.{nonce}.{sealed}=",
        f"{version}.{key_id}.{nonce}.{sealed[:10]}",
        token + "\n",
    ]
    for bad in malformed:
        with pytest.raises(SealBroken):
            cipher.open(bad, CONTEXT)
    assert issubclass(SealBroken, ValueError)
    # an unknown key id is an erased (or foreign) key, not a broken token
    assert cipher.open(f"{version}.{'0' * 32}.{nonce}.{sealed}", CONTEXT) is None


def test_erasure_shreds_what_was_sealed(
    keys: KeyStore, cipher: SensitiveCipher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = cipher.seal("lead-1", SECRET, CONTEXT)
    other = cipher.seal("lead-2", b"kept", b"lead:2")
    current = keys.current_key("lead-1")
    assert current is not None
    key_id, key = current
    assert keys.erased("lead-1") is None

    clock.advance(hours=1)
    with caplog.at_level("DEBUG", logger="event_store.keys"):
        assert keys.erase("lead-1", erased_by="dpo.maria") is True

    assert cipher.open(token, CONTEXT) is None
    assert keys.key(key_id) is None
    assert keys.current_key("lead-1") is None
    assert _key_rows(keys, "lead-1") == 0
    assert keys.erased("lead-1") == clock.now
    assert cipher.open(other, b"lead:2") == b"kept"  # other subjects untouched
    assert keys.erased("lead-2") is None
    assert key.hex() not in caplog.text
    assert SECRET.decode() not in caplog.text
    # erasing again finds nothing to delete, and moves the erasure's time on
    clock.advance(minutes=5)
    assert keys.erase("lead-1", erased_by="dpo.maria") is False
    assert keys.erased("lead-1") == clock.now


def test_a_subject_erased_can_get_a_new_key_without_reviving_the_old_data(
    keys: KeyStore, cipher: SensitiveCipher
) -> None:
    old = cipher.seal("lead-1", b"before erasure", CONTEXT)
    old_key = keys.current_key("lead-1")
    keys.erase("lead-1", erased_by="dpo.maria")

    new = cipher.seal("lead-1", b"after erasure", CONTEXT)
    new_key = keys.current_key("lead-1")
    assert old_key is not None
    assert new_key is not None
    assert new_key[0] != old_key[0]
    assert new_key[1] != old_key[1]
    assert cipher.open(new, CONTEXT) == b"after erasure"
    assert cipher.open(old, CONTEXT) is None
    assert _key_rows(keys, "lead-1") == 1


def test_current_key_without_create_makes_none(keys: KeyStore) -> None:
    assert keys.current_key("nobody") is None
    assert keys.current_key("nobody", create=False) is None
    made = keys.current_key("nobody", create=True)
    assert made is not None
    assert len(made[1]) == 32
    assert keys.current_key("nobody") == made
    assert keys.key(made[0]) == made[1]
    with pytest.raises(ValueError, match="subject_id"):
        keys.current_key("", create=True)


def _race(creators: list[Callable[[], tuple[str, bytes] | None]]) -> set[tuple[str, bytes]]:
    """Every creator at once (one thread each, released together); what they returned."""
    start = threading.Barrier(len(creators))

    def run(create: Callable[[], tuple[str, bytes] | None]) -> tuple[str, bytes]:
        start.wait()
        got = create()
        assert got is not None
        return got

    with ThreadPoolExecutor(len(creators)) as pool:
        return set(pool.map(run, creators))


def test_concurrent_creators_end_with_one_key(keys: KeyStore, events_url: str) -> None:
    """Threads sharing the store, and a second store of its own (another connection, as
    another process would have) on the same file or database, all race to create."""
    second = open_key_store("", events_url)
    try:
        for round_ in range(5):
            subject = f"raced-{round_}"
            creators: list[Callable[[], tuple[str, bytes] | None]] = [
                partial(store.current_key, subject, create=True) for store in (keys, second) * 4
            ]
            results = _race(creators)
            assert len(results) == 1, results
            assert _key_rows(keys, subject) == 1
    finally:
        second.close()


def test_sqlite_erasure_overwrites_the_key_bytes_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    store = SQLiteKeyStore(str(path))
    cipher = SensitiveCipher(store)
    subjects = [f"lead-{n}" for n in range(40)]
    secrets = {s: f"{s}: diagnosis and salary details".encode() for s in subjects}
    tokens = {s: cipher.seal(s, secrets[s], s.encode()) for s in subjects}
    key_of: dict[str, bytes] = {}
    for s in subjects:
        current = store.current_key(s)
        assert current is not None
        key_of[s] = current[1]
    erased = subjects[::3]
    for s in erased:
        assert store.erase(s, erased_by="dpo.maria")
    for s in subjects:
        expected = None if s in erased else secrets[s]
        assert cipher.open(tokens[s], s.encode()) == expected
    store.close()

    data = path.read_bytes()
    assert not [s for s in erased if key_of[s] in data]
    # the check can see keys: the ones not erased are there
    assert all(key_of[s] in data for s in subjects if s not in erased)
    assert not [s for s in subjects if secrets[s] in data]  # plaintext is never stored
    # no journal or WAL file is left beside it holding old pages
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.sqlite"]
    assert path.stat().st_mode & 0o077 == 0  # owner only


@pytest.mark.postgres
def test_postgres_erasure_vacuums_the_key_table(pg_schema_url: str) -> None:
    schema = _schema(pg_schema_url)
    table = f'"{schema}".leadledger_subject_keys'

    def vacuums() -> int:
        with psycopg.connect(POSTGRES_URL) as conn:
            row = conn.execute(
                "SELECT vacuum_count + autovacuum_count FROM pg_stat_user_tables "
                "WHERE schemaname = %s AND relname = 'leadledger_subject_keys'",
                (schema,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    with open_key_store("", pg_schema_url) as store:
        store.current_key("lead-1", create=True)
        before = vacuums()
        store.erase("lead-1", erased_by="dpo.maria")
        # the vacuuming session flushes its statistics when it goes idle, up to a second
        # later (PostgreSQL's shared-memory statistics): wait for them, a bounded while
        deadline = time.monotonic() + 10
        while vacuums() <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert vacuums() > before

    # ?vacuum=full rewrites the table: the erased key is not in its file any more. A
    # deleted row is copied by the rewrite while any older snapshot of the same database
    # may still see it, so this half runs in a database of its own: other sessions'
    # transactions (a parallel test run's) do not hold its horizon back.
    database = f"test_vacuum_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    own = urlparse(POSTGRES_URL)._replace(path=f"/{database}").geturl()
    try:
        with psycopg.connect(own, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        with open_key_store(
            f"{own}?schema={schema}&vacuum=full", "sqlite:///unused.sqlite"
        ) as store:
            made = {s: store.current_key(s, create=True) for s in ("a", "b", "c", "d")}
            store.erase("d", erased_by="dpo.maria")  # the last inserted: plain VACUUM leaves it
            with psycopg.connect(own, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
                path = conn.execute("SELECT pg_relation_filepath(%s)", (table,)).fetchone()
                assert path is not None
                found = conn.execute("SELECT pg_read_binary_file(%s)", (path[0],)).fetchone()
            assert found is not None
            data = bytes(found[0])
            erased_key = made["d"]
            assert erased_key is not None
            leaked = erased_key[1] in data  # (a bool: a failure prints no file bytes)
            assert not leaked
            assert all(k is not None and k[1] in data for s, k in made.items() if s != "d")
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_default_placement_beside_an_embedded_event_store(tmp_path: Path) -> None:
    events = tmp_path / "data" / "events.sqlite"
    with open_key_store("", f"sqlite:///{events}") as store:
        assert isinstance(store, SQLiteKeyStore)
        assert Path(store.path) == tmp_path / "data" / KEYS_FILE_NAME
        store.current_key("lead-1", create=True)
    assert (tmp_path / "data" / KEYS_FILE_NAME).exists()
    assert not events.exists()  # the events' file is not where keys go

    elsewhere = tmp_path / "vault" / "k.sqlite"
    with open_key_store(f"sqlite:///{elsewhere}", f"sqlite:///{events}") as store:
        assert isinstance(store, SQLiteKeyStore)
        assert Path(store.path) == elsewhere

    with pytest.raises(ValueError, match="event store's own"):
        open_key_store(f"sqlite:///{events}", f"sqlite:///{events}")
    with pytest.raises(ValueError, match="set key_store_url"):
        open_key_store("", f"sqlite:///{tmp_path}/{KEYS_FILE_NAME}")
    with pytest.raises(ValueError, match="must start with"):
        open_key_store("mysql://x", f"sqlite:///{events}")

    with open_key_store("", "sqlite:///:memory:") as memory:
        assert isinstance(memory, SQLiteKeyStore)
        assert memory.path == ":memory:"


def test_relative_sqlite_urls_read_as_the_event_store_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_key_store("", "sqlite:///data/events.sqlite") as store:
        assert isinstance(store, SQLiteKeyStore)
        assert store.path == f"data/{KEYS_FILE_NAME}"
    assert (tmp_path / "data" / KEYS_FILE_NAME).exists()


@pytest.mark.postgres
def test_default_placement_with_a_postgres_event_store(pg_schema_url: str, tmp_path: Path) -> None:
    schema = _schema(pg_schema_url)
    with open_key_store("", pg_schema_url) as store:
        assert isinstance(store, PostgresKeyStore)
        assert store.schema == schema
    with psycopg.connect(POSTGRES_URL) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
    assert {"leadledger_subject_keys", "leadledger_erased_subjects"} <= tables

    # an explicit URL wins: keys in a file while the events are in PostgreSQL
    with open_key_store(f"sqlite:///{tmp_path}/keys.sqlite", pg_schema_url) as store:
        assert isinstance(store, SQLiteKeyStore)

    # and a schema of their own in the same database
    own = f"keys_{uuid.uuid4().hex[:10]}"
    try:
        with open_key_store(f"{POSTGRES_URL}?schema={own}", pg_schema_url) as store:
            assert isinstance(store, PostgresKeyStore)
            assert store.schema == own
            assert store.current_key("lead-1", create=True) is not None
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{own}" CASCADE')


def test_no_key_outlives_an_erasure_made_elsewhere(events_url: str) -> None:
    """Two stores, as two processes: one seals and reads, the other erases; the first
    reads nothing the very next call (no key is cached in memory)."""
    with open_key_store("", events_url) as here, open_key_store("", events_url) as there:
        cipher = SensitiveCipher(here)
        token = cipher.seal("lead-1", SECRET, CONTEXT)
        assert cipher.open(token, CONTEXT) == SECRET
        assert there.erase("lead-1", erased_by="dpo.maria")
        assert cipher.open(token, CONTEXT) is None
        assert here.erased("lead-1") is not None


def test_seal_round_trips_any_bytes_in_any_context() -> None:
    with SQLiteKeyStore(":memory:") as store:
        cipher = SensitiveCipher(store)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            subject=st.text(min_size=1, max_size=40),
            plaintext=st.binary(max_size=2048),
            context=st.binary(max_size=64),
            other=st.binary(max_size=64),
        )
        def check(subject: str, plaintext: bytes, context: bytes, other: bytes) -> None:
            token = cipher.seal(subject, plaintext, context)
            assert token.isascii()
            assert cipher.open(token, context) == plaintext
            if other != context:
                with pytest.raises(SealBroken):
                    cipher.open(token, other)

        check()
