"""Importing the entries of a shared directory (courts, opponents, consultants, lawyers,
experts, signatories: every kind ``leadledger/config/directories.toml`` configures): one
row, one entry, with the same rules as ``POST /directories/{kind}``.

One import kind serves every directory: :func:`directory_kind` makes it from the
configured :class:`~aggregates.directory_entry.DirectoryKind`, and the import is named by
the directory's id (``leadledger import court FILE``, ``POST /imports`` with
``kind=court``). The directory is the KIND argument, not a column, because the
directories' fields differ: a file's header is mapped onto one directory's fields (and
its required ones checked) before any row is read, and an export is one directory's.

The fields are the directory's configured fields (their ids, and their configured names
as header names), after ``entry_id``. Each row is decided by
:func:`aggregates.directory_entry.register` (required fields, phones and e-mails
normalised). **The record's id** is the row's ``entry_id`` when given (an export from
LeadLedger carries it), else one derived from the directory and the row's content: the
same row imported twice is the same entry, "already imported".

An entry's links to leads and projects are not part of its import: they are made on the
leads' and projects' side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aggregates import directory_entry as entries
from aggregates.base import CommandMeta
from aggregates.directory_entry import DirectoryKind
from aggregates.errors import InvalidValue
from event_store.bulk import existing_streams
from leadledger.imports.base import Field, NewEventSpec, RowRefused, Session, record_id

ENTRY_ID = Field(
    "entry_id",
    aliases=("id", "entry id", "идентификатор"),
    help="The entry's id in LeadLedger (a UUID). Default: one derived from the row.",
)


def fields_of(kind: DirectoryKind) -> tuple[Field, ...]:
    """The import fields of a directory: ``entry_id``, then its configured fields."""
    return (
        ENTRY_ID,
        *(
            Field(
                spec.id,
                required=spec.required,
                aliases=(spec.name,) if spec.name and spec.name != spec.id else (),
            )
            for spec in kind.fields
        ),
    )


class DirectoryImport:
    """The import kind of one configured directory."""

    def __init__(self, kind: DirectoryKind) -> None:
        self.directory = kind
        self.name = kind.id
        self.fields = fields_of(kind)

    def key(self, number: int, values: dict[str, Any], checksum: str) -> str:
        given = values.get("entry_id")
        if isinstance(given, str) and given.strip():
            try:
                return f"id:{UUID(given.strip())}"
            except ValueError:
                raise RowRefused(
                    "entry_id", "'entry_id' must be an entry's id (a UUID) or empty"
                ) from None
        content = "\x1f".join(str(values.get(f, "")) for f in self.directory.field_ids)
        return f"row:{content}"

    def record(self, key: str) -> UUID:
        if key.startswith("id:"):
            return UUID(key[3:])
        return record_id(f"directory:{self.name}", key)

    def start(self, session: Session) -> DirectoryRun:
        return DirectoryRun(session, self.directory)


class DirectoryRun:
    scan_fields: frozenset[str] = frozenset()

    def __init__(self, session: Session, kind: DirectoryKind) -> None:
        self.session = session
        self.kind = kind

    def scan(self, number: int, values: dict[str, Any]) -> None:
        pass

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        return existing_streams(self.session.store, [record for record, _ in rows])

    def prefetch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        pass

    def decide(
        self, number: int, record: UUID, values: dict[str, Any], meta: CommandMeta
    ) -> list[NewEventSpec]:
        given = {f: values[f] for f in self.kind.field_ids if f in values}
        try:
            event = entries.register(self.kind, entries.RegisterEntry(record, given), meta)
        except InvalidValue as error:
            raise RowRefused(error.field, error.message) from None
        return [(record, 1, event)]

    def refused(self, number: int) -> None:
        pass

    def consistent(self, refused: frozenset[int]) -> bool:
        return True


def directory_kind(kind: DirectoryKind) -> DirectoryImport:
    return DirectoryImport(kind)
