"""The workspace's pages: server-rendered HTML over the same read-model queries and access
rules as the JSON API (never the API over HTTP, never a copy of a query)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from aggregates.errors import DomainError, NotPermitted
from aggregates.users import Principal, Role
from commands.context import (
    MAX_IDEMPOTENCY_KEY,
    CommandContext,
    CommandFailed,
    CommandResult,
    StreamNotFound,
)
from commands.users import load_user
from leadledger.wiring import Platform
from queries.alerts import inbox as alert_inbox
from queries.common import Filters
from queries.handoffs import OPEN_REQUEST, list_handoffs
from queries.leads import LeadFilters, funnel_report, list_leads
from queries.projects import list_projects
from read_api.access import ENDPOINTS, read_models
from read_api.deps import CommandHeaders
from workspace import auth, i18n

PREFIX = "/workspace"
PAGE_SIZE = 25
LEAD_STATUSES = ("open", "paused", "won", "lost", "non_quality")
STATIC_DIR = i18n.TEMPLATE_DIR.parent / "static"


class PageNotFound(Exception):
    """A record that is not there for this viewer (unknown or outside their scope): 404."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after = retry_after


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _sessions(request: Request) -> auth.Sessions:
    sessions: auth.Sessions = request.app.state.sessions
    return sessions


def may(principal: Principal, method: str, path: str) -> bool:
    """Whether the API's endpoint table lets the principal call this operation."""
    return principal.role in ENDPOINTS.get((method, path), frozenset())


def require(principal: Principal, method: str, path: str) -> None:
    if not may(principal, method, path):
        raise NotPermitted("role_not_allowed", f"{principal.role.with_article} may not see this")


def viewer(request: Request) -> Principal:
    principal = _sessions(request).principal(request)
    if principal is None:
        raise auth.SignInRequired
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


def navigation(principal: Principal) -> list[tuple[str, str]]:
    """The sections the viewer's role may open: (path, label msgid)."""
    items = [(f"{PREFIX}/", "Home")]
    if may(principal, "GET", "/leads"):
        items.append((f"{PREFIX}/leads", "Leads"))
    from workspace import deals  # its pages import this module

    items += deals.sections(principal)
    from workspace import cabinets

    items += cabinets.sections(principal)
    if may(principal, "GET", "/companies"):
        items.append((f"{PREFIX}/companies", "Companies"))
    if may(principal, "GET", "/projects"):
        items.append((f"{PREFIX}/projects", "Projects"))
    from workspace import contacts, directories

    items += contacts.sections(principal) + directories.sections(principal)
    if may(principal, "POST", "/projects/{project_id}/hours"):
        items.append((f"{PREFIX}/timesheet", "Timesheet"))
    if may(principal, "POST", "/activities"):
        items.append((f"{PREFIX}/activities", "Activities"))
    if any(path.startswith("/reports/") and may(principal, m, path) for m, path in ENDPOINTS):
        items.append((f"{PREFIX}/reports", "Reports"))
    from workspace import imports

    items += imports.sections(principal)
    return items


