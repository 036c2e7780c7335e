"""The import framework's parts every kind shares: fields and their cell parsing, the
column mapping, refusals, and the protocol a kind implements.

A **kind** (leads, deals, companies; contacts next) is one small module in
``leadledger.imports.kinds``: its fields (name, type, whether required, the header names
recognised without a mapping), how a record's id (its stream) follows from a row, and a
``KindRun`` that tells which rows' records are in already and decides a row's events by
calling its aggregate's decide functions. Everything
else (reading files, mapping columns, dry runs, modes, idempotency, the error report,
the bulk write) is :mod:`leadledger.imports.runner`'s.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from uuid import UUID, SafeUUID

from aggregates.base import CommandMeta, DomainEvent
from aggregates.funnels import FunnelCatalog
from aggregates.rules import Rules
from event_store import EventStore

IMPORT_NAMESPACE = UUID("5d0c8f3e-6b2a-4e71-9c54-0a7e13f9b2d6")


_NAMESPACE_BYTES = IMPORT_NAMESPACE.bytes
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V5_SET = (5 << 76) | (0x8000 << 48)


def import_uuid(name: str) -> UUID:
    """``uuid5(IMPORT_NAMESPACE, name)``, made without ``UUID.__init__``'s checks (twice
    per imported row: its record's id and its command id)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    return _uuid((int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)


def uuid_of(raw: bytes) -> UUID:
    """``UUID(bytes=raw)`` for 16 bytes, without ``UUID.__init__``'s checks."""
    return _uuid(int.from_bytes(raw))


_UNKNOWN = SafeUUID.unknown
"""Looked up once: an enum member's lookup costs as much as the rest of ``_uuid``."""


def _uuid(value: int) -> UUID:
    out = object.__new__(UUID)
    object.__setattr__(out, "int", value)
    object.__setattr__(out, "is_safe", _UNKNOWN)
    return out


def record_id(kind: str, key: str) -> UUID:
    """A record's id from its kind and natural key: the same row imported again (from
    this file or a corrected one) is the same record."""
    return import_uuid(f"{kind}:{key}")


class RowRefused(Exception):
    """A row (one of its fields) cannot be imported."""

    def __init__(self, field: str | None, reason: str, code: str = "invalid_value") -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.code = code


