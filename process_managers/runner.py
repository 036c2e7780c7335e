"""Runs process managers: each follows the notification log from its own stored position,
reacts to the events it cares about, and fires its due deadlines by an injected clock.

A process manager's reactions are commands with deterministic ids on the same handlers
the API uses, so a page delivered again after a crash (or every event delivered twice)
creates nothing twice: the command finds its own earlier event, or the aggregate's
rules refuse what was done already. The position and the page's deadline changes are
stored in one transaction after the page's reactions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Protocol
from uuid import UUID, uuid5

from aggregates.errors import DomainError
from commands.context import CommandContext, CommandFailed, CommandResult, VersionConflict
from event_store import EventStore, RecordedEvent
from event_store.follow import Progress, follow_until_stopped
from process_managers.state import Deadline, DeadlineChanges, ProcessStore

log = logging.getLogger(__name__)

PROCESS_NAMESPACE = UUID("c7f1e2d3-4b5a-4968-8d7c-6e5f4a3b2c10")
PROCESS_ROLE = "process"

CAUSE: ContextVar[str | None] = ContextVar("leadledger_process_cause", default=None)
"""What the process manager is reacting to while it issues commands (the event or the
deadline), recorded on every event it causes."""


def event_cause(recorded: RecordedEvent) -> str:
    kind = type(recorded.event).__module__.rsplit(".", 1)[-1]
    return f"{recorded.event.type} of {kind} {recorded.stream_id} (position {recorded.position})"


VERSION_CONFLICT_RETRIES = 5

BUSY_SETTLE_SECONDS = 0.03
"""How long the loop lets appends land after a wake when its last round found events."""


class ProcessManager(Protocol):
    name: str
    topics: frozenset[str]

    def handle(self, recorded: RecordedEvent, changes: DeadlineChanges) -> None:
        """React to one event: issue commands, add deadlines to schedule or cancel."""

    def fire(self, deadline: Deadline) -> Deadline | None:
        """A deadline is due: act on it; the follow-up deadline, if any."""


class Issuer:
    """Builds the contexts of a process manager's commands: actor, clock, deterministic id."""

    def __init__(self, name: str, clock: Callable[[], datetime]) -> None:
        self.name = name
        self.actor = f"leadledger.{name}"
        self.clock = clock

    def context(self, *key: object) -> CommandContext:
        identity = ":".join(str(k) for k in (self.name, *key))
        cause = CAUSE.get()
        return CommandContext(
            actor=self.actor,
            at=self.clock(),
            command_id=uuid5(PROCESS_NAMESPACE, identity),
            idempotency_key=identity,
            actor_role=PROCESS_ROLE,
            command=self.name,
            cause=f"the {self.name} process, on {cause}" if cause else f"the {self.name} process",
        )

    def issue(self, send: Callable[[CommandContext], CommandResult], *key: object) -> bool:
        """Send a command; False when the aggregate's rules refuse it (nothing to do).

        A race with another writer on the same stream is retried on fresh state.
        """
        for _ in range(VERSION_CONFLICT_RETRIES):
            try:
                send(self.context(*key))
                return True
            except VersionConflict:
                continue
            except (DomainError, CommandFailed) as refusal:
                log.debug("%s: %s refused: %s", self.name, key, refusal)
                return False
        raise VersionConflict(f"{self.name}: {key} kept conflicting", 0)


