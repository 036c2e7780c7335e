"""The event stream without Kafka: a paged feed and Server-Sent Events, plus what
describes it (AsyncAPI) and how far its followers are behind (Prometheus metrics).

Both carry exactly the envelopes the relay publishes to Kafka (``relay.publishing``).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from leadledger.metrics import CONTENT_TYPE, follower_samples, render
from read_api.access import CurrentUser, feed_rows
from read_api.deps import PlatformDep
from read_api.errors import BadRequestValue
from read_api.log_tail import PAGE_BYTES, LogTail
from schemas.events.asyncapi import asyncapi_document
from schemas.limits import MAX_CODE

router = APIRouter(tags=["event stream"])

MAX_PAGE = 1_000

After = Annotated[
    int,
    Query(
        ge=0, le=2**62, description="Return events after this global position (0: from the start)"
    ),
]


@router.get("/events")
def list_events(
    platform: PlatformDep,
    principal: CurrentUser,
    after: After = 0,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_PAGE,
            description="Events per page at most (a page also stops at about 512 KiB of "
            "stored events)",
        ),
    ] = 100,
) -> Response:
    """Events in log order after ``after``, each in the envelope published on Kafka.
    Pass ``next_after`` as ``after`` to read the next page; an empty page means you are at
    the head of the log (``head``)."""
    head = platform.store.last_position()
    rows, covered = feed_rows(
        platform, principal, platform.store.read_rows(after, limit, PAGE_BYTES)
    )
    items = platform.publication.envelopes(rows)
    body = {
        "items": items,
        "after": after,
        "limit": limit,
        "next_after": max(after, covered),
        "head": max(head, covered),
    }
    return Response(content=orjson.dumps(body), media_type="application/json")


def _last_event_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise BadRequestValue("Last-Event-ID", "must be the global position of an event")
    return int(value.strip())


def log_tail(request: Request) -> LogTail:
    """The process's follower of the log (started with the app; here if it was not)."""
    tail: LogTail | None = getattr(request.app.state, "log_tail", None)
    if tail is None:
        platform = request.app.state.platform
        tail = LogTail(platform, platform.settings.projector_poll_seconds)
        request.app.state.log_tail = tail
    return tail


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    principal: CurrentUser,
    after: After = 0,
    last_event_id: Annotated[
        str | None,
        Header(
            max_length=MAX_CODE,
            description="Sent by a reconnecting EventSource; takes precedence over after",
        ),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events: every event after ``after``, then new ones as they are stored.
    Each message has ``id`` = global position (so a reconnect resumes where it stopped),
    ``event`` = the event type and ``data`` = the envelope published on Kafka."""
    resume = _last_event_id(last_event_id)
    start = resume if resume is not None else after
    return StreamingResponse(
        log_tail(request).messages(principal, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/asyncapi.json")
def asyncapi(platform: PlatformDep) -> dict[str, Any]:
    """The AsyncAPI 3 document of the Kafka topics and their messages."""
    settings = platform.settings
    servers = (
        {"production": settings.kafka_bootstrap_servers.split(",")[0]}
        if settings.kafka_bootstrap_servers
        else None
    )
    return asyncapi_document(settings.kafka_topic_prefix, servers)


@router.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
def metrics(platform: PlatformDep) -> PlainTextResponse:
    """Prometheus metrics: relay lag and events/s, projector and process-manager lag."""
    processes = platform.processes
    samples = follower_samples(
        platform.store,
        stored_position=processes.position,
        relay=platform.relay,
        projector_position=platform.projector.position,
        process_positions={m.name: processes.position(m.name) for m in processes.managers},
    )
    if platform.mailer is not None:
        from notifications.mailer import mailer_samples

        samples += mailer_samples(platform.mailer, int(samples[0].value))
    return PlainTextResponse(render(samples), media_type=CONTENT_TYPE)