class MappingError(ValueError):
    """The column mapping does not fit the kind or the file (names what)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- fields and cells -------------------------------------------------------------------

FieldType = str
"""'text', 'amount', 'day', 'instant', 'flag'"""


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = "text"
    required: bool = False
    needs_column: bool = False
    """The file must have its column, though a row may leave it empty (the kind decides:
    a deals file's continuation row leaves the deal's card empty)."""
    aliases: tuple[str, ...] = ()
    """Header names (any case) taken for this field when no mapping names the column."""
    help: str = ""


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().casefold())


def parse_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet's number used as text (a tax id)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def parse_amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if "," in text:
        text = text.replace(",", "") if "." in text else text.replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a number (e.g. 125000.50 or 125 000,50)") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


_DMY = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_instant(value: Any) -> datetime | None:
    """A date and time; a bare date is midnight; without a zone it is UTC."""
    if value.__class__ is str:
        # a CSV's cell, the usual case (up to three a row): ISO text without a "Z" parsed
        # at once; anything else goes the whole way below
        text = value.strip()
        if text and "Z" not in text and "." not in text[1:3]:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                pass
            else:
                return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    else:
        text = str(value).strip()
        if not text:
            return None
        # only a text with a dot second or third can be day.month.year
        match = _DMY.match(text) if "." in text[1:3] else None
        try:
            if match:
                d, m, y, hh, mm, ss = match.groups()
                moment = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                "must be a date or a date and time (2024-03-15, 2024-03-15 14:30, "
                "15.03.2024 or 15.03.2024 14:30)"
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    match = _DMY.match(text)
    try:
        if match and match.group(4) is None:
            d, m, y = match.group(1, 2, 3)
            return date(int(y), int(m), int(d))
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a date (2024-03-15 or 15.03.2024)") from None


_TRUE = frozenset({"true", "yes", "y", "1", "да", "д", "+"})
_FALSE = frozenset({"false", "no", "n", "0", "нет", "н", "-"})


def parse_flag(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return bool(value)
        raise ValueError("must be yes or no (true/false, да/нет, 1/0)")
    text = str(value).strip().casefold()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be yes or no (true/false, да/нет, 1/0)")


PARSERS: dict[FieldType, Callable[[Any], Any]] = {
    "text": parse_text,
    "amount": parse_amount,
    "instant": parse_instant,
    "day": parse_day,
    "flag": parse_flag,
}


# --- the column mapping -----------------------------------------------------------------

_Step = tuple[int, str, Callable[[Any], Any] | None, bool]
"""(column index, field name, its parser or None for text, required)"""

IGNORED = ("", "-")
"""A mapping value that leaves the column out."""


@dataclass(frozen=True)
class ColumnMap:
    """Which field each of the file's columns fills (by column index)."""

    fields: tuple[tuple[int, Field], ...]
    columns: dict[str, str]
    """field name → the file's column name (for error reports)."""
    plans: dict[frozenset[str] | None, tuple[_Step, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _plan(self, only: frozenset[str] | None) -> tuple[_Step, ...]:
        """The fields to parse (``only`` these, or all), as (column, name, parser — None
        for text —, required): made once, asked once per row."""
        plan = self.plans.get(only)
        if plan is None:
            plan = tuple(
                (i, f.name, None if f.type == "text" else PARSERS[f.type], f.required)
                for i, f in self.fields
                if only is None or f.name in only
            )
            self.plans[only] = plan
        return plan

    def parse(self, cells: Sequence[Any], only: frozenset[str] | None = None) -> dict[str, Any]:
        """The row's field values; raises RowRefused naming the first bad cell."""
        out: dict[str, Any] = {}
        width = len(cells)
        for index, name, parser, required in self._plan(only):
            raw = cells[index] if index < width else None
            if parser is None and raw.__class__ is str:
                value = raw.strip() or None  # a CSV's text cell: parse_text's answer, inlined
            else:
                try:
                    value = (parser or parse_text)(raw)
                except ValueError as exc:
                    raise RowRefused(name, f"'{name}' {exc}") from None
            if value is not None:
                out[name] = value
            elif required:
                raise RowRefused(name, f"'{name}' is required")
        return out


def resolve_mapping(
    kind: Kind, header: Sequence[str], explicit: Mapping[str, str] | None = None
) -> ColumnMap:
    """The file's columns mapped to the kind's fields: the explicit mapping first (column
    name → field name, '' or '-' to leave a column out), then any column whose header is a
    field's name or alias. Raises MappingError naming what does not fit."""
    by_name = {f.name: f for f in kind.fields}
    known = {_normal(h): i for i, h in enumerate(header) if h}
    chosen: dict[str, int] = {}
    explicit_columns: set[int] = set()
    for column, target in (explicit or {}).items():
        if not isinstance(column, str) or not isinstance(target, str):
            raise MappingError("mapping", "a mapping maps column names to field names (text)")
        index = known.get(_normal(column))
        if index is None:
            columns = ", ".join(f"'{h}'" for h in header if h)
            raise MappingError(
                "mapping", f"column '{column}' is not in the file (its columns: {columns})"
            )
        explicit_columns.add(index)
        if target.strip() in IGNORED:
            continue
        spec = by_name.get(target.strip())
        if spec is None:
            names = ", ".join(by_name)
            raise MappingError(
                "mapping", f"'{target}' is not a field of {kind.name} (its fields: {names})"
            )
        if spec.name in chosen:
            raise MappingError(
                "mapping",
                f"field '{spec.name}' is mapped from two columns: '{header[chosen[spec.name]]}' "
                f"and '{column}'",
            )
        chosen[spec.name] = index
    for spec in kind.fields:
        if spec.name in chosen:
            continue
        for name in (spec.name, *spec.aliases):
            index = known.get(_normal(name))
            if index is not None and index not in explicit_columns:
                if index not in chosen.values():
                    chosen[spec.name] = index
                break
    missing = [
        f.name for f in kind.fields if (f.required or f.needs_column) and f.name not in chosen
    ]
    if missing:
        raise MappingError(
            "mapping",
            f"no column for the required field(s) {', '.join(missing)} of {kind.name}: name "
            "the columns so, or map them (--map 'Column=field')",
        )
    pairs = sorted(((i, by_name[n]) for n, i in chosen.items()), key=lambda p: p[0])
    return ColumnMap(tuple(pairs), {n: header[i] for n, i in chosen.items()})


# --- a kind -----------------------------------------------------------------------------

NewEventSpec = tuple[UUID, int, DomainEvent]
"""(stream id, version, event)"""


@dataclass
class Session:
    """What a kind's run may use: the store and the configuration, and who imports when."""

    store: EventStore
    funnels: FunnelCatalog
    rules: Rules
    actor: str
    actor_role: str | None
    at: datetime
    file_name: str
    checksum: str
    excluded_rows: frozenset[int] = field(default_factory=frozenset)
    """Rows refused in an earlier round of this run (rows mode): treated as absent."""


class KindRun(Protocol):
    """One import of one file of a kind (its state lives as long as the run).

    Optionally, ``independent = True`` (read with ``getattr``; leads set it): after every
    row was scanned, one ``prefetch([])`` loads what deciding any row needs, and from then
    on ``decide`` depends on the run's state only, changes none of it that another row's
    decision reads, and the run can be copied into worker processes (forked). A large
    file is then decided in a pool of workers (see :mod:`leadledger.imports.runner`);
    such a run also offers ``present_ids(records: Sequence[bytes]) -> set[bytes]``,
    ``present`` for record ids as their 16 bytes (the pool makes no ``UUID`` of them),
    and ``decide`` may be called for a row that ``present_ids`` then finds (its decision
    is dropped)."""

    scan_fields: frozenset[str]
    """Fields the first, cheap pass reads from every row (empty: no such pass)."""

    def scan(self, number: int, values: dict[str, Any]) -> None:
        """See a row before any is decided (e.g. to know each company's first lead)."""

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        """Which of these rows' records (record id, the row's values) are in already, so
        the row is "already imported" (leads, deals: their stream exists; one query per
        batch)."""

    def prefetch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Load in one go what deciding these rows needs from the store."""

    def decide(
        self, number: int, record: UUID, values: dict[str, Any], meta: CommandMeta
    ) -> list[NewEventSpec]:
        """The events of the row's record ``record`` (its stream's next: the first, at
        version 1, for a new record), and any other stream's next, or raise a DomainError
        or RowRefused. Called once per row in file order, never for a row whose record
        :meth:`present` found."""

    def refused(self, number: int) -> None:
        """The row was refused after ``scan`` saw it."""

    def consistent(self, refused: frozenset[int]) -> bool:
        """Whether the decisions hold with these rows refused (rows mode); False asks
        for another round without them."""


class Kind(Protocol):
    name: str
    fields: tuple[Field, ...]

    def key(self, number: int, values: dict[str, Any], checksum: str) -> str:
        """The row's natural key."""

    def record(self, key: str) -> UUID:
        """The id of the record (the stream) a row of this key makes: mostly
        ``record_id(kind, key)``."""

    def start(self, session: Session) -> KindRun: ...


def natural_key(values: Mapping[str, Any], fields: Sequence[str]) -> str:
    """A key from the row's own values: ``external_id`` when given, else its content."""
    external = values.get("external_id")
    if external:
        return f"id:{external}"
    return "row:" + "\x1f".join(str(values.get(name, "")) for name in fields)
