"""The audit check of the event store's hash chain (issue 6): ``GET /audit/verify``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from event_store.chain import verify
from read_api.deps import PlatformDep

router = APIRouter(tags=["audit"])


@router.get(
    "/audit/verify",
    responses={
        200: {"description": "The chain is intact: event count, head position and hash"},
        409: {"description": "The first position where the chain is broken, and how"},
    },
)
def verify_chain(platform: PlatformDep) -> JSONResponse:
    """Re-check every stored event against the tamper-evident hash chain.

    200 ``{"ok": true, "events", "head_position", "head_hash"}`` when intact (write the
    head hash down elsewhere to detect a rewritten tail later); 409 ``{"ok": false,
    "position", "problem", "detail"}`` naming the first position where an event was
    altered, removed, inserted or reordered, or from which events are unsealed."""
    report = verify(platform.store)
    body: dict[str, Any] = report.as_dict()
    return JSONResponse(body, status_code=200 if report.ok else 409)