def unread_alerts(platform: Platform, principal: Principal) -> int | None:
    """The header's counter of unread alerts (None for a role that reads none)."""
    if not may(principal, "GET", "/alerts"):
        return None
    from workspace.alerts import unread_alerts as count  # it uses this module's helpers

    return count(platform, principal)


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    language = i18n.language_of(request)
    platform = _platform(request)
    nonce, new = auth.csrf_nonce(request)
    html = (
        i18n.environment(language)
        .get_template(template)
        .render(
            request_path=request.url.path,
            prefix=PREFIX,
            viewer=principal,
            nav=navigation(principal) if principal else [],
            csrf_field=auth.CSRF_FIELD,
            csrf_token=auth.csrf_token(platform, nonce),
            unread_alerts=unread_alerts(platform, principal) if principal else None,
            stage_names={
                (f.id, stage.id): stage.name
                for f in platform.funnels.values()
                for stage in f.stages
            },
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    if new:
        auth.set_csrf_cookie(response, request, nonce)
    return response


async def csrf_checked(request: Request) -> None:
    form = await request.form()
    auth.check_csrf(_platform(request), request, form.get(auth.CSRF_FIELD))


CsrfChecked = Depends(csrf_checked)


def local_target(target: str | None) -> str:
    """A redirect target on this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return f"{PREFIX}/"
    return target


@dataclass(frozen=True)
class Operation:
    """The API command endpoint a form stands for: its path in the endpoint table (which
    chooses the API's guard) and its route's name (recorded in the events)."""

    path: str
    name: str


def command_context(
    request: Request,
    principal: Principal,
    operation: Operation,
    params: dict[str, str],
    scope: str,
    body: dict[str, Any],
    *,
    version: object = None,
    key: object = None,
    method: str = "POST",
) -> CommandContext:
    """The context the API builds for this operation, by the API's own
    :class:`~read_api.deps.CommandHeaders`, from a form: the same ownership guard (a record
    outside the viewer's scope answers "not found"), the route's name in the events, the
    form's record ``version`` as If-Match (none when it is empty or 0) and its ``key`` as
    the Idempotency-Key. Every workspace form builds its command's context here."""
    api_request = Request(
        {**request.scope, "method": method, "route": operation, "path_params": params}
    )
    expected = str(version).strip() if version is not None else ""
    idempotency = str(key).strip()[:MAX_IDEMPOTENCY_KEY] if key is not None else ""
    headers = CommandHeaders(
        api_request,
        principal,
        if_match=expected if expected.isdigit() and int(expected) > 0 else None,
        idempotency_key=idempotency or None,
        x_correlation_id=None,
    )
    return headers.context(_platform(request), scope, body)


def as_of_moment(raw: str | None, now: datetime) -> datetime | None:
    """The "as of" control's instant (UTC when no offset is typed); None for now, for an
    unreadable value and for one in the future (the card as it is)."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return None if moment > now else moment


def as_of_value(moment: datetime | None) -> str:
    """The instant as the datetime-local input shows it (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""


def pager(
    path: str,
    query: Mapping[str, object],
    offset: int,
    size: int,
    total: int,
    *,
    by_page: bool = False,
) -> dict[str, Any]:
    """A list's page links over its query's limit/offset (``_macros.html``'s ``pager``):
    this page's number, the page count, the rows shown (first to last of total; first is
    0 past the last row), previous
    and next, and the pages around this one (None for a gap); every link keeps the
    filters in ``query`` and names the page by ``offset`` (or ``page`` when ``by_page``)."""
    size = max(1, size)
    number = offset // size + 1
    count = max(1, math.ceil(total / size))
    kept = {k: v for k, v in query.items() if v not in (None, "") and k not in ("offset", "page")}

    def href(n: int) -> str:
        at = {"page": n} if by_page else {"offset": (n - 1) * size}
        return f"{path}?" + urlencode({**kept, **at})

    shown = sorted({1, count, *range(max(1, number - 2), min(count, number + 2) + 1)})
    pages: list[tuple[int, str | None]] = []
    for n in shown:
        if pages and n > pages[-1][0] + 1:
            pages.append((n - 1, None))
        pages.append((n, href(n)))
    return {
        "number": number,
        "count": count,
        "total": total,
        "size": size,
        "first": offset + 1 if offset < total else 0,  # 0: past the last row
        "last": min(offset + size, total),
        "previous": href(number - 1) if number > 1 else None,
        "next": href(number + 1) if number < count else None,
        "pages": pages,
    }


def offset_of(raw: str | None, limit: int = 1_000_000) -> int:
    """A page's ``offset`` from the query string: a whole number from 0 (else 0)."""
    text = (raw or "").strip()
    return min(int(text), limit) if text.isdigit() else 0


REFUSALS: tuple[type[Exception], ...] = (DomainError, CommandFailed, ValidationError)
"""What a form's command may be refused with: shown beside the form, nothing applied."""


async def post_form(
    request: Request,
    apply: Callable[[], CommandResult],
    refused: Callable[[Exception], Response],
    target: str | Callable[[CommandResult], str],
    *,
    refusals: tuple[type[Exception], ...] = REFUSALS,
) -> Response:
    """Every form post of the workspace: ``apply`` parses the form and runs the command
    through its handler (in the thread pool: the handlers block); applied, the read models
    are let include the write and what it set off (``read_your_writes``: the page after
    the redirect reads them), then 303 to ``target``; refused, ``refused`` renders the
    page again with the reason (also in the thread pool). A record that is not there is a
    404 page."""
    try:
        result = await run_in_threadpool(apply)
    except StreamNotFound:
        raise PageNotFound from None
    except refusals as error:
        return await run_in_threadpool(refused, error)
    await read_your_writes(_platform(request), result.position)
    where = target(result) if callable(target) else target
    return RedirectResponse(where, status_code=303)


async def read_your_writes(platform: Platform, position: int) -> None:
    """Wait (at most ``read_wait_seconds``) until the read models include the command at
    ``position`` and what the process managers of this server issued in reaction to it:
    a page renders records' versions for their next forms, and a reaction that lands
    after the page was read (a deal dropped into an estimate stage records the request
    its process manager opens) would make that version stale at once. Process managers
    run elsewhere (``leadledger process``) are not waited for."""
    deadline = time.monotonic() + platform.settings.read_wait_seconds
    await platform.projector.reached(position, platform.settings.read_wait_seconds)
    processes = platform.processes
    if not processes.running:
        return
    reacted = await processes.reached(position, max(0.0, deadline - time.monotonic()))
    if reacted and processes.appended > position:
        await platform.projector.reached(processes.appended, max(0.0, deadline - time.monotonic()))


router = APIRouter()


# --- signing in ----------------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(
        request, "sign_in.html", {"next": local_target(next), "error": None, "username": ""}
    )


@router.post("/sign-in", dependencies=[CsrfChecked])
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    platform = _platform(request)
    throttle: auth.Throttle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    name = username.strip().lower()[:200]
    verdict = throttle.verdict(name, address)
    if verdict == "refuse":
        raise TooManyAttempts(throttle.retry_after())
    if verdict == "slow":
        await asyncio.sleep(platform.settings.signin_delay_seconds)
    principal = await asyncio.to_thread(_check_sign_in, platform, name, password)
    if principal is None:
        throttle.failed(name, address)
        context = {"next": local_target(next), "error": "wrong", "username": name}
        return render(request, "sign_in.html", context, status_code=401)
    throttle.succeeded(name)
    response = RedirectResponse(local_target(next), status_code=303)
    _sessions(request).open(response, request, principal)
    # a new CSRF value with the new session: tokens from before the sign-in are void
    auth.set_csrf_cookie(response, request, auth.new_csrf_nonce())
    return response


def _check_sign_in(platform: Platform, username: str, password: str) -> Principal | None:
    """The user's principal when the password is theirs and they are active; None
    otherwise (the same answer, in about the same time, whether or not they exist)."""
    if not platform.credentials.check(username, password):
        return None
    try:
        user = load_user(platform.store, username)
    except StreamNotFound:
        return None
    return user.principal() if user.active else None


@router.post("/sign-out", dependencies=[CsrfChecked])
def sign_out(request: Request) -> Response:
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    _sessions(request).close(response, request)
    return response


@router.post("/language", dependencies=[CsrfChecked])
def choose_language(
    request: Request,
    language: Annotated[str, Form(max_length=10)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    response = RedirectResponse(local_target(next), status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANGUAGE_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            samesite="lax",
            secure=auth.secure(request),
            path="/",
        )
    return response


# --- home: the viewer's cabinet -------------------------------------------------------------


LEAD_ROLES = frozenset({Role.MANAGER, Role.HEAD, Role.TOP, Role.EXPERT})
FUNNEL_ROLES = frozenset({Role.MANAGER, Role.HEAD, Role.TOP, Role.ANALYST})
PROJECT_ROLES = frozenset({Role.PM, Role.HEAD, Role.TOP})
QUEUE_ROLES = frozenset({Role.DEPARTMENT, Role.HEAD})


def cabinet(platform: Platform, principal: Principal) -> dict[str, Any]:
    """What the viewer's home shows, from the API's own queries over their read scope."""
    parts: dict[str, Any] = {}
    role = principal.role
    own = principal.user if role is Role.MANAGER else None
    with read_models(platform, principal) as cursor:
        if role in LEAD_ROLES and may(principal, "GET", "/leads"):
            for status in ("open", "paused"):
                filters = LeadFilters(status=status, manager=own)
                items, total = list_leads(cursor, filters, 10, 0)
                parts[status] = {"items": items, "total": total}
        if role in FUNNEL_ROLES and may(principal, "GET", "/reports/funnel"):
            reports = [funnel_report(cursor, f, None, None) for f in platform.funnels.values()]
            parts["funnels"] = [
                {"name": platform.funnels[r["funnel"]].name, **r}
                for r in reports
                if r["totals"]["count"]
            ]
        if role in QUEUE_ROLES and principal.department and may(principal, "GET", "/handoffs"):
            queue = Filters(
                equal={"department": principal.department},
                extra=[(OPEN_REQUEST, [])],
            )
            items, total = list_handoffs(cursor, queue, 10, 0)
            parts["queue"] = {"items": items, "total": total}
        if role in PROJECT_ROLES and may(principal, "GET", "/projects"):
            mine = Filters(equal={"pm": principal.user if role is Role.PM else None})
            items, total = list_projects(cursor, mine, 10, 0)
            parts["projects"] = {"items": items, "total": total}
        if may(principal, "GET", "/alerts"):  # the viewer's own inbox, unread first
            items, total, _unread = alert_inbox(cursor, principal.user, 10, 0)
            parts["alerts"] = {"items": items, "total": total}
    return parts


def chart_data(funnels: list[dict[str, Any]], gettext: Callable[[str], str] = str) -> str:
    """The pipeline-by-stage chart's data (read by static/charts.js), as JSON: the funnels'
    and stages' names in the viewer's language (``gettext``'s)."""
    return orjson.dumps(
        [
            {
                "name": i18n.named(f["name"], gettext),
                "stages": [i18n.named(s["name"], gettext) for s in f["stages"]],
                "counts": [s["count"] for s in f["stages"]],
                "amounts": [float(s["amount"]) for s in f["stages"]],
            }
            for f in funnels
        ]
    ).decode()


@router.get("/")
def home(request: Request, principal: Viewer) -> HTMLResponse:
    from workspace.alerts import label
    from workspace.reports import cabinet_parts

    parts = cabinet(_platform(request), principal)
    language = i18n.language_of(request)
    label(parts.get("alerts", {}).get("items", []), language)
    gettext = i18n.translations(language).gettext
    parts.update(cabinet_parts(_platform(request), principal, gettext))
    context = {"parts": parts, "chart": chart_data(parts.get("funnels", []), gettext)}
    return render(request, "home.html", context, principal=principal)


# --- the application ---------------------------------------------------------------------


def _error_page(
    request: Request, status_code: int, kind: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    principal = _sessions(request).principal(request)
    response = render(
        request, "error.html", {"kind": kind}, status_code=status_code, principal=principal
    )
    response.headers.update(headers or {})
    return response


def workspace_app(platform: Platform) -> FastAPI:
    """The workspace as an application of its own, mounted in the API's app."""
    from workspace import (  # they use this module's helpers
        activities,
        alerts,
        cabinets,
        companies,
        contacts,
        deals,
        directories,
        imports,
        leads,
        projects,
        reports,
    )

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.platform = platform
    rules = platform.rules
    departments = list(rules.departments.values())
    i18n.register_names(
        i18n.configured_names(
            [*platform.funnels.values(), *rules.deal_funnels.values()]
            + [d.funnel for d in departments],
            departments,
            [(s.id, s.name) for s in rules.projects.statuses] if rules.projects else [],
        )
    )
    app.state.sessions = auth.Sessions(platform)
    app.state.throttle = auth.Throttle(platform)
    app.include_router(router)
    app.include_router(leads.router)
    app.include_router(deals.router)
    app.include_router(projects.router)
    app.include_router(reports.router)  # the reports, exports, history and audit pages
    app.include_router(activities.router)  # «Мои Дела» and the personal weekly plans
    app.include_router(alerts.router)  # the viewer's alerts, marked read
    app.include_router(cabinets.router)  # the manager's and the head of sales' cabinets
    app.include_router(companies.router)  # the company directory and the client card
    app.include_router(contacts.router)  # contacts (issue 18 §1)
    app.include_router(directories.router)  # the shared directories (issue 18 §1)
    app.include_router(imports.router)  # the import page (administrators, top management)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(auth.SignInRequired)
    async def _sign_in(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/sign-in?" + urlencode({"next": target}), status_code=303)

    @app.exception_handler(auth.CsrfRejected)
    async def _csrf(request: Request, _: Exception) -> Response:
        return _error_page(request, 403, "csrf")

    @app.exception_handler(NotPermitted)
    async def _forbidden(request: Request, _: Exception) -> Response:
        return _error_page(request, 403, "forbidden")

    @app.exception_handler(PageNotFound)
    async def _missing(request: Request, _: Exception) -> Response:
        return _error_page(request, 404, "missing")

    @app.exception_handler(TooManyAttempts)
    async def _throttled(request: Request, exc: Exception) -> Response:
        retry = exc.retry_after if isinstance(exc, TooManyAttempts) else 60
        return _error_page(request, 429, "throttled", {"Retry-After": str(retry)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        kind = {404: "missing", 405: "method"}.get(code, "bad")
        return _error_page(request, code, kind)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, _: Exception) -> Response:
        return _error_page(request, 400, "bad")

    return app
