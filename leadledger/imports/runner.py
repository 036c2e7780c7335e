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

**Pooled** (a large file of a kind whose run is ``independent``, with more than one core):
the run's shared state is computed first (the scan, then one ``prefetch``), worker
processes (forked: they inherit it) parse, key, decide and encode batches of rows, and
this process takes their results in file order — duplicates in the file, records in the
store already, refusals — exactly as the serial path does. In mode ``all`` the write is a
pipeline: each batch's events go into the open transaction (``COPY``) while the workers
decide the next ones; the first refused row rolls the transaction back (the file or
nothing), and the remaining rows are checked for the report.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import IO, Any, Literal
from uuid import UUID

from aggregates.base import CommandMeta
from aggregates.errors import DomainError, InvalidValue, NotPermitted, RuleViolation
from event_store.bulk import Chunk, Prepared, bulk_append, encode
from event_store.store import ConcurrencyError
from leadledger.imports.base import (
    IMPORT_NAMESPACE,
    ColumnMap,
    Kind,
    RowRefused,
    Session,
    import_uuid,
)
from leadledger.imports.files import SourceFile

Mode = Literal["all", "rows"]
BATCH = 2_000
MAX_ROUNDS = 3
POOL_MIN_BYTES = 2 * 2**20
"""A smaller file is decided in this process (starting workers costs more than it saves)."""
MAX_WORKERS = 4


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


def _conflict() -> ImportConflict:
    return ImportConflict(
        "a record this file makes was recorded meanwhile (another import of it, or a "
        "command on a linked lead): nothing was written; run the import again"
    )


def cause_of(source: SourceFile, number: int) -> str:
    return f"import {source.name} sha256:{source.checksum} row {number}"


