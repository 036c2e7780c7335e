"""Request dependencies: the platform, the command context and read-your-writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Annotated, Any
from uuid import UUID

import duckdb
from fastapi import Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from aggregates.users import Principal
from commands.context import MAX_IDEMPOTENCY_KEY, CommandContext, CommandResult
from leadledger.wiring import Platform
from read_api.access import (
    RECORD_PARAMS,
    authenticate,
    command_guard,
    current_user,
    read_models,
)
from read_api.errors import BadRequestValue, ReadModelsBehind
from schemas.limits import MAX_CODE


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def parse_if_match(value: str | None, record: str = "the record") -> int | None:
    """The version ``If-Match`` names; ``record`` says whose (``"the deal"``)."""
    if value is None:
        return None
    raw = value.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequestValue("If-Match", f"must be {record}'s version, a positive integer")
    return int(raw)


def if_match_record(request: Request) -> str:
    """Whose version a command's ``If-Match`` names: the record of its path (a project's
    invoices and payments: its billing's), else the record's."""
    path = getattr(request.scope.get("route"), "path", "")
    if path.startswith("/projects/{project_id}/invoices"):
        return "the project billing"
    for param, (_, what) in RECORD_PARAMS.items():
        if param in request.path_params:
            return f"the {what}"
    return "the record"


class CommandHeaders:
    """The authenticated actor and the headers every command accepts (a route takes them
    as ``CommandHeadersDep``; the workspace builds them from a form)."""

    def __init__(
        self,
        request: Request,
        principal: Principal,
        if_match: str | None = None,
        idempotency_key: str | None = None,
        x_correlation_id: UUID | None = None,
    ) -> None:
        self.request = request
        self.principal = principal
        self.actor = principal.user
        self.expected_version = parse_if_match(if_match, if_match_record(request))
        self.idempotency_key = idempotency_key
        self.correlation_id = x_correlation_id

    @property
    def platform(self) -> Platform:
        """The platform serving the command (a route that takes the headers needs no
        platform dependency of its own)."""
        platform: Platform = self.request.app.state.platform
        return platform

    def context(self, platform: Platform, scope: str, request: Any) -> CommandContext:
        """The command's context; raises NotPermitted when the body names an owner the
        actor may not name. The guard it carries checks the record the handler loads."""
        guard = command_guard(self.request, self.principal, request)
        route = self.request.scope.get("route")
        return CommandContext.new(
            actor=self.actor,
            clock=platform.clock,
            scope=scope,
            request=request,
            expected_version=self.expected_version,
            idempotency_key=self.idempotency_key,
            correlation_id=self.correlation_id,
            actor_role=self.principal.role.value,
            command=getattr(route, "name", None),
            guard=guard,
        )


async def command_headers(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=MAX_CODE,
            description="Expected current version of the record (a positive integer, "
            'or the ETag it came in: "3" or W/"3")',
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY,
            description="Repeating a key returns the first response and appends nothing",
        ),
    ] = None,
    x_correlation_id: Annotated[
        UUID | None, Header(alias="X-Correlation-ID", description="Correlation id to record")
    ] = None,
) -> CommandHeaders:
    """A command's headers, parsed on the event loop: a coroutine dependency costs no
    thread-pool hand-off (a plain function or class would cost one each). The principal
    is the one the app-wide ``authorize`` parsed, taken without a dependency of its own
    (each dependency costs the event loop its solving on every command)."""
    principal = authenticate(request)
    return CommandHeaders(request, principal, if_match, idempotency_key, x_correlation_id)


CommandHeadersDep = Annotated[CommandHeaders, Depends(command_headers)]


def mark_accepted(result: CommandResult, response: Response) -> None:
    """The headers of an accepted command: the new version as ETag, and whether an
    Idempotency-Key replayed an earlier answer."""
    response.headers["ETag"] = f'"{result.version}"'
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"


MinPosition = Annotated[
    int | None,
    Query(ge=0, description="Wait until the read models include this event position"),
]


async def read_models_behind(platform: Platform, min_position: int | None) -> bool:
    """Whether the read models have not reached ``min_position`` yet. A position the log
    has not reached is refused at once (422): no event can be awaited there."""
    if min_position is None or platform.projector.position >= min_position:
        return False
    head = await run_in_threadpool(platform.store.last_position)
    if min_position > head:
        raise BadRequestValue(
            "min_position",
            f"no event has position {min_position}: the event log ends at {head}",
        )
    return True


async def await_read_models(platform: Platform, min_position: int) -> None:
    """Wait until the read models include ``min_position``: awaited, holding no thread
    (the projector resolves it when it commits that position), and bounded: 503 after
    ``read_wait_seconds``."""
    started = time.monotonic()
    if not await platform.projector.reached(min_position, platform.settings.read_wait_seconds):
        raise ReadModelsBehind(
            min_position, platform.projector.position, round(time.monotonic() - started, 2)
        )


async def read_position(platform: PlatformDep, min_position: MinPosition = None) -> None:
    """Read-your-writes: wait until the read models include ``min_position`` (422 past
    the log's end, 503 after ``read_wait_seconds``)."""
    if min_position is not None and await read_models_behind(platform, min_position):
        await await_read_models(platform, min_position)


def read_cursor(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(current_user)],
    _caught_up: Annotated[None, Depends(read_position)],
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor on read models that include ``min_position`` (see read_position)."""
    with read_models(platform, principal) as cursor:
        yield cursor


ReadCursor = Annotated[duckdb.DuckDBPyConnection, Depends(read_cursor)]


def as_utc(value: datetime | None) -> datetime | None:
    """Naive timestamps are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def parse_instant(field: str, raw: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO timestamp, or a date (its start, or with ``end_of_day`` its last instant)."""
    if raw is None or raw == "":
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day, clock_time.max if end_of_day else clock_time.min, UTC)
        return as_utc(datetime.fromisoformat(raw))
    except ValueError:
        raise BadRequestValue(
            field, "must be an ISO date (2026-06-30) or timestamp (2026-06-30T12:00:00Z)"
        ) from None


class Period:
    """The optional ``from`` / ``to`` creation period of list and report queries."""

    def __init__(
        self,
        created_from: Annotated[
            str | None,
            Query(alias="from", description="Created at or after: ISO date or timestamp"),
        ] = None,
        created_to: Annotated[
            str | None,
            Query(
                alias="to",
                description="Created at or before: ISO timestamp, or a date (the whole day)",
            ),
        ] = None,
    ) -> None:
        self.start = parse_instant("from", created_from)
        self.end = parse_instant("to", created_to, end_of_day=True)
        if self.start and self.end and self.start > self.end:
            raise BadRequestValue("from", "must not be after 'to'")
