"""Import handlers: run an import of a file, and save or read a column mapping.

An import is not one command on one aggregate: it decides each row through its kind's
aggregate (see :mod:`leadledger.imports`) and writes every accepted row's events in one
transaction. The actor and the instant come from the context, as for any command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aggregates import import_mappings
from aggregates.directory_entry import DirectoryCatalog
from aggregates.errors import InvalidValue
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent
from leadledger.imports.base import Kind, MappingError, Session, resolve_mapping
from leadledger.imports.files import SourceFile, open_source
from leadledger.imports.kinds import KINDS
from leadledger.imports.kinds.directories import directory_kind
from leadledger.imports.runner import ImportReport, Mode, run_import

__all__ = ["MappingError"]


def kind_named(name: str, directories: DirectoryCatalog | None = None) -> Kind:
    """The import kind called ``name``: leads, deals, companies, contacts, or a configured
    directory's id (``court``, ``signatory``...) for its entries."""
    kind = KINDS.get(name)
    if kind is not None:
        return kind
    directory = None if directories is None else directories.get(name)
    if directory is None:
        known = sorted(KINDS) + ([] if directories is None else list(directories.kinds))
        raise InvalidValue("kind", f"'kind' must be one of {', '.join(known)}")
    return directory_kind(directory)


def kind_fields() -> dict[str, list[str]]:
    return {name: [f.name for f in kind.fields] for name, kind in KINDS.items()}


def parse_map_options(pairs: Sequence[str]) -> dict[str, str]:
    """``--map 'Column=field'`` options as a mapping (an empty field leaves it out)."""
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip():
            raise MappingError("mapping", f"'{pair}' is not Column=field")
        out[column.strip()] = target.strip()
    return out


def mapping_columns(raw: Any) -> dict[str, str]:
    """A mapping given as JSON: ``{"columns": {...}}`` (a saved mapping's shape) or the
    columns themselves."""
    columns = raw.get("columns", raw) if isinstance(raw, dict) else None
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
    ):
        raise MappingError(
            "mapping", 'a mapping is a JSON object {"Column": "field", ...} (or {"columns": ...})'
        )
    return dict(columns)


def import_file(
    store: EventStore,
    funnels: FunnelCatalog,
    rules: Rules,
    ctx: CommandContext,
    kind_name: str,
    path: Path,
    *,
    file_name: str | None = None,
    mapping: Mapping[str, str] | None = None,
    mode: Mode = "all",
    dry_run: bool = False,
    checked: Callable[[int], object] | None = None,
    writing: Callable[[int], object] | None = None,
    written: Callable[[int], object] | None = None,
    workers: int | None = None,
    directories: DirectoryCatalog | None = None,
) -> tuple[ImportReport, SourceFile]:
    """Import a file of ``kind_name`` (a directory's id among ``directories``' for its
    entries). Raises InvalidValue (kind, mode), MappingError or UnreadableFile before
    anything is decided; ImportConflict when the store changed under the write (nothing
    written)."""
    kind = kind_named(kind_name, directories)
    if mode not in ("all", "rows"):
        raise InvalidValue("mode", "'mode' must be 'all' (the file or nothing) or 'rows'")
    source = open_source(path, file_name)
    columns = resolve_mapping(kind, source.header, mapping)
    session = Session(
        store=store,
        funnels=funnels,
        rules=rules,
        actor=ctx.actor,
        actor_role=ctx.actor_role,
        at=ctx.at,
        file_name=source.name,
        checksum=source.checksum,
    )
    report = run_import(
        session,
        kind,
        source,
        columns,
        mode=mode,
        dry_run=dry_run,
        checked=checked,
        writing=writing,
        written=written,
        workers=workers,
    )
    return report, source


def load_mapping_records(store: EventStore, name: str) -> list[RecordedEvent]:
    return load_stream(
        store, import_mappings.mapping_stream_id(name), import_mappings.ImportMappingSaved
    )


def get_mapping(store: EventStore, name: str) -> import_mappings.ImportMapping:
    state = import_mappings.fold(r.event for r in load_mapping_records(store, name))
    if state is None:
        raise StreamNotFound(f"import mapping '{name}' not found")
    return state


def save_mapping(
    store: EventStore, name: str, kind: str, columns: dict[str, str], ctx: CommandContext
) -> CommandResult:
    """Save (or replace) the mapping called ``name``."""
    stream_id = import_mappings.mapping_stream_id(name)

    def decide(history: list[RecordedEvent]) -> list[NewEvent]:
        current = import_mappings.fold(r.event for r in history)
        event = import_mappings.save(name, kind, columns, kind_fields(), current, ctx.meta)
        return [NewEvent(stream_id, len(history) + 1, event)]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="import mapping",
        must_exist=None,
        load=lambda s: load_stream(store, s, import_mappings.ImportMappingSaved),
    )
