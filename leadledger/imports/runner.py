"""Running an import: check every row, then write the good ones in one transaction.

1. **Scan** (kinds that ask for it): a cheap pass over a few fields of every row (leads:
   each company's first lead, by creation date).
2. **Decide**: every row is parsed by the column mapping, given its record id (from its
   natural key: ``external_id``, else its content — so a row imported before is "already
   imported" whatever the file it comes in; a company's key is its id, else its tax id,
   else its name in its city), and decided by its kind through the
   aggregate's own decide functions. Refusals are collected with the row number, the
   file's column and the reason; accepted rows' events are encoded and spooled to a
   temporary file (a million rows do not sit in memory).
3. **Write** (not in a dry run): mode ``all`` writes nothing when any row was refused;
   mode ``rows`` writes the accepted rows. The spooled events go in with
   :func:`event_store.bulk.bulk_append`: one transaction, gap-free positions, the chain
   kept. Every event records its cause: the file's name, its SHA-256 and the row.
"""

from __future__ import annotations

import pickle
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any, Literal
from uuid import UUID, uuid5

from aggregates.base import CommandMeta
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from event_store.bulk import StoredRow, bulk_append, encode
from leadledger.imports.base import (
    IMPORT_NAMESPACE,
    ColumnMap,
    Kind,
    RowRefused,
    Session,
)
from leadledger.imports.files import SourceFile

Mode = Literal["all", "rows"]
BATCH = 2_000
MAX_ROUNDS = 3


@dataclass(frozen=True)
class RowError:
    row: int
    column: str | None
    field: str | None
    reason: str
    code: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass
class ImportReport:
    kind: str
    file: str
    checksum: str
    format: str
    mode: Mode
    dry_run: bool
    rows: int = 0
    accepted: int = 0
    already_imported: int = 0
    refused: int = 0
    imported: int = 0
    events: int = 0
    status: str = "dry_run"
    """dry_run, imported, rejected (mode all, a row refused), already_imported (every
    good row was in already), nothing (no row)"""
    first_position: int | None = None
    last_position: int | None = None
    seconds: float = 0.0
    write_seconds: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self, max_errors: int | None = None) -> dict[str, Any]:
        errors = self.errors if max_errors is None else self.errors[:max_errors]
        return {
            "kind": self.kind,
            "file": self.file,
            "checksum": self.checksum,
            "format": self.format,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "status": self.status,
            "rows": self.rows,
            "accepted": self.accepted,
            "already_imported": self.already_imported,
            "refused": self.refused,
            "imported": self.imported,
            "events": self.events,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "seconds": round(self.seconds, 3),
            "columns": self.columns,
            "errors": [e.as_dict() for e in errors],
            "errors_shown": len(errors),
        }


class ImportConflict(Exception):
    """The store changed under the import (a record it makes appeared meanwhile)."""


def cause_of(source: SourceFile, number: int) -> str:
    return f"import {source.name} sha256:{source.checksum} row {number}"


def _row_error(number: int, error: Exception, columns: ColumnMap) -> RowError:
    field_name: str | None = None
    code = "invalid_value"
    if isinstance(error, RowRefused):
        field_name, code = error.field, error.code
        reason = error.reason
    elif isinstance(error, InvalidValue):
        field_name = error.field.split(".")[0].split("[")[0]
        reason = error.message
    elif isinstance(error, (RuleViolation, NotPermitted)):
        code = error.rule
        reason = error.message
    else:
        reason = str(error)
    column = columns.columns.get(field_name) if field_name else None
    return RowError(number, column, field_name, reason, code)


