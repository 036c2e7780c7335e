"""The viewer's alerts page: their alerts, unread first, with a link to each subject, a
"mark read" form per alert and "mark all read"; and the unread count every page's
header shows. The same query and inbox command as ``/alerts`` in the API."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aggregates import inbox
from aggregates.users import Principal
from commands.context import StreamNotFound
from commands.inbox import mark_alerts_read
from leadledger.wiring import Platform
from queries import alerts as alert_queries
from read_api.access import read_models
from workspace import i18n
from workspace.mail import kind_label, subject_label
from workspace.pages import (
    PAGE_SIZE,
    PREFIX,
    CsrfChecked,
    Operation,
    PageNotFound,
    Viewer,
    command_context,
    render,
    require,
)

router = APIRouter()

MARK_ONE = Operation("/alerts/{alert_id}/read", "mark_alert")
MARK_ALL = Operation("/alerts/read", "mark_alerts")


def unread_alerts(platform: Platform, principal: Principal) -> int:
    """The header's counter: the viewer's unread alerts (one indexed count)."""
    cursor = platform.db.cursor()
    try:
        return alert_queries.unread_count(cursor, principal.user)
    except Exception:  # read models not built yet: no counter rather than no page
        return 0
    finally:
        cursor.close()


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def label(items: list[dict[str, Any]], language: str) -> None:
    """Each alert's kind and subject in the viewer's language, for the page and the home."""
    for item in items:
        item["kind_label"] = kind_label(item["kind"], language)
        item["subject_label"] = subject_label(item["subject_type"], language)


@router.get("/alerts")
def alerts_page(
    request: Request,
    principal: Viewer,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    require(principal, "GET", "/alerts")
    platform = _platform(request)
    cursor = platform.db.cursor()
    try:
        items, total, unread = alert_queries.inbox(
            cursor, principal.user, PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
    finally:
        cursor.close()
    label(items, i18n.language_of(request))
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "items": items,
        "total": total,
        "unread": unread,
        "newest": max((i["alert_id"] for i in items), default=0),
        "page": page,
        "pages": pages,
        "previous": f"{PREFIX}/alerts?page={page - 1}" if page > 1 else None,
        "following": f"{PREFIX}/alerts?page={page + 1}" if page < pages else None,
    }
    return render(request, "alerts.html", context, principal=principal)


def _mark(
    request: Request,
    principal: Principal,
    operation: Operation,
    alert_ids: list[int] | None,
    up_to: int | None,
    params: dict[str, str],
) -> Response:
    require(principal, "POST", operation.path)
    platform = _platform(request)
    try:
        with read_models(platform, principal) as scoped:
            own = platform.db.cursor()
            try:
                alerts = alert_queries.alerts_to_mark(own, scoped, principal.user, alert_ids, up_to)
            finally:
                own.close()
    except StreamNotFound:
        raise PageNotFound from None
    body = {"alert_ids": alert_ids, "up_to": up_to}
    ctx = command_context(
        request, principal, operation, params, f"alert-inbox:{principal.user}", body
    )
    mark_alerts_read(platform.store, inbox.MarkAlertsRead(principal.user, alerts, up_to), ctx)
    return RedirectResponse(f"{PREFIX}/alerts", status_code=303)


@router.post("/alerts/read", dependencies=[CsrfChecked])
def mark_all_read(
    request: Request,
    principal: Viewer,
    up_to: Annotated[int, Form(ge=0, le=2**62)] = 0,
) -> Response:
    """Every unread alert of the viewer up to the newest the page showed (one that came
    in after the page was drawn stays unread)."""
    return _mark(request, principal, MARK_ALL, None, up_to or None, {})


@router.post("/alerts/{alert_id}/read", dependencies=[CsrfChecked])
def mark_one_read(request: Request, principal: Viewer, alert_id: int) -> Response:
    if alert_id < 1:
        raise PageNotFound
    return _mark(request, principal, MARK_ONE, [alert_id], None, {"alert_id": str(alert_id)})