def _row_meta(session: Session, kind: Kind, source: SourceFile) -> Callable[[int], CommandMeta]:
    """Row number → the row's CommandMeta (its command id and cause are the row's), each a
    copy of one made for the file, without the frozen ``__init__`` per row."""
    template = CommandMeta(
        actor=session.actor,
        at=session.at,
        command_id=IMPORT_NAMESPACE,
        actor_role=session.actor_role,
        command=f"import-{kind.name}",
        cause=cause_of(source, 0),
    ).__dict__
    ids = f"{source.checksum}:"
    cause = f"import {source.name} sha256:{source.checksum} row "
    new = object.__new__
    set_attribute = object.__setattr__

    def meta(number: int) -> CommandMeta:
        made = new(CommandMeta)
        fields = template.copy()
        fields["command_id"] = import_uuid(f"{ids}{number}")
        fields["cause"] = f"{cause}{number}"
        set_attribute(made, "__dict__", fields)
        return made

    return meta


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

    def add(self, rows: Chunk) -> None:
        if rows:
            pickle.dump(rows, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(rows)

    def chunks(self) -> Iterator[Chunk]:
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
    workers: int | None = None,
) -> ImportReport:
    """Import ``source`` as ``kind`` (see the module's docstring). ``checked`` hears how
    many rows each batch decided, ``writing`` the number of events about to be written,
    ``written`` how many each written chunk held (pipelined: both once, after the
    commit). ``workers``: the processes deciding rows (default: the cores, at most
    ``MAX_WORKERS``, for a file of ``POOL_MIN_BYTES`` or more read in the main thread
    (the CLI; not a server's request thread); 1: this process)."""
    with _collector_paused():
        return _run_import(
            session,
            kind,
            source,
            columns,
            mode,
            dry_run,
            checked=checked,
            written=written,
            writing=writing,
            workers=workers,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for the import (in the main thread: a CLI's
    run; a server's request thread leaves it alone). An import allocates millions of
    short-lived, acyclic objects (its rows, their values, their events; freed by their
    reference counts), and each of the collector's passes would walk them all again
    (≈ 10 % of the importing process's time and its workers', forked with it paused)."""
    if threading.current_thread() is not threading.main_thread() or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _run_import(
    session: Session,
    kind: Kind,
    source: SourceFile,
    columns: ColumnMap,
    mode: Mode,
    dry_run: bool,
    *,
    checked: Callable[[int], object] | None,
    written: Callable[[int], object] | None,
    writing: Callable[[int], object] | None,
    workers: int | None,
) -> ImportReport:
    if workers is None:
        workers = _default_workers(source)
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
        if workers > 1 and getattr(run, "independent", False):
            pooled = _Pooled(session, kind, run, source, columns, report, excluded, workers)
            decided = pooled.chunks(checked if round_no == 0 else None)
            if not dry_run and mode == "all":
                if spool is not None:
                    spool.close()
                return _pipeline(session, pooled, decided, started, writing, written)
            for chunk in decided:
                if spool is not None:
                    spool.add(chunk)
            report = pooled.report
        else:
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
            except ConcurrencyError as exc:
                raise _conflict() from exc
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
    meta_of = _row_meta(session, kind, source)
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
        encoded = Prepared()  # spooled as three lists of bytes, not a UUID per event
        for number, rid, values in fresh:
            try:
                specs = run.decide(number, rid, values, meta_of(number))
            except (DomainError, RowRefused) as refusal:
                report.errors.append(_row_error(number, refusal, columns))
                run.refused(number)
                continue
            report.accepted += 1
            report.events += len(specs)
            if spool is not None:
                for s, v, e in specs:
                    encoded.add(encode(store, s, v, e))
        if spool is not None:
            spool.add(encoded)
        if checked is not None:
            checked(len(batch))
    report.refused = len(report.errors)
    report.errors.sort(key=lambda e: e.row)
    return report


def _default_workers(source: SourceFile) -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if threading.current_thread() is not threading.main_thread():
        return 1  # a server's request thread: forking a threaded process is not safe
    try:
        size = source.path.stat().st_size
    except OSError:
        return 1
    if size < POOL_MIN_BYTES:
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


class _Rejected(Exception):
    """A row was refused in mode ``all``: the open write is rolled back."""


Decided = tuple[list[int], list[bytes | None], dict[int, RowError], list[int], Prepared]
"""A batch decided by a worker, in columns (a few objects to pickle, not a few per row):
its rows' numbers; their record ids as 16 bytes (None: the row could not be read); the
refusals by the row's index in the batch; how many events each row made; the events,
prepared for the ``COPY`` (the writing process only numbers and chains them)."""

_JOB: _Job | None = None
"""What the workers decide with (set before they are forked, inherited by them)."""


@dataclass(frozen=True)
class _Job:
    session: Session
    kind: Kind
    run: Any
    columns: ColumnMap
    source: SourceFile


def _decide_batch(batch: bytes | list[tuple[int, list[Any]]]) -> Decided:
    """In a worker: a batch of rows (or the batch pickled) read, keyed, decided and
    encoded."""
    rows: list[tuple[int, list[Any]]] = pickle.loads(batch) if isinstance(batch, bytes) else batch
    job = _JOB
    assert job is not None
    session, kind, run, columns = job.session, job.kind, job.run, job.columns
    meta_of = _row_meta(session, kind, job.source)
    store = session.store
    checksum = job.source.checksum
    numbers: list[int] = []
    records: list[bytes | None] = []
    errors: dict[int, RowError] = {}
    counts: list[int] = []
    events = Prepared()
    add = events.add
    for number, cells in rows:
        numbers.append(number)
        try:
            values = columns.parse(cells)
            rid = kind.record(kind.key(number, values, checksum))
        except RowRefused as refusal:
            errors[len(records)] = _row_error(number, refusal, columns)
            records.append(None)
            counts.append(0)
            continue
        try:
            specs = run.decide(number, rid, values, meta_of(number))
        except (DomainError, RowRefused) as refusal:
            errors[len(records)] = _row_error(number, refusal, columns)
            records.append(rid.bytes)
            counts.append(0)
            continue
        for s, v, e in specs:
            add(encode(store, s, v, e))
        records.append(rid.bytes)
        counts.append(len(specs))
    return numbers, records, errors, counts, events


class _Pooled:
    """One round of a pooled decision (see the module's docstring)."""

    def __init__(
        self,
        session: Session,
        kind: Kind,
        run: Any,
        source: SourceFile,
        columns: ColumnMap,
        previous: ImportReport,
        excluded: frozenset[int],
        workers: int,
    ) -> None:
        self.session, self.kind, self.run = session, kind, run
        self.source, self.columns, self.excluded, self.workers = source, columns, excluded, workers
        self.report = replace(
            previous, rows=0, accepted=0, already_imported=0, refused=0, events=0, errors=[]
        )
        self.seen: dict[bytes, int] = {}
        self.spooled: IO[bytes] | None = None

    def chunks(self, checked: Callable[[int], object] | None) -> Iterator[Prepared]:
        """Every batch's accepted events, in file order; the report filled as they come.
        The scan, the prefetch and the workers' start happen here, before any is asked
        for (so not inside a write transaction)."""
        global _JOB
        run, source, columns = self.run, self.source, self.columns
        if run.scan_fields:
            # the file is read once: the scan's pass also spools the batches, pickled as
            # the workers take them (not read and pickled again in this process)
            self.spooled = tempfile.TemporaryFile(prefix="leadledger-import-")  # noqa: SIM115
            for batch in _batches(source):
                data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
                self.spooled.write(len(data).to_bytes(8))
                self.spooled.write(data)
                for number, cells in batch:
                    if number in self.excluded:
                        continue
                    try:
                        values = columns.parse(cells, only=run.scan_fields)
                    except RowRefused:
                        continue
                    run.scan(number, values)
        run.prefetch([])  # an independent run's shared state: for every scanned row
        _JOB = _Job(self.session, self.kind, run, columns, source)
        try:
            pool = multiprocessing.get_context("fork").Pool(self.workers)
        finally:
            _JOB = None
        return self._results(pool, checked)

    def _results(self, pool: Any, checked: Callable[[int], object] | None) -> Iterator[Prepared]:
        try:
            pending: deque[Any] = deque()
            batches = self._spooled() if self.spooled is not None else _batches(self.source)
            for batch in batches:
                pending.append(pool.apply_async(_decide_batch, (batch,)))
                if len(pending) >= 2 * self.workers:
                    break
            while pending:
                decided: Decided = pending.popleft().get()
                following = next(batches, None)
                if following is not None:
                    pending.append(pool.apply_async(_decide_batch, (following,)))
                yield self._take(decided)
                if checked is not None:
                    checked(len(decided[0]))
        finally:
            pool.terminate()
            pool.join()
            if self.spooled is not None:
                self.spooled.close()
        self.report.refused = len(self.report.errors)
        self.report.errors.sort(key=lambda e: e.row)

    def _spooled(self) -> Iterator[bytes]:
        """The batches the scan spooled, pickled, in file order."""
        assert self.spooled is not None
        self.spooled.seek(0)
        while size := self.spooled.read(8):
            yield self.spooled.read(int.from_bytes(size))

    def _take(self, decided: Decided) -> Prepared:
        """A batch's outcomes judged as the serial path judges them."""
        numbers, records, errors, counts, events = decided
        report, run = self.report, self.run
        seen = self.seen
        read: list[int] = []
        ids: list[bytes] = []
        for index, (number, rid) in enumerate(zip(numbers, records, strict=True)):
            if rid is None:
                report.errors.append(errors[index])
                run.refused(number)
                continue
            first = seen.setdefault(rid, number)
            if first != number:
                report.errors.append(
                    RowError(number, None, None, f"the same record as row {first}", "duplicate_row")
                )
                run.refused(number)
                continue
            read.append(index)
            ids.append(rid)
        report.rows += len(numbers)
        existing = run.present_ids(ids)
        if len(read) == len(numbers) and not existing and not errors:
            # every row of the batch accepted: its events as the worker sent them
            report.accepted += len(numbers)
            report.events += len(events)
            return events
        starts = list(accumulate(counts, initial=0))
        accepted = Prepared()
        for index, rid in zip(read, ids, strict=True):
            if rid in existing:
                report.already_imported += 1
            elif index in errors:
                report.errors.append(errors[index])
                run.refused(numbers[index])
            else:
                report.accepted += 1
                report.events += counts[index]
                accepted.extend(events, starts[index], starts[index + 1])
        return accepted


def _pipeline(
    session: Session,
    pooled: _Pooled,
    decided: Iterator[Prepared],
    started: float,
    writing: Callable[[int], object] | None,
    written: Callable[[int], object] | None,
) -> ImportReport:
    """Mode ``all``, pooled: each batch written as it is decided, in one transaction."""
    report = pooled.report
    deciding = 0.0

    def until_refused() -> Iterable[Prepared]:
        nonlocal deciding
        while True:
            began = time.perf_counter()
            chunk = next(decided, None)
            deciding += time.perf_counter() - began
            if report.errors:
                raise _Rejected  # rolled back now; the other rows are checked after
            if chunk is None:
                return
            yield chunk

    began = time.perf_counter()
    try:
        result = bulk_append(session.store, until_refused())
    except _Rejected:
        for _ in decided:
            pass  # every row checked, for the report
        report.status = "rejected"
    except ConcurrencyError as exc:
        raise _conflict() from exc
    else:
        report.write_seconds = time.perf_counter() - began - deciding
        if report.accepted == 0:
            report.status = "already_imported" if report.already_imported else "nothing"
        else:
            report.imported = report.accepted
            report.events = result.events
            report.first_position = result.first_position
            report.last_position = result.last_position
            report.status = "imported"
            if writing is not None:
                writing(result.events)
            if written is not None:
                written(result.events)
    report.seconds = time.perf_counter() - started
    return report


def rows_of(errors: Sequence[RowError]) -> dict[int, list[RowError]]:
    out: dict[int, list[RowError]] = {}
    for error in errors:
        out.setdefault(error.row, []).append(error)
    return out
