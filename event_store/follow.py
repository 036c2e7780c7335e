"""The loop every follower of the log runs (the projector and the process managers), and
how far one has got (``Progress``: read-your-writes waits on it)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress


def follow_until_stopped(
    step: Callable[[], object],
    wake: threading.Event,
    stop: threading.Event,
    poll_seconds: float,
    *,
    what: str,
    log: logging.Logger,
    settle_seconds: float = 0.0,
    busy_settle_seconds: float | None = None,
    busy_share: float | None = None,
    max_settle_seconds: float = 1.0,
    hurry: threading.Event | None = None,
) -> None:
    """Run ``step`` until ``stop`` is set: again when ``wake`` is set (an append in this
    process) or every ``poll_seconds`` (appends by other processes). A failing step is
    logged and retried with a doubling back-off, up to 30 s.

    Coalescing: after a wake the loop lets a burst of appends land for ``settle_seconds``
    before the next step, so that it is handled in one go; when the last step found work
    (``step`` returned a positive number: the follower is busy) it waits
    ``busy_settle_seconds`` instead (default: the same), so that under load pages grow
    and the fixed cost of a step is shared by more events. With ``busy_share`` a busy
    follower settles at least long enough that its steps take no more than that share of
    the time (a step of 0.2 s at a share of 0.25: 0.6 s), up to ``max_settle_seconds``:
    when steps grow slow (a loaded machine, a fixed cost per step of tens of
    milliseconds) the pages grow with them instead of the follower taking ever more of
    the CPU. Setting ``hurry`` (someone is waiting for the follower, e.g. a
    read-your-writes query) cuts the settling short. A follower that polls (not woken:
    the appends are another process's) steps again once its poll interval has passed:
    that wait let them land already, a settle on top would only add latency."""
    backoff = poll_seconds
    busy = False
    took = 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            done = step()
            busy = isinstance(done, int) and done > 0
            backoff = poll_seconds
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, backoff)
            backoff = min(backoff * 2, 30.0)
            busy = False
        took = time.monotonic() - started
        woken = wake.wait(backoff)
        wake.clear()
        # polled (not woken: appends by other processes) the wait was the settling already
        settle = (
            busy_settle(
                busy, took, settle_seconds, busy_settle_seconds, busy_share, max_settle_seconds
            )
            if woken
            else 0.0
        )
        if settle and not stop.is_set():
            if hurry is None:
                stop.wait(settle)
            else:
                hurry.wait(settle)
                hurry.clear()


def busy_settle(
    busy: bool,
    took: float,
    settle_seconds: float,
    busy_settle_seconds: float | None,
    busy_share: float | None,
    max_settle_seconds: float,
) -> float:
    """How long the loop of ``follow_until_stopped`` lets appends land before its next
    step, after a step of ``took`` seconds that found work (``busy``) or not."""
    if not busy:
        return settle_seconds
    settle = settle_seconds if busy_settle_seconds is None else busy_settle_seconds
    if busy_share is not None and 0 < busy_share < 1:
        paced = took * (1 - busy_share) / busy_share
        settle = max(settle, min(paced, max_settle_seconds))
    return settle


_Waiter = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[None]"]
"""(position awaited, the waiter's event loop, the future resolved when it is reached)"""


class Progress:
    """How far a follower of the log has got, and waiting until it gets somewhere:
    blocking (``wait_for``) or awaited (``reached``: the waiting request holds no thread,
    only a future the follower resolves when it gets there). ``on_wait`` is called when
    someone starts waiting (the follower wakes and cuts its settling short)."""

    def __init__(self, position: int, on_wait: Callable[[], None]) -> None:
        self.position = position
        self._on_wait = on_wait
        self._condition = threading.Condition()
        self._waiters: set[_Waiter] = set()

    def advance(self, position: int) -> None:
        """The follower has got to ``position``: release who waited for it."""
        with self._condition:
            self.position = position
            self._condition.notify_all()
            reached = {w for w in self._waiters if w[0] <= position}
            self._waiters -= reached
        for _, loop, future in reached:
            with suppress(RuntimeError):  # the waiter's loop has closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the follower is at ``position`` or beyond; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._on_wait()
                self._condition.wait(min(remaining, 0.1))
            return True

    async def reached(self, position: int, timeout: float) -> bool:
        """Like ``wait_for``, awaited; False on timeout."""
        if self.position >= position:
            return True
        loop = asyncio.get_running_loop()
        waiter: _Waiter = (position, loop, loop.create_future())
        with self._condition:
            if self.position >= position:
                return True
            self._waiters.add(waiter)
        self._on_wait()
        try:
            async with asyncio.timeout(timeout):
                await waiter[2]
        except TimeoutError:
            pass
        finally:
            with self._condition:
                self._waiters.discard(waiter)
        return self.position >= position


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
