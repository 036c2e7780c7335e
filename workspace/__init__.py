"""The workspace: LeadLedger in a browser, server-rendered in the API's own process.

Pages live under ``/workspace/`` (``/`` serves the home page too); they sign people in
with a password and a session cookie and then read through the same query functions and
access rules as the JSON API (:mod:`read_api.access`). Templates, static files (the
pinned, vendored ECharts) and the compiled ru/en catalogues ship inside the package.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from leadledger.wiring import Platform


def mount(app: FastAPI, platform: Platform) -> None:
    """Mount the workspace in the API's app: ``/workspace/...`` and the home page at ``/``.

    The workspace is an application of its own (its routes are outside the API's bearer
    check and its OpenAPI document; its errors are pages): the JSON API is unchanged."""
    from workspace.pages import PREFIX, workspace_app

    pages = workspace_app(platform)
    app.mount(PREFIX, pages, name="workspace")
    app.router.routes.append(Route("/", endpoint=pages, methods=["GET", "HEAD"]))
