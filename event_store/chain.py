"""A tamper-evident hash chain over the stored events (issue 6).

Every stored event has a row in ``leadledger_event_chain`` (same database and schema as
the events, written in the same transaction by the recorders in
``event_store.recorders``)::

    hash(n) = SHA-256(hash(p) || F(n, stream id) || F(n, version) ... )

precisely: ``hash(n) = SHA-256(hash(p) || field(position) || field(stream id) ||
field(version) || field(topic) || field(state))`` where ``p`` is the chain's previous
position (``hash(0)`` = 32 zero bytes), each field is its length as a 4-byte big-endian
integer followed by its bytes, positions and versions are 8-byte big-endian signed
integers, the stream id is the UUID as 32 lowercase hex ASCII characters (the id's
UTF-8 text for text ids), the topic is UTF-8 and the state is the stored bytes as they
are. Positions may have gaps (PostgreSQL can burn sequence numbers); the chain links
each event to the chain's previous row, whatever its position.

``verify`` re-reads both tables in position order, in one snapshot, and names the first
position where an event was altered, removed, inserted or reordered. ``seal_existing``
chains events that have no chain row yet (events recorded before the chain existed).
The head hash is what an auditor writes down elsewhere: a chain cannot show that its tail
was cut off or rewritten by someone able to recompute every later hash.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

CHAIN_TABLE = "leadledger_event_chain"
ZERO_HASH = bytes(32)

Problem = Literal["altered", "removed", "inserted", "reordered", "unsealed"]

EventRow = tuple[int, bytes, int, bytes, bytes]
"""(position, stream id bytes, version, topic bytes, state) — the hashed fields."""
ChainRow = tuple[int, bytes]
"""(position, hash)"""

_sha256 = hashlib.sha256
_int_then_len = struct.Struct(">Iqi").pack  # 8, an 8-byte integer, the next field's length
_len = struct.Struct(">i").pack


class ChainError(Exception):
    """The chain cannot be extended (its rows run ahead of the events: see verify)."""


def link(
    prev: bytes, position: int, stream_id: bytes, version: int, topic: bytes, state: bytes
) -> bytes:
    """The hash of one event chained after ``prev``."""
    return _sha256(
        b"".join(
            (
                prev,
                _int_then_len(8, position, len(stream_id)),
                stream_id,
                _int_then_len(8, version, len(topic)),
                topic,
                _len(len(state)),
                state,
            )
        )
    ).digest()


def stream_id_bytes(originator_id: UUID | str) -> bytes:
    """The stream id as hashed: 32 hex ASCII characters for a UUID (as SQLite stores it)."""
    if isinstance(originator_id, UUID):
        return originator_id.hex.encode()
    return originator_id.encode()


def link_stored(
    prev: bytes, positions: Sequence[int], events: Sequence[StoredEvent]
) -> list[ChainRow]:
    """Chain rows for events just inserted at ``positions`` (one per event, same order).

    ``link`` inlined: this runs inside every append's write transaction."""
    pairs: Iterable[tuple[int, StoredEvent]] = zip(positions, events, strict=True)
    if len(positions) > 1 and any(a > b for a, b in itertools.pairwise(positions)):
        pairs = sorted(pairs, key=lambda pair: pair[0])
    rows: list[ChainRow] = []
    append = rows.append
    sha256 = _sha256
    join = b"".join
    int_then_len = _int_then_len
    length = _len
    for position, e in pairs:
        sid = e.originator_id
        stream_id = sid.hex.encode() if isinstance(sid, UUID) else sid.encode()
        topic = e.topic.encode()
        state = e.state
        prev = sha256(
            join(
                (
                    prev,
                    int_then_len(8, position, len(stream_id)),
                    stream_id,
                    int_then_len(8, e.originator_version, len(topic)),
                    topic,
                    length(len(state)),
                    state,
                )
            )
        ).digest()
        append((position, prev))
    return rows


def link_rows(prev: bytes, rows: Iterable[EventRow]) -> list[ChainRow]:
    """Chain rows for events read back from the database (position order)."""
    out: list[ChainRow] = []
    for position, stream_id, version, topic, state in rows:
        prev = link(prev, position, stream_id, version, topic, state)
        out.append((position, prev))
    return out


@runtime_checkable
class ChainedRecorder(Protocol):
    """What the recorders in ``event_store.recorders`` offer the chain."""

    chain_enabled: bool

    def chain_scan(
        self, chunk: int
    ) -> AbstractContextManager[tuple[Iterator[EventRow], Iterator[ChainRow]]]:
        """Every event and every chain row, each in position order, in one snapshot."""
        ...

    def seal_chain(self, chunk: int) -> int:
        """Chain rows for the events after the chain head; how many were written."""
        ...


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    """Events checked and found intact (all of them when ``ok``)."""
    head_position: int
    head_hash: str
    """Hex of the last intact chain row's hash (of 32 zero bytes for an empty store)."""
    seconds: float = 0.0
    position: int | None = None
    problem: Problem | None = None
    detail: str = ""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {
                "ok": True,
                "events": self.events,
                "head_position": self.head_position,
                "head_hash": self.head_hash,
            }
        return {
            "ok": False,
            "position": self.position,
            "problem": self.problem,
            "detail": self.detail,
        }

    def message(self) -> str:
        if self.ok:
            return (
                f"event chain intact: {self.events} events, head position "
                f"{self.head_position}, head hash {self.head_hash}"
            )
        return f"event chain broken at position {self.position}: {self.problem} ({self.detail})"


