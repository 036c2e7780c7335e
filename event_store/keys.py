"""Per-data-subject encryption keys, and crypto-shredding by deleting them.

A lead's sensitive information (free text and named fields) is stored in events only as
a sealed token: AES-256-GCM under a key of its own data subject. The keys live apart from
the events, in a :class:`KeyStore`; erasing a subject deletes every key it had, so what
was sealed for it can no longer be read anywhere the events were copied to (replicas,
backups, Kafka topics, read models built from the tokens). The events themselves are
never rewritten.

Where the keys live (:func:`open_key_store`):

* an explicit ``key_store_url`` (``sqlite:///path`` or ``postgresql://...[?schema=name]``,
  written as event store URLs are) wins;
* otherwise, beside an embedded (SQLite) event store, in a file ``keys.sqlite`` of its own
  in the event store's directory, never in the events' file, so that a copy of the events
  file holds no keys. Back the two files up separately: a backup of ``keys.sqlite`` keeps
  erased subjects readable for as long as it is kept;
* otherwise, with a PostgreSQL event store, in the tables ``leadledger_subject_keys`` and
  ``leadledger_erased_subjects`` of the same database and schema. **Backups of the events
  must then leave the key table out**, e.g.
  ``pg_dump --exclude-table=<schema>.leadledger_subject_keys``, and the keys be backed up
  apart on a shorter retention (or set ``key_store_url`` to a database of their own).
  A base backup or a physical replica of the cluster holds the keys too.

Erasure overwrites what it can: SQLite runs with ``PRAGMA secure_delete=ON`` and a rollback
journal (not WAL), so the deleted key's bytes are overwritten with zeros in the file when
the erasure commits (the rollback journal, which holds the old page while the erasure
runs, is deleted at its commit; the file system may still hold its freed blocks);
PostgreSQL deletes the rows and then runs ``VACUUM`` on the key table (outside a
transaction), so that the dead tuples go. A plain ``VACUUM`` frees the space of
a dead tuple but does not zero it: the key's bytes may stay in the table's file until
that space is reused. ``?vacuum=full`` on the key store URL runs ``VACUUM FULL`` instead,
which rewrites the key table into a new file (it locks the table for the rewrite, a few
milliseconds for thousands of keys). Either way PostgreSQL's write-ahead log, its archive
and its replicas keep the bytes until they are recycled, and no vacuum removes a tuple an
older, still open snapshot may see; that is the limit of shredding inside a database.

Nothing here caches a key in memory: each seal and each open looks its key up, so an
erasure made by another process is effective on the next call. A seal that looked its key
up just before a concurrent erasure writes a token that is unreadable from then on, which
is what an erasure asks for.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEYS_FILE_NAME",
    "KeyStore",
    "PostgresKeyStore",
    "SQLiteKeyStore",
    "SealBroken",
    "SensitiveCipher",
    "open_key_store",
]

logger = logging.getLogger(__name__)

KEYS_FILE_NAME = "keys.sqlite"
"""The key file beside an embedded event store when no key store URL is given."""

KEYS_TABLE = "leadledger_subject_keys"
ERASED_TABLE = "leadledger_erased_subjects"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonce
TAG_BYTES = 16

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_key_id() -> str:
    return secrets.token_hex(16)


def _check_subject(subject_id: str) -> None:
    if not isinstance(subject_id, str) or not subject_id:
        raise ValueError("subject_id must be a non-empty string")


class KeyStore(ABC):
    """Keys of data subjects: at most one live key per subject, deleted on erasure.

    Safe to share between threads; several processes may use the same store at once.
    """

    backend: str

    @abstractmethod
    def current_key(self, subject_id: str, create: bool = False) -> tuple[str, bytes] | None:
        """The subject's live (key_id, 32-byte key); with ``create``, made if there is none.

        Concurrent creators, in threads or processes, all get the same one key. After an
        erasure a new key (with a new key_id) may be created for the same subject."""

    @abstractmethod
    def key(self, key_id: str) -> bytes | None:
        """The key with this id, or None when it was erased (or never existed)."""

    @abstractmethod
    def erase(self, subject_id: str, erased_by: str) -> bool:
        """Delete every key of the subject and record the erasure (its latest time and
        actor). True when a key was deleted, False when the subject had none."""

    @abstractmethod
    def erased(self, subject_id: str) -> datetime | None:
        """When the subject was last erased, or None if never."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connections."""

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- SQLite

