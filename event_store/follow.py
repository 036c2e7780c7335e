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
    hurry: threading.Event | None = None,
) -> None:
    """Run ``step`` until ``stop`` is set: again when ``wake`` is set (an append in this
    process) or every ``poll_seconds`` (appends by other processes). A failing step is
    logged and retried with a doubling back-off, up to 30 s.

    Coalescing: after a wake the loop lets a burst of appends land for ``settle_seconds``
    before the next step, so that it is handled in one go; when the last step found work
    (``step`` returned a positive number: the follower is busy) it waits
    ``busy_settle_seconds`` instead (default: the same), so that under load pages grow
    and the fixed cost of a step is shared by more events. Setting ``hurry`` (someone is
    waiting for the follower, e.g. a read-your-writes query) cuts the settling short."""
    backoff = poll_seconds
    busy = False
    while not stop.is_set():
        try:
            done = step()
            busy = isinstance(done, int) and done > 0
            backoff = poll_seconds
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, backoff)
            backoff = min(backoff * 2, 30.0)
            busy = False
        wake.wait(backoff)
        wake.clear()
        settle = busy_settle_seconds if busy and busy_settle_seconds is not None else settle_seconds
        if settle and not stop.is_set():
            if hurry is None:
                stop.wait(settle)
            else:
                hurry.wait(settle)
                hurry.clear()


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