class _Spool:
    """Encoded events on disk, in chunks, read back in order."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="leadledger-import-")  # noqa: SIM115
        self.count = 0

    def add(self, rows: list[StoredRow]) -> None:
        if rows:
            pickle.dump(rows, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(rows)

    def chunks(self) -> Iterator[list[StoredRow]]:
        self.file.seek(0)
        while True:
            try:
                yield pickle.load(self.file)
            except EOFError:
                return

    def close(self) -> None:
        self.file.close()


def _batches(source: SourceFile) -> Iterator[list[tuple[int, list[Any]]]]:
    batch: list[tuple[int, list[Any]]] = []
    for row in source.rows():
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def run_import(
    session: Session,
    kind: Kind,
    source: SourceFile,
    columns: ColumnMap,
    *,
    mode: Mode = "all",
    dry_run: bool = False,
    checked: Callable[[int], object] | None = None,
    written: Callable[[int], object] | None = None,
    writing: Callable[[int], object] | None = None,
) -> ImportReport:
    """Import ``source`` as ``kind`` (see the module's docstring). ``checked`` hears how
    many rows each batch decided, ``writing`` the number of events about to be written,
    ``written`` how many each written chunk held."""
    started = time.perf_counter()
    report = ImportReport(
        kind.name,
        source.name,
        source.checksum,
        source.format,
        mode,
        dry_run,
        columns=dict(columns.columns),
    )
    excluded: frozenset[int] = frozenset()
    spool: _Spool | None = None
    for round_no in range(MAX_ROUNDS):
        if spool is not None:
            spool.close()
        spool = None if dry_run else _Spool()
        run = kind.start(replace(session, excluded_rows=excluded))
        report = _decide_all(
            session,
            kind,
            run,
            source,
            columns,
            report,
            spool,
            excluded,
            checked if round_no == 0 else None,
        )
        refused = frozenset(e.row for e in report.errors)
        if dry_run or mode == "all" or run.consistent(refused) or refused <= excluded:
            break
        excluded = refused
    try:
        if dry_run:
            report.status = "dry_run"
        elif report.errors and mode == "all":
            report.status = "rejected"
        elif report.accepted == 0:
            report.status = "already_imported" if report.already_imported else "nothing"
        else:
            assert spool is not None
            if writing is not None:
                writing(spool.count)
            began = time.perf_counter()
            try:
                result = bulk_append(session.store, spool.chunks(), progress=written)
            except Exception as exc:
                from event_store import ConcurrencyError

                if isinstance(exc, ConcurrencyError):
                    raise ImportConflict(
                        "a record this file makes was recorded meanwhile (another import of "
                        "it, or a command on a linked lead): nothing was written; run the "
                        "import again"
                    ) from exc
                raise
            report.write_seconds = time.perf_counter() - began
            report.imported = report.accepted
            report.events = result.events
            report.first_position = result.first_position
            report.last_position = result.last_position
            report.status = "imported"
    finally:
        if spool is not None:
            spool.close()
    report.seconds = time.perf_counter() - started
    return report


def _decide_all(
    session: Session,
    kind: Kind,
    run: Any,
    source: SourceFile,
    columns: ColumnMap,
    previous: ImportReport,
    spool: _Spool | None,
    excluded: frozenset[int],
    checked: Callable[[int], object] | None,
) -> ImportReport:
    report = replace(
        previous, rows=0, accepted=0, already_imported=0, refused=0, events=0, errors=[]
    )
    store = session.store
    if run.scan_fields:
        for number, cells in source.rows():
            if number in excluded:
                continue
            try:
                values = columns.parse(cells, only=run.scan_fields)
            except RowRefused:
                continue
            run.scan(number, values)
    seen: dict[bytes, int] = {}
    command = f"import-{kind.name}"
    for batch in _batches(source):
        parsed: list[tuple[int, UUID, dict[str, Any]]] = []
        for number, cells in batch:
            report.rows += 1
            try:
                values = columns.parse(cells)
                rid = kind.record(kind.key(number, values, source.checksum))
            except RowRefused as refusal:
                report.errors.append(_row_error(number, refusal, columns))
                run.refused(number)
                continue
            first = seen.setdefault(rid.bytes, number)
            if first != number:
                report.errors.append(
                    RowError(number, None, None, f"the same record as row {first}", "duplicate_row")
                )
                run.refused(number)
                continue
            parsed.append((number, rid, values))
        existing = run.present([(rid, values) for _, rid, values in parsed])
        fresh = [p for p in parsed if p[1] not in existing]
        report.already_imported += len(parsed) - len(fresh)
        run.prefetch([(number, values) for number, _, values in fresh])
        encoded: list[StoredRow] = []
        for number, rid, values in fresh:
            meta = CommandMeta(
                actor=session.actor,
                at=session.at,
                command_id=uuid5(IMPORT_NAMESPACE, f"{source.checksum}:{number}"),
                actor_role=session.actor_role,
                command=command,
                cause=cause_of(source, number),
            )
            try:
                specs = run.decide(number, rid, values, meta)
            except (DomainError, RowRefused) as refusal:
                report.errors.append(_row_error(number, refusal, columns))
                run.refused(number)
                continue
            report.accepted += 1
            report.events += len(specs)
            if spool is not None:
                encoded.extend(encode(store, s, v, e) for s, v, e in specs)
        if spool is not None:
            spool.add(encoded)
        if checked is not None:
            checked(len(batch))
    report.refused = len(report.errors)
    report.errors.sort(key=lambda e: e.row)
    return report


def rows_of(errors: Sequence[RowError]) -> dict[int, list[RowError]]:
    out: dict[int, list[RowError]] = {}
    for error in errors:
        out.setdefault(error.row, []).append(error)
    return out
