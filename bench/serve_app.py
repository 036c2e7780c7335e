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

from decimal import Decimal
from uuid import UUID, uuid4

from fastapi import FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field

from leadledger.settings import Settings
from leadledger.wiring import build
from read_api.app import create_app


def leadledger_app() -> FastAPI:
    """The LeadLedger API with its projector in the same process (as ``leadledger serve``)."""
    return create_app(build(Settings()), background=True)


def leadledger_app_no_projector() -> FastAPI:
    """The LeadLedger API alone: commands and queries, no background projector."""
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
