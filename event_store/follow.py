"""The loop every follower of the log runs: the projector and the process managers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


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
