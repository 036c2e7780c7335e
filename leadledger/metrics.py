"""Prometheus metrics: how far behind the head of the log each follower is.

The API serves them at ``/metrics``; the worker commands serve the same text on
``LEADLEDGER_METRICS_PORT``. Positions are read from where each follower stores them
(the event store's position table, the read-model database), so any process can report
any follower's lag; the relay's events/s is also derivable as
``rate(leadledger_relay_position[1m])`` wherever the relay runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from event_store import EventStore
from relay.relay import RELAY_POSITION, Relay

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # gauge | counter
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


def render(samples: Iterable[Sample]) -> str:
    """The Prometheus text exposition format (0.0.4)."""
    lines: list[str] = []
    described: set[str] = set()
    for s in samples:
        if s.name not in described:
            described.add(s.name)
            lines.append(f"# HELP {s.name} {s.help}")
            lines.append(f"# TYPE {s.name} {s.kind}")
        labels = ""
        if s.labels:
            inner = ",".join(
                f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                for k, v in s.labels
            )
            labels = "{" + inner + "}"
        value = repr(float(s.value)) if isinstance(s.value, float) else str(s.value)
        lines.append(f"{s.name}{labels} {value}")
    return "\n".join(lines) + "\n"


def follower_samples(
    store: EventStore,
    *,
    stored_position: Callable[[str], int],
    relay: Relay | None = None,
    projector_position: int | None = None,
    process_positions: dict[str, int] | None = None,
) -> list[Sample]:
    """Head of the log, and position and lag of the relay, projector and process managers.
    ``stored_position`` reads a follower's position from the event store's position table
    (a ``ProcessStore``'s, built once by the caller)."""
    head = store.last_position()
    samples = [Sample("leadledger_log_head_position", "gauge", "Last position in the log", head)]
    relay_position = relay.stats.position if relay is not None else None
    if relay_position is None:
        relay_position = stored_position(RELAY_POSITION)
    samples += [
        Sample(
            "leadledger_relay_position",
            "gauge",
            "Last position the broker acknowledged (rate() of it is the relay's events/s)",
            relay_position,
        ),
        Sample(
            "leadledger_relay_lag_events",
            "gauge",
            "Events stored but not yet published to Kafka",
            max(0, head - relay_position),
        ),
    ]
    if relay is not None:
        samples += [
            Sample(
                "leadledger_relay_events_per_second",
                "gauge",
                "Events this process's relay published per second over the last 10 s",
                relay.stats.events_per_second(),
            ),
            Sample(
                "leadledger_relay_events_published_total",
                "counter",
                "Events this process's relay published since it started",
                relay.stats.published_total,
            ),
            Sample(
                "leadledger_relay_failures_total",
                "counter",
                "Batches the broker did not acknowledge (each retried)",
                relay.stats.failures_total,
            ),
        ]
    if projector_position is not None:
        samples += [
            Sample(
                "leadledger_projector_position",
                "gauge",
                "Last position folded into this process's read models",
                projector_position,
            ),
            Sample(
                "leadledger_projector_lag_events",
                "gauge",
                "Events stored but not yet in this process's read models",
                max(0, head - projector_position),
            ),
        ]
    for name, position in sorted((process_positions or {}).items()):
        labels = (("manager", name),)
        samples += [
            Sample(
                "leadledger_process_manager_position",
                "gauge",
                "Last position a process manager handled",
                position,
                labels,
            ),
            Sample(
                "leadledger_process_manager_lag_events",
                "gauge",
                "Events a process manager has not handled yet",
                max(0, head - position),
                labels,
            ),
        ]
    return samples


def serve_metrics(port: int, host: str, text: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve ``GET /metrics`` on a thread of its own (for the worker commands)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = text().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="leadledger-metrics", daemon=True).start()
    return server
