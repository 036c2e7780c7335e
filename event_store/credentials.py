"""Users' passwords, as argon2id hashes, in a credentials table beside the key store.

A password is never an event: it is not in the event log, the feed, Kafka or the read
models. Only its argon2id hash (argon2-cffi, RFC 9106 low-memory parameters) is kept, in
one table, ``leadledger_credentials``, placed where the data subjects' keys are
(:func:`event_store.keys.open_key_store`): in ``credentials.sqlite`` in the key file's
directory (beside an embedded event store by default), or in the key store's PostgreSQL
database and schema. Setting a password replaces the row; a password is checked against
the hash, re-hashed when the parameters have changed since.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from event_store.keys import Clock, _postgres_target, _same_file, _sqlite_path

__all__ = [
    "CREDENTIALS_FILE_NAME",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "CredentialStore",
    "Credentials",
    "check_password_shape",
    "open_credentials",
]

CREDENTIALS_FILE_NAME = "credentials.sqlite"
CREDENTIALS_TABLE = "leadledger_credentials"
MIN_PASSWORD = 8
MAX_PASSWORD = 256


def _utc_now() -> datetime:
    return datetime.now(UTC)


def check_password_shape(password: object, field: str = "password") -> str:
    """The password, or ValueError naming the field and the rule it breaks."""
    if not isinstance(password, str):
        raise ValueError(f"{field} must be a string")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"{field} must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"{field} must be at most {MAX_PASSWORD} characters long")
    if password.strip() == "":
        raise ValueError(f"{field} must not be blank")
    return password


class CredentialStore(ABC):
    """Rows (username, hash, set_at, set_by); safe to share between threads."""

    backend: str

    @abstractmethod
    def put(self, username: str, password_hash: str, set_at: datetime, set_by: str) -> None:
        """Store (or replace) the user's hash."""

    @abstractmethod
    def get(self, username: str) -> str | None:
        """The user's hash, or None when they have no password."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connections."""


_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {CREDENTIALS_TABLE} (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    set_at TEXT NOT NULL,
    set_by TEXT NOT NULL
)
"""


class SQLiteCredentialStore(CredentialStore):
    backend = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # owner-only before SQLite opens it (SQLite would use the umask)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute(_SQLITE_SCHEMA)

    def put(self, username: str, password_hash: str, set_at: datetime, set_by: str) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO {CREDENTIALS_TABLE} (username, password_hash, set_at, set_by) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET "
                "password_hash = excluded.password_hash, set_at = excluded.set_at, "
                "set_by = excluded.set_by",
                (username, password_hash, set_at.isoformat(), set_by),
            )

    def get(self, username: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT password_hash FROM {CREDENTIALS_TABLE} WHERE username = ?", (username,)
            ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresCredentialStore(CredentialStore):
    backend = "postgresql"

    def __init__(self, conninfo: str, schema: str = "public") -> None:
        import psycopg
        from psycopg import sql
        from psycopg_pool import ConnectionPool

        self.schema = schema or "public"
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=2,
            kwargs={"autocommit": True},
            name="leadledger-credentials",
            open=True,
        )

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(
                schema=sql.Identifier(self.schema), table=sql.Identifier(CREDENTIALS_TABLE)
            )

        self._upsert = q(
            "INSERT INTO {schema}.{table} (username, password_hash, set_at, set_by) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO UPDATE SET "
            "password_hash = excluded.password_hash, set_at = excluded.set_at, "
            "set_by = excluded.set_by"
        )
        self._select = q("SELECT password_hash FROM {schema}.{table} WHERE username = %s")
        ddl = q(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} (username TEXT PRIMARY KEY, "
            "password_hash TEXT NOT NULL, set_at TIMESTAMPTZ NOT NULL, set_by TEXT NOT NULL)"
        )
        try:
            with self._pool.connection() as conn, conn.transaction():
                # CREATE ... IF NOT EXISTS races with itself across processes; serialise.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (CREDENTIALS_TABLE,))
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if exists is None:
                    conn.execute(q("CREATE SCHEMA IF NOT EXISTS {schema}"))
                conn.execute(ddl)
        except BaseException:
            self._pool.close()
            raise

    def put(self, username: str, password_hash: str, set_at: datetime, set_by: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(self._upsert, (username, password_hash, set_at, set_by))

    def get(self, username: str) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute(self._select, (username,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self._pool.close()


def open_credential_store(key_store_url: str, event_store_url: str) -> CredentialStore:
    """The credentials table where the key store is (see the module's docstring)."""
    url = key_store_url.strip() or event_store_url
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = _sqlite_path(url)
        if path == ":memory:":
            return SQLiteCredentialStore(":memory:")
        # beside the key file: the key store's directory (the event store's by default)
        directory = Path(path).parent
        target = str(directory / CREDENTIALS_FILE_NAME)
        events = _sqlite_path(event_store_url) if event_store_url.startswith("sqlite") else ""
        if _same_file(target, path) or (events and _same_file(target, events)):
            raise ValueError(f"the key or event store file is named {CREDENTIALS_FILE_NAME}")
        return SQLiteCredentialStore(target)
    if scheme in ("postgresql", "postgres"):
        conninfo, schema, _vacuum = _postgres_target(url)
        return PostgresCredentialStore(conninfo, schema)
    raise ValueError("key store URL must start with sqlite:/// or postgresql://")


class Credentials:
    """Sets and checks passwords over a :class:`CredentialStore`."""

    def __init__(self, store: CredentialStore, *, clock: Clock = _utc_now) -> None:
        self.store = store
        self._clock = clock
        self._hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        # checked when a user has no password, so that an unknown user costs the same time
        self._dummy = self._hasher.hash("no such user: a password nobody has")

    def set_password(self, username: str, password: str, *, set_by: str) -> None:
        """Hash and store the password (ValueError when it breaks the length rules)."""
        check_password_shape(password)
        self.store.put(username, self._hasher.hash(password), self._clock(), set_by)

    def has_password(self, username: str) -> bool:
        return self.store.get(username) is not None

    def check(self, username: str, password: str) -> bool:
        """Whether the password is the user's (False for a user without one, in the same
        time). A hash made with older parameters is replaced by a new one."""
        stored = self.store.get(username)
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return False
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if stored is None:
            return False
        if self._hasher.check_needs_rehash(stored):
            self.store.put(username, self._hasher.hash(password), self._clock(), username)
        return True

    def close(self) -> None:
        self.store.close()


def open_credentials(
    key_store_url: str, event_store_url: str, *, clock: Clock = _utc_now
) -> Credentials:
    return Credentials(open_credential_store(key_store_url, event_store_url), clock=clock)