def _recorder(target: Any) -> ChainedRecorder:
    recorder = getattr(target, "recorder", target)
    if not isinstance(recorder, ChainedRecorder):
        raise TypeError(f"{type(recorder).__name__} keeps no event chain")
    return recorder


def seal_existing(target: Any, *, chunk: int = 20_000) -> int:
    """Chain the events that have no chain row: all of them when the chain is empty, else
    those after the chain head. Returns how many were sealed. Events without a chain row
    below the head are left alone: ``verify`` reports them as inserted."""
    return _recorder(target).seal_chain(chunk)


def verify(target: Any, *, chunk: int = 20_000) -> ChainReport:
    """Re-check the whole chain of an ``EventStore`` (or of its recorder)."""
    recorder = _recorder(target)
    started = time.perf_counter()
    with recorder.chain_scan(chunk) as (events, chain):
        report = _check(events, chain)
    seconds = time.perf_counter() - started
    return ChainReport(
        ok=report.ok,
        events=report.events,
        head_position=report.head_position,
        head_hash=report.head_hash,
        seconds=seconds,
        position=report.position,
        problem=report.problem,
        detail=report.detail,
    )


def _check(events: Iterator[EventRow], chain: Iterator[ChainRow]) -> ChainReport:
    prev = ZERO_HASH
    head = 0  # position of the last intact chain row (0: none yet)
    count = 0
    pending: list[EventRow] = []  # events without a chain row, below a later chain row
    ev = next(events, None)
    ch = next(chain, None)
    _link = link

    def broken(position: int, problem: Problem, detail: str) -> ChainReport:
        return ChainReport(False, count, head, prev.hex(), 0.0, position, problem, detail)

    while ev is not None:
        if ch is not None and ev[0] == ch[0]:
            h = _link(prev, *ev)
            if pending:
                return _resolve_pending(broken, pending, prev, head, ev, ch)
            if h != ch[1]:
                return _mismatch(broken, prev, head, ev, ch, chain)
            prev = h
            head = ev[0]
            count += 1
            ev = next(events, None)
            ch = next(chain, None)
        elif ch is None:
            if pending:
                break
            position = ev[0]
            rest = 1 + sum(1 for _ in events)
            return broken(
                position,
                "unsealed",
                f"{rest} event(s) from position {position} on have no chain row "
                f"(the chain ends at position {head}); `leadledger verify --seal` seals them",
            )
        elif ev[0] < ch[0]:
            pending.append(ev)
            ev = next(events, None)
        else:
            break  # a chain row without its event
    if pending:
        first = pending[0][0]
        return broken(first, "inserted", f"event at position {first} has no chain row")
    if ch is not None:
        return broken(
            ch[0], "removed", f"the event at position {ch[0]} is missing; its chain row is there"
        )
    return ChainReport(True, count, head, prev.hex())


def _resolve_pending(
    broken: Any,
    pending: list[EventRow],
    prev: bytes,
    head: int,
    ev: EventRow,
    ch: ChainRow,
) -> ChainReport:
    """Events without chain rows, followed by an event with one: was their chain row
    deleted (the chain runs over them), or were they slipped in beside the chain?"""
    first = pending[0][0]
    through = prev
    for row in pending:
        through = link(through, *row)
    if link(through, *ev) == ch[1]:
        report: ChainReport = broken(
            first,
            "removed",
            f"the chain row of the event at position {first} was deleted "
            "(the event itself is intact)",
        )
        return report
    if link(prev, *ev) == ch[1]:
        if head == 0:
            report = broken(
                first,
                "unsealed",
                f"events from position {first} to {pending[-1][0]} were recorded before the "
                "chain began and were never sealed",
            )
        else:
            report = broken(
                first,
                "inserted",
                f"the event at position {first} was added outside the chain "
                "(no chain row, and the next event's hash skips it)",
            )
        return report
    report = broken(first, "inserted", f"the event at position {first} has no chain row")
    return report


def _mismatch(
    broken: Any,
    prev: bytes,
    head: int,
    ev: EventRow,
    ch: ChainRow,
    chain: Iterator[ChainRow],
) -> ChainReport:
    """The event at ``ev[0]`` does not match its chain row: say why, as far as one can."""
    position = ev[0]
    fields = ev[1:]
    # Reordered: this content hashes correctly at a later position of the chain.
    before = ch[1]
    for later, stored in chain:
        if link(before, later, *fields) == stored:
            report: ChainReport = broken(
                position,
                "reordered",
                f"the event at position {position} (stream {fields[0].decode(errors='replace')}"
                f" version {fields[1]}) belongs at position {later}: events were swapped or "
                "moved",
            )
            return report
        before = stored
    if head < position - 1:
        report = broken(
            head + 1,
            "removed",
            f"positions {head + 1}..{position - 1} are missing and the event at position "
            f"{position} does not match its hash: events were deleted with their chain rows "
            f"(or the event at {position} was altered)",
        )
        return report
    report = broken(
        position,
        "altered",
        f"the event at position {position} (stream {fields[0].decode(errors='replace')} "
        f"version {fields[1]}) does not match its hash",
    )
    return report
