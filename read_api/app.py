"""The FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

import workspace
from leadledger.wiring import Platform
from read_api import native_heap
from read_api.access import authorize
from read_api.body_limit import BodyLimit, bounded_query
from read_api.deps import PlatformDep
from read_api.errors import install_error_handlers
from read_api.excel import install_excel
from read_api.log_tail import LogTail
from read_api.openapi import install_openapi
from read_api.routes import (
    activities,
    audit,
    cabinets,
    companies,
    contacts,
    deals,
    delivery,
    directories,
    directory,
    events,
    exports,
    imports,
    leads,
    pipeline,
    portfolio,
    process_map,
    projects,
    reports,
    sales,
    sales_plans,
    sensitive,
    status_time,
    users,
)


def create_app(
    platform: Platform, *, background: bool = True, close_on_exit: bool = True
) -> FastAPI:
    """The API over a built platform; with ``background`` the projector runs in-process."""

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        # A long history or as_of replay allocates many short-lived objects; with the
        # start-up heap frozen out of the collector's sight and fewer young collections,
        # full collections stay cheap and stop adding tail latency to those requests.
        # A process that froze its heap already (one that serves many apps in turn) keeps
        # its own freeze: collecting its whole heap again for every app is slow.
        freezing = gc.get_freeze_count() == 0
        if freezing:
            gc.collect()
            gc.freeze()
        gc.set_threshold(10_000, 50, 100)
        _ = platform.signer  # a missing or short secret stops the start, not a request
        if background:
            platform.start_background()
        native_heap.fix_mmap_threshold()  # large events' buffers do not stay resident
        # one follower of the log fans new events out to every Server-Sent Events stream
        app_.state.log_tail = tail = LogTail(platform, platform.settings.projector_poll_seconds)
        await tail.start()
        try:
            yield
        finally:
            await tail.close()
            if freezing:
                gc.unfreeze()
            if close_on_exit:
                platform.close()

    app = FastAPI(
        title="LeadLedger",
        version="0.1.0",
        description=(
            "Follows every lead from first touch through sales. Every request but /health, "
            "/metrics, /openapi.json, /docs and /redoc carries `Authorization: Bearer "
            "<token>` (`leadledger token` issues one); the token's user is the actor on "
            "every event and their role decides what they may do and see. Commands go in "
            "over POST (optional If-Match and Idempotency-Key); queries read the DuckDB "
            "read models (pass min_position from a command's response to read your own "
            "write); history and as_of come from the event store."
        ),
        lifespan=lifespan,
        dependencies=[Depends(authorize), Depends(bounded_query)],
        # a path with a stray trailing slash is a 404, never a redirect built from the
        # request's Host header
        redirect_slashes=False,
    )
    app.state.platform = platform
    app.add_middleware(BodyLimit, max_bytes=platform.settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(leads.router)
    app.include_router(reports.router)
    app.include_router(deals.router)
    app.include_router(deals.handoffs)
    app.include_router(directory.contractors)
    app.include_router(directory.assignments)
    app.include_router(projects.router)
    app.include_router(portfolio.router)
    app.include_router(delivery.router)
    app.include_router(events.router)
    app.include_router(pipeline.router)
    app.include_router(status_time.router)
    app.include_router(users.router)
    app.include_router(sensitive.router)
    app.include_router(process_map.router)  # before exports: /exports/{table}
    app.include_router(exports.router)
    app.include_router(audit.router)
    app.include_router(sales_plans.router)
    app.include_router(cabinets.router)
    app.include_router(activities.router)
    app.include_router(sales.router)  # the sales pack (issue 16 §1)
    app.include_router(companies.router)  # the company directory, client card (issue 18 §1)
    app.include_router(imports.router)  # importing an existing base (issue 18 §2)
    app.include_router(contacts.router)  # contacts and shared directories (issue 18 §1)
    app.include_router(directories.router)
    app.include_router(directories.reports)
    workspace.mount(app, platform)  # the browser workspace: / and /workspace/...

    @app.get("/health", tags=["operations"])
    def health(platform: PlatformDep) -> dict[str, Any]:
        """Liveness, and how far the read models and the process managers (wherever
        they run) are behind the event store."""
        last = platform.store.last_position()
        projected = platform.projector.position
        return {
            "status": "ok",
            "event_store": platform.store.backend,
            "event_store_position": last,
            "read_model_position": projected,
            "lag": max(0, last - projected),
            "process_managers": {
                manager.name: platform.processes.position(manager.name)
                for manager in platform.processes.managers
            },
        }

    install_openapi(app)
    install_excel(app)  # every report also answers ?format=xlsx
    return app
