"""ASGI app factories that bench_commands_http serves with uvicorn in a subprocess.

    uvicorn --factory bench.serve_app:leadledger_app          # LeadLedger, projector on
    uvicorn --factory bench.serve_app:leadledger_app_no_projector
    uvicorn --factory bench.serve_app:bare_app                # bare FastAPI POST

LeadLedger is built from its Settings (``LEADLEDGER_*`` variables, e.g.
LEADLEDGER_EVENT_STORE_URL and LEADLEDGER_DUCKDB_PATH) exactly as ``leadledger serve``
builds it. The bare app has one POST endpoint with a pydantic body shaped like the lead
creation request and a response shaped like a command's, and no I/O: the HTTP ceiling.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import anyio.to_thread
from fastapi import FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field

from bench.profiler import start_from_env
from leadledger.settings import Settings
from leadledger.wiring import build
from read_api.app import create_app

PROFILE_ENV = "LEADLEDGER_BENCH_PROFILE"
"""When set, the server process profiles itself (``bench.profiler``) into that file."""


THREADS_ENV = "LEADLEDGER_BENCH_THREADS"
"""When set, the number of worker threads sync endpoints may use at once (anyio's default
limiter, 40 unless set): an experiment on GIL contention, not how LeadLedger is served."""


class _ThreadLimit:
    """Sets anyio's default thread limiter on the first call, inside the server's loop."""

    def __init__(self, app: Any, tokens: int) -> None:
        self.app = app
        self.tokens = tokens
        self.done = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.done:
            anyio.to_thread.current_default_thread_limiter().total_tokens = self.tokens
            self.done = True
        await self.app(scope, receive, send)


def leadledger_app() -> Any:
    """The LeadLedger API with its projector in the same process (as ``leadledger serve``)."""
    start_from_env(os.environ.get(PROFILE_ENV))
    app = create_app(build(Settings()), background=True)
    threads = os.environ.get(THREADS_ENV)
    return _ThreadLimit(app, int(threads)) if threads else app


def leadledger_app_no_projector() -> FastAPI:
    """The LeadLedger API alone: commands and queries, no background projector."""
    start_from_env(os.environ.get(PROFILE_ENV))
    return create_app(build(Settings()), background=False)


class BareLeadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    funnel: str
    title: str
    company_name: str
    company_id: str | None = None
    source: str
    manager: str
    expert: str | None = None
    need_maturity: str | None = None
    description: str | None = None
    amount: Decimal = Field(default=Decimal(0), ge=0)


class BareAccepted(BaseModel):
    lead_id: UUID
    version: int
    position: int


def bare_app() -> FastAPI:
    """A bare FastAPI POST endpoint with a pydantic body (sync, like LeadLedger's)."""
    app = FastAPI(title="bare")
    counter = iter(range(1, 2**62))

    @app.post("/leads", status_code=201, response_model=BareAccepted)
    def create(
        body: BareLeadRequest, x_actor: str = Header(alias="X-Actor", min_length=1)
    ) -> BareAccepted:
        return BareAccepted(lead_id=uuid4(), version=1, position=next(counter))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
