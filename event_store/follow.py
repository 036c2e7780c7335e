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
) -> None:
    """Run ``step`` until ``stop`` is set: again when ``wake`` is set (an append in this
    process) or every ``poll_seconds`` (appends by other processes). A failing step is
    logged and retried with a doubling back-off, up to 30 s. ``settle_seconds`` lets a
    burst of appends land after a wake, so that it is handled in one go."""
    backoff = poll_seconds
    while not stop.is_set():
        try:
            step()
            backoff = poll_seconds
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, backoff)
            backoff = min(backoff * 2, 30.0)
        wake.wait(backoff)
        wake.clear()
        if settle_seconds:
            stop.wait(settle_seconds)