_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (
    key_id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    key BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS {KEYS_TABLE}_live ON {KEYS_TABLE} (subject_id);
CREATE TABLE IF NOT EXISTS {ERASED_TABLE} (
    subject_id TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL,
    erased_by TEXT NOT NULL
);
"""


class SQLiteKeyStore(KeyStore):
    """Keys in a SQLite file of their own (``:memory:`` for a private in-memory one).

    One connection, serialised by a lock; other processes on the same file are kept
    consistent by SQLite's file locks (busy timeout 30 s) and the unique subject index.
    """

    backend = "sqlite"

    def __init__(self, path: str, *, clock: Clock = _utc_now) -> None:
        self.path = path
        self._clock = clock
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Created owner-only before SQLite opens it (SQLite would use the umask).
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        try:
            secure = self._conn.execute("PRAGMA secure_delete=ON").fetchone()
            if secure is None or int(secure[0]) != 1:
                raise RuntimeError("this SQLite cannot turn secure_delete on")
            # A rollback journal, not WAL: no old page images are left in a -wal file.
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SQLITE_SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        except BaseException:
            self._conn.close()
            raise

    def current_key(self, subject_id: str, create: bool = False) -> tuple[str, bytes] | None:
        _check_subject(subject_id)
        select = f"SELECT key_id, key FROM {KEYS_TABLE} WHERE subject_id = ?"
        with self._lock:
            for _ in range(10):
                row = self._conn.execute(select, (subject_id,)).fetchone()
                if row is not None:
                    return str(row[0]), bytes(row[1])
                if not create:
                    return None
                self._conn.execute(
                    f"INSERT INTO {KEYS_TABLE} (key_id, subject_id, key, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (subject_id) DO NOTHING",
                    (
                        _new_key_id(),
                        subject_id,
                        AESGCM.generate_key(bit_length=256),
                        self._clock().isoformat(),
                    ),
                )
                # Whichever insert won, the row read next is the one key (unless an
                # erasure took it in between: then go round again).
        raise RuntimeError("could not create a key: the subject keeps being erased")

    def key(self, key_id: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT key FROM {KEYS_TABLE} WHERE key_id = ?", (key_id,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def erase(self, subject_id: str, erased_by: str) -> bool:
        _check_subject(subject_id)
        if not erased_by:
            raise ValueError("erased_by must name who erased the subject")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._conn.execute(
                    f"DELETE FROM {KEYS_TABLE} WHERE subject_id = ?", (subject_id,)
                ).rowcount
                self._conn.execute(
                    f"INSERT INTO {ERASED_TABLE} (subject_id, erased_at, erased_by) "
                    "VALUES (?, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET "
                    "erased_at = excluded.erased_at, erased_by = excluded.erased_by",
                    (subject_id, self._clock().isoformat(), erased_by),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        logger.info("erased %d key(s) of data subject %s", deleted, subject_id)
        return deleted > 0

    def erased(self, subject_id: str) -> datetime | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT erased_at FROM {ERASED_TABLE} WHERE subject_id = ?", (subject_id,)
            ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# ----------------------------------------------------------------------- PostgreSQL


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL tables (see the module's docstring about backups).

    A small psycopg connection pool in autocommit mode; creation is one
    ``INSERT ... ON CONFLICT (subject_id) DO NOTHING`` against a unique index, so
    concurrent creators in any number of processes end with one key. ``vacuum_full``
    rewrites the key table after each erasure instead of a plain ``VACUUM``.
    """

    backend = "postgresql"

    def __init__(
        self,
        conninfo: str,
        schema: str = "public",
        *,
        pool_size: int = 4,
        vacuum_full: bool = False,
        clock: Clock = _utc_now,
    ) -> None:
        import psycopg
        from psycopg import sql
        from psycopg_pool import ConnectionPool

        self.schema = schema or "public"
        self._clock = clock
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            name="leadledger-keys",
            open=True,
        )

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(
                schema=sql.Identifier(self.schema),
                keys=sql.Identifier(KEYS_TABLE),
                erased=sql.Identifier(ERASED_TABLE),
                live=sql.Identifier(f"{KEYS_TABLE}_live"),
            )

        self._select_current = q("SELECT key_id, key FROM {schema}.{keys} WHERE subject_id = %s")
        self._insert = q(
            "INSERT INTO {schema}.{keys} (key_id, subject_id, key, created_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (subject_id) DO NOTHING RETURNING key_id, key"
        )
        self._select_key = q("SELECT key FROM {schema}.{keys} WHERE key_id = %s")
        self._delete = q("DELETE FROM {schema}.{keys} WHERE subject_id = %s")
        self._tombstone = q(
            "INSERT INTO {schema}.{erased} (subject_id, erased_at, erased_by) "
            "VALUES (%s, %s, %s) ON CONFLICT (subject_id) DO UPDATE SET "
            "erased_at = excluded.erased_at, erased_by = excluded.erased_by"
        )
        self._vacuum = q(("VACUUM FULL" if vacuum_full else "VACUUM") + " {schema}.{keys}")
        self._select_erased = q("SELECT erased_at FROM {schema}.{erased} WHERE subject_id = %s")
        ddl = [
            q(
                "CREATE TABLE IF NOT EXISTS {schema}.{keys} ("
                "key_id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, key BYTEA NOT NULL, "
                "created_at TIMESTAMPTZ NOT NULL)"
            ),
            q("CREATE UNIQUE INDEX IF NOT EXISTS {live} ON {schema}.{keys} (subject_id)"),
            q(
                "CREATE TABLE IF NOT EXISTS {schema}.{erased} ("
                "subject_id TEXT PRIMARY KEY, erased_at TIMESTAMPTZ NOT NULL, "
                "erased_by TEXT NOT NULL)"
            ),
        ]
        try:
            with self._pool.connection() as conn, conn.transaction():
                # CREATE ... IF NOT EXISTS races with itself across processes; serialise.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (KEYS_TABLE,))
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if exists is None:
                    conn.execute(q("CREATE SCHEMA IF NOT EXISTS {schema}"))
                for statement in ddl:
                    conn.execute(statement)
        except BaseException:
            self._pool.close()
            raise

    def current_key(self, subject_id: str, create: bool = False) -> tuple[str, bytes] | None:
        _check_subject(subject_id)
        with self._pool.connection() as conn:
            for _ in range(10):
                row = conn.execute(self._select_current, (subject_id,)).fetchone()
                if row is not None:
                    return str(row[0]), bytes(row[1])
                if not create:
                    return None
                row = conn.execute(
                    self._insert,
                    (
                        _new_key_id(),
                        subject_id,
                        AESGCM.generate_key(bit_length=256),
                        self._clock(),
                    ),
                ).fetchone()
                if row is not None:
                    return str(row[0]), bytes(row[1])
                # Lost the race: the winner has committed; read its key next time round.
        raise RuntimeError("could not create a key: the subject keeps being erased")

    def key(self, key_id: str) -> bytes | None:
        with self._pool.connection() as conn:
            row = conn.execute(self._select_key, (key_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def erase(self, subject_id: str, erased_by: str) -> bool:
        _check_subject(subject_id)
        if not erased_by:
            raise ValueError("erased_by must name who erased the subject")
        with self._pool.connection() as conn:
            with conn.transaction():
                deleted = conn.execute(self._delete, (subject_id,)).rowcount
                conn.execute(self._tombstone, (subject_id, self._clock(), erased_by))
            # Autocommit connection, outside the transaction: VACUUM may run here.
            try:
                conn.execute(self._vacuum)
            except Exception as exc:  # the erasure stands; autovacuum will follow
                logger.warning("VACUUM of the key table failed after an erasure: %s", exc)
        logger.info("erased %d key(s) of data subject %s", deleted, subject_id)
        return deleted > 0

    def erased(self, subject_id: str) -> datetime | None:
        with self._pool.connection() as conn:
            row = conn.execute(self._select_erased, (subject_id,)).fetchone()
        if row is None:
            return None
        moment: datetime = row[0]
        return moment.astimezone(UTC)

    def close(self) -> None:
        self._pool.close()


# ------------------------------------------------------------------------ opening


def _sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL as the event store reads it (``:memory:`` kept)."""
    parsed = urlparse(url)
    if parsed.netloc:
        raise ValueError(
            f"key store URL '{url}': write sqlite:///relative/path or sqlite:////absolute/path"
        )
    path = unquote(parsed.path)
    path = path[1:] if path.startswith("/") else path
    return ":memory:" if path in ("", ":memory:") else path


def _postgres_target(url: str) -> tuple[str, str, bool]:
    """(libpq conninfo, schema, vacuum full) of a ``postgresql://`` URL, read as the event
    store reads it (``?schema=`` and ``?vacuum=full`` are LeadLedger's, not libpq's; other
    query parameters are ignored)."""
    from psycopg.conninfo import make_conninfo

    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    conninfo = make_conninfo(
        dbname=unquote(parsed.path.lstrip("/")) or "postgres",
        host=parsed.hostname or "127.0.0.1",
        port=str(parsed.port or 5432),
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password or ""),
    )
    schema = query.get("schema", ["public"])[0].strip() or "public"
    vacuum = query.get("vacuum", ["plain"])[0]
    if vacuum not in ("plain", "full"):
        raise ValueError("key store URL: vacuum must be plain or full")
    return conninfo, schema, vacuum == "full"


def _same_file(a: str, b: str) -> bool:
    if ":memory:" in (a, b):
        return False
    return Path(a).resolve() == Path(b).resolve()


def open_key_store(
    key_store_url: str, event_store_url: str, *, clock: Clock = _utc_now
) -> KeyStore:
    """The key store ``key_store_url`` names, or by default the one beside the event store.

    Default placement: ``keys.sqlite`` in the directory of a SQLite event store (a private
    in-memory store for an in-memory event store), or the key tables in the database and
    schema of a PostgreSQL event store; see the module's docstring for backups.
    Keys are refused a place in the events' own SQLite file.
    """
    url = key_store_url.strip()
    events = urlparse(event_store_url)
    if not url:
        if events.scheme == "sqlite":
            events_path = _sqlite_path(event_store_url)
            if events_path == ":memory:":
                return SQLiteKeyStore(":memory:", clock=clock)
            keys_path = str(Path(events_path).parent / KEYS_FILE_NAME)
            if _same_file(keys_path, events_path):
                raise ValueError(
                    f"the event store file is named {KEYS_FILE_NAME}; set key_store_url"
                )
            return SQLiteKeyStore(keys_path, clock=clock)
        if events.scheme in ("postgresql", "postgres"):
            url = event_store_url
        else:
            raise ValueError("event store URL must start with sqlite:/// or postgresql://")
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = _sqlite_path(url)
        if events.scheme == "sqlite" and _same_file(path, _sqlite_path(event_store_url)):
            raise ValueError("the keys must not live in the event store's own SQLite file")
        return SQLiteKeyStore(path, clock=clock)
    if scheme in ("postgresql", "postgres"):
        conninfo, schema, vacuum_full = _postgres_target(url)
        return PostgresKeyStore(conninfo, schema, vacuum_full=vacuum_full, clock=clock)
    raise ValueError("key store URL must start with sqlite:/// or postgresql://")


# ------------------------------------------------------------------------ sealing


class SealBroken(ValueError):
    """A sealed token is malformed, or fails authentication (tampered with, or opened
    with another context than it was sealed with). Carries no plaintext or key."""


_TOKEN = re.compile(r"v1\.([0-9a-f]{32})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # one spelling per value: no malleable padding bits
        raise ValueError("non-canonical base64")
    return data


def key_id_of(token: str) -> str:
    """The id of the key a sealed token was sealed under (its header; nothing secret)."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        raise SealBroken("not a sealed token")
    return parts[1]


class SensitiveCipher:
    """Seals a data subject's sensitive bytes under its key; opens them while it lasts.

    Tokens read ``v1.<key_id>.<nonce>.<ciphertext>`` (base64url, no padding): AES-256-GCM
    with a random 96-bit nonce and the caller's ``context`` (e.g. ``b"lead:<id>"``) as
    associated data, so a token opens only in the context it was sealed for.
    """

    def __init__(self, key_store: KeyStore) -> None:
        self.key_store = key_store

    def seal(self, subject_id: str, plaintext: bytes, context: bytes) -> str:
        current = self.key_store.current_key(subject_id, create=True)
        if current is None:  # pragma: no cover - create=True always answers a key
            raise RuntimeError("the key store made no key")
        key_id, key = current
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext, context)
        return f"v1.{key_id}.{_b64(nonce)}.{_b64(sealed)}"

    def open(self, token: str, context: bytes) -> bytes | None:
        """The plaintext; None when the subject's key was erased. Raises
        :class:`SealBroken` for a malformed token or a failed authentication."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise SealBroken("not a v1 sealed token")
        key_id, nonce_text, sealed_text = match.groups()
        try:
            nonce = _unb64(nonce_text)
            sealed = _unb64(sealed_text)
        except (ValueError, binascii.Error):
            raise SealBroken("sealed token is not valid base64url") from None
        if len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
            raise SealBroken("sealed token has the wrong shape")
        key = self.key_store.key(key_id)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(nonce, sealed, context)
        except InvalidTag:
            raise SealBroken(
                "sealed token failed authentication (tampered with, or another context)"
            ) from None