class ProcessRunner:
    """Drives process managers: catch up with the log, then fire due deadlines."""

    def __init__(
        self,
        store: EventStore,
        managers: Sequence[ProcessManager],
        clock: Callable[[], datetime],
        *,
        page_size: int = 500,
        process_store: ProcessStore | None = None,
    ) -> None:
        self.store = store
        self.managers = list(managers)
        self.clock = clock
        self.page_size = page_size
        self.state = process_store or ProcessStore(store)
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._read_up_to: dict[str, int] = {}
        """How far each manager has read when pages it ignored were not stored (below)."""
        self._followed: dict[str, int] = {}
        """How far each manager has handled the log (its last page's end) in this process."""
        self.progress = Progress(0, self._hurry_up)
        """How far every manager has handled the log in this process: their reactions to
        the events up to there are in the log (see ``reached``)."""
        self.appended = 0
        """The last position appended by the managers in ``run_forever``'s thread."""
        self._thread: int | None = None
        self._moved = False
        """Whether this round's reads found the log longer than the managers' positions."""
        self._stored: dict[str, int] = {}
        """The managers' stored positions, read once a round (``run_once``) and kept as
        this runner stores them."""
        self._next_due: dict[str, datetime | None] = {}
        """When each manager's soonest deadline is due (None: none), read once a round and
        kept as this runner schedules: a manager with none due costs no query a round."""

    @property
    def running(self) -> bool:
        """The managers follow the log in this process (``run_forever``)."""
        return self._thread is not None

    async def reached(self, position: int, timeout: float) -> bool:
        """Wait until every manager has handled the log up to ``position`` in this process
        (what they issued in reaction is appended: ``appended`` is at or after it); False
        on timeout."""
        return await self.progress.reached(position, timeout)

    def _hurry_up(self) -> None:
        self._wake.set()
        self._hurry.set()

    def position(self, name: str) -> int:
        stored = self._stored.get(name)
        if stored is None:
            stored = self.state.position(name)
        return max(stored, self._read_up_to.get(name, 0))

    def _scheduled(self, name: str, deadlines: Sequence[Deadline]) -> None:
        """Deadlines this runner stored for ``name``: its soonest may now be sooner."""
        if name in self._next_due:
            moments = [d.due_at for d in deadlines]
            known = self._next_due[name]
            self._next_due[name] = min(moments + ([known] if known is not None else []))

    def follow(self) -> int:
        """Deliver every manager its events of the next page of the log; how many rows the
        page held.

        One read serves every manager: the database filters the log to the union of
        their topics (the events none of them handles are never fetched nor decoded),
        from the position of the one furthest behind; each manager is given the rows of
        its own topics after its own position, in order. A manager given nothing and
        asking no deadline change writes nothing."""
        positions = {m.name: self.position(m.name) for m in self.managers}
        after = min(positions.values())
        topics = frozenset().union(*(m.topics for m in self.managers))
        rows, upto = self.store.read_topic_rows(after, self.page_size, topics)
        if upto <= after:
            self._followed.update(positions)
            return 0
        self._moved = True
        codec = self.store.codec
        decoded: dict[int, RecordedEvent] = {}
        for manager in self.managers:
            name = manager.name
            mine = positions[name]
            end = max(upto, mine)
            changes = DeadlineChanges()
            handled = 0
            for position, stream_id, version, topic, state in rows:
                if position <= mine or topic not in manager.topics:
                    continue
                recorded = decoded.get(position)
                if recorded is None:
                    event = codec.decode(topic, state)
                    recorded = RecordedEvent(UUID(stream_id), version, position, event)
                    decoded[position] = recorded
                token = CAUSE.set(event_cause(recorded))
                try:
                    manager.handle(recorded, changes)
                finally:
                    CAUSE.reset(token)
                handled += 1
            if end > mine:
                self._advanced(name, end, changes, handled)
            self._followed[name] = end
        return len(rows)

    def _advanced(self, name: str, end: int, changes: DeadlineChanges, handled: int) -> None:
        """A manager has handled the log up to ``end``: store it with its deadline changes,
        or, when it was given nothing and changes nothing, only remember it here."""
        if handled or changes.schedule or changes.cancel:
            self.state.advance(name, end, changes)
            self._read_up_to.pop(name, None)
            if name in self._stored:
                self._stored[name] = end
            if changes.schedule:
                self._scheduled(name, changes.schedule)
        else:
            # a stretch of the log with nothing for this manager changes nothing: no
            # transaction; the stored position catches up with the next page it handles
            # (after a restart that stretch is read again, as nothing)
            self._read_up_to[name] = end

    def fire_due(self, manager: ProcessManager) -> int:
        """Fire the manager's deadlines due by the clock; how many fired."""
        fired = 0
        while True:
            now = self.clock()
            if manager.name in self._next_due:
                soonest = self._next_due[manager.name]
                if soonest is None or soonest > now:
                    return fired
            due = self.state.due(manager.name, now)
            if not due:
                self._next_due.pop(manager.name, None)  # asked again next round
                return fired
            for deadline in due:
                token = CAUSE.set(
                    f"the {deadline.kind} deadline of {deadline.subject_id} "
                    f"due {deadline.due_at:%Y-%m-%d %H:%M}"
                )
                try:
                    follow_up = manager.fire(deadline)
                finally:
                    CAUSE.reset(token)
                self.state.complete(manager.name, deadline.key, follow_up)
                if follow_up is not None:
                    self._scheduled(manager.name, [follow_up])
                fired += 1

    def run_once(self) -> int:
        """Catch every manager up with the log and fire what is due; events read."""
        total = 0
        names = [m.name for m in self.managers]
        # one statement a round for every manager's position and soonest deadline
        self._stored, self._next_due = self.state.round_state(names)
        self._moved = False
        if self.managers:
            while True:
                read = self.follow()
                total += read
                if read < self.page_size:
                    break
        if not self._moved and self._read_up_to:
            self._store_quiet()
        for manager in self.managers:
            self.fire_due(manager)
        if self.managers:
            self.progress.advance(min(self._followed[m.name] for m in self.managers))
        return total

    def _store_quiet(self) -> None:
        """The log is quiet (the round found nothing new): store the positions that ignored
        stretches left only in memory, in one transaction, so that a restart or another
        process reading them sees where the managers are. Under load, none is written."""
        self.state.store_positions(self._read_up_to)
        for name, position in self._read_up_to.items():
            if name in self._stored:
                self._stored[name] = position
        self._read_up_to.clear()

    def notify(self, position: int = 0) -> None:
        """Wake the loop (called after every append in this process); an append by the
        loop's own thread is one of the managers' reactions: remembered in ``appended``."""
        if threading.get_ident() == self._thread:
            self.appended = max(self.appended, position)
        self._wake.set()

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        # while appends keep coming, a short settle lets them land so that each manager's
        # fixed cost a page (log read, position, deadlines) is shared by more events; idle,
        # the first append is handled at once
        self._thread = threading.get_ident()
        try:
            follow_until_stopped(
                self.run_once,
                self._wake,
                stop,
                poll_seconds,
                what="process managers",
                log=log,
                busy_settle_seconds=BUSY_SETTLE_SECONDS,
                hurry=self._hurry,
            )
        finally:
            self._thread = None
