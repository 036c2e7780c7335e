"""Saved column mappings of imports: one stream per mapping name.

A mapping says which field of a kind (leads, deals, ...) each column of a file fills,
by the column's header. Saving one under a name records ``ImportMappingSaved`` on the
name's stream (the last one saved is the mapping; its history is the stream), so the
next file from the same old system is imported with ``--mapping NAME`` or
``mapping_name``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID, uuid5

from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation

MAPPING_NAMESPACE = UUID("8f2b6c1d-0e4a-4f3b-b7d2-93c5a1e6f047")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_COLUMNS = 200
MAX_COLUMN_NAME = 200


def mapping_stream_id(name: str) -> UUID:
    return uuid5(MAPPING_NAMESPACE, f"import-mapping:{name}")


@dataclass(frozen=True, kw_only=True)
class ImportMappingSaved(DomainEvent):
    name: str
    kind: str
    columns: dict[str, str]
    """The file's column header → the field it fills ('' leaves the column out)."""


@dataclass(frozen=True)
class ImportMapping:
    name: str
    kind: str
    columns: dict[str, str]
    version: int
    saved_by: str


IMPORT_MAPPING_EVENT_TYPES: tuple[type[DomainEvent], ...] = (ImportMappingSaved,)


def save(
    name: str,
    kind: str,
    columns: dict[str, str],
    kinds: Mapping[str, Sequence[str]],
    current: ImportMapping | None,
    meta: CommandMeta,
) -> ImportMappingSaved:
    """Decide a mapping: a lowercase name, a known kind, column names mapped to that
    kind's fields (or to '' to leave them out)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidValue(
            "name", "a mapping's name is 1-64 lowercase letters, digits, '.', '_' or '-'"
        )
    fields = kinds.get(kind)
    if fields is None:
        raise InvalidValue("kind", f"'kind' must be one of {', '.join(sorted(kinds))}")
    known = set(fields)
    if not columns:
        raise InvalidValue("columns", "a mapping names at least one column")
    if len(columns) > MAX_COLUMNS:
        raise InvalidValue("columns", f"a mapping names at most {MAX_COLUMNS} columns")
    clean: dict[str, str] = {}
    for column, target in columns.items():
        header = column.strip() if isinstance(column, str) else ""
        if not header or len(header) > MAX_COLUMN_NAME:
            raise InvalidValue("columns", "column names are 1-200 characters")
        value = target.strip() if isinstance(target, str) else None
        if value is None or (value not in known and value not in ("", "-")):
            raise InvalidValue(
                f"columns.{header}",
                f"'{target}' is not a field of {kind} (its fields: {', '.join(fields)})",
            )
        clean[header] = "" if value == "-" else value
    mapped = [v for v in clean.values() if v]
    twice = next((v for v in mapped if mapped.count(v) > 1), None)
    if twice is not None:
        raise InvalidValue("columns", f"field '{twice}' is mapped from two columns")
    if current is not None and current.kind == kind and current.columns == clean:
        raise RuleViolation("no_change", f"mapping '{name}' already says this")
    return ImportMappingSaved(**meta.event_fields(), name=name, kind=kind, columns=clean)


def fold(events: Iterable[DomainEvent], version: int = 0) -> ImportMapping | None:
    state: ImportMapping | None = None
    for event in events:
        version += 1
        if isinstance(event, ImportMappingSaved):
            state = ImportMapping(event.name, event.kind, dict(event.columns), version, event.actor)
    return state
